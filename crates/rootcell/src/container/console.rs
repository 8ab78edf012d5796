//! Where the container's terminal goes, decided before anything of the
//! container exists. The rules are runc's (`checkTerminal`): a detached
//! container (`create`, `run --detach`) with a terminal hands the pty
//! master to the `--console-socket` listener; a foreground `run` keeps it
//! and relays; a console socket without a terminal, or with a foreground
//! `run`, is refused.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};

use crate::error::{Error, IoContext, Result};

pub enum Console {
    /// `process.terminal` is false.
    None,
    /// `--console-socket`: a connection to its listener. Init sends the
    /// master on it.
    Socket(OwnedFd),
    /// Foreground `run`: init sends the master to the runtime over a
    /// socketpair, and the runtime relays its own stdio to it.
    Relay { init: OwnedFd, runtime: OwnedFd },
}

impl Console {
    /// Checks the flags against `process.terminal` and makes the
    /// connection init will send the master on.
    pub fn open(terminal: bool, socket: Option<&Path>, foreground: bool) -> Result<Console> {
        match (terminal, socket) {
            (false, None) => Ok(Console::None),
            (false, Some(path)) => Err(Error::Other(format!(
                "--console-socket {}: process.terminal is false, so there is no terminal to send (set process.terminal to true, or drop the flag)",
                path.display()
            ))),
            (true, Some(path)) if foreground => Err(Error::Other(format!(
                "--console-socket {}: a foreground run relays the terminal itself; use --detach to hand it to the socket",
                path.display()
            ))),
            (true, Some(path)) => connect(path).map(Console::Socket),
            (true, None) if foreground => {
                let (init, runtime) = socketpair(
                    AddressFamily::UNIX,
                    SocketType::STREAM,
                    SocketFlags::CLOEXEC,
                    None,
                )
                .ctx(|| "process.terminal: socketpair for the terminal relay")?;
                Ok(Console::Relay { init, runtime })
            }
            (true, None) => Err(Error::Other(
                "--console-socket is required when process.terminal is true (create and run --detach send the terminal's master to that socket; or set process.terminal to false)"
                    .into(),
            )),
        }
    }

    /// (init's end, the runtime's relay end).
    pub fn into_ends(self) -> (Option<OwnedFd>, Option<OwnedFd>) {
        match self {
            Console::None => (None, None),
            Console::Socket(fd) => (Some(fd), None),
            Console::Relay { init, runtime } => (Some(init), Some(runtime)),
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
