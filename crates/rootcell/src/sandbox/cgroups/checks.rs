//! The limits checked before anything is made (cpuset, memory nodes,
//! memory available, what needs a cgroup) and planned into cgroup files;
//! each refusal is a usage error naming its flag.

use super::*;

/// `--cores` and `--memoryNodes` need a cpuset controller, and every value
/// must be one the parent cgroup's cpuset allows.
pub(super) fn check_cpuset(selected: &[Hierarchy], limits: &Limits) -> Result<()> {
    let asks = [
        ("--cores", limits.cores.as_deref(), "cpus"),
        ("--memoryNodes", limits.memory_nodes.as_deref(), "mems"),
    ];
    for (flag, wanted, kind) in asks {
        let Some(wanted) = wanted else { continue };
        if wanted.is_empty() {
            return Err(Error::usage(flag, "the list is empty"));
        }
        let Some(allowed) = allowed_cpuset(selected, kind) else {
            return Err(Error::usage(
                flag,
                "needs the cpuset cgroup controller, which this host does not offer here",
            ));
        };
        check_subset(flag, wanted, &allowed)?;
    }
    Ok(())
}

/// The parent cgroup's effective `cpus` or `mems`, as a list: from the v1
/// cpuset hierarchy, else from the v2 parent when it has the cpuset
/// controller.
pub(super) fn allowed_cpuset(selected: &[Hierarchy], kind: &str) -> Option<String> {
    let v1 = selected
        .iter()
        .find(|h| !h.v2 && h.controllers.iter().any(|c| c == "cpuset"));
    if let Some(h) = v1 {
        let dir = parent_dir(h);
        return [format!("cpuset.effective_{kind}"), format!("cpuset.{kind}")]
            .iter()
            .filter_map(|f| fs::read_to_string(dir.join(f)).ok())
            .find(|t| !t.trim().is_empty());
    }
    let h = selected.iter().find(|h| h.v2)?;
    let available = fs::read_to_string(h.mountpoint.join("cgroup.controllers")).ok()?;
    if !available.split_whitespace().any(|c| c == "cpuset") {
        return None;
    }
    // The nearest ancestor (the parent or above) that shows it.
    let mut dir = parent_dir(h);
    loop {
        if let Ok(t) = fs::read_to_string(dir.join(format!("cpuset.{kind}.effective"))) {
            if !t.trim().is_empty() {
                return Some(t);
            }
        }
        if dir == h.mountpoint || !dir.pop() {
            break;
        }
    }
    let sys = match kind {
        "cpus" => "/sys/devices/system/cpu/online",
        _ => "/sys/devices/system/node/online",
    };
    fs::read_to_string(sys).ok()
}

/// `--memoryNodes` must name nodes that have memory: the staging tmpfs
/// is bound to them (`mpol=bind:`), which the kernel refuses otherwise,
/// and that tmpfs is made before the run cgroup checks its cpuset.
pub fn check_memory_nodes(limits: &Limits) -> Result<()> {
    let Some(wanted) = limits.memory_nodes.as_deref() else {
        return Ok(());
    };
    if wanted.is_empty() {
        return Err(Error::usage("--memoryNodes", "the list is empty"));
    }
    let Some(have) = ["has_memory", "online"]
        .iter()
        .filter_map(|f| fs::read_to_string(Path::new("/sys/devices/system/node").join(f)).ok())
        .find(|t| !t.trim().is_empty())
    else {
        return Ok(());
    };
    check_nodes(wanted, &have)
}

pub(super) fn check_nodes(wanted: &[u32], have: &str) -> Result<()> {
    let have_list = crate::plan::process::parse_cpu_list(have.trim()).unwrap_or_default();
    let missing: Vec<String> = wanted
        .iter()
        .filter(|v| !have_list.contains(v))
        .map(u32::to_string)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::usage(
        "--memoryNodes",
        format!(
            "memory node{} {} not on this host (nodes with memory: {})",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(","),
            have.trim()
        ),
    ))
}

/// Every value of `wanted` must be in the kernel list `allowed` (`0-3,7`).
pub(super) fn check_subset(flag: &str, wanted: &[u32], allowed: &str) -> Result<()> {
    let allowed_list = crate::plan::process::parse_cpu_list(allowed.trim())
        .map_err(|e| Error::Other(format!("{flag}: reading the parent cpuset: {e}")))?;
    let missing: Vec<String> = wanted
        .iter()
        .filter(|v| !allowed_list.contains(v))
        .map(u32::to_string)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let what = if flag == "--cores" {
        "CPU"
    } else {
        "memory node"
    };
    Err(Error::usage(
        flag,
        format!(
            "{what}{} {} not allowed here: the cgroup's cpuset has {}",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(","),
            allowed.trim()
        ),
    ))
}

/// `--memlimit` needs a memory controller: a v1 memory hierarchy or a v2
/// hierarchy that offers it.
pub(super) fn check_memory_available(selected: &[Hierarchy], limits: &Limits) -> Result<()> {
    if limits.memory.is_none() {
        return Ok(());
    }
    let v1 = selected
        .iter()
        .any(|h| !h.v2 && h.controllers.iter().any(|c| c == "memory"));
    let v2 = selected.iter().filter(|h| h.v2).any(|h| {
        fs::read_to_string(h.mountpoint.join("cgroup.controllers"))
            .is_ok_and(|t| t.split_whitespace().any(|c| c == "memory"))
    });
    if v1 || v2 {
        return Ok(());
    }
    Err(Error::usage(
        "--memlimit",
        "needs the memory cgroup controller, which this host does not offer",
    ))
}

/// Without any cgroup only `--timelimit` (RLIMIT_CPU) and
/// `--walltimelimit` can be enforced.
pub(super) fn refuse_without_cgroup(limits: &Limits, notes: &[String]) -> Result<()> {
    let why = |what: &str| {
        let mut reason = format!(
            "{what} needs a cgroup, and none could be made for the run (run as root, or in a cgroup delegated to this user)"
        );
        if let Some(n) = notes.first() {
            reason.push_str(": ");
            reason.push_str(n);
        }
        reason
    };
    if limits.memory.is_some() {
        return Err(Error::usage("--memlimit", why("a memory limit")));
    }
    if limits.soft_cputime.is_some() {
        return Err(Error::usage(
            "--softtimelimit",
            why("a soft CPU-time limit"),
        ));
    }
    if limits.cores.is_some() {
        return Err(Error::usage("--cores", why("a cpuset")));
    }
    if limits.memory_nodes.is_some() {
        return Err(Error::usage("--memoryNodes", why("a cpuset")));
    }
    Ok(())
}

/// The run's limits as the `linux.resources` plan containers use (memory
/// limit, memory+swap at the same value when the kernel accounts swap so
/// swapping cannot get round it, cpuset cpus and mems), with the flags as
/// field names.
pub(super) fn limits_plan(
    limits: &Limits,
    version: CgroupVersion,
    swap_accounted: bool,
) -> Result<Option<CgroupResources>> {
    let mut res = LinuxResources::default();
    if let Some(bytes) = limits.memory {
        let bytes = i64::try_from(bytes)
            .map_err(|_| Error::usage("--memlimit", format!("{bytes} bytes is too large")))?;
        let mut m = LinuxMemory::default();
        m.set_limit(Some(bytes));
        if swap_accounted {
            m.set_swap(Some(bytes));
        }
        res.set_memory(Some(m));
    }
    if limits.cores.is_some() || limits.memory_nodes.is_some() {
        let mut c = LinuxCpu::default();
        c.set_cpus(
            limits
                .cores
                .as_deref()
                .map(crate::plan::process::format_cpu_list),
        );
        c.set_mems(
            limits
                .memory_nodes
                .as_deref()
                .map(crate::plan::process::format_cpu_list),
        );
        res.set_cpu(Some(c));
    }
    let Some(mut plan) = resources_plan(Some(&res), &[], version).map_err(as_usage)? else {
        return Ok(None);
    };
    for w in &mut plan.writes {
        w.field = flag_of(&w.field).to_string();
    }
    Ok(Some(plan))
}

/// The flag a planned `linux.resources` field comes from.
pub(super) fn flag_of(field: &str) -> &str {
    match field {
        "linux.resources.memory.limit" | "linux.resources.memory.swap" => "--memlimit",
        "linux.resources.cpu.cpus" => "--cores",
        "linux.resources.cpu.mems" => "--memoryNodes",
        other => other,
    }
}

/// A planning or writing error about a flag is a usage error.
pub(super) fn as_usage(e: Error) -> Error {
    match e {
        Error::InvalidSpec { field, reason } if field.starts_with("--") => Error::Usage {
            flag: field,
            reason,
        },
        other => other,
    }
}
