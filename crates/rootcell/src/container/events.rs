//! `events`: the container's resource usage once (`--stats`), or a stream
//! of usage every interval and OOM kills as they happen, until the
//! container stops. Events are runc's JSON objects: `{"type":"stats",
//! "id":…,"data":{…}}` and `{"type":"oom","id":…}`.

use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use serde_json::{json, Value};

use crate::cgroup::{oom::OomWatch, stats};
use crate::error::{Error, IoContext, Result};
use crate::state::{ContainerDir, ContainerState, Status};

use super::{wait, Runtime};

impl Runtime {
    /// `rootcell events --stats`: one stats event.
    pub fn stats(&self, id: &str) -> Result<Value> {
        let st = self.live_state(id)?;
        Ok(stats_event(&st))
    }

    /// `rootcell events`: calls `emit` with a stats event every `interval`
    /// and an OOM event per OOM kill, until the container's init exits or
    /// `emit` fails (its reader went away). The container's lock is not
    /// held meanwhile, so `delete` and the rest are not blocked.
    pub fn events(
        &self,
        id: &str,
        interval: Duration,
        emit: &mut dyn FnMut(&Value) -> std::io::Result<()>,
    ) -> Result<()> {
        if interval.is_zero() {
            return Err(Error::spec("--interval", "must be greater than 0"));
        }
        let st = self.live_state(id)?;
        let init = wait::pidfd_checked(st.pid, st.pid_start_time)
            .map_err(|_| not_running(id, Status::Stopped))?;
        let mut oom = match OomWatch::arm(&st.cgroup_dirs) {
            Ok(w) => w,
            Err(e) => {
                // Stats still work without the OOM watch (rootless, say).
                tracing::warn!("events {id}: no OOM notifications: {e}");
                None
            }
        };
        let sent = |r: std::io::Result<()>| r.ctx(|| "events: writing to stdout");
        let mut next = Instant::now() + interval;
        loop {
            let wait_for = next.saturating_duration_since(Instant::now());
            let (init_done, oom_ready) = wait_either(&init, oom.as_ref(), wait_for)?;
            if oom_ready {
                let kills = oom.as_mut().map_or(0, OomWatch::take);
                for _ in 0..kills {
                    sent(emit(&json!({"type": "oom", "id": st.id})))?;
                }
            }
            if init_done {
                return Ok(());
            }
            if Instant::now() >= next {
                sent(emit(&stats_event(&st)))?;
                next += interval;
            }
        }
    }

    /// The container's state, refusing a stopped container as runc does.
    fn live_state(&self, id: &str) -> Result<ContainerState> {
        let dir = ContainerDir::open(&self.root, id, false)?;
        let st = dir.load()?;
        let status = st.live_status(&dir);
        if status == Status::Stopped {
            return Err(not_running(id, status));
        }
        Ok(st)
    }
}

fn stats_event(st: &ContainerState) -> Value {
    json!({"type": "stats", "id": st.id, "data": stats::collect(&st.cgroup_dirs)})
}

fn not_running(id: &str, status: Status) -> Error {
    Error::WrongState {
        id: id.into(),
        status: status.to_string(),
        reason: "container not running".into(),
    }
}

/// Waits up to `timeout` for init to exit or the OOM watch to fire:
/// (init exited, OOM fd ready).
fn wait_either(
    init: &std::os::fd::OwnedFd,
    oom: Option<&OomWatch>,
    timeout: Duration,
) -> Result<(bool, bool)> {
    let mut fds = vec![PollFd::new(init, PollFlags::IN)];
    if let Some(w) = oom {
        let (fd, flags) = w.poll_fd();
        fds.push(PollFd::from_borrowed_fd(fd, flags));
    }
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    match poll(&mut fds, Some(&ts)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e).ctx(|| "events: poll"),
    }
    let ready = |i: usize| fds.get(i).is_some_and(|f| !f.revents().is_empty());
    Ok((ready(0), ready(1)))
}
