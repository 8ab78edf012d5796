//! The container's filesystem: root, /proc, /dev, /sys, bind mounts,
//! confinement to the rootfs, hostname and domainname.

mod common;

use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;

/// One line of /proc/self/mountinfo as seen inside the container.
#[derive(Debug)]
struct MountInfo {
    opts: String,
    fstype: String,
    super_opts: String,
}

/// Parse mountinfo text into mount point -> last mount on it.
fn parse_mountinfo(text: &str) -> BTreeMap<String, MountInfo> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let (pre, post) = match line.split_once(" - ") {
            Some(x) => x,
            None => continue,
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 6 || post.len() < 3 {
            continue;
        }
        m.insert(
            pre[4].to_owned(),
            MountInfo {
                opts: pre[5].to_owned(),
                fstype: post[0].to_owned(),
                super_opts: post[2].to_owned(),
            },
        );
    }
    m
}

fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

/// Run `script` in a fresh container of `b`; assert success; return stdout.
#[track_caller]
fn run_sh(ctx: &Ctx, b: &mut Bundle, name: &str, script: &str) -> String {
    b.sh(script);
    let id = ctx.id(name);
    let out = ctx.run(&id, b);
    out.assert_ok(name);
    out.stdout
}

#[test]
fn root_path_relative_and_absolute() {
    let ctx = Ctx::new("rootpath");
    let mut b = ctx.bundle();
    write_file(&b.rootfs().join("marker"), "default-rootfs\n");
    assert_eq!(
        run_sh(&ctx, &mut b, "rel", "cat /marker"),
        "default-rootfs\n"
    );

    // Another relative path, resolved against the bundle dir (not the cwd).
    let alt = b.path.join("sub/alt-root");
    make_rootfs(&alt);
    write_file(&alt.join("marker"), "relative-alt\n");
    b.config["root"]["path"] = json!("sub/alt-root");
    assert_eq!(
        run_sh(&ctx, &mut b, "relalt", "cat /marker"),
        "relative-alt\n"
    );

    // An absolute path outside the bundle.
    let abs = ctx.dir.join("elsewhere/rootfs");
    make_rootfs(&abs);
    write_file(&abs.join("marker"), "absolute\n");
    b.config["root"]["path"] = json!(abs);
    assert_eq!(run_sh(&ctx, &mut b, "abs", "cat /marker"), "absolute\n");
    ctx.assert_clean();
}

#[test]
fn readonly_root_refuses_writes() {
    let ctx = Ctx::new("rootro");
    let mut b = ctx.bundle();
    b.config["root"]["readonly"] = json!(true);
    let out = run_sh(
        &ctx,
        &mut b,
        "ro",
        "touch /newfile 2>&1 && echo WROTE; grep ' / ' /proc/self/mountinfo",
    );
    assert!(
        !out.contains("WROTE"),
        "write to read-only root succeeded: {out}"
    );
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!b.rootfs().join("newfile").exists());
    let root_line = out.lines().last().unwrap_or("");
    let opts = root_line.split(' ').nth(5).unwrap_or("");
    assert!(has_opt(opts, "ro"), "/ not mounted ro: {root_line}");

    // And the same rootfs is writable with readonly=false.
    b.config["root"]["readonly"] = json!(false);
    run_sh(&ctx, &mut b, "rw", "touch /newfile");
    assert!(b.rootfs().join("newfile").exists());
    ctx.assert_clean();
}

#[test]
fn proc_is_mounted_for_the_container_pid_namespace() {
    let ctx = Ctx::new("proc");
    let mut b = ctx.bundle();
    let out = run_sh(
        &ctx,
        &mut b,
        "proc",
        "test -e /proc/self/status && echo self-ok; echo pid=$$; \
         cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'; \
         grep ' /proc ' /proc/self/mountinfo",
    );
    let l = lines(&out);
    assert_eq!(l[0], "self-ok", "{out}");
    assert_eq!(l[1], "pid=1", "{out}");
    assert!(
        l[2].starts_with("sh -c"),
        "pid 1 is not the container process: {out}"
    );
    // Only the container's own processes are visible (sh, ls, grep...).
    let nprocs: usize = l[3].parse().unwrap();
    assert!(
        nprocs <= 5,
        "{nprocs} processes visible in /proc: host /proc?"
    );
    assert!(l[4].contains(" - proc "), "/proc is not procfs: {}", l[4]);
    ctx.assert_clean();
}

#[test]
fn dev_has_standard_devices_and_links() {
    let ctx = Ctx::new("devnodes");
    let mut b = ctx.bundle();
    let out = run_sh(
        &ctx,
        &mut b,
        "dev",
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done; \
         for l in ptmx fd stdin stdout stderr; do echo \"$l -> $(readlink /dev/$l)\"; done; \
         echo data > /dev/null && echo null-ok; \
         head -c 4 /dev/zero | od -An -tx1; \
         head -c 16 /dev/urandom | wc -c; \
         echo x 2>/dev/null > /dev/full || echo full-refused",
    );
    for (name, majmin) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        let want = format!("/dev/{name} character special file {majmin}");
        assert!(out.contains(&want), "missing `{want}` in:\n{out}");
    }
    for (l, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let want = format!("{l} -> {target}");
        assert!(out.contains(&want), "missing `{want}` in:\n{out}");
    }
    assert!(out.contains("null-ok"), "{out}");
    assert!(out.contains(" 00 00 00 00"), "/dev/zero: {out}");
    assert!(out.lines().any(|l| l.trim() == "16"), "/dev/urandom: {out}");
    assert!(
        out.contains("full-refused"),
        "/dev/full accepted a write: {out}"
    );
    // Devices exist only inside the container's /dev tmpfs, not in the rootfs.
    assert!(!b.rootfs().join("dev/null").exists());
    ctx.assert_clean();
}

#[test]
fn dev_and_sys_filesystems() {
    let ctx = Ctx::new("devfs");
    let mut b = ctx.bundle();
    let out = run_sh(
        &ctx,
        &mut b,
        "fs",
        "cat /proc/self/mountinfo; echo ---; \
         echo shm > /dev/shm/x && cat /dev/shm/x; \
         touch /sys/kernel/x 2>&1 || echo sys-refused; \
         ls /dev/pts",
    );
    let (info, rest) = out.split_once("---").unwrap();
    let mounts = parse_mountinfo(info);
    for (mp, fstype) in [
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        ("/proc", "proc"),
    ] {
        let m = mounts
            .get(mp)
            .unwrap_or_else(|| panic!("{mp} not mounted:\n{info}"));
        assert_eq!(m.fstype, fstype, "{mp}: {m:?}");
    }
    // The default spec mounts /sys with "ro".
    let sys = &mounts["/sys"];
    assert!(has_opt(&sys.opts, "ro"), "/sys not read-only: {sys:?}");
    assert!(
        rest.contains("sys-refused"),
        "write under /sys allowed:\n{rest}"
    );
    // devpts is a new instance: it has ptmx.
    let pts = &mounts["/dev/pts"];
    assert!(has_opt(&pts.super_opts, "ptmxmode=666"), "{pts:?}");
    assert!(rest.contains("ptmx"), "{rest}");
    assert!(rest.contains("shm\n"), "/dev/shm not writable:\n{rest}");
    // Mount options from the spec are applied.
    let shm = &mounts["/dev/shm"];
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(has_opt(&shm.opts, o), "/dev/shm lacks {o}: {shm:?}");
    }

    // Without "ro" /sys is mounted read-write.
    let sys_mount = b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    sys_mount["options"] = json!(["nosuid", "noexec", "nodev"]);
    let out = run_sh(&ctx, &mut b, "sysrw", "grep ' /sys ' /proc/self/mountinfo");
    let opts = out.split(' ').nth(5).unwrap_or("");
    assert!(
        has_opt(opts, "rw"),
        "/sys should be rw without \"ro\": {out}"
    );
    ctx.assert_clean();
}

#[test]
fn bind_mounts_files_and_directories() {
    let ctx = Ctx::new("bind");
    let mut b = ctx.bundle();
    let rw_dir = ctx.dir.join("host-rw");
    let ro_dir = ctx.dir.join("host-ro");
    let ro_file = ctx.dir.join("host-file");
    let rw_file = ctx.dir.join("host-file-rw");
    write_file(&rw_dir.join("existing"), "in-rw\n");
    write_file(&ro_dir.join("existing"), "in-ro\n");
    write_file(&ro_file, "file-content\n");
    write_file(&rw_file, "before\n");
    b.bind_mount(&rw_dir, "/mnt/rw", false)
        .bind_mount(&ro_dir, "/mnt/ro", true)
        .bind_mount(&ro_file, "/etc/hostfile", true)
        .bind_mount(&rw_file, "/hostfile-rw", false);
    let out = run_sh(
        &ctx,
        &mut b,
        "bind",
        "cat /mnt/rw/existing /mnt/ro/existing /etc/hostfile; \
         echo created > /mnt/rw/new; \
         echo x 2>/dev/null > /mnt/ro/new || echo ro-dir-refused; \
         echo x 2>/dev/null >> /etc/hostfile || echo ro-file-refused; \
         echo after > /hostfile-rw",
    );
    assert!(out.starts_with("in-rw\nin-ro\nfile-content\n"), "{out}");
    assert!(out.contains("ro-dir-refused"), "{out}");
    assert!(out.contains("ro-file-refused"), "{out}");
    assert_eq!(read_file(&rw_dir.join("new")), "created\n");
    assert!(!ro_dir.join("new").exists());
    assert_eq!(read_file(&ro_file), "file-content\n");
    assert_eq!(read_file(&rw_file), "after\n");
    // Mount points were created inside the rootfs, not elsewhere.
    assert!(b.rootfs().join("mnt/rw").is_dir());
    assert!(b.rootfs().join("etc/hostfile").is_file());
    ctx.assert_clean();
}

#[test]
fn container_cannot_touch_host_files_outside_rootfs() {
    let ctx = Ctx::new("confine");
    let mut b = ctx.bundle();
    let sentinels = [ctx.dir.join("sentinel"), b.path.join("sentinel")];
    for s in &sentinels {
        write_file(s, "host\n");
    }
    let mtimes: Vec<_> = sentinels
        .iter()
        .map(|s| fs::metadata(s).unwrap().modified().unwrap())
        .collect();
    // A symlink in the rootfs pointing at an absolute host path: a mount
    // destination through it must resolve inside the rootfs.
    let outside = ctx.dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    symlink(&outside, b.rootfs().join("link")).unwrap();
    b.add_mount(json!({"destination": "/link/mnt", "type": "tmpfs", "source": "tmpfs"}));
    let out = run_sh(
        &ctx,
        &mut b,
        "confine",
        "echo pwned > /../sentinel; echo pwned > /../../sentinel; \
         cd / && cd .. && cd .. && echo pwned > sentinel; ls /..; \
         echo in-tmpfs > /link/mnt/f && cat /link/mnt/f",
    );
    for (s, t) in sentinels.iter().zip(&mtimes) {
        assert_eq!(read_file(s), "host\n", "{} was modified", s.display());
        assert_eq!(fs::metadata(s).unwrap().modified().unwrap(), *t);
    }
    // /.. is / inside the container: the writes landed in the rootfs.
    assert_eq!(read_file(&b.rootfs().join("sentinel")), "pwned\n");
    assert!(
        out.contains("bin\n") && !out.contains("config.json"),
        "{out}"
    );
    assert!(out.contains("in-tmpfs"), "{out}");
    assert!(
        !outside.join("mnt").exists(),
        "mount destination followed a symlink out of the rootfs"
    );
    ctx.assert_clean();
}

#[test]
fn no_pivot_still_confines_to_rootfs() {
    let ctx = Ctx::new("nopivot");
    let mut b = ctx.bundle();
    write_file(&b.rootfs().join("marker"), "np\n");
    b.sh("cat /marker; ls /..");
    let id = ctx.id("c");
    let out = ctx.run_with(&id, &b, &["--no-pivot"], None);
    out.assert_ok("run --no-pivot");
    assert!(out.stdout.starts_with("np\n"), "{}", out.stdout);
    assert!(out.stdout.contains("marker") && !out.stdout.contains("config.json"));
    ctx.assert_clean();
}

#[test]
fn masked_and_readonly_paths() {
    let ctx = Ctx::new("masked");
    let mut b = ctx.bundle();
    // The default spec masks /proc/kcore, /proc/timer_list, /sys/firmware...
    // and makes /proc/sys read-only.
    let out = run_sh(
        &ctx,
        &mut b,
        "masked",
        "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; \
         echo other 2>/dev/null > /proc/sys/kernel/hostname || echo procsys-ro; hostname",
    );
    let l = lines(&out);
    assert_eq!(l[0], "0", "/proc/timer_list not masked: {out}");
    assert_eq!(l[1], "0", "/sys/firmware not masked: {out}");
    assert_eq!(l[2], "procsys-ro", "{out}");
    assert_eq!(l[3], "rootcell-test", "{out}");
    ctx.assert_clean();
}

#[test]
fn every_masked_directory_is_empty_and_read_only() {
    // Directories of the image with files in them, and the kernel's: each
    // is covered by an empty read-only tmpfs (rootcell binds one tmpfs to
    // all of them), a mount of its own the container cannot write.
    let ctx = Ctx::new("masked-dirs");
    let mut b = ctx.bundle();
    for dir in ["m1", "m2", "m3"] {
        std::fs::create_dir_all(b.rootfs().join(dir)).unwrap();
        write_file(&b.rootfs().join(dir).join("secret"), "image data\n");
    }
    b.linux()["maskedPaths"] = json!(["/m1", "/m2", "/sys/firmware", "/m3", "/proc/timer_list"]);
    let out = run_sh(
        &ctx,
        &mut b,
        "masked",
        "for d in /m1 /m2 /sys/firmware /m3; do \
           echo $d files=$(ls -A $d | wc -l) \
             write=$(touch $d/new 2>&1 >/dev/null | grep -c 'Read-only') \
             mount=$(awk -v d=$d '$5 == d {print $6}' /proc/self/mountinfo); \
         done; echo timer_list=$(wc -c < /proc/timer_list 2>/dev/null)",
    );
    for d in ["/m1", "/m2", "/sys/firmware", "/m3"] {
        let line = format!("{d} files=0 write=1 mount=ro,");
        assert!(
            out.lines().any(|l| l.starts_with(&line)),
            "{d} is not an empty read-only mount:\n{out}"
        );
    }
    // A file among them gets /dev/null, not the directories' tmpfs
    // (where the kernel has the file at all).
    if std::path::Path::new("/proc/timer_list").exists() {
        assert!(out.contains("timer_list=0\n"), "{out}");
    } else {
        skip("this kernel has no /proc/timer_list: its mask is not checked");
    }
    // The image's files are still there, under the masks.
    for dir in ["m1", "m2", "m3"] {
        assert_eq!(
            read_file(&b.rootfs().join(dir).join("secret")),
            "image data\n"
        );
    }
    ctx.assert_clean();
}

#[test]
fn hostname_and_domainname_are_set() {
    let ctx = Ctx::new("hostname");
    let host_before = read_file(std::path::Path::new("/proc/sys/kernel/hostname"));
    let dom_before = read_file(std::path::Path::new("/proc/sys/kernel/domainname"));
    let mut b = ctx.bundle();
    b.config["hostname"] = json!("box-1");
    b.config["domainname"] = json!("example.org");
    let out = run_sh(
        &ctx,
        &mut b,
        "h",
        "hostname; cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname",
    );
    let l = lines(&out);
    assert_eq!(l[0], "box-1", "{out}");
    assert_eq!(l[1], "box-1", "{out}");
    if runtime_is_runc() {
        // runc 1.1 ignores `domainname` (added in runc 1.2).
        skip("domainname");
    } else {
        assert_eq!(l[2], "example.org", "{out}");
    }
    assert_eq!(
        read_file(std::path::Path::new("/proc/sys/kernel/hostname")),
        host_before
    );
    assert_eq!(
        read_file(std::path::Path::new("/proc/sys/kernel/domainname")),
        dom_before
    );
    ctx.assert_clean();
}

#[test]
fn many_bind_mounts_fit_in_a_small_fd_limit() {
    // The runtime must not hold an fd per mount: with RLIMIT_NOFILE at 256,
    // 300 bind mounts still work.
    let ctx = Ctx::new("manymounts");
    let mut b = ctx.bundle();
    let src = ctx.dir.join("many");
    for i in 0..300 {
        let d = src.join(format!("d{i}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("f"), format!("{i}\n")).unwrap();
        b.add_mount(json!({
            "destination": format!("/mnt/m{i}"),
            "type": "bind",
            "source": d,
            "options": ["rbind", "ro"]
        }));
    }
    b.sh("cat /mnt/m0/f /mnt/m299/f; grep -c ' /mnt/m' /proc/self/mountinfo");
    // The container keeps the same limit (raising it needs a privilege
    // the test machine's root does not have).
    b.process()["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 256}]);
    let id = ctx.id("c");
    let mut c = ctx.run_cmd(&id, &b, &[]);
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_ok("run with 300 bind mounts and nofile=256");
    assert_eq!(out.stdout, "0\n299\n300\n");
    ctx.assert_clean();
}

/// Overlay layers given relative to the bundle, in a bundle whose path holds
/// the characters overlayfs treats specially (`:` and `,`): the runtime
/// makes them absolute and escapes them.
#[test]
fn overlay_with_layers_relative_to_an_awkward_bundle_path() {
    if runtime_is_runc() {
        // runc 1.1 passes relative layers to mount(2) as they are.
        return skip("relative overlay layers are a rootcell extension");
    }
    let ctx = Ctx::new("overlay-rel");
    let mut b = ctx.bundle();
    let odd = ctx.dir.join("odd:bundle,dir");
    fs::rename(&b.path, &odd).unwrap();
    b.path = odd.clone();
    write_file(&odd.join("lower1/from-lower1"), "one\n");
    write_file(&odd.join("lower2/from-lower2"), "two\n");
    write_file(&odd.join("lower2/from-lower1"), "hidden by lower1\n");
    fs::create_dir_all(odd.join("upper")).unwrap();
    fs::create_dir_all(odd.join("work")).unwrap();
    b.add_mount(json!({
        "destination": "/merged", "type": "overlay", "source": "overlay",
        "options": ["lowerdir=lower1:lower2", "upperdir=upper", "workdir=work"],
    }));
    let out = run_sh(
        &ctx,
        &mut b,
        "overlay",
        "cat /merged/from-lower1 /merged/from-lower2; echo new > /merged/written; \
         grep ' /merged ' /proc/self/mountinfo",
    );
    assert!(out.starts_with("one\ntwo\n"), "{out}");
    assert!(out.contains(" - overlay "), "{out}");
    // The write went to the upper layer, the lower ones are untouched.
    assert_eq!(read_file(&odd.join("upper/written")), "new\n");
    assert!(!odd.join("lower1/written").exists());
    ctx.assert_clean();
}

/// Runs container `id` of `b` in a private mount namespace of its own in
/// which the bundle's rootfs is a shared mount (as on hosts where / is
/// shared, the systemd default), then prints "mounts-below:" and the mounts
/// that namespace sees below the rootfs. The test's own namespace is never
/// changed.
fn run_on_shared_rootfs(ctx: &Ctx, b: &Bundle, id: &str) -> Out {
    let cmd = ctx.run_cmd(id, b, &[]);
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    let runtime: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        "set -e; mount --bind '{r}' '{r}'; mount --make-shared '{r}'; {rt}; \
         echo mounts-below:; awk -v r='{r}' 'index($5, r\"/\") == 1' /proc/self/mountinfo",
        r = b.rootfs().display(),
        rt = runtime.join(" ")
    );
    sh_in_private_mount_ns(&script)
}

/// The propagation of the container's root follows
/// `linux.rootfsPropagation` (default rslave), as mountinfo shows inside,
/// and whatever it is, no mount of the container shows up outside.
#[test]
fn root_propagation_follows_the_config() {
    let ctx = Ctx::new("rootprop");
    let mut b = ctx.bundle();
    b.sh("awk '$5 == \"/\"' /proc/self/mountinfo");
    for (propagation, expect) in [
        (None, Some("master:")),
        (Some("rslave"), Some("master:")),
        // The rootfs's shared parent becomes a slave, not private, so the
        // root stays a slave of it.
        (Some("slave"), Some("master:")),
        (Some("rprivate"), None),
        (Some("private"), None),
        // runc 1.1 leaves the root private here; rootcell applies it.
        (Some("rshared"), Some("shared:")),
        (Some("shared"), Some("shared:")),
        // The root is made unbindable once it is bound and everything
        // bound from it (masks, read-only paths) is in place.
        (Some("runbindable"), Some("unbindable")),
        (Some("unbindable"), Some("unbindable")),
    ] {
        if runtime_is_runc()
            && propagation
                .is_some_and(|p| p.contains("shared") || p.contains("unbindable") || p == "slave")
        {
            // runc 1.1.5: shared roots stay private, "slave" leaves a
            // private root, and unbindable fails to bind the rootfs.
            continue;
        }
        match propagation {
            Some(p) => b.linux()["rootfsPropagation"] = json!(p),
            None => {
                b.linux()
                    .as_object_mut()
                    .unwrap()
                    .remove("rootfsPropagation");
            }
        }
        let id = ctx.id("p");
        let out = run_on_shared_rootfs(&ctx, &b, &id);
        out.assert_ok(&format!("rootfsPropagation {propagation:?}"));
        let (root, below) = out.stdout.split_once("mounts-below:").unwrap();
        let root = root.trim();
        assert!(!root.is_empty(), "no root mount in mountinfo");
        let optional: Vec<&str> = root
            .split(" - ")
            .next()
            .unwrap()
            .split(' ')
            .skip(6)
            .collect();
        match expect {
            Some(tag) => assert!(
                optional.len() == 1 && optional[0].starts_with(tag),
                "{propagation:?}: {root}"
            ),
            None => assert!(optional.is_empty(), "{propagation:?}: {root}"),
        }
        assert!(
            below.trim().is_empty(),
            "{propagation:?}: mounts leaked: {below}"
        );
    }
    ctx.assert_clean();
}

/// Every `rootfsPropagation` value with a rootfs that is a plain directory
/// (not a mount of its own, so the self-bind clones from the mount holding
/// it): the container runs, with the default masked and read-only paths
/// (bound from the root), and `/` shows the propagation asked for. An
/// unbindable root used to fail the self-bind ("bind: Invalid argument").
#[test]
fn every_root_propagation_runs_on_a_plain_directory() {
    let ctx = Ctx::new("rootprop-dir");
    let mut b = ctx.bundle();
    b.linux()["maskedPaths"] = json!(["/proc/kcore", "/sys/firmware"]);
    b.linux()["readonlyPaths"] = json!(["/proc/sys", "/etc"]);
    b.sh(
        "awk '$5 == \"/\" || $5 == \"/proc\" || $5 == \"/etc\"' /proc/self/mountinfo; \
         touch /etc/x 2>/dev/null && echo etc-writable; echo done",
    );
    for p in [
        "rslave",
        "slave",
        "rprivate",
        "private",
        "rshared",
        "shared",
        "runbindable",
        "unbindable",
    ] {
        if runtime_is_runc() && (p.contains("unbindable") || p.contains("shared")) {
            // runc 1.1.5 fails to bind an unbindable root and leaves a
            // shared one private.
            continue;
        }
        b.linux()["rootfsPropagation"] = json!(p);
        let id = ctx.id(p);
        let out = ctx.run(&id, &b);
        out.assert_ok(&format!("rootfsPropagation {p}"));
        assert!(out.stdout.ends_with("done\n"), "{p}: {}", out.all());
        assert!(!out.stdout.contains("etc-writable"), "{p}: {}", out.stdout);
        let fields = |point: &str| -> Vec<String> {
            let line = out
                .stdout
                .lines()
                .rfind(|l| l.split(' ').nth(4) == Some(point))
                .unwrap_or_else(|| panic!("{p}: no {point} in {}", out.stdout));
            line.split(" - ")
                .next()
                .unwrap()
                .split(' ')
                .skip(6)
                .map(|f| f.split(':').next().unwrap().to_owned())
                .collect()
        };
        let (root, proc_) = (fields("/"), fields("/proc"));
        let want: &[&str] = match p {
            "rshared" | "shared" => &["shared"],
            "runbindable" | "unbindable" => &["unbindable"],
            // The test's mount namespace is private: nothing to be a
            // slave of.
            _ => &[],
        };
        assert_eq!(root, want, "{p}: propagation of /:\n{}", out.stdout);
        // Recursive values reach the mounts below the root too.
        if p == "runbindable" {
            assert_eq!(proc_, ["unbindable"], "{p}: /proc:\n{}", out.stdout);
        }
        if p == "unbindable" {
            assert!(proc_.is_empty(), "{p}: /proc:\n{}", out.stdout);
        }
    }
    ctx.assert_clean();
}

/// A rootfs on a shared mount with `rootfsPropagation: rshared`: the
/// runtime makes that mount private before binding the rootfs onto itself,
/// so none of the container's mounts appear in the namespace it was started
/// from (and pivot_root, which refuses a shared parent, works).
#[test]
fn shared_parent_of_the_rootfs_is_made_private() {
    let ctx = Ctx::new("sharedparent");
    let mut b = ctx.bundle();
    b.linux()["rootfsPropagation"] = json!("rshared");
    b.sh("grep -q ' /proc proc ' /proc/mounts && echo proc-mounted");
    let id = ctx.id("s");
    let out = run_on_shared_rootfs(&ctx, &b, &id);
    out.assert_ok("run with a shared rootfs mount and rshared");
    let (inside, below) = out.stdout.split_once("mounts-below:").unwrap();
    assert!(inside.contains("proc-mounted"), "{}", out.all());
    assert!(below.trim().is_empty(), "container mounts leaked: {below}");
    ctx.assert_clean();
}
