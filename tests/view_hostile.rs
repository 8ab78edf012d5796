//! `rootcell cp` against hostile input and in every container state, with
//! real busybox containers: hostile tar streams on stdin (`../` and
//! absolute names, symlink and hardlink entries pointing out, huge,
//! truncated and garbage headers), device nodes (made only where the
//! caller and the container's root could make them), symlinks in the
//! container at or on the way to the destination, `/proc` paths, a fifo and
//! a 10 GB sparse source, created/running/paused/stopped containers with
//! and without a user namespace and with ro/rw volumes, no NSS or library
//! of the container opened (strace), and errors that leave nothing. After
//! each case: the test's mount table, a host sentinel and the destination
//! directory's other entries are unchanged.

mod common;

use common::cp::*;
use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MTIME: i64 = 1_000_000_000;

struct Fixture {
    b: Bundle,
    ro_vol: PathBuf,
    rw_vol: PathBuf,
    /// A host directory outside the container, holding `sentinel`.
    host_dir: PathBuf,
    sentinel: PathBuf,
    /// Host directory copies out go to.
    out: PathBuf,
}

const SENTINEL: &str = "host sentinel\n";

fn fixture(ctx: &Ctx) -> Fixture {
    let mut b = ctx.bundle();
    let root = b.rootfs();
    fs::create_dir_all(root.join("dst")).unwrap();
    let (ro_vol, rw_vol) = with_volumes(ctx, &mut b);
    b.args(&["sleep", "600"]);
    b.save();
    let host_dir = ctx.dir.join("hostside");
    fs::create_dir_all(&host_dir).unwrap();
    let sentinel = host_dir.join("sentinel");
    write_file(&sentinel, SENTINEL);
    let out = ctx.dir.join("out");
    fs::create_dir_all(&out).unwrap();
    Fixture {
        b,
        ro_vol,
        rw_vol,
        host_dir,
        sentinel,
        out,
    }
}

/// What must not change on the host: the mount table, the sentinel, the
/// host directories and `/etc` (their names: no file or temp file added).
struct HostWatch {
    mounts: Vec<String>,
    sentinel: PathBuf,
    dirs: Vec<(PathBuf, BTreeSet<String>)>,
    shadow: Option<(u64, u64)>,
}

impl HostWatch {
    fn new(f: &Fixture) -> HostWatch {
        let dirs = [
            f.host_dir.clone(),
            PathBuf::from("/etc"),
            PathBuf::from("/tmp"),
        ]
        .into_iter()
        .map(|d| {
            let n = names(&d);
            (d, n)
        })
        .collect();
        HostWatch {
            mounts: host_mount_points(),
            sentinel: f.sentinel.clone(),
            dirs,
            shadow: fs::metadata("/etc/shadow")
                .ok()
                .map(|m| (m.nlink(), m.ino())),
        }
    }

    /// Asserts nothing changed; `what` names the case.
    fn check(&self, what: &str) {
        assert_eq!(
            host_mount_points(),
            self.mounts,
            "{what}: the mount table changed"
        );
        assert_eq!(
            read_file(&self.sentinel),
            SENTINEL,
            "{what}: the sentinel changed"
        );
        for (d, before) in &self.dirs {
            let now = names(d);
            // /tmp is shared with other tests: only names that look like
            // ours (the names the tests copy) count there.
            let added: Vec<_> = now
                .difference(before)
                .filter(|n| d != Path::new("/tmp") || n.starts_with("hostile"))
                .collect();
            assert!(added.is_empty(), "{what}: {} got {added:?}", d.display());
        }
        let shadow = fs::metadata("/etc/shadow")
            .ok()
            .map(|m| (m.nlink(), m.ino()));
        assert_eq!(shadow, self.shadow, "{what}: /etc/shadow got a link");
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts `out` failed and its stderr contains each of `needles`.
fn assert_fails_with(out: &Out, what: &str, needles: &[&str]) {
    out.assert_fail(what);
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "{what}: {n:?} not in {}",
            out.stderr
        );
    }
}

/// A started container (`sleep 600`) of `f`.
fn running(ctx: &Ctx, f: &Fixture) -> String {
    let id = ctx.id("c");
    ctx.run_detached(&id, &f.b, &[]).assert_ok("run -d");
    ctx.wait_status(&id, "running");
    id
}

fn finish(ctx: &Ctx, id: &str) {
    ctx.rt(&["delete", "-f", id]).assert_ok("delete");
    ctx.assert_clean();
}

/// A pax extended header entry (`x`) holding one `key=value` record.
fn pax(key: &str, value_len: usize) -> Vec<u8> {
    let body_len = |digits: usize| digits + 1 + key.len() + 1 + value_len + 1;
    let mut digits = 1;
    while body_len(digits).to_string().len() != digits {
        digits += 1;
    }
    let mut rec = format!("{} {key}=", body_len(digits)).into_bytes();
    rec.resize(rec.len() + value_len, b'a');
    rec.push(b'\n');
    raw_entry("PaxHeaders/x", b'x', "", &rec)
}

/// 1. Hostile tar streams into a running container: each refused naming
///    the entry, or contained in the container; never the host.
#[test]
fn hostile_streams_are_refused_or_contained() {
    let ctx = Ctx::new("cp-hostile-tar");
    let f = fixture(&ctx);
    let root = f.b.rootfs();
    let id = running(&ctx, &f);
    let watch = HostWatch::new(&f);
    let dst = format!("{id}:/dst");
    let in_dst = root.join("dst");
    let host_dir = s(&f.host_dir).to_string();
    let host_rel = host_dir.trim_start_matches('/');

    // Refused, naming the entry; nothing written in the destination.
    let refused: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "a ../ name",
            raw_tar("../../../../../hostile-escape", b"x"),
            vec!["../../../../../hostile-escape", "out of the destination"],
        ),
        (
            "a hardlink to /etc/shadow",
            end_tar(raw_entry("hl", b'1', "/etc/shadow", b"")),
            vec!["\"hl\"", "/etc/shadow"],
        ),
        (
            "a hardlink to ../../x",
            end_tar(raw_entry("hl2", b'1', "../../x", b"")),
            vec!["\"hl2\"", "outside the destination"],
        ),
        (
            "a 2 MiB pax record",
            end_tar([pax("path", 2 << 20), raw_entry("f", b'0', "", b"x")].concat()),
            vec!["exceeds"],
        ),
        (
            "a 1.5 MiB GNU long name",
            end_tar(
                [
                    raw_entry("././@LongLink", b'L', "", &vec![b'n'; 3 << 19]),
                    raw_entry("short", b'0', "", b"x"),
                ]
                .concat(),
            ),
            vec!["exceeds"],
        ),
        (
            "a 600 KiB GNU long name",
            end_tar(
                [
                    raw_entry(
                        "././@LongLink",
                        b'L',
                        "",
                        &[b"dir/".repeat(150 << 8), b"tail".to_vec()].concat(),
                    ),
                    raw_entry("short", b'0', "", b"x"),
                ]
                .concat(),
            ),
            vec!["dir/dir/", "tail", "bytes"],
        ),
        ("garbage", vec![0x5a; 4096], vec!["tar stream"]),
    ];
    for (what, stream, needles) in refused {
        let out = cp_stdin(&ctx, &["-", &dst], &stream);
        assert_fails_with(&out, what, &needles);
        assert_eq!(names(&in_dst), BTreeSet::new(), "{what}: left in /dst");
        watch.check(what);
    }
    assert!(!root.join("hostile-escape").exists());

    // A hardlink through a symlink entry to /etc: refused (a symlink on
    // the hardlink target's way), the symlink itself stays in the
    // container.
    let mut via = raw_entry("etc-link", b'2', "/etc", b"");
    via.extend(raw_entry("hl3", b'1', "etc-link/passwd", b""));
    let out = cp_stdin(&ctx, &["-", &dst], &end_tar(via));
    assert_fails_with(
        &out,
        "a hardlink through a symlink",
        &["\"hl3\"", "symlink"],
    );
    assert!(!in_dst.join("hl3").exists());
    watch.check("a hardlink through a symlink");
    fs::remove_file(in_dst.join("etc-link")).unwrap();

    // A truncated stream: the entry is named, and its partial file is
    // removed.
    let trunc = raw_entry_sized("partial", b'0', "", &[b'p'; 512], 10_000, (0, 0));
    let out = cp_stdin(&ctx, &["-", &dst], &trunc);
    assert_fails_with(&out, "a truncated stream", &["\"partial\""]);
    assert_eq!(names(&in_dst), BTreeSet::new(), "a truncated entry is left");
    watch.check("a truncated stream");

    // Contained: an absolute name is joined to the destination (docker).
    cp_stdin(&ctx, &["-", &dst], &raw_tar("/abs-name", b"abs\n")).assert_ok("an absolute name");
    assert_eq!(read_file(&in_dst.join("abs-name")), "abs\n");
    assert!(!Path::new("/abs-name").exists());
    watch.check("an absolute name");

    // A symlink entry pointing out (absolute, and ../..), then a file
    // written through it: the file lands in the container.
    for (name, target) in [
        ("abs-link", host_dir.clone()),
        ("up-link", format!("../../../../../../..{host_dir}")),
    ] {
        fs::create_dir_all(root.join(host_rel)).unwrap();
        let mut through = raw_entry(name, b'2', &target, b"");
        through.extend(raw_entry(
            &format!("{name}/sentinel"),
            b'0',
            "",
            b"through\n",
        ));
        cp_stdin(&ctx, &["-", &dst], &end_tar(through)).assert_ok(name);
        let inside = root.join(host_rel).join("sentinel");
        assert_eq!(read_file(&inside), "through\n", "{name}");
        fs::remove_file(&inside).unwrap();
        watch.check(name);
    }
    finish(&ctx, &id);
    watch.check("after delete");
}

/// 2. Device nodes in a stream: made by root in a container without a user
///    namespace (as docker does); skipped with a warning naming the entry
///    in a container with one (its root could not make them) and out onto
///    the host without `-a` (podman). Never made by host powers where the
///    container's root could not.
#[test]
fn device_nodes_only_where_the_container_could_make_them() {
    if runtime_is_runc() {
        return skip("rootcell cp only");
    }
    let ctx = Ctx::new("cp-hostile-dev");
    let f = fixture(&ctx);
    let root = f.b.rootfs();
    let id = running(&ctx, &f);
    let watch = HostWatch::new(&f);
    let mut stream = raw_dev("null", b'3', 1, 3);
    stream.extend(raw_dev("sda", b'4', 8, 0));
    stream.extend(raw_entry("after", b'0', "", b"after\n"));
    let stream = end_tar(stream);
    cp_stdin(&ctx, &["-", &format!("{id}:/dst")], &stream).assert_ok("devices, no userns");
    let null = fs::symlink_metadata(root.join("dst/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o7777),
        (libc::makedev(1, 3), 0o644)
    );
    let sda = fs::symlink_metadata(root.join("dst/sda")).unwrap();
    assert!(sda.file_type().is_block_device());
    assert_eq!(read_file(&root.join("dst/after")), "after\n");
    watch.check("devices, no userns");

    // Out onto the host: skipped without -a, made with -a (root).
    let out = ctx.rt(&["cp", &format!("{id}:/dst"), s(&f.out.join("plain"))]);
    out.assert_ok("cp out of devices");
    assert!(
        out.stderr.contains("null\": device node skipped"),
        "{}",
        out.stderr
    );
    assert!(!f.out.join("plain/null").exists() && !f.out.join("plain/sda").exists());
    assert_eq!(read_file(&f.out.join("plain/after")), "after\n");
    ctx.rt(&["cp", "-a", &format!("{id}:/dst"), s(&f.out.join("kept"))])
        .assert_ok("cp -a out of devices");
    let kept = fs::symlink_metadata(f.out.join("kept/null")).unwrap();
    assert!(kept.file_type().is_char_device() && kept.rdev() == libc::makedev(1, 3));
    watch.check("devices out");
    finish(&ctx, &id);

    // A container with a user namespace: skipped, one warning each.
    let ctx = Ctx::new("cp-hostile-dev-userns");
    let mut f = fixture(&ctx);
    userns(&mut f.b);
    f.b.save();
    let root = f.b.rootfs();
    let id = running(&ctx, &f);
    let watch = HostWatch::new(&f);
    let out = cp_stdin(&ctx, &["-", &format!("{id}:/dst")], &stream);
    out.assert_ok("devices, userns");
    for n in ["\"null\"", "\"sda\""] {
        assert!(
            out.stderr.contains(n) && out.stderr.contains("device node skipped"),
            "{}",
            out.stderr
        );
    }
    assert!(!root.join("dst/null").exists() && !root.join("dst/sda").exists());
    assert_eq!(read_file(&root.join("dst/after")), "after\n");
    // The container's root indeed cannot make one.
    let mk = ctx.rt(&["exec", &id, "mknod", "/tmp/n", "c", "1", "3"]);
    mk.assert_fail("mknod in the user namespace");
    watch.check("devices, userns");
    finish(&ctx, &id);
}

/// Gives `b` a user namespace (0 → 100000, 65536 ids) and drops what it
/// cannot mount there.
fn userns(b: &mut Bundle) {
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.remove_mount("/sys/fs/cgroup");
}

/// 3. Symlinks in the container at the destination and on the way
///    (`/dstlink -> /`, `/a -> /etc`, `/up -> ../../<host dir>`): every
///    write and read stays in the container.
#[test]
fn destination_symlinks_stay_in_the_container() {
    let ctx = Ctx::new("cp-hostile-links");
    let f = fixture(&ctx);
    let root = f.b.rootfs();
    symlink("/", root.join("dstlink")).unwrap();
    symlink("/etc", root.join("a")).unwrap();
    let host_rel = s(&f.host_dir).trim_start_matches('/').to_string();
    symlink(format!("../../../../../../../{host_rel}"), root.join("up")).unwrap();
    let id = running(&ctx, &f);
    let watch = HostWatch::new(&f);
    let src = ctx.dir.join("hostile-src");
    write_file(&src, "copied\n");
    let c = |p: &str| format!("{id}:{p}");

    ctx.rt(&["cp", s(&src), &c("/dstlink/")])
        .assert_ok("into a link to /");
    assert_eq!(read_file(&root.join("hostile-src")), "copied\n");
    ctx.rt(&["cp", s(&src), &c("/a/hostile-b")])
        .assert_ok("a -> /etc, a/b");
    assert_eq!(read_file(&root.join("etc/hostile-b")), "copied\n");
    // Out through the same link: the container's passwd, not the host's.
    let got = f.out.join("passwd");
    ctx.rt(&["cp", &c("/a/passwd"), s(&got)])
        .assert_ok("out through a -> /etc");
    assert_eq!(read_file(&got), read_file(&root.join("etc/passwd")));
    // ../.. to the host directory: missing in the container, an error;
    // once it exists there, the file lands in it.
    let out = ctx.rt(&["cp", s(&src), &c("/up/sentinel")]);
    out.assert_fail("up to a missing dir");
    fs::create_dir_all(root.join(&host_rel)).unwrap();
    ctx.rt(&["cp", s(&src), &c("/up/sentinel")])
        .assert_ok("up/sentinel");
    assert_eq!(
        read_file(&root.join(&host_rel).join("sentinel")),
        "copied\n"
    );
    // `..` above the container's root in the path: clamped at its root.
    ctx.rt(&["cp", s(&src), &c("/../../../../../../tmp/hostile-dotdot")])
        .assert_ok("../ above the root");
    assert_eq!(read_file(&root.join("tmp/hostile-dotdot")), "copied\n");
    let got = f.out.join("dotdot-passwd");
    ctx.rt(&["cp", &c("/../../../../etc/passwd"), s(&got)])
        .assert_ok("out, ../ above the root");
    assert_eq!(read_file(&got), read_file(&root.join("etc/passwd")));
    // A fifo at the destination: refused (never opened, no hang).
    let made = Command::new("mkfifo")
        .arg(root.join("dst/fifo"))
        .status()
        .unwrap();
    assert!(made.success());
    let out = ctx.rt(&["cp", s(&src), &c("/dst/fifo")]);
    assert_fails_with(&out, "onto a fifo", &["directory or a regular file"]);
    assert!(out.elapsed < Duration::from_secs(20));
    // A stream into the link to /.
    cp_stdin(
        &ctx,
        &["-", &c("/dstlink")],
        &raw_tar("hostile-tar", b"t\n"),
    )
    .assert_ok("- into /dstlink");
    assert_eq!(read_file(&root.join("hostile-tar")), "t\n");
    watch.check("destination symlinks");
    finish(&ctx, &id);
}

/// 5. Destinations and sources through `/proc` of the container: the view
///    has no procfs, so `/proc/self/root` and `/proc/1/root` are missing
///    (an error), or, when the rootfs's own `/proc` directory holds a
///    planted `self -> /`, stay in the rootfs.
#[test]
fn proc_paths_reach_neither_the_host_nor_a_process_root() {
    let ctx = Ctx::new("cp-hostile-proc");
    let f = fixture(&ctx);
    let root = f.b.rootfs();
    let id = running(&ctx, &f);
    let watch = HostWatch::new(&f);
    let src = ctx.dir.join("hostile-proc");
    write_file(&src, "proc\n");
    let c = |p: &str| format!("{id}:{p}");
    for dst in [
        "/proc/self/root/tmp/",
        "/proc/1/root/tmp/",
        "/proc/self/root/tmp/x",
        "/proc/1/cwd/x",
    ] {
        let out = ctx.rt(&["cp", s(&src), &c(dst)]);
        assert_fails_with(&out, dst, &[&c(dst)]);
        watch.check(dst);
    }
    for src in [
        "/proc/self/root/etc/passwd",
        "/proc/1/root/etc/hostname",
        "/proc/1/environ",
    ] {
        let out = ctx.rt(&["cp", &c(src), s(&f.out.join("got"))]);
        assert_fails_with(&out, src, &[&c(src), "no such file or directory"]);
        assert!(!f.out.join("got").exists());
    }
    let st = ctx.rt(&["stat", &id, "/proc/1/root"]);
    st.assert_fail("stat /proc/1/root");
    // A planted /proc/self -> / in the rootfs (under the container's
    // procfs, seen by the view): the copy stays in the rootfs.
    let planted = root.join("proc/self");
    symlink("/", &planted).unwrap();
    fs::create_dir_all(root.join("root/tmp")).unwrap();
    ctx.rt(&["cp", s(&src), &c("/proc/self/root/tmp/")])
        .assert_ok("through a planted /proc/self");
    assert_eq!(read_file(&root.join("root/tmp/hostile-proc")), "proc\n");
    assert!(!Path::new("/root/tmp/hostile-proc").exists());
    watch.check("/proc");
    finish(&ctx, &id);
}

fn seek_data_supported(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let probe = dir.join("seek-probe");
    let file = fs::File::create(&probe).unwrap();
    file.set_len(1 << 20).unwrap();
    // SAFETY: lseek on an fd we own.
    let r = unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_DATA) };
    let err = std::io::Error::last_os_error().raw_os_error();
    drop(file);
    let _ = fs::remove_file(&probe);
    // A fully sparse file has no data: ENXIO where SEEK_DATA works.
    r == -1 && err == Some(libc::ENXIO)
}

/// 4. A fifo and a 10 GB sparse file at the source: cp out does not hang
///    (the fifo is a header), the sparse file copies in seconds, stays
///    sparse, has the right size and its data blocks.
#[test]
fn fifo_and_sparse_sources_copy_quickly() {
    let ctx = Ctx::new("cp-hostile-sparse");
    let f = fixture(&ctx);
    let root = f.b.rootfs();
    if !seek_data_supported(&root) {
        return skip("the test directory's filesystem has no SEEK_DATA");
    }
    let made = Command::new("mkfifo")
        .arg(root.join("fifo"))
        .status()
        .unwrap();
    assert!(made.success());
    let big = root.join("big");
    const SIZE: u64 = 10 << 30;
    let file = fs::File::create(&big).unwrap();
    file.set_len(SIZE).unwrap();
    use std::os::unix::fs::FileExt;
    let marks: [(u64, &[u8]); 3] = [(0, b"head"), (5 << 30, b"middle"), (SIZE - 4, b"tail")];
    for (off, data) in marks {
        if file.write_all_at(data, off).is_err() {
            return skip("no space for the sparse file's data blocks");
        }
    }
    drop(file);
    let id = running(&ctx, &f);
    let watch = HostWatch::new(&f);

    let fifo_out = f.out.join("fifo");
    let out = ctx.rt(&["cp", &format!("{id}:/fifo"), s(&fifo_out)]);
    out.assert_ok("a fifo");
    assert!(out.elapsed < Duration::from_secs(20), "{:?}", out.elapsed);
    assert!(fs::symlink_metadata(&fifo_out)
        .unwrap()
        .file_type()
        .is_fifo());

    let check = |p: &Path, what: &str| {
        let m = fs::metadata(p).unwrap();
        assert_eq!(m.len(), SIZE, "{what}: size");
        assert!(
            m.blocks() * 512 < 64 << 20,
            "{what}: {} blocks, not sparse",
            m.blocks()
        );
        let file = fs::File::open(p).unwrap();
        for (off, data) in marks {
            let mut got = vec![0; data.len()];
            file.read_exact_at(&mut got, off).unwrap();
            assert_eq!(got, data, "{what}: data at {off}");
        }
        let mut zeros = vec![1u8; 4096];
        file.read_exact_at(&mut zeros, 1 << 30).unwrap();
        assert!(zeros.iter().all(|&b| b == 0), "{what}: a hole");
    };
    let t = Instant::now();
    ctx.rt(&["cp", &format!("{id}:/big"), s(&f.out)])
        .assert_ok("sparse to a dir");
    let to_dir = t.elapsed();
    check(&f.out.join("big"), "to a dir");
    fs::remove_file(f.out.join("big")).unwrap();
    // To `-`: the stream in a file, then extracted by GNU tar.
    let tar = ctx.dir.join("big.tar");
    let t = Instant::now();
    let st = ctx
        .cmd()
        .args(["cp", &format!("{id}:/big"), "-"])
        .stdout(fs::File::create(&tar).unwrap())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let to_stream = t.elapsed();
    assert!(st.success());
    assert!(
        fs::metadata(&tar).unwrap().len() < 1 << 20,
        "the stream carries the holes"
    );
    let x = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&f.out)
        .status()
        .unwrap();
    assert!(x.success());
    check(&f.out.join("big"), "to -");
    eprintln!("MEASURED sparse 10 GB: to a dir {to_dir:.1?}, to - {to_stream:.1?}");
    assert!(to_dir < Duration::from_secs(30), "to a dir took {to_dir:?}");
    assert!(
        to_stream < Duration::from_secs(30),
        "to - took {to_stream:?}"
    );
    watch.check("sparse");
    finish(&ctx, &id);
}

/// Copies in and out of `id` in state `state`: bytes, modes, mtimes and
/// owners with and without -a, the rw volume's host source written, the
/// ro volume refused. `base`: the user namespace's host id of container
/// id 0 (0 without one).
fn copies_in_state(ctx: &Ctx, f: &Fixture, id: &str, state: &str, base: u32) {
    let root = f.b.rootfs();
    let watch = HostWatch::new(f);
    let c = |p: &str| format!("{id}:{p}");
    let src = ctx.dir.join(format!("src-{state}"));
    write_file(&src, &format!("into {state}\n"));
    fs::set_permissions(&src, fs::Permissions::from_mode(0o604)).unwrap();
    chown(&src, 5, 6);
    touch(&src, MTIME);
    let meta = |p: &Path| {
        let m = fs::symlink_metadata(p).unwrap();
        (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime())
    };
    // In: the stream's owners (container ids → host ids); -a: the
    // process's user.
    let plain = format!("/in-{state}");
    ctx.rt(&["cp", s(&src), &c(&plain)])
        .assert_ok(&format!("{state}: cp in"));
    let p = root.join(plain.trim_start_matches('/'));
    assert_eq!(read_file(&p), format!("into {state}\n"));
    assert_eq!(
        meta(&p),
        (0o604, base + 5, base + 6, MTIME),
        "{state}: cp in"
    );
    let archived = format!("/in-a-{state}");
    ctx.rt(&["cp", "-a", s(&src), &c(&archived)])
        .assert_ok(&format!("{state}: cp -a in"));
    let p = root.join(archived.trim_start_matches('/'));
    assert_eq!(
        meta(&p),
        (0o604, base + 1000, base + 1001, MTIME),
        "{state}: cp -a in"
    );
    // Out: the caller owns the copy; -a keeps the container's ids.
    let out = f.out.join(format!("out-{state}"));
    ctx.rt(&["cp", &c(&plain), s(&out)])
        .assert_ok(&format!("{state}: cp out"));
    assert_eq!(read_file(&out), format!("into {state}\n"));
    assert_eq!(meta(&out), (0o604, 0, 0, MTIME), "{state}: cp out");
    let out_a = f.out.join(format!("out-a-{state}"));
    ctx.rt(&["cp", "-a", &c(&plain), s(&out_a)])
        .assert_ok(&format!("{state}: cp -a out"));
    assert_eq!(meta(&out_a), (0o604, 5, 6, MTIME), "{state}: cp -a out");
    // Volumes.
    ctx.rt(&["cp", s(&src), &c("/rw/")])
        .assert_ok(&format!("{state}: into rw"));
    assert_eq!(
        read_file(&f.rw_vol.join(src.file_name().unwrap())),
        format!("into {state}\n")
    );
    assert!(!root.join("rw").join(src.file_name().unwrap()).exists());
    let ro = ctx.rt(&["cp", s(&src), &c("/data/")]);
    assert_fails_with(
        &ro,
        state,
        &[&format!("{id}:/data/: mounted volume is marked read-only")],
    );
    assert!(!f.ro_vol.join(src.file_name().unwrap()).exists());
    let got = f.out.join(format!("vol-{state}"));
    ctx.rt(&["cp", &c("/data/vol.txt"), s(&got)])
        .assert_ok(&format!("{state}: out of ro"));
    assert_eq!(read_file(&got), "ro\n");
    watch.check(state);
}

/// 6. Every state (created, running, paused, stopped), without and with a
///    user namespace.
fn states(userns_on: bool) {
    if runtime_is_runc() {
        return skip("rootcell cp only");
    }
    let ctx = Ctx::new(if userns_on {
        "cp-states-userns"
    } else {
        "cp-states"
    });
    let mut f = fixture(&ctx);
    if userns_on {
        userns(&mut f.b);
    }
    f.b.process()["user"] = json!({"uid": 1000, "gid": 1001});
    f.b.save();
    let base = if userns_on { 100_000 } else { 0 };
    let id = ctx.id("c");
    ctx.create(&id, &f.b, &[]).assert_ok("create");
    ctx.wait_status(&id, "created");
    copies_in_state(&ctx, &f, &id, "created", base);
    ctx.rt(&["start", &id]).assert_ok("start");
    ctx.wait_status(&id, "running");
    copies_in_state(&ctx, &f, &id, "running", base);
    if cgroup_v1_controller("freezer") || !cgroup_v2_root_controllers().is_empty() {
        ctx.rt(&["pause", &id]).assert_ok("pause");
        ctx.wait_status(&id, "paused");
        copies_in_state(&ctx, &f, &id, "paused", base);
        ctx.rt(&["resume", &id]).assert_ok("resume");
    } else {
        skip("no freezer: the paused state is not checked");
    }
    ctx.rt(&["kill", &id, "KILL"]).assert_ok("kill");
    ctx.wait_status(&id, "stopped");
    copies_in_state(&ctx, &f, &id, "stopped", base);
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn copies_in_every_state() {
    states(false);
}

#[test]
fn copies_in_every_state_with_a_user_namespace() {
    states(true);
}

/// 7. NSS and libraries: `strace -f` of cp out (with and without -a) and in
///    shows no open of the container's libraries or nsswitch.conf, planted
///    with a fake libnss module.
#[test]
fn cp_opens_no_library_or_nss_file_of_the_container() {
    if !command_exists("strace") {
        return skip("strace is not installed");
    }
    if runtime_is_runc() {
        return skip("rootcell cp only");
    }
    let ctx = Ctx::new("cp-hostile-nss");
    let f = fixture(&ctx);
    let root = f.b.rootfs();
    let planted = [
        "lib/libnss_files.so.2",
        "lib/x86_64-linux-gnu/libnss_files.so.2",
        "lib64/libnss_files.so.2",
        "usr/lib/libnss_files.so.2",
        "usr/lib/x86_64-linux-gnu/libnss_files.so.2",
        "lib/libnss_planted.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
        "lib64/ld-linux-x86-64.so.2",
    ];
    // The host's own loader opens the host's libc (by the same names):
    // what counts is a path of the container's rootfs, and any NSS file.
    for p in planted {
        write_file(&root.join(p), "not a library\n");
    }
    write_file(
        &root.join("etc/nsswitch.conf"),
        "passwd: planted files\ngroup: planted files\n",
    );
    let id = running(&ctx, &f);
    let watch = HostWatch::new(&f);
    let rootfs = root.canonicalize().unwrap();
    let hsrc = ctx.dir.join("nss-src");
    write_file(&hsrc, "in\n");
    let out = f.out.join("passwd");
    let cases: [(&str, Vec<String>); 3] = [
        (
            "cp out",
            vec![format!("{id}:/etc/passwd"), s(&out).to_string()],
        ),
        (
            "cp -a out",
            vec![
                "-a".into(),
                format!("{id}:/etc/group"),
                s(&f.out).to_string(),
            ],
        ),
        (
            "cp -a in",
            vec!["-a".into(), s(&hsrc).to_string(), format!("{id}:/dst/")],
        ),
    ];
    for (what, args) in cases {
        let log = ctx.dir.join("strace.log");
        let mut c = Command::new("strace");
        c.args(["-f", "-qq", "-e", "trace=%file", "-o"])
            .arg(&log)
            .arg(runtime_path())
            .arg("--root")
            .arg(ctx.state_dir())
            .arg("cp")
            .args(&args);
        let o = exec(&mut c, CMD_TIMEOUT);
        o.assert_ok(what);
        let text = read_file(&log);
        let bad: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.contains("nsswitch")
                    || l.contains("libnss")
                    || l.contains(&format!("{}/", rootfs.display()))
            })
            .collect();
        assert!(
            bad.is_empty(),
            "{what}: opened from the container:\n{}",
            bad.join("\n")
        );
        assert!(
            text.contains("openat2("),
            "{what}: the log holds the view's lookups"
        );
        watch.check(what);
    }
    assert_eq!(read_file(&out), read_file(&root.join("etc/passwd")));
    assert_eq!(read_file(&root.join("dst/nss-src")), "in\n");
    finish(&ctx, &id);
}

/// The threads of this process.
/// 8. Errors name the path, exit non-zero and leave nothing: no file in
///    the destination, no mount, no thread (the library, in this process),
///    and a stream cut short leaves no partial file.
#[test]
fn errors_leave_nothing_behind() {
    if runtime_is_runc() {
        return skip("rootcell cp only");
    }
    let ctx = Ctx::new("cp-hostile-errors");
    let f = fixture(&ctx);
    let root = f.b.rootfs();
    let id = running(&ctx, &f);
    let watch = HostWatch::new(&f);
    let c = |p: &str| format!("{id}:{p}");
    let src = ctx.dir.join("hostile-err");
    write_file(&src, "e\n");
    let root_names = names(&root);

    let out = ctx.rt(&["cp", &c("/nope"), s(&f.out.join("x"))]);
    assert_fails_with(
        &out,
        "missing source",
        &[&format!("{id}:/nope: no such file or directory")],
    );
    assert_eq!(names(&f.out), BTreeSet::new());
    let out = ctx.rt(&["cp", s(&src), &c("/nope/x")]);
    assert_fails_with(
        &out,
        "missing parent",
        &[&c("/nope/x"), "no such file or directory"],
    );
    let out = ctx.rt(&["cp", s(&src), &c("/nope/")]);
    assert_fails_with(&out, "missing dir/", &[&c("/nope/")]);
    let out = ctx.rt(&["cp", s(&src), "no-such-container:/x"]);
    assert_fails_with(&out, "missing container", &["no-such-container"]);
    let out = ctx.rt(&["cp", s(&ctx.dir.join("no-host-src")), &c("/dst/")]);
    assert_fails_with(
        &out,
        "missing host source",
        &["no-host-src", "no such file or directory"],
    );
    let out = ctx.rt(&["cp", &c("/dst"), s(&f.out.join("missing-parent/x"))]);
    assert_fails_with(&out, "missing host parent", &["missing-parent"]);
    assert_eq!(names(&root), root_names, "a file was left in the rootfs");
    assert_eq!(names(&root.join("dst")), BTreeSet::new());
    assert_eq!(names(&f.out), BTreeSet::new());
    watch.check("errors");

    // A long cp (its stream held open): one view thread, its mounts in
    // its own namespace only; cut short, it fails naming the entry and
    // leaves no partial file.
    let mut child = ctx
        .cmd()
        .args(["cp", "-", &c("/dst")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    use std::io::{Read, Write};
    stdin
        .write_all(&raw_entry_sized(
            "slow",
            b'0',
            "",
            &[b's'; 4096],
            1 << 20,
            (0, 0),
        ))
        .unwrap();
    stdin.flush().unwrap();
    let task_dir = PathBuf::from(format!("/proc/{pid}/task"));
    poll(Duration::from_secs(10), "the partial file", || {
        root.join("dst/slow").exists().then_some(())
    });
    let tasks: Vec<PathBuf> = fs::read_dir(&task_dir)
        .unwrap()
        .map(|t| t.unwrap().path())
        .collect();
    assert!(tasks.len() <= 3, "{} threads in a cp", tasks.len());
    // The cp's own mount table is the test's; the view thread's mounts
    // (the rootfs and volumes) live in its own namespace only.
    let points = |p: &Path| {
        let mut v: Vec<String> = fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        points(&task_dir.join(pid.to_string()).join("mountinfo")),
        host_mount_points()
    );
    let view = tasks
        .iter()
        .find(|t| read_file(&t.join("comm")).starts_with("view-"))
        .expect("a view thread");
    assert_ne!(points(&view.join("mountinfo")), host_mount_points());
    drop(stdin);
    let status = wait_child(&mut child, CMD_TIMEOUT, "cp cut short");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success());
    assert!(err.contains("\"slow\""), "{err}");
    assert_eq!(
        names(&root.join("dst")),
        BTreeSet::new(),
        "a partial file is left"
    );
    watch.check("a stream cut short");

    // The library in this process: no thread and no mount left after a
    // failing and a succeeding copy.
    use rootcell::view::cp::{self, CpOptions};
    let runtime = rootcell::container::Runtime {
        root: ctx.state_dir(),
        rootless: false,
        binary: None,
    };
    let before = view_threads();
    let dst = s(&f.out.join("lib")).to_string();
    let bad = cp::parse(&c("/nope"), &dst).unwrap();
    let e = cp::run(&runtime, &bad, CpOptions::default()).unwrap_err();
    assert!(e.to_string().contains(&c("/nope")), "{e}");
    let good = cp::parse(&c("/etc/passwd"), &dst).unwrap();
    cp::run(&runtime, &good, CpOptions::default()).unwrap();
    let into = cp::parse(s(&src), &c("/dst/sub/x")).unwrap();
    assert!(cp::run(&runtime, &into, CpOptions::default()).is_err());
    poll(Duration::from_secs(5), "view threads to end", || {
        (view_threads() == before).then_some(())
    });
    watch.check("library");
    finish(&ctx, &id);
}

/// 2 (rootless). The runtime as uid 1000 (`spec --rootless`: only its own
/// id mapped): device entries are skipped with a warning, never made.
#[test]
fn rootless_caller_skips_device_nodes() {
    skip_unless_rootless_possible!();
    if runtime_is_runc() {
        return skip("rootcell cp only");
    }
    let ctx = rootless_ctx("cp-hostile-rootless");
    let mut b = rootless_spec_bundle_in(&ctx, |rootfs| {
        fs::create_dir_all(rootfs.join("dst")).unwrap();
    });
    b.args(&["sleep", "600"]);
    b.save();
    let root = b.rootfs();
    let id = ctx.id("c");
    ctx.run_detached(&id, &b, &[]).assert_ok("rootless run -d");
    ctx.wait_status(&id, "running");
    let mounts = host_mount_points();
    let mut stream = raw_dev("null", b'3', 1, 3);
    stream.extend(raw_entry("after", b'0', "", b"after\n"));
    let out = cp_stdin(&ctx, &["-", &format!("{id}:/dst")], &end_tar(stream));
    out.assert_ok("rootless cp of a device entry");
    assert!(
        out.stderr.contains("\"null\": device node skipped"),
        "{}",
        out.stderr
    );
    assert!(!root.join("dst/null").exists());
    assert_eq!(read_file(&root.join("dst/after")), "after\n");
    assert_eq!(host_mount_points(), mounts);
    ctx.rt(&["delete", "-f", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// moby's lexical mount destination resolution (the seed's TODO): a
/// volume's destination in the rootfs replaced by a symlink to a host
/// directory after create. The view attaches the volume at the
/// destination resolved inside the root (never `rootfs + dest` followed on
/// the host): copies through it stay in the container or the volume, the
/// host directory gets nothing.
#[test]
fn a_volume_destination_swapped_for_a_symlink_stays_inside() {
    if runtime_is_runc() {
        return skip("rootcell cp only");
    }
    let ctx = Ctx::new("cp-hostile-voldest");
    let mut f = fixture(&ctx);
    fs::create_dir_all(f.b.rootfs().join("vol")).unwrap();
    f.b.bind_mount(&f.rw_vol.clone(), "/vol", false);
    f.b.save();
    let root = f.b.rootfs();
    let id = ctx.id("c");
    ctx.create(&id, &f.b, &[]).assert_ok("create");
    ctx.wait_status(&id, "created");
    // On the host the destination is a plain directory of the rootfs: it
    // can be swapped (a container that can write its own rootfs from the
    // outside, or an image layer, does the same).
    fs::rename(root.join("vol"), root.join("vol-old")).unwrap();
    symlink(&f.host_dir, root.join("vol")).unwrap();
    let watch = HostWatch::new(&f);
    let src = ctx.dir.join("hostile-vol");
    write_file(&src, "vol\n");
    let out = ctx.rt(&["cp", s(&src), &format!("{id}:/vol/")]);
    eprintln!(
        "swapped volume destination: ok={} {}",
        out.ok(),
        out.stderr.trim()
    );
    watch.check("cp into a swapped volume destination");
    if out.ok() {
        let inside = root
            .join(s(&f.host_dir).trim_start_matches('/'))
            .join("hostile-vol");
        eprintln!(
            "in the volume: {}, in the rootfs: {}",
            f.rw_vol.join("hostile-vol").exists(),
            inside.exists()
        );
        assert!(
            f.rw_vol.join("hostile-vol").exists() || inside.exists(),
            "landed nowhere in the container: {}",
            out.stderr
        );
    } else {
        assert!(out.stderr.contains(&id), "{}", out.stderr);
    }
    let got = f.out.join("sentinel");
    let out = ctx.rt(&["cp", &format!("{id}:/vol/sentinel"), s(&got)]);
    if out.ok() {
        assert_ne!(read_file(&got), SENTINEL, "the host's sentinel was read");
    }
    watch.check("cp out of a swapped volume destination");
    ctx.rt(&["delete", "-f", &id]).assert_ok("delete");
    ctx.assert_clean();
}
