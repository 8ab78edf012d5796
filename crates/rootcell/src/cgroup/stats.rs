//! Resource usage of a container's cgroup, as `events` reports it: the
//! JSON shape of runc's `types.Stats` (cpu, cpuset, memory, pids, blkio,
//! hugetlb), read from the v1 controller files on a v1 or hybrid host and
//! from the v2 files on a pure v2 host. Missing files are missing data,
//! not errors: a controller may not be mounted or delegated.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// Clock ticks per second of `cpuacct.stat` (USER_HZ, 100 on Linux).
const USER_HZ: u64 = 100;

/// The stats object of one container (`data` of a `stats` event).
pub fn collect(dirs: &[PathBuf]) -> Value {
    let v1: Vec<&PathBuf> = dirs.iter().filter(|d| !is_v2(d)).collect();
    if v1.is_empty() {
        dirs.first().map_or_else(empty, |d| collect_v2(d))
    } else {
        collect_v1(&v1)
    }
}

/// A v2 directory has `cgroup.controllers`; v1 ones never do.
fn is_v2(dir: &Path) -> bool {
    dir.join("cgroup.controllers").exists()
}

/// runc prints these keys even when it has nothing for them.
fn empty() -> Value {
    json!({
        "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
        "memory": {},
        "pids": {},
        "blkio": {},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": null,
    })
}

/// The first of `dirs` holding `file`: the directory of the controller.
fn with_file<'a>(dirs: &[&'a PathBuf], file: &str) -> Option<&'a PathBuf> {
    dirs.iter().copied().find(|d| d.join(file).exists())
}

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// A file holding one number (`max` reads as u64::MAX, as runc does).
fn num(dir: &Path, file: &str) -> Option<u64> {
    let text = read(dir, file)?;
    match text.trim() {
        "max" => Some(u64::MAX),
        t => t.parse().ok(),
    }
}

/// `key value` lines (memory.stat, cpu.stat, memory.events).
fn keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Inserts `value` unless it is zero (Go's `omitempty`).
fn put_nonzero(obj: &mut Map<String, Value>, key: &str, value: Option<u64>) {
    if let Some(v) = value.filter(|v| *v != 0) {
        obj.insert(key.into(), json!(v));
    }
}

fn collect_v1(dirs: &[&PathBuf]) -> Value {
    let mut out = empty();
    out["cpu"] = cpu_v1(dirs);
    if let Some(cs) = with_file(dirs, "cpuset.cpus") {
        out["cpuset"] = cpuset_v1(cs);
    }
    if let Some(mem) = with_file(dirs, "memory.usage_in_bytes") {
        out["memory"] = memory_v1(mem);
    }
    if let Some(p) = with_file(dirs, "pids.current") {
        out["pids"] = pids(p);
    }
    if let Some(b) = dirs.iter().copied().find(|d| {
        d.join("blkio.throttle.io_serviced").exists() || d.join("blkio.reset_stats").exists()
    }) {
        out["blkio"] = blkio_v1(b);
    }
    if let Some(h) = dirs
        .iter()
        .copied()
        .find(|d| !hugetlb_sizes(d, ".usage_in_bytes").is_empty())
    {
        let mut all = Map::new();
        for size in hugetlb_sizes(h, ".usage_in_bytes") {
            let f = |s: &str| num(h, &format!("hugetlb.{size}.{s}"));
            let mut e = Map::new();
            put_nonzero(&mut e, "usage", f("usage_in_bytes"));
            put_nonzero(&mut e, "max", f("max_usage_in_bytes"));
            e.insert("failcnt".into(), json!(f("failcnt").unwrap_or(0)));
            all.insert(size, Value::Object(e));
        }
        out["hugetlb"] = Value::Object(all);
    }
    out
}

/// cpuacct (usage, per cpu, user/system) and cpu (throttling), v1.
fn cpu_v1(dirs: &[&PathBuf]) -> Value {
    let mut usage = Map::new();
    let mut user = 0;
    let mut kernel = 0;
    if let Some(d) = with_file(dirs, "cpuacct.usage") {
        put_nonzero(&mut usage, "total", num(d, "cpuacct.usage"));
        let list = |f: &str| -> Vec<u64> {
            read(d, f)
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        };
        let percpu = list("cpuacct.usage_percpu");
        if !percpu.is_empty() {
            usage.insert("percpu".into(), json!(percpu));
        }
        // `cpu user system` per cpu, in nanoseconds.
        let rows: Vec<Vec<u64>> = read(d, "cpuacct.usage_all")
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .filter(|r: &Vec<u64>| r.len() == 3)
            .collect();
        if !rows.is_empty() {
            usage.insert(
                "percpu_kernel".into(),
                json!(rows.iter().map(|r| r[2]).collect::<Vec<_>>()),
            );
            usage.insert(
                "percpu_user".into(),
                json!(rows.iter().map(|r| r[1]).collect::<Vec<_>>()),
            );
        }
        // `user N` / `system N` in clock ticks.
        let ticks = keyed(&read(d, "cpuacct.stat").unwrap_or_default());
        let ns = |k: &str| ticks.get(k).copied().unwrap_or(0) * (1_000_000_000 / USER_HZ);
        user = ns("user");
        kernel = ns("system");
    }
    usage.insert("kernel".into(), json!(kernel));
    usage.insert("user".into(), json!(user));
    let mut throttling = Map::new();
    if let Some(d) = with_file(dirs, "cpu.cfs_period_us") {
        let s = keyed(&read(d, "cpu.stat").unwrap_or_default());
        put_nonzero(&mut throttling, "periods", s.get("nr_periods").copied());
        put_nonzero(
            &mut throttling,
            "throttledPeriods",
            s.get("nr_throttled").copied(),
        );
        put_nonzero(
            &mut throttling,
            "throttledTime",
            s.get("throttled_time").copied(),
        );
    }
    json!({"usage": usage, "throttling": throttling})
}

/// cpuset v1: the cpus and memory nodes, and the flag files.
fn cpuset_v1(dir: &Path) -> Value {
    let mut out = Map::new();
    for (key, file) in [("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")] {
        out.insert(
            key.into(),
            json!(parse_list(&read(dir, file).unwrap_or_default())),
        );
    }
    for flag in [
        "cpu_exclusive",
        "mem_hardwall",
        "mem_exclusive",
        "memory_migrate",
        "memory_spread_page",
        "memory_spread_slab",
        "memory_pressure",
        "sched_load_balance",
    ] {
        out.insert(
            flag.into(),
            json!(num(dir, &format!("cpuset.{flag}")).unwrap_or(0)),
        );
    }
    let relax = read(dir, "cpuset.sched_relax_domain_level")
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    out.insert("sched_relax_domain_level".into(), json!(relax));
    Value::Object(out)
}

/// A cpu list such as `0-3,8` as its numbers.
fn parse_list(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
                    out.extend(a..=b.min(a.saturating_add(4096)));
                }
            }
            None => out.extend(part.parse::<u64>().ok()),
        }
    }
    out
}

/// memory v1: usage, swap (memsw: memory and swap together), kernel and
/// kernel TCP entries, and memory.stat as `raw`.
fn memory_v1(dir: &Path) -> Value {
    let entry = |prefix: &str| -> Option<Value> {
        let f = |s: &str| num(dir, &format!("{prefix}{s}"));
        let limit = f("limit_in_bytes")?;
        let mut e = Map::new();
        e.insert("limit".into(), json!(limit));
        put_nonzero(&mut e, "usage", f("usage_in_bytes"));
        put_nonzero(&mut e, "max", f("max_usage_in_bytes"));
        e.insert("failcnt".into(), json!(f("failcnt").unwrap_or(0)));
        Some(Value::Object(e))
    };
    let raw = keyed(&read(dir, "memory.stat").unwrap_or_default());
    let mut out = Map::new();
    put_nonzero(&mut out, "cache", raw.get("cache").copied());
    for (key, prefix) in [
        ("usage", "memory."),
        ("swap", "memory.memsw."),
        ("kernel", "memory.kmem."),
        ("kernelTCP", "memory.kmem.tcp."),
    ] {
        if let Some(e) = entry(prefix) {
            out.insert(key.into(), e);
        }
    }
    if !raw.is_empty() {
        out.insert("raw".into(), json!(raw));
    }
    Value::Object(out)
}

/// pids (v1 and v2 alike): current count and limit (none: omitted).
fn pids(dir: &Path) -> Value {
    let mut out = Map::new();
    put_nonzero(&mut out, "current", num(dir, "pids.current"));
    let limit = num(dir, "pids.max").filter(|l| *l != u64::MAX);
    put_nonzero(&mut out, "limit", limit);
    Value::Object(out)
}

/// blkio v1: the CFQ/BFQ recursive files when the scheduler has them,
/// else the throttle ones (what runc falls back to).
fn blkio_v1(dir: &Path) -> Value {
    let mut out = Map::new();
    let pick = |names: &[&str]| names.iter().find_map(|n| read(dir, &format!("blkio.{n}")));
    let table: [(&str, &[&str]); 8] = [
        (
            "ioServiceBytesRecursive",
            &[
                "io_service_bytes_recursive",
                "bfq.io_service_bytes_recursive",
                "throttle.io_service_bytes_recursive",
                "throttle.io_service_bytes",
            ],
        ),
        (
            "ioServicedRecursive",
            &[
                "io_serviced_recursive",
                "bfq.io_serviced_recursive",
                "throttle.io_serviced_recursive",
                "throttle.io_serviced",
            ],
        ),
        ("ioQueueRecursive", &["io_queued_recursive"]),
        ("ioServiceTimeRecursive", &["io_service_time_recursive"]),
        ("ioWaitTimeRecursive", &["io_wait_time_recursive"]),
        ("ioMergedRecursive", &["io_merged_recursive"]),
        ("ioTimeRecursive", &["time_recursive"]),
        ("sectorsRecursive", &["sectors_recursive"]),
    ];
    for (key, names) in table {
        let entries = pick(names).map(|t| blkio_entries(&t)).unwrap_or_default();
        if !entries.is_empty() {
            out.insert(key.into(), Value::Array(entries));
        }
    }
    Value::Object(out)
}

/// Lines `MAJ:MIN Op Value` (or `MAJ:MIN Value`); the `Total` line has no
/// device and is skipped.
fn blkio_entries(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let (major, minor) = fields.first()?.split_once(':')?;
            let (op, value) = match fields.len() {
                3 => (fields[1], fields[2]),
                2 => ("", fields[1]),
                _ => return None,
            };
            Some(blkio_entry(
                major.parse().ok()?,
                minor.parse().ok()?,
                op,
                value.parse().ok()?,
            ))
        })
        .collect()
}

fn blkio_entry(major: u64, minor: u64, op: &str, value: u64) -> Value {
    let mut e = Map::new();
    put_nonzero(&mut e, "major", Some(major));
    put_nonzero(&mut e, "minor", Some(minor));
    if !op.is_empty() {
        e.insert("op".into(), json!(op));
    }
    put_nonzero(&mut e, "value", Some(value));
    Value::Object(e)
}

/// Page sizes (`2MB`, `1GB`) of the hugetlb files ending in `suffix`.
fn hugetlb_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            (!size.contains('.')).then(|| size.to_string())
        })
        .collect();
    out.sort();
    out
}

/// Everything from one v2 directory, converted as runc 1.1 converts it.
fn collect_v2(dir: &Path) -> Value {
    let mut out = empty();
    if let Some(text) = read(dir, "cpu.stat") {
        let s = keyed(&text);
        let us = |k: &str| s.get(k).map(|v| v * 1000);
        let mut usage = Map::new();
        put_nonzero(&mut usage, "total", us("usage_usec"));
        usage.insert("kernel".into(), json!(us("system_usec").unwrap_or(0)));
        usage.insert("user".into(), json!(us("user_usec").unwrap_or(0)));
        let mut throttling = Map::new();
        put_nonzero(&mut throttling, "periods", s.get("nr_periods").copied());
        put_nonzero(
            &mut throttling,
            "throttledPeriods",
            s.get("nr_throttled").copied(),
        );
        put_nonzero(&mut throttling, "throttledTime", us("throttled_usec"));
        out["cpu"] = json!({"usage": usage, "throttling": throttling});
    }
    if dir.join("memory.current").exists() {
        out["memory"] = memory_v2(dir);
    }
    if dir.join("pids.current").exists() {
        out["pids"] = pids(dir);
    }
    if let Some(text) = read(dir, "io.stat") {
        out["blkio"] = io_v2(&text);
    }
    let sizes = hugetlb_sizes(dir, ".current");
    if !sizes.is_empty() {
        let mut all = Map::new();
        for size in sizes {
            let mut e = Map::new();
            put_nonzero(
                &mut e,
                "usage",
                num(dir, &format!("hugetlb.{size}.current")),
            );
            let events = keyed(&read(dir, &format!("hugetlb.{size}.events")).unwrap_or_default());
            e.insert(
                "failcnt".into(),
                json!(events.get("max").copied().unwrap_or(0)),
            );
            all.insert(size, Value::Object(e));
        }
        out["hugetlb"] = Value::Object(all);
    }
    out
}

/// memory v2: usage and limit, swap reported with memory included (the v1
/// meaning, as runc does), failcnt from `memory.events`' `max`, and
/// memory.stat as `raw` (`file` is the page cache).
fn memory_v2(dir: &Path) -> Value {
    let usage = num(dir, "memory.current").unwrap_or(0);
    let limit = num(dir, "memory.max").unwrap_or(u64::MAX);
    let events = keyed(&read(dir, "memory.events").unwrap_or_default());
    let raw = keyed(&read(dir, "memory.stat").unwrap_or_default());
    let mut out = Map::new();
    put_nonzero(&mut out, "cache", raw.get("file").copied());
    let mut u = Map::new();
    u.insert("limit".into(), json!(limit));
    put_nonzero(&mut u, "usage", Some(usage));
    u.insert(
        "failcnt".into(),
        json!(events.get("max").copied().unwrap_or(0)),
    );
    out.insert("usage".into(), Value::Object(u));
    if let Some(swap) = num(dir, "memory.swap.current") {
        let swap_limit = num(dir, "memory.swap.max").unwrap_or(u64::MAX);
        let mut s = Map::new();
        s.insert(
            "limit".into(),
            json!(if swap_limit == u64::MAX {
                swap_limit
            } else {
                swap_limit.saturating_add(limit)
            }),
        );
        put_nonzero(&mut s, "usage", Some(swap + usage));
        s.insert("failcnt".into(), json!(0));
        out.insert("swap".into(), Value::Object(s));
    }
    if !raw.is_empty() {
        out.insert("raw".into(), json!(raw));
    }
    Value::Object(out)
}

/// io.stat (`MAJ:MIN rbytes=… wbytes=… rios=… wios=…`) as runc's blkio
/// service bytes and serviced entries.
fn io_v2(text: &str) -> Value {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in fields {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse() else { continue };
            match k {
                "rbytes" => bytes.push(blkio_entry(major, minor, "Read", v)),
                "wbytes" => bytes.push(blkio_entry(major, minor, "Write", v)),
                "rios" => ios.push(blkio_entry(major, minor, "Read", v)),
                "wios" => ios.push(blkio_entry(major, minor, "Write", v)),
                _ => {}
            }
        }
    }
    let mut out = Map::new();
    if !bytes.is_empty() {
        out.insert("ioServiceBytesRecursive".into(), Value::Array(bytes));
    }
    if !ios.is_empty() {
        out.insert("ioServicedRecursive".into(), Value::Array(ios));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_blkio_lines() {
        assert_eq!(parse_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert_eq!(parse_list(""), Vec::<u64>::new());
        let e = blkio_entries("8:0 Read 10\n8:0 Write 0\nTotal 10\n");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0], json!({"major": 8, "op": "Read", "value": 10}));
        let v = io_v2("8:16 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n");
        assert_eq!(v["ioServiceBytesRecursive"][0]["value"], 4096);
        assert_eq!(v["ioServicedRecursive"][0]["minor"], 16);
    }

    #[test]
    fn v1_and_v2_directories() {
        let tmp = std::env::temp_dir().join(format!("rootcell-stats-{}", std::process::id()));
        let (mem, v2) = (tmp.join("memory"), tmp.join("v2"));
        fs::create_dir_all(&mem).unwrap();
        fs::create_dir_all(&v2).unwrap();
        for (f, t) in [
            ("memory.usage_in_bytes", "4096\n"),
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.failcnt", "0\n"),
            ("memory.stat", "cache 8192\nrss 4096\n"),
        ] {
            fs::write(mem.join(f), t).unwrap();
        }
        let s = collect(std::slice::from_ref(&mem));
        assert_eq!(s["memory"]["usage"]["usage"], 4096);
        assert_eq!(s["memory"]["cache"], 8192);
        assert_eq!(s["memory"]["raw"]["rss"], 4096);
        assert!(s["memory"].get("swap").is_none());
        for (f, t) in [
            ("cgroup.controllers", "memory pids\n"),
            ("cpu.stat", "usage_usec 3\nuser_usec 2\nsystem_usec 1\n"),
            ("memory.current", "100\n"),
            ("memory.max", "max\n"),
            ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
            ("pids.current", "2\n"),
            ("pids.max", "max\n"),
        ] {
            fs::write(v2.join(f), t).unwrap();
        }
        let s = collect(std::slice::from_ref(&v2));
        assert_eq!(s["cpu"]["usage"]["total"], 3000);
        assert_eq!(s["cpu"]["usage"]["kernel"], 1000);
        assert_eq!(s["memory"]["usage"]["limit"], u64::MAX);
        assert_eq!(s["memory"]["usage"]["failcnt"], 2);
        assert_eq!(s["pids"], json!({"current": 2}));
        let _ = fs::remove_dir_all(&tmp);
    }
}
