#!/usr/bin/env bash
# Pods through Kubernetes' CRI: pod start latency (RunPodSandbox +
# CreateContainer + StartContainer until the container's first output is in
# its CRI log) one pod at a time, and N pods started at once, with the
# `runc` and `rootcell` handlers of ONE private containerd node, rounds
# alternating between them. Writes bench/out/cri-single.json,
# bench/out/cri-parallel.json and the section "## Pods through CRI
# (containerd 1.6)" of docs/BENCHMARKS.md.
#
# Environment: ROUNDS (one-pod rounds per handler, default 30), COUNT (pods
# at once, default 20), PAR_ROUNDS (rounds of COUNT pods, default 5), WARMUP
# (untimed rounds of each kind first, default 2), ROOTCELL (the rootcell
# handler's binary, default the installed one, see lib.sh).
#
# The node is crates/rootcell-cri-node (the one tests/e2e_cri.rs and
# scripts/k8s-node use): containerd in mount, network and pid namespaces of
# its own, with its state, CNI config and registry in the bench's temp dir;
# `up` removes its pods, cgroups and directory when it gets SIGTERM.
# hyperfine cannot time part of a command (pod removal must not count), so
# the client times each pod itself, from the RunPodSandbox call to the log
# line, with a monotonic clock.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter_ns "$0" "$@"

rounds="${ROUNDS:-30}"
count="${COUNT:-20}"
par_rounds="${PAR_ROUNDS:-5}"
warmup="${WARMUP:-2}"
runs="$rounds one-pod rounds and $par_rounds rounds of $count pods at once, per handler, after $warmup warmup rounds of each"
command -v containerd >/dev/null || die "containerd not found: run scripts/setup"
# The shim resolves BinaryName itself.
ROOTCELL="$(realpath -m "$ROOTCELL")"

say "cargo build --release -p rootcell-cri-node"
(cd "$bench_repo" && cargo build --release -p rootcell-cri-node >&2) || die "building rootcell-cri-node failed"
node_bin="$bench_repo/target/release/rootcell-cri-node"
node_dir="$bench_tmp/node"
node_log="$bench_tmp/node.log"
node_pid=

# Extends bench_cleanup (lib.sh): stop the node (it removes its pods,
# cgroups and directory on SIGTERM), then the temp dir.
# shellcheck disable=SC2317  # invoked by the EXIT trap
cri_cleanup() {
    set +e
    if [[ -n "$node_pid" ]]; then
        kill -TERM "$node_pid" 2>/dev/null
        wait_gone "$node_pid" 60 || kill -KILL "$node_pid" 2>/dev/null
        wait "$node_pid" 2>/dev/null
    fi
    bench_cleanup
}
trap cri_cleanup EXIT

say "starting the CRI node in $node_dir (log: $node_log)"
"$node_bin" --node "$node_dir" up --runtime "$ROOTCELL" >"$node_log" 2>&1 &
node_pid=$!
client() { "$node_bin" --node "$node_dir" "$@"; }
for ((i = 0; i < 600; i++)); do
    client ps >/dev/null 2>&1 && break
    kill -0 "$node_pid" 2>/dev/null || { tail -n 20 "$node_log" >&2; die "the CRI node did not start"; }
    sleep 0.1
done
client ps >/dev/null 2>&1 || { tail -n 20 "$node_log" >&2; die "the CRI node did not answer within 60 s"; }

handlers=(--handler runc --handler rootcell)
bench_load_warn
say "warmup: $warmup rounds of each kind"
client start-pods "${handlers[@]}" --count 1 --rounds "$warmup" >/dev/null
client start-pods "${handlers[@]}" --count "$count" --parallel --rounds "$warmup" >/dev/null
bench_load_warn
say "one pod at a time: $rounds rounds per handler"
client start-pods "${handlers[@]}" --count 1 --rounds "$rounds" --json "$bench_out/cri-single.json" >&2
bench_load_warn
say "$count pods at once: $par_rounds rounds per handler"
client start-pods "${handlers[@]}" --count "$count" --parallel --rounds "$par_rounds" --json "$bench_out/cri-parallel.json" >&2
bench_load_warn

meta="$bench_tmp/meta"
section="$bench_tmp/section.md"
{
    bench_meta
    echo "containerd: $(containerd --version | head -n1)"
    echo "runs: $runs"
} >"$meta"
python3 "$bench_repo/bench/report.py" cri "$bench_out/cri-single.json" "$bench_out/cri-parallel.json" "$meta" >"$section"
python3 "$bench_repo/bench/report.py" section "$bench_doc" "$section"
cat "$section"
say "wrote bench/out/cri-*.json and the CRI section of docs/BENCHMARKS.md"
