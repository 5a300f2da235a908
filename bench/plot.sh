#!/bin/sh
# Plots the scaling series of a chatstore-bench JSON file:
#
#   bench/plot.sh [results.json] [out.svg]
#
# defaults: bench/results/results.json -> bench/results/scaling.svg
# Rows: layout (many channels of 1000 messages / one hot channel).
# Columns: throughput, p99 latency, max latency, against store size;
# chatstore solid, SQLite dashed, one colour per operation. Needs jq and
# gnuplot (Debian: jq, gnuplot-nox).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
json=${1:-$here/results/results.json}
svg=${2:-$here/results/scaling.svg}
command -v jq >/dev/null || { echo "plot.sh: jq not found" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not found" >&2; exit 1; }
[ -f "$json" ] || { echo "plot.sh: no $json (run chatstore-bench --json)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

ops="create fetch page_asc page_desc update delete"
layouts="many single"
for l in $layouts; do
    for op in $ops; do
        for e in chatstore sqlite; do
            jq -r --arg l "$l" --arg op "$op" --arg e "$e" '
                .scaling[] | select(.layout == $l and .op == $op and .engine == $e)
                | [.messages, .ops_per_s, .p50_ns, .p99_ns, .max_ns] | @tsv' \
                "$json" | sort -n >"$tmp/$l-$op-$e.tsv"
        done
    done
done
if [ ! -s "$tmp/many-create-chatstore.tsv" ] && [ ! -s "$tmp/single-create-chatstore.tsv" ]; then
    echo "plot.sh: $json has no scaling series" >&2
    exit 1
fi

title=$(jq -r '"chatstore vs SQLite :memory: (" + .workload.sqlite_version +
    "), best of " + (.workload.runs|tostring) + " runs"' "$json")

{
    cat <<EOF
set terminal svg size 1500,950 dynamic enhanced font 'sans,11' background rgb 'white'
set output '$svg'
set datafile separator '\t'
set logscale xy
set grid xtics ytics mytics lc rgb '#dddddd'
set key outside right top vertical font ',9' samplen 2.5 spacing 0.9
set xlabel 'messages in store'
set format x '10^{%L}'
set multiplot layout 2,3 title '$title'
EOF
    colors="create:#1f77b4 fetch:#d62728 page_asc:#2ca02c page_desc:#9467bd update:#ff7f0e delete:#8c564b"
    color_of() { for kv in $colors; do if [ "${kv%%:*}" = "$1" ]; then echo "${kv#*:}"; fi; done; }
    for l in $layouts; do
        case $l in many) lt="many channels (1000 msgs each)";; *) lt="one hot channel";; esac
        for panel in throughput p99 max; do
            case $panel in
                throughput) col=2; ylabel="ops/s"; extra="";;
                p99) col=4; ylabel="p99 latency (ns)"; extra="";;
                max) col=5; ylabel="max latency (ns), worst run";;
            esac
            echo "set title '$lt: $panel'"
            echo "set ylabel '$ylabel'"
            # one legend, on the top-right panel; a 1 ms line on the max panels
            if [ "$l" = many ] && [ "$panel" = max ]; then echo "set key"; else echo "unset key"; fi
            echo "unset arrow"
            if [ "$panel" = max ]; then
                echo "set yrange [1e4:*]"
                echo "set arrow from graph 0, first 1e6 to graph 1, first 1e6 nohead lc rgb '#000000' dt 3 lw 1.5"
                echo "set label 1 '1 ms' at graph 0.02, first 1.25e6 font ',9'"
            else
                echo "set yrange [*:*]"
                echo "unset label 1"
            fi
            printf "plot "
            sep=""
            for op in $ops; do
                c=$(color_of "$op")
                for e in chatstore sqlite; do
                    f="$tmp/$l-$op-$e.tsv"
                    [ -s "$f" ] || continue
                    if [ $e = chatstore ]; then dt=1; pt=7; t="$op cs"; else dt=2; pt=6; t="$op sqlite"; fi
                    t=$(echo "$t" | tr '_' ' ')
                    printf "%s'%s' using 1:%s with linespoints lc rgb '%s' dt %s pt %s ps 0.6 lw 1.5 title '%s'" \
                        "$sep" "$f" "$col" "$c" "$dt" "$pt" "$t"
                    sep=", "
                done
            done
            echo
        done
    done
    echo "unset multiplot"
} >"$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "wrote $svg"
