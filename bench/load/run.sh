#!/bin/sh
# Load test, side by side in one run: chatstore-server against nginx serving
# static copies of the very same responses (one message, one page of 50),
# both driven by wrk over loopback with the same connections and duration.
# Then webhooks: creates with X-Twilio-Webhook-Enabled: true to services whose
# post_webhook_url is nginx (answering 200) against the same creates with
# webhooks off, and against a receiver that accepts and never answers (node);
# deliveries per second and delivery latency come from the server's log.
#
#   bench/load/run.sh [build-dir] [seconds] [connections] [wrk-threads]
#
# Needs wrk, nginx (Debian: wrk, nginx-light) and node. Writes a Markdown table to
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
spid=; npid=; stall=
trap 'kill $spid $npid $stall 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM
AC=AC0123456789abcdef0123456789abcdef
TOKEN=loadtoken
AUTH="Authorization: Basic $(printf '%s:%s' $AC $TOKEN | base64 -w0)"

"$bin" --listen 127.0.0.1:0 --account-sid $AC --auth-token $TOKEN >"$work/server.out" 2>"$work/server.err" &
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
        location = /hook { return 200 "ok"; }
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
    out=$(wrk -t"${MT:-$threads}" -c"${MC:-$conns}" -d"${secs}s" --latency "$@" "$url")
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

# ---- webhooks ------------------------------------------------------------
# Four services (16 connections spread over them, so deliveries of different
# services go in parallel), each with one channel; the same creates with
# webhooks on (header true, URL nginx) and off (no header).
node -e "require('net').createServer(() => {}).listen(18090, '127.0.0.1')" &
stall=$!
hooked() { # URL -> service SID with that post_webhook_url, onMessageSent and
          # onMessageUpdated, a channel "room" and in it one message (its
          # path in $work/msg-SID)
    s=$(api -X POST "$origin/v2/Services" --data-urlencode FriendlyName=hooks | sed 's/^{"sid": "\([^"]*\)".*/\1/')
    api -X POST "$origin/v2/Services/$s" --data-urlencode "PostWebhookUrl=$1" \
        --data-urlencode WebhookFilters=onMessageSent \
        --data-urlencode WebhookFilters=onMessageUpdated >/dev/null
    api -X POST "$origin/v2/Services/$s/Channels" --data-urlencode UniqueName=room >/dev/null
    m=$(api -X POST "$origin/v2/Services/$s/Channels/room/Messages" --data-urlencode Body=x |
        sed 's/^{"sid": "\([^"]*\)".*/\1/')
    echo "/v2/Services/$s/Channels/room/Messages/$m" >"$work/msg-$s"
    echo "$s"
}
lua_paths() { # service SIDs -> a wrk script posting to their channels in turn
    {
        echo 'local paths = {'
        for s in "$@"; do echo "  \"/v2/Services/$s/Channels/room/Messages\","; done
        echo '}'
        echo 'local n = 0'
        echo 'request = function()'
        echo '  n = n + 1'
        echo '  return wrk.format("POST", paths[(n % #paths) + 1], nil, "Body=Hello%2C+world%21&From=loadtest")'
        echo 'end'
        echo 'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"'
    }
}
h1=$(hooked "$ngx/hook"); h2=$(hooked "$ngx/hook"); h3=$(hooked "$ngx/hook"); h4=$(hooked "$ngx/hook")
lua_paths "$h1" "$h2" "$h3" "$h4" >"$work/hooks.lua"
st=$(hooked http://127.0.0.1:18090/stall)
# the stalled runs update one message (the store does not grow: what RSS
# shows is the webhook queue's)
lua_paths "$st" | sed "s|\"/v2/Services/.*/Messages\",|\"$(cat "$work/msg-$st")\",|" >"$work/stall.lua"
measure "create, webhooks off" "$origin/" -H "$AUTH" -s "$work/hooks.lua"
rss3=$(rss)
lines0=$(grep -c '^webhook ' "$work/server.err" || true)
measure "create, webhooks on (nginx receiver)" "$origin/" -H "$AUTH" -H "X-Twilio-Webhook-Enabled: true" -s "$work/hooks.lua"
# deliveries that ended during the run; then the queue drains
sent_run=$(grep -c -- '-> 200 attempts' "$work/server.err" || true)
sleep 3
rss4=$(rss)
grep -- '-> 200 attempts' "$work/server.err" | awk '{print $(NF-1)}' | sort -n >"$work/lat"
delivered=$(wc -l <"$work/lat")
dropped_on=$(grep -c -- '-> dropped' "$work/server.err" || true)
pct() { awk -v p="$1" '{a[NR]=$1} END {if (NR) {i=int(NR*p/100); if (i<1) i=1; printf "%.1f ms", a[i]} else print "n/a"}' "$work/lat"; }
lat50=$(pct 50); lat99=$(pct 99)
# below the delivery rate: one connection
MC=1 MT=1 measure "create, webhooks on, 1 connection" "$origin/" -H "$AUTH" -H "X-Twilio-Webhook-Enabled: true" -s "$work/hooks.lua"
sleep 1
grep -- '-> 200 attempts' "$work/server.err" | tail -n +$((delivered + 1)) | awk '{print $(NF-1)}' | sort -n >"$work/lat"
low50=$(pct 50); low99=$(pct 99); lown=$(wc -l <"$work/lat")
measure "update, webhooks off" "$origin/" -H "$AUTH" -s "$work/stall.lua"
rss5a=$(rss)
measure "update, webhooks on (receiver stalls)" "$origin/" -H "$AUTH" -H "X-Twilio-Webhook-Enabled: true" -s "$work/stall.lua"
rss5b=$(rss)
measure "update, webhooks on (receiver stalls, again)" "$origin/" -H "$AUTH" -H "X-Twilio-Webhook-Enabled: true" -s "$work/stall.lua"
rss5=$(rss)
dropped_all=$(grep -c -- '-> dropped' "$work/server.err" || true)

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
    echo "| create, webhooks on / off | $(ratio "$(val 'create, webhooks on (nginx receiver)')" "$(val 'create, webhooks off')") | >= 0.7 |"
    echo "| update, receiver stalls / webhooks off | $(ratio "$(val 'update, webhooks on (receiver stalls)')" "$(val 'update, webhooks off')") | (p99 unchanged) |"
    echo
    echo "server RSS: ${rss0} KiB before, ${rss1} KiB after the read runs, ${rss2} KiB after the create run"
    echo
    echo "Webhooks (4 services, the receiver nginx answering 200; queue 10000):"
    echo "$sent_run deliveries in the ${secs} s run ($(awk -v a="$sent_run" -v b="$secs" 'BEGIN {printf "%.0f", a / b}') per second),"
    echo "$delivered once drained; $((lines0)) log lines before; dropped $dropped_on;"
    echo "delivery latency (commit to answer) p50 $lat50, p99 $lat99 (the API outruns the"
    echo "deliveries: the latency is the full queue's wait); with 1 connection, $lown"
    echo "deliveries, latency p50 $low50, p99 $low99."
    echo "Receiver that never answers (updates of one message): dropped $((dropped_all - dropped_on));"
    echo "server RSS ${rss3} KiB before the webhook runs, ${rss4} KiB after the create runs,"
    echo "${rss5a} KiB before the stalled runs, ${rss5b} KiB after the first, ${rss5} KiB after the second."
} | tee "$root/bench/results/load.md"
