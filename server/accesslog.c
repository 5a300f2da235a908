/* The access log of chatstore-server (accesslog.h).
 *
 * Invariants:
 * - A line is formatted on the request's thread and appended to that
 *   thread's own buffer (tbuf, one per thread that ever logged, under its
 *   own mutex, which only that thread and the flusher take): requests on
 *   different threads never wait for each other, and no request waits for
 *   the disk unless its own buffer is full (BUF_BYTES), when it writes the
 *   buffer out itself. One write(2) of 200 bytes per line cost 3.4 us here
 *   and serialised the threads on the file (bench/results/load-ops.md).
 * - The flusher thread writes every buffer out once a second, so a line
 *   reaches the file within about a second of its reply; a clean stop
 *   (accesslog_close) and a reopen (SIGHUP) write everything first. Each
 *   buffer is written whole lines at a time with O_APPEND, so lines never
 *   split or interleave; a thread's lines stay in their order, and lines of
 *   different threads are in the file in chunks (every line has its time).
 *   A crash loses what was buffered: up to a second of lines.
 * - Every field is a single token without spaces, quotes or '=', so a line
 *   is logfmt that splits at spaces: the method is reduced to letters,
 *   digits and "-_." (anything else becomes '_', at most 16 bytes); the
 *   route is one of the server's fixed templates; the client address and
 *   the request id are the server's own text.
 * - Reopening opens the path anew and dup2()s it over the descriptor in use
 *   (after writing out every buffer), so no write ever goes to a closed
 *   descriptor, and lines logged before the SIGHUP are in the old file.
 * - The lines of a write that fails or is short are counted as dropped
 *   (accesslog_errors, the metric chatstore_access_log_write_errors_total);
 *   the requests are answered regardless. */
#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 400
#define BUF_BYTES (64 * 1024)

typedef struct tbuf {
    struct tbuf *next; /* registry (under accesslog.mu) */
    pthread_mutex_t mu;
    size_t len;
    char data[BUF_BYTES];
} tbuf;

struct accesslog {
    char *path; /* NULL: standard output */
    int fd;
    uint64_t errors; /* lines dropped (atomic) */
    pthread_mutex_t mu; /* the registry, stop */
    pthread_cond_t wake;
    tbuf *bufs;
    int stop;
    pthread_t flusher;
};

/* This thread's buffer, and the log it belongs to. */
static _Thread_local tbuf *tl_buf;
static _Thread_local accesslog *tl_log;

static int open_path(const char *path) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        fprintf(stderr, "chatstore-server: --access-log %s: %s\n", path,
                strerror(errno));
    return fd;
}

/* Writes b out (under b->mu). */
static void drain(accesslog *a, tbuf *b) {
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(a->fd, b->data + off, b->len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    if (off < b->len) {
        /* the lines not (wholly) written */
        size_t lost = 0;
        for (size_t i = off; i < b->len; i++) lost += b->data[i] == '\n';
        __atomic_add_fetch(&a->errors, lost, __ATOMIC_RELAXED);
    }
    b->len = 0;
}

static void drain_all(accesslog *a) {
    pthread_mutex_lock(&a->mu);
    for (tbuf *b = a->bufs; b; b = b->next) {
        pthread_mutex_lock(&b->mu);
        drain(a, b);
        pthread_mutex_unlock(&b->mu);
    }
    pthread_mutex_unlock(&a->mu);
}

static void *flusher_main(void *arg) {
    accesslog *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += 1;
        pthread_cond_timedwait(&a->wake, &a->mu, &t);
        if (a->stop) break;
        pthread_mutex_unlock(&a->mu);
        drain_all(a);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

accesslog *accesslog_open(const char *path) {
    accesslog *a = calloc(1, sizeof *a);
    if (!a) {
        fprintf(stderr, "chatstore-server: out of memory\n");
        return NULL;
    }
    if (!strcmp(path, "-")) {
        a->fd = STDOUT_FILENO;
    } else {
        a->path = strdup(path);
        if (!a->path) fprintf(stderr, "chatstore-server: out of memory\n");
        if (!a->path || (a->fd = open_path(path)) < 0) {
            free(a->path);
            free(a);
            return NULL;
        }
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->wake, NULL);
    int e = pthread_create(&a->flusher, NULL, flusher_main, a);
    if (e) {
        fprintf(stderr, "chatstore-server: --access-log: %s\n", strerror(e));
        pthread_cond_destroy(&a->wake);
        pthread_mutex_destroy(&a->mu);
        if (a->path) close(a->fd);
        free(a->path);
        free(a);
        return NULL;
    }
    return a;
}

int accesslog_reopen(accesslog *a) {
    if (!a) return 0;
    drain_all(a); /* what was logged before goes to the old file */
    if (!a->path) return 0;
    int fd = open_path(a->path);
    if (fd < 0) return -1;
    int rc = dup2(fd, a->fd) < 0 ? -1 : 0;
    if (rc)
        fprintf(stderr, "chatstore-server: --access-log %s: %s\n", a->path,
                strerror(errno));
    close(fd);
    return rc;
}

/* This thread's buffer, registered on first use; NULL out of memory. */
static tbuf *my_buf(accesslog *a) {
    if (tl_log == a && tl_buf) return tl_buf;
    tbuf *b = malloc(sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->mu, NULL);
    b->len = 0;
    pthread_mutex_lock(&a->mu);
    b->next = a->bufs;
    a->bufs = b;
    pthread_mutex_unlock(&a->mu);
    tl_buf = b;
    tl_log = a;
    return b;
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

/* A line being built (no printf: it was most of the log's cost). */
typedef struct lb {
    char *p, *end;
    int over;
} lb;

static void put(lb *l, const char *s, size_t n) {
    if (n > (size_t)(l->end - l->p)) {
        l->over = 1;
        return;
    }
    memcpy(l->p, s, n);
    l->p += n;
}

static void puts_(lb *l, const char *s) { put(l, s, strlen(s)); }

/* v in decimal, at least width digits. */
static void putu(lb *l, uint64_t v, int width) {
    char d[24];
    int n = 0;
    do {
        d[sizeof d - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || n < width);
    put(l, d + sizeof d - n, (size_t)n);
}

/* "YYYY-MM-DDTHH:MM:SS" of the thread's last second, reused within it. */
static _Thread_local time_t tl_sec = -1;
static _Thread_local char tl_date[64];

void accesslog_request(accesslog *a, const accesslog_entry *e) {
    char line[LINE_MAX_BYTES], method[20];
    time_t secs = (time_t)(e->unix_ns / 1000000000u);
    if (secs != tl_sec) {
        struct tm tm;
        gmtime_r(&secs, &tm);
        snprintf(tl_date, sizeof tl_date, "%04d-%02d-%02dT%02d:%02d:%02d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        tl_sec = secs;
    }
    method_token(e->method, method, sizeof method);
    lb l = {line, line + sizeof line, 0};
    puts_(&l, "time=");
    puts_(&l, tl_date);
    put(&l, ".", 1);
    putu(&l, e->unix_ns / 1000000u % 1000u, 3);
    puts_(&l, "Z client=");
    puts_(&l, e->client);
    puts_(&l, " id=");
    puts_(&l, e->request_id);
    puts_(&l, " method=");
    puts_(&l, method);
    puts_(&l, " route=");
    puts_(&l, e->route);
    puts_(&l, " status=");
    putu(&l, e->status, 1);
    puts_(&l, " bytes=");
    putu(&l, e->bytes, 1);
    puts_(&l, " duration=");
    putu(&l, e->duration_us / 1000000u, 1);
    put(&l, ".", 1);
    putu(&l, e->duration_us % 1000000u, 6);
    put(&l, "\n", 1);
    size_t n = (size_t)(l.p - line);
    tbuf *b = l.over ? NULL : my_buf(a);
    if (!b) {
        __atomic_add_fetch(&a->errors, 1, __ATOMIC_RELAXED);
        return;
    }
    pthread_mutex_lock(&b->mu);
    if (b->len + n > sizeof b->data) drain(a, b);
    memcpy(b->data + b->len, line, n);
    b->len += n;
    pthread_mutex_unlock(&b->mu);
}

uint64_t accesslog_errors(accesslog *a) {
    return __atomic_load_n(&a->errors, __ATOMIC_RELAXED);
}

void accesslog_close(accesslog *a) {
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->flusher, NULL);
    drain_all(a);
    for (tbuf *b = a->bufs, *next; b; b = next) {
        next = b->next;
        pthread_mutex_destroy(&b->mu);
        free(b);
    }
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->mu);
    if (a->path) close(a->fd);
    free(a->path);
    free(a);
}
