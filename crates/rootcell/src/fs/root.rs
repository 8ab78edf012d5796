//! Path resolution inside a container's root, always through the root's fd
//! (`openat2(RESOLVE_IN_ROOT)` via libpathrs): a symlink, `..` or a swapped
//! directory in the rootfs can never lead outside it.

use std::fs::Permissions;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pathrs::flags::OpenFlags;
use pathrs::Root;

/// A container root filesystem, held open.
pub struct RootDir {
    root: Root,
}

impl RootDir {
    /// Opens a directory as a root (`O_PATH`).
    pub fn open(path: &Path) -> Result<RootDir, pathrs::error::Error> {
        Ok(RootDir {
            root: Root::open(path)?,
        })
    }

    /// Takes an fd of a directory (e.g. the root of a mount) as the root.
    pub fn from_fd(fd: OwnedFd) -> RootDir {
        RootDir {
            root: Root::from_fd(fd),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Resolves `path` inside the root, following symlinks inside it, to an
    /// `O_PATH` fd.
    pub fn resolve(&self, path: &Path) -> Result<OwnedFd, pathrs::error::Error> {
        Ok(self.root.resolve(path)?.into())
    }

    /// Like `resolve`, but the last component may be a symlink, which is
    /// returned itself.
    pub fn resolve_nofollow(&self, path: &Path) -> Result<OwnedFd, pathrs::error::Error> {
        Ok(self.root.resolve_nofollow(path)?.into())
    }

    /// `mkdir -p` inside the root; returns the directory. A dangling
    /// symlink on the way is followed (inside the root) and its target
    /// created, as `mkdir -p` through a symlink does, and as runc does for
    /// mount destinations.
    pub fn mkdir_all(&self, path: &Path, mode: u32) -> Result<OwnedFd, pathrs::error::Error> {
        let perm = Permissions::from_mode(mode);
        let mut path = path.to_path_buf();
        // Bounded like the kernel's symlink limit.
        for _ in 0..40 {
            match self.root.mkdir_all(&path, &perm) {
                Ok(handle) => return Ok(handle.into()),
                Err(e) => match self.redirect_dangling(&path) {
                    Some(next) => path = next,
                    None => return Err(e),
                },
            }
        }
        Ok(self.root.mkdir_all(&path, &perm)?.into())
    }

    /// If a component of `path` is a symlink whose target is missing,
    /// returns the path with that component replaced by its target. Pure
    /// path arithmetic; the result is again resolved inside the root.
    fn redirect_dangling(&self, path: &Path) -> Option<std::path::PathBuf> {
        let mut prefix = std::path::PathBuf::from("/");
        let components: Vec<_> = path.components().collect();
        for (i, c) in components.iter().enumerate() {
            let std::path::Component::Normal(name) = c else {
                continue;
            };
            let candidate = prefix.join(name);
            let Ok(fd) = self.resolve_nofollow(&candidate) else {
                return None;
            };
            let st = rustix::fs::fstat(&fd).ok()?;
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink {
                if self.resolve(&candidate).is_ok() {
                    // Not dangling: the failure is something else.
                    return None;
                }
                let target = self.root.readlink(&candidate).ok()?;
                let base = if target.is_absolute() {
                    std::path::PathBuf::from("/")
                } else {
                    prefix.clone()
                };
                let mut next = base.join(target);
                for rest in &components[i + 1..] {
                    next.push(rest);
                }
                return Some(next);
            }
            prefix = candidate;
        }
        None
    }

    /// Finds or creates a mountpoint: a directory, or (for a file source) a
    /// regular file created with `O_EXCL|O_NOFOLLOW` when missing. The fd
    /// returned is what gets mounted on.
    pub fn mountpoint(&self, path: &Path, directory: bool) -> Result<OwnedFd, MountpointError> {
        if directory {
            return self
                .mkdir_all(path, 0o755)
                .map_err(MountpointError::Resolve);
        }
        match self.resolve(path) {
            Ok(fd) => {
                let st = rustix::fs::fstat(&fd).map_err(|e| MountpointError::Io(e.into()))?;
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Directory
                {
                    return Err(MountpointError::IsDirectory);
                }
                Ok(fd)
            }
            Err(e) if errno(&e) == Some(libc::ENOENT) => {
                let parent = path.parent().unwrap_or(Path::new("/"));
                self.mkdir_all(parent, 0o755)
                    .map_err(MountpointError::Resolve)?;
                let file = self
                    .root
                    .create_file(
                        path,
                        OpenFlags::O_EXCL | OpenFlags::O_NOFOLLOW | OpenFlags::O_WRONLY,
                        &Permissions::from_mode(0o644),
                    )
                    .map_err(MountpointError::Resolve)?;
                Ok(file.into())
            }
            Err(e) => Err(MountpointError::Resolve(e)),
        }
    }
}

#[derive(Debug)]
pub enum MountpointError {
    Resolve(pathrs::error::Error),
    IsDirectory,
    Io(io::Error),
}

impl std::fmt::Display for MountpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MountpointError::Resolve(e) => write!(f, "{e}"),
            MountpointError::IsDirectory => {
                f.write_str("is a directory in the rootfs but the source is a file")
            }
            MountpointError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// The errno behind a pathrs error, if it came from a syscall.
pub fn errno(e: &pathrs::error::Error) -> Option<i32> {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(n) => n,
        _ => None,
    }
}
