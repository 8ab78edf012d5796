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

/// Builds an OCI image archive (one layer: `rootfs`) named `IMAGE`.
const MAKE_OCI_ARCHIVE: &str = r#"
import hashlib, json, os, subprocess, sys, tarfile
rootfs, out, work = sys.argv[1], sys.argv[2], sys.argv[3]
blobs = os.path.join(work, "layout", "blobs", "sha256")
os.makedirs(blobs)
def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}
layer_tar = os.path.join(work, "layer.tar")
subprocess.run(["tar", "-C", rootfs, "-cf", layer_tar, "."], check=True)
layer_bytes = open(layer_tar, "rb").read()
layer = blob(layer_bytes)
layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
config = blob(json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
}).encode())
config["mediaType"] = "application/vnd.oci.image.config.v1+json"
manifest = blob(json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config, "layers": [layer],
}).encode())
manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
manifest["annotations"] = {"io.containerd.image.name": sys.argv[4],
                           "org.opencontainers.image.ref.name": "latest"}
layout = os.path.join(work, "layout")
json.dump({"schemaVersion": 2, "manifests": [manifest]}, open(os.path.join(layout, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(layout, "oci-layout"), "w"))
with tarfile.open(out, "w") as t:
    for name in ["oci-layout", "index.json", "blobs"]:
        t.add(os.path.join(layout, name), arcname=name)
"#;

/// A private containerd daemon.
struct Containerd {
    dir: PathBuf,
    daemon: Child,
    ctx: Ctx,
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
        let c = Containerd { dir, daemon, ctx };
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
        let work = self.dir.join("image");
        fs::create_dir_all(&work).unwrap();
        exec(
            Command::new("python3")
                .arg("-c")
                .arg(MAKE_OCI_ARCHIVE)
                .args([&rootfs, &archive, &work])
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

    /// `ctr run --rm --runc-binary <runtime> [flags] IMAGE ID ARGS...`
    fn run(&self, flags: &[&str], id: &str, args: &[&str]) -> Out {
        let runtime = self.ctx.bin.to_string_lossy().into_owned();
        let mut all = vec!["run", "--rm", "--runc-binary", runtime.as_str()];
        all.extend_from_slice(flags);
        all.extend_from_slice(&[IMAGE, id]);
        all.extend_from_slice(args);
        self.ctr(&all)
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
        if !std::thread::panicking() {
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
    let runtime = c.ctx.bin.to_string_lossy().into_owned();
    c.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        &runtime,
        IMAGE,
        "svc",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 0.1; done",
    ])
    .assert_ok("ctr run -d");
    let tasks = c.ctr(&["task", "ls"]);
    assert!(
        tasks.stdout.contains("svc") && tasks.stdout.contains("RUNNING"),
        "{}",
        tasks.all()
    );
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
