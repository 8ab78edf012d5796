//! The process fields beyond user, capabilities and rlimits, turned into
//! plain data: I/O priority, scheduler, exec CPU affinity, personality and
//! the LSM labels. Kernel numbers are resolved here so that the executor
//! only passes them on.

use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process,
    Spec,
};
use serde::Serialize;

use super::HostFacts;
use crate::error::{Error, Result};

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | priority)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IoPriority {
    /// `IOPRIO_CLASS_RT` (1), `IOPRIO_CLASS_BE` (2), `IOPRIO_CLASS_IDLE` (3).
    pub class: u16,
    pub class_name: &'static str,
    /// 0 (highest) to 7 (lowest).
    pub priority: u16,
}

impl IoPriority {
    pub fn value(&self) -> i32 {
        (i32::from(self.class) << 13) | i32::from(self.priority)
    }
}

/// `sched_setattr(0, attr, 0)`, as plain numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scheduler {
    pub policy: u32,
    pub policy_name: &'static str,
    /// `SCHED_FLAG_*` bits.
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// `execCPUAffinity`: CPU sets for a process that joins a running
/// container (`exec`). The runtime spec says it does not apply to the
/// container's init process, which runs wherever its cgroup allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecCpuAffinity {
    /// Before joining the container's cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial: Option<Vec<u32>>,
    /// Just before `execve`, inside the cgroup.
    #[serde(skip_serializing_if = "Option::is_none", rename = "final")]
    pub final_cpus: Option<Vec<u32>>,
}

/// `personality(persona)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Personality {
    pub domain: &'static str,
    pub persona: u64,
}

/// The LSM settings of the process, kept only when the host can apply them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lsm {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apparmor_profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selinux_label: Option<String>,
}

pub fn io_priority(process: &Process) -> Result<Option<IoPriority>> {
    let Some(io) = *process.io_priority() else {
        return Ok(None);
    };
    let (class, class_name) = match io.class() {
        IOPriorityClass::IoprioClassRt => (1, "IOPRIO_CLASS_RT"),
        IOPriorityClass::IoprioClassBe => (2, "IOPRIO_CLASS_BE"),
        IOPriorityClass::IoprioClassIdle => (3, "IOPRIO_CLASS_IDLE"),
    };
    let priority = u16::try_from(io.priority())
        .ok()
        .filter(|p| *p <= 7)
        .ok_or_else(|| {
            Error::spec(
                "process.ioPriority.priority",
                format!(
                    "{} is out of range: 0 (highest) to 7 (lowest)",
                    io.priority()
                ),
            )
        })?;
    Ok(Some(IoPriority {
        class,
        class_name,
        priority,
    }))
}

pub fn scheduler(process: &Process) -> Result<Option<Scheduler>> {
    let Some(s) = process.scheduler().as_ref() else {
        return Ok(None);
    };
    use LinuxSchedulerPolicy::*;
    let (policy, policy_name) = match s.policy() {
        SchedOther => (libc::SCHED_OTHER, "SCHED_OTHER"),
        SchedFifo => (libc::SCHED_FIFO, "SCHED_FIFO"),
        SchedRr => (libc::SCHED_RR, "SCHED_RR"),
        SchedBatch => (libc::SCHED_BATCH, "SCHED_BATCH"),
        SchedIdle => (libc::SCHED_IDLE, "SCHED_IDLE"),
        SchedDeadline => (6, "SCHED_DEADLINE"),
        SchedIso => {
            return Err(Error::spec(
                "process.scheduler.policy",
                "SCHED_ISO is reserved but not implemented by Linux",
            ))
        }
    };
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(Error::spec(
            "process.scheduler.nice",
            format!("{nice} is out of range: -20 to 19"),
        ));
    }
    let realtime = matches!(s.policy(), SchedFifo | SchedRr);
    let priority = s.priority().unwrap_or(0);
    if realtime && !(1..=99).contains(&priority) {
        return Err(Error::spec(
            "process.scheduler.priority",
            format!("{priority} is out of range for {policy_name}: 1 to 99"),
        ));
    }
    if !realtime && priority != 0 {
        return Err(Error::spec(
            "process.scheduler.priority",
            format!("{policy_name} has no static priority: only SCHED_FIFO and SCHED_RR take one"),
        ));
    }
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if *s.policy() != SchedDeadline && (runtime, deadline, period) != (0, 0, 0) {
        return Err(Error::spec(
            "process.scheduler",
            format!("runtime, deadline and period apply to SCHED_DEADLINE only, not {policy_name}"),
        ));
    }
    if *s.policy() == SchedDeadline
        && (runtime == 0 || runtime > deadline || (period != 0 && deadline > period))
    {
        return Err(Error::spec(
            "process.scheduler",
            "SCHED_DEADLINE needs 0 < runtime <= deadline <= period (period 0 means deadline)",
        ));
    }
    let mut flags = 0;
    for flag in s.flags().iter().flatten() {
        use LinuxSchedulerFlag::*;
        flags |= match flag {
            SchedResetOnFork => 0x01,
            SchedFlagReclaim => 0x02,
            SchedFlagDLOverrun => 0x04,
            SchedFlagKeepPolicy => 0x08,
            SchedFlagKeepParams => 0x10,
            SchedFlagUtilClampMin => 0x20,
            SchedFlagUtilClampMax => 0x40,
        };
    }
    Ok(Some(Scheduler {
        policy: policy as u32,
        policy_name,
        flags,
        nice,
        priority: priority as u32,
        runtime,
        deadline,
        period,
    }))
}

pub fn exec_cpu_affinity(process: &Process) -> Result<Option<ExecCpuAffinity>> {
    let Some(a) = process.exec_cpu_affinity().as_ref() else {
        return Ok(None);
    };
    let list = |s: &Option<String>, field: &str| -> Result<Option<Vec<u32>>> {
        match s.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => parse_cpu_list(text)
                .map(Some)
                .map_err(|reason| Error::spec(format!("process.execCPUAffinity.{field}"), reason)),
        }
    };
    let out = ExecCpuAffinity {
        initial: list(a.initial(), "initial")?,
        final_cpus: list(a.cpu_affinity_final(), "final")?,
    };
    Ok((out.initial.is_some() || out.final_cpus.is_some()).then_some(out))
}

/// The largest CPU number accepted in a list: the kernel's `NR_CPUS`
/// maximum. Whether the host has it is checked when it is applied.
pub const MAX_CPU: u32 = 8191;

/// Parses a kernel CPU list (`0-3,7`) into sorted, distinct CPU numbers.
pub fn parse_cpu_list(text: &str) -> std::result::Result<Vec<u32>, String> {
    let bad = || format!("{text:?} is not a CPU list like \"0-3,7\"");
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let num = |s: &str| -> std::result::Result<u32, String> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let n: u32 = s.parse().map_err(|_| bad())?;
            if n > MAX_CPU {
                return Err(format!("CPU {n} is beyond the kernel's limit of {MAX_CPU}"));
            }
            Ok(n)
        };
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            return Err(format!("{text:?}: the range {lo}-{hi} is backwards"));
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The kernel's CPU list syntax for `cpus` (sorted): `0-3,7`.
pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        parts.push(if cpus[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", cpus[i])
        });
        i += 1;
    }
    parts.join(",")
}

pub fn personality(spec: &Spec) -> Result<Option<Personality>> {
    let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) else {
        return Ok(None);
    };
    if let Some((i, flag)) = p.flags().iter().flatten().enumerate().next() {
        return Err(Error::spec(
            format!("linux.personality.flags[{i}]"),
            format!("{flag:?} is not supported: the runtime spec defines no personality flags"),
        ));
    }
    Ok(Some(match p.domain() {
        LinuxPersonalityDomain::PerLinux => Personality {
            domain: "LINUX",
            persona: 0x0000,
        },
        LinuxPersonalityDomain::PerLinux32 => Personality {
            domain: "LINUX32",
            persona: 0x0008,
        },
    }))
}

/// The AppArmor profile and SELinux label, if the host can apply them. A
/// requested one the host cannot apply is an error: running the container
/// unconfined instead would silently drop the protection asked for.
pub fn lsm(process: &Process, host: &HostFacts) -> Result<Lsm> {
    let profile = process.apparmor_profile().clone().filter(|p| !p.is_empty());
    let label = process.selinux_label().clone().filter(|l| !l.is_empty());
    if let Some(p) = &profile {
        if !host.apparmor {
            return Err(Error::spec(
                "process.apparmorProfile",
                format!(
                    "AppArmor is not enabled on this host, so profile {p:?} cannot be applied \
                     (remove the field to run without it)"
                ),
            ));
        }
        if p.contains('\0') || p.contains('\n') {
            return Err(Error::spec(
                "process.apparmorProfile",
                format!("{p:?} is not a profile name"),
            ));
        }
    }
    if let Some(l) = &label {
        if !host.selinux {
            return Err(Error::spec(
                "process.selinuxLabel",
                format!(
                    "SELinux is not enabled on this host, so label {l:?} cannot be applied \
                     (remove the field to run without it)"
                ),
            ));
        }
        if l.contains('\0') {
            return Err(Error::spec(
                "process.selinuxLabel",
                format!("{l:?} is not a label"),
            ));
        }
    }
    Ok(Lsm {
        apparmor_profile: profile,
        selinux_label: label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The planners take the process; the tests build whole specs.
    fn process_of(spec: &Spec) -> &Process {
        spec.process()
            .as_ref()
            .expect("the test spec has a process")
    }
    fn io_priority(spec: &Spec) -> Result<Option<IoPriority>> {
        super::io_priority(process_of(spec))
    }
    fn scheduler(spec: &Spec) -> Result<Option<Scheduler>> {
        super::scheduler(process_of(spec))
    }
    fn exec_cpu_affinity(spec: &Spec) -> Result<Option<ExecCpuAffinity>> {
        super::exec_cpu_affinity(process_of(spec))
    }
    fn lsm(spec: &Spec, host: &HostFacts) -> Result<Lsm> {
        super::lsm(process_of(spec), host)
    }
    use serde_json::json;

    fn spec(edit: impl FnOnce(&mut serde_json::Value)) -> Spec {
        let mut v = crate::spec::default_spec(None);
        edit(&mut v);
        crate::spec::parse(&serde_json::to_vec(&v).unwrap()).unwrap()
    }

    fn err<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn io_priority_classes_and_range() {
        let io = |class: &str, prio: i64| {
            io_priority(&spec(|v| {
                v["process"]["ioPriority"] = json!({"class": class, "priority": prio})
            }))
        };
        let p = io("IOPRIO_CLASS_BE", 5).unwrap().unwrap();
        assert_eq!((p.class, p.priority, p.value()), (2, 5, (2 << 13) | 5));
        assert_eq!(io("IOPRIO_CLASS_RT", 0).unwrap().unwrap().value(), 1 << 13);
        assert_eq!(io("IOPRIO_CLASS_IDLE", 7).unwrap().unwrap().class, 3);
        for bad in [8, -1] {
            let e = err(io("IOPRIO_CLASS_BE", bad));
            assert!(e.starts_with("process.ioPriority.priority:"), "{e}");
        }
        assert_eq!(io_priority(&spec(|_| {})).unwrap(), None);
    }

    #[test]
    fn scheduler_policies_flags_and_checks() {
        let sched = |s: serde_json::Value| scheduler(&spec(|v| v["process"]["scheduler"] = s));
        let s = sched(json!({"policy": "SCHED_BATCH", "nice": 5}))
            .unwrap()
            .unwrap();
        assert_eq!((s.policy, s.nice, s.priority), (3, 5, 0));
        let s = sched(json!({"policy": "SCHED_FIFO", "priority": 10,
                             "flags": ["SCHED_FLAG_RESET_ON_FORK"]}))
        .unwrap()
        .unwrap();
        assert_eq!((s.policy, s.priority, s.flags), (1, 10, 1));
        let s = sched(json!({"policy": "SCHED_DEADLINE", "runtime": 10_000_000u64,
                             "deadline": 20_000_000u64, "period": 30_000_000u64,
                             "flags": ["SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_RECLAIM"]}))
        .unwrap()
        .unwrap();
        assert_eq!((s.policy, s.runtime, s.flags), (6, 10_000_000, 0x06));
        for (bad, field) in [
            (json!({"policy": "SCHED_OTHER", "nice": 20}), "nice"),
            (json!({"policy": "SCHED_OTHER", "priority": 3}), "priority"),
            (json!({"policy": "SCHED_RR", "priority": 0}), "priority"),
            (json!({"policy": "SCHED_FIFO", "priority": 100}), "priority"),
            (json!({"policy": "SCHED_ISO"}), "policy"),
        ] {
            let e = err(sched(bad));
            assert!(e.starts_with(&format!("process.scheduler.{field}:")), "{e}");
        }
        for bad in [
            json!({"policy": "SCHED_BATCH", "runtime": 5}),
            json!({"policy": "SCHED_DEADLINE", "runtime": 5, "deadline": 4}),
            json!({"policy": "SCHED_DEADLINE"}),
        ] {
            let e = err(sched(bad));
            assert!(e.starts_with("process.scheduler:"), "{e}");
        }
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,7").unwrap(), [0, 1, 2, 3, 7]);
        assert_eq!(parse_cpu_list("5").unwrap(), [5]);
        assert_eq!(parse_cpu_list("3,1-2,2").unwrap(), [1, 2, 3]);
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 7, 9, 10]), "0-3,7,9-10");
        assert_eq!(format_cpu_list(&[]), "");
        for bad in ["", "a", "1-", "-1", "3-1", "1,,2", "1 ", "99999"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?}");
        }
        let a = exec_cpu_affinity(&spec(|v| {
            v["process"]["execCPUAffinity"] = json!({"initial": "0-1", "final": "1"})
        }))
        .unwrap()
        .unwrap();
        assert_eq!(a.initial, Some(vec![0, 1]));
        assert_eq!(a.final_cpus, Some(vec![1]));
        // A malformed list is refused by the parser, naming the field.
        let mut v = crate::spec::default_spec(None);
        v["process"]["execCPUAffinity"] = json!({"final": "1-x"});
        let e = crate::spec::parse(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("process.execCPUAffinity.final"), "{e}");
    }

    #[test]
    fn personality_domains_and_flags() {
        let p = |x: serde_json::Value| personality(&spec(|v| v["linux"]["personality"] = x));
        assert_eq!(p(json!({"domain": "LINUX32"})).unwrap().unwrap().persona, 8);
        assert_eq!(p(json!({"domain": "LINUX"})).unwrap().unwrap().persona, 0);
        let e = err(p(
            json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}),
        ));
        assert!(e.starts_with("linux.personality.flags[0]:"), "{e}");
    }

    #[test]
    fn lsm_labels_need_the_lsm_on_the_host() {
        let s = spec(|v| {
            v["process"]["apparmorProfile"] = json!("rootcell-test");
            v["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
        });
        let none = HostFacts::default();
        let e = err(lsm(&s, &none));
        assert!(e.starts_with("process.apparmorProfile:"), "{e}");
        assert!(e.contains("rootcell-test"), "{e}");
        let apparmor = HostFacts {
            apparmor: true,
            ..Default::default()
        };
        let e = err(lsm(&s, &apparmor));
        assert!(e.starts_with("process.selinuxLabel:"), "{e}");
        let both = HostFacts {
            apparmor: true,
            selinux: true,
            ..Default::default()
        };
        let l = lsm(&s, &both).unwrap();
        assert_eq!(l.apparmor_profile.as_deref(), Some("rootcell-test"));
        assert_eq!(
            l.selinux_label.as_deref(),
            Some("system_u:system_r:container_t:s0")
        );
        // Empty strings mean "not set", as in runc.
        let empty = spec(|v| {
            v["process"]["apparmorProfile"] = json!("");
            v["process"]["selinuxLabel"] = json!("");
        });
        assert_eq!(lsm(&empty, &none).unwrap(), Lsm::default());
    }
}
