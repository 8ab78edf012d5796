//! Turns a validated bundle into a [`Plan`].

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Spec};

use super::options::{self, attr, AttrChange, Propagation, PropagationChange};
use super::process_plan::{process_plan, with_listen_fds};
use super::*;
use crate::error::{Error, Result};
use crate::spec::Bundle;

/// Choices made on the command line rather than in the config.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// `--no-pivot`: move the rootfs onto `/` instead of `pivot_root`.
    pub no_pivot: bool,
    /// Sockets from systemd socket activation passed to the container.
    pub listen_fds: u32,
    /// What releases init: `start` through the exec fifo (`create`, the
    /// default), or for `run` the sync socket or nothing.
    pub start: StartSignal,
    /// `--isolation`: overrides the config's `org.rootcell.isolation`.
    pub isolation: Option<Isolation>,
    /// How the runtime's binary is kept out of the container's reach, as
    /// decided before the config's effects began (None: not decided, a
    /// library caller's own binary).
    pub binary: Option<super::binary::BinaryPlan>,
}

pub fn build(bundle: &Bundle, host: &HostFacts, opts: PlanOptions) -> Result<Plan> {
    let spec = &bundle.spec;
    let isolation = super::isolation::resolve(spec, opts.isolation)?;
    let mut namespaces = namespaces(spec)?;
    let mut diagnostics = Vec::new();
    let rootless_chroot = host
        .caller
        .as_ref()
        .filter(|_| isolation == Isolation::Chroot);
    if isolation == Isolation::Chroot {
        super::isolation::chroot_namespaces(spec, &mut namespaces)?;
        if let Some(caller) = rootless_chroot {
            let user = spec.process().as_ref().map(|p| p.user());
            let ids = user.map_or((0, 0), |u| (u.uid(), u.gid()));
            super::isolation::chroot_user_namespace(caller, &mut namespaces, ids, &mut diagnostics);
        } else {
            crate::spec::user_namespace_mappings(spec)?;
        }
    } else {
        crate::spec::validate_namespace_needs(spec)?;
        super::isolation::full_isolation_needs_sys_admin(host.caller.as_ref(), &namespaces)?;
    }
    if isolation == Isolation::Chroot {
        super::isolation::chroot_shared_if_refused(spec, &mut namespaces, host.nested_user_ns);
    }
    let mut rootfs = rootfs_plan(
        bundle,
        host,
        &namespaces,
        PlanOptions {
            isolation: Some(isolation),
            ..opts
        },
    )?;
    let linux = spec.linux().as_ref();
    if isolation == Isolation::Chroot {
        super::isolation::chroot_rootfs(&mut rootfs);
    }
    if rootfs.switch == RootSwitch::MoveRoot {
        rootfs.hide_host_mounts = host.proc_sys_mounts.clone();
    }
    if isolation == Isolation::Chroot {
        super::isolation::chroot_devpts_gid(&namespaces, &mut rootfs, &mut diagnostics);
        let rules = linux
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.devices().as_deref());
        if let Some(rules) = rules {
            let nodes = linux
                .and_then(|l| l.devices().as_deref())
                .unwrap_or_default();
            let planned = super::resources::device_rules(rules, nodes)?;
            super::isolation::chroot_device_nodes(
                &mut rootfs,
                planned.into_iter().map(|(_, r)| r).collect(),
                &mut diagnostics,
            );
        }
    }
    let resources = super::resources::resources_plan(
        linux.and_then(|l| l.resources().as_ref()),
        linux
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default(),
        host.cgroup_version,
    )?;
    let mut resources = resources;
    if let (Some(res), Isolation::Chroot) = (resources.as_mut(), isolation) {
        let ignore = spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(super::isolation::IGNORE_RESOURCES));
        res.refuse_unwritable = ignore.map(String::as_str) != Some("true");
        res.chroot = true;
        // Unprivileged: the devices cgroup is known to be out of reach.
        if rootless_chroot.is_some() {
            super::isolation::chroot_device_rules(
                linux
                    .and_then(|l| l.resources().as_ref())
                    .and_then(|r| r.devices().as_deref())
                    .unwrap_or_default(),
                res,
                &mut diagnostics,
            );
        }
    }
    let memory_policy = linux
        .and_then(|l| l.memory_policy().as_ref())
        .map(super::memory_policy::memory_policy)
        .transpose()?;
    let spawn = super::spawn::InitSpawn::decide(host, isolation, &namespaces);
    let mut plan = Plan {
        isolation,
        runtime_binary: opts.binary,
        spawn,
        cgroup_entry: super::cgroup_entry::CgroupEntry::decide(host, isolation, &namespaces, spawn),
        create_hooks_sync: spec.hooks().as_ref().is_some_and(|h| {
            [
                h.prestart(),
                h.create_runtime(),
                h.create_container(),
                h.start_container(),
            ]
            .iter()
            .any(|hooks| hooks.as_ref().is_some_and(|v| !v.is_empty()))
        }),
        init_procfs: InitProcfs::decide(host, &namespaces),
        resources,
        memory_policy,
        hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
        domainname: spec.domainname().clone().filter(|h| !h.is_empty()),
        process: {
            let mut p = with_listen_fds(
                process_plan(
                    spec,
                    spec.process()
                        .as_ref()
                        .ok_or_else(|| Error::spec("process", "is required"))?,
                    host,
                )?,
                opts.listen_fds,
            );
            if let Some(caller) = rootless_chroot {
                super::isolation::chroot_drop_groups(caller, &namespaces, &mut p, &mut diagnostics);
            }
            p.final_steps = final_steps(&p, ProcessRole::Init { start: opts.start });
            p
        },
        diagnostics,
        namespaces,
        rootfs,
    };
    if isolation == Isolation::Chroot {
        plan.rootfs.lock_mounts =
            super::isolation::chroot_lock_mounts(plan.process.capabilities.as_ref());
    }
    Ok(plan)
}

fn namespaces(spec: &Spec) -> Result<Namespaces> {
    let mut out = Namespaces::default();
    let Some(linux) = spec.linux() else {
        return Ok(out);
    };
    for ns in linux.namespaces().iter().flatten() {
        let kind = match ns.typ() {
            LinuxNamespaceType::User => Namespace::User,
            LinuxNamespaceType::Mount => Namespace::Mount,
            LinuxNamespaceType::Pid => Namespace::Pid,
            LinuxNamespaceType::Network => Namespace::Network,
            LinuxNamespaceType::Ipc => Namespace::Ipc,
            LinuxNamespaceType::Uts => Namespace::Uts,
            LinuxNamespaceType::Cgroup => Namespace::Cgroup,
            LinuxNamespaceType::Time => Namespace::Time,
        };
        match ns.path() {
            Some(path) => out.join.push((kind, path.clone())),
            None => out.create.push(kind),
        }
    }
    // Join the user namespace first: it decides the privileges for joining
    // the others.
    out.join.sort_by_key(|(ns, _)| *ns != Namespace::User);
    let map = |list: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        list.iter()
            .flatten()
            .map(|m| IdMapping {
                container_id: m.container_id(),
                host_id: m.host_id(),
                size: m.size(),
            })
            .collect()
    };
    out.uid_mappings = map(linux.uid_mappings());
    out.gid_mappings = map(linux.gid_mappings());
    if let Some(offsets) = linux.time_offsets() {
        if !out.creates(Namespace::Time) {
            return Err(Error::spec(
                "linux.timeOffsets",
                "time offsets need a new time namespace",
            ));
        }
        let mut offsets: Vec<_> = offsets
            .iter()
            .map(|(clock, o)| {
                (
                    clock.clone(),
                    o.secs().unwrap_or(0),
                    o.nanosecs().unwrap_or(0),
                )
            })
            .collect();
        offsets.sort();
        for (clock, _, _) in &offsets {
            if clock != "monotonic" && clock != "boottime" {
                return Err(Error::spec(
                    format!("linux.timeOffsets.{clock}"),
                    "only \"monotonic\" and \"boottime\" can be offset",
                ));
            }
        }
        out.time_offsets = offsets;
    }
    Ok(out)
}

fn rootfs_plan(
    bundle: &Bundle,
    host: &HostFacts,
    ns: &Namespaces,
    opts: PlanOptions,
) -> Result<RootfsPlan> {
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref();
    // None: rslave, and the self-bind of the rootfs is a slave already.
    let requested = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => None,
        Some(p) => {
            let parsed = options::parse(&[p.to_string()]);
            Some(parsed.propagation.ok_or_else(|| {
                Error::spec(
                    "linux.rootfsPropagation",
                    format!("{p:?} is not a propagation type"),
                )
            })?)
        }
    };
    // An unbindable `/` could not be bound onto itself: the namespace gets
    // private (as unbindable is, and nothing flows to the host), and the
    // new root gets unbindable at the end.
    let root_propagation = match requested {
        None => PropagationChange {
            kind: Propagation::Slave,
            recursive: true,
        },
        Some(PropagationChange {
            kind: Propagation::Unbindable,
            recursive,
        }) => PropagationChange {
            kind: Propagation::Private,
            recursive,
        },
        Some(change) => change,
    };
    let switch = if !ns.has(Namespace::Mount) {
        RootSwitch::Chroot
    } else if opts.no_pivot {
        RootSwitch::MoveRoot
    } else {
        RootSwitch::PivotRoot
    };

    let mut setup = Vec::new();
    let mut finish = vec![Step::ReopenDevNull];
    // Read-only remounts go last (but for the root), so that masks and
    // read-only paths can still be mounted below them.
    let mut remounts = Vec::new();
    let mut dev_is_bound = false;
    let userns = ns.has(Namespace::User) || host.rootless;
    let mount_label = linux
        .and_then(|l| l.mount_label().clone())
        .filter(|label| host.selinux && !label.is_empty());

    for (i, mount) in spec.mounts().iter().flatten().enumerate() {
        let dest = clean(mount.destination());
        let mount_opts = options::parse(mount.options().as_deref().unwrap_or_default());
        let fstype = mount.typ().as_deref().unwrap_or("");
        let is_bind = mount_opts.bind || fstype == "bind";
        if is_bind && dest == Path::new("/dev") {
            dev_is_bound = true;
        }
        if fstype == "cgroup" || fstype == "cgroup2" {
            let chroot = opts.isolation == Some(Isolation::Chroot);
            cgroup_mount(
                &mut setup,
                &mut remounts,
                i,
                &dest,
                &mount_opts,
                host,
                ns,
                chroot,
            );
            continue;
        }
        let idmap = idmap(i, mount, &mount_opts, ns)?;
        if idmap.is_some() && !is_bind {
            return Err(Error::spec(
                format!("mounts[{i}].options"),
                "idmapped mounts are supported on bind mounts only",
            ));
        }
        let kind = if is_bind {
            let source = mount.source().as_ref().ok_or_else(|| {
                Error::spec(format!("mounts[{i}].source"), "a bind needs a source")
            })?;
            MountKind::Bind {
                source: bundle.dir.join(source),
                recursive: mount_opts.recursive_bind,
                idmap,
            }
        } else {
            MountKind::Fresh {
                fstype: fstype.to_string(),
                source: mount
                    .source()
                    .as_ref()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| fstype.to_string()),
                options: labelled(
                    if fstype == "overlay" {
                        overlay_layers_in_bundle(&mount_opts.data, &bundle.dir)
                    } else {
                        mount_opts.data.clone()
                    },
                    fstype,
                    mount_label.as_deref(),
                ),
                copy_up: mount_opts.tmpcopyup,
                host_fallback: None,
            }
        };
        if mount_opts.tmpcopyup && fstype != "tmpfs" {
            return Err(Error::spec(
                format!("mounts[{i}].options"),
                "tmpcopyup works only with type tmpfs",
            ));
        }
        let mut attrs = mount_opts.attrs;
        // A read-only /dev or copy-up tmpfs is filled first, then made
        // read-only, as runc does.
        let fill_first = !is_bind && (dest == Path::new("/dev") || mount_opts.tmpcopyup);
        if fill_first && attrs.set & attr::RDONLY != 0 {
            attrs.set &= !attr::RDONLY;
            remounts.push(Step::RemountReadOnly { path: dest.clone() });
        }
        setup.push(Step::Mount(MountStep {
            destination: dest,
            kind,
            attrs,
            recursive_attrs: mount_opts.recursive_attrs,
            propagation: mount_opts.propagation,
            config_index: Some(i),
        }));
    }

    if !dev_is_bound && switch != RootSwitch::Chroot {
        devices(&mut setup, spec, userns)?;
        dev_symlinks(&mut setup, host);
    }

    // The working directory is created if missing, as runc does, before the
    // root may become read-only.
    if let Some(cwd) = spec.process().as_ref().map(|p| clean(p.cwd())) {
        if cwd != Path::new("/") {
            setup.push(Step::Mkdir { path: cwd });
        }
    }

    if let Some(linux) = linux {
        let mut sysctls: Vec<_> = linux.sysctl().iter().flatten().collect();
        sysctls.sort();
        for (key, value) in sysctls {
            finish.push(Step::Sysctl {
                key: key.clone(),
                value: value.clone(),
            });
        }
        for path in linux.readonly_paths().iter().flatten() {
            finish.push(Step::ReadOnly {
                path: clean(Path::new(path)),
            });
        }
        for path in linux.masked_paths().iter().flatten() {
            finish.push(Step::Mask {
                path: clean(Path::new(path)),
            });
        }
    }
    finish.extend(remounts);
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        finish.push(Step::RemountReadOnly {
            path: PathBuf::from("/"),
        });
    }
    // Last: masks and read-only paths bind from the root, which an
    // unbindable root would refuse. Without a mount namespace there is no
    // root mount of our own to change.
    if let (Some(change), false) = (requested, switch == RootSwitch::Chroot) {
        finish.push(Step::RootPropagation(change));
    }

    Ok(RootfsPlan {
        rootfs: bundle.rootfs(),
        source: super::RootSource::Bundle,
        root_propagation,
        setup,
        switch,
        finish,
        mount_label,
        verify_mount_flags: false,
        device_rules: None,
        hide_host_mounts: None,
        lock_mounts: false,
    })
}

/// The id mapping of an `idmap`/`ridmap` mount: the mount's own
/// `uidMappings`/`gidMappings` when given (they imply `idmap`), else the
/// container's user namespace mappings.
fn idmap(
    index: usize,
    mount: &oci_spec::runtime::Mount,
    opts: &options::MountOptions,
    ns: &Namespaces,
) -> Result<Option<Idmap>> {
    let own = (mount.uid_mappings(), mount.gid_mappings());
    if opts.idmap.is_none() && own.0.is_none() && own.1.is_none() {
        return Ok(None);
    }
    let recursive = opts.idmap.unwrap_or(false);
    let (uid_mappings, gid_mappings) = match own {
        (None, None) => {
            if !ns.creates(Namespace::User) {
                return Err(Error::spec(
                    format!("mounts[{index}].options"),
                    "idmap without uidMappings and gidMappings uses the mappings of the container's new user namespace, and the container creates none",
                ));
            }
            (ns.uid_mappings.clone(), ns.gid_mappings.clone())
        }
        (Some(uids), Some(gids)) => (
            mount_mappings(index, "uidMappings", uids)?,
            mount_mappings(index, "gidMappings", gids)?,
        ),
        (None, Some(_)) | (Some(_), None) => {
            return Err(Error::spec(
                format!("mounts[{index}]"),
                "an idmapped mount needs both uidMappings and gidMappings",
            ))
        }
    };
    Ok(Some(Idmap {
        recursive,
        uid_mappings,
        gid_mappings,
    }))
}

fn mount_mappings(
    index: usize,
    field: &str,
    list: &[oci_spec::runtime::LinuxIdMapping],
) -> Result<Vec<IdMapping>> {
    if list.is_empty() {
        return Err(Error::spec(
            format!("mounts[{index}].{field}"),
            "must not be empty",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            crate::spec::check_id_mapping(&format!("mounts[{index}].{field}[{i}]"), m)?;
            Ok(IdMapping {
                container_id: m.container_id(),
                host_id: m.host_id(),
                size: m.size(),
            })
        })
        .collect()
}

/// Adds the SELinux `context` of `linux.mountLabel` to a new filesystem's
/// data, as runc does for every type but proc, sysfs and cgroup (which
/// cannot be labelled), unless the config gives a context itself.
fn labelled(mut data: Vec<FsOption>, fstype: &str, label: Option<&str>) -> Vec<FsOption> {
    let Some(label) = label else { return data };
    let unlabelled = matches!(fstype, "proc" | "sysfs" | "cgroup" | "cgroup2");
    let has_context = data
        .iter()
        .any(|o| matches!(o, FsOption::Value(k, _) if k == "context"));
    if !unlabelled && !has_context {
        data.push(context_option(label));
    }
    data
}

/// The `context="<label>"` mount option.
pub fn context_option(label: &str) -> FsOption {
    FsOption::Value("context".into(), format!("\"{label}\""))
}

/// Relative overlayfs layer paths are relative to the bundle, as with runc
/// (whose init runs in the bundle directory): they are made absolute here,
/// with the bundle path escaped as overlayfs requires. The user's own
/// escapes in each path are kept.
fn overlay_layers_in_bundle(data: &[FsOption], bundle: &Path) -> Vec<FsOption> {
    let bundle_escaped = options::escape_overlay_path(&bundle.to_string_lossy());
    let absolute = |layer: &str, escaped: bool| {
        if layer.is_empty() || layer.starts_with('/') {
            layer.to_string()
        } else if escaped {
            format!("{bundle_escaped}/{layer}")
        } else {
            bundle.join(layer).to_string_lossy().into_owned()
        }
    };
    data.iter()
        .map(|option| match option {
            FsOption::Value(key, value) => {
                let value = match key.as_str() {
                    "lowerdir" => options::split_overlay_layers(value)
                        .into_iter()
                        .map(|layer| absolute(layer, true))
                        .collect::<Vec<_>>()
                        .join(":"),
                    "upperdir" | "workdir" => absolute(value, true),
                    // The Linux 6.8 per-layer keys take one unescaped path.
                    "lowerdir+" | "datadir+" => absolute(value, false),
                    _ => value.clone(),
                };
                FsOption::Value(key.clone(), value)
            }
            flag => flag.clone(),
        })
        .collect()
}

/// A `cgroup` mount: on cgroup v2 one filesystem; on v1 and hybrid hosts a
/// tmpfs holding one directory per hierarchy, as runc lays it out. Without a
/// cgroup namespace each hierarchy is a bind of the container's own cgroup;
/// with one, a fresh cgroup filesystem (the namespace roots it there).
/// Chroot isolation: where a fresh cgroup filesystem is refused, the
/// container's cgroup directory (as the host sees it) is bound read-only;
/// where the tmpfs of the v1 layout is refused, the host's whole cgroup
/// tree (`/sys/fs/cgroup`) is bound read-only and the layout's other steps
/// are left out.
#[allow(clippy::too_many_arguments)]
fn cgroup_mount(
    setup: &mut Vec<Step>,
    remounts: &mut Vec<Step>,
    index: usize,
    dest: &Path,
    opts: &options::MountOptions,
    host: &HostFacts,
    ns: &Namespaces,
    chroot: bool,
) {
    let fresh = ns.creates(Namespace::Cgroup);
    let source_step = |destination: PathBuf, src: &CgroupMountSource, attrs: AttrChange| {
        let kind = if fresh {
            MountKind::Fresh {
                fstype: src.fstype.clone(),
                source: "cgroup".into(),
                options: src.fs_options.clone(),
                copy_up: false,
                host_fallback: chroot.then(|| HostFallback {
                    source: src.host_dir.clone(),
                    recursive: false,
                    read_only: true,
                }),
            }
        } else {
            MountKind::Bind {
                source: src.host_dir.clone(),
                recursive: false,
                idmap: None,
            }
        };
        Step::Mount(MountStep {
            destination,
            kind,
            attrs,
            recursive_attrs: AttrChange::default(),
            propagation: None,
            config_index: Some(index),
        })
    };
    match host.cgroup_mounts.as_slice() {
        [] => {}
        [only] if only.name.is_empty() => {
            setup.push(source_step(dest.to_path_buf(), only, opts.attrs));
        }
        sources => {
            let mut tmpfs_attrs = opts.attrs;
            tmpfs_attrs.set &= !attr::RDONLY;
            setup.push(Step::Mount(MountStep {
                destination: dest.to_path_buf(),
                kind: MountKind::Fresh {
                    fstype: "tmpfs".into(),
                    source: "tmpfs".into(),
                    options: vec![FsOption::Value("mode".into(), "755".into())],
                    copy_up: false,
                    host_fallback: chroot.then(|| HostFallback {
                        source: PathBuf::from(HOST_CGROUP_ROOT),
                        recursive: true,
                        read_only: true,
                    }),
                },
                attrs: tmpfs_attrs,
                recursive_attrs: AttrChange::default(),
                propagation: None,
                config_index: Some(index),
            }));
            for src in sources {
                setup.push(source_step(dest.join(&src.name), src, opts.attrs));
                for alias in &src.aliases {
                    setup.push(Step::Symlink {
                        target: PathBuf::from(&src.name),
                        link: dest.join(alias),
                    });
                }
            }
            if opts.attrs.set & attr::RDONLY != 0 {
                remounts.push(Step::RemountReadOnly {
                    path: dest.to_path_buf(),
                });
            }
        }
    }
}

/// Where the host's cgroup hierarchies are mounted (the v1 layout's
/// tmpfs, or the cgroup2 root).
pub const HOST_CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub(crate) const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// One of `DEFAULT_DEVICES` as a node: a character device, 0666, root's;
/// bound from the host where it cannot be made (`bind_from_host`).
pub fn default_device(path: &str, major: u64, minor: u64, bind_from_host: bool) -> DeviceNode {
    DeviceNode {
        path: PathBuf::from(path),
        kind: DeviceKind::Char,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
        bind_from_host,
        config_index: None,
    }
}

fn devices(setup: &mut Vec<Step>, spec: &Spec, userns: bool) -> Result<()> {
    let configured = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    // Checked here too (the plan does not rely on `validate`): a path
    // with `..` or outside /dev never reaches the executor.
    let paths = configured
        .iter()
        .enumerate()
        .map(|(i, d)| crate::spec::device_path(i, d.path()))
        .collect::<Result<Vec<PathBuf>>>()?;
    let mut nodes: Vec<DeviceNode> = DEFAULT_DEVICES
        .iter()
        .filter(|(path, _, _)| !paths.iter().any(|p| p == Path::new(path)))
        .map(|&(path, major, minor)| default_device(path, major, minor, userns))
        .collect();
    for (i, dev) in configured.iter().enumerate() {
        let field = |f: &str| format!("linux.devices[{i}].{f}");
        let kind = match dev.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::P => DeviceKind::Fifo,
            LinuxDeviceType::A => {
                return Err(Error::spec(
                    field("type"),
                    "\"a\" is not a device node type",
                ))
            }
        };
        // dev_t holds a 12-bit major and a 20-bit minor.
        let number = |v: i64, f: &str, max: u64| {
            u64::try_from(v)
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| Error::spec(field(f), format!("{v} is out of range 0..={max}")))
        };
        // Engines (podman) send the full st_mode, type bits included: they
        // must then agree with `type`.
        let mode = dev.file_mode().unwrap_or(0o666);
        let type_bits = mode & libc::S_IFMT;
        let expected = match kind {
            DeviceKind::Char => libc::S_IFCHR,
            DeviceKind::Block => libc::S_IFBLK,
            DeviceKind::Fifo => libc::S_IFIFO,
        };
        if (type_bits != 0 && type_bits != expected) || mode & !(libc::S_IFMT | 0o7777) != 0 {
            return Err(Error::spec(
                field("fileMode"),
                format!(
                    "{mode:#o} is not a permission mode (with, at most, the file type of \"type\")"
                ),
            ));
        }
        let mode = mode & 0o7777;
        nodes.push(DeviceNode {
            path: paths[i].clone(),
            kind,
            major: number(dev.major(), "major", 0xfff)?,
            minor: number(dev.minor(), "minor", 0xf_ffff)?,
            mode,
            uid: dev.uid().unwrap_or(0),
            gid: dev.gid().unwrap_or(0),
            bind_from_host: userns,
            config_index: Some(i),
        });
    }
    setup.extend(nodes.into_iter().map(Step::Device));
    Ok(())
}

fn dev_symlinks(setup: &mut Vec<Step>, host: &HostFacts) {
    setup.extend(dev_symlink_steps(host.has_kcore));
}

/// The usual `/dev` links (`ptmx`, `fd`, `stdin`...; `core` when the host
/// has `/proc/kcore`), for containers and the sandbox alike.
pub(crate) fn dev_symlink_steps(has_kcore: bool) -> Vec<Step> {
    let mut links = vec![
        ("pts/ptmx", "/dev/ptmx"),
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if has_kcore {
        links.push(("/proc/kcore", "/dev/core"));
    }
    links
        .into_iter()
        .map(|(target, link)| Step::Symlink {
            target: PathBuf::from(target),
            link: PathBuf::from(link),
        })
        .collect()
}

/// Lexically normalises an absolute container path (`/a/./b/../c` → `/a/c`).
/// Symlinks are resolved later, inside the rootfs, by the executor.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::spec::{default_spec, parse};

    pub(crate) fn bundle(edit: impl FnOnce(&mut serde_json::Value)) -> Bundle {
        let mut v = default_spec(None);
        v["process"]["terminal"] = false.into();
        edit(&mut v);
        Bundle {
            dir: PathBuf::from("/bundles/b"),
            spec: parse(&serde_json::to_vec(&v).unwrap()).unwrap(),
        }
    }

    pub(crate) fn hybrid() -> HostFacts {
        let src = |name: &str, aliases: &[&str]| CgroupMountSource {
            name: name.into(),
            host_dir: PathBuf::from(format!("/sys/fs/cgroup/{name}/c1")),
            fstype: "cgroup".into(),
            fs_options: vec![],
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
        };
        HostFacts {
            has_kcore: true,
            rootless: false,
            cgroup_mounts: vec![src("cpu,cpuacct", &["cpu", "cpuacct"]), src("unified", &[])],
            selinux: false,
            apparmor: false,
            ..HostFacts::default()
        }
    }

    fn mounts(plan: &Plan) -> Vec<&MountStep> {
        plan.rootfs
            .setup
            .iter()
            .filter_map(|s| match s {
                Step::Mount(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn init_takes_the_containers_proc_unless_in_a_user_namespace() {
        let plain = build(&bundle(|_| {}), &hybrid(), PlanOptions::default()).unwrap();
        assert_eq!(plain.init_procfs, InitProcfs::ContainerProc);
        assert!(plain
            .to_string()
            .contains("procfs: init uses the container's fresh /proc"));
        let userns = build(
            &bundle(|v| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"type": "user"}));
                let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
                v["linux"]["uidMappings"] = map.clone();
                v["linux"]["gidMappings"] = map;
            }),
            &hybrid(),
            PlanOptions::default(),
        )
        .unwrap();
        assert_eq!(userns.init_procfs, InitProcfs::Private);
        assert!(userns
            .to_string()
            .contains("procfs: init makes a private one first"));
        // The runtime itself in a user namespace: init is in one too.
        for host in [
            HostFacts {
                nested_user_ns: true,
                ..hybrid()
            },
            HostFacts {
                rootless: true,
                ..hybrid()
            },
        ] {
            let ns = namespaces(&bundle(|_| {}).spec).unwrap();
            assert_eq!(InitProcfs::decide(&host, &ns), InitProcfs::Private);
        }
    }

    #[test]
    fn default_spec_plan_in_order() {
        let plan = build(&bundle(|_| {}), &hybrid(), PlanOptions::default()).unwrap();
        let dests: Vec<_> = mounts(&plan)
            .iter()
            .map(|m| m.destination.clone())
            .collect();
        assert_eq!(dests[0], PathBuf::from("/proc"));
        assert_eq!(dests[1], PathBuf::from("/dev"));
        // cgroup mount on a hybrid host: tmpfs + one mount per hierarchy.
        assert!(dests.contains(&PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")));
        assert!(dests.contains(&PathBuf::from("/sys/fs/cgroup/unified")));
        assert!(plan.rootfs.setup.contains(&Step::Symlink {
            target: "cpu,cpuacct".into(),
            link: "/sys/fs/cgroup/cpu".into()
        }));
        // Without a cgroup namespace... the default has one: fresh mounts.
        let cpu = mounts(&plan)
            .into_iter()
            .find(|m| m.destination.ends_with("cpu,cpuacct"))
            .unwrap();
        assert!(matches!(cpu.kind, MountKind::Fresh { .. }));
        assert_eq!(plan.rootfs.switch, RootSwitch::PivotRoot);
        assert_eq!(plan.process.umask, 0o022);
        // Devices are created with mknod as root, and /dev/core links kcore.
        assert!(plan.rootfs.setup.iter().any(|s| matches!(s,
            Step::Device(d) if d.path == Path::new("/dev/null") && !d.bind_from_host)));
        assert!(plan.rootfs.setup.iter().any(|s| matches!(s,
            Step::Symlink { link, .. } if link == Path::new("/dev/core"))));
        // The root becomes read-only last.
        assert_eq!(
            plan.rootfs.finish.last(),
            Some(&Step::RemountReadOnly { path: "/".into() })
        );
        assert_eq!(plan.rootfs.finish.first(), Some(&Step::ReopenDevNull));
    }

    #[test]
    fn read_only_dev_is_filled_before_it_is_made_read_only() {
        let b = bundle(|v| {
            v["mounts"][1]["options"]
                .as_array_mut()
                .unwrap()
                .push("ro".into());
        });
        let plan = build(&b, &HostFacts::default(), PlanOptions::default()).unwrap();
        let dev = mounts(&plan)[1];
        assert_eq!(dev.attrs.set & attr::RDONLY, 0);
        assert!(plan.rootfs.finish.contains(&Step::RemountReadOnly {
            path: "/dev".into()
        }));
    }

    #[test]
    fn bind_sources_are_relative_to_the_bundle() {
        let b = bundle(|v| {
            v["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                {"destination": "/data/../mnt/x", "type": "bind", "source": "data", "options": ["rbind", "ro", "rprivate"]}
            ));
        });
        let plan = build(&b, &HostFacts::default(), PlanOptions::default()).unwrap();
        let m = mounts(&plan).into_iter().last().unwrap();
        assert_eq!(m.destination, PathBuf::from("/mnt/x"));
        assert_eq!(
            m.kind,
            MountKind::Bind {
                source: "/bundles/b/data".into(),
                recursive: true,
                idmap: None,
            }
        );
        assert_eq!(m.attrs.set, attr::RDONLY);
        assert_eq!(
            m.propagation,
            Some(PropagationChange {
                kind: Propagation::Private,
                recursive: true
            })
        );
    }

    #[test]
    fn user_namespace_binds_devices_and_no_pivot_moves_root() {
        let b = bundle(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            v["linux"]["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
            v["linux"]["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        });
        let plan = build(
            &b,
            &HostFacts::default(),
            PlanOptions {
                no_pivot: true,
                ..PlanOptions::default()
            },
        )
        .unwrap();
        assert!(plan
            .rootfs
            .setup
            .iter()
            .all(|s| !matches!(s, Step::Device(d) if !d.bind_from_host)));
        assert_eq!(plan.rootfs.switch, RootSwitch::MoveRoot);
        assert!(plan.namespaces.creates(Namespace::User));
        assert_eq!(plan.namespaces.uid_mappings[0].host_id, 1000);
    }

    #[test]
    fn no_dev_setup_when_dev_is_bound() {
        let b = bundle(|v| {
            v["mounts"][1] = serde_json::json!({"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]});
        });
        let plan = build(&b, &HostFacts::default(), PlanOptions::default()).unwrap();
        assert!(!plan
            .rootfs
            .setup
            .iter()
            .any(|s| matches!(s, Step::Device(_))));
    }

    #[test]
    fn root_propagation_is_applied_to_the_new_root_last() {
        let plan_for = |p: Option<&str>| {
            let b = bundle(|v| {
                if let Some(p) = p {
                    v["linux"]["rootfsPropagation"] = p.into();
                    v["linux"]["maskedPaths"] = serde_json::json!(["/proc/kcore"]);
                }
            });
            build(&b, &HostFacts::default(), PlanOptions::default()).unwrap()
        };
        let change = |kind, recursive| PropagationChange { kind, recursive };
        // Default: rslave for the namespace, nothing more for the root.
        let plan = plan_for(None);
        assert_eq!(
            plan.rootfs.root_propagation,
            change(Propagation::Slave, true)
        );
        assert!(!plan
            .rootfs
            .finish
            .iter()
            .any(|s| matches!(s, Step::RootPropagation(_))));
        for (value, ns, root) in [
            (
                "runbindable",
                change(Propagation::Private, true),
                change(Propagation::Unbindable, true),
            ),
            (
                "unbindable",
                change(Propagation::Private, false),
                change(Propagation::Unbindable, false),
            ),
            (
                "rshared",
                change(Propagation::Shared, true),
                change(Propagation::Shared, true),
            ),
            (
                "slave",
                change(Propagation::Slave, false),
                change(Propagation::Slave, false),
            ),
            (
                "private",
                change(Propagation::Private, false),
                change(Propagation::Private, false),
            ),
        ] {
            let plan = plan_for(Some(value));
            // The self-bind of the rootfs must be possible: never unbindable.
            assert_eq!(plan.rootfs.root_propagation, ns, "{value}");
            // After every mask and read-only path (they bind from the root).
            assert_eq!(
                plan.rootfs.finish.last(),
                Some(&Step::RootPropagation(root)),
                "{value}"
            );
            assert!(plan.rootfs.finish.contains(&Step::Mask {
                path: "/proc/kcore".into()
            }));
        }
        // No mount namespace: no root mount of our own to change.
        let b = bundle(|v| {
            v["linux"]["rootfsPropagation"] = "runbindable".into();
            v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
            v["linux"]["maskedPaths"] = serde_json::json!([]);
            v["linux"]["readonlyPaths"] = serde_json::json!([]);
            v["root"]["readonly"] = false.into();
            v["mounts"] = serde_json::json!([]);
            v["hostname"] = serde_json::Value::Null;
        });
        let plan = build(&b, &HostFacts::default(), PlanOptions::default()).unwrap();
        assert_eq!(plan.rootfs.switch, RootSwitch::Chroot);
        assert!(!plan
            .rootfs
            .finish
            .iter()
            .any(|s| matches!(s, Step::RootPropagation(_))));
    }

    #[test]
    fn bad_fields_are_named() {
        let b = bundle(|v| v["linux"]["rootfsPropagation"] = "sideways".into());
        let err = build(&b, &HostFacts::default(), PlanOptions::default()).unwrap_err();
        assert!(
            err.to_string().starts_with("linux.rootfsPropagation"),
            "{err}"
        );
        let b = bundle(|v| {
            v["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                {"destination": "/x", "type": "proc", "options": ["tmpcopyup"]}
            ));
        });
        let err = build(&b, &HostFacts::default(), PlanOptions::default()).unwrap_err();
        assert!(err.to_string().starts_with("mounts[7].options"), "{err}");
    }

    #[test]
    fn device_file_mode_may_carry_the_matching_type_bits() {
        let plan_mode = |typ: &str, mode: u32| {
            let b = bundle(|v| {
                v["linux"]["devices"] = serde_json::json!(
                    [{"path": "/dev/x", "type": typ, "major": 1, "minor": 3, "fileMode": mode}]
                );
            });
            build(&b, &HostFacts::default(), PlanOptions::default()).map(|plan| {
                plan.rootfs
                    .setup
                    .iter()
                    .find_map(|s| match s {
                        Step::Device(d) if d.path == Path::new("/dev/x") => Some(d.mode),
                        _ => None,
                    })
                    .unwrap()
            })
        };
        assert_eq!(plan_mode("c", 0o20644).unwrap(), 0o644);
        assert_eq!(plan_mode("b", 0o60600).unwrap(), 0o600);
        assert_eq!(plan_mode("c", 0o640).unwrap(), 0o640);
        let err = plan_mode("b", 0o20644).unwrap_err().to_string();
        assert!(err.starts_with("linux.devices[0].fileMode"), "{err}");
    }

    #[test]
    fn device_paths_are_checked_before_and_after_cleaning() {
        let plan_of = |path: &str| {
            let b = bundle(|v| {
                v["linux"]["devices"] = serde_json::json!([
                    {"path": "/dev/ok", "type": "c", "major": 1, "minor": 3},
                    {"path": path, "type": "c", "major": 1, "minor": 3}
                ]);
            });
            build(&b, &HostFacts::default(), PlanOptions::default())
        };
        for bad in [
            "/dev/../etc/x",
            "/dev/a/../../etc/x",
            "/dev/..",
            "/dev",
            "/dev/.",
            "//dev/",
            "/devices/x",
            "/etc/x",
            "dev/x",
        ] {
            let err = plan_of(bad).unwrap_err().to_string();
            assert!(err.starts_with("linux.devices[1].path:"), "{bad}: {err}");
        }
        let err = plan_of("/dev/../etc/x").unwrap_err().to_string();
        assert!(err.contains("\"..\""), "{err}");
        // Cleaned paths are what the executor gets, and what replaces a
        // default device.
        let plan = plan_of("/dev//./null").unwrap();
        let nodes: Vec<(&Path, Option<usize>)> = plan
            .rootfs
            .setup
            .iter()
            .filter_map(|s| match s {
                Step::Device(d) => Some((d.path.as_path(), d.config_index)),
                _ => None,
            })
            .collect();
        assert_eq!(
            nodes
                .iter()
                .filter(|(p, _)| *p == Path::new("/dev/null"))
                .count(),
            1,
            "{nodes:?}"
        );
        assert!(
            nodes.contains(&(Path::new("/dev/null"), Some(1))),
            "{nodes:?}"
        );
        assert!(
            nodes.contains(&(Path::new("/dev/ok"), Some(0))),
            "{nodes:?}"
        );
        assert!(nodes.contains(&(Path::new("/dev/zero"), None)), "{nodes:?}");
    }

    #[test]
    fn memory_policy_is_planned_with_its_nodes() {
        let b = bundle(|v| {
            v["linux"]["memoryPolicy"] = serde_json::json!(
                {"mode": "MPOL_BIND", "nodes": "0-2,5", "flags": ["MPOL_F_STATIC_NODES"]}
            );
        });
        let plan = build(&b, &HostFacts::default(), PlanOptions::default()).unwrap();
        let m = plan.memory_policy.unwrap();
        assert_eq!(m.nodes, vec![0, 1, 2, 5]);
        assert_eq!(m.raw_mode, 2 | 1 << 15);
        let b = bundle(|v| {
            v["linux"]["memoryPolicy"] = serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"});
        });
        let err = build(&b, &HostFacts::default(), PlanOptions::default()).unwrap_err();
        assert!(
            err.to_string().starts_with("linux.memoryPolicy.nodes:"),
            "{err}"
        );
        let b = bundle(|_| {});
        let plan = build(&b, &HostFacts::default(), PlanOptions::default()).unwrap();
        assert!(plan.memory_policy.is_none());
    }

    #[test]
    fn device_numbers_are_range_checked() {
        for (major, minor, field) in [(-1, 0, "major"), (4096, 0, "major"), (1, 1 << 20, "minor")] {
            let b = bundle(|v| {
                v["linux"]["devices"] = serde_json::json!(
                    [{"path": "/dev/x", "type": "c", "major": major, "minor": minor}]
                );
            });
            let err = build(&b, &HostFacts::default(), PlanOptions::default()).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("linux.devices[0].{field}")),
                "{err}"
            );
        }
    }

    fn bind_with(extra: serde_json::Value) -> serde_json::Value {
        let mut m = serde_json::json!({"destination": "/d", "type": "bind", "source": "/src"});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    }

    fn plan_with_mount(m: serde_json::Value, userns: bool) -> Result<Plan> {
        let b = bundle(|v| {
            v["mounts"].as_array_mut().unwrap().push(m);
            if userns {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"type": "user"}));
                v["linux"]["uidMappings"] =
                    serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
                v["linux"]["gidMappings"] =
                    serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            }
        });
        build(&b, &HostFacts::default(), PlanOptions::default())
    }

    fn last_idmap(plan: &Plan) -> Option<Idmap> {
        match &mounts(plan).last().unwrap().kind {
            MountKind::Bind { idmap, .. } => idmap.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn idmap_takes_the_mount_mappings_or_the_containers() {
        let own = serde_json::json!([{"containerID": 0, "hostID": 1234, "size": 1}]);
        let plan = plan_with_mount(
            bind_with(serde_json::json!({"options": ["rbind", "ridmap"], "uidMappings": own, "gidMappings": own})),
            false,
        )
        .unwrap();
        let map = last_idmap(&plan).unwrap();
        assert!(map.recursive);
        assert_eq!(map.uid_mappings[0].host_id, 1234);
        // Mappings alone imply a (non-recursive) idmap.
        let plan = plan_with_mount(
            bind_with(serde_json::json!({"uidMappings": own, "gidMappings": own})),
            false,
        )
        .unwrap();
        assert!(!last_idmap(&plan).unwrap().recursive);
        // `idmap` alone: the container's user namespace mappings.
        let plan =
            plan_with_mount(bind_with(serde_json::json!({"options": ["idmap"]})), true).unwrap();
        let map = last_idmap(&plan).unwrap();
        assert_eq!(map.uid_mappings[0].host_id, 100000);
        assert_eq!(map.gid_mappings[0].host_id, 200000);
        // No idmap at all.
        let plan = plan_with_mount(bind_with(serde_json::json!({})), false).unwrap();
        assert_eq!(last_idmap(&plan), None);
    }

    #[test]
    fn idmap_errors_name_the_mount() {
        let own = serde_json::json!([{"containerID": 0, "hostID": 1234, "size": 1}]);
        let cases = [
            (
                bind_with(serde_json::json!({"options": ["idmap"]})),
                "mounts[7].options",
            ),
            (
                bind_with(serde_json::json!({"uidMappings": own})),
                "mounts[7]:",
            ),
            (
                bind_with(serde_json::json!({"uidMappings": [], "gidMappings": own})),
                "mounts[7].uidMappings",
            ),
            (
                bind_with(serde_json::json!({"uidMappings": own,
                    "gidMappings": [{"containerID": 4294967295u32, "hostID": 0, "size": 2}]})),
                "mounts[7].gidMappings[0]",
            ),
            (
                serde_json::json!({"destination": "/t", "type": "tmpfs", "options": ["idmap"],
                    "uidMappings": own, "gidMappings": own}),
                "mounts[7].options",
            ),
        ];
        for (m, field) in cases {
            let err = plan_with_mount(m.clone(), false).unwrap_err().to_string();
            assert!(err.starts_with(field), "{m}: {err}");
        }
    }

    #[test]
    fn overlay_layers_are_made_absolute_in_the_bundle() {
        let b = bundle(|v| {
            v["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                {"destination": "/o", "type": "overlay", "source": "overlay",
                 "options": ["lowerdir=l1:/abs/l2:l\\:3", "upperdir=u", "workdir=/w", "lowerdir+=l4"]}
            ));
        });
        let b = Bundle {
            dir: PathBuf::from("/bundles/a:b,c"),
            ..b
        };
        let plan = build(&b, &HostFacts::default(), PlanOptions::default()).unwrap();
        let MountKind::Fresh { options, .. } = &mounts(&plan).last().unwrap().kind else {
            panic!("overlay is a fresh mount");
        };
        let value = |k: &str| {
            options.iter().find_map(|o| match o {
                FsOption::Value(key, v) if key == k => Some(v.clone()),
                _ => None,
            })
        };
        assert_eq!(
            value("lowerdir").unwrap(),
            r"/bundles/a\:b\,c/l1:/abs/l2:/bundles/a\:b\,c/l\:3"
        );
        assert_eq!(value("upperdir").unwrap(), r"/bundles/a\:b\,c/u");
        assert_eq!(value("workdir").unwrap(), "/w");
        assert_eq!(value("lowerdir+").unwrap(), "/bundles/a:b,c/l4");
    }

    #[test]
    fn mount_label_applies_only_with_selinux_and_not_to_proc() {
        let label = "system_u:object_r:container_file_t:s0:c1,c2";
        let b = bundle(|v| v["linux"]["mountLabel"] = label.into());
        let context = |plan: &Plan, dest: &str| {
            mounts(plan)
                .into_iter()
                .find(|m| m.destination == Path::new(dest))
                .and_then(|m| match &m.kind {
                    MountKind::Fresh { options, .. } => options
                        .iter()
                        .find(|o| matches!(o, FsOption::Value(k, _) if k == "context"))
                        .cloned(),
                    _ => None,
                })
        };
        let without = build(&b, &hybrid(), PlanOptions::default()).unwrap();
        assert_eq!(context(&without, "/dev"), None);
        assert_eq!(without.rootfs.mount_label, None);
        let host = HostFacts {
            selinux: true,
            ..hybrid()
        };
        let with = build(&b, &host, PlanOptions::default()).unwrap();
        assert_eq!(context(&with, "/dev"), Some(context_option(label)));
        assert_eq!(context(&with, "/dev/shm"), Some(context_option(label)));
        assert_eq!(context(&with, "/proc"), None);
        assert_eq!(context(&with, "/sys"), None);
        assert_eq!(with.rootfs.mount_label.as_deref(), Some(label));
    }

    /// Plans one extra mount on `host` and returns its steps: the mount
    /// steps it produced and the finishing remounts.
    fn plan_one(m: serde_json::Value, host: &HostFacts, cgroupns: bool) -> (Vec<MountStep>, Plan) {
        let b = bundle(|v| {
            v["mounts"] = serde_json::json!([m]);
            if !cgroupns {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "cgroup");
            }
        });
        let plan = build(&b, host, PlanOptions::default()).unwrap();
        let steps = mounts(&plan).into_iter().cloned().collect();
        (steps, plan)
    }

    fn fresh(step: &MountStep) -> (&str, &[FsOption], bool) {
        match &step.kind {
            MountKind::Fresh {
                fstype,
                options,
                copy_up,
                ..
            } => (fstype.as_str(), options.as_slice(), *copy_up),
            other => panic!("not a fresh mount: {other:?}"),
        }
    }

    #[test]
    fn every_mount_type_plans_as_expected() {
        use serde_json::json;
        let host = HostFacts::default();
        let value = |k: &str, v: &str| FsOption::Value(k.into(), v.into());
        for (fstype, options, data) in [
            ("proc", json!([]), vec![]),
            ("sysfs", json!(["ro"]), vec![]),
            ("mqueue", json!(["nosuid"]), vec![]),
            (
                "devpts",
                json!(["newinstance", "ptmxmode=0666"]),
                vec![
                    FsOption::Flag("newinstance".into()),
                    value("ptmxmode", "0666"),
                ],
            ),
            (
                "tmpfs",
                json!(["size=1m", "mode=700"]),
                vec![value("size", "1m"), value("mode", "700")],
            ),
            ("ramfs", json!(["mode=711"]), vec![value("mode", "711")]),
            (
                "overlay",
                json!(["lowerdir=/l", "upperdir=/u", "workdir=/w"]),
                vec![
                    value("lowerdir", "/l"),
                    value("upperdir", "/u"),
                    value("workdir", "/w"),
                ],
            ),
        ] {
            let (steps, _) = plan_one(
                json!({"destination": "/m", "type": fstype, "source": fstype, "options": options}),
                &host,
                true,
            );
            let (planned, planned_data, copy_up) = fresh(&steps[0]);
            assert_eq!(planned, fstype);
            assert_eq!(planned_data, data.as_slice(), "{fstype}");
            assert!(!copy_up);
        }
        // sysfs ro: the attribute, not data.
        let (steps, _) = plan_one(
            json!({"destination": "/sys", "type": "sysfs", "options": ["ro"]}),
            &host,
            true,
        );
        assert_eq!(steps[0].attrs.set, attr::RDONLY);

        // tmpcopyup + ro: filled first, read-only at the end.
        let (steps, plan) = plan_one(
            json!({"destination": "/t", "type": "tmpfs", "options": ["tmpcopyup", "ro"]}),
            &host,
            true,
        );
        assert!(fresh(&steps[0]).2);
        assert_eq!(steps[0].attrs.set & attr::RDONLY, 0);
        assert!(plan
            .rootfs
            .finish
            .contains(&Step::RemountReadOnly { path: "/t".into() }));

        // bind of a file (type bind) and rbind with type none.
        for (typ, option, recursive) in [("bind", "bind", false), ("none", "rbind", true)] {
            let (steps, _) = plan_one(
                json!({"destination": "/b", "type": typ, "source": "/etc/hosts", "options": [option]}),
                &host,
                true,
            );
            assert_eq!(
                steps[0].kind,
                MountKind::Bind {
                    source: "/etc/hosts".into(),
                    recursive,
                    idmap: None
                }
            );
        }
    }

    #[test]
    fn cgroup_mounts_on_each_host_layout() {
        use serde_json::json;
        let cgroup = json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "options": ["ro"]});
        // Hybrid, no cgroup namespace: a tmpfs, then a bind of the
        // container's own cgroup per hierarchy, aliases as links, and the
        // tmpfs made read-only at the end.
        let (steps, plan) = plan_one(cgroup.clone(), &hybrid(), false);
        assert_eq!(fresh(&steps[0]).0, "tmpfs");
        assert_eq!(steps[0].attrs.set & attr::RDONLY, 0);
        assert_eq!(
            steps[1].kind,
            MountKind::Bind {
                source: "/sys/fs/cgroup/cpu,cpuacct/c1".into(),
                recursive: false,
                idmap: None
            }
        );
        assert_eq!(steps[1].attrs.set & attr::RDONLY, attr::RDONLY);
        assert!(plan.rootfs.setup.contains(&Step::Symlink {
            target: "cpu,cpuacct".into(),
            link: "/sys/fs/cgroup/cpuacct".into()
        }));
        assert!(plan.rootfs.finish.contains(&Step::RemountReadOnly {
            path: "/sys/fs/cgroup".into()
        }));
        // Pure v2 with a cgroup namespace: one fresh cgroup2 mount.
        let v2 = HostFacts {
            cgroup_mounts: vec![CgroupMountSource {
                name: String::new(),
                host_dir: "/sys/fs/cgroup/c1".into(),
                fstype: "cgroup2".into(),
                fs_options: vec![],
                aliases: vec![],
            }],
            ..HostFacts::default()
        };
        let (steps, _) = plan_one(cgroup.clone(), &v2, true);
        assert_eq!(steps.len(), 1);
        assert_eq!(fresh(&steps[0]).0, "cgroup2");
        assert_eq!(steps[0].destination, PathBuf::from("/sys/fs/cgroup"));
        // ... and without one: a bind of the container's cgroup.
        let (steps, _) = plan_one(cgroup, &v2, false);
        assert!(matches!(&steps[0].kind, MountKind::Bind { source, .. }
            if source == Path::new("/sys/fs/cgroup/c1")));
    }

    #[test]
    fn lexical_cleaning() {
        assert_eq!(clean(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(clean(Path::new("/../../x")), PathBuf::from("/x"));
    }
}
