//! The mount steps the planner emits: a directory's mode as a mount,
//! the fresh kernel filesystems, `/dev`, the generated `/etc` files, the
//! cgroup mounts of `--cgroup-access`, and where the staging is attached.

use super::*;

pub(super) fn relative(path: &Path) -> PathBuf {
    path.strip_prefix("/").unwrap_or(path).to_path_buf()
}

pub(super) fn mount_for(path: &Path, mode: DirMode, place: &Place, recursive: bool) -> MountStep {
    let keep = AttrChange {
        set: place.attrs,
        clear: 0,
    };
    let (kind, attrs, recursive_attrs) = match mode {
        DirMode::Overlay => (
            MountKind::Overlay {
                lower: path.to_path_buf(),
                layer: relative(path),
                driver: OverlayDriver::Kernel,
            },
            keep,
            AttrChange::default(),
        ),
        DirMode::Hidden => (
            MountKind::Staging {
                path: Path::new("upper").join(relative(path)),
            },
            AttrChange::default(),
            AttrChange::default(),
        ),
        DirMode::ReadOnly => (
            MountKind::Bind {
                source: path.to_path_buf(),
                recursive,
                idmap: None,
            },
            keep,
            AttrChange {
                set: attr::RDONLY,
                clear: 0,
            },
        ),
        DirMode::FullAccess => (
            MountKind::Bind {
                source: path.to_path_buf(),
                recursive,
                idmap: None,
            },
            keep,
            AttrChange::default(),
        ),
    };
    MountStep {
        destination: path.to_path_buf(),
        kind,
        attrs,
        recursive_attrs,
        propagation: None,
        config_index: None,
    }
}

pub(super) fn fresh(destination: &str, fstype: &str, options: &[(&str, &str)], attrs: u64) -> Step {
    Step::Mount(MountStep {
        destination: PathBuf::from(destination),
        kind: MountKind::Fresh {
            fstype: fstype.to_string(),
            source: fstype.to_string(),
            // A key without a value (`newinstance`) is a flag: fsconfig
            // refuses it as an empty string.
            options: options
                .iter()
                .map(|(k, v)| match v.is_empty() {
                    true => FsOption::Flag(k.to_string()),
                    false => FsOption::Value(k.to_string(), v.to_string()),
                })
                .collect(),
            copy_up: false,
            host_fallback: None,
        },
        attrs: AttrChange {
            set: attrs,
            clear: 0,
        },
        recursive_attrs: AttrChange::default(),
        propagation: None,
        config_index: None,
    })
}

pub(super) fn staging_bind(destination: &Path, staging_path: PathBuf, read_only: bool) -> Step {
    Step::Mount(MountStep {
        destination: destination.to_path_buf(),
        kind: MountKind::Staging { path: staging_path },
        attrs: AttrChange {
            set: attr::NOSUID | attr::NODEV | if read_only { attr::RDONLY } else { 0 },
            clear: 0,
        },
        recursive_attrs: AttrChange::default(),
        propagation: None,
        config_index: None,
    })
}

/// `/proc`, `/dev` and the shared-memory directories.
pub(super) fn special_filesystems(
    setup: &mut Vec<Step>,
    cfg: &SandboxConfig,
    host: &HostFacts,
    rules: &BTreeMap<PathBuf, DirMode>,
    dev_from_host: bool,
) {
    use attr::{NODEV, NOEXEC, NOSUID};
    setup.push(fresh("/proc", "proc", &[], NOSUID | NODEV | NOEXEC));
    if !dev_from_host {
        setup.push(fresh(
            "/dev",
            "tmpfs",
            &[("mode", "755"), ("size", "65536k")],
            NOSUID | NOEXEC,
        ));
        setup.extend(
            crate::plan::build::DEFAULT_DEVICES
                .iter()
                .map(|&(path, major, minor)| {
                    Step::Device(crate::plan::build::default_device(
                        path,
                        major,
                        minor,
                        host.rootless,
                    ))
                }),
        );
        setup.push(fresh(
            "/dev/pts",
            "devpts",
            &[("newinstance", ""), ("ptmxmode", "0666"), ("mode", "0620")],
            NOSUID | NOEXEC,
        ));
        setup.extend(crate::plan::build::dev_symlink_steps(host.has_kcore));
    }
    // Writable RAM disks for POSIX shared memory (Python's multiprocessing
    // checks for one): in the staging, so that their pages are charged to
    // the command, unless a mode was given for them.
    for shm in ["/dev/shm", "/run/shm"] {
        let exists_inside = match shm {
            "/dev/shm" => !dev_from_host || host.dirs.contains(Path::new(shm)),
            _ => {
                host.dirs.contains(Path::new(shm))
                    && mode_of(rules, Path::new(shm)).0 != DirMode::Hidden
            }
        };
        if rules.contains_key(Path::new(shm)) || !exists_inside {
            continue;
        }
        if cfg.use_tmpfs {
            setup.push(staging_bind(
                Path::new(shm),
                Path::new("upper").join(relative(Path::new(shm))),
                false,
            ));
        } else {
            setup.push(fresh(shm, "tmpfs", &[("mode", "1777")], NOSUID | NODEV));
        }
    }
}

/// Generated `/etc/passwd`, `/etc/group`, `/etc/hosts`,
/// `/etc/nsswitch.conf`, `/etc/hostname`, bound read-only over the host's
/// (only where the host has them).
pub(super) fn system_files(
    setup: &mut Vec<Step>,
    host: &HostFacts,
    uid: u32,
    gid: u32,
    user: &str,
    home: &Path,
) {
    let id = Identity {
        uid,
        gid,
        user: user.to_string(),
        group: if gid == 0 {
            "root".to_string()
        } else if gid == host.gid {
            host.group_name.clone()
        } else {
            format!("group{gid}")
        },
        home: home.to_path_buf(),
    };
    for name in SYSTEM_FILES {
        let target = Path::new("/etc").join(name);
        if !host.files.contains(&target) {
            continue;
        }
        let contents = match *name {
            "passwd" => system_config::passwd(&id),
            "group" => system_config::group(&id),
            "hosts" => system_config::hosts(SANDBOX_HOSTNAME),
            "nsswitch.conf" => system_config::nsswitch(),
            _ => system_config::hostname_file(SANDBOX_HOSTNAME),
        };
        setup.push(Step::StagingFile {
            name: PathBuf::from(name),
            contents,
            mode: 0o644,
        });
        setup.push(staging_bind(&target, Path::new("files").join(name), true));
    }
}

/// `--cgroup-access`: every cgroup hierarchy the run has a cgroup in is
/// mounted afresh, writable, over the host's read-only one. Init makes
/// these mounts inside the sandbox's cgroup namespace, which is rooted at
/// the run's delegated cgroup (`cgroups::DELEGATED`): the command sees and
/// manages that subtree only, never the run's limits. Named v1 hierarchies
/// (`name=systemd`) have no run cgroup and stay read-only. Rootless runs
/// have no run cgroup to delegate.
pub(super) fn cgroup_mounts(
    setup: &mut Vec<Step>,
    notes: &mut Vec<String>,
    host: &HostFacts,
    rules: &BTreeMap<PathBuf, DirMode>,
) {
    if host.rootless {
        notes.push(
            "--cgroup-access: an unprivileged run has no cgroup to delegate; the host's \
             cgroups stay read-only"
                .into(),
        );
        return;
    }
    let mut done = Vec::new();
    for m in &host.mounts {
        let named = m.cgroup_options.iter().any(|o| o.starts_with("name="));
        let fresh_mount = match m.fs_type.as_str() {
            "cgroup" if !named && !m.cgroup_options.is_empty() => {
                let options: Vec<(&str, &str)> =
                    m.cgroup_options.iter().map(|o| (o.as_str(), "")).collect();
                fresh_at(&m.path, "cgroup", &options)
            }
            "cgroup2" => fresh_at(&m.path, "cgroup2", &[]),
            _ => continue,
        };
        if mode_of(rules, &m.path).0 == DirMode::Hidden {
            continue;
        }
        setup.push(fresh_mount);
        done.push(m.path.display().to_string());
    }
    if !done.is_empty() {
        notes.push(format!(
            "--cgroup-access: {} mounted afresh and writable, rooted at the run's delegated \
             cgroup",
            done.join(", ")
        ));
    }
}

pub(super) fn fresh_at(path: &Path, fstype: &str, options: &[(&str, &str)]) -> Step {
    use attr::{NODEV, NOEXEC, NOSUID};
    let mut step = fresh("/", fstype, options, NOSUID | NODEV | NOEXEC);
    if let Step::Mount(m) = &mut step {
        m.destination = path.to_path_buf();
    }
    step
}

pub(super) fn tmpfs_options(cfg: &SandboxConfig) -> Vec<FsOption> {
    let mut options = vec![FsOption::Value("mode".into(), "700".into())];
    // BenchExec: the RAM disk may use as much as the memory limit.
    options.push(FsOption::Value(
        "size".into(),
        cfg.limits
            .memory
            .map_or_else(|| "100%".to_string(), |m| m.to_string()),
    ));
    if let Some(nodes) = &cfg.limits.memory_nodes {
        let list: Vec<String> = nodes.iter().map(u32::to_string).collect();
        options.push(FsOption::Value(
            "mpol".into(),
            format!("bind:{}", list.join(",")),
        ));
    }
    options
}

/// The first candidate that no step reads from while it is covered: not a
/// source, not above a source, not inside a recursive source.
pub(super) fn staging_mountpoint(host: &HostFacts, setup: &[Step]) -> Result<PathBuf> {
    let sources: Vec<(&Path, bool)> = setup
        .iter()
        .filter_map(|step| match step {
            Step::Mount(MountStep {
                kind: MountKind::Bind {
                    source, recursive, ..
                },
                ..
            }) => Some((source.as_path(), *recursive)),
            Step::Mount(MountStep {
                kind: MountKind::Overlay { lower, .. },
                ..
            }) => Some((lower.as_path(), false)),
            // Rootless: device nodes are bound from the host's /dev.
            Step::Device(DeviceNode {
                path,
                bind_from_host: true,
                ..
            }) => Some((path.as_path(), false)),
            _ => None,
        })
        .collect();
    STAGING_MOUNTPOINTS
        .iter()
        .map(Path::new)
        .find(|candidate| {
            host.dirs.contains(*candidate)
                && !sources.iter().any(|(source, recursive)| {
                    // Covered by the staging, or the staging inside its tree.
                    source.starts_with(candidate) || (*recursive && candidate.starts_with(source))
                })
        })
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            Error::Other(format!(
                "no directory to assemble the sandbox in: each of {} is missing or used by a \
                 directory mode",
                STAGING_MOUNTPOINTS.join(", ")
            ))
        })
}
