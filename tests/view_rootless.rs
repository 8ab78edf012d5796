//! `rootcell cp` and `rootcell stat` run by an unprivileged user (uid 1000)
//! on its own rootless container: the view is built in a user namespace
//! with the container's mapping (`view::userns`), so files show the
//! container's ids, copies both ways work running and stopped, symlinks stay
//! inside, and nothing the user could not reach itself is reached: not a
//! host file it cannot read, not a read-only volume, not the host's mounts.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn owner(p: &Path) -> (u32, u32) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

#[test]
fn an_unprivileged_user_copies_in_and_out_of_its_container() {
    skip_unless_rootless_possible!();
    if runtime_is_runc() {
        return skip("rootcell cp only");
    }
    let ctx = rootless_ctx("view-rootless");
    let mut b = rootless_spec_bundle_in(&ctx, |rootfs| {
        fs::create_dir_all(rootfs.join("srcdir")).unwrap();
        write_file(&rootfs.join("srcdir/f"), "container file\n");
        fs::set_permissions(rootfs.join("srcdir/f"), fs::Permissions::from_mode(0o640)).unwrap();
        symlink("/", rootfs.join("hostroot")).unwrap();
        fs::create_dir_all(rootfs.join("ro")).unwrap();
    });
    let rootfs = b.rootfs();
    // A volume the user owns, bound read-only.
    let ro_vol = ctx.dir.join("ro-vol");
    fs::create_dir_all(&ro_vol).unwrap();
    write_file(&ro_vol.join("v"), "volume\n");
    chown_tree(&ro_vol, UNPRIV_UID, UNPRIV_GID);
    b.bind_mount(&ro_vol, "/ro", true);
    b.args(&["sleep", "600"]);
    b.save();
    // A host file uid 1000 cannot read, and a host directory it cannot write.
    let secret = ctx.dir.join("secret");
    write_file(&secret, "root only\n");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let out = ctx.dir.join("out");
    fs::create_dir_all(&out).unwrap();
    chown(&out, UNPRIV_UID, UNPRIV_GID);
    let id = ctx.id("c");
    ctx.run_detached(&id, &b, &[]).assert_ok("rootless run -d");
    ctx.wait_status(&id, "running");
    let before = host_mount_points();
    let c = |p: &str| format!("{id}:{p}");

    for state in ["running", "stopped"] {
        if state == "stopped" {
            ctx.rt(&["kill", &id, "KILL"]).assert_ok("kill");
            ctx.wait_status(&id, "stopped");
        }
        // stat: the container's ids are not shown, but the file is found,
        // and a symlink to / resolves inside.
        let st = ctx.rt(&["stat", "--json", &id, "/hostroot"]);
        st.assert_ok("rootless stat");
        let v: Value = serde_json::from_str(&st.stdout).unwrap();
        assert_eq!(v["linkTarget"], "/", "{}", st.stdout);
        // Out: bytes and mode; the copy belongs to the user.
        let copy = out.join(format!("f-{state}"));
        ctx.rt(&["cp", &c("/srcdir/f"), s(&copy)])
            .assert_ok("rootless cp out");
        assert_eq!(read_file(&copy), "container file\n");
        assert_eq!(fs::metadata(&copy).unwrap().mode() & 0o777, 0o640);
        assert_eq!(owner(&copy), (UNPRIV_UID, UNPRIV_GID));
        // -a: the container's ids (its root is the user).
        let kept = out.join(format!("kept-{state}"));
        ctx.rt(&["cp", "-a", &c("/srcdir/f"), s(&kept)])
            .assert_ok("rootless cp -a out");
        assert_eq!(owner(&kept), (UNPRIV_UID, UNPRIV_GID));
        // In: lands in the rootfs, owned by the container's root (the user).
        let host_file = ctx.dir.join(format!("in-{state}"));
        write_file(&host_file, "from the host\n");
        chown(&host_file, UNPRIV_UID, UNPRIV_GID);
        ctx.rt(&["cp", s(&host_file), &c("/srcdir/")])
            .assert_ok("rootless cp in");
        let landed = rootfs.join(format!("srcdir/in-{state}"));
        assert_eq!(read_file(&landed), "from the host\n");
        assert_eq!(owner(&landed), (UNPRIV_UID, UNPRIV_GID));
        // Through the symlink to /: into the container's root, not the host's.
        ctx.rt(&["cp", s(&host_file), &c("/hostroot/tmp/")])
            .assert_ok("rootless cp through a symlink to /");
        assert!(rootfs.join(format!("tmp/in-{state}")).exists());
        assert!(!Path::new("/tmp").join(format!("in-{state}")).exists());
        // The read-only volume is refused as docker does.
        let ro = ctx.rt(&["cp", s(&host_file), &c("/ro/")]);
        ro.assert_fail("rootless cp into a read-only volume");
        assert!(ro.stderr.contains("marked read-only"), "{}", ro.stderr);
        assert!(!ro_vol.join(format!("in-{state}")).exists());
        // A host file the user cannot read stays unread.
        let denied = ctx.rt(&["cp", s(&secret), &c("/srcdir/")]);
        denied.assert_fail("rootless cp of a host file the user cannot read");
        assert!(!rootfs.join("srcdir/secret").exists());
        assert_eq!(host_mount_points(), before, "the mount table changed");
    }
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}
