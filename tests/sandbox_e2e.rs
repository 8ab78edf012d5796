//! `rootcell sandbox` end to end, as root, through the CLI: result capture,
//! directory modes over nested host mount points, what the command sees
//! inside, limits and the runexec report, usage errors, and a soak.
//!
//! Every run is checked afterwards for what it must leave alone: the test
//! process's mount table, sentinel files on the host (content and mtime),
//! no cgroup named `rootcell-sandbox-<pid of that rootcell>-*` in any
//! hierarchy, no `--no-tmpfs` staging in its `TMPDIR`, and no process of
//! the run (found by a marker in their environment).
//!
//! Workloads that need exact numbers (CPU burner, a process tree touching
//! memory, a fork bomb) are this test binary itself, run inside the
//! sandbox (it sees the host's tree) with `ROOTCELL_E2E_WORK` set: see
//! `workload`.
//!
//! Tests that mount (tmpfs/proc under a temp dir, in the private mount
//! namespace the runner is started in) or count global things hold the
//! write side of `LOCK`, all others the read side, so that no mount table
//! comparison sees another test's mounts.
//!
//! `ROOTCELL_SANDBOX_SOAK_RUNS` (default 200) and
//! `ROOTCELL_SANDBOX_SOAK_PARALLEL` (default 20) size the soak.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime};

use common::sandbox::{
    assert_within, marked_pids, memory_controller, mountinfo, own_cputime, set, spin_a_bit, touch,
    touch_tree, tree,
};
use common::{cgroups_named, runtime_is_runc, runtime_path, Out, TempDir};

static LOCK: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    LOCK.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    LOCK.write().unwrap_or_else(|e| e.into_inner())
}

macro_rules! skip_unless_root_rootcell {
    () => {
        if runtime_is_runc() {
            common::skip("rootcell sandbox is not a runc command");
            return;
        }
        if !rustix::process::geteuid().is_root() {
            common::skip("these tests run the sandbox as root");
            return;
        }
    };
}

const TIMEOUT: Duration = Duration::from_secs(60);
const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------
// Workloads: this binary, inside the sandbox.
// ---------------------------------------------------------------------------

const WORK_ENV: &str = "ROOTCELL_E2E_WORK";

/// The arguments that run workload `work` (`burn:MS`, `spin`,
/// `tree:PROCS:MIB`, `touch:MIB`, `forkbomb`) inside the sandbox.
fn work(work: &str) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    vec![
        "env".into(),
        format!("{WORK_ENV}={work}"),
        exe.to_string_lossy().into_owned(),
        "--exact".into(),
        "workload".into(),
        "--test-threads=1".into(),
        "--nocapture".into(),
        "-q".into(),
    ]
}

/// Not a test of its own: the workload entry point (does nothing unless
/// `ROOTCELL_E2E_WORK` is set).
#[test]
fn workload() {
    let Ok(w) = std::env::var(WORK_ENV) else {
        return;
    };
    let parts: Vec<&str> = w.split(':').collect();
    let num = |i: usize| parts[i].parse::<u64>().unwrap();
    // SAFETY: raw fork/pipe/wait in a process that only runs this work.
    unsafe {
        match parts[0] {
            "burn" => {
                let d = Duration::from_millis(num(1));
                while own_cputime() < d {
                    spin_a_bit();
                }
            }
            "spin" => loop {
                spin_a_bit();
            },
            "touch" => {
                touch((num(1) * MIB) as usize);
                libc::pause();
            }
            "tree" => touch_tree(num(1) as usize, (num(2) * MIB) as usize),
            "forkbomb" => loop {
                libc::fork();
            },
            other => panic!("unknown workload {other}"),
        }
        libc::_exit(0);
    }
}

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

/// Every regular file below `dir`, on `dir`'s file system and on tmpfs
/// mounts below it (not into proc or sysfs).
fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            let p = e.path();
            let st = rustix::fs::statfs(&p).unwrap();
            if st.f_type == libc::PROC_SUPER_MAGIC || st.f_type == libc::SYSFS_MAGIC {
                continue;
            }
            files_below(&p, out);
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}

/// One test's host directories and what its runs must leave alone.
struct Sb {
    /// The host directory the runs work in (`--dir`, the current directory).
    work: TempDir,
    /// Output directories and reports (not a sentinel).
    out: TempDir,
    /// `TMPDIR` of rootcell (a `--no-tmpfs` staging goes there).
    tmpdir: TempDir,
    marker: String,
    mountinfo: String,
    sentinels: Vec<(PathBuf, Vec<u8>, SystemTime)>,
}

impl Sb {
    fn new(tag: &str) -> Sb {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Sb {
            work: TempDir::new(&format!("e2e-{tag}")),
            out: TempDir::new(&format!("e2e-{tag}-out")),
            tmpdir: TempDir::new(&format!("e2e-{tag}-tmp")),
            marker: format!("rootcell-sandbox-e2e-{}-{n}", std::process::id()),
            mountinfo: mountinfo(),
            sentinels: Vec::new(),
        }
    }

    fn w(&self) -> &Path {
        self.work.path()
    }

    fn ws(&self) -> String {
        self.w().to_string_lossy().into_owned()
    }

    fn o(&self, name: &str) -> String {
        self.out.path().join(name).to_string_lossy().into_owned()
    }

    /// Writes `rel` (and its parents) in the work directory.
    fn file(&self, rel: &str, content: &str) {
        let p = self.w().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    /// Takes the mount table and every file of the work directory (plus a
    /// few host files) as sentinels. Call after the test's own setup.
    fn seal(&mut self) {
        let mut files = vec![
            PathBuf::from("/etc/passwd"),
            PathBuf::from("/etc/group"),
            PathBuf::from("/etc/hostname"),
        ];
        files_below(self.w(), &mut files);
        files.retain(|p| p.exists());
        self.sentinels = files
            .into_iter()
            .map(|p| {
                let c = fs::read(&p).unwrap();
                let m = fs::symlink_metadata(&p).unwrap().modified().unwrap();
                (p, c, m)
            })
            .collect();
        self.mountinfo = mountinfo();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(runtime_path());
        cmd.arg("sandbox")
            .args(args)
            .current_dir(self.w())
            .env("TMPDIR", self.tmpdir.path())
            .env("ROOTCELL_TEST_MARKER", &self.marker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().expect("spawn rootcell sandbox")
    }

    /// Waits for `child`, collects its output and checks what it left.
    fn finish(&self, mut child: Child, what: String, timeout: Duration) -> Out {
        let pid = child.id() as i32;
        let mut so = child.stdout.take().unwrap();
        let mut se = child.stderr.take().unwrap();
        let t1 = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = so.read_to_string(&mut s);
            s
        });
        let t2 = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = se.read_to_string(&mut s);
            s
        });
        let start = Instant::now();
        let status = common::wait_child(&mut child, timeout, &what);
        let elapsed = start.elapsed();
        let out = Out {
            what: what.clone(),
            status,
            stdout: t1.join().unwrap(),
            stderr: t2.join().unwrap(),
            elapsed,
        };
        self.assert_clean(pid, &out);
        out
    }

    fn run(&self, args: &[&str]) -> Out {
        let child = self.spawn(args);
        self.finish(
            child,
            format!("rootcell sandbox {}", args.join(" ")),
            TIMEOUT,
        )
    }

    /// `rootcell sandbox ARGS -- sh -c SCRIPT`.
    fn sh(&self, args: &[&str], script: &str) -> Out {
        let mut a = args.to_vec();
        a.extend(["--", "sh", "-c", script]);
        self.run(&a)
    }

    /// `rootcell sandbox ARGS -- <workload>`.
    fn work(&self, args: &[&str], w: &str) -> Out {
        let wa = work(w);
        let mut a = args.to_vec();
        a.push("--");
        a.extend(wa.iter().map(String::as_str));
        self.run(&a)
    }

    #[track_caller]
    fn assert_clean(&self, pid: i32, out: &Out) {
        let ctx = format!(
            "after `{}`\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.what, out.stdout, out.stderr
        );
        assert_eq!(mountinfo(), self.mountinfo, "the mount table changed {ctx}");
        for (p, content, mtime) in &self.sentinels {
            assert_eq!(
                &fs::read(p).unwrap_or_default(),
                content,
                "{} changed {ctx}",
                p.display()
            );
            assert_eq!(
                &fs::symlink_metadata(p).unwrap().modified().unwrap(),
                mtime,
                "{} was touched {ctx}",
                p.display()
            );
        }
        let cgroups = cgroups_named(&format!("rootcell-sandbox-{pid}-"));
        assert!(cgroups.is_empty(), "cgroups left: {cgroups:?} {ctx}");
        let stagings: Vec<_> = fs::read_dir(self.tmpdir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(stagings.is_empty(), "left in TMPDIR: {stagings:?} {ctx}");
        let left = marked_pids(&self.marker);
        assert!(left.is_empty(), "processes {left:?} still running {ctx}");
    }
}

/// The runexec `key=value` lines of a report.
fn report(stdout: &str) -> BTreeMap<String, String> {
    const KEYS: &[&str] = &[
        "starttime",
        "terminationreason",
        "returnvalue",
        "exitcode",
        "exitsignal",
        "walltime",
        "cputime",
        "memory",
        "blkio-read",
        "blkio-write",
    ];
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| KEYS.contains(k) || k.starts_with("cputime-cpu"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn secs(r: &BTreeMap<String, String>, key: &str) -> f64 {
    r.get(key)
        .unwrap_or_else(|| panic!("no {key} in {r:?}"))
        .trim_end_matches('s')
        .parse()
        .unwrap()
}

fn bytes(r: &BTreeMap<String, String>, key: &str) -> u64 {
    r.get(key)
        .unwrap_or_else(|| panic!("no {key} in {r:?}"))
        .trim_end_matches('B')
        .parse()
        .unwrap()
}

fn json(path: &str) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Result capture through the CLI
// ---------------------------------------------------------------------------

#[test]
fn capture_a_file_written_in_the_cwd_reaches_the_output_and_not_the_host() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("cap");
    sb.file("keep", "host\n");
    sb.seal();
    let od = sb.o("o");
    let o = sb.sh(
        &["--overlay-dir", &sb.ws(), "--output-directory", &od],
        "echo new > new.txt && mkdir -p a/b && echo deep > a/b/c.txt && echo changed > keep",
    );
    o.assert_ok("capture");
    assert_eq!(
        tree(Path::new(&od)),
        set(&["a/", "a/b/", "a/b/c.txt", "keep", "new.txt"])
    );
    assert_eq!(
        fs::read_to_string(format!("{od}/a/b/c.txt")).unwrap(),
        "deep\n"
    );
    assert_eq!(
        fs::read_to_string(format!("{od}/keep")).unwrap(),
        "changed\n"
    );
    assert!(
        !sb.w().join("new.txt").exists(),
        "the write reached the host"
    );
    assert!(!sb.w().join("a").exists(), "the write reached the host");
}

#[test]
fn capture_patterns_double_star_and_absolute() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("pat");
    sb.seal();
    let script = "mkdir -p x/y z && echo 1 > x/y/a.log && echo 2 > z/b.log && echo 3 > top.log \
                  && echo 4 > x/y/a.txt && echo 5 > abs.txt";
    // Relative `**`: mirrors the working directory.
    let od = sb.o("rel");
    sb.sh(
        &[
            "--overlay-dir",
            &sb.ws(),
            "--output-directory",
            &od,
            "--result-files",
            "**/*.log",
        ],
        script,
    )
    .assert_ok("**/*.log");
    assert_eq!(
        tree(Path::new(&od)),
        set(&["top.log", "x/", "x/y/", "x/y/a.log", "z/", "z/b.log"])
    );
    // One absolute pattern: the output mirrors `/`.
    let od = sb.o("abs");
    let abs = format!("{}/abs.txt", sb.ws());
    sb.sh(
        &[
            "--overlay-dir",
            &sb.ws(),
            "--output-directory",
            &od,
            "--result-files",
            &abs,
            "--result-files",
            "x/**",
        ],
        script,
    )
    .assert_ok("absolute");
    let rel = sb.w().strip_prefix("/").unwrap();
    let files: BTreeSet<String> = tree(Path::new(&od))
        .into_iter()
        .filter(|e| !e.ends_with('/'))
        .collect();
    assert_eq!(
        files,
        set(&[
            &format!("{}/abs.txt", rel.display()),
            &format!("{}/x/y/a.log", rel.display()),
            &format!("{}/x/y/a.txt", rel.display()),
        ])
    );
    // `''`: nothing.
    let od = sb.o("none");
    sb.sh(
        &[
            "--overlay-dir",
            &sb.ws(),
            "--output-directory",
            &od,
            "--result-files",
            "",
        ],
        script,
    )
    .assert_ok("empty pattern");
    assert_eq!(tree(Path::new(&od)), BTreeSet::new());
}

#[test]
fn capture_deletions_are_listed_and_overlay_artefacts_never_copied() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("del");
    sb.file("gone", "host\n");
    sb.file("again", "host\n");
    sb.file("sub/old", "host\n");
    sb.file("sub/deeper/x", "host\n");
    sb.file("h/secret", "host\n");
    sb.seal();
    let od = sb.o("o");
    let js = sb.o("r.json");
    let hidden = format!("{}/h", sb.ws());
    let o = sb.sh(
        &[
            "--overlay-dir",
            &sb.ws(),
            "--hidden-dir",
            &hidden,
            "--output-directory",
            &od,
            "--result-files",
            "**",
            "--json",
            &js,
        ],
        "rm gone && rm again && echo new > again && rm -rf sub && mkdir sub && echo new > sub/new \
         && ln -s /etc/shadow planted && test ! -e h/secret && echo res > h/res.txt",
    );
    o.assert_ok("delete and recreate");
    assert_eq!(
        tree(Path::new(&od)),
        set(&["again", "h/", "h/res.txt", "sub/", "sub/new"]),
        "{}",
        o.stderr
    );
    // No whiteout, opaque marker or xattr in the output.
    for e in tree(Path::new(&od)) {
        let p = Path::new(&od).join(e.trim_end_matches('/'));
        let md = fs::symlink_metadata(&p).unwrap();
        assert!(md.is_file() || md.is_dir(), "{} is neither", p.display());
        let mut buf = vec![0u8; 4096];
        let n = rustix::fs::llistxattr(&p, &mut buf).unwrap();
        assert_eq!(n, 0, "{} has xattrs: {:?}", p.display(), &buf[..n]);
    }
    let r = json(&js);
    let deleted: BTreeSet<String> = strs(&r["deleted_files"]).into_iter().collect();
    let w = sb.ws();
    for want in [format!("{w}/gone"), format!("{w}/sub")] {
        assert!(deleted.contains(&want), "{want} not in {deleted:?}");
    }
    assert!(
        deleted.iter().all(|d| !d.contains(".wh.")),
        "whiteout names: {deleted:?}"
    );
    let notes = strs(&r["notes"]);
    assert!(
        notes
            .iter()
            .any(|n| n.contains(&format!("{w}/planted")) && n.contains("symlink")),
        "no note about the planted symlink: {notes:?}"
    );
    assert!(!Path::new(&od).join("planted").exists());
    let result_files: BTreeSet<String> = strs(&r["result_files"]).into_iter().collect();
    assert_eq!(result_files, set(&["again", "h/res.txt", "sub/new"]));
    // The host is as it was (sentinels), the hidden file too.
    assert!(sb.w().join("gone").exists() && sb.w().join("sub/old").exists());
}

#[test]
fn files_count_and_size_limits_end_the_command() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("flim");
    sb.seal();
    for tmpfs in [true, false] {
        let mut base = vec!["--overlay-dir".to_string(), sb.ws()];
        base.extend([
            "--output-directory".into(),
            sb.o("o"),
            "--result-files".into(),
            "".into(),
        ]);
        if !tmpfs {
            base.push("--no-tmpfs".into());
        }
        let b: Vec<&str> = base.iter().map(String::as_str).collect();
        let mut a = b.clone();
        a.extend(["--filesCountLimit", "20", "--walltimelimit", "20s"]);
        let o = sb.sh(&a, "i=0; while :; do echo x > f$i; i=$((i+1)); done");
        let r = report(&o.stdout);
        assert_eq!(
            r.get("terminationreason").map(String::as_str),
            Some("files-count"),
            "tmpfs={tmpfs}: {o:?}"
        );
        let mut a = b.clone();
        a.extend(["--filesSizeLimit", "1MB", "--walltimelimit", "20s"]);
        let o = sb.sh(
            &a,
            "while :; do dd if=/dev/zero bs=64k count=1 2>/dev/null; done > big",
        );
        let r = report(&o.stdout);
        assert_eq!(
            r.get("terminationreason").map(String::as_str),
            Some("files-size"),
            "tmpfs={tmpfs}: {o:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Directory modes over nested host mount points
// ---------------------------------------------------------------------------

fn mount(args: &[&str]) {
    common::exec(Command::new("mount").args(args), common::CMD_TIMEOUT).assert_ok("mount");
}

fn umount(p: &Path) {
    let _ = Command::new("umount").arg("-l").arg(p).status();
}

#[test]
fn modes_are_inherited_by_mount_points_below_and_the_most_specific_wins() {
    skip_unless_root_rootcell!();
    let _g = exclusive();
    let mut sb = Sb::new("modes");
    let w = sb.w().to_path_buf();
    for d in ["ro/m1", "ro/m2", "ov/m3", "ov/p", "ov/s"] {
        fs::create_dir_all(w.join(d)).unwrap();
    }
    let m = |d: &str| w.join(d).to_string_lossy().into_owned();
    mount(&["-t", "tmpfs", "e2e1", &m("ro/m1")]);
    fs::create_dir(w.join("ro/m1/deep")).unwrap();
    mount(&["-t", "tmpfs", "e2e2", &m("ro/m1/deep")]);
    mount(&["-t", "tmpfs", "e2e3", &m("ro/m2")]);
    mount(&["-t", "tmpfs", "e2e4", &m("ov/m3")]);
    mount(&["-t", "proc", "proc", &m("ov/p")]);
    mount(&["-t", "sysfs", "sysfs", &m("ov/s")]);
    for f in ["ro/f", "ro/m1/f", "ro/m1/deep/f", "ro/m2/f", "ov/m3/f"] {
        fs::write(w.join(f), "host\n").unwrap();
    }
    sb.seal();
    let cleanup = || {
        for d in ["ov/s", "ov/p", "ov/m3", "ro/m2", "ro/m1/deep", "ro/m1"] {
            umount(&w.join(d));
        }
    };
    /// Unmounts when the test panics, before the work directory goes.
    struct Unmount<F: Fn()>(F);
    impl<F: Fn()> Drop for Unmount<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let _unmount = Unmount(cleanup);
    let script = format!(
        "cd {w}; for d in ro ro/m1 ro/m1/deep ro/m2 ov ov/m3 ov/p ov/s; do \
           if (echo in > $d/new) 2>/dev/null; then echo \"$d=rw\"; else echo \"$d=ro\"; fi; done; \
         cat ro/m1/deep/f ov/m3/f",
        w = w.display()
    );
    let o = sb.sh(
        &[
            "--read-only-dir",
            &m("ro"),
            "--full-access-dir",
            &m("ro/m1/deep"),
            "--overlay-dir",
            &m("ov"),
            "--output-directory",
            &sb.o("o"),
            "--result-files",
            "",
        ],
        &script,
    );
    let seen: BTreeMap<String, String> = o
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("ro") || k.starts_with("ov"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let host_new = w.join("ro/m1/deep/new").exists();
    let host_m3 = w.join("ov/m3/new").exists();
    let _ = fs::remove_file(w.join("ro/m1/deep/new"));
    o.assert_ok("modes");
    let want: BTreeMap<String, String> = [
        ("ro", "ro"),
        ("ro/m1", "ro"),
        ("ro/m1/deep", "rw"),
        ("ro/m2", "ro"),
        ("ov", "rw"),
        ("ov/m3", "rw"),
        ("ov/p", "ro"),
        ("ov/s", "ro"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seen, want, "{o:?}");
    assert!(host_new, "a full-access write did not reach the host");
    assert!(!host_m3, "an overlay write reached the host");
    for (d, fs_) in [("ov/p", "proc"), ("ov/s", "sysfs")] {
        let note = format!("{}: {fs_}", m(d));
        let n = o.stderr.lines().filter(|l| l.contains(&note)).count();
        assert_eq!(n, 1, "want one note `{note}...`: {}", o.stderr);
        assert!(
            o.stderr.contains("read-only instead of overlay"),
            "{}",
            o.stderr
        );
    }
}

// ---------------------------------------------------------------------------
// Inside the sandbox
// ---------------------------------------------------------------------------

/// `KEY=value` lines a script printed (`@KEY=value`).
fn marks(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix('@'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn inside_system_files_home_cwd_env_and_devices() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("inside");
    sb.seal();
    let mut cmd_args = vec!["--overlay-dir".to_string(), sb.ws()];
    cmd_args.extend(["--output-directory".into(), sb.o("o")]);
    let a: Vec<&str> = cmd_args.iter().map(String::as_str).collect();
    let script = r#"
        echo "@passwd=$(tr '\n' '|' < /etc/passwd)"
        echo "@group=$(tr '\n' '|' < /etc/group)"
        echo "@hostname_file=$(cat /etc/hostname)"
        echo "@hostname=$(hostname)"
        echo "@home=$HOME"
        echo "@home_entries=$(ls -A "$HOME" | wc -l)"
        touch "$HOME/x" && echo "@home_writable=yes"
        echo "@pwd=$(pwd)"
        echo "@env=$E2E_VAR"
        test -c /dev/null && echo x > /dev/null && echo "@devnull=$(wc -c < /dev/null)"
        echo shm > /dev/shm/f && echo "@shm=$(cat /dev/shm/f)"
    "#;
    let mut c = sb.command(&a);
    c.args(["--", "sh", "-c", script])
        .env("E2E_VAR", "kept value");
    let child = c.spawn().unwrap();
    let o = sb.finish(child, "inside".into(), TIMEOUT);
    o.assert_ok("inside");
    let m = marks(&o.stdout);
    let passwd = &m["passwd"];
    assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
    assert!(passwd.contains("nobody:x:65534:65534:"), "{passwd}");
    let host_passwd = fs::read_to_string("/etc/passwd").unwrap();
    assert!(host_passwd.lines().count() > 2);
    assert!(
        passwd.split('|').filter(|l| !l.is_empty()).count() <= 3,
        "{passwd}"
    );
    assert!(m["group"].starts_with("root:x:0:"), "{}", m["group"]);
    assert!(m["group"].contains(":65534:"), "{}", m["group"]);
    assert_eq!(m["hostname_file"], "sandbox");
    assert_eq!(m["hostname"], "sandbox");
    // HOME is the user's home in the generated passwd, fresh and writable.
    let home = &m["home"];
    assert!(
        passwd.contains(&format!(":{home}:")),
        "HOME {home} is not root's home in {passwd}"
    );
    assert_eq!(m["home_entries"], "0");
    assert_eq!(m.get("home_writable").map(String::as_str), Some("yes"));
    assert_eq!(m["pwd"], sb.ws());
    assert_eq!(m["env"], "kept value");
    assert_eq!(m["devnull"], "0");
    assert_eq!(m["shm"], "shm");
}

fn ip_links(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("@link="))
        .map(|l| l["@link=".len()..].to_string())
        .collect()
}

#[test]
fn inside_network_only_lo_unless_network_access() {
    skip_unless_root_rootcell!();
    if !common::command_exists("ip") {
        return common::skip("no `ip` command");
    }
    let _g = shared();
    let mut sb = Sb::new("net");
    sb.seal();
    let script = "ip -o link | sed 's/^/@link=/'";
    let o = sb.sh(&["--output-directory", &sb.o("o")], script);
    o.assert_ok("ip link");
    let links = ip_links(&o.stdout);
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(links[0].contains(": lo: "), "{links:?}");
    assert!(links[0].contains(",UP"), "lo is not up: {links:?}");
    let host = common::exec(Command::new("ip").args(["-o", "link"]), common::CMD_TIMEOUT);
    let host_names: Vec<String> = host
        .stdout
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(str::to_string))
        .collect();
    let o = sb.sh(
        &["--network-access", "--output-directory", &sb.o("o")],
        script,
    );
    o.assert_ok("ip link with --network-access");
    let names: Vec<String> = ip_links(&o.stdout)
        .iter()
        .filter_map(|l| l.split(": ").nth(1).map(str::to_string))
        .collect();
    assert_eq!(names, host_names);
}

#[test]
fn inside_keep_system_config_and_keep_tmp() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("keep");
    let probe = PathBuf::from(format!("/tmp/rootcell-e2e-keep-tmp-{}", std::process::id()));
    fs::write(&probe, "host tmp\n").unwrap();
    // Removed however the test ends (a failed assertion left it behind).
    struct RemoveOnDrop<'a>(&'a Path);
    impl Drop for RemoveOnDrop<'_> {
        fn drop(&mut self) {
            let _ = fs::remove_file(self.0);
        }
    }
    let _remove = RemoveOnDrop(&probe);
    sb.seal();
    let od = sb.o("o");
    let script = format!(
        "echo \"@passwd=$(md5sum < /etc/passwd)\"; echo \"@hostname=$(hostname)\"; \
         if test -e {p}; then echo @tmp=host; else echo @tmp=hidden; fi",
        p = probe.display()
    );
    let host_md5 = common::exec(
        Command::new("sh").args(["-c", "md5sum < /etc/passwd"]),
        common::CMD_TIMEOUT,
    )
    .stdout
    .trim()
    .to_string();
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let o = sb.sh(&["--output-directory", &od], &script);
    let _ = fs::remove_file(&probe).map(|_| fs::write(&probe, "host tmp\n"));
    let m = marks(&o.stdout);
    assert_ne!(m["passwd"], host_md5);
    assert_eq!(m["tmp"], "hidden", "{o:?}");
    let o = sb.sh(
        &["--output-directory", &od, "--keep-system-config"],
        &script,
    );
    let m = marks(&o.stdout);
    assert_eq!(m["passwd"], host_md5, "{o:?}");
    assert_eq!(m["hostname"], host_name);
    let o = sb.sh(&["--output-directory", &od, "--keep-tmp"], &script);
    let m = marks(&o.stdout);
    assert_eq!(m["tmp"], "host", "{o:?}");
}

// ---------------------------------------------------------------------------
// Limits and the report
// ---------------------------------------------------------------------------

fn limit_args(sb: &Sb, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        "--output-directory".to_string(),
        sb.o("o"),
        "--result-files".into(),
        "".into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn strs_ref(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn limit_memlimit_ends_a_hog_with_reason_memory() {
    skip_unless_root_rootcell!();
    if !memory_controller() {
        return common::skip("no memory cgroup controller");
    }
    let _g = shared();
    let mut sb = Sb::new("mem");
    sb.seal();
    let a = limit_args(&sb, &["--memlimit", "100MB", "--walltimelimit", "30s"]);
    let o = sb.work(&strs_ref(&a), "touch:400");
    let r = report(&o.stdout);
    assert_eq!(
        r.get("terminationreason").map(String::as_str),
        Some("memory"),
        "{o:?}"
    );
    assert_eq!(r.get("exitsignal").map(String::as_str), Some("9"), "{o:?}");
    assert_eq!(o.code(), Some(128 + 9));
    let peak = bytes(&r, "memory");
    eprintln!("MEASURED peak at --memlimit 100MB: {peak}");
    assert!(peak <= 100_000_000 && peak > 50_000_000, "{r:?}");
}

#[test]
fn limit_timelimit_ends_a_busy_loop_with_reason_cputime() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("cpu");
    sb.seal();
    let a = limit_args(&sb, &["--timelimit", "1s", "--walltimelimit", "30s"]);
    let o = sb.work(&strs_ref(&a), "spin");
    let r = report(&o.stdout);
    assert_eq!(
        r.get("terminationreason").map(String::as_str),
        Some("cputime"),
        "{o:?}"
    );
    assert_eq!(o.code(), Some(128 + 9));
    let cpu = secs(&r, "cputime");
    eprintln!("MEASURED cputime at --timelimit 1s: {cpu}");
    // Enforcement, not accounting (the 1 s burner test checks that within
    // 3 %): not before the limit, and the endless loop was stopped. The
    // overshoot grows with the host's load: a generous ceiling.
    assert!((1.0..2.0).contains(&cpu), "{r:?}");
}

#[test]
fn limit_walltimelimit_ends_a_sleep_with_reason_walltime() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("wall");
    sb.seal();
    let a = limit_args(&sb, &["--walltimelimit", "1s"]);
    let mut a = strs_ref(&a);
    a.extend(["--", "sleep", "120"]);
    let o = sb.run(&a);
    let r = report(&o.stdout);
    assert_eq!(
        r.get("terminationreason").map(String::as_str),
        Some("walltime"),
        "{o:?}"
    );
    let wall = secs(&r, "walltime");
    eprintln!("MEASURED walltime at --walltimelimit 1s: {wall}");
    // Not before the limit; the upper bounds leave room for a loaded host
    // and still prove the sleep (120 s) was cut short, not waited out.
    assert!((1.0..10.0).contains(&wall), "{r:?}");
    assert!(o.elapsed < Duration::from_secs(30), "{o:?}");
}

#[test]
fn limit_softtimelimit_sends_sigterm_with_reason_cputime_soft() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("soft");
    sb.seal();
    let a = limit_args(&sb, &["--softtimelimit", "1s", "--walltimelimit", "30s"]);
    let mut a = strs_ref(&a);
    // The command cleans up on SIGTERM and exits 42.
    a.extend(["--", "sh", "-c", "trap 'exit 42' TERM; while :; do :; done"]);
    let o = sb.run(&a);
    let r = report(&o.stdout);
    assert_eq!(
        r.get("terminationreason").map(String::as_str),
        Some("cputime-soft"),
        "{o:?}"
    );
    assert_eq!(r.get("exitcode").map(String::as_str), Some("42"), "{o:?}");
    assert_eq!(o.code(), Some(42));
    assert!(secs(&r, "cputime") >= 1.0, "{r:?}");
}

#[test]
fn limit_fork_bomb_ends_at_the_limits_and_nothing_is_left() {
    skip_unless_root_rootcell!();
    if !memory_controller() {
        return common::skip("no memory cgroup controller");
    }
    let _g = exclusive();
    let mut sb = Sb::new("bomb");
    sb.seal();
    let a = limit_args(
        &sb,
        &[
            "--memlimit",
            "200MB",
            "--timelimit",
            "2s",
            "--walltimelimit",
            "10s",
        ],
    );
    let o = sb.work(&strs_ref(&a), "forkbomb");
    let r = report(&o.stdout);
    let reason = r.get("terminationreason").cloned().unwrap_or_default();
    eprintln!("MEASURED fork bomb: {r:?}");
    assert!(
        ["memory", "cputime", "walltime"].contains(&reason.as_str()),
        "{o:?}"
    );
    assert!(o.elapsed < Duration::from_secs(30), "{o:?}");
}

#[test]
fn measure_cputime_of_a_1s_burner_within_3_percent() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("burn");
    sb.seal();
    let a = limit_args(&sb, &[]);
    let o = sb.work(&strs_ref(&a), "burn:1000");
    o.assert_ok("burner");
    let r = report(&o.stdout);
    assert_eq!(r.get("exitcode").map(String::as_str), Some("0"));
    assert_within("cputime of a 1 s burner", secs(&r, "cputime"), 1.0, 0.03);
    let per_cpu: f64 = r
        .iter()
        .filter(|(k, _)| k.starts_with("cputime-cpu"))
        .map(|(k, _)| secs(&r, k))
        .sum();
    if per_cpu > 0.0 {
        assert_within("sum of cputime-cpuN", per_cpu, secs(&r, "cputime"), 0.001);
    }
}

#[test]
fn measure_memory_of_a_200mb_process_tree_within_5_percent() {
    skip_unless_root_rootcell!();
    if !memory_controller() {
        return common::skip("no memory cgroup controller");
    }
    let _g = shared();
    let mut sb = Sb::new("tree");
    sb.seal();
    let a = limit_args(&sb, &[]);
    let o = sb.work(&strs_ref(&a), "tree:2:100");
    o.assert_ok("tree");
    let r = report(&o.stdout);
    assert_within(
        "memory of two processes touching 100 MiB each",
        bytes(&r, "memory") as f64,
        (200 * MIB) as f64,
        0.05,
    );
}

#[test]
fn exit_signal_and_exit_code_128_plus_n() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("sig");
    sb.seal();
    let a = limit_args(&sb, &[]);
    let mut a1 = strs_ref(&a);
    a1.extend(["--", "sh", "-c", "kill -USR1 $$"]);
    let o = sb.run(&a1);
    let r = report(&o.stdout);
    assert_eq!(r.get("exitsignal").map(String::as_str), Some("10"), "{o:?}");
    assert!(
        !r.contains_key("exitcode") && !r.contains_key("terminationreason"),
        "{r:?}"
    );
    assert_eq!(o.code(), Some(128 + 10));
    let mut a2 = strs_ref(&a);
    a2.extend(["--", "sh", "-c", "exit 7"]);
    let o = sb.run(&a2);
    let r = report(&o.stdout);
    assert_eq!(r.get("returnvalue").map(String::as_str), Some("7"), "{o:?}");
    assert_eq!(r.get("exitcode").map(String::as_str), Some("7"), "{o:?}");
    assert_eq!(o.code(), Some(7));
}

fn wait_for_file(p: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.exists() {
        assert!(
            Instant::now() < deadline,
            "{what}: {} never appeared",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn signals_to_rootcell_are_forwarded_and_a_second_one_kills() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("fwd");
    sb.seal();
    let a = limit_args(
        &sb,
        &["--full-access-dir", &sb.ws(), "--walltimelimit", "30s"],
    );
    for (sig, name) in [
        (libc::SIGINT, "INT"),
        (libc::SIGTERM, "TERM"),
        (libc::SIGHUP, "HUP"),
    ] {
        let ready = sb.w().join(format!("ready-{name}"));
        let got = sb.w().join(format!("got-{name}"));
        let script = format!(
            "trap 'echo {name} > {got}; exit 3' {name}; echo > {ready}; while :; do sleep 0.05; done",
            got = got.display(),
            ready = ready.display()
        );
        let mut args = strs_ref(&a);
        args.extend(["--", "sh", "-c", &script]);
        let child = sb.spawn(&args);
        wait_for_file(&ready, name);
        common::kill_pid(child.id() as i32, sig);
        let o = sb.finish(child, format!("SIG{name}"), TIMEOUT);
        assert_eq!(o.code(), Some(3), "SIG{name}: {o:?}");
        assert_eq!(fs::read_to_string(&got).unwrap(), format!("{name}\n"));
    }
    // A command that ignores the first: the second kills everything.
    let ready = sb.w().join("ready-twice");
    let got = sb.w().join("got-twice");
    let script = format!(
        "trap 'echo once >> {got}' TERM; echo > {ready}; while :; do sleep 0.05; done",
        got = got.display(),
        ready = ready.display()
    );
    let mut args = strs_ref(&a);
    args.extend(["--", "sh", "-c", &script]);
    let child = sb.spawn(&args);
    wait_for_file(&ready, "twice");
    common::kill_pid(child.id() as i32, libc::SIGTERM);
    wait_for_file(&got, "first SIGTERM handled");
    common::kill_pid(child.id() as i32, libc::SIGTERM);
    let o = sb.finish(child, "SIGTERM twice".into(), TIMEOUT);
    let r = report(&o.stdout);
    assert_eq!(
        r.get("terminationreason").map(String::as_str),
        Some("killed"),
        "{o:?}"
    );
    assert_eq!(o.code(), Some(128 + 9), "{o:?}");
}

// ---------------------------------------------------------------------------
// Bad input: exit 2 naming the flag, nothing left
// ---------------------------------------------------------------------------

#[test]
fn bad_input_exits_2_naming_the_flag_and_leaves_nothing() {
    skip_unless_root_rootcell!();
    let _g = exclusive();
    let mut sb = Sb::new("bad");
    fs::create_dir(sb.w().join("hid")).unwrap();
    fs::create_dir(sb.w().join("ro")).unwrap();
    sb.seal();
    let w = sb.ws();
    let cpus = common::usable_cpus();
    let missing_cpu = (0..1024).find(|c| !cpus.contains(c)).unwrap().to_string();
    // An output directory that cannot be written: a read-only bind.
    let ro = format!("{w}/ro");
    let hid = format!("{w}/hid");
    let missing = format!("{w}/missing");
    let under_hidden = format!("{w}/hid/not-on-host");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--read-only-dir", &missing], "--read-only-dir"),
        (vec!["--overlay-dir", &missing], "--overlay-dir"),
        (
            vec!["--read-only-dir", &w, "--overlay-dir", &w],
            "--overlay-dir",
        ),
        (
            vec!["--hidden-dir", &hid, "--full-access-dir", &under_hidden],
            "--full-access-dir",
        ),
        (vec!["--cores", &missing_cpu], "--cores"),
        (
            vec!["--output-directory", "/proc/self/new"],
            "--output-directory",
        ),
        (vec!["--memlimit", "12XB"], "--memlimit"),
        (vec!["--memlimit", "lots"], "--memlimit"),
        (vec!["--timelimit", "1x"], "--timelimit"),
        (vec!["--walltimelimit", "soon"], "--walltimelimit"),
        (vec!["--softtimelimit", "1..5"], "--softtimelimit"),
        (vec!["--filesSizeLimit", "1QB"], "--filesSizeLimit"),
        (vec!["--filesCountLimit", "many"], "--filesCountLimit"),
        (vec!["--result-files", "../x"], "--result-files"),
    ];
    let _ = ro;
    for (args, flag) in cases {
        let mut a = args.clone();
        a.extend(["--", "touch", "/should-not-run"]);
        let o = sb.run(&a);
        assert_eq!(o.code(), Some(2), "{args:?}: {o:?}");
        assert!(
            o.stderr.contains(flag),
            "{args:?}: stderr does not name {flag}: {}",
            o.stderr
        );
        assert!(o.stdout.is_empty(), "{args:?}: a report was printed: {o:?}");
    }
    assert!(!Path::new(&under_hidden).exists());
    assert!(!Path::new("/should-not-run").exists());
}

#[test]
fn bad_input_unwritable_output_directory() {
    skip_unless_root_rootcell!();
    let _g = exclusive();
    let mut sb = Sb::new("badout");
    let ro = sb.w().join("ro");
    fs::create_dir(&ro).unwrap();
    mount(&["-t", "tmpfs", "-o", "ro", "e2ero", &ro.to_string_lossy()]);
    sb.seal();
    let od = format!("{}/out", ro.display());
    let o = sb.run(&["--output-directory", &od, "--", "true"]);
    umount(&ro);
    assert_eq!(o.code(), Some(2), "{o:?}");
    assert!(o.stderr.contains("--output-directory"), "{}", o.stderr);
}

// ---------------------------------------------------------------------------
// Soak
// ---------------------------------------------------------------------------

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Children of this process (zombies included: a leaked zombie is a leak).
fn children() -> Vec<i32> {
    let me = std::process::id().to_string();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(") ")
                        .and_then(|(_, rest)| rest.split(' ').nth(1).map(|p| p == me))
                })
                .unwrap_or(false)
        })
        .collect()
}

fn tmp_entries() -> usize {
    fs::read_dir(std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into()))
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("rootcell-sandbox-")
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn soak_sequential_and_parallel_runs_leave_nothing() {
    skip_unless_root_rootcell!();
    let _g = exclusive();
    let runs = env_count("ROOTCELL_SANDBOX_SOAK_RUNS", 200);
    let parallel = env_count("ROOTCELL_SANDBOX_SOAK_PARALLEL", 20);
    let mut sb = Sb::new("soak");
    sb.seal();
    let before = (mountinfo(), children().len(), tmp_entries());
    let all_cgroups_before = cgroups_named("rootcell-sandbox-").len();
    let start = Instant::now();
    for i in 0..runs {
        let o = sb.run(&["--output-directory", &sb.o("o"), "--", "true"]);
        assert!(o.ok(), "run {i}: {o:?}");
    }
    let seq = start.elapsed();
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..parallel)
            .map(|i| {
                let sb = &sb;
                s.spawn(move || {
                    let od = sb.o(&format!("p{i}"));
                    let child = sb.spawn(&["--output-directory", &od, "--", "true"]);
                    let pid = child.id() as i32;
                    let mut child = child;
                    let st = common::wait_child(&mut child, TIMEOUT, "parallel run");
                    (pid, st)
                })
            })
            .collect();
        for h in handles {
            let (pid, st) = h.join().unwrap();
            assert!(st.success(), "parallel run {pid}: {st:?}");
            let left = cgroups_named(&format!("rootcell-sandbox-{pid}-"));
            assert!(left.is_empty(), "{left:?}");
        }
    });
    let par = start.elapsed();
    eprintln!(
        "MEASURED soak: {runs} sequential runs in {seq:?} ({:?} each), {parallel} parallel in {par:?}",
        seq / runs.max(1) as u32
    );
    let after = (mountinfo(), children().len(), tmp_entries());
    assert_eq!(after.0, before.0, "mounts changed");
    assert_eq!(after.1, before.1, "children left");
    assert_eq!(after.2, before.2, "temp entries left");
    assert!(marked_pids(&sb.marker).is_empty());
    eprintln!(
        "rootcell-sandbox-* cgroups on the machine: {all_cgroups_before} before, {} after \
         (other sessions may run sandboxes meanwhile)",
        cgroups_named("rootcell-sandbox-").len()
    );
    // The output directory is not the point here.
    let _ = fs::set_permissions(sb.out.path(), fs::Permissions::from_mode(0o755));
}

#[test]
fn max_output_size_shortens_the_output_file_keeping_start_and_end() {
    skip_unless_root_rootcell!();
    let _g = shared();
    let mut sb = Sb::new("maxout");
    sb.seal();
    let log = sb.o("log");
    let a = limit_args(&sb, &["--output", &log, "--maxOutputSize", "1000"]);
    let mut a = strs_ref(&a);
    a.extend([
        "--",
        "sh",
        "-c",
        "echo FIRST; i=0; while [ $i -lt 20000 ]; do echo middle; i=$((i+1)); done; echo LAST",
    ]);
    let o = sb.run(&a);
    o.assert_ok("maxOutputSize");
    let text = fs::read_to_string(&log).unwrap();
    eprintln!("MEASURED --maxOutputSize 1000: {} bytes kept", text.len());
    assert!(text.len() < 2000, "{} bytes", text.len());
    assert!(text.starts_with("FIRST\n"), "{text}");
    assert!(text.trim_end().ends_with("LAST"), "{text}");
    assert!(
        text.contains("SOME LINES IN THE MIDDLE WERE REMOVED"),
        "{text}"
    );
    // The command's output is not on rootcell's stdout, the report is.
    assert!(!o.stdout.contains("middle"), "{o:?}");
    assert_eq!(
        report(&o.stdout).get("exitcode").map(String::as_str),
        Some("0")
    );
}

/// A rootcell killed with SIGKILL cannot remove its run cgroup; the
/// sandbox dies with it (PR_SET_PDEATHSIG), and the next run removes the
/// empty cgroup whose owner is gone.
#[test]
fn a_killed_rootcell_leaves_a_cgroup_the_next_run_removes() {
    skip_unless_root_rootcell!();
    let _g = exclusive();
    let mut sb = Sb::new("killed");
    sb.seal();
    let ready = sb.w().join("ready");
    let script = format!("echo > {}; exec sleep 30", ready.display());
    let mut child = sb.spawn(&["--full-access-dir", &sb.ws(), "--", "sh", "-c", &script]);
    wait_for_file(&ready, "the sandboxed command");
    let pid = child.id() as i32;
    common::kill_pid(pid, libc::SIGKILL);
    let _ = child.wait();
    let prefix = format!("rootcell-sandbox-{pid}-");
    // The sandbox's processes go with rootcell.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marked_pids(&sb.marker).is_empty() {
        assert!(Instant::now() < deadline, "the sandbox outlived rootcell");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stale = cgroups_named(&prefix);
    assert!(
        !stale.is_empty(),
        "expected the killed run's cgroup to be left (else this test proves nothing)"
    );
    // The killed processes leave their cgroups when the kernel has ended
    // them (an init not yet reaped by its new parent still counts on a
    // loaded machine): the sweep removes cgroups that are empty.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stale.iter().any(|d| {
        fs::read_to_string(d.join("cgroup.procs")).is_ok_and(|procs| !procs.trim().is_empty())
    }) {
        assert!(
            Instant::now() < deadline,
            "the killed run's cgroup never emptied: {stale:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = sb.run(&["--", "true"]);
    assert_eq!(o.code(), Some(0), "{o:?}");
    let left = cgroups_named(&prefix);
    assert!(left.is_empty(), "stale cgroups not removed: {left:?}");
}
