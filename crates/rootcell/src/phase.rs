//! Phase timestamps for performance work: with `ROOTCELL_PHASES=1` in its
//! environment, rootcell writes one line per phase boundary to stderr,
//! `rootcell-phase <pid> <monotonic seconds> <name>`, from every process it
//! runs (the runtime, a sandbox's init, the command just before `execve`,
//! or before the seccomp filter when there is one: no mark runs under it).
//! `bench/phases.sh` averages the gaps over many runs. Off (one cached
//! environment lookup per mark) otherwise.
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

/// Marks the end of phase `name` in this process.
pub fn mark(name: &str) {
    if !enabled() {
        return;
    }
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let mut line = [0u8; 512];
    let mut cursor = std::io::Cursor::new(&mut line[..]);
    let complete = writeln!(
        cursor,
        "rootcell-phase {} {}.{:09} {name}",
        std::process::id(),
        now.tv_sec,
        now.tv_nsec
    )
    .is_ok();
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
