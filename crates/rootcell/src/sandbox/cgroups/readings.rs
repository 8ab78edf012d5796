//! Parsers of the cgroup files a run's measurements come from.

use super::*;

/// `usage_usec` of a v2 `cpu.stat` (a v1 `cpu.stat` has none).
pub(super) fn parse_cpu_stat_usage(text: &str) -> Option<Duration> {
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_micros)
}

/// `cpuacct.usage_percpu`: nanoseconds per CPU number, zeros left out.
pub(super) fn parse_percpu(text: &str) -> Vec<(u32, Duration)> {
    text.split_whitespace()
        .enumerate()
        .filter_map(|(cpu, v)| {
            let ns = v.parse::<u64>().ok().filter(|ns| *ns > 0)?;
            Some((u32::try_from(cpu).ok()?, Duration::from_nanos(ns)))
        })
        .collect()
}

/// The `oom_kill` line of v1 `memory.oom_control` or v2 `memory.events`.
pub(super) fn parse_oom_kill(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

/// v1 `blkio.throttle.io_service_bytes`: `MAJ:MIN Read|Write|… BYTES`
/// lines (and a `Total` line), summed over devices.
pub(super) fn parse_blkio_v1(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [_dev, kind, bytes] = parts[..] {
            let Ok(n) = bytes.parse::<u64>() else {
                continue;
            };
            match kind {
                "Read" => read = read.saturating_add(n),
                "Write" => write = write.saturating_add(n),
                _ => {}
            }
        }
    }
    (read, write)
}

/// v2 `io.stat`: `MAJ:MIN rbytes=… wbytes=… …` per device, summed.
pub(super) fn parse_io_stat(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for word in text.split_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        let Ok(n) = value.parse::<u64>() else {
            continue;
        };
        match key {
            "rbytes" => read = read.saturating_add(n),
            "wbytes" => write = write.saturating_add(n),
            _ => {}
        }
    }
    (read, write)
}
