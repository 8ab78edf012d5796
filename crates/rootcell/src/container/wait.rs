//! Signalling and waiting for processes that may not be our children,
//! through pidfds so a recycled pid is never hit.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

use crate::state::process_start_time;

/// Waits for our child `pid` (stage 1, or init after a failed create).
pub fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid on a specific child with a local status word.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
}

/// A pidfd for `pid`. With `start_time`, only if `pid` is still the process
/// that started then: the pidfd pins it between this check and its use.
pub(crate) fn pidfd(pid: i32, start_time: Option<u64>) -> io::Result<OwnedFd> {
    let gone = || io::Error::from_raw_os_error(libc::ESRCH);
    let fd = pidfd_open(Pid::from_raw(pid).ok_or_else(gone)?, PidfdFlags::empty())?;
    match start_time {
        Some(t) if process_start_time(pid) != Some(t) => Err(gone()),
        _ => Ok(fd),
    }
}

fn send(fd: &OwnedFd, sig: i32) -> io::Result<()> {
    let sig =
        Signal::from_named_raw(sig).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(pidfd_send_signal(fd, sig)?)
}

/// Signals `pid` (a process just listed in the container's cgroup).
pub fn signal(pid: i32, sig: i32) -> io::Result<()> {
    send(&pidfd(pid, None)?, sig)
}

/// Signals `pid` only if it is still the process that started at
/// `start_time`.
pub fn signal_checked(pid: i32, start_time: u64, sig: i32) -> io::Result<()> {
    send(&pidfd(pid, Some(start_time))?, sig)
}

/// Waits (at most 10 s) until `pid` has exited.
pub fn until_gone(pid: i32, start_time: Option<u64>) {
    if let Ok(fd) = pidfd(pid, start_time) {
        wait_readable(&fd, Duration::from_secs(10));
    }
}

/// SIGKILLs every process of `pids` and waits for each to exit.
pub fn kill_all(pids: &[i32]) {
    let fds: Vec<OwnedFd> = pids.iter().filter_map(|p| pidfd(*p, None).ok()).collect();
    for fd in &fds {
        let _ = send(fd, libc::SIGKILL);
    }
    for fd in &fds {
        wait_readable(fd, Duration::from_secs(10));
    }
}

/// Whether the process of `fd` has not exited yet (a pidfd polls readable
/// once it has). While it runs, its pid cannot name another process.
pub fn is_running(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let now = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&now)), Ok(0))
}

/// A pidfd becomes readable when its process exits.
fn wait_readable(fd: &OwnedFd, timeout: Duration) {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: 0,
    };
    let _ = poll(&mut fds, Some(&ts));
}

/// A pidfd for `pid` if it is still the process that started at
/// `start_time` (not a zombie). `start` takes init's before releasing it:
/// a process that execs and exits at once is a zombie, with no start time
/// to check, by the time `start` would look.
pub fn pidfd_checked(pid: i32, start_time: u64) -> io::Result<OwnedFd> {
    pidfd(pid, Some(start_time))
}

/// Reads the exec fifo until init has exec'd: Ok(true) when init wrote "1"
/// (startContainer hooks done) and then closed its end at exec; Ok(false)
/// when it died before. Init's pidfd is polled too, so a dead init never
/// hangs `start`.
///
/// `init` must be taken before the reader is opened: opening it releases
/// init, which may exec, finish and be reaped before we look.
pub fn exec_fifo(reader: &OwnedFd, init: &OwnedFd) -> io::Result<bool> {
    let mut hooks_done = false;
    loop {
        let mut fds = [
            PollFd::new(reader, PollFlags::IN),
            PollFd::new(init, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let fifo_ready = !fds[0].revents().is_empty();
        let died = !fds[1].revents().is_empty();
        if fifo_ready {
            let mut buf = [0u8; 8];
            match rustix::io::read(reader, &mut buf) {
                Ok(0) => return Ok(hooks_done),
                Ok(n) => hooks_done |= buf[..n].contains(&b'1'),
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        } else if died {
            return Ok(hooks_done);
        }
    }
}
