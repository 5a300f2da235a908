#!/bin/sh
# Profiles chatstore's side of the durable modes with perf, counting samples
# only inside the step (perf starts disabled; the bench enables it through a
# control FIFO around the timed call).
#
#   bench/profile-durable.sh [build-dir] [step ...]
#
# Steps: save load replay (the recovery steps, at 10^6 messages),
# save-noio load-noio load-warm replay-warm (diagnostics: no I/O, no
# first-touch page faults) and
# journal-create journal-update journal-delete (chatstore's loop of that op
# in the --durable run: the journal hook copying into the mapping, the journal
# thread preparing pages ahead).
# Default: save load replay journal-create.
# Writes bench/results/profile-durable-<step>.txt (flat, self time) and
# bench/results/profile-durable-<step>-inclusive.txt (inclusive time).
# Build with symbols and debug info for the call graphs, e.g.
#   cmake -S . -B /tmp/bench-prof -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-g
# Extra bench flags go in BENCH_FLAGS (e.g. --recovery-min 1e7 --recovery-max 1e7).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build-bench}
[ $# -gt 0 ] && shift
steps=${*:-save load replay journal-create}
bin=$build/bench/chatstore-bench
out=$here/results
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkfifo "$tmp/ctl" "$tmp/ack"

for step in $steps; do
    echo "== $step" >&2
    case $step in
    save | load | replay | save-noio | load-noio | load-warm | replay-warm)
        flags="--recovery --runs 1 --perf-step $step" ;;
    journal-*)
        flags="--durable --runs 1 --always-ops 0 --perf-op ${step#journal-} --perf-engine chatstore" ;;
    *)
        echo "unknown step: $step" >&2
        exit 2 ;;
    esac
    # shellcheck disable=SC2086
    perf record -q -D -1 --control "fifo:$tmp/ctl,$tmp/ack" -F 4000 \
        --call-graph dwarf,16384 -o "$tmp/$step.data" -- \
        "$bin" $flags ${BENCH_FLAGS:-} --perf-ctl "$tmp/ctl,$tmp/ack" \
        >"$tmp/$step.out" 2>"$tmp/$step.err" || {
        cat "$tmp/$step.err" >&2
        exit 1
    }
    perf report -i "$tmp/$step.data" --stdio --no-children --sort symbol \
        --percent-limit 0.5 -g none 2>/dev/null |
        grep -v '^$' >"$out/profile-durable-$step.txt"
    perf report -i "$tmp/$step.data" --stdio --children --sort symbol \
        --percent-limit 1 -g none 2>/dev/null |
        grep -v '^$' >"$out/profile-durable-$step-inclusive.txt"
    head -40 "$out/profile-durable-$step.txt" >&2
done
