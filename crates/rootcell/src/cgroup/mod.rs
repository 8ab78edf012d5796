//! Control groups: where the container's cgroups are, creating them,
//! placing the container, listing and killing its processes, removing them.
//! Works on cgroup v1, v2 and the hybrid layout (v1 controllers plus a
//! controller-less v2 tree at `/sys/fs/cgroup/unified`).

mod device_filter;
pub mod freezer;
mod join;
pub use join::{open_join_file, CgroupJoin, JoinFile, JoinPaths};
pub mod oom;
pub mod stats;
pub mod systemd;

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fs::mountinfo::{self, MountInfo};
use crate::fs::procfs::{self, ProcfsBase};
use crate::plan::{
    CgroupMountSource, CgroupResources, CgroupVersion, CgroupWrite, DeviceFilter, FsOption,
};

/// One mounted cgroup hierarchy of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mountpoint: PathBuf,
    /// v1: controllers (`cpu`, `cpuacct`, `name=systemd`); v2: empty.
    pub controllers: Vec<String>,
    pub v2: bool,
    /// The runtime's own cgroup in this hierarchy.
    pub own_path: PathBuf,
}

impl Hierarchy {
    /// Name of the directory under a container's `/sys/fs/cgroup`.
    fn mount_name(&self, pure_v2: bool) -> String {
        if self.v2 {
            return if pure_v2 {
                String::new()
            } else {
                "unified".into()
            };
        }
        self.controllers
            .iter()
            .map(|c| c.strip_prefix("name=").unwrap_or(c))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The host's hierarchies, with our own cgroup in each.
pub fn host_hierarchies() -> Result<Vec<Hierarchy>> {
    read_hierarchies().map(|(hierarchies, _)| hierarchies)
}

/// The host's hierarchies. On a cgroup2-only host (cgroup2 mounted on
/// `/sys/fs/cgroup`, runc's and crun's test for it) that one, without
/// reading the mount table; else those of the mount table, which is
/// returned too for what else its reader wants from it.
pub fn read_hierarchies() -> Result<(Vec<Hierarchy>, Option<Vec<MountInfo>>)> {
    let own = || procfs::read(ProcfsBase::ProcSelf, "cgroup").ctx(|| "/proc/self/cgroup");
    if is_cgroup2(Path::new(UNIFIED_MOUNTPOINT)) {
        return Ok((vec![unified_hierarchy(&own()?)], None));
    }
    let table = mountinfo::read_self()?;
    let hierarchies = parse_hierarchies(&table, &own()?);
    Ok((hierarchies, Some(table)))
}

/// Where a cgroup2-only host has its one hierarchy.
const UNIFIED_MOUNTPOINT: &str = "/sys/fs/cgroup";

fn is_cgroup2(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| is_cgroup2_fs(&s))
}

/// A `statfs` of cgroup2 (`f_type` is signed with glibc, not with musl).
#[allow(clippy::unnecessary_cast)]
fn is_cgroup2_fs(st: &rustix::fs::StatFs) -> bool {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    st.f_type as i64 == CGROUP2_SUPER_MAGIC
}

/// The one hierarchy of a cgroup2-only host, with our cgroup in it
/// (`own`: `/proc/self/cgroup`, whose v2 line is `0::PATH`).
fn unified_hierarchy(own: &str) -> Hierarchy {
    let own_path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map_or_else(|| PathBuf::from("/"), PathBuf::from);
    Hierarchy {
        mountpoint: PathBuf::from(UNIFIED_MOUNTPOINT),
        controllers: Vec::new(),
        v2: true,
        own_path,
    }
}

/// The cgroup mounts of `mounts` (a parsed mountinfo, in its order) that
/// are reachable, with our own cgroup (`/proc/self/cgroup`) in each.
fn parse_hierarchies(mounts: &[MountInfo], own: &str) -> Vec<Hierarchy> {
    let own_paths: Vec<(String, PathBuf)> = own
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?.to_string();
            Some((controllers, PathBuf::from(parts.next()?)))
        })
        .collect();
    // A mount point that a later mount covers (a cgroup2 mounted over a v1
    // layout, say) is hidden: its path now leads into the newer mount.
    let shadowed = |i: usize, point: &Path| {
        mounts[i + 1..]
            .iter()
            .any(|later| point.starts_with(&later.mount_point))
    };
    let mut out = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let v2 = m.fs_type == "cgroup2";
        if (m.fs_type != "cgroup" && !v2) || shadowed(i, &m.mount_point) {
            continue;
        }
        let controllers: Vec<String> = if v2 {
            Vec::new()
        } else {
            let known = |o: &&String| {
                !matches!(
                    o.as_str(),
                    "rw" | "ro"
                        | "relatime"
                        | "noatime"
                        | "nosuid"
                        | "nodev"
                        | "noexec"
                        | "xattr"
                        | "clone_children"
                        | "noprefix"
                ) && !o.starts_with("release_agent=")
            };
            m.super_options.iter().filter(known).cloned().collect()
        };
        let key = controllers.join(",");
        let own_path = own_paths
            .iter()
            .find(|(c, _)| if v2 { c.is_empty() } else { *c == key })
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| PathBuf::from("/"));
        out.push(Hierarchy {
            mountpoint: m.mount_point.clone(),
            controllers,
            v2,
            own_path,
        });
    }
    out
}

/// The interface resource limits use: v2 only when cgroup2 is the one
/// hierarchy (the hybrid layout's cgroup2 has no controllers: v1, as runc).
pub fn version(hierarchies: &[Hierarchy]) -> CgroupVersion {
    match hierarchies {
        [only] if only.v2 => CgroupVersion::V2,
        _ => CgroupVersion::V1,
    }
}

/// The container's cgroup, one directory per hierarchy.
#[derive(Debug, Clone, Default)]
pub struct ContainerCgroup {
    pub dirs: Vec<PathBuf>,
    pub mount_sources: Vec<CgroupMountSource>,
}

/// Computes the container's cgroup directories: `cgroupsPath` absolute
/// (from each hierarchy's root), relative (from the runtime's own cgroup,
/// as runc does), or the container id when empty.
pub fn container_dirs(
    hierarchies: &[Hierarchy],
    cgroups_path: Option<&Path>,
    id: &str,
) -> ContainerCgroup {
    let rel = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from(id),
    };
    let pure_v2 = hierarchies.len() == 1 && hierarchies[0].v2;
    let mut out = ContainerCgroup::default();
    for h in hierarchies {
        let inner = if rel.is_absolute() {
            rel.clone()
        } else {
            h.own_path.join(&rel)
        };
        let dir = h.mountpoint.join(inner.strip_prefix("/").unwrap_or(&inner));
        let name = h.mount_name(pure_v2);
        let aliases = if name.contains(',') {
            name.split(',').map(str::to_string).collect()
        } else {
            Vec::new()
        };
        out.mount_sources.push(CgroupMountSource {
            name,
            host_dir: dir.clone(),
            fstype: if h.v2 {
                "cgroup2".into()
            } else {
                "cgroup".into()
            },
            fs_options: h
                .controllers
                .iter()
                .map(|c| match c.split_once('=') {
                    Some((k, v)) => FsOption::Value(k.into(), v.into()),
                    None => FsOption::Flag(c.clone()),
                })
                .collect(),
            aliases,
        });
        out.dirs.push(dir);
    }
    out
}

/// Creates the directories. When `best_effort` (rootless, chroot
/// isolation), a hierarchy we may not write to is skipped instead of
/// failing; the skipped ones are returned with the reason.
pub fn create(cg: &mut ContainerCgroup, best_effort: bool) -> Result<Vec<(PathBuf, String)>> {
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    for (dir, src) in cg.dirs.iter().zip(&cg.mount_sources) {
        // Only the cpuset hierarchy needs its values copied down: asking
        // every hierarchy for cpuset files cost two lookups each.
        let cpuset = src.fs_options.contains(&FsOption::Flag("cpuset".into()));
        let made = fs::create_dir_all(dir).and_then(|()| match cpuset {
            true => inherit_cpuset(dir),
            false => Ok(()),
        });
        match made {
            Ok(()) => kept.push((dir.clone(), src.clone())),
            Err(e)
                if best_effort
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EACCES | libc::EPERM | libc::EROFS)
                    ) =>
            {
                // Rootless: only what is delegated to the user is used.
                tracing::warn!(
                    "cgroup {} not delegated to this user ({e}): the container runs without it",
                    dir.display()
                );
                skipped.push((dir.clone(), e.to_string()));
            }
            Err(e) => {
                return Err(e).ctx(|| format!("linux.cgroupsPath: creating {}", dir.display()))
            }
        }
    }
    (cg.dirs, cg.mount_sources) = kept.into_iter().unzip();
    Ok(skipped)
}

/// A new v1 cpuset cgroup starts with no cpus and no memory nodes, and
/// refuses tasks until they are set: copy them down from the nearest
/// ancestor that has them, as runc does.
pub(crate) fn inherit_cpuset(dir: &Path) -> std::io::Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if !dir.join(file).exists() || !fs::read_to_string(dir.join(file))?.trim().is_empty() {
            continue;
        }
        // Fill from the top down: every level between needs the value.
        let mut chain = vec![dir.to_path_buf()];
        let mut value = String::new();
        let mut cur = dir.parent();
        while let Some(p) = cur {
            let v = fs::read_to_string(p.join(file)).unwrap_or_default();
            if !v.trim().is_empty() {
                value = v;
                break;
            }
            chain.push(p.to_path_buf());
            cur = p.parent();
        }
        for d in chain.iter().rev() {
            fs::write(d.join(file), value.trim())?;
        }
    }
    Ok(())
}

/// Writes the planned `linux.resources` into the container's cgroups, in
/// plan order, before any container process joins them. A setting whose
/// controller the host lacks fails naming its field; when `best_effort`
/// (rootless, chroot isolation) a hierarchy `create` skipped is only
/// warned about, or refused when the plan says so (`refuse_unwritable`).
/// Chroot isolation (`res.chroot`) treats a file it may not write like a
/// skipped hierarchy, and device rules the devices cgroup cannot hold
/// are left to the planned `/dev` nodes (one diagnostic line).
pub fn apply_resources(
    res: &CgroupResources,
    cg: &ContainerCgroup,
    best_effort: bool,
) -> Result<()> {
    let mut devices_unwritable = false;
    let mut warned = std::collections::HashSet::new();
    for w in &res.writes {
        let is_device_rule = w.controller == "devices";
        if devices_unwritable && is_device_rule {
            continue;
        }
        let why = match dir_for(cg, &w.controller, res.version) {
            None if res.chroot => format!(
                "the container has no {} cgroup (the host lacks the controller, or its cgroup tree is read-only or not delegated)",
                match res.version {
                    CgroupVersion::V1 => w.controller.as_str(),
                    CgroupVersion::V2 => "v2",
                }
            ),
            None => match res.version {
                CgroupVersion::V1 => format!("this host has no {} cgroup controller", w.controller),
                CgroupVersion::V2 => "this host has no cgroup v2 hierarchy".into(),
            },
            Some(dir) => match write_setting(w, dir, res.version) {
                Ok(()) => continue,
                Err(SettingError::Denied(why)) if res.chroot => why,
                Err(e) => return Err(e.into_error(&w.field)),
            },
        };
        if res.chroot && is_device_rule {
            devices_unwritable = true;
            let line = format!(
                "chroot isolation: linux.resources.devices: met by making only the device nodes the rules allow (not written to a devices cgroup: {why})"
            );
            tracing::warn!("{line}");
            eprintln!("rootcell: {line}");
            continue;
        }
        if best_effort && res.refuse_unwritable {
            return Err(Error::spec(
                &w.field,
                format!(
                    "{why}: chroot isolation refuses a limit it cannot apply (annotation {}: \"true\" ignores it)",
                    crate::plan::isolation::IGNORE_RESOURCES
                ),
            ));
        }
        if best_effort {
            // One line per missing controller (the device rules are a
            // dozen writes to one controller).
            if warned.insert(w.controller.as_str()) {
                tracing::warn!("{}: ignored: {why}", w.field);
                eprintln!("rootcell: warning: {}: ignored: {why}", w.field);
            }
            continue;
        }
        return Err(Error::spec(&w.field, why));
    }
    if let Some(filter) = &res.device_filter {
        apply_device_filter(filter, cg, res.chroot)?;
    }
    Ok(())
}

/// The container's cgroup as `create` made it, from the directories its
/// state records and the host's hierarchies (for `update`).
pub fn from_dirs(dirs: &[PathBuf], hierarchies: &[Hierarchy]) -> ContainerCgroup {
    let pure_v2 = hierarchies.len() == 1 && hierarchies[0].v2;
    let mut out = ContainerCgroup::default();
    for dir in dirs {
        // The deepest mount point holding the directory is its hierarchy.
        let Some(h) = hierarchies
            .iter()
            .filter(|h| dir.starts_with(&h.mountpoint))
            .max_by_key(|h| h.mountpoint.as_os_str().len())
        else {
            continue;
        };
        out.mount_sources.push(CgroupMountSource {
            name: h.mount_name(pure_v2),
            host_dir: dir.clone(),
            fstype: if h.v2 { "cgroup2" } else { "cgroup" }.into(),
            fs_options: Vec::new(),
            aliases: Vec::new(),
        });
        out.dirs.push(dir.clone());
    }
    out
}

/// Whether the container's v1 memory cgroup has a memory+swap limit file
/// (the kernel accounts swap).
pub fn has_memsw(cg: &ContainerCgroup) -> bool {
    dir_for(cg, "memory", CgroupVersion::V1)
        .is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists())
}

/// The current `cpu.max` of a v2 container cgroup: (quota, period), the
/// quota as written (`max` or µs).
pub fn current_cpu_max(cg: &ContainerCgroup) -> Option<(String, u64)> {
    let dir = dir_for(cg, "cpu", CgroupVersion::V2)?;
    let text = fs::read_to_string(dir.join("cpu.max")).ok()?;
    let mut parts = text.split_whitespace();
    let quota = parts.next()?.to_string();
    let period = parts.next()?.parse().ok()?;
    Some((quota, period))
}

/// `rootcell update`: writes the planned changes into a live container's
/// cgroups, as `apply_resources` does, with runc's ordering rule for a v1
/// memory limit changed together with memory+swap: the kernel keeps
/// limit ≤ memsw at every step, so memsw goes first when it is unlimited
/// or above the current limit (it is raised), the limit first otherwise.
pub fn update_resources(
    res: &CgroupResources,
    cg: &ContainerCgroup,
    best_effort: bool,
) -> Result<()> {
    let mut res = res.clone();
    if res.version == CgroupVersion::V1 {
        let current = dir_for(cg, "memory", CgroupVersion::V1)
            .and_then(|d| fs::read_to_string(d.join("memory.limit_in_bytes")).ok())
            .and_then(|t| t.trim().parse::<u64>().ok());
        order_memory_writes(&mut res.writes, current);
    }
    apply_resources(&res, cg, best_effort)
}

/// Puts a v1 memsw write before the limit write when runc would: the new
/// memsw is -1, or above the `current` limit.
fn order_memory_writes(writes: &mut [CgroupWrite], current: Option<u64>) {
    let pos = |name: &str| writes.iter().position(|w| w.files[0].name == name);
    let (Some(limit), Some(swap)) = (
        pos("memory.limit_in_bytes"),
        pos("memory.memsw.limit_in_bytes"),
    ) else {
        return;
    };
    let Ok(new_swap) = writes[swap].files[0].value.parse::<i64>() else {
        return;
    };
    let raise =
        new_swap == -1 || current.is_some_and(|cur| u64::try_from(new_swap).is_ok_and(|s| cur < s));
    if raise && swap > limit {
        writes[limit..=swap].rotate_right(1);
    }
}

/// cgroup v2's device rules: the eBPF program attached to the container's
/// cgroup. If it cannot be loaded (no CAP_BPF, an old kernel, memory
/// limits), rules that deny a particular device fail the create naming
/// the field; the usual deny-all-then-allow rules only warn, since without
/// a filter the container sees the device nodes it is given.
fn apply_device_filter(filter: &DeviceFilter, cg: &ContainerCgroup, chroot: bool) -> Result<()> {
    let field = "linux.resources.devices";
    let met_by_nodes = |why: &str| {
        let line = format!(
            "chroot isolation: {field}: met by making only the device nodes the rules allow (no device filter: {why})"
        );
        tracing::warn!("{line}");
        eprintln!("rootcell: {line}");
    };
    let Some(dir) = dir_for(cg, "", CgroupVersion::V2) else {
        if chroot {
            met_by_nodes("this host has no cgroup v2 hierarchy for the container");
            return Ok(());
        }
        return Err(Error::spec(field, "this host has no cgroup v2 hierarchy"));
    };
    let insns: Vec<u8> = device_filter::program(&filter.rules)
        .into_iter()
        .flat_map(|i| i.to_bytes())
        .collect();
    let attached = fs::File::open(dir).and_then(|cgroup| {
        let prog = crate::process::sys::bpf_load_cgroup_device(&insns)?;
        crate::process::sys::bpf_attach_cgroup_device(&cgroup, &prog)
    });
    match attached {
        Ok(()) => Ok(()),
        Err(e) if chroot => {
            met_by_nodes(&format!("attaching it to {} failed: {e}", dir.display()));
            Ok(())
        }
        Err(e) if !filter.denies_a_device => {
            let msg = format!(
                "{field}: not enforced: the cgroup v2 device filter could not be attached to {}: {e}",
                dir.display()
            );
            tracing::warn!("{msg}");
            eprintln!("rootcell: warning: {msg}");
            Ok(())
        }
        Err(e) => Err(Error::spec(
            field,
            format!(
                "the cgroup v2 device filter could not be attached to {}: {e}",
                dir.display()
            ),
        )),
    }
}

/// The container's directory holding `controller`'s files: on v1 the
/// hierarchy with that controller, on v2 the one cgroup2 directory.
fn dir_for<'a>(cg: &'a ContainerCgroup, controller: &str, v: CgroupVersion) -> Option<&'a Path> {
    cg.dirs
        .iter()
        .zip(&cg.mount_sources)
        .find(|(_, src)| match v {
            CgroupVersion::V1 => {
                src.fstype == "cgroup" && src.name.split(',').any(|c| c == controller)
            }
            CgroupVersion::V2 => src.fstype == "cgroup2",
        })
        .map(|(dir, _)| dir.as_path())
}

/// Why a setting was not written.
enum SettingError {
    /// The file exists but may not be written (EPERM, EACCES, EROFS: a
    /// read-only or undelegated tree).
    Denied(String),
    Other(String),
}

impl SettingError {
    fn into_error(self, field: &str) -> Error {
        match self {
            SettingError::Denied(why) | SettingError::Other(why) => Error::spec(field, why),
        }
    }
}

/// Writes one setting into the first of its candidate files that exists.
/// On v2 the controller is first enabled down to the container's cgroup.
fn write_setting(
    w: &CgroupWrite,
    dir: &Path,
    v: CgroupVersion,
) -> std::result::Result<(), SettingError> {
    if v == CgroupVersion::V2 && !w.controller.is_empty() {
        enable_controller(dir, &w.controller).map_err(SettingError::Other)?;
    }
    let Some(file) = w.files.iter().find(|f| dir.join(&f.name).exists()) else {
        let names: Vec<&str> = w.files.iter().map(|f| f.name.as_str()).collect();
        return Err(SettingError::Other(format!(
            "{} does not exist in {} (the kernel lacks this feature)",
            names.join(" or "),
            dir.display()
        )));
    };
    let path = dir.join(&file.name);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, file.value.as_bytes()))
        .map_err(|e| {
            let why = format!("writing {:?} to {}: {e}", file.value, path.display());
            match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES | libc::EROFS) => SettingError::Denied(why),
                _ => SettingError::Other(why),
            }
        })
}

/// cgroup v2: a controller's files exist in a cgroup only when every
/// ancestor has it in `cgroup.subtree_control`. Enables it from the
/// hierarchy's root down to `dir`'s parent where missing, as runc does;
/// fails saying where it is not available (on a hybrid-like host a
/// controller bound to a v1 hierarchy is not) or cannot be enabled (a
/// cgroup with processes of its own, other than the root).
pub(crate) fn enable_controller(dir: &Path, controller: &str) -> std::result::Result<(), String> {
    let has = |file: &Path| {
        fs::read_to_string(file)
            .map(|s| s.split_whitespace().any(|c| c == controller))
            .unwrap_or(false)
    };
    if has(&dir.join("cgroup.controllers")) {
        return Ok(());
    }
    // The ancestors inside the hierarchy, from the root down.
    let mut chain: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|p| p.join("cgroup.controllers").exists())
        .collect();
    chain.reverse();
    for parent in chain {
        if !has(&parent.join("cgroup.controllers")) {
            return Err(format!(
                "the {controller} controller is not available in {} (cgroup v2: it is not enabled above, or bound to a v1 hierarchy)",
                parent.display()
            ));
        }
        let control = parent.join("cgroup.subtree_control");
        if !has(&control) {
            fs::write(&control, format!("+{controller}")).map_err(|e| {
                format!(
                    "the {controller} controller is not enabled for {}: writing +{controller} to {}: {e}",
                    dir.display(),
                    control.display()
                )
            })?;
        }
    }
    Ok(())
}

/// Pids in the container's cgroup and its sub-cgroups (`exec --cgroup`
/// puts processes there), sorted.
pub fn pids(dirs: &[PathBuf]) -> Vec<i32> {
    fn walk(dir: &Path, out: &mut Vec<i32>) {
        if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), out);
            }
        }
    }
    // Every hierarchy holds every process once; the first readable one
    // tells them all.
    for dir in dirs {
        if dir.join("cgroup.procs").exists() {
            let mut out = Vec::new();
            walk(dir, &mut out);
            out.sort_unstable();
            out.dedup();
            return out;
        }
    }
    Vec::new()
}

/// Removes the container's directories, sub-cgroups first. Processes must
/// be gone.
pub fn remove(dirs: &[PathBuf]) -> Result<()> {
    fn remove_tree(dir: &Path) -> std::io::Result<()> {
        // A cgroup directory holds only control files (which rmdir takes
        // along) and sub-cgroups, with which rmdir fails EBUSY: try it
        // first, as most containers have none (listing a v1 cgroup's
        // dozens of files cost more than its rmdir).
        match fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
            done => return done,
        }
        for entry in fs::read_dir(dir)?.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path())?;
            }
        }
        fs::remove_dir(dir)
    }
    for dir in dirs {
        match remove_tree(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    context: format!("removing cgroup {}", dir.display()),
                    cause: e,
                })
            }
        }
    }
    Ok(())
}

/// `exec --cgroup`: sub-cgroups of the container's cgroups for the new
/// process, as runc 1.2 takes them: one `PATH` for every hierarchy (the
/// only form cgroup v2 has), or any number of
/// `CONTROLLER[,CONTROLLER…]:PATH` (cgroup v1). A path is always below the
/// container's cgroup (a leading `/` is its top, as in runc), without
/// `..`; the sub-cgroup must exist already (runc does not create it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubCgroups {
    all: Option<PathBuf>,
    by_controller: Vec<(String, PathBuf)>,
}

impl SubCgroups {
    /// Checks the flags' syntax, as runc's `getSubCgroupPaths` does, and
    /// that no path leaves the container's cgroup.
    pub fn parse(args: &[String]) -> Result<SubCgroups> {
        let bad = |arg: &str, why: String| Error::spec(format!("--cgroup {arg:?}"), why);
        let mut out = SubCgroups::default();
        for arg in args {
            // Split at the first `:`, as runc: a cgroup name may hold one.
            let (controllers, path) = match arg.split_once(':') {
                None if args.len() == 1 => (None, arg.as_str()),
                None => {
                    return Err(bad(
                        arg,
                        "missing CONTROLLER: prefix (with several --cgroup, each is CONTROLLER[,CONTROLLER…]:PATH)".into(),
                    ))
                }
                Some((c, p)) => (Some(c), p),
            };
            let rel = Path::new(path.trim_start_matches('/'));
            if rel
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(bad(
                    arg,
                    format!("{path:?} leaves the container's cgroup: a sub-cgroup path may not hold `..`"),
                ));
            }
            let rel: PathBuf = rel.components().collect();
            match controllers {
                None => out.all = Some(rel),
                Some(list) => {
                    for c in list.split(',') {
                        if c.is_empty() {
                            return Err(bad(arg, "empty controller name".into()));
                        }
                        if out.by_controller.iter().any(|(seen, _)| seen == c) {
                            return Err(bad(arg, format!("controller {c} is given twice")));
                        }
                        out.by_controller.push((c.to_string(), rel.clone()));
                    }
                }
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.by_controller.is_empty()
    }

    /// The directories to join, one per container cgroup directory: the
    /// directory itself, or the sub-cgroup asked for in its hierarchy.
    /// Pure: the caller checks that they exist (`check_exist`).
    pub fn resolve(&self, dirs: &[PathBuf], hierarchies: &[Hierarchy]) -> Result<Vec<PathBuf>> {
        let hierarchy_of = |dir: &Path| {
            hierarchies
                .iter()
                .filter(|h| dir.starts_with(&h.mountpoint))
                .max_by_key(|h| h.mountpoint.as_os_str().len())
        };
        if let Some((c, path)) = self.by_controller.first() {
            if version(hierarchies) == CgroupVersion::V2 {
                return Err(Error::spec(
                    format!("--cgroup {c}:{}", path.display()),
                    "cgroup v2 has one hierarchy for every controller: give a plain PATH, without CONTROLLER:",
                ));
            }
        }
        let mut used = vec![false; self.by_controller.len()];
        let mut out = Vec::new();
        for dir in dirs {
            let controllers = hierarchy_of(dir)
                .map(|h| h.controllers.as_slice())
                .unwrap_or_default();
            let matching: Vec<usize> = (0..self.by_controller.len())
                .filter(|i| names_controller(controllers, &self.by_controller[*i].0))
                .collect();
            let mut sub = self.all.as_ref();
            if let Some(&first) = matching.first() {
                let (c, path) = &self.by_controller[first];
                if let Some(&i) = matching.iter().find(|i| self.by_controller[**i].1 != *path) {
                    let (other, other_path) = &self.by_controller[i];
                    return Err(Error::spec(
                        format!("--cgroup {other}:{}", other_path.display()),
                        format!(
                            "{other} shares a hierarchy with {c}, given {}",
                            path.display()
                        ),
                    ));
                }
                sub = Some(path);
            }
            for i in matching {
                used[i] = true;
            }
            out.push(match sub {
                Some(sub) => dir.join(sub),
                None => dir.clone(),
            });
        }
        if let Some(i) = used.iter().position(|u| !u) {
            let (c, path) = &self.by_controller[i];
            let have: Vec<&str> = dirs
                .iter()
                .filter_map(|d| hierarchy_of(d))
                .flat_map(|h| h.controllers.iter().map(String::as_str))
                .collect();
            return Err(Error::spec(
                format!("--cgroup {c}:{}", path.display()),
                format!(
                    "unknown controller {c}: the container's cgroup v1 hierarchies have {}",
                    if have.is_empty() {
                        "no controllers".to_string()
                    } else {
                        have.join(", ")
                    }
                ),
            ));
        }
        Ok(out)
    }

    /// Every sub-cgroup `resolve` chose must exist: runc does not create
    /// them, and neither does rootcell.
    pub fn check_exist(resolved: &[PathBuf], dirs: &[PathBuf]) -> Result<()> {
        for (target, dir) in resolved.iter().zip(dirs) {
            if target != dir && !target.is_dir() {
                return Err(Error::spec(
                    "--cgroup",
                    format!(
                        "no such sub-cgroup: {} does not exist (create it first: runc does not create sub-cgroups)",
                        target.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether a v1 hierarchy's controllers include `name` (`systemd` names
/// `name=systemd` too).
fn names_controller(controllers: &[String], name: &str) -> bool {
    controllers
        .iter()
        .any(|have| have == name || have.strip_prefix("name=") == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const OWN: &str = "3:cpu,cpuacct:/user\n2:name=systemd:/user\n0::/user\n";

    fn table(text: &str) -> Vec<MountInfo> {
        mountinfo::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn hierarchies_mounted_at_escaped_paths() {
        // mountinfo writes a space as \040 and a backslash as \134: the
        // container's cgroup goes below the real directory.
        let h = parse_hierarchies(
            &table("41 1 0:38 / /run/my\\040cg\\134v2 rw - cgroup2 cgroup2 rw\n"),
            "0::/\n",
        );
        assert_eq!(h[0].mountpoint, PathBuf::from("/run/my cg\\v2"));
        let cg = container_dirs(&h, None, "c 1");
        assert_eq!(cg.dirs[0], PathBuf::from("/run/my cg\\v2/c 1"));
    }

    #[test]
    fn hybrid_layout() {
        let h = parse_hierarchies(&table(MOUNTINFO), OWN);
        assert_eq!(h.len(), 4);
        assert_eq!(h[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(h[1].own_path, PathBuf::from("/user"));
        assert_eq!(h[2].controllers, vec!["name=systemd"]);
        assert!(h[3].v2);
        let cg = container_dirs(&h, None, "c1");
        assert_eq!(
            cg.dirs[1],
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/user/c1")
        );
        assert_eq!(cg.mount_sources[1].aliases, vec!["cpu", "cpuacct"]);
        assert_eq!(cg.mount_sources[2].name, "systemd");
        assert_eq!(cg.mount_sources[3].name, "unified");
        let abs = container_dirs(&h, Some(Path::new("/x/y")), "c1");
        assert_eq!(abs.dirs[3], PathBuf::from("/sys/fs/cgroup/unified/x/y"));
    }

    #[test]
    fn hierarchies_covered_by_a_later_mount_are_ignored() {
        // The hybrid layout with cgroup2 mounted over /sys/fs/cgroup later,
        // as in a private namespace: only the cgroup2 mount is reachable.
        let info = format!("{MOUNTINFO}99 23 0:50 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let h = parse_hierarchies(&table(&info), OWN);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h[0].v2);
        assert_eq!(h[0].mountpoint, PathBuf::from("/sys/fs/cgroup"));
    }

    #[test]
    fn sub_cgroups_like_runc() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let h = parse_hierarchies(&table(MOUNTINFO), OWN);
        // cpu, cpu+cpuacct, name=systemd, unified.
        let dirs = container_dirs(&h, None, "c1").dirs;
        let resolve = |a: &[&str]| SubCgroups::parse(&args(a)).unwrap().resolve(&dirs, &h);
        let err = |a: &[&str]| resolve(a).unwrap_err().to_string();
        // One path for every hierarchy; a leading `/` is the container's
        // cgroup, `.` steps are dropped.
        for arg in ["/sub", "sub", "./sub/."] {
            let got = resolve(&[arg]).unwrap();
            assert!(
                got.iter().zip(&dirs).all(|(g, d)| *g == d.join("sub")),
                "{arg}: {got:?}"
            );
        }
        // One controller moves only its hierarchy; `systemd` names
        // `name=systemd`; several controllers in one flag.
        let got = resolve(&["cpuacct:sub", "systemd:s2"]).unwrap();
        assert_eq!(got[0], dirs[0], "the cpu-only hierarchy has no cpuacct");
        assert_eq!(got[1], dirs[1].join("sub"));
        assert_eq!(got[2], dirs[2].join("s2"));
        assert_eq!(got[3], dirs[3], "the unified hierarchy has no controller");
        let got = resolve(&["cpu,cpuacct:a/b"]).unwrap();
        assert_eq!(got[0], dirs[0].join("a/b"));
        assert_eq!(got[1], dirs[1].join("a/b"));
        // A cgroup name may hold a `:` (runc splits at the first).
        assert_eq!(resolve(&["cpu:x:y"]).unwrap()[0], dirs[0].join("x:y"));
        // Refusals name the reason.
        assert!(
            err(&["memory:sub"]).contains("unknown controller memory"),
            "{}",
            err(&["memory:sub"])
        );
        assert!(err(&["cpu:sub", "cpuacct:other"]).contains("shares a hierarchy with"));
        // Pure cgroup v2: no CONTROLLER: form.
        let v2 = parse_hierarchies(
            &table("41 1 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
            "0::/\n",
        );
        let v2_dirs = container_dirs(&v2, None, "c1").dirs;
        let sub = |a: &[&str]| SubCgroups::parse(&args(a)).unwrap().resolve(&v2_dirs, &v2);
        assert_eq!(sub(&["sub"]).unwrap(), vec![v2_dirs[0].join("sub")]);
        let e = sub(&["pids:sub"]).unwrap_err().to_string();
        assert!(e.contains("cgroup v2") && e.contains("plain PATH"), "{e}");
        // Syntax and escapes, as runc's getSubCgroupPaths plus the `..`
        // check.
        for (bad, why) in [
            (&["a", "b"][..], "missing CONTROLLER: prefix"),
            (&["../x"], "leaves the container's cgroup"),
            (&["cpu:a/../../b"], "leaves the container's cgroup"),
            (&["/.."], "leaves the container's cgroup"),
            (&[":x"], "empty controller name"),
            (&["cpu,:x"], "empty controller name"),
            (&["cpu:x", "cpu:y"], "controller cpu is given twice"),
        ] {
            let e = SubCgroups::parse(&args(bad)).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn sub_cgroups_must_exist() {
        let tmp = std::env::temp_dir().join(format!("rootcell-subcg-{}", std::process::id()));
        let dir = tmp.join("c1");
        fs::create_dir_all(dir.join("sub")).unwrap();
        let dirs = vec![dir.clone()];
        SubCgroups::check_exist(&[dir.join("sub")], &dirs).unwrap();
        SubCgroups::check_exist(&dirs, &dirs).unwrap();
        let e = SubCgroups::check_exist(&[dir.join("nope")], &dirs)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no such sub-cgroup") && e.contains("nope"),
            "{e}"
        );
        let _ = fs::remove_dir_all(&tmp);
    }

    #[test]
    fn memsw_first_when_raised_like_runc() {
        let w = |name: &str, value: &str| CgroupWrite {
            field: name.into(),
            controller: "memory".into(),
            files: vec![crate::plan::CgroupFile {
                name: name.into(),
                value: value.into(),
            }],
        };
        let names = |ws: &[CgroupWrite]| -> Vec<String> {
            ws.iter().map(|w| w.files[0].name.clone()).collect()
        };
        let plan = |swap: &str| {
            vec![
                w("memory.limit_in_bytes", "100"),
                w("memory.memsw.limit_in_bytes", swap),
                w("memory.soft_limit_in_bytes", "50"),
            ]
        };
        // Raised above the current limit (or unlimited): memsw first.
        for (swap, cur) in [("300", Some(200)), ("-1", Some(500)), ("-1", None)] {
            let mut ws = plan(swap);
            order_memory_writes(&mut ws, cur);
            assert_eq!(
                names(&ws)[0],
                "memory.memsw.limit_in_bytes",
                "{swap} {cur:?}"
            );
            assert_eq!(names(&ws)[2], "memory.soft_limit_in_bytes");
        }
        // Lowered: the limit first.
        let mut ws = plan("300");
        order_memory_writes(&mut ws, Some(400));
        assert_eq!(names(&ws)[0], "memory.limit_in_bytes");
    }

    #[test]
    fn pure_v2_is_one_unnamed_source() {
        let h = parse_hierarchies(
            &table("41 1 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"),
            "0::/\n",
        );
        let cg = container_dirs(&h, Some(Path::new("/c")), "c");
        assert_eq!(cg.mount_sources[0].name, "");
        assert_eq!(cg.dirs[0], PathBuf::from("/sys/fs/cgroup/c"));
    }

    #[test]
    fn a_cgroup2_only_host_without_its_mount_table_is_what_the_table_gives() {
        // `read_hierarchies` skips the mount table when /sys/fs/cgroup is
        // cgroup2: the hierarchy must be the one the table would give,
        // with our cgroup from the `0::` line.
        let own = "0::/system.slice/x.service\n";
        let from_table = parse_hierarchies(
            &table("41 1 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"),
            own,
        );
        assert_eq!(vec![unified_hierarchy(own)], from_table);
        assert_eq!(version(&from_table), CgroupVersion::V2);
        // A v1 named hierarchy's line (some hosts keep `name=systemd`)
        // does not count; no `0::` line at all means the root.
        let h = unified_hierarchy("1:name=systemd:/a\n0::/b\n");
        assert_eq!(h.own_path, PathBuf::from("/b"));
        assert_eq!(unified_hierarchy("").own_path, PathBuf::from("/"));
    }
}
