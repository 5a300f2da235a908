#!/bin/sh
# Plots a soak CSV of bench/load/soak.sh (soak.js's columns):
#
#   bench/load/soak-plot.sh CSV SVG [TITLE]
#
# Top: the server's RSS, the media bytes uploaded so far and, with
# --data-dir, the data directory's size (MiB, left axis); open file
# descriptors and, with --data-dir, compactions so far (right axis).
# Bottom: per window, p50, p99, max latency from when requests were due,
# p99 of the reply time alone, and how late the generator sent (log scale).
# Needs gnuplot (Debian: gnuplot-nox).
set -eu
csv=$1
svg=$2
title=${3:-chatstore-server soak}
command -v gnuplot >/dev/null || { echo "soak-plot.sh: gnuplot not found" >&2; exit 1; }
[ -s "$csv" ] || { echo "soak-plot.sh: no $csv" >&2; exit 1; }
# column numbers by name, from the header
col() { head -1 "$csv" | tr ',' '\n' | grep -n -x "$1" | cut -d: -f1; }
t=$(col t_s); rss=$(col rss_kib); fds=$(col fds); p50=$(col p50_ms); p99=$(col p99_ms)
max=$(col max_ms); late=$(col late_max_ms); rp99=$(col reply_p99_ms)
media=$(col media_uploaded_kib); dir=$(col data_dir_kib); comp=$(col compactions)
right=$(awk -F, -v f="$fds" -v c="${comp:-0}" 'NR > 1 { if ($f > m) m = $f; if (c && $c > m) m = $c }
    END {print 2 * m + 4}' "$csv")
extra=
if [ -n "$dir" ]; then
    extra=", '' using $t:(\$$dir/1024) with lines lc rgb '#8c564b' lw 1.2 title 'data directory (MiB)'"
    extra="$extra, '' using $t:$comp axes x1y2 with steps lc rgb '#17becf' lw 1.5 title 'compactions so far'"
fi
gnuplot <<EOF
set terminal svg size 1100,750 dynamic enhanced font 'sans,11' background rgb 'white'
set output '$svg'
set datafile separator ','
set key autotitle columnhead
set grid xtics ytics lc rgb '#dddddd'
set key outside right top vertical font ',9' samplen 2.5 spacing 0.9
set lmargin at screen 0.07
set rmargin at screen 0.74
set xlabel 'time (s)'
set multiplot layout 2,1 title '$title'
set title 'memory and file descriptors'
set ylabel 'MiB'
set y2label 'count'
set yrange [0:*]
set y2range [0:$right]
set ytics nomirror
set y2tics
plot '$csv' using $t:(\$$rss/1024) with linespoints lc rgb '#1f77b4' pt 7 ps 0.4 lw 1.5 title 'RSS (MiB)', \
     '' using $t:$fds axes x1y2 with steps lc rgb '#2ca02c' lw 1.5 title 'open fds', \
     '' using $t:(\$$media/1024) with lines lc rgb '#7f7f7f' dt 2 lw 1.2 title 'media uploaded (MiB, so far)'$extra
set title 'latency of the requests answered in each window'
set ylabel 'latency (ms)'
set logscale y
set yrange [*:*]
unset y2label
unset y2tics
set ytics mirror
plot '$csv' using $t:(\$$p50 > 0 ? \$$p50 : 1/0) with lines lc rgb '#2ca02c' lw 1.2 title 'p50', \
     '' using $t:(\$$p99 > 0 ? \$$p99 : 1/0) with linespoints lc rgb '#d62728' pt 7 ps 0.4 lw 1.5 title 'p99', \
     '' using $t:(\$$rp99 > 0 ? \$$rp99 : 1/0) with lines lc rgb '#9467bd' lw 1 title 'p99, reply time alone', \
     '' using $t:(\$$max > 0 ? \$$max : 1/0) with lines lc rgb '#ff7f0e' dt 2 lw 1 title 'max', \
     '' using $t:(\$$late > 0 ? \$$late : 1/0) with lines lc rgb '#7f7f7f' dt 3 lw 1 title 'generator late (max)'
unset multiplot
EOF
echo "wrote $svg"
