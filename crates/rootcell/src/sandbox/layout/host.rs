//! What the planner needs to know about the host, gathered once
//! (`HostFacts::gather`): its mount table, the few paths the plan depends
//! on, the caller's ids and names, fuse-overlayfs. Everything else in the
//! planner is pure.

use super::*;

/// One visible mount point of the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostMount {
    pub path: PathBuf,
    pub fs_type: String,
    /// `nosuid`, `nodev`, `noexec` of the host's mount, kept by every mode.
    pub attrs: u64,
    /// A directory (not a bind-mounted file).
    pub directory: bool,
    /// A v1 cgroup mount's hierarchy options (`memory`, `cpu,cpuacct`,
    /// `name=systemd`): a fresh mount of it needs them (`--cgroup-access`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cgroup_options: Vec<String>,
}

/// What the planner knows about the host: plain data.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostFacts {
    /// Visible mount points (the top one where several are stacked).
    pub mounts: Vec<HostMount>,
    /// Each of `SandboxConfig::dir_rules`, resolved (symlinks followed), or
    /// why it cannot be used.
    pub rule_paths: Vec<std::result::Result<PathBuf, String>>,
    /// Host paths the planner asks about that are directories.
    pub dirs: BTreeSet<PathBuf>,
    /// Host paths the planner asks about that exist but are not directories.
    pub files: BTreeSet<PathBuf>,
    /// The caller's working directory (resolved).
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub user_name: String,
    pub group_name: String,
    /// The runtime is not real root: device nodes are bound, not made.
    pub rootless: bool,
    /// `/proc/kcore` exists (the `/dev/core` link).
    pub has_kcore: bool,
    /// Rootless only: the entries of `/` and of every directory above a
    /// mount point. In a user namespace an overlay's lower layer may not
    /// have mounts below it (the kernel refuses to clone a mount with
    /// locked children), so such a directory is rebuilt from its entries.
    pub entries: BTreeMap<PathBuf, Vec<HostEntry>>,
    /// `fuse-overlayfs`, `/dev/fuse` and `ROOTCELL_SANDBOX_OVERLAY`: which
    /// overlay driver the plan uses (`overlay_driver::choose`).
    pub fuse: FuseFacts,
}

/// One entry of a host directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostEntry {
    pub name: PathBuf,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Dir,
    File,
    Symlink(PathBuf),
}

/// Host paths whose kind the planner needs besides the rules.
pub(super) fn asked_paths(cfg: &SandboxConfig) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = [
        "/run/resolvconf",
        "/run/systemd/resolve",
        "/run/shm",
        "/dev/shm",
        "/home",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    paths.extend(STAGING_MOUNTPOINTS.iter().map(PathBuf::from));
    paths.extend(SYSTEM_FILES.iter().map(|f| Path::new("/etc").join(f)));
    if let Some(dir) = &cfg.working_dir {
        paths.push(dir.clone());
    }
    paths
}

impl HostFacts {
    /// Reads the host's mount table and the few paths the plan depends on.
    pub fn gather(cfg: &SandboxConfig) -> Result<HostFacts> {
        let table = crate::fs::mountinfo::read_self()?;
        let mut facts = HostFacts {
            mounts: visible_mounts(&table),
            cwd: std::env::current_dir()
                .map_err(|e| Error::usage("--dir", format!("the current directory: {e}")))?,
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            rootless: !rustix::process::geteuid().is_root(),
            has_kcore: Path::new("/proc/kcore").exists(),
            fuse: FuseFacts::gather(!rustix::process::geteuid().is_root())?,
            ..HostFacts::default()
        };
        for mount in &mut facts.mounts {
            mount.directory = std::fs::metadata(&mount.path)
                .map(|m| m.is_dir())
                .unwrap_or(true);
        }
        facts.rule_paths = cfg
            .dir_rules
            .iter()
            .map(|rule| match std::fs::canonicalize(&rule.path) {
                Ok(path) if path.is_dir() => Ok(path),
                Ok(_) => Err(format!("{} is not a directory", rule.path.display())),
                Err(e) => Err(format!("{}: {e}", rule.path.display())),
            })
            .collect();
        for path in asked_paths(cfg) {
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => facts.dirs.insert(path),
                Ok(_) => facts.files.insert(path),
                Err(_) => false,
            };
        }
        if facts.rootless {
            facts.entries = list_ancestors_of_mounts(&facts.mounts);
        }
        let (user, group) = names_of(facts.uid, facts.gid);
        facts.user_name = user;
        facts.group_name = group;
        Ok(facts)
    }
}

/// The entries of `/` and of every directory above a mount point (outside
/// the kernel's own trees, which are never overlaid).
pub(super) fn list_ancestors_of_mounts(mounts: &[HostMount]) -> BTreeMap<PathBuf, Vec<HostEntry>> {
    let mut dirs: BTreeSet<&Path> = BTreeSet::new();
    dirs.insert(Path::new("/"));
    for m in mounts {
        if is_kernel_tree(&m.path) {
            continue;
        }
        dirs.extend(m.path.ancestors().skip(1));
    }
    dirs.into_iter()
        .filter_map(|dir| {
            let entries = std::fs::read_dir(dir).ok()?;
            let list = entries
                .filter_map(|e| {
                    let e = e.ok()?;
                    let kind = match e.file_type().ok()? {
                        t if t.is_dir() => EntryKind::Dir,
                        t if t.is_symlink() => {
                            EntryKind::Symlink(std::fs::read_link(e.path()).ok()?)
                        }
                        _ => EntryKind::File,
                    };
                    Some(HostEntry {
                        name: PathBuf::from(e.file_name()),
                        kind,
                    })
                })
                .collect();
            Some((dir.to_path_buf(), list))
        })
        .collect()
}

pub(super) fn is_kernel_tree(path: &Path) -> bool {
    ["/proc", "/sys", "/dev"]
        .iter()
        .any(|t| path.starts_with(t))
}

/// The caller's user and group names from the host's `/etc/passwd` and
/// `/etc/group` (files only: no NSS modules are loaded into the runtime).
pub(super) fn names_of(uid: u32, gid: u32) -> (String, String) {
    let lookup = |file: &str, id: u32| {
        std::fs::read_to_string(file).ok().and_then(|text| {
            text.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let found: u32 = fields.nth(1)?.parse().ok()?;
                (found == id && !name.is_empty()).then(|| name.to_string())
            })
        })
    };
    // A name that could break the generated files or a path (`:`, `/`,
    // newlines...) is replaced, as system_config does.
    let safe = |name: Option<String>| name.filter(|n| system_config::valid_name(n));
    (
        safe(lookup("/etc/passwd", uid)).unwrap_or_else(|| format!("user{uid}")),
        safe(lookup("/etc/group", gid)).unwrap_or_else(|| format!("group{gid}")),
    )
}

/// One mount per path: the last in mountinfo order is the one on top.
/// Mount points the reader cannot see (outside its root) are dropped.
pub fn visible_mounts(table: &[MountInfo]) -> Vec<HostMount> {
    let mut by_path: BTreeMap<PathBuf, HostMount> = BTreeMap::new();
    for m in table {
        if !m.mount_point.is_absolute() {
            continue;
        }
        let mut attrs = 0;
        for (name, bit) in [
            ("nosuid", attr::NOSUID),
            ("nodev", attr::NODEV),
            ("noexec", attr::NOEXEC),
        ] {
            if m.mount_options.iter().any(|o| o == name) {
                attrs |= bit;
            }
        }
        by_path.insert(
            m.mount_point.clone(),
            HostMount {
                path: m.mount_point.clone(),
                fs_type: m.fs_type.clone(),
                attrs,
                directory: true,
                cgroup_options: if m.fs_type == "cgroup" {
                    m.super_options
                        .iter()
                        .filter(|o| !matches!(o.as_str(), "rw" | "ro"))
                        .cloned()
                        .collect()
                } else {
                    Vec::new()
                },
            },
        );
    }
    by_path.into_values().collect()
}
