//! Chroot isolation (`rootcell --isolation chroot …`, annotation
//! `org.rootcell.isolation`), as root on this host: the same OCI config
//! runs with a private mount and UTS namespace, no joined namespace, the
//! root switched by MS_MOVE + chroot, and every config mount's flags
//! verified. rootcell only: runc has no isolation modes.

mod common;

use common::chroot::*;
use common::*;
use serde_json::json;
use std::process::Command;

#[test]
fn run_prints_output_passes_exit_code_and_has_proc() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-run");
    let mut b = ctx.bundle();
    b.sh("echo hello-chroot; grep ' /proc ' /proc/self/mountinfo; exit 7");
    let before = mount_table();
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    assert_eq!(
        out.code(),
        Some(7),
        "exit code passes through: {}",
        out.all()
    );
    assert!(out.stdout.starts_with("hello-chroot\n"), "{}", out.all());
    // The mount on /proc is a procfs (fresh as root; the host's bound
    // where the kernel refuses a fresh one).
    assert!(
        out.stdout.contains(" - proc "),
        "/proc is not procfs: {}",
        out.stdout
    );
    assert_eq!(mount_table(), before, "the host's mount table changed");
    ctx.assert_clean();
}

#[test]
fn dotdot_out_of_the_chroot_stays_in_the_container_root() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-dotdot");
    let mut b = ctx.bundle();
    write_file(&b.rootfs().join("chroot-marker"), "in the container\n");
    // `/work` exists on the host's root, never in the busybox rootfs.
    assert!(std::path::Path::new("/work").exists(), "host marker /work");
    b.sh("cd /../../..; ls -a; pwd; cd ../../..; test -e work && echo HOST-ROOT-REACHED; cat chroot-marker");
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_ok("run");
    let l = lines(&out.stdout);
    assert!(l.contains(&"chroot-marker".to_string()), "{}", out.stdout);
    assert!(
        !l.contains(&"work".to_string()),
        "host root listed: {}",
        out.stdout
    );
    assert!(!out.stdout.contains("HOST-ROOT-REACHED"), "{}", out.stdout);
    assert!(out.stdout.contains("in the container"), "{}", out.stdout);
    ctx.assert_clean();
}

#[test]
fn read_only_bind_refuses_writes_and_masked_and_read_only_paths_hold() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-ro");
    let mut b = ctx.bundle();
    let data = ctx.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_file(&data.join("file"), "host data\n");
    b.bind_mount(&data, "/data", true);
    write_file(&b.rootfs().join("etc/secret"), "TOP-SECRET\n");
    std::fs::create_dir_all(b.rootfs().join("srv/ro")).unwrap();
    b.linux()["maskedPaths"] = json!(["/etc/secret"]);
    b.linux()["readonlyPaths"] = json!(["/srv/ro"]);
    b.sh(concat!(
        "cat /data/file; ",
        "touch /data/new 2>&1; echo bind=$?; ",
        "echo masked=[$(cat /etc/secret)]; ",
        "touch /srv/ro/x 2>&1; echo ropath=$?; ",
        "touch /tmp/rw && echo rootfs-writable"
    ));
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_ok("run");
    let s = &out.stdout;
    assert!(s.contains("host data"), "{s}");
    assert!(s.contains("Read-only file system"), "EROFS expected: {s}");
    assert!(s.contains("bind=1"), "{s}");
    assert!(!data.join("new").exists(), "a write reached the host");
    assert!(s.contains("masked=[]"), "masked path readable: {s}");
    assert!(!s.contains("TOP-SECRET"), "{s}");
    assert!(s.contains("ropath=1"), "{s}");
    assert!(s.contains("rootfs-writable"), "{s}");
    ctx.assert_clean();
}

#[test]
fn user_and_hostname_apply_with_only_a_mount_and_uts_namespace_added() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-user");
    let mut b = ctx.bundle();
    // No mount or UTS namespace in the config: chroot isolation adds both.
    b.remove_namespace("mount").remove_namespace("uts");
    b.config["hostname"] = json!("chrooted");
    b.process()["user"] = json!({"uid": 1000, "gid": 1000});
    b.sh("id -u; id -g; hostname; readlink /proc/self/ns/mnt; readlink /proc/self/ns/uts");
    let host_name = read_file(std::path::Path::new("/proc/sys/kernel/hostname"));
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_ok("run");
    let l = lines(&out.stdout);
    assert_eq!(l.len(), 5, "{}", out.all());
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1000");
    assert_eq!(l[2], "chrooted");
    assert_ne!(l[3], host_ns("mnt"), "no new mount namespace");
    assert_ne!(l[4], host_ns("uts"), "no new UTS namespace");
    assert_eq!(
        read_file(std::path::Path::new("/proc/sys/kernel/hostname")),
        host_name,
        "the host's hostname changed"
    );
    ctx.assert_clean();
}

#[test]
fn create_start_delete_with_the_annotation() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-life");
    let mut b = ctx.bundle();
    b.config["annotations"] = json!({"org.rootcell.isolation": "chroot"});
    // Without a UTS namespace in the config, only chroot isolation (which
    // adds one) can set the hostname: the annotation must have been read.
    b.remove_namespace("uts");
    b.config["hostname"] = json!("annotated");
    b.sh("echo started-in-chroot; hostname; cd /../..; ls /");
    let before = mount_table();
    let id = ctx.id("c");
    let mut c = ctx.create_cmd(&id, &b, &[]);
    ctx.exec_detached(&mut c, &id, None).assert_ok("create");
    assert_eq!(ctx.status(&id), "created");
    ctx.rt(&["start", &id]).assert_ok("start");
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    let stdout = read_file(&ctx.stdout_path(&id));
    assert!(
        stdout.starts_with("started-in-chroot\nannotated\n"),
        "{stdout}"
    );
    assert!(!lines(&stdout).contains(&"work".to_string()), "{stdout}");
    assert_eq!(mount_table(), before, "the host's mount table changed");
    ctx.assert_clean();
}

#[test]
fn plan_shows_the_isolation_and_the_flag_wins_over_the_annotation() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-plan");
    let mut b = ctx.bundle();
    b.save();
    let plan = |flag: Option<&str>| {
        let mut c = Command::new(&ctx.bin);
        if let Some(mode) = flag {
            c.args(["--isolation", mode]);
        }
        c.args(["plan", "--json"]).arg(&b.path);
        let out = exec(&mut c, CMD_TIMEOUT);
        out.assert_ok("plan");
        parse_json(&out.stdout, "plan --json")
    };
    let oci = plan(None);
    assert_eq!(oci["isolation"], "oci");
    assert_eq!(oci["rootfs"]["switch"], "pivot_root");
    let chroot = plan(Some("chroot"));
    assert_eq!(chroot["isolation"], "chroot");
    assert_eq!(chroot["rootfs"]["switch"], "move_root");
    assert_eq!(chroot["rootfs"]["verify_mount_flags"], true);
    let proc = chroot["rootfs"]["setup"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["destination"] == "/proc")
        .expect("a /proc step");
    assert_eq!(proc["kind"]["host_fallback"]["source"], "/proc");

    b.config["annotations"] = json!({"org.rootcell.isolation": "chroot"});
    b.save();
    assert_eq!(plan(None)["isolation"], "chroot");
    assert_eq!(plan(Some("oci"))["isolation"], "oci");

    // The human plan says it too.
    let mut c = Command::new(&ctx.bin);
    c.args(["--isolation", "chroot", "plan"]).arg(&b.path);
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_ok("plan");
    assert!(out.stdout.starts_with("isolation chroot"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("else (refused) rbind the host's /sys read-only"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_namespace_path_is_refused_naming_the_field() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-nspath");
    let mut b = ctx.bundle();
    b.set_namespace("network", Some("/proc/self/ns/net"));
    b.sh("touch /tmp/ran");
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_fail("a namespace path in chroot mode");
    assert!(
        out.stderr.contains("linux.namespaces[") && out.stderr.contains("].path"),
        "{}",
        out.all()
    );
    assert!(!b.rootfs().join("tmp/ran").exists());
    assert!(ctx.try_state(&id).is_none());
    ctx.assert_clean();

    // The same config runs in full isolation (so the refusal is the mode's).
    let id = ctx.id("oci");
    run_isolated(&ctx, "oci", &id, &b).assert_ok("a namespace path in oci mode");
    ctx.assert_clean();
}

#[test]
fn an_unknown_isolation_is_refused_in_the_flag_and_the_annotation() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-bad");
    let mut b = ctx.bundle();
    b.sh("touch /tmp/ran");
    let id = ctx.id("flag");
    let out = run_isolated(&ctx, "jail", &id, &b);
    out.assert_fail("--isolation jail");
    assert!(out.stderr.contains("--isolation"), "{}", out.all());
    assert!(out.stderr.contains("jail"), "{}", out.all());

    b.config["annotations"] = json!({"org.rootcell.isolation": "jail"});
    for flag in ["", "chroot"] {
        let id = ctx.id(&format!("annotation{flag}"));
        b.save();
        let mut c = ctx.cmd();
        if !flag.is_empty() {
            c.args(["--isolation", flag]);
        }
        c.args(["run", "--bundle"]).arg(&b.path).arg(&id);
        let out = exec(&mut c, CMD_TIMEOUT);
        out.assert_fail("annotation jail");
        assert!(
            out.stderr.contains("annotations.org.rootcell.isolation"),
            "{}",
            out.all()
        );
        assert!(ctx.try_state(&id).is_none());
    }
    assert!(!b.rootfs().join("tmp/ran").exists());
    ctx.assert_clean();
}

/// (device, options) of the mount at `point` in a mountinfo text.
fn mount_at(mountinfo: &str, point: &str) -> Option<(String, String)> {
    mountinfo.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.get(4) == Some(&point)).then(|| (f[2].to_owned(), f[5].to_owned()))
    })
}

#[test]
fn refused_proc_and_sysfs_fall_back_to_binds_of_the_hosts() {
    if !rootcell_only() {
        return;
    }
    // The runtime in a user namespace of its own that owns neither the
    // host's pid nor its network namespace: the kernel refuses a fresh
    // proc and sysfs there (EPERM), the plan's fallback binds the host's.
    if !userns_available() {
        return;
    }
    let ctx = Ctx::new("chroot-fallback");
    // Only root is mapped in that user namespace: no devpts gid=5.
    let mut b = userns_bundle(&ctx);
    b.sh("cat /proc/self/mountinfo; touch /sys/x 2>&1; echo sys=$?; exit 5");
    b.save();
    let host = read_file(std::path::Path::new("/proc/self/mountinfo"));
    let id = ctx.id("c");
    let mut c = Command::new("unshare");
    c.args([
        "--user",
        "--map-root-user",
        "--mount",
        "--propagation",
        "private",
        "--",
    ])
    .arg(&ctx.bin)
    .arg("--root")
    .arg(ctx.state_dir())
    .args([
        "--rootless",
        "true",
        "--isolation",
        "chroot",
        "run",
        "--bundle",
    ])
    .arg(&b.path)
    .arg(&id);
    let out = exec(&mut c, CMD_TIMEOUT);
    assert_eq!(out.code(), Some(5), "{}", out.all());
    let inside = &out.stdout;
    let (host_proc, _) = mount_at(&host, "/proc").expect("host /proc");
    let (host_sys, _) = mount_at(&host, "/sys").expect("host /sys");
    let (proc_dev, _) = mount_at(inside, "/proc").expect("container /proc");
    let (sys_dev, sys_opts) = mount_at(inside, "/sys").expect("container /sys");
    assert_eq!(proc_dev, host_proc, "/proc is not the host's: {inside}");
    assert_eq!(sys_dev, host_sys, "/sys is not the host's: {inside}");
    assert!(
        sys_opts.split(',').any(|o| o == "ro"),
        "/sys writable: {sys_opts}"
    );
    assert!(inside.contains("Read-only file system"), "{inside}");
    assert!(inside.contains("sys=1"), "{inside}");
    // Said once each, never silent: the host's /proc shows the runtime's
    // processes.
    for line in [
        "rootcell: chroot isolation: mounts[0] (/proc): a fresh proc was refused (Operation not permitted",
        "the host's /proc is bound instead; it shows the processes of the runtime's pid namespace",
        "rootcell: chroot isolation: mounts[5] (/sys): a fresh sysfs was refused (Operation not permitted",
    ] {
        assert_eq!(out.stderr.matches(line).count(), 1, "{line}: {}", out.all());
    }
    ctx.assert_clean();
}

#[test]
fn detached_run_exec_state_kill_delete() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-exec");
    let mut b = ctx.bundle();
    write_file(&b.rootfs().join("chroot-marker"), "x\n");
    b.args(&["sleep", "30"]);
    b.save();
    let id = ctx.id("c");
    let mut c = ctx.cmd();
    c.args(["--isolation", "chroot", "run", "--detach", "--bundle"])
        .arg(&b.path)
        .arg(&id);
    ctx.exec_detached(&mut c, &id, None)
        .assert_ok("run --detach");
    assert_eq!(ctx.status(&id), "running");
    // exec lands in the container's root, not in the mount namespace's
    // old root below it.
    let out = ctx.rt(&["exec", &id, "sh", "-c", "cd /../..; ls; exit 4"]);
    assert_eq!(out.code(), Some(4), "{}", out.all());
    let l = lines(&out.stdout);
    assert!(l.contains(&"chroot-marker".to_string()), "{}", out.stdout);
    assert!(!l.contains(&"work".to_string()), "{}", out.stdout);
    ctx.rt(&["kill", &id, "KILL"]).assert_ok("kill");
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// The classic chroot escape: chroot into a subdirectory, walk `..` from
/// the cwd left outside it, chroot there, list `/`.
const CHROOT_ESCAPE_C: &str = r#"
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    mkdir("/esc", 0755);
    if (chroot("/esc")) { perror("chroot /esc"); return 1; }
    for (int i = 0; i < 32; i++) chdir("..");
    if (chroot(".")) { perror("chroot ."); return 1; }
    execl("/bin/ls", "ls", "/", (char *)0);
    perror("exec /bin/ls");
    return 1;
}
"#;

#[test]
fn the_classic_chroot_escape_stays_in_the_container_root() {
    if !rootcell_only() {
        return;
    }
    if !command_exists("gcc") {
        skip("gcc is not installed (needed to build the escape program)");
        return;
    }
    let ctx = Ctx::new("chroot-escape");
    let mut b = ctx.bundle();
    let src = ctx.dir.join("escape.c");
    write_file(&src, CHROOT_ESCAPE_C);
    let bin = b.rootfs().join("escape");
    let cc = exec(
        Command::new("gcc")
            .args(["-static", "-O", "-o"])
            .arg(&bin)
            .arg(&src),
        CMD_TIMEOUT,
    );
    if !cc.ok() {
        skip(&format!("gcc -static fails here: {}", cc.stderr.trim()));
        return;
    }
    write_file(&b.rootfs().join("chroot-marker"), "x\n");
    // With CAP_SYS_CHROOT, which buildah's default set has.
    for set in ["bounding", "effective", "permitted"] {
        if let Some(caps) = b.process()["capabilities"][set].as_array_mut() {
            caps.push(json!("CAP_SYS_CHROOT"));
        }
    }
    b.args(&["/escape"]);
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_ok("run the escape");
    let l = lines(&out.stdout);
    // `..` from the moved rootfs's root reaches the old root's `/`, on
    // which the rootfs is mounted: the walk lands in the rootfs again.
    assert!(l.contains(&"chroot-marker".to_string()), "{}", out.stdout);
    assert!(
        !l.contains(&"work".to_string()),
        "host root reached: {}",
        out.stdout
    );
    ctx.assert_clean();
}

#[test]
fn auto_falls_back_to_chroot_where_a_fresh_proc_is_refused() {
    if !rootcell_only() || !userns_available() {
        return;
    }
    let ctx = Ctx::new("chroot-auto-userns");
    let mut b = userns_bundle(&ctx);
    b.sh("echo ran-$(hostname); grep -c ' /proc ' /proc/self/mountinfo; exit 6");

    // Full isolation is refused there: `oci` fails, leaving nothing.
    let id = ctx.id("oci");
    let out = run_in_userns(&ctx, "oci", &id, &b);
    out.assert_fail("--isolation oci where a fresh proc is refused");
    assert!(
        out.stderr
            .contains("refused to create a \"proc\" filesystem"),
        "{}",
        out.all()
    );
    assert!(
        out.stderr.contains("--isolation chroot"),
        "the error suggests chroot isolation: {}",
        out.all()
    );
    assert!(!out.stderr.contains(FALLBACK_LINE), "{}", out.all());
    assert!(!out.stdout.contains("ran-"), "{}", out.all());
    ctx.assert_clean();

    // `auto` retries with chroot isolation and says so once.
    let id = ctx.id("auto");
    let out = run_in_userns(&ctx, "auto", &id, &b);
    assert_eq!(out.code(), Some(6), "{}", out.all());
    assert!(out.stdout.starts_with("ran-"), "{}", out.all());
    assert_eq!(
        out.stderr.matches(FALLBACK_LINE).count(),
        1,
        "the fallback line once: {}",
        out.all()
    );
    assert!(
        out.stderr.contains(
            "rootcell: full isolation refused (a fresh proc mount): using chroot isolation"
        ),
        "{}",
        out.all()
    );
    ctx.assert_clean();
}

#[test]
fn auto_as_root_on_the_host_runs_full_isolation_silently() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-auto-root");
    let mut b = ctx.bundle();
    b.args(&["sleep", "30"]);
    b.save();
    let id = ctx.id("c");
    let mut c = ctx.cmd();
    c.args(["--isolation", "auto", "run", "--detach", "--bundle"])
        .arg(&b.path)
        .arg(&id);
    let out = ctx.exec_detached(&mut c, &id, None);
    out.assert_ok("auto run --detach");
    assert!(!out.stderr.contains(FALLBACK_LINE), "{}", out.all());
    // Recorded as full isolation, which it resolved to.
    let state = read_file(&ctx.state_dir().join(&id).join("state.json"));
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["isolation"], "oci", "{state}");
    let out = ctx.rt(&["exec", &id, "cat", "/proc/1/comm"]);
    out.assert_ok("exec");
    assert_eq!(out.stdout.trim(), "sleep");
    ctx.rt(&["kill", &id, "KILL"]).assert_ok("kill");
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn auto_does_not_fall_back_on_a_config_error() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-auto-err");
    let mut b = ctx.bundle();
    let missing = ctx.dir.join("no-such-source");
    b.bind_mount(&missing, "/data", false);
    b.sh("touch /tmp/ran");
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "auto", &id, &b);
    out.assert_fail("auto with a missing bind source");
    assert!(
        out.stderr.contains("no-such-source"),
        "the error names the source: {}",
        out.all()
    );
    assert!(!out.stderr.contains(FALLBACK_LINE), "{}", out.all());
    assert_eq!(
        out.stderr.matches("no-such-source").count(),
        1,
        "one attempt, one error: {}",
        out.all()
    );
    assert!(!b.rootfs().join("tmp/ran").exists());
    assert!(ctx.try_state(&id).is_none());
    ctx.assert_clean();
}

#[test]
fn the_mode_is_recorded_so_exec_needs_no_flag() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-recorded");
    let mut b = ctx.bundle();
    write_file(&b.rootfs().join("chroot-marker"), "x\n");
    b.args(&["sleep", "30"]);
    b.save();
    let id = ctx.id("c");
    let mut c = ctx.cmd();
    c.args(["--isolation", "chroot", "create", "--bundle"])
        .arg(&b.path)
        .arg(&id);
    ctx.exec_detached(&mut c, &id, None).assert_ok("create");
    let raw = read_file(&ctx.state_dir().join(&id).join("state.json"));
    let saved: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(saved["isolation"], "chroot", "{raw}");
    // `state` keeps runc's shape: the mode is rootcell's own field.
    let st = ctx.state(&id);
    assert!(st.get("isolation").is_none(), "{st}");
    ctx.rt(&["start", &id]).assert_ok("start");
    let out = ctx.rt(&["exec", &id, "sh", "-c", "cd /../..; ls"]);
    out.assert_ok("exec without --isolation");
    let l = lines(&out.stdout);
    assert!(l.contains(&"chroot-marker".to_string()), "{}", out.stdout);
    assert!(!l.contains(&"work".to_string()), "{}", out.stdout);
    let ps = ctx.rt(&["ps", &id]);
    ps.assert_ok("ps");
    ctx.rt(&["kill", &id, "KILL"]).assert_ok("kill");
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn auto_on_a_refused_id_mapping_retries_with_the_callers_own_ids() {
    if !rootcell_only() || !userns_available() {
        return;
    }
    // A mapping to a host id the runtime's user namespace does not map:
    // writing uid_map is refused (EPERM), a refusal `auto` retries with
    // chroot isolation. The retry maps the runtime's own ids instead (here
    // only root, unchanged), with one diagnostic, and runs.
    let ctx = Ctx::new("chroot-auto-map");
    let mut b = userns_bundle(&ctx);
    b.linux()["namespaces"]
        .as_array_mut()
        .expect("linux.namespaces")
        .push(json!({"type": "user"}));
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 12345, "size": 1}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 12345, "size": 1}]);
    b.sh("touch /tmp/ran; echo uid_map=$(cat /proc/self/uid_map | tr -s ' '); exit 3");
    let id = ctx.id("c");
    let out = run_in_userns(&ctx, "auto", &id, &b);
    assert_eq!(out.code(), Some(3), "{}", out.all());
    assert!(
        out.stderr.contains(
            "rootcell: full isolation refused (no user namespace mapping possible): using chroot isolation"
        ),
        "{}",
        out.all()
    );
    assert_eq!(
        out.stderr.matches(FALLBACK_LINE).count(),
        1,
        "{}",
        out.all()
    );
    assert_eq!(
        out.stderr
            .matches("linux.uidMappings/linux.gidMappings need ids the runtime's user namespace does not map: replaced by its own ids, unchanged (id 0)")
            .count(),
        1,
        "one diagnostic names the replaced mappings: {}",
        out.all()
    );
    assert!(out.stdout.contains("uid_map= 0 0 1\n"), "{}", out.all());
    assert!(b.rootfs().join("tmp/ran").exists());
    ctx.assert_clean();
}

#[test]
fn a_uts_sysctl_without_a_uts_namespace_runs_in_chroot_isolation() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-uts-sysctl");
    let mut b = ctx.bundle();
    b.remove_namespace("uts");
    b.config["hostname"] = json!(null);
    b.linux()["sysctl"] = json!({"kernel.domainname": "chroot-dom"});
    b.sh("cat /proc/sys/kernel/domainname");
    let host_before = read_file(std::path::Path::new("/proc/sys/kernel/domainname"));

    // Full isolation has no UTS namespace for it: refused, naming the key.
    let id = ctx.id("oci");
    let out = run_isolated(&ctx, "oci", &id, &b);
    out.assert_fail("a uts sysctl without a uts namespace");
    assert!(
        out.stderr
            .contains("linux.sysctl.kernel.domainname: needs a new uts namespace"),
        "{}",
        out.all()
    );
    ctx.assert_clean();

    // Chroot isolation adds one: the sysctl is set there, not on the host.
    let id = ctx.id("chroot");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_ok("chroot isolation with a uts sysctl");
    assert_eq!(out.stdout.trim(), "chroot-dom", "{}", out.all());
    assert_eq!(
        read_file(std::path::Path::new("/proc/sys/kernel/domainname")),
        host_before,
        "the host's domainname changed"
    );
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Rootless with no subordinate ids: the runtime as uid 1000 (setpriv), only
// the caller's own uid and gid mapped.
// ---------------------------------------------------------------------------

/// Whether uid 1000 has subordinate ids (then newuidmap could write a
/// config's larger mappings, and these tests do not apply).
fn unpriv_has_subordinate_ids() -> bool {
    ["/etc/subuid", "/etc/subgid"].iter().any(|f| {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                let name = l.split(':').next().unwrap_or_default();
                name == UNPRIV_UID.to_string()
                    || host_user_name(UNPRIV_UID).as_deref() == Some(name)
            })
    })
}

fn host_user_name(uid: u32) -> Option<String> {
    read_file(std::path::Path::new("/etc/passwd"))
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_owned())
        })
}

/// A bundle whose config.json comes from `spec --rootless` run as uid
/// 1000, with a rootfs owned by uid 1000; `None` (skipped, with the
/// reason) where rootless containers or chroot isolation are unavailable
/// or uid 1000 has subordinate ids.
fn rootless_chroot_bundle(name: &str) -> Option<(Ctx, std::path::PathBuf, Bundle)> {
    if !rootcell_only() {
        return None;
    }
    if let Some(why) = rootless_unavailable() {
        skip(&format!("rootless: {why}"));
        return None;
    }
    if unpriv_has_subordinate_ids() {
        skip("uid 1000 has subordinate ids: the no-subordinate-ids case cannot be made here");
        return None;
    }
    Some(rootless_spec_bundle(name))
}

/// Mappings that need ids uid 1000 does not own (a subordinate range).
fn needs_subordinate_ids(b: &mut Bundle) {
    let maps = json!([
        {"containerID": 0, "hostID": UNPRIV_UID, "size": 1},
        {"containerID": 1, "hostID": 100000, "size": 65536}
    ]);
    b.config["linux"]["uidMappings"] = maps.clone();
    b.config["linux"]["gidMappings"] = maps;
}

const REPLACED: &str = "linux.uidMappings/linux.gidMappings need ids uid 1000 does not own";

#[test]
fn rootless_chroot_without_mappings_maps_the_caller_to_the_configs_user() {
    let Some((ctx, _xdg, mut b)) = rootless_chroot_bundle("rlchroot-self") else {
        return;
    };
    // A user namespace but no mappings in the config (as buildah writes
    // it): chroot isolation maps uid/gid 1000 to process.user.
    let linux = &mut b.config["linux"];
    linux.as_object_mut().unwrap().remove("uidMappings");
    linux.as_object_mut().unwrap().remove("gidMappings");
    b.config["process"]["user"] = json!({"uid": 1234, "gid": 2345});
    // A read-only bind of a directory uid 1000 owns.
    let ro_dir = ctx.dir.join("ro-src");
    std::fs::create_dir_all(&ro_dir).unwrap();
    chown(&ro_dir, UNPRIV_UID, UNPRIV_GID);
    std::fs::create_dir_all(b.rootfs().join("ro")).unwrap();
    chown(&b.rootfs().join("ro"), UNPRIV_UID, UNPRIV_GID);
    b.bind_mount(&ro_dir, "/ro", true);
    b.sh(
        "id -u; id -g; cat /proc/self/uid_map; echo landed > /written; \
         touch /ro/x 2>/dev/null && echo ro-writable || echo ro-refused; \
         grep ' /proc ' /proc/self/mountinfo; exit 7",
    );
    let before = mount_table();
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    assert_eq!(
        out.code(),
        Some(7),
        "exit code passes through: {}",
        out.all()
    );
    let l = lines(&out.stdout);
    assert!(l.len() >= 5, "{}", out.all());
    assert_eq!(l[0], "1234", "id -u is the config's user: {}", out.all());
    assert_eq!(l[1], "2345", "id -g is the config's group: {}", out.all());
    let words: Vec<&str> = l[2].split_whitespace().collect();
    assert_eq!(
        words,
        ["1234", "1000", "1"],
        "only the caller's uid is mapped: {}",
        out.all()
    );
    assert_eq!(
        l[3],
        "ro-refused",
        "a read-only bind refuses writes: {}",
        out.all()
    );
    assert!(
        out.stdout.contains(" - proc "),
        "/proc is not a procfs: {}",
        out.all()
    );
    assert!(
        !out.stderr.contains(REPLACED),
        "no mapping was replaced: {}",
        out.all()
    );
    // The write landed in the rootfs, owned by the caller on the host.
    use std::os::unix::fs::MetadataExt;
    let written = b.rootfs().join("written");
    assert_eq!(read_file(&written), "landed\n");
    assert_eq!(std::fs::metadata(&written).unwrap().uid(), UNPRIV_UID);
    assert!(!ro_dir.join("x").exists(), "the read-only bind was written");
    assert_eq!(mount_table(), before, "the host's mount table changed");
    ctx.assert_clean();
}

#[test]
fn rootless_chroot_replaces_mappings_it_cannot_write_with_one_diagnostic() {
    let Some((ctx, _xdg, mut b)) = rootless_chroot_bundle("rlchroot-repl") else {
        return;
    };
    needs_subordinate_ids(&mut b);
    b.config["process"]["user"] = json!({"uid": 0, "gid": 0, "additionalGids": [10]});
    b.sh("id -u; id -G; cat /proc/self/uid_map /proc/self/setgroups");
    b.save();
    // The plan shows the decision.
    let mut c = ctx.cmd();
    c.args(["--isolation", "chroot", "plan"]).arg(&b.path);
    let plan = exec(&mut c, CMD_TIMEOUT);
    plan.assert_ok("plan --isolation chroot as uid 1000");
    assert!(plan.stdout.contains("new user"), "{}", plan.all());
    assert!(
        plan.stdout.contains("uid map 0 → host 1000 (1 ids)"),
        "{}",
        plan.all()
    );
    assert!(plan.stdout.contains(REPLACED), "{}", plan.all());
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_ok("rootless chroot run with replaced mappings");
    let l = lines(&out.stdout);
    assert_eq!(l[0], "0", "{}", out.all());
    assert_eq!(l[1], "0", "the additional group is dropped: {}", out.all());
    let words: Vec<&str> = l[2].split_whitespace().collect();
    assert_eq!(words, ["0", "1000", "1"], "{}", out.all());
    assert_eq!(l[3], "deny", "setgroups is denied: {}", out.all());
    assert_eq!(
        out.stderr.matches(REPLACED).count(),
        1,
        "one diagnostic line for the replaced mappings: {}",
        out.all()
    );
    assert_eq!(
        out.stderr
            .matches("process.user.additionalGids 10 dropped")
            .count(),
        1,
        "one diagnostic line for the dropped group: {}",
        out.all()
    );
    ctx.assert_clean();
}

#[test]
fn rootless_oci_without_subordinate_ids_fails_and_suggests_chroot() {
    let Some((ctx, _xdg, mut b)) = rootless_chroot_bundle("rlchroot-oci") else {
        return;
    };
    needs_subordinate_ids(&mut b);
    b.sh("echo must-not-run");
    let before = mount_table();
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "oci", &id, &b);
    out.assert_fail("rootless oci run needing subordinate ids");
    assert!(!out.stdout.contains("must-not-run"), "{}", out.all());
    assert!(
        out.stderr.contains("--isolation chroot"),
        "the error suggests chroot isolation: {}",
        out.all()
    );
    assert_eq!(mount_table(), before, "the host's mount table changed");
    ctx.assert_clean();
}

#[test]
fn rootless_chroot_refuses_unwritable_limits_unless_the_annotation_ignores_them() {
    let Some((ctx, _xdg, mut b)) = rootless_chroot_bundle("rlchroot-res") else {
        return;
    };
    b.config["linux"]["resources"] = json!({"memory": {"limit": 100000000}});
    b.sh("echo ran");
    // Full isolation (rootless: best effort) tells whether uid 1000 can
    // write the limit here.
    let probe = ctx.id("p");
    let out = run_isolated(&ctx, "oci", &probe, &b);
    out.assert_ok("rootless full isolation ignores the limit");
    if !out.stderr.contains("linux.resources.memory.limit: ignored") {
        skip("uid 1000 can write the memory limit here (a delegated cgroup)");
        return;
    }
    let id = ctx.id("c");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    assert_ne!(out.code(), Some(0), "the limit is refused: {}", out.all());
    assert!(!out.stdout.contains("ran"), "{}", out.all());
    assert!(
        out.stderr.contains("linux.resources.memory.limit")
            && out.stderr.contains("org.rootcell.chroot.ignore-resources"),
        "the error names the field and the annotation: {}",
        out.all()
    );
    ctx.assert_clean();
    b.config["annotations"] = json!({"org.rootcell.chroot.ignore-resources": "true"});
    let id = ctx.id("d");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_ok("the annotation ignores the limit");
    assert_eq!(out.stdout, "ran\n", "{}", out.all());
    assert_eq!(
        out.stderr
            .matches("linux.resources.memory.limit: ignored")
            .count(),
        1,
        "one diagnostic line for the ignored field: {}",
        out.all()
    );
    ctx.assert_clean();
}

#[test]
fn rootless_chroot_runs_a_root_made_config_dropping_the_devpts_group() {
    // A config from `spec` as root (no user namespace, devpts gid=5, a
    // deny-all device rule) run by uid 1000 without subordinate ids: full
    // isolation is refused (no CAP_SYS_ADMIN, no user namespace), `auto`
    // falls back once, and chroot isolation maps uid 1000 to root, drops
    // gid=5 (EINVAL otherwise: gid 5 is not mapped) and meets the device
    // rule with the bound nodes, one diagnostic each.
    let Some((ctx, _xdg, rl)) = rootless_chroot_bundle("chroot-rl-rootcfg") else {
        return;
    };
    let root_made = ctx.dir.join("root-spec");
    std::fs::create_dir_all(&root_made).unwrap();
    exec(
        Command::new(&ctx.bin)
            .arg("spec")
            .arg("--bundle")
            .arg(&root_made),
        CMD_TIMEOUT,
    )
    .assert_ok("spec as root");
    let mut b = Bundle {
        config: parse_json(&read_file(&root_made.join("config.json")), "root spec"),
        path: rl.path.clone(),
    };
    b.config["process"]["terminal"] = json!(false);
    b.config["root"]["readonly"] = json!(false);
    b.sh("echo ran-$(hostname) uid=$(id -u); ls /dev/pts/ptmx; exit 4");
    for (mode, fallback) in [("chroot", 0), ("auto", 1)] {
        let id = ctx.id(mode);
        let out = run_isolated(&ctx, mode, &id, &b);
        assert_eq!(out.code(), Some(4), "{mode}: {}", out.all());
        assert!(
            out.stdout.starts_with("ran-rootcell uid=0\n"),
            "{}",
            out.all()
        );
        assert!(out.stdout.contains("/dev/pts/ptmx"), "{}", out.all());
        assert_eq!(
            out.stderr.matches(FALLBACK_LINE).count(),
            fallback,
            "{mode}: {}",
            out.all()
        );
        assert_eq!(
            out.stderr
                .matches("mounts[2].options: gid=5 dropped: gid 5 is not mapped in the container's user namespace")
                .count(),
            1,
            "{mode}: {}",
            out.all()
        );
        assert_eq!(
            out.stderr
                .matches("linux.resources.devices: met by binding")
                .count(),
            1,
            "{mode}: {}",
            out.all()
        );
    }
    let id = ctx.id("oci");
    let out = run_isolated(&ctx, "oci", &id, &b);
    out.assert_fail("full isolation as uid 1000 without a user namespace");
    assert!(out.stderr.contains("CAP_SYS_ADMIN"), "{}", out.all());
    assert!(out.stderr.contains("--isolation chroot"), "{}", out.all());
    ctx.assert_clean();
}

/// `unshare --user --map-root-user --mount …`: a shell that sets this
/// user namespace's `user.max_<kind>_namespaces` limits to 0 (so the
/// kernel refuses those namespaces with ENOSPC), prints its own pid and
/// network namespace, and execs `rootcell --isolation MODE run`.
fn run_with_namespace_limits(ctx: &Ctx, mode: &str, id: &str, b: &Bundle, zero: &[&str]) -> Out {
    b.save();
    let limits: String = zero
        .iter()
        .map(|k| format!("echo 0 > /proc/sys/user/max_{k}_namespaces || exit 99; "))
        .collect();
    let script = format!(
        "{limits}echo outer-pid=$(readlink /proc/self/ns/pid) outer-net=$(readlink /proc/self/ns/net); exec \"$0\" --root \"$1\" --rootless true --isolation {mode} run --bundle \"$2\" {id}"
    );
    let mut c = Command::new("unshare");
    c.args([
        "--user",
        "--map-root-user",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        &script,
    ])
    .arg(&ctx.bin)
    .arg(ctx.state_dir())
    .arg(&b.path);
    exec(&mut c, CMD_TIMEOUT)
}

/// The `outer-pid=… outer-net=…` line's value for `key`.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or("")
}

#[test]
fn refused_pid_and_network_namespaces_are_shared_with_one_line_each() {
    if !rootcell_only() || !userns_available() {
        return;
    }
    let ctx = Ctx::new("chroot-ns-refused");
    let mut b = userns_bundle(&ctx);
    b.linux()["namespaces"] = json!([
        {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
        {"type": "uts"}, {"type": "mount"}
    ]);
    b.sh("echo inner-pid=$(readlink /proc/self/ns/pid) inner-net=$(readlink /proc/self/ns/net) self=$$");
    let id = ctx.id("c");
    let out = run_with_namespace_limits(&ctx, "chroot", &id, &b, &["pid", "net"]);
    if out.code() == Some(99) {
        skip("user.max_pid_namespaces cannot be written in a test user namespace here");
        return;
    }
    out.assert_ok("chroot isolation with the pid and network namespaces refused");
    let s = &out.stdout;
    // Shared: the same namespaces as the shell that ran the runtime, and
    // the process is not pid 1 of a new one.
    assert_eq!(
        field(s, "inner-pid="),
        field(s, "outer-pid="),
        "{}",
        out.all()
    );
    assert_eq!(
        field(s, "inner-net="),
        field(s, "outer-net="),
        "{}",
        out.all()
    );
    assert!(!field(s, "inner-pid=").is_empty(), "{}", out.all());
    assert_ne!(field(s, "self="), "1", "{}", out.all());
    // Exactly one line per ignored namespace, naming it; none for ipc,
    // which the kernel allowed.
    let line = |kind: &str| {
        format!("rootcell: chroot isolation: linux.namespaces: the kernel refused a new {kind} namespace (")
    };
    for kind in ["pid", "network"] {
        assert_eq!(
            out.stderr.matches(&line(kind)).count(),
            1,
            "one line for {kind}: {}",
            out.all()
        );
    }
    assert!(!out.stderr.contains(&line("ipc")), "{}", out.all());
    assert_eq!(
        out.stderr.matches("the kernel refused a new").count(),
        2,
        "{}",
        out.all()
    );
    ctx.assert_clean();

    // Full isolation: the same refusal is an error, nothing left behind.
    let id = ctx.id("oci");
    let out = run_with_namespace_limits(&ctx, "oci", &id, &b, &["pid", "net"]);
    out.assert_fail("full isolation with the pid namespace refused");
    assert!(
        out.stderr.contains("No space left on device"),
        "{}",
        out.all()
    );
    assert!(!out.stdout.contains("inner-pid="), "{}", out.all());
    ctx.assert_clean();
}

/// A wrapper that execs its arguments under a seccomp filter making
/// `pivot_root` fail with EINVAL, as the kernel refuses it for a root on
/// the initramfs (rootfs) or for a runtime chrooted into a directory. The
/// filter (and no_new_privs) is inherited by the runtime and its init.
const NO_PIVOT_C: &str = r#"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pivot_root, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof f / sizeof f[0], f };
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("nopivot");
        return 126;
    }
    execv(argv[1], argv + 1);
    perror("execv");
    return 127;
}
"#;

/// Builds the no-pivot wrapper in the test's dir; None (and a printed
/// reason) without gcc.
fn no_pivot_wrapper(ctx: &Ctx) -> Option<std::path::PathBuf> {
    if !command_exists("gcc") {
        skip("gcc is not installed (needed for the pivot_root-refusing wrapper)");
        return None;
    }
    let src = ctx.dir.join("nopivot.c");
    write_file(&src, NO_PIVOT_C);
    let bin = ctx.dir.join("nopivot");
    let cc = exec(
        Command::new("gcc").args(["-O", "-o"]).arg(&bin).arg(&src),
        CMD_TIMEOUT,
    );
    if !cc.ok() {
        skip(&format!("gcc fails here: {}", cc.stderr.trim()));
        return None;
    }
    Some(bin)
}

/// Hooks of every kind, each appending its name to `log` (the
/// startContainer hook runs in the container, so its line goes to the
/// container's /hooks.log).
fn add_logging_hooks(b: &mut Bundle, log: &std::path::Path) {
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        b.add_hook(
            kind,
            json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {kind} >> {}", log.display())]}),
        );
    }
    b.add_hook(
        "startContainer",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer >> /hooks.log"]}),
    );
}

#[test]
fn auto_retries_a_refused_pivot_root_in_chroot_and_runs_each_hook_once() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-auto-pivot");
    let Some(nopivot) = no_pivot_wrapper(&ctx) else {
        return;
    };
    let log = ctx.dir.join("hooks.log");
    let mut b = ctx.bundle();
    add_logging_hooks(&mut b, &log);
    b.sh("echo ran-in-$(hostname); grep -c . /hooks.log; exit 5");
    b.save();
    let before = mount_table();

    // Full isolation: the refusal is an error that suggests chroot.
    let id = ctx.id("oci");
    let mut c = Command::new(&nopivot);
    c.arg(&ctx.bin)
        .arg("--root")
        .arg(ctx.state_dir())
        .args(["--isolation", "oci", "run", "--bundle"])
        .arg(&b.path)
        .arg(&id);
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_fail("--isolation oci with pivot_root refused");
    assert!(out.stderr.contains("pivot_root"), "{}", out.all());
    assert!(out.stderr.contains("--isolation chroot"), "{}", out.all());
    ctx.assert_clean();
    let _ = std::fs::remove_file(&log);

    // auto: probed before the hooks, retried in chroot isolation, one
    // stderr line, and every hook once.
    let id = ctx.id("auto");
    let mut c = Command::new(&nopivot);
    c.arg(&ctx.bin)
        .arg("--root")
        .arg(ctx.state_dir())
        .args(["--isolation", "auto", "run", "--bundle"])
        .arg(&b.path)
        .arg(&id);
    let out = exec(&mut c, CMD_TIMEOUT);
    assert_eq!(out.code(), Some(5), "{}", out.all());
    let l = lines(&out.stdout);
    assert_eq!(l[0], "ran-in-rootcell-test", "{}", out.all());
    assert_eq!(l[1], "1", "startContainer ran once: {}", out.all());
    assert_eq!(
        out.stderr
            .matches("rootcell: full isolation refused (pivot_root): using chroot isolation")
            .count(),
        1,
        "{}",
        out.all()
    );
    assert_eq!(
        lines(&read_file(&log)),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ],
        "each hook once, in order"
    );
    assert_eq!(mount_table(), before, "the host's mount table changed");
    ctx.assert_clean();
}

#[test]
fn auto_retries_a_refused_pivot_root_with_a_terminal() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-auto-pivot-tty");
    let Some(nopivot) = no_pivot_wrapper(&ctx) else {
        return;
    };
    let log = ctx.dir.join("hooks.log");
    let mut b = ctx.bundle();
    add_logging_hooks(&mut b, &log);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 21, "width": 77});
    b.sh("echo tty=$(tty) size=$(stty size) hooks=$(grep -c . /hooks.log); echo tty-done");
    b.save();
    let sock = common::console::ConsoleSocket::bind(&ctx.dir.join("console"));
    let id = ctx.id("auto");
    let mut c = Command::new(&nopivot);
    c.arg(&ctx.bin)
        .arg("--root")
        .arg(ctx.state_dir())
        .args([
            "--isolation",
            "auto",
            "run",
            "--detach",
            "--console-socket",
            sock.arg(),
            "--bundle",
        ])
        .arg(&b.path)
        .arg(&id);
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_ok("run --detach --console-socket with pivot_root refused");
    assert_eq!(
        out.stderr
            .matches("rootcell: full isolation refused (pivot_root): using chroot isolation")
            .count(),
        1,
        "{}",
        out.all()
    );
    let (_, mut term) = sock.master();
    let text = term.read_until("tty-done");
    assert!(text.contains("tty=/dev/pts/"), "{text:?}");
    assert!(text.contains("size=21 77"), "{text:?}");
    assert!(text.contains("hooks=1"), "{text:?}");
    poll(POLL_TIMEOUT, "the container to stop", || {
        (ctx.status(&id) == "stopped").then_some(())
    });
    ctx.rt(&["delete", &id]).assert_ok("delete");
    assert_eq!(
        lines(&read_file(&log)),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ],
        "each hook once, in order"
    );
    ctx.assert_clean();
}

#[test]
fn bad_input_in_chroot_mode_names_the_field_and_leaves_nothing() {
    // The issue's bad input, in chroot isolation as root: a user the
    // config's user namespace does not map, and a missing bind source.
    // Each is refused naming the field or path; no state, cgroup, mount
    // or process is left, and the command never ran.
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-bad");
    let before = mount_table();

    let mut b = ctx.bundle();
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.process()["user"] = json!({"uid": 70000, "gid": 0});
    b.sh("touch /tmp/ran");
    let id = ctx.id("user");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_fail("an unmapped user in chroot mode");
    assert!(out.stderr.contains("process.user.uid"), "{}", out.all());
    assert!(out.stderr.contains("70000"), "{}", out.all());
    assert!(!b.rootfs().join("tmp/ran").exists());
    assert!(ctx.try_state(&id).is_none());
    ctx.assert_clean();

    let mut b = ctx.bundle();
    let missing = ctx.dir.join("no-such-source");
    b.bind_mount(&missing, "/data", false);
    b.sh("touch /tmp/ran");
    let id = ctx.id("bind");
    let out = run_isolated(&ctx, "chroot", &id, &b);
    out.assert_fail("a missing bind source in chroot mode");
    assert!(out.stderr.contains("mounts["), "{}", out.all());
    assert!(out.stderr.contains("no-such-source"), "{}", out.all());
    assert!(!b.rootfs().join("tmp/ran").exists());
    assert!(ctx.try_state(&id).is_none());
    ctx.assert_clean();
    assert_eq!(mount_table(), before, "the test's mount table changed");
}
