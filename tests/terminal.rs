//! `process.terminal`: the pty handed to a `--console-socket` listener
//! (create, run --detach), the terminal relay of a foreground `run`, the
//! flag rules runc has, and hostile `/dev/pts/ptmx` and `/dev/console` in
//! the rootfs.

mod common;

use common::console::{
    lflags, pty_pair, set_size, spawn_on_terminal, ConsoleSocket, Received, Term,
};
use common::*;
use serde_json::json;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// A bundle with a terminal of 33 rows and 111 columns.
fn tty_bundle(ctx: &Ctx) -> Bundle {
    let mut b = ctx.bundle();
    b.process()["terminal"] = json!(true);
    b.process()["consoleSize"] = json!({"height": 33, "width": 111});
    b
}

/// create with a console socket, start, and everything the container
/// wrote to its terminal until it exited; then delete.
#[track_caller]
fn output_via_console_socket(ctx: &Ctx, b: &Bundle, name: &str) -> String {
    let sock = ConsoleSocket::bind(&ctx.dir.join(name));
    let id = ctx.id(name);
    ctx.create(&id, b, &["--console-socket", sock.arg()])
        .assert_ok("create --console-socket");
    let (_, mut term) = sock.master();
    ctx.rt(&["start", &id]).assert_ok("start");
    let text = term.read_to_end();
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    text
}

/// (major, minor) of a device number.
fn major_minor(rdev: u64) -> (u64, u64) {
    (libc::major(rdev) as u64, libc::minor(rdev) as u64)
}

#[test]
fn console_socket_receives_the_master_and_stdio_is_the_pty() {
    let ctx = Ctx::new("tty-sock");
    let mut b = tty_bundle(&ctx);
    b.sh(
        "tty; for fd in 0 1 2; do test -t $fd && echo fd$fd-is-a-tty; done; stty size; \
         stat -c 'console %t:%T' /dev/console; stat -c 'tty %t:%T' $(tty); \
         read line; echo got:$line",
    );
    let sock = ConsoleSocket::bind(&ctx.dir);
    let id = ctx.id("t");
    ctx.create(&id, &b, &["--console-socket", sock.arg()])
        .assert_ok("create --console-socket");
    // runc's protocol: one message, the data is the master's name.
    let (name, mut term) = sock.master();
    assert_eq!(name, "/dev/ptmx", "message data with the master");
    // It is a pty master: it has a pty number.
    let ptn = rustix::pty::ptsname(&term.fd, Vec::new()).expect("TIOCGPTN on the master");
    assert!(ptn.to_bytes().starts_with(b"/dev/pts/"), "{ptn:?}");
    ctx.rt(&["start", &id]).assert_ok("start");
    let out = term.read_until("tty ");
    let out = out + &term.read_until("\n");
    assert!(out.starts_with("/dev/pts/"), "tty: {out:?}");
    for fd in 0..3 {
        assert!(out.contains(&format!("fd{fd}-is-a-tty")), "{out:?}");
    }
    assert!(out.contains("\n33 111\n"), "consoleSize: {out:?}");
    // /dev/console is the very pty.
    let console = out.lines().find_map(|l| l.strip_prefix("console "));
    let tty = out.lines().find_map(|l| l.strip_prefix("tty "));
    assert!(console.is_some() && console == tty, "{out:?}");
    // Our input reaches the process; its output comes back.
    term.write("hello from the test\n");
    term.read_until("got:hello from the test\n");
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn master_never_reaches_the_container() {
    let ctx = Ctx::new("tty-master");
    let mut b = tty_bundle(&ctx);
    b.sh("read line; ls -l /proc/self/fd; echo done");
    let sock = ConsoleSocket::bind(&ctx.dir);
    let id = ctx.id("m");
    ctx.create(&id, &b, &["--console-socket", sock.arg()])
        .assert_ok("create --console-socket");
    let (_, mut term) = sock.master();
    // Before and after exec, no fd of the container's process is a pty
    // master (the devpts multiplexer, 5:2); 0, 1 and 2 are the peer.
    let check = |when: &str| {
        let pid = ctx.pid(&id);
        let mut stdio = 0;
        for entry in fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
            let Ok(md) = fs::metadata(entry.path()) else {
                continue;
            };
            let fd: i32 = entry.file_name().to_string_lossy().parse().unwrap();
            let is_char = md.file_type().is_char_device();
            assert!(
                !(is_char && major_minor(md.rdev()) == (5, 2)),
                "{when}: fd {fd} of the container's process is a pty master"
            );
            if fd < 3 {
                let (major, _) = major_minor(md.rdev());
                assert!(
                    is_char && (136..=143).contains(&major),
                    "{when}: fd {fd} is not a pty peer"
                );
                stdio += 1;
            }
        }
        assert_eq!(stdio, 3, "{when}: stdio");
    };
    check("created");
    ctx.rt(&["start", &id]).assert_ok("start");
    check("running");
    term.write("go\n");
    let out = term.read_until("done\n");
    assert!(!out.contains("ptmx"), "{out}");
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn run_detach_with_console_socket() {
    let ctx = Ctx::new("tty-detach");
    let mut b = tty_bundle(&ctx);
    b.sh("stty size; tty");
    let sock = ConsoleSocket::bind(&ctx.dir);
    let id = ctx.id("d");
    ctx.run_detached(&id, &b, &["--console-socket", sock.arg()])
        .assert_ok("run --detach --console-socket");
    let (_, mut term) = sock.master();
    let out = term.read_to_end();
    assert!(out.contains("33 111\n/dev/pts/"), "{out:?}");
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn the_user_owns_its_terminal() {
    let ctx = Ctx::new("tty-owner");
    let mut b = tty_bundle(&ctx);
    b.process()["user"] = json!({"uid": 1000, "gid": 1000});
    b.sh("stat -c 'owner %u' $(tty); id -u");
    let out = output_via_console_socket(&ctx, &b, "u");
    assert!(out.contains("owner 1000\n1000\n"), "{out:?}");
    ctx.assert_clean();
}

#[test]
fn foreground_run_relays_the_callers_terminal() {
    use rustix::termios::LocalModes;
    let ctx = Ctx::new("tty-fg");
    let mut b = tty_bundle(&ctx);
    b.args(&["sh"]);
    let (master, peer) = pty_pair();
    set_size(&peer, 24, 80);
    let cooked = lflags(&peer);
    assert!(cooked.contains(LocalModes::ICANON | LocalModes::ECHO));
    let id = ctx.id("fg");
    let mut child = spawn_on_terminal(ctx.run_cmd(&id, &b, &[]), &peer);
    let mut term = Term::new(master);
    // An interactive shell: prompt, commands, output.
    term.write("echo $((6*7))\n");
    term.read_until("42\n");
    // The caller's terminal is raw while the container runs: keys go to
    // the container's terminal, which edits lines and echoes.
    let raw = lflags(&peer);
    assert!(
        !raw.intersects(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG),
        "not raw: {raw:?}"
    );
    // The container's terminal took the caller's size, not consoleSize...
    term.write("stty size\n");
    term.read_until("24 80\n");
    // ...and follows it: the resize SIGWINCHes the runtime, which resizes.
    set_size(&peer, 40, 100);
    term.poke_until("stty size\n", "40 100\n");
    term.write("tty; stat -c %t:%T /dev/console\n");
    let out = term.read_until("/dev/pts/");
    assert!(!out.contains("not a tty"), "{out:?}");
    term.write("exit 7\n");
    let status = wait_child(&mut child, CMD_TIMEOUT, "run on a terminal");
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(status.code(), Some(7), "exit code; stderr: {err}");
    // The caller's terminal is as it was.
    assert_eq!(lflags(&peer), cooked, "terminal settings not restored");
    ctx.assert_clean();
}

#[test]
fn foreground_run_with_pipes_relays_bytes() {
    if runtime_is_runc() {
        // runc 1.1 needs a terminal among its stdio or /dev/tty:
        // "open /dev/tty: no such device or address".
        skip("a foreground terminal without a caller's terminal");
        return;
    }
    let ctx = Ctx::new("tty-pipes");
    let mut b = tty_bundle(&ctx);
    b.sh("read line; echo got:$line; stty size; tty; exit 3");
    let id = ctx.id("p");
    let out = ctx.run_with(&id, &b, &[], Some(b"through a pipe\n"));
    assert_eq!(out.code(), Some(3), "{}", out.stderr);
    let text = out.stdout.replace('\r', "");
    assert!(text.contains("got:through a pipe\n"), "{text:?}");
    // No caller's terminal to copy the size from: consoleSize stays.
    assert!(text.contains("33 111\n/dev/pts/"), "{text:?}");
    // The end of stdin reaches the container as ^D: `cat` ends.
    b.args(&["cat"]);
    let out = ctx.run_with(&ctx.id("eof"), &b, &[], Some(b"one line\n"));
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let text = out.stdout.replace('\r', "");
    // The terminal's echo, then cat's copy.
    assert!(text.starts_with("one line\none line\n"), "{text:?}");
    ctx.assert_clean();
}

#[test]
fn terminal_needs_a_console_socket_when_detached() {
    let ctx = Ctx::new("tty-nosock");
    let b = tty_bundle(&ctx);
    let id = ctx.id("c");
    let out = ctx.create(&id, &b, &[]);
    out.assert_fail("create with a terminal and no --console-socket");
    let out2 = ctx.run_detached(&ctx.id("d"), &b, &[]);
    out2.assert_fail("run --detach with a terminal and no --console-socket");
    if !runtime_is_runc() {
        for o in [&out, &out2] {
            assert!(
                o.stderr
                    .contains("--console-socket is required when process.terminal is set"),
                "{}",
                o.stderr
            );
        }
    }
    ctx.assert_clean();
}

#[test]
fn console_socket_needs_a_detached_terminal() {
    let ctx = Ctx::new("tty-badsock");
    let mut b = tty_bundle(&ctx);
    let sock = ConsoleSocket::bind(&ctx.dir);
    // A foreground run relays the terminal itself.
    let out = ctx.run_with(&ctx.id("fg"), &b, &["--console-socket", sock.arg()], None);
    out.assert_fail("foreground run with --console-socket");
    // Without a terminal there is nothing to send.
    b.process()["terminal"] = json!(false);
    let out2 = ctx.create(&ctx.id("c"), &b, &["--console-socket", sock.arg()]);
    out2.assert_fail("create --console-socket without a terminal");
    if !runtime_is_runc() {
        assert!(out.stderr.contains("--console-socket"), "{}", out.stderr);
        assert!(
            out2.stderr.contains("--console-socket") && out2.stderr.contains("process.terminal"),
            "{}",
            out2.stderr
        );
    }
    ctx.assert_clean();
}

#[test]
fn missing_console_socket_is_a_clear_error() {
    let ctx = Ctx::new("tty-missing");
    let b = tty_bundle(&ctx);
    let path = ctx.dir.join("no-such.sock");
    let out = ctx.create(
        &ctx.id("c"),
        &b,
        &["--console-socket", path.to_str().unwrap()],
    );
    out.assert_fail("create with a missing console socket");
    if !runtime_is_runc() {
        assert!(
            out.stderr.contains("--console-socket") && out.stderr.contains("no-such.sock"),
            "{}",
            out.stderr
        );
    }
    ctx.assert_clean();
}

#[test]
fn failed_setup_closes_the_console_socket() {
    let ctx = Ctx::new("tty-fail");
    let mut b = tty_bundle(&ctx);
    // Fails before the terminal exists: the listener sees the connection
    // close, with no master, and nothing is left.
    b.bind_mount(&ctx.dir.join("no-such-source"), "/mnt", false);
    let sock = ConsoleSocket::bind(&ctx.dir);
    let out = ctx.create(&ctx.id("c"), &b, &["--console-socket", sock.arg()]);
    out.assert_fail("create with a missing bind source");
    assert!(matches!(sock.receive(), Received::Closed));
    ctx.assert_clean();
}

/// A bundle whose `/dev` is the rootfs's own directory (no tmpfs), so the
/// test can plant things there; `/dev/pts` stays a devpts unless
/// `devpts` is false.
fn bundle_with_rootfs_dev(ctx: &Ctx, devpts: bool) -> Bundle {
    let mut b = tty_bundle(ctx);
    b.remove_mount("/dev");
    if !devpts {
        b.remove_mount("/dev/pts");
    }
    fs::create_dir_all(b.rootfs().join("dev/pts")).unwrap();
    b
}

#[test]
fn hostile_ptmx_is_refused() {
    if runtime_is_runc() {
        // runc opens /dev/ptmx (a link to pts/ptmx it makes itself).
        skip("rootcell's /dev/pts/ptmx checks");
        return;
    }
    let ctx = Ctx::new("tty-ptmx");
    let host_file = ctx.dir.join("host-file");
    write_file(&host_file, "host\n");
    type Plant = fn(&std::path::Path, &std::path::Path);
    let plants: [(&str, Plant); 5] = [
        ("fifo", |p, _| {
            let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
        }),
        ("symlink-to-null", |p, _| {
            std::os::unix::fs::symlink("../null", p).unwrap()
        }),
        ("symlink-to-host", |p, host| {
            std::os::unix::fs::symlink(host, p).unwrap()
        }),
        ("regular-file", |p, _| write_file(p, "")),
        ("char-5-2-not-on-devpts", |p, _| {
            let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            let dev = libc::makedev(5, 2);
            assert_eq!(
                unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, dev) },
                0
            );
        }),
    ];
    for (name, plant) in plants {
        let b = bundle_with_rootfs_dev(&ctx, false);
        plant(&b.rootfs().join("dev/pts/ptmx"), &host_file);
        let sock = ConsoleSocket::bind(&b.path);
        let out = ctx.create(&ctx.id(name), &b, &["--console-socket", sock.arg()]);
        out.assert_fail(name);
        assert!(
            out.stderr.contains("/dev/pts/ptmx") && out.stderr.contains("process.terminal"),
            "{name}: {}",
            out.stderr
        );
        assert!(matches!(sock.receive(), Received::Closed), "{name}");
        assert_eq!(read_file(&host_file), "host\n");
        ctx.assert_clean();
    }
}

#[test]
fn dev_console_symlink_is_replaced_not_followed() {
    if runtime_is_runc() {
        // runc 1.1 follows the link and mounts its pty on /etc/target (a
        // `cat /etc/target` then waits for terminal input).
        skip("/dev/console symlink replaced");
        return;
    }
    let ctx = Ctx::new("tty-console");
    let mut b = bundle_with_rootfs_dev(&ctx, true);
    write_file(&b.rootfs().join("etc/target"), "target\n");
    std::os::unix::fs::symlink("/etc/target", b.rootfs().join("dev/console")).unwrap();
    b.sh("cat /etc/target; stat -c 'console %t:%T' /dev/console; stat -c 'tty %t:%T' $(tty)");
    let out = output_via_console_socket(&ctx, &b, "l");
    assert!(out.contains("target\n"), "{out:?}");
    let console = out.lines().find_map(|l| l.strip_prefix("console "));
    let tty = out.lines().find_map(|l| l.strip_prefix("tty "));
    assert!(console.is_some() && console == tty, "{out:?}");
    let md = fs::symlink_metadata(b.rootfs().join("dev/console")).unwrap();
    assert!(md.file_type().is_file(), "the link was not replaced");
    assert_eq!(read_file(&b.rootfs().join("etc/target")), "target\n");
    ctx.assert_clean();
}

#[test]
fn terminal_in_a_user_namespace() {
    let ctx = Ctx::new("tty-userns");
    let mut b = tty_bundle(&ctx);
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // As in namespaces.rs: not what this test is about.
    b.remove_mount("/sys/fs/cgroup");
    b.sh("tty; stty size; stat -c 'console %t:%T' /dev/console; stat -c 'tty %t:%T' $(tty)");
    let out = output_via_console_socket(&ctx, &b, "u");
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert!(out.contains("\n33 111\n"), "{out:?}");
    let console = out.lines().find_map(|l| l.strip_prefix("console "));
    let tty = out.lines().find_map(|l| l.strip_prefix("tty "));
    assert!(console.is_some() && console == tty, "{out:?}");
    ctx.assert_clean();
}
