//! The sandbox face: run a command in a container made from the host's own
//! tree (BenchExec's `containerexec`/`runexec`). Each directory of the host
//! is hidden, read-only, overlaid (writes captured) or fully accessible;
//! limits are enforced and the run is measured.
//!
//! Flow, as for the OCI face: `SandboxConfig` (flags) → plan (pure, from
//! the config and the host's mountinfo: `plan`, printed by `--plan`) →
//! execute (the same mount primitives, `rootfs::Rootfs` and root switch as
//! containers; `process` and `init` for the processes) → report and
//! result files.

pub mod capture;
pub mod cgroups;
pub mod config;
pub mod execute;
mod init;
pub mod layout;
pub mod overlay_driver;
pub mod process;
pub mod report;
pub mod supervise;
pub mod system_config;
pub mod units;

use std::ffi::OsString;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

pub use config::{DirMode, DirRule, Input, Limits, SandboxConfig};
pub use report::{ExitStatus, Report, TerminationReason};

use crate::error::{Error, IoContext, Result};
use crate::plan::{
    Capabilities, FinalStep, Namespace, Namespaces, Plan, ProcessPlan, Propagation,
    PropagationChange, RootSource, RootSwitch, RootfsPlan,
};

/// The caller's umask, which the command keeps (umask(2) only sets: it is
/// set back at once; the runtime is single-threaded).
pub fn current_umask() -> u32 {
    let umask = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    rustix::process::umask(umask);
    umask.bits()
}

/// Everything a sandbox run does, as data: the engine's `Plan` (namespaces,
/// hostname, the host tree's staging and mount steps, the root switch, the
/// command's process settings) and the sandbox's own parts.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxPlan {
    pub plan: Plan,
    /// The command and its environment as given (any bytes);
    /// `plan.process.args`/`env` show them as text.
    #[serde(skip)]
    pub command: Vec<OsString>,
    #[serde(skip)]
    pub env: Vec<(OsString, OsString)>,
    pub input: Input,
    /// stdout and stderr of the command (else: rootcell's own).
    pub output: Option<PathBuf>,
    pub output_directory: PathBuf,
    /// `--result-files`, absolute container paths, and where the tree in
    /// the output directory starts.
    pub result_files: capture::ResultFiles,
    /// Every directory of the layout and its mode.
    pub modes: Vec<(PathBuf, DirMode)>,
    pub limits: Limits,
    pub cgroup_access: bool,
    pub notes: Vec<String>,
}

/// The checks that need no host: one command, `--root` alone, absolute
/// paths.
pub fn validate(cfg: &SandboxConfig) -> Result<()> {
    if cfg.command.is_empty() {
        return Err(Error::usage("command", "no command given"));
    }
    if cfg.root && (cfg.uid.is_some() || cfg.gid.is_some()) {
        let flag = if cfg.uid.is_some() { "--uid" } else { "--gid" };
        return Err(Error::usage(flag, "cannot be combined with --root"));
    }
    if let Some(dir) = &cfg.working_dir {
        if !dir.is_absolute() {
            return Err(Error::usage(
                "--dir",
                format!("{}: not an absolute path", dir.display()),
            ));
        }
    }
    if let Some(out) = &cfg.output {
        if out.as_os_str().is_empty() {
            return Err(Error::usage("--output", "empty path"));
        }
    }
    Ok(())
}

/// The plan of a run of `cfg` on this host (`--plan` prints it).
pub fn plan(cfg: &SandboxConfig) -> Result<SandboxPlan> {
    validate(cfg)?;
    let facts = layout::HostFacts::gather(cfg)?;
    crate::phase::mark("host facts");
    let layout = layout::plan(cfg, &facts)?;
    build_plan(cfg, layout, &facts, current_umask())
}

/// Pure: the sandbox's plan from the config, the planned filesystem
/// layout (which chose the user, the working directory, HOME and the
/// hostname), the host's facts and the caller's umask.
pub fn build_plan(
    cfg: &SandboxConfig,
    layout: layout::Layout,
    host: &layout::HostFacts,
    umask: u32,
) -> Result<SandboxPlan> {
    let (uid, gid) = (layout.uid, layout.gid);
    let mut create = vec![Namespace::Mount, Namespace::Pid];
    if !cfg.network_access {
        create.push(Namespace::Network);
    }
    create.extend([Namespace::Ipc, Namespace::Uts, Namespace::Cgroup]);
    // Not root: a user namespace mapping the caller (the rootless
    // sandbox, not implemented yet: the executor refuses it).
    let (uid_mappings, gid_mappings) = if host.rootless {
        create.insert(0, Namespace::User);
        let map = |inside: u32, outside: u32| crate::plan::IdMapping {
            container_id: inside,
            host_id: outside,
            size: 1,
        };
        (vec![map(uid, host.uid)], vec![map(gid, host.gid)])
    } else {
        (Vec::new(), Vec::new())
    };
    let mut env: Vec<(OsString, OsString)> = cfg
        .env
        .iter()
        .filter(|(k, _)| k != "HOME")
        .cloned()
        .collect();
    env.push(("HOME".into(), layout.home.clone().into_os_string()));
    let result_files = capture::ResultFiles::new(&cfg.result_files, &layout.working_dir)?;
    let cwd = layout.working_dir.clone();
    let process = ProcessPlan {
        args: cfg
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        env: env
            .iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect(),
        cwd,
        uid,
        gid,
        additional_gids: Vec::new(),
        umask,
        terminal: false,
        console_size: None,
        rlimits: Vec::new(),
        // As BenchExec: no capabilities, whatever the user; and with no
        // user namespace, no setuid program may regain any.
        no_new_privileges: true,
        oom_score_adj: None,
        capabilities: Some(Capabilities::default()),
        personality: None,
        io_priority: None,
        scheduler: None,
        exec_cpu_affinity: None,
        lsm: Default::default(),
        seccomp: None,
        final_steps: vec![
            FinalStep::SwitchUser,
            FinalStep::SetCapabilities {
                keep_sys_admin: false,
            },
            FinalStep::NoNewPrivileges,
            FinalStep::EnterCwd,
            FinalStep::ResolveProgram,
            FinalStep::CloseFds,
            FinalStep::ResetSignals,
            FinalStep::Execve,
        ],
        warnings: Vec::new(),
    };
    let rootfs = RootfsPlan {
        rootfs: PathBuf::new(),
        source: RootSource::HostTree(layout.staging),
        // Nothing mounted in the sandbox reaches the host, nor does
        // anything the host mounts later reach the sandbox (BenchExec).
        root_propagation: PropagationChange {
            kind: Propagation::Private,
            recursive: true,
        },
        setup: layout.setup,
        switch: RootSwitch::PivotRoot,
        finish: layout.finish,
        mount_label: None,
        verify_mount_flags: false,
        device_rules: None,
        hide_host_mounts: None,
        lock_mounts: false,
    };
    Ok(SandboxPlan {
        plan: Plan {
            isolation: crate::plan::Isolation::Oci,
            // Not decided for a sandbox: `rootcell sandbox` does not take
            // the CVE-2019-5736 path (its processes always run in a user
            // namespace of their own).
            runtime_binary: None,
            // The sandbox joins its run cgroup its own way (`sandbox::process`).
            cgroup_entry: crate::plan::cgroup_entry::CgroupEntry::BeforeNamespaces,
            // Its own executor (`sandbox::process`) makes its processes.
            spawn: crate::plan::spawn::InitSpawn::Stage1,
            create_hooks_sync: false,
            // The sandbox's processes run in a user namespace of their own.
            init_procfs: crate::plan::InitProcfs::Private,
            namespaces: Namespaces {
                create,
                join: Vec::new(),
                uid_mappings,
                gid_mappings,
                time_offsets: Vec::new(),
                shared_if_refused: Vec::new(),
            },
            // BenchExec sets its hostname only with its generated system
            // config; --keep-system-config keeps the host's (the new UTS
            // namespace starts with it), matching the host's /etc/hosts.
            hostname: (!cfg.keep_system_config).then_some(layout.hostname),
            domainname: None,
            rootfs,
            process,
            resources: None,
            memory_policy: None,
            diagnostics: Vec::new(),
        },
        command: cfg.command.clone(),
        env,
        input: cfg.input.clone(),
        output: cfg.output.clone(),
        output_directory: cfg.output_directory.clone(),
        result_files,
        modes: layout.modes,
        limits: cfg.limits.clone(),
        cgroup_access: cfg.cgroup_access,
        notes: layout.notes,
    })
}

impl fmt::Display for SandboxPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.plan)?;
        writeln!(f, "directory modes")?;
        for (path, mode) in &self.modes {
            writeln!(
                f,
                "├─ {} {}",
                path.display(),
                mode.flag()
                    .trim_start_matches("--")
                    .trim_end_matches("-dir")
            )?;
        }
        writeln!(f, "stdio")?;
        let input = match &self.input {
            Input::DevNull => "/dev/null".to_string(),
            Input::Inherit => "rootcell's own".to_string(),
            Input::File(p) => p.display().to_string(),
        };
        writeln!(f, "├─ stdin {input}")?;
        match &self.output {
            Some(p) => writeln!(f, "└─ stdout and stderr to {}", p.display())?,
            None => writeln!(f, "└─ stdout and stderr: rootcell's own")?,
        }
        writeln!(
            f,
            "results to {} (from {})",
            self.output_directory.display(),
            self.result_files.base.display()
        )?;
        for p in &self.result_files.patterns {
            writeln!(f, "├─ {}", p.display())?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}

/// A whole run: plan, execute, report.
pub fn run(cfg: &SandboxConfig) -> Result<Report> {
    let plan = plan(cfg)?;
    crate::phase::mark("plan");
    tracing::debug!(
        "sandbox: planned {} setup steps",
        plan.plan.rootfs.setup.len()
    );
    execute(&plan)
}

/// The command's stdio, opened by the runtime as the caller.
fn open_io(plan: &SandboxPlan) -> Result<process::CommandIo> {
    use rustix::fs::{Mode, OFlags};
    let stdin = match &plan.input {
        Input::Inherit => None,
        Input::DevNull => Some(
            rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .ctx(|| "/dev/null")?,
        ),
        Input::File(path) => Some(
            rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::usage("--input", format!("{}: {e}", path.display())))?,
        ),
    };
    let output = match &plan.output {
        None => None,
        Some(path) => Some(
            rustix::fs::open(
                path,
                OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            )
            .map_err(|e| Error::usage("--output", format!("{}: {e}", path.display())))?,
        ),
    };
    Ok(process::CommandIo { stdin, output })
}

/// Runs a planned sandbox and reports. Everything it made (the staging,
/// the run cgroup, the processes) is gone when it returns.
pub fn execute(plan: &SandboxPlan) -> Result<Report> {
    let RootSource::HostTree(staging_plan) = &plan.plan.rootfs.source else {
        return Err(Error::Other("a sandbox plan needs a host tree".into()));
    };
    cgroups::check_memory_nodes(&plan.limits)?;
    // Made and opened before the command runs: it cannot redirect them.
    let io = open_io(plan)?;
    let output_dir = capture::OutputDir::open(&plan.output_directory)?;
    crate::phase::mark("stdio and output directory");
    // Rootless: an unprivileged runtime cannot make a tmpfs on the host;
    // init makes it in its user namespace and sends it back.
    let made_by_init = plan.plan.namespaces.creates(Namespace::User)
        && matches!(
            staging_plan.filesystem,
            crate::plan::StagingFilesystem::Tmpfs { .. }
        );
    let staging = if made_by_init {
        None
    } else {
        match execute::StagingFs::create(staging_plan) {
            Ok(staging) => Some(staging),
            Err(e) => {
                output_dir.remove_if_empty();
                return Err(e);
            }
        }
    };
    tracing::debug!(
        "sandbox: staging {:?} made, {} setup and {} finish steps",
        staging_plan.filesystem,
        plan.plan.rootfs.setup.len(),
        plan.plan.rootfs.finish.len()
    );
    crate::phase::mark("staging");
    let result = run_in(plan, staging.as_ref(), io, &output_dir);
    let removed = staging.map_or(Ok(()), execute::StagingFs::remove);
    crate::phase::mark("staging removed");
    tracing::debug!("sandbox: staging removed: {removed:?}");
    match result {
        Ok(report) => {
            if report.result_files.is_empty() {
                output_dir.remove_if_empty();
            }
            removed?;
            Ok(report)
        }
        Err(e) => {
            output_dir.remove_if_empty();
            Err(e)
        }
    }
}

fn run_in(
    plan: &SandboxPlan,
    staging: Option<&execute::StagingFs>,
    io: process::CommandIo,
    output_dir: &capture::OutputDir,
) -> Result<Report> {
    let mut notes = plan.notes.clone();
    let cgroup = match cgroups::RunCgroup::create(&plan.limits, plan.cgroup_access)? {
        Some((cgroup, cgroup_notes)) => {
            notes.extend(cgroup_notes);
            Some(cgroup)
        }
        None => {
            notes.extend(cgroups::notes_without_cgroup(&plan.limits));
            None
        }
    };
    // Without a cgroup, `--timelimit` is an rlimit of the command.
    let without_cgroup;
    let plan = if cgroup.is_none() && plan.limits.cputime.is_some() {
        let mut p = plan.clone();
        p.plan.process.rlimits.extend(
            cgroups::rlimits_without_cgroup(&plan.limits)
                .into_iter()
                .map(|(resource, soft, hard)| crate::plan::Rlimit {
                    name: "RLIMIT_CPU".into(),
                    resource,
                    soft,
                    hard,
                }),
        );
        without_cgroup = p;
        &without_cgroup
    } else {
        plan
    };
    let join = match &cgroup {
        Some(cg) => crate::cgroup::CgroupJoin::open(cg.join_dirs())?,
        None => crate::cgroup::CgroupJoin::none(),
    };
    tracing::debug!("sandbox: run cgroup made");
    crate::phase::mark("run cgroup");
    // Blocked before init exists (which inherits the mask and blocks its
    // own set; the command starts with none blocked), restored on return.
    let _signals = supervise::block_signals()?;
    let files_limited = plan.limits.files_count.is_some() || plan.limits.files_size.is_some();
    let starttime = crate::state::time::rfc3339_now();
    let started = Instant::now();
    let handle = staging.map(execute::StagingFs::handle).transpose()?;
    let mut spawned = process::spawn(plan, handle, io, join, files_limited)?;
    tracing::debug!("sandbox: init started, pid {}", spawned.pid);
    crate::phase::mark("init spawned");
    let received = spawned.staging.take().map(execute::StagingFs::from_mount);
    let staging = match (staging, received.as_ref()) {
        (Some(staging), _) | (None, Some(staging)) => staging,
        (None, None) => return Err(Error::Other("the sandbox has no staging".into())),
    };
    // `--filesCountLimit`/`--filesSizeLimit` count what the command
    // writes: the baseline is taken while init waits between its setup
    // and the command.
    let probe = match &spawned.setup_done {
        Some((ready, go)) => {
            let probe = if process::wait_byte(ready) {
                capture::UsageProbe::new(staging.fd()).ok()
            } else {
                None
            };
            let _ = process::write_all(go, b"1");
            probe
        }
        None => None,
    };
    let files_usage: Option<Box<dyn FnMut() -> (u64, u64) + '_>> = probe.map(|probe| {
        Box::new(move || probe.usage().unwrap_or((0, 0))) as Box<dyn FnMut() -> (u64, u64)>
    });
    let watch = supervise::Watch {
        cgroup: cgroup.as_ref(),
        limits: &plan.limits,
        files_usage,
    };
    let errors = spawned.errors;
    let outcome =
        supervise::supervise(&spawned.pidfd, spawned.pid, spawned.status, watch, started)?;
    crate::phase::mark("run ended, measured");
    tracing::debug!(
        "sandbox: the run ended after {:?}: {:?}",
        outcome.walltime,
        outcome.status
    );
    if let Some(message) = read_errors(&errors) {
        return Err(sandbox_error(message));
    }
    if let Some(cgroup) = cgroup {
        cgroup.remove()?;
    }
    tracing::debug!("sandbox: run cgroup removed");
    crate::phase::mark("run cgroup removed");
    let upper = match staging.upper() {
        Ok(upper) => upper,
        // The memory limit killed the sandbox's own setup before it made
        // the staging's layout: the limit is too small to start at all.
        Err(_) if outcome.termination_reason == Some(TerminationReason::Memory) => {
            return Err(Error::usage(
                "--memlimit",
                "too small for the sandbox to start (its setup was killed by the memory limit)",
            ))
        }
        Err(e) => return Err(e),
    };
    let captured = capture::capture_into(upper.as_fd(), &plan.result_files, output_dir)?;
    notes.extend(captured.notes);
    tracing::debug!("sandbox: {} result files", captured.files.len());
    crate::phase::mark("result files");
    if let (Some(max), Some(path)) = (plan.limits.output_size, &plan.output) {
        supervise::shrink_output(path, max)?;
    }
    Ok(Report {
        starttime,
        status: outcome.status,
        termination_reason: outcome.termination_reason,
        walltime: outcome.walltime,
        cputime: outcome.cputime,
        cputime_per_cpu: outcome.cputime_per_cpu,
        memory: outcome.memory,
        blkio_read: outcome.blkio_read,
        blkio_write: outcome.blkio_write,
        result_files: captured.files,
        deleted_files: captured.deleted,
        notes,
    })
}

/// What init or the command wrote into the error pipe before dying (all
/// writers are gone once init has exited).
fn read_errors(errors: &OwnedFd) -> Option<String> {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(errors.as_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&text).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// An error from inside the sandbox; one that names a flag (`--dir ...`)
/// is the user's (a usage error).
fn sandbox_error(message: String) -> Error {
    if let Some(rest) = message.strip_prefix("--") {
        let end = rest.find([' ', ':']).unwrap_or(rest.len());
        let flag = format!("--{}", &rest[..end]);
        let reason = rest[end..].trim_start_matches(':').trim_start().to_string();
        return Error::usage(flag, reason);
    }
    Error::Other(message)
}

/// `path` made absolute against `base` (the CLI's relative flag values).
pub fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Staging, StagingFilesystem};

    fn layout(uid: u32, working_dir: &str) -> layout::Layout {
        layout::Layout {
            staging: Staging {
                filesystem: StagingFilesystem::Tmpfs {
                    options: Vec::new(),
                },
                mountpoint: PathBuf::from("/run"),
            },
            setup: Vec::new(),
            finish: Vec::new(),
            notes: vec!["a note".into()],
            modes: vec![(PathBuf::from("/"), DirMode::Overlay)],
            home: PathBuf::from("/home/user"),
            working_dir: PathBuf::from(working_dir),
            uid,
            gid: uid + 1,
            hostname: "box".into(),
        }
    }

    fn host(uid: u32) -> layout::HostFacts {
        layout::HostFacts {
            uid,
            gid: uid + 1,
            rootless: uid != 0,
            ..Default::default()
        }
    }

    fn config() -> SandboxConfig {
        let mut cfg = SandboxConfig::new(vec!["ls".into(), "-l".into()]);
        cfg.env = vec![
            ("HOME".into(), "/root".into()),
            ("PATH".into(), "/bin".into()),
        ];
        cfg
    }

    #[test]
    fn the_plan_of_a_root_caller() {
        let plan = build_plan(&config(), layout(0, "/work"), &host(0), 0o027).unwrap();
        let ns = &plan.plan.namespaces;
        assert_eq!(
            ns.create,
            [
                Namespace::Mount,
                Namespace::Pid,
                Namespace::Network,
                Namespace::Ipc,
                Namespace::Uts,
                Namespace::Cgroup
            ]
        );
        assert!(ns.uid_mappings.is_empty());
        let p = &plan.plan.process;
        assert_eq!((p.uid, p.gid, p.umask), (0, 1, 0o027));
        assert_eq!(p.cwd, PathBuf::from("/work"));
        assert_eq!(
            p.env,
            ["PATH=/bin", "HOME=/home/user"],
            "HOME is the layout's"
        );
        assert!(p.no_new_privileges);
        assert!(p
            .capabilities
            .as_ref()
            .is_some_and(|c| c.bounding.is_empty()));
        assert_eq!(plan.plan.rootfs.switch, RootSwitch::PivotRoot);
        assert_eq!(
            plan.plan.rootfs.root_propagation,
            PropagationChange {
                kind: Propagation::Private,
                recursive: true
            }
        );
        assert_eq!(plan.result_files.patterns, [PathBuf::from("/work")]);
        assert_eq!(plan.notes, ["a note"]);
        assert_eq!(plan.plan.hostname.as_deref(), Some("box"));
    }

    #[test]
    fn flags_change_the_plan() {
        let mut cfg = config();
        cfg.network_access = true;
        cfg.keep_system_config = true;
        cfg.result_files = vec!["out/*.txt".into()];
        let plan = build_plan(&cfg, layout(1000, "/srv"), &host(0), 0o022).unwrap();
        assert!(!plan.plan.namespaces.creates(Namespace::Network));
        assert_eq!(plan.plan.hostname, None, "the host's hostname is kept");
        assert_eq!(plan.plan.process.cwd, PathBuf::from("/srv"));
        assert_eq!(
            (plan.plan.process.uid, plan.plan.process.gid),
            (1000, 1001),
            "the layout's user"
        );
        assert_eq!(
            plan.result_files.patterns,
            [PathBuf::from("/srv/out/*.txt")]
        );
        let mut cfg = config();
        cfg.result_files = vec!["../../x".into()];
        assert!(matches!(
            build_plan(&cfg, layout(0, "/srv"), &host(0), 0o022),
            Err(Error::Usage { flag, .. }) if flag == "--result-files"
        ));
    }

    #[test]
    fn an_unprivileged_caller_gets_a_user_namespace_mapping_itself() {
        let plan = build_plan(&config(), layout(1000, "/w"), &host(1000), 0o022).unwrap();
        let ns = &plan.plan.namespaces;
        assert_eq!(ns.create[0], Namespace::User);
        assert_eq!(ns.uid_mappings.len(), 1);
        assert_eq!(
            (ns.uid_mappings[0].container_id, ns.uid_mappings[0].host_id),
            (1000, 1000)
        );
    }

    #[test]
    fn config_checks_name_the_flag() {
        let mut cfg = config();
        cfg.root = true;
        cfg.gid = Some(3);
        assert!(matches!(validate(&cfg), Err(Error::Usage { flag, .. }) if flag == "--gid"));
        let mut cfg = config();
        cfg.working_dir = Some(PathBuf::from("rel"));
        assert!(matches!(validate(&cfg), Err(Error::Usage { flag, .. }) if flag == "--dir"));
        let cfg = SandboxConfig::new(Vec::new());
        assert!(matches!(validate(&cfg), Err(Error::Usage { flag, .. }) if flag == "command"));
    }

    #[test]
    fn errors_from_inside_that_name_a_flag_are_usage_errors() {
        match sandbox_error("--dir /x: No such file or directory (os error 2)".into()) {
            Error::Usage { flag, reason } => {
                assert_eq!(flag, "--dir");
                assert_eq!(reason, "/x: No such file or directory (os error 2)");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            sandbox_error("mount: EINVAL".into()),
            Error::Other(_)
        ));
    }

    #[test]
    fn the_plan_prints_as_the_engines_tree() {
        let plan = build_plan(&config(), layout(0, "/work"), &host(0), 0o022).unwrap();
        let text = plan.to_string();
        for part in [
            "rootfs: the host's tree",
            "staging: a tmpfs, attached at /run",
            "switch root: PivotRoot",
            "├─ / overlay",
            "stdin /dev/null",
            "note: a note",
        ] {
            assert!(text.contains(part), "{part}:\n{text}");
        }
    }
}
