//! Commands that work on the container's cgroup: pause, resume, events,
//! kill --all, and deletion that leaves nothing on every path (failed
//! create, runtime killed during create, paused containers), plus the
//! refusal of systemd cgroup management on a host without systemd.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A bundle whose init appends a line to /tmp/ticks every 20 ms, so the
/// test sees from the host whether the container runs.
fn ticking_bundle(ctx: &Ctx) -> Bundle {
    let mut b = ctx.bundle();
    b.sh("while true; do echo t >> /tmp/ticks; sleep 0.02; done");
    b
}

fn ticks(b: &Bundle) -> usize {
    fs::read_to_string(b.rootfs().join("tmp/ticks"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Waits until the tick count grows (the container runs).
#[track_caller]
fn assert_ticking(b: &Bundle) {
    let start = ticks(b);
    poll(POLL_TIMEOUT, "the container to tick", || {
        (ticks(b) > start).then_some(())
    });
}

/// The status `list --format json` reports for `id`.
fn list_status(ctx: &Ctx, id: &str) -> String {
    let out = ctx.rt(&["list", "--format", "json"]);
    out.assert_ok("list --format json");
    let v = parse_json(&out.stdout, "list");
    v.as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id))
        .map(|c| c["status"].as_str().unwrap_or("").to_owned())
        .unwrap_or_else(|| panic!("{id} not listed: {}", out.stdout))
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let ctx = Ctx::new("pause");
    let b = ticking_bundle(&ctx);
    let id = ctx.id("c");
    ctx.create_start(&id, &b);
    assert_ticking(&b);
    ctx.rt(&["pause", &id]).assert_ok("pause");
    assert_eq!(ctx.status(&id), "paused");
    assert_eq!(list_status(&ctx, &id), "paused");
    // Frozen: no tick for a while (one in flight may still land).
    let frozen_at = ticks(&b);
    thread::sleep(Duration::from_millis(300));
    assert!(ticks(&b) <= frozen_at + 1, "the container ran while paused");
    ctx.rt(&["resume", &id]).assert_ok("resume");
    assert_eq!(ctx.status(&id), "running");
    assert_ticking(&b);
    ctx.rt(&["delete", "--force", &id])
        .assert_ok("delete --force");
    ctx.assert_clean();
}

#[test]
fn pause_and_resume_refuse_wrong_states_like_runc() {
    let ctx = Ctx::new("pausestates");
    let b = ticking_bundle(&ctx);
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("create");
    // runc pauses a created container too; resume gives it back created.
    ctx.rt(&["resume", &id])
        .assert_fail("resume of a created container");
    ctx.rt(&["pause", &id])
        .assert_ok("pause of a created container");
    assert_eq!(ctx.status(&id), "paused");
    let again = ctx.rt(&["pause", &id]);
    again.assert_fail("pause of a paused container");
    assert!(again.stderr.contains("not running"), "{}", again.stderr);
    ctx.rt(&["resume", &id]).assert_ok("resume");
    assert_eq!(ctx.status(&id), "created");
    ctx.rt(&["start", &id]).assert_ok("start");
    assert_ticking(&b);
    let out = ctx.rt(&["resume", &id]);
    out.assert_fail("resume of a running container");
    assert!(out.stderr.contains("not paused"), "{}", out.stderr);
    ctx.rt(&["kill", &id, "KILL"]).assert_ok("kill");
    ctx.wait_status(&id, "stopped");
    for cmd in ["pause", "resume"] {
        ctx.rt(&[cmd, &id])
            .assert_fail(&format!("{cmd} of a stopped container"));
    }
    ctx.rt(&["pause", "no-such-container"])
        .assert_fail("pause of a missing container");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn kill_of_a_paused_container() {
    // runc 1.1: SIGKILL to init thaws the cgroup so the kill takes effect;
    // kill --all freezes, signals every process and thaws, so the
    // container runs again afterwards.
    let ctx = Ctx::new("killpaused");
    let mut b = ctx.bundle();
    b.sh(
        "trap 'echo usr1 >> /tmp/got' USR1; while true; do echo t >> /tmp/ticks; sleep 0.02; done",
    );
    let id = ctx.id("c");
    let pid = ctx.create_start(&id, &b);
    assert_ticking(&b);
    ctx.rt(&["pause", &id]).assert_ok("pause");
    ctx.rt(&["kill", "--all", &id, "USR1"])
        .assert_ok("kill --all USR1 of a paused container");
    assert_eq!(ctx.status(&id), "running", "kill --all thaws, as runc does");
    poll(POLL_TIMEOUT, "the trap to run", || {
        b.rootfs().join("tmp/got").exists().then_some(())
    });
    ctx.rt(&["pause", &id]).assert_ok("pause again");
    ctx.rt(&["kill", &id, "KILL"])
        .assert_ok("kill KILL of a paused container");
    wait_pid_dead(pid);
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn delete_force_of_a_paused_container_leaves_nothing() {
    let ctx = Ctx::new("delpaused");
    let mut b = ticking_bundle(&ctx);
    // Without a pid namespace, a second process must be killed on its own.
    b.remove_namespace("pid");
    b.sh("sleep 100 & while true; do echo t >> /tmp/ticks; sleep 0.02; done");
    let id = ctx.id("c");
    ctx.create_start(&id, &b);
    assert_ticking(&b);
    ctx.rt(&["pause", &id]).assert_ok("pause");
    let out = ctx.rt(&["delete", &id]);
    out.assert_fail("delete of a paused container without --force");
    ctx.rt(&["delete", "--force", &id])
        .assert_ok("delete --force of a paused container");
    ctx.assert_clean();
}

#[test]
fn kill_all_without_pid_namespace_leaves_nothing() {
    let ctx = Ctx::new("killall");
    let mut b = ctx.bundle();
    b.remove_namespace("pid");
    b.sh("for i in 1 2 3; do sleep 100 & done; touch /tmp/ready; wait");
    let id = ctx.id("c");
    ctx.create_start(&id, &b);
    wait_for_file(&b.rootfs().join("tmp/ready"));
    assert!(ctx.leftover_pids().len() >= 4, "{:?}", ctx.leftover_pids());
    ctx.rt(&["kill", "--all", &id, "KILL"])
        .assert_ok("kill --all KILL");
    ctx.wait_status(&id, "stopped");
    poll(POLL_TIMEOUT, "every process to die", || {
        ctx.leftover_pids().is_empty().then_some(())
    });
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// The container's memory cgroup on the v1 layout, for a cgroupsPath
/// taken from the root of each hierarchy.
fn memory_cgroup(cgroups_path: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup/memory").join(cgroups_path.trim_start_matches('/'))
}

#[test]
fn events_stats_prints_one_stats_object() {
    let ctx = Ctx::new("evstats");
    let mut b = ctx.bundle();
    b.sh("sleep 100 & touch /tmp/ready; exec sleep 100");
    let id = ctx.id("c");
    ctx.create_start(&id, &b);
    wait_for_file(&b.rootfs().join("tmp/ready"));
    // `touch` may still be counted for a moment (until it is reaped).
    let ev = poll(POLL_TIMEOUT, "pids.current to be 2", || {
        let out = ctx.rt(&["events", "--stats", &id]);
        out.assert_ok("events --stats");
        let lines = lines(&out.stdout);
        assert_eq!(lines.len(), 1, "one JSON object: {}", out.stdout);
        let ev = parse_json(&lines[0], "events --stats");
        (ev["data"]["pids"]["current"] == 2).then_some(ev)
    });
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], json!(id));
    let data = &ev["data"];
    for key in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(data.get(key).is_some(), "no {key}: {data}");
    }
    assert!(
        data["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0,
        "{data}"
    );
    assert!(data["cpu"]["usage"].get("kernel").is_some(), "{data}");
    assert!(data["cpu"].get("throttling").is_some(), "{data}");
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{data}"
    );
    assert!(data["memory"]["raw"].is_object(), "{data}");
    assert_eq!(data["pids"]["current"], 2, "{data}");
    ctx.rt(&["kill", &id, "KILL"]).assert_ok("kill");
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["events", "--stats", &id])
        .assert_fail("events --stats of a stopped container");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// Starts `events` for `id` with stdout piped; its lines arrive on the
/// returned channel, as parsed JSON.
fn spawn_events(
    ctx: &Ctx,
    id: &str,
    interval: &str,
) -> (std::process::Child, std::sync::mpsc::Receiver<Value>) {
    let mut c = ctx.cmd();
    c.args(["events", "--interval", interval, id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("spawn events");
    let stdout = child.stdout.take().expect("events stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(parse_json(&line, "an event"));
        }
    });
    (child, rx)
}

#[test]
fn events_streams_stats_and_ends_with_the_container() {
    let ctx = Ctx::new("evstream");
    let mut b = ctx.bundle();
    b.sh("read x; exit 0");
    let id = ctx.id("c");
    let fifo = ctx.dir.join("stdin");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // The fifo is opened read-write so neither side blocks; closing our
    // end later ends `read`.
    let writer = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    ctx.create_stdin(&id, &b, &[], Some(&fifo))
        .assert_ok("create");
    ctx.rt(&["start", &id]).assert_ok("start");
    let (mut child, rx) = spawn_events(&ctx, &id, "100ms");
    let mut stats = 0;
    let deadline = Instant::now() + POLL_TIMEOUT;
    while stats < 3 && Instant::now() < deadline {
        if let Ok(ev) = rx.recv_timeout(Duration::from_millis(100)) {
            assert_eq!(ev["type"], "stats", "{ev}");
            assert_eq!(ev["id"], json!(id));
            stats += 1;
        }
    }
    assert_eq!(stats, 3, "three stats events in time");
    // The container stops: events ends by itself (runc 1.1 goes on
    // reporting errors until killed).
    use std::io::Write;
    (&writer).write_all(b"\n").unwrap();
    drop(writer);
    if runtime_is_runc() {
        ctx.wait_status(&id, "stopped");
        let _ = child.kill();
        let _ = child.wait();
    } else {
        let status = wait_child(
            &mut child,
            POLL_TIMEOUT,
            "events after the container stopped",
        );
        assert!(status.success(), "events ended with {status:?}");
    }
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn events_reports_an_oom_kill() {
    if !Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists() {
        return skip("no v1 memory controller");
    }
    let ctx = Ctx::new("evoom");
    let mut b = ctx.bundle();
    let id = ctx.id("c");
    let path = format!("/{id}");
    b.linux()["cgroupsPath"] = json!(path);
    // A child allocates more than the limit and is OOM-killed; init stays.
    b.sh("touch /tmp/go-wait; while [ ! -e /tmp/go ]; do sleep 0.02; done; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 100");
    ctx.create_start(&id, &b);
    wait_for_file(&b.rootfs().join("tmp/go-wait"));
    // Limits are not this test's subject: set one on the cgroup directly.
    fs::write(memory_cgroup(&path).join("memory.limit_in_bytes"), "16M").unwrap();
    let (mut child, rx) = spawn_events(&ctx, &id, "1h");
    // Give events time to arm its watch before the OOM.
    thread::sleep(Duration::from_millis(300));
    fs::write(b.rootfs().join("tmp/go"), "").unwrap();
    let ev = rx.recv_timeout(POLL_TIMEOUT).expect("an OOM event in time");
    assert_eq!(ev, json!({"type": "oom", "id": id}));
    ctx.rt(&["delete", "--force", &id])
        .assert_ok("delete --force");
    wait_child(&mut child, POLL_TIMEOUT, "events after delete");
    ctx.assert_clean();
}

#[test]
fn failed_create_leaves_nothing() {
    let ctx = Ctx::new("failcreate");
    let mut b = ctx.bundle();
    b.add_hook("createRuntime", json!({"path": "/bin/false"}));
    let id = ctx.id("c");
    ctx.create(&id, &b, &[])
        .assert_fail("create with a failing hook");
    ctx.assert_clean();
}

#[test]
fn runtime_killed_during_create_can_be_deleted() {
    // The runtime is SIGKILLed while a createRuntime hook runs: the
    // container is left half-made (init started, cgroups made). `state`
    // and `list` still know it, and `delete` removes everything.
    let ctx = Ctx::new("killcreate");
    let mut b = ctx.bundle();
    let hook_pid = ctx.dir.join("hook.pid");
    b.add_hook(
        "createRuntime",
        json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo $$ > {}; exec sleep 100", hook_pid.display())]}),
    );
    let id = ctx.id("c");
    let mut c = ctx.create_cmd(&id, &b, &[]);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut runtime = c.spawn().expect("spawn create");
    let hook: i32 = poll(POLL_TIMEOUT, "the hook to start", || {
        fs::read_to_string(&hook_pid).ok()?.trim().parse().ok()
    });
    kill_pid(runtime.id() as i32, libc::SIGKILL);
    let _ = runtime.wait();
    kill_pid(hook, libc::SIGKILL);
    if runtime_is_runc() {
        // runc 1.1 writes state.json only once create is done: the killed
        // create is unknown to list and delete, and its init and cgroups
        // stay. Clean up behind it (our own processes and cgroups).
        // Its init may not be in the rootfs yet: kill what is in the
        // container's cgroups (processes this test started through runc).
        poll(POLL_TIMEOUT, "runc's leftovers to go", || {
            for dir in cgroups_named(&id) {
                let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
                    kill_pid(pid, libc::SIGKILL);
                }
            }
            for pid in ctx.leftover_pids() {
                kill_pid(pid, libc::SIGKILL);
            }
            remove_cgroups_named(&id).is_empty().then_some(())
        });
        return skip("runc cannot delete a container whose create was killed");
    }
    assert_eq!(ctx.list_ids(), vec![id.clone()], "list knows the container");
    let status = ctx.status(&id);
    assert!(
        ["creating", "created", "stopped"].contains(&status.as_str()),
        "status {status}"
    );
    assert!(!cgroups_named(&id).is_empty(), "the create made cgroups");
    ctx.rt(&["delete", "--force", &id])
        .assert_ok("delete --force");
    ctx.assert_clean();
}

#[test]
fn systemd_cgroup_flag_is_refused_without_systemd() {
    if Path::new("/run/systemd/system").exists() {
        return skip("systemd runs on this host");
    }
    let ctx = Ctx::new("systemd");
    let mut b = ctx.bundle();
    let id = ctx.id("c");
    b.linux()["cgroupsPath"] = json!(format!("system.slice:rootcell:{id}"));
    let mut c = ctx.cmd();
    c.arg("--systemd-cgroup");
    b.save();
    c.args(["run", "--bundle"]).arg(&b.path).arg(&id);
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_fail("run --systemd-cgroup");
    assert!(out.stderr.contains("systemd"), "{}", out.stderr);
    if !runtime_is_runc() {
        assert!(out.stderr.contains("--systemd-cgroup"), "{}", out.stderr);
    }
    ctx.assert_clean();
}

#[test]
fn systemd_cgroups_path_is_refused_without_the_flag() {
    if runtime_is_runc() {
        // runc 1.1 makes a directory literally named `slice:prefix:name`.
        return skip("runc takes the systemd form as a plain path");
    }
    let ctx = Ctx::new("slicepath");
    let mut b = ctx.bundle();
    let id = ctx.id("c");
    b.linux()["cgroupsPath"] = json!(format!("system.slice:rootcell:{id}"));
    let out = ctx.run(&id, &b);
    out.assert_fail("run with a slice:prefix:name cgroupsPath");
    assert!(out.stderr.contains("linux.cgroupsPath"), "{}", out.stderr);
    ctx.assert_clean();
}

#[test]
fn pause_resume_and_stats_on_pure_cgroup2() {
    // cgroup2 mounted over the host's hybrid layout in a private mount
    // namespace: the v2 freezer (cgroup.freeze) and the v2 stat files.
    let ctx = Ctx::new("purev2");
    let b = ticking_bundle(&ctx);
    let id = ctx.id("c");
    b.save();
    let root = ctx.state_dir();
    let rt = format!("{} --root {}", runtime_path().display(), root.display());
    let script = format!(
        "set -e
mount -t cgroup2 none /sys/fs/cgroup
{rt} run -d --bundle {bundle} {id} </dev/null >/dev/null 2>&1
{rt} pause {id}
{rt} state {id} | grep -q '\"paused\"'
grep -q '^frozen 1' /sys/fs/cgroup/{id}/cgroup.events
{rt} resume {id}
{rt} state {id} | grep -q '\"running\"'
{rt} events --stats {id} > {dir}/stats.json
{rt} pause {id}
{rt} delete --force {id}
test ! -e /sys/fs/cgroup/{id}
echo ok",
        bundle = b.path.display(),
        dir = ctx.dir.display(),
    );
    let out = sh_in_private_mount_ns(&script);
    out.assert_ok("pause/resume/events on cgroup2");
    assert!(out.stdout.contains("ok"), "{}", out.all());
    let stats = parse_json(&read_file(&ctx.dir.join("stats.json")), "stats");
    assert_eq!(stats["type"], "stats");
    assert!(
        stats["data"]["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0,
        "{stats}"
    );
    ctx.assert_clean();
}

#[test]
fn resume_is_not_blocked_by_an_exec_waiting_in_the_frozen_cgroup() {
    // `exec --ignore-paused` holds the container's lock (shared) until its
    // process has joined the cgroup, which a frozen cgroup delays until
    // it is thawed: `resume` must get through meanwhile.
    let ctx = Ctx::new("resumeexec");
    let b = ticking_bundle(&ctx);
    let id = ctx.id("c");
    ctx.create_start(&id, &b);
    ctx.rt(&["pause", &id]).assert_ok("pause");
    let mut c = ctx.cmd();
    c.args(["exec", "--ignore-paused", &id, "echo", "thawed"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().expect("spawn exec");
    thread::sleep(Duration::from_millis(300));
    ctx.rt(&["resume", &id]).assert_ok("resume during exec");
    let out = child.wait_with_output().expect("exec --ignore-paused");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "thawed\n");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn kill_all_reaches_processes_left_after_init_exited() {
    // Without a pid namespace, init's children outlive it: the container
    // is stopped, and `kill --all` still signals what is in its cgroup
    // (and succeeds), as runc 1.1 does.
    let ctx = Ctx::new("killorphan");
    let (id, child) = stopped_with_orphan(&ctx);
    ctx.rt(&["kill", &id, "KILL"])
        .assert_fail("kill of a stopped container");
    ctx.rt(&["kill", "--all", &id, "KILL"])
        .assert_ok("kill --all of a stopped container");
    wait_pid_dead(child);
    ctx.rt(&["kill", "--all", &id, "KILL"])
        .assert_ok("kill --all of an empty stopped container");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// Without a pid namespace, init's children outlive it. `delete` of the
/// stopped container does not look for them first: the rmdir of its
/// cgroups fails (EBUSY) while one is left, and only then are they killed
/// and the cgroups removed, as runc's delete does.
#[test]
fn delete_kills_processes_left_after_init_exited() {
    let ctx = Ctx::new("delorphan");
    let (id, child) = stopped_with_orphan(&ctx);
    ctx.rt(&["delete", &id])
        .assert_ok("delete of a stopped container with a process left");
    wait_pid_dead(child);
    ctx.assert_clean();
}

/// The same for `run`, which deletes the container once init has exited.
#[test]
fn run_kills_processes_left_after_init_exited() {
    let ctx = Ctx::new("runorphan");
    let b = orphan_leaving_bundle(&ctx);
    let id = ctx.id("c");
    ctx.run(&id, &b).assert_ok("run");
    wait_pid_dead(orphan_pid(&b));
    ctx.assert_clean();
}

/// A created and started container of `orphan_leaving_bundle`, stopped,
/// whose child still runs: its id and the child's pid.
fn stopped_with_orphan(ctx: &Ctx) -> (String, i32) {
    let b = orphan_leaving_bundle(ctx);
    let id = ctx.id("c");
    ctx.create_start(&id, &b);
    ctx.wait_status(&id, "stopped");
    let child = orphan_pid(&b);
    assert!(pid_alive(child), "the child outlives init");
    (id, child)
}

/// A bundle without a pid namespace whose init starts a `sleep 100` in the
/// background (stdio on /dev/null: it holds no pipe of the caller), writes
/// its pid to `/tmp/child` and exits: the child outlives init.
fn orphan_leaving_bundle(ctx: &Ctx) -> Bundle {
    let mut b = ctx.bundle();
    b.remove_namespace("pid");
    b.sh("sleep 100 >/dev/null 2>&1 & echo $! > /tmp/child");
    b
}

/// The pid a container's init wrote to `/tmp/child` before it exited.
fn orphan_pid(b: &Bundle) -> i32 {
    poll(POLL_TIMEOUT, "the child's pid", || {
        read_file_opt(&b.rootfs().join("tmp/child"))?
            .trim()
            .parse()
            .ok()
    })
}

fn read_file_opt(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok()
}

#[test]
fn delete_removes_a_state_directory_left_before_the_first_save() {
    if runtime_is_runc() {
        return skip("runc's state layout differs");
    }
    // What a create killed right after making the directory leaves: an
    // empty state directory, which would block the id forever.
    let ctx = Ctx::new("halfstate");
    let b = ctx.bundle();
    let id = ctx.id("c");
    fs::create_dir_all(ctx.state_dir().join(&id)).unwrap();
    ctx.create(&id, &b, &[])
        .assert_fail("create over a leftover directory");
    ctx.rt(&["delete", &id]).assert_ok("delete of the leftover");
    ctx.create(&id, &b, &[])
        .assert_ok("create after the delete");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn cgroup_hierarchy_mounted_at_a_path_with_a_space() {
    if runtime_is_runc() {
        return skip("runc 1.1 looks for cgroup2 only at /sys/fs/cgroup");
    }
    // mountinfo writes the space of "uni fied" as \040: the container's
    // cgroup must be made below the real mount point, not in a directory
    // named "uni\040fied" on the tmpfs.
    let ctx = Ctx::new("cgspace");
    let mut b = ctx.bundle();
    b.args(&["sleep", "1000"]);
    let id = ctx.id("c");
    b.save();
    let root = ctx.state_dir();
    let rt = format!("{} --root {}", runtime_path().display(), root.display());
    let script = format!(
        "set -e
mount -t tmpfs none /sys/fs/cgroup
mkdir '/sys/fs/cgroup/uni fied'
mount -t cgroup2 none '/sys/fs/cgroup/uni fied'
{rt} run -d --pid-file {dir}/pid --bundle {bundle} {id} </dev/null >/dev/null
grep -x '0::/{id}' /proc/$(cat {dir}/pid)/cgroup
test -d '/sys/fs/cgroup/uni fied/{id}'
{rt} pause {id}
{rt} state {id} | grep -q '\"paused\"'
{rt} resume {id}
{rt} delete --force {id}
test ! -e '/sys/fs/cgroup/uni fied/{id}'
test -z \"$(ls /sys/fs/cgroup | grep -v '^uni fied$')\"
echo ok",
        bundle = b.path.display(),
        dir = ctx.dir.display(),
    );
    let out = sh_in_private_mount_ns(&script);
    out.assert_ok("a container with its cgroup2 hierarchy at a path with a space");
    assert!(out.stdout.contains("ok"), "{}", out.all());
    ctx.assert_clean();
}

#[test]
fn state_is_paused_only_when_the_container_itself_is_frozen() {
    // v1: with its parent cgroup frozen, the container's freezer.state
    // reads FROZEN but freezer.self_freezing 0. runc's GetState calls that
    // thawed: `state` says running, `resume` has nothing to resume, and
    // `pause` still freezes the container itself.
    let freezer = Path::new("/sys/fs/cgroup/freezer");
    if !freezer.join("cgroup.procs").exists() {
        return skip("no cgroup v1 freezer hierarchy");
    }
    let ctx = Ctx::new("selffreeze");
    let mut b = ticking_bundle(&ctx);
    let id = ctx.id("c");
    let parent = format!("{id}-parent");
    b.linux()["cgroupsPath"] = json!(format!("/{parent}/{id}"));
    ctx.create_start(&id, &b);
    assert_ticking(&b);
    let parent_state = freezer.join(&parent).join("freezer.state");
    let own = freezer.join(&parent).join(&id);
    // Whatever happens, the parent is thawed (a process frozen by it
    // cannot die), the container deleted and the parent removed before
    // `ctx` checks for leftovers.
    struct Cleanup<'a>(&'a Ctx, &'a str, &'a str, PathBuf);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = fs::write(&self.3, "THAWED");
            self.0.rt(&["delete", "--force", self.1]);
            remove_cgroups_named(self.2);
        }
    }
    let _cleanup = Cleanup(&ctx, &id, &parent, parent_state.clone());
    write_file(&parent_state, "FROZEN");
    poll(POLL_TIMEOUT, "the parent cgroup to freeze", || {
        (read_file(&parent_state).trim() == "FROZEN").then_some(())
    });
    assert_eq!(read_file(&own.join("freezer.state")).trim(), "FROZEN");
    assert_eq!(read_file(&own.join("freezer.self_freezing")).trim(), "0");
    assert_eq!(ctx.status(&id), "running", "frozen only by its parent");
    assert_eq!(list_status(&ctx, &id), "running");
    let out = ctx.rt(&["resume", &id]);
    out.assert_fail("resume of a container its parent froze");
    if !runtime_is_runc() {
        assert!(out.stderr.contains("not paused"), "{}", out.stderr);
    }
    ctx.rt(&["pause", &id])
        .assert_ok("pause under a frozen parent");
    assert_eq!(ctx.status(&id), "paused");
    write_file(&parent_state, "THAWED");
    assert_eq!(ctx.status(&id), "paused", "its own freeze stays");
    ctx.rt(&["resume", &id]).assert_ok("resume");
    assert_eq!(ctx.status(&id), "running");
    assert_ticking(&b);
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    let left = remove_cgroups_named(&parent);
    assert!(left.is_empty(), "left behind: {left:?}");
    ctx.assert_clean();
}

/// Init (born in the v2 directory, joining each v1 hierarchy by `tasks`)
/// and an exec'd process (joining by `tasks` and `cgroup.procs`) end up in
/// the container's cgroup of every hierarchy: each line of their
/// `/proc/PID/cgroup` is the same and none is the runtime caller's.
#[test]
fn init_and_exec_join_every_hierarchy() {
    let ctx = Ctx::new("cgjoin");
    let mut b = ctx.bundle();
    b.args(&["sleep", "30"]);
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("create");
    ctx.rt(&["start", &id]).assert_ok("start");
    let init = ctx.pid(&id);
    let pid_file = ctx.dir.join("exec.pid");
    ctx.rt(&[
        "exec",
        "--detach",
        "--pid-file",
        &pid_file.to_string_lossy(),
        &id,
        "sh",
        "-c",
        // Off our pipes, so `exec --detach` returns at once.
        "exec sleep 30 </dev/null >/dev/null 2>&1",
    ])
    .assert_ok("exec");
    let exec_pid: i32 = read_file(&pid_file).trim().parse().unwrap();
    let lines = |pid: i32| -> Vec<String> {
        let mut l: Vec<String> = read_file(Path::new(&format!("/proc/{pid}/cgroup")))
            .lines()
            .map(str::to_owned)
            .collect();
        l.sort();
        l
    };
    let ours = lines(std::process::id() as i32);
    let theirs = lines(init);
    assert!(!theirs.is_empty());
    assert_eq!(
        theirs,
        lines(exec_pid),
        "init and the exec'd process differ"
    );
    for line in &theirs {
        assert!(
            !ours.contains(line),
            "init stayed in the caller's cgroup: {line}\ninit: {theirs:?}"
        );
    }
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// Under a real-time policy the kernel refuses to move the container's
/// process into a cpu cgroup that has no real-time budget (the cgroup the
/// runtime makes starts with `cpu.rt_runtime_us` 0). The error names the
/// cgroup and the reason, not a bare "Invalid argument", and the failed
/// start leaves nothing behind.
#[test]
fn real_time_runtime_gets_a_named_cgroup_error() {
    let cpu = Path::new("/sys/fs/cgroup/cpu");
    if !cpu.join("cpu.rt_runtime_us").exists() {
        skip("the cpu hierarchy has no cpu.rt_runtime_us (kernel without CONFIG_RT_GROUP_SCHED)");
        return;
    }
    let ctx = Ctx::new("rtjoin");
    let b = ctx.bundle();
    let id = ctx.id("c");
    let run = ctx.run_cmd(&id, &b, &[]);
    let mut c = Command::new("chrt");
    c.args(["-f", "10"])
        .arg(run.get_program())
        .args(run.get_args());
    for (k, v) in run.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_fail("run under SCHED_FIFO");
    let want = format!("/sys/fs/cgroup/cpu/{id}/tasks");
    assert!(
        out.stderr.contains(&want) && out.stderr.contains("SCHED_FIFO"),
        "the error names the cpu cgroup and the real-time policy: {}",
        out.stderr
    );
    ctx.assert_clean();
}
