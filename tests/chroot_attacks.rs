//! Attacks on chroot isolation (`rootcell --isolation chroot`): the
//! container's process tries to reach the host's root through an fd left
//! open, through `/proc/<pid>/root` and `/proc/<pid>/cwd` of a host
//! process, through the host's mounts that stay in the mount namespace
//! under the moved root, through a masked path, and by remounting a
//! read-only bind. Each test runs real containers and checks that the
//! attack failed and that the host is unchanged. (`..` out of the chroot
//! and the classic chroot escape are in chroot_isolation.rs.)
//!
//! Three places are attacked: as real root with the default capabilities,
//! as real root with CAP_SYS_ADMIN (and CAP_SYS_CHROOT), and with the
//! runtime in a user namespace of its own (`unshare --user
//! --map-root-user`), where the process has CAP_SYS_ADMIN in its user
//! namespace. rootcell only: runc has no isolation modes.

mod common;

use common::chroot::*;
use common::console::ConsoleSocket;
use common::*;
use serde_json::json;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The test's own mount table, sorted, less the host tmpfs that
/// `host_mounts_under_the_moved_root_stay_unreachable` mounts while other
/// tests run in the same process.
fn mount_table() -> Vec<String> {
    let mut v: Vec<String> = read_file(Path::new("/proc/self/mountinfo"))
        .lines()
        .filter(|l| !l.contains(HOST_TMPFS))
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// `rootcell --isolation MODE run` as root on the host.
fn run_as_root(ctx: &Ctx, mode: &str, id: &str, b: &Bundle) -> Out {
    b.save();
    let mut c = ctx.cmd();
    c.args(["--isolation", mode, "run", "--bundle"])
        .arg(&b.path)
        .arg(id);
    exec(&mut c, CMD_TIMEOUT)
}

/// Adds capabilities to the bounding, effective and permitted sets.
fn add_caps(b: &mut Bundle, caps: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        if let Some(list) = b.process()["capabilities"][set].as_array_mut() {
            for cap in caps {
                list.push(json!(cap));
            }
        }
    }
}

/// The places each attack runs in: (name, runner, bundle maker).
enum Place {
    /// Real root, the default capabilities (no CAP_SYS_ADMIN).
    Root,
    /// Real root with CAP_SYS_ADMIN and CAP_SYS_CHROOT.
    RootSysAdmin,
    /// The runtime in a user namespace of its own; CAP_SYS_ADMIN and
    /// CAP_SYS_CHROOT in it.
    UsernsSysAdmin,
}

impl Place {
    const ALL: [Place; 3] = [Place::Root, Place::RootSysAdmin, Place::UsernsSysAdmin];

    fn name(&self) -> &'static str {
        match self {
            Place::Root => "root",
            Place::RootSysAdmin => "root+CAP_SYS_ADMIN",
            Place::UsernsSysAdmin => "userns+CAP_SYS_ADMIN",
        }
    }

    fn bundle(&self, ctx: &Ctx) -> Bundle {
        let mut b = match self {
            Place::UsernsSysAdmin => userns_bundle(ctx),
            _ => ctx.bundle(),
        };
        if !matches!(self, Place::Root) {
            add_caps(&mut b, &["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"]);
        }
        b
    }

    fn run(&self, ctx: &Ctx, id: &str, b: &Bundle) -> Out {
        match self {
            Place::UsernsSysAdmin => run_in_userns(ctx, "chroot", id, b),
            _ => run_as_root(ctx, "chroot", id, b),
        }
    }
}

/// Builds `src` with `gcc -static` into the rootfs at `/name`; None (and a
/// printed reason) without gcc.
fn compile_into(ctx: &Ctx, b: &Bundle, name: &str, src: &str) -> Option<()> {
    if !command_exists("gcc") {
        skip("gcc is not installed (needed to build the attack program)");
        return None;
    }
    let c = ctx.dir.join(format!("{name}.c"));
    write_file(&c, src);
    let cc = exec(
        Command::new("gcc")
            .args(["-static", "-O", "-o"])
            .arg(b.rootfs().join(name))
            .arg(&c),
        CMD_TIMEOUT,
    );
    if !cc.ok() {
        skip(&format!("gcc -static fails here: {}", cc.stderr.trim()));
        return None;
    }
    Some(())
}

/// A shell loop over the process's fds 0..63: each one listed with its
/// target, and each one `cd`'d into (the shell's own chdir through the
/// magic link, physically: `cd -P`, as fchdir would), then `..` walked up
/// (physically): `ESCAPE-<n>` when the
/// host's `/work` (never in the busybox rootfs) is reached.
const FD_PROBE: &str = r#"
for n in $(seq 0 63); do
  if [ -e /proc/$$/fd/$n ]; then
    echo "fd $n -> $(readlink /proc/$$/fd/$n)"
    if cd -P /proc/$$/fd/$n 2>/dev/null; then
      cd -P ../../../../../../../../../../..
      [ -e work ] && echo "ESCAPE-$n"
      [ -e chroot-marker ] || echo "OUTSIDE-$n"
      cd /
    fi
  fi
done
echo probe-done
"#;

/// The fds the probe listed, with their targets.
fn listed_fds(stdout: &str) -> Vec<(u32, String)> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("fd "))
        .filter_map(|l| {
            let (n, target) = l.split_once(" -> ")?;
            Some((n.parse().ok()?, target.to_owned()))
        })
        .collect()
}

/// Dups `raw` to fd 3 without close-on-exec (async-signal-safe).
fn fd_as_3(raw: i32) -> std::io::Result<()> {
    // SAFETY: dup2 and fcntl on fds this process owns.
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

/// Checks the probe's output: the listed fds are exactly `expected` (the
/// shell's own pipe for `$(readlink …)` aside), none leads out of the
/// container's root.
fn assert_fds(out: &Out, expected: &[u32], what: &str) {
    assert!(out.stdout.contains("probe-done"), "{what}: {}", out.all());
    assert!(!out.stdout.contains("ESCAPE-"), "{what}: {}", out.all());
    assert!(!out.stdout.contains("OUTSIDE-"), "{what}: {}", out.all());
    let fds: Vec<u32> = listed_fds(&out.stdout)
        .into_iter()
        // The command substitution's pipe is the shell's own.
        .filter(|(n, t)| expected.contains(n) || !t.starts_with("pipe:"))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        fds,
        expected,
        "{what}: fds other than stdio and the preserved ones: {}",
        out.all()
    );
}

#[test]
fn no_fd_the_runtime_or_a_hook_opened_reaches_the_process() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-atk-fds");
    let mut b = ctx.bundle();
    write_file(&b.rootfs().join("chroot-marker"), "x\n");
    // Hooks of every kind that runs before the process: their fds must
    // not reach it either.
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
    ] {
        b.add_hook(kind, json!({"path": "/bin/true"}));
    }
    b.sh(FD_PROBE);
    let before = mount_table();

    // Plain run: stdio only.
    let id = ctx.id("plain");
    let out = run_as_root(&ctx, "chroot", &id, &b);
    out.assert_ok("run the fd probe");
    assert_fds(&out, &[0, 1, 2], "chroot run");

    // --preserve-fds 1: the caller's fd 3 (a file: its own choice), and
    // nothing else.
    let data = ctx.dir.join("preserved.txt");
    write_file(&data, "preserved\n");
    let file = std::fs::File::open(&data).unwrap();
    let raw = file.as_raw_fd();
    let id = ctx.id("pres");
    b.save();
    let mut c = ctx.cmd();
    c.args([
        "--isolation",
        "chroot",
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
    ])
    .arg(&b.path)
    .arg(&id);
    // SAFETY: fd_as_3 only calls async-signal-safe functions.
    unsafe {
        c.pre_exec(move || fd_as_3(raw));
    }
    let out = exec(&mut c, CMD_TIMEOUT);
    drop(file);
    out.assert_ok("run --preserve-fds 1");
    assert_fds(&out, &[0, 1, 2, 3], "chroot run --preserve-fds 1");
    assert!(
        out.stdout.contains(&format!("fd 3 -> {}", data.display())),
        "fd 3 is the caller's file: {}",
        out.all()
    );

    // Socket activation (LISTEN_FDS=1, LISTEN_PID the runtime's): fd 3
    // again, and nothing else.
    let file = std::fs::File::open(&data).unwrap();
    let raw = file.as_raw_fd();
    let id = ctx.id("listen");
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --root \"$1\" --isolation chroot run --bundle \"$2\" \"$3\"")
        .arg(&ctx.bin)
        .arg(ctx.state_dir())
        .arg(&b.path)
        .arg(&id);
    // SAFETY: fd_as_3 only calls async-signal-safe functions.
    unsafe {
        c.pre_exec(move || fd_as_3(raw));
    }
    let out = exec(&mut c, CMD_TIMEOUT);
    drop(file);
    out.assert_ok("run with LISTEN_FDS=1");
    assert_fds(&out, &[0, 1, 2, 3], "chroot run with LISTEN_FDS=1");
    assert!(
        out.stdout.contains(&format!("fd 3 -> {}", data.display())),
        "fd 3 is the activated socket (here a file): {}",
        out.all()
    );

    // A terminal through --console-socket: the pty on stdio, no more.
    b.config["process"]["terminal"] = json!(true);
    let sock = ConsoleSocket::bind(&ctx.dir.join("console"));
    let id = ctx.id("tty");
    b.save();
    let mut c = ctx.cmd();
    c.args([
        "--isolation",
        "chroot",
        "run",
        "--console-socket",
        sock.arg(),
        "--detach",
        "--bundle",
    ])
    .arg(&b.path)
    .arg(&id);
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_ok("run --detach --console-socket");
    let (_, mut term) = sock.master();
    let text = term.read_until("probe-done");
    let tty_out = Out {
        stdout: text.replace('\r', ""),
        ..out
    };
    assert_fds(&tty_out, &[0, 1, 2], "chroot run with a terminal");
    assert!(tty_out.stdout.contains("fd 0 -> /dev/pts/"), "{text}");
    poll(POLL_TIMEOUT, "the container to stop", || {
        (ctx.status(&id) == "stopped").then_some(())
    });
    ctx.rt(&["delete", &id]).assert_ok("delete");

    assert_eq!(mount_table(), before, "the host's mount table changed");
    ctx.assert_clean();
}

/// A host process of uid 0 with no capabilities (so the kernel's ptrace
/// check would let a same-uid process without CAP_SYS_PTRACE in the same
/// user namespace read its `/proc/<pid>/root`), its cwd a host directory
/// with a marker file.
struct HostProcess {
    child: std::process::Child,
    marker: PathBuf,
}

impl HostProcess {
    fn start(ctx: &Ctx) -> HostProcess {
        let dir = ctx.dir.join("host-cwd");
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("host-marker");
        write_file(&marker, "HOST-SECRET-CWD\n");
        let child = Command::new("setpriv")
            .args(["--inh-caps=-all", "--bounding-set=-all", "sleep", "120"])
            .current_dir(&dir)
            .spawn()
            .expect("setpriv sleep");
        // Wait until the sleep runs (setpriv has exec'd).
        let pid = child.id();
        poll(POLL_TIMEOUT, "setpriv to exec sleep", || {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .ok()
                .filter(|c| c.trim() == "sleep")
        });
        HostProcess { child, marker }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The script that tries its root and cwd from inside.
    fn probe(&self) -> String {
        let pid = self.pid();
        format!(
            "readlink /proc/{pid}/root; readlink /proc/{pid}/cwd; \
             cat /proc/{pid}/cwd/host-marker; \
             ls /proc/{pid}/root/ | grep -x work && echo ROOT-REACHED; \
             cat /proc/{pid}/root{marker}; \
             cat /proc/1/root{marker}; \
             echo probe-done",
            marker = self.marker.display()
        )
    }

    fn reached(&self, out: &Out) -> bool {
        out.stdout.contains("HOST-SECRET-CWD") || out.stdout.contains("ROOT-REACHED")
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn host_processes_root_and_cwd_stay_out_of_reach() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-atk-procroot");
    let host = HostProcess::start(&ctx);

    // The config's pid namespace is applied: the host's process is not
    // even visible.
    let mut b = ctx.bundle();
    b.sh(&host.probe());
    let id = ctx.id("pidns");
    let out = run_as_root(&ctx, "chroot", &id, &b);
    assert!(out.stdout.contains("probe-done"), "{}", out.all());
    assert!(!host.reached(&out), "chroot, pid namespace: {}", out.all());
    assert!(
        !Path::new(&format!("/proc/{}/root", host.pid())).exists()
            || !out.stdout.contains("/proc/"),
        "{}",
        out.all()
    );

    // With CAP_SYS_ADMIN and CAP_SYS_PTRACE as real root and no pid
    // namespace: the mounts are locked in a user namespace of the
    // container's own, and the kernel's ptrace check needs CAP_SYS_PTRACE
    // over the host's user namespace.
    let mut b = ctx.bundle();
    b.remove_namespace("pid");
    add_caps(&mut b, &["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]);
    b.sh(&host.probe());
    let id = ctx.id("ptrace");
    let out = run_as_root(&ctx, "chroot", &id, &b);
    assert!(out.stdout.contains("probe-done"), "{}", out.all());
    assert!(
        !host.reached(&out),
        "chroot, CAP_SYS_ADMIN+CAP_SYS_PTRACE: {}",
        out.all()
    );

    // The runtime in a user namespace of its own with the pid namespace
    // refused by the kernel (shared, one diagnostic line): the host's
    // processes are visible but out of reach.
    if userns_available() {
        let mut b = userns_bundle(&ctx);
        b.linux()["namespaces"] =
            json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
        b.sh(&host.probe());
        b.save();
        let id = ctx.id("refused");
        let script = format!(
            "echo 0 > /proc/sys/user/max_pid_namespaces || exit 99; exec \"$0\" --root \"$1\" --rootless true --isolation chroot run --bundle \"$2\" {id}"
        );
        let mut c = Command::new("unshare");
        c.args([
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .arg(&ctx.bin)
        .arg(ctx.state_dir())
        .arg(&b.path);
        let out = exec(&mut c, CMD_TIMEOUT);
        if out.code() != Some(99) {
            assert!(out.stdout.contains("probe-done"), "{}", out.all());
            assert!(
                out.stderr
                    .contains("the kernel refused a new pid namespace"),
                "{}",
                out.all()
            );
            assert!(
                out.stdout.contains("Permission denied")
                    || out.stderr.contains("Permission denied"),
                "the host's process is visible (shared pid namespace) but refused: {}",
                out.all()
            );
            assert!(!host.reached(&out), "userns, pid refused: {}", out.all());
        }
    }

    // For comparison: full isolation with the config's pid namespace.
    let mut b = ctx.bundle();
    b.sh(&host.probe());
    let id = ctx.id("oci");
    let out = run_as_root(&ctx, "oci", &id, &b);
    assert!(!host.reached(&out), "full isolation: {}", out.all());
    assert_eq!(read_file(&host.marker), "HOST-SECRET-CWD\n");
    drop(host);
    ctx.assert_clean();
}

#[test]
fn without_a_pid_namespace_chroot_is_as_exposed_as_full_isolation() {
    // The documented rule: a config without a pid namespace, as real root
    // with the default capabilities (no CAP_SYS_ADMIN: no mount locking),
    // shares the host's pid namespace in both modes, and the kernel's
    // ptrace check alone decides whether a host process's root is
    // reachable. Chroot isolation must not be weaker than full isolation.
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-atk-nopid");
    let host = HostProcess::start(&ctx);
    let mut results = Vec::new();
    for mode in ["oci", "chroot"] {
        let mut b = ctx.bundle();
        b.remove_namespace("pid");
        b.sh(&host.probe());
        let id = ctx.id(mode);
        let out = run_as_root(&ctx, mode, &id, &b);
        assert!(out.stdout.contains("probe-done"), "{mode}: {}", out.all());
        eprintln!("{mode} without a pid namespace: {}", out.all());
        results.push((mode, host.reached(&out)));
    }
    assert_eq!(
        results[0].1, results[1].1,
        "chroot and full isolation differ: {results:?}"
    );
    assert_eq!(read_file(&host.marker), "HOST-SECRET-CWD\n");
    drop(host);
    ctx.assert_clean();
}

/// Detaches the root, then `setns` into its own mount namespace (which
/// puts the root at the namespace's root, where the host's old root lies
/// under the moved rootfs), then looks for argv[1], a host directory that
/// does not exist in the container (the test's own directory); also tries
/// to bind `/proc/self/root/..` and to `mount --move` the root.
const MOUNT_ESCAPE_C: &str = r#"
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
int main(int argc, char **argv) {
    const char *marker = argc > 1 ? argv[1] : "/work";
    char bound[4096];
    snprintf(bound, sizeof bound, "/mnt-a%s", marker);
    int ns = open("/proc/self/ns/mnt", O_RDONLY);
    if (ns < 0) { perror("open ns"); return 1; }
    mkdir("/mnt-a", 0755);
    if (mount("/proc/self/root/..", "/mnt-a", NULL, MS_BIND | MS_REC, NULL) == 0) {
        puts("bound /proc/self/root/..");
        if (access(bound, F_OK) == 0) puts("HOST-ROOT-REACHED bind");
    }
    if (mount("/", "/mnt-a", NULL, MS_MOVE, NULL) == 0) puts("moved the root");
    if (umount2("/", MNT_DETACH) == 0) puts("root detached");
    else perror("umount2 /");
    if (setns(ns, CLONE_NEWNS) == 0) puts("setns done");
    else perror("setns");
    if (access(marker, F_OK) == 0) puts("HOST-ROOT-REACHED setns");
    if (chdir("/") == 0 && chdir("../../..") == 0 && access(marker + 1, F_OK) == 0)
        puts("HOST-ROOT-REACHED dotdot");
    puts("escape-done");
    return 0;
}
"#;

/// The source name of the host's tmpfs in the mount test.
const HOST_TMPFS: &str = "hostmnt-rootcell-test";

#[test]
fn host_mounts_under_the_moved_root_stay_unreachable() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-atk-mounts");
    // A mount the host made before the container: a tmpfs in this test's
    // private mount namespace, with a marker.
    let hostmnt = ctx.dir.join("host-mount");
    std::fs::create_dir_all(&hostmnt).unwrap();
    exec(
        Command::new("mount")
            .args(["-t", "tmpfs", HOST_TMPFS])
            .arg(&hostmnt),
        CMD_TIMEOUT,
    )
    .assert_ok("mount a host tmpfs");
    write_file(&hostmnt.join("host-mount-marker"), "HOST-MOUNT\n");
    let before = mount_table();
    for place in Place::ALL {
        if matches!(place, Place::UsernsSysAdmin) && !userns_available() {
            continue;
        }
        let b = place.bundle(&ctx);
        if compile_into(&ctx, &b, "escape", MOUNT_ESCAPE_C).is_none() {
            break;
        }
        // Only the container's mounts are visible, each a path that exists
        // inside; the host's tmpfs is not among them.
        let mut b = b;
        b.sh(&format!(
            "while read id parent dev root mp rest; do [ -e \"$mp\" ] || echo MISSING-$mp; echo mp $mp; done < /proc/self/mountinfo; \
             grep -c hostmnt-rootcell-test /proc/self/mountinfo; \
             /escape '{}'",
            ctx.dir.display()
        ));
        let id = ctx.id("m");
        let out = place.run(&ctx, &id, &b);
        let what = place.name();
        assert!(out.stdout.contains("escape-done"), "{what}: {}", out.all());
        assert!(
            !out.stdout.contains("HOST-ROOT-REACHED"),
            "{what}: {}",
            out.all()
        );
        assert!(!out.stdout.contains("MISSING-"), "{what}: {}", out.all());
        assert!(
            !out.stdout.contains("mp /work")
                && !out.stdout.contains(&ctx.dir.display().to_string()),
            "{what}: a host mount point is listed: {}",
            out.all()
        );
        assert!(
            lines(&out.stdout).contains(&"0".to_string()),
            "{what}: the host's tmpfs is in the container's mountinfo: {}",
            out.all()
        );
        assert!(
            !out.stdout.contains("root detached"),
            "{what}: the root could be unmounted: {}",
            out.all()
        );
        assert_eq!(
            mount_table(),
            before,
            "{what}: the host's mount table changed"
        );
        assert_eq!(
            read_file(&hostmnt.join("host-mount-marker")),
            "HOST-MOUNT\n"
        );
    }
    let _ = exec(Command::new("umount").arg(&hostmnt), CMD_TIMEOUT);
    ctx.assert_clean();
}

#[test]
fn a_masked_path_stays_masked() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-atk-mask");
    for place in Place::ALL {
        if matches!(place, Place::UsernsSysAdmin) && !userns_available() {
            continue;
        }
        let mut b = place.bundle(&ctx);
        write_file(&b.rootfs().join("etc/secret"), "TOP-SECRET-FILE\n");
        std::fs::create_dir_all(b.rootfs().join("srv/hidden")).unwrap();
        write_file(&b.rootfs().join("srv/hidden/f"), "TOP-SECRET-DIR\n");
        b.linux()["maskedPaths"] = json!(["/etc/secret", "/srv/hidden"]);
        b.sh(concat!(
            "umount /etc/secret; umount -l /etc/secret; umount /srv/hidden; ",
            "cat /etc/secret /srv/hidden/f; ",
            "cat /proc/self/root/etc/secret /proc/1/root/etc/secret /proc/self/root/srv/hidden/f; ",
            // A non-recursive bind of the parent shows what lies under
            // its submounts: refused where the masks are locked.
            "mkdir -p /tmp/e /tmp/s; mount --bind /etc /tmp/e && cat /tmp/e/secret; ",
            "mount --bind /srv /tmp/s && cat /tmp/s/hidden/f; ",
            // Binding over the mask only hides it.
            "echo other > /tmp/o; mount --bind /tmp/o /etc/secret; cat /etc/secret; ",
            "echo attack-done"
        ));
        let id = ctx.id("m");
        let out = place.run(&ctx, &id, &b);
        let what = place.name();
        assert!(out.stdout.contains("attack-done"), "{what}: {}", out.all());
        assert!(
            !out.stdout.contains("TOP-SECRET"),
            "{what}: a masked path was read: {}",
            out.all()
        );
        assert_eq!(
            read_file(&b.rootfs().join("etc/secret")),
            "TOP-SECRET-FILE\n"
        );
    }
    ctx.assert_clean();
}

#[test]
fn a_read_only_bind_stays_read_only_and_covers_what_is_under_it() {
    if !rootcell_only() {
        return;
    }
    let ctx = Ctx::new("chroot-atk-robind");
    let data = ctx.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_file(&data.join("file"), "host data\n");
    for place in Place::ALL {
        if matches!(place, Place::UsernsSysAdmin) && !userns_available() {
            continue;
        }
        let mut b = place.bundle(&ctx);
        b.bind_mount(&data, "/data", true);
        // What the rootfs has under the mount point.
        std::fs::create_dir_all(b.rootfs().join("data")).unwrap();
        write_file(&b.rootfs().join("data/under"), "UNDER-THE-BIND\n");
        b.sh(concat!(
            "mount -o remount,rw /data; mount -o remount,rw,bind /data; ",
            "mount -o remount,bind,rw /data /data; ",
            "echo x > /data/new && echo WROTE-HOST; ",
            "umount /data; umount -l /data; cat /data/under; ",
            "mount -o remount,rw /; ",
            "echo attack-done"
        ));
        let id = ctx.id("r");
        let before = mount_table();
        let out = place.run(&ctx, &id, &b);
        let what = place.name();
        assert!(out.stdout.contains("attack-done"), "{what}: {}", out.all());
        assert!(!out.stdout.contains("WROTE-HOST"), "{what}: {}", out.all());
        assert!(
            !out.stdout.contains("UNDER-THE-BIND"),
            "{what}: unmounted: {}",
            out.all()
        );
        assert!(
            !data.join("new").exists(),
            "{what}: the host dir was written"
        );
        assert_eq!(read_file(&data.join("file")), "host data\n");
        assert_eq!(
            mount_table(),
            before,
            "{what}: the host's mount table changed"
        );
    }
    ctx.assert_clean();
}
