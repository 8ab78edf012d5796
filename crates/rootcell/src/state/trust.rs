//! Nothing the runtime reads back from disk is trusted as found: the state
//! root, each container's directory, its `state.json` (whose hooks the
//! runtime runs) and the seccomp cache could have been planted or made
//! writable by another user. Each is opened first and then checked on the
//! open fd (`fstat`, never a path `stat` followed by an `open`): it must be
//! owned by the runtime's effective uid and not writable by group or others.
//!
//! Rootless: the state root lives under `$XDG_RUNTIME_DIR`, owned by the
//! user, so it passes. Engines that make `--root` themselves (podman,
//! containerd) create it 0700, 0711 or 0755: not group/world writable, so
//! it passes too. Inside a user namespace `fstat` and `geteuid` both speak
//! the namespace's ids, so the comparison holds there as well.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, IoContext, Result};

/// Why an opened file cannot be trusted, or None if it can.
pub fn problem(fd: impl AsFd, expected: FileType) -> Result<Option<String>, Errno> {
    let st = rustix::fs::fstat(fd)?;
    let euid = rustix::process::geteuid().as_raw();
    let kind = FileType::from_raw_mode(st.st_mode);
    Ok(if kind != expected {
        Some(format!(
            "is a {}, not a {}",
            kind_name(kind),
            kind_name(expected)
        ))
    } else if st.st_uid != euid {
        Some(format!(
            "is owned by uid {}, not by the runtime's uid {euid}",
            st.st_uid
        ))
    } else if st.st_mode & 0o022 != 0 {
        Some(format!(
            "has mode {:04o}: group or others may write to it",
            st.st_mode & 0o7777
        ))
    } else {
        None
    })
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        _ => "special file",
    }
}

/// Fails, naming `what` and `path`, unless [`problem`] finds nothing.
pub fn check(fd: impl AsFd, expected: FileType, what: &str, path: &Path) -> Result<()> {
    match problem(fd, expected).ctx(|| format!("{what} {}", path.display()))? {
        None => Ok(()),
        Some(p) => Err(Error::Other(format!(
            "{what} {}: {p}; refusing to use it (another user could have planted or changed what it holds)",
            path.display()
        ))),
    }
}

/// Opens the state root and checks it. With `create`, a missing root (and
/// its missing parents) is made 0700 first; without, a missing root is
/// `None`.
pub fn open_root(root: &Path, create: bool) -> Result<Option<OwnedFd>> {
    let open = || {
        rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let fd = match open() {
        Ok(fd) => fd,
        Err(Errno::NOENT) if !create => return Ok(None),
        Err(Errno::NOENT) => {
            use std::os::unix::fs::DirBuilderExt;
            // Private like runc's: only the runtime's user may look at
            // states.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
                .ctx(|| format!("state root {}", root.display()))?;
            open().ctx(|| format!("state root {}", root.display()))?
        }
        Err(e) => return Err(e).ctx(|| format!("state root {}", root.display())),
    };
    check(&fd, FileType::Directory, "state root", root)?;
    Ok(Some(fd))
}

/// Opens the directory `name` in `parent` without following a symlink,
/// making it with `mode` first if it is missing and `mode` is given, and
/// checks it. A missing directory (not created) is `None`. `path` is its
/// full path, for messages.
pub fn open_dir_at(
    parent: impl AsFd,
    name: &str,
    mode: Option<u32>,
    what: &str,
    path: &Path,
) -> Result<Option<OwnedFd>> {
    let open = || {
        rustix::fs::openat(
            &parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let opened = match (open(), mode) {
        (Err(Errno::NOENT), Some(mode)) => {
            match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(mode)) {
                Ok(()) | Err(Errno::EXIST) => open(),
                Err(e) => Err(e),
            }
        }
        (other, _) => other,
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP | Errno::NOTDIR) => {
            return Err(Error::Other(format!(
                "{what} {}: is not a directory (a symlink or a file); refusing to use it",
                path.display()
            )))
        }
        Err(e) => return Err(e).ctx(|| format!("{what} {}", path.display())),
    };
    check(&fd, FileType::Directory, what, path)?;
    Ok(Some(fd))
}

/// Opens (making each missing level 0700) and checks `<root>/<sub...>`, a
/// private directory of the runtime below the state root (the seccomp
/// cache).
pub fn private_dir(root: &Path, sub: &[&str], what: &str) -> Result<OwnedFd> {
    let mut fd = open_root(root, true)?
        .ok_or_else(|| Error::Other(format!("state root {}: missing", root.display())))?;
    let mut path = root.to_path_buf();
    for name in sub {
        path.push(name);
        fd = open_dir_at(&fd, name, Some(0o700), what, &path)?
            .ok_or_else(|| Error::Other(format!("{what} {}: missing", path.display())))?;
    }
    Ok(fd)
}

/// Opens the regular file `name` in `dir` for reading, without following a
/// symlink, and checks it. A missing file is `None`.
pub fn open_file_at(
    dir: impl AsFd,
    name: &str,
    what: &str,
    path: &Path,
) -> Result<Option<std::fs::File>> {
    let fd = match rustix::fs::openat(
        &dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => {
            return Err(Error::Other(format!(
                "{what} {}: is a symlink; refusing to use it",
                path.display()
            )))
        }
        Err(e) => return Err(e).ctx(|| format!("{what} {}", path.display())),
    };
    check(&fd, FileType::RegularFile, what, path)?;
    Ok(Some(std::fs::File::from(fd)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn own_private_dirs_pass_and_writable_ones_fail() {
        let base = std::env::temp_dir().join(format!("rootcell-trust-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        let fd = open_root(&root, true).unwrap().unwrap();
        let st = rustix::fs::fstat(&fd).unwrap();
        assert_eq!(st.st_mode & 0o777, 0o700);

        let cache = private_dir(&root, &[".cache", "x"], "cache").unwrap();
        assert_eq!(problem(&cache, FileType::Directory).unwrap(), None);

        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = open_root(&root, false).unwrap_err().to_string();
        assert!(e.contains("mode 0777"), "{e}");
        assert!(e.contains(&root.display().to_string()), "{e}");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert!(open_root(&root, false).unwrap().is_some());

        // A symlink where a directory is expected is never followed.
        std::os::unix::fs::symlink("/tmp", root.join("link")).unwrap();
        let fd = open_root(&root, false).unwrap().unwrap();
        let e = open_dir_at(&fd, "link", None, "container", &root.join("link"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a directory"), "{e}");

        std::fs::write(root.join("f"), b"x").unwrap();
        std::fs::set_permissions(root.join("f"), std::fs::Permissions::from_mode(0o646)).unwrap();
        let e = open_file_at(&fd, "f", "file", &root.join("f"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mode 0646"), "{e}");
        assert!(open_file_at(&fd, "none", "file", &root.join("none"))
            .unwrap()
            .is_none());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
