//! Result files: after the command ends, the regular files it wrote to
//! overlay and hidden directories that match a `--result-files` pattern are
//! copied from the staging's `upper/` tree to `--output-directory`; host
//! files it deleted are listed. Also the probe of how much the command has
//! written so far (`--filesCountLimit`, `--filesSizeLimit`).
//!
//! The `upper/` tree holds, at `upper/<container path>`, the overlay upper
//! layers and the content of hidden directories. The command may have
//! planted anything there and may, in theory, still be changing it, so it
//! is walked fd-relative only: every directory is opened with
//! `O_DIRECTORY|O_NOFOLLOW` relative to its parent's fd, every file that
//! `getdents` calls regular is opened `O_NOFOLLOW` and checked with `fstat`
//! on that fd, and nothing crosses to another filesystem. A device or fifo
//! swapped in is never opened: on the `nodev` staging tmpfs files are
//! opened directly with `O_NONBLOCK|O_NOCTTY` (a device node refuses to
//! open there); anywhere else first as `O_PATH`, checked, then reopened
//! through a private procfs. No path string into
//! the tree ever reaches a syscall, so a symlink or a swapped directory can
//! never lead outside it. The output side is made the same way: `mkdirat`,
//! `O_CREAT|O_EXCL|O_NOFOLLOW`, relative to the output directory's fd.
//!
//! Overlay artefacts never reach the output: character-device 0:0 and
//! `.wh.<name>` whiteouts (listed as deleted), opaque directories (listed as
//! deleted, their new content copied), `.wh..wh..opq` markers, and no xattr
//! at all is copied.
//!
//! Patterns follow BenchExec's `--result-files` (Python's recursive
//! `glob`): `*`, `?`, `[...]` within one path component, `**` as a whole
//! component for any number of directories; wildcards do not match names
//! starting with `.` unless the pattern component starts with `.`; a
//! matched directory selects everything below it (dot files included).

use std::collections::HashSet;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use rustix::fs::{
    fgetxattr, flistxattr, fstat, fstatfs, mkdirat, openat, statat, unlinkat, AtFlags, Dir,
    FileType, Mode, OFlags, Stat, Timespec, Timestamps, CWD,
};
use rustix::io::Errno;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::fs::{copy, procfs};

/// The flag errors about patterns name.
const PATTERNS_FLAG: &str = "--result-files";
/// The flag errors about the output directory name.
const OUTPUT_FLAG: &str = "--output-directory";
/// Notes about single entries, then one summary line.
const MAX_NOTES: usize = 20;
/// How deep the walk goes (each level holds up to two fds: the directory
/// in `upper/` and its copy in the output directory).
pub const MAX_DEPTH: usize = 200;
/// `TMPFS_MAGIC` of statfs(2).
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// What `capture` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Capture {
    /// Files copied, relative to the output directory, sorted.
    pub files: Vec<PathBuf>,
    /// Container paths the command deleted (whiteouts), and directories it
    /// deleted and made anew (opaque directories: their new files are
    /// among `files`), sorted.
    pub deleted: Vec<PathBuf>,
    /// One line each: entries matched but not copied (symlinks, devices,
    /// fifos, sockets, errors), at most `MAX_NOTES` and a summary.
    pub notes: Vec<String>,
}

/// The `--result-files` patterns made absolute, and where the tree in the
/// output directory starts (BenchExec's rule: at `--dir` when every
/// pattern is relative, else at `/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResultFiles {
    /// Absolute container-path patterns, normalised (no `.`, `..`, `//`).
    /// Empty: nothing is copied (`--result-files ''`).
    pub patterns: Vec<PathBuf>,
    /// The container directory that becomes the output directory.
    pub base: PathBuf,
    /// Container paths never copied even when matched: the files the
    /// sandbox generates itself (BenchExec's
    /// `is_container_system_config_file`: `/etc/passwd`, `/etc/group`,
    /// `/etc/hosts`, `/etc/nsswitch.conf`, `/etc/hostname`); the planner
    /// adds the mount points it has to create inside an overlay.
    pub exclude: Vec<PathBuf>,
}

/// The files BenchExec generates in its containers and never returns as
/// result files.
pub const GENERATED_FILES: [&str; 5] = [
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/hostname",
];

impl ResultFiles {
    /// Checks and normalises `--result-files` patterns as BenchExec does:
    /// empty ones are dropped, relative ones are taken against
    /// `working_dir` (`--dir`, absolute), `..` that would leave the
    /// working directory (or `/`) is refused; globs are checked here, so
    /// a bad one is refused before anything runs.
    pub fn new(patterns: &[String], working_dir: &Path) -> Result<ResultFiles> {
        if !working_dir.is_absolute() {
            return Err(Error::usage(
                "--dir",
                format!("{}: must be an absolute path", working_dir.display()),
            ));
        }
        let working_dir = normalize(Path::new("/"), working_dir)
            .ok_or_else(|| Error::usage("--dir", "leaves /"))?;
        let mut out = Vec::new();
        let mut any_absolute = false;
        for pattern in patterns.iter().filter(|p| !p.is_empty()) {
            let path = Path::new(pattern);
            let absolute = if path.is_absolute() {
                any_absolute = true;
                normalize(Path::new("/"), path)
            } else {
                normalize(Path::new(""), path).map(|rel| working_dir.join(rel))
            };
            let Some(absolute) = absolute else {
                return Err(Error::usage(
                    PATTERNS_FLAG,
                    format!(
                        "{pattern:?}: `..` leaves {}",
                        if path.is_absolute() {
                            "/".to_string()
                        } else {
                            format!("the working directory {}", working_dir.display())
                        }
                    ),
                ));
            };
            compile(&absolute)
                .map_err(|e| Error::usage(PATTERNS_FLAG, format!("{pattern:?}: {e}")))?;
            out.push(absolute);
        }
        let base = if any_absolute {
            PathBuf::from("/")
        } else {
            working_dir
        };
        Ok(ResultFiles {
            patterns: out,
            base,
            exclude: GENERATED_FILES.iter().map(PathBuf::from).collect(),
        })
    }
}

/// `--result-files` patterns as absolute container paths (see
/// `ResultFiles::new`, which also gives the output tree's base).
pub fn absolute_patterns(patterns: &[String], working_dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(ResultFiles::new(patterns, working_dir)?.patterns)
}

/// `path` joined to `start` with `.` and `..` resolved lexically; `None`
/// when `..` would go above `start`.
fn normalize(start: &Path, path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(name) => parts.push(name),
        }
    }
    let mut out = start.to_path_buf();
    out.extend(parts);
    Some(out)
}

/// Checks, before the command runs, that the output directory can be made
/// or written: an existing path must be a writable directory, else the
/// nearest existing ancestor must be. Creates nothing.
pub fn check_output_dir(path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(Error::usage(OUTPUT_FLAG, "must not be empty"));
    }
    let mut probe = path;
    loop {
        match std::fs::metadata(probe) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(Error::usage(
                    OUTPUT_FLAG,
                    format!("{}: not a directory", probe.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                probe = match probe.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent,
                    _ => Path::new("."),
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(Error::usage(
                    OUTPUT_FLAG,
                    format!("{}: a parent is not a directory", probe.display()),
                ))
            }
            Err(e) => {
                return Err(Error::usage(
                    OUTPUT_FLAG,
                    format!("{}: {e}", probe.display()),
                ))
            }
        }
    }
    let access = rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK;
    rustix::fs::accessat(CWD, probe, access, AtFlags::EACCESS).map_err(|e| {
        Error::usage(
            OUTPUT_FLAG,
            format!(
                "{}: cannot write there: {}",
                probe.display(),
                io::Error::from(e)
            ),
        )
    })
}

mod patterns;
mod probe;
mod walk;

use patterns::*;
pub use probe::{usage, UsageProbe};
use walk::*;

/// The output directory, made and opened before the command runs
/// (`OutputDir::open`): capture then writes through this fd, so a command
/// that can write where the output directory lies (a full-access directory,
/// the default `./output.files` in a full-access working directory) cannot
/// redirect it elsewhere with a symlink planted meanwhile.
#[derive(Debug)]
pub struct OutputDir {
    fd: OwnedFd,
    path: PathBuf,
    /// The directories this made, the output directory first.
    created: Vec<PathBuf>,
}

impl OutputDir {
    /// `check_output_dir`, then makes the missing directories and opens the
    /// output directory. Errors are `Error::Usage` naming
    /// `--output-directory`.
    pub fn open(path: &Path) -> Result<OutputDir> {
        check_output_dir(path)?;
        let mut created = Vec::new();
        let mut missing = Some(path);
        while let Some(p) = missing.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
            created.push(p.to_path_buf());
            missing = p.parent();
        }
        let fail = |e: io::Error| Error::usage(OUTPUT_FLAG, format!("{}: {e}", path.display()));
        std::fs::create_dir_all(path).map_err(fail)?;
        let fd = openat(
            CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail(e.into()))?;
        Ok(OutputDir {
            fd,
            path: path.to_path_buf(),
            created,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes what `open` made when nothing was copied into it (BenchExec
    /// makes the output directory only for the first result file). Only
    /// empty directories are removed (`rmdir`, which follows no symlink in
    /// its last component).
    pub fn remove_if_empty(self) {
        drop(self.fd);
        for dir in &self.created {
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// Copies the regular files below `upper` (an fd of the staging's
/// `upper/`, `O_PATH` is enough) that match `result_files` to
/// `output_dir`, made if missing (only once a file is copied, as BenchExec
/// does), and lists deletions. A file already in the output directory is
/// replaced; a directory or symlink there is left alone (noted). Errors
/// about single files become notes; an output directory that cannot be
/// made is `Error::Usage` naming `--output-directory`. The sandbox uses
/// `capture_into` with an `OutputDir` opened before the command ran.
pub fn capture(
    upper: BorrowedFd<'_>,
    result_files: &ResultFiles,
    output_dir: &Path,
) -> Result<Capture> {
    walk_upper(upper, result_files, output_dir, None)
}

/// `capture` into an output directory opened before the command ran.
pub fn capture_into(
    upper: BorrowedFd<'_>,
    result_files: &ResultFiles,
    output_dir: &OutputDir,
) -> Result<Capture> {
    let fd = output_dir.fd.try_clone().map_err(|e| Error::Io {
        context: format!("{}", output_dir.path.display()),
        cause: e,
    })?;
    walk_upper(upper, result_files, &output_dir.path, Some(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rf(patterns: &[&str], wd: &str) -> Result<ResultFiles> {
        let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        ResultFiles::new(&patterns, Path::new(wd))
    }

    /// Whether `path` (absolute, `/`-separated, directories end in `/`)
    /// matches, walking the automaton like `capture` does.
    fn selects(result_files: &ResultFiles, path: &str) -> bool {
        let m = Matcher::new(result_files).unwrap();
        let mut states = m.start();
        if m.complete(&states) {
            return true;
        }
        for part in path
            .trim_start_matches('/')
            .split('/')
            .filter(|p| !p.is_empty())
        {
            states = m.step(&states, part.as_bytes());
            if m.complete(&states) {
                return true;
            }
            if states.is_empty() {
                return false;
            }
        }
        false
    }

    #[test]
    fn relative_patterns_start_at_the_working_dir() {
        let r = rf(&["."], "/home/u/wd").unwrap();
        assert_eq!(r.patterns, vec![PathBuf::from("/home/u/wd")]);
        assert_eq!(r.base, PathBuf::from("/home/u/wd"));
        assert!(r.exclude.contains(&PathBuf::from("/etc/passwd")));
        let r = rf(&["out/*.txt", "a/../b"], "/wd/").unwrap();
        assert_eq!(
            r.patterns,
            vec![PathBuf::from("/wd/out/*.txt"), PathBuf::from("/wd/b")]
        );
        assert_eq!(r.base, PathBuf::from("/wd"));
    }

    #[test]
    fn one_absolute_pattern_makes_the_base_root() {
        let r = rf(&["x", "/tmp/**/*.log"], "/wd").unwrap();
        assert_eq!(
            r.patterns,
            vec![PathBuf::from("/wd/x"), PathBuf::from("/tmp/**/*.log")]
        );
        assert_eq!(r.base, PathBuf::from("/"));
        assert_eq!(
            absolute_patterns(&["/".into()], Path::new("/wd")).unwrap(),
            vec![PathBuf::from("/")]
        );
    }

    #[test]
    fn empty_patterns_select_nothing() {
        let r = rf(&[""], "/wd").unwrap();
        assert!(r.patterns.is_empty());
        assert!(!selects(&r, "/wd/file"));
    }

    #[test]
    fn dotdot_leaving_the_tree_is_refused() {
        for (pattern, wd) in [
            ("..", "/wd"),
            ("../x", "/wd"),
            ("a/../../x", "/wd"),
            ("/../etc", "/wd"),
        ] {
            match rf(&[pattern], wd) {
                Err(Error::Usage { flag, reason }) => {
                    assert_eq!(flag, "--result-files");
                    assert!(reason.contains(".."), "{reason}");
                }
                other => panic!("{pattern}: {other:?}"),
            }
        }
        // Inside the tree `..` is fine.
        assert_eq!(
            rf(&["a/b/../c"], "/wd").unwrap().patterns,
            vec![PathBuf::from("/wd/a/c")]
        );
        assert!(matches!(rf(&["x"], "wd"), Err(Error::Usage { flag, .. }) if flag == "--dir"));
    }

    #[test]
    fn bad_globs_are_refused_up_front() {
        let err = rf(&["a/{b"], "/wd").unwrap_err();
        assert!(
            matches!(err, Error::Usage { ref flag, .. } if flag == "--result-files"),
            "{err}"
        );
        // An unclosed class is literal, as in Python.
        rf(&["a["], "/wd").unwrap();
    }

    #[test]
    fn matching_follows_python_glob() {
        let r = rf(&["**/*.c"], "/wd").unwrap();
        assert!(selects(&r, "/wd/a.c"));
        assert!(selects(&r, "/wd/x/y/z.c"));
        assert!(!selects(&r, "/wd/a.h"));
        assert!(!selects(&r, "/wd/.a.c"), "wildcards skip dot files");
        assert!(!selects(&r, "/wd/.git/a.c"), "** skips dot directories");
        assert!(!selects(&r, "/other/a.c"));

        let r = rf(&["out"], "/wd").unwrap();
        assert!(
            selects(&r, "/wd/out/.hidden/deep/file"),
            "a matched directory selects all below"
        );
        assert!(!selects(&r, "/wd/outside"));

        let r = rf(&["*"], "/wd").unwrap();
        assert!(selects(&r, "/wd/f"));
        assert!(
            selects(&r, "/wd/d/.x"),
            "a matched directory selects all below"
        );
        assert!(!selects(&r, "/wd/.f"));

        let r = rf(&[".*"], "/wd").unwrap();
        assert!(selects(&r, "/wd/.f"));

        let r = rf(&["/"], "/wd").unwrap();
        assert!(selects(&r, "/etc/x"));

        let r = rf(&["a/**"], "/wd").unwrap();
        assert!(
            selects(&r, "/wd/a/.x"),
            "`a/**` matches `a` itself, as glob yields `a/`"
        );

        let r = rf(&["x?[0-9]", "**/log.{txt,out}", "p**q"], "/").unwrap();
        assert!(selects(&r, "/xa7"));
        assert!(!selects(&r, "/xa"));
        assert!(selects(&r, "/deep/log.out"));
        assert!(selects(&r, "/pzzq"));
        assert!(!selects(&r, "/p/q"));
    }
}
