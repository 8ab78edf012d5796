//! INTERIM (core, until the lead's `layout.rs` is in main): a minimal
//! stand-in for the planner with the intended shape (`Layout`,
//! `HostFacts::gather`, `plan`), so that the executor, the process model
//! and the CLI run end to end. It knows `/` as an overlay, a fresh `/proc`
//! and `/sys`, the host's `/dev`, the directory rules (each one mount, in
//! path order) and the `/tmp` and `/run` defaults. Replaced by
//! `layout::plan`; nothing else depends on what it does.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::plan::options::attr;
use crate::plan::{AttrChange, FsOption, MountKind, MountStep, Staging, StagingFilesystem, Step};
use crate::sandbox::{DirMode, SandboxConfig};

/// What the planner decided (the lead's `layout::Layout`).
#[derive(Debug, Clone)]
pub struct Layout {
    pub staging: Staging,
    pub setup: Vec<Step>,
    pub finish: Vec<Step>,
    pub notes: Vec<String>,
    pub result_patterns: Vec<PathBuf>,
    pub home: PathBuf,
}

/// Facts about the host (the lead's `layout::HostFacts`).
#[derive(Debug, Clone, Default)]
pub struct HostFacts {}

impl HostFacts {
    pub fn gather(_cfg: &SandboxConfig) -> Result<HostFacts> {
        Ok(HostFacts {})
    }
}

fn mount(destination: &Path, kind: MountKind, set: u64, recursive: u64) -> Step {
    Step::Mount(MountStep {
        destination: destination.to_path_buf(),
        kind,
        attrs: AttrChange { set, clear: 0 },
        recursive_attrs: AttrChange {
            set: recursive,
            clear: 0,
        },
        propagation: None,
        config_index: None,
    })
}

pub fn plan(cfg: &SandboxConfig, _facts: &HostFacts) -> Result<Layout> {
    let mut rules: Vec<(PathBuf, DirMode)> = Vec::new();
    for r in &cfg.dir_rules {
        if !r.path.is_absolute() {
            return Err(Error::usage(
                r.mode.flag(),
                format!("{}: not absolute", r.path.display()),
            ));
        }
        if !r.path.is_dir() {
            return Err(Error::usage(
                r.mode.flag(),
                format!("{}: no such directory", r.path.display()),
            ));
        }
        rules.push((r.path.clone(), r.mode));
    }
    for (dir, mode) in [
        (
            "/tmp",
            if cfg.keep_tmp {
                DirMode::FullAccess
            } else {
                DirMode::Hidden
            },
        ),
        ("/run", DirMode::Hidden),
    ] {
        if !rules.iter().any(|(p, _)| p == Path::new(dir)) {
            rules.push((PathBuf::from(dir), mode));
        }
    }
    rules.retain(|(p, _)| p != Path::new("/"));
    rules.sort_by(|a, b| a.0.cmp(&b.0));
    let sources: Vec<&Path> = rules
        .iter()
        .filter(|(_, m)| *m != DirMode::Hidden)
        .map(|(p, _)| p.as_path())
        .chain([Path::new("/dev"), Path::new("/sys")])
        .collect();
    let mountpoint = ["/run", "/mnt", "/tmp", "/var/tmp", "/srv", "/opt"]
        .iter()
        .map(Path::new)
        .find(|c| {
            c.is_dir()
                && !sources
                    .iter()
                    .any(|s| s.starts_with(c) || c.starts_with(s) && *s != Path::new("/"))
        })
        .ok_or_else(|| Error::Other("no directory to attach the staging at".into()))?
        .to_path_buf();
    let filesystem = if cfg.use_tmpfs {
        StagingFilesystem::Tmpfs {
            options: cfg
                .limits
                .memory
                .map(|m| FsOption::Value("size".into(), m.to_string()))
                .into_iter()
                .collect(),
        }
    } else {
        StagingFilesystem::Directory
    };
    let ro = attr::RDONLY;
    let fresh = |dest: &str, fstype: &str, set: u64| {
        let kind = MountKind::Fresh {
            fstype: fstype.into(),
            source: fstype.into(),
            options: Vec::new(),
            copy_up: false,
        };
        mount(Path::new(dest), kind, set, 0)
    };
    let mut setup = vec![
        mount(
            Path::new("/"),
            MountKind::Overlay {
                lower: PathBuf::from("/"),
                layer: PathBuf::new(),
            },
            0,
            0,
        ),
        fresh("/proc", "proc", attr::NOSUID | attr::NODEV | attr::NOEXEC),
        mount(
            Path::new("/dev"),
            MountKind::Bind {
                source: PathBuf::from("/dev"),
                recursive: true,
                idmap: None,
            },
            0,
            0,
        ),
        fresh(
            "/sys",
            "sysfs",
            ro | attr::NOSUID | attr::NODEV | attr::NOEXEC,
        ),
    ];
    for (path, mode) in &rules {
        let kind = match mode {
            DirMode::Overlay => MountKind::Overlay {
                lower: path.clone(),
                layer: path.strip_prefix("/").unwrap_or(path).to_path_buf(),
            },
            DirMode::Hidden => MountKind::Staging {
                path: Path::new("upper").join(path.strip_prefix("/").unwrap_or(path)),
            },
            DirMode::ReadOnly | DirMode::FullAccess => MountKind::Bind {
                source: path.clone(),
                recursive: true,
                idmap: None,
            },
        };
        let recursive = if *mode == DirMode::ReadOnly { ro } else { 0 };
        setup.push(mount(path, kind, 0, recursive));
    }
    Ok(Layout {
        staging: Staging {
            filesystem,
            mountpoint,
        },
        setup,
        finish: Vec::new(),
        notes: Vec::new(),
        result_patterns: Vec::new(),
        home: PathBuf::from("/tmp"),
    })
}
