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
# the marks (use -q). GROUP_STEPS=1 sums each block of `step: …` marks
# into one line (as bench/lifecycle.sh's table does). The parser is
# report.py's `phases`.
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
python3 "$(dirname "$0")/report.py" phases "$log" ${GROUP_STEPS:+--group}
