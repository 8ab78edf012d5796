//! Foreground `run` with `process.terminal`, and foreground `exec --tty`:
//! the runtime holds the pty master and relays between it and its own
//! stdin and stdout until the container's process (init, or the exec'd
//! process) exits, as runc does.
//!
//! - If stdin is a terminal, it is put in raw mode for the duration (every
//!   key, ^C included, goes to the container's terminal, which does its own
//!   line editing and signals), and restored afterwards.
//! - The container's terminal gets the caller's size at start and on every
//!   SIGWINCH; the kernel then signals the container's foreground process
//!   group itself, so SIGWINCH is not forwarded. Other signals are.
//! - Unlike runc 1.1, none of the runtime's stdio has to be a terminal:
//!   with pipes the relay copies bytes and `consoleSize` stays, and the end
//!   of a piped stdin reaches the container as the terminal's ^D.
//!
//! One single-threaded `poll` loop over a signalfd, stdin and the master;
//! the master is non-blocking, and stdin is read only when the previous
//! input has reached the master, so a container that does not read its
//! terminal cannot make the runtime buffer without bound.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
use rustix::io::Errno;
use rustix::stdio::{stderr, stdin, stdout};
use rustix::termios::{isatty, tcgetattr, tcgetwinsize, tcsetattr, tcsetwinsize, OptionalActions};

use super::signals::{self, Forwarder};
use crate::error::{IoContext, Result};

/// Bytes moved per read.
const CHUNK: usize = 16 * 1024;
/// After the process exited: how long the pty may stay quiet before the relay
/// stops reading it, and how long the drain may take at most (see
/// `Relay::drain`).
const DRAIN_QUIET: Duration = Duration::from_millis(100);
const DRAIN_MAX: Duration = Duration::from_secs(2);

pub struct Relay {
    master: OwnedFd,
    signals: OwnedFd,
    /// The caller's terminal settings, restored on drop.
    saved: Option<rustix::termios::Termios>,
}

impl Relay {
    /// Receives the pty master the container's process sent on the relay
    /// socket (already there: the process sent it before it reported) and
    /// starts relaying to it.
    pub fn receive(socket: BorrowedFd<'_>, forwarding: &Forwarder) -> Result<Relay> {
        let master = crate::process::terminal::recv_master(socket, false)?;
        Relay::start(master, forwarding)
    }

    /// Takes the master (made non-blocking: it is our own open file), puts
    /// a terminal stdin in raw mode and gives the container's terminal the
    /// caller's size. Runs before the container's process starts.
    pub fn start(master: OwnedFd, forwarding: &Forwarder) -> Result<Relay> {
        let flags = fcntl_getfl(&master).ctx(|| "process.terminal: pty master flags")?;
        fcntl_setfl(&master, flags | OFlags::NONBLOCK)
            .ctx(|| "process.terminal: making the pty master non-blocking")?;
        let signals = forwarding.signal_fd()?;
        let relay = Relay {
            master,
            signals,
            saved: raw_mode()?,
        };
        relay.resize();
        Ok(relay)
    }

    /// Relays until `process` (init, or the exec'd process; our child)
    /// exits; returns its exit code (128+signal when it was killed). Signals
    /// other than SIGWINCH are forwarded to it. Should polling itself fail,
    /// the relay stops and the plain signal forwarding waits instead.
    pub fn run(&mut self, forwarding: &Forwarder, process: i32) -> i32 {
        match self.relay(process) {
            Ok(code) => code,
            Err(e) => {
                tracing::warn!("terminal relay: {e}");
                eprintln!("rootcell: warning: terminal relay stopped: {e}");
                forwarding.wait_for(process)
            }
        }
    }

    fn relay(&mut self, process: i32) -> Result<i32> {
        let mut buf = vec![0u8; CHUNK];
        // Read from stdin, not yet written to the master.
        let mut input: Vec<u8> = Vec::new();
        let mut stdin_open = true;
        // False once every fd of the peer is closed (the master reads EIO).
        let mut master_open = true;
        let mut out = Output { ok: true };
        loop {
            let (sig_ev, stdin_ev, master_ev) = self.wait(
                stdin_open && input.is_empty(),
                master_open,
                !input.is_empty(),
            )?;
            if !stdin_ev.is_empty() {
                match retry(|| rustix::io::read(stdin(), &mut buf[..])) {
                    Ok(n) if n > 0 => input.extend_from_slice(&buf[..n]),
                    _ => {
                        stdin_open = false;
                        input.extend(self.end_of_input());
                    }
                }
            }
            if master_ev.contains(PollFlags::OUT) && !input.is_empty() {
                match retry(|| rustix::io::write(&self.master, &input)) {
                    Ok(n) => drop(input.drain(..n)),
                    Err(Errno::AGAIN) => {}
                    Err(_) => {
                        master_open = false;
                        input.clear();
                    }
                }
            }
            if master_ev.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
                master_open = self.copy_output(&mut buf, &mut out);
                if !master_open {
                    input.clear();
                }
            }
            if !sig_ev.is_empty() {
                while let Some(sig) = signals::read_signal(&self.signals) {
                    match sig {
                        libc::SIGCHLD => {
                            if let Some(code) = signals::reap_children(process) {
                                if master_open {
                                    self.drain(&mut buf, &mut out);
                                }
                                return Ok(code);
                            }
                        }
                        libc::SIGWINCH => self.resize(),
                        other => signals::forward(process, other),
                    }
                }
            }
        }
    }

    /// One `poll` over the signalfd, stdin (when `want_input`) and the
    /// master (when `master_open`; for writing too when `have_input`).
    /// Returns the events of each (empty for what was not polled).
    fn wait(
        &self,
        want_input: bool,
        master_open: bool,
        have_input: bool,
    ) -> Result<(PollFlags, PollFlags, PollFlags)> {
        let mut fds = vec![PollFd::new(&self.signals, PollFlags::IN)];
        let stdin_at = want_input.then(|| {
            fds.push(PollFd::from_borrowed_fd(stdin(), PollFlags::IN));
            fds.len() - 1
        });
        let master_at = master_open.then(|| {
            let mut events = PollFlags::IN;
            if have_input {
                events |= PollFlags::OUT;
            }
            fds.push(PollFd::new(&self.master, events));
            fds.len() - 1
        });
        loop {
            match poll(&mut fds, None) {
                Err(Errno::INTR) => continue,
                other => {
                    other.ctx(|| "terminal relay: poll")?;
                    break;
                }
            }
        }
        let events = |at: Option<usize>| at.map_or(PollFlags::empty(), |i| fds[i].revents());
        Ok((fds[0].revents(), events(stdin_at), events(master_at)))
    }

    /// Copies what the master has to stdout. False once the peer side is
    /// closed (EIO): nothing more will come.
    fn copy_output(&self, buf: &mut [u8], out: &mut Output) -> bool {
        loop {
            match retry(|| rustix::io::read(&self.master, &mut buf[..])) {
                Ok(0) => return false,
                Ok(n) => out.write(&buf[..n]),
                Err(Errno::AGAIN) => return true,
                Err(_) => return false,
            }
        }
    }

    /// After the process exited: the last output may still be in the pty.
    /// When init of a pid namespace exited, every process of the container
    /// died with it, so the peer is closed and the master reads EIO right
    /// after the last byte (the kernel flushes pending pty data before it
    /// reports EIO). Otherwise (no pid namespace, or an exec'd process whose
    /// children live on) a process that kept the terminal may go on
    /// writing: the drain stops once the pty has been quiet for
    /// DRAIN_QUIET, and after DRAIN_MAX.
    fn drain(&self, buf: &mut [u8], out: &mut Output) {
        let deadline = Instant::now() + DRAIN_MAX;
        loop {
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(DRAIN_QUIET);
            if wait.is_zero() {
                return;
            }
            let timeout = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: i64::from(wait.subsec_nanos()),
            };
            let mut fds = [PollFd::new(&self.master, PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) => return,
                Ok(_) | Err(Errno::INTR) => {}
                Err(_) => return,
            }
            if !self.copy_output(buf, out) {
                return;
            }
        }
    }

    /// What to send when stdin ends: a stdin that is not a terminal (a pipe,
    /// a file) ends with the container terminal's EOF character (^D), when
    /// that terminal is in canonical mode, so that `echo data | run` ends
    /// like typing ^D would, as util-linux's `script` does. A program that
    /// reads in raw mode (a shell's line editor) gets no ^D: written before
    /// it switched, the kernel's end-of-file mark would turn into a NUL
    /// byte. A terminal stdin in raw mode sends its ^D itself; its end is a
    /// hangup.
    fn end_of_input(&self) -> Option<u8> {
        use rustix::termios::{LocalModes, SpecialCodeIndex};
        if self.saved.is_some() {
            return None;
        }
        let termios = tcgetattr(&self.master).ok()?;
        termios
            .local_modes
            .contains(LocalModes::ICANON)
            .then(|| termios.special_codes[SpecialCodeIndex::VEOF])
    }

    /// Gives the container's terminal the size of the caller's (the first
    /// of stdin, stdout and stderr that is a terminal, as runc looks for
    /// it). Without one, or with a terminal of size 0x0, the size stays
    /// (`process.consoleSize`).
    fn resize(&self) {
        let size = [stdin(), stdout(), stderr()]
            .into_iter()
            .find_map(|fd| tcgetwinsize(fd).ok())
            .filter(|s| s.ws_row != 0 || s.ws_col != 0);
        if let Some(size) = size {
            // A pty whose peer is gone refuses nothing here; an error only
            // means the container keeps its size.
            let _ = tcsetwinsize(&self.master, size);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(stdin(), OptionalActions::Now, saved);
        }
    }
}

/// Puts stdin in raw mode if it is a terminal; returns its settings to
/// restore.
fn raw_mode() -> Result<Option<rustix::termios::Termios>> {
    let fd = stdin();
    if !isatty(fd) {
        return Ok(None);
    }
    let saved =
        tcgetattr(fd).ctx(|| "process.terminal: reading the settings of stdin's terminal")?;
    let mut raw = saved.clone();
    raw.make_raw();
    tcsetattr(fd, OptionalActions::Now, &raw)
        .ctx(|| "process.terminal: putting stdin's terminal in raw mode")?;
    Ok(Some(saved))
}

/// The runtime's stdout. After a failed write (a reader that went away)
/// the container's output is dropped, so the container never blocks on a
/// full pty because of it.
struct Output {
    ok: bool,
}

impl Output {
    fn write(&mut self, mut data: &[u8]) {
        while self.ok && !data.is_empty() {
            match retry(|| rustix::io::write(stdout(), data)) {
                Ok(0) => self.ok = false,
                Ok(n) => data = &data[n..],
                // A non-blocking stdout (set by whoever shares it): wait.
                Err(Errno::AGAIN) => wait_writable(stdout()),
                Err(_) => self.ok = false,
            }
        }
    }
}

fn wait_writable(fd: BorrowedFd<'_>) {
    let mut fds = [PollFd::from_borrowed_fd(fd.as_fd(), PollFlags::OUT)];
    let _ = poll(&mut fds, None);
}

fn retry<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}
