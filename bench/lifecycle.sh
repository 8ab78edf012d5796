#!/usr/bin/env bash
# Lifecycle benchmark: wall time of `<runtime> run` of a busybox /bin/true
# container (create + start + wait + delete), rootcell vs runc vs crun, with
# bwrap and a bare `unshare` as references — all in one timing run, in
# interleaved rounds (one run of each command in turn: report.py
# interleave; TIMING=hyperfine runs them one after the other instead).
# Then runs `rootcell run` RUNS times more with ROOTCELL_PHASES=1 for a
# per-phase table (report.py phases; the `step: …` marks summed per block).
# Writes bench/out/lifecycle.json, bench/out/lifecycle-phases.txt (every
# phase, each step on its own line) and the section
# "## Lifecycle (`run` of /bin/true)" of LIFECYCLE_DOC (default
# docs/BENCHMARKS.md; e.g. LIFECYCLE_DOC=/tmp/x.md for a trial run).
#
# Environment: WARMUP (default 5), RUNS (default 50), TIMING (interleaved or hyperfine), ROOTCELL (binary,
# default the installed one, see lib.sh), CGROUP2_SET=0 to skip the rootcell/runc
# rows of the cgroup2 row set (crun is always run that way), PHASES=0 to
# skip the per-phase runs, LIFECYCLE_DOC.
#
# A runtime that cannot run the container (e.g. an unfinished rootcell) is
# recorded as "failed" and left out of the timing; the script still succeeds.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter_ns "$0" "$@"

warmup="${WARMUP:-5}"
runs="${RUNS:-50}"
bench_report_doc="${LIFECYCLE_DOC:-$bench_doc}"
[[ "$bench_report_doc" == /* ]] || bench_report_doc="$PWD/$bench_report_doc"
say "temp dir $bench_tmp (private mount namespace)"
bench_load_warn

make_true_bundles

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
container_row "rootcell run (build tree: writable, re-exec)" host rootcell-build host "$bench_tmp/B" "$bench_tmp/C"
# crun 1.8 refuses this machine's hybrid cgroup layout; it (and, for a fair
# comparison, the other two) runs in a mount ns of the bench's own with a
# fresh cgroup2 (lib.sh cgroup2_ns_start), entered with nsenter.
cgroup2_ns_start
say "crun 1.8 refuses hybrid cgroups: running it (and the cgroup2 row set) in a mount namespace with cgroup2 on /sys/fs/cgroup ($(cgroup2_wrapper) …)"
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
# Timed in interleaved rounds, the cgroup2 rows pay no wrapper: the timer
# enters the namespace itself (report.py interleave). Timed by hyperfine,
# they pay nsenter's start-up; this row shows it (/bin/true's own start-up
# included, so subtracting it understates each runtime's time).
if [[ "${TIMING:-interleaved}" == hyperfine ]]; then
    ref_row "cgroup2 ns wrapper alone (exec /bin/true)" wrapper "$(cgroup2_wrapper) /bin/true"
fi

json="$bench_out/lifecycle.json"
# This VM's speed drifts over seconds: rows timed one after the other could
# be measured at different speeds, rows timed in turn see the same drift.
timing_meta="timing: interleaved rounds (report.py interleave)"
if [[ "${TIMING:-interleaved}" == hyperfine ]]; then
    timing_meta="timing: hyperfine, one command after the other"
else
    bench_interleave=1
fi
bench_time "$json"
bench_load_warn

# Where rootcell's time goes: the host row's command RUNS times more with
# ROOTCELL_PHASES=1 (bench/README.md), its marks parsed by report.py.
phase_meta=()
rc_cmd="$(rt_cmd rootcell "$bench_tmp/B" host)"
if [[ "${PHASES:-1}" != 0 ]] && grep -q $'^rootcell run\thost\trootcell\t0\tok\t' "$rows"; then
    say "per-phase runs: $runs × ROOTCELL_PHASES=1 $rc_cmd"
    phase_log="$bench_tmp/phases.log"
    : >"$phase_log"
    phase_fail=0
    for ((i = 0; i < runs; i++)); do
        echo "run $i" >>"$phase_log"
        # shellcheck disable=SC2086 # the command is split like hyperfine -N does
        ROOTCELL_PHASES=1 $rc_cmd </dev/null >/dev/null 2>>"$phase_log" || phase_fail=$((phase_fail + 1))
    done
    python3 "$bench_repo/bench/report.py" phases "$phase_log" >"$bench_out/lifecycle-phases.txt"
    phase_meta=("phases log: $phase_log" "phases runs: $runs" "phases failed: $phase_fail")
    ((phase_fail == 0)) || say "warning: $phase_fail per-phase runs failed"
fi

bench_report lifecycle "$json" "lifecycle" "$timing_meta" "${phase_meta[@]}"
