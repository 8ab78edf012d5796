//! What a view of a container mounts, as plain data (`ViewPlan`), and the
//! pure parts of `stat`: docker's `PathStat` shape, Go's `FileMode` bits,
//! and `FollowSymlinkInScope` over a lookup callback. No syscalls here.

use std::collections::VecDeque;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::options::attr;
use crate::plan::{IdMapping, Idmap, MountKind, Namespace, Plan, RootfsPlan, Step};

/// The mounts of a view: the container's rootfs and the bind mounts of its
/// config (its volumes), in config order (a later one covers an earlier).
/// Made from the container's plan at `create` and kept in its state, with
/// the identity of every source as it was then (`SourceId`): a view
/// attaches exactly what the container was given, never what a path names
/// later (a container that can write above a volume's host source could
/// swap it for a symlink to `/` meanwhile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewPlan {
    /// Absolute host path of the root filesystem.
    pub rootfs: PathBuf,
    /// What `rootfs` was at create (None: not recorded, the view refuses).
    #[serde(default)]
    pub rootfs_id: Option<SourceId>,
    /// `root.readonly`: the root mount (not the volumes) is read-only.
    pub root_readonly: bool,
    pub mounts: Vec<ViewMount>,
    /// Set when a volume is idmapped and the container's root is not the
    /// host's: the host uid and gid of the container's root, which the
    /// view's thread takes as its filesystem ids (keeping its capabilities)
    /// so that what it creates is owned, in the idmapped volumes, by an id
    /// they map, as what the container's root creates is. The host's root
    /// is unmapped there: its creations fail with `EOVERFLOW`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_as: Option<(u32, u32)>,
    /// Who the container's ids are, for `cp`.
    #[serde(default)]
    pub ids: ContainerIds,
}

/// The container's ids as `cp` needs them, recorded at create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerIds {
    /// The container has a user namespace (made or joined).
    pub user_namespace: bool,
    /// Its mappings (container id → host id): the config's, or those of a
    /// namespace joined by path, read from init at create (`cp` maps the
    /// owners of what it copies through them). Empty: ids are host ids.
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    /// `process.user` (uid, gid): `cp -a` gives what it copies in to it.
    pub user: (u32, u32),
}

impl ContainerIds {
    /// A user namespace joined by path: its mappings are not in the
    /// config, init's `/proc/<pid>/{uid,gid}_map` say them at create.
    pub fn joined_user_namespace(&self) -> bool {
        self.user_namespace && self.uid_mappings.is_empty() && self.gid_mappings.is_empty()
    }
}

/// One bind mount of the config, as the view attaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewMount {
    /// Index in the config's `mounts`, for error messages.
    pub config_index: usize,
    /// Host path (relative sources are relative to the bundle).
    pub source: PathBuf,
    /// What `source` was at create (None: not recorded, the view refuses).
    #[serde(default)]
    pub source_id: Option<SourceId>,
    /// Path inside the container, cleaned.
    pub destination: PathBuf,
    /// `rbind`: the source's submounts too.
    pub recursive: bool,
    /// `ro` or `rro`: the whole bound tree is made read-only
    /// (`mount_setattr(AT_RECURSIVE)`), as docker's view does.
    pub read_only: bool,
    /// `idmap`/`ridmap`: the view shows the source's ids as the container
    /// does (`cp -a` maps them through the container's user namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idmap: Option<Idmap>,
}

/// A host path's identity at create: the device and inode it led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceId {
    pub dev: u64,
    pub ino: u64,
}

/// Attributes every mount of a view gets, recursively: a view never
/// executes, and a device node or set-id file in the container gives the
/// caller nothing (opening a device node through the view fails).
pub const VIEW_ATTRS: u64 = attr::NOSUID | attr::NODEV | attr::NOEXEC;

impl ViewPlan {
    /// The view of a container whose root filesystem `plan` builds: the
    /// rootfs and the config's bind mounts with their planned sources,
    /// options and idmaps. Only bind mounts are part of a view: new
    /// filesystem instances (tmpfs, proc...) exist only in the container,
    /// and mounts rootcell adds itself (cgroups, rootless device binds) are
    /// not volumes. A bind onto `/` is left out (the rootfs is the root).
    /// Sources are not identified yet (`source::identify` does that, at
    /// create), nor the mappings of a user namespace joined by path
    /// (`joined_user_namespace`).
    pub fn from_plan(plan: &Plan) -> ViewPlan {
        let mut view = ViewPlan::from_rootfs(&plan.rootfs);
        let ns = &plan.namespaces;
        view.ids = ContainerIds {
            user_namespace: ns.has(Namespace::User),
            uid_mappings: ns.uid_mappings.clone(),
            gid_mappings: ns.gid_mappings.clone(),
            user: (plan.process.uid, plan.process.gid),
        };
        if view.mounts.iter().any(|m| m.idmap.is_some()) {
            view.create_as = match (host_id(&ns.uid_mappings, 0), host_id(&ns.gid_mappings, 0)) {
                (Some(uid), Some(gid)) if (uid, gid) != (0, 0) => Some((uid, gid)),
                _ => None,
            };
        }
        view
    }

    fn from_rootfs(plan: &RootfsPlan) -> ViewPlan {
        let mut mounts = Vec::new();
        // Where the container has a filesystem of its own (proc, sysfs, a
        // tmpfs), which a view does not make: a bind below one (the cgroup
        // layout's under `/sys/fs/cgroup`, a file on a tmpfs) has no place
        // in the view, and making its mountpoint would write into the
        // image's directory there.
        let mut fresh: Vec<&Path> = Vec::new();
        for step in &plan.setup {
            let Step::Mount(m) = step else { continue };
            if let MountKind::Fresh { .. } = m.kind {
                fresh.push(&m.destination);
                continue;
            }
            if fresh
                .iter()
                .any(|f| m.destination != *f && m.destination.starts_with(f))
            {
                continue;
            }
            let (
                MountKind::Bind {
                    source,
                    recursive,
                    idmap,
                },
                Some(config_index),
            ) = (&m.kind, m.config_index)
            else {
                continue;
            };
            if m.destination == Path::new("/") {
                continue;
            }
            mounts.push(ViewMount {
                config_index,
                source: source.clone(),
                source_id: None,
                destination: m.destination.clone(),
                recursive: *recursive,
                read_only: (m.attrs.set | m.recursive_attrs.set) & attr::RDONLY != 0,
                idmap: idmap.clone(),
            });
        }
        let root_readonly = plan
            .finish
            .iter()
            .any(|s| matches!(s, Step::RemountReadOnly { path } if path == Path::new("/")));
        ViewPlan {
            rootfs: plan.rootfs.clone(),
            rootfs_id: None,
            root_readonly,
            mounts,
            create_as: None,
            ids: ContainerIds::default(),
        }
    }
}

/// The host id of container id `id` under user namespace `maps`.
fn host_id(maps: &[IdMapping], id: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        let off = id.checked_sub(m.container_id)?;
        (off < m.size).then(|| m.host_id.checked_add(off)).flatten()
    })
}

/// docker's `container.PathStat` (`X-Docker-Container-Path-Stat`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    /// Last element of the cleaned absolute path (`/` for the root).
    pub name: String,
    /// `lstat` size.
    pub size: i64,
    /// Go's `os.FileMode` of the `lstat`: permission bits plus type bits.
    pub mode: u32,
    /// RFC 3339 with nanoseconds, UTC (Go's `time.Time` JSON).
    pub mtime: String,
    /// For a symlink: the path every symlink on the way resolves to,
    /// inside the container (`FollowSymlinkInScope`); else empty.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Go's `os.FileMode` bits (`io/fs`).
pub mod go_mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
}

/// `st_mode` as Go's `os.FileMode` (what `os.Lstat(...).Mode()` gives).
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut mode = st_mode & 0o777;
    mode |= match st_mode & libc::S_IFMT {
        libc::S_IFBLK => go_mode::DEVICE,
        libc::S_IFCHR => go_mode::DEVICE | go_mode::CHAR_DEVICE,
        libc::S_IFDIR => go_mode::DIR,
        libc::S_IFIFO => go_mode::NAMED_PIPE,
        libc::S_IFLNK => go_mode::SYMLINK,
        libc::S_IFSOCK => go_mode::SOCKET,
        _ => 0,
    };
    if st_mode & libc::S_ISUID != 0 {
        mode |= go_mode::SETUID;
    }
    if st_mode & libc::S_ISGID != 0 {
        mode |= go_mode::SETGID;
    }
    if st_mode & libc::S_ISVTX != 0 {
        mode |= go_mode::STICKY;
    }
    mode
}

/// Go's `FileMode.String()`: `drwxr-xr-x`, `Lrwxrwxrwx`, `-rw-r--r--`.
pub fn go_mode_string(mode: u32) -> String {
    const LETTERS: &[u8] = b"dalTLDpSugct?";
    let mut out = String::new();
    for (i, c) in LETTERS.iter().enumerate() {
        if mode & (1 << (31 - i)) != 0 {
            out.push(*c as char);
        }
    }
    if out.is_empty() {
        out.push('-');
    }
    for (i, c) in b"rwxrwxrwx".iter().enumerate() {
        out.push(if mode & (1 << (8 - i)) != 0 {
            *c as char
        } else {
            '-'
        });
    }
    out
}

/// Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction dropped,
/// no fraction for a whole second.
pub fn rfc3339_nano(secs: i64, nanos: u32) -> String {
    let full = crate::state::time::format_unix(secs, nanos);
    // `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`
    let Some((head, frac)) = full.trim_end_matches('Z').split_once('.') else {
        return full;
    };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{head}Z")
    } else {
        format!("{head}.{frac}Z")
    }
}

/// The name docker reports: the last element of the cleaned absolute path.
pub fn stat_name(path: &Path) -> String {
    let abs = scoped_clean(path);
    match abs.file_name() {
        Some(name) => name.to_string_lossy().into_owned(),
        None => "/".to_string(),
    }
}

/// `path` made absolute and cleaned lexically, `..` stopping at `/`
/// (Go's `filepath.Join("/", path)`).
pub fn scoped_clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The most symlinks followed, as moby's `FollowSymlinkInScope`.
const MAX_LINKS: usize = 255;

/// `FollowSymlinkInScope`: resolves every symlink of `path` inside a root,
/// `..` and absolute targets staying in it. `readlink(p)` is called with
/// an absolute path whose every ancestor is already resolved (no symlink
/// on the way) and returns its target when `p` is a symlink, None when it
/// is not or does not exist (the rest is then joined lexically, so a
/// dangling link resolves as far as it can).
pub fn follow_in_scope(
    path: &Path,
    mut readlink: impl FnMut(&Path) -> io::Result<Option<PathBuf>>,
) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::from("/");
    let mut todo: VecDeque<PathBuf> = components(path).into();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        if part.as_os_str() == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        match readlink(&candidate)? {
            None => resolved = candidate,
            Some(target) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                for c in components(&target).into_iter().rev() {
                    todo.push_front(c);
                }
            }
        }
    }
    Ok(resolved)
}

/// Normal components and `..` of `path`, in order.
fn components(path: &Path) -> Vec<PathBuf> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use crate::plan::build::tests::{bundle, hybrid};
    use crate::plan::build::{build, PlanOptions};

    fn view_of(edit: impl FnOnce(&mut serde_json::Value)) -> ViewPlan {
        let b = bundle(edit);
        let plan = build(&b, &hybrid(), PlanOptions::default()).unwrap();
        ViewPlan::from_plan(&plan)
    }

    #[test]
    fn binds_inside_a_filesystem_of_the_container_have_no_place_in_the_view() {
        // runc spec's cgroup mount without a cgroup namespace on a v1 host:
        // a tmpfs at /sys/fs/cgroup with a bind per hierarchy below it; and
        // a bind onto a file of a tmpfs. Neither exists in the image.
        let plan = view_of(|v| {
            v["linux"]["namespaces"] =
                serde_json::json!([{"type": "mount"}, {"type": "pid"}, {"type": "uts"}]);
            v["mounts"] = serde_json::json!([
                {"destination": "/sys", "type": "sysfs", "source": "sysfs"},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]},
                {"destination": "/run", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/run/secret", "type": "bind", "source": "/srv/secret", "options": ["bind"]},
                {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["bind"]}
            ]);
        });
        let dests: Vec<_> = plan.mounts.iter().map(|m| m.destination.clone()).collect();
        assert_eq!(dests, [PathBuf::from("/data")]);
    }

    #[test]
    fn binds_become_view_mounts_and_filesystems_do_not() {
        let plan = view_of(|v| {
            v["root"]["readonly"] = true.into();
            v["mounts"] = serde_json::json!([
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data/", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/cache/../rw", "source": "vol", "options": ["bind", "rw"]},
                {"destination": "/deep", "type": "none", "source": "/srv/deep", "options": ["rbind", "rro"]},
                {"destination": "/ids", "type": "bind", "source": "/srv/ids",
                 "options": ["bind", "idmap"],
                 "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                 "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]},
                {"destination": "/", "type": "bind", "source": "/elsewhere", "options": ["bind"]}
            ]);
        });
        assert!(plan.root_readonly);
        assert_eq!(plan.rootfs, Path::new("/bundles/b/rootfs"));
        assert!(plan.rootfs_id.is_none());
        let summary: Vec<_> = plan
            .mounts
            .iter()
            .map(|m| {
                (
                    m.config_index,
                    m.source.to_str().unwrap(),
                    m.destination.to_str().unwrap(),
                    m.recursive,
                    m.read_only,
                    m.idmap.is_some(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, "/srv/data", "/data", true, true, false),
                (3, "/bundles/b/vol", "/rw", false, false, false),
                (4, "/srv/deep", "/deep", true, true, false),
                (5, "/srv/ids", "/ids", false, false, true),
            ]
        );
        let idmap = plan.mounts[3].idmap.as_ref().unwrap();
        assert_eq!(idmap.uid_mappings[0].host_id, 100000);
        assert!(plan.mounts.iter().all(|m| m.source_id.is_none()));
        // No user namespace: the container's root is the host's.
        assert_eq!(plan.create_as, None);
    }

    #[test]
    fn an_idmapped_volume_of_a_user_namespace_creates_as_its_root() {
        let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        let with = |idmap: bool| {
            let map = map.clone();
            view_of(move |v| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"type": "user"}));
                v["linux"]["uidMappings"] = map.clone();
                v["linux"]["gidMappings"] = map.clone();
                let mut m = serde_json::json!({"destination": "/v", "type": "bind",
                    "source": "/srv/v", "options": ["bind"]});
                if idmap {
                    m["options"] = serde_json::json!(["bind", "idmap"]);
                }
                v["mounts"] = serde_json::json!([m]);
            })
        };
        assert_eq!(with(true).create_as, Some((100000, 100000)));
        let plain = with(false);
        assert!(plain.ids.user_namespace && !plain.ids.joined_user_namespace());
        assert_eq!(plain.ids.uid_mappings[0].host_id, 100000);
        assert_eq!(plain.ids.user, (0, 0));
        assert_eq!(with(false).create_as, None);
        assert_eq!(host_id(&[], 0), None);
    }

    #[test]
    fn a_user_namespace_joined_by_path_waits_for_its_maps() {
        let plan = view_of(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user", "path": "/proc/42/ns/user"}));
            v["process"]["user"] = serde_json::json!({"uid": 7, "gid": 8});
        });
        assert!(plan.ids.joined_user_namespace());
        assert_eq!(plan.ids.user, (7, 8));
        assert!(!view_of(|_| {}).ids.user_namespace);
    }

    #[test]
    fn mounts_rootcell_adds_are_not_volumes() {
        // The default config: proc, dev, devpts, shm, mqueue, sysfs,
        // cgroup (bound from the host's hierarchies by rootcell).
        let plan = view_of(|_| {});
        // `runc spec`'s root is read-only.
        assert!(plan.root_readonly);
        assert!(plan.mounts.is_empty(), "{:?}", plan.mounts);
    }

    #[test]
    fn a_view_plan_survives_the_state_file() {
        let mut plan = view_of(|v| {
            v["mounts"] = serde_json::json!([
                {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]}
            ]);
        });
        plan.mounts[0].source_id = Some(SourceId { dev: 2049, ino: 42 });
        let json = serde_json::to_string(&plan).unwrap();
        let back: ViewPlan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn modes_are_go_file_modes() {
        assert_eq!(go_file_mode(libc::S_IFREG | 0o644), 0o644);
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), go_mode::DIR | 0o755);
        assert_eq!(
            go_file_mode(libc::S_IFLNK | 0o777),
            go_mode::SYMLINK | 0o777
        );
        assert_eq!(
            go_file_mode(libc::S_IFCHR | 0o666),
            go_mode::DEVICE | go_mode::CHAR_DEVICE | 0o666
        );
        assert_eq!(
            go_file_mode(libc::S_IFDIR | libc::S_ISVTX | 0o777),
            go_mode::DIR | go_mode::STICKY | 0o777
        );
        assert_eq!(
            go_file_mode(libc::S_IFREG | libc::S_ISUID | 0o755),
            go_mode::SETUID | 0o755
        );
        // What docker prints for a directory: 2147484141.
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), 2147484141);
        assert_eq!(go_mode_string(go_mode::DIR | 0o755), "drwxr-xr-x");
        assert_eq!(go_mode_string(go_mode::SYMLINK | 0o777), "Lrwxrwxrwx");
        assert_eq!(go_mode_string(0o640), "-rw-r-----");
        assert_eq!(
            go_mode_string(go_mode::DEVICE | go_mode::CHAR_DEVICE | 0o666),
            "Dcrw-rw-rw-"
        );
    }

    #[test]
    fn times_are_rfc3339_nano() {
        assert_eq!(rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nano(86_400, 500_000_000), "1970-01-02T00:00:00.5Z");
        assert_eq!(
            rfc3339_nano(1, 123_456_789),
            "1970-01-01T00:00:01.123456789Z"
        );
    }

    #[test]
    fn names_are_the_last_cleaned_element() {
        assert_eq!(stat_name(Path::new("/etc/passwd")), "passwd");
        assert_eq!(stat_name(Path::new("etc/")), "etc");
        assert_eq!(stat_name(Path::new("/")), "/");
        assert_eq!(stat_name(Path::new("/../..")), "/");
        assert_eq!(stat_name(Path::new("/a/b/..")), "a");
    }

    /// A fake filesystem: the symlinks, everything else a plain entry or
    /// missing (both read as "not a link").
    fn links(pairs: &[(&str, &str)]) -> HashMap<PathBuf, PathBuf> {
        pairs
            .iter()
            .map(|(l, t)| (PathBuf::from(l), PathBuf::from(t)))
            .collect()
    }

    fn follow(map: &HashMap<PathBuf, PathBuf>, path: &str) -> io::Result<PathBuf> {
        follow_in_scope(Path::new(path), |p| Ok(map.get(p).cloned()))
    }

    #[test]
    fn symlinks_resolve_inside_the_scope() {
        let map = links(&[
            ("/abs", "/etc/passwd"),
            ("/up", "../../../../etc/shadow"),
            ("/d/rel", "../etc/./x"),
            ("/hostroot", "/"),
            ("/chain", "/d/rel"),
            ("/dir", "/etc"),
            ("/loop", "/loop"),
        ]);
        let cases = [
            ("/abs", "/etc/passwd"),
            ("/up", "/etc/shadow"),
            ("/d/rel", "/etc/x"),
            ("/hostroot", "/"),
            ("/hostroot/etc/passwd", "/etc/passwd"),
            ("/chain", "/etc/x"),
            ("/dir/../dir/passwd", "/etc/passwd"),
            ("/missing/../../x/y", "/x/y"),
            ("plain/file", "/plain/file"),
        ];
        for (path, want) in cases {
            assert_eq!(follow(&map, path).unwrap(), Path::new(want), "{path}");
        }
        let err = follow(&map, "/loop").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn lookup_errors_are_returned() {
        let err = follow_in_scope(Path::new("/a/b"), |_| {
            Err(io::Error::from_raw_os_error(libc::EACCES))
        })
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    }
}
