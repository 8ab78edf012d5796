//! OCI hooks: each kind runs, with its args and env (or the container's,
//! for the hooks init runs), only stdio, the state JSON on stdin (however
//! big), in the right order and at the right lifecycle step; failures and
//! timeouts fail the operation, except poststart and poststop ones, which
//! are warnings.

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

/// The runtime spec: a failing poststart hook is a warning (in the `--log`
/// file and on stderr), the remaining hooks run, and `start` and `run`
/// succeed with the container running.
#[test]
fn failing_poststart_hook_is_a_warning_and_the_container_runs() {
    let ctx = Ctx::new("poststart");
    let mut b = ctx.bundle();
    let log = HookLog::new(&ctx, &mut b);
    b.add_hook(
        "poststart",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}),
    );
    b.add_hook("poststart", log.hook("poststart"));
    b.sh("touch /tmp/ran; exec sleep 60");
    let id = ctx.id("c");
    if runtime_is_runc() {
        // runc < 1.3 runs poststart during create, and a failure fails
        // create (and cleans up); see the ordering test.
        ctx.create(&id, &b, &[])
            .assert_fail("create with a failing poststart hook (runc)");
        assert!(!b.rootfs().join("tmp/ran").exists());
        assert_nothing_left(&ctx, &id);
        return;
    }
    ctx.create(&id, &b, &[]).assert_ok("create");
    let pid = ctx.pid(&id);
    let log_file = ctx.dir.join("start.log");
    let out = ctx.rt(&[
        "--log",
        log_file.to_str().unwrap(),
        "--log-format",
        "json",
        "start",
        &id,
    ]);
    out.assert_ok("start with a failing poststart hook");
    assert!(
        out.stderr.contains("rootcell: warning: poststart hook"),
        "{}",
        out.stderr
    );
    let warning = lines(&read_file(&log_file))
        .into_iter()
        .map(|l| parse_json(&l, "log record"))
        .find(|r| r["level"] == "warning")
        .unwrap_or_else(|| panic!("no warning in the log: {}", read_file(&log_file)));
    assert!(
        warning["msg"].as_str().unwrap().contains("poststart"),
        "{warning}"
    );
    // The next hook ran, and the container lives on.
    assert_eq!(log.order(), ["poststart"]);
    assert!(pid_alive(pid));
    assert_eq!(ctx.status(&id), "running");
    wait_for_file(&b.rootfs().join("tmp/ran"));
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    assert_nothing_left(&ctx, &id);

    // run: the process runs to its end and its exit code is run's.
    b.sh("echo ran; exit 0");
    let id = ctx.id("run");
    let out = ctx.run(&id, &b);
    out.assert_ok("run with a failing poststart hook");
    assert!(out.stdout.contains("ran\n"), "{}", out.all());
    assert!(out.stderr.contains("poststart"), "{}", out.stderr);
    assert_nothing_left(&ctx, &id);
}

/// Under create + start, init runs the startContainer hooks once `create`
/// has returned, so nobody reads its sync socket: the hook's error reaches
/// `start` through `init.err` in the state directory, not a guess.
#[test]
fn failing_start_container_hook_is_named_by_start() {
    if runtime_is_runc() {
        skip("runc 1.1's start only opens the exec fifo: it succeeds, silently");
        return;
    }
    let ctx = Ctx::new("starthookerr");
    let mut b = ctx.bundle();
    b.add_hook(
        "startContainer",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 37"]}),
    );
    b.sh("touch /tmp/ran");
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("create");
    let pid = ctx.pid(&id);
    let out = ctx.rt(&["start", &id]);
    out.assert_fail("start with a failing startContainer hook");
    assert!(
        out.stderr.contains("startContainer hook /bin/sh")
            && out.stderr.contains("exit status: 37"),
        "{}",
        out.stderr
    );
    wait_pid_dead(pid);
    assert!(!b.rootfs().join("tmp/ran").exists());
    assert_eq!(ctx.status(&id), "stopped");
    // A second start says why as well.
    let again = ctx.rt(&["start", &id]);
    again.assert_fail("start of a container whose init failed");
    assert!(
        again.stderr.contains("stopped") && again.stderr.contains("exit status: 37"),
        "{}",
        again.stderr
    );
    ctx.rt(&["delete", &id]).assert_ok("delete");
    assert_nothing_left(&ctx, &id);
}

/// Every poststop hook runs even when earlier ones fail; each failure is a
/// warning and `delete` succeeds.
#[test]
fn every_poststop_hook_runs_when_one_fails() {
    let ctx = Ctx::new("poststop");
    let mut b = ctx.bundle();
    let log = HookLog::new(&ctx, &mut b);
    b.add_hook(
        "poststop",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}),
    );
    b.add_hook("poststop", json!({"path": "/no/such/hook"}));
    b.add_hook("poststop", log.hook("poststop"));
    if runtime_is_runc() {
        skip("runc 1.1 stops at the first failing poststop hook");
        return;
    }
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("create");
    let out = ctx.rt(&["delete", "--force", &id]);
    out.assert_ok("delete with failing poststop hooks");
    assert_eq!(
        log.order(),
        ["poststop"],
        "the last poststop hook did not run"
    );
    assert_eq!(
        out.stderr
            .matches("rootcell: warning: poststop hook")
            .count(),
        2,
        "{}",
        out.stderr
    );
    assert_nothing_left(&ctx, &id);
}

/// A state bigger than a pipe buffer: 200 KiB of annotations.
fn big_annotations(b: &mut Bundle) -> usize {
    let big = "x".repeat(200 * 1024);
    b.config["annotations"] = json!({ "big": big });
    big.len()
}

/// Every hook gets the whole state, however big (it used to be cut at the
/// sync socket's 64 KiB datagram, failing every container with large
/// annotations), and a hook that reads none of it and exits, or leaves a
/// background process holding its stdin, does not keep the runtime.
#[test]
fn a_big_state_reaches_every_hook() {
    let ctx = Ctx::new("hookbig");
    let mut b = ctx.bundle();
    let log = HookLog::new(&ctx, &mut b);
    let size = big_annotations(&mut b);
    log.add_all(&mut b);
    let bg = ctx.dir.join("bg.pid");
    b.add_hook("createRuntime", json!({"path": "/bin/true"}));
    if runtime_is_runc() {
        println!(
            "SKIPPED (runc): runc 1.1 waits until a hook's background process reads its stdin"
        );
    } else {
        b.add_hook(
        "prestart",
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            // A background process holding the hook's stdin, never
            // reading (an asynchronous list gets /dev/null unless told).
            format!("exec 3<&0; sleep 1000 <&3 >/dev/null 2>&1 3<&- & echo $! > {}", bg.display())]}),
    );
    }
    b.sh("echo ran");
    let id = ctx.id("c");
    let out = ctx.run(&id, &b);
    if let Ok(pid) = fs::read_to_string(&bg)
        .unwrap_or_default()
        .trim()
        .parse::<i32>()
    {
        kill_pid(pid, libc::SIGKILL);
    }
    out.assert_ok("run with 200 KiB of annotations and hooks");
    assert!(out.elapsed < Duration::from_secs(8), "{:?}", out.elapsed);
    for kind in ALL_HOOKS {
        let st = log.stdin_state(kind);
        assert_eq!(
            st["annotations"]["big"].as_str().map(str::len),
            Some(size),
            "{kind}"
        );
    }
    ctx.assert_clean();
}

/// A hook that never reads a state bigger than a pipe buffer: its timeout
/// covers the write of the state, so the runtime does not wait for the
/// hook's `sleep 1000`; the hook is killed and create fails.
#[test]
fn hook_not_reading_a_big_state_is_bounded_by_its_timeout() {
    let ctx = Ctx::new("hookbigto");
    let mut b = ctx.bundle();
    big_annotations(&mut b);
    let pidfile = ctx.dir.join("hook.pid");
    b.add_hook(
        "createRuntime",
        json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo $$ > {}; exec sleep 1000", pidfile.display())],
            "timeout": 2
        }),
    );
    let id = ctx.id("c");
    let out = ctx.create(&id, &b, &[]);
    out.assert_fail("create with a hook that never reads its state");
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    let hook_pid: i32 = read_file(&pidfile).trim().parse().unwrap();
    wait_pid_dead(hook_pid);
    if !runtime_is_runc() {
        assert!(out.stderr.contains("timed out after 2s"), "{}", out.stderr);
    }
    assert_nothing_left(&ctx, &id);
}

/// The same hook without a timeout, run by init (startContainer): it has
/// `hooks::STATE_WRITE_TIMEOUT` (10 s) to take its state, then it is
/// killed and run fails. runc has no such limit (it waits for the hook).
#[test]
fn hook_without_timeout_not_reading_a_big_state_is_killed() {
    if runtime_is_runc() {
        skip("runc waits as long as the hook runs (1000 s here)");
        return;
    }
    let ctx = Ctx::new("hookbigdef");
    let mut b = ctx.bundle();
    let log = HookLog::new(&ctx, &mut b);
    big_annotations(&mut b);
    let pidfile = log.dir.join("hook.pid");
    b.add_hook(
        "startContainer",
        json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo $$ > {}; exec sleep 1000", pidfile.display())]
        }),
    );
    b.sh("echo ran");
    let id = ctx.id("c");
    let out = ctx.run(&id, &b);
    out.assert_fail("run with a startContainer hook that never reads its state");
    assert!(
        out.elapsed >= Duration::from_secs(9) && out.elapsed < Duration::from_secs(25),
        "{:?}",
        out.elapsed
    );
    assert!(!out.stdout.contains("ran"), "{}", out.all());
    assert!(
        out.stderr.contains("startContainer hook") && out.stderr.contains("unread on stdin"),
        "{}",
        out.stderr
    );
    // The hook ran (and wrote its pid in the container's pid namespace);
    // no process is left in the rootfs.
    assert!(pidfile.exists());
    assert_nothing_left(&ctx, &id);
}

/// Hooks that init runs (createContainer, startContainer) without `env`
/// get the container process's environment, as with runc; a hook with
/// `env` gets exactly that.
#[test]
fn container_hooks_without_env_get_the_process_env() {
    let ctx = Ctx::new("hookenv");
    let mut b = ctx.bundle();
    let log = HookLog::new(&ctx, &mut b);
    let env = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "FOO=from-config",
    ];
    b.process()["env"] = json!(env);
    // The environment the hook was started with, but for what the shell
    // adds (PWD, SHLVL; busybox sh adds PATH too, if missing).
    let env_of = |name: &str| {
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("env > {}/{name}.env", log.dir.display())]})
    };
    b.add_hook("createContainer", env_of("createContainer"));
    b.add_hook("startContainer", env_of("startContainer"));
    let mut own = env_of("own");
    own["env"] = json!(["PATH=/bin", "ONLY=1"]);
    b.add_hook("startContainer", own);
    let id = ctx.id("c");
    ctx.run(&id, &b).assert_ok("run");
    let env_file = |name: &str| {
        let mut l: Vec<String> = lines(&read_file(&log.dir.join(format!("{name}.env"))))
            .into_iter()
            .filter(|v| !v.starts_with("PWD=") && !v.starts_with("SHLVL="))
            .collect();
        l.sort();
        l
    };
    // createContainer: the config's; startContainer: the process's, which
    // has HOME (from the rootfs's /etc/passwd) by then.
    let mut want = env.to_vec();
    want.sort();
    assert_eq!(env_file("createContainer"), want);
    want.push("HOME=/root");
    want.sort();
    assert_eq!(env_file("startContainer"), want);
    assert_eq!(env_file("own"), ["ONLY=1", "PATH=/bin"]);
    ctx.assert_clean();
}

/// In a forked child: `files` become the inheritable fds 3, 4, ...
fn fds_from_3(files: &[i32]) -> std::io::Result<()> {
    for (n, &raw) in files.iter().enumerate() {
        let fd = 3 + n as i32;
        // SAFETY: dup2/fcntl on fds we own, in the child before exec.
        unsafe {
            if raw != fd && libc::dup2(raw, fd) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Hooks get stdio and no other fd: not the runtime's, not init's, not
/// the ones `--preserve-fds` keeps for the container.
#[test]
fn hooks_inherit_only_stdio() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let ctx = Ctx::new("hookfds");
    let mut b = ctx.bundle();
    let log = HookLog::new(&ctx, &mut b);
    let d = log.dir.display().to_string();
    for kind in ALL_HOOKS {
        b.add_hook(
            kind,
            json!({"path": "/bin/sh", "args": ["sh", "-c",
                format!("ls /proc/self/fd > {d}/{kind}.fds")]}),
        );
    }
    b.sh("ls /proc/self/fd | tr '\\n' ' '");
    let data = ctx.dir.join("passed.txt");
    write_file(&data, "x");
    let (f3, f4) = (
        fs::File::open(&data).unwrap(),
        fs::File::open(&data).unwrap(),
    );
    let raws = [f3.as_raw_fd(), f4.as_raw_fd()];
    let id = ctx.id("c");
    let mut c = ctx.run_cmd(&id, &b, &["--preserve-fds", "2"]);
    // SAFETY: fds_from_3 only calls async-signal-safe functions.
    unsafe {
        c.pre_exec(move || fds_from_3(&raws));
    }
    let out = exec(&mut c, CMD_TIMEOUT);
    drop((f3, f4));
    out.assert_ok("run --preserve-fds 2");
    // The container itself gets 3 and 4 (ls's own directory is 5).
    assert_eq!(out.stdout.trim(), "0 1 2 3 4 5", "{}", out.all());
    for kind in ALL_HOOKS {
        if runtime_is_runc() && kind.starts_with("create") && kind != "createRuntime"
            || runtime_is_runc() && kind == "startContainer"
        {
            println!("SKIPPED (runc): runc 1.1 passes init's fds to its {kind} hooks");
            continue;
        }
        let fds = lines(&read_file(&log.dir.join(format!("{kind}.fds"))));
        // 3 is ls's own directory.
        assert_eq!(fds, ["0", "1", "2", "3"], "{kind} hook's fds");
    }
    ctx.assert_clean();
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
