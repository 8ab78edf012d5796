//! Device nodes and symlinks, created relative to a directory fd that was
//! resolved inside the container root: never through a path string that
//! could be a symlink to the host.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{
    chownat, fstat, mknodat, openat, readlinkat, symlinkat, unlinkat, AtFlags, FileType, Gid, Mode,
    OFlags, Uid,
};
use rustix::io::Errno;

use crate::plan::{DeviceKind, DeviceNode};

/// `mknodat` + `chownat` of `node` as `name` in `dir`. The caller has set
/// the umask to 0, so the node gets exactly the planned mode.
pub fn make_node(dir: BorrowedFd<'_>, name: &Path, node: &DeviceNode) -> rustix::io::Result<()> {
    let file_type = match node.kind {
        DeviceKind::Char => FileType::CharacterDevice,
        DeviceKind::Block => FileType::BlockDevice,
        DeviceKind::Fifo => FileType::Fifo,
    };
    let mode = Mode::from_raw_mode(node.mode);
    let dev = rustix::fs::makedev(node.major as u32, node.minor as u32);
    match mknodat(dir, name, file_type, mode, dev) {
        Err(Errno::EXIST) => {
            // An existing node is kept only if it is the same device.
            let fd = openat(
                dir,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let st = fstat(&fd)?;
            if FileType::from_raw_mode(st.st_mode) != file_type || st.st_rdev != dev {
                unlinkat(dir, name, AtFlags::empty())?;
                mknodat(dir, name, file_type, mode, dev)?;
            }
        }
        other => other?,
    }
    chownat(
        dir,
        name,
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
}

/// Creates an empty regular file to bind a host device node onto.
pub fn make_bind_target(dir: BorrowedFd<'_>, name: &Path) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::WRONLY;
    match openat(dir, name, flags | OFlags::EXCL, Mode::from_raw_mode(0o644)) {
        Err(Errno::EXIST) => {
            unlinkat(dir, name, AtFlags::empty())?;
            openat(dir, name, flags | OFlags::EXCL, Mode::from_raw_mode(0o644))
        }
        other => other,
    }
}

/// A mount target for a file bind at `name` in `dir` (`/dev/console`): an
/// existing file, device node or other non-directory is kept and never
/// opened (`O_PATH`); a symlink is replaced by an empty regular file, since
/// mounting on it would mount on whatever it points to; a missing one is
/// created `O_EXCL`. A directory is `EISDIR`.
pub fn file_mount_target(dir: BorrowedFd<'_>, name: &Path) -> rustix::io::Result<OwnedFd> {
    match openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => match FileType::from_raw_mode(fstat(&fd)?.st_mode) {
            FileType::Directory => Err(Errno::ISDIR),
            FileType::Symlink => make_bind_target(dir, name),
            _ => Ok(fd),
        },
        Err(Errno::NOENT) => make_bind_target(dir, name),
        Err(e) => Err(e),
    }
}

/// Creates `name -> target` in `dir`. An existing symlink to the same target
/// is kept; any other non-directory is replaced.
pub fn symlink(dir: BorrowedFd<'_>, name: &Path, target: &Path) -> rustix::io::Result<()> {
    match symlinkat(target, dir, name) {
        Err(Errno::EXIST) => {
            if let Ok(existing) = readlinkat(dir, name, Vec::new()) {
                if existing.as_bytes() == target.as_os_str().as_encoded_bytes() {
                    return Ok(());
                }
            }
            unlinkat(dir, name, AtFlags::empty())?;
            symlinkat(target, dir, name)
        }
        other => other,
    }
}

/// Whether `fd` is the character device `major:minor`.
pub fn is_char_device(fd: impl AsFd, major: u32, minor: u32) -> rustix::io::Result<bool> {
    Ok(is_char(&fstat(fd)?, major, minor))
}

/// Whether `st` is the null device (character device 1:3).
pub fn is_null_device(st: &rustix::fs::Stat) -> bool {
    is_char(st, 1, 3)
}

fn is_char(st: &rustix::fs::Stat, major: u32, minor: u32) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
        && st.st_rdev == rustix::fs::makedev(major, minor)
}

/// Whether `fd` is the device `kind` `major:minor`.
pub fn is_device(
    fd: impl AsFd,
    kind: DeviceKind,
    major: u64,
    minor: u64,
) -> rustix::io::Result<bool> {
    let st = fstat(fd)?;
    let wanted = match kind {
        DeviceKind::Char => FileType::CharacterDevice,
        DeviceKind::Block => FileType::BlockDevice,
        DeviceKind::Fifo => return Ok(FileType::from_raw_mode(st.st_mode) == FileType::Fifo),
    };
    Ok(FileType::from_raw_mode(st.st_mode) == wanted
        && (
            u64::from(rustix::fs::major(st.st_rdev)),
            u64::from(rustix::fs::minor(st.st_rdev)),
        ) == (major, minor))
}

/// The host's name of a device under `/dev`, from the kernel's own record
/// (`/sys/dev/{char,block}/M:m/uevent`, line `DEVNAME=`): where a node
/// must be bound from the host and the config names it differently
/// (`linux.devices` `/dev/mynull` for 1:3 is the host's `/dev/null`).
pub fn host_device_path(kind: DeviceKind, major: u64, minor: u64) -> Option<std::path::PathBuf> {
    let class = match kind {
        DeviceKind::Char => "char",
        DeviceKind::Block => "block",
        DeviceKind::Fifo => return None,
    };
    let uevent =
        std::fs::read_to_string(format!("/sys/dev/{class}/{major}:{minor}/uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    // A name from sysfs stays below /dev.
    if name.is_empty() || name.split('/').any(|c| c == ".." || c.is_empty()) {
        return None;
    }
    Some(Path::new("/dev").join(name))
}
