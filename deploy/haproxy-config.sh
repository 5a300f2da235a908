#!/bin/sh
# Writes the HAProxy configuration of a chatstore cluster: OUTDIR/haproxy.cfg
# (from deploy/haproxy.cfg.in) and OUTDIR/shards.map (the map from a service
# SID's first four letters, "is" + the shard's two hex digits, to its
# backend). The routing rule is in docs/replication.md, "Routing with
# HAProxy".
#
# Usage: deploy/haproxy-config.sh OUTDIR LISTEN SHARD0 [SHARD1 ...]
#   LISTEN   HOST:PORT that HAProxy binds (e.g. 127.0.0.1:8080)
#   SHARDk   the servers of shard k (its primary and its follower), as
#            NAME=HOST:PORT[,NAME=HOST:PORT...]; names are unique
#            (e.g. s0a=127.0.0.1:8081,s0b=127.0.0.1:8082)
# Shards are numbered by their position, from 0 (at most 256).
# Start HAProxy with: haproxy -f OUTDIR/haproxy.cfg -db
set -eu
here=$(cd "$(dirname "$0")" && pwd)
usage() {
    echo "usage: $0 OUTDIR LISTEN NAME=HOST:PORT[,NAME=HOST:PORT...] [...]" >&2
    exit 2
}
[ $# -ge 3 ] || usage
out=$1; listen=$2; shift 2
[ $# -le 256 ] || { echo "$0: at most 256 shards" >&2; exit 2; }
case $listen in *:*) ;; *) usage ;; esac
mkdir -p "$out"
out=$(cd "$out" && pwd)

any=$out/.any.tmp; writers=$out/.writers.tmp; shards=$out/.shards.tmp
map=$out/shards.map.tmp
: >"$any"; : >"$writers"; : >"$shards"; : >"$map"
k=0
for spec in "$@"; do
    hex=$(printf '%02x' "$k")
    printf 'is%s shard%d\n' "$hex" "$k" >>"$map"
    {
        printf 'backend shard%d\n' "$k"
        printf '    balance first\n'
        printf '    option httpchk\n'
        printf '    http-check send meth GET uri /healthz/writer\n'
        printf '    http-check expect status 200\n'
        printf '    default-server check inter 200ms fall 1 rise 1\n'
    } >>"$shards"
    old_ifs=$IFS; IFS=,
    for srv in $spec; do
        IFS=$old_ifs
        name=${srv%%=*}; addr=${srv#*=}
        case $name in ''|*[!A-Za-z0-9_.-]*) echo "$0: bad server name in '$srv'" >&2; exit 2 ;; esac
        case $addr in *:*) ;; *) echo "$0: bad address in '$srv'" >&2; exit 2 ;; esac
        printf '    server %s %s\n' "$name" "$addr" >>"$shards"
        printf '    server %s %s\n' "$name" "$addr" >>"$writers"
        printf '    server %s %s\n' "$name" "$addr" >>"$any"
    done
    IFS=$old_ifs
    printf '\n' >>"$shards"
    k=$((k + 1))
done

# Fill the template: one-line values in place, server lists for the lines
# that hold only their placeholder.
awk -v listen="$listen" -v sock="$out/haproxy.sock" \
    -v any="$any" -v writers="$writers" -v shards="$shards" '
    function cat(f,   l) { while ((getline l < f) > 0) print l; close(f) }
    $1 == "@ANY_SERVERS@"    { cat(any); next }
    $1 == "@WRITER_SERVERS@" { cat(writers); next }
    $1 == "@SHARD_BACKENDS@" { cat(shards); next }
    { gsub(/@LISTEN@/, listen); gsub(/@STATS_SOCKET@/, sock); print }
' "$here/haproxy.cfg.in" >"$out/haproxy.cfg.tmp"
mv "$out/haproxy.cfg.tmp" "$out/haproxy.cfg"
mv "$map" "$out/shards.map"
rm -f "$any" "$writers" "$shards"
