//! The cgroup of one sandbox run: a fresh directory in every hierarchy
//! that measures or limits (v1, v2 and the hybrid layout), the limits
//! written, the readings `supervise` takes, and the teardown that leaves
//! nothing behind.
//!
//! Built on `crate::cgroup` (hierarchy discovery, the directory layout,
//! `apply_resources` of a planned `CgroupResources`, the freezer, the OOM
//! watch): the run's limits are turned into the same `linux.resources`
//! plan containers use, with the flags as field names.
//!
//! Where BenchExec puts its run cgroups: below the caller's own cgroup in
//! each hierarchy. On cgroup v2 a cgroup with processes cannot hand
//! controllers to children, so the run cgroup goes to the hierarchy's root
//! when our own cgroup does not delegate them already (root only).

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

use crate::cgroup::freezer::Freezer;
use crate::cgroup::oom::OomWatch;
use crate::cgroup::{self, ContainerCgroup, Hierarchy};
use crate::error::{Error, Result};
use crate::plan::resources::resources_plan;
use crate::plan::{CgroupResources, CgroupVersion};
use crate::sandbox::config::Limits;

/// v1 controllers a run always gets a directory in: CPU time, memory, I/O
/// bytes, and the freezer, without which `kill_all` races a fork bomb that
/// is not in a pid namespace of its own (a `RunCgroup` used on its own).
/// Not pids: nothing reads or limits it, and each v1 directory costs a
/// `mkdir`, a migration and an `rmdir` on every run.
const MEASURING_V1: [&str; 4] = ["cpuacct", "memory", "blkio", "freezer"];

/// v2 controllers enabled for the run when the host offers them (CPU time
/// comes from the core `cpu.stat`, `cgroup.kill` needs no controller).
const MEASURING_V2: [&str; 2] = ["memory", "io"];

/// How long `kill_all` waits for the killed processes to exit.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Pidfds open at a time while waiting for killed processes (a fork bomb
/// may leave more processes than fds we may open).
const PIDFD_BATCH: usize = 256;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One run's cgroup: a directory per hierarchy, removed (with anything
/// still in it killed) by `remove`, or at the latest when dropped.
#[derive(Debug)]
pub struct RunCgroup {
    name: String,
    cg: ContainerCgroup,
    /// `--cgroup-access`: the child of each run directory the sandbox
    /// joins (and roots its cgroup namespace at), so that the command
    /// can make cgroups below it but cannot reach the run's limits.
    delegated: Vec<PathBuf>,
    memory_limit: Option<u64>,
    removed: bool,
}

impl RunCgroup {
    /// A fresh cgroup for one run in every available hierarchy (v1, v2,
    /// hybrid), the limits written (memory, cpuset cores and memory
    /// nodes), with notes on what is not measured. Ok(None) when none can
    /// be made (unprivileged without a delegated subtree; why is logged,
    /// `notes_without_cgroup` gives the report's notes): then
    /// `--timelimit` falls back to `rlimits_without_cgroup`, and the
    /// limits nothing else can enforce (`--memlimit`, `--softtimelimit`,
    /// `--cores`, `--memoryNodes`) are usage errors, as in BenchExec.
    pub fn create(
        limits: &Limits,
        cgroup_access: bool,
    ) -> Result<Option<(RunCgroup, Vec<String>)>> {
        let hierarchies = cgroup::host_hierarchies()?;
        create_in(&hierarchies, limits, cgroup_access)
    }

    /// Kills everything left (SIGKILL: `cgroup.kill` on v2, else the v1
    /// freezer around the signals, else a kill loop), waits for it to
    /// exit and removes the directories.
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        teardown(&self.cg.dirs)
    }

    /// `rootcell-sandbox-<pid>-<n>`: the directory name in every hierarchy.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The run's directories, one per hierarchy.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.cg.dirs
    }

    /// Opened files a forked (single-threaded) child writes "0" into to
    /// join the run's cgroups (`cgroup::CgroupJoin`, without the birth in
    /// the v2 directory).
    pub fn join_files(&self) -> Result<Vec<cgroup::JoinFile>> {
        Ok(cgroup::CgroupJoin::open(self.join_dirs())?.files_to_write(false))
    }

    /// The directories the sandbox joins: the run's own, or with
    /// `--cgroup-access` their `command` child (see `delegated`).
    pub fn join_dirs(&self) -> &[PathBuf] {
        if self.delegated.is_empty() {
            &self.cg.dirs
        } else {
            &self.delegated
        }
    }

    /// The memory limit as written (`--memlimit`).
    pub fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }

    /// Sends SIGKILL to every process of the run and returns at once.
    pub fn kill(&self) {
        kill_once(&self.cg.dirs);
    }

    /// SIGKILLs every process of the run and waits until none is left.
    pub fn kill_all(&self) -> Result<()> {
        kill_all(&self.cg.dirs)
    }

    /// Pids in the run's cgroup now.
    pub fn pids(&self) -> Vec<i32> {
        cgroup::pids(&self.cg.dirs)
    }

    /// CPU time of every process that ran in the cgroup: v1
    /// `cpuacct.usage` (ns), else v2 `cpu.stat` `usage_usec`.
    pub fn cputime(&self) -> Option<Duration> {
        if let Some(text) = self.read("cpuacct.usage") {
            if let Ok(ns) = text.trim().parse::<u64>() {
                return Some(Duration::from_nanos(ns));
            }
        }
        self.cg
            .dirs
            .iter()
            .filter_map(|d| fs::read_to_string(d.join("cpu.stat")).ok())
            .find_map(|t| parse_cpu_stat_usage(&t))
    }

    /// Whether `cputime` can tell anything.
    pub fn accounts_cpu(&self) -> bool {
        self.cputime().is_some()
    }

    /// CPU time per CPU number (v1 `cpuacct.usage_percpu`), CPUs never
    /// used left out as BenchExec does; empty on v2.
    pub fn cputime_per_cpu(&self) -> Vec<(u32, Duration)> {
        self.read("cpuacct.usage_percpu")
            .map(|t| parse_percpu(&t))
            .unwrap_or_default()
    }

    /// Peak memory of the whole cgroup: v1 `memory.memsw.max_usage_in_bytes`
    /// (RAM+swap, as BenchExec) or `memory.max_usage_in_bytes`; v2
    /// `memory.peak` plus `memory.swap.peak`.
    pub fn memory_peak(&self) -> Option<u64> {
        let num = |name: &str| self.read(name).and_then(|t| t.trim().parse::<u64>().ok());
        num("memory.memsw.max_usage_in_bytes")
            .or_else(|| num("memory.max_usage_in_bytes"))
            .or_else(|| Some(num("memory.peak")? + num("memory.swap.peak").unwrap_or(0)))
    }

    /// How many processes the kernel's OOM killer killed in the cgroup
    /// (v1 `memory.oom_control`, v2 `memory.events`: `oom_kill`); None
    /// when the kernel does not say.
    pub fn oom_kills(&self) -> Option<u64> {
        ["memory.oom_control", "memory.events"]
            .iter()
            .find_map(|f| self.read(f))
            .and_then(|t| parse_oom_kill(&t))
    }

    /// An armed OOM notification (v1 eventfd, v2 `memory.events`
    /// POLLPRI), None without a memory cgroup.
    pub fn oom_watch(&self) -> Result<Option<OomWatch>> {
        OomWatch::arm(&self.cg.dirs)
    }

    /// Bytes read and written by block I/O: v1
    /// `blkio.throttle.io_service_bytes(_recursive)`, v2 `io.stat`.
    pub fn blkio(&self) -> Option<(u64, u64)> {
        if let Some(t) = self
            .read("blkio.throttle.io_service_bytes_recursive")
            .or_else(|| self.read("blkio.throttle.io_service_bytes"))
        {
            return Some(parse_blkio_v1(&t));
        }
        self.read("io.stat").map(|t| parse_io_stat(&t))
    }

    /// The first of the run's directories holding `file`, read.
    fn read(&self, file: &str) -> Option<String> {
        self.cg
            .dirs
            .iter()
            .map(|d| d.join(file))
            .find(|p| p.exists())
            .and_then(|p| fs::read_to_string(p).ok())
    }
}

impl Drop for RunCgroup {
    /// The last resort (a panic or an early return between create and
    /// remove): nothing may be left behind.
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = teardown(&self.cg.dirs) {
                tracing::warn!("removing the run's cgroup {}: {e}", self.name);
            }
        }
    }
}

/// The rlimits the command's process sets when the run has no cgroup:
/// `RLIMIT_CPU` (whole seconds, rounded up; soft = hard, so the kernel
/// sends SIGKILL) for `--timelimit`, as BenchExec 2.x did. It counts each
/// process on its own, not the tree. Nothing for memory: BenchExec refuses
/// `--memlimit` without a memory cgroup rather than limit address space
/// (`RLIMIT_AS`), which is not memory use; so does `create`.
pub fn rlimits_without_cgroup(limits: &Limits) -> Vec<(i32, u64, u64)> {
    let mut out = Vec::new();
    if let Some(t) = limits.cputime {
        let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
        out.push((libc::RLIMIT_CPU as i32, secs.max(1), secs.max(1)));
    }
    out
}

/// The report's notes for a run without a cgroup (`create` gave None):
/// how its limits and measurements differ.
pub fn notes_without_cgroup(limits: &Limits) -> Vec<String> {
    let mut notes = vec![
        "no cgroup could be made for the run: CPU time from the top process's rusage, memory not measured"
            .to_string(),
    ];
    if limits.cputime.is_some() {
        notes.push(
            "--timelimit: enforced by RLIMIT_CPU on the command's process (each process on its own)"
                .into(),
        );
    }
    notes
}

/// `create` against a given set of hierarchies.
fn create_in(
    hierarchies: &[Hierarchy],
    limits: &Limits,
    cgroup_access: bool,
) -> Result<Option<(RunCgroup, Vec<String>)>> {
    let need_cpuset = limits.cores.is_some() || limits.memory_nodes.is_some();
    let mut v2_wanted: Vec<&str> = MEASURING_V2.to_vec();
    if need_cpuset {
        v2_wanted.push("cpuset");
    }
    let mut selected: Vec<Hierarchy> = hierarchies
        .iter()
        .filter(|h| {
            h.v2 || h.controllers.iter().any(|c| {
                MEASURING_V1.contains(&c.as_str())
                    || (need_cpuset && c == "cpuset")
                    || (cgroup_access && !c.starts_with("name="))
            })
        })
        .cloned()
        .collect();
    for h in selected.iter_mut().filter(|h| h.v2) {
        h.own_path = v2_parent(h, &v2_wanted);
    }
    check_cpuset(&selected, limits)?;
    check_memory_available(&selected, limits)?;

    let mut notes = Vec::new();
    let Some((name, cg)) = make_dirs(&selected, &mut notes)? else {
        refuse_without_cgroup(limits, &notes)?;
        tracing::warn!("no cgroup for the run: {}", notes.join("; "));
        return Ok(None);
    };
    let mut run = RunCgroup {
        name,
        cg,
        delegated: Vec::new(),
        memory_limit: limits.memory,
        removed: false,
    };
    // From here on, an error drops `run`, which removes the directories.
    let version = if run.cg.mount_sources.iter().all(|s| s.fstype == "cgroup2") {
        CgroupVersion::V2
    } else {
        CgroupVersion::V1
    };
    if let Some(dir) = v2_dir(&run.cg) {
        enable_v2_controllers(dir, &v2_wanted, limits, &mut notes)?;
    }
    let has = |file: &str| run.cg.dirs.iter().any(|d| d.join(file).exists());
    let swap_file = match version {
        CgroupVersion::V1 => "memory.memsw.limit_in_bytes",
        CgroupVersion::V2 => "memory.swap.max",
    };
    if let Some(res) = limits_plan(limits, version, has(swap_file))? {
        cgroup::apply_resources(&res, &run.cg, false).map_err(as_usage)?;
    }
    if !run.accounts_cpu() {
        if limits.cputime.is_some() || limits.soft_cputime.is_some() {
            let flag = if limits.cputime.is_some() {
                "--timelimit"
            } else {
                "--softtimelimit"
            };
            return Err(Error::usage(
                flag,
                "the run's cgroup accounts no CPU time (no cpuacct controller, no cpu.stat)",
            ));
        }
        notes.push("CPU time from the command's rusage: the run's cgroup accounts none".into());
    }
    if run.memory_peak().is_none() {
        notes.push("memory is not measured: the run's cgroup has no memory controller".into());
    }
    if cgroup_access {
        run.delegated = delegate(&run.cg.dirs, &mut notes)?;
    }
    tracing::debug!("run cgroup {}: {:?}", run.name, run.cg.dirs);
    Ok(Some((run, notes)))
}

/// The name of the delegated child of each run directory.
pub const DELEGATED: &str = "command";

/// `--cgroup-access`, as BenchExec on cgroup v2: the limits stay on the
/// run directories; the sandbox joins a child of each (`command`), roots
/// its cgroup namespace there and mounts the hierarchies afresh, writable,
/// so the command sees and manages only its own subtree. A v1 cpuset child
/// gets its parent's CPUs and nodes (it starts empty); on v2 the run
/// directory (which holds no process) hands its controllers down, best
/// effort. A v2 hierarchy without controllers (the hybrid layout, where
/// they are all on v1) can group processes but limits nothing: a note.
fn delegate(dirs: &[PathBuf], notes: &mut Vec<String>) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in dirs {
        let child = dir.join(DELEGATED);
        fs::create_dir(&child).map_err(|e| Error::Io {
            context: format!("--cgroup-access: making {}", child.display()),
            cause: e,
        })?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = fs::read_to_string(dir.join(file)) {
                fs::write(child.join(file), value.trim()).map_err(|e| Error::Io {
                    context: format!("--cgroup-access: {}", child.join(file).display()),
                    cause: e,
                })?;
            }
        }
        if let Ok(available) = fs::read_to_string(dir.join("cgroup.controllers")) {
            let controllers: Vec<&str> = available.split_whitespace().collect();
            for c in &controllers {
                let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
            }
            let main = ["cpu", "memory", "io", "pids"];
            if !controllers.iter().any(|c| main.contains(c)) {
                notes.push(format!(
                    "--cgroup-access: the cgroup2 hierarchy at {} offers {} here (cpu, memory, \
                     io and pids are on cgroup v1): child cgroups made there group processes \
                     but cannot limit those; the v1 hierarchies can",
                    mount_of(dir).unwrap_or_else(|| "/sys/fs/cgroup".into()),
                    if controllers.is_empty() {
                        "no controllers".to_string()
                    } else {
                        format!("only {}", controllers.join(" "))
                    }
                ));
            }
        }
        out.push(child);
    }
    Ok(out)
}

/// Where a host cgroup directory's hierarchy is mounted inside the
/// sandbox (the same place as on the host), for notes.
fn mount_of(dir: &Path) -> Option<String> {
    let table = crate::fs::mountinfo::read_self().ok()?;
    table
        .iter()
        .filter(|m| m.fs_type == "cgroup2" && dir.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
        .map(|m| m.mount_point.display().to_string())
}

/// Where the v2 run cgroup goes: below our own cgroup when it is the root
/// or already delegates every wanted controller the host has; else at
/// the hierarchy's root when we may write there (a cgroup with processes,
/// ours, cannot enable controllers for its children).
fn v2_parent(h: &Hierarchy, wanted: &[&str]) -> PathBuf {
    let root_rel = Path::new("/");
    if h.own_path == root_rel {
        return h.own_path.clone();
    }
    let own = h
        .mountpoint
        .join(h.own_path.strip_prefix("/").unwrap_or(&h.own_path));
    let words = |p: PathBuf| -> Vec<String> {
        fs::read_to_string(p)
            .map(|t| t.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let available = words(h.mountpoint.join("cgroup.controllers"));
    let delegated = words(own.join("cgroup.subtree_control"));
    let all_there = wanted
        .iter()
        .filter(|c| available.iter().any(|a| a == *c))
        .all(|c| delegated.iter().any(|d| d == c));
    if all_there || rustix::fs::access(&h.mountpoint, rustix::fs::Access::WRITE_OK).is_err() {
        h.own_path.clone()
    } else {
        root_rel.to_path_buf()
    }
}

/// The parent directory of the run cgroup in `h`.
fn parent_dir(h: &Hierarchy) -> PathBuf {
    h.mountpoint
        .join(h.own_path.strip_prefix("/").unwrap_or(&h.own_path))
}
mod checks;
mod kill;
mod readings;

pub use checks::check_memory_nodes;
use checks::*;
use kill::*;
use readings::*;

/// Removes run cgroups left by a rootcell that was killed before its
/// teardown (SIGKILL leaves no chance): `rootcell-sandbox-<pid>-<n>` whose
/// pid is gone. Only empty directories go (rmdir refuses any other), so a
/// live run is never touched.
fn sweep_stale(selected: &[Hierarchy]) {
    let probe = cgroup::container_dirs(selected, Some(Path::new("probe")), "probe");
    let parents: Vec<&Path> = probe.dirs.iter().filter_map(|d| d.parent()).collect();
    // Every hierarchy holds the same names: one listing tells them all.
    let Some(entries) = parents.iter().find_map(|p| fs::read_dir(p).ok()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix("rootcell-sandbox-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        // kill(pid, 0): ESRCH means no such process.
        let gone = rustix::process::Pid::from_raw(owner)
            .is_some_and(|p| rustix::process::test_kill_process(p) == Err(rustix::io::Errno::SRCH));
        if !gone {
            continue;
        }
        for parent in &parents {
            let dir = parent.join(&name);
            if fs::remove_dir(&dir).is_ok() {
                tracing::debug!("removed a stale run cgroup {}", dir.display());
            }
        }
    }
}

/// Creates `rootcell-sandbox-<pid>-<n>` in every selected hierarchy, each
/// directory exclusively (a name another process holds, e.g. one with our
/// pid in another pid namespace, is never shared: the next `n` is taken).
/// A hierarchy we may not write to is skipped with a note. None when no
/// directory could be made.
fn make_dirs(
    selected: &[Hierarchy],
    notes: &mut Vec<String>,
) -> Result<Option<(String, ContainerCgroup)>> {
    let pid = std::process::id();
    sweep_stale(selected);
    for _ in 0..1000 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("rootcell-sandbox-{pid}-{n}");
        let all = cgroup::container_dirs(selected, Some(Path::new(&name)), &name);
        let mut made = ContainerCgroup::default();
        let mut taken = false;
        let mut skipped = Vec::new();
        for (dir, src) in all.dirs.iter().zip(&all.mount_sources) {
            match fs::create_dir(dir) {
                Ok(()) => {
                    made.dirs.push(dir.clone());
                    made.mount_sources.push(src.clone());
                    if let Err(e) = cgroup::inherit_cpuset(dir) {
                        let _ = cgroup::remove(&made.dirs);
                        return Err(Error::Io {
                            context: format!("{}: copying the parent's cpuset", dir.display()),
                            cause: e,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    taken = true;
                    break;
                }
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EACCES | libc::EPERM | libc::EROFS | libc::ENOENT)
                    ) =>
                {
                    skipped.push(format!("{}: {e}", dir.display()));
                }
                Err(e) => {
                    let _ = cgroup::remove(&made.dirs);
                    return Err(Error::Io {
                        context: format!("creating the run's cgroup {}", dir.display()),
                        cause: e,
                    });
                }
            }
        }
        if taken {
            cgroup::remove(&made.dirs)?;
            continue;
        }
        if !skipped.is_empty() {
            tracing::debug!("cgroup hierarchies not writable: {skipped:?}");
            if made.dirs.is_empty() {
                notes.push(format!("cannot create {}", skipped.join("; ")));
            }
        }
        if made.dirs.is_empty() {
            return Ok(None);
        }
        return Ok(Some((name, made)));
    }
    Err(Error::Other(
        "no free name for the run's cgroup after 1000 tries".into(),
    ))
}

/// The run's directory in the cgroup2 hierarchy, if any.
fn v2_dir(cg: &ContainerCgroup) -> Option<&Path> {
    cg.dirs
        .iter()
        .zip(&cg.mount_sources)
        .find(|(_, s)| s.fstype == "cgroup2")
        .map(|(d, _)| d.as_path())
}

/// Enables the measuring controllers (and cpuset when asked) the cgroup2
/// hierarchy offers, down to the run's directory. One that the limits
/// need and cannot be enabled is a usage error naming the flag.
fn enable_v2_controllers(
    dir: &Path,
    wanted: &[&str],
    limits: &Limits,
    notes: &mut Vec<String>,
) -> Result<()> {
    let root_controllers = dir
        .ancestors()
        .skip(1)
        .take_while(|p| p.join("cgroup.controllers").exists())
        .last()
        .and_then(|root| fs::read_to_string(root.join("cgroup.controllers")).ok())
        .unwrap_or_default();
    for c in wanted {
        let needed_by = match *c {
            "memory" if limits.memory.is_some() => Some("--memlimit"),
            "cpuset" if limits.cores.is_some() => Some("--cores"),
            "cpuset" if limits.memory_nodes.is_some() => Some("--memoryNodes"),
            _ => None,
        };
        if !root_controllers.split_whitespace().any(|have| have == *c) {
            continue; // Bound to a v1 hierarchy (hybrid) or not built in.
        }
        if let Err(why) = cgroup::enable_controller(dir, c) {
            match needed_by {
                Some(flag) => return Err(Error::usage(flag, why)),
                None => notes.push(why),
            }
        }
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn runs_without_a_cgroup_say_so() {
        let notes = notes_without_cgroup(&limits());
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("memory not measured"));
        let mut l = limits();
        l.cputime = Some(Duration::from_secs(1));
        assert!(notes_without_cgroup(&l)[1].contains("RLIMIT_CPU"));
    }

    #[test]
    fn rlimit_cpu_rounds_up_whole_seconds() {
        assert!(rlimits_without_cgroup(&limits()).is_empty());
        let mut l = limits();
        l.cputime = Some(Duration::from_millis(1500));
        l.memory = Some(1 << 30);
        let r = rlimits_without_cgroup(&l);
        assert_eq!(r, vec![(libc::RLIMIT_CPU as i32, 2, 2)], "no RLIMIT_AS");
        l.cputime = Some(Duration::from_secs(3));
        assert_eq!(rlimits_without_cgroup(&l)[0].1, 3);
        l.cputime = Some(Duration::from_millis(10));
        assert_eq!(rlimits_without_cgroup(&l)[0].1, 1, "never 0 (unlimited)");
    }

    #[test]
    fn limits_become_the_resources_plan_with_flag_names() {
        let mut l = limits();
        l.memory = Some(100_000_000);
        l.cores = Some(vec![0, 1, 3]);
        l.memory_nodes = Some(vec![0]);
        let v1 = limits_plan(&l, CgroupVersion::V1, true).unwrap().unwrap();
        let files: Vec<(String, String, String)> = v1
            .writes
            .iter()
            .map(|w| {
                (
                    w.field.clone(),
                    w.files[0].name.clone(),
                    w.files[0].value.clone(),
                )
            })
            .collect();
        let want = |f: &str, n: &str, v: &str| (f.to_string(), n.to_string(), v.to_string());
        assert_eq!(
            files,
            vec![
                want("--memlimit", "memory.limit_in_bytes", "100000000"),
                want("--memlimit", "memory.memsw.limit_in_bytes", "100000000"),
                want("--cores", "cpuset.cpus", "0-1,3"),
                want("--memoryNodes", "cpuset.mems", "0"),
            ]
        );
        // Without swap accounting: the limit alone.
        let v1 = limits_plan(&l, CgroupVersion::V1, false).unwrap().unwrap();
        assert!(v1.writes.iter().all(|w| !w.files[0].name.contains("memsw")));
        // v2: memory.max, and no swap beyond the limit.
        let v2 = limits_plan(&l, CgroupVersion::V2, true).unwrap().unwrap();
        let names: Vec<(&str, &str)> = v2
            .writes
            .iter()
            .map(|w| (w.files[0].name.as_str(), w.files[0].value.as_str()))
            .collect();
        assert_eq!(names[0], ("memory.max", "100000000"));
        assert_eq!(names[1], ("memory.swap.max", "0"));
        assert!(limits_plan(&limits(), CgroupVersion::V1, true)
            .unwrap()
            .is_none());
    }

    #[test]
    fn memory_nodes_must_exist() {
        check_nodes(&[0], "0\n").unwrap();
        check_nodes(&[0, 2], "0-3").unwrap();
        let e = check_nodes(&[0, 7], "0").unwrap_err();
        assert!(
            matches!(e, Error::Usage { ref flag, ref reason } if flag == "--memoryNodes" && reason.contains('7'))
        );
    }

    #[test]
    fn cores_outside_the_cpuset_name_the_flag() {
        check_subset("--cores", &[0, 1], "0-1\n").unwrap();
        let e = check_subset("--cores", &[1, 5, 7], "0-3").unwrap_err();
        assert!(matches!(e, Error::Usage { ref flag, .. } if flag == "--cores"));
        let text = e.to_string();
        assert!(
            text.contains("CPUs 5,7 not allowed") && text.contains("0-3"),
            "{text}"
        );
        let e = check_subset("--memoryNodes", &[1], "0")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--memoryNodes: memory node 1 not allowed"),
            "{e}"
        );
    }

    #[test]
    fn limits_without_any_cgroup_are_usage_errors_but_timelimit() {
        let mut l = limits();
        l.cputime = Some(Duration::from_secs(1));
        l.walltime = Some(Duration::from_secs(1));
        refuse_without_cgroup(&l, &[]).unwrap();
        for (flag, set) in [
            (
                "--memlimit",
                &(|l: &mut Limits| l.memory = Some(1)) as &dyn Fn(&mut Limits),
            ),
            ("--softtimelimit", &|l: &mut Limits| {
                l.soft_cputime = Some(Duration::from_secs(1))
            }),
            ("--cores", &|l: &mut Limits| l.cores = Some(vec![0])),
            ("--memoryNodes", &|l: &mut Limits| {
                l.memory_nodes = Some(vec![0])
            }),
        ] {
            let mut l = limits();
            set(&mut l);
            let e = refuse_without_cgroup(&l, &["cannot create /x: EACCES".into()]).unwrap_err();
            assert!(
                matches!(e, Error::Usage { flag: ref f, .. } if f == flag),
                "{e}"
            );
            let text = e.to_string();
            assert!(text.starts_with(flag) && text.contains("EACCES"), "{text}");
        }
    }

    #[test]
    fn cgroup_files_parse() {
        assert_eq!(
            parse_cpu_stat_usage("usage_usec 1500000\nuser_usec 1\nsystem_usec 2\n"),
            Some(Duration::from_millis(1500))
        );
        // A v1 cpu.stat (throttling only) has no usage.
        assert_eq!(
            parse_cpu_stat_usage("nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"),
            None
        );
        assert_eq!(
            parse_percpu("0 2000000000 0 5 \n"),
            vec![(1, Duration::from_secs(2)), (3, Duration::from_nanos(5))]
        );
        assert_eq!(
            parse_oom_kill("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            Some(2)
        );
        assert_eq!(
            parse_oom_kill("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n"),
            Some(1)
        );
        assert_eq!(parse_oom_kill("under_oom 0\n"), None);
        let blkio = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\n\
                     8:16 Read 1\n8:16 Write 2\nTotal 12291\n";
        assert_eq!(parse_blkio_v1(blkio), (4097, 8194));
        let io = "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n\
                  253:0 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n";
        assert_eq!(parse_io_stat(io), (101, 202));
    }

    #[test]
    fn usage_errors_keep_their_flag() {
        let e = as_usage(Error::spec("--memlimit", "x"));
        assert!(matches!(e, Error::Usage { .. }));
        let e = as_usage(Error::spec("linux.resources.x", "y"));
        assert!(matches!(e, Error::InvalidSpec { .. }));
        assert_eq!(flag_of("linux.resources.memory.swap"), "--memlimit");
        assert_eq!(flag_of("linux.resources.cpu.mems"), "--memoryNodes");
    }
}
