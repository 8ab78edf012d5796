//! The last steps before `execve`, shared by a container's init and by
//! `exec`: first the privileged settings (`prepare_process`: personality,
//! rlimits, oom_score_adj, scheduler, I/O priority, LSM labels, the
//! bounding set), then the plan's final steps (`finish`: user,
//! capabilities, no_new_privs, working directory, program lookup, for init
//! the start gate and the startContainer hooks, closing fds, signals, the
//! seccomp filter, `execve`).
//!
//! Order matters:
//! - Whatever needs privileges (rlimits above the current hard limit, a
//!   lower oom score, real-time scheduling, a real-time I/O class, the
//!   bounding set) happens before the user switch and the capability sets.
//! - The seccomp filter is loaded last: after it only `execve` runs (and,
//!   for a notifying filter, the handoff of its fd), so a profile need not
//!   allow any syscall of the runtime's own. Without no_new_privs the load
//!   needs CAP_SYS_ADMIN, which the capability step keeps in the effective
//!   and permitted sets only; `execve` drops it (see `FinalStep`).

use std::ffi::CString;
use std::os::fd::{AsFd, IntoRawFd, RawFd};
use std::path::{Path, PathBuf};

use super::sync::{Channel, ToContainer, ToRuntime};
use super::Never;
use crate::error::{Error, IoContext, Result};
use crate::fs::procfs::{self, ProcfsBase};
use crate::plan::{FinalStep, ProcessPlan, Rlimit};
use crate::process::{capabilities, ids, lsm, seccomp, sys};

/// The caller's part of the final steps: what only init does (the start
/// gate, the startContainer hooks), and the fds it needs until `execve`.
pub trait Lifecycle {
    /// Setup is done: tell the runtime (`create` returns).
    fn ready(&mut self) -> Result<()> {
        Ok(())
    }
    /// Block until `start` (or `run`) releases the process.
    fn wait_for_start(&mut self) -> Result<()> {
        Ok(())
    }
    /// startContainer hooks; `process_env` is the environment the process
    /// will get, for hooks without `env` of their own.
    fn start_container_hooks(&mut self, _process_env: &[String]) -> Result<()> {
        Ok(())
    }
    /// Tell the runtime that `execve` is next.
    fn announce_exec(&mut self) -> Result<()> {
        Ok(())
    }
    /// Close-on-exec fds that must stay open until `execve` (the sync
    /// socket, the exec fifo's write end).
    fn keep(&self) -> Vec<RawFd>;
    /// `FinalStep::ResolveProgram`: the program, arguments and environment
    /// for `execve`. By default `process.args` and `process.env`, HOME
    /// from the container's `/etc/passwd` when the environment lacks it,
    /// `args[0]` looked up in PATH. The sandbox passes its command as the
    /// caller gave it (bytes, not necessarily UTF-8).
    fn resolve_program(&mut self, p: &ProcessPlan) -> Result<sys::ExecArgs> {
        resolve_program(p)
    }
}

/// Applies the process settings that need privileges; the plan's final
/// steps (`finish`) come next.
pub fn prepare_process(p: &ProcessPlan) -> Result<()> {
    if let Some(pers) = &p.personality {
        sys::personality(pers.persona).ctx(|| format!("linux.personality {}", pers.domain))?;
    }
    apply_limits(p)?;
    if let Some(s) = &p.scheduler {
        sys::sched_setattr(
            s.policy,
            s.flags,
            s.nice,
            s.priority,
            (s.runtime, s.deadline, s.period),
        )
        .ctx(|| {
            format!(
                "process.scheduler: {} nice {} priority {} (real-time policies and negative \
                 nice values need CAP_SYS_NICE, and real-time runtime in the cgroup)",
                s.policy_name, s.nice, s.priority
            )
        })?;
    }
    if let Some(io) = &p.io_priority {
        sys::ioprio_set(io.value()).ctx(|| {
            format!(
                "process.ioPriority: {} priority {} (IOPRIO_CLASS_RT needs CAP_SYS_ADMIN or \
                 CAP_SYS_NICE)",
                io.class_name, io.priority
            )
        })?;
    }
    lsm::apply(&p.lsm)?;
    if let Some(c) = &p.capabilities {
        capabilities::apply_bounding(c)?;
    }
    Ok(())
}

/// Walks `p.final_steps` up to `execve`. `chan` is the sync socket, for a
/// notifying filter's handoff (None: there is no runtime to hand it to);
/// `preserve_fds` fds from 3 stay open. Returns only on failure.
pub(crate) fn finish(
    p: &ProcessPlan,
    filter: Option<&seccomp::Filter>,
    chan: Option<&Channel>,
    preserve_fds: u32,
    life: &mut dyn Lifecycle,
) -> Result<Never> {
    let mut exec: Option<sys::ExecArgs> = None;
    // Whether the seccomp filter is loaded: no syscall of ours after it.
    let mut sealed = false;
    for step in &p.final_steps {
        match *step {
            FinalStep::SwitchUser => {
                sys::prctl(libc::PR_SET_KEEPCAPS, 1).ctx(|| "prctl(PR_SET_KEEPCAPS)")?;
                ids::become_user(p.uid, p.gid, &p.additional_gids)?;
                sys::prctl(libc::PR_SET_KEEPCAPS, 0).ctx(|| "prctl(PR_SET_KEEPCAPS)")?;
            }
            FinalStep::SetCapabilities { keep_sys_admin } => {
                capabilities::apply_sets(p.capabilities.as_ref(), keep_sys_admin)?
            }
            FinalStep::NoNewPrivileges => {
                sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).ctx(|| "process.noNewPrivileges")?
            }
            FinalStep::EnterCwd => {
                enter_cwd(&p.cwd)?;
                rustix::process::umask(rustix::fs::Mode::from_raw_mode(p.umask));
            }
            FinalStep::ResolveProgram => exec = Some(life.resolve_program(p)?),
            FinalStep::ExecCpuAffinity => {
                if let Some(cpus) = p
                    .exec_cpu_affinity
                    .as_ref()
                    .and_then(|a| a.final_cpus.as_ref())
                {
                    set_cpu_affinity(cpus, "process.execCPUAffinity.final")?;
                }
            }
            FinalStep::Ready => {
                sys::cloexec_from(preserve_fds.saturating_add(3)).ctx(|| "close_range")?;
                life.ready()?;
            }
            FinalStep::WaitForStart => life.wait_for_start()?,
            FinalStep::StartContainerHooks => {
                let env = exec
                    .as_ref()
                    .map(sys::ExecArgs::env_lossy)
                    .unwrap_or_default();
                life.start_container_hooks(&env)?
            }
            FinalStep::AnnounceExec => life.announce_exec()?,
            FinalStep::CloseFds => {
                // Closing (not only close-on-exec) matters: `execve`
                // resolves the program's path while close-on-exec fds are
                // still open, so a directory fd of the runtime (a private
                // procfs, a leaked host directory) would let
                // `/proc/self/fd/N/…` in `process.args[0]` run a host
                // binary (CVE-2024-21626). After this, the private procfs
                // handles are closed.
                let keep = life.keep();
                sys::close_fds_for_exec(preserve_fds, &keep).ctx(|| "closing the runtime's fds")?;
            }
            FinalStep::ResetSignals => sys::reset_signals(),
            FinalStep::LoadSeccomp { handoff } => {
                // Diagnostics only (`ROOTCELL_PHASES`): the last mark is
                // taken before the filter, which may deny its syscalls.
                crate::phase::mark("execve");
                crate::phase::report_rss("before execve");
                sealed = true;
                load_seccomp(filter, handoff, chan)?
            }
            FinalStep::Execve => {
                let program = || p.args.first().map(String::as_str).unwrap_or("");
                let Some(exec) = &exec else {
                    return Err(Error::Other(format!(
                        "process.args[0] {:?}: execve before the program was resolved",
                        program()
                    )));
                };
                if !sealed {
                    crate::phase::mark("execve");
                    crate::phase::report_rss("before execve");
                }
                let err = exec.execve();
                return Err(Error::spec(
                    "process.args[0]",
                    format!("{:?}: exec: {err}", program()),
                ));
            }
        }
    }
    Err(Error::Other(
        "the plan's final steps end without execve".into(),
    ))
}

/// Loads the filter. A notifying filter's fd goes to the runtime, which
/// hands it to the agent and answers: the only syscalls after the load but
/// `execve` are that `sendmsg` and `recvmsg`, with the message and the
/// buffer made before the load (no allocation after it).
fn load_seccomp(
    filter: Option<&seccomp::Filter>,
    handoff: bool,
    chan: Option<&Channel>,
) -> Result<()> {
    let Some(filter) = filter else {
        return Ok(());
    };
    let chan = match (handoff, chan) {
        (true, None) => {
            return Err(Error::Other(
                "linux.seccomp: a notifying filter needs a runtime to hand its fd to".into(),
            ))
        }
        (_, chan) => chan,
    };
    let prepared = if handoff {
        let msg = serde_json::to_vec(&ToRuntime::SeccompListener)
            .map_err(|e| Error::Other(e.to_string()))?;
        Some((msg, vec![0u8; 64 * 1024]))
    } else {
        None
    };
    let fd = seccomp::load(filter)?;
    match (fd, prepared) {
        (Some(fd), Some((msg, mut buf))) => {
            let Some(chan) = chan else {
                return Err(Error::Other("linux.seccomp: no sync socket".into()));
            };
            super::sync::send_with_fd(chan.as_fd(), &msg, fd.as_fd())
                .ctx(|| "sync socket: sending the seccomp notification fd")?;
            // The fd is close-on-exec: `execve` closes it, without a
            // `close` the profile would have to allow.
            let _ = fd.into_raw_fd();
            match chan.recv_in::<ToContainer>(&mut buf)? {
                Some(ToContainer::Continue) => Ok(()),
                Some(ToContainer::Abort { message }) => Err(Error::Other(message)),
                Some(other) => Err(super::unexpected(other)),
                None => Err(Error::Other("the runtime went away".into())),
            }
        }
        (None, None) => Ok(()),
        _ => Err(Error::Other(
            "linux.seccomp: the notification fd and the plan disagree".into(),
        )),
    }
}

/// rlimits and oom_score_adj. `exec` applies them once more before it
/// joins the container's user namespace, where raising a hard limit or
/// lowering oom_score_adj is no longer allowed; applying the same values
/// again here is then a no-op.
pub fn apply_limits(p: &ProcessPlan) -> Result<()> {
    for r in &p.rlimits {
        set_rlimit(r)?;
    }
    if let Some(adj) = p.oom_score_adj {
        procfs::write(ProcfsBase::ProcSelf, "oom_score_adj", &adj.to_string()).ctx(|| {
            if adj < 0 {
                format!("process.oomScoreAdj {adj} (a negative value needs CAP_SYS_RESOURCE)")
            } else {
                format!("process.oomScoreAdj {adj}")
            }
        })?;
    }
    Ok(())
}

/// One rlimit; a refusal names the limit and says why the host refuses.
fn set_rlimit(r: &Rlimit) -> Result<()> {
    let Err(e) = sys::setrlimit(r.resource, r.soft, r.hard) else {
        return Ok(());
    };
    let mut why = String::new();
    if e.raw_os_error() == Some(libc::EPERM) {
        if let Ok((_, hard)) = sys::getrlimit(r.resource) {
            if r.hard > hard {
                why = format!(
                    " (the runtime's own hard limit is {}: raising it needs CAP_SYS_RESOURCE{})",
                    if hard == libc::RLIM_INFINITY {
                        "unlimited".to_string()
                    } else {
                        hard.to_string()
                    },
                    if r.resource == libc::RLIMIT_NOFILE as i32 {
                        ", and RLIMIT_NOFILE cannot exceed fs.nr_open"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Err(Error::Io {
        context: format!(
            "process.rlimits {}: soft {} hard {}: the host refuses it{why}",
            r.name, r.soft, r.hard
        ),
        cause: e,
    })
}

/// Pins the calling thread to `cpus`; `field` names the setting.
pub fn set_cpu_affinity(cpus: &[u32], field: &str) -> Result<()> {
    sys::sched_setaffinity(cpus).ctx(|| {
        format!(
            "{field}: CPUs {}: none is online and allowed to this process",
            crate::plan::process::format_cpu_list(cpus)
        )
    })
}

/// `execCPUAffinity.initial`, for the caller of `exec` to apply before it
/// joins the container's cgroup.
pub fn apply_initial_cpu_affinity(p: &ProcessPlan) -> Result<()> {
    match p
        .exec_cpu_affinity
        .as_ref()
        .and_then(|a| a.initial.as_ref())
    {
        Some(cpus) => set_cpu_affinity(cpus, "process.execCPUAffinity.initial"),
        None => Ok(()),
    }
}

/// HOME, `args[0]` found in PATH, and the `execve` arrays.
fn resolve_program(p: &ProcessPlan) -> Result<sys::ExecArgs> {
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
    let path = find_program(program.as_ref(), env_path.as_ref()).ok_or_else(|| {
        Error::spec(
            "process.args[0]",
            format!("{program:?}: no such executable in the container (PATH={env_path})"),
        )
    })?;
    let cstr = |s: &str, field: &str| {
        CString::new(s).map_err(|_| Error::spec(field.to_string(), "contains a NUL byte"))
    };
    Ok(sys::ExecArgs::new(
        cstr(&path.to_string_lossy(), "process.args[0]")?,
        p.args
            .iter()
            .map(|a| cstr(a, "process.args"))
            .collect::<Result<_>>()?,
        env.iter()
            .map(|e| cstr(e, "process.env"))
            .collect::<Result<_>>()?,
    ))
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
    read_passwd()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() >= 6 && fields[2].parse() == Ok(uid)).then(|| fields[5].to_string())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into())
}

/// The container's `/etc/passwd`, if it is a regular file of sane size: the
/// rootfs is the container's, and a fifo there must not hang init, nor a
/// huge file fill its memory.
fn read_passwd() -> Option<String> {
    use std::io::Read;
    const MAX: u64 = 4 << 20;
    let fd = rustix::fs::open(
        "/etc/passwd",
        rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::NONBLOCK
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// `program` itself when it holds a `/`, else the first executable
/// regular file named `program` in the directories of `path_var`.
pub(crate) fn find_program(
    program: &std::ffi::OsStr,
    path_var: &std::ffi::OsStr,
) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.as_bytes().contains(&b'/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    path_var
        .as_bytes()
        .split(|b| *b == b':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(std::ffi::OsStr::from_bytes(d)).join(program))
        .find(|p| executable(p))
}
