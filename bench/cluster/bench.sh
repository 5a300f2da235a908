#!/bin/sh
# Message creates through HAProxy into a replicated, sharded cluster on
# loopback (1 and 2 shards, --replication sync and async) against a single
# in-memory chatstore-server in the same run (wrk), the followers' lag
# under that load, and a failover's unavailability. Writes a Markdown table
# to bench/results/cluster.md (unless OUT says where) and prints it.
#
#   bench/cluster/bench.sh [build-dir] [seconds] [connections] [wrk-threads] [rounds]
#
# SERVER=path runs another chatstore-server binary; LABEL describes it in
# the results. Needs wrk, nats-server, haproxy and node (the cluster harness of
# tests/cluster/cluster.js starts and stops every process).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
bin=${SERVER:-$build/server/chatstore-server}
[ -x "$bin" ] || { echo "no server at $bin (build first)" >&2; exit 1; }
for cmd in wrk nats-server haproxy node; do
    command -v $cmd >/dev/null || { echo "$cmd is not installed" >&2; exit 1; }
done
CHATSTORE_SERVER_BIN=$bin BENCH_SECONDS=${2:-8} BENCH_CONNS=${3:-32} \
    BENCH_THREADS=${4:-2} BENCH_ROUNDS=${5:-1} \
    exec node "$root/bench/cluster/bench.js"
