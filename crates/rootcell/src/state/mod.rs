//! Stage 4: the on-disk record of a container, one directory per container
//! under the runtime root: `state.json` (written to a temporary file, then
//! renamed, so a crash never leaves half a file), `exec.fifo` while the
//! container is created but not started, and `init.err`, where a created
//! container's init writes the error it dies of (read by `start`). Every command takes an `flock` on
//! the container's directory: exclusive to change it, shared to read it.
//! The root, each container's directory and `state.json` are checked for
//! owner and mode before use (`trust`).

pub(crate) mod time;
pub mod trust;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation, Mode};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::fs::procfs::{self, ProcfsBase};

pub use time::rfc3339_now;

pub const STATE_FILE: &str = "state.json";
/// Where the next state is written before it replaces `state.json`.
const STATE_NEXT: &str = ".state.json.tmp";
pub const EXEC_FIFO: &str = "exec.fifo";
pub const INIT_ERROR: &str = "init.err";
/// An emptied container directory a `delete` left in the root for the next
/// `create` to rename into place (`ContainerDir::remove`).
const SPARE_DIR: &str = ".spare";
/// How much of `init.err` is read back.
const INIT_ERROR_MAX: u64 = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What rootcell remembers about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub oci_version: String,
    pub id: String,
    /// Status when the file was written; the live status is derived.
    pub status: Status,
    pub pid: i32,
    /// Start time of `pid` (clock ticks since boot), so a reused pid is not
    /// mistaken for the container.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub annotations: HashMap<String, String>,
    /// The container's cgroup directories, one per hierarchy.
    pub cgroup_dirs: Vec<PathBuf>,
    /// Hooks of the config used at create (poststart and poststop run later).
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// `create --no-new-keyring`: processes `exec` starts keep the caller's
    /// session keyring too, instead of joining `_ses.<id>`.
    #[serde(default)]
    pub no_new_keyring: bool,
    /// The isolation the container was created with (`oci` or `chroot`;
    /// `auto` is recorded as what it resolved to). rootcell's own field:
    /// not in `oci_json`, so `rootcell state` keeps runc's shape.
    #[serde(default)]
    pub isolation: crate::plan::Isolation,
    /// What a view of the container (`rootcell cp`, `stat`) attaches: the
    /// rootfs and the config's bind mounts, each source identified as it
    /// was at create. rootcell's own field, like `isolation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<crate::view::ViewPlan>,
}

impl ContainerState {
    /// The OCI state JSON (plus runc's `rootfs`, `created`, `owner`).
    pub fn oci_json(&self, status: Status) -> serde_json::Value {
        serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": if status == Status::Stopped { 0 } else { self.pid },
            "status": status.to_string(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            "annotations": self.annotations,
        })
    }

    /// The live status: from the process and the exec fifo.
    pub fn live_status(&self, dir: &ContainerDir) -> Status {
        if self.status == Status::Creating {
            return if process_matches(self.pid, self.pid_start_time) {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if !process_matches(self.pid, self.pid_start_time) {
            return Status::Stopped;
        }
        if crate::cgroup::freezer::is_paused(&self.cgroup_dirs) {
            return Status::Paused;
        }
        if dir.path.join(EXEC_FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }
}

/// Checks that a container id is safe as a directory name and matches what
/// runc accepts (`[A-Za-z0-9_+.-]+`), without a leading dot: dot entries
/// below the state root are the runtime's own (`.cache`), never containers.
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidId(id.into(), "it is empty"));
    }
    if id.starts_with('.') {
        return Err(Error::InvalidId(
            id.into(),
            "it starts with '.' (such names are the runtime's own files)",
        ));
    }
    if id.len() > 1024 {
        return Err(Error::InvalidId(id.into(), "it is too long"));
    }
    let ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if !ok {
        return Err(Error::InvalidId(
            id.into(),
            "only letters, digits, '_', '+', '-' and '.' are allowed",
        ));
    }
    Ok(())
}

/// A locked container directory.
pub struct ContainerDir {
    pub path: PathBuf,
    lock: File,
}

impl ContainerDir {
    /// Creates `<root>/<id>` for a new container, exclusively locked. The
    /// root is made 0700 if missing and checked (`trust`).
    pub fn create(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let root_fd = trust::open_root(root, true)?
            .ok_or_else(|| Error::Other(format!("state root {}: missing", root.display())))?;
        let path = root.join(id);
        // The directory a delete left (see `remove`), renamed into place
        // without replacing anything: an existing id still fails here.
        let reused = rustix::fs::renameat_with(
            &root_fd,
            SPARE_DIR,
            &root_fd,
            id,
            rustix::fs::RenameFlags::NOREPLACE,
        );
        let made = match reused {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::EXIST) => Err(rustix::io::Errno::EXIST),
            // None spare (or a filesystem without RENAME_NOREPLACE).
            // 0711 like runc's: init, once it is process.user, still reaches
            // the exec fifo by its inherited fd, nobody else lists the states.
            Err(_) => rustix::fs::mkdirat(&root_fd, id, Mode::from_raw_mode(0o711)),
        };
        match made {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => return Err(Error::AlreadyExists(id.into())),
            Err(e) => return Err(e).ctx(|| format!("{}", path.display())),
        }
        ContainerDir::lock(&root_fd, id, path, FlockOperation::LockExclusive)
    }

    /// Opens and locks an existing container's directory.
    pub fn open(root: &Path, id: &str, exclusive: bool) -> Result<ContainerDir> {
        validate_id(id)?;
        let Some(root_fd) = trust::open_root(root, false)? else {
            return Err(Error::NotFound(id.into()));
        };
        let op = if exclusive {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::LockShared
        };
        let dir = ContainerDir::lock(&root_fd, id, root.join(id), op)?;
        if !dir.path.exists() {
            // Deleted while we waited for the lock.
            return Err(Error::NotFound(id.into()));
        }
        Ok(dir)
    }

    /// Opens `id` in the root (never through a symlink), checks its owner
    /// and mode on the fd, and locks it.
    fn lock(root: &impl AsFd, id: &str, path: PathBuf, op: FlockOperation) -> Result<ContainerDir> {
        let fd = trust::open_dir_at(root, id, None, "container directory", &path)?
            .ok_or_else(|| Error::NotFound(id.into()))?;
        flock(&fd, op).ctx(|| format!("locking {}", path.display()))?;
        Ok(ContainerDir {
            path,
            lock: File::from(fd),
        })
    }

    /// Reads `state.json`, opened in the locked directory (no symlink) and
    /// checked like the directory: the runtime runs the hooks it names.
    pub fn load(&self) -> Result<ContainerState> {
        let file = self.path.join(STATE_FILE);
        let mut f = trust::open_file_at(&self.lock, STATE_FILE, "container state", &file)?
            .ok_or_else(|| Error::NotFound(self.id()))?;
        let mut text = Vec::new();
        f.read_to_end(&mut text)
            .ctx(|| format!("{}", file.display()))?;
        serde_json::from_slice(&text)
            .map_err(|e| Error::Other(format!("{}: corrupt state: {e}", file.display())))
    }

    /// Writes the state crash-safely: a second file, then swapped in by
    /// rename, so a reader sees the old or the new state, never a mix.
    /// Private (0600) whatever the umask.
    ///
    /// The swap is an exchange (`RENAME_EXCHANGE`): the old state's inode
    /// becomes the next save's second file, so after the second save no
    /// inode is made or freed. A `run` saves four times; on ext4 without a
    /// journal (this machine's `/run` and `/tmp`) every inode allocation
    /// scans past the recently freed ones, which made file creation about a
    /// third of the runtime's CPU time in a loop of runs.
    ///
    /// The second file is overwritten in place and cut to the new length,
    /// not opened with `O_TRUNC`: ext4 allocates the blocks of a file
    /// truncated to zero when it is closed (its `auto_da_alloc`), and
    /// blocks freed later, when the container is deleted, cost a
    /// synchronous discard on a filesystem mounted `discard` (as here: an
    /// `O_TRUNC` rewrite made a later delete about 3 ms slower).
    pub fn save(&self, state: &ContainerState) -> Result<()> {
        use std::os::unix::fs::FileExt;

        use rustix::fs::{OFlags, RenameFlags};
        let next = || self.path.join(STATE_NEXT);
        let bytes = serde_json::to_vec(state).map_err(|e| Error::Other(e.to_string()))?;
        let fd = rustix::fs::openat(
            &self.lock,
            STATE_NEXT,
            OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .ctx(|| format!("{}", next().display()))?;
        let file = File::from(fd);
        file.write_all_at(&bytes, 0)
            .and_then(|()| file.set_len(bytes.len() as u64))
            .ctx(|| format!("{}", next().display()))?;
        let swapped = rustix::fs::renameat_with(
            &self.lock,
            STATE_NEXT,
            &self.lock,
            STATE_FILE,
            RenameFlags::EXCHANGE,
        );
        match swapped {
            Ok(()) => Ok(()),
            // The first save (no state.json yet), or a filesystem that
            // cannot exchange: a plain rename.
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::INVAL) => {
                rustix::fs::renameat(&self.lock, STATE_NEXT, &self.lock, STATE_FILE)
                    .ctx(|| format!("{}", self.path.join(STATE_FILE).display()))
            }
            Err(e) => Err(e).ctx(|| format!("{}", self.path.join(STATE_FILE).display())),
        }
    }

    /// Creates `init.err` (empty, 0600) and returns it open for writing,
    /// close-on-exec, for the container's init (`InitConfig::error_file`).
    pub fn create_init_error_file(&self) -> Result<std::os::fd::OwnedFd> {
        use rustix::fs::OFlags;
        rustix::fs::openat(
            &self.lock,
            INIT_ERROR,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .ctx(|| format!("{}", self.path.join(INIT_ERROR).display()))
    }

    /// What the container's init wrote to `init.err` before it died, if
    /// anything (a regular file only, read in the locked directory).
    pub fn init_error(&self) -> Option<String> {
        use rustix::fs::OFlags;
        let fd = rustix::fs::openat(
            &self.lock,
            INIT_ERROR,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return None;
        }
        let mut text = Vec::new();
        File::from(fd)
            .take(INIT_ERROR_MAX)
            .read_to_end(&mut text)
            .ok()?;
        let text = String::from_utf8_lossy(&text).trim().to_string();
        (!text.is_empty()).then_some(text)
    }

    /// Whether the locked directory holds nothing (one `getdents`).
    fn is_empty(&self) -> bool {
        let Ok(mut dir) = rustix::fs::Dir::read_from(&self.lock) else {
            return false;
        };
        dir.all(|entry| entry.is_ok_and(|e| matches!(e.file_name().to_bytes(), b"." | b"..")))
    }

    /// The fd holding the lock, for a forked child to close.
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.lock)
    }

    pub fn id(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Removes the directory (the lock goes with it): the files the runtime
    /// makes by name, through the locked directory's fd, then the
    /// directory; it is listed only if something else is left in it.
    ///
    /// Emptied, the directory is kept as the root's spare (`.spare`) when
    /// there is none, for the next `create` to rename into place: freeing
    /// it costs more than the rest of a delete on ext4 mounted `discard`
    /// (this machine's `/run` and `/tmp`: the directory's block is
    /// discarded synchronously when its last fd closes, 0.06 to 0.14 ms),
    /// and making it again costs an inode and a block.
    pub fn remove(self) -> Result<()> {
        for name in [STATE_FILE, STATE_NEXT, INIT_ERROR, EXEC_FIFO] {
            match rustix::fs::unlinkat(&self.lock, name, rustix::fs::AtFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                // Whatever it is, remove_dir_all below deals with it.
                Err(_) => break,
            }
        }
        if self.is_empty() {
            if let Some(spare) = self.path.parent().map(|root| root.join(SPARE_DIR)) {
                let kept = rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &self.path,
                    rustix::fs::CWD,
                    &spare,
                    rustix::fs::RenameFlags::NOREPLACE,
                );
                if kept.is_ok() {
                    return Ok(());
                }
            }
        }
        match fs::remove_dir(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => fs::remove_dir_all(&self.path)
                .ctx(|| format!("removing {}", self.path.display()))?,
        }
        drop(self.lock);
        Ok(())
    }
}

/// Start time (field 22 of `/proc/<pid>/stat`), or None if the process is
/// gone or a zombie.
pub fn process_start_time(pid: i32) -> Option<u64> {
    start_time(pid, false)
}

/// Start time of a child of this process that it has not reaped: its pid
/// cannot be reused meanwhile, so a zombie's (the child exited already) is
/// still its own. `create` records init's so: an init cloned directly
/// waits for nothing, and under load (50 containers at once on 2 CPUs) it
/// had run `sleep 0.1` to its end before the runtime was scheduled again.
pub fn child_start_time(pid: i32) -> Option<u64> {
    start_time(pid, true)
}

fn start_time(pid: i32, zombie_too: bool) -> Option<u64> {
    let stat = procfs::read(ProcfsBase::ProcPid(u32::try_from(pid).ok()?), "stat").ok()?;
    // The command name may contain spaces and parentheses: split after the
    // last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let dead = match fields.first() {
        Some(&"X") => true,
        Some(&"Z") => !zombie_too,
        _ => false,
    };
    if dead {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn process_matches(pid: i32, start_time: u64) -> bool {
    pid > 0 && process_start_time(pid) == Some(start_time)
}

/// Every container id under the runtime root (checked first): directories
/// with a `state.json`, dot entries (the runtime's caches) left out.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    if trust::open_root(root, false)?.is_none() {
        return Ok(Vec::new());
    }
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx(|| format!("{}", root.display())),
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.path().join(STATE_FILE).exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| !id.starts_with('.'))
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_like_runc() {
        for good in ["a", "abc-1", "x_y.z+1", "0"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", ".cache", ".x", "a/b", "../x", "a b", "a\0b"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_deleted_directory_is_kept_once_reused_and_never_listed() {
        use std::os::unix::fs::MetadataExt;
        let root = std::env::temp_dir().join(format!("rootcell-spare-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let ino = |p: &Path| fs::metadata(p).map(|m| m.ino()).ok();
        let a = ContainerDir::create(&root, "a").unwrap();
        fs::write(a.path.join(STATE_FILE), "{}").unwrap();
        let kept = ino(&a.path);
        a.remove().unwrap();
        let spare = root.join(SPARE_DIR);
        assert!(!root.join("a").exists());
        assert_eq!(ino(&spare), kept, "the emptied directory is the spare");
        assert_eq!(list_ids(&root).unwrap(), Vec::<String>::new());
        // Reused: renamed into place, empty, and the spare is gone.
        let b = ContainerDir::create(&root, "b").unwrap();
        assert_eq!(ino(&b.path), kept);
        assert!(!spare.exists());
        assert_eq!(fs::read_dir(&b.path).unwrap().count(), 0);
        // An id that exists is refused, spare or not.
        let c = ContainerDir::create(&root, "c").unwrap();
        c.remove().unwrap();
        assert!(matches!(
            ContainerDir::create(&root, "b"),
            Err(Error::AlreadyExists(_))
        ));
        assert!(spare.exists(), "a failed create leaves the spare alone");
        // With a spare there already, a delete removes its directory; one
        // with something unknown in it is never kept.
        b.remove().unwrap();
        assert!(!root.join("b").exists());
        let d = ContainerDir::create(&root, "d").unwrap();
        fs::write(d.path.join("stray"), "x").unwrap();
        d.remove().unwrap();
        assert!(!root.join("d").exists());
        assert!(
            !spare.exists(),
            "d reused the spare and was removed, not kept"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_unreaped_child_has_a_start_time_even_as_a_zombie() {
        let child = match crate::process::sys::fork().unwrap() {
            crate::process::sys::Forked::Child => crate::process::sys::exit_now(0),
            crate::process::sys::Forked::Parent(pid) => pid,
        };
        // Exited, not reaped: a zombie.
        for _ in 0..1000 {
            if process_start_time(child).is_none() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(process_start_time(child), None, "a zombie is not alive");
        assert!(
            child_start_time(child).is_some(),
            "but its start time is known"
        );
        let mut status = 0;
        // SAFETY: reaps the child this test forked.
        unsafe { libc::waitpid(child, &mut status, 0) };
        assert_eq!(child_start_time(child), None, "reaped: gone");
    }

    #[test]
    fn start_time_of_self_is_known() {
        let pid = std::process::id() as i32;
        assert!(process_start_time(pid).is_some());
    }
}
