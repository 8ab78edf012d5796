//! Helpers shared by the `rootcell sandbox` tests (tests/sandbox_*.rs):
//! what a run must leave behind (staging directories, processes), trees
//! of files, and the workloads the limit and measurement tests run.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Entries of `dir` named like a `--no-tmpfs` staging directory.
pub fn stagings_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("rootcell-sandbox-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Live processes whose environment holds `marker` (waits up to 5 s for
/// them to go).
pub fn marked_pids(marker: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<i32> = fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| String::from_utf8_lossy(&env).contains(marker))
                    .unwrap_or(false)
                    && super::pid_alive(*pid)
            })
            .collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The test process's mount table.
pub fn mountinfo() -> String {
    fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo")
}

/// Every entry below `dir`, relative, with a trailing `/` for directories
/// (symlinks are entries, never followed).
pub fn tree(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                out.insert(format!("{rel}/"));
                walk(base, &p, out);
            } else {
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

pub fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `got` is within `tolerance` (a fraction) of `want`; prints the
/// measurement either way.
#[track_caller]
pub fn assert_within(what: &str, got: f64, want: f64, tolerance: f64) {
    let error = (got - want).abs() / want;
    eprintln!(
        "MEASURED {what}: {got:.6} (want {want:.6}, error {:.2} %)",
        error * 100.0
    );
    assert!(
        error <= tolerance,
        "{what}: {got} is {:.2} % off {want} (allowed {:.1} %)",
        error * 100.0,
        tolerance * 100.0
    );
}

/// The hierarchies a run cgroup would use have a memory controller (v1,
/// or enabled at the root of a pure cgroup2 layout).
pub fn memory_controller() -> bool {
    let mounts = mountinfo();
    let v2_root = mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some("/sys/fs/cgroup") && l.contains(" - cgroup2 "));
    if v2_root {
        fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"))
    } else {
        super::cgroup_v1_controller("memory")
    }
}

// ---------------------------------------------------------------------------
// Workloads (run in a forked process or a re-executed test binary)
// ---------------------------------------------------------------------------

/// CPU time of the calling process.
pub fn own_cputime() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A few microseconds of CPU.
pub fn spin_a_bit() {
    let mut x = 0u64;
    for i in 0..10_000u64 {
        x = std::hint::black_box(x.wrapping_add(i));
    }
}

/// Fresh anonymous memory of `bytes`, every page written (exits 121 when
/// the mapping fails).
pub fn touch(bytes: usize) {
    // SAFETY: a fresh private mapping of our own, written within its size.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            libc::_exit(121);
        }
        let p = p.cast::<u8>();
        for off in (0..bytes).step_by(4096) {
            std::ptr::write_volatile(p.add(off), 1);
        }
    }
}

/// `procs` children each touch `bytes` of fresh memory and hold it until
/// all have; then all exit 0 and this returns once they are reaped.
///
/// # Safety
/// Forks: call it only in a single-threaded process (a forked workload).
pub unsafe fn touch_tree(procs: usize, bytes: usize) {
    let mut touched = [0; 2];
    let mut go = [0; 2];
    libc::pipe(touched.as_mut_ptr());
    libc::pipe(go.as_mut_ptr());
    for _ in 0..procs {
        if libc::fork() == 0 {
            libc::close(go[1]);
            touch(bytes);
            libc::write(touched[1], b"x".as_ptr().cast(), 1);
            let mut b = [0u8; 1];
            libc::read(go[0], b.as_mut_ptr().cast(), 1);
            libc::_exit(0);
        }
    }
    for _ in 0..procs {
        let mut b = [0u8; 1];
        libc::read(touched[0], b.as_mut_ptr().cast(), 1);
    }
    libc::close(go[1]);
    while libc::wait(std::ptr::null_mut()) > 0 {}
}

/// A tree for `rootcell sandbox --overlay-dir <base>` runs: `<base>/work`
/// is the working directory and results go to `<base>/out`. What `make`
/// makes belongs to `owner`: uid 1000 for runs as that user, root for runs
/// as root (whose command has no capabilities: it writes only its own
/// files). The temp base is under /tmp, which is hidden by default, hence
/// `--overlay-dir`.
pub struct OwnedTree {
    pub dir: super::TempDir,
    pub owner: (u32, u32),
}

impl OwnedTree {
    /// Owned by uid 1000.
    pub fn new(tag: &str) -> OwnedTree {
        OwnedTree::owned_by(tag, (super::UNPRIV_UID, super::UNPRIV_GID))
    }

    pub fn owned_by(tag: &str, owner: (u32, u32)) -> OwnedTree {
        let dir = super::TempDir::new(tag);
        super::chown(dir.path(), owner.0, owner.1);
        OwnedTree { dir, owner }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Makes `rel` (a directory, or a file with `contents`) and its parents
    /// below the base, owned by the tree's owner.
    pub fn make(&self, rel: &str, contents: Option<&str>) -> PathBuf {
        let p = self.path(rel);
        match contents {
            Some(text) => {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, text).unwrap();
            }
            None => fs::create_dir_all(&p).unwrap(),
        }
        let mut q = p.as_path();
        while q != self.dir.path() {
            super::chown(q, self.owner.0, self.owner.1);
            q = q.parent().unwrap();
        }
        p
    }

    /// `rootcell sandbox --overlay-dir <base> --output-directory
    /// <base>/out ARGS` in `<base>/work`, with `env` added to rootcell's
    /// environment; as uid 1000 (through setpriv) unless `as_root`.
    pub fn run(&self, as_root: bool, env: &[(&str, &str)], args: &[&str]) -> super::Out {
        let work = self.make("work", None);
        let mut c = if as_root {
            std::process::Command::new(super::runtime_path())
        } else {
            // By its path: `env` may set a PATH without it.
            let mut c = std::process::Command::new("/usr/bin/setpriv");
            c.args([
                format!("--reuid={}", super::UNPRIV_UID),
                format!("--regid={}", super::UNPRIV_GID),
                "--clear-groups".into(),
                "--".into(),
            ])
            .arg(super::runtime_path());
            c
        };
        c.arg("sandbox")
            .arg("--overlay-dir")
            .arg(self.dir.path())
            .arg("--output-directory")
            .arg(self.path("out"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(&work);
        super::exec(&mut c, super::CMD_TIMEOUT)
    }
}

/// Every file and directory below `dir`, relative, sorted.
pub fn files_below(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// After `echo new > new && echo changed > kept && mkdir -p sub && echo
/// deep > sub/f` in an overlaid `<base>/work` whose `kept` said "host":
/// the host's files are unchanged and the writes are in `<base>/out`.
pub fn assert_overlay_writes_captured(t: &OwnedTree, out: &super::Out) {
    assert_eq!(fs::read_to_string(t.path("work/kept")).unwrap(), "host\n");
    assert!(!t.path("work/new").exists());
    assert!(!t.path("work/sub").exists());
    assert_eq!(
        fs::read_to_string(t.path("out/new")).unwrap(),
        "new\n",
        "{}",
        out.all()
    );
    assert_eq!(fs::read_to_string(t.path("out/kept")).unwrap(), "changed\n");
    assert_eq!(fs::read_to_string(t.path("out/sub/f")).unwrap(), "deep\n");
}
