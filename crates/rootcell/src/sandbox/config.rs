//! What a sandbox run is asked to do: BenchExec's `containerexec` and
//! `runexec` options as plain data. The CLI fills it from the flags; library
//! users build it directly. `sandbox::validate` checks what does not
//! depend on the host; the planner checks the rest against the host.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// How a directory of the host appears inside the sandbox (BenchExec's
/// directory modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirMode {
    /// An empty writable directory; its files are discarded afterwards
    /// unless they match `--result-files`.
    Hidden,
    ReadOnly,
    /// The host's content, writes captured in an upper layer.
    Overlay,
    /// The host's directory itself, writable.
    FullAccess,
}

impl DirMode {
    /// The command-line flag that asks for this mode.
    pub fn flag(self) -> &'static str {
        match self {
            DirMode::Hidden => "--hidden-dir",
            DirMode::ReadOnly => "--read-only-dir",
            DirMode::Overlay => "--overlay-dir",
            DirMode::FullAccess => "--full-access-dir",
        }
    }
}

/// One directory mode the user asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirRule {
    /// Absolute host path (the CLI makes relative ones absolute against the
    /// current directory, as BenchExec does).
    pub path: PathBuf,
    pub mode: DirMode,
}

/// Where the command's standard input comes from (`--input`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Input {
    /// `/dev/null` (BenchExec's default).
    #[default]
    DevNull,
    /// `--input -`: rootcell's own stdin.
    Inherit,
    File(PathBuf),
}

/// Resource limits (runexec's options). `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// `--memlimit`, bytes: the whole cgroup (tmpfs pages included).
    pub memory: Option<u64>,
    /// `--timelimit`: CPU time of all processes, then SIGKILL.
    pub cputime: Option<Duration>,
    /// `--softtimelimit`: CPU time, then SIGTERM.
    pub soft_cputime: Option<Duration>,
    /// `--walltimelimit`.
    pub walltime: Option<Duration>,
    /// `--cores`: CPU numbers for the cpuset.
    pub cores: Option<Vec<u32>>,
    /// `--memoryNodes`: NUMA nodes for the cpuset.
    pub memory_nodes: Option<Vec<u32>>,
    /// `--filesCountLimit`: files written (upper layers and hidden dirs).
    pub files_count: Option<u64>,
    /// `--filesSizeLimit`: bytes written there.
    pub files_size: Option<u64>,
    /// `--maxOutputSize`: bytes of output kept in the `--output` file.
    pub output_size: Option<u64>,
}

/// A whole sandbox run.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxConfig {
    /// The command and its arguments; the first is looked up in PATH.
    pub command: Vec<OsString>,
    /// `--dir`: working directory inside (default: the current directory).
    pub working_dir: Option<PathBuf>,
    /// `--root`: uid and gid 0 inside.
    pub root: bool,
    /// `--uid`/`--gid` inside (default: the caller's own ids).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `--network-access`: keep the host's network namespace.
    pub network_access: bool,
    /// `!--no-tmpfs`: upper layers and hidden dirs on a tmpfs (counted in
    /// the memory limit) instead of a temporary directory on disk.
    pub use_tmpfs: bool,
    /// `--keep-system-config`: no generated `/etc/passwd`, `/etc/hosts`...
    pub keep_system_config: bool,
    /// `--keep-tmp`: `/tmp` in full-access mode instead of hidden.
    pub keep_tmp: bool,
    /// `--hidden-dir`, `--read-only-dir`, `--overlay-dir`,
    /// `--full-access-dir`, in the order given. BenchExec's defaults are
    /// added by the planner, below these.
    pub dir_rules: Vec<DirRule>,
    /// `--output-directory` (default `./output.files`).
    pub output_directory: PathBuf,
    /// `--result-files` patterns (default `.`: everything below `--dir`).
    pub result_files: Vec<String>,
    /// `--cgroup-access`: the command may make sub-cgroups of its own.
    pub cgroup_access: bool,
    pub limits: Limits,
    pub input: Input,
    /// `--output`: stdout and stderr to this file (else: inherited).
    pub output: Option<PathBuf>,
    /// Environment of the command (default: rootcell's own, as BenchExec).
    pub env: Vec<(OsString, OsString)>,
}

impl SandboxConfig {
    /// A run of `command` with BenchExec's defaults.
    pub fn new(command: Vec<OsString>) -> SandboxConfig {
        SandboxConfig {
            command,
            working_dir: None,
            root: false,
            uid: None,
            gid: None,
            network_access: false,
            use_tmpfs: true,
            keep_system_config: false,
            keep_tmp: false,
            dir_rules: Vec::new(),
            output_directory: PathBuf::from("output.files"),
            result_files: vec![".".to_string()],
            cgroup_access: false,
            limits: Limits::default(),
            input: Input::DevNull,
            output: None,
            env: std::env::vars_os().collect(),
        }
    }
}
