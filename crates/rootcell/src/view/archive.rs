//! Tar streams of a container's files (`rootcell cp`'s data path), both
//! ways, with `docker cp`'s rules, over directory fds only.
//!
//! `pack` walks a tree inside a [`RootDir`] with `openat(O_NOFOLLOW)`
//! relative to each directory's fd: nothing met during the walk is ever
//! followed, a fifo or a device is written as a header only (never opened
//! for reading), a regular file is opened `O_NONBLOCK` and checked to still
//! be a regular file, and its data is streamed with `pread` bounded by the
//! size in its header (holes are not read from disk: `SEEK_DATA`/`SEEK_HOLE`).
//!
//! `unpack` reads a tar stream entry by entry: each name is cleaned
//! lexically and refused when it climbs out of the destination (`../`), a
//! leading `/` is dropped (docker joins the name to the destination); the
//! parent directory is then resolved inside the root with
//! `openat2(RESOLVE_IN_ROOT)`, so a symlink entry written earlier can lead
//! anywhere in the root but never out of it; the entry is created with a
//! `*at` call relative to that fd (`O_EXCL|O_NOFOLLOW`), and its owner,
//! mode and mtime are set on the created fd or on (parent fd, name) with
//! `AT_SYMLINK_NOFOLLOW`, never by path.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{
    fchmod, fchown, fstat, futimens, linkat, mkdirat, mknodat, openat, openat2, readlinkat,
    statat, symlinkat, unlinkat, utimensat, AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags,
    SeekFrom, Stat, Timespec, Timestamps,
};
use rustix::io::{pread, Errno};
use rustix::process::{Gid, Uid};
use tar::{Archive, Builder, EntryType, Header};

use crate::fs::RootDir;
use crate::plan::IdMapping;
use crate::{Error, Result};

/// The id written for a host id that has no container id (the kernel's
/// overflow id, as `stat` shows it inside a user namespace).
const OVERFLOW_ID: u32 = 65534;

/// Buffer size for streaming file data.
const CHUNK: usize = 128 * 1024;

/// A container's user namespace mappings; empty means no user namespace
/// (container ids are host ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    pub uids: Vec<IdMapping>,
    pub gids: Vec<IdMapping>,
}

fn to_container(maps: &[IdMapping], host: u32) -> Option<u32> {
    if maps.is_empty() {
        return Some(host);
    }
    maps.iter().find_map(|m| {
        let off = host.checked_sub(m.host_id)?;
        (off < m.size).then(|| m.container_id + off)
    })
}

fn to_host(maps: &[IdMapping], container: u32) -> Option<u32> {
    if maps.is_empty() {
        return Some(container);
    }
    maps.iter().find_map(|m| {
        let off = container.checked_sub(m.container_id)?;
        (off < m.size).then(|| m.host_id + off)
    })
}

impl IdMap {
    /// Host (uid, gid) → container ids; unmapped ids become 65534.
    pub fn host_to_container(&self, uid: u32, gid: u32) -> (u32, u32) {
        (
            to_container(&self.uids, uid).unwrap_or(OVERFLOW_ID),
            to_container(&self.gids, gid).unwrap_or(OVERFLOW_ID),
        )
    }

    /// Container (uid, gid) → host ids; None when either is unmapped.
    pub fn container_to_host(&self, uid: u32, gid: u32) -> Option<(u32, u32)> {
        Some((to_host(&self.uids, uid)?, to_host(&self.gids, gid)?))
    }
}

/// How `pack` reads its source.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// `-L`: follow the source path's own final symlink (inside the root).
    pub follow_link: bool,
    /// The container's mappings: owners in the stream are container ids,
    /// as docker's daemon writes them whether or not `-a` was given (`-a`
    /// only matters where the stream is extracted).
    pub ids: IdMap,
}

/// Who owns what `unpack` creates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ownership {
    /// No chown: entries belong to the caller (a host extraction without
    /// `-a`).
    #[default]
    Caller,
    /// The owners in the stream, read as container ids and mapped to host
    /// ids (`-a`; docker also does this into a container without `-a`).
    Archive,
    /// Every entry gets these container ids, mapped to host ids (docker's
    /// `-a` into a container with a configured user).
    Fixed { uid: u32, gid: u32 },
}

/// How `unpack` writes.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    pub ownership: Ownership,
    pub ids: IdMap,
    /// Create character and block device entries; refused otherwise.
    pub allow_devices: bool,
}

fn io_err(context: impl Into<String>, cause: impl Into<io::Error>) -> Error {
    Error::Io {
        context: context.into(),
        cause: cause.into(),
    }
}

fn entry_err(name: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Other(format!("tar entry {:?}: {reason}", name))
}

// ---------------------------------------------------------------- pack

/// How the source path names its entries (docker's `CopyInfoSourcePath` and
/// `TarResourceRebase`).
#[derive(Debug, PartialEq, Eq)]
enum SourceName {
    /// Entries under this name (the source's base name).
    Base(OsString),
    /// A directory's contents, without the directory itself (`dir/.`).
    Contents,
}

fn source_name(src: &Path) -> SourceName {
    let bytes = src.as_os_str().as_bytes();
    if bytes == b"." || bytes.ends_with(b"/.") {
        return SourceName::Contents;
    }
    let last = src.components().rev().find_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        _ => None,
    });
    match last {
        // A `..` last (`a/b/..`) is resolved by the kernel; docker names it
        // lexically, so does this.
        Some(_) if matches!(src.components().next_back(), Some(Component::ParentDir)) => {
            SourceName::Contents
        }
        Some(n) => SourceName::Base(n),
        None => SourceName::Contents,
    }
}

/// Writes `src` (a path inside `root`) to `out` as a tar stream.
pub fn pack(root: &RootDir, src: &Path, opts: &PackOptions, out: impl Write) -> Result<()> {
    let ctx = || format!("{}", src.display());
    let fd = if opts.follow_link {
        root.resolve(src)
    } else {
        root.resolve_nofollow(src)
    }
    .map_err(|e| io_err(ctx(), e))?;
    let st = fstat(&fd).map_err(|e| io_err(ctx(), e))?;
    let mut p = Packer {
        builder: Builder::new(out),
        opts,
        links: HashMap::new(),
        buf: vec![0; CHUNK],
    };
    let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
    match source_name(src) {
        SourceName::Contents if !is_dir => {
            return Err(io_err(ctx(), Errno::NOTDIR));
        }
        SourceName::Contents => p.walk_dir(&fd, PathBuf::new())?,
        SourceName::Base(name) => {
            let name = PathBuf::from(name);
            if is_dir {
                p.append(None, &fd, &st, &name)?;
                p.walk_dir(&fd, name)?;
            } else {
                // Reopen through the parent to read a symlink's target (an
                // O_PATH fd of a symlink is readable with readlinkat(fd, "")).
                p.append(None, &fd, &st, &name)?;
            }
        }
    }
    p.builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| io_err("writing the tar stream", e))
}

struct Packer<'o, W: Write> {
    builder: Builder<W>,
    opts: &'o PackOptions,
    /// (dev, ino) of files with several links → the name of the first.
    links: HashMap<(u64, u64), PathBuf>,
    buf: Vec<u8>,
}

impl<W: Write> Packer<'_, W> {
    /// Writes every entry below the directory `dir`, named under `prefix`.
    /// Explicit stack: depth costs heap (and one fd per level), not stack.
    fn walk_dir(&mut self, dir: &OwnedFd, prefix: PathBuf) -> Result<()> {
        let mut stack = vec![(reopen_dir(dir, &prefix)?, prefix, None::<Vec<OsString>>)];
        while let Some((fd, prefix, names)) = stack.last_mut() {
            let names = match names {
                Some(n) => n,
                None => {
                    let list = list_dir(fd, prefix)?;
                    names.insert(list)
                }
            };
            let Some(name) = names.pop() else {
                stack.pop();
                continue;
            };
            let path = prefix.join(&name);
            let child = match openat(
                &*fd,
                &*name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                // Removed meanwhile (a running container): skipped, as tar
                // does with a file that vanished.
                Err(Errno::NOENT) => continue,
                other => other.map_err(|e| io_err(path.display().to_string(), e))?,
            };
            let st = fstat(&child).map_err(|e| io_err(path.display().to_string(), e))?;
            let fd_b = fd.try_clone().map_err(|e| io_err("dup", e))?;
            self.append(Some((&fd_b, &name)), &child, &st, &path)?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                let sub = reopen_dir(&child, &path)?;
                stack.push((sub, path, None));
            }
        }
        Ok(())
    }

    /// Appends one entry for the inode `fd` (`O_PATH`, not followed),
    /// whose parent directory and name are `at` (None for the source).
    fn append(
        &mut self,
        at: Option<(&OwnedFd, &OsStr)>,
        fd: &OwnedFd,
        st: &Stat,
        name: &Path,
    ) -> Result<()> {
        let ctx = || name.display().to_string();
        let ft = FileType::from_raw_mode(st.st_mode);
        let mut h = Header::new_gnu();
        h.set_mode(st.st_mode & 0o7777);
        let (uid, gid) = self.opts.ids.host_to_container(st.st_uid, st.st_gid);
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        if ft != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                h.set_entry_type(EntryType::Link);
                let first = first.clone();
                return self
                    .builder
                    .append_link(&mut h, name, first)
                    .map_err(|e| io_err(ctx(), e));
            }
            self.links.insert(key, name.to_path_buf());
        }
        let res = match ft {
            FileType::Directory => {
                h.set_entry_type(EntryType::Directory);
                self.builder.append_data(&mut h, name, io::empty())
            }
            FileType::Symlink => {
                h.set_entry_type(EntryType::Symlink);
                let target = readlinkat(fd, "", Vec::new()).map_err(|e| io_err(ctx(), e))?;
                let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                self.builder.append_link(&mut h, name, target)
            }
            FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice => {
                h.set_entry_type(match ft {
                    FileType::Fifo => EntryType::Fifo,
                    FileType::CharacterDevice => EntryType::Char,
                    _ => EntryType::Block,
                });
                if ft != FileType::Fifo {
                    let (maj, min) = (
                        rustix::fs::major(st.st_rdev),
                        rustix::fs::minor(st.st_rdev),
                    );
                    h.set_device_major(maj).map_err(|e| io_err(ctx(), e))?;
                    h.set_device_minor(min).map_err(|e| io_err(ctx(), e))?;
                }
                self.builder.append_data(&mut h, name, io::empty())
            }
            FileType::RegularFile => {
                let file = open_regular(at, fd, st).map_err(|e| io_err(ctx(), e))?;
                let len = st.st_size.max(0) as u64;
                h.set_entry_type(EntryType::Regular);
                h.set_size(len);
                let reader = SparseReader::new(file.as_fd(), len, &mut self.buf);
                self.builder.append_data(&mut h, name, reader)
            }
            // Sockets and the rest: skipped, as docker's archiver does.
            _ => return Ok(()),
        };
        res.map_err(|e| io_err(ctx(), e))
    }
}

/// Opens a directory (given as an `O_PATH` fd) for reading its entries.
fn reopen_dir(fd: &OwnedFd, name: &Path) -> Result<OwnedFd> {
    openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(name.display().to_string(), e))
}

/// The names in a directory, sorted (reversed: popped from the end), so the
/// stream's order does not depend on the filesystem.
fn list_dir(fd: &OwnedFd, name: &Path) -> Result<Vec<OsString>> {
    let dup = fd.try_clone().map_err(|e| io_err("dup", e))?;
    let dir = Dir::new(dup).map_err(|e| io_err(name.display().to_string(), e))?;
    let mut names = Vec::new();
    for ent in dir {
        let ent = ent.map_err(|e| io_err(name.display().to_string(), e))?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    names.sort_unstable_by(|a, b| b.cmp(a));
    Ok(names)
}

/// Opens a regular file for reading without following anything and
/// without blocking: through its parent and name when known (`O_NOFOLLOW`),
/// else through `/proc/self/fd` of its `O_PATH` fd (the source itself,
/// already resolved inside the root). The result must be the same inode as
/// `st`, still a regular file: a name swapped meanwhile for a fifo or a
/// symlink is refused, never read.
fn open_regular(at: Option<(&OwnedFd, &OsStr)>, fd: &OwnedFd, st: &Stat) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file: OwnedFd = match at {
        Some((dir, name)) => openat(dir, name, flags, Mode::empty())?,
        None => {
            // Reopen the O_PATH fd itself: ".." of a non-directory is not
            // available, so use the magic link, which refers to exactly this
            // inode (no path lookup inside the container).
            let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
            openat(
                rustix::fs::CWD,
                proc.as_str(),
                flags.difference(OFlags::NOFOLLOW),
                Mode::empty(),
            )?
        }
    };
    let now = fstat(&file)?;
    if now.st_dev != st.st_dev
        || now.st_ino != st.st_ino
        || FileType::from_raw_mode(now.st_mode) != FileType::RegularFile
    {
        return Err(io::Error::other("changed while being read"));
    }
    Ok(File::from(file))
}

/// Reads exactly `len` bytes of a file: data with `pread`, holes (found
/// with `SEEK_DATA`/`SEEK_HOLE`) as zeros without reading them, and zeros
/// past an end that moved (a file truncated meanwhile), so the entry always
/// matches its header. Extra bytes of a file that grew are left out.
struct SparseReader<'a> {
    fd: BorrowedFd<'a>,
    len: u64,
    pos: u64,
    /// Start and end of the data segment at or after `pos`.
    data: Option<(u64, u64)>,
    buf: &'a mut Vec<u8>,
}

impl<'a> SparseReader<'a> {
    fn new(fd: BorrowedFd<'a>, len: u64, buf: &'a mut Vec<u8>) -> Self {
        SparseReader {
            fd,
            len,
            pos: 0,
            data: None,
            buf,
        }
    }

    /// The data segment containing or following `pos`; (len, len) when the
    /// rest is a hole.
    fn segment(&mut self) -> (u64, u64) {
        if let Some((s, e)) = self.data {
            if self.pos < e {
                return (s, e);
            }
        }
        let seg = match rustix::fs::seek(self.fd, SeekFrom::Data(self.pos)) {
            Ok(start) => {
                let end = rustix::fs::seek(self.fd, SeekFrom::Hole(start))
                    .unwrap_or(self.len);
                (start.min(self.len), end.min(self.len).max(start.min(self.len)))
            }
            Err(Errno::NXIO) => (self.len, self.len),
            // No SEEK_DATA here: everything is data.
            Err(_) => (self.pos, self.len),
        };
        self.data = Some(seg);
        seg
    }
}

impl Read for SparseReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let (start, end) = self.segment();
        let want = out.len().min((self.len - self.pos) as usize);
        if self.pos < start {
            // A hole: zeros up to the next data (or the end), not read.
            let n = want.min((start - self.pos) as usize);
            out[..n].fill(0);
            self.pos += n as u64;
            return Ok(n);
        }
        let n = want.min((end - self.pos) as usize).min(self.buf.len());
        let got = pread(self.fd, &mut self.buf[..n], self.pos)?;
        if got == 0 {
            // Truncated meanwhile: the rest reads as zeros.
            self.data = Some((self.len, self.len));
            return self.read(out);
        }
        out[..got].copy_from_slice(&self.buf[..got]);
        self.pos += got as u64;
        Ok(got)
    }
}

// ---------------------------------------------------------------- unpack

/// Cleans a tar name lexically, as docker's `filepath.Clean` + `Join(dest,
/// name)` do: a leading `/` is dropped (the name is joined to the
/// destination), `.` disappears, `a/../b` is `b`; a name that climbs above
/// the destination is refused. Returns None for the destination itself.
fn clean_name(name: &Path) -> std::result::Result<Option<PathBuf>, &'static str> {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in name.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err("the name leads out of the destination (`..`)");
                }
            }
            Component::Prefix(_) => return Err("unsupported name"),
        }
    }
    Ok((!out.is_empty()).then(|| out.iter().collect()))
}

/// Extracts a tar stream into the directory `dest` inside `root`.
pub fn unpack(root: &RootDir, dest: &Path, input: impl Read, opts: &UnpackOptions) -> Result<()> {
    let dest_fd = root
        .resolve(dest)
        .map_err(|e| io_err(dest.display().to_string(), e))?;
    let ft = crate::fs::root::file_type(&dest_fd)
        .map_err(|e| io_err(dest.display().to_string(), e))?;
    if ft != FileType::Directory {
        return Err(io_err(dest.display().to_string(), Errno::NOTDIR));
    }
    let mut archive = Archive::new(input);
    let mut u = Unpacker {
        root,
        dest,
        dest_fd,
        opts,
        dirs: Vec::new(),
    };
    let entries = archive
        .entries()
        .map_err(|e| io_err("reading the tar stream", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| io_err("reading the tar stream", e))?;
        let raw = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
        u.entry(&raw, &mut entry)?;
    }
    // Directory mtimes last: creating their entries changed them.
    for (rel, mtime) in std::mem::take(&mut u.dirs).into_iter().rev() {
        let fd = u.open_in_dest(&rel, OFlags::RDONLY | OFlags::DIRECTORY)?;
        futimens(&fd, &times(mtime)).map_err(|e| entry_err(&rel, e))?;
    }
    Ok(())
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

    fn entry<R: Read>(&mut self, raw: &Path, entry: &mut tar::Entry<'_, R>) -> Result<()> {
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
        let mode = header.mode().map_err(|e| entry_err(&rel, e))? & 0o7777;
        let mtime = header.mtime().map_err(|e| entry_err(&rel, e))?;
        let owner = self.owner(&rel, &header)?;
        let name = rel.file_name().map(Path::new).unwrap_or(Path::new(""));
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        // Missing parents are made (0755) inside the root, like docker.
        let parent = self
            .root
            .mkdir_all(&self.in_root(parent_rel), 0o755)
            .map_err(|e| entry_err(&rel, e))?;
        let is_dir_entry = kind == EntryType::Directory;
        // docker cp's `NoOverwriteDirNonDir`: neither kind replaces the
        // other; a non-directory replaces a non-directory.
        match statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let existing_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                if existing_dir && !is_dir_entry {
                    return Err(entry_err(
                        &rel,
                        "cannot overwrite a directory with a non-directory",
                    ));
                }
                if !existing_dir && is_dir_entry {
                    return Err(entry_err(
                        &rel,
                        "cannot overwrite a non-directory with a directory",
                    ));
                }
                if !existing_dir {
                    unlinkat(&parent, name, AtFlags::empty()).map_err(|e| entry_err(&rel, e))?;
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(entry_err(&rel, e)),
        }
        let chown_fd = |fd: &OwnedFd| -> Result<()> {
            if let Some((u, g)) = owner {
                fchown(
                    fd,
                    Some(Uid::from_raw(u)),
                    Some(Gid::from_raw(g)),
                )
                .map_err(|e| entry_err(&rel, e))?;
            }
            Ok(())
        };
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = openat(
                    &parent,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| entry_err(&rel, e))?;
                let mut file = File::from(fd);
                io::copy(entry, &mut file).map_err(|e| entry_err(&rel, e))?;
                let fd = OwnedFd::from(file);
                chown_fd(&fd)?;
                fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| entry_err(&rel, e))?;
                futimens(&fd, &times(mtime)).map_err(|e| entry_err(&rel, e))?;
            }
            EntryType::Directory => {
                match mkdirat(&parent, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(entry_err(&rel, e)),
                }
                let fd = openat(
                    &parent,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| entry_err(&rel, e))?;
                chown_fd(&fd)?;
                fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| entry_err(&rel, e))?;
                self.dirs.push((rel.clone(), mtime));
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| entry_err(&rel, "symlink without a target"))?;
                symlinkat(OsStr::from_bytes(&target), &parent, name)
                    .map_err(|e| entry_err(&rel, e))?;
                self.set_at(&parent, name, &rel, owner, mtime)?;
            }
            EntryType::Link => self.hardlink(entry, &parent, name, &rel)?,
            EntryType::Fifo | EntryType::Char | EntryType::Block => {
                let ft = match kind {
                    EntryType::Fifo => FileType::Fifo,
                    EntryType::Char => FileType::CharacterDevice,
                    _ => FileType::BlockDevice,
                };
                let dev = if ft == FileType::Fifo {
                    0
                } else {
                    if !self.opts.allow_devices {
                        return Err(entry_err(&rel, "device nodes are not allowed here"));
                    }
                    let maj = header.device_major().map_err(|e| entry_err(&rel, e))?;
                    let min = header.device_minor().map_err(|e| entry_err(&rel, e))?;
                    rustix::fs::makedev(maj.unwrap_or(0), min.unwrap_or(0))
                };
                mknodat(&parent, name, ft, Mode::from_raw_mode(0o600), dev)
                    .map_err(|e| entry_err(&rel, e))?;
                // The node is reopened O_PATH|O_NOFOLLOW: its owner is set
                // on that fd; its mode through the fd's magic link, which
                // names exactly that inode.
                let fd = openat(
                    &parent,
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
                let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
                rustix::fs::chmod(proc.as_str(), Mode::from_raw_mode(mode))
                    .map_err(|e| entry_err(&rel, e))?;
                utimensat(&parent, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| entry_err(&rel, e))?;
            }
            other => {
                return Err(entry_err(&rel, format!("unsupported entry type {other:?}")));
            }
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

#[cfg(test)]
mod tests {}
