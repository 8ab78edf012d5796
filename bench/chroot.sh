#!/usr/bin/env bash
# Chroot isolation benchmark: wall time of running /bin/true in the busybox
# rootfs of scripts/make-bundle with `rootcell --isolation chroot run`,
# against full isolation (`rootcell run`, `runc run`) of the same bundle,
# buildah's own chroot isolation (`buildah run --isolation chroot` on a
# working container holding the same rootfs), buildah driving rootcell in
# chroot isolation and runc as its OCI runtime (what an image build's RUN
# step costs), and bwrap on the same rootfs — all in ONE hyperfine
# invocation. Ratios are to `rootcell --isolation chroot run`. Writes
# bench/out/chroot.json and the section "## Chroot isolation (/bin/true)" of
# docs/BENCHMARKS.md.
#
# Environment: WARMUP (default 3), RUNS (default 20), ROOTCELL (binary,
# default the installed one, see lib.sh).
#
# buildah is private to the run: storage (vfs) and run root under the temp
# dir, TMPDIR, CONTAINERS_CONF, storage.conf, registries.conf and an
# insecureAcceptAnything signature policy; empty tmpfs (in the bench's own
# mount namespace) cover /var/tmp and /run. No image is pulled or committed:
# the working container is `buildah from scratch` + `buildah copy` of the
# rootfs. A command that fails its check run is recorded as failed.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter_ns "$0" "$@"

warmup="${WARMUP:-3}"
runs="${RUNS:-20}"
command -v buildah >/dev/null || die "buildah not found: run scripts/setup"
# buildah resolves the runtime path itself.
ROOTCELL="$(realpath -m "$ROOTCELL")"
say "temp dir $bench_tmp (private mount namespace)"

# What buildah (and the runtimes it drives) write at fixed host paths
# whatever their flags say stays in this mount namespace.
for d in /var/tmp /run; do
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$d"
done

bdir="$bench_tmp/buildah"
mkdir -p "$bdir/tmp"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$bdir/policy.json"
: >"$bdir/containers.conf"
: >"$bdir/registries.conf"
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/storage"\nrunroot = "%s/run"\n' "$bdir" "$bdir" >"$bdir/storage.conf"
unset BUILDAH_ISOLATION BUILDAH_RUNTIME BUILDAH_LAYERS
export CONTAINERS_CONF="$bdir/containers.conf" CONTAINERS_STORAGE_CONF="$bdir/storage.conf" \
    CONTAINERS_REGISTRIES_CONF="$bdir/registries.conf" TMPDIR="$bdir/tmp"
buildah_="buildah --root $bdir/storage --runroot $bdir/run --storage-driver vfs"
ctr=

# Extends bench_cleanup (lib.sh): the working container, the storage, then
# the tmpfs over /var/tmp and /run.
# shellcheck disable=SC2317  # invoked by the EXIT trap
chroot_cleanup() {
    set +e
    if [[ -n "$ctr" ]]; then
        $buildah_ rm --all >/dev/null 2>&1
    fi
    $buildah_ rmi --all --force >/dev/null 2>&1
    local m
    while read -r m; do
        umount -l "$m" 2>/dev/null
    done < <(findmnt -rn -o TARGET | grep -F "$bench_tmp/" | sort -r)
    umount /run /var/tmp 2>/dev/null
    bench_cleanup
}
trap chroot_cleanup EXIT

true_args='["/bin/true"]'
check_args="[\"/bin/sh\",\"-c\",\"echo $check_marker\"]"
make_bench_bundle "$bench_tmp/B" "$true_args"
make_bench_bundle "$bench_tmp/C" "$check_args"
rootfs="$bench_tmp/B/rootfs"

say "buildah working container from $rootfs"
ctr="$($buildah_ from --signature-policy "$bdir/policy.json" --name rootcell-bench scratch)"
$buildah_ copy "$ctr" "$rootfs/" / >/dev/null

rows="$bench_tmp/rows.tsv"
: >"$rows"
hf_args=()
add_row() { # LABEL GROUP TOOL STATUS COMMAND
    printf '%s\t%s\t%s\t0\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$rows"
    if [[ "$4" == ok ]]; then
        hf_args+=(-n "$1" "$5")
    fi
}
row() { # LABEL GROUP TOOL COMMAND CHECK_COMMAND
    local status=ok
    check_cmd "$1" "$5" || status="did not run the command"
    add_row "$1" "$2" "$3" "$status" "$4"
}
state() { # NAME: a fresh --root for one row
    mkdir -p "$bench_tmp/state-$1"
    echo "$bench_tmp/state-$1"
}

say "checking that each command works"
rc_chroot="$ROOTCELL --root $(state rootcell-chroot) --isolation chroot run --bundle"
row "rootcell --isolation chroot run" chroot rootcell-chroot \
    "$rc_chroot $bench_tmp/B $bench_id" "$rc_chroot $bench_tmp/C $bench_id"
rc_full="$ROOTCELL --root $(state rootcell-full) run --bundle"
row "rootcell run (full isolation)" full rootcell \
    "$rc_full $bench_tmp/B $bench_id" "$rc_full $bench_tmp/C $bench_id"
runc_full="runc --root $(state runc-full) run --bundle"
row "runc run" full runc \
    "$runc_full $bench_tmp/B $bench_id" "$runc_full $bench_tmp/C $bench_id"
b_chroot="$buildah_ run --isolation chroot $ctr --"
row "buildah run --isolation chroot" buildah buildah-chroot \
    "$b_chroot /bin/true" "$b_chroot /bin/sh -c 'echo $check_marker'"
b_rc="$buildah_ run --isolation oci --runtime $ROOTCELL --runtime-flag root=$(state buildah-rootcell) --runtime-flag isolation=chroot $ctr --"
row "buildah run --runtime rootcell --runtime-flag isolation=chroot" buildah buildah-rootcell \
    "$b_rc /bin/true" "$b_rc /bin/sh -c 'echo $check_marker'"
b_runc="$buildah_ run --isolation oci --runtime $(command -v runc) --runtime-flag root=$(state buildah-runc) $ctr --"
row "buildah run --runtime runc" buildah buildah-runc \
    "$b_runc /bin/true" "$b_runc /bin/sh -c 'echo $check_marker'"
bwrap_="bwrap --ro-bind $rootfs / --proc /proc --dev /dev --unshare-all"
row "bwrap --ro-bind ROOTFS / --unshare-all" reference bwrap \
    "$bwrap_ /bin/true" "$bwrap_ /bin/sh -c 'echo $check_marker'"

bench_time_and_report chroot "$bench_out/chroot.json" "chroot" \
    "buildah: $(buildah --version | head -n1)"
