//! Raw process syscalls that rustix does not wrap, or wraps in a way we
//! cannot use here. Each is a small function with the kernel behaviour it
//! relies on.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub enum Forked {
    Parent(i32),
    Child,
}

/// `fork()`. The runtime is single-threaded (no async runtime, no helper
/// threads), so the child may allocate and run ordinary Rust code.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: no other threads exist that could hold locks in the child.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// `unshare(2)` with `CLONE_NEW*` flags.
pub fn unshare(flags: i32) -> io::Result<()> {
    // SAFETY: plain syscall with integer flags.
    check(unsafe { libc::unshare(flags) } as libc::c_long).map(drop)
}

/// `setns(2)`: join the namespace `fd` refers to.
pub fn setns(fd: impl AsFd, nstype: i32) -> io::Result<()> {
    // SAFETY: the fd is valid for the duration of the call.
    check(unsafe { libc::setns(fd.as_fd().as_raw_fd(), nstype) } as libc::c_long).map(drop)
}

/// `close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`: mark every fd from
/// `first` up close-on-exec, so nothing of the runtime leaks into the
/// container's process.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: plain syscall with integer arguments; it only sets flags.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })
        .map(drop)
}

/// `close_range(first, last, 0)`: closes every open fd in the range.
fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments. Closing fds that Rust
    // objects still own is the caller's business: `close_fds_for_exec`
    // runs only right before `execve`.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) }).map(drop)
}

/// Closes what `execve` must not see: every fd from `3 + preserve_fds` up,
/// and close-on-exec fds among the preserved ones (the runtime's own, when
/// fewer fds were passed than `--preserve-fds` says), except `keep`
/// (close-on-exec fds needed until `execve`). What remains open is exactly
/// what the new program gets, and nothing else is reachable through
/// `/proc/self/fd` while `execve` resolves the program's path.
pub fn close_fds_for_exec(preserve_fds: u32, keep: &[RawFd]) -> io::Result<()> {
    let first_closed = 3u32.saturating_add(preserve_fds);
    let mut kept: Vec<u32> = keep.iter().filter_map(|k| u32::try_from(*k).ok()).collect();
    kept.sort_unstable();
    for fd in 3..first_closed {
        // SAFETY: F_GETFD only reads the flags of a number that may or may
        // not be an open fd.
        let flags = unsafe { libc::fcntl(fd as i32, libc::F_GETFD) };
        if flags >= 0 && flags & libc::FD_CLOEXEC != 0 && !kept.contains(&fd) {
            close_range(fd, fd)?;
        }
    }
    // The gaps between the kept fds at or above `first_closed`, then the
    // rest. (An fd number is below 2^20 or so: `k + 1` cannot overflow.)
    let mut from = first_closed;
    for k in kept.into_iter().filter(|k| *k >= first_closed) {
        if k > from {
            close_range(from, k - 1)?;
        }
        from = k + 1;
    }
    close_range(from, u32::MAX)
}

/// `prctl` with integer arguments only.
pub fn prctl(option: i32, arg: u64) -> io::Result<()> {
    // SAFETY: the options used here take integer arguments only.
    check(unsafe { libc::prctl(option, arg, 0, 0, 0) } as libc::c_long).map(drop)
}

pub fn setresuid(uid: u32) -> io::Result<()> {
    // SAFETY: plain syscall; the process is single-threaded.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

pub fn setresgid(gid: u32) -> io::Result<()> {
    // SAFETY: plain syscall; the process is single-threaded.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

pub fn setgroups(groups: &[u32]) -> io::Result<()> {
    // SAFETY: the pointer and length describe a live slice.
    check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) }).map(drop)
}

pub fn setrlimit(resource: i32, soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `limit` is a live struct; pid 0 is the calling process.
    check(
        unsafe { libc::prlimit64(0, resource as _, &limit, std::ptr::null_mut()) } as libc::c_long,
    )
    .map(drop)
}

pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length describe a live byte string.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } as libc::c_long).map(drop)
}

pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length describe a live byte string.
    check(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } as libc::c_long)
        .map(drop)
}

/// Restores the default disposition and an empty mask for every signal, so
/// the container's process starts as if from a fresh `execve` of init.
pub fn reset_signals() {
    // SAFETY: sigset manipulation on a local; signal() with SIG_DFL.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

/// `execve`; returns only on failure.
pub fn execve(
    path: &std::ffi::CStr,
    args: &[std::ffi::CString],
    env: &[std::ffi::CString],
) -> io::Error {
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of live C strings.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// `_exit`: leave the forked child without running the parent's atexit
/// handlers or flushing its buffers twice.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: terminates the process.
    unsafe { libc::_exit(code) }
}

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`: gives the process a new
/// session keyring, so the container does not share the caller's keys.
pub fn join_session_keyring(name: &std::ffi::CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: the name is a live NUL-terminated string; keyctl only reads it.
    check(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) })
        .map(drop)
}
