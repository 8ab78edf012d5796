//! The host side of a sandbox's filesystem: the staging filesystem is made
//! before the sandbox exists and held by fd for the whole run (result
//! capture reads it after the command ended, never through a path), then
//! removed. Init's side (attaching it, the steps) is `rootfs::Rootfs`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, IoContext, Result};
use crate::fs::mount as mnt;
use crate::plan::options::attr;
use crate::plan::{Staging, StagingFilesystem};
use crate::rootfs::StagingHandle;

/// The staging filesystem of one run, owned by the runtime.
pub struct StagingFs {
    /// The detached tmpfs, or the directory (`O_PATH`).
    fd: OwnedFd,
    /// `--no-tmpfs`: the directory's path, and its parent and name for
    /// the removal.
    dir: Option<(PathBuf, OwnedFd, PathBuf)>,
}

const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl StagingFs {
    /// Makes the staging: a detached tmpfs (in no mount table: nothing of
    /// it is visible on the host), or a fresh 0700 directory under
    /// `$TMPDIR` (else `/tmp`).
    pub fn create(staging: &Staging) -> Result<StagingFs> {
        match &staging.filesystem {
            StagingFilesystem::Tmpfs { options } => Ok(StagingFs {
                fd: staging_tmpfs(options)?,
                dir: None,
            }),
            StagingFilesystem::Directory => {
                let base = std::env::var_os("TMPDIR")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .unwrap_or_else(|| PathBuf::from("/tmp"));
                let parent = rustix::fs::open(
                    &base,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ctx(|| format!("--no-tmpfs: the temporary directory {}", base.display()))?;
                let name = make_unique_dir(&parent)
                    .ctx(|| format!("--no-tmpfs: a directory in {}", base.display()))?;
                let fd = rustix::fs::openat(&parent, &name, DIR, Mode::empty())
                    .ctx(|| format!("--no-tmpfs: {}", base.join(&name).display()))?;
                Ok(StagingFs {
                    fd,
                    dir: Some((base.join(&name), parent, name)),
                })
            }
        }
    }

    /// A detached tmpfs made elsewhere (rootless: by the sandbox's init in
    /// its user namespace).
    pub fn from_mount(fd: OwnedFd) -> StagingFs {
        StagingFs { fd, dir: None }
    }

    /// What the sandbox's init gets: the same staging, by a new fd.
    pub fn handle(&self) -> Result<StagingHandle> {
        Ok(StagingHandle {
            fd: self.fd.try_clone().ctx(|| "dup of the staging fd")?,
            dir_path: self.dir.as_ref().map(|(path, _, _)| path.clone()),
        })
    }

    /// The staging's top directory (`upper/`, `work/`, `files/` and `root/`
    /// are in it once the sandbox's init has made them).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `upper/`: upper layers and hidden directories, for result capture.
    pub fn upper(&self) -> Result<OwnedFd> {
        rustix::fs::openat(
            &self.fd,
            "upper",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "the staging's upper/")
    }

    /// The directory of a `--no-tmpfs` staging.
    pub fn path(&self) -> Option<&Path> {
        self.dir.as_ref().map(|(path, _, _)| path.as_path())
    }

    /// Frees the staging: a tmpfs goes with its last fd; a directory is
    /// removed, fd-relative, without following any symlink in it.
    pub fn remove(self) -> Result<()> {
        let StagingFs { fd, dir } = self;
        drop(fd);
        if let Some((path, parent, name)) = dir {
            remove_tree(parent.as_fd(), &name)
                .ctx(|| format!("removing the sandbox's directory {}", path.display()))?;
        }
        Ok(())
    }
}

/// The staging tmpfs: detached (`fsmount`, in no mount table), `nosuid`
/// and `nodev` (result capture relies on the latter). Made by the runtime,
/// or rootless by init inside its user namespace.
pub(super) fn staging_tmpfs(options: &[crate::plan::FsOption]) -> Result<OwnedFd> {
    mnt::fresh(
        "tmpfs",
        "rootcell-sandbox",
        options,
        attr::NOSUID | attr::NODEV,
    )
    .map_err(|e| Error::Other(format!("the sandbox's staging tmpfs: {e}")))
}

/// `mkdirat(parent, "rootcell-sandbox-<random>", 0700)`, retried with
/// another name when one exists.
fn make_unique_dir(parent: &OwnedFd) -> io::Result<PathBuf> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 32);
    for i in 0..64u64 {
        // splitmix64: distinct names, no rand crate.
        let mut x = seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        let name = PathBuf::from(format!("rootcell-sandbox-{:012x}", x & 0xffff_ffff_ffff));
        match rustix::fs::mkdirat(parent, &name, Mode::from_raw_mode(0o700)) {
            Ok(()) => return Ok(name),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::from_raw_os_error(libc::EEXIST))
}

/// `rm -rf parent/name`, fd-relative: directories are opened `O_NOFOLLOW`
/// below their parent's fd, symlinks are removed, never followed. Depth
/// is bounded by the fds a walk may hold (one per level).
pub fn remove_tree(parent: BorrowedFd<'_>, name: &Path) -> io::Result<()> {
    use rustix::fs::FileType;
    let top = match rustix::fs::openat(parent, name, DIR, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(Errno::NOTDIR) | Err(Errno::LOOP) => {
            return Ok(rustix::fs::unlinkat(parent, name, AtFlags::empty())?)
        }
        Err(e) => return Err(e.into()),
    };
    // Open directories, each with its name in the one below: a directory
    // is removed by its parent once its own walk emptied it.
    let mut stack: Vec<(rustix::fs::Dir, OwnedFd, std::ffi::CString)> = Vec::new();
    stack.push((rustix::fs::Dir::new(top.try_clone()?)?, top, c"".to_owned()));
    while let Some((dir, fd, _)) = stack.last_mut() {
        let mut descend = None;
        while let Some(entry) = dir.read() {
            let entry = entry?;
            let entry_name = entry.file_name();
            if entry_name == c"." || entry_name == c".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                FileType::Directory => true,
                FileType::Unknown => {
                    let st = rustix::fs::statat(&*fd, entry_name, AtFlags::SYMLINK_NOFOLLOW)?;
                    FileType::from_raw_mode(st.st_mode) == FileType::Directory
                }
                _ => false,
            };
            if !is_dir {
                match rustix::fs::unlinkat(&*fd, entry_name, AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            match rustix::fs::unlinkat(&*fd, entry_name, AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(Errno::NOTEMPTY) | Err(Errno::EXIST) => {
                    let sub = open_unreadable_dir(fd.as_fd(), entry_name)?;
                    descend = Some((sub, entry_name.to_owned()));
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        match descend {
            Some((sub, sub_name)) => {
                stack.push((rustix::fs::Dir::new(sub.try_clone()?)?, sub, sub_name));
            }
            None => {
                let (_, _, done) = stack.pop().expect("the loop saw an entry");
                if let Some((_, parent_fd, _)) = stack.last() {
                    rustix::fs::unlinkat(parent_fd, done.as_c_str(), AtFlags::REMOVEDIR)?;
                }
            }
        }
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)?;
    Ok(())
}

/// Opens a directory of the tree for the walk. Overlayfs leaves its
/// `work/work` directories mode 000 (with a cached whiteout in them): an
/// unprivileged caller (rootless `--no-tmpfs`) owns them but cannot read
/// them, so on EACCES the directory itself is made 0700, through an
/// `O_PATH|O_NOFOLLOW` fd (never a symlink's target), and opened again.
fn open_unreadable_dir(parent: BorrowedFd<'_>, name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    match rustix::fs::openat(parent, name, DIR, Mode::empty()) {
        Err(Errno::ACCESS) => {
            let path = rustix::fs::openat(
                parent,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&path));
            rustix::fs::chmod(proc_path.as_str(), Mode::from_raw_mode(0o700))?;
            Ok(rustix::fs::openat(&path, c".", DIR, Mode::empty())?)
        }
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_tree_removes_links_not_what_they_point_to() {
        let base = std::env::temp_dir().join(format!("rootcell-rm-{}", std::process::id()));
        let outside = base.join("outside");
        let tree = base.join("tree");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), "keep").unwrap();
        let mut deep = tree.clone();
        for i in 0..50 {
            deep.push(format!("d{i}"));
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        std::os::unix::fs::symlink(&outside, deep.join("link")).unwrap();
        for i in 0..20 {
            std::fs::create_dir_all(tree.join(format!("wide{i}/sub"))).unwrap();
        }
        let parent =
            rustix::fs::open(&base, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        remove_tree(parent.as_fd(), Path::new("tree")).unwrap();
        assert!(!tree.exists());
        assert_eq!(
            std::fs::read_to_string(outside.join("keep")).unwrap(),
            "keep"
        );
        remove_tree(parent.as_fd(), Path::new("tree")).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }
}
