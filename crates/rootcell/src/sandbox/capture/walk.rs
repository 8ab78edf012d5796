//! The walk of the upper tree that copies result files and lists deletions.

use super::*;

// ---------------------------------------------------------------------
// The walk.

/// The output directory that mirrors one walked directory.
pub(super) enum Out {
    /// Above the base: nothing is copied here.
    None,
    /// Not made yet (made when the first file needs it).
    Pending,
    Open(OwnedFd),
    /// Could not be made; noted once.
    Failed,
}

pub(super) struct Frame {
    pub(super) dir: Dir,
    /// Container path of the directory.
    pub(super) path: PathBuf,
    /// Pattern states here (unused when `selected`).
    pub(super) states: Vec<State>,
    /// A pattern matched this directory or one above: everything counts.
    pub(super) selected: bool,
    pub(super) out: Out,
}

/// Bounded notes.
pub(super) struct Notes {
    pub(super) lines: Vec<String>,
    pub(super) more: usize,
}

impl Notes {
    pub(super) fn push(&mut self, line: String) {
        if self.lines.len() < MAX_NOTES {
            self.lines.push(line);
        } else {
            self.more += 1;
        }
    }
}

pub(super) struct Walk<'a> {
    pub(super) matcher: Matcher,
    pub(super) base: &'a Path,
    pub(super) exclude: HashSet<&'a Path>,
    pub(super) output_dir: &'a Path,
    /// The output directory, opened when the first file is copied.
    pub(super) output_root: Option<OwnedFd>,
    /// `st_dev` of `upper/`: nothing on another filesystem is read.
    pub(super) dev: u64,
    pub(super) capture: Capture,
    pub(super) notes: Notes,
    pub(super) copier: copy::Copier,
    pub(super) opener: Opener,
}

/// How matched files are opened (`Walk::open_source`).
pub(super) enum Opener {
    /// The upper tree is on a `nodev` mount: files are opened directly.
    Direct,
    /// Anywhere else: `O_PATH`, checked, then reopened through procfs.
    Reopen(procfs::Reopener),
}

pub(super) fn walk_upper(
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
pub(super) fn device(st: &Stat) -> u64 {
    st.st_dev as u64
}

/// Bytes allocated to the inode.
#[allow(clippy::unnecessary_cast)]
pub(super) fn allocated(st: &Stat) -> u64 {
    (st.st_blocks as u64).saturating_mul(512)
}

/// What one directory entry is, from `getdents` or, when unknown, `fstatat`.
pub(super) fn entry_type(dir: BorrowedFd<'_>, name: &CStr, hint: FileType) -> Option<FileType> {
    if hint != FileType::Unknown {
        return Some(hint);
    }
    statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .ok()
        .map(|st| FileType::from_raw_mode(st.st_mode))
}

pub(super) fn kind_name(file_type: FileType) -> &'static str {
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
pub(super) struct OverlayAttrs {
    pub(super) opaque: bool,
    pub(super) redirect: Option<Vec<u8>>,
}

/// Reads the `trusted.overlay.*` / `user.overlay.*` xattrs that matter
/// (one `flistxattr`, then a `fgetxattr` only for those present).
pub(super) fn overlay_attrs(fd: BorrowedFd<'_>) -> OverlayAttrs {
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
    pub(super) fn out_for(&self, path: &Path, parent: Option<&Out>) -> Out {
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

    pub(super) fn run(&mut self, stack: &mut Vec<Frame>) -> Result<()> {
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
    pub(super) fn entry(
        &mut self,
        stack: &mut [Frame],
        name: &CStr,
        hint: FileType,
    ) -> Result<Option<Frame>> {
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
    pub(super) fn directory(
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
    pub(super) fn regular(&mut self, stack: &mut [Frame], name: &CStr, path: &Path) -> Result<()> {
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
    pub(super) fn open_source(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
    ) -> io::Result<Option<(OwnedFd, Stat)>> {
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
    pub(super) fn output_dir_for<'s>(
        &mut self,
        stack: &'s mut [Frame],
    ) -> Result<Option<BorrowedFd<'s>>> {
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
    pub(super) fn open_output_root(&mut self) -> std::result::Result<OwnedFd, String> {
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
pub(super) fn make_dir(parent: BorrowedFd<'_>, name: &OsString) -> io::Result<OwnedFd> {
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
pub(super) fn write_copy(
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
