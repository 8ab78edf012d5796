//! `rootcell exec` and `rootcell ps`: a new process in a running container,
//! and the container's processes.
//!
//! `exec` is spec → plan → execute like `create`: the process comes from a
//! `--process` file or from the container's `process` with the flags laid
//! over it (`spec::ProcessOverrides`), goes through the same planner
//! (`plan::process_plan`), and `process::exec` runs it in init's
//! namespaces, cgroups and root.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use pathrs::flags::OpenFlags;

use super::console::Console;
use super::relay::Relay;
use super::{signals, wait, write_pid_file, Runtime};
use crate::cgroup::{self, SubCgroups};
use crate::error::{Error, IoContext, Result};
use crate::fs::procfs::{self, ProcfsBase};
use crate::plan::{self, Namespace, ProcessPlan};
use crate::process::exec::{ExecConfig, ExecConsole};
use crate::process::sync::{self, Channel, ToContainer, ToRuntime};
use crate::process::{self, sys};
use crate::spec::{self, ProcessOverrides};
use crate::state::{ContainerDir, ContainerState, Status};

/// Flags of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// `--process FILE`: the whole process. The flags that describe the
    /// process (`process`) are then ignored, as runc ignores them.
    pub process_file: Option<PathBuf>,
    /// The command and the flags that describe the process.
    pub process: ProcessOverrides,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// `--cgroup [CONTROLLER:]PATH`: sub-cgroups to run the process in.
    pub cgroups: Vec<String>,
    /// `--ignore-paused`: exec into a paused (frozen) container too.
    pub ignore_paused: bool,
}

/// The kinds of namespace a process can be in, for comparing init's with
/// the runtime's.
const NAMESPACES: [Namespace; 8] = [
    Namespace::User,
    Namespace::Mount,
    Namespace::Pid,
    Namespace::Network,
    Namespace::Ipc,
    Namespace::Uts,
    Namespace::Cgroup,
    Namespace::Time,
];

impl Runtime {
    /// `rootcell exec`: starts a process in the container. In the
    /// foreground, forwards signals to it and returns its exit code
    /// (128+signal if it was killed); with `detach`, returns 0 once it has
    /// exec'd.
    pub fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32> {
        let sub_cgroups = SubCgroups::parse(&opts.cgroups)?;
        // Blocked before the process exists, so no signal is lost.
        let forwarding = if opts.detach {
            None
        } else {
            Some(signals::Forwarder::block()?)
        };
        // Shared, until the process is in the cgroups: a `delete` meanwhile
        // would miss it and fail to remove them.
        let dir = ContainerDir::open(&self.root, id, false)?;
        let st = dir.load()?;
        check_status(id, st.live_status(&dir), opts.ignore_paused)?;
        let plan = exec_process(&st, opts)?;
        for w in &plan.warnings {
            tracing::warn!("{w}");
        }
        // Pin init: its pidfd, taken while its start time matches.
        let stopped = || Error::WrongState {
            id: id.into(),
            status: Status::Stopped.to_string(),
            reason: "cannot exec in a stopped container".into(),
        };
        let init = wait::pidfd(st.pid, Some(st.pid_start_time)).map_err(|_| stopped())?;
        // An init on its way out (waiting for the rest of its pid
        // namespace to go) has no namespaces or root any more.
        let exiting = |e: Error| match &e {
            Error::Io { cause, .. }
                if matches!(
                    cause.raw_os_error(),
                    Some(libc::ENOENT | libc::EINVAL | libc::ESRCH)
                ) =>
            {
                Error::WrongState {
                    id: id.into(),
                    status: Status::Stopped.to_string(),
                    reason: format!(
                        "cannot exec in a stopped container (its init is exiting: {e})"
                    ),
                }
            }
            _ => e,
        };
        let namespaces = namespaces_to_join(st.pid).map_err(exiting)?;
        // Before the process exists (CVE-2019-5736): an immutable binary is
        // kept only where no process of the container can clear the flag.
        if let Some(found) = self.binary {
            let joins_userns = namespaces & libc::CLONE_NEWUSER != 0;
            if plan::binary::BinaryPlan::for_exec(found, joins_userns)
                == plan::binary::BinaryPlan::Reexec
            {
                // Our fds, the lock's too, are close-on-exec.
                crate::exe::reexec_protected()?;
            }
        }
        // runc's flag rules; an unreachable console socket fails here,
        // before any process exists. After the re-exec above, never before:
        // a connection made by the image that re-executes closes with it,
        // and a console socket that takes one connection (runc's protocol)
        // would take that empty one for the terminal.
        let console = Console::open(
            plan.terminal,
            &terminal_setting(opts),
            opts.console_socket.as_deref(),
            !opts.detach,
        )?;
        let (process_console, relay_end) = console.into_ends();
        let root = procfs::open_link(
            ProcfsBase::ProcPid(st.pid as u32),
            "root",
            OpenFlags::O_PATH | OpenFlags::O_DIRECTORY,
        )
        .ctx(|| format!("the container's root (/proc/{}/root)", st.pid))
        .map_err(exiting)?;
        // Still running now, so the pid named init all along: the root and
        // the namespace links above were init's.
        if !wait::is_running(&init) {
            return Err(stopped());
        }
        let dirs = if sub_cgroups.is_empty() {
            st.cgroup_dirs.clone()
        } else {
            let dirs = sub_cgroups.resolve(&st.cgroup_dirs, &cgroup::host_hierarchies()?)?;
            SubCgroups::check_exist(&dirs, &st.cgroup_dirs)?;
            dirs
        };
        let cgroup_joins = self.open_cgroup_joins(&dirs)?;

        // The process becomes our child when the setup process exits.
        sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1).ctx(|| "prctl(PR_SET_CHILD_SUBREAPER)")?;
        let (runtime_side, container_side) = sync::pair()?;
        let seccomp = match &plan.seccomp {
            Some(s) => Some(process::seccomp::compile_cached(s, &self.root)?),
            None => None,
        };
        let cfg = ExecConfig {
            process: &plan,
            seccomp: seccomp.as_ref(),
            init,
            namespaces,
            root,
            cgroup_joins,
            session_keyring: (!st.no_new_keyring).then(|| format!("_ses.{id}")),
            preserve_fds: opts.preserve_fds,
            console: process_console.map(|socket| ExecConsole {
                socket,
                relayed: relay_end.is_some(),
            }),
            close_in_child: [dir.lock_fd(), runtime_side.as_fd().as_raw_fd()]
                .into_iter()
                .chain(relay_end.as_ref().map(|fd| fd.as_raw_fd()))
                .collect(),
        };
        tracing::debug!("container {id}: exec {:?}", plan.args);
        let setup = process::exec::spawn(cfg, container_side)?;
        // A relayed terminal starts relaying (raw mode, the caller's size)
        // while the process waits, before it execs.
        let mut relay = None;
        let start_relay = || -> Result<()> {
            let (Some(socket), Some(forwarding)) = (&relay_end, &forwarding) else {
                return Err(Error::Other(
                    "the exec'd process sent a terminal nobody relays".into(),
                ));
            };
            relay = Some(Relay::receive(socket.as_fd(), forwarding)?);
            Ok(())
        };
        // A filter with SCMP_ACT_NOTIFY rules: its fd goes to the agent with
        // the state of the container and the exec'd process's pid.
        let listener = plan.seccomp.as_ref().and_then(|s| s.listener.clone());
        let container_state = st.oci_json(Status::Running);
        let send_listener = |pid: i32, fd: OwnedFd| -> Result<()> {
            match &listener {
                Some(l) => process::seccomp::send_to_agent(
                    &l.path,
                    pid,
                    &l.metadata,
                    container_state.clone(),
                    &fd,
                ),
                None => Err(Error::Init(
                    "a seccomp notification fd without a listenerPath".into(),
                )),
            }
        };
        let pid = started(&runtime_side, setup, dir, start_relay, send_listener)?;
        if let Some(pid_file) = &opts.pid_file {
            if let Err(e) = write_pid_file(pid_file, pid) {
                kill_and_reap(pid);
                return Err(e);
            }
        }
        Ok(match (forwarding, relay) {
            (Some(forwarding), Some(mut relay)) => relay.run(&forwarding, pid),
            (Some(forwarding), None) => forwarding.wait_for(pid),
            (None, _) => 0,
        })
    }

    /// `rootcell ps`: the host pids of the container's processes.
    pub fn ps(&self, id: &str) -> Result<Vec<i32>> {
        let dir = ContainerDir::open(&self.root, id, false)?;
        let st = dir.load()?;
        // Rootless without cgroups: init is all we know of.
        if st.cgroup_dirs.is_empty() {
            let alive = st.live_status(&dir) != Status::Stopped;
            return Ok(if alive { vec![st.pid] } else { Vec::new() });
        }
        Ok(cgroup::pids(&st.cgroup_dirs))
    }

    /// The file of each directory the setup process joins it by (`tasks`
    /// or `cgroup.procs`, `cgroup::open_join_file`), open for writing.
    /// Rootless, a cgroup we may not write to is skipped, as at create.
    fn open_cgroup_joins(&self, dirs: &[PathBuf]) -> Result<Vec<cgroup::JoinFile>> {
        let mut out = Vec::new();
        for dir in dirs {
            match cgroup::open_join_file(dir) {
                Ok(fd) => out.push(fd),
                Err(Error::Io { cause, .. })
                    if self.rootless
                        && matches!(
                            cause.raw_os_error(),
                            Some(libc::EACCES | libc::EPERM | libc::EROFS)
                        ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// runc's rules: not in a stopped container, nor in a paused one unless
/// asked. A created container (init waiting for `start`) is fine.
fn check_status(id: &str, status: Status, ignore_paused: bool) -> Result<()> {
    let reason = match status {
        Status::Created | Status::Running => return Ok(()),
        Status::Paused if ignore_paused => return Ok(()),
        Status::Paused => "cannot exec in a paused container (use --ignore-paused to override)",
        Status::Stopped => "cannot exec in a stopped container",
        Status::Creating => "cannot exec in a container that is still being created",
    };
    Err(Error::WrongState {
        id: id.into(),
        status: status.to_string(),
        reason: reason.into(),
    })
}

/// The process to run, planned by the container's planner.
fn exec_process(st: &ContainerState, opts: &ExecOptions) -> Result<ProcessPlan> {
    // The container's config gives what applies to all its processes
    // (seccomp, personality, the id mappings the user is checked against).
    let config = spec::read_config(&st.bundle)?;
    let host = super::host::lsm_host_facts();
    match &opts.process_file {
        Some(file) => {
            let process = spec::load_process(file)?;
            // Name the file's fields as the file has them.
            plan::process_plan(&config, &process, &host).map_err(|e| match e {
                Error::InvalidSpec { field, reason } => Error::spec(
                    format!(
                        "{}: {}",
                        file.display(),
                        field.strip_prefix("process.").unwrap_or(&field)
                    ),
                    reason,
                ),
                other => other,
            })
        }
        None => {
            let base = config.process().clone().ok_or_else(|| {
                Error::spec(
                    format!("{}: process", st.bundle.join(spec::CONFIG_FILE).display()),
                    "is missing: exec takes its defaults from it (or use --process)",
                )
            })?;
            plan::process_plan(&config, &opts.process.apply(base)?, &host)
        }
    }
}

/// What asks for the process's terminal, for messages: `--tty`, or the
/// `terminal` of a `--process` file (which decides alone: runc ignores
/// `--tty` then).
fn terminal_setting(opts: &ExecOptions) -> String {
    match &opts.process_file {
        Some(file) => format!("{}: terminal", file.display()),
        None => "--tty".into(),
    }
}

/// The `CLONE_NEW*` flags of the namespaces `pid` does not share with us
/// (compared by their `ns/` links, in the private procfs). A kind this
/// kernel lacks has no link and is skipped.
fn namespaces_to_join(pid: i32) -> Result<i32> {
    let mut flags = 0;
    for ns in NAMESPACES {
        let link = format!("ns/{}", ns.proc_name());
        let theirs = match procfs::readlink(ProcfsBase::ProcPid(pid as u32), &link) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            other => other.ctx(|| format!("/proc/{pid}/{link}"))?,
        };
        let ours =
            procfs::readlink(ProcfsBase::ProcSelf, &link).ctx(|| format!("/proc/self/{link}"))?;
        if theirs != ours {
            flags |= ns.clone_flag();
        }
    }
    Ok(flags)
}

/// Waits until the process has exec'd: end-of-file on the socket (the
/// process's end is close-on-exec, the setup process has exited). Returns
/// its pid. The container's lock goes as soon as the process exists (it
/// is in the cgroups then; in a frozen one it only gets there once
/// thawed). `on_terminal` runs when the process has sent its pty master to
/// the relay; the process goes on once it returns (or fails if it failed).
/// On failure both processes have exited or are killed, and are reaped:
/// nothing is left behind.
/// Answers a step the runtime did for the exec'd process: `Continue`, or
/// `Abort` with the error, which becomes the exec's failure. A process that
/// is gone reads nothing; end-of-file follows.
fn reply(chan: &Channel, step: Result<()>, failure: &mut Option<Error>) {
    let answer = match step {
        Ok(()) => ToContainer::Continue,
        Err(e) => {
            let message = e.to_string();
            *failure = Some(e);
            ToContainer::Abort { message }
        }
    };
    let _ = chan.send(&answer);
}

fn started(
    chan: &Channel,
    setup: i32,
    lock: ContainerDir,
    mut on_terminal: impl FnMut() -> Result<()>,
    mut on_listener: impl FnMut(i32, OwnedFd) -> Result<()>,
) -> Result<i32> {
    let mut lock = Some(lock);
    let mut pid = None;
    let mut failure = None;
    let mut pending_listener = None;
    loop {
        let (msg, mut fds) = match chan.recv_with_fds::<ToRuntime>() {
            Ok(Some((msg, fds))) => (Ok(Some(msg)), fds),
            Ok(None) => (Ok(None), Vec::new()),
            Err(e) => (Err(e), Vec::new()),
        };
        match msg {
            Ok(Some(ToRuntime::SeccompListener)) => match (pid, fds.pop()) {
                (Some(p), Some(fd)) => reply(chan, on_listener(p, fd), &mut failure),
                // The process may get here before its parent has sent its
                // pid: hold the fd (the process waits for the answer).
                (None, Some(fd)) => pending_listener = Some(fd),
                (_, None) => reply(
                    chan,
                    Err(Error::Init(
                        "the seccomp notification fd did not arrive".into(),
                    )),
                    &mut failure,
                ),
            },
            Ok(Some(ToRuntime::ExecPid { pid: p })) => {
                pid = Some(p);
                lock = None;
                if let Some(fd) = pending_listener.take() {
                    reply(chan, on_listener(p, fd), &mut failure);
                }
            }
            Ok(Some(ToRuntime::TerminalSent)) => {
                reply(chan, on_terminal(), &mut failure);
            }
            // The first failure is the cause; later ones follow from it.
            Ok(Some(ToRuntime::Failed { message, .. })) => {
                failure.get_or_insert(Error::Other(message));
            }
            Ok(Some(other)) => {
                failure = Some(Error::Other(format!(
                    "unexpected message from the exec setup: {other:?}"
                )))
            }
            Ok(None) => break,
            Err(e) => {
                failure = Some(e);
                let _ = wait::signal(setup, libc::SIGKILL);
                break;
            }
        }
    }
    // The setup process exits right after sending the pid (or on failure);
    // once it is reaped, the process is our child.
    wait::reap(setup);
    drop(lock);
    match (pid, failure) {
        (Some(pid), None) => Ok(pid),
        (pid, failure) => {
            if let Some(pid) = pid {
                kill_and_reap(pid);
            }
            Err(failure.unwrap_or_else(|| {
                Error::Other("the exec setup process exited before starting the process".into())
            }))
        }
    }
}

/// SIGKILLs and reaps our child `pid` (not reaped yet, so the pid is still
/// its own).
fn kill_and_reap(pid: i32) {
    let _ = wait::signal(pid, libc::SIGKILL);
    wait::reap(pid);
}
