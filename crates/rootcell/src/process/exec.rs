//! `exec`, container side: a new process in a running container.
//!
//! ```text
//! runtime ──fork──► setup: non-dumpable; join the cgroups; rlimits;
//!                   setns(init's pidfd, every namespace init does not
//!                   share with the runtime); chroot to init's root
//!                   ──fork──► the process (in the container's pid namespace):
//!                             session keyring, the terminal (setsid, a pty
//!                             from the container's devpts as controlling
//!                             terminal and stdio, the master sent out),
//!                             prepare_process (user, capabilities, cwd…),
//!                             close fds, execve
//! ```
//! The setup process sends the new pid and exits; the runtime is a child
//! subreaper, so the process becomes its child and `exec` can wait for it.
//! The process reports a failure before `execve` as `Failed`; its end of
//! the sync socket is close-on-exec, so the runtime reads end-of-file once
//! it has exec'd.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use super::sync::{Channel, ToContainer, ToRuntime};
use super::{fork_setup, join_session_keyring, next, prepare, sys, terminal, unexpected, Never};
use crate::error::{IoContext, Result};
use crate::fs::RootDir;
use crate::plan::ProcessPlan;
use crate::rootfs;

/// Where the pty master of a process with a terminal goes.
pub struct ExecConsole {
    /// A connected unix socket: the `--console-socket` listener's, or the
    /// process's end of the runtime's relay socketpair.
    pub socket: OwnedFd,
    /// The runtime relays the terminal: after sending the master the
    /// process waits until the relay runs (the caller's terminal raw, the
    /// pty at the caller's size), so that what it execs sees both.
    pub relayed: bool,
}

/// What the setup process needs, prepared by the runtime.
pub struct ExecConfig<'a> {
    pub process: &'a ProcessPlan,
    /// The container's compiled `linux.seccomp` filter, which applies to
    /// every process of the container.
    pub seccomp: Option<&'a crate::process::seccomp::Filter>,
    /// A pidfd of the container's init, taken after checking its start
    /// time: the namespaces are joined through it, so a recycled pid can
    /// never be joined.
    pub init: OwnedFd,
    /// `CLONE_NEW*` flags of the namespaces init does not share with the
    /// runtime; one `setns` on the pidfd joins them all (the kernel enters
    /// the user namespace first and checks the others with its
    /// credentials).
    pub namespaces: i32,
    /// init's root directory, opened `O_PATH` from `/proc/<init>/root` in
    /// the private procfs while the pidfd pinned init.
    pub root: OwnedFd,
    /// The files the (single-threaded) setup process writes "0" into to
    /// join its cgroups: `tasks` (v1) or `cgroup.procs` (v2), see
    /// `cgroup::CgroupJoin`.
    pub cgroup_joins: Vec<crate::cgroup::JoinFile>,
    /// `_ses.<id>`, or None when the container was created with
    /// `--no-new-keyring`.
    pub session_keyring: Option<String>,
    /// `--preserve-fds`: fds 3..3+N stay open into the process.
    pub preserve_fds: u32,
    /// `process.terminal`: where the master of the process's pty goes.
    pub console: Option<ExecConsole>,
    /// The runtime's fds the setup process closes at once (the state lock,
    /// the runtime's end of the sync socket and of the terminal relay).
    pub close_in_child: Vec<RawFd>,
}

/// Forks the setup process; returns its pid. The process's pid and any
/// failure come over `runtime_side`.
pub fn spawn(cfg: ExecConfig<'_>, container_side: Channel) -> Result<i32> {
    fork_setup(container_side, None, 0, None, |chan, _| enter(cfg, chan))
}

/// The setup process: everything that needs the runtime's privileges or
/// must happen before the pid namespace applies.
fn enter(mut cfg: ExecConfig<'_>, chan: &Channel) -> Result<Never> {
    for fd in &cfg.close_in_child {
        // SAFETY: these fds belong to the runtime's objects, which this
        // forked child never uses again.
        unsafe { libc::close(*fd) };
    }
    // Non-dumpable until execve: the container's processes can neither
    // ptrace this process and its child nor open their /proc files
    // (CVE-2016-9962). Set first: both appear in the container's cgroup,
    // and the child in its pid namespace.
    sys::prctl(libc::PR_SET_DUMPABLE, 0).ctx(|| "prctl(PR_SET_DUMPABLE)")?;
    // Before the cgroup namespace: the host's view of the cgroups.
    // Closed once used: the process does not inherit them.
    for file in std::mem::take(&mut cfg.cgroup_joins) {
        file.join()?;
    }
    // Before the user namespace: raising a hard limit needs host privilege.
    prepare::apply_limits(cfg.process)?;
    prepare::apply_initial_cpu_affinity(cfg.process)?;
    if cfg.namespaces != 0 {
        sys::setns(&cfg.init, cfg.namespaces)
            .ctx(|| "joining the container's namespaces (setns on init's pidfd)")?;
    }
    // The mount namespace's root is not necessarily the container's (a
    // chroot container, a root moved with --no-pivot): take init's.
    rustix::process::fchdir(&cfg.root).ctx(|| "entering the container's root")?;
    rustix::process::chroot(".").ctx(|| "chroot to the container's root")?;
    // The setns above applies the pid namespace to children only.
    match sys::fork().ctx(|| "fork into the container's pid namespace (has init exited?)")? {
        sys::Forked::Parent(pid) => {
            chan.send(&ToRuntime::ExecPid { pid })?;
            sys::exit_now(0)
        }
        sys::Forked::Child => run(cfg, chan),
    }
}

/// The process itself, in every namespace of the container.
fn run(mut cfg: ExecConfig<'_>, chan: &Channel) -> Result<Never> {
    if let Some(name) = &cfg.session_keyring {
        join_session_keyring(name)?;
    }
    if let Some(console) = cfg.console.take() {
        setup_terminal(&cfg, console, chan)?;
    }
    prepare::prepare_process(cfg.process)?;
    match prepare::finish(
        cfg.process,
        cfg.seccomp,
        Some(chan),
        cfg.preserve_fds,
        &mut ExecLifecycle { chan },
    )? {}
}

/// The exec'd process has no start gate and no hooks: it only keeps the
/// sync socket (close-on-exec: the runtime reads end-of-file at exec).
struct ExecLifecycle<'a> {
    chan: &'a Channel,
}

impl prepare::Lifecycle for ExecLifecycle<'_> {
    fn keep(&self) -> Vec<RawFd> {
        vec![self.chan.as_fd().as_raw_fd()]
    }
}

/// `process.terminal` (see `terminal`), as runc's `exec --tty`: the process
/// leads a new session whose controlling terminal is a new pty from the
/// container's devpts (`/dev/pts/ptmx` in init's root, verified), which is
/// also its stdin, stdout and stderr. Before the user switch: the pty is
/// opened and given to the user with the setup's privileges. The master is
/// sent on the console connection and closed here, and so is the
/// connection: neither reaches what the process execs.
fn setup_terminal(cfg: &ExecConfig<'_>, console: ExecConsole, chan: &Channel) -> Result<()> {
    // A fork child is no process group leader, so setsid cannot fail with
    // EPERM; it drops the runtime's controlling terminal.
    rustix::process::setsid().ctx(|| "process.terminal: setsid")?;
    let root = cfg
        .root
        .try_clone()
        .ctx(|| "process.terminal: the container's root")?;
    let pty = terminal::open_peer(rootfs::open_ptmx(&RootDir::from_fd(root))?)?;
    terminal::install(pty, cfg.process, console.socket.as_fd())?;
    if console.relayed {
        chan.send(&ToRuntime::TerminalSent)?;
        match next(chan)? {
            ToContainer::Continue => {}
            other => return Err(unexpected(other)),
        }
    }
    Ok(())
}
