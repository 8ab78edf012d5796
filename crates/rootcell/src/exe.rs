//! The runtime binary is never writable from a container (CVE-2019-5736).
//!
//! A container's process can reach the binary its setup process runs from:
//! a `#!/proc/self/exe` entrypoint makes the kernel execute that binary
//! inside the container, and `/proc/<pid>/exe` of any runtime process the
//! container can see leads to it too. If that file is the host's
//! `rootcell` on a writable filesystem, a container could overwrite it once
//! no runtime process runs it any more.
//!
//! So before a command that starts processes in a container, rootcell makes
//! sure it runs from an image the container cannot change:
//! - a binary on a read-only mount, or a sealed memfd, is used as is;
//! - an immutable binary (`chattr +i`, as `scripts/setup` installs it) is
//!   used as is for containers none of whose processes can clear the flag;
//!   the plan decides (`plan::binary`), and `reexec_protected` runs otherwise;
//! - anything else re-executes itself at once, before the config is read,
//!   from a read-only bind of its own binary, detached (`open_tree` +
//!   `MOUNT_ATTR_RDONLY`: no copy, one extra `execve`; it needs
//!   `CAP_SYS_ADMIN` in the initial user namespace), else (rootless) from a
//!   sealed `memfd` copy (write, grow and shrink sealed), as runc does.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{IFlags, MemfdFlags, SealFlags, StatVfsMountFlags};

use crate::error::{Error, IoContext, Result};
use crate::fs::mount::{clone_fd, set_attrs};
pub use crate::plan::binary::Protection;
use crate::plan::options::{attr, AttrChange};
use crate::process::sys;

/// Set in the environment of the re-executed runtime: a second re-exec
/// would mean the protection did not take, and must not loop.
const REEXEC_MARKER: &str = "_ROOTCELL_EXE_PROTECTED";

/// The protection of the binary this process runs, if any.
pub fn current_protection() -> Result<Option<Protection>> {
    protection_of(&own_binary()?)
}

/// The binary this process runs, opened through the host's `/proc`. This
/// runs first thing in the runtime, before any container exists, so the
/// host's procfs is the one to trust; a private procfs handle (a dozen
/// syscalls) would cost more than the whole check, twice per command.
fn own_binary() -> Result<OwnedFd> {
    rustix::fs::open(
        "/proc/self/exe",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| "/proc/self/exe")
}

fn protection_of(exe: impl AsFd) -> Result<Option<Protection>> {
    let exe = exe.as_fd();
    let vfs = rustix::fs::fstatvfs(exe).ctx(|| "statvfs of /proc/self/exe")?;
    if vfs.f_flag.contains(StatVfsMountFlags::RDONLY) {
        return Ok(Some(Protection::ReadOnlyMount));
    }
    // Only memfds have seals; anything else answers EINVAL.
    let needed = SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL;
    if let Ok(seals) = rustix::fs::fcntl_get_seals(exe) {
        return Ok(seals.contains(needed).then_some(Protection::SealedMemfd));
    }
    // Filesystems without inode flags answer ENOTTY or EOPNOTSUPP: not
    // immutable.
    match rustix::fs::ioctl_getflags(exe) {
        Ok(flags) if flags.contains(IFlags::IMMUTABLE) => Ok(Some(Protection::Immutable)),
        _ => Ok(None),
    }
}

/// Makes sure this process runs from a protected image: returns what
/// protects it if something does, otherwise re-executes itself (same
/// arguments and environment) from a read-only image and does not return.
/// An immutable binary is returned as such: whether it suffices depends on
/// the container (`plan::binary`), and `reexec_protected` does the rest.
pub fn ensure_protected() -> Result<Protection> {
    let exe = own_binary()?;
    if let Some(found) = protection_of(&exe)? {
        std::env::remove_var(REEXEC_MARKER);
        return Ok(found);
    }
    reexec_from(exe)
}

/// Re-executes this process (same arguments and environment) from a
/// read-only image of its binary; does not return. For a plan that does
/// not keep an immutable binary (`plan::binary::BinaryPlan::Reexec`); it
/// runs before anything of the container exists.
pub fn reexec_protected() -> Result<()> {
    tracing::debug!("re-executing from a read-only image of the binary (the plan says so)");
    reexec_from(own_binary()?).map(drop)
}

fn reexec_from(exe: OwnedFd) -> Result<Protection> {
    if std::env::var_os(REEXEC_MARKER).is_some() {
        return Err(Error::Other(
            "re-executed from a protected copy of rootcell, but /proc/self/exe is still writable"
                .into(),
        ));
    }
    let image = match read_only_bind(&exe) {
        Ok(fd) => fd,
        // Not privileged enough for a mount (rootless): copy instead.
        Err(rustix::io::Errno::PERM) => sealed_copy(&exe)?,
        Err(e) => return Err(e).ctx(|| "read-only bind of the rootcell binary"),
    };
    drop(exe);
    Err(reexec(image))
}

/// A detached, read-only bind mount of the file `exe` (an `O_PATH`-like fd
/// of the tree, executable with `execveat`).
fn read_only_bind(exe: &OwnedFd) -> rustix::io::Result<OwnedFd> {
    let tree = clone_fd(exe.as_fd(), false)?;
    set_attrs(
        &tree,
        AttrChange {
            set: attr::RDONLY | attr::NODEV,
            clear: 0,
        },
        false,
    )?;
    Ok(tree)
}

/// A memfd holding a copy of `exe`, sealed against any change.
fn sealed_copy(exe: &OwnedFd) -> Result<OwnedFd> {
    let memfd =
        rustix::fs::memfd_create("rootcell", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .ctx(|| "memfd_create")?;
    // std's copy uses copy_file_range or sendfile where they work.
    let mut from = std::fs::File::from(exe.try_clone().ctx(|| "dup")?);
    let mut to = std::fs::File::from(memfd.try_clone().ctx(|| "dup")?);
    std::io::copy(&mut from, &mut to).ctx(|| "copying rootcell into a memfd")?;
    rustix::fs::fcntl_add_seals(
        &memfd,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )
    .ctx(|| "sealing the memfd")?;
    Ok(memfd)
}

/// Executes `image` in place of this process; returns only the error.
fn reexec(image: OwnedFd) -> Error {
    let cstring = |bytes: &[u8]| CString::new(bytes).ok();
    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| cstring(a.as_bytes()))
        .collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != REEXEC_MARKER)
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstring(&kv)
        })
        .collect();
    env.extend(cstring(format!("{REEXEC_MARKER}=1").as_bytes()));
    crate::phase::report_runtime_rss("runtime before re-exec");
    let err = sys::execveat_fd(&image, &args, &env);
    Error::Other(format!(
        "re-executing rootcell from a protected copy: {err}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_memfd_counts_as_protected() {
        let exe = own_binary().unwrap();
        let copy = sealed_copy(&exe).unwrap();
        assert_eq!(protection_of(&copy).unwrap(), Some(Protection::SealedMemfd));
        // Writes are refused.
        assert!(rustix::io::pwrite(&copy, b"x", 0).is_err());
        // An unsealed memfd is not protected.
        let plain = rustix::fs::memfd_create("plain", MemfdFlags::CLOEXEC).unwrap();
        assert_eq!(protection_of(&plain).unwrap(), None);
    }
}
