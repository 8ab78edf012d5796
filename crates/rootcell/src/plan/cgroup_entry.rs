//! When the container's first process enters its cgroups, relative to the
//! namespaces: this decides whether the runtime can make the cgroups while
//! stage 1 creates the namespaces (the two cost about the same, 0.5-0.7 ms
//! each here, and run on different CPUs).

use serde::Serialize;

use super::spawn::InitSpawn;
use super::{HostFacts, Isolation, Namespace, Namespaces};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CgroupEntry {
    /// The runtime makes the cgroups before it forks stage 1, which joins
    /// them first thing (or clones init straight into them:
    /// `InitSpawn::Direct`). Needed when stage 1 creates or joins a user
    /// namespace (outside the initial one it may no longer write the
    /// host's cgroup files), and when the runtime makes what it can of the
    /// cgroups (rootless, chroot isolation): the plan's cgroup mounts
    /// depend on what was made.
    BeforeNamespaces,
    /// Stage 1 creates the namespaces (all but the cgroup namespace) while
    /// the runtime makes the cgroups and writes their limits; the runtime
    /// then sends stage 1 the join files, stage 1 forks init into the v2
    /// cgroup, and init joins the v1 ones and creates the cgroup namespace
    /// before anything else (as stage 1 joins first thing on the other
    /// path). Stage 1 itself never joins: init is the container's first
    /// process in its cgroups. What stage 1's `unshare` allocates (the
    /// network and mount namespaces' kernel memory) is charged to the
    /// runtime's cgroups.
    AfterNamespaces,
}

impl CgroupEntry {
    pub fn decide(
        host: &HostFacts,
        isolation: Isolation,
        namespaces: &Namespaces,
        spawn: InitSpawn,
    ) -> CgroupEntry {
        let made_best_effort = host.rootless || isolation == Isolation::Chroot;
        // Cloned by the runtime, init is born in cgroups that exist.
        if spawn == InitSpawn::Direct
            || made_best_effort
            || namespaces.has(Namespace::User)
            || host.cgroup_mounts.is_empty()
        {
            CgroupEntry::BeforeNamespaces
        } else {
            CgroupEntry::AfterNamespaces
        }
    }
}

impl std::fmt::Display for CgroupEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CgroupEntry::BeforeNamespaces => write!(
                f,
                "cgroups: made by the runtime before stage 1, which joins them before any namespace"
            ),
            CgroupEntry::AfterNamespaces => write!(
                f,
                "cgroups: made by the runtime while stage 1 creates the namespaces; init is forked into them and creates the cgroup namespace"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{host_with_cgroup, namespaces};
    use crate::plan::resources::CgroupVersion;

    fn host(rootless: bool) -> HostFacts {
        host_with_cgroup("memory", "cgroup", CgroupVersion::V1, rootless)
    }

    #[test]
    fn root_without_a_user_namespace_makes_cgroups_alongside() {
        let ns = namespaces(&[Namespace::Pid, Namespace::Network, Namespace::Mount]);
        assert_eq!(
            CgroupEntry::decide(&host(false), Isolation::Oci, &ns, InitSpawn::Stage1),
            CgroupEntry::AfterNamespaces
        );
        assert_eq!(
            CgroupEntry::decide(&host(false), Isolation::Auto, &ns, InitSpawn::Stage1),
            CgroupEntry::AfterNamespaces
        );
    }

    #[test]
    fn init_cloned_directly_is_born_in_cgroups_made_before() {
        let ns = namespaces(&[Namespace::Pid, Namespace::Network, Namespace::Mount]);
        assert_eq!(
            CgroupEntry::decide(&host(false), Isolation::Oci, &ns, InitSpawn::Direct),
            CgroupEntry::BeforeNamespaces
        );
    }

    #[test]
    fn user_namespace_rootless_chroot_or_no_cgroups_join_first() {
        let plain = namespaces(&[Namespace::Pid, Namespace::Mount]);
        let user = namespaces(&[Namespace::User, Namespace::Pid, Namespace::Mount]);
        let mut joined = namespaces(&[Namespace::Mount]);
        joined
            .join
            .push((Namespace::User, "/proc/1/ns/user".into()));
        let no_cgroups = HostFacts::default();
        for (h, iso, ns) in [
            (host(false), Isolation::Oci, &user),
            (host(false), Isolation::Oci, &joined),
            (host(true), Isolation::Oci, &plain),
            (host(false), Isolation::Chroot, &plain),
            (no_cgroups, Isolation::Oci, &plain),
        ] {
            assert_eq!(
                CgroupEntry::decide(&h, iso, ns, InitSpawn::Stage1),
                CgroupEntry::BeforeNamespaces,
                "{iso:?} {ns:?}"
            );
        }
    }
}
