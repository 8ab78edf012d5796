//! `rootcell events`: one JSON object per line, as runc prints them.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rootcell::container::Runtime;

pub fn run(runtime: &Runtime, id: &str, stats: bool, interval: &str) -> Result<()> {
    let interval = parse_duration(interval).with_context(|| format!("--interval {interval:?}"))?;
    if stats {
        let event = runtime.stats(id)?;
        return super::emit(&format!("{}\n", serde_json::to_string(&event)?));
    }
    let mut emit = |event: &serde_json::Value| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{event}")?;
        out.flush()
    };
    match runtime.events(id, interval, &mut emit) {
        // The reader went away (`| head -1`): not an error.
        Err(rootcell::Error::Io { cause, .. })
            if cause.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(())
        }
        other => Ok(other?),
    }
}

/// A Go duration, as runc's `--interval` takes it: a sequence of decimal
/// numbers with units `ns`, `us` (`µs`), `ms`, `s`, `m`, `h` (`1m30s`,
/// `0.5s`), greater than zero.
fn parse_duration(text: &str) -> Result<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        bail!("empty duration");
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let value: f64 = num
            .parse()
            .with_context(|| format!("{num:?} is not a number"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => bail!("missing unit (ns, us, ms, s, m, h)"),
            other => bail!("unknown unit {other:?}"),
        };
        total += value * scale;
        rest = next;
    }
    if total <= 0.0 || !total.is_finite() {
        bail!("the interval must be greater than 0");
    }
    Duration::try_from_secs_f64(total).context("out of range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        for bad in ["", "5", "0s", "-1s", "5x", "s", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
