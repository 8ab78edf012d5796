//! The channel between the runtime and the container's setup processes: a
//! `SOCK_SEQPACKET` socketpair carrying small JSON messages, so each message
//! arrives whole and a dead peer reads as end-of-file.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    recvmsg, send, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// What the container side tells the runtime.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToRuntime {
    /// Stage 1 created a user namespace: write its id maps.
    MapIds { pid: i32 },
    /// The container's init process, as the runtime sees its pid (sent by
    /// stage 1; init waits for the answer, `Continue`).
    InitPid { pid: i32 },
    /// Mounts are done, the root is not switched yet: run `prestart` and
    /// `createRuntime` hooks.
    RunCreateHooks,
    /// Everything is set up; init now waits for `start`.
    Ready,
    /// startContainer hooks ran; init calls execve next.
    Exec,
    /// The seccomp filter is loaded; its notification fd rides along in
    /// `SCM_RIGHTS`: send it to the seccomp agent, then `Continue`.
    SeccompListener,
    /// `exec`: the process that will exec exists (pid in the runtime's pid
    /// namespace). It joined the container's pid namespace, so it is a
    /// child of the setup process that joined the namespaces.
    ExecPid { pid: i32 },
    /// `exec` with a terminal the runtime relays: the pty master is on the
    /// relay socket. The process waits for `Continue` (the relay has
    /// started: the caller's terminal is raw, the pty has its size) before
    /// it goes on to exec.
    TerminalSent,
    /// Chroot isolation: something of the config could not be applied
    /// and was shared or left out (a namespace the kernel refused). The
    /// runtime prints it as one stderr line; stage 1 goes on.
    Diagnostic { message: String },
    Failed {
        message: String,
        /// Set when the failure is a refusal of full isolation that chroot
        /// isolation avoids (`Error::IsolationRefused`): what was refused.
        #[serde(default)]
        refused: Option<String>,
    },
}

/// What the runtime answers.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToContainer {
    /// The id maps are written, init's pid is recorded, the seccomp agent
    /// has the fd, or the terminal relay has started.
    Continue,
    /// `prestart` and `createRuntime` hooks ran; `pid` (init's, in the
    /// runtime's pid namespace) completes the state JSON that init has
    /// since the fork (`InitConfig::hook_state`) for the createContainer
    /// and startContainer hooks. The state itself does not fit a datagram
    /// when annotations are large.
    HooksDone {
        pid: i32,
    },
    /// `CgroupEntry::AfterNamespaces`: the container's cgroups exist and
    /// hold their limits; their join files ride in `SCM_RIGHTS`
    /// (`cgroup::CgroupJoin::into_parts`).
    Cgroups {
        join: crate::cgroup::JoinPaths,
    },
    /// Release init to exec the user process (used by `run`; `create` uses
    /// the exec fifo so that a separate `start` can release it).
    Start,
    Abort {
        message: String,
    },
}

pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (runtime side, container side).
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .ctx(|| "socketpair")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        let bytes = serde_json::to_vec(msg).map_err(|e| Error::Other(e.to_string()))?;
        send(self.fd.as_fd(), &bytes, SendFlags::NOSIGNAL).ctx(|| "sync socket: send")?;
        Ok(())
    }

    /// Sends a message with one fd in `SCM_RIGHTS`.
    pub fn send_fd<T: Serialize>(&self, msg: &T, fd: BorrowedFd<'_>) -> Result<()> {
        self.send_fds(msg, &[fd])
    }

    /// Sends a message with fds in `SCM_RIGHTS` (at most `MAX_FDS`).
    pub fn send_fds<T: Serialize>(&self, msg: &T, fds: &[BorrowedFd<'_>]) -> Result<()> {
        let bytes = serde_json::to_vec(msg).map_err(|e| Error::Other(e.to_string()))?;
        send_with_fds(self.fd.as_fd(), &bytes, fds).ctx(|| "sync socket: send")
    }

    /// Receives one message; `None` when the peer has gone. An fd sent
    /// along is closed.
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>> {
        Ok(self.recv_with_fds()?.map(|(msg, _)| msg))
    }

    /// Receives one message and the fds sent with it (close-on-exec), into
    /// a buffer of its size: a 64 KiB one zeroed for each message cost its
    /// 16 pages' faults and the zeroing in the runtime's wait for init.
    pub fn recv_with_fds<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<(T, Vec<OwnedFd>)>> {
        let mut buf = vec![0u8; self.next_size()?.clamp(1, MAX_MESSAGE)];
        self.recv_with_fds_in(&mut buf)
    }

    /// Waits for the next message and says its size, leaving it queued
    /// (`MSG_PEEK | MSG_TRUNC`: a SEQPACKET message keeps its bounds, and
    /// the kernel gives its whole length); 0 once the peer has gone. A
    /// reset is reported before the messages the peer sent before it went
    /// (see `recv_with_fds_in`).
    fn next_size(&self) -> Result<usize> {
        let mut reset_seen = false;
        loop {
            match rustix::net::recv(
                self.fd.as_fd(),
                &mut [] as &mut [u8],
                RecvFlags::PEEK | RecvFlags::TRUNC,
            ) {
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::CONNRESET) if !reset_seen => reset_seen = true,
                Err(rustix::io::Errno::CONNRESET) => return Ok(0),
                other => return Ok(other.ctx(|| "sync socket: recv")?.1),
            }
        }
    }

    /// Receives one message into `buf`, which the caller made in advance
    /// (after a seccomp filter is loaded nothing may allocate); fds sent
    /// along are closed.
    pub fn recv_in<T: for<'de> Deserialize<'de>>(&self, buf: &mut [u8]) -> Result<Option<T>> {
        Ok(self.recv_with_fds_in(buf)?.map(|(msg, _)| msg))
    }

    fn recv_with_fds_in<T: for<'de> Deserialize<'de>>(
        &self,
        buf: &mut [u8],
    ) -> Result<Option<(T, Vec<OwnedFd>)>> {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut reset_seen = false;
        let n = loop {
            match recvmsg(
                self.fd.as_fd(),
                &mut [IoSliceMut::new(buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Err(rustix::io::Errno::INTR) => continue,
                // A peer that exited with a message of ours unread resets
                // the connection; the kernel reports that once, before the
                // messages it sent us before it went (its `Failed`), which
                // the next call returns.
                Err(rustix::io::Errno::CONNRESET) if !reset_seen => reset_seen = true,
                Err(rustix::io::Errno::CONNRESET) => break 0,
                other => break other.ctx(|| "sync socket: recv")?.bytes,
            }
        };
        let mut fds = Vec::new();
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = msg {
                fds.extend(received);
            }
        }
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(|msg| Some((msg, fds)))
            .map_err(|e| Error::Other(format!("sync socket: bad message: {e}")))
    }
}

/// The largest message taken: errors and diagnostics are text of a few
/// hundred bytes, the rest a few words.
const MAX_MESSAGE: usize = 64 * 1024;

/// The most fds one message carries: one per cgroup hierarchy and then
/// some (a host has at most a dozen or so v1 hierarchies and one v2).
pub const MAX_FDS: usize = 32;

/// One `sendmsg`: `bytes` as payload and `fd` in `SCM_RIGHTS`.
pub fn send_with_fd(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fd: BorrowedFd<'_>,
) -> std::io::Result<()> {
    send_with_fds(socket, bytes, &[fd])
}

/// One `sendmsg`: `bytes` as payload and `fds` (at most `MAX_FDS`) in
/// `SCM_RIGHTS`.
pub fn send_with_fds(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<()> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if fds.len() > MAX_FDS
        || (!fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)))
    {
        return Err(std::io::Error::other(format!(
            "{} fds in one message, at most {MAX_FDS} fit",
            fds.len()
        )));
    }
    let sent = loop {
        match sendmsg(
            socket,
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    if sent != bytes.len() {
        return Err(std::io::Error::other(format!(
            "sent {sent} of {} bytes",
            bytes.len()
        )));
    }
    Ok(())
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_is_received_whole_in_a_buffer_of_its_size() {
        let (runtime, container) = pair().unwrap();
        // Larger than a page, then small, one with an fd, then the peer gone.
        let long = "x".repeat(20_000);
        container
            .send(&ToRuntime::Diagnostic {
                message: long.clone(),
            })
            .unwrap();
        container.send(&ToRuntime::Ready).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        container
            .send_fd(&ToRuntime::ExecPid { pid: 7 }, file.as_fd())
            .unwrap();
        drop(container);
        match runtime.recv::<ToRuntime>().unwrap() {
            Some(ToRuntime::Diagnostic { message }) => assert_eq!(message, long),
            other => panic!("{other:?}"),
        }
        assert!(matches!(runtime.recv().unwrap(), Some(ToRuntime::Ready)));
        let (msg, fds) = runtime.recv_with_fds::<ToRuntime>().unwrap().unwrap();
        assert!(matches!(msg, ToRuntime::ExecPid { pid: 7 }));
        assert_eq!(fds.len(), 1);
        assert!(runtime.recv::<ToRuntime>().unwrap().is_none());
    }
}
