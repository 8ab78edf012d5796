//! Ending what is left of a run: SIGKILL through `cgroup.kill` or the v1
//! freezer, waiting on pidfds, removing the directories.

use super::*;

/// One round of SIGKILL for everything in `dirs`, without waiting:
/// `cgroup.kill` (v2, also the hybrid layout's unified tree: atomic, forks
/// included), else the v1 freezer around the signals (nothing forks away
/// meanwhile), else the signals alone.
pub(super) fn kill_once(dirs: &[PathBuf]) {
    if let Some(file) = dirs
        .iter()
        .map(|d| d.join("cgroup.kill"))
        .find(|f| f.exists())
    {
        match fs::write(&file, "1") {
            Ok(()) => return,
            Err(e) => tracing::debug!("{}: {e}", file.display()),
        }
    }
    let freezer = Freezer::find(dirs).filter(|f| matches!(f, Freezer::V1(_)));
    if let Some(f) = &freezer {
        if let Err(e) = f.set(true) {
            tracing::debug!("freezing the run's cgroup before killing: {e}");
        }
    }
    for pid in cgroup::pids(dirs) {
        if let Some(fd) = Pid::from_raw(pid).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok()) {
            let _ = pidfd_send_signal(&fd, Signal::KILL);
        }
    }
    if let Some(f) = &freezer {
        // A frozen task dies only once thawed.
        if let Err(e) = f.set(false) {
            tracing::debug!("thawing the run's cgroup after killing: {e}");
        }
    }
}

/// Kills everything in `dirs` and waits (pidfds, no sleeps) until the
/// cgroup is empty, for at most `KILL_TIMEOUT`.
pub(super) fn kill_all(dirs: &[PathBuf]) -> Result<()> {
    let deadline = Instant::now() + KILL_TIMEOUT;
    loop {
        let pids = cgroup::pids(dirs);
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Other(format!(
                "processes {pids:?} of the run's cgroup did not die within {} s of SIGKILL",
                KILL_TIMEOUT.as_secs()
            )));
        }
        kill_once(dirs);
        for chunk in pids.chunks(PIDFD_BATCH) {
            let fds: Vec<OwnedFd> = chunk
                .iter()
                .filter_map(|p| Pid::from_raw(*p))
                .filter_map(|p| pidfd_open(p, PidfdFlags::empty()).ok())
                .collect();
            wait_exited(&fds, deadline);
        }
    }
}

/// Waits until every pidfd polls readable (its process exited), or the
/// deadline.
pub(super) fn wait_exited(fds: &[OwnedFd], deadline: Instant) {
    let mut left: Vec<&OwnedFd> = fds.iter().collect();
    while !left.is_empty() {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let mut pfds: Vec<PollFd<'_>> = left
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::IN))
            .collect();
        let ts =
            rustix::time::Timespec::try_from(deadline - now).unwrap_or(rustix::time::Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            });
        match poll(&mut pfds, Some(&ts)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
        let done: Vec<bool> = pfds.iter().map(|p| !p.revents().is_empty()).collect();
        left = left
            .into_iter()
            .zip(done)
            .filter(|(_, d)| !d)
            .map(|(fd, _)| fd)
            .collect();
    }
}

/// Kills what is left and removes the directories (sub-cgroups the
/// command made first). An `rmdir` refused because a process was still on
/// its way out is tried again after another kill round.
pub(super) fn teardown(dirs: &[PathBuf]) -> Result<()> {
    let mut last = None;
    for attempt in 0..5 {
        // Usually the run's processes are gone already: rmdir first, and
        // list the cgroup for processes to kill only when it is busy.
        if attempt > 0 {
            kill_all(dirs)?;
        }
        match cgroup::remove(dirs) {
            Ok(()) => return Ok(()),
            Err(Error::Io { cause, context }) if cause.raw_os_error() == Some(libc::EBUSY) => {
                last = Some(Error::Io { cause, context });
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Other("removing the run's cgroup".into())))
}
