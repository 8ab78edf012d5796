//! Namespaces: new ones per the spec, joining existing ones by path, and
//! user namespaces with id mappings.

mod common;

use common::*;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// (spec type, /proc/self/ns name)
const NAMESPACES: [(&str, &str); 6] = [
    ("mount", "mnt"),
    ("pid", "pid"),
    ("uts", "uts"),
    ("ipc", "ipc"),
    ("network", "net"),
    ("cgroup", "cgroup"),
];

/// Run a container printing `readlink /proc/self/ns/<name>` for each name.
fn container_ns(ctx: &Ctx, b: &mut Bundle, tag: &str, names: &[&str]) -> Vec<String> {
    let script: Vec<String> = names
        .iter()
        .map(|n| format!("readlink /proc/self/ns/{n}"))
        .collect();
    b.sh(&script.join("; "));
    let id = ctx.id(tag);
    let out = ctx.run(&id, b);
    out.assert_ok(tag);
    let l = lines(&out.stdout);
    assert_eq!(l.len(), names.len(), "{}", out.stdout);
    l
}

#[test]
fn each_namespace_is_new_when_requested() {
    let ctx = Ctx::new("nsnew");
    let mut b = ctx.bundle();
    for (ty, _) in NAMESPACES {
        b.set_namespace(ty, None);
    }
    let names: Vec<&str> = NAMESPACES.iter().map(|(_, n)| *n).collect();
    let inside = container_ns(&ctx, &mut b, "all", &names);
    for ((ty, name), got) in NAMESPACES.iter().zip(&inside) {
        assert!(got.starts_with(&format!("{name}:[")), "{ty}: {got}");
        assert_ne!(*got, host_ns(name), "{ty} namespace is the host's");
    }
    ctx.assert_clean();
}

#[test]
fn namespaces_not_requested_are_shared_with_host() {
    let ctx = Ctx::new("nsshared");
    let mut b = ctx.bundle();
    // Keep only the mount namespace (required for a rootfs) and see the
    // others stay the host's: the runtime must not add namespaces.
    for (ty, _) in NAMESPACES {
        if ty != "mount" {
            b.remove_namespace(ty);
        }
    }
    // Without a network namespace sysfs cannot be mounted fresh; bind it.
    b.remove_mount("/sys").remove_mount("/sys/fs/cgroup");
    b.add_mount(json!({
        "destination": "/sys", "type": "bind", "source": "/sys",
        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
    }));
    // A hostname needs a private UTS namespace: runc refuses it.
    b.config["hostname"] = json!("no-private-uts");
    b.sh("true");
    let id = ctx.id("hostname");
    let out = ctx.run(&id, &b);
    out.assert_fail("hostname without a uts namespace");
    b.config.as_object_mut().unwrap().remove("hostname");

    let shared = ["pid", "uts", "ipc", "net", "cgroup"];
    let inside = container_ns(&ctx, &mut b, "shared", &shared);
    for (name, got) in shared.iter().zip(&inside) {
        assert_eq!(*got, host_ns(name), "{name} namespace should be the host's");
    }
    ctx.assert_clean();
}

#[test]
fn new_network_namespace_has_only_loopback() {
    let ctx = Ctx::new("netns");
    let mut b = ctx.bundle();
    b.sh("ls /sys/class/net; echo ---; tail -n +3 /proc/net/dev | cut -d: -f1");
    let id = ctx.id("c");
    let out = ctx.run(&id, &b);
    out.assert_ok("run");
    let (sys, proc_) = out.stdout.split_once("---").unwrap();
    assert_eq!(lines(sys), ["lo"], "{}", out.stdout);
    assert_eq!(lines(proc_), ["lo"], "{}", out.stdout);
    ctx.assert_clean();
}

/// A SysV message queue on the host, removed on drop.
struct HostMsgQueue(String);

impl HostMsgQueue {
    fn new() -> HostMsgQueue {
        let out = exec(Command::new("ipcmk").arg("-Q"), CMD_TIMEOUT);
        out.assert_ok("ipcmk -Q");
        // "Message queue id: 3"
        let id = out.stdout.rsplit(':').next().unwrap().trim().to_owned();
        HostMsgQueue(id)
    }
}

impl Drop for HostMsgQueue {
    fn drop(&mut self) {
        let _ = Command::new("ipcrm").args(["-q", &self.0]).status();
    }
}

#[test]
fn uts_and_ipc_namespaces_isolate() {
    let ctx = Ctx::new("utsipc");
    let queue = HostMsgQueue::new();
    let mut b = ctx.bundle();
    b.config["hostname"] = json!("isolated");
    // Data lines of /proc/sysvipc/msg: the host's queue must not show.
    b.sh("hostname; tail -n +2 /proc/sysvipc/msg | wc -l");
    let id = ctx.id("c");
    let out = ctx.run(&id, &b);
    out.assert_ok("run");
    assert_eq!(lines(&out.stdout), ["isolated", "0"], "{}", out.stdout);
    assert_ne!(
        read_file(std::path::Path::new("/proc/sys/kernel/hostname")).trim(),
        "isolated"
    );

    // Sharing the host IPC namespace shows the host's queue.
    b.remove_namespace("ipc");
    b.sh("tail -n +2 /proc/sysvipc/msg | awk '{print $2}'");
    let id = ctx.id("shared");
    let out = ctx.run(&id, &b);
    out.assert_ok("run sharing ipc");
    assert!(
        lines(&out.stdout).contains(&queue.0),
        "host queue {} not visible: {}",
        queue.0,
        out.stdout
    );
    ctx.assert_clean();
}

#[test]
fn time_namespace_is_new_when_requested() {
    skip_unless!(
        time_namespace_available(),
        "the kernel has no time namespace (/proc/self/ns/time)"
    );
    if !features_namespaces().contains(&"time".to_string()) {
        if runtime_is_runc() {
            // runc 1.1 has no time namespace support (added in runc 1.2).
            return skip("time namespace");
        }
        panic!("runtime does not advertise the time namespace in `features`");
    }
    let ctx = Ctx::new("timens");
    let mut b = ctx.bundle();
    b.set_namespace("time", None);
    b.linux()["timeOffsets"] = json!({
        "monotonic": {"secs": 86400 * 365, "nanosecs": 0},
        "boottime": {"secs": 86400 * 365, "nanosecs": 0}
    });
    b.sh("readlink /proc/self/ns/time; cut -d' ' -f1 /proc/uptime; cat /proc/self/timens_offsets");
    let id = ctx.id("c");
    let out = ctx.run(&id, &b);
    out.assert_ok("run with time namespace");
    let l = lines(&out.stdout);
    assert!(l[0].starts_with("time:["), "{}", out.stdout);
    assert_ne!(l[0], host_ns("time"), "time namespace is the host's");
    // Boot time shifted by a year.
    let uptime: f64 = l[1].parse().unwrap();
    assert!(uptime > 86400.0 * 365.0, "uptime {uptime} not offset");
    assert!(
        out.stdout.contains("monotonic") && out.stdout.contains("31536000"),
        "{}",
        out.stdout
    );
    ctx.assert_clean();
}

/// A long-lived process in fresh net + uts namespaces, killed on drop.
struct NsHolder {
    child: Child,
}

impl NsHolder {
    fn start(hostname: &str) -> NsHolder {
        let child = Command::new("unshare")
            .args(["--net", "--uts", "--ipc", "sh", "-c"])
            .arg(format!("hostname {hostname} && exec sleep 60"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn unshare");
        let pid = child.id();
        // Ready once `sleep` has been exec'd (after hostname was set).
        poll(POLL_TIMEOUT, "unshare'd sleep", || {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == "sleep").then_some(())
        });
        NsHolder { child }
    }

    fn ns_path(&self, name: &str) -> String {
        format!("/proc/{}/ns/{name}", self.child.id())
    }
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn join_existing_namespaces_by_path() {
    let ctx = Ctx::new("nsjoin");
    let holder = NsHolder::start("joined-uts");
    let net = readlink(holder.ns_path("net"));
    let uts = readlink(holder.ns_path("uts"));
    assert_ne!(net, host_ns("net"));

    let mut b = ctx.bundle();
    b.set_namespace("network", Some(&holder.ns_path("net")));
    b.set_namespace("uts", Some(&holder.ns_path("uts")));
    // Setting a hostname would change the joined namespace; leave it alone.
    b.config.as_object_mut().unwrap().remove("hostname");
    b.sh("readlink /proc/self/ns/net; readlink /proc/self/ns/uts; hostname");
    let id = ctx.id("c");
    let out = ctx.run(&id, &b);
    out.assert_ok("run joining namespaces");
    assert_eq!(
        lines(&out.stdout),
        [net.as_str(), uts.as_str(), "joined-uts"],
        "{}",
        out.stdout
    );
    // Other namespaces are still new.
    b.sh("readlink /proc/self/ns/ipc");
    let id = ctx.id("ipc");
    let out = ctx.run(&id, &b);
    out.assert_ok("run");
    assert_ne!(out.stdout.trim(), host_ns("ipc"));

    // Joining a path that is not a namespace fails cleanly, with stage 1's
    // own error (it fails while the runtime makes the cgroups, whose join
    // files it then never reads).
    b.set_namespace("network", Some("/proc/self/exe"));
    let id = ctx.id("bad");
    let out = ctx.run(&id, &b);
    out.assert_fail("join a non-namespace path");
    if !runtime_is_runc() {
        assert!(
            out.stderr
                .contains("linux.namespaces: joining net namespace /proc/self/exe"),
            "{}",
            out.all()
        );
    }
    drop(holder);
    ctx.assert_clean();
}

/// `net.*` sysctls go into a network namespace joined by path (how
/// containerd's CRI plugin starts a pod's sandbox in the namespace CNI set
/// up), but never into the runtime's own: that would change the host.
#[test]
fn net_sysctls_in_a_joined_network_namespace() {
    sysctl_in_a_joined_namespace(
        "nsjoin-sysctl",
        "network",
        "net",
        "net.ipv4.ip_unprivileged_port_start",
        ["123", "124"],
    );
}

/// The same for ipc sysctls in an ipc namespace joined by path (a pod's
/// containers join their sandbox's), as runc allows.
#[test]
fn ipc_sysctls_in_a_joined_ipc_namespace() {
    sysctl_in_a_joined_namespace(
        "nsjoin-ipcsysctl",
        "ipc",
        "ipc",
        "kernel.msgmax",
        ["12345", "12346"],
    );
}

/// Runs a container that joins a holder's `ns_type` namespace by path and
/// sets `key` there (the first of `values` the host does not have), checks
/// the value inside and the host's unchanged; then the same with the
/// runtime's own namespace, which is refused.
fn sysctl_in_a_joined_namespace(
    name: &str,
    ns_type: &str,
    ns_file: &str,
    key: &str,
    values: [&str; 2],
) {
    let ctx = Ctx::new(name);
    let holder = NsHolder::start("joined-sysctl");
    let host_value = host_sysctl(key).expect("the host's value");
    let wanted = if host_value.trim() == values[0] {
        values[1]
    } else {
        values[0]
    };

    let mut b = ctx.bundle();
    b.set_namespace(ns_type, Some(&holder.ns_path(ns_file)));
    b.linux()["sysctl"] = serde_json::json!({ key: wanted });
    b.sh(&format!("cat /proc/sys/{}", key.replace('.', "/")));
    let out = ctx.run(&ctx.id("c"), &b);
    out.assert_ok(&format!("run with {key} in a joined {ns_type} namespace"));
    assert_eq!(out.stdout.trim(), wanted);
    assert_eq!(host_sysctl(key).as_deref(), Some(host_value.as_str()));

    // The runtime's own namespace (the host's here): refused, the host's
    // value unchanged. runc checks this for the network namespace only
    // (isHostNetNS): it would write the host's ipc sysctl.
    if runtime_is_runc() && ns_type != "network" {
        drop(holder);
        ctx.assert_clean();
        return;
    }
    b.set_namespace(
        ns_type,
        Some(&format!("/proc/{}/ns/{ns_file}", std::process::id())),
    );
    let out = ctx.run(&ctx.id("own"), &b);
    out.assert_fail(&format!("{key} in the runtime's own {ns_type} namespace"));
    if !runtime_is_runc() {
        assert!(
            out.stderr
                .contains(&format!("runtime's own {ns_type} namespace")),
            "{}",
            out.all()
        );
    }
    assert_eq!(host_sysctl(key).as_deref(), Some(host_value.as_str()));
    drop(holder);
    ctx.assert_clean();
}

#[test]
fn user_namespace_with_mappings_as_root() {
    let ctx = Ctx::new("userns");
    let mut b = ctx.bundle();
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    // The cgroup v1 mount is not possible from a user namespace on every
    // kernel; it is not what this test is about.
    b.remove_mount("/sys/fs/cgroup");
    b.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; \
         readlink /proc/self/ns/user; stat -c '%u' /bin/busybox; \
         touch /tmp/owned && stat -c '%u:%g' /tmp/owned");
    let id = ctx.id("c");
    let out = ctx.run(&id, &b);
    out.assert_ok("run with user namespace");
    let l = lines(&out.stdout);
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(words(&l[0]), ["0", "100000", "65536"], "{}", out.stdout);
    assert_eq!(words(&l[1]), ["0", "200000", "65536"], "{}", out.stdout);
    assert_eq!(l[2], "0");
    assert_eq!(l[3], "0");
    assert_ne!(l[4], host_ns("user"));
    // Host root's files are unmapped (overflow uid) inside.
    assert_eq!(l[5], "65534", "{}", out.stdout);
    assert_eq!(l[6], "0:0");
    // A file created by container root belongs to the mapped host ids.
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(b.rootfs().join("tmp/owned")).unwrap();
    assert_eq!((md.uid(), md.gid()), (100000, 200000));
    ctx.assert_clean();
}

#[test]
fn pure_cgroup2_in_a_private_mount_namespace() {
    // cgroup2 mounted over this host's hybrid layout, as a v2-only host
    // looks: the container gets a cgroup2 /sys/fs/cgroup of its own, and
    // nothing is created at the paths of the covered v1 hierarchies.
    let ctx = Ctx::new("cg2");
    let mut b = ctx.bundle();
    b.sh("grep ' /sys/fs/cgroup ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1; cat /proc/self/cgroup");
    let id = ctx.id("c");
    b.save();
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t cgroup2 none /sys/fs/cgroup && exec \"$@\"")
        .arg("sh")
        .arg(runtime_path());
    if let Some(root) = &ctx.root {
        c.arg("--root").arg(root);
    }
    c.arg("run").arg("--bundle").arg(&b.path).arg(&id);
    let out = exec(&mut c, CMD_TIMEOUT);
    out.assert_ok("run on pure cgroup2");
    let lines = lines(&out.stdout);
    assert_eq!(lines[0], "cgroup2", "{}", out.stdout);
    assert!(lines.iter().any(|l| l.starts_with("0::")), "{}", out.stdout);
    for controller in [
        "cpu", "cpuset", "memory", "pids", "blkio", "devices", "freezer", "systemd",
    ] {
        assert!(
            !Path::new("/sys/fs/cgroup/unified")
                .join(controller)
                .exists(),
            "a v1 path leaked into the cgroup2 tree: {controller}"
        );
    }
    ctx.assert_clean();
}

/// A new time namespace with offsets together with a new user namespace:
/// the offsets are written while stage 1 can still write its own /proc
/// files (before it becomes non-dumpable); they used to fail with
/// "linux.timeOffsets: Permission denied".
#[test]
fn time_namespace_with_offsets_in_a_user_namespace() {
    if !features_namespaces().contains(&"time".to_string()) {
        if runtime_is_runc() {
            return skip("time namespace (runc 1.2+)");
        }
        panic!("runtime does not advertise the time namespace in `features`");
    }
    let ctx = Ctx::new("timens-userns");
    let mut b = ctx.bundle();
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.remove_mount("/sys/fs/cgroup");
    b.set_namespace("time", None);
    b.linux()["timeOffsets"] = json!({
        "monotonic": {"secs": 86400 * 365, "nanosecs": 0},
        "boottime": {"secs": 86400 * 730, "nanosecs": 0}
    });
    b.sh("readlink /proc/self/ns/time; cut -d' ' -f1 /proc/uptime; cat /proc/self/timens_offsets");
    for create_start in [false, true] {
        let id = ctx.id(if create_start { "cs" } else { "r" });
        let text = if create_start {
            ctx.create(&id, &b, &[]).assert_ok("create");
            ctx.rt(&["start", &id]).assert_ok("start");
            ctx.wait_status(&id, "stopped");
            let text = read_file(&ctx.stdout_path(&id));
            ctx.rt(&["delete", &id]).assert_ok("delete");
            text
        } else {
            let out = ctx.run(&id, &b);
            out.assert_ok("run with user and time namespaces");
            out.stdout
        };
        let l = lines(&text);
        assert!(l[0].starts_with("time:["), "{text}");
        assert_ne!(l[0], host_ns("time"), "time namespace is the host's");
        let uptime: f64 = l[1].parse().unwrap();
        assert!(uptime > 86400.0 * 730.0, "uptime {uptime} not offset");
        assert!(
            text.contains("monotonic") && text.contains("31536000"),
            "{text}"
        );
    }
    ctx.assert_clean();
}
