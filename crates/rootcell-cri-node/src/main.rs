//! `rootcell-cri-node`: a private containerd 1.6 + CRI + CNI node to try
//! rootcell under Kubernetes' CRI by hand (`up`), and a small crictl-like
//! client to drive it (crictl is not packaged in Debian bookworm).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rootcell_cri_node::{container_config, cri, Cri, NetNs, Node, NodeOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "rootcell-cri-node",
    about = "A private containerd CRI node with runc and rootcell handlers"
)]
struct Cli {
    /// The node's directory (its socket is <DIR>/containerd.sock).
    #[arg(long, global = true, default_value = "/tmp/rootcell-cri-node")]
    node: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a node and stay in the foreground until Ctrl-C (or SIGTERM),
    /// then remove everything.
    Up {
        /// The `rootcell` handler's binary.
        #[arg(long, default_value = "target/release/rootcell")]
        runtime: PathBuf,
        /// More handlers, NAME=BINARY (e.g. crun=/usr/bin/crun).
        #[arg(long = "handler")]
        handlers: Vec<String>,
        /// containerd's log level.
        #[arg(long, default_value = "info")]
        log_level: String,
        /// Keep the node's directory at exit.
        #[arg(long)]
        keep: bool,
    },
    /// RunPodSandbox: prints the pod id.
    RunPod {
        name: String,
        #[arg(long, default_value = "rootcell")]
        handler: String,
    },
    /// CreateContainer in a pod started by run-pod: prints the container id.
    Create {
        pod_id: String,
        name: String,
        /// The command (busybox image).
        #[arg(trailing_var_arg = true, required = true)]
        args: Vec<String>,
    },
    /// StartContainer.
    Start { id: String },
    /// StopContainer with a grace period.
    Stop {
        id: String,
        #[arg(long, default_value_t = 10)]
        timeout: i64,
    },
    /// RemoveContainer.
    Rm { id: String },
    /// Exec through the streaming server (prints stdout and stderr, exits
    /// with the command's code); --sync uses ExecSync.
    Exec {
        id: String,
        #[arg(long)]
        sync: bool,
        #[arg(trailing_var_arg = true, required = true)]
        args: Vec<String>,
    },
    /// Print a container's CRI log.
    Logs { id: String },
    /// StopPodSandbox.
    StopPod { pod_id: String },
    /// RemovePodSandbox.
    RmPod { pod_id: String },
    /// List pods and containers.
    Ps,
    /// Pod start latency: start COUNT pods (each: RunPodSandbox +
    /// CreateContainer + StartContainer of `echo ready`, until that line is
    /// in its CRI log), all at once with --parallel, then remove them (not
    /// timed). With several --handler, ROUNDS rounds alternate between
    /// them (A B A B ...); prints each round and a summary per handler.
    StartPods {
        #[arg(long = "handler", default_value = "rootcell")]
        handlers: Vec<String>,
        #[arg(long, default_value_t = 1)]
        count: usize,
        #[arg(long)]
        parallel: bool,
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// Also write every time to FILE as JSON (for bench/cri.sh):
        /// {"count", "parallel", "rounds", "handlers": {NAME: {"totals_ms":
        /// [one per round], "pods_ms": [one per pod]}}}.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rootcell-cri-node: error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    let node_dir = cli.node;
    if let Cmd::Up {
        runtime,
        handlers,
        log_level,
        keep,
    } = cli.cmd
    {
        return up(&node_dir, runtime, handlers, log_level, keep);
    }
    let socket = node_dir.join("containerd.sock");
    if !socket.exists() {
        bail!(
            "no node at {} (start one with `rootcell-cri-node up`, or pass --node)",
            node_dir.display()
        );
    }
    let c = Cri::connect(&socket)?;
    match cli.cmd {
        Cmd::Up { .. } => unreachable!(),
        Cmd::RunPod { name, handler } => {
            let pod = pod_config(&node_dir, &name);
            println!("{}", c.run_pod(&pod, &handler)?);
        }
        Cmd::Create { pod_id, name, args } => {
            let pod = pod_of(&c, &node_dir, &pod_id)?;
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            println!(
                "{}",
                c.create(&pod_id, &container_config(&name, &args), &pod)?
            );
        }
        Cmd::Start { id } => c.start(&id)?,
        Cmd::Stop { id, timeout } => c.stop(&id, timeout)?,
        Cmd::Rm { id } => c.remove(&id)?,
        Cmd::Exec { id, sync, args } => {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (out, err, code) = if sync {
                let r = c.exec_sync(&id, &args, 0)?;
                (
                    String::from_utf8_lossy(&r.stdout).into_owned(),
                    String::from_utf8_lossy(&r.stderr).into_owned(),
                    r.exit_code,
                )
            } else {
                let url = c.exec_url(&id, &args)?;
                let r = rootcell_cri_node::stream::exec(
                    &node_netns(&node_dir)?,
                    &url,
                    Duration::from_secs(3600),
                )?;
                (r.stdout, r.stderr, r.exit_code)
            };
            print!("{out}");
            eprint!("{err}");
            return Ok(code);
        }
        Cmd::Logs { id } => {
            let st = c.container_status(&id)?;
            print!(
                "{}",
                std::fs::read_to_string(&st.log_path)
                    .with_context(|| format!("read {}", st.log_path))?
            );
        }
        Cmd::StopPod { pod_id } => c.stop_pod(&pod_id)?,
        Cmd::RmPod { pod_id } => c.remove_pod(&pod_id)?,
        Cmd::Ps => ps(&c)?,
        Cmd::StartPods {
            handlers,
            count,
            parallel,
            rounds,
            json,
        } => start_pods(
            &c,
            &node_dir,
            &handlers,
            PodBatch {
                count,
                parallel,
                rounds,
            },
            json.as_deref(),
        )?,
    }
    Ok(0)
}

fn up(
    dir: &Path,
    runtime: PathBuf,
    handlers: Vec<String>,
    log_level: String,
    keep: bool,
) -> Result<i32> {
    let mut opts = NodeOptions::new(dir.to_path_buf(), runtime);
    opts.keep_dir = keep;
    opts.log_level = log_level;
    for h in handlers {
        let (name, bin) = h
            .split_once('=')
            .with_context(|| format!("--handler {h}: NAME=BINARY"))?;
        opts.extra_handlers.push((name.to_string(), bin.into()));
    }
    let node = Node::start(opts)?;
    let me = std::env::current_exe()?;
    let me = me.display();
    let d = node.dir.display();
    println!("rootcell-cri-node: up");
    println!("  CRI socket:   {}", node.socket().display());
    println!(
        "  containerd:   pid {} (log {d}/containerd.log)",
        node.containerd_pid()
    );
    for (name, bin) in node.handlers() {
        println!("  handler:      {name} -> {}", bin.display());
    }
    println!(
        "  images:       {} {}",
        rootcell_cri_node::BUSYBOX,
        rootcell_cri_node::PAUSE
    );
    println!(
        "  pod network:  {} (in containerd's network namespace)",
        rootcell_cri_node::POD_SUBNET
    );
    println!();
    println!("Try, in another shell:");
    println!("  N=\"--node {d}\"");
    println!("  POD=$({me} $N run-pod demo --handler rootcell)");
    println!("  CTR=$({me} $N create $POD main -- sh -c 'echo hello; sleep 1000')");
    println!("  {me} $N start $CTR");
    println!("  {me} $N logs $CTR");
    println!("  {me} $N exec $CTR -- sh -c 'id; hostname; cat /proc/1/cgroup'");
    println!("  {me} $N ps");
    println!("  {me} $N stop-pod $POD && {me} $N rm-pod $POD");
    println!(
        "  {me} $N start-pods --handler runc --handler rootcell --count 20 --parallel --rounds 3"
    );
    println!(
        "Or any CRI client on {}: crictl --runtime-endpoint unix://{}",
        node.socket().display(),
        node.socket().display()
    );
    println!("Ctrl-C stops the node and removes everything.");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })?;
    println!("rootcell-cri-node: stopping");
    node.stop()?;
    Ok(0)
}

/// The netns of the node's containerd (its pid in <dir>/containerd.pid).
fn node_netns(dir: &Path) -> Result<NetNs> {
    let pid: i32 = std::fs::read_to_string(dir.join("containerd.pid"))
        .context("read the node's containerd.pid")?
        .trim()
        .parse()?;
    NetNs::of_pid(pid)
}

/// A pod config for a node started by `up` (in another process).
fn pod_config(dir: &Path, name: &str) -> cri::PodSandboxConfig {
    let parent = std::fs::read_to_string(dir.join("cgroup-parent")).unwrap_or_default();
    rootcell_cri_node::pod_config(dir, parent.trim(), name)
}

/// The config a pod was started with, rebuilt from its status.
fn pod_of(c: &Cri, dir: &Path, pod_id: &str) -> Result<cri::PodSandboxConfig> {
    let st = c.pod_status(pod_id)?;
    let name = st.metadata.map(|m| m.name).unwrap_or_default();
    Ok(pod_config(dir, &name))
}

/// The first 13 characters of an id, as crictl shows them.
fn short(id: &str) -> String {
    id.chars().take(13).collect()
}

fn ps(c: &Cri) -> Result<()> {
    println!("{:<16} {:<20} {:<15} HANDLER", "POD ID", "NAME", "STATE");
    for p in c.list_pods()? {
        let state = cri::PodSandboxState::try_from(p.state)
            .map(|s| s.as_str_name().to_string())
            .unwrap_or_default();
        let name = p.metadata.map(|m| m.name).unwrap_or_default();
        println!(
            "{:<16} {:<20} {:<15} {}",
            short(&p.id),
            name,
            state,
            p.runtime_handler
        );
    }
    println!();
    println!(
        "{:<16} {:<16} {:<20} STATE",
        "CONTAINER ID", "POD ID", "NAME"
    );
    for x in c.list_containers("")? {
        let state = cri::ContainerState::try_from(x.state)
            .map(|s| s.as_str_name().to_string())
            .unwrap_or_default();
        let name = x.metadata.map(|m| m.name).unwrap_or_default();
        println!(
            "{:<16} {:<16} {:<20} {}",
            short(&x.id),
            short(&x.pod_sandbox_id),
            name,
            state
        );
    }
    Ok(())
}

/// What `start-pods` starts: `rounds` times `count` pods per handler.
struct PodBatch {
    count: usize,
    parallel: bool,
    rounds: usize,
}

fn start_pods(
    c: &Cri,
    dir: &Path,
    handlers: &[String],
    batch: PodBatch,
    json: Option<&Path>,
) -> Result<()> {
    let PodBatch {
        count,
        parallel,
        rounds,
    } = batch;
    let parent = std::fs::read_to_string(dir.join("cgroup-parent"))
        .context("read the node's cgroup-parent")?;
    let parent = parent.trim();
    let mode = if parallel { "parallel" } else { "sequential" };
    // Per handler: the total of each round, and every pod's own time.
    let mut totals: Vec<Vec<f64>> = vec![Vec::new(); handlers.len()];
    let mut singles: Vec<Vec<f64>> = vec![Vec::new(); handlers.len()];
    for round in 0..rounds {
        for (hi, handler) in handlers.iter().enumerate() {
            let names: Vec<String> = (0..count)
                .map(|i| format!("start-{}-{handler}-{round}-{i}", std::process::id()))
                .collect();
            let (results, total) =
                rootcell_cri_node::start_pods(c, dir, parent, &names, handler, parallel);
            let ok: Vec<_> = results.iter().flatten().cloned().collect();
            let removed = rootcell_cri_node::remove_pods(c, parent, &ok);
            if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
                bail!("round {round}, {handler}: {e:#}");
            }
            removed?;
            let ms = total.as_secs_f64() * 1e3;
            println!("round {round}: {handler}: {count} pods {mode}: {ms:.1} ms");
            totals[hi].push(ms);
            singles[hi].extend(ok.iter().map(|p| p.elapsed.as_secs_f64() * 1e3));
        }
    }
    if let Some(path) = json {
        let per_handler: serde_json::Map<String, serde_json::Value> = handlers
            .iter()
            .enumerate()
            .map(|(hi, h)| {
                let times = serde_json::json!({"totals_ms": totals[hi], "pods_ms": singles[hi]});
                (h.clone(), times)
            })
            .collect();
        let doc = serde_json::json!({
            "count": count,
            "parallel": parallel,
            "rounds": rounds,
            "handlers": per_handler,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!();
    println!("summary ({count} pods {mode}, {rounds} rounds; ms: median, mean, min, max)");
    for (hi, handler) in handlers.iter().enumerate() {
        let (t, p) = (stats(&mut totals[hi]), stats(&mut singles[hi]));
        println!("  {handler:<10} total {t}   per pod {p}");
    }
    Ok(())
}

/// "median mean min max" of `v`.
fn stats(v: &mut [f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    format!("{median:.1} {mean:.1} {:.1} {:.1}", v[0], v[v.len() - 1])
}
