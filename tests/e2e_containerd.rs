//! End to end: containerd (through its runc shim, `ctr run --runc-binary`)
//! drives the runtime under test. Each test starts its own containerd with
//! its own root, state and socket in its temp dir, in a private mount
//! namespace of its own thread, imports a busybox image built here as an
//! OCI archive, and stops the daemon at the end: nothing is left behind.

mod common;

use common::console::check_shell_on_a_terminal;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CTR_TIMEOUT: Duration = Duration::from_secs(60);
const IMAGE: &str = "localhost/busybox:latest";

/// Builds an OCI image archive (one layer: a rootfs) named `IMAGE`:
/// `make-oci-archive ROOTFS OUT.tar IMAGE-NAME` (shared with the benchmarks).
/// Compiled in, not run from the checkout, which the test's own mounts may
/// cover (a checkout under /run or /opt).
const MAKE_OCI_ARCHIVE: &str = include_str!("../scripts/make-oci-archive");

/// A private containerd daemon.
struct Containerd {
    dir: PathBuf,
    daemon: Child,
    ctx: Ctx,
    /// Parent of the containers' cgroups (`ctr run --cgroup`), removed at
    /// the end: containerd's default, `/default`, would outlive the test.
    cgroup_parent: String,
}

impl Containerd {
    /// `None` (and a skip notice) when containerd is not installed.
    fn start(name: &str) -> Option<Containerd> {
        if Command::new("containerd")
            .arg("--version")
            .output()
            .is_err()
            || !command_exists("ctr")
            || !command_exists("python3")
        {
            skip("containerd, ctr or python3 is not installed (scripts/setup installs them)");
            return None;
        }
        // The binary may live under a directory covered below (a checkout
        // in /run or /opt): held open now, copied into the test's dir after.
        let held = HeldRuntime::open();
        enter_private_mount_namespace();
        // containerd and its shims keep state in /run/containerd (the
        // runtime's --root among it) and /opt/containerd, whatever the
        // daemon's own root and state say.
        cover_with_tmpfs(&["/run", "/opt"]);
        let mut ctx = Ctx::new(name);
        ctx.bin = held.install(&ctx.dir);
        let dir = ctx.dir.join("containerd");
        fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n",
            d = dir.display()
        );
        write_file(&dir.join("config.toml"), &config);
        let log = fs::File::create(dir.join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let cgroup_parent = format!(
            "e2e-{}",
            ctx.dir.file_name().unwrap_or_default().to_string_lossy()
        );
        let c = Containerd {
            dir,
            daemon,
            ctx,
            cgroup_parent,
        };
        poll(POLL_TIMEOUT, "containerd's socket", || {
            c.ctr(&["version"]).ok().then_some(())
        });
        c.import_busybox();
        Some(c)
    }

    fn import_busybox(&self) {
        let rootfs = self.dir.join("rootfs");
        make_rootfs(&rootfs);
        let archive = self.dir.join("busybox-oci.tar");
        let script = self.dir.join("make-oci-archive");
        write_file(&script, MAKE_OCI_ARCHIVE);
        exec(
            Command::new("python3")
                // Its work dir goes in the test's temp dir too.
                .env("TMPDIR", &self.dir)
                .arg(&script)
                .args([&rootfs, &archive])
                .arg(IMAGE),
            CMD_TIMEOUT,
        )
        .assert_ok("building the OCI archive");
        self.ctr(&["image", "import", &archive.to_string_lossy()])
            .assert_ok("ctr image import");
    }

    fn ctr_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .args(args);
        c
    }

    fn ctr(&self, args: &[&str]) -> Out {
        exec(&mut self.ctr_command(args), CTR_TIMEOUT)
    }

    /// `ctr run (--rm | -d) --runc-binary <runtime> --cgroup <ours>/<id>
    /// [flags] IMAGE ID ARGS...`
    fn run_command(&self, detach: bool, flags: &[&str], id: &str, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = vec![
            "run".into(),
            if detach { "-d" } else { "--rm" }.into(),
            "--runc-binary".into(),
            self.ctx.bin.to_string_lossy().into_owned(),
            "--cgroup".into(),
            format!("/{}/{id}", self.cgroup_parent),
        ];
        all.extend(flags.iter().map(|f| f.to_string()));
        all.extend([IMAGE.to_string(), id.to_string()]);
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    fn run(&self, flags: &[&str], id: &str, args: &[&str]) -> Out {
        let all = self.run_command(false, flags, id, args);
        self.ctr(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn run_detached(&self, id: &str, args: &[&str]) -> Out {
        let all = self.run_command(true, &[], id, args);
        self.ctr(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in self.ctr(&["task", "ls", "-q"]).stdout.lines() {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
            let _ = self.ctr(&["task", "delete", "--force", id]);
        }
        for id in self.ctr(&["container", "ls", "-q"]).stdout.lines() {
            let _ = self.ctr(&["container", "delete", id]);
        }
        let leftover = self.ctr(&["container", "ls", "-q"]).stdout;
        kill_pid(self.daemon.id() as i32, libc::SIGTERM);
        let _ = wait_child(&mut self.daemon, CTR_TIMEOUT, "containerd");
        let deadline = std::time::Instant::now() + POLL_TIMEOUT;
        let mut cgroups = remove_cgroups_named(&self.cgroup_parent);
        while !cgroups.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            cgroups = remove_cgroups_named(&self.cgroup_parent);
        }
        if !std::thread::panicking() {
            assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
            assert!(leftover.trim().is_empty(), "containers left: {leftover}");
            assert!(shims_of(&self.dir).is_empty(), "shims left running");
            assert!(
                self.ctx.leftover_pids().is_empty(),
                "container processes left"
            );
        }
    }
}

/// Pids of containerd shims started for the daemon in `dir`.
fn shims_of(dir: &Path) -> Vec<i32> {
    let needle = dir.join("containerd.sock").to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("containerd-shim") && cmdline.contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn ctr_run_output_and_exit_code() {
    let Some(c) = Containerd::start("ctr-run") else {
        return;
    };
    let out = c.run(&[], "t1", &["sh", "-c", "echo hi from ctr; exit 4"]);
    assert_eq!(out.code(), Some(4), "{}", out.all());
    assert_eq!(out.stdout, "hi from ctr\n");
    // The container is pid 1 of its own pid namespace, in its rootfs.
    let out = c.run(&[], "t2", &["sh", "-c", "echo $$; ls /"]);
    out.assert_ok("ctr run");
    let l = lines(&out.stdout);
    assert_eq!(l[0], "1", "{}", out.all());
    assert!(l.iter().any(|x| x == "proc"), "{}", out.all());
}

#[test]
fn ctr_detached_task_kill_delete() {
    let Some(c) = Containerd::start("ctr-task") else {
        return;
    };
    c.run_detached(
        "svc",
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; while :; do sleep 0.1; done",
        ],
    )
    .assert_ok("ctr run -d");
    let tasks = c.ctr(&["task", "ls"]);
    assert!(
        tasks.stdout.contains("svc") && tasks.stdout.contains("RUNNING"),
        "{}",
        tasks.all()
    );
    // The shim's pause, resume and metrics (`events --stats`, parsed
    // into go-runc's Stats).
    c.ctr(&["task", "pause", "svc"]).assert_ok("task pause");
    let tasks = c.ctr(&["task", "ls"]);
    assert!(tasks.stdout.contains("PAUSED"), "{}", tasks.all());
    c.ctr(&["task", "resume", "svc"]).assert_ok("task resume");
    let tasks = c.ctr(&["task", "ls"]);
    assert!(tasks.stdout.contains("RUNNING"), "{}", tasks.all());
    let metrics = c.ctr(&["task", "metrics", "svc"]);
    metrics.assert_ok("task metrics");
    assert!(metrics.stdout.contains("memory"), "{}", metrics.all());
    c.ctr(&["task", "kill", "svc"]).assert_ok("task kill");
    poll(POLL_TIMEOUT, "the task to stop", || {
        c.ctr(&["task", "ls"])
            .stdout
            .contains("STOPPED")
            .then_some(())
    });
    c.ctr(&["task", "delete", "svc"]).assert_ok("task delete");
    c.ctr(&["container", "delete", "svc"])
        .assert_ok("container delete");
}

/// `ctr run -d ... svc sleep 1000`; returns the task's (init's) host pid.
#[track_caller]
fn start_sleeper(c: &Containerd) -> i32 {
    c.run_detached("svc", &["sleep", "1000"])
        .assert_ok("ctr run -d");
    task_pids(c)[0]
}

/// Pids of `ctr task ps svc` (the shim asks `<runtime> ps --format json`).
#[track_caller]
fn task_pids(c: &Containerd) -> Vec<i32> {
    let out = c.ctr(&["task", "ps", "svc"]);
    out.assert_ok("ctr task ps");
    out.stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Kills, then deletes the task and container `svc`.
#[track_caller]
fn remove_sleeper(c: &Containerd) {
    c.ctr(&["task", "kill", "-s", "KILL", "svc"])
        .assert_ok("task kill");
    poll(POLL_TIMEOUT, "the task to stop", || {
        c.ctr(&["task", "ls"])
            .stdout
            .contains("STOPPED")
            .then_some(())
    });
    c.ctr(&["task", "delete", "svc"]).assert_ok("task delete");
    c.ctr(&["container", "delete", "svc"])
        .assert_ok("container delete");
}

fn cmdline(pid: i32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw)
        .replace('\0', " ")
        .trim()
        .to_owned()
}

#[test]
fn ctr_task_exec_exit_code_and_ps() {
    let Some(c) = Containerd::start("ctr-exec") else {
        return;
    };
    let init = start_sleeper(&c);
    assert_eq!(cmdline(init), "sleep 1000");
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "svc",
        "sh",
        "-c",
        "echo from exec $$; exit 6",
    ]);
    assert_eq!(out.code(), Some(6), "{}", out.all());
    // In the container's pid namespace, not its init.
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(&words[..2], ["from", "exec"], "{}", out.all());
    assert_ne!(words[2], "1", "{}", out.all());
    // A detached exec shows in `ctr task ps` next to init.
    c.ctr(&[
        "task",
        "exec",
        "-d",
        "--exec-id",
        "e2",
        "svc",
        "sleep",
        "999",
    ])
    .assert_ok("ctr task exec -d");
    let pids = poll(POLL_TIMEOUT, "two processes in ctr task ps", || {
        let pids = task_pids(&c);
        (pids.len() == 2).then_some(pids)
    });
    assert!(pids.contains(&init), "{pids:?}");
    let other = pids.iter().find(|p| **p != init).copied().unwrap();
    assert_eq!(cmdline(other), "sleep 999");
    remove_sleeper(&c);
}

/// Runs an interactive `sh` through ctr on a pty pair of ours: checks the
/// shell's terminal and size, and that its exit code comes back.
#[track_caller]
fn interactive_shell(c: &Containerd, args: &[String], code: i32) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check_shell_on_a_terminal(c.ctr_command(&args), code, CTR_TIMEOUT, "ctr on a terminal");
}

#[test]
fn ctr_run_tty_on_a_terminal() {
    let Some(c) = Containerd::start("ctr-run-tty") else {
        return;
    };
    let args = c.run_command(false, &["-t"], "t1", &["sh"]);
    interactive_shell(&c, &args, 3);
}

#[test]
fn ctr_task_exec_tty_on_a_terminal() {
    let Some(c) = Containerd::start("ctr-exec-tty") else {
        return;
    };
    let init = start_sleeper(&c);
    let args: Vec<String> = ["task", "exec", "-t", "--exec-id", "sh1", "svc", "sh"]
        .map(String::from)
        .to_vec();
    interactive_shell(&c, &args, 4);
    // The exec'd shell is gone, init runs on.
    assert_eq!(task_pids(&c), [init]);
    remove_sleeper(&c);
}

#[test]
fn ctr_run_memory_limit_and_cpus() {
    let Some(c) = Containerd::start("ctr-limits") else {
        return;
    };
    // The limits reach the container's cgroups (ctr's spec mounts no
    // cgroupfs inside: read the host's files).
    let limit = (48u64 << 20).to_string();
    let args = c.run_command(
        true,
        &["--memory-limit", &limit, "--cpus", "0.5"],
        "svc",
        &["sleep", "1000"],
    );
    c.ctr(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .assert_ok("ctr run -d --memory-limit --cpus");
    let host = |controller: &str, file: &str| {
        let dir = format!("/sys/fs/cgroup/{controller}/{}/svc", c.cgroup_parent);
        read_file(&Path::new(&dir).join(file)).trim().to_string()
    };
    assert_eq!(host("memory", "memory.limit_in_bytes"), limit);
    assert_eq!(host("cpu", "cpu.cfs_quota_us"), "50000");
    remove_sleeper(&c);
    // A hog is OOM-killed (no swap here: the limit is the whole budget).
    if fs::read_to_string("/proc/swaps").is_ok_and(|s| s.lines().count() <= 1) {
        let out = c.run(
            &["--memory-limit", &(32u64 << 20).to_string()],
            "l2",
            &["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"],
        );
        assert_eq!(out.code(), Some(137), "{}", out.all());
    } else {
        skip("swap is on: a memory-limit-only hog would swap, not die");
    }
    // ctr 1.6 has no `task update` (`ctr task update --help`: no help
    // topic): the shim's update path is exercised by podman update.
}

/// Recaptures `tests/fixtures/engines/containerd-1.6/*.json`, what
/// containerd's runc shim sends a runtime (`ctr run`, `ctr task exec`), for
/// `tests/foreign_configs.rs`; see `e2e_podman::capture_podman_configs`:
///
/// ```sh
/// ROOTCELL_TEST_RUNTIME=$PWD/target/release/rootcell unshare --mount --propagation private -- \
///     cargo test -p rootcell-cli --test e2e_containerd -- --ignored capture_containerd_configs
/// ```
#[test]
#[ignore = "recaptures the containerd fixtures of foreign_configs.rs"]
fn capture_containerd_configs() {
    use common::capture;
    let Some(mut c) = Containerd::start("ctr-capture") else {
        return;
    };
    let version = exec(Command::new("containerd").arg("--version"), CMD_TIMEOUT).stdout;
    assert!(
        version.contains(" 1.6."),
        "the fixtures are containerd 1.6's: {version}"
    );
    let (wrapper, captured) = capture::install_wrapper(&c.dir, &c.ctx.bin);
    c.ctx.bin = wrapper;
    let reps = vec![
        (c.dir.to_string_lossy().into_owned(), "@ENGINE@".to_owned()),
        (c.cgroup_parent.clone(), "@CGROUP_PARENT@".to_owned()),
    ];
    let save = |name: &str, mut doc: serde_json::Value| {
        capture::normalize(&mut doc, &reps);
        capture::save(&format!("containerd-1.6/{name}.json"), &doc);
    };
    c.run(&[], "t1", &["true"]).assert_ok("ctr run");
    save("ctr-run", capture::take_one(&captured, "create"));
    start_sleeper(&c);
    let _ = capture::take(&captured);
    c.ctr(&["task", "exec", "--exec-id", "e1", "svc", "true"])
        .assert_ok("ctr task exec");
    save("ctr-exec-process", capture::take_one(&captured, "exec"));
    remove_sleeper(&c);
}
