#!/bin/sh
# Message creates under load, with and without the journal: chatstore-server
# (a) without --data-dir, (b) with --data-dir --fsync everysec, (c) with
# --data-dir --fsync always, each driven by wrk over loopback with the same
# connections and duration (POSTs: bench/load/post.lua). The rows run in
# rotating order, `rounds` times each, and each keeps its fastest round.
# Besides requests/s and latency, the server's CPU time (user + system, all
# its threads, from /proc) per request: on a machine shared with other work
# the rates swing with the load, the CPU a request costs much less.
#
#   bench/load/durable.sh [build-dir] [seconds] [connections] [wrk-threads] [rounds]
#
# SERVER=path runs another chatstore-server binary (e.g. an older build, to
# compare); LABEL names it in the output. The data directories go in a
# fresh directory under $TMPDIR (default /tmp): its filesystem is the one
# measured. Needs wrk (Debian: wrk). Writes a Markdown table to
# bench/results/load-durable.md (unless OUT says where) and prints it.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
secs=${2:-10}
conns=${3:-16}
threads=${4:-2}
rounds=${5:-1}
bin=${SERVER:-$build/server/chatstore-server}
label=${LABEL:-chatstore-server}
out=${OUT:-$root/bench/results/load-durable.md}
[ -x "$bin" ] || { echo "no server at $bin (build first)"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed"; exit 1; }
work=$(mktemp -d)
spid=
trap 'if [ -n "$spid" ]; then kill "$spid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT INT TERM
AC=AC0123456789abcdef0123456789abcdef
TOKEN=loadtoken
AUTH="Authorization: Basic $(printf '%s:%s' $AC $TOKEN | base64 -w0)"
api() { curl -sf -H "$AUTH" "$@"; }

# Starts the server with the given extra flags; sets spid and origin.
start() {
    : >"$work/server.out"
    "$bin" --listen 127.0.0.1:0 --account-sid $AC --auth-token $TOKEN "$@" \
        >"$work/server.out" 2>"$work/server.err" &
    spid=$!
    for t in $(seq 100); do grep -q listening "$work/server.out" && break; sleep 0.1; done
    origin=$(sed -n 's/^listening on //p' "$work/server.out")
    [ -n "$origin" ] || { echo "the server did not start:"; cat "$work/server.err"; exit 1; }
}

stop() {
    kill "$spid"
    wait "$spid" || { echo "the server did not stop cleanly:"; cat "$work/server.err"; exit 1; }
    spid=
}

# The server's CPU time so far, in clock ticks (utime + stime).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$spid/stat"; }
hz=$(getconf CLK_TCK)

results=$work/results
: >"$results"
# name, flags...: one round of one row.
measure() {
    name=$1
    shift
    rm -rf "$work/data"
    start "$@"
    svc=$(api -X POST "$origin/v2/Services" --data-urlencode FriendlyName=load |
        sed 's/^{"sid": "\([^"]*\)".*/\1/')
    api -X POST "$origin/v2/Services/$svc/Channels" --data-urlencode UniqueName=room >/dev/null
    c0=$(cpu_ticks)
    o=$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -H "$AUTH" \
        -s "$root/bench/load/post.lua" "$origin/v2/Services/$svc/Channels/room/Messages")
    c1=$(cpu_ticks)
    reqs=$(echo "$o" | awk '/requests in/ {print $1}')
    cpu=$(awk -v t="$((c1 - c0))" -v hz="$hz" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.1f", t / hz / n * 1e6; else print "n/a" }')
    rps=$(echo "$o" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$o" | awk '$1=="50%" {print $2}')
    p99=$(echo "$o" | awk '$1=="99%" {print $2}')
    errs=$(echo "$o" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {n+=1} END {print n+0}')
    stop
    echo "$name|$rps|$p50|$p99|$errs|$cpu" >>"$results"
    echo "$name: $rps req/s, p50 $p50, p99 $p99, errors $errs, server CPU $cpu us/request" >&2
}

round=0
while [ "$round" -lt "$rounds" ]; do
    for k in 0 1 2; do
        case $(((round + k) % 3)) in
        0) measure "memory only (no --data-dir)" ;;
        1) measure "--data-dir, --fsync everysec" --data-dir "$work/data" --fsync everysec ;;
        2) measure "--data-dir, --fsync always" --data-dir "$work/data" --fsync always ;;
        esac
    done
    round=$((round + 1))
done

# The fastest round of each row.
best=$work/best
for name in "memory only (no --data-dir)" "--data-dir, --fsync everysec" "--data-dir, --fsync always"; do
    awk -F'|' -v n="$name" '$1==n && ($2+0 > best+0) {best=$2; line=$0} END {print line}' "$results"
done >"$best"
val() { awk -F'|' -v n="$1" '$1==n {print $2}' "$best"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mem=$(val "memory only (no --data-dir)")
mkdir -p "$(dirname "$out")"
{
    echo "$label: message creates, wrk -t$threads -c$conns -d${secs}s on loopback, best of $rounds round(s) per row (rows in rotating order); data directory on $(df -T "$work" | awk 'NR==2 {print $2}')"
    echo
    echo "| server | requests/s | p50 | p99 | errors | / memory only | server CPU per request (all rounds: lowest, median) |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    while IFS='|' read -r n r a b e c; do
        cpus=$(awk -F'|' -v n="$n" '$1==n {print $6}' "$results" | sort -n)
        lo=$(echo "$cpus" | head -1)
        med=$(echo "$cpus" | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}')
        printf '| %s | %s | %s | %s | %s | %s | %s, %s us |\n' "$n" "$r" "$a" "$b" "$e" \
            "$(ratio "$r" "$mem")" "$lo" "$med"
    done <"$best"
    echo
    echo "goals: everysec >= 0.9x memory only ($(ratio "$(val '--data-dir, --fsync everysec')" "$mem")), always >= 0.4x ($(ratio "$(val '--data-dir, --fsync always')" "$mem")) with p99 < 10 ms"
} | tee "$out"
