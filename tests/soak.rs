//! Soak: many create/start/delete cycles, one after another and in
//! parallel, must leave exactly what was there before: cgroup directories
//! of the test's containers, mounts of the test process, processes in the
//! test's root filesystems and entries in the state directory.
//!
//! `ROOTCELL_SOAK_CYCLES` (default 500) and `ROOTCELL_SOAK_PARALLEL`
//! (default 20) make it shorter or longer.

mod common;

use common::*;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a container can leave behind, counted. Cgroup directories are
/// those named after this test (other tests and sessions may create and
/// remove their own meanwhile).
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    cgroups: usize,
    mounts: usize,
    processes: usize,
    state_entries: usize,
}

fn footprint(ctx: &Ctx) -> Footprint {
    Footprint {
        cgroups: cgroups_named(&ctx.name).len(),
        mounts: host_mount_points().len(),
        processes: ctx.leftover_pids().len(),
        state_entries: ctx.state_entries().len(),
    }
}

/// One create/start/delete cycle of a busybox `true` container.
fn cycle(ctx: &Ctx, b: &Bundle, suffix: &str) {
    let id = ctx.id(suffix);
    let pid_file = ctx.dir.join(format!("{id}.pid"));
    let pid_arg = pid_file.to_string_lossy().into_owned();
    ctx.create(&id, b, &["--pid-file", &pid_arg])
        .assert_ok("create");
    let pid: i32 = read_file(&pid_file).trim().parse().expect("a pid");
    ctx.rt(&["start", &id]).assert_ok("start");
    wait_pid_dead(pid);
    ctx.rt(&["delete", &id]).assert_ok("delete");
    ctx.forget(&id);
}

#[test]
fn soak_create_start_delete() {
    let cycles = env_count("ROOTCELL_SOAK_CYCLES", 500);
    let parallel = env_count("ROOTCELL_SOAK_PARALLEL", 20);
    let ctx = Arc::new(Ctx::new("soak"));
    let b = ctx.bundle();
    b.save();
    let before = footprint(&ctx);

    let start = Instant::now();
    for i in 0..cycles {
        cycle(&ctx, &b, &format!("s{i}"));
    }
    let sequential = start.elapsed();
    assert_eq!(footprint(&ctx), before, "after {cycles} sequential cycles");

    // Each thread runs its own containers, side by side.
    // One bundle per thread: `create` rewrites the bundle's config.json.
    let bundles: Vec<Bundle> = (0..parallel).map(|_| ctx.bundle()).collect();
    let before = footprint(&ctx);
    let start = Instant::now();
    let threads: Vec<_> = bundles
        .into_iter()
        .enumerate()
        .map(|(t, b)| {
            let ctx = Arc::clone(&ctx);
            thread::spawn(move || {
                for i in 0..3 {
                    cycle(&ctx, &b, &format!("p{t}x{i}"));
                }
            })
        })
        .collect();
    // Every thread is joined before judging: a panic here must not leave
    // threads creating containers while the context is cleaned up.
    let failed = threads
        .into_iter()
        .map(|t| t.join())
        .filter(Result::is_err)
        .count();
    assert_eq!(failed, 0, "parallel threads failed");
    let concurrent = start.elapsed();
    assert_eq!(footprint(&ctx), before, "after {parallel} parallel threads");
    eprintln!(
        "soak ({}): {cycles} sequential cycles in {sequential:.1?} ({:.1?} each); {parallel} threads x 3 cycles in {concurrent:.1?}",
        runtime_name(),
        sequential / cycles.max(1) as u32,
    );
    ctx.assert_clean();
}
