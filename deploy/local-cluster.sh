#!/bin/sh
# A chatstore cluster on this machine's loopback, for trying replication and
# sharding by hand: three nats-server processes as one JetStream cluster,
# a primary and a follower chatstore-server per shard, and HAProxy in front
# (deploy/haproxy-config.sh). Prints the URL and the credentials, then runs
# until Ctrl-C / SIGTERM, which stops every process it started.
# Run it from the repository root after building into build/.
#
# Usage: deploy/local-cluster.sh [--shards N] [--replication sync|async]
#            [--port-base P] [--dir DIR] [--build DIR] [--threads N]
#   --shards N        shards, 1..49 (default 2)
#   --replication M   sync (default) or async, given to every server
#   --threads N       request threads of every server (default 1, the
#                     server's own default; a synchronous write waits for
#                     JetStream with its connection parked, not holding a
#                     thread, so one thread is enough for group commit)
#   --port-base P     HAProxy listens on P; the servers of shard K on
#                     P+1+2K (primary sKa) and P+2+2K (follower sKb); NATS
#                     on P+100..P+102 (clients), P+110..P+112 (cluster
#                     routes), P+120..P+122 (monitoring). Default 8400.
#   --dir DIR         state and logs (default: a new temporary directory,
#                     removed at the end; a given DIR is kept)
#   --build DIR       build directory holding server/chatstore-server
#                     (default build)
set -eu

shards=2; mode=sync; base=8400; dir=; build=build; threads=1
while [ $# -gt 0 ]; do
    case $1 in
        --shards) shards=$2; shift 2 ;;
        --replication) mode=$2; shift 2 ;;
        --port-base) base=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --build) build=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "$0: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case $shards in ''|*[!0-9]*) echo "$0: --shards takes 1..49" >&2; exit 2 ;; esac
[ "$shards" -ge 1 ] && [ "$shards" -le 49 ] || { echo "$0: --shards takes 1..49" >&2; exit 2; }
case $mode in sync|async) ;; *) echo "$0: --replication takes sync or async" >&2; exit 2 ;; esac
case $base in ''|*[!0-9]*) echo "$0: --port-base takes a port" >&2; exit 2 ;; esac
case $threads in ''|*[!0-9]*) echo "$0: --threads takes a number" >&2; exit 2 ;; esac
[ "$base" -ge 1024 ] && [ "$base" -le 65000 ] || { echo "$0: --port-base takes 1024..65000" >&2; exit 2; }

bin=$build/server/chatstore-server
[ -x "$bin" ] || { echo "$0: $bin not found: build first (cmake -S . -B build && cmake --build build)" >&2; exit 1; }
command -v nats-server >/dev/null || { echo "$0: nats-server is not installed" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "$0: haproxy is not installed" >&2; exit 1; }
command -v curl >/dev/null || { echo "$0: curl is not installed" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)

keep=1
if [ -z "$dir" ]; then dir=$(mktemp -d); keep=0; fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pids=

stop_all() {
    trap - EXIT INT TERM HUP
    # HAProxy first, then the chatstore servers, NATS last.
    rev=
    for p in $pids; do rev="$p $rev"; done
    for p in $rev; do kill -TERM "$p" 2>/dev/null || true; done
    t=0
    while [ $t -lt 50 ]; do
        alive=
        for p in $rev; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ -z "$alive" ] && break
        sleep 0.1; t=$((t + 1))
    done
    for p in $rev; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ $keep = 0 ]; then rm -rf "$dir"; else echo "logs and state kept in $dir"; fi
}
trap 'stop_all' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
account=AC$(hex 16)
token=$(hex 16)
url=http://127.0.0.1:$base

# ---- NATS: three servers, one JetStream cluster ---------------------------
routes=
for i in 0 1 2; do
    routes="$routes${routes:+, }nats-route://127.0.0.1:$((base + 110 + i))"
done
nats_urls=
for i in 0 1 2; do
    mkdir -p "$dir/nats$i/js"
    cat >"$dir/nats$i/nats.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:$((base + 100 + i))
http: 127.0.0.1:$((base + 120 + i))
max_payload: 8MB
jetstream {
    store_dir: "$dir/nats$i/js"
}
cluster {
    name: chatstore
    listen: 127.0.0.1:$((base + 110 + i))
    routes: [ $routes ]
}
EOF
    nats-server -c "$dir/nats$i/nats.conf" >"$dir/nats$i/log" 2>&1 &
    pids="$pids $!"
    nats_urls="$nats_urls${nats_urls:+,}nats://127.0.0.1:$((base + 100 + i))"
done

# JetStream is ready once every server's health endpoint says so (a meta
# leader is elected and each server is current with it).
t=0
for i in 0 1 2; do
    until curl -fs "http://127.0.0.1:$((base + 120 + i))/healthz" >/dev/null 2>&1; do
        t=$((t + 1))
        [ $t -lt 300 ] || { echo "$0: JetStream not ready after 30 s (see $dir/nats$i/log)" >&2; keep=1; exit 1; }
        sleep 0.1
    done
done

# ---- chatstore servers: a primary, then a follower, per shard -------------
wait_listening() { # log file, pid, what
    t=0
    until grep -q '^listening on ' "$1" 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || { echo "$0: $3 exited (see $1):" >&2; tail -5 "$1" >&2; keep=1; exit 1; }
        t=$((t + 1))
        [ $t -lt 300 ] || { echo "$0: $3 did not start within 30 s (see $1)" >&2; keep=1; exit 1; }
        sleep 0.1
    done
}
start_server() { # shard, node, port, extra flags...
    k=$1; node=$2; port=$3; shift 3
    "$bin" --listen "127.0.0.1:$port" --account-sid "$account" --auth-token "$token" \
        --base-url "$url" --max-connections-per-ip 0 --threads "$threads" \
        --nats "$nats_urls" --nats-replicas 3 --replication "$mode" \
        --shard "$k" --node "$node" "$@" >"$dir/$node.log" 2>&1 &
    last=$!
    pids="$pids $last"
    eval "pid_$node=$last"
}
specs=
k=0
while [ $k -lt "$shards" ]; do
    start_server $k "s${k}a" $((base + 1 + 2 * k))
    wait_listening "$dir/s${k}a.log" "$last" "s${k}a (shard $k primary)"
    start_server $k "s${k}b" $((base + 2 + 2 * k)) --follow
    specs="$specs s${k}a=127.0.0.1:$((base + 1 + 2 * k)),s${k}b=127.0.0.1:$((base + 2 + 2 * k))"
    k=$((k + 1))
done
k=0
while [ $k -lt "$shards" ]; do
    eval "p=\$pid_s${k}b"
    wait_listening "$dir/s${k}b.log" "$p" "s${k}b (shard $k follower)"
    k=$((k + 1))
done

# ---- HAProxy ---------------------------------------------------------------
# shellcheck disable=SC2086 # one argument per shard
"$here/haproxy-config.sh" "$dir/haproxy" "127.0.0.1:$base" $specs
haproxy -f "$dir/haproxy/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
pids="$pids $!"
t=0
until curl -fs "$url/healthz" >/dev/null 2>&1; do
    t=$((t + 1))
    [ $t -lt 100 ] || { echo "$0: HAProxy does not answer on $url (see $dir/haproxy.log)" >&2; keep=1; exit 1; }
    sleep 0.1
done

cat <<EOF
chatstore cluster: $shards shard(s), replication $mode, NATS $nats_urls
  URL          $url
  account SID  $account
  auth token   $token
  try          curl -u $account:$token -X POST $url/v2/Services -d FriendlyName=demo
  shard K      primary sKa on port $base+1+2K, follower sKb on $base+2+2K
               (curl -u ... http://127.0.0.1:PORT/replica; POST .../replica/promote)
  logs         $dir
Ctrl-C stops everything.
EOF
# Until a signal: a trapped signal ends the wait, and the EXIT trap stops
# every process.
while :; do
    wait 2>/dev/null || true
    sleep 1
done
