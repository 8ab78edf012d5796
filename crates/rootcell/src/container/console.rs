//! Where a terminal goes, decided before any process exists. The rules
//! are runc's (`checkTerminal`), the same for `create`, `run` and `exec`: a
//! runtime that detaches (`create`, `run --detach`, `exec --detach`) with a
//! terminal hands the pty master to the `--console-socket` listener; one
//! that stays in the foreground keeps it and relays; a console socket
//! without a terminal, or in the foreground, is refused.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};

use crate::error::{Error, IoContext, Result};

pub enum Console {
    /// No terminal.
    None,
    /// `--console-socket`: a connection to its listener. The process that
    /// makes the pty sends the master on it.
    Socket(OwnedFd),
    /// In the foreground: the process sends the master to the runtime over
    /// a socketpair, and the runtime relays its own stdio to it.
    Relay { process: OwnedFd, runtime: OwnedFd },
}

impl Console {
    /// Checks the flags against `terminal` and makes the connection the
    /// master will be sent on. `setting` names what asked for the terminal
    /// in messages (`process.terminal`, `--tty`).
    pub fn open(
        terminal: bool,
        setting: &str,
        socket: Option<&Path>,
        foreground: bool,
    ) -> Result<Console> {
        match (terminal, socket) {
            (false, None) => Ok(Console::None),
            (false, Some(path)) => Err(Error::Other(format!(
                "--console-socket {}: {setting} is not set, so there is no terminal to send (set {setting}, or drop the flag)",
                path.display()
            ))),
            (true, Some(path)) if foreground => Err(Error::Other(format!(
                "--console-socket {}: in the foreground the runtime relays the terminal itself; use --detach to hand it to the socket",
                path.display()
            ))),
            (true, Some(path)) => connect(path).map(Console::Socket),
            (true, None) if foreground => {
                let (process, runtime) = socketpair(
                    AddressFamily::UNIX,
                    SocketType::STREAM,
                    SocketFlags::CLOEXEC,
                    None,
                )
                .ctx(|| "process.terminal: socketpair for the terminal relay")?;
                Ok(Console::Relay { process, runtime })
            }
            (true, None) => Err(Error::Other(format!(
                "--console-socket is required when {setting} is set and the runtime detaches (create, run --detach and exec --detach send the pty master to that socket; or turn {setting} off)"
            ))),
        }
    }

    /// (the end the process sends the master on, the runtime's relay end).
    pub fn into_ends(self) -> (Option<OwnedFd>, Option<OwnedFd>) {
        match self {
            Console::None => (None, None),
            Console::Socket(fd) => (Some(fd), None),
            Console::Relay { process, runtime } => (Some(process), Some(runtime)),
        }
    }
}

/// Connects to the listener at `path` (a stream socket, as runc dials it).
/// The fd is close-on-exec.
fn connect(path: &Path) -> Result<OwnedFd> {
    let stream = UnixStream::connect(path)
        .ctx(|| format!("--console-socket {}: connect", path.display()))?;
    Ok(OwnedFd::from(stream))
}
