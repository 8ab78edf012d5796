//! `linux.resources` as plain data: the cgroup files to write and their
//! values, converted for the host's cgroup version the way runc 1.1 does.
//! No syscalls; `cgroup::apply_resources` writes the plan.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory,
    LinuxNetwork, LinuxResources,
};
use serde::Serialize;

use crate::error::{Error, Result};

use super::process::parse_cpu_list;

/// Which cgroup interface the limits are written for. The hybrid layout
/// counts as v1: its cgroup2 tree has no controllers (as runc sees it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    #[default]
    V1,
    V2,
}

/// A candidate file and the value to write there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupFile {
    pub name: String,
    pub value: String,
}

/// One setting: the first of `files` that exists in the container's cgroup
/// of `controller` is written (`blkio.weight` on CFQ, `blkio.bfq.weight`
/// on BFQ).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupWrite {
    /// The config field it comes from, for errors
    /// (`linux.resources.memory.limit`).
    pub field: String,
    /// The controller the file belongs to (`memory`, `cpu`…); on v2 an
    /// empty name is a core file (`cgroup.*`), always present.
    pub controller: String,
    pub files: Vec<CgroupFile>,
}

/// Everything `linux.resources` asks for, in the order it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupResources {
    pub version: CgroupVersion,
    pub writes: Vec<CgroupWrite>,
    /// v2 device rules, loaded as an eBPF program after the writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_filter: Option<DeviceFilter>,
    /// Accepted but not applied (kernel memory, v1-only knobs on v2…).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Rootless chroot isolation: a limit the caller cannot write is an
    /// error naming its field, unless the annotation
    /// `org.rootcell.chroot.ignore-resources: "true"` is set.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refuse_unwritable: bool,
    /// Chroot isolation: a cgroup file the runtime may not write (a
    /// read-only or undelegated tree, EPERM/EACCES/EROFS) counts as a
    /// missing hierarchy (refused or ignored as `refuse_unwritable` says),
    /// and device rules the devices cgroup cannot hold are met by the
    /// nodes planned in `/dev` instead (`isolation::chroot_device_rules`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub chroot: bool,
}

const F: &str = "linux.resources";

impl CgroupResources {
    fn new(version: CgroupVersion) -> Self {
        CgroupResources {
            version,
            writes: Vec::new(),
            device_filter: None,
            warnings: Vec::new(),
            refuse_unwritable: false,
            chroot: false,
        }
    }

    /// Adds a write of one file.
    fn set(&mut self, field: String, controller: &str, file: &str, value: impl ToString) {
        self.set_any(field, controller, &[(file, value.to_string())]);
    }

    /// Adds a write of the first existing of several files.
    fn set_any(&mut self, field: String, controller: &str, files: &[(&str, String)]) {
        self.writes.push(CgroupWrite {
            field,
            controller: controller.into(),
            files: files
                .iter()
                .map(|(name, value)| CgroupFile {
                    name: (*name).into(),
                    value: value.clone(),
                })
                .collect(),
        });
    }

    fn v2(&self) -> bool {
        self.version == CgroupVersion::V2
    }
}

/// Plans `linux.resources` for `version`; `nodes` are the config's
/// `linux.devices`, which the device rules allow as runc does. None when
/// there is nothing to write.
pub fn resources_plan(
    res: Option<&LinuxResources>,
    nodes: &[LinuxDevice],
    version: CgroupVersion,
) -> Result<Option<CgroupResources>> {
    let Some(res) = res else { return Ok(None) };
    let mut out = CgroupResources::new(version);
    if let Some(m) = res.memory() {
        memory(&mut out, m)?;
    }
    if let Some(c) = res.cpu() {
        cpu(&mut out, c)?;
    }
    if let Some(p) = res.pids() {
        let limit = p.limit();
        let value = if limit > 0 {
            limit.to_string()
        } else {
            "max".to_string()
        };
        out.set(format!("{F}.pids.limit"), "pids", "pids.max", value);
    }
    if let Some(b) = res.block_io() {
        block_io(&mut out, b)?;
    }
    for (i, h) in res.hugepage_limits().iter().flatten().enumerate() {
        let field = format!("{F}.hugepageLimits[{i}]");
        let size = h.page_size();
        if !valid_page_size(size) {
            return Err(Error::spec(
                format!("{field}.pageSize"),
                format!("{size:?} is not a page size such as 2MB or 1GB"),
            ));
        }
        let (file, value) = if out.v2() {
            (format!("hugetlb.{size}.max"), limit_or_max(h.limit()))
        } else {
            (
                format!("hugetlb.{size}.limit_in_bytes"),
                h.limit().to_string(),
            )
        };
        out.set(format!("{field}.limit"), "hugetlb", &file, value);
    }
    if let Some(n) = res.network() {
        network(&mut out, n)?;
    }
    for (dev, r) in res.rdma().iter().flatten().collect::<BTreeMap<_, _>>() {
        let mut value = dev.clone();
        if let Some(h) = r.hca_handles() {
            value += &format!(" hca_handle={h}");
        }
        if let Some(o) = r.hca_objects() {
            value += &format!(" hca_object={o}");
        }
        out.set(format!("{F}.rdma[{dev:?}]"), "rdma", "rdma.max", value);
    }
    if let Some(u) = res.unified() {
        unified(&mut out, u)?;
    }
    if let Some(rules) = res.devices() {
        devices(&mut out, rules, nodes)?;
    }
    Ok(
        (!out.writes.is_empty() || out.device_filter.is_some() || !out.warnings.is_empty())
            .then_some(out),
    )
}

/// `rootcell update`: plans the part of `res` that runc 1.1's `update`
/// applies — memory limit, reservation and swap (kernel memory only
/// warns), cpu shares, quota, period, real-time period and runtime,
/// cpuset cpus and mems, the blkio weight, the pids limit and `unified`.
/// Other fields (devices, hugepages, network…) are ignored, as runc does:
/// engines send a container's whole resources. A zero or empty value
/// leaves the setting unchanged. `memsw` says whether the v1 memory cgroup
/// has `memory.memsw.limit_in_bytes`: as runc, an unlimited memory limit
/// without a swap value makes memory+swap unlimited too.
pub fn update_plan(
    res: &LinuxResources,
    version: CgroupVersion,
    memsw: bool,
) -> Result<Option<CgroupResources>> {
    let mut kept = LinuxResources::default();
    if let Some(m) = res.memory() {
        let mut mem = LinuxMemory::default();
        mem.set_limit(m.limit().filter(|v| *v != 0))
            .set_reservation(m.reservation().filter(|v| *v != 0))
            .set_swap(m.swap().filter(|v| *v != 0))
            .set_kernel(m.kernel().filter(|v| *v != 0))
            .set_kernel_tcp(m.kernel_tcp().filter(|v| *v != 0));
        if version == CgroupVersion::V1 && memsw && mem.limit() == Some(-1) && mem.swap().is_none()
        {
            mem.set_swap(Some(-1));
        }
        kept.set_memory(Some(mem));
    }
    if let Some(c) = res.cpu() {
        let mut cpu = LinuxCpu::default();
        cpu.set_shares(c.shares())
            .set_quota(c.quota())
            .set_period(c.period())
            .set_realtime_period(c.realtime_period())
            .set_realtime_runtime(c.realtime_runtime())
            .set_cpus(c.cpus().clone())
            .set_mems(c.mems().clone());
        kept.set_cpu(Some(cpu));
    }
    // A pids limit of 0 is "unchanged" here (`create` writes `max`).
    kept.set_pids(res.pids().filter(|p| p.limit() != 0));
    if let Some(w) = res.block_io().as_ref().and_then(|b| b.weight()) {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        kept.set_block_io(Some(b));
    }
    kept.set_unified(res.unified().clone().filter(|u| !u.is_empty()));
    resources_plan(Some(&kept), &[], version)
}

/// A byte limit: -1 is unlimited, 0 unset, anything else must be positive.
fn check_bytes(field: &str, v: i64) -> Result<()> {
    if v < -1 {
        return Err(Error::spec(
            field,
            format!("{v} is not a byte count (-1 means unlimited)"),
        ));
    }
    Ok(())
}

/// v2 spells "unlimited" `max`.
fn limit_or_max(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// `linux.resources.memory`. On v1 `swap` is memory+swap
/// (`memory.memsw.limit_in_bytes`), as runc writes it; on v2 it becomes
/// `memory.swap.max` = swap − limit.
fn memory(out: &mut CgroupResources, m: &LinuxMemory) -> Result<()> {
    let field = |f: &str| format!("{F}.memory.{f}");
    let limit = m.limit().unwrap_or(0);
    let swap = m.swap().unwrap_or(0);
    check_bytes(&field("limit"), limit)?;
    check_bytes(&field("swap"), swap)?;
    if let Some(r) = m.reservation() {
        check_bytes(&field("reservation"), r)?;
    }
    if swap > 0 && limit > 0 && swap < limit {
        return Err(Error::spec(
            field("swap"),
            format!("memory+swap ({swap}) must be at least the memory limit ({limit})"),
        ));
    }
    if m.kernel().is_some() {
        out.warnings.push(format!(
            "{}: kernel memory limits are ignored (deprecated by the kernel)",
            field("kernel")
        ));
    }
    if m.kernel_tcp().is_some() {
        out.warnings.push(format!(
            "{}: kernel TCP memory limits are ignored",
            field("kernelTCP")
        ));
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::spec(
                field("swappiness"),
                format!("{s} is outside 0-100"),
            ));
        }
    }
    if out.v2() {
        memory_v2(out, m, limit, swap)
    } else {
        memory_v1(out, m, limit, swap);
        Ok(())
    }
}

fn memory_v1(out: &mut CgroupResources, m: &LinuxMemory, limit: i64, swap: i64) {
    let field = |f: &str| format!("{F}.memory.{f}");
    // The limit goes first: memsw may not be set below it.
    if limit != 0 {
        out.set(field("limit"), "memory", "memory.limit_in_bytes", limit);
    }
    if swap != 0 {
        out.set(field("swap"), "memory", "memory.memsw.limit_in_bytes", swap);
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        out.set(
            field("reservation"),
            "memory",
            "memory.soft_limit_in_bytes",
            r,
        );
    }
    if let Some(s) = m.swappiness() {
        out.set(field("swappiness"), "memory", "memory.swappiness", s);
    }
    if m.disable_oom_killer() == Some(true) {
        out.set(field("disableOOMKiller"), "memory", "memory.oom_control", 1);
    }
}

fn memory_v2(out: &mut CgroupResources, m: &LinuxMemory, limit: i64, swap: i64) -> Result<()> {
    let field = |f: &str| format!("{F}.memory.{f}");
    // runc's ConvertMemorySwapToCgroupV2Value.
    // Unlimited memory without a swap value means both unlimited, as on v1.
    let swap_max = if swap == -1 || (limit == -1 && swap == 0) {
        Some(-1)
    } else if swap == 0 {
        None
    } else if limit <= 0 {
        return Err(Error::spec(
            field("swap"),
            "a swap limit needs a memory limit on cgroup v2",
        ));
    } else {
        Some(swap - limit)
    };
    if limit != 0 {
        out.set(field("limit"), "memory", "memory.max", limit_or_max(limit));
    }
    if let Some(s) = swap_max {
        out.set(field("swap"), "memory", "memory.swap.max", limit_or_max(s));
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        out.set(
            field("reservation"),
            "memory",
            "memory.low",
            limit_or_max(r),
        );
    }
    if m.swappiness().is_some() {
        out.warnings
            .push(format!("{}: ignored on cgroup v2", field("swappiness")));
    }
    if m.disable_oom_killer().is_some() {
        out.warnings.push(format!(
            "{}: ignored on cgroup v2",
            field("disableOOMKiller")
        ));
    }
    Ok(())
}

/// runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] → [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// runc's ConvertBlkIOToIOWeightValue: [10, 1000] → [1, 10000].
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

/// `linux.resources.cpu`.
fn cpu(out: &mut CgroupResources, c: &LinuxCpu) -> Result<()> {
    let field = |f: &str| format!("{F}.cpu.{f}");
    let v2 = out.v2();
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        if !(2..=262144).contains(&s) {
            return Err(Error::spec(
                field("shares"),
                format!("{s} is outside 2-262144"),
            ));
        }
        if v2 {
            out.set(field("shares"), "cpu", "cpu.weight", shares_to_weight(s));
        } else {
            out.set(field("shares"), "cpu", "cpu.shares", s);
        }
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    if quota < -1 {
        return Err(Error::spec(
            field("quota"),
            format!("{quota} is not a quota in µs (-1 means unlimited)"),
        ));
    }
    if v2 {
        if quota != 0 || period != 0 {
            let q = if quota > 0 {
                quota.to_string()
            } else {
                "max".into()
            };
            let p = if period != 0 { period } else { 100_000 };
            let f = if quota != 0 { "quota" } else { "period" };
            out.set(field(f), "cpu", "cpu.max", format!("{q} {p}"));
        }
    } else {
        // The period first, as runc: the quota is checked against it.
        if period != 0 {
            out.set(field("period"), "cpu", "cpu.cfs_period_us", period);
        }
        if quota != 0 {
            out.set(field("quota"), "cpu", "cpu.cfs_quota_us", quota);
        }
    }
    if let Some(b) = c.burst() {
        let file = if v2 {
            "cpu.max.burst"
        } else {
            "cpu.cfs_burst_us"
        };
        out.set(field("burst"), "cpu", file, b);
    }
    if let Some(i) = c.idle() {
        out.set(field("idle"), "cpu", "cpu.idle", i);
    }
    let rt = [
        (
            "realtimePeriod",
            "cpu.rt_period_us",
            c.realtime_period().map(|v| v as i64),
        ),
        ("realtimeRuntime", "cpu.rt_runtime_us", c.realtime_runtime()),
    ];
    for (name, file, value) in rt {
        let Some(v) = value.filter(|v| *v != 0) else {
            continue;
        };
        if v2 {
            return Err(Error::spec(
                field(name),
                "real-time scheduling limits do not exist on cgroup v2",
            ));
        }
        out.set(field(name), "cpu", file, v);
    }
    for (name, file, list) in [
        ("cpus", "cpuset.cpus", c.cpus()),
        ("mems", "cpuset.mems", c.mems()),
    ] {
        let Some(list) = list.as_deref().filter(|l| !l.is_empty()) else {
            continue;
        };
        parse_cpu_list(list).map_err(|e| Error::spec(field(name), e))?;
        out.set(field(name), "cpuset", file, list);
    }
    Ok(())
}

/// `linux.resources.blockIO`. Weights go to BFQ's files when CFQ's are
/// gone (as runc 1.1).
fn block_io(out: &mut CgroupResources, b: &LinuxBlockIo) -> Result<()> {
    let field = |f: &str| format!("{F}.blockIO.{f}");
    let check = |f: String, w: u16| {
        if (10..=1000).contains(&w) {
            Ok(())
        } else {
            Err(Error::spec(f, format!("{w} is outside 10-1000")))
        }
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        check(field("weight"), w)?;
        if out.v2() {
            out.set_any(
                field("weight"),
                "io",
                &[
                    ("io.bfq.weight", w.to_string()),
                    ("io.weight", blkio_to_io_weight(w).to_string()),
                ],
            );
        } else {
            out.set_any(
                field("weight"),
                "blkio",
                &[
                    ("blkio.weight", w.to_string()),
                    ("blkio.bfq.weight", w.to_string()),
                ],
            );
        }
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        check(field("leafWeight"), w)?;
        if out.v2() {
            out.warnings
                .push(format!("{}: ignored on cgroup v2", field("leafWeight")));
        } else {
            out.set(field("leafWeight"), "blkio", "blkio.leaf_weight", w);
        }
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let f = format!("{}[{i}]", field("weightDevice"));
        let Some(w) = d.weight() else { continue };
        check(format!("{f}.weight"), w)?;
        let value = format!("{}:{} {w}", d.major(), d.minor());
        let (ctl, files) = if out.v2() {
            ("io", vec![("io.bfq.weight", value)])
        } else {
            (
                "blkio",
                vec![
                    ("blkio.weight_device", value.clone()),
                    ("blkio.bfq.weight_device", value),
                ],
            )
        };
        out.set_any(f, ctl, &files);
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "read_bps_device",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "write_bps_device",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "read_iops_device",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "write_iops_device",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    for (name, v1_file, v2_key, list) in throttles {
        for (i, d) in list.iter().flatten().enumerate() {
            let f = format!("{}[{i}]", field(name));
            let dev = format!("{}:{}", d.major(), d.minor());
            if out.v2() {
                let rate = if d.rate() == 0 {
                    "max".to_string()
                } else {
                    d.rate().to_string()
                };
                out.set(f, "io", "io.max", format!("{dev} {v2_key}={rate}"));
            } else {
                let file = format!("blkio.throttle.{v1_file}");
                out.set(f, "blkio", &file, format!("{dev} {}", d.rate()));
            }
        }
    }
    Ok(())
}

/// `linux.resources.network`: v1's `net_cls` and `net_prio`; cgroup v2 has
/// no such controllers, so a value set there is refused.
fn network(out: &mut CgroupResources, n: &LinuxNetwork) -> Result<()> {
    let v2_refusal = |field: String, controller: &str| {
        Error::spec(
            field,
            format!("cgroup v2 has no {controller} controller (use an eBPF program or nftables)"),
        )
    };
    if let Some(id) = n.class_id() {
        let field = format!("{F}.network.classID");
        if out.v2() {
            return Err(v2_refusal(field, "net_cls"));
        }
        out.set(field, "net_cls", "net_cls.classid", id);
    }
    for (i, p) in n.priorities().iter().flatten().enumerate() {
        let field = format!("{F}.network.priorities[{i}]");
        if out.v2() {
            return Err(v2_refusal(field, "net_prio"));
        }
        let name = p.name();
        if name.is_empty()
            || name.len() > 15
            || name.contains(|c: char| c.is_whitespace() || c == '/')
        {
            return Err(Error::spec(
                format!("{field}.name"),
                format!("{name:?} is not an interface name"),
            ));
        }
        let value = format!("{name} {}", p.priority());
        out.set(field, "net_prio", "net_prio.ifpriomap", value);
    }
    Ok(())
}

/// `linux.resources.unified`: raw cgroup v2 files, refused on v1.
fn unified(out: &mut CgroupResources, u: &std::collections::HashMap<String, String>) -> Result<()> {
    // Sorted, so the plan does not depend on the map's order.
    for (key, value) in u.iter().collect::<BTreeMap<_, _>>() {
        let field = format!("{F}.unified[{key:?}]");
        if !out.v2() {
            return Err(Error::spec(
                field,
                "unified resources need cgroup v2; this host's controllers are cgroup v1",
            ));
        }
        let Some((controller, _)) = key.split_once('.') else {
            return Err(Error::spec(
                field,
                "not a cgroup file name (controller.file)",
            ));
        };
        if key.contains('/') || key.starts_with('.') || controller.is_empty() {
            return Err(Error::spec(
                field,
                "not a cgroup file name (controller.file)",
            ));
        }
        if matches!(
            key.as_str(),
            "cgroup.procs" | "cgroup.threads" | "cgroup.subtree_control" | "cgroup.type"
        ) {
            return Err(Error::spec(field, "the runtime manages this file itself"));
        }
        let controller = if controller == "cgroup" {
            ""
        } else {
            controller
        };
        out.set(field, controller, key, value);
    }
    Ok(())
}

/// One rule of the devices controller, as plain data: v1 writes it to
/// `devices.allow`/`devices.deny`, v2 compiles the list to an eBPF
/// program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRule {
    pub allow: bool,
    /// `c` or `b`; None for every device (`a`).
    pub kind: Option<char>,
    /// None is any (`*`).
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Some of `r`, `w`, `m`.
    pub access: String,
}

impl DeviceRule {
    /// The rule in the v1 `devices.allow` syntax (`c 1:3 rwm`, `a`).
    pub fn text(&self) -> String {
        let Some(kind) = self.kind else {
            return "a".into();
        };
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{kind} {}:{} {}",
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

/// v2's device rules: the eBPF program to load, in rule order (the last
/// matching rule decides; no match allows, as a fresh v1 cgroup does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceFilter {
    pub rules: Vec<DeviceRule>,
    /// Some rule denies a particular device: if the program cannot be
    /// loaded, the container must not start. Otherwise (deny all, then
    /// allow some: the usual config) a load failure is only a warning.
    pub denies_a_device: bool,
}

/// runc's `AllowedDevices`: (kind, major, minor, access); -1 is any.
const DEFAULT_ALLOWED_DEVICES: &[(char, i64, i64, &str)] = &[
    ('c', -1, -1, "m"),
    ('b', -1, -1, "m"),
    ('c', 1, 3, "rwm"),
    ('c', 1, 8, "rwm"),
    ('c', 1, 7, "rwm"),
    ('c', 5, 0, "rwm"),
    ('c', 1, 5, "rwm"),
    ('c', 1, 9, "rwm"),
    ('c', 136, -1, "rwm"),
    ('c', 5, 2, "rwm"),
    ('c', 10, 200, "rwm"),
];

/// A device number of a rule: absent or -1 is any.
fn device_number(n: Option<i64>, field: &str) -> Result<Option<u32>> {
    match n {
        None | Some(-1) => Ok(None),
        Some(v) => u32::try_from(v)
            .map(Some)
            .map_err(|_| Error::spec(field, format!("{v} is not a device number"))),
    }
}

/// One `linux.resources.devices` rule, checked.
fn device_rule(rule: &LinuxDeviceCgroup, field: &str) -> Result<DeviceRule> {
    let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
    if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(Error::spec(
            format!("{field}.access"),
            format!("{access:?} is not a combination of r, w and m"),
        ));
    }
    let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some('b'),
        LinuxDeviceType::C | LinuxDeviceType::U => Some('c'),
        LinuxDeviceType::P => {
            return Err(Error::spec(
                format!("{field}.type"),
                "the devices cgroup has no rules for fifos",
            ))
        }
    };
    let (major, minor) = match kind {
        None => (None, None),
        Some(_) => (
            device_number(rule.major(), &format!("{field}.major"))?,
            device_number(rule.minor(), &format!("{field}.minor"))?,
        ),
    };
    Ok(DeviceRule {
        allow: rule.allow(),
        kind,
        major,
        minor,
        access,
    })
}

/// `linux.resources.devices`, then an allow for each `linux.devices` node
/// and runc's default allowed devices, as runc orders them. v1 writes each
/// rule to `devices.allow` or `devices.deny` in order (a fresh cgroup
/// allows everything; `a` switches the default); v2 gets an eBPF filter.
fn devices(
    out: &mut CgroupResources,
    rules: &[LinuxDeviceCgroup],
    nodes: &[LinuxDevice],
) -> Result<()> {
    let planned = device_rules(rules, nodes)?;
    if out.v2() {
        out.device_filter = Some(DeviceFilter {
            denies_a_device: planned.iter().any(|(_, r)| !r.allow && r.kind.is_some()),
            rules: planned.into_iter().map(|(_, r)| r).collect(),
        });
        return Ok(());
    }
    for (field, rule) in planned {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.set(field, "devices", file, rule.text());
    }
    Ok(())
}

/// The whole rule list, each with its field: `linux.resources.devices`,
/// an allow for each `linux.devices` node, runc's default allowed
/// devices.
pub fn device_rules(
    rules: &[LinuxDeviceCgroup],
    nodes: &[LinuxDevice],
) -> Result<Vec<(String, DeviceRule)>> {
    let mut planned = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("{F}.devices[{i}]");
        planned.push((field.clone(), device_rule(rule, &field)?));
    }
    for (i, node) in nodes.iter().enumerate() {
        let kind = match node.typ() {
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::A | LinuxDeviceType::P => continue,
        };
        let field = format!("linux.devices[{i}]");
        let rule = DeviceRule {
            allow: true,
            kind: Some(kind),
            major: device_number(Some(node.major()), &format!("{field}.major"))?,
            minor: device_number(Some(node.minor()), &format!("{field}.minor"))?,
            access: "rwm".into(),
        };
        planned.push((field, rule));
    }
    for &(kind, major, minor, access) in DEFAULT_ALLOWED_DEVICES {
        let any = |n: i64| u32::try_from(n).ok();
        let rule = DeviceRule {
            allow: true,
            kind: Some(kind),
            major: any(major),
            minor: any(minor),
            access: access.into(),
        };
        planned.push((format!("{F}.devices"), rule));
    }
    Ok(planned)
}

/// Whether `rules` let a process open the device `kind` (`c` or `b`)
/// `major:minor` for reading or writing, decided as the cgroup v2 filter
/// and v1's devices cgroup decide: for each access, the last rule that
/// matches the device and names the access wins; none allows (a fresh
/// cgroup allows everything).
pub fn rules_allow_open(rules: &[DeviceRule], kind: char, major: u32, minor: u32) -> bool {
    let allowed = |access: char| {
        rules
            .iter()
            .rev()
            .find(|r| {
                r.kind.is_none_or(|k| k == kind)
                    && r.major.is_none_or(|m| m == major)
                    && r.minor.is_none_or(|m| m == minor)
                    && r.access.contains(access)
            })
            .is_none_or(|r| r.allow)
    };
    allowed('r') || allowed('w')
}

/// Hugepage sizes as the kernel names them: `2MB`, `1GB`, `64KB`.
fn valid_page_size(s: &str) -> bool {
    let Some(num) = ["KB", "MB", "GB"].iter().find_map(|u| s.strip_suffix(u)) else {
        return false;
    };
    !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: serde_json::Value, v: CgroupVersion) -> Result<Option<CgroupResources>> {
        let res: LinuxResources = serde_json::from_value(json).expect("resources JSON");
        resources_plan(Some(&res), &[], v)
    }

    /// (file, value) of every write, first candidate only.
    fn files(r: &CgroupResources) -> Vec<(String, String)> {
        r.writes
            .iter()
            .map(|w| (w.files[0].name.clone(), w.files[0].value.clone()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10000);
    }

    #[test]
    fn memory_and_cpu_per_version() {
        let json = serde_json::json!({
            "memory": {"limit": 100, "swap": 300},
            "cpu": {"shares": 1024, "quota": 5000, "period": 10000},
            "pids": {"limit": -1}
        });
        let v1 = plan(json.clone(), CgroupVersion::V1).unwrap().unwrap();
        assert_eq!(
            files(&v1),
            pairs(&[
                ("memory.limit_in_bytes", "100"),
                ("memory.memsw.limit_in_bytes", "300"),
                ("cpu.shares", "1024"),
                ("cpu.cfs_period_us", "10000"),
                ("cpu.cfs_quota_us", "5000"),
                ("pids.max", "max"),
            ])
        );
        let v2 = plan(json, CgroupVersion::V2).unwrap().unwrap();
        assert_eq!(
            files(&v2),
            pairs(&[
                ("memory.max", "100"),
                ("memory.swap.max", "200"),
                ("cpu.weight", "39"),
                ("cpu.max", "5000 10000"),
                ("pids.max", "max"),
            ])
        );
        // Unlimited memory without a swap value: both unlimited on v2.
        let v2 = plan(
            serde_json::json!({"memory": {"limit": -1}, "cpu": {"period": 20000}}),
            CgroupVersion::V2,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            files(&v2),
            pairs(&[
                ("memory.max", "max"),
                ("memory.swap.max", "max"),
                ("cpu.max", "max 20000")
            ])
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err =
            |json: serde_json::Value, v: CgroupVersion| plan(json, v).unwrap_err().to_string();
        let v1 = CgroupVersion::V1;
        assert!(err(serde_json::json!({"memory": {"limit": -2}}), v1)
            .starts_with("linux.resources.memory.limit:"));
        assert!(
            err(serde_json::json!({"memory": {"limit": 10, "swap": 5}}), v1)
                .starts_with("linux.resources.memory.swap:")
        );
        assert!(err(serde_json::json!({"cpu": {"cpus": "1-a"}}), v1)
            .starts_with("linux.resources.cpu.cpus:"));
        assert!(err(serde_json::json!({"cpu": {"shares": 1}}), v1)
            .starts_with("linux.resources.cpu.shares:"));
        assert!(err(serde_json::json!({"blockIO": {"weight": 5}}), v1)
            .starts_with("linux.resources.blockIO.weight:"));
        assert!(err(
            serde_json::json!({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}),
            v1
        )
        .starts_with("linux.resources.hugepageLimits[0].pageSize:"));
        assert!(err(serde_json::json!({"unified": {"memory.max": "1"}}), v1)
            .starts_with("linux.resources.unified[\"memory.max\"]:"));
        let v2 = CgroupVersion::V2;
        assert!(err(serde_json::json!({"unified": {"../x": "1"}}), v2)
            .starts_with("linux.resources.unified[\"../x\"]:"));
        assert!(err(serde_json::json!({"network": {"classID": 5}}), v2)
            .starts_with("linux.resources.network.classID:"));
        assert!(err(
            serde_json::json!({"network": {"priorities": [{"name": "a b", "priority": 1}]}}),
            v1
        )
        .starts_with("linux.resources.network.priorities[0].name:"));
        assert!(err(serde_json::json!({"cpu": {"realtimeRuntime": 5}}), v2)
            .starts_with("linux.resources.cpu.realtimeRuntime:"));
        assert!(err(
            serde_json::json!({"devices": [{"allow": false, "type": "c", "major": -7}]}),
            v2
        )
        .starts_with("linux.resources.devices[0].major:"));
    }

    #[test]
    fn rules_allow_open_takes_the_last_matching_rule_per_access() {
        let rule = |allow: bool, kind: Option<char>, major: Option<u32>, access: &str| DeviceRule {
            allow,
            kind,
            major,
            minor: major.map(|_| 7),
            access: access.into(),
        };
        // No rule: a fresh cgroup allows everything.
        assert!(rules_allow_open(&[], 'c', 1, 7));
        let deny_all = rule(false, None, None, "rwm");
        assert!(!rules_allow_open(
            std::slice::from_ref(&deny_all),
            'c',
            1,
            7
        ));
        let allow_full = rule(true, Some('c'), Some(1), "rwm");
        assert!(rules_allow_open(
            &[deny_all.clone(), allow_full.clone()],
            'c',
            1,
            7
        ));
        assert!(!rules_allow_open(
            &[deny_all.clone(), allow_full.clone()],
            'b',
            1,
            7
        ));
        // A later deny wins over an earlier allow.
        let deny_full = rule(false, Some('c'), Some(1), "rwm");
        assert!(!rules_allow_open(
            &[allow_full.clone(), deny_full],
            'c',
            1,
            7
        ));
        // mknod only ('m') does not let the node be opened.
        let mknod_only = rule(true, Some('c'), Some(1), "m");
        assert!(!rules_allow_open(
            &[deny_all.clone(), mknod_only],
            'c',
            1,
            7
        ));
        // Read only is enough to open it.
        let read_only = rule(true, Some('c'), Some(1), "r");
        assert!(rules_allow_open(&[deny_all, read_only], 'c', 1, 7));
    }

    #[test]
    fn devices_v1_deny_all_then_allow_like_runc() {
        let r = plan(
            serde_json::json!({"devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "r"},
                {"allow": true, "type": "b", "major": 8}
            ]}),
            CgroupVersion::V1,
        )
        .unwrap()
        .unwrap();
        let f = files(&r);
        assert_eq!(f[0], ("devices.deny".into(), "a".into()));
        assert_eq!(f[1], ("devices.allow".into(), "c 10:229 r".into()));
        assert_eq!(f[2], ("devices.allow".into(), "b 8:* rwm".into()));
        assert_eq!(f.len(), 3 + DEFAULT_ALLOWED_DEVICES.len());
        // On v2 the same rules become the filter's, in the same order.
        let r = plan(
            serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]}),
            CgroupVersion::V2,
        )
        .unwrap()
        .unwrap();
        assert!(r.writes.is_empty());
        let filter = r.device_filter.unwrap();
        assert!(!filter.denies_a_device);
        assert_eq!(filter.rules[0].text(), "a");
        assert_eq!(filter.rules[1].text(), "c *:* m");
        assert_eq!(filter.rules.len(), 1 + DEFAULT_ALLOWED_DEVICES.len());
    }

    #[test]
    fn update_plans_only_runc_update_fields() {
        let res: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": -1, "reservation": 0, "swappiness": 10, "kernel": 5},
            "cpu": {"shares": 0, "quota": 5000, "cpus": ""},
            "pids": {"limit": 0},
            "blockIO": {"weight": 0, "leafWeight": 50},
            "devices": [{"allow": false, "access": "rwm"}],
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1}]
        }))
        .unwrap();
        let r = update_plan(&res, CgroupVersion::V1, true).unwrap().unwrap();
        // -1 without swap: memsw unlimited too; zeros, devices, hugepages
        // and swappiness are left alone.
        assert_eq!(
            files(&r),
            pairs(&[
                ("memory.limit_in_bytes", "-1"),
                ("memory.memsw.limit_in_bytes", "-1"),
                ("cpu.cfs_quota_us", "5000"),
            ])
        );
        assert_eq!(r.warnings.len(), 1, "kernel memory warns");
        let r = update_plan(&res, CgroupVersion::V1, false)
            .unwrap()
            .unwrap();
        assert_eq!(files(&r).len(), 2, "no memsw file, no memsw write");
        let empty: LinuxResources = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(update_plan(&empty, CgroupVersion::V1, true)
            .unwrap()
            .is_none());
    }

    #[test]
    fn kernel_memory_only_warns_and_unified_is_raw() {
        let r = plan(
            serde_json::json!({"memory": {"kernel": 5, "kernelTCP": 6}}),
            CgroupVersion::V1,
        )
        .unwrap()
        .unwrap();
        assert!(r.writes.is_empty());
        assert_eq!(r.warnings.len(), 2);
        let r = plan(
            serde_json::json!({"unified": {"memory.high": "1000", "cgroup.max.depth": "3"}}),
            CgroupVersion::V2,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.writes[0].controller, "");
        assert_eq!(r.writes[1].controller, "memory");
        assert_eq!(
            files(&r),
            pairs(&[("cgroup.max.depth", "3"), ("memory.high", "1000")])
        );
        assert!(plan(serde_json::json!({}), CgroupVersion::V1)
            .unwrap()
            .is_none());
    }
}
