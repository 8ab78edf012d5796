//! The host sources of a view (the rootfs and every volume), identified at
//! `create` and checked by that identity when a view is built.
//!
//! A view is built later than the container, by path, from the host side:
//! a container allowed to write above one of its volumes' host sources (a
//! volume that contains another volume's source, a shared parent) could
//! meanwhile replace that source with a symlink to `/`, and a view that
//! followed it would attach the host's root where the volume was, for
//! `cp` to write into. So `create` records the device and inode each
//! source leads to (`identify`, while init mounts them), and a view opens
//! the source once and attaches it only if that fd is still the same file
//! or directory (`open_identified`): a source removed, replaced, swapped
//! for a symlink elsewhere or with something mounted over it since is
//! refused, never attached. Only the very file the container was given
//! matches (a rename of it is harmless: it is still the container's).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{fstat, Mode, OFlags};

use super::plan::{SourceId, ViewPlan};
use crate::error::{Error, Result};

/// Fills in the identity of the rootfs and of every volume source of
/// `plan`, as they are now (two syscalls each). A source that cannot be
/// identified (missing, unreadable) is left without one: the container's
/// own mount of it fails with its own error, and a view refuses it.
pub fn identify(plan: &mut ViewPlan) {
    plan.rootfs_id = identify_path(&plan.rootfs);
    for m in &mut plan.mounts {
        m.source_id = identify_path(&m.source);
    }
}

fn identify_path(path: &Path) -> Option<SourceId> {
    let st = fstat(open_source(path).ok()?).ok()?;
    Some(SourceId {
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// `O_PATH`: opening never blocks (a fifo) nor reads anything.
fn open_source(path: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
}

/// Opens `path` (recorded at create as `id`) for a view: an error naming
/// `what` unless the fd is still the very file or directory the container
/// was given.
pub fn open_identified(what: &str, path: &Path, id: Option<&SourceId>) -> Result<OwnedFd> {
    let refuse = |why: &str| Error::Other(format!("{what}: {}: {why}", path.display()));
    let id = id.ok_or_else(|| {
        refuse(
            "its identity was not recorded at create (a container created by an older \
             rootcell, or the source was missing then): recreate the container to copy \
             from or into it",
        )
    })?;
    let describe = |e: rustix::io::Errno| refuse(&super::describe(&e.into()));
    let fd = open_source(path).map_err(describe)?;
    let st = fstat(fd.as_fd()).map_err(describe)?;
    if (st.st_dev, st.st_ino) != (id.dev, id.ino) {
        return Err(refuse(
            "no longer what the container was given at create (replaced, swapped for a \
             symlink or mounted over since): refusing to attach it",
        ));
    }
    Ok(fd)
}
