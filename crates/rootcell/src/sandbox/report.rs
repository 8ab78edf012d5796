//! What a sandbox run reports: BenchExec `runexec`'s `key=value` lines, or
//! the same as one JSON object (`--json`) with the captured and deleted
//! files added.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// Why the command ended, when it was not on its own (runexec's
/// `terminationreason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TerminationReason {
    /// `--timelimit` (CPU time) reached.
    Cputime,
    /// `--softtimelimit` reached and the command ended after SIGTERM.
    CputimeSoft,
    Walltime,
    Memory,
    /// `--filesCountLimit` reached.
    FilesCount,
    /// `--filesSizeLimit` reached.
    FilesSize,
    /// `--maxOutputSize` reached.
    OutputSize,
    /// A signal sent to rootcell (SIGINT, SIGTERM, SIGHUP) ended it.
    Killed,
}

impl TerminationReason {
    /// runexec's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            TerminationReason::Cputime => "cputime",
            TerminationReason::CputimeSoft => "cputime-soft",
            TerminationReason::Walltime => "walltime",
            TerminationReason::Memory => "memory",
            TerminationReason::FilesCount => "files-count",
            TerminationReason::FilesSize => "files-size",
            TerminationReason::OutputSize => "output-size",
            TerminationReason::Killed => "killed",
        }
    }
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// The shell's convention, which rootcell exits with: the code, or
    /// 128 + the signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => 128 + signal,
        }
    }
}

/// Everything measured and captured in one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the command was started, RFC 3339 with the local offset.
    pub starttime: String,
    pub status: ExitStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_reason: Option<TerminationReason>,
    #[serde(serialize_with = "seconds")]
    pub walltime: Duration,
    #[serde(serialize_with = "seconds")]
    pub cputime: Duration,
    /// CPU time per CPU number, where the cgroup reports it.
    pub cputime_per_cpu: Vec<(u32, Duration)>,
    /// Peak memory of the whole cgroup in bytes (None without a memory
    /// cgroup: then it is not measured, as in BenchExec).
    pub memory: Option<u64>,
    pub blkio_read: Option<u64>,
    pub blkio_write: Option<u64>,
    /// Files copied to the output directory, relative to it.
    pub result_files: Vec<PathBuf>,
    /// Host files the command deleted (inside the sandbox only).
    pub deleted_files: Vec<PathBuf>,
    /// One-line notes: directory modes that fell back, files not copied.
    pub notes: Vec<String>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Report {
    /// runexec's output: one `key=value` line each, in runexec's order.
    pub fn runexec_lines(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "starttime={}", self.starttime);
        if let Some(reason) = self.termination_reason {
            let _ = writeln!(out, "terminationreason={}", reason.as_str());
        }
        match self.status {
            ExitStatus::Exited(code) => {
                let _ = writeln!(out, "returnvalue={code}");
                let _ = writeln!(out, "exitcode={code}");
            }
            ExitStatus::Signaled(signal) => {
                let _ = writeln!(out, "exitsignal={signal}");
            }
        }
        let _ = writeln!(out, "walltime={:.9}s", self.walltime.as_secs_f64());
        let _ = writeln!(out, "cputime={:.9}s", self.cputime.as_secs_f64());
        for (cpu, time) in &self.cputime_per_cpu {
            let _ = writeln!(out, "cputime-cpu{cpu}={:.9}s", time.as_secs_f64());
        }
        if let Some(memory) = self.memory {
            let _ = writeln!(out, "memory={memory}B");
        }
        if let Some(read) = self.blkio_read {
            let _ = writeln!(out, "blkio-read={read}B");
        }
        if let Some(write) = self.blkio_write {
            let _ = writeln!(out, "blkio-write={write}B");
        }
        out
    }

    /// The report as one JSON object (`--json`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            let per_cpu: serde_json::Map<String, serde_json::Value> = self
                .cputime_per_cpu
                .iter()
                .map(|(cpu, t)| (format!("cpu{cpu}"), t.as_secs_f64().into()))
                .collect();
            map.insert("cputime_per_cpu".into(), per_cpu.into());
        }
        value
    }
}
