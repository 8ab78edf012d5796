//! Phase timestamps for performance work: with `ROOTCELL_PHASES=1` in its
//! environment, rootcell writes one line per phase boundary to stderr,
//! `rootcell-phase <pid> <monotonic seconds> <name>`, from every process it
//! runs (the runtime, a sandbox's init, the command just before `execve`,
//! or before the seccomp filter when there is one: no mark runs under it).
//! `bench/phases.sh` averages the gaps over many runs. Off (one cached
//! environment lookup per mark) otherwise.
//!
//! With `ROOTCELL_RSS=1`, each process of a container's start also writes
//! its peak resident set size once, at its last mark,
//! `rootcell-rss <pid> <KiB> <who>`: the runtime at exit (and before its
//! re-exec from a protected copy: `VmHWM` of `/proc/self/status`), stage 1
//! before it exits, init (or an `exec`'s process) just before `execve`
//! and before the seccomp filter (`getrusage`, see
//! `process::sys::peak_rss_kib`). `bench/rss.sh` collects them. Off (one
//! cached environment lookup per report) otherwise.
//!
//! The line is formatted on the stack and written at once (stderr is
//! unbuffered): marks are also taken in forked children.

use std::io::Write;
use std::sync::OnceLock;

static ENABLED: OnceLock<bool> = OnceLock::new();

/// Whether phase marks are written (`ROOTCELL_PHASES` set and not `0`).
pub fn enabled() -> bool {
    *ENABLED.get_or_init(|| std::env::var_os("ROOTCELL_PHASES").is_some_and(|v| v != "0"))
}

static RSS: OnceLock<bool> = OnceLock::new();

/// Whether peak RSS reports are written (`ROOTCELL_RSS` set and not `0`).
pub fn rss_enabled() -> bool {
    *RSS.get_or_init(|| std::env::var_os("ROOTCELL_RSS").is_some_and(|v| v != "0"))
}

/// Marks the end of phase `name` in this process.
pub fn mark(name: &str) {
    if !enabled() {
        return;
    }
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    write_line(format_args!(
        "rootcell-phase {} {}.{:09} {name}",
        std::process::id(),
        now.tv_sec,
        now.tv_nsec
    ));
}

/// Reports the peak RSS of this process, forked by rootcell and not
/// re-executed since (stage 1, init before `execve`), as `who`.
pub fn report_rss(who: &str) {
    if !rss_enabled() {
        return;
    }
    match crate::process::sys::peak_rss_kib() {
        Ok(kib) => rss_line(kib, who),
        Err(e) => write_line(format_args!(
            "rootcell-rss {} ? {who}: {e}",
            std::process::id()
        )),
    }
}

/// Reports the peak RSS of the runtime process as `who`: `VmHWM` of
/// `/proc/self/status`, which (unlike `getrusage`) leaves out the peak of
/// the image that ran before the last `execve` (the caller's fork of itself).
pub fn report_runtime_rss(who: &str) {
    if !rss_enabled() {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    match kib {
        Some(kib) => rss_line(kib, who),
        None => write_line(format_args!(
            "rootcell-rss {} ? {who}: no VmHWM in /proc/self/status",
            std::process::id()
        )),
    }
}

fn rss_line(kib: u64, who: &str) {
    write_line(format_args!(
        "rootcell-rss {} {kib} {who}",
        std::process::id()
    ));
}

/// Writes one diagnostic line to stderr in one `write`.
fn write_line(args: std::fmt::Arguments<'_>) {
    let mut line = [0u8; 512];
    let mut cursor = std::io::Cursor::new(&mut line[..]);
    let complete = cursor.write_fmt(args).is_ok() && cursor.write_all(b"\n").is_ok();
    let mut len = cursor.position() as usize;
    if !complete {
        // A long name is cut, the line still ends.
        len = len.min(line.len() - 1);
        line[len] = b'\n';
        len += 1;
    }
    // Best effort: a diagnostic must never fail the run.
    let _ = std::io::stderr().write_all(&line[..len]);
}
