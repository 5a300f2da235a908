#!/bin/sh
# The library does no I/O: none of its objects may reference stdio, file,
# socket or environment functions. The shared library exports only cs_*.
set -u
static_lib=$1
shared_lib=$2
forbidden='^(f?open|fopen64|fdopen|freopen|fclose|fread|fwrite|fputs|fputc|fgets|fprintf|printf|vprintf|puts|putchar|perror|vfprintf|fflush|write|read|pread|pwrite|open|open64|openat|creat|socket|connect|accept|bind|listen|send|recv|sendto|recvfrom|getenv|secure_getenv|setenv|putenv|system|popen|exit|abort|syslog)(@.*)?$'
bad=$(nm -u "$static_lib" | awk '{print $NF}' | grep -E "$forbidden" | sort -u)
if [ -n "$bad" ]; then
    echo "library objects reference I/O functions:"; echo "$bad"
    echo "0 passed, 1 failed"; exit 1
fi
exports=$(nm -D --defined-only "$shared_lib" | awk '$2 ~ /^[TDRB]$/ {print $3}' | grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$')
stray=$(echo "$exports" | grep -v '^cs_' || true)
if [ -n "$stray" ]; then
    echo "exported symbols outside the cs_ namespace:"; echo "$stray"
    echo "0 passed, 1 failed"; exit 1
fi
n=$(echo "$exports" | wc -l)
echo "no I/O references; $n exported symbols, all cs_*"
echo "2 passed, 0 failed"
