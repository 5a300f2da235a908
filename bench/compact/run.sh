#!/bin/sh
# Message creates' latency while chatstore-server --data-dir compacts a
# store of N messages (default 10^7), against the same load without a
# compaction; see chatstore-compact-bench (bench/compact.c) for what is
# measured and how.
#
#   bench/compact/run.sh [build-dir] [messages] [reps] [other-server label]
#
# Each rep runs, in this order: a forced compaction with --fsync everysec,
# the same with --fsync always (at 250 a second: each create waits for an
# fdatasync, slow on a shared disk), [the other server binary, e.g. one built
# from an older commit, with everysec,] and no compaction (everysec), each
# on a fresh copy of a data directory made once (make). Needs about 3 times
# the snapshot's size in $TMPDIR (1.6 GB per copy at 10^7) and 2.5 times the
# store's memory (1.8 GiB at 10^7). Writes bench/results/compact.txt.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
n=${2:-1e7}
reps=${3:-3}
other=${4:-}
other_label=${5:-other}
bench=$build/bench/chatstore-compact-bench
server=$build/server/chatstore-server
[ -x "$bench" ] && [ -x "$server" ] || { echo "build first: no $bench or $server"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/chatstore-compact-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
out=$root/bench/results/compact.txt
tmp=$work/out.txt
{
    echo "# bench/compact/run.sh $n messages, $reps rep(s), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet -- lib include server bench 2>/dev/null || echo ' (code modified)')"
    echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd "$work" && "$bench" make template "$n")
} | tee "$tmp"
run() { # label, server, args...
    label=$1; bin=$2; shift 2
    rm -rf "$work/data"
    cp -r "$work/template" "$work/data"
    sync # the copy is on disk before the server starts: its writeback is not measured
    "$bench" run "$bin" "$work/data" --label "$label" --log "$work/$label.log" "$@" | tee -a "$tmp"
    rm -rf "$work/data"
}
for i in $(seq "$reps"); do
    echo "--- rep $i" | tee -a "$tmp"
    run "rebuild (this build), everysec" "$server" --min-bytes 4000000 --secs 90 --tail 3 --timeline 1
    run "rebuild (this build), always" "$server" --fsync always --rate 250 --min-bytes 250000 --secs 90 --tail 3 --timeline 1
    [ -z "$other" ] || run "$other_label, everysec" "$other" --min-bytes 4000000 --secs 90 --tail 3 --timeline 1
    run "no compaction, everysec" "$server" --no-compact --secs 15
done
mkdir -p "$root/bench/results"
cp "$tmp" "$out"
echo "written: $out"
