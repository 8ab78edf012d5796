//! Where the runtime and init read and write `/proc` (`fs::procfs`): the
//! runtime through the `/proc` mounted where it runs, only when that is a
//! procfs of its own pid namespace; init through the container's own fresh
//! `/proc` once mounted (`plan::InitProcfs`), or a private one where that
//! cannot serve. Whatever the source, what goes through it must land on
//! the right process.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;

/// The `/proc` mount of `b` made read-only (`ro` among its options).
fn proc_read_only(b: &mut Bundle) {
    let mounts = b.config["mounts"].as_array_mut().expect("mounts");
    let proc = mounts
        .iter_mut()
        .find(|m| m["destination"] == "/proc")
        .expect("a /proc mount in the test bundle");
    proc["options"] = json!(["ro", "nosuid", "noexec", "nodev"]);
}

#[test]
fn init_writes_its_settings_past_a_read_only_proc() {
    // Init writes oom_score_adj through its procfs; a read-only /proc of
    // the container's cannot be it, and the write must still happen.
    let ctx = Ctx::new("procfs-ro");
    let mut b = ctx.bundle();
    proc_read_only(&mut b);
    b.process()["oomScoreAdj"] = json!(500);
    b.sh("echo score=$(cat /proc/self/oom_score_adj); \
          echo opts=$(awk '$5 == \"/proc\" {print $6}' /proc/self/mountinfo)");
    b.save();
    let out = ctx.run(&ctx.id("c"), &b);
    out.assert_ok("run with a read-only /proc");
    assert!(out.stdout.contains("score=500\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("opts=ro,"),
        "/proc is not read-only in the container:\n{}",
        out.stdout
    );
    ctx.assert_clean();
}

#[test]
fn init_uses_the_containers_proc_and_the_runtime_the_mounted_one() {
    if runtime_is_runc() {
        skip("how rootcell gets its procfs handles");
        return;
    }
    if !command_exists("strace") {
        skip("strace is not installed (scripts/setup installs it)");
        return;
    }
    // oom_score_adj and the exec fifo make init use its procfs after the
    // container's /proc is mounted.
    let ctx = Ctx::new("procfs-own");
    let mut b = ctx.bundle();
    b.process()["oomScoreAdj"] = json!(300);
    b.sh("cat /proc/self/oom_score_adj");
    b.save();
    let plan = ctx.rt(&["plan", &b.path.display().to_string()]);
    plan.assert_ok("plan");
    assert!(
        plan.stdout
            .contains("procfs: init uses the container's fresh /proc"),
        "{}",
        plan.stdout
    );
    let trace = ctx.dir.join("fsopen.trace");
    let id = ctx.id("c");
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-e", "trace=fsopen", "-o"])
        .arg(&trace)
        .arg(runtime_path())
        .arg("--root")
        .arg(ctx.state_dir())
        .args(["run", "--bundle"])
        .arg(&b.path)
        .arg(&id);
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_ok("run under strace");
    assert_eq!(out.stdout, "300\n");
    // One procfs is made: the container's /proc. Neither the runtime nor
    // init makes a private one (each costs a mount torn down at exit).
    let fsopens = read_file(&trace);
    let procs = fsopens
        .lines()
        .filter(|l| l.contains("fsopen(\"proc\""))
        .count();
    assert_eq!(procs, 1, "procfs instances made:\n{fsopens}");
    ctx.assert_clean();
}

#[test]
fn a_runtime_whose_proc_shows_another_pid_namespace_reads_its_own() {
    // In a new pid namespace whose /proc was not remounted, /proc shows the
    // host's processes: /proc/<pid> of a pid of ours is someone else. The
    // runtime must notice (its `self` is not its pid) and use a procfs of
    // its own pid namespace, or it reads the wrong process's start time
    // (or enters another process's root for `exec`).
    let ctx = Ctx::new("procfs-pidns");
    let mut b = ctx.bundle();
    b.args(&["sleep", "100"]);
    b.save();
    write_file(&b.rootfs().join("marker"), "inside\n");
    let id = ctx.id("c");
    let script = format!(
        "RT='{rt} --root {root}'
         $RT create --bundle '{bundle}' {id} </dev/null >/dev/null 2>&1 || exit 10
         echo created=$($RT state {id})
         $RT start {id} || exit 11
         echo running=$($RT state {id})
         echo exec=$($RT exec {id} cat /marker)
         $RT delete --force {id} || exit 12
         echo left=$($RT list -q)",
        rt = ctx.bin.display(),
        root = ctx.state_dir().display(),
        bundle = b.path.display()
    );
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", "sh", "-c", &script]);
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_ok("lifecycle in a pid namespace with the host's /proc");
    let state = |key: &str| -> Value {
        let line = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in:\n{}", out.stdout));
        parse_json(line, key)
    };
    assert_eq!(state("created")["status"], "created", "{}", out.stdout);
    assert_eq!(state("running")["status"], "running", "{}", out.stdout);
    assert!(out.stdout.contains("exec=inside\n"), "{}", out.stdout);
    assert!(out.stdout.contains("left=\n"), "{}", out.stdout);
    // Deleted in there; its pids mean nothing out here.
    ctx.forget(&id);
    ctx.assert_clean();
}
