//! Views for a caller without privileges over the host (rootless).
//!
//! A view is a mount namespace of its own, which needs `CAP_SYS_ADMIN` in
//! the user namespace owning the caller's mount namespace. A rootless
//! caller has it only in a user namespace of its own, and the view's
//! thread cannot make one: the kernel refuses `CLONE_NEWUSER` (`unshare`
//! and `setns`) to a multithreaded process. So `enter_for` runs first,
//! while the process is single-threaded: it makes a user namespace with
//! the container's own id mapping (recorded at create; `newuidmap` and
//! `newgidmap` write it where it maps more than the caller's own ids, as
//! at create) and joins it. The view built afterwards sees the container's
//! files with the container's ids, as the container does, and can do
//! nothing the container's root could not: its mounts are copies the
//! kernel locks, and host files not mapped there keep their owners' rules.

use crate::container::Runtime;
use crate::error::{Error, IoContext, Result};
use crate::plan::IdMapping;
use crate::process::{ids, sys};
use crate::state::ContainerDir;

/// Enters a user namespace with container `id`'s id mapping when the
/// caller lacks `CAP_SYS_ADMIN` (a rootless caller); does nothing
/// otherwise. Must be called while the process is single-threaded (before
/// any `View` exists); `rootcell cp` and `rootcell stat` call it first.
pub fn enter_for(runtime: &Runtime, id: &str) -> Result<()> {
    if caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_ADMIN,
    )
    .unwrap_or(false)
    {
        return Ok(());
    }
    let dir = ContainerDir::open(&runtime.root, id, false)?;
    let state = dir.load()?;
    drop(dir);
    let plan = state.view.ok_or_else(|| {
        Error::Other(format!(
            "{id}: no view was recorded at create (a container created by an older rootcell): \
             recreate the container to copy from or into it"
        ))
    })?;
    let (uids, gids) = mapping(&plan.ids.uid_mappings, &plan.ids.gid_mappings);
    let ns = ids::user_namespace_with(&uids, &gids)
        .map_err(|e| Error::Other(format!("{id}: a user namespace for the view: {e}")))?;
    sys::setns(&ns, libc::CLONE_NEWUSER)
        .ctx(|| format!("{id}: joining a user namespace for the view"))
}

/// The container's mapping, or (a container without one) the caller's own
/// ids mapped onto themselves.
fn mapping(uids: &[IdMapping], gids: &[IdMapping]) -> (Vec<IdMapping>, Vec<IdMapping>) {
    let own = |id: u32| {
        vec![IdMapping {
            container_id: id,
            host_id: id,
            size: 1,
        }]
    };
    if uids.is_empty() || gids.is_empty() {
        (
            own(rustix::process::geteuid().as_raw()),
            own(rustix::process::getegid().as_raw()),
        )
    } else {
        (uids.to_vec(), gids.to_vec())
    }
}

/// Whether this process's user namespace maps ids exactly as the
/// container's does: then the ids a view shows are the container's own
/// (no mapping to apply), as after `enter_for`. In the initial user
/// namespace the maps are `0 0 4294967295`, never a container's.
pub fn sees_container_ids(uids: &[IdMapping], gids: &[IdMapping]) -> bool {
    !uids.is_empty() && matches!(ids::maps_of_self(), Ok((u, g)) if u == uids && g == gids)
}
