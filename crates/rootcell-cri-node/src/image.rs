//! The node's two images, built here from Debian packages (no registry on
//! the internet is reachable): busybox (Debian's static busybox, every
//! applet a hard link to it: a real executable file at `/bin/<applet>`,
//! not a symlink) and pause (a tiny static C program). Each is one
//! uncompressed layer, an OCI config and an OCI manifest, kept in memory
//! and served by [`crate::registry`].

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// One image: a repository name and tag, its manifest and blobs.
#[derive(Debug, Clone)]
pub struct Image {
    /// Repository path in the registry (`busybox`).
    pub repo: String,
    pub tag: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    /// Config and layer blobs by digest.
    pub blobs: HashMap<String, Vec<u8>>,
}

pub fn sha256_digest(data: &[u8]) -> String {
    let sum = Sha256::digest(data);
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl Image {
    /// An image of one layer (`layer`, an uncompressed tar) with `config`
    /// (the image config's `config` object: Env, Cmd, Entrypoint...).
    pub fn new(repo: &str, tag: &str, layer: Vec<u8>, config: serde_json::Value) -> Image {
        let layer_digest = sha256_digest(&layer);
        let config_blob = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            // Uncompressed: the layer's digest is its diff id.
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }))
        .expect("serialise an image config");
        let config_digest = sha256_digest(&config_blob);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": config_blob.len()},
            "layers": [{"mediaType": LAYER_TYPE, "digest": layer_digest, "size": layer.len()}],
        }))
        .expect("serialise a manifest");
        let mut blobs = HashMap::new();
        blobs.insert(layer_digest, layer);
        blobs.insert(config_digest, config_blob);
        Image {
            repo: repo.to_string(),
            tag: tag.to_string(),
            manifest_digest: sha256_digest(&manifest),
            manifest,
            blobs,
        }
    }
}

/// A tar layer written in memory, entries owned by root.
struct Layer {
    tar: tar::Builder<Vec<u8>>,
}

impl Layer {
    fn new() -> Layer {
        Layer {
            tar: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h
    }

    fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.tar
            .append_data(&mut h, path, std::io::empty())
            .with_context(|| format!("layer: {path}"))
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.tar
            .append_data(&mut h, path, data)
            .with_context(|| format!("layer: {path}"))
    }

    fn hard_link(&mut self, path: &str, target: &str) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Link, 0o755, 0);
        self.tar
            .append_link(&mut h, path, target)
            .with_context(|| format!("layer: {path}"))
    }

    fn finish(self) -> Result<Vec<u8>> {
        self.tar.into_inner().context("finish a layer")
    }
}

/// busybox: `/bin/busybox` from the host (busybox-static), each applet a
/// hard link to it, the usual top-level directories, and a passwd/group
/// with root and a uid-1000 user.
pub fn busybox(repo: &str, tag: &str) -> Result<Image> {
    let bin = std::fs::read("/bin/busybox")
        .context("read /bin/busybox (is busybox-static installed?)")?;
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .context("run /bin/busybox --list")?;
    let mut l = Layer::new();
    for d in [
        "bin",
        "proc",
        "sys",
        "dev",
        "etc",
        "root",
        "home",
        "home/user",
        "www",
    ] {
        l.dir(d, 0o755)?;
    }
    l.dir("tmp", 0o1777)?;
    l.file("bin/busybox", 0o755, &bin)?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet.contains('/') || applet == "busybox" {
            continue;
        }
        l.hard_link(&format!("bin/{applet}"), "bin/busybox")?;
    }
    l.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )?;
    l.file(
        "etc/group",
        0o644,
        b"root:x:0:\nwheel:x:10:\nusers:x:100:\nuser:x:1000:\n",
    )?;
    l.file("www/index.html", 0o644, b"hello from the pod\n")?;
    Ok(Image::new(
        repo,
        tag,
        l.finish()?,
        serde_json::json!({"Env": ["PATH=/bin"], "Cmd": ["sh"]}),
    ))
}

/// The pause program: sleeps in pause() until SIGTERM or SIGINT (exit 0),
/// reaping children (it is pid 1 when a pod shares its pid namespace).
const PAUSE_C: &str = r#"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void bye(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGTERM, bye);
    signal(SIGINT, bye);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
"#;

/// pause: `/pause`, built with `gcc -static` in `scratch`.
pub fn pause(repo: &str, tag: &str, scratch: &Path) -> Result<Image> {
    std::fs::create_dir_all(scratch)?;
    let src = scratch.join("pause.c");
    let out = scratch.join("pause");
    std::fs::write(&src, PAUSE_C)?;
    let built = Command::new("gcc")
        .args(["-static", "-O2", "-s", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .context("run gcc (package gcc) to build the pause image")?;
    if !built.status.success() {
        bail!(
            "gcc -static pause.c failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );
    }
    let bin = std::fs::read(&out)?;
    let mut l = Layer::new();
    l.file("pause", 0o755, &bin)?;
    Ok(Image::new(
        repo,
        tag,
        l.finish()?,
        serde_json::json!({"Entrypoint": ["/pause"]}),
    ))
}
