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
   $(pkg-config --libs --static chatstore)
LD_LIBRARY_PATH="$work/prefix/lib" "$work/pc_consumer" >/dev/null
# The library calls no utf8proc function, so nothing installed may name it:
# not the link interface, the CMake config, the .pc file or the objects.
if grep -rl utf8proc "$work/prefix" >/dev/null 2>&1 ||
   nm -u "$(find "$work/prefix" -name libchatstore.a -print -quit)" | grep -q utf8proc; then
    echo "installed files name utf8proc:"; grep -rl utf8proc "$work/prefix" || true
    echo "3 passed, 1 failed"; exit 1
fi
echo "find_package static, find_package shared, pkg-config (no extra libraries), no utf8proc: ok"
echo "4 passed, 0 failed"
