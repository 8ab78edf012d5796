#!/usr/bin/env bash
# cp benchmark: wall time of `rootcell cp` out of and into a running
# container, against `podman cp` on a podman container holding the same
# files and the floor `tar -C SRC -cf - NAME | tar -C DST -xf -` on the
# host, for FILES small files (100 B each, in 100 subdirectories) and one
# BIG_MIB MiB file — one hyperfine invocation per case and direction
# (small-out, small-in, big-out, big-in), with ratios rootcell/floor and
# rootcell/podman. Also the peak RSS (`/usr/bin/time -f %M`) of each cp of
# the big file. Writes bench/out/cp-<case>.json and the section
# "## cp (rootcell cp, podman cp, tar|tar)" to CP_DOC (default
# bench/out/cp.md; CP_DOC=docs/BENCHMARKS.md rewrites that section
# there instead).
#
# Environment: WARMUP (default 1), RUNS (default 5), ROOTCELL (binary,
# default the installed one, see lib.sh), FILES (default 10000), BIG_MIB
# (default 1024), CP_FS (default tmpfs: the data and every destination on
# a tmpfs of the bench's own, so the numbers measure the copying, not a
# disk shared with other work; `disk`: under /tmp), CP_DOC.
#
# The rootcell container is the busybox bundle of scripts/make-bundle
# (`runc spec`, root made writable) running `sleep`, with a --root state dir
# in the temp dir. The podman container runs `sleep` with `--rootfs` on the
# very same rootfs directory (same files, same filesystem), with podman's
# storage (vfs), run root, tmp dir and config (CONTAINERS_CONF) in the temp
# dir; runc is its OCI runtime. Copies out go to a host directory, copies in
# read a host copy of the same data. Every destination is removed before
# each timed run, followed by `sync` (hyperfine --prepare, not timed), so no
# run waits for the previous one's writeback. In the bench's private mount
# namespace empty tmpfs cover /run, /var/tmp and /dev/shm (podman writes
# there whatever its flags say). Everything is removed at exit: containers,
# cgroups, mounts, storage, the temp dir.
#
# A command that fails its check run (wrong number of files or bytes) is
# recorded as failed and left out of the timing; the script still succeeds.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter_ns "$0" "$@"

warmup="${WARMUP:-1}"
runs="${RUNS:-5}"
nfiles="${FILES:-10000}"
big_mib="${BIG_MIB:-1024}"
cp_doc="${CP_DOC:-$bench_repo/bench/out/cp.md}"
cp_fs="${CP_FS:-tmpfs}"
for tool in podman conmon tar sync find cmp /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool not found: run scripts/setup"
done
# podman resolves the runtime path itself.
ROOTCELL="$(realpath -m "$ROOTCELL")"
say "temp dir $bench_tmp (private mount namespace)"
load="$(cut -d' ' -f1 /proc/loadavg)"
say "load average $(cut -d' ' -f1-3 /proc/loadavg)"
if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.5 else 1)" "$load"; then
    say "warning: load above 0.5: other work is running, absolute numbers are noisy (ratios within one hyperfine run hold better)"
fi

pod_dir="$bench_tmp/podman"
pod_id=bench-podman
cg_parent="rootcell-bench-cp-$$"
ns_mounts=()

# Extends bench_cleanup (lib.sh), which deletes the rootcell container:
# podman's container, its cgroups and mounts, the tmpfs, then the temp dir.
# shellcheck disable=SC2317  # invoked by the EXIT trap
cp_cleanup() {
    set +e
    if [[ -f "$pod_dir/containers.conf" ]]; then
        podman_ rm --all --force --time 0 >/dev/null 2>&1
    fi
    "$ROOTCELL" --root "$bench_tmp/state-rootcell" delete --force "$bench_id" >/dev/null 2>&1
    # The containers' cgroups, conmon's included (podman puts it in
    # <parent>/conmon); conmon exits after `podman rm` returns, so the
    # removal is retried for up to 10 s.
    local cg try
    for cg in /sys/fs/cgroup/"$cg_parent" /sys/fs/cgroup/*/"$cg_parent"; do
        [[ -d "$cg" && ! -L "$cg" ]] || continue
        [[ "$(stat -f -c %T "$cg")" == cgroup* ]] || continue
        for ((try = 0; try < 100; try++)); do
            find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null && break
            sleep 0.1
        done
        [[ ! -d "$cg" ]] || say "could not remove cgroup $cg"
    done
    local m i
    while read -r m; do
        umount -l "$m" 2>/dev/null
    done < <(findmnt -rn -o TARGET | grep -F "$bench_tmp/" | sort -r)
    for ((i = ${#ns_mounts[@]} - 1; i >= 0; i--)); do
        umount -l "${ns_mounts[i]}" 2>/dev/null
    done
    bench_cleanup
}
trap cp_cleanup EXIT

for d in /run /var/tmp /dev/shm; do
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$d"
    ns_mounts+=("$d")
done

# Where the data and the destinations live: a tmpfs holding the data twice
# and one case's three copies at a time, or the disk.
work="$bench_tmp/w"
mkdir -p "$work"
case "$cp_fs" in
tmpfs)
    mount -t tmpfs -o "size=$((5 * big_mib + 1024))m,mode=0755" tmpfs "$work"
    ns_mounts+=("$work")
    ;;
disk) ;;
*) die "CP_FS must be tmpfs or disk, not $cp_fs" ;;
esac

# The data: in the container's rootfs (/data/small, /data/big/file) and a
# host copy of it (the source of the copies in).
make_bench_bundle "$work/B" '["sleep","1000000"]'
python3 - "$work/B/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
with open(path) as f:
    spec = json.load(f)
spec["root"]["readonly"] = False  # runc spec's default; copies in need a writable root
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
EOF
rootfs="$work/B/rootfs"
host="$work/host"
say "making $nfiles files of 100 B and one file of $big_mib MiB"
python3 - "$rootfs/data/small" "$nfiles" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
per = max(1, n // 100)
data = b"x" * 99 + b"\n"
for i in range(n):
    d = os.path.join(root, f"d{i // per:03d}")
    if i % per == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
        f.write(data)
EOF
mkdir -p "$rootfs/data/big" "$host"
head -c "$((big_mib * 1024 * 1024))" /dev/urandom >"$rootfs/data/big/file"
cp -a "$rootfs/data/small" "$rootfs/data/big" "$host/"
small_bytes="$((nfiles * 100))"
big_bytes="$((big_mib * 1024 * 1024))"

# rootcell's container.
rc_state="$bench_tmp/state-rootcell"
mkdir -p "$rc_state"
rc="$ROOTCELL --root $rc_state"
say "rootcell run -d $bench_id (sleep)"
$rc run --detach --bundle "$work/B" "$bench_id" </dev/null >"$bench_tmp/rc-run.log" 2>&1 ||
    die "rootcell run -d failed: $(tail -n 5 "$bench_tmp/rc-run.log")"

# podman's container: the same rootfs directory (--rootfs), runc.
mkdir -p "$pod_dir/tmp"
cat >"$pod_dir/containers.conf" <<EOF
[containers]
netns = "none"
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$pod_dir/events.log"
runtime = "runc"
[engine.runtimes]
runc = ["$(command -v runc)"]
[network]
network_config_dir = "$pod_dir/networks"
EOF
export CONTAINERS_CONF="$pod_dir/containers.conf"
podman_args="--root $pod_dir/storage --runroot $pod_dir/run --storage-driver vfs --cgroup-manager cgroupfs --tmpdir $pod_dir/tmp"
# shellcheck disable=SC2086  # podman_args is split on purpose (no spaces in paths)
podman_() { podman $podman_args "$@"; }
say "podman run -d $pod_id (sleep, --rootfs on the same rootfs)"
podman_ run --detach --name "$pod_id" --network none --cgroup-parent "/$cg_parent" \
    --rootfs "$rootfs" sleep 1000000 </dev/null >"$pod_dir/run.log" 2>&1 ||
    die "podman run -d failed: $(tail -n 5 "$pod_dir/run.log")"

out="$work/out"
in="$rootfs/in"
rows="$bench_tmp/rows.tsv"
: >"$rows"
declare -A hf_case=() # case -> hyperfine arguments (printf %q)

# check_copy DIR NAME BYTES COUNT: DIR/NAME holds COUNT regular files of
# BYTES bytes in all (the big file: the same bytes as the source).
check_copy() {
    local dir="$1" name="$2" bytes="$3" count="$4" got_n got_b
    got_n="$(find "$dir/$name" -type f 2>/dev/null | wc -l)"
    got_b="$(find "$dir/$name" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}')"
    if [[ "$got_n" != "$count" || "$got_b" != "$bytes" ]]; then
        say "  found $got_n files, $got_b bytes in $dir/$name (expected $count, $bytes)"
        return 1
    fi
    if [[ "$name" == file ]] && ! cmp -s "$host/big/file" "$dir/file"; then
        say "  $dir/file differs from the source"
        return 1
    fi
}

# row CASE LABEL TOOL COMMAND PREPARE DEST_DIR NAME BYTES COUNT: check the
# command once (after its prepare), then queue it for hyperfine.
row() {
    local case="$1" label="$2" tool="$3" cmd="$4" prep="$5" dir="$6" name="$7" bytes="$8" count="$9"
    local status=ok rc=0 log="$bench_tmp/check.log"
    bash -c "$prep"
    timeout 600 bash -c "$cmd" </dev/null >"$log" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]]; then
        say "$label: check run failed (exit $rc); recorded as failed"
        tail -n 5 "$log" | sed 's/^/    | /' >&2
        status="check run failed (exit $rc)"
    elif ! check_copy "$dir" "$name" "$bytes" "$count"; then
        say "$label: check run copied the wrong data; recorded as failed"
        status="copied the wrong data"
    fi
    # The prepare of each timed run makes it again; meanwhile the space is
    # free for the other checks (a tmpfs holds one case at a time).
    rm -rf "${dir:?}"
    printf '%s\t%s\t%s\t0\t%s\t%s\n' "$label" "$case" "$tool" "$status" "$cmd" >>"$rows"
    if [[ $status == ok ]]; then
        hf_case[$case]+="$(printf '%q ' --prepare "$prep" -n "$label" "$cmd")"
    fi
}

# fresh DIR: the prepare of a row (not timed): DIR empty, the previous
# run's writes on disk.
fresh() { echo "sh -c 'rm -rf $1 && mkdir -p $1 && sync'"; }

# One case: the three commands copying SUB (a path below data/: `small` or
# `big/file`) out of the container to a host directory, or from the host
# copy into the container, each into a destination directory of its own.
add_case() { # CASE DIRECTION SUB BYTES COUNT
    local case="$1" dir="$2" sub="$3" bytes="$4" count="$5" name parent d
    name="$(basename "$sub")"
    parent="$(dirname "$sub")"
    [[ $parent != . ]] || parent=
    if [[ $dir == out ]]; then
        d="$out/$case"
        row "$case" "rootcell cp" rootcell "$rc cp $bench_id:/data/$sub $d/rootcell/" \
            "$(fresh "$d/rootcell")" "$d/rootcell" "$name" "$bytes" "$count"
        row "$case" "podman cp" podman "podman $podman_args cp $pod_id:/data/$sub $d/podman/" \
            "$(fresh "$d/podman")" "$d/podman" "$name" "$bytes" "$count"
        row "$case" "tar | tar (floor)" floor \
            "sh -c 'tar -C $rootfs/data/$parent -cf - $name | tar -C $d/floor -xf -'" \
            "$(fresh "$d/floor")" "$d/floor" "$name" "$bytes" "$count"
    else
        d="$in/$case"
        row "$case" "rootcell cp" rootcell "$rc cp $host/$sub $bench_id:/in/$case/rootcell/" \
            "$(fresh "$d/rootcell")" "$d/rootcell" "$name" "$bytes" "$count"
        row "$case" "podman cp" podman "podman $podman_args cp $host/$sub $pod_id:/in/$case/podman/" \
            "$(fresh "$d/podman")" "$d/podman" "$name" "$bytes" "$count"
        row "$case" "tar | tar (floor)" floor \
            "sh -c 'tar -C $host/$parent -cf - $name | tar -C $d/floor -xf -'" \
            "$(fresh "$d/floor")" "$d/floor" "$name" "$bytes" "$count"
    fi
}

cases=(small-out small-in big-out big-in)
say "checking each command once"
add_case small-out out small "$small_bytes" "$nfiles"
add_case small-in in small "$small_bytes" "$nfiles"
add_case big-out out big/file "$big_bytes" 1
add_case big-in in big/file "$big_bytes" 1

jsons=()
for case in "${cases[@]}"; do
    json="$bench_out/cp-$case.json"
    rm -f "$json"
    jsons+=("$case=$json")
    if [[ -n "${hf_case[$case]:-}" ]]; then
        eval "args=(${hf_case[$case]})"
        say "hyperfine ($case): warmup $warmup, runs $runs, $((${#args[@]} / 5)) commands"
        # shellcheck disable=SC2154  # args is set by the eval above
        hyperfine -N -i --warmup "$warmup" --runs "$runs" --export-json "$json" "${args[@]}" </dev/null >&2 ||
            say "hyperfine ($case) failed; rows without results are recorded as such"
    fi
    rm -rf "${out:?}/$case" "${in:?}/$case"
done

# Peak RSS of each cp of the big file (KiB, /usr/bin/time -f %M), after
# the same prepare as the timed runs.
rss() { # LABEL DEST_DIR COMMAND
    local kib=failed
    bash -c "$(fresh "$2")"
    # shellcheck disable=SC2086  # the command is split as hyperfine -N does
    if /usr/bin/time -f %M -o "$bench_tmp/rss" $3 </dev/null >/dev/null 2>&1; then
        kib="$(cat "$bench_tmp/rss")"
    fi
    rm -rf "${2:?}"
    echo "rss $1: $kib"
}
say "peak RSS of the big-file copies"
rss_lines=(
    "$(rss "rootcell cp, out" "$out/big-out/rootcell" "$rc cp $bench_id:/data/big/file $out/big-out/rootcell/")"
    "$(rss "rootcell cp, in" "$in/big-in/rootcell" "$rc cp $host/big/file $bench_id:/in/big-in/rootcell/")"
    "$(rss "podman cp, out" "$out/big-out/podman" "podman $podman_args cp $pod_id:/data/big/file $out/big-out/podman/")"
    "$(rss "podman cp, in" "$in/big-in/podman" "podman $podman_args cp $host/big/file $pod_id:/in/big-in/podman/")"
)
printf '%s\n' "${rss_lines[@]}" | sed 's/^/bench: /' >&2

meta="$bench_tmp/meta"
section="$bench_tmp/section.md"
{
    bench_meta
    echo "runs: $runs (after $warmup warmup runs)"
    echo "files: $nfiles"
    echo "big: $big_mib"
    echo "podman: $(podman --version | head -n1)"
    echo "podman args: $podman_args"
    echo "tar: $(tar --version | head -n1)"
    echo "fs: $(findmnt -n -o FSTYPE --target "$work")$([[ $cp_fs == tmpfs ]] && echo " (CP_FS=tmpfs: data and destinations in memory)" || echo " (CP_FS=disk, $(findmnt -n -o SOURCE --target "$work"))")"
    printf '%s\n' "${rss_lines[@]}"
    echo "tmp: $bench_tmp"
    echo "repo: $bench_repo"
} >"$meta"
python3 "$bench_repo/bench/report.py" cp "$rows" "$meta" "${jsons[@]}" >"$section"
if [[ "$(realpath -m "$cp_doc")" == "$(realpath -m "$bench_doc")" ]]; then
    python3 "$bench_repo/bench/report.py" section "$bench_doc" "$section"
else
    mkdir -p "$(dirname "$cp_doc")"
    cp "$section" "$cp_doc"
fi
cat "$section"
say "wrote bench/out/cp-*.json and ${cp_doc#"$bench_repo"/}"
