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
    DeviceKind, DeviceRule, FsOption, HostFallback, IdMapping, MountKind, Namespace, Namespaces,
    ProcessPlan, RootSwitch, RootfsPlan, Step,
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

/// Chroot isolation's namespaces that may be shared when the kernel
/// refuses them (`Namespaces::shared_if_refused`): the config's network,
/// ipc and cgroup namespaces, and its pid namespace, unless something else
/// in the plan depends on having one of its own:
///
/// - network: no `net.*` sysctl (it would be written to the shared one);
/// - ipc: no ipc sysctl (`kernel.msg*`, `kernel.sem`, `kernel.shm*`,
///   `fs.mqueue.*`);
/// - cgroup: no `cgroup` mount (a fresh cgroupfs outside a cgroup
///   namespace shows the whole tree);
/// - pid: only where the host's processes stay out of reach through
///   `/proc/<pid>/root` and `/proc/<pid>/cwd` with a shared pid namespace,
///   i.e. where the container's process is in a user namespace other than
///   theirs (its own, or a runtime that is itself nested): the kernel's
///   ptrace check then needs CAP_SYS_PTRACE over their user namespace. In
///   the initial user namespace a same-uid process with no more
///   capabilities than the container's would be reachable, so there a
///   refused pid namespace stays an error.
pub fn chroot_shared_if_refused(spec: &Spec, ns: &mut Namespaces, nested_user_ns: bool) {
    let linux = spec.linux().as_ref();
    let sysctls: Vec<&String> = linux
        .and_then(|l| l.sysctl().as_ref())
        .map(|s| s.keys().collect())
        .unwrap_or_default();
    let has_cgroup_mount = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.typ().as_deref() == Some("cgroup") || m.typ().as_deref() == Some("cgroup2"));
    let other_user_ns = nested_user_ns || ns.creates(Namespace::User);
    let ipc_sysctl = |k: &str| {
        k.starts_with("kernel.msg")
            || k.starts_with("kernel.shm")
            || k == "kernel.sem"
            || k.starts_with("fs.mqueue.")
    };
    for candidate in [
        Namespace::Pid,
        Namespace::Network,
        Namespace::Ipc,
        Namespace::Cgroup,
    ] {
        let may_share = match candidate {
            Namespace::Pid => other_user_ns,
            Namespace::Network => !sysctls.iter().any(|k| k.starts_with("net.")),
            Namespace::Ipc => !sysctls.iter().any(|k| ipc_sysctl(k)),
            Namespace::Cgroup => !has_cgroup_mount,
            _ => false,
        };
        if may_share && ns.creates(candidate) && !ns.shared_if_refused.contains(&candidate) {
            ns.shared_if_refused.push(candidate);
        }
    }
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
pub fn chroot_lock_mounts(caps: Option<&super::Capabilities>) -> bool {
    caps.is_none_or(|c| c.bounding.iter().any(|n| n == "CAP_SYS_ADMIN"))
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
    res: &mut super::resources::CgroupResources,
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
        fn namespaces_shared_if_refused_only_where_nothing_depends_on_them() {
            let b = bundle(|v| {
                v["linux"]["namespaces"] = json!([
                    {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                    {"type": "cgroup"}, {"type": "mount"}, {"type": "uts"}
                ]);
                v["mounts"] = json!([]);
            });
            // As real root in the initial user namespace, a shared pid
            // namespace would expose the host's processes: it stays
            // required. The others may be shared.
            let plan = build(&b, &hybrid(), chroot()).unwrap();
            assert_eq!(
                plan.namespaces.shared_if_refused,
                [Namespace::Network, Namespace::Ipc, Namespace::Cgroup]
            );
            let text = plan.to_string();
            assert!(
                text.contains("new net (shared with the runtime's if the kernel refuses it)"),
                "{text}"
            );
            assert!(text.contains("├─ new pid\n"), "{text}");
            // A runtime in a user namespace of its own: pid too.
            let nested = crate::plan::HostFacts {
                nested_user_ns: true,
                ..hybrid()
            };
            let plan = build(&b, &nested, chroot()).unwrap();
            assert_eq!(plan.namespaces.shared_if_refused[0], Namespace::Pid);
            // Full isolation: never.
            let oci = build(&b, &nested, PlanOptions::default()).unwrap();
            assert!(oci.namespaces.shared_if_refused.is_empty());
            // A net sysctl, an ipc sysctl and a cgroup mount keep theirs.
            let tied = bundle(|v| {
                v["linux"]["namespaces"] = json!([
                    {"type": "network"}, {"type": "ipc"}, {"type": "cgroup"},
                    {"type": "mount"}, {"type": "uts"}
                ]);
                v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "100"});
                v["mounts"] = json!([{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}]);
            });
            let plan = build(&tied, &nested, chroot()).unwrap();
            assert!(
                plan.namespaces.shared_if_refused.is_empty(),
                "{:?}",
                plan.namespaces.shared_if_refused
            );
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
            chroot_device_nodes(&mut plan.rootfs, deny_full, &mut notes);
            let paths: Vec<_> = devices_of(&plan).iter().map(|d| d.path.clone()).collect();
            assert!(!paths.contains(&PathBuf::from("/dev/full")), "{paths:?}");
            assert!(paths.contains(&PathBuf::from("/dev/zero")), "{paths:?}");
            assert_eq!(notes.len(), 1, "{notes:?}");
            assert!(notes[0].contains("/dev/full (c 1:7)"), "{notes:?}");
        }

        /// Root in a nested container's user namespace (ids 0-65535),
        /// without CAP_SYS_ADMIN.
        fn nested() -> crate::plan::HostFacts {
            let all = vec![IdRange {
                start: 0,
                size: 65536,
            }];
            crate::plan::HostFacts {
                rootless: true,
                caller: Some(Caller {
                    namespace_uids: all.clone(),
                    namespace_gids: all,
                    ..Caller::default()
                }),
                ..hybrid()
            }
        }

        fn devpts_options(plan: &crate::plan::Plan) -> Vec<String> {
            plan.rootfs
                .setup
                .iter()
                .find_map(|s| match s {
                    Step::Mount(m) => match &m.kind {
                        MountKind::Fresh {
                            fstype, options, ..
                        } if fstype == "devpts" => {
                            Some(options.iter().map(ToString::to_string).collect())
                        }
                        _ => None,
                    },
                    _ => None,
                })
                .expect("a devpts mount")
        }

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
        namespace_uids: Vec::new(),
        namespace_gids: Vec::new(),
        sys_admin: false,
    };

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
