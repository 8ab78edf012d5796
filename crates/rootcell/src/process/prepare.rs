//! The last steps before `execve`, shared by a container's init and by
//! `exec`: rlimits, oom_score_adj, capabilities, the user, no_new_privs,
//! the working directory, the environment and the program's path.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fs::procfs::{self, ProcfsBase};
use crate::plan::ProcessPlan;
use crate::process::{capabilities, ids, sys};

pub struct Exec {
    pub path: CString,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
}

/// Applies the process settings that need privileges, becomes the user,
/// and resolves the program; after this only [`Exec::run`] is left.
pub fn prepare_process(p: &ProcessPlan) -> Result<Exec> {
    apply_limits(p)?;
    if let Some(c) = &p.capabilities {
        capabilities::apply_bounding(c)?;
    }
    sys::prctl(libc::PR_SET_KEEPCAPS, 1).ctx(|| "prctl(PR_SET_KEEPCAPS)")?;
    ids::become_user(p.uid, p.gid, &p.additional_gids, ids::setgroups_allowed())?;
    sys::prctl(libc::PR_SET_KEEPCAPS, 0).ctx(|| "prctl(PR_SET_KEEPCAPS)")?;
    if let Some(c) = &p.capabilities {
        capabilities::apply_sets(c)?;
    }
    if p.no_new_privileges {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).ctx(|| "process.noNewPrivileges")?;
    }
    enter_cwd(&p.cwd)?;
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(p.umask));
    apply_lsm_labels(p)?;
    resolve(p)
}

/// rlimits and oom_score_adj. `exec` applies them once more before it
/// joins the container's user namespace, where raising a hard limit or
/// lowering oom_score_adj is no longer allowed; applying the same values
/// again here is then a no-op.
pub fn apply_limits(p: &ProcessPlan) -> Result<()> {
    for r in &p.rlimits {
        sys::setrlimit(r.resource, r.soft, r.hard).ctx(|| {
            format!(
                "process.rlimits {}: soft {} hard {}",
                r.name, r.soft, r.hard
            )
        })?;
    }
    if let Some(adj) = p.oom_score_adj {
        procfs::write(ProcfsBase::ProcSelf, "oom_score_adj", &adj.to_string())
            .ctx(|| format!("process.oomScoreAdj {adj}"))?;
    }
    Ok(())
}

/// The LSM hook: `process.apparmorProfile` and `process.selinuxLabel`
/// (exec: `--apparmor`, `--process-label`) are applied here, last before
/// exec, once LSM support exists (the AppArmor `exec` attribute and the
/// SELinux exec context, written through the private procfs). Until then a
/// requested label is refused: running the process unconfined instead
/// would be silent, and runc too refuses a label the host cannot apply.
fn apply_lsm_labels(p: &ProcessPlan) -> Result<()> {
    if let Some(profile) = &p.apparmor_profile {
        return Err(Error::spec(
            "process.apparmorProfile",
            format!("{profile:?}: AppArmor profiles are not supported yet"),
        ));
    }
    if let Some(label) = &p.selinux_label {
        return Err(Error::spec(
            "process.selinuxLabel",
            format!("{label:?}: SELinux process labels are not supported yet"),
        ));
    }
    Ok(())
}

/// The environment (HOME added from the container's passwd when missing)
/// and the program, looked up in the container's PATH.
fn resolve(p: &ProcessPlan) -> Result<Exec> {
    let mut env = p.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(p.uid)));
    }
    let env_path = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let program = p
        .args
        .first()
        .ok_or_else(|| Error::spec("process.args", "must name a program to run"))?;
    let path = find_program(program, env_path).ok_or_else(|| {
        Error::spec(
            "process.args[0]",
            format!("{program:?}: no such executable in the container (PATH={env_path})"),
        )
    })?;
    let cstr = |s: &str, field: &str| {
        CString::new(s).map_err(|_| Error::spec(field.to_string(), "contains a NUL byte"))
    };
    Ok(Exec {
        path: cstr(&path.to_string_lossy(), "process.args[0]")?,
        args: p
            .args
            .iter()
            .map(|a| cstr(a, "process.args"))
            .collect::<Result<_>>()?,
        env: env
            .iter()
            .map(|e| cstr(e, "process.env"))
            .collect::<Result<_>>()?,
    })
}

impl Exec {
    /// The very last step: close every fd but stdio, the `preserve_fds`
    /// passed on and `keep` (close-on-exec fds the caller needs until
    /// `execve`: the sync socket, the exec fifo), restore the signal
    /// dispositions, `execve`. Returns only on failure.
    ///
    /// Closing (not only close-on-exec) matters: `execve` resolves the
    /// program's path while close-on-exec fds are still open, so a
    /// directory fd of the runtime (a private procfs, a leaked host
    /// directory) would let `/proc/self/fd/N/…` in `process.args[0]` run a
    /// host binary (CVE-2024-21626). After this, the private procfs handles
    /// are closed: nothing but the failure report may run.
    pub fn run(&self, preserve_fds: u32, keep: &[RawFd]) -> io::Error {
        if let Err(e) = sys::close_fds_for_exec(preserve_fds, keep) {
            return e;
        }
        sys::reset_signals();
        sys::execve(&self.path, &self.args, &self.env)
    }
}

/// `chdir` into the working directory and check that the kernel agrees we
/// are inside the root: an fd-based path (`/proc/self/fd/N/..`) leaking a
/// runtime fd would show up as "(unreachable)" (CVE-2024-21626).
fn enter_cwd(cwd: &Path) -> Result<()> {
    rustix::process::chdir(cwd).ctx(|| format!("process.cwd {}", cwd.display()))?;
    let now = rustix::process::getcwd(Vec::new()).ctx(|| "getcwd")?;
    if !now.to_bytes().starts_with(b"/") {
        return Err(Error::spec(
            "process.cwd",
            format!("{} resolves outside the container", cwd.display()),
        ));
    }
    Ok(())
}

/// HOME for `uid` from the container's `/etc/passwd` (read as a plain
/// file: no NSS modules from the image are ever loaded), else `/`.
fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() >= 6 && fields[2].parse() == Ok(uid)).then(|| fields[5].to_string())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into())
}

fn find_program(program: &str, path_var: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| executable(p))
}
