//! What chroot isolation changes in the root filesystem's plan: the root
//! is moved onto `/` and chrooted into (no `pivot_root`); fresh special
//! filesystems the kernel refuses fall back to binds of the host's; mounts
//! are locked where the process could change them; a devpts `gid=` the
//! container's user namespace does not map is dropped; and
//! `linux.resources.devices` is met by the device nodes where no devices
//! cgroup can hold the rules.

use std::path::PathBuf;

use crate::plan::resources::{rules_allow_open, CgroupResources};
use crate::plan::{
    Capabilities, DeviceKind, DeviceRule, FsOption, HostFallback, MountKind, Namespace, Namespaces,
    RootSwitch, RootfsPlan, Step,
};

/// Chroot isolation's root: `MoveRoot` (MS_MOVE of the bound rootfs onto
/// `/`, then chroot, after the host's proc and sysfs mounts outside it are
/// hidden), host binds where fresh special filesystems are refused, and
/// mount flags read back. Where a tmpfs on `/dev` is refused, the host's
/// `/dev` is bound (recursively) and nothing is created in it.
pub fn chroot_rootfs(rootfs: &mut RootfsPlan) {
    rootfs.switch = RootSwitch::MoveRoot;
    rootfs.verify_mount_flags = true;
    for step in &mut rootfs.setup {
        if let Step::Mount(m) = step {
            if let MountKind::Fresh {
                fstype,
                host_fallback,
                ..
            } = &mut m.kind
            {
                // A cgroup mount's fallbacks were planned with it
                // (`build::cgroup_mount`).
                if host_fallback.is_some() {
                    continue;
                }
                *host_fallback = match fstype.as_str() {
                    "tmpfs" if m.destination == std::path::Path::new("/dev") => {
                        Some(HostFallback {
                            source: PathBuf::from("/dev"),
                            recursive: true,
                            read_only: false,
                        })
                    }
                    _ => fallback_for(fstype),
                };
            }
        }
    }
}

/// The host mount bound when a fresh filesystem of this type is refused.
fn fallback_for(fstype: &str) -> Option<HostFallback> {
    let (source, recursive, read_only) = match fstype {
        "proc" => ("/proc", true, false),
        "sysfs" => ("/sys", true, true),
        "devpts" => ("/dev/pts", false, false),
        "mqueue" => ("/dev/mqueue", false, false),
        _ => return None,
    };
    Some(HostFallback {
        source: PathBuf::from(source),
        recursive,
        read_only,
    })
}

/// Whether chroot isolation locks the container's mounts
/// (`RootfsPlan::lock_mounts`): wherever the process could change them.
/// With MoveRoot, the host's old root stays in the mount namespace under
/// the container's root; a process with CAP_SYS_ADMIN over the namespace
/// could unmount a mask, remount a read-only bind read-write, or detach
/// the root and `setns` into its own mount namespace to land on the
/// host's root. That needs CAP_SYS_ADMIN in the process's bounding set
/// (or a config that leaves the capabilities alone), in any user
/// namespace: without it no mount can be changed, and a user namespace
/// the process makes itself only gets locked copies. Locking costs a user
/// namespace of the container's own (the capabilities then act only on
/// what that namespace owns, and `/proc/self/uid_map` shows the ids onto
/// themselves), so it is done exactly there. `rootcell exec --cap
/// CAP_SYS_ADMIN` into an unlocked container is the caller's own choice.
pub fn chroot_lock_mounts(caps: Option<&Capabilities>) -> bool {
    caps.is_none_or(|c| c.bounding.iter().any(|n| n == "CAP_SYS_ADMIN"))
}

/// Chroot isolation: a `gid=N` option of a devpts mount names a group the
/// container's user namespace does not map (a root-made config run by an
/// unprivileged caller: the kernel refuses it with EINVAL). The option is
/// dropped, with one diagnostic: the terminals' group is then the
/// creator's.
pub fn chroot_devpts_gid(ns: &Namespaces, rootfs: &mut RootfsPlan, diagnostics: &mut Vec<String>) {
    if !ns.creates(Namespace::User) {
        return;
    }
    for step in &mut rootfs.setup {
        let Step::Mount(m) = step else { continue };
        let MountKind::Fresh {
            fstype, options, ..
        } = &mut m.kind
        else {
            continue;
        };
        if fstype != "devpts" {
            continue;
        }
        let mapped = |g: u32| {
            ns.gid_mappings.iter().any(|r| {
                g >= r.container_id && u64::from(g) < u64::from(r.container_id) + u64::from(r.size)
            })
        };
        let place = m
            .config_index
            .map_or_else(|| "mounts".to_string(), |i| format!("mounts[{i}]"));
        options.retain(|opt| match opt {
            FsOption::Value(k, v) if k == "gid" => match v.parse::<u32>() {
                Ok(g) if !mapped(g) => {
                    diagnostics.push(format!(
                        "chroot isolation: {place}.options: gid={g} dropped: gid {g} is not mapped in the container's user namespace"
                    ));
                    false
                }
                _ => true,
            },
            _ => true,
        });
    }
}

/// Unprivileged chroot isolation: device nodes are bound from the host
/// (the default ones and `linux.devices`), never created, and no new one
/// can be made in a user namespace. Device rules that only deny all
/// devices and allow some are met by that binding, so their devices
/// cgroup writes (which the caller cannot make) are dropped, with one
/// diagnostic. A rule denying a particular device is kept for the
/// cgroup; where that cannot be written either, the rules are met by the
/// nodes (`chroot_device_nodes`, and `cgroup::apply_resources` says so).
pub fn chroot_device_rules(
    rules: &[oci_spec::runtime::LinuxDeviceCgroup],
    res: &mut CgroupResources,
    diagnostics: &mut Vec<String>,
) {
    use oci_spec::runtime::LinuxDeviceType;
    let denies_one = rules.iter().any(|r| {
        !r.allow() && !matches!(r.typ().unwrap_or(LinuxDeviceType::A), LinuxDeviceType::A)
    });
    let had = res.writes.iter().any(|w| w.controller == "devices") || res.device_filter.is_some();
    if denies_one || !had {
        return;
    }
    res.writes.retain(|w| w.controller != "devices");
    res.device_filter = None;
    diagnostics.push(
        "chroot isolation: linux.resources.devices: met by binding only the default and linux.devices nodes from the host (no devices cgroup rules written)"
            .into(),
    );
}

/// Chroot isolation with `linux.resources.devices`: no devices cgroup
/// may hold the rules (a read-only or undelegated tree, a user
/// namespace), so they are met by the nodes: a planned node (default or
/// `linux.devices`) the rules deny is left out (one diagnostic each), and
/// the rules go to the executor for config binds and a host `/dev`.
/// As in runc, each `linux.devices` node and the default devices are
/// allowed after the config's rules, so these stay.
pub fn chroot_device_nodes(
    rootfs: &mut RootfsPlan,
    rules: Vec<DeviceRule>,
    diagnostics: &mut Vec<String>,
) {
    rootfs.setup.retain(|step| {
        let Step::Device(d) = step else { return true };
        let kind = match d.kind {
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
            DeviceKind::Fifo => return true,
        };
        let (major, minor) = (d.major as u32, d.minor as u32);
        if rules_allow_open(&rules, kind, major, minor) {
            return true;
        }
        diagnostics.push(format!(
            "chroot isolation: {} ({kind} {major}:{minor}) not made: linux.resources.devices deny it",
            d.path.display()
        ));
        false
    });
    rootfs.device_rules = Some(rules);
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        chroot, devices_of, devpts_options, fallback_of, map, nested, CALLER,
    };
    use super::*;
    use crate::plan::build::tests::{bundle, hybrid};
    use crate::plan::{build, Isolation, PlanOptions};
    use serde_json::json;

    #[test]
    fn fallbacks_only_for_the_special_filesystems() {
        let proc = fallback_for("proc").unwrap();
        assert_eq!(proc.source, PathBuf::from("/proc"));
        assert!(proc.recursive && !proc.read_only);
        let sys = fallback_for("sysfs").unwrap();
        assert!(sys.read_only, "the host's /sys is bound read-only");
        assert_eq!(
            fallback_for("devpts").unwrap().source,
            PathBuf::from("/dev/pts")
        );
        assert_eq!(
            fallback_for("mqueue").unwrap().source,
            PathBuf::from("/dev/mqueue")
        );
        assert_eq!(fallback_for("tmpfs"), None);
        assert_eq!(fallback_for("overlay"), None);
    }

    #[test]
    fn mounts_are_locked_where_the_process_keeps_cap_sys_admin() {
        let default = bundle(|_| {});
        let plan = build(&default, &hybrid(), chroot()).unwrap();
        assert!(
            !plan.rootfs.lock_mounts,
            "the default set has no CAP_SYS_ADMIN"
        );
        let admin = bundle(|v| {
            v["process"]["capabilities"] = json!({"bounding": ["CAP_SYS_ADMIN"]});
        });
        let plan = build(&admin, &hybrid(), chroot()).unwrap();
        assert!(plan.rootfs.lock_mounts);
        assert!(plan.to_string().contains("mounts locked"), "{plan}");
        let all = bundle(|v| {
            v["process"]["capabilities"] = json!(null);
        });
        assert!(build(&all, &hybrid(), chroot()).unwrap().rootfs.lock_mounts);
        // Full isolation pivots the host's tree away: nothing to lock.
        let oci = build(&admin, &hybrid(), PlanOptions::default()).unwrap();
        assert!(!oci.rootfs.lock_mounts);
    }

    #[test]
    fn special_filesystems_fall_back_to_host_binds_only_in_chroot() {
        let b = bundle(|_| {});
        let plan = build(&b, &hybrid(), chroot()).unwrap();
        let proc = fallback_of(&plan, "/proc").expect("/proc fallback");
        assert!(proc.recursive && !proc.read_only);
        let sys = fallback_of(&plan, "/sys").expect("/sys fallback");
        assert!(sys.read_only);
        assert!(fallback_of(&plan, "/dev/pts").is_some());
        assert!(fallback_of(&plan, "/dev/mqueue").is_some());
        assert_eq!(fallback_of(&plan, "/dev/shm"), None, "tmpfs has none");
        let text = plan.to_string();
        assert!(text.starts_with("isolation chroot"), "{text}");
        assert!(
            text.contains("else (refused) rbind the host's /proc"),
            "{text}"
        );

        let oci = build(&b, &hybrid(), PlanOptions::default()).unwrap();
        assert_eq!(oci.isolation, Isolation::Oci);
        assert_eq!(fallback_of(&oci, "/proc"), None);
        assert!(!oci.rootfs.verify_mount_flags);
        assert_eq!(oci.rootfs.switch, RootSwitch::PivotRoot);
    }

    #[test]
    fn dev_tmpfs_falls_back_to_the_hosts_dev_only_in_chroot() {
        let b = bundle(|_| {});
        let plan = build(&b, &hybrid(), chroot()).unwrap();
        let dev = fallback_of(&plan, "/dev").expect("/dev fallback");
        assert_eq!(dev.source, PathBuf::from("/dev"));
        assert!(dev.recursive && !dev.read_only);
        // The default nodes and links are still planned for the tmpfs.
        let paths: Vec<_> = devices_of(&plan).iter().map(|d| d.path.clone()).collect();
        for p in ["null", "zero", "full", "random", "urandom", "tty"] {
            assert!(paths.contains(&PathBuf::from("/dev").join(p)), "{paths:?}");
        }
        for link in [
            "/dev/fd",
            "/dev/stdin",
            "/dev/stdout",
            "/dev/stderr",
            "/dev/ptmx",
        ] {
            assert!(
                    plan.rootfs.setup.iter().any(
                        |s| matches!(s, Step::Symlink { link: l, .. } if l == std::path::Path::new(link))
                    ),
                    "{link} missing"
                );
        }
        let oci = build(&b, &hybrid(), PlanOptions::default()).unwrap();
        assert_eq!(fallback_of(&oci, "/dev"), None);
    }

    #[test]
    fn mknod_as_root_bind_in_a_user_namespace() {
        let b = bundle(|_| {});
        let plan = build(&b, &hybrid(), chroot()).unwrap();
        assert!(devices_of(&plan).iter().all(|d| !d.bind_from_host));
        // A runtime in a user namespace (HostFacts.rootless).
        let userns = crate::plan::HostFacts {
            rootless: true,
            ..hybrid()
        };
        let plan = build(&b, &userns, chroot()).unwrap();
        assert!(devices_of(&plan).iter().all(|d| d.bind_from_host));
        // Rootless: chroot isolation adds a user namespace.
        let rootless = crate::plan::HostFacts {
            caller: Some(CALLER),
            ..hybrid()
        };
        let plan = build(&b, &rootless, chroot()).unwrap();
        assert!(plan.namespaces.creates(Namespace::User));
        assert!(devices_of(&plan).iter().all(|d| d.bind_from_host));
    }

    #[test]
    fn cgroup_mounts_fall_back_to_the_hosts_tree_read_only_in_chroot() {
        // v1 layout: the tmpfs falls back to the host's whole tree.
        let b = bundle(|v| {
            v["linux"]["namespaces"] =
                json!([{"type": "mount"}, {"type": "uts"}, {"type": "cgroup"}]);
        });
        let plan = build(&b, &hybrid(), chroot()).unwrap();
        let layout = fallback_of(&plan, "/sys/fs/cgroup").expect("layout fallback");
        assert_eq!(layout.source, PathBuf::from("/sys/fs/cgroup"));
        assert!(layout.recursive && layout.read_only);
        // Each fresh hierarchy falls back to the container's cgroup.
        let cpu = fallback_of(&plan, "/sys/fs/cgroup/cpu,cpuacct").expect("cpu fallback");
        assert_eq!(cpu.source, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c1"));
        assert!(!cpu.recursive && cpu.read_only);
        let oci = build(&b, &hybrid(), PlanOptions::default()).unwrap();
        assert_eq!(fallback_of(&oci, "/sys/fs/cgroup"), None);
        assert_eq!(fallback_of(&oci, "/sys/fs/cgroup/cpu,cpuacct"), None);
    }

    #[test]
    fn device_rules_keep_what_runc_allows_and_go_to_the_executor() {
        // Denying /dev/full and a linux.devices node: runc appends an
        // allow for every node after the config's rules, so both stay.
        let b = bundle(|v| {
            v["linux"]["devices"] = json!([
                {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3}
            ]);
            v["linux"]["resources"] = json!({"devices": [
                {"allow": false, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
            ]});
        });
        let plan = build(&b, &hybrid(), chroot()).unwrap();
        let paths: Vec<_> = devices_of(&plan).iter().map(|d| d.path.clone()).collect();
        assert!(paths.contains(&PathBuf::from("/dev/full")), "{paths:?}");
        assert!(paths.contains(&PathBuf::from("/dev/mynull")), "{paths:?}");
        assert!(plan.diagnostics.is_empty(), "{:?}", plan.diagnostics);
        let rules = plan.rootfs.device_rules.as_ref().expect("rules planned");
        assert!(!rules_allow_open(rules, 'c', 1, 11), "kmsg is denied");
        assert!(rules_allow_open(rules, 'c', 1, 7));
        // Full isolation leaves the rules to the devices cgroup.
        let oci = build(&b, &hybrid(), PlanOptions::default()).unwrap();
        assert!(oci.rootfs.device_rules.is_none());
    }

    #[test]
    fn a_denied_node_is_left_out_with_a_diagnostic() {
        let b = bundle(|_| {});
        let mut plan = build(&b, &hybrid(), chroot()).unwrap();
        let deny_full = vec![
            DeviceRule {
                allow: true,
                kind: None,
                major: None,
                minor: None,
                access: "rwm".into(),
            },
            DeviceRule {
                allow: false,
                kind: Some('c'),
                major: Some(1),
                minor: Some(7),
                access: "rw".into(),
            },
        ];
        let mut notes = Vec::new();
        chroot_device_nodes(&mut plan.rootfs, deny_full, &mut notes);
        let paths: Vec<_> = devices_of(&plan).iter().map(|d| d.path.clone()).collect();
        assert!(!paths.contains(&PathBuf::from("/dev/full")), "{paths:?}");
        assert!(paths.contains(&PathBuf::from("/dev/zero")), "{paths:?}");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("/dev/full (c 1:7)"), "{notes:?}");
    }

    #[test]
    fn an_unmapped_devpts_gid_is_dropped_with_one_diagnostic() {
        // A root-made config with only root mapped (or a caller that
        // can map only itself): gid=5 is not mapped.
        let b = bundle(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
            v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
        });
        let plan = build(&b, &nested(), chroot()).unwrap();
        assert_eq!(plan.namespaces.gid_mappings, vec![map(0, 0, 1)]);
        let opts = devpts_options(&plan);
        assert!(!opts.iter().any(|o| o.starts_with("gid=")), "{opts:?}");
        assert!(opts.contains(&"newinstance".to_string()), "{opts:?}");
        let notes: Vec<_> = plan
            .diagnostics
            .iter()
            .filter(|d| d.contains("gid=5 dropped"))
            .collect();
        assert_eq!(notes.len(), 1, "{:?}", plan.diagnostics);
        assert!(notes[0].contains("mounts[2].options"), "{notes:?}");
        // Root on the host keeps it (no user namespace is added).
        let root = build(&bundle(|_| {}), &hybrid(), chroot()).unwrap();
        assert!(devpts_options(&root).contains(&"gid=5".to_string()));
        assert!(root.diagnostics.is_empty(), "{:?}", root.diagnostics);
    }

    #[test]
    fn a_device_rule_denying_one_device_is_kept_for_the_cgroup() {
        let b = bundle(|v| {
            v["linux"]["resources"]["devices"] = json!([
                {"allow": false, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
            ]);
        });
        let plan = build(&b, &nested(), chroot()).unwrap();
        let res = plan.resources.as_ref().expect("resources");
        assert!(res.refuse_unwritable);
        assert!(res.writes.iter().any(|w| w.controller == "devices"));
        assert!(plan.diagnostics.is_empty(), "{:?}", plan.diagnostics);
    }
}
