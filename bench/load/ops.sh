#!/bin/sh
# What the operators' features cost under load: the same server with the
# access log off and on (--access-log FILE), and optionally a build without
# the request metrics (BASE_BIN=path/to/an/older/chatstore-server), side by
# side in one run. The variants alternate round by round (wrk -t2 -c16 on
# loopback, message fetch and message create), so the machine's noise hits
# them alike; each row keeps the best of its rounds. nginx serving a static
# copy of the fetched message runs in the same rounds as the reference.
#
#   bench/load/ops.sh [build-dir] [seconds] [rounds]
#
# Needs wrk and nginx (Debian: wrk, nginx-light). Writes
# bench/results/load-ops.md and prints it.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
secs=${2:-5}
rounds=${3:-3}
bin=$build/server/chatstore-server
[ -x "$bin" ] || { echo "no server at $bin (build first)"; exit 1; }
work=$(mktemp -d)
pids=
trap 'kill $pids 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM
AC=AC0123456789abcdef0123456789abcdef
TOKEN=loadtoken
AUTH="Authorization: Basic $(printf '%s:%s' $AC $TOKEN | base64 -w0)"

# start NAME BIN ARGS...: a server with one service, channel "room" and 60
# messages; sets $NAME_origin and $NAME_msg (a message's path)
start() {
    name=$1; b=$2; shift 2
    "$b" --listen 127.0.0.1:0 --account-sid $AC --auth-token $TOKEN "$@" \
        >"$work/$name.out" 2>"$work/$name.err" &
    pids="$pids $!"
    for i in $(seq 50); do grep -q listening "$work/$name.out" && break; sleep 0.1; done
    o=$(sed -n 's/^listening on //p' "$work/$name.out")
    api() { curl -sf -H "$AUTH" "$@"; }
    s=$(api -X POST "$o/v2/Services" --data-urlencode FriendlyName=load | sed 's/^{"sid": "\([^"]*\)".*/\1/')
    api -X POST "$o/v2/Services/$s/Channels" --data-urlencode UniqueName=room >/dev/null
    for i in $(seq 60); do
        api -X POST "$o/v2/Services/$s/Channels/room/Messages" \
            --data-urlencode "Body=Message number $i, with a little text to read" \
            --data-urlencode From=alice >/dev/null
    done
    m=$(api "$o/v2/Services/$s/Channels/room/Messages?PageSize=1" | sed 's/.*"messages": \[{"sid": "\([^"]*\)".*/\1/')
    eval "${name}_origin=$o"
    eval "${name}_msgs=/v2/Services/$s/Channels/room/Messages"
    eval "${name}_msg=/v2/Services/$s/Channels/room/Messages/$m"
}

variants="off on"
start off "$bin"
start on "$bin" --access-log "$work/access.log"
if [ -n "${BASE_BIN:-}" ]; then
    start base "$BASE_BIN"
    variants="base off on"
fi

mkdir -p "$work/www"
chmod 755 "$work"
curl -sf -H "$AUTH" "$off_origin$off_msg" >"$work/www/message.json"
chmod -R a+rX "$work/www"
cat >"$work/nginx.conf" <<NGX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/json;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:18091; root $work/www; }
}
NGX
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids="$pids $!"
sleep 0.5

results=$work/results
: >"$results"
# row NAME URL wrk-args...: appends "NAME|rps|p50|p99"
row() {
    n=$1; u=$2; shift 2
    out=$(wrk -t2 -c16 -d"${secs}s" --latency "$@" "$u")
    echo "$n|$(echo "$out" | awk '/Requests\/sec/ {print $2}')|$(echo "$out" | awk '$1=="50%" {print $2}')|$(echo "$out" | awk '$1=="99%" {print $2}')|$(echo "$out" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {n+=1} END {print n+0}')" >>"$results"
}
for r in $(seq "$rounds"); do
    row "message fetch: nginx" "http://127.0.0.1:18091/message.json"
    for v in $variants; do
        eval "o=\$${v}_origin; m=\$${v}_msg"
        row "message fetch: $v" "$o$m" -H "$AUTH"
    done
    for v in $variants; do
        eval "o=\$${v}_origin; ms=\$${v}_msgs"
        row "message create: $v" "$o$ms" -H "$AUTH" -s "$root/bench/load/post.lua"
    done
done

lines=$(wc -l <"$work/access.log")
bytes=$(wc -c <"$work/access.log")
# best of the rounds per row (by requests/s), with that round's latencies
best() { awk -F'|' -v n="$1" '$1==n && $2+0 > b {b=$2+0; l=$0} END {print l}' "$results"; }
rps() { best "$1" | awk -F'|' '{print $2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mkdir -p "$root/bench/results"
{
    echo "wrk -t2 -c16 -d${secs}s on loopback, $rounds rounds alternating the variants, best round per row"
    echo "(off: this build; on: this build with --access-log FILE${BASE_BIN:+; base: BASE_BIN, a build from before the request metrics})"
    echo
    echo "| request | requests/s (best) | p50 | p99 | errors | / off |"
    echo "|---|---:|---:|---:|---:|---:|"
    for n in "message fetch: nginx" $(for v in $variants; do echo "message_fetch:_$v"; done) \
             $(for v in $variants; do echo "message_create:_$v"; done); do
        n=$(echo "$n" | tr _ ' ')
        case $n in *fetch*) off=$(rps "message fetch: off") ;; *) off=$(rps "message create: off") ;; esac
        best "$n" | awk -F'|' -v r="$(ratio "$(rps "$n")" "$off")" '{printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, r}'
    done
    echo
    echo "every round:"
    echo
    echo '```'
    cat "$results"
    echo '```'
    echo
    echo "access log: $lines lines, $bytes bytes ($(awk -v a="$bytes" -v b="$lines" 'BEGIN {printf "%.0f", a / b}') bytes a line)"
} | tee "$root/bench/results/load-ops.md"
