//! The process `exec` starts, as an OCI `Process`: read from a
//! `--process` file, or the container's own process with the command line
//! laid over it, exactly as runc 1.1 builds it. Pure: the planner
//! (`plan::process_plan`) checks and plans the result like the container's
//! own process.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, LinuxCapabilities, Process};

use crate::error::{Error, IoContext, Result};

/// Reads a `process.json` (`exec --process`). A type error names the file
/// and the JSON path (`/x/process.json: rlimits[0].type: …`).
pub fn load_process(path: &Path) -> Result<Process> {
    let text = std::fs::read(path).ctx(|| format!("--process {}", path.display()))?;
    super::deserialize_named(&text, |at, e| {
        let field = if at == "." {
            path.display().to_string()
        } else {
            format!("{}: {at}", path.display())
        };
        Error::spec(field, e.to_string())
    })
}

/// `exec`'s flags that describe the process, laid over the container's
/// `process` when there is no `--process` file.
#[derive(Debug, Clone, Default)]
pub struct ProcessOverrides {
    /// The command and its arguments (replace `process.args`).
    pub args: Vec<String>,
    /// `--cwd`.
    pub cwd: Option<PathBuf>,
    /// `--env KEY=VALUE`, appended: a later variable replaces an earlier
    /// one of the same name (`plan::process_plan`).
    pub env: Vec<String>,
    /// `--tty`. Without it there is no terminal, whatever the container's
    /// process says (as in runc).
    pub tty: bool,
    /// `--user UID[:GID]`.
    pub user: Option<String>,
    /// `--additional-gids`, appended to the container's.
    pub additional_gids: Vec<u32>,
    /// `--cap`: added to the bounding, effective and permitted sets only,
    /// never to the inheritable or ambient sets (CVE-2022-29162: an
    /// inheritable or ambient capability survives into what the process
    /// execs next).
    pub caps: Vec<String>,
    /// `--no-new-privs`.
    pub no_new_privs: bool,
    /// `--apparmor`.
    pub apparmor: Option<String>,
    /// `--process-label`.
    pub process_label: Option<String>,
}

impl ProcessOverrides {
    /// The container's process with these flags applied. Errors name the
    /// flag at fault.
    pub fn apply(&self, mut p: Process) -> Result<Process> {
        if self.args.is_empty() {
            return Err(Error::spec(
                "exec",
                "needs a command to run (or --process FILE)",
            ));
        }
        p.set_args(Some(self.args.clone()));
        if let Some(cwd) = &self.cwd {
            if !cwd.is_absolute() {
                return Err(Error::spec(
                    "--cwd",
                    format!("{:?} must be an absolute path", cwd),
                ));
            }
            p.set_cwd(cwd.clone());
        }
        if let Some(profile) = &self.apparmor {
            p.set_apparmor_profile(Some(profile.clone()));
        }
        if let Some(label) = &self.process_label {
            p.set_selinux_label(Some(label.clone()));
        }
        if !self.caps.is_empty() {
            let added = self
                .caps
                .iter()
                .map(|c| parse_capability(c))
                .collect::<Result<Vec<_>>>()?;
            // Without `process.capabilities` the process keeps every
            // capability the runtime has: adding is a no-op.
            if let Some(mut caps) = p.capabilities().clone() {
                add_capabilities(&mut caps, &added);
                p.set_capabilities(Some(caps));
            }
        }
        let mut env = p.env().clone().unwrap_or_default();
        for var in &self.env {
            if !matches!(var.split_once('='), Some((key, _)) if !key.is_empty()) {
                return Err(Error::spec(
                    "--env",
                    format!("{var:?} is not of the form KEY=VALUE"),
                ));
            }
            env.push(var.clone());
        }
        p.set_env(Some(env));
        p.set_terminal(Some(self.tty));
        if self.no_new_privs {
            p.set_no_new_privileges(Some(true));
        }
        if let Some(user) = &self.user {
            let (uid, gid) = parse_user(user)?;
            let u = p.user_mut();
            u.set_uid(uid);
            if let Some(gid) = gid {
                u.set_gid(gid);
            }
        }
        if !self.additional_gids.is_empty() {
            let u = p.user_mut();
            let mut gids = u.additional_gids().clone().unwrap_or_default();
            gids.extend_from_slice(&self.additional_gids);
            u.set_additional_gids(Some(gids));
        }
        Ok(p)
    }

    /// The flags given that describe the process (ignored with
    /// `--process`, as runc ignores them), for a warning. `--tty` is left
    /// out: conmon passes it with the file on every `podman exec -it`, and
    /// the file's `terminal` decides, as in runc.
    pub fn given(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut note = |set: bool, flag| {
            if set {
                out.push(flag)
            }
        };
        note(!self.args.is_empty(), "COMMAND");
        note(self.cwd.is_some(), "--cwd");
        note(!self.env.is_empty(), "--env");
        note(self.user.is_some(), "--user");
        note(!self.additional_gids.is_empty(), "--additional-gids");
        note(!self.caps.is_empty(), "--cap");
        note(self.no_new_privs, "--no-new-privs");
        note(self.apparmor.is_some(), "--apparmor");
        note(self.process_label.is_some(), "--process-label");
        out
    }
}

/// `UID[:GID]`, numbers only (no user names: they would need the
/// container's passwd, read by the runtime).
fn parse_user(text: &str) -> Result<(u32, Option<u32>)> {
    let number = |s: &str, what: &str| {
        s.parse::<u32>().map_err(|_| {
            Error::spec(
                format!("--user {text:?}"),
                format!(
                    "{what} {s:?} is not a number from 0 to 4294967295 (the form is UID[:GID])"
                ),
            )
        })
    };
    match text.split_once(':') {
        None => Ok((number(text, "uid")?, None)),
        Some((uid, gid)) => Ok((number(uid, "uid")?, Some(number(gid, "gid")?))),
    }
}

/// A capability name as the config takes it (`CAP_SYS_ADMIN`, or
/// `SYS_ADMIN`).
fn parse_capability(name: &str) -> Result<Capability> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| Error::spec("--cap", format!("unknown capability {name:?}")))
}

fn add_capabilities(caps: &mut LinuxCapabilities, added: &[Capability]) {
    let with = |set: &Option<oci_spec::runtime::Capabilities>| {
        let mut set = set.clone().unwrap_or_default();
        set.extend(added.iter().copied());
        Some(set)
    };
    caps.set_bounding(with(caps.bounding()));
    caps.set_effective(with(caps.effective()));
    caps.set_permitted(with(caps.permitted()));
    // Never inheritable, never ambient: those survive the process's own
    // execs (CVE-2022-29162).
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process `o` makes from `base()`, planned as exec plans it.
    fn plan_of(o: &ProcessOverrides) -> crate::plan::ProcessPlan {
        crate::plan::process_plan(
            &oci_spec::runtime::Spec::default(),
            &o.apply(base()).unwrap(),
            &crate::plan::HostFacts::default(),
        )
        .unwrap()
    }

    fn base() -> Process {
        serde_json::from_value(serde_json::json!({
            "args": ["sleep", "1"],
            "cwd": "/",
            "env": ["PATH=/bin", "FOO=config"],
            "user": {"uid": 0, "gid": 0, "additionalGids": [5]},
            "terminal": true,
            "capabilities": {
                "bounding": ["CAP_KILL"],
                "effective": ["CAP_KILL"],
                "permitted": ["CAP_KILL"]
            }
        }))
        .unwrap()
    }

    fn flags() -> ProcessOverrides {
        ProcessOverrides {
            args: vec!["id".into()],
            ..Default::default()
        }
    }

    #[test]
    fn flags_replace_args_and_drop_the_terminal() {
        let p = flags().apply(base()).unwrap();
        assert_eq!(p.args().as_deref(), Some(&["id".to_string()][..]));
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(p.cwd(), Path::new("/"));
        let p = ProcessOverrides {
            tty: true,
            ..flags()
        }
        .apply(base())
        .unwrap();
        assert_eq!(p.terminal(), Some(true));
        assert!(ProcessOverrides::default().apply(base()).is_err());
    }

    #[test]
    fn env_is_appended_and_the_plan_keeps_the_last() {
        let o = ProcessOverrides {
            env: vec!["FOO=flag".into(), "NEW=1".into()],
            ..flags()
        };
        let plan = plan_of(&o);
        assert_eq!(plan.env, ["PATH=/bin", "FOO=flag", "NEW=1"]);
        for bad in ["FOO", "=x"] {
            let o = ProcessOverrides {
                env: vec![bad.into()],
                ..flags()
            };
            let err = o.apply(base()).unwrap_err().to_string();
            assert!(err.contains("--env"), "{err}");
        }
    }

    #[test]
    fn user_and_groups() {
        let with_user = |u: &str| {
            ProcessOverrides {
                user: Some(u.into()),
                additional_gids: vec![10, 100],
                ..flags()
            }
            .apply(base())
        };
        let p = with_user("1000").unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 0));
        assert_eq!(
            p.user().additional_gids().as_deref(),
            Some(&[5, 10, 100][..])
        );
        let p = with_user("1000:100").unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
        for bad in ["abc", "1000:x", "-1", "", "1:", "99999999999", "root"] {
            let err = with_user(bad).unwrap_err().to_string();
            assert!(err.contains("--user"), "{bad}: {err}");
        }
    }

    #[test]
    fn cwd_must_be_absolute() {
        let o = ProcessOverrides {
            cwd: Some("tmp".into()),
            ..flags()
        };
        assert!(o.apply(base()).unwrap_err().to_string().contains("--cwd"));
    }

    #[test]
    fn caps_join_bounding_effective_permitted() {
        let o = ProcessOverrides {
            caps: vec!["CAP_SYS_ADMIN".into(), "NET_RAW".into()],
            ..flags()
        };
        let plan = plan_of(&o);
        let c = plan.capabilities.unwrap();
        for set in [&c.bounding, &c.effective, &c.permitted] {
            assert_eq!(set, &["CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN"]);
        }
        assert!(c.ambient.is_empty() && c.inheritable.is_empty());
        // A process with inheritable and ambient sets: --cap adds to
        // neither.
        let mut with_sets = base();
        let mut caps = with_sets.capabilities().clone().unwrap();
        caps.set_inheritable(Some([Capability::Kill].into_iter().collect()));
        caps.set_ambient(Some([Capability::Kill].into_iter().collect()));
        with_sets.set_capabilities(Some(caps));
        let p = o.apply(with_sets).unwrap();
        let c = p.capabilities().clone().unwrap();
        let names = |s: &Option<oci_spec::runtime::Capabilities>| {
            let mut v: Vec<String> = s
                .iter()
                .flatten()
                .map(|c| {
                    serde_json::to_value(c)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(c.inheritable()), ["CAP_KILL"]);
        assert_eq!(names(c.ambient()), ["CAP_KILL"]);
        assert!(names(c.bounding()).contains(&"CAP_SYS_ADMIN".to_string()));
        let o = ProcessOverrides {
            caps: vec!["CAP_NOPE".into()],
            ..flags()
        };
        assert!(o.apply(base()).unwrap_err().to_string().contains("--cap"));
    }

    #[test]
    fn process_file_errors_name_the_json_path() {
        let dir = std::env::temp_dir().join(format!("rootcell-pj-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("process.json");
        std::fs::write(
            &file,
            r#"{"args": ["x"], "cwd": "/", "rlimits": [{"type": 3}]}"#,
        )
        .unwrap();
        let err = load_process(&file).unwrap_err().to_string();
        assert!(err.contains("process.json: rlimits[0].type"), "{err}");
        std::fs::write(&file, "not json").unwrap();
        let err = load_process(&file).unwrap_err().to_string();
        assert!(err.starts_with(&file.display().to_string()), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
