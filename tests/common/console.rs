//! Terminals for the tests: a `--console-socket` listener that receives the
//! pty master the way containerd and conmon do (one message, the fd in
//! SCM_RIGHTS), and pty pairs to drive a foreground `run`, `exec` or an
//! engine's `-t` from a terminal.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;

use super::POLL_TIMEOUT;

/// A listening unix socket for `--console-socket`.
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

/// What the runtime sent on the console socket.
pub enum Received {
    /// The message data (runc sends "/dev/ptmx") and the master.
    Master(String, OwnedFd),
    /// The runtime closed the connection without sending anything.
    Closed,
}

impl ConsoleSocket {
    /// Listens at `dir/console.sock` (`dir` is created if missing).
    pub fn bind(dir: &Path) -> ConsoleSocket {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("console.sock");
        let listener =
            UnixListener::bind(&path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        listener.set_nonblocking(true).unwrap();
        ConsoleSocket { path, listener }
    }

    pub fn arg(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }

    /// Accepts the runtime's connection and receives one message.
    #[track_caller]
    pub fn receive(&self) -> Received {
        let deadline = Instant::now() + POLL_TIMEOUT;
        let conn = loop {
            match self.listener.accept() {
                Ok((conn, _)) => break conn,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("no connection on the console socket: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(POLL_TIMEOUT)).unwrap();
        let mut name = [0u8; 4096];
        let mut data = [IoSliceMut::new(&mut name)];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = recvmsg(&conn, &mut data, &mut control, RecvFlags::CMSG_CLOEXEC)
            .unwrap_or_else(|e| panic!("recvmsg on the console socket: {e}"));
        let fd = control.drain().find_map(|m| match m {
            RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
            _ => None,
        });
        match fd {
            Some(fd) => {
                Received::Master(String::from_utf8_lossy(&name[..got.bytes]).into_owned(), fd)
            }
            None if got.bytes == 0 => Received::Closed,
            None => panic!("a console socket message without an fd"),
        }
    }

    /// Receives the master; panics if the runtime sent none.
    #[track_caller]
    pub fn master(&self) -> (String, Term) {
        match self.receive() {
            Received::Master(name, fd) => (name, Term::new(fd)),
            Received::Closed => panic!("the runtime closed the console socket without a master"),
        }
    }
}

/// Our side of a terminal (a pty master): what we write is the terminal's
/// input; what the programs on it write, we read.
pub struct Term {
    pub fd: OwnedFd,
    /// Read but not yet consumed by `read_until`.
    seen: String,
}

impl Term {
    pub fn new(fd: OwnedFd) -> Term {
        let flags = rustix::fs::fcntl_getfl(&fd).unwrap();
        rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK).unwrap();
        Term {
            fd,
            seen: String::new(),
        }
    }

    pub fn write(&self, text: &str) {
        let mut data = text.as_bytes();
        while !data.is_empty() {
            match rustix::io::write(&self.fd, data) {
                Ok(n) => data = &data[n..],
                Err(Errno::AGAIN | Errno::INTR) => thread::sleep(Duration::from_millis(2)),
                Err(e) => panic!("writing to the terminal: {e}"),
            }
        }
    }

    /// Reads what is there within `wait`; false once the terminal's other
    /// side is closed (EIO) or nothing came.
    fn fill(&mut self, wait: Duration) -> bool {
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let ts = rustix::time::Timespec {
            tv_sec: wait.as_secs() as i64,
            tv_nsec: i64::from(wait.subsec_nanos()),
        };
        if matches!(poll(&mut fds, Some(&ts)), Ok(0)) {
            return true;
        }
        let mut buf = [0u8; 4096];
        loop {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(0) => return false,
                Ok(n) => self
                    .seen
                    .push_str(&String::from_utf8_lossy(&buf[..n]).replace('\r', "")),
                Err(Errno::AGAIN) => return true,
                Err(Errno::INTR) => {}
                Err(_) => return false,
            }
        }
    }

    /// Everything read up to and including the first `pattern`, consumed;
    /// panics with what was read if it does not come in time.
    #[track_caller]
    pub fn read_until(&mut self, pattern: &str) -> String {
        let deadline = Instant::now() + POLL_TIMEOUT;
        let mut open = true;
        loop {
            if let Some(i) = self.seen.find(pattern) {
                let rest = self.seen.split_off(i + pattern.len());
                return std::mem::replace(&mut self.seen, rest);
            }
            if !open || Instant::now() >= deadline {
                panic!(
                    "no {pattern:?} on the terminal ({}); read so far: {:?}",
                    if open { "timed out" } else { "closed" },
                    self.seen
                );
            }
            open = self.fill(Duration::from_millis(50));
        }
    }

    /// Everything until the other side is closed (all its fds), consumed.
    #[track_caller]
    pub fn read_to_end(&mut self) -> String {
        let deadline = Instant::now() + POLL_TIMEOUT;
        while self.fill(Duration::from_millis(50)) {
            if Instant::now() >= deadline {
                panic!("the terminal was not closed; read so far: {:?}", self.seen);
            }
        }
        std::mem::take(&mut self.seen)
    }

    /// Like `read_until`, writing `poke` every half second until `pattern`
    /// comes (for state that changes asynchronously, like a resize).
    #[track_caller]
    pub fn poke_until(&mut self, poke: &str, pattern: &str) -> String {
        let deadline = Instant::now() + POLL_TIMEOUT;
        loop {
            self.write(poke);
            let round = Instant::now() + Duration::from_millis(500);
            while Instant::now() < round {
                if let Some(i) = self.seen.find(pattern) {
                    let rest = self.seen.split_off(i + pattern.len());
                    return std::mem::replace(&mut self.seen, rest);
                }
                assert!(
                    self.fill(Duration::from_millis(20)),
                    "terminal closed; read: {:?}",
                    self.seen
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {pattern:?} on the terminal; read: {:?}",
                self.seen
            );
        }
    }
}

/// A new pty from the host's devpts: (master, peer). The peer is opened
/// without becoming our controlling terminal.
pub fn pty_pair() -> (OwnedFd, OwnedFd) {
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    rustix::pty::grantpt(&master).expect("grantpt");
    rustix::pty::unlockpt(&master).expect("unlockpt");
    let peer = rustix::pty::ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )
    .expect("TIOCGPTPEER");
    (master, peer)
}

pub fn set_size(tty: impl AsFd, rows: u16, cols: u16) {
    rustix::termios::tcsetwinsize(
        tty,
        Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .expect("TIOCSWINSZ");
}

/// Spawns `c` with `term_peer` as its controlling terminal (in a new
/// session), stdin and stdout, as from an interactive shell; stderr is
/// captured.
pub fn spawn_on_terminal(mut c: Command, term_peer: &OwnedFd) -> Child {
    c.stdin(Stdio::from(term_peer.try_clone().unwrap()))
        .stdout(Stdio::from(term_peer.try_clone().unwrap()))
        .stderr(Stdio::piped());
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.spawn().expect("spawn on a terminal")
}

/// The local modes of a terminal (`ICANON`, `ECHO`, `ISIG`...).
pub fn lflags(tty: impl AsFd) -> rustix::termios::LocalModes {
    rustix::termios::tcgetattr(tty)
        .expect("tcgetattr")
        .local_modes
}

/// Drives an interactive `sh` that `cmd` (an engine: `podman run -it`,
/// `ctr run -t`...) starts on a pty pair of ours, 30x90: it runs a
/// command, its stdio are ttys, its pty takes our size, and `exit CODE`
/// comes back as the engine's exit code. `what` names the engine in
/// failures.
#[track_caller]
pub fn check_shell_on_a_terminal(cmd: Command, code: i32, timeout: Duration, what: &str) {
    use std::io::Read;
    let (master, peer) = pty_pair();
    set_size(&peer, 30, 90);
    let mut child = spawn_on_terminal(cmd, &peer);
    let mut term = Term::new(master);
    term.write("echo $((6*7))\n");
    term.read_until("42\n");
    term.write("tty; test -t 0 && test -t 1 && test -t 2 && echo all-$((1+1))-ttys\n");
    let out = term.read_until("all-2-ttys\n");
    assert!(out.contains("/dev/pts/"), "{what}: {out:?}");
    // The engine gives the pty the caller's size (after start: poke).
    term.poke_until("stty size\n", "30 90\n");
    term.write(&format!("exit {code}\n"));
    let status = super::wait_child(&mut child, timeout, what);
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    assert_eq!(status.code(), Some(code), "{what}: {err}");
}
