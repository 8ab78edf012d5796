//! `create` (and `run` up to the start): the container's creation as one
//! attempt with its undo (`create_attempt`, `setup`), and chroot
//! isolation's retry of it under `--isolation auto` (`create_container`).
//! spec → plan → execute → state, with nothing left behind on failure.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use super::{console, host, wait, CreateOptions, Created, InitNext, Runtime};
use crate::cgroup;
use crate::error::{Error, IoContext, Result};
use crate::hooks::{self, HookKind};
use crate::plan::cgroup_entry::CgroupEntry;
use crate::plan::spawn::InitSpawn;
use crate::plan::{self, FinalStep, Isolation, PlanOptions, RootSource, StartSignal};
use crate::process::sync::{self, Channel, ToContainer, ToRuntime};
use crate::process::{self, ids, InitConfig, StartGate};
use crate::rootfs::IdmappedMounts;
use crate::spec::Bundle;
use crate::state::{self, ContainerDir, ContainerState, Status, EXEC_FIFO};
use crate::view::ViewPlan;

impl Runtime {
    /// `create`, and `run` up to the start. `fifo_gate`: the process waits
    /// for `start` on the exec fifo (create) rather than on the sync socket
    /// (run). `foreground`: a `run` without `--detach`, which relays a
    /// terminal itself.
    pub(super) fn create_container(
        &self,
        id: &str,
        opts: &CreateOptions,
        fifo_gate: bool,
        foreground: bool,
    ) -> Result<Created> {
        state::validate_id(id)?;
        let bundle = Bundle::load(&opts.bundle)?;
        crate::phase::mark("runtime: config loaded and validated");
        // Before anything of the container exists (CVE-2019-5736).
        if self.binary_plan(&bundle) == Some(plan::binary::BinaryPlan::Reexec) {
            crate::exe::reexec_protected()?;
        }
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
            Ok((state, channel, listener, next)) => Ok(Created {
                dir,
                state,
                channel,
                relay,
                listener,
                next,
            }),
            Err(e) => {
                undo.run();
                let _ = dir.remove();
                Err(e)
            }
        }
    }

    /// How this runtime keeps its binary out of the container's reach
    /// (None: a library caller's binary, not decided here).
    fn binary_plan(&self, bundle: &Bundle) -> Option<plan::binary::BinaryPlan> {
        self.binary
            .map(|found| plan::binary::BinaryPlan::for_container(&bundle.spec, Some(found)))
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
        InitNext,
    )> {
        let (mut host, mut cg) = host::host_facts(bundle, id, self.rootless)?;
        crate::phase::mark("runtime: host facts");
        // Recorded first: a create that fails half-way still gets undone.
        undo.cgroup_dirs = cg.dirs.clone();
        let mut st = creating_state(id, bundle, opts, &cg.dirs);
        // Chroot isolation runs where the cgroup tree may be read-only or
        // not delegated, even as root: what cannot be made is skipped (and
        // said, once), and limits are refused by `apply_resources`.
        let chroot =
            crate::plan::isolation::resolve(&bundle.spec, opts.isolation)? == Isolation::Chroot;
        let best_effort = self.rootless || chroot;
        if best_effort {
            // Saved before the cgroups exist: a runtime killed from here on
            // leaves a `creating` state that `delete` can clean up from.
            dir.save(&st)?;
            let skipped = cgroup::create(&mut cg, best_effort)?;
            crate::phase::mark("runtime: cgroups made");
            if chroot && !skipped.is_empty() {
                eprintln!(
                    "rootcell: {}",
                    chroot_cgroup_line(&skipped, cg.dirs.is_empty())
                );
            }
        }
        // Best-effort creation may have skipped hierarchies it cannot write
        // (the state is brought up to date below, once, if so); otherwise
        // every hierarchy is made or the create fails.
        host.cgroup_mounts = cg.mount_sources.clone();
        // `run` releases init on the sync socket only when it has work to
        // do between init's `Ready` and the process: a terminal to relay, a
        // pid file to write (whose failure must stop the process unrun).
        let start = if launch.fifo_gate {
            StartSignal::ExecFifo
        } else if process_terminal(bundle) || opts.pid_file.is_some() {
            StartSignal::Socket
        } else {
            StartSignal::None
        };
        let plan = plan::build(
            bundle,
            &host,
            PlanOptions {
                no_pivot: opts.no_pivot,
                listen_fds: opts.listen_fds,
                start,
                isolation: opts.isolation,
                binary: self.binary_plan(bundle),
            },
        )?;
        // The mode the container runs in (`auto` has been resolved by
        // now: a chroot retry passes `chroot`), for `exec` and the rest.
        st.isolation = match plan.isolation {
            Isolation::Chroot => Isolation::Chroot,
            Isolation::Oci | Isolation::Auto => Isolation::Oci,
        };
        if plan.rootfs.source == RootSource::Bundle {
            st.view = Some(ViewPlan::from_plan(&plan));
        }
        // Made best effort, the cgroups exist already, and the plan never
        // makes them late (`CgroupEntry::decide`).
        let joins_late = plan.cgroup_entry == CgroupEntry::AfterNamespaces;
        // Saved before the cgroups are made here (made best effort, they
        // exist already; joined late, they are made after stage 1's fork):
        // a runtime killed from here on leaves a `creating` state that
        // `delete` can clean up from.
        dir.save(&st)?;
        crate::phase::mark("runtime: planned, state saved");
        if !best_effort && !joins_late {
            cgroup::create(&mut cg, false)?;
            crate::phase::mark("runtime: cgroups made");
        }
        // Logged only, as runc does (the default spec's ambient set alone
        // gives three).
        for w in &plan.process.warnings {
            tracing::warn!("{w}");
        }
        for d in &plan.diagnostics {
            eprintln!("rootcell: {d}");
        }
        if let Some(res) = &plan.resources {
            for w in &res.warnings {
                tracing::warn!("{w}");
                eprintln!("rootcell: warning: {w}");
            }
        }
        // Limits hold before any container process joins the cgroups.
        if !joins_late {
            write_limits(&plan, &cg, best_effort)?;
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
            cgroups: match joins_late {
                true => cgroup::CgroupJoin::none(),
                false => cgroup::CgroupJoin::open(&cg.dirs)?,
            },
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
        let spawned = process::spawn(cfg, container_side)?;
        undo.pids.push(spawned);
        // Init and the runtime's bookkeeping of it run side by side: the
        // start time and the state are read and saved while init sets up.
        let record_init = |st: &mut ContainerState, pid: i32| -> Result<()> {
            st.pid = pid;
            // Our child, not reaped: its start time stays readable even if
            // it has run to its end already (an init cloned directly waits
            // for nothing under `run`). Read again at `Ready` if missing.
            st.pid_start_time = state::child_start_time(pid).unwrap_or(0);
            // While init mounts the same sources: what views of the
            // container will check them against.
            if let Some(view) = &mut st.view {
                crate::view::source::identify(view);
                if view.ids.joined_user_namespace() {
                    (view.ids.uid_mappings, view.ids.gid_mappings) = ids::maps_of(pid)?;
                }
            }
            dir.save(st)?;
            crate::phase::mark("runtime: init pid, sources identified, state saved");
            Ok(())
        };
        let stage1 = match plan.spawn {
            InitSpawn::Stage1 => {
                crate::phase::mark("runtime: stage 1 forked");
                Some(spawned)
            }
            InitSpawn::Direct => {
                crate::phase::mark("runtime: init cloned");
                record_init(&mut st, spawned)?;
                None
            }
        };
        if joins_late {
            // While stage 1 creates the namespaces (`CgroupEntry`).
            cgroup::create(&mut cg, false)?;
            write_limits(&plan, &cg, false)?;
            let (paths, fds) = cgroup::CgroupJoin::open(&cg.dirs)?.into_parts();
            let fds: Vec<_> = fds.iter().map(|fd| fd.as_fd()).collect();
            if let Err(e) = runtime_side.send_fds(&ToContainer::Cgroups { join: paths }, &fds) {
                // Stage 1 failed meanwhile: its own error is in the socket.
                return Err(failure_sent(&runtime_side).unwrap_or(e));
            }
            crate::phase::mark("runtime: cgroups made");
        }

        let next = loop {
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
                            if ids::is_mapping_refusal(&e) {
                                Error::IsolationRefused {
                                    what: "no user namespace mapping possible".into(),
                                    message: e.to_string(),
                                }
                            } else {
                                e
                            }
                        });
                    continue_or_abort(&runtime_side, written)?;
                }
                Some(ToRuntime::InitPid { pid }) if stage1.is_some() => {
                    undo.pids.push(pid);
                    // Init waits for this before it sends anything: its
                    // messages cannot overtake its pid. Sent before the
                    // bookkeeping, which then runs while init sets up (any
                    // later message is read after it).
                    runtime_side.send(&ToContainer::Continue)?;
                    record_init(&mut st, pid)?;
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
                    crate::phase::mark("runtime: init ready");
                    break if start == StartSignal::None {
                        InitNext::GoesOn
                    } else {
                        InitNext::WaitsForStart
                    };
                }
                // Without a start signal, and where no `Ready` is planned,
                // the announcement of the exec is the readiness too.
                Some(ToRuntime::Exec) if !plan.process.final_steps.contains(&FinalStep::Ready) => {
                    crate::phase::mark("runtime: init ready");
                    break InitNext::Execs;
                }
                Some(ToRuntime::Exec | ToRuntime::ExecPid { .. }) => {
                    return Err(Error::Init("init skipped its start signal".into()))
                }
                Some(other @ (ToRuntime::TerminalSent | ToRuntime::InitPid { .. })) => {
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
        };
        // Without a start time in the state, every later command would
        // take the container for stopped.
        if st.pid_start_time == 0 {
            st.pid_start_time = state::child_start_time(st.pid).ok_or_else(|| {
                Error::Init(format!(
                    "the start time of init (pid {}) cannot be read from /proc",
                    st.pid
                ))
            })?;
            dir.save(&st)?;
        }
        if let Some(stage1) = stage1 {
            wait::reap(stage1);
        }
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, st.pid)?;
        }
        let listener = plan.process.seccomp.and_then(|s| s.listener);
        Ok((st, runtime_side, listener, next))
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
        view: None,
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
pub(super) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
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
pub(super) fn hand_listener_to_agent(
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

/// The `Failed` message a setup process left before it exited, if any
/// (messages before it, such as diagnostics, are skipped).
fn failure_sent(chan: &Channel) -> Option<Error> {
    loop {
        match chan.recv::<ToRuntime>() {
            Ok(Some(ToRuntime::Failed { message, refused })) => {
                return Some(init_failure(message, refused))
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Tells the container side to go on after a step the runtime did for it,
/// or to abort with that step's error, which is also returned.
pub(super) fn continue_or_abort(chan: &Channel, step: Result<()>) -> Result<()> {
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

/// Writes the planned `linux.resources` into the container's cgroups.
fn write_limits(plan: &plan::Plan, cg: &cgroup::ContainerCgroup, best_effort: bool) -> Result<()> {
    match &plan.resources {
        Some(res) => cgroup::apply_resources(res, cg, best_effort),
        None => Ok(()),
    }
}
