//! Every OCI mount type and option, in real busybox containers: proc,
//! sysfs, mqueue, devpts, tmpfs (`size=`, `mode=`, over an existing
//! directory, `tmpcopyup`), bind and rbind with each attribute, atime and
//! propagation option and `rro`, overlay, cgroup (with and without a cgroup
//! namespace), filesystem data passed through to any type, `linux.devices`,
//! a bound or read-only `/dev`, a read-only root and `linux.sysctl`.
//!
//! Each test checks what a user would check: the file is there with the
//! right content, owner and mode; the write is refused; the container's
//! `/proc/self/mountinfo` shows the expected filesystem type, per-mount and
//! super options and propagation fields (`shared:N`, `master:N`,
//! `unbindable`); and, afterwards, the host's mount table and sentinel files
//! outside the rootfs are unchanged (`HostView`).
//!
//! Mounts a test needs on the host side (a submount inside a bind source, a
//! shared source, a `nosuid` source) are made in a throwaway mount namespace
//! that holds only the runtime invocation (`run_in_host_ns`), never in the
//! machine's own mount table.
//!
//! What `rootfs.rs` already covers (the default `/dev` nodes and links,
//! `/dev/shm`, `/sys` ro/rw, basic binds, masked paths) is not repeated.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

// ---------------------------------------------------------------------------
// Mount tables
// ---------------------------------------------------------------------------

/// One line of `/proc/<pid>/mountinfo`.
#[derive(Debug, Clone)]
struct MountEntry {
    /// Root of the mount within its filesystem (field 4).
    root: String,
    point: String,
    /// Per-mount options (`ro,nosuid,relatime`).
    opts: Vec<String>,
    /// Optional fields: `shared:N`, `master:N`, `propagate_from:N`,
    /// `unbindable`.
    optional: Vec<String>,
    fstype: String,
    source: String,
    /// Super block options (`rw,size=2048k,mode=710`).
    super_opts: Vec<String>,
}

impl MountEntry {
    fn parse(line: &str) -> Option<MountEntry> {
        let (pre, post) = line.split_once(" - ")?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 6 || post.len() < 3 {
            return None;
        }
        let split = |s: &str| s.split(',').map(str::to_owned).collect();
        Some(MountEntry {
            root: pre[3].to_owned(),
            point: pre[4].to_owned(),
            opts: split(pre[5]),
            optional: pre[6..].iter().map(|s| s.to_string()).collect(),
            fstype: post[0].to_owned(),
            source: post[1].to_owned(),
            super_opts: split(post[2]),
        })
    }

    fn has(&self, opt: &str) -> bool {
        self.opts.iter().any(|o| o == opt)
    }

    fn has_super(&self, opt: &str) -> bool {
        self.super_opts.iter().any(|o| o == opt)
    }

    /// Propagation fields without their peer group numbers, sorted:
    /// `[]` (private), `["shared"]`, `["master"]`, `["master", "shared"]`,
    /// `["unbindable"]`.
    fn propagation(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .optional
            .iter()
            .map(|f| f.split(':').next().unwrap_or(""))
            .collect();
        v.sort();
        v
    }

    /// Peer group of a `master:N` field.
    fn master(&self) -> Option<&str> {
        self.optional.iter().find_map(|f| f.strip_prefix("master:"))
    }

    #[track_caller]
    fn assert_opts(&self, present: &[&str], absent: &[&str]) {
        for o in present {
            assert!(
                self.has(o),
                "{} lacks mount option {o}: {self:?}",
                self.point
            );
        }
        for o in absent {
            assert!(
                !self.has(o),
                "{} has mount option {o}: {self:?}",
                self.point
            );
        }
    }

    #[track_caller]
    fn assert_super(&self, present: &[&str]) {
        for o in present {
            assert!(
                self.has_super(o),
                "{} lacks super option {o}: {self:?}",
                self.point
            );
        }
    }
}

/// A parsed mountinfo.
struct MountTable {
    entries: Vec<MountEntry>,
    text: String,
}

impl MountTable {
    fn parse(text: &str) -> MountTable {
        MountTable {
            entries: text.lines().filter_map(MountEntry::parse).collect(),
            text: text.to_owned(),
        }
    }

    /// The mount visible at `point` (the last one mounted there).
    fn find(&self, point: &str) -> Option<&MountEntry> {
        self.entries.iter().rev().find(|e| e.point == point)
    }

    #[track_caller]
    fn get(&self, point: &str) -> &MountEntry {
        self.find(point)
            .unwrap_or_else(|| panic!("nothing mounted on {point}:\n{}", self.text))
    }

    /// `get`, asserting the filesystem type too.
    #[track_caller]
    fn get_typed(&self, point: &str, fstype: &str) -> &MountEntry {
        let m = self.get(point);
        assert_eq!(m.fstype, fstype, "filesystem type of {point}: {m:?}");
        m
    }
}

// ---------------------------------------------------------------------------
// Running containers
// ---------------------------------------------------------------------------

/// Printed between a script's own output and the mountinfo dump.
const MOUNTINFO_MARK: &str = "=== mountinfo ===";

/// What a container printed, and its mount table after its script ran.
struct Seen {
    out: String,
    mounts: MountTable,
}

impl Seen {
    fn parse(stdout: &str) -> Seen {
        let (out, info) = stdout
            .split_once(&format!("{MOUNTINFO_MARK}\n"))
            .unwrap_or_else(|| panic!("no mountinfo in the container's output:\n{stdout}"));
        Seen {
            out: out.to_owned(),
            mounts: MountTable::parse(info),
        }
    }

    /// Asserts that the script printed exactly this line.
    #[track_caller]
    fn line(&self, want: &str) -> &Self {
        assert!(
            self.out.lines().any(|l| l.trim_end() == want),
            "missing line `{want}` in the container's output:\n{}",
            self.out
        );
        self
    }

    /// Asserts that no line of the script's output contains `what`.
    #[track_caller]
    fn lacks(&self, what: &str) -> &Self {
        assert!(
            !self.out.contains(what),
            "unexpected `{what}` in the container's output:\n{}",
            self.out
        );
        self
    }
}

/// `script`, then the container's mountinfo after the marker.
fn with_mountinfo(script: &str) -> String {
    format!("{script}\necho '{MOUNTINFO_MARK}'\ncat /proc/self/mountinfo")
}

/// Runs `script` in a new container of `b`, asserting success.
#[track_caller]
fn run_and_look(ctx: &Ctx, b: &mut Bundle, name: &str, script: &str) -> Seen {
    b.sh(&with_mountinfo(script));
    let id = ctx.id(name);
    let out = ctx.run(&id, b);
    out.assert_ok(name);
    Seen::parse(&out.stdout)
}

/// Runs the runtime's `run` for `b` inside a throwaway mount namespace of
/// the host (`unshare --mount --propagation private`), after `setup`, a
/// shell script (`set -e`) that mounts what the test needs there. `then`
/// runs the runtime, which is `"$@"`: `exec "$@"` unless the test needs to
/// act while the container runs. Nothing reaches the machine's own mount
/// table; the namespace vanishes with its last process.
#[track_caller]
fn run_in_host_ns(ctx: &Ctx, b: &mut Bundle, name: &str, setup: &str, then: &str) -> Out {
    let id = ctx.id(name);
    let rt = ctx.run_cmd(&id, b, &[]);
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(format!("set -e\n{setup}\n{then}"))
        .arg("sh")
        .arg(rt.get_program())
        .args(rt.get_args());
    for (k, v) in rt.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    exec(&mut c, CMD_TIMEOUT)
}

/// `run_in_host_ns` + `run_and_look`.
#[track_caller]
fn run_and_look_in_host_ns(
    ctx: &Ctx,
    b: &mut Bundle,
    name: &str,
    setup: &str,
    script: &str,
) -> Seen {
    b.sh(&with_mountinfo(script));
    let out = run_in_host_ns(ctx, b, name, setup, "exec \"$@\"");
    out.assert_ok(name);
    Seen::parse(&out.stdout)
}

/// A mount entry of the config.
fn mount(dest: &str, ty: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": ty, "source": source, "options": options})
}

/// A bind mount entry (`type: bind`) of `source`.
fn bind(dest: &str, source: &Path, options: &[&str]) -> Value {
    mount(dest, "bind", &source.to_string_lossy(), options)
}

/// The config's mount entry for `dest` (panics if there is none).
fn config_mount<'a>(b: &'a mut Bundle, dest: &str) -> &'a mut Value {
    b.config["mounts"]
        .as_array_mut()
        .expect("config has mounts")
        .iter_mut()
        .find(|m| m["destination"] == dest)
        .unwrap_or_else(|| panic!("no mount for {dest} in the config"))
}

/// Adds `caps` to every capability set of the container's process (the
/// default spec's root has no CAP_DAC_OVERRIDE: files of other owners
/// would be out of its reach).
fn grant_caps(b: &mut Bundle, caps: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        let list = b.process()["capabilities"][set]
            .as_array_mut()
            .unwrap_or_else(|| panic!("process.capabilities.{set} is not a list"));
        list.extend(caps.iter().map(|c| json!(c)));
    }
}

/// Index of the next mount added to `b`'s config.
fn next_mount_index(b: &Bundle) -> usize {
    b.config["mounts"].as_array().map_or(0, Vec::len)
}

// ---------------------------------------------------------------------------
// The host's side
// ---------------------------------------------------------------------------

/// What must not change on the host while a container runs: the test
/// process's mount table (the host's, or the private namespace the suite
/// runs in) and sentinel files next to the rootfs.
struct HostView {
    mountinfo: String,
    sentinels: Vec<(PathBuf, std::time::SystemTime)>,
}

impl HostView {
    fn take(ctx: &Ctx, b: &Bundle) -> HostView {
        let sentinels = [ctx.dir.join("sentinel"), b.path.join("sentinel")]
            .into_iter()
            .map(|p| {
                write_file(&p, "host\n");
                let mtime = fs::metadata(&p).unwrap().modified().unwrap();
                (p, mtime)
            })
            .collect();
        HostView {
            mountinfo: read_file(Path::new("/proc/self/mountinfo")),
            sentinels,
        }
    }

    #[track_caller]
    fn assert_unchanged(&self) {
        let now = read_file(Path::new("/proc/self/mountinfo"));
        assert_eq!(
            now, self.mountinfo,
            "the host's mount table changed while the container ran"
        );
        for (p, mtime) in &self.sentinels {
            assert_eq!(read_file(p), "host\n", "{} was modified", p.display());
            assert_eq!(&fs::metadata(p).unwrap().modified().unwrap(), mtime);
        }
    }
}

/// `mode` and owner of a host path (not following symlinks).
fn host_mode_owner(p: &Path) -> (u32, u32, u32) {
    let md = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    (md.mode() & 0o7777, md.uid(), md.gid())
}

fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Creates directory `p` (and parents) with `mode` and owner.
fn make_dir(p: &Path, mode: u32, uid: u32, gid: u32) {
    fs::create_dir_all(p).unwrap();
    set_mode(p, mode);
    chown(p, uid, gid);
}

/// Writes file `p` with `mode` and owner.
fn make_file(p: &Path, content: &str, mode: u32, uid: u32, gid: u32) {
    write_file(p, content);
    set_mode(p, mode);
    chown(p, uid, gid);
}

/// `mknod p c major minor` with mode 0666, on the host.
fn make_char_device(p: &Path, major: u32, minor: u32) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string; mknod only reads it.
    let r = unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | 0o666,
            libc::makedev(major, minor),
        )
    };
    assert_eq!(r, 0, "mknod {}", p.display());
    set_mode(p, 0o666);
}

/// Sorted names in a host directory.
fn dir_names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", p.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A small executable shell script that prints `ran`.
const TOOL_SCRIPT: &str = "#!/bin/sh\necho ran\n";

// ---------------------------------------------------------------------------
// proc, sysfs, mqueue, devpts
// ---------------------------------------------------------------------------

/// /proc, /sys and /dev/mqueue are new instances for the container's pid,
/// network and ipc namespaces, with the configured options and filesystem
/// data (`hidepid=invisible` reaches procfs).
#[test]
fn proc_sysfs_and_mqueue_are_new_instances() {
    let ctx = Ctx::new("mnt-pseudo");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    config_mount(&mut b, "/proc")["options"] =
        json!(["nosuid", "nodev", "noexec", "hidepid=invisible"]);
    let queue = format!("rootcell-mq-{}", std::process::id());
    let seen = run_and_look(
        &ctx,
        &mut b,
        "c",
        &format!(
            "echo net: $(ls /sys/class/net)\n\
             : > /dev/mqueue/{queue} && head -c 7 /dev/mqueue/{queue}; echo\n\
             echo mq: $(ls /dev/mqueue)"
        ),
    );
    // A new network namespace: its sysfs shows only its loopback.
    seen.line("net: lo")
        .line("QSIZE:0")
        .line(&format!("mq: {queue}"));
    let m = &seen.mounts;
    let proc_ = m.get_typed("/proc", "proc");
    proc_.assert_opts(&["rw", "nosuid", "nodev", "noexec"], &[]);
    proc_.assert_super(&["hidepid=invisible"]);
    m.get_typed("/sys", "sysfs")
        .assert_opts(&["ro", "nosuid", "nodev", "noexec"], &[]);
    m.get_typed("/dev/mqueue", "mqueue")
        .assert_opts(&["rw", "nosuid", "nodev", "noexec"], &[]);

    // The queue lives in the container's ipc namespace, not the host's.
    let name = std::ffi::CString::new(format!("/{queue}")).unwrap();
    // SAFETY: a valid C string; mq_open with O_RDONLY creates nothing.
    let mqd = unsafe { libc::mq_open(name.as_ptr(), libc::O_RDONLY) };
    if mqd >= 0 {
        // SAFETY: a descriptor mq_open just returned; the name is valid.
        unsafe {
            libc::mq_close(mqd);
            libc::mq_unlink(name.as_ptr());
        }
        panic!("the container's message queue {queue} appeared in the host's ipc namespace");
    }
    host.assert_unchanged();
    ctx.assert_clean();
}

/// /dev/pts is a new devpts instance with the default spec's options:
/// `newinstance`, `ptmxmode=0666`, `mode=0620`, `gid=5`. A pty opened
/// through /dev/ptmx is numbered from 0 in that instance and gets the
/// configured mode and group.
#[test]
fn devpts_is_a_new_instance_with_the_spec_options() {
    let ctx = Ctx::new("mnt-devpts");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    let seen = run_and_look(
        &ctx,
        &mut b,
        "c",
        "exec 3<>/dev/ptmx\n\
         echo pts: $(ls /dev/pts)\n\
         stat -c '%n %F %t:%T %a %u:%g' /dev/pts/ptmx /dev/pts/0\n\
         readlink /dev/ptmx",
    );
    seen.line("pts: 0 ptmx")
        .line("/dev/pts/ptmx character special file 5:2 666 0:0")
        // Major 136 (0x88): the first pty of this instance.
        .line("/dev/pts/0 character special file 88:0 620 0:5")
        .line("pts/ptmx");
    let pts = seen.mounts.get_typed("/dev/pts", "devpts");
    pts.assert_opts(&["rw", "nosuid", "noexec"], &[]);
    pts.assert_super(&["gid=5", "mode=620", "ptmxmode=666"]);
    host.assert_unchanged();
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// tmpfs
// ---------------------------------------------------------------------------

/// `size=` limits the tmpfs (statfs and a write past it), `mode=` sets the
/// root directory's mode, the default mode is 1777, `ro` refuses writes,
/// and missing destinations are created with their parents.
#[test]
fn tmpfs_size_and_mode() {
    let ctx = Ctx::new("mnt-tmpfs");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    b.add_mount(mount(
        "/mnt/deep/sized",
        "tmpfs",
        "rc-sized",
        &["nosuid", "size=2m", "mode=0710"],
    ))
    .add_mount(mount("/mnt/plain", "tmpfs", "tmpfs", &[]))
    .add_mount(mount("/mnt/ro", "tmpfs", "tmpfs", &["ro", "size=1m"]));
    let seen = run_and_look(
        &ctx,
        &mut b,
        "c",
        "stat -c '%n %a %u:%g' /mnt/deep/sized /mnt/plain /mnt/ro\n\
         df -k /mnt/deep/sized | tail -n 1 | awk '{print \"kblocks\", $2}'\n\
         echo data > /mnt/deep/sized/f && cat /mnt/deep/sized/f\n\
         head -c 3000000 /dev/zero 2>/dev/null > /mnt/deep/sized/big || echo sized-full\n\
         touch /mnt/ro/x 2>/dev/null || echo ro-refused",
    );
    seen.line("/mnt/deep/sized 710 0:0")
        .line("/mnt/plain 1777 0:0")
        .line("/mnt/ro 1777 0:0")
        .line("kblocks 2048")
        .line("data")
        .line("sized-full")
        .line("ro-refused");
    let m = &seen.mounts;
    let sized = m.get_typed("/mnt/deep/sized", "tmpfs");
    sized.assert_opts(&["rw", "nosuid"], &["ro"]);
    sized.assert_super(&["size=2048k", "mode=710"]);
    assert_eq!(sized.source, "rc-sized", "{sized:?}");
    m.get_typed("/mnt/plain", "tmpfs")
        .assert_opts(&["rw"], &["nosuid"]);
    m.get_typed("/mnt/ro", "tmpfs")
        .assert_opts(&["ro"], &["rw"]);
    // The mount points were made in the rootfs; the data stayed in tmpfs.
    assert_eq!(
        dir_names(&b.rootfs().join("mnt/deep/sized")),
        Vec::<String>::new()
    );
    assert!(b.rootfs().join("mnt/plain").is_dir());
    host.assert_unchanged();
    ctx.assert_clean();
}

/// A tmpfs over a directory that exists in the rootfs hides its content and
/// takes its mode when the options have no `mode=` (runc chmods the tmpfs
/// root, and since 1.1.8 passes the mode as the default `mode=`); an
/// explicit `mode=` wins (opencontainers/runc#3911).
#[test]
fn tmpfs_over_an_existing_directory_takes_its_mode() {
    let ctx = Ctx::new("mnt-tmpfs-existing");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    let keep = b.rootfs().join("srv/keep");
    let explicit = b.rootfs().join("srv/explicit");
    make_dir(&keep, 0o750, UNPRIV_UID, UNPRIV_GID);
    make_dir(&explicit, 0o750, 0, 0);
    make_file(&keep.join("hidden"), "image\n", 0o644, 0, 0);
    b.add_mount(mount("/srv/keep", "tmpfs", "tmpfs", &["size=1m"]))
        .add_mount(mount("/srv/explicit", "tmpfs", "tmpfs", &["mode=0700"]));
    let seen = run_and_look(
        &ctx,
        &mut b,
        "c",
        "stat -c '%n %a' /srv/keep /srv/explicit\n\
         echo entries: $(ls -A /srv/keep | wc -l)\n\
         echo new > /srv/keep/new && echo wrote",
    );
    seen.line("/srv/keep 750").line("entries: 0").line("wrote");
    if runtime_is_runc() {
        // runc before 1.1.8 chmods the tmpfs root to the directory's mode
        // even when the options have mode= (opencontainers/runc#3911).
        skip("explicit mode= over an existing directory");
    } else {
        seen.line("/srv/explicit 700");
    }
    seen.mounts.get_typed("/srv/keep", "tmpfs");
    seen.mounts
        .get_typed("/srv/explicit", "tmpfs")
        .assert_super(&["mode=700"]);
    // The image's directory is untouched.
    assert_eq!(read_file(&keep.join("hidden")), "image\n");
    assert!(!keep.join("new").exists());
    assert_eq!(host_mode_owner(&keep), (0o750, UNPRIV_UID, UNPRIV_GID));
    host.assert_unchanged();
    ctx.assert_clean();
}

/// `tmpcopyup` fills the new tmpfs with what the directory held: content,
/// modes and owners of files and nested directories, symlinks as symlinks
/// (relative, absolute and dangling). Writes land in the tmpfs, not in the
/// image. With `ro` the copy is there but the tmpfs refuses writes.
#[test]
fn tmpcopyup_copies_the_directory_into_a_tmpfs() {
    let ctx = Ctx::new("mnt-copyup");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    for dir in ["data", "data-ro"] {
        let d = b.rootfs().join(dir);
        make_dir(&d, 0o751, UNPRIV_UID, 100);
        make_file(&d.join("a.txt"), "alpha\n", 0o640, UNPRIV_UID, UNPRIV_GID);
        make_file(&d.join("tool.sh"), TOOL_SCRIPT, 0o755, 0, 0);
        make_dir(&d.join("sub"), 0o700, UNPRIV_UID, UNPRIV_GID);
        make_dir(&d.join("sub/deeper"), 0o750, 0, 100);
        make_file(&d.join("sub/deeper/b.txt"), "beta\n", 0o600, 0, 100);
        symlink("a.txt", d.join("link-rel")).unwrap();
        chown(&d.join("link-rel"), UNPRIV_UID, UNPRIV_GID);
        symlink("/etc/passwd", d.join("link-abs")).unwrap();
        symlink("/nonexistent", d.join("dangling")).unwrap();
    }
    grant_caps(&mut b, &["CAP_DAC_OVERRIDE"]);
    b.add_mount(mount("/data", "tmpfs", "tmpfs", &["tmpcopyup"]))
        .add_mount(mount("/data-ro", "tmpfs", "tmpfs", &["tmpcopyup", "ro"]));
    let seen = run_and_look(
        &ctx,
        &mut b,
        "c",
        "cd /data\n\
         stat -c '%n %a %u:%g %F' . a.txt tool.sh sub sub/deeper sub/deeper/b.txt\n\
         stat -c '%n %u:%g %F' link-rel\n\
         for l in link-rel link-abs dangling; do echo \"$l -> $(readlink $l)\"; done\n\
         cat a.txt sub/deeper/b.txt link-rel; ./tool.sh\n\
         head -n 1 link-abs\n\
         echo changed > a.txt && echo new > new.txt && cat a.txt new.txt\n\
         cd /data-ro\n\
         stat -c 'ro %n %a %u:%g' . sub/deeper/b.txt; cat a.txt\n\
         touch new.txt 2>/dev/null || echo ro-refused\n\
         echo x 2>/dev/null > a.txt || echo ro-write-refused",
    );
    seen.line("a.txt 640 1000:1000 regular file")
        .line("tool.sh 755 0:0 regular file")
        .line("sub 700 1000:1000 directory")
        .line("sub/deeper 750 0:100 directory")
        .line("sub/deeper/b.txt 600 0:100 regular file")
        .line("link-rel 1000:1000 symbolic link")
        .line("link-rel -> a.txt")
        .line("link-abs -> /etc/passwd")
        .line("dangling -> /nonexistent")
        .line("alpha")
        .line("beta")
        .line("ran")
        // The absolute symlink resolves inside the container.
        .line("root:x:0:0:root:/root:/bin/sh")
        .line("changed")
        .line("new")
        .line("ro sub/deeper/b.txt 600 0:100")
        .line("ro-refused")
        .line("ro-write-refused");
    if runtime_is_runc() {
        // runc 1.1 gives the tmpfs root the directory's mode but leaves it
        // owned by root (opencontainers/runc#1647).
        skip("owner of the tmpfs root");
        seen.line(". 751 0:0 directory").line("ro . 751 0:0");
    } else {
        seen.line(". 751 1000:100 directory")
            .line("ro . 751 1000:100");
    }
    let m = &seen.mounts;
    m.get_typed("/data", "tmpfs").assert_opts(&["rw"], &["ro"]);
    m.get_typed("/data-ro", "tmpfs").assert_opts(&["ro"], &[]);
    // The image is unchanged.
    let data = b.rootfs().join("data");
    assert_eq!(read_file(&data.join("a.txt")), "alpha\n");
    assert!(!data.join("new.txt").exists());
    assert_eq!(host_mode_owner(&data), (0o751, UNPRIV_UID, 100));
    host.assert_unchanged();
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Bind mounts
// ---------------------------------------------------------------------------

/// `bind` takes only the source's own mount; `rbind` takes its submounts
/// too. `type: none` with a `bind` option is a bind as well. A file source
/// gets a file as mount point and a directory source a directory, created
/// with their missing parents.
#[test]
fn bind_and_rbind_and_created_destinations() {
    let ctx = Ctx::new("mnt-rbind");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    let src = ctx.dir.join("src");
    write_file(&src.join("top.txt"), "top\n");
    // Under the submount, visible only to a non-recursive bind.
    write_file(&src.join("sub/under.txt"), "under\n");
    let dir_src = ctx.dir.join("dir-src");
    write_file(&dir_src.join("in-dir.txt"), "in-dir\n");
    let file_src = ctx.dir.join("file-src.txt");
    write_file(&file_src, "file content\n");
    b.add_mount(bind("/mnt/bind", &src, &["bind"]))
        .add_mount(bind("/mnt/rbind", &src, &["rbind"]))
        .add_mount(mount(
            "/mnt/none-bind",
            "none",
            &src.to_string_lossy(),
            &["bind"],
        ))
        .add_mount(bind("/new/deep/dir", &dir_src, &["bind"]))
        .add_mount(bind("/new/deep/er/file.txt", &file_src, &["bind", "ro"]));
    let seen = run_and_look_in_host_ns(
        &ctx,
        &mut b,
        "c",
        &format!(
            "mount -t tmpfs -o size=1m subfs {src}/sub\necho in-sub > {src}/sub/sub.txt",
            src = src.display()
        ),
        "cat /mnt/bind/top.txt /mnt/rbind/top.txt /mnt/none-bind/top.txt\n\
         echo bind: $(ls /mnt/bind/sub)\n\
         echo rbind: $(ls /mnt/rbind/sub)\n\
         echo none-bind: $(ls /mnt/none-bind/sub)\n\
         cat /new/deep/dir/in-dir.txt /new/deep/er/file.txt\n\
         stat -c '%n %F' /new/deep/dir /new/deep/er/file.txt",
    );
    seen.line("top")
        .line("bind: under.txt")
        .line("rbind: sub.txt")
        .line("none-bind: under.txt")
        .line("in-dir")
        .line("file content")
        .line("/new/deep/dir directory")
        .line("/new/deep/er/file.txt regular file");
    let m = &seen.mounts;
    m.get("/mnt/bind");
    m.get("/mnt/none-bind");
    m.get_typed("/mnt/rbind/sub", "tmpfs");
    assert!(m.find("/mnt/bind/sub").is_none(), "{}", m.text);
    assert!(m.find("/mnt/none-bind/sub").is_none(), "{}", m.text);
    m.get("/new/deep/er/file.txt").assert_opts(&["ro"], &[]);
    // The mount points exist in the rootfs, of the source's type, and empty.
    let rootfs = b.rootfs();
    assert_eq!(
        dir_names(&rootfs.join("new/deep/dir")),
        Vec::<String>::new()
    );
    let file_point = fs::symlink_metadata(rootfs.join("new/deep/er/file.txt")).unwrap();
    assert!(file_point.is_file() && file_point.len() == 0);
    host.assert_unchanged();
    ctx.assert_clean();
}

/// The attribute options of a bind: `ro`/`rw`, `nosuid`/`nodev`/`noexec`
/// and their opposites `suid`/`dev`/`exec` (which clear what the source
/// mount has), and the atime family, in mountinfo and in effect (writes,
/// running a script, opening a device node).
#[test]
fn bind_attribute_options() {
    let ctx = Ctx::new("mnt-bind-attrs");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    // A source on the host's ordinary filesystem (rw, relatime)...
    let plain = ctx.dir.join("plain");
    make_file(&plain.join("tool.sh"), TOOL_SCRIPT, 0o755, 0, 0);
    make_char_device(&plain.join("null"), 1, 3);
    // ...and one that is nosuid,nodev,noexec,noatime (made in the host
    // namespace of the runtime, filled there).
    let hard = ctx.dir.join("hard");
    fs::create_dir_all(&hard).unwrap();
    let setup = format!(
        "mount -t tmpfs -o nosuid,nodev,noexec,noatime,size=1m hardfs {h}\n\
         cp -a {p}/tool.sh {p}/null {h}/",
        h = hard.display(),
        p = plain.display(),
    );
    b.add_mount(bind("/mnt/ro", &plain, &["bind", "ro"]))
        .add_mount(bind("/mnt/rw", &plain, &["bind", "rw"]))
        .add_mount(bind(
            "/mnt/hardened",
            &plain,
            &["bind", "nosuid", "nodev", "noexec"],
        ))
        .add_mount(bind("/mnt/noatime", &plain, &["bind", "noatime"]))
        .add_mount(bind("/mnt/nodiratime", &plain, &["bind", "nodiratime"]))
        .add_mount(bind("/mnt/inherit", &hard, &["bind"]))
        .add_mount(bind(
            "/mnt/cleared",
            &hard,
            &["bind", "suid", "dev", "exec"],
        ))
        .add_mount(bind("/mnt/strictatime", &hard, &["bind", "strictatime"]))
        .add_mount(bind("/mnt/relatime", &hard, &["bind", "relatime"]));
    let seen = run_and_look_in_host_ns(
        &ctx,
        &mut b,
        "c",
        &setup,
        "try() { name=$1; shift; if \"$@\" >/dev/null 2>&1; then echo \"$name ok\"; else echo \"$name refused\"; fi; }\n\
         try ro-write sh -c 'echo x > /mnt/ro/w'\n\
         try rw-write sh -c 'echo x > /mnt/rw/w'\n\
         try ro-exec /mnt/ro/tool.sh\n\
         try hardened-exec /mnt/hardened/tool.sh\n\
         try hardened-dev sh -c 'echo x > /mnt/hardened/null'\n\
         try rw-dev sh -c 'echo x > /mnt/rw/null'\n\
         try inherit-exec /mnt/inherit/tool.sh\n\
         try inherit-dev sh -c 'echo x > /mnt/inherit/null'\n\
         try cleared-exec /mnt/cleared/tool.sh\n\
         try cleared-dev sh -c 'echo x > /mnt/cleared/null'",
    );
    seen.line("ro-write refused")
        .line("rw-write ok")
        .line("ro-exec ok")
        .line("hardened-exec refused")
        .line("hardened-dev refused")
        .line("rw-dev ok")
        .line("inherit-exec refused")
        .line("inherit-dev refused");
    let m = &seen.mounts;
    m.get("/mnt/ro")
        .assert_opts(&["ro", "relatime"], &["rw", "nosuid", "nodev", "noexec"]);
    m.get("/mnt/rw")
        .assert_opts(&["rw", "relatime"], &["ro", "nosuid", "nodev", "noexec"]);
    m.get("/mnt/hardened")
        .assert_opts(&["rw", "nosuid", "nodev", "noexec"], &[]);
    m.get("/mnt/noatime")
        .assert_opts(&["noatime"], &["relatime"]);
    m.get("/mnt/nodiratime").assert_opts(&["nodiratime"], &[]);
    // Without attribute options a bind keeps its source's attributes.
    m.get("/mnt/inherit")
        .assert_opts(&["rw", "nosuid", "nodev", "noexec", "noatime"], &[]);
    m.get("/mnt/strictatime")
        .assert_opts(&[], &["noatime", "relatime"]);
    m.get("/mnt/relatime")
        .assert_opts(&["relatime"], &["noatime"]);
    if runtime_is_runc() {
        // runc 1.1 remounts a bind only when an option sets a flag, so
        // suid/dev/exec alone never clear the source's nosuid/nodev/noexec.
        skip("suid/dev/exec clearing the source's flags");
    } else {
        seen.line("cleared-exec ok").line("cleared-dev ok");
        m.get("/mnt/cleared")
            .assert_opts(&["rw"], &["nosuid", "nodev", "noexec"]);
    }
    // The writes went through to the source.
    assert_eq!(read_file(&plain.join("w")), "x\n");
    host.assert_unchanged();
    ctx.assert_clean();
}

/// `rro` makes every mount of an rbind read-only; plain `ro` only the top
/// one, leaving a submount of the source writable.
#[test]
fn rro_makes_submounts_read_only_too() {
    let ctx = Ctx::new("mnt-rro");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    let src = ctx.dir.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    b.add_mount(bind("/mnt/rro", &src, &["rbind", "rro"]))
        .add_mount(bind("/mnt/ro", &src, &["rbind", "ro"]));
    let seen = run_and_look_in_host_ns(
        &ctx,
        &mut b,
        "c",
        &format!("mount -t tmpfs -o size=1m subfs {}/sub", src.display()),
        "for p in /mnt/rro /mnt/rro/sub /mnt/ro /mnt/ro/sub; do\n\
           if touch $p/f 2>/dev/null; then echo \"$p writable\"; else echo \"$p refused\"; fi\n\
         done",
    );
    seen.line("/mnt/rro refused")
        .line("/mnt/rro/sub refused")
        .line("/mnt/ro refused")
        .line("/mnt/ro/sub writable");
    let m = &seen.mounts;
    m.get("/mnt/rro").assert_opts(&["ro"], &[]);
    m.get_typed("/mnt/rro/sub", "tmpfs")
        .assert_opts(&["ro"], &[]);
    m.get("/mnt/ro").assert_opts(&["ro"], &[]);
    m.get_typed("/mnt/ro/sub", "tmpfs")
        .assert_opts(&["rw"], &["ro"]);
    assert_eq!(dir_names(&src), vec!["sub".to_string()]);
    host.assert_unchanged();
    ctx.assert_clean();
}

/// Propagation options of a bind, in the optional fields of mountinfo, for
/// the top mount and its submount; and in effect: a mount made on the host
/// side while the container runs appears below the slave and shared binds
/// of a shared source, not below the private or unbindable ones.
#[test]
fn bind_propagation_options() {
    // Option, expected propagation fields (group numbers dropped) of the
    // top mount and of its submount, and whether the late host mount
    // reaches the bind. In the container's namespace the source and its
    // submount are slaves of the host side's peer groups (the runtime makes
    // `/` rslave first), and a bind of a slave is a slave of the same group.
    const EXPECTED: [(&str, &[&str], &[&str], bool); 8] = [
        ("private", &[], &["master"], false),
        ("rprivate", &[], &[], false),
        ("shared", &["master", "shared"], &["master"], true),
        (
            "rshared",
            &["master", "shared"],
            &["master", "shared"],
            true,
        ),
        ("slave", &["master"], &["master"], true),
        ("rslave", &["master"], &["master"], true),
        ("unbindable", &["unbindable"], &["master"], false),
        ("runbindable", &["unbindable"], &["unbindable"], false),
    ];
    let ctx = Ctx::new("mnt-propagation");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    let src = ctx.dir.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::create_dir_all(src.join("late")).unwrap();
    let sync = ctx.dir.join("sync");
    fs::create_dir_all(&sync).unwrap();
    for (option, ..) in EXPECTED {
        b.add_mount(bind(&format!("/mnt/{option}"), &src, &["rbind", option]));
    }
    b.add_mount(bind("/sync", &sync, &["bind"]));
    let options: Vec<&str> = EXPECTED.iter().map(|e| e.0).collect();
    b.sh(&with_mountinfo(&format!(
        "touch /sync/ready\n\
         i=0; while [ ! -e /sync/go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done\n\
         for o in {}; do\n\
           if [ -e /mnt/$o/late/mark ]; then echo \"$o got late\"; else echo \"$o no late\"; fi\n\
         done",
        options.join(" ")
    )));
    // The source is shared in the runtime's namespace, with a submount (a
    // peer group of its own); once the container is up, a tmpfs is mounted
    // below the source there.
    let setup = format!(
        "mount --bind {s} {s}\nmount --make-shared {s}\n\
         mount -t tmpfs -o size=1m subfs {s}/sub",
        s = src.display()
    );
    let then = format!(
        "\"$@\" & rt=$!\n\
         i=0; while [ ! -e {y}/ready ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done\n\
         mount -t tmpfs -o size=1m latefs {s}/late && touch {s}/late/mark\n\
         touch {y}/go\n\
         wait $rt",
        s = src.display(),
        y = sync.display()
    );
    let out = run_in_host_ns(&ctx, &mut b, "c", &setup, &then);
    out.assert_ok("run with propagation options");
    let seen = Seen::parse(&out.stdout);
    let m = &seen.mounts;
    for (option, top, sub, gets_late) in EXPECTED {
        for (point, want) in [
            (format!("/mnt/{option}"), top),
            (format!("/mnt/{option}/sub"), sub),
        ] {
            let got = m.get(&point).propagation();
            assert_eq!(got, want, "propagation of {point}:\n{}", m.text);
        }
        seen.line(&format!(
            "{option} {}",
            if gets_late { "got late" } else { "no late" }
        ));
    }
    // The slaves among the tops are slaves of one peer group: the source's.
    let masters: Vec<_> = ["/mnt/slave", "/mnt/rslave", "/mnt/shared"]
        .iter()
        .map(|p| m.get(p).master())
        .collect();
    assert!(
        masters.iter().all(|x| x.is_some() && *x == masters[0]),
        "{masters:?}\n{}",
        m.text
    );
    host.assert_unchanged();
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// overlay
// ---------------------------------------------------------------------------

/// An overlay with absolute `lowerdir` (two layers), `upperdir` and
/// `workdir`: the merged view shows the layers in order, and writes and
/// deletions land in the upper dir on the host, never in the lower ones.
#[test]
fn overlay_merges_layers_and_writes_to_upperdir() {
    let ctx = Ctx::new("mnt-overlay");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    let ov = ctx.dir.join("overlay");
    let (lower1, lower2, upper, work) = (
        ov.join("lower1"),
        ov.join("lower2"),
        ov.join("upper"),
        ov.join("work"),
    );
    write_file(&lower1.join("shadowed.txt"), "lower1\n");
    write_file(&lower1.join("only-lower1.txt"), "l1\n");
    write_file(&lower2.join("shadowed.txt"), "lower2\n");
    write_file(&lower2.join("only-lower2.txt"), "l2\n");
    write_file(&lower2.join("doomed.txt"), "doomed\n");
    write_file(&upper.join("only-upper.txt"), "up\n");
    fs::create_dir_all(&work).unwrap();
    let data = |k: &str, p: &Path| format!("{k}={}", p.display());
    b.add_mount(json!({
        "destination": "/merged",
        "type": "overlay",
        "source": "overlay",
        "options": [
            format!("lowerdir={}:{}", lower1.display(), lower2.display()),
            data("upperdir", &upper),
            data("workdir", &work),
        ],
    }));
    let seen = run_and_look(
        &ctx,
        &mut b,
        "c",
        "cd /merged && echo files: $(ls)\n\
         cat shadowed.txt only-lower1.txt only-lower2.txt only-upper.txt\n\
         echo new > new.txt && echo changed > only-lower1.txt && rm doomed.txt && echo done",
    );
    seen.line("files: doomed.txt only-lower1.txt only-lower2.txt only-upper.txt shadowed.txt")
        .line("lower1")
        .line("l1")
        .line("l2")
        .line("up")
        .line("done");
    let m = seen.mounts.get_typed("/merged", "overlay");
    m.assert_opts(&["rw"], &[]);
    m.assert_super(&[
        &format!("lowerdir={}:{}", lower1.display(), lower2.display()),
        &data("upperdir", &upper),
        &data("workdir", &work),
    ]);
    // Writes are in the upper dir, the deletion is a whiteout there.
    assert_eq!(read_file(&upper.join("new.txt")), "new\n");
    assert_eq!(read_file(&upper.join("only-lower1.txt")), "changed\n");
    let whiteout = fs::symlink_metadata(upper.join("doomed.txt")).unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&whiteout.file_type())
            && whiteout.rdev() == 0,
        "no whiteout for doomed.txt in the upper dir: {whiteout:?}"
    );
    // The lower layers are untouched.
    assert_eq!(read_file(&lower1.join("only-lower1.txt")), "l1\n");
    assert_eq!(read_file(&lower2.join("doomed.txt")), "doomed\n");
    assert_eq!(dir_names(&lower1), ["only-lower1.txt", "shadowed.txt"]);
    assert!(!b.rootfs().join("merged/new.txt").exists());
    host.assert_unchanged();
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// cgroup
// ---------------------------------------------------------------------------

/// Cgroup v1 hierarchies mounted under /sys/fs/cgroup on the host
/// (directory name, e.g. `memory` or `cpu,cpuacct`). Empty on a pure
/// cgroup v2 host.
fn host_v1_hierarchies() -> Vec<String> {
    let info = MountTable::parse(&read_file(Path::new("/proc/self/mountinfo")));
    let mut v: Vec<String> = info
        .entries
        .iter()
        .filter(|e| e.fstype == "cgroup")
        .filter_map(|e| e.point.strip_prefix("/sys/fs/cgroup/").map(str::to_owned))
        .filter(|n| !n.contains('/'))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The script for the cgroup tests: the container's cgroups, then per
/// hierarchy its entry type, link target and whether the container's init
/// is in the `cgroup.procs` at the mount's root; then whether a child
/// cgroup and a file in the tmpfs can be made.
const CGROUP_SCRIPT: &str = "cat /proc/self/cgroup | sed 's/^/cg /'\n\
     for d in /sys/fs/cgroup/*; do\n\
       n=${d##*/}\n\
       if [ -L $d ]; then echo \"entry $n link $(readlink $d)\"; else echo \"entry $n dir\"; fi\n\
       if grep -qx 1 $d/cgroup.procs 2>/dev/null; then echo \"procs $n has-init\"; fi\n\
     done\n\
     if mkdir /sys/fs/cgroup/pids/rc-child 2>/dev/null; then echo child-made; rmdir /sys/fs/cgroup/pids/rc-child; else echo child-refused; fi\n\
     if mkdir /sys/fs/cgroup/rc-dir 2>/dev/null; then echo tmpfs-writable; rmdir /sys/fs/cgroup/rc-dir; else echo tmpfs-refused; fi";

/// Runs the cgroup script with the default `/sys/fs/cgroup` mount, made
/// read-write unless `ro`, with or without a cgroup namespace; checks the
/// layout and that each hierarchy is rooted at the container's own cgroup.
#[track_caller]
fn check_cgroup_mount(ctx: &Ctx, cgroupns: bool, ro: bool) {
    let hierarchies = host_v1_hierarchies();
    if hierarchies.is_empty() {
        skip("no cgroup v1 hierarchy on this host");
        return;
    }
    let mut b = ctx.bundle();
    let host = HostView::take(ctx, &b);
    // Writes must be refused by the read-only mount, not by file modes
    // (runc 1.1 gives the tmpfs the mode of sysfs's /sys/fs/cgroup, 0555).
    grant_caps(&mut b, &["CAP_DAC_OVERRIDE"]);
    if cgroupns {
        b.set_namespace("cgroup", None);
    } else {
        b.remove_namespace("cgroup");
    }
    let mut opts = vec!["nosuid", "noexec", "nodev", "relatime"];
    if ro {
        opts.push("ro");
    }
    config_mount(&mut b, "/sys/fs/cgroup")["options"] = json!(opts);
    let name = format!(
        "cg{}{}",
        if cgroupns { "-ns" } else { "" },
        if ro { "-ro" } else { "" }
    );
    let seen = run_and_look(ctx, &mut b, &name, CGROUP_SCRIPT);
    let m = &seen.mounts;
    let top = m.get_typed("/sys/fs/cgroup", "tmpfs");
    top.assert_opts(&["nosuid", "nodev", "noexec"], &[]);
    // The container's cgroup per hierarchy, from /proc/self/cgroup
    // ("4:memory:/path" → "memory" → "/path").
    let own: std::collections::BTreeMap<String, String> = seen
        .out
        .lines()
        .filter_map(|l| l.strip_prefix("cg "))
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            Some((controllers.to_owned(), path.to_owned()))
        })
        .collect();
    for h in &hierarchies {
        let point = format!("/sys/fs/cgroup/{h}");
        let e = m.get_typed(&point, "cgroup");
        e.assert_opts(&["nosuid", "nodev", "noexec"], &[]);
        e.assert_opts(if ro { &["ro"] } else { &["rw"] }, &[]);
        seen.line(&format!("entry {h} dir"))
            .line(&format!("procs {h} has-init"));
        // The mount's root is the container's cgroup in that hierarchy
        // (the line of /proc/self/cgroup whose controllers the mount has):
        // "/" in a cgroup namespace, the full path without one.
        let (controllers, path) = own
            .iter()
            .find(|(c, _)| !c.is_empty() && c.split(',').all(|c| e.has_super(c)))
            .unwrap_or_else(|| panic!("no line for {point} in /proc/self/cgroup:\n{}", seen.out));
        assert_eq!(&e.root, path, "root of {point}");
        if cgroupns {
            assert_eq!(path, "/", "{controllers} in a cgroup namespace");
        } else {
            assert_ne!(path, "/", "{controllers} without a cgroup namespace");
        }
        // Merged controllers get one symlink per controller.
        if h.contains(',') {
            for c in h.split(',') {
                seen.line(&format!("entry {c} link {h}"));
            }
        }
    }
    if ro {
        seen.line("child-refused");
        if runtime_is_runc() {
            // runc 1.1 leaves the tmpfs holding the hierarchies writable
            // (only the hierarchies are read-only).
            skip("read-only tmpfs under a read-only cgroup mount");
        } else {
            seen.line("tmpfs-refused");
            top.assert_opts(&["ro"], &[]);
        }
    } else {
        seen.line("child-made").line("tmpfs-writable");
        top.assert_opts(&["rw"], &[]);
    }
    host.assert_unchanged();
}

/// With a cgroup namespace (rootcell's default spec) the container sees
/// its own cgroups as the roots of fresh cgroup mounts; read-only and
/// read-write.
#[test]
fn cgroup_mount_with_a_cgroup_namespace() {
    let ctx = Ctx::new("mnt-cgroupns");
    check_cgroup_mount(&ctx, true, true);
    check_cgroup_mount(&ctx, true, false);
    ctx.assert_clean();
}

/// Without a cgroup namespace each hierarchy is a bind of the container's
/// own cgroup directory; read-only and read-write.
#[test]
fn cgroup_mount_without_a_cgroup_namespace() {
    let ctx = Ctx::new("mnt-cgroup-bind");
    check_cgroup_mount(&ctx, false, true);
    check_cgroup_mount(&ctx, false, false);
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Other filesystems and their data
// ---------------------------------------------------------------------------

/// Any other filesystem type is mounted with its options passed as data:
/// `ramfs` with `mode=`, and tmpfs options rootcell does not know itself
/// (`nr_inodes=`, `huge=`), which the kernel applies.
#[test]
fn other_filesystems_get_their_options_as_data() {
    let ctx = Ctx::new("mnt-data");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    b.add_mount(mount(
        "/mnt/ramfs",
        "ramfs",
        "ramfs",
        &["nodev", "mode=0710"],
    ))
    .add_mount(mount(
        "/mnt/inodes",
        "tmpfs",
        "tmpfs",
        &["nr_inodes=8", "huge=within_size"],
    ));
    let seen = run_and_look(
        &ctx,
        &mut b,
        "c",
        "stat -c '%n %a' /mnt/ramfs\n\
         echo r > /mnt/ramfs/f && cat /mnt/ramfs/f\n\
         n=0; while [ $n -lt 20 ] && touch /mnt/inodes/f$n 2>/dev/null; do n=$((n+1)); done\n\
         echo files: $n",
    );
    seen.line("/mnt/ramfs 710").line("r");
    // The root directory takes one of the 8 inodes.
    seen.line("files: 7");
    let ramfs = seen.mounts.get_typed("/mnt/ramfs", "ramfs");
    ramfs.assert_opts(&["rw", "nodev"], &[]);
    ramfs.assert_super(&["mode=710"]);
    seen.mounts
        .get_typed("/mnt/inodes", "tmpfs")
        .assert_super(&["nr_inodes=8", "huge=within_size"]);
    host.assert_unchanged();
    ctx.assert_clean();
}

/// A filesystem option the kernel refuses fails the container with an error
/// naming the mount (`mounts[N]`), and leaves no container, process,
/// cgroup or mount behind.
#[test]
fn option_refused_by_the_kernel_fails_cleanly() {
    let ctx = Ctx::new("mnt-bad-data");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    let index = next_mount_index(&b);
    b.add_mount(mount(
        "/mnt/bad",
        "tmpfs",
        "tmpfs",
        &["size=1m", "rootcell_bogus_option=1"],
    ));
    b.sh("echo started");
    let id = ctx.id("c");
    let out = ctx.run(&id, &b);
    out.assert_fail("run with an option the kernel refuses");
    assert!(!out.stdout.contains("started"), "{}", out.all());
    if runtime_is_runc() {
        skip("error wording (runc names the destination, not the index)");
    } else {
        let err = &out.stderr;
        assert!(err.contains(&format!("mounts[{index}]")), "{err}");
        assert!(err.contains("rootcell_bogus_option"), "{err}");
    }
    assert!(
        ctx.try_state(&id).is_none(),
        "the failed container still exists"
    );
    host.assert_unchanged();
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Devices and /dev
// ---------------------------------------------------------------------------

/// `linux.devices` of type c, b and p become nodes with the configured
/// numbers, mode and owner (parents created), a configured default device
/// replaces the built-in one, and /dev/core exists exactly when the host
/// has /proc/kcore.
#[test]
fn linux_devices_are_created_as_configured() {
    let ctx = Ctx::new("mnt-devices");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    grant_caps(&mut b, &["CAP_DAC_OVERRIDE"]);
    b.linux()["devices"] = json!([
        {"path": "/dev/rc-null", "type": "c", "major": 1, "minor": 3,
         "fileMode": 0o600, "uid": UNPRIV_UID, "gid": 100},
        {"path": "/dev/rc-loop", "type": "b", "major": 7, "minor": 0,
         "fileMode": 0o660, "uid": 0, "gid": 6},
        {"path": "/dev/rc-fifo", "type": "p",
         "fileMode": 0o620, "uid": UNPRIV_UID, "gid": UNPRIV_GID},
        {"path": "/dev/sub/dir/rc-zero", "type": "c", "major": 1, "minor": 5,
         "fileMode": 0o444},
        {"path": "/dev/full", "type": "c", "major": 1, "minor": 7,
         "fileMode": 0o640, "uid": 0, "gid": UNPRIV_GID},
    ]);
    let seen = run_and_look(
        &ctx,
        &mut b,
        "c",
        "stat -c '%n|%F|%t:%T|%a|%u:%g' /dev/rc-null /dev/rc-loop /dev/rc-fifo \
           /dev/sub/dir/rc-zero /dev/full /dev/null\n\
         stat -c '%n %a' /dev/sub /dev/sub/dir\n\
         echo x > /dev/rc-null && echo rc-null-written\n\
         head -c 3 /dev/sub/dir/rc-zero | od -An -tx1\n\
         if [ -L /dev/core ]; then echo \"core -> $(readlink /dev/core)\"; else echo no-core; fi",
    );
    seen.line("/dev/rc-null|character special file|1:3|600|1000:100")
        .line("/dev/rc-loop|block special file|7:0|660|0:6")
        .line("/dev/rc-fifo|fifo|0:0|620|1000:1000")
        .line("/dev/sub/dir/rc-zero|character special file|1:5|444|0:0")
        .line("/dev/full|character special file|1:7|640|0:1000")
        .line("/dev/null|character special file|1:3|666|0:0")
        .line("/dev/sub 755")
        .line("/dev/sub/dir 755")
        .line("rc-null-written")
        .line(" 00 00 00");
    if Path::new("/proc/kcore").exists() {
        seen.line("core -> /proc/kcore");
    } else {
        seen.line("no-core");
    }
    // The nodes are in the container's /dev tmpfs, not in the image.
    assert!(!b.rootfs().join("dev/rc-null").exists());
    assert!(!b.rootfs().join("dev/sub").exists());
    host.assert_unchanged();
    ctx.assert_clean();
}

/// When the config bind-mounts /dev, the runtime sets up nothing there:
/// no device nodes, no symlinks, and the host directory is unchanged. (The
/// directory has a `null` node: runc needs /dev/null in the container.)
#[test]
fn bound_dev_gets_no_device_setup() {
    let ctx = Ctx::new("mnt-dev-bind");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    // The mount points of /dev/pts, /dev/shm and /dev/mqueue exist already,
    // so that the runtime has no reason to create anything in the dir.
    let devdir = b.path.join("devdir");
    for d in ["pts", "shm", "mqueue"] {
        fs::create_dir_all(devdir.join(d)).unwrap();
    }
    write_file(&devdir.join("marker"), "bound\n");
    make_char_device(&devdir.join("null"), 1, 3);
    let before = dir_names(&devdir);
    *config_mount(&mut b, "/dev") = json!({
        "destination": "/dev",
        "type": "bind",
        "source": "devdir",
        "options": ["rbind", "nosuid"],
    });
    let seen = run_and_look(
        &ctx,
        &mut b,
        "c",
        "echo dev: $(ls /dev)\ncat /dev/marker\n\
         for f in zero full ptmx fd stdin core; do [ -e /dev/$f ] || [ -L /dev/$f ] && echo \"has $f\"; done\n\
         echo done",
    );
    seen.line("dev: marker mqueue null pts shm")
        .line("bound")
        .line("done")
        .lacks("has ");
    seen.mounts.get("/dev").assert_opts(&["nosuid"], &[]);
    seen.mounts.get_typed("/dev/pts", "devpts");
    assert_eq!(dir_names(&devdir), before);
    host.assert_unchanged();
    ctx.assert_clean();
}

/// A /dev mount with `ro` is filled first and then made read-only: the
/// devices and links are there and usable, new files are refused, and the
/// mounts below it (/dev/shm) stay writable.
#[test]
fn read_only_dev_keeps_its_devices() {
    let ctx = Ctx::new("mnt-dev-ro");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    config_mount(&mut b, "/dev")["options"]
        .as_array_mut()
        .unwrap()
        .push(json!("ro"));
    let seen = run_and_look(
        &ctx,
        &mut b,
        "c",
        "stat -c '%n %t:%T' /dev/null /dev/zero\n\
         readlink /dev/ptmx; readlink /dev/fd\n\
         echo x > /dev/null && echo null-written\n\
         touch /dev/newfile 2>/dev/null || echo dev-refused\n\
         mkdir /dev/newdir 2>/dev/null || echo mkdir-refused\n\
         echo x > /dev/shm/x && echo shm-written",
    );
    seen.line("/dev/null 1:3")
        .line("/dev/zero 1:5")
        .line("pts/ptmx")
        .line("/proc/self/fd")
        .line("null-written")
        .line("dev-refused")
        .line("mkdir-refused")
        .line("shm-written");
    seen.mounts
        .get_typed("/dev", "tmpfs")
        .assert_opts(&["ro", "nosuid"], &["rw"]);
    seen.mounts
        .get_typed("/dev/shm", "tmpfs")
        .assert_opts(&["rw"], &["ro"]);
    host.assert_unchanged();
    ctx.assert_clean();
}

// ---------------------------------------------------------------------------
// Read-only root, sysctl
// ---------------------------------------------------------------------------

/// With `root.readonly` the mount points of missing destinations are still
/// created (before the root becomes read-only), and the mounts on them stay
/// writable while the root refuses writes.
#[test]
fn readonly_root_keeps_mounts_below_it_writable() {
    let ctx = Ctx::new("mnt-rootro");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    let data = ctx.dir.join("data");
    fs::create_dir_all(&data).unwrap();
    b.config["root"]["readonly"] = json!(true);
    b.add_mount(mount("/scratch/tmp", "tmpfs", "tmpfs", &["size=1m"]))
        .add_mount(bind("/scratch/data", &data, &["rbind"]));
    let seen = run_and_look(
        &ctx,
        &mut b,
        "c",
        "touch /newfile 2>/dev/null || echo root-refused\n\
         mkdir /scratch/x 2>/dev/null || echo scratch-refused\n\
         echo t > /scratch/tmp/f && echo tmp-written\n\
         echo d > /scratch/data/f && echo data-written",
    );
    seen.line("root-refused")
        .line("scratch-refused")
        .line("tmp-written")
        .line("data-written");
    seen.mounts.get("/").assert_opts(&["ro"], &[]);
    seen.mounts
        .get_typed("/scratch/tmp", "tmpfs")
        .assert_opts(&["rw"], &[]);
    seen.mounts.get("/scratch/data").assert_opts(&["rw"], &[]);
    assert_eq!(read_file(&data.join("f")), "d\n");
    assert!(b.rootfs().join("scratch/tmp").is_dir());
    assert!(!b.rootfs().join("newfile").exists());
    host.assert_unchanged();
    ctx.assert_clean();
}

/// `linux.sysctl` values are set in the container's own ipc and network
/// namespaces: visible in its /proc/sys, while the host's values stay.
#[test]
fn sysctls_are_set_in_the_container_namespaces() {
    let ctx = Ctx::new("mnt-sysctl");
    let mut b = ctx.bundle();
    let host = HostView::take(&ctx, &b);
    let proc_path = |k: &str| PathBuf::from("/proc/sys").join(k.replace('.', "/"));
    // Each key gets a value that differs from the host's, whatever the
    // host's is (podman's bridge network sets ip_forward to 1, for one).
    let candidates = [
        ("kernel.shmmax", ["123456789", "123456790"]),
        ("kernel.msgmax", ["4096", "4097"]),
        ("net.ipv4.ip_forward", ["1", "0"]),
    ];
    let host_values: Vec<String> = candidates
        .iter()
        .map(|(k, _)| read_file(&proc_path(k)))
        .collect();
    let keys: Vec<(&str, &str)> = candidates
        .iter()
        .zip(&host_values)
        .map(|((k, [a, b]), hv)| (*k, if hv.trim() == *a { *b } else { *a }))
        .collect();
    b.linux()["sysctl"] = json!(keys
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect::<serde_json::Map<_, _>>());
    let script: String = keys
        .iter()
        .map(|(k, _)| format!("echo {k}=$(cat {})\n", proc_path(k).display()))
        .collect();
    let seen = run_and_look(&ctx, &mut b, "c", &script);
    for (k, v) in &keys {
        seen.line(&format!("{k}={v}"));
    }
    for ((k, _), hv) in keys.iter().zip(&host_values) {
        assert_eq!(&read_file(&proc_path(k)), hv, "host {k} changed");
    }
    host.assert_unchanged();
    ctx.assert_clean();
}
