//! The host tree's staging filesystem (`RootSource::HostTree`) inside the
//! sandbox's private mount namespace: attached at `Staging::mountpoint`,
//! with `root/` (where the new root is assembled), `upper/` (upper layers
//! and hidden directories), `work/` (overlay work directories) and
//! `files/` (generated files). Every directory in it is made and opened
//! relative to the staging's own fd; no path string ever names a host
//! location below it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, IoContext, Result};
use crate::fs::mount::{attach, clone_fd};
use crate::plan::{FsOption, Staging, StagingFilesystem};

/// The staging as the runtime hands it to the sandbox's init.
pub struct StagingHandle {
    /// `Tmpfs`: the detached mount (`fsmount`), in no mount table.
    /// `Directory`: the directory, opened `O_PATH` by the runtime.
    pub fd: OwnedFd,
    /// `Directory`: its path, for init to find the same directory in its
    /// own mount namespace (the fd's mount is the runtime's, which a bind
    /// cannot be cloned from); checked against `fd`.
    pub dir_path: Option<PathBuf>,
}

/// The staging's directories, open, while the root is assembled.
pub(super) struct StagingDirs {
    upper: OwnedFd,
    work: OwnedFd,
    files: OwnedFd,
    /// The staging's top directory (the mount's root).
    top: OwnedFd,
    /// Owner of the hidden directories made for `MountKind::Staging`: the
    /// sandbox's user, who must be able to write there.
    owner: (u32, u32),
    /// Init runs in a user namespace: overlays need `userxattr`.
    user_ns: bool,
    /// Destinations of hidden directories whose host directory is
    /// world-writable and sticky (`/tmp`, `/dev/shm`): looked up before
    /// the staging covers its mount point (which may be above them).
    sticky: Vec<PathBuf>,
}

/// The destinations of `MountKind::Staging` steps whose host directory is
/// world-writable and sticky.
pub(super) fn sticky_destinations<'a>(
    steps: impl Iterator<Item = &'a crate::plan::Step>,
) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    steps
        .filter_map(|step| match step {
            crate::plan::Step::Mount(m)
                if matches!(m.kind, crate::plan::MountKind::Staging { .. }) =>
            {
                Some(&m.destination)
            }
            _ => None,
        })
        .filter(|dest| {
            std::fs::metadata(dest)
                .is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o1777 == 0o1777)
        })
        .cloned()
        .collect()
}

const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn open_path_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Attaches the staging at `staging.mountpoint` (in the caller's mount
/// namespace, which must be private to the sandbox) and makes its four
/// directories. Returns them and the (empty) directory the new root is
/// assembled on.
pub(super) fn attach_staging(
    staging: &Staging,
    handle: StagingHandle,
    owner: (u32, u32),
    user_ns: bool,
    sticky: Vec<PathBuf>,
) -> Result<(StagingDirs, OwnedFd)> {
    let field = || format!("staging at {}", staging.mountpoint.display());
    let target = open_path_dir(&staging.mountpoint).ctx(field)?;
    let tree = match (&staging.filesystem, &handle.dir_path) {
        // The detached tmpfs itself is moved here: the runtime's fd keeps
        // naming it after this namespace is gone.
        (StagingFilesystem::Tmpfs { .. }, _) => handle.fd,
        (StagingFilesystem::Directory, Some(path)) => {
            let dir = open_path_dir(path).ctx(|| format!("{}: {}", field(), path.display()))?;
            let same = |fd: &OwnedFd| rustix::fs::fstat(fd).map(|s| (s.st_dev, s.st_ino));
            if same(&dir).ctx(field)? != same(&handle.fd).ctx(field)? {
                return Err(Error::Other(format!(
                    "{}: {} was replaced",
                    field(),
                    path.display()
                )));
            }
            clone_fd(dir.as_fd(), false).ctx(|| format!("{}: bind", field()))?
        }
        (StagingFilesystem::Directory, None) => {
            return Err(Error::Other(format!("{}: no directory path", field())))
        }
    };
    attach(tree.as_fd(), target.as_fd()).ctx(|| format!("{}: attach", field()))?;
    let top = rustix::fs::openat(&tree, ".", DIR, Mode::empty()).ctx(field)?;
    drop(tree);
    let make = |name: &str, mode: u32| {
        mkdir_p(top.as_fd(), Path::new(name), Some((mode, 0, 0)))
            .ctx(|| format!("{}: {name}/", field()))
    };
    let root = make("root", 0o755)?;
    let dirs = StagingDirs {
        upper: make("upper", 0o755)?,
        work: make("work", 0o700)?,
        files: make("files", 0o755)?,
        top,
        owner,
        user_ns,
        sticky,
    };
    Ok((dirs, root))
}

impl StagingDirs {
    /// The options of an overlay with the host directory `lower` (opened
    /// here, in the sandbox's namespace, where nothing covers it) under
    /// the upper and work directories `upper/<layer>` and `work/<layer>`.
    /// Layers are named as `/proc/self/fd/N` of fds held in the returned
    /// vector until the overlay is created: no escaping of `:` or `,`, no
    /// second lookup of a path. The upper directory gets the lower one's
    /// owner and mode, which the overlay's root shows.
    pub(super) fn overlay_options(
        &self,
        lower: &Path,
        layer: &Path,
    ) -> io::Result<(Vec<FsOption>, Vec<OwnedFd>)> {
        let lower_fd = open_path_dir(lower)?;
        let st = rustix::fs::fstat(&lower_fd)?;
        let upper = mkdir_p(self.upper.as_fd(), layer, None)?;
        match rustix::fs::fchown(
            &upper,
            Some(rustix::process::Uid::from_raw(st.st_uid)),
            Some(rustix::process::Gid::from_raw(st.st_gid)),
        ) {
            Ok(()) => {}
            // In a user namespace the lower's owner may have no id here
            // (the host's root seen as nobody): the upper stays the
            // sandbox user's.
            Err(Errno::INVAL) | Err(Errno::PERM) if self.user_ns => {}
            Err(e) => return Err(e.into()),
        }
        rustix::fs::fchmod(&upper, Mode::from_raw_mode(st.st_mode & 0o7777))?;
        let work = mkdir_p(self.work.as_fd(), layer, Some((0o700, 0, 0)))?;
        let name = |fd: &OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
        let mut options = vec![
            FsOption::Value("lowerdir".into(), name(&lower_fd)),
            FsOption::Value("upperdir".into(), name(&upper)),
            FsOption::Value("workdir".into(), name(&work)),
        ];
        // Every file of an upper layer holds its data (result capture
        // copies upper files as they are), whatever the kernel's default.
        options.push(FsOption::Value("metacopy".into(), "off".into()));
        if self.user_ns {
            options.push(FsOption::Flag("userxattr".into()));
        }
        Ok((options, vec![lower_fd, upper, work]))
    }

    /// The staging's `path` (`upper/<dir>` of a hidden directory,
    /// `files/<name>` of a generated file), for a bind on `destination`.
    /// A missing directory is made empty: owned by the sandbox's user,
    /// mode 0755, or 01777 where the host's directory is world-writable
    /// and sticky (`/tmp`, `/dev/shm`).
    pub(super) fn source(&self, path: &Path, destination: &Path) -> io::Result<OwnedFd> {
        let rel = relative(path)?;
        match rustix::fs::openat(
            &self.top,
            &rel,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
        let sticky_world = self.sticky.iter().any(|d| d == destination);
        let mode = if sticky_world { 0o1777 } else { 0o755 };
        mkdir_p(
            self.top.as_fd(),
            &rel,
            Some((mode, self.owner.0, self.owner.1)),
        )
    }

    /// `Step::StagingFile`: writes `files/<name>`, which must not exist.
    pub(super) fn write_file(&self, name: &Path, contents: &str, mode: u32) -> io::Result<()> {
        let rel = relative(name)?;
        let (dir, file) = match (rel.parent(), rel.file_name()) {
            (Some(parent), Some(file)) if !parent.as_os_str().is_empty() => {
                (mkdir_p(self.files.as_fd(), parent, None)?, file)
            }
            (_, Some(file)) => (
                rustix::fs::openat(&self.files, ".", DIR, Mode::empty())?,
                file,
            ),
            _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
        };
        let fd = rustix::fs::openat(
            &dir,
            file,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        let mut rest = contents.as_bytes();
        while !rest.is_empty() {
            match rustix::io::write(&fd, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// A path inside the staging, as plain names: a leading `/` is dropped,
/// `.` ignored, and `..` refused.
fn relative(path: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => out.push(name),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: \"..\" in a staging path", path.display()),
                ))
            }
        }
    }
    Ok(out)
}

/// `mkdir -p` of `rel` below `base`, each component made with `mkdirat`
/// and opened `O_NOFOLLOW` relative to its parent's fd. `last`: (mode,
/// uid, gid) of the last component when this call creates it (0755 root
/// for the others). Returns the last directory (`base` itself for an
/// empty path), opened `O_RDONLY|O_DIRECTORY`.
fn mkdir_p(base: BorrowedFd<'_>, rel: &Path, last: Option<(u32, u32, u32)>) -> io::Result<OwnedFd> {
    let rel = relative(rel)?;
    let mut dir = rustix::fs::openat(base, ".", DIR, Mode::empty())?;
    let names: Vec<_> = rel.iter().collect();
    for (i, name) in names.iter().enumerate() {
        let created = match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(e.into()),
        };
        dir = rustix::fs::openat(&dir, *name, DIR, Mode::empty())?;
        if let (true, true, Some((mode, uid, gid))) = (created, i + 1 == names.len(), last) {
            if (uid, gid) != (0, 0) {
                rustix::fs::fchown(
                    &dir,
                    Some(rustix::process::Uid::from_raw(uid)),
                    Some(rustix::process::Gid::from_raw(gid)),
                )?;
            }
            rustix::fs::fchmod(&dir, Mode::from_raw_mode(mode))?;
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_paths_are_plain_names() {
        assert_eq!(relative(Path::new("/")).unwrap(), PathBuf::new());
        assert_eq!(
            relative(Path::new("/upper/./tmp")).unwrap(),
            PathBuf::from("upper/tmp")
        );
        assert!(relative(Path::new("upper/../../etc")).is_err());
    }
}
