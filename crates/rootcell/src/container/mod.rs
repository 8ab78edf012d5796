//! The OCI lifecycle operations that the CLI exposes: create, start, run,
//! state, kill, delete, list, exec, ps, pause, resume, events, update. Each
//! one is spec → plan → execute → state.

mod console;
mod events;
mod exec;
mod host;
mod pause;
mod relay;
pub(crate) mod signals;
mod update;
mod wait;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::cgroup;
use crate::error::{Error, IoContext, Result};
use crate::hooks::{self, HookKind};
use crate::plan::{self, Isolation, Plan, PlanOptions};
use crate::process::sync::{self, Channel, ToContainer, ToRuntime};
use crate::process::{self, ids, InitConfig, StartGate};
use crate::rootfs::IdmappedMounts;
use crate::spec::Bundle;
use crate::state::{self, ContainerDir, ContainerState, Status, EXEC_FIFO};

pub use exec::ExecOptions;
pub use signals::parse_signal;

/// The runtime: where its state lives and how it was invoked.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
    /// Running without root on the host: cgroups are best effort.
    pub rootless: bool,
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
                let _ = self.destroy(dir, &state);
                return Err(e);
            }
        };
        let Some(forwarding) = forwarding else {
            return Ok(0);
        };
        let Created { dir, state, .. } = created;
        drop(dir); // others may `kill` or `state` us while we wait
        let code = match relay {
            Some(mut relay) => relay.run(&forwarding, state.pid),
            None => forwarding.wait_for(state.pid),
        };
        if !keep {
            let dir = ContainerDir::open(&self.root, id, true)?;
            let st = dir.load()?;
            self.destroy(dir, &st)?;
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
        created.channel.send(&ToContainer::Start)?;
        match created.channel.recv_with_fds::<ToRuntime>()? {
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

    /// `create`, and `run` up to the start. `fifo_gate`: the process waits
    /// for `start` on the exec fifo (create) rather than on the sync socket
    /// (run). `foreground`: a `run` without `--detach`, which relays a
    /// terminal itself.
    fn create_container(
        &self,
        id: &str,
        opts: &CreateOptions,
        fifo_gate: bool,
        foreground: bool,
    ) -> Result<Created> {
        state::validate_id(id)?;
        let bundle = Bundle::load(&opts.bundle)?;
        let isolation = crate::plan::isolation::resolve(&bundle.spec, opts.isolation)?;
        // `auto` with `--console-socket`: one connection for both attempts
        // (a listener such as containerd's accepts one); each attempt's
        // init gets a duplicate, and a failed one closes only its own.
        let shared_socket = match (isolation, &opts.console_socket) {
            (Isolation::Auto, Some(_)) => {
                match console::Console::open(
                    process_terminal(&bundle),
                    "process.terminal",
                    opts.console_socket.as_deref(),
                    foreground,
                )? {
                    console::Console::Socket(fd) => Some(fd),
                    _ => None,
                }
            }
            _ => None,
        };
        let shared = shared_socket.as_ref();
        match self.create_attempt(id, opts, &bundle, fifo_gate, foreground, shared) {
            // `--isolation auto`: full isolation was refused in one of the
            // ways chroot isolation avoids. The failed attempt is undone
            // (state dir, cgroups, processes) before the second one.
            Err(Error::IsolationRefused { what, .. }) if isolation == Isolation::Auto => {
                let line = format!("full isolation refused ({what}): using chroot isolation");
                tracing::warn!("{line}");
                eprintln!("rootcell: {line}");
                let chroot = CreateOptions {
                    isolation: Some(Isolation::Chroot),
                    ..opts.clone()
                };
                self.create_attempt(id, &chroot, &bundle, fifo_gate, foreground, shared)
            }
            // Full isolation asked for (or the default): say what would run.
            Err(Error::IsolationRefused { what, message }) if isolation == Isolation::Oci => {
                Err(Error::IsolationRefused {
                    what,
                    message: format!(
                        "{message} (full isolation is refused here: `rootcell --isolation chroot` \
                         or `--isolation auto` runs the container without it)"
                    ),
                })
            }
            other => other,
        }
    }

    /// One attempt of `create_container` with the isolation mode in `opts`.
    fn create_attempt(
        &self,
        id: &str,
        opts: &CreateOptions,
        bundle: &Bundle,
        fifo_gate: bool,
        foreground: bool,
        shared_socket: Option<&OwnedFd>,
    ) -> Result<Created> {
        cgroup::systemd::check_path(
            bundle
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.cgroups_path().as_deref()),
        )?;
        // Before anything exists: a refused flag or an unreachable console
        // socket leaves nothing behind.
        let console = match shared_socket {
            Some(fd) => console::Console::Socket(
                fd.try_clone()
                    .ctx(|| "--console-socket: duplicating the connection")?,
            ),
            None => console::Console::open(
                process_terminal(bundle),
                "process.terminal",
                opts.console_socket.as_deref(),
                foreground,
            )?,
        };
        let (init_console, relay) = console.into_ends();
        let dir = ContainerDir::create(&self.root, id)?;
        let mut undo = Undo::default();
        let launch = Launch {
            fifo_gate,
            console: init_console,
            relay: relay.as_ref().map(|fd| fd.as_raw_fd()),
        };
        match self.setup(&dir, id, opts, bundle, launch, &mut undo) {
            Ok((state, channel, listener)) => Ok(Created {
                dir,
                state,
                channel,
                relay,
                listener,
            }),
            Err(e) => {
                undo.run();
                let _ = dir.remove();
                Err(e)
            }
        }
    }

    /// Everything of `create` after the state directory exists. What it
    /// starts or creates is recorded in `undo` so a failure leaves nothing.
    fn setup(
        &self,
        dir: &ContainerDir,
        id: &str,
        opts: &CreateOptions,
        bundle: &Bundle,
        launch: Launch,
        undo: &mut Undo,
    ) -> Result<(
        ContainerState,
        Channel,
        Option<crate::plan::seccomp::SeccompListener>,
    )> {
        let (mut host, mut cg) = host::host_facts(bundle, id, self.rootless)?;
        // Recorded first: a create that fails half-way still gets undone.
        undo.cgroup_dirs = cg.dirs.clone();
        // Saved before the cgroups exist: a runtime killed from here on
        // leaves a `creating` state that `delete` can clean up from.
        let mut st = creating_state(id, bundle, opts, &cg.dirs);
        dir.save(&st)?;
        // Chroot isolation runs where the cgroup tree may be read-only or
        // not delegated, even as root: what cannot be made is skipped (and
        // said, once), and limits are refused by `apply_resources`.
        let chroot =
            crate::plan::isolation::resolve(&bundle.spec, opts.isolation)? == Isolation::Chroot;
        let best_effort = self.rootless || chroot;
        let skipped = cgroup::create(&mut cg, best_effort)?;
        if chroot && !skipped.is_empty() {
            eprintln!(
                "rootcell: {}",
                chroot_cgroup_line(&skipped, cg.dirs.is_empty())
            );
        }
        // Rootless creation may have skipped hierarchies it cannot write
        // (the state is brought up to date below, once, if so).
        host.cgroup_mounts = cg.mount_sources.clone();
        let plan = plan::build(
            bundle,
            &host,
            PlanOptions {
                no_pivot: opts.no_pivot,
                listen_fds: opts.listen_fds,
                run: !launch.fifo_gate,
                isolation: opts.isolation,
            },
        )?;
        // The mode the container runs in (`auto` has been resolved by
        // now: a chroot retry passes `chroot`), for `exec` and the rest.
        st.isolation = match plan.isolation {
            Isolation::Chroot => Isolation::Chroot,
            Isolation::Oci | Isolation::Auto => Isolation::Oci,
        };
        dir.save(&st)?;
        // Logged only, as runc does (the default spec's ambient set alone
        // gives three).
        for w in &plan.process.warnings {
            tracing::warn!("{w}");
        }
        for d in &plan.diagnostics {
            eprintln!("rootcell: {d}");
        }
        // Limits hold before any container process joins the cgroups.
        if let Some(res) = &plan.resources {
            for w in &res.warnings {
                tracing::warn!("{w}");
                eprintln!("rootcell: warning: {w}");
            }
            cgroup::apply_resources(res, &cg, best_effort)?;
        }

        let gate = if launch.fifo_gate {
            let fifo = dir.path.join(EXEC_FIFO);
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &fifo,
                rustix::fs::FileType::Fifo,
                Mode::from_raw_mode(0o600),
                0,
            )
            .ctx(|| format!("{}", fifo.display()))?;
            // Init opens it for writing after becoming process.user (a
            // mapped uid in a user namespace), without CAP_DAC_OVERRIDE:
            // writable by others, as runc makes it (0622), not umask'ed.
            rustix::fs::chmod(&fifo, Mode::from_raw_mode(0o622))
                .ctx(|| format!("{}", fifo.display()))?;
            let fd: OwnedFd =
                rustix::fs::open(&fifo, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                    .ctx(|| format!("{}", fifo.display()))?;
            StartGate::Fifo(fd)
        } else {
            StartGate::Channel
        };
        // `run` hears of every failure on the sync socket; after `create`
        // nobody reads it.
        let error_file = if launch.fifo_gate {
            Some(dir.create_init_error_file()?)
        } else {
            None
        };

        if st.cgroup_dirs != cg.dirs {
            st.cgroup_dirs = cg.dirs.clone();
            dir.save(&st)?;
        }

        // Init becomes our child when stage 1 exits, so we can wait for it.
        process::sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1)
            .ctx(|| "prctl(PR_SET_CHILD_SUBREAPER)")?;
        // Compiled here, before any container process exists: a profile
        // libseccomp refuses fails the create with nothing to undo inside.
        let seccomp = match &plan.process.seccomp {
            Some(s) => {
                tracing::debug!("container {id}: compiling the seccomp filter");
                let f = process::seccomp::compile_cached(s, &self.root)?;
                tracing::debug!(
                    "container {id}: seccomp filter compiled, {} instructions",
                    f.program.len()
                );
                Some(f)
            }
            None => None,
        };
        let (runtime_side, container_side) = sync::pair()?;
        let cfg = InitConfig {
            plan: &plan,
            hooks: bundle.spec.hooks().as_ref(),
            hook_state: bundle
                .spec
                .hooks()
                .as_ref()
                .map(|_| st.oci_json(Status::Creating)),
            gate,
            session_keyring: (!opts.no_new_keyring).then(|| format!("_ses.{id}")),
            preserve_fds: opts.listen_fds.saturating_add(opts.preserve_fds),
            cgroup_procs: cgroup::procs_files(&cg.dirs)?,
            cgroup2_dir: cgroup::v2_dir(&cg)?,
            idmapped: IdmappedMounts::prepare(&plan.rootfs)?,
            seccomp: seccomp.as_ref(),
            console: launch.console,
            error_file,
            close_in_child: [dir.lock_fd(), runtime_side.as_fd().as_raw_fd()]
                .into_iter()
                .chain(launch.relay)
                .collect(),
        };
        tracing::debug!("container {id}: plan ready, forking");
        let stage1 = process::spawn(cfg, container_side)?;
        undo.pids.push(stage1);

        loop {
            let (msg, mut fds) = match runtime_side.recv_with_fds::<ToRuntime>()? {
                Some((msg, fds)) => (Some(msg), fds),
                None => (None, Vec::new()),
            };
            match msg {
                Some(ToRuntime::MapIds { pid }) => {
                    let ns = &plan.namespaces;
                    // A mapping the kernel or newuidmap refuses is one of
                    // the refusals chroot isolation may avoid.
                    let written =
                        ids::write_maps(pid, &ns.uid_mappings, &ns.gid_mappings).map_err(|e| {
                            Error::IsolationRefused {
                                what: "no user namespace mapping possible".into(),
                                message: e.to_string(),
                            }
                        });
                    continue_or_abort(&runtime_side, written)?;
                }
                Some(ToRuntime::InitPid { pid }) => {
                    undo.pids.push(pid);
                    st.pid = pid;
                    st.pid_start_time = state::process_start_time(pid).unwrap_or(0);
                    // Init waits for this before it sends anything: its
                    // messages cannot overtake its pid. Sent before the
                    // save, which then runs while init sets up (any later
                    // message is read after it).
                    runtime_side.send(&ToContainer::Continue)?;
                    dir.save(&st)?;
                }
                Some(ToRuntime::RunCreateHooks) => {
                    let json = st.oci_json(Status::Creating).to_string();
                    let result = bundle.spec.hooks().as_ref().map_or(Ok(()), |h| {
                        hooks::run(HookKind::Prestart, h, &json)
                            .and_then(|()| hooks::run(HookKind::CreateRuntime, h, &json))
                    });
                    match result {
                        Ok(()) => runtime_side.send(&ToContainer::HooksDone { pid: st.pid })?,
                        Err(e) => {
                            runtime_side.send(&ToContainer::Abort {
                                message: e.to_string(),
                            })?;
                            return Err(e);
                        }
                    }
                }
                Some(ToRuntime::SeccompListener) => {
                    let listener = plan
                        .process
                        .seccomp
                        .as_ref()
                        .and_then(|s| s.listener.as_ref());
                    let sent = hand_listener_to_agent(fds.pop(), listener, &st);
                    continue_or_abort(&runtime_side, sent)?;
                }
                Some(ToRuntime::Ready) => {
                    // Init waits now, so it has a start time; without one
                    // in the state, every later command would take the
                    // container for stopped.
                    if st.pid_start_time == 0 {
                        st.pid_start_time = state::process_start_time(st.pid).ok_or_else(|| {
                            Error::Init(format!(
                                "the start time of init (pid {}) cannot be read from /proc",
                                st.pid
                            ))
                        })?;
                        dir.save(&st)?;
                    }
                    break;
                }
                Some(ToRuntime::Exec | ToRuntime::ExecPid { .. }) => {
                    return Err(Error::Init("init skipped its start signal".into()))
                }
                Some(other @ ToRuntime::TerminalSent) => {
                    return Err(Error::Init(format!(
                        "unexpected message from init: {other:?}"
                    )))
                }
                Some(ToRuntime::Failed { message, refused }) => {
                    return Err(init_failure(message, refused))
                }
                Some(ToRuntime::Diagnostic { message }) => eprintln!("rootcell: {message}"),
                None => {
                    return Err(Error::Init(
                        "the container's init exited during setup".into(),
                    ))
                }
            }
        }
        wait::reap(stage1);
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, st.pid)?;
        }
        let listener = plan.process.seccomp.and_then(|s| s.listener);
        Ok((st, runtime_side, listener))
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
        plan::build(
            &bundle,
            &host,
            PlanOptions {
                no_pivot,
                isolation,
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
        self.destroy(dir, &st)
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
    /// forgets the container.
    fn destroy(&self, dir: ContainerDir, st: &ContainerState) -> Result<()> {
        let _ = wait::signal_checked(st.pid, st.pid_start_time, libc::SIGKILL);
        // A paused container's processes die only once thawed (v1).
        pause::thaw_for_kill(st);
        wait::until_gone(st.pid, Some(st.pid_start_time));
        // Without a pid namespace, init's death leaves the rest running.
        wait::kill_all(&cgroup::pids(&st.cgroup_dirs));
        cgroup::remove(&st.cgroup_dirs)?;
        // Each one runs; a failure is a warning (runtime spec).
        if let Some(h) = &st.hooks {
            let json = st.oci_json(Status::Stopped).to_string();
            warn_all(hooks::run_all(HookKind::Poststop, h, &json));
        }
        dir.remove()
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

/// The state of a container being created: no process yet.
fn creating_state(
    id: &str,
    bundle: &Bundle,
    opts: &CreateOptions,
    cgroup_dirs: &[PathBuf],
) -> ContainerState {
    ContainerState {
        oci_version: bundle.spec.version().clone(),
        id: id.to_string(),
        status: Status::Creating,
        pid: 0,
        pid_start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs(),
        created: state::rfc3339_now(),
        owner: String::new(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        cgroup_dirs: cgroup_dirs.to_vec(),
        hooks: bundle.spec.hooks().clone(),
        no_new_keyring: opts.no_new_keyring,
        isolation: Isolation::Oci,
    }
}

/// How `setup` starts the container's processes.
struct Launch {
    /// Init waits for `start` on the exec fifo (create), not on the sync
    /// socket (run).
    fifo_gate: bool,
    /// Init's end of the console connection, when there is a terminal.
    console: Option<OwnedFd>,
    /// The runtime's end of the relay socket, which the child closes.
    relay: Option<std::os::fd::RawFd>,
}

/// The pid file holds the bare pid, no newline, written atomically.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("rootcell-tmp");
    std::fs::write(&tmp, pid.to_string()).ctx(|| format!("--pid-file {}", path.display()))?;
    std::fs::rename(&tmp, path).ctx(|| format!("--pid-file {}", path.display()))
}

/// What a failed create must take back: the processes it started and the
/// cgroups it made (the state directory is removed by the caller).
#[derive(Default)]
struct Undo {
    pids: Vec<i32>,
    cgroup_dirs: Vec<PathBuf>,
}

impl Undo {
    fn run(&mut self) {
        for pid in &self.pids {
            let _ = wait::signal(*pid, libc::SIGKILL);
        }
        // Our children (stage 1, and init once stage 1 is gone).
        for pid in self.pids.drain(..) {
            wait::reap(pid);
        }
        wait::kill_all(&cgroup::pids(&self.cgroup_dirs));
        let _ = cgroup::remove(&self.cgroup_dirs);
    }
}

/// Chroot isolation's one line about the cgroup hierarchies it could not
/// create (a read-only or undelegated tree).
fn chroot_cgroup_line(skipped: &[(PathBuf, String)], none_left: bool) -> String {
    let dirs: Vec<String> = skipped
        .iter()
        .map(|(d, _)| d.display().to_string())
        .collect();
    let why = skipped.first().map(|(_, e)| e.as_str()).unwrap_or_default();
    if none_left {
        format!(
            "chroot isolation: no cgroup created: the cgroup tree is read-only or not delegated here ({why}); the container stays in the runtime's cgroup, without limits"
        )
    } else {
        format!(
            "chroot isolation: cgroups not created where the tree is read-only or not delegated ({why}): {}",
            dirs.join(", ")
        )
    }
}

/// `process.terminal` of the bundle's config (false when unset).
fn process_terminal(bundle: &Bundle) -> bool {
    bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// Sends a notifying seccomp filter's fd, just received from the
/// container's process, to the agent at `listenerPath` with the container's
/// state. The agent sees status `creating` however the container was
/// started (`create` or `run`), as runc sends it.
fn hand_listener_to_agent(
    fd: Option<OwnedFd>,
    listener: Option<&crate::plan::seccomp::SeccompListener>,
    st: &ContainerState,
) -> Result<()> {
    match (fd, listener) {
        (Some(fd), Some(l)) => process::seccomp::send_to_agent(
            &l.path,
            st.pid,
            &l.metadata,
            st.oci_json(Status::Creating),
            &fd,
        ),
        (Some(_), None) => Err(Error::Init(
            "a notification fd without a listenerPath".into(),
        )),
        (None, _) => Err(Error::Init(
            "the seccomp notification fd did not arrive".into(),
        )),
    }
}

/// The error init reported: a refusal of full isolation stays typed, so
/// that `--isolation auto` can retry with chroot isolation.
fn init_failure(message: String, refused: Option<String>) -> Error {
    match refused {
        Some(what) => Error::IsolationRefused {
            what,
            message: format!("container init: {message}"),
        },
        None => Error::Init(message),
    }
}

/// Tells the container side to go on after a step the runtime did for it,
/// or to abort with that step's error, which is also returned.
fn continue_or_abort(chan: &Channel, step: Result<()>) -> Result<()> {
    match step {
        Ok(()) => chan.send(&ToContainer::Continue),
        Err(e) => {
            chan.send(&ToContainer::Abort {
                message: e.to_string(),
            })?;
            Err(e)
        }
    }
}
