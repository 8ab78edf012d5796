//! Idmapped bind mounts (`idmap`, `ridmap`, per-mount `uidMappings` and
//! `gidMappings`): ownership seen through the mount, writes landing with the
//! mapped-back ids on disk, and clear errors where the kernel or the config
//! refuses.
//!
//! The expected ids follow the kernel's rule for an idmapped mount made with
//! the mapping `containerID hostID size`: an id `c` on disk appears as
//! `hostID + (c - containerID)`, and ids outside the mapping appear as the
//! overflow id 65534.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A host directory holding `root-file` (0:0), `user-file` (1000:1000) and
/// `other-file` (5:5).
fn owned_files(dir: &Path) {
    for (name, id) in [("root-file", 0), ("user-file", 1000), ("other-file", 5)] {
        let p = dir.join(name);
        write_file(&p, name);
        chown(&p, id, id);
    }
}

fn mapping(container: u32, host: u32, size: u32) -> Value {
    json!({"containerID": container, "hostID": host, "size": size})
}

/// `ls -ln` of `dir` inside the container as "name uid:gid" lines.
const LIST: &str = "ls -ln DIR | awk 'NF>=9 {print $9\" \"$3\":\"$4}'";

fn list(dir: &str) -> String {
    LIST.replace("DIR", dir)
}

/// A user namespace container mapping 0..65536 to host 100000..165536.
fn with_user_namespace(b: &mut Bundle) {
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([mapping(0, 100_000, 65_536)]);
    b.linux()["gidMappings"] = json!([mapping(0, 100_000, 65_536)]);
    // The rootfs is owned by host root, which is nobody in the container.
    b.config["root"]["readonly"] = json!(false);
}

/// Host (uid, gid) of a file.
fn owner(p: &Path) -> (u32, u32) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

#[test]
fn mount_mappings_shift_ownership_without_a_user_namespace() {
    let ctx = Ctx::new("idmap-own");
    let mut b = ctx.bundle();
    let data = ctx.dir.join("data");
    owned_files(&data);
    b.add_mount(json!({
        "destination": "/data", "type": "bind", "source": data,
        "options": ["bind", "idmap"],
        "uidMappings": [mapping(0, 1234, 1), mapping(1000, 2000, 1)],
        "gidMappings": [mapping(0, 1234, 1), mapping(1000, 2000, 1)],
    }));
    // Container root is host root: unmapped in the mount, so it cannot
    // create files there (EOVERFLOW), while it can still read.
    b.sh(&format!(
        "{}; cat /data/root-file; echo; touch /data/new 2>/dev/null || echo create-refused",
        list("/data")
    ));
    let id = ctx.id("own");
    let out = ctx.run(&id, &b);
    out.assert_ok("run with an idmapped bind");
    assert!(out.stdout.contains("root-file 1234:1234"), "{}", out.all());
    assert!(out.stdout.contains("user-file 2000:2000"), "{}", out.all());
    assert!(
        out.stdout.contains("other-file 65534:65534"),
        "{}",
        out.all()
    );
    assert!(out.stdout.contains("create-refused"), "{}", out.all());
    // The host sees its files unchanged.
    assert_eq!(owner(&data.join("root-file")), (0, 0));
    assert_eq!(owner(&data.join("user-file")), (1000, 1000));
    assert!(!data.join("new").exists());
    ctx.assert_clean();
}

#[test]
fn idmap_without_mappings_uses_the_container_user_namespace() {
    let ctx = Ctx::new("idmap-userns");
    let mut b = ctx.bundle();
    with_user_namespace(&mut b);
    let data = ctx.dir.join("data");
    owned_files(&data);
    fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    b.add_mount(json!({
        "destination": "/idmapped", "type": "bind", "source": data,
        "options": ["bind", "idmap"],
    }));
    // Mountpoints exist already: the container's root cannot create them
    // in a rootfs owned by host root.
    for dir in ["idmapped", "plain"] {
        fs::create_dir_all(b.rootfs().join(dir)).unwrap();
    }
    // The same directory without idmap, for contrast.
    b.add_mount(json!({
        "destination": "/plain", "type": "bind", "source": data,
        "options": ["bind"],
    }));
    b.sh(&format!(
        "{}; echo ---; {}; echo ---; echo written > /idmapped/by-container-root && echo write-ok",
        list("/idmapped"),
        list("/plain")
    ));
    let id = ctx.id("userns");
    let out = ctx.run(&id, &b);
    out.assert_ok("run with idmap in a user namespace");
    let parts: Vec<&str> = out.stdout.split("---").collect();
    assert_eq!(parts.len(), 3, "{}", out.all());
    assert!(parts[0].contains("root-file 0:0"), "{}", out.all());
    assert!(parts[0].contains("user-file 1000:1000"), "{}", out.all());
    assert!(parts[1].contains("root-file 65534:65534"), "{}", out.all());
    assert!(parts[2].contains("write-ok"), "{}", out.all());
    // Container root (host 100000) wrote through the mount: on disk the
    // file belongs to 0, the id it has inside.
    assert_eq!(owner(&data.join("by-container-root")), (0, 0));
    ctx.assert_clean();
}

/// Runs the runtime's `run` for `b` inside a private mount namespace where
/// `setup` (a shell script) ran first: for sources with submounts, which
/// the test must not create in its own namespace.
fn run_after_setup(ctx: &Ctx, id: &str, b: &Bundle, setup: &str) -> Out {
    let cmd = ctx.run_cmd(id, b, &[]);
    let mut line = vec![cmd.get_program().to_string_lossy().into_owned()];
    line.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    let quoted: Vec<String> = line.iter().map(|a| format!("'{a}'")).collect();
    let script = format!("set -e; {setup}; exec {}", quoted.join(" "));
    sh_in_private_mount_ns(&script)
}

#[test]
fn ridmap_maps_submounts_and_idmap_only_the_top() {
    let ctx = Ctx::new("ridmap");
    let mut b = ctx.bundle();
    let data = ctx.dir.join("data");
    let sub_source = ctx.dir.join("sub-source");
    owned_files(&data);
    owned_files(&sub_source);
    fs::create_dir_all(data.join("sub")).unwrap();
    let maps = json!([mapping(0, 1234, 1)]);
    for (dest, option) in [("/r", "ridmap"), ("/n", "idmap")] {
        b.add_mount(json!({
            "destination": dest, "type": "bind", "source": data,
            "options": ["rbind", option],
            "uidMappings": maps, "gidMappings": maps,
        }));
    }
    b.sh(&format!("{}; echo ---; {}", list("/r/sub"), list("/n/sub")));
    let id = ctx.id("r");
    let setup = format!(
        "mount --bind '{}' '{}/sub'",
        sub_source.display(),
        data.display()
    );
    let out = run_after_setup(&ctx, &id, &b, &setup);
    out.assert_ok("run with ridmap over a tree with a submount");
    let (recursive, top_only) = out.stdout.split_once("---").expect("two listings");
    assert!(recursive.contains("root-file 1234:1234"), "{}", out.all());
    // Plain idmap leaves the submount's ids as they are on disk.
    assert!(top_only.contains("root-file 0:0"), "{}", out.all());
    ctx.assert_clean();
}

#[test]
fn idmap_config_errors_name_the_mount() {
    let ctx = Ctx::new("idmap-bad");
    let src = ctx.dir.join("src");
    fs::create_dir_all(&src).unwrap();
    let maps = json!([mapping(0, 1234, 1)]);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                   "uidMappings": maps, "gidMappings": maps}),
            "bind mounts only",
        ),
        (
            json!({"destination": "/t", "type": "bind", "source": src, "options": ["bind", "idmap"]}),
            "user namespace",
        ),
        (
            json!({"destination": "/t", "type": "bind", "source": src, "options": ["bind"],
                   "uidMappings": maps}),
            "both uidMappings and gidMappings",
        ),
        (
            json!({"destination": "/t", "type": "bind", "source": src, "options": ["bind", "idmap"],
                   "uidMappings": [mapping(0, 1234, 0)], "gidMappings": maps}),
            "size",
        ),
        // sysfs does not support idmapped mounts: the kernel refuses.
        (
            json!({"destination": "/t", "type": "bind", "source": "/sys/kernel", "options": ["bind", "idmap"],
                   "uidMappings": maps, "gidMappings": maps}),
            "does not support idmapped mounts",
        ),
    ];
    for (i, (mount, expected)) in cases.into_iter().enumerate() {
        let mut b = ctx.bundle();
        let index = b.config["mounts"].as_array().map_or(0, |a| a.len());
        b.add_mount(mount);
        let id = ctx.id(&format!("bad{i}"));
        let out = ctx.run(&id, &b);
        out.assert_fail(&format!("idmap case {i}"));
        let err = out.all();
        assert!(err.contains(&format!("mounts[{index}]")), "case {i}: {err}");
        assert!(err.contains(expected), "case {i}: {err}");
        assert!(ctx.try_state(&id).is_none(), "case {i}: state left behind");
    }
    assert!(fs::read_dir(&src).unwrap().next().is_none());
    ctx.assert_clean();
}
