//! A host-tree overlay (`MountKind::Overlay`): the kernel's overlayfs, or
//! one served by `fuse-overlayfs` (`OverlayDriver::Fuse`, or
//! `KernelThenFuse` where the kernel refused the overlay): the rootless
//! sandbox's last fallback.
//!
//! Init (in the sandbox's user and mount namespaces, before the root
//! switch) makes the FUSE mount itself — `fsopen("fuse")` with the fd of a
//! fresh open of `/dev/fuse`, `fsmount`: a detached mount, attached like
//! every other mount of the plan — and starts `fuse-overlayfs -f` as its own
//! child, handing it that `/dev/fuse` fd as the mountpoint `/dev/fd/N`
//! (libfuse ≥ 3.3: the daemon then mounts nothing and needs no privilege)
//! and its layers as `/proc/self/fd/N` of directories init opened. The
//! daemon opens its layers at start and works fd-relative from then on, so
//! the root switch and the detached old root do not disturb it.
//!
//! The daemon lives in init's pid namespace and run cgroup, in a session
//! of its own (a terminal's ^C does not reach it) with SIGKILL as its
//! parent-death signal: when the command ends init exits, the kernel kills
//! the pid namespace and with it the daemon, and the mount goes with the
//! mount namespace. Init reaps it like any orphan; it is never mistaken
//! for the command (init waits for the command's pid only).

use std::io::{self, Read, Seek};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustix::fs::{Mode, OFlags};

use super::Rootfs;
use crate::error::{Error, IoContext, Result};
use crate::fs::mount as mnt;
use crate::fs::procfs;
use crate::plan::{FsOption, MountStep, OverlayDriver};
use crate::process::sys;

impl Rootfs {
    /// A host-tree overlay, detached: the kernel's overlayfs, or a
    /// `fuse-overlayfs` daemon's mount (`OverlayDriver`). Errors name the
    /// directory and the driver.
    pub(super) fn overlay(
        &self,
        lower: &Path,
        layer: &Path,
        driver: &OverlayDriver,
        m: &MountStep,
        field: &str,
    ) -> Result<OwnedFd> {
        let Some((dirs, _)) = &self.staging else {
            return Err(Error::Other(format!(
                "{field}: no staging filesystem for this root"
            )));
        };
        let (options, held) = dirs
            .overlay_options(lower, layer)
            .ctx(|| format!("{field}: overlay of {}", lower.display()))?;
        let attrs = m.attrs.set | m.recursive_attrs.set;
        let program = match driver {
            OverlayDriver::Kernel | OverlayDriver::KernelThenFuse { .. } => {
                match mnt::fresh("overlay", "overlay", &options, attrs) {
                    Ok(fd) => return Ok(fd),
                    Err(e) => match driver {
                        OverlayDriver::KernelThenFuse { program } if kernel_refused(e.errno) => {
                            tracing::debug!(
                                "overlay of {}: the kernel refused ({e}), using fuse-overlayfs",
                                lower.display()
                            );
                            program
                        }
                        _ => {
                            return Err(Error::Other(format!(
                                "{field}: overlay of {} (kernel overlayfs): {e}",
                                lower.display()
                            )))
                        }
                    },
                }
            }
            OverlayDriver::Fuse { program } => program,
        };
        let fail = |why: String| {
            Error::Other(format!(
                "{field}: overlay of {} (fuse-overlayfs {}): {why}",
                lower.display(),
                program.display()
            ))
        };
        let (device, staging) = self
            .fuse_device
            .as_ref()
            .ok_or_else(|| fail("/dev/fuse was not opened".into()))?;
        let [lower, upper, work] = held.as_slice() else {
            return Err(fail("the overlay's layers were not opened".into()));
        };
        let layers = Layers { lower, upper, work };
        let (tree, daemon) = mount(program, device, layers, staging, attrs).map_err(fail)?;
        // Init reaps the daemon with its other orphans; the pid
        // namespace's end kills it (`Child` neither waits nor kills).
        drop(daemon);
        Ok(tree)
    }
}

/// `FUSE_SUPER_MAGIC` of statfs(2).
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
/// How long the daemon may take to answer its first request.
const READY_BOUND: Duration = Duration::from_secs(10);

/// An `O_PATH` handle on `/dev/fuse`, taken before the staging may cover
/// `/dev`; every FUSE mount reopens it (one connection per open).
pub(super) fn open_device() -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        "/dev/fuse",
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The three directories of one overlay, open.
pub(super) struct Layers<'a> {
    pub lower: &'a OwnedFd,
    pub upper: &'a OwnedFd,
    pub work: &'a OwnedFd,
}

/// Mounts an overlay of `layers` served by a new `fuse-overlayfs` daemon
/// (`program`). Returns the detached mount, ready (the daemon answered),
/// and the daemon (none for a directory the caller may not read: its
/// read-only bind instead). On failure nothing is left: the daemon is
/// killed and reaped, the mount fd closed.
/// `staging`: where the staging is attached (the daemon finds its upper
/// and work directories there again by path).
pub(super) fn mount(
    program: &Path,
    device: &OwnedFd,
    layers: Layers<'_>,
    staging: &Path,
    attrs: u64,
) -> Result<(OwnedFd, Option<Child>), String> {
    // Like the kernel's overlayfs, the lower layer is that one filesystem:
    // a daemon given the directory itself would see (and show) the mounts
    // below it, `/proc` and `/sys` of the host under `/`. A non-recursive
    // clone has none, and is made read-only: the daemon never writes its
    // lower layer, and nothing that reaches its fds may. (In a user
    // namespace the kernel refuses to clone a mount with locked mounts
    // below; the planner rebuilds such directories, so a lower has none.)
    let lower = mnt::clone_fd(layers.lower.as_fd(), false)
        .map_err(|e| format!("a clone of the lower directory: {e}"))?;
    mnt::set_attrs(
        &lower,
        crate::plan::AttrChange {
            set: crate::plan::options::attr::RDONLY,
            clear: 0,
        },
        false,
    )
    .map_err(|e| format!("making the lower layer read-only: {e}"))?;
    // A directory the caller may not read (a rootless run, `/lost+found`)
    // cannot be a daemon's layer; the caller could neither list nor change
    // it anyway, so the read-only clone itself is mounted instead.
    if let Err(e) = procfs::reopen(
        &lower,
        pathrs::flags::OpenFlags::O_RDONLY
            | pathrs::flags::OpenFlags::O_DIRECTORY
            | pathrs::flags::OpenFlags::O_CLOEXEC,
    ) {
        if e.raw_os_error() == Some(libc::EACCES) {
            return Ok((lower, None));
        }
    }
    let fuse = procfs::reopen(
        device,
        pathrs::flags::OpenFlags::O_RDWR | pathrs::flags::OpenFlags::O_CLOEXEC,
    )
    .map_err(|e| format!("opening /dev/fuse: {e}"))?;
    let (uid, gid) = (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    let options = [
        FsOption::Value("fd".into(), fuse.as_raw_fd().to_string()),
        FsOption::Value("rootmode".into(), "40000".into()),
        FsOption::Value("user_id".into(), uid.to_string()),
        FsOption::Value("group_id".into(), gid.to_string()),
        FsOption::Value("subtype".into(), "fuse-overlayfs".into()),
        // The command may run as another user than init; the kernel checks
        // permissions on the modes fuse-overlayfs reports, as overlayfs.
        FsOption::Flag("allow_other".into()),
        FsOption::Flag("default_permissions".into()),
    ];
    let tree = mnt::fresh("fuse", "fuse-overlayfs", &options, attrs)
        .map_err(|e| format!("the FUSE mount: {e}"))?;
    let stderr = rustix::fs::memfd_create("fuse-overlayfs-stderr", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| format!("memfd: {e}"))?;
    // A work directory of its own: a refused kernel overlay may have left
    // its `work/work` (mode 000) in the layer's work directory.
    let work = own_work_dir(layers.work).map_err(|e| format!("its work directory: {e}"))?;
    let held = [&lower, layers.upper, &work];
    let mut child = spawn(program, &fuse, &held, staging, &stderr)
        .map_err(|e| format!("starting {}: {e}", program.display()))?;
    drop(child.stdin.take());
    // Only the daemon holds the device from here on: if it exits, the
    // connection is aborted and requests fail instead of hanging.
    drop(fuse);
    match wait_ready(&tree, &mut child) {
        Ok(()) => Ok((tree, Some(child))),
        Err(why) => {
            let _ = child.kill();
            let _ = child.wait();
            let said = read_all(stderr);
            Err(match said.trim() {
                "" => why,
                text => format!("{why}; it said: {text}"),
            })
        }
    }
}

/// A sealed memfd holding a copy of `program`, mode 0111: executable, not
/// readable by a process without capabilities.
fn execute_only_copy(program: &Path) -> io::Result<OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let memfd = rustix::fs::memfd_create(
        "fuse-overlayfs",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut from = std::fs::File::open(program)?;
    let mut to = std::fs::File::from(memfd.try_clone()?);
    io::copy(&mut from, &mut to)?;
    rustix::fs::fchmod(&memfd, Mode::from_raw_mode(0o111))?;
    rustix::fs::fcntl_add_seals(
        &memfd,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )?;
    Ok(memfd)
}

/// `fuse/` in the layer's work directory, made if missing (0700).
fn own_work_dir(work: &OwnedFd) -> io::Result<OwnedFd> {
    match rustix::fs::mkdirat(work, "fuse", Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(rustix::fs::openat(
        work,
        "fuse",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `program -f -o lowerdir=...,upperdir=...,workdir=... /dev/fd/N`, with
/// the layer and device fds passed by number, its output into `stderr`,
/// an empty environment.
fn spawn(
    program: &Path,
    fuse: &OwnedFd,
    held: &[&OwnedFd; 3],
    staging: &Path,
    stderr: &OwnedFd,
) -> io::Result<Child> {
    use std::os::unix::ffi::OsStrExt;
    let writable = std::ffi::CString::new(staging.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let name = |fd: &OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
    let layers = format!(
        "lowerdir={},upperdir={},workdir={}",
        name(held[0]),
        name(held[1]),
        name(held[2])
    );
    // Not root here (a rootless sandbox mapping the user to itself): the
    // daemon runs as the command's user, without capabilities. It is
    // started from an execute-only copy, which the kernel makes a process
    // the command cannot ptrace nor reach through /proc (its root is the
    // host's tree, its fds the layers). As root, the daemon keeps
    // capabilities the command lacks, which protects it the same way.
    let rootless = !rustix::process::getuid().is_root();
    let exe = if rootless {
        Some(execute_only_copy(program)?)
    } else {
        None
    };
    let mut cmd = match &exe {
        Some(fd) => Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        None => Command::new(program),
    };
    {
        use std::os::unix::process::CommandExt;
        cmd.arg0("fuse-overlayfs");
    }
    cmd.arg("-f")
        .arg("-o")
        .arg(layers)
        .arg(format!("/dev/fd/{}", fuse.as_raw_fd()))
        .env_clear()
        // No /dev/null here: the staging may cover /dev. stdin is a pipe
        // whose other end init closes, stdout and stderr the memfd.
        .stdin(Stdio::piped())
        .stdout(Stdio::from(stderr.try_clone()?))
        .stderr(Stdio::from(stderr.try_clone()?));
    let mut pass: Vec<i32> = held.iter().map(|fd| fd.as_raw_fd()).collect();
    pass.push(fuse.as_raw_fd());
    sys::daemon_in_child(&mut cmd, pass, writable, rootless);
    cmd.spawn()
}

/// Waits until the daemon answers a `statfs` of the mount (FUSE queues the
/// request until the daemon has done its `INIT`), at most `READY_BOUND`:
/// a daemon that exits aborts the connection (the request fails), one that
/// hangs is killed (which aborts it too).
fn wait_ready(tree: &OwnedFd, child: &mut Child) -> Result<(), String> {
    let probe = tree.try_clone().map_err(|e| format!("dup: {e}"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(rustix::fs::fstatfs(&probe));
    });
    let result = match rx.recv_timeout(READY_BOUND) {
        Ok(result) => result,
        Err(_) => {
            let _ = child.kill();
            let _ = thread.join();
            return Err(format!(
                "it did not answer within {} s",
                READY_BOUND.as_secs()
            ));
        }
    };
    let _ = thread.join();
    match result {
        Ok(st) if st.f_type == FUSE_SUPER_MAGIC => Ok(()),
        Ok(st) => Err(format!("the mount is not FUSE (type {:#x})", st.f_type)),
        Err(e) => {
            let status = child
                .try_wait()
                .ok()
                .flatten()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            Err(format!("it did not serve the mount: {e}{status}"))
        }
    }
}

/// What the daemon wrote to its stderr (bounded).
fn read_all(fd: OwnedFd) -> String {
    let mut file = std::fs::File::from(fd);
    let mut text = String::new();
    if file.rewind().is_ok() {
        let _ = file.take(4096).read_to_string(&mut text);
    }
    text
}

/// Whether a refusal of the kernel's overlay is one `fuse-overlayfs` may
/// get around (`KernelThenFuse`): permission, unsupported layers.
pub(super) fn kernel_refused(errno: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    matches!(
        errno,
        Errno::PERM | Errno::INVAL | Errno::OPNOTSUPP | Errno::ACCESS | Errno::NODEV
    )
}
