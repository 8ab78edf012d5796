//! Signal names and the foreground `run` loop that forwards signals to the
//! container and reaps its init.

use std::os::fd::{FromRawFd, OwnedFd};

use crate::error::{Error, IoContext, Result};

const NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
];

/// Parses `TERM`, `SIGTERM`, `15`, `RTMIN+3` as runc does.
pub fn parse_signal(text: &str) -> Result<i32> {
    let bad = || Error::Other(format!("unknown signal {text:?}"));
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(*n);
    }
    let rt = |base: i32, rest: &str, sign: i32| -> Result<i32> {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().map_err(|_| bad())?
        };
        let n = off
            .checked_mul(sign)
            .and_then(|o| base.checked_add(o))
            .ok_or_else(bad)?;
        if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(libc::SIGRTMIN(), rest.trim_start_matches('+'), 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(libc::SIGRTMAX(), rest.trim_start_matches('-'), -1);
    }
    Err(bad())
}

/// Signals the foreground runtime relays to the container.
const FORWARDED: [i32; 9] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGPIPE,
];

/// Blocks the forwarded signals and SIGCHLD before the container exists,
/// so none is lost; `wait_for` then takes them synchronously.
pub struct Forwarder {
    set: libc::sigset_t,
}

impl Forwarder {
    pub fn block() -> Result<Forwarder> {
        // SAFETY: sigset manipulation on a local, then sigprocmask on it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            for sig in FORWARDED {
                libc::sigaddset(&mut set, sig);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(Error::Other("sigprocmask failed".into()));
            }
            Ok(Forwarder { set })
        }
    }

    /// Forwards signals to `init` until it exits; returns its exit code
    /// (128 + signal when killed). Reaps any other child on the way.
    pub fn wait_for(&self, init: i32) -> i32 {
        loop {
            if let Some(code) = reap_children(init) {
                return code;
            }
            // SAFETY: `self.set` is an initialised sigset; info may be null.
            let sig = unsafe { libc::sigwaitinfo(&self.set, std::ptr::null_mut()) };
            if sig > 0 && sig != libc::SIGCHLD {
                forward(init, sig);
            }
        }
    }

    /// A signalfd reporting the blocked signals, for a loop that waits on
    /// file descriptors too (the terminal relay). Signals that arrived
    /// before it existed are still pending and are reported.
    pub fn signal_fd(&self) -> Result<OwnedFd> {
        // SAFETY: `self.set` is an initialised sigset; -1 asks for a new fd.
        let fd = unsafe { libc::signalfd(-1, &self.set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "signalfd");
        }
        // SAFETY: signalfd returned a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// The next signal of a non-blocking signalfd; None when none is pending.
pub fn read_signal(signals: &OwnedFd) -> Option<i32> {
    // One `struct signalfd_siginfo` (128 bytes); ssi_signo is its first u32.
    let mut info = [0u8; 128];
    loop {
        match rustix::io::read(signals, &mut info) {
            Err(rustix::io::Errno::INTR) => continue,
            Ok(128) => {
                let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
                return i32::try_from(signo).ok();
            }
            _ => return None,
        }
    }
}

/// Relays `sig` to the container's init.
pub fn forward(init: i32, sig: i32) {
    // SAFETY: plain kill(2); init is our child and not reaped yet, so its
    // pid cannot have been reused.
    unsafe { libc::kill(init, sig) };
}

/// Reaps exited children without blocking; Some(code) once `init` exited.
pub fn reap_children(init: i32) -> Option<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on any child with a local status word.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return None;
        }
        if pid == init {
            return Some(if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                libc::WEXITSTATUS(status)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_like_runc() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigusr1").unwrap(), 10);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("RTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        for bad in [
            "",
            "FOO",
            "0",
            "999",
            "SIG",
            "RTMIN+99",
            "RTMIN+2147483647",
            "RTMAX-2147483647",
        ] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
