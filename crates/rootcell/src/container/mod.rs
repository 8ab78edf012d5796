//! The OCI lifecycle operations that the CLI exposes: create, start, run,
//! state, kill, delete, list, exec, ps, pause, resume, events, update. Each
//! one is spec → plan → execute → state.

mod console;
mod create;
mod events;
mod exec;
mod host;
mod pause;
mod relay;
pub(crate) mod signals;
mod update;
mod wait;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::cgroup;
use crate::error::{Error, IoContext, Result};
use crate::hooks::{self, HookKind};
use crate::plan::{self, Plan, PlanOptions};
use crate::process;
use crate::process::sync::{Channel, ToContainer, ToRuntime};
use crate::spec::Bundle;
use crate::state::{self, ContainerDir, ContainerState, Status, EXEC_FIFO};

use create::{continue_or_abort, hand_listener_to_agent, write_pid_file};
pub use exec::ExecOptions;
pub use signals::parse_signal;

/// The runtime: where its state lives and how it was invoked.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
    /// Running without root on the host: cgroups are best effort.
    pub rootless: bool,
    /// What protects the binary this process runs from, as
    /// `exe::ensure_protected` found it at start; `create` and `exec` decide
    /// from it whether to re-execute first (`plan::binary`). None: not
    /// checked (a library caller, whose binary is its own business).
    pub binary: Option<crate::plan::binary::Protection>,
}

/// Flags of `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Sockets passed by systemd socket activation (`LISTEN_FDS`): fds
    /// 3..3+N go to the container, before the `--preserve-fds` ones, and
    /// its process gets `LISTEN_FDS=N` and `LISTEN_PID=1`, as with runc.
    pub listen_fds: u32,
    /// `--isolation` (None: the config's annotation, else oci).
    pub isolation: Option<crate::plan::Isolation>,
}

/// A container between `create` and the runtime's exit.
struct Created {
    dir: ContainerDir,
    state: ContainerState,
    channel: Channel,
    /// Foreground `run` with a terminal: the runtime's end of the socket
    /// init sent the pty master on.
    relay: Option<OwnedFd>,
    /// Where a notifying seccomp filter's fd goes: under `run`, init loads
    /// the filter after the start, right before `execve`.
    listener: Option<crate::plan::seccomp::SeccompListener>,
    /// What init does after its setup, for `run`'s `release`.
    next: InitNext,
}

/// Where a created container's init stands once `create` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InitNext {
    /// It waits for `Start` on the sync socket (`StartSignal::Socket`),
    /// or for the exec fifo to be opened (`create`).
    WaitsForStart,
    /// It reported ready and goes on to announce its exec.
    GoesOn,
    /// It announced its exec already: without a start signal that one
    /// message is also its readiness (`final_steps`).
    Execs,
}

impl Runtime {
    /// The default state root: `/run/rootcell` for root, else
    /// `$XDG_RUNTIME_DIR/rootcell`. As runc: root in a user namespace
    /// other than the initial one whose `$USER` is not `root` counts as
    /// not root when `$XDG_RUNTIME_DIR` is set — rootless buildah and
    /// podman run the runtime as their namespace's root without `--root`,
    /// and `/run` is not theirs.
    pub fn default_root() -> PathBuf {
        let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
        if rustix::process::geteuid().is_root() {
            let user_is_root = std::env::var_os("USER").is_some_and(|u| u == "root");
            match xdg {
                Some(dir) if !user_is_root && process::ids::in_user_namespace() => {
                    return Path::new(&dir).join("rootcell")
                }
                _ => return PathBuf::from("/run/rootcell"),
            }
        }
        match xdg {
            Some(dir) => Path::new(&dir).join("rootcell"),
            None => std::env::temp_dir()
                .join(format!("rootcell-{}", rustix::process::geteuid().as_raw())),
        }
    }

    /// `rootcell create`: everything up to the user process, which waits.
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<()> {
        let mut created = self.create_container(id, opts, true, false)?;
        created.state.status = Status::Created;
        // Dropping `created` unlocks the directory; init waits on the fifo.
        created.dir.save(&created.state)
    }

    /// `rootcell start`: releases a created container's process.
    pub fn start(&self, id: &str) -> Result<()> {
        let dir = ContainerDir::open(&self.root, id, true)?;
        let mut st = dir.load()?;
        let status = st.live_status(&dir);
        if status != Status::Created {
            // An init that died after `create` returned left its error.
            let reason = match dir.init_error() {
                Some(e) if status == Status::Stopped => {
                    format!("the container's init failed after create: {e}")
                }
                _ => "only a created container can be started".into(),
            };
            return Err(Error::WrongState {
                id: id.into(),
                status: status.to_string(),
                reason,
            });
        }
        let failed = || {
            Error::Init(match dir.init_error() {
                Some(e) => format!("the container's process failed before exec: {e}"),
                None => {
                    "the container's process failed before exec (a startContainer hook failed?)"
                        .into()
                }
            })
        };
        // Pinned before the release below: once the reader is open, init
        // may exec, exit and be reaped (by an engine's subreaper, conmon)
        // before we could look.
        let init = wait::pidfd_checked(st.pid, st.pid_start_time).map_err(|_| failed())?;
        let fifo = dir.path.join(EXEC_FIFO);
        // Opening the reader releases init, which is blocked opening the
        // writer. Non-blocking, so a dead init cannot hang us: its pidfd
        // is watched alongside.
        let reader = rustix::fs::open(
            &fifo,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("{}", fifo.display()))?;
        let released = wait::exec_fifo(&reader, &init).ctx(|| format!("{}", fifo.display()))?;
        std::fs::remove_file(&fifo).ctx(|| format!("{}", fifo.display()))?;
        if !released {
            return Err(failed());
        }
        st.status = Status::Running;
        dir.save(&st)?;
        self.poststart(&st)
    }

    /// `rootcell run`: create and start; in the foreground, wait and return
    /// the container's exit code (128+signal if killed), then delete it
    /// unless `keep`.
    pub fn run(&self, id: &str, opts: &CreateOptions, detach: bool, keep: bool) -> Result<i32> {
        let forwarding = if detach {
            None
        } else {
            Some(signals::Forwarder::block()?)
        };
        let mut created = self.create_container(id, opts, false, !detach)?;
        // The terminal relay starts (raw mode, size) before the process.
        let started = self
            .start_relay(&mut created, forwarding.as_ref())
            .and_then(|relay| self.release(&mut created).map(|()| relay));
        let relay = match started {
            Ok(relay) => relay,
            Err(e) => {
                let Created { dir, state, .. } = created;
                // Init is our child (we are its subreaper), so its pid
                // cannot be reused before we reap it: stop it if it still
                // waits for `Start`, reap it, then clean up as `delete`
                // would.
                let _ = wait::signal(state.pid, libc::SIGKILL);
                wait::reap(state.pid);
                let _ = self.destroy(dir, &state, Status::Stopped);
                return Err(e);
            }
        };
        let Some(forwarding) = forwarding else {
            return Ok(0);
        };
        crate::phase::mark("runtime: released");
        let Created { dir, state, .. } = created;
        drop(dir); // others may `kill` or `state` us while we wait
        let code = match relay {
            Some(mut relay) => relay.run(&forwarding, state.pid),
            None => forwarding.wait_for(state.pid),
        };
        crate::phase::mark("runtime: container exited");
        if !keep {
            let dir = ContainerDir::open(&self.root, id, true)?;
            let st = dir.load()?;
            // Init is reaped: only what it left behind is killed.
            self.destroy(dir, &st, Status::Stopped)?;
        }
        Ok(code)
    }

    /// Foreground `run` with a terminal: takes the pty master init sent
    /// (before it reported ready) and starts relaying the caller's
    /// terminal to it.
    fn start_relay(
        &self,
        created: &mut Created,
        forwarding: Option<&signals::Forwarder>,
    ) -> Result<Option<relay::Relay>> {
        let (Some(socket), Some(forwarding)) = (created.relay.take(), forwarding) else {
            return Ok(None);
        };
        relay::Relay::receive(socket.as_fd(), forwarding).map(Some)
    }

    /// `run`'s start: tells init to go on, waits until startContainer hooks
    /// ran and exec is next, records "running", runs poststart hooks.
    fn release(&self, created: &mut Created) -> Result<()> {
        if created.next == InitNext::WaitsForStart {
            created.channel.send(&ToContainer::Start)?;
        }
        let announced = match created.next {
            InitNext::Execs => Some((ToRuntime::Exec, Vec::new())),
            InitNext::WaitsForStart | InitNext::GoesOn => {
                created.channel.recv_with_fds::<ToRuntime>()?
            }
        };
        match announced {
            Some((ToRuntime::Exec, _)) => {}
            // A notifying filter, loaded right before execve: its handoff
            // says that exec is next.
            Some((ToRuntime::SeccompListener, mut fds)) => {
                let sent =
                    hand_listener_to_agent(fds.pop(), created.listener.as_ref(), &created.state);
                continue_or_abort(&created.channel, sent)?;
            }
            Some((ToRuntime::Failed { message, .. }, _)) => return Err(Error::Init(message)),
            _ => {
                return Err(Error::Init(
                    "the container's init exited before exec".into(),
                ))
            }
        }
        created.state.status = Status::Running;
        created.dir.save(&created.state)?;
        self.poststart(&created.state)
    }

    /// `rootcell plan`: what `create` would do for `bundle`, without doing
    /// anything.
    pub fn plan(
        &self,
        bundle: &Path,
        no_pivot: bool,
        isolation: Option<crate::plan::Isolation>,
    ) -> Result<Plan> {
        let bundle = Bundle::load(bundle)?;
        let (host, _) = host::host_facts(&bundle, "<id>", self.rootless)?;
        // What `create` would decide with this binary.
        let binary = crate::exe::current_protection()?;
        plan::build(
            &bundle,
            &host,
            PlanOptions {
                no_pivot,
                isolation,
                binary: Some(plan::binary::BinaryPlan::for_container(
                    &bundle.spec,
                    binary,
                )),
                ..PlanOptions::default()
            },
        )
    }

    /// `rootcell state`.
    pub fn state(&self, id: &str) -> Result<serde_json::Value> {
        let dir = ContainerDir::open(&self.root, id, false)?;
        let st = dir.load()?;
        Ok(st.oci_json(st.live_status(&dir)))
    }

    /// `rootcell list`: every container with its live status.
    pub fn list(&self) -> Result<Vec<(ContainerState, Status)>> {
        let mut out = Vec::new();
        for id in state::list_ids(&self.root)? {
            // A container deleted meanwhile is simply not listed; one whose
            // directory or state fails the owner and mode checks is not
            // either, with a warning.
            let loaded = ContainerDir::open(&self.root, &id, false)
                .and_then(|dir| dir.load().map(|st| (dir, st)));
            let (dir, st) = match loaded {
                Ok(found) => found,
                Err(Error::NotFound(_)) => continue,
                Err(e) => {
                    tracing::warn!("{e}");
                    eprintln!("rootcell: warning: {e}");
                    continue;
                }
            };
            let status = st.live_status(&dir);
            out.push((st, status));
        }
        Ok(out)
    }

    /// `rootcell kill`: a signal to init, or with `all` to every process of
    /// the container.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let dir = ContainerDir::open(&self.root, id, false)?;
        let st = dir.load()?;
        let status = st.live_status(&dir);
        // `--all` reaches what is left in the cgroup even once init is
        // gone (no pid namespace), and succeeds on a stopped container, as
        // runc 1.1 does.
        if all && (pause::signal_all(&st, signal) || status == Status::Stopped) {
            return Ok(());
        }
        if status == Status::Stopped {
            return Err(Error::WrongState {
                id: id.into(),
                status: status.to_string(),
                reason: "container not running".into(),
            });
        }
        wait::signal_checked(st.pid, st.pid_start_time, signal)
            .ctx(|| format!("sending signal {signal} to {id}"))?;
        // A frozen init only dies once thawed; runc thaws for SIGKILL only.
        if status == Status::Paused && signal == libc::SIGKILL {
            pause::thaw_for_kill(&st);
        }
        Ok(())
    }

    /// `rootcell delete`.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let dir = match ContainerDir::open(&self.root, id, true) {
            Ok(dir) => dir,
            // As runc: a forced delete of a container that does not exist
            // (any more) succeeds, silently. Engines clean up this way.
            Err(Error::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let st = match dir.load() {
            Ok(st) => st,
            // A create killed before its first save: nothing but the
            // directory exists (we hold its lock, so no create runs).
            Err(Error::NotFound(_)) => return dir.remove(),
            Err(e) => return Err(e),
        };
        let status = st.live_status(&dir);
        if matches!(status, Status::Running | Status::Paused) && !force {
            return Err(Error::WrongState {
                id: id.into(),
                status: status.to_string(),
                reason: "stop it first or use --force".into(),
            });
        }
        self.destroy(dir, &st, status)
    }

    /// Poststart hooks, after the process has started. Each runs; a
    /// failure is a warning and the container keeps running, as the
    /// runtime spec says.
    fn poststart(&self, st: &ContainerState) -> Result<()> {
        let Some(h) = &st.hooks else { return Ok(()) };
        let json = st.oci_json(Status::Running).to_string();
        warn_all(hooks::run_all(HookKind::Poststart, h, &json));
        Ok(())
    }

    /// Kills whatever is left, removes cgroups, runs poststop hooks and
    /// forgets the container. `status` is the one just read: a stopped
    /// container's init is gone already (nothing to signal, thaw or wait
    /// for).
    fn destroy(&self, dir: ContainerDir, st: &ContainerState, status: Status) -> Result<()> {
        if status != Status::Stopped {
            let _ = wait::signal_checked(st.pid, st.pid_start_time, libc::SIGKILL);
            // A paused container's processes die only once thawed (v1).
            pause::thaw_for_kill(st);
            wait::until_gone(st.pid, Some(st.pid_start_time));
        }
        crate::phase::mark("runtime: processes gone");
        // Without a pid namespace, init's death leaves the rest running.
        // A process left in a cgroup makes its rmdir fail with EBUSY, so the
        // cgroups are looked into only then (with a pid namespace they are
        // empty by now: init's death killed the rest).
        match cgroup::remove(&st.cgroup_dirs) {
            Err(Error::Io { cause, .. }) if cause.raw_os_error() == Some(libc::EBUSY) => {
                pause::thaw_for_kill(st);
                wait::kill_all(&cgroup::pids(&st.cgroup_dirs));
                cgroup::remove(&st.cgroup_dirs)?;
            }
            removed => removed?,
        }
        crate::phase::mark("runtime: cgroups removed");
        // Each one runs; a failure is a warning (runtime spec).
        if let Some(h) = &st.hooks {
            let json = st.oci_json(Status::Stopped).to_string();
            warn_all(hooks::run_all(HookKind::Poststop, h, &json));
        }
        let removed = dir.remove();
        crate::phase::mark("runtime: state removed");
        removed
    }
}

/// Failures that do not fail the operation (poststart and poststop hooks):
/// in the `--log` file and on stderr.
fn warn_all(errors: Vec<Error>) {
    for e in errors {
        tracing::warn!("{e}");
        eprintln!("rootcell: warning: {e}");
    }
}
