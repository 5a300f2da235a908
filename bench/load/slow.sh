#!/bin/sh
# Well-behaved clients' latency with and without hundreds of slow and idle
# connections held open (bench/load/slow.js; the pass/fail side is ctest
# server_slow). Writes bench/results/slow.md and prints it.
#
#   bench/load/slow.sh [build-dir] [seconds-per-phase] [attackers] [runs]
#
# Needs node. The machine is shared: compare the two phases of one run,
# and take the best of several runs (runs, default 3).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
secs=${2:-10}
n=${3:-600}
runs=${4:-3}
bin=$build/server/chatstore-server
[ -x "$bin" ] || { echo "no server at $bin (build first)"; exit 1; }
out=$root/bench/results/slow.md
{
    echo "# Slow and idle clients"
    echo
    echo "\`bench/load/slow.sh\` at $(git -C "$root" rev-parse --short HEAD), $(nproc) cores shared, $(date -u +%Y-%m-%d)."
    for i in $(seq "$runs"); do
        echo
        echo "## run $i"
        echo
        node "$root/bench/load/slow.js" "$bin" "$secs" "$n"
    done
} >"$out"
cat "$out"
