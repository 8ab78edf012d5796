//! How the container's init comes to be: cloned by the runtime with its
//! new namespaces at once, or forked by a stage 1 that prepares them.

use serde::Serialize;

use super::resources::CgroupVersion;
use super::{HostFacts, Isolation, Namespace, Namespaces};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum InitSpawn {
    /// The runtime forks stage 1, which joins the namespaces given by
    /// path, creates the user namespace (the runtime writes its id maps)
    /// and the time namespace (its offsets), unshares the rest and forks
    /// init. Needed for all of these: a pid or time namespace applies to
    /// a process's children only, and a user namespace must exist, mapped,
    /// before the namespaces it is to own. Also where the runtime makes
    /// the cgroups while stage 1 creates the namespaces (`CgroupEntry::
    /// AfterNamespaces`: v1 hierarchies, one directory each, cost about
    /// as much as the namespaces), and for best-effort cgroups.
    Stage1,
    /// The runtime clones init with the flags of every new namespace
    /// (`clone3`, straight into the cgroup v2 directory made before): one
    /// fork and one round trip of the sync socket fewer, and the runtime
    /// knows init's pid without being told. Init then joins nothing but
    /// its cgroups and creates the cgroup namespace itself, once in them
    /// (a namespace `clone3` created would be rooted at the runtime's
    /// cgroup).
    Direct,
}

impl InitSpawn {
    pub fn decide(host: &HostFacts, isolation: Isolation, namespaces: &Namespaces) -> InitSpawn {
        let best_effort_cgroups = host.rootless || isolation == Isolation::Chroot;
        let v1_cgroups = host.cgroup_version == CgroupVersion::V1 && !host.cgroup_mounts.is_empty();
        if best_effort_cgroups
            || v1_cgroups
            || !namespaces.join.is_empty()
            || namespaces.creates(Namespace::User)
            || namespaces.creates(Namespace::Time)
            || !namespaces.shared_if_refused.is_empty()
        {
            InitSpawn::Stage1
        } else {
            InitSpawn::Direct
        }
    }

    /// The `clone3` flags of `Direct`: every namespace the plan creates but
    /// the cgroup namespace, which init creates once in its cgroups.
    pub fn clone_flags(namespaces: &Namespaces) -> u64 {
        namespaces
            .create
            .iter()
            .filter(|n| **n != Namespace::Cgroup)
            .fold(0u64, |acc, n| acc | n.clone_flag() as u64)
    }
}

impl std::fmt::Display for InitSpawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitSpawn::Stage1 => write!(
                f,
                "init: forked by stage 1, which joins and creates the namespaces"
            ),
            InitSpawn::Direct => write!(
                f,
                "init: cloned by the runtime with its new namespaces, into the cgroups made before"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{host_with_cgroup, namespaces};

    fn host(version: CgroupVersion, rootless: bool) -> HostFacts {
        host_with_cgroup("unified", "cgroup2", version, rootless)
    }

    fn runc_spec_namespaces() -> Namespaces {
        use Namespace::*;
        namespaces(&[Pid, Network, Ipc, Uts, Mount, Cgroup])
    }

    #[test]
    fn runc_spec_on_cgroup2_is_cloned_directly() {
        let ns = runc_spec_namespaces();
        let v2 = host(CgroupVersion::V2, false);
        assert_eq!(
            InitSpawn::decide(&v2, Isolation::Oci, &ns),
            InitSpawn::Direct
        );
        let flags = InitSpawn::clone_flags(&ns);
        assert_eq!(flags & libc::CLONE_NEWCGROUP as u64, 0, "init makes it");
        assert_ne!(flags & libc::CLONE_NEWPID as u64, 0);
        assert_ne!(flags & libc::CLONE_NEWNET as u64, 0);
    }

    #[test]
    fn stage1_where_a_namespace_must_exist_first_or_cgroups_overlap() {
        let v2 = host(CgroupVersion::V2, false);
        let with = |f: &dyn Fn(&mut Namespaces)| {
            let mut ns = runc_spec_namespaces();
            f(&mut ns);
            InitSpawn::decide(&v2, Isolation::Oci, &ns)
        };
        assert_eq!(
            with(&|ns| ns.create.push(Namespace::User)),
            InitSpawn::Stage1
        );
        assert_eq!(
            with(&|ns| ns.create.push(Namespace::Time)),
            InitSpawn::Stage1
        );
        assert_eq!(
            with(&|ns| {
                ns.create.retain(|n| *n != Namespace::Network);
                ns.join.push((Namespace::Network, "/run/netns/x".into()));
            }),
            InitSpawn::Stage1
        );
        let ns = runc_spec_namespaces();
        let v1 = host(CgroupVersion::V1, false);
        assert_eq!(
            InitSpawn::decide(&v1, Isolation::Oci, &ns),
            InitSpawn::Stage1
        );
        let rootless = host(CgroupVersion::V2, true);
        assert_eq!(
            InitSpawn::decide(&rootless, Isolation::Oci, &ns),
            InitSpawn::Stage1
        );
        assert_eq!(
            InitSpawn::decide(&v2, Isolation::Chroot, &ns),
            InitSpawn::Stage1
        );
        // No cgroup hierarchy at all: nothing to overlap with.
        let none = HostFacts::default();
        assert_eq!(
            InitSpawn::decide(&none, Isolation::Oci, &ns),
            InitSpawn::Direct
        );
    }
}
