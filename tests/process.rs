//! The container process: args, env, cwd, user, groups, umask, rlimits,
//! no_new_privs, oom_score_adj, capabilities, extra fds and the terminal.

mod common;

use common::console::ConsoleSocket;
use common::*;
use serde_json::json;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

/// Run the bundle as-is in a fresh container; assert success; return stdout.
#[track_caller]
fn run_ok(ctx: &Ctx, b: &Bundle, name: &str) -> String {
    let id = ctx.id(name);
    let out = ctx.run(&id, b);
    out.assert_ok(name);
    out.stdout
}

#[test]
fn args_are_passed_verbatim() {
    let ctx = Ctx::new("args");
    let mut b = ctx.bundle();
    b.args(&[
        "/bin/sh",
        "-c",
        "printf '[%s]' \"$0\" \"$@\"",
        "zero",
        "a b",
        "",
        "$HOME",
        "*",
    ]);
    assert_eq!(run_ok(&ctx, &b, "a"), "[zero][a b][][$HOME][*]");
    // A bare program name is looked up in the container's PATH.
    b.args(&["echo", "via-path"]);
    assert_eq!(run_ok(&ctx, &b, "p"), "via-path\n");
    ctx.assert_clean();
}

#[test]
fn env_is_exactly_the_spec_env() {
    let ctx = Ctx::new("env");
    let mut b = ctx.bundle();
    b.process()["env"] = json!(["PATH=/bin", "FOO=bar baz", "EMPTY=", "EQ=a=b",]);
    b.sh("env | sort");
    let mut c = ctx.run_cmd(&ctx.id("e"), &b, &[]);
    // The runtime's own environment must not leak into the container.
    c.env("ROOTCELL_LEAK_CHECK", "leaked");
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_ok("run");
    let vars = lines(&out.stdout);
    for want in ["PATH=/bin", "FOO=bar baz", "EMPTY=", "EQ=a=b"] {
        assert!(vars.iter().any(|v| v == want), "missing {want}: {vars:?}");
    }
    assert!(
        !out.stdout.contains("ROOTCELL_LEAK_CHECK"),
        "host env leaked: {vars:?}"
    );
    // Only the spec's variables plus what sh itself sets (PWD, SHLVL) and
    // HOME, which runtimes add from /etc/passwd when the spec lacks it.
    for v in &vars {
        let k = v.split('=').next().unwrap();
        assert!(
            ["PATH", "FOO", "EMPTY", "EQ", "HOME", "PWD", "SHLVL", "_"].contains(&k),
            "unexpected variable {v}"
        );
    }
    assert!(vars.iter().any(|v| v == "HOME=/root"), "{vars:?}");
    ctx.assert_clean();
}

#[test]
fn cwd_is_applied() {
    let ctx = Ctx::new("cwd");
    let mut b = ctx.bundle();
    b.process()["cwd"] = json!("/etc");
    b.sh("pwd; ls passwd");
    assert_eq!(run_ok(&ctx, &b, "etc"), "/etc\npasswd\n");
    // A cwd that does not exist in the rootfs is created (as runc does).
    b.process()["cwd"] = json!("/work/dir");
    b.sh("pwd");
    assert_eq!(run_ok(&ctx, &b, "new"), "/work/dir\n");
    assert!(b.rootfs().join("work/dir").is_dir());
    ctx.assert_clean();
}

#[test]
fn user_uid_gid_and_additional_gids() {
    let ctx = Ctx::new("user");
    let mut b = ctx.bundle();
    b.process()["user"] = json!({"uid": 1000, "gid": 1000});
    b.sh("id -u; id -g; id -G; grep -E '^(Uid|Gid)' /proc/self/status");
    let out = run_ok(&ctx, &b, "u");
    let l = lines(&out);
    assert_eq!(l[0], "1000", "{out}");
    assert_eq!(l[1], "1000", "{out}");
    assert_eq!(l[2], "1000", "supplementary groups must be cleared: {out}");
    // Real, effective, saved and fs ids all switched.
    assert_eq!(
        l[3].split_whitespace().collect::<Vec<_>>(),
        ["Uid:", "1000", "1000", "1000", "1000"]
    );
    assert_eq!(
        l[4].split_whitespace().collect::<Vec<_>>(),
        ["Gid:", "1000", "1000", "1000", "1000"]
    );

    b.process()["user"] = json!({"uid": 1000, "gid": 100, "additionalGids": [10, 1000, 4242]});
    b.sh("id");
    let out = run_ok(&ctx, &b, "g");
    assert!(out.starts_with("uid=1000(user) gid=100(users)"), "{out}");
    let groups = out.split("groups=").nth(1).unwrap_or("").trim();
    let mut gids: Vec<u32> = groups
        .split(',')
        .map(|g| g.split('(').next().unwrap().parse().unwrap())
        .collect();
    gids.sort();
    gids.dedup();
    // runc also lists the primary gid; what matters is the additional ones.
    gids.retain(|g| *g != 100);
    assert_eq!(gids, [10, 1000, 4242], "{out}");

    // The user really lacks root's privileges.
    b.process()["user"] = json!({"uid": 1000, "gid": 1000});
    b.sh("touch /etc/nope 2>&1 || echo denied");
    assert!(run_ok(&ctx, &b, "d").contains("denied"));
    assert!(!b.rootfs().join("etc/nope").exists());
    ctx.assert_clean();
}

#[test]
fn umask_is_applied() {
    let ctx = Ctx::new("umask");
    let mut b = ctx.bundle();
    b.process()["user"]["umask"] = json!(0o027);
    b.sh("umask; touch /tmp/f; stat -c %a /tmp/f");
    assert_eq!(run_ok(&ctx, &b, "u27"), "0027\n640\n");
    b.process()["user"]["umask"] = json!(0o077);
    b.sh("umask");
    assert_eq!(run_ok(&ctx, &b, "u77"), "0077\n");
    ctx.assert_clean();
}

#[test]
fn rlimits_are_applied() {
    let ctx = Ctx::new("rlimit");
    let mut b = ctx.bundle();
    b.process()["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
        {"type": "RLIMIT_NPROC", "soft": 777, "hard": 777},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
    ]);
    b.sh("ulimit -n; ulimit -Hn; ulimit -u; ulimit -c");
    assert_eq!(run_ok(&ctx, &b, "r"), "123\n456\n777\n0\n");
    ctx.assert_clean();
}

#[test]
fn no_new_privileges_flag() {
    let ctx = Ctx::new("nnp");
    let mut b = ctx.bundle();
    b.sh("cat /proc/self/status");
    b.process()["noNewPrivileges"] = json!(true);
    let out = run_ok(&ctx, &b, "on");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    b.process()["noNewPrivileges"] = json!(false);
    let out = run_ok(&ctx, &b, "off");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
    ctx.assert_clean();
}

#[test]
fn new_session_keyring_unless_no_new_keyring() {
    let ctx = Ctx::new("keyring");
    let mut b = ctx.bundle();
    // /proc/keys is masked by default; unmask it to look at our keyrings.
    b.linux()["maskedPaths"] = json!([]);
    b.sh("grep -o '_ses[^ ]*' /proc/keys || echo none");
    let id = ctx.id("k");
    let out = ctx.run(&id, &b);
    out.assert_ok("run");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_end_matches(':') == format!("_ses.{id}")),
        "no _ses.{id} keyring: {}",
        out.stdout
    );
    let id = ctx.id("nok");
    let out = ctx.run_with(&id, &b, &["--no-new-keyring"], None);
    out.assert_ok("run --no-new-keyring");
    assert!(
        !out.stdout.contains(&format!("_ses.{id}")),
        "{}",
        out.stdout
    );
    ctx.assert_clean();
}

#[test]
fn oom_score_adj_is_applied() {
    let ctx = Ctx::new("oom");
    let mut b = ctx.bundle();
    b.sh("cat /proc/self/oom_score_adj");
    b.process()["oomScoreAdj"] = json!(500);
    assert_eq!(run_ok(&ctx, &b, "p"), "500\n");
    // Lowering the score needs CAP_SYS_RESOURCE, which the test machine's
    // sandbox does not grant even to root, so only positive values here.
    b.process()["oomScoreAdj"] = json!(1000);
    assert_eq!(run_ok(&ctx, &b, "max"), "1000\n");
    ctx.assert_clean();
}

#[test]
fn capabilities_are_applied() {
    let ctx = Ctx::new("caps");
    let mut b = ctx.bundle();
    // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29).
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    b.process()["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps, "inheritable": []
    });
    b.sh("cat /proc/self/status; chown 1000 /tmp 2>&1 || echo chown-denied");
    let out = run_ok(&ctx, &b, "c");
    assert_eq!(status_field(&out, "CapEff"), "0000000020000420");
    assert_eq!(status_field(&out, "CapPrm"), "0000000020000420");
    assert_eq!(status_field(&out, "CapBnd"), "0000000020000420");
    assert_eq!(status_field(&out, "CapInh"), "0000000000000000");
    assert!(
        out.contains("chown-denied"),
        "chown allowed without CAP_CHOWN"
    );

    // Granting CAP_CHOWN makes the same operation succeed.
    let caps = json!(["CAP_CHOWN"]);
    b.process()["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps
    });
    b.sh("mkdir /tmp/c && chown 1000 /tmp/c && stat -c %u /tmp/c");
    assert_eq!(run_ok(&ctx, &b, "chown"), "1000\n");
    ctx.assert_clean();
}

#[test]
fn preserve_fds_passes_extra_descriptors() {
    let ctx = Ctx::new("fds");
    let mut b = ctx.bundle();
    let data = ctx.dir.join("fd3.txt");
    write_file(&data, "through-fd-3\n");
    b.sh("cat <&3; ls -l /proc/self/fd");
    b.save();
    let file = fs::File::open(&data).unwrap();
    let raw = file.as_raw_fd();
    let id = ctx.id("p");
    let mut c = ctx.run_cmd(&id, &b, &["--preserve-fds", "1"]);
    // SAFETY: fd_as_3 only calls async-signal-safe functions.
    unsafe {
        c.pre_exec(move || fd_as_3(raw));
    }
    let out = exec(&mut c, CMD_TIMEOUT);
    drop(file);
    out.assert_ok("run --preserve-fds 1");
    let l = lines(&out.stdout);
    assert_eq!(l[0], "through-fd-3", "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("3 -> {}", data.display())),
        "fd 3 is not the passed file:\n{}",
        out.stdout
    );

    // Without --preserve-fds the descriptor is not passed on.
    let id = ctx.id("n");
    let mut c = ctx.run_cmd(&id, &b, &[]);
    let file = fs::File::open(&data).unwrap();
    let raw = file.as_raw_fd();
    unsafe {
        c.pre_exec(move || fd_as_3(raw));
    }
    let out = exec(&mut c, CMD_TIMEOUT);
    drop(file);
    assert!(
        !out.stdout.contains("through-fd-3") && !out.stdout.contains("fd3.txt"),
        "fd 3 leaked into the container: {}",
        out.stdout
    );
    ctx.assert_clean();
}

/// In a forked child: make `raw` the inheritable fd 3. If `raw` already is
/// 3, dup2 is a no-op that would leave close-on-exec set.
fn fd_as_3(raw: i32) -> std::io::Result<()> {
    unsafe {
        if raw != 3 && libc::dup2(raw, 3) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[test]
fn terminal_via_console_socket() {
    let ctx = Ctx::new("tty");
    let mut b = ctx.bundle();
    b.process()["terminal"] = json!(true);
    b.sh("tty; test -t 0 && test -t 1 && echo is-a-tty; stat -c '%F' /dev/console");
    let sock = ConsoleSocket::bind(&ctx.dir);
    let id = ctx.id("t");
    let out = ctx.create(&id, &b, &["--console-socket", sock.arg()]);
    out.assert_ok("create --console-socket");
    let (_, mut master) = sock.master();
    ctx.rt(&["start", &id]).assert_ok("start");
    // What the container wrote to the terminal, up to EIO once every peer
    // fd is closed.
    let text = master.read_to_end();
    ctx.wait_status(&id, "stopped");
    assert!(text.contains("/dev/pts/"), "tty output: {text:?}");
    assert!(text.contains("is-a-tty"), "tty output: {text:?}");
    assert!(
        text.contains("character special file"),
        "/dev/console: {text:?}"
    );
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// `process.capabilities.inheritable` is applied exactly as configured
/// (the default `spec`, like runc's, sets none), for root and another
/// user alike.
#[test]
fn configured_inheritable_capabilities_are_applied() {
    let ctx = Ctx::new("caps-inh");
    let mut b = ctx.bundle();
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    b.process()["capabilities"] = json!({"bounding": caps, "effective": caps,
        "permitted": caps, "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"]});
    b.sh("grep ^Cap /proc/self/status");
    for uid in [0, UNPRIV_UID] {
        b.process()["user"] = json!({"uid": uid, "gid": uid});
        let out = run_ok(&ctx, &b, &format!("u{uid}"));
        assert_eq!(status_field(&out, "CapInh"), "0000000000000420", "{out}");
        assert_eq!(status_field(&out, "CapAmb"), "0000000000000000", "{out}");
    }
    ctx.assert_clean();
}

/// An ambient capability that is not also permitted and inheritable cannot
/// be raised: left out with a warning in the log (runc 1.1.5 leaves it out
/// silently), the container runs.
#[test]
fn ambient_capabilities_without_inheritable_warn_and_are_left_out() {
    let ctx = Ctx::new("caps-amb");
    let mut b = ctx.bundle();
    let caps = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    b.process()["capabilities"] = json!({"bounding": caps, "effective": caps,
        "permitted": caps, "inheritable": ["CAP_NET_BIND_SERVICE"], "ambient": caps});
    b.process()["user"] = json!({"uid": UNPRIV_UID, "gid": UNPRIV_GID});
    b.sh("grep ^Cap /proc/self/status");
    let log = ctx.dir.join("amb.log");
    let id = ctx.id("a");
    b.save();
    let mut c = ctx.cmd();
    c.arg("--log")
        .arg(&log)
        .arg("run")
        .arg("--bundle")
        .arg(&b.path)
        .arg(&id);
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_ok("run with an ambient set beyond inheritable");
    // Only the capability that is permitted and inheritable is ambient.
    assert_eq!(status_field(&out.stdout, "CapAmb"), "0000000000000400");
    assert_eq!(status_field(&out.stdout, "CapInh"), "0000000000000400");
    if !runtime_is_runc() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("warn")
                && text.contains("process.capabilities.ambient: CAP_KILL")
                && !text.contains("ambient: CAP_NET_BIND_SERVICE"),
            "{text}"
        );
        assert!(!out.stderr.contains("error"), "{}", out.stderr);
    }
    ctx.assert_clean();
}

/// An inheritable capability outside the bounding set: the kernel refuses
/// it at capset, and so the container fails, as with runc.
#[test]
fn inheritable_capabilities_outside_bounding_fail_like_runc() {
    let ctx = Ctx::new("caps-inh-bnd");
    let mut b = ctx.bundle();
    let caps = json!(["CAP_KILL"]);
    b.process()["capabilities"] = json!({"bounding": caps, "effective": caps,
        "permitted": caps, "inheritable": ["CAP_KILL", "CAP_SYS_ADMIN"]});
    b.args(&["echo", "must-not-run"]);
    let out = ctx.run(&ctx.id("r"), &b);
    out.assert_fail("inheritable outside bounding");
    assert!(!out.stdout.contains("must-not-run"), "{}", out.stdout);
    if !runtime_is_runc() {
        assert!(
            out.stderr.contains("process.capabilities.inheritable"),
            "{}",
            out.stderr
        );
    }
    ctx.assert_clean();
}
