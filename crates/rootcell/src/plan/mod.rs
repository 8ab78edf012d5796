//! Stage 2: a pure function from a validated spec (plus host facts passed in
//! as data) to an ordered list of plain-data steps. No syscalls happen here;
//! the executor (`rootfs`, `process`) walks the plan, and `rootcell plan`
//! prints it.

pub mod binary;
pub mod build;
pub mod cgroup_entry;
mod display;
pub mod isolation;
pub mod memory_policy;
pub mod options;
pub mod process;
pub mod process_plan;
pub mod resources;
pub mod seccomp;
pub mod spawn;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use build::{build, PlanOptions};
pub use isolation::Isolation;
pub use memory_policy::MemoryPolicy;
pub use options::{AttrChange, FsOption, MountOptions, Propagation, PropagationChange};
pub use process::{ExecCpuAffinity, IoPriority, Lsm, Personality, Scheduler};
pub use process_plan::{final_steps, process_plan};
pub use resources::{
    update_plan, CgroupFile, CgroupResources, CgroupVersion, CgroupWrite, DeviceFilter, DeviceRule,
};
pub use seccomp::SeccompPlan;

/// Everything that will happen to start a container.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// How the container is isolated: `--isolation` or the annotation
    /// `org.rootcell.isolation` (see `isolation`).
    pub isolation: Isolation,
    /// How the runtime keeps its binary out of the container's reach
    /// (CVE-2019-5736; `binary`). None: not decided (a library caller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_binary: Option<binary::BinaryPlan>,
    /// Who makes init: the runtime, or a stage 1 between them (`spawn`).
    pub spawn: spawn::InitSpawn,
    /// When the container's processes enter its cgroups (`cgroup_entry`).
    pub cgroup_entry: cgroup_entry::CgroupEntry,
    /// Init stops after its rootfs steps for the runtime's prestart and
    /// createRuntime hooks (`RunCreateHooks`, answered by `HooksDone` with
    /// init's pid, which the createContainer and startContainer hooks'
    /// state carries). False when the config has none of these four
    /// hooks: one round trip of the sync socket fewer.
    pub create_hooks_sync: bool,
    /// Where init's procfs handle (`fs::procfs`) comes from.
    pub init_procfs: InitProcfs,
    pub namespaces: Namespaces,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub rootfs: RootfsPlan,
    pub process: ProcessPlan,
    /// `linux.resources`, written into the container's cgroups by the
    /// runtime before the process is released.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<CgroupResources>,
    /// `linux.memoryPolicy`: init's `set_mempolicy` before its user switch
    /// and seccomp; the container's processes inherit it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_policy: Option<MemoryPolicy>,
    /// What chroot isolation changed from the config (mappings replaced,
    /// groups dropped): one stderr line each when the container is made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<String>,
}

/// Facts about the host that the plan depends on, gathered by the caller.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// `/proc/kcore` exists on the host (decides the `/dev/core` link).
    pub has_kcore: bool,
    /// The runtime itself runs in a user namespace that is not the initial one,
    /// or will create one: device nodes are bind-mounted, not created.
    pub rootless: bool,
    /// How the container's cgroups are seen, for `cgroup` mounts.
    pub cgroup_mounts: Vec<CgroupMountSource>,
    /// The interface resource limits are written for: v2 only on a pure
    /// cgroup2 host (hybrid counts as v1).
    pub cgroup_version: CgroupVersion,
    /// SELinux is enabled (selinuxfs is mounted): `linux.mountLabel` and
    /// `process.selinuxLabel` apply.
    pub selinux: bool,
    /// AppArmor is enabled: `process.apparmorProfile` applies.
    pub apparmor: bool,
    /// The runtime's caller when it is unprivileged (euid != 0, or root in
    /// a user namespace other than the initial one): chroot isolation
    /// gives it a user namespace of its own; full isolation without
    /// CAP_SYS_ADMIN and without a user namespace is refused.
    pub caller: Option<isolation::Caller>,
    /// The host's proc and sysfs mounts and everything below `/proc` and
    /// `/sys` (`mountinfo::proc_and_sys_points`), read with the cgroup
    /// hierarchies: what `RootSwitch::MoveRoot` hides. None: not read.
    pub proc_sys_mounts: Option<Vec<PathBuf>>,
    /// The runtime runs in a user namespace other than the initial one
    /// (`/proc/self/uid_map` is not the identity of all ids): the host's
    /// processes outside it are out of the container's reach through
    /// `/proc/<pid>/root`, even with a shared pid namespace.
    pub nested_user_ns: bool,
}

/// One cgroup hierarchy as the container should see it under a `cgroup` mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupMountSource {
    /// Directory name below the mount point (`cpu,cpuacct`, `unified`...).
    pub name: String,
    /// Host directory of the container's cgroup in that hierarchy (bind source).
    pub host_dir: PathBuf,
    /// Filesystem type and options for a fresh mount (in a cgroup namespace).
    pub fstype: String,
    pub fs_options: Vec<FsOption>,
    /// Extra names pointing at `name` (`cpu` and `cpuacct` → `cpu,cpuacct`).
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    User,
    Mount,
    Pid,
    Network,
    Ipc,
    Uts,
    Cgroup,
    Time,
}

impl Namespace {
    pub fn clone_flag(self) -> i32 {
        match self {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Network => libc::CLONE_NEWNET,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::Time => libc::CLONE_NEWTIME,
        }
    }

    /// Its name in messages: the `/proc/<pid>/ns/` name, but `network`
    /// (the config's word) for `net`.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::Network => "network",
            other => other.proc_name(),
        }
    }

    /// Name of the namespace file under `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Mount => "mnt",
            Namespace::Pid => "pid",
            Namespace::Network => "net",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Namespaces {
    /// New namespaces, created with `unshare`.
    pub create: Vec<Namespace>,
    /// Existing namespaces joined with `setns`, in this order (user first).
    pub join: Vec<(Namespace, PathBuf)>,
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    /// Offsets for a new time namespace: (clock name, seconds, nanoseconds).
    pub time_offsets: Vec<(String, i64, u32)>,
    /// Chroot isolation: namespaces of `create` that stage 1 shares with
    /// the runtime's when the kernel refuses to create them (EPERM,
    /// EINVAL, ENOSPC, EUSERS), with one diagnostic line each. Empty in
    /// full isolation, where every refusal is an error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_if_refused: Vec<Namespace>,
}

impl Plan {
    /// Whether the plan writes sysctls of namespace `kind` (`net.*` for
    /// the network, `spec::is_ipc_sysctl` for ipc; no others take sysctls
    /// in a namespace joined by path). A namespace joined by path must
    /// then not be the runtime's own: that would change the host's
    /// settings (runc's `isHostNetNS`).
    pub fn writes_sysctls_in(&self, kind: Namespace) -> bool {
        let of_kind = |key: &str| match kind {
            Namespace::Network => key.starts_with("net."),
            Namespace::Ipc => crate::spec::is_ipc_sysctl(key),
            _ => false,
        };
        self.rootfs
            .finish
            .iter()
            .any(|s| matches!(s, Step::Sysctl { key, .. } if of_kind(key)))
    }
}

impl Namespaces {
    pub fn creates(&self, ns: Namespace) -> bool {
        self.create.contains(&ns)
    }

    pub fn has(&self, ns: Namespace) -> bool {
        self.creates(ns) || self.join.iter().any(|(n, _)| *n == ns)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct RootfsPlan {
    /// Absolute host path of the root filesystem (a bundle's `root.path`).
    /// For the host tree it is empty: the root is assembled in the staging
    /// filesystem.
    pub rootfs: PathBuf,
    /// What the new root is made from.
    pub source: RootSource,
    /// Propagation of `/` in the new mount namespace, set before anything
    /// else so that nothing the container mounts reaches the host. It is
    /// `linux.rootfsPropagation` (default rslave), except that unbindable
    /// is private here: the rootfs must still be bound onto itself. The
    /// requested propagation reaches the new root in a last `finish` step
    /// (`Step::RootPropagation`).
    pub root_propagation: PropagationChange,
    /// Steps done before the root switch, in order.
    pub setup: Vec<Step>,
    pub switch: RootSwitch,
    /// Steps done after the root switch, in order.
    pub finish: Vec<Step>,
    /// SELinux context for the filesystems rootcell creates itself (the
    /// tmpfs of masked directories); None without SELinux.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_label: Option<String>,
    /// Chroot isolation: after each config mount, its read-only, nosuid,
    /// nodev and noexec flags are read back (`statfs`) and a missing one
    /// is an error naming `mounts[i]`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verify_mount_flags: bool,
    /// Chroot isolation with `linux.resources.devices`: the whole rule
    /// list (as the devices cgroup would get it). Where no devices cgroup
    /// holds them, the rules are met by the nodes: denied nodes are left
    /// out of the plan, a device node bound by a config mount must be
    /// allowed, and in a host `/dev` bound in place of a refused tmpfs
    /// every denied node is covered by `/dev/null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_rules: Option<Vec<DeviceRule>>,
    /// `RootSwitch::MoveRoot`: the host's proc and sysfs mounts to detach
    /// (or cover) before the move, deepest first, from the mount table the
    /// runtime read for its host facts (those inside the rootfs are kept).
    /// None: init reads its mount table at the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_host_mounts: Option<Vec<PathBuf>>,
    /// Chroot isolation where the process keeps CAP_SYS_ADMIN in its
    /// bounding set: after the root switch, init moves into a child user
    /// namespace with the same ids and a new mount namespace, where the
    /// kernel locks every mount (no remount of a read-only bind, no
    /// unmount of a mask or of the root, even with CAP_SYS_ADMIN there).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lock_mounts: bool,
}

/// What the new root is made from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RootSource {
    /// An OCI bundle's `root.path` (`RootfsPlan::rootfs`), bound onto
    /// itself.
    Bundle,
    /// The host's own tree (the sandbox): the new root is the empty
    /// directory `root` of the staging filesystem, and the first setup step
    /// mounts the host's `/` there (overlay, read-only bind...). Upper
    /// layers live in the staging's `upper/<path>`, their work directories
    /// in `work/<path>`, generated files in `files/`.
    HostTree(Staging),
}

/// The sandbox's own filesystem: upper layers, hidden directories,
/// generated files and the new root's mount point. The runtime makes it
/// before the sandbox exists and keeps it by fd, so that result files are
/// read from it after the command ends, never through a path the command
/// could have changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Staging {
    pub filesystem: StagingFilesystem,
    /// Where the staging is attached in the sandbox's mount namespace while
    /// the root is assembled: a host directory no source of any step lies
    /// in or below (it is covered while the steps run).
    pub mountpoint: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StagingFilesystem {
    /// A tmpfs (`size=`, `mpol=` from the limits): its pages are charged to
    /// the command's memory cgroup.
    Tmpfs { options: Vec<FsOption> },
    /// `--no-tmpfs`: a fresh directory on disk made by the runtime (under
    /// `$TMPDIR`), removed afterwards.
    Directory,
}

/// Where init's procfs handle comes from: every `/proc` access of init
/// (`oom_score_adj`, LSM labels, the exec fifo's reopen) goes through it,
/// never through the container's `/proc` path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InitProcfs {
    /// The container's own fresh `/proc`, taken as it is mounted (when it
    /// stays writable); before it, or without one, a private procfs made
    /// when first needed. Nothing is unmounted when init execs.
    ContainerProc,
    /// A private procfs (`fsopen`) made first thing, before the root switch
    /// and the masks: init runs in a user namespace other than the initial
    /// one, where the kernel makes a new procfs only while one is fully
    /// visible.
    Private,
}

impl InitProcfs {
    pub fn decide(host: &HostFacts, namespaces: &Namespaces) -> InitProcfs {
        if namespaces.has(Namespace::User) || host.rootless || host.nested_user_ns {
            InitProcfs::Private
        } else {
            InitProcfs::ContainerProc
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootSwitch {
    /// `pivot_root(".", ".")` then detach the old root.
    PivotRoot,
    /// `--no-pivot`: `MS_MOVE` the rootfs onto `/` and chroot, after hiding
    /// the host's proc and sysfs mounts.
    MoveRoot,
    /// No mount namespace: only `chroot`. (Chroot *isolation* has a mount
    /// namespace and uses `MoveRoot`.)
    Chroot,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Mount(MountStep),
    Device(DeviceNode),
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    /// Create a directory (and its parents) inside the root, as root.
    Mkdir {
        path: PathBuf,
    },
    /// Hide a path: `/dev/null` over a file, an empty read-only tmpfs over a
    /// directory.
    Mask {
        path: PathBuf,
    },
    /// Bind a path onto itself read-only, recursively.
    ReadOnly {
        path: PathBuf,
    },
    /// Make an existing mount (created earlier by this plan) read-only.
    RemountReadOnly {
        path: PathBuf,
    },
    Sysctl {
        key: String,
        value: String,
    },
    /// Replace stdio fds that point to the host's `/dev/null` with the
    /// container's `/dev/null`.
    ReopenDevNull,
    /// `linux.rootfsPropagation` applied to the new root, last: after it
    /// (unbindable) nothing could be bound from the root any more.
    RootPropagation(PropagationChange),
    /// Host tree: a file the runtime generates (`/etc/passwd`...), written
    /// into the staging's `files/<name>` and then bound where a mount step
    /// with `MountKind::Staging` puts it.
    StagingFile {
        name: PathBuf,
        contents: String,
        mode: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MountStep {
    /// Path inside the container.
    pub destination: PathBuf,
    pub kind: MountKind,
    /// Attributes of the top mount.
    pub attrs: AttrChange,
    /// Attributes of the whole mounted tree.
    pub recursive_attrs: AttrChange,
    pub propagation: Option<PropagationChange>,
    /// Index in the config's `mounts`, for error messages (None for mounts
    /// rootcell adds itself).
    pub config_index: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MountKind {
    /// A new filesystem instance: `fsopen` + `fsconfig` + `fsmount`.
    Fresh {
        fstype: String,
        source: String,
        options: Vec<FsOption>,
        /// `tmpcopyup`: copy what the destination holds into the new tmpfs.
        copy_up: bool,
        /// Chroot isolation: when the kernel refuses the new filesystem
        /// (EPERM or EACCES), bind the host's instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host_fallback: Option<HostFallback>,
    },
    /// A bind of a host path: `open_tree(OPEN_TREE_CLONE)`.
    Bind {
        source: PathBuf,
        recursive: bool,
        /// Make the cloned tree an idmapped mount.
        #[serde(skip_serializing_if = "Option::is_none")]
        idmap: Option<Idmap>,
    },
    /// Host tree: an overlay whose lower layer is the host's directory
    /// `lower` (that one filesystem: overlays do not cross mount points)
    /// and whose upper and work directories are the staging's
    /// `upper/<layer>` and `work/<layer>`. `driver`: the kernel's
    /// overlayfs or the `fuse-overlayfs` daemon (the sandbox's planner
    /// decides; see `OverlayDriver`).
    Overlay {
        lower: PathBuf,
        layer: PathBuf,
        #[serde(default)]
        driver: OverlayDriver,
    },
    /// Host tree: a bind of the staging's `path` (made empty when missing):
    /// hidden directories (`upper/<path>`) and generated files
    /// (`files/<name>`).
    Staging { path: PathBuf },
}

/// The host's own mount bound in place of a fresh `proc`, `sysfs`,
/// `devpts` or `mqueue` the kernel refused (chroot isolation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFallback {
    /// The host's mount point (`/proc`, `/sys`...).
    pub source: PathBuf,
    /// Bind its submounts too (`/proc`, `/sys`).
    pub recursive: bool,
    /// Bind it read-only, recursively (`/sys`).
    pub read_only: bool,
}

/// Who implements a host-tree overlay (`MountKind::Overlay`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum OverlayDriver {
    /// The kernel's overlayfs.
    #[default]
    Kernel,
    /// A `fuse-overlayfs` daemon (`program`), started by the sandbox's
    /// init and serving a FUSE mount that init made.
    Fuse { program: PathBuf },
    /// The kernel's overlayfs, and `fuse-overlayfs` where the kernel
    /// refuses this one mount (rootless: EPERM, EINVAL, EOPNOTSUPP).
    KernelThenFuse { program: PathBuf },
}

impl OverlayDriver {
    /// The `fuse-overlayfs` program this driver may start.
    pub fn fuse_program(&self) -> Option<&std::path::Path> {
        match self {
            OverlayDriver::Kernel => None,
            OverlayDriver::Fuse { program } | OverlayDriver::KernelThenFuse { program } => {
                Some(program)
            }
        }
    }
}

impl std::fmt::Display for OverlayDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverlayDriver::Kernel => write!(f, "kernel overlayfs"),
            OverlayDriver::Fuse { program } => write!(f, "fuse-overlayfs {}", program.display()),
            OverlayDriver::KernelThenFuse { program } => write!(
                f,
                "kernel overlayfs, else fuse-overlayfs {}",
                program.display()
            ),
        }
    }
}

/// An idmapped bind mount (`idmap`/`ridmap`): ids on the source filesystem
/// are shown through these mappings, in the format of user namespace maps
/// (`containerID` is the id on disk, `hostID` the id it appears as).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Idmap {
    /// `ridmap`: every mount of an `rbind` tree, not only the top one.
    pub recursive: bool,
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
}

impl MountKind {
    pub fn fstype(&self) -> &str {
        match self {
            MountKind::Fresh { fstype, .. } => fstype,
            MountKind::Bind { .. } | MountKind::Staging { .. } => "bind",
            MountKind::Overlay { .. } => "overlay",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Char,
    Block,
    Fifo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceNode {
    /// Path inside the container, below `/dev`.
    pub path: PathBuf,
    pub kind: DeviceKind,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Bind the host's node instead of `mknod` (user namespaces).
    pub bind_from_host: bool,
    /// Index in the config's `linux.devices`, for error messages (None for
    /// the default devices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_index: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: u32,
    /// `process.terminal`: the process gets a new pty as its controlling
    /// terminal and stdio, whose master goes to the console socket (or to
    /// the runtime in a foreground `run`).
    pub terminal: bool,
    /// `process.consoleSize` of that terminal; None without a terminal or
    /// when a dimension is 0 (the kernel's default stays, as in runc).
    pub console_size: Option<ConsoleSize>,
    /// (resource number, name, soft, hard).
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub capabilities: Option<Capabilities>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personality: Option<Personality>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_priority: Option<IoPriority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<Scheduler>,
    /// For processes that join a running container; init ignores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec_cpu_affinity: Option<ExecCpuAffinity>,
    pub lsm: Lsm,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<SeccompPlan>,
    /// The last steps before `execve`, in order (`final_steps`): the
    /// executor walks exactly this list, and nothing but `Execve` follows
    /// `LoadSeccomp` (see `final_steps` for the one exception).
    pub final_steps: Vec<FinalStep>,
    /// Settings accepted but not applied as written (ambient capabilities
    /// the kernel cannot raise): the runtime logs them as warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What init waits for, once set up, before it runs the container's
/// process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartSignal {
    /// `create`: `start` opening the exec fifo.
    #[default]
    ExecFifo,
    /// `run`: `Start` on the sync socket, once the runtime is ready for
    /// the process (a terminal to relay, a pid file to write).
    Socket,
    /// `run` where the runtime has nothing to do between init's `Ready` and
    /// the process: init goes on at once (one round trip of the sync
    /// socket less).
    None,
}

/// Which process the final steps are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRole {
    /// The container's init, and what releases it.
    Init { start: StartSignal },
    /// A process `exec` starts in a running container.
    Exec,
}

/// One of the last steps of a container process, after its rootfs (init)
/// or its namespaces and terminal (exec) are set up and the privileged
/// settings (personality, rlimits, scheduler, I/O priority, LSM, bounding
/// set) are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum FinalStep {
    /// `PR_SET_KEEPCAPS`, `setgroups`, `setresgid`, `setresuid` to
    /// `process.user`.
    SwitchUser,
    /// The effective, permitted, inheritable and ambient sets, exactly as
    /// planned. `keep_sys_admin`: CAP_SYS_ADMIN also stays in the effective
    /// and permitted sets (never inheritable, ambient or bounding), because
    /// loading the seccomp filter without no_new_privs needs it; `execve`
    /// drops it, as it recomputes the permitted set from the inheritable,
    /// bounding and ambient sets only.
    SetCapabilities {
        keep_sys_admin: bool,
    },
    NoNewPrivileges,
    /// `chdir(process.cwd)`, the `getcwd` check, `umask`.
    EnterCwd,
    /// HOME from the container's `/etc/passwd`, `args[0]` looked up in
    /// PATH, the argument and environment arrays for `execve`.
    ResolveProgram,
    /// `execCPUAffinity.final` (exec only).
    ExecCpuAffinity,
    /// Init: fds from 3 + preserved close-on-exec, `Ready` to the runtime
    /// (`create` returns).
    Ready,
    /// Init: the exec fifo opened for writing (`start`), or `Start` on the
    /// sync socket (`run`; not planned for `StartSignal::None`).
    WaitForStart,
    /// Init: the startContainer hooks.
    StartContainerHooks,
    /// Init: exec is next ("1" on the exec fifo, or `Exec` to `run`).
    AnnounceExec,
    /// Every fd but stdio, the preserved ones and the sync socket / exec
    /// fifo closed (`close_range`, or a close loop where it is refused).
    CloseFds,
    /// Signal mask and dispositions back to the defaults.
    ResetSignals,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)`. `handoff`: a notifying filter,
    /// whose fd goes to the runtime (one `sendmsg`), which answers once the
    /// agent has it (one `recvmsg`).
    LoadSeccomp {
        handoff: bool,
    },
    Execve,
}

/// A terminal's size in characters (`TIOCSWINSZ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConsoleSize {
    pub height: u16,
    pub width: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rlimit {
    pub name: String,
    pub resource: i32,
    pub soft: u64,
    pub hard: u64,
}

/// Capability sets by kernel capability number.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
    pub inheritable: Vec<String>,
    /// The ambient capabilities raised: those of `process.capabilities.
    /// ambient` that are both permitted and inheritable.
    pub ambient: Vec<String>,
    /// Configured ambient capabilities the kernel would refuse to raise
    /// (not permitted and inheritable): left out with a warning, as runc
    /// does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ambient_left_out: Vec<String>,
}

/// Host facts and namespaces the planners' unit tests share.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A host whose container cgroup is one hierarchy: `fstype` `cgroup`
    /// (a v1 controller, `name`) or `cgroup2`.
    pub fn host_with_cgroup(
        name: &str,
        fstype: &str,
        version: CgroupVersion,
        rootless: bool,
    ) -> HostFacts {
        HostFacts {
            rootless,
            cgroup_version: version,
            cgroup_mounts: vec![CgroupMountSource {
                name: name.into(),
                host_dir: format!("/sys/fs/cgroup/{name}/c").into(),
                fstype: fstype.into(),
                fs_options: Vec::new(),
                aliases: Vec::new(),
            }],
            ..HostFacts::default()
        }
    }

    /// New namespaces of these kinds, nothing joined or mapped.
    pub fn namespaces(create: &[Namespace]) -> Namespaces {
        Namespaces {
            create: create.to_vec(),
            join: Vec::new(),
            uid_mappings: Vec::new(),
            gid_mappings: Vec::new(),
            time_offsets: Vec::new(),
            shared_if_refused: Vec::new(),
        }
    }
}
