//! Process security and the remaining process fields, in real containers:
//! seccomp (every action, errno values, argument conditions, flags, the
//! podman default profile, the notification agent), noNewPrivileges with
//! seccomp, AppArmor and SELinux refusals, personality, I/O priority,
//! scheduler, exec CPU affinity, withheld capabilities, refused rlimits
//! and out-of-range ids. Each refusal must name the field and leave
//! nothing behind.
//!
//! runc 1.1.5 validates this file too (`ROOTCELL_TEST_RUNTIME=/usr/sbin/runc`),
//! except for what it does not implement (personality, ioPriority,
//! scheduler, seccomp flags) or accepts where the runtime spec says to
//! refuse; those places skip or say so.

mod common;

use common::*;
use serde_json::{json, Value};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

/// Exit code of a container killed by SIGSYS (128 + 31).
const KILLED_BY_SIGSYS: i32 = 128 + libc::SIGSYS;

#[track_caller]
fn run_ok(ctx: &Ctx, b: &Bundle, name: &str) -> Out {
    let id = ctx.id(name);
    let out = ctx.run(&id, b);
    out.assert_ok(name);
    out
}

/// Runs the bundle, expects the runtime to refuse it with an error naming
/// `field` (rootcell only: runc words its errors differently), and checks
/// that nothing was left behind.
#[track_caller]
fn assert_refused(ctx: &Ctx, b: &Bundle, name: &str, field: &str) -> Out {
    let id = ctx.id(name);
    let out = ctx.run(&id, b);
    out.assert_fail(name);
    if !runtime_is_runc() {
        assert!(
            out.stderr.contains(field),
            "{name}: the error should name {field}:\n{}",
            out.stderr
        );
    }
    ctx.assert_clean();
    out
}

fn seccomp_with(default: &str, syscalls: Value) -> Value {
    json!({ "defaultAction": default, "syscalls": syscalls })
}

fn lsm_enabled(module_param: &str) -> bool {
    std::fs::read(module_param).is_ok_and(|v| v.starts_with(b"Y"))
}

// ---------------------------------------------------------------------------
// seccomp: actions
// ---------------------------------------------------------------------------

#[test]
fn seccomp_errno_blocks_a_syscall_with_eperm_or_errno_ret() {
    let ctx = Ctx::new("sc-errno");
    let mut b = ctx.bundle();
    b.sh(
        "mkdir /tmp/a || echo mkdir-failed; rmdir /tmp 2>&1; ls / >/dev/null && echo ls-works; \
          grep Seccomp /proc/self/status",
    );
    b.linux()["seccomp"] = seccomp_with(
        "SCMP_ACT_ALLOW",
        json!([
            // Unknown names are skipped, as runc does: the rule still
            // applies to mkdir.
            {"names": ["mkdir", "no_such_syscall_rootcell"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ETXTBSY}
        ]),
    );
    let out = run_ok(&ctx, &b, "e");
    assert!(
        out.stderr
            .contains("can't create directory '/tmp/a': Operation not permitted"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("mkdir-failed"), "{}", out.stdout);
    assert!(out.stdout.contains("Text file busy"), "{}", out.stdout);
    assert!(out.stdout.contains("ls-works"), "{}", out.stdout);
    assert_eq!(status_field(&out.stdout, "Seccomp"), "2", "filter mode");
    assert!(!b.rootfs().join("tmp/a").exists());
    ctx.assert_clean();
}

#[test]
fn seccomp_default_action_and_default_errno_ret() {
    let ctx = Ctx::new("sc-default");
    let mut b = ctx.bundle();
    // Everything busybox sh needs is allowed; mkdir falls to the default.
    let allowed: Vec<&str> = "read write openat open close fstat newfstatat stat lstat statx \
        mmap munmap mprotect brk rt_sigaction rt_sigprocmask rt_sigreturn ioctl execve exit \
        exit_group getpid getppid getuid geteuid getgid getegid uname fcntl dup2 dup3 wait4 \
        clone clone3 vfork fork arch_prctl set_tid_address set_robust_list rseq prlimit64 \
        getcwd chdir lseek readlink access faccessat faccessat2 pipe pipe2 getdents64 sysinfo \
        getrandom futex"
        // What the runtimes themselves do after loading the filter (the sync
        // socket, close_range, the exec fifo) and Go's runtime (runc).
        .split_whitespace()
        .chain(
            "close_range sendto recvfrom sendmsg recvmsg nanosleep sched_yield madvise tgkill \
             gettid getpgrp epoll_pwait epoll_ctl epoll_create1 sigaltstack clock_gettime fchdir \
             setpgid unlinkat mknodat fstatfs statfs getdents prctl capget capset"
                .split_whitespace(),
        )
        .collect();
    b.sh("echo start; mkdir /tmp/d; echo done");
    b.linux()["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EROFS,
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    });
    let out = run_ok(&ctx, &b, "d");
    assert_eq!(out.stdout, "start\ndone\n");
    assert!(
        out.stderr.contains("Read-only file system"),
        "the default errno: {}",
        out.stderr
    );
    ctx.assert_clean();
}

#[test]
fn seccomp_kill_actions_kill_with_sigsys() {
    let ctx = Ctx::new("sc-kill");
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
    ] {
        let mut b = ctx.bundle();
        b.sh("echo before; kill -0 99999; echo after");
        b.linux()["seccomp"] = seccomp_with(
            "SCMP_ACT_ALLOW",
            json!([{"names": ["kill"], "action": action}]),
        );
        let id = ctx.id(&action[9..].to_lowercase().replace('_', "-"));
        let out = ctx.run(&id, &b);
        assert_eq!(out.code(), Some(KILLED_BY_SIGSYS), "{action}: {out:?}");
        assert_eq!(
            out.stdout, "before\n",
            "{action}: nothing runs after the kill"
        );
    }
    ctx.assert_clean();
}

#[test]
fn seccomp_trap_sends_a_catchable_sigsys() {
    let ctx = Ctx::new("sc-trap");
    let mut b = ctx.bundle();
    b.sh("trap 'echo trapped' SYS; kill -0 99999; echo after");
    b.linux()["seccomp"] = seccomp_with(
        "SCMP_ACT_ALLOW",
        json!([{"names": ["kill"], "action": "SCMP_ACT_TRAP"}]),
    );
    let out = run_ok(&ctx, &b, "t");
    assert_eq!(out.stdout, "trapped\nafter\n");
    ctx.assert_clean();
}

#[test]
fn seccomp_trace_without_a_tracer_fails_with_enosys_and_log_allows() {
    let ctx = Ctx::new("sc-trace");
    let mut b = ctx.bundle();
    std::fs::create_dir_all(b.rootfs().join("tmp/logged")).unwrap();
    b.sh("mkdir /tmp/traced 2>&1; rmdir /tmp/logged && echo rmdir-logged-and-allowed");
    b.linux()["seccomp"] = seccomp_with(
        "SCMP_ACT_ALLOW",
        json!([
            {"names": ["mkdir"], "action": "SCMP_ACT_TRACE"},
            {"names": ["rmdir"], "action": "SCMP_ACT_LOG"}
        ]),
    );
    let out = run_ok(&ctx, &b, "tr");
    let l = lines(&out.stdout);
    assert!(
        l[0].contains("Function not implemented"),
        "TRACE without a tracer returns ENOSYS: {}",
        out.stdout
    );
    assert_eq!(l[1], "rmdir-logged-and-allowed");
    assert!(!b.rootfs().join("tmp/traced").exists());
    assert!(!b.rootfs().join("tmp/logged").exists());
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// seccomp: argument conditions
// ---------------------------------------------------------------------------

/// Runs `kill -SIG 99999` for SIG 9, 10 and 11 under a filter that returns
/// ETXTBSY when `args` match, and says for each signal whether the filter
/// blocked it (ETXTBSY) or let it through (ESRCH: no such process).
fn kill_verdicts(ctx: &Ctx, name: &str, args: Value) -> Vec<bool> {
    let mut b = ctx.bundle();
    b.sh("for s in 9 10 11; do kill -$s 99999 2>&1; done; true");
    b.linux()["seccomp"] = seccomp_with(
        "SCMP_ACT_ALLOW",
        json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ETXTBSY,
                "args": args}]),
    );
    let out = run_ok(ctx, &b, name);
    let l = lines(&out.stdout);
    assert_eq!(l.len(), 3, "{name}: {}", out.stdout);
    l.iter()
        .map(|line| {
            if line.contains("Text file busy") {
                true
            } else {
                assert!(line.contains("No such process"), "{name}: {line}");
                false
            }
        })
        .collect()
}

#[test]
fn seccomp_argument_conditions_match_every_operator() {
    let ctx = Ctx::new("sc-args");
    let cond = |op: &str| json!([{"index": 1, "value": 10, "op": op}]);
    // Blocked? for signals 9, 10, 11.
    for (op, want) in [
        ("SCMP_CMP_NE", [true, false, true]),
        ("SCMP_CMP_LT", [true, false, false]),
        ("SCMP_CMP_LE", [true, true, false]),
        ("SCMP_CMP_EQ", [false, true, false]),
        ("SCMP_CMP_GE", [false, true, true]),
        ("SCMP_CMP_GT", [false, false, true]),
    ] {
        let name = op[9..].to_lowercase();
        assert_eq!(kill_verdicts(&ctx, &name, cond(op)), want, "{op}");
    }
    // MASKED_EQ: (sig & 3) == 2 holds for 10 only.
    let masked = json!([{"index": 1, "value": 3, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]);
    assert_eq!(
        kill_verdicts(&ctx, "masked", masked),
        [false, true, false],
        "MASKED_EQ"
    );
    // Two conditions on the same argument: either matches (one rule each).
    let either = json!([
        {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 11, "op": "SCMP_CMP_EQ"}
    ]);
    assert_eq!(
        kill_verdicts(&ctx, "either", either),
        [true, false, true],
        "same index twice"
    );
    // Conditions on different arguments: both must match.
    let both = json!([
        {"index": 0, "value": 99999, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}
    ]);
    assert_eq!(kill_verdicts(&ctx, "both", both), [false, true, false]);
    let other_pid = json!([
        {"index": 0, "value": 12345, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}
    ]);
    assert_eq!(
        kill_verdicts(&ctx, "other", other_pid),
        [false, false, false]
    );
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// seccomp: flags, architectures, noNewPrivileges
// ---------------------------------------------------------------------------

#[test]
fn seccomp_flags_and_architectures_are_accepted() {
    let ctx = Ctx::new("sc-flags");
    let mut b = ctx.bundle();
    b.sh("mkdir /tmp/f 2>&1; grep Seccomp /proc/self/status");
    let mut seccomp = seccomp_with(
        "SCMP_ACT_ALLOW",
        json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]),
    );
    seccomp["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    b.linux()["seccomp"] = seccomp.clone();
    let out = run_ok(&ctx, &b, "arch");
    assert!(
        out.stdout.contains("Operation not permitted"),
        "{}",
        out.stdout
    );

    if runtime_is_runc() {
        skip("runc 1.1.5 refuses every seccomp flag");
        ctx.assert_clean();
        return;
    }
    seccomp["flags"] = json!([
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
    ]);
    b.linux()["seccomp"] = seccomp;
    let out = run_ok(&ctx, &b, "flags");
    assert!(
        out.stdout.contains("Operation not permitted"),
        "{}",
        out.stdout
    );
    assert_eq!(status_field(&out.stdout, "Seccomp_filters"), "1");
    ctx.assert_clean();
}

#[test]
fn seccomp_with_and_without_no_new_privileges_as_an_unprivileged_user() {
    let ctx = Ctx::new("sc-nnp");
    let mut b = ctx.bundle();
    b.process()["user"] = json!({"uid": UNPRIV_UID, "gid": UNPRIV_GID});
    b.sh("mkdir /tmp/n 2>&1; id -u; grep -E '^(NoNewPrivs|Seccomp)' /proc/self/status");
    b.linux()["seccomp"] = seccomp_with(
        "SCMP_ACT_ALLOW",
        json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EROFS}]),
    );
    for nnp in [true, false] {
        b.process()["noNewPrivileges"] = json!(nnp);
        // Without no_new_privs the filter is loaded while init still has
        // CAP_SYS_ADMIN, before it becomes the unprivileged user.
        let out = run_ok(&ctx, &b, if nnp { "nnp" } else { "no-nnp" });
        assert!(
            out.stdout.contains("Read-only file system"),
            "nnp={nnp}: {}",
            out.stdout
        );
        assert!(
            out.stdout.contains(&format!("\n{UNPRIV_UID}\n")),
            "{}",
            out.stdout
        );
        assert_eq!(
            status_field(&out.stdout, "NoNewPrivs"),
            if nnp { "1" } else { "0" }
        );
        assert_eq!(status_field(&out.stdout, "Seccomp"), "2");
    }
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// seccomp: podman's default profile
// ---------------------------------------------------------------------------

const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// Turns a containers/common seccomp profile into OCI `linux.seccomp` for a
/// container with `caps` on x86_64, the way podman does: the native
/// architecture's sub-architectures, and only the entries whose
/// `includes`/`excludes` (capabilities, architectures) match.
fn podman_seccomp(profile: &Value, caps: &[&str]) -> Value {
    let arch_ok = |arches: &Value| match arches.as_array() {
        None => true,
        Some(a) => a.is_empty() || a.iter().any(|x| x == "amd64"),
    };
    let mut out = json!({ "defaultAction": profile["defaultAction"] });
    if let Some(e) = profile.get("defaultErrnoRet") {
        out["defaultErrnoRet"] = e.clone();
    }
    for m in profile["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == "SCMP_ARCH_X86_64" {
            let mut archs = vec![m["architecture"].clone()];
            archs.extend(
                m["subArchitectures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            out["architectures"] = json!(archs);
        }
    }
    fn has(list: &Value) -> Vec<&str> {
        list.as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
    let mut syscalls = Vec::new();
    for s in profile["syscalls"].as_array().into_iter().flatten() {
        let inc = &s["includes"];
        let exc = &s["excludes"];
        if !has(&inc["caps"]).iter().all(|c| caps.contains(c)) || !arch_ok(&inc["arches"]) {
            continue;
        }
        if has(&exc["caps"]).iter().any(|c| caps.contains(c))
            || (exc["arches"].as_array().is_some_and(|a| !a.is_empty()) && arch_ok(&exc["arches"]))
        {
            continue;
        }
        let mut e = json!({"names": s["names"], "action": s["action"]});
        if !s["errnoRet"].is_null() {
            e["errnoRet"] = s["errnoRet"].clone();
        }
        if s["args"].as_array().is_some_and(|a| !a.is_empty()) {
            e["args"] = s["args"].clone();
        }
        syscalls.push(e);
    }
    out["syscalls"] = json!(syscalls);
    out
}

#[test]
fn podman_default_profile_loads_and_behaves_as_under_runc() {
    let Ok(text) = std::fs::read_to_string(PODMAN_PROFILE) else {
        skip("no podman default profile (scripts/setup installs golang-github-containers-common)");
        return;
    };
    let profile: Value = serde_json::from_str(&text).unwrap();
    let ctx = Ctx::new("sc-podman");
    let default_caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let mut b = ctx.bundle();
    b.linux()["seccomp"] = podman_seccomp(&profile, &default_caps);
    b.sh(
        "ls / | head -2; echo x > /tmp/f && cat /tmp/f; wc -l < /etc/group; \
          linux32 uname -m; unshare -U true && echo userns-allowed; \
          grep -E '^Seccomp' /proc/self/status",
    );
    let out = run_ok(&ctx, &b, "ls");
    let groups = std::fs::read_to_string(b.rootfs().join("etc/group"))
        .unwrap()
        .lines()
        .count()
        .to_string();
    assert_eq!(
        lines(&out.stdout)[..5],
        ["bin", "dev", "x", groups.as_str(), "i686"],
        "{}",
        out.stdout
    );
    // This profile (containers-common 0.50) leaves user namespaces to the
    // capabilities, so `unshare -U` works under runc and rootcell alike.
    assert!(out.stdout.contains("userns-allowed"), "{}", out.stdout);
    assert_eq!(status_field(&out.stdout, "Seccomp"), "2");
    assert_eq!(status_field(&out.stdout, "Seccomp_filters"), "1");

    // Give the process CAP_SYS_ADMIN, but keep the profile made for the
    // default capabilities: the filter, not the capability, refuses
    // sethostname and swapoff.
    let caps = json!([
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_ADMIN"
    ]);
    b.process()["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    b.sh("hostname seccomp-test 2>&1; hostname; swapoff /nonexistent 2>&1; true");
    let out = run_ok(&ctx, &b, "sysadmin");
    let l = lines(&out.stdout);
    assert!(l[0].contains("Operation not permitted"), "{}", out.stdout);
    assert_eq!(l[1], "rootcell-test", "hostname unchanged");
    assert!(l[2].contains("Operation not permitted"), "{}", out.stdout);
    // Without the profile the same capability does allow them.
    b.linux()["seccomp"] = Value::Null;
    let out = run_ok(&ctx, &b, "nofilter");
    assert_eq!(
        lines(&out.stdout),
        [
            "seccomp-test",
            "swapoff: /nonexistent: No such file or directory"
        ]
    );

    // Without noNewPrivileges, as an unprivileged user: loaded before the
    // user switch, and the container still works.
    b.process()["capabilities"] = json!({"bounding": default_caps, "effective": default_caps,
                                          "permitted": default_caps});
    b.linux()["seccomp"] = podman_seccomp(&profile, &default_caps);
    b.process()["noNewPrivileges"] = json!(false);
    b.process()["user"] = json!({"uid": UNPRIV_UID, "gid": UNPRIV_GID});
    b.sh("id -u; ls /etc/passwd; grep -E '^(Seccomp|NoNewPrivs)' /proc/self/status");
    let out = run_ok(&ctx, &b, "user");
    assert!(
        out.stdout.starts_with("1000\n/etc/passwd\n"),
        "{}",
        out.stdout
    );
    assert_eq!(status_field(&out.stdout, "Seccomp"), "2");
    assert_eq!(status_field(&out.stdout, "NoNewPrivs"), "0");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// seccomp: SCMP_ACT_NOTIFY and the agent
// ---------------------------------------------------------------------------

/// `struct seccomp_notif` and `struct seccomp_notif_resp` (linux/seccomp.h).
#[repr(C)]
#[derive(Default)]
struct SeccompNotif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

#[repr(C)]
struct SeccompNotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const SECCOMP_IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const SECCOMP_IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// One message with the fds of its `SCM_RIGHTS`.
fn recv_with_fds(sock: &UnixStream) -> (Vec<u8>, Vec<OwnedFd>) {
    let mut data = vec![0u8; 64 * 1024];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut cmsg = [0u8; 128];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = cmsg.len() as _;
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    data.truncate(n as usize);
    let mut fds = Vec::new();
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                let p = libc::CMSG_DATA(c) as *const libc::c_int;
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    (data, fds)
}

/// Waits until `fd` is readable, up to `timeout`.
fn wait_readable(fd: &OwnedFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) == 1 }
}

/// A tiny seccomp agent: accepts one connection on `listener`, returns
/// the container process state, then answers one notification on the fd
/// with `error` and returns the syscall number it saw.
fn agent(listener: &UnixListener, error: i32) -> (Value, i32) {
    let (state, fd) = agent_accept(listener);
    (state, answer_one(&fd, error))
}

/// The agent's side of one connection: the container process state and the
/// notification fd.
fn agent_accept(listener: &UnixListener) -> (Value, OwnedFd) {
    listener.set_nonblocking(true).unwrap();
    let (conn, _) = poll(POLL_TIMEOUT, "the runtime to connect to the agent", || {
        listener.accept().ok()
    });
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(POLL_TIMEOUT)).unwrap();
    // The runtime may use several sendmsg calls (fds in the first).
    let (mut payload, mut fds) = (Vec::new(), Vec::new());
    let state: Value = loop {
        let (data, more) = recv_with_fds(&conn);
        assert!(
            !data.is_empty() || !more.is_empty(),
            "connection closed before a whole state arrived: {payload:?}"
        );
        payload.extend(data);
        fds.extend(more);
        if let Ok(state) = serde_json::from_slice(&payload) {
            break state;
        }
    };
    if !runtime_is_runc() {
        // One state per connection, then the runtime closes it (runc 1.1
        // keeps it open until it exits).
        let (rest, more) = recv_with_fds(&conn);
        assert!(rest.is_empty() && more.is_empty(), "more after the state");
    }
    assert_eq!(fds.len(), 1, "exactly one fd in SCM_RIGHTS: {state}");
    (state, fds.pop().unwrap())
}

/// Answers the next notification on `fd` with `error`; returns the
/// syscall number it was about.
fn answer_one(fd: &OwnedFd, error: i32) -> i32 {
    assert!(wait_readable(fd, POLL_TIMEOUT), "no notification arrived");
    let mut req = SeccompNotif::default();
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    let resp = SeccompNotifResp {
        id: req.id,
        val: 0,
        error: -error,
        flags: 0,
    };
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_SEND, &resp) };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    req.nr
}

#[test]
fn seccomp_notify_hands_the_fd_and_state_to_the_agent() {
    let ctx = Ctx::new("sc-notify");
    let sock = ctx.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = ctx.bundle();
    b.config["annotations"] = json!({"org.example.agent": "yes"});
    b.sh("mkdir /tmp/notified 2>&1; echo done");
    b.linux()["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "MKDIR=refuse",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let id = ctx.id("n");
    let (out, (state, nr)) = std::thread::scope(|s| {
        let run = s.spawn(|| ctx.run(&id, &b));
        let seen = agent(&listener, libc::EBADMSG);
        (run.join().unwrap(), seen)
    });
    out.assert_ok("run with an agent");
    assert!(
        out.stdout.contains("Bad message"),
        "the agent's answer reaches the container: {}",
        out.stdout
    );
    assert!(out.stdout.ends_with("done\n"), "{}", out.stdout);
    assert!(!b.rootfs().join("tmp/notified").exists());
    assert!(
        nr == libc::SYS_mkdir as i32 || nr == libc::SYS_mkdirat as i32,
        "notified syscall {nr}"
    );
    // The container process state of the runtime spec.
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "MKDIR=refuse", "{state}");
    assert!(state["ociVersion"].is_string(), "{state}");
    assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{state}");
    let st = &state["state"];
    assert_eq!(st["id"], id, "{state}");
    assert_eq!(st["pid"], state["pid"], "{state}");
    assert_eq!(
        st["bundle"].as_str().map(std::path::PathBuf::from),
        Some(std::fs::canonicalize(&b.path).unwrap()),
        "{state}"
    );
    assert_eq!(st["annotations"]["org.example.agent"], "yes", "{state}");
    assert_eq!(st["status"], "creating", "{state}");
    ctx.assert_clean();
}

/// `create` + `start` with a notifying filter: the agent gets the fd while
/// `create` runs (the runtime that hands it over is gone after), so init
/// loads that filter before the start gate, as runc does; its remaining
/// steps then run under the filter, and a profile that denies
/// `close_range` still works (a close loop replaces it).
#[test]
fn seccomp_notify_with_create_and_start_and_close_range_denied() {
    let ctx = Ctx::new("sc-notify-cs");
    let sock = ctx.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = ctx.bundle();
    b.sh("mkdir /tmp/notified 2>&1; echo done");
    b.linux()["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
                     {"names": ["close_range"], "action": "SCMP_ACT_ERRNO"}]
    });
    let id = ctx.id("n");
    let (out, (state, fd)) = std::thread::scope(|s| {
        let create = s.spawn(|| ctx.create(&id, &b, &[]));
        let seen = agent_accept(&listener);
        (create.join().unwrap(), seen)
    });
    out.assert_ok("create with an agent");
    assert_eq!(state["state"]["status"], "creating", "{state}");
    ctx.rt(&["start", &id]).assert_ok("start");
    answer_one(&fd, libc::EBADMSG);
    ctx.wait_status(&id, "stopped");
    let text = read_file(&ctx.stdout_path(&id));
    assert!(
        text.contains("Bad message") && text.ends_with("done\n"),
        "{text}"
    );
    assert!(!b.rootfs().join("tmp/notified").exists());
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn seccomp_notify_without_an_agent_fails_cleanly() {
    let ctx = Ctx::new("sc-noagent");
    let mut b = ctx.bundle();
    b.sh("mkdir /tmp/x");
    b.linux()["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": ctx.dir.join("nobody-listens.sock"),
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    });
    assert_refused(&ctx, &b, "agent", "linux.seccomp.listenerPath");
}

// ---------------------------------------------------------------------------
// seccomp: refusals
// ---------------------------------------------------------------------------

#[test]
fn seccomp_config_errors_name_the_field_and_leave_nothing() {
    let ctx = Ctx::new("sc-errors");
    let mut b = ctx.bundle();
    let ok = json!({"names": ["getcwd"], "action": "SCMP_ACT_ALLOW"});
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "action",
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [ok, ok, ok,
                {"names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"}]}),
            "linux.seccomp.syscalls[3].action",
        ),
        (
            "op",
            seccomp_with(
                "SCMP_ACT_ALLOW",
                json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_SIMILAR"}]}]),
            ),
            "linux.seccomp.syscalls[0].args[0].op",
        ),
        (
            "arch",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]}),
            "linux.seccomp.architectures[0]",
        ),
        (
            "default",
            json!({"defaultAction": "SCMP_ACT_DENY"}),
            "linux.seccomp.defaultAction",
        ),
        (
            "index",
            seccomp_with(
                "SCMP_ACT_ALLOW",
                json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]),
            ),
            "linux.seccomp.syscalls[0].args[0].index",
        ),
        (
            "notify-default",
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/x.sock"}),
            "linux.seccomp.defaultAction",
        ),
        (
            "notify-write",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock",
                   "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.syscalls[0].action",
        ),
    ];
    for (name, seccomp, field) in cases {
        b.linux()["seccomp"] = seccomp;
        assert_refused(&ctx, &b, name, field);
    }
    if runtime_is_runc() {
        skip(
            "runc 1.1.5 accepts errnoRet on actions without an errno, and metadata without a path",
        );
        return;
    }
    // The runtime spec: "When the action doesn't support an errno, the
    // runtime MUST print an error and fail."
    let rootcell_only: Vec<(&str, Value, &str)> = vec![
        (
            "errno-on-allow",
            seccomp_with(
                "SCMP_ACT_ERRNO",
                json!([{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                "errnoRet": 5}]),
            ),
            "linux.seccomp.syscalls[0].errnoRet",
        ),
        (
            "default-errno",
            json!({"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 5}),
            "linux.seccomp.defaultErrnoRet",
        ),
        (
            "metadata",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}),
            "linux.seccomp.listenerMetadata",
        ),
        (
            "no-listener",
            seccomp_with(
                "SCMP_ACT_ALLOW",
                json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]),
            ),
            "linux.seccomp.listenerPath",
        ),
        (
            "unsupported-arch",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390X"]}),
            "linux.seccomp.architectures[0]",
        ),
    ];
    for (name, seccomp, field) in rootcell_only {
        b.linux()["seccomp"] = seccomp;
        assert_refused(&ctx, &b, name, field);
    }
}

// ---------------------------------------------------------------------------
// LSMs
// ---------------------------------------------------------------------------

#[test]
fn apparmor_profile_and_selinux_label_need_the_lsm() {
    let ctx = Ctx::new("lsm");
    let mut b = ctx.bundle();
    if lsm_enabled("/sys/module/apparmor/parameters/enabled") {
        skip("AppArmor is enabled here: the refusal path cannot be tested");
    } else {
        b.process()["apparmorProfile"] = json!("rootcell-test-profile");
        let out = assert_refused(&ctx, &b, "apparmor", "process.apparmorProfile");
        if !runtime_is_runc() {
            assert!(
                out.stderr.contains("AppArmor is not enabled"),
                "{}",
                out.stderr
            );
        }
        b.process()["apparmorProfile"] = Value::Null;
    }
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        skip("SELinux is enabled here: the refusal path cannot be tested");
    } else {
        b.process()["selinuxLabel"] = json!("system_u:system_r:container_t:s0:c1,c2");
        let out = assert_refused(&ctx, &b, "selinux", "process.selinuxLabel");
        if !runtime_is_runc() {
            assert!(
                out.stderr.contains("SELinux is not enabled"),
                "{}",
                out.stderr
            );
        }
    }
    // Empty strings mean "none", as in runc.
    b.process()["apparmorProfile"] = json!("");
    b.process()["selinuxLabel"] = json!("");
    run_ok(&ctx, &b, "empty");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// personality, ioPriority, scheduler, execCPUAffinity
// ---------------------------------------------------------------------------

#[test]
fn personality_linux32_reports_a_32_bit_machine() {
    if runtime_is_runc() {
        skip("runc 1.1.5 ignores linux.personality");
        return;
    }
    let ctx = Ctx::new("persona");
    let mut b = ctx.bundle();
    b.args(&["uname", "-m"]);
    b.linux()["personality"] = json!({"domain": "LINUX32"});
    assert_eq!(run_ok(&ctx, &b, "l32").stdout, "i686\n");
    b.linux()["personality"] = json!({"domain": "LINUX"});
    assert_eq!(run_ok(&ctx, &b, "l64").stdout, "x86_64\n");
    // With podman's profile too: personality is allowed only for a few
    // values, and LINUX32 is set before the filter anyway.
    if let Ok(text) = std::fs::read_to_string(PODMAN_PROFILE) {
        let profile: Value = serde_json::from_str(&text).unwrap();
        b.linux()["personality"] = json!({"domain": "LINUX32"});
        b.linux()["seccomp"] = podman_seccomp(
            &profile,
            &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        );
        assert_eq!(run_ok(&ctx, &b, "l32sc").stdout, "i686\n");
        b.linux()["seccomp"] = Value::Null;
    }
    b.linux()["personality"] = json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]});
    assert_refused(&ctx, &b, "flags", "linux.personality.flags[0]");
    ctx.assert_clean();
}

#[test]
fn io_priority_is_applied() {
    if runtime_is_runc() {
        skip("runc 1.1.5 ignores process.ioPriority");
        return;
    }
    let ctx = Ctx::new("ioprio");
    let mut b = ctx.bundle();
    b.sh("ionice -p $$");
    for (class, prio, want) in [
        ("IOPRIO_CLASS_BE", 5, "best-effort: prio 5"),
        ("IOPRIO_CLASS_IDLE", 7, "idle"),
        // Real-time needs CAP_SYS_ADMIN, which init has before it drops
        // its capabilities.
        ("IOPRIO_CLASS_RT", 3, "realtime: prio 3"),
    ] {
        b.process()["ioPriority"] = json!({"class": class, "priority": prio});
        let out = run_ok(&ctx, &b, &class[13..].to_lowercase());
        assert_eq!(out.stdout.trim(), want, "{class}");
    }
    b.process()["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 8});
    assert_refused(&ctx, &b, "range", "process.ioPriority.priority");
    ctx.assert_clean();
}

/// (policy, nice, rt_priority) of `pid` from /proc/PID/stat, fields 41,
/// 19 and 40 (1-based).
fn sched_of(stat: &str) -> (u32, i32, u32) {
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3.
    let field = |n: usize| f[n - 3];
    (
        field(41).parse().unwrap(),
        field(19).parse().unwrap(),
        field(40).parse().unwrap(),
    )
}

#[test]
fn scheduler_policy_nice_and_flags_are_applied() {
    if runtime_is_runc() {
        skip("runc 1.1.5 ignores process.scheduler");
        return;
    }
    let ctx = Ctx::new("sched");
    let mut b = ctx.bundle();
    // The shell's own settings, then a child's: a subshell (busybox runs
    // `cat` inside the shell's process), not the last command (which ash
    // would run without forking).
    b.sh("cat /proc/$$/stat; (cat /proc/self/stat); true");
    let run = |b: &mut Bundle, sched: Value, name: &str| {
        b.process()["scheduler"] = sched;
        let out = run_ok(&ctx, b, name);
        let l = lines(&out.stdout);
        (sched_of(&l[0]), sched_of(&l[1]))
    };
    let (sh, child) = run(&mut b, json!({"policy": "SCHED_BATCH", "nice": 7}), "batch");
    assert_eq!(sh, (libc::SCHED_BATCH as u32, 7, 0));
    assert_eq!(child, sh, "inherited by children");
    let (sh, _) = run(&mut b, json!({"policy": "SCHED_IDLE"}), "idle");
    assert_eq!(sh.0, libc::SCHED_IDLE as u32);
    // A negative nice needs CAP_SYS_NICE, which init has before it drops
    // its capabilities; SCHED_FLAG_RESET_ON_FORK gives children nice 0.
    let (sh, child) = run(
        &mut b,
        json!({"policy": "SCHED_OTHER", "nice": -5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}),
        "reset",
    );
    assert_eq!((sh.0, sh.1), (0, -5));
    assert_eq!(child.1, 0, "reset on fork");

    // Real-time policies need real-time runtime in the container's cpu
    // cgroup, which nothing gives it yet on a v1 host with RT group
    // scheduling: the refusal must say where to look.
    b.process()["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 10});
    let id = ctx.id("fifo");
    let out = ctx.run(&id, &b);
    if out.ok() {
        let l = lines(&out.stdout);
        assert_eq!(sched_of(&l[0]), (libc::SCHED_FIFO as u32, 0, 10));
    } else {
        assert!(
            out.stderr.contains("process.scheduler") && out.stderr.contains("SCHED_FIFO"),
            "{}",
            out.stderr
        );
    }
    ctx.assert_clean();
    b.process()["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": 20});
    assert_refused(&ctx, &b, "nice", "process.scheduler.nice");
    b.process()["scheduler"] = json!({"policy": "SCHED_BATCH", "priority": 5});
    assert_refused(&ctx, &b, "prio", "process.scheduler.priority");
}

#[test]
fn exec_cpu_affinity_leaves_init_alone() {
    // The runtime spec: execCPUAffinity "is not applicable to the
    // container's init process" (it is for `exec`); CRI-O sets it so that
    // exec'd processes land on housekeeping CPUs while the workload keeps
    // its own. Pinning init to it would move the workload.
    let ctx = Ctx::new("affinity");
    let mut b = ctx.bundle();
    b.sh("grep Cpus_allowed_list /proc/self/status");
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_cpus = status_field(&host, "Cpus_allowed_list").to_string();
    b.process()["execCPUAffinity"] = json!({"initial": "0", "final": "0"});
    let out = run_ok(&ctx, &b, "a");
    assert_eq!(status_field(&out.stdout, "Cpus_allowed_list"), host_cpus);
    if !runtime_is_runc() {
        // A malformed list is refused, naming the field.
        b.process()["execCPUAffinity"] = json!({"final": "0-x"});
        assert_refused(&ctx, &b, "bad", "process.execCPUAffinity.final");
    }
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// capabilities, rlimits, ids
// ---------------------------------------------------------------------------

#[test]
fn a_capability_the_host_withholds_is_refused_by_name() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = u64::from_str_radix(status_field(&status, "CapBnd"), 16).unwrap();
    const CAP_SYS_RESOURCE: u32 = 24;
    if bounding & (1 << CAP_SYS_RESOURCE) != 0 {
        skip("this host grants CAP_SYS_RESOURCE: no capability to withhold");
        return;
    }
    let ctx = Ctx::new("caps-host");
    let mut b = ctx.bundle();
    let caps = json!(["CAP_KILL", "CAP_SYS_RESOURCE"]);
    b.process()["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    let out = assert_refused(&ctx, &b, "all", "process.capabilities.bounding");
    if !runtime_is_runc() {
        assert!(out.stderr.contains("CAP_SYS_RESOURCE"), "{}", out.stderr);
    }
    // runc 1.1.5 silently leaves a withheld capability out of the bounding
    // set; rootcell says so.
    if !runtime_is_runc() {
        b.process()["capabilities"] =
            json!({"bounding": caps, "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]});
        let out = assert_refused(&ctx, &b, "bounding", "process.capabilities.bounding");
        assert!(out.stderr.contains("CAP_SYS_RESOURCE"), "{}", out.stderr);
        b.process()["capabilities"] = json!({"bounding": ["CAP_KILL"],
            "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_SYS_RESOURCE"]});
        assert_refused(&ctx, &b, "ambient", "process.capabilities.ambient");
        b.process()["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_TELEPATHY"]});
        assert_refused(&ctx, &b, "unknown", "process.capabilities.bounding");
    }
}

#[test]
fn an_rlimit_above_the_hosts_is_refused_by_name() {
    let ctx = Ctx::new("rlimit-host");
    let mut b = ctx.bundle();
    let mut hard = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) };
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Above fs.nr_open even root cannot go.
    let too_high = nr_open.max(hard.rlim_max) + 1;
    b.process()["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": too_high}]);
    let out = assert_refused(&ctx, &b, "nofile", "RLIMIT_NOFILE");
    if !runtime_is_runc() {
        assert!(out.stderr.contains("process.rlimits"), "{}", out.stderr);
    }
}

#[test]
fn out_of_range_and_unmapped_ids_are_refused() {
    let ctx = Ctx::new("ids");
    let mut b = ctx.bundle();
    b.process()["user"] = json!({"uid": 4294967295u32, "gid": 0});
    assert_refused(&ctx, &b, "uid", "process.user.uid");
    b.process()["user"] = json!({"uid": 0, "gid": 4294967295u32});
    assert_refused(&ctx, &b, "gid", "process.user.gid");
    b.process()["user"] = json!({"uid": 0, "gid": 0, "additionalGids": [10, 4294967295u32]});
    assert_refused(&ctx, &b, "groups", "process.user.additionalGids[1]");
    // In a new user namespace, an id without a mapping.
    b.process()["user"] = json!({"uid": 5000, "gid": 0});
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
    let out = ctx.run(&ctx.id("unmapped"), &b);
    out.assert_fail("unmapped uid");
    if !runtime_is_runc() {
        assert!(
            out.stderr.contains("process.user.uid") && out.stderr.contains("not mapped"),
            "{}",
            out.stderr
        );
    }
    ctx.assert_clean();
}

/// The compiled filter is cached below the state root: a second container
/// with the same profile loads it from there and behaves the same, and a
/// damaged cache file is recompiled, not trusted.
#[test]
fn compiled_seccomp_filters_are_cached_and_checked() {
    let Ok(text) = std::fs::read_to_string(PODMAN_PROFILE) else {
        skip("no podman default profile (scripts/setup installs golang-github-containers-common)");
        return;
    };
    if runtime_is_runc() {
        return skip("the filter cache is rootcell's");
    }
    let profile: Value = serde_json::from_str(&text).unwrap();
    let ctx = Ctx::new("sc-cache");
    let mut b = ctx.bundle();
    b.linux()["seccomp"] = podman_seccomp(
        &profile,
        &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    );
    b.sh("grep -E '^Seccomp:' /proc/self/status; swapoff /x 2>&1 | grep -c 'not permitted'");
    let cache = ctx.state_dir().join(".cache/seccomp");
    let cached = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cache)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let first = run_ok(&ctx, &b, "first");
    let files = cached();
    assert_eq!(files.len(), 1, "{files:?}");
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(&files[0]).unwrap().ino();
    let second = run_ok(&ctx, &b, "second");
    assert_eq!(first.stdout, second.stdout);
    // Read, not rewritten (a rewrite is a rename: a new inode).
    assert_eq!(std::fs::metadata(&files[0]).unwrap().ino(), inode);
    assert_eq!(
        lines(&second.stdout),
        ["Seccomp:\t2", "1"],
        "{}",
        second.all()
    );
    // A cache file cut short is ignored and rewritten.
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &bytes[..bytes.len() - 3]).unwrap();
    let third = run_ok(&ctx, &b, "third");
    assert_eq!(first.stdout, third.stdout);
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);
    ctx.assert_clean();
}

/// The container's NOTIFY rules apply to an `exec`'d process too: its own
/// notification fd reaches the agent, with the exec'd process's pid and the
/// container's state, and the agent's answer reaches the process.
#[test]
fn seccomp_notify_reaches_the_agent_for_exec_too() {
    let ctx = Ctx::new("sc-notify-exec");
    let sock = ctx.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = ctx.bundle();
    b.args(&["sleep", "100"]);
    b.linux()["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let id = ctx.id("n");
    let (out, init_pid, exec_state, nr) = std::thread::scope(|s| {
        let agent = s.spawn(|| {
            // init's fd first (kept open while the container runs), then
            // the exec'd process's.
            let (_init_state, init_fd) = agent_accept(&listener);
            let (exec_state, exec_fd) = agent_accept(&listener);
            let nr = answer_one(&exec_fd, libc::EBADMSG);
            drop(init_fd);
            (exec_state, nr)
        });
        ctx.create(&id, &b, &[]).assert_ok("create with an agent");
        let init_pid = ctx.pid(&id);
        ctx.rt(&["start", &id]).assert_ok("start");
        let out = ctx.rt(&[
            "exec",
            &id,
            "sh",
            "-c",
            "mkdir /tmp/by-exec 2>&1; echo done",
        ]);
        let (exec_state, nr) = agent.join().unwrap();
        (out, init_pid, exec_state, nr)
    });
    out.assert_ok("exec under a notifying filter");
    assert!(out.stdout.contains("Bad message"), "{}", out.all());
    assert!(!b.rootfs().join("tmp/by-exec").exists());
    assert!(
        nr == libc::SYS_mkdir as i32 || nr == libc::SYS_mkdirat as i32,
        "{nr}"
    );
    let exec_pid = exec_state["pid"].as_i64().unwrap_or(0);
    assert!(
        exec_pid > 0 && exec_pid != i64::from(init_pid),
        "{exec_state}"
    );
    assert_eq!(exec_state["state"]["pid"], init_pid, "{exec_state}");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// host fds
// ---------------------------------------------------------------------------

/// What an fd of `pid` is, seen from the host: (link text, filesystem
/// magic, entries if it is a directory).
fn host_view_of_fd(pid: i32, fd: &str) -> (String, i64, Option<Vec<String>>) {
    let path = format!("/proc/{pid}/fd/{fd}");
    let link = readlink(&path);
    let cpath = std::ffi::CString::new(path.clone()).unwrap();
    // SAFETY: a zeroed statfs buffer and a live C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let magic = if unsafe { libc::statfs(cpath.as_ptr(), &mut st) } == 0 {
        st.f_type as i64
    } else {
        0
    };
    let entries = std::fs::read_dir(&path).ok().map(|d| {
        d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    });
    (link, magic, entries)
}

/// Init, waiting for `start`, holds no host fd: no cgroup directory or
/// `cgroup.procs` file, no procfs of the host's pid namespace (one that
/// lists init under its host pid); only stdio, the exec fifo, the sync
/// socket, `init.err` (a regular file in its state directory, for the
/// error it may die of) and a procfs of its own pid namespace. Likewise an
/// `exec`'d process while it runs.
#[test]
fn init_holds_no_host_fds_while_waiting_for_start() {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const CGROUP_SUPER_MAGIC: i64 = 0x27e0eb;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let ctx = Ctx::new("hostfds");
    let mut b = ctx.bundle();
    b.args(&["sleep", "1000"]);
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("create");
    let pid = ctx.pid(&id);
    let check = |pid: i32, what: &str| {
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut seen = Vec::new();
        for fd in &fds {
            let (link, magic, entries) = host_view_of_fd(pid, fd);
            seen.push(format!("{fd} -> {link}"));
            assert!(
                magic != CGROUP_SUPER_MAGIC && magic != CGROUP2_SUPER_MAGIC,
                "{what}: fd {fd} is on a cgroup filesystem: {link}"
            );
            assert!(!link.ends_with("cgroup.procs"), "{what}: fd {fd}: {link}");
            if magic == PROC_SUPER_MAGIC {
                if let Some(entries) = entries {
                    assert!(
                        !entries.contains(&pid.to_string()),
                        "{what}: fd {fd} ({link}) is a procfs of the host's pid namespace"
                    );
                }
            }
        }
        eprintln!("{what} fds: {seen:?}");
    };
    check(pid, "init before start");
    ctx.rt(&["start", &id]).assert_ok("start");
    let mut c = ctx.cmd();
    let pid_file = ctx.dir.join("exec.pid");
    c.args(["exec", "-d", "--pid-file"])
        .arg(&pid_file)
        .args([&id, "sleep", "1000"]);
    ctx.exec_detached(&mut c, "hostfds-exec", None)
        .assert_ok("exec -d");
    let exec_pid: i32 = read_file(&pid_file).trim().parse().unwrap();
    check(exec_pid, "exec'd process");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}
