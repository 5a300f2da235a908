#!/bin/sh
# Load test, side by side in one run: chatstore-server against nginx serving
# static copies of the very same responses (one message, one page of 50),
# both driven by wrk over loopback with the same connections and duration.
#
#   bench/load/run.sh [build-dir] [seconds] [connections] [wrk-threads]
#
# Needs wrk and nginx (Debian: wrk, nginx-light). Writes a Markdown table to
# bench/results/load.md and prints it.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
secs=${2:-10}
conns=${3:-16}
threads=${4:-2}
bin=$build/server/chatstore-server
[ -x "$bin" ] || { echo "no server at $bin (build first)"; exit 1; }
work=$(mktemp -d)
trap 'kill $spid $npid 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM
AC=AC0123456789abcdef0123456789abcdef
TOKEN=loadtoken
AUTH="Authorization: Basic $(printf '%s:%s' $AC $TOKEN | base64 -w0)"

"$bin" --listen 127.0.0.1:0 --account-sid $AC --auth-token $TOKEN >"$work/server.out" 2>&1 &
spid=$!
for i in $(seq 50); do grep -q listening "$work/server.out" && break; sleep 0.1; done
origin=$(sed -n 's/^listening on //p' "$work/server.out")
api() { curl -sf -H "$AUTH" "$@"; }
svc=$(api -X POST "$origin/v2/Services" --data-urlencode FriendlyName=load | sed 's/^{"sid": "\([^"]*\)".*/\1/')
api -X POST "$origin/v2/Services/$svc/Channels" --data-urlencode UniqueName=room >/dev/null
msgs="$origin/v2/Services/$svc/Channels/room/Messages"
for i in $(seq 60); do
    api -X POST "$msgs" --data-urlencode "Body=Message number $i, with a little text to read" \
        --data-urlencode From=alice >/dev/null
done
first=$(api "$msgs?PageSize=1" | sed 's/.*"messages": \[{"sid": "\([^"]*\)".*/\1/')
msg_path="/v2/Services/$svc/Channels/room/Messages/$first"
page_path="/v2/Services/$svc/Channels/room/Messages?PageSize=50"

# nginx serves byte-identical copies of the two responses.
chmod 755 "$work"
mkdir -p "$work/www"
api "$origin$msg_path" >"$work/www/message.json"
api "$origin$page_path" >"$work/www/page.json"
cat >"$work/nginx.conf" <<NGX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/json;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:18089;
        root $work/www;
    }
}
NGX
chmod -R a+rX "$work/www"
nginx -c "$work/nginx.conf" -g 'daemon off;' &
npid=$!
sleep 0.5
ngx=http://127.0.0.1:18089

rss() { awk '/VmRSS/ {print $2}' "/proc/$spid/status"; }
results=$work/results
: >"$results"
# name, url, extra wrk args...
measure() {
    name=$1; url=$2; shift 2
    out=$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$@" "$url")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {n+=1} END {print n+0}')
    echo "$name|$rps|$p50|$p99|$errs" >>"$results"
}
rss0=$(rss)
measure "message fetch: chatstore" "$origin$msg_path" -H "$AUTH"
measure "message fetch: nginx" "$ngx/message.json"
measure "page of 50: chatstore" "$origin$page_path" -H "$AUTH"
measure "page of 50: nginx" "$ngx/page.json"
rss1=$(rss)
measure "message create: chatstore" "$origin/v2/Services/$svc/Channels/room/Messages" -H "$AUTH" -s "$root/bench/load/post.lua"
rss2=$(rss)

val() { awk -F'|' -v n="$1" '$1==n {print $2}' "$results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mkdir -p "$root/bench/results"
{
    echo "wrk -t$threads -c$conns -d${secs}s on loopback; message $(wc -c <"$work/www/message.json") bytes, page $(wc -c <"$work/www/page.json") bytes"
    echo
    echo "| request | requests/s | p50 | p99 | errors |"
    echo "|---|---:|---:|---:|---:|"
    awk -F'|' '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}' "$results"
    echo
    echo "| ratio | value | target |"
    echo "|---|---:|---:|"
    echo "| fetch / nginx fetch | $(ratio "$(val 'message fetch: chatstore')" "$(val 'message fetch: nginx')") | >= 0.5 |"
    echo "| page / nginx page | $(ratio "$(val 'page of 50: chatstore')" "$(val 'page of 50: nginx')") | >= 0.5 |"
    echo "| create / nginx fetch | $(ratio "$(val 'message create: chatstore')" "$(val 'message fetch: nginx')") | >= 0.4 |"
    echo
    echo "server RSS: ${rss0} KiB before, ${rss1} KiB after the read runs, ${rss2} KiB after the create run"
} | tee "$root/bench/results/load.md"
