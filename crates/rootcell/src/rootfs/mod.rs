//! Stage 3a: executes the filesystem part of a plan inside the container's
//! new mount namespace. Every path inside the container is resolved through
//! the rootfs fd; every mount is attached to an fd.

mod chroot;
mod console;
mod copy_up;
mod fuse_overlay;
mod idmap;
mod staging;

pub use console::open_ptmx;
pub use idmap::IdmappedMounts;
pub use staging::StagingHandle;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::mount::{unmount, UnmountFlags};

use crate::error::{Error, IoContext, Result};
use crate::fs::dev;
use crate::fs::mount::{self as mnt, attach, clone_fd, clone_path};
use crate::fs::mountinfo;
use crate::fs::procfs;
use crate::fs::root::file_type;
use crate::fs::RootDir;
use crate::plan::options::attr;
use crate::plan::{
    AttrChange, DeviceNode, FsOption, MountKind, MountStep, Propagation, PropagationChange,
    RootSource, RootSwitch, RootfsPlan, Step,
};

/// `PROC_SUPER_MAGIC` of statfs(2).
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// `SYSFS_MAGIC` of statfs(2).
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// Files under `/proc` that lxcfs (and only it) may bind over.
const PROC_ALLOWED: [&str; 8] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/net/dev",
];

/// The container's root filesystem while it is being set up.
pub struct Rootfs {
    root: RootDir,
    /// The mount holding the root (our self-bind), for `root.readonly`.
    root_mount: Option<OwnedFd>,
    /// Destinations that a later step remounts read-only...
    remounted: Vec<PathBuf>,
    /// ...and the fds of those mounts once made. Only these are kept: one
    /// fd per mount would run into RLIMIT_NOFILE with many bind mounts.
    mounts: Vec<(PathBuf, OwnedFd)>,
    /// Identity of the rootfs's `/proc` directory, for the `/proc` check.
    proc_dir: Option<(u64, u64)>,
    /// Idmapped bind trees the runtime prepared.
    idmapped: IdmappedMounts,
    /// `context=` option for the tmpfs of masked directories.
    mask_data: Vec<crate::plan::FsOption>,
    /// That tmpfs, once the first masked directory has it: the others get
    /// a bind of it (`mask`).
    mask_tmpfs: Option<OwnedFd>,
    /// The directory the last device node or symlink went into, already
    /// checked (`check_device_dir`), for the next one there: a default
    /// config makes eleven in `/dev` in a row. Any other step forgets it,
    /// since a mount may change what the path names.
    last_dir: Option<(PathBuf, OwnedFd)>,
    /// The host tree (the sandbox): the staging filesystem, and the empty
    /// `root/` directory a mount on `/` is attached to.
    staging: Option<(staging::StagingDirs, OwnedFd)>,
    /// `/dev/fuse` (`O_PATH`), when an overlay may be `fuse-overlayfs`'s,
    /// and where the staging is attached.
    fuse_device: Option<(OwnedFd, PathBuf)>,
    /// Chroot isolation: config mounts' flags are read back after
    /// mounting (`RootfsPlan::verify_mount_flags`).
    verify_flags: bool,
    /// Chroot isolation: the device rules met by the nodes
    /// (`RootfsPlan::device_rules`).
    device_rules: Option<Vec<crate::plan::DeviceRule>>,
    /// Chroot isolation: trees of the host bound in place of a refused
    /// tmpfs (`/dev`, the cgroup layout), with the config mount they stand
    /// for: nothing is created in them, and that mount's other steps are
    /// left out.
    host_trees: Vec<(PathBuf, Option<usize>)>,
    /// `RootfsPlan::hide_host_mounts`: what `MoveRoot` hides.
    hide_host_mounts: Option<Vec<PathBuf>>,
}

/// Who the host tree is assembled for (`Rootfs::prepare_host_tree`).
#[derive(Debug, Clone, Copy)]
pub struct HostTreeOptions {
    /// The sandbox's user and group: owner of the hidden directories.
    pub owner: (u32, u32),
    /// The sandbox runs in a user namespace (overlays need `userxattr`).
    pub user_ns: bool,
}

impl Rootfs {
    /// Makes `/` slave (or as configured) and binds the rootfs onto itself so
    /// that it is a mount point we hold by fd.
    pub fn prepare(plan: &RootfsPlan, idmapped: IdmappedMounts) -> Result<Rootfs> {
        if plan.switch == RootSwitch::Chroot {
            let root = RootDir::open(&plan.rootfs)
                .ctx(|| format!("root.path {}", plan.rootfs.display()))?;
            return Ok(Rootfs {
                root,
                root_mount: None,
                remounted: Vec::new(),
                mounts: Vec::new(),
                proc_dir: None,
                idmapped,
                mask_data: Vec::new(),
                mask_tmpfs: None,
                last_dir: None,
                staging: None,
                fuse_device: None,
                verify_flags: plan.verify_mount_flags,
                device_rules: plan.device_rules.clone(),
                host_trees: Vec::new(),
                hide_host_mounts: plan.hide_host_mounts.clone(),
            });
        }
        // By default (rslave) nothing the container mounts flows back to
        // the host, while the host's later mounts still reach it.
        mnt::set_propagation_at(Path::new("/"), plan.root_propagation).ctx(|| {
            "linux.rootfsPropagation: propagation of / in the container's mount namespace"
        })?;
        // The rootfs path is resolved once; the bind is cloned from and
        // attached onto that same directory.
        let dir = rustix::fs::open(
            &plan.rootfs,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ctx(|| format!("root.path {}", plan.rootfs.display()))?;
        // After a recursive slave/private/unbindable change nothing is
        // shared any more; only then can the mountinfo lookup be skipped.
        let nothing_shared =
            plan.root_propagation.recursive && plan.root_propagation.kind != Propagation::Shared;
        if !nothing_shared {
            // A slave stays one: the self-bind then receives the host's
            // mounts, as `slave` asks.
            let kind = match plan.root_propagation.kind {
                Propagation::Slave => Propagation::Slave,
                _ => Propagation::Private,
            };
            make_parent_mount_unshared(&dir, &plan.rootfs, kind)?;
        }
        let tree = clone_fd(dir.as_fd(), true)
            .ctx(|| format!("root.path {}: bind", plan.rootfs.display()))?;
        attach(tree.as_fd(), dir.as_fd())
            .ctx(|| format!("root.path {}: attach", plan.rootfs.display()))?;
        let root_fd = tree.try_clone().ctx(|| "dup rootfs fd")?;
        Ok(Rootfs {
            root: RootDir::from_fd(root_fd),
            root_mount: Some(tree),
            remounted: remounted_paths(plan),
            mounts: Vec::new(),
            proc_dir: None,
            idmapped,
            mask_data: plan
                .mount_label
                .as_deref()
                .map(crate::plan::build::context_option)
                .into_iter()
                .collect(),
            mask_tmpfs: None,
            last_dir: None,
            staging: None,
            fuse_device: None,
            verify_flags: plan.verify_mount_flags,
            device_rules: plan.device_rules.clone(),
            host_trees: Vec::new(),
            hide_host_mounts: plan.hide_host_mounts.clone(),
        })
    }

    /// `RootSource::HostTree` (the sandbox): makes `/` of the (new,
    /// private) mount namespace as the plan says, attaches the staging at
    /// its mountpoint and makes its directories. The root is the empty
    /// `root/` of the staging until a step mounts something on `/`.
    pub fn prepare_host_tree(
        plan: &RootfsPlan,
        handle: StagingHandle,
        opts: HostTreeOptions,
    ) -> Result<Rootfs> {
        let RootSource::HostTree(staging) = &plan.source else {
            return Err(Error::Other(
                "prepare_host_tree: the plan's root is not the host tree".into(),
            ));
        };
        // Nothing mounted from here on may reach the host.
        mnt::set_propagation_at(Path::new("/"), plan.root_propagation)
            .ctx(|| "propagation of / in the sandbox's mount namespace")?;
        let sticky = staging::sticky_destinations(plan.setup.iter().chain(&plan.finish));
        // The host's /dev/fuse, before the staging may cover /dev.
        let fuse_device = if crate::sandbox::overlay_driver::any_fuse(&plan.setup) {
            let device = fuse_overlay::open_device().ctx(|| "fuse-overlayfs: /dev/fuse")?;
            Some((device, staging.mountpoint.clone()))
        } else {
            None
        };
        let (dirs, root_dir) =
            staging::attach_staging(staging, handle, opts.owner, opts.user_ns, sticky)?;
        // Hidden directories live in `upper/`, inside the upper layers of
        // the overlays above them: they are made before any overlay is
        // mounted, as an overlay's upper layer may not change under it
        // (a directory made later is one the overlay does not know: its
        // copy-up then fails with ENOTEMPTY).
        for step in &plan.setup {
            if let Step::Mount(MountStep {
                kind: MountKind::Staging { path },
                destination,
                ..
            }) = step
            {
                // `files/<name>` are the generated files, written later.
                let in_upper = path
                    .components()
                    .find(|c| matches!(c, std::path::Component::Normal(_)))
                    .is_some_and(|c| c.as_os_str() == "upper");
                if !in_upper {
                    continue;
                }
                dirs.source(path, destination)
                    .ctx(|| format!("{}: staging {}", destination.display(), path.display()))?;
            }
        }
        let root = root_dir.try_clone().ctx(|| "dup of the staging's root/")?;
        Ok(Rootfs {
            root: RootDir::from_fd(root),
            root_mount: None,
            remounted: remounted_paths(plan),
            mounts: Vec::new(),
            proc_dir: None,
            idmapped: IdmappedMounts::default(),
            mask_data: Vec::new(),
            mask_tmpfs: None,
            last_dir: None,
            staging: Some((dirs, root_dir)),
            fuse_device,
            verify_flags: plan.verify_mount_flags,
            device_rules: plan.device_rules.clone(),
            host_trees: Vec::new(),
            hide_host_mounts: plan.hide_host_mounts.clone(),
        })
    }

    pub fn run_steps(&mut self, steps: &[Step]) -> Result<()> {
        for step in steps {
            self.run_step(step)?;
            if crate::phase::enabled() {
                crate::phase::mark(&format!("step: {step}"));
            }
        }
        Ok(())
    }

    fn run_step(&mut self, step: &Step) -> Result<()> {
        if !matches!(step, Step::Device(_) | Step::Symlink { .. }) {
            self.last_dir = None;
        }
        match step {
            Step::Mount(m) => self.mount(m),
            Step::Device(d) => self.device(d),
            Step::Symlink { target, link } => self.symlink(target, link),
            Step::Mkdir { path } => self
                .root
                .mkdir_all(path, 0o755)
                .map(drop)
                .ctx(|| format!("{}", path.display())),
            Step::Mask { path } => self.mask(path),
            Step::ReadOnly { path } => self.read_only(path),
            Step::RemountReadOnly { path } => self.remount_read_only(path),
            Step::Sysctl { key, value } => {
                procfs::write_sysctl(key, value).ctx(|| format!("linux.sysctl.{key}"))
            }
            Step::ReopenDevNull => self.reopen_dev_null(),
            Step::StagingFile {
                name,
                contents,
                mode,
            } => match &self.staging {
                Some((dirs, _)) => dirs
                    .write_file(name, contents, *mode)
                    .ctx(|| format!("staging file files/{}", name.display())),
                None => Err(Error::Other(format!(
                    "staging file {}: no staging filesystem for this root",
                    name.display()
                ))),
            },
            Step::RootPropagation(change) => match &self.root_mount {
                Some(root) => mnt::set_propagation(root, *change).ctx(|| "linux.rootfsPropagation"),
                None => Ok(()),
            },
        }
    }

    /// Whether `path` lies in a host tree bound in place of a refused
    /// tmpfs (below it, or the tree itself once bound).
    fn in_host_tree(&self, path: &Path) -> bool {
        self.host_trees.iter().any(|(t, _)| path.starts_with(t))
    }

    fn mount(&mut self, m: &MountStep) -> Result<()> {
        // The rest of a cgroup layout whose tmpfs was replaced by the
        // host's cgroup tree: the host's hierarchies are shown instead.
        if m.config_index.is_some()
            && self
                .host_trees
                .iter()
                .any(|(t, i)| *i == m.config_index && m.destination.starts_with(t))
        {
            return Ok(());
        }
        let field = match m.config_index {
            Some(i) => format!("mounts[{i}] ({})", m.destination.display()),
            None => m.destination.display().to_string(),
        };
        // Flags the mount must have beyond the step's (a host fallback's
        // read-only).
        let mut extra_flags = 0;
        // A fresh procfs (not a host fallback): init's procfs handle once
        // attached at /proc (see below).
        let mut fresh_proc = false;
        // Source first: a missing bind source must not leave a mountpoint.
        let (tree, directory) = match &m.kind {
            MountKind::Fresh {
                fstype,
                source,
                options,
                host_fallback,
                ..
            } => {
                let attrs = m.attrs.set | m.recursive_attrs.set;
                let inherited = self.tmpfs_mode_of_existing_dir(fstype, options, &m.destination);
                let options = match inherited {
                    Some(mode) => [options.as_slice(), &[mode]].concat(),
                    None => options.clone(),
                };
                match (mnt::fresh(fstype, source, &options, attrs), host_fallback) {
                    (Ok(fd), _) => {
                        fresh_proc = fstype == "proc";
                        (fd, true)
                    }
                    // Chroot isolation: the kernel refuses a fresh proc or
                    // sysfs where the caller does not own the namespaces
                    // (or the outer /proc has masked submounts): bind the
                    // host's instead, as the plan says.
                    (Err(e), Some(fallback))
                        if matches!(
                            e.errno,
                            rustix::io::Errno::PERM | rustix::io::Errno::ACCESS
                        ) =>
                    {
                        if fallback.read_only {
                            extra_flags |= attr::RDONLY;
                        }
                        // What is not isolated is said, never silent: the
                        // host's /proc shows the processes of the runtime's
                        // pid namespace, its /sys the host's devices.
                        if matches!(fstype.as_str(), "proc" | "sysfs") {
                            eprintln!(
                                "rootcell: chroot isolation: {field}: a fresh {fstype} was refused ({}): the host's {} is bound instead{}",
                                std::io::Error::from(e.errno),
                                fallback.source.display(),
                                if fstype == "proc" {
                                    "; it shows the processes of the runtime's pid namespace"
                                } else {
                                    ", read-only"
                                }
                            );
                        }
                        if fstype == "tmpfs" {
                            eprintln!(
                                "rootcell: chroot isolation: {field}: a tmpfs was refused ({e}): the host's {} is bound instead{}",
                                fallback.source.display(),
                                if fallback.read_only { ", read-only" } else { " (nothing is created in it)" }
                            );
                            self.host_trees
                                .push((m.destination.clone(), m.config_index));
                        }
                        (chroot::host_fallback(m, fallback, &e, &field)?, true)
                    }
                    // Full isolation: a refused proc or sysfs is what
                    // `--isolation auto` falls back to chroot isolation for.
                    (Err(e), None)
                        if matches!(fstype.as_str(), "proc" | "sysfs")
                            && matches!(
                                e.errno,
                                rustix::io::Errno::PERM | rustix::io::Errno::ACCESS
                            ) =>
                    {
                        return Err(Error::IsolationRefused {
                            what: format!("a fresh {fstype} mount"),
                            message: format!(
                                "{field}: {e}: the kernel refuses a fresh {fstype} mount here \
                                 (a namespace the runtime does not own, or the outer {} with \
                                 masked submounts)",
                                if fstype == "proc" { "/proc" } else { "/sys" }
                            ),
                        })
                    }
                    (Err(e), _) => return Err(Error::Other(format!("{field}: {e}"))),
                }
            }
            MountKind::Bind {
                source,
                recursive,
                idmap,
            } => {
                let prepared = match (idmap, m.config_index) {
                    (Some(_), Some(i)) => self.idmapped.take(i),
                    _ => None,
                };
                let fd = match prepared {
                    Some(fd) => fd,
                    None if idmap.is_some() => {
                        return Err(Error::Other(format!(
                            "{field}: the idmapped tree was not prepared"
                        )))
                    }
                    None => clone_path(source, *recursive)
                        .ctx(|| format!("{field}: source {}", source.display()))?,
                };
                // The type of what was cloned, not of a second lookup.
                let dir = file_type(&fd).ctx(|| format!("{field}: source {}", source.display()))?
                    == rustix::fs::FileType::Directory;
                if let Some(rules) = &self.device_rules {
                    chroot::check_bound_device(&fd, rules, &field)?;
                }
                (fd, dir)
            }
            MountKind::Overlay {
                lower,
                layer,
                driver,
            } => (self.overlay(lower, layer, driver, m, &field)?, true),
            MountKind::Staging { path } => {
                let Some((dirs, _)) = &self.staging else {
                    return Err(Error::Other(format!(
                        "{field}: no staging filesystem for this root"
                    )));
                };
                let source = dirs
                    .source(path, &m.destination)
                    .ctx(|| format!("{field}: staging {}", path.display()))?;
                let dir = file_type(&source)
                    .ctx(|| format!("{field}: staging {}", path.display()))?
                    == rustix::fs::FileType::Directory;
                let fd = clone_fd(source.as_fd(), false)
                    .ctx(|| format!("{field}: bind of staging {}", path.display()))?;
                (fd, dir)
            }
        };
        // The host tree's root: the staging's `root/`, and then the root
        // is what was mounted there.
        let new_root = self.staging.is_some() && m.destination == Path::new("/");
        let target = if new_root {
            let (_, root_dir) = self.staging.as_ref().expect("checked above");
            root_dir
                .try_clone()
                .ctx(|| format!("{field}: mountpoint"))?
        } else {
            self.check_special_destination(&m.destination, &field)?;
            if self.in_host_tree(&m.destination) {
                // Nothing is created in a host tree.
                self.root.resolve(&m.destination).map_err(|e| {
                    Error::Other(format!(
                        "{field}: a host tree is bound in place of a refused tmpfs, and {} cannot be used there ({e}); nothing is created in it",
                        m.destination.display()
                    ))
                })?;
            }
            let target = self
                .root
                .mountpoint(&m.destination, directory)
                .ctx(|| format!("{field}: mountpoint"))?;
            self.check_proc_target(&target, m, &field)?;
            target
        };
        if let MountKind::Bind { .. } | MountKind::Staging { .. } = m.kind {
            mnt::set_attrs(&tree, m.attrs, false).ctx(|| format!("{field}: mount attributes"))?;
            mnt::set_attrs(&tree, m.recursive_attrs, true)
                .ctx(|| format!("{field}: recursive mount attributes"))?;
        }
        if let MountKind::Fresh { copy_up: true, .. } = m.kind {
            copy_up::copy_tree(&target, &tree)
                .map_err(|e| Error::Other(format!("{field}: tmpcopyup: {e}")))?;
        }
        attach(tree.as_fd(), target.as_fd()).ctx(|| format!("{field}: attach"))?;
        // The container's own procfs, in init's pid namespace, serves init
        // from now on (`procfs::adopt`) if it stays writable: init writes
        // `oom_score_adj` and LSM labels through it.
        if fresh_proc
            && m.destination == Path::new("/proc")
            && (m.attrs.set | m.recursive_attrs.set) & attr::RDONLY == 0
            && !self.remounted.contains(&m.destination)
        {
            procfs::adopt(tree.try_clone().ctx(|| format!("{field}: dup"))?);
        }
        // The host's /dev in place of a refused tmpfs, or bound by the
        // config: the nodes the rules deny are covered.
        let host_dev = m.destination == Path::new("/dev")
            && (self.in_host_tree(&m.destination) || matches!(m.kind, MountKind::Bind { .. }));
        if let (true, Some(rules)) = (host_dev, &self.device_rules) {
            chroot::cover_denied_nodes(&tree, rules, &field)?;
        }
        if self.verify_flags && m.config_index.is_some() {
            chroot::verify_flags(&tree, m, extra_flags, &field)?;
        }
        if let Some(p) = m.propagation {
            mnt::set_propagation(&tree, p).ctx(|| format!("{field}: propagation"))?;
        }
        if new_root {
            // Later steps resolve their paths in what was mounted on `/`.
            let root = tree.try_clone().ctx(|| format!("{field}: dup"))?;
            self.root = RootDir::from_fd(root);
            self.proc_dir = None;
            self.root_mount = Some(tree);
        } else if self.remounted.contains(&m.destination) {
            self.mounts.push((m.destination.clone(), tree));
        }
        Ok(())
    }

    /// A tmpfs without `mode=` over an existing directory keeps that
    /// directory's mode, as in runc (a /tmp of 1777 stays 1777, a private
    /// directory stays private); a new directory gets tmpfs's default.
    fn tmpfs_mode_of_existing_dir(
        &self,
        fstype: &str,
        options: &[FsOption],
        dest: &Path,
    ) -> Option<FsOption> {
        let has_mode = options
            .iter()
            .any(|o| matches!(o, FsOption::Value(k, _) if k == "mode"));
        if fstype != "tmpfs" || has_mode {
            return None;
        }
        let fd = self.root.resolve(dest).ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        (rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory)
            .then(|| FsOption::Value("mode".into(), format!("{:o}", st.st_mode & 0o7777)))
    }

    /// `/proc` and `/sys` must be real directories in the rootfs, not
    /// symlinks to somewhere the container chose.
    fn check_special_destination(&self, dest: &Path, field: &str) -> Result<()> {
        if dest != Path::new("/proc") && dest != Path::new("/sys") {
            return Ok(());
        }
        match self.root.resolve_nofollow(dest) {
            Ok(fd) => {
                if file_type(&fd).ctx(|| format!("{field}: stat"))?
                    != rustix::fs::FileType::Directory
                {
                    return Err(Error::Other(format!(
                        "{field}: {} in the rootfs is not a directory (a symlink there could redirect the mount)",
                        dest.display()
                    )));
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx(|| field.to_string()),
        }
    }

    /// Nothing but procfs itself may be mounted over `/proc`, and inside a
    /// procfs only the lxcfs files. Checked on the resolved target (its
    /// inode and its filesystem), so symlinks cannot smuggle a mount there.
    fn check_proc_target(&mut self, target: &OwnedFd, m: &MountStep, field: &str) -> Result<()> {
        let on_procfs = rustix::fs::fstatfs(target)
            .map(|s| s.f_type == PROC_SUPER_MAGIC)
            .ctx(|| format!("{field}: statfs of the target"))?;
        if !on_procfs {
            let st = rustix::fs::fstat(target).ctx(|| format!("{field}: stat of the target"))?;
            let is_proc_dir = self.proc_dir_identity() == Some((st.st_dev, st.st_ino));
            if !is_proc_dir || m.kind.fstype() == "proc" {
                return Ok(());
            }
        }
        let resolved =
            crate::fs::procfs::path_of(target).ctx(|| format!("{field}: target path"))?;
        let real_root = procfs::path_of(self.root.fd()).ctx(|| format!("{field}: rootfs path"))?;
        let inside = resolved
            .strip_prefix(&real_root)
            .map(|p| Path::new("/").join(p))
            .unwrap_or(resolved);
        if on_procfs && PROC_ALLOWED.iter().any(|p| inside == Path::new(p)) {
            return Ok(());
        }
        Err(Error::Other(format!(
            "{field}: destination resolves to {} inside the container: only procfs may be mounted on /proc, and only {} below it",
            inside.display(),
            PROC_ALLOWED.join(", ")
        )))
    }

    /// A device node is made (or a host node bound) only in a directory
    /// that is not on procfs or sysfs: its parent was resolved in the root,
    /// and a symlink on the way (`/dev/sub -> /proc/sys/kernel`, or `/dev`
    /// itself linked into `/sys`) must not place it in the kernel's files,
    /// the check mounts get from `check_proc_target`. Anywhere else it stays
    /// in the rootfs.
    fn check_device_dir(&self, dir: &OwnedFd, field: &str) -> Result<()> {
        let fs = rustix::fs::fstatfs(dir)
            .ctx(|| format!("{field}: statfs of its directory"))?
            .f_type;
        if fs != PROC_SUPER_MAGIC && fs != SYSFS_MAGIC {
            return Ok(());
        }
        let resolved = procfs::path_of(dir).ctx(|| format!("{field}: directory path"))?;
        let real_root = procfs::path_of(self.root.fd()).ctx(|| format!("{field}: rootfs path"))?;
        let inside = resolved
            .strip_prefix(&real_root)
            .map(|p| Path::new("/").join(p))
            .unwrap_or(resolved);
        Err(Error::Other(format!(
            "{field}: its directory resolves to {} inside the container, on {}: device nodes are never made in /proc or /sys",
            inside.display(),
            if fs == PROC_SUPER_MAGIC { "procfs" } else { "sysfs" }
        )))
    }

    /// (device, inode) of what `/proc` resolves to in the rootfs, looked up
    /// once.
    fn proc_dir_identity(&mut self) -> Option<(u64, u64)> {
        if self.proc_dir.is_none() {
            let fd = self.root.resolve(Path::new("/proc")).ok()?;
            let st = rustix::fs::fstat(&fd).ok()?;
            self.proc_dir = Some((st.st_dev, st.st_ino));
        }
        self.proc_dir
    }

    fn device(&mut self, d: &DeviceNode) -> Result<()> {
        let field = match d.config_index {
            Some(i) => format!("linux.devices[{i}].path ({})", d.path.display()),
            None => format!("device {}", d.path.display()),
        };
        let in_host_tree = self.in_host_tree(&d.path);
        let (dir, name) = self.enter_device_dir(&d.path, &field)?;
        if in_host_tree {
            // The host's own node must be there: nothing is made in it.
            return chroot::check_host_node(dir, name, d, &field);
        }
        if !d.bind_from_host {
            match dev::make_node(dir, name, d) {
                Ok(()) => return Ok(()),
                // Creating nodes is refused in user namespaces: bind instead.
                Err(rustix::io::Errno::PERM) => {}
                Err(e) => return Err(e).ctx(|| format!("{field}: mknod")),
            }
        }
        let tree = host_node(d).ctx(|| format!("{field}: bind from host"))?;
        let target = dev::make_bind_target(dir, name).ctx(|| format!("{field}: create"))?;
        attach(tree.as_fd(), target.as_fd()).ctx(|| format!("{field}: attach"))
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> Result<()> {
        if self.in_host_tree(link) {
            // A host tree has its own links; nothing is made in it.
            return Ok(());
        }
        let field = format!("symlink {}", link.display());
        let (dir, name) = self.enter_device_dir(link, &field)?;
        dev::symlink(dir, name, target).ctx(|| field.clone())
    }

    /// The directory `path` goes into (made if missing) and `path`'s last
    /// component, for a device node or a symlink: the directory of the
    /// step before when it is the same (`last_dir`), else resolved in the
    /// root and checked not to be on procfs or sysfs (`check_device_dir`).
    fn enter_device_dir<'p>(
        &mut self,
        path: &'p Path,
        field: &str,
    ) -> Result<(BorrowedFd<'_>, &'p Path)> {
        let name = path
            .file_name()
            .map(Path::new)
            .ok_or_else(|| Error::Other(format!("{field}: no file name")))?;
        let parent = path.parent().unwrap_or(Path::new("/"));
        let entry = match self.last_dir.take() {
            Some(entry) if entry.0 == parent => entry,
            _ => {
                let (dir, _) = self.root.parent_of(path).ctx(|| field.to_string())?;
                self.check_device_dir(&dir, field)?;
                (parent.to_path_buf(), dir)
            }
        };
        let (_, dir) = &*self.last_dir.insert(entry);
        Ok((dir.as_fd(), name))
    }

    /// Switches the process's root to the rootfs, then gives it the
    /// configured propagation (pivot_root refuses shared mounts, so a shared
    /// rootfs is only made shared once it is the root).
    /// `--isolation auto`: whether `pivot_root` into the rootfs would be
    /// refused with EINVAL (a root on the initramfs, a runtime chrooted
    /// into a directory), tried in a forked child in a mount namespace of
    /// its own that is thrown away. Init asks before the prestart and
    /// createRuntime hooks run, so that a refusal retries in chroot
    /// isolation before any hook has run for the failed attempt.
    pub fn probe_pivot_root(&self) -> Result<()> {
        const REFUSED: i32 = 22;
        let root = self.root.fd();
        match crate::process::sys::fork().ctx(|| "fork to try pivot_root")? {
            crate::process::sys::Forked::Child => {
                // chdir first: unshare moves the cwd to its copy in the new
                // namespace (an fd keeps naming the old namespace's mount,
                // which pivot_root refuses with EINVAL).
                let tried = rustix::process::fchdir(root)
                    .and_then(|()| {
                        crate::process::sys::unshare(libc::CLONE_NEWNS)
                            .map_err(|_| rustix::io::Errno::PERM)
                    })
                    .and_then(|()| rustix::process::pivot_root(".", "."));
                crate::process::sys::exit_now(match tried {
                    Ok(()) => 0,
                    Err(rustix::io::Errno::INVAL) => REFUSED,
                    Err(_) => 1,
                })
            }
            crate::process::sys::Forked::Parent(pid) => {
                let status = rustix::process::waitpid(
                    rustix::process::Pid::from_raw(pid),
                    rustix::process::WaitOptions::empty(),
                );
                let code = status.ok().flatten().and_then(|(_, s)| s.exit_status());
                if code == Some(REFUSED) {
                    return Err(Error::IsolationRefused {
                        what: "pivot_root".into(),
                        message:
                            "pivot_root: Invalid argument (os error 22), tried before the hooks"
                                .into(),
                    });
                }
                // Any other outcome: the real pivot_root decides.
                Ok(())
            }
        }
    }

    pub fn switch(&mut self, how: RootSwitch) -> Result<()> {
        match how {
            RootSwitch::PivotRoot => {
                // Held by fd: after the pivot, "." names the new root (our
                // cwd), not the old root stacked on top of it.
                let old_root = rustix::fs::open(
                    "/",
                    rustix::fs::OFlags::PATH
                        | rustix::fs::OFlags::DIRECTORY
                        | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .ctx(|| "opening the old root")?;
                rustix::process::fchdir(self.root.fd()).ctx(|| "chdir to rootfs")?;
                // pivot_root(".", ".") stacks the old root on top of the new
                // one; detaching "." then removes the host's tree entirely.
                rustix::process::pivot_root(".", ".").map_err(|e| {
                    let io = Error::Io {
                        context: "pivot_root".into(),
                        cause: e.into(),
                    };
                    // EINVAL: the root is on the initramfs (rootfs), which
                    // cannot be pivoted away; chroot isolation does not pivot.
                    if e == rustix::io::Errno::INVAL {
                        Error::IsolationRefused {
                            what: "pivot_root".into(),
                            message: io.to_string(),
                        }
                    } else {
                        io
                    }
                })?;
                // The old root becomes a slave first, so that detaching it
                // cannot propagate to the host whatever its propagation was.
                mnt::set_propagation(
                    &old_root,
                    PropagationChange {
                        kind: Propagation::Slave,
                        recursive: true,
                    },
                )
                .ctx(|| "making the old root a slave")?;
                drop(old_root);
                // umount2 looks up the topmost mount at ".": the old root.
                unmount(".", UnmountFlags::DETACH).ctx(|| "detaching the old root")?;
                rustix::process::chdir("/").ctx(|| "chdir /")?;
            }
            RootSwitch::MoveRoot => {
                let rootfs = procfs::path_of(self.root.fd()).ctx(|| "rootfs path")?;
                hide_host_proc_and_sys(&rootfs, self.hide_host_mounts.take())?;
                rustix::process::fchdir(self.root.fd()).ctx(|| "chdir to rootfs")?;
                rustix::mount::mount_move(".", "/").ctx(|| "moving the rootfs onto /")?;
                rustix::process::chroot(".").ctx(|| "chroot")?;
                rustix::process::chdir("/").ctx(|| "chdir /")?;
            }
            RootSwitch::Chroot => {
                rustix::process::fchdir(self.root.fd()).ctx(|| "chdir to rootfs")?;
                rustix::process::chroot(".").ctx(|| "chroot")?;
                rustix::process::chdir("/").ctx(|| "chdir /")?;
            }
        }
        // From here on the root is "/".
        self.root = RootDir::open(Path::new("/")).ctx(|| "opening the new root")?;
        Ok(())
    }

    fn reopen_dev_null(&mut self) -> Result<()> {
        let mut container_null: Option<OwnedFd> = None;
        for fd in 0..3 {
            // SAFETY: 0..3 are the standard fds, open for the life of the process.
            let std_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            if !dev::is_char_device(std_fd, 1, 3).unwrap_or(false) {
                continue;
            }
            if container_null.is_none() {
                container_null = Some(self.open_dev_null()?);
            }
            if let Some(null) = &container_null {
                let result = match fd {
                    0 => rustix::stdio::dup2_stdin(null),
                    1 => rustix::stdio::dup2_stdout(null),
                    _ => rustix::stdio::dup2_stderr(null),
                };
                result.ctx(|| "reopening stdio on /dev/null")?;
            }
        }
        Ok(())
    }

    /// The container's `/dev/null` opened read-write, the very inode
    /// `verified_dev_null` checked. Opened again by path (one `openat2`)
    /// and compared with the checked `O_PATH` fd, rather than reopened
    /// through procfs' `fd/N` magic link, which costs init a procfs handle
    /// of its own and some 35 syscalls (0.15 ms of every start). Between
    /// the check and the open no process of the container exists yet; a
    /// node swapped by anything else is refused by the comparison.
    fn open_dev_null(&self) -> Result<OwnedFd> {
        let (checked, was) = self.verified_dev_null()?;
        let by_path = self.root.open_nofollow(
            Path::new("/dev/null"),
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY,
        );
        let Some(opened) = by_path else {
            // openat2 cannot answer (an old kernel): through procfs, which
            // opens that very inode.
            return procfs::reopen(checked, pathrs::flags::OpenFlags::O_RDWR)
                .ctx(|| "reopening /dev/null");
        };
        let opened = opened.ctx(|| "opening /dev/null in the container")?;
        let is = rustix::fs::fstat(&opened).ctx(|| "/dev/null: stat")?;
        if (was.st_dev, was.st_ino) != (is.st_dev, is.st_ino) {
            return Err(Error::Other(
                "/dev/null in the container was replaced while it was opened; refusing to use it"
                    .into(),
            ));
        }
        Ok(opened)
    }

    /// The container's `/dev/null` (`O_PATH`) and its stat, checked to be
    /// the real null device: a hostile rootfs may have replaced it with a
    /// symlink or another file.
    fn verified_dev_null(&self) -> Result<(OwnedFd, rustix::fs::Stat)> {
        let fd = self
            .root
            .resolve_nofollow(Path::new("/dev/null"))
            .ctx(|| "/dev/null in the container")?;
        let st = rustix::fs::fstat(&fd).ctx(|| "/dev/null: stat")?;
        if !dev::is_null_device(&st) {
            return Err(Error::Other(
                "/dev/null in the container is not the null device (1:3); refusing to use it"
                    .into(),
            ));
        }
        Ok((fd, st))
    }

    fn mask(&mut self, path: &Path) -> Result<()> {
        let field = format!("linux.maskedPaths {}", path.display());
        let target = match self.root.resolve(path) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).ctx(|| field.clone()),
        };
        let is_dir =
            file_type(&target).ctx(|| format!("{field}: stat"))? == rustix::fs::FileType::Directory;
        let tree = match (is_dir, &self.mask_tmpfs) {
            // One empty read-only tmpfs for every masked directory: a bind
            // of the first costs an `open_tree`, a tmpfs of its own a
            // superblock made now and torn down when the container ends.
            (true, Some(first)) => {
                clone_fd(first.as_fd(), false).ctx(|| format!("{field}: bind the mask"))?
            }
            (true, None) => mnt::fresh(
                "tmpfs",
                "tmpfs",
                &self.mask_data,
                attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
            )
            .map_err(|e| Error::Other(format!("{field}: {e}")))?,
            (false, _) => {
                let (null, _) = self.verified_dev_null()?;
                clone_fd(null.as_fd(), false).ctx(|| format!("{field}: bind /dev/null"))?
            }
        };
        attach(tree.as_fd(), target.as_fd()).ctx(|| format!("{field}: attach"))?;
        if is_dir && self.mask_tmpfs.is_none() {
            self.mask_tmpfs = Some(tree);
        }
        Ok(())
    }

    fn read_only(&mut self, path: &Path) -> Result<()> {
        let field = format!("linux.readonlyPaths {}", path.display());
        let target = match self.root.resolve(path) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).ctx(|| field.clone()),
        };
        let tree = clone_fd(target.as_fd(), true).ctx(|| format!("{field}: bind"))?;
        let ro = AttrChange {
            set: attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
            clear: 0,
        };
        mnt::set_attrs(&tree, ro, true).ctx(|| format!("{field}: read-only"))?;
        attach(tree.as_fd(), target.as_fd()).ctx(|| format!("{field}: attach"))
    }

    fn remount_read_only(&mut self, path: &Path) -> Result<()> {
        let ro = AttrChange {
            set: attr::RDONLY,
            clear: 0,
        };
        let fd = if path == Path::new("/") {
            self.root_mount.as_ref()
        } else {
            self.mounts
                .iter()
                .rev()
                .find(|(dest, _)| dest == path)
                .map(|(_, fd)| fd)
        };
        let Some(fd) = fd else {
            return Err(Error::Other(format!(
                "{}: no mount to make read-only",
                path.display()
            )));
        };
        mnt::set_attrs(fd, ro, false).ctx(|| format!("remounting {} read-only", path.display()))?;
        if self.verify_flags
            && mnt::missing_attrs(fd, attr::RDONLY).ctx(|| format!("{}: statfs", path.display()))?
                != 0
        {
            return Err(Error::Other(format!(
                "{}: still writable after the read-only remount",
                path.display()
            )));
        }
        Ok(())
    }
}

/// If the mount holding the rootfs is shared, makes it private (or a slave,
/// `kind`): attaching the rootfs's self-bind below a shared mount would
/// propagate it to the mount's peers (the host), and `pivot_root` refuses
/// a shared parent. Only happens when `rootfsPropagation` leaves mounts
/// shared (shared, or a non-recursive value).
fn make_parent_mount_unshared(rootfs: &OwnedFd, path: &Path, kind: Propagation) -> Result<()> {
    let field = || format!("root.path {}: parent mount", path.display());
    let (id, _) = mnt::mount_of(rootfs).ctx(field)?;
    let Some(point) = mountinfo::read_self()?
        .into_iter()
        .find(|m| m.mount_id == id && m.shared().is_some())
        .map(|m| m.mount_point)
    else {
        return Ok(());
    };
    // Open the mount point and check it is that mount's root before
    // changing it: the path is only a name from mountinfo.
    let fd = rustix::fs::open(
        &point,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(field)?;
    if mnt::mount_of(&fd).ctx(field)? != (id, true) {
        return Err(Error::Other(format!(
            "{}: {} changed while it was being made private",
            field(),
            point.display()
        )));
    }
    mnt::set_propagation(
        &fd,
        PropagationChange {
            kind,
            recursive: false,
        },
    )
    .ctx(field)
}

/// Before `MS_MOVE` + chroot, the host's proc and sysfs mounts stay visible
/// in the mount namespace; detach them so the container cannot reach them.
/// `listed`: the runtime's list (`RootfsPlan::hide_host_mounts`, deepest
/// first), else the mount table is read here.
fn hide_host_proc_and_sys(rootfs: &Path, listed: Option<Vec<PathBuf>>) -> Result<()> {
    let all = match listed {
        Some(points) => points,
        None => mountinfo::proc_and_sys_points(&mountinfo::read_self()?),
    };
    let points: Vec<PathBuf> = all.into_iter().filter(|p| !p.starts_with(rootfs)).collect();
    for point in &points {
        if unmount(point, UnmountFlags::DETACH).is_err() {
            // A locked mount (a user namespace's copy of its parent's, e.g.
            // a masked `/proc/keys` file) below another listed one goes
            // when that one is detached or covered: a file cannot be
            // covered with a tmpfs.
            if points.iter().any(|p| p != point && point.starts_with(p)) {
                continue;
            }
            let tmpfs = mnt::fresh("tmpfs", "tmpfs", &[], attr::RDONLY)
                .map_err(|e| Error::Other(format!("hiding {}: {e}", point.display())))?;
            let target = match rustix::fs::open(
                point,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            ) {
                Ok(fd) => fd,
                // Gone since the runtime listed it: nothing to hide.
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(e).ctx(|| format!("hiding {}", point.display())),
            };
            attach(tmpfs.as_fd(), target.as_fd()).ctx(|| format!("hiding {}", point.display()))?;
        }
    }
    Ok(())
}

/// The host's node for `d`, cloned for a bind: the host's file at the
/// same path when it is that device, else the kernel's name for the
/// device (`dev::host_device_path`). What is bound is checked to be the
/// planned device, never another one that happens to have the path.
fn host_node(d: &DeviceNode) -> std::io::Result<OwnedFd> {
    let mut tried = Vec::new();
    let candidates =
        std::iter::once(d.path.clone()).chain(dev::host_device_path(d.kind, d.major, d.minor));
    for path in candidates {
        match clone_path(&path, false) {
            Ok(tree) if dev::is_device(&tree, d.kind, d.major, d.minor)? => return Ok(tree),
            Ok(_) => tried.push(format!("{} is another file", path.display())),
            Err(e) => tried.push(format!("{}: {e}", path.display())),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!(
            "the host has no node {}:{} to bind ({})",
            d.major,
            d.minor,
            tried.join("; ")
        ),
    ))
}

/// The paths the plan's finish remounts read-only.
fn remounted_paths(plan: &RootfsPlan) -> Vec<PathBuf> {
    plan.finish
        .iter()
        .filter_map(|s| match s {
            Step::RemountReadOnly { path } => Some(path.clone()),
            _ => None,
        })
        .collect()
}
