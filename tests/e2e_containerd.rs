//! End to end: containerd (through its runc shim, `ctr run --runc-binary`)
//! drives the runtime under test. Each test starts its own containerd with
//! its own root, state and socket in its temp dir, in a private mount
//! namespace of its own thread, imports a busybox image built here as an
//! OCI archive, and stops the daemon at the end: nothing is left behind.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CTR_TIMEOUT: Duration = Duration::from_secs(60);
const IMAGE: &str = "localhost/busybox:latest";

/// Builds an OCI image archive (one layer: a rootfs) named `IMAGE`:
/// `make-oci-archive ROOTFS OUT.tar IMAGE-NAME` (shared with the benchmarks).
const MAKE_OCI_ARCHIVE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/make-oci-archive"
);

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
        {
            skip("containerd is not installed (scripts/setup installs it)");
            return None;
        }
        enter_private_mount_namespace();
        // containerd and its shims keep state in /run/containerd (the
        // runtime's --root among it) and /opt/containerd, whatever the
        // daemon's own root and state say.
        cover_with_tmpfs(&["/run", "/opt"]);
        let ctx = Ctx::new(name);
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
        exec(
            Command::new("python3")
                // Its work dir goes in the test's temp dir too.
                .env("TMPDIR", &self.dir)
                .arg(MAKE_OCI_ARCHIVE)
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
