//! The runtime's own binary and CVE-2019-5736, when it is installed
//! immutable (`chattr +i`, as `scripts/setup` installs it): rootcell then
//! runs it as it is, without a re-exec, for a container none of whose
//! processes can clear the flag, and re-executes from a read-only image for
//! one that can (`plan::binary`). The other half, a writable binary always
//! re-executed, is `attacks.rs::runtime_binary_cannot_be_rewritten_through_proc_exe`.
//!
//! Each test works on a private immutable copy of the runtime; what a
//! container does to it is done by a small static probe that tries what an
//! attacker holding the file would: open it for writing, and clear the
//! immutable flag (`FS_IOC_SETFLAGS`, which needs `CAP_LINUX_IMMUTABLE` in
//! the initial user namespace).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use common::*;

/// `probe PATH`: prints `open-write E` and `clear-flag E` (E = 0 or the
/// errno); a flag it managed to clear is set again at once.
const PROBE: &str = r#"
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int w = open(argv[1], O_WRONLY);
    printf("open-write %d\n", w < 0 ? errno : 0);
    int fd = open(argv[1], O_RDONLY);
    int flags = 0;
    if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
        printf("getflags %d\n", errno);
        return 1;
    }
    int cleared = flags & ~FS_IMMUTABLE_FL;
    int r = ioctl(fd, FS_IOC_SETFLAGS, &cleared);
    printf("clear-flag %d\n", r < 0 ? errno : 0);
    if (r == 0)
        ioctl(fd, FS_IOC_SETFLAGS, &flags);
    return 0;
}
"#;

/// A private copy of the runtime, immutable while it lives: the flag is
/// cleared on drop so the test's temp dir can go.
struct ImmutableCopy {
    path: PathBuf,
}

impl ImmutableCopy {
    /// None (the test skips) where the filesystem has no immutable flag.
    fn new(ctx: &Ctx) -> Option<ImmutableCopy> {
        let dir = ctx.dir.join("bin");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(runtime_name());
        fs::copy(runtime_path(), &path).expect("copy runtime binary");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(ImmutableCopy { path })
    }

    fn is_immutable(&self) -> bool {
        let out = Command::new("lsattr").arg(&self.path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .next()
            .is_some_and(|attrs| attrs.contains('i'))
    }
}

impl Drop for ImmutableCopy {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.path).status();
    }
}

/// A context running the immutable copy, and a bundle whose process probes
/// it through a read-write bind of its directory on `/rt`. None: skipped.
fn setup(name: &str) -> Option<(Ctx, ImmutableCopy, Bundle)> {
    let mut ctx = Ctx::new(name);
    if runtime_is_runc() {
        skip("rootcell's own install rule (runc always copies itself)");
        return None;
    }
    let Some(copy) = ImmutableCopy::new(&ctx) else {
        skip("the test directory's filesystem has no immutable flag (chattr +i failed)");
        return None;
    };
    ctx.bin = copy.path.clone();
    let mut b = ctx.bundle();
    if build_static_c(&ctx.dir, PROBE, &b.rootfs().join("bin/probe")).is_none() {
        skip("no working `gcc -static` to build the probe");
        return None;
    }
    b.bind_mount(copy.path.parent().unwrap(), "/rt", false);
    b.args(&["/bin/probe", &format!("/rt/{}", runtime_name())]);
    Some((ctx, copy, b))
}

/// What `rootcell plan` says of the runtime binary for `b`.
fn plan_line(ctx: &Ctx, b: &Bundle) -> String {
    b.save();
    let out = ctx.rt(&["plan", &b.path.to_string_lossy()]);
    out.assert_ok("plan");
    out.stdout
        .lines()
        .find(|l| l.starts_with("runtime binary:"))
        .unwrap_or_else(|| panic!("no runtime binary line in the plan:\n{}", out.stdout))
        .to_owned()
}

/// Creates `b`, returns what init (waiting for `start`) runs from, starts
/// it and returns its output once the probe is done.
fn create_and_probe(ctx: &Ctx, id: &str, b: &Bundle) -> (String, String) {
    ctx.create(id, b, &[]).assert_ok("create");
    let exe = readlink(format!("/proc/{}/exe", ctx.pid(id)));
    ctx.rt(&["start", id]).assert_ok("start");
    let out_file = ctx.stdout_path(id);
    let report = poll(
        std::time::Duration::from_secs(20),
        "the probe's report",
        || {
            let r = read_file(&out_file);
            r.contains("clear-flag").then_some(r)
        },
    );
    ctx.rt(&["delete", "--force", id]).assert_ok("delete");
    (exe, report)
}

/// An immutable binary and `runc spec`'s capabilities: no re-exec (init
/// runs the installed file itself), and the container can neither write the
/// file nor clear its flag.
#[test]
fn an_immutable_binary_is_run_as_is_and_the_container_cannot_change_it() {
    let Some((ctx, copy, b)) = setup("rbin-keep") else {
        return;
    };
    let before = fs::read(&copy.path).unwrap();
    assert!(
        plan_line(&ctx, &b).contains("immutable, run as is"),
        "{}",
        plan_line(&ctx, &b)
    );
    let (exe, report) = create_and_probe(&ctx, &ctx.id("c"), &b);
    assert_eq!(
        exe,
        copy.path.to_string_lossy(),
        "init should run the installed binary itself (no re-exec)"
    );
    assert!(
        report.contains(&format!("open-write {}", libc::EPERM)),
        "{report}"
    );
    assert!(
        report.contains(&format!("clear-flag {}", libc::EPERM)),
        "{report}"
    );
    assert!(copy.is_immutable(), "the flag is gone");
    assert!(
        fs::read(&copy.path).unwrap() == before,
        "the binary changed"
    );
    ctx.assert_clean();
}

/// A container whose processes hold `CAP_LINUX_IMMUTABLE` could clear the
/// flag (the probe shows it can): the runtime re-executes from a read-only
/// image first, so init does not run the installed file.
#[test]
fn a_container_that_can_clear_the_flag_gets_a_read_only_image() {
    let Some((ctx, copy, mut b)) = setup("rbin-reexec") else {
        return;
    };
    for set in ["bounding", "effective", "permitted"] {
        b.process()["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push("CAP_LINUX_IMMUTABLE".into());
    }
    let line = plan_line(&ctx, &b);
    assert!(
        line.contains("re-executed from a read-only image"),
        "{line}"
    );
    let (exe, report) = create_and_probe(&ctx, &ctx.id("c"), &b);
    assert_ne!(
        exe,
        copy.path.to_string_lossy(),
        "init runs the installed binary: no re-exec"
    );
    // Why: this container can clear the flag (the probe sets it again).
    assert!(report.contains("clear-flag 0"), "{report}");
    assert!(copy.is_immutable(), "the flag is gone");
    ctx.assert_clean();
}

/// `exec` into a container without a user namespace re-executes (a process
/// an earlier `exec --cap` started may hold `CAP_LINUX_IMMUTABLE`); into
/// one with a user namespace it runs the immutable binary as is.
#[test]
fn exec_re_executes_unless_the_container_has_a_user_namespace() {
    let Some((ctx, _copy, mut b)) = setup("rbin-exec") else {
        return;
    };
    let reexec_said = "re-executing from a read-only image of the binary";
    for userns in [false, true] {
        if userns {
            b.set_namespace("user", None);
            b.linux()["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            b.linux()["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            b.remove_mount("/sys/fs/cgroup");
            b.remove_mount("/rt");
        }
        b.args(&["sleep", "30"]);
        let id = ctx.id(if userns { "userns" } else { "plain" });
        ctx.create(&id, &b, &[]).assert_ok("create");
        ctx.rt(&["start", &id]).assert_ok("start");
        let log = ctx.dir.join(format!("exec-{userns}.log"));
        ctx.rt(&[
            "--debug",
            "--log",
            &log.to_string_lossy(),
            "exec",
            &id,
            "true",
        ])
        .assert_ok("exec");
        let logged = read_file(&log);
        assert_eq!(
            logged.contains(reexec_said),
            !userns,
            "user namespace {userns}: {logged}"
        );
        ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    }
    ctx.assert_clean();
}

/// `exec --tty` with a console socket, from an immutable binary that
/// re-executes for exec: the one connection the socket sees carries the
/// pty master. Connected before the re-exec, as it once was, the
/// connection of the image that re-executed closed empty, and a console
/// socket that takes one connection (runc's protocol, the test's) had no
/// master.
#[test]
fn exec_tty_re_executes_before_it_connects_to_the_console_socket() {
    use common::console::ConsoleSocket;
    let Some((ctx, _copy, mut b)) = setup("rbin-tty") else {
        return;
    };
    b.args(&["sleep", "30"]);
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("create");
    ctx.rt(&["start", &id]).assert_ok("start");
    let sock = ConsoleSocket::bind(&ctx.dir.join("sock"));
    let log = ctx.dir.join("exec.log");
    let mut c = ctx.cmd();
    c.arg("--debug")
        .arg("--log")
        .arg(&log)
        .args(["exec", "--tty", "--detach", "--console-socket", sock.arg()])
        .args([&id, "sh", "-c", "echo hello-from-the-tty; sleep 1"]);
    ctx.exec_detached(&mut c, &format!("{id}-exec"), None)
        .assert_ok("exec --tty --detach --console-socket");
    assert!(
        read_file(&log).contains("re-executing from a read-only image of the binary"),
        "the exec did not re-execute: {}",
        read_file(&log)
    );
    let (_, mut term) = sock.master();
    term.read_until("hello-from-the-tty");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}
