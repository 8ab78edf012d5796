//! The container's terminal (`process.terminal`), made as runc makes it.
//!
//! Init, or the process of `exec --tty`, opens a new pty master from the
//! container's own devpts (the verified `/dev/pts/ptmx`, see
//! `rootfs::open_ptmx`), unlocks it and takes the peer with `TIOCGPTPEER`:
//! the kernel opens the peer through the master's own devpts mount, so no
//! `/dev/pts/N` name inside the container is ever looked up. The peer
//! becomes the process's controlling terminal and its stdin, stdout and
//! stderr (init's is also bind-mounted on `/dev/console`). The master goes
//! over a unix socket (SCM_RIGHTS) to whoever holds the other end (the
//! `--console-socket` listener, or the runtime itself in a foreground `run`
//! or `exec`) and is closed at once: it never reaches the container's
//! process.
//!
//! Every call here is a safe rustix wrapper; no `unsafe` is needed.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;

use crate::error::{Error, IoContext, Result};
use crate::plan::{ConsoleSize, ProcessPlan};

/// The message data sent with the master. runc sends the name the master
/// was opened by, which is always `/dev/ptmx` (checked against runc 1.1.5);
/// containerd and conmon use only the fd, but the bytes match runc's.
pub const MASTER_NAME: &str = "/dev/ptmx";

/// A pty: the master (for the outside) and its peer (for the container).
pub struct Pty {
    pub master: OwnedFd,
    pub peer: OwnedFd,
}

/// Unlocks a freshly opened master (`TIOCSPTLCK`) and opens its peer with
/// `TIOCGPTPEER`, close-on-exec and without making it our controlling
/// terminal yet.
pub fn open_peer(master: OwnedFd) -> Result<Pty> {
    rustix::pty::unlockpt(&master).ctx(|| "process.terminal: unlocking the pty")?;
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let peer = rustix::pty::ioctl_tiocgptpeer(&master, flags)
        .ctx(|| "process.terminal: opening the pty peer (TIOCGPTPEER)")?;
    Ok(Pty { master, peer })
}

/// `process.consoleSize` (`TIOCSWINSZ`).
pub fn set_size(tty: impl AsFd, size: ConsoleSize) -> Result<()> {
    let winsize = Winsize {
        ws_row: size.height,
        ws_col: size.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(tty, winsize).ctx(|| {
        format!(
            "process.consoleSize: setting {}x{}",
            size.height, size.width
        )
    })
}

/// Gives the pty to the process's user, as runc's `fixStdioPermissions`
/// does, so that it owns its terminal like after a login. The group stays
/// (devpts's `gid=`). As in runc, a uid that is not mapped (`EINVAL`), an
/// owner we may not change (`EPERM`) or a read-only devpts (`EROFS`) leave
/// the owner as it is.
pub fn give_to_user(peer: impl AsFd, uid: u32) -> Result<()> {
    let uid = rustix::fs::Uid::from_raw(uid);
    match rustix::fs::fchown(peer, Some(uid), None) {
        Ok(()) | Err(Errno::INVAL | Errno::PERM | Errno::ROFS) => Ok(()),
        Err(e) => Err(e).ctx(|| "process.terminal: giving the pty to process.user.uid"),
    }
}

/// Makes `peer` the controlling terminal of this session (`TIOCSCTTY`;
/// the caller is a session leader without one) and the process's stdin,
/// stdout and stderr. The original fd is closed; the three copies are not
/// close-on-exec.
pub fn become_stdio(peer: OwnedFd) -> Result<()> {
    rustix::process::ioctl_tiocsctty(&peer)
        .ctx(|| "process.terminal: making the pty the controlling terminal")?;
    rustix::stdio::dup2_stdin(&peer).ctx(|| "process.terminal: pty as stdin")?;
    rustix::stdio::dup2_stdout(&peer).ctx(|| "process.terminal: pty as stdout")?;
    rustix::stdio::dup2_stderr(&peer).ctx(|| "process.terminal: pty as stderr")?;
    Ok(())
}

/// The end of setting up a terminal, the same for init and for `exec`'s
/// process: the pty gets `process.consoleSize`, the master goes to
/// `socket` and is closed here, the peer is given to `process.user.uid`
/// and becomes the controlling terminal (the caller is a session leader
/// without one) and stdin, stdout and stderr.
pub fn install(pty: Pty, process: &ProcessPlan, socket: BorrowedFd<'_>) -> Result<()> {
    if let Some(size) = process.console_size {
        set_size(&pty.peer, size)?;
    }
    send_master(socket, pty.master)?;
    give_to_user(&pty.peer, process.uid)?;
    become_stdio(pty.peer)
}

/// Sends `master` over the connected unix socket `socket` in one message,
/// as runc does: the data is `MASTER_NAME`, the fd rides as SCM_RIGHTS.
/// Our copy of the master is closed when this returns.
pub fn send_master(socket: BorrowedFd<'_>, master: OwnedFd) -> Result<()> {
    let fds = [master.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(Error::Other(
            "process.terminal: no room for the pty fd in the message".into(),
        ));
    }
    let data = [IoSlice::new(MASTER_NAME.as_bytes())];
    // NOSIGNAL: a listener that went away is an error, not a SIGPIPE.
    let sent = retry_intr(|| sendmsg(socket, &data, &mut control, SendFlags::NOSIGNAL))
        .ctx(|| "process.terminal: sending the pty master to the console socket")?;
    if sent != MASTER_NAME.len() {
        return Err(Error::Other(format!(
            "process.terminal: sending the pty master: only {sent} of {} bytes sent",
            MASTER_NAME.len()
        )));
    }
    Ok(())
}

/// Receives a pty master sent by `send_master` (or by runc's protocol):
/// one message whose SCM_RIGHTS carry the fd, received close-on-exec.
/// With `wait` false the message must already be there.
pub fn recv_master(socket: BorrowedFd<'_>, wait: bool) -> Result<OwnedFd> {
    let mut name = [0u8; 4096];
    let mut data = [IoSliceMut::new(&mut name)];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut flags = RecvFlags::CMSG_CLOEXEC;
    if !wait {
        flags |= RecvFlags::DONTWAIT;
    }
    let received = retry_intr(|| recvmsg(socket, &mut data, &mut control, flags))
        .ctx(|| "process.terminal: receiving the pty master from init")?;
    let master = control.drain().find_map(|msg| match msg {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    });
    master.ok_or_else(|| {
        Error::Init(if received.bytes == 0 {
            "process.terminal: init closed the console connection without sending the pty master"
                .into()
        } else {
            "process.terminal: init's message carried no pty master".into()
        })
    })
}

fn retry_intr<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pty from the host's devpts travels over a socketpair and stays a
    /// pty master; its peer gets the size.
    #[test]
    fn master_travels_over_a_socket() {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let Ok(master) = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY) else {
            return; // no devpts where the unit tests run
        };
        let pty = open_peer(master).unwrap();
        set_size(
            &pty.peer,
            ConsoleSize {
                height: 12,
                width: 34,
            },
        )
        .unwrap();
        let (a, b) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        send_master(a.as_fd(), pty.master).unwrap();
        let got = recv_master(b.as_fd(), false).unwrap();
        let size = rustix::termios::tcgetwinsize(&got).unwrap();
        assert_eq!((size.ws_row, size.ws_col), (12, 34));
        // Nothing more is waiting: one message, one fd.
        assert!(recv_master(b.as_fd(), false).is_err());
    }
}
