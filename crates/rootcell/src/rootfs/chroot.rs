//! Chroot isolation's part of mounting: the host's mount bound where a
//! fresh `proc`, `sysfs`, `devpts` or `mqueue` was refused, and the flags
//! of every config mount read back after mounting.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags};

use crate::error::{Error, IoContext, Result};
use crate::fs::mount::{self as mnt, clone_path};
use crate::plan::options::attr;
use crate::plan::resources::rules_allow_open;
use crate::plan::{AttrChange, DeviceKind, DeviceNode, DeviceRule, HostFallback, MountStep};

/// Chroot isolation: the host's mount bound where a fresh one was
/// refused, with the step's attributes (read-only for `/sys`).
pub(super) fn host_fallback(
    m: &MountStep,
    fallback: &HostFallback,
    refused: &mnt::FreshError,
    field: &str,
) -> Result<OwnedFd> {
    let what = format!(
        "{field}: a fresh mount was refused ({refused}); binding the host's {}",
        fallback.source.display()
    );
    tracing::info!("{what}");
    let tree = clone_path(&fallback.source, fallback.recursive).ctx(|| what.clone())?;
    let mut attrs = AttrChange {
        set: m.attrs.set | m.recursive_attrs.set,
        clear: m.attrs.clear | m.recursive_attrs.clear,
    };
    if fallback.read_only {
        attrs.set |= attr::RDONLY;
    }
    mnt::set_attrs(&tree, attrs, fallback.recursive).ctx(|| format!("{what}: mount attributes"))?;
    Ok(tree)
}

/// Chroot isolation: the read-only, nosuid, nodev and noexec flags a
/// config mount asked for must really be set on it (a kernel or a
/// filesystem that silently ignored one is an error, not a warning). A
/// `/sys` bound from the host in place of a fresh one must be read-only.
pub(super) fn verify_flags(tree: &OwnedFd, m: &MountStep, extra: u64, field: &str) -> Result<()> {
    let wanted = m.attrs.set | m.recursive_attrs.set | extra;
    let missing = mnt::missing_attrs(tree, wanted).ctx(|| format!("{field}: statfs"))?;
    if missing != 0 {
        return Err(Error::Other(format!(
            "{field}: the mount lacks {} after mounting (the kernel did not apply them)",
            mnt::attr_names(missing)
        )));
    }
    Ok(())
}

/// The device type letter and number of a character or block device,
/// None for anything else.
fn device_of(st: &rustix::fs::Stat) -> Option<(char, u32, u32)> {
    let kind = match rustix::fs::FileType::from_raw_mode(st.st_mode) {
        rustix::fs::FileType::CharacterDevice => 'c',
        rustix::fs::FileType::BlockDevice => 'b',
        _ => return None,
    };
    Some((
        kind,
        rustix::fs::major(st.st_rdev),
        rustix::fs::minor(st.st_rdev),
    ))
}

/// Chroot isolation with device rules no cgroup holds: a config mount that
/// binds a device node the rules deny is refused (binding it would give
/// the container the device).
pub(super) fn check_bound_device(tree: &OwnedFd, rules: &[DeviceRule], field: &str) -> Result<()> {
    let st = rustix::fs::fstat(tree).ctx(|| format!("{field}: stat of the source"))?;
    match device_of(&st) {
        Some((kind, major, minor)) if !rules_allow_open(rules, kind, major, minor) => {
            Err(Error::Other(format!(
                "{field}: the source is the device {kind} {major}:{minor}, which linux.resources.devices deny: chroot isolation meets the rules by not binding it"
            )))
        }
        _ => Ok(()),
    }
}

/// Chroot isolation with the host's `/dev` bound: a planned node must be
/// the host's node of the same type and number (nothing is created in the
/// host's `/dev`).
pub(super) fn check_host_node(
    dir: BorrowedFd<'_>,
    name: &Path,
    d: &DeviceNode,
    field: &str,
) -> Result<()> {
    let what = format!(
        "{field}: the host's /dev is bound in place of a refused tmpfs, and it has no {} {}:{} there",
        match d.kind {
            DeviceKind::Char => "character device",
            DeviceKind::Block => "block device",
            DeviceKind::Fifo => "fifo",
        },
        d.major,
        d.minor
    );
    let st = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .and_then(|fd| rustix::fs::fstat(&fd))
    .map_err(|e| Error::Other(format!("{what} ({e})")))?;
    let wanted = match d.kind {
        DeviceKind::Char => rustix::fs::FileType::CharacterDevice,
        DeviceKind::Block => rustix::fs::FileType::BlockDevice,
        DeviceKind::Fifo => rustix::fs::FileType::Fifo,
    };
    let same_number = d.kind == DeviceKind::Fifo
        || (
            u64::from(rustix::fs::major(st.st_rdev)),
            u64::from(rustix::fs::minor(st.st_rdev)),
        ) == (d.major, d.minor);
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != wanted || !same_number {
        return Err(Error::Other(what));
    }
    Ok(())
}

/// Chroot isolation with the host's `/dev` bound and device rules no
/// cgroup holds: every character or block device in it (on the same
/// filesystem, a few levels deep) that the rules deny is covered by a bind
/// of its `/dev/null`, so the container cannot open it.
pub(super) fn cover_denied_nodes(dev: &OwnedFd, rules: &[DeviceRule], field: &str) -> Result<()> {
    let null = rustix::fs::openat(
        dev,
        "null",
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("{field}: the host's /dev/null"))?;
    if !crate::fs::dev::is_char_device(&null, 1, 3).ctx(|| format!("{field}: /dev/null"))? {
        return Err(Error::Other(format!(
            "{field}: the host's /dev/null is not the null device (1:3)"
        )));
    }
    let root_dev = rustix::fs::fstat(dev).ctx(|| field.to_string())?.st_dev;
    let top = rustix::fs::openat(
        dev,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("{field}: open"))?;
    cover_in(top, Path::new("/dev"), root_dev, 4, rules, &null, field)
}

fn cover_in(
    dir: OwnedFd,
    path: &Path,
    root_dev: u64,
    depth: usize,
    rules: &[DeviceRule],
    null: &OwnedFd,
    field: &str,
) -> Result<()> {
    let mut entries =
        rustix::fs::Dir::new(dir).ctx(|| format!("{field}: read {}", path.display()))?;
    while let Some(entry) = entries.read() {
        let entry = entry.ctx(|| format!("{field}: read {}", path.display()))?;
        let name = entry.file_name().to_owned();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let Ok(fd) = entries.fd() else { continue };
        let Ok(st) = rustix::fs::statat(fd, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let child = path.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        let file_type = rustix::fs::FileType::from_raw_mode(st.st_mode);
        if file_type == rustix::fs::FileType::Directory {
            // Another filesystem (pts, shm, mqueue) is not walked.
            if depth > 0 && st.st_dev == root_dev {
                let sub = rustix::fs::openat(
                    fd,
                    name.as_c_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ctx(|| format!("{field}: open {}", child.display()))?;
                cover_in(sub, &child, root_dev, depth - 1, rules, null, field)?;
            }
            continue;
        }
        let Some((kind, major, minor)) = device_of(&st) else {
            continue;
        };
        if rules_allow_open(rules, kind, major, minor) {
            continue;
        }
        let target = rustix::fs::openat(
            fd,
            name.as_c_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("{field}: {}", child.display()))?;
        let cover = mnt::clone_fd(null.as_fd(), false)
            .ctx(|| format!("{field}: covering {}", child.display()))?;
        mnt::attach(cover.as_fd(), target.as_fd())
            .ctx(|| format!("{field}: covering {}", child.display()))?;
    }
    Ok(())
}
