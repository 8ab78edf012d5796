//! `rootcell cp` (docker cp) with real busybox containers, running and
//! stopped, with a read-only and a read-write volume and a user namespace:
//! docker's rules for a file or directory source and an existing, missing,
//! `/`- or `/.`-ended destination; bytes, modes and mtimes; `-` both ways;
//! symlinks in the container (at the destination, on the way, to `/`) never
//! lead to the host; a hostile tar stream; read-only volumes refused; and
//! nothing left behind (the mount table unchanged after each).

mod common;

use common::cp::*;
use common::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const FILE: &str = "container file bytes\n";
const MTIME: i64 = 1_000_000_000;

struct Fixture {
    b: Bundle,
    ro_vol: PathBuf,
    rw_vol: PathBuf,
    /// Host directory the copies go to.
    out: PathBuf,
    /// A host file a write that escaped the container would change.
    sentinel: PathBuf,
}

fn fixture(ctx: &Ctx) -> Fixture {
    let mut b = ctx.bundle();
    let root = b.rootfs();
    let d = root.join("srcdir");
    fs::create_dir_all(d.join("sub")).unwrap();
    write_file(&d.join("f"), FILE);
    fs::set_permissions(d.join("f"), fs::Permissions::from_mode(0o640)).unwrap();
    touch(&d.join("f"), MTIME);
    write_file(&d.join("sub/g"), "g\n");
    fs::set_permissions(d.join("sub"), fs::Permissions::from_mode(0o750)).unwrap();
    touch(&d.join("sub"), MTIME + 1);
    symlink("f", d.join("link")).unwrap();
    symlink("/srcdir/f", root.join("flink")).unwrap();
    symlink("/", root.join("hostroot")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(root.join("fifo"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let (ro_vol, rw_vol) = with_volumes(ctx, &mut b);
    b.args(&["sleep", "600"]);
    b.save();
    let out = ctx.dir.join("out");
    fs::create_dir_all(&out).unwrap();
    let sentinel = ctx.dir.join("sentinel");
    write_file(&sentinel, "host\n");
    Fixture {
        b,
        ro_vol,
        rw_vol,
        out,
        sentinel,
    }
}

fn cp(ctx: &Ctx, src: &str, dst: &str) -> Out {
    ctx.rt(&["cp", src, dst])
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn check_file(p: &Path, body: &str, mode: u32) {
    assert_eq!(read_file(p), body, "{}", p.display());
    let m = fs::metadata(p).unwrap();
    assert_eq!(m.mode() & 0o7777, mode, "{}", p.display());
    assert_eq!(m.mtime(), MTIME, "{}", p.display());
}

/// Copies out of container `id`: each docker rule, the mount table unchanged.
fn check_out(ctx: &Ctx, id: &str, f: &Fixture) {
    let before = host_mount_points();
    let c = |p: &str| format!("{id}:{p}");
    // A file, the destination missing: saved under that name.
    let dst = f.out.join("new");
    cp(ctx, &c("/srcdir/f"), s(&dst)).assert_ok("file to a missing path");
    check_file(&dst, FILE, 0o640);
    // Missing and ending with `/`: an error.
    let slash = format!("{}/", s(&f.out.join("nodir")));
    cp(ctx, &c("/srcdir/f"), &slash).assert_fail("file to a missing dir/");
    assert!(!f.out.join("nodir").exists());
    // An existing file: overwritten.
    let existing = f.out.join("existing");
    write_file(&existing, "old contents that are longer\n");
    cp(ctx, &c("/srcdir/f"), s(&existing)).assert_ok("file over a file");
    check_file(&existing, FILE, 0o640);
    // An existing directory: copied into it under its own name.
    let into = f.out.join("into");
    fs::create_dir(&into).unwrap();
    cp(ctx, &c("/srcdir/f"), s(&into)).assert_ok("file into a dir");
    check_file(&into.join("f"), FILE, 0o640);
    // A directory, the destination missing: created, the contents in it.
    let made = f.out.join("made");
    cp(ctx, &c("/srcdir"), &format!("{}/", s(&made))).assert_ok("dir to a missing path");
    check_file(&made.join("f"), FILE, 0o640);
    assert_eq!(read_file(&made.join("sub/g")), "g\n");
    let sub = fs::metadata(made.join("sub")).unwrap();
    assert_eq!((sub.mode() & 0o7777, sub.mtime()), (0o750, MTIME + 1));
    assert_eq!(fs::read_link(made.join("link")).unwrap(), Path::new("f"));
    // A directory onto a file: an error.
    let onto = cp(ctx, &c("/srcdir"), s(&existing));
    onto.assert_fail("dir onto a file");
    assert!(
        onto.stderr.contains("cannot copy a directory"),
        "{}",
        onto.stderr
    );
    // An existing directory: the directory copied into it...
    let holder = f.out.join("holder");
    fs::create_dir(&holder).unwrap();
    cp(ctx, &c("/srcdir"), s(&holder)).assert_ok("dir into a dir");
    check_file(&holder.join("srcdir/f"), FILE, 0o640);
    // ... or with `/.`, its contents.
    let contents = f.out.join("contents");
    fs::create_dir(&contents).unwrap();
    cp(ctx, &c("/srcdir/."), s(&contents)).assert_ok("dir/. into a dir");
    check_file(&contents.join("f"), FILE, 0o640);
    assert!(!contents.join("srcdir").exists());
    // -L follows the source's symlink; without it the link is copied.
    let nolink = f.out.join("nolink");
    cp(ctx, &c("/flink"), s(&nolink)).assert_ok("symlink source");
    assert_eq!(fs::read_link(&nolink).unwrap(), Path::new("/srcdir/f"));
    let followed = f.out.join("followed");
    ctx.rt(&["cp", "-q", "-L", &c("/flink"), s(&followed)])
        .assert_ok("cp -L");
    check_file(&followed, FILE, 0o640);
    // Through a symlink to `/` in the container: the container's file.
    let through = f.out.join("through");
    cp(ctx, &c("/hostroot/srcdir/f"), s(&through)).assert_ok("through /");
    check_file(&through, FILE, 0o640);
    // A fifo source: a header only, no hang.
    let fifo = f.out.join("fifo");
    let out = cp(ctx, &c("/fifo"), s(&fifo));
    out.assert_ok("fifo source");
    assert!(out.elapsed.as_secs() < 20);
    // A missing source: the error names it.
    let missing = cp(ctx, &c("/etc/nope"), s(&f.out.join("x")));
    missing.assert_fail("missing source");
    assert!(
        missing
            .stderr
            .contains(&format!("{id}:/etc/nope: no such file or directory")),
        "{}",
        missing.stderr
    );
    // `-`: the tar stream on stdout.
    let tar = ctx.cmd().args(["cp", &c("/srcdir"), "-"]).output().unwrap();
    assert!(tar.status.success(), "{tar:?}");
    let listed = list_tar(&tar.stdout);
    for name in [
        "srcdir",
        "srcdir/f",
        "srcdir/sub",
        "srcdir/sub/g",
        "srcdir/link",
    ] {
        assert!(listed.iter().any(|l| l == name), "{name} in {listed:?}");
    }
    assert_eq!(read_file(&f.sentinel), "host\n");
    assert_eq!(host_mount_points(), before, "the mount table changed");
    for e in fs::read_dir(&f.out).unwrap() {
        fs::remove_dir_all(e.as_ref().unwrap().path())
            .or_else(|_| fs::remove_file(e.unwrap().path()))
            .unwrap();
    }
}

/// Copies into container `id` (root is the container's rootfs on the host).
fn check_in(ctx: &Ctx, id: &str, f: &Fixture) {
    let before = host_mount_points();
    let root = f.b.rootfs();
    let c = |p: &str| format!("{id}:{p}");
    let src = ctx.dir.join("hostsrc");
    fs::create_dir_all(src.join("sub")).unwrap();
    write_file(&src.join("h"), "host file\n");
    fs::set_permissions(src.join("h"), fs::Permissions::from_mode(0o604)).unwrap();
    touch(&src.join("h"), MTIME);
    write_file(&src.join("sub/k"), "k\n");
    // A file to a missing path, over a file, into a dir.
    cp(ctx, s(&src.join("h")), &c("/in-new")).assert_ok("file to missing");
    check_file(&root.join("in-new"), "host file\n", 0o604);
    cp(ctx, s(&src.join("h")), &c("/srcdir/f")).assert_ok("file over file");
    check_file(&root.join("srcdir/f"), "host file\n", 0o604);
    cp(ctx, s(&src.join("h")), &c("/srcdir/")).assert_ok("file into dir");
    check_file(&root.join("srcdir/h"), "host file\n", 0o604);
    cp(ctx, s(&src.join("h")), &c("/nodir/")).assert_fail("file to missing dir/");
    assert!(!root.join("nodir").exists());
    // A directory: missing → created; into a dir; `/.` → contents; onto a
    // file → error.
    cp(ctx, s(&src), &c("/in-dir")).assert_ok("dir to missing");
    check_file(&root.join("in-dir/h"), "host file\n", 0o604);
    cp(ctx, s(&src), &c("/srcdir")).assert_ok("dir into dir");
    assert_eq!(read_file(&root.join("srcdir/hostsrc/sub/k")), "k\n");
    fs::create_dir(root.join("contents")).unwrap();
    cp(ctx, &format!("{}/.", s(&src)), &c("/contents")).assert_ok("dir/. into dir");
    assert_eq!(read_file(&root.join("contents/sub/k")), "k\n");
    cp(ctx, s(&src), &c("/in-new")).assert_fail("dir onto file");

    // A symlink to `/` at the destination and on the way: the writes land
    // in the container, the host's sentinel is unchanged.
    let sentinel_name = f.sentinel.file_name().unwrap().to_str().unwrap();
    let host_dir = f.sentinel.parent().unwrap();
    // Missing in the container: the copy fails, nothing on the host.
    symlink(&f.sentinel, root.join("to-sentinel")).unwrap();
    cp(ctx, s(&src.join("h")), &c("/to-sentinel")).assert_fail("dangling link to a host path");
    assert_eq!(
        read_file(&f.sentinel),
        "host\n",
        "the host file was written"
    );
    let inside_dir = root.join(host_dir.strip_prefix("/").unwrap());
    fs::create_dir_all(&inside_dir).unwrap();
    // At the destination: the link is followed inside the container.
    cp(ctx, s(&src.join("h")), &c("/to-sentinel")).assert_ok("link at the destination");
    assert_eq!(
        read_file(&f.sentinel),
        "host\n",
        "the host file was written"
    );
    assert_eq!(
        read_file(&inside_dir.join(f.sentinel.file_name().unwrap())),
        "host file\n"
    );
    fs::remove_file(inside_dir.join(f.sentinel.file_name().unwrap())).unwrap();
    // On the way.
    symlink(host_dir, root.join("to-host-dir")).unwrap();
    cp(
        ctx,
        s(&src.join("h")),
        &c(&format!("/to-host-dir/{sentinel_name}")),
    )
    .assert_ok("through a symlink to a host path");
    assert_eq!(
        read_file(&f.sentinel),
        "host\n",
        "the host file was written"
    );
    let inside = inside_dir.join(sentinel_name);
    assert_eq!(read_file(&inside), "host file\n");
    cp(ctx, s(&src.join("h")), &c("/hostroot/at-root")).assert_ok("via /");
    assert_eq!(read_file(&root.join("at-root")), "host file\n");
    assert!(!Path::new("/at-root").exists());

    // `-`: a tar stream on stdin into a directory.
    let tar = Command::new("tar")
        .arg("-cf")
        .arg("-")
        .arg("-C")
        .arg(&src)
        .arg("h")
        .output()
        .unwrap();
    assert!(tar.status.success());
    cp_stdin(ctx, &["-", &c("/contents")], &tar.stdout).assert_ok("- into a dir");
    assert_eq!(read_file(&root.join("contents/h")), "host file\n");
    cp_stdin(ctx, &["-", &c("/in-new")], &tar.stdout).assert_fail("- onto a file");
    // A hostile stream: `../` refused, naming the entry.
    let hostile = raw_tar("../../../../escape", b"x");
    let out = cp_stdin(ctx, &["-", &c("/contents")], &hostile);
    out.assert_fail("a ../ entry");
    assert!(out.stderr.contains("../../../../escape"), "{}", out.stderr);
    assert!(!ctx.dir.join("escape").exists() && !Path::new("/escape").exists());
    // A symlink entry to a host directory, then a file written through
    // it: the file lands inside the container.
    let host_dir = f.sentinel.parent().unwrap().to_str().unwrap();
    let mut through = raw_entry("evil", b'2', host_dir, b"");
    through.extend(raw_entry("evil/sentinel", b'0', "", b"through\n"));
    through.resize(through.len() + 1024, 0);
    cp_stdin(ctx, &["-", &c("/contents")], &through).assert_ok("a write through a symlink entry");
    assert_eq!(
        read_file(&f.sentinel),
        "host\n",
        "the host file was written"
    );
    assert_eq!(read_file(&inside), "through\n");

    // The read-only volume: refused, nothing written; the rw volume: the
    // write lands in its host source.
    let ro = cp(ctx, s(&src.join("h")), &c("/data/"));
    ro.assert_fail("into the ro volume");
    assert!(
        ro.stderr
            .contains(&format!("{id}:/data/: mounted volume is marked read-only")),
        "{}",
        ro.stderr
    );
    assert!(!f.ro_vol.join("h").exists());
    cp(ctx, s(&src.join("h")), &c("/rw/")).assert_ok("into the rw volume");
    check_file(&f.rw_vol.join("h"), "host file\n", 0o604);
    assert!(!root.join("rw/h").exists());

    assert_eq!(read_file(&f.sentinel), "host\n");
    assert_eq!(host_mount_points(), before, "the mount table changed");
}

#[test]
fn cp_out_of_and_into_a_running_container() {
    let ctx = Ctx::new("cp-run");
    let f = fixture(&ctx);
    let id = ctx.id("c");
    ctx.run_detached(&id, &f.b, &[]).assert_ok("run -d");
    ctx.wait_status(&id, "running");
    check_out(&ctx, &id, &f);
    check_in(&ctx, &id, &f);
    // The running container sees the copied file.
    let seen = ctx.rt(&["exec", &id, "cat", "/in-new"]);
    seen.assert_ok("exec cat");
    assert_eq!(seen.stdout, "host file\n");
    ctx.rt(&["delete", "-f", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn cp_with_a_stopped_container() {
    let ctx = Ctx::new("cp-stopped");
    let mut f = fixture(&ctx);
    f.b.args(&["true"]);
    let id = ctx.id("c");
    ctx.run_detached(&id, &f.b, &[]).assert_ok("run -d true");
    ctx.wait_status(&id, "stopped");
    check_out(&ctx, &id, &f);
    check_in(&ctx, &id, &f);
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn cp_into_a_read_only_root_is_refused() {
    let ctx = Ctx::new("cp-roroot");
    let mut f = fixture(&ctx);
    f.b.config["root"]["readonly"] = json!(true);
    f.b.args(&["true"]);
    let id = ctx.id("c");
    ctx.run_detached(&id, &f.b, &[]).assert_ok("run -d");
    ctx.wait_status(&id, "stopped");
    let before = host_mount_points();
    let out = cp(&ctx, s(&f.sentinel), &format!("{id}:/srcdir/"));
    out.assert_fail("into a read-only root");
    assert!(
        out.stderr.contains("container rootfs is marked read-only"),
        "{}",
        out.stderr
    );
    assert!(!f.b.rootfs().join("srcdir/sentinel").exists());
    // Its rw volume still takes writes.
    cp(&ctx, s(&f.sentinel), &format!("{id}:/rw/")).assert_ok("into the rw volume");
    assert_eq!(read_file(&f.rw_vol.join("sentinel")), "host\n");
    assert_eq!(host_mount_points(), before);
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn cp_archive_ownership_in_a_user_namespace() {
    let ctx = Ctx::new("cp-userns");
    let mut f = fixture(&ctx);
    f.b.set_namespace("user", None);
    f.b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    f.b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    f.b.process()["user"] = json!({"uid": 1000, "gid": 1001});
    f.b.remove_mount("/sys/fs/cgroup");
    f.b.args(&["true"]);
    let root = f.b.rootfs();
    chown(&root.join("srcdir/f"), 100_000 + 7, 100_000 + 8);
    let id = ctx.id("c");
    ctx.run_detached(&id, &f.b, &[]).assert_ok("run -d");
    ctx.wait_status(&id, "stopped");
    let before = host_mount_points();
    let c = |p: &str| format!("{id}:{p}");
    // Out: the stream carries container ids; without -a the caller owns
    // the copy, with -a it keeps the container's ids.
    let listing = tar_listing(&cp_out_stream(&ctx, &c("/srcdir/f")));
    assert!(listing.contains(" 7/8 "), "{listing}");
    let plain = f.out.join("plain");
    cp(&ctx, &c("/srcdir/f"), s(&plain)).assert_ok("cp out");
    let m = fs::metadata(&plain).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
    let kept = f.out.join("kept");
    ctx.rt(&["cp", "-a", &c("/srcdir/f"), s(&kept)])
        .assert_ok("cp -a out");
    let m = fs::metadata(&kept).unwrap();
    assert_eq!((m.uid(), m.gid()), (7, 8));
    // In: without -a the stream's owners (container ids → host ids); with
    // -a the config's process.user, mapped.
    let h = ctx.dir.join("h");
    write_file(&h, "h\n");
    chown(&h, 5, 6);
    cp(&ctx, s(&h), &c("/in-plain")).assert_ok("cp in");
    let m = fs::metadata(root.join("in-plain")).unwrap();
    assert_eq!((m.uid(), m.gid()), (100_005, 100_006));
    ctx.rt(&["cp", "-a", s(&h), &c("/in-a")])
        .assert_ok("cp -a in");
    let m = fs::metadata(root.join("in-a")).unwrap();
    assert_eq!((m.uid(), m.gid()), (101_000, 101_001));
    assert_eq!(host_mount_points(), before);
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// A bounded CVE-2018-15664: a container process swaps a directory and a
/// symlink to `/` in a tight loop while cp runs both ways 50 times
/// (`ROOTCELL_RACE_ROUNDS=N` for N rounds each way, e.g. 1000; the bound of
/// extra rounds until each way has succeeded once grows with it). Every
/// copy out reads a container file, every copy in writes in the container:
/// the host's `/etc` never gets the file, the host's file is never read.
#[test]
fn cp_races_a_symlink_swap_and_stays_inside() {
    let ctx = Ctx::new("cp-race");
    let mut b = ctx.bundle();
    let root = b.rootfs();
    let name = format!("rootcell-race-{}", std::process::id());
    write_file(&root.join("w/real/etc/hostname"), "inside-real\n");
    write_file(&root.join("etc/hostname"), "inside-root\n");
    symlink("/", root.join("w/sym")).unwrap();
    b.sh("while :; do mv /w/real /w/tmp; mv /w/sym /w/real; mv /w/real /w/sym; mv /w/tmp /w/real; done");
    b.save();
    let id = ctx.id("c");
    ctx.run_detached(&id, &b, &[]).assert_ok("run -d");
    ctx.wait_status(&id, "running");
    let before = host_mount_points();
    let host_etc = Path::new("/etc").join(&name);
    assert!(!host_etc.exists());
    let src = ctx.dir.join(&name);
    write_file(&src, "from the host\n");
    let out = ctx.dir.join("out");
    let (mut outs, mut ins) = (0, 0);
    // At least `rounds` of each; more (bounded) until each direction has
    // succeeded once, since under load every copy can hit the moment the
    // path is missing.
    let rounds: usize = std::env::var("ROOTCELL_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let started = std::time::Instant::now();
    for round in 0..rounds.max(50) * 6 {
        if round >= rounds && outs > 0 && ins > 0 {
            break;
        }
        let _ = fs::remove_file(&out);
        if cp(&ctx, &format!("{id}:/w/real/etc/hostname"), s(&out)).ok() {
            outs += 1;
            let got = read_file(&out);
            assert!(
                got == "inside-real\n" || got == "inside-root\n",
                "a copy out read {got:?}"
            );
        }
        if cp(&ctx, s(&src), &format!("{id}:/w/real/etc/")).ok() {
            ins += 1;
        }
        assert!(!host_etc.exists(), "a copy in wrote the host's /etc");
    }
    assert!(
        outs > 0 && ins > 0,
        "no copy succeeded ({outs} out, {ins} in)"
    );
    eprintln!(
        "race: {outs} copies out and {ins} in succeeded in {:.1?}",
        started.elapsed()
    );
    // Stop the swapping first: the real directory may sit under any of
    // its names at that moment.
    ctx.rt(&["delete", "-f", &id]).assert_ok("delete");
    let landed = ["etc", "w/real/etc", "w/tmp/etc", "w/sym/etc"]
        .iter()
        .any(|d| root.join(d).join(&name).exists());
    assert!(landed, "the copies in landed nowhere in the container");
    assert_eq!(host_mount_points(), before);
    ctx.assert_clean();
}
