//! `unpack`: a tar stream → a directory inside a root.

use std::ffi::OsStr;
use std::io::{self, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    fchmod, fchown, futimens, linkat, mkdirat, mknodat, openat, openat2, statat, symlinkat,
    unlinkat, utimensat, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps,
};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};
use tar::{Archive, EntryType, Header};

use super::guard::*;
use super::xattr;
use super::*;
use crate::fs::procfs::{self, ProcfsBase};
use crate::fs::RootDir;
use crate::Result;
use pathrs::flags::OpenFlags;

/// Extracts a tar stream into the directory `dest` inside `root`.
pub fn unpack(root: &RootDir, dest: &Path, input: impl Read, opts: &UnpackOptions) -> Result<()> {
    let dest_fd = root
        .resolve(dest)
        .map_err(|e| io_err(dest.display().to_string(), e))?;
    let ft =
        crate::fs::root::file_type(&dest_fd).map_err(|e| io_err(dest.display().to_string(), e))?;
    if ft != FileType::Directory {
        return Err(io_err(dest.display().to_string(), Errno::NOTDIR));
    }
    // Headers are read in CHUNK-sized reads, not one read per 512-byte
    // block (big data reads bypass the buffer).
    let guard = HeaderGuard::new(BufReader::with_capacity(CHUNK, input));
    let pax = guard.entry_pax();
    let mut archive = Archive::new(guard);
    let mut u = Unpacker {
        root,
        dest,
        dest_fd,
        opts,
        dirs: Vec::new(),
        parent: None,
        buf: vec![0; CHUNK],
    };
    let entries = archive
        .entries()
        .map_err(|e| io_err("reading the tar stream", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| io_err("reading the tar stream", e))?;
        let raw = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
        let pax = pax.borrow_mut().take();
        u.entry(&raw, &mut entry, pax.as_deref())?;
    }
    // Directory mtimes last: creating their entries changed them.
    for (rel, mtime) in std::mem::take(&mut u.dirs).into_iter().rev() {
        let fd = u.open_in_dest(&rel, OFlags::RDONLY | OFlags::DIRECTORY)?;
        futimens(&fd, &times(mtime)).map_err(|e| entry_err(&rel, e))?;
    }
    Ok(())
}

/// Copies `input` into the empty file `fd`, leaving runs of zeros (a
/// sparse entry's holes, or any zero block) as holes: no disk write for
/// them, and memory bounded by one buffer (`buf`, reused for every entry).
fn write_sparse(mut input: impl Read, fd: &OwnedFd, buf: &mut [u8]) -> io::Result<()> {
    let mut pos: u64 = 0;
    // End of the last bytes written: the file's size unless it ends in
    // zeros left as a hole.
    let mut end: u64 = 0;
    loop {
        let n = match input.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        if chunk.iter().any(|&b| b != 0) {
            let mut done = 0;
            while done < n {
                done += rustix::io::pwrite(fd, &chunk[done..], pos + done as u64)?;
            }
            end = pos + n as u64;
        }
        pos += n as u64;
    }
    if end < pos {
        rustix::fs::ftruncate(fd, pos)?;
    }
    Ok(())
}

/// Counts the bytes read through it.
struct CountingReader<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// docker cp's `NoOverwriteDirNonDir` for an existing `name` in `parent`:
/// neither a directory nor a non-directory replaces the other kind; an
/// existing non-directory is removed for a non-directory entry.
fn make_room(parent: &OwnedFd, name: &Path, rel: &Path, is_dir_entry: bool) -> Result<()> {
    match statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => {
            let existing_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            if existing_dir && !is_dir_entry {
                return Err(entry_err(
                    rel,
                    "cannot overwrite a directory with a non-directory",
                ));
            }
            if !existing_dir && is_dir_entry {
                return Err(entry_err(
                    rel,
                    "cannot overwrite a non-directory with a directory",
                ));
            }
            if !existing_dir {
                unlinkat(parent, name, AtFlags::empty()).map_err(|e| entry_err(rel, e))?;
            }
            Ok(())
        }
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(entry_err(rel, e)),
    }
}

fn times(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime.min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

struct Unpacker<'a> {
    root: &'a RootDir,
    dest: &'a Path,
    dest_fd: OwnedFd,
    opts: &'a UnpackOptions,
    /// Directories created or met, with the mtime to set at the end.
    dirs: Vec<(PathBuf, u64)>,
    /// The last parent directory below the destination and its fd,
    /// resolved inside the root when first needed and kept for the next
    /// entries in it (a tar stream lists a directory's files together):
    /// the fd stays on that directory wherever it is moved, which is
    /// inside the root (a rename cannot cross the mount).
    parent: Option<(PathBuf, OwnedFd)>,
    /// The data buffer of `write_sparse`.
    buf: Vec<u8>,
}

impl Unpacker<'_> {
    /// The path inside the root of `rel` below the destination: resolved
    /// again with RESOLVE_IN_ROOT at each use, so what it names is always
    /// inside the root.
    fn in_root(&self, rel: &Path) -> PathBuf {
        self.dest.join(rel)
    }

    /// Opens `rel` (below the destination) inside the root, not following
    /// its last component.
    fn open_in_dest(&self, rel: &Path, flags: OFlags) -> Result<OwnedFd> {
        let path = self.in_root(rel);
        openat2(
            self.root.fd(),
            &path,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| entry_err(rel, e))
    }

    /// The owner (host ids) an entry gets, or None for no chown.
    fn owner(&self, rel: &Path, h: &Header) -> Result<Option<(u32, u32)>> {
        let (uid, gid) = match self.opts.ownership {
            Ownership::Caller => return Ok(None),
            Ownership::Fixed { uid, gid } => (uid, gid),
            Ownership::Archive => {
                let uid = h.uid().map_err(|e| entry_err(rel, e))?;
                let gid = h.gid().map_err(|e| entry_err(rel, e))?;
                let uid = u32::try_from(uid).map_err(|_| entry_err(rel, "uid out of range"))?;
                let gid = u32::try_from(gid).map_err(|_| entry_err(rel, "gid out of range"))?;
                (uid, gid)
            }
        };
        self.opts
            .ids
            .container_to_host(uid, gid)
            .map(Some)
            .ok_or_else(|| {
                entry_err(
                    rel,
                    format!("owner {uid}:{gid} is not mapped in the container's user namespace"),
                )
            })
    }

    fn entry<R: Read>(
        &mut self,
        raw: &Path,
        entry: &mut tar::Entry<'_, R>,
        pax: Option<&[u8]>,
    ) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName
        ) || kind == EntryType::GNULongLink
        {
            return Ok(());
        }
        let rel = match clean_name(raw) {
            Ok(Some(rel)) => rel,
            // The destination itself (`.` or `/`): docker skips a `.`
            // directory over an existing directory.
            Ok(None) if kind == EntryType::Directory => return Ok(()),
            Ok(None) => return Err(entry_err(raw, "names the destination itself")),
            Err(why) => return Err(entry_err(raw, why)),
        };
        let header = entry.header().clone();
        let xattrs = xattr::entry_xattrs(pax, &rel)?;
        let mode = header.mode().map_err(|e| entry_err(&rel, e))? & 0o7777;
        let mtime = header.mtime().map_err(|e| entry_err(&rel, e))?;
        let owner = self.owner(&rel, &header)?;
        let name = rel.file_name().map(Path::new).unwrap_or(Path::new(""));
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        // An entry directly in the destination is made in the directory
        // opened at the start (a container that renames the destination
        // meanwhile cannot make us create it again). Missing parents
        // below it are made (0755) inside the root, like docker; the last
        // one is kept for the entries that follow in it.
        let cached = if parent_rel.as_os_str().is_empty() {
            None
        } else {
            match self.parent.take() {
                Some((p, fd)) if p == parent_rel => Some((p, fd)),
                _ => {
                    let fd = self
                        .root
                        .mkdir_all(&self.in_root(parent_rel), 0o755)
                        .map_err(|e| entry_err(&rel, e))?;
                    Some((parent_rel.to_path_buf(), fd))
                }
            }
        };
        let parent = cached.as_ref().map_or(&self.dest_fd, |(_, fd)| fd);
        let is_dir_entry = kind == EntryType::Directory;
        // Files and directories are created first and checked only when
        // the name exists (one syscall less each); other kinds first.
        if !matches!(
            kind,
            EntryType::Regular
                | EntryType::Continuous
                | EntryType::GNUSparse
                | EntryType::Directory
        ) {
            make_room(parent, name, &rel, is_dir_entry)?;
        }
        let chown_fd = |fd: &OwnedFd| -> Result<()> {
            if let Some((u, g)) = owner {
                fchown(fd, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))
                    .map_err(|e| entry_err(&rel, e))?;
            }
            Ok(())
        };
        let has_fd = matches!(
            kind,
            EntryType::Regular
                | EntryType::Continuous
                | EntryType::GNUSparse
                | EntryType::Directory
        );
        if !has_fd {
            xattr::skip_all(&rel, &xattrs);
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let create = || {
                    openat(
                        parent,
                        name,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                };
                let fd = match create() {
                    Err(Errno::EXIST) => {
                        make_room(parent, name, &rel, false)?;
                        create()
                    }
                    other => other,
                }
                .map_err(|e| entry_err(&rel, e))?;
                // A stream cut short ends the entry's data early (the tar
                // crate reads it as EOF): the file would be silently short.
                // That, like any write error, fails naming the entry, and
                // the partial file is removed.
                let expected = entry.size();
                let mut data = CountingReader {
                    inner: &mut *entry,
                    bytes: 0,
                };
                let written = write_sparse(&mut data, &fd, &mut self.buf)
                    .map_err(|e| entry_err(&rel, e))
                    .and_then(|()| match data.bytes {
                        n if n < expected => Err(entry_err(
                            &rel,
                            format!("the stream ended after {n} of {expected} bytes"),
                        )),
                        _ => Ok(()),
                    });
                if let Err(e) = written {
                    let _ = unlinkat(parent, name, AtFlags::empty());
                    return Err(e);
                }
                chown_fd(&fd)?;
                // After the data and the owner: both clear a capability.
                xattr::apply(&fd, &rel, &xattrs, &self.opts.ids)?;
                fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| entry_err(&rel, e))?;
                futimens(&fd, &times(mtime)).map_err(|e| entry_err(&rel, e))?;
            }
            EntryType::Directory => {
                match mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => make_room(parent, name, &rel, true)?,
                    Err(e) => return Err(entry_err(&rel, e)),
                }
                let fd = openat(
                    parent,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| entry_err(&rel, e))?;
                chown_fd(&fd)?;
                xattr::apply(&fd, &rel, &xattrs, &self.opts.ids)?;
                fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| entry_err(&rel, e))?;
                self.dirs.push((rel.clone(), mtime));
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| entry_err(&rel, "symlink without a target"))?;
                symlinkat(OsStr::from_bytes(&target), parent, name)
                    .map_err(|e| entry_err(&rel, e))?;
                self.set_at(parent, name, &rel, owner, mtime)?;
            }
            EntryType::Link => self.hardlink(entry, parent, name, &rel)?,
            EntryType::Fifo | EntryType::Char | EntryType::Block => {
                let ft = match kind {
                    EntryType::Fifo => FileType::Fifo,
                    EntryType::Char => FileType::CharacterDevice,
                    _ => FileType::BlockDevice,
                };
                let dev = if ft == FileType::Fifo {
                    0
                } else {
                    match self.opts.devices {
                        DeviceNodes::Create => {}
                        DeviceNodes::Refuse => {
                            return Err(entry_err(&rel, "device nodes are not allowed here"))
                        }
                        DeviceNodes::Skip => {
                            let why = format!(
                                "tar entry {rel:?}: device node skipped (not made in a \
                                 container with a user namespace, by a caller without \
                                 CAP_MKNOD, or onto the host without -a)"
                            );
                            tracing::warn!("{why}");
                            eprintln!("rootcell: warning: {why}");
                            return Ok(());
                        }
                    }
                    let maj = header.device_major().map_err(|e| entry_err(&rel, e))?;
                    let min = header.device_minor().map_err(|e| entry_err(&rel, e))?;
                    rustix::fs::makedev(maj.unwrap_or(0), min.unwrap_or(0))
                };
                mknodat(parent, name, ft, Mode::from_raw_mode(0o600), dev)
                    .map_err(|e| entry_err(&rel, e))?;
                // The node is reopened O_PATH|O_NOFOLLOW: its owner is set
                // on that fd; its mode through the fd's magic link in the
                // private procfs, which names exactly that inode.
                let fd = openat(
                    parent,
                    name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| entry_err(&rel, e))?;
                if crate::fs::root::file_type(&fd).map_err(|e| entry_err(&rel, e))? != ft {
                    return Err(entry_err(&rel, "replaced while being created"));
                }
                if let Some((u, g)) = owner {
                    rustix::fs::chownat(
                        &fd,
                        "",
                        Some(Uid::from_raw(u)),
                        Some(Gid::from_raw(g)),
                        AtFlags::EMPTY_PATH,
                    )
                    .map_err(|e| entry_err(&rel, e))?;
                }
                let fds = procfs::open_link(
                    ProcfsBase::ProcThreadSelf,
                    "fd",
                    OpenFlags::O_PATH | OpenFlags::O_DIRECTORY | OpenFlags::O_CLOEXEC,
                )
                .map_err(|e| entry_err(&rel, e))?;
                rustix::fs::chmodat(
                    &fds,
                    fd.as_raw_fd().to_string().as_str(),
                    Mode::from_raw_mode(mode),
                    AtFlags::empty(),
                )
                .map_err(|e| entry_err(&rel, e))?;
                utimensat(parent, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| entry_err(&rel, e))?;
            }
            other => {
                return Err(entry_err(&rel, format!("unsupported entry type {other:?}")));
            }
        }
        if cached.is_some() {
            self.parent = cached;
        }
        Ok(())
    }

    /// Owner and mtime of a symlink, on (parent fd, name) without following.
    fn set_at(
        &self,
        parent: &OwnedFd,
        name: &Path,
        rel: &Path,
        owner: Option<(u32, u32)>,
        mtime: u64,
    ) -> Result<()> {
        if let Some((u, g)) = owner {
            rustix::fs::chownat(
                parent,
                name,
                Some(Uid::from_raw(u)),
                Some(Gid::from_raw(g)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| entry_err(rel, e))?;
        }
        utimensat(parent, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| entry_err(rel, e))
    }

    /// A hardlink entry: its target is a name in the same stream, below the
    /// destination, reached without any symlink (`RESOLVE_BENEATH |
    /// RESOLVE_NO_SYMLINKS` from the destination's fd); the link is made
    /// with `linkat` from the target's parent fd, not following the target.
    fn hardlink<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        parent: &OwnedFd,
        name: &Path,
        rel: &Path,
    ) -> Result<()> {
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| entry_err(rel, "hardlink without a target"))?;
        let raw = PathBuf::from(OsStr::from_bytes(&raw));
        let target = match clean_name(&raw) {
            Ok(Some(t)) => t,
            Ok(None) => return Err(entry_err(rel, "hardlink to the destination itself")),
            Err(why) if raw.as_os_str().len() >= PATH_MAX => {
                return Err(entry_err(rel, format!("hardlink target: {why}")))
            }
            Err(_) => {
                return Err(entry_err(
                    rel,
                    format!("hardlink target {raw:?} is outside the destination"),
                ))
            }
        };
        let tname = target.file_name().unwrap_or_default();
        let tparent = target.parent().unwrap_or(Path::new(""));
        let tdir = if tparent.as_os_str().is_empty() {
            self.dest_fd.try_clone().map_err(|e| entry_err(rel, e))?
        } else {
            openat2(
                &self.dest_fd,
                tparent,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            )
            .map_err(|e| {
                entry_err(
                    rel,
                    format!("hardlink target {raw:?}: {e} (a symlink on the way is refused)"),
                )
            })?
        };
        let st = statat(&tdir, tname, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| entry_err(rel, format!("hardlink target {raw:?}: {e}")))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return Err(entry_err(rel, "hardlink to a directory"));
        }
        linkat(&tdir, tname, parent, name, AtFlags::empty())
            .map_err(|e| entry_err(rel, format!("hardlink to {raw:?}: {e}")))
    }
}
