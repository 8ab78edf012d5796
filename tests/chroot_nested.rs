//! Chroot isolation inside an unprivileged container made by rootcell
//! itself (issue 11): the OUTER container is the runtime under test's, as
//! root on the host, with the config podman or `runc spec` gives an
//! unprivileged container: a user namespace (container 0 → host 100000,
//! 65536 ids), pid, ipc, uts, mount, network and cgroup namespaces, the
//! default masked and read-only paths (so its `/proc` has masked
//! submounts and the kernel refuses a fresh proc mount inside: the "too
//! revealing" check) and Docker's default capabilities (no CAP_SYS_ADMIN,
//! not even in its user namespace). Its rootfs holds the runtime binary
//! (with its libraries when it is not static), busybox and an INNER bundle
//! at `/inner` (busybox rootfs and the runtime's own `spec`), owned by the
//! outer container's root. Inside, the same runtime runs the inner bundle:
//! full isolation fails suggesting `--isolation chroot`; chroot isolation
//! (and `auto`) runs it.
//!
//! rootcell only: runc has no isolation modes.

mod common;

use common::chroot::*;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The outer container's id mapping: container 0 → host `OUTER_BASE`.
const OUTER_BASE: u32 = 100_000;
const OUTER_SIZE: u32 = 65_536;

/// Docker's (and podman's) default capabilities: no CAP_SYS_ADMIN.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// An outer container holding the runtime and an inner bundle.
struct Nested {
    ctx: Ctx,
    outer: Bundle,
    inner: Bundle,
}

impl Nested {
    /// A unique inner container id (registered for the host-side cleanup,
    /// and searched for in the host's cgroups afterwards).
    fn inner_id(&self, suffix: &str) -> String {
        self.ctx.id(suffix)
    }

    /// Saves both configs, gives the outer rootfs to the outer container's
    /// root, runs the outer container with `script` (sh -c) and returns
    /// its output. The host's mount table must be unchanged afterwards, the
    /// outer container gone and no cgroup named after an inner id left.
    fn run(&mut self, script: &str, inner_ids: &[&str]) -> Out {
        self.inner.save();
        self.outer.sh(script);
        self.outer.save();
        let chown = exec(
            Command::new("chown")
                .arg("-R")
                .arg("-h")
                .arg(format!("{OUTER_BASE}:{OUTER_BASE}"))
                .arg(self.outer.rootfs()),
            CMD_TIMEOUT,
        );
        chown.assert_ok("chown the outer rootfs to its mapped root");
        let before = mount_table();
        let id = self.ctx.id("outer");
        let out = self.ctx.run(&id, &self.outer);
        assert_eq!(mount_table(), before, "the host's mount table changed");
        self.ctx.assert_clean();
        for inner in inner_ids {
            assert_eq!(
                cgroups_named(inner),
                Vec::<PathBuf>::new(),
                "cgroups of the inner container {inner} left on the host"
            );
        }
        out
    }
}

/// The text between the line `==name` and the next `==` line.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let start_mark = format!("=={name}\n");
    let Some(start) = out.find(&start_mark) else {
        panic!("no section {name} in: {out}");
    };
    let rest = &out[start + start_mark.len()..];
    if rest.starts_with("==") {
        return "";
    }
    match rest.find("\n==") {
        Some(end) => &rest[..=end],
        None => rest,
    }
}

/// The runtime under test, installed in `rootfs` as `/bin/rootcell`; a
/// dynamic binary gets the libraries `ldd` names at the same paths. Err
/// (a reason to skip) when that is not possible.
fn install_runtime(rootfs: &Path) -> Result<(), String> {
    let bin = runtime_path();
    let dest = rootfs.join("bin/rootcell");
    std::fs::copy(&bin, &dest).map_err(|e| format!("copy {}: {e}", bin.display()))?;
    let ldd = exec(Command::new("ldd").arg(&bin), CMD_TIMEOUT);
    if ldd.stdout.contains("statically linked") || ldd.all().contains("not a dynamic executable") {
        return Ok(());
    }
    if !ldd.ok() {
        return Err(format!(
            "{} is dynamic and ldd fails: {}",
            bin.display(),
            ldd.all()
        ));
    }
    // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` and the loader
    // `/lib64/ld-linux-x86-64.so.2 (0x…)`.
    for lib in ldd.stdout.split_whitespace().filter(|w| w.starts_with('/')) {
        let target = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().expect("a library path has a parent"))
            .map_err(|e| format!("{}: {e}", target.display()))?;
        std::fs::copy(lib, &target).map_err(|e| format!("copy {lib}: {e}"))?;
    }
    Ok(())
}

/// The nested setup, or None (with a printed reason) where it cannot run.
fn nested(name: &str) -> Option<Nested> {
    nested_with(name, OUTER_SIZE)
}

/// The same with `size` ids mapped into the outer container (1: a rootless
/// engine without subordinate ids, only root mapped).
fn nested_with(name: &str, size: u32) -> Option<Nested> {
    if runtime_is_runc() || runtime_name().contains("crun") {
        skip("chroot isolation is rootcell's own (runc and crun have no --isolation)");
        return None;
    }
    // The inner runtime makes user namespaces from inside one, without
    // CAP_SYS_ADMIN over the host: that needs nested ones to be allowed.
    if !userns_available() {
        return None;
    }
    if !command_exists("chown") {
        skip("no chown to give the outer rootfs to its mapped root");
        return None;
    }
    let ctx = Ctx::new(name);
    let mut outer = ctx.bundle();
    if let Err(why) = install_runtime(&outer.rootfs()) {
        skip(&format!("the runtime cannot run inside a container: {why}"));
        return None;
    }
    // The outer config, as an unprivileged podman container gets it.
    let caps = json!(DEFAULT_CAPS);
    outer.process()["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
    });
    outer.set_namespace("user", None);
    outer.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": OUTER_BASE, "size": size}]);
    outer.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": OUTER_BASE, "size": size}]);
    if size <= 5 {
        // The outer container's own devpts group (tty, 5) is not mapped.
        drop_devpts_gid(&mut outer);
    }
    assert!(
        outer.config["linux"]["maskedPaths"]
            .as_array()
            .is_some_and(|m| m.iter().any(|p| p == "/proc/kcore")),
        "the runtime's spec masks /proc paths: {}",
        outer.config["linux"]
    );

    // The inner bundle, at /inner in the outer rootfs.
    let inner_path = outer.rootfs().join("inner");
    make_rootfs(&inner_path.join("rootfs"));
    exec(
        Command::new(&ctx.bin)
            .arg("spec")
            .arg("--bundle")
            .arg(&inner_path),
        CMD_TIMEOUT,
    )
    .assert_ok("spec for the inner bundle");
    let mut inner = Bundle {
        config: serde_json::from_str(&read_file(&inner_path.join("config.json")))
            .expect("spec wrote valid JSON"),
        path: inner_path,
    };
    inner.config["process"]["terminal"] = json!(false);
    inner.config["hostname"] = json!("inner-host");
    write_file(
        &inner.rootfs().join("inner-marker"),
        "from the inner rootfs\n",
    );
    Some(Nested { ctx, outer, inner })
}

#[test]
fn full_isolation_fails_suggesting_chroot_and_chroot_runs_the_same_bundle() {
    let Some(mut n) = nested("nested-run") else {
        return;
    };
    n.inner.sh(concat!(
        "echo hello-inner; hostname; cat /inner-marker; ",
        "echo comm=$(cat /proc/self/comm); echo pid=$$; ",
        "grep -q ' /proc ' /proc/self/mountinfo && echo proc-mounted; ",
        "echo kcore=$(wc -c < /proc/kcore); ",
        "touch /sys/x 2>/dev/null || echo sys-read-only; ",
        "exit 7"
    ));
    let (oci, chroot) = (n.inner_id("oci"), n.inner_id("chroot"));
    let script = format!(
        "cd /; \
         echo ==id; id -u; grep CapEff /proc/self/status; \
         echo ==oci; rootcell --root /tmp/state run --bundle /inner {oci} 2>&1; echo rc=$?; \
         echo ==chroot; rootcell --root /tmp/state --isolation chroot run --bundle /inner {chroot} 2>&1; echo rc=$?; \
         echo ==state; ls /tmp/state; echo ==end"
    );
    let out = n.run(&script, &[&oci, &chroot]);
    out.assert_ok("the outer container");
    let s = &out.stdout;
    // The outer container is what the test means: root in a user
    // namespace without CAP_SYS_ADMIN (bit 21).
    let id = section(s, "id");
    assert!(id.starts_with("0\n"), "{s}");
    let eff = id
        .split_whitespace()
        .last()
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .expect("CapEff");
    assert_eq!(
        eff & (1 << 21),
        0,
        "the outer container has CAP_SYS_ADMIN: {s}"
    );

    let full = section(s, "oci");
    assert!(!full.contains("rc=0"), "full isolation ran: {s}");
    assert!(!full.contains("hello-inner"), "{s}");
    assert!(full.contains("CAP_SYS_ADMIN"), "the refusal is named: {s}");
    assert!(
        full.contains("--isolation chroot"),
        "the error suggests chroot isolation: {s}"
    );

    // The container's output, without the runtime's own lines
    // (diagnostics of what chroot isolation could not apply).
    let ch = section(s, "chroot");
    let l: Vec<String> = lines(ch)
        .into_iter()
        .filter(|l| !l.starts_with("rootcell:"))
        .collect();
    assert_eq!(l.first().map(String::as_str), Some("hello-inner"), "{s}");
    assert!(l.contains(&"inner-host".to_string()), "hostname: {s}");
    assert!(l.contains(&"from the inner rootfs".to_string()), "{s}");
    assert!(l.contains(&"comm=cat".to_string()), "/proc works: {s}");
    assert!(
        l.contains(&"pid=1".to_string()),
        "its own pid namespace: {s}"
    );
    assert!(l.contains(&"proc-mounted".to_string()), "{s}");
    assert!(
        l.contains(&"rc=7".to_string()),
        "exit code passed through: {s}"
    );
    // Nothing left in the inner state dir.
    assert_eq!(section(s, "state").trim(), "", "inner state left: {s}");
}

#[test]
fn auto_falls_back_once_inside_the_unprivileged_container() {
    let Some(mut n) = nested("nested-auto") else {
        return;
    };
    n.inner.sh("echo ran-in-$(hostname); exit 4");
    let auto = n.inner_id("auto");
    let script = format!(
        "echo ==auto; rootcell --root /tmp/state --isolation auto run --bundle /inner {auto} 2>&1; echo rc=$?; \
         echo ==state; ls /tmp/state; echo ==end"
    );
    let out = n.run(&script, &[&auto]);
    out.assert_ok("the outer container");
    let s = &out.stdout;
    let a = section(s, "auto");
    assert!(a.contains("ran-in-inner-host\n"), "{s}");
    assert!(a.contains("rc=4"), "{s}");
    assert_eq!(
        a.matches(FALLBACK_LINE).count(),
        1,
        "one fallback line: {s}"
    );
    assert!(
        a.contains("rootcell: full isolation refused (namespaces without CAP_SYS_ADMIN): using chroot isolation"),
        "{s}"
    );
    assert_eq!(section(s, "state").trim(), "", "inner state left: {s}");
}

#[test]
fn the_inner_process_stays_in_the_inner_root() {
    let Some(mut n) = nested("nested-confined") else {
        return;
    };
    // From the inner root: `ls /`, a `..` walk, and the roots of the
    // outer container's processes through its /proc (bound, since a fresh
    // one is refused there): the inner process is in a user namespace of
    // its own, so the kernel refuses them.
    n.inner.sh(concat!(
        "echo ==ls; ls /; ",
        "echo ==dotdot; cd /../../..; ls; pwd; ",
        "echo ==procroot; for p in /proc/[0-9]*; do ",
        "  [ \"${p#/proc/}\" = \"$$\" ] && continue; ",
        "  ls $p/root/ >/dev/null 2>&1 && echo reached $p $(ls $p/root/ | tr '\\n' ' '); ",
        "done; echo ==inner-end"
    ));
    let id = n.inner_id("c");
    let script = format!(
        "sleep 60 & \
         rootcell --root /tmp/state --isolation chroot run --bundle /inner {id} 2>&1; echo rc=$?; \
         kill %1; echo ==end"
    );
    let out = n.run(&script, &[&id]);
    out.assert_ok("the outer container");
    let s = &out.stdout;
    for part in ["ls", "dotdot"] {
        let l = lines(section(s, part));
        assert!(l.contains(&"inner-marker".to_string()), "{part}: {s}");
        // The outer rootfs has /inner and /bin/rootcell; the inner none.
        assert!(!l.contains(&"inner".to_string()), "{part}: outer root: {s}");
    }
    assert!(section(s, "dotdot").contains("\n/\n"), "{s}");
    let reached = section(s, "procroot");
    // Its own processes' roots are its own; none of the outer's is
    // reachable (their roots would list `inner`).
    assert!(
        !reached.split('\n').any(|l| l.contains(" inner ")),
        "an outer process's root is reachable: {s}"
    );
    assert!(s.contains("rc=0"), "{s}");
    assert!(
        !n.inner.rootfs().join("bin/rootcell").exists(),
        "fixture: the inner rootfs has no rootcell"
    );
}

#[test]
fn a_root_made_config_with_a_single_mapped_id_drops_the_devpts_group() {
    let Some(mut n) = nested("nested-onemap") else {
        return;
    };
    // The inner config asks for a user namespace with only root mapped
    // (a root-made config as `spec` writes it, with its devpts gid=5):
    // chroot isolation keeps the mapping (an id of the runtime's own
    // namespace) and drops gid=5, which is not mapped there, saying so.
    n.inner.set_namespace("user", None);
    n.inner.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    n.inner.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    n.inner.sh("echo uidmap=$(cat /proc/self/uid_map | tr -s ' '); ls -d /dev/pts/ptmx && echo pts-ok; exit 3");
    let id = n.inner_id("c");
    let script = format!(
        "echo ==c; rootcell --root /tmp/state --isolation chroot run --bundle /inner {id} 2>&1; echo rc=$?; echo ==end"
    );
    let out = n.run(&script, &[&id]);
    out.assert_ok("the outer container");
    let s = &out.stdout;
    let c = section(s, "c");
    assert!(c.contains("uidmap= 0 0 1\n"), "{s}");
    assert!(c.contains("pts-ok"), "{s}");
    assert!(c.contains("rc=3"), "{s}");
    assert!(
        c.contains("gid=5 dropped: gid 5 is not mapped in the container's user namespace"),
        "one diagnostic names the dropped option: {s}"
    );
}

#[test]
fn detached_run_exec_ps_kill_delete_inside_the_unprivileged_container() {
    let Some(mut n) = nested("nested-lifecycle") else {
        return;
    };
    n.inner.args(&["sleep", "60"]);
    let id = n.inner_id("d");
    let script = format!(
        "R='rootcell --root /tmp/state'; \
         echo ==run; $R --isolation chroot run --detach --bundle /inner {id} </dev/null >/dev/null 2>&1; echo rc=$?; \
         echo ==state; $R state {id}; \
         echo ==exec; $R exec {id} sh -c 'echo exec-in-$(hostname); cat /inner-marker; cat /proc/self/comm; exit 5' 2>&1; echo rc=$?; \
         echo ==ps; $R ps {id} 2>&1; \
         echo ==kill; $R kill {id} KILL 2>&1; echo rc=$?; \
         i=0; while [ $i -lt 300 ] && ! $R state {id} | grep -q stopped; do sleep 0.1; i=$((i+1)); done; \
         $R delete {id} 2>&1; echo rc=$?; \
         echo ==left; ls /tmp/state; $R list -q; echo ==end"
    );
    let out = n.run(&script, &[&id]);
    out.assert_ok("the outer container");
    let s = &out.stdout;
    assert!(section(s, "run").contains("rc=0"), "{s}");
    assert!(section(s, "state").contains("\"running\""), "{s}");
    let e = section(s, "exec");
    // exec needs no flag: the mode is recorded in the state.
    assert!(e.contains("exec-in-inner-host\n"), "{s}");
    assert!(e.contains("from the inner rootfs\n"), "{s}");
    assert!(e.contains("\ncat\n"), "/proc works in exec: {s}");
    assert!(e.contains("rc=5"), "{s}");
    assert!(section(s, "ps").contains("sleep"), "{s}");
    assert!(section(s, "kill").contains("rc=0\n"), "{s}");
    assert!(section(s, "kill").ends_with("rc=0\n"), "delete: {s}");
    assert_eq!(section(s, "left").trim(), "", "inner state left: {s}");
}

#[test]
fn only_root_mapped_into_the_outer_container() {
    // A rootless engine without subordinate ids: one id in the outer
    // user namespace. Chroot isolation maps that one id, drops the
    // devpts group it cannot map and the additional groups it cannot set,
    // each with one diagnostic, and runs.
    let Some(mut n) = nested_with("nested-one-id", 1) else {
        return;
    };
    n.inner.config["process"]["user"]["additionalGids"] = json!([10]);
    n.inner
        .sh("echo uid_map=$(cat /proc/self/uid_map | tr -s ' '); echo groups=$(id -G); exit 6");
    let (oci, chroot) = (n.inner_id("oci"), n.inner_id("chroot"));
    let script = format!(
        "echo ==oci; rootcell --root /tmp/state run --bundle /inner {oci} 2>&1; echo rc=$?; \
         echo ==chroot; rootcell --root /tmp/state --isolation chroot run --bundle /inner {chroot} 2>&1; echo rc=$?; \
         echo ==state; ls /tmp/state; echo ==end"
    );
    let out = n.run(&script, &[&oci, &chroot]);
    out.assert_ok("the outer container");
    let s = &out.stdout;
    let full = section(s, "oci");
    assert!(!full.contains("rc=0"), "{s}");
    assert!(full.contains("--isolation chroot"), "{s}");
    let c = section(s, "chroot");
    assert!(c.contains("uid_map= 0 0 1\n"), "{s}");
    assert!(c.contains("groups=0\n"), "{s}");
    assert!(c.contains("rc=6"), "{s}");
    assert_eq!(
        c.matches("gid=5 dropped: gid 5 is not mapped").count(),
        1,
        "{s}"
    );
    assert_eq!(c.matches("additionalGids 10 dropped").count(), 1, "{s}");
    assert_eq!(section(s, "state").trim(), "", "inner state left: {s}");
}

#[test]
fn a_limit_is_refused_inside_unless_the_annotation_ignores_it() {
    let Some(mut n) = nested("nested-limits") else {
        return;
    };
    n.inner.config["linux"]["resources"]["memory"] = json!({"limit": 268435456});
    n.inner.sh("echo ran; exit 2");
    // The same config twice: the second time with the annotation.
    let (refused, ignored) = (n.inner_id("refused"), n.inner_id("ignored"));
    let mut annotated = n.inner.config.clone();
    annotated["annotations"] = json!({"org.rootcell.chroot.ignore-resources": "true"});
    write_file(
        &n.inner.path.join("annotated.json"),
        &serde_json::to_string_pretty(&annotated).unwrap(),
    );
    let script = format!(
        "R='rootcell --root /tmp/state --isolation chroot'; \
         echo ==refused; $R run --bundle /inner {refused} 2>&1; echo rc=$?; \
         mv /inner/annotated.json /inner/config.json; \
         echo ==ignored; $R run --bundle /inner {ignored} 2>&1; echo rc=$?; \
         echo ==state; ls /tmp/state; echo ==end"
    );
    let out = n.run(&script, &[&refused, &ignored]);
    out.assert_ok("the outer container");
    let s = &out.stdout;
    let r = section(s, "refused");
    assert!(!r.contains("ran\n"), "{s}");
    assert!(!r.contains("rc=0"), "{s}");
    assert!(r.contains("linux.resources.memory.limit"), "{s}");
    assert!(r.contains("org.rootcell.chroot.ignore-resources"), "{s}");
    let i = section(s, "ignored");
    assert!(i.contains("ran\n") && i.contains("rc=2"), "{s}");
    assert_eq!(
        i.matches("linux.resources.memory.limit").count(),
        1,
        "one warning: {s}"
    );
    assert_eq!(section(s, "state").trim(), "", "inner state left: {s}");
}

#[test]
fn a_config_with_a_user_namespace_meets_the_too_revealing_proc_check() {
    // With its own user namespace the inner config needs no CAP_SYS_ADMIN
    // from the outer container, and full isolation gets as far as the
    // fresh proc mount, which the kernel refuses there (the outer /proc
    // has masked submounts): the error names it and suggests chroot
    // isolation, which runs the same config with the outer /proc bound.
    let Some(mut n) = nested("nested-revealing") else {
        return;
    };
    n.inner.set_namespace("user", None);
    n.inner.config["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": 0, "size": OUTER_SIZE}]);
    n.inner.config["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": 0, "size": OUTER_SIZE}]);
    n.inner
        .sh("echo ran-$(hostname); echo uid_map=$(cat /proc/self/uid_map | tr -s ' '); exit 9");
    let (oci, chroot) = (n.inner_id("oci"), n.inner_id("chroot"));
    let script = format!(
        "echo ==oci; rootcell --root /tmp/state run --bundle /inner {oci} 2>&1; echo rc=$?; \
         echo ==chroot; rootcell --root /tmp/state --isolation chroot run --bundle /inner {chroot} 2>&1; echo rc=$?; \
         echo ==state; ls /tmp/state; echo ==end"
    );
    let out = n.run(&script, &[&oci, &chroot]);
    out.assert_ok("the outer container");
    let s = &out.stdout;
    let full = section(s, "oci");
    assert!(!full.contains("ran-"), "{s}");
    assert!(!full.contains("rc=0"), "{s}");
    assert!(
        full.contains("the kernel refuses a fresh proc mount here"),
        "the refusal is named: {s}"
    );
    assert!(
        full.matches("ignored: this host has no devices cgroup controller")
            .count()
            <= 1,
        "one warning for the devices controller: {s}"
    );
    assert!(full.contains("--isolation chroot"), "{s}");
    let c = section(s, "chroot");
    assert!(c.contains("ran-inner-host\n"), "{s}");
    assert!(c.contains(&format!("uid_map= 0 0 {OUTER_SIZE}\n")), "{s}");
    assert!(c.contains("rc=9"), "{s}");
    assert_eq!(section(s, "state").trim(), "", "inner state left: {s}");
}
