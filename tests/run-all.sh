#!/bin/sh
# Builds and runs every test: a release build with warnings as errors, an
# ASan+UBSan build, a ThreadSanitizer build for the thread stress tests (the
# library's, the server's journal file and its threads, the server
# compacting beside writers and readers, the server's connection
# deadlines under hundreds of slow clients, the service directory, and a
# replicated cluster's failover, fencing and loss of a NATS server), and a
# short run of every fuzzer (FUZZ_SECONDS each, default 20).
# Usage: tests/run-all.sh [build-root]   (default: ./build-all)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-all}
jobs=$(nproc 2>/dev/null || echo 2)

total=0
run() { # name, ctest filter args, cmake args...
    name=$1; shift; filter=$1; shift
    echo "=== $name build"
    cmake -S "$root" -B "$out/$name" -DCHATSTORE_WERROR=ON "$@" >/dev/null
    cmake --build "$out/$name" -j "$jobs" >/dev/null
    (cd "$out/$name" && ctest --output-on-failure -j "$jobs" $filter) | tee "$out/$name.ctest"
    # (the pipe hides ctest's status: its summary line decides)
    n=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' "$out/$name.ctest")
    [ -n "$n" ] || { echo "=== $name: tests failed"; exit 1; }
    total=$((total + n))
}

# Node packages for the server's end-to-end tests and the Node example
# (each locked in its package-lock.json).
for d in tests/e2e examples/node; do
    if [ ! -d "$root/$d/node_modules" ] || [ -n "${CI:-}" ]; then
        (cd "$root/$d" && npm ci --no-audit --no-fund --loglevel=error)
    fi
done

run release "" -DCMAKE_BUILD_TYPE=RelWithDebInfo
run asan "-E consumer_install" -DCMAKE_BUILD_TYPE=Debug -DCHATSTORE_ASAN=ON -DCHATSTORE_CHECKED=ON
run tsan "-R threads|test_api|test_jfile|server_durable_compact|server_slow|test_directory|cluster_failover|cluster_fence|cluster_nats_loss|cluster_compact" -DCMAKE_BUILD_TYPE=Debug -DCHATSTORE_TSAN=ON

# Every libFuzzer harness for a short, bounded time (clang, ASan+UBSan).
FUZZ_BUILD=$out/fuzz "$root/fuzz/run.sh" "${FUZZ_SECONDS:-20}"
echo "=== all builds passed: $total ctest tests in three builds, and the fuzzers"
echo "$total passed, 0 failed"
