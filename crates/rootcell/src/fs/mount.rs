//! The new mount API (Linux 5.2+, `mount_setattr` 5.12+): filesystems and
//! bind trees are built detached, configured through their fd, and attached
//! to an fd of the mountpoint. No path is resolved twice.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    open_tree, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};

use crate::plan::options::attr;
use crate::plan::{AttrChange, FsOption, PropagationChange};

/// Creates a new filesystem instance, detached. `attrs.set` become the
/// mount's attributes.
pub fn fresh(
    fstype: &str,
    source: &str,
    options: &[FsOption],
    attrs: u64,
) -> Result<OwnedFd, FreshError> {
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| FreshError::new("fsopen", fstype, e))?;
    // `source` is informational for virtual filesystems but required by some.
    if !source.is_empty() {
        fsconfig_set_string(&fs, "source", source)
            .map_err(|e| FreshError::new("source", source, e))?;
    }
    for option in options {
        let result = match option {
            FsOption::Flag(key) => fsconfig_set_flag(&fs, key.as_str()),
            FsOption::Value(key, value) => fsconfig_set_string(&fs, key.as_str(), value.as_str()),
        };
        result.map_err(|e| FreshError::new("option", &option.to_string(), e))?;
    }
    fsconfig_create(&fs).map_err(|e| FreshError::new("create", fstype, e))?;
    fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::from_bits_retain(attrs as u32),
    )
    .map_err(|e| FreshError::new("fsmount", fstype, e))
}

/// Why `fresh` failed: which step, with which value.
#[derive(Debug)]
pub struct FreshError {
    pub step: &'static str,
    pub what: String,
    pub errno: rustix::io::Errno,
}

impl FreshError {
    fn new(step: &'static str, what: &str, errno: rustix::io::Errno) -> Self {
        FreshError {
            step,
            what: what.to_string(),
            errno,
        }
    }
}

impl std::fmt::Display for FreshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let io: std::io::Error = self.errno.into();
        match self.step {
            "option" => write!(f, "the kernel refused option {:?}: {io}", self.what),
            "fsopen" => write!(f, "filesystem type {:?}: {io}", self.what),
            "create" if self.errno == rustix::io::Errno::PERM => write!(
                f,
                "the kernel refused to create a {:?} filesystem: {io} (most filesystems cannot be mounted in a user namespace)",
                self.what
            ),
            _ => write!(f, "{} {:?}: {io}", self.step, self.what),
        }
    }
}

/// Clones the mount tree at a host path (a bind source), detached.
pub fn clone_path(source: &Path, recursive: bool) -> rustix::io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    open_tree(rustix::fs::CWD, source, flags)
}

/// Clones the mount tree at an already-open fd, detached.
pub fn clone_fd(fd: BorrowedFd<'_>, recursive: bool) -> rustix::io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_EMPTY_PATH;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    open_tree(fd, "", flags)
}

/// Attaches a detached mount onto the inode `target` refers to.
pub fn attach(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> rustix::io::Result<()> {
    move_mount(
        mount,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
}

/// `struct mount_attr` of linux/mount.h (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const AT_EMPTY_PATH: u32 = libc::AT_EMPTY_PATH as u32;
const AT_RECURSIVE: u32 = 0x8000;

/// `mount_setattr(2)`, which rustix does not wrap. Changes attributes and
/// propagation of the mount `fd` refers to (and below it, if `recursive`).
fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &MountAttr) -> rustix::io::Result<()> {
    mount_setattr_raw(fd.as_raw_fd(), c"", AT_EMPTY_PATH, recursive, attr)
}

/// `mount_setattr(AT_FDCWD, path, [AT_RECURSIVE], {set, clear})` on a
/// mount of the caller's namespace. Allocation-free: used between fork and
/// execve (`process::sys::daemon_in_child`).
pub fn set_attrs_at_path(
    path: &std::ffi::CStr,
    recursive: bool,
    set: u64,
    clear: u64,
) -> rustix::io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr_raw(libc::AT_FDCWD, path, 0, recursive, &attr)
}

fn mount_setattr_raw(
    dirfd: std::os::fd::RawFd,
    path: &std::ffi::CStr,
    flags: u32,
    recursive: bool,
    attr: &MountAttr,
) -> rustix::io::Result<()> {
    let flags = flags | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `path` is a valid C string, `attr` points to a live struct of
    // the size passed; the kernel only reads them. Nothing allocates.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(rustix::io::Errno::from_raw_os_error(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL),
        ))
    }
}

/// Sets and clears mount attributes (`ro`, `nosuid`, atime...).
pub fn set_attrs(fd: impl AsFd, change: AttrChange, recursive: bool) -> rustix::io::Result<()> {
    if change.is_empty() {
        return Ok(());
    }
    mount_setattr(
        fd.as_fd(),
        recursive,
        &MountAttr {
            attr_set: change.set,
            attr_clr: change.clear,
            propagation: 0,
            userns_fd: 0,
        },
    )
}

/// Changes the propagation type of an attached mount.
pub fn set_propagation(fd: impl AsFd, change: PropagationChange) -> rustix::io::Result<()> {
    mount_setattr(
        fd.as_fd(),
        change.recursive,
        &MountAttr {
            attr_set: 0,
            attr_clr: 0,
            propagation: change.kind.ms_flag(),
            userns_fd: 0,
        },
    )
}

/// Makes a detached mount tree (fresh from `open_tree(OPEN_TREE_CLONE)`)
/// idmapped with the mappings of the user namespace `userns`. The kernel
/// copies the mappings, so the namespace may go away afterwards.
pub fn set_idmap(fd: impl AsFd, userns: BorrowedFd<'_>, recursive: bool) -> rustix::io::Result<()> {
    mount_setattr(
        fd.as_fd(),
        recursive,
        &MountAttr {
            attr_set: crate::plan::options::attr::IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        },
    )
}

/// Changes the propagation of the mount at `path` (a mount point the
/// runtime chose, such as `/` of its own namespace).
pub fn set_propagation_at(path: &Path, change: PropagationChange) -> rustix::io::Result<()> {
    use crate::plan::Propagation;
    use rustix::mount::MountPropagationFlags as F;
    let mut flags = match change.kind {
        Propagation::Private => F::PRIVATE,
        Propagation::Shared => F::SHARED,
        Propagation::Slave => F::DOWNSTREAM,
        Propagation::Unbindable => F::UNBINDABLE,
    };
    if change.recursive {
        flags |= F::REC;
    }
    rustix::mount::mount_change(path, flags)
}

/// The id of the mount `fd` lies on, and whether `fd` is that mount's root.
pub fn mount_of(fd: impl AsFd) -> rustix::io::Result<(u64, bool)> {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags};
    let st = statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?;
    let root = st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
    Ok((st.stx_mnt_id, root))
}

/// The flags among `wanted` (`MOUNT_ATTR_RDONLY`, `_NOSUID`, `_NODEV`,
/// `_NOEXEC`) that the mount at `fd` lacks, read back with `fstatvfs`: the
/// kernel reports a mount's own flags in `f_flag` (`ST_RDONLY`...), the
/// same for a detached mount fd as for an attached one.
pub fn missing_attrs(fd: impl AsFd, wanted: u64) -> rustix::io::Result<u64> {
    let flags = rustix::fs::fstatvfs(fd)?.f_flag;
    Ok(attrs_missing(wanted, flags))
}

/// Pure part of `missing_attrs`: `MOUNT_ATTR_*` bits of `wanted` whose
/// `ST_*` bit is not in `st_flags`. Other attributes (atime...) are not
/// checked.
pub fn attrs_missing(wanted: u64, st_flags: rustix::fs::StatVfsMountFlags) -> u64 {
    use rustix::fs::StatVfsMountFlags as St;
    let pairs = [
        (attr::RDONLY, St::RDONLY),
        (attr::NOSUID, St::NOSUID),
        (attr::NODEV, St::NODEV),
        (attr::NOEXEC, St::NOEXEC),
    ];
    pairs
        .iter()
        .filter(|(a, st)| wanted & a != 0 && !st_flags.contains(*st))
        .fold(0, |acc, (a, _)| acc | a)
}

/// Names of `MOUNT_ATTR_*` bits, for messages.
pub fn attr_names(attrs: u64) -> String {
    [
        (attr::RDONLY, "ro"),
        (attr::NOSUID, "nosuid"),
        (attr::NODEV, "nodev"),
        (attr::NOEXEC, "noexec"),
    ]
    .iter()
    .filter(|(a, _)| attrs & a != 0)
    .map(|(_, n)| *n)
    .collect::<Vec<_>>()
    .join(",")
}

#[cfg(test)]
mod verify_tests {
    use super::*;
    use rustix::fs::StatVfsMountFlags as St;

    #[test]
    fn missing_flags_are_found() {
        let wanted = attr::RDONLY | attr::NOSUID | attr::NOEXEC;
        assert_eq!(
            attrs_missing(wanted, St::RDONLY | St::NOSUID | St::NOEXEC),
            0
        );
        assert_eq!(
            attrs_missing(wanted, St::NOSUID),
            attr::RDONLY | attr::NOEXEC
        );
        assert_eq!(attrs_missing(attr::NODEV, St::RDONLY), attr::NODEV);
        // Flags not asked for are not required; atime is not checked.
        assert_eq!(attrs_missing(attr::NOATIME, St::empty()), 0);
        assert_eq!(attr_names(attr::RDONLY | attr::NOEXEC), "ro,noexec");
    }

    #[test]
    fn a_detached_tmpfs_reports_its_flags() {
        // Creating a tmpfs needs CAP_SYS_ADMIN: skip quietly otherwise.
        let Ok(fd) = fresh("tmpfs", "tmpfs", &[], attr::RDONLY | attr::NOSUID) else {
            return;
        };
        assert_eq!(missing_attrs(&fd, attr::RDONLY | attr::NOSUID).unwrap(), 0);
        assert_eq!(missing_attrs(&fd, attr::NOEXEC).unwrap(), attr::NOEXEC);
    }
}
