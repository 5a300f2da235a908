#!/bin/sh
# Soak: chatstore-server under a steady mixed workload at a fixed request
# rate for a bounded time, to show whether its memory, file descriptors and
# latency stay flat (a leak or a slowdown shows as a slope, not as a crash).
#
#   bench/load/soak.sh [build-dir] [seconds] [rate] [memory|durable]
#
# defaults: build, 600 s, 200 requests/s, memory. durable runs the server
# with --data-dir (a fresh temporary directory) --fsync everysec and
# --compact-min-bytes 4 MiB, so that compactions run during the soak.
# The workload and the sampling are bench/load/soak.js's (node, built-in
# modules only): creates, deletes of the oldest (the store stays at 8
# channels of 500-550 messages), fetches, pages asc and desc with their
# page tokens, updates, fetches of deleted messages (404 expected), media
# uploads of 10-100 KiB with a message carrying each, media content, and a
# channel created and deleted now and then. Every SOAK_WINDOW seconds
# (default 5) it samples the server's RSS (/proc/PID/status VmRSS), open
# file descriptors (/proc/PID/fd), CPU, and the latency and errors of the
# requests answered in that window.
# SOAK_MEDIA_PCT: the media uploads' share of the requests, in percent
# (default 0.5: one a second at 200 requests/s; 0: none). SOAK_TAG: a
# suffix for the results' names (soak-MODE-TAG.*).
#
# Writes bench/results/soak-MODE.csv (one row per window), soak-MODE.svg
# (RSS, open fds and p99 against time; soak-plot.sh, gnuplot) and soak-MODE.md (the
# verdicts: RSS and fds by their slope over the second half, p99 by its floor
# in the second half against the first; RSS, fds and p99 by minute; latency
# by operation). Exit status 1 when a request failed or a series grows.
# Needs node and gnuplot (Debian: nodejs, gnuplot-nox).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
secs=${2:-600}
rate=${3:-200}
mode=${4:-memory}
window=${SOAK_WINDOW:-5}
bin=$build/server/chatstore-server
[ -x "$bin" ] || { echo "no server at $bin (build first)"; exit 1; }
command -v node >/dev/null || { echo "soak.sh: node not found" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "soak.sh: gnuplot not found" >&2; exit 1; }
case $mode in
    memory) durable_args=;;
    durable) durable_args=yes;;
    *) echo "soak.sh: mode is memory or durable, not $mode" >&2; exit 2;;
esac
work=$(mktemp -d "${TMPDIR:-/tmp}/chatstore-soak-XXXXXX")
spid=
trap 'kill $spid 2>/dev/null || true; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP PIPE
AC=AC0123456789abcdef0123456789abcdef
TOKEN=soaktoken
out=$root/bench/results
mkdir -p "$out"
name=soak-$mode${SOAK_TAG:+-$SOAK_TAG}
csv=$out/$name.csv

if [ -n "$durable_args" ]; then
    mkdir "$work/data"
    "$bin" --listen 127.0.0.1:0 --account-sid $AC --auth-token $TOKEN \
        --data-dir "$work/data" --fsync everysec --compact-min-bytes 4194304 \
        >"$work/server.out" 2>"$work/server.err" &
    dir_arg=$work/data
else
    "$bin" --listen 127.0.0.1:0 --account-sid $AC --auth-token $TOKEN \
        >"$work/server.out" 2>"$work/server.err" &
    dir_arg=
fi
spid=$!
for i in $(seq 100); do grep -q listening "$work/server.out" && break; sleep 0.1; done
origin=$(sed -n 's/^listening on //p' "$work/server.out")
[ -n "$origin" ] || { echo "soak.sh: the server did not start:"; cat "$work/server.err"; exit 1; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
status=0
SOAK_SERVER_LOG=$work/server.err node "$root/bench/load/soak.js" "$origin" $AC $TOKEN "$spid" "$secs" "$rate" \
    "$window" "$csv" "$work/summary.txt" $dir_arg || status=$?
[ $status -le 1 ] || { echo "soak.sh: the load generator failed ($status)"; cat "$work/server.err"; exit $status; }
kill -0 "$spid" 2>/dev/null || { echo "soak.sh: the server died:"; cat "$work/server.err"; exit 1; }
load1=$(cut -d' ' -f1-3 /proc/loadavg)
compactions=$(grep -c '^chatstore-server: compaction: snapshot-' "$work/server.err" || true)

# the code that ran: the last commit that changed it, and whether the work
# tree differs
code=$(git -C "$root" log -1 --format=%h -- lib include server 2>/dev/null || echo '?')
git -C "$root" diff --quiet HEAD -- lib include server 2>/dev/null || code="$code (modified)"

# ---- plot (soak-plot.sh) -------------------------------------------------
"$root/bench/load/soak-plot.sh" "$csv" "$out/$name.svg" \
    "chatstore-server soak ($mode${SOAK_TAG:+, $SOAK_TAG}): $rate requests/s, ${window} s windows, code $code" >/dev/null

# ---- the results file ----------------------------------------------------
by_minute() { # RSS, fds and p99 of the window closest to each minute
    awk -F, 'NR > 1 {
        m = int(($1 + 2.5) / 60)
        if (!(m in seen) || ($1 - m * 60) ^ 2 < best[m]) {
            seen[m] = 1; best[m] = ($1 - m * 60) ^ 2
            row[m] = sprintf("| %d | %.1f | %.1f | %d | %.2f | %.2f | %.2f | %d |", m, $1, $2 / 1024, $3, $8, $9, $13, $7)
        }
        if (m > last) last = m
    } END { for (i = 0; i <= last; i++) if (i in row) print row[i] }' "$csv"
}
{
    echo "# Soak ($mode): $secs s at $rate requests/s"
    echo
    echo "\`${SOAK_MEDIA_PCT:+SOAK_MEDIA_PCT=$SOAK_MEDIA_PCT }${SOAK_TAG:+SOAK_TAG=$SOAK_TAG }bench/load/soak.sh build $secs $rate $mode\`;"
    echo "library and server as of $code (the last commit changing lib/, include/ or server/),"
    echo "$(date -u '+%Y-%m-%d %H:%M') UTC; the machine's load average (1, 5, 15 min) $load0 before, $load1 after."
    if [ -n "$durable_args" ]; then
        echo "--data-dir, --fsync everysec, --compact-min-bytes 4194304: $compactions compactions during the run"
        echo "(the CSV's last column counts them; the server's lines below)."
    fi
    echo "Plot: \`$name.svg\`; every window: \`$name.csv\`."
    echo
    echo '```'
    sed -n '1,8p' "$work/summary.txt"
    echo '```'
    echo
    echo "By minute (the window nearest each minute; minute 0 is the store filled, before the mixed load):"
    echo
    echo "| minute | t (s) | RSS (MiB) | open fds | p50 (ms) | p99 (ms) | p99 reply alone (ms) | errors |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
    by_minute
    echo
    sed -n '9,$p' "$work/summary.txt"
    if [ -n "$durable_args" ]; then
        echo
        echo "The server's compaction lines:"
        echo
        echo '```'
        grep '^chatstore-server: compaction' "$work/server.err" | sed 's/^chatstore-server: //' || true
        echo '```'
    fi
} >"$out/$name.md"
echo "wrote $csv, $out/$name.svg, $out/$name.md"
[ -n "$durable_args" ] && echo "compactions during the run: $compactions"
exit $status
