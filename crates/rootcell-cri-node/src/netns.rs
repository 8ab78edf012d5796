//! Running code in containerd's network namespace. The node's containerd
//! lives in a network namespace of its own: its CRI streaming server, the
//! pods' host ports and the image registry are reachable only from there. A
//! socket stays in the namespace it was made in, so a thread that entered
//! the namespace can make a listener or a connection and hand it to anyone.

use anyhow::{Context, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// A held network namespace (`/proc/<pid>/ns/net`, opened once: the
/// handle stays valid while the file is open, even if the pid is reused).
#[derive(Debug)]
pub struct NetNs {
    file: File,
}

impl NetNs {
    /// Opens the network namespace of `pid`.
    pub fn of_pid(pid: i32) -> Result<NetNs> {
        Self::open(Path::new(&format!("/proc/{pid}/ns/net")))
    }

    /// Opens a network namespace file (`/proc/<pid>/ns/net` or a bind of one).
    pub fn open(path: &Path) -> Result<NetNs> {
        let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
        Ok(NetNs { file })
    }

    /// Runs `f` on a new thread that first entered this namespace, and
    /// returns its result. The caller's thread is not moved.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let fd = self.file.try_clone().context("dup the netns fd")?;
        let handle = std::thread::Builder::new()
            .name("cri-node-netns".into())
            .spawn(move || -> Result<T> {
                enter(&fd)?;
                drop(fd);
                Ok(f())
            })
            .context("spawn a netns thread")?;
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("the netns thread panicked"))?
    }

    /// Connects a TCP stream to `addr` from inside the namespace.
    pub fn connect(&self, addr: std::net::SocketAddr) -> Result<std::net::TcpStream> {
        self.run(move || std::net::TcpStream::connect(addr))?
            .with_context(|| format!("connect to {addr} in the node's network namespace"))
    }

    /// Binds a TCP listener to `addr` inside the namespace.
    pub fn bind(&self, addr: std::net::SocketAddr) -> Result<std::net::TcpListener> {
        self.run(move || std::net::TcpListener::bind(addr))?
            .with_context(|| format!("bind {addr} in the node's network namespace"))
    }
}

/// `setns(fd, CLONE_NEWNET)` for the calling thread only: the kernel keeps
/// a network namespace per task, so other threads of the process stay
/// where they are, and threads this one spawns start in the new namespace.
fn enter(fd: &File) -> Result<()> {
    // SAFETY: plain syscall on an fd we own; it changes only this thread's
    // network namespace.
    let ret = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("setns(CLONE_NEWNET)");
    }
    Ok(())
}
