//! The sandbox's planner: a pure function from the config and the host's
//! mount table (gathered once by `HostFacts::gather`) to the mount steps of
//! a root made from the host's own tree — BenchExec's directory modes.
//!
//! Rules, as BenchExec's `container.py`:
//! - a mode applies to a directory and everything below it, including every
//!   mount point; the most specific path wins;
//! - overlays are not recursive (a mount point is a different filesystem),
//!   so every mount point below an overlaid directory gets its own overlay;
//! - what cannot be an overlay's lower layer (the host's `/dev`, `/sys`,
//!   cgroup filesystems, autofs, vfat, ntfs, fuse, a file) is read-only
//!   instead, with a one-line note;
//! - mount points inside a hidden directory disappear with it;
//! - `/proc` is a fresh procfs of the sandbox's pid namespace, `/dev` a fresh
//!   tmpfs with the usual nodes (unless a mode is given for `/dev` itself).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::config::{DirMode, SandboxConfig};
use super::overlay_driver::{self, FuseFacts};
use super::system_config::{self, Identity};
use crate::error::{Error, Result};
use crate::fs::mountinfo::MountInfo;
use crate::plan::options::attr;
use crate::plan::{
    AttrChange, DeviceNode, FsOption, MountKind, MountStep, OverlayDriver, Staging,
    StagingFilesystem, Step,
};

/// Filesystem types that cannot be the lower layer of an overlay, or whose
/// overlay would make no sense (kernel and device filesystems).
const NOT_OVERLAYABLE: &[&str] = &[
    "autofs",
    "vfat",
    "msdos",
    "exfat",
    "ntfs",
    "ntfs3",
    "fuseblk",
    "fuse",
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devtmpfs",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "efivarfs",
    "fusectl",
    "binfmt_misc",
    "nsfs",
    "hugetlbfs",
    "rpc_pipefs",
    "nfsd",
    "selinuxfs",
];

/// Where the staging may be attached while the root is assembled, in order
/// of preference: directories every host has, none of them needed as a
/// source once covered (the planner checks).
const STAGING_MOUNTPOINTS: &[&str] = &["/dev", "/run", "/tmp", "/mnt", "/media", "/srv", "/opt"];

/// The generated files of `/etc` (unless `--keep-system-config`).
const SYSTEM_FILES: &[&str] = &["passwd", "group", "hosts", "nsswitch.conf", "hostname"];

/// The host's hostname is not shown: the sandbox has its own.
pub const SANDBOX_HOSTNAME: &str = "sandbox";
mod host;
mod steps;

pub use host::*;
use steps::*;

/// The sandbox's mounts: what `rootfs` executes for a `RootSource::HostTree`.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub staging: Staging,
    /// Before the root switch, in order; the first mounts `/`.
    pub setup: Vec<Step>,
    /// After the root switch.
    pub finish: Vec<Step>,
    /// One line each: a mode that fell back, a mount point left out.
    pub notes: Vec<String>,
    /// Every directory and its final mode, for `--plan` and the tests.
    pub modes: Vec<(PathBuf, DirMode)>,
    /// `HOME` inside: a fresh hidden directory.
    pub home: PathBuf,
    /// The working directory inside.
    pub working_dir: PathBuf,
    /// The identity the generated `/etc` files know.
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
}

/// Plans the sandbox's mounts.
pub fn plan(cfg: &SandboxConfig, host: &HostFacts) -> Result<Layout> {
    let uid = if cfg.root {
        0
    } else {
        cfg.uid.unwrap_or(host.uid)
    };
    let gid = if cfg.root {
        0
    } else {
        cfg.gid.unwrap_or(host.gid)
    };
    let user = if uid == 0 {
        "root".to_string()
    } else if uid == host.uid {
        host.user_name.clone()
    } else {
        format!("user{uid}")
    };
    let home = Path::new("/home").join(&user);
    let rules = mode_rules(cfg, host, &home)?;
    let working_dir = match &cfg.working_dir {
        Some(dir) if !dir.is_absolute() => {
            return Err(Error::usage(
                "--dir",
                format!("{} must be absolute", dir.display()),
            ))
        }
        Some(dir) => crate::plan::build::clean(dir),
        None => host.cwd.clone(),
    };

    let mut notes = Vec::new();
    let mut modes = Vec::new();
    let mut setup = Vec::new();
    let places = places(host, &rules);
    let dev_from_host = rules.contains_key(Path::new("/dev"));
    let mut skip_below: Option<PathBuf> = None;
    for (index, place) in places.iter().enumerate() {
        if let Some(top) = &skip_below {
            if place.path.starts_with(top) {
                continue;
            }
            skip_below = None;
        }
        let path = &place.path;
        if path.starts_with("/proc") || (path.starts_with("/dev") && !dev_from_host && !place.rule)
        {
            // A fresh procfs and a fresh /dev replace them.
            continue;
        }
        let (mode, parent_mode) = mode_of(&rules, path);
        if mode == DirMode::Hidden && parent_mode == Some(DirMode::Hidden) && !place.rule {
            continue;
        }
        if mode == DirMode::Overlay {
            if let Some(target) = &place.symlink {
                setup.push(Step::Symlink {
                    target: target.clone(),
                    link: path.clone(),
                });
                continue;
            }
            if place.rebuilt {
                modes.push((path.clone(), DirMode::Overlay));
                setup.push(Step::Mount(MountStep {
                    kind: MountKind::Staging {
                        path: Path::new("upper").join(relative(path)),
                    },
                    ..mount_for(path, DirMode::Hidden, place, false)
                }));
                continue;
            }
        }
        let mode = match fallback(mode, place) {
            Ok(mode) => mode,
            // A file among rebuilt entries: read-only, as expected.
            Err(_) if place.entry => DirMode::ReadOnly,
            Err(reason) => {
                notes.push(format!(
                    "{}: {reason}, read-only instead of overlay",
                    path.display()
                ));
                DirMode::ReadOnly
            }
        };
        modes.push((path.clone(), mode));
        // A sysfs shows the network devices of the namespace it was
        // mounted in: with a network namespace of its own, the sandbox
        // gets a fresh read-only sysfs (`/sys/class/net` holds `lo` only),
        // and the host's mounts below `/sys` (cgroups...) bound read-only
        // on top of it, each top one with its tree.
        let below_sys = || {
            places[index + 1..]
                .iter()
                .take_while(|p| p.path.starts_with(path))
        };
        if path == Path::new("/sys")
            && place.fs_type == "sysfs"
            && mode == DirMode::ReadOnly
            && !cfg.network_access
            && below_sys().all(|p| !p.rule)
        {
            use attr::{NODEV, NOEXEC, NOSUID, RDONLY};
            if let Some(note) = notes.last_mut().filter(|n| n.starts_with("/sys:")) {
                *note = "/sys: a fresh read-only sysfs (the host's cannot be an overlay's \
                         lower layer)"
                    .to_string();
            }
            setup.push(fresh(
                "/sys",
                "sysfs",
                &[],
                RDONLY | NOSUID | NODEV | NOEXEC,
            ));
            let mut top: Option<&Path> = None;
            for below in below_sys() {
                if top.is_some_and(|t| below.path.starts_with(t)) {
                    continue;
                }
                top = Some(&below.path);
                setup.push(Step::Mount(mount_for(
                    &below.path,
                    DirMode::ReadOnly,
                    below,
                    true,
                )));
            }
            skip_below = Some(path.clone());
            continue;
        }
        // A read-only or full-access tree without rules or special
        // directories below is one recursive bind.
        let mut below = places[index + 1..]
            .iter()
            .take_while(|p| p.path.starts_with(path))
            .peekable();
        let recursive = matches!(mode, DirMode::ReadOnly | DirMode::FullAccess)
            && below.peek().is_some()
            && below.all(|p| {
                !p.rule
                    && !p.path.starts_with("/proc")
                    && (dev_from_host || !p.path.starts_with("/dev"))
                    && fallback(mode_of(&rules, &p.path).0, p).unwrap_or(DirMode::ReadOnly) == mode
            });
        if recursive {
            skip_below = Some(path.clone());
        }
        // In a user namespace a bind must take the mounts below along (the
        // kernel refuses to separate a mount from its locked children);
        // their own steps then mount over them.
        let recursive = recursive || (host.rootless && place.directory);
        setup.push(Step::Mount(mount_for(path, mode, place, recursive)));
    }

    // Every overlay gets the same driver: the kernel's, or fuse-overlayfs
    // as the rootless fallback (or forced).
    overlay_driver::assign(
        &mut setup,
        &overlay_driver::choose(&host.fuse, host.rootless)?,
    );
    special_filesystems(&mut setup, cfg, host, &rules, dev_from_host);
    if cfg.cgroup_access {
        cgroup_mounts(&mut setup, &mut notes, host, &rules);
    }
    if !cfg.keep_system_config {
        system_files(&mut setup, host, uid, gid, &user, &home);
    }
    // HOME and a working directory inside a hidden directory are made in
    // it (the hidden directory is empty).
    for dir in [&home, &working_dir] {
        if mode_of(&rules, dir).0 == DirMode::Hidden {
            setup.push(Step::Mkdir { path: dir.clone() });
        }
    }

    let staging = Staging {
        filesystem: if cfg.use_tmpfs {
            StagingFilesystem::Tmpfs {
                options: tmpfs_options(cfg),
            }
        } else {
            StagingFilesystem::Directory
        },
        mountpoint: staging_mountpoint(host, &setup)?,
    };
    Ok(Layout {
        staging,
        setup,
        finish: Vec::new(),
        notes,
        modes,
        home,
        working_dir,
        uid,
        gid,
        hostname: SANDBOX_HOSTNAME.to_string(),
    })
}

/// Every directory with a mode: BenchExec's defaults, then the user's
/// rules (which win for the same path; two different modes the user gave
/// for one path are an error).
fn mode_rules(
    cfg: &SandboxConfig,
    host: &HostFacts,
    home: &Path,
) -> Result<BTreeMap<PathBuf, DirMode>> {
    let mut rules = BTreeMap::new();
    rules.insert(PathBuf::from("/"), DirMode::Overlay);
    rules.insert(
        PathBuf::from("/tmp"),
        if cfg.keep_tmp {
            DirMode::FullAccess
        } else {
            DirMode::Hidden
        },
    );
    rules.insert(PathBuf::from("/run"), DirMode::Hidden);
    rules.insert(home.to_path_buf(), DirMode::Hidden);
    for dir in ["/run/resolvconf", "/run/systemd/resolve"] {
        if host.dirs.contains(Path::new(dir)) {
            rules.insert(PathBuf::from(dir), DirMode::ReadOnly);
        }
    }
    let mut given: BTreeMap<PathBuf, DirMode> = BTreeMap::new();
    for (i, rule) in cfg.dir_rules.iter().enumerate() {
        let flag = rule.mode.flag();
        let path = match host.rule_paths.get(i) {
            Some(Ok(path)) => path.clone(),
            Some(Err(reason)) => return Err(Error::usage(flag, reason.clone())),
            None => {
                return Err(Error::usage(
                    flag,
                    format!("{}: not looked up", rule.path.display()),
                ))
            }
        };
        if let Some(previous) = given.insert(path.clone(), rule.mode) {
            if previous != rule.mode {
                return Err(Error::usage(
                    flag,
                    format!(
                        "{} is also given with {}: one mode per directory",
                        path.display(),
                        previous.flag()
                    ),
                ));
            }
        }
        if cfg.keep_tmp && path == Path::new("/tmp") && rule.mode != DirMode::FullAccess {
            return Err(Error::usage(
                flag,
                "/tmp conflicts with --keep-tmp (which makes /tmp full-access)",
            ));
        }
    }
    rules.extend(given);
    Ok(rules)
}

/// A directory the plan has to treat: a host mount point, a rule's
/// directory, or both.
#[derive(Debug, Clone)]
struct Place {
    path: PathBuf,
    fs_type: String,
    attrs: u64,
    directory: bool,
    /// A directory mode names it.
    rule: bool,
    /// A symbolic link of a directory rebuilt from its entries (rootless).
    symlink: Option<PathBuf>,
    /// An entry of a directory rebuilt from its entries (rootless).
    entry: bool,
    /// Rebuilt from its entries: an overlay would have mounts below its
    /// lower layer, which a user namespace refuses.
    rebuilt: bool,
}

/// Mount points and rule directories, parents first.
fn places(host: &HostFacts, rules: &BTreeMap<PathBuf, DirMode>) -> Vec<Place> {
    let mut by_path: BTreeMap<PathBuf, Place> = host
        .mounts
        .iter()
        .map(|m| {
            (
                m.path.clone(),
                Place {
                    path: m.path.clone(),
                    fs_type: m.fs_type.clone(),
                    attrs: m.attrs,
                    directory: m.directory,
                    rule: false,
                    symlink: None,
                    entry: false,
                    rebuilt: false,
                },
            )
        })
        .collect();
    by_path.entry(PathBuf::from("/")).or_insert(Place {
        path: PathBuf::from("/"),
        fs_type: String::new(),
        attrs: 0,
        directory: true,
        rule: false,
        symlink: None,
        entry: false,
        rebuilt: false,
    });
    for path in rules.keys() {
        if let Some(place) = by_path.get_mut(path) {
            place.rule = true;
            continue;
        }
        // A directory inside a mount: that mount's type and flags.
        let within = host
            .mounts
            .iter()
            .filter(|m| path.starts_with(&m.path))
            .max_by_key(|m| m.path.components().count());
        by_path.insert(
            path.clone(),
            Place {
                path: path.clone(),
                fs_type: within.map(|m| m.fs_type.clone()).unwrap_or_default(),
                attrs: within.map_or(0, |m| m.attrs),
                directory: true,
                rule: true,
                symlink: None,
                entry: false,
                rebuilt: false,
            },
        );
    }
    if host.rootless {
        rebuild_overlays_with_mounts_below(&mut by_path, host, rules);
    }
    by_path.into_values().collect()
}

/// Rootless: an overlaid directory with mounts below it is rebuilt in the
/// staging from its entries — each subdirectory its own overlay (or rebuilt
/// in turn), symbolic links made again, files bound read-only.
fn rebuild_overlays_with_mounts_below(
    by_path: &mut BTreeMap<PathBuf, Place>,
    host: &HostFacts,
    rules: &BTreeMap<PathBuf, DirMode>,
) {
    let mounts: Vec<&Path> = host
        .mounts
        .iter()
        .map(|m| m.path.as_path())
        .filter(|p| !p.starts_with("/proc"))
        .collect();
    let mut work: Vec<PathBuf> = by_path.keys().cloned().collect();
    while let Some(path) = work.pop() {
        let Some(place) = by_path.get(&path) else {
            continue;
        };
        let overlaid = fallback(mode_of(rules, &path).0, place) == Ok(DirMode::Overlay);
        let mounts_below = mounts.iter().any(|m| m.starts_with(&path) && *m != path);
        if !overlaid || !mounts_below {
            continue;
        }
        let (fs_type, attrs) = (place.fs_type.clone(), place.attrs);
        if let Some(place) = by_path.get_mut(&path) {
            place.rebuilt = true;
        }
        for entry in host.entries.get(&path).into_iter().flatten() {
            let child = path.join(&entry.name);
            if by_path.contains_key(&child) {
                continue;
            }
            by_path.insert(
                child.clone(),
                Place {
                    path: child.clone(),
                    fs_type: fs_type.clone(),
                    attrs,
                    directory: entry.kind == EntryKind::Dir,
                    rule: false,
                    symlink: match &entry.kind {
                        EntryKind::Symlink(target) => Some(target.clone()),
                        _ => None,
                    },
                    entry: true,
                    rebuilt: false,
                },
            );
            work.push(child);
        }
    }
}

/// The mode of `path` (its most specific rule) and the mode of the rule
/// strictly above that one.
fn mode_of(rules: &BTreeMap<PathBuf, DirMode>, path: &Path) -> (DirMode, Option<DirMode>) {
    let mut found = Vec::new();
    for ancestor in path.ancestors() {
        if let Some(mode) = rules.get(ancestor) {
            found.push((ancestor, *mode));
            if found.len() == 2 {
                break;
            }
        }
    }
    match found.as_slice() {
        [] => (DirMode::Overlay, None),
        [(at, mode)] => (*mode, (*at != path).then_some(*mode)),
        [(at, mode), (_, above)] => {
            // The parent's mode is the rule that governs the directory
            // above `path`: `mode` itself unless that rule is at `path`.
            (*mode, Some(if *at == path { *above } else { *mode }))
        }
        _ => unreachable!("at most two rules are collected"),
    }
}

/// Overlay falls back to read-only where it cannot work.
fn fallback(mode: DirMode, place: &Place) -> std::result::Result<DirMode, String> {
    if mode != DirMode::Overlay {
        return Ok(mode);
    }
    if place.path.starts_with("/dev") || place.path.starts_with("/sys") {
        return Err(format!("the host's {}", place.fs_type_or("directory")));
    }
    if !place.directory {
        return Err("a file mount point".to_string());
    }
    let fs = place.fs_type.as_str();
    if NOT_OVERLAYABLE.contains(&fs) || fs.starts_with("fuse.") {
        return Err(format!("{fs} cannot be an overlay's lower layer"));
    }
    Ok(mode)
}

impl Place {
    fn fs_type_or<'a>(&'a self, default: &'a str) -> &'a str {
        if self.fs_type.is_empty() {
            default
        } else {
            &self.fs_type
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::config::DirRule;

    fn mount(path: &str, fs: &str) -> HostMount {
        HostMount {
            path: PathBuf::from(path),
            fs_type: fs.to_string(),
            attrs: 0,
            directory: true,
            cgroup_options: match (fs, path.rsplit('/').next()) {
                ("cgroup", Some(name)) => vec![name.to_string()],
                _ => Vec::new(),
            },
        }
    }

    fn host() -> HostFacts {
        HostFacts {
            mounts: vec![
                mount("/", "ext4"),
                mount("/proc", "proc"),
                mount("/sys", "sysfs"),
                mount("/sys/fs/cgroup", "tmpfs"),
                mount("/sys/fs/cgroup/memory", "cgroup"),
                mount("/dev", "devtmpfs"),
                mount("/dev/pts", "devpts"),
                mount("/dev/shm", "tmpfs"),
                mount("/run", "tmpfs"),
                mount("/run/user/1000", "tmpfs"),
                mount("/home", "ext4"),
                mount("/boot/efi", "vfat"),
                mount("/mnt/share", "fuse.sshfs"),
            ],
            rule_paths: Vec::new(),
            dirs: ["/dev", "/run", "/tmp", "/mnt", "/dev/shm", "/home"]
                .iter()
                .map(PathBuf::from)
                .collect(),
            files: ["/etc/passwd", "/etc/group", "/etc/hosts"]
                .iter()
                .map(PathBuf::from)
                .collect(),
            cwd: PathBuf::from("/home/alice/work"),
            uid: 1000,
            gid: 1000,
            user_name: "alice".into(),
            group_name: "alice".into(),
            rootless: false,
            has_kcore: true,
            entries: BTreeMap::new(),
            fuse: FuseFacts::default(),
        }
    }

    fn config(rules: &[(&str, DirMode)]) -> (SandboxConfig, HostFacts) {
        let mut cfg = SandboxConfig::new(vec!["true".into()]);
        let mut facts = host();
        for (path, mode) in rules {
            cfg.dir_rules.push(DirRule {
                path: PathBuf::from(path),
                mode: *mode,
            });
            facts.rule_paths.push(Ok(PathBuf::from(path)));
        }
        (cfg, facts)
    }

    fn mounts(layout: &Layout) -> Vec<(String, String)> {
        layout
            .setup
            .iter()
            .filter_map(|s| match s {
                Step::Mount(m) => Some((
                    m.destination.display().to_string(),
                    match &m.kind {
                        MountKind::Overlay { .. } => "overlay".to_string(),
                        MountKind::Staging { path } => format!("staging {}", path.display()),
                        MountKind::Bind {
                            recursive: true, ..
                        } if m.recursive_attrs.set & attr::RDONLY != 0 => "rbind ro".to_string(),
                        MountKind::Bind {
                            recursive: true, ..
                        } => "rbind".to_string(),
                        MountKind::Bind { .. } if m.recursive_attrs.set & attr::RDONLY != 0 => {
                            "bind ro".to_string()
                        }
                        MountKind::Bind { .. } => "bind".to_string(),
                        MountKind::Fresh { fstype, .. } => format!("fresh {fstype}"),
                    },
                )),
                _ => None,
            })
            .collect()
    }

    fn kind_at(layout: &Layout, path: &str) -> Option<String> {
        mounts(layout)
            .into_iter()
            .find(|(p, _)| p == path)
            .map(|(_, k)| k)
    }

    #[test]
    fn cgroup_access_mounts_the_hierarchies_afresh_and_writable() {
        let (mut cfg, mut facts) = config(&[]);
        facts
            .mounts
            .push(mount("/sys/fs/cgroup/unified", "cgroup2"));
        facts.mounts.push(mount("/sys/fs/cgroup/systemd", "cgroup"));
        facts.mounts.last_mut().unwrap().cgroup_options = vec!["name=systemd".into()];
        facts.mounts.sort_by(|a, b| a.path.cmp(&b.path));
        let without = plan(&cfg, &facts).unwrap();
        assert_eq!(kind_at(&without, "/sys/fs/cgroup/memory"), None);
        cfg.cgroup_access = true;
        let layout = plan(&cfg, &facts).unwrap();
        let fresh = |path: &str| {
            layout.setup.iter().find_map(|s| match s {
                Step::Mount(m) if m.destination == Path::new(path) => match &m.kind {
                    MountKind::Fresh {
                        fstype, options, ..
                    } => Some((fstype.clone(), options.clone(), m.attrs.set)),
                    _ => None,
                },
                _ => None,
            })
        };
        let (fstype, options, attrs) = fresh("/sys/fs/cgroup/memory").expect("memory");
        assert_eq!(fstype, "cgroup");
        assert_eq!(options, vec![FsOption::Flag("memory".into())]);
        assert_eq!(attrs & attr::RDONLY, 0, "writable");
        let (fstype, _, attrs) = fresh("/sys/fs/cgroup/unified").expect("unified");
        assert_eq!(fstype, "cgroup2");
        assert_eq!(attrs & attr::RDONLY, 0, "writable");
        // A named hierarchy has no run cgroup: not delegated.
        assert_eq!(fresh("/sys/fs/cgroup/systemd"), None);
        // After the read-only /sys/fs/cgroup they cover.
        let list = mounts(&layout);
        let pos = |p: &str| list.iter().rposition(|(d, _)| d == p).unwrap();
        assert!(pos("/sys/fs/cgroup") < pos("/sys/fs/cgroup/memory"));
        assert!(layout
            .notes
            .iter()
            .any(|n| n.starts_with("--cgroup-access:")));
        // Rootless: nothing to delegate, said so.
        facts.rootless = true;
        let rootless = plan(&cfg, &facts).unwrap();
        assert!(rootless
            .notes
            .iter()
            .any(|n| n.contains("--cgroup-access") && n.contains("unprivileged")));
    }

    #[test]
    fn defaults_are_benchexecs() {
        let (cfg, facts) = config(&[]);
        let layout = plan(&cfg, &facts).unwrap();
        assert_eq!(kind_at(&layout, "/").as_deref(), Some("overlay"));
        assert_eq!(kind_at(&layout, "/home").as_deref(), Some("overlay"));
        assert_eq!(
            kind_at(&layout, "/tmp").as_deref(),
            Some("staging upper/tmp")
        );
        assert_eq!(
            kind_at(&layout, "/run").as_deref(),
            Some("staging upper/run")
        );
        // Mount points inside a hidden directory disappear with it.
        assert_eq!(kind_at(&layout, "/run/user/1000"), None);
        assert_eq!(
            kind_at(&layout, "/home/alice").as_deref(),
            Some("staging upper/home/alice")
        );
        assert_eq!(layout.home, PathBuf::from("/home/alice"));
        assert_eq!(kind_at(&layout, "/proc").as_deref(), Some("fresh proc"));
        assert_eq!(kind_at(&layout, "/dev").as_deref(), Some("fresh tmpfs"));
        assert_eq!(
            kind_at(&layout, "/dev/pts").as_deref(),
            Some("fresh devpts")
        );
        assert_eq!(
            kind_at(&layout, "/dev/shm").as_deref(),
            Some("staging upper/dev/shm")
        );
        // /sys cannot be overlaid: in the sandbox's own network namespace
        // a fresh read-only sysfs, the host's mounts below it one
        // recursive read-only bind each.
        assert_eq!(kind_at(&layout, "/sys").as_deref(), Some("fresh sysfs"));
        assert_eq!(
            kind_at(&layout, "/sys/fs/cgroup").as_deref(),
            Some("rbind ro")
        );
        assert_eq!(kind_at(&layout, "/sys/fs/cgroup/memory"), None);
        let (mut cfg, facts) = config(&[]);
        cfg.network_access = true;
        let shared = plan(&cfg, &facts).unwrap();
        // The host's network: the host's sysfs, with what is below it.
        assert_eq!(kind_at(&shared, "/sys").as_deref(), Some("rbind ro"));
        assert_eq!(kind_at(&shared, "/sys/fs/cgroup"), None);
        assert_eq!(kind_at(&layout, "/boot/efi").as_deref(), Some("bind ro"));
        assert_eq!(kind_at(&layout, "/mnt/share").as_deref(), Some("bind ro"));
        assert!(
            layout.notes.iter().any(|n| n.contains("/boot/efi")),
            "{:?}",
            layout.notes
        );
        assert!(layout.notes.iter().any(|n| n.contains("/mnt/share")));
        assert_eq!(layout.working_dir, PathBuf::from("/home/alice/work"));
        // The host's /dev is covered by the staging while the root is built.
        assert_eq!(layout.staging.mountpoint, PathBuf::from("/dev"));
        // Only the /etc files the host has are replaced.
        assert_eq!(
            kind_at(&layout, "/etc/passwd").as_deref(),
            Some("staging files/passwd")
        );
        assert_eq!(kind_at(&layout, "/etc/nsswitch.conf"), None);
    }

    #[test]
    fn the_root_mount_comes_first_and_parents_before_children() {
        let (cfg, facts) = config(&[("/home/alice/data", DirMode::FullAccess)]);
        let layout = plan(&cfg, &facts).unwrap();
        let list = mounts(&layout);
        assert_eq!(list[0].0, "/");
        let pos = |p: &str| list.iter().position(|(d, _)| d == p).unwrap();
        assert!(pos("/home") < pos("/home/alice"));
        assert!(pos("/home/alice") < pos("/home/alice/data"));
        assert_eq!(
            kind_at(&layout, "/home/alice/data").as_deref(),
            Some("bind")
        );
    }

    #[test]
    fn the_most_specific_mode_wins_and_is_inherited_by_mount_points() {
        let (cfg, mut facts) = config(&[("/home", DirMode::ReadOnly), ("/mnt", DirMode::Hidden)]);
        facts.mounts.push(mount("/home/alice/usb", "ext4"));
        let layout = plan(&cfg, &facts).unwrap();
        // /home is read-only, but HOME is hidden below it.
        assert_eq!(kind_at(&layout, "/home").as_deref(), Some("bind ro"));
        assert_eq!(
            kind_at(&layout, "/home/alice").as_deref(),
            Some("staging upper/home/alice")
        );
        // Inside hidden HOME the mount point is gone.
        assert_eq!(kind_at(&layout, "/home/alice/usb"), None);
        assert_eq!(
            kind_at(&layout, "/mnt").as_deref(),
            Some("staging upper/mnt")
        );
        assert_eq!(kind_at(&layout, "/mnt/share"), None);
    }

    #[test]
    fn read_only_root_is_one_recursive_bind_until_a_rule_or_special_dir() {
        let (cfg, facts) = config(&[("/", DirMode::ReadOnly)]);
        let layout = plan(&cfg, &facts).unwrap();
        // /proc, /dev and the hidden dirs are below /, so / itself is bound
        // alone, its mount points each.
        assert_eq!(kind_at(&layout, "/").as_deref(), Some("bind ro"));
        // /home has HOME (hidden) below it.
        assert_eq!(kind_at(&layout, "/home").as_deref(), Some("bind ro"));
        assert_eq!(kind_at(&layout, "/sys").as_deref(), Some("fresh sysfs"));
        assert_eq!(
            kind_at(&layout, "/sys/fs/cgroup").as_deref(),
            Some("rbind ro")
        );
        assert_eq!(kind_at(&layout, "/sys/fs/cgroup/memory"), None);
        // The staging may not sit under a recursive source's tree.
        assert_eq!(layout.staging.mountpoint, PathBuf::from("/dev"));
    }

    #[test]
    fn full_access_below_hidden_gets_its_mount_point_in_the_hidden_dir() {
        let (cfg, facts) = config(&[("/tmp/work", DirMode::FullAccess)]);
        let layout = plan(&cfg, &facts).unwrap();
        assert_eq!(
            kind_at(&layout, "/tmp").as_deref(),
            Some("staging upper/tmp")
        );
        assert_eq!(kind_at(&layout, "/tmp/work").as_deref(), Some("bind"));
    }

    #[test]
    fn keep_tmp_makes_tmp_full_access() {
        let (mut cfg, facts) = config(&[]);
        cfg.keep_tmp = true;
        let layout = plan(&cfg, &facts).unwrap();
        assert_eq!(kind_at(&layout, "/tmp").as_deref(), Some("bind"));
        // /tmp is a source now: the staging goes elsewhere.
        assert_eq!(layout.staging.mountpoint, PathBuf::from("/dev"));
    }

    #[test]
    fn a_mode_for_dev_uses_the_hosts_dev_read_only() {
        let (cfg, facts) = config(&[("/dev", DirMode::Overlay)]);
        let layout = plan(&cfg, &facts).unwrap();
        assert_eq!(kind_at(&layout, "/dev").as_deref(), Some("rbind ro"));
        assert!(layout.notes.iter().any(|n| n.starts_with("/dev:")));
        // The host's /dev is a source: the staging cannot cover it.
        assert_eq!(layout.staging.mountpoint, PathBuf::from("/run"));
    }

    #[test]
    fn bad_rules_name_their_flag() {
        let (cfg, facts) = config(&[("/home", DirMode::ReadOnly), ("/home", DirMode::Hidden)]);
        let err = plan(&cfg, &facts).unwrap_err().to_string();
        assert!(
            err.starts_with("--hidden-dir: /home is also given with --read-only-dir"),
            "{err}"
        );

        let (cfg, mut facts) = config(&[("/nonexistent", DirMode::FullAccess)]);
        facts.rule_paths[0] = Err("/nonexistent: No such file or directory".into());
        let err = plan(&cfg, &facts).unwrap_err();
        assert!(matches!(err, Error::Usage { ref flag, .. } if flag == "--full-access-dir"));

        // Saying the same twice is fine.
        let (cfg, facts) = config(&[("/home", DirMode::ReadOnly), ("/home", DirMode::ReadOnly)]);
        assert!(plan(&cfg, &facts).is_ok());
    }

    #[test]
    fn root_inside_is_root_in_the_generated_passwd() {
        let (mut cfg, facts) = config(&[]);
        cfg.root = true;
        let layout = plan(&cfg, &facts).unwrap();
        assert_eq!((layout.uid, layout.gid), (0, 0));
        assert_eq!(layout.home, PathBuf::from("/home/root"));
        let passwd = layout
            .setup
            .iter()
            .find_map(|s| match s {
                Step::StagingFile { name, contents, .. } if name == Path::new("passwd") => {
                    Some(contents.clone())
                }
                _ => None,
            })
            .unwrap();
        assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
    }

    #[test]
    fn tmpfs_staging_is_bounded_by_the_memory_limit() {
        let (mut cfg, facts) = config(&[]);
        cfg.limits.memory = Some(1 << 30);
        cfg.limits.memory_nodes = Some(vec![0]);
        let layout = plan(&cfg, &facts).unwrap();
        let StagingFilesystem::Tmpfs { options } = &layout.staging.filesystem else {
            panic!("tmpfs expected");
        };
        let shown: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        assert!(shown.contains(&"size=1073741824".to_string()), "{shown:?}");
        assert!(shown.contains(&"mpol=bind:0".to_string()), "{shown:?}");
        cfg.use_tmpfs = false;
        let layout = plan(&cfg, &facts).unwrap();
        assert_eq!(layout.staging.filesystem, StagingFilesystem::Directory);
        assert_eq!(kind_at(&layout, "/dev/shm").as_deref(), Some("fresh tmpfs"));
    }

    #[test]
    fn every_overlay_gets_the_planned_driver() {
        use crate::sandbox::overlay_driver::OverlayRequest;
        let drivers = |layout: &Layout| -> Vec<OverlayDriver> {
            layout
                .setup
                .iter()
                .filter_map(|s| match s {
                    Step::Mount(MountStep {
                        kind: MountKind::Overlay { driver, .. },
                        ..
                    }) => Some(driver.clone()),
                    _ => None,
                })
                .collect()
        };
        let program = PathBuf::from("/usr/bin/fuse-overlayfs");
        let (cfg, mut facts) = config(&[]);
        facts.fuse.program = Some(program.clone());
        // As root: the kernel's overlayfs.
        let root = drivers(&plan(&cfg, &facts).unwrap());
        assert!(!root.is_empty());
        assert!(root.iter().all(|d| *d == OverlayDriver::Kernel), "{root:?}");
        // Rootless: the kernel first, fuse-overlayfs where it refuses.
        facts.rootless = true;
        let rootless = drivers(&plan(&cfg, &facts).unwrap());
        assert!(!rootless.is_empty());
        let then_fuse = OverlayDriver::KernelThenFuse {
            program: program.clone(),
        };
        assert!(rootless.iter().all(|d| *d == then_fuse), "{rootless:?}");
        // Forced: fuse-overlayfs as root too; a forced driver it cannot
        // have is a usage error naming the variable.
        facts.rootless = false;
        facts.fuse.request = OverlayRequest::Fuse;
        let forced = drivers(&plan(&cfg, &facts).unwrap());
        assert!(forced.iter().all(|d| *d
            == OverlayDriver::Fuse {
                program: program.clone()
            }));
        facts.fuse.dev_fuse_error = Some("/dev/fuse: Permission denied".into());
        let err = plan(&cfg, &facts).unwrap_err();
        assert!(matches!(err, Error::Usage { .. }), "{err:?}");
        // Other steps (binds, fresh filesystems) are untouched.
        facts.fuse.request = OverlayRequest::Kernel;
        facts.fuse.dev_fuse_error = None;
        facts.rootless = true;
        let kernel = drivers(&plan(&cfg, &facts).unwrap());
        assert!(kernel.iter().all(|d| *d == OverlayDriver::Kernel));
    }

    #[test]
    fn rootless_overlays_have_no_mounts_below_their_lower_layer() {
        let (cfg, mut facts) = config(&[]);
        facts.rootless = true;
        facts.mounts.push(mount("/srv/data/disk", "ext4"));
        let entry = |name: &str, kind: EntryKind| HostEntry {
            name: PathBuf::from(name),
            kind,
        };
        facts.entries.insert(
            PathBuf::from("/"),
            vec![
                entry("usr", EntryKind::Dir),
                entry("bin", EntryKind::Symlink(PathBuf::from("usr/bin"))),
                entry("etc", EntryKind::Dir),
                entry("info.json", EntryKind::File),
                entry("home", EntryKind::Dir),
                entry("srv", EntryKind::Dir),
                entry("proc", EntryKind::Dir),
                entry("tmp", EntryKind::Dir),
            ],
        );
        facts.entries.insert(
            PathBuf::from("/srv"),
            vec![entry("data", EntryKind::Dir), entry("www", EntryKind::Dir)],
        );
        facts.entries.insert(
            PathBuf::from("/srv/data"),
            vec![
                entry("disk", EntryKind::Dir),
                entry("notes", EntryKind::File),
            ],
        );
        let layout = plan(&cfg, &facts).unwrap();
        // `/` has mounts below: rebuilt in the staging from its entries.
        assert_eq!(kind_at(&layout, "/").as_deref(), Some("staging upper/"));
        assert_eq!(kind_at(&layout, "/usr").as_deref(), Some("overlay"));
        assert_eq!(kind_at(&layout, "/etc").as_deref(), Some("overlay"));
        assert_eq!(kind_at(&layout, "/info.json").as_deref(), Some("bind ro"));
        assert!(layout.setup.contains(&Step::Symlink {
            target: PathBuf::from("usr/bin"),
            link: PathBuf::from("/bin"),
        }));
        // /home is a mount point without mounts below (HOME is a rule, not
        // a mount): one overlay.
        assert_eq!(kind_at(&layout, "/home").as_deref(), Some("overlay"));
        // Rebuilt level by level down to the mount point.
        assert_eq!(
            kind_at(&layout, "/srv").as_deref(),
            Some("staging upper/srv")
        );
        assert_eq!(kind_at(&layout, "/srv/www").as_deref(), Some("overlay"));
        assert_eq!(
            kind_at(&layout, "/srv/data").as_deref(),
            Some("staging upper/srv/data")
        );
        assert_eq!(
            kind_at(&layout, "/srv/data/notes").as_deref(),
            Some("bind ro")
        );
        assert_eq!(
            kind_at(&layout, "/srv/data/disk").as_deref(),
            Some("overlay")
        );
        // Kernel trees are not rebuilt; /sys is a fresh sysfs (of the
        // sandbox's network namespace) with what is below it bound.
        assert_eq!(kind_at(&layout, "/sys").as_deref(), Some("fresh sysfs"));
        assert_eq!(
            kind_at(&layout, "/sys/fs/cgroup").as_deref(),
            Some("rbind ro")
        );
        assert_eq!(kind_at(&layout, "/proc").as_deref(), Some("fresh proc"));
        // Device nodes are bound from the host in a user namespace.
        assert!(layout
            .setup
            .iter()
            .any(|s| matches!(s, Step::Device(d) if d.bind_from_host)));
        // ...so the staging is not attached over the host's /dev, which
        // they are bound from.
        assert_ne!(layout.staging.mountpoint, PathBuf::from("/dev"));
        assert!(
            layout.notes.iter().all(|n| !n.contains("info.json")),
            "{:?}",
            layout.notes
        );
    }

    #[test]
    fn visible_mounts_keep_the_top_one() {
        let table = crate::fs::mountinfo::parse(
            b"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n\
              2 1 0:5 / /mnt rw,nosuid - tmpfs tmpfs rw\n\
              3 2 0:6 / /mnt rw,nodev,noexec - vfat /dev/sdb1 rw\n",
        )
        .unwrap();
        let mounts = visible_mounts(&table);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[1].fs_type, "vfat");
        assert_eq!(mounts[1].attrs, attr::NODEV | attr::NOEXEC);
    }
}
