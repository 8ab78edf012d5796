//! The sandbox's init: pid 1 of its pid namespace. It sets the sandbox up
//! (cgroup, mounts, root switch, hostname, `lo`), forks the command (pid
//! 2), then reaps every child, forwards signals to the command, and when
//! the command has ended writes its wait status to the runtime and exits:
//! the kernel then kills whatever else still runs in the pid namespace.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::event::{poll, PollFd, PollFlags};

use super::process::{self, ChildSide};
use crate::error::{Error, IoContext, Result};
use crate::fs::procfs;
use crate::plan::{Namespace, RootSource, Staging, StagingFilesystem};
use crate::process::{sync, sys, Never};
use crate::rootfs::{HostTreeOptions, Rootfs, StagingHandle};

/// Signals init passes on to the command. The command's process group
/// gets a terminal's signals (^C) from the kernel itself; those arrive at
/// init too (`SI_KERNEL`) and are not passed on a second time.
const FORWARDED: [i32; 9] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGCONT,
    libc::SIGWINCH,
];

pub(super) fn init(child: ChildSide<'_>) -> Result<Never> {
    let ChildSide {
        plan,
        staging,
        user_ns,
        io,
        cgroup_joins,
        status,
        errors,
        setup_sync,
    } = child;
    // Init's end is the end of the pid namespace, so of everything in it:
    // when the runtime dies, so does the sandbox. Checked once after
    // setting it, in case the runtime died before: then the status pipe
    // has no reader.
    crate::phase::mark("init started");
    sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64).ctx(|| "prctl(PR_SET_PDEATHSIG)")?;
    if runtime_gone(&status) {
        sys::exit_now(1);
    }
    let staging = match user_ns {
        Some(channel) => rootless_start(plan, &channel, staging)?,
        None => staging.ok_or_else(|| Error::Other("no staging filesystem".into()))?,
    };
    // No process of the sandbox may ptrace init or open its /proc files
    // (its exe is rootcell's binary, its fds the staging and the pipes).
    sys::prctl(libc::PR_SET_DUMPABLE, 0).ctx(|| "prctl(PR_SET_DUMPABLE)")?;
    for file in cgroup_joins {
        file.join()?;
    }
    let ns = &plan.plan.namespaces;
    if ns.creates(Namespace::Cgroup) {
        sys::unshare(libc::CLONE_NEWCGROUP).ctx(|| "creating the cgroup namespace")?;
    }
    let signals = sys::SignalSet::of(&[FORWARDED.as_slice(), &[libc::SIGCHLD]].concat());
    signals.block().ctx(|| "sigprocmask")?;
    // Handles inherited from the runtime are of the host's pid namespace.
    procfs::close_handles();
    // Directories and files get exactly the modes the plan says.
    rustix::process::umask(rustix::fs::Mode::empty());
    if let Some(name) = &plan.plan.hostname {
        sys::sethostname(name).ctx(|| "hostname")?;
    }
    if ns.creates(Namespace::Network) {
        sys::loopback_up().ctx(|| "bringing the loopback interface lo up")?;
    }

    crate::phase::mark("init: namespaces set up");
    let rootfs_plan = &plan.plan.rootfs;
    let p = &plan.plan.process;
    let opts = HostTreeOptions {
        owner: (p.uid, p.gid),
        user_ns: ns.has(Namespace::User),
    };
    let mut rootfs = Rootfs::prepare_host_tree(rootfs_plan, staging, opts)?;
    crate::phase::mark("init: staging prepared");
    rootfs.run_steps(&rootfs_plan.setup)?;
    crate::phase::mark("init: setup steps");
    rootfs.switch(rootfs_plan.switch)?;
    crate::phase::mark("init: root switched");
    rootfs.run_steps(&rootfs_plan.finish)?;
    drop(rootfs);
    // The runtime takes the usage baseline of the staging now.
    if let Some((ready, go)) = setup_sync {
        process::write_all(&ready, b"1").ctx(|| "telling the runtime the sandbox is set up")?;
        if !process::wait_byte(&go) {
            sys::exit_now(1);
        }
    }

    let errors_fd = errors;
    crate::phase::mark("init: forking the command");
    let command = match sys::fork().ctx(|| "fork of the command")? {
        sys::Forked::Child => {
            process::run_child(errors_fd, || process::command(plan, io, errors_fd))
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(io);
    // Nothing else of the runtime's (the staging, the host's stdio files,
    // its signalfd) stays open in init: it only reaps, forwards and
    // reports from here on.
    sys::close_fds_for_exec(0, &[status.as_raw_fd(), errors_fd]).ctx(|| "closing init's fds")?;
    loop {
        while let Some((pid, wait_status)) = sys::reap_one() {
            if pid == command {
                crate::phase::mark("init: command reaped");
                process::write_all(&status, &wait_status.to_ne_bytes())
                    .ctx(|| "writing the command's status to the runtime")?;
                sys::exit_now(0);
            }
        }
        let (sig, code) = signals.wait().ctx(|| "sigwaitinfo")?;
        if sig != libc::SIGCHLD && code != libc::SI_KERNEL {
            let _ = sys::kill(command, sig);
        }
    }
}

/// Rootless: waits until the runtime has written the id maps (nothing in
/// the user namespace works before), then, when the runtime could not make
/// the staging tmpfs (unprivileged on the host), makes it here, where the
/// user namespace owns the mount namespace, and sends it to the runtime.
fn rootless_start(
    plan: &super::SandboxPlan,
    channel: &sync::Channel,
    staging: Option<StagingHandle>,
) -> Result<StagingHandle> {
    match channel.recv::<String>()? {
        Some(m) if m == process::MAPS_WRITTEN => {}
        _ => sys::exit_now(1),
    }
    if let Some(staging) = staging {
        return Ok(staging);
    }
    let RootSource::HostTree(Staging {
        filesystem: StagingFilesystem::Tmpfs { options },
        ..
    }) = &plan.plan.rootfs.source
    else {
        return Err(Error::Other(
            "no staging filesystem for this sandbox".into(),
        ));
    };
    let fd = super::execute::staging_tmpfs(options)?;
    channel.send_fd(&"staging", fd.as_fd())?;
    Ok(StagingHandle { fd, dir_path: None })
}

/// The runtime holds the status pipe's read end while it lives: a write
/// end without readers polls as an error.
fn runtime_gone(status: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(status, PollFlags::OUT)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero)).is_ok()
        && fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP)
}
