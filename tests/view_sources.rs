//! The host sources a view attaches (the rootfs and the volumes) are the
//! ones the container was given at create, checked by device and inode:
//! a container that swaps a volume's host source for a symlink to a host
//! directory, or a rootfs replaced since create, makes `cp` and `stat`
//! refuse, never write into or read from the host; an idmapped volume is
//! seen through its idmap, as the container sees it.

mod common;

use common::cp::{cp_out_stream, tar_listing};
use common::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn owner(p: &Path) -> (u32, u32) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

/// The names in a host directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A container whose process can write above its volume's host source
/// (`/parent` is the source's parent, bound read-write): it moves the
/// volume away and puts a symlink to a host directory in its place. A
/// view built by path would attach that host directory at `/vol`.
#[test]
fn a_volume_source_swapped_for_a_symlink_is_refused() {
    let ctx = Ctx::new("view-swap");
    let mut b = ctx.bundle();
    let parent = ctx.dir.join("parent");
    let vol = parent.join("vol");
    fs::create_dir_all(&vol).unwrap();
    write_file(&vol.join("in-vol"), "volume\n");
    let victim = ctx.dir.join("victim");
    fs::create_dir_all(&victim).unwrap();
    write_file(&victim.join("secret"), "host secret\n");
    fs::create_dir_all(b.rootfs().join("parent")).unwrap();
    fs::create_dir_all(b.rootfs().join("vol")).unwrap();
    b.bind_mount(&parent, "/parent", false);
    b.bind_mount(&vol, "/vol", false);
    b.config["root"]["readonly"] = json!(false);
    b.sh(&format!(
        "mv /parent/vol /parent/vol-old && ln -s {} /parent/vol && touch /parent/done; sleep 600",
        victim.display()
    ));
    b.save();
    let id = ctx.id("c");
    ctx.run_detached(&id, &b, &[]).assert_ok("run -d");
    wait_for_file(&parent.join("done"));
    assert!(fs::symlink_metadata(&vol).unwrap().file_type().is_symlink());
    let before = host_mount_points();
    let host_file = ctx.dir.join("host-file");
    write_file(&host_file, "from the host\n");

    let into = ctx.rt(&["cp", s(&host_file), &format!("{id}:/vol/")]);
    into.assert_fail("cp into the swapped volume");
    assert!(
        into.stderr.contains("mounts[")
            && into
                .stderr
                .contains("no longer what the container was given"),
        "{}",
        into.stderr
    );
    let out_dir = ctx.dir.join("out");
    fs::create_dir_all(&out_dir).unwrap();
    let out = ctx.rt(&["cp", &format!("{id}:/vol/secret"), s(&out_dir)]);
    out.assert_fail("cp out of the swapped volume");
    let stat = ctx.rt(&["stat", &id, "/vol/secret"]);
    stat.assert_fail("stat through the swapped volume");
    // The host directory the symlink leads to is untouched and unread.
    assert_eq!(names(&victim), ["secret"]);
    assert!(names(&out_dir).is_empty());
    assert_eq!(host_mount_points(), before);

    // Put back, the volume is the container's again and cp works.
    fs::remove_file(&vol).unwrap();
    fs::rename(parent.join("vol-old"), &vol).unwrap();
    ctx.rt(&["cp", s(&host_file), &format!("{id}:/vol/")])
        .assert_ok("cp into the volume put back");
    assert_eq!(read_file(&vol.join("host-file")), "from the host\n");
    ctx.rt(&["delete", "-f", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// A rootfs directory replaced since create (renamed away, a new one
/// made at its path) is not the container's: refused, not copied into.
#[test]
fn a_rootfs_replaced_since_create_is_refused() {
    let ctx = Ctx::new("view-rootfs");
    let mut b = ctx.bundle();
    b.args(&["true"]);
    b.save();
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("create");
    let rootfs = b.rootfs();
    let moved = ctx.dir.join("rootfs-moved");
    fs::rename(&rootfs, &moved).unwrap();
    fs::create_dir(&rootfs).unwrap();
    let host_file = ctx.dir.join("host-file");
    write_file(&host_file, "x\n");
    let refused = ctx.rt(&["cp", s(&host_file), &format!("{id}:/")]);
    refused.assert_fail("cp into a replaced rootfs");
    assert!(
        refused.stderr.contains("rootfs: ")
            && refused
                .stderr
                .contains("no longer what the container was given"),
        "{}",
        refused.stderr
    );
    assert!(names(&rootfs).is_empty());
    fs::remove_dir(&rootfs).unwrap();
    fs::rename(&moved, &rootfs).unwrap();
    ctx.rt(&["cp", s(&host_file), &format!("{id}:/")])
        .assert_ok("cp into the rootfs put back");
    assert_eq!(read_file(&rootfs.join("host-file")), "x\n");
    ctx.rt(&["delete", "-f", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// An idmapped volume of a user-namespaced container (both 0 → 100000):
/// a file 1000:1000 on disk is 1000:1000 in the container, so `cp -a`
/// out keeps 1000:1000 (not the overflow id), and a copy in with the
/// stream's owners 5:6 lands on disk as 5:6, as if the container wrote it.
#[test]
fn an_idmapped_volume_is_seen_as_the_container_sees_it() {
    let ctx = Ctx::new("view-idmap");
    let mut b = ctx.bundle();
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = map.clone();
    b.linux()["gidMappings"] = map.clone();
    b.config["root"]["readonly"] = json!(false);
    b.remove_mount("/sys/fs/cgroup");
    let vol = ctx.dir.join("vol");
    fs::create_dir_all(&vol).unwrap();
    let f = vol.join("f");
    write_file(&f, "owned\n");
    chown(&f, 1000, 1000);
    fs::create_dir_all(b.rootfs().join("vol")).unwrap();
    b.add_mount(json!({
        "destination": "/vol", "type": "bind", "source": vol,
        "options": ["bind", "idmap"], "uidMappings": map, "gidMappings": map,
    }));
    b.sh("stat -c '%u:%g' /vol/f");
    b.save();
    let id = ctx.id("c");
    let run = ctx.run_detached(&id, &b, &[]);
    if !run.ok() && run.stderr.contains("idmap of") && run.stderr.contains("refused by the kernel")
    {
        // The test directory's filesystem takes no idmapped mounts here.
        ctx.rt(&["delete", "-f", &id]);
        ctx.assert_clean();
        return skip(&format!("no idmapped mounts: {}", run.stderr.trim()));
    }
    run.assert_ok("run -d");
    ctx.wait_status(&id, "stopped");
    let before = host_mount_points();

    let kept = ctx.dir.join("kept");
    ctx.rt(&["cp", "-a", &format!("{id}:/vol/f"), s(&kept)])
        .assert_ok("cp -a out of the idmapped volume");
    assert_eq!(owner(&kept), (1000, 1000));
    // The stream carries the container's ids.
    let listing = tar_listing(&cp_out_stream(&ctx, &format!("{id}:/vol/f")));
    assert!(listing.contains(" 1000/1000 "), "{listing}");

    let h = ctx.dir.join("h");
    write_file(&h, "h\n");
    chown(&h, 5, 6);
    ctx.rt(&["cp", s(&h), &format!("{id}:/vol/h")])
        .assert_ok("cp into the idmapped volume");
    assert_eq!(owner(&vol.join("h")), (5, 6));
    assert_eq!(owner(&f), (1000, 1000));
    assert_eq!(host_mount_points(), before);
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}
