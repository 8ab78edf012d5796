//! Containers from configs that rootcell did not write, kept as fixtures in
//! `tests/fixtures/` (see `tests/fixtures/README.md`):
//!
//! - `docker-18.09/config.json`: a Docker-era default config with its
//!   seccomp profile (`seccomp/docker-era.json`, written by hand from the
//!   published profile's semantics): no `openat2`, `faccessat2`,
//!   `close_range`, `clone3`, `statx` or new mount API, and inheritable
//!   capabilities, as Docker set them;
//! - `engines/podman-4.3/*.json` and `engines/containerd-1.6/*.json`: what
//!   podman and containerd actually sent (recaptured by
//!   `e2e_podman::capture_podman_configs`, `e2e_containerd::capture_containerd_configs`);
//! - `engines/buildah-1.28/*.json`: what `buildah bud` sent for a `RUN`
//!   step (recaptured by `chroot_buildah::capture_buildah_configs`);
//! - `runc-1.1/spec.json`: `runc spec` of runc 1.1.5;
//! - `spec-1.2/all-fields.json`: every optional field of the runtime spec
//!   1.2 this host can honour.
//!
//! Placeholders in the fixtures are filled per test: `@BUNDLE@` (the
//! bundle dir), `@ENGINE@` (the engine's dir, inside the bundle), `@ID@`
//! (the container id), `@CGROUP_PARENT@`, `@HOSTNAME@`, `@SCRIPT@` (the
//! shell script a test runs). Every container runs the real runtime binary
//! with a busybox rootfs in place of the image, and must produce the
//! expected output or fail with the expected error, naming the field.

mod common;

use common::console::ConsoleSocket;
use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");

/// A fixture, parsed.
fn fixture(name: &str) -> Value {
    let path = Path::new(FIXTURES).join(name);
    parse_json(&read_file(&path), name)
}

/// Fill the placeholders of every string in `v`.
fn fill(v: &mut Value, reps: &[(&str, String)]) {
    match v {
        Value::String(s) => {
            for (from, to) in reps {
                *s = s.replace(from, to);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| fill(x, reps)),
        Value::Object(o) => o.values_mut().for_each(|x| fill(x, reps)),
        _ => {}
    }
}

/// The bind-mount sources an engine prepares (hosts, hostname...): files
/// for the files it binds, directories for the rest.
fn make_bind_sources(config: &Value, bundle: &Path) {
    let files = [
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
        "/run/.containerenv",
    ];
    for m in config["mounts"].as_array().into_iter().flatten() {
        let (Some(src), Some(dest)) = (m["source"].as_str(), m["destination"].as_str()) else {
            continue;
        };
        let src = Path::new(src);
        if m["type"] != "bind" || !src.starts_with(bundle) || src.exists() {
            continue;
        }
        if files.contains(&dest) {
            let content = match dest {
                "/etc/hosts" => "127.0.0.1 localhost\n".to_owned(),
                "/etc/hostname" => "foreign\n".to_owned(),
                "/etc/resolv.conf" => "nameserver 127.0.0.1\n".to_owned(),
                _ => String::new(),
            };
            write_file(src, &content);
        } else {
            fs::create_dir_all(src).unwrap();
        }
    }
}

/// A bundle holding `config` with its placeholders filled, a busybox
/// rootfs at its `root.path`, the bind sources it names, and `script` as
/// the process (`sh -c script`, unless `script` is `None`).
fn foreign_bundle(
    ctx: &Ctx,
    tag: &str,
    mut config: Value,
    script: Option<&str>,
) -> (String, Bundle) {
    let id = ctx.id(tag);
    let path = ctx.dir.join(format!("foreign-{tag}"));
    fs::create_dir_all(&path).unwrap();
    let reps = [
        (
            "@ENGINE@",
            path.join("engine").to_string_lossy().into_owned(),
        ),
        ("@BUNDLE@", path.to_string_lossy().into_owned()),
        ("@CGROUP_PARENT@", format!("{id}-parent")),
        ("@HOSTNAME@", "foreign".to_owned()),
        ("@ID@", id.clone()),
    ];
    fill(&mut config, &reps);
    if let Some(script) = script {
        config["process"]["args"] = json!(["sh", "-c", script]);
    }
    if config["linux"]["seccomp"] == "@SECCOMP docker-era.json@" {
        config["linux"]["seccomp"] = fixture("seccomp/docker-era.json");
    }
    let root = config["root"]["path"].as_str().unwrap_or("rootfs");
    let rootfs = if Path::new(root).is_absolute() {
        PathBuf::from(root)
    } else {
        path.join(root)
    };
    make_rootfs(&rootfs);
    make_bind_sources(&config, &path);
    let b = Bundle { path, config };
    b.save();
    (id, b)
}

/// The rootfs of a foreign bundle (its `root.path`, filled in).
fn rootfs_of(b: &Bundle) -> PathBuf {
    let root = b.config["root"]["path"].as_str().unwrap_or("rootfs");
    b.path.join(root)
}

/// Removes the cgroups named after `id` (an engine config's parent
/// outlives its container, as with runc), then checks nothing is left.
fn finish(ctx: &Ctx, id: &str) {
    let left = remove_cgroups_named(id);
    assert!(left.is_empty(), "cgroups not removable: {left:?}");
    ctx.assert_clean();
}

/// Capability numbers of the names this test needs.
fn cap_mask(names: &Value) -> u64 {
    const CAPS: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    names
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .map(|n| {
            let bit = CAPS
                .iter()
                .position(|c| *c == n)
                .unwrap_or_else(|| panic!("unknown capability {n}"));
            1u64 << bit
        })
        .fold(0, |a, b| a | b)
}

/// The value of `Field:` in a /proc/PID/status dump.
fn status(out: &str, field: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {out}"))
        .trim()
        .to_owned()
}

/// The host's uptime in whole seconds.
fn host_uptime() -> u64 {
    read_file(Path::new("/proc/uptime"))
        .split('.')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("/proc/uptime")
}

/// `uptime` (read in the container after `before` was read on the host)
/// is `offset` seconds ahead of the host's.
#[track_caller]
fn assert_boottime_offset(uptime: u64, before: u64, offset: u64) {
    let after = host_uptime();
    assert!(
        uptime >= before + offset && uptime <= after + offset + 1,
        "uptime {uptime} in the container, host {before}..{after}: not {offset} s ahead"
    );
}

fn hex(mask: u64) -> String {
    format!("{mask:016x}")
}

// ---------------------------------------------------------------------------
// Docker 18.09
// ---------------------------------------------------------------------------

/// The Docker-era default config with its seccomp profile runs, with the
/// capabilities it names (inheritable included, as Docker set them) and
/// the profile loaded; `exec` into it works under the same profile.
#[test]
fn docker_era_config_with_its_seccomp_profile_runs() {
    let ctx = Ctx::new("fc-docker");
    let config = fixture("docker-18.09/config.json");
    let caps = config["process"]["capabilities"].clone();
    let (id, b) = foreign_bundle(
        &ctx,
        "run",
        config.clone(),
        Some("echo hello; grep -E '^(Cap(Inh|Prm|Eff|Bnd)|Seccomp):' /proc/self/status; cat /etc/hostname; mkdir /tmp/d && echo mkdir-ok"),
    );
    let out = ctx.run(&id, &b);
    out.assert_ok("run the Docker-era config");
    let text = &out.stdout;
    assert!(text.starts_with("hello\n"), "{}", out.all());
    assert_eq!(status(text, "CapEff"), hex(cap_mask(&caps["effective"])));
    assert_eq!(status(text, "CapBnd"), hex(cap_mask(&caps["bounding"])));
    assert_eq!(status(text, "CapInh"), hex(cap_mask(&caps["inheritable"])));
    assert_eq!(status(text, "Seccomp"), "2", "{text}");
    assert!(text.contains("foreign\nmkdir-ok"), "{}", out.all());
    finish(&ctx, &id);

    // create + start + exec, the way dockerd drove runc.
    let (id, b) = foreign_bundle(
        &ctx,
        "svc",
        config,
        Some("echo ready > /tmp/ready; exec sleep 1000"),
    );
    ctx.create(&id, &b, &[])
        .assert_ok("create the Docker-era config");
    ctx.rt(&["start", &id]).assert_ok("start");
    wait_for_file(&b.rootfs().join("tmp/ready"));
    let out = ctx.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo exec-ok; grep Seccomp: /proc/self/status",
    ]);
    out.assert_ok("exec under the Docker-era profile");
    assert_eq!(
        lines(&out.stdout),
        ["exec-ok", "Seccomp:\t2"],
        "{}",
        out.all()
    );
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    finish(&ctx, &id);
}

// ---------------------------------------------------------------------------
// podman 4.3
// ---------------------------------------------------------------------------

/// Runs podman fixture `name` with `script`; returns its output.
fn podman_run(ctx: &Ctx, name: &str, script: &str) -> (String, Bundle, Out) {
    let config = fixture(&format!("engines/podman-4.3/{name}.json"));
    let (id, b) = foreign_bundle(ctx, name, config, Some(script));
    let out = ctx.run(&id, &b);
    (id, b, out)
}

const CAPS_SCRIPT: &str = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status; id -u; id -g";

#[test]
fn podman_run_configs_run() {
    let ctx = Ctx::new("fc-podman");
    // Default: podman's capabilities, its seccomp profile, its binds.
    let (id, b, out) = podman_run(
        &ctx,
        "run-default",
        &format!("{CAPS_SCRIPT}; grep Seccomp: /proc/self/status; cat /etc/hosts; test -f /run/.containerenv && echo containerenv"),
    );
    out.assert_ok("podman run-default");
    let caps = &b.config["process"]["capabilities"];
    assert_eq!(
        status(&out.stdout, "CapEff"),
        hex(cap_mask(&caps["effective"]))
    );
    assert_eq!(status(&out.stdout, "CapInh"), hex(0));
    assert_eq!(status(&out.stdout, "Seccomp"), "2");
    assert!(
        out.stdout.contains("127.0.0.1 localhost\ncontainerenv"),
        "{}",
        out.all()
    );
    finish(&ctx, &id);

    // --read-only: the root is read-only, /tmp, /run, /var/tmp are tmpfs.
    let (id, _b, out) = podman_run(
        &ctx,
        "run-read-only",
        "touch /x 2>/dev/null || echo root-ro; touch /tmp/x /run/x /var/tmp/x && echo tmpfs-rw",
    );
    out.assert_ok("podman run-read-only");
    assert_eq!(lines(&out.stdout), ["root-ro", "tmpfs-rw"], "{}", out.all());
    finish(&ctx, &id);

    // -v DIR:/data: written inside, seen on the host.
    let (id, b, out) = podman_run(
        &ctx,
        "run-volume",
        "echo from-container > /data/f && echo ok",
    );
    out.assert_ok("podman run-volume");
    assert_eq!(read_file(&b.path.join("engine/vol/f")), "from-container\n");
    finish(&ctx, &id);

    // --cap-add NET_ADMIN.
    let (id, _b, out) = podman_run(&ctx, "run-cap-add", CAPS_SCRIPT);
    out.assert_ok("podman run-cap-add");
    let eff = u64::from_str_radix(&status(&out.stdout, "CapEff"), 16).unwrap();
    assert_ne!(eff & (1 << 12), 0, "no CAP_NET_ADMIN: {}", out.stdout);
    finish(&ctx, &id);

    // --user 1000:1000: no capabilities left.
    let (id, _b, out) = podman_run(&ctx, "run-user", CAPS_SCRIPT);
    out.assert_ok("podman run-user");
    assert_eq!(status(&out.stdout, "CapEff"), hex(0));
    let l = lines(&out.stdout);
    assert_eq!(&l[l.len() - 2..], ["1000", "1000"], "{}", out.all());
    finish(&ctx, &id);
}

/// A sleeper from podman's run-default config, for the exec fixtures.
fn podman_sleeper(ctx: &Ctx) -> (String, Bundle) {
    let config = fixture("engines/podman-4.3/run-default.json");
    let (id, b) = foreign_bundle(
        ctx,
        "svc",
        config,
        Some("echo ready > /tmp/ready; exec sleep 1000"),
    );
    ctx.create(&id, &b, &[]).assert_ok("create");
    ctx.rt(&["start", &id]).assert_ok("start");
    wait_for_file(&rootfs_of(&b).join("tmp/ready"));
    (id, b)
}

/// Writes process fixture `name` with `args` to the bundle; returns its path.
fn process_file(b: &Bundle, name: &str, args: &[&str]) -> PathBuf {
    let mut p = fixture(name);
    p["args"] = json!(args);
    let path = b.path.join("process.json");
    write_file(&path, &serde_json::to_string_pretty(&p).unwrap());
    path
}

#[test]
fn podman_exec_process_files_run() {
    let ctx = Ctx::new("fc-podexec");
    let (id, b) = podman_sleeper(&ctx);
    let proc_file = process_file(
        &b,
        "engines/podman-4.3/exec-process.json",
        &["sh", "-c", "echo exec-ok; echo $container"],
    );
    let out = ctx.rt(&["exec", "--process", &proc_file.to_string_lossy(), &id]);
    out.assert_ok("exec --process (podman exec)");
    assert_eq!(lines(&out.stdout), ["exec-ok", "podman"], "{}", out.all());

    // podman exec -it: conmon runs `exec --detach --tty --console-socket S
    // --pid-file P --process F` (terminal: true in the file); no warning
    // about --tty next to --process.
    let proc_file = process_file(
        &b,
        "engines/podman-4.3/exec-it-process.json",
        &["sh", "-c", "tty; echo tty-done; sleep 0.2"],
    );
    let sock = ConsoleSocket::bind(&ctx.dir.join("exec-it"));
    let pid_file = ctx.dir.join("exec-it.pid");
    let proc_arg = proc_file.to_string_lossy().into_owned();
    let pid_arg = pid_file.to_string_lossy().into_owned();
    let out = ctx.rt(&[
        "exec",
        "--detach",
        "--tty",
        "--console-socket",
        sock.arg(),
        "--pid-file",
        &pid_arg,
        "--process",
        &proc_arg,
        &id,
    ]);
    out.assert_ok("exec --detach --tty --process (podman exec -it)");
    let (_, mut term) = sock.master();
    let seen = term.read_until("tty-done");
    assert!(seen.contains("/dev/pts/"), "{seen:?}");
    let pid: i32 = read_file(&pid_file).trim().parse().expect("pid file");
    wait_pid_dead(pid);
    if !runtime_is_runc() {
        assert!(
            !out.stderr.contains("warning"),
            "exec --tty --process warned: {}",
            out.stderr
        );
    }
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    finish(&ctx, &id);
}

// ---------------------------------------------------------------------------
// containerd 1.6
// ---------------------------------------------------------------------------

#[test]
fn containerd_run_and_exec_configs_run() {
    let ctx = Ctx::new("fc-ctr");
    let config = fixture("engines/containerd-1.6/ctr-run.json");
    let caps = config["process"]["capabilities"].clone();
    let (id, b) = foreign_bundle(&ctx, "run", config.clone(), Some(CAPS_SCRIPT));
    let out = ctx.run(&id, &b);
    out.assert_ok("ctr run config");
    assert_eq!(
        status(&out.stdout, "CapEff"),
        hex(cap_mask(&caps["effective"]))
    );
    finish(&ctx, &id);

    let (id, b) = foreign_bundle(
        &ctx,
        "svc",
        config,
        Some("echo ready > /tmp/ready; exec sleep 1000"),
    );
    ctx.create(&id, &b, &[]).assert_ok("create");
    ctx.rt(&["start", &id]).assert_ok("start");
    wait_for_file(&b.rootfs().join("tmp/ready"));
    let proc_file = process_file(
        &b,
        "engines/containerd-1.6/ctr-exec-process.json",
        &[
            "sh",
            "-c",
            "echo exec-ok; id -G; grep NoNewPrivs: /proc/self/status",
        ],
    );
    let out = ctx.rt(&["exec", "--process", &proc_file.to_string_lossy(), &id]);
    out.assert_ok("exec --process (ctr task exec)");
    assert_eq!(
        lines(&out.stdout),
        ["exec-ok", "0", "NoNewPrivs:\t1"],
        "{}",
        out.all()
    );
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    finish(&ctx, &id);
}

// ---------------------------------------------------------------------------
// buildah 1.28
// ---------------------------------------------------------------------------

/// `RUN` step configs of `buildah bud` (as root, then after `USER
/// 1000:1000` and `WORKDIR /app`), run as buildah runs them: the runtime
/// flags first, then `create`, `start`, `delete`; in full isolation and,
/// for rootcell, with `--isolation=chroot` (buildah's `--runtime-flag
/// isolation=chroot`). Each sees its user, groups, working directory,
/// environment, capabilities, buildah's seccomp profile and bound files.
#[test]
fn buildah_bud_configs_run() {
    let ctx = Ctx::new("fc-buildah");
    let mut modes: Vec<Option<&str>> = vec![None];
    if !runtime_is_runc() && !runtime_name().contains("crun") {
        modes.push(Some("--isolation=chroot"));
    }
    for mode in modes {
        let tag = if mode.is_some() { "chroot" } else { "full" };
        let script = "id; pwd; echo \"env=$GREETING\"; hostname; \
                      grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status; \
                      cat /etc/hosts; test -f /run/.containerenv && echo containerenv; \
                      touch /written && echo root-writable";
        for (name, want_id, want_pwd, want_env) in [
            (
                "bud-run-root",
                "uid=0(root) gid=0(root) groups=0(root)",
                "/",
                "env=",
            ),
            (
                "bud-run-user",
                "uid=1000(user) gid=1000(user) groups=1000(user)",
                "/app",
                "env=hello world",
            ),
        ] {
            let config = fixture(&format!("engines/buildah-1.28/{name}.json"));
            let caps = config["process"]["capabilities"].clone();
            let (id, b) = foreign_bundle(&ctx, &format!("{name}-{tag}"), config, Some(script));
            // buildah's WORKDIR step made /app; writable by the user.
            fs::create_dir_all(b.rootfs().join("app")).unwrap();
            chown(&b.rootfs().join("app"), 1000, 1000);
            let buildah_cmd = |args: &[&str]| {
                let mut c = ctx.cmd();
                c.args(mode).args(args);
                c
            };
            let mut create = buildah_cmd(&["create", "--bundle"]);
            create
                .arg(&b.path)
                .arg("--pid-file")
                .arg(b.path.join("pid"))
                .arg(&id);
            let out = ctx.exec_detached(&mut create, &id, None);
            out.assert_ok(&format!("{name} ({tag}): create"));
            exec(&mut buildah_cmd(&["start", &id]), CMD_TIMEOUT)
                .assert_ok(&format!("{name} ({tag}): start"));
            ctx.wait_status(&id, "stopped");
            exec(&mut buildah_cmd(&["delete", &id]), CMD_TIMEOUT)
                .assert_ok(&format!("{name} ({tag}): delete"));
            let out = read_file(&ctx.stdout_path(&id));
            let l = lines(&out);
            let what = format!("{name} ({tag}): {out}{}", read_file(&ctx.stderr_path(&id)));
            assert_eq!(l[..4], [want_id, want_pwd, want_env, "foreign"], "{what}");
            assert_eq!(
                status(&out, "CapEff"),
                hex(cap_mask(&caps["effective"])),
                "{what}"
            );
            assert_eq!(
                status(&out, "CapBnd"),
                hex(cap_mask(&caps["bounding"])),
                "{what}"
            );
            assert_eq!(status(&out, "Seccomp"), "2", "{what}");
            assert!(
                out.contains("127.0.0.1 localhost\ncontainerenv\n"),
                "{what}"
            );
            // As root the step writes to the image's root; as the user not.
            assert_eq!(
                out.contains("root-writable"),
                name == "bud-run-root",
                "{what}"
            );
            finish(&ctx, &id);
        }
    }
}

// ---------------------------------------------------------------------------
// runc spec
// ---------------------------------------------------------------------------

/// `runc spec` as written: a terminal, a read-only root, `sh`.
#[test]
fn runc_spec_config_runs_on_a_terminal() {
    let ctx = Ctx::new("fc-runc");
    let config = fixture("runc-1.1/spec.json");
    let (id, b) = foreign_bundle(&ctx, "c", config, None);
    let sock = ConsoleSocket::bind(&ctx.dir.join("sock"));
    ctx.create(&id, &b, &["--console-socket", sock.arg()])
        .assert_ok("create the runc spec config");
    let (_, mut term) = sock.master();
    ctx.rt(&["start", &id]).assert_ok("start");
    term.write("touch /x 2>/dev/null || echo root-ro; hostname; echo $TERM; exit 4\n");
    let seen = term.read_until("xterm");
    assert!(seen.contains("root-ro"), "{seen:?}");
    assert!(seen.contains("runc"), "{seen:?}");
    ctx.wait_status(&id, "stopped");
    ctx.rt(&["delete", &id]).assert_ok("delete");
    finish(&ctx, &id);
}

// ---------------------------------------------------------------------------
// Every optional field
// ---------------------------------------------------------------------------

/// The all-fields fixture with the resources this host has added (blkio
/// weight, hugetlb, net_cls/net_prio), and a file owned by uid 1000 in the
/// directory bound twice (plain and idmapped).
fn all_fields(ctx: &Ctx, tag: &str, script: &str) -> (String, Bundle) {
    let mut config = fixture("spec-1.2/all-fields.json");
    let res = &mut config["linux"]["resources"];
    if blkio_weight_file().is_some() {
        res["blockIO"] = json!({"weight": 300});
    }
    if cgroup_v1_controller("hugetlb") {
        if let Some(size) = hugepage_sizes().first() {
            res["hugepageLimits"] = json!([{"pageSize": size, "limit": 0}]);
        }
    }
    if cgroup_v1_controller("net_cls") {
        res["network"]["classID"] = json!(0x100001);
    }
    if cgroup_v1_controller("net_prio") {
        res["network"]["priorities"] = json!([{"name": "lo", "priority": 5}]);
    }
    if !swap_accounting() {
        // swappiness is a memsw-era v1 file too, but present without swap
        // accounting; nothing to drop.
    }
    let (id, b) = foreign_bundle(ctx, tag, config, Some(script));
    // Owned by root on disk: 0 through the plain bind, 1000 through the
    // idmapped one (containerID 0 -> hostID 1000).
    write_file(&b.path.join("shared/owned"), "shared\n");
    (id, b)
}

const ALL_FIELDS_SCRIPT: &str = "\
s=/proc/self/status
echo args=ok
echo cwd=$(pwd) env=$FOREIGN
echo ids=$(id -u):$(id -g) groups=$(id -G) umask=$(umask)
echo caps=$(grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' $s | awk '{print $2}' | tr '\\n' ' ')
echo nnp=$(awk '/^NoNewPrivs:/ {print $2}' $s) seccomp=$(awk '/^Seccomp:/ {print $2}' $s)
echo nofile=$(ulimit -Sn):$(ulimit -Hn) core=$(ulimit -c)
echo oom=$(cat /proc/self/oom_score_adj)
echo nice=$(awk '{print $19}' /proc/self/stat) policy=$(awk '/^policy/ {print $3}' /proc/self/sched)
echo ioprio=$(ionice -p $$)
echo cpus=$(awk '/^Cpus_allowed_list:/ {print $2}' $s)
echo arch=$(uname -m)
echo mempolicy=$(awk 'NR==1 {print $2}' /proc/self/numa_maps)
echo uptime=$(awk '{print int($1)}' /proc/uptime)
echo host=$(hostname) domain=$(cat /proc/sys/kernel/domainname)
echo sysctl=$(cat /proc/sys/kernel/shmmax):$(cat /proc/sys/kernel/msgmax)
echo rc-null=$(stat -c '%t:%T %a' /dev/rc-null)
echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c) procsys=$(touch /proc/sys/kernel/x 2>/dev/null && echo rw || echo ro)
echo shared=$(stat -c %u /shared/owned):$(touch /shared/y 2>/dev/null && echo rw || echo ro) idmapped=$(stat -c %u /idmapped/owned)
echo scratch=$(stat -c %a /scratch)
echo swapoff=$(swapoff /nothing 2>&1 | grep -c 'not permitted')
echo pids=$(cat /sys/fs/cgroup/pids/pids.max) mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
echo hooks=$(cat /tmp/hooks.log | tr '\\n' ' ')
";

#[test]
fn every_optional_field_of_runtime_spec_1_2() {
    if runtime_is_runc() && !features_namespaces().iter().any(|n| n == "time") {
        // runc 1.1 has no time namespace (added in runc 1.2).
        return skip("time namespace");
    }
    skip_unless!(time_namespace_available(), "no time namespace");
    skip_unless!(
        usable_cpus().contains(&0) && numa_nodes().contains(&0),
        "CPU 0 or NUMA node 0 is not usable here"
    );
    skip_unless!(
        ["cpu", "cpuset", "memory", "pids", "devices"]
            .iter()
            .all(|c| cgroup_v1_controller(c)),
        "a v1 controller is missing"
    );
    let ctx = Ctx::new("fc-all");
    let host_sysctls = (host_sysctl("kernel.shmmax"), host_sysctl("kernel.msgmax"));
    let (id, b) = all_fields(&ctx, "c", ALL_FIELDS_SCRIPT);
    let before = host_uptime();
    let out = ctx.run(&id, &b);
    out.assert_ok("run the all-fields config");
    let got = lines(&out.stdout);
    // timeOffsets.boottime: ten days ahead of the host.
    let uptime: u64 = got
        .iter()
        .find_map(|l| l.strip_prefix("uptime="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no uptime in {}", out.all()));
    assert_boottime_offset(uptime, before, 864000);
    let caps = &b.config["process"]["capabilities"];
    let want = [
        "args=ok".to_owned(),
        "cwd=/home/user env=all-fields".to_owned(),
        "ids=0:0 groups=0 10 100 umask=0022".to_owned(),
        format!(
            "caps={} {} {} {} {}",
            hex(cap_mask(&caps["inheritable"])),
            hex(cap_mask(&caps["permitted"])),
            hex(cap_mask(&caps["effective"])),
            hex(cap_mask(&caps["bounding"])),
            hex(cap_mask(&caps["ambient"])),
        ),
        "nnp=1 seccomp=2".to_owned(),
        "nofile=1536:2048 core=0".to_owned(),
        "oom=123".to_owned(),
        "nice=7 policy=3".to_owned(),
        "ioprio=best-effort: prio 6".to_owned(),
        "cpus=0".to_owned(),
        "arch=i686".to_owned(),
        "mempolicy=prefer:0".to_owned(),
        "host=all-fields domain=example.test".to_owned(),
        "sysctl=123456789:4097".to_owned(),
        "rc-null=1:3 666".to_owned(),
        "kcore=0 procsys=ro".to_owned(),
        format!("shared=0:ro idmapped={UNPRIV_UID}"),
        "scratch=700".to_owned(),
        "swapoff=1".to_owned(),
        "pids=64 mem=268435456".to_owned(),
        "hooks=createContainer startContainer".to_owned(),
    ];
    let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w)).collect();
    assert!(
        missing.is_empty(),
        "missing {missing:#?} in:\n{}",
        out.all()
    );
    // The runtime-namespace hooks, in order, poststop after the process.
    let hooks = read_file(&b.path.join("hooks.log"));
    assert_eq!(
        lines(&hooks),
        ["prestart", "createRuntime", "poststart", "poststop"],
        "{hooks}"
    );
    assert_eq!(
        (host_sysctl("kernel.shmmax"), host_sysctl("kernel.msgmax")),
        host_sysctls,
        "host sysctls changed"
    );
    finish(&ctx, &id);
}

/// `linux.intelRdt` on a host without resctrl: a clear refusal naming the
/// field, nothing left behind.
#[test]
fn intel_rdt_without_resctrl_is_refused_by_name() {
    skip_unless!(
        !Path::new("/sys/fs/resctrl/schemata").exists(),
        "resctrl is mounted here"
    );
    let ctx = Ctx::new("fc-rdt");
    let mut config = fixture("runc-1.1/spec.json");
    config["process"]["terminal"] = json!(false);
    config["linux"]["intelRdt"] = json!({"closID": "rootcell-test", "l3CacheSchema": "L3:0=f"});
    let (id, b) = foreign_bundle(&ctx, "c", config, Some("true"));
    let out = ctx.run(&id, &b);
    out.assert_fail("intelRdt without resctrl");
    if !runtime_is_runc() {
        assert!(out.stderr.contains("linux.intelRdt"), "{}", out.all());
    }
    ctx.forget(&id);
    finish(&ctx, &id);
}

/// A user namespace with a time namespace and offsets (the runtime spec's
/// example of both), from `runc spec` with the namespaces added.
#[test]
fn time_offsets_in_a_user_namespace() {
    if runtime_is_runc() && !features_namespaces().iter().any(|n| n == "time") {
        // runc 1.1 has no time namespace (added in runc 1.2).
        return skip("time namespace");
    }
    skip_unless!(time_namespace_available(), "no time namespace");
    let ctx = Ctx::new("fc-usertime");
    let mut config = fixture("runc-1.1/spec.json");
    config["process"]["terminal"] = json!(false);
    config["root"]["readonly"] = json!(false);
    let ns = config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "user"}));
    ns.push(json!({"type": "time"}));
    config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    // sysfs cannot be mounted from a user namespace without a network
    // namespace of its own: runc spec has one.
    let (id, b) = foreign_bundle(
        &ctx,
        "c",
        config,
        Some("awk '{print int($1)}' /proc/uptime; cat /proc/self/uid_map"),
    );
    // The rootfs belongs to the container's root.
    let _ = exec(
        Command::new("chown")
            .arg("-R")
            .arg("100000:100000")
            .arg(b.rootfs()),
        CMD_TIMEOUT,
    );
    let before = host_uptime();
    let out = ctx.run(&id, &b);
    out.assert_ok("a time namespace in a user namespace");
    let l = lines(&out.stdout);
    let uptime: u64 = l[0].parse().unwrap_or_else(|_| panic!("{}", out.all()));
    assert_boottime_offset(uptime, before, 864000);
    finish(&ctx, &id);
}
