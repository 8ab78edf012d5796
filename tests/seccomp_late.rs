//! The seccomp filter is the last thing before `execve` (issue 9, item 1):
//! containers under a Docker-era default profile (`defaultAction`
//! `SCMP_ACT_ERRNO`, only the classic syscalls allowed: no `openat2`,
//! `faccessat2`, `close_range`, `clone3`, `statx`, `pidfd_*`, new mount API)
//! run with and without `noNewPrivileges`, for `run`, `create` + `start`
//! and `exec`, with a terminal and with a startContainer hook; profiles that
//! deny a syscall the runtime itself likes (`getcwd`, `close_range`,
//! `openat2`/`faccessat2`) run too; syscalls newer than the profile get
//! ENOSYS (runc's stub); and the capability sets of the container's
//! process are runc's, although the filter is loaded after the user switch.
//!
//! runc 1.1.5 passes this file too (`ROOTCELL_TEST_RUNTIME=/usr/sbin/runc`).

mod common;

use common::console::ConsoleSocket;
use common::*;
use serde_json::{json, Value};

const DOCKER_ERA: &str = include_str!("fixtures/seccomp/docker-era.json");

fn docker_era() -> Value {
    serde_json::from_str(DOCKER_ERA).expect("the fixture is JSON")
}

fn cap_bits(status: &str, key: &str) -> u64 {
    u64::from_str_radix(status_field(status, key), 16).unwrap()
}

const CAP_KILL: u64 = 1 << 5;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
const CAP_SYS_ADMIN: u64 = 1 << 21;
const CAP_AUDIT_WRITE: u64 = 1 << 29;
/// The default `spec`'s three capabilities (runc's too).
const DEFAULT_CAPS: u64 = CAP_KILL | CAP_NET_BIND_SERVICE | CAP_AUDIT_WRITE;

const SHOW: &str = "grep -E '^(Cap|Seccomp:|NoNewPrivs)' /proc/self/status; echo done";

/// A bundle under the Docker-era profile, as `uid`, with `noNewPrivileges`
/// set to `nnp`.
fn docker_bundle(ctx: &Ctx, uid: u32, nnp: bool) -> Bundle {
    let mut b = ctx.bundle();
    b.linux()["seccomp"] = docker_era();
    b.process()["user"] = json!({"uid": uid, "gid": uid});
    b.process()["noNewPrivileges"] = json!(nnp);
    b.sh(SHOW);
    b
}

/// What runc 1.1.5 gives for the default spec's capabilities: root keeps
/// its bounding set in permitted and effective; another user has none.
/// Nothing inheritable or ambient, and never CAP_SYS_ADMIN.
#[track_caller]
fn assert_runcs_caps(status: &str, uid: u32, nnp: bool, what: &str) {
    assert!(status.ends_with("done\n"), "{what}: {status}");
    assert_eq!(status_field(status, "Seccomp"), "2", "{what}");
    assert_eq!(
        status_field(status, "NoNewPrivs"),
        if nnp { "1" } else { "0" },
        "{what}"
    );
    let want = if uid == 0 { DEFAULT_CAPS } else { 0 };
    assert_eq!(cap_bits(status, "CapEff"), want, "{what}: {status}");
    assert_eq!(cap_bits(status, "CapPrm"), want, "{what}: {status}");
    assert_eq!(cap_bits(status, "CapInh"), 0, "{what}: {status}");
    assert_eq!(cap_bits(status, "CapAmb"), 0, "{what}: {status}");
    assert_eq!(cap_bits(status, "CapBnd"), DEFAULT_CAPS, "{what}: {status}");
}

#[test]
fn docker_era_profile_run_and_create_start() {
    let ctx = Ctx::new("sl-docker");
    for uid in [0, UNPRIV_UID] {
        for nnp in [false, true] {
            let b = docker_bundle(&ctx, uid, nnp);
            let what = format!("run uid {uid} nnp {nnp}");
            let out = ctx.run(&ctx.id("r"), &b);
            out.assert_ok(&what);
            assert_runcs_caps(&out.stdout, uid, nnp, &what);

            let what = format!("create+start uid {uid} nnp {nnp}");
            let id = ctx.id(&format!("c{uid}{nnp}"));
            ctx.create(&id, &b, &[]).assert_ok(&what);
            ctx.rt(&["start", &id]).assert_ok(&what);
            ctx.wait_status(&id, "stopped");
            let status = read_file(&ctx.stdout_path(&id));
            assert_runcs_caps(&status, uid, nnp, &what);
            ctx.rt(&["delete", &id]).assert_ok("delete");
        }
    }
    ctx.assert_clean();
}

/// Configured inheritable and ambient sets and a filter without
/// no_new_privs: CAP_SYS_ADMIN, which the load needed, is in no set of the
/// container's process; the rest is exactly what was configured (runc
/// gives the same).
#[test]
fn the_seccomp_load_leaves_no_capability_behind() {
    let ctx = Ctx::new("sl-caps");
    for uid in [0, UNPRIV_UID] {
        for nnp in [false, true] {
            let mut b = docker_bundle(&ctx, uid, nnp);
            let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
            b.process()["capabilities"] = json!({"bounding": caps, "effective": caps,
                "permitted": caps, "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]});
            let what = format!("uid {uid} nnp {nnp}");
            let out = ctx.run(&ctx.id("r"), &b);
            out.assert_ok(&what);
            let s = &out.stdout;
            assert_eq!(status_field(s, "Seccomp"), "2", "{what}");
            let (eff, prm) = if uid == 0 {
                (DEFAULT_CAPS, DEFAULT_CAPS)
            } else {
                // Only the ambient capability survives a non-root execve.
                (CAP_KILL, CAP_KILL)
            };
            assert_eq!(cap_bits(s, "CapEff"), eff, "{what}: {s}");
            assert_eq!(cap_bits(s, "CapPrm"), prm, "{what}: {s}");
            assert_eq!(cap_bits(s, "CapInh"), CAP_KILL, "{what}: {s}");
            assert_eq!(cap_bits(s, "CapAmb"), CAP_KILL, "{what}: {s}");
            assert_eq!(cap_bits(s, "CapBnd"), DEFAULT_CAPS, "{what}: {s}");
            for key in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
                assert_eq!(cap_bits(s, key) & CAP_SYS_ADMIN, 0, "{what} {key}: {s}");
            }
        }
    }
    ctx.assert_clean();
}

#[test]
fn docker_era_profile_exec() {
    let ctx = Ctx::new("sl-exec");
    for uid in [0, UNPRIV_UID] {
        for nnp in [false, true] {
            let mut b = docker_bundle(&ctx, uid, nnp);
            b.args(&["sleep", "1000"]);
            let id = ctx.id("x");
            ctx.run_detached(&id, &b, &[]).assert_ok("run --detach");
            let what = format!("exec uid {uid} nnp {nnp}");
            let out = ctx.rt(&["exec", &id, "sh", "-c", SHOW]);
            out.assert_ok(&what);
            assert_runcs_caps(&out.stdout, uid, nnp, &what);
            // Its own seccomp filter is on top of init's (Seccomp_filters 1:
            // exec loads the container's filter into a fresh process).
            ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
        }
    }
    ctx.assert_clean();
}

#[test]
fn docker_era_profile_with_a_terminal() {
    let ctx = Ctx::new("sl-tty");
    for nnp in [false, true] {
        let mut b = docker_bundle(&ctx, UNPRIV_UID, nnp);
        b.process()["terminal"] = json!(true);
        let sock = ConsoleSocket::bind(&ctx.dir.join(format!("s{nnp}")));
        let id = ctx.id("t");
        ctx.create(&id, &b, &["--console-socket", sock.arg()])
            .assert_ok("create --console-socket");
        let (_, mut term) = sock.master();
        ctx.rt(&["start", &id]).assert_ok("start");
        let text = term.read_to_end().replace('\r', "");
        assert_runcs_caps(&text, UNPRIV_UID, nnp, &format!("terminal nnp {nnp}"));
        ctx.wait_status(&id, "stopped");
        ctx.rt(&["delete", &id]).assert_ok("delete");

        // exec --tty into a container under the profile.
        let mut b = docker_bundle(&ctx, UNPRIV_UID, nnp);
        b.args(&["sleep", "1000"]);
        let id = ctx.id("x");
        ctx.run_detached(&id, &b, &[]).assert_ok("run --detach");
        let sock = ConsoleSocket::bind(&ctx.dir.join(format!("x{nnp}")));
        let mut c = ctx.cmd();
        c.args(["exec", "--tty", "--detach", "--console-socket", sock.arg()])
            .args([&id, "sh", "-c", SHOW]);
        ctx.exec_detached(&mut c, &format!("{id}-exec"), None)
            .assert_ok("exec --tty");
        let (_, mut term) = sock.master();
        let text = term.read_to_end().replace('\r', "");
        assert_runcs_caps(&text, UNPRIV_UID, nnp, &format!("exec --tty nnp {nnp}"));
        ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    }
    ctx.assert_clean();
}

/// The startContainer hook runs in the container, before the filter: its
/// own fork and exec are not the container's business.
#[test]
fn docker_era_profile_with_a_start_container_hook() {
    let ctx = Ctx::new("sl-hook");
    for nnp in [false, true] {
        let mut b = docker_bundle(&ctx, 0, nnp);
        b.add_hook(
            "startContainer",
            json!({"path": "/bin/sh", "args": ["sh", "-c", "echo hooked > /tmp/hooked"]}),
        );
        b.sh(&format!("cat /tmp/hooked; {SHOW}"));
        let out = ctx.run(&ctx.id("r"), &b);
        out.assert_ok("run with a startContainer hook");
        assert!(out.stdout.starts_with("hooked\n"), "{}", out.stdout);
        assert_runcs_caps(&out.stdout, 0, nnp, "hook, run");

        let id = ctx.id(&format!("c{nnp}"));
        ctx.create(&id, &b, &[]).assert_ok("create with a hook");
        ctx.rt(&["start", &id]).assert_ok("start");
        ctx.wait_status(&id, "stopped");
        let text = read_file(&ctx.stdout_path(&id));
        assert!(text.starts_with("hooked\n"), "{text}");
        assert_runcs_caps(&text, 0, nnp, "hook, create+start");
        ctx.rt(&["delete", &id]).assert_ok("delete");
    }
    ctx.assert_clean();
}

/// Profiles that deny, with EPERM, syscalls the runtime itself would use
/// (each used to break the container before its process ran).
#[test]
fn profiles_denying_the_runtimes_own_syscalls_run() {
    let ctx = Ctx::new("sl-deny");
    for (n, names) in [
        vec!["getcwd"],
        vec!["close_range"],
        vec!["openat2", "faccessat2"],
        vec!["statx", "newfstatat", "fstat"],
        vec!["rt_sigaction", "rt_sigprocmask"],
    ]
    .into_iter()
    .enumerate()
    {
        for nnp in [false, true] {
            let mut b = ctx.bundle();
            b.process()["noNewPrivileges"] = json!(nnp);
            b.linux()["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO"}]});
            b.args(&["echo", "ran"]);
            let what = format!("{names:?} denied, nnp {nnp}");
            let out = ctx.run(&ctx.id("r"), &b);
            // runc 1.1.5 loads the filter before its own last syscalls
            // (getcwd after chdir, among others).
            if runtime_is_runc() && !out.ok() {
                skip(&format!(
                    "runc 1.1 fails with {what}: {}",
                    out.stderr.trim()
                ));
                continue;
            }
            out.assert_ok(&what);
            assert_eq!(out.stdout, "ran\n", "{what}");

            let id = ctx.id(&format!("c{n}{nnp}"));
            ctx.create(&id, &b, &[]).assert_ok(&what);
            ctx.rt(&["start", &id]).assert_ok(&what);
            ctx.wait_status(&id, "stopped");
            assert_eq!(read_file(&ctx.stdout_path(&id)), "ran\n", "{what}");
            ctx.rt(&["delete", &id]).assert_ok("delete");
        }
    }
    ctx.assert_clean();
}

/// A static C program that makes raw syscalls and prints their errnos.
const PROBE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
static void probe(const char *name, long nr, long a, long b, long c) {
    errno = 0;
    long r = syscall(nr, a, b, c, 0L, 0L);
    printf("%s %d\n", name, r < 0 ? errno : 0);
}
int main(void) {
    probe("statx", 332, -1, 0, 0);
    probe("clone3", 435, 0, 0, 0);
    probe("close_range", 436, 10, 5, 0);
    probe("openat2", 437, -1, 0, 0);
    probe("pidfd_open", 434, 0, -1, 0);
    probe("faccessat2", 439, -1, 0, 0);
    probe("unshare", SYS_unshare, 0, 0, 0);
    probe("syslog", SYS_syslog, 10, 0, 0);
    probe("getpid", SYS_getpid, 0, 0, 0);
    return 0;
}
"#;

/// runc's ENOSYS stub: under the Docker-era profile, a syscall newer than
/// every syscall it names gets ENOSYS (so libc falls back), an older one
/// the profile does not allow gets the default EPERM.
#[test]
#[cfg(target_arch = "x86_64")]
fn syscalls_newer_than_the_profile_get_enosys() {
    let ctx = Ctx::new("sl-enosys");
    let mut b = docker_bundle(&ctx, 0, true);
    if build_static_c(&ctx.dir, PROBE, &b.rootfs().join("bin/probe")).is_none() {
        skip("no working `gcc -static` to build the syscall probe");
        return;
    }
    b.args(&["/bin/probe"]);
    let out = ctx.run(&ctx.id("r"), &b);
    out.assert_ok("probe");
    let got: Vec<String> = lines(&out.stdout);
    let enosys = libc::ENOSYS.to_string();
    let eperm = libc::EPERM.to_string();
    for name in [
        "statx",
        "clone3",
        "close_range",
        "openat2",
        "pidfd_open",
        "faccessat2",
    ] {
        assert!(
            got.contains(&format!("{name} {enosys}")),
            "{name} should get ENOSYS: {got:?}"
        );
    }
    for name in ["unshare", "syslog"] {
        assert!(
            got.contains(&format!("{name} {eperm}")),
            "{name} should get the profile's EPERM: {got:?}"
        );
    }
    assert!(got.contains(&"getpid 0".to_string()), "{got:?}");
    ctx.assert_clean();
}
