//! Stage 3b: creating the container's processes.
//!
//! ```text
//! runtime ──fork──► stage 1: join namespaces, create the user namespace
//!                   (runtime writes its id maps), unshare the rest
//!                   ──fork──► init (pid 1 of a new pid namespace):
//!                             rootfs, root switch, user, capabilities,
//!                             waits for `start`, execve
//! ```
//! Stage 1 exits as soon as init exists; the runtime is a child subreaper,
//! so init becomes its child. Messages go over a socketpair (`sync`),
//! which stage 1 and init share: init waits until the runtime has
//! recorded its pid (`InitPid`, answered with `Continue`) before it sends
//! anything.
//!
//! Where no namespace has to exist before another (`InitSpawn::Direct`:
//! none joined by path, no user or time namespace) the runtime clones init
//! itself with every new namespace's flag, and knows its pid from `clone3`.
//! `exec` starts a further process in a running container the same way
//! (`exec.rs`), and both end in `prepare` (user, capabilities, cwd…).

pub mod capabilities;
pub mod exec;
pub mod ids;
mod lock_mounts;
pub mod lsm;
pub mod prepare;
pub mod seccomp;
pub mod sync;
pub mod sys;
pub mod terminal;

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

use oci_spec::runtime::Hooks;

use crate::cgroup::CgroupJoin;
use crate::error::{Error, IoContext, Result};
use crate::fs::procfs::{self, ProcfsBase};
use crate::hooks::{self, HookKind};
use crate::plan::cgroup_entry::CgroupEntry;
use crate::plan::spawn::InitSpawn;
use crate::plan::{InitProcfs, Namespace, Plan, RootSwitch};
use crate::rootfs::{IdmappedMounts, Rootfs};
use sync::{Channel, ToContainer, ToRuntime};

/// How init learns that it may exec the user process.
pub enum StartGate {
    /// `create`: a FIFO in the state directory, held as an `O_PATH` fd.
    /// Init opens it for writing, which blocks until `start` opens it for
    /// reading; init then writes "0", runs startContainer hooks, writes "1"
    /// and execs, which closes its end.
    Fifo(OwnedFd),
    /// `run`: the runtime sends `Start` on the sync socket.
    Channel,
}

/// What the container side needs, prepared by the runtime before forking.
pub struct InitConfig<'a> {
    pub plan: &'a Plan,
    pub hooks: Option<&'a Hooks>,
    /// With hooks: the state JSON for createContainer and startContainer
    /// hooks, but for the pid (`HooksDone` brings it).
    pub hook_state: Option<serde_json::Value>,
    pub gate: StartGate,
    /// Name of a new session keyring to join (`_ses.<id>`, as runc), or
    /// None for `--no-new-keyring`.
    pub session_keyring: Option<String>,
    /// `--preserve-fds`: fds 3..3+N stay open into the container.
    pub preserve_fds: u32,
    /// The container's cgroups: stage 1 (or init, cloned directly) is
    /// created in the v2 directory (`CLONE_INTO_CGROUP`) and joins the v1
    /// ones by writing "0" into their `tasks` before anything else happens
    /// (`cgroup::CgroupJoin`).
    pub cgroups: CgroupJoin,
    /// Idmapped bind trees, made by the runtime (init cannot make them).
    pub idmapped: IdmappedMounts,
    /// The seccomp filter, compiled by the runtime.
    pub seccomp: Option<&'a seccomp::Filter>,
    /// `process.terminal`: a connected unix socket to send the pty master
    /// to (the `--console-socket` listener, or the runtime's relay).
    pub console: Option<OwnedFd>,
    /// `create`: the container's `init.err` (state directory), open for
    /// writing. A setup error, also one after `create` has returned (the
    /// start gate, a startContainer hook, `execve`), is written there so
    /// that `start` can tell it: nobody reads the sync socket by then.
    /// Held until `execve`, which closes it (close-on-exec).
    pub error_file: Option<OwnedFd>,
    /// The runtime's own fds that the child must drop at once: the state
    /// lock (an flock held through a child's copy would block every other
    /// command), the runtime's end of the sync socket and of the terminal
    /// relay.
    pub close_in_child: Vec<RawFd>,
}

/// Forks stage 1, or clones init with its namespaces (`InitSpawn`),
/// straight into the container's cgroup v2 directory when there is one.
/// Returns the pid of the process made; the rest is told over
/// `runtime_side`.
pub fn spawn(mut cfg: InitConfig<'_>, container_side: Channel) -> Result<i32> {
    let cgroup2 = cfg.cgroups.v2_dir.take();
    // Stays in this frame, so the child's copy is closed by number, first
    // thing: it is only for the fork itself.
    cfg.close_in_child
        .extend(cgroup2.as_ref().map(|fd| fd.as_raw_fd()));
    // Stays in this frame too: the child's copy lives until it exits or
    // execs (init keeps its number open through `CloseFds`).
    let error_file = cfg.error_file.take();
    let error_fd = error_file.as_ref().map(|fd| fd.as_raw_fd());
    match cfg.plan.spawn {
        InitSpawn::Stage1 => fork_setup(
            container_side,
            cgroup2.as_ref(),
            0,
            error_file.as_ref(),
            |chan, born_in_cgroup2| stage1(cfg, chan, error_fd, born_in_cgroup2),
        ),
        InitSpawn::Direct => {
            let flags = InitSpawn::clone_flags(&cfg.plan.namespaces);
            fork_setup(
                container_side,
                cgroup2.as_ref(),
                flags,
                error_file.as_ref(),
                |chan, born_in_cgroup2| direct_init(cfg, chan, error_fd, born_in_cgroup2),
            )
        }
    }
}

/// Forks a setup process that runs `f` (and whatever it forks in turn),
/// in new namespaces where `clone_flags` has `CLONE_NEW*` flags: an error
/// or a panic there (ours or a library's) reaches the runtime as `Failed`
/// on `chan` instead of ending the child silently, and in `error_file`
/// when there is one. Returns the child's pid; the parent's copy of `chan`
/// is closed.
fn fork_setup(
    chan: Channel,
    cgroup2: Option<&OwnedFd>,
    clone_flags: u64,
    error_file: Option<&OwnedFd>,
    f: impl FnOnce(&Channel, bool) -> Result<Never>,
) -> Result<i32> {
    // A kernel that refuses the placement at birth: a plain fork (or
    // clone), and the child joins by `cgroup.procs` (`f`'s second argument
    // says which).
    let (forked, born_in_cgroup2) =
        match cgroup2.map(|cgroup| sys::clone_into_cgroup(cgroup, clone_flags)) {
            Some(Ok(forked)) => (forked, true),
            _ => (
                sys::clone_with(clone_flags).ctx(|| match clone_flags {
                    0 => "fork".to_string(),
                    flags => format!("creating init with namespaces {:?}", namespace_names(flags)),
                })?,
                false,
            ),
        };
    match forked {
        sys::Forked::Parent(pid) => Ok(pid),
        sys::Forked::Child => {
            std::panic::set_hook(Box::new(|_| {}));
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                f(&chan, born_in_cgroup2)
            }));
            let err = match outcome {
                Ok(Ok(never)) => match never {},
                Ok(Err(e)) => e,
                Err(panic) => Error::Other(format!(
                    "internal error during container setup: {}",
                    panic_message(&*panic)
                )),
            };
            let message = err.to_string();
            if let Some(file) = error_file {
                let _ = rustix::io::write(file, message.as_bytes());
            }
            let refused = match err {
                Error::IsolationRefused { what, .. } => Some(what),
                _ => None,
            };
            let _ = chan.send(&ToRuntime::Failed { message, refused });
            sys::exit_now(1)
        }
    }
}

pub(crate) enum Never {}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

fn stage1(
    mut cfg: InitConfig<'_>,
    chan: &Channel,
    error_fd: Option<RawFd>,
    born_in_cgroup2: bool,
) -> Result<Never> {
    crate::phase::mark("stage 1: started");
    leave_runtime(&mut cfg, born_in_cgroup2)?;
    let joins_late = cfg.plan.cgroup_entry == CgroupEntry::AfterNamespaces;
    let ns = &cfg.plan.namespaces;

    for (kind, path) in &ns.join {
        let fd = std::fs::File::open(path).ctx(|| {
            format!(
                "linux.namespaces: {} namespace {}",
                kind.proc_name(),
                path.display()
            )
        })?;
        // Sysctls go into a namespace joined by path only if it is not
        // the runtime's own (runc's isHostNetNS; the same for ipc).
        if cfg.plan.writes_sysctls_in(*kind) {
            refuse_own_namespace(*kind, &fd, path)?;
        }
        sys::setns(fd.as_fd(), kind.clone_flag()).ctx(|| {
            format!(
                "linux.namespaces: joining {} namespace {}",
                kind.proc_name(),
                path.display()
            )
        })?;
    }
    if ns.creates(Namespace::User) {
        sys::unshare(libc::CLONE_NEWUSER).ctx(|| "creating the user namespace")?;
        chan.send(&ToRuntime::MapIds {
            pid: rustix::process::getpid().as_raw_nonzero().get(),
        })?;
        match next(chan)? {
            ToContainer::Continue => {}
            other => return Err(unexpected(other)),
        }
    }
    // A new time namespace's offsets must be written before the first
    // process enters it, through our own /proc/self/timens_offsets, and
    // while we are still dumpable: a non-dumpable process's /proc files
    // belong to the host's root, which the root of a new user namespace is
    // not ("linux.timeOffsets: Permission denied"). Changing the effective
    // uid (the setresuid below) makes a process non-dumpable too, so this
    // comes before it. No process of the container exists yet; init is
    // forked only after PR_SET_DUMPABLE(0).
    if ns.creates(Namespace::Time) {
        sys::unshare(libc::CLONE_NEWTIME).ctx(|| "creating the time namespace")?;
        if !ns.time_offsets.is_empty() {
            let text: String = ns
                .time_offsets
                .iter()
                .map(|(clock, s, n)| format!("{clock} {s} {n}\n"))
                .collect();
            procfs::write(ProcfsBase::ProcSelf, "timens_offsets", &text)
                .ctx(|| "linux.timeOffsets")?;
        }
    }
    if ns.creates(Namespace::User) {
        // Act as the namespace's root for the rest of the setup.
        if ns.gid_mappings.iter().any(|m| m.container_id == 0) {
            sys::setresgid(0).ctx(|| "setresgid(0) in the user namespace")?;
        }
        if ns.uid_mappings.iter().any(|m| m.container_id == 0) {
            sys::setresuid(0).ctx(|| "setresuid(0) in the user namespace")?;
        }
    }
    if ns.join.iter().any(|(kind, _)| *kind == Namespace::User) {
        // A user namespace joined by path: act as its root too, as runc's
        // init does (its setuid(0)/setgid(0) fail where 0 is unmapped; here
        // EINVAL, 0 not mapped there, leaves us as we are). Without it the host's root, unmapped in that namespace,
        // cannot create files in the container's fresh mounts (EOVERFLOW).
        let keep_unmapped = |r: std::io::Result<()>| match r {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            other => other,
        };
        keep_unmapped(sys::setresgid(0)).ctx(|| "setresgid(0) in the joined user namespace")?;
        keep_unmapped(sys::setresuid(0)).ctx(|| "setresuid(0) in the joined user namespace")?;
    }
    // Non-dumpable until exec: other processes of the container cannot
    // ptrace us or open our /proc files (CVE-2016-9962). Only now: an
    // unprivileged runtime must still be able to write our id maps, which a
    // non-dumpable process's /proc files (owned by root) would refuse.
    sys::prctl(libc::PR_SET_DUMPABLE, 0).ctx(|| "prctl(PR_SET_DUMPABLE)")?;
    let flags = ns
        .create
        .iter()
        .filter(|n| !matches!(n, Namespace::User | Namespace::Time))
        .filter(|n| !ns.shared_if_refused.contains(n))
        .fold(0, |acc, n| acc | n.clone_flag());
    // Joining late, the cgroup namespace is init's to create, once it is
    // in its cgroups.
    let flags = match joins_late {
        true => flags & !libc::CLONE_NEWCGROUP,
        false => flags,
    };
    if flags != 0 {
        sys::unshare(flags).ctx(|| format!("creating namespaces {:?}", ns.create))?;
    }
    crate::phase::mark("stage 1: namespaces created");
    for optional in &ns.shared_if_refused {
        if let Some(message) = create_or_share(*optional)? {
            chan.send(&ToRuntime::Diagnostic { message })?;
        }
    }
    // The procfs handles this process inherited (from the host's pid
    // namespace) are not init's: it makes its own, in its pid namespace.
    procfs::close_handles();
    let forked = match joins_late {
        true => fork_init_into_sent_cgroups(chan)?,
        false => sys::fork().ctx(|| "fork of init")?,
    };
    match forked {
        sys::Forked::Parent(pid) => {
            chan.send(&ToRuntime::InitPid { pid })?;
            crate::phase::mark("stage 1: init forked");
            crate::phase::report_rss("stage 1");
            sys::exit_now(0)
        }
        sys::Forked::Child => init(cfg, chan, error_fd),
    }
}

/// First thing in the process the runtime forks (stage 1) or clones
/// (init): the runtime's own fds closed, then the container's cgroups
/// joined (already born in the v2 one when `born_in_cgroup2`). Each join
/// fd is closed once used: none reaches the container's process.
fn leave_runtime(cfg: &mut InitConfig<'_>, born_in_cgroup2: bool) -> Result<()> {
    for fd in &cfg.close_in_child {
        // SAFETY: these fds belong to the runtime's objects, which this
        // child never uses again.
        unsafe { libc::close(*fd) };
    }
    let cgroups = std::mem::replace(&mut cfg.cgroups, CgroupJoin::none());
    for file in cgroups.files_to_write(born_in_cgroup2) {
        file.join()?;
    }
    Ok(())
}

/// `InitSpawn::Direct`: init, cloned by the runtime in its new namespaces
/// (all but the cgroup namespace) and in the container's cgroup v2
/// directory, does first what stage 1 would have done before forking it.
fn direct_init(
    mut cfg: InitConfig<'_>,
    chan: &Channel,
    error_fd: Option<RawFd>,
    born_in_cgroup2: bool,
) -> Result<Never> {
    crate::phase::mark("init: cloned");
    // Born dumpable, as the runtime is; no other process of the container
    // exists yet to make use of it (CVE-2016-9962: see `stage1`).
    sys::prctl(libc::PR_SET_DUMPABLE, 0).ctx(|| "prctl(PR_SET_DUMPABLE)")?;
    leave_runtime(&mut cfg, born_in_cgroup2)?;
    // Once in its cgroups: rooted there.
    if cfg.plan.namespaces.creates(Namespace::Cgroup) {
        sys::unshare(libc::CLONE_NEWCGROUP).ctx(|| "creating the cgroup namespace")?;
    }
    // The procfs handles of the runtime are of the host's pid namespace.
    procfs::close_handles();
    init(cfg, chan, error_fd)
}

/// `clone3` flags as namespace names, for an error message.
fn namespace_names(flags: u64) -> Vec<&'static str> {
    use Namespace::*;
    [Mount, Pid, Network, Ipc, Uts, Cgroup, User, Time]
        .into_iter()
        .filter(|n| flags & n.clone_flag() as u64 != 0)
        .map(Namespace::name)
        .collect()
}

/// `CgroupEntry::AfterNamespaces`: waits for the cgroups the runtime made
/// meanwhile and forks init straight into the v2 one, where the kernel
/// allows it; init then joins the rest itself, first thing, as stage 1
/// does its own (`CgroupJoin::files_to_write`). The join fds are closed on
/// return, in both processes.
fn fork_init_into_sent_cgroups(chan: &Channel) -> Result<sys::Forked> {
    let mut join = match chan.recv_with_fds::<ToContainer>()? {
        Some((ToContainer::Cgroups { join }, fds)) => CgroupJoin::from_parts(join, fds)?,
        Some((ToContainer::Abort { message }, _)) => return Err(Error::Other(message)),
        Some((other, _)) => return Err(unexpected(other)),
        None => return Err(Error::Other("the runtime went away".into())),
    };
    let v2_dir = join.v2_dir.take();
    let (forked, born_in_v2) = match v2_dir.as_ref().map(|v2| sys::clone_into_cgroup(v2, 0)) {
        Some(Ok(forked)) => (forked, true),
        _ => (sys::fork().ctx(|| "fork of init")?, false),
    };
    if let sys::Forked::Child = forked {
        for file in join.files_to_write(born_in_v2) {
            file.join()?;
        }
    }
    Ok(forked)
}

/// Chroot isolation: a namespace of the config that may be shared. None
/// when it was created; the diagnostic line when the kernel refused it
/// (EPERM, EINVAL, ENOSPC for a `user.max_*_namespaces` limit or the
/// nesting depth, EUSERS on old kernels) and the runtime's is kept; any
/// other error ends the setup.
fn create_or_share(ns: Namespace) -> Result<Option<String>> {
    match sys::unshare(ns.clone_flag()) {
        Ok(()) => Ok(None),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EUSERS)
            ) =>
        {
            let name = ns.name();
            Ok(Some(format!(
                "chroot isolation: linux.namespaces: the kernel refused a new {name} namespace ({e}): the container shares the runtime's"
            )))
        }
        Err(e) => Err(e).ctx(|| format!("creating the {} namespace", ns.proc_name())),
    }
}

/// The runtime's next message; `Abort` and a vanished runtime end the
/// setup.
fn next(chan: &Channel) -> Result<ToContainer> {
    match chan.recv::<ToContainer>()? {
        Some(ToContainer::Abort { message }) => Err(Error::Other(message)),
        Some(msg) => Ok(msg),
        None => Err(Error::Other("the runtime went away".into())),
    }
}

fn unexpected(msg: ToContainer) -> Error {
    Error::Other(format!("unexpected message from the runtime: {msg:?}"))
}

/// `net.*` (ipc) sysctls go into the network (ipc) namespace joined from
/// `path`, which must not be the one this process (still the runtime's,
/// before any setns) runs in: same nsfs inode (`ns/net` reads
/// `net:[INODE]`), same namespace.
fn refuse_own_namespace(
    kind: Namespace,
    joined: &std::fs::File,
    path: &std::path::Path,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    let name = kind.name();
    let what = || format!("linux.namespaces: {name} namespace {}", path.display());
    if rustix::fs::fstatfs(joined).ctx(what)?.f_type as i64 != NSFS_MAGIC {
        // Not a namespace file: `setns` refuses it next, naming the path.
        return Ok(());
    }
    let joined_link = format!(
        "{}:[{}]",
        kind.proc_name(),
        joined.metadata().ctx(what)?.ino()
    );
    let link = format!("ns/{}", kind.proc_name());
    let own = procfs::readlink(ProcfsBase::ProcThreadSelf, &link)
        .ctx(|| format!("the runtime's {name} namespace ({link})"))?;
    if own.as_os_str() == joined_link.as_str() {
        let sysctls = match kind {
            Namespace::Network => "net.*",
            other => other.proc_name(),
        };
        return Err(Error::spec(
            "linux.sysctl",
            format!(
                "{sysctls} sysctls are not allowed in the runtime's own {name} namespace ({} is it)",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Joins the session keyring `name` (`_ses.<id>`), creating it if needed,
/// so the container's processes do not share the caller's keys.
fn join_session_keyring(name: &str) -> Result<()> {
    let name = CString::new(name).map_err(|_| Error::Other("keyring name".into()))?;
    match sys::join_session_keyring(&name) {
        // Kernels without keys, or a seccomp/user-namespace policy that
        // refuses them: the container simply shares no keyring setup.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::EACCES)
            ) =>
        {
            Ok(())
        }
        other => other.ctx(|| "joining a new session keyring"),
    }
}

/// The container's init: everything between the namespaces and `execve`.
fn init(mut cfg: InitConfig<'_>, chan: &Channel, error_fd: Option<RawFd>) -> Result<Never> {
    let plan = cfg.plan;
    // Stage 1 sends our pid after the fork, on the socket we share: until
    // the runtime has it, anything we sent could arrive first (a busy
    // machine may not run stage 1 again before we are done), and the
    // runtime would record pid 0. It answers `InitPid` with `Continue`.
    // Cloned by the runtime, we are known from the start.
    if plan.spawn == InitSpawn::Stage1 {
        match next(chan)? {
            ToContainer::Continue => {}
            other => return Err(unexpected(other)),
        }
    }
    // Joining late (`CgroupEntry::AfterNamespaces`), stage 1 left the
    // cgroup namespace to us: we were born in the container's cgroups.
    if plan.cgroup_entry == CgroupEntry::AfterNamespaces
        && plan.namespaces.creates(Namespace::Cgroup)
    {
        sys::unshare(libc::CLONE_NEWCGROUP).ctx(|| "creating the cgroup namespace")?;
    }
    // In a user namespace, a procfs of the container's own pid namespace is
    // made before the root switch and the masks (see `procfs::open_handle`);
    // else the container's /proc becomes it as it is mounted (`InitProcfs`).
    if plan.init_procfs == InitProcfs::Private {
        procfs::open_handle().ctx(|| "a private procfs in the container's pid namespace")?;
    }
    rustix::process::setsid().ctx(|| "setsid")?;
    if let Some(name) = &cfg.session_keyring {
        join_session_keyring(name)?;
    }
    // Device nodes and mountpoints get exactly the modes the plan says.
    rustix::process::umask(rustix::fs::Mode::empty());
    if let Some(name) = &plan.hostname {
        sys::sethostname(name).ctx(|| "hostname")?;
    }
    if let Some(name) = &plan.domainname {
        sys::setdomainname(name).ctx(|| "domainname")?;
    }

    let mut rootfs = Rootfs::prepare(&plan.rootfs, cfg.idmapped)?;
    rootfs.run_steps(&plan.rootfs.setup)?;
    // `--isolation auto`: a pivot_root the kernel will refuse is found out
    // before any hook runs, so the chroot retry runs each hook once.
    if plan.isolation == crate::plan::Isolation::Auto
        && plan.rootfs.switch == crate::plan::RootSwitch::PivotRoot
    {
        rootfs.probe_pivot_root()?;
    }

    // Without hooks before the start, nothing waits for the runtime here.
    let state = if plan.create_hooks_sync {
        chan.send(&ToRuntime::RunCreateHooks)?;
        match next(chan)? {
            ToContainer::HooksDone { pid } => {
                cfg.hook_state.take().map_or_else(String::new, |mut s| {
                    s["pid"] = pid.into();
                    s.to_string()
                })
            }
            other => return Err(unexpected(other)),
        }
    } else {
        String::new()
    };
    // Hooks without `env` get the container process's (from the config:
    // HOME is not known yet), as with runc.
    if let Some(h) = cfg.hooks {
        hooks::run_with_env(HookKind::CreateContainer, h, &state, &plan.process.env)?;
    }

    crate::phase::mark("init: setup steps and hooks");
    rootfs.switch(plan.rootfs.switch)?;
    crate::phase::mark("init: root switched");
    if let Some(socket) = cfg.console.take() {
        setup_terminal(&rootfs, plan, socket.as_fd())?;
    }
    rootfs.run_steps(&plan.rootfs.finish)?;
    drop(rootfs);
    if plan.rootfs.lock_mounts {
        lock_mounts::lock_mounts()?;
    }
    if let Some(policy) = &plan.memory_policy {
        apply_memory_policy(policy)?;
    }

    prepare::prepare_process(&plan.process)?;
    let mut life = InitLifecycle {
        chan,
        gate: &cfg.gate,
        hooks: cfg.hooks,
        state,
        fifo_writer: None,
        error_fd,
    };
    match prepare::finish(
        &plan.process,
        cfg.seccomp,
        Some(chan),
        cfg.preserve_fds,
        &mut life,
    )? {}
}

/// Init's part of the final steps: `Ready`, the start gate, the
/// startContainer hooks and the announcement of the exec.
struct InitLifecycle<'a> {
    chan: &'a Channel,
    gate: &'a StartGate,
    hooks: Option<&'a Hooks>,
    /// The state JSON for the startContainer hooks.
    state: String,
    /// The exec fifo's write end, open from the start until `execve`
    /// closes it (close-on-exec): `start` reads end-of-file at exec. Held
    /// as a raw fd, never closed by us: on a failure it must stay open
    /// until init exits, after the error is in `init.err`; closing it while
    /// this struct unwinds would let `start` see end-of-file first and
    /// read an empty `init.err`.
    fifo_writer: Option<RawFd>,
    /// `InitConfig::error_file`, kept open until `execve`.
    error_fd: Option<RawFd>,
}

impl prepare::Lifecycle for InitLifecycle<'_> {
    fn ready(&mut self) -> Result<()> {
        self.chan.send(&ToRuntime::Ready)
    }

    fn wait_for_start(&mut self) -> Result<()> {
        match self.gate {
            StartGate::Fifo(fifo) => {
                // Blocks until `start` opens the read end: the start signal.
                let writer = procfs::reopen(fifo, pathrs::flags::OpenFlags::O_WRONLY)
                    .ctx(|| "opening the exec fifo")?;
                rustix::io::write(&writer, b"0").ctx(|| "exec fifo")?;
                self.fifo_writer = Some(writer.into_raw_fd());
                Ok(())
            }
            StartGate::Channel => match next(self.chan)? {
                ToContainer::Start => Ok(()),
                other => Err(unexpected(other)),
            },
        }
    }

    fn start_container_hooks(&mut self, process_env: &[String]) -> Result<()> {
        // Hooks without `env` get the process's own, HOME included, as
        // with runc.
        match self.hooks {
            Some(h) => hooks::run_with_env(HookKind::StartContainer, h, &self.state, process_env),
            None => Ok(()),
        }
    }

    fn announce_exec(&mut self) -> Result<()> {
        match self.fifo_writer {
            // SAFETY: the fd was opened by `wait_for_start` and is never
            // closed before execve or exit.
            Some(writer) => rustix::io::write(unsafe { BorrowedFd::borrow_raw(writer) }, b"1")
                .map(drop)
                .ctx(|| "exec fifo"),
            None => self.chan.send(&ToRuntime::Exec),
        }
    }

    fn keep(&self) -> Vec<RawFd> {
        let mut keep = vec![self.chan.as_fd().as_raw_fd()];
        keep.extend(self.fifo_writer);
        keep.extend(self.error_fd);
        keep
    }
}

/// `linux.memoryPolicy`, as runc 1.3 sets it in init: after the rootfs,
/// before the user switch, no_new_privs and seccomp (a profile may deny
/// `set_mempolicy`). The kernel refuses nodes that are not online or not
/// in the cpuset with EINVAL.
fn apply_memory_policy(policy: &crate::plan::MemoryPolicy) -> Result<()> {
    let (mask, maxnode) = policy.nodemask();
    sys::set_mempolicy(policy.raw_mode, &mask, maxnode).map_err(|e| {
        let einval = e.raw_os_error() == Some(libc::EINVAL);
        let (field, hint) = match (einval, policy.nodes.is_empty()) {
            (true, false) => (
                "linux.memoryPolicy.nodes",
                " (are the nodes online and in the container's cpuset.mems, and does this kernel know the mode?)",
            ),
            (true, true) => ("linux.memoryPolicy.mode", " (does this kernel know the mode?)"),
            _ => ("linux.memoryPolicy", ""),
        };
        Error::spec(
            field,
            format!(
                "set_mempolicy({} {:?}, nodes {:?}): {e}{hint}",
                policy.mode, policy.flags, policy.nodes
            ),
        )
    })
}

/// `process.terminal` (see `terminal`): a new pty from the container's own
/// devpts becomes init's controlling terminal and stdio and is mounted on
/// `/dev/console`; the master is sent to `socket` and closed here. As in
/// runc, this runs after the root switch (so `/dev/pts` is the container's
/// devpts) and before the finishing steps (a read-only root, masks).
/// Without a mount namespace there is no `/dev/console` mount: it would
/// land in the runtime's namespace.
fn setup_terminal(rootfs: &Rootfs, plan: &Plan, socket: BorrowedFd<'_>) -> Result<()> {
    let pty = terminal::open_peer(rootfs.open_ptmx()?)?;
    if plan.rootfs.switch != RootSwitch::Chroot {
        rootfs.mount_console(pty.peer.as_fd())?;
    }
    terminal::install(pty, &plan.process, socket)
}
