//! The command line, with runc's command names and flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "rootcell",
    version,
    about = "OCI container runtime and sandbox"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Only the global flags: what comes before `rootcell sandbox`, whose own
/// flags are parsed by `commands::sandbox`.
#[derive(Parser, Debug)]
#[command(name = "rootcell")]
pub struct GlobalOnly {
    #[command(flatten)]
    pub global: Global,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Directory for container state (default /run/rootcell, or
    /// $XDG_RUNTIME_DIR/rootcell when not root).
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Log file (default: standard error).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Ignore cgroup permission errors ("true", "false" or "auto").
    #[arg(long = "rootless", id = "global_rootless", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Manage cgroups through systemd.
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Isolation mode for create, run and plan: oci (a full container),
    /// chroot (buildah's chroot isolation) or auto. Overrides the config's
    /// `org.rootcell.isolation` annotation.
    #[arg(long, global = true, value_name = "MODE", value_parser = parse_isolation)]
    pub isolation: Option<rootcell::plan::Isolation>,
}

fn parse_isolation(value: &str) -> Result<rootcell::plan::Isolation, String> {
    rootcell::plan::Isolation::parse(value)
        .ok_or_else(|| format!("expected {}", rootcell::plan::Isolation::VALUES))
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Container id.
    pub id: String,
    /// Bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the container's init pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to (process.terminal with create
    /// or run --detach; a foreground run relays the terminal itself).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE instead of pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3..3+N) to the container.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
}

/// `exec`: flags first, then the id and the command, as runc parses them
/// (everything after the id belongs to the command, dashes included).
#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Path to a process.json (an OCI process) describing the whole
    /// process; the flags describing the process are then ignored.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket to send the pty master to (with --tty --detach).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE); repeatable.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID] to run as (numbers).
    #[arg(short, long)]
    pub user: Option<String>,
    /// An additional group id; repeatable.
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets;
    /// repeatable.
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privileges for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// AppArmor profile for the process.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process.
    #[arg(long)]
    pub process_label: Option<String>,
    /// Do not wait for the process.
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Pass N extra fds (3..3+N) to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run the process in a sub-cgroup of the container: PATH, or
    /// CONTROLLER[,CONTROLLER]:PATH (repeatable).
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Exec into a paused container too.
    #[arg(long)]
    pub ignore_paused: bool,
    /// Container id, then the command and its arguments.
    #[arg(
        required = true,
        value_name = "ID [COMMAND [ARGS...]]",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// `update`: runc 1.1's flags. Values are strings, parsed as runc parses
/// them (memory sizes with `k`/`m`/`g` suffixes, `-1` unlimited).
#[derive(Args, Debug, Clone)]
pub struct UpdateArgs {
    /// Container id.
    pub id: String,
    /// An OCI LinuxResources JSON file (`-` for stdin); the other flags
    /// are then ignored, as with runc.
    #[arg(short, long)]
    pub resources: Option<String>,
    /// Memory limit in bytes (512m, 1g…; -1 unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit in bytes (-1 unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit in bytes.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Kernel memory limit (ignored, with a warning, as runc).
    #[arg(long, allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer limit (ignored, with a warning, as runc).
    #[arg(long, allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", alias = "cpu-shares", allow_hyphen_values = true)]
    pub cpu_share: Option<String>,
    /// CFS quota in µs per period (-1 unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// CFS period in µs.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_period: Option<String>,
    /// Real-time period in µs.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_rt_period: Option<String>,
    /// Real-time runtime in µs per period.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<String>,
    /// CPUs to use (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Maximum number of pids (-1 unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Block IO weight, 10 to 1000.
    #[arg(long, allow_hyphen_values = true)]
    pub blkio_weight: Option<String>,
    /// Intel RDT L3 cache schema (refused: no intelRdt support).
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (refused: no intelRdt support).
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
}

// Each subcommand's flags are defined only when it is the one invoked (or
// for help): building all of them cost 0.36 ms of every `run`.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Write a default config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config for running without root.
        #[arg(long)]
        rootless: bool,
    },
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create and start a container.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Do not wait for the container.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print the container's state as JSON.
    State { id: String },
    /// Send a signal to the container's init (default SIGTERM).
    Kill {
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        /// Signal every process of the container.
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container.
    Delete {
        id: String,
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
    },
    /// List containers.
    List {
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Print only ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run a new process in a running container.
    Exec(ExecArgs),
    /// Suspend every process of the container (freeze its cgroup).
    Pause { id: String },
    /// Resume a paused container.
    Resume { id: String },
    /// Print the container's resource usage and OOM events as JSON.
    Events {
        id: String,
        /// Print the usage once and exit.
        #[arg(long)]
        stats: bool,
        /// Time between usage reports (Go duration: 5s, 500ms, 1m30s).
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// Change the resource limits of a created, running or paused
    /// container.
    Update(UpdateArgs),
    /// List the processes of a container.
    Ps {
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Container id, then options for ps(1) (default -ef; table only).
        #[arg(
            required = true,
            value_name = "ID [PS OPTIONS...]",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        args: Vec<String>,
    },
    /// Print what this runtime supports, as OCI features JSON.
    Features,
    /// Run a command in a container made from the host's own tree
    /// (BenchExec's containerexec/runexec flags; `rootcell sandbox --help`).
    #[command(disable_help_flag = true)]
    Sandbox {
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<std::ffi::OsString>,
    },
    /// Print docker's PathStat of a path inside a container (name, size,
    /// mode, mtime, link target resolved inside the container).
    Stat {
        /// Print the PathStat as JSON (docker's `X-Docker-Container-Path-Stat`).
        #[arg(long)]
        json: bool,
        container: String,
        path: PathBuf,
    },
    /// Copy files between a container and the host (docker cp):
    /// `CONTAINER:SRC_PATH DEST_PATH|-` or `SRC_PATH|- CONTAINER:DEST_PATH`.
    Cp {
        /// Keep the source's owners (uid/gid).
        #[arg(short, long)]
        archive: bool,
        /// Follow a symlink at SRC_PATH.
        #[arg(short = 'L', long)]
        follow_link: bool,
        /// Print nothing on success.
        #[arg(short, long)]
        quiet: bool,
        #[arg(allow_hyphen_values = true)]
        src: String,
        #[arg(allow_hyphen_values = true)]
        dst: String,
    },
    /// Print the plan for a bundle without running anything.
    Plan {
        #[arg(default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        json: bool,
        /// Plan as `--no-pivot` would run.
        #[arg(long)]
        no_pivot: bool,
    },
}

impl Command {
    /// Whether the command starts processes inside a container, and so must
    /// run from a protected binary (see `rootcell::exe`).
    pub fn enters_container(&self) -> bool {
        matches!(
            self,
            Command::Create(_) | Command::Run { .. } | Command::Exec(_)
        )
    }
}
