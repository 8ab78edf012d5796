//! `update`: a live container's limits change in the host's cgroup files
//! and hold inside; only the values given change; bad values, unknown ids
//! and stopped containers fail without changing anything. Written for this
//! machine's hybrid layout (v1 controllers), like tests/resources.rs.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;

const MIB: i64 = 1024 * 1024;
/// What a v1 memory cgroup reads back for "unlimited" (-1), page-aligned.
const V1_UNLIMITED: &str = "9223372036854771712";

/// A running container (`sleep 300`) whose cgroups are `/<id>` in every
/// hierarchy, with `resources` as `linux.resources`.
fn running(ctx: &Ctx, tag: &str, resources: Value) -> String {
    let id = ctx.id(tag);
    let mut b = ctx.bundle();
    b.linux()["cgroupsPath"] = json!(format!("/{id}"));
    b.linux()["resources"] = resources;
    b.args(&["sleep", "300"]);
    ctx.run_detached(&id, &b, &[]).assert_ok("run --detach");
    id
}

/// The host's copy of `file` in the container's cgroup of `controller`.
fn host_file(controller: &str, id: &str, file: &str) -> String {
    let p = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(id)
        .join(file);
    read_file(&p).trim().to_string()
}

fn memory(id: &str) -> (String, String) {
    (
        host_file("memory", id, "memory.limit_in_bytes"),
        host_file("memory", id, "memory.memsw.limit_in_bytes"),
    )
}

fn has_memsw(id: &str) -> bool {
    Path::new("/sys/fs/cgroup/memory")
        .join(id)
        .join("memory.memsw.limit_in_bytes")
        .exists()
}

fn update(ctx: &Ctx, id: &str, flags: &[&str]) -> Out {
    let mut args = vec!["update"];
    args.extend_from_slice(flags);
    args.push(id);
    ctx.rt(&args)
}

fn finish(ctx: &Ctx, id: &str) {
    ctx.rt(&["delete", "--force", id])
        .assert_ok("delete --force");
    ctx.assert_clean();
}

#[test]
fn memory_limits_go_up_and_down_in_the_right_order() {
    skip_unless!(
        swap_accounting(),
        "no swap accounting (memory.memsw.limit_in_bytes)"
    );
    let ctx = Ctx::new("updmem");
    let id = running(
        &ctx,
        "c",
        json!({"memory": {"limit": 64 * MIB, "swap": 64 * MIB}}),
    );
    if !has_memsw(&id) {
        skip("no swap accounting (memory.memsw.limit_in_bytes)");
        return finish(&ctx, &id);
    }
    // Up: memsw must be raised before the limit may pass the old memsw.
    update(&ctx, &id, &["--memory", "128m", "--memory-swap", "256m"]).assert_ok("raise");
    assert_eq!(
        memory(&id),
        ((128 * MIB).to_string(), (256 * MIB).to_string())
    );
    // Down: the limit must drop before memsw may go below the old limit.
    update(&ctx, &id, &["--memory", "32m", "--memory-swap", "32m"]).assert_ok("lower");
    assert_eq!(
        memory(&id),
        ((32 * MIB).to_string(), (32 * MIB).to_string())
    );
    // Only the reservation: the limits stay.
    update(&ctx, &id, &["--memory-reservation", "16M"]).assert_ok("reservation");
    assert_eq!(
        host_file("memory", &id, "memory.soft_limit_in_bytes"),
        (16 * MIB).to_string()
    );
    assert_eq!(
        memory(&id),
        ((32 * MIB).to_string(), (32 * MIB).to_string())
    );
    // A hog is OOM-killed at the new limit.
    let out = ctx.rt(&[
        "exec",
        &id,
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=128M",
        "count=1",
    ]);
    assert_eq!(out.code(), Some(137), "{}", out.all());
    // -1 alone: memory and memory+swap both unlimited, as runc.
    update(&ctx, &id, &["--memory", "-1"]).assert_ok("unlimited");
    assert_eq!(
        memory(&id),
        (V1_UNLIMITED.to_string(), V1_UNLIMITED.to_string())
    );
    // Kernel memory is accepted and ignored.
    update(
        &ctx,
        &id,
        &["--kernel-memory", "50m", "--kernel-memory-tcp", "1m"],
    )
    .assert_ok("kernel memory");
    finish(&ctx, &id);
}

#[test]
fn cpu_shares_quota_period_and_cpuset() {
    let ctx = Ctx::new("updcpu");
    let id = running(&ctx, "c", json!({"cpu": {"shares": 1024}}));
    update(
        &ctx,
        &id,
        &[
            "--cpu-share",
            "512",
            "--cpu-period",
            "50000",
            "--cpu-quota",
            "25000",
        ],
    )
    .assert_ok("cpu");
    assert_eq!(host_file("cpu", &id, "cpu.shares"), "512");
    assert_eq!(host_file("cpu", &id, "cpu.cfs_period_us"), "50000");
    assert_eq!(host_file("cpu", &id, "cpu.cfs_quota_us"), "25000");
    // The quota alone; the period stays.
    update(&ctx, &id, &["--cpu-quota", "-1"]).assert_ok("quota -1");
    assert_eq!(host_file("cpu", &id, "cpu.cfs_quota_us"), "-1");
    assert_eq!(host_file("cpu", &id, "cpu.cfs_period_us"), "50000");
    assert_eq!(host_file("cpu", &id, "cpu.shares"), "512");
    // cpuset: nproc inside follows.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let usable = usable_cpus();
    if cpus >= 2 && usable.contains(&0) && usable.contains(&1) && cgroup_v1_controller("cpuset") {
        let nproc = |ctx: &Ctx| {
            let out = ctx.rt(&["exec", &id, "nproc"]);
            out.assert_ok("exec nproc");
            out.stdout.trim().to_string()
        };
        assert_eq!(nproc(&ctx), cpus.to_string());
        update(&ctx, &id, &["--cpuset-cpus", "1", "--cpuset-mems", "0"]).assert_ok("cpuset");
        assert_eq!(host_file("cpuset", &id, "cpuset.cpus"), "1");
        assert_eq!(nproc(&ctx), "1");
        update(&ctx, &id, &["--cpuset-cpus", "0-1"]).assert_ok("cpuset back");
        assert_eq!(nproc(&ctx), "2");
    } else {
        skip("cpuset update needs CPUs 0 and 1 and the v1 cpuset controller");
    }
    finish(&ctx, &id);
}

#[test]
fn pids_limit_bounds_forks_and_can_be_raised() {
    let ctx = Ctx::new("updpids");
    let id = running(&ctx, "c", json!({"pids": {"limit": 5}}));
    // init + sh + 8 sleeps > 5.
    let forks = "i=0; while [ $i -lt 8 ]; do sleep 2 & i=$((i+1)); done; echo all-forked";
    let out = ctx.rt(&["exec", &id, "sh", "-c", forks]);
    assert!(!out.stdout.contains("all-forked"), "{}", out.all());
    update(&ctx, &id, &["--pids-limit", "30"]).assert_ok("pids");
    assert_eq!(host_file("pids", &id, "pids.max"), "30");
    let out = ctx.rt(&["exec", &id, "sh", "-c", forks]);
    out.assert_ok("forks under the raised limit");
    assert!(out.stdout.contains("all-forked"), "{}", out.all());
    update(&ctx, &id, &["--pids-limit", "-1"]).assert_ok("pids unlimited");
    assert_eq!(host_file("pids", &id, "pids.max"), "max");
    finish(&ctx, &id);
}

#[test]
fn resources_from_a_file_and_from_stdin() {
    let ctx = Ctx::new("updres");
    let id = running(&ctx, "c", json!({"pids": {"limit": 50}}));
    let file = ctx.dir.join("res.json");
    // Fields runc's update does not apply (devices) are ignored.
    write_file(
        &file,
        &json!({
            "pids": {"limit": 40},
            "cpu": {"shares": 300},
            "devices": [{"allow": true, "access": "rwm"}]
        })
        .to_string(),
    );
    update(&ctx, &id, &["-r", file.to_str().unwrap()]).assert_ok("-r file");
    assert_eq!(host_file("pids", &id, "pids.max"), "40");
    assert_eq!(host_file("cpu", &id, "cpu.shares"), "300");
    // With -r, the other flags are ignored (as runc).
    let mut c = ctx.cmd();
    c.args(["update", "--resources", "-", "--pids-limit", "7", &id]);
    let input = json!({"pids": {"limit": 33}}).to_string();
    exec_input(&mut c, Some(input.as_bytes()), CMD_TIMEOUT).assert_ok("-r -");
    assert_eq!(host_file("pids", &id, "pids.max"), "33");
    assert_eq!(host_file("cpu", &id, "cpu.shares"), "300");
    finish(&ctx, &id);
}

#[test]
fn bad_values_and_unknown_ids_change_nothing() {
    let ctx = Ctx::new("updbad");
    let id = running(
        &ctx,
        "c",
        json!({"pids": {"limit": 50}, "memory": {"limit": 64 * MIB}, "cpu": {"cpus": "0"}}),
    );
    let before = || {
        (
            host_file("pids", &id, "pids.max"),
            host_file("memory", &id, "memory.limit_in_bytes"),
            host_file("cpuset", &id, "cpuset.cpus"),
        )
    };
    let start = before();
    let rootcell = !runtime_is_runc();
    for (flags, names) in [
        (&["--memory", "12x", "--pids-limit", "9"][..], "--memory"),
        (&["--pids-limit", "many"], "--pids-limit"),
        (&["--cpu-period", "-5"], "--cpu-period"),
        (
            &[
                "--pids-limit",
                "9",
                "--memory",
                "100m",
                "--cpuset-cpus",
                "0-a",
            ],
            "cpu.cpus",
        ),
        (&["--l3-cache-schema", "L3:0=f"], "l3"),
    ] {
        let out = update(&ctx, &id, flags);
        out.assert_fail(&format!("{flags:?}"));
        if rootcell {
            assert!(out.stderr.contains(names), "{flags:?}: {}", out.stderr);
        }
        assert_eq!(before(), start, "{flags:?} changed something");
    }
    let file = ctx.dir.join("bad.json");
    write_file(
        &file,
        r#"{"pids": {"limit": 9}, "memory": {"limit": "big"}}"#,
    );
    let out = update(&ctx, &id, &["-r", file.to_str().unwrap()]);
    out.assert_fail("-r with a bad type");
    if rootcell {
        assert!(out.stderr.contains("memory.limit"), "{}", out.stderr);
    }
    assert_eq!(before(), start, "a bad -r file changed something");
    let out = update(&ctx, &ctx.id("nosuch"), &["--pids-limit", "9"]);
    out.assert_fail("unknown id");
    if rootcell {
        assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    }
    finish(&ctx, &id);
}

#[test]
fn created_and_paused_containers_update_stopped_ones_do_not() {
    let ctx = Ctx::new("updstate");
    let id = ctx.id("c");
    let mut b = ctx.bundle();
    b.linux()["cgroupsPath"] = json!(format!("/{id}"));
    b.args(&["sleep", "300"]);
    ctx.create(&id, &b, &[]).assert_ok("create");
    update(&ctx, &id, &["--pids-limit", "20"]).assert_ok("update created");
    assert_eq!(host_file("pids", &id, "pids.max"), "20");
    ctx.rt(&["start", &id]).assert_ok("start");
    ctx.rt(&["pause", &id]).assert_ok("pause");
    update(&ctx, &id, &["--pids-limit", "21"]).assert_ok("update paused");
    assert_eq!(host_file("pids", &id, "pids.max"), "21");
    assert_eq!(ctx.status(&id), "paused");
    ctx.rt(&["resume", &id]).assert_ok("resume");
    ctx.rt(&["kill", &id, "KILL"]).assert_ok("kill");
    ctx.wait_status(&id, "stopped");
    let out = update(&ctx, &id, &["--pids-limit", "22"]);
    out.assert_fail("update stopped");
    if !runtime_is_runc() {
        assert!(out.stderr.contains("not running"), "{}", out.stderr);
    }
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}
