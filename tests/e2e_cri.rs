//! End to end through Kubernetes' CRI: containerd 1.6's CRI plugin with two
//! runtime handlers, `runc` (/usr/sbin/runc) and `rootcell` (the runtime
//! under test), both `io.containerd.runc.v2`. Each test starts one private
//! node (`rootcell-cri-node`: containerd in mount, network and pid
//! namespaces of its own, CNI bridge + host-local + portmap inside that
//! network namespace, cgroupfs driver, busybox and pause images from a
//! registry on the node's loopback), runs its scenario once per handler
//! through a `k8s-cri` client and compares what each handler showed: the
//! results must be the same. Skips only when containerd's CRI plugin
//! cannot start.

mod common;

use common::*;
use rootcell_cri_node::cri::security_profile::ProfileType;
use rootcell_cri_node::{container_config, cri, Node, NodeOptions, Unavailable, NODE_IP};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const HANDLERS: [&str; 2] = ["runc", "rootcell"];
const WAIT: Duration = Duration::from_secs(20);

/// What a scenario saw, as (what, value) pairs, compared between handlers.
type Seen = Vec<(String, String)>;

fn note(seen: &mut Seen, what: &str, value: impl std::fmt::Display) {
    seen.push((what.to_string(), value.to_string()));
}

/// Starts a node for one test; `None` (after a skip notice) only when the
/// machine cannot run containerd's CRI plugin.
fn start_node(name: &str) -> Option<Node> {
    let dir = make_temp_dir(&format!("cri-{name}"));
    let mut opts = NodeOptions::new(dir, runtime_path());
    opts.keep_dir = std::env::var_os("ROOTCELL_TEST_KEEP").is_some();
    match Node::start(opts) {
        Ok(node) => Some(node),
        Err(e) if e.downcast_ref::<Unavailable>().is_some() => {
            skip(&format!("{e:#}"));
            None
        }
        Err(e) => panic!("starting the CRI node: {e:#}"),
    }
}

/// Runs `scenario` for runc, then for rootcell, on `node`, and asserts the
/// two saw the same; then stops the node (its errors fail the test).
fn both(node: Node, scenario: impl Fn(&Node, &str) -> Seen) {
    let seen: Vec<Seen> = HANDLERS.iter().map(|h| scenario(&node, h)).collect();
    let (runc, rootcell) = (&seen[0], &seen[1]);
    let diffs: Vec<String> = runc
        .iter()
        .zip(rootcell.iter())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("  {}: runc {:?}, rootcell {:?}", a.0, a.1, b.1))
        .collect();
    assert!(
        diffs.is_empty() && runc.len() == rootcell.len(),
        "runc and rootcell differ:\n{}\nrunc: {runc:#?}\nrootcell: {rootcell:#?}",
        diffs.join("\n")
    );
    node.stop().expect("stopping the node");
}

fn sc(c: &mut cri::ContainerConfig) -> &mut cri::LinuxContainerSecurityContext {
    c.linux.as_mut().unwrap().security_context.as_mut().unwrap()
}

fn resources(c: &mut cri::ContainerConfig) -> &mut cri::LinuxContainerResources {
    c.linux.as_mut().unwrap().resources.as_mut().unwrap()
}

fn pod_sc(p: &mut cri::PodSandboxConfig) -> &mut cri::LinuxSandboxSecurityContext {
    p.linux.as_mut().unwrap().security_context.as_mut().unwrap()
}

fn runtime_default() -> Option<cri::SecurityProfile> {
    Some(cri::SecurityProfile {
        profile_type: ProfileType::RuntimeDefault as i32,
        localhost_ref: String::new(),
    })
}

/// ExecSync that must succeed; returns stdout.
#[track_caller]
fn sh(node: &Node, id: &str, script: &str) -> String {
    let r = node
        .cri
        .exec_sync(id, &["sh", "-c", script], 10)
        .unwrap_or_else(|e| panic!("ExecSync {script:?}: {e:#}"));
    assert_eq!(
        r.exit_code,
        0,
        "ExecSync {script:?}: stdout {:?} stderr {:?}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).into_owned()
}

#[track_caller]
fn wait_exited(node: &Node, id: &str) -> cri::ContainerStatus {
    poll(WAIT, "the container to exit", || {
        let st = node.cri.container_status(id).expect("ContainerStatus");
        (st.state == cri::ContainerState::ContainerExited as i32).then_some(st)
    })
}

/// `GET /` from inside the node's network namespace; returns the body.
fn http_get(node: &Node, addr: &str) -> Option<String> {
    let mut s = node.netns().connect(addr.parse().ok()?).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// Stops and removes a pod (the test's own cleanup; the node removes any
/// pod left at stop too).
#[track_caller]
fn remove_pod(node: &Node, pod_id: &str) {
    node.cri.stop_pod(pod_id).expect("StopPodSandbox");
    node.cri.remove_pod(pod_id).expect("RemovePodSandbox");
}

/// Waits until no process is left below containerd (shims, pause,
/// containers, execs).
#[track_caller]
fn poll_processes_gone(node: &Node) -> Vec<(i32, String)> {
    let deadline = Instant::now() + WAIT;
    loop {
        let p = node.processes();
        if p.is_empty() {
            return p;
        }
        assert!(Instant::now() < deadline, "processes left: {p:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// RFC 3339 with nanoseconds (Go's RFC3339Nano: trailing zeros dropped).
fn is_rfc3339_nano(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (t.ends_with('Z') || t[19..].contains(['+', '-']))
        && t[..4].bytes().all(|c| c.is_ascii_digit())
}

// ---------------------------------------------------------------------------

/// RunPodSandbox with a hostname, DNS config, a port mapping and a
/// security context (runAsUser, read-only root, capabilities, seccomp
/// RuntimeDefault) on the pod and its container.
#[test]
fn pod_sandbox_settings() {
    let Some(node) = start_node("settings") else {
        return;
    };
    both(node, |node, h| {
        let mut seen = Seen::new();
        let mut pod = node.pod_config(&format!("settings-{h}"));
        pod.hostname = "cri-pod".into();
        pod.dns_config = Some(cri::DnsConfig {
            servers: vec!["127.0.0.53".into()],
            searches: vec!["svc.cluster.local".into(), "cluster.local".into()],
            options: vec!["ndots:5".into()],
        });
        // Distinct host ports: a stopped pod's rules go with it, but the
        // two runs stay apart anyway.
        let host_port = if h == "runc" { 18080 } else { 18081 };
        pod.port_mappings = vec![cri::PortMapping {
            protocol: cri::Protocol::Tcp as i32,
            container_port: 8080,
            host_port,
            host_ip: String::new(),
        }];
        // Two of the kubelet's "safe" sysctls: set on the sandbox (whose
        // network namespace, made for CNI, is joined by path), seen by the
        // pod's containers.
        let sysctls = &mut pod.linux.as_mut().unwrap().sysctls;
        sysctls.insert("net.ipv4.ip_unprivileged_port_start".into(), "80".into());
        sysctls.insert("kernel.shm_rmid_forced".into(), "1".into());
        let psc = pod_sc(&mut pod);
        psc.run_as_user = Some(cri::Int64Value { value: 1000 });
        psc.readonly_rootfs = true;
        psc.seccomp = runtime_default();
        let pod_id = node.cri.run_pod(&pod, h).expect("RunPodSandbox");
        let mut c = container_config("web", &["httpd", "-f", "-p", "8080", "-h", "/www"]);
        let csc = sc(&mut c);
        csc.run_as_user = Some(cri::Int64Value { value: 1000 });
        csc.readonly_rootfs = true;
        csc.seccomp = runtime_default();
        csc.capabilities = Some(cri::Capability {
            add_capabilities: vec!["NET_BIND_SERVICE".into(), "CHOWN".into()],
            drop_capabilities: vec!["ALL".into()],
            add_ambient_capabilities: vec![],
        });
        // Masked paths (the kubelet's defaults are replaced): a file
        // (busybox's applets are separate files in the image, so /bin/ls
        // is a real executable that can be masked) and a /proc file.
        csc.masked_paths = vec!["/bin/ls".into(), "/proc/keys".into()];
        let id = node.cri.run(&pod_id, &c, &pod).expect("create + start");

        note(&mut seen, "hostname", sh(node, &id, "hostname"));
        // Masked: /dev/null (char 1:3) bound over them.
        let masked = sh(
            node,
            &id,
            "stat -c '%n %F %t:%T' /bin/ls /proc/keys /bin/cat",
        );
        assert_eq!(
            lines(&masked),
            [
                "/bin/ls character special file 1:3",
                "/proc/keys character special file 1:3",
                "/bin/cat regular file 0:0"
            ],
            "{masked}"
        );
        note(&mut seen, "masked", masked);
        let ls = node.cri.exec_sync(&id, &["/bin/ls", "/"], 10);
        let ls_refused = match &ls {
            Ok(r) => r.exit_code != 0,
            Err(_) => true,
        };
        assert!(ls_refused, "a masked /bin/ls ran: {ls:?}");
        note(&mut seen, "masked /bin/ls refused", ls_refused);
        let resolv = sh(node, &id, "cat /etc/resolv.conf");
        assert!(resolv.contains("nameserver 127.0.0.53"), "{resolv}");
        assert!(
            resolv.contains("search svc.cluster.local cluster.local"),
            "{resolv}"
        );
        assert!(resolv.contains("options ndots:5"), "{resolv}");
        note(&mut seen, "resolv.conf", resolv);
        let sysctls = sh(
            node,
            &id,
            "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced",
        );
        assert_eq!(sysctls, "80\n1\n");
        note(&mut seen, "pod sysctls", sysctls);
        let ids = sh(node, &id, "id -u; id -g");
        // The gid: the image's /etc/passwd entry of uid 1000.
        assert_eq!(ids, "1000\n1000\n");
        note(&mut seen, "id", ids);
        let ro = sh(
            node,
            &id,
            "touch /x 2>&1; echo $?; touch /tmp/x 2>&1; echo $?",
        );
        assert!(ro.contains("Read-only file system"), "{ro}");
        note(&mut seen, "read-only root", ro);
        let status = sh(
            node,
            &id,
            "grep -E '^(CapBnd|CapInh|CapAmb|Seccomp|NoNewPrivs):' /proc/self/status",
        );
        assert!(status.contains("CapBnd:\t0000000000000401"), "{status}");
        assert!(status.contains("Seccomp:\t2"), "{status}");
        note(&mut seen, "/proc/self/status", status);
        // The default profile denies unshare (no CAP_SYS_ADMIN anyway).
        let denied = node
            .cri
            .exec_sync(&id, &["unshare", "-U", "true"], 10)
            .expect("ExecSync unshare");
        assert_ne!(denied.exit_code, 0);
        note(&mut seen, "unshare -U refused", denied.exit_code != 0);

        // The port mapping: the node's address, host port -> pod:8080.
        let body = poll(WAIT, "httpd through the host port", || {
            http_get(node, &format!("{NODE_IP}:{host_port}"))
        });
        assert_eq!(body, "hello from the pod\n");
        note(&mut seen, "GET through the host port", body);
        let st = node.cri.pod_status(&pod_id).expect("PodSandboxStatus");
        let ip = st.network.map(|n| n.ip).unwrap_or_default();
        assert!(ip.starts_with("10.88.7."), "pod ip {ip}");
        note(&mut seen, "pod state", st.state);
        remove_pod(node, &pod_id);
        seen
    });
}

/// Two containers in one pod share its network and IPC namespaces: one
/// reaches the other's server on localhost, and a file in the pod's
/// /dev/shm; each has a pid namespace of its own.
#[test]
fn two_containers_share_net_and_ipc() {
    let Some(node) = start_node("shared") else {
        return;
    };
    both(node, |node, h| {
        let mut seen = Seen::new();
        let pod = node.pod_config(&format!("shared-{h}"));
        let pod_id = node.cri.run_pod(&pod, h).expect("RunPodSandbox");
        let server = node
            .cri
            .run(
                &pod_id,
                &container_config("server", &["httpd", "-f", "-p", "8081", "-h", "/www"]),
                &pod,
            )
            .expect("server");
        let client = node
            .cri
            .run(
                &pod_id,
                &container_config("client", &["sleep", "1000"]),
                &pod,
            )
            .expect("client");
        let body = poll(WAIT, "the server on localhost", || {
            let r = node
                .cri
                .exec_sync(&client, &["wget", "-qO-", "http://localhost:8081/"], 10)
                .ok()?;
            (r.exit_code == 0).then(|| String::from_utf8_lossy(&r.stdout).into_owned())
        });
        assert_eq!(body, "hello from the pod\n");
        note(&mut seen, "wget localhost", body);
        sh(node, &server, "echo shared > /dev/shm/x");
        let shm = sh(node, &client, "cat /dev/shm/x");
        assert_eq!(shm, "shared\n");
        note(&mut seen, "/dev/shm", shm);
        let ns = |id: &str| -> Vec<String> {
            lines(&sh(
                node,
                id,
                "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done",
            ))
        };
        let (a, b) = (ns(&server), ns(&client));
        let same: Vec<bool> = a.iter().zip(b.iter()).map(|(x, y)| x == y).collect();
        assert_eq!(same, [true, true, true, false], "{a:?} {b:?}");
        note(&mut seen, "net, ipc, uts, pid shared", format!("{same:?}"));
        note(
            &mut seen,
            "client's pid 1",
            sh(node, &client, "cat /proc/1/cmdline | tr '\\0' ' '"),
        );
        remove_pod(node, &pod_id);
        seen
    });
}

/// ExecSync's exit codes, output and timeout; streaming Exec through the
/// streaming server's WebSocket (v4.channel.k8s.io).
#[test]
fn exec_sync_and_streaming_exec() {
    let Some(node) = start_node("exec") else {
        return;
    };
    both(node, |node, h| {
        let mut seen = Seen::new();
        let pod = node.pod_config(&format!("exec-{h}"));
        let pod_id = node.cri.run_pod(&pod, h).expect("RunPodSandbox");
        let id = node
            .cri
            .run(&pod_id, &container_config("main", &["sleep", "1000"]), &pod)
            .expect("create + start");
        let r = node
            .cri
            .exec_sync(&id, &["sh", "-c", "echo out; echo err >&2; exit 7"], 10)
            .expect("ExecSync");
        assert_eq!(r.exit_code, 7);
        assert_eq!(r.stdout, b"out\n");
        assert_eq!(r.stderr, b"err\n");
        note(&mut seen, "ExecSync exit 7", format!("{r:?}"));
        let r = node.cri.exec_sync(&id, &["true"], 10).expect("ExecSync");
        note(&mut seen, "ExecSync true", r.exit_code);
        let r = node
            .cri
            .exec_sync(&id, &["/no/such/binary"], 10)
            .map(|r| r.exit_code != 0);
        note(
            &mut seen,
            "ExecSync of a missing binary fails",
            r.unwrap_or(true),
        );
        // The timeout: an error after about a second, the process killed.
        let t0 = Instant::now();
        let r = node.cri.exec_sync(&id, &["sleep", "30"], 1);
        let took = t0.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "ExecSync timeout took {took:?}"
        );
        let timed_out = match &r {
            Err(e) => e.to_string().contains("timeout"),
            Ok(r) => r.exit_code != 0,
        };
        assert!(timed_out, "{r:?}");
        note(&mut seen, "ExecSync timed out", timed_out);
        poll(WAIT, "the timed-out exec to be killed", || {
            (!sh(node, &id, "ps -o args").contains("sleep 30")).then_some(())
        });

        let out = node
            .exec_stream(
                &id,
                &["sh", "-c", "echo streamed; echo e >&2; exit 5"],
                WAIT,
            )
            .expect("streaming exec");
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str(), out.exit_code),
            ("streamed\n", "e\n", 5),
            "{out:?}"
        );
        note(
            &mut seen,
            "Exec exit 5",
            format!("{:?}", (&out.stdout, &out.stderr, out.exit_code)),
        );
        let out = node
            .exec_stream(&id, &["sh", "-c", "seq 1 2000 | tail -1"], WAIT)
            .expect("streaming exec");
        assert_eq!(
            (out.stdout.as_str(), out.exit_code),
            ("2000\n", 0),
            "{out:?}"
        );
        note(
            &mut seen,
            "Exec exit 0",
            format!("{:?}", (&out.stdout, out.exit_code)),
        );
        // stdin through channel 0.
        let out = node
            .exec_stream_input(
                &id,
                &["sh", "-c", "head -n 1 | tr a-z A-Z; exit 2"],
                b"from stdin\n",
                WAIT,
            )
            .expect("streaming exec with stdin");
        assert_eq!(
            (out.stdout.as_str(), out.exit_code),
            ("FROM STDIN\n", 2),
            "{out:?}"
        );
        note(
            &mut seen,
            "Exec with stdin",
            format!("{:?}", (&out.stdout, out.exit_code)),
        );
        remove_pod(node, &pod_id);
        seen
    });
}

/// Container logs in the CRI format (`<RFC3339Nano> <stream> <F|P> <line>`),
/// ContainerStatus's exit code and reason, and `OOMKilled` for a container
/// killed at its memory limit.
#[test]
fn logs_exit_code_and_oom_killed() {
    let Some(node) = start_node("logs") else {
        return;
    };
    let no_swap = std::fs::read_to_string("/proc/swaps").is_ok_and(|s| s.lines().count() <= 1);
    both(node, |node, h| {
        let mut seen = Seen::new();
        let pod = node.pod_config(&format!("logs-{h}"));
        let pod_id = node.cri.run_pod(&pod, h).expect("RunPodSandbox");
        let id = node
            .cri
            .run(
                &pod_id,
                &container_config(
                    "logger",
                    &["sh", "-c", "echo one; echo two >&2; echo three; exit 3"],
                ),
                &pod,
            )
            .expect("create + start");
        let st = wait_exited(node, &id);
        assert_eq!(st.exit_code, 3);
        note(&mut seen, "exit code", st.exit_code);
        note(&mut seen, "reason", &st.reason);
        // (finished_at may be a hair before started_at: containerd takes
        // them from different events.)
        assert!(st.started_at > 0 && st.finished_at > 0, "{st:?}");
        // The log is copied from the container's pipes by containerd: it
        // may end a moment after the exit is seen.
        for line in ["three", "two"] {
            node.wait_log_line(&pod, "logger", line, WAIT).unwrap();
        }
        let log = node.log(&pod, "logger").expect("a CRI log");
        assert_eq!(st.log_path, node.log_path(&pod, "logger").to_string_lossy());
        for l in &log {
            assert!(is_rfc3339_nano(&l.time), "{l:?}");
        }
        let mut out: Vec<String> = log
            .iter()
            .filter(|l| l.stream == "stdout")
            .map(|l| format!("{} {} {}", l.stream, l.tag, l.text))
            .collect();
        out.extend(
            log.iter()
                .filter(|l| l.stream == "stderr")
                .map(|l| format!("{} {} {}", l.stream, l.tag, l.text)),
        );
        assert_eq!(
            out,
            ["stdout F one", "stdout F three", "stderr F two"],
            "{log:?}"
        );
        note(&mut seen, "log", format!("{out:?}"));

        if no_swap {
            // The hog waits a second: containerd 1.6's shim watches the
            // container's OOM events only once StartContainer is done, and
            // an OOM kill before that is reported as a plain "Error" (seen
            // with runc and rootcell alike).
            let mut c = container_config(
                "hog",
                &[
                    "sh",
                    "-c",
                    "echo start; sleep 1; exec dd if=/dev/zero of=/dev/null bs=128M count=1",
                ],
            );
            resources(&mut c).memory_limit_in_bytes = 32 << 20;
            let id = node.cri.run(&pod_id, &c, &pod).expect("create + start");
            let st = wait_exited(node, &id);
            assert_eq!(
                (st.exit_code, st.reason.as_str()),
                (137, "OOMKilled"),
                "{st:?}"
            );
            note(&mut seen, "hog", format!("{} {}", st.exit_code, st.reason));
        } else {
            skip("swap is on: a memory-limit-only hog would swap, not die");
        }
        remove_pod(node, &pod_id);
        seen
    });
}

/// UpdateContainerResources reaches the container's cgroups; ContainerStats
/// reports its CPU and memory.
#[test]
fn update_resources_and_stats() {
    let Some(node) = start_node("update") else {
        return;
    };
    both(node, |node, h| {
        let mut seen = Seen::new();
        let pod = node.pod_config(&format!("update-{h}"));
        let pod_cgroup = pod.linux.as_ref().unwrap().cgroup_parent.clone();
        let pod_id = node.cri.run_pod(&pod, h).expect("RunPodSandbox");
        let mut c = container_config(
            "main",
            &[
                "sh",
                "-c",
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo busy; sleep 1000",
            ],
        );
        resources(&mut c).memory_limit_in_bytes = 64 << 20;
        resources(&mut c).cpu_shares = 512;
        let id = node.cri.run(&pod_id, &c, &pod).expect("create + start");
        node.wait_log_line(&pod, "main", "busy", WAIT)
            .expect("busy loop done");
        let cg = |ctrl: &str, file: &str| -> String {
            read_file(
                &std::path::Path::new(&format!("/sys/fs/cgroup/{ctrl}{pod_cgroup}/{id}"))
                    .join(file),
            )
            .trim()
            .to_string()
        };
        if cgroup_v1_controller("memory") {
            assert_eq!(
                cg("memory", "memory.limit_in_bytes"),
                (64u64 << 20).to_string()
            );
            assert_eq!(cg("cpu", "cpu.shares"), "512");
        }
        node.cri
            .update_resources(
                &id,
                cri::LinuxContainerResources {
                    memory_limit_in_bytes: 96 << 20,
                    cpu_period: 100_000,
                    cpu_quota: 50_000,
                    cpu_shares: 256,
                    ..Default::default()
                },
            )
            .expect("UpdateContainerResources");
        if cgroup_v1_controller("memory") {
            let after = format!(
                "{} {} {}",
                cg("memory", "memory.limit_in_bytes"),
                cg("cpu", "cpu.cfs_quota_us"),
                cg("cpu", "cpu.shares")
            );
            assert_eq!(after, format!("{} 50000 256", 96u64 << 20));
            note(&mut seen, "cgroup after update", after);
        }
        let stats = node.cri.stats(&id).expect("ContainerStats");
        assert_eq!(
            stats.attributes.as_ref().map(|a| a.id.as_str()),
            Some(id.as_str())
        );
        let cpu = stats
            .cpu
            .and_then(|c| c.usage_core_nano_seconds)
            .map(|v| v.value)
            .unwrap_or(0);
        let mem = stats
            .memory
            .and_then(|m| m.working_set_bytes)
            .map(|v| v.value)
            .unwrap_or(0);
        assert!(cpu > 0, "cpu usage {cpu}");
        assert!(mem > 0 && mem < 96 << 20, "working set {mem}");
        note(&mut seen, "stats has cpu and memory", cpu > 0 && mem > 0);
        remove_pod(node, &pod_id);
        seen
    });
}

/// StopContainer with a grace period: a container that traps TERM exits at
/// once with its own code; one that ignores TERM is killed at the end of
/// the grace period.
#[test]
fn stop_container_grace_period() {
    let Some(node) = start_node("stop") else {
        return;
    };
    both(node, |node, h| {
        let mut seen = Seen::new();
        let pod = node.pod_config(&format!("stop-{h}"));
        let pod_id = node.cri.run_pod(&pod, h).expect("RunPodSandbox");
        let trapper = node
            .cri
            .run(
                &pod_id,
                &container_config(
                    "trapper",
                    &["sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done"],
                ),
                &pod,
            )
            .expect("trapper");
        let ignorer = node
            .cri
            .run(
                &pod_id,
                &container_config(
                    "ignorer",
                    &[
                        "sh",
                        "-c",
                        "trap '' TERM; echo ready; while :; do sleep 0.1; done",
                    ],
                ),
                &pod,
            )
            .expect("ignorer");
        node.wait_log_line(&pod, "trapper", "ready", WAIT).unwrap();
        node.wait_log_line(&pod, "ignorer", "ready", WAIT).unwrap();

        let t0 = Instant::now();
        node.cri.stop(&trapper, 10).expect("StopContainer trapper");
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(5), "the trapper took {took:?}");
        let st = node.cri.container_status(&trapper).unwrap();
        assert_eq!(st.exit_code, 0, "{st:?}");
        node.wait_log_line(&pod, "trapper", "got TERM", WAIT)
            .unwrap();
        note(
            &mut seen,
            "trapper",
            format!("exit {} reason {}", st.exit_code, st.reason),
        );

        let t0 = Instant::now();
        node.cri.stop(&ignorer, 2).expect("StopContainer ignorer");
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(8),
            "the ignorer took {took:?}"
        );
        let st = node.cri.container_status(&ignorer).unwrap();
        assert_eq!(st.exit_code, 137, "{st:?}");
        note(
            &mut seen,
            "ignorer",
            format!("exit {} reason {}", st.exit_code, st.reason),
        );
        remove_pod(node, &pod_id);
        seen
    });
}

/// StopPodSandbox + RemovePodSandbox leave no mount (in containerd's mount
/// namespace), no cgroup, no network namespace (nor its IPAM lease, veth
/// or host port rules) and no process behind.
#[test]
fn pod_removal_leaves_nothing() {
    let Some(node) = start_node("remove") else {
        return;
    };
    both(node, |node, h| {
        let mut seen = Seen::new();
        let mut pod = node.pod_config(&format!("remove-{h}"));
        pod.port_mappings = vec![cri::PortMapping {
            protocol: cri::Protocol::Tcp as i32,
            container_port: 8080,
            host_port: 18090,
            host_ip: String::new(),
        }];
        let pod_cgroup = pod.linux.as_ref().unwrap().cgroup_parent.clone();
        let pod_id = node.cri.run_pod(&pod, h).expect("RunPodSandbox");
        let mut ids = vec![pod_id.clone()];
        for name in ["a", "b"] {
            ids.push(
                node.cri
                    .run(&pod_id, &container_config(name, &["sleep", "1000"]), &pod)
                    .expect("create + start"),
            );
        }
        // A detached process of an exec, outliving the exec.
        sh(node, &ids[1], "sleep 999 >/dev/null 2>&1 &");
        let mounts_of = |mi: &str| -> Vec<String> {
            mi.lines()
                .filter(|l| ids.iter().any(|id| l.contains(id.as_str())))
                .map(String::from)
                .collect()
        };
        let before = mounts_of(&node.mountinfo().unwrap());
        // Each container's rootfs, the sandbox's too, and the pod's shm.
        assert!(before.len() >= 4, "{before:#?}");
        assert_eq!(node.netns_files().len(), 1, "{:?}", node.netns_files());
        let procs = node.processes();
        assert!(
            procs.iter().any(|(_, c)| c == "sleep 999") && procs.iter().any(|(_, c)| c == "/pause"),
            "{procs:?}"
        );
        assert!(!node.cgroups_below(&pod_cgroup).is_empty());
        let leases = || -> Vec<String> {
            std::fs::read_dir(node.dir.join("cni-ipam/rootcell-cri"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("10."))
                .collect()
        };
        assert_eq!(leases().len(), 1, "{:?}", leases());
        // The pod's veth on the node's bridge, and its host port's rules.
        let veths = || -> Vec<String> {
            let links = node.netns_command(&["ip", "-o", "link"]).unwrap();
            links
                .lines()
                .filter(|l| l.contains("veth"))
                .map(String::from)
                .collect()
        };
        let port_rules = || -> usize {
            let nat = node.netns_command(&["iptables-save", "-t", "nat"]).unwrap();
            nat.lines().filter(|l| l.contains("18090")).count()
        };
        assert_eq!(veths().len(), 1, "{:?}", veths());
        assert!(port_rules() > 0);

        remove_pod(node, &pod_id);
        let left = mounts_of(&node.mountinfo().unwrap());
        assert!(left.is_empty(), "mounts left: {left:#?}");
        note(&mut seen, "mounts left", left.len());
        assert!(node.netns_files().is_empty(), "{:?}", node.netns_files());
        note(&mut seen, "netns left", node.netns_files().len());
        assert!(leases().is_empty(), "IP leases left: {:?}", leases());
        assert!(veths().is_empty(), "veths left: {:?}", veths());
        assert_eq!(port_rules(), 0, "host port rules left");
        // The shim exits a moment after its last task is deleted.
        let procs = poll_processes_gone(node);
        note(&mut seen, "processes left", procs.len());
        let cgroups = node.cgroups_below(&pod_cgroup);
        assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
        note(&mut seen, "cgroups left", cgroups.len());
        assert!(node.cri.list_pods().unwrap().is_empty());
        assert!(node.cri.list_containers("").unwrap().is_empty());
        assert!(node.remove_cgroup(&pod_cgroup).is_empty());
        seen
    });
}

/// Configs the runtime refuses: the CRI error carries the runtime's own
/// message (containerd's shim reads it from the runtime's `--log`), not a
/// bare "exit status 1", and nothing is left behind.
#[test]
fn runtime_errors_reach_the_cri_caller() {
    let Some(node) = start_node("errors") else {
        return;
    };
    both(node, |node, h| {
        let mut seen = Seen::new();
        // A sysctl that does not exist, on the pod: RunPodSandbox's
        // create of the pause container fails.
        let mut pod = node.pod_config(&format!("errors-sysctl-{h}"));
        let pod_cgroup = pod.linux.as_ref().unwrap().cgroup_parent.clone();
        pod.linux
            .as_mut()
            .unwrap()
            .sysctls
            .insert("net.ipv4.rootcell_no_such_key".into(), "1".into());
        let mounts_before = node.mountinfo().unwrap().lines().count();
        let err = node
            .cri
            .run_pod(&pod, h)
            .expect_err("RunPodSandbox with a sysctl that does not exist");
        let msg = format!("{err:#}");
        eprintln!("{h}: RunPodSandbox: {msg}");
        assert!(msg.contains("rootcell_no_such_key"), "{h}: {msg}");
        // rootcell's own message (the JSON path of the field), passed on
        // by the shim from the runtime's --log.
        if h == "rootcell" && !runtime_is_runc() {
            assert!(
                msg.contains("OCI runtime create failed: container init: linux.sysctl.net.ipv4.rootcell_no_such_key: "),
                "{msg}"
            );
        }
        assert_eq!(node.mountinfo().unwrap().lines().count(), mounts_before);
        poll_processes_gone(node);
        note(&mut seen, "bad sysctl names the key", true);
        assert!(node.cri.list_pods().unwrap().is_empty());
        assert!(node.netns_files().is_empty(), "{:?}", node.netns_files());
        assert!(node.cgroups_below(&pod_cgroup).is_empty());
        node.remove_cgroup(&pod_cgroup);

        // A command that does not exist: StartContainer (where containerd
        // runs the runtime's create) fails.
        let pod = node.pod_config(&format!("errors-cmd-{h}"));
        let pod_cgroup = pod.linux.as_ref().unwrap().cgroup_parent.clone();
        let pod_id = node.cri.run_pod(&pod, h).expect("RunPodSandbox");
        let c = container_config("bad", &["/no/such/binary"]);
        let id = node.cri.create(&pod_id, &c, &pod).expect("CreateContainer");
        let err = node
            .cri
            .start(&id)
            .expect_err("StartContainer of a missing binary");
        let msg = format!("{err:#}");
        eprintln!("{h}: StartContainer: {msg}");
        assert!(msg.contains("/no/such/binary"), "{h}: {msg}");
        if h == "rootcell" && !runtime_is_runc() {
            assert!(
                msg.contains("OCI runtime create failed: container init: process.args[0]: \"/no/such/binary\": no such executable"),
                "{msg}"
            );
        }
        note(&mut seen, "missing binary names the path", true);
        let st = node.cri.container_status(&id).unwrap();
        note(&mut seen, "state after a failed start", st.state);
        node.cri.remove(&id).expect("RemoveContainer");
        let mi = node.mountinfo().unwrap();
        assert!(
            !mi.contains(&id),
            "the failed container's mounts are left: {mi}"
        );
        let below: Vec<_> = node
            .cgroups_below(&pod_cgroup)
            .into_iter()
            .filter(|d| d.to_string_lossy().contains(&id))
            .collect();
        assert!(below.is_empty(), "cgroups left: {below:?}");
        remove_pod(node, &pod_id);
        poll_processes_gone(node);
        node.remove_cgroup(&pod_cgroup);
        seen
    });
}
