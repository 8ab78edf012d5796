//! Chroot isolation in a user namespace: the container's mounts are
//! locked, so a process with CAP_SYS_ADMIN in its user namespace cannot
//! remount a read-only bind read-write, unmount a mask or the root to see
//! what lies below, or clear nosuid/nodev/noexec.
//!
//! The kernel locks mounts (`MNT_LOCKED`, `MNT_LOCK_READONLY`, ...; see
//! `lock_mnt_tree` in fs/namespace.c) when it copies them into a new mount
//! namespace owned by a user namespace other than the one that owns the
//! source namespace. Init made every mount in a mount namespace its own
//! user namespace owns, so they are not locked; once the root is switched
//! it creates a child user namespace mapping the same ids onto themselves
//! and a new mount namespace in it, and the copies it lands in are locked.
//!
//! Only the old user namespace can write the new one's id maps (the writer
//! must be in the parent namespace with CAP_SETUID there): a forked helper,
//! still in it, writes them and exits. `unshare(CLONE_NEWUSER)` is refused
//! to a chrooted process; after `MoveRoot` the root is the mount stacked on
//! the namespace's `/`, which the kernel does not count as chrooted.

use std::io::Read;
use std::os::fd::OwnedFd;

use super::sys;
use crate::error::{Error, IoContext, Result};
use crate::fs::procfs::{self, ProcfsBase};

/// `inside outside count` lines made into `inside inside count`: the same
/// ids, seen by the parent namespace as themselves.
fn identity(map: &str) -> String {
    map.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3).then(|| format!("{} {} {}\n", f[0], f[0], f[2]))
        })
        .collect()
}

/// Moves init into a child user namespace (identity maps) and a new mount
/// namespace in it: every mount init made is locked there. Its capability
/// sets are full in the new namespace and are set from the config later.
pub(super) fn lock_mounts() -> Result<()> {
    let what = "chroot isolation: locking the mounts in a user namespace of their own";
    let uid_map = identity(&procfs::read(ProcfsBase::ProcSelf, "uid_map").ctx(|| what)?);
    let gid_map = identity(&procfs::read(ProcfsBase::ProcSelf, "gid_map").ctx(|| what)?);
    let (go_read, go_write) = rustix::pipe::pipe().ctx(|| what)?;
    // The helper writes our /proc files, which belong to the host's root
    // while we are not dumpable; no other process of the container exists
    // yet, and we are non-dumpable again before anything else runs.
    sys::prctl(libc::PR_SET_DUMPABLE, 1).ctx(|| what)?;
    let helper = match sys::fork().ctx(|| what)? {
        sys::Forked::Child => {
            drop(go_write);
            sys::exit_now(helper_writes_maps(go_read, &uid_map, &gid_map))
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(go_read);
    let unshared = sys::unshare(libc::CLONE_NEWUSER);
    if unshared.is_ok() {
        let _ = rustix::io::write(&go_write, b"x");
    }
    drop(go_write);
    let status = rustix::process::waitpid(
        Some(rustix::process::Pid::from_raw(helper).ok_or_else(|| Error::Other(what.into()))?),
        rustix::process::WaitOptions::empty(),
    );
    sys::prctl(libc::PR_SET_DUMPABLE, 0).ctx(|| what)?;
    unshared.ctx(|| format!("{what}: unshare(CLONE_NEWUSER)"))?;
    let code = status
        .ok()
        .flatten()
        .and_then(|(_, s)| s.exit_status())
        .unwrap_or(-1);
    if code != 0 {
        return Err(Error::Other(format!(
            "{what}: the id maps of the new user namespace could not be written (helper exit {code})"
        )));
    }
    sys::unshare(libc::CLONE_NEWNS).ctx(|| format!("{what}: unshare(CLONE_NEWNS)"))
}

/// The helper: waits until its parent is in the new user namespace, then
/// writes its maps (gid first is irrelevant here: the writer is privileged
/// in the parent namespace, so setgroups need not be denied).
fn helper_writes_maps(go: OwnedFd, uid_map: &str, gid_map: &str) -> i32 {
    let mut byte = [0u8; 1];
    if !matches!(std::fs::File::from(go).read(&mut byte), Ok(1)) {
        return 2;
    }
    let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32);
    let base = ProcfsBase::ProcPid(parent);
    match procfs::write(base, "uid_map", uid_map)
        .and_then(|()| procfs::write(base, "gid_map", gid_map))
    {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rootcell: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn identity_maps_the_same_ids_onto_themselves() {
        assert_eq!(
            super::identity("         0     100000      65536\n      1234       1000          1\n"),
            "0 0 65536\n1234 1234 1\n"
        );
        assert_eq!(super::identity(""), "");
    }
}
