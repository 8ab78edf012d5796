//! Result-file capture of `rootcell sandbox`, through the library
//! (`rootcell::sandbox::capture`): what reaches `--output-directory` from
//! the staging's `upper/` tree, what is listed as deleted, and what never
//! leaves it.
//!
//! - synthetic upper trees with every overlay artefact (0:0 whiteouts,
//!   opaque directories, `.wh.*` markers, overlay xattrs), symlinks,
//!   devices, fifos and sockets;
//! - a real overlayfs (a tmpfs staging in this test's temp dir, a lower
//!   directory of sentinel files) changed through the overlay, then
//!   captured from its upper directory;
//! - a thread swapping directories and files of the upper tree for
//!   symlinks to a host directory of secrets while capture runs, many times;
//! - BenchExec's `--result-files` rules (`**`, relative to `--dir`,
//!   absolute, `..` refused) and the `--output-directory` refusals;
//! - the usage probe of `--filesCountLimit`/`--filesSizeLimit`.
//!
//! Every test checks afterwards that the test process's mount table and
//! the sentinel files outside the upper tree are unchanged. Tests that
//! mount (in the private mount namespace the suite runs in) hold `SERIAL`,
//! and so do all others, since they compare the mount table.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use common::sandbox::{mountinfo, set, tree};
use common::*;
use rootcell::sandbox::capture::{
    capture, capture_into, check_output_dir, usage, Capture, OutputDir, ResultFiles, UsageProbe,
};
use rootcell::Error;
use rustix::fs::{mknodat, openat, FileType, Mode, OFlags, XattrFlags, CWD};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The mount table and a set of sentinel files (content and mtime), taken
/// before a test and compared after it.
struct HostView {
    mountinfo: String,
    sentinels: Vec<(PathBuf, Vec<u8>, SystemTime)>,
}

impl HostView {
    fn take(sentinels: &[PathBuf]) -> HostView {
        HostView {
            mountinfo: mountinfo(),
            sentinels: sentinels
                .iter()
                .map(|p| {
                    (
                        p.clone(),
                        fs::read(p).unwrap(),
                        fs::symlink_metadata(p).unwrap().modified().unwrap(),
                    )
                })
                .collect(),
        }
    }

    fn assert_unchanged(&self) {
        assert_eq!(mountinfo(), self.mountinfo, "the mount table changed");
        for (p, content, mtime) in &self.sentinels {
            assert_eq!(&fs::read(p).unwrap(), content, "{} changed", p.display());
            assert_eq!(
                &fs::symlink_metadata(p).unwrap().modified().unwrap(),
                mtime,
                "{} was touched",
                p.display()
            );
        }
    }
}

fn o_path(p: &Path) -> OwnedFd {
    openat(
        CWD,
        p,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
}

fn sh(cmd: &str) {
    let out = exec(Command::new("sh").args(["-c", cmd]), CMD_TIMEOUT);
    out.assert_ok(cmd);
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn rf(patterns: &[&str], wd: &str) -> ResultFiles {
    ResultFiles::new(&strings(patterns), Path::new(wd)).expect("valid patterns")
}

fn paths(v: &[&str]) -> Vec<PathBuf> {
    v.iter().map(PathBuf::from).collect()
}

/// Asserts every file below `out` is a plain regular file or directory
/// without xattrs, and none is an overlay marker.
fn assert_only_plain_files(out: &Path) {
    for rel in tree(out) {
        let p = out.join(rel.trim_end_matches('/'));
        let meta = fs::symlink_metadata(&p).unwrap();
        assert!(
            meta.is_file() || meta.is_dir(),
            "{} is neither a file nor a directory",
            p.display()
        );
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with(".wh."), "overlay marker {}", p.display());
        let mut buf = [0u8; 1024];
        let n = rustix::fs::llistxattr(&p, &mut buf[..]).unwrap();
        assert_eq!(
            n,
            0,
            "{} has xattrs: {:?}",
            p.display(),
            String::from_utf8_lossy(&buf[..n])
        );
    }
}

fn whiteout(p: &Path) {
    mknodat(
        CWD,
        p,
        FileType::CharacterDevice,
        Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .unwrap_or_else(|e| panic!("mknod {}: {e}", p.display()));
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(p, name, value, XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", p.display()));
}

fn expect_usage(result: Result<impl std::fmt::Debug, Error>, flag: &str) -> String {
    match result {
        Err(Error::Usage { flag: f, reason }) => {
            assert_eq!(f, flag, "{reason}");
            reason
        }
        other => panic!("expected a usage error naming {flag}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// (a) synthetic upper trees
// ---------------------------------------------------------------------------

#[test]
fn overlay_artefacts_links_and_devices_never_reach_the_output() {
    let _serial = serial();
    if !is_root() {
        return skip("needs root (mknod of whiteouts, trusted.* xattrs)");
    }
    let t = TempDir::new("cap-art");
    let host = t.path().join("host-sentinel");
    write_file(&host, "host file\n");
    let view = HostView::take(std::slice::from_ref(&host));

    let upper = t.path().join("upper");
    let wd = upper.join("wd");
    write_file(&wd.join("new.txt"), "new\n");
    write_file(&wd.join("sub/deep.txt"), "deep\n");
    fs::set_permissions(wd.join("sub/deep.txt"), fs::Permissions::from_mode(0o4751)).unwrap();
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(wd.join("sub/deep.txt"))
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    // Kernel overlayfs: a 0:0 whiteout and an opaque directory.
    whiteout(&wd.join("gone.txt"));
    write_file(&wd.join("redo/fresh"), "fresh\n");
    set_xattr(&wd.join("redo"), "trusted.overlay.opaque", b"y");
    write_file(&wd.join("userns/made"), "made\n");
    set_xattr(&wd.join("userns"), "user.overlay.opaque", b"y");
    // Overlay and user xattrs on a copied file are not copied.
    write_file(&wd.join("xattrs"), "x\n");
    set_xattr(&wd.join("xattrs"), "trusted.overlay.origin", b"\0\x01");
    set_xattr(&wd.join("xattrs"), "user.note", b"hello");
    // fuse-overlayfs/aufs markers.
    write_file(&wd.join(".wh.old"), "");
    write_file(&wd.join("fuse/.wh..wh..opq"), "");
    write_file(&wd.join("fuse/kept"), "kept\n");
    // Not regular files.
    symlink("/etc/shadow", wd.join("link")).unwrap();
    symlink(&host, wd.join("hostlink")).unwrap();
    sh(&format!("mkfifo {}", wd.join("fifo").display()));
    mknodat(
        CWD,
        wd.join("null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(wd.join("sock")).unwrap();
    // Outside the working directory: not selected by `.`, but the whiteout
    // there is still a deletion.
    write_file(&upper.join("etc/other"), "other\n");
    whiteout(&upper.join("etc/removed"));

    let out = t.path().join("out");
    let c = capture(o_path(&upper).as_fd(), &rf(&["."], "/wd"), &out).unwrap();

    assert_eq!(
        c.files,
        paths(&[
            "fuse/kept",
            "new.txt",
            "redo/fresh",
            "sub/deep.txt",
            "userns/made",
            "xattrs"
        ])
    );
    assert_eq!(
        c.deleted,
        paths(&[
            "/etc/removed",
            "/wd/fuse",
            "/wd/gone.txt",
            "/wd/old",
            "/wd/redo",
            "/wd/userns"
        ])
    );
    assert_eq!(
        tree(&out),
        set(&[
            "fuse/",
            "fuse/kept",
            "new.txt",
            "redo/",
            "redo/fresh",
            "sub/",
            "sub/deep.txt",
            "userns/",
            "userns/made",
            "xattrs"
        ])
    );
    assert_only_plain_files(&out);
    for (name, kind) in [
        ("link", "a symlink"),
        ("hostlink", "a symlink"),
        ("fifo", "a fifo"),
        ("null", "a character device"),
        ("sock", "a socket"),
    ] {
        let line = format!("/wd/{name}: {kind}, not copied");
        assert!(c.notes.contains(&line), "no note {line:?} in {:?}", c.notes);
    }
    assert_eq!(c.notes.len(), 5, "{:?}", c.notes);
    // Content, permission bits only (no setuid), mtime kept.
    let deep = fs::metadata(out.join("sub/deep.txt")).unwrap();
    assert_eq!(read_file(&out.join("sub/deep.txt")), "deep\n");
    assert_eq!(deep.mode() & 0o7777, 0o751);
    assert_eq!(deep.modified().unwrap(), mtime);
    view.assert_unchanged();
}

#[test]
fn notes_are_bounded_and_summarised() {
    let _serial = serial();
    let t = TempDir::new("cap-notes");
    let upper = t.path().join("upper");
    fs::create_dir_all(upper.join("wd")).unwrap();
    for i in 0..100 {
        symlink("/etc/passwd", upper.join(format!("wd/l{i:03}"))).unwrap();
    }
    let c = capture(
        o_path(&upper).as_fd(),
        &rf(&["."], "/wd"),
        &t.path().join("out"),
    )
    .unwrap();
    assert!(c.files.is_empty());
    assert_eq!(c.notes.len(), 21, "{:?}", c.notes);
    assert_eq!(c.notes[20], "... and 80 more entries not copied");
    assert!(
        !t.path().join("out").exists(),
        "no output directory without a result file"
    );
}

#[test]
fn sparse_and_large_files_copy_exactly() {
    let _serial = serial();
    let t = TempDir::new("cap-sparse");
    let upper = t.path().join("upper");
    let wd = upper.join("wd");
    fs::create_dir_all(&wd).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 253) as u8).collect();
    fs::write(wd.join("big"), &big).unwrap();
    let f = fs::File::create(wd.join("sparse")).unwrap();
    f.set_len(1 << 40).unwrap(); // 1 TiB of hole
    drop(f);
    fs::write(wd.join("empty"), "").unwrap();
    let out = t.path().join("out");
    let c = capture(o_path(&upper).as_fd(), &rf(&["."], "/wd"), &out).unwrap();
    assert_eq!(c.files, paths(&["big", "empty", "sparse"]));
    assert_eq!(fs::read(out.join("big")).unwrap(), big);
    let sparse = fs::metadata(out.join("sparse")).unwrap();
    assert_eq!(sparse.len(), 1 << 40);
    assert!(
        sparse.blocks() < 64,
        "holes written out: {} blocks",
        sparse.blocks()
    );
    assert_eq!(fs::metadata(out.join("empty")).unwrap().len(), 0);
}

// ---------------------------------------------------------------------------
// (b) a real overlayfs
// ---------------------------------------------------------------------------

#[test]
fn real_overlay_upper_yields_only_new_and_changed_regular_files() {
    let _serial = serial();
    if !is_root() {
        return skip("needs root to mount an overlay");
    }
    if !read_file(Path::new("/proc/filesystems")).contains("overlay") {
        return skip("no overlayfs in this kernel");
    }
    let t = TempDir::new("cap-ovl");
    let lower = t.path().join("lower");
    for (p, content) in [
        ("f1", "lower f1\n"),
        ("keep", "lower keep\n"),
        ("untouched", "lower untouched\n"),
        ("d1/g", "lower d1/g\n"),
        ("d2/sub/h", "lower d2/sub/h\n"),
        ("d3/i", "lower d3/i\n"),
    ] {
        write_file(&lower.join(p), content);
    }
    let sentinels: Vec<PathBuf> = ["f1", "keep", "untouched", "d1/g", "d2/sub/h", "d3/i"]
        .iter()
        .map(|p| lower.join(p))
        .collect();
    let view = HostView::take(&sentinels);

    // The staging as the sandbox lays it out: upper/<container path> and
    // work/<container path> on one tmpfs; the overlay is for `/wd`.
    let staging = t.path().join("staging");
    let merged = t.path().join("merged");
    fs::create_dir_all(&staging).unwrap();
    fs::create_dir_all(&merged).unwrap();
    sh(&format!(
        "mount -t tmpfs -o mode=0700 staging {}",
        staging.display()
    ));
    let result = std::panic::catch_unwind(|| {
        fs::create_dir_all(staging.join("upper/wd")).unwrap();
        fs::create_dir_all(staging.join("work/wd")).unwrap();
        sh(&format!(
            "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {}",
            lower.display(),
            staging.join("upper/wd").display(),
            staging.join("work/wd").display(),
            merged.display()
        ));
        let m = |p: &str| merged.join(p);
        fs::remove_file(m("f1")).unwrap();
        fs::remove_dir_all(m("d1")).unwrap();
        fs::create_dir(m("d1")).unwrap();
        write_file(&m("d1/n"), "new in recreated d1\n");
        fs::remove_dir_all(m("d3")).unwrap();
        write_file(&m("newdir/y"), "new y\n");
        // A directory of the lower layer renamed: without redirect_dir
        // `mv` copies it (EXDEV), with it the kernel renames in place.
        sh(&format!(
            "mv {} {}",
            m("d2").display(),
            m("d2moved").display()
        ));
        write_file(&m("keep"), "changed keep\n");
        write_file(&m("tmpfile"), "short-lived\n");
        fs::remove_file(m("tmpfile")).unwrap();
        write_file(&m("private"), "mode 640\n");
        fs::set_permissions(m("private"), fs::Permissions::from_mode(0o640)).unwrap();
        symlink("/etc/shadow", m("shadow-link")).unwrap();
        sh(&format!("mkfifo {}", m("fifo").display()));
        sh(&format!("umount {}", merged.display()));

        let out = t.path().join("out");
        let upper = o_path(&staging.join("upper"));
        let c = capture(upper.as_fd(), &rf(&["."], "/wd"), &out).unwrap();
        (c, tree(&out), out)
    });
    let umounted = Command::new("umount").arg(&staging).status();
    let (c, out_tree, out) = result.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert!(umounted.unwrap().success(), "umount the staging");

    let redirect = read_file(Path::new("/sys/module/overlay/parameters/redirect_dir"));
    let mut files = vec!["d1/n", "keep", "newdir/y", "private"];
    if redirect.trim() == "N" {
        files.push("d2moved/sub/h");
    }
    files.sort();
    assert_eq!(c.files, paths(&files), "notes: {:?}", c.notes);
    // f1 and d3 removed, d1 removed and made anew, d2 moved away; the
    // short-lived new file left no trace.
    if redirect.trim() == "N" {
        assert_eq!(c.deleted, paths(&["/wd/d1", "/wd/d2", "/wd/d3", "/wd/f1"]));
    } else {
        for d in ["/wd/f1", "/wd/d1", "/wd/d3", "/wd/d2"] {
            assert!(
                c.deleted.contains(&PathBuf::from(d)),
                "{d}: {:?}",
                c.deleted
            );
        }
    }
    assert!(c
        .notes
        .contains(&"/wd/shadow-link: a symlink, not copied".to_string()));
    assert!(c
        .notes
        .contains(&"/wd/fifo: a fifo, not copied".to_string()));
    assert!(!out_tree.iter().any(|p| p.contains(".wh.")), "{out_tree:?}");
    assert!(!out_tree.contains("f1") && !out_tree.contains("untouched"));
    assert_only_plain_files(&out);
    assert_eq!(read_file(&out.join("keep")), "changed keep\n");
    assert_eq!(read_file(&out.join("d1/n")), "new in recreated d1\n");
    assert_eq!(
        fs::metadata(out.join("private")).unwrap().mode() & 0o777,
        0o640
    );
    view.assert_unchanged();
}

// ---------------------------------------------------------------------------
// (c) a symlink race in the upper tree
// ---------------------------------------------------------------------------

#[test]
fn symlink_race_in_the_upper_copies_nothing_from_outside() {
    race_on_a_tmpfs("", false);
}

/// The staging tmpfs is `nodev`: capture then opens files directly
/// (`O_NOFOLLOW|O_NONBLOCK`) instead of `O_PATH` + reopen. The same race,
/// plus `wd/file` swapped for a fifo and for a device node: the capture
/// neither blocks on the fifo nor reads the device. (Whether a capture
/// meets the fifo is up to the race: without `O_NONBLOCK` this test hung
/// in one of two runs.)
#[test]
fn symlink_fifo_and_device_race_on_a_nodev_staging_copies_nothing_from_outside() {
    if !is_root() {
        return skip("needs root (a nodev tmpfs, mknod)");
    }
    race_on_a_tmpfs("-o nodev", true);
}

fn race_on_a_tmpfs(options: &str, special_files: bool) {
    let _serial = serial();
    let dir = TempDir::new("cap-race");
    let before = mountinfo();
    // On a tmpfs, like the staging (and fast: the swapper spins on renames).
    let mounted = is_root();
    if mounted {
        sh(&format!(
            "mount -t tmpfs {options} tmpfs {}",
            dir.path().display()
        ));
    }
    let result = std::panic::catch_unwind(|| race(dir.path(), special_files));
    if mounted {
        sh(&format!("umount {}", dir.path().display()));
    }
    result.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert_eq!(mountinfo(), before, "the mount table changed");
}

/// The swapping thread, stopped and joined when dropped (also when an
/// assertion fails, so that the tmpfs can be unmounted).
struct Swapper(Arc<AtomicBool>, Option<std::thread::JoinHandle<u64>>);

impl Swapper {
    fn stop(&mut self) -> u64 {
        self.0.store(true, Ordering::Relaxed);
        self.1.take().map(|h| h.join().unwrap_or(0)).unwrap_or(0)
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop();
    }
}

fn race(t: &Path, special_files: bool) {
    // The host's secrets, next to the upper tree.
    let secret = t.join("secret");
    for i in 0..5 {
        write_file(&secret.join(format!("secret-{i}")), "SECRET\n");
    }
    write_file(&secret.join("sub/secret-deep"), "SECRET\n");
    let secret_file = t.join("secret.txt");
    write_file(&secret_file, "SECRET\n");
    let mut sentinels: Vec<PathBuf> = (0..5).map(|i| secret.join(format!("secret-{i}"))).collect();
    sentinels.push(secret_file.clone());
    let view = HostView::take(&sentinels);

    let upper = t.join("upper");
    let wd = upper.join("wd");
    for d in ["a", "b/c"] {
        for i in 0..20 {
            write_file(&wd.join(format!("{d}/f{i}")), "ok\n");
        }
    }
    write_file(&wd.join("file"), "ok\n");

    // Swaps, in a tight loop: the directories `wd/a` and `wd/b/c` (and
    // `wd` itself) for symlinks to the secret directory, `wd/file` for one
    // to the secret file, and back.
    let stop = Arc::new(AtomicBool::new(false));
    let mut swapper = Swapper(stop.clone(), None);
    swapper.1 = Some({
        let stop = stop.clone();
        let upper = upper.clone();
        let secret = secret.clone();
        let secret_file = secret_file.clone();
        std::thread::spawn(move || {
            let swaps: [(PathBuf, &Path); 4] = [
                (upper.join("wd/a"), &secret),
                (upper.join("wd/b/c"), &secret),
                (upper.join("wd/file"), &secret_file),
                (upper.join("wd"), &secret),
            ];
            let mut rounds = 0u64;
            let file = upper.join("wd/file");
            while !stop.load(Ordering::Relaxed) {
                for (path, target) in &swaps {
                    let away = path.with_extension("away");
                    if fs::rename(path, &away).is_ok() {
                        let _ = symlink(target, path);
                        std::hint::spin_loop();
                        let _ = fs::remove_file(path);
                        let _ = fs::rename(&away, path);
                    }
                }
                if special_files {
                    // A fifo (opening it for reading would block) and
                    // /dev/zero's node (reading it never ends).
                    let away = file.with_extension("away");
                    for (kind, dev) in [
                        (FileType::Fifo, rustix::fs::makedev(0, 0)),
                        (FileType::CharacterDevice, rustix::fs::makedev(1, 5)),
                    ] {
                        if fs::rename(&file, &away).is_ok() {
                            let _ = mknodat(CWD, &file, kind, Mode::from_raw_mode(0o666), dev);
                            std::hint::spin_loop();
                            let _ = fs::remove_file(&file);
                            let _ = fs::rename(&away, &file);
                        }
                    }
                }
                rounds += 1;
            }
            rounds
        })
    });

    let mut raced = 0;
    let mut copied = 0;
    for round in 0..300 {
        let out = t.join(format!("out{}", round % 2));
        let _ = fs::remove_dir_all(&out);
        let c: Capture = capture(o_path(&upper).as_fd(), &rf(&["/"], "/wd"), &out).unwrap();
        copied += c.files.len();
        if c.notes
            .iter()
            .any(|n| n.contains("symlink") || n.contains("changed during capture"))
        {
            raced += 1;
        }
        for rel in tree(&out) {
            assert!(!rel.contains("secret"), "round {round}: {rel} copied");
            let p = out.join(rel.trim_end_matches('/'));
            if p.is_file() {
                assert_eq!(
                    read_file(&p),
                    "ok\n",
                    "round {round}: {} copied",
                    p.display()
                );
            }
        }
        for f in &c.files {
            assert!(!f.to_string_lossy().contains("secret"), "{f:?}");
        }
    }
    let rounds = swapper.stop();
    eprintln!("race: {rounds} swap rounds, {raced} captures saw a swap, {copied} files copied");
    assert!(
        raced > 0,
        "the swapper never raced a capture ({rounds} rounds)"
    );
    assert!(
        copied > 0,
        "nothing was ever copied: the test proves nothing"
    );
    view.assert_unchanged();
    assert_eq!(
        tree(&secret),
        set(&[
            "secret-0",
            "secret-1",
            "secret-2",
            "secret-3",
            "secret-4",
            "sub/",
            "sub/secret-deep"
        ])
    );
}

// ---------------------------------------------------------------------------
// (d) pattern semantics
// ---------------------------------------------------------------------------

/// An upper tree with files in and out of the working directory `/wd`.
fn pattern_tree(t: &Path) -> PathBuf {
    let upper = t.join("upper");
    for p in [
        "wd/a.c",
        "wd/x/y/z.c",
        "wd/x/y/z.h",
        "wd/.hidden/h.c",
        "wd/.d.c",
        "wd/out/.dot",
        "wd/out/f",
        "wd/notes.txt",
        "tmp/t.log",
        "tmp/deeper/u.log",
        "etc/conf",
        "etc/hosts",
    ] {
        write_file(&upper.join(p), p);
    }
    upper
}

#[test]
fn patterns_select_like_benchexec() {
    let _serial = serial();
    let t = TempDir::new("cap-pat");
    let upper = pattern_tree(t.path());
    let fd = o_path(&upper);
    let run = |patterns: &[&str], n: usize| -> (Capture, BTreeSet<String>) {
        let out = t.path().join(format!("out{n}"));
        let c = capture(fd.as_fd(), &rf(patterns, "/wd"), &out).unwrap();
        let got = tree(&out);
        for f in &c.files {
            assert!(got.contains(&f.to_string_lossy().into_owned()), "{f:?}");
        }
        (c, got)
    };

    // `**` and `*` skip dot files and dot directories, as Python's glob.
    let (c, _) = run(&["**/*.c"], 0);
    assert_eq!(c.files, paths(&["a.c", "x/y/z.c"]));

    // A matched directory brings everything below it, dot files included.
    let (c, _) = run(&["out"], 1);
    assert_eq!(c.files, paths(&["out/.dot", "out/f"]));

    // The default `.`: everything below `--dir`, relative to it.
    let (c, _) = run(&["."], 2);
    assert_eq!(
        c.files,
        paths(&[
            ".d.c",
            ".hidden/h.c",
            "a.c",
            "notes.txt",
            "out/.dot",
            "out/f",
            "x/y/z.c",
            "x/y/z.h"
        ])
    );

    // One absolute pattern: the output tree starts at `/`.
    let (c, _) = run(&["/tmp/*.log", "a.c"], 3);
    assert_eq!(c.files, paths(&["tmp/t.log", "wd/a.c"]));
    let (c, _) = run(&["/tmp/**/*.log"], 4);
    assert_eq!(c.files, paths(&["tmp/deeper/u.log", "tmp/t.log"]));
    // The files the sandbox generates are never results (BenchExec's
    // rule), nor what the planner excludes.
    let (c, _) = run(&["/"], 5);
    assert_eq!(c.files.len(), 11);
    assert!(!c.files.contains(&PathBuf::from("etc/hosts")));
    let mut excluding = rf(&["/etc"], "/wd");
    excluding.exclude.push(PathBuf::from("/etc/conf"));
    let c = capture(fd.as_fd(), &excluding, &t.path().join("out-excl")).unwrap();
    assert!(c.files.is_empty(), "{:?}", c.files);

    // Alternatives and `?`, `[...]`.
    let (c, _) = run(&["x/y/z.{c,h}", "?otes.tx[a-z]"], 6);
    assert_eq!(c.files, paths(&["notes.txt", "x/y/z.c", "x/y/z.h"]));

    // The empty pattern disables capture: no output directory at all.
    let (c, got) = run(&[""], 7);
    assert!(c.files.is_empty() && got.is_empty());
    assert!(!t.path().join("out7").exists());

    // `..` leaving `--dir` (or `/`) is refused before anything runs.
    for bad in ["..", "../etc", "x/../../etc", "/../etc"] {
        let reason = expect_usage(
            ResultFiles::new(&strings(&[bad]), Path::new("/wd")),
            "--result-files",
        );
        assert!(reason.contains(bad), "{reason}");
    }
    // `..` inside the tree is fine.
    let (c, _) = run(&["x/y/../y/z.h"], 8);
    assert_eq!(c.files, paths(&["x/y/z.h"]));
    assert_eq!(
        rootcell::sandbox::capture::absolute_patterns(
            &strings(&["x/../a.c", "/tmp"]),
            Path::new("/wd")
        )
        .unwrap(),
        paths(&["/wd/a.c", "/tmp"])
    );
}

// ---------------------------------------------------------------------------
// (e) the output directory
// ---------------------------------------------------------------------------

#[test]
fn output_directory_refusals() {
    let _serial = serial();
    let t = TempDir::new("cap-out");
    let view = HostView::take(&[]);
    let file = t.path().join("a-file");
    write_file(&file, "x");

    let reason = expect_usage(check_output_dir(&file), "--output-directory");
    assert!(reason.contains("not a directory"), "{reason}");
    let reason = expect_usage(check_output_dir(&file.join("sub")), "--output-directory");
    assert!(reason.contains("not a directory"), "{reason}");
    expect_usage(check_output_dir(Path::new("")), "--output-directory");
    // Missing directories are fine (made later), and not made by the check.
    let missing = t.path().join("new/deeper/out");
    check_output_dir(&missing).unwrap();
    assert!(!t.path().join("new").exists());
    check_output_dir(t.path()).unwrap();

    let upper = pattern_tree(t.path());
    let fd = o_path(&upper);
    // capture itself refuses a file as the output directory.
    expect_usage(
        capture(fd.as_fd(), &rf(&["a.c"], "/wd"), &file),
        "--output-directory",
    );
    assert_eq!(read_file(&file), "x");

    // A missing output directory is made, parents included.
    let c = capture(fd.as_fd(), &rf(&["a.c"], "/wd"), &missing).unwrap();
    assert_eq!(c.files, paths(&["a.c"]));
    assert_eq!(read_file(&missing.join("a.c")), "wd/a.c");

    // An existing file in the output directory is replaced; a symlink
    // planted where a directory goes is not followed.
    let out = t.path().join("out");
    let elsewhere = t.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::create_dir_all(&out).unwrap();
    write_file(&out.join("a.c"), "old");
    symlink(&elsewhere, out.join("x")).unwrap();
    symlink(&file, out.join("notes.txt")).unwrap();
    let c = capture(fd.as_fd(), &rf(&["."], "/wd"), &out).unwrap();
    assert_eq!(read_file(&out.join("a.c")), "wd/a.c");
    assert_eq!(read_file(&out.join("notes.txt")), "wd/notes.txt");
    assert!(fs::symlink_metadata(out.join("notes.txt"))
        .unwrap()
        .is_file());
    assert_eq!(read_file(&file), "x", "the symlink's target was written");
    assert!(tree(&elsewhere).is_empty(), "{:?}", tree(&elsewhere));
    assert!(
        c.notes.iter().any(|n| n.contains("not a directory")),
        "{:?}",
        c.notes
    );
    assert!(!c.files.contains(&PathBuf::from("x/y/z.c")));

    // Opened before the command runs: a symlink planted at the output
    // directory's path afterwards (by a command that can write there)
    // redirects nothing.
    let planted = t.path().join("planted-out");
    let opened = OutputDir::open(&planted).unwrap();
    fs::rename(&planted, t.path().join("planted-away")).unwrap();
    symlink(&elsewhere, &planted).unwrap();
    let c = capture_into(fd.as_fd(), &rf(&["a.c"], "/wd"), &opened).unwrap();
    assert_eq!(c.files, paths(&["a.c"]));
    assert_eq!(read_file(&t.path().join("planted-away/a.c")), "wd/a.c");
    assert!(tree(&elsewhere).is_empty(), "{:?}", tree(&elsewhere));
    opened.remove_if_empty();
    assert!(fs::symlink_metadata(&planted).unwrap().is_symlink());
    // Made and left empty: removed again, parents included; a directory
    // that existed stays.
    let fresh = t.path().join("fresh/out");
    let opened = OutputDir::open(&fresh).unwrap();
    assert!(fresh.is_dir());
    let c = capture_into(fd.as_fd(), &rf(&["nothing-matches"], "/wd"), &opened).unwrap();
    assert!(c.files.is_empty());
    opened.remove_if_empty();
    assert!(!t.path().join("fresh").exists());
    OutputDir::open(&out).unwrap().remove_if_empty();
    assert!(out.join("a.c").exists());
    expect_usage(OutputDir::open(&file), "--output-directory");

    if is_root() {
        // A read-only place is refused up front.
        let ro = t.path().join("ro");
        fs::create_dir_all(&ro).unwrap();
        sh(&format!("mount -t tmpfs -o ro tmpfs {}", ro.display()));
        let r1 = check_output_dir(&ro.join("out"));
        let r2 = check_output_dir(&ro);
        sh(&format!("umount {}", ro.display()));
        let reason = expect_usage(r1, "--output-directory");
        assert!(reason.contains("cannot write"), "{reason}");
        expect_usage(r2, "--output-directory");
    }
    view.assert_unchanged();
}

// ---------------------------------------------------------------------------
// usage probe
// ---------------------------------------------------------------------------

#[test]
fn usage_counts_what_the_command_wrote() {
    let _serial = serial();
    if !is_root() {
        return skip("needs root to mount a tmpfs staging");
    }
    let t = TempDir::new("cap-usage");
    let view = HostView::take(&[]);
    let staging = t.path().join("staging");
    fs::create_dir_all(&staging).unwrap();
    sh(&format!(
        "mount -t tmpfs -o mode=0700 staging {}",
        staging.display()
    ));
    let result = std::panic::catch_unwind(|| {
        // The layout's own entries: work dirs, generated files, the root
        // where the sandbox's root is assembled, with a mount on it.
        for d in ["upper/wd", "work/wd/work", "files", "root"] {
            fs::create_dir_all(staging.join(d)).unwrap();
        }
        write_file(&staging.join("files/passwd"), &"x".repeat(5000));
        sh(&format!(
            "mount --bind /usr {}",
            staging.join("root").display()
        ));
        let fd = o_path(&staging);
        let empty = usage(fd.as_fd()).unwrap();
        let probe = UsageProbe::new(fd.as_fd()).unwrap();
        // What the command writes: 3 files of 10000 bytes, a directory.
        for i in 0..3 {
            write_file(
                &staging.join(format!("upper/wd/d/f{i}")),
                &"y".repeat(10_000),
            );
        }
        let now = usage(fd.as_fd()).unwrap();
        let since = probe.usage().unwrap();
        sh(&format!("umount {}", staging.join("root").display()));
        (empty, now, since)
    });
    let umounted = Command::new("umount").arg(&staging).status();
    let (empty, now, since) = result.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert!(umounted.unwrap().success());
    let page = 4096u64;
    let file_bytes = 10_000u64.div_ceil(page) * page;
    // Only `upper/wd` (the layout's) before the command.
    assert_eq!(empty, (1, 0));
    assert_eq!(now, (1 + 4, 3 * file_bytes));
    assert_eq!(since, (4, 3 * file_bytes));

    // A directory staging (--no-tmpfs): BenchExec's count, regular files
    // and their sizes.
    let dir = t.path().join("dirstaging");
    for i in 0..3 {
        write_file(&dir.join(format!("upper/wd/d/f{i}")), &"y".repeat(1000));
    }
    symlink("/etc/passwd", dir.join("upper/wd/link")).unwrap();
    write_file(&dir.join("work/x"), "not counted");
    let fd = o_path(&dir);
    assert_eq!(usage(fd.as_fd()).unwrap(), (3, 3000));
    let missing = t.path().join("nothing");
    fs::create_dir_all(&missing).unwrap();
    assert_eq!(usage(o_path(&missing).as_fd()).unwrap(), (0, 0));
    view.assert_unchanged();
}

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn deep_and_wide_trees_are_bounded_and_leak_no_fds() {
    let _serial = serial();
    let t = TempDir::new("cap-deep");
    let upper = t.path().join("upper");
    // 210 nested directories below the working directory, a file at levels
    // 100 and 210; 3000 files in a directory no pattern selects.
    let mut deep = upper.join("wd");
    for level in 1..=210 {
        deep.push("d");
        if level == 100 {
            write_file(&deep.join("f100"), "100\n");
        }
    }
    write_file(&deep.join("f210"), "210\n");
    let wide = upper.join("tmp/wide");
    fs::create_dir_all(&wide).unwrap();
    for i in 0..3000 {
        fs::write(wide.join(format!("f{i}")), "").unwrap();
    }
    whiteout_or_skip(&wide.join("gone"));

    let fd = o_path(&upper);
    let before = open_fds();
    let out = t.path().join("out");
    let c = capture(fd.as_fd(), &rf(&["."], "/wd"), &out).unwrap();
    assert_eq!(open_fds(), before, "capture leaked fds");
    let f100 = format!("{}f100", "d/".repeat(100));
    assert_eq!(c.files, paths(&[f100.as_str()]));
    assert_eq!(read_file(&out.join(&f100)), "100\n");
    assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
    assert!(
        c.notes[0].ends_with("deeper than 200 levels, not walked"),
        "{:?}",
        c.notes
    );
    if is_root() {
        assert_eq!(c.deleted, paths(&["/tmp/wide/gone"]));
    }
}

/// A 0:0 whiteout where the caller may make one (root).
fn whiteout_or_skip(p: &Path) {
    if is_root() {
        whiteout(p);
    }
}
