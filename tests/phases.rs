//! `ROOTCELL_PHASES=1`: the phase timestamps `bench/phases.sh` reads come
//! from every process of a run (the runtime, the sandbox's init, the
//! command before `execve`), in time order, and are absent without it.
//! `ROOTCELL_RSS=1`: the peak RSS reports `bench/rss.sh` reads come from
//! each process of a `run` (the runtime, stage 1, init before `execve`).

mod common;

use std::process::Command;

use common::{runtime_is_runc, runtime_path, Ctx, TempDir};

/// `(pid, seconds, phase)` of each mark line in `stderr`.
fn marks(stderr: &str) -> Vec<(String, f64, String)> {
    stderr
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(4, ' ');
            if parts.next()? != "rootcell-phase" {
                return None;
            }
            let pid = parts.next()?.to_string();
            let t = parts.next()?.parse::<f64>().ok()?;
            Some((pid, t, parts.next()?.to_string()))
        })
        .collect()
}

fn sandbox_true(phases: Option<&str>) -> String {
    let dir = TempDir::new("phases");
    // A read-only directory with a long path: its step's mark is longer
    // than a mark line may be.
    let long = dir
        .path()
        .join("d".repeat(200))
        .join("e".repeat(200))
        .join("f".repeat(200));
    std::fs::create_dir_all(&long).unwrap();
    let mut cmd = Command::new(runtime_path());
    cmd.current_dir(dir.path())
        .args(["sandbox", "-q", "--read-only-dir"])
        .arg(&long)
        .args(["--", "true"])
        .env_remove("ROOTCELL_PHASES");
    if let Some(value) = phases {
        cmd.env("ROOTCELL_PHASES", value);
    }
    let out = cmd.output().expect("running rootcell sandbox");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    stderr
}

#[test]
fn phases_come_from_every_process_in_time_order() {
    if runtime_is_runc() {
        common::skip("phase marks are rootcell's");
        return;
    }
    let stderr = sandbox_true(Some("1"));
    let marks = marks(&stderr);
    let names: Vec<&str> = marks.iter().map(|(_, _, n)| n.as_str()).collect();
    for expected in [
        "main",
        "plan",
        "init started",
        "init: root switched",
        "execve",
        "init exited",
        "result files",
    ] {
        assert!(
            names.contains(&expected),
            "no {expected:?} mark in {stderr}"
        );
    }
    assert!(
        names.iter().any(|n| n.starts_with("step: ")),
        "no rootfs step marks in {stderr}"
    );
    // The runtime, init (pid 1 of its namespace), the command (pid 2).
    let pids: std::collections::BTreeSet<&str> = marks.iter().map(|(p, _, _)| p.as_str()).collect();
    assert!(
        pids.contains("1") && pids.contains("2") && pids.len() == 3,
        "{pids:?}"
    );
    // Every line is a whole mark, however long a step's description.
    for line in stderr.lines().filter(|l| l.starts_with("rootcell-phase")) {
        assert_eq!(line.matches("rootcell-phase").count(), 1, "{line}");
    }
    let at = |name: &str| {
        marks
            .iter()
            .find(|(_, _, n)| n == name)
            .map(|m| m.1)
            .unwrap()
    };
    assert!(at("main") <= at("plan") && at("plan") <= at("init started"));
    assert!(at("init: root switched") <= at("execve") && at("execve") <= at("init exited"));
}

#[test]
fn no_phases_without_the_variable() {
    if runtime_is_runc() {
        common::skip("phase marks are rootcell's");
        return;
    }
    for value in [None, Some("0")] {
        let stderr = sandbox_true(value);
        assert!(!stderr.contains("rootcell-phase"), "{value:?}: {stderr}");
    }
}

/// `(pid, KiB, who)` of each peak RSS line in `stderr`.
fn rss_reports(stderr: &str) -> Vec<(String, u64, String)> {
    stderr
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(4, ' ');
            if parts.next()? != "rootcell-rss" {
                return None;
            }
            let pid = parts.next()?.to_string();
            let kib = parts.next()?.parse::<u64>().ok()?;
            Some((pid, kib, parts.next()?.to_string()))
        })
        .collect()
}

/// `name` tells the tests apart: a container's id (and so its cgroup)
/// is made from it and the test process's pid, and tests run at once.
fn run_true(name: &str, rss: Option<&str>) -> String {
    let mut ctx = Ctx::new(name);
    if let Some(value) = rss {
        ctx.env.push(("ROOTCELL_RSS".into(), value.into()));
    }
    let b = ctx.bundle();
    let id = ctx.id("c");
    let mut cmd = ctx.run_cmd(&id, &b, &[]);
    if rss.is_none() {
        cmd.env_remove("ROOTCELL_RSS");
    }
    let out = common::exec(&mut cmd, std::time::Duration::from_secs(60));
    out.assert_ok("run true");
    out.stderr
}

#[test]
fn rss_reports_come_from_each_process_of_a_run() {
    if runtime_is_runc() {
        common::skip("peak RSS reports are rootcell's");
        return;
    }
    let stderr = run_true("rss", Some("1"));
    let reports = rss_reports(&stderr);
    let find = |who: &str| {
        reports
            .iter()
            .find(|(_, _, w)| w == who)
            .unwrap_or_else(|| panic!("no {who:?} report in {stderr}"))
    };
    let runtime = find("runtime");
    let stage1 = find("stage 1");
    // Init is pid 1 of the container's pid namespace.
    let init = find("before execve");
    assert_eq!(init.0, "1", "{stderr}");
    assert_ne!(runtime.0, stage1.0, "{stderr}");
    // Each a number a process of rootcell can have: above the few hundred
    // KiB of any process, below 256 MiB.
    for (pid, kib, who) in [runtime, stage1, init] {
        assert!(
            (200..256 * 1024).contains(kib),
            "{who} (pid {pid}): {kib} KiB in {stderr}"
        );
    }
    // The runtime reports once, at exit (a re-exec from a protected copy
    // reports before it, under its own name).
    assert_eq!(
        reports.iter().filter(|(_, _, w)| w == "runtime").count(),
        1,
        "{stderr}"
    );
    // Every line is a whole report.
    for line in stderr.lines().filter(|l| l.contains("rootcell-rss")) {
        assert!(
            line.starts_with("rootcell-rss ") && line.matches("rootcell-rss").count() == 1,
            "{line}"
        );
    }
}

#[test]
fn no_rss_reports_without_the_variable() {
    if runtime_is_runc() {
        common::skip("peak RSS reports are rootcell's");
        return;
    }
    for value in [None, Some("0")] {
        let stderr = run_true("rss-off", value);
        assert!(!stderr.contains("rootcell-rss"), "{value:?}: {stderr}");
    }
}

/// A `run` marks each phase of the OCI lifecycle from the runtime, in
/// order, around init's own marks: what `bench/phases.sh` tables.
#[test]
fn a_run_marks_each_phase_of_the_lifecycle_in_order() {
    if runtime_is_runc() {
        common::skip("phase marks are rootcell's");
        return;
    }
    let mut ctx = Ctx::new("phases-run");
    ctx.env.push(("ROOTCELL_PHASES".into(), "1".into()));
    let b = ctx.bundle();
    let id = ctx.id("c");
    let out = common::exec(
        &mut ctx.run_cmd(&id, &b, &[]),
        std::time::Duration::from_secs(60),
    );
    out.assert_ok("run true");
    let marks = marks(&out.stderr);
    let at = |name: &str| {
        marks
            .iter()
            .rfind(|(_, _, n)| n == name)
            .map(|m| m.1)
            .unwrap_or_else(|| panic!("no {name:?} mark in {}", out.stderr))
    };
    let order = [
        "runtime: config loaded and validated",
        "runtime: host facts",
        "runtime: planned, state saved",
        // As root without a user namespace: while stage 1 makes the
        // namespaces (`CgroupEntry::AfterNamespaces`).
        "runtime: stage 1 forked",
        "runtime: cgroups made",
        "runtime: init pid, sources identified, state saved",
        "init: root switched",
        "execve",
        "runtime: container exited",
        "runtime: processes gone",
        "runtime: cgroups removed",
        "runtime: state removed",
    ];
    for pair in order.windows(2) {
        assert!(
            at(pair[0]) <= at(pair[1]),
            "{:?} after {:?}",
            pair[0],
            pair[1]
        );
    }
    // `run` without a start signal: init's one message before `execve`
    // says it is ready and execs, so the runtime marks it ready while
    // init goes on, before or after init's own `execve` mark.
    let ready = at("runtime: init ready");
    assert!(at("init: root switched") <= ready, "{}", out.stderr);
    assert!(ready <= at("runtime: container exited"), "{}", out.stderr);
    ctx.assert_clean();
}
