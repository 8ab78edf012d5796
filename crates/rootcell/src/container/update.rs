//! `update`: change a live container's cgroup limits, as runc 1.1's
//! `update` does. Only the values given change; the cgroup files are the
//! record of the current limits (nothing is added to `state.json`:
//! `events --stats` and later updates read the files).

use oci_spec::runtime::LinuxResources;

use crate::cgroup::{self, ContainerCgroup};
use crate::error::{Error, Result};
use crate::plan::{self, CgroupVersion};
use crate::state::{ContainerDir, Status};

use super::Runtime;

impl Runtime {
    /// `rootcell update`: plans `res` (runc's update fields; zero or empty
    /// is unchanged) with `create`'s validation and conversions, then
    /// writes it into the container's cgroups. The container must be
    /// created, running or paused. Returns the plan's warnings (kernel
    /// memory…) for the caller to print. Nothing is written when the plan
    /// fails.
    pub fn update(&self, id: &str, res: &LinuxResources) -> Result<Vec<String>> {
        // Exclusive: two updates of memory and memsw must not interleave.
        let dir = ContainerDir::open(&self.root, id, true)?;
        let st = dir.load()?;
        let status = st.live_status(&dir);
        if !matches!(status, Status::Created | Status::Running | Status::Paused) {
            return Err(Error::WrongState {
                id: id.into(),
                status: status.to_string(),
                reason: "container not running".into(),
            });
        }
        let hierarchies = cgroup::host_hierarchies()?;
        let version = cgroup::version(&hierarchies);
        let cg = cgroup::from_dirs(&st.cgroup_dirs, &hierarchies);
        let res = with_current_cpu_max(res, &cg, version);
        let Some(planned) = plan::update_plan(&res, version, cgroup::has_memsw(&cg))? else {
            return Ok(Vec::new());
        };
        cgroup::update_resources(&planned, &cg, self.rootless)?;
        Ok(planned.warnings)
    }
}

/// cgroup v2 writes quota and period together (`cpu.max`): when only one
/// is given, the other is the container's current one, as runc 1.1 reads
/// it, instead of the defaults `create` would use.
fn with_current_cpu_max(
    res: &LinuxResources,
    cg: &ContainerCgroup,
    version: CgroupVersion,
) -> LinuxResources {
    let mut res = res.clone();
    if version != CgroupVersion::V2 {
        return res;
    }
    let Some(cpu) = res.cpu_mut().as_mut() else {
        return res;
    };
    let quota = cpu.quota().filter(|q| *q != 0);
    let period = cpu.period().filter(|p| *p != 0);
    if quota.is_some() == period.is_some() {
        return res;
    }
    let Some((cur_quota, cur_period)) = cgroup::current_cpu_max(cg) else {
        return res;
    };
    if quota.is_none() {
        // `max` is unlimited, -1 in the config.
        cpu.set_quota(Some(cur_quota.parse().unwrap_or(-1)));
    } else {
        cpu.set_period(Some(cur_period));
    }
    res
}
