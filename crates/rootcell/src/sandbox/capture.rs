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

// ---------------------------------------------------------------------
// Pattern matching: one small automaton over path components, stepped
// while the tree is walked, so each directory entry is matched once
// against the live states only (no quadratic work, unmatched subtrees
// are never read for copying).

/// One component of a pattern.
enum Part {
    Literal(Vec<u8>),
    /// A component with `*`, `?` or `[`; `dot`: the pattern starts with
    /// `.`, so it may match dot files.
    Wild {
        glob: GlobMatcher,
        dot: bool,
    },
    /// `**`: any number of directories (not dot directories).
    AnyDirs,
}

struct Matcher {
    patterns: Vec<Vec<Part>>,
}

/// (pattern, index of the next part to match).
type State = (usize, usize);

fn has_magic(part: &[u8]) -> bool {
    part.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'{'))
}

/// Compiles one absolute pattern into parts.
fn compile(pattern: &Path) -> std::result::Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    for component in pattern.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        let bytes = name.as_bytes();
        if bytes == b"**" {
            parts.push(Part::AnyDirs);
        } else if has_magic(bytes) {
            // Within one component `**` is just `*` (as in Python).
            let mut text = String::from_utf8_lossy(bytes).into_owned();
            while text.contains("**") {
                text = text.replace("**", "*");
            }
            let glob = GlobBuilder::new(&text)
                .literal_separator(true)
                .backslash_escape(false)
                .allow_unclosed_class(true)
                .empty_alternates(true)
                .build()
                .map_err(|e| e.kind().to_string())?
                .compile_matcher();
            parts.push(Part::Wild {
                glob,
                dot: bytes.first() == Some(&b'.'),
            });
        } else {
            parts.push(Part::Literal(bytes.to_vec()));
        }
    }
    Ok(parts)
}

impl Matcher {
    fn new(result_files: &ResultFiles) -> Result<Matcher> {
        let patterns = result_files
            .patterns
            .iter()
            .map(|p| compile(p).map_err(|e| Error::usage(PATTERNS_FLAG, format!("{p:?}: {e}"))))
            .collect::<Result<_>>()?;
        Ok(Matcher { patterns })
    }

    /// The states at `/`.
    fn start(&self) -> Vec<State> {
        let mut states = (0..self.patterns.len()).map(|p| (p, 0)).collect();
        self.close(&mut states);
        states
    }

    /// Adds the states `**` can skip to (zero directories), sorted, unique.
    fn close(&self, states: &mut Vec<State>) {
        let mut i = 0;
        while i < states.len() {
            let (p, n) = states[i];
            if matches!(self.patterns[p].get(n), Some(Part::AnyDirs)) {
                states.push((p, n + 1));
            }
            i += 1;
        }
        states.sort_unstable();
        states.dedup();
    }

    /// Whether some pattern is complete in `states`.
    fn complete(&self, states: &[State]) -> bool {
        states.iter().any(|&(p, n)| n == self.patterns[p].len())
    }

    /// The states after the entry `name`.
    fn step(&self, states: &[State], name: &[u8]) -> Vec<State> {
        let hidden = name.first() == Some(&b'.');
        let mut next = Vec::new();
        for &(p, n) in states {
            match self.patterns[p].get(n) {
                Some(Part::Literal(lit)) if lit == name => next.push((p, n + 1)),
                Some(Part::Wild { glob, dot })
                    if (*dot || !hidden) && glob.is_match(OsStr::from_bytes(name)) =>
                {
                    next.push((p, n + 1))
                }
                Some(Part::AnyDirs) if !hidden => next.push((p, n)),
                _ => {}
            }
        }
        self.close(&mut next);
        next
    }
}

// ---------------------------------------------------------------------
// The walk.

/// The output directory that mirrors one walked directory.
enum Out {
    /// Above the base: nothing is copied here.
    None,
    /// Not made yet (made when the first file needs it).
    Pending,
    Open(OwnedFd),
    /// Could not be made; noted once.
    Failed,
}

struct Frame {
    dir: Dir,
    /// Container path of the directory.
    path: PathBuf,
    /// Pattern states here (unused when `selected`).
    states: Vec<State>,
    /// A pattern matched this directory or one above: everything counts.
    selected: bool,
    out: Out,
}

/// Bounded notes.
struct Notes {
    lines: Vec<String>,
    more: usize,
}

impl Notes {
    fn push(&mut self, line: String) {
        if self.lines.len() < MAX_NOTES {
            self.lines.push(line);
        } else {
            self.more += 1;
        }
    }
}

struct Walk<'a> {
    matcher: Matcher,
    base: &'a Path,
    exclude: HashSet<&'a Path>,
    output_dir: &'a Path,
    /// The output directory, opened when the first file is copied.
    output_root: Option<OwnedFd>,
    /// `st_dev` of `upper/`: nothing on another filesystem is read.
    dev: u64,
    capture: Capture,
    notes: Notes,
    copier: copy::Copier,
    opener: Opener,
}

/// How matched files are opened (`Walk::open_source`).
enum Opener {
    /// The upper tree is on a `nodev` mount: files are opened directly.
    Direct,
    /// Anywhere else: `O_PATH`, checked, then reopened through procfs.
    Reopen(procfs::Reopener),
}

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

fn walk_upper(
    upper: BorrowedFd<'_>,
    result_files: &ResultFiles,
    output_dir: &Path,
    output_root: Option<OwnedFd>,
) -> Result<Capture> {
    let matcher = Matcher::new(result_files)?;
    let io_err = |what: &str, e: Errno| Error::Io {
        context: format!("result files: {what}"),
        cause: e.into(),
    };
    let root = openat(
        upper,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("open the upper tree", e))?;
    let dev = device(&fstat(&root).map_err(|e| io_err("stat the upper tree", e))?);
    let nodev = rustix::fs::fstatvfs(&root)
        .is_ok_and(|vfs| vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::NODEV));
    let opener = if nodev {
        Opener::Direct
    } else {
        Opener::Reopen(procfs::Reopener::new())
    };
    let states = matcher.start();
    let selected = matcher.complete(&states);
    let base: &Path = &result_files.base;
    let mut walk = Walk {
        matcher,
        base,
        exclude: result_files.exclude.iter().map(PathBuf::as_path).collect(),
        output_dir,
        output_root,
        dev,
        capture: Capture::default(),
        notes: Notes {
            lines: Vec::new(),
            more: 0,
        },
        copier: copy::Copier::new(),
        opener,
    };
    let root_path = PathBuf::from("/");
    let out = walk.out_for(&root_path, None);
    let mut stack = vec![Frame {
        dir: Dir::new(root).map_err(|e| io_err("read the upper tree", e))?,
        path: root_path,
        states,
        selected,
        out,
    }];
    walk.run(&mut stack)?;
    let mut capture = walk.capture;
    capture.files.sort();
    capture.deleted.sort();
    capture.deleted.dedup();
    capture.notes = walk.notes.lines;
    if walk.notes.more > 0 {
        capture.notes.push(format!(
            "... and {} more entries not copied",
            walk.notes.more
        ));
    }
    Ok(capture)
}

/// `st_dev` (its width differs between architectures).
#[allow(clippy::unnecessary_cast)]
fn device(st: &Stat) -> u64 {
    st.st_dev as u64
}

/// Bytes allocated to the inode.
#[allow(clippy::unnecessary_cast)]
fn allocated(st: &Stat) -> u64 {
    (st.st_blocks as u64).saturating_mul(512)
}

/// What one directory entry is, from `getdents` or, when unknown, `fstatat`.
fn entry_type(dir: BorrowedFd<'_>, name: &CStr, hint: FileType) -> Option<FileType> {
    if hint != FileType::Unknown {
        return Some(hint);
    }
    statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .ok()
        .map(|st| FileType::from_raw_mode(st.st_mode))
}

fn kind_name(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a fifo",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        FileType::RegularFile => "a regular file",
        FileType::Unknown => "of unknown type",
    }
}

/// The overlay xattrs of a directory or file that matter here.
#[derive(Default)]
struct OverlayAttrs {
    opaque: bool,
    redirect: Option<Vec<u8>>,
}

/// Reads the `trusted.overlay.*` / `user.overlay.*` xattrs that matter
/// (one `flistxattr`, then a `fgetxattr` only for those present).
fn overlay_attrs(fd: BorrowedFd<'_>) -> OverlayAttrs {
    let mut attrs = OverlayAttrs::default();
    let mut small = [0u8; 512];
    let list: Vec<u8> = match flistxattr(fd, &mut small[..]) {
        Ok(n) => small[..n].to_vec(),
        Err(Errno::RANGE) => {
            let mut big = vec![0u8; 64 * 1024];
            match flistxattr(fd, &mut big[..]) {
                Ok(n) => {
                    big.truncate(n);
                    big
                }
                Err(_) => return attrs,
            }
        }
        Err(_) => return attrs,
    };
    for name in list.split(|&b| b == 0) {
        let key = name
            .strip_prefix(b"trusted.overlay.")
            .or_else(|| name.strip_prefix(b"user.overlay."));
        let Some(key) = key else { continue };
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let mut value = [0u8; 4096];
        let value = match fgetxattr(fd, cname.as_c_str(), &mut value[..]) {
            Ok(n) => value[..n].to_vec(),
            Err(_) => continue,
        };
        match key {
            b"opaque" => attrs.opaque |= value == b"y",
            b"redirect" => attrs.redirect = Some(value),
            _ => {}
        }
    }
    attrs
}

impl Walk<'_> {
    /// The output state of a directory at `path` whose parent's is `parent`.
    fn out_for(&self, path: &Path, parent: Option<&Out>) -> Out {
        if path == self.base {
            Out::Pending
        } else if path.starts_with(self.base) {
            match parent {
                Some(Out::Failed) => Out::Failed,
                _ => Out::Pending,
            }
        } else {
            Out::None
        }
    }

    fn run(&mut self, stack: &mut Vec<Frame>) -> Result<()> {
        while let Some(top) = stack.last_mut() {
            let entry = match top.dir.read() {
                None => {
                    stack.pop();
                    continue;
                }
                Some(Err(e)) => {
                    let path = top.path.clone();
                    self.notes.push(format!(
                        "{}: cannot read the directory: {}",
                        path.display(),
                        io::Error::from(e)
                    ));
                    stack.pop();
                    continue;
                }
                Some(Ok(entry)) => entry,
            };
            let name = entry.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let name: CString = name.to_owned();
            let hint = entry.file_type();
            if let Some(child) = self.entry(stack, &name, hint)? {
                stack.push(child);
            }
        }
        Ok(())
    }

    /// Handles one entry of the top frame; a directory to walk is returned.
    fn entry(&mut self, stack: &mut [Frame], name: &CStr, hint: FileType) -> Result<Option<Frame>> {
        let depth = stack.len();
        let top = stack.last().expect("the walk has a frame");
        let bytes = name.to_bytes();
        let path = top.path.join(OsStr::from_bytes(bytes));

        // fuse-overlayfs/aufs whiteouts: never copied, whatever they are.
        if let Some(target) = bytes.strip_prefix(b".wh.") {
            if target == b".wh..opq" {
                self.capture.deleted.push(top.path.clone());
            } else if !target.is_empty() {
                self.capture
                    .deleted
                    .push(top.path.join(OsStr::from_bytes(target)));
            }
            return Ok(None);
        }

        let (states, matched) = if top.selected {
            (Vec::new(), true)
        } else {
            let states = self.matcher.step(&top.states, bytes);
            let matched = self.matcher.complete(&states);
            (states, matched)
        };
        let dirfd = top.dir.fd().map_err(|e| Error::Io {
            context: format!("result files: {}", top.path.display()),
            cause: e.into(),
        })?;
        let Some(file_type) = entry_type(dirfd, name, hint) else {
            return Ok(None); // gone meanwhile
        };
        match file_type {
            FileType::Directory => self.directory(stack, depth, name, path, states, matched),
            FileType::CharacterDevice => {
                // Overlay's whiteout: a 0:0 character device.
                match statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st)
                        if FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
                            && st.st_rdev == 0 =>
                    {
                        self.capture.deleted.push(path);
                    }
                    Ok(st) if matched => {
                        let kind = kind_name(FileType::from_raw_mode(st.st_mode));
                        self.notes
                            .push(format!("{}: {kind}, not copied", path.display()));
                    }
                    _ => {}
                }
                Ok(None)
            }
            FileType::RegularFile if matched && !self.exclude.contains(path.as_path()) => {
                self.regular(stack, name, &path)?;
                Ok(None)
            }
            other if matched && other != FileType::RegularFile => {
                self.notes.push(format!(
                    "{}: {}, not copied",
                    path.display(),
                    kind_name(other)
                ));
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// A directory entry: opened `O_DIRECTORY|O_NOFOLLOW` (a symlink swapped
    /// in fails here), checked, and walked when a pattern can still match
    /// below it or for deletions.
    fn directory(
        &mut self,
        stack: &mut [Frame],
        depth: usize,
        name: &CStr,
        path: PathBuf,
        states: Vec<State>,
        matched: bool,
    ) -> Result<Option<Frame>> {
        let top = stack.last().expect("the walk has a frame");
        let selected = top.selected || matched;
        if depth >= MAX_DEPTH {
            if !selected && states.is_empty() {
                return Ok(None); // only deletions could be below: not worth a note
            }
            self.notes.push(format!(
                "{}: deeper than {MAX_DEPTH} levels, not walked",
                path.display()
            ));
            return Ok(None);
        }
        let dirfd = top.dir.fd().map_err(|e| Error::Io {
            context: format!("result files: {}", top.path.display()),
            cause: e.into(),
        })?;
        let fd = match openat(
            dirfd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => {
                if selected || !states.is_empty() {
                    let why = match e {
                        Errno::LOOP | Errno::NOTDIR => "changed during capture".to_string(),
                        e => io::Error::from(e).to_string(),
                    };
                    self.notes
                        .push(format!("{}: {why}, not copied", path.display()));
                }
                return Ok(None);
            }
        };
        match fstat(&fd) {
            Ok(st) if device(&st) == self.dev => {}
            _ => {
                self.notes.push(format!(
                    "{}: on another filesystem, not copied",
                    path.display()
                ));
                return Ok(None);
            }
        }
        let attrs = overlay_attrs(fd.as_fd());
        if attrs.opaque {
            // Deleted and made anew: listed, its new content is captured.
            self.capture.deleted.push(path.clone());
        }
        if let Some(from) = &attrs.redirect {
            if selected || !states.is_empty() {
                self.notes.push(format!(
                    "{}: a directory renamed from {} (overlay redirect); only what changed in it is copied",
                    path.display(),
                    String::from_utf8_lossy(from)
                ));
            }
        }
        let out = self.out_for(&path, Some(&top.out));
        let dir = match Dir::new(fd) {
            Ok(dir) => dir,
            Err(_) => return Ok(None),
        };
        Ok(Some(Frame {
            dir,
            path,
            states,
            selected,
            out,
        }))
    }

    /// A matched regular file (by `getdents`, else `fstatat`): opened for
    /// reading (`open_source`), checked with `fstat` on the opened fd,
    /// copied.
    fn regular(&mut self, stack: &mut [Frame], name: &CStr, path: &Path) -> Result<()> {
        let top = stack.last().expect("the walk has a frame");
        let Ok(dirfd) = top.dir.fd() else {
            return Ok(());
        };
        let (file, st) = match self.open_source(dirfd, name) {
            Ok(Some(opened)) => opened,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.notes
                    .push(format!("{}: cannot read: {e}, not copied", path.display()));
                return Ok(());
            }
        };
        let file_type = FileType::from_raw_mode(st.st_mode);
        if file_type != FileType::RegularFile {
            // Swapped since getdents: whatever it is now, it is not copied.
            if !(file_type == FileType::CharacterDevice && st.st_rdev == 0) {
                self.notes.push(format!(
                    "{}: {}, not copied",
                    path.display(),
                    kind_name(file_type)
                ));
            }
            return Ok(());
        }
        if device(&st) != self.dev {
            self.notes.push(format!(
                "{}: on another filesystem, not copied",
                path.display()
            ));
            return Ok(());
        }
        // No `metacopy` check (an upper file holding only metadata): the
        // sandbox's overlays are mounted `metacopy=off`, so every file in
        // an upper layer has its data (one `flistxattr` less per file).
        let Ok(relative) = path.strip_prefix(self.base) else {
            self.notes.push(format!(
                "{}: outside {}, not copied",
                path.display(),
                self.base.display()
            ));
            return Ok(());
        };
        let relative = relative.to_path_buf();
        let Some(out_dir) = self.output_dir_for(stack)? else {
            return Ok(());
        };
        match write_copy(&mut self.copier, file.as_fd(), &st, out_dir.as_fd(), name) {
            Ok(()) => self.capture.files.push(relative),
            Err(why) => self
                .notes
                .push(format!("{}: {why}, not copied", path.display())),
        }
        Ok(())
    }

    /// Opens `name` in `dir` for reading, never a device or fifo swapped in
    /// and never through a symlink, with its `fstat`. `Ok(None)`: gone.
    fn open_source(&self, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<(OwnedFd, Stat)>> {
        let opened = match &self.opener {
            // On a `nodev` mount (the staging tmpfs) opening a device node
            // fails, and `O_NONBLOCK|O_NOCTTY` open even a fifo or terminal
            // without waiting or side effects: opened directly.
            Opener::Direct => openat(
                dir,
                name,
                OFlags::RDONLY
                    | OFlags::NOFOLLOW
                    | OFlags::NONBLOCK
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC,
                Mode::empty(),
            ),
            // Elsewhere (`--no-tmpfs`): `O_PATH` first, checked, then the
            // same inode reopened through a private procfs, so nothing but
            // a regular file is ever opened.
            Opener::Reopen(reopener) => {
                let source = match openat(
                    dir,
                    name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                let st = fstat(&source)?;
                if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                    return Ok(Some((source, st)));
                }
                return Ok(Some((reopener.reopen(&source, OFlags::RDONLY)?, st)));
            }
        };
        match opened {
            Ok(fd) => {
                let st = fstat(&fd)?;
                Ok(Some((fd, st)))
            }
            Err(Errno::NOENT) => Ok(None),
            // A symlink swapped in (`O_NOFOLLOW`), or a device on the
            // `nodev` mount: what it is now decides the note.
            Err(Errno::LOOP) | Err(Errno::ACCESS) | Err(Errno::NXIO) | Err(Errno::NODEV) => {
                match openat(
                    dir,
                    name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => {
                        let st = fstat(&fd)?;
                        if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
                            // A regular file it may not read: say why.
                            return Err(io::Error::from_raw_os_error(libc::EACCES));
                        }
                        Ok(Some((fd, st)))
                    }
                    Err(Errno::NOENT) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The output directory for the top frame, made (with its parents) when
    /// missing. `None` when it cannot be made (noted once per directory);
    /// an output directory itself that cannot be made is an error.
    fn output_dir_for<'s>(&mut self, stack: &'s mut [Frame]) -> Result<Option<BorrowedFd<'s>>> {
        // The deepest frame whose output directory is open, or the base.
        let top = stack.len() - 1;
        let mut first = top;
        loop {
            match &stack[first].out {
                Out::Open(_) => break,
                Out::Failed | Out::None => return Ok(None),
                Out::Pending if stack[first].path == self.base => break,
                Out::Pending => {
                    if first == 0 {
                        return Ok(None);
                    }
                    first -= 1;
                }
            }
        }
        for i in first..=top {
            if matches!(stack[i].out, Out::Open(_)) {
                continue;
            }
            let made = if stack[i].path == self.base {
                Ok(self
                    .open_output_root()
                    .map_err(|why| Error::usage(OUTPUT_FLAG, why))?)
            } else {
                let Out::Open(parent) = &stack[i - 1].out else {
                    return Ok(None);
                };
                let name = stack[i].path.file_name().unwrap_or_default().to_os_string();
                make_dir(parent.as_fd(), &name).map_err(|e| {
                    format!(
                        "{}: {}",
                        self.output_dir
                            .join(
                                stack[i]
                                    .path
                                    .strip_prefix(self.base)
                                    .unwrap_or(Path::new(""))
                            )
                            .display(),
                        e
                    )
                })
            };
            match made {
                Ok(fd) => stack[i].out = Out::Open(fd),
                Err(why) => {
                    self.notes
                        .push(format!("{why}: files below it are not copied"));
                    for frame in stack[i..].iter_mut() {
                        frame.out = Out::Failed;
                    }
                    return Ok(None);
                }
            }
        }
        match &stack[top].out {
            Out::Open(fd) => Ok(Some(fd.as_fd())),
            _ => Ok(None),
        }
    }

    /// Makes (if missing) and opens the output directory itself.
    fn open_output_root(&mut self) -> std::result::Result<OwnedFd, String> {
        if let Some(fd) = &self.output_root {
            return fd.try_clone().map_err(|e| e.to_string());
        }
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", self.output_dir.display());
        std::fs::create_dir_all(self.output_dir).map_err(|e| fail(&e))?;
        let fd = openat(
            CWD,
            self.output_dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail(&io::Error::from(e)))?;
        self.output_root = Some(fd.try_clone().map_err(|e| fail(&e))?);
        Ok(fd)
    }
}

/// `mkdirat` + open `O_DIRECTORY|O_NOFOLLOW`: an existing directory is
/// reused, a symlink or file in its place is refused.
fn make_dir(parent: BorrowedFd<'_>, name: &OsString) -> io::Result<OwnedFd> {
    let name = name.as_os_str();
    match mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::LOOP | Errno::NOTDIR => io::Error::other("exists and is not a directory"),
        e => e.into(),
    })
}

/// Creates `name` in `out` (`O_CREAT|O_EXCL|O_NOFOLLOW`; a file or symlink
/// already there is replaced, a directory is not), copies the data, sets the
/// permission bits and times of `st`. A failed copy leaves no file behind.
fn write_copy(
    copier: &mut copy::Copier,
    from: BorrowedFd<'_>,
    st: &Stat,
    out: BorrowedFd<'_>,
    name: &CStr,
) -> std::result::Result<(), String> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(0o600);
    let target = match openat(out, name, flags, mode) {
        Ok(fd) => fd,
        Err(Errno::EXIST) => {
            match statat(out, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(existing)
                    if FileType::from_raw_mode(existing.st_mode) == FileType::Directory =>
                {
                    return Err("a directory is in its place in the output directory".into())
                }
                _ => {}
            }
            unlinkat(out, name, AtFlags::empty()).map_err(|e| io::Error::from(e).to_string())?;
            openat(out, name, flags, mode).map_err(|e| io::Error::from(e).to_string())?
        }
        Err(e) => return Err(io::Error::from(e).to_string()),
    };
    let size = u64::try_from(st.st_size).unwrap_or(0);
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    };
    let sparse = allocated(st) < size;
    let result = copier
        .copy(from, target.as_fd(), size, sparse)
        .and_then(|()| {
            rustix::fs::fchmod(&target, Mode::from_raw_mode(st.st_mode & 0o777))
                .map_err(io::Error::from)
        })
        .and_then(|()| rustix::fs::futimens(&target, &times).map_err(io::Error::from));
    if let Err(e) = result {
        drop(target);
        let _ = unlinkat(out, name, AtFlags::empty());
        return Err(e.to_string());
    }
    Ok(())
}

// ---------------------------------------------------------------------
// The usage probe.

/// (inodes, bytes, regular files, their bytes) counted in a tree.
#[derive(Default, Clone, Copy)]
struct Count {
    inodes: u64,
    allocated: u64,
    files: u64,
    file_bytes: u64,
}

/// Entries a usage walk looks at before it stops (then it reports what it
/// has counted so far).
const USAGE_BUDGET: u64 = 4_000_000;

/// Counts what is below `dir` (fd-relative, no symlink followed, nothing
/// on another filesystem than `dev`: while the sandbox runs, its root is
/// mounted on the staging's `root/`; depth and entries bounded); `skip`:
/// names at this level counted but not walked.
fn count_tree(
    dir: OwnedFd,
    dev: u64,
    depth: usize,
    skip: &[&[u8]],
    budget: &mut u64,
    count: &mut Count,
) {
    let Ok(mut entries) = Dir::new(dir) else {
        return;
    };
    while let Some(Ok(entry)) = entries.read() {
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(fd) = entries.fd() else { return };
        let Ok(st) = statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        count.inodes += 1;
        if device(&st) != dev {
            // A mount point (the sandbox's root on `root/`): the entry is
            // one inode here, what is mounted on it is not counted.
            continue;
        }
        count.allocated += allocated(&st);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {
                count.files += 1;
                count.file_bytes += u64::try_from(st.st_size).unwrap_or(0);
            }
            FileType::Directory if depth < MAX_DEPTH && !skip.contains(&bytes) => {
                if let Ok(child) = openat(
                    fd,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    count_tree(child, dev, depth + 1, &[], budget, count);
                }
            }
            _ => {}
        }
    }
}

/// (files, bytes) the command has written so far into the staging's
/// `upper/` (overlay upper layers and hidden directories), for
/// `--filesCountLimit` and `--filesSizeLimit`. `staging`: an fd of the
/// staging filesystem's root (`O_PATH` is enough).
///
/// On a tmpfs staging this is one `statfs` (inodes in use, blocks in use)
/// minus what the staging holds outside `upper/` (`work/`, `files/`,
/// `root/`: a small walk): every inode counts (files, directories, symlinks,
/// whiteouts) and bytes are the memory used. On a directory staging
/// (`--no-tmpfs`) it is BenchExec's count: a bounded walk of `upper/`
/// counting regular files and their sizes.
pub fn usage(staging: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let fs = fstatfs(staging)?;
    let dev = device(&fstat(staging)?);
    let open_dir = |at: BorrowedFd<'_>, name: &CStr| {
        openat(
            at,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let mut budget = USAGE_BUDGET;
    if fs.f_type as u64 == TMPFS_MAGIC {
        // `root/` is where the sandbox's root is assembled: one empty
        // directory here, mounts on top of it are not the staging's.
        let mut own = Count::default();
        let skip: &[&[u8]] = &[b"upper", b"root"];
        count_tree(
            open_dir(staging, c".")?,
            dev,
            1,
            skip,
            &mut budget,
            &mut own,
        );
        let used_inodes = (fs.f_files as u64).saturating_sub(fs.f_ffree as u64);
        let used_bytes = (fs.f_blocks as u64)
            .saturating_sub(fs.f_bfree as u64)
            .saturating_mul(fs.f_bsize as u64);
        // The staging's root inode is not the command's either.
        let files = used_inodes.saturating_sub(own.inodes + 1);
        Ok((files, used_bytes.saturating_sub(own.allocated)))
    } else {
        let upper = match open_dir(staging, c"upper") {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok((0, 0)),
            Err(e) => return Err(e.into()),
        };
        let mut count = Count::default();
        count_tree(upper, dev, 1, &[], &mut budget, &mut count);
        Ok((count.files, count.file_bytes))
    }
}

/// `usage` relative to what the staging held when the probe was made:
/// made after the sandbox's setup and before the command starts, it counts
/// exactly what the command wrote (the layout's own directories in
/// `upper/` included out).
pub struct UsageProbe<'a> {
    staging: BorrowedFd<'a>,
    baseline: (u64, u64),
}

impl<'a> UsageProbe<'a> {
    pub fn new(staging: BorrowedFd<'a>) -> io::Result<UsageProbe<'a>> {
        Ok(UsageProbe {
            staging,
            baseline: usage(staging)?,
        })
    }

    /// (files, bytes) written since the probe was made.
    pub fn usage(&self) -> io::Result<(u64, u64)> {
        let (files, bytes) = usage(self.staging)?;
        Ok((
            files.saturating_sub(self.baseline.0),
            bytes.saturating_sub(self.baseline.1),
        ))
    }
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
