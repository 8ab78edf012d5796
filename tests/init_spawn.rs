//! How init comes to be (`plan::spawn::InitSpawn`): on a cgroup2 host, a
//! container that joins no namespace and has no user or time namespace
//! gets an init cloned by the runtime with all its namespaces at once;
//! everything else still goes through stage 1. This machine's cgroups are
//! hybrid (v1 controllers), where stage 1 stays, so these tests run the
//! runtime in a private mount namespace with cgroup2 on `/sys/fs/cgroup`,
//! as a cgroup2-only host looks.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::process::Command;

/// Whether this kernel has cgroup2 (every test here mounts one); says why
/// the test skips when it has not.
fn cgroup2_available() -> bool {
    let ok = std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| {
        f.lines()
            .any(|l| l.split_whitespace().last() == Some("cgroup2"))
    });
    if !ok {
        skip("this kernel has no cgroup2 filesystem to mount");
    }
    ok
}

/// Runs `script` with `sh -c` in a private mount namespace with a fresh
/// cgroup2 on `/sys/fs/cgroup`; `$RT` is the runtime with the context's
/// `--root`.
fn on_cgroup2(ctx: &Ctx, script: &str) -> Out {
    let root = ctx.state_dir();
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t cgroup2 none /sys/fs/cgroup || exit 99\nRT='{} --root {}'\n{script}",
            ctx.bin.display(),
            root.display()
        ));
    exec(&mut c, CMD_TIMEOUT)
}

/// `rootcell plan` of `b` (each line prefixed `plan: `), then `run` of it
/// as `id`, on cgroup2.
fn plan_and_run(ctx: &Ctx, b: &Bundle, id: &str) -> Out {
    let bundle = b.path.display();
    on_cgroup2(
        ctx,
        &format!("$RT plan '{bundle}' | sed 's/^/plan: /'; $RT run --bundle '{bundle}' {id}"),
    )
}

/// The value after `key=` on a line of `out`.
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in:\n{out}"))
}

#[test]
fn init_cloned_directly_is_pid_1_in_new_namespaces_and_its_own_cgroup() {
    if !cgroup2_available() {
        return;
    }
    let ctx = Ctx::new("spawn-direct");
    let mut b = ctx.bundle();
    b.sh("echo pid=$$; echo cgroup=$(grep ^0:: /proc/self/cgroup); \
          for ns in net uts ipc mnt pid cgroup; do echo $ns=$(readlink /proc/self/ns/$ns); done; \
          echo procs=$(cat /sys/fs/cgroup/cgroup.procs | tr '\\n' ' ')");
    b.save();
    let id = ctx.id("c");
    let out = plan_and_run(&ctx, &b, &id);
    out.assert_ok("run on pure cgroup2");
    if !runtime_is_runc() {
        assert!(
            out.stdout.contains("plan: init: cloned by the runtime"),
            "the plan does not clone init directly:\n{}",
            out.stdout
        );
    }
    assert_eq!(field(&out.stdout, "pid"), "1", "{}", out.stdout);
    // The cgroup namespace is rooted at the container's cgroup: init
    // created it once in there, not at the runtime's.
    assert_eq!(field(&out.stdout, "cgroup"), "0::/", "{}", out.stdout);
    for ns in ["net", "uts", "ipc", "mnt", "pid", "cgroup"] {
        assert_ne!(
            field(&out.stdout, ns),
            host_ns(ns),
            "{ns} namespace shared with the host:\n{}",
            out.stdout
        );
    }
    // The container's cgroup holds init (and the shell's children).
    let procs = field(&out.stdout, "procs");
    assert!(procs.split(' ').any(|p| p == "1"), "{}", out.stdout);
    ctx.assert_clean();
}

#[test]
fn no_pivot_on_cgroup2_runs_confined() {
    if !cgroup2_available() {
        return;
    }
    // On a cgroup2-only host the runtime reads no mount table, so for
    // `--no-pivot` init reads it itself, for the host's proc and sysfs
    // mounts it detaches before the MS_MOVE (a failed read fails the run).
    let ctx = Ctx::new("spawn-nopivot");
    let mut b = ctx.bundle();
    write_file(&b.rootfs().join("marker"), "np\n");
    b.sh("cat /marker; ls /..");
    b.save();
    let id = ctx.id("c");
    let out = on_cgroup2(
        &ctx,
        &format!("$RT run --no-pivot --bundle '{}' {id}", b.path.display()),
    );
    out.assert_ok("run --no-pivot on pure cgroup2");
    assert!(out.stdout.starts_with("np\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("marker") && !out.stdout.contains("config.json"),
        "{}",
        out.stdout
    );
    ctx.assert_clean();
}

#[test]
fn direct_init_through_create_start_state_kill_delete() {
    if !cgroup2_available() {
        return;
    }
    let ctx = Ctx::new("spawn-lifecycle");
    let mut b = ctx.bundle();
    b.args(&["sleep", "100"]);
    b.save();
    let id = ctx.id("c");
    let script = format!(
        "$RT create --bundle '{bundle}' {id} </dev/null >/dev/null 2>&1 || exit 10
         echo created=$($RT state {id})
         echo procs=$(cat /sys/fs/cgroup/{id}/cgroup.procs 2>/dev/null || find /sys/fs/cgroup -name '*{id}*' -exec cat {{}}/cgroup.procs \\;)
         $RT start {id} || exit 11
         echo running=$($RT state {id})
         $RT kill {id} KILL || exit 12
         for i in $(seq 100); do $RT state {id} | grep -q '\"stopped\"' && break; sleep 0.05; done
         echo stopped=$($RT state {id})
         $RT delete {id} || exit 13
         echo left=$(find /sys/fs/cgroup -name '*{id}*' | wc -l)",
        bundle = b.path.display()
    );
    let out = on_cgroup2(&ctx, &script);
    out.assert_ok("lifecycle on pure cgroup2");
    let state = |key: &str| -> Value {
        serde_json::from_str(field(&out.stdout, key))
            .unwrap_or_else(|e| panic!("{key}: {e}\n{}", out.stdout))
    };
    let created = state("created");
    assert_eq!(created["status"], "created", "{created}");
    let pid = created["pid"].as_i64().expect("pid in the state");
    assert!(pid > 1, "{created}");
    // The pid the runtime recorded is the process in the cgroup.
    assert_eq!(
        field(&out.stdout, "procs").trim(),
        pid.to_string(),
        "{}",
        out.stdout
    );
    let running = state("running");
    assert_eq!(running["status"], "running", "{running}");
    assert_eq!(running["pid"], created["pid"]);
    assert_eq!(state("stopped")["status"], "stopped");
    assert_eq!(
        field(&out.stdout, "left"),
        "0",
        "cgroup left: {}",
        out.stdout
    );
    ctx.forget(&id);
    ctx.assert_clean();
}

#[test]
fn direct_init_hooks_see_the_pid_of_the_container() {
    if !cgroup2_available() {
        return;
    }
    let ctx = Ctx::new("spawn-hooks");
    let mut b = ctx.bundle();
    let log = ctx.dir.join("hooklog");
    fs::create_dir_all(&log).unwrap();
    b.bind_mount(&log, log.to_str().unwrap(), false);
    let kinds = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
    ];
    for kind in kinds {
        b.add_hook(
            kind,
            json!({
                "path": "/bin/sh",
                "args": ["sh", "-c", format!("cat > {}/{kind}.json", log.display())],
            }),
        );
    }
    b.sh(&format!("echo $$ > {}/container-pid", log.display()));
    b.save();
    let id = ctx.id("c");
    let out = plan_and_run(&ctx, &b, &id);
    out.assert_ok("run with hooks on pure cgroup2");
    if !runtime_is_runc() {
        assert!(
            out.stdout.contains("plan: init: cloned by the runtime"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("plan: hooks: init stops"),
            "{}",
            out.stdout
        );
    }
    let pids: Vec<i64> = kinds
        .iter()
        .map(|kind| {
            let state: Value = serde_json::from_str(&read_file(&log.join(format!("{kind}.json"))))
                .unwrap_or_else(|e| panic!("{kind} hook's state: {e}"));
            state["pid"]
                .as_i64()
                .unwrap_or_else(|| panic!("{kind}: no pid in {state}"))
        })
        .collect();
    assert!(pids[0] > 1, "{pids:?}");
    assert!(
        pids.iter().all(|p| *p == pids[0]),
        "hooks saw different pids: {pids:?}"
    );
    // Inside, the same process is pid 1 of its namespace.
    assert_eq!(read_file(&log.join("container-pid")).trim(), "1");
    ctx.assert_clean();
}

#[test]
fn direct_init_that_fails_leaves_nothing() {
    if !cgroup2_available() {
        return;
    }
    let ctx = Ctx::new("spawn-fail");
    let mut b = ctx.bundle();
    b.args(&["/no/such/program"]);
    b.save();
    let id = ctx.id("c");
    let out = on_cgroup2(
        &ctx,
        &format!(
            "$RT run --bundle '{}' {id}; echo rc=$?; echo left=$(find /sys/fs/cgroup -name '*{id}*' | wc -l)",
            b.path.display()
        ),
    );
    assert_ne!(field(&out.stdout, "rc"), "0", "{}", out.all());
    assert!(out.stderr.contains("/no/such/program"), "{}", out.all());
    assert_eq!(
        field(&out.stdout, "left"),
        "0",
        "cgroup left: {}",
        out.all()
    );
    ctx.assert_clean();
}

#[test]
fn a_namespace_joined_by_path_still_goes_through_stage_1() {
    if !cgroup2_available() {
        return;
    }
    if runtime_is_runc() {
        return skip("`plan` is rootcell's");
    }
    let ctx = Ctx::new("spawn-joined");
    let mut b = ctx.bundle();
    // The test's (the host's) network namespace, by path.
    let net = format!("/proc/{}/ns/net", std::process::id());
    b.set_namespace("network", Some(&net));
    b.sh("echo pid=$$; echo net=$(readlink /proc/self/ns/net)");
    b.save();
    let id = ctx.id("c");
    let out = plan_and_run(&ctx, &b, &id);
    out.assert_ok("run with a joined namespace on pure cgroup2");
    assert!(
        out.stdout.contains("plan: init: forked by stage 1"),
        "{}",
        out.stdout
    );
    assert_eq!(field(&out.stdout, "pid"), "1", "{}", out.stdout);
    assert_eq!(field(&out.stdout, "net"), host_ns("net"), "{}", out.stdout);
    ctx.assert_clean();
}

/// Fifty at once, each init cloned directly and running a process that
/// ends at once: on two CPUs the runtime may be scheduled again only after
/// its init has exited (nothing makes a directly cloned init wait under
/// `run`). Its start time must still be recorded (the zombie's, before
/// the reap): it once failed 1 in 100 with "the start time of init … cannot
/// be read from /proc".
#[test]
fn direct_inits_started_fifty_at_once_all_run() {
    if !cgroup2_available() {
        return;
    }
    let ctx = Ctx::new("spawn-fifty");
    let b = ctx.bundle();
    let ids: Vec<String> = (0..50).map(|i| ctx.id(&format!("p{i}"))).collect();
    let script = format!(
        "for round in 1 2 3; do
           for id in {ids}; do
             ( $RT run --bundle '{bundle}' $id-$round >/dev/null 2>&1 || echo failed=$id-$round ) &
           done
           wait
         done
         echo left=$(find /sys/fs/cgroup -maxdepth 1 -name '{prefix}*' | wc -l)",
        ids = ids.join(" "),
        bundle = b.path.display(),
        prefix = "spawn-fifty-",
    );
    let out = on_cgroup2(&ctx, &script);
    out.assert_ok("150 runs, 50 at a time");
    assert!(!out.stdout.contains("failed="), "{}", out.all());
    assert_eq!(field(&out.stdout, "left"), "0", "{}", out.all());
    ctx.assert_clean();
}
