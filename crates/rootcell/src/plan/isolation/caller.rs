//! An unprivileged caller of the runtime (`HostFacts::caller`: euid != 0,
//! or root in a user namespace that is not the initial one) and what it
//! changes in a plan. Full isolation without CAP_SYS_ADMIN is refused
//! early, as `Error::IsolationRefused`, so that `--isolation auto` can fall
//! back to chroot. Chroot isolation gives the container a user namespace
//! with mappings the caller can write, and drops what only a wider mapping
//! allows (additional groups), saying so. The facts are read in
//! `container::host`.

use crate::error::{Error, Result};
use crate::plan::{IdMapping, Namespace, Namespaces, ProcessPlan};

/// An unprivileged caller of the runtime: euid != 0, or root in a user
/// namespace that is not the initial one (a nested container).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// Subordinate id ranges exist for the caller (`/etc/subuid` and
    /// `/etc/subgid`) and `newuidmap` can write them.
    pub subordinate_ids: bool,
    /// The ids of the caller's own user namespace (the first and third
    /// columns of `/proc/self/uid_map` and `gid_map`) when it may map all of
    /// them into a new one: root there with CAP_SETUID and CAP_SETGID.
    /// Empty otherwise (only its own uid and gid can be mapped).
    pub namespace_uids: Vec<IdRange>,
    pub namespace_gids: Vec<IdRange>,
    /// The caller holds CAP_SYS_ADMIN in its user namespace: it can make a
    /// mount (or any other) namespace without a user namespace of its own.
    pub sys_admin: bool,
}

/// A range of ids, `start..start + size`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdRange {
    pub start: u32,
    pub size: u32,
}

impl IdRange {
    fn holds(ranges: &[IdRange], start: u32, size: u32) -> bool {
        let end = u64::from(start) + u64::from(size);
        ranges
            .iter()
            .any(|r| start >= r.start && end <= u64::from(r.start) + u64::from(r.size))
    }

    /// Identity mappings of `ranges`: every id stays as it is.
    fn identity(ranges: &[IdRange]) -> Vec<IdMapping> {
        ranges
            .iter()
            .map(|r| IdMapping {
                container_id: r.start,
                host_id: r.start,
                size: r.size,
            })
            .collect()
    }
}

/// Full isolation for a caller without CAP_SYS_ADMIN (a nested, unprivileged
/// container): every namespace but a user namespace needs it, so a config
/// that creates namespaces without a user namespace is refused as
/// `Error::IsolationRefused` (`--isolation auto` then retries with chroot
/// isolation, which adds a user namespace).
pub fn full_isolation_needs_sys_admin(caller: Option<&Caller>, ns: &Namespaces) -> Result<()> {
    let Some(caller) = caller.filter(|c| !c.sys_admin) else {
        return Ok(());
    };
    if ns.creates(Namespace::User) || ns.create.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = ns.create.iter().map(|n| n.proc_name()).collect();
    Err(Error::IsolationRefused {
        what: "namespaces without CAP_SYS_ADMIN".into(),
        message: format!(
            "linux.namespaces: creating {} namespaces needs CAP_SYS_ADMIN, which the runtime \
             (uid {}) does not hold in its user namespace, and the config has no user namespace",
            names.join(", "),
            caller.uid
        ),
    })
}

/// Chroot isolation for an unprivileged caller: a new user namespace; the
/// config's mappings are kept when the caller can write them (its own ids
/// only, subordinate ids through `newuidmap`, or ids of its own user
/// namespace where it is root there), else replaced by the caller's own
/// mappings (one diagnostic): root in a user namespace keeps every id of
/// that namespace as it is; any other caller's own uid and gid are mapped
/// to `process.user`. With only the caller's ids mapped, setgroups is
/// denied (the kernel requires it), so `process.user.additionalGids` are
/// dropped (one diagnostic).
pub fn chroot_user_namespace(
    caller: &Caller,
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
    let within = |maps: &[IdMapping], ranges: &[IdRange]| {
        !ranges.is_empty()
            && maps
                .iter()
                .all(|m| IdRange::holds(ranges, m.host_id, m.size))
    };
    let own = own_only(&ns.uid_mappings, caller.uid) && own_only(&ns.gid_mappings, caller.gid);
    let in_namespace = within(&ns.uid_mappings, &caller.namespace_uids)
        && within(&ns.gid_mappings, &caller.namespace_gids);
    let none = ns.uid_mappings.is_empty() && ns.gid_mappings.is_empty();
    let whole_namespace = !caller.namespace_uids.is_empty() && !caller.namespace_gids.is_empty();
    if none || !(own || in_namespace || caller.subordinate_ids) {
        if whole_namespace {
            if !none {
                diagnostics.push(format!(
                    "chroot isolation: linux.uidMappings/linux.gidMappings need ids the runtime's user namespace does not map: replaced by its own ids, unchanged ({})",
                    describe(&caller.namespace_uids)
                ));
            }
            ns.uid_mappings = IdRange::identity(&caller.namespace_uids);
            ns.gid_mappings = IdRange::identity(&caller.namespace_gids);
            return;
        }
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

fn describe(ranges: &[IdRange]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| match r.size {
            1 => format!("id {}", r.start),
            n => format!("ids {}-{}", r.start, u64::from(r.start) + u64::from(n) - 1),
        })
        .collect();
    parts.join(", ")
}

/// The second half of [`chroot_user_namespace`], once the process is
/// planned: where only the caller's ids are mapped, its additional groups
/// cannot be set.
pub fn chroot_drop_groups(
    caller: &Caller,
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

#[cfg(test)]
mod tests {
    use super::super::tests::{chroot, devpts_options, map, nested, CALLER};
    use super::*;
    use crate::plan::build::tests::bundle;
    use crate::plan::{build, Isolation, PlanOptions, Step};
    use serde_json::json;

    #[test]
    fn nested_full_isolation_is_refused_without_sys_admin_and_chroot_adds_a_user_namespace() {
        let b = bundle(|_| {});
        let host = nested();
        for mode in [None, Some(Isolation::Auto)] {
            let opts = PlanOptions {
                isolation: mode,
                ..PlanOptions::default()
            };
            match build(&b, &host, opts) {
                Err(Error::IsolationRefused { what, message }) => {
                    assert_eq!(what, "namespaces without CAP_SYS_ADMIN");
                    assert!(message.starts_with("linux.namespaces:"), "{message}");
                }
                other => panic!("not refused: {other:?}"),
            }
        }
        // With CAP_SYS_ADMIN (a privileged nested container), or a
        // user namespace in the config, full isolation is planned.
        let mut privileged = nested();
        if let Some(c) = privileged.caller.as_mut() {
            c.sys_admin = true;
        }
        assert!(build(&b, &privileged, PlanOptions::default()).is_ok());
        let with_userns = bundle(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 10}]);
            v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 10}]);
        });
        assert!(build(&with_userns, &host, PlanOptions::default()).is_ok());

        // Chroot isolation: a user namespace with every id of the
        // caller's own, unchanged; gid 5 is mapped, devpts keeps it;
        // the deny-all device rule is met by the bound nodes.
        let plan = build(&b, &host, chroot()).unwrap();
        assert!(plan.namespaces.creates(Namespace::User));
        assert_eq!(plan.namespaces.uid_mappings, vec![map(0, 0, 65536)]);
        assert_eq!(plan.namespaces.gid_mappings, vec![map(0, 0, 65536)]);
        assert!(devpts_options(&plan).contains(&"gid=5".to_string()));
        let res = plan.resources.as_ref().expect("resources");
        assert!(res.writes.iter().all(|w| w.controller != "devices"));
        assert_eq!(plan.diagnostics.len(), 1, "{:?}", plan.diagnostics);
        assert!(
            plan.diagnostics[0].contains("linux.resources.devices: met by binding"),
            "{:?}",
            plan.diagnostics
        );
        assert!(
            plan.rootfs
                .setup
                .iter()
                .all(|s| !matches!(s, Step::Device(d) if !d.bind_from_host)),
            "device nodes are bound, not made"
        );
    }

    #[test]
    fn no_mappings_map_the_caller_to_the_process_user_silently() {
        let mut ns = Namespaces::default();
        let mut notes = Vec::new();
        chroot_user_namespace(&CALLER, &mut ns, (5, 6), &mut notes);
        assert!(ns.creates(Namespace::User));
        assert_eq!(ns.uid_mappings, vec![map(5, 1000, 1)]);
        assert_eq!(ns.gid_mappings, vec![map(6, 1000, 1)]);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn root_in_a_user_namespace_keeps_its_ids_or_maps_them_all_unchanged() {
        let root = Caller {
            uid: 0,
            gid: 0,
            namespace_uids: vec![IdRange {
                start: 0,
                size: 65536,
            }],
            namespace_gids: vec![IdRange {
                start: 0,
                size: 65536,
            }],
            ..Caller::default()
        };
        // None in the config: every id of the caller's namespace, as it is.
        let mut ns = Namespaces::default();
        let mut notes = Vec::new();
        chroot_user_namespace(&root, &mut ns, (1000, 1000), &mut notes);
        assert_eq!(ns.uid_mappings, vec![map(0, 0, 65536)]);
        assert_eq!(ns.gid_mappings, vec![map(0, 0, 65536)]);
        assert!(notes.is_empty(), "{notes:?}");
        // Mappings of ids it has are kept as written.
        let inside = vec![map(0, 1000, 1), map(1, 2000, 500)];
        let mut ns = Namespaces {
            uid_mappings: inside.clone(),
            gid_mappings: inside.clone(),
            ..Namespaces::default()
        };
        chroot_user_namespace(&root, &mut ns, (0, 0), &mut notes);
        assert_eq!(ns.uid_mappings, inside);
        assert!(notes.is_empty(), "{notes:?}");
        // A range past its namespace's end: replaced, one diagnostic.
        let outside = vec![map(0, 65000, 1000)];
        let mut ns = Namespaces {
            uid_mappings: outside.clone(),
            gid_mappings: outside,
            ..Namespaces::default()
        };
        chroot_user_namespace(&root, &mut ns, (0, 0), &mut notes);
        assert_eq!(ns.uid_mappings, vec![map(0, 0, 65536)]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("ids 0-65535"), "{notes:?}");
    }

    #[test]
    fn full_isolation_needs_sys_admin_only_without_a_user_namespace() {
        let ns = |create: Vec<Namespace>| Namespaces {
            create,
            ..Namespaces::default()
        };
        let without = Caller::default();
        let with = Caller {
            sys_admin: true,
            ..Caller::default()
        };
        let mount = ns(vec![Namespace::Mount, Namespace::Pid]);
        let err = full_isolation_needs_sys_admin(Some(&without), &mount).unwrap_err();
        assert!(
            err.to_string()
                .contains("creating mnt, pid namespaces needs CAP_SYS_ADMIN"),
            "{err}"
        );
        assert!(full_isolation_needs_sys_admin(Some(&with), &mount).is_ok());
        assert!(full_isolation_needs_sys_admin(None, &mount).is_ok());
        let userns = ns(vec![Namespace::User, Namespace::Mount]);
        assert!(full_isolation_needs_sys_admin(Some(&without), &userns).is_ok());
        assert!(full_isolation_needs_sys_admin(Some(&without), &ns(vec![])).is_ok());
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
        chroot_user_namespace(&CALLER, &mut ns, (0, 0), &mut notes);
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
        chroot_user_namespace(&sub, &mut ns, (0, 0), &mut notes);
        assert_eq!(ns.uid_mappings, wide, "newuidmap can write them");
        assert!(notes.is_empty());
        // The caller's own single id is kept as written.
        let mut own = Namespaces {
            uid_mappings: vec![map(7, 1000, 1)],
            gid_mappings: vec![map(8, 1000, 1)],
            ..Namespaces::default()
        };
        chroot_user_namespace(&CALLER, &mut own, (0, 0), &mut notes);
        assert_eq!(own.uid_mappings, vec![map(7, 1000, 1)]);
        assert!(notes.is_empty());
    }
}
