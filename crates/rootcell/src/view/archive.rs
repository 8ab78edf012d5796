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
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{
    fchmod, fchown, fstat, futimens, linkat, mkdirat, mknodat, openat, openat2, readlinkat, statat,
    symlinkat, unlinkat, utimensat, AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, SeekFrom,
    Stat, Timespec, Timestamps,
};
use rustix::io::{pread, Errno};
use rustix::process::{Gid, Uid};
use tar::{Archive, Builder, EntryType, Header};

use crate::fs::procfs::{self, ProcfsBase};
use crate::fs::RootDir;
use crate::plan::IdMapping;
use crate::{Error, Result};
use pathrs::flags::OpenFlags;

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
        (off < m.size)
            .then(|| m.container_id.checked_add(off))
            .flatten()
    })
}

fn to_host(maps: &[IdMapping], container: u32) -> Option<u32> {
    if maps.is_empty() {
        return Some(container);
    }
    maps.iter().find_map(|m| {
        let off = container.checked_sub(m.container_id)?;
        (off < m.size).then(|| m.host_id.checked_add(off)).flatten()
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
    /// The name the source gets in the stream instead of its own (docker's
    /// `RebaseArchiveEntries`, done while packing): the source entry and
    /// the prefix of everything below it. A directory's contents (`dir/.`)
    /// then travel under that name, the directory's own entry included.
    pub rename: Option<OsString>,
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
        // A `..` last (`a/b/..`) cannot name an entry: the directory it
        // resolves to (inside the root) is sent as contents.
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
    let name = match (source_name(src), opts.rename.clone()) {
        (SourceName::Contents, _) if !is_dir => {
            return Err(io_err(ctx(), Errno::NOTDIR));
        }
        (_, Some(rename)) => Some(PathBuf::from(rename)),
        (SourceName::Base(own), None) => Some(PathBuf::from(own)),
        (SourceName::Contents, None) => None,
    };
    match name {
        None => p.walk_dir(&fd, PathBuf::new())?,
        Some(name) => {
            // A symlink source (without -L) is read with readlinkat(fd, "")
            // on its O_PATH fd.
            p.append(None, &fd, &st, &name)?;
            if is_dir {
                p.walk_dir(&fd, name)?;
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
            self.append(Some((&*fd, &name)), &child, &st, &path)?;
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
                    let (maj, min) = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
                    h.set_device_major(maj).map_err(|e| io_err(ctx(), e))?;
                    h.set_device_minor(min).map_err(|e| io_err(ctx(), e))?;
                }
                self.builder.append_data(&mut h, name, io::empty())
            }
            FileType::RegularFile => {
                let file = open_regular(at, fd, st).map_err(|e| io_err(ctx(), e))?;
                let len = st.st_size.max(0) as u64;
                h.set_size(len);
                // Fewer blocks than bytes: holes, written as a GNU sparse
                // entry (only the data segments travel).
                let segments = if (st.st_blocks as u64).saturating_mul(512) < len {
                    data_segments(file.as_fd(), len)
                } else {
                    None
                };
                match segments {
                    Some(segs) => {
                        let ext = sparse_header(&mut h, &segs, len);
                        let data = SegmentReader {
                            fd: file.as_fd(),
                            segs: &segs,
                            index: 0,
                            done: 0,
                            buf: &mut self.buf,
                        };
                        self.builder
                            .append_data(&mut h, name, io::Cursor::new(ext).chain(data))
                    }
                    None => {
                        h.set_entry_type(EntryType::Regular);
                        let reader = SparseReader::new(file.as_fd(), len, &mut self.buf);
                        self.builder.append_data(&mut h, name, reader)
                    }
                }
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
/// else through the private procfs's magic link of its `O_PATH` fd (the
/// source itself, already resolved inside the root). The result must be the same inode as
/// `st`, still a regular file: a name swapped meanwhile for a fifo or a
/// symlink is refused, never read.
fn open_regular(at: Option<(&OwnedFd, &OsStr)>, fd: &OwnedFd, st: &Stat) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file: OwnedFd = match at {
        Some((dir, name)) => openat(dir, name, flags, Mode::empty())?,
        // Reopen the O_PATH fd itself (the source, already resolved inside
        // the root) through its magic link in the private procfs: exactly
        // this inode, no lookup inside the container.
        None => procfs::open_link(
            ProcfsBase::ProcThreadSelf,
            &format!("fd/{}", fd.as_raw_fd()),
            OpenFlags::O_RDONLY | OpenFlags::O_NONBLOCK | OpenFlags::O_CLOEXEC,
        )?,
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

/// The most data segments a sparse entry lists (16 bytes each in memory,
/// 24 in the stream); a file with more is streamed whole, holes as zeros.
const MAX_SEGMENTS: usize = 1 << 16;

/// The data segments (offset, length) of the first `len` bytes of a file,
/// from `SEEK_DATA`/`SEEK_HOLE`; None when the filesystem cannot tell or the
/// file has too many segments.
fn data_segments(fd: BorrowedFd<'_>, len: u64) -> Option<Vec<(u64, u64)>> {
    let mut segs = Vec::new();
    let mut pos = 0;
    while pos < len {
        let start = match rustix::fs::seek(fd, SeekFrom::Data(pos)) {
            Ok(start) => start.min(len),
            Err(Errno::NXIO) => break,
            Err(_) => return None,
        };
        if start >= len {
            break;
        }
        let end = rustix::fs::seek(fd, SeekFrom::Hole(start)).ok()?.min(len);
        if end <= start || segs.len() == MAX_SEGMENTS {
            return None;
        }
        segs.push((start, end - start));
        pos = end;
    }
    Some(segs)
}

/// Makes `h` a GNU sparse header for `segs` of a file of `len` bytes;
/// returns the extension headers that follow it (segments past the fourth).
fn sparse_header(h: &mut Header, segs: &[(u64, u64)], len: u64) -> Vec<u8> {
    // A file ending in a hole (or all hole) lists one more, empty, segment
    // at its end, as GNU tar writes it: readers check the list reaches the
    // real size.
    let mut list = segs.to_vec();
    if !matches!(list.last(), Some(&(off, n)) if off + n >= len) {
        list.push((len, 0));
    }
    h.set_entry_type(EntryType::GNUSparse);
    h.set_size(list.iter().map(|s| s.1).sum());
    let mut rest = list.iter().peekable();
    if let Some(gnu) = h.as_gnu_mut() {
        gnu.set_real_size(len);
        for slot in gnu.sparse.iter_mut() {
            let Some(&(off, n)) = rest.next() else { break };
            slot.set_offset(off);
            slot.set_length(n);
        }
        gnu.set_is_extended(rest.peek().is_some());
    }
    let mut ext = Vec::new();
    while rest.peek().is_some() {
        let mut e = tar::GnuExtSparseHeader::new();
        for slot in e.sparse.iter_mut() {
            let Some(&(off, n)) = rest.next() else { break };
            slot.set_offset(off);
            slot.set_length(n);
        }
        e.set_is_extended(rest.peek().is_some());
        ext.extend_from_slice(e.as_bytes());
    }
    ext
}

/// The bytes of a list of data segments, each exactly its length: a file
/// truncated meanwhile reads as zeros past its end.
struct SegmentReader<'a> {
    fd: BorrowedFd<'a>,
    segs: &'a [(u64, u64)],
    index: usize,
    /// Bytes of `segs[index]` already read.
    done: u64,
    buf: &'a mut Vec<u8>,
}

impl Read for SegmentReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while let Some(&(off, len)) = self.segs.get(self.index) {
            if self.done == len {
                self.index += 1;
                self.done = 0;
                continue;
            }
            let n = out
                .len()
                .min((len - self.done) as usize)
                .min(self.buf.len());
            let got = match pread(self.fd, &mut self.buf[..n], off + self.done)? {
                // Truncated meanwhile: zeros, so the entry keeps its size.
                0 => {
                    out[..n].fill(0);
                    n
                }
                got => {
                    out[..got].copy_from_slice(&self.buf[..got]);
                    got
                }
            };
            self.done += got as u64;
            return Ok(got);
        }
        Ok(0)
    }
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
                let end = rustix::fs::seek(self.fd, SeekFrom::Hole(start)).unwrap_or(self.len);
                (
                    start.min(self.len),
                    end.min(self.len).max(start.min(self.len)),
                )
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

/// The largest extension entry (GNU long name or link, pax header) read:
/// the tar crate holds these in memory, so a hostile size is refused before
/// it is read (the kernel's PATH_MAX is 4096; pax records with xattrs are
/// larger, still far below this).
const MAX_EXTENSION: u64 = 1 << 20;

/// Follows the stream's 512-byte block structure next to the tar crate and
/// refuses an extension header (`L`, `K`, `x`, `g`) larger than
/// `MAX_EXTENSION`, so a hostile stream cannot make the reader allocate
/// what its header claims. Data blocks pass through untouched.
struct HeaderGuard<R> {
    inner: R,
    /// Bytes of data (rounded to blocks) before the next header.
    skip: u64,
    /// Data of a GNU sparse entry whose extension blocks come first.
    pending: u64,
    /// The next block is a GNU sparse extension block, not a header.
    sparse_ext: bool,
    block: [u8; 512],
    fill: usize,
}

impl<R: Read> HeaderGuard<R> {
    fn new(inner: R) -> Self {
        HeaderGuard {
            inner,
            skip: 0,
            pending: 0,
            sparse_ext: false,
            block: [0; 512],
            fill: 0,
        }
    }

    /// Looks at one complete header block.
    fn header(&mut self) -> io::Result<()> {
        let b = &self.block;
        if self.sparse_ext {
            // The data follows the last extension block.
            self.sparse_ext = b[504] != 0;
            if !self.sparse_ext {
                self.skip = std::mem::take(&mut self.pending);
            }
            return Ok(());
        }
        if b.iter().all(|&x| x == 0) {
            return Ok(());
        }
        // An unparsable size is left to the tar crate, which reports it.
        let size = Header::from_byte_slice(b).entry_size().unwrap_or(0);
        let kind = b[156];
        if matches!(kind, b'L' | b'K' | b'x' | b'g') && size > MAX_EXTENSION {
            return Err(io::Error::other(format!(
                "tar extension header of {size} bytes (type {:?}) exceeds {MAX_EXTENSION}",
                kind as char
            )));
        }
        let data = size.div_ceil(512).saturating_mul(512);
        // A GNU sparse header with extension blocks: they come first, then
        // the data.
        if kind == b'S' && b[482] != 0 {
            self.sparse_ext = true;
            self.pending = data;
        } else {
            self.skip = data;
        }
        Ok(())
    }
}

impl<R: Read> Read for HeaderGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            if self.skip > 0 {
                let k = rest.len().min(self.skip.min(usize::MAX as u64) as usize);
                self.skip -= k as u64;
                rest = &rest[k..];
                continue;
            }
            let k = rest.len().min(512 - self.fill);
            self.block[self.fill..self.fill + k].copy_from_slice(&rest[..k]);
            self.fill += k;
            rest = &rest[k..];
            if self.fill == 512 {
                self.fill = 0;
                self.header()?;
            }
        }
        Ok(n)
    }
}

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
    let mut archive = Archive::new(HeaderGuard::new(input));
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

/// Copies `input` into the empty file `fd`, leaving runs of zeros (a
/// sparse entry's holes, or any zero block) as holes: no disk write for
/// them, and memory bounded by one buffer.
fn write_sparse(mut input: impl Read, fd: &OwnedFd) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut pos: u64 = 0;
    loop {
        let n = match input.read(&mut buf) {
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
        }
        pos += n as u64;
    }
    rustix::fs::ftruncate(fd, pos)?;
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
        // An entry directly in the destination is made in the directory
        // opened at the start (a container that renames the destination
        // meanwhile cannot make us create it again). Missing parents
        // below it are made (0755) inside the root, like docker.
        let parent = if parent_rel.as_os_str().is_empty() {
            self.dest_fd.try_clone().map_err(|e| entry_err(&rel, e))?
        } else {
            self.root
                .mkdir_all(&self.in_root(parent_rel), 0o755)
                .map_err(|e| entry_err(&rel, e))?
        };
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
                fchown(fd, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))
                    .map_err(|e| entry_err(&rel, e))?;
            }
            Ok(())
        };
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = openat(
                    &parent,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| entry_err(&rel, e))?;
                write_sparse(entry, &fd).map_err(|e| entry_err(&rel, e))?;
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
                // on that fd; its mode through the fd's magic link in the
                // private procfs, which names exactly that inode.
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
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    /// A scratch directory: `outer/` holds a sentinel file and `outer/root/`
    /// is the container root. Removed on drop.
    struct Scratch {
        outer: PathBuf,
    }

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let outer = std::env::temp_dir()
                .join(format!("rootcell-archive-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&outer);
            fs::create_dir_all(outer.join("root")).unwrap();
            fs::write(outer.join("sentinel"), b"host").unwrap();
            Scratch { outer }
        }
        fn root_path(&self) -> PathBuf {
            self.outer.join("root")
        }
        fn root(&self) -> RootDir {
            RootDir::open(&self.root_path()).unwrap()
        }
        fn sentinel_unchanged(&self) {
            assert_eq!(fs::read(self.outer.join("sentinel")).unwrap(), b"host");
            let names: Vec<_> = fs::read_dir(&self.outer)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(
                names.len(),
                2,
                "something appeared outside the root: {names:?}"
            );
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.outer);
        }
    }

    fn set_mtime(path: &Path, secs: i64) {
        let t = Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        utimensat(
            rustix::fs::CWD,
            path,
            &Timestamps {
                last_access: t,
                last_modification: t,
            },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }

    fn names(tar: &[u8]) -> Vec<(String, EntryType)> {
        let mut a = Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    fn pack_vec(root: &RootDir, src: &str, opts: &PackOptions) -> Vec<u8> {
        let mut out = Vec::new();
        pack(root, Path::new(src), opts, &mut out).unwrap();
        out
    }

    /// A tree with every kind pack and unpack handle without privileges.
    fn make_tree(root: &Path) {
        let d = root.join("d");
        fs::create_dir_all(d.join("sub/deeper")).unwrap();
        fs::write(d.join("f"), b"hello bytes").unwrap();
        fs::set_permissions(d.join("f"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::hard_link(d.join("f"), d.join("hard")).unwrap();
        std::os::unix::fs::symlink("../outside/target", d.join("link")).unwrap();
        fs::write(d.join("sub/deeper/x"), b"x").unwrap();
        fs::set_permissions(d.join("sub"), fs::Permissions::from_mode(0o750)).unwrap();
        set_mtime(&d.join("f"), 1_000_000_000);
        set_mtime(&d.join("link"), 1_100_000_000);
        set_mtime(&d.join("sub/deeper/x"), 1_200_000_000);
        set_mtime(&d.join("sub/deeper"), 1_300_000_000);
        set_mtime(&d.join("sub"), 1_400_000_000);
        set_mtime(&d, 1_500_000_000);
    }

    #[test]
    fn round_trip_keeps_bytes_modes_mtimes_links() {
        let src = Scratch::new("rt-src");
        let dst = Scratch::new("rt-dst");
        make_tree(&src.root_path());
        fs::create_dir(dst.root_path().join("out")).unwrap();
        let tar = pack_vec(&src.root(), "/d", &PackOptions::default());
        unpack(
            &dst.root(),
            Path::new("/out"),
            &tar[..],
            &UnpackOptions::default(),
        )
        .unwrap();
        let d = dst.root_path().join("out/d");
        assert_eq!(fs::read(d.join("f")).unwrap(), b"hello bytes");
        let f = fs::metadata(d.join("f")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o640);
        assert_eq!(f.mtime(), 1_000_000_000);
        let h = fs::metadata(d.join("hard")).unwrap();
        assert_eq!((h.ino(), h.nlink()), (f.ino(), 2), "hardlink kept");
        assert_eq!(
            fs::read_link(d.join("link")).unwrap(),
            Path::new("../outside/target")
        );
        assert_eq!(
            fs::symlink_metadata(d.join("link")).unwrap().mtime(),
            1_100_000_000
        );
        assert_eq!(fs::read(d.join("sub/deeper/x")).unwrap(), b"x");
        let sub = fs::metadata(d.join("sub")).unwrap();
        assert_eq!(sub.mode() & 0o7777, 0o750);
        assert_eq!(sub.mtime(), 1_400_000_000);
        assert_eq!(
            fs::metadata(d.join("sub/deeper")).unwrap().mtime(),
            1_300_000_000
        );
        assert_eq!(fs::metadata(&d).unwrap().mtime(), 1_500_000_000);
        src.sentinel_unchanged();
        dst.sentinel_unchanged();
    }

    #[test]
    fn directory_source_names_base_or_contents() {
        let s = Scratch::new("names");
        make_tree(&s.root_path());
        let root = s.root();
        let base = names(&pack_vec(&root, "/d", &PackOptions::default()));
        assert_eq!(base[0], ("d".into(), EntryType::Directory));
        assert!(
            base.iter().all(|(n, _)| n == "d" || n.starts_with("d/")),
            "{base:?}"
        );
        assert!(base.contains(&("d/f".into(), EntryType::Regular)));
        // `/.`: the contents, not the directory.
        let contents = names(&pack_vec(&root, "/d/.", &PackOptions::default()));
        assert!(
            contents.contains(&("f".into(), EntryType::Regular)),
            "{contents:?}"
        );
        assert!(contents.contains(&("sub/deeper/x".into(), EntryType::Regular)));
        assert!(!contents
            .iter()
            .any(|(n, _)| n.starts_with("d/") || n == "d"));
        // A file source: one entry under its base name.
        let file = names(&pack_vec(&root, "d/sub/deeper/x", &PackOptions::default()));
        assert_eq!(file, vec![("x".into(), EntryType::Regular)]);
        // `/.` on a file is an error naming the path.
        let err = pack(
            &root,
            Path::new("/d/f/."),
            &PackOptions::default(),
            Vec::new(),
        );
        assert!(err.unwrap_err().to_string().contains("/d/f/."));
    }

    #[test]
    fn rename_names_the_source_and_its_contents() {
        let s = Scratch::new("rename");
        make_tree(&s.root_path());
        let root = s.root();
        let opts = PackOptions {
            rename: Some("new".into()),
            ..Default::default()
        };
        let dir = names(&pack_vec(&root, "/d", &opts));
        assert_eq!(dir[0], ("new".into(), EntryType::Directory));
        assert!(
            dir.iter().all(|(n, _)| n == "new" || n.starts_with("new/")),
            "{dir:?}"
        );
        // `/.` renamed: the directory's own entry under the new name too.
        let contents = names(&pack_vec(&root, "/d/.", &opts));
        assert_eq!(contents, dir);
        let file = names(&pack_vec(&root, "/d/f", &opts));
        assert_eq!(file, vec![("new".into(), EntryType::Regular)]);
    }

    #[test]
    fn follow_link_follows_only_the_source_and_stays_in_the_root() {
        let s = Scratch::new("follow");
        make_tree(&s.root_path());
        let r = s.root_path();
        std::os::unix::fs::symlink("/d/f", r.join("abs")).unwrap();
        // A link that lexically leaves the root: inside it, `/..` is `/`.
        std::os::unix::fs::symlink("../../sentinel", r.join("escape")).unwrap();
        let root = s.root();
        let plain = pack_vec(&root, "/abs", &PackOptions::default());
        assert_eq!(names(&plain), vec![("abs".into(), EntryType::Symlink)]);
        let opts = PackOptions {
            follow_link: true,
            ..Default::default()
        };
        let followed = pack_vec(&root, "/abs", &opts);
        let mut a = Archive::new(&followed[..]);
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(&*e.path_bytes(), b"abs");
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        assert_eq!(body, b"hello bytes");
        // A followed link to a directory names its entries after the link.
        std::os::unix::fs::symlink("d", r.join("ld")).unwrap();
        let ld = names(&pack_vec(&root, "/ld", &opts));
        assert!(ld.contains(&("ld/f".into(), EntryType::Regular)), "{ld:?}");
        assert_eq!(
            names(&pack_vec(&root, "/ld", &PackOptions::default())),
            vec![("ld".into(), EntryType::Symlink)]
        );
        // Links below the source are never followed, even with -L.
        let dir = names(&pack_vec(&root, "/d", &opts));
        assert!(dir.contains(&("d/link".into(), EntryType::Symlink)));
        // The escaping link resolves inside the root: no such file there.
        let err = pack(&root, Path::new("/escape"), &opts, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("/escape"), "{err}");
        s.sentinel_unchanged();
    }

    #[test]
    fn fifo_at_the_source_is_a_header_only() {
        let s = Scratch::new("fifo");
        fs::create_dir(s.root_path().join("d")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            s.root_path().join("d/p"),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let root = s.root();
        let start = std::time::Instant::now();
        let tar = pack_vec(&root, "/d", &PackOptions::default());
        assert!(names(&tar).contains(&("d/p".into(), EntryType::Fifo)));
        let tar = pack_vec(&root, "/d/p", &PackOptions::default());
        assert_eq!(names(&tar), vec![("p".into(), EntryType::Fifo)]);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        // And it unpacks to a fifo.
        let dst = Scratch::new("fifo-dst");
        unpack(
            &dst.root(),
            Path::new("/"),
            &tar[..],
            &UnpackOptions::default(),
        )
        .unwrap();
        assert!(fs::metadata(dst.root_path().join("p"))
            .unwrap()
            .file_type()
            .is_fifo());
    }

    /// Counts what is written, keeps nothing.
    struct Count(u64, Vec<u8>);
    impl Write for Count {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0 += b.len() as u64;
            // Keep the last bytes written: the data before the padding.
            self.1.extend_from_slice(b);
            let keep = self.1.len().saturating_sub(4096);
            self.1.drain(..keep);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn large_sparse_file_travels_as_its_data_only() {
        let s = Scratch::new("sparse");
        let path = s.root_path().join("big");
        let size: u64 = 10 << 30;
        {
            let f = fs::File::create(&path).unwrap();
            f.set_len(size).unwrap();
            rustix::io::pwrite(&f, b"HEAD", 0).unwrap();
            rustix::io::pwrite(&f, b"TAIL", size - 4).unwrap();
        }
        let start = std::time::Instant::now();
        let mut out = Count(0, Vec::new());
        pack(
            &s.root(),
            Path::new("/big"),
            &PackOptions::default(),
            &mut out,
        )
        .unwrap();
        // Headers and two data blocks, not 10 GiB.
        assert!(out.0 < 1 << 20, "{} bytes", out.0);
        let tar = pack_vec(&s.root(), "/big", &PackOptions::default());
        assert_eq!(names(&tar), vec![("big".into(), EntryType::GNUSparse)]);
        let mut a = Archive::new(&tar[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.size(), size);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn sparse_file_with_many_segments_round_trips() {
        let s = Scratch::new("sparse-many");
        let path = s.root_path().join("holes");
        let step: u64 = 1 << 20;
        let mut expect = vec![0u8; (step * 30) as usize];
        {
            let f = fs::File::create(&path).unwrap();
            f.set_len(step * 30).unwrap();
            // 28 data segments, the last hole at the end: more than the main header and one extension
            // header hold.
            for i in 0..28u64 {
                let data = format!("segment {i}");
                let off = i * step + 4096 * (i % 3);
                rustix::io::pwrite(&f, data.as_bytes(), off).unwrap();
                expect[off as usize..off as usize + data.len()].copy_from_slice(data.as_bytes());
            }
        }
        let tar = pack_vec(&s.root(), "/holes", &PackOptions::default());
        assert!(tar.len() < (step * 2) as usize, "{} bytes", tar.len());
        fs::create_dir(s.root_path().join("dst")).unwrap();
        unpack(
            &s.root(),
            Path::new("/dst"),
            &tar[..],
            &UnpackOptions::default(),
        )
        .unwrap();
        assert_eq!(fs::read(s.root_path().join("dst/holes")).unwrap(), expect);
        // A fully sparse file too.
        let empty = s.root_path().join("empty");
        fs::File::create(&empty).unwrap().set_len(step).unwrap();
        let tar = pack_vec(&s.root(), "/empty", &PackOptions::default());
        unpack(
            &s.root(),
            Path::new("/dst"),
            &tar[..],
            &UnpackOptions::default(),
        )
        .unwrap();
        assert_eq!(
            fs::read(s.root_path().join("dst/empty")).unwrap(),
            vec![0; step as usize]
        );
    }

    #[test]
    fn the_header_guard_skips_sparse_extension_blocks_before_the_data() {
        // A GNU sparse entry with extension blocks (6 segments: more than
        // the main header's 4) whose last data block looks like a tar
        // header with a 1 KiB body, followed by a 2 MiB long-name header.
        // The guard must skip exactly the extension blocks, then the data,
        // and so see (and refuse) the long-name header: counting the
        // extension blocks as data would misread the last data block as a
        // header and skip over the long name.
        let s = Scratch::new("sparse-guard");
        let path = s.root_path().join("holes");
        let step: u64 = 1 << 20;
        let decoy = raw(b"decoy", EntryType::Regular, b"", &[b'd'; 1024]);
        {
            let f = fs::File::create(&path).unwrap();
            f.set_len(step * 7).unwrap();
            for i in 0..6u64 {
                let mut block = vec![b's'; 4096];
                if i == 5 {
                    block[4096 - 512..].copy_from_slice(&decoy[..512]);
                }
                rustix::io::pwrite(&f, &block, i * step).unwrap();
            }
        }
        let mut tar = pack_vec(&s.root(), "/holes", &PackOptions::default());
        tar.truncate(tar.len() - 1024);
        let long = vec![b'n'; 2 << 20];
        tar.extend(stream(&[raw(
            b"././@LongLink",
            EntryType::GNULongName,
            b"",
            &long,
        )]));
        let err = unpack_err(&s, &tar, &UnpackOptions::default());
        assert!(err.contains("exceeds"), "{err}");
    }

    /// A raw header: the tar crate's setters refuse hostile names, so the
    /// bytes are written directly.
    fn raw(name: &[u8], kind: EntryType, link: &[u8], data: &[u8]) -> Vec<u8> {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_000_000_000);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    fn stream(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = entries.concat();
        out.extend_from_slice(&[0; 1024]);
        out
    }

    fn unpack_err(s: &Scratch, tar: &[u8], opts: &UnpackOptions) -> String {
        fs::create_dir_all(s.root_path().join("dst")).unwrap();
        let err = unpack(&s.root(), Path::new("/dst"), tar, opts).unwrap_err();
        s.sentinel_unchanged();
        err.to_string()
    }

    #[test]
    fn dotdot_names_are_refused_naming_the_entry() {
        let s = Scratch::new("dotdot");
        for name in [&b"../../sentinel"[..], b"a/../../sentinel", b"../x"] {
            let tar = stream(&[raw(name, EntryType::Regular, b"", b"pwned")]);
            let err = unpack_err(&s, &tar, &UnpackOptions::default());
            let shown = String::from_utf8_lossy(name);
            assert!(err.contains(&*shown), "{err}");
        }
        // The same names carried by a pax `path` record and a GNU long name.
        let record = |v: &str| {
            let body = format!(" path={v}\n");
            let mut len = body.len() + 2;
            if format!("{len}{body}").len() != len {
                len += 1;
            }
            format!("{len}{body}").into_bytes()
        };
        let pax = stream(&[
            raw(
                b"PaxHeader",
                EntryType::XHeader,
                b"",
                &record("../../sentinel"),
            ),
            raw(b"innocent", EntryType::Regular, b"", b"pwned"),
        ]);
        let err = unpack_err(&s, &pax, &UnpackOptions::default());
        assert!(err.contains("../../sentinel"), "{err}");
        let gnu = stream(&[
            raw(
                b"././@LongLink",
                EntryType::GNULongName,
                b"",
                b"../../sentinel\0",
            ),
            raw(b"innocent", EntryType::Regular, b"", b"pwned"),
        ]);
        let err = unpack_err(&s, &gnu, &UnpackOptions::default());
        assert!(err.contains("../../sentinel"), "{err}");
        // `a/../b` stays inside: allowed, as docker's Clean allows it.
        let tar = stream(&[raw(b"a/../b", EntryType::Regular, b"", b"ok")]);
        unpack(
            &s.root(),
            Path::new("/dst"),
            &tar[..],
            &UnpackOptions::default(),
        )
        .unwrap();
        assert_eq!(fs::read(s.root_path().join("dst/b")).unwrap(), b"ok");
    }

    #[test]
    fn absolute_names_are_contained_in_the_destination() {
        let s = Scratch::new("abs");
        let outer = s.outer.join("sentinel");
        let tar = stream(&[raw(
            outer.as_os_str().as_bytes(),
            EntryType::Regular,
            b"",
            b"pwned",
        )]);
        fs::create_dir(s.root_path().join("dst")).unwrap();
        unpack(
            &s.root(),
            Path::new("/dst"),
            &tar[..],
            &UnpackOptions::default(),
        )
        .unwrap();
        let inside = s
            .root_path()
            .join("dst")
            .join(outer.strip_prefix("/").unwrap());
        assert_eq!(fs::read(inside).unwrap(), b"pwned");
        s.sentinel_unchanged();
    }

    #[test]
    fn writes_through_a_symlink_entry_stay_in_the_root() {
        let s = Scratch::new("symwrite");
        let outer = s.outer.as_os_str().as_bytes().to_vec();
        for (i, target) in [outer.as_slice(), b"../../..", b"/.."].iter().enumerate() {
            let link = format!("l{i}");
            let tar = stream(&[
                raw(link.as_bytes(), EntryType::Symlink, target, b""),
                raw(
                    format!("{link}/sentinel").as_bytes(),
                    EntryType::Regular,
                    b"",
                    b"pwned",
                ),
            ]);
            fs::create_dir_all(s.root_path().join("dst")).unwrap();
            unpack(
                &s.root(),
                Path::new("/dst"),
                &tar[..],
                &UnpackOptions::default(),
            )
            .unwrap();
            s.sentinel_unchanged();
        }
        // `../../..` and `/..` are the root itself inside the root.
        assert_eq!(fs::read(s.root_path().join("sentinel")).unwrap(), b"pwned");
    }

    #[test]
    fn hardlinks_outside_or_through_symlinks_are_refused() {
        let s = Scratch::new("hardlink");
        fs::create_dir_all(s.root_path().join("dst/sub")).unwrap();
        fs::write(s.root_path().join("dst/sub/f"), b"in").unwrap();
        let cases: [Vec<Vec<u8>>; 4] = [
            vec![raw(b"h", EntryType::Link, b"../../sentinel", b"")],
            vec![
                raw(b"s", EntryType::Symlink, b"/..", b""),
                raw(b"h", EntryType::Link, b"s/sentinel", b""),
            ],
            vec![
                raw(
                    b"s2",
                    EntryType::Symlink,
                    s.outer.as_os_str().as_bytes(),
                    b"",
                ),
                raw(b"h2", EntryType::Link, b"s2/sentinel", b""),
            ],
            // Even a symlink that stays inside is not a way to a target.
            vec![
                raw(b"s3", EntryType::Symlink, b"sub", b""),
                raw(b"h3", EntryType::Link, b"s3/f", b""),
            ],
        ];
        for case in cases {
            let err = unpack_err(&s, &stream(&case), &UnpackOptions::default());
            assert!(err.contains("\"h"), "{err}");
            assert_eq!(fs::metadata(s.outer.join("sentinel")).unwrap().nlink(), 1);
        }
        // A hardlink to an earlier entry works.
        let tar = stream(&[
            raw(b"f", EntryType::Regular, b"", b"data"),
            raw(b"g", EntryType::Link, b"f", b""),
        ]);
        unpack(
            &s.root(),
            Path::new("/dst"),
            &tar[..],
            &UnpackOptions::default(),
        )
        .unwrap();
        assert_eq!(
            fs::metadata(s.root_path().join("dst/g")).unwrap().nlink(),
            2
        );
    }

    #[test]
    fn device_nodes_are_refused_unless_allowed() {
        let s = Scratch::new("dev");
        let mut h = Header::new_gnu();
        h.set_path("null").unwrap();
        h.set_entry_type(EntryType::Char);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_size(0);
        h.set_mode(0o666);
        h.set_cksum();
        let tar = stream(&[h.as_bytes().to_vec()]);
        let err = unpack_err(&s, &tar, &UnpackOptions::default());
        assert!(err.contains("\"null\"") && err.contains("device"), "{err}");
        assert!(!s.root_path().join("dst/null").exists());
        if rustix::process::geteuid().is_root() {
            let opts = UnpackOptions {
                allow_devices: true,
                ..Default::default()
            };
            unpack(&s.root(), Path::new("/dst"), &tar[..], &opts).unwrap();
            let m = fs::metadata(s.root_path().join("dst/null")).unwrap();
            assert!(m.file_type().is_char_device());
            assert_eq!(m.mode() & 0o7777, 0o666);
        }
    }

    #[test]
    fn malformed_and_huge_headers_are_errors() {
        let s = Scratch::new("malformed");
        // Bad checksum.
        let mut bad = raw(b"f", EntryType::Regular, b"", b"abc");
        bad[148] ^= 0x11;
        let err = unpack_err(&s, &stream(&[bad]), &UnpackOptions::default());
        assert!(!err.is_empty());
        // A size far larger than the stream: an error, not a panic or an
        // allocation of that size.
        let mut h = Header::new_gnu();
        h.set_path("huge").unwrap();
        h.set_entry_type(EntryType::Regular);
        h.set_size(u64::MAX / 2);
        h.set_cksum();
        let mut tar = h.as_bytes().to_vec();
        tar.extend_from_slice(&[7; 4096]);
        let err = unpack_err(&s, &tar, &UnpackOptions::default());
        assert!(err.contains("huge"), "{err}");
        // A GNU long name claiming 1 TiB: refused before it is read.
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(EntryType::GNULongName);
        h.set_size(1 << 40);
        h.set_cksum();
        let mut tar = h.as_bytes().to_vec();
        tar.extend_from_slice(&[b'a'; 8192]);
        let err = unpack_err(&s, &tar, &UnpackOptions::default());
        assert!(err.contains("extension header"), "{err}");
        // Long names within bounds still work.
        let long = "d/".repeat(60) + "file";
        let mut b = Builder::new(Vec::new());
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"ok"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        unpack(
            &s.root(),
            Path::new("/dst"),
            &tar[..],
            &UnpackOptions::default(),
        )
        .unwrap();
        assert_eq!(
            fs::read(s.root_path().join("dst").join(&long)).unwrap(),
            b"ok"
        );
        // Garbage.
        let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        let _ = unpack_err(&s, &junk, &UnpackOptions::default());
    }

    #[test]
    fn directory_and_non_directory_never_replace_each_other() {
        let s = Scratch::new("dirnondir");
        let dst = s.root_path().join("dst");
        fs::create_dir_all(dst.join("isdir")).unwrap();
        fs::write(dst.join("isfile"), b"keep").unwrap();
        let err = unpack_err(
            &s,
            &stream(&[raw(b"isdir", EntryType::Regular, b"", b"x")]),
            &UnpackOptions::default(),
        );
        assert!(err.contains("isdir") && err.contains("directory"), "{err}");
        let err = unpack_err(
            &s,
            &stream(&[raw(b"isfile", EntryType::Directory, b"", b"")]),
            &UnpackOptions::default(),
        );
        assert!(err.contains("isfile"), "{err}");
        assert_eq!(fs::read(dst.join("isfile")).unwrap(), b"keep");
        // A file replaces a file; a directory over a directory is merged.
        let tar = stream(&[
            raw(b"isfile", EntryType::Regular, b"", b"new"),
            raw(b"isdir/", EntryType::Directory, b"", b""),
        ]);
        unpack(
            &s.root(),
            Path::new("/dst"),
            &tar[..],
            &UnpackOptions::default(),
        )
        .unwrap();
        assert_eq!(fs::read(dst.join("isfile")).unwrap(), b"new");
        assert!(dst.join("isdir").is_dir());
    }

    #[test]
    fn owners_are_mapped_both_ways() {
        let ids = IdMap {
            uids: vec![IdMapping {
                container_id: 0,
                host_id: 100_000,
                size: 65_536,
            }],
            gids: vec![IdMapping {
                container_id: 0,
                host_id: 200_000,
                size: 65_536,
            }],
        };
        assert_eq!(ids.host_to_container(100_005, 200_007), (5, 7));
        assert_eq!(ids.host_to_container(0, 0), (OVERFLOW_ID, OVERFLOW_ID));
        assert_eq!(ids.container_to_host(5, 7), Some((100_005, 200_007)));
        assert_eq!(ids.container_to_host(70_000, 0), None);
        assert_eq!(IdMap::default().container_to_host(3, 4), Some((3, 4)));
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let s = Scratch::new("owners");
        let f = s.root_path().join("f");
        fs::write(&f, b"x").unwrap();
        rustix::fs::chown(
            &f,
            Some(Uid::from_raw(100_005)),
            Some(Gid::from_raw(200_007)),
        )
        .unwrap();
        let opts = PackOptions {
            ids: ids.clone(),
            ..Default::default()
        };
        let tar = pack_vec(&s.root(), "/f", &opts);
        let mut a = Archive::new(&tar[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(
            (e.header().uid().unwrap(), e.header().gid().unwrap()),
            (5, 7)
        );
        // Back in with -a: host ids again.
        fs::create_dir(s.root_path().join("dst")).unwrap();
        let uopts = UnpackOptions {
            ownership: Ownership::Archive,
            ids: ids.clone(),
            allow_devices: false,
        };
        unpack(&s.root(), Path::new("/dst"), &tar[..], &uopts).unwrap();
        let m = fs::metadata(s.root_path().join("dst/f")).unwrap();
        assert_eq!((m.uid(), m.gid()), (100_005, 200_007));
        // Fixed: the container's user, mapped.
        let uopts = UnpackOptions {
            ownership: Ownership::Fixed { uid: 1, gid: 2 },
            ids,
            allow_devices: false,
        };
        unpack(&s.root(), Path::new("/dst"), &tar[..], &uopts).unwrap();
        let m = fs::metadata(s.root_path().join("dst/f")).unwrap();
        assert_eq!((m.uid(), m.gid()), (100_001, 200_002));
        // Caller: no chown at all.
        unpack(
            &s.root(),
            Path::new("/dst"),
            &tar[..],
            &UnpackOptions::default(),
        )
        .unwrap();
        let m = fs::metadata(s.root_path().join("dst/f")).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0));
    }
}
