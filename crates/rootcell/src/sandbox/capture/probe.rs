//! The usage probe of `--filesCountLimit` and `--filesSizeLimit`.

use super::*;

// ---------------------------------------------------------------------
// The usage probe.

/// (inodes, bytes, regular files, their bytes) counted in a tree.
#[derive(Default, Clone, Copy)]
pub(super) struct Count {
    pub(super) inodes: u64,
    pub(super) allocated: u64,
    pub(super) files: u64,
    pub(super) file_bytes: u64,
}

/// Entries a usage walk looks at before it stops (then it reports what it
/// has counted so far).
pub(super) const USAGE_BUDGET: u64 = 4_000_000;

/// Counts what is below `dir` (fd-relative, no symlink followed, nothing
/// on another filesystem than `dev`: while the sandbox runs, its root is
/// mounted on the staging's `root/`; depth and entries bounded); `skip`:
/// names at this level counted but not walked.
pub(super) fn count_tree(
    dir: OwnedFd,
    dev: u64,
    depth: usize,
    skip: &[&[u8]],
    budget: &mut u64,
    count: &mut Count,
) {
    let Ok(mut entries) = Dir::new(dir) else {
        return;
    };
    while let Some(Ok(entry)) = entries.read() {
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(fd) = entries.fd() else { return };
        let Ok(st) = statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        count.inodes += 1;
        if device(&st) != dev {
            // A mount point (the sandbox's root on `root/`): the entry is
            // one inode here, what is mounted on it is not counted.
            continue;
        }
        count.allocated += allocated(&st);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {
                count.files += 1;
                count.file_bytes += u64::try_from(st.st_size).unwrap_or(0);
            }
            FileType::Directory if depth < MAX_DEPTH && !skip.contains(&bytes) => {
                if let Ok(child) = openat(
                    fd,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    count_tree(child, dev, depth + 1, &[], budget, count);
                }
            }
            _ => {}
        }
    }
}

/// (files, bytes) the command has written so far into the staging's
/// `upper/` (overlay upper layers and hidden directories), for
/// `--filesCountLimit` and `--filesSizeLimit`. `staging`: an fd of the
/// staging filesystem's root (`O_PATH` is enough).
///
/// On a tmpfs staging this is one `statfs` (inodes in use, blocks in use)
/// minus what the staging holds outside `upper/` (`work/`, `files/`,
/// `root/`: a small walk): every inode counts (files, directories, symlinks,
/// whiteouts) and bytes are the memory used. On a directory staging
/// (`--no-tmpfs`) it is BenchExec's count: a bounded walk of `upper/`
/// counting regular files and their sizes.
pub fn usage(staging: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let fs = fstatfs(staging)?;
    let dev = device(&fstat(staging)?);
    let open_dir = |at: BorrowedFd<'_>, name: &CStr| {
        openat(
            at,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let mut budget = USAGE_BUDGET;
    if fs.f_type as u64 == TMPFS_MAGIC {
        // `root/` is where the sandbox's root is assembled: one empty
        // directory here, mounts on top of it are not the staging's.
        let mut own = Count::default();
        let skip: &[&[u8]] = &[b"upper", b"root"];
        count_tree(
            open_dir(staging, c".")?,
            dev,
            1,
            skip,
            &mut budget,
            &mut own,
        );
        let used_inodes = (fs.f_files as u64).saturating_sub(fs.f_ffree as u64);
        let used_bytes = (fs.f_blocks as u64)
            .saturating_sub(fs.f_bfree as u64)
            .saturating_mul(fs.f_bsize as u64);
        // The staging's root inode is not the command's either.
        let files = used_inodes.saturating_sub(own.inodes + 1);
        Ok((files, used_bytes.saturating_sub(own.allocated)))
    } else {
        let upper = match open_dir(staging, c"upper") {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok((0, 0)),
            Err(e) => return Err(e.into()),
        };
        let mut count = Count::default();
        count_tree(upper, dev, 1, &[], &mut budget, &mut count);
        Ok((count.files, count.file_bytes))
    }
}

/// `usage` relative to what the staging held when the probe was made:
/// made after the sandbox's setup and before the command starts, it counts
/// exactly what the command wrote (the layout's own directories in
/// `upper/` included out).
pub struct UsageProbe<'a> {
    pub(super) staging: BorrowedFd<'a>,
    pub(super) baseline: (u64, u64),
}

impl<'a> UsageProbe<'a> {
    pub fn new(staging: BorrowedFd<'a>) -> io::Result<UsageProbe<'a>> {
        Ok(UsageProbe {
            staging,
            baseline: usage(staging)?,
        })
    }

    /// (files, bytes) written since the probe was made.
    pub fn usage(&self) -> io::Result<(u64, u64)> {
        let (files, bytes) = usage(self.staging)?;
        Ok((
            files.saturating_sub(self.baseline.0),
            bytes.saturating_sub(self.baseline.1),
        ))
    }
}
