//! One private procfs handle per process (libpathrs: `fsopen("proc")` with
//! `subset=pid`, verified with `fstatfs`). Creating one costs a dozen
//! syscalls, so it is made once and reused; it is close-on-exec and never
//! reaches the container's process.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::OnceLock;

use pathrs::procfs::{ProcfsBase, ProcfsHandle};

static HANDLE: OnceLock<ProcfsHandle> = OnceLock::new();

/// The process's procfs handle. A handle inherited across `fork` stays
/// valid: it names the same procfs instance, whose pid namespace is an
/// ancestor of ours, and `thread-self` resolves against the caller.
pub fn handle() -> Result<&'static ProcfsHandle, pathrs::error::Error> {
    if let Some(h) = HANDLE.get() {
        return Ok(h);
    }
    let h = ProcfsHandle::new()?;
    Ok(HANDLE.get_or_init(|| h))
}

/// The path an fd refers to, as the kernel names it (for checks and
/// messages only; never used to reach the file again).
pub fn path_of(fd: impl AsFd) -> io::Result<PathBuf> {
    handle()
        .map_err(io::Error::other)?
        .readlink(
            ProcfsBase::ProcThreadSelf,
            format!("fd/{}", fd.as_fd().as_raw_fd()),
        )
        .map_err(io::Error::other)
}
