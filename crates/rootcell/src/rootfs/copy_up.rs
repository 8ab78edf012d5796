//! `tmpcopyup`: copies what a directory of the rootfs holds into the tmpfs
//! that is about to cover it. Both sides are walked by fd with `O_NOFOLLOW`:
//! symlinks are copied as symlinks, never followed, so a hostile image
//! cannot make us read host files.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{
    fchmod, fchown, mkdirat, mknodat, openat, readlinkat, statat, symlinkat, AtFlags, Dir,
    FileType, Gid, Mode, OFlags, Uid,
};

/// Copies the content of directory `from` into directory `to`.
pub fn copy_tree(from: &OwnedFd, to: &OwnedFd) -> io::Result<()> {
    let src = reopen_dir(from.as_fd())?;
    let dst = openat(
        to,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    copy_dir(src.as_fd(), dst.as_fd(), 0)
}

fn reopen_dir(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn copy_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, depth: usize) -> io::Result<()> {
    if depth > 64 {
        return Err(io::Error::other("directory tree too deep to copy"));
    }
    let st = rustix::fs::fstat(src)?;
    fchmod(dst, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    fchown(
        dst,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    let mut dir = Dir::read_from(src)?;
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        let owner = (
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
        );
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                mkdirat(dst, name, mode)?;
                let from = openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let to = openat(
                    dst,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                copy_dir(from.as_fd(), to.as_fd(), depth + 1)?;
            }
            FileType::RegularFile => {
                let from = openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let to = openat(
                    dst,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    mode,
                )?;
                let mut reader = std::fs::File::from(from);
                let mut writer = std::fs::File::from(to);
                io::copy(&mut reader, &mut writer)?;
                fchmod(&writer, mode)?;
                fchown(&writer, owner.0, owner.1)?;
            }
            FileType::Symlink => {
                let target = readlinkat(src, name, Vec::new())?;
                symlinkat(target.as_c_str(), dst, name)?;
                rustix::fs::chownat(dst, name, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)?;
            }
            kind @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                mknodat(dst, name, kind, mode, st.st_rdev)?;
                rustix::fs::chownat(dst, name, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)?;
            }
            _ => {} // sockets and unknown types are not copied
        }
    }
    Ok(())
}
