#!/bin/sh
# Installs the build into a temporary prefix, then builds a consumer against
# it twice: through find_package(chatstore) and through pkg-config.
set -eu
build=$1; src=$2; work=$3
rm -rf "$work"; mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/tests/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/consumer" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib" "$work/cmake/consumer_shared" >/dev/null
pc=$(find "$work/prefix" -name chatstore.pc -print -quit)
export PKG_CONFIG_PATH=$(dirname "$pc")
cc $(pkg-config --cflags chatstore) "$src/tests/consumer/main.c" -o "$work/pc_consumer" \
   $(pkg-config --libs --static chatstore) -lutf8proc -lpthread
LD_LIBRARY_PATH="$work/prefix/lib" "$work/pc_consumer" >/dev/null
echo "find_package static, find_package shared, pkg-config: ok"
echo "3 passed, 0 failed"
