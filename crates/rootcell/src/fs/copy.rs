//! Copying a regular file's data from one fd to another, in the kernel
//! where it can (`copy_file_range`, then `sendfile`, then `pread`/`pwrite`),
//! keeping holes: a sparse file made by a sandboxed command stays sparse in
//! the output directory instead of being written out as zeros.

use std::io;
use std::os::fd::BorrowedFd;

use rustix::fs::{copy_file_range, ftruncate, seek, sendfile, SeekFrom};
use rustix::io::{pread, pwrite, Errno};

/// The largest chunk handed to the kernel in one call.
const CHUNK: usize = 1 << 30;

/// How data is moved; each fallback is kept once chosen.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum Method {
    #[default]
    CopyFileRange,
    Sendfile,
    ReadWrite,
}

/// Copies many files between the same two filesystems: the method that
/// worked is kept from one file to the next (`copy_file_range` between a
/// tmpfs and another filesystem fails with `EXDEV` every time).
#[derive(Debug, Default)]
pub struct Copier {
    method: Method,
}

impl Copier {
    pub fn new() -> Copier {
        Copier::default()
    }

    /// `copy_data`, starting with the method the last copy ended with.
    pub fn copy(
        &mut self,
        from: BorrowedFd<'_>,
        to: BorrowedFd<'_>,
        len: u64,
        sparse: bool,
    ) -> io::Result<()> {
        copy_with(from, to, len, sparse, &mut self.method)
    }
}

/// Copies the first `len` bytes of `from` into `to`, an empty regular
/// file, and sets `to`'s size to `len`. With `sparse` (the caller saw fewer
/// blocks than bytes), only the data segments of `from` are copied
/// (`SEEK_DATA`/`SEEK_HOLE`) and what lies between stays a hole. `len`
/// bounds the copy even if `from` grows meanwhile; a file that shrinks ends
/// the copy at its end. Uses explicit offsets only, except `to`'s position
/// for `sendfile`.
pub fn copy_data(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    len: u64,
    sparse: bool,
) -> io::Result<()> {
    copy_with(from, to, len, sparse, &mut Method::CopyFileRange)
}

fn copy_with(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    len: u64,
    sparse: bool,
    method: &mut Method,
) -> io::Result<()> {
    // `to` is empty and fresh: its position (for `sendfile`) is 0.
    let mut to_pos = 0u64;
    if !sparse {
        // The common case: no hole to look for, no size to set afterwards.
        if copy_range(from, to, 0, len, method, &mut to_pos)? {
            return Ok(());
        }
        ftruncate(to, len)?;
        return Ok(());
    }
    let mut offset = 0u64;
    while offset < len {
        // Filesystems without hole reporting answer EINVAL (or treat the
        // whole file as data, which is the same here).
        let data = match seek(from, SeekFrom::Data(offset)) {
            Ok(data) => data,
            Err(Errno::NXIO) => break, // only a hole is left
            Err(Errno::INVAL) | Err(Errno::OPNOTSUPP) => offset,
            Err(e) => return Err(e.into()),
        };
        if data >= len {
            break;
        }
        let hole = match seek(from, SeekFrom::Hole(data)) {
            Ok(hole) => hole.min(len),
            Err(Errno::INVAL) | Err(Errno::OPNOTSUPP) => len,
            Err(e) => return Err(e.into()),
        };
        if !copy_range(from, to, data, hole - data, method, &mut to_pos)? {
            break; // end of file came early
        }
        offset = hole;
    }
    ftruncate(to, len)?;
    Ok(())
}

/// Copies `count` bytes at `start` of `from` to the same offset of `to`.
/// `Ok(false)`: `from` ended first.
fn copy_range(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    start: u64,
    count: u64,
    method: &mut Method,
    to_pos: &mut u64,
) -> io::Result<bool> {
    let end = start + count;
    let mut pos = start;
    while pos < end {
        let want = usize::try_from(end - pos).unwrap_or(CHUNK).min(CHUNK);
        let done = match *method {
            Method::CopyFileRange => {
                let (mut in_off, mut out_off) = (pos, pos);
                match copy_file_range(from, Some(&mut in_off), to, Some(&mut out_off), want) {
                    Ok(n) => n,
                    // Across filesystems, or a filesystem that cannot.
                    Err(Errno::XDEV)
                    | Err(Errno::INVAL)
                    | Err(Errno::NOSYS)
                    | Err(Errno::OPNOTSUPP)
                    | Err(Errno::PERM) => {
                        *method = Method::Sendfile;
                        continue;
                    }
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Method::Sendfile => {
                // `sendfile` writes at `to`'s position: moved only when a
                // hole was skipped.
                if *to_pos != pos {
                    seek(to, SeekFrom::Start(pos))?;
                    *to_pos = pos;
                }
                let mut in_off = pos;
                match sendfile(to, from, Some(&mut in_off), want) {
                    Ok(n) => {
                        *to_pos += n as u64;
                        n
                    }
                    Err(Errno::INVAL) | Err(Errno::NOSYS) | Err(Errno::OPNOTSUPP) => {
                        *method = Method::ReadWrite;
                        continue;
                    }
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Method::ReadWrite => {
                let mut buf = vec![0u8; want.min(1 << 20)];
                let n = match pread(from, &mut buf, pos) {
                    Ok(n) => n,
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                };
                let mut written = 0;
                while written < n {
                    match pwrite(to, &buf[written..n], pos + written as u64) {
                        Ok(0) => return Err(Errno::IO.into()),
                        Ok(w) => written += w,
                        Err(Errno::INTR) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                n
            }
        };
        if done == 0 {
            return Ok(false);
        }
        pos += done as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("rootcell-copy-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn copies_data_and_keeps_holes() {
        let dir = temp("holes");
        let src_path = dir.join("src");
        let mut src = std::fs::File::create(&src_path).unwrap();
        src.write_all(b"head").unwrap();
        src.seek(std::io::SeekFrom::Start(64 << 20)).unwrap();
        src.write_all(b"tail").unwrap();
        src.set_len((128 << 20) + 3).unwrap();
        drop(src);
        let src = std::fs::File::open(&src_path).unwrap();
        let dst = std::fs::File::create_new(dir.join("dst")).unwrap();
        let len = src.metadata().unwrap().len();
        copy_data(src.as_fd(), dst.as_fd(), len, true).unwrap();
        let meta = dst.metadata().unwrap();
        assert_eq!(meta.len(), len);
        use std::os::unix::fs::MetadataExt;
        // The 128 MiB of holes are not written out (a few blocks at most).
        assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
        let mut got = Vec::new();
        std::fs::File::open(dir.join("dst"))
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[64 << 20..(64 << 20) + 4], b"tail");
        assert!(got[4..64 << 20].iter().all(|&b| b == 0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn len_bounds_the_copy_and_every_method_copies() {
        let dir = temp("methods");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.join("src"), &data).unwrap();
        for method in [Method::CopyFileRange, Method::Sendfile, Method::ReadWrite] {
            let src = std::fs::File::open(dir.join("src")).unwrap();
            let name = dir.join(format!("dst{}", method as u8));
            let dst = std::fs::File::create_new(&name).unwrap();
            let mut m = method;
            assert!(copy_range(src.as_fd(), dst.as_fd(), 1000, 200_000, &mut m, &mut 0).unwrap());
            let got = std::fs::read(&name).unwrap();
            assert_eq!(got.len(), 201_000);
            assert_eq!(&got[1000..], &data[1000..201_000]);
            // Past the end: reports the early end.
            let mut m = method;
            assert!(!copy_range(
                src.as_fd(),
                dst.as_fd(),
                299_000,
                5000,
                &mut m,
                &mut 201_000
            )
            .unwrap());
        }
        // One copier for many files keeps its method; each file starts at
        // its own offset 0.
        for method in [Method::Sendfile, Method::ReadWrite] {
            let mut copier = Copier { method };
            for (i, len) in [(0, 7u64), (1, 250_000), (2, 3)] {
                let src = std::fs::File::open(dir.join("src")).unwrap();
                let name = dir.join(format!("many{}-{i}", method as u8));
                let dst = std::fs::File::create_new(&name).unwrap();
                copier.copy(src.as_fd(), dst.as_fd(), len, false).unwrap();
                assert_eq!(std::fs::read(&name).unwrap(), &data[..len as usize]);
            }
            assert!(copier.method == method);
        }
        let src = std::fs::File::open(dir.join("src")).unwrap();
        let dst = std::fs::File::create_new(dir.join("short")).unwrap();
        copy_data(src.as_fd(), dst.as_fd(), 10, false).unwrap();
        assert_eq!(std::fs::read(dir.join("short")).unwrap(), &data[..10]);
        // A file that shrank: the copy keeps the size seen.
        let dst = std::fs::File::create_new(dir.join("long")).unwrap();
        copy_data(src.as_fd(), dst.as_fd(), 400_000, false).unwrap();
        let got = std::fs::read(dir.join("long")).unwrap();
        assert_eq!(got.len(), 400_000);
        assert_eq!(&got[..300_000], &data[..]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
