//! `rootcell update`: runc 1.1's flags (or a LinuxResources JSON) turned
//! into the `LinuxResources` to apply; only the values given change.

use std::io::Read;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use rootcell::container::Runtime;

use crate::cli::UpdateArgs;

pub fn run(runtime: &Runtime, args: &UpdateArgs) -> Result<()> {
    for (flag, value) in [
        ("--l3-cache-schema", &args.l3_cache_schema),
        ("--mem-bw-schema", &args.mem_bw_schema),
    ] {
        if value.is_some() {
            bail!(
                "{flag}: Intel RDT is not supported (rootcell does not implement linux.intelRdt)"
            );
        }
    }
    let res = match &args.resources {
        Some(source) => read_resources(source)?,
        None => from_flags(args)?,
    };
    for w in runtime.update(&args.id, &res)? {
        tracing::warn!("{w}");
        eprintln!("rootcell: warning: {w}");
    }
    Ok(())
}

/// `-r FILE` or `-r -` (stdin): the JSON, type errors naming its path.
fn read_resources(source: &str) -> Result<LinuxResources> {
    let mut text = Vec::new();
    if source == "-" {
        std::io::stdin()
            .read_to_end(&mut text)
            .context("--resources: reading stdin")?;
    } else {
        text = std::fs::read(source).with_context(|| format!("--resources {source}"))?;
    }
    Ok(rootcell::spec::parse_resources(&text, source)?)
}

/// The flags as a `LinuxResources` holding only what was given.
fn from_flags(args: &UpdateArgs) -> Result<LinuxResources> {
    let mut res = LinuxResources::default();
    let mem =
        |flag: &str, v: &Option<String>| v.as_deref().map(|v| memory_size(flag, v)).transpose();
    let mut memory = LinuxMemory::default();
    memory
        .set_limit(mem("--memory", &args.memory)?)
        .set_swap(mem("--memory-swap", &args.memory_swap)?)
        .set_reservation(mem("--memory-reservation", &args.memory_reservation)?)
        .set_kernel(mem("--kernel-memory", &args.kernel_memory)?)
        .set_kernel_tcp(mem("--kernel-memory-tcp", &args.kernel_memory_tcp)?);
    if memory != LinuxMemory::default() {
        res.set_memory(Some(memory));
    }
    let mut cpu = LinuxCpu::default();
    cpu.set_shares(number("--cpu-share", &args.cpu_share)?)
        .set_quota(number("--cpu-quota", &args.cpu_quota)?)
        .set_period(number("--cpu-period", &args.cpu_period)?)
        .set_realtime_period(number("--cpu-rt-period", &args.cpu_rt_period)?)
        .set_realtime_runtime(number("--cpu-rt-runtime", &args.cpu_rt_runtime)?)
        .set_cpus(args.cpuset_cpus.clone())
        .set_mems(args.cpuset_mems.clone());
    if cpu != LinuxCpu::default() {
        res.set_cpu(Some(cpu));
    }
    if let Some(limit) = number::<i64>("--pids-limit", &args.pids_limit)? {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        res.set_pids(Some(pids));
    }
    if let Some(weight) = number::<u16>("--blkio-weight", &args.blkio_weight)? {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(weight));
        res.set_block_io(Some(b));
    }
    Ok(res)
}

/// A decimal number flag.
fn number<T: std::str::FromStr>(flag: &str, value: &Option<String>) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    value
        .as_deref()
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|e| anyhow::anyhow!("{flag}: invalid value {v:?}: {e}"))
        })
        .transpose()
}

/// A memory size as runc reads it (go-units' `RAMInBytes`): `-1` is
/// unlimited; otherwise a decimal number, an optional space, then an
/// optional unit k, m, g, t or p (any case, powers of 1024), optionally
/// followed by `i` and/or `b` (`512m`, `1.5g`, `64KiB`, `100b`). The
/// result is truncated to whole bytes.
fn memory_size(flag: &str, text: &str) -> Result<i64> {
    if text == "-1" {
        return Ok(-1);
    }
    let invalid = || anyhow::anyhow!("{flag}: invalid size: {text:?}");
    let num_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (num, rest) = text.split_at(num_len);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(invalid());
    }
    let value: f64 = num.parse().map_err(|_| invalid())?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let scale = match chars.peek().map(char::to_ascii_lowercase) {
        Some(u @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            chars.next();
            let power = "kmgtp".find(u).unwrap_or(0) as i32 + 1;
            1024f64.powi(power)
        }
        _ => 1.0,
    };
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(invalid());
    }
    let bytes = value * scale;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(anyhow::anyhow!("{flag}: {text:?} is too large"));
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        let ok = |t: &str| memory_size("--memory", t).unwrap();
        assert_eq!(ok("-1"), -1);
        assert_eq!(ok("100"), 100);
        assert_eq!(ok("512m"), 512 << 20);
        assert_eq!(ok("512M"), 512 << 20);
        assert_eq!(ok("1g"), 1 << 30);
        assert_eq!(ok("1.5k"), 1536);
        assert_eq!(ok("64KiB"), 64 << 10);
        assert_eq!(ok("10 mb"), 10 << 20);
        assert_eq!(ok("100b"), 100);
        assert_eq!(ok("2t"), 2 << 40);
        for bad in [
            "", "-2", "m", "12x", "1.2.3m", "5mm", ".5m", "1e3", " 5m", "5m ",
        ] {
            assert!(memory_size("--memory", bad).is_err(), "{bad:?}");
        }
    }
}
