//! Sizes, durations and CPU lists as BenchExec's users write them
//! (`2GB`, `512MiB`, `90s`, `15min`, `0,2-3`). Pure parsing; the caller
//! names the flag in its error.

use std::time::Duration;

/// Bytes from a plain number or one with an SI (`kB`, `MB`, `GB`, `TB`,
/// powers of 1000) or IEC (`KiB`, `MiB`, `GiB`, `TiB`, powers of 1024)
/// suffix; `B` means bytes. Fractions are allowed with a suffix (`1.5GB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    not_negative(text)?;
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "k" | "kB" | "KB" | "K" => 1000,
        "M" | "MB" => 1000u64.pow(2),
        "G" | "GB" => 1000u64.pow(3),
        "T" | "TB" => 1000u64.pow(4),
        "Ki" | "KiB" => 1 << 10,
        "Mi" | "MiB" => 1 << 20,
        "Gi" | "GiB" => 1 << 30,
        "Ti" | "TiB" => 1 << 40,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    scaled(number, factor as f64).ok_or_else(|| format!("{text:?} is not a size"))
}

/// A duration from a plain number of seconds or one with a suffix `s`,
/// `min`, `h` or `d` (`1.5s`, `15min`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    not_negative(text)?;
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use s, min, h or d)"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{text:?} is not a duration"))?;
    // Capped so that `Instant + limit` (the wall-time deadline) and
    // `limit + 30 s` cannot overflow and panic.
    Duration::try_from_secs_f64(value * factor)
        .ok()
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| {
            format!(
                "{text:?} is too long (at most {} s)",
                MAX_DURATION.as_secs()
            )
        })
}

/// The longest duration accepted (about 136 years).
const MAX_DURATION: Duration = Duration::from_secs(u32::MAX as u64);

/// A list of numbers and ranges, as in cpuset files: `0,2-3,8`. Sorted,
/// without duplicates; at most 4096 entries (more CPUs than Linux has).
pub fn parse_number_list(text: &str) -> Result<Vec<u32>, String> {
    not_negative(text.trim())?;
    let mut out = std::collections::BTreeSet::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!("{text:?} has an empty entry"));
        }
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a, text)?, number(b, text)?),
            None => (number(part, text)?, number(part, text)?),
        };
        if first > last {
            return Err(format!("{text:?}: range {part:?} goes backwards"));
        }
        if last >= 4096 {
            return Err(format!("{text:?}: {last} is out of range"));
        }
        out.extend(first..=last);
    }
    Ok(out.into_iter().collect())
}

/// A user or group id: a plain number below 4294967295 (`(uid_t) -1`
/// means "no id" to the kernel and is refused, as any negative number).
/// The error is completed by the caller ("... is not a valid user id").
pub fn parse_id(text: &str) -> Result<u32, String> {
    let t = text.trim();
    t.parse::<u32>()
        .ok()
        .filter(|id| *id != u32::MAX)
        .ok_or_else(|| format!("{text:?} is not a valid"))
}

/// Negative values are refused with their own message (`-1` would else
/// read as an unknown unit).
fn not_negative(text: &str) -> Result<(), String> {
    if let Some(rest) = text.strip_prefix('-') {
        if rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return Err(format!("{text:?} is negative"));
        }
        return Err(format!("{text:?} is not a value (is the value missing?)"));
    }
    Ok(())
}

fn number(s: &str, whole: &str) -> Result<u32, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{whole:?}: {s:?} is not a number"))
}

fn scaled(number: &str, factor: f64) -> Option<u64> {
    if !number.contains('.') {
        return number.parse::<u64>().ok()?.checked_mul(factor as u64);
    }
    let value: f64 = number.parse().ok()?;
    let bytes = value * factor;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("123B"), Ok(123));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5kB"), Ok(1500));
        assert_eq!(parse_size("1kB"), Ok(1000));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999TB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("15min"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("1 fortnight").is_err());
        assert!(parse_duration("-3s").is_err());
        // Not a panic later (`Instant + limit`): refused here.
        assert!(parse_duration("9999999999999999999").is_err());
        assert!(parse_duration("99999999999d").is_err());
    }

    #[test]
    fn number_lists() {
        assert_eq!(parse_number_list("0"), Ok(vec![0]));
        assert_eq!(parse_number_list("0,2-3"), Ok(vec![0, 2, 3]));
        assert_eq!(parse_number_list("3,1-2,2"), Ok(vec![1, 2, 3]));
        assert!(parse_number_list("1,,2").is_err());
        assert!(parse_number_list("3-1").is_err());
        assert!(parse_number_list("a").is_err());
        assert!(parse_number_list("0-99999").is_err());
        assert_eq!(parse_number_list("-1"), Err("\"-1\" is negative".into()));
    }

    #[test]
    fn negative_values_say_so() {
        assert_eq!(parse_size("-1"), Err("\"-1\" is negative".into()));
        assert_eq!(parse_duration("-1"), Err("\"-1\" is negative".into()));
        assert_eq!(
            parse_duration(" -0.5s"),
            Err("\"-0.5s\" is negative".into())
        );
        assert!(parse_size("--timelimit").unwrap_err().contains("missing"));
    }

    #[test]
    fn ids() {
        assert_eq!(parse_id("0"), Ok(0));
        assert_eq!(parse_id("1000"), Ok(1000));
        assert_eq!(parse_id("4294967294"), Ok(u32::MAX - 1));
        for bad in ["-1", "4294967295", "99999999999", "", "x", "1.5"] {
            assert!(parse_id(bad).is_err(), "{bad}");
        }
    }
}
