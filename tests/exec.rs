//! `exec` and `ps`: a new process in a running container, and the
//! container's processes.
//!
//! Every test passes against runc too (Debian's 1.1.5, whose deb12u1
//! patches carry the CVE-2024-21626 fix the leaked-fd attack tests at the
//! end look for; upstream 1.1.5 fails them). Error wordings, and the exit
//! code 255 of a failed exec, are checked for rootcell only.

mod common;

use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A file that exists only in the container's rootfs.
const ONLY_IN_ROOTFS: &str = "only-in-the-rootfs\n";

/// A running container whose init sleeps. Returns (id, bundle, init pid).
fn running(ctx: &Ctx, edit: impl FnOnce(&mut Bundle)) -> (String, Bundle, i32) {
    let mut b = ctx.bundle();
    b.args(&["sleep", "1000"]);
    write_file(&b.rootfs().join("only-here"), ONLY_IN_ROOTFS);
    edit(&mut b);
    let id = ctx.id("c");
    ctx.run_detached(&id, &b, &[]).assert_ok("run --detach");
    let pid = ctx.pid(&id);
    (id, b, pid)
}

/// `exec [args...]` in the foreground, output captured.
fn exec_rt(ctx: &Ctx, args: &[&str]) -> Out {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    ctx.rt(&all)
}

/// `exec --detach --pid-file F [flags...] ID CMD...`, stdio to files (the
/// process keeps them). Returns the process's host pid.
#[track_caller]
fn exec_detached(ctx: &Ctx, flags: &[&str], id: &str, cmd: &[&str]) -> i32 {
    static N: AtomicUsize = AtomicUsize::new(0);
    let pid_file = ctx
        .dir
        .join(format!("exec-{}.pid", N.fetch_add(1, Ordering::SeqCst)));
    let mut c = ctx.cmd();
    c.args(["exec", "--detach", "--pid-file"])
        .arg(&pid_file)
        .args(flags)
        .arg(id)
        .args(cmd);
    let out = ctx.exec_detached(&mut c, &format!("{id}-exec"), None);
    out.assert_ok("exec --detach");
    read_file(&pid_file)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file {}: {e}", pid_file.display()))
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

fn ns_link(pid: i32, ns: &str) -> String {
    readlink(format!("/proc/{pid}/ns/{ns}"))
}

fn dev_ino(p: impl AsRef<Path>) -> (u64, u64) {
    let md = fs::metadata(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()));
    (md.dev(), md.ino())
}

fn proc_status_field(pid: i32, key: &str) -> String {
    status_field(&read_file(Path::new(&format!("/proc/{pid}/status"))), key).to_owned()
}

// ---------------------------------------------------------------------------
// Where the process runs
// ---------------------------------------------------------------------------

#[test]
fn exec_joins_the_namespaces_cgroups_and_root_of_init() {
    let ctx = Ctx::new("exns");
    let (id, _b, init) = running(&ctx, |b| {
        b.set_namespace("cgroup", None);
    });
    let pid = exec_detached(&ctx, &[], &id, &["sleep", "1000"]);
    assert!(pid_alive(pid));
    for ns in ["pid", "mnt", "net", "uts", "ipc", "cgroup", "user", "time"] {
        if !Path::new(&format!("/proc/self/ns/{ns}")).exists() {
            continue;
        }
        assert_eq!(ns_link(pid, ns), ns_link(init, ns), "{ns} namespace");
    }
    for ns in ["pid", "mnt", "net", "uts", "ipc", "cgroup"] {
        assert_ne!(ns_link(pid, ns), host_ns(ns), "{ns} is the host's");
    }
    assert_eq!(
        read_file(Path::new(&format!("/proc/{pid}/cgroup"))),
        read_file(Path::new(&format!("/proc/{init}/cgroup"))),
        "cgroups differ from init's"
    );
    assert_eq!(
        dev_ino(format!("/proc/{pid}/root/")),
        dev_ino(format!("/proc/{init}/root/")),
        "root differs from init's"
    );
    // In the container's pid namespace it has a pid of its own (init is 1).
    let nspid = proc_status_field(pid, "NSpid");
    let ids: Vec<&str> = nspid.split_whitespace().collect();
    assert_eq!(ids.len(), 2, "NSpid {nspid}");
    assert_ne!(ids[1], "1");
    ctx.rt(&["delete", "--force", &id])
        .assert_ok("delete --force");
    wait_pid_dead(pid);
    ctx.assert_clean();
}

#[test]
fn exec_sees_the_container_rootfs_not_the_host() {
    let ctx = Ctx::new("exroot");
    let (id, _b, _) = running(&ctx, |_| {});
    let host_only = ctx.dir.join("host-only");
    write_file(&host_only, "host\n");
    let out = exec_rt(
        &ctx,
        &[
            &id,
            "sh",
            "-c",
            &format!(
                "cat /only-here; test -e {} && echo host-visible; \
                 cd /..; pwd; ls /",
                host_only.display()
            ),
        ],
    );
    out.assert_ok("exec");
    let l = lines(&out.stdout);
    assert_eq!(l[0], ONLY_IN_ROOTFS.trim());
    assert!(!out.stdout.contains("host-visible"), "{}", out.stdout);
    assert_eq!(l[1], "/");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// What the process is
// ---------------------------------------------------------------------------

#[test]
fn exec_takes_its_defaults_from_the_config_process() {
    let ctx = Ctx::new("exdef");
    let (id, _b, _) = running(&ctx, |b| {
        let p = b.process();
        p["env"] = json!(["PATH=/bin", "FOO=from-config"]);
        p["cwd"] = json!("/tmp");
        p["user"] = json!({"uid": 1000, "gid": 100, "additionalGids": [10]});
        p["noNewPrivileges"] = true.into();
        p["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 333, "soft": 222}]);
    });
    let out = exec_rt(
        &ctx,
        &[
            &id,
            "sh",
            "-c",
            "echo $FOO; pwd; id -u; id -g; grep -E '^(Groups|NoNewPrivs)' /proc/self/status; \
             ulimit -n; ulimit -Hn; echo $HOME",
        ],
    );
    out.assert_ok("exec");
    let l = lines(&out.stdout);
    assert_eq!(l[0], "from-config", "{}", out.stdout);
    assert_eq!(l[1], "/tmp");
    assert_eq!(l[2], "1000");
    assert_eq!(l[3], "100");
    assert_eq!(
        l[4].split_whitespace().collect::<Vec<_>>(),
        ["Groups:", "10"]
    );
    assert_eq!(
        l[5].split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );
    assert_eq!(l[6], "222");
    assert_eq!(l[7], "333");
    // HOME from the container's /etc/passwd.
    assert_eq!(l[8], "/home/user");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_flags_override_env_cwd_user_groups_and_no_new_privs() {
    let ctx = Ctx::new("exflags");
    let (id, _b, _) = running(&ctx, |b| {
        b.process()["env"] = json!(["PATH=/bin", "FOO=from-config", "KEEP=1"]);
        b.process()["noNewPrivileges"] = false.into();
    });
    let script = "env | grep -E '^(FOO|KEEP|NEW)=' | sort; pwd; id -u; id -g; \
                  grep -E '^(Groups|NoNewPrivs)' /proc/self/status";
    let out = exec_rt(
        &ctx,
        &[
            "-e",
            "FOO=from-flag",
            "-e",
            "NEW=a=b",
            "--cwd",
            "/home/user",
            "-u",
            "1000:100",
            "-g",
            "10",
            "-g",
            "1000",
            "--no-new-privs",
            &id,
            "sh",
            "-c",
            script,
        ],
    );
    out.assert_ok("exec with flags");
    let l = lines(&out.stdout);
    // The flag replaces the config's FOO: it appears once.
    assert_eq!(
        l[..3],
        ["FOO=from-flag", "KEEP=1", "NEW=a=b"],
        "{}",
        out.stdout
    );
    assert_eq!(l[3], "/home/user");
    assert_eq!(l[4], "1000");
    assert_eq!(l[5], "100");
    assert_eq!(
        l[6].split_whitespace().collect::<Vec<_>>(),
        ["Groups:", "10", "1000"]
    );
    assert_eq!(
        l[7].split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );

    // --user UID alone keeps the config's gid (0 here).
    let out = exec_rt(&ctx, &["-u", "1000", &id, "sh", "-c", "id -u; id -g"]);
    out.assert_ok("exec -u 1000");
    assert_eq!(lines(&out.stdout), ["1000", "0"]);
    // Without flags: the config's values, no no_new_privs.
    let out = exec_rt(&ctx, &[&id, "grep", "NoNewPrivs", "/proc/self/status"]);
    out.assert_ok("exec");
    assert!(out.stdout.trim().ends_with('0'), "{}", out.stdout);
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// Parses a `CapXxx:\t<hex>` line.
fn cap_bits(status: &str, key: &str) -> u64 {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
fn exec_cap_adds_to_bounding_effective_and_permitted() {
    const SYS_ADMIN: u64 = 1 << 21;
    const NET_RAW: u64 = 1 << 13;
    let ctx = Ctx::new("excap");
    let (id, _b, _) = running(&ctx, |b| {
        b.process()["capabilities"] = json!({
            "bounding": ["CAP_KILL"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"],
        });
    });
    let out = exec_rt(&ctx, &[&id, "cat", "/proc/self/status"]);
    out.assert_ok("exec");
    for key in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(cap_bits(&out.stdout, key), 1 << 5, "{key}");
    }
    let out = exec_rt(
        &ctx,
        &[
            "--cap",
            "CAP_SYS_ADMIN",
            "--cap",
            "CAP_NET_RAW",
            &id,
            "cat",
            "/proc/self/status",
        ],
    );
    out.assert_ok("exec --cap");
    for key in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(
            cap_bits(&out.stdout, key),
            1 << 5 | SYS_ADMIN | NET_RAW,
            "{key}: {}",
            out.stdout
        );
    }
    // Never inheritable (CVE-2022-29162), and no ambient without it.
    assert_eq!(cap_bits(&out.stdout, "CapInh"), 0);
    assert_eq!(cap_bits(&out.stdout, "CapAmb"), 0);
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_process_json_describes_the_whole_process() {
    let ctx = Ctx::new("exproc");
    let (id, _b, _) = running(&ctx, |_| {});
    let file = ctx.dir.join("process.json");
    write_file(
        &file,
        &json!({
            "args": ["sh", "-c", "echo $X; pwd; id -u; id -g; cat /only-here"],
            "cwd": "/tmp",
            "env": ["PATH=/bin", "X=from-file"],
            "user": {"uid": 1000, "gid": 1000},
            "terminal": false,
        })
        .to_string(),
    );
    let path = file.to_str().unwrap();
    let out = exec_rt(&ctx, &["-p", path, &id]);
    out.assert_ok("exec -p");
    assert_eq!(
        lines(&out.stdout),
        ["from-file", "/tmp", "1000", "1000", ONLY_IN_ROOTFS.trim()]
    );
    // The flags that describe a process are ignored with --process, as in
    // runc: the file is the whole process.
    let out = exec_rt(
        &ctx,
        &[
            "--process",
            path,
            "-e",
            "X=flag",
            "--cwd",
            "/",
            &id,
            "echo",
            "args",
        ],
    );
    out.assert_ok("exec -p with flags");
    assert_eq!(
        lines(&out.stdout)[..2],
        ["from-file", "/tmp"],
        "{}",
        out.stdout
    );
    if !runtime_is_runc() {
        assert!(out.stderr.contains("ignored"), "{}", out.stderr);
    }
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// How the runtime follows the process
// ---------------------------------------------------------------------------

#[test]
fn exec_passes_the_exit_code_through() {
    let ctx = Ctx::new("excode");
    let (id, _b, _) = running(&ctx, |_| {});
    let out = exec_rt(&ctx, &[&id, "sh", "-c", "exit 7"]);
    assert_eq!(out.code(), Some(7), "{}", out.stderr);
    let out = exec_rt(&ctx, &[&id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.code(), Some(128 + 9), "{}", out.stderr);
    let out = exec_rt(&ctx, &[&id, "true"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_forwards_signals_to_the_process() {
    let ctx = Ctx::new("exsig");
    let (id, _b, _) = running(&ctx, |_| {});
    for (sig, name) in [(libc::SIGTERM, "TERM"), (libc::SIGUSR1, "USR1")] {
        let mut c = ctx.cmd();
        c.args(["exec", &id, "sh", "-c"])
            .arg(format!(
                "trap 'echo got-{name}; exit 42' {name}; echo ready; \
                 while true; do sleep 0.05; done"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn exec");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = rx.recv_timeout(POLL_TIMEOUT);
        assert_eq!(first.as_deref(), Ok("ready"), "the process never started");
        kill_pid(child.id() as i32, sig);
        let status = wait_child(&mut child, CMD_TIMEOUT, "exec with a trap");
        let rest: Vec<String> = rx.try_iter().collect();
        assert_eq!(
            status.code(),
            Some(42),
            "{name}: {status:?}, output {rest:?}"
        );
        assert_eq!(rest, [format!("got-{name}")]);
    }
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_detach_writes_the_pid_file_and_returns() {
    let ctx = Ctx::new("exdet");
    let (id, _b, init) = running(&ctx, |_| {});
    let mut c = ctx.cmd();
    let pid_file = ctx.dir.join("exec.pid");
    c.args(["exec", "-d", "--pid-file"]).arg(&pid_file).args([
        &id,
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    let out = ctx.exec_detached(&mut c, "detached-exec", None);
    out.assert_ok("exec -d");
    assert!(out.elapsed < Duration::from_secs(10));
    let text = read_file(&pid_file);
    assert!(!text.ends_with('\n'), "pid file has a newline: {text:?}");
    let pid: i32 = text.parse().expect("bare pid");
    assert!(pid_alive(pid), "the detached process is gone");
    // The process keeps the runtime's stdout.
    poll(POLL_TIMEOUT, "the detached process's output", || {
        read_file(&ctx.stdout_path("detached-exec"))
            .contains("started")
            .then_some(())
    });
    poll(POLL_TIMEOUT, "the process to exec sleep", || {
        fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .filter(|c| c.starts_with(b"sleep\0"))
    });
    assert_eq!(ps_json(&ctx, &id), BTreeSet::from([init, pid]));
    ctx.rt(&["delete", "--force", &id])
        .assert_ok("delete --force");
    wait_pid_dead(pid);
    ctx.assert_clean();
}

/// In a forked child: make `raw` the inheritable fd `target`.
fn fd_as(raw: i32, target: i32) -> std::io::Result<()> {
    // SAFETY: dup2 and fcntl are async-signal-safe.
    unsafe {
        if raw != target && libc::dup2(raw, target) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::fcntl(target, libc::F_SETFD, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[test]
fn exec_preserve_fds_passes_extra_descriptors_only() {
    let ctx = Ctx::new("exfds");
    let (id, _b, _) = running(&ctx, |_| {});
    let data = ctx.dir.join("fd3.txt");
    write_file(&data, "through-fd-3\n");
    // The shell's own fds: ls is its child (`; true` keeps sh from exec'ing
    // the last command), and no pipeline, whose pipes the shell would hold.
    let script = "cat <&3; ls /proc/$$/fd; true";
    let run = |preserve: bool| {
        let file = fs::File::open(&data).unwrap();
        let raw = std::os::fd::AsRawFd::as_raw_fd(&file);
        let mut c = ctx.cmd();
        c.arg("exec");
        if preserve {
            c.args(["--preserve-fds", "1"]);
        }
        c.args([&id, "sh", "-c", script]);
        // SAFETY: fd_as only calls async-signal-safe functions.
        unsafe {
            c.pre_exec(move || fd_as(raw, 3));
        }
        let out = exec(&mut c, CMD_TIMEOUT);
        drop(file);
        out
    };
    let out = run(true);
    out.assert_ok("exec --preserve-fds 1");
    assert_eq!(
        lines(&out.stdout),
        ["through-fd-3", "0", "1", "2", "3"],
        "{}",
        out.stdout
    );
    let out = run(false);
    assert!(
        !out.stdout.contains("through-fd-3"),
        "fd 3 leaked: {}",
        out.stdout
    );
    assert_eq!(lines(&out.stdout), ["0", "1", "2"], "{}", out.stdout);
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Other kinds of container, other states
// ---------------------------------------------------------------------------

#[test]
fn exec_into_a_user_namespace_container() {
    let ctx = Ctx::new("exuserns");
    let (id, _b, init) = running(&ctx, |b| {
        b.set_namespace("user", None);
        b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        b.remove_mount("/sys/fs/cgroup");
    });
    let out = exec_rt(
        &ctx,
        &[
            &id,
            "sh",
            "-c",
            "cat /proc/self/uid_map; id -u; readlink /proc/self/ns/user",
        ],
    );
    out.assert_ok("exec into a user namespace");
    let l = lines(&out.stdout);
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(words(&l[0]), ["0", "100000", "65536"], "{}", out.stdout);
    assert_eq!(l[1], "0");
    assert_eq!(l[2], ns_link(init, "user"));
    // As another container user: host uid 101000.
    let pid = exec_detached(&ctx, &["-u", "1000:1000"], &id, &["sleep", "1000"]);
    assert_eq!(ns_link(pid, "user"), ns_link(init, "user"));
    let uids = proc_status_field(pid, "Uid");
    assert_eq!(uids.split_whitespace().next(), Some("101000"), "{uids}");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_into_a_rootless_container() {
    skip_unless_rootless_possible!();
    let ctx = rootless_ctx("exrl");
    let path = ctx.dir.join("rlbundle");
    make_rootfs(&path.join("rootfs"));
    write_file(&path.join("rootfs/only-here"), ONLY_IN_ROOTFS);
    chown(&path, UNPRIV_UID, UNPRIV_GID);
    let mut c = ctx.cmd();
    c.args(["spec", "--rootless", "--bundle"]).arg(&path);
    exec(&mut c, CMD_TIMEOUT).assert_ok("spec --rootless");
    let mut b = Bundle {
        config: parse_json(&read_file(&path.join("config.json")), "config"),
        path,
    };
    b.config["process"]["terminal"] = json!(false);
    b.args(&["sleep", "1000"]);
    let id = ctx.id("c");
    ctx.run_detached(&id, &b, &[]).assert_ok("rootless run -d");
    let init = ctx.pid(&id);
    let out = exec_rt(
        &ctx,
        &[
            &id,
            "sh",
            "-c",
            "id -u; cat /only-here; readlink /proc/self/ns/user; readlink /proc/self/ns/mnt",
        ],
    );
    out.assert_ok("rootless exec");
    let l = lines(&out.stdout);
    assert_eq!(l[0], "0");
    assert_eq!(l[1], ONLY_IN_ROOTFS.trim());
    assert_eq!(l[2], ns_link(init, "user"));
    assert_eq!(l[3], ns_link(init, "mnt"));
    // runc 1.1 cannot list the processes without cgroups; rootcell
    // falls back to init.
    if !runtime_is_runc() {
        assert!(ps_json(&ctx, &id).contains(&init));
    }
    ctx.rt(&["delete", "--force", &id])
        .assert_ok("rootless delete");
    ctx.assert_clean();
}

#[test]
fn exec_into_a_stopped_container_fails() {
    let ctx = Ctx::new("exstop");
    let mut b = ctx.bundle();
    b.args(&["true"]);
    let id = ctx.id("c");
    ctx.run_detached(&id, &b, &[]).assert_ok("run -d");
    ctx.wait_status(&id, "stopped");
    let out = exec_rt(&ctx, &[&id, "echo", "ran"]);
    out.assert_fail("exec into a stopped container");
    assert!(!out.stdout.contains("ran"));
    if !runtime_is_runc() {
        assert!(out.stderr.contains("stopped"), "{}", out.stderr);
    }
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_into_a_created_container_runs_and_leaves_it_created() {
    // runc 1.1 allows it: init has finished setting up and waits at the
    // start gate.
    let ctx = Ctx::new("excreated");
    let mut b = ctx.bundle();
    b.args(&["sleep", "1000"]);
    write_file(&b.rootfs().join("only-here"), ONLY_IN_ROOTFS);
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("create");
    let out = exec_rt(&ctx, &[&id, "cat", "/only-here"]);
    out.assert_ok("exec into a created container");
    assert_eq!(out.stdout, ONLY_IN_ROOTFS);
    assert_eq!(ctx.status(&id), "created");
    ctx.rt(&["start", &id]).assert_ok("start");
    assert_eq!(ctx.status(&id), "running");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_into_a_paused_container_needs_ignore_paused() {
    let ctx = Ctx::new("expause");
    let (id, _b, _) = running(&ctx, |_| {});
    let Some(freezer) = cgroups_named(&id)
        .into_iter()
        .find(|d| d.join("freezer.state").exists())
    else {
        return skip("no v1 freezer hierarchy");
    };
    write_file(&freezer.join("freezer.state"), "FROZEN");
    ctx.wait_status(&id, "paused");
    let out = exec_rt(&ctx, &[&id, "true"]);
    out.assert_fail("exec into a paused container");
    if !runtime_is_runc() {
        assert!(out.stderr.contains("--ignore-paused"), "{}", out.stderr);
    }
    // With --ignore-paused the process joins the frozen cgroup and runs
    // once it is thawed.
    let mut c = ctx.cmd();
    c.args(["exec", "--ignore-paused", &id, "echo", "thawed"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().expect("spawn exec");
    thread::sleep(Duration::from_millis(300));
    write_file(&freezer.join("freezer.state"), "THAWED");
    let out = child.wait_with_output().expect("exec --ignore-paused");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "thawed\n");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_in_a_sub_cgroup() {
    let ctx = Ctx::new("exsubcg");
    let (id, _b, init) = running(&ctx, |_| {});
    // The container's own cgroup directories: those holding init.
    let dirs: Vec<PathBuf> = cgroups_named(&id)
        .into_iter()
        .filter(|d| {
            fs::read_to_string(d.join("cgroup.procs"))
                .is_ok_and(|p| p.lines().any(|l| l.trim() == init.to_string()))
        })
        .collect();
    assert!(!dirs.is_empty(), "no cgroup holds init");
    for d in &dirs {
        fs::create_dir(d.join("sub")).unwrap();
        // A new v1 cpuset cgroup takes no task until it has cpus and mems.
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = fs::read_to_string(d.join(file)) {
                write_file(&d.join("sub").join(file), value.trim());
            }
        }
    }
    let pid = exec_detached(&ctx, &["--cgroup", "sub"], &id, &["sleep", "1000"]);
    let cgroups = read_file(Path::new(&format!("/proc/{pid}/cgroup")));
    for line in cgroups.lines() {
        assert!(line.ends_with("/sub"), "not in the sub-cgroup: {cgroups}");
    }
    if let Some(pids_dir) = dirs.iter().find(|d| d.starts_with("/sys/fs/cgroup/pids")) {
        let one = exec_detached(&ctx, &["--cgroup", "pids:sub"], &id, &["sleep", "999"]);
        let cgroups = read_file(Path::new(&format!("/proc/{one}/cgroup")));
        for line in cgroups.lines() {
            assert_eq!(line.contains(":pids:"), line.ends_with("/sub"), "{cgroups}");
        }
        assert!(read_file(&pids_dir.join("sub/cgroup.procs")).contains(&one.to_string()));
    }
    // Several controllers in one flag, each with its own hierarchy here
    // (cpu and cpuacct are mounted apart on this kind of machine; together
    // elsewhere), and a second flag for another controller.
    let has = |c: &str| {
        dirs.iter()
            .any(|d| d.starts_with(format!("/sys/fs/cgroup/{c}")))
    };
    if has("cpu") && has("memory") {
        let two = exec_detached(
            &ctx,
            &["--cgroup", "cpu,cpuacct:/sub", "--cgroup", "memory:sub"],
            &id,
            &["sleep", "998"],
        );
        let cgroups = read_file(Path::new(&format!("/proc/{two}/cgroup")));
        for line in cgroups.lines() {
            let controllers = line.split(':').nth(1).unwrap_or("");
            let moved = controllers
                .split(',')
                .any(|c| matches!(c, "cpu" | "cpuacct" | "memory"));
            assert_eq!(line.ends_with("/sub"), moved, "{cgroups}");
        }
    }
    // ps sees the processes in sub-cgroups too.
    assert!(ps_json(&ctx, &id).contains(&pid));
    let out = exec_rt(&ctx, &["--cgroup", "no-such-sub", &id, "true"]);
    out.assert_fail("exec into a missing sub-cgroup");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    wait_pid_dead(pid);
    ctx.assert_clean();
}

#[test]
fn exec_sub_cgroup_refusals_name_the_reason() {
    let ctx = Ctx::new("exsubbad");
    let (id, b, init) = running(&ctx, |_| {});
    for d in cgroups_named(&id) {
        fs::create_dir(d.join("sub")).unwrap();
    }
    // (flags, what rootcell's error says)
    let cases: [(&[&str], &str); 6] = [
        (&["--cgroup", "no-such-sub"], "no such sub-cgroup"),
        (&["--cgroup", "../sub"], "leaves the container's cgroup"),
        (
            &["--cgroup", "pids:sub/../.."],
            "leaves the container's cgroup",
        ),
        (
            &["--cgroup", "nosuchcontroller:sub"],
            "unknown controller nosuchcontroller",
        ),
        (
            &["--cgroup", "sub", "--cgroup", "pids:sub"],
            "missing CONTROLLER: prefix",
        ),
        (
            &["--cgroup", "pids:sub", "--cgroup", "pids:sub"],
            "given twice",
        ),
    ];
    for (flags, why) in cases {
        if runtime_is_runc() && why == "given twice" {
            // runc 1.1 lets the last one win; runc 1.2 refuses, as rootcell.
            continue;
        }
        let mut args = flags.to_vec();
        args.extend([id.as_str(), "touch", "/exec-ran"]);
        let out = exec_rt(&ctx, &args);
        out.assert_fail(&format!("exec {flags:?}"));
        if !runtime_is_runc() {
            assert!(out.stderr.contains(why), "{flags:?}: {}", out.stderr);
            assert_eq!(out.code(), Some(255), "{flags:?}");
        }
    }
    // Nothing ran, nothing stays: init is the container's only process.
    assert!(!b.rootfs().join("exec-ran").exists(), "a refused exec ran");
    assert_eq!(ps_json(&ctx, &id), BTreeSet::from([init]));
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn exec_in_a_sub_cgroup_on_pure_cgroup2() {
    // cgroup2 mounted over the host's hybrid layout in a private mount
    // namespace: only the plain PATH form exists; CONTROLLER:PATH is
    // refused saying why.
    let ctx = Ctx::new("exsubv2");
    let mut b = ctx.bundle();
    b.args(&["sleep", "1000"]);
    b.save();
    let id = ctx.id("c");
    let rt = format!(
        "{} --root {}",
        runtime_path().display(),
        ctx.state_dir().display()
    );
    let script = format!(
        "set -e
mount -t cgroup2 none /sys/fs/cgroup
{rt} run -d --bundle {bundle} {id} </dev/null >/dev/null
mkdir /sys/fs/cgroup/{id}/sub
{rt} exec -d --pid-file {dir}/pid --cgroup /sub {id} sleep 999 </dev/null >/dev/null
cat /proc/$(cat {dir}/pid)/cgroup > {dir}/cgroup
if {rt} exec --cgroup pids:sub {id} true 2> {dir}/controller-form; then exit 3; fi
if {rt} exec --cgroup nope {id} true 2> {dir}/missing; then exit 4; fi
{rt} delete --force {id}
test ! -e /sys/fs/cgroup/{id}
echo ok",
        bundle = b.path.display(),
        dir = ctx.dir.display(),
    );
    let out = sh_in_private_mount_ns(&script);
    out.assert_ok("exec --cgroup on cgroup2");
    assert!(out.stdout.contains("ok"), "{}", out.all());
    // The v1 lines (this host's controllers) stay the runtime's.
    let cgroups = read_file(&ctx.dir.join("cgroup"));
    assert!(
        cgroups.lines().any(|l| l == format!("0::/{id}/sub")),
        "{cgroups}"
    );
    if !runtime_is_runc() {
        let why = read_file(&ctx.dir.join("controller-form"));
        assert!(
            why.contains("cgroup v2") && why.contains("plain PATH"),
            "{why}"
        );
        let why = read_file(&ctx.dir.join("missing"));
        assert!(why.contains("no such sub-cgroup"), "{why}");
    }
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

#[test]
fn exec_bad_input_fails_and_leaves_nothing_behind() {
    let ctx = Ctx::new("exbad");
    let (id, _b, init) = running(&ctx, |_| {});
    let bad_json = ctx.dir.join("bad.json");
    write_file(&bad_json, r#"{"args": "sh", "cwd": "/"}"#);
    let no_cwd = ctx.dir.join("nocwd.json");
    write_file(&no_cwd, r#"{"args": ["true"]}"#);
    let missing = ctx.dir.join("missing.json");
    let (bad_json, no_cwd, missing) = (
        bad_json.to_str().unwrap(),
        no_cwd.to_str().unwrap(),
        missing.to_str().unwrap(),
    );
    // (flags and command, what a rootcell error must mention)
    let cases: &[(&[&str], &str)] = &[
        (&["no-such-container", "true"], "does not exist"),
        (&[&id], "command"),
        (&["-u", "abc", &id, "true"], "--user"),
        (&["-u", "1000:x", &id, "true"], "--user"),
        (&["--cwd", "relative", &id, "true"], "--cwd"),
        (&["--cwd", "/no/such/dir", &id, "true"], "/no/such/dir"),
        (&[&id, "/no/such/program"], "/no/such/program"),
        (&[&id, "no-such-program-in-path"], "no-such-program-in-path"),
        (&["-e", "NOEQUALS", &id, "true"], "--env"),
        (&["-p", missing, &id], "missing.json"),
        (&["-p", bad_json, &id], "args"),
        (&["-p", no_cwd, &id], "cwd"),
        (&["--apparmor", "some-profile", &id, "true"], "AppArmor"),
        (
            &["--process-label", "system_u:system_r:x:s0", &id, "true"],
            "SELinux",
        ),
        (&["--tty", "--detach", &id, "true"], "--console-socket"),
    ];
    for (args, culprit) in cases {
        let out = exec_rt(&ctx, args);
        out.assert_fail(&format!("exec {args:?}"));
        if !runtime_is_runc() {
            assert!(
                out.stderr.to_lowercase().contains(&culprit.to_lowercase()),
                "exec {args:?}: the error does not mention {culprit:?}:\n{}",
                out.stderr
            );
            // runc's exit code for a failed exec.
            assert_eq!(out.code(), Some(255), "exec {args:?}");
        }
        assert_eq!(
            ps_json(&ctx, &id),
            BTreeSet::from([init]),
            "exec {args:?} left a process in the container"
        );
        assert_eq!(
            ctx.leftover_pids(),
            vec![init],
            "exec {args:?} left a process"
        );
    }
    assert_eq!(ctx.status(&id), "running");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// ps
// ---------------------------------------------------------------------------

#[test]
fn ps_lists_the_container_processes() {
    let ctx = Ctx::new("exps");
    let (id, _b, init) = running(&ctx, |_| {});
    let pid = exec_detached(&ctx, &[], &id, &["sleep", "999"]);
    assert_eq!(ps_json(&ctx, &id), BTreeSet::from([init, pid]));

    // The table: the header of `ps -ef`, then exactly the container's lines.
    let out = ctx.rt(&["ps", &id]);
    out.assert_ok("ps");
    let l: Vec<&str> = out.stdout.lines().collect();
    let column = l[0]
        .split_whitespace()
        .position(|h| h == "PID")
        .unwrap_or_else(|| panic!("no PID column: {}", out.stdout));
    let listed: BTreeSet<i32> = l[1..]
        .iter()
        .map(|line| {
            line.split_whitespace()
                .nth(column)
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(listed, BTreeSet::from([init, pid]), "{}", out.stdout);
    assert!(l[0].contains("CMD"), "{}", l[0]);

    // Options after the id go to ps(1), dashes included.
    let out = ctx.rt(&["ps", &id, "-o", "pid,comm"]);
    out.assert_ok("ps -o pid,comm");
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["PID", "COMMAND"]);
    assert_eq!(rows.len(), 3, "{}", out.stdout);
    assert!(rows[1..].iter().all(|r| r[1] == "sleep"), "{}", out.stdout);

    let out = ctx.rt(&["ps", "-f", "json", "no-such-container"]);
    out.assert_fail("ps of an unknown container");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Attacks: leaked fds (CVE-2024-21626)
// ---------------------------------------------------------------------------

const HOST_SECRET: &str = "host-secret";
const ESCAPED: &str = "ESCAPED-TO-THE-HOST";

/// A host directory holding a secret and a busybox (`busybox echo
/// ESCAPED` run from there prints it: a binary, since a script's
/// interpreter would reopen the script after exec, when a close-on-exec
/// fd is already gone), and a command whose runtime inherits fd 5 open on
/// the host's `/` and fd 6 on that directory (as a runtime that leaks its
/// own fds would hold them).
struct LeakedFds {
    host_dir: PathBuf,
    root: CString,
    dir: CString,
}

impl LeakedFds {
    fn new(ctx: &Ctx) -> LeakedFds {
        let host_dir = ctx.dir.join("host-dir");
        write_file(&host_dir.join("secret"), HOST_SECRET);
        let busybox = host_dir.join("busybox");
        fs::copy("/bin/busybox", &busybox).expect("copy busybox");
        fs::set_permissions(&busybox, fs::Permissions::from_mode(0o755)).unwrap();
        LeakedFds {
            root: CString::new("/").unwrap(),
            dir: CString::new(host_dir.to_str().unwrap()).unwrap(),
            host_dir,
        }
    }

    fn entries(&self) -> BTreeSet<String> {
        fs::read_dir(&self.host_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Gives `c` the inherited fds 5 (`/`) and 6 (the host directory).
    fn leak_into(&self, c: &mut Command) {
        let (root, dir) = (self.root.clone(), self.dir.clone());
        // SAFETY: open, dup2 and fcntl are async-signal-safe; the strings
        // were allocated before the fork.
        unsafe {
            c.pre_exec(move || {
                for (path, target) in [(&root, 5), (&dir, 6)] {
                    let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    fd_as(fd, target)?;
                    if fd != target {
                        libc::close(fd);
                    }
                }
                Ok(())
            });
        }
    }

    #[track_caller]
    fn assert_not_reached(&self, what: &str, out: &Out) {
        assert!(
            !out.stdout.contains(HOST_SECRET) && !out.stdout.contains(ESCAPED),
            "{what}: the process reached the host:\n{}",
            out.all()
        );
        assert_eq!(
            self.entries(),
            BTreeSet::from(["busybox".to_owned(), "secret".to_owned()]),
            "{what}: the host directory changed"
        );
    }
}

/// `exec` started by a runtime that holds fds on host directories: no
/// `--cwd` or `args[0]` through `/proc/self/fd/N` (directly, through `..`,
/// or through a symlink in the rootfs) reaches the host, whatever N (the
/// leaked fds, or the runtime's own, such as its private procfs), and the
/// process gets only fds 0, 1 and 2. Upstream runc before 1.1.12 fails
/// this test (CVE-2024-21626).
#[test]
fn exec_leaked_fds_do_not_reach_the_host() {
    let ctx = Ctx::new("exleak");
    let leaked = LeakedFds::new(&ctx);
    let host_dir = leaked.host_dir.to_str().unwrap().to_owned();
    let (id, b, _) = running(&ctx, |_| {});
    symlink("/proc/self/fd/6", b.rootfs().join("leak")).unwrap();
    let exec_leaking = |args: &[&str]| {
        let mut c = ctx.cmd();
        c.arg("exec").args(args);
        leaked.leak_into(&mut c);
        exec(&mut c, CMD_TIMEOUT)
    };

    let mut cwds = vec!["/leak".to_owned(), "/leak/..".to_owned()];
    let mut programs = vec!["/leak/busybox".to_owned()];
    for n in 3..=20 {
        let fd = format!("/proc/self/fd/{n}");
        // The fd itself, the host's `/` through `..` from any directory
        // of the host, and the host's `/` through a host procfs.
        cwds.extend([
            fd.clone(),
            format!("{fd}/../../../../../../..{host_dir}"),
            format!("{fd}/1/root{host_dir}"),
        ]);
        programs.extend([
            format!("{fd}/busybox"),
            format!("{fd}/../../../../../../..{host_dir}/busybox"),
            format!("{fd}/1/root{host_dir}/busybox"),
        ]);
    }
    for cwd in &cwds {
        let out = exec_leaking(&["--cwd", cwd, &id, "cat", "secret"]);
        leaked.assert_not_reached(&format!("--cwd {cwd}"), &out);
    }
    for program in &programs {
        let out = exec_leaking(&[&id, program, "echo", ESCAPED]);
        leaked.assert_not_reached(&format!("exec {program}"), &out);
    }
    // The shell's own fds (see exec_preserve_fds_passes_extra_descriptors_only).
    let out = exec_leaking(&[&id, "sh", "-c", "ls /proc/$$/fd; true"]);
    out.assert_ok("exec with leaked fds");
    assert_eq!(
        lines(&out.stdout),
        ["0", "1", "2"],
        "fds of the exec'd process"
    );
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// The same leaked fds and `args[0]` through them for the container's own
/// process (`run`): it must not exec the host's program. rootcell before
/// `Exec::run` closed the fds failed this test, as upstream runc before
/// 1.1.12 does (CVE-2024-21626).
#[test]
fn run_args_through_leaked_fds_do_not_reach_the_host() {
    let ctx = Ctx::new("runleak");
    let leaked = LeakedFds::new(&ctx);
    let host_dir = leaked.host_dir.to_str().unwrap().to_owned();
    let mut b = ctx.bundle();
    for n in 3..=12 {
        for program in [
            format!("/proc/self/fd/{n}/busybox"),
            format!("/proc/self/fd/{n}/../../../../../../..{host_dir}/busybox"),
            format!("/proc/self/fd/{n}/1/root{host_dir}/busybox"),
        ] {
            b.args(&[&program, "echo", ESCAPED]);
            let id = ctx.id(&format!("c{n}"));
            let mut c = ctx.run_cmd(&id, &b, &[]);
            leaked.leak_into(&mut c);
            let out = exec(&mut c, CMD_TIMEOUT);
            leaked.assert_not_reached(&format!("run {program}"), &out);
            let _ = ctx.rt(&["delete", "--force", &id]);
        }
    }
    ctx.assert_clean();
}

/// `exec --cap X` adds X to the bounding, effective and permitted sets
/// only: in a container whose process has inheritable and ambient sets,
/// neither gains X (CVE-2022-29162), they stay as configured.
#[test]
fn exec_cap_never_reaches_inheritable_or_ambient() {
    const KILL: u64 = 1 << 5;
    const SYS_ADMIN: u64 = 1 << 21;
    let ctx = Ctx::new("excap-inh");
    let (id, _b, _) = running(&ctx, |b| {
        b.process()["capabilities"] = json!({
            "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
            "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"],
        });
    });
    for user in ["0:0", "1000:1000"] {
        let out = exec_rt(
            &ctx,
            &[
                "--cap",
                "CAP_SYS_ADMIN",
                "--user",
                user,
                &id,
                "cat",
                "/proc/self/status",
            ],
        );
        out.assert_ok("exec --cap");
        let s = &out.stdout;
        assert_eq!(cap_bits(s, "CapBnd"), KILL | SYS_ADMIN, "{user}: {s}");
        assert_eq!(cap_bits(s, "CapInh"), KILL, "{user}: {s}");
        assert_eq!(cap_bits(s, "CapAmb"), KILL, "{user}: {s}");
        // Root keeps its bounding set; another user only the ambient one.
        let want = if user == "0:0" {
            KILL | SYS_ADMIN
        } else {
            KILL
        };
        assert_eq!(cap_bits(s, "CapPrm"), want, "{user}: {s}");
        assert_eq!(cap_bits(s, "CapEff"), want, "{user}: {s}");
    }
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}
