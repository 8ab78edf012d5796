//! `linux.memoryPolicy` (runtime spec 1.2): the NUMA policy the container's
//! process runs with, as `/proc/self/numa_maps` shows it inside, and the
//! errors for modes, node lists and flags that cannot work, each naming
//! its field. runc 1.1.5 ignores the field: for runc, the tests are skipped
//! when its `features` does not list `linux.memoryPolicy` (rootcell must).

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;

/// Nodes online on this machine (`/sys/devices/system/node/online`), or
/// None without NUMA support.
fn online_nodes() -> Option<String> {
    std::fs::read_to_string("/sys/devices/system/node/online")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The runtime says it applies `linux.memoryPolicy`.
fn runtime_has_memory_policy() -> bool {
    let out = exec(
        std::process::Command::new(runtime_path()).arg("features"),
        CMD_TIMEOUT,
    );
    out.ok() && parse_json(&out.stdout, "features")["linux"]["memoryPolicy"]["modes"].is_array()
}

/// A machine and runtime where a policy on node 0 can be seen applied, or
/// the reason to skip.
fn numa_ready() -> Result<(), String> {
    if !Path::new("/proc/self/numa_maps").exists() {
        return Err("no /proc/self/numa_maps (kernel without CONFIG_NUMA)".into());
    }
    if !Path::new("/sys/devices/system/node/node0").exists() {
        return Err("NUMA node 0 is not present".into());
    }
    if runtime_is_runc() && !runtime_has_memory_policy() {
        return Err("this runc does not list linux.memoryPolicy in features".into());
    }
    Ok(())
}

/// The policy column of the first mapping of the container's process.
const SHOW_POLICY: &str = "head -n 1 /proc/self/numa_maps | cut -d ' ' -f 2";

#[test]
fn policies_on_node_0_show_in_numa_maps() {
    if let Err(why) = numa_ready() {
        return skip(&why);
    }
    let ctx = Ctx::new("mpol");
    for (policy, seen) in [
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0"),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
            "interleave:0",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            "bind=static:0",
        ),
        (
            json!({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]}),
            "prefer=relative:0",
        ),
        (json!({"mode": "MPOL_LOCAL"}), "local"),
        (json!({"mode": "MPOL_DEFAULT", "nodes": ""}), "default"),
    ] {
        let mut b = ctx.bundle();
        b.sh(SHOW_POLICY);
        b.linux()["memoryPolicy"] = policy.clone();
        let id = ctx.id(&format!("p{}", seen.len()));
        let out = ctx.run(&id, &b);
        out.assert_ok(&format!("memoryPolicy {policy}"));
        assert_eq!(out.stdout.trim(), seen, "memoryPolicy {policy}");
    }
    // Without the field, the process keeps the default policy.
    let mut b = ctx.bundle();
    b.sh(SHOW_POLICY);
    let out = ctx.run(&ctx.id("none"), &b);
    out.assert_ok("no memoryPolicy");
    assert_eq!(out.stdout.trim(), "default");
    ctx.assert_clean();
}

#[track_caller]
fn assert_refused(ctx: &Ctx, policy: Value, field: &str) {
    let mut b = ctx.bundle();
    b.linux()["memoryPolicy"] = policy.clone();
    let id = ctx.id("bad");
    let out = ctx.run(&id, &b);
    out.assert_fail(&format!("memoryPolicy {policy}"));
    if !runtime_is_runc() {
        assert!(
            out.stderr.contains(field),
            "memoryPolicy {policy}: the error should name {field}:\n{}",
            out.stderr
        );
    }
    ctx.assert_clean();
}

#[test]
fn invalid_memory_policies_fail_naming_the_field() {
    if runtime_is_runc() && !runtime_has_memory_policy() {
        return skip("this runc does not list linux.memoryPolicy in features");
    }
    let ctx = Ctx::new("mpol-bad");
    for (policy, field) in [
        (
            json!({"mode": "MPOL_FOO", "nodes": "0"}),
            "linux.memoryPolicy.mode",
        ),
        (
            json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
            "linux.memoryPolicy.nodes",
        ),
        (
            json!({"mode": "MPOL_DEFAULT", "nodes": "0-1"}),
            "linux.memoryPolicy.nodes",
        ),
        (json!({"mode": "MPOL_BIND"}), "linux.memoryPolicy.nodes"),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": ""}),
            "linux.memoryPolicy.nodes",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0-x"}),
            "linux.memoryPolicy.nodes",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "3-1"}),
            "linux.memoryPolicy.nodes",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "4096"}),
            "linux.memoryPolicy.nodes",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0",
                   "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
            "linux.memoryPolicy.flags",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_BOGUS"]}),
            "linux.memoryPolicy.flags",
        ),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0",
                   "flags": ["MPOL_F_NUMA_BALANCING"]}),
            "linux.memoryPolicy.flags",
        ),
    ] {
        assert_refused(&ctx, policy, field);
    }
}

/// A node the kernel does not have online: the kernel refuses the policy
/// (EINVAL) in init, and the error names the field.
#[test]
fn a_node_that_is_not_online_is_refused_naming_the_field() {
    if let Err(why) = numa_ready() {
        return skip(&why);
    }
    let Some(online) = online_nodes() else {
        return skip("no /sys/devices/system/node/online");
    };
    // The first node number after the online ones.
    let highest = online
        .split([',', '-'])
        .filter_map(|n| n.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    let offline = highest + 1;
    let ctx = Ctx::new("mpol-off");
    assert_refused(
        &ctx,
        json!({"mode": "MPOL_BIND", "nodes": offline.to_string()}),
        "linux.memoryPolicy.nodes",
    );
}

#[test]
fn features_lists_the_memory_policy_modes_and_flags() {
    if runtime_is_runc() {
        return skip("runc 1.1.5 has no linux.memoryPolicy");
    }
    let out = exec(
        std::process::Command::new(runtime_path()).arg("features"),
        CMD_TIMEOUT,
    );
    out.assert_ok("features");
    let f = parse_json(&out.stdout, "features");
    let mp = &f["linux"]["memoryPolicy"];
    for mode in [
        "MPOL_DEFAULT",
        "MPOL_BIND",
        "MPOL_INTERLEAVE",
        "MPOL_WEIGHTED_INTERLEAVE",
        "MPOL_PREFERRED",
        "MPOL_PREFERRED_MANY",
        "MPOL_LOCAL",
    ] {
        assert!(
            mp["modes"].as_array().unwrap().contains(&json!(mode)),
            "{mp}"
        );
    }
    for flag in [
        "MPOL_F_NUMA_BALANCING",
        "MPOL_F_RELATIVE_NODES",
        "MPOL_F_STATIC_NODES",
    ] {
        assert!(
            mp["flags"].as_array().unwrap().contains(&json!(flag)),
            "{mp}"
        );
    }
}
