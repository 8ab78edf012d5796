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
//!
//! The chroot decisions are split by what they change: `namespaces` (which
//! namespaces chroot isolation makes, and which it may share with the
//! runtime's when the kernel refuses them), `caller` (an unprivileged
//! caller: its user namespace and mappings, and full isolation refused
//! without CAP_SYS_ADMIN) and `rootfs` (the root switch, host fallbacks,
//! locked mounts, devpts's gid, device nodes and rules). All are pure:
//! `plan::build` calls them on plan data.

mod caller;
mod namespaces;
mod rootfs;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

pub use caller::{
    chroot_drop_groups, chroot_user_namespace, full_isolation_needs_sys_admin, Caller, IdRange,
};
pub use namespaces::{chroot_namespaces, chroot_shared_if_refused};
pub use rootfs::{
    chroot_device_nodes, chroot_device_rules, chroot_devpts_gid, chroot_lock_mounts, chroot_rootfs,
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

/// The tests of the mode itself, and helpers shared by the tests of the
/// isolation modules.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::build::tests::{bundle, hybrid};
    use crate::plan::{build, HostFallback, IdMapping, MountKind, PlanOptions, RootSwitch, Step};
    use serde_json::json;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    pub(super) fn chroot() -> PlanOptions {
        PlanOptions {
            isolation: Some(Isolation::Chroot),
            ..PlanOptions::default()
        }
    }

    pub(super) fn fallback_of(plan: &crate::plan::Plan, dest: &str) -> Option<HostFallback> {
        plan.rootfs.setup.iter().find_map(|s| match s {
            Step::Mount(m) if m.destination == std::path::Path::new(dest) => match &m.kind {
                MountKind::Fresh { host_fallback, .. } => host_fallback.clone(),
                _ => None,
            },
            _ => None,
        })
    }

    pub(super) fn devices_of(plan: &crate::plan::Plan) -> Vec<&crate::plan::DeviceNode> {
        plan.rootfs
            .setup
            .iter()
            .filter_map(|s| match s {
                Step::Device(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    /// Root in a nested container's user namespace (ids 0-65535),
    /// without CAP_SYS_ADMIN.
    pub(super) fn nested() -> crate::plan::HostFacts {
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

    pub(super) fn devpts_options(plan: &crate::plan::Plan) -> Vec<String> {
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

    pub(super) fn map(container_id: u32, host_id: u32, size: u32) -> IdMapping {
        IdMapping {
            container_id,
            host_id,
            size,
        }
    }

    pub(super) const CALLER: Caller = Caller {
        uid: 1000,
        gid: 1000,
        subordinate_ids: false,
        namespace_uids: Vec::new(),
        namespace_gids: Vec::new(),
        sys_admin: false,
    };

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
