//! Views of a container's filesystem from the outside (`rootcell stat`,
//! later `rootcell cp`), safe against a hostile container.
//!
//! A `View` is a dedicated thread that has its own mount namespace and fs
//! struct (`unshare(CLONE_NEWNS | CLONE_FS)`, `/` made rprivate there, so
//! nothing reaches the host or the container). On it, the container's
//! rootfs is cloned (`open_tree(OPEN_TREE_CLONE)` of an fd opened once)
//! and attached onto that same fd, and every bind mount of the config (the
//! volumes, `ViewPlan`) is cloned and attached onto an fd of its
//! destination resolved inside the view's root (`RootDir::mountpoint`,
//! `openat2(RESOLVE_IN_ROOT)`): no path inside the container is ever
//! resolved through the process's root or re-resolved after opening.
//! Read-only volumes are made read-only recursively (`mount_setattr` with
//! `AT_RECURSIVE`), `root.readonly` makes the root mount read-only, and
//! every mount of the view is nosuid, nodev and noexec.
//!
//! `View::run` runs a closure on that thread with a `ViewRoot`, whose
//! operations resolve every path inside the root. Closing or dropping the
//! view (or a panic in a closure) ends the thread: its fds are closed and
//! its mount namespace, with every mount of the view, goes away. Nothing
//! from the container is executed, loaded or used for name resolution.

pub mod archive;
pub mod cp;
pub mod plan;
pub mod source;
pub mod userns;

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rustix::fs::{openat2, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::container::Runtime;
use crate::error::{Error, IoContext, Result};
use crate::fs::mount;
use crate::fs::root::file_type;
use crate::fs::RootDir;
use crate::plan::options::attr;
use crate::plan::{AttrChange, Idmap, Propagation, PropagationChange};
use crate::state::{ContainerDir, Status};

pub use plan::{ContainerIds, PathStat, ViewMount, ViewPlan};

type Job = Box<dyn FnOnce(&ViewRoot) + Send>;

/// A private view of one container's filesystem, alive until closed or
/// dropped. Several views of one container may exist at once.
pub struct View {
    id: String,
    /// The container's ids, as recorded at create.
    ids: ContainerIds,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// The thread's kernel task id, to wait for its exit.
    tid: i32,
}

impl View {
    /// The view of container `id` (created, running, paused or stopped).
    pub fn open(runtime: &Runtime, id: &str) -> Result<View> {
        let dir = ContainerDir::open(&runtime.root, id, false)?;
        let state = dir.load()?;
        let status = state.live_status(&dir);
        if status == Status::Creating {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: status.to_string(),
                reason: "its filesystem is not ready".into(),
            });
        }
        // Recorded at create, with each source's identity: neither the
        // bundle's config nor a host path is read again.
        let mut plan = state.view.ok_or_else(|| {
            Error::Other(format!(
                "{id}: no view was recorded at create (a container created by an older \
                 rootcell): recreate the container to copy from or into it"
            ))
        })?;
        // After `userns::enter_for` the view shows the container's own ids.
        if userns::sees_container_ids(&plan.ids.uid_mappings, &plan.ids.gid_mappings) {
            plan.ids.uid_mappings.clear();
            plan.ids.gid_mappings.clear();
            plan.create_as = None;
        }
        // The shared lock is held until the view is built: `delete` waits.
        let view = View::from_plan(id, plan);
        drop(dir);
        view
    }

    /// Builds the view `plan` describes (`id` names it in errors).
    pub fn from_plan(id: &str, plan: ViewPlan) -> Result<View> {
        let ids = plan.ids.clone();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<i32>>(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name(format!("view-{id}"))
            .spawn(move || {
                let root = match build(&plan) {
                    Ok(root) => root,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(rustix::thread::gettid().as_raw_nonzero().get()));
                for job in queue {
                    job(&root);
                }
                // `root` and its mount fds are closed here, then the thread
                // exits with its mount namespace.
            })
            .ctx(|| "starting the view's thread")?;
        let ready = ready_rx.recv();
        let mut view = View {
            id: id.to_string(),
            ids,
            jobs: Some(jobs),
            thread: Some(thread),
            tid: 0,
        };
        match ready {
            Ok(Ok(tid)) => {
                view.tid = tid;
                Ok(view)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Other(format!("{id}: the view's thread panicked"))),
        }
    }

    /// The container's ids (user namespace, mappings, `process.user`), as
    /// recorded at create.
    pub fn ids(&self) -> &ContainerIds {
        &self.ids
    }

    /// Runs `f` on the view's thread with its root. A panic in `f` ends
    /// the view (everything it mounted goes) and is returned as an error.
    pub fn run<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&ViewRoot) -> R + Send + 'static,
        R: Send + 'static,
    {
        let closed = || Error::Other(format!("{}: the view is closed", self.id));
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |root| {
            let _ = tx.send(f(root));
        });
        self.jobs
            .as_ref()
            .ok_or_else(closed)?
            .send(job)
            .map_err(|_| closed())?;
        rx.recv().map_err(|_| {
            Error::Other(format!(
                "{}: the view's thread ended (the closure panicked)",
                self.id
            ))
        })
    }

    /// Closes the view and waits until its thread, and with it every mount
    /// of the view, is gone.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        self.jobs = None;
        let joined = self.thread.take().map(JoinHandle::join);
        wait_task_gone(self.tid);
        match joined {
            Some(Err(_)) => Err(Error::Other(format!(
                "{}: the view's thread panicked",
                self.id
            ))),
            _ => Ok(()),
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// `pthread_join` returns when the thread has left user space; the kernel
/// drops its mount namespace a little later, before the task disappears
/// from `/proc/self/task`. Waits for that (bounded: 2 s), so that a closed
/// view has nothing mounted any more.
fn wait_task_gone(tid: i32) {
    if tid <= 0 {
        return;
    }
    let task = PathBuf::from(format!("/proc/self/task/{tid}"));
    for _ in 0..2000 {
        if !task.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// On the view's thread: a mount namespace of its own, the rootfs and the
/// volumes attached, the root held by fd.
fn build(plan: &ViewPlan) -> Result<ViewRoot> {
    crate::process::sys::unshare(libc::CLONE_NEWNS | libc::CLONE_FS)
        .ctx(|| "view: unsharing the mount namespace")?;
    mount::set_propagation_at(
        Path::new("/"),
        PropagationChange {
            kind: Propagation::Private,
            recursive: true,
        },
    )
    .ctx(|| "view: making / private")?;
    let all = AttrChange {
        set: plan::VIEW_ATTRS,
        clear: 0,
    };
    let rootfs = plan.rootfs.display();
    // The rootfs is opened once, by its identity at create; the clone is
    // attached onto that fd.
    let target = source::open_identified("rootfs", &plan.rootfs, plan.rootfs_id.as_ref())?;
    if file_type(&target).ctx(|| format!("rootfs {rootfs}"))? != FileType::Directory {
        return Err(Error::Other(format!("rootfs {rootfs}: not a directory")));
    }
    let tree = mount::clone_fd(target.as_fd(), true).ctx(|| format!("rootfs {rootfs}"))?;
    mount::set_attrs(&tree, all, true).ctx(|| format!("rootfs {rootfs}"))?;
    if plan.root_readonly {
        let ro = AttrChange {
            set: attr::RDONLY,
            clear: 0,
        };
        mount::set_attrs(&tree, ro, false).ctx(|| "root.readonly")?;
    }
    mount::attach(tree.as_fd(), target.as_fd()).ctx(|| format!("rootfs {rootfs}"))?;
    drop(target);
    // The clone's fd is now the root of the attached mount.
    let root = RootDir::from_fd(tree);
    let mut held = Vec::new();
    let mut idmaps = IdmapNamespaces::default();
    for m in &plan.mounts {
        held.push(attach_volume(&root, m, &mut idmaps)?);
    }
    if let Some((uid, gid)) = plan.create_as {
        create_as(uid, gid)?;
    }
    Ok(ViewRoot { root, _held: held })
}

/// Clones one bind source and attaches it at its destination inside the
/// view's root. Returns the attached mount's fd.
fn attach_volume(root: &RootDir, m: &ViewMount, idmaps: &mut IdmapNamespaces) -> Result<OwnedFd> {
    let what = || {
        format!(
            "mounts[{}] ({} on {})",
            m.config_index,
            m.source.display(),
            m.destination.display()
        )
    };
    let field = format!("mounts[{}]", m.config_index);
    let source = source::open_identified(&field, &m.source, m.source_id.as_ref())?;
    let directory = file_type(&source).ctx(what)? == FileType::Directory;
    let tree = mount::clone_fd(source.as_fd(), m.recursive).ctx(what)?;
    if let Some(idmap) = &m.idmap {
        // The ids the container sees on this volume: `cp -a` maps them
        // through its user namespace like every other file's.
        let userns = idmaps
            .get(idmap)
            .map_err(|e| Error::Other(format!("{}: idmap: {e}", what())))?;
        mount::set_idmap(&tree, userns, idmap.recursive).ctx(what)?;
    }
    let mut attrs = AttrChange {
        set: plan::VIEW_ATTRS,
        clear: 0,
    };
    if m.read_only {
        attrs.set |= attr::RDONLY;
    }
    // An error here where the kernel cannot: never a writable view of a
    // read-only volume.
    mount::set_attrs(&tree, attrs, true).ctx(what)?;
    let target = root.mountpoint(&m.destination, directory).ctx(what)?;
    mount::attach(tree.as_fd(), target.as_fd()).ctx(what)?;
    Ok(tree)
}

/// The view's thread creates files as the container's root (host `uid`,
/// `gid`) would, keeping every capability it has: changing the filesystem
/// uid from 0 clears the file capabilities from the effective set, raised
/// again from the permitted set. Both are per-thread credentials.
fn create_as(uid: u32, gid: u32) -> Result<()> {
    crate::process::sys::set_thread_fs_ids(uid, gid)
        .ctx(|| format!("view: taking the filesystem ids {uid}:{gid} of the container's root"))?;
    let permitted = caps::read(None, caps::CapSet::Permitted)
        .map_err(|e| Error::Other(format!("view: reading capabilities: {e}")))?;
    caps::set(None, caps::CapSet::Effective, &permitted)
        .map_err(|e| Error::Other(format!("view: raising capabilities: {e}")))
}

/// One user namespace per distinct idmap of a view's volumes (made by a
/// short-lived child, see `ids::user_namespace_with`), kept until the view
/// is built.
#[derive(Default)]
struct IdmapNamespaces {
    made: Vec<(Idmap, OwnedFd)>,
}

impl IdmapNamespaces {
    fn get(&mut self, idmap: &Idmap) -> Result<BorrowedFd<'_>> {
        let same = |m: &Idmap| {
            m.uid_mappings == idmap.uid_mappings && m.gid_mappings == idmap.gid_mappings
        };
        let at = match self.made.iter().position(|(m, _)| same(m)) {
            Some(at) => at,
            None => {
                let ns = crate::process::ids::user_namespace_with(
                    &idmap.uid_mappings,
                    &idmap.gid_mappings,
                )?;
                self.made.push((idmap.clone(), ns));
                self.made.len() - 1
            }
        };
        Ok(self.made[at].1.as_fd())
    }
}

/// The root of a view, on the view's thread: every path is resolved
/// inside it (`openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`), a
/// symlink or `..` never leads out.
pub struct ViewRoot {
    root: RootDir,
    /// The volumes' mount fds, closed with the root.
    _held: Vec<OwnedFd>,
}

/// How often an `openat2` is retried on a concurrent rename (`EAGAIN`).
const EAGAIN_RETRIES: usize = 128;

impl ViewRoot {
    /// The underlying root (for `RootDir` users such as archives).
    pub fn root_dir(&self) -> &RootDir {
        &self.root
    }

    fn open_in(&self, path: &Path, flags: OFlags, mode: u32) -> io::Result<OwnedFd> {
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        // `openat2` refuses any other flag with `O_PATH`.
        let mut flags = flags | OFlags::CLOEXEC;
        if !flags.contains(OFlags::PATH) {
            flags |= OFlags::NOCTTY;
        }
        for _ in 0..EAGAIN_RETRIES {
            match openat2(
                self.root.fd(),
                path,
                flags,
                Mode::from_raw_mode(mode),
                resolve,
            ) {
                Err(Errno::AGAIN) => continue,
                other => return Ok(other?),
            }
        }
        Err(io::Error::from_raw_os_error(libc::EAGAIN))
    }

    /// The directory holding `path` (resolved in the root, following
    /// symlinks) and the last name of `path`, which must be a plain name.
    fn parent(&self, path: &Path) -> io::Result<(OwnedFd, OsString)> {
        let mut parts: Vec<Component> = path.components().collect();
        let name = match parts.pop() {
            Some(Component::Normal(name)) => name.to_os_string(),
            _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
        };
        let mut dir: PathBuf = parts.iter().collect();
        if dir.as_os_str().is_empty() {
            dir = PathBuf::from("/");
        }
        let fd = self.open_in(&dir, OFlags::PATH | OFlags::DIRECTORY, 0)?;
        Ok((fd, name))
    }

    /// Opens a file for reading (the last symlink followed, in the root).
    pub fn open(&self, path: &Path) -> io::Result<File> {
        Ok(self.open_in(path, OFlags::RDONLY, 0)?.into())
    }

    /// Metadata, the last symlink followed (in the root).
    pub fn stat(&self, path: &Path) -> io::Result<Metadata> {
        File::from(self.root.resolve(path)?).metadata()
    }

    /// Metadata of `path` itself (a symlink is not followed).
    pub fn lstat(&self, path: &Path) -> io::Result<Metadata> {
        File::from(self.root.resolve_nofollow(path)?).metadata()
    }

    /// The names in a directory (without `.` and `..`), sorted.
    pub fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let fd = self.open_in(path, OFlags::RDONLY | OFlags::DIRECTORY, 0)?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&fd)? {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(OsString::from_vec(name));
            }
        }
        names.sort();
        Ok(names)
    }

    /// Creates (or truncates) a regular file for writing. The last
    /// component is never followed: a symlink there is an error (`ELOOP`).
    pub fn create(&self, path: &Path, mode: u32) -> io::Result<File> {
        let (dir, name) = self.parent(path)?;
        let fd = rustix::fs::openat(
            &dir,
            name.as_os_str(),
            OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::TRUNC
                | OFlags::NOFOLLOW
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )?;
        Ok(fd.into())
    }

    /// `mkdir -p` inside the root.
    pub fn mkdir_all(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.root.mkdir_all(path, mode).map(drop)
    }

    /// Removes a file, a symlink (not its target) or an empty directory.
    pub fn remove(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        let st = rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)?;
        let flags = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        Ok(rustix::fs::unlinkat(&dir, name.as_os_str(), flags)?)
    }

    /// Creates the symlink `link` → `target` (stored as given).
    pub fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(link)?;
        Ok(rustix::fs::symlinkat(target, &dir, name.as_os_str())?)
    }

    /// The target of the symlink `path`, as stored.
    pub fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        let fd = self.root.resolve_nofollow(path)?;
        let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
        Ok(PathBuf::from(OsString::from_vec(target.into_bytes())))
    }

    /// docker's `PathStat` of `path`: the `lstat` of the path (its parent
    /// resolved in the root), and for a symlink the in-scope path it
    /// finally resolves to.
    pub fn path_stat(&self, path: &Path) -> io::Result<PathStat> {
        let abs = plan::scoped_clean(path);
        let meta = self.lstat(&abs)?;
        let link_target = if meta.file_type().is_symlink() {
            plan::follow_in_scope(&abs, |p| self.link_at(p))?
                .to_string_lossy()
                .into_owned()
        } else {
            String::new()
        };
        Ok(PathStat {
            name: plan::stat_name(&abs),
            size: meta.size() as i64,
            mode: plan::go_file_mode(meta.mode()),
            mtime: plan::rfc3339_nano(meta.mtime(), meta.mtime_nsec() as u32),
            link_target,
        })
    }

    /// `follow_in_scope`'s lookup: the target when `p` is a symlink, None
    /// when it is something else or missing.
    fn link_at(&self, p: &Path) -> io::Result<Option<PathBuf>> {
        match self.root.resolve_nofollow(p) {
            Ok(fd) if file_type(&fd)? == FileType::Symlink => {
                let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
                Ok(Some(PathBuf::from(OsString::from_vec(target.into_bytes()))))
            }
            Ok(_) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `rootcell stat`: the `PathStat` of `path` in container `id`. Errors
/// name `id:path`.
pub fn stat(runtime: &Runtime, id: &str, path: &Path) -> Result<PathStat> {
    let view = View::open(runtime, id)?;
    let owned = path.to_path_buf();
    let result = view.run(move |root| root.path_stat(&owned))?;
    view.close()?;
    result.map_err(|e| Error::Other(format!("{id}:{}: {}", path.display(), describe(&e))))
}

/// `no such file or directory` rather than Rust's `No such file or
/// directory (os error 2)`.
fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}
