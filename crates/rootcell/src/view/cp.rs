//! `rootcell cp`: docker cp between a container and the host (or a tar
//! stream on stdin/stdout).
//!
//! The docker rules are pure decisions here (`split_arg`, `place`), unit
//! tested; the execution streams a tar archive (`archive::pack` →
//! `archive::unpack`) through a pipe between the caller's thread (the host
//! side, a `RootDir` on the host's `/`) and the view's thread (the
//! container side, every path resolved inside the container's root), never
//! buffering a tree. Nothing of the container is followed out of it: the
//! container side resolves only inside the view's root, and the host side
//! only follows what the caller named on the host.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::FileType;

use super::archive::{self, DeviceNodes, IdMap, Ownership, PackOptions, UnpackOptions};
use super::ContainerIds;
use super::{describe, plan, View, ViewRoot};
use crate::container::Runtime;
use crate::error::{Error, Result};
use crate::fs::root::file_type;
use crate::fs::RootDir;

/// One side of a copy, as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// A path on the host.
    Host(PathBuf),
    /// `-`: a tar stream on stdin or stdout.
    Stream,
    /// `CONTAINER:PATH`.
    Container { id: String, path: PathBuf },
}

/// docker's `splitCpArg`: an absolute path is local; `X:Y` is a container
/// path unless `X` starts with `.` (`./file:name`); `-` is a stream.
pub fn split_arg(arg: &str) -> Side {
    if arg == "-" {
        return Side::Stream;
    }
    if arg.starts_with('/') {
        return Side::Host(PathBuf::from(arg));
    }
    match arg.split_once(':') {
        Some((id, path)) if !id.starts_with('.') && !id.is_empty() => Side::Container {
            id: id.to_string(),
            path: PathBuf::from(path),
        },
        _ => Side::Host(PathBuf::from(arg)),
    }
}

/// What `rootcell cp SRC DST` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Copy {
    /// Out of container `id`: `src` in it, to a host path or stdout.
    From { id: String, src: PathBuf, dst: Side },
    /// Into container `id`: a host path or stdin, to `dst` in it.
    To { id: String, src: Side, dst: PathBuf },
}

/// The copy the two arguments describe (docker's `runCopy`).
pub fn parse(src: &str, dst: &str) -> Result<Copy> {
    match (split_arg(src), split_arg(dst)) {
        (Side::Container { .. }, Side::Container { .. }) => Err(Error::Other(
            "copying between containers is not supported".into(),
        )),
        (Side::Container { id, path }, dst) => Ok(Copy::From { id, src: path, dst }),
        (src, Side::Container { id, path }) => Ok(Copy::To { id, src, dst: path }),
        _ => Err(Error::Other(
            "must specify at least one container source".into(),
        )),
    }
}

/// `-a`, `-L`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpOptions {
    /// `-a`: keep the source's owners (see `Ownership`).
    pub archive: bool,
    /// `-L`: follow a symlink at the source path (only there).
    pub follow_link: bool,
}

/// The destination as found (docker's `CopyInfo`): its path after
/// following a symlink at its end, whether it exists and is a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    pub exists: bool,
    pub is_dir: bool,
}

/// Where the stream is extracted (docker's `PrepareArchiveCopy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The directory the stream is extracted into.
    pub dir: PathBuf,
    /// The name the source gets in the stream (None: its own, or a
    /// directory's contents for `dir/.`).
    pub rename: Option<OsString>,
}

/// Why a copy cannot be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A directory onto an existing non-directory.
    DirOntoFile,
    /// A file onto a missing path ending with `/`.
    DirNotExists,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::DirOntoFile => "cannot copy a directory to a file",
            Refusal::DirNotExists => "the destination directory must exist",
        })
    }
}

/// `path` ends with `/` or `/.` (docker's `assertsDirectory`).
pub fn asserts_directory(path: &Path) -> bool {
    let b = path.as_os_str().as_bytes();
    b.ends_with(b"/") || b.ends_with(b"/.") || b == b"."
}

/// docker's `SplitPathDirEntry`: the cleaned parent and last name (`.` for
/// a path naming the current directory: `a/.`).
pub fn split_dir_entry(path: &Path) -> (PathBuf, OsString) {
    let abs = path.is_absolute();
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                if parts.last().is_some_and(|p| p.as_bytes() != b"..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..".as_ref());
                }
            }
            _ => {}
        }
    }
    let b = path.as_os_str().as_bytes();
    if b.ends_with(b"/.") || b == b"." {
        parts.push(".".as_ref());
    }
    let base = match parts.pop() {
        Some(n) => n.to_os_string(),
        None if abs => OsString::from("/"),
        None => OsString::from("."),
    };
    let mut dir: PathBuf = if abs {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    };
    dir.extend(parts);
    if dir.as_os_str().is_empty() {
        dir = PathBuf::from(".");
    }
    (dir, base)
}

/// docker's `PrepareArchiveCopy`: where a source (a directory or not) goes
/// for a destination.
pub fn place(src_is_dir: bool, dst: &Target) -> std::result::Result<Placement, Refusal> {
    let (dir, base) = split_dir_entry(&dst.path);
    let rebased = Placement {
        dir,
        rename: Some(base),
    };
    match (dst.exists, dst.is_dir, src_is_dir) {
        // Into the directory, under the source's own name (or its
        // contents for `src/.`).
        (true, true, _) => Ok(Placement {
            dir: dst.path.clone(),
            rename: None,
        }),
        (true, false, true) => Err(Refusal::DirOntoFile),
        // A file replaces a file, under the destination's name.
        (true, false, false) => Ok(rebased),
        // A missing destination becomes the directory (with the source's
        // contents), even with a trailing `/`.
        (false, _, true) => Ok(rebased),
        (false, _, false) if asserts_directory(&dst.path) => Err(Refusal::DirNotExists),
        (false, _, false) => Ok(rebased),
    }
}

/// The container's id mappings, recorded at create (empty: no user
/// namespace, container ids are host ids).
fn id_map(ids: &ContainerIds) -> IdMap {
    IdMap {
        uids: ids.uid_mappings.clone(),
        gids: ids.gid_mappings.clone(),
    }
}

/// Which way a copy goes, for `device_rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Into a container (`userns`: it has a user namespace of its own).
    In { userns: bool },
    /// Out onto the host (`archive`: `-a`).
    Out { archive: bool },
}

/// What becomes of a device node entry: created only where the caller
/// could create it itself and the place it lands could have one.
///
/// - Into a container with a user namespace: skipped. Its root cannot
///   `mknod` a device there (the kernel refuses it in a user namespace),
///   so rootcell does not make one from outside with the host's powers
///   (docker skips device entries when it runs in a user namespace; podman
///   cp into a rootless container cannot make them either).
/// - Out onto the host without `-a`: skipped (podman's `IgnoreDevices`):
///   a node the container made (it may hold `CAP_MKNOD`, e.g. a `0666`
///   disk) never appears on the host unless asked for.
/// - A caller that cannot `mknod` (not root of the initial user namespace
///   with `CAP_MKNOD`: rootless): skipped, as docker does in a user
///   namespace.
/// - Otherwise (root into a container without a user namespace, as docker
///   does; root with `-a` onto the host, as `tar -x` as root does): made.
pub fn device_rule(direction: Direction, caller_can_mknod: bool) -> DeviceNodes {
    match direction {
        _ if !caller_can_mknod => DeviceNodes::Skip,
        Direction::In { userns: true } | Direction::Out { archive: false } => DeviceNodes::Skip,
        Direction::In { userns: false } | Direction::Out { archive: true } => DeviceNodes::Create,
    }
}

/// The caller may create device nodes: it runs in the initial user
/// namespace with `CAP_MKNOD` in its effective set.
fn caller_can_mknod() -> bool {
    const CAP_MKNOD: u32 = 27;
    if crate::process::ids::in_user_namespace() {
        return false;
    }
    crate::fs::procfs::read(crate::fs::procfs::ProcfsBase::ProcSelf, "status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_MKNOD) != 0)
}

/// What a copy did, for docker's `Successfully copied ... to ...`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Copied {
    /// Bytes of the tar stream.
    pub bytes: u64,
}

fn named(what: impl std::fmt::Display, e: &io::Error) -> Error {
    Error::Other(format!("{what}: {}", describe(e)))
}

fn in_container(id: &str, path: &Path, e: Error) -> Error {
    Error::Other(format!("{id}:{}: {e}", path.display()))
}

/// Runs `rootcell cp` (`stdin`/`stdout` for `-`).
pub fn run(runtime: &Runtime, copy: &Copy, opts: CpOptions) -> Result<Copied> {
    match copy {
        Copy::From { id, src, dst } => from_container(runtime, id, src, dst, opts),
        Copy::To { id, src, dst } => to_container(runtime, id, src, dst, opts),
    }
}

/// A host path made absolute (relative to the working directory), its
/// trailing `/` or `/.` kept.
fn host_abs(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| named("the working directory", &e))?;
    let mut joined = cwd.into_os_string();
    joined.push("/");
    joined.push(path.as_os_str());
    Ok(PathBuf::from(joined))
}

/// A container path made absolute (relative paths are relative to `/`).
fn container_abs(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let mut joined = OsString::from("/");
    joined.push(path.as_os_str());
    PathBuf::from(joined)
}

/// docker's `CopyInfoDestinationPath` on the host: a symlink at the end is
/// followed (up to 10 times; a dangling one names the path to create), a
/// missing destination needs an existing parent directory.
fn host_target(path: &Path) -> Result<Target> {
    let mut path = path.to_path_buf();
    for _ in 0..=10 {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&path).map_err(|e| named(path.display(), &e))?;
                path = if link.is_absolute() {
                    link
                } else {
                    split_dir_entry(&path).0.join(link)
                };
            }
            Ok(m) => {
                check_kind(&path.display().to_string(), m.file_type())?;
                return Ok(Target {
                    path,
                    exists: true,
                    is_dir: m.is_dir(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = split_dir_entry(&path).0;
                let m = std::fs::metadata(&parent).map_err(|e| named(parent.display(), &e))?;
                if !m.is_dir() {
                    return Err(named(
                        parent.display(),
                        &io::Error::from_raw_os_error(libc::ENOTDIR),
                    ));
                }
                return Ok(Target {
                    path,
                    exists: false,
                    is_dir: false,
                });
            }
            Err(e) => return Err(named(path.display(), &e)),
        }
    }
    Err(Error::Other(format!(
        "{}: too many symlinks",
        path.display()
    )))
}

/// docker's `ValidateOutputPathFileMode`: a destination is a directory or
/// a regular file.
fn check_kind(what: &str, ft: std::fs::FileType) -> Result<()> {
    if ft.is_block_device() || ft.is_char_device() || ft.is_fifo() || ft.is_socket() {
        return Err(Error::Other(format!(
            "{what}: the destination must be a directory or a regular file"
        )));
    }
    Ok(())
}

/// The pipe's capacity asked for: sendfile moves up to this much per call
/// and each side wakes the other 16 times less often than with the default
/// 64 KiB. Best effort (an unprivileged caller may be held to less).
const PIPE_SIZE: usize = 1 << 20;

/// A pipe: (read end, write end), close-on-exec.
fn pipe() -> Result<(File, File)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| named("pipe", &e.into()))?;
    let _ = rustix::pipe::fcntl_setpipe_size(&w, PIPE_SIZE);
    Ok((File::from(r), File::from(w)))
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The error of a copy whose two halves ran at once: the reading side's
/// error wins when the writing side only saw the pipe close (`EPIPE`).
fn first_error(writer: Result<()>, reader: Result<()>) -> Result<()> {
    match (writer, reader) {
        (Ok(()), r) => r,
        (Err(w), Err(r)) if w.to_string().contains("Broken pipe") => Err(r),
        (Err(w), _) => Err(w),
    }
}

/// The source's kind: a directory or not (`follow`: through a final
/// symlink), resolved inside `root`.
fn source_is_dir(root: &RootDir, path: &Path, follow: bool) -> io::Result<bool> {
    let fd = if follow {
        root.resolve(path)?
    } else {
        root.resolve_nofollow(path)?
    };
    Ok(file_type(&fd)? == FileType::Directory)
}

fn from_container(
    runtime: &Runtime,
    id: &str,
    src: &Path,
    dst: &Side,
    opts: CpOptions,
) -> Result<Copied> {
    let src = container_abs(src);
    let view = View::open(runtime, id)?;
    let s = src.clone();
    let follow = opts.follow_link;
    let src_is_dir = view
        .run(move |root| source_is_dir(root.root_dir(), &s, follow))?
        .map_err(|e| named(format!("{id}:{}", src.display()), &e))?;
    // The stream carries container ids.
    let map = id_map(view.ids());
    let mut pack_opts = PackOptions {
        follow_link: opts.follow_link,
        ids: map,
        rename: None,
    };
    let result = match dst {
        Side::Stream => {
            // stdout itself is the stream, written on the view's thread.
            let out = File::from(
                io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| named("stdout", &e))?,
            );
            let s = src.clone();
            let mut counted = CountingWriter {
                inner: out,
                bytes: 0,
            };
            view.run(move |root| {
                archive::pack(root.root_dir(), &s, &pack_opts, &mut counted).map(|()| counted.bytes)
            })?
            .map(|bytes| Copied { bytes })
            .map_err(|e| in_container(id, &src, e))
        }
        Side::Host(path) => {
            let path = host_abs(path)?;
            let target = host_target(&path)?;
            let placement = place(src_is_dir, &target)
                .map_err(|r| Error::Other(format!("{}: {r}", path.display())))?;
            pack_opts.rename = placement.rename;
            let unpack_opts = UnpackOptions {
                // Out of the container the stream carries container ids;
                // `-a` keeps them as they are on the host.
                ownership: if opts.archive {
                    Ownership::Archive
                } else {
                    Ownership::Caller
                },
                ids: IdMap::default(),
                devices: device_rule(
                    Direction::Out {
                        archive: opts.archive,
                    },
                    caller_can_mknod(),
                ),
            };
            let host = RootDir::open(Path::new("/")).map_err(|e| named("/", &e))?;
            let (r, w) = pipe()?;
            let s = src.clone();
            let dir = placement.dir;
            std::thread::scope(|scope| {
                let packer = scope.spawn(|| {
                    view.run(move |root| archive::pack_into(root.root_dir(), &s, &pack_opts, &w))
                });
                let mut input = Counting { inner: r, bytes: 0 };
                let unpacked = archive::unpack(&host, &dir, &mut input, &unpack_opts)
                    .map_err(|e| Error::Other(format!("{}: {e}", dir.display())));
                if unpacked.is_ok() {
                    // The stream's end-of-archive padding, so the packer
                    // never writes into a closed pipe after a success.
                    let _ = io::copy(&mut input, &mut io::sink());
                }
                // Unblocks the packer if the unpacker stopped early.
                drop(input.inner);
                let packed = match packer.join() {
                    Ok(Ok(r)) => r.map_err(|e| in_container(id, &src, e)),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(Error::Other("the copying thread panicked".into())),
                };
                first_error(packed, unpacked).map(|()| Copied { bytes: input.bytes })
            })
        }
        Side::Container { .. } => Err(Error::Other(
            "copying between containers is not supported".into(),
        )),
    };
    view.close()?;
    result
}

/// Counts the bytes written through it.
struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// docker's destination in a container: a symlink at the end is followed
/// inside the container (`FollowSymlinkInScope`), then looked at again.
fn container_target(root: &ViewRoot, path: &Path) -> io::Result<Target> {
    let mut path = path.to_path_buf();
    let mut meta = root.lstat(&path);
    if let Ok(m) = &meta {
        if m.file_type().is_symlink() {
            let resolved = plan::follow_in_scope(&path, |p| root.link_at(p))?;
            path = resolved;
            meta = root.lstat(&path);
        }
    }
    match meta {
        Ok(m) => {
            if m.file_type().is_block_device()
                || m.file_type().is_char_device()
                || m.file_type().is_fifo()
                || m.file_type().is_socket()
            {
                return Err(io::Error::other(
                    "the destination must be a directory or a regular file",
                ));
            }
            Ok(Target {
                path,
                exists: true,
                is_dir: m.is_dir(),
            })
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(Target {
            path,
            exists: false,
            is_dir: false,
        }),
        Err(e) => Err(e),
    }
}

/// Refuses a read-only extraction directory as docker does: the root's
/// `container rootfs is marked read-only`, a volume's `mounted volume is
/// marked read-only` (from the mount the directory is on, by fd).
fn check_writable(root: &RootDir, dir: &Path) -> Result<()> {
    use crate::fs::mount::{missing_attrs, mount_of};
    use crate::plan::options::attr;
    let fd = root.resolve(dir).map_err(|e| named(dir.display(), &e))?;
    let missing = missing_attrs(&fd, attr::RDONLY).map_err(|e| named(dir.display(), &e.into()))?;
    if missing != 0 {
        return Ok(());
    }
    let id = |fd| mount_of(fd).ok().map(|(id, _)| id);
    let on_root = id(fd.as_fd()).is_some_and(|m| Some(m) == id(root.fd()));
    // The caller names the container path (`ID:PATH: …`), as docker does.
    Err(Error::Other(
        if on_root {
            "container rootfs is marked read-only"
        } else {
            "mounted volume is marked read-only"
        }
        .into(),
    ))
}

fn to_container(
    runtime: &Runtime,
    id: &str,
    src: &Side,
    dst: &Path,
    opts: CpOptions,
) -> Result<Copied> {
    let dst = container_abs(dst);
    // The host source is looked at before the view is built.
    let host_src = match src {
        Side::Host(path) => {
            let path = host_abs(path)?;
            let host = RootDir::open(Path::new("/")).map_err(|e| named("/", &e))?;
            let is_dir = source_is_dir(&host, &path, opts.follow_link)
                .map_err(|e| named(path.display(), &e))?;
            Some((host, path, is_dir))
        }
        Side::Stream => None,
        Side::Container { .. } => {
            return Err(Error::Other(
                "copying between containers is not supported".into(),
            ))
        }
    };
    let view = View::open(runtime, id)?;
    let ids = view.ids();
    let unpack_opts = UnpackOptions {
        // docker: the stream's owners (container ids) without `-a`; with
        // `-a`, the container's configured user.
        ownership: if opts.archive {
            Ownership::Fixed {
                uid: ids.user.0,
                gid: ids.user.1,
            }
        } else {
            Ownership::Archive
        },
        ids: id_map(ids),
        devices: device_rule(
            Direction::In {
                userns: ids.user_namespace,
            },
            caller_can_mknod(),
        ),
    };
    let d = dst.clone();
    let target = view
        .run(move |root| container_target(root, &d))?
        .map_err(|e| named(format!("{id}:{}", dst.display()), &e))?;
    let result = match host_src {
        None => {
            if !(target.exists && target.is_dir) {
                return Err(Error::Other(format!(
                    "destination \"{id}:{}\" must be a directory",
                    dst.display()
                )));
            }
            let input = File::from(
                io::stdin()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| named("stdin", &e))?,
            );
            let dir = target.path;
            view.run(move |root| {
                check_writable(root.root_dir(), &dir)?;
                let mut input = Counting {
                    inner: input,
                    bytes: 0,
                };
                archive::unpack(root.root_dir(), &dir, &mut input, &unpack_opts)
                    .map(|()| input.bytes)
            })?
            .map(|bytes| Copied { bytes })
            .map_err(|e| in_container(id, &dst, e))
        }
        Some((host, path, is_dir)) => {
            let placement = place(is_dir, &target)
                .map_err(|r| Error::Other(format!("{id}:{}: {r}", dst.display())))?;
            let pack_opts = PackOptions {
                follow_link: opts.follow_link,
                ids: IdMap::default(),
                rename: placement.rename,
            };
            let (r, w) = pipe()?;
            let dir = placement.dir;
            std::thread::scope(|scope| {
                // The packer writes to the pipe itself (no wrapper), so
                // file data moves with sendfile/splice; the bytes are
                // counted on the reading side.
                let packer = scope.spawn(move || {
                    archive::pack_into(&host, &path, &pack_opts, &w)
                        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))
                });
                let unpacked = view
                    .run(move |root| {
                        check_writable(root.root_dir(), &dir)?;
                        let mut r = Counting { inner: r, bytes: 0 };
                        archive::unpack(root.root_dir(), &dir, &mut r, &unpack_opts)?;
                        // The end-of-archive padding (see from_container).
                        let _ = io::copy(&mut r, &mut io::sink());
                        Ok(r.bytes)
                    })
                    .and_then(|r| r)
                    .map_err(|e| in_container(id, &dst, e));
                let packed = match packer.join() {
                    Ok(r) => r,
                    Err(_) => Err(Error::Other("the copying thread panicked".into())),
                };
                let bytes = unpacked.as_ref().map(|b| *b).unwrap_or(0);
                first_error(packed, unpacked.map(drop)).map(|()| Copied { bytes })
            })
        }
    };
    view.close()?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str, exists: bool, is_dir: bool) -> Target {
        Target {
            path: PathBuf::from(path),
            exists,
            is_dir,
        }
    }

    fn placed(dir: &str, rename: Option<&str>) -> Placement {
        Placement {
            dir: PathBuf::from(dir),
            rename: rename.map(OsString::from),
        }
    }

    #[test]
    fn args_split_like_docker() {
        assert_eq!(split_arg("-"), Side::Stream);
        assert_eq!(split_arg("/a:b"), Side::Host("/a:b".into()));
        assert_eq!(split_arg("./x:y"), Side::Host("./x:y".into()));
        assert_eq!(split_arg("file"), Side::Host("file".into()));
        assert_eq!(
            split_arg("c1:/etc/x"),
            Side::Container {
                id: "c1".into(),
                path: "/etc/x".into()
            }
        );
        assert_eq!(
            split_arg("c1:rel"),
            Side::Container {
                id: "c1".into(),
                path: "rel".into()
            }
        );
        assert!(matches!(parse("c:/a", "-"), Ok(Copy::From { .. })));
        assert!(matches!(parse("-", "c:/a"), Ok(Copy::To { .. })));
        let both = parse("a:/x", "b:/y").unwrap_err().to_string();
        assert!(both.contains("between containers"), "{both}");
        let none = parse("/x", "y").unwrap_err().to_string();
        assert!(none.contains("at least one container"), "{none}");
    }

    #[test]
    fn split_dir_entry_is_dockers() {
        let s = |p: &str| {
            let (d, b) = split_dir_entry(Path::new(p));
            (
                d.to_str().unwrap().to_string(),
                b.to_str().unwrap().to_string(),
            )
        };
        assert_eq!(s("/a/b"), ("/a".into(), "b".into()));
        assert_eq!(s("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(s("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(s("/"), ("/".into(), "/".into()));
        assert_eq!(s("/a"), ("/".into(), "a".into()));
        assert_eq!(s("a"), (".".into(), "a".into()));
        assert_eq!(s("/a/../b"), ("/".into(), "b".into()));
        assert!(asserts_directory(Path::new("/a/")));
        assert!(asserts_directory(Path::new("/a/.")));
        assert!(!asserts_directory(Path::new("/a")));
    }

    /// docker cp's table (docs: "docker container cp").
    #[test]
    fn file_source_rules() {
        // DEST_PATH does not exist: the file is saved to DEST_PATH.
        assert_eq!(
            place(false, &target("/d/new", false, false)),
            Ok(placed("/d", Some("new")))
        );
        // ... and ends with `/`: error.
        assert_eq!(
            place(false, &target("/d/new/", false, false)),
            Err(Refusal::DirNotExists)
        );
        // Exists and is a file: overwritten (the entry renamed to it).
        assert_eq!(
            place(false, &target("/d/f", true, false)),
            Ok(placed("/d", Some("f")))
        );
        // Exists and is a directory: copied into it, its own name.
        assert_eq!(
            place(false, &target("/d", true, true)),
            Ok(placed("/d", None))
        );
        assert_eq!(
            place(false, &target("/d/", true, true)),
            Ok(placed("/d/", None))
        );
    }

    #[test]
    fn device_nodes_only_where_the_caller_and_the_place_allow_them() {
        use DeviceNodes::*;
        let into = |userns| Direction::In { userns };
        let out = |archive| Direction::Out { archive };
        assert_eq!(device_rule(into(false), true), Create);
        assert_eq!(device_rule(into(true), true), Skip);
        assert_eq!(device_rule(out(true), true), Create);
        assert_eq!(device_rule(out(false), true), Skip);
        for d in [into(false), into(true), out(true), out(false)] {
            assert_eq!(device_rule(d, false), Skip, "{d:?}");
        }
    }

    #[test]
    fn directory_source_rules() {
        // DEST_PATH does not exist: created with the source's contents.
        assert_eq!(
            place(true, &target("/d/new", false, false)),
            Ok(placed("/d", Some("new")))
        );
        assert_eq!(
            place(true, &target("/d/new/", false, false)),
            Ok(placed("/d", Some("new")))
        );
        // Exists and is a file: error.
        assert_eq!(
            place(true, &target("/d/f", true, false)),
            Err(Refusal::DirOntoFile)
        );
        // Exists and is a directory: the source (or its contents for
        // `src/.`, which the packer's naming decides) goes into it.
        assert_eq!(
            place(true, &target("/d", true, true)),
            Ok(placed("/d", None))
        );
    }
}
