//! `rootcell cp` and what travels besides bytes: extended attributes as
//! docker cp carries them (`security.capability` packed as a
//! `SCHILY.xattr` pax record, every such record set when extracting), file
//! capabilities into and out of a user-namespaced container, and the id
//! mapping of a container that joins a user namespace by path (`-a`, the
//! stream's owners), running, stopped, and once that namespace is gone.

mod common;

use common::cp::{cp_out_stream, tar_listing, tar_with_input};
use common::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rustix::fs::XattrFlags;

const CAP: &str = "security.capability";

/// A `security.capability` value: v2 (`rootid` None) or v3 of `rootid`,
/// with CAP_DAC_OVERRIDE, CAP_FOWNER and CAP_NET_RAW permitted and
/// effective (its second byte is 0x0a: a newline inside the pax record).
fn cap(rootid: Option<u32>) -> Vec<u8> {
    let rev: u32 = if rootid.is_some() {
        0x0300_0000
    } else {
        0x0200_0000
    };
    let mut v = (rev | 1).to_le_bytes().to_vec();
    v.extend_from_slice(&((1u32 << 13) | 0x0a).to_le_bytes());
    v.extend_from_slice(&[0; 12]);
    if let Some(r) = rootid {
        v.extend_from_slice(&r.to_le_bytes());
    }
    v
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 1024];
    let n = rustix::fs::lgetxattr(path, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", path.display()));
}

/// Whether the filesystem of `dir` takes `user.*` xattrs.
fn user_xattrs(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    fs::write(&probe, b"").unwrap();
    let ok = rustix::fs::setxattr(&probe, "user.probe", b"1", XattrFlags::empty()).is_ok();
    fs::remove_file(&probe).unwrap();
    ok
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One tar entry (ustar header and padded data) of type `kind`.
fn raw_entry(name: &str, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(if kind == b'5' { b"0000755" } else { b"0000644" });
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    let size = format!("{:011o}", body.len());
    h[124..135].copy_from_slice(size.as_bytes());
    h[136..147].copy_from_slice(b"14000000000");
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// Pax records `"<len> SCHILY.xattr.<name>=<value>\n"`.
fn pax_xattrs(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in records {
        let rest = format!(" SCHILY.xattr.{name}=").len() + value.len() + 1;
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len += 1;
        }
        out.extend_from_slice(format!("{len} SCHILY.xattr.{name}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// A tar entry: name, type, xattrs (name, value), data.
type TarEntry<'a> = (&'a str, u8, &'a [(&'a str, &'a [u8])], &'a [u8]);

/// A tar stream of entries, each with a pax header of its xattrs first.
fn xattr_tar(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, xattrs, body) in entries {
        if !xattrs.is_empty() {
            out.extend(raw_entry("PaxHeaders/x", b'x', &pax_xattrs(xattrs)));
        }
        out.extend(raw_entry(name, *kind, body));
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn cp_stdin(ctx: &Ctx, args: &[&str], input: &[u8]) -> Out {
    let mut c = ctx.cmd();
    c.arg("cp").args(args);
    exec_input(&mut c, Some(input), Duration::from_secs(60))
}

/// Extracts a tar stream with GNU tar, xattrs included.
fn gnu_extract(tar: &[u8], dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let into = format!("--directory={}", dir.display());
    let out = tar_with_input(&["--xattrs", "--xattrs-include=*", "-xpf", "-", &into], tar);
    assert!(out.status.success(), "tar -x: {out:?}");
}

/// A stopped busybox container (its rootfs is kept) with `setup` applied
/// to its bundle first.
fn stopped(ctx: &Ctx, setup: impl FnOnce(&mut Bundle)) -> (String, Bundle) {
    let mut b = ctx.bundle();
    setup(&mut b);
    b.args(&["true"]);
    b.save();
    let id = ctx.id("c");
    ctx.run_detached(&id, &b, &[]).assert_ok("run -d true");
    ctx.wait_status(&id, "stopped");
    (id, b)
}

fn userns(b: &mut Bundle) {
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.remove_mount("/sys/fs/cgroup");
}

#[test]
fn file_capabilities_travel_both_ways_as_docker_writes_them() {
    let ctx = Ctx::new("cpx-caps");
    let (id, b) = stopped(&ctx, |_| {});
    let root = b.rootfs();
    let before = host_mount_points();
    let c = |p: &str| format!("{id}:{p}");
    fs::write(root.join("pinger"), b"#!/bin/sh\n").unwrap();
    set_xattr(&root.join("pinger"), CAP, &cap(None));
    // Out to the host: the capability is set on the copy.
    let out = ctx.dir.join("out");
    fs::create_dir_all(&out).unwrap();
    ctx.rt(&["cp", &c("/pinger"), s(&out)]).assert_ok("cp out");
    assert_eq!(get_xattr(&out.join("pinger"), CAP), Some(cap(None)));
    // Out as a stream: GNU tar reads the pax record and sets it.
    let tar = cp_out_stream(&ctx, &c("/pinger"));
    let gnu = ctx.dir.join("gnu");
    gnu_extract(&tar, &gnu);
    assert_eq!(get_xattr(&gnu.join("pinger"), CAP), Some(cap(None)));
    // A name longer than a ustar header holds: the pax header, then GNU's
    // long-name entry, then the entry; GNU tar pairs them.
    let long = format!("d/{}", "n".repeat(150));
    fs::create_dir_all(root.join("d")).unwrap();
    fs::write(root.join(&long), b"long").unwrap();
    set_xattr(&root.join(&long), CAP, &cap(None));
    let tar = cp_out_stream(&ctx, &c("/d"));
    gnu_extract(&tar, &gnu);
    assert_eq!(get_xattr(&gnu.join(&long), CAP), Some(cap(None)));
    assert_eq!(read_file(&gnu.join(&long)), "long");
    // In from the host.
    let h = ctx.dir.join("hostcap");
    fs::write(&h, b"h").unwrap();
    set_xattr(&h, CAP, &cap(None));
    ctx.rt(&["cp", s(&h), &c("/in")]).assert_ok("cp in");
    assert_eq!(get_xattr(&root.join("in"), CAP), Some(cap(None)));
    assert_eq!(read_file(&root.join("in")), "h");
    // A stream GNU tar wrote (`--xattrs`: SCHILY.xattr records).
    let mut gnu_c = Command::new("tar");
    gnu_c
        .args(["--xattrs", "--xattrs-include=*", "-cf", "-", "-C"])
        .arg(&ctx.dir)
        .arg("hostcap");
    let gnu_tar = gnu_c.output().unwrap();
    assert!(gnu_tar.status.success(), "tar -c: {gnu_tar:?}");
    fs::create_dir_all(root.join("fromgnu")).unwrap();
    cp_stdin(&ctx, &["-", &c("/fromgnu")], &gnu_tar.stdout).assert_ok("cp - (GNU tar)");
    assert_eq!(
        get_xattr(&root.join("fromgnu/hostcap"), CAP),
        Some(cap(None))
    );
    // A file without one gets none, and no other xattr travels out
    // (docker packs the capability only).
    if user_xattrs(&root) {
        set_xattr(&root.join("pinger"), "user.note", b"x");
        ctx.rt(&["cp", &c("/pinger"), s(&out.join("again"))])
            .assert_ok("cp out again");
        assert_eq!(get_xattr(&out.join("again"), "user.note"), None);
        assert_eq!(get_xattr(&out.join("again"), CAP), Some(cap(None)));
    }
    assert_eq!(host_mount_points(), before, "the mount table changed");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn capabilities_into_a_user_namespace_belong_to_its_root() {
    let ctx = Ctx::new("cpx-userns");
    let (id, b) = stopped(&ctx, userns);
    let root = b.rootfs();
    let c = |p: &str| format!("{id}:{p}");
    // In: a v2 capability becomes v3 of the container's root (host uid
    // 100000), as the kernel stores one the container's root writes: it
    // gives nothing outside that namespace.
    let h = ctx.dir.join("hostcap");
    fs::write(&h, b"h").unwrap();
    set_xattr(&h, CAP, &cap(None));
    ctx.rt(&["cp", s(&h), &c("/in")]).assert_ok("cp in");
    assert_eq!(get_xattr(&root.join("in"), CAP), Some(cap(Some(100_000))));
    // A v3 record of container uid 7 in a stream: v3 of host uid 100007.
    let tar = xattr_tar(&[("v3", b'0', &[(CAP, &cap(Some(7)))], b"v")]);
    cp_stdin(&ctx, &["-", &c("/")], &tar).assert_ok("cp - in");
    assert_eq!(get_xattr(&root.join("v3"), CAP), Some(cap(Some(100_007))));
    // Out: the container root's capability travels as v2 (docker's
    // conversion), uid 7's as v3 of container uid 7.
    let tar = cp_out_stream(&ctx, &c("/in"));
    let gnu = ctx.dir.join("gnu");
    gnu_extract(&tar, &gnu);
    assert_eq!(get_xattr(&gnu.join("in"), CAP), Some(cap(None)));
    let out = ctx.dir.join("v3-out");
    ctx.rt(&["cp", &c("/v3"), s(&out)]).assert_ok("cp out v3");
    assert_eq!(get_xattr(&out, CAP), Some(cap(Some(7))));
    // trusted.* (which the container's root could not set) is left out;
    // user.* is set.
    if user_xattrs(&root) {
        let tar = xattr_tar(&[("t", b'0', &[("trusted.t", b"t"), ("user.u", b"u")], b"t")]);
        cp_stdin(&ctx, &["-", &c("/")], &tar).assert_ok("cp - trusted");
        assert_eq!(get_xattr(&root.join("t"), "trusted.t"), None);
        assert_eq!(get_xattr(&root.join("t"), "user.u"), Some(b"u".to_vec()));
    }
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn xattr_records_of_a_stream_are_set_like_docker_does() {
    let ctx = Ctx::new("cpx-stream");
    let (id, b) = stopped(&ctx, |_| {});
    let root = b.rootfs();
    if !user_xattrs(&root) {
        skip("the test directory's filesystem takes no user.* xattrs");
        ctx.rt(&["delete", &id]).assert_ok("delete");
        return;
    }
    let before = host_mount_points();
    let c = |p: &str| format!("{id}:{p}");
    let note: &[u8] = b"line one\nline two\0binary";
    let tar = xattr_tar(&[
        ("d", b'5', &[("user.note", note), ("trusted.t", b"t")], b""),
        (
            "d/f",
            b'0',
            &[("user.note", note), (CAP, &cap(None))],
            b"data",
        ),
    ]);
    cp_stdin(&ctx, &["-", &c("/")], &tar).assert_ok("cp - in");
    for p in ["d", "d/f"] {
        assert_eq!(get_xattr(&root.join(p), "user.note").as_deref(), Some(note));
    }
    // No user namespace: the container's root could set trusted.* itself.
    assert_eq!(get_xattr(&root.join("d"), "trusted.t"), Some(b"t".to_vec()));
    // Set after the data and the owner (each clears a capability).
    assert_eq!(get_xattr(&root.join("d/f"), CAP), Some(cap(None)));
    assert_eq!(read_file(&root.join("d/f")), "data");
    // A namespace the filesystem refuses (EOPNOTSUPP): an error naming the
    // entry and the attribute, as docker's cp (no best-effort xattrs).
    let bad = xattr_tar(&[("bad", b'0', &[("bogus.x", b"1")], b"b")]);
    let out = cp_stdin(&ctx, &["-", &c("/")], &bad);
    out.assert_fail("an unsupported xattr");
    assert!(
        out.stderr.contains("bogus.x") && out.stderr.contains("\"bad\""),
        "{}",
        out.stderr
    );
    // A capability value the kernel refuses (EINVAL): an error too.
    let junk = xattr_tar(&[("junk", b'0', &[(CAP, b"junk")], b"j")]);
    cp_stdin(&ctx, &["-", &c("/")], &junk).assert_fail("a malformed capability");
    assert_eq!(host_mount_points(), before, "the mount table changed");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// A process in a user namespace of its own (0 → 100000 uids, 0 → 200000
/// gids), holding it for containers to join by path. Killed on drop.
struct NsHolder {
    child: Option<std::process::Child>,
    pid: i32,
}

impl NsHolder {
    fn new() -> NsHolder {
        let child = Command::new("unshare")
            .args(["--user", "sleep", "600"])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut holder = NsHolder {
            child: Some(child),
            pid,
        };
        let host = host_ns("user");
        poll(
            Duration::from_secs(10),
            "the holder's user namespace",
            || {
                let ns = fs::read_link(format!("/proc/{pid}/ns/user")).ok()?;
                (ns.to_string_lossy() != host).then_some(())
            },
        );
        let maps = fs::write(format!("/proc/{pid}/uid_map"), "0 100000 65536\n")
            .and_then(|()| fs::write(format!("/proc/{pid}/gid_map"), "0 200000 65536\n"));
        if let Err(e) = maps {
            holder.kill();
            panic!("writing the holder's id maps: {e}");
        }
        holder
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/user", self.pid)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn archive_ids_of_a_container_that_joins_a_user_namespace() {
    let ctx = Ctx::new("cpx-joined");
    let mut holder = NsHolder::new();
    let mut b = ctx.bundle();
    b.set_namespace("user", Some(&holder.path()));
    b.remove_mount("/sys/fs/cgroup");
    b.process()["user"] = json!({"uid": 1000, "gid": 1001});
    b.args(&["sleep", "600"]);
    b.save();
    let root = b.rootfs();
    let f = root.join("f");
    fs::write(&f, b"f\n").unwrap();
    chown(&f, 100_007, 200_008);
    let id = ctx.id("c");
    ctx.run_detached(&id, &b, &[])
        .assert_ok("run -d (joined user namespace)");
    ctx.wait_status(&id, "running");
    let before = host_mount_points();
    let c = |p: &str| format!("{id}:{p}");
    let out = ctx.dir.join("out");
    fs::create_dir_all(&out).unwrap();
    let owner = |p: &Path| {
        let m = fs::metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    // Running: the mapping of its init's namespace. The stream carries
    // container ids; -a keeps them.
    let list = tar_listing(&cp_out_stream(&ctx, &c("/f")));
    assert!(list.contains(" 7/8 "), "{list}");
    ctx.rt(&["cp", "-a", &c("/f"), s(&out.join("kept"))])
        .assert_ok("cp -a out");
    assert_eq!(owner(&out.join("kept")), (7, 8));
    // In: the stream's owners (container ids) mapped to host ids; with -a
    // the config's process.user, mapped.
    let h = ctx.dir.join("h");
    write_file(&h, "h\n");
    chown(&h, 5, 6);
    ctx.rt(&["cp", s(&h), &c("/in-plain")]).assert_ok("cp in");
    assert_eq!(owner(&root.join("in-plain")), (100_005, 200_006));
    ctx.rt(&["cp", "-a", s(&h), &c("/in-a")])
        .assert_ok("cp -a in");
    assert_eq!(owner(&root.join("in-a")), (101_000, 201_001));
    // Stopped, the namespace still held, then gone: the mapping was
    // recorded at create (from init's maps), nothing is read from the
    // namespace path, which could name another namespace by now.
    ctx.rt(&["kill", &id, "KILL"]).assert_ok("kill");
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["cp", "-a", &c("/f"), s(&out.join("stopped"))])
        .assert_ok("cp -a out of the stopped container");
    assert_eq!(owner(&out.join("stopped")), (7, 8));
    holder.kill();
    ctx.rt(&["cp", "-a", &c("/f"), s(&out.join("gone"))])
        .assert_ok("cp -a with the namespace gone");
    assert_eq!(owner(&out.join("gone")), (7, 8));
    ctx.rt(&["cp", s(&h), &c("/in-gone")])
        .assert_ok("cp in with the namespace gone");
    assert_eq!(owner(&root.join("in-gone")), (100_005, 200_006));
    ctx.rt(&["cp", &c("/f"), s(&out.join("plain"))])
        .assert_ok("cp out without -a");
    assert_eq!(read_file(&out.join("plain")), "f\n");
    assert_eq!(owner(&out.join("plain")), (0, 0));
    assert_eq!(host_mount_points(), before, "the mount table changed");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}
