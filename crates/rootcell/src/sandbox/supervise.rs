//! Watching one sandbox run until it ends, and measuring it: one `poll`
//! loop over the top process's pidfd, a signalfd, the status pipe and the
//! OOM notification, with timers for the wall-time limit, the CPU-time
//! checks and the files probe as its only timeout. No threads, no sleeps.
//!
//! Limits end the run by killing the whole cgroup (`RunCgroup::kill`) and
//! the top process; the first SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to
//! rootcell is forwarded to the top process (the sandbox's init passes it
//! on to the command), a second one kills everything. Afterwards the
//! cgroup is read (CPU time, peak memory, block I/O), or without one the
//! top process's rusage, as BenchExec's runexec does.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_send_signal, Signal};

use crate::error::{IoContext, Result};
use crate::process::sys;
use crate::sandbox::cgroups::RunCgroup;
use crate::sandbox::config::Limits;
use crate::sandbox::report::{ExitStatus, TerminationReason};

/// The signals `rootcell sandbox` forwards (the first) or acts on (the
/// second).
pub const HANDLED_SIGNALS: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The CPU time is read at most this long apart…
const MAX_CPU_CHECK: Duration = Duration::from_secs(1);
/// …and at least this long apart, close to a limit.
const MIN_CPU_CHECK: Duration = Duration::from_millis(2);
/// How often `files_usage` is asked.
const FILES_CHECK: Duration = Duration::from_millis(500);
/// After a kill, SIGKILL the top process again this often until it is
/// gone (it always is at once; this guards against a lost wake-up).
const KILL_AGAIN: Duration = Duration::from_secs(1);
/// BenchExec's default wall-time limit: the CPU-time limit plus this.
const WALLTIME_OVERHEAD: Duration = Duration::from_secs(30);

/// The marker runexec puts where it cut an over-long output file.
pub const SHRINK_MARKER: &str =
    "\n\n\nWARNING: YOUR LOGFILE WAS TOO LONG, SOME LINES IN THE MIDDLE WERE REMOVED.\n\n\n\n";

/// What the watch loop needs besides the processes.
pub struct Watch<'a> {
    pub cgroup: Option<&'a RunCgroup>,
    pub limits: &'a Limits,
    /// (files, bytes) written so far, for --filesCountLimit/--filesSizeLimit (capture provides it).
    pub files_usage: Option<Box<dyn FnMut() -> (u64, u64) + 'a>>,
}

/// How the run ended and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: ExitStatus,
    pub termination_reason: Option<TerminationReason>,
    pub walltime: Duration,
    pub cputime: Duration,
    pub cputime_per_cpu: Vec<(u32, Duration)>,
    /// Peak memory of the whole cgroup; None without a memory cgroup (the
    /// largest process's maxrss is not the tree's use, so it is not given,
    /// as in BenchExec).
    pub memory: Option<u64>,
    pub blkio_read: Option<u64>,
    pub blkio_write: Option<u64>,
}

/// The handled signals blocked (before forking the sandbox, so none is
/// lost or kills rootcell before its cgroup is removed). Dropping it
/// discards the handled signals still pending and restores the mask.
/// Children inherit the blocked mask: the sandbox's processes must reset
/// it (the command starts with an empty mask).
pub struct SignalGuard {
    old: libc::sigset_t,
}

/// Blocks `HANDLED_SIGNALS` in the calling thread (the runtime is
/// single-threaded) until the guard is dropped.
pub fn block_signals() -> Result<SignalGuard> {
    let old =
        sys::block_signals(&HANDLED_SIGNALS).ctx(|| "blocking SIGINT/SIGTERM/SIGHUP/SIGQUIT")?;
    Ok(SignalGuard { old })
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        while sys::take_pending_signal(&HANDLED_SIGNALS).is_some() {}
        sys::set_signal_mask(&self.old);
    }
}

/// The wall-time limit in force: `--walltimelimit`, else BenchExec's
/// default of the (hard, else soft) CPU-time limit plus 30 s.
pub fn effective_walltime(limits: &Limits) -> Option<Duration> {
    limits.walltime.or_else(|| {
        limits
            .cputime
            .or(limits.soft_cputime)
            .map(|t| t + WALLTIME_OVERHEAD)
    })
}

/// The command's status from a raw wait status (what init writes into
/// the status pipe, or what `wait4` returns).
pub fn decode_wait_status(status: i32) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signaled(libc::WTERMSIG(status))
    } else {
        ExitStatus::Exited(libc::WEXITSTATUS(status))
    }
}

/// `top`: pidfd of the sandbox's top process (stage 1 / init); `status_pipe`: read end the
/// sandbox's init writes the command's wait status (i32, native endian) into before it exits.
/// Forwards SIGINT/SIGTERM/SIGHUP to `top` (a second one: SIGKILL everything), enforces limits
/// (killing the whole cgroup), measures.
///
/// The run ends when `top` exits: it must be the process whose end is the
/// run's end (init, or a stage 1 that waits for init). `top` is reaped
/// here when it is rootcell's child (its rusage is the fallback CPU time
/// and its status the fallback exit status). Signals stay blocked on
/// return: the caller's `SignalGuard` restores them after cleanup.
pub fn supervise(
    top: &OwnedFd,
    top_pid: i32,
    status_pipe: OwnedFd,
    watch: Watch,
    started: Instant,
) -> Result<Outcome> {
    // Blocked here too, for callers that did not; never unblocked here.
    sys::block_signals(&HANDLED_SIGNALS).ctx(|| "blocking SIGINT/SIGTERM/SIGHUP/SIGQUIT")?;
    let signals = sys::signalfd(&HANDLED_SIGNALS).ctx(|| "signalfd")?;
    let Watch {
        cgroup,
        limits,
        mut files_usage,
    } = watch;
    // Without the notification an OOM kill is still found afterwards,
    // from the cgroup's counter.
    let mut oom = match (cgroup, limits.memory) {
        (Some(cg), Some(_)) => cg.oom_watch().unwrap_or_else(|e| {
            tracing::warn!("no OOM notification for the run: {e}");
            None
        }),
        _ => None,
    };
    let mut run = Run {
        top,
        cgroup,
        reason: None,
        killed_at: None,
    };
    let cpu_watch = cgroup.filter(|cg| {
        (limits.cputime.is_some() || limits.soft_cputime.is_some()) && cg.accounts_cpu()
    });
    // Only the CPU-time watch needs it; `available_parallelism` reads the
    // cgroup's quota files, so a run without CPU limits skips it.
    let ncpus = match cpu_watch {
        None => 1,
        Some(_) => limits
            .cores
            .as_ref()
            .map(|c| c.len() as u32)
            .or_else(|| {
                std::thread::available_parallelism()
                    .ok()
                    .map(|n| n.get() as u32)
            })
            .unwrap_or(1)
            .max(1),
    };
    let mut soft_sent = false;
    let mut next_cpu = cpu_watch.map(|_| Instant::now());
    let files_limited = limits.files_count.is_some() || limits.files_size.is_some();
    let mut next_files = (files_limited && files_usage.is_some()).then(|| started + FILES_CHECK);
    let mut wall_deadline = effective_walltime(limits).map(|t| started + t);
    let mut pipe = Some(status_pipe);
    let mut status_bytes: Vec<u8> = Vec::with_capacity(4);
    let mut signals_seen = 0u32;

    let ended_at = loop {
        let now = Instant::now();
        if wall_deadline.is_some_and(|d| now >= d) {
            wall_deadline = None;
            run.end(TerminationReason::Walltime);
        }
        if let (Some(cg), Some(at)) = (cpu_watch, next_cpu) {
            if now >= at {
                next_cpu = check_cputime(cg, limits, ncpus, &mut soft_sent, &mut run, now);
            }
        }
        if let (Some(probe), Some(at)) = (files_usage.as_mut(), next_files) {
            if now >= at {
                let (files, bytes) = probe();
                if limits.files_count.is_some_and(|l| files > l) {
                    run.end(TerminationReason::FilesCount);
                    next_files = None;
                } else if limits.files_size.is_some_and(|l| bytes > l) {
                    run.end(TerminationReason::FilesSize);
                    next_files = None;
                } else {
                    next_files = Some(now + FILES_CHECK);
                }
            }
        }
        let kill_again = run.killed_at.map(|t| t + KILL_AGAIN);
        if kill_again.is_some_and(|t| now >= t) {
            run.kill_everything();
        }
        let deadline = [wall_deadline, next_cpu, next_files, kill_again]
            .into_iter()
            .flatten()
            .min();
        let timeout = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            rustix::time::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            }
        });

        let mut fds = vec![
            PollFd::new(top, PollFlags::IN),
            PollFd::new(&signals, PollFlags::IN),
        ];
        let pipe_at = pipe.as_ref().map(|p| {
            fds.push(PollFd::new(p, PollFlags::IN));
            fds.len() - 1
        });
        let oom_at = oom.as_ref().map(|w| {
            let (fd, flags) = w.poll_fd();
            fds.push(PollFd::from_borrowed_fd(fd, flags));
            fds.len() - 1
        });
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(io::Error::from(e)).ctx(|| "poll in the sandbox's watch loop"),
        }
        let ready = |i: Option<usize>| i.is_some_and(|i| !fds[i].revents().is_empty());
        let top_ready = ready(Some(0));
        let signal_ready = ready(Some(1));
        let pipe_ready = ready(pipe_at);
        let oom_ready = ready(oom_at);
        drop(fds);

        if pipe_ready {
            if let Some(p) = &pipe {
                if !read_status(p, &mut status_bytes) {
                    pipe = None;
                }
                if status_bytes.len() == 4 {
                    crate::phase::mark("command's status received");
                }
            }
        }
        if signal_ready {
            while let Some(sig) = read_signal(&signals) {
                signals_seen += 1;
                if signals_seen == 1 {
                    run.set_reason(TerminationReason::Killed);
                    if let Some(s) = Signal::from_named_raw(sig) {
                        let _ = pidfd_send_signal(run.top, s);
                    }
                } else {
                    run.end(TerminationReason::Killed);
                }
            }
        }
        if oom_ready {
            if let Some(w) = oom.as_mut() {
                if w.take() > 0 {
                    run.end(TerminationReason::Memory);
                }
            }
        }
        if top_ready {
            crate::phase::mark("init exited");
            break Instant::now();
        }
    };
    let walltime = ended_at.saturating_duration_since(started);

    // The status init wrote before it exited is in the pipe by now.
    if let Some(p) = &pipe {
        while status_bytes.len() < 4 && poll_now(p) && read_status(p, &mut status_bytes) {}
    }
    let usage = match sys::wait4_usage(top_pid) {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!("wait4({top_pid}): {e} (the top process is not rootcell's child)");
            None
        }
    };

    let mut out = Outcome {
        status: ExitStatus::Exited(0),
        termination_reason: None,
        walltime,
        cputime: Duration::ZERO,
        cputime_per_cpu: Vec::new(),
        memory: None,
        blkio_read: None,
        blkio_write: None,
    };
    let rusage_cpu = usage.map(|u| u.cputime);
    if let Some(cg) = cgroup {
        // Anything still running would keep adding CPU time.
        if let Err(e) = cg.kill_all() {
            tracing::warn!("killing what is left of the run: {e}");
        }
        let cg_cpu = cg.cputime();
        out.cputime = match (cg_cpu, rusage_cpu) {
            // BenchExec's check: the cgroup missing much of what wait
            // saw means something moved the processes out.
            (Some(c), Some(w)) if w > Duration::from_millis(500) && w.mul_f64(0.95) > c => {
                tracing::warn!(
                    "CPU time by wait4 {w:?} exceeds the cgroup's {c:?}: the measurement may be flawed"
                );
                w
            }
            (Some(c), _) => c,
            (None, w) => w.unwrap_or_default(),
        };
        out.cputime_per_cpu = cg.cputime_per_cpu();
        out.memory = cg.memory_peak();
        if let Some((r, w)) = cg.blkio() {
            out.blkio_read = Some(r);
            out.blkio_write = Some(w);
        }
    } else {
        out.cputime = rusage_cpu.unwrap_or_default();
    }

    out.status = if status_bytes.len() == 4 {
        let raw = i32::from_ne_bytes([
            status_bytes[0],
            status_bytes[1],
            status_bytes[2],
            status_bytes[3],
        ]);
        decode_wait_status(raw)
    } else if let Some(u) = usage {
        // Init died without reporting: the top process's own end.
        decode_wait_status(u.status)
    } else {
        tracing::warn!(
            "the sandbox's init reported no status and its top process {top_pid} is not rootcell's child"
        );
        if run.killed_at.is_some() {
            ExitStatus::Signaled(libc::SIGKILL)
        } else {
            ExitStatus::Exited(255)
        }
    };

    if run.reason.is_none() {
        run.reason = reason_after_the_fact(cgroup, limits, &out);
    }
    out.termination_reason = run.reason;
    Ok(out)
}

/// Limits the kernel enforced on its own, found afterwards: an OOM kill in
/// the memory cgroup (or, where the kernel has no counter, a peak at the
/// limit: BenchExec's rule for missed notifications); without a cgroup,
/// RLIMIT_CPU's SIGKILL.
fn reason_after_the_fact(
    cgroup: Option<&RunCgroup>,
    limits: &Limits,
    out: &Outcome,
) -> Option<TerminationReason> {
    if let (Some(cg), Some(limit)) = (cgroup, limits.memory) {
        match cg.oom_kills() {
            Some(n) if n > 0 => return Some(TerminationReason::Memory),
            None if out.memory.is_some_and(|m| m >= limit) => {
                return Some(TerminationReason::Memory)
            }
            _ => {}
        }
    }
    if cgroup.is_none() {
        if let Some(limit) = limits.cputime {
            let killed = matches!(
                out.status,
                ExitStatus::Signaled(s) if s == libc::SIGKILL || s == libc::SIGXCPU
            );
            // RLIMIT_CPU compares the tick-sampled CPU time, which runs a
            // little ahead of the precise one rusage reports.
            if killed && out.cputime >= limit.mul_f64(0.8) {
                return Some(TerminationReason::Cputime);
            }
        }
    }
    None
}

/// The state the loop's actions share.
struct Run<'a> {
    top: &'a OwnedFd,
    cgroup: Option<&'a RunCgroup>,
    reason: Option<TerminationReason>,
    killed_at: Option<Instant>,
}

impl Run<'_> {
    /// The first reason stays, as in BenchExec.
    fn set_reason(&mut self, reason: TerminationReason) {
        self.reason.get_or_insert(reason);
    }

    /// A limit was reached: record why and kill everything.
    fn end(&mut self, reason: TerminationReason) {
        self.set_reason(reason);
        self.kill_everything();
    }

    /// SIGKILL to the whole cgroup and to the top process (the sandbox's
    /// init: its pid namespace dies with it, also without a cgroup).
    fn kill_everything(&mut self) {
        if let Some(cg) = self.cgroup {
            cg.kill();
        }
        let _ = pidfd_send_signal(self.top, Signal::KILL);
        self.killed_at = Some(Instant::now());
    }
}

/// Reads the cgroup's CPU time and acts on the limits; returns when to
/// look again: the time left to the nearest limit spread over the CPUs
/// the run may use (so a busy run is not overshot), within
/// [`MIN_CPU_CHECK`, `MAX_CPU_CHECK`]; None when nothing is left to watch.
fn check_cputime(
    cg: &RunCgroup,
    limits: &Limits,
    ncpus: u32,
    soft_sent: &mut bool,
    run: &mut Run,
    now: Instant,
) -> Option<Instant> {
    let used = cg.cputime()?;
    if limits.cputime.is_some_and(|hard| used >= hard) {
        run.end(TerminationReason::Cputime);
        return None;
    }
    if !*soft_sent && limits.soft_cputime.is_some_and(|soft| used >= soft) {
        *soft_sent = true;
        run.set_reason(TerminationReason::CputimeSoft);
        let _ = pidfd_send_signal(run.top, Signal::TERM);
    }
    let left = [limits.cputime, limits.soft_cputime.filter(|_| !*soft_sent)]
        .into_iter()
        .flatten()
        .map(|l| l.saturating_sub(used))
        .min()?;
    Some(now + next_check_in(left, ncpus))
}

/// How long to wait before the next CPU-time reading, `left` being the
/// CPU time to the nearest limit.
fn next_check_in(left: Duration, ncpus: u32) -> Duration {
    (left / ncpus.max(1)).clamp(MIN_CPU_CHECK, MAX_CPU_CHECK)
}

/// Whether `fd` polls readable now.
fn poll_now(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

/// Reads what the status pipe has (up to the 4 bytes of a status); false
/// at end-of-file or on an error.
fn read_status(pipe: &OwnedFd, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 64];
    match rustix::io::read(pipe, &mut buf) {
        Ok(0) => false,
        Ok(n) => {
            let room = 4usize.saturating_sub(into.len());
            into.extend_from_slice(&buf[..n.min(room)]);
            true
        }
        Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => true,
        Err(_) => false,
    }
}

/// The next signal of a non-blocking signalfd (`ssi_signo`, the first
/// field of `struct signalfd_siginfo`, 128 bytes).
fn read_signal(fd: &OwnedFd) -> Option<i32> {
    let mut info = [0u8; 128];
    match rustix::io::read(fd.as_fd(), &mut info) {
        Ok(128) => Some(u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32),
        _ => None,
    }
}

/// `--maxOutputSize`: shrinks the output file after the run as runexec
/// does: nothing unless it is at least 500 bytes over `max`; else the
/// first `max/2` bytes (up to the end of that line) and the last `max/2`
/// bytes (from the start of the next line) are kept with `SHRINK_MARKER`
/// between them. True when the file was shrunk.
pub fn shrink_output(path: &Path, max: u64) -> Result<bool> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .ctx(|| format!("--maxOutputSize: {}", path.display()))?;
    shrink_file(&file, max).ctx(|| format!("--maxOutputSize: shrinking {}", path.display()))
}

/// `shrink_output` on an open file (read and write).
pub fn shrink_file(file: &File, max: u64) -> io::Result<bool> {
    let size = file.metadata()?.len();
    if size < max.saturating_add(500) {
        return Ok(false);
    }
    let half = max / 2;
    let Some(head_end) = newline_from(file, half, size)?.map(|p| p + 1) else {
        return Ok(false); // One long last line: nothing to cut at.
    };
    let tail_start = newline_from(file, size - half, size)?.map_or(size, |p| p + 1);
    let marker = SHRINK_MARKER.as_bytes();
    let write_at = head_end + marker.len() as u64;
    if write_at >= tail_start {
        return Ok(false); // The kept parts meet: nothing to remove.
    }
    file.write_all_at(marker, head_end)?;
    // Copy the tail forward onto the gap; writing stays behind reading.
    let mut buf = vec![0u8; 64 * 1024];
    let (mut from, mut to) = (tail_start, write_at);
    while from < size {
        let n = file.read_at(&mut buf, from)?;
        if n == 0 {
            break;
        }
        file.write_all_at(&buf[..n], to)?;
        from += n as u64;
        to += n as u64;
    }
    file.set_len(to)?;
    Ok(true)
}

/// Offset of the first `\n` at or after `from`.
fn newline_from(file: &File, from: u64, size: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = from;
    while at < size {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            break;
        }
        if let Some(i) = buf[..n].iter().position(|b| *b == b'\n') {
            return Ok(Some(at + i as u64));
        }
        at += n as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_decode() {
        assert_eq!(decode_wait_status(0), ExitStatus::Exited(0));
        assert_eq!(decode_wait_status(3 << 8), ExitStatus::Exited(3));
        assert_eq!(decode_wait_status(9), ExitStatus::Signaled(9));
        // Killed with a core dump (0x80).
        assert_eq!(decode_wait_status(0x80 | 11), ExitStatus::Signaled(11));
    }

    #[test]
    fn walltime_defaults_like_benchexec() {
        let mut l = Limits::default();
        assert_eq!(effective_walltime(&l), None);
        l.soft_cputime = Some(Duration::from_secs(5));
        assert_eq!(effective_walltime(&l), Some(Duration::from_secs(35)));
        l.cputime = Some(Duration::from_secs(10));
        assert_eq!(effective_walltime(&l), Some(Duration::from_secs(40)));
        l.walltime = Some(Duration::from_secs(2));
        assert_eq!(effective_walltime(&l), Some(Duration::from_secs(2)));
    }

    #[test]
    fn cpu_checks_come_closer_to_the_limit() {
        assert_eq!(next_check_in(Duration::from_secs(60), 2), MAX_CPU_CHECK);
        assert_eq!(
            next_check_in(Duration::from_millis(800), 2),
            Duration::from_millis(400)
        );
        assert_eq!(next_check_in(Duration::from_micros(10), 1), MIN_CPU_CHECK);
        assert_eq!(next_check_in(Duration::ZERO, 0), MIN_CPU_CHECK);
    }

    fn temp_file(tag: &str, content: &[u8]) -> (std::path::PathBuf, File) {
        let path =
            std::env::temp_dir().join(format!("rootcell-shrink-{tag}-{}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (path, f)
    }

    #[test]
    fn output_keeps_its_head_and_tail_like_runexec() {
        let text: String = (0..2000).map(|i| format!("line {i:05}\n")).collect();
        let (path, _) = temp_file("lines", text.as_bytes());
        // Within max + 500: left alone.
        assert!(!shrink_output(&path, text.len() as u64 - 400).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert!(shrink_output(&path, 1000).unwrap());
        let got = std::fs::read_to_string(&path).unwrap();
        let (head, tail) = got.split_once(SHRINK_MARKER).expect("the marker");
        // Whole lines: the head runs to the end of the line holding byte
        // 500, the tail starts at the line after byte len-500.
        assert!(text.starts_with(head) && head.ends_with('\n'), "{head:?}");
        assert!(head.len() >= 500 && head.len() < 500 + 11, "{}", head.len());
        assert!(
            text.ends_with(tail) && tail.starts_with("line "),
            "{tail:?}"
        );
        assert!(tail.len() <= 500 && tail.len() > 500 - 11, "{}", tail.len());
        assert!(got.len() < 1000 + SHRINK_MARKER.len() + 22);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn output_without_line_breaks_is_kept() {
        let blob = vec![b'x'; 10_000];
        let (path, f) = temp_file("blob", &blob);
        assert!(!shrink_file(&f, 1000).unwrap());
        assert_eq!(std::fs::read(&path).unwrap().len(), 10_000);
        // A line break only early on: the head ends there and, as in
        // runexec, the unfinished last line is dropped with the middle.
        let mut early = b"head\n".to_vec();
        early.extend(vec![b'y'; 10_000]);
        let (path2, f2) = temp_file("early", &early);
        assert!(shrink_file(&f2, 4).unwrap());
        let got = std::fs::read_to_string(&path2).unwrap();
        assert_eq!(got, format!("head\n{SHRINK_MARKER}"));
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&path2);
    }
}
