//! Freezing and thawing a container's cgroup (`pause` / `resume`): the v1
//! freezer controller (`freezer.state`) where the container has one, else
//! the v2 core freezer (`cgroup.freeze`, settled when `cgroup.events` says
//! `frozen 1`). On the hybrid layout the v1 freezer wins, as with runc.

use std::fs;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};

use crate::error::{Error, IoContext, Result};

/// How long a freeze may take to settle before giving up (runc waits
/// about as long before it thaws and reports failure).
const SETTLE: Duration = Duration::from_secs(5);

/// The freezer a container's cgroup directories offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freezer {
    /// A v1 freezer cgroup directory (`freezer.state`).
    V1(PathBuf),
    /// A v2 cgroup directory (`cgroup.freeze`, `cgroup.events`).
    V2(PathBuf),
}

impl Freezer {
    /// The freezer of `dirs`: the v1 one if any, else a v2 one; None when
    /// the container has neither (rootless without a delegated cgroup).
    pub fn find(dirs: &[PathBuf]) -> Option<Freezer> {
        let v1 = dirs.iter().find(|d| d.join("freezer.state").exists());
        if let Some(d) = v1 {
            return Some(Freezer::V1(d.clone()));
        }
        dirs.iter()
            .find(|d| d.join("cgroup.freeze").exists())
            .map(|d| Freezer::V2(d.clone()))
    }

    /// Freezes (`true`) or thaws (`false`) and waits until the kernel says
    /// every process is in that state. A freeze that does not settle is
    /// undone and reported.
    pub fn set(&self, frozen: bool) -> Result<()> {
        match self {
            Freezer::V1(dir) => set_v1(dir, frozen),
            Freezer::V2(dir) => set_v2(dir, frozen),
        }
    }

    /// Whether the cgroup is frozen (or freezing, on v1).
    pub fn is_frozen(&self) -> bool {
        match self {
            Freezer::V1(dir) => fs::read_to_string(dir.join("freezer.state"))
                .map(|s| matches!(s.trim(), "FROZEN" | "FREEZING"))
                .unwrap_or(false),
            Freezer::V2(dir) => fs::read_to_string(dir.join("cgroup.freeze"))
                .map(|s| s.trim() == "1")
                .unwrap_or(false),
        }
    }
}

/// v1: write the wanted state, then read `freezer.state` until it reports
/// it (`FREEZING` means some task has not stopped yet). The write is
/// repeated now and then: a task forking meanwhile can leave the cgroup
/// stuck in `FREEZING` until asked again (runc does the same).
fn set_v1(dir: &Path, frozen: bool) -> Result<()> {
    let file = dir.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + SETTLE;
    let mut delay = Duration::from_micros(100);
    for attempt in 0u32.. {
        if attempt % 10 == 0 {
            fs::write(&file, want).ctx(|| format!("writing {want} to {}", file.display()))?;
        }
        let now = fs::read_to_string(&file).ctx(|| format!("{}", file.display()))?;
        if now.trim() == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
    if frozen {
        let _ = fs::write(&file, "THAWED");
    }
    Err(Error::Other(format!(
        "{}: the cgroup did not become {want} within {}s",
        file.display(),
        SETTLE.as_secs()
    )))
}

/// v2: write `cgroup.freeze`, then wait for `frozen 0|1` in
/// `cgroup.events`, which the kernel signals with POLLPRI on change.
fn set_v2(dir: &Path, frozen: bool) -> Result<()> {
    let freeze = dir.join("cgroup.freeze");
    let events = dir.join("cgroup.events");
    let value = if frozen { "1" } else { "0" };
    let mut file = fs::File::open(&events).ctx(|| format!("{}", events.display()))?;
    fs::write(&freeze, value).ctx(|| format!("writing {value} to {}", freeze.display()))?;
    let want = format!("frozen {value}");
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut text = String::new();
        file.rewind().ctx(|| format!("{}", events.display()))?;
        file.read_to_string(&mut text)
            .ctx(|| format!("{}", events.display()))?;
        if text.lines().any(|l| l.trim() == want) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut fds = [PollFd::new(&file, PollFlags::PRI)];
        let ts = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: left.min(Duration::from_millis(100)).as_nanos() as i64,
        };
        match poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).ctx(|| format!("polling {}", events.display())),
        }
    }
    if frozen {
        let _ = fs::write(&freeze, "0");
    }
    Err(Error::Other(format!(
        "{}: the cgroup did not report `{want}` within {}s",
        events.display(),
        SETTLE.as_secs()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_freezer_wins_on_hybrid() {
        let tmp = std::env::temp_dir().join(format!("rootcell-freezer-{}", std::process::id()));
        let (v1, v2) = (tmp.join("freezer/c"), tmp.join("unified/c"));
        fs::create_dir_all(&v1).unwrap();
        fs::create_dir_all(&v2).unwrap();
        fs::write(v2.join("cgroup.freeze"), "0\n").unwrap();
        let dirs = [v2.clone(), v1.clone()];
        assert_eq!(Freezer::find(&dirs), Some(Freezer::V2(v2.clone())));
        fs::write(v1.join("freezer.state"), "THAWED\n").unwrap();
        let f = Freezer::find(&dirs).expect("a freezer");
        assert_eq!(f, Freezer::V1(v1.clone()));
        // A plain file settles at once: the state written is read back.
        f.set(true).unwrap();
        assert!(f.is_frozen());
        f.set(false).unwrap();
        assert!(!f.is_frozen());
        assert_eq!(Freezer::find(&[tmp.join("none")]), None);
        let _ = fs::remove_dir_all(&tmp);
    }
}
