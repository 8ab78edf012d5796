#!/usr/bin/env bash
# Where a run's time goes: runs a command RUNS times with ROOTCELL_PHASES=1
# (every rootcell process writes `rootcell-phase <pid> <monotonic s> <name>`
# to stderr at each phase boundary) and prints, per phase, the median and
# mean time since the previous mark (in the order the marks come).
#
#   bench/phases.sh [RUNS] -- rootcell sandbox -q -- true
#   RUNS=200 bench/phases.sh -- rootcell run -b bundle id
#
# The command's own stdout is discarded; its stderr must carry nothing but
# the marks (use -q).
set -euo pipefail
runs=${RUNS:-100}
if [[ ${1:-} =~ ^[0-9]+$ ]]; then runs=$1; shift; fi
[[ ${1:-} == -- ]] && shift
[[ $# -gt 0 ]] || { echo "usage: $0 [RUNS] -- COMMAND..." >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for ((i = 0; i < runs; i++)); do
    echo "run $i" >>"$log"
    ROOTCELL_PHASES=1 "$@" 2>>"$log" >/dev/null || { echo "run $i failed" >&2; exit 1; }
done
python3 - "$log" "$runs" <<'PY'
import statistics, sys
log, runs = sys.argv[1], int(sys.argv[2])
gaps, order, prev = {}, [], None
totals = []
first = None
for line in open(log):
    parts = line.split(maxsplit=3)
    if parts[0] == "run":
        if first is not None and prev is not None:
            totals.append(prev - first)
        prev = first = None
        continue
    if parts[0] != "rootcell-phase":
        continue
    t, name = float(parts[2]), parts[3].strip()
    if prev is not None:
        gaps.setdefault(name, []).append((t - prev) * 1e3)
        if name not in order:
            order.append(name)
    else:
        first = t
    prev = t
if first is not None and prev is not None:
    totals.append(prev - first)
print(f"{'phase (time since the previous mark)':44} {'median ms':>10} {'mean ms':>10}")
for name in order:
    v = gaps[name]
    print(f"{name:44} {statistics.median(v):10.3f} {statistics.mean(v):10.3f}")
if totals:
    print(f"{'first to last mark':44} {statistics.median(totals)*1e3:10.3f} {statistics.mean(totals)*1e3:10.3f}")
print(f"({runs} runs)")
PY
