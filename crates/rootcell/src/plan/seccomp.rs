//! `linux.seccomp` → [`SeccompPlan`]: every check that can be made without
//! the kernel, done once, with errors naming the JSON field. The executor
//! (`process::seccomp`) compiles the plan with libseccomp and loads it.
//!
//! What runc does, and so what we do:
//! - a syscall name libseccomp does not know is skipped (an older profile on
//!   a newer libseccomp, or the other way round, still loads);
//! - a rule whose action is the default action is dropped (libseccomp
//!   refuses it, and it changes nothing);
//! - several conditions on the same argument become one rule each (libseccomp
//!   ANDs conditions, and two conditions on one argument would never match);
//! - `SCMP_ACT_NOTIFY` is refused as the default action and for `write`.
//!
//! Stricter than runc 1.1, as the runtime spec says: `errnoRet` on an action
//! that has no errno, `listenerMetadata` without `listenerPath`, and
//! `SCMP_ACT_NOTIFY` without a `listenerPath` are errors.

use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use serde::Serialize;

use crate::error::{Error, Result};

/// A seccomp filter as plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompPlan {
    pub default_action: SeccompAction,
    /// libseccomp architecture names (`SCMP_ARCH_X86`), besides the native
    /// one, which a filter always has.
    pub architectures: Vec<String>,
    pub flags: Vec<SeccompFlag>,
    /// Where to send the notification fd; only when a rule notifies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<SeccompListener>,
    pub rules: Vec<SeccompRule>,
    /// Names libseccomp does not know, skipped as runc does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_syscalls: Vec<String>,
    /// runc's ENOSYS stub: on the native architecture, a syscall numbered
    /// above every syscall the profile names returns ENOSYS instead of the
    /// default action, so that libc falls back from a syscall newer than
    /// the profile (`clone3`, `openat2`, `close_range`, `statx`…) to an
    /// older one. None when the default action allows (or logs) anyway,
    /// or already returns ENOSYS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enosys_stub: Option<EnosysStub>,
}

/// See [`SeccompPlan::enosys_stub`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnosysStub {
    /// The highest native syscall number the profile names.
    pub above: u32,
    /// Its name.
    pub newest: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SeccompAction {
    /// `SCMP_ACT_KILL` and `SCMP_ACT_KILL_THREAD`.
    KillThread,
    KillProcess,
    Trap,
    Errno {
        errno: u16,
    },
    Trace {
        message: u16,
    },
    Allow,
    Log,
    Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeccompFlag {
    Tsync,
    Log,
    SpecAllow,
    WaitKillableRecv,
}

impl SeccompFlag {
    pub fn name(self) -> &'static str {
        match self {
            SeccompFlag::Tsync => "SECCOMP_FILTER_FLAG_TSYNC",
            SeccompFlag::Log => "SECCOMP_FILTER_FLAG_LOG",
            SeccompFlag::SpecAllow => "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            SeccompFlag::WaitKillableRecv => "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        }
    }

    pub const ALL: [SeccompFlag; 4] = [
        SeccompFlag::Tsync,
        SeccompFlag::Log,
        SeccompFlag::SpecAllow,
        SeccompFlag::WaitKillableRecv,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompListener {
    pub path: PathBuf,
    pub metadata: String,
}

/// One libseccomp rule: one syscall, one action, conditions ANDed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompRule {
    pub syscall: String,
    pub action: SeccompAction,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ArgCondition>,
    /// Index in `linux.seccomp.syscalls`, for error messages.
    pub config_index: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ArgCondition {
    /// Argument number, 0 to 5.
    pub index: u32,
    pub op: CompareOp,
    /// For `MaskedEq`, the mask.
    pub value: u64,
    /// For `MaskedEq`, what the masked argument must equal.
    pub value_two: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// A syscall has at most six arguments.
const MAX_ARGS: usize = 6;

/// Syscalls that init makes after loading the filter and before the
/// notification fd reaches the agent: notifying them would wait forever.
/// `write` is refused by runc for the same reason.
const NOT_NOTIFIABLE: [&str; 2] = ["write", "sendmsg"];

/// Converts `linux.seccomp`. `resolve` gives libseccomp's number of a
/// syscall name on the native architecture (negative for a syscall only
/// other architectures have), None for a name libseccomp does not know
/// (passed in so the conversion stays testable and free of syscalls).
pub fn seccomp_plan(
    s: &LinuxSeccomp,
    resolve: &dyn Fn(&str) -> Option<i32>,
) -> Result<SeccompPlan> {
    const F: &str = "linux.seccomp";
    let default_action = action(
        s.default_action(),
        s.default_errno_ret(),
        &format!("{F}.defaultAction"),
        &format!("{F}.defaultErrnoRet"),
    )?;
    if default_action == SeccompAction::Notify {
        return Err(Error::spec(
            format!("{F}.defaultAction"),
            "SCMP_ACT_NOTIFY cannot be the default action: the runtime's own syscalls \
             would wait for the agent",
        ));
    }

    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    let mut newest: Option<(i32, &String)> = None;
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("{F}.syscalls[{i}]");
        if call.names().is_empty() {
            return Err(Error::spec(
                format!("{field}.names"),
                "must name at least one syscall",
            ));
        }
        let act = action(
            call.action(),
            call.errno_ret(),
            &format!("{field}.action"),
            &format!("{field}.errnoRet"),
        )?;
        let mut conditions = Vec::new();
        let mut per_index = [0usize; MAX_ARGS];
        for (j, arg) in call.args().iter().flatten().enumerate() {
            if arg.index() >= MAX_ARGS {
                return Err(Error::spec(
                    format!("{field}.args[{j}].index"),
                    format!(
                        "{} is out of range: syscalls have arguments 0 to {}",
                        arg.index(),
                        MAX_ARGS - 1
                    ),
                ));
            }
            per_index[arg.index()] += 1;
            conditions.push(ArgCondition {
                index: arg.index() as u32,
                op: compare_op(arg.op()),
                value: arg.value(),
                value_two: arg.value_two().unwrap_or(0),
            });
        }
        for name in call.names() {
            if act == SeccompAction::Notify && NOT_NOTIFIABLE.contains(&name.as_str()) {
                return Err(Error::spec(
                    format!("{field}.action"),
                    format!(
                        "SCMP_ACT_NOTIFY cannot be used for {name:?}: the runtime needs it \
                         before the agent has the notification fd"
                    ),
                ));
            }
            let Some(nr) = resolve(name) else {
                if !skipped.contains(name) {
                    skipped.push(name.clone());
                }
                continue;
            };
            // Every name counts, whatever its action (as in runc): a
            // syscall the profile denies on purpose keeps its action.
            if nr >= 0 && newest.is_none_or(|(n, _)| nr > n) {
                newest = Some((nr, name));
            }
            if act == default_action {
                continue;
            }
            let rule = |conditions: Vec<ArgCondition>| SeccompRule {
                syscall: name.clone(),
                action: act,
                conditions,
                config_index: i,
            };
            if per_index.iter().any(|n| *n > 1) {
                rules.extend(conditions.iter().map(|c| rule(vec![*c])));
            } else {
                rules.push(rule(conditions.clone()));
            }
        }
    }

    let notifies = rules.iter().any(|r| r.action == SeccompAction::Notify);
    let listener = match (s.listener_path(), s.listener_metadata()) {
        (None, Some(_)) => {
            return Err(Error::spec(
                format!("{F}.listenerMetadata"),
                "must not be set without linux.seccomp.listenerPath",
            ))
        }
        (None, None) if notifies => {
            return Err(Error::spec(
                format!("{F}.listenerPath"),
                "SCMP_ACT_NOTIFY needs a listenerPath: the unix socket of the seccomp agent",
            ))
        }
        (Some(path), _) if notifies && !path.is_absolute() => {
            return Err(Error::spec(
                format!("{F}.listenerPath"),
                format!("{} must be an absolute path", path.display()),
            ))
        }
        (Some(path), metadata) if notifies => Some(SeccompListener {
            path: path.clone(),
            metadata: metadata.clone().unwrap_or_default(),
        }),
        // Without SCMP_ACT_NOTIFY the path is ignored (runtime spec).
        _ => None,
    };

    let mut flags = Vec::new();
    for flag in s.flags().iter().flatten() {
        let flag = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => SeccompFlag::Tsync,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => SeccompFlag::Log,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => SeccompFlag::SpecAllow,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                SeccompFlag::WaitKillableRecv
            }
        };
        if !flags.contains(&flag) {
            flags.push(flag);
        }
    }

    let mut architectures = Vec::new();
    for arch in s.architectures().iter().flatten() {
        let name = serde_json::to_value(arch)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if name != "SCMP_ARCH_NATIVE" && !architectures.contains(&name) {
            architectures.push(name);
        }
    }

    let enosys_stub = match default_action {
        SeccompAction::Allow | SeccompAction::Log => None,
        SeccompAction::Errno { errno } if i32::from(errno) == libc::ENOSYS => None,
        _ => newest.map(|(nr, name)| EnosysStub {
            above: nr as u32,
            newest: name.clone(),
        }),
    };

    Ok(SeccompPlan {
        default_action,
        architectures,
        flags,
        listener,
        rules,
        skipped_syscalls: skipped,
        enosys_stub,
    })
}

/// An action with its errno. `errnoRet` is only meaningful for
/// `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE`; elsewhere it is an error (the
/// runtime spec: "the runtime MUST print an error and fail").
fn action(
    act: LinuxSeccompAction,
    errno: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<SeccompAction> {
    use LinuxSeccompAction::*;
    let data = |errno: Option<u32>| -> Result<u16> {
        let e = errno.unwrap_or(libc::EPERM as u32);
        u16::try_from(e).map_err(|_| {
            Error::spec(
                errno_field.to_string(),
                format!("{e} does not fit the 16 bits seccomp returns"),
            )
        })
    };
    let out = match act {
        ScmpActErrno => {
            return Ok(SeccompAction::Errno {
                errno: data(errno)?,
            })
        }
        ScmpActTrace => {
            return Ok(SeccompAction::Trace {
                message: data(errno)?,
            })
        }
        ScmpActKill | ScmpActKillThread => SeccompAction::KillThread,
        ScmpActKillProcess => SeccompAction::KillProcess,
        ScmpActTrap => SeccompAction::Trap,
        ScmpActAllow => SeccompAction::Allow,
        ScmpActLog => SeccompAction::Log,
        ScmpActNotify => SeccompAction::Notify,
    };
    if let Some(e) = errno {
        return Err(Error::spec(
            errno_field.to_string(),
            format!(
                "{e} given, but {} returns no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do; \
                 see {field})",
                act_name(act)
            ),
        ));
    }
    Ok(out)
}

fn act_name(act: LinuxSeccompAction) -> String {
    serde_json::to_value(act)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn compare_op(op: LinuxSeccompOperator) -> CompareOp {
    use LinuxSeccompOperator::*;
    match op {
        ScmpCmpNe => CompareOp::Ne,
        ScmpCmpLt => CompareOp::Lt,
        ScmpCmpLe => CompareOp::Le,
        ScmpCmpEq => CompareOp::Eq,
        ScmpCmpGe => CompareOp::Ge,
        ScmpCmpGt => CompareOp::Gt,
        ScmpCmpMaskedEq => CompareOp::MaskedEq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    /// Made-up numbers: `no_such*` is unknown, `x86only*` exists on
    /// other architectures only, `newN` is number N, the rest 1.
    fn resolve(name: &str) -> Option<i32> {
        if name.starts_with("no_such") {
            None
        } else if name.starts_with("x86only") {
            Some(-10)
        } else {
            Some(name.strip_prefix("new").map_or(1, |n| n.parse().unwrap()))
        }
    }

    fn plan(v: serde_json::Value) -> Result<SeccompPlan> {
        seccomp_plan(&parse(v), &resolve)
    }

    #[test]
    fn enosys_stub_above_the_newest_named_syscall() {
        let stub = |v: serde_json::Value| plan(v).unwrap().enosys_stub;
        // Every name counts, also one whose rule is dropped (its action is
        // the default), and none that only other architectures have.
        assert_eq!(
            stub(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read", "new300", "x86only_chown32"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["new435"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["new20"], "action": "SCMP_ACT_KILL"}
            ]})),
            Some(EnosysStub {
                above: 435,
                newest: "new435".into()
            })
        );
        for default in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_KILL"] {
            let s = stub(json!({"defaultAction": default,
                "syscalls": [{"names": ["new7"], "action": "SCMP_ACT_ALLOW"}]}));
            assert_eq!(s.map(|s| s.above), Some(7), "{default}");
        }
        // No stub where the default lets the syscall through or already
        // says ENOSYS, nor without a named native syscall.
        for v in [
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["new7"], "action": "SCMP_ACT_ERRNO"}]}),
            json!({"defaultAction": "SCMP_ACT_LOG",
                "syscalls": [{"names": ["new7"], "action": "SCMP_ACT_ERRNO"}]}),
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                "syscalls": [{"names": ["new7"], "action": "SCMP_ACT_ALLOW"}]}),
            json!({"defaultAction": "SCMP_ACT_ERRNO"}),
            json!({"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["x86only_a", "no_such_b"], "action": "SCMP_ACT_ALLOW"}]}),
        ] {
            assert_eq!(stub(v.clone()), None, "{v}");
        }
    }

    fn err(v: serde_json::Value) -> String {
        plan(v).unwrap_err().to_string()
    }

    #[test]
    fn actions_and_errnos() {
        let p = plan(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 26},
                {"names": ["kill"], "action": "SCMP_ACT_KILL"},
                {"names": ["tkill"], "action": "SCMP_ACT_KILL_THREAD"},
                {"names": ["tgkill"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["uname"], "action": "SCMP_ACT_TRAP"},
                {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
                {"names": ["getpid"], "action": "SCMP_ACT_LOG"}
            ]
        }))
        .unwrap();
        assert_eq!(p.default_action, SeccompAction::Errno { errno: 38 });
        let got: Vec<(&str, SeccompAction)> = p
            .rules
            .iter()
            .map(|r| (r.syscall.as_str(), r.action))
            .collect();
        use SeccompAction::*;
        assert_eq!(
            got,
            [
                ("read", Allow),
                ("write", Allow),
                ("mkdir", Errno { errno: 1 }),
                ("rmdir", Errno { errno: 26 }),
                ("kill", KillThread),
                ("tkill", KillThread),
                ("tgkill", KillProcess),
                ("uname", Trap),
                ("ptrace", Trace { message: 7 }),
                ("getpid", Log),
            ]
        );
        assert_eq!(p.rules[3].config_index, 2);
        assert!(p.listener.is_none() && p.skipped_syscalls.is_empty());
    }

    #[test]
    fn default_errno_is_eperm() {
        let p = plan(json!({"defaultAction": "SCMP_ACT_ERRNO"})).unwrap();
        assert_eq!(p.default_action, SeccompAction::Errno { errno: 1 });
        let p = plan(json!({"defaultAction": "SCMP_ACT_TRACE"})).unwrap();
        assert_eq!(p.default_action, SeccompAction::Trace { message: 1 });
    }

    #[test]
    fn conditions_and_operators() {
        let p = plan(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["openat"],
                "action": "SCMP_ACT_ERRNO",
                "args": [
                    {"index": 2, "value": 64, "valueTwo": 64, "op": "SCMP_CMP_MASKED_EQ"},
                    {"index": 0, "value": 3, "op": "SCMP_CMP_NE"},
                    {"index": 1, "value": 1, "op": "SCMP_CMP_LT"},
                    {"index": 3, "value": 2, "op": "SCMP_CMP_LE"},
                    {"index": 4, "value": 3, "op": "SCMP_CMP_GE"},
                    {"index": 5, "value": 4, "op": "SCMP_CMP_GT"}
                ]
            }]
        }))
        .unwrap();
        assert_eq!(p.rules.len(), 1, "distinct indexes are ANDed in one rule");
        let c = &p.rules[0].conditions;
        assert_eq!(
            c[0],
            ArgCondition {
                index: 2,
                op: CompareOp::MaskedEq,
                value: 64,
                value_two: 64
            }
        );
        let ops: Vec<CompareOp> = c.iter().map(|c| c.op).collect();
        use CompareOp::*;
        assert_eq!(ops, [MaskedEq, Ne, Lt, Le, Ge, Gt]);
        assert_eq!(c[1].value_two, 0);
    }

    #[test]
    fn same_argument_twice_becomes_one_rule_each() {
        let p = plan(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["kill", "tkill"],
                "action": "SCMP_ACT_ERRNO",
                "args": [
                    {"index": 1, "value": 10, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 12, "op": "SCMP_CMP_EQ"}
                ]
            }]
        }))
        .unwrap();
        let got: Vec<(&str, u64)> = p
            .rules
            .iter()
            .map(|r| (r.syscall.as_str(), r.conditions[0].value))
            .collect();
        assert_eq!(
            got,
            [("kill", 10), ("kill", 12), ("tkill", 10), ("tkill", 12)]
        );
        assert!(p.rules.iter().all(|r| r.conditions.len() == 1));
    }

    #[test]
    fn unknown_names_are_skipped_and_default_duplicates_dropped() {
        let p = plan(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["no_such_call", "mkdir", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2}
            ]
        }))
        .unwrap();
        assert_eq!(p.skipped_syscalls, ["no_such_call"]);
        let got: Vec<(&str, SeccompAction)> = p
            .rules
            .iter()
            .map(|r| (r.syscall.as_str(), r.action))
            .collect();
        assert_eq!(
            got,
            [
                ("mkdir", SeccompAction::Allow),
                ("rmdir", SeccompAction::Errno { errno: 2 })
            ]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = err(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        assert!(e.starts_with("linux.seccomp.defaultAction:"), "{e}");
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}));
        assert!(e.starts_with("linux.seccomp.defaultErrnoRet:"), "{e}");
        let e = err(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_LOG"},
                {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}
            ]
        }));
        assert!(e.starts_with("linux.seccomp.syscalls[1].errnoRet:"), "{e}");
        let e = err(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]
        }));
        assert!(e.starts_with("linux.seccomp.syscalls[0].errnoRet:"), "{e}");
        let e = err(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]
        }));
        assert!(e.starts_with("linux.seccomp.syscalls[0].names:"), "{e}");
        let e = err(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_LOG"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                          {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}
            ]
        }));
        assert!(
            e.starts_with("linux.seccomp.syscalls[1].args[1].index:"),
            "{e}"
        );
    }

    #[test]
    fn notify_needs_a_listener_and_spares_the_runtimes_syscalls() {
        let notify = |extra: serde_json::Value| {
            let mut v = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
            });
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            plan(v)
        };
        let e = notify(json!({})).unwrap_err().to_string();
        assert!(e.starts_with("linux.seccomp.listenerPath:"), "{e}");
        let e = notify(json!({"listenerPath": "agent.sock"}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("linux.seccomp.listenerPath:"), "{e}");
        let p =
            notify(json!({"listenerPath": "/run/agent.sock", "listenerMetadata": "m"})).unwrap();
        assert_eq!(
            p.listener,
            Some(SeccompListener {
                path: "/run/agent.sock".into(),
                metadata: "m".into()
            })
        );
        // Metadata without a path is refused even without NOTIFY; a path
        // without NOTIFY is ignored.
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}));
        assert!(e.starts_with("linux.seccomp.listenerMetadata:"), "{e}");
        let p = plan(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x"})).unwrap();
        assert!(p.listener.is_none());
        for name in ["write", "sendmsg"] {
            let e = err(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": "/run/agent.sock",
                "syscalls": [{"names": [name], "action": "SCMP_ACT_NOTIFY"}]
            }));
            assert!(e.starts_with("linux.seccomp.syscalls[0].action:"), "{e}");
        }
    }

    #[test]
    fn flags_and_architectures() {
        let p = plan(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                      "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
                      "SECCOMP_FILTER_FLAG_LOG"]
        }))
        .unwrap();
        assert_eq!(
            p.architectures,
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        );
        assert_eq!(p.flags, SeccompFlag::ALL);
    }

    #[test]
    fn unknown_actions_operators_and_architectures_are_parse_errors_naming_the_field() {
        let spec = |seccomp: serde_json::Value| {
            let mut v = crate::spec::default_spec(None);
            v["linux"]["seccomp"] = seccomp;
            crate::spec::parse(&serde_json::to_vec(&v).unwrap())
                .unwrap_err()
                .to_string()
        };
        let e = spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["a"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["a"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["b"], "action": "SCMP_ACT_BOGUS"}]}));
        assert!(e.starts_with("linux.seccomp.syscalls[3].action:"), "{e}");
        let e = spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["b"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_ALMOST"}]}]}));
        assert!(
            e.starts_with("linux.seccomp.syscalls[0].args[0].op:"),
            "{e}"
        );
        let e =
            spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}));
        assert!(e.starts_with("linux.seccomp.architectures[0]:"), "{e}");
        let e =
            spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_X"]}));
        assert!(e.starts_with("linux.seccomp.flags[0]:"), "{e}");
    }
}
