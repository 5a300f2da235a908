/* The access log of chatstore-server (accesslog.h).
 *
 * Invariants:
 * - A line is formatted on the request's thread into a stack buffer and
 *   written with a single write(2) on a descriptor opened with O_APPEND:
 *   no lock is held across the write and no thread waits for another's
 *   line; lines of concurrent requests never interleave, since each is
 *   one append of at most LINE_MAX_BYTES (well under PIPE_BUF, which also
 *   keeps each line whole on a pipe for "-").
 * - Every field is a single token without spaces, quotes or '=', so a line
 *   is logfmt that splits at spaces: the method is reduced to letters,
 *   digits and "-_." (anything else becomes '_', at most 16 bytes); the
 *   route is one of the server's fixed templates; the client address and
 *   the request id are the server's own text.
 * - Reopening (SIGHUP) opens the path anew and dup2()s it over the
 *   descriptor in use, so a writer racing with it appends to the old file
 *   or the new one, never to a closed descriptor.
 * - A write that fails or is short is counted (accesslog_errors, and the
 *   metric chatstore_access_log_write_errors_total); the request is
 *   answered regardless. */
#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 400

struct accesslog {
    char *path; /* NULL: standard output */
    int fd;
    uint64_t errors; /* atomic */
};

static int open_path(const char *path) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        fprintf(stderr, "chatstore-server: --access-log %s: %s\n", path,
                strerror(errno));
    return fd;
}

accesslog *accesslog_open(const char *path) {
    accesslog *a = calloc(1, sizeof *a);
    if (!a) {
        fprintf(stderr, "chatstore-server: out of memory\n");
        return NULL;
    }
    if (!strcmp(path, "-")) {
        a->fd = STDOUT_FILENO;
        return a;
    }
    a->path = strdup(path);
    if (!a->path || (a->fd = open_path(path)) < 0) {
        if (!a->path) fprintf(stderr, "chatstore-server: out of memory\n");
        free(a->path);
        free(a);
        return NULL;
    }
    return a;
}

int accesslog_reopen(accesslog *a) {
    if (!a || !a->path) return 0;
    int fd = open_path(a->path);
    if (fd < 0) return -1;
    int rc = dup2(fd, a->fd) < 0 ? -1 : 0;
    if (rc)
        fprintf(stderr, "chatstore-server: --access-log %s: %s\n", a->path,
                strerror(errno));
    close(fd);
    return rc;
}

/* The method as a token (see the top). */
static void method_token(const char *m, char *out, size_t cap) {
    size_t i = 0;
    for (; m[i] && i + 1 < cap && i < 16; i++) {
        char c = m[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                 (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        out[i] = ok ? c : '_';
    }
    if (!i) out[i++] = '-';
    out[i] = '\0';
}

void accesslog_request(accesslog *a, const accesslog_entry *e) {
    char line[LINE_MAX_BYTES], method[20];
    struct tm tm;
    time_t secs = (time_t)(e->unix_ns / 1000000000u);
    unsigned ms = (unsigned)(e->unix_ns / 1000000u % 1000u);
    gmtime_r(&secs, &tm);
    method_token(e->method, method, sizeof method);
    int n = snprintf(line, sizeof line,
                     "time=%04d-%02d-%02dT%02d:%02d:%02d.%03uZ client=%s "
                     "id=%s method=%s route=%s status=%u bytes=%zu "
                     "duration=%llu.%06llu\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ms, e->client, e->request_id, method,
                     e->route, e->status, e->bytes,
                     (unsigned long long)(e->duration_us / 1000000u),
                     (unsigned long long)(e->duration_us % 1000000u));
    if (n < 0 || (size_t)n >= sizeof line) {
        __atomic_add_fetch(&a->errors, 1, __ATOMIC_RELAXED);
        return;
    }
    ssize_t w;
    do
        w = write(a->fd, line, (size_t)n);
    while (w < 0 && errno == EINTR);
    if (w != n) __atomic_add_fetch(&a->errors, 1, __ATOMIC_RELAXED);
}

uint64_t accesslog_errors(accesslog *a) {
    return __atomic_load_n(&a->errors, __ATOMIC_RELAXED);
}

void accesslog_close(accesslog *a) {
    if (!a) return;
    if (a->path) close(a->fd);
    free(a->path);
    free(a);
}
