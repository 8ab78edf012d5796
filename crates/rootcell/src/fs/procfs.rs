//! Every access under `/proc` goes through here, through a procfs held by
//! fd and checked by libpathrs (a procfs root, no overmount followed),
//! never through the `/proc` path of a container, which the container
//! could have tampered with. Which procfs:
//!
//! - the runtime: the `/proc` mounted where it was started, once checked to
//!   be a procfs root of its own pid namespace (`self` names it). Only root
//!   of that mount namespace can mount there, and a fresh private procfs
//!   costs about 0.1 ms here, half of it when its last fd closes (the
//!   detached mount is torn down behind an expedited RCU grace period);
//! - a process that changed a namespace (stage 1, init, `exec`'s setup,
//!   the sandbox's init, a view; `process::sys` says so for every
//!   `unshare`, `setns` and `clone3`) never opens a mounted `/proc` again:
//!   it keeps the handle it inherited, or makes a private one (`fsopen`);
//! - init takes the container's own fresh `/proc` as its handle when it
//!   mounts it (`adopt`), unless it made a private one before.
//!
//! Each kind is made once per process and reused; the fds are close-on-exec
//! and never reach the container's process.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pathrs::flags::OpenFlags;
pub use pathrs::procfs::ProcfsBase;
use pathrs::procfs::{ProcfsHandle, ProcfsHandleBuilder};

/// `subset=pid`: only process directories.
static PIDS: Mutex<Option<Arc<ProcfsHandle>>> = Mutex::new(None);
/// The whole procfs, for `/proc/sys`.
static FULL: Mutex<Option<Arc<ProcfsHandle>>> = Mutex::new(None);

/// A pathrs error as an `io::Error`, keeping the errno when there is one.
pub fn to_io(e: pathrs::error::Error) -> io::Error {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => io::Error::from_raw_os_error(errno),
        _ => io::Error::other(e.to_string()),
    }
}

fn cached(
    cell: &'static Mutex<Option<Arc<ProcfsHandle>>>,
    make: fn() -> Result<ProcfsHandle, pathrs::error::Error>,
) -> io::Result<Arc<ProcfsHandle>> {
    // The processes that use this are single-threaded (the runtime and the
    // children it forks), so the lock is never held across a fork.
    let mut slot = cell.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = &*slot {
        return Ok(h.clone());
    }
    let h = Arc::new(make().map_err(to_io)?);
    *slot = Some(h.clone());
    Ok(h)
}

/// The process's `subset=pid` handle. One inherited across `fork` stays
/// valid: it names the same procfs instance, whose pid namespace is an
/// ancestor of ours, and `self`/`thread-self` resolve against the caller.
fn pids() -> io::Result<Arc<ProcfsHandle>> {
    cached(&PIDS, new_pids_handle)
}

/// A detached `subset=pid` procfs (`fsopen("proc")`, never attached
/// anywhere, `nosuid,nodev,noexec`); the kernel refuses it to an
/// unprivileged caller.
fn fresh_pid_procfs() -> rustix::io::Result<OwnedFd> {
    use rustix::mount::{
        fsconfig_create, fsconfig_set_string, fsmount, fsopen, FsMountFlags, FsOpenFlags,
        MountAttrFlags,
    };
    let fs = fsopen("proc", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(&fs, "subset", "pid")?;
    fsconfig_create(&fs)?;
    fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )
}

/// Still in the mount and pid namespaces the runtime started in: the
/// `/proc` mounted there may serve as its procfs (`mounted_proc`).
static IN_RUNTIME_NAMESPACES: AtomicBool = AtomicBool::new(true);

/// Called by every process that creates or joins a namespace
/// (`process::sys`): from then on its `/proc` path may lead to a procfs a
/// container arranged, or to one of another pid namespace.
pub fn left_runtime_namespaces() {
    IN_RUNTIME_NAMESPACES.store(false, Ordering::Relaxed);
}

/// The caller's procfs handle, made now: init's own `/proc` if it adopted
/// it, the mounted `/proc` while in the runtime's namespaces, else a fresh
/// `fsopen` (checked by pathrs) where the kernel allows one, else pathrs'
/// own (and cached) handle. A handle whose fd is ours: pathrs caches the
/// handle `ProcfsHandle::new` makes for the whole process, so closing ours
/// would not close it, and a child entering the container would keep the
/// host's.
fn new_pids_handle() -> Result<ProcfsHandle, pathrs::error::Error> {
    if let Some(handle) = adopted() {
        return Ok(handle);
    }
    if IN_RUNTIME_NAMESPACES.load(Ordering::Relaxed) {
        if let Some(handle) = mounted_proc() {
            return Ok(handle);
        }
    }
    match fresh_pid_procfs() {
        Ok(fd) => ProcfsHandle::try_from_fd(fd),
        Err(_) => ProcfsHandle::new(),
    }
}

/// The `/proc` mounted in the caller's mount namespace, if it is the root
/// of a procfs (pathrs checks) of the caller's own pid namespace: `self`
/// names the caller's pid, so `/proc/<pid>` means the pids we know. None:
/// not mounted, another pid namespace's, or not a procfs root.
fn mounted_proc() -> Option<ProcfsHandle> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        "/proc",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let own = rustix::fs::readlinkat(&fd, "self", Vec::new()).ok()?;
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    if own.as_bytes() != pid.to_string().as_bytes() {
        return None;
    }
    ProcfsHandle::try_from_fd(fd).ok()
}

/// Init's own fresh `/proc` (`adopt`), checked when first used.
static ADOPTED: Mutex<Option<OwnedFd>> = Mutex::new(None);

/// Init's own fresh `/proc` mount (`tree`, the fd `fsmount` gave, now
/// attached) becomes its procfs handle when it first needs one, unless it
/// has one already (made before the root switch, in a user namespace).
/// Closing that fd later unmounts nothing, where closing a detached private
/// procfs at `execve` would. Not used if pathrs does not find a procfs root
/// there.
pub fn adopt(tree: OwnedFd) {
    if PIDS.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
        *ADOPTED.lock().unwrap_or_else(|e| e.into_inner()) = Some(tree);
    }
}

fn adopted() -> Option<ProcfsHandle> {
    let tree = ADOPTED.lock().unwrap_or_else(|e| e.into_inner()).take()?;
    ProcfsHandle::try_from_fd(tree).ok()
}

/// Closes the cached handles (their fds), so that a child about to enter
/// the container holds no procfs of the host's pid namespace; the next
/// access makes a new handle, in the caller's own pid namespace.
pub fn close_handles() {
    for cell in [&PIDS, &FULL] {
        cell.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
    ADOPTED.lock().unwrap_or_else(|e| e.into_inner()).take();
}

/// Makes the `subset=pid` handle now, while a fresh procfs can be made and
/// checked (before the root switch and the masks: a user namespace may
/// mount procfs only where one is fully visible).
pub fn open_handle() -> io::Result<()> {
    pids().map(drop)
}

fn full() -> io::Result<Arc<ProcfsHandle>> {
    cached(&FULL, || {
        ProcfsHandleBuilder::new().subset_pid(false).build()
    })
}

/// Writes `content` to a file under `/proc/<base>/`.
pub fn write(base: ProcfsBase, file: &str, content: &str) -> io::Result<()> {
    let f = pids()?
        .open(base, file, OpenFlags::O_WRONLY)
        .map_err(to_io)?;
    (&f).write_all(content.as_bytes())
}

/// Opens what a magic link under `/proc/<base>/` points to (`ns/user`):
/// the final component is followed, inside the private procfs only.
pub fn open_link(base: ProcfsBase, link: &str, flags: OpenFlags) -> io::Result<OwnedFd> {
    let f = pids()?.open_follow(base, link, flags).map_err(to_io)?;
    Ok(f.into())
}

/// Reads a file under `/proc/<base>/`.
pub fn read(base: ProcfsBase, file: &str) -> io::Result<String> {
    let mut f = pids()?
        .open(base, file, OpenFlags::O_RDONLY)
        .map_err(to_io)?;
    String::from_utf8(read_all(&mut f)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads a whole file under `/proc/<base>/` as bytes (`mountinfo` may
/// hold paths that are not UTF-8).
pub fn read_bytes(base: ProcfsBase, file: &str) -> io::Result<Vec<u8>> {
    let mut f = pids()?
        .open(base, file, OpenFlags::O_RDONLY)
        .map_err(to_io)?;
    read_all(&mut f)
}

/// Reads a procfs file to its end. A procfs file has no size, so std's
/// `read_to_end` asks for it (`statx`, `lseek`) and then starts with
/// 32-byte reads and doubles: nine syscalls for a 2 KiB `mountinfo`, each
/// read making the kernel format the file up to there. Two here.
fn read_all(f: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; 8192];
    let mut len = 0;
    loop {
        if len == out.len() {
            out.resize(out.len() * 2, 0);
        }
        match f.read(&mut out[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    out.truncate(len);
    Ok(out)
}

/// Writes a sysctl (`net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`).
/// The key must have been validated (`spec::validate_sysctl_key`).
pub fn write_sysctl(key: &str, value: &str) -> io::Result<()> {
    let f = full()?
        .open(
            ProcfsBase::ProcRoot,
            format!("sys/{}", key.replace('.', "/")),
            OpenFlags::O_WRONLY,
        )
        .map_err(to_io)?;
    (&f).write_all(value.as_bytes())
}

/// Reopens the file `fd` refers to (often an `O_PATH` fd) with `flags`,
/// through `/proc/thread-self/fd/N` of the private procfs.
pub fn reopen(fd: impl AsFd, flags: OpenFlags) -> io::Result<OwnedFd> {
    let file = pids()?
        .open_follow(
            ProcfsBase::ProcThreadSelf,
            format!("fd/{}", fd.as_fd().as_raw_fd()),
            flags,
        )
        .map_err(to_io)?;
    Ok(file.into())
}

/// Reopens many fds cheaply (result capture reopens every file it copies):
/// one `openat` of `thread-self/fd/N` in a procfs of our own, made with
/// `fsopen("proc")` (`subset=pid`) and never attached anywhere, so nothing
/// can be mounted over its magic links. Where the kernel refuses a fresh
/// procfs (an unprivileged caller), each reopen goes through `reopen`.
pub struct Reopener {
    proc: Option<OwnedFd>,
}

impl Reopener {
    pub fn new() -> Reopener {
        Reopener {
            proc: fresh_pid_procfs().ok(),
        }
    }

    /// `fd`'s file opened again with `flags` (plus `O_CLOEXEC`).
    pub fn reopen(&self, fd: impl AsFd, flags: rustix::fs::OFlags) -> io::Result<OwnedFd> {
        let raw = fd.as_fd().as_raw_fd();
        let flags = flags | rustix::fs::OFlags::CLOEXEC;
        match &self.proc {
            Some(proc) => Ok(rustix::fs::openat(
                proc,
                format!("thread-self/fd/{raw}"),
                flags,
                rustix::fs::Mode::empty(),
            )?),
            None => reopen(fd, OpenFlags::from_bits_retain(flags.bits() as _)),
        }
    }
}

impl Default for Reopener {
    fn default() -> Self {
        Reopener::new()
    }
}

/// The path an fd refers to, as the kernel names it (for checks and
/// messages only; never used to reach the file again).
pub fn path_of(fd: impl AsFd) -> io::Result<PathBuf> {
    pids()?
        .readlink(
            ProcfsBase::ProcThreadSelf,
            format!("fd/{}", fd.as_fd().as_raw_fd()),
        )
        .map_err(to_io)
}

/// Where a link under `/proc/<base>/` points (`ns/mnt` → `mnt:[4026531841]`),
/// read in the private procfs.
pub fn readlink(base: ProcfsBase, link: &str) -> io::Result<PathBuf> {
    pids()?.readlink(base, link).map_err(to_io)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most 1000 bytes a call, like a seq_file page by page.
    struct Chunks(std::io::Cursor<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1000);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn read_all_reads_past_its_first_buffer() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let got = read_all(&mut Chunks(std::io::Cursor::new(data.clone()))).unwrap();
        assert_eq!(got, data);
        assert!(read_all(&mut Chunks(std::io::Cursor::new(Vec::new())))
            .unwrap()
            .is_empty());
    }
}
