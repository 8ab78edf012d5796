//! Watching a container's memory cgroup for OOM kills (`events`): on v1
//! an eventfd registered for `memory.oom_control` through
//! `cgroup.event_control`; on v2 the `oom_kill` counter of
//! `memory.events`, which the kernel signals with POLLPRI when it changes.

use std::fs::{self, File};
use std::io::{Read, Seek};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::event::{eventfd, EventfdFlags, PollFlags};

use crate::error::{IoContext, Result};

/// An armed OOM watch on one memory cgroup.
pub enum OomWatch {
    /// v1: the eventfd (readable once per OOM) and the cgroup, which the
    /// kernel also signals when the cgroup is removed.
    V1 {
        eventfd: OwnedFd,
        _oom_control: File,
        dir: PathBuf,
    },
    /// v2: `memory.events`, open, and the last `oom_kill` count seen.
    V2 { events: File, seen: u64 },
}

impl OomWatch {
    /// Arms a watch on the container's memory cgroup; None when it has
    /// none (no memory controller mounted or delegated).
    pub fn arm(dirs: &[PathBuf]) -> Result<Option<OomWatch>> {
        if let Some(dir) = dirs.iter().find(|d| d.join("memory.oom_control").exists()) {
            return arm_v1(dir).map(Some);
        }
        match dirs.iter().find(|d| d.join("memory.events").exists()) {
            Some(dir) => {
                let path = dir.join("memory.events");
                let mut events = File::open(&path).ctx(|| format!("{}", path.display()))?;
                let seen = oom_kills(&mut events);
                Ok(Some(OomWatch::V2 { events, seen }))
            }
            None => Ok(None),
        }
    }

    /// The fd to poll, and for which events.
    pub fn poll_fd(&self) -> (BorrowedFd<'_>, PollFlags) {
        match self {
            OomWatch::V1 { eventfd, .. } => (eventfd.as_fd(), PollFlags::IN),
            OomWatch::V2 { events, .. } => (events.as_fd(), PollFlags::PRI),
        }
    }

    /// After the fd polled ready: how many OOM kills happened since the
    /// last look (0 for a wake-up that was not one).
    pub fn take(&mut self) -> u64 {
        match self {
            OomWatch::V1 { eventfd, dir, .. } => {
                let mut buf = [0u8; 8];
                let n = match rustix::io::read(&*eventfd, &mut buf) {
                    Ok(8) => u64::from_ne_bytes(buf),
                    _ => 0,
                };
                // The eventfd also fires when the cgroup goes away.
                if dir.join("memory.oom_control").exists() {
                    n
                } else {
                    0
                }
            }
            OomWatch::V2 { events, seen } => {
                let now = oom_kills(events);
                let new = now.saturating_sub(*seen);
                *seen = now;
                new
            }
        }
    }
}

/// v1: `cgroup.event_control` takes "<eventfd> <fd of memory.oom_control>".
fn arm_v1(dir: &Path) -> Result<OomWatch> {
    let control = dir.join("memory.oom_control");
    let oom_control = File::open(&control).ctx(|| format!("{}", control.display()))?;
    let efd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
        .ctx(|| "eventfd for OOM notifications")?;
    let register = dir.join("cgroup.event_control");
    fs::write(
        &register,
        format!("{} {}", efd.as_raw_fd(), oom_control.as_raw_fd()),
    )
    .ctx(|| format!("{}", register.display()))?;
    Ok(OomWatch::V1 {
        eventfd: efd,
        _oom_control: oom_control,
        dir: dir.to_path_buf(),
    })
}

/// The `oom_kill` counter of an open `memory.events` (0 if unreadable).
fn oom_kills(events: &mut File) -> u64 {
    let mut text = String::new();
    if events.rewind().is_err() || events.read_to_string(&mut text).is_err() {
        return 0;
    }
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_counts_new_oom_kills_only() {
        let dir = std::env::temp_dir().join(format!("rootcell-oom-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let events = dir.join("memory.events");
        fs::write(&events, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
        let mut watch = OomWatch::arm(std::slice::from_ref(&dir))
            .unwrap()
            .expect("a v2 watch");
        assert_eq!(watch.take(), 0, "kills before arming are not news");
        // Rewritten in place, as the kernel's file reads anew.
        fs::write(&events, "low 0\nhigh 0\nmax 5\noom 3\noom_kill 3\n").unwrap();
        assert_eq!(watch.take(), 2);
        assert_eq!(watch.take(), 0);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_memory_cgroup_no_watch() {
        let dir = std::env::temp_dir().join(format!("rootcell-oom-none-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert!(OomWatch::arm(std::slice::from_ref(&dir)).unwrap().is_none());
        let _ = fs::remove_dir_all(&dir);
    }
}
