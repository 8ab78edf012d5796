#!/usr/bin/env bash
# Memory benchmark: the peak resident set size (RSS) of each process of a
# `<runtime> run` of a busybox container, rootcell vs runc vs crun, and the
# size of the rootcell binary and what makes it up.
#
#   - `/usr/bin/time -f %M` around the runtime (container `/bin/true`): the
#     largest peak RSS of the runtime and every process it waited for
#     (getrusage of a reaped child includes its reaped descendants): stage
#     1, init and the container's process;
#   - VmHWM of the waiting runtime: /proc/PID/status of the runtime
#     process, polled every 2 ms while its container runs `sleep 0.2`; the
#     last value read (VmHWM only grows), with its file-backed part
#     (RssFile, read at the same time);
#   - rootcell only, `ROOTCELL_RSS=1` (bench/README.md): each of its
#     processes reports its own peak at its last mark — the runtime at exit
#     and before its re-exec from a protected copy, stage 1 before it exits,
#     init just before execve;
#   - the binary: file size, ELF sections (`size -A`), linkage, and the
#     largest crates and functions of its symbol table (`nm --size-sort -C`,
#     grouped by crate like `cargo bloat --crates`; a stripped binary has
#     no symbols and gets sections only), and how many of the functions of
#     crates/rootcell-cli/hot-symbols.txt it has (the linker places those
#     first, together; see crates/rootcell-cli/build.rs) and their size.
#
# The file-backed part of a process's RSS is the pages of the binary the
# kernel maps on a fault: the faulting page and those of its 64 KiB
# fault-around window that are in the page cache. So each binary is read
# into the page cache before it is measured, or the numbers would depend on
# what memory pressure evicted.
#
# Medians over RUNS runs. Writes bench/out/rss-*.tsv and the section
# "## Memory (peak RSS of `run`) and binary size" to RSS_DOC (default
# bench/out/rss.md; RSS_DOC=docs/BENCHMARKS.md rewrites that section there).
#
# Environment: RUNS (default 20), ROOTCELL (binary, default
# the installed one, see lib.sh), CGROUP2_SET=0 skips the rootcell/runc rows of
# the cgroup2 row set (crun is always run that way), RSS_DOC.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter_ns "$0" "$@"

runs="${RUNS:-20}"
rss_doc="${RSS_DOC:-$bench_out/rss.md}"
[[ "$rss_doc" == /* ]] || rss_doc="$PWD/$rss_doc"
command -v /usr/bin/time >/dev/null || die "/usr/bin/time not found: run scripts/setup (package time)"
command -v nm >/dev/null || die "nm not found (package binutils)"
say "temp dir $bench_tmp (private mount namespace)"
say "load average $(cut -d' ' -f1-3 /proc/loadavg)"
load="$(cut -d' ' -f1 /proc/loadavg)"
if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.5 else 1)" "$load"; then
    say "warning: load above 0.5: other work is running (RSS is barely affected; the page cache is)"
fi

true_args='["/bin/true"]'
sleep_args='["/bin/sleep","0.2"]'
check_args="[\"/bin/sh\",\"-c\",\"echo $check_marker\"]"
make_bench_bundle "$bench_tmp/B" "$true_args"
make_bench_bundle "$bench_tmp/B2" "$true_args" strip
make_bench_bundle "$bench_tmp/S" "$sleep_args"
make_bench_bundle "$bench_tmp/S2" "$sleep_args" strip
make_bench_bundle "$bench_tmp/C" "$check_args"
make_bench_bundle "$bench_tmp/C2" "$check_args" strip

rows="$bench_tmp/rows.tsv"
time_tsv="$bench_out/rss-time.tsv"   # label, run, KiB
hwm_tsv="$bench_out/rss-hwm.tsv"     # label, run, KiB, file-backed KiB
self_tsv="$bench_out/rss-self.tsv"   # label, run, pid, KiB, who
: >"$rows"
: >"$time_tsv"
: >"$hwm_tsv"
: >"$self_tsv"

# measure LABEL GROUP RUNTIME MODE TRUE_BUNDLE SLEEP_BUNDLE CHECK_BUNDLE
measure() {
    local label="$1" group="$2" rt="$3" mode="$4" status=ok i cmd out kib
    cat "$(runtime_bin "$rt")" >/dev/null
    if ! check_cmd "$label" "$(rt_cmd "$rt" "$7" "$mode")"; then
        status="did not run the container"
    fi
    printf '%s\t%s\t%s\t0\t%s\t%s\n' "$label" "$group" "$rt" "$status" \
        "$(rt_cmd "$rt" "$5" "$mode" "/usr/bin/time -f %M")" >>"$rows"
    [[ "$status" == ok ]] || return 0
    say "$label: $runs runs each of /usr/bin/time, VmHWM polling$([[ $rt == rootcell* ]] && echo ', ROOTCELL_RSS=1')"
    out="$bench_tmp/time.out"
    for ((i = 0; i < runs; i++)); do
        cmd="$(rt_cmd "$rt" "$5" "$mode" "/usr/bin/time -f %M -o $out")"
        bash -c "$cmd" </dev/null >/dev/null 2>&1 || { say "$label: run $i failed"; continue; }
        kib="$(tail -n1 "$out")"
        printf '%s\t%s\t%s\n' "$label" "$i" "$kib" >>"$time_tsv"
    done
    for ((i = 0; i < runs; i++)); do
        kib="$(python3 "$bench_repo/bench/report.py" poll-hwm "$(rt_cmd "$rt" "$6" "$mode")")" ||
            { say "$label: polled run $i failed"; continue; }
        printf '%s\t%s\t%s\n' "$label" "$i" "$kib" >>"$hwm_tsv"
    done
    if [[ "$rt" == rootcell* ]]; then
        for ((i = 0; i < runs; i++)); do
            ROOTCELL_RSS=1 bash -c "$(rt_cmd "$rt" "$5" "$mode")" </dev/null >/dev/null 2>"$bench_tmp/self.err" ||
                { say "$label: ROOTCELL_RSS run $i failed"; continue; }
            # rootcell-rss PID KIB WHO
            awk -v l="$label" -v i="$i" -F' ' '$1 == "rootcell-rss" {
                who = $4; for (f = 5; f <= NF; f++) who = who " " $f
                printf "%s\t%s\t%s\t%s\t%s\n", l, i, $2, $3, who }' "$bench_tmp/self.err" >>"$self_tsv"
        done
    fi
}

say "checking that each runtime runs the container, then measuring"
measure "rootcell run" host rootcell host "$bench_tmp/B" "$bench_tmp/S" "$bench_tmp/C"
measure "runc run" host runc host "$bench_tmp/B" "$bench_tmp/S" "$bench_tmp/C"
cgroup2_ns_start
measure "rootcell run (build tree: writable, re-exec)" host rootcell-build host "$bench_tmp/B" "$bench_tmp/S" "$bench_tmp/C"
if [[ "${CGROUP2_SET:-1}" != 0 ]]; then
    measure "rootcell run (cgroup2 ns)" cgroup2 rootcell cgroup2 "$bench_tmp/B2" "$bench_tmp/S2" "$bench_tmp/C2"
    measure "runc run (cgroup2 ns)" cgroup2 runc cgroup2 "$bench_tmp/B2" "$bench_tmp/S2" "$bench_tmp/C2"
fi
measure "crun run (cgroup2 ns)" cgroup2 crun cgroup2 "$bench_tmp/B2" "$bench_tmp/S2" "$bench_tmp/C2"

# The binary (the installed /usr/local/bin/rootcell is a symlink to it).
bin_dir="$bench_tmp/bin"
mkdir -p "$bin_dir"
rootcell_file="$(readlink -f "$ROOTCELL")"
size -A "$rootcell_file" >"$bin_dir/sections" 2>/dev/null || : >"$bin_dir/sections"
nm --size-sort -C "$rootcell_file" >"$bin_dir/symbols" 2>/dev/null || : >"$bin_dir/symbols"
{
    echo "file: $(stat -c %s "$rootcell_file")"
    echo "linkage: $(file -b "$rootcell_file" | grep -oE 'static-pie linked|statically linked|dynamically linked' || echo unknown)"
    echo "libs: $(ldd "$rootcell_file" 2>/dev/null | awk '/=>/ {print $1}' | tr '\n' ' ')"
    # hot: listed, found in the binary, their bytes
    hot="$bench_repo/crates/rootcell-cli/hot-symbols.txt"
    if [[ -f "$hot" ]]; then
        echo "hot: $(nm -S --defined-only "$rootcell_file" 2>/dev/null | python3 -c '
import sys
hot = set(l.strip() for l in open(sys.argv[1]) if l.strip())
found, size = set(), 0
for line in sys.stdin:
    p = line.split()
    if len(p) == 4 and p[3] in hot:
        found.add(p[3])
        size += int(p[1], 16)
print(len(hot), len(found), size)' "$hot")"
    fi
    for rt in runc crun; do
        p="$(command -v "$rt")"
        # The runtime's file plus the shared libraries it loads.
        libs=0
        while read -r lib; do
            [[ -f "$lib" ]] && libs=$((libs + $(stat -L -c %s "$lib")))
        done < <(ldd "$p" 2>/dev/null | awk '/=> \// {print $3}')
        echo "$rt: $(stat -L -c %s "$p") $libs"
    done
} >"$bin_dir/facts"

meta="$bench_tmp/meta"
{
    bench_meta
    echo "runs: $runs"
    echo "tmp: $bench_tmp"
    echo "repo: $bench_repo"
    echo "binary: ${ROOTCELL#"$bench_repo"/}"
} >"$meta"
section="$bench_tmp/section.md"
python3 "$bench_repo/bench/report.py" rss "$rows" "$meta" "$time_tsv" "$hwm_tsv" "$self_tsv" "$bin_dir" >"$section"
python3 "$bench_repo/bench/report.py" section "$rss_doc" "$section"
cat "$section"
say "wrote bench/out/rss-*.tsv and the memory section of ${rss_doc#"$bench_repo"/}"
