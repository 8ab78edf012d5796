//! Chroot isolation's namespaces: none joined (a `path` is an error), a
//! new mount and UTS namespace always (the root is moved inside a mount
//! namespace of its own, and the config's hostname is set in the UTS one),
//! and, of the config's other new namespaces, which may be shared with the
//! runtime's where the kernel refuses them: only those nothing else in the
//! plan depends on, and pid only where the host's processes stay out of
//! reach.

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::plan::{Namespace, Namespaces};

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

#[cfg(test)]
mod tests {
    use super::super::tests::chroot;
    use super::*;
    use crate::plan::build::tests::{bundle, hybrid};
    use crate::plan::{build, Isolation, PlanOptions, RootSwitch};
    use serde_json::json;

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
            v["mounts"] =
                json!([{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}]);
        });
        let plan = build(&tied, &nested, chroot()).unwrap();
        assert!(
            plan.namespaces.shared_if_refused.is_empty(),
            "{:?}",
            plan.namespaces.shared_if_refused
        );
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
}
