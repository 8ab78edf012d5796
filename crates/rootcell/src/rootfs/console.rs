//! The filesystem side of `process.terminal`: the container's own pty
//! multiplexer, and the `/dev/console` bind of the pty peer. Init does both
//! after the root switch, when `/dev/pts` is the container's devpts; an
//! `exec`'d process with a terminal opens the multiplexer in init's root.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use pathrs::flags::OpenFlags;

use super::{Rootfs, PROC_SUPER_MAGIC, SYSFS_MAGIC};
use crate::error::{Error, IoContext, Result};
use crate::fs::mount::{attach, clone_fd};
use crate::fs::{dev, procfs, RootDir};

/// `DEVPTS_SUPER_MAGIC` of statfs(2).
const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
/// The pty multiplexer of a devpts instance is the character device 5:2.
const PTMX: (u32, u32) = (5, 2);

const PTMX_PATH: &str = "/dev/pts/ptmx";
const CONSOLE_PATH: &str = "/dev/console";

/// Opens a new pty master from the devpts instance mounted on `/dev/pts`
/// inside `root`: the container's own, for init after the root switch and
/// for `exec`'s process (whose `root` is init's).
///
/// `/dev/pts/ptmx` lives in the container and is hostile until checked
/// (DESIGN.md rule 4): it is looked up inside the root without following a
/// final symlink, as `O_PATH` (nothing is opened yet: a fifo there would
/// hang an open, some devices act on open), and must be the character
/// device 5:2 on a devpts filesystem. Only then is that very inode opened,
/// through the private procfs.
pub fn open_ptmx(root: &RootDir) -> Result<OwnedFd> {
    let field = format!("process.terminal: {PTMX_PATH} in the container");
    let fd = root.resolve_nofollow(Path::new(PTMX_PATH)).ctx(|| {
        format!("{field} (a terminal needs a devpts mounted on /dev/pts, with newinstance)")
    })?;
    let on_devpts = rustix::fs::fstatfs(&fd)
        .ctx(|| format!("{field}: statfs"))?
        .f_type
        == DEVPTS_SUPER_MAGIC;
    let is_ptmx = dev::is_char_device(&fd, PTMX.0, PTMX.1).ctx(|| format!("{field}: stat"))?;
    if !on_devpts || !is_ptmx {
        return Err(Error::Other(format!(
            "{field} is not the pty multiplexer of a devpts filesystem (character device 5:2 on devpts); refusing to use it"
        )));
    }
    procfs::reopen(
        &fd,
        OpenFlags::O_RDWR | OpenFlags::O_NOCTTY | OpenFlags::O_CLOEXEC,
    )
    .ctx(|| format!("{field}: open"))
}

impl Rootfs {
    /// `open_ptmx` in the container's root, once it is switched to.
    pub fn open_ptmx(&self) -> Result<OwnedFd> {
        open_ptmx(&self.root)
    }

    /// Bind-mounts the pty peer on `/dev/console`, as runc does.
    ///
    /// The mount is cloned from the peer fd itself (`open_tree` on the fd
    /// `TIOCGPTPEER` returned): the very pty, with no lookup of its
    /// `/dev/pts/N` name. The mountpoint is created as an empty regular
    /// file if missing; a symlink there is replaced, never followed; it
    /// must not be on procfs or sysfs (a `/dev` linked into `/proc`).
    pub fn mount_console(&self, peer: BorrowedFd<'_>) -> Result<()> {
        let field = format!("process.terminal: {CONSOLE_PATH}");
        let (dir, name) = self
            .root
            .parent_of(Path::new(CONSOLE_PATH))
            .ctx(|| field.clone())?;
        let target =
            dev::file_mount_target(dir.as_fd(), name).ctx(|| format!("{field}: mountpoint"))?;
        let fs = rustix::fs::fstatfs(&target)
            .ctx(|| format!("{field}: statfs"))?
            .f_type;
        if fs == PROC_SUPER_MAGIC || fs == SYSFS_MAGIC {
            return Err(Error::Other(format!(
                "{field} resolves into procfs or sysfs inside the container; refusing to mount the terminal there"
            )));
        }
        let tree = clone_fd(peer, false).ctx(|| format!("{field}: bind of the pty"))?;
        attach(tree.as_fd(), target.as_fd()).ctx(|| format!("{field}: attach"))
    }
}
