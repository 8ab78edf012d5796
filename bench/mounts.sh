#!/usr/bin/env bash
# Bind mount scaling: wall time of `<runtime> run` of a busybox /bin/true
# container with 1, 100 and 1000 extra bind mounts (host temp dirs bound to
# /mnt/bN), rootcell vs runc vs crun, in ONE hyperfine invocation. Reports the
# per-mount cost (t1000 - t1) / 999 per runtime. Writes bench/out/mounts.json
# and the section "## Bind mount scaling" of docs/BENCHMARKS.md.
#
# Environment: WARMUP (default 3), RUNS (default 30), COUNTS (default
# "1 100 1000"), MOUNT_OPTIONS (JSON, default ["rbind","ro"]; e.g. ["bind"]),
# ROOTCELL (binary, default the installed one, see lib.sh).
#
# All runtimes run inside the bench's cgroup2 mount ns (lib.sh
# cgroup2_ns_start: cgroup2 mounted on /sys/fs/cgroup; crun 1.8 refuses
# this machine's hybrid layout), with a
# config without linux.resources nor the cgroup mount: the same fixed
# overhead for every row, which cancels out of the per-mount cost.
# A runtime that cannot run a bundle is recorded as "failed".
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter_ns "$0" "$@"

warmup="${WARMUP:-3}"
runs="${RUNS:-30}"
read -r -a counts <<<"${COUNTS:-1 100 1000}"
((${#counts[@]} >= 2)) || die "COUNTS needs at least two mount counts"
options="${MOUNT_OPTIONS:-[\"rbind\",\"ro\"]}"
say "temp dir $bench_tmp (private mount namespace)"

hostdirs="$bench_tmp/host"
mkdir -p "$hostdirs"
true_args='["/bin/true"]'
for n in "${counts[@]}"; do
    say "bundles with $n bind mounts ($options)"
    # The check bundle prints the marker only if all N mounts are there.
    # shellcheck disable=SC2016  # expanded by the container's shell
    check_script='c=$(grep -c " /mnt/b" /proc/self/mountinfo); [ "$c" -ge '"$n"' ] && echo '"$check_marker"' || echo "only $c of '"$n"' mounts"'
    check_args="$(python3 -c 'import json, sys; print(json.dumps(["/bin/sh", "-c", sys.argv[1]]))' "$check_script")"
    for kind in B C; do
        args="$true_args"
        [[ $kind == C ]] && args="$check_args"
        make_bench_bundle "$bench_tmp/$kind-$n" "$args" strip
        python3 "$bench_repo/bench/report.py" add-mounts "$bench_tmp/$kind-$n/config.json" "$n" "$hostdirs" "$options"
    done
done

rows="$bench_tmp/rows.tsv"
: >"$rows"
hf_args=()
cgroup2_ns_start
say "checking that each runtime runs each bundle"
for rt in rootcell runc crun; do
    for n in "${counts[@]}"; do
        label="$rt, $n mount$([[ $n == 1 ]] || echo s)"
        cmd="$(rt_cmd "$rt" "$bench_tmp/B-$n" cgroup2)"
        status=ok
        if ! check_cmd "$label" "$(rt_cmd "$rt" "$bench_tmp/C-$n" cgroup2)"; then
            status="did not run the container"
        fi
        printf '%s\tcgroup2\t%s\t%s\t%s\t%s\n' "$label" "$rt" "$n" "$status" "$cmd" >>"$rows"
        [[ $status != ok ]] || hf_args+=(-n "$label" "$cmd")
    done
done

bench_time_and_report mounts "$bench_out/mounts.json" "bind mount" "options: $options"
