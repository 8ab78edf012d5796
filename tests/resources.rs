//! `linux.resources`: the limits reach the host's cgroup files and hold
//! inside the container; bad values and missing controllers fail naming
//! the field and leave nothing behind. Written for this machine's hybrid
//! layout (v1 controllers); pure v2 runs in a private mount namespace.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: i64 = 1024 * 1024;

/// A bundle whose cgroups are `/<id>` in every hierarchy (so the test knows
/// where to look) with `resources` as `linux.resources`.
fn limited(ctx: &Ctx, tag: &str, resources: Value) -> (String, Bundle) {
    let id = ctx.id(tag);
    let mut b = ctx.bundle();
    b.linux()["cgroupsPath"] = json!(format!("/{id}"));
    b.linux()["resources"] = resources;
    b.save();
    (id, b)
}

/// The host's copy of `file` in the container's cgroup of `controller`.
fn host_file(controller: &str, id: &str, file: &str) -> String {
    let p = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(id)
        .join(file);
    read_file(&p).trim().to_string()
}

/// The first of `files` that exists in the container's cgroup (CFQ or BFQ
/// names), read.
fn host_file_any(controller: &str, id: &str, files: &[&str]) -> String {
    let dir = Path::new("/sys/fs/cgroup").join(controller).join(id);
    let f = files
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("none of {files:?} in {}", dir.display()));
    read_file(&f).trim().to_string()
}

fn has_controller(c: &str) -> bool {
    cgroup_v1_controller(c)
}

/// The v1 controllers every test of this file needs (the hybrid layout of
/// machines of this kind).
fn base_controllers_present() -> bool {
    ["cpu", "memory", "pids", "devices", "freezer"]
        .iter()
        .all(|c| has_controller(c))
}

#[test]
fn limits_are_written_to_the_host_cgroup_files() {
    skip_unless!(base_controllers_present(), "a v1 controller is missing");
    let ctx = Ctx::new("reshost");
    // Only what this host has: memory+swap needs swap accounting, cpus and
    // mems the cpuset controller, a blkio weight the BFQ (or CFQ) I/O
    // scheduler (`blkio_weight_is_seen_inside` checks the refusal without).
    let mut memory = json!({"limit": 64 * MIB, "reservation": 32 * MIB});
    if swap_accounting() {
        memory["swap"] = json!(64 * MIB);
    }
    let mut cpu = json!({"shares": 512, "quota": 50000, "period": 100000});
    if has_controller("cpuset") {
        cpu["cpus"] = json!("0");
        cpu["mems"] = json!(numa_nodes().first().copied().unwrap_or(0).to_string());
    }
    let mut resources = json!({
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}
        ],
        "pids": {"limit": 10},
        "memory": memory,
        "cpu": cpu,
    });
    let weight_file = blkio_weight_file();
    if weight_file.is_some() {
        resources["blockIO"] = json!({"weight": 300});
    }
    let (id, b) = limited(&ctx, "c", resources);
    ctx.create(&id, &b, &[]).assert_ok("create with limits");
    assert_eq!(host_file("pids", &id, "pids.max"), "10");
    assert_eq!(
        host_file("memory", &id, "memory.limit_in_bytes"),
        (64 * MIB).to_string()
    );
    if swap_accounting() {
        assert_eq!(
            host_file("memory", &id, "memory.memsw.limit_in_bytes"),
            (64 * MIB).to_string()
        );
    } else {
        skip("no swap accounting (memory.memsw.*): memory.swap not checked");
    }
    assert_eq!(
        host_file("memory", &id, "memory.soft_limit_in_bytes"),
        (32 * MIB).to_string()
    );
    assert_eq!(host_file("cpu", &id, "cpu.shares"), "512");
    assert_eq!(host_file("cpu", &id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(host_file("cpu", &id, "cpu.cfs_period_us"), "100000");
    if has_controller("cpuset") {
        assert_eq!(host_file("cpuset", &id, "cpuset.cpus"), "0");
    } else {
        skip("no v1 cpuset controller: cpu.cpus and cpu.mems not checked");
    }
    match weight_file {
        Some(f) => {
            let weight = host_file_any("blkio", &id, &[f]);
            assert!(weight.ends_with("300"), "blkio weight: {weight}");
        }
        None => {
            skip("no blkio weight file (I/O scheduler without BFQ): blockIO.weight not checked")
        }
    }
    // Deny everything, then the rule's read of 1:11, then the defaults.
    let list = host_file("devices", &id, "devices.list");
    let lines = lines(&list);
    for rule in ["c 1:11 r", "c *:* m", "b *:* m", "c 1:3 rwm", "c 136:* rwm"] {
        assert!(lines.iter().any(|l| l == rule), "{rule} not in {list}");
    }
    assert!(!lines.iter().any(|l| l == "a *:* rwm"), "{list}");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    skip_unless!(has_controller("pids"), "no v1 pids controller");
    let ctx = Ctx::new("respids");
    let (id, mut b) = limited(&ctx, "c", json!({"pids": {"limit": 8}}));
    // ash exits when it cannot fork; the pid namespace takes the sleeps.
    b.sh("cat /sys/fs/cgroup/pids/pids.max; i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; echo all-forked");
    let out = ctx.run(&id, &b);
    assert!(!out.ok(), "the fork bomb went through: {}", out.all());
    assert!(out.stdout.starts_with("8\n"), "{}", out.all());
    assert!(!out.stdout.contains("all-forked"), "{}", out.all());
    assert!(out.stderr.contains("fork"), "{}", out.all());
    ctx.assert_clean();
}

#[test]
fn a_memory_hog_is_oom_killed_at_the_limit() {
    skip_unless!(has_controller("memory"), "no v1 memory controller");
    let ctx = Ctx::new("resmem");
    // Without swap accounting a memory-only limit still kills the hog when
    // no swap is on; with swap on and no memsw it would swap instead.
    let memory = if swap_accounting() {
        json!({"limit": 32 * MIB, "swap": 32 * MIB})
    } else {
        skip_unless!(
            read_file(Path::new("/proc/swaps")).lines().count() <= 1,
            "swap is on without swap accounting: the hog would swap"
        );
        json!({"limit": 32 * MIB})
    };
    let (id, mut b) = limited(&ctx, "c", json!({ "memory": memory }));
    // dd's 128 MiB buffer is touched as it reads into it.
    b.sh("exec dd if=/dev/zero of=/dev/null bs=128M count=1");
    let out = ctx.run(&id, &b);
    assert_eq!(out.code(), Some(137), "{}", out.all());
    // The same with room to spare succeeds.
    let (id2, mut b2) = limited(&ctx, "ok", json!({"memory": {"limit": 256 * MIB}}));
    b2.sh("dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null && echo done");
    let out = ctx.run(&id2, &b2);
    out.assert_ok("dd under the limit");
    assert_eq!(out.stdout.trim(), "done");
    ctx.assert_clean();
}

#[test]
fn cpu_settings_are_seen_inside() {
    skip_unless!(
        has_controller("cpu") && has_controller("cpuset"),
        "no v1 cpu or cpuset controller"
    );
    let ctx = Ctx::new("rescpu");
    let (id, mut b) = limited(
        &ctx,
        "c",
        json!({"cpu": {"shares": 256, "quota": 20000, "period": 50000, "cpus": "0"}}),
    );
    b.sh("nproc; cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpuset/cpuset.cpus");
    let out = ctx.run(&id, &b);
    out.assert_ok("run with cpu limits");
    assert_eq!(lines(&out.stdout), ["1", "256", "20000", "50000", "0"]);
    ctx.assert_clean();
}

#[test]
fn blkio_weight_is_seen_inside() {
    skip_unless!(has_controller("blkio"), "no v1 blkio controller");
    let ctx = Ctx::new("resblk");
    if blkio_weight_file().is_none() {
        // No BFQ here (mq-deadline, kyber, none): the weight cannot be
        // set, and the runtime says so, naming the field.
        refused(
            &ctx,
            "noweight",
            json!({"blockIO": {"weight": 250}}),
            "linux.resources.blockIO.weight",
        );
        skip("no blkio weight file (I/O scheduler without BFQ): checked the refusal only");
        return;
    }
    let (id, mut b) = limited(&ctx, "c", json!({"blockIO": {"weight": 250}}));
    b.sh("cat /sys/fs/cgroup/blkio/blkio.weight 2>/dev/null || cat /sys/fs/cgroup/blkio/blkio.bfq.weight");
    let out = ctx.run(&id, &b);
    out.assert_ok("run with a blkio weight");
    assert!(out.stdout.trim().ends_with("250"), "{}", out.all());
    ctx.assert_clean();
}

/// A bundle whose device rules deny everything but reading /dev/fuse (and
/// the defaults), with CAP_MKNOD to make the nodes (mknod itself is
/// allowed: `c *:* m`), and a script printing what could be opened.
fn device_bundle(ctx: &Ctx, tag: &str) -> (String, Bundle) {
    let (id, mut b) = limited(
        ctx,
        tag,
        json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "r"}
        ]}),
    );
    for set in ["bounding", "effective", "permitted"] {
        b.process()["capabilities"][set]
            .as_array_mut()
            .expect("capability set")
            .push(json!("CAP_MKNOD"));
    }
    // /dev/fuse opens without privileges: only the cgroup stands between
    // the container and a write open; /dev/loop-control has no rule.
    b.sh(
        "mknod /dev/fuse2 c 10 229 && mknod /dev/loopctl2 c 10 237 || exit 9; \
          : < /dev/fuse2 && echo read-allowed; \
          (: > /dev/fuse2) 2>&1 | grep -q 'not permitted' && echo write-denied; \
          (: < /dev/loopctl2) 2>&1 | grep -q 'not permitted' && echo loop-denied; \
          : > /dev/null && echo null-allowed",
    );
    b.save();
    (id, b)
}

const DEVICE_OUTCOME: [&str; 4] = [
    "read-allowed",
    "write-denied",
    "loop-denied",
    "null-allowed",
];

#[test]
fn a_denied_device_cannot_be_opened_while_an_allowed_one_can() {
    skip_unless!(has_controller("devices"), "no v1 devices controller");
    let ctx = Ctx::new("resdev");
    let (id, b) = device_bundle(&ctx, "c");
    let out = ctx.run(&id, &b);
    out.assert_ok("run with device rules");
    assert_eq!(lines(&out.stdout), DEVICE_OUTCOME, "{}", out.all());
    ctx.assert_clean();
}

#[test]
fn pure_v2_device_rules_are_an_ebpf_filter() {
    let ctx = Ctx::new("resdev2");
    let (id, b) = device_bundle(&ctx, "c");
    let bundle = b.path.to_string_lossy().to_string();
    let out = on_pure_v2(&ctx, &["run", "--bundle", &bundle, &id]);
    out.assert_ok("run with device rules on v2");
    assert_eq!(lines(&out.stdout), DEVICE_OUTCOME, "{}", out.all());
    ctx.assert_clean();
}

/// `create` fails, names `field` (rootcell; runc's messages differ), and
/// leaves no container, process or cgroup.
fn refused(ctx: &Ctx, tag: &str, resources: Value, field: &str) {
    let (id, b) = limited(ctx, tag, resources);
    let out = ctx.create(&id, &b, &[]);
    out.assert_fail(tag);
    if !runtime_is_runc() {
        assert!(out.stderr.contains(field), "{tag}: {}", out.all());
    }
    ctx.forget(&id);
    ctx.assert_clean();
    assert!(cgroups_named(&id).is_empty(), "{tag}: cgroups left");
}

#[test]
fn bad_values_fail_naming_the_field_and_leave_nothing() {
    let ctx = Ctx::new("resbad");
    if !runtime_is_runc() {
        // runc 1.1 hands these to the kernel or lets them through.
        refused(
            &ctx,
            "neg",
            json!({"memory": {"limit": -5}}),
            "linux.resources.memory.limit",
        );
        refused(
            &ctx,
            "cpus",
            json!({"cpu": {"cpus": "0-x"}}),
            "linux.resources.cpu.cpus",
        );
    }
    refused(
        &ctx,
        "swap",
        json!({"memory": {"limit": 64 * MIB, "swap": 32 * MIB}}),
        "linux.resources.memory.swap",
    );
    // The kernel refuses a period below 1 ms: the write fails, by name.
    refused(
        &ctx,
        "period",
        json!({"cpu": {"quota": 50000, "period": 10}}),
        "linux.resources.cpu.period",
    );
    refused(
        &ctx,
        "unified",
        json!({"unified": {"memory.max": "1000000"}}),
        "linux.resources.unified[\"memory.max\"]",
    );
}

#[test]
fn a_missing_controller_fails_only_when_its_field_is_set() {
    let ctx = Ctx::new("resmiss");
    if has_controller("net_cls") {
        skip("this host has net_cls");
        return;
    }
    refused(
        &ctx,
        "classid",
        json!({"network": {"classID": 1048577}}),
        "linux.resources.network.classID",
    );
    // Unset, the missing controller does not matter.
    let (id, b) = limited(&ctx, "ok", json!({"network": {}, "pids": {"limit": 50}}));
    ctx.run(&id, &b).assert_ok("network without values");
    ctx.assert_clean();
}

#[test]
fn kernel_memory_is_accepted_and_ignored() {
    let ctx = Ctx::new("reskmem");
    let (id, b) = limited(
        &ctx,
        "c",
        json!({"memory": {"limit": 128 * MIB, "kernel": 64 * MIB, "kernelTCP": 16 * MIB}}),
    );
    let out = ctx.run(&id, &b);
    out.assert_ok("kernel memory limits");
    if !runtime_is_runc() {
        assert!(
            out.stderr.contains("linux.resources.memory.kernel")
                && out.stderr.contains("linux.resources.memory.kernelTCP"),
            "{}",
            out.all()
        );
        // `rootcell plan` shows the files and values before anything runs.
        let plan = ctx.rt(&["plan", &b.path.to_string_lossy()]);
        plan.assert_ok("plan");
        assert!(
            plan.stdout.contains(&format!(
                "memory.limit_in_bytes = \"{}\" (linux.resources.memory.limit)",
                128 * MIB
            )),
            "{}",
            plan.stdout
        );
    }
    ctx.assert_clean();
}

/// Runs `args` of the runtime in a private mount namespace whose
/// `/sys/fs/cgroup` is a cgroup2 (a pure v2 host's layout).
fn on_pure_v2(ctx: &Ctx, args: &[&str]) -> Out {
    exec(&mut on_pure_v2_cmd(ctx, args), CMD_TIMEOUT)
}

fn on_pure_v2_cmd(ctx: &Ctx, args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t cgroup2 none /sys/fs/cgroup && exec \"$@\"")
        .arg("sh")
        .arg(runtime_path());
    if let Some(root) = &ctx.root {
        c.arg("--root").arg(root);
    }
    c.args(args);
    c
}

#[test]
fn pure_v2_writes_v2_files_and_names_disabled_controllers() {
    let ctx = Ctx::new("resv2");
    let unified = PathBuf::from("/sys/fs/cgroup/unified");
    let controllers = read_file(&unified.join("cgroup.subtree_control"));
    // hugetlb is the one controller this host leaves to cgroup2.
    if controllers.split_whitespace().any(|c| c == "hugetlb") {
        let (id, mut b) = limited(
            &ctx,
            "huge",
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MIB}]}),
        );
        // The hierarchy as the runtime sees it (runc's container may see
        // another cgroup namespace root), the container's directory in it.
        b.bind_mount(Path::new("/sys/fs/cgroup"), "/hostcg", true);
        b.sh(&format!("cat /hostcg/{id}/hugetlb.2MB.max"));
        b.save();
        let bundle = b.path.to_string_lossy().to_string();
        let out = on_pure_v2(&ctx, &["run", "--bundle", &bundle, &id]);
        out.assert_ok("hugetlb on v2");
        assert_eq!(out.stdout.trim(), (4 * MIB).to_string());
    } else {
        skip("hugetlb is not enabled in the cgroup2 root");
    }
    // Below a cgroup the runtime creates itself, hugetlb is enabled in its
    // cgroup.subtree_control first (as runc does).
    if controllers.split_whitespace().any(|c| c == "hugetlb") {
        let id = ctx.id("nested");
        let parent = format!("{id}-parent");
        let mut b = ctx.bundle();
        b.linux()["cgroupsPath"] = json!(format!("/{parent}/{id}"));
        b.linux()["resources"] = json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2 * MIB}]});
        b.bind_mount(Path::new("/sys/fs/cgroup"), "/hostcg", true);
        b.sh(&format!("cat /hostcg/{parent}/{id}/hugetlb.2MB.max"));
        b.save();
        let bundle = b.path.to_string_lossy().to_string();
        let out = on_pure_v2(&ctx, &["run", "--bundle", &bundle, &id]);
        // The parent outlives the container (as with runc): ours to remove.
        let _ = std::fs::remove_dir(unified.join(&parent));
        out.assert_ok("hugetlb below a new parent on v2");
        assert_eq!(out.stdout.trim(), (2 * MIB).to_string());
    }
    // pids is bound to v1 here: on cgroup2 it is not available.
    if controllers.split_whitespace().any(|c| c == "pids") || !has_controller("pids") {
        skip("pids is not a v1 controller here: its refusal on cgroup2 not checked");
        return;
    }
    let (id, b) = limited(&ctx, "pids", json!({"pids": {"limit": 10}}));
    let bundle = b.path.to_string_lossy().to_string();
    let out = on_pure_v2(&ctx, &["run", "--bundle", &bundle, &id]);
    out.assert_fail("pids on a cgroup2 without pids");
    if !runtime_is_runc() {
        assert!(
            out.stderr.contains("linux.resources.pids.limit") && out.stderr.contains("not enabled"),
            "{}",
            out.all()
        );
    }
    ctx.forget(&id);
    ctx.assert_clean();
    assert!(cgroups_named(&id).is_empty(), "cgroups left for {id}");
}

// ---------------------------------------------------------------------------
// pause / resume (the freezer)
// ---------------------------------------------------------------------------

/// A detached container counting into `/tmp/count` of its rootfs every
/// 50 ms; returns the path of that file on the host.
fn counting(ctx: &Ctx, id: &str, b: &mut Bundle) -> PathBuf {
    b.sh("i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.05; done");
    b.save();
    let count = b.rootfs().join("tmp/count");
    ctx.run_detached(id, b, &[]).assert_ok("run -d the counter");
    wait_for_file(&count);
    count
}

/// The counter's value, read twice `ms` apart.
fn count_moves(count: &Path, ms: u64) -> bool {
    let a = read_file(count);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    read_file(count) != a
}

#[test]
fn pause_freezes_every_process_and_resume_thaws_them() {
    let ctx = Ctx::new("pause");
    let (id, mut b) = limited(&ctx, "c", json!({}));
    let count = counting(&ctx, &id, &mut b);
    assert!(count_moves(&count, 300), "the counter does not count");
    ctx.rt(&["pause", &id]).assert_ok("pause");
    assert_eq!(ctx.status(&id), "paused");
    assert_eq!(host_file("freezer", &id, "freezer.state"), "FROZEN");
    assert!(!count_moves(&count, 300), "a paused container ran");
    // Pausing twice is refused; so is resuming a running container.
    ctx.rt(&["pause", &id])
        .assert_fail("pause a paused container");
    ctx.rt(&["resume", &id]).assert_ok("resume");
    assert_eq!(ctx.status(&id), "running");
    assert_eq!(host_file("freezer", &id, "freezer.state"), "THAWED");
    assert!(count_moves(&count, 300), "a resumed container stays still");
    ctx.rt(&["resume", &id])
        .assert_fail("resume a running container");
    // A paused container goes with delete --force.
    ctx.rt(&["pause", &id]).assert_ok("pause again");
    ctx.rt(&["delete", "--force", &id])
        .assert_ok("delete --force a paused container");
    ctx.assert_clean();
}

#[test]
fn pause_and_resume_refuse_a_missing_or_stopped_container() {
    let ctx = Ctx::new("pausestop");
    ctx.rt(&["pause", "no-such-container"])
        .assert_fail("pause a missing container");
    ctx.rt(&["resume", "no-such-container"])
        .assert_fail("resume a missing container");
    let (id, b) = limited(&ctx, "c", json!({}));
    ctx.run_detached(&id, &b, &[]).assert_ok("run -d true");
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["pause", &id])
        .assert_fail("pause a stopped container");
    ctx.rt(&["resume", &id])
        .assert_fail("resume a stopped container");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn pause_on_pure_v2_uses_cgroup_freeze() {
    let ctx = Ctx::new("pausev2");
    let (id, mut b) = limited(&ctx, "c", json!({}));
    b.sh("i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.05; done");
    b.save();
    let count = b.rootfs().join("tmp/count");
    let bundle = b.path.to_string_lossy().to_string();
    let mut c = on_pure_v2_cmd(&ctx, &["run", "--detach", "--bundle", &bundle, &id]);
    ctx.exec_detached(&mut c, &id, None)
        .assert_ok("run -d on pure v2");
    wait_for_file(&count);
    on_pure_v2(&ctx, &["pause", &id]).assert_ok("pause on v2");
    let state = on_pure_v2(&ctx, &["state", &id]);
    state.assert_ok("state");
    assert_eq!(parse_json(&state.stdout, "state")["status"], "paused");
    let freeze = Path::new("/sys/fs/cgroup/unified")
        .join(&id)
        .join("cgroup.freeze");
    assert_eq!(read_file(&freeze).trim(), "1");
    assert!(!count_moves(&count, 300), "a paused container ran");
    on_pure_v2(&ctx, &["resume", &id]).assert_ok("resume on v2");
    assert!(count_moves(&count, 300), "a resumed container stays still");
    on_pure_v2(&ctx, &["delete", "--force", &id]).assert_ok("delete on v2");
    ctx.assert_clean();
}
