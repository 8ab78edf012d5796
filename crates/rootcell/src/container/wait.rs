//! Signalling and waiting for processes that may not be our children,
//! through pidfds so a recycled pid is never hit.

use std::io;
use std::time::Duration;

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

pub fn signal(pid: i32, sig: i32) -> io::Result<()> {
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    let fd = pidfd_open(pid, PidfdFlags::empty())?;
    let sig =
        Signal::from_named_raw(sig).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    pidfd_send_signal(&fd, sig)?;
    Ok(())
}

/// Signals `pid` only if it is still the process that started at
/// `start_time`: the pidfd pins it between the check and the signal.
pub fn signal_checked(pid: i32, start_time: u64, sig: i32) -> io::Result<()> {
    let p = Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    let fd = pidfd_open(p, PidfdFlags::empty())?;
    if process_start_time(pid) != Some(start_time) {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    let sig =
        Signal::from_named_raw(sig).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    pidfd_send_signal(&fd, sig)?;
    Ok(())
}

/// Waits (at most 10 s) until `pid` has exited, via its pidfd.
pub fn until_gone(pid: i32, start_time: u64) {
    let Some(p) = Pid::from_raw(pid) else { return };
    let Ok(fd) = pidfd_open(p, PidfdFlags::empty()) else {
        return;
    };
    if process_start_time(pid) != Some(start_time) {
        return;
    }
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let timeout = Duration::from_secs(10);
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: 0,
    };
    let _ = rustix::event::poll(&mut fds, Some(&ts));
}

/// Reads the exec fifo until init has exec'd: Ok(true) when init wrote "1"
/// (startContainer hooks done) and then closed its end at exec; Ok(false)
/// when it died before. Init's pidfd is polled too, so a dead init never
/// hangs `start`.
pub fn exec_fifo(reader: &std::os::fd::OwnedFd, pid: i32, start_time: u64) -> io::Result<bool> {
    let p = Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    let pidfd = pidfd_open(p, PidfdFlags::empty())?;
    if process_start_time(pid) != Some(start_time) {
        return Ok(false);
    }
    let mut hooks_done = false;
    loop {
        let mut fds = [
            rustix::event::PollFd::new(reader, rustix::event::PollFlags::IN),
            rustix::event::PollFd::new(&pidfd, rustix::event::PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
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
