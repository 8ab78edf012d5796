//! `exec --tty`: a new pty from the container's devpts for the exec'd
//! process, handed to a `--console-socket` listener (`--detach`) or relayed
//! by the runtime in the foreground, as runc 1.1 does; runc's flag rules;
//! a `--process` file's `terminal` and `consoleSize`; a hostile
//! `/dev/pts/ptmx` in the container.
//!
//! Every test passes against runc too, except those that skip it (with
//! the reason). Error wordings and the exit code 255 of a failed
//! exec are checked for rootcell only.

mod common;

use common::console::{
    lflags, pty_pair, set_size, spawn_on_terminal, ConsoleSocket, Received, Term,
};
use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A running container whose init sleeps, without a terminal of its own;
/// its `process.consoleSize` (33x111) is what `exec --tty` inherits.
/// Returns (id, init pid).
fn running(ctx: &Ctx, edit: impl FnOnce(&mut Bundle)) -> (String, i32) {
    let mut b = ctx.bundle();
    b.args(&["sleep", "1000"]);
    b.process()["consoleSize"] = json!({"height": 33, "width": 111});
    edit(&mut b);
    let id = ctx.id("c");
    ctx.run_detached(&id, &b, &[]).assert_ok("run --detach");
    let pid = ctx.pid(&id);
    (id, pid)
}

/// `exec --detach --console-socket S --pid-file F [flags...] ID CMD...`
/// with stdio to files. Returns the outcome and the pid file.
fn exec_to_socket(
    ctx: &Ctx,
    sock: &ConsoleSocket,
    flags: &[&str],
    id: &str,
    cmd: &[&str],
) -> (Out, PathBuf) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let pid_file = ctx
        .dir
        .join(format!("exec-{}.pid", N.fetch_add(1, Ordering::SeqCst)));
    let mut c = ctx.cmd();
    c.args(["exec", "--detach", "--console-socket", sock.arg()])
        .arg("--pid-file")
        .arg(&pid_file)
        .args(flags)
        .arg(id)
        .args(cmd);
    let out = ctx.exec_detached(&mut c, &format!("{id}-exec"), None);
    (out, pid_file)
}

#[track_caller]
fn pid_from(file: &Path) -> i32 {
    read_file(file)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file {}: {e}", file.display()))
}

/// The pids `ps --format json` lists.
#[track_caller]
fn ps_json(ctx: &Ctx, id: &str) -> BTreeSet<i32> {
    let out = ctx.rt(&["ps", "--format", "json", id]);
    out.assert_ok("ps --format json");
    let v = parse_json(&out.stdout, "ps --format json");
    v.as_array()
        .map(|a| a.iter().map(|p| p.as_i64().expect("pid") as i32).collect())
        .unwrap_or_default()
}

/// (major, minor) of a device number.
fn major_minor(rdev: u64) -> (u64, u64) {
    (libc::major(rdev) as u64, libc::minor(rdev) as u64)
}

/// Fields of `/proc/PID/stat` after the command name: [0] is the state,
/// [3] the session, [4] the controlling terminal's device number.
fn stat_fields(pid: i32) -> Vec<String> {
    let stat = read_file(Path::new(&format!("/proc/{pid}/stat")));
    let rest = &stat[stat.rfind(')').expect("comm in stat") + 2..];
    rest.split_whitespace().map(str::to_owned).collect()
}

/// Checks the fds of `pid`: none is a pty master (the devpts multiplexer,
/// 5:2); 0, 1 and 2 are one pty peer, which is also the controlling
/// terminal of the session `pid` leads.
#[track_caller]
fn assert_stdio_is_its_own_pty(pid: i32) {
    let mut peers = BTreeSet::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        let Ok(md) = fs::metadata(entry.path()) else {
            continue;
        };
        let fd: i32 = entry.file_name().to_string_lossy().parse().unwrap();
        let is_char = md.file_type().is_char_device();
        assert!(
            !(is_char && major_minor(md.rdev()) == (5, 2)),
            "fd {fd} of the exec'd process is a pty master"
        );
        if fd < 3 {
            let (major, _) = major_minor(md.rdev());
            assert!(
                is_char && (136..=143).contains(&major),
                "fd {fd} is not a pty peer"
            );
            peers.insert(md.rdev());
        }
    }
    assert_eq!(peers.len(), 1, "stdio is not one pty: {peers:?}");
    let stat = stat_fields(pid);
    assert_eq!(stat[3], pid.to_string(), "not a session leader: {stat:?}");
    let ctty: u64 = stat[4].parse().unwrap();
    assert!(
        peers.contains(&ctty),
        "controlling terminal {ctty} is not stdio's pty"
    );
}

// ---------------------------------------------------------------------------
// --console-socket
// ---------------------------------------------------------------------------

#[test]
fn exec_tty_sends_the_master_to_the_console_socket() {
    let ctx = Ctx::new("xtty-sock");
    let (id, init) = running(&ctx, |_| {});
    let sock = ConsoleSocket::bind(&ctx.dir.join("s"));
    let script = "tty; for fd in 0 1 2; do test -t $fd && echo fd$fd-is-a-tty; done; \
                  echo size $(stty size); \
                  [ $(stat -c %d $(tty)) = $(stat -c %d /dev/pts/ptmx) ] && echo same-devpts; \
                  echo ready; read line; echo got:$line";
    let (out, pid_file) = exec_to_socket(&ctx, &sock, &["--tty"], &id, &["sh", "-c", script]);
    out.assert_ok("exec --tty --detach --console-socket");
    // runc's protocol: one message, the data is the master's name.
    let (name, mut term) = sock.master();
    assert_eq!(name, "/dev/ptmx", "message data with the master");
    let text = term.read_until("ready\n");
    assert!(text.starts_with("/dev/pts/"), "tty: {text:?}");
    for fd in 0..3 {
        assert!(text.contains(&format!("fd{fd}-is-a-tty")), "{text:?}");
    }
    // consoleSize comes with the container's process, like the rest.
    assert!(text.contains("size 33 111\n"), "consoleSize: {text:?}");
    // The pty is from the container's own devpts.
    assert!(text.contains("same-devpts\n"), "{text:?}");
    // While it waits for input: no master among its fds, stdio is the pty,
    // which is its controlling terminal.
    let pid = pid_from(&pid_file);
    assert_stdio_is_its_own_pty(pid);
    term.write("hello from the test\n");
    term.read_until("got:hello from the test\n");
    wait_pid_dead(pid);
    assert_eq!(ps_json(&ctx, &id), BTreeSet::from([init]));
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_tty_gives_the_terminal_to_the_user() {
    let ctx = Ctx::new("xtty-user");
    let (id, _) = running(&ctx, |_| {});
    let sock = ConsoleSocket::bind(&ctx.dir.join("s"));
    let (out, _) = exec_to_socket(
        &ctx,
        &sock,
        &["--tty", "--user", "1000:1000"],
        &id,
        &["sh", "-c", "stat -c 'owner %u' $(tty); id -u"],
    );
    out.assert_ok("exec --tty --user");
    let (_, mut term) = sock.master();
    let text = term.read_to_end();
    assert!(text.contains("owner 1000\n1000\n"), "{text:?}");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_process_file_decides_the_terminal_and_its_size() {
    let ctx = Ctx::new("xtty-pfile");
    let (id, _) = running(&ctx, |_| {});
    let process = |terminal: bool, script: &str| {
        json!({
            "terminal": terminal,
            "consoleSize": {"height": 20, "width": 70},
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", script],
            "env": ["PATH=/bin"],
            "cwd": "/",
        })
    };
    let with_tty = ctx.dir.join("tty.json");
    write_file(
        &with_tty,
        &process(true, "echo size $(stty size); tty").to_string(),
    );
    let sock = ConsoleSocket::bind(&ctx.dir.join("s"));
    // No --tty: the file's `terminal` asks for the pty.
    let (out, _) = exec_to_socket(&ctx, &sock, &["-p", with_tty.to_str().unwrap()], &id, &[]);
    out.assert_ok("exec -p with terminal true");
    let (_, mut term) = sock.master();
    let text = term.read_to_end();
    assert!(text.contains("size 20 70\n/dev/pts/"), "{text:?}");
    // --tty is ignored with a process file whose terminal is false.
    let no_tty = ctx.dir.join("notty.json");
    write_file(
        &no_tty,
        &process(false, "test -t 0 && echo tty || echo no-tty").to_string(),
    );
    let out = ctx.rt(&["exec", "--tty", "-p", no_tty.to_str().unwrap(), &id]);
    out.assert_ok("exec --tty -p with terminal false");
    assert_eq!(out.stdout, "no-tty\n", "{}", out.all());
    // No warning about --tty: conmon passes it with the file on every
    // `podman exec -it`.
    assert!(!out.stderr.contains("--tty"), "{}", out.stderr);
    // Both, as conmon passes them: a terminal, and not a word on stderr.
    let (out, _) = exec_to_socket(
        &ctx,
        &sock,
        &["--tty", "-p", with_tty.to_str().unwrap()],
        &id,
        &[],
    );
    out.assert_ok("exec --tty -p with terminal true");
    assert!(!out.stderr.contains("--tty"), "{}", out.stderr);
    if !runtime_is_runc() {
        assert_eq!(out.stderr, "", "exec --tty -p printed on stderr");
    }
    let (_, mut term) = sock.master();
    let text = term.read_to_end();
    assert!(text.contains("size 20 70\n/dev/pts/"), "{text:?}");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_tty_in_a_user_namespace_container() {
    let ctx = Ctx::new("xtty-userns");
    let (id, _) = running(&ctx, |b| {
        b.set_namespace("user", None);
        b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // As in namespaces.rs: not what this test is about.
        b.remove_mount("/sys/fs/cgroup");
    });
    let sock = ConsoleSocket::bind(&ctx.dir.join("s"));
    let (out, _) = exec_to_socket(
        &ctx,
        &sock,
        &["--tty"],
        &id,
        &["sh", "-c", "tty; echo size $(stty size); id -u"],
    );
    out.assert_ok("exec --tty into a user namespace");
    let (_, mut term) = sock.master();
    let text = term.read_to_end();
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    assert!(text.contains("size 33 111\n0\n"), "{text:?}");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_tty_in_a_rootless_container() {
    skip_unless_rootless_possible!();
    let ctx = rootless_ctx("xtty-rl");
    let path = ctx.dir.join("rlbundle");
    make_rootfs(&path.join("rootfs"));
    chown(&path, UNPRIV_UID, UNPRIV_GID);
    let mut c = ctx.cmd();
    c.args(["spec", "--rootless", "--bundle"]).arg(&path);
    exec(&mut c, CMD_TIMEOUT).assert_ok("spec --rootless");
    let mut b = Bundle {
        config: parse_json(&read_file(&path.join("config.json")), "config"),
        path,
    };
    b.config["process"]["terminal"] = json!(false);
    b.config["process"]["consoleSize"] = json!({"height": 21, "width": 77});
    b.args(&["sleep", "1000"]);
    let id = ctx.id("c");
    ctx.run_detached(&id, &b, &[]).assert_ok("rootless run -d");
    let sock = ConsoleSocket::bind(&ctx.dir.join("sock"));
    // The unprivileged runtime must be allowed to connect.
    chown(&sock.path, UNPRIV_UID, UNPRIV_GID);
    let mut c = ctx.cmd();
    c.args([
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        sock.arg(),
        &id,
    ])
    .args([
        "sh",
        "-c",
        "tty; echo size $(stty size); id -u; test -t 2 && echo err-tty",
    ]);
    ctx.exec_detached(&mut c, &format!("{id}-exec"), None)
        .assert_ok("rootless exec --tty");
    let (_, mut term) = sock.master();
    let text = term.read_to_end();
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    assert!(text.contains("size 21 77\n0\nerr-tty\n"), "{text:?}");
    ctx.rt(&["delete", "--force", &id])
        .assert_ok("rootless delete");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// The foreground relay
// ---------------------------------------------------------------------------

/// The host pid of a process of the container running `argv` (NUL-joined
/// command line), once it exists.
fn wait_for_process(ctx: &Ctx, id: &str, argv: &str) -> i32 {
    poll(POLL_TIMEOUT, &format!("a process {argv:?}"), || {
        ps_json(ctx, id).into_iter().find(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == argv)
                .unwrap_or(false)
        })
    })
}

#[test]
fn foreground_exec_tty_relays_the_callers_terminal() {
    use rustix::termios::LocalModes;
    let ctx = Ctx::new("xtty-fg");
    let (id, init) = running(&ctx, |_| {});
    let (master, peer) = pty_pair();
    set_size(&peer, 24, 80);
    let cooked = lflags(&peer);
    assert!(cooked.contains(LocalModes::ICANON | LocalModes::ECHO));
    let mut c = ctx.cmd();
    c.args(["exec", "--tty", &id, "sh"]);
    let mut child = spawn_on_terminal(c, &peer);
    let mut term = Term::new(master);
    // An interactive shell: prompt, commands, output.
    term.write("echo $((6*7))\n");
    term.read_until("42\n");
    // The caller's terminal is raw while the process runs: keys go to the
    // container's terminal, which edits lines and echoes.
    let raw = lflags(&peer);
    assert!(
        !raw.intersects(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG),
        "not raw: {raw:?}"
    );
    // The pty has the caller's size (not consoleSize) and follows it.
    term.write("stty size\n");
    term.read_until("24 80\n");
    set_size(&peer, 40, 100);
    term.poke_until("stty size\n", "40 100\n");
    // ^C reaches the container's terminal: it interrupts the foreground
    // job there, not the runtime.
    term.write("sleep 100\n");
    let sleeper = wait_for_process(&ctx, &id, "sleep 100");
    term.write("\x03");
    wait_pid_dead(sleeper);
    term.write("echo int-$((1+1))\n");
    term.read_until("int-2\n");
    term.write("tty; exit 7\n");
    let out = term.read_until("/dev/pts/");
    assert!(!out.contains("not a tty"), "{out:?}");
    let status = wait_child(&mut child, CMD_TIMEOUT, "exec --tty on a terminal");
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(status.code(), Some(7), "exit code; stderr: {err}");
    // The caller's terminal is as it was; the container runs on.
    assert_eq!(lflags(&peer), cooked, "terminal settings not restored");
    assert_eq!(ps_json(&ctx, &id), BTreeSet::from([init]));
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn foreground_exec_tty_with_pipes_relays_bytes() {
    if runtime_is_runc() {
        // runc 1.1 needs a terminal among its stdio or /dev/tty:
        // "open /dev/tty: no such device or address".
        skip("a foreground terminal without a caller's terminal");
        return;
    }
    let ctx = Ctx::new("xtty-pipes");
    let (id, _) = running(&ctx, |_| {});
    let mut c = ctx.cmd();
    c.args(["exec", "-t", &id, "sh", "-c"])
        .arg("read line; echo got:$line; stty size; tty; exit 3");
    let out = exec_input(&mut c, Some(b"through a pipe\n"), CMD_TIMEOUT);
    assert_eq!(out.code(), Some(3), "{}", out.stderr);
    let text = out.stdout.replace('\r', "");
    assert!(text.contains("got:through a pipe\n"), "{text:?}");
    // No caller's terminal to copy the size from: consoleSize stays.
    assert!(text.contains("33 111\n/dev/pts/"), "{text:?}");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn foreground_exec_tty_returns_when_the_process_exits() {
    let ctx = Ctx::new("xtty-bg");
    let (id, init) = running(&ctx, |_| {});
    let (master, peer) = pty_pair();
    // A child that keeps the terminal (and ignores the hangup when its
    // session leader exits) does not keep exec waiting.
    let mut c = ctx.cmd();
    c.args(["exec", "--tty", &id, "sh", "-c"])
        .arg("trap '' HUP; sleep 60 & echo bye; exit 4");
    let started = std::time::Instant::now();
    let mut child = spawn_on_terminal(c, &peer);
    let mut term = Term::new(master);
    term.read_until("bye\n");
    let status = wait_child(&mut child, CMD_TIMEOUT, "exec --tty");
    assert_eq!(status.code(), Some(4));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let left = ps_json(&ctx, &id);
    assert!(
        left.contains(&init) && left.len() == 2,
        "the background sleep: {left:?}"
    );
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn foreground_exec_tty_that_fails_restores_the_terminal() {
    if runtime_is_runc() {
        // runc 1.1.5 sometimes never exits after a failed `exec -t`
        // (blocked in a futex; 1 run in 40 with two busy CPUs).
        skip("runc may hang after a failed exec --tty");
        return;
    }
    let ctx = Ctx::new("xtty-fail");
    let (id, init) = running(&ctx, |_| {});
    let (master, peer) = pty_pair();
    let cooked = lflags(&peer);
    // Fails after the relay started (the pty is made before the cwd is
    // entered): the error is reported, the terminal restored.
    let mut c = ctx.cmd();
    c.args(["exec", "--tty", "--cwd", "/no/such/dir", &id, "true"]);
    let mut child = spawn_on_terminal(c, &peer);
    let _term = Term::new(master);
    let status = wait_child(&mut child, CMD_TIMEOUT, "exec --tty --cwd /no/such/dir");
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(status.code(), Some(255), "{err}");
    assert!(err.contains("/no/such/dir"), "{err}");
    assert_eq!(lflags(&peer), cooked, "terminal settings not restored");
    assert_eq!(ps_json(&ctx, &id), BTreeSet::from([init]));
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------

#[test]
fn exec_tty_flag_rules_and_a_missing_socket() {
    let ctx = Ctx::new("xtty-rules");
    let (id, init) = running(&ctx, |_| {});
    let sock = ConsoleSocket::bind(&ctx.dir.join("s"));
    let missing = ctx.dir.join("no-such.sock");
    let missing = missing.to_str().unwrap();
    // (flags, what a rootcell error must mention)
    let cases: &[(&[&str], &str)] = &[
        // A detached terminal needs somewhere to go.
        (&["--tty", "--detach"], "--console-socket is required"),
        (&["--tty", "--detach", "--console-socket", missing], missing),
        // No terminal to send.
        (&["--detach", "--console-socket", sock.arg()], "--tty"),
        // The foreground relays the terminal itself.
        (&["--tty", "--console-socket", sock.arg()], "--detach"),
    ];
    for (flags, culprit) in cases {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend([id.as_str(), "true"]);
        let out = ctx.rt(&args);
        out.assert_fail(&format!("exec {flags:?}"));
        if !runtime_is_runc() {
            assert!(
                out.stderr.contains(culprit),
                "exec {flags:?}: the error does not mention {culprit:?}:\n{}",
                out.stderr
            );
            assert_eq!(out.code(), Some(255), "exec {flags:?}");
        }
        assert_eq!(ps_json(&ctx, &id), BTreeSet::from([init]), "{flags:?}");
        assert_eq!(
            ctx.leftover_pids(),
            vec![init],
            "exec {flags:?} left a process"
        );
    }
    assert_eq!(ctx.status(&id), "running");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_tty_refuses_a_hostile_ptmx() {
    if runtime_is_runc() {
        // runc opens /dev/ptmx and the peer by its /dev/pts/N name.
        skip("rootcell's /dev/pts/ptmx checks");
        return;
    }
    let ctx = Ctx::new("xtty-ptmx");
    let host_file = ctx.dir.join("host-file");
    write_file(&host_file, "host\n");
    type Plant = fn(&Path, &Path);
    let plants: [(&str, Plant); 3] = [
        ("fifo", |p, _| {
            let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
        }),
        ("symlink-to-host", |p, host| {
            std::os::unix::fs::symlink(host, p).unwrap()
        }),
        ("regular-file", |p, _| write_file(p, "")),
    ];
    for (name, plant) in plants {
        // `/dev` is the rootfs's own directory, without a devpts: the
        // container's files decide what /dev/pts/ptmx is.
        let mut rootfs = PathBuf::new();
        let (id, init) = running(&ctx, |b| {
            b.remove_mount("/dev").remove_mount("/dev/pts");
            rootfs = b.rootfs();
        });
        fs::create_dir_all(rootfs.join("dev/pts")).unwrap();
        plant(&rootfs.join("dev/pts/ptmx"), &host_file);
        let sock = ConsoleSocket::bind(&ctx.dir.join(name));
        let (out, _) = exec_to_socket(&ctx, &sock, &["--tty"], &id, &["true"]);
        out.assert_fail(name);
        assert!(
            out.stderr.contains("/dev/pts/ptmx") && out.stderr.contains("process.terminal"),
            "{name}: {}",
            out.stderr
        );
        assert_eq!(out.code(), Some(255), "{name}");
        assert!(matches!(sock.receive(), Received::Closed), "{name}");
        assert_eq!(read_file(&host_file), "host\n");
        assert_eq!(ps_json(&ctx, &id), BTreeSet::from([init]), "{name}");
        ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
        ctx.assert_clean();
    }
}
