//! Filesystem views of a container from the outside (`rootcell::view`,
//! `rootcell stat`), with real busybox containers: created, running and
//! stopped, with a read-only and a read-write volume, with a user
//! namespace. Each test checks what a user would see (docker's PathStat:
//! name, size, mode, mtime, linkTarget resolved inside the container), that
//! symlinks in the container (absolute, `../../..`, to `/`) never lead to
//! the host, and that nothing is left behind: the test's mount table is
//! unchanged and no view thread remains.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Go's `os.ModeDir` and `os.ModeSymlink`.
const GO_DIR: u64 = 1 << 31;
const GO_SYMLINK: u64 = 1 << 27;

/// A container whose rootfs and volumes hold known files.
struct Fixture {
    b: Bundle,
    ro_vol: PathBuf,
    rw_vol: PathBuf,
}

/// Bytes of `/etc/shadow` and `/etc/viewfile` in the container: sizes no
/// host file is likely to have, so a stat that escaped would show.
const SHADOW: &str = "container-shadow-0123456789-abcdefghijklmnopqrstuvwxyz\n";
const VIEWFILE: &str = "view test file\n";

fn fixture(ctx: &Ctx) -> Fixture {
    let mut b = ctx.bundle();
    let root = b.rootfs();
    write_file(&root.join("etc/shadow"), SHADOW);
    write_file(&root.join("etc/viewfile"), VIEWFILE);
    fs::set_permissions(root.join("etc/viewfile"), fs::Permissions::from_mode(0o640)).unwrap();
    // mtime 2001-09-09T01:46:40.5Z
    let out = Command::new("touch")
        .args(["-m", "-d", "@1000000000.5"])
        .arg(root.join("etc/viewfile"))
        .output()
        .unwrap();
    assert!(out.status.success(), "touch: {out:?}");
    fs::set_permissions(root.join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("/etc/passwd", root.join("abs")).unwrap();
    symlink("../../../../etc/shadow", root.join("up")).unwrap();
    symlink("/", root.join("hostroot")).unwrap();
    symlink("hostroot/etc/../nowhere/x", root.join("dangling")).unwrap();
    // What the read-only volume hides.
    fs::create_dir_all(root.join("data")).unwrap();
    fs::create_dir_all(root.join("rw")).unwrap();
    write_file(&root.join("data/hidden.txt"), "under the volume\n");
    let ro_vol = ctx.dir.join("ro-vol");
    let rw_vol = ctx.dir.join("rw-vol");
    fs::create_dir_all(&ro_vol).unwrap();
    fs::create_dir_all(&rw_vol).unwrap();
    write_file(&ro_vol.join("vol.txt"), "read-only volume file\n");
    write_file(&rw_vol.join("rw.txt"), "rw\n");
    b.bind_mount(&ro_vol, "/data", true);
    b.bind_mount(&rw_vol, "/rw", false);
    b.args(&["sleep", "600"]);
    b.save();
    Fixture { b, ro_vol, rw_vol }
}

fn stat_json(ctx: &Ctx, id: &str, path: &str) -> Value {
    let out = ctx.rt(&["stat", "--json", id, path]);
    out.assert_ok(&format!("stat {path}"));
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("stat {path}: {e}: {}", out.stdout))
}

/// The checks every state shares: a file, a dir, symlinks in scope, a
/// volume, a missing path; the mount table unchanged after each.
fn check_stats(ctx: &Ctx, id: &str, f: &Fixture) {
    let before = host_mount_points();
    let file = stat_json(ctx, id, "/etc/viewfile");
    assert_eq!(
        file,
        json!({
            "name": "viewfile",
            "size": VIEWFILE.len(),
            "mode": 0o640,
            "mtime": "2001-09-09T01:46:40.5Z",
            "linkTarget": "",
        })
    );
    let dir = stat_json(ctx, id, "/etc/");
    assert_eq!(dir["name"], "etc");
    assert_eq!(dir["mode"], GO_DIR | 0o755, "{dir}");
    assert_eq!(dir["linkTarget"], "");

    // An absolute symlink resolves inside the container.
    let abs = stat_json(ctx, id, "/abs");
    assert_eq!(abs["mode"], GO_SYMLINK | 0o777, "{abs}");
    assert_eq!(abs["size"], "/etc/passwd".len());
    assert_eq!(abs["linkTarget"], "/etc/passwd");
    // `..` past the root stays at the container's root.
    let up = stat_json(ctx, id, "up");
    assert_eq!(up["linkTarget"], "/etc/shadow", "{up}");
    let hostroot = stat_json(ctx, id, "/hostroot");
    assert_eq!(hostroot["linkTarget"], "/");
    // Through a symlink to `/`: the container's file, not the host's.
    let through = stat_json(ctx, id, "/hostroot/etc/shadow");
    assert_eq!(through["size"], SHADOW.len(), "{through}");
    assert_eq!(through["name"], "shadow");
    // A dangling link resolves as far as it can, in scope.
    let dangling = stat_json(ctx, id, "/dangling");
    assert_eq!(dangling["linkTarget"], "/nowhere/x", "{dangling}");

    // A volume shows the volume's file, and hides what is under it.
    let vol = stat_json(ctx, id, "/data/vol.txt");
    assert_eq!(
        vol["size"],
        fs::metadata(f.ro_vol.join("vol.txt")).unwrap().len()
    );
    let rw = stat_json(ctx, id, "/rw/rw.txt");
    assert_eq!(rw["size"], 3);
    let hidden = ctx.rt(&["stat", id, "/data/hidden.txt"]);
    hidden.assert_fail("a file under the volume's mountpoint");

    // Text output: one field a line, Go's mode string.
    let text = ctx.rt(&["stat", id, "/abs"]);
    text.assert_ok("stat text");
    assert!(text.stdout.contains("name: abs\n"), "{}", text.stdout);
    assert!(
        text.stdout.contains("mode: Lrwxrwxrwx\n"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("linkTarget: /etc/passwd\n"),
        "{}",
        text.stdout
    );

    // A missing path: the error names it, non-zero exit.
    let missing = ctx.rt(&["stat", id, "/etc/nope"]);
    missing.assert_fail("stat of a missing path");
    assert!(
        missing
            .stderr
            .contains(&format!("{id}:/etc/nope: no such file or directory")),
        "{}",
        missing.stderr
    );
    assert_eq!(host_mount_points(), before, "the mount table changed");
}

#[test]
fn stat_in_a_running_container() {
    let ctx = Ctx::new("view-run");
    let f = fixture(&ctx);
    let id = ctx.id("c");
    ctx.run_detached(&id, &f.b, &[]).assert_ok("run -d");
    ctx.wait_status(&id, "running");
    check_stats(&ctx, &id, &f);
    // Paused: the view does not enter the container, it still works.
    if cgroup_v1_controller("freezer") {
        ctx.rt(&["pause", &id]).assert_ok("pause");
        assert_eq!(ctx.status(&id), "paused");
        let file = stat_json(&ctx, &id, "/hostroot/etc/viewfile");
        assert_eq!(file["size"], VIEWFILE.len());
        ctx.rt(&["resume", &id]).assert_ok("resume");
    }
    ctx.rt(&["delete", "-f", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn stat_and_cp_in_a_container_with_the_default_cgroup_mount() {
    if runtime_is_runc() {
        return skip("rootcell stat and cp only");
    }
    // The default config's `cgroup` mount, read-only root, no cgroup
    // namespace: on a v1 or hybrid host a tmpfs at /sys/fs/cgroup with a
    // bind per hierarchy below it, none of which is in the image. The view
    // has no sysfs or tmpfs there, so those binds are not its to make.
    let ctx = Ctx::new("view-cgmount");
    let mut b = ctx.bundle();
    b.config["root"]["readonly"] = json!(true);
    b.remove_namespace("cgroup");
    assert!(
        b.config["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "cgroup"),
        "the default config has a cgroup mount"
    );
    write_file(&b.rootfs().join("etc/viewfile"), VIEWFILE);
    b.args(&["sleep", "100"]);
    b.save();
    let id = ctx.id("c");
    ctx.run_detached(&id, &b, &[]).assert_ok("run -d");
    ctx.wait_status(&id, "running");
    let image_sys: Vec<_> = std::fs::read_dir(b.rootfs().join("sys"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let file = stat_json(&ctx, &id, "/etc/viewfile");
    assert_eq!(file["size"], VIEWFILE.len());
    let out = ctx.dir.join("out");
    std::fs::create_dir(&out).unwrap();
    ctx.rt(&[
        "cp",
        &format!("{id}:/etc/viewfile"),
        &out.display().to_string(),
    ])
    .assert_ok("cp out");
    assert_eq!(read_file(&out.join("viewfile")), VIEWFILE);
    // Nothing was made in the image's /sys for the binds.
    let after: Vec<_> = std::fs::read_dir(b.rootfs().join("sys"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(image_sys, after);
    ctx.rt(&["delete", "-f", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn stat_in_created_and_stopped_containers() {
    let ctx = Ctx::new("view-states");
    let mut f = fixture(&ctx);
    let id = ctx.id("created");
    ctx.create(&id, &f.b, &[]).assert_ok("create");
    assert_eq!(ctx.status(&id), "created");
    check_stats(&ctx, &id, &f);
    ctx.rt(&["delete", "-f", &id]).assert_ok("delete created");

    f.b.args(&["true"]);
    let stopped = ctx.id("stopped");
    ctx.run_detached(&stopped, &f.b, &[])
        .assert_ok("run -d true");
    ctx.wait_status(&stopped, "stopped");
    check_stats(&ctx, &stopped, &f);
    // A volume whose source is gone: the error names the config mount,
    // nothing is left mounted.
    let before = host_mount_points();
    let moved = ctx.dir.join("ro-vol.moved");
    fs::rename(&f.ro_vol, &moved).unwrap();
    let broken = ctx.rt(&["stat", &stopped, "/etc/viewfile"]);
    broken.assert_fail("stat with a volume source missing");
    assert!(
        broken.stderr.contains("mounts[") && broken.stderr.contains("ro-vol"),
        "{}",
        broken.stderr
    );
    assert_eq!(host_mount_points(), before);
    fs::rename(&moved, &f.ro_vol).unwrap();
    ctx.rt(&["delete", &stopped]).assert_ok("delete stopped");

    // A deleted container has no view.
    let gone = ctx.rt(&["stat", &stopped, "/etc"]);
    gone.assert_fail("stat of a deleted container");
    assert!(gone.stderr.contains("does not exist"), "{}", gone.stderr);
    ctx.assert_clean();
}

#[test]
fn stat_in_a_user_namespace_container() {
    let ctx = Ctx::new("view-userns");
    let mut f = fixture(&ctx);
    f.b.set_namespace("user", None);
    f.b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    f.b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    f.b.remove_mount("/sys/fs/cgroup");
    let id = ctx.id("c");
    ctx.run_detached(&id, &f.b, &[])
        .assert_ok("run -d in a user namespace");
    ctx.wait_status(&id, "running");
    check_stats(&ctx, &id, &f);
    ctx.rt(&["delete", "-f", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn library_views_mount_volumes_and_leave_nothing() {
    use rootcell::view::View;
    let ctx = Ctx::new("view-lib");
    let mut f = fixture(&ctx);
    // A device node in the rootfs: a view mounts everything nodev.
    let node = f.b.rootfs().join("mem");
    let made = Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(made.success());
    f.b.config["root"]["readonly"] = json!(true);
    let id = ctx.id("c");
    ctx.run_detached(&id, &f.b, &[]).assert_ok("run -d");
    ctx.wait_status(&id, "running");
    let runtime = rootcell::container::Runtime {
        root: ctx.state_dir(),
        rootless: false,
        binary: None,
    };
    let mounts = host_mount_points();
    let threads = view_threads();

    // Two views of one container at once.
    let one = View::open(&runtime, &id).expect("first view");
    let two = View::open(&runtime, &id).expect("second view");
    assert_eq!(view_threads(), threads + 2);
    let names = one
        .run(|root| root.read_dir(Path::new("/data")).unwrap())
        .unwrap();
    assert_eq!(names, vec![std::ffi::OsString::from("vol.txt")]);
    // Writes: refused in the read-only volume and the read-only root,
    // through to the host source in the read-write volume.
    let results = two
        .run(|root| {
            let ro_vol = root.create(Path::new("/data/new"), 0o644).map(drop);
            let ro_root = root.create(Path::new("/new"), 0o644).map(drop);
            let rw = root.create(Path::new("/rw/new"), 0o600).map(drop);
            let dev = root.open(Path::new("/mem")).map(drop);
            let link = root.read_link(Path::new("/up")).unwrap();
            let escaped = root
                .symlink(Path::new("/etc"), Path::new("/rw/link"))
                .and_then(|()| root.lstat(Path::new("/rw/link/shadow")).map(|m| m.len()));
            root.remove(Path::new("/rw/link")).unwrap();
            (ro_vol, ro_root, rw, dev, link, escaped)
        })
        .unwrap();
    let errno = |r: &std::io::Result<()>| r.as_ref().err().and_then(|e| e.raw_os_error());
    assert_eq!(errno(&results.0), Some(libc::EROFS), "{:?}", results.0);
    assert_eq!(errno(&results.1), Some(libc::EROFS), "{:?}", results.1);
    results.2.as_ref().expect("create in the rw volume");
    assert_eq!(errno(&results.3), Some(libc::EACCES), "{:?}", results.3);
    assert_eq!(results.4, Path::new("../../../../etc/shadow"));
    // A symlink to /etc made through the view resolves in the container.
    assert_eq!(results.5.unwrap(), SHADOW.len() as u64);
    assert!(f.rw_vol.join("new").is_file(), "written into the volume");
    assert!(!f.rw_vol.join("link").exists(), "link removed");
    assert!(!f.ro_vol.join("new").exists());

    // A panic in a closure ends that view, and only that view.
    let panicked = one.run(|_| -> () { panic!("closure panics") });
    assert!(panicked.is_err());
    assert!(
        one.run(|_| ()).is_err(),
        "a view whose thread died is closed"
    );
    drop(one);
    assert_eq!(
        two.run(|root| root.stat(Path::new("/abs")).unwrap().len())
            .unwrap(),
        fs::metadata(f.b.rootfs().join("etc/passwd")).unwrap().len()
    );
    two.close().unwrap();
    assert_eq!(view_threads(), threads, "a view thread is left");
    assert_eq!(host_mount_points(), mounts, "the mount table changed");
    // The container's rootfs directory is not a mount point on the host.
    let rootfs = f.b.rootfs().canonicalize().unwrap();
    assert!(!mounts.contains(&rootfs.to_string_lossy().into_owned()));

    ctx.rt(&["delete", "-f", &id]).assert_ok("delete");
    ctx.assert_clean();
}
