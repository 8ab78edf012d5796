//! Chroot isolation's `/dev`, device rules and cgroups (issue 11): a
//! minimal tmpfs `/dev` whose nodes are made (root) or bound from the host
//! (a user namespace, rootless); device rules met by the nodes where no
//! devices cgroup can hold them; the host's `/dev` and cgroup tree bound
//! where a tmpfs is refused; limits in a read-only cgroup tree refused
//! naming the field unless `org.rootcell.chroot.ignore-resources` is set.
//! rootcell only: runc has no isolation modes.

mod common;

use common::chroot::*;
use common::*;
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// `[--isolation MODE] run --bundle B ID` after the runtime (and its
/// `--root`) in `c`.
fn run_args(c: &mut Command, mode: &str, id: &str, b: &Bundle) {
    c.args(["--isolation", mode, "run", "--bundle"])
        .arg(&b.path)
        .arg(id);
}

/// What the script below prints about `/dev`: its entries, one line per
/// node (`name type major:minor`, hex numbers as stat prints them), the
/// links, and the mountinfo lines under `/dev`.
const DEV_REPORT: &str = "ls -A /dev | tr '\\n' ' '; echo; \
    for n in null zero full random urandom tty mynull; do \
      stat -c '%n %F %t:%T' /dev/$n 2>&1; done; \
    for l in fd stdin stdout stderr ptmx; do echo \"link $l $(readlink /dev/$l)\"; done; \
    head -c 4 /dev/zero | wc -c; echo x > /dev/full 2>/dev/null && echo full-writable || echo full-refused; \
    grep -E ' /dev(/[a-z]+)? ' /proc/self/mountinfo";

/// The default nodes plus `linux.devices` `/dev/mynull` (c 1:3).
const NODES: [(&str, &str); 7] = [
    ("null", "1:3"),
    ("zero", "1:5"),
    ("full", "1:7"),
    ("random", "1:8"),
    ("urandom", "1:9"),
    ("tty", "5:0"),
    ("mynull", "1:3"),
];

/// Adds `/dev/mynull` (c 1:3) to `linux.devices` and deny-all device rules
/// (as `rootcell spec` writes them).
fn with_device_and_rules(b: &mut Bundle) {
    b.linux()["devices"] = json!([
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0}
    ]);
    let res = &mut b.linux()["resources"];
    if res.is_null() {
        *res = json!({});
    }
    res["devices"] = json!([{"allow": false, "access": "rwm"}]);
}

/// Checks the report of `DEV_REPORT`: a minimal `/dev` (no host node),
/// the nodes with their numbers, the links, the tmpfs; `bound`: the nodes
/// are bind mounts of the host's (else made by mknod: no mount).
fn check_minimal_dev(out: &Out, bound: bool) {
    let text = &out.stdout;
    let l = lines(text);
    let mut entries: Vec<&str> = l[0].split_whitespace().collect();
    entries.sort();
    let mut expected = vec![
        "fd", "full", "mqueue", "mynull", "null", "ptmx", "pts", "random", "shm", "stderr",
        "stdin", "stdout", "tty", "urandom", "zero",
    ];
    expected.sort();
    assert_eq!(
        entries,
        expected,
        "/dev holds only the planned entries: {}",
        out.all()
    );
    for (name, number) in NODES {
        let (major, minor) = number.split_once(':').unwrap();
        let hex = format!(
            "{:x}:{:x}",
            major.parse::<u32>().unwrap(),
            minor.parse::<u32>().unwrap()
        );
        let want = format!("/dev/{name} character special file {hex}");
        assert!(l.contains(&want), "{want:?} missing: {}", out.all());
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let want = format!("link {link} {target}");
        assert!(l.contains(&want), "{want:?}: {}", out.all());
    }
    assert!(l.iter().any(|x| x == "4"), "/dev/zero reads: {}", out.all());
    assert!(
        l.iter().any(|x| x == "full-refused"),
        "/dev/full is the full device: {}",
        out.all()
    );
    assert!(
        l.iter()
            .any(|line| line.contains(" /dev ") && line.contains(" - tmpfs ")),
        "/dev is a tmpfs: {}",
        out.all()
    );
    let node_mounts = l
        .iter()
        .filter(|line| {
            NODES
                .iter()
                .any(|(n, _)| line.contains(&format!(" /dev/{n} ")))
        })
        .count();
    if bound {
        assert_eq!(
            node_mounts,
            NODES.len(),
            "every node is a bind of the host's: {}",
            out.all()
        );
    } else {
        assert_eq!(
            node_mounts,
            0,
            "the nodes are made, not bound: {}",
            out.all()
        );
    }
}

#[test]
fn as_root_dev_is_a_minimal_tmpfs_with_nodes_made_by_mknod() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chrootdev-root");
    let mut b = ctx.bundle();
    with_device_and_rules(&mut b);
    b.sh(DEV_REPORT);
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_ok("chroot run as root");
    check_minimal_dev(&out, false);
    if cgroup_v1_controller("devices") {
        // The devices cgroup holds the rules here: nothing to say.
        assert!(
            !out.stderr.contains("linux.resources.devices"),
            "{}",
            out.all()
        );
    } else {
        // No devices controller on this host: the rules are met by the
        // nodes, said once.
        assert_eq!(out.stderr.matches(MET_BY_NODES).count(), 1, "{}", out.all());
    }
    ctx.assert_clean();
}

/// Both ways of saying device rules are met by the nodes: planned for an
/// unprivileged caller, or found at run time (root, read-only tree).
const MET_BY_NODES: &str = "linux.resources.devices: met by";

#[test]
fn in_a_user_namespace_nodes_are_bound_and_device_rules_met_by_them() {
    if !rootcell_only() || !userns_available() {
        return;
    }
    let ctx = Ctx::new("chrootdev-userns");
    let mut b = ctx.bundle();
    // The config's cgroup namespace, cgroup mount and device rules stay;
    // the host's network namespace is not the user namespace's to join.
    for ns in ["network", "user"] {
        b.remove_namespace(ns);
    }
    b.linux()["uidMappings"] = json!(null);
    b.linux()["gidMappings"] = json!(null);
    drop_devpts_gid(&mut b);
    with_device_and_rules(&mut b);
    b.sh(DEV_REPORT);
    let id = ctx.id("c");
    let out = run_in_userns(&ctx, "chroot", &id, &b);
    out.assert_ok("chroot run in a user namespace with device rules");
    check_minimal_dev(&out, true);
    assert_eq!(
        out.stderr.matches(MET_BY_NODES).count(),
        1,
        "one diagnostic line for the device rules: {}",
        out.all()
    );
    // The plan shows the decision: bound from the host, not mknod.
    let mut c = Command::new("unshare");
    c.args(["--user", "--map-root-user", "--"])
        .arg(&ctx.bin)
        .args(["--isolation", "chroot", "plan", "--json"])
        .arg(&b.path);
    let plan = exec(&mut c, CMD_TIMEOUT);
    plan.assert_ok("plan in a user namespace");
    let v = parse_json(&plan.stdout, "plan --json");
    let nodes: Vec<&serde_json::Value> = v["rootfs"]["setup"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "device")
        .collect();
    assert_eq!(nodes.len(), NODES.len(), "{}", plan.stdout);
    assert!(
        nodes.iter().all(|n| n["bind_from_host"] == true),
        "a runtime in a user namespace plans binds: {}",
        plan.stdout
    );
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Rootless: the runtime as uid 1000 (setpriv).
// ---------------------------------------------------------------------------

#[test]
fn rootless_nodes_are_bound_from_the_host_in_a_minimal_tmpfs_dev() {
    if !rootcell_only() {
        return;
    }
    if let Some(why) = rootless_unavailable() {
        skip(&format!("rootless: {why}"));
        return;
    }
    let (ctx, _xdg, mut b) = rootless_spec_bundle("chrootdev-rl");
    with_device_and_rules(&mut b);
    b.sh(DEV_REPORT);
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_ok("rootless chroot run with device rules");
    check_minimal_dev(&out, true);
    assert_eq!(
        out.stderr.matches(MET_BY_NODES).count(),
        1,
        "one diagnostic line for the device rules: {}",
        out.all()
    );
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// As root in a read-only cgroup tree.
// ---------------------------------------------------------------------------

/// The runtime command of `ctx` run as `sh -c 'remount every cgroup
/// hierarchy read-only; exec rootcell …'` in a private mount namespace of
/// its own (the test's mounts are untouched).
fn run_in_read_only_cgroups(ctx: &Ctx, mode: &str, id: &str, b: &Bundle) -> Out {
    b.save();
    let mut inner = ctx.cmd();
    run_args(&mut inner, mode, id, b);
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            "set -e; for d in /sys/fs/cgroup/*/; do mount -o remount,bind,ro \"$d\"; done; \
             mount -o remount,bind,ro /sys/fs/cgroup 2>/dev/null || true; exec \"$@\"",
        )
        .arg("sh")
        .arg(inner.get_program())
        .args(inner.get_args());
    exec(&mut c, CMD_TIMEOUT)
}

const NO_CGROUP: &str = "chroot isolation: no cgroup created";

#[test]
fn as_root_in_a_read_only_cgroup_tree_limits_are_refused_unless_ignored() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chrootdev-rocg");
    let mut b = ctx.bundle();
    b.sh("echo ran");
    // Full isolation cannot run there: it needs its cgroup.
    let id = ctx.id("oci");
    let out = run_in_read_only_cgroups(&ctx, "oci", &id, &b);
    out.assert_fail("full isolation in a read-only cgroup tree");
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.all()
    );
    ctx.assert_clean();

    // No limits (the default config's device rules only): it runs, without
    // a cgroup, and says so once.
    let id = ctx.id("plain");
    let out = run_in_read_only_cgroups(&ctx, "chroot", &id, &b);
    out.assert_ok("chroot isolation without limits in a read-only cgroup tree");
    assert!(out.stdout.starts_with("ran\n"), "{}", out.all());
    assert_eq!(out.stderr.matches(NO_CGROUP).count(), 1, "{}", out.all());
    assert_eq!(out.stderr.matches(MET_BY_NODES).count(), 1, "{}", out.all());
    assert!(cgroups_named(&id).is_empty(), "no cgroup was made");
    ctx.assert_clean();

    // A memory limit: refused naming the field, nothing left behind.
    b.linux()["resources"]["memory"] = json!({"limit": 100_000_000});
    b.linux()["resources"]["pids"] = json!({"limit": 100});
    let id = ctx.id("limit");
    let out = run_in_read_only_cgroups(&ctx, "chroot", &id, &b);
    out.assert_fail("a memory limit in a read-only cgroup tree");
    assert!(!out.stdout.contains("ran"), "{}", out.all());
    assert!(
        out.stderr.contains("linux.resources.memory.limit")
            && out.stderr.contains("org.rootcell.chroot.ignore-resources"),
        "the error names the field and the annotation: {}",
        out.all()
    );
    ctx.assert_clean();

    // The annotation: one warning per field, and it runs.
    b.config["annotations"] = json!({"org.rootcell.chroot.ignore-resources": "true"});
    let id = ctx.id("ignored");
    let out = run_in_read_only_cgroups(&ctx, "chroot", &id, &b);
    out.assert_ok("ignored limits in a read-only cgroup tree");
    assert!(out.stdout.starts_with("ran\n"), "{}", out.all());
    for field in ["linux.resources.memory.limit", "linux.resources.pids.limit"] {
        assert_eq!(
            out.stderr.matches(&format!("{field}: ignored")).count(),
            1,
            "one warning for {field}: {}",
            out.all()
        );
    }
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// A refused tmpfs: the runtime under a seccomp filter that makes `fsopen`
// fail with EPERM (as an LSM or an outer sandbox may refuse new mounts).
// ---------------------------------------------------------------------------

/// Runs `c` with a seccomp filter where `fsopen(2)` fails with EPERM:
/// every fresh filesystem is refused, binds still work.
fn without_fsopen(c: &mut Command) -> bool {
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xc000_00b7;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = c;
        skip("the fsopen filter is written for x86_64 and aarch64");
        return false;
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        const FSOPEN: u32 = 430;
        let stmt = |code: u16, k: u32| libc::sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        };
        let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
            code: 0x15, // BPF_JMP | BPF_JEQ | BPF_K
            jt,
            jf,
            k,
        };
        let filter = [
            stmt(0x20, 4), // A = seccomp_data.arch
            jeq(ARCH, 0, 3),
            stmt(0x20, 0), // A = seccomp_data.nr
            jeq(FSOPEN, 0, 1),
            stmt(0x06, 0x0005_0000 | libc::EPERM as u32), // RET ERRNO(EPERM)
            stmt(0x06, 0x7fff_0000),                      // RET ALLOW
        ];
        // SAFETY: between fork and exec only prctl is called, on a filter
        // that lives in this closure's captured array.
        unsafe {
            c.pre_exec(move || {
                let prog = libc::sock_fprog {
                    len: filter.len() as u16,
                    filter: filter.as_ptr() as *mut libc::sock_filter,
                };
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::prctl(
                        libc::PR_SET_SECCOMP,
                        libc::SECCOMP_MODE_FILTER,
                        &prog as *const libc::sock_fprog,
                    ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        true
    }
}

/// A config that can run with every fresh filesystem refused: no tmpfs of
/// its own but `/dev` and the cgroup layout (which fall back to the
/// host's), no masked directories (masked with a tmpfs), no mqueue where
/// the host has none.
fn fresh_refused_bundle(ctx: &Ctx) -> Bundle {
    let mut b = ctx.bundle();
    b.remove_mount("/dev/shm");
    if !std::path::Path::new("/dev/mqueue").is_dir() {
        b.remove_mount("/dev/mqueue");
    }
    let masked: Vec<serde_json::Value> = b.linux()["maskedPaths"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !std::path::Path::new(p.as_str().unwrap_or("")).is_dir())
        .collect();
    b.linux()["maskedPaths"] = json!(masked);
    b
}

/// The names in the host's `/dev`, sorted.
fn dev_entries() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_refused_tmpfs_binds_the_hosts_dev_and_cgroup_tree_and_covers_denied_nodes() {
    if !rootcell_only() {
        return;
    }
    if !host_char_device("/dev/kmsg") {
        skip("the host has no /dev/kmsg to deny");
        return;
    }
    let ctx = Ctx::new("chrootdev-refused");
    let mut b = fresh_refused_bundle(&ctx);
    b.sh(
        "head -c 1 /dev/null; echo null=$?; stat -c 'kmsg=%t:%T' /dev/kmsg; \
         echo x > /dev/full 2>/dev/null && echo full-writable || echo full-refused; \
         touch /sys/fs/cgroup/x 2>/dev/null && echo cg-writable || echo cg-refused; \
         grep -E ' /dev | /sys/fs/cgroup ' /proc/self/mountinfo",
    );
    b.save();
    let id = ctx.id("c");
    let mut c = ctx.cmd();
    run_args(&mut c, "chroot", &id, &b);
    if !without_fsopen(&mut c) {
        return;
    }
    let before = host_mount_points();
    let dev_before = dev_entries();
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_ok("chroot run with fresh filesystems refused");
    let l = lines(&out.stdout);
    assert!(l.iter().any(|x| x == "null=0"), "{}", out.all());
    assert!(
        l.iter().any(|x| x == "kmsg=1:3"),
        "the denied /dev/kmsg is covered by /dev/null: {}",
        out.all()
    );
    assert!(
        l.iter().any(|x| x == "full-refused"),
        "/dev/full is the host's: {}",
        out.all()
    );
    assert!(
        l.iter().any(|x| x == "cg-refused"),
        "the cgroup tree is read-only: {}",
        out.all()
    );
    assert!(
        l.iter()
            .any(|line| line.contains(" /dev ") && line.contains(" - devtmpfs ")),
        "/dev is the host's devtmpfs: {}",
        out.all()
    );
    for what in [
        "mounts[1] (/dev): a tmpfs was refused",
        "(/sys/fs/cgroup): a tmpfs was refused",
    ] {
        assert_eq!(out.stderr.matches(what).count(), 1, "{what}: {}", out.all());
    }
    assert_eq!(host_mount_points(), before, "the host's mounts changed");
    assert_eq!(
        dev_entries(),
        dev_before,
        "nothing is created in the host's /dev"
    );
    ctx.assert_clean();
}

#[test]
fn a_bound_device_node_the_rules_deny_is_refused_naming_the_mount() {
    if !rootcell_only() {
        return;
    }
    if !host_char_device("/dev/kmsg") {
        skip("the host has no /dev/kmsg to bind");
        return;
    }
    let ctx = Ctx::new("chrootdev-bind");
    let mut b = ctx.bundle();
    // The default config denies every device but the defaults.
    b.bind_mount(std::path::Path::new("/dev/kmsg"), "/dev/kmsg", false);
    let index = b.config["mounts"].as_array().unwrap().len() - 1;
    b.sh("head -c 8 /dev/kmsg >/dev/null 2>&1 && echo opened || echo refused");
    // Full isolation: the devices cgroup refuses the open.
    if cgroup_v1_controller("devices") {
        let id = ctx.id("oci");
        let out = run_isolated(&ctx, "oci", &id, &b);
        out.assert_ok("full isolation with /dev/kmsg bound");
        assert_eq!(out.stdout, "refused\n", "{}", out.all());
    } else {
        skip("no v1 devices controller: the full-isolation half (the cgroup refusing the open) is not checked");
    }
    // Chroot isolation meets the rules by not binding it: an error naming
    // the mount, nothing left behind.
    let before = host_mount_points();
    let id = ctx.id("chroot");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_fail("chroot isolation binding a denied device");
    assert!(!out.stdout.contains("opened"), "{}", out.all());
    assert!(
        out.stderr.contains(&format!("mounts[{index}] (/dev/kmsg)"))
            && out.stderr.contains("linux.resources.devices deny"),
        "{}",
        out.all()
    );
    assert_eq!(host_mount_points(), before, "the host's mounts changed");
    ctx.assert_clean();
}

#[test]
fn a_config_binding_the_hosts_dev_gets_the_denied_nodes_covered() {
    if !rootcell_only() {
        return;
    }
    if !host_char_device("/dev/kmsg") {
        skip("the host has no /dev/kmsg to deny");
        return;
    }
    let ctx = Ctx::new("chrootdev-devbind");
    let mut b = ctx.bundle();
    // `/dev` bound from the host (recursively) instead of a tmpfs: no
    // node is made, and the default device rules deny /dev/kmsg.
    b.remove_mount("/dev");
    b.add_mount(json!({
        "destination": "/dev", "type": "bind", "source": "/dev",
        "options": ["rbind", "nosuid"]
    }));
    b.remove_mount("/dev/pts");
    b.remove_mount("/dev/shm");
    b.remove_mount("/dev/mqueue");
    b.sh("stat -c 'kmsg=%t:%T' /dev/kmsg; head -c 4 /dev/zero | wc -c");
    let id = ctx.id("c");
    let before = dev_entries();
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_ok("chroot run with the host's /dev bound");
    assert_eq!(
        out.stdout,
        "kmsg=1:3\n4\n",
        "/dev/kmsg is covered by /dev/null: {}",
        out.all()
    );
    assert_eq!(
        dev_entries(),
        before,
        "nothing is created in the host's /dev"
    );
    ctx.assert_clean();
}
