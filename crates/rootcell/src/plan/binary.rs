//! How the runtime keeps its own binary out of a container's reach
//! (CVE-2019-5736), decided from the config and the binary it runs from.
//!
//! A container process can reach the binary a setup process runs from (a
//! `#!/proc/self/exe` entrypoint, `/proc/<pid>/exe` of a setup process it
//! can trace) and, once no runtime process runs it any more, open it for
//! writing. It must find a file nobody can write:
//! - on a read-only mount, or a sealed memfd: nobody can, whatever the
//!   container holds;
//! - immutable (`FS_IMMUTABLE_FL`): nobody can, unless they first clear the
//!   flag, which takes `CAP_LINUX_IMMUTABLE` in the initial user namespace.
//!   So an immutable binary is used as it is only for a container none of
//!   whose processes can hold that capability there: the config's bounding
//!   set leaves it out, or the container has a new user namespace (its
//!   capabilities are its own namespace's). Otherwise the runtime first
//!   re-executes itself from a read-only image (`exe::reexec_protected`).
//!
//! A writable, mutable binary is always re-executed from a read-only image
//! before the config is read (`exe::ensure_protected`); it never gets here.

use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};
use serde::Serialize;

/// What protects the binary this process runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Protection {
    /// The binary is on a read-only mount (an installation on a read-only
    /// filesystem, or the detached read-only bind of a re-execution).
    ReadOnlyMount,
    /// The binary is a memfd sealed against writes (a rootless re-execution).
    SealedMemfd,
    /// The binary file is immutable (`chattr +i`; `scripts/setup` installs
    /// it so).
    Immutable,
}

/// The decision for one container (or one `exec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BinaryPlan {
    /// The binary is used as it is: the protection holds against every
    /// process of the container.
    Keep(Protection),
    /// The binary is immutable, but a process of the container may hold
    /// `CAP_LINUX_IMMUTABLE` in the initial user namespace and could clear
    /// the flag: the runtime re-executes from a read-only image first.
    Reexec,
}

impl BinaryPlan {
    /// For a container made from `spec`, by a runtime whose binary has
    /// `found` (None: nothing protects it).
    pub fn for_container(spec: &Spec, found: Option<Protection>) -> BinaryPlan {
        match found {
            None => BinaryPlan::Reexec,
            Some(Protection::Immutable) if may_hold_linux_immutable(spec) => BinaryPlan::Reexec,
            Some(p) => BinaryPlan::Keep(p),
        }
    }

    /// For a process `exec` starts in a container. `joins_user_namespace`:
    /// the container has a user namespace of its own. Without one the
    /// decision is conservative: a process an earlier `exec --cap` started
    /// may hold `CAP_LINUX_IMMUTABLE` whatever the config said.
    pub fn for_exec(found: Protection, joins_user_namespace: bool) -> BinaryPlan {
        match found {
            Protection::Immutable if !joins_user_namespace => BinaryPlan::Reexec,
            _ => BinaryPlan::Keep(found),
        }
    }
}

/// Whether a process of the container can hold `CAP_LINUX_IMMUTABLE` in
/// the initial user namespace. Only a *new* user namespace rules it out: a
/// joined one (by path) might be the host's.
fn may_hold_linux_immutable(spec: &Spec) -> bool {
    let new_user_namespace = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| {
            nss.iter()
                .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none())
        });
    if new_user_namespace {
        return false;
    }
    // Without `process.capabilities` the process keeps every capability
    // (as with runc); without a bounding set it has none.
    match spec.process().as_ref().map(|p| p.capabilities()) {
        Some(Some(caps)) => caps
            .bounding()
            .as_ref()
            .is_some_and(|b| b.contains(&Capability::LinuxImmutable)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(edit: impl FnOnce(&mut serde_json::Value)) -> Spec {
        let mut v = crate::spec::default_spec(None);
        edit(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn read_only_and_sealed_binaries_are_kept_whatever_the_container_holds() {
        let privileged = spec(|v| {
            v["process"].as_object_mut().unwrap().remove("capabilities");
        });
        for p in [Protection::ReadOnlyMount, Protection::SealedMemfd] {
            assert_eq!(
                BinaryPlan::for_container(&privileged, Some(p)),
                BinaryPlan::Keep(p)
            );
            assert_eq!(BinaryPlan::for_exec(p, false), BinaryPlan::Keep(p));
        }
    }

    #[test]
    fn an_immutable_binary_is_kept_unless_the_container_may_clear_the_flag() {
        let imm = Protection::Immutable;
        // `runc spec`'s default: no CAP_LINUX_IMMUTABLE.
        assert_eq!(
            BinaryPlan::for_container(&spec(|_| {}), Some(imm)),
            BinaryPlan::Keep(imm)
        );
        // In the bounding set: re-exec.
        let with_cap = spec(|v| {
            v["process"]["capabilities"]["bounding"]
                .as_array_mut()
                .unwrap()
                .push("CAP_LINUX_IMMUTABLE".into())
        });
        assert_eq!(
            BinaryPlan::for_container(&with_cap, Some(imm)),
            BinaryPlan::Reexec
        );
        // No capabilities section: every capability, re-exec.
        let privileged = spec(|v| {
            v["process"].as_object_mut().unwrap().remove("capabilities");
        });
        assert_eq!(
            BinaryPlan::for_container(&privileged, Some(imm)),
            BinaryPlan::Reexec
        );
        // A new user namespace: its capabilities are not the host's.
        let mut userns = with_cap.clone();
        let mut v = serde_json::to_value(&userns).unwrap();
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        userns = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(
            BinaryPlan::for_container(&userns, Some(imm)),
            BinaryPlan::Keep(imm)
        );
        // A joined one may be the host's.
        let last = v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .last_mut()
            .unwrap();
        last["path"] = "/proc/1/ns/user".into();
        let joined: Spec = serde_json::from_value(v).unwrap();
        assert_eq!(
            BinaryPlan::for_container(&joined, Some(imm)),
            BinaryPlan::Reexec
        );
    }

    #[test]
    fn a_writable_binary_is_always_re_executed() {
        assert_eq!(
            BinaryPlan::for_container(&spec(|_| {}), None),
            BinaryPlan::Reexec
        );
    }

    #[test]
    fn exec_keeps_an_immutable_binary_only_in_a_user_namespace() {
        let imm = Protection::Immutable;
        assert_eq!(BinaryPlan::for_exec(imm, true), BinaryPlan::Keep(imm));
        assert_eq!(BinaryPlan::for_exec(imm, false), BinaryPlan::Reexec);
    }
}
