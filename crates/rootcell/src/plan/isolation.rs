//! Isolation modes (`--isolation`, annotation `org.rootcell.isolation`) and
//! what chroot isolation changes in a plan.
//!
//! Chroot isolation (buildah's `--isolation chroot`) runs the same OCI
//! config where a full container cannot be made: it always has a private
//! mount namespace and a UTS namespace, joins no existing namespace, and
//! switches the root by moving the bound rootfs onto `/` and `chroot`ing
//! into it (`RootSwitch::MoveRoot`), which needs no `pivot_root`. Fresh
//! `proc`, `sysfs`, `devpts` and `mqueue` mounts fall back to binds of the
//! host's when the kernel refuses them, and every config mount's flags are
//! read back after mounting.

use std::path::PathBuf;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::resources::rules_allow_open;
use super::{
    DeviceKind, DeviceRule, HostFallback, IdMapping, MountKind, Namespace, Namespaces, ProcessPlan,
    RootSwitch, RootfsPlan, Step,
};
use crate::error::{Error, Result};

/// The annotation that asks for an isolation mode in `config.json`.
pub const ANNOTATION: &str = "org.rootcell.isolation";

/// The annotation that lets rootless chroot isolation ignore the cgroup
/// limits it cannot write (one warning line each) instead of refusing them.
pub const IGNORE_RESOURCES: &str = "org.rootcell.chroot.ignore-resources";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// A full OCI container (runc's behaviour).
    #[default]
    Oci,
    /// buildah's chroot isolation.
    Chroot,
    /// Full isolation, falling back to chroot where it is refused: planned
    /// as `Oci`; `create` retries with `Chroot` when init reports an
    /// `Error::IsolationRefused`.
    Auto,
}

impl Isolation {
    pub const VALUES: &'static str = "oci, chroot or auto";

    /// Parses `oci`, `chroot` or `auto`.
    pub fn parse(value: &str) -> Option<Isolation> {
        match value {
            "oci" => Some(Isolation::Oci),
            "chroot" => Some(Isolation::Chroot),
            "auto" => Some(Isolation::Auto),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isolation::Oci => "oci",
            Isolation::Chroot => "chroot",
            Isolation::Auto => "auto",
        }
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The isolation mode of a container: the command line's `--isolation`
/// when given, else the config's annotation, else `oci`. The annotation is
/// validated even when the flag overrides it: a config with a misspelt mode
/// is refused wherever it runs.
pub fn resolve(spec: &Spec, flag: Option<Isolation>) -> Result<Isolation> {
    let annotation = match spec.annotations().as_ref().and_then(|a| a.get(ANNOTATION)) {
        None => None,
        Some(value) => Some(Isolation::parse(value).ok_or_else(|| {
            Error::spec(
                format!("annotations.{ANNOTATION}"),
                format!("{value:?} is not {}", Isolation::VALUES),
            )
        })?),
    };
    Ok(flag.or(annotation).unwrap_or_default())
}

/// Chroot isolation's namespaces: the config's, less any joined one (an
/// error naming `linux.namespaces[i].path`), plus a new mount and UTS
/// namespace when the config has none.
pub fn chroot_namespaces(spec: &Spec, ns: &mut Namespaces) -> Result<()> {
    let listed = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some((i, n)) = listed.iter().enumerate().find(|(_, n)| n.path().is_some()) {
        let path = n.path().as_ref().map(|p| p.display().to_string());
        return Err(Error::spec(
            format!("linux.namespaces[{i}].path"),
            format!(
                "{}: joining an existing namespace is not possible with chroot isolation",
                path.unwrap_or_default()
            ),
        ));
    }
    for needed in [Namespace::Mount, Namespace::Uts] {
        if !ns.creates(needed) {
            ns.create.push(needed);
        }
    }
    Ok(())
}

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

/// Chroot isolation with `linux.resources.devices`: no devices cgroup
/// may hold the rules (a read-only or undelegated tree, a user
/// namespace), so they are met by the nodes: a planned node (default or
/// `linux.devices`) the rules deny is left out (one diagnostic each), and
/// the rules go to the executor for config binds and a host `/dev`.
/// As in runc, each `linux.devices` node and the default devices are
/// allowed after the config's rules, so these stay.
pub fn chroot_device_rules(
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

/// An unprivileged caller (euid != 0) of the runtime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// Subordinate id ranges exist for the caller (`/etc/subuid` and
    /// `/etc/subgid`) and `newuidmap` can write them.
    pub subordinate_ids: bool,
}

/// Chroot isolation for an unprivileged caller: a new user namespace; the
/// config's mappings are kept when the caller can write them (its own ids
/// only, or subordinate ids through `newuidmap`), else replaced by the
/// caller's own uid and gid mapped to `process.user` (one diagnostic).
/// With only the caller's ids mapped, setgroups is denied (the kernel
/// requires it), so `process.user.additionalGids` are dropped (one
/// diagnostic).
pub fn chroot_user_namespace(
    caller: Caller,
    ns: &mut Namespaces,
    (uid, gid): (u32, u32),
    diagnostics: &mut Vec<String>,
) {
    if !ns.creates(Namespace::User) {
        ns.create.push(Namespace::User);
    }
    let own_only = |maps: &[IdMapping], own: u32| {
        maps.len() == 1 && maps[0].size == 1 && maps[0].host_id == own
    };
    let own = own_only(&ns.uid_mappings, caller.uid) && own_only(&ns.gid_mappings, caller.gid);
    let none = ns.uid_mappings.is_empty() && ns.gid_mappings.is_empty();
    if none || (!own && !caller.subordinate_ids) {
        if !none {
            diagnostics.push(format!(
                "chroot isolation: linux.uidMappings/linux.gidMappings need ids uid {} does not own and it has no subordinate ids: replaced by uid {} and gid {} mapped to {}:{}",
                caller.uid, caller.uid, caller.gid, uid, gid
            ));
        }
        ns.uid_mappings = vec![IdMapping {
            container_id: uid,
            host_id: caller.uid,
            size: 1,
        }];
        ns.gid_mappings = vec![IdMapping {
            container_id: gid,
            host_id: caller.gid,
            size: 1,
        }];
    }
}

/// The second half of [`chroot_user_namespace`], once the process is
/// planned: where only the caller's ids are mapped, its additional groups
/// cannot be set.
pub fn chroot_drop_groups(
    caller: Caller,
    ns: &Namespaces,
    process: &mut ProcessPlan,
    diagnostics: &mut Vec<String>,
) {
    let own_only = |maps: &[IdMapping], own: u32| {
        maps.len() == 1 && maps[0].size == 1 && maps[0].host_id == own
    };
    let self_map = own_only(&ns.uid_mappings, caller.uid) && own_only(&ns.gid_mappings, caller.gid);
    if self_map && !process.additional_gids.is_empty() {
        let gids: Vec<String> = process.additional_gids.iter().map(u32::to_string).collect();
        diagnostics.push(format!(
            "chroot isolation: process.user.additionalGids {} dropped: setgroups is denied where only the caller's ids are mapped",
            gids.join(",")
        ));
        process.additional_gids.clear();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn flag_wins_over_annotation_and_default_is_oci() {
        let plain = spec(r#"{"ociVersion":"1.0.2"}"#);
        assert_eq!(resolve(&plain, None).unwrap(), Isolation::Oci);
        assert_eq!(
            resolve(&plain, Some(Isolation::Chroot)).unwrap(),
            Isolation::Chroot
        );
        let annotated =
            spec(r#"{"ociVersion":"1.0.2","annotations":{"org.rootcell.isolation":"chroot"}}"#);
        assert_eq!(resolve(&annotated, None).unwrap(), Isolation::Chroot);
        assert_eq!(
            resolve(&annotated, Some(Isolation::Oci)).unwrap(),
            Isolation::Oci
        );
    }

    #[test]
    fn unknown_annotation_value_names_the_annotation() {
        let bad = spec(r#"{"ociVersion":"1.0.2","annotations":{"org.rootcell.isolation":"jail"}}"#);
        for flag in [None, Some(Isolation::Chroot)] {
            let err = resolve(&bad, flag).unwrap_err().to_string();
            assert!(
                err.contains("annotations.org.rootcell.isolation") && err.contains("jail"),
                "{err}"
            );
        }
    }

    #[test]
    fn parse_knows_three_modes() {
        assert_eq!(Isolation::parse("oci"), Some(Isolation::Oci));
        assert_eq!(Isolation::parse("chroot"), Some(Isolation::Chroot));
        assert_eq!(Isolation::parse("auto"), Some(Isolation::Auto));
        assert_eq!(Isolation::parse("Chroot"), None);
        assert_eq!(Isolation::parse(""), None);
    }

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

    mod planner {
        use super::super::super::build::tests::{bundle, hybrid};
        use super::super::super::{build, PlanOptions};
        use super::*;
        use serde_json::json;

        fn chroot() -> PlanOptions {
            PlanOptions {
                isolation: Some(Isolation::Chroot),
                ..PlanOptions::default()
            }
        }

        fn fallback_of(plan: &crate::plan::Plan, dest: &str) -> Option<HostFallback> {
            plan.rootfs.setup.iter().find_map(|s| match s {
                Step::Mount(m) if m.destination == std::path::Path::new(dest) => match &m.kind {
                    MountKind::Fresh { host_fallback, .. } => host_fallback.clone(),
                    _ => None,
                },
                _ => None,
            })
        }

        #[test]
        fn chroot_adds_mount_and_uts_and_keeps_what_the_config_asks() {
            let b = bundle(|v| {
                v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "network"}]);
            });
            let plan = build(&b, &hybrid(), chroot()).unwrap();
            assert_eq!(plan.isolation, Isolation::Chroot);
            let ns = &plan.namespaces;
            for wanted in [
                Namespace::Pid,
                Namespace::Network,
                Namespace::Mount,
                Namespace::Uts,
            ] {
                assert!(ns.creates(wanted), "{wanted:?} missing: {:?}", ns.create);
            }
            // IPC only where the config asks for it.
            assert!(!ns.creates(Namespace::Ipc));
            assert_eq!(plan.rootfs.switch, RootSwitch::MoveRoot);
            assert!(plan.rootfs.verify_mount_flags);
            // The config's hostname is set in the added UTS namespace.
            assert_eq!(plan.hostname.as_deref(), Some("rootcell"));
            let with_ipc = bundle(|v| {
                v["linux"]["namespaces"] = json!([{"type": "ipc"}]);
            });
            let plan = build(&with_ipc, &hybrid(), chroot()).unwrap();
            assert!(plan.namespaces.creates(Namespace::Ipc));
        }

        #[test]
        fn full_isolation_refuses_the_same_config() {
            // A hostname without a UTS namespace: fine in chroot
            // isolation (it makes one), an error naming the field in oci.
            let b = bundle(|v| {
                v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
            });
            let err = build(&b, &hybrid(), PlanOptions::default())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("hostname"), "{err}");
            assert!(build(&b, &hybrid(), chroot()).is_ok());
        }

        #[test]
        fn a_namespace_path_is_refused_naming_it() {
            let b = bundle(|v| {
                v["linux"]["namespaces"] = json!([
                    {"type": "pid"},
                    {"type": "network", "path": "/proc/1/ns/net"},
                    {"type": "mount"},
                    {"type": "uts"}
                ]);
            });
            let err = build(&b, &hybrid(), chroot()).unwrap_err().to_string();
            assert!(err.starts_with("linux.namespaces[1].path"), "{err}");
            assert!(err.contains("/proc/1/ns/net"), "{err}");
            // Full isolation joins it.
            let plan = build(&b, &hybrid(), PlanOptions::default()).unwrap();
            assert_eq!(plan.namespaces.join.len(), 1);
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

        fn devices_of(plan: &crate::plan::Plan) -> Vec<&crate::plan::DeviceNode> {
            plan.rootfs
                .setup
                .iter()
                .filter_map(|s| match s {
                    Step::Device(d) => Some(d),
                    _ => None,
                })
                .collect()
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
        fn limits_are_refused_unless_ignored_for_root_too() {
            let b = bundle(|v| {
                v["linux"]["resources"] = json!({"memory": {"limit": 100000000}});
            });
            let res = build(&b, &hybrid(), chroot()).unwrap().resources.unwrap();
            assert!(res.chroot && res.refuse_unwritable);
            let ignored = bundle(|v| {
                v["linux"]["resources"] = json!({"memory": {"limit": 100000000}});
                v["annotations"] = json!({IGNORE_RESOURCES: "true"});
            });
            let res = build(&ignored, &hybrid(), chroot())
                .unwrap()
                .resources
                .unwrap();
            assert!(res.chroot && !res.refuse_unwritable);
            let oci = build(&b, &hybrid(), PlanOptions::default()).unwrap();
            let res = oci.resources.unwrap();
            assert!(!res.chroot && !res.refuse_unwritable);
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
            chroot_device_rules(&mut plan.rootfs, deny_full, &mut notes);
            let paths: Vec<_> = devices_of(&plan).iter().map(|d| d.path.clone()).collect();
            assert!(!paths.contains(&PathBuf::from("/dev/full")), "{paths:?}");
            assert!(paths.contains(&PathBuf::from("/dev/zero")), "{paths:?}");
            assert_eq!(notes.len(), 1, "{notes:?}");
            assert!(notes[0].contains("/dev/full (c 1:7)"), "{notes:?}");
        }

        #[test]
        fn auto_plans_full_isolation_and_says_when_it_retries() {
            let b = bundle(|_| {});
            let opts = PlanOptions {
                isolation: Some(Isolation::Auto),
                ..PlanOptions::default()
            };
            let plan = build(&b, &hybrid(), opts).unwrap();
            assert_eq!(plan.isolation, Isolation::Auto);
            assert_eq!(plan.rootfs.switch, RootSwitch::PivotRoot);
            // No host fallback in the first attempt: a refusal is an error
            // init reports, on which `create` retries with chroot.
            assert_eq!(fallback_of(&plan, "/proc"), None);
            assert!(plan
                .to_string()
                .starts_with("isolation auto: planned as oci; create retries with chroot"));
        }
    }

    fn map(container_id: u32, host_id: u32, size: u32) -> IdMapping {
        IdMapping {
            container_id,
            host_id,
            size,
        }
    }

    const CALLER: Caller = Caller {
        uid: 1000,
        gid: 1000,
        subordinate_ids: false,
    };

    #[test]
    fn no_mappings_map_the_caller_to_the_process_user_silently() {
        let mut ns = Namespaces::default();
        let mut notes = Vec::new();
        chroot_user_namespace(CALLER, &mut ns, (5, 6), &mut notes);
        assert!(ns.creates(Namespace::User));
        assert_eq!(ns.uid_mappings, vec![map(5, 1000, 1)]);
        assert_eq!(ns.gid_mappings, vec![map(6, 1000, 1)]);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn mappings_needing_subordinate_ids_are_replaced_only_without_them() {
        let wide = vec![map(0, 1000, 1), map(1, 100000, 65536)];
        let start = Namespaces {
            create: vec![Namespace::User],
            uid_mappings: wide.clone(),
            gid_mappings: wide.clone(),
            ..Namespaces::default()
        };
        let mut ns = start.clone();
        let mut notes = Vec::new();
        chroot_user_namespace(CALLER, &mut ns, (0, 0), &mut notes);
        assert_eq!(ns.uid_mappings, vec![map(0, 1000, 1)]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(
            ns.create.iter().filter(|n| **n == Namespace::User).count(),
            1
        );
        let sub = Caller {
            subordinate_ids: true,
            ..CALLER
        };
        let mut ns = start.clone();
        let mut notes = Vec::new();
        chroot_user_namespace(sub, &mut ns, (0, 0), &mut notes);
        assert_eq!(ns.uid_mappings, wide, "newuidmap can write them");
        assert!(notes.is_empty());
        // The caller's own single id is kept as written.
        let mut own = Namespaces {
            uid_mappings: vec![map(7, 1000, 1)],
            gid_mappings: vec![map(8, 1000, 1)],
            ..Namespaces::default()
        };
        chroot_user_namespace(CALLER, &mut own, (0, 0), &mut notes);
        assert_eq!(own.uid_mappings, vec![map(7, 1000, 1)]);
        assert!(notes.is_empty());
    }
}
