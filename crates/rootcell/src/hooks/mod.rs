//! OCI lifecycle hooks: each runs with the container's state JSON on stdin,
//! its own `args` and `env`, stdio and no other fd, and is killed when its
//! `timeout` passes.
//!
//! The state is written without blocking, alongside the wait: a hook that
//! never reads its stdin, with a state bigger than a pipe buffer (large
//! annotations), cannot hang the runtime. Its `timeout` covers the write;
//! a hook without one must take its state within `STATE_WRITE_TIMEOUT`.

use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};
use rustix::event::{PollFd, PollFlags};
use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};

use crate::error::{Error, Result};
use crate::process::sys;

/// How long a hook without `timeout` may leave its state unread on stdin
/// (only a state bigger than the pipe buffer, 64 KiB, can be left unread
/// at all) before it is killed and counts as failed. The runtime spec sets
/// no limit, and runc has none (it would wait as long as the hook runs);
/// a runtime hung on a pipe is worse: an engine waits for it with the
/// container half made. Hooks that read their stdin first, as hooks do,
/// never meet it; once the state is written, a hook without `timeout`
/// runs as long as it likes.
pub const STATE_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    #[allow(deprecated)]
    fn list(self, hooks: &Hooks) -> &[Hook] {
        let list = match self {
            HookKind::Prestart => hooks.prestart(),
            HookKind::CreateRuntime => hooks.create_runtime(),
            HookKind::CreateContainer => hooks.create_container(),
            HookKind::StartContainer => hooks.start_container(),
            HookKind::Poststart => hooks.poststart(),
            HookKind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

/// Runs every hook of `kind` in order; the first failure stops and is
/// returned. A hook without `env` gets an empty environment.
pub fn run(kind: HookKind, hooks: &Hooks, state: &str) -> Result<()> {
    run_with_env(kind, hooks, state, &[])
}

/// `run`, where a hook without `env` gets `default_env`: the container
/// process's environment for the hooks that init runs (createContainer,
/// startContainer), as runc and youki give it. A hook with `env` (even an
/// empty one) gets exactly that.
pub fn run_with_env(
    kind: HookKind,
    hooks: &Hooks,
    state: &str,
    default_env: &[String],
) -> Result<()> {
    for hook in kind.list(hooks) {
        run_one(kind, hook, state, default_env)?;
    }
    Ok(())
}

/// Runs every hook of `kind`, whatever the earlier ones did, and returns
/// the failures: for poststart and poststop, whose failures the runtime
/// spec makes warnings.
pub fn run_all(kind: HookKind, hooks: &Hooks, state: &str) -> Vec<Error> {
    kind.list(hooks)
        .iter()
        .filter_map(|hook| run_one(kind, hook, state, &[]).err())
        .collect()
}

fn run_one(kind: HookKind, hook: &Hook, state: &str, default_env: &[String]) -> Result<()> {
    let err = |reason: String| Error::Hook {
        kind: kind.name(),
        path: hook.path().clone(),
        reason,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    cmd.env_clear();
    for var in hook.env().as_deref().unwrap_or(default_env) {
        if let Some((k, v)) = var.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    sys::cloexec_in_child(&mut cmd);
    let timeout = hook
        .timeout()
        .map(|secs| Duration::from_secs(secs.max(0) as u64));
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| err(format!("cannot start: {e}")))?;
    let stdin = child.stdin.take();
    let outcome = supervise(
        &mut child,
        stdin,
        state.as_bytes(),
        timeout.map(|t| started + t),
    )
    .map_err(|e| {
        let _ = child.kill();
        let _ = child.wait();
        err(e.to_string())
    })?;
    match outcome {
        Outcome::Exited(status) if status.success() => Ok(()),
        Outcome::Exited(status) => Err(err(format!("failed: {status}"))),
        Outcome::TimedOut { unread } => {
            let _ = child.kill();
            let _ = child.wait();
            Err(err(match (hook.timeout(), unread) {
                (Some(secs), _) => format!("timed out after {secs}s and was killed"),
                (None, unread) => format!(
                    "left {unread} bytes of its state unread on stdin for {}s (the limit for \
                     hooks without a timeout) and was killed",
                    STATE_WRITE_TIMEOUT.as_secs()
                ),
            }))
        }
    }
}

enum Outcome {
    Exited(ExitStatus),
    /// The deadline passed; `unread`: bytes of the state not yet written.
    TimedOut {
        unread: usize,
    },
}

/// Writes `data` to the hook's stdin without blocking and waits for the
/// hook to exit, both until `deadline` (the hook's timeout). Without a
/// deadline the write alone is bounded, by `STATE_WRITE_TIMEOUT`. Stdin is
/// closed once all is written (end of file for the hook), or when the hook
/// closes its end or exits: a background process of the hook that holds
/// the pipe cannot keep us. One `poll` on the hook's pidfd and the pipe,
/// no thread (init runs hooks too).
fn supervise(
    child: &mut Child,
    stdin: Option<ChildStdin>,
    mut data: &[u8],
    deadline: Option<Instant>,
) -> std::io::Result<Outcome> {
    let pid = rustix::process::Pid::from_raw(child.id() as i32)
        .ok_or_else(|| std::io::Error::other("bad pid"))?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    let mut stdin = stdin.filter(|_| !data.is_empty());
    if let Some(pipe) = &stdin {
        fcntl_setfl(pipe, fcntl_getfl(pipe)? | OFlags::NONBLOCK)?;
    }
    let write_deadline = deadline.unwrap_or_else(|| Instant::now() + STATE_WRITE_TIMEOUT);
    loop {
        let until = if stdin.is_some() {
            Some(write_deadline)
        } else {
            deadline
        };
        let left = until.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return Ok(Outcome::TimedOut {
                unread: if stdin.is_some() { data.len() } else { 0 },
            });
        }
        let ts = left.map(|left| rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        });
        let mut fds = vec![PollFd::new(&pidfd, PollFlags::IN)];
        if let Some(pipe) = &stdin {
            fds.push(PollFd::new(pipe, PollFlags::OUT));
        }
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let exited = !fds[0].revents().is_empty();
        let writable = fds.get(1).is_some_and(|f| !f.revents().is_empty());
        drop(fds);
        if exited {
            // What it did not read it did not want.
            drop(stdin);
            return child.wait().map(Outcome::Exited);
        }
        if writable {
            if let Some(pipe) = &stdin {
                match rustix::io::write(pipe, data) {
                    Ok(n) => data = &data[n..],
                    Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                    // EPIPE: the hook closed its stdin; it is done reading.
                    Err(_) => data = &[],
                }
                if data.is_empty() {
                    stdin = None;
                }
            }
        }
    }
}
