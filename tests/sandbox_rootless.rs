//! `rootcell sandbox` run by an unprivileged user (uid 1000 through
//! `setpriv`, as tests/rootless.rs runs the OCI face): a user namespace
//! mapping the caller to itself (or to root with `--root`), kernel
//! overlayfs with `userxattr`, the host's directories with mounts below
//! rebuilt in the staging, no cgroup (`--timelimit` through RLIMIT_CPU).
//!
//! The test runner is root, in the private mount namespace it is started
//! in; each test makes a tree owned by uid 1000 and checks that the host's
//! mount table and files outside full-access directories are unchanged.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::sandbox::{assert_overlay_writes_captured, files_below, stagings_in, OwnedTree};
use common::{chown, host_mount_points, runtime_is_runc, Out, TempDir, UNPRIV_GID, UNPRIV_UID};

/// Skips (with the reason printed) when the sandbox cannot be tested as
/// uid 1000 here.
macro_rules! skip_unless_possible {
    () => {
        if runtime_is_runc() {
            common::skip("rootcell sandbox is not a runc command");
            return;
        }
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

/// The test that mounts in the runner's namespace holds this for writing;
/// the tests that compare the mount table before and after, for reading
/// (else they would see its mounts come and go).
static MOUNT_TABLE: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn mount_table_read() -> std::sync::RwLockReadGuard<'static, ()> {
    MOUNT_TABLE.read().unwrap_or_else(|e| e.into_inner())
}

/// A tree owned by uid 1000 (`common::sandbox::OwnedTree`), run as that
/// user.
struct Tree(OwnedTree);

impl Tree {
    fn new(tag: &str) -> Tree {
        Tree(OwnedTree::new(tag))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.path(rel)
    }

    fn make(&self, rel: &str, contents: Option<&str>) -> PathBuf {
        self.0.make(rel, contents)
    }

    /// `rootcell sandbox --overlay-dir <base> ARGS` as uid 1000, in
    /// `<base>/work` (the `--dir`), results to `<base>/out`.
    fn run(&self, args: &[&str]) -> Out {
        self.0.run(false, &[], args)
    }

    /// `run` with extra environment variables for rootcell (`TMPDIR`).
    fn run_env(&self, env: &[(&str, &Path)], args: &[&str]) -> Out {
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(k, v)| (*k, v.to_str().expect("a UTF-8 test path")))
            .collect();
        self.0.run(false, &env, args)
    }
}

/// Everything below `dir` is owned by the user.
fn assert_owned_by_user(dir: &Path) {
    for rel in files_below(dir) {
        let md = fs::symlink_metadata(dir.join(&rel)).unwrap();
        assert_eq!(
            (md.uid(), md.gid()),
            (UNPRIV_UID, UNPRIV_GID),
            "{rel} in {}",
            dir.display()
        );
    }
}

#[test]
fn overlay_writes_reach_the_output_directory_not_the_host() {
    skip_unless_possible!();
    let _mounts = mount_table_read();
    let t = Tree::new("rl-overlay");
    t.make("work/kept", Some("host\n"));
    let mounts = host_mount_points();
    let out = t.run(&[
        "--",
        "sh",
        "-c",
        "echo new > new && echo changed > kept && mkdir -p sub && echo deep > sub/f && cat kept",
    ]);
    out.assert_ok("an overlay write as uid 1000");
    assert!(out.stdout.contains("changed"), "{}", out.all());
    assert_overlay_writes_captured(&t.0, &out);
    assert_owned_by_user(&t.path("out"));
    assert_eq!(host_mount_points(), mounts);
}

#[test]
fn hidden_read_only_and_full_access_directories() {
    skip_unless_possible!();
    let _mounts = mount_table_read();
    let t = Tree::new("rl-modes");
    // Below a directory of the overlay (not its top): the hidden dir's
    // place in the upper layer exists before the overlay is mounted.
    t.make("m/hid/secret", Some("secret\n"));
    t.make("m/ro/f", Some("ro\n"));
    t.make("m/fa/f", Some("fa\n"));
    let mounts = host_mount_points();
    let (hid, ro, fa) = (t.path("m/hid"), t.path("m/ro"), t.path("m/fa"));
    let script = format!(
        "ls -A {h}; echo x > {h}/made && echo hidden-writable; \
         if echo x > {r}/new 2>/dev/null; then echo ro-WRITABLE; else echo ro-refused; fi; \
         echo written > {f}/new && echo fa-ok; echo w > {m}/new && echo m-ok",
        h = hid.display(),
        r = ro.display(),
        f = fa.display(),
        m = t.path("m").display(),
    );
    let out = t.run(&[
        "--hidden-dir",
        hid.to_str().unwrap(),
        "--read-only-dir",
        ro.to_str().unwrap(),
        "--full-access-dir",
        fa.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        &script,
    ]);
    out.assert_ok("modes as uid 1000");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[..4],
        ["hidden-writable", "ro-refused", "fa-ok", "m-ok"],
        "the hidden dir is empty inside: {}",
        out.all()
    );
    assert_eq!(fs::read_to_string(hid.join("secret")).unwrap(), "secret\n");
    assert!(!hid.join("made").exists());
    assert!(!ro.join("new").exists());
    assert_eq!(fs::read_to_string(fa.join("new")).unwrap(), "written\n");
    assert_eq!(
        fs::metadata(fa.join("new")).unwrap().uid(),
        UNPRIV_UID,
        "a full-access write is the user's own"
    );
    assert_eq!(host_mount_points(), mounts);
}

#[test]
fn nested_mount_points_get_their_mode() {
    skip_unless_possible!();
    let _mounts = MOUNT_TABLE.write().unwrap_or_else(|e| e.into_inner());
    let t = Tree::new("rl-nested");
    let ro = t.make("ro", None);
    let inner = t.make("ro/inner", None);
    t.make("ro/inner/f", Some("on a tmpfs\n"));
    // A mount point below the read-only directory, made in the test
    // runner's private mount namespace: it is read-only inside too, and an
    // overlay directory with a mount below it is rebuilt for the user
    // namespace.
    let mnt = t.make("ov/mnt", None);
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "mode=0755,uid=1000,gid=1000", "rltest"])
        .arg(&inner)
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "mode=0755,uid=1000,gid=1000", "rltest"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(status.success());
    fs::write(inner.join("f"), "on a tmpfs\n").unwrap();
    fs::write(mnt.join("g"), "host\n").unwrap();
    let mounts = host_mount_points();
    let script = format!(
        "if echo x > {i}/new 2>/dev/null; then echo inner-WRITABLE; else echo inner-refused; fi; \
         cat {i}/f; echo y > {m}/new && cat {m}/new {m}/g",
        i = inner.display(),
        m = mnt.display()
    );
    let out = t.run(&[
        "--read-only-dir",
        ro.to_str().unwrap(),
        "--result-files",
        "**",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let leaked = mnt.join("new").exists();
    let _ = Command::new("umount").arg(&inner).status();
    let _ = Command::new("umount").arg(&mnt).status();
    out.assert_ok("nested mount points as uid 1000");
    assert!(
        out.stdout
            .starts_with("inner-refused\non a tmpfs\ny\nhost\n"),
        "{}",
        out.all()
    );
    assert!(
        !leaked,
        "a write in an overlaid mount point reached the host"
    );
    assert_eq!(host_mount_points().len() + 2, mounts.len());
}

#[test]
fn etc_passwd_names_the_user_and_root_with_root() {
    skip_unless_possible!();
    let t = Tree::new("rl-passwd");
    let out = t.run(&[
        "--",
        "sh",
        "-c",
        "id -u; id -g; grep -c :1000:1000: /etc/passwd",
    ]);
    out.assert_ok("as the user");
    assert!(out.stdout.starts_with("1000\n1000\n1\n"), "{}", out.all());
    let out = t.run(&[
        "--root",
        "--",
        "sh",
        "-c",
        "id -u; id -un; head -1 /etc/passwd; cat /proc/self/uid_map",
    ]);
    out.assert_ok("with --root");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "0", "{}", out.all());
    assert_eq!(lines[1], "root", "{}", out.all());
    assert!(lines[2].starts_with("root:x:0:0:"), "{}", out.all());
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["0", "1000", "1"],
        "{}",
        out.all()
    );
}

#[test]
fn timelimit_ends_a_busy_loop_without_a_cgroup() {
    skip_unless_possible!();
    let t = Tree::new("rl-time");
    let out = t.run(&["--timelimit", "1s", "--", "sh", "-c", "while :; do :; done"]);
    assert_eq!(out.code(), Some(137), "{}", out.all());
    assert!(
        out.stdout.contains("terminationreason=cputime"),
        "{}",
        out.all()
    );
    assert!(out.stderr.contains("RLIMIT_CPU"), "{}", out.all());
    // The other cgroup limits cannot be had: a usage error.
    let out = t.run(&["--memlimit", "100MB", "--", "true"]);
    assert_eq!(out.code(), Some(2), "{}", out.all());
}

#[test]
fn no_whiteouts_in_results_after_delete_and_recreate() {
    skip_unless_possible!();
    let t = Tree::new("rl-whiteout");
    t.make("work/f", Some("host\n"));
    t.make("work/gone", Some("host\n"));
    t.make("work/d/inner", Some("host\n"));
    t.make("work/d/sub/x", Some("host\n"));
    let before = files_below(&t.path("work"));
    let out = t.run(&[
        "--",
        "sh",
        "-c",
        "rm f gone && echo again > f && rm -r d && mkdir d && echo y > d/new",
    ]);
    out.assert_ok("delete and recreate as uid 1000");
    let results = files_below(&t.path("out"));
    assert_eq!(results, ["d", "d/new", "f"], "{}", out.all());
    for rel in &results {
        let p = t.path("out").join(rel);
        let md = fs::symlink_metadata(&p).unwrap();
        assert!(md.is_file() || md.is_dir(), "{rel}");
        assert!(!rel.contains(".wh."), "{rel}");
        let xattrs = Command::new("getfattr")
            .args(["-d", "-m", "-", "--absolute-names"])
            .arg(&p)
            .output();
        if let Ok(x) = xattrs {
            let text = String::from_utf8_lossy(&x.stdout);
            assert!(!text.contains("overlay"), "{rel}: {text}");
        }
    }
    assert_eq!(fs::read_to_string(t.path("out/f")).unwrap(), "again\n");
    assert_eq!(files_below(&t.path("work")), before, "host unchanged");
    assert_eq!(fs::read_to_string(t.path("work/f")).unwrap(), "host\n");
}

#[test]
fn no_tmpfs_stages_on_disk_under_tmpdir_and_removes_it() {
    skip_unless_possible!();
    let _mounts = mount_table_read();
    let t = Tree::new("rl-notmpfs");
    t.make("work/kept", Some("host\n"));
    t.make("work/gone", Some("host\n"));
    let tmpdir = TempDir::new("rl-notmpfs-tmp");
    chown(tmpdir.path(), UNPRIV_UID, UNPRIV_GID);
    let mounts = host_mount_points();
    // Deleting a lower file makes overlayfs leave a whiteout in its
    // mode-000 work directory: the on-disk staging must still be removed
    // by the unprivileged runtime. With and without --root (mapped ids).
    for extra in [&[][..], &["--root"][..]] {
        let seen = std::sync::atomic::AtomicBool::new(false);
        let out = std::thread::scope(|scope| {
            scope.spawn(|| {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                while std::time::Instant::now() < deadline {
                    if !stagings_in(tmpdir.path()).is_empty() {
                        seen.store(true, std::sync::atomic::Ordering::SeqCst);
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            });
            let mut args = vec!["--no-tmpfs"];
            args.extend_from_slice(extra);
            args.extend([
                "--",
                "sh",
                "-c",
                "echo new > new && echo changed > kept && rm gone && mkdir -p sub && \
                 echo deep > sub/f && sleep 0.5 && cat kept",
            ]);
            t.run_env(&[("TMPDIR", tmpdir.path())], &args)
        });
        out.assert_ok(&format!("--no-tmpfs {extra:?} as uid 1000"));
        assert!(out.stdout.contains("changed"), "{}", out.all());
        assert!(
            seen.load(std::sync::atomic::Ordering::SeqCst),
            "{extra:?}: no staging directory appeared under $TMPDIR: {}",
            out.all()
        );
        assert_eq!(
            stagings_in(tmpdir.path()),
            Vec::<PathBuf>::new(),
            "{extra:?}: the staging directory was left behind: {}",
            out.all()
        );
        // Writes reached the output directory, not the host.
        assert_eq!(fs::read_to_string(t.path("work/kept")).unwrap(), "host\n");
        assert_eq!(fs::read_to_string(t.path("work/gone")).unwrap(), "host\n");
        assert!(!t.path("work/new").exists());
        assert!(!t.path("work/sub").exists());
        assert_eq!(fs::read_to_string(t.path("out/new")).unwrap(), "new\n");
        assert_eq!(fs::read_to_string(t.path("out/kept")).unwrap(), "changed\n");
        assert_eq!(fs::read_to_string(t.path("out/sub/f")).unwrap(), "deep\n");
        assert!(!t.path("out/gone").exists());
        assert_owned_by_user(&t.path("out"));
        assert_eq!(host_mount_points(), mounts);
        fs::remove_dir_all(t.path("out")).unwrap();
    }
}

/// The names in a `/sys/class/net` listing, sorted.
fn net_names(listing: &str) -> Vec<String> {
    let mut v: Vec<String> = listing.split_whitespace().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn network_access_shows_the_hosts_interfaces_in_sys() {
    skip_unless_possible!();
    let _mounts = mount_table_read();
    let t = Tree::new("rl-net");
    let mut host: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    let mounts = host_mount_points();
    // A fresh sysfs cannot be mounted in a user namespace that does not
    // own the network namespace: with the host's network the planner
    // binds the host's /sys (recursively, read-only) instead.
    let script = "echo net: $(ls /sys/class/net); \
                  echo mtu: $(cat /sys/class/net/lo/mtu); \
                  echo devs: $(tail -n +3 /proc/net/dev | cut -d: -f1); \
                  if touch /sys/rootcell-probe 2>/dev/null; then echo sys: writable; \
                  else echo sys: read-only; fi";
    let out = t.run(&["--network-access", "--", "sh", "-c", script]);
    out.assert_ok("--network-access as uid 1000");
    let line = |key: &str| line_of(&out, key);
    assert_eq!(net_names(&line("net:")), host, "{}", out.all());
    assert!(host.len() > 1 || host == ["lo"], "host: {host:?}");
    assert_eq!(line("mtu:"), "65536", "/sys is readable: {}", out.all());
    assert_eq!(net_names(&line("devs:")), host, "{}", out.all());
    assert_eq!(line("sys:"), "read-only", "{}", out.all());
    // Without it: the sandbox's own network, `lo` only, in /sys too.
    let out = t.run(&["--", "sh", "-c", script]);
    out.assert_ok("own network as uid 1000");
    assert_eq!(line_of(&out, "net:"), "lo", "{}", out.all());
    assert_eq!(line_of(&out, "devs:"), "lo", "{}", out.all());
    assert_eq!(host_mount_points(), mounts);
}

fn line_of(out: &Out, key: &str) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} line: {}", out.all()))
        .trim()
        .to_string()
}
