#!/usr/bin/env bash
# Engines benchmark: wall time of `podman run --rm IMAGE /bin/true` and
# `ctr run --rm --runc-binary RT IMAGE ID /bin/true` (containerd through its
# runc shim) with runc, crun and rootcell as the OCI runtime — all six timed
# together in interleaved rounds (report.py interleave). Writes
# bench/out/engines.json and the section "## Engines (podman and containerd)"
# of docs/BENCHMARKS.md.
#
# Environment: WARMUP (default 3), RUNS (default 20), TIMING (interleaved or
# hyperfine), ROOTCELL (binary, default the installed one, see lib.sh).
#
# Everything the engines keep lives in the bench's temp dir: podman's
# storage (vfs), run root, tmp dir and config (CONTAINERS_CONF), and a
# private containerd daemon (root, state, socket), stopped at exit. The
# image is the busybox rootfs of scripts/make-bundle, `podman import`ed from
# a tar and `ctr image import`ed from an OCI archive (scripts/make-oci-archive).
# In the bench's private mount namespace, empty tmpfs hide the host paths
# the engines and runtimes write to whatever their config says (/run,
# /dev/shm, /var/lib/containers, /var/tmp), and on a hybrid cgroup host the
# v2 tree (/sys/fs/cgroup/unified), so that crun 1.8 runs: every runtime
# sees the same legacy v1 layout. The containers' cgroups go under a parent
# of the bench's own (--cgroup-parent, --cgroup), removed at exit.
#
# A runtime that cannot run the container under an engine (e.g. an
# unfinished rootcell) is recorded as "failed" and left out of the timing;
# the script still succeeds.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter_ns "$0" "$@"

warmup="${WARMUP:-3}"
runs="${RUNS:-20}"
for tool in podman conmon containerd containerd-shim-runc-v2 ctr tar mount umount; do
    command -v "$tool" >/dev/null || die "$tool not found: run scripts/setup"
done
# Engines resolve the runtime path themselves (podman's config, the shim).
ROOTCELL="$(realpath -m "$ROOTCELL")"
say "temp dir $bench_tmp (private mount namespace)"

image=localhost/busybox
ctr_image="$image:latest"
podman_dir="$bench_tmp/podman"
ctrd_dir="$bench_tmp/containerd"
ctrd_sock="$ctrd_dir/containerd.sock"
ctrd_pid=
cg_parent="rootcell-bench-$$"
host_cgroups="$(cgroup_layout)"
ns_mounts=()       # tmpfs mounted over host paths, unmounted at exit
created_dirs=()    # host directories created as their mount points, removed at exit

# Extends bench_cleanup (lib.sh): remove what the engines left, stop the
# daemon and the shims, drop the bench's cgroups and tmpfs, then the temp dir.
# shellcheck disable=SC2317  # invoked by the EXIT trap
engines_cleanup() {
    set +e
    if [[ -f "$podman_dir/containers.conf" ]]; then
        podman_ rm --all --force --time 0 >/dev/null 2>&1
    fi
    if [[ -n "$ctrd_pid" ]]; then
        local id
        for id in $(ctr_ task ls -q 2>/dev/null); do
            ctr_ task kill -s KILL "$id" >/dev/null 2>&1
            ctr_ task delete --force "$id" >/dev/null 2>&1
        done
        for id in $(ctr_ container ls -q 2>/dev/null); do
            ctr_ container delete "$id" >/dev/null 2>&1
        done
        kill -TERM "$ctrd_pid" 2>/dev/null
        wait_gone "$ctrd_pid" || kill -KILL "$ctrd_pid" 2>/dev/null
        wait "$ctrd_pid" 2>/dev/null
    fi
    # Stragglers: shims, conmon and podman's exit commands all name the temp
    # dir on their command line; they are the bench's own children.
    local pid
    for pid in $(bench_pids); do
        kill -TERM "$pid" 2>/dev/null
        wait_gone "$pid" || kill -KILL "$pid" 2>/dev/null
    done
    # The containers' cgroups (cgroup2 is shared with the host's hierarchy).
    local cg
    for cg in /sys/fs/cgroup/"$cg_parent" /sys/fs/cgroup/*/"$cg_parent"; do
        [[ -d "$cg" && ! -L "$cg" ]] || continue
        [[ "$(stat -f -c %T "$cg")" == cgroup* ]] || continue # a tmpfs of ours
        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null ||
            say "could not remove cgroup $cg"
    done
    # Whatever the engines mounted in the temp dir (overlay snapshots, shm).
    local m
    while read -r m; do
        umount -l "$m" 2>/dev/null
    done < <(findmnt -rn -o TARGET | grep -F "$bench_tmp/" | sort -r)
    local i
    for ((i = ${#ns_mounts[@]} - 1; i >= 0; i--)); do
        umount -l "${ns_mounts[i]}" 2>/dev/null
    done
    for ((i = ${#created_dirs[@]} - 1; i >= 0; i--)); do
        rmdir "${created_dirs[i]}" 2>/dev/null || say "could not remove ${created_dirs[i]}"
    done
    bench_cleanup
}
trap engines_cleanup EXIT

bench_pids() { # pids (other than ours) whose command line names $bench_tmp
    local d cmdline
    for d in /proc/[0-9]*; do
        [[ "${d#/proc/}" != "$$" && "${d#/proc/}" != "$BASHPID" ]] || continue
        cmdline="$(tr '\0' ' ' 2>/dev/null <"$d/cmdline")" || continue
        [[ "$cmdline" == *"$bench_tmp/"* ]] && echo "${d#/proc/}"
    done
}

# ns_tmpfs DIR MODE: an empty tmpfs on DIR in this mount namespace only, so what
# the engines write there never reaches the host. If DIR does not exist, its
# missing directories are created (on the host: empty) and removed at exit.
ns_tmpfs() { # DIR MODE
    local dir="$1" mode="$2" d missing=()
    d="$dir"
    while [[ ! -e "$d" ]]; do
        missing=("$d" "${missing[@]}")
        d="$(dirname "$d")"
    done
    for d in "${missing[@]}"; do
        mkdir "$d"
        created_dirs+=("$d")
    done
    mount -t tmpfs -o "mode=$mode" tmpfs "$dir"
    ns_mounts+=("$dir")
}

# Hybrid cgroups: crun 1.8 refuses them (the v2 tree has a controller,
# hugetlb), and on a cgroup2 mount alone it fails to load its device eBPF
# filter (it raises RLIMIT_MEMLOCK, which needs CAP_SYS_RESOURCE). So hide
# the v2 tree under an empty tmpfs: every runtime and both engines see the
# legacy v1 layout, and what a runtime writes there stays in this namespace.
if [[ "$host_cgroups" == hybrid* ]]; then
    say "hybrid cgroups: hiding /sys/fs/cgroup/unified (legacy v1 layout for all)"
    ns_tmpfs /sys/fs/cgroup/unified 0755
    bench_cgroups="legacy (cgroup v1; /sys/fs/cgroup/unified hidden under an empty tmpfs)"
else
    bench_cgroups="$host_cgroups"
fi
# Paths the engines write to whatever their config says.
ns_tmpfs /dev/shm 1777            # podman's lock file (libpod_lock)
ns_tmpfs /run 0755                # runtimes' default state dirs, shim sockets, ctr's fifos
ns_tmpfs /var/lib/containers 0700 # podman's blob info cache
ns_tmpfs /var/tmp 1777            # containers/image's big temp files

# The image: the busybox rootfs of make-bundle, process /bin/true.
make_bench_bundle "$bench_tmp/img" '["/bin/true"]'
rootfs="$bench_tmp/img/rootfs"

# podman: private config, storage, run root and tmp dir.
mkdir -p "$podman_dir/tmp"
cat >"$podman_dir/containers.conf" <<EOF
[containers]
netns = "none"
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$podman_dir/events.log"
image_copy_tmp_dir = "$podman_dir/tmp"
runtime = "runc"
[engine.runtimes]
rootcell = ["$ROOTCELL"]
runc = ["$(runtime_bin runc)"]
crun = ["$(runtime_bin crun)"]
[network]
network_config_dir = "$podman_dir/networks"
EOF
export CONTAINERS_CONF="$podman_dir/containers.conf"
podman_args="--root $podman_dir/storage --runroot $podman_dir/run --storage-driver vfs --cgroup-manager cgroupfs --tmpdir $podman_dir/tmp"
# shellcheck disable=SC2086  # podman_args is split on purpose (no spaces in paths)
podman_() { podman $podman_args "$@"; }

say "podman import of the busybox rootfs as $image"
tar -C "$rootfs" -cf "$podman_dir/rootfs.tar" .
podman_ import "$podman_dir/rootfs.tar" "$image" >"$podman_dir/import.log" 2>&1 ||
    die "podman import failed: $(tail -n 5 "$podman_dir/import.log")"

# containerd: a private daemon.
mkdir -p "$ctrd_dir"
cat >"$ctrd_dir/config.toml" <<EOF
version = 2
root = "$ctrd_dir/root"
state = "$ctrd_dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ctrd_sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$ctrd_dir/opt"
EOF
ctr_() { ctr --address "$ctrd_sock" "$@"; }
say "starting containerd ($ctrd_sock)"
containerd --config "$ctrd_dir/config.toml" </dev/null >"$ctrd_dir/containerd.log" 2>&1 &
ctrd_pid=$!
for ((i = 0; i < 300; i++)); do
    ctr_ version >/dev/null 2>&1 && break
    kill -0 "$ctrd_pid" 2>/dev/null || die "containerd exited: $(tail -n 5 "$ctrd_dir/containerd.log")"
    sleep 0.1
done
ctr_ version >/dev/null 2>&1 || die "containerd did not answer on $ctrd_sock"
say "ctr image import of the busybox rootfs as $ctr_image"
TMPDIR="$ctrd_dir" "$bench_repo/scripts/make-oci-archive" "$rootfs" "$ctrd_dir/busybox-oci.tar" "$ctr_image"
ctr_ image import "$ctrd_dir/busybox-oci.tar" >"$ctrd_dir/import.log" 2>&1 ||
    die "ctr image import failed: $(tail -n 5 "$ctrd_dir/import.log")"

# The commands (strings, as hyperfine -N splits them). ARGS is the
# container's command; `sh -c 'echo MARKER'` for the checks.
podman_cmd() { # RUNTIME ARGS
    echo "podman $podman_args run --rm --runtime $1 --cgroup-parent /$cg_parent $image $2"
}
ctr_cmd() { # RUNTIME ARGS
    echo "ctr --address $ctrd_sock run --rm --runc-binary $(runtime_bin "$1") --cgroup /$cg_parent/bench-$1 $ctr_image bench-$1 $2"
}

rows="$bench_tmp/rows.tsv"
: >"$rows"
hf_args=()
say "checking that each engine runs a container with each runtime"
for engine in podman ctr; do
    for rt in runc crun rootcell; do
        label="$engine run --rm ($rt)"
        cmd="$("${engine}_cmd" "$rt" /bin/true)"
        status=ok
        if ! check_cmd "$label" "$("${engine}_cmd" "$rt" "sh -c 'echo $check_marker'")"; then
            status="did not run the container"
        fi
        printf '%s\t%s\t%s\t0\t%s\t%s\n' "$label" "$engine" "$rt" "$status" "$cmd" >>"$rows"
        [[ $status != ok ]] || hf_args+=(-n "$label" "$cmd")
    done
done

# Interleaved, as lifecycle.sh: one podman run takes ~200 ms, and this VM's
# speed drifts between rows timed one after the other by more than the
# runtimes differ (podman with rootcell measured 148 and 236 ms in two runs
# ten minutes apart). TIMING=hyperfine times them one after the other.
timing_meta="timing: interleaved rounds (report.py interleave)"
if [[ "${TIMING:-interleaved}" == hyperfine ]]; then
    timing_meta="timing: hyperfine, one command after the other"
else
    bench_interleave=1
fi
bench_time_and_report engines "$bench_out/engines.json" "engines" \
    "$timing_meta" \
    "host cgroups: $host_cgroups" \
    "bench cgroups: $bench_cgroups" \
    "podman: $(podman --version | head -n1)" \
    "conmon: $(conmon --version | head -n1)" \
    "containerd: $(containerd --version | head -n1)" \
    "shim: containerd-shim-runc-v2 $(containerd-shim-runc-v2 -v | sed -n 's/^ *Version: *//p')"
