#!/usr/bin/env bash
# Lifecycle steps: `create`, `start` and `delete` timed separately (what
# podman and containerd call), rootcell vs runc vs crun, with a reference
# `rmdir` of the cgroup directories the runtime makes for the container
# (the issue's goal: `delete` at most 1 ms above it) — all in ONE hyperfine
# invocation, each row with its own --prepare (not timed) that brings the
# container to the state the step starts from:
#   create   no container (a leftover is deleted);
#   start    a created container (its process is /bin/true, so it exits
#            at once);
#   delete   a stopped container (created, started, then `state` polled
#            until it says "stopped");
#   rmdir    the same cgroup directories rootcell makes for a container
#            (found from a real one's /proc/PID/cgroup: one per v1
#            hierarchy plus the unified one here), under the same parents.
# Row sets as in lifecycle.sh: host (rootcell, runc) and cgroup2 ns
# (rootcell, runc, crun in the bench's cgroup2 mount namespace, entered with
# nsenter; lib.sh cgroup2_ns_start), with the wrapper alone as a reference
# (shown, not subtracted: it includes /bin/true's own start-up).
#
# Writes bench/out/steps.json and the section
# "## Lifecycle steps (create, start, delete)" to STEPS_DOC (default
# bench/out/steps.md; STEPS_DOC=docs/BENCHMARKS.md rewrites that section
# there).
#
# Environment: WARMUP (default 3), RUNS (default 30), ROOTCELL (binary,
# default the installed one, see lib.sh), CGROUP2_SET=0 to skip the rootcell/runc
# rows of the cgroup2 set (crun is always run that way), STEPS_DOC.
# A runtime that cannot run the container is recorded as "failed".
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter_ns "$0" "$@"

warmup="${WARMUP:-3}"
runs="${RUNS:-30}"
bench_report_doc="${STEPS_DOC:-$bench_out/steps.md}"
[[ "$bench_report_doc" == /* ]] || bench_report_doc="$PWD/$bench_report_doc"
say "temp dir $bench_tmp (private mount namespace)"
bench_load_warn

make_true_bundles
cgroup2_ns_start

rows="$bench_tmp/rows.tsv"
: >"$rows"
hf_args=()
hf_opts=()
add_row() { # LABEL GROUP RUNTIME STATUS COMMAND PREPARE
    printf '%s\t%s\t%s\t0\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$rows"
    printf '%s\t%s\n' "$1" "$6" >>"$bench_tmp/prepare.tsv"
    if [[ "$4" == ok ]]; then
        hf_args+=(-n "$1" "$5")
        hf_opts+=(--prepare "$6")
    fi
}
: >"$bench_tmp/prepare.tsv"

# ctl RUNTIME MODE BUNDLE: writes the row set's prepare script
# $bench_tmp/ctl-RUNTIME-MODE (argument: none, created or stopped — the
# state to leave the container in) and prints its path.
ctl() {
    local rt="$1" mode="$2" bundle="$3" wrap="" f
    [[ "$mode" == host ]] || wrap="$(cgroup2_wrapper) "
    f="$bench_tmp/ctl-$rt-$mode"
    mkdir -p "$bench_tmp/state-$rt-$mode"
    cat >"$f" <<CTL
#!/bin/sh
# Prepares a row of bench/steps.sh (not timed): deletes a leftover, then
# leaves the container as \$1 says (none, created, stopped).
rc="$wrap$(runtime_bin "$rt") --root $bench_tmp/state-$rt-$mode"
id=steps-$rt-$mode
\$rc delete --force \$id >/dev/null 2>&1
case "\$1" in
none) ;;
created) exec \$rc create --bundle $bundle \$id ;;
stopped)
    \$rc create --bundle $bundle \$id && \$rc start \$id || exit 1
    i=0
    until \$rc state \$id 2>/dev/null | grep '"stopped"' >/dev/null; do
        i=\$((i + 1))
        [ \$i -lt 5000 ] || { echo "\$id: not stopped" >&2; exit 1; }
    done ;;
*) exit 2 ;;
esac
CTL
    chmod +x "$f"
    echo "$f"
}

# steps_check CTL RC ID: create, start, wait until stopped and delete once
# (a runtime that cannot is recorded as failed).
steps_check() {
    local f="$1" rc="$2" id="$3" out
    out="$(timeout 60 sh -c "$f stopped && $rc delete $id" 2>&1 </dev/null)" && return 0
    say "create/start/delete check failed; recorded as failed"
    [[ -z "$out" ]] || printf '%s\n' "$out" | tail -n 5 | sed 's/^/    | /' >&2
    return 1
}

step_rows() { # RUNTIME MODE GROUP-SUFFIX BUNDLE CHECK_BUNDLE
    local rt="$1" mode="$2" suffix="$3" bundle="$4" f rc id status=ok wrap=""
    [[ "$mode" == host ]] || wrap="$(cgroup2_wrapper) "
    f="$(ctl "$rt" "$mode" "$bundle")"
    rc="$wrap$(runtime_bin "$rt") --root $bench_tmp/state-$rt-$mode"
    id="steps-$rt-$mode"
    if ! check_cmd "$rt run$suffix" "$(rt_cmd "$rt" "$5" "$mode")" || ! steps_check "$f" "$rc" "$id"; then
        status="did not run the container"
    fi
    add_row "$rt create$suffix" "$mode" "$rt" "$status" "$rc create --bundle $bundle $id" "$f none"
    add_row "$rt start$suffix" "$mode" "$rt" "$status" "$rc start $id" "$f created"
    add_row "$rt delete$suffix" "$mode" "$rt" "$status" "$rc delete $id" "$f stopped"
}

say "checking that each runtime runs the container"
step_rows rootcell host "" "$bench_tmp/B" "$bench_tmp/C"
step_rows runc host "" "$bench_tmp/B" "$bench_tmp/C"
if [[ "${CGROUP2_SET:-1}" != 0 ]]; then
    step_rows rootcell cgroup2 " (cgroup2 ns)" "$bench_tmp/B2" "$bench_tmp/C2"
    step_rows runc cgroup2 " (cgroup2 ns)" "$bench_tmp/B2" "$bench_tmp/C2"
fi
step_rows crun cgroup2 " (cgroup2 ns)" "$bench_tmp/B2" "$bench_tmp/C2"

# cgroup_dirs MODE: the cgroup directories a created container gets in that
# row set (rootcell's; runc's, then crun's if rootcell fails), renamed to a
# leaf of their own under the same parents.
cgroup_dirs() {
    local mode="$1" rt f pid dirs enter=()
    [[ "$mode" == host ]] || enter=(nsenter --mount="$cgroup2_ns")
    for rt in rootcell runc crun; do
        f="$bench_tmp/ctl-$rt-$mode"
        [[ -x "$f" ]] || continue
        "$f" created </dev/null >/dev/null 2>&1 || continue
        pid="$("${enter[@]}" "$(runtime_bin "$rt")" --root "$bench_tmp/state-$rt-$mode" state "steps-$rt-$mode" 2>/dev/null |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])' 2>/dev/null)" || pid=""
        dirs=""
        [[ -z "$pid" ]] || dirs="$("${enter[@]}" python3 "$bench_repo/bench/report.py" cgroup-dirs "$pid" "steps-rmdir-$mode")" || dirs=""
        "$f" none </dev/null >/dev/null 2>&1 || true
        if [[ -n "$dirs" ]]; then
            say "$mode: rmdir reference from $rt's container: $(echo "$dirs" | wc -l) directories"
            echo "$dirs"
            return 0
        fi
    done
    return 1
}
rmdir_row() { # MODE LABEL
    local mode="$1" wrap="" dirs f
    [[ "$mode" == host ]] || wrap="$(cgroup2_wrapper) "
    f="$bench_tmp/cgdirs-$mode"
    if ! cgroup_dirs "$mode" >"$f"; then
        add_row "$2" reference "rmdir-$mode" "no container to take the cgroup paths from" "rmdir" "true"
        return 0
    fi
    dirs="$(tr '\n' ' ' <"$f")"
    dirs="${dirs% }"
    # The timed rmdir must succeed (a leftover directory would make every
    # later run's mkdir fail): the prepare removes one, then makes them.
    add_row "$2" reference "rmdir-$mode" ok "${wrap}rmdir $dirs" \
        "${wrap}sh -c 'rmdir $dirs 2>/dev/null; mkdir $dirs'"
    rmdir_dirs+=("$mode" "$dirs")
}
rmdir_dirs=()
rmdir_row host "rmdir of the container's cgroup directories"
rmdir_row cgroup2 "rmdir of the container's cgroup directories (cgroup2 ns)"
add_row "cgroup2 ns wrapper alone (exec /bin/true)" reference wrapper ok "$(cgroup2_wrapper) /bin/true" true

# The rmdir rows' directories, if a failed run left them (the timed rmdir
# removes them), go with the rest at exit.
# shellcheck disable=SC2317  # invoked by the EXIT trap
steps_cleanup() {
    set +e
    local i
    for ((i = 0; i < ${#rmdir_dirs[@]}; i += 2)); do
        if [[ "${rmdir_dirs[i]}" == host ]]; then
            # shellcheck disable=SC2086
            rmdir ${rmdir_dirs[i + 1]} 2>/dev/null
        else
            # shellcheck disable=SC2086
            nsenter --mount="$cgroup2_ns" rmdir ${rmdir_dirs[i + 1]} 2>/dev/null
        fi
    done
    bench_cleanup
}
trap steps_cleanup EXIT

json="$bench_out/steps.json"
bench_time "$json"
bench_load_warn
bench_report steps "$json" "lifecycle steps" "prepare: $bench_tmp/prepare.tsv" "ctl: $bench_tmp/ctl-rootcell-host"
