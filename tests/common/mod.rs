//! Shared helpers for the rootcell integration tests.
//!
//! The tests drive a runc-compatible runtime binary as a user would: through
//! its command line, with real busybox bundles. The binary is
//! `$ROOTCELL_TEST_RUNTIME` when set (e.g. `/usr/sbin/runc`, to validate the
//! tests themselves), otherwise the `rootcell` binary built by cargo.
//!
//! Every test gets a [`Ctx`]: a private temp dir holding the runtime's state
//! dir (`--root`), bundles and captured stdio. Dropping the `Ctx` runs
//! `delete --force` on every container id it handed out, kills any process
//! still running inside one of its root filesystems, and removes the temp dir.
//!
//! Set `ROOTCELL_TEST_KEEP=1` to keep the temp dirs of failed tests.

#![allow(dead_code)]

pub mod capture;
pub mod chroot;
pub mod console;
pub mod cp;
pub mod sandbox;

use serde_json::{json, Value};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound for any single runtime invocation. Generous: a hung runtime
/// must fail the test, not hang the suite.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// Default deadline for polls (status changes, files appearing, pids dying).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// Unprivileged user that exists on the test machines (`cloudsdk`).
pub const UNPRIV_UID: u32 = 1000;
pub const UNPRIV_GID: u32 = 1000;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

// ---------------------------------------------------------------------------
// Runtime selection
// ---------------------------------------------------------------------------

/// Path of the runtime binary under test.
pub fn runtime_path() -> PathBuf {
    match std::env::var_os("ROOTCELL_TEST_RUNTIME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_rootcell")),
    }
}

/// File name of the runtime binary ("rootcell", "runc", ...).
pub fn runtime_name() -> String {
    runtime_path()
        .file_name()
        .expect("runtime path has a file name")
        .to_string_lossy()
        .into_owned()
}

/// True when the suite is being validated against runc instead of rootcell.
/// Only used to skip the few assertions where runc 1.1 legitimately differs.
pub fn runtime_is_runc() -> bool {
    runtime_name().contains("runc")
}

/// Print a skip notice (cargo test has no native skip). Tests `return` after.
///
/// The line is `SKIPPED (<runtime>): <test>: <reason>`. It is written to the
/// process's stderr directly, not through `eprintln!`, which the test
/// harness captures (and shows only for failing tests): a skip must be seen
/// in an ordinary `cargo test` run. With `ROOTCELL_TEST_SKIP_LOG=FILE` the
/// line is also appended to FILE, for a summary of everything skipped.
pub fn skip(reason: &str) {
    let thread = thread::current();
    let test = thread.name().unwrap_or("?");
    let line = format!("SKIPPED ({}): {test}: {reason}\n", runtime_name());
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(log) = std::env::var_os("ROOTCELL_TEST_SKIP_LOG") {
        if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// `skip_unless!(condition, "why")`: when `condition` is false, print a
/// skip notice (see [`skip`]) naming `why` and return from the test.
#[macro_export]
macro_rules! skip_unless {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            $crate::common::skip(&format!($($why)+));
            return;
        }
    };
}

// ---------------------------------------------------------------------------
// Host features: what a test needs from the kernel and the machine. Machines
// of this kind are alike but not identical (I/O scheduler, v1 controllers,
// CPU count...); a test checks what it needs with these and skips without.
// ---------------------------------------------------------------------------

/// A v1 hierarchy of `controller` is mounted at `/sys/fs/cgroup/<controller>`
/// (not the cgroup2 tree: that has `cgroup.controllers`).
pub fn cgroup_v1_controller(controller: &str) -> bool {
    let dir = Path::new("/sys/fs/cgroup").join(controller);
    dir.join("cgroup.procs").exists() && !dir.join("cgroup.controllers").exists()
}

/// `file` exists in the root of the v1 hierarchy of `controller`, e.g.
/// `("blkio", "blkio.weight")`, which only the BFQ/CFQ I/O schedulers
/// provide.
pub fn cgroup_v1_file_exists(controller: &str, file: &str) -> bool {
    cgroup_v1_controller(controller)
        && Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(file)
            .exists()
}

/// The blkio weight file of this host's I/O scheduler, if any
/// (`blkio.weight` with CFQ, `blkio.bfq.weight` with BFQ; none with
/// mq-deadline, kyber or none).
pub fn blkio_weight_file() -> Option<&'static str> {
    ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| cgroup_v1_file_exists("blkio", f))
}

/// The v1 memory controller accounts swap (`memory.memsw.*`).
pub fn swap_accounting() -> bool {
    cgroup_v1_file_exists("memory", "memory.memsw.limit_in_bytes")
}

/// Controllers enabled in the root of the cgroup2 tree at
/// `/sys/fs/cgroup/unified` (hybrid layout), or of `/sys/fs/cgroup` (pure v2).
pub fn cgroup_v2_root_controllers() -> Vec<String> {
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .find_map(|d| fs::read_to_string(Path::new(d).join("cgroup.subtree_control")).ok())
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Parse a kernel list like `0-3,5` into its members.
pub fn parse_id_list(list: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

/// CPUs this process may run on (its `Cpus_allowed_list`).
pub fn usable_cpus() -> Vec<u32> {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(parse_id_list)
        })
        .unwrap_or_default()
}

/// Online NUMA nodes (`/sys/devices/system/node/online`); empty without
/// NUMA support.
pub fn numa_nodes() -> Vec<u32> {
    fs::read_to_string("/sys/devices/system/node/online")
        .map(|s| parse_id_list(&s))
        .unwrap_or_default()
}

/// Huge page sizes the kernel offers, as the runtime spec names them
/// (`2MB`, `1GB`).
pub fn hugepage_sizes() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(match kb {
                kb if kb >= 1 << 20 => format!("{}GB", kb >> 20),
                kb if kb >= 1 << 10 => format!("{}MB", kb >> 10),
                kb => format!("{kb}KB"),
            })
        })
        .collect();
    v.sort();
    v
}

/// The LSM `name` (`apparmor`, `selinux`) is enabled on this host.
pub fn lsm_enabled(name: &str) -> bool {
    match name {
        "apparmor" => {
            fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"))
        }
        "selinux" => Path::new("/sys/fs/selinux/enforce").exists(),
        other => fs::read_to_string("/sys/kernel/security/lsm")
            .is_ok_and(|l| l.trim().split(',').any(|m| m == other)),
    }
}

/// Capability number `cap` is in this process's bounding set.
pub fn host_has_capability(cap: u32) -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & (1u64 << cap) != 0)
}

/// The kernel has time namespaces (`/proc/self/ns/time`).
pub fn time_namespace_available() -> bool {
    Path::new("/proc/self/ns/time").exists()
}

/// The kernel has IPv6 (`/proc/net/if_inet6`).
pub fn ipv6_available() -> bool {
    Path::new("/proc/net/if_inet6").exists()
}

/// A character device node exists at `path` on the host.
pub fn host_char_device(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

/// Builds the C program `source` with `gcc -static` into `out` (a probe
/// for a container's rootfs); `scratch` holds the source file. None
/// without a working gcc: the caller skips.
pub fn build_static_c(scratch: &Path, source: &str, out: &Path) -> Option<()> {
    let src = scratch.join("probe.c");
    write_file(&src, source);
    let built = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(out)
        .arg(&src)
        .output()
        .ok()?;
    built.status.success().then_some(())
}

/// `name` is an executable in one of `$PATH`'s directories (or `/usr/sbin`,
/// `/sbin`), or `name` is itself an executable path.
pub fn command_exists(name: &str) -> bool {
    let is_exec = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        return is_exec(Path::new(name));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .any(|d| is_exec(&d.join(name)))
}

/// A user with this uid exists in the host's `/etc/passwd`.
pub fn host_user_exists(uid: u32) -> bool {
    fs::read_to_string("/etc/passwd").is_ok_and(|p| {
        p.lines()
            .any(|l| l.split(':').nth(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid))
    })
}

/// The uid-1000 user the rootless tests run as exists, and `setpriv` (how
/// the tests switch to it) is installed.
pub fn unprivileged_user_available() -> bool {
    host_user_exists(UNPRIV_UID) && command_exists("setpriv")
}

/// Why the rootless tests cannot run here, if they cannot: they run the
/// runtime as uid 1000 through `setpriv`, which needs `setpriv`, user
/// namespaces an unprivileged user may create, and a temp base (see
/// [`temp_base`]) that uid 1000 can traverse. The uid needs no
/// `/etc/passwd` entry and no `/etc/subuid` range: `spec --rootless` maps
/// only the user's own id.
pub fn rootless_unavailable() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if !command_exists("setpriv") {
        return Some("setpriv (util-linux) is not installed".into());
    }
    if host_sysctl("user.max_user_namespaces").is_some_and(|v| v == "0") {
        return Some("user.max_user_namespaces is 0".into());
    }
    if host_sysctl("kernel.unprivileged_userns_clone").is_some_and(|v| v == "0") {
        return Some("kernel.unprivileged_userns_clone is 0".into());
    }
    if host_sysctl("kernel.apparmor_restrict_unprivileged_userns").is_some_and(|v| v == "1") {
        return Some("AppArmor restricts unprivileged user namespaces".into());
    }
    let base = temp_base();
    for dir in base.ancestors() {
        if let Ok(md) = fs::metadata(dir) {
            if md.uid() != UNPRIV_UID && md.mode() & 0o001 == 0 {
                return Some(format!(
                    "uid {UNPRIV_UID} cannot traverse {} (set ROOTCELL_TEST_TMPDIR)",
                    dir.display()
                ));
            }
        }
    }
    None
}

/// `skip_unless_rootless_possible!()`: skip the test (see [`skip`]) when
/// [`rootless_unavailable`] names a reason.
#[macro_export]
macro_rules! skip_unless_rootless_possible {
    () => {
        if let Some(why) = $crate::common::rootless_unavailable() {
            $crate::common::skip(&format!("rootless: {why}"));
            return;
        }
    };
}

/// A host sysctl's current value (`net.ipv4.ip_forward`), trimmed.
pub fn host_sysctl(key: &str) -> Option<String> {
    let path = Path::new("/proc/sys").join(key.replace('.', "/"));
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Namespaces the runtime advertises in `features` (linux.namespaces).
pub fn features_namespaces() -> Vec<String> {
    let out = exec(Command::new(runtime_path()).arg("features"), CMD_TIMEOUT);
    out.assert_ok("features");
    let v: Value = serde_json::from_str(&out.stdout).expect("features prints JSON");
    v["linux"]["namespaces"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Running commands with deadlines
// ---------------------------------------------------------------------------

/// Result of one command.
#[derive(Debug)]
pub struct Out {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.status.success()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    #[track_caller]
    pub fn assert_ok(&self, ctx: &str) -> &Self {
        assert!(
            self.ok(),
            "{ctx}: `{}` failed with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_fail(&self, ctx: &str) -> &Self {
        assert!(
            !self.ok(),
            "{ctx}: `{}` unexpectedly succeeded\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        assert!(
            self.status.code().is_some(),
            "{ctx}: `{}` died by a signal instead of exiting non-zero: {:?}\n{}",
            self.what,
            self.status,
            self.stderr
        );
        self
    }

    /// stdout + stderr, for messages and substring checks.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn reader<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// Wait for `child` with a deadline; on timeout kill it and panic.
pub fn wait_child(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Run `cmd` with stdin from /dev/null, capturing stdout and stderr.
pub fn exec(cmd: &mut Command, timeout: Duration) -> Out {
    exec_input(cmd, None, timeout)
}

/// Run `cmd` feeding `input` on stdin (or /dev/null), capturing output.
pub fn exec_input(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Out {
    let what = describe(cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn `{what}`: {e}"));
    if let Some(data) = input {
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let rx_out = reader(child.stdout.take().unwrap());
    let rx_err = reader(child.stderr.take().unwrap());
    let status = wait_child(&mut child, timeout, &what);
    let elapsed = start.elapsed();
    // A leaked process holding our pipes must not hang the suite.
    let grace = Duration::from_secs(3);
    let stdout = rx_out
        .recv_timeout(grace)
        .unwrap_or_else(|_| "<stdout pipe still held open by another process>".into());
    let stderr = rx_err
        .recv_timeout(grace)
        .unwrap_or_else(|_| "<stderr pipe still held open by another process>".into());
    Out {
        what,
        status,
        stdout,
        stderr,
        elapsed,
    }
}

/// Run `cmd` with the given stdio files (for commands that leave a detached
/// container behind, which keeps those descriptors). `stdout`/`stderr` of the
/// returned `Out` are the contents of the files when the command returned.
pub fn exec_files(
    cmd: &mut Command,
    stdin: Option<&Path>,
    stdout: &Path,
    stderr: &Path,
    timeout: Duration,
) -> Out {
    let what = describe(cmd);
    let open_out = |p: &Path| {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
    };
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(File::open(p).expect("open stdin file")),
        None => Stdio::null(),
    });
    cmd.stdout(Stdio::from(open_out(stdout)));
    cmd.stderr(Stdio::from(open_out(stderr)));
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn `{what}`: {e}"));
    // Drop our copies of the descriptors held by `cmd`.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = wait_child(&mut child, timeout, &what);
    Out {
        what,
        status,
        stdout: fs::read_to_string(stdout).unwrap_or_default(),
        stderr: fs::read_to_string(stderr).unwrap_or_default(),
        elapsed: start.elapsed(),
    }
}

// ---------------------------------------------------------------------------
// Polling and process helpers
// ---------------------------------------------------------------------------

/// Poll `f` until it returns `Some`, panicking after `timeout`.
#[track_caller]
pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `script` with `sh -c` in a private mount namespace of its own:
/// whatever it mounts (a cgroup2 over `/sys/fs/cgroup`, a tmpfs) vanishes
/// with it and never reaches the test's namespace.
pub fn sh_in_private_mount_ns(script: &str) -> Out {
    exec(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(script),
        CMD_TIMEOUT,
    )
}

/// The threads of this process named like a view's (`view-<id>`): other
/// tests of the same binary run alongside and start and end threads of
/// their own, so the process's whole count says nothing about views.
pub fn view_threads() -> usize {
    fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.starts_with("view-"))
        .count()
}

/// Value of a `Key:\tvalue` line of `/proc/PID/status` text.
pub fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in:\n{status}"))
        .trim()
}

#[track_caller]
pub fn wait_for_file(path: &Path) {
    poll(
        POLL_TIMEOUT,
        &format!("{} to exist", path.display()),
        || path.exists().then_some(()),
    )
}

/// True if `pid` exists and is not a zombie (zombies are dead processes
/// that nobody has reaped yet; on the test VM pid 1 reaps them lazily).
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // "pid (comm) S ..." — comm may contain spaces/parens.
            let after = match stat.rfind(')') {
                Some(i) => &stat[i + 1..],
                None => return true,
            };
            !matches!(after.split_whitespace().next(), Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

#[track_caller]
pub fn wait_pid_dead(pid: i32) {
    poll(POLL_TIMEOUT, &format!("pid {pid} to die"), || {
        (!pid_alive(pid)).then_some(())
    })
}

/// Kill a pid this test started (never used on foreign processes).
pub fn kill_pid(pid: i32, sig: i32) {
    if pid > 0 {
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

pub fn readlink(p: impl AsRef<Path>) -> String {
    fs::read_link(p.as_ref())
        .unwrap_or_else(|e| panic!("readlink {}: {e}", p.as_ref().display()))
        .to_string_lossy()
        .into_owned()
}

/// `readlink /proc/self/ns/<ns>` of the test process (the host namespaces).
pub fn host_ns(ns: &str) -> String {
    readlink(format!("/proc/self/ns/{ns}"))
}

/// Mount points of the host's (the test process's) mount namespace, sorted.
pub fn host_mount_points() -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut v: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .collect();
    v.sort();
    v
}

/// Pids (other than ours) whose root or cwd is one of the directories under
/// `dir` (up to three levels deep, e.g. `dir/bundle0/rootfs`): processes
/// running inside a container whose rootfs is there. Compared by device and
/// inode, since `readlink /proc/PID/root` of a process in another mount
/// namespace just says "/". Zombies are ignored.
pub fn pids_under(dir: &Path) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    fn collect(d: &Path, depth: u32, out: &mut Vec<(u64, u64)>) {
        let Ok(md) = fs::symlink_metadata(d) else {
            return;
        };
        if !md.is_dir() {
            return;
        }
        out.push((md.dev(), md.ino()));
        if depth == 0 {
            return;
        }
        if let Ok(rd) = fs::read_dir(d) {
            for e in rd.flatten() {
                collect(&e.path(), depth - 1, out);
            }
        }
    }
    let mut dirs = Vec::new();
    collect(dir, 3, &mut dirs);
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let inside = ["root", "cwd"].iter().any(|l| {
            fs::metadata(format!("/proc/{pid}/{l}"))
                .map(|m| dirs.contains(&(m.dev(), m.ino())))
                .unwrap_or(false)
        });
        if inside && pid_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Cgroup directories (v1 controllers and the unified hierarchy, up to a
/// few levels deep) whose name contains `id`.
pub fn cgroups_named(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: u32, out: &mut Vec<PathBuf>) {
        if depth == 0 {
            return;
        }
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            let p = e.path();
            if e.file_name().to_string_lossy().contains(id) {
                out.push(p.clone());
            }
            walk(&p, id, depth - 1, out);
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), id, 5, &mut out);
    out
}

/// A context whose runtime runs as uid 1000 (a copy of the binary it can
/// execute, `XDG_RUNTIME_DIR` and `--root` of its own), for containers
/// from `spec --rootless`.
pub fn rootless_ctx(name: &str) -> Ctx {
    rootless_ctx_with(name, true).0
}

/// A busybox bundle in `ctx.dir/rlbundle` for a context that runs the
/// runtime as uid 1000: `prepare` adds to its rootfs, then the whole bundle
/// is given to uid 1000 and its config.json written by `spec --rootless`
/// as that user (only its own ids mapped); no terminal, a writable root.
pub fn rootless_spec_bundle_in(ctx: &Ctx, prepare: impl FnOnce(&Path)) -> Bundle {
    let path = ctx.dir.join("rlbundle");
    let rootfs = path.join("rootfs");
    make_rootfs(&rootfs);
    prepare(&rootfs);
    chown_tree(&path, UNPRIV_UID, UNPRIV_GID);
    let mut c = ctx.cmd();
    c.arg("spec").arg("--rootless").arg("--bundle").arg(&path);
    exec(&mut c, CMD_TIMEOUT).assert_ok("spec --rootless as uid 1000");
    let cfg = parse_json(&read_file(&path.join("config.json")), "rootless config");
    let mut b = Bundle { path, config: cfg };
    b.config["process"]["terminal"] = json!(false);
    b.config["root"]["readonly"] = json!(false);
    b
}

/// `chown -R uid:gid p`.
pub fn chown_tree(p: &Path, uid: u32, gid: u32) {
    let chowned = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(p)
        .status()
        .expect("chown");
    assert!(chowned.success(), "chown -R {}", p.display());
}

/// The same, with `--root` only if `explicit_root` (else the runtime's
/// default under `XDG_RUNTIME_DIR`); returns that `XDG_RUNTIME_DIR` too.
/// The binary is copied to a place uid 1000 can reach (the cargo target
/// dir may not be), with its file name kept, so the default state dir name
/// is unchanged.
pub fn rootless_ctx_with(name: &str, explicit_root: bool) -> (Ctx, PathBuf) {
    let mut ctx = Ctx::new(name);
    let bin_dir = ctx.dir.join("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    let bin = bin_dir.join(runtime_name());
    fs::copy(runtime_path(), &bin).expect("copy runtime binary");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let xdg = ctx.dir.join("xdg");
    fs::create_dir_all(&xdg).unwrap();
    chown(&xdg, UNPRIV_UID, UNPRIV_GID);
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
    ctx.bin = bin;
    ctx.user = Some((UNPRIV_UID, UNPRIV_GID));
    ctx.env = vec![
        ("XDG_RUNTIME_DIR".into(), xdg.clone().into()),
        ("HOME".into(), xdg.clone().into()),
    ];
    ctx.root = explicit_root.then(|| xdg.join("state"));
    (ctx, xdg)
}

// ---------------------------------------------------------------------------
// Temp dirs
// ---------------------------------------------------------------------------

/// Base for temp dirs: `$ROOTCELL_TEST_TMPDIR`, else /tmp. Not `$TMPDIR`,
/// which may point somewhere uid 1000 cannot reach (rootless tests).
pub fn temp_base() -> PathBuf {
    match std::env::var_os("ROOTCELL_TEST_TMPDIR") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("/tmp"),
    }
}

/// Create a fresh world-traversable temp dir under `temp_base()`.
pub fn make_temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let p = temp_base().join(format!("rootcell-it-{tag}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).expect("create temp dir");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Removes a directory tree when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        TempDir(make_temp_dir(tag))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        remove_tree(&self.0);
    }
}

fn remove_tree(p: &Path) {
    if thread::panicking() && std::env::var_os("ROOTCELL_TEST_KEEP").is_some() {
        eprintln!("keeping {}", p.display());
        return;
    }
    if fs::remove_dir_all(p).is_err() {
        // A read-only dir left by a test; make everything writable and retry.
        let _ = Command::new("chmod").arg("-R").arg("u+rwX").arg(p).status();
        let _ = fs::remove_dir_all(p);
    }
}

pub fn chown(p: &Path, uid: u32, gid: u32) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let r = unsafe { libc::lchown(c.as_ptr(), uid, gid) };
    assert_eq!(r, 0, "chown {}", p.display());
}

pub fn write_file(p: &Path, content: &str) {
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}

pub fn read_file(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

// ---------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------

/// Populate `rootfs` with a static busybox, one symlink per applet, the usual
/// top-level dirs and a passwd/group with root and a uid-1000 user.
pub fn make_rootfs(rootfs: &Path) {
    for d in [
        "bin",
        "proc",
        "sys",
        "dev",
        "tmp",
        "etc",
        "root",
        "home/user",
    ] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    let bb = rootfs.join("bin/busybox");
    fs::copy("/bin/busybox", &bb).expect("copy /bin/busybox (is busybox-static installed?)");
    fs::set_permissions(&bb, fs::Permissions::from_mode(0o755)).unwrap();
    for applet in busybox_applets() {
        if applet == "busybox" {
            continue;
        }
        let _ = symlink("busybox", rootfs.join("bin").join(applet));
    }
    write_file(
        &rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    );
    write_file(
        &rootfs.join("etc/group"),
        "root:x:0:\nwheel:x:10:\nusers:x:100:\nuser:x:1000:\n",
    );
}

fn busybox_applets() -> &'static [String] {
    static APPLETS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .expect("run /bin/busybox --list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty() && !l.contains('/'))
            .collect()
    })
}

/// A bundle dir: `rootfs/` plus an editable `config.json`. The config is
/// written by the runtime's own `spec` and then adjusted; tests edit
/// `config` and the `Ctx` methods save it before every create/run.
pub struct Bundle {
    pub path: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.json")
    }

    pub fn save(&self) {
        let s = serde_json::to_string_pretty(&self.config).unwrap();
        fs::write(self.config_path(), s).expect("write config.json");
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// `process.args = ["sh", "-c", script]`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn process(&mut self) -> &mut Value {
        &mut self.config["process"]
    }

    pub fn linux(&mut self) -> &mut Value {
        &mut self.config["linux"]
    }

    pub fn namespaces(&self) -> Vec<String> {
        self.config["linux"]["namespaces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n["type"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn remove_namespace(&mut self, ty: &str) -> &mut Self {
        if let Some(a) = self.config["linux"]["namespaces"].as_array_mut() {
            a.retain(|n| n["type"] != ty);
        }
        self
    }

    /// Add (or replace) a namespace entry, optionally joining `path`.
    pub fn set_namespace(&mut self, ty: &str, path: Option<&str>) -> &mut Self {
        self.remove_namespace(ty);
        let mut ns = json!({ "type": ty });
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        if !self.config["linux"]["namespaces"].is_array() {
            self.config["linux"]["namespaces"] = json!([]);
        }
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(ns);
        self
    }

    pub fn add_mount(&mut self, m: Value) -> &mut Self {
        if !self.config["mounts"].is_array() {
            self.config["mounts"] = json!([]);
        }
        self.config["mounts"].as_array_mut().unwrap().push(m);
        self
    }

    /// Drop every mount whose destination is `dest`.
    pub fn remove_mount(&mut self, dest: &str) -> &mut Self {
        if let Some(a) = self.config["mounts"].as_array_mut() {
            a.retain(|m| m["destination"] != dest);
        }
        self
    }

    pub fn bind_mount(&mut self, src: &Path, dest: &str, ro: bool) -> &mut Self {
        let mut opts = vec!["rbind", "rprivate"];
        if ro {
            opts.push("ro");
        }
        self.add_mount(json!({
            "destination": dest,
            "type": "bind",
            "source": src,
            "options": opts,
        }))
    }

    pub fn add_hook(&mut self, kind: &str, hook: Value) -> &mut Self {
        if !self.config["hooks"].is_object() {
            self.config["hooks"] = json!({});
        }
        if !self.config["hooks"][kind].is_array() {
            self.config["hooks"][kind] = json!([]);
        }
        self.config["hooks"][kind]
            .as_array_mut()
            .unwrap()
            .push(hook);
        self
    }
}

// ---------------------------------------------------------------------------
// Test context
// ---------------------------------------------------------------------------

/// Per-test context: temp dir, runtime state dir and container cleanup.
pub struct Ctx {
    pub name: String,
    /// Private temp dir of the test; everything the test creates is below it.
    pub dir: PathBuf,
    /// The `--root` passed to the runtime; `None` = let it use its default.
    pub root: Option<PathBuf>,
    /// Runtime binary used by this context.
    pub bin: PathBuf,
    /// Run the runtime as this (uid, gid) via setpriv; `None` = as ourselves.
    pub user: Option<(u32, u32)>,
    /// Environment for the runtime (replaces ours when `user` is set).
    pub env: Vec<(OsString, OsString)>,
    ids: Mutex<Vec<String>>,
    bundles: AtomicUsize,
}

impl Ctx {
    pub fn new(name: &str) -> Ctx {
        let dir = make_temp_dir(name);
        let root = dir.join("state");
        Ctx {
            name: name.to_owned(),
            dir,
            root: Some(root),
            bin: runtime_path(),
            user: None,
            env: Vec::new(),
            ids: Mutex::new(Vec::new()),
            bundles: AtomicUsize::new(0),
        }
    }

    /// The directory the runtime keeps state in (`--root` or the default).
    pub fn state_dir(&self) -> PathBuf {
        self.root
            .clone()
            .expect("state_dir() needs an explicit --root")
    }

    /// A unique, valid container id; registered for cleanup on drop.
    pub fn id(&self, suffix: &str) -> String {
        let id = format!("{}-{}-{}", self.name, suffix, std::process::id()).replace('_', "-");
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// A runtime command with the global flags (`--root`) already set.
    pub fn cmd(&self) -> Command {
        let mut c = match self.user {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg(&self.bin);
                c.env_clear();
                c.env(
                    "PATH",
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                );
                c
            }
            None => Command::new(&self.bin),
        };
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(root) = &self.root {
            c.arg("--root").arg(root);
        }
        c
    }

    /// Run the runtime with `args`, capturing output.
    pub fn rt(&self, args: &[&str]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        exec(&mut c, CMD_TIMEOUT)
    }

    /// A fresh busybox bundle with a config.json from `<runtime> spec`,
    /// adjusted to `terminal: false`, a writable root and `args: ["true"]`.
    pub fn bundle(&self) -> Bundle {
        let n = self.bundles.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.join(format!("bundle{n}"));
        make_rootfs(&path.join("rootfs"));
        let mut c = Command::new(&self.bin);
        c.arg("spec").arg("--bundle").arg(&path);
        exec(&mut c, CMD_TIMEOUT).assert_ok("spec for test bundle");
        let mut b = Bundle {
            config: serde_json::from_str(&read_file(&path.join("config.json")))
                .expect("spec wrote valid JSON"),
            path,
        };
        b.config["process"]["terminal"] = json!(false);
        b.config["root"]["readonly"] = json!(false);
        b.config["hostname"] = json!("rootcell-test");
        b.args(&["true"]);
        b.save();
        b
    }

    /// `run <id> --bundle B` in the foreground, capturing the container's
    /// stdout/stderr (they are the runtime's).
    pub fn run(&self, id: &str, b: &Bundle) -> Out {
        self.run_with(id, b, &[], None)
    }

    pub fn run_with(&self, id: &str, b: &Bundle, extra: &[&str], input: Option<&[u8]>) -> Out {
        let mut c = self.run_cmd(id, b, extra);
        exec_input(&mut c, input, CMD_TIMEOUT)
    }

    /// `<rt> --root R run [extra...] --bundle B <id>`, config saved first.
    /// Flags go before the id, the form containerd & co. use and every
    /// runc-compatible CLI accepts (see `lifecycle::flags_after_id_...`).
    pub fn run_cmd(&self, id: &str, b: &Bundle, extra: &[&str]) -> Command {
        b.save();
        let mut c = self.cmd();
        c.arg("run")
            .args(extra)
            .arg("--bundle")
            .arg(&b.path)
            .arg(id);
        c
    }

    /// `<rt> --root R create --bundle B [extra...] <id>`, config saved first.
    pub fn create_cmd(&self, id: &str, b: &Bundle, extra: &[&str]) -> Command {
        b.save();
        let mut c = self.cmd();
        c.arg("create")
            .arg("--bundle")
            .arg(&b.path)
            .args(extra)
            .arg(id);
        c
    }

    /// File that receives the stdout of `create`/`run --detach` for `id`
    /// (and so the container's stdout).
    pub fn stdout_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("io-{}.stdout", file_safe(id)))
    }

    pub fn stderr_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("io-{}.stderr", file_safe(id)))
    }

    /// Run `c` (a create / run --detach command for `id`) with stdout and
    /// stderr going to `stdout_path(id)`/`stderr_path(id)`: the container
    /// keeps them.
    pub fn exec_detached(&self, c: &mut Command, id: &str, stdin: Option<&Path>) -> Out {
        exec_files(
            c,
            stdin,
            &self.stdout_path(id),
            &self.stderr_path(id),
            CMD_TIMEOUT,
        )
    }

    /// `create --bundle B [extra...] <id>` with stdio to files (see
    /// `exec_detached`).
    pub fn create(&self, id: &str, b: &Bundle, extra: &[&str]) -> Out {
        self.create_stdin(id, b, extra, None)
    }

    pub fn create_stdin(&self, id: &str, b: &Bundle, extra: &[&str], stdin: Option<&Path>) -> Out {
        let mut c = self.create_cmd(id, b, extra);
        self.exec_detached(&mut c, id, stdin)
    }

    /// `run --detach [extra...] --bundle B <id>`, stdio to files like create.
    pub fn run_detached(&self, id: &str, b: &Bundle, extra: &[&str]) -> Out {
        let mut args = vec!["--detach"];
        args.extend_from_slice(extra);
        let mut c = self.run_cmd(id, b, &args);
        self.exec_detached(&mut c, id, None)
    }

    /// create + start, asserting both succeed. Returns the container pid.
    #[track_caller]
    pub fn create_start(&self, id: &str, b: &Bundle) -> i32 {
        self.create(id, b, &[]).assert_ok("create");
        let pid = self.pid(id);
        self.rt(&["start", id]).assert_ok("start");
        pid
    }

    pub fn try_state(&self, id: &str) -> Option<Value> {
        let out = self.rt(&["state", id]);
        if !out.ok() {
            return None;
        }
        Some(
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
                panic!("state {id} printed invalid JSON ({e}):\n{}", out.stdout)
            }),
        )
    }

    /// `state <id>` parsed; panics if the command fails.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.rt(&["state", id]);
        out.assert_ok("state");
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state {id} printed invalid JSON ({e}):\n{}", out.stdout))
    }

    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or("").to_owned()
    }

    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        let st = self.state(id);
        st["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("state has no numeric pid: {st}")) as i32
    }

    /// Poll `state` until `status` is reached.
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str) -> Value {
        let mut last = Value::Null;
        let deadline = Instant::now() + POLL_TIMEOUT;
        loop {
            if let Some(st) = self.try_state(id) {
                if st["status"] == status {
                    return st;
                }
                last = st;
            }
            if Instant::now() >= deadline {
                panic!("container {id} never reached status {status}; last state: {last}");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Ids printed by `list -q`.
    pub fn list_ids(&self) -> Vec<String> {
        let out = self.rt(&["list", "-q"]);
        out.assert_ok("list -q");
        let mut v: Vec<String> = out
            .stdout
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        v.sort();
        v
    }

    /// Entries in the state dir (one per container in runc's layout).
    pub fn state_entries(&self) -> Vec<String> {
        let Some(root) = &self.root else {
            return Vec::new();
        };
        match fs::read_dir(root) {
            Ok(rd) => {
                // Dot entries are the runtime's caches (container ids
                // cannot start with a dot), not container state.
                let mut v: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| !name.starts_with('.'))
                    .collect();
                v.sort();
                v
            }
            Err(_) => Vec::new(),
        }
    }

    /// Live processes rooted in / working in this test's temp dir.
    pub fn leftover_pids(&self) -> Vec<i32> {
        pids_under(&self.dir)
    }

    /// Assert that nothing of this test's containers remains: `list -q` is
    /// empty, the state dir has no entries, no process lives in a bundle of
    /// ours, and no cgroup named after one of our ids exists. Polls briefly
    /// for processes, which may take a moment to be reaped.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert_eq!(self.list_ids(), Vec::<String>::new(), "list -q not empty");
        assert_eq!(
            self.state_entries(),
            Vec::<String>::new(),
            "state dir {:?} not empty",
            self.root
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.leftover_pids();
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let desc: Vec<String> = left
                    .iter()
                    .map(|p| {
                        let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                        format!("{p}: {}", String::from_utf8_lossy(&cmd).replace('\0', " "))
                    })
                    .collect();
                panic!("processes left behind: {desc:?}");
            }
            thread::sleep(Duration::from_millis(10));
        }
        for id in self.ids.lock().unwrap().iter() {
            let cg = cgroups_named(id);
            assert!(cg.is_empty(), "cgroups left behind for {id}: {cg:?}");
        }
    }

    /// Forget an id (e.g. after a test deleted it and wants no forced delete).
    pub fn forget(&self, id: &str) {
        self.ids.lock().unwrap().retain(|i| i != id);
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let ids: Vec<String> = self.ids.lock().unwrap().clone();
        for id in ids.iter().rev() {
            let mut c = self.cmd();
            c.args(["delete", "--force", id.as_str()]);
            // Output ignored: most ids are already deleted.
            let mut c2 = c;
            let _ = exec(&mut c2, CMD_TIMEOUT);
        }
        // Safety net for a buggy runtime: kill what still runs in our rootfs
        // (processes our own test started through the runtime).
        for _ in 0..50 {
            let left = pids_under(&self.dir);
            if left.is_empty() {
                break;
            }
            for p in left {
                kill_pid(p, libc::SIGKILL);
            }
            thread::sleep(Duration::from_millis(20));
        }
        // And for a test that failed half-way: empty cgroups named after
        // its ids (a container's, or an engine config's parent, which
        // outlives its container as with runc) must not stay on the host.
        for id in &ids {
            let _ = remove_cgroups_named(id);
        }
        remove_tree(&self.dir);
    }
}

/// `id` made safe as a file name component (ids under test may be invalid).
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Parse a JSON document, panicking with the text on failure.
#[track_caller]
pub fn parse_json(s: &str, what: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{what}: invalid JSON ({e}):\n{s}"))
}

/// Lines of `s`, trimmed, non-empty.
pub fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Moves the calling thread (and every process it spawns afterwards) into a
/// private mount namespace, for tests that start daemons (podman's conmon,
/// containerd) whose mounts must stay out of the test's namespace.
pub fn enter_private_mount_namespace() {
    // SAFETY: plain syscalls; CLONE_NEWNS unshares only this thread's
    // filesystem context, and the mount call changes only that namespace.
    unsafe {
        assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare(CLONE_NEWNS)");
        let ret = libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        );
        assert_eq!(ret, 0, "making / private");
    }
}

/// The runtime binary under test, opened before a test covers host
/// directories with mounts of its own: wherever the checkout (or
/// `$ROOTCELL_TEST_RUNTIME`) lives, under `/var/tmp`, `/run` or `/opt` too,
/// [`HeldRuntime::install`] can still copy it into the test's own
/// directory afterwards, and the engine under test is given that copy.
pub struct HeldRuntime {
    file: File,
    name: String,
}

impl HeldRuntime {
    /// Opens `runtime_path()`; call before `cover_with_tmpfs`.
    pub fn open() -> HeldRuntime {
        let path = runtime_path();
        let file = File::open(&path)
            .unwrap_or_else(|e| panic!("open the runtime binary {}: {e}", path.display()));
        HeldRuntime {
            file,
            name: runtime_name(),
        }
    }

    /// Copies the binary to `<dir>/bin/<its file name>` (mode 0755) and
    /// returns that path. The file name is kept: runc-based engines and the
    /// tests' `runtime_is_runc()` look at it.
    pub fn install(mut self, dir: &Path) -> PathBuf {
        let bin_dir = dir.join("bin");
        fs::create_dir_all(&bin_dir).expect("create the test's bin dir");
        let bin = bin_dir.join(&self.name);
        let mut out =
            File::create(&bin).unwrap_or_else(|e| panic!("create {}: {e}", bin.display()));
        std::io::copy(&mut self.file, &mut out).expect("copy the runtime binary");
        drop(out);
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }
}

/// Covers host directories with empty tmpfs mounts in the calling thread's
/// mount namespace (see `enter_private_mount_namespace`): where daemons
/// under test write state of their own (`/run/containerd`, podman's
/// `/dev/shm/libpod_lock`...), which must not reach the machine.
pub fn cover_with_tmpfs(paths: &[&str]) {
    for path in paths {
        let target = std::ffi::CString::new(*path).expect("path without NUL");
        // SAFETY: plain syscall with valid C strings; the mount lands in the
        // thread's private namespace only.
        let ret = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                std::ptr::null(),
            )
        };
        assert_eq!(ret, 0, "covering {path} with a tmpfs");
    }
}

/// Removes the cgroup directories named after `tag` (deepest first), as
/// left by engines that create cgroups of their own; returns those that
/// could not be removed.
pub fn remove_cgroups_named(tag: &str) -> Vec<PathBuf> {
    let mut dirs = cgroups_named(tag);
    let mut below = Vec::new();
    for d in &dirs {
        collect_dirs(d, &mut below);
    }
    dirs.extend(below);
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.dedup();
    dirs.into_iter()
        .filter(|d| d.exists() && fs::remove_dir(d).is_err())
        .collect()
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(e.path());
            collect_dirs(&e.path(), out);
        }
    }
}
