#!/usr/bin/env bash
# Sandbox benchmark: wall time of `rootcell sandbox` against bubblewrap,
# BenchExec's containerexec and runexec (PyPI package BenchExec, installed by
# scripts/setup in /opt/rootcell-bench/venv) and the floor
# `unshare -Urmnpf --mount-proc`, in three hyperfine invocations:
#   true     each tool runs /bin/true;
#   results  the command writes 1,000 small files into its working directory,
#            captured with --result-files '*' (bwrap: a writable host dir bound
#            on the working directory, the nearest it has);
#   mounts   /bin/true with 100 extra host mount points (tmpfs) under the
#            working directory, made in this script's private mount namespace.
# Writes bench/out/sandbox-{true,results,mounts}.json and the section
# "## Sandbox" of docs/BENCHMARKS.md.
#
# Environment: WARMUP (default 3), RUNS (default 20), ROOTCELL (binary,
# default the installed one, see lib.sh), BENCHEXEC_VENV (default
# /opt/rootcell-bench/venv), FILES (default 1000), MOUNTS (default 100).
#
# A tool that is missing (a rootcell without the `sandbox` command, no
# BenchExec) or that fails its check run is recorded as such and left out of
# the timing; the script still succeeds.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter_ns "$0" "$@"

warmup="${WARMUP:-3}"
runs="${RUNS:-20}"
nfiles="${FILES:-1000}"
nmounts="${MOUNTS:-100}"
venv="${BENCHEXEC_VENV:-/opt/rootcell-bench/venv}"
say "temp dir $bench_tmp (private mount namespace)"

# The working directory of every command. Not under /tmp: BenchExec (and
# rootcell sandbox, which keeps its defaults) hide /tmp, so a working
# directory there would not exist inside. /var/tmp is part of the `/`
# overlay. Removed at exit, after its mounts (they live in this namespace).
work="$(mktemp -d /var/tmp/rootcell-sandbox-bench.XXXXXX)"
sandbox_cleanup() {
    local m
    for m in "$work"/mnt/m*; do
        mountpoint -q "$m" 2>/dev/null && umount "$m"
    done
    rm -rf --one-file-system "$work"
    mountpoint -q "$bench_tmp/out" 2>/dev/null && umount "$bench_tmp/out"
    bench_cleanup
}
trap sandbox_cleanup EXIT
cd "$work"

containerexec="$venv/bin/containerexec"
runexec="$venv/bin/runexec"
have_rootcell_sandbox=0
"$ROOTCELL" sandbox --help >/dev/null 2>&1 && have_rootcell_sandbox=1
have_benchexec=0
[[ -x "$containerexec" && -x "$runexec" ]] && have_benchexec=1
((have_rootcell_sandbox)) || say "$ROOTCELL has no 'sandbox' command: its rows are skipped"
((have_benchexec)) || say "no BenchExec in $venv (scripts/setup installs it): its rows are skipped"

bwrap_base="bwrap --ro-bind / / --proc /proc --dev /dev --unshare-all"
floor="unshare -Urmnpf --mount-proc"

rows="$bench_tmp/rows.tsv"
: >"$rows"
# Per group: hyperfine arguments, and the --prepare command of each row
# (every row of a group gets one, or none does).
declare -A hf_group prep_group

# add_row GROUP LABEL TOOL STATUS COMMAND [PREPARE]
add_row() {
    local group="$1" label="$2" tool="$3" status="$4" cmd="$5" prepare="${6:-}"
    printf '%s\t%s\t%s\t0\t%s\t%s\n' "$label" "$group" "$tool" "$status" "$cmd" >>"$rows"
    [[ "$status" == ok ]] || return 0
    hf_group[$group]+="$(printf '%q ' -n "$label" "$cmd")"
    if [[ -n "$prepare" ]]; then
        prep_group[$group]+="$(printf '%q ' --prepare "$prepare")"
    fi
}

# row GROUP LABEL TOOL AVAILABLE COMMAND CHECK [PREPARE]: CHECK is a bash
# script run twice (after PREPARE) that must print the marker.
row() {
    local group="$1" label="$2" tool="$3" available="$4" cmd="$5" check="$6" prepare="${7:-}"
    local status=ok
    if [[ "$available" != 1 ]]; then
        status="$available"
    else
        [[ -z "$prepare" ]] || bash -c "$prepare"
        if ! check_cmd "$label" "${prepare:+$prepare && }$check"; then
            status="check run failed"
        fi
    fi
    add_row "$group" "$label" "$tool" "$status" "$cmd" "$prepare"
}

rc_avail=1
((have_rootcell_sandbox)) || rc_avail="skipped: no \`rootcell sandbox\` in this build"
be_avail=1
((have_benchexec)) || be_avail="skipped: BenchExec not installed"

marker="echo $check_marker"
# Output directories (and the bwrap and floor rows' write targets) on a
# tmpfs of this namespace: the rows then time the sandboxes, not this
# machine's disk, which other work may keep busy.
out="$bench_tmp/out"
mkdir -p "$out"
mount -t tmpfs -o size=512m,mode=0755 rootcell-bench-out "$out"

# --- true -------------------------------------------------------------------
say "checking the /bin/true commands"
row true "rootcell sandbox -- true" rootcell "$rc_avail" \
    "$ROOTCELL sandbox --output-directory $out/rc -- true" \
    "$ROOTCELL sandbox --output-directory $out/rc -- sh -c '$marker'"
row true "bwrap --unshare-all true" bwrap 1 \
    "$bwrap_base true" \
    "$bwrap_base sh -c '$marker'"
row true "containerexec -- true" containerexec "$be_avail" \
    "$containerexec --output-directory $out/ce -- true" \
    "$containerexec --output-directory $out/ce -- sh -c '$marker' 2>/dev/null"
row true "containerexec --read-only-dir / -- true" containerexec-ro "$be_avail" \
    "$containerexec --read-only-dir / --output-directory $out/ce -- true" \
    "$containerexec --read-only-dir / --output-directory $out/ce -- sh -c '$marker' 2>/dev/null"
row true "runexec -- true" runexec "$be_avail" \
    "$runexec --output $out/runexec.log --output-directory $out/re -- true" \
    "$runexec --output $out/runexec.log --output-directory $out/re -- sh -c '$marker' >/dev/null 2>&1 && cat $out/runexec.log"
row true "unshare -Urmnpf --mount-proc true (floor)" unshare 1 \
    "$floor true" \
    "$floor sh -c '$marker'"

# --- results ----------------------------------------------------------------
# The command writes FILES small files into its working directory (shell
# builtins only: one process). Each row's output goes to a directory of its
# own, emptied before every run (--prepare, not timed).
write_files="i=0; while [ \$i -lt $nfiles ]; do echo \$i > f\$i; i=\$((i+1)); done"
# check_files DIR: the marker if DIR holds exactly FILES files f0..., and the
# working directory none of them (writes must not reach the host).
check_files() {
    echo "n=\$(find $1 -maxdepth 1 -name 'f*' -type f | wc -l); w=\$(find $work -maxdepth 1 -name 'f*' | wc -l); if [ \$n -eq $nfiles ] && [ \$w -eq 0 ]; then echo $check_marker; else echo \"\$n files in $1, \$w in $work\"; fi"
}
fresh() { echo "rm -rf $1"; }
fresh_dir() { echo "bash -c 'rm -rf $1 && mkdir -p $1'"; }
say "checking the result capture commands ($nfiles files)"
row results "rootcell sandbox --result-files '*'" rootcell "$rc_avail" \
    "$ROOTCELL sandbox --result-files '*' --output-directory $out/rc-files -- sh -c '$write_files'" \
    "$ROOTCELL sandbox --result-files '*' --output-directory $out/rc-files -- sh -c '$write_files' && $(check_files "$out/rc-files")" \
    "$(fresh "$out/rc-files")"
row results "bwrap, writable bind on the working dir" bwrap 1 \
    "$bwrap_base --bind $out/bwrap-files $work --chdir $work sh -c '$write_files'" \
    "$bwrap_base --bind $out/bwrap-files $work --chdir $work sh -c '$write_files' && $(check_files "$out/bwrap-files")" \
    "$(fresh_dir "$out/bwrap-files")"
row results "containerexec --result-files '*'" containerexec "$be_avail" \
    "$containerexec --result-files '*' --output-directory $out/ce-files -- sh -c '$write_files'" \
    "$containerexec --result-files '*' --output-directory $out/ce-files -- sh -c '$write_files' 2>/dev/null && $(check_files "$out/ce-files")" \
    "$(fresh "$out/ce-files")"
row results "runexec --result-files '*'" runexec "$be_avail" \
    "$runexec --output $out/runexec.log --result-files '*' --output-directory $out/re-files -- sh -c '$write_files'" \
    "$runexec --output $out/runexec.log --result-files '*' --output-directory $out/re-files -- sh -c '$write_files' >/dev/null 2>&1 && $(check_files "$out/re-files")" \
    "$(fresh "$out/re-files")"
row results "unshare -Urmnpf --mount-proc, no capture (floor)" unshare 1 \
    "$floor --wd=$out/floor-files sh -c '$write_files'" \
    "$floor --wd=$out/floor-files sh -c '$write_files' && $(check_files "$out/floor-files")" \
    "$(fresh_dir "$out/floor-files")"

# --- timing -----------------------------------------------------------------
# The true and results groups are timed before the extra mount points exist
# (else every row would pay for them), the mounts group after.
time_groups() {
    local group json
    for group in "$@"; do
        json="$bench_out/sandbox-$group.json"
        rm -f "$json"
        eval "args=(${hf_group[$group]:-})"
        eval "prep=(${prep_group[$group]:-})"
        # shellcheck disable=SC2154 # args and prep are set by the evals above
        if ((${#args[@]})); then
            # --prepare is per command: keep it only if every row has one.
            ((${#prep[@]} == ${#args[@]} * 2 / 3)) || prep=()
            say "hyperfine ($group): warmup $warmup, runs $runs, $((${#args[@]} / 3)) commands"
            hyperfine -N -i --warmup "$warmup" --runs "$runs" --export-json "$json" "${prep[@]}" "${args[@]}" </dev/null >&2 ||
                say "hyperfine failed; rows without results are recorded as such"
        fi
    done
}

time_groups true results

# Where the time of `rootcell sandbox -- true` goes, phase by phase
# (before the extra mount points exist).
phases="$bench_tmp/phases.txt"
if [[ $rc_avail == 1 ]]; then
    say "phase breakdown of rootcell sandbox -- true ($runs runs)"
    (cd "$work" && "$bench_repo/bench/phases.sh" "$runs" -- \
        "$ROOTCELL" sandbox -q --output-directory "$out/rc" -- true) >"$phases" ||
        say "bench/phases.sh failed; no phase table"
fi

# --- mounts -----------------------------------------------------------------
# MOUNTS tmpfs mount points under the working directory (so inside the `/`
# overlay, not under a hidden /tmp), in this script's mount namespace only.
say "mounting $nmounts tmpfs under $work/mnt (private mount namespace)"
for ((i = 0; i < nmounts; i++)); do
    mkdir -p "$work/mnt/m$i"
    mount -t tmpfs -o size=1m "m$i" "$work/mnt/m$i"
done
count_mounts="c=\$(grep -c \" $work/mnt/m\" /proc/self/mountinfo); if [ \$c -ge $nmounts ]; then $marker; else echo only \$c of $nmounts mounts; fi"
# Inside BenchExec's fuse-overlayfs the mounts are not mount points of
# their own: check that the last one's content is there instead.
echo visible >"$work/mnt/m$((nmounts - 1))/probe"
see_mount="if [ \"\$(cat $work/mnt/m$((nmounts - 1))/probe)\" = visible ]; then $marker; fi"
say "checking the commands with $nmounts extra mount points"
row mounts "rootcell sandbox -- true" rootcell "$rc_avail" \
    "$ROOTCELL sandbox --output-directory $out/rc -- true" \
    "$ROOTCELL sandbox --output-directory $out/rc -- sh -c '$see_mount'"
row mounts "bwrap --unshare-all true" bwrap 1 \
    "$bwrap_base true" \
    "$bwrap_base sh -c '$count_mounts'"
row mounts "containerexec -- true" containerexec "$be_avail" \
    "$containerexec --output-directory $out/ce -- true" \
    "$containerexec --output-directory $out/ce -- sh -c '$see_mount' 2>/dev/null"
row mounts "containerexec --read-only-dir / -- true" containerexec-ro "$be_avail" \
    "$containerexec --read-only-dir / --output-directory $out/ce -- true" \
    "$containerexec --read-only-dir / --output-directory $out/ce -- sh -c '$count_mounts' 2>/dev/null"
row mounts "runexec -- true" runexec "$be_avail" \
    "$runexec --output $out/runexec.log --output-directory $out/re -- true" \
    "$runexec --output $out/runexec.log --output-directory $out/re -- sh -c '$see_mount' >/dev/null 2>&1 && cat $out/runexec.log"
row mounts "unshare -Urmnpf --mount-proc true (floor)" unshare 1 \
    "$floor true" \
    "$floor sh -c '$count_mounts'"

time_groups mounts

meta="$bench_tmp/meta"
section="$bench_tmp/section.md"
{
    bench_meta
    echo "benchexec: $("$venv/bin/runexec" --version 2>/dev/null | head -n1 || echo 'not installed')"
    echo "fuse-overlayfs: $(dpkg-query -W -f='${Version}' fuse-overlayfs 2>/dev/null || echo 'not installed')"
    echo "runs: $runs (after $warmup warmup runs)"
    echo "files: $nfiles"
    echo "mounts: $nmounts"
    echo "work: $work"
    echo "tmp: $bench_tmp"
    echo "repo: $bench_repo"
} >"$meta"
python3 "$bench_repo/bench/report.py" sandbox "$rows" "$meta" \
    "true=$bench_out/sandbox-true.json" "results=$bench_out/sandbox-results.json" \
    "mounts=$bench_out/sandbox-mounts.json" "phases=$phases" >"$section"
python3 "$bench_repo/bench/report.py" section "$bench_doc" "$section"
cat "$section"
say "wrote $bench_out/sandbox-*.json and the Sandbox section of ${bench_doc#"$bench_repo"/}"
