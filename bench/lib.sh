# shellcheck shell=bash
# Shared helpers for bench/*.sh (sourced, not run).
#
# Every benchmark re-executes itself inside a private mount namespace
# (unshare --mount --propagation private): whatever the runtimes under test
# do to mounts — including bugs of an unfinished rootcell — stays there, and
# the temporary cgroup2 mounts the crun rows need never reach the machine's
# own mount table.

bench_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_out="$bench_repo/bench/out"
# shellcheck disable=SC2034  # used by the scripts that source this file
bench_doc="$bench_repo/docs/BENCHMARKS.md"
bench_id=bench # fixed container id: `run` without --detach deletes the container on exit

say() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

# bench_enter_ns "$0" "$@": re-exec the calling script in a private mount
# namespace (once), then create $bench_tmp, removed on exit.
bench_enter_ns() {
    local self="$1"
    shift
    [[ $(id -u) -eq 0 ]] || die "run as root (containers need it)"
    if [[ "${ROOTCELL_BENCH_IN_NS:-}" != 1 ]]; then
        ROOTCELL_BENCH_IN_NS=1 exec unshare --mount --propagation private -- "$self" "$@"
    fi
    for tool in hyperfine runc crun bwrap unshare python3; do
        command -v "$tool" >/dev/null || die "$tool not found: run scripts/setup"
    done
    bench_tmp="$(mktemp -d /tmp/rootcell-bench.XXXXXX)"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$bench_out"
}

bench_cleanup() {
    # Containers are run in the foreground and deleted by `run` itself; a
    # failed one (or one a script left created or stopped) may leave
    # state: ask each runtime to delete every container of its state dir,
    # the cgroup2 set's from inside the cgroup2 namespace, whose cgroups
    # they are.
    local d rt mode id enter
    for d in "$bench_tmp"/state-*; do
        [[ -d "$d" ]] || continue
        rt="${d##*/state-}"
        mode="${rt##*-}"
        rt="${rt%-*}"
        case "$rt" in
        rootcell) rt="$ROOTCELL" ;;
        rootcell-build) rt="$rootcell_build" ;;
        esac
        enter=()
        if [[ "$mode" == cgroup2 && -n "$cgroup2_ns" ]]; then
            enter=(nsenter --mount="$cgroup2_ns")
        fi
        for id in "$d"/*/; do
            [[ -d "$id" ]] || continue
            id="${id%/}"
            "${enter[@]}" "$rt" --root "$d" delete --force "${id##*/}" >/dev/null 2>&1 || true
        done
    done
    # The cgroup2 namespace's holder (cgroup2_ns_start), by its pid.
    if [[ -n "$cgroup2_holder" ]]; then
        kill "$cgroup2_holder" 2>/dev/null || true
        wait "$cgroup2_holder" 2>/dev/null || true
    fi
    # --one-file-system: never descend into anything still mounted.
    rm -rf --one-file-system "$bench_tmp"
}

# The runtimes compared. ROOTCELL may point at another binary; by default it
# is the installed one (scripts/setup: /usr/local/bin/rootcell, immutable,
# which needs no re-exec to protect itself, docs/SECURITY.md class 14) when
# that is the current build, else the build tree's (writable: it re-executes
# itself at every create/run). The build tree's binary is also measured on
# its own rows (runtime name rootcell-build) where a script says so.
rootcell_build="$bench_repo/target/release/rootcell"
if [[ -z "${ROOTCELL:-}" ]]; then
    if cmp -s /usr/local/bin/rootcell "$rootcell_build" 2>/dev/null; then
        ROOTCELL=/usr/local/bin/rootcell
    else
        ROOTCELL="$rootcell_build"
        say "warning: /usr/local/bin/rootcell is missing or not the current build (run scripts/setup): measuring $rootcell_build, which re-executes itself"
    fi
fi
# Absolute: the cgroup2 set's commands run from another mount namespace,
# where nsenter starts them in /.
[[ "$ROOTCELL" != */* || "$ROOTCELL" == /* ]] || ROOTCELL="$PWD/$ROOTCELL"
runtime_bin() { # NAME -> path
    case "$1" in
    rootcell) echo "$ROOTCELL" ;;
    rootcell-build) echo "$rootcell_build" ;;
    *) command -v "$1" ;;
    esac
}

# cgroup2_ns_start: the mount namespace the cgroup2 row set runs in, made
# once per script: a copy of the bench's private namespace with a fresh
# cgroup2 mounted on /sys/fs/cgroup (crun 1.8 refuses the hybrid layout),
# held by a `sleep infinity` process started in it, and entered by every
# command of the set with `nsenter --mount=/proc/$holder/ns/mnt` (a setns
# and an exec, where `unshare -m sh -c 'mount -t cgroup2 …; exec …'` per
# run cost about 5 ms). Mounts the bench makes after this are not seen
# there (private propagation).
# bench_cleanup kills the holder by its pid, which frees the namespace.
# (`unshare --mount=FILE`, which keeps a namespace without a process, fails
# now and then with EINVAL on this kernel.) Must run in the script's own
# shell, not in a $(…) subshell.
cgroup2_holder=""
cgroup2_ns=""
cgroup2_ns_start() {
    [[ -z "$cgroup2_ns" ]] || return 0
    local i fs="" deathsig=()
    # Killed with the script even if bench_cleanup never runs (SIGKILL).
    if setpriv --help 2>/dev/null | grep -- --pdeathsig >/dev/null; then
        deathsig=(setpriv --pdeathsig KILL)
    fi
    unshare --mount --propagation private "${deathsig[@]}" \
        sh -c 'mount -t cgroup2 none /sys/fs/cgroup && exec sleep infinity' </dev/null >/dev/null 2>&1 &
    cgroup2_holder=$!
    # Until the holder has unshared and mounted, its ns/mnt is the bench's.
    for ((i = 0; i < 500; i++)); do
        fs="$(nsenter --mount="/proc/$cgroup2_holder/ns/mnt" stat -f -c %T /sys/fs/cgroup 2>/dev/null)" || fs=""
        [[ "$fs" != cgroup2fs ]] || break
        kill -0 "$cgroup2_holder" 2>/dev/null || die "could not make the cgroup2 mount namespace"
        sleep 0.01
    done
    [[ "$fs" == cgroup2fs ]] || die "cgroup2 namespace: /sys/fs/cgroup is ${fs:-?}, not cgroup2"
    cgroup2_ns="/proc/$cgroup2_holder/ns/mnt"
}

# The prefix of every cgroup2 set command (cgroup2_ns_start first).
cgroup2_wrapper() {
    [[ -n "$cgroup2_ns" ]] || die "cgroup2_ns_start must run before the cgroup2 rows are made"
    echo "nsenter --mount=$cgroup2_ns"
}

# rt_cmd NAME BUNDLE MODE [PREFIX]: the command line hyperfine times (as one
# string, hyperfine -N splits it like a shell), with PREFIX (e.g.
# /usr/bin/time) right before the runtime, inside the cgroup2 wrapper, so
# the wrapper's own processes are not counted. MODE is
#   host     the runtime as is, on the machine's hybrid cgroup v1 layout;
#   cgroup2  inside the bench's cgroup2 mount namespace (cgroup2_ns_start:
#            a fresh cgroup2 mounted on /sys/fs/cgroup; crun 1.8 refuses
#            hybrid layouts), bundle without linux.resources nor the
#            /sys/fs/cgroup mount.
# Each (runtime, mode) pair gets its own --root state dir.
rt_cmd() {
    local name="$1" bundle="$2" mode="$3" prefix="${4:-}" bin state
    bin="$(runtime_bin "$name")"
    state="$bench_tmp/state-$name-$mode"
    mkdir -p "$state"
    case "$mode" in
    host) echo "$prefix${prefix:+ }$bin --root $state run --bundle $bundle $bench_id" ;;
    cgroup2) echo "$(cgroup2_wrapper) $prefix${prefix:+ }$bin --root $state run --bundle $bundle $bench_id" ;;
    *) die "unknown mode $mode" ;;
    esac
}

# make_true_bundles: the bundles of lifecycle.sh and steps.sh in $bench_tmp:
# B = as `runc spec` makes it, running /bin/true, B2 = without cgroup bits
# (for the cgroup2 row set); C/C2 = the same, printing a marker, to check
# that a runtime really runs the container before timing it.
make_true_bundles() {
    local true_args='["/bin/true"]'
    local check_args="[\"/bin/sh\",\"-c\",\"echo $check_marker\"]"
    make_bench_bundle "$bench_tmp/B" "$true_args"
    make_bench_bundle "$bench_tmp/B2" "$true_args" strip
    make_bench_bundle "$bench_tmp/C" "$check_args"
    make_bench_bundle "$bench_tmp/C2" "$check_args" strip
}

# make_bench_bundle DIR ARGS_JSON [strip]: busybox bundle from `runc spec`
# (the same config for every runtime, stable while rootcell's own spec
# evolves). With "strip": no linux.resources and no cgroup mount.
make_bench_bundle() {
    local dir="$1" args="$2" strip="${3:-}"
    QUIET=1 ARGS="$args" "$bench_repo/scripts/make-bundle" "$dir" runc >/dev/null ||
        die "make-bundle $dir failed"
    if [[ "$strip" == strip ]]; then
        python3 "$bench_repo/bench/report.py" strip-cgroups "$dir/config.json"
    fi
}

# check_cmd LABEL COMMAND: run COMMAND (a string for a check bundle whose
# container prints "rootcell-bench-ok") twice — the second run also proves
# the fixed id was deleted — and succeed only if both print the marker.
check_marker=rootcell-bench-ok
check_cmd() {
    local label="$1" cmd="$2" out i rc
    for i in 1 2; do
        rc=0
        out="$(timeout 60 bash -c "$cmd" 2>&1 </dev/null)" || rc=$?
        if [[ $rc -ne 0 || "$out" != *"$check_marker"* ]]; then
            say "$label: check run $i failed (exit $rc$([[ -n "$out" ]] || echo ', no output')); recorded as failed"
            [[ -z "$out" ]] || printf '%s\n' "$out" | tail -n 5 | sed 's/^/    | /' >&2
            return 1
        fi
    done
    return 0
}

# Versions and machine facts, one "key: value" per line (for report.py).
bench_meta() {
    local rc_version
    rc_version="$("$ROOTCELL" --version 2>/dev/null | head -n1)" || true
    [[ -n "$rc_version" ]] || rc_version="(no --version)"
    local rev
    rev="$(git -C "$bench_repo" rev-parse --short HEAD 2>/dev/null || echo none)"
    if [[ -n "$(git -C "$bench_repo" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
        rev="$rev + uncommitted changes"
    fi
    rc_version="$rc_version, git $rev"
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "kernel: $(uname -r)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores)"
    echo "rootcell: $rc_version"
    echo "runc: $(runc --version | head -n1)"
    echo "crun: $(crun --version | head -n1)"
    echo "bwrap: $(bwrap --version | head -n1)"
    echo "hyperfine: $(hyperfine --version | head -n1)"
    echo "cgroups: $(cgroup_layout)"
    [[ -z "$cgroup2_ns" ]] || echo "cgroup2 ns: $cgroup2_ns"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min load average at the end; above ~0.5 the numbers are noisy)"
}

cgroup_layout() {
    if [[ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" == cgroup2fs ]]; then
        echo "unified (cgroup v2)"
    elif [[ -d /sys/fs/cgroup/unified ]]; then
        echo "hybrid (v1 controllers + empty cgroup2 at /sys/fs/cgroup/unified)"
    else
        echo "legacy (cgroup v1)"
    fi
}

# Times every command in the global hf_args (hyperfine -n LABEL CMD
# triples), then writes the report section KIND into docs/BENCHMARKS.md
# (or into $bench_report_doc if the script set it).
# Needs $rows (one line per command, for report.py), $runs and $warmup;
# extra "key: value" meta lines may follow as arguments.
bench_time_and_report() { # KIND JSON SECTION-NAME [META-LINE...]
    bench_time "$2"
    bench_report "$@"
}

# bench_time JSON: the hyperfine run of bench_time_and_report (hf_args,
# plus the global hf_opts, e.g. --prepare options, before them).
# shellcheck disable=SC2154 # hf_args, runs and warmup are the caller's
bench_time() {
    local json="$1"
    rm -f "$json"
    if ((${#hf_args[@]})) && [[ "${bench_interleave:-0}" == 1 ]]; then
        # Rounds of one run of each command (report.py interleave): a
        # script sets bench_interleave=1 where its rows are compared with
        # each other and take no --prepare (hf_opts).
        ((${#hf_opts[@]} == 0)) || die "interleaved timing takes no hyperfine options (${hf_opts[*]})"
        say "interleaved rounds: warmup $warmup, runs $runs, $((${#hf_args[@]} / 3)) commands"
        python3 "$bench_repo/bench/report.py" interleave "$json" "$warmup" "$runs" "${hf_args[@]}" </dev/null >&2 ||
            say "interleaved timing failed; rows without results are recorded as such"
    elif ((${#hf_args[@]})); then
        say "hyperfine: warmup $warmup, runs $runs, $((${#hf_args[@]} / 3)) commands"
        # -i: a run that fails mid-way is recorded (its exit code is in the
        # JSON and report.py marks the row failed) instead of aborting all.
        hyperfine -N -i --warmup "$warmup" --runs "$runs" --export-json "$json" "${hf_opts[@]}" "${hf_args[@]}" </dev/null >&2 ||
            say "hyperfine failed; rows without results are recorded as such"
    fi
}

# bench_report KIND JSON SECTION-NAME [META-LINE...]: the report part of
# bench_time_and_report.
# shellcheck disable=SC2154 # rows, runs and warmup are the caller's
bench_report() {
    local kind="$1" json="$2" name="$3" doc="${bench_report_doc:-$bench_doc}"
    shift 3
    local meta="$bench_tmp/meta" section="$bench_tmp/section.md" line
    {
        bench_meta
        echo "runs: $runs (after $warmup warmup runs)"
        for line in "$@"; do echo "$line"; done
        echo "tmp: $bench_tmp"
        echo "repo: $bench_repo"
    } >"$meta"
    python3 "$bench_repo/bench/report.py" "$kind" "$rows" "$json" "$meta" >"$section"
    python3 "$bench_repo/bench/report.py" section "$doc" "$section"
    cat "$section"
    say "wrote $json and the $name section of ${doc#"$bench_repo"/}"
}

hf_opts=()

# wait_gone PID [SECONDS]: up to SECONDS (default 10) for PID to exit (a
# zombie counts as gone).
wait_gone() {
    local i state
    for ((i = 0; i < ${2:-10} * 10; i++)); do
        state="$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)" || return 0
        [[ "$state" != Z ]] || return 0
        sleep 0.1
    done
    return 1
}

# bench_load_warn: say the 1-minute load average, with a warning above 0.5.
bench_load_warn() {
    local load
    load="$(cut -d' ' -f1 /proc/loadavg)"
    say "load average $(cut -d' ' -f1-3 /proc/loadavg)"
    if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.5 else 1)" "$load"; then
        say "warning: load $load above 0.5: other work is running, absolute numbers are noisy (ratios within one run hold better)"
    fi
}
