#!/usr/bin/env bash
# Lifecycle benchmark: wall time of `<runtime> run` of a busybox /bin/true
# container (create + start + wait + delete), rootcell vs runc vs crun, with
# bwrap and a bare `unshare` as references — all in ONE hyperfine invocation.
# Writes bench/out/lifecycle.json and the section
# "## Lifecycle (`run` of /bin/true)" of docs/BENCHMARKS.md.
#
# Environment: WARMUP (default 5), RUNS (default 50), ROOTCELL (binary,
# default target/release/rootcell), CGROUP2_SET=0 to skip the rootcell/runc
# rows of the cgroup2 row set (crun is always run that way).
#
# A runtime that cannot run the container (e.g. an unfinished rootcell) is
# recorded as "failed" and left out of the timing; the script still succeeds.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter_ns "$0" "$@"

warmup="${WARMUP:-5}"
runs="${RUNS:-50}"
say "temp dir $bench_tmp (private mount namespace)"

# Bundles: B = as `runc spec` makes it, B2 = without cgroup bits (for the
# cgroup2 row set); C/C2 = the same, printing a marker, to check that a
# runtime really runs the container before timing it.
true_args='["/bin/true"]'
check_args="[\"/bin/sh\",\"-c\",\"echo $check_marker\"]"
make_bench_bundle "$bench_tmp/B" "$true_args"
make_bench_bundle "$bench_tmp/B2" "$true_args" strip
make_bench_bundle "$bench_tmp/C" "$check_args"
make_bench_bundle "$bench_tmp/C2" "$check_args" strip

rows="$bench_tmp/rows.tsv"
: >"$rows"
hf_args=()
add_row() { # LABEL GROUP RUNTIME STATUS COMMAND
    printf '%s\t%s\t%s\t0\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$rows"
    if [[ "$4" == ok ]]; then
        hf_args+=(-n "$1" "$5")
    fi
}

container_row() { # LABEL GROUP RUNTIME MODE BUNDLE CHECK_BUNDLE
    local label="$1" group="$2" rt="$3" mode="$4" cmd status=ok
    cmd="$(rt_cmd "$rt" "$5" "$mode")"
    if ! check_cmd "$label" "$(rt_cmd "$rt" "$6" "$mode")"; then
        status="did not run the container"
    fi
    add_row "$label" "$group" "$rt" "$status" "$cmd"
}

say "checking that each command works"
container_row "rootcell run" host rootcell host "$bench_tmp/B" "$bench_tmp/C"
container_row "runc run" host runc host "$bench_tmp/B" "$bench_tmp/C"
make_readonly_rootcell
container_row "rootcell run (read-only install)" host rootcell-ro host "$bench_tmp/B" "$bench_tmp/C"
# crun 1.8 refuses this machine's hybrid cgroup layout; it (and, for a fair
# comparison, the other two) runs in a private mount ns with a fresh cgroup2.
say "crun 1.8 refuses hybrid cgroups: running it (and the cgroup2 row set) inside unshare -m with cgroup2 mounted on /sys/fs/cgroup"
if [[ "${CGROUP2_SET:-1}" != 0 ]]; then
    container_row "rootcell run (cgroup2 ns)" cgroup2 rootcell cgroup2 "$bench_tmp/B2" "$bench_tmp/C2"
    container_row "runc run (cgroup2 ns)" cgroup2 runc cgroup2 "$bench_tmp/B2" "$bench_tmp/C2"
fi
container_row "crun run (cgroup2 ns)" cgroup2 crun cgroup2 "$bench_tmp/B2" "$bench_tmp/C2"

ref_row() { # LABEL RUNTIME COMMAND
    local status=ok
    if ! timeout 60 bash -c "$3" </dev/null >/dev/null 2>&1; then
        say "$1: check run failed; recorded as failed"
        status="check run failed"
    fi
    add_row "$1" reference "$2" "$status" "$3"
}
ref_row "bwrap --unshare-all /bin/true" bwrap "bwrap --ro-bind / / --proc /proc --dev /dev --unshare-all /bin/true"
ref_row "unshare -Urmnpf --mount-proc /bin/true (floor)" unshare "unshare -Urmnpf --mount-proc /bin/true"
# What the cgroup2 row set pays on top of the runtime itself.
ref_row "cgroup2 ns wrapper alone (exec /bin/true)" wrapper \
    "unshare -m --propagation private sh -c 'mount -t cgroup2 none /sys/fs/cgroup && exec /bin/true'"

bench_time_and_report lifecycle "$bench_out/lifecycle.json" "lifecycle"
