//! Attack tests: hostile root filesystems and configs against mount setup.
//!
//! Each test plays the attacker. It builds a rootfs (symlinks pointing out of
//! it, `/proc` or `/dev` replaced, a `/dev/null` that is not the null device)
//! or a config (destinations inside `/proc`, sysctl keys with `/`, a hook
//! swapping `/dev/null`) aimed at sentinel files and directories on the host:
//! in the test's temp dir, outside the rootfs. Then it runs the runtime and
//! requires either
//!
//! - a clear refusal: a non-zero exit whose message names the mount or path
//!   at fault (the wording is only checked for rootcell), or
//! - a safe container: what was mounted or created shows up where the
//!   container looks for it, that is inside its own rootfs (each case's
//!   script prints exactly what a safe container sees),
//!
//! and, whatever the outcome, an untouched host ([`HostSentinels`]): each
//! sentinel keeps its inode, type, owner, mode, times and content and gains
//! no entries, a path that did not exist still does not, and nothing is
//! mounted below the test's temp dir in the test's mount namespace.
//!
//! Links out of the rootfs come in the forms a naive runtime follows onto the
//! host: absolute (`/tmp/…/host-dir`, which `mount(src, rootfs + dest)`
//! follows on the host), climbing (more `..` than the rootfs is deep, which
//! any resolution outside the container root follows up to the host's `/`)
//! and dangling (which `mkdir -p rootfs + dest` creates on the host).
//!
//! A mount that a naive runtime makes on a host path happens in the
//! container's own mount namespace and does not show on the host. That is
//! why the cases that should succeed also look from inside: a mount that is
//! not at its destination in the container went somewhere else.
//!
//! No assertion is skipped for runc. runc 1.1.5 fails four tests, each
//! because it is vulnerable to the attack (see docs/SECURITY.md):
//! `dev_symlinked_to_the_host_gets_no_nodes_or_links` (it creates the /dev
//! links in the host directory and replaces its `ptmx`),
//! `dev_nodes_planted_as_symlinks_to_the_host_are_replaced` (it keeps a
//! symlink as /dev/null), `masking_with_a_bound_dev_whose_null_is_spoiled`
//! (it masks with `core_pattern`) and `masking_after_a_hook_spoiled_dev_null`
//! (it writes the container's output to the host's `core_pattern`, which
//! [`CorePattern`] restores at once).

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Content of every host sentinel file: must never show in a container.
const HOST_SECRET: &str = "host-secret\n";
/// What the payload a case mounts holds, to recognise it in the container.
const PAYLOAD: &str = "payload-from-the-bundle\n";
/// Host-global sysctl that the sysctl attacks aim at.
const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";
/// What a safe container prints for a masked file (see `MASK_SCRIPT`).
const MASKED_AS_NULL: &str = "character special file 1:3\n";

// ---------------------------------------------------------------------------
// The host side: sentinels, and a guard for the one host-global file
// ---------------------------------------------------------------------------

/// Host paths an attack aims at, with their state before the runtime ran.
/// All of them are in the test's temp dir, next to (not in) the bundles.
struct HostSentinels {
    base: PathBuf,
    watched: Vec<(PathBuf, Option<Vec<String>>)>,
    mounts_before: Vec<String>,
    core_pattern: Option<CorePattern>,
}

impl HostSentinels {
    fn new(ctx: &Ctx) -> HostSentinels {
        HostSentinels {
            base: ctx.dir.clone(),
            watched: Vec::new(),
            mounts_before: mounts_below(&ctx.dir),
            core_pattern: None,
        }
    }

    /// Also watch the host's core_pattern (see [`CorePattern`]).
    fn watch_core_pattern(&mut self) {
        self.core_pattern = Some(CorePattern::save());
    }

    /// A host directory holding one secret file.
    fn dir(&mut self, name: &str) -> PathBuf {
        let p = self.base.join(name);
        write_file(&p.join("keep"), HOST_SECRET);
        self.watch(p)
    }

    /// A secret host file owned by uid 1000 with mode 0600, so that a chown
    /// or chmod following a link to it would show.
    fn file(&mut self, name: &str) -> PathBuf {
        let p = self.base.join(name);
        write_file(&p, HOST_SECRET);
        chown(&p, UNPRIV_UID, UNPRIV_GID);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        self.watch(p)
    }

    /// A host path that does not exist and must not be created.
    fn absent(&mut self, name: &str) -> PathBuf {
        self.watch(self.base.join(name))
    }

    /// Watches `p` as it is now (prepared by the test, or absent).
    fn watch(&mut self, p: PathBuf) -> PathBuf {
        self.watched.push((p.clone(), snapshot(&p)));
        p
    }

    /// Every sentinel is as it was (core_pattern first, to restore it at
    /// once), and nothing is mounted below the temp dir. (Only mount points
    /// below it are compared: runc binds its own binary for a moment, and
    /// other tests run containers in parallel.)
    #[track_caller]
    fn assert_untouched(&self, case: &str) {
        if let Some(core_pattern) = &self.core_pattern {
            core_pattern.assert_unchanged(case);
        }
        for (p, before) in &self.watched {
            assert_eq!(
                &snapshot(p),
                before,
                "{case}: host path {} was changed",
                p.display()
            );
        }
        assert_eq!(
            mounts_below(&self.base),
            self.mounts_before,
            "{case}: something was mounted on the host"
        );
    }
}

/// The host's mount points at or below `dir` (in the test's namespace).
fn mounts_below(dir: &Path) -> Vec<String> {
    host_mount_points()
        .into_iter()
        .filter(|m| Path::new(m).starts_with(dir))
        .collect()
}

/// The tree at `p`, one line per entry, symlinks not followed: identity,
/// owner, mode, size, times and content. `None` if `p` does not exist.
fn snapshot(p: &Path) -> Option<Vec<String>> {
    fn walk(p: &Path, rel: &Path, out: &mut Vec<String>) {
        let md = fs::symlink_metadata(p).unwrap();
        let content = if md.file_type().is_symlink() {
            format!("-> {}", readlink(p))
        } else if md.is_file() {
            format!("{:?}", String::from_utf8_lossy(&fs::read(p).unwrap()))
        } else {
            String::new()
        };
        out.push(format!(
            "{} ino={} mode={:o} owner={}:{} size={} mtime={}.{} ctime={}.{} {content}",
            rel.display(),
            md.ino(),
            md.mode(),
            md.uid(),
            md.gid(),
            md.size(),
            md.mtime(),
            md.mtime_nsec(),
            md.ctime(),
            md.ctime_nsec(),
        ));
        if md.is_dir() {
            let mut names: Vec<_> = fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                walk(&p.join(&n), &rel.join(&n), out);
            }
        }
    }
    fs::symlink_metadata(p).ok()?;
    let mut out = Vec::new();
    walk(p, Path::new("."), &mut out);
    Some(out)
}

/// The host's `core_pattern`, which is not namespaced: a write to it is a
/// host escape (a value starting with `|` runs a program as root on the
/// next crash). Checked unchanged, and restored at once if a vulnerable
/// runtime did write it (runc 1.1.5 does, see
/// `masking_after_a_hook_spoiled_dev_null`), and again on drop.
struct CorePattern(String);

impl CorePattern {
    fn save() -> CorePattern {
        CorePattern(read_file(Path::new(CORE_PATTERN)))
    }

    /// Puts the saved value back if it changed; returns what was found.
    fn restore(&self) -> Option<String> {
        let now = read_file(Path::new(CORE_PATTERN));
        if now == self.0 {
            return None;
        }
        fs::write(CORE_PATTERN, &self.0).expect("restore core_pattern");
        Some(now)
    }

    #[track_caller]
    fn assert_unchanged(&self, case: &str) {
        if let Some(written) = self.restore() {
            panic!("{case}: the host's {CORE_PATTERN} was overwritten with {written:?} (restored)");
        }
    }
}

impl Drop for CorePattern {
    fn drop(&mut self) {
        self.restore();
    }
}

// ---------------------------------------------------------------------------
// The rootfs side: planting links, payloads and hostile configs
// ---------------------------------------------------------------------------

/// `path` (a path inside the container) in the bundle's rootfs, on the host.
fn in_rootfs(b: &Bundle, path: &str) -> PathBuf {
    b.rootfs().join(path.trim_start_matches('/'))
}

/// A relative symlink target that climbs out of any rootfs (more `..` than
/// it is deep) to the absolute host path `host`.
fn climbing(host: &Path) -> PathBuf {
    let mut p = PathBuf::new();
    for _ in 0..32 {
        p.push("..");
    }
    p.join(host.strip_prefix("/").expect("absolute host path"))
}

/// The two ways to point a rootfs symlink at `host`: absolute and climbing.
fn link_forms(host: &Path) -> [(&'static str, PathBuf); 2] {
    [
        ("absolute", host.to_path_buf()),
        ("climbing", climbing(host)),
    ]
}

/// Replaces whatever is at `link` in the rootfs by a symlink to `target`.
fn plant_symlink(b: &Bundle, link: &str, target: &Path) {
    let at = in_rootfs(b, link);
    match fs::symlink_metadata(&at) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(&at).unwrap(),
        Ok(_) => fs::remove_file(&at).unwrap(),
        Err(_) => fs::create_dir_all(at.parent().unwrap()).unwrap(),
    }
    symlink(target, &at).unwrap_or_else(|e| panic!("symlink {}: {e}", at.display()));
}

/// A bind of a bundle-side payload to `dest`: a directory holding `marker`,
/// or a file. Returns the script printing what the container sees there.
fn bind_payload(b: &mut Bundle, dest: &str, file: bool) -> String {
    let (source, seen) = if file {
        let f = b.path.join("payload.file");
        write_file(&f, PAYLOAD);
        (f, dest.to_owned())
    } else {
        let d = b.path.join("payload");
        write_file(&d.join("marker"), PAYLOAD);
        (d, format!("{dest}/marker"))
    };
    b.bind_mount(&source, dest, false);
    format!("cat {seen}")
}

/// Sets the container's process to `script`, which always exits 0: a
/// non-zero exit is then the runtime's refusal, and a failing command in the
/// script shows as output that differs from what a safe container prints.
fn container_script(b: &mut Bundle, script: &str) {
    b.sh(&format!("{script}\nexit 0"));
}

/// Replaces the config's mount at `dest` (keeping its place in the order).
fn replace_mount(b: &mut Bundle, dest: &str, m: Value) {
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    let i = mounts
        .iter()
        .position(|m| m["destination"] == dest)
        .unwrap_or_else(|| panic!("no {dest} mount in the config"));
    mounts[i] = m;
}

/// A bundle whose `/dev` is the rootfs's own directory: the config's /dev
/// tmpfs is removed, so devices and their links are created in the rootfs.
fn bundle_with_rootfs_dev(ctx: &Ctx) -> Bundle {
    let mut b = ctx.bundle();
    b.remove_mount("/dev");
    b
}

/// Script printing what a container sees at the masked `/etc/masked`. The
/// file holds a secret of the rootfs, so a skipped mask shows too.
const MASK_SCRIPT: &str = "stat -c '%F %t:%T' /etc/masked; cat /etc/masked";

/// Adds `/etc/masked` (a rootfs file) to `linux.maskedPaths`.
fn mask_a_rootfs_file(b: &mut Bundle) {
    write_file(&in_rootfs(b, "/etc/masked"), "rootfs-secret\n");
    b.linux()["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/etc/masked"));
    container_script(b, MASK_SCRIPT);
}

/// Binds the host file `f` read-only at the same path in the container, so
/// that a symlink to `f` resolves to it inside the container too.
fn show_host_file_inside(b: &mut Bundle, f: &Path) {
    b.bind_mount(f, f.to_str().unwrap(), true);
}

// ---------------------------------------------------------------------------
// Running a case and judging its outcome
// ---------------------------------------------------------------------------

/// How a case may end.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// The container runs and sees what it should.
    Safe,
    /// A non-zero exit naming the culprit.
    Refused,
    /// Either one.
    RefusedOrSafe,
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// The stdin a case's runtime gets (and passes on to the container).
#[derive(Clone, Copy, Debug)]
enum Stdin {
    /// A pipe. The default: the runtime reopens a /dev/null stdin on the
    /// container's /dev/null, which would refuse a hostile /dev before the
    /// step under test.
    Pipe,
    /// The host's /dev/null, to exercise that reopening.
    DevNull,
}

/// Runs a fresh container of `b` in the foreground with `stdin`.
fn run_case_with(ctx: &Ctx, b: &Bundle, stdin: Stdin) -> Out {
    let id = ctx.id(&format!("r{}", RUNS.fetch_add(1, Ordering::SeqCst)));
    let input: Option<&[u8]> = match stdin {
        Stdin::Pipe => Some(b""),
        Stdin::DevNull => None,
    };
    ctx.run_with(&id, b, &[], input)
}

/// Runs a fresh container of `b` in the foreground, stdin a pipe.
fn run_case(ctx: &Ctx, b: &Bundle) -> Out {
    run_case_with(ctx, b, Stdin::Pipe)
}

/// Asserts that `out`, the run of `case`, ended as `expect` allows: refused
/// with a message naming `culprit`, or run printing exactly `safe_stdout`.
#[track_caller]
fn assert_outcome(out: &Out, expect: Expect, case: &str, culprit: &str, safe_stdout: &str) {
    eprintln!(
        "{case}: {}",
        if out.ok() { "ran" } else { out.stderr.trim() }
    );
    if out.ok() {
        assert_ne!(
            expect,
            Expect::Refused,
            "{case}: accepted, should be refused:\n{}",
            out.all()
        );
        assert_eq!(
            out.stdout, safe_stdout,
            "{case}: the container does not see what it should (did the mount go \
             elsewhere?)\n--- stderr ---\n{}",
            out.stderr
        );
    } else {
        assert_ne!(
            expect,
            Expect::Safe,
            "{case}: refused, should work inside the rootfs:\n{}",
            out.all()
        );
        out.assert_fail(case);
        if !runtime_is_runc() {
            assert!(
                out.all().contains(culprit),
                "{case}: the error does not name `{culprit}`:\n{}",
                out.all()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// /proc and /sys
// ---------------------------------------------------------------------------

/// `/proc` or `/sys` replaced by a symlink to a host directory (absolute or
/// climbing): refused, naming the mount, and nothing lands in the host
/// directory. Escape class: "/proc or /sys replaced by a symlink".
#[test]
fn proc_and_sys_symlinked_to_the_host_are_refused() {
    let ctx = Ctx::new("atk-procsys");
    let mut host = HostSentinels::new(&ctx);
    let host_dir = host.dir("host-dir");
    for dest in ["/proc", "/sys"] {
        for (form, target) in link_forms(&host_dir) {
            let case = format!("{dest} -> {form} link to a host dir");
            let b = ctx.bundle();
            plant_symlink(&b, dest, &target);
            let out = run_case(&ctx, &b);
            host.assert_untouched(&case);
            assert_outcome(&out, Expect::Refused, &case, dest, "");
        }
    }
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Mount destinations through symlinks
// ---------------------------------------------------------------------------

/// One hostile mount destination: links planted in a fresh rootfs, then a
/// bind of the payload at `dest`.
struct DestCase {
    name: &'static str,
    /// Symlinks planted in the rootfs: (link, target).
    links: Vec<(&'static str, PathBuf)>,
    dest: String,
    /// Bind a file (else a directory).
    file: bool,
    expect: Expect,
}

/// A symlink to plant: `at` (in the container) pointing to `target`.
fn link(at: &'static str, target: impl Into<PathBuf>) -> (&'static str, PathBuf) {
    (at, target.into())
}

impl DestCase {
    fn new(
        name: &'static str,
        links: Vec<(&'static str, PathBuf)>,
        dest: impl Into<String>,
        file: bool,
        expect: Expect,
    ) -> DestCase {
        DestCase {
            name,
            links,
            dest: dest.into(),
            file,
            expect,
        }
    }

    /// Runs the case and judges it; the container prints what it sees at
    /// the destination, which is the payload when the mount is safe.
    #[track_caller]
    fn run(&self, ctx: &Ctx, host: &HostSentinels) {
        let mut b = ctx.bundle();
        for (at, target) in &self.links {
            plant_symlink(&b, at, target);
        }
        let script = bind_payload(&mut b, &self.dest, self.file);
        container_script(&mut b, &script);
        let out = run_case(ctx, &b);
        host.assert_untouched(self.name);
        assert_outcome(&out, self.expect, self.name, &self.dest, PAYLOAD);
    }
}

/// Mount destinations through absolute, climbing, dangling, looping and
/// magic symlinks, and through `..`, aimed at a host directory, a host file
/// and a host path that does not exist yet: each mount lands inside the
/// rootfs, where the container sees it, or is refused; the host is
/// untouched. Escape class: "Symlinked mount destinations".
#[test]
fn mount_destinations_through_symlinks_stay_in_the_rootfs() {
    use Expect::*;
    let ctx = Ctx::new("atk-dest");
    let mut host = HostSentinels::new(&ctx);
    let host_dir = host.dir("host-dir");
    let host_file = host.file("host-file");
    let not_yet = host.absent("not-yet");
    let in_host_dir = |prefix: &str| format!("{prefix}{}/sub", host_dir.display());
    let cases = [
        DestCase::new(
            "absolute link to a host dir",
            vec![link("/mnt/evil", &host_dir)],
            "/mnt/evil",
            false,
            Safe,
        ),
        DestCase::new(
            "climbing link to a host dir",
            vec![link("/mnt/evil", climbing(&host_dir))],
            "/mnt/evil",
            false,
            Safe,
        ),
        DestCase::new(
            "climbing link to the host's /",
            vec![link("/mnt/evil", climbing(Path::new("/")))],
            in_host_dir("/mnt/evil"),
            false,
            Safe,
        ),
        DestCase::new(
            "absolute link to a host dir as a parent",
            vec![link("/mnt/evil", &host_dir)],
            "/mnt/evil/sub",
            false,
            Safe,
        ),
        DestCase::new(
            "dangling link to a missing host path",
            vec![link("/mnt/evil", &not_yet)],
            "/mnt/evil",
            false,
            Safe,
        ),
        DestCase::new(
            "dangling climbing link as a parent",
            vec![link("/mnt/evil", climbing(&not_yet))],
            "/mnt/evil/sub",
            false,
            Safe,
        ),
        DestCase::new(
            "chain of links ending on the host",
            vec![
                link("/mnt/a", "b"),
                link("/mnt/b", "/c"),
                link("/c", climbing(&host_dir)),
            ],
            "/mnt/a/sub",
            false,
            Safe,
        ),
        DestCase::new(
            "`..` in the destination",
            vec![],
            in_host_dir("/etc/../../../../../../.."),
            false,
            RefusedOrSafe,
        ),
        DestCase::new(
            "file through a link to a host dir",
            vec![link("/mnt/evil", &host_dir)],
            "/mnt/evil/evil.conf",
            true,
            Safe,
        ),
        DestCase::new(
            "file that is a link to a host file",
            vec![link("/etc/evil.conf", &host_file)],
            "/etc/evil.conf",
            true,
            RefusedOrSafe,
        ),
        DestCase::new(
            "file that is a climbing link to a host file",
            vec![link("/etc/evil.conf", climbing(&host_file))],
            "/etc/evil.conf",
            true,
            RefusedOrSafe,
        ),
        DestCase::new(
            "magic link to the runtime's root",
            vec![link("/mnt/evil", "/proc/self/root")],
            in_host_dir("/mnt/evil"),
            false,
            RefusedOrSafe,
        ),
        DestCase::new(
            "link to itself",
            vec![link("/mnt/loop", "loop")],
            "/mnt/loop/sub",
            false,
            Refused,
        ),
        DestCase::new(
            "two links pointing at each other",
            vec![link("/mnt/ping", "pong"), link("/mnt/pong", "/mnt/ping")],
            "/mnt/ping/sub",
            false,
            Refused,
        ),
    ];
    for c in &cases {
        c.run(&ctx, &host);
    }
    ctx.assert_clean();
}

/// A chain of dangling links whose relative target climbs with `..` before
/// the next dangling link (`/mnt/a -> ../c`, `/c -> <host path>`): the mount
/// lands inside the rootfs, as it does through a chain of absolute links.
#[test]
fn dangling_link_chain_through_dotdot_stays_in_the_rootfs() {
    let ctx = Ctx::new("atk-chain");
    let mut host = HostSentinels::new(&ctx);
    let host_dir = host.dir("host-dir");
    let not_yet = host.absent("not-yet");
    for (name, end) in [
        ("`..` link then a link to a host dir", host_dir),
        ("`..` link then a dangling link", not_yet),
    ] {
        let links = vec![link("/mnt/a", "../c"), link("/c", climbing(&end))];
        DestCase::new(name, links, "/mnt/a/sub", false, Expect::Safe).run(&ctx, &host);
    }
    ctx.assert_clean();
}

/// A `process.cwd` through a symlink to a missing host path or to a host
/// directory is refused or created inside the rootfs, never on the host.
/// (The runtime creates a missing cwd much like a mountpoint.)
#[test]
fn cwd_through_symlinks_is_created_in_the_rootfs() {
    let ctx = Ctx::new("atk-cwd");
    let mut host = HostSentinels::new(&ctx);
    let host_dir = host.dir("host-dir");
    let not_yet = host.absent("not-yet");
    for (name, target) in [
        ("dangling absolute link", not_yet.clone()),
        ("dangling climbing link", climbing(&not_yet)),
        ("absolute link to a host dir", host_dir.clone()),
        ("climbing link to a host dir", climbing(&host_dir)),
    ] {
        let mut b = ctx.bundle();
        plant_symlink(&b, "/work", &target);
        b.process()["cwd"] = json!("/work/sub");
        // `pwd` would print the physical path: compare identities instead.
        container_script(
            &mut b,
            "[ \"$(stat -c %d:%i .)\" = \"$(stat -c %d:%i /work/sub)\" ] && echo cwd-ok; \
              echo in-cwd > here; cat /work/sub/here",
        );
        let out = run_case(&ctx, &b);
        host.assert_untouched(name);
        assert_outcome(
            &out,
            Expect::RefusedOrSafe,
            name,
            "/work",
            "cwd-ok\nin-cwd\n",
        );
    }
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// A hostile /dev
// ---------------------------------------------------------------------------

/// Script looking at /dev, and what it prints in a safe container. The
/// filesystems are told by magic number: devpts, tmpfs, mqueue.
const DEV_SCRIPT: &str = "stat -c '%n %t:%T' /dev/null /dev/zero; readlink /dev/ptmx; \
                          readlink /dev/fd; stat -f -c %t /dev/pts/ /dev/shm/ /dev/mqueue/";
const DEV_SEEN: &str = "/dev/null 1:3\n/dev/zero 1:5\npts/ptmx\n/proc/self/fd\n\
                        1cd1\n1021994\n19800202\n";

/// `/dev` as a symlink to a host directory (absolute or climbing) and no
/// /dev tmpfs in the config, so that the runtime creates device nodes, the
/// `ptmx`, `fd`, `std*` links and the /dev/pts, /dev/shm, /dev/mqueue
/// mountpoints through it: none of that may happen in the host directory,
/// which already holds a `null` and a `ptmx` (a runtime that unlinks
/// before creating would remove them). Escape class: "Device nodes created
/// through a hostile /dev".
#[test]
fn dev_symlinked_to_the_host_gets_no_nodes_or_links() {
    let ctx = Ctx::new("atk-dev");
    let mut host = HostSentinels::new(&ctx);
    let host_dev = ctx.dir.join("host-dev");
    write_file(&host_dev.join("null"), HOST_SECRET);
    write_file(&host_dev.join("ptmx"), HOST_SECRET);
    let host_dev = host.watch(host_dev);
    for (form, target) in link_forms(&host_dev) {
        let case = format!("/dev -> {form} link to a host dir");
        let mut b = bundle_with_rootfs_dev(&ctx);
        plant_symlink(&b, "/dev", &target);
        container_script(&mut b, DEV_SCRIPT);
        let out = run_case(&ctx, &b);
        host.assert_untouched(&case);
        assert_outcome(&out, Expect::RefusedOrSafe, &case, "/dev", DEV_SEEN);
    }
    ctx.assert_clean();
}

/// A real `/dev` directory whose `pts`, `shm` and `mqueue` are absolute,
/// climbing and dangling symlinks out of the rootfs: the devpts, tmpfs and
/// mqueue mounts land inside the rootfs and the container sees them at
/// /dev/pts, /dev/shm and /dev/mqueue. Escape class: "Symlinked mount
/// destinations" (below /dev).
#[test]
fn dev_subdirectories_symlinked_to_the_host_stay_in_the_rootfs() {
    let ctx = Ctx::new("atk-devsub");
    let mut host = HostSentinels::new(&ctx);
    let host_pts = host.dir("host-pts");
    let host_shm = host.dir("host-shm");
    let not_yet = host.absent("not-yet");
    let mut b = bundle_with_rootfs_dev(&ctx);
    plant_symlink(&b, "/dev/pts", &host_pts);
    plant_symlink(&b, "/dev/shm", &climbing(&host_shm));
    plant_symlink(&b, "/dev/mqueue", &not_yet);
    container_script(&mut b, DEV_SCRIPT);
    let out = run_case(&ctx, &b);
    let case = "/dev/{pts,shm,mqueue} linked out of the rootfs";
    host.assert_untouched(case);
    assert_outcome(&out, Expect::Safe, case, "/dev", DEV_SEEN);
    ctx.assert_clean();
}

/// A real `/dev` directory whose `null`, `zero`, `ptmx` and `fd` already
/// exist as symlinks to host files and dirs (absolute and climbing): the
/// runtime replaces them by the real nodes and links, and never follows them
/// (no write, chown, chmod or unlink of the host files). Escape class:
/// "Device nodes created through a hostile /dev".
#[test]
fn dev_nodes_planted_as_symlinks_to_the_host_are_replaced() {
    let ctx = Ctx::new("atk-devnodes");
    let mut host = HostSentinels::new(&ctx);
    let (null, zero, ptmx) = (host.file("null"), host.file("zero"), host.file("ptmx"));
    let host_dir = host.dir("host-dir");
    let mut b = bundle_with_rootfs_dev(&ctx);
    plant_symlink(&b, "/dev/null", &null);
    plant_symlink(&b, "/dev/zero", &climbing(&zero));
    plant_symlink(&b, "/dev/ptmx", &ptmx);
    plant_symlink(&b, "/dev/fd", &climbing(&host_dir));
    container_script(&mut b, DEV_SCRIPT);
    let out = run_case(&ctx, &b);
    let case = "/dev/{null,zero,ptmx,fd} planted as links to the host";
    host.assert_untouched(case);
    assert_outcome(&out, Expect::RefusedOrSafe, case, "/dev", DEV_SEEN);
    ctx.assert_clean();
}

/// `linux.devices` paths with `..` climbing out of /dev to a host directory:
/// the node is refused or made inside the rootfs; the host directory gets
/// no node.
#[test]
fn device_paths_with_dotdot_stay_in_the_rootfs() {
    let ctx = Ctx::new("atk-devpath");
    let mut host = HostSentinels::new(&ctx);
    let host_dir = host.dir("host-dir");
    let path = format!(
        "/dev/../../../../../../../..{}/evil-null",
        host_dir.display()
    );
    let mut b = ctx.bundle();
    b.linux()["devices"] = json!([{
        "path": path, "type": "c", "major": 1, "minor": 3, "fileMode": 438
    }]);
    container_script(&mut b, &format!("stat -c '%t:%T' {path}"));
    let out = run_case(&ctx, &b);
    let case = "device path climbing out of /dev";
    host.assert_untouched(case);
    assert_outcome(&out, Expect::RefusedOrSafe, case, "evil-null", "1:3\n");
    ctx.assert_clean();
}

/// `linux.devices` paths that pass a lexical "starts with /dev" check but
/// leave /dev once cleaned (`/dev/../etc/x`), or that name /dev itself:
/// refused before anything is created, naming the field; the rootfs's
/// /etc gets no node.
#[test]
fn device_paths_leaving_dev_once_cleaned_are_refused() {
    let ctx = Ctx::new("atk-devclean");
    let host = HostSentinels::new(&ctx);
    for path in ["/dev/../etc/x", "/dev/./../etc/x", "/dev/.", "/dev"] {
        let case = format!("device path {path}");
        let mut b = ctx.bundle();
        b.linux()["devices"] = json!([{
            "path": path, "type": "c", "major": 1, "minor": 3, "fileMode": 438
        }]);
        container_script(&mut b, "stat -c '%t:%T' /etc/x");
        let out = run_case(&ctx, &b);
        host.assert_untouched(&case);
        if runtime_is_runc() {
            // runc 1.1.5 cleans the path and makes the node in the
            // rootfs's /etc: not an escape, but not the config's /dev.
            skip(&format!("{case}: runc makes the node in the rootfs's /etc"));
            continue;
        }
        assert_outcome(&out, Expect::Refused, &case, "linux.devices[0].path", "");
        assert!(
            fs::symlink_metadata(in_rootfs(&b, "/etc/x")).is_err(),
            "{case}: a node was made in the rootfs's /etc"
        );
    }
    ctx.assert_clean();
}

/// A device whose directory in the rootfs is a symlink into /proc or /sys
/// (`/dev/sub -> /proc/sys/kernel`, with the container's procfs mounted
/// there by then, or `/dev` itself linked into /sys): the node would land
/// in the kernel's files (`core_pattern`). Refused, naming the field, the
/// host's core_pattern unchanged. The same link to an ordinary directory
/// of the rootfs keeps the node there. Escape class: "Device nodes created
/// through a hostile /dev".
#[test]
fn device_dirs_linked_into_proc_or_sys_are_refused() {
    let ctx = Ctx::new("atk-devproc");
    let mut host = HostSentinels::new(&ctx);
    host.watch_core_pattern();
    for (link, target, device) in [
        ("/dev/sub", "/proc/sys/kernel", "/dev/sub/core_pattern"),
        ("/dev/sub", "../proc/sys/kernel", "/dev/sub/rootcell-x"),
        ("/dev/sub", "/sys/kernel", "/dev/sub/rootcell-x"),
    ] {
        let case = format!("{link} -> {target}, device {device}");
        let mut b = bundle_with_rootfs_dev(&ctx);
        plant_symlink(&b, link, Path::new(target));
        b.linux()["devices"] = json!([{
            "path": device, "type": "c", "major": 1, "minor": 3, "fileMode": 438
        }]);
        container_script(&mut b, &format!("stat -c '%t:%T' {device}"));
        let out = run_case(&ctx, &b);
        host.assert_untouched(&case);
        if runtime_is_runc() {
            // runc 1.1.5 runs with `core_pattern` left as it was (the
            // kernel refuses nodes on procfs and sysfs); the host is
            // unchanged, checked above.
            skip(&format!("{case}: runc does not refuse it"));
            continue;
        }
        assert_outcome(&out, Expect::Refused, &case, "linux.devices[0].path", "");
        assert!(
            out.stderr.contains("procfs") || out.stderr.contains("sysfs"),
            "{case}: {}",
            out.stderr
        );
    }
    // A link to a directory of the rootfs: the node stays in the rootfs.
    let case = "/dev/sub -> /etc";
    let mut b = bundle_with_rootfs_dev(&ctx);
    plant_symlink(&b, "/dev/sub", Path::new("/etc"));
    b.linux()["devices"] = json!([{
        "path": "/dev/sub/x", "type": "c", "major": 1, "minor": 3, "fileMode": 438
    }]);
    container_script(&mut b, "stat -c '%t:%T' /dev/sub/x /etc/x");
    let out = run_case(&ctx, &b);
    host.assert_untouched(case);
    assert_outcome(&out, Expect::Safe, case, "", "1:3\n1:3\n");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// /dev/null before masking
// ---------------------------------------------------------------------------

/// The ways to spoil `/dev/null` before the masks are applied: a symlink to
/// a procfs file (the masked path would become a writable host-global
/// file), a symlink to a host file (shown at the same path in the
/// container), or no `/dev/null` at all (a runtime skipping the mask would
/// leave the path readable). Returns (name, symlink target or None).
fn spoiled_dev_null(host_file: &Path) -> [(&'static str, Option<PathBuf>); 4] {
    [
        ("link to core_pattern", Some(PathBuf::from(CORE_PATTERN))),
        (
            "link to /proc/self/attr/current",
            Some(PathBuf::from("/proc/self/attr/current")),
        ),
        ("link to a host file", Some(host_file.to_path_buf())),
        ("missing", None),
    ]
}

/// `/dev` bind-mounted from a bundle directory the attacker controls (so no
/// device setup happens) whose `null` is spoiled ([`spoiled_dev_null`]),
/// plus a masked file: refused (naming /dev/null) or masked by the real null
/// device; the masked file is never bound to the link's target and the host
/// file and core_pattern keep their content. Escape class: "/dev/null
/// replaced before masking".
#[test]
fn masking_with_a_bound_dev_whose_null_is_spoiled() {
    let ctx = Ctx::new("atk-devbind");
    let mut host = HostSentinels::new(&ctx);
    host.watch_core_pattern();
    let host_file = host.file("host-file");
    for (name, target) in spoiled_dev_null(&host_file) {
        let case = format!("bound /dev, null {name}");
        let mut b = ctx.bundle();
        let dev = b.path.join("hostile-dev");
        fs::create_dir_all(&dev).unwrap();
        if let Some(t) = &target {
            symlink(t, dev.join("null")).unwrap();
        }
        replace_mount(
            &mut b,
            "/dev",
            json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]}),
        );
        show_host_file_inside(&mut b, &host_file);
        mask_a_rootfs_file(&mut b);
        let out = run_case(&ctx, &b);
        host.assert_untouched(&case);
        assert_outcome(
            &out,
            Expect::RefusedOrSafe,
            &case,
            "/dev/null",
            MASKED_AS_NULL,
        );
    }
    ctx.assert_clean();
}

/// A createContainer hook (run after the devices are made, before masking)
/// spoils the container's `/dev/null` ([`spoiled_dev_null`]): refused or
/// masked by the real null device, never by the link's target. Run with the
/// runtime's stdin a pipe and the host's /dev/null: a runtime that reopens
/// "whatever has /dev/null's device number" on stdio would otherwise hand
/// the container its spoiled /dev/null (runc 1.1.5 does that to pipes,
/// whose device number 0 is also a procfs file's, and so writes the
/// container's output to the host's core_pattern). Escape class: "/dev/null
/// replaced before masking" (CVE-2025-31133, without the race).
#[test]
fn masking_after_a_hook_spoiled_dev_null() {
    let ctx = Ctx::new("atk-hooknull");
    let mut host = HostSentinels::new(&ctx);
    host.watch_core_pattern();
    let host_file = host.file("host-file");
    for (name, target) in spoiled_dev_null(&host_file) {
        for stdin in [Stdin::Pipe, Stdin::DevNull] {
            let case = format!("hook made /dev/null {name}, stdin {stdin:?}");
            let mut b = ctx.bundle();
            let null = in_rootfs(&b, "/dev/null");
            let mut spoil = format!("rm -f {}", null.display());
            if let Some(t) = &target {
                spoil += &format!(" && ln -s {} {}", t.display(), null.display());
            }
            b.add_hook(
                "createContainer",
                json!({"path": "/bin/sh", "args": ["sh", "-c", spoil], "env": ["PATH=/bin:/usr/bin"]}),
            );
            show_host_file_inside(&mut b, &host_file);
            mask_a_rootfs_file(&mut b);
            let out = run_case_with(&ctx, &b, stdin);
            host.assert_untouched(&case);
            assert_outcome(
                &out,
                Expect::RefusedOrSafe,
                &case,
                "/dev/null",
                MASKED_AS_NULL,
            );
        }
    }
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Mounts over /proc
// ---------------------------------------------------------------------------

/// Bind and tmpfs mounts whose destination is in `/proc`, directly or
/// through absolute, relative and intermediate symlinks: refused, naming
/// the mount. Escape class: "Mounts over /proc".
#[test]
fn mounts_resolving_into_proc_are_refused() {
    let ctx = Ctx::new("atk-procdest");
    let mut host = HostSentinels::new(&ctx);
    host.watch_core_pattern();
    let refused = |name, links, dest, file| DestCase::new(name, links, dest, file, Expect::Refused);
    let cases = [
        refused(
            "dir bind through a link to /proc/self/attr",
            vec![link("/mnt/x", "/proc/self/attr")],
            "/mnt/x",
            false,
        ),
        refused(
            "dir bind through a relative link to /proc/sys/kernel",
            vec![link("/mnt/x", "../proc/sys/kernel")],
            "/mnt/x",
            false,
        ),
        refused("file bind on core_pattern", vec![], CORE_PATTERN, true),
        refused(
            "file bind through a link to core_pattern",
            vec![link("/etc/foo", CORE_PATTERN)],
            "/etc/foo",
            true,
        ),
        refused(
            "file bind through a relative link to /proc/self/attr/current",
            vec![link("/etc/bar", "../proc/self/attr/current")],
            "/etc/bar",
            true,
        ),
        refused(
            "file bind through a parent linked to /proc/sys",
            vec![link("/mnt/y", "/proc/sys")],
            "/mnt/y/kernel/core_pattern",
            true,
        ),
        refused("dir bind over /proc itself", vec![], "/proc", false),
        refused(
            "dir bind through a link to /proc",
            vec![link("/mnt/p", "../proc")],
            "/mnt/p",
            false,
        ),
    ];
    for c in &cases {
        c.run(&ctx, &host);
    }
    // A tmpfs hiding /proc (and so every mask below it) is refused too.
    let mut b = ctx.bundle();
    b.add_mount(json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}));
    let out = run_case(&ctx, &b);
    host.assert_untouched("tmpfs over /proc");
    assert_outcome(&out, Expect::Refused, "tmpfs over /proc", "/proc", "");
    ctx.assert_clean();
}

/// The lxcfs allow-list still works: files bound over /proc/uptime and
/// /proc/meminfo are allowed and seen by the container.
#[test]
fn lxcfs_style_binds_over_proc_files_are_allowed() {
    let ctx = Ctx::new("atk-lxcfs");
    let mut b = ctx.bundle();
    for (name, content) in [("uptime", "1.00 2.00\n"), ("meminfo", "MemTotal: 42 kB\n")] {
        let f = b.path.join(format!("lxcfs-{name}"));
        write_file(&f, content);
        b.bind_mount(&f, &format!("/proc/{name}"), true);
    }
    container_script(&mut b, "cat /proc/uptime /proc/meminfo");
    let out = run_case(&ctx, &b);
    out.assert_ok("binds over /proc/uptime and /proc/meminfo");
    assert_eq!(out.stdout, "1.00 2.00\nMemTotal: 42 kB\n");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Sysctls
// ---------------------------------------------------------------------------

/// `linux.sysctl` keys with `/` or `..` that would leave /proc/sys (or reach
/// a host-global key through a namespaced prefix): refused at validation,
/// naming linux.sysctl, before the container runs; the host's core_pattern
/// is not written. Escape class: "Sysctl keys and other /proc writes".
#[test]
fn sysctl_keys_escaping_proc_sys_are_refused() {
    let ctx = Ctx::new("atk-sysctl");
    let mut host = HostSentinels::new(&ctx);
    host.watch_core_pattern();
    for key in [
        "net/../../kernel/core_pattern",
        "net.ipv4/../../../kernel/core_pattern",
        "kernel/core_pattern",
        "kernel.../x",
        "../x",
    ] {
        let mut b = ctx.bundle();
        b.linux()["sysctl"] = json!({ key: "core.rootcell-attack" });
        container_script(&mut b, "touch /container-ran");
        let out = run_case(&ctx, &b);
        host.assert_untouched(key);
        assert_outcome(&out, Expect::Refused, key, "linux.sysctl", "");
        assert!(
            !in_rootfs(&b, "/container-ran").exists(),
            "{key}: the container ran"
        );
    }
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// tmpcopyup
// ---------------------------------------------------------------------------

/// A `tmpcopyup` tmpfs over a rootfs directory holding absolute and
/// climbing symlinks to a host file and a host dir: the tmpfs holds the
/// same symlinks, never a copy of what they point to on the host.
#[test]
fn tmpcopyup_copies_symlinks_not_their_host_targets() {
    let ctx = Ctx::new("atk-copyup");
    let mut host = HostSentinels::new(&ctx);
    let host_file = host.file("host-file");
    let host_dir = host.dir("host-dir");
    let links = [
        ("abs-file", host_file.clone()),
        ("rel-file", climbing(&host_file)),
        ("abs-dir", host_dir.clone()),
        ("rel-dir", climbing(&host_dir)),
    ];
    let mut b = ctx.bundle();
    write_file(&in_rootfs(&b, "/etc/copyme/plain"), PAYLOAD);
    let mut script = String::from("stat -f -c %T /etc/copyme/; cat /etc/copyme/plain");
    let mut seen = format!("tmpfs\n{PAYLOAD}");
    for (name, target) in &links {
        plant_symlink(&b, &format!("/etc/copyme/{name}"), target);
        script += &format!(
            "; readlink /etc/copyme/{name}; cat /etc/copyme/{name} /etc/copyme/{name}/keep"
        );
        seen += &format!("{}\n", target.display());
    }
    b.add_mount(json!({
        "destination": "/etc/copyme", "type": "tmpfs", "source": "tmpfs",
        "options": ["tmpcopyup"]
    }));
    // `cat` fails on the links (they dangle in the container); only a copy
    // of a host file or dir would print the secret.
    container_script(&mut b, &format!("{{ {script}; }} 2>/dev/null"));
    let out = run_case(&ctx, &b);
    assert!(!out.stdout.contains(HOST_SECRET), "{}", out.all());
    host.assert_untouched("tmpcopyup");
    assert_outcome(&out, Expect::Safe, "tmpcopyup", "/etc/copyme", &seen);
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// The runtime binary (CVE-2019-5736)
// ---------------------------------------------------------------------------

/// Attacker in a privileged container that shares the host's pid namespace
/// (`--privileged --pid=host`): finds a process whose exe is the runtime
/// binary (given as `DEV:INO`), keeps a read-only fd on it, waits until that
/// process is gone, then reopens the fd for writing and writes the byte
/// already there (0x7f, the ELF magic: the file is unchanged even when the
/// write succeeds).
const EXE_ATTACKER: &str = r#"
want=DEV_INO
end=$(( $(date +%s) + 20 ))
pid=
while [ -z "$pid" ] && [ $(date +%s) -lt $end ]; do
  for d in /proc/[0-9]*; do
    [ "$(stat -L -c %d:%i $d/exe 2>/dev/null)" = "$want" ] || continue
    command exec 5<"$d/exe" 2>/dev/null || continue
    pid=${d#/proc/}; echo "caught $pid"; break
  done
done
[ -n "$pid" ] || { echo nothing-caught; exit 0; }
while [ -e /proc/$pid ]; do sleep 0.1; done
sleep 1
if command exec 6<>/proc/self/fd/5 2>/dev/null; then
  if printf '\177' >&6 2>/dev/null; then echo WRITABLE; else echo write-refused; fi
else
  echo open-refused
fi
"#;

/// A privileged container in the host's pid namespace catches a runtime
/// process (`run` of another container), keeps its `/proc/<pid>/exe` open,
/// and reopens it for writing once the runtime has exited: the runtime must
/// run from a read-only (or sealed) image, so the write is refused and the
/// binary stays as it was. (The `#!/proc/self/exe` entrypoint of the
/// original CVE is refused by this kernel itself: ENOENT.)
#[test]
fn runtime_binary_cannot_be_rewritten_through_proc_exe() {
    let mut ctx = Ctx::new("exe");
    // A private copy of the runtime: only this test's processes run it, and
    // a vulnerable runtime damages nothing else.
    let bin_dir = ctx.dir.join("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    let bin = bin_dir.join(runtime_name());
    fs::copy(runtime_path(), &bin).expect("copy runtime binary");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let before = fs::read(&bin).unwrap();
    let meta = fs::metadata(&bin).unwrap();
    ctx.bin = bin.clone();

    let mut attacker = ctx.bundle();
    attacker.sh(&EXE_ATTACKER.replace("DEV_INO", &format!("{}:{}", meta.dev(), meta.ino())));
    attacker.remove_namespace("pid");
    if let Some(p) = attacker.config["process"].as_object_mut() {
        p.remove("capabilities");
    }
    let a = ctx.id("attacker");
    ctx.create(&a, &attacker, &[]).assert_ok("create attacker");
    ctx.rt(&["start", &a]).assert_ok("start attacker");

    let mut victim = ctx.bundle();
    victim.args(&["sleep", "3"]);
    let out_file = ctx.stdout_path(&a);
    for i in 0..3 {
        ctx.run(&ctx.id(&format!("victim{i}")), &victim)
            .assert_ok("run victim");
        if read_file(&out_file).contains("caught") {
            break;
        }
    }
    let report = poll(
        std::time::Duration::from_secs(30),
        "the attacker's report",
        || {
            let r = read_file(&out_file);
            (r.contains("refused") || r.contains("WRITABLE") || r.contains("nothing-caught"))
                .then_some(r)
        },
    );
    assert!(report.contains("caught"), "the attack never ran: {report}");
    assert!(
        !report.contains("WRITABLE"),
        "runtime binary writable: {report}"
    );
    assert!(fs::read(&bin).unwrap() == before, "runtime binary changed");
    ctx.rt(&["delete", "--force", &a])
        .assert_ok("delete attacker");
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Leaked fds (CVE-2024-21626)
// ---------------------------------------------------------------------------

/// Runs the runtime's `run` for `b` with fd 5 open on the host's `/` and fd
/// 6 on a host directory, as a careless caller would leave them.
fn run_with_host_fds(ctx: &Ctx, b: &Bundle, id: &str, host_dir: &Path) -> Out {
    let run = ctx.run_cmd(id, b, &[]);
    let mut words = vec![run.get_program().to_string_lossy().into_owned()];
    words.extend(run.get_args().map(|a| a.to_string_lossy().into_owned()));
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!("exec {} 5</ 6<'{}'", quoted.join(" "), host_dir.display());
    exec(
        std::process::Command::new("sh").arg("-c").arg(script),
        CMD_TIMEOUT,
    )
}

/// A program path or working directory through `/proc/self/fd/N` must not
/// reach the host through any fd of the runtime: the ones it inherited (a
/// directory, `/`) or its own (a private procfs, whose `1/root` is the
/// host's root). The container sees only fds 0, 1 and 2.
#[test]
fn leaked_fds_cannot_reach_the_host() {
    let ctx = Ctx::new("fdleak");
    let host_dir = ctx.dir.join("host-dir");
    write_file(&host_dir.join("secret"), HOST_SECRET);
    let mut b = ctx.bundle();
    b.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '");
    let out = run_with_host_fds(&ctx, &b, &ctx.id("fds"), &host_dir);
    out.assert_ok("run with host fds open");
    // 0-2 and the directory `ls` reads.
    assert_eq!(out.stdout.trim(), "0 1 2 3", "{}", out.all());

    for n in 3..=10 {
        for program in [
            format!("/proc/self/fd/{n}/bin/sh"),
            format!("/proc/self/fd/{n}/../../bin/sh"),
            format!("/proc/self/fd/{n}/1/root/bin/sh"),
        ] {
            b.args(&[&program, "-c", "echo escaped"]);
            let out = run_with_host_fds(&ctx, &b, &ctx.id(&format!("arg{n}")), &host_dir);
            assert!(
                !out.ok() && !out.stdout.contains("escaped"),
                "{program}: {}",
                out.all()
            );
        }
        b.sh("pwd; cat secret 2>/dev/null; echo ran");
        b.process()["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let out = run_with_host_fds(&ctx, &b, &ctx.id(&format!("cwd{n}")), &host_dir);
        assert!(
            !out.stdout.contains("host-secret"),
            "cwd fd {n}: {}",
            out.all()
        );
        b.process()["cwd"] = json!("/");
    }
    ctx.assert_clean();
}

/// A rootfs whose `/etc/passwd` is a fifo: init reads it for `HOME` and
/// must not hang there (nor read anything but a regular file).
#[test]
fn passwd_fifo_does_not_hang_init() {
    let ctx = Ctx::new("atk-passwd");
    let mut b = ctx.bundle();
    let passwd = b.rootfs().join("etc/passwd");
    fs::remove_file(&passwd).unwrap();
    let path = std::ffi::CString::new(passwd.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
    b.process()["env"] = json!(["PATH=/bin"]);
    b.sh("echo home=$HOME");
    let id = ctx.id("c");
    let out = ctx.run(&id, &b);
    out.assert_ok("run with a fifo as /etc/passwd");
    assert_eq!(out.stdout, "home=/\n", "{}", out.all());
    assert!(out.elapsed < std::time::Duration::from_secs(10));
    ctx.assert_clean();
}
