#!/bin/sh
# Profiles chatstore's side of chosen operations with perf, counting samples
# only inside that operation's timed loop (perf starts disabled and the bench
# enables it through a control FIFO around the loop).
#
#   bench/profile.sh [build-dir] [op ...]
#
# Default ops: create fetch page_asc page_desc update delete create_steady.
# Writes bench/results/profile-<op>.txt (flat, self time) and
# bench/results/profile-<op>-inclusive.txt (inclusive time per function,
# inlined functions included).
# Extra bench flags go in BENCH_FLAGS (default: the 10^6 workload with
# longer read loops so each profile has enough samples).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build-bench}
[ $# -gt 0 ] && shift
ops=${*:-create fetch page_asc page_desc update delete create_steady}
bin=$build/bench/chatstore-bench
out=$here/results
mkdir -p "$out"
flags=${BENCH_FLAGS:---cs-only --runs 1 --no-scale --fetch 1000000 --pages 60000 --updates 400000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkfifo "$tmp/ctl" "$tmp/ack"

for op in $ops; do
    echo "== $op" >&2
    # shellcheck disable=SC2086
    perf record -q -D -1 --control "fifo:$tmp/ctl,$tmp/ack" -F 4000 \
        --call-graph dwarf,16384 -o "$tmp/$op.data" -- \
        "$bin" $flags --perf-ctl "$tmp/ctl,$tmp/ack" --perf-op "$op" \
        --perf-engine chatstore >/dev/null 2>"$tmp/$op.err" || {
        cat "$tmp/$op.err" >&2
        exit 1
    }
    perf report -i "$tmp/$op.data" --stdio --no-children --sort symbol \
        --percent-limit 0.5 -g none 2>/dev/null |
        grep -v '^$' >"$out/profile-$op.txt"
    perf report -i "$tmp/$op.data" --stdio --children --sort symbol \
        --percent-limit 1 -g none 2>/dev/null |
        grep -v '^$' >"$out/profile-$op-inclusive.txt"
    head -30 "$out/profile-$op.txt" >&2
done
