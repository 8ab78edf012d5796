//! Applies the LSM settings of `process`: the AppArmor profile and the
//! SELinux label the kernel switches to at the next `execve`. The planner
//! has already refused them when the host has no such LSM.
//!
//! Both are writes to `/proc/thread-self/attr/...` through the private
//! procfs (`fs::procfs`), never through a `/proc` the container could have
//! replaced: a write that lands elsewhere would leave the process
//! unconfined.

use crate::error::{IoContext, Result};
use crate::fs::procfs::{self, ProcfsBase};
use crate::plan::Lsm;

pub fn apply(lsm: &Lsm) -> Result<()> {
    if let Some(profile) = &lsm.apparmor_profile {
        let request = format!("exec {profile}");
        // attr/apparmor/exec since Linux 5.8 (LSM stacking); attr/exec
        // before that.
        match procfs::write(ProcfsBase::ProcThreadSelf, "attr/apparmor/exec", &request) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                procfs::write(ProcfsBase::ProcThreadSelf, "attr/exec", &request)
            }
            other => other,
        }
        .ctx(|| format!("process.apparmorProfile: applying profile {profile:?}"))?;
    }
    if let Some(label) = &lsm.selinux_label {
        procfs::write(ProcfsBase::ProcThreadSelf, "attr/exec", label)
            .ctx(|| format!("process.selinuxLabel: setting exec label {label:?}"))?;
    }
    Ok(())
}
