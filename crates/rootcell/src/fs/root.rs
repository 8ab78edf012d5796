//! Path resolution inside a container's root, always through the root's fd:
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` for lookups, libpathrs
//! for creating (and as the fallback on kernels without `openat2`). A
//! symlink, `..` or a swapped directory in the rootfs can never lead
//! outside it.

use std::fs::Permissions;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use pathrs::flags::OpenFlags;
use pathrs::Root;
use rustix::fs::{openat2, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::fs::procfs::to_io;

/// How often a lookup is retried when the kernel reports a concurrent
/// rename (`EAGAIN`) before giving up: bounded, never a busy loop forever.
const EAGAIN_RETRIES: usize = 128;

/// A container root filesystem, held open.
pub struct RootDir {
    root: Root,
}

impl RootDir {
    /// Opens a directory as a root (`O_PATH`).
    pub fn open(path: &Path) -> io::Result<RootDir> {
        Ok(RootDir {
            root: Root::open(path).map_err(to_io)?,
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

    /// One `openat2` in the root (`RESOLVE_IN_ROOT`, no magic links),
    /// retried on a concurrent rename; `None` on a kernel without it or
    /// when renames kept failing it (the callers' fallbacks then resolve
    /// step by step).
    fn openat2_in_root(&self, path: &Path, flags: OFlags) -> Option<io::Result<OwnedFd>> {
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        for _ in 0..EAGAIN_RETRIES {
            match openat2(self.fd(), path, flags, Mode::empty(), resolve) {
                Err(Errno::AGAIN) => continue,
                Err(Errno::NOSYS) => return None,
                other => return Some(other.map_err(io::Error::from)),
            }
        }
        None
    }

    /// One `openat2` in the root. Falls back to libpathrs' emulation when
    /// the kernel has no `openat2`.
    fn lookup(&self, path: &Path, follow: bool) -> io::Result<OwnedFd> {
        let mut flags = OFlags::PATH | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        if let Some(opened) = self.openat2_in_root(path, flags) {
            return opened;
        }
        let handle = if follow {
            self.root.resolve(path)
        } else {
            self.root.resolve_nofollow(path)
        };
        Ok(handle.map_err(to_io)?.into())
    }

    /// Opens `path` inside the root with `flags` (plus `O_NOFOLLOW` and
    /// `O_CLOEXEC`): one `openat2`, the same resolution as `resolve_nofollow`.
    /// `None` where `openat2` cannot answer (the caller reopens an `O_PATH`
    /// fd through procfs instead).
    pub fn open_nofollow(&self, path: &Path, flags: OFlags) -> Option<io::Result<OwnedFd>> {
        self.openat2_in_root(path, flags | OFlags::NOFOLLOW | OFlags::CLOEXEC)
    }

    /// Resolves `path` inside the root, following symlinks inside it, to an
    /// `O_PATH` fd.
    pub fn resolve(&self, path: &Path) -> io::Result<OwnedFd> {
        self.lookup(path, true)
    }

    /// Like `resolve`, but the last component may be a symlink, which is
    /// returned itself.
    pub fn resolve_nofollow(&self, path: &Path) -> io::Result<OwnedFd> {
        self.lookup(path, false)
    }

    /// `mkdir -p` inside the root; returns the directory. An existing
    /// directory costs one lookup. A dangling symlink on the way is followed
    /// (inside the root) and its target created, as `mkdir -p` through a
    /// symlink does, and as runc does for mount destinations.
    pub fn mkdir_all(&self, path: &Path, mode: u32) -> io::Result<OwnedFd> {
        if let Ok(fd) = self.resolve(path) {
            if file_type(&fd)? == FileType::Directory {
                return Ok(fd);
            }
        }
        if let Some(fd) = self.mkdir_below_existing(path, mode) {
            return Ok(fd);
        }
        self.mkdir_all_general(path, mode)
    }

    /// `mkdir_all` through libpathrs. Never inlined into `mkdir_all`: the
    /// symlink resolution it pulls in reads links into a 128 KiB buffer on
    /// the stack, and a frame that size is probed page by page on every
    /// entry, which cost init 32 page faults (about 0.06 ms) at its first
    /// mount even when the common case above answered.
    #[inline(never)]
    fn mkdir_all_general(&self, path: &Path, mode: u32) -> io::Result<OwnedFd> {
        let perm = Permissions::from_mode(mode);
        let mut path = path.to_path_buf();
        // Bounded like the kernel's symlink limit.
        for _ in 0..40 {
            match self.root.mkdir_all(&path, &perm) {
                Ok(handle) => return Ok(handle.into()),
                Err(e) => match self.redirect_dangling(&path) {
                    Some(next) => path = next,
                    None => return Err(to_io(e)),
                },
            }
        }
        Err(io::Error::from_raw_os_error(libc::ELOOP))
    }

    /// The common case of `mkdir_all`, without libpathrs' per-step procfs
    /// checks: the deepest existing ancestor is resolved in the root, and
    /// each missing component is made with `mkdirat` relative to its parent's
    /// fd and opened with `O_NOFOLLOW`, so nothing can lead outside. Returns
    /// None (for the general path to decide) on anything unusual: a `..` or
    /// a symlink on the way, a non-directory, an error.
    fn mkdir_below_existing(&self, path: &Path, mode: u32) -> Option<OwnedFd> {
        let mut names = Vec::new();
        for c in path.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(name) => names.push(name),
                Component::ParentDir | Component::Prefix(_) => return None,
            }
        }
        // Deepest existing directory first (a mountpoint usually lacks only
        // its last component).
        let (mut dir, existing) = (0..names.len()).rev().find_map(|n| {
            let prefix: PathBuf = std::iter::once(Component::RootDir.as_os_str())
                .chain(names[..n].iter().copied())
                .collect();
            let fd = self.resolve(&prefix).ok()?;
            (file_type(&fd).ok()? == FileType::Directory).then_some((fd, n))
        })?;
        for name in &names[existing..] {
            match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(mode)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(_) => return None,
            }
            dir = rustix::fs::openat(
                &dir,
                *name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok()?;
        }
        Some(dir)
    }

    /// If a component of `path` is a symlink whose target is missing,
    /// returns the path with that component replaced by its target. Pure
    /// path arithmetic; the result is again resolved inside the root.
    fn redirect_dangling(&self, path: &Path) -> Option<PathBuf> {
        let mut prefix = PathBuf::from("/");
        let components: Vec<_> = path.components().collect();
        for (i, c) in components.iter().enumerate() {
            let name = match c {
                Component::Normal(name) => name,
                // `prefix` holds only directories (each checked not to be a
                // link), so `..` is plain path arithmetic; at the root it
                // stays there, as in the kernel's RESOLVE_IN_ROOT.
                Component::ParentDir => {
                    prefix.pop();
                    continue;
                }
                _ => continue,
            };
            let candidate = prefix.join(name);
            let fd = self.resolve_nofollow(&candidate).ok()?;
            if file_type(&fd).ok()? == FileType::Symlink {
                if self.resolve(&candidate).is_ok() {
                    // Not dangling: the failure is something else.
                    return None;
                }
                let target = self.root.readlink(&candidate).ok()?;
                let base = if target.is_absolute() {
                    PathBuf::from("/")
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

    /// The directory holding `path` (created if missing) and the name of
    /// `path` in it, for the `*at` calls that create device nodes and
    /// symlinks relative to a directory fd.
    pub fn parent_of<'p>(&self, path: &'p Path) -> io::Result<(OwnedFd, &'p Path)> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let dir = self.mkdir_all(path.parent().unwrap_or(Path::new("/")), 0o755)?;
        Ok((dir, Path::new(name)))
    }

    /// Finds or creates a mountpoint: a directory, or (for a file source) a
    /// regular file created with `O_EXCL|O_NOFOLLOW` when missing. The fd
    /// returned is what gets mounted on.
    ///
    /// A created file gets mode 0755 (less the umask), as runc makes it:
    /// image builders (buildah) commit the rootfs after each `RUN`, so the
    /// empty files left under `/etc/hosts`, `/etc/resolv.conf`... end up in
    /// the image, which must not depend on the runtime that built it.
    pub fn mountpoint(&self, path: &Path, directory: bool) -> io::Result<OwnedFd> {
        if directory {
            return self.mkdir_all(path, 0o755);
        }
        match self.resolve(path) {
            Ok(fd) if file_type(&fd)? == FileType::Directory => Err(io::Error::other(
                "is a directory in the rootfs but the source is a file",
            )),
            Ok(fd) => Ok(fd),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.mkdir_all(path.parent().unwrap_or(Path::new("/")), 0o755)?;
                let file = self
                    .root
                    .create_file(
                        path,
                        OpenFlags::O_EXCL | OpenFlags::O_NOFOLLOW | OpenFlags::O_WRONLY,
                        &Permissions::from_mode(0o755),
                    )
                    .map_err(to_io)?;
                Ok(file.into())
            }
            Err(e) => Err(e),
        }
    }
}

/// The type of the inode `fd` refers to.
pub fn file_type(fd: impl AsFd) -> io::Result<FileType> {
    Ok(FileType::from_raw_mode(rustix::fs::fstat(fd)?.st_mode))
}
