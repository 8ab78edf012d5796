#!/usr/bin/env bash
# Parallel load: 1, 10 and 50 containers started at once, each
# `<runtime> run` of a busybox bundle doing `sleep 0.1` under its own id, all
# sharing one state root per runtime — rootcell vs runc vs crun. Per batch:
# the total wall time (first start to last end); per container: its wall
# time (p50/p99 over all runs); throughput = N / total. Every container
# must exit 0, and after each batch no state directory and no cgroup of the
# batch may be left.
#
# Writes bench/out/parallel.json (every batch's raw times) and the section
# "## Parallel load (1, 10, 50 containers at once)" to PARALLEL_DOC
# (default bench/out/parallel.md; PARALLEL_DOC=docs/BENCHMARKS.md rewrites
# that section there instead).
#
# Environment: RUNS (default 5; batches per runtime and size), COUNTS
# (default "1 10 50"), WORK (JSON argv of the container, default
# ["sleep","0.1"]), ROOTCELL (binary, default the installed one, see lib.sh),
# ROOTCELL_BASE (a second rootcell binary, e.g. the build before a change:
# adds "rootcell (base)" rows to both row sets, for an A/B in the same
# run), HOST_SET=0 skips the host rows (rootcell and runc on the machine's
# own cgroup layout), BUILD_ROW=0 skips the row of the build tree's
# writable binary (which re-executes itself, see lib.sh), PARALLEL_DOC.
#
# The batches are interleaved (for each run, each size, each runtime in
# turn), so a change of the machine's load hits every row alike.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter_ns "$0" "$@"

runs="${RUNS:-5}"
read -r -a counts <<<"${COUNTS:-1 10 50}"
work="${WORK:-[\"sleep\",\"0.1\"]}"
parallel_doc="${PARALLEL_DOC:-$bench_out/parallel.md}"
[[ "$parallel_doc" == /* ]] || parallel_doc="$bench_repo/$parallel_doc"
say "temp dir $bench_tmp (private mount namespace)"
say "load average $(cut -d' ' -f1-3 /proc/loadavg)"
load_warn() {
    local load
    load="$(cut -d' ' -f1 /proc/loadavg)"
    if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.5 else 1)" "$load"; then
        say "warning: load $load above 0.5: other work is running, absolute numbers are noisy (ratios within one run hold better)"
    fi
}
load_warn

# Container ids of this bench run start with this prefix (report.py batch).
export BENCH_ID_PREFIX="par$$"

# Every state dir gets its leftover containers deleted (a failed batch),
# then bench_cleanup (lib.sh) removes the temp dir; cgroups of the prefix
# that a runtime left are removed too.
# shellcheck disable=SC2317  # invoked by the EXIT trap
parallel_cleanup() {
    set +e
    local d rt bin id
    for d in "$bench_tmp"/state-*; do
        [[ -d "$d" ]] || continue
        rt="${d##*/state-}"
        rt="${rt%-host}"
        rt="${rt%-cgroup2}"
        bin="$(runtime_bin "$rt")"
        [[ "$rt" == rootcell-base ]] && bin="$ROOTCELL_BASE"
        for id in "$d"/"$BENCH_ID_PREFIX"-*; do
            [[ -e "$id" ]] || continue
            "$bin" --root "$d" delete --force "${id##*/}" >/dev/null 2>&1
        done
    done
    leftover_cgroups | while read -r cg; do rmdir "$cg" 2>/dev/null; done
    bench_cleanup
}
trap parallel_cleanup EXIT

# Cgroup directories named after this run's containers, in every hierarchy.
leftover_cgroups() {
    find /sys/fs/cgroup -mindepth 1 -maxdepth 4 -type d -name "$BENCH_ID_PREFIX-*" 2>/dev/null | sort -r
}

make_bench_bundle "$bench_tmp/B" "$work"
make_bench_bundle "$bench_tmp/B2" "$work" strip
check_args="[\"/bin/sh\",\"-c\",\"echo $check_marker\"]"
make_bench_bundle "$bench_tmp/C" "$check_args"
make_bench_bundle "$bench_tmp/C2" "$check_args" strip

rows="$bench_tmp/rows.tsv"
: >"$rows"
labels=()
declare -A templates=() states=() bins=()

# par_cmd BIN STATE MODE BUNDLE: the command of one container, {id} for its id.
par_cmd() {
    local bin="$1" state="$2" mode="$3" bundle="$4"
    case "$mode" in
    host) echo "$bin --root $state run --bundle $bundle {id}" ;;
    cgroup2) echo "$(cgroup2_wrapper) $bin --root $state run --bundle $bundle {id}" ;;
    esac
}

# row LABEL GROUP RUNTIME-NAME BIN MODE: check the runtime once with the
# marker bundle, then queue the row.
row() {
    local label="$1" group="$2" rt="$3" bin="$4" mode="$5" state b c cmd check status=ok
    state="$bench_tmp/state-$rt-$mode"
    mkdir -p "$state"
    b="$bench_tmp/B"
    c="$bench_tmp/C"
    if [[ $mode == cgroup2 ]]; then
        b="$bench_tmp/B2"
        c="$bench_tmp/C2"
    fi
    cmd="$(par_cmd "$bin" "$state" "$mode" "$b")"
    check="$(par_cmd "$bin" "$state" "$mode" "$c")"
    if ! check_cmd "$label" "${check//\{id\}/$BENCH_ID_PREFIX-check}"; then
        status="did not run the container"
    fi
    for n in "${counts[@]}"; do
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$group" "$rt" "$n" "$status" "$cmd" >>"$rows"
    done
    if [[ $status == ok ]]; then
        labels+=("$label")
        templates[$label]="$cmd"
        states[$label]="$state"
        bins[$label]="$bin"
    fi
}

say "checking that each runtime runs the container"
cgroup2_ns_start
say "crun 1.8 refuses hybrid cgroups: the cgroup2 row set runs every runtime in a mount namespace with cgroup2 on /sys/fs/cgroup ($(cgroup2_wrapper) …)"
row "rootcell (cgroup2 ns)" cgroup2 rootcell "$ROOTCELL" cgroup2
if [[ -n "${ROOTCELL_BASE:-}" ]]; then
    row "rootcell base (cgroup2 ns)" cgroup2 rootcell-base "$ROOTCELL_BASE" cgroup2
fi
if [[ "${BUILD_ROW:-1}" != 0 && "$ROOTCELL" != "$(runtime_bin rootcell-build)" ]]; then
    # The build tree's binary (lib.sh), writable: it re-executes itself to
    # protect its binary (CVE-2019-5736), so this row shows what that
    # re-exec costs under load.
    row "rootcell build tree, re-exec (cgroup2 ns)" cgroup2 rootcell-build "$(runtime_bin rootcell-build)" cgroup2
fi
row "runc (cgroup2 ns)" cgroup2 runc "$(command -v runc)" cgroup2
row "crun (cgroup2 ns)" cgroup2 crun "$(command -v crun)" cgroup2
if [[ "${HOST_SET:-1}" != 0 ]]; then
    row "rootcell (host)" host rootcell "$ROOTCELL" host
    if [[ -n "${ROOTCELL_BASE:-}" ]]; then
        row "rootcell base (host)" host rootcell-base "$ROOTCELL_BASE" host
    fi
    row "runc (host)" host runc "$(command -v runc)" host
fi

json="$bench_out/parallel.json"
rm -f "$json"
failures=0
# After a batch: nothing of it may be left (state dirs, cgroups). What is
# left is said, recorded for the report, and removed, so the next row
# starts clean.
leaks=()
check_clean() { # LABEL N STATE_DIR BIN
    local label="$1" n="$2" d="$3" bin="$4" left cgs id
    left="$(find "$d" -mindepth 1 -maxdepth 1 -name "$BENCH_ID_PREFIX-*" | wc -l)"
    if ((left)); then
        say "$label, $n at once: $left state directories left in ${d##*/}"
        leaks+=("leak: $label, $n at once: $left state directories left")
        for id in "$d"/"$BENCH_ID_PREFIX"-*; do
            "$bin" --root "$d" delete --force "${id##*/}" >/dev/null 2>&1 || true
        done
    fi
    cgs="$(leftover_cgroups)"
    if [[ -n "$cgs" ]]; then
        say "$label, $n at once: cgroups left: $(echo "$cgs" | head -n 3 | tr '\n' ' ')"
        leaks+=("leak: $label, $n at once: $(echo "$cgs" | wc -l) cgroup directories left")
        echo "$cgs" | while read -r cg; do rmdir "$cg" 2>/dev/null || true; done
    fi
    if ((left)) || [[ -n "$cgs" ]]; then
        failures=$((failures + 1))
    fi
}

say "runs: $runs batches of each size (${counts[*]}) for ${#labels[@]} runtimes"
for ((run = 1; run <= runs; run++)); do
    for n in "${counts[@]}"; do
        for label in "${labels[@]}"; do
            python3 "$bench_repo/bench/report.py" batch "$json" "$label" "$n" "${templates[$label]}" ||
                failures=$((failures + 1))
            check_clean "$label" "$n" "${states[$label]}" "${bins[$label]}"
        done
    done
done
load_warn
((failures == 0)) || say "warning: $failures batches failed or left something behind (see above; failed containers are counted in the table)"

meta="$bench_tmp/meta"
section="$bench_tmp/section.md"
{
    bench_meta
    echo "runs: $runs batches of each size"
    echo "work: $(python3 -c 'import json, sys; print(" ".join(json.loads(sys.argv[1])))' "$work")"
    echo "spread: $(python3 - "$json" <<'PY'
import json, statistics, sys
b = [x["start_spread"] for x in json.load(open(sys.argv[1])) if x["n"] == max(y["n"] for y in json.load(open(sys.argv[1])))]
print(f"{statistics.mean(b) * 1e3:.0f}" if b else "?")
PY
)"
    for line in "${leaks[@]}"; do echo "$line"; done
    echo "tmp: $bench_tmp"
    echo "repo: $bench_repo"
} >"$meta"
python3 "$bench_repo/bench/report.py" parallel "$rows" "$json" "$meta" >"$section"
if [[ "$(realpath -m "$parallel_doc")" == "$(realpath -m "$bench_doc")" ]]; then
    python3 "$bench_repo/bench/report.py" section "$bench_doc" "$section"
else
    mkdir -p "$(dirname "$parallel_doc")"
    cp "$section" "$parallel_doc"
fi
cat "$section"
say "wrote ${json#"$bench_repo"/} and ${parallel_doc#"$bench_repo"/}"
