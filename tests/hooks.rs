//! OCI hooks: each kind runs, with its args and env, gets the state JSON on
//! stdin, in the right order and at the right lifecycle step; failures and
//! timeouts fail the operation.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ALL_HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Hook log dir, bind-mounted into the container at the *same* path so that
/// hooks running in either the runtime's or the container's mount namespace
/// (startContainer runs after pivot_root) can write to it.
struct HookLog {
    dir: PathBuf,
}

impl HookLog {
    fn new(ctx: &Ctx, b: &mut Bundle) -> HookLog {
        let dir = ctx.dir.join("hooklog");
        fs::create_dir_all(&dir).unwrap();
        b.bind_mount(&dir, dir.to_str().unwrap(), false);
        HookLog { dir }
    }

    /// A hook appending "<kind> <$0> <$1> <$HOOK_ENV> <$LEAK>" to the log and
    /// saving its stdin to <kind>.json. /bin/sh exists both on the host and
    /// (busybox) in the container.
    fn hook(&self, kind: &str) -> Value {
        let d = self.dir.display();
        json!({
            "path": "/bin/sh",
            "args": [
                "sh", "-c",
                format!("cat > {d}/{kind}.json; \
                         echo \"$0 $1 $HOOK_ENV ${{ROOTCELL_LEAK_CHECK:-unset}}\" >> {d}/log"),
                kind, "arg1"
            ],
            "env": [format!("HOOK_ENV=env-{kind}"), "PATH=/bin:/usr/bin"]
        })
    }

    fn add_all(&self, b: &mut Bundle) {
        for kind in ALL_HOOKS {
            b.add_hook(kind, self.hook(kind));
        }
    }

    /// Hook kinds logged so far, in order.
    fn order(&self) -> Vec<String> {
        let p = self.dir.join("log");
        if !p.exists() {
            return Vec::new();
        }
        lines(&read_file(&p))
            .iter()
            .map(|l| l.split(' ').next().unwrap().to_owned())
            .collect()
    }

    fn line(&self, kind: &str) -> String {
        lines(&read_file(&self.dir.join("log")))
            .into_iter()
            .find(|l| l.split(' ').next() == Some(kind))
            .unwrap_or_else(|| panic!("{kind} hook did not run"))
    }

    fn stdin_state(&self, kind: &str) -> Value {
        parse_json(
            &read_file(&self.dir.join(format!("{kind}.json"))),
            &format!("state on stdin of {kind} hook"),
        )
    }
}

fn pos(order: &[String], kind: &str) -> usize {
    order
        .iter()
        .position(|k| k == kind)
        .unwrap_or_else(|| panic!("{kind} missing from {order:?}"))
}

#[test]
fn all_hooks_run_in_order_with_state_args_and_env() {
    let ctx = Ctx::new("hooks");
    let mut b = ctx.bundle();
    let log = HookLog::new(&ctx, &mut b);
    log.add_all(&mut b);
    b.sh("touch /tmp/started; while [ ! -e /tmp/go ]; do sleep 0.02; done");
    let id = ctx.id("c");

    // create: prestart, createRuntime, createContainer — nothing else.
    let mut c = ctx.create_cmd(&id, &b, &[]);
    c.env("ROOTCELL_LEAK_CHECK", "leaked");
    ctx.exec_detached(&mut c, &id, None).assert_ok("create");
    let mut order = log.order();
    if runtime_is_runc() {
        // runc before 1.3 runs poststart hooks during `create`, before the
        // user process is started (opencontainers/runc#1710, #4347). The
        // spec (and rootcell) run them during `start`, after it.
        assert_eq!(order.last().map(String::as_str), Some("poststart"));
        order.pop();
    }
    assert_eq!(
        order.iter().filter(|k| k.starts_with("create")).count(),
        2,
        "{order:?}"
    );
    assert!(pos(&order, "prestart") < pos(&order, "createContainer"));
    assert!(pos(&order, "createRuntime") < pos(&order, "createContainer"));
    assert_eq!(order.len(), 3, "only create-time hooks may run: {order:?}");
    assert!(!b.rootfs().join("tmp/started").exists());
    let pid = ctx.pid(&id);

    // start: startContainer before the process, poststart before returning.
    ctx.rt(&["start", &id]).assert_ok("start");
    let order = log.order();
    if runtime_is_runc() {
        assert_eq!(order[4..], ["startContainer"], "after start: {order:?}");
    } else {
        assert_eq!(
            &order[3..],
            ["startContainer", "poststart"],
            "after start: {order:?}"
        );
    }

    // poststop only at delete.
    fs::write(b.rootfs().join("tmp/go"), "").unwrap();
    ctx.wait_status(&id, "stopped");
    assert_eq!(log.order().len(), 5, "{:?}", log.order());
    ctx.rt(&["delete", &id]).assert_ok("delete");
    let order = log.order();
    assert_eq!(order.len(), 6, "{order:?}");
    assert_eq!(order[5], "poststop");

    // args ($0, $1), the hook's env, and nothing from the runtime's env.
    for kind in ALL_HOOKS {
        assert_eq!(
            log.line(kind),
            format!("{kind} arg1 env-{kind} unset"),
            "hook {kind}"
        );
    }

    // The state on stdin: id everywhere, the container pid while it lives.
    let bundle = fs::canonicalize(&b.path).unwrap();
    for kind in ALL_HOOKS {
        let st = log.stdin_state(kind);
        assert_eq!(st["id"], id.as_str(), "{kind}: {st}");
        assert_eq!(st["bundle"], bundle.to_str().unwrap(), "{kind}: {st}");
        assert!(st["ociVersion"].is_string(), "{kind}: {st}");
        match kind {
            "poststop" => {}
            // These run inside the container's namespaces, where runc
            // reports the pid as seen in the container's pid namespace.
            "createContainer" | "startContainer" => {
                assert!(st["pid"] == pid || st["pid"] == 1, "{kind}: {st}")
            }
            _ => assert_eq!(st["pid"], pid, "{kind}: {st}"),
        }
    }
    if !runtime_is_runc() {
        assert_eq!(log.stdin_state("poststart")["status"], "running");
    }
    ctx.assert_clean();
}

#[test]
fn run_runs_all_hooks_including_poststop() {
    let ctx = Ctx::new("runhooks");
    let mut b = ctx.bundle();
    let log = HookLog::new(&ctx, &mut b);
    log.add_all(&mut b);
    b.sh("echo ran");
    let id = ctx.id("c");
    let out = ctx.run(&id, &b);
    out.assert_ok("run");
    assert_eq!(out.stdout, "ran\n");
    let order = log.order();
    assert_eq!(order.len(), 6, "{order:?}");
    assert!(pos(&order, "createRuntime") < pos(&order, "createContainer"));
    assert!(pos(&order, "createContainer") < pos(&order, "startContainer"));
    if !runtime_is_runc() {
        // runc < 1.3 runs poststart before startContainer (during create).
        assert!(pos(&order, "startContainer") < pos(&order, "poststart"));
    }
    assert_eq!(order[5], "poststop");
    ctx.assert_clean();
}

#[test]
fn multiple_hooks_of_one_kind_run_in_array_order() {
    let ctx = Ctx::new("hookorder");
    let mut b = ctx.bundle();
    let log = HookLog::new(&ctx, &mut b);
    let d = log.dir.display().to_string();
    for n in 1..=3 {
        b.add_hook(
            "createRuntime",
            json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo cr{n} >> {d}/log")]}),
        );
    }
    let id = ctx.id("c");
    ctx.run(&id, &b).assert_ok("run");
    assert_eq!(log.order(), ["cr1", "cr2", "cr3"]);
    ctx.assert_clean();
}

/// Assert a failed create left nothing behind.
#[track_caller]
fn assert_nothing_left(ctx: &Ctx, id: &str) {
    assert!(ctx.try_state(id).is_none(), "state still answers for {id}");
    ctx.assert_clean();
}

#[test]
fn failing_create_runtime_hook_fails_create() {
    let ctx = Ctx::new("hookfail");
    let mut b = ctx.bundle();
    let log = HookLog::new(&ctx, &mut b);
    b.add_hook(
        "createRuntime",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "echo hook-says-no >&2; exit 7"]}),
    );
    // Hooks after the failing one must not run.
    b.add_hook("createContainer", log.hook("createContainer"));
    b.add_hook("startContainer", log.hook("startContainer"));
    b.sh("touch /tmp/ran");
    let id = ctx.id("c");
    let out = ctx.create(&id, &b, &[]);
    out.assert_fail("create with a failing createRuntime hook");
    assert!(!log.order().contains(&"createContainer".to_string()));
    assert!(!b.rootfs().join("tmp/ran").exists());
    if !runtime_is_runc() {
        assert!(out.all().contains("createRuntime"), "{}", out.all());
    }
    assert_nothing_left(&ctx, &id);

    // Same through run.
    let id = ctx.id("run");
    ctx.run(&id, &b).assert_fail("run with a failing hook");
    assert!(!b.rootfs().join("tmp/ran").exists());
    assert_nothing_left(&ctx, &id);
}

#[test]
fn failing_prestart_and_create_container_hooks_fail_create() {
    let ctx = Ctx::new("hookfail2");
    for kind in ["prestart", "createContainer"] {
        let mut b = ctx.bundle();
        b.add_hook(kind, json!({"path": "/bin/false"}));
        let id = ctx.id(&kind.to_lowercase());
        ctx.create(&id, &b, &[])
            .assert_fail(&format!("create with failing {kind}"));
        assert_nothing_left(&ctx, &id);
    }
}

#[test]
fn missing_hook_binary_fails_create() {
    let ctx = Ctx::new("hooknobin");
    let mut b = ctx.bundle();
    b.add_hook("createRuntime", json!({"path": "/no/such/hook"}));
    let id = ctx.id("c");
    let out = ctx.create(&id, &b, &[]);
    out.assert_fail("create with a missing hook binary");
    if !runtime_is_runc() {
        assert!(out.all().contains("/no/such/hook"), "{}", out.all());
    }
    assert_nothing_left(&ctx, &id);
}

#[test]
fn hook_timeout_kills_hook_and_fails_create() {
    let ctx = Ctx::new("hooktimeout");
    let mut b = ctx.bundle();
    let pidfile = ctx.dir.join("hook.pid");
    b.add_hook(
        "createRuntime",
        json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo $$ > {}; exec sleep 20", pidfile.display())],
            "timeout": 1
        }),
    );
    let id = ctx.id("c");
    let out = ctx.create(&id, &b, &[]);
    out.assert_fail("create with a hook exceeding its timeout");
    assert!(
        out.elapsed < Duration::from_secs(8),
        "create took {:?}: timeout not enforced",
        out.elapsed
    );
    let hook_pid: i32 = read_file(&pidfile).trim().parse().unwrap();
    wait_pid_dead(hook_pid);
    assert_nothing_left(&ctx, &id);
}

#[test]
fn hook_within_timeout_succeeds() {
    let ctx = Ctx::new("hookintime");
    let mut b = ctx.bundle();
    let log = HookLog::new(&ctx, &mut b);
    let mut h = log.hook("createRuntime");
    h["timeout"] = json!(10);
    b.add_hook("createRuntime", h);
    let id = ctx.id("c");
    ctx.run(&id, &b).assert_ok("run with a quick hook");
    assert_eq!(log.order(), ["createRuntime"]);
    ctx.assert_clean();
}

#[test]
fn failing_poststart_hook_fails_start_and_kills_container() {
    let ctx = Ctx::new("poststart");
    let mut b = ctx.bundle();
    b.add_hook("poststart", json!({"path": "/bin/false"}));
    b.sh("touch /tmp/ran; exec sleep 60");
    let id = ctx.id("c");
    if runtime_is_runc() {
        // runc < 1.3 runs poststart during create, so create fails (and
        // cleans up) instead of start; see the ordering test.
        ctx.create(&id, &b, &[])
            .assert_fail("create with a failing poststart hook (runc)");
        assert!(!b.rootfs().join("tmp/ran").exists());
    } else {
        ctx.create(&id, &b, &[]).assert_ok("create");
        let pid = ctx.pid(&id);
        let out = ctx.rt(&["start", &id]);
        out.assert_fail("start with a failing poststart hook");
        assert!(out.elapsed < Duration::from_secs(20));
        // The runtime spec: generate an error and stop the container.
        wait_pid_dead(pid);
        if let Some(st) = ctx.try_state(&id) {
            assert_eq!(st["status"], "stopped", "{st}");
        }
        ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    }
    assert_nothing_left(&ctx, &id);

    // run fails too, quickly (not after the container's 60 s sleep).
    let id = ctx.id("run");
    let out = ctx.run(&id, &b);
    out.assert_fail("run with a failing poststart hook");
    assert!(out.elapsed < Duration::from_secs(20), "{:?}", out.elapsed);
    ctx.rt(&["delete", "--force", &id]);
    assert_nothing_left(&ctx, &id);
}

#[test]
fn hook_paths_are_host_paths_for_runtime_hooks() {
    // createRuntime hooks resolve in the runtime namespace: a script that
    // exists only on the host (outside the rootfs) can be used.
    let ctx = Ctx::new("hookhost");
    let mut b = ctx.bundle();
    let script = ctx.dir.join("host-only-hook.sh");
    let marker = ctx.dir.join("host-hook-ran");
    write_file(
        &script,
        &format!("#!/bin/sh\necho \"$1\" > {}\n", marker.display()),
    );
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    b.add_hook(
        "createRuntime",
        json!({"path": script, "args": ["host-only-hook.sh", "hello"]}),
    );
    let id = ctx.id("c");
    ctx.run(&id, &b).assert_ok("run");
    assert_eq!(read_file(Path::new(&marker)), "hello\n");
    ctx.assert_clean();
}
