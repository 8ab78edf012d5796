//! Tar names and headers checked before `unpack` trusts them.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use tar::Header;

// ---------------------------------------------------------------- unpack

/// Cleans a tar name lexically, as docker's `filepath.Clean` + `Join(dest,
/// name)` do: a leading `/` is dropped (the name is joined to the
/// destination), `.` disappears, `a/../b` is `b`; a name that climbs above
/// the destination is refused. Returns None for the destination itself.
pub(super) fn clean_name(name: &Path) -> std::result::Result<Option<PathBuf>, &'static str> {
    // The kernel's PATH_MAX: a longer name (a GNU long name or pax path
    // can be up to `MAX_EXTENSION`) would be made one directory at a time,
    // a tree no path can name (`tar` and docker fail it with ENAMETOOLONG).
    if name.as_os_str().len() >= PATH_MAX {
        return Err("the name is longer than PATH_MAX (4096 bytes)");
    }
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

/// The kernel's limit on a path's length, its terminating NUL included.
pub(super) const PATH_MAX: usize = 4096;

/// The largest extension entry (GNU long name or link, pax header) read:
/// the tar crate holds these in memory, so a hostile size is refused before
/// it is read (the kernel's PATH_MAX is 4096; pax records with xattrs are
/// larger, still far below this).
pub(super) const MAX_EXTENSION: u64 = 1 << 20;

/// Follows the stream's 512-byte block structure next to the tar crate and
/// refuses an extension header (`L`, `K`, `x`, `g`) larger than
/// `MAX_EXTENSION`, so a hostile stream cannot make the reader allocate
/// what its header claims. Data blocks pass through untouched.
pub(super) struct HeaderGuard<R> {
    inner: R,
    /// The data of the last local pax header (`x`), kept for the entry
    /// header that follows it, then handed over in `entry_pax`.
    capture: Option<Vec<u8>>,
    /// Bytes of the pax header still to capture.
    capture_left: u64,
    /// The entry header whose pax data is in `entry_pax` has been read:
    /// the tar crate reads no further before it returns that entry.
    entry_pax: Rc<RefCell<Option<Vec<u8>>>>,
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
    pub(super) fn new(inner: R) -> Self {
        HeaderGuard {
            inner,
            capture: None,
            capture_left: 0,
            entry_pax: Rc::default(),
            skip: 0,
            pending: 0,
            sparse_ext: false,
            block: [0; 512],
            fill: 0,
        }
    }

    /// Where the raw pax data (`x`) of the entry last read appears (None
    /// when it had none). The tar crate splits pax records at newlines, so
    /// binary values (xattrs) are parsed from these bytes instead.
    pub(super) fn entry_pax(&self) -> Rc<RefCell<Option<Vec<u8>>>> {
        self.entry_pax.clone()
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
        match kind {
            b'x' => {
                self.capture = Some(Vec::with_capacity(size as usize));
                self.capture_left = size;
            }
            // A GNU long name or link belongs to the same member; a global
            // header to none.
            b'L' | b'K' | b'g' => {}
            // The member's own header: its pax data (if any) is handed over.
            _ => {
                *self.entry_pax.borrow_mut() = self.capture.take();
                self.capture_left = 0;
            }
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
                if self.capture_left > 0 {
                    let c = k.min(self.capture_left.min(usize::MAX as u64) as usize);
                    if let Some(buf) = self.capture.as_mut() {
                        buf.extend_from_slice(&rest[..c]);
                    }
                    self.capture_left -= c as u64;
                }
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
