//! `rootcell sandbox` with `fuse-overlayfs` as the overlay driver (forced
//! with `ROOTCELL_SANDBOX_OVERLAY=fuse`; rootless, it is the fallback where
//! the kernel refuses an overlay): as uid 1000 (through `setpriv`, as
//! tests/sandbox_rootless.rs) and as root.
//!
//! This host's `/dev/fuse` is `crw------- root`: the test process (root,
//! in the private mount namespace the runner is started in) mounts a tmpfs
//! of its own, makes a 0666 node 10:229 in it and binds it over `/dev/fuse`
//! for its own mount namespace only (never the machine's: the test checks
//! that its mount namespace is not pid 1's first).
//!
//! Every test checks afterwards that no `fuse-overlayfs` process is left,
//! that the test process's mount table is unchanged and that no cgroup
//! named `rootcell-sandbox-*` remains. The tests run one at a time (a
//! lock): "no new fuse-overlayfs process" must not see another test's.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use common::sandbox::{assert_overlay_writes_captured, files_below, OwnedTree};
use common::{
    exec, host_mount_points, runtime_is_runc, runtime_path, CMD_TIMEOUT, UNPRIV_GID, UNPRIV_UID,
};

const FUSE_OVERLAYFS: &str = "/usr/bin/fuse-overlayfs";
/// By path: some tests run rootcell with a `PATH` of their own.
const SETPRIV: &str = "/usr/bin/setpriv";

/// Why `/dev/fuse` cannot be made usable here, or `None` once it is.
fn fuse_device() -> Option<String> {
    static DONE: OnceLock<Option<String>> = OnceLock::new();
    DONE.get_or_init(|| {
        if !in_private_mount_ns() {
            return Some("not in a private mount namespace (run under unshare --mount)".into());
        }
        if !Path::new("/dev/fuse").exists() {
            return Some("no /dev/fuse (the fuse module is not loaded)".into());
        }
        // A tmpfs of the test's own namespace, detached once the node is
        // bound: the node disappears with the namespace, no trace on disk.
        let dir = common::make_temp_dir("fuse-dev");
        let script = format!(
            "mount -t tmpfs -o mode=0755 fusedev {d} && mknod -m 0666 {d}/fuse c 10 229 && \
             mount --bind {d}/fuse /dev/fuse && umount -l {d} && rmdir {d}",
            d = dir.display()
        );
        let out = exec(Command::new("sh").args(["-c", &script]), CMD_TIMEOUT);
        if !out.ok() {
            return Some(format!("a 0666 /dev/fuse: {}", out.all()));
        }
        None
    })
    .clone()
}

/// Some ancestor of the test process (the shell that ran `unshare`) is in
/// another mount namespace: binding over `/dev/fuse` here does not touch
/// the machine's.
fn in_private_mount_ns() -> bool {
    let ns = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    let mine = ns("self");
    let mut pid = std::process::id().to_string();
    for _ in 0..64 {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let Some(ppid) = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .map(|p| p.trim().to_string())
        else {
            return false;
        };
        if ppid == "0" {
            return false;
        }
        match ns(&ppid) {
            Some(theirs) if Some(&theirs) != mine.as_ref() => return true,
            Some(_) => pid = ppid,
            None => return false,
        }
    }
    false
}

/// Skips (with the reason printed) when fuse-overlayfs cannot be tested.
macro_rules! skip_unless_fuse {
    () => {
        if runtime_is_runc() {
            common::skip("rootcell sandbox is not a runc command");
            return;
        }
        if !Path::new(FUSE_OVERLAYFS).exists() {
            common::skip("fuse-overlayfs is not installed (Debian package fuse-overlayfs)");
            return;
        }
        if let Some(why) = fuse_device() {
            common::skip(&format!("fuse: {why}"));
            return;
        }
    };
}

/// As `skip_unless_fuse!`, and the sandbox can run as uid 1000.
macro_rules! skip_unless_rootless_fuse {
    () => {
        skip_unless_fuse!();
        if !common::host_user_exists(UNPRIV_UID) {
            common::skip(&format!("no user with uid {UNPRIV_UID}"));
            return;
        }
        if let Some(why) = common::rootless_unavailable() {
            common::skip(&format!("rootless: {why}"));
            return;
        }
    };
}

/// One test at a time (the leftover checks look at every process).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pids of the `fuse-overlayfs` processes running now.
fn fuse_daemons() -> Vec<i32> {
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // Rootless, the daemon runs from a memfd (its comm is the fd
        // number): its argv[0] names it.
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        let named = comm.trim() == "fuse-overlayfs" || argv0.ends_with(b"fuse-overlayfs");
        if named && common::pid_alive(pid) {
            pids.push(pid);
        }
    }
    pids.sort();
    pids
}

/// What must be the same before and after a run.
struct Before {
    mounts: Vec<String>,
    daemons: Vec<i32>,
    cgroups: Vec<PathBuf>,
}

impl Before {
    fn take() -> Before {
        Before {
            mounts: host_mount_points(),
            daemons: fuse_daemons(),
            cgroups: common::cgroups_named("rootcell-sandbox-"),
        }
    }

    /// Nothing left: no new daemon (after a short grace: the pid
    /// namespace's end is asynchronous to rootcell's exit only in theory),
    /// the same mounts, no new cgroup.
    fn assert_nothing_left(&self, ctx: &str) {
        let daemons = common::poll(
            common::POLL_TIMEOUT,
            "fuse-overlayfs processes to end",
            || {
                let now = fuse_daemons();
                now.iter().all(|p| self.daemons.contains(p)).then_some(now)
            },
        );
        assert!(
            daemons.iter().all(|p| self.daemons.contains(p)),
            "{ctx}: fuse-overlayfs left running: {daemons:?}"
        );
        assert_eq!(host_mount_points(), self.mounts, "{ctx}: mounts changed");
        // Other tests of the machine may run sandboxes meanwhile: a new
        // cgroup counts as left only once its runtime (the pid in its
        // name, `rootcell-sandbox-<pid>-<n>`) is gone.
        let left: Vec<PathBuf> = common::cgroups_named("rootcell-sandbox-")
            .into_iter()
            .filter(|c| !self.cgroups.contains(c))
            .filter(|c| {
                let name = c.file_name().unwrap().to_string_lossy().into_owned();
                let pid = name
                    .trim_start_matches("rootcell-sandbox-")
                    .split('-')
                    .next()
                    .and_then(|p| p.parse::<i32>().ok());
                !pid.is_some_and(common::pid_alive)
            })
            .collect();
        assert!(left.is_empty(), "{ctx}: cgroups left: {left:?}");
    }
}

/// `common::sandbox::OwnedTree`: uid 1000's, or root's for a run as root.
type Tree = OwnedTree;

const FORCE_FUSE: (&str, &str) = ("ROOTCELL_SANDBOX_OVERLAY", "fuse");

/// The command runs on a fuse-overlayfs mount at `dir` (its mountinfo
/// line says so), served by daemons of the sandbox.
const SHOW_MOUNT: &str = "findmnt -n -o FSTYPE -T .";

fn overlay_write_and_read(as_root: bool) {
    let _serial = serial();
    let t = if as_root {
        Tree::owned_by("fuse-root", (0, 0))
    } else {
        Tree::new("fuse-rl")
    };
    t.make("work/kept", Some("host\n"));
    t.make("work/read-me", Some("from the host\n"));
    let before = Before::take();
    // The daemons are in the sandbox's pid namespace, but the command
    // cannot reach their root (the host's tree) or fds.
    let script = format!(
        "{SHOW_MOUNT}; cat read-me; echo new > new && echo changed > kept && mkdir -p sub && \
         echo deep > sub/f && cat kept; ps -e -o args= | grep -c '^fuse-overlayfs '; \
         for p in $(ps -e -o pid=,args= | awk '$2 == \"fuse-overlayfs\" {{print $1}}'); do \
         ls /proc/$p/root/ >/dev/null 2>&1 && echo ROOT-READABLE; \
         readlink /proc/$p/fd/1 >/dev/null 2>&1 && echo FDS-READABLE; done; true"
    );
    let out = t.run(as_root, &[FORCE_FUSE], &["--", "sh", "-c", &script]);
    out.assert_ok("an overlay write with fuse-overlayfs");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "fuse.fuse-overlayfs", "{}", out.all());
    assert_eq!(lines[1..3], ["from the host", "changed"], "{}", out.all());
    let daemons: u32 = lines[3].parse().unwrap();
    assert!(daemons >= 1, "no daemon in the sandbox: {}", out.all());
    assert!(!out.stdout.contains("READABLE"), "{}", out.all());
    // The host is unchanged, the writes are in the output directory.
    assert_overlay_writes_captured(&t, &out);
    if !as_root {
        for rel in files_below(&t.path("out")) {
            let md = fs::symlink_metadata(t.path("out").join(&rel)).unwrap();
            assert_eq!((md.uid(), md.gid()), (UNPRIV_UID, UNPRIV_GID), "{rel}");
        }
    }
    before.assert_nothing_left("after a fuse-overlayfs run");
}

#[test]
fn rootless_fuse_overlay_writes_reach_the_output_not_the_host() {
    skip_unless_rootless_fuse!();
    overlay_write_and_read(false);
}

#[test]
fn root_fuse_overlay_writes_reach_the_output_not_the_host() {
    skip_unless_fuse!();
    overlay_write_and_read(true);
}

#[test]
fn rootless_fuse_no_whiteouts_in_results_and_deleted_files_listed() {
    skip_unless_rootless_fuse!();
    let _serial = serial();
    let t = Tree::new("fuse-wh");
    t.make("work/f", Some("host\n"));
    t.make("work/gone", Some("host\n"));
    t.make("work/d/inner", Some("host\n"));
    t.make("work/d/sub/x", Some("host\n"));
    t.make("work/e/old", Some("host\n"));
    let host_before = files_below(&t.path("work"));
    let before = Before::take();
    let report = t.path("report.json");
    let out = t.run(
        false,
        &[FORCE_FUSE],
        &[
            "--json",
            report.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &format!(
                "{SHOW_MOUNT}; rm f gone && echo again > f && rm -r d && mkdir d && \
                 echo y > d/new && rm e/old && rmdir e && mkdir e && ls -A e d"
            ),
        ],
    );
    out.assert_ok("delete and recreate under fuse-overlayfs");
    assert!(
        out.stdout.starts_with("fuse.fuse-overlayfs\n"),
        "{}",
        out.all()
    );
    // What the daemon left in the upper layer is not a result (the empty
    // new `e` is no result either: only regular files are).
    let results = files_below(&t.path("out"));
    assert_eq!(results, ["d", "d/new", "f"], "{}", out.all());
    for rel in &results {
        let p = t.path("out").join(rel);
        let md = fs::symlink_metadata(&p).unwrap();
        assert!(md.is_file() || md.is_dir(), "{rel}");
        assert!(!rel.contains(".wh."), "{rel}");
        if let Ok(x) = Command::new("getfattr")
            .args(["-d", "-m", "-", "--absolute-names"])
            .arg(&p)
            .output()
        {
            let text = String::from_utf8_lossy(&x.stdout);
            assert!(
                !text.contains("overlay") && !text.contains("fuseoverlayfs"),
                "{rel}: {text}"
            );
        }
    }
    assert_eq!(fs::read_to_string(t.path("out/f")).unwrap(), "again\n");
    // The report lists the deleted host files.
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let deleted: Vec<String> = json["deleted_files"]
        .as_array()
        .unwrap_or_else(|| panic!("no deleted_files: {json}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let work = t.path("work");
    for gone in ["gone", "d", "e"] {
        let p = work.join(gone).display().to_string();
        assert!(deleted.contains(&p), "{p} not in {deleted:?}");
    }
    assert_eq!(files_below(&work), host_before, "host unchanged");
    assert_eq!(fs::read_to_string(work.join("f")).unwrap(), "host\n");
    before.assert_nothing_left("after deleting under fuse-overlayfs");
}

#[test]
fn plan_shows_the_fuse_driver() {
    skip_unless_rootless_fuse!();
    let _serial = serial();
    let t = Tree::new("fuse-plan");
    let out = t.run(false, &[FORCE_FUSE], &["--plan", "--", "true"]);
    out.assert_ok("--plan with the fuse driver");
    assert!(
        out.stdout
            .contains("driver [fuse-overlayfs /usr/bin/fuse-overlayfs]"),
        "{}",
        out.all()
    );
    let out = t.run(
        false,
        &[FORCE_FUSE],
        &["--plan", "--json", "-", "--", "true"],
    );
    out.assert_ok("--plan --json with the fuse driver");
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let overlays: Vec<&serde_json::Value> = plan["plan"]["rootfs"]["setup"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"]["kind"] == "overlay")
        .collect();
    assert!(!overlays.is_empty(), "{plan}");
    for o in &overlays {
        assert_eq!(o["kind"]["driver"]["name"], "fuse", "{o}");
        assert_eq!(o["kind"]["driver"]["program"], FUSE_OVERLAYFS, "{o}");
    }
    // Rootless without the variable: the kernel first, fuse-overlayfs
    // where it refuses. As root: the kernel only.
    let out = t.run(false, &[], &["--plan", "--", "true"]);
    out.assert_ok("--plan rootless");
    assert!(
        out.stdout
            .contains("driver [kernel overlayfs, else fuse-overlayfs"),
        "{}",
        out.all()
    );
    let out = t.run(true, &[], &["--plan", "--", "true"]);
    out.assert_ok("--plan as root");
    assert!(!out.stdout.contains("fuse-overlayfs"), "{}", out.all());
    let out = t.run(
        false,
        &[("ROOTCELL_SANDBOX_OVERLAY", "fusion")],
        &["--plan", "--", "true"],
    );
    assert_eq!(out.code(), Some(2), "{}", out.all());
    assert!(
        out.stderr.contains("ROOTCELL_SANDBOX_OVERLAY"),
        "{}",
        out.all()
    );
}

#[test]
fn missing_fuse_overlayfs_is_a_clear_error_and_leaves_nothing() {
    skip_unless_rootless_fuse!();
    let _serial = serial();
    let t = Tree::new("fuse-missing");
    let before = Before::take();
    // PATH without fuse-overlayfs: refused by the planner.
    let out = t.run(
        false,
        &[FORCE_FUSE, ("PATH", "/nonexistent")],
        &["--", "/bin/true"],
    );
    assert_eq!(out.code(), Some(2), "{}", out.all());
    assert!(
        out.stderr.contains("fuse-overlayfs") && out.stderr.contains("ROOTCELL_SANDBOX_OVERLAY"),
        "{}",
        out.all()
    );
    assert!(!t.path("out").exists());
    before.assert_nothing_left("fuse-overlayfs missing");
}

#[test]
fn a_failing_fuse_overlayfs_is_named_with_its_directory_and_leaves_nothing() {
    skip_unless_rootless_fuse!();
    let _serial = serial();
    let t = Tree::new("fuse-broken");
    // A `fuse-overlayfs` that fails at once, first in PATH: `ls`, which
    // complains about the arguments (a program, not a script: rootless,
    // the daemon is started from an execute-only copy).
    let bin = t.make("bin", None);
    let fake = bin.join("fuse-overlayfs");
    fs::copy("/bin/ls", &fake).unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&fake)
        .status()
        .unwrap();
    let before = Before::take();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let marker = t.path("work/ran");
    let out = t.run(
        false,
        &[FORCE_FUSE, ("PATH", &path)],
        &["--", "/bin/sh", "-c", "echo ran > ran"],
    );
    assert!(!out.ok(), "{}", out.all());
    for part in ["overlay of", "fuse-overlayfs", "cannot access"] {
        assert!(out.stderr.contains(part), "{part}: {}", out.all());
    }
    assert!(!marker.exists());
    before.assert_nothing_left("a failing fuse-overlayfs");
}

#[test]
fn killing_rootcell_ends_the_fuse_daemons() {
    skip_unless_rootless_fuse!();
    let _serial = serial();
    let t = Tree::new("fuse-kill");
    let work = t.make("work", None);
    let before = Before::take();
    // setpriv execs rootcell: the child is rootcell itself.
    let mut child = Command::new(SETPRIV)
        .args([
            format!("--reuid={UNPRIV_UID}"),
            format!("--regid={UNPRIV_GID}"),
            "--clear-groups".into(),
            "--".into(),
        ])
        .arg(runtime_path())
        .arg("sandbox")
        .arg("--overlay-dir")
        .arg(t.path(""))
        .arg("--output-directory")
        .arg(t.path("out"))
        .args(["--", "/bin/sh", "-c", "echo up > up; sleep 60"])
        .env(FORCE_FUSE.0, FORCE_FUSE.1)
        .current_dir(&work)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // The daemons run (as the sandbox's init's children) once the command
    // has started.
    let started = common::poll(common::POLL_TIMEOUT, "fuse-overlayfs to start", || {
        let new: Vec<i32> = fuse_daemons()
            .into_iter()
            .filter(|p| !before.daemons.contains(p))
            .collect();
        let has_sleep = fs::read_dir("/proc").unwrap().flatten().any(|e| {
            fs::read_to_string(e.path().join("cmdline"))
                .is_ok_and(|c| c.starts_with("sleep\0") || c.starts_with("/bin/sleep\0"))
        });
        (!new.is_empty() && has_sleep).then_some(new)
    });
    // Each daemon descends from the rootcell started here.
    for daemon in &started {
        let mut p = *daemon;
        let mut found = false;
        for _ in 0..16 {
            let status = fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            let Some(ppid) = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .and_then(|v| v.trim().parse::<i32>().ok())
            else {
                break;
            };
            if ppid == pid {
                found = true;
                break;
            }
            p = ppid;
        }
        assert!(found, "fuse-overlayfs {daemon} is not rootcell {pid}'s");
    }
    common::kill_pid(pid, libc::SIGKILL);
    let _ = child.wait();
    before.assert_nothing_left("rootcell killed");
}
