/* Error tracing for the error_lists test (check_error_lists.c).
 *
 * Linked into the test programs and fuzz replays with -Wl,--wrap=<name> for
 * every function of errtrace_funcs.h (tests/CMakeLists.txt): the linker
 * sends the program's calls of cs_X to __wrap_cs_X below, which calls the
 * library's cs_X (__real_cs_X) and records which cs_err it returned. At exit
 * the process appends the distinct (function, error) pairs it saw, CS_OK
 * included, to <dir>/<pid>.trace, where dir is the environment variable
 * CHATSTORE_ERRTRACE_DIR; with the variable unset or empty nothing is
 * written. Lines: "<function> <ERROR NAME> <program>", e.g.
 * "cs_message_create BAD_UTF8 test_scenarios"; a value outside the error
 * table is written as "#<number>".
 *
 * Recording is a relaxed atomic store into a fixed table: no allocation, so
 * the allocation-failure tests see the same allocations, and any thread may
 * call. A trace that cannot be written makes the process exit with status
 * 1: the test that ran it must not pass while its errors go unchecked. */
#include "chatstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
#define ET(name, params, args) ET_##name,
#include "errtrace_funcs.h"
#undef ET
    ET_COUNT
};

static const char *const et_funcs[ET_COUNT] = {
#define ET(name, params, args) #name,
#include "errtrace_funcs.h"
#undef ET
};

static const char *const et_errors[CS_E__COUNT] = {
#define ET_ERR(name, num, status, code, msg) [num] = #name,
    CS_ERROR_MAP(ET_ERR)
#undef ET_ERR
};

static atomic_uchar et_seen[ET_COUNT][CS_E__COUNT];
static atomic_uchar et_bad_seen[ET_COUNT];
static atomic_int et_bad_value[ET_COUNT]; /* the latest out-of-range value */

static void et_record(int f, cs_err e) {
    if ((unsigned long long)e < CS_E__COUNT) {
        atomic_store_explicit(&et_seen[f][e], 1, memory_order_relaxed);
    } else {
        atomic_store_explicit(&et_bad_value[f], (int)e, memory_order_relaxed);
        atomic_store_explicit(&et_bad_seen[f], 1, memory_order_relaxed);
    }
}

/* One wrapper per function; the _Static_assert holds the entry's
 * signature to the header's prototype. */
#define ET(name, params, args)                                                \
    cs_err __real_##name params;                                              \
    cs_err __wrap_##name params;                                              \
    _Static_assert(_Generic(&name, cs_err(*) params: 1, default: 0),          \
                   "errtrace_funcs.h: " #name                                 \
                   " differs from its prototype in chatstore.h");             \
    cs_err __wrap_##name params {                                             \
        cs_err e = __real_##name args;                                        \
        et_record(ET_##name, e);                                              \
        return e;                                                             \
    }
#include "errtrace_funcs.h"
#undef ET

static void et_fail(const char *what, const char *path) {
    fprintf(stderr, "errtrace: cannot %s %s: %s\n", what, path,
            strerror(errno));
    _exit(EXIT_FAILURE);
}

static void et_write(int fd, const char *path, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) et_fail("write", path);
        s += w;
        n -= (size_t)w;
    }
}

/* One line "<function> <error> <program>". */
static void et_line(int fd, const char *path, const char *fn,
                    const char *err, const char *prog) {
    char line[1024];
    int n = snprintf(line, sizeof line, "%s %s %.500s\n", fn, err, prog);
    if (n < 0 || n >= (int)sizeof line) {
        errno = EOVERFLOW;
        et_fail("format a line of", path);
    }
    et_write(fd, path, line, (size_t)n);
}

/* The executable's file name, for telling where a pair was seen. */
static const char *et_program(void) {
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return "unknown";
    exe[n] = '\0';
    for (char *p = exe; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == '\n') *p = '_';
    const char *base = strrchr(exe, '/');
    return base ? base + 1 : exe;
}

__attribute__((destructor)) static void et_dump(void) {
    const char *dir = getenv("CHATSTORE_ERRTRACE_DIR");
    if (!dir || !*dir) return;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) et_fail("create", dir);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%ld.trace", dir, (long)getpid()) >=
        (int)sizeof path) {
        errno = ENAMETOOLONG;
        et_fail("name a file in", dir);
    }
    const char *prog = et_program();
    /* Appending: a later process with the same pid adds to the file. */
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) et_fail("open", path);
    for (int f = 0; f < ET_COUNT; f++) {
        char num[16];
        for (int e = 0; e < CS_E__COUNT; e++) {
            if (!atomic_load(&et_seen[f][e])) continue;
            const char *name = et_errors[e];
            if (!name) { /* a number the table skips */
                snprintf(num, sizeof num, "#%d", e);
                name = num;
            }
            et_line(fd, path, et_funcs[f], name, prog);
        }
        if (atomic_load(&et_bad_seen[f])) {
            snprintf(num, sizeof num, "#%d", atomic_load(&et_bad_value[f]));
            et_line(fd, path, et_funcs[f], num, prog);
        }
    }
    if (close(fd) != 0) et_fail("close", path);
}
