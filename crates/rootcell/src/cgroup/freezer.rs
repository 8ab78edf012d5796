//! Freezing and thawing a container's cgroup (`pause` / `resume`): the v1
//! freezer controller (`freezer.state`) where the container has one, else
//! the v2 core freezer (`cgroup.freeze`, settled when `cgroup.events` says
//! `frozen 1`). On the hybrid layout the v1 freezer wins, as with runc.
//!
//! One reading of the state serves everyone (`Freezer::state`): `state`
//! and `list` report `paused` only for `Frozen`, and `kill`/`delete
//! --force` thaw anything that is not `Thawed`.

use std::fs;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};

use crate::error::{Error, IoContext, Result};

/// How long a freeze may take to settle before giving up (runc's v1 loop
/// takes about as long; its v2 wait is 10 s).
const SETTLE: Duration = Duration::from_secs(5);

/// v1 has no notification: the state is read again after a sleep that
/// starts at `FIRST_DELAY` and doubles up to `MAX_DELAY`.
const FIRST_DELAY: Duration = Duration::from_micros(100);
const MAX_DELAY: Duration = Duration::from_millis(10);

/// While a v1 freeze stays `FREEZING`, every `THAW_EVERY`th attempt thaws
/// before freezing again: a task that keeps forking can keep the cgroup
/// from settling, and a thaw lets the freeze start over with every task
/// (runc does the same).
const THAW_EVERY: u32 = 16;

/// The freezer a container's cgroup directories offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freezer {
    /// A v1 freezer cgroup directory (`freezer.state`).
    V1(PathBuf),
    /// A v2 cgroup directory (`cgroup.freeze`, `cgroup.events`).
    V2(PathBuf),
}

/// What the kernel says of a container's freezer, as runc's `GetState`
/// reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    /// Running; also a cgroup frozen only because an ancestor is (v1
    /// `FROZEN` with `freezer.self_freezing` 0, v2 `cgroup.freeze` 0):
    /// the container was not paused, and thawing it would not help.
    Thawed,
    /// Asked to freeze, but some task has not stopped yet (v1
    /// `FREEZING`; v2 `cgroup.freeze` 1 while `cgroup.events` says
    /// `frozen 0`). Not paused: processes may still run.
    Freezing,
    /// Every task stopped, by the container's own freezer.
    Frozen,
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

    /// The current state, without waiting. A file that cannot be read
    /// (the cgroup is gone) reads as `Thawed`.
    pub fn state(&self) -> FreezerState {
        let read = |dir: &Path, file: &str| fs::read_to_string(dir.join(file)).ok();
        match self {
            Freezer::V1(dir) => v1_state(
                read(dir, "freezer.state").as_deref(),
                read(dir, "freezer.self_freezing").as_deref(),
            ),
            Freezer::V2(dir) => v2_state(
                read(dir, "cgroup.freeze").as_deref(),
                read(dir, "cgroup.events").as_deref(),
            ),
        }
    }
}

/// Whether the container is paused: its freezer is `Frozen`.
pub fn is_paused(dirs: &[PathBuf]) -> bool {
    Freezer::find(dirs).is_some_and(|f| f.state() == FreezerState::Frozen)
}

/// v1: `freezer.state`, and for `FROZEN` whether the cgroup itself is
/// frozen (`freezer.self_freezing`; a kernel without it: yes).
fn v1_state(state: Option<&str>, self_freezing: Option<&str>) -> FreezerState {
    match state.map(str::trim) {
        Some("FROZEN") if self_freezing.map(str::trim) == Some("0") => FreezerState::Thawed,
        Some("FROZEN") => FreezerState::Frozen,
        Some("FREEZING") => FreezerState::Freezing,
        _ => FreezerState::Thawed,
    }
}

/// v2: `cgroup.freeze` says what was asked, `cgroup.events` whether it
/// has happened.
fn v2_state(freeze: Option<&str>, events: Option<&str>) -> FreezerState {
    if freeze.map(str::trim) != Some("1") {
        return FreezerState::Thawed;
    }
    if events.is_some_and(|e| e.lines().any(|l| l.trim() == "frozen 1")) {
        FreezerState::Frozen
    } else {
        FreezerState::Freezing
    }
}

/// The sleeps between two reads of a v1 `freezer.state`: doubling from
/// `FIRST_DELAY` to `MAX_DELAY`, never past the deadline; None once it
/// has passed.
struct Backoff {
    next: Duration,
    deadline: Instant,
}

impl Backoff {
    fn new(start: Instant, limit: Duration) -> Backoff {
        Backoff {
            next: FIRST_DELAY,
            deadline: start + limit,
        }
    }

    fn delay(&mut self, now: Instant) -> Option<Duration> {
        let left = self.deadline.saturating_duration_since(now);
        if left.is_zero() {
            return None;
        }
        let d = self.next.min(left);
        self.next = (self.next * 2).min(MAX_DELAY);
        Some(d)
    }
}

/// What the v1 loop needs from the world, so that it can be tested
/// without a kernel.
trait V1Io {
    fn write(&mut self, state: &str) -> Result<()>;
    fn read(&mut self) -> Result<String>;
    fn now(&mut self) -> Instant;
    fn sleep(&mut self, d: Duration);
}

struct V1Files(PathBuf);

impl V1Io for V1Files {
    fn write(&mut self, state: &str) -> Result<()> {
        fs::write(&self.0, state).ctx(|| format!("writing {state} to {}", self.0.display()))
    }
    fn read(&mut self) -> Result<String> {
        fs::read_to_string(&self.0).ctx(|| format!("{}", self.0.display()))
    }
    fn now(&mut self) -> Instant {
        Instant::now()
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// v1: write the wanted state, then read `freezer.state` until it reports
/// it (`FREEZING` means some task has not stopped yet). The kernel gives
/// no notification, so the reads back off exponentially within `SETTLE`.
/// The wanted state is written again before each read: a task that forked
/// meanwhile is only caught by a new write (runc writes on every try).
fn set_v1(dir: &Path, frozen: bool) -> Result<()> {
    let file = dir.join("freezer.state");
    settle_v1(&mut V1Files(file.clone()), frozen, SETTLE)
        .map_err(|e| e.unwrap_or_else(|| timeout(&file, frozen)))
}

fn timeout(file: &Path, frozen: bool) -> Error {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let undone = if frozen { " (thawed again)" } else { "" };
    Error::Other(format!(
        "{}: the cgroup did not become {want} within {}s{undone}: a process may be stuck in the kernel (uninterruptible sleep)",
        file.display(),
        SETTLE.as_secs()
    ))
}

/// The v1 loop. Err(None) is a timeout, after which a freeze has been
/// undone.
fn settle_v1(io: &mut impl V1Io, frozen: bool, limit: Duration) -> Result<(), Option<Error>> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let mut backoff = Backoff::new(io.now(), limit);
    for attempt in 1u32.. {
        if frozen && attempt % THAW_EVERY == 0 {
            io.write("THAWED").map_err(Some)?;
        }
        io.write(want).map_err(Some)?;
        if io.read().map_err(Some)?.trim() == want {
            return Ok(());
        }
        let now = io.now();
        match backoff.delay(now) {
            Some(d) => io.sleep(d),
            None => break,
        }
    }
    if frozen {
        let _ = io.write("THAWED");
    }
    Err(None)
}

/// v2: write `cgroup.freeze`, then wait for `frozen 0|1` in
/// `cgroup.events`. The kernel signals a change of that file with
/// POLLPRI (kernfs_notify) to a reader that has read it since the last
/// change, so each wait is one poll for the time left, not a sleep.
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
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
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
        "{}: the cgroup did not report `{want}` within {}s{}: a process may be stuck in the kernel",
        events.display(),
        SETTLE.as_secs(),
        if frozen { " (thawed again)" } else { "" },
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
        assert_eq!(f.state(), FreezerState::Frozen);
        assert!(is_paused(&dirs));
        f.set(false).unwrap();
        assert_eq!(f.state(), FreezerState::Thawed);
        assert!(!is_paused(&dirs));
        // FREEZING is not paused yet.
        fs::write(v1.join("freezer.state"), "FREEZING\n").unwrap();
        assert_eq!(f.state(), FreezerState::Freezing);
        assert!(!is_paused(&dirs));
        assert_eq!(Freezer::find(&[tmp.join("none")]), None);
        assert!(!is_paused(&[tmp.join("none")]));
        let _ = fs::remove_dir_all(&tmp);
    }

    #[test]
    fn states_read_as_runc_reads_them() {
        use FreezerState::*;
        assert_eq!(v1_state(Some("THAWED\n"), Some("0\n")), Thawed);
        assert_eq!(v1_state(Some("FREEZING\n"), Some("1\n")), Freezing);
        assert_eq!(v1_state(Some("FROZEN\n"), Some("1\n")), Frozen);
        // Frozen by an ancestor only: runc says thawed.
        assert_eq!(v1_state(Some("FROZEN\n"), Some("0\n")), Thawed);
        // A kernel without self_freezing.
        assert_eq!(v1_state(Some("FROZEN\n"), None), Frozen);
        assert_eq!(v1_state(None, None), Thawed);

        let events = |frozen: u8| format!("populated 1\nfrozen {frozen}\n");
        assert_eq!(v2_state(Some("0\n"), Some(&events(0))), Thawed);
        // An ancestor froze it; this cgroup was not asked to.
        assert_eq!(v2_state(Some("0\n"), Some(&events(1))), Thawed);
        assert_eq!(v2_state(Some("1\n"), Some(&events(0))), Freezing);
        assert_eq!(v2_state(Some("1\n"), Some(&events(1))), Frozen);
        assert_eq!(v2_state(Some("1\n"), None), Freezing);
        assert_eq!(v2_state(None, None), Thawed);
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_stops_at_the_deadline() {
        let start = Instant::now();
        let mut b = Backoff::new(start, Duration::from_millis(50));
        let mut now = start;
        let mut delays = Vec::new();
        while let Some(d) = b.delay(now) {
            delays.push(d);
            now += d;
        }
        assert_eq!(delays[0], FIRST_DELAY);
        assert_eq!(delays[1], FIRST_DELAY * 2);
        assert!(delays.iter().all(|d| *d <= MAX_DELAY), "{delays:?}");
        assert_eq!(
            now - start,
            Duration::from_millis(50),
            "ends at the deadline"
        );
        assert!(delays.len() < 20, "{} reads in 50 ms", delays.len());
    }

    /// A freezer that stays FREEZING for `stuck` reads, on a fake clock.
    struct Fake {
        stuck: u32,
        reads: u32,
        state: String,
        writes: Vec<String>,
        now: Instant,
        slept: Duration,
    }

    impl Fake {
        fn new(stuck: u32) -> Fake {
            Fake {
                stuck,
                reads: 0,
                state: "THAWED".into(),
                writes: Vec::new(),
                now: Instant::now(),
                slept: Duration::ZERO,
            }
        }
    }

    impl V1Io for Fake {
        fn write(&mut self, state: &str) -> Result<()> {
            self.writes.push(state.into());
            self.state = state.into();
            Ok(())
        }
        fn read(&mut self) -> Result<String> {
            self.reads += 1;
            Ok(if self.state == "FROZEN" && self.reads <= self.stuck {
                "FREEZING\n".into()
            } else {
                format!("{}\n", self.state)
            })
        }
        fn now(&mut self) -> Instant {
            self.now
        }
        fn sleep(&mut self, d: Duration) {
            self.now += d;
            self.slept += d;
        }
    }

    #[test]
    fn v1_freeze_settles_after_a_few_freezing_reads() {
        let mut io = Fake::new(3);
        settle_v1(&mut io, true, SETTLE).unwrap();
        assert_eq!(io.reads, 4);
        assert!(io.writes.iter().all(|w| w == "FROZEN"), "{:?}", io.writes);
        // 100 + 200 + 400 µs: no long sleep.
        assert_eq!(io.slept, Duration::from_micros(700));
    }

    #[test]
    fn v1_freeze_stuck_in_freezing_times_out_thawed() {
        let mut io = Fake::new(u32::MAX);
        let err = settle_v1(&mut io, true, SETTLE).unwrap_err();
        assert!(err.is_none(), "a timeout, not an I/O error");
        assert_eq!(io.slept, SETTLE, "bounded by the deadline");
        assert_eq!(io.writes.last().map(String::as_str), Some("THAWED"));
        // Thawed now and then to let the freeze start over.
        let thaws = io.writes.iter().filter(|w| *w == "THAWED").count();
        assert!(thaws > 1, "{thaws}");
        let msg = timeout(Path::new("/cg/freezer.state"), true).to_string();
        assert!(
            msg.contains("/cg/freezer.state") && msg.contains("FROZEN within 5s"),
            "{msg}"
        );
    }
}
