//! Raw process syscalls that rustix does not wrap, or wraps in a way we
//! cannot use here. Each is a small function with the kernel behaviour it
//! relies on.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

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

/// `struct clone_args` of linux/sched.h, up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `clone3(args)` without `CLONE_VM` or a new stack: returns 0 in the
/// child and the child's pid in the parent, like fork. Only for
/// single-threaded callers (the child is a copy of the calling thread).
/// A child born in new namespaces has left the runtime's: it says so to
/// `fs::procfs` (`left_runtime_namespaces`), as `unshare` and `setns` do.
fn clone3(args: &CloneArgs) -> io::Result<libc::c_long> {
    // SAFETY: like fork (no CLONE_VM, no new stack): the child gets a copy
    // of this single-threaded process. `args` (and whatever it points to)
    // lives across the call, and its size is passed.
    let pid = check(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    })?;
    if pid == 0 && args.flags & NAMESPACE_FLAGS != 0 {
        crate::fs::procfs::left_runtime_namespaces();
    }
    Ok(pid)
}

/// Every `CLONE_NEW*` flag.
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWTIME) as u64;

/// A `fork()` whose child starts in the cgroup v2 directory `cgroup`
/// (`clone3` with `CLONE_INTO_CGROUP`, Linux 5.7): it is never, even for a
/// moment, outside the container's cgroup; and in new namespaces where
/// `flags` has `CLONE_NEW*` flags (`CLONE_NEWPID`: the child is pid 1 of
/// its own pid namespace). Errors (an older kernel, a cgroup the kernel
/// will not take) leave the caller to `clone_with` the same flags and join
/// the cgroup by writing `cgroup.procs` instead.
pub fn clone_into_cgroup(cgroup: impl AsFd, flags: u64) -> io::Result<Forked> {
    let args = CloneArgs {
        flags: flags | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_fd().as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    forked(clone3(&args)?)
}

/// `fork()` where `flags` is 0, else `clone3` with these `CLONE_NEW*` flags
/// (a fork whose child starts in new namespaces).
pub fn clone_with(flags: u64) -> io::Result<Forked> {
    if flags == 0 {
        return fork();
    }
    let args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    forked(clone3(&args)?)
}

fn forked(pid: libc::c_long) -> io::Result<Forked> {
    Ok(match pid {
        0 => Forked::Child,
        pid => Forked::Parent(pid as i32),
    })
}

/// `prctl(PR_CAPBSET_DROP, cap)`: EINVAL for a capability this kernel
/// does not know.
pub fn drop_bounding(cap: u8) -> io::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    check(
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) }
            as libc::c_long,
    )
    .map(drop)
}

/// `unshare(2)` with `CLONE_NEW*` flags.
///
/// From the first namespace created or joined on, the caller no longer
/// opens the `/proc` mounted in its mount namespace (`fs::procfs`): said
/// before the call, so a half-done one is covered too.
pub fn unshare(flags: i32) -> io::Result<()> {
    crate::fs::procfs::left_runtime_namespaces();
    // SAFETY: plain syscall with integer flags.
    check(unsafe { libc::unshare(flags) } as libc::c_long).map(drop)
}

/// `setns(2)`: join the namespace `fd` refers to (see `unshare` for
/// `/proc`).
pub fn setns(fd: impl AsFd, nstype: i32) -> io::Result<()> {
    crate::fs::procfs::left_runtime_namespaces();
    // SAFETY: the fd is valid for the duration of the call.
    check(unsafe { libc::setns(fd.as_fd().as_raw_fd(), nstype) } as libc::c_long).map(drop)
}

/// `close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`: mark every fd from
/// `first` up close-on-exec, so nothing of the runtime leaks into the
/// container's process. Where `close_range` is refused (ENOSYS: a kernel
/// before 5.11; EPERM: a seccomp profile), one `fcntl` per fd number below
/// the fd limit.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: plain syscall with integer arguments; it only sets flags.
    match check(unsafe {
        libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC)
    }) {
        Err(e) if refused(&e) => {
            for fd in first..fd_bound() {
                // SAFETY: F_GETFD/F_SETFD only touch the flags of a number
                // that may or may not be an open fd (EBADF then).
                unsafe {
                    let flags = libc::fcntl(fd as i32, libc::F_GETFD);
                    if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                        libc::fcntl(fd as i32, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                    }
                }
            }
            Ok(())
        }
        other => other.map(drop),
    }
}

/// Makes the child of `cmd` mark every fd from 3 up close-on-exec just
/// before its `execve`, so the program (a hook) gets stdio and nothing else
/// of the runtime or of init: not the state lock, the sync socket or the
/// fds kept open for the container (`--preserve-fds`, which are not
/// close-on-exec). Marking rather than closing keeps std's close-on-exec
/// pipe through which a failed `execve` is reported.
pub fn cloexec_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and execve; `cloexec_from`
    // makes only raw syscalls (close_range, getrlimit, fcntl): no
    // allocation, no locks.
    unsafe {
        cmd.pre_exec(|| cloexec_from(3));
    }
}

/// `close_range` is missing (ENOSYS) or a seccomp profile denies it (EPERM,
/// or whatever errno the profile returns, which is never EBADF or EINVAL for
/// valid arguments): the caller falls back to a loop.
fn refused(e: &io::Error) -> bool {
    !matches!(e.raw_os_error(), Some(libc::EBADF | libc::EINVAL))
}

/// Where the fallback loops stop: no new fd is numbered at or above the
/// soft RLIMIT_NOFILE, and the runtime's own fds are low numbers; capped at
/// 2^20 so that a huge limit does not mean a million syscalls.
fn fd_bound() -> u32 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or(1 << 20, |n| u32::try_from(n).unwrap_or(1 << 20))
        .min(1 << 20)
}

/// `close_range(first, last, 0)`: closes every open fd in the range; where
/// `close_range` is refused, `close` on each number up to the fd limit.
fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments. Closing fds that Rust
    // objects still own is the caller's business: `close_fds_for_exec`
    // runs only right before `execve`.
    match check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) }) {
        Err(e) if refused(&e) => {
            for fd in first..=last.min(fd_bound()) {
                // SAFETY: as above; EBADF for numbers that are not open.
                unsafe { libc::close(fd as i32) };
            }
            Ok(())
        }
        other => other.map(drop),
    }
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
    // No fd is numbered at or above RLIMIT_NOFILE: a huge --preserve-fds
    // must not mean billions of fcntl calls.
    for fd in 3..first_closed.min(fd_bound()) {
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

/// Sets the filesystem uid and gid of the calling thread only (the raw
/// syscalls act per thread; glibc's wrappers would too, but say nothing on
/// failure: success is read back with the invalid id -1).
pub fn set_thread_fs_ids(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain syscalls with integer arguments.
    let read_back = |nr| unsafe { libc::syscall(nr, -1i32) } as u32;
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_setfsgid, gid) };
    unsafe { libc::syscall(libc::SYS_setfsuid, uid) };
    if read_back(libc::SYS_setfsuid) != uid || read_back(libc::SYS_setfsgid) != gid {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    Ok(())
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

/// Brings the loopback interface `lo` up in the calling thread's network
/// namespace, as `ip link set lo up` does (BenchExec's
/// `activate_network_interface`): a fresh network namespace has `lo` but
/// down, so even 127.0.0.1 is unreachable. `SIOCGIFFLAGS` reads the flags,
/// `SIOCSIFFLAGS` writes them back with `IFF_UP`; both act on the namespace
/// the socket was created in (the creator's), whatever the caller later
/// joins. When `lo` is up already nothing is written (no CAP_NET_ADMIN
/// needed then).
pub fn loopback_up() -> io::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: socket() has no memory arguments; a non-negative result is a
    // new fd that nothing else owns.
    let fd = check(
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }
            as libc::c_long,
    )?;
    // SAFETY: see above; the fd is closed when `sock` drops.
    let sock = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: `ifreq` is plain data (a name and a union of integers and
    // addresses): all zeroes is valid, and the name stays NUL-terminated.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads ifr_name and writes ifr_flags inside the
    // `ifreq` it is given, which lives across the call.
    check(unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as libc::Ioctl,
            &mut req,
        )
    } as libc::c_long)?;
    // SAFETY: the kernel has just filled the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS only reads the `ifreq`, which lives across the call.
    check(
        unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as libc::Ioctl, &req) }
            as libc::c_long,
    )
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

/// A NULL-terminated array of pointers into `strings`, for `execve`; it
/// borrows them, so they outlive the call.
fn c_array(strings: &[std::ffi::CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The program, arguments and environment of an `execve`, with the
/// NULL-terminated pointer arrays built in advance: after the seccomp
/// filter is loaded, `execve` is the only syscall left, so nothing may
/// allocate then.
pub struct ExecArgs {
    path: std::ffi::CString,
    args: Vec<std::ffi::CString>,
    env: Vec<std::ffi::CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl ExecArgs {
    /// The environment, as text (for hooks that inherit it).
    pub fn env_lossy(&self) -> Vec<String> {
        self.env
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect()
    }

    pub fn new(
        path: std::ffi::CString,
        args: Vec<std::ffi::CString>,
        env: Vec<std::ffi::CString>,
    ) -> ExecArgs {
        // The pointers point into the strings' own heap buffers, which do
        // not move when the vectors or this struct move.
        let (argv, envp) = (c_array(&args), c_array(&env));
        ExecArgs {
            path,
            args,
            env,
            argv,
            envp,
        }
    }

    pub fn args(&self) -> &[std::ffi::CString] {
        &self.args
    }

    pub fn env(&self) -> &[std::ffi::CString] {
        &self.env
    }

    /// `execve`; returns only on failure.
    pub fn execve(&self) -> io::Error {
        // SAFETY: argv and envp are NULL-terminated arrays of pointers into
        // `args` and `env`, which `self` keeps alive and unchanged.
        unsafe { libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
        io::Error::last_os_error()
    }
}

/// `_exit`: leave the forked child without running the parent's atexit
/// handlers or flushing its buffers twice.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: terminates the process.
    unsafe { libc::_exit(code) }
}

/// `getrusage(RUSAGE_SELF)`'s `ru_maxrss`: the peak resident set of this
/// process in KiB. For a process forked without an `execve` since, the
/// kernel takes it from its own memory map only (the same number as
/// `VmHWM` in `/proc/self/status`): a fresh signal struct starts at 0, and
/// an `execve` would carry the old image's peak into it. No file is read,
/// so it works after the root switch and with no `/proc`. Diagnostics
/// only (`ROOTCELL_RSS`).
pub fn peak_rss_kib() -> io::Result<u64> {
    // SAFETY: getrusage writes one `struct rusage`, which we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to that struct.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::try_from(usage.ru_maxrss).unwrap_or(0))
}

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`: gives the process a new
/// session keyring, so the container does not share the caller's keys.
pub fn join_session_keyring(name: &std::ffi::CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: the name is a live NUL-terminated string; keyctl only reads it.
    check(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) })
        .map(drop)
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: executes the file `fd`
/// refers to (an `O_PATH` fd works); returns only on failure.
pub fn execveat_fd(
    fd: impl AsFd,
    args: &[std::ffi::CString],
    env: &[std::ffi::CString],
) -> io::Error {
    let (argv, envp) = (c_array(args), c_array(env));
    // SAFETY: the fd is valid for the call, the path is an empty C string,
    // argv and envp are NULL-terminated arrays of live C strings.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// `personality(persona)`: the execution domain, inherited across execve
/// (`PER_LINUX32` makes `uname -m` report a 32-bit machine).
pub fn personality(persona: u64) -> io::Result<()> {
    // SAFETY: plain syscall with an integer argument.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    // It returns the previous persona, which can look negative only on
    // failure (-1 with errno).
    check(ret as libc::c_long).map(drop)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, ioprio)`: the I/O priority of the
/// calling thread, kept across execve.
pub fn ioprio_set(ioprio: i32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, ioprio) }).map(drop)
}

/// The kernel's `struct sched_attr` (`SCHED_ATTR_SIZE_VER1`, 56 bytes).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

/// `sched_setattr(0, attr, 0)`: policy, nice, priority, flags and the
/// deadline parameters of the calling thread; kept across execve.
pub fn sched_setattr(
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    (runtime, deadline, period): (u64, u64, u64),
) -> io::Result<()> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: policy,
        sched_flags: flags,
        sched_nice: nice,
        sched_priority: priority,
        sched_runtime: runtime,
        sched_deadline: deadline,
        sched_period: period,
        ..Default::default()
    };
    // SAFETY: `attr` is a live, correctly sized struct the kernel only reads.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) })
        .map(drop)
}

/// `sched_setaffinity(0, mask)`: the CPUs the calling thread may run on.
/// Fails with EINVAL when none of them is online and allowed.
pub fn sched_setaffinity(cpus: &[u32]) -> io::Result<()> {
    // A mask large enough for the highest CPU asked for.
    let words = cpus.iter().max().map_or(1, |m| *m as usize / 64 + 1);
    let mut mask = vec![0u64; words];
    for cpu in cpus {
        mask[*cpu as usize / 64] |= 1 << (cpu % 64);
    }
    // SAFETY: pointer and byte length describe the live `mask`.
    check(unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            0,
            mask.len() * 8,
            mask.as_ptr(),
        )
    })
    .map(drop)
}

/// `set_mempolicy(mode, nodemask, maxnode)`: the NUMA memory policy of the
/// calling thread, inherited by its children and kept across execve. The
/// kernel reads `maxnode - 1` bits of `mask` (a null mask when empty).
pub fn set_mempolicy(mode: i32, mask: &[libc::c_ulong], maxnode: libc::c_ulong) -> io::Result<()> {
    let bits = mask.len() as libc::c_ulong * libc::c_ulong::from(libc::c_ulong::BITS);
    if maxnode > bits + 1 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let ptr = if mask.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // SAFETY: `ptr` is null or points to `mask`, which holds at least the
    // `maxnode - 1` bits the kernel reads (checked above).
    check(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) }).map(drop)
}

/// The kernel's `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const libc::sock_filter,
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`: installs a BPF filter
/// on the calling thread, kept across fork and execve. Needs no_new_privs
/// or CAP_SYS_ADMIN in the current user namespace. With
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` the kernel returns the notification
/// fd, close-on-exec (the kernel opens it with `O_CLOEXEC`).
pub fn seccomp_set_filter(
    flags: libc::c_ulong,
    program: &[libc::sock_filter],
) -> io::Result<Option<std::os::fd::OwnedFd>> {
    use std::os::fd::FromRawFd;
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    const NEW_LISTENER: libc::c_ulong = 1 << 3;
    let len = libc::c_ushort::try_from(program.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = SockFprog {
        len,
        filter: program.as_ptr(),
    };
    // SAFETY: `prog` points at the live `program` slice of `len` entries.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const SockFprog,
        )
    })?;
    if flags & NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER, a successful call returns a new fd we own.
    Ok(Some(unsafe {
        std::os::fd::OwnedFd::from_raw_fd(ret as libc::c_int)
    }))
}

/// Whether the kernel knows a `SECCOMP_FILTER_FLAG_*`: with a NULL
/// program it fails with EFAULT once the flags passed its check, with
/// EINVAL when a flag is unknown.
pub fn seccomp_flag_supported(flag: libc::c_ulong) -> bool {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    // SAFETY: a NULL program is never dereferenced: the kernel checks the
    // flags first and then fails to copy the program.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flag,
            std::ptr::null::<SockFprog>(),
        )
    };
    ret < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// `prlimit64(0, resource, NULL, &old)`: the calling process's limit.
pub fn getrlimit(resource: i32) -> io::Result<(u64, u64)> {
    let mut old = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is a live struct the kernel writes; pid 0 is us.
    check(
        unsafe { libc::prlimit64(0, resource as _, std::ptr::null(), &mut old) } as libc::c_long,
    )?;
    Ok((old.rlim_cur, old.rlim_max))
}

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`
/// (the kernel zero-fills what a shorter attr leaves out).
#[repr(C)]
#[derive(Default)]
struct BpfProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
#[derive(Default)]
struct BpfProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Loads a `BPF_PROG_TYPE_CGROUP_DEVICE` program (`insns`: 8 bytes per
/// `struct bpf_insn`). On a verifier refusal the error carries the
/// verifier's log. Needs CAP_BPF or CAP_SYS_ADMIN; the program's memory is
/// charged to the memory cgroup on kernels ≥ 5.11, to RLIMIT_MEMLOCK
/// before.
pub fn bpf_load_cgroup_device(insns: &[u8]) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let license = c"Apache";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = BpfProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: (insns.len() / 8) as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..BpfProgLoadAttr::default()
    };
    let load = |attr: &mut BpfProgLoadAttr| {
        // SAFETY: attr points to a valid bpf_attr of the given size, whose
        // pointers (insns, license, log) outlive the call.
        check(unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_LOAD,
                attr as *mut BpfProgLoadAttr,
                std::mem::size_of::<BpfProgLoadAttr>(),
            )
        })
    };
    match load(&mut attr) {
        // SAFETY: on success the kernel returned a new fd that we own.
        Ok(fd) => Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as RawFd) }),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // Again with the verifier's log, to say why.
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = load(&mut attr);
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            Err(io::Error::new(
                e.kind(),
                format!("{e}: {}", String::from_utf8_lossy(&log[..end]).trim()),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Attaches a device program to a cgroup (`BPF_F_ALLOW_MULTI`, as runc:
/// the programs of the ancestors still apply).
pub fn bpf_attach_cgroup_device(cgroup: impl AsFd, prog: impl AsFd) -> io::Result<()> {
    let attr = BpfProgAttachAttr {
        target_fd: cgroup.as_fd().as_raw_fd() as u32,
        attach_bpf_fd: prog.as_fd().as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    // SAFETY: attr is a valid bpf_attr for BPF_PROG_ATTACH; fds are open.
    check(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const BpfProgAttachAttr,
            std::mem::size_of::<BpfProgAttachAttr>(),
        )
    })
    .map(|_| ())
}

/// `clone3` with `CLONE_PIDFD` and the namespace flags `ns_flags`
/// (`CLONE_NEW*`): like `fork`, but the child starts in new namespaces (as
/// pid 1 of a new pid namespace with `CLONE_NEWPID`), and the parent gets
/// a pidfd of it from the same call, so the child is named by an fd that
/// can never refer to a reused pid. The child's exit signal is SIGCHLD.
/// Like `fork`, the child runs ordinary Rust code: the caller must be
/// single-threaded (raw `clone3` runs no `pthread_atfork` handlers).
///
/// `cgroup`: a cgroup v2 directory the child is born in
/// (`CLONE_INTO_CGROUP`, Linux 5.7): no migration, so none of the global
/// lock and RCU grace period a write to `cgroup.procs` costs.
pub fn clone_into_namespaces(
    ns_flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
) -> io::Result<(Forked, Option<std::os::fd::OwnedFd>)> {
    use std::os::fd::FromRawFd;
    const CLONE_PIDFD: u64 = 0x1000;
    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: ns_flags | CLONE_PIDFD | cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.map_or(0, |fd| fd.as_raw_fd() as u64),
        ..CloneArgs::default()
    };
    // `pidfd` lives across the call: the kernel writes the child's pidfd
    // there.
    let pid = clone3(&args)?;
    Ok(match pid {
        0 => (Forked::Child, None),
        // SAFETY: with CLONE_PIDFD the kernel stored a new fd (close-on-
        // exec) for the child in `pidfd`; nothing else owns it.
        pid => (
            Forked::Parent(pid as i32),
            Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(pidfd) }),
        ),
    })
}

/// A set of signals (`sigset_t`).
#[derive(Clone, Copy)]
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    pub fn of(signals: &[i32]) -> SignalSet {
        // SAFETY: sigset manipulation on a local, zeroed struct.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in signals {
                libc::sigaddset(&mut set, *sig);
            }
            SignalSet(set)
        }
    }

    /// Blocks the signals of the set in the calling thread (they stay
    /// pending until `wait`, or until the mask is reset before `execve`).
    pub fn block(&self) -> io::Result<()> {
        // SAFETY: sigprocmask reads a live sigset; no old set is returned.
        let ret = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &self.0, std::ptr::null_mut()) };
        check(ret as libc::c_long).map(drop)
    }

    /// `sigwaitinfo`: the next pending signal of the (blocked) set, with
    /// its `si_code` (`SI_USER` for kill(2), `SI_KERNEL` for one the
    /// kernel sent, e.g. from a terminal). Retries on EINTR.
    pub fn wait(&self) -> io::Result<(i32, i32)> {
        loop {
            // SAFETY: `info` is a zeroed siginfo the kernel fills in.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: the set is initialised and `info` is live.
            let sig = unsafe { libc::sigwaitinfo(&self.0, &mut info) };
            if sig > 0 {
                return Ok((sig, info.si_code));
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }
}

/// `waitpid(-1, WNOHANG)`: one exited child and its wait status, or None
/// when no child has exited (or there is no child).
pub fn reap_one() -> Option<(i32, i32)> {
    let mut status = 0;
    // SAFETY: waitpid on any child with a local status word.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (pid > 0).then_some((pid, status))
}

/// `kill(pid, sig)`; errors (the process is gone) are the caller's to
/// ignore.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::kill(pid, sig) } as libc::c_long).map(drop)
}

/// What `wait4` says of an exited child: its wait status and the CPU time
/// and peak RSS of the child and of every descendant it waited for.
#[derive(Debug, Clone, Copy)]
pub struct ChildUsage {
    pub status: i32,
    pub cputime: std::time::Duration,
    /// `ru_maxrss` in KiB: the largest single process, not the tree.
    pub maxrss_kib: u64,
}

/// `wait4(pid, __WALL)`: reaps `pid` (waiting for it to exit). The kernel
/// sums the usage of the child and of the descendants it waited for
/// (`RUSAGE_CHILDREN` of that one child), so it does not mix in other
/// children of this process. ECHILD when `pid` is not our child.
pub fn wait4_usage(pid: i32) -> io::Result<Option<ChildUsage>> {
    let mut status = 0;
    // SAFETY: `ru` is plain data the kernel fills in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let ret = loop {
        // SAFETY: `status` and `ru` are live locals the kernel writes.
        let ret = unsafe { libc::wait4(pid, &mut status, libc::__WALL, &mut ru) };
        let err = io::Error::last_os_error();
        if ret >= 0 || err.raw_os_error() != Some(libc::EINTR) {
            break ret;
        }
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if ret == 0 {
        return Ok(None);
    }
    let tv = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec.max(0) as u64)
            + std::time::Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Ok(Some(ChildUsage {
        status,
        cputime: tv(ru.ru_utime) + tv(ru.ru_stime),
        maxrss_kib: ru.ru_maxrss.max(0) as u64,
    }))
}

fn sigset_of(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in sigs {
            libc::sigaddset(&mut set, *sig);
        }
        set
    }
}

/// Blocks `sigs` in the calling thread (the whole process when it is
/// single-threaded, as the runtime is) and returns the previous mask. A
/// blocked signal stays pending until a signalfd reads it or the mask is
/// restored; children inherit the mask across fork.
pub fn block_signals(sigs: &[i32]) -> io::Result<libc::sigset_t> {
    let set = sigset_of(sigs);
    // SAFETY: both sets are live locals.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        let ret = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(ret));
        }
        Ok(old)
    }
}

/// Sets the calling thread's signal mask back to `mask`.
pub fn set_signal_mask(mask: &libc::sigset_t) {
    // SAFETY: `mask` is an initialised sigset; the old mask is not wanted.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
    }
}

/// Takes one pending signal of `sigs` without waiting (`sigtimedwait`
/// with a zero timeout); None when none is pending.
pub fn take_pending_signal(sigs: &[i32]) -> Option<i32> {
    let set = sigset_of(sigs);
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `set` and `zero` are live locals; the siginfo is not wanted.
    let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
    (sig > 0).then_some(sig)
}

/// A non-blocking signalfd for `sigs` (which must be blocked): it reports
/// signals already pending too.
pub fn signalfd(sigs: &[i32]) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let set = sigset_of(sigs);
    // SAFETY: `set` is an initialised sigset; -1 asks for a new fd.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: signalfd returned a new fd that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Makes the child of `cmd` a helper daemon of the sandbox's init (the
/// `fuse-overlayfs` of an overlay): just before its `execve` it marks every
/// fd from 3 up close-on-exec, then clears close-on-exec on `pass` (the
/// fds the daemon is given by number), starts a session of its own (no
/// terminal's ^C reaches it: it must outlive the command's signals), asks
/// for SIGKILL when init dies, and moves to a mount namespace of its own:
/// a copy of init's as it is now, so that init's `pivot_root` does not
/// make the daemon's root the overlay it serves (its path lookups, such as
/// `/proc/self/fd/N`, would then wait for its own answers). Every mount of
/// that copy is made read-only, nosuid and nodev — but `writable` (the
/// sandbox's staging, where `fuse-overlayfs` finds its upper and work
/// directories again by path) — so a command that can reach the daemon
/// (`/proc/PID/root` of a process of its own user) cannot write the host
/// through it.
///
/// `drop_caps`: clear every capability last, before `execve` — which
/// drops them anyway for a non-root user — so that the kernel checks
/// read access to the program with the daemon's own rights: an
/// execute-only program makes a process that is not dumpable, whose
/// `/proc/PID/root`, fds and memory a command of the same user cannot
/// reach.
pub fn daemon_in_child(
    cmd: &mut std::process::Command,
    pass: Vec<RawFd>,
    writable: std::ffi::CString,
    drop_caps: bool,
) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and execve and makes only raw
    // syscalls (close_range/fcntl, setsid, prctl, unshare, mount_setattr, capset): no allocation, no locks
    // (`pass` was allocated before the fork and is only read).
    unsafe {
        cmd.pre_exec(move || {
            cloexec_from(3)?;
            for fd in &pass {
                let flags = libc::fcntl(*fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(*fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64)?;
            unshare(libc::CLONE_NEWNS)?;
            use crate::plan::options::attr;
            crate::fs::mount::set_attrs_at_path(
                c"/",
                true,
                attr::RDONLY | attr::NOSUID | attr::NODEV,
                0,
            )?;
            crate::fs::mount::set_attrs_at_path(&writable, false, 0, attr::RDONLY)?;
            if drop_caps {
                clear_capabilities()?;
            }
            Ok(())
        });
    }
}

/// `capset` with empty effective, permitted and inheritable sets.
/// Allocation-free (used between fork and execve).
fn clear_capabilities() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
    ];
    // SAFETY: a version-3 header and the two data words it asks for, both
    // local; the kernel only reads them.
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) })
        .map(drop)
}
