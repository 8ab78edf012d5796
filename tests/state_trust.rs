//! Nothing on disk that another user could have written is trusted: the
//! state root, each container's directory and `state.json` (whose hooks the
//! runtime runs as itself) and the seccomp cache (whose program becomes the
//! container's filter) must be owned by the runtime's user and not writable
//! by group or others. Container ids starting with a dot are refused (dot
//! entries below the root are the runtime's own).
//!
//! runc 1.1.5 has no seccomp cache and checks none of this: those tests are
//! skipped for it.

mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn skip_for_runc(what: &str) -> bool {
    if runtime_is_runc() {
        skip(&format!("runc 1.1.5 does not check {what}"));
        return true;
    }
    false
}

// ---------------------------------------------------------------------------
// seccomp cache
// ---------------------------------------------------------------------------

/// What a container under the test's profile prints: mkdir is denied.
const DENIED: &str = "mkdir-denied";
const ALLOWED: &str = "mkdir-allowed";

/// A bundle whose profile allows everything but mkdir.
fn bundle_denying_mkdir(ctx: &Ctx) -> Bundle {
    let mut b = ctx.bundle();
    b.sh(&format!(
        "if mkdir /tmp/d 2>/dev/null; then echo {ALLOWED}; else echo {DENIED}; fi"
    ));
    b.linux()["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    });
    b
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// Runs a fresh container of `b` and returns what it printed.
fn run_mkdir(ctx: &Ctx, b: &Bundle, case: &str) -> Out {
    let id = ctx.id(&format!("c{}", RUNS.fetch_add(1, Ordering::SeqCst)));
    let _ = fs::remove_dir(b.rootfs().join("tmp/d"));
    let out = ctx.run(&id, b);
    out.assert_ok(case);
    out
}

/// The cache file the runtime wrote for `b`'s profile: its key line (the
/// name is a hash of it) and the path.
fn cache_file(ctx: &Ctx) -> (PathBuf, Vec<u8>) {
    let dir = ctx.state_dir().join(".cache/seccomp");
    let files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "bpf"))
        .collect();
    assert_eq!(files.len(), 1, "one cached filter expected: {files:?}");
    let bytes = fs::read(&files[0]).unwrap();
    let nl = bytes.iter().position(|b| *b == b'\n').expect("key line");
    (files[0].clone(), bytes[..=nl].to_vec())
}

/// Writes, under the right name and key, a program that allows every
/// syscall (`BPF_RET|BPF_K SECCOMP_RET_ALLOW`): loaded, it would replace
/// the config's deny rule. Owned by `uid` with `mode`.
fn plant_allow_all(path: &Path, key: &[u8], uid: u32, mode: u32) {
    let mut bytes = key.to_vec();
    bytes.extend_from_slice(&0x06u16.to_ne_bytes());
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(&0x7fff_0000u32.to_ne_bytes());
    let _ = fs::remove_file(path);
    fs::write(path, &bytes).unwrap();
    chown(path, uid, uid);
    chmod(path, mode);
}

/// A planted cache file with the right name and key never becomes the
/// container's filter when another user owns it, when group or others may
/// write it, or when its directory (or `.cache`) is not the runtime's
/// private directory: the deny rule of the config holds and the runtime
/// warns. (The control case shows the planted program is what a trusted
/// cache would load: the test plants the right file.)
#[test]
fn planted_seccomp_cache_files_are_not_loaded() {
    if skip_for_runc("a seccomp cache (it has none)") {
        return;
    }
    let ctx = Ctx::new("trust-cache");
    let b = bundle_denying_mkdir(&ctx);
    let first = run_mkdir(&ctx, &b, "first run");
    assert_eq!(first.stdout.trim(), DENIED);
    let (file, key) = cache_file(&ctx);
    let seccomp_dir = file.parent().unwrap().to_path_buf();
    let cache_dir = seccomp_dir.parent().unwrap().to_path_buf();

    // Control: a file the runtime's user wrote, private, is used.
    plant_allow_all(&file, &key, 0, 0o600);
    let out = run_mkdir(&ctx, &b, "trusted cache file");
    assert_eq!(
        out.stdout.trim(),
        ALLOWED,
        "the planted program should be what a trusted cache loads"
    );

    let expect_denied = |case: &str, problem: &str| {
        let out = run_mkdir(&ctx, &b, case);
        assert_eq!(
            out.stdout.trim(),
            DENIED,
            "{case}: the planted filter was loaded"
        );
        assert!(
            out.stderr.contains("seccomp cache") && out.stderr.contains(problem),
            "{case}: expected a warning naming the cache and `{problem}`:\n{}",
            out.stderr
        );
    };
    plant_allow_all(&file, &key, UNPRIV_UID, 0o600);
    expect_denied("cache file owned by uid 1000", "owned by uid 1000");
    plant_allow_all(&file, &key, 0, 0o666);
    expect_denied("world-writable cache file", "mode 0666");
    plant_allow_all(&file, &key, 0, 0o620);
    expect_denied("group-writable cache file", "mode 0620");

    // A private file in a directory others may write to (they could swap it).
    plant_allow_all(&file, &key, 0, 0o600);
    chmod(&seccomp_dir, 0o777);
    expect_denied("world-writable cache directory", "mode 0777");
    chmod(&seccomp_dir, 0o700);
    chown(&seccomp_dir, UNPRIV_UID, UNPRIV_GID);
    expect_denied("cache directory owned by uid 1000", "owned by uid 1000");
    chown(&seccomp_dir, 0, 0);
    // `.cache` replaced by a symlink to a directory holding the same file.
    let elsewhere = ctx.dir.join("elsewhere");
    fs::create_dir_all(elsewhere.join("seccomp")).unwrap();
    plant_allow_all(
        &elsewhere.join("seccomp").join(file.file_name().unwrap()),
        &key,
        0,
        0o600,
    );
    let real_cache = ctx.dir.join("real-cache");
    fs::rename(&cache_dir, &real_cache).unwrap();
    symlink(&elsewhere, &cache_dir).unwrap();
    expect_denied(".cache a symlink", "not a directory");
    fs::remove_file(&cache_dir).unwrap();
    fs::rename(&real_cache, &cache_dir).unwrap();

    // The runtime replaced nothing it did not trust, and its own file
    // works again once the planted one is gone.
    fs::remove_file(&file).unwrap();
    let out = run_mkdir(&ctx, &b, "after");
    assert_eq!(out.stdout.trim(), DENIED);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// state root and container directories
// ---------------------------------------------------------------------------

/// A state root group- or world-writable, or owned by another user, is
/// refused by every command with an error naming the root and the problem;
/// nothing is created in it.
#[test]
fn state_root_writable_by_others_or_owned_by_another_user_is_refused() {
    if skip_for_runc("the state root") {
        return;
    }
    let ctx = Ctx::new("trust-root");
    let root = ctx.state_dir();
    fs::create_dir_all(&root).unwrap();
    let b = ctx.bundle();
    let id = ctx.id("c");
    for (case, uid, mode, problem) in [
        ("world-writable", 0, 0o777, "mode 0777".to_string()),
        ("group-writable", 0, 0o770, "mode 0770".to_string()),
        ("sticky world-writable", 0, 0o1777, "mode 1777".to_string()),
        (
            "owned by uid 1000",
            UNPRIV_UID,
            0o700,
            format!("owned by uid {UNPRIV_UID}"),
        ),
    ] {
        chown(&root, uid, uid);
        chmod(&root, mode);
        for args in [
            vec!["run", "--bundle", b.path.to_str().unwrap(), id.as_str()],
            vec!["list"],
            vec!["state", id.as_str()],
            vec!["delete", "--force", id.as_str()],
        ] {
            b.save();
            let out = ctx.rt(&args);
            out.assert_fail(&format!("{case}: {args:?}"));
            assert!(
                out.stderr
                    .contains(&format!("state root {}", root.display()))
                    && out.stderr.contains(&problem),
                "{case}: {args:?}: the error should name the root and `{problem}`:\n{}",
                out.stderr
            );
        }
        assert_eq!(
            fs::read_dir(&root).unwrap().count(),
            0,
            "{case}: something was created in the refused root"
        );
    }
    chown(&root, 0, 0);
    chmod(&root, 0o700);
    ctx.run(&id, &b).assert_ok("a private root works");
    ctx.assert_clean();
}

/// A container directory another user owns (or may write to), or a
/// `state.json` others may write, is refused naming the path: the state
/// names the hooks `delete` runs and the processes it kills. A planted
/// poststop hook does not run.
#[test]
fn container_dirs_and_states_others_could_change_are_refused() {
    if skip_for_runc("container directories") {
        return;
    }
    let ctx = Ctx::new("trust-dir");
    let b = ctx.bundle();
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("create");
    let dir = ctx.state_dir().join(&id);
    let state = dir.join("state.json");
    let original = fs::read(&state).unwrap();
    let marker = ctx.dir.join("hook-ran");
    let mut planted: serde_json::Value = serde_json::from_slice(&original).unwrap();
    planted["hooks"] = json!({"poststop": [{
        "path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]
    }]});

    let refused = |case: &str, what: &str, problem: &str| {
        for args in [
            vec!["state", id.as_str()],
            vec!["delete", "--force", id.as_str()],
        ] {
            let out = ctx.rt(&args);
            out.assert_fail(&format!("{case}: {args:?}"));
            assert!(
                out.stderr.contains(what) && out.stderr.contains(problem),
                "{case}: {args:?}: the error should name {what} and `{problem}`:\n{}",
                out.stderr
            );
        }
        let list = ctx.rt(&["list", "-q"]);
        list.assert_ok(&format!("{case}: list"));
        assert!(
            !list.stdout.contains(&id),
            "{case}: listed:\n{}",
            list.stdout
        );
        assert!(
            list.stderr.contains(problem),
            "{case}: list should warn:\n{}",
            list.stderr
        );
        assert!(!marker.exists(), "{case}: the planted poststop hook ran");
    };

    chown(&dir, UNPRIV_UID, UNPRIV_GID);
    refused(
        "dir owned by uid 1000",
        "container directory",
        "owned by uid 1000",
    );
    chown(&dir, 0, 0);
    chmod(&dir, 0o777);
    refused("world-writable dir", "container directory", "mode 0777");
    chmod(&dir, 0o711);

    fs::write(&state, serde_json::to_vec(&planted).unwrap()).unwrap();
    chmod(&state, 0o666);
    refused("world-writable state.json", "container state", "mode 0666");
    fs::write(&state, &original).unwrap();
    chmod(&state, 0o600);
    ctx.rt(&["delete", "--force", &id])
        .assert_ok("delete once trusted");
    assert!(!marker.exists());
    ctx.assert_clean();
}

/// What `create` makes is private whatever the umask: the container
/// directory 0711 (as runc), `state.json` 0600.
#[test]
fn container_state_is_private_whatever_the_umask() {
    if skip_for_runc("modes") {
        return;
    }
    let ctx = Ctx::new("trust-umask");
    let b = ctx.bundle();
    let id = ctx.id("c");
    let mut c = ctx.create_cmd(&id, &b, &[]);
    // SAFETY: umask in the forked child before exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            libc::umask(0);
            Ok(())
        });
    }
    ctx.exec_detached(&mut c, &id, None)
        .assert_ok("create with umask 0");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&ctx.state_dir()), 0o700);
    assert_eq!(mode(&ctx.state_dir().join(&id)), 0o711);
    assert_eq!(mode(&ctx.state_dir().join(&id).join("state.json")), 0o600);
    ctx.rt(&["start", &id]).assert_ok("start");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

/// Rootless: a state root the user does not own (here root's) is refused;
/// the user's own under `XDG_RUNTIME_DIR` works.
#[test]
fn rootless_state_root_owned_by_root_is_refused() {
    if skip_for_runc("the state root") {
        return;
    }
    let ctx = rootless_ctx("trust-rootless");
    let root = ctx.state_dir();
    fs::create_dir_all(&root).unwrap();
    chmod(&root, 0o755);
    let out = ctx.rt(&["list"]);
    out.assert_fail("list in root's state dir");
    assert!(
        out.stderr.contains(&format!(
            "owned by uid 0, not by the runtime's uid {UNPRIV_UID}"
        )),
        "{}",
        out.stderr
    );
    fs::remove_dir(&root).unwrap();
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// ids
// ---------------------------------------------------------------------------

/// Ids starting with a dot name the runtime's own entries (`.cache`), never
/// containers: refused naming the id, nothing created.
#[test]
fn ids_starting_with_a_dot_are_refused() {
    if skip_for_runc("ids starting with a dot (its id rule allows them)") {
        return;
    }
    let ctx = Ctx::new("trust-ids");
    let b = ctx.bundle();
    for id in [".cache", ".x", "..x"] {
        for args in [
            vec!["create", "--bundle", b.path.to_str().unwrap(), id],
            vec!["run", "--bundle", b.path.to_str().unwrap(), id],
            vec!["state", id],
        ] {
            b.save();
            let out = ctx.rt(&args);
            out.assert_fail(&format!("{args:?}"));
            assert!(
                out.stderr.contains(&format!("{id:?}")) && out.stderr.contains("starts with '.'"),
                "{args:?}: the error should name the id:\n{}",
                out.stderr
            );
        }
        assert!(!ctx.state_dir().join(id).exists(), "{id} was created");
    }
    ctx.assert_clean();
}
