//! `pause` and `resume`: freeze and thaw the container's cgroup, with
//! runc's rules on which states allow them.

use crate::cgroup::freezer::{Freezer, FreezerState};
use crate::error::{Error, Result};
use crate::state::{ContainerDir, ContainerState, Status};

use super::Runtime;

impl Runtime {
    /// `rootcell pause`: a running or created container is frozen (runc
    /// pauses a created one too); anything else is "not running".
    pub fn pause(&self, id: &str) -> Result<()> {
        // Shared, like `resume` and `kill`: freezer writes do not race.
        let dir = ContainerDir::open(&self.root, id, false)?;
        let st = dir.load()?;
        let status = st.live_status(&dir);
        if !matches!(status, Status::Running | Status::Created) {
            return Err(wrong_state(id, status, "container not running"));
        }
        freezer_of(id, &st)?.set(true)
    }

    /// `rootcell resume`: only a paused container can be resumed. The lock
    /// is shared: an `exec --ignore-paused` holds its shared lock until its
    /// process has joined the frozen cgroup, which happens only once thawed.
    pub fn resume(&self, id: &str) -> Result<()> {
        let dir = ContainerDir::open(&self.root, id, false)?;
        let st = dir.load()?;
        let status = st.live_status(&dir);
        if status != Status::Paused {
            return Err(wrong_state(id, status, "container not paused"));
        }
        freezer_of(id, &st)?.set(false)
    }
}

/// The container's freezer, or an error saying why it has none.
fn freezer_of(id: &str, st: &ContainerState) -> Result<Freezer> {
    Freezer::find(&st.cgroup_dirs).ok_or_else(|| {
        Error::Other(format!(
            "container {id:?}: no freezer cgroup (neither a v1 freezer hierarchy nor a cgroup2 directory it may write)"
        ))
    })
}

fn wrong_state(id: &str, status: Status, reason: &str) -> Error {
    Error::WrongState {
        id: id.into(),
        status: status.to_string(),
        reason: reason.into(),
    }
}

/// Thaws a paused (or half-frozen: `FREEZING`) container so a SIGKILL
/// sent to it takes effect (on v1 a frozen task does not die until
/// thawed). Errors are ignored: the container is being killed anyway.
pub(super) fn thaw_for_kill(st: &ContainerState) {
    if let Some(f) = Freezer::find(&st.cgroup_dirs) {
        if f.state() != FreezerState::Thawed {
            let _ = f.set(false);
        }
    }
}

/// `kill --all`: as runc 1.1 does, freeze the cgroup so no process forks
/// away meanwhile, signal every process, then thaw (a paused container is
/// running again afterwards, as with runc). False when the cgroup lists no
/// process (rootless without cgroups): the caller signals init alone.
pub(super) fn signal_all(st: &ContainerState, signal: i32) -> bool {
    let freezer = Freezer::find(&st.cgroup_dirs);
    if let Some(f) = &freezer {
        if let Err(e) = f.set(true) {
            tracing::warn!("kill --all: freezing before signalling: {e}");
        }
    }
    let pids = crate::cgroup::pids(&st.cgroup_dirs);
    for pid in &pids {
        // A process may exit meanwhile; that is not an error.
        let _ = super::wait::signal(*pid, signal);
    }
    if let Some(f) = &freezer {
        if let Err(e) = f.set(false) {
            tracing::warn!("kill --all: thawing after signalling: {e}");
        }
    }
    !pids.is_empty()
}
