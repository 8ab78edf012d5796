//! The channel between the runtime and the container's setup processes: a
//! `SOCK_SEQPACKET` socketpair carrying small JSON messages, so each message
//! arrives whole and a dead peer reads as end-of-file.

use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{
    recv, send, socketpair, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// What the container side tells the runtime.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToRuntime {
    /// Stage 1 created a user namespace: write its id maps.
    MapIds {
        pid: i32,
    },
    /// The container's init process, as the runtime sees its pid.
    InitPid {
        pid: i32,
    },
    /// Mounts are done, the root is not switched yet: run `prestart` and
    /// `createRuntime` hooks.
    RunCreateHooks,
    /// Everything is set up; init now waits for `start`.
    Ready,
    /// startContainer hooks ran; init calls execve next.
    Exec,
    /// `exec`: the process that will exec exists (pid in the runtime's pid
    /// namespace). It joined the container's pid namespace, so it is a
    /// child of the setup process that joined the namespaces.
    ExecPid {
        pid: i32,
    },
    Failed {
        message: String,
    },
}

/// What the runtime answers.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToContainer {
    /// The id maps are written.
    Continue,
    /// `prestart` and `createRuntime` hooks ran; `state` is the state JSON
    /// for the createContainer and startContainer hooks.
    HooksDone {
        state: String,
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

    /// Receives one message; `None` when the peer has gone.
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match recv(self.fd.as_fd(), &mut buf, RecvFlags::empty()) {
                Err(rustix::io::Errno::INTR) => continue,
                other => break other.ctx(|| "sync socket: recv")?.0,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Other(format!("sync socket: bad message: {e}")))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
