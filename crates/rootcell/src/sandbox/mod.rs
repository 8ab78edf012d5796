//! The sandbox face: run a command in a container made from the host's own
//! tree (BenchExec's `containerexec`/`runexec`). Each directory of the host
//! is hidden, read-only, overlaid (writes captured) or fully accessible;
//! limits are enforced and the run is measured.
//!
//! Flow, as for the OCI face: `SandboxConfig` (flags) → plan (pure, from
//! the config and the host's mountinfo: `plan`, printed by `--plan`) →
//! execute (the same mount primitives, `rootfs::Rootfs` and root switch as
//! containers; `process` and `init` for the processes) → report and
//! result files.

pub mod config;
pub mod execute;
mod init;
mod interim;
pub mod process;
pub mod report;
pub mod units;

use std::ffi::OsString;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use config::{DirMode, DirRule, Input, Limits, SandboxConfig};
pub use report::{ExitStatus, Report, TerminationReason};

use crate::error::{Error, IoContext, Result};
use crate::plan::{
    Capabilities, FinalStep, Namespace, Namespaces, Plan, ProcessPlan, Propagation,
    PropagationChange, RootSource, RootSwitch, RootfsPlan,
};

/// The sandbox's hostname (UTS namespace; `/etc/hostname` and `/etc/hosts`
/// name it too).
pub const HOSTNAME: &str = "rootcell";

/// The caller of `rootcell sandbox`, as plain data: the defaults of
/// `--uid`, `--gid` and `--dir`, and the umask the command keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub cwd: PathBuf,
    pub umask: u32,
}

impl Caller {
    pub fn current() -> Result<Caller> {
        // umask(2) only sets: set it back at once (the runtime is
        // single-threaded).
        let umask = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
        rustix::process::umask(umask);
        Ok(Caller {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            cwd: std::env::current_dir().ctx(|| "the current directory")?,
            umask: umask.bits(),
        })
    }
}

/// Everything a sandbox run does, as data: the engine's `Plan` (namespaces,
/// hostname, the host tree's staging and mount steps, the root switch, the
/// command's process settings) and the sandbox's own parts.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxPlan {
    pub plan: Plan,
    /// The command and its environment as given (any bytes);
    /// `plan.process.args`/`env` show them as text.
    #[serde(skip)]
    pub command: Vec<OsString>,
    #[serde(skip)]
    pub env: Vec<(OsString, OsString)>,
    pub input: Input,
    /// stdout and stderr of the command (else: rootcell's own).
    pub output: Option<PathBuf>,
    pub output_directory: PathBuf,
    /// `--result-files`, absolute container paths.
    pub result_patterns: Vec<PathBuf>,
    pub notes: Vec<String>,
}

/// The checks that need no host: one command, `--root` alone, absolute
/// paths.
pub fn validate(cfg: &SandboxConfig) -> Result<()> {
    if cfg.command.is_empty() {
        return Err(Error::usage("command", "no command given"));
    }
    if cfg.root && (cfg.uid.is_some() || cfg.gid.is_some()) {
        let flag = if cfg.uid.is_some() { "--uid" } else { "--gid" };
        return Err(Error::usage(flag, "cannot be combined with --root"));
    }
    if let Some(dir) = &cfg.working_dir {
        if !dir.is_absolute() {
            return Err(Error::usage(
                "--dir",
                format!("{}: not an absolute path", dir.display()),
            ));
        }
    }
    if let Some(out) = &cfg.output {
        if out.as_os_str().is_empty() {
            return Err(Error::usage("--output", "empty path"));
        }
    }
    Ok(())
}

/// The plan of a run of `cfg` on this host (`--plan` prints it).
pub fn plan(cfg: &SandboxConfig) -> Result<SandboxPlan> {
    validate(cfg)?;
    let caller = Caller::current()?;
    let facts = interim::HostFacts::gather(cfg)?;
    let layout = interim::plan(cfg, &facts)?;
    build_plan(cfg, layout, &caller)
}

/// Pure: the sandbox's plan from the config, the planned filesystem
/// layout and the caller.
pub(crate) fn build_plan(
    cfg: &SandboxConfig,
    layout: interim::Layout,
    caller: &Caller,
) -> Result<SandboxPlan> {
    let uid = if cfg.root {
        0
    } else {
        cfg.uid.unwrap_or(caller.uid)
    };
    let gid = if cfg.root {
        0
    } else {
        cfg.gid.unwrap_or(caller.gid)
    };
    let mut create = vec![Namespace::Mount, Namespace::Pid];
    if !cfg.network_access {
        create.push(Namespace::Network);
    }
    create.extend([Namespace::Ipc, Namespace::Uts, Namespace::Cgroup]);
    // Not root: a user namespace mapping the caller (the rootless
    // sandbox, not implemented yet: the executor refuses it).
    let (uid_mappings, gid_mappings) = if caller.uid != 0 {
        create.insert(0, Namespace::User);
        let map = |inside: u32, host: u32| crate::plan::IdMapping {
            container_id: inside,
            host_id: host,
            size: 1,
        };
        (vec![map(uid, caller.uid)], vec![map(gid, caller.gid)])
    } else {
        (Vec::new(), Vec::new())
    };
    let mut env: Vec<(OsString, OsString)> = cfg
        .env
        .iter()
        .filter(|(k, _)| k != "HOME")
        .cloned()
        .collect();
    env.push(("HOME".into(), layout.home.clone().into_os_string()));
    let cwd = cfg
        .working_dir
        .clone()
        .unwrap_or_else(|| caller.cwd.clone());
    let process = ProcessPlan {
        args: cfg
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        env: env
            .iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect(),
        cwd,
        uid,
        gid,
        additional_gids: Vec::new(),
        umask: caller.umask,
        terminal: false,
        console_size: None,
        rlimits: Vec::new(),
        // As BenchExec: no capabilities, whatever the user; and with no
        // user namespace, no setuid program may regain any.
        no_new_privileges: true,
        oom_score_adj: None,
        capabilities: Some(Capabilities::default()),
        personality: None,
        io_priority: None,
        scheduler: None,
        exec_cpu_affinity: None,
        lsm: Default::default(),
        seccomp: None,
        final_steps: vec![
            FinalStep::SwitchUser,
            FinalStep::SetCapabilities {
                keep_sys_admin: false,
            },
            FinalStep::NoNewPrivileges,
            FinalStep::EnterCwd,
            FinalStep::ResolveProgram,
            FinalStep::CloseFds,
            FinalStep::ResetSignals,
            FinalStep::Execve,
        ],
        warnings: Vec::new(),
    };
    let rootfs = RootfsPlan {
        rootfs: PathBuf::new(),
        source: RootSource::HostTree(layout.staging),
        // Nothing mounted in the sandbox reaches the host, nor does
        // anything the host mounts later reach the sandbox (BenchExec).
        root_propagation: PropagationChange {
            kind: Propagation::Private,
            recursive: true,
        },
        setup: layout.setup,
        switch: RootSwitch::PivotRoot,
        finish: layout.finish,
        mount_label: None,
    };
    let base = process.cwd.clone();
    let result_patterns = cfg
        .result_files
        .iter()
        .map(|p| base.join(p))
        .collect::<Vec<_>>();
    let result_patterns = if layout.result_patterns.is_empty() {
        result_patterns
    } else {
        layout.result_patterns
    };
    Ok(SandboxPlan {
        plan: Plan {
            namespaces: Namespaces {
                create,
                join: Vec::new(),
                uid_mappings,
                gid_mappings,
                time_offsets: Vec::new(),
            },
            hostname: Some(HOSTNAME.into()),
            domainname: None,
            rootfs,
            process,
            resources: None,
            memory_policy: None,
        },
        command: cfg.command.clone(),
        env,
        input: cfg.input.clone(),
        output: cfg.output.clone(),
        output_directory: cfg.output_directory.clone(),
        result_patterns,
        notes: layout.notes,
    })
}

impl fmt::Display for SandboxPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.plan)?;
        writeln!(f, "stdio")?;
        let input = match &self.input {
            Input::DevNull => "/dev/null".to_string(),
            Input::Inherit => "rootcell's own".to_string(),
            Input::File(p) => p.display().to_string(),
        };
        writeln!(f, "├─ stdin {input}")?;
        match &self.output {
            Some(p) => writeln!(f, "└─ stdout and stderr to {}", p.display())?,
            None => writeln!(f, "└─ stdout and stderr: rootcell's own")?,
        }
        writeln!(f, "results to {}", self.output_directory.display())?;
        for p in &self.result_patterns {
            writeln!(f, "├─ {}", p.display())?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}

/// A whole run: plan, execute, report.
pub fn run(cfg: &SandboxConfig) -> Result<Report> {
    let plan = plan(cfg)?;
    execute(&plan)
}

/// The command's stdio, opened by the runtime as the caller.
fn open_io(plan: &SandboxPlan) -> Result<process::CommandIo> {
    use rustix::fs::{Mode, OFlags};
    let stdin = match &plan.input {
        Input::Inherit => None,
        Input::DevNull => Some(
            rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .ctx(|| "/dev/null")?,
        ),
        Input::File(path) => Some(
            rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::usage("--input", format!("{}: {e}", path.display())))?,
        ),
    };
    let output = match &plan.output {
        None => None,
        Some(path) => Some(
            rustix::fs::open(
                path,
                OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            )
            .map_err(|e| Error::usage("--output", format!("{}: {e}", path.display())))?,
        ),
    };
    Ok(process::CommandIo { stdin, output })
}

/// Runs a planned sandbox and reports. Everything it made (the staging,
/// the processes) is gone when it returns.
pub fn execute(plan: &SandboxPlan) -> Result<Report> {
    let RootSource::HostTree(staging_plan) = &plan.plan.rootfs.source else {
        return Err(Error::Other("a sandbox plan needs a host tree".into()));
    };
    if plan.plan.namespaces.creates(Namespace::User) {
        return Err(Error::Other(
            "rootcell sandbox needs root for now (an unprivileged sandbox in a user namespace is not implemented yet)"
                .into(),
        ));
    }
    let io = open_io(plan)?;
    let staging = execute::StagingFs::create(staging_plan)?;
    tracing::debug!(
        "sandbox: staging {:?} made, {} setup and {} finish steps",
        staging_plan.filesystem,
        plan.plan.rootfs.setup.len(),
        plan.plan.rootfs.finish.len()
    );
    let result = run_in(plan, &staging, io);
    let removed = staging.remove();
    tracing::debug!("sandbox: staging removed: {removed:?}");
    let report = result?;
    removed?;
    Ok(report)
}

fn run_in(
    plan: &SandboxPlan,
    staging: &execute::StagingFs,
    io: process::CommandIo,
) -> Result<Report> {
    // MEASURE: the run cgroup (`cgroups::RunCgroup::create`) is made here
    // and its `procs_files()` passed to `spawn`; removed after the run.
    let signals = crate::container::signals::Forwarder::block()?;
    let signal_fd = signals.signal_fd()?;
    let starttime = crate::state::time::rfc3339_now();
    let started = Instant::now();
    let spawned = process::spawn(plan, staging.handle()?, io, Vec::new())?;
    tracing::debug!("sandbox: init started, pid {}", spawned.pid);
    // MEASURE: the one call site of `supervise::supervise(&spawned.pidfd,
    // spawned.pid, spawned.status, watch, started)`, which replaces
    // `wait_interim`.
    let outcome = wait_interim(&spawned, &signal_fd, started)?;
    tracing::debug!(
        "sandbox: init ended after {:?}, command status {:?}",
        outcome.walltime,
        outcome.status
    );
    if let Some(message) = read_errors(&spawned.errors) {
        return Err(sandbox_error(message));
    }
    let Some(status) = outcome.status else {
        return Err(Error::Other(
            "the sandbox's init ended without the command's status".into(),
        ));
    };
    // CAPTURE: `capture::capture(staging.upper()?, &plan.result_patterns,
    // &plan.output_directory)` goes here, with its files, deleted files
    // and notes into the report.
    let _ = staging;
    Ok(Report {
        starttime,
        status,
        termination_reason: outcome.killed.then_some(TerminationReason::Killed),
        walltime: outcome.walltime,
        cputime: outcome.cputime,
        cputime_per_cpu: Vec::new(),
        memory: None,
        blkio_read: None,
        blkio_write: None,
        result_files: Vec::new(),
        deleted_files: Vec::new(),
        notes: plan.notes.clone(),
    })
}

/// INTERIM (until measure's `supervise` is merged): how the run ended.
struct Waited {
    status: Option<ExitStatus>,
    killed: bool,
    walltime: Duration,
    cputime: Duration,
}

/// INTERIM (until measure's `supervise` is merged): waits for init with
/// its pidfd, forwarding SIGINT/SIGTERM/SIGHUP (a second one kills it),
/// reads the status it wrote and reaps it.
fn wait_interim(s: &process::Spawned, signals: &OwnedFd, started: Instant) -> Result<Waited> {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut seen = 0;
    loop {
        let mut fds = [
            PollFd::new(&s.pidfd, PollFlags::IN),
            PollFd::new(signals, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(std::io::Error::from(e)).ctx(|| "poll"),
        }
        let done = !fds[0].revents().is_empty();
        while let Some(sig) = crate::container::signals::read_signal(signals) {
            if sig == libc::SIGCHLD {
                continue;
            }
            seen += 1;
            let sig = if seen == 1 { sig } else { libc::SIGKILL };
            if let Some(sig) = rustix::process::Signal::from_named_raw(sig) {
                let _ = rustix::process::pidfd_send_signal(&s.pidfd, sig);
            }
        }
        if done {
            break;
        }
    }
    let walltime = started.elapsed();
    let mut bytes = [0u8; 4];
    let status = match rustix::io::read(&s.status, &mut bytes) {
        Ok(4) => Some(decode_wait_status(i32::from_ne_bytes(bytes))),
        _ => None,
    };
    let _ = rustix::process::waitpid(
        rustix::process::Pid::from_raw(s.pid),
        rustix::process::WaitOptions::empty(),
    );
    Ok(Waited {
        status,
        killed: seen > 0,
        walltime,
        cputime: Duration::ZERO,
    })
}

/// The command's status from a raw wait status.
fn decode_wait_status(status: i32) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signaled(libc::WTERMSIG(status))
    } else {
        ExitStatus::Exited(libc::WEXITSTATUS(status))
    }
}

/// What init or the command wrote into the error pipe before dying (all
/// writers are gone once init has exited).
fn read_errors(errors: &OwnedFd) -> Option<String> {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(errors.as_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&text).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// An error from inside the sandbox; one that names a flag (`--dir ...`)
/// is the user's (a usage error).
fn sandbox_error(message: String) -> Error {
    if let Some(rest) = message.strip_prefix("--") {
        let end = rest.find([' ', ':']).unwrap_or(rest.len());
        let flag = format!("--{}", &rest[..end]);
        let reason = rest[end..].trim_start_matches(':').trim_start().to_string();
        return Error::usage(flag, reason);
    }
    Error::Other(message)
}

/// `path` made absolute against `base` (the CLI's relative flag values).
pub fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Staging, StagingFilesystem};

    fn layout() -> interim::Layout {
        interim::Layout {
            staging: Staging {
                filesystem: StagingFilesystem::Tmpfs {
                    options: Vec::new(),
                },
                mountpoint: PathBuf::from("/run"),
            },
            setup: Vec::new(),
            finish: Vec::new(),
            notes: vec!["a note".into()],
            result_patterns: Vec::new(),
            home: PathBuf::from("/home/user"),
        }
    }

    fn caller(uid: u32) -> Caller {
        Caller {
            uid,
            gid: uid + 1,
            cwd: PathBuf::from("/work"),
            umask: 0o027,
        }
    }

    fn config() -> SandboxConfig {
        let mut cfg = SandboxConfig::new(vec!["ls".into(), "-l".into()]);
        cfg.env = vec![
            ("HOME".into(), "/root".into()),
            ("PATH".into(), "/bin".into()),
        ];
        cfg
    }

    #[test]
    fn the_plan_of_a_root_caller() {
        let plan = build_plan(&config(), layout(), &caller(0)).unwrap();
        let ns = &plan.plan.namespaces;
        assert_eq!(
            ns.create,
            [
                Namespace::Mount,
                Namespace::Pid,
                Namespace::Network,
                Namespace::Ipc,
                Namespace::Uts,
                Namespace::Cgroup
            ]
        );
        assert!(ns.uid_mappings.is_empty());
        let p = &plan.plan.process;
        assert_eq!((p.uid, p.gid, p.umask), (0, 1, 0o027));
        assert_eq!(p.cwd, PathBuf::from("/work"));
        assert_eq!(
            p.env,
            ["PATH=/bin", "HOME=/home/user"],
            "HOME is the layout's"
        );
        assert!(p.no_new_privileges);
        assert!(p
            .capabilities
            .as_ref()
            .is_some_and(|c| c.bounding.is_empty()));
        assert_eq!(plan.plan.rootfs.switch, RootSwitch::PivotRoot);
        assert_eq!(
            plan.plan.rootfs.root_propagation,
            PropagationChange {
                kind: Propagation::Private,
                recursive: true
            }
        );
        assert_eq!(plan.result_patterns, [PathBuf::from("/work/.")]);
        assert_eq!(plan.notes, ["a note"]);
        assert_eq!(plan.plan.hostname.as_deref(), Some(HOSTNAME));
    }

    #[test]
    fn flags_change_the_plan() {
        let mut cfg = config();
        cfg.network_access = true;
        cfg.root = true;
        cfg.working_dir = Some(PathBuf::from("/srv"));
        let plan = build_plan(&cfg, layout(), &caller(0)).unwrap();
        assert!(!plan.plan.namespaces.creates(Namespace::Network));
        assert_eq!(plan.plan.process.cwd, PathBuf::from("/srv"));
        assert_eq!(plan.result_patterns, [PathBuf::from("/srv/.")]);
        let mut cfg = config();
        cfg.uid = Some(1000);
        let plan = build_plan(&cfg, layout(), &caller(0)).unwrap();
        assert_eq!((plan.plan.process.uid, plan.plan.process.gid), (1000, 1));
    }

    #[test]
    fn an_unprivileged_caller_gets_a_user_namespace_mapping_itself() {
        let plan = build_plan(&config(), layout(), &caller(1000)).unwrap();
        let ns = &plan.plan.namespaces;
        assert_eq!(ns.create[0], Namespace::User);
        assert_eq!(ns.uid_mappings.len(), 1);
        assert_eq!(
            (ns.uid_mappings[0].container_id, ns.uid_mappings[0].host_id),
            (1000, 1000)
        );
    }

    #[test]
    fn config_checks_name_the_flag() {
        let mut cfg = config();
        cfg.root = true;
        cfg.gid = Some(3);
        assert!(matches!(validate(&cfg), Err(Error::Usage { flag, .. }) if flag == "--gid"));
        let mut cfg = config();
        cfg.working_dir = Some(PathBuf::from("rel"));
        assert!(matches!(validate(&cfg), Err(Error::Usage { flag, .. }) if flag == "--dir"));
        let cfg = SandboxConfig::new(Vec::new());
        assert!(matches!(validate(&cfg), Err(Error::Usage { flag, .. }) if flag == "command"));
    }

    #[test]
    fn errors_from_inside_that_name_a_flag_are_usage_errors() {
        match sandbox_error("--dir /x: No such file or directory (os error 2)".into()) {
            Error::Usage { flag, reason } => {
                assert_eq!(flag, "--dir");
                assert_eq!(reason, "/x: No such file or directory (os error 2)");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            sandbox_error("mount: EINVAL".into()),
            Error::Other(_)
        ));
    }

    #[test]
    fn the_plan_prints_as_the_engines_tree() {
        let plan = build_plan(&config(), layout(), &caller(0)).unwrap();
        let text = plan.to_string();
        for part in [
            "rootfs: the host's tree",
            "staging: a tmpfs, attached at /run",
            "switch root: PivotRoot",
            "stdin /dev/null",
            "note: a note",
        ] {
            assert!(text.contains(part), "{part}:\n{text}");
        }
    }
}
