//! A private Kubernetes-style node for rootcell's CRI tests, benchmarks and
//! by-hand trials: containerd 1.6 (Debian's) with its CRI plugin, in mount,
//! network and pid namespaces of its own, with CNI (a bridge with
//! host-local IPAM on a private subnet, portmap) inside that network
//! namespace, two runtime handlers (`runc` and `rootcell`, both
//! `io.containerd.runc.v2`), the cgroupfs driver, and a read-only image
//! registry on its loopback serving busybox and pause images built here.
//! Everything (containerd's root, state and socket, CNI config and IPAM
//! state, logs, the runtimes' state roots) lives under the node's
//! directory; [`Node::stop`] (or dropping the node) removes the pods, kills
//! containerd by pid, removes the cgroups and the directory.
//!
//! ```no_run
//! use rootcell_cri_node::{container_config, Node, NodeOptions, BUSYBOX};
//! let node = Node::start(NodeOptions::new("/tmp/node".into(), "/usr/local/bin/rootcell".into()))?;
//! let pod = node.pod_config("web");
//! let pod_id = node.cri.run_pod(&pod, "rootcell")?;
//! let ctr = container_config("main", &["echo", "hello"]);
//! let id = node.cri.create(&pod_id, &ctr, &pod)?;
//! node.cri.start(&id)?;
//! node.wait_log_line(&pod, "main", "hello", std::time::Duration::from_secs(10))?;
//! node.stop()?;
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod image;
pub mod netns;
pub mod registry;
pub mod stream;

pub use k8s_cri::v1 as cri;
pub use netns::NetNs;
pub use stream::ExecOutput;

use anyhow::{anyhow, bail, Context, Result};
use cri::image_service_client::ImageServiceClient;
use cri::runtime_service_client::RuntimeServiceClient;
use std::fs;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// The registry's host name in image references (`.test` never resolves:
/// certs.d sends it to the node's own registry, with no fallback).
pub const REGISTRY_HOST: &str = "registry.rootcell.test";
/// The busybox image (applets as separate files: hard links).
pub const BUSYBOX: &str = "registry.rootcell.test/busybox:latest";
/// The pause image, containerd's `sandbox_image`.
pub const PAUSE: &str = "registry.rootcell.test/pause:latest";
/// The runc handler's runtime.
pub const RUNC: &str = "/usr/sbin/runc";
/// The pods' subnet, inside the node's network namespace only.
pub const POD_SUBNET: &str = "10.88.7.0/24";
/// The bridge's (and so the node's) address on that subnet.
pub const NODE_IP: &str = "10.88.7.1";
/// How long one CRI call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The node could not start because the machine lacks something
/// (containerd is not installed, its CRI plugin does not load): tests skip
/// on this error only.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the CRI node is unavailable here: {}", self.0)
    }
}

impl std::error::Error for Unavailable {}

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Everything of the node goes here (created; removed at stop unless
    /// `keep_dir`). Not under /run, /opt or /var/lib/cni, which the node's
    /// mount namespace covers.
    pub dir: PathBuf,
    /// The `rootcell` handler's `BinaryName`.
    pub runtime_binary: PathBuf,
    /// Extra handlers: (name, BinaryName), e.g. ("crun", "/usr/bin/crun").
    pub extra_handlers: Vec<(String, PathBuf)>,
    /// Keep `dir` at stop (its logs), e.g. to look at a failure.
    pub keep_dir: bool,
    /// containerd's log level (`info`; `debug` shows the runtimes' calls).
    pub log_level: String,
}

impl NodeOptions {
    pub fn new(dir: PathBuf, runtime_binary: PathBuf) -> NodeOptions {
        NodeOptions {
            dir,
            runtime_binary,
            extra_handlers: Vec::new(),
            keep_dir: false,
            log_level: "info".into(),
        }
    }
}

/// A CRI client: the RuntimeService and ImageService over containerd's
/// unix socket, with blocking wrappers for tests and scripts (each call
/// times out after [`CALL_TIMEOUT`]). `Sync`: threads may share one.
pub struct Cri {
    rt: Arc<tokio::runtime::Runtime>,
    channel: Channel,
    socket: PathBuf,
}

/// Turns a gRPC status into an error that carries its code and message.
fn status_err(what: &str, s: tonic::Status) -> anyhow::Error {
    anyhow!("{what}: {:?}: {}", s.code(), s.message())
}

impl Cri {
    /// A client of the CRI socket at `socket` (connects lazily).
    pub fn connect(socket: &Path) -> Result<Cri> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cri-client")
            .enable_all()
            .build()
            .context("start a tokio runtime")?;
        let path = socket.to_path_buf();
        let channel = {
            let _guard = rt.enter();
            tonic::transport::Endpoint::try_from("http://[::]:50051")?.connect_with_connector_lazy(
                tower::service_fn(move |_: tonic::transport::Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                            tokio::net::UnixStream::connect(path).await?,
                        ))
                    }
                }),
            )
        };
        Ok(Cri {
            rt: Arc::new(rt),
            channel,
            socket: socket.to_path_buf(),
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A RuntimeService client (cheap: clones share the connection), for
    /// async callers (run on [`Cri::tokio`]).
    pub fn runtime_client(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone())
    }

    /// An ImageService client.
    pub fn image_client(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone())
    }

    /// The tokio runtime the clients run on.
    pub fn tokio(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }

    /// Runs `f` to completion on the client's runtime, with [`CALL_TIMEOUT`].
    pub fn block_on<T>(&self, what: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
        self.rt
            .block_on(async { tokio::time::timeout(CALL_TIMEOUT, f).await })
            .map_err(|_| anyhow!("{what}: no answer after {CALL_TIMEOUT:?}"))?
    }

    /// One RuntimeService call: `call` makes the request on a client; a
    /// gRPC status becomes an error naming `what`.
    fn rpc<T, Fut>(
        &self,
        what: &str,
        call: impl FnOnce(RuntimeServiceClient<Channel>) -> Fut,
    ) -> Result<T>
    where
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = self.runtime_client();
        self.block_on(what, async move {
            call(client)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| status_err(what, s))
        })
    }

    pub fn version(&self) -> Result<cri::VersionResponse> {
        self.rpc("Version", |mut c| async move {
            c.version(cri::VersionRequest::default()).await
        })
    }

    pub fn status(&self) -> Result<cri::StatusResponse> {
        self.rpc("Status", |mut c| async move {
            c.status(cri::StatusRequest { verbose: false }).await
        })
    }

    /// PullImage; returns the image ref.
    pub fn pull(&self, image: &str) -> Result<String> {
        let mut c = self.image_client();
        let req = cri::PullImageRequest {
            image: Some(image_spec(image)),
            ..Default::default()
        };
        self.block_on("PullImage", async move {
            Ok(c.pull_image(req)
                .await
                .map_err(|s| status_err(&format!("PullImage {image}"), s))?
                .into_inner()
                .image_ref)
        })
    }

    /// RunPodSandbox with `handler`; returns the pod's id.
    pub fn run_pod(&self, config: &cri::PodSandboxConfig, handler: &str) -> Result<String> {
        let req = cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.to_string(),
        };
        self.rpc("RunPodSandbox", |mut c| async move {
            c.run_pod_sandbox(req).await
        })
        .map(|r| r.pod_sandbox_id)
    }

    pub fn stop_pod(&self, pod_id: &str) -> Result<()> {
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: pod_id.to_string(),
        };
        self.rpc("StopPodSandbox", |mut c| async move {
            c.stop_pod_sandbox(req).await
        })
        .map(drop)
    }

    pub fn remove_pod(&self, pod_id: &str) -> Result<()> {
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod_id.to_string(),
        };
        self.rpc("RemovePodSandbox", |mut c| async move {
            c.remove_pod_sandbox(req).await
        })
        .map(drop)
    }

    pub fn pod_status(&self, pod_id: &str) -> Result<cri::PodSandboxStatus> {
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod_id.to_string(),
            verbose: false,
        };
        self.rpc("PodSandboxStatus", |mut c| async move {
            c.pod_sandbox_status(req).await
        })?
        .status
        .ok_or_else(|| anyhow!("PodSandboxStatus: no status"))
    }

    pub fn list_pods(&self) -> Result<Vec<cri::PodSandbox>> {
        self.rpc("ListPodSandbox", |mut c| async move {
            c.list_pod_sandbox(cri::ListPodSandboxRequest::default())
                .await
        })
        .map(|r| r.items)
    }

    /// CreateContainer in the pod `pod_id` (started with `pod`).
    pub fn create(
        &self,
        pod_id: &str,
        config: &cri::ContainerConfig,
        pod: &cri::PodSandboxConfig,
    ) -> Result<String> {
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: pod_id.to_string(),
            config: Some(config.clone()),
            sandbox_config: Some(pod.clone()),
        };
        self.rpc("CreateContainer", |mut c| async move {
            c.create_container(req).await
        })
        .map(|r| r.container_id)
    }

    pub fn start(&self, id: &str) -> Result<()> {
        let req = cri::StartContainerRequest {
            container_id: id.to_string(),
        };
        self.rpc("StartContainer", |mut c| async move {
            c.start_container(req).await
        })
        .map(drop)
    }

    /// CreateContainer + StartContainer; returns the container's id.
    pub fn run(
        &self,
        pod_id: &str,
        config: &cri::ContainerConfig,
        pod: &cri::PodSandboxConfig,
    ) -> Result<String> {
        let id = self.create(pod_id, config, pod)?;
        self.start(&id)?;
        Ok(id)
    }

    /// StopContainer with a grace period of `timeout` seconds.
    pub fn stop(&self, id: &str, timeout: i64) -> Result<()> {
        let req = cri::StopContainerRequest {
            container_id: id.to_string(),
            timeout,
        };
        self.rpc("StopContainer", |mut c| async move {
            c.stop_container(req).await
        })
        .map(drop)
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let req = cri::RemoveContainerRequest {
            container_id: id.to_string(),
        };
        self.rpc("RemoveContainer", |mut c| async move {
            c.remove_container(req).await
        })
        .map(drop)
    }

    pub fn container_status(&self, id: &str) -> Result<cri::ContainerStatus> {
        let req = cri::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        };
        self.rpc("ContainerStatus", |mut c| async move {
            c.container_status(req).await
        })?
        .status
        .ok_or_else(|| anyhow!("ContainerStatus: no status"))
    }

    /// Containers, of one pod when `pod_id` is not empty.
    pub fn list_containers(&self, pod_id: &str) -> Result<Vec<cri::Container>> {
        let req = cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                pod_sandbox_id: pod_id.to_string(),
                ..Default::default()
            }),
        };
        self.rpc("ListContainers", |mut c| async move {
            c.list_containers(req).await
        })
        .map(|r| r.containers)
    }

    /// ExecSync with a timeout in seconds (0: none).
    pub fn exec_sync(&self, id: &str, cmd: &[&str], timeout: i64) -> Result<cri::ExecSyncResponse> {
        let req = cri::ExecSyncRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout,
        };
        self.rpc("ExecSync", |mut c| async move { c.exec_sync(req).await })
    }

    /// Exec (the streaming one): returns the URL on the streaming server.
    pub fn exec_url(&self, id: &str, cmd: &[&str]) -> Result<String> {
        self.exec_url_with(id, cmd, false)
    }

    /// Exec with `stdin` attached or not.
    pub fn exec_url_with(&self, id: &str, cmd: &[&str], stdin: bool) -> Result<String> {
        let req = cri::ExecRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty: false,
            stdin,
            stdout: true,
            stderr: true,
        };
        self.rpc("Exec", |mut c| async move { c.exec(req).await })
            .map(|r| r.url)
    }

    pub fn update_resources(&self, id: &str, linux: cri::LinuxContainerResources) -> Result<()> {
        let req = cri::UpdateContainerResourcesRequest {
            container_id: id.to_string(),
            linux: Some(linux),
            ..Default::default()
        };
        self.rpc("UpdateContainerResources", |mut c| async move {
            c.update_container_resources(req).await
        })
        .map(drop)
    }

    pub fn stats(&self, id: &str) -> Result<cri::ContainerStats> {
        let req = cri::ContainerStatsRequest {
            container_id: id.to_string(),
        };
        self.rpc("ContainerStats", |mut c| async move {
            c.container_stats(req).await
        })?
        .stats
        .ok_or_else(|| anyhow!("ContainerStats: no stats"))
    }

    /// Stops and removes every pod (best effort; the first error is
    /// returned after all were tried).
    pub fn remove_all_pods(&self) -> Result<()> {
        let mut first = None;
        for p in self.list_pods()? {
            for r in [self.stop_pod(&p.id), self.remove_pod(&p.id)] {
                if let Err(e) = r {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Makes the pod cgroup `<parent>/<name>` in every hierarchy (what the
/// kubelet does with the cgroupfs driver) and returns its path for
/// `linux.cgroup_parent`.
pub fn make_pod_cgroup(parent: &str, name: &str) -> String {
    let rel = format!("{parent}/{name}");
    for h in cgroup_hierarchies() {
        let _ = fs::create_dir_all(h.join(&rel));
    }
    format!("/{rel}")
}

/// A pod config for the node in `node_dir` whose cgroup parent is
/// `cgroup_parent`: name, uid, namespace `default`, hostname = name, log
/// directory `<node_dir>/logs/<name>`, the pod cgroup (made here), the
/// pod's own network and IPC namespaces and a pid namespace per container
/// (the kubelet's default).
pub fn pod_config(node_dir: &Path, cgroup_parent: &str, name: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.to_string(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.to_string(),
        log_directory: node_dir
            .join("logs")
            .join(name)
            .to_string_lossy()
            .into_owned(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: make_pod_cgroup(cgroup_parent, name),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Pod as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ipc: cri::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn image_spec(image: &str) -> cri::ImageSpec {
    cri::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    }
}

/// A container config: busybox running `args`, its log at `<name>.log` in
/// the pod's log directory, the pod's network and IPC namespaces and a pid
/// namespace of its own, no other security settings (tests add them).
pub fn container_config(name: &str, args: &[&str]) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.to_string(),
            attempt: 0,
        }),
        image: Some(image_spec(BUSYBOX)),
        command: args.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources::default()),
            security_context: Some(cri::LinuxContainerSecurityContext {
                // The kubelet's default, as in [`pod_config`]: without it
                // the container joins the pod's (pause's) pid namespace.
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Pod as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ipc: cri::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// One line of a CRI container log: `<RFC3339Nano> <stream> <P|F> <text>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: String,
    pub stream: String,
    /// `F` (full line) or `P` (partial).
    pub tag: String,
    pub text: String,
}

/// Parses a CRI log file's contents; a line not in the format is an error.
pub fn parse_cri_log(content: &str) -> Result<Vec<LogLine>> {
    content
        .lines()
        .map(|l| {
            let mut it = l.splitn(4, ' ');
            match (it.next(), it.next(), it.next(), it.next()) {
                (Some(time), Some(stream), Some(tag), text) => Ok(LogLine {
                    time: time.to_string(),
                    stream: stream.to_string(),
                    tag: tag.to_string(),
                    text: text.unwrap_or("").to_string(),
                }),
                _ => bail!("not a CRI log line: {l:?}"),
            }
        })
        .collect()
}

/// One pod started by [`start_pod`].
#[derive(Debug, Clone)]
pub struct PodStart {
    pub name: String,
    pub pod_id: String,
    /// RunPodSandbox + CreateContainer + StartContainer until the
    /// container's first output line is in its CRI log.
    pub elapsed: Duration,
}

/// The command of [`start_pod`]'s container: one line, then it exits.
pub const READY_ARGS: &[&str] = &["echo", "ready"];

/// Starts pod `name` with `handler` the way the kubelet does (RunPodSandbox,
/// then CreateContainer and StartContainer of a busybox container running
/// [`READY_ARGS`]) and waits for the container's first output line in its
/// CRI log: the pod start latency of bench/cri.sh. The pod cgroup is made
/// first (not timed), as the kubelet makes it before RunPodSandbox.
pub fn start_pod(
    cri: &Cri,
    node_dir: &Path,
    cgroup_parent: &str,
    name: &str,
    handler: &str,
) -> Result<PodStart> {
    let pod = pod_config(node_dir, cgroup_parent, name);
    let log = Path::new(&pod.log_directory).join("main.log");
    let t0 = Instant::now();
    let pod_id = cri.run_pod(&pod, handler)?;
    cri.run(&pod_id, &container_config("main", READY_ARGS), &pod)
        .with_context(|| format!("pod {name}"))?;
    wait_log_line(&log, "ready", CALL_TIMEOUT)?;
    Ok(PodStart {
        name: name.to_string(),
        pod_id,
        elapsed: t0.elapsed(),
    })
}

/// Starts the pods `names` with `handler` ([`start_pod`]), all at once on
/// threads of their own when `parallel`, else one after the other; returns
/// each result and the time until the last had its first output.
pub fn start_pods(
    cri: &Cri,
    node_dir: &Path,
    cgroup_parent: &str,
    names: &[String],
    handler: &str,
    parallel: bool,
) -> (Vec<Result<PodStart>>, Duration) {
    // The pod cgroups first: not part of the time.
    for n in names {
        make_pod_cgroup(cgroup_parent, n);
    }
    let t0 = Instant::now();
    let one = |n: &String| start_pod(cri, node_dir, cgroup_parent, n, handler);
    let results = if parallel {
        std::thread::scope(|s| {
            let hs: Vec<_> = names.iter().map(|n| s.spawn(move || one(n))).collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("pod start panicked")))
                })
                .collect()
        })
    } else {
        names.iter().map(one).collect()
    };
    (results, t0.elapsed())
}

/// Stops and removes the pods `pods` and their pod cgroups (the kubelet's
/// part); the first error after all were tried.
pub fn remove_pods(cri: &Cri, cgroup_parent: &str, pods: &[PodStart]) -> Result<()> {
    let mut first = None;
    for p in pods {
        // containerd 1.6's shim can disconnect while it kills a container
        // that has just exited ("failed to kill container …: ttrpc: closed",
        // seen with the runc handler under load); the kubelet calls
        // StopPodSandbox again on its next sync, and so does this, once.
        let stopped = cri.stop_pod(&p.pod_id).or_else(|e| {
            eprintln!(
                "rootcell-cri-node: StopPodSandbox {}: {e:#}; once more, as the kubelet would",
                p.pod_id
            );
            cri.stop_pod(&p.pod_id)
        });
        for r in [stopped, cri.remove_pod(&p.pod_id)] {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        let left = remove_cgroup_tree(&format!("{cgroup_parent}/{}", p.name));
        if !left.is_empty() {
            first.get_or_insert(anyhow!("cgroups left: {left:?}"));
        }
    }
    first.map_or(Ok(()), Err)
}

/// A running node; see the crate's documentation.
pub struct Node {
    pub dir: PathBuf,
    pub cri: Cri,
    /// The `unshare` that holds containerd's namespaces (containerd is its
    /// only child, pid 1 of the new pid namespace).
    unshare: Option<Child>,
    /// The pid namespace's init (see [`INIT`]), containerd's parent.
    init_pid: i32,
    containerd_pid: i32,
    netns: NetNs,
    registry: Option<registry::Registry>,
    cgroup_parent: String,
    handlers: Vec<(String, PathBuf)>,
    keep_dir: bool,
    stopped: bool,
}

/// Directories covered with a tmpfs in the node's mount namespace:
/// containerd 1.6 keeps shim sockets and pod netns files under /run
/// (/var/run/netns is hard-coded), libcni caches results in /var/lib/cni,
/// and /opt/containerd is its plugins' default directory. A machine that
/// never ran CNI has no /var/lib/cni: the node makes it (empty, as any CNI
/// run would leave it) to mount over it, the one thing it leaves on the
/// host's filesystem.
const COVERED: &[&str] = &["/run", "/var/lib/cni", "/opt"];

/// The pid namespace's init: a shell that runs containerd and reaps every
/// orphan reparented to it (a shim's first process, an exec's
/// leftovers...; containerd as pid 1 would leave them zombies) while it
/// waits, passes SIGTERM/SIGINT on and ends with containerd. Its exit
/// ends the namespace: the kernel kills whatever is left in it.
const INIT: &str = "containerd --config \"$1\" &\n\
    pid=$!\n\
    trap 'kill -TERM $pid' TERM INT\n\
    while kill -0 $pid 2>/dev/null; do wait $pid; done\n";

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Node {
    /// Starts containerd with its CRI plugin and everything around it, and
    /// pulls the pause and busybox images. The error is [`Unavailable`]
    /// when the machine cannot run the node at all.
    pub fn start(opts: NodeOptions) -> Result<Node> {
        if Command::new("containerd")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Err(
                Unavailable("containerd is not installed (package containerd)".into()).into(),
            );
        }
        let dir = opts.dir.clone();
        for c in COVERED {
            if dir.starts_with(c) {
                bail!(
                    "the node's dir {} is under {c}, which the node covers",
                    dir.display()
                );
            }
        }
        if fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
            bail!(
                "{} is not empty: another node runs there, or one was killed \
                 (then remove the directory)",
                dir.display()
            );
        }
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        let bin_dir = dir.join("bin");
        let mut handlers = vec![
            ("runc".to_string(), PathBuf::from(RUNC)),
            (
                "rootcell".to_string(),
                install_runtime(&opts.runtime_binary, &bin_dir)?,
            ),
        ];
        for (name, path) in &opts.extra_handlers {
            handlers.push((name.clone(), install_runtime(path, &bin_dir)?));
        }

        let images = vec![
            image::busybox("busybox", "latest")?,
            image::pause("pause", "latest", &dir.join("build"))?,
        ];
        let cgroup_parent = format!(
            "rootcell-cri-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        write_cni_config(&dir)?;
        write_containerd_config(&dir, &handlers, &opts.log_level)?;
        for h in cgroup_hierarchies() {
            let _ = fs::create_dir_all(h.join(&cgroup_parent));
        }

        let log = fs::File::create(dir.join("containerd.log"))?;
        let script = format!(
            "set -e\n{}\nip link set lo up\nset +e\n{INIT}",
            COVERED
                .iter()
                .map(|c| format!("mkdir -p {c}\nmount -t tmpfs -o mode=0755 tmpfs {c}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let mut unshare = Command::new("unshare")
            .args([
                "--mount",
                "--net",
                "--pid",
                "--fork",
                "--mount-proc",
                "--kill-child",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                &script,
                "sh",
            ])
            .arg(dir.join("config.toml"))
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawn unshare ... containerd")?;
        let upid = unshare.id() as i32;
        let (init_pid, containerd_pid) = match wait_for_containerd(upid, &mut unshare) {
            Ok(p) => p,
            Err(e) => {
                let _ = unshare.kill();
                let _ = unshare.wait();
                remove_cgroup_tree(&cgroup_parent);
                let e = e.context(log_tail(&dir));
                // As `stop` would: a node that never ran leaves nothing.
                if !opts.keep_dir {
                    remove_dir(&dir);
                }
                return Err(e);
            }
        };
        // From here on, Drop cleans up.
        let netns = NetNs::of_pid(containerd_pid)?;
        let mut node = Node {
            cri: Cri::connect(&dir.join("containerd.sock"))?,
            dir: dir.clone(),
            unshare: Some(unshare),
            init_pid,
            containerd_pid,
            netns: NetNs::of_pid(containerd_pid)?,
            registry: None,
            cgroup_parent,
            handlers,
            keep_dir: opts.keep_dir,
            stopped: false,
        };
        fs::write(dir.join("containerd.pid"), format!("{containerd_pid}\n"))?;
        fs::write(
            dir.join("cgroup-parent"),
            format!("{}\n", node.cgroup_parent),
        )?;
        let registry = registry::Registry::serve(netns, &images)?;
        write_hosts_toml(&dir, registry.addr())?;
        node.registry = Some(registry);
        node.wait_ready()?;
        node.cri.pull(PAUSE)?;
        node.cri.pull(BUSYBOX)?;
        Ok(node)
    }

    /// Waits for the CRI service, then for its runtime and network to be
    /// ready (the CNI config loaded).
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last;
        loop {
            if let Some(status) = self
                .unshare
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(Unavailable(format!(
                    "containerd exited ({status}): {}",
                    log_tail(&self.dir)
                ))
                .into());
            }
            match self.cri.status() {
                Ok(s) => {
                    let conds = s.status.map(|s| s.conditions).unwrap_or_default();
                    if conds.len() >= 2 && conds.iter().all(|c| c.status) {
                        return Ok(());
                    }
                    last = format!("{conds:?}");
                }
                Err(e) => {
                    last = e.to_string();
                    // containerd answers, without the CRI service (for
                    // a few seconds): its CRI plugin did not load.
                    if last.contains("Unimplemented")
                        && Instant::now() + Duration::from_secs(25) > deadline
                    {
                        return Err(Unavailable(format!(
                            "containerd's CRI plugin did not start ({last}): {}",
                            log_tail(&self.dir)
                        ))
                        .into());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(Unavailable(format!(
                    "containerd's CRI service not ready after 30 s ({last}): {}",
                    log_tail(&self.dir)
                ))
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// containerd's pid (in the machine's pid namespace).
    pub fn containerd_pid(&self) -> i32 {
        self.containerd_pid
    }

    /// containerd's (and the pods' host ports') network namespace.
    pub fn netns(&self) -> &NetNs {
        &self.netns
    }

    /// The handlers: (name, BinaryName).
    pub fn handlers(&self) -> &[(String, PathBuf)] {
        &self.handlers
    }

    /// The registry's address (in the node's network namespace).
    pub fn registry_addr(&self) -> Option<std::net::SocketAddr> {
        self.registry.as_ref().map(|r| r.addr())
    }

    /// The cgroup every pod's cgroup is made under (relative to each
    /// hierarchy's root, without a leading `/`).
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// Makes the pod cgroup `<cgroup_parent>/<name>` in every hierarchy
    /// (what the kubelet does with the cgroupfs driver) and returns its
    /// path for `linux.cgroup_parent`.
    pub fn pod_cgroup(&self, name: &str) -> String {
        make_pod_cgroup(&self.cgroup_parent, name)
    }

    /// The pod's log directory.
    pub fn log_dir(&self, pod_name: &str) -> PathBuf {
        self.dir.join("logs").join(pod_name)
    }

    /// A pod config (see [`pod_config`]), its pod cgroup made.
    pub fn pod_config(&self, name: &str) -> cri::PodSandboxConfig {
        pod_config(&self.dir, &self.cgroup_parent, name)
    }

    /// The log file of container `ctr` in pod `pod`.
    pub fn log_path(&self, pod: &cri::PodSandboxConfig, ctr: &str) -> PathBuf {
        Path::new(&pod.log_directory).join(format!("{ctr}.log"))
    }

    /// The parsed CRI log of container `ctr` of `pod` (empty when absent).
    pub fn log(&self, pod: &cri::PodSandboxConfig, ctr: &str) -> Result<Vec<LogLine>> {
        let content = fs::read_to_string(self.log_path(pod, ctr)).unwrap_or_default();
        parse_cri_log(&content)
    }

    /// Waits until the container's log has a line containing `needle` (any
    /// line when `needle` is empty: the first output); returns that line.
    pub fn wait_log_line(
        &self,
        pod: &cri::PodSandboxConfig,
        ctr: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<LogLine> {
        let path = self.log_path(pod, ctr);
        wait_log_line(&path, needle, timeout)
    }

    /// Runs a streaming exec (Exec, then the WebSocket to the streaming
    /// server from inside the node's network namespace).
    pub fn exec_stream(&self, id: &str, cmd: &[&str], timeout: Duration) -> Result<ExecOutput> {
        let url = self.cri.exec_url(id, cmd)?;
        stream::exec(&self.netns, &url, timeout)
    }

    /// [`Node::exec_stream`] with `input` written to the command's stdin.
    pub fn exec_stream_input(
        &self,
        id: &str,
        cmd: &[&str],
        input: &[u8],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let url = self.cri.exec_url_with(id, cmd, true)?;
        stream::exec_with_input(&self.netns, &url, Some(input), timeout)
    }

    /// Runs `args` (e.g. `ip -o link`, `iptables-save -t nat`) in the
    /// node's network namespace (forked from a thread that entered it) and
    /// returns its stdout; an error if it fails.
    pub fn netns_command(&self, args: &[&str]) -> Result<String> {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = self
            .netns
            .run(move || Command::new(&argv[0]).args(&argv[1..]).output())?
            .with_context(|| format!("run {args:?} in the node's network namespace"))?;
        if !out.status.success() {
            bail!(
                "{args:?} in the node's network namespace: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// containerd's mount table (its mount namespace holds every pod's
    /// rootfs, netns and shm mount).
    pub fn mountinfo(&self) -> Result<String> {
        fs::read_to_string(format!("/proc/{}/mountinfo", self.containerd_pid))
            .context("read containerd's mountinfo")
    }

    /// The pod network namespaces containerd holds (/var/run/netns in its
    /// mount namespace).
    pub fn netns_files(&self) -> Vec<String> {
        let dir = format!("/proc/{}/root/run/netns", self.containerd_pid);
        let mut out: Vec<String> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    /// Every process of the node but containerd and its init (shims, pause
    /// and container processes, execs, their zombies): pid and command line
    /// (empty for a zombie).
    pub fn processes(&self) -> Vec<(i32, String)> {
        descendants(self.init_pid)
            .into_iter()
            .filter(|&p| p != self.containerd_pid)
            .map(|p| {
                let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                (
                    p,
                    String::from_utf8_lossy(&cmd)
                        .replace('\0', " ")
                        .trim()
                        .to_string(),
                )
            })
            .collect()
    }

    /// The directories of cgroup `rel` (relative to a hierarchy's root)
    /// that exist, in every hierarchy.
    pub fn cgroup_dirs(&self, rel: &str) -> Vec<PathBuf> {
        let rel = rel.trim_start_matches('/');
        cgroup_hierarchies()
            .into_iter()
            .map(|h| h.join(rel))
            .filter(|p| p.is_dir())
            .collect()
    }

    /// Sub-cgroups below cgroup `rel`, in every hierarchy.
    pub fn cgroups_below(&self, rel: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in self.cgroup_dirs(rel) {
            collect_dirs(&d, &mut out);
        }
        out
    }

    /// Removes cgroup `rel` and everything below it (deepest first), in
    /// every hierarchy; returns what could not be removed.
    pub fn remove_cgroup(&self, rel: &str) -> Vec<PathBuf> {
        remove_cgroup_tree(rel.trim_start_matches('/'))
    }

    /// Stops the node: removes the pods (their containers with them),
    /// stops containerd (SIGTERM, then SIGKILL: the pid namespace goes with
    /// it, shims and containers included), removes the cgroups and the
    /// directory. Errors name what was left.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let pods = self.cri.remove_all_pods();
        self.registry = None;
        kill(self.containerd_pid, libc::SIGTERM);
        if let Some(mut child) = self.unshare.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    // The init's end kills the rest of its pid namespace.
                    kill(self.containerd_pid, libc::SIGKILL);
                    kill(self.init_pid, libc::SIGKILL);
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // The pid namespace's processes die with its init; their cgroups
        // empty a moment later.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut left = remove_cgroup_tree(&self.cgroup_parent);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            left = remove_cgroup_tree(&self.cgroup_parent);
        }
        if !self.keep_dir {
            remove_dir(&self.dir);
        }
        pods.context("removing the pods at stop")?;
        if !left.is_empty() {
            bail!("cgroups left at stop: {left:?}");
        }
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            eprintln!("rootcell-cri-node: stop: {e:#}");
        }
    }
}

/// Waits until `path` (a CRI log) has a line containing `needle` (any line
/// when empty).
pub fn wait_log_line(path: &Path, needle: &str, timeout: Duration) -> Result<LogLine> {
    let deadline = Instant::now() + timeout;
    loop {
        let content = fs::read_to_string(path).unwrap_or_default();
        // Only complete lines: the last may still be written.
        let complete = match content.rfind('\n') {
            Some(i) => &content[..=i],
            None => "",
        };
        if let Some(l) = parse_cri_log(complete)?
            .into_iter()
            .find(|l| l.text.contains(needle))
        {
            return Ok(l);
        }
        if Instant::now() > deadline {
            bail!(
                "no line with {needle:?} in {} after {timeout:?}: {content:?}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Copies a runtime binary that lives under a covered directory into
/// `bin_dir` (the file name kept); others are used where they are.
fn install_runtime(path: &Path, bin_dir: &Path) -> Result<PathBuf> {
    let path =
        fs::canonicalize(path).with_context(|| format!("runtime binary {}", path.display()))?;
    if !COVERED.iter().any(|c| path.starts_with(c)) {
        return Ok(path);
    }
    fs::create_dir_all(bin_dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{}: no file name", path.display()))?;
    let dest = bin_dir.join(name);
    fs::copy(&path, &dest).with_context(|| format!("copy {}", path.display()))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))?;
    Ok(dest)
}

fn write_cni_config(dir: &Path) -> Result<()> {
    let conf = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "rootcell-cri",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": dir.join("cni-ipam"),
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    fs::create_dir_all(dir.join("cni"))?;
    fs::write(
        dir.join("cni/10-rootcell.conflist"),
        serde_json::to_vec_pretty(&conf)?,
    )?;
    Ok(())
}

fn write_containerd_config(
    dir: &Path,
    handlers: &[(String, PathBuf)],
    log_level: &str,
) -> Result<()> {
    let d = dir.display();
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    let mut s = format!(
        "version = 2\n\
         root = \"{d}/root\"\n\
         state = \"{d}/state\"\n\
         [grpc]\n  address = \"{d}/containerd.sock\"\n\
         [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
         [debug]\n  level = \"{log_level}\"\n\
         [{cri}]\n\
         \x20 sandbox_image = \"{PAUSE}\"\n\
         \x20 stream_server_address = \"127.0.0.1\"\n\
         \x20 stream_server_port = \"0\"\n\
         \x20 restrict_oom_score_adj = true\n\
         \x20 disable_apparmor = true\n\
         \x20 enable_selinux = false\n\
         [{cri}.containerd]\n\
         \x20 default_runtime_name = \"runc\"\n\
         \x20 snapshotter = \"overlayfs\"\n"
    );
    for (name, bin) in handlers {
        s.push_str(&format!(
            "[{cri}.containerd.runtimes.{name}]\n\
             \x20 runtime_type = \"io.containerd.runc.v2\"\n\
             [{cri}.containerd.runtimes.{name}.options]\n\
             \x20 BinaryName = \"{}\"\n\
             \x20 Root = \"{d}/runtime-root/{name}\"\n\
             \x20 SystemdCgroup = false\n",
            bin.display()
        ));
    }
    s.push_str(&format!(
        "[{cri}.cni]\n\
         \x20 bin_dir = \"/usr/lib/cni\"\n\
         \x20 conf_dir = \"{d}/cni\"\n\
         \x20 max_conf_num = 1\n\
         [{cri}.registry]\n\
         \x20 config_path = \"{d}/certs.d\"\n"
    ));
    fs::write(dir.join("config.toml"), s)?;
    Ok(())
}

/// certs.d/<REGISTRY_HOST>/hosts.toml: the images' host is the node's
/// registry, over plain http, and only it (`server` replaces the default
/// https://<host>).
fn write_hosts_toml(dir: &Path, addr: std::net::SocketAddr) -> Result<()> {
    let hosts = dir.join("certs.d").join(REGISTRY_HOST);
    fs::create_dir_all(&hosts)?;
    fs::write(
        hosts.join("hosts.toml"),
        format!(
            "server = \"http://{addr}\"\n\n[host.\"http://{addr}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        ),
    )?;
    Ok(())
}

/// The pids of `unshare`'s child (the namespace's init shell) and of
/// containerd, the init's child.
fn wait_for_containerd(upid: i32, unshare: &mut Child) -> Result<(i32, i32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let child_of = |pid: i32| -> Option<i32> {
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    loop {
        if let Some(init) = child_of(upid) {
            if let Some(pid) = child_of(init) {
                // The shell forks, then the child execs containerd.
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "containerd" {
                    return Ok((init, pid));
                }
            }
        }
        if let Some(status) = unshare.try_wait()? {
            bail!("unshare ... containerd exited early ({status})");
        }
        if Instant::now() > deadline {
            bail!("containerd did not start within 10 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn log_tail(dir: &Path) -> String {
    let log = fs::read_to_string(dir.join("containerd.log")).unwrap_or_default();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("level=error") || l.contains("level=fatal") || !l.contains("level="))
        .collect();
    let start = lines.len().saturating_sub(8);
    format!("containerd.log: {}", lines[start..].join("\n"))
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: plain syscall; the pid is containerd's, started by us and
    // not yet reaped (the node's init is its parent and waits for it).
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Pids whose parent chain reaches `root` (not `root` itself).
fn descendants(root: i32) -> Vec<i32> {
    let mut parent = std::collections::HashMap::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parens.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<i32>().ok())
        {
            parent.insert(pid, ppid);
        }
    }
    let mut out: Vec<i32> = parent
        .keys()
        .copied()
        .filter(|&p| {
            let mut cur = p;
            for _ in 0..64 {
                match parent.get(&cur) {
                    Some(&pp) if pp == root => return true,
                    Some(&pp) if pp > 1 => cur = pp,
                    _ => return false,
                }
            }
            false
        })
        .collect();
    out.sort();
    out
}

/// The cgroup hierarchies: `/sys/fs/cgroup` on a pure v2 machine, else
/// every directory below it that holds a hierarchy (v1 controllers, the
/// named systemd one, the unified tree of a hybrid machine).
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect();
    out.sort();
    out
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(e.path());
            collect_dirs(&e.path(), out);
        }
    }
}

fn remove_cgroup_tree(rel: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for h in cgroup_hierarchies() {
        let top = h.join(rel);
        if top.is_dir() {
            collect_dirs(&top, &mut dirs);
            dirs.push(top);
        }
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.into_iter()
        .filter(|d| d.exists() && fs::remove_dir(d).is_err())
        .collect()
}

/// Removes the node's directory; a busy overlay snapshot (its mount
/// namespace dying a moment later) gets a few retries.
fn remove_dir(dir: &Path) {
    for _ in 0..50 {
        if fs::remove_dir_all(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("rootcell-cri-node: could not remove {}", dir.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_log_lines_are_parsed() {
        let log = "2026-12-07T15:00:26.775291328Z stdout F hello world\n\
                   2026-12-07T15:00:26.8Z stderr P part\n\
                   2026-12-07T15:00:26.9Z stdout F \n";
        let l = parse_cri_log(log).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(
            l[0],
            LogLine {
                time: "2026-12-07T15:00:26.775291328Z".into(),
                stream: "stdout".into(),
                tag: "F".into(),
                text: "hello world".into(),
            }
        );
        assert_eq!((l[1].stream.as_str(), l[1].tag.as_str()), ("stderr", "P"));
        assert_eq!(l[2].text, "");
        assert!(parse_cri_log("garbage\n").is_err());
    }

    #[test]
    fn containerd_config_names_both_handlers_and_the_node_dir() {
        let dir = std::env::temp_dir().join(format!("cri-node-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let handlers = vec![
            ("runc".to_string(), PathBuf::from(RUNC)),
            ("rootcell".to_string(), PathBuf::from("/x/rootcell")),
        ];
        write_containerd_config(&dir, &handlers, "info").unwrap();
        write_cni_config(&dir).unwrap();
        let toml = fs::read_to_string(dir.join("config.toml")).unwrap();
        let cni = fs::read_to_string(dir.join("cni/10-rootcell.conflist")).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        let d = dir.display();
        for want in [
            format!("address = \"{d}/containerd.sock\""),
            "restrict_oom_score_adj = true".to_string(),
            format!("sandbox_image = \"{PAUSE}\""),
            "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.rootcell]".to_string(),
            "BinaryName = \"/x/rootcell\"".to_string(),
            format!("Root = \"{d}/runtime-root/runc\""),
            "SystemdCgroup = false".to_string(),
            format!("config_path = \"{d}/certs.d\""),
        ] {
            assert!(toml.contains(&want), "{want} not in {toml}");
        }
        assert!(cni.contains(POD_SUBNET) && cni.contains("portmap"), "{cni}");
        assert!(cni.contains(&format!("{d}/cni-ipam")), "{cni}");
    }

    #[test]
    fn images_have_consistent_digests() {
        let img = image::Image::new("x", "latest", b"layer".to_vec(), serde_json::json!({}));
        assert_eq!(img.manifest_digest, image::sha256_digest(&img.manifest));
        let m: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
        for d in [&m["config"]["digest"], &m["layers"][0]["digest"]] {
            let d = d.as_str().unwrap();
            assert_eq!(image::sha256_digest(&img.blobs[d]), d);
        }
        assert_eq!(
            image::sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
