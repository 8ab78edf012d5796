//! End to end: podman drives the runtime under test (`--runtime`), as a user
//! of `podman run` would. Each test has its own podman storage, run root,
//! config and image (a busybox rootfs imported with `podman import`), all in
//! its temp dir, and runs in a private mount namespace of its own thread, so
//! nothing podman or conmon mounts outlives the test or reaches the host.
//!
//! The machine's limits shape the config (see DESIGN.md): cgroupfs cgroups,
//! file events, explicit `nofile`/`nproc` ulimits, and no network (podman's
//! bridge needs netavark and iptables).

mod common;

use common::console::check_shell_on_a_terminal;
use common::*;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Podman can take a while on a busy 2-core machine.
const PODMAN_TIMEOUT: Duration = Duration::from_secs(90);
const IMAGE: &str = "localhost/busybox";

/// A private podman set up to use the runtime under test.
struct Podman {
    dir: PathBuf,
    ctx: Ctx,
    /// Cgroup parent of the containers (and conmon), removed at the end.
    cgroup_parent: String,
}

impl Podman {
    /// `None` (and a skip notice) when podman is not installed.
    fn new(name: &str) -> Option<Podman> {
        if Command::new("podman").arg("--version").output().is_err() {
            skip("podman is not installed (scripts/setup installs it)");
            return None;
        }
        // The binary may live under a directory covered below (a checkout
        // in /var/tmp): held open now, copied into the test's dir after.
        let held = HeldRuntime::open();
        enter_private_mount_namespace();
        // podman keeps a lock in /dev/shm, a blob cache in /var/lib/containers
        // and copies in /var/tmp whatever its storage flags say.
        cover_with_tmpfs(&["/dev/shm", "/var/lib", "/var/tmp", "/run"]);
        let mut ctx = Ctx::new(name);
        ctx.bin = held.install(&ctx.dir);
        let dir = ctx.dir.join("podman");
        fs::create_dir_all(dir.join("tmp")).unwrap();
        let conf = format!(
            r#"[containers]
netns = "none"
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{dir}/events.log"
runtime = "under-test"
[engine.runtimes]
under-test = ["{bin}"]
"#,
            dir = dir.display(),
            bin = ctx.bin.display()
        );
        write_file(&dir.join("containers.conf"), &conf);
        // Unique per test: named after the test's temp dir.
        let cgroup_parent = format!(
            "/e2e-{}",
            ctx.dir.file_name().unwrap_or_default().to_string_lossy()
        );
        let podman = Podman {
            dir,
            ctx,
            cgroup_parent,
        };
        let rootfs = podman.dir.join("rootfs");
        make_rootfs(&rootfs);
        let tar = podman.dir.join("rootfs.tar");
        exec(
            Command::new("tar")
                .arg("-C")
                .arg(&rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
            CMD_TIMEOUT,
        )
        .assert_ok("tar of the busybox rootfs");
        podman
            .run(&["import", &tar.to_string_lossy(), IMAGE])
            .assert_ok("podman import");
        Some(podman)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        // conmon inherits the working directory and may leave files there
        // (an `oom` marker after an OOM kill, seen with runc): the test's.
        c.current_dir(&self.dir)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"));
        match args.split_first() {
            Some((&"run", rest)) => c
                .args(["run", "--cgroup-parent", &self.cgroup_parent])
                .args(rest),
            _ => c.args(args),
        };
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        exec(&mut self.command(args), PODMAN_TIMEOUT)
    }

    fn run_input(&self, args: &[&str], input: &[u8]) -> Out {
        exec_input(&mut self.command(args), Some(input), PODMAN_TIMEOUT)
    }

    /// `podman run --rm IMAGE sh -c SCRIPT` with `flags` before the image.
    fn sh(&self, flags: &[&str], script: &str) -> Out {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        self.run(&args)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Whatever a failed test left running: stop and remove it.
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.run(&["system", "reset", "--force"]);
        let left = self.run(&["ps", "--all", "--quiet"]);
        // conmon leaves its cgroup a moment after the container is gone.
        let deadline = Instant::now() + POLL_TIMEOUT;
        let mut cgroups = remove_cgroups_named(&self.cgroup_parent[1..]);
        while !cgroups.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            cgroups = remove_cgroups_named(&self.cgroup_parent[1..]);
        }
        if !std::thread::panicking() {
            assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
            assert!(
                left.stdout.trim().is_empty(),
                "containers left: {}",
                left.stdout
            );
            assert!(
                self.ctx.leftover_pids().is_empty(),
                "processes left in the test's root filesystems"
            );
        }
    }
}

/// The effective capability mask of the container's shell, from `CapEff`.
fn cap_eff(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no CapEff in {out}"))
}

const CAP_NET_ADMIN: u64 = 1 << 12;
const CAP_SYS_ADMIN: u64 = 1 << 21;
const CAP_CHOWN: u64 = 1;

#[test]
fn podman_run_rm_output_and_exit_code() {
    let Some(p) = Podman::new("pm-run") else {
        return;
    };
    let out = p.sh(&[], "echo hello; exit 3");
    assert_eq!(out.code(), Some(3), "{}", out.all());
    assert_eq!(out.stdout, "hello\n");
    let out = p.sh(&[], "exit 0");
    assert_eq!(out.code(), Some(0), "{}", out.all());
    // The container really ran under the runtime under test.
    let out = p.run(&["info", "--format", "{{.Host.OCIRuntime.Path}}"]);
    out.assert_ok("podman info");
    assert_eq!(out.stdout.trim(), p.ctx.bin.to_string_lossy());
}

#[test]
fn podman_interactive_stdin() {
    let Some(p) = Podman::new("pm-stdin") else {
        return;
    };
    let out = p.run_input(
        &["run", "--rm", "-i", IMAGE, "sh", "-c", "tr a-z A-Z"],
        b"from stdin\n",
    );
    out.assert_ok("podman run -i");
    assert_eq!(out.stdout, "FROM STDIN\n");
}

#[test]
fn podman_detached_logs_stop_rm() {
    let Some(p) = Podman::new("pm-detach") else {
        return;
    };
    let out = p.run(&[
        "run",
        "-d",
        "--name",
        "svc",
        IMAGE,
        "sh",
        "-c",
        "echo started; trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done",
    ]);
    out.assert_ok("podman run -d");
    poll(POLL_TIMEOUT, "the container's first log line", || {
        p.run(&["logs", "svc"])
            .stdout
            .contains("started")
            .then_some(())
    });
    let inspect = p.run(&["inspect", "--format", "{{.State.Status}}", "svc"]);
    assert_eq!(inspect.stdout.trim(), "running", "{}", inspect.all());
    // podman pause/unpause call the runtime's pause and resume.
    p.run(&["pause", "svc"]).assert_ok("podman pause");
    let inspect = p.run(&["inspect", "--format", "{{.State.Status}}", "svc"]);
    assert_eq!(inspect.stdout.trim(), "paused", "{}", inspect.all());
    p.run(&["unpause", "svc"]).assert_ok("podman unpause");
    let inspect = p.run(&["inspect", "--format", "{{.State.Status}}", "svc"]);
    assert_eq!(inspect.stdout.trim(), "running", "{}", inspect.all());
    p.run(&["stop", "--time", "10", "svc"])
        .assert_ok("podman stop");
    let logs = p.run(&["logs", "svc"]);
    assert!(logs.stdout.contains("got-term"), "{}", logs.all());
    let code = p.run(&["inspect", "--format", "{{.State.ExitCode}}", "svc"]);
    assert_eq!(code.stdout.trim(), "0", "{}", code.all());
    p.run(&["rm", "svc"]).assert_ok("podman rm");
    assert!(p.run(&["ps", "-aq"]).stdout.trim().is_empty());
}

#[test]
fn podman_read_only_volumes_and_tmpfs() {
    let Some(p) = Podman::new("pm-vol") else {
        return;
    };
    let rw = p.dir.join("rw");
    let ro = p.dir.join("ro");
    write_file(&ro.join("data"), "read-only data\n");
    fs::create_dir_all(&rw).unwrap();
    let rw_arg = format!("{}:/rw", rw.display());
    let ro_arg = format!("{}:/ro:ro", ro.display());
    let out = p.sh(
        &[
            "--read-only",
            "-v",
            &rw_arg,
            "-v",
            &ro_arg,
            "--tmpfs",
            "/scratch:size=1m",
        ],
        "touch /rootfile 2>/dev/null || echo root-ro; cat /ro/data; \
         touch /ro/x 2>/dev/null || echo vol-ro; echo written > /rw/out; \
         echo t > /scratch/t && grep ' /scratch ' /proc/mounts",
    );
    out.assert_ok("podman run with volumes");
    assert!(out.stdout.contains("root-ro"), "{}", out.all());
    assert!(out.stdout.contains("read-only data"), "{}", out.all());
    assert!(out.stdout.contains("vol-ro"), "{}", out.all());
    assert!(out.stdout.contains("tmpfs /scratch tmpfs"), "{}", out.all());
    assert_eq!(read_file(&rw.join("out")), "written\n");
    assert!(!ro.join("x").exists());
}

#[test]
fn podman_user_groups_and_uidmap() {
    let Some(p) = Podman::new("pm-user") else {
        return;
    };
    let out = p.sh(
        &["--user", "1000:1000", "--group-add", "5"],
        "id -u; id -g; id -G",
    );
    out.assert_ok("podman run --user");
    let l = lines(&out.stdout);
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1000");
    assert!(l[2].split_whitespace().any(|g| g == "5"), "{}", out.all());

    let out = p.sh(
        &["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"],
        "cat /proc/self/uid_map; id -u",
    );
    out.assert_ok("podman run --uidmap");
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(&words[..4], ["0", "100000", "65536", "0"], "{}", out.all());
}

#[test]
fn podman_capabilities_and_privileged() {
    let Some(p) = Podman::new("pm-caps") else {
        return;
    };
    let out = p.sh(&["--cap-drop", "ALL"], "grep CapEff /proc/self/status");
    out.assert_ok("--cap-drop ALL");
    assert_eq!(cap_eff(&out.stdout), 0);
    let out = p.sh(
        &["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"],
        "grep CapEff /proc/self/status",
    );
    out.assert_ok("--cap-add");
    assert_eq!(cap_eff(&out.stdout), CAP_NET_ADMIN);
    let out = p.sh(&[], "grep CapEff /proc/self/status");
    out.assert_ok("default caps");
    let default = cap_eff(&out.stdout);
    assert_ne!(default & CAP_CHOWN, 0);
    assert_eq!(default & CAP_SYS_ADMIN, 0);
    let out = p.sh(&["--privileged"], "grep CapEff /proc/self/status; ls /dev");
    out.assert_ok("--privileged");
    assert_ne!(cap_eff(&out.stdout) & CAP_SYS_ADMIN, 0, "{}", out.all());
    // A privileged container sees the host's devices.
    assert!(out.stdout.lines().any(|l| l == "vda"), "{}", out.all());
}

#[test]
fn podman_ulimit_sysctl_device_oom() {
    let Some(p) = Podman::new("pm-limits") else {
        return;
    };
    // The container's value differs from the host's, whatever the host's
    // is (podman's bridge network, for one, sets it to 1), and the host's
    // must not change.
    let host_before = host_sysctl("net.ipv4.ip_forward").expect("net.ipv4.ip_forward");
    let wanted = if host_before == "1" { "0" } else { "1" };
    let sysctl = format!("net.ipv4.ip_forward={wanted}");
    let out = p.sh(
        &[
            "--ulimit",
            "nofile=100:200",
            // Given one --ulimit, podman drops the config's defaults and
            // asks for the host's nproc maximum, which root here cannot get.
            "--ulimit",
            "nproc=4096:4096",
            "--sysctl",
            &sysctl,
            "--device",
            "/dev/zero:/dev/myzero",
            "--oom-score-adj",
            "100",
        ],
        "ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward; \
         head -c 4 /dev/myzero | od -An -tx1; cat /proc/self/oom_score_adj",
    );
    out.assert_ok("podman run with limits");
    let l = lines(&out.stdout);
    assert_eq!(l[0], "100", "{}", out.all());
    assert_eq!(l[1], "200", "{}", out.all());
    assert_eq!(l[2], wanted, "{}", out.all());
    assert_eq!(
        l[3].split_whitespace().collect::<Vec<_>>(),
        ["00", "00", "00", "00"]
    );
    assert_eq!(l[4], "100", "{}", out.all());
    // The host's value is untouched.
    assert_eq!(
        host_sysctl("net.ipv4.ip_forward").as_deref(),
        Some(host_before.as_str())
    );
}

/// `podman run -d --name NAME IMAGE sleep 1000`.
#[track_caller]
fn start_sleeper(p: &Podman, name: &str) {
    p.run(&["run", "-d", "--name", name, IMAGE, "sleep", "1000"])
        .assert_ok("podman run -d");
}

#[test]
fn podman_exec_user_env_workdir_and_exit_code() {
    let Some(p) = Podman::new("pm-exec") else {
        return;
    };
    start_sleeper(&p, "svc");
    let out = p.run(&[
        "exec",
        "--user",
        "1000:1000",
        "-e",
        "GREETING=hello",
        "-w",
        "/tmp",
        "svc",
        "sh",
        "-c",
        "id -u; id -g; echo $GREETING; pwd; test -t 0 || echo no-tty",
    ]);
    out.assert_ok("podman exec --user -e -w");
    assert_eq!(
        lines(&out.stdout),
        ["1000", "1000", "hello", "/tmp", "no-tty"],
        "{}",
        out.all()
    );
    // The exit code passes through.
    let out = p.run(&["exec", "svc", "sh", "-c", "echo bye; exit 5"]);
    assert_eq!(out.code(), Some(5), "{}", out.all());
    assert_eq!(out.stdout, "bye\n");
    // stdin with -i.
    let out = p.run_input(&["exec", "-i", "svc", "tr", "a-z", "A-Z"], b"piped in\n");
    out.assert_ok("podman exec -i");
    assert_eq!(out.stdout, "PIPED IN\n");
    p.run(&["rm", "--force", "--time", "0", "svc"])
        .assert_ok("podman rm");
}

/// Runs an interactive `sh` through podman on a pty pair of ours (podman
/// wants a real terminal for `-t`): checks the shell's terminal and size,
/// that it runs commands, and that its exit code comes back.
#[track_caller]
fn interactive_shell(p: &Podman, args: &[&str], code: i32) {
    check_shell_on_a_terminal(
        p.command(args),
        code,
        PODMAN_TIMEOUT,
        "podman on a terminal",
    );
}

#[test]
fn podman_exec_it_on_a_terminal() {
    let Some(p) = Podman::new("pm-exec-tty") else {
        return;
    };
    start_sleeper(&p, "svc");
    interactive_shell(&p, &["exec", "-it", "svc", "sh"], 3);
    // The container runs on.
    let inspect = p.run(&["inspect", "--format", "{{.State.Status}}", "svc"]);
    assert_eq!(inspect.stdout.trim(), "running", "{}", inspect.all());
    p.run(&["rm", "--force", "--time", "0", "svc"])
        .assert_ok("podman rm");
}

#[test]
fn podman_run_it_on_a_terminal() {
    let Some(p) = Podman::new("pm-run-tty") else {
        return;
    };
    interactive_shell(&p, &["run", "--rm", "-it", IMAGE, "sh"], 2);
}

#[test]
fn podman_seccomp_custom_and_default_profiles() {
    let Some(p) = Podman::new("pm-seccomp") else {
        return;
    };
    // A profile of our own: everything but mkdir.
    let profile = p.dir.join("deny-mkdir.json");
    write_file(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"],
                          "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    );
    let opt = format!("seccomp={}", profile.display());
    let out = p.sh(
        &["--security-opt", &opt],
        "mkdir /tmp/x 2>&1; echo mkdir=$?; touch /tmp/y && echo touch-ok",
    );
    out.assert_ok("podman run with a custom seccomp profile");
    assert!(
        out.stdout
            .contains("Operation not permitted\nmkdir=1\ntouch-ok"),
        "{}",
        out.all()
    );
    // Podman's default profile refuses swapoff even with CAP_SYS_ADMIN
    // (the capability alone would get as far as the missing file).
    let script = "swapoff /no-such-swap 2>&1; true";
    let out = p.sh(&["--cap-add", "SYS_ADMIN"], script);
    out.assert_ok("podman run with the default profile");
    assert!(
        out.stdout.contains("Operation not permitted"),
        "{}",
        out.all()
    );
    let out = p.sh(
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
        ],
        script,
    );
    out.assert_ok("podman run without seccomp");
    assert!(out.stdout.contains("No such file"), "{}", out.all());
}

/// Whether the host's memory cgroup accounts swap (podman asks for
/// memory+swap with `--memory`).
fn memsw_accounting() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
}

#[test]
fn podman_cgroup_limits_pids_memory_cpus_cgroupns() {
    let Some(p) = Podman::new("pm-cgroups") else {
        return;
    };
    // A fork bomb stops at the pids limit.
    let out = p.sh(
        &["--pids-limit", "10"],
        "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; echo all-forked",
    );
    assert!(!out.stdout.contains("all-forked"), "{}", out.all());
    assert!(out.stderr.contains("fork"), "{}", out.all());
    // A memory hog is OOM-killed: podman reports 137.
    let mut flags = vec!["--memory", "32m"];
    if memsw_accounting() {
        flags.extend_from_slice(&["--memory-swap", "32m"]);
    }
    let out = p.sh(&flags, "exec dd if=/dev/zero of=/dev/null bs=128M count=1");
    assert_eq!(out.code(), Some(137), "{}", out.all());
    // --cpus is a CFS quota over podman's 100ms period.
    let out = p.sh(
        &["--cpus", "0.5"],
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us",
    );
    out.assert_ok("podman run --cpus");
    assert_eq!(lines(&out.stdout), ["50000", "100000"], "{}", out.all());
    // A private cgroup namespace: the container's cgroups are its roots.
    let out = p.sh(&["--cgroupns", "private"], "cat /proc/self/cgroup");
    out.assert_ok("podman run --cgroupns private");
    for line in lines(&out.stdout) {
        assert!(line.ends_with(":/"), "{}", out.stdout);
    }
}

#[test]
fn podman_update_memory_and_cpu() {
    let Some(p) = Podman::new("pm-update") else {
        return;
    };
    p.run(&[
        "run", "-d", "--name", "svc", "--memory", "64m", IMAGE, "sleep", "1000",
    ])
    .assert_ok("podman run -d --memory");
    let limits = || {
        let out = p.run(&[
            "exec",
            "svc",
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        ]);
        out.assert_ok("podman exec cat");
        lines(&out.stdout)
    };
    assert_eq!(limits()[0], (64 << 20).to_string());
    // Raised above the old memory+swap (podman's default is twice the
    // limit): memsw must be written first.
    p.run(&["update", "--memory", "256m", "--cpus", "0.5", "svc"])
        .assert_ok("podman update up");
    assert_eq!(limits(), [(256 << 20).to_string(), "50000".to_string()]);
    p.run(&["update", "--memory", "32m", "svc"])
        .assert_ok("podman update down");
    assert_eq!(limits()[0], (32 << 20).to_string());
    p.run(&["rm", "--force", "--time", "0", "svc"])
        .assert_ok("podman rm");
}

/// Recaptures `tests/fixtures/engines/podman-4.3/*.json`, what podman sends
/// a runtime, for `tests/foreign_configs.rs`: podman is given a logging
/// wrapper around the runtime under test
/// (`tests/fixtures/engines/capture-runtime.sh`), and each recorded
/// `config.json` or `exec --process` file is stored with its host-specific
/// parts as placeholders (`common::capture`). Run it by hand:
///
/// ```sh
/// ROOTCELL_TEST_RUNTIME=$PWD/target/release/rootcell unshare --mount --propagation private -- \
///     cargo test -p rootcell-cli --test e2e_podman -- --ignored capture_podman_configs
/// ```
///
/// (`ROOTCELL_CAPTURE_DIR=DIR` writes elsewhere.)
#[test]
#[ignore = "recaptures the podman fixtures of foreign_configs.rs"]
fn capture_podman_configs() {
    use common::capture;
    use serde_json::Value;
    let Some(p) = Podman::new("pm-capture") else {
        return;
    };
    let version = p.run(&["--version"]).stdout;
    assert!(
        version.contains(" 4.3."),
        "the fixtures are podman 4.3's: {version}"
    );
    let (wrapper, captured) = capture::install_wrapper(&p.dir, &p.ctx.bin);
    let conf = p.dir.join("containers.conf");
    let text = read_file(&conf).replace(
        &format!("[\"{}\"]", p.ctx.bin.display()),
        &format!("[\"{}\"]", wrapper.display()),
    );
    write_file(&conf, &text);
    let reps = vec![
        (p.dir.to_string_lossy().into_owned(), "@ENGINE@".to_owned()),
        (
            p.cgroup_parent[1..].to_owned(),
            "@CGROUP_PARENT@".to_owned(),
        ),
    ];
    let save = |name: &str, mut doc: Value| {
        capture::normalize(&mut doc, &reps);
        capture::save(&format!("podman-4.3/{name}.json"), &doc);
    };
    let vol = p.dir.join("vol");
    fs::create_dir_all(&vol).unwrap();
    let vol_arg = format!("{}:/data", vol.display());
    let runs: [(&str, &[&str]); 5] = [
        ("run-default", &[]),
        ("run-read-only", &["--read-only"]),
        ("run-volume", &["-v", &vol_arg]),
        ("run-cap-add", &["--cap-add", "NET_ADMIN"]),
        ("run-user", &["--user", "1000:1000"]),
    ];
    for (name, flags) in runs {
        p.sh(flags, "true").assert_ok(name);
        save(name, capture::take_one(&captured, "create"));
    }
    start_sleeper(&p, "svc");
    let _ = capture::take(&captured);
    p.run(&["exec", "svc", "true"]).assert_ok("podman exec");
    let exec = capture::take_one(&captured, "exec");
    save("exec-process", exec);
    interactive_shell(&p, &["exec", "-it", "svc", "sh"], 3);
    save("exec-it-process", capture::take_one(&captured, "exec"));
    p.run(&["rm", "--force", "--time", "0", "svc"])
        .assert_ok("podman rm");
}
