//! The sandbox's processes, host side and command side.
//!
//! ```text
//! rootcell sandbox (host side)
//!   └─clone3(new mnt, pid, ipc, uts[, net]; pidfd) ─► init (pid 1, init.rs):
//!        joins the run cgroup, new cgroup namespace, the layout, pivot_root,
//!        hostname, lo up
//!        └─fork ─► the command (pid 2, `command` below): stdio, no
//!                  capabilities, user and groups, no_new_privs, cwd,
//!                  signals reset, fds closed, execve
//!        init reaps every child, forwards signals to the command, and
//!        when it ends writes its wait status into the status pipe and
//!        exits (which ends everything else in the pid namespace)
//! ```
//! One `clone3` makes init directly in its namespaces (no stage 1 that
//! only forks and exits): the runtime gets init's pidfd from that call.
//! The run cgroup is joined by init itself, before anything of the
//! sandbox is set up and before the cgroup namespace is made, so that the
//! namespace's root is the run cgroup. Errors of init and of the command
//! before `execve` go into the error pipe, as text; the runtime reads it
//! when init has exited.

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use rustix::pipe::{pipe_with, PipeFlags};

use super::SandboxPlan;
use crate::cgroup::CgroupJoin;
use crate::error::{Error, IoContext, Result};
use crate::plan::{Namespace, ProcessPlan};
use crate::process::{prepare, sync, sys, Never};
use crate::rootfs::StagingHandle;

/// The command's standard streams, opened by the runtime (as the caller,
/// on the host) before the sandbox exists. None: inherited.
pub struct CommandIo {
    pub stdin: Option<OwnedFd>,
    /// stdout and stderr (`--output`).
    pub output: Option<OwnedFd>,
}

/// What the runtime holds of a started sandbox.
pub struct Spawned {
    /// Init's pid in the runtime's pid namespace, and its pidfd.
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// Read end: init writes the command's wait status (i32, native
    /// endian) before it exits.
    pub status: OwnedFd,
    /// Read end: the error init or the command died of, as text.
    pub errors: OwnedFd,
    /// With `--filesCountLimit`/`--filesSizeLimit`: init's "set up" (read
    /// one byte; end-of-file: init failed) and the runtime's "go on" (write
    /// one byte), so that the usage baseline is taken between the two.
    pub setup_done: Option<(OwnedFd, OwnedFd)>,
    /// Rootless with a tmpfs staging: the detached tmpfs init made in its
    /// user namespace (an unprivileged runtime cannot make one on the
    /// host), received over the sync socket.
    pub staging: Option<OwnedFd>,
}

/// Everything the sandbox's side needs, given across the `clone3`.
pub(super) struct ChildSide<'a> {
    pub plan: &'a SandboxPlan,
    /// None: init makes the staging tmpfs itself, in its user namespace,
    /// and sends it to the runtime over `user_ns`.
    pub staging: Option<StagingHandle>,
    /// Rootless: init's end of the socket the runtime says "maps written"
    /// on (and init sends the staging tmpfs back on).
    pub user_ns: Option<sync::Channel>,
    pub io: CommandIo,
    pub cgroup_joins: Vec<crate::cgroup::JoinFile>,
    pub status: OwnedFd,
    /// The error pipe's write end: owned by `spawn`'s frame in the child,
    /// which never returns, so that it is still open when `run_child`
    /// reports an error that unwound `init`.
    pub errors: RawFd,
    /// Write "set up", read "go on" (see `Spawned::setup_done`).
    pub setup_sync: Option<(OwnedFd, OwnedFd)>,
}

/// Starts the sandbox: init in its new namespaces, and in the run cgroup
/// (`cgroup`; init joins the v1 hierarchies first thing). `setup_sync`:
/// init waits for the runtime between its setup and the command
/// (`Spawned::setup_done`).
///
/// Rootless (the plan creates a user namespace): the same `clone3` makes
/// the user namespace too, so every other namespace of init is owned by
/// it. The runtime writes init's id maps from the host side (as the OCI
/// face does, `ids::write_maps`) and then tells init over a socket; init
/// waits for that before anything else. `staging` None: init makes the
/// staging tmpfs itself once it has its maps and sends it back
/// (`Spawned::staging`).
pub fn spawn(
    plan: &SandboxPlan,
    staging: Option<StagingHandle>,
    io: CommandIo,
    mut cgroup: CgroupJoin,
    setup_sync: bool,
) -> Result<Spawned> {
    let ns = &plan.plan.namespaces;
    let user_ns = ns.creates(Namespace::User);
    if staging.is_none() && !user_ns {
        return Err(Error::Other(
            "the sandbox's staging is made by init only in a user namespace".into(),
        ));
    }
    // The cgroup namespace comes later, from init, once it is in the run
    // cgroup.
    let flags = ns
        .create
        .iter()
        .filter(|n| !matches!(n, Namespace::Cgroup | Namespace::Time))
        .fold(0u64, |acc, n| acc | n.clone_flag() as u64);
    let (host_ns, init_ns) = if user_ns {
        let (a, b) = sync::pair()?;
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    let wants_staging = staging.is_none();
    let (status_read, status_write) = pipe_with(PipeFlags::CLOEXEC).ctx(|| "pipe")?;
    let (errors_read, errors_write) = pipe_with(PipeFlags::CLOEXEC).ctx(|| "pipe")?;
    let (host_sync, init_sync) = if setup_sync {
        let (ready_read, ready_write) = pipe_with(PipeFlags::CLOEXEC).ctx(|| "pipe")?;
        let (go_read, go_write) = pipe_with(PipeFlags::CLOEXEC).ctx(|| "pipe")?;
        (Some((ready_read, go_write)), Some((ready_write, go_read)))
    } else {
        (None, None)
    };
    let v2_dir = cgroup.v2_dir.take();
    let mut born_in_v2 = v2_dir.is_some();
    let cloned = match sys::clone_into_namespaces(flags, v2_dir.as_ref().map(|d| d.as_fd())) {
        // An older kernel, or a cgroup it will not take at birth: init
        // joins it by writing `cgroup.procs` instead.
        Err(e) if v2_dir.is_some() => {
            tracing::debug!("sandbox: CLONE_INTO_CGROUP refused ({e}), joining by cgroup.procs");
            born_in_v2 = false;
            sys::clone_into_namespaces(flags, None)
        }
        other => other,
    };
    drop(v2_dir);
    let cgroup_joins = cgroup.files_to_write(born_in_v2);
    match cloned.ctx(|| "clone3 of the sandbox's init")? {
        (sys::Forked::Child, _) => {
            drop(status_read);
            drop(errors_read);
            drop(host_sync);
            drop(host_ns);
            let errors_fd = errors_write.as_raw_fd();
            let child = ChildSide {
                plan,
                staging,
                user_ns: init_ns,
                io,
                cgroup_joins,
                status: status_write,
                errors: errors_fd,
                setup_sync: init_sync,
            };
            // `errors_write` stays open: this frame never returns.
            run_child(errors_fd, || super::init::init(child))
        }
        (sys::Forked::Parent(pid), pidfd) => {
            let pidfd = pidfd.ok_or_else(|| Error::Other("clone3 gave no pidfd".into()))?;
            drop(init_sync);
            drop(init_ns);
            let mut spawned = Spawned {
                pid,
                pidfd,
                status: status_read,
                errors: errors_read,
                setup_done: host_sync,
                staging: None,
            };
            if let Some(channel) = host_ns {
                match map_ids(plan, pid, &channel, wants_staging) {
                    Ok(staging) => spawned.staging = staging,
                    Err(e) => {
                        // Init waits for the maps: it ends with its socket.
                        let _ = rustix::process::pidfd_send_signal(
                            &spawned.pidfd,
                            rustix::process::Signal::KILL,
                        );
                        let _ = rustix::process::waitid(
                            rustix::process::WaitId::PidFd(spawned.pidfd.as_fd()),
                            rustix::process::WaitIdOptions::EXITED,
                        );
                        // What init said is the better error.
                        return Err(match super::read_errors(&spawned.errors) {
                            Some(message) => Error::Other(message),
                            None => e,
                        });
                    }
                }
            }
            Ok(spawned)
        }
    }
}

/// The runtime's side of a rootless start: writes init's id maps, tells
/// init, and receives the staging tmpfs when init makes it.
fn map_ids(
    plan: &SandboxPlan,
    pid: i32,
    channel: &sync::Channel,
    wants_staging: bool,
) -> Result<Option<OwnedFd>> {
    let ns = &plan.plan.namespaces;
    crate::process::ids::write_maps(pid, &ns.uid_mappings, &ns.gid_mappings)
        .map_err(|e| Error::Other(format!("the sandbox's user namespace: {e}")))?;
    channel.send(&MAPS_WRITTEN)?;
    if !wants_staging {
        return Ok(None);
    }
    let Some((_, mut fds)) = channel.recv_with_fds::<String>()? else {
        return Err(Error::Other(
            "the sandbox's init ended before it made the staging".into(),
        ));
    };
    match fds.pop() {
        Some(fd) if fds.is_empty() => Ok(Some(fd)),
        _ => Err(Error::Other(
            "the sandbox's init sent no staging filesystem".into(),
        )),
    }
}

/// The runtime's message on the rootless sync socket.
pub(super) const MAPS_WRITTEN: &str = "maps written";

/// Runs the setup of a sandbox process: an error or a panic is written
/// into the error pipe (`errors`), and the process exits 1.
pub(super) fn run_child(errors: RawFd, f: impl FnOnce() -> Result<Never>) -> ! {
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let message = match outcome {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => name_flags(&e.to_string()),
        Err(panic) => format!(
            "internal error in the sandbox's setup: {}",
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into())
        ),
    };
    // SAFETY: the error pipe's write end stays open until this process
    // exits (it is only closed by execve, which did not happen).
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(errors) };
    let _ = rustix::io::write(fd, message.as_bytes());
    sys::exit_now(1)
}

/// The engine's errors name OCI fields; the sandbox's user gave flags.
fn name_flags(message: &str) -> String {
    const FIELDS: [(&str, &str); 5] = [
        ("process.cwd", "--dir"),
        ("process.args[0]", "command"),
        ("process.user.uid", "--uid"),
        ("process.user.gid", "--gid"),
        ("process.env", "environment"),
    ];
    FIELDS
        .iter()
        .find_map(|(field, flag)| {
            message
                .strip_prefix(field)
                .map(|rest| format!("{flag}{rest}"))
        })
        .unwrap_or_else(|| message.to_string())
}

/// The command (pid 2), after init's fork: stdio, then the engine's last
/// steps (`prepare::prepare_process`, `prepare::finish`) as the plan's
/// process says, with the command's own bytes for `execve`.
pub(super) fn command(plan: &SandboxPlan, io: CommandIo, errors: RawFd) -> Result<Never> {
    if let Some(stdin) = &io.stdin {
        rustix::stdio::dup2_stdin(stdin).ctx(|| "--input: dup2")?;
    }
    if let Some(output) = &io.output {
        rustix::stdio::dup2_stdout(output).ctx(|| "--output: dup2")?;
        rustix::stdio::dup2_stderr(output).ctx(|| "--output: dup2")?;
    }
    drop(io);
    crate::phase::mark("command started");
    let p = &plan.plan.process;
    prepare::prepare_process(p)?;
    let mut life = CommandLifecycle { plan, errors };
    match prepare::finish(p, None, None, 0, &mut life)? {}
}

struct CommandLifecycle<'a> {
    plan: &'a SandboxPlan,
    errors: RawFd,
}

impl prepare::Lifecycle for CommandLifecycle<'_> {
    /// The error pipe stays until `execve` (close-on-exec), so that a
    /// failing `execve` is still reported.
    fn keep(&self) -> Vec<RawFd> {
        vec![self.errors]
    }

    fn resolve_program(&mut self, p: &ProcessPlan) -> Result<sys::ExecArgs> {
        let _ = p;
        exec_args(&self.plan.command, &self.plan.env)
    }
}

/// `execve`'s arguments from the command and environment as the caller
/// gave them (any bytes but NUL), `args[0]` looked up in the PATH of that
/// environment (or the default one).
fn exec_args(command: &[OsString], env: &[(OsString, OsString)]) -> Result<sys::ExecArgs> {
    let program = command
        .first()
        .ok_or_else(|| Error::usage("command", "no command given"))?;
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_os_str())
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".as_ref());
    let path = prepare::find_program(program, path_var).ok_or_else(|| {
        Error::Other(format!(
            "command {:?}: no such executable in the sandbox (PATH={})",
            program.to_string_lossy(),
            path_var.to_string_lossy()
        ))
    })?;
    let cstr = |bytes: Vec<u8>, what: &str| {
        CString::new(bytes).map_err(|_| Error::Other(format!("{what}: contains a NUL byte")))
    };
    let args = command
        .iter()
        .map(|a| cstr(a.as_bytes().to_vec(), "command"))
        .collect::<Result<Vec<_>>>()?;
    let env = env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstr(kv, "environment")
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(sys::ExecArgs::new(
        cstr(path.into_os_string().into_vec(), "command")?,
        args,
        env,
    ))
}

/// Reads one byte from a pipe: false at end-of-file (the writer is gone).
pub fn wait_byte(fd: impl AsFd) -> bool {
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(fd.as_fd(), &mut byte) {
            Ok(n) => return n == 1,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
}

/// Writes all of `bytes` to a pipe (retrying on EINTR).
pub fn write_all(fd: impl AsFd, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd.as_fd(), bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_fields_become_flags() {
        assert_eq!(
            name_flags("process.cwd /nope: No such file or directory (os error 2)"),
            "--dir /nope: No such file or directory (os error 2)"
        );
        assert_eq!(name_flags("something else"), "something else");
    }
}
