//! The process part of a [`Plan`]: every process the container starts
//! (its init and each `exec`) is planned here as plain data: user, rlimits,
//! capabilities, environment, console size, the seccomp plan, and the
//! order of the final steps up to `execve` (`final_steps`). The other
//! process fields (I/O priority, scheduler, personality, LSM) come from
//! `process.rs`.

use oci_spec::runtime::{PosixRlimitType, Process, Spec};

use super::*;
use crate::error::{Error, Result};

/// Socket activation: the container's process finds its sockets as systemd
/// would tell it, at fd 3 on, for pid 1.
pub(super) fn with_listen_fds(mut process: ProcessPlan, listen_fds: u32) -> ProcessPlan {
    if listen_fds > 0 {
        process
            .env
            .retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        process.env.push(format!("LISTEN_FDS={listen_fds}"));
        process.env.push("LISTEN_PID=1".into());
    }
    process
}

/// The process settings as plain data: the container's process, and every
/// process `exec` starts, go through here, so both are checked alike
/// (`spec::validate_process`) and named `process.*` in errors. `spec` gives
/// the container-wide settings that apply to every process (seccomp,
/// personality); `process` the process's own.
pub fn process_plan(spec: &Spec, process: &Process, host: &HostFacts) -> Result<ProcessPlan> {
    crate::spec::validate_process(spec, process)?;
    let user = process.user();
    let mut rlimits = Vec::new();
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        let (name, resource) = rlimit_resource(r.typ());
        if resource < 0 {
            return Err(Error::spec(
                format!("process.rlimits[{i}].type"),
                format!("{name} is not known to this kernel"),
            ));
        }
        rlimits.push(Rlimit {
            name: name.to_string(),
            resource,
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    let mut warnings = Vec::new();
    let capabilities = match process.capabilities() {
        None => None,
        Some(c) => Some(capabilities(c, &mut warnings)?),
    };
    let mut plan = ProcessPlan {
        args: process.args().clone().unwrap_or_default(),
        env: dedup_env(process.env().as_deref().unwrap_or_default()),
        cwd: process.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask().unwrap_or(0o022),
        terminal: process.terminal().unwrap_or(false),
        console_size: console_size(process)?,
        rlimits,
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        oom_score_adj: process.oom_score_adj(),
        capabilities,
        personality: super::process::personality(spec)?,
        io_priority: super::process::io_priority(process)?,
        scheduler: super::process::scheduler(process)?,
        exec_cpu_affinity: super::process::exec_cpu_affinity(process)?,
        lsm: super::process::lsm(process, host)?,
        seccomp: match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(super::seccomp::seccomp_plan(s, &|name| {
                // A table lookup in libseccomp, no syscall.
                libseccomp::ScmpSyscall::from_name(name).ok().map(i32::from)
            })?),
            None => None,
        },
        final_steps: Vec::new(),
        warnings,
    };
    plan.final_steps = final_steps(&plan, ProcessRole::Exec);
    Ok(plan)
}

/// `process.capabilities` as plain data. Inheritable is exactly what the
/// config says (a set the kernel refuses, e.g. one not within bounding,
/// fails at `capset` as in runc). An ambient capability is raised only if
/// it is permitted and inheritable, which the kernel requires; the others
/// are left out with a warning, as runc does.
fn capabilities(
    c: &oci_spec::runtime::LinuxCapabilities,
    warnings: &mut Vec<String>,
) -> Result<Capabilities> {
    let mut caps = Capabilities {
        bounding: capability_names(c.bounding(), "bounding")?,
        effective: capability_names(c.effective(), "effective")?,
        permitted: capability_names(c.permitted(), "permitted")?,
        inheritable: capability_names(c.inheritable(), "inheritable")?,
        ambient: Vec::new(),
        ambient_left_out: Vec::new(),
    };
    for cap in capability_names(c.ambient(), "ambient")? {
        if caps.permitted.contains(&cap) && caps.inheritable.contains(&cap) {
            caps.ambient.push(cap);
        } else {
            warnings.push(format!(
                "process.capabilities.ambient: {cap} is not in both the permitted and the \
                 inheritable set, so the kernel cannot raise it: left out"
            ));
            caps.ambient_left_out.push(cap);
        }
    }
    Ok(caps)
}

/// The last steps of a process, in order. The seccomp filter is loaded
/// last: after it only `execve` runs, so a profile need not allow any of
/// the runtime's own syscalls (DESIGN rule 10). Without no_new_privs the
/// load needs CAP_SYS_ADMIN, which the capability step then keeps in the
/// effective and permitted sets only, for `execve` to drop.
///
/// A notifying filter hands its fd to the runtime right after the load
/// (`sendmsg`, then `recvmsg` for the agent's receipt). With `run` that
/// handoff also tells the runtime that exec is next. Under `create`, the
/// runtime that could hand the fd to the agent is gone once `create`
/// returns, so a notifying filter is loaded before `Ready`, as runc does
/// (the agent gets the fd during `create`, state `creating`); the steps
/// after it are then the runtime's, and the profile must allow them.
pub fn final_steps(p: &ProcessPlan, role: ProcessRole) -> Vec<FinalStep> {
    use FinalStep::*;
    let filter = p.seccomp.is_some();
    let notifies = p.seccomp.as_ref().is_some_and(|s| s.listener.is_some());
    let keep_sys_admin = filter && !p.no_new_privileges;
    let mut steps = vec![SwitchUser];
    if p.capabilities.is_some() || keep_sys_admin {
        steps.push(SetCapabilities { keep_sys_admin });
    }
    if p.no_new_privileges {
        steps.push(NoNewPrivileges);
    }
    steps.extend([EnterCwd, ResolveProgram]);
    let mut load_early = false;
    match role {
        ProcessRole::Exec => {
            if p.exec_cpu_affinity
                .as_ref()
                .is_some_and(|a| a.final_cpus.is_some())
            {
                steps.push(ExecCpuAffinity);
            }
        }
        ProcessRole::Init { start } => {
            let fifo_gate = start == StartSignal::ExecFifo;
            load_early = notifies && fifo_gate;
            if load_early {
                steps.push(LoadSeccomp { handoff: true });
            }
            // `run` without a start signal: nothing but the startContainer
            // hooks comes between init's readiness and its exec, so the
            // announcement of the exec says both. One wake-up of the
            // runtime fewer while init finishes (here the scheduler packs
            // a woken runtime onto init's CPU, ahead of it). A notifying
            // filter's handoff still needs the runtime on the other end.
            if start != StartSignal::None || notifies {
                steps.push(Ready);
            }
            if start != StartSignal::None {
                steps.push(WaitForStart);
            }
            steps.push(StartContainerHooks);
            // With `run`, a notifying filter's handoff announces the exec.
            if !notifies || fifo_gate {
                steps.push(AnnounceExec);
            }
        }
    }
    steps.extend([CloseFds, ResetSignals]);
    if filter && !load_early {
        steps.push(LoadSeccomp { handoff: notifies });
    }
    steps.push(Execve);
    steps
}

/// One entry per variable: a later `KEY=…` replaces an earlier one in its
/// place, as runc's `os.Setenv` loop does. That is how `exec --env` (added
/// after the container's variables) overrides them.
fn dedup_env(env: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(env.len());
    for var in env {
        let key = var.split_once('=').map_or(var.as_str(), |(k, _)| k);
        match out
            .iter_mut()
            .find(|v| v.split_once('=').map_or(v.as_str(), |(k, _)| k) == key)
        {
            Some(slot) => slot.clone_from(var),
            None => out.push(var.clone()),
        }
    }
    out
}

/// `process.consoleSize`, which only a terminal has (the runtime spec says
/// to ignore it otherwise). A dimension of 0 keeps the kernel's default, as
/// in runc; one beyond the kernel's 16 bits is an error, not truncated.
fn console_size(process: &oci_spec::runtime::Process) -> Result<Option<ConsoleSize>> {
    let Some(size) = process
        .console_size()
        .filter(|_| process.terminal() == Some(true))
    else {
        return Ok(None);
    };
    let dimension = |value: u64, name: &str| {
        u16::try_from(value).map_err(|_| {
            Error::spec(
                format!("process.consoleSize.{name}"),
                format!("{value} is larger than {}", u16::MAX),
            )
        })
    };
    let height = dimension(size.height(), "height")?;
    let width = dimension(size.width(), "width")?;
    Ok((height != 0 && width != 0).then_some(ConsoleSize { height, width }))
}

/// Capability names as the kernel knows them (`CAP_KILL`), sorted. A name
/// the config accepts but this host's kernel headers do not know is an
/// error naming the set.
fn capability_names(
    set: &Option<oci_spec::runtime::Capabilities>,
    field: &str,
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for cap in set.iter().flatten() {
        let name = serde_json::to_value(cap)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let name = format!("CAP_{}", name.trim_start_matches("CAP_"));
        if <caps::Capability as std::str::FromStr>::from_str(&name).is_err() {
            return Err(Error::spec(
                format!("process.capabilities.{field}"),
                format!("unknown capability {name:?}"),
            ));
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

fn rlimit_resource(typ: PosixRlimitType) -> (&'static str, i32) {
    use PosixRlimitType::*;
    let (name, res) = match typ {
        RlimitCpu => ("RLIMIT_CPU", libc::RLIMIT_CPU),
        RlimitFsize => ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        RlimitData => ("RLIMIT_DATA", libc::RLIMIT_DATA),
        RlimitStack => ("RLIMIT_STACK", libc::RLIMIT_STACK),
        RlimitCore => ("RLIMIT_CORE", libc::RLIMIT_CORE),
        RlimitRss => ("RLIMIT_RSS", libc::RLIMIT_RSS),
        RlimitNproc => ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        RlimitNofile => ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        RlimitMemlock => ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        RlimitAs => ("RLIMIT_AS", libc::RLIMIT_AS),
        RlimitLocks => ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        RlimitSigpending => ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        RlimitMsgqueue => ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        RlimitNice => ("RLIMIT_NICE", libc::RLIMIT_NICE),
        RlimitRtprio => ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        RlimitRttime => ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    };
    (name, res as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::build::tests::{bundle, hybrid};
    use crate::plan::{build, PlanOptions};

    #[test]
    fn console_size_only_with_a_terminal() {
        let plan_of = |terminal: bool, size: serde_json::Value| {
            build(
                &bundle(|v| {
                    v["process"]["terminal"] = terminal.into();
                    v["process"]["consoleSize"] = size;
                }),
                &hybrid(),
                PlanOptions::default(),
            )
        };
        let size = |h, w| serde_json::json!({"height": h, "width": w});
        let p = plan_of(true, size(33, 111)).unwrap().process;
        assert!(p.terminal);
        assert_eq!(
            p.console_size,
            Some(ConsoleSize {
                height: 33,
                width: 111
            })
        );
        // Ignored without a terminal, as the runtime spec says; a zero
        // dimension keeps the kernel's default, as in runc.
        assert_eq!(
            plan_of(false, size(33, 111)).unwrap().process.console_size,
            None
        );
        assert_eq!(
            plan_of(true, size(0, 111)).unwrap().process.console_size,
            None
        );
        // Beyond the kernel's 16 bits: an error naming the field.
        let err = plan_of(true, size(70000, 80)).unwrap_err().to_string();
        assert!(err.contains("process.consoleSize.height"), "{err}");
        let err = plan_of(true, size(24, 65536)).unwrap_err().to_string();
        assert!(err.contains("process.consoleSize.width"), "{err}");
    }

    /// Every combination of role, no_new_privs and filter (with and without
    /// a notifying rule): the filter is loaded last, only `Execve` after
    /// it, except for a notifying filter under `create`, loaded before
    /// `Ready` (the agent needs the fd while `create` runs).
    #[test]
    fn seccomp_is_loaded_last_before_execve() {
        use FinalStep::*;
        let allow = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]});
        let notify = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
        let roles = [
            ProcessRole::Init {
                start: StartSignal::ExecFifo,
            },
            ProcessRole::Init {
                start: StartSignal::Socket,
            },
            ProcessRole::Init {
                start: StartSignal::None,
            },
            ProcessRole::Exec,
        ];
        for nnp in [false, true] {
            for filter in [None, Some(&allow), Some(&notify)] {
                for caps in [true, false] {
                    let b = bundle(|v| {
                        v["process"]["noNewPrivileges"] = nnp.into();
                        if !caps {
                            v["process"].as_object_mut().unwrap().remove("capabilities");
                        }
                        if let Some(f) = filter {
                            v["linux"]["seccomp"] = f.clone();
                        }
                    });
                    let p = process_plan(&b.spec, b.spec.process().as_ref().unwrap(), &hybrid())
                        .unwrap();
                    for role in roles {
                        let steps = final_steps(&p, role);
                        let what = format!("{role:?} nnp {nnp} filter {filter:?} caps {caps}");
                        assert_eq!(steps.last(), Some(&Execve), "{what}: {steps:?}");
                        assert_eq!(steps[0], SwitchUser, "{what}: {steps:?}");
                        let loads: Vec<usize> = steps
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| matches!(s, LoadSeccomp { .. }))
                            .map(|(i, _)| i)
                            .collect();
                        let notifies = filter == Some(&notify);
                        match filter {
                            None => assert!(loads.is_empty(), "{what}: {steps:?}"),
                            Some(_) => {
                                assert_eq!(loads.len(), 1, "{what}: {steps:?}");
                                let at = loads[0];
                                assert_eq!(steps[at], LoadSeccomp { handoff: notifies }, "{what}");
                                let under_create = role
                                    == (ProcessRole::Init {
                                        start: StartSignal::ExecFifo,
                                    });
                                if notifies && under_create {
                                    assert_eq!(steps[at + 1], Ready, "{what}: {steps:?}");
                                } else {
                                    assert_eq!(at + 2, steps.len(), "{what}: {steps:?}");
                                }
                            }
                        }
                        // The capability step keeps CAP_SYS_ADMIN exactly
                        // when the load needs it.
                        let keep = filter.is_some() && !nnp;
                        let set_caps = steps.iter().find_map(|s| match s {
                            SetCapabilities { keep_sys_admin } => Some(*keep_sys_admin),
                            _ => None,
                        });
                        assert_eq!(
                            set_caps,
                            (caps || keep).then_some(keep),
                            "{what}: {steps:?}"
                        );
                        let pos = |want: FinalStep| steps.iter().position(|s| *s == want);
                        assert!(pos(SwitchUser) < pos(EnterCwd), "{what}");
                        assert_eq!(pos(NoNewPrivileges).is_some(), nnp, "{what}");
                        assert!(pos(EnterCwd) < pos(ResolveProgram), "{what}");
                        assert!(pos(ResolveProgram) < pos(CloseFds), "{what}");
                        assert!(pos(CloseFds) < pos(ResetSignals), "{what}");
                        match role {
                            ProcessRole::Exec => {
                                for s in [Ready, WaitForStart, StartContainerHooks, AnnounceExec] {
                                    assert_eq!(pos(s), None, "{what}");
                                }
                            }
                            ProcessRole::Init { start } => {
                                let fifo_gate = start == StartSignal::ExecFifo;
                                // Without a start signal the announcement of
                                // the exec is the readiness too.
                                let ready = start != StartSignal::None || notifies;
                                assert_eq!(pos(Ready).is_some(), ready, "{what}");
                                if ready {
                                    assert!(pos(ResolveProgram) < pos(Ready), "{what}");
                                }
                                assert!(pos(ResolveProgram) < pos(StartContainerHooks), "{what}");
                                match start {
                                    StartSignal::None => {
                                        assert_eq!(pos(WaitForStart), None, "{what}");
                                        if ready {
                                            assert!(
                                                pos(Ready) < pos(StartContainerHooks),
                                                "{what}"
                                            );
                                        }
                                    }
                                    _ => {
                                        assert!(pos(Ready) < pos(WaitForStart), "{what}");
                                        assert!(
                                            pos(WaitForStart) < pos(StartContainerHooks),
                                            "{what}"
                                        );
                                    }
                                }
                                assert!(pos(StartContainerHooks) < pos(CloseFds), "{what}");
                                // `run` with a notifying filter: the
                                // handoff announces the exec.
                                let announce = !notifies || fifo_gate;
                                assert_eq!(pos(AnnounceExec).is_some(), announce, "{what}");
                                if announce {
                                    assert!(pos(StartContainerHooks) < pos(AnnounceExec));
                                    assert!(pos(AnnounceExec) < pos(CloseFds), "{what}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `plan::build` plans init's steps for `create` unless told `run`.
    #[test]
    fn init_final_steps_follow_the_start_signal() {
        let b = bundle(|v| {
            v["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": "/run/agent.sock",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
        });
        let create = build(&b, &hybrid(), PlanOptions::default()).unwrap();
        let role = |start| ProcessRole::Init { start };
        assert_eq!(
            create.process.final_steps,
            final_steps(&create.process, role(StartSignal::ExecFifo))
        );
        let run = |start| {
            build(
                &b,
                &hybrid(),
                PlanOptions {
                    start,
                    ..PlanOptions::default()
                },
            )
            .unwrap()
        };
        let (waits, at_once) = (run(StartSignal::Socket), run(StartSignal::None));
        assert_eq!(
            waits.process.final_steps,
            final_steps(&waits.process, role(StartSignal::Socket))
        );
        assert_eq!(
            at_once.process.final_steps,
            final_steps(&at_once.process, role(StartSignal::None))
        );
        assert_ne!(create.process.final_steps, waits.process.final_steps);
        assert!(!at_once
            .process
            .final_steps
            .contains(&FinalStep::WaitForStart));
    }

    /// Inheritable exactly as configured; ambient only where permitted and
    /// inheritable, the rest a warning (the default spec's ambient set has
    /// no inheritable set behind it, as runc's).
    #[test]
    fn capabilities_inheritable_as_configured_and_ambient_checked() {
        let plan_of = |caps: serde_json::Value| {
            let b = bundle(|v| v["process"]["capabilities"] = caps);
            process_plan(&b.spec, b.spec.process().as_ref().unwrap(), &hybrid()).unwrap()
        };
        let p = plan_of(serde_json::json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"], "inheritable": ["CAP_CHOWN", "CAP_SYS_ADMIN"],
            "ambient": ["CAP_CHOWN", "CAP_KILL"]}));
        let c = p.capabilities.unwrap();
        assert_eq!(c.inheritable, ["CAP_CHOWN", "CAP_SYS_ADMIN"]);
        assert_eq!(c.ambient, ["CAP_CHOWN"]);
        assert_eq!(c.ambient_left_out, ["CAP_KILL"]);
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(
            p.warnings[0].starts_with("process.capabilities.ambient: CAP_KILL"),
            "{:?}",
            p.warnings
        );
        let b = bundle(|_| {});
        let p = process_plan(&b.spec, b.spec.process().as_ref().unwrap(), &hybrid()).unwrap();
        let c = p.capabilities.unwrap();
        assert!(c.inheritable.is_empty() && c.ambient.is_empty());
        assert_eq!(c.ambient_left_out.len(), 3);
    }
}
