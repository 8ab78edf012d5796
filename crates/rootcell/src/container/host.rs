//! Host facts in one module: what a plan depends on about the machine and
//! the runtime's caller (`plan::HostFacts`), and where the container's
//! cgroup goes. They are read here, before anything is planned (`create`,
//! `plan`), so that the plan stays pure data; `exec` needs only the LSM
//! facts.

use std::path::Path;

use crate::cgroup;
use crate::error::Result;
use crate::plan::isolation::IdRange;
use crate::plan::HostFacts;
use crate::process;
use crate::spec::Bundle;

/// Facts about the host the plan depends on, and the container's cgroup
/// (not created yet).
pub(super) fn host_facts(
    bundle: &Bundle,
    id: &str,
    rootless: bool,
) -> Result<(HostFacts, cgroup::ContainerCgroup)> {
    let cgroups_path = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref());
    // The mount table, where the cgroup hierarchies needed it, also gives
    // the proc and sysfs mounts a MoveRoot switch hides (else init reads
    // them if it switches so).
    let (hierarchies, table) = cgroup::read_hierarchies()?;
    // One read of our user namespace's id maps: the caller and whether the
    // runtime runs nested.
    let ranges = process::ids::own_namespace_ranges();
    let cg = cgroup::container_dirs(&hierarchies, cgroups_path, id);
    let host = HostFacts {
        cgroup_version: cgroup::version(&hierarchies),
        has_kcore: Path::new("/proc/kcore").exists(),
        rootless,
        cgroup_mounts: cg.mount_sources.clone(),
        nested_user_ns: ranges.is_some(),
        caller: caller(ranges),
        proc_sys_mounts: table
            .as_deref()
            .map(crate::fs::mountinfo::proc_and_sys_points),
        ..lsm_host_facts()
    };
    Ok((host, cg))
}

/// The runtime's caller when it is unprivileged (euid != 0, or root in a
/// user namespace that is not the initial one: a nested container):
/// chroot isolation gives it a user namespace, and full isolation without
/// CAP_SYS_ADMIN is refused early (`plan::isolation`).
fn caller(ranges: Option<(Vec<IdRange>, Vec<IdRange>)>) -> Option<crate::plan::isolation::Caller> {
    use caps::{CapSet, Capability};
    let uid = rustix::process::geteuid();
    if uid.is_root() && ranges.is_none() {
        return None;
    }
    let has = |cap| caps::has_cap(None, CapSet::Effective, cap).unwrap_or(false);
    // Root in its user namespace with CAP_SETUID and CAP_SETGID may map
    // every id of it into a new one.
    let (namespace_uids, namespace_gids) = match ranges {
        Some((uids, gids))
            if uid.is_root() && has(Capability::CAP_SETUID) && has(Capability::CAP_SETGID) =>
        {
            (uids, gids)
        }
        _ => (Vec::new(), Vec::new()),
    };
    Some(crate::plan::isolation::Caller {
        uid: uid.as_raw(),
        gid: rustix::process::getegid().as_raw(),
        subordinate_ids: !uid.is_root() && process::ids::has_subordinate_ids(uid.as_raw()),
        namespace_uids,
        namespace_gids,
        sys_admin: has(Capability::CAP_SYS_ADMIN),
    })
}

/// The host facts a process plan needs: which LSMs can apply labels.
pub(super) fn lsm_host_facts() -> HostFacts {
    HostFacts {
        selinux: Path::new("/sys/fs/selinux/enforce").exists(),
        apparmor: apparmor_enabled(),
        ..HostFacts::default()
    }
}

/// AppArmor is enabled when its module parameter says so (as runc checks).
fn apparmor_enabled() -> bool {
    std::fs::read("/sys/module/apparmor/parameters/enabled")
        .map(|v| v.starts_with(b"Y"))
        .unwrap_or(false)
}
