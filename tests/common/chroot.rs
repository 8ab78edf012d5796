//! Helpers shared by the chroot isolation tests (`chroot_*.rs`): running
//! the runtime under test with `--isolation MODE`, from a user namespace of
//! its own, and the bundle that chroot isolation can run there.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use super::{
    exec, read_file, rootless_ctx_with, rootless_spec_bundle_in, runtime_is_runc, runtime_name,
    skip, Bundle, Ctx, Out, CMD_TIMEOUT,
};

/// The line `--isolation auto` prints when it falls back.
pub const FALLBACK_LINE: &str = "rootcell: full isolation refused (";

/// False (and a printed reason) when the runtime under test has no chroot
/// isolation.
pub fn rootcell_only() -> bool {
    if runtime_is_runc() || runtime_name().contains("crun") {
        skip("chroot isolation is rootcell's own (runc and crun have no --isolation)");
        return false;
    }
    true
}

/// The test's own mount table, whole lines (ids included), sorted.
pub fn mount_table() -> Vec<String> {
    let mut v: Vec<String> = read_file(Path::new("/proc/self/mountinfo"))
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// `rootcell --root R --isolation MODE run --bundle B ID`: the flag before
/// the subcommand, as `podman --runtime-flag isolation=chroot` passes it.
pub fn run_isolated(ctx: &Ctx, mode: &str, id: &str, b: &Bundle) -> Out {
    b.save();
    let mut c = ctx.cmd();
    c.args(["--isolation", mode, "run", "--bundle"])
        .arg(&b.path)
        .arg(id);
    exec(&mut c, CMD_TIMEOUT)
}

/// True when `unshare --user --map-root-user` works here, also nested
/// inside one (as the runtime does when it runs there; refused where
/// `kernel.unprivileged_userns_clone` is 0 or the namespaces are used up);
/// else prints why and returns false.
pub fn userns_available() -> bool {
    let probe = exec(
        Command::new("unshare").args(["--user", "--map-root-user", "unshare", "--user", "true"]),
        CMD_TIMEOUT,
    );
    if !probe.ok() {
        skip(&format!(
            "unshare --user fails here: {}",
            probe.stderr.trim()
        ));
        return false;
    }
    true
}

/// Drops devpts' `gid=` option (gid 5 is not mapped where only root is).
pub fn drop_devpts_gid(b: &mut Bundle) {
    if let Some(mounts) = b.config["mounts"].as_array_mut() {
        for m in mounts.iter_mut().filter(|m| m["type"] == "devpts") {
            if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| !o.as_str().unwrap_or("").starts_with("gid="));
            }
        }
    }
}

/// A bundle that chroot isolation can run in a user namespace of the
/// runtime's own that owns neither the host's pid nor network namespace
/// (no pid, network, cgroup or user namespace; no cgroup mount, limits or
/// devpts gid), while full isolation is refused a fresh /proc there.
pub fn userns_bundle(ctx: &Ctx) -> Bundle {
    let mut b = ctx.bundle();
    for ns in ["pid", "network", "cgroup", "user"] {
        b.remove_namespace(ns);
    }
    b.remove_mount("/sys/fs/cgroup");
    b.linux()["resources"] = json!(null);
    b.linux()["uidMappings"] = json!(null);
    b.linux()["gidMappings"] = json!(null);
    drop_devpts_gid(&mut b);
    b
}

/// `unshare --user --map-root-user --mount … rootcell --rootless true
/// --isolation MODE run`: the runtime as root of a user namespace of its
/// own.
pub fn run_in_userns(ctx: &Ctx, mode: &str, id: &str, b: &Bundle) -> Out {
    b.save();
    let mut c = Command::new("unshare");
    c.args([
        "--user",
        "--map-root-user",
        "--mount",
        "--propagation",
        "private",
        "--",
    ])
    .arg(&ctx.bin)
    .arg("--root")
    .arg(ctx.state_dir())
    .args(["--rootless", "true", "--isolation", mode, "run", "--bundle"])
    .arg(&b.path)
    .arg(id);
    exec(&mut c, CMD_TIMEOUT)
}

/// A bundle whose config.json comes from `spec --rootless` run as uid
/// 1000, with a rootfs owned by uid 1000, no terminal and a writable root;
/// the context runs the runtime as uid 1000 (`rootless_ctx_with`). The
/// caller checks `rootless_unavailable()` first.
pub fn rootless_spec_bundle(name: &str) -> (Ctx, PathBuf, Bundle) {
    let (ctx, xdg) = rootless_ctx_with(name, true);
    let b = rootless_spec_bundle_in(&ctx, |_| {});
    (ctx, xdg, b)
}
