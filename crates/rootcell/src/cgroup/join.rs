//! How a forked process joins a container's (or a sandbox run's) cgroups.
//!
//! Moving a process into a cgroup through `cgroup.procs` moves its whole
//! thread group and so takes the kernel's global `cgroup_threadgroup_rwsem`
//! for writing, whose first taker after a quiet spell waits for an RCU grace
//! period: 4-12 ms per container start on this machine when starts are
//! 0.2 s apart (5-15 ms on a busy VM), more than the rest of a `run`.
//! Writing "0" into a v1 hierarchy's `tasks` moves only the calling thread
//! and takes no such lock (0.1 ms for all nine v1 hierarchies); for a
//! process with one thread (any freshly forked child) the two are the same.
//! cgroup v2 has no `tasks`: there the process is born in the directory
//! (`clone3` with `CLONE_INTO_CGROUP`), and writes `cgroup.procs` only when
//! the kernel refuses that.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::error::{IoContext, Result};

/// The files and directory a single-threaded child needs to join cgroups,
/// opened by the runtime.
pub struct CgroupJoin {
    /// The cgroup v2 directory, for `CLONE_INTO_CGROUP`.
    pub v2_dir: Option<OwnedFd>,
    /// Written "0" by the child: `tasks` of each v1 hierarchy.
    pub files: Vec<JoinFile>,
    /// The v2 `cgroup.procs`, written only when the child was not born in
    /// `v2_dir` (`files_to_write`).
    v2_procs: Option<JoinFile>,
}

/// The paths of a `CgroupJoin`'s files, as `into_parts` sends them.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct JoinPaths {
    /// Each v1 hierarchy's `tasks`.
    pub v1: Vec<PathBuf>,
    /// The v2 `cgroup.procs`.
    pub v2: Option<PathBuf>,
}

/// An open `tasks` or `cgroup.procs` and its path, for the error.
pub struct JoinFile {
    fd: OwnedFd,
    path: PathBuf,
}

impl JoinFile {
    /// Moves the calling (single-threaded) process into the cgroup.
    pub fn join(&self) -> Result<()> {
        match rustix::io::write(&self.fd, b"0") {
            Ok(_) => Ok(()),
            // The cpu controller refuses a real-time task unless the cgroup
            // has a real-time budget (CONFIG_RT_GROUP_SCHED): say so, since
            // "Invalid argument" alone sends people looking at the config.
            Err(rustix::io::Errno::INVAL) if self.path.parent().is_some_and(is_cpu_hierarchy) => {
                Err(std::io::Error::from(rustix::io::Errno::INVAL)).ctx(|| {
                    format!(
                        "joining cgroup {}: the kernel refuses it (a real-time \
                         (SCHED_FIFO/SCHED_RR) process cannot join a cpu cgroup \
                         whose cpu.rt_runtime_us is 0)",
                        self.path.display()
                    )
                })
            }
            Err(e) => Err(std::io::Error::from(e))
                .ctx(|| format!("joining cgroup {}", self.path.display())),
        }
    }
}

/// The bare descriptor, for a child that may only make raw syscalls.
impl From<JoinFile> for OwnedFd {
    fn from(file: JoinFile) -> OwnedFd {
        file.fd
    }
}

/// Whether a v1 cgroup directory belongs to the cpu controller's hierarchy
/// (it has `cpu.rt_runtime_us` or `cpu.shares`).
fn is_cpu_hierarchy(dir: &Path) -> bool {
    dir.join("cpu.rt_runtime_us").exists() || dir.join("cpu.shares").exists()
}

impl CgroupJoin {
    /// Nothing to join.
    pub fn none() -> CgroupJoin {
        CgroupJoin {
            v2_dir: None,
            files: Vec::new(),
            v2_procs: None,
        }
    }

    /// The directories to join, one per hierarchy.
    pub fn open(dirs: &[PathBuf]) -> Result<CgroupJoin> {
        let mut join = CgroupJoin::none();
        for dir in dirs {
            let (fd, v2) = open_dir(dir)?;
            let writer = join_file(&fd, v2, dir)?;
            if v2 && join.v2_dir.is_none() {
                join.v2_dir = Some(fd);
                join.v2_procs = Some(writer);
            } else {
                join.files.push(writer);
            }
        }
        Ok(join)
    }

    /// The paths (for a message) and the fds (for `SCM_RIGHTS`, in this
    /// order: the v1 files, then the v2 directory and its `cgroup.procs`),
    /// to hand to another process (`from_parts`).
    pub fn into_parts(self) -> (JoinPaths, Vec<OwnedFd>) {
        let mut paths = JoinPaths::default();
        let mut fds = Vec::new();
        for file in self.files {
            paths.v1.push(file.path);
            fds.push(file.fd);
        }
        if let (Some(dir), Some(procs)) = (self.v2_dir, self.v2_procs) {
            paths.v2 = Some(procs.path);
            fds.push(dir);
            fds.push(procs.fd);
        }
        (paths, fds)
    }

    /// The join `into_parts` handed over.
    pub fn from_parts(paths: JoinPaths, fds: Vec<OwnedFd>) -> Result<CgroupJoin> {
        let want = paths.v1.len() + if paths.v2.is_some() { 2 } else { 0 };
        if fds.len() != want {
            return Err(crate::error::Error::Other(format!(
                "cgroup join: {} fds for {want} files",
                fds.len()
            )));
        }
        let mut fds = fds.into_iter();
        let mut join = CgroupJoin::none();
        for (path, fd) in paths.v1.into_iter().zip(fds.by_ref()) {
            join.files.push(JoinFile { fd, path });
        }
        if let (Some(path), Some(dir), Some(fd)) = (paths.v2, fds.next(), fds.next()) {
            join.v2_dir = Some(dir);
            join.v2_procs = Some(JoinFile { fd, path });
        }
        Ok(join)
    }

    /// What a forked child still writes "0" into to join every
    /// hierarchy: the v1 `tasks`, and the v2 `cgroup.procs` unless it was
    /// born in `v2_dir` (`CLONE_INTO_CGROUP`, which the kernel may refuse).
    pub fn files_to_write(mut self, born_in_v2: bool) -> Vec<JoinFile> {
        if !born_in_v2 {
            self.files.extend(self.v2_procs.take());
        }
        self.files
    }
}

/// The file of `dir` a single-threaded process writes "0" into to join it:
/// `tasks` (v1) or `cgroup.procs` (v2).
pub fn open_join_file(dir: &Path) -> Result<JoinFile> {
    let (fd, v2) = open_dir(dir)?;
    join_file(&fd, v2, dir)
}

fn open_dir(dir: &Path) -> Result<(OwnedFd, bool)> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("cgroup {}", dir.display()))?;
    let v2 = super::is_cgroup2_fs(
        &rustix::fs::fstatfs(&fd).ctx(|| format!("cgroup {}", dir.display()))?,
    );
    Ok((fd, v2))
}

fn join_file(fd: &OwnedFd, v2: bool, dir: &Path) -> Result<JoinFile> {
    let file = if v2 { "cgroup.procs" } else { "tasks" };
    let path = dir.join(file);
    let fd = rustix::fs::openat(fd, file, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
        .ctx(|| path.display().to_string())?;
    Ok(JoinFile { fd, path })
}
