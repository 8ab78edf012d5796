//! `ROOTCELL_PHASES=1`: the phase timestamps `bench/phases.sh` reads come
//! from every process of a run (the runtime, the sandbox's init, the
//! command before `execve`), in time order, and are absent without it.

mod common;

use std::process::Command;

use common::{runtime_is_runc, runtime_path, TempDir};

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
