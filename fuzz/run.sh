#!/bin/sh
# Builds the libFuzzer harnesses with clang (ASan + UBSan + fuzzer coverage)
# and runs each one for a bounded time, one after the other.
#
# Usage: fuzz/run.sh [SECONDS_EACH] [NAME...]
#   SECONDS_EACH  time per fuzzer (default 20)
#   NAME          harnesses to run (default: all of json utf8 time sid token ops
#                 snapshot journal server replica)
# Environment:
#   FUZZ_BUILD    build directory (default: <repo>/build-fuzz)
#   FUZZ_JOBS     parallel build jobs (default: nproc)
#   FUZZ_NICE     nice level for the fuzzers (default: 10)
#   FUZZ_ARGS     extra libFuzzer arguments
#
# Each fuzzer starts from the checked-in seeds (fuzz/corpus/<name>/, never
# written to) plus a working corpus kept in $FUZZ_BUILD/corpus/<name>/.
# Crashes and mismatches are written to $FUZZ_BUILD/artifacts/<name>/ and
# make the script fail (exit status 1) after all fuzzers ran; minimise one
# with  $FUZZ_BUILD/fuzz/fuzz_<name> -minimize_crash=1 -runs=10000 FILE
# and add it to fuzz/corpus/<name>/ once fixed.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-20}
[ $# -gt 0 ] && shift
names=${*:-json utf8 time sid token ops snapshot journal server replica}
build=${FUZZ_BUILD:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
nicelvl=${FUZZ_NICE:-10}

case $secs in
    ''|*[!0-9]*) echo "run.sh: SECONDS_EACH must be a number" >&2; exit 2 ;;
esac

echo "=== building fuzzers in $build"
CC=${CC:-clang} cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCHATSTORE_FUZZ=ON -DCHATSTORE_ASAN=ON -DCHATSTORE_TESTS=OFF \
    -DCHATSTORE_EXAMPLES=OFF -DCHATSTORE_SERVER=ON -DCHATSTORE_BENCH=OFF \
    >/dev/null
targets=
for n in $names; do targets="$targets fuzz_$n"; done
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" --target $targets >/dev/null

failed=
for n in $names; do
    bin=$build/fuzz/fuzz_$n
    seeds=$root/fuzz/corpus/$n
    work=$build/corpus/$n
    art=$build/artifacts/$n
    mkdir -p "$work" "$art"
    dict=
    [ -f "$root/fuzz/$n.dict" ] && dict=-dict=$root/fuzz/$n.dict
    echo "=== fuzz_$n for ${secs}s"
    # shellcheck disable=SC2086
    if nice -n "$nicelvl" "$bin" -max_total_time="$secs" -rss_limit_mb=2048 \
        -timeout=30 -print_final_stats=1 -artifact_prefix="$art/" $dict \
        ${FUZZ_ARGS:-} "$work" "$seeds" >"$build/fuzz_$n.log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec|^Done' \
            "$build/fuzz_$n.log" || true
    else
        echo "!!! fuzz_$n FAILED (log: $build/fuzz_$n.log, artifacts: $art)"
        grep -E 'ERROR|check failed|SUMMARY|Test unit written' \
            "$build/fuzz_$n.log" | head -20
        failed="$failed $n"
    fi
done
if [ -n "$failed" ]; then
    echo "=== failed:$failed"
    exit 1
fi
echo "=== all fuzzers ran ${secs}s without a finding"
