//! `pack`: a tree inside a root → a tar stream.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{fstat, openat, readlinkat, Dir, FileType, Mode, OFlags, SeekFrom, Stat};
use rustix::io::{pread, Errno};
use tar::{Builder, EntryType, Header};

use super::{io_err, xattr, PackOptions, CHUNK};

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
use crate::fs::procfs::{self, ProcfsBase};
use crate::fs::RootDir;
use crate::Result;
use pathrs::flags::OpenFlags;

/// Writes `src` (a path inside `root`) to `out` as a tar stream.
pub fn pack(root: &RootDir, src: &Path, opts: &PackOptions, out: impl Write) -> Result<()> {
    pack_with(root, src, opts, out, None)
}

/// `pack` into a pipe or a file: the data of big files goes from file to
/// `out` with `sendfile` (in the kernel, no copy through this process).
pub fn pack_into(root: &RootDir, src: &Path, opts: &PackOptions, out: &File) -> Result<()> {
    pack_with(root, src, opts, out, Some(out.as_fd()))
}

fn pack_with(
    root: &RootDir,
    src: &Path,
    opts: &PackOptions,
    out: impl Write,
    direct: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let ctx = || format!("{}", src.display());
    let fd = if opts.follow_link {
        root.resolve(src)
    } else {
        root.resolve_nofollow(src)
    }
    .map_err(|e| io_err(ctx(), e))?;
    let st = fstat(&fd).map_err(|e| io_err(ctx(), e))?;
    // Headers, small files and padding gathered into CHUNK-sized writes
    // instead of three writes per entry (the stream is usually a pipe).
    let mut p = Packer {
        builder: Builder::new(BufWriter::with_capacity(CHUNK, out)),
        opts,
        links: HashMap::new(),
        direct,
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

struct Packer<'o, 'd, W: Write> {
    builder: Builder<BufWriter<W>>,
    opts: &'o PackOptions,
    /// (dev, ino) of files with several links → the name of the first.
    links: HashMap<(u64, u64), PathBuf>,
    /// The stream's own fd when it is a pipe or a file (`pack_into`).
    direct: Option<BorrowedFd<'d>>,
}

impl<W: Write> Packer<'_, '_, W> {
    /// Writes every entry below the directory `dir`, named under `prefix`.
    /// Explicit stack: depth costs heap (and one fd per level), not stack.
    fn walk_dir(&mut self, dir: &OwnedFd, prefix: PathBuf) -> Result<()> {
        type Names = Vec<(OsString, FileType)>;
        let mut stack = vec![(reopen_dir(dir, &prefix)?, prefix, None::<Names>)];
        while let Some((fd, prefix, names)) = stack.last_mut() {
            let names = match names {
                Some(n) => n,
                None => {
                    let list = list_dir(fd, prefix)?;
                    names.insert(list)
                }
            };
            let Some((name, listed)) = names.pop() else {
                stack.pop();
                continue;
            };
            let path = prefix.join(&name);
            // Listed as a regular file: opened for reading at once (one
            // open, one fstat), the way open_regular checks it. Anything
            // else, or a name that is no longer a regular file, takes the
            // general way below.
            if listed == FileType::RegularFile {
                match open_listed_file(fd, &name) {
                    Ok(Some((file, st))) => {
                        self.append_file(&file, &st, &path)?;
                        continue;
                    }
                    Ok(None) | Err(Errno::LOOP) => {}
                    Err(Errno::NOENT) => continue,
                    Err(e) => return Err(io_err(path.display().to_string(), e)),
                }
            }
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

    /// Appends the entry of a regular file already open for reading
    /// (`open_listed_file`), `st` its fstat.
    fn append_file(&mut self, file: &File, st: &Stat, name: &Path) -> Result<()> {
        match self.header(st, name)? {
            Some(h) => {
                self.xattrs(file, name)?;
                self.append_data(h, file, st, name)
            }
            None => Ok(()),
        }
    }

    /// The header of an entry for `st` (mode, container-side owner,
    /// mtime), or None when it was written as a hardlink to an inode met
    /// before.
    fn header(&mut self, st: &Stat, name: &Path) -> Result<Option<Header>> {
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
                self.builder
                    .append_link(&mut h, name, first)
                    .map_err(|e| io_err(name.display().to_string(), e))?;
                return Ok(None);
            }
            self.links.insert(key, name.to_path_buf());
        }
        Ok(Some(h))
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
        let Some(mut h) = self.header(st, name)? else {
            return Ok(());
        };
        let res = match ft {
            FileType::Directory => {
                h.set_entry_type(EntryType::Directory);
                let dir = reopen_dir(fd, name)?;
                self.xattrs(&dir, name)?;
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
                self.xattrs(&file, name)?;
                return self.append_data(h, &file, st, name);
            }
            // Sockets and the rest: skipped, as docker's archiver does.
            _ => return Ok(()),
        };
        res.map_err(|e| io_err(ctx(), e))
    }

    /// Appends a regular file's header `h` and its data, read from `file`.
    fn append_data(&mut self, mut h: Header, file: &File, st: &Stat, name: &Path) -> Result<()> {
        let len = st.st_size.max(0) as u64;
        h.set_size(len);
        // Fewer blocks than bytes: holes, written as a GNU sparse
        // entry (only the data segments travel).
        let segments = if (st.st_blocks as u64).saturating_mul(512) < len {
            data_segments(file.as_fd(), len)
        } else {
            None
        };
        let res = match segments {
            Some(segs) => {
                let ext = sparse_header(&mut h, &segs, len);
                let data = SegmentReader {
                    fd: file.as_fd(),
                    segs: &segs,
                    index: 0,
                    done: 0,
                };
                self.builder
                    .append_data(&mut h, name, io::Cursor::new(ext).chain(data))
            }
            None if len < CHUNK as u64 => {
                h.set_entry_type(EntryType::Regular);
                // As many blocks as bytes: read as one data segment (no
                // SEEK_DATA/SEEK_HOLE per small file; a hole, if any,
                // reads as the same zeros).
                let dense = (st.st_blocks as u64).saturating_mul(512) >= len;
                let reader = SparseReader::new(file.as_fd(), len, dense);
                self.builder.append_data(&mut h, name, reader)
            }
            // A big file without holes: the header alone (the tar crate
            // writes no data and no padding for an empty reader), then the
            // data moved by the kernel.
            None => {
                h.set_entry_type(EntryType::Regular);
                self.builder
                    .append_data(&mut h, name, io::empty())
                    .and_then(|()| copy_exact(file, len, self.builder.get_mut(), self.direct))
            }
        };
        res.map_err(|e| io_err(name.display().to_string(), e))
    }
}

impl<W: Write> Packer<'_, '_, W> {
    /// The PAX header with the xattrs of the entry `name` (open as `fd`),
    /// written before its own header when it has any.
    fn xattrs(&mut self, fd: impl AsFd, name: &Path) -> Result<()> {
        let records = xattr::pack_records(fd, &self.opts.ids, name);
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(|e| io_err(name.display().to_string(), e))
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

/// The names in a directory with their type as listed (`d_type`, Unknown
/// where the filesystem does not say), sorted (reversed: popped from the
/// end), so the stream's order does not depend on the filesystem.
fn list_dir(fd: &OwnedFd, name: &Path) -> Result<Vec<(OsString, FileType)>> {
    let dup = fd.try_clone().map_err(|e| io_err("dup", e))?;
    let dir = Dir::new(dup).map_err(|e| io_err(name.display().to_string(), e))?;
    let mut names = Vec::new();
    for ent in dir {
        let ent = ent.map_err(|e| io_err(name.display().to_string(), e))?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push((OsStr::from_bytes(n).to_os_string(), ent.file_type()));
        }
    }
    names.sort_unstable_by(|a, b| b.0.cmp(&a.0));
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

/// Writes exactly `len` bytes of `file` (read from its start) and the
/// padding to the next 512-byte block. With the stream's fd (`direct`), the
/// bytes go with `sendfile` after `out` is flushed: the kernel moves them
/// from the page cache into the pipe, at most `len` of them, from offsets
/// of this open file (the fd checked by `open_regular`); elsewhere, or
/// where the kernel refuses, a read/write loop. A file truncated meanwhile
/// ends in zeros and a file that grew is cut at `len`, so the entry always
/// matches its header.
fn copy_exact<W: Write>(
    file: &File,
    len: u64,
    out: &mut BufWriter<W>,
    direct: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut done = 0u64;
    if let Some(fd) = direct {
        out.flush()?;
        let mut off = 0u64;
        while done < len {
            let n = (len - done).min(1 << 30) as usize;
            match rustix::fs::sendfile(fd, file, Some(&mut off), n) {
                // Truncated meanwhile.
                Ok(0) => break,
                Ok(k) => done += k as u64,
                Err(Errno::INTR) => {}
                // No sendfile between these two: the loop below.
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) if done == 0 => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    if done == 0 {
        done = io::copy(&mut file.take(len), out)?;
    }
    let zeros = [0u8; 4096];
    while done < len {
        let n = (len - done).min(zeros.len() as u64) as usize;
        out.write_all(&zeros[..n])?;
        done += n as u64;
    }
    let pad = (512 - len % 512) % 512;
    out.write_all(&zeros[..pad as usize])
}

/// Opens the entry `name` of `dir`, listed as a regular file, for reading:
/// `O_NOFOLLOW` (a symlink put there meanwhile fails with `ELOOP`),
/// `O_NONBLOCK` (a fifo put there meanwhile does not block the open), and
/// then checked with `fstat`: None when it is no longer a regular file (the
/// caller looks at it again the general way, never reading it).
fn open_listed_file(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<Option<(File, Stat)>> {
    let fd = openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = fstat(&fd)?;
    Ok(
        (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
            .then(|| (File::from(fd), st)),
    )
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
}

impl Read for SegmentReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while let Some(&(off, len)) = self.segs.get(self.index) {
            if self.done == len {
                self.index += 1;
                self.done = 0;
                continue;
            }
            // Read straight into the caller's buffer (no copy).
            let n = out.len().min((len - self.done).min(CHUNK as u64) as usize);
            let got = match pread(self.fd, &mut out[..n], off + self.done)? {
                // Truncated meanwhile: zeros, so the entry keeps its size.
                0 => {
                    out[..n].fill(0);
                    n
                }
                got => got,
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
}

impl<'a> SparseReader<'a> {
    /// `dense`: the whole file is taken as one data segment.
    fn new(fd: BorrowedFd<'a>, len: u64, dense: bool) -> Self {
        SparseReader {
            fd,
            len,
            pos: 0,
            data: dense.then_some((0, len)),
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
        // Read straight into the caller's buffer (no copy).
        let n = want.min((end - self.pos) as usize);
        let got = pread(self.fd, &mut out[..n], self.pos)?;
        if got == 0 {
            // Truncated meanwhile: the rest reads as zeros.
            self.data = Some((self.len, self.len));
            return self.read(out);
        }
        self.pos += got as u64;
        Ok(got)
    }
}
