//! Rootless containers: the runtime run by an unprivileged user (uid 1000,
//! via setpriv) with a bundle from `spec --rootless`.

mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// A busybox bundle whose config.json is written by `spec --rootless`
/// running as uid 1000 (so the bundle dir is owned by 1000).
fn rootless_bundle(ctx: &Ctx) -> Bundle {
    let path = ctx.dir.join("rlbundle");
    make_rootfs(&path.join("rootfs"));
    chown(&path, UNPRIV_UID, UNPRIV_GID);
    let mut c = ctx.cmd();
    // `spec` takes no --root, but accepts the global flag; keep it simple
    // and pass only the subcommand's own flags after the global ones.
    c.arg("spec").arg("--rootless").arg("--bundle").arg(&path);
    exec(&mut c, CMD_TIMEOUT).assert_ok("spec --rootless as uid 1000");
    let cfg = parse_json(&read_file(&path.join("config.json")), "rootless config");
    // Mappings name the invoking user.
    assert_eq!(
        cfg["linux"]["uidMappings"][0]["hostID"], UNPRIV_UID,
        "{cfg}"
    );
    assert_eq!(
        cfg["linux"]["gidMappings"][0]["hostID"], UNPRIV_GID,
        "{cfg}"
    );
    assert_eq!(cfg["linux"]["uidMappings"][0]["containerID"], 0);
    let mut b = Bundle { path, config: cfg };
    b.config["process"]["terminal"] = json!(false);
    b.config["root"]["readonly"] = json!(false);
    b
}

/// Host uid of `pid` (real uid from /proc/PID/status).
fn host_uid(pid: i32) -> u32 {
    let st = read_file(&PathBuf::from(format!("/proc/{pid}/status")));
    st.lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("Uid line")
}

#[test]
fn rootless_run_maps_root_to_invoking_user() {
    skip_unless_rootless_possible!();
    let (ctx, _xdg) = rootless_ctx_with("rlrun", true);
    let mut b = rootless_bundle(&ctx);
    b.sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; readlink /proc/self/ns/user");
    let id = ctx.id("c");
    let out = ctx.run(&id, &b);
    out.assert_ok("rootless run");
    let l = lines(&out.stdout);
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(l[0], "0", "{}", out.stdout);
    assert_eq!(l[1], "0", "{}", out.stdout);
    assert_eq!(words(&l[2]), ["0", "1000", "1"], "{}", out.stdout);
    assert_eq!(words(&l[3]), ["0", "1000", "1"], "{}", out.stdout);
    assert_ne!(l[4], host_ns("user"));
    ctx.assert_clean();
    assert_eq!(ctx.state_entries(), Vec::<String>::new());
}

#[test]
fn rootless_lifecycle_create_start_kill_delete() {
    skip_unless_rootless_possible!();
    let (ctx, _xdg) = rootless_ctx_with("rllife", true);
    let mut b = rootless_bundle(&ctx);
    b.args(&["sleep", "100"]);
    let id = ctx.id("c");
    let before = host_mount_points();
    ctx.create(&id, &b, &[]).assert_ok("rootless create");
    let st = ctx.state(&id);
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid_alive(pid));
    // The state dir belongs to the unprivileged user.
    use std::os::unix::fs::MetadataExt;
    let md = fs::metadata(ctx.state_dir().join(&id)).expect("state entry for id");
    assert_eq!(md.uid(), UNPRIV_UID);

    ctx.rt(&["start", &id]).assert_ok("rootless start");
    assert_eq!(ctx.status(&id), "running");
    // Container root is uid 1000 on the host: no privilege gained.
    assert_eq!(host_uid(pid), UNPRIV_UID);
    assert_eq!(ctx.list_ids(), vec![id.clone()]);

    ctx.rt(&["kill", &id, "KILL"]).assert_ok("rootless kill");
    wait_pid_dead(pid);
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("rootless delete");
    ctx.assert_clean();
    assert_eq!(host_mount_points(), before);
}

#[test]
fn rootless_cannot_use_host_root_privileges() {
    skip_unless_rootless_possible!();
    let (ctx, _xdg) = rootless_ctx_with("rlpriv", true);
    let mut b = rootless_bundle(&ctx);
    // A root-owned host dir, bind-mounted rw: container "root" is uid 1000
    // on the host and must not be able to write into it.
    let host_dir = ctx.dir.join("root-owned");
    fs::create_dir_all(&host_dir).unwrap();
    fs::set_permissions(&host_dir, fs::Permissions::from_mode(0o755)).unwrap();
    b.bind_mount(&host_dir, "/hostdir", false);
    // The rootfs is owned by host root, so the mount point must exist.
    fs::create_dir_all(b.rootfs().join("hostdir")).unwrap();
    b.sh("touch /hostdir/f 2>&1 || echo denied; stat -c %u /hostdir");
    let id = ctx.id("c");
    let out = ctx.run(&id, &b);
    out.assert_ok("rootless run");
    assert!(out.stdout.contains("denied"), "{}", out.stdout);
    // Unmapped host root shows as the overflow uid.
    assert!(out.stdout.contains("65534"), "{}", out.stdout);
    assert!(!host_dir.join("f").exists());
    ctx.assert_clean();
}

#[test]
fn rootless_default_root_is_under_xdg_runtime_dir() {
    skip_unless_rootless_possible!();
    // No --root: the runtime must use $XDG_RUNTIME_DIR/<runtime name>.
    let (ctx, xdg) = rootless_ctx_with("rldefault", false);
    let mut b = rootless_bundle(&ctx);
    b.args(&["sleep", "100"]);
    let id = ctx.id("c");
    ctx.create(&id, &b, &[])
        .assert_ok("create with default root");
    let default_root = xdg.join(runtime_name());
    assert!(
        default_root.join(&id).exists(),
        "no state for {id} under {}",
        default_root.display()
    );
    if !runtime_is_runc() {
        assert_eq!(runtime_name(), "rootcell");
        assert!(xdg.join("rootcell").is_dir());
    }
    assert_eq!(ctx.list_ids(), vec![id.clone()]);
    let pid = ctx.pid(&id);
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    wait_pid_dead(pid);
    assert!(!default_root.join(&id).exists());
    assert_eq!(ctx.list_ids(), Vec::<String>::new());
    ctx.assert_clean();
}

/// What the kernel allows in a user namespace works rootless (device nodes
/// are bind mounts of the host's, fresh tmpfs and mqueue mounts); what it
/// refuses (an idmapped bind of a host directory, a filesystem that cannot
/// be mounted in a user namespace) fails with an error naming the mount,
/// and leaves nothing behind.
#[test]
fn rootless_mounts_work_where_allowed_and_refusals_name_the_mount() {
    skip_unless_rootless_possible!();
    let (ctx, _xdg) = rootless_ctx_with("rlmounts", true);
    let mut b = rootless_bundle(&ctx);
    let base = b.config.clone();
    b.add_mount(
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                       "options": ["size=1m", "mode=1777"]}),
    );
    fs::create_dir_all(b.rootfs().join("scratch")).unwrap();
    b.sh("stat -c '%F %t:%T' /dev/null; echo x > /dev/null && echo null-ok; \
          stat -c %a /scratch; awk '$5 == \"/dev/mqueue\"' /proc/self/mountinfo | grep -c ' - mqueue '");
    let id = ctx.id("ok");
    let out = ctx.run(&id, &b);
    out.assert_ok("rootless run with mounts");
    let l = lines(&out.stdout);
    assert_eq!(l[0], "character special file 1:3", "{}", out.all());
    assert_eq!(l[1], "null-ok", "{}", out.all());
    // runc before 1.1.8 chmods the tmpfs to the mount point's mode (runc#3911).
    if !runtime_is_runc() {
        assert_eq!(l[2], "1777", "{}", out.all());
    }
    assert_eq!(l[3], "1", "{}", out.all());

    let src = ctx.dir.join("idmap-src");
    fs::create_dir_all(&src).unwrap();
    let own = json!([{"containerID": 0, "hostID": UNPRIV_UID, "size": 1}]);
    let refused = [
        (
            json!({"destination": "/idm", "type": "bind", "source": src,
                   "options": ["bind", "idmap"], "uidMappings": own, "gidMappings": own}),
            "idmap",
        ),
        (
            json!({"destination": "/disk", "type": "ext4", "source": "/dev/vda"}),
            "ext4",
        ),
    ];
    for (i, (mount, what)) in refused.into_iter().enumerate() {
        b.config = base.clone();
        let index = b.config["mounts"].as_array().map_or(0, |a| a.len());
        b.add_mount(mount);
        let id = ctx.id(&format!("refused{i}"));
        let out = ctx.run(&id, &b);
        out.assert_fail(&format!("rootless {what} mount"));
        assert!(
            out.stderr.contains(&format!("mounts[{index}]")) && out.stderr.contains(what),
            "{}",
            out.all()
        );
        assert!(ctx.try_state(&id).is_none(), "{what}: state left behind");
    }
    ctx.assert_clean();
}

/// Rootless, the runtime cannot make a read-only bind of itself, so it runs
/// from a sealed memfd copy: the container's init (and so anything that
/// reaches `/proc/<pid>/exe`) sees an image that refuses writes.
#[test]
fn rootless_runtime_runs_from_a_sealed_copy() {
    skip_unless_rootless_possible!();
    let (ctx, _xdg) = rootless_ctx_with("rlexe", true);
    let mut b = rootless_bundle(&ctx);
    b.args(&["sleep", "100"]);
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("rootless create");
    let pid = ctx.pid(&id);
    let exe = format!("/proc/{pid}/exe");
    let target = readlink(&exe);
    assert!(target.contains("memfd:"), "{target}");
    let write = fs::OpenOptions::new().write(true).open(&exe).and_then(|f| {
        use std::os::unix::fs::FileExt;
        f.write_at(b"\x7f", 0)
    });
    assert!(write.is_err(), "the runtime image accepted a write");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    wait_pid_dead(pid);
    ctx.assert_clean();
}

/// A seccomp filter in a rootless container, loaded with and without
/// no_new_privs.
#[test]
fn rootless_seccomp_filter_applies_with_and_without_no_new_privileges() {
    skip_unless_rootless_possible!();
    let (ctx, _xdg) = rootless_ctx_with("rlseccomp", true);
    let mut b = rootless_bundle(&ctx);
    b.sh("mkdir /tmp/x 2>&1; grep -E '^(Seccomp|NoNewPrivs)' /proc/self/status");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EROFS}]
    });
    for nnp in [true, false] {
        // Without no_new_privs the load needs CAP_SYS_ADMIN, which init
        // has in the container's own user namespace.
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        let id = ctx.id(if nnp { "nnp" } else { "no-nnp" });
        let out = ctx.run(&id, &b);
        out.assert_ok("rootless run with seccomp");
        let l = lines(&out.stdout);
        assert!(l[0].contains("Read-only file system"), "{}", out.stdout);
        assert!(out.stdout.contains("Seccomp:\t2"), "{}", out.stdout);
        assert!(
            out.stdout
                .contains(&format!("NoNewPrivs:\t{}", if nnp { 1 } else { 0 })),
            "{}",
            out.stdout
        );
    }
    ctx.assert_clean();
}

#[test]
fn rootless_terminal_via_console_socket() {
    skip_unless_rootless_possible!();
    let (ctx, _xdg) = rootless_ctx_with("rltty", true);
    let mut b = rootless_bundle(&ctx);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 21, "width": 77});
    b.sh("tty; stty size; stat -c 'console %t:%T' /dev/console; stat -c 'tty %t:%T' $(tty)");
    let sock = common::console::ConsoleSocket::bind(&ctx.dir.join("sock"));
    // The unprivileged runtime must be allowed to connect.
    chown(&sock.path, UNPRIV_UID, UNPRIV_GID);
    let id = ctx.id("t");
    ctx.create(&id, &b, &["--console-socket", sock.arg()])
        .assert_ok("rootless create --console-socket");
    let (_, mut term) = sock.master();
    ctx.rt(&["start", &id]).assert_ok("start");
    let out = term.read_to_end();
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert!(out.contains("\n21 77\n"), "{out:?}");
    let console = out.lines().find_map(|l| l.strip_prefix("console "));
    let tty = out.lines().find_map(|l| l.strip_prefix("tty "));
    assert!(console.is_some() && console == tty, "{out:?}");
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// A rootless container with a new time namespace and offsets: written by
/// stage 1 while it may still write its own /proc files.
#[test]
fn rootless_time_namespace_with_offsets() {
    if !features_namespaces().contains(&"time".to_string()) {
        if runtime_is_runc() {
            return skip("time namespace (runc 1.2+)");
        }
        panic!("runtime does not advertise the time namespace in `features`");
    }
    let (ctx, _xdg) = rootless_ctx_with("rltimens", true);
    let mut b = rootless_bundle(&ctx);
    b.set_namespace("time", None);
    b.config["linux"]["timeOffsets"] = json!({
        "boottime": {"secs": 86400 * 365, "nanosecs": 0}
    });
    b.sh("cut -d' ' -f1 /proc/uptime; cat /proc/self/timens_offsets");
    let out = ctx.run(&ctx.id("c"), &b);
    out.assert_ok("rootless run with a time namespace");
    let l = lines(&out.stdout);
    let uptime: f64 = l[0].parse().unwrap();
    assert!(uptime > 86400.0 * 365.0, "uptime {uptime} not offset");
    assert!(out.stdout.contains("boottime") && out.stdout.contains("31536000"));
    ctx.assert_clean();
}
