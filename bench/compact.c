/* chatstore-compact-bench: how long message creates take while
 * chatstore-server --data-dir compacts a large store (a benchmark: it
 * measures and reports, it never fails on a number).
 *
 *   chatstore-compact-bench make DIR N [--channels C] [--seed S]
 *       Writes a data directory holding N messages, the way the server
 *       lays it out (docs/persistence.md): the library builds the store
 *       directly (1 service, C channels with unique names c0, c1, ...,
 *       bodies as chatstore-bench's), saves it as snapshot-<seq> and writes
 *       the MANIFEST naming it. Much faster than N requests.
 *
 *   chatstore-compact-bench run SERVER DIR [--label L] [--fsync MODE]
 *           [--rate R] [--conns K] [--min-bytes B | --no-compact]
 *           [--secs T] [--tail T] [--timeline S] [--log FILE]
 *       Starts SERVER on DIR and sends message creates at R per second
 *       (open loop: request i of the run is due at i / R, spread over K
 *       keep-alive connections), each to a random channel. With compaction
 *       (--compact-ratio 0 --compact-min-bytes B) the load runs until the
 *       first compaction has ended plus --tail seconds (at most T); with
 *       --no-compact for T seconds. A request's latency is counted from the
 *       moment it was due, so a stall also counts for the requests it kept
 *       from being sent (no coordinated omission). The server's stderr lines
 *       are timestamped as they arrive: a compaction's log line gives its
 *       end and duration, hence its window; requests due inside a window
 *       are "during", the others "outside". RSS of the server is sampled
 *       every 20 ms. Prints one result block; --timeline S adds the p99
 *       and max latency of each slice of S seconds; --log FILE keeps the
 *       server's log with the times its lines arrived.
 *
 * Nothing here is part of the library or the server. */
#define _GNU_SOURCE
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ACCOUNT "AC0123456789abcdef0123456789abcdef"
#define TOKEN "compact-bench"

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("chatstore-compact-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- make ---------------------------------------------------------------- */

static int write_fd(void *ctx, const void *buf, size_t len) {
    FILE *f = ctx;
    return fwrite(buf, 1, len, f) == len ? 0 : -1;
}

static int make_dir(const char *dir, size_t n, size_t channels, uint64_t seed) {
    bench_cfg c;
    memset(&c, 0, sizeof c);
    c.body_min = 70;
    c.body_max = 130;
    c.multibyte_frac = 0.10;
    c.attr_frac = 0.10;
    c.authors = 10000;
    c.seed = seed;
    cs_options o = CS_OPTIONS_INIT;
    o.account_sid = ACCOUNT;
    o.use_seed = true;
    o.seed = seed;
    cs_store *s;
    if (cs_store_new(&o, &s)) die("cs_store_new failed");
    uint64_t t0 = now_ns();
    cs_service_view sv;
    if (cs_service_create(s, cs_str_c("compact bench"), &sv)) die("service");
    char (*ch)[CS_SID_BUFSZ] = malloc(channels * sizeof *ch);
    if (!ch) die("out of memory");
    for (size_t i = 0; i < channels; i++) {
        char uniq[32];
        snprintf(uniq, sizeof uniq, "c%zu", i);
        cs_channel_params cp;
        memset(&cp, 0, sizeof cp);
        cp.unique_name = cs_str_c(uniq);
        cs_channel_view cv;
        if (cs_channel_create(s, cs_str_c(sv.sid), &cp, &cv)) die("channel");
        memcpy(ch[i], cv.sid, CS_SID_BUFSZ);
    }
    uint64_t st = seed;
    for (size_t i = 0; i < n; i++) {
        msg_in in;
        gen_message(&c, i, &in);
        cs_message_params p;
        memset(&p, 0, sizeof p);
        p.from = (cs_str){in.from, in.from_len};
        p.body = (cs_str){in.body, in.body_len};
        if (in.attr_len) p.attributes = (cs_str){in.attr, in.attr_len};
        size_t k = (size_t)(splitmix64(&st) % channels);
        if (cs_message_create(s, cs_str_c(sv.sid), (cs_str){ch[k], 34}, &p, NULL))
            die("message %zu", i);
    }
    uint64_t t1 = now_ns();
    cs_store_stats ss;
    cs_store_stats_get(s, &ss);
    if (mkdir(dir, 0755) && errno != EEXIST) die("%s: %s", dir, strerror(errno));
    char path[4096], name[64];
    snprintf(name, sizeof name, "snapshot-%llu", (unsigned long long)ss.commits);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) die("%s: %s", path, strerror(errno));
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    if (cs_snapshot_save(s, write_fd, f) || fflush(f) || fsync(fileno(f)))
        die("%s: cannot write", path);
    long size = ftell(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    f = fopen(path, "w");
    if (!f || fprintf(f, "chatstore data directory 1\nsnapshot %s\n", name) < 0 ||
        fflush(f) || fsync(fileno(f)))
        die("%s: cannot write", path);
    fclose(f);
    uint64_t t2 = now_ns();
    printf("made %s: %s (%ld bytes, seq %llu): %zu messages in %zu channels, "
           "account %s; built in %.1f s, saved in %.1f s; the store held %.0f "
           "MiB (%zu bytes allocated)\n",
           dir, name, size, (unsigned long long)ss.commits, ss.messages, channels,
           ACCOUNT, (double)(t1 - t0) / 1e9, (double)(t2 - t1) / 1e9,
           (double)ss.bytes_allocated / 1048576.0, ss.bytes_allocated);
    free(ch);
    uint64_t t3 = now_ns();
    cs_store_free(s);
    printf("cs_store_free: %.2f s\n", (double)(now_ns() - t3) / 1e9);
    return 0;
}

/* ---- the server and its stderr ------------------------------------------- */

typedef struct line {
    uint64_t t;
    char *text;
} line;

static struct {
    pthread_mutex_t mu;
    line *v;
    size_t n, cap;
    FILE *log;
} lines = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, NULL};

static uint64_t t_base; /* the load's start: times are relative to it
                          * (atomic: the stderr reader reads it) */

static uint64_t base(void) { return __atomic_load_n(&t_base, __ATOMIC_RELAXED); }

static void *stderr_main(void *arg) {
    FILE *f = fdopen((int)(intptr_t)arg, "r");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t k;
    while (f && (k = getline(&buf, &cap, f)) > 0) {
        uint64_t t = now_ns();
        if (lines.log) {
            uint64_t b = base();
            fprintf(lines.log, "[%10.3f] %s", b ? (double)((int64_t)(t - b)) / 1e9 : 0.0, buf);
            fflush(lines.log);
        }
        pthread_mutex_lock(&lines.mu);
        if (lines.n == lines.cap) {
            lines.cap = lines.cap ? 2 * lines.cap : 64;
            lines.v = realloc(lines.v, lines.cap * sizeof *lines.v);
            if (!lines.v) die("out of memory");
        }
        lines.v[lines.n++] = (line){t, strdup(buf)};
        pthread_mutex_unlock(&lines.mu);
    }
    free(buf);
    if (f) fclose(f);
    return NULL;
}

/* Index of the first line from `from` on containing s, or -1. */
static long find_line(size_t from, const char *s) {
    long r = -1;
    pthread_mutex_lock(&lines.mu);
    for (size_t i = from; i < lines.n; i++)
        if (strstr(lines.v[i].text, s)) {
            r = (long)i;
            break;
        }
    pthread_mutex_unlock(&lines.mu);
    return r;
}

static size_t proc_kib(pid_t pid, const char *field) {
    char path[64], l[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t v = 0, fl = strlen(field);
    while (fgets(l, sizeof l, f))
        if (!strncmp(l, field, fl)) v = strtoull(l + fl + 1, NULL, 10);
    fclose(f);
    return v;
}

/* ---- HTTP ------------------------------------------------------------------ */

static int port;
static char auth[256];

static int connect_server(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) die("connect: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

typedef struct conn {
    int fd;
    char buf[1 << 16];
    size_t len;
} conn;

/* Sends req, reads one response; its status, -1 on a broken connection.
 * The body goes to body (NUL-terminated, cut to cap) when not NULL. */
static int exchange(conn *c, const char *req, size_t n, char *body, size_t cap) {
    for (size_t done = 0; done < n;) {
        ssize_t k = send(c->fd, req + done, n - done, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        done += (size_t)k;
    }
    c->len = 0;
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) {
            size_t head = (size_t)(end - c->buf) + 4, clen = 0;
            c->buf[head - 1] = '\0';
            int status = atoi(c->buf + 9);
            char *cl = strcasestr(c->buf, "\r\nContent-Length:");
            if (cl) clen = strtoull(cl + 17, NULL, 10);
            while (c->len < head + clen) {
                if (c->len == sizeof c->buf) return -1;
                ssize_t k = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
                if (k <= 0) return -1;
                c->len += (size_t)k;
            }
            if (body) {
                size_t m = clen < cap - 1 ? clen : cap - 1;
                memcpy(body, c->buf + head, m);
                body[m] = '\0';
            }
            return status;
        }
        if (c->len == sizeof c->buf) return -1;
        ssize_t k = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (k <= 0) return -1;
        c->len += (size_t)k;
    }
}

/* ---- the load ------------------------------------------------------------- */

typedef struct sample {
    uint64_t due;  /* ns after t_base */
    uint64_t lat;  /* from due to the response */
    uint64_t svc;  /* from the send to the response */
    int status;
} sample;

static struct {
    double rate;
    unsigned conns;
    size_t channels;
    char svc[CS_SID_BUFSZ];
    volatile int stop;
} load;

typedef struct worker {
    unsigned id;
    pthread_t th;
    sample *s;
    size_t n, cap;
} worker;

static void *worker_main(void *arg) {
    worker *w = arg;
    conn *c = calloc(1, sizeof *c);
    if (!c) die("out of memory");
    c->fd = connect_server();
    uint64_t st = 0x9e3779b97f4a7c15u * (w->id + 1);
    char req[2048];
    double step = 1e9 / load.rate;
    for (uint64_t i = w->id;; i += load.conns) {
        uint64_t due = (uint64_t)((double)i * step);
        uint64_t now = now_ns() - t_base;
        if (__atomic_load_n(&load.stop, __ATOMIC_RELAXED)) break;
        if (due > now) {
            struct timespec ts = {(time_t)((due - now) / 1000000000u),
                                  (long)((due - now) % 1000000000u)};
            nanosleep(&ts, NULL);
        }
        char body[256];
        int bl = snprintf(body, sizeof body,
                          "Body=Load+message+%llu%%2C+a+few+words+to+make+it+look+like+"
                          "the+others+in+the+store&From=user%llu",
                          (unsigned long long)i,
                          (unsigned long long)(splitmix64(&st) % 10000));
        size_t ch = (size_t)(splitmix64(&st) % load.channels);
        int n = snprintf(req, sizeof req,
                         "POST /v2/Services/%s/Channels/c%zu/Messages HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\n%s\r\n"
                         "Content-Type: application/x-www-form-urlencoded\r\n"
                         "Content-Length: %d\r\n\r\n%s",
                         load.svc, ch, auth, bl, body);
        uint64_t sent = now_ns() - t_base;
        int status = exchange(c, req, (size_t)n, NULL, 0);
        uint64_t end = now_ns() - t_base;
        if (w->n == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 65536;
            w->s = realloc(w->s, w->cap * sizeof *w->s);
            if (!w->s) die("out of memory");
        }
        w->s[w->n++] = (sample){due, end - due, end - sent, status};
        if (status < 0) break;
    }
    close(c->fd);
    free(c);
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *v, size_t n, size_t errors) {
    if (!n) {
        printf("  %-26s no requests\n", what);
        return;
    }
    qsort(v, n, sizeof *v, cmp_u64);
    double p50 = (double)v[n / 2], p99 = (double)v[(size_t)((double)n * 0.99)],
           p999 = (double)v[(size_t)((double)n * 0.999)], mx = (double)v[n - 1];
    printf("  %-26s %8zu requests  p50 %7.2f ms  p99 %7.2f ms  p99.9 %7.2f ms  "
           "max %7.2f ms  errors %zu\n",
           what, n, p50 / 1e6, p99 / 1e6, p999 / 1e6, mx / 1e6, errors);
}

typedef struct window {
    double start, end; /* s after t_base */
    char text[1024];
} window;

static int run(int argc, char **argv) {
    if (argc < 4) die("usage: run SERVER DIR [options]");
    const char *server = argv[2], *dir = argv[3], *label = "server",
               *fsync_mode = "everysec", *logpath = NULL;
    double secs = 60, tail = 2;
    unsigned long long min_bytes = 16ull << 20;
    bool compact = true;
    double timeline = 0; /* seconds per line of the timeline (0: none) */
    load.rate = 4000;
    load.conns = 8;
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-compact")) {
            compact = false;
            continue;
        }
        if (!v) die("%s needs a value", a);
        i++;
        if (!strcmp(a, "--label")) label = v;
        else if (!strcmp(a, "--fsync")) fsync_mode = v;
        else if (!strcmp(a, "--rate")) load.rate = atof(v);
        else if (!strcmp(a, "--conns")) load.conns = (unsigned)atoi(v);
        else if (!strcmp(a, "--secs")) secs = atof(v);
        else if (!strcmp(a, "--tail")) tail = atof(v);
        else if (!strcmp(a, "--min-bytes")) min_bytes = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--log")) logpath = v;
        else if (!strcmp(a, "--timeline")) timeline = atof(v);
        else die("unknown option %s", a);
    }
    if (logpath && !(lines.log = fopen(logpath, "w"))) die("%s: %s", logpath, strerror(errno));
    char b64in[96], mb[32];
    snprintf(b64in, sizeof b64in, "%s:%s", ACCOUNT, TOKEN);
    { /* base64 */
        static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char out[160];
        size_t n = strlen(b64in), o = 0;
        for (size_t i = 0; i < n; i += 3) {
            uint32_t x = (uint32_t)(uint8_t)b64in[i] << 16;
            if (i + 1 < n) x |= (uint32_t)(uint8_t)b64in[i + 1] << 8;
            if (i + 2 < n) x |= (uint8_t)b64in[i + 2];
            out[o++] = T[x >> 18 & 63];
            out[o++] = T[x >> 12 & 63];
            out[o++] = i + 1 < n ? T[x >> 6 & 63] : '=';
            out[o++] = i + 2 < n ? T[x & 63] : '=';
        }
        out[o] = '\0';
        snprintf(auth, sizeof auth, "Authorization: Basic %s", out);
    }
    snprintf(mb, sizeof mb, "%llu", compact ? min_bytes : 1000000000000000ull);
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) die("pipe");
    uint64_t t_start = now_ns();
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (!pid) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        execl(server, server, "--listen", "127.0.0.1:0", "--account-sid", ACCOUNT,
              "--auth-token", TOKEN, "--data-dir", dir, "--fsync", fsync_mode,
              "--compact-ratio", "0", "--compact-min-bytes", mb, (char *)NULL);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    pthread_t eth;
    pthread_create(&eth, NULL, stderr_main, (void *)(intptr_t)pe[0]);
    FILE *so = fdopen(po[0], "r");
    char l[512];
    while (so && fgets(l, sizeof l, so)) {
        char *p = strstr(l, "listening on http://127.0.0.1:");
        if (p) {
            port = atoi(p + 30);
            break;
        }
    }
    if (!port) die("the server did not start");
    double startup = (double)(now_ns() - t_start) / 1e9;
    size_t rss_loaded = proc_kib(pid, "VmRSS:");
    /* The service and the number of channels. */
    conn *c = calloc(1, sizeof *c);
    c->fd = connect_server();
    char body[8192], req[1024];
    int n = snprintf(req, sizeof req, "GET /v2/Services?PageSize=1 HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n", auth);
    if (exchange(c, req, (size_t)n, body, sizeof body) != 200) die("services: %s", body);
    char *sid = strstr(body, "\"sid\": \"IS");
    if (!sid) die("no service: %s", body);
    memcpy(load.svc, sid + 8, 34);
    load.svc[34] = '\0';
    load.channels = 0;
    for (size_t lo = 1, hi = 1u << 20; lo <= hi;) { /* the highest cN that exists */
        size_t mid = (lo + hi) / 2;
        n = snprintf(req, sizeof req, "GET /v2/Services/%s/Channels/c%zu HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n",
                     load.svc, mid - 1, auth);
        if (exchange(c, req, (size_t)n, NULL, 0) == 200) {
            load.channels = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    close(c->fd);
    free(c);
    if (!load.channels) die("no channel c0");

    /* The load. */
    worker *w = calloc(load.conns, sizeof *w);
    __atomic_store_n(&t_base, now_ns(), __ATOMIC_RELAXED);
    pthread_mutex_lock(&lines.mu);
    size_t first_line = lines.n;
    pthread_mutex_unlock(&lines.mu);
    for (unsigned i = 0; i < load.conns; i++) {
        w[i].id = i;
        pthread_create(&w[i].th, NULL, worker_main, &w[i]);
    }
    size_t rss_max = 0, rss_samples = 0;
    uint64_t *rss_t = malloc(sizeof(uint64_t) * 1000000), *rss_v = malloc(sizeof(uint64_t) * 1000000);
    double ended = -1;
    for (;;) {
        double t = (double)(now_ns() - t_base) / 1e9;
        size_t r = proc_kib(pid, "VmRSS:");
        if (rss_samples < 1000000) {
            rss_t[rss_samples] = now_ns() - t_base;
            rss_v[rss_samples++] = r;
        }
        if (r > rss_max) rss_max = r;
        if (t >= secs) break;
        if (compact && ended < 0 && find_line(first_line, "compaction: snapshot-") >= 0) ended = t;
        if (ended >= 0 && t >= ended + tail) break;
        usleep(20000);
    }
    __atomic_store_n(&load.stop, 1, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < load.conns; i++) pthread_join(w[i].th, NULL);
    double load_secs = (double)(now_ns() - t_base) / 1e9;
    size_t hwm = proc_kib(pid, "VmHWM:");
    uint64_t t_term = now_ns();
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    double stop_secs = (double)(now_ns() - t_term) / 1e9;
    pthread_join(eth, NULL);
    if (so) fclose(so);

    /* Compaction windows, from the log lines: from a "started" line (when
     * the server logs one) or else the end minus the duration, to the end;
     * one still running at the end of the load lasts to the end. */
    window win[64];
    size_t nw = 0;
    double started = -1;
    for (size_t i = first_line; i < lines.n && nw < 64; i++) {
        double at = (double)((int64_t)(lines.v[i].t - t_base)) / 1e9;
        if (strstr(lines.v[i].text, "compaction: started")) {
            started = at;
            continue;
        }
        const char *s = strstr(lines.v[i].text, "compaction: snapshot-");
        const char *in = s ? strstr(s, ") in ") : NULL;
        if (!in) {
            if (strstr(lines.v[i].text, "compaction: ")) started = -1; /* failed */
            continue;
        }
        win[nw].start = started >= 0 ? started : at - atof(in + 5);
        win[nw].end = at;
        snprintf(win[nw].text, sizeof win[nw].text, "%s", s);
        char *nl = strchr(win[nw].text, '\n');
        if (nl) *nl = '\0';
        nw++;
        started = -1;
    }
    if (started >= 0 && started < load_secs && nw < 64) {
        win[nw].start = started;
        win[nw].end = load_secs;
        snprintf(win[nw].text, sizeof win[nw].text,
                 "(still running when the load stopped)");
        nw++;
    }
    size_t total = 0;
    for (unsigned i = 0; i < load.conns; i++) total += w[i].n;
    uint64_t *in_lat = malloc(total * sizeof *in_lat), *out_lat = malloc(total * sizeof *out_lat),
             *in_svc = malloc(total * sizeof *in_svc), *out_svc = malloc(total * sizeof *out_svc);
    size_t nin = 0, nout = 0, ein = 0, eout = 0;
    for (unsigned i = 0; i < load.conns; i++)
        for (size_t k = 0; k < w[i].n; k++) {
            sample *s = &w[i].s[k];
            double due = (double)s->due / 1e9;
            bool during = false;
            for (size_t j = 0; j < nw; j++)
                if (due >= win[j].start && due <= win[j].end) during = true;
            if (during) {
                if (s->status != 201) ein++;
                in_lat[nin] = s->lat;
                in_svc[nin++] = s->svc;
            } else {
                if (s->status != 201) eout++;
                out_lat[nout] = s->lat;
                out_svc[nout++] = s->svc;
            }
        }
    size_t rss_win = 0, rss_before = 0;
    for (size_t i = 0; i < rss_samples; i++) {
        double t = (double)rss_t[i] / 1e9;
        if (nw && t >= win[0].start && t <= win[0].end && rss_v[i] > rss_win) rss_win = rss_v[i];
        if (nw && t < win[0].start && rss_v[i] > rss_before) rss_before = rss_v[i];
    }
    double la[3] = {0, 0, 0};
    getloadavg(la, 3);
    printf("== %s: --fsync %s, %s; %.0f creates/s over %u connections for %.1f s "
           "(%zu requests), %zu channels\n",
           label, fsync_mode, compact ? "compaction forced" : "no compaction", load.rate,
           load.conns, load_secs, total, load.channels);
    printf("  startup (recovery) %.2f s, RSS %.0f MiB after it; SIGTERM to exit %.2f s "
           "(exit status %d); load average %.2f %.2f %.2f\n",
           startup, (double)rss_loaded / 1024, stop_secs,
           WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status), la[0], la[1], la[2]);
    for (size_t j = 0; j < nw; j++)
        printf("  compaction %zu: from %.2f s to %.2f s of the load: %s\n", j + 1,
               win[j].start, win[j].end, win[j].text);
    if (nw)
        printf("  RSS: %.0f MiB before the first compaction, %.0f MiB at most during "
               "it (sampled every 20 ms); peak (VmHWM) %.0f MiB\n",
               (double)rss_before / 1024, (double)rss_win / 1024, (double)hwm / 1024);
    else
        printf("  RSS: %.0f MiB at most (sampled), peak (VmHWM) %.0f MiB\n",
               (double)rss_max / 1024, (double)hwm / 1024);
    printf("  latency from the moment each request was due (open loop):\n");
    if (nw) report("during a compaction", in_lat, nin, ein);
    report(nw ? "outside compactions" : "all", out_lat, nout, eout);
    printf("  latency from the send (service time only):\n");
    if (nw) report("during a compaction", in_svc, nin, ein);
    report(nw ? "outside compactions" : "all", out_svc, nout, eout);
    if (timeline > 0) { /* p99 and max of the latency from due, per slice */
        printf("  timeline (slice of %.2f s: requests due, p99 / max ms; * = in a "
               "compaction window):\n", timeline);
        size_t ns = (size_t)(load_secs / timeline) + 1;
        for (size_t k = 0; k < ns; k++) {
            size_t m = 0;
            for (unsigned i = 0; i < load.conns; i++)
                for (size_t j = 0; j < w[i].n; j++) {
                    double due = (double)w[i].s[j].due / 1e9;
                    if (due >= (double)k * timeline && due < (double)(k + 1) * timeline)
                        in_lat[m++] = w[i].s[j].lat;
                }
            if (!m) continue;
            qsort(in_lat, m, sizeof *in_lat, cmp_u64);
            bool during = false;
            for (size_t j = 0; j < nw; j++)
                if ((double)k * timeline < win[j].end && (double)(k + 1) * timeline > win[j].start)
                    during = true;
            printf("    %6.2f s %c %6zu  %8.2f / %8.2f\n", (double)k * timeline,
                   during ? '*' : ' ', m, (double)in_lat[(size_t)((double)m * 0.99)] / 1e6,
                   (double)in_lat[m - 1] / 1e6);
        }
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "make")) {
        size_t channels = 1000;
        uint64_t seed = 42;
        for (int i = 4; i + 1 < argc; i += 2) {
            if (!strcmp(argv[i], "--channels")) channels = strtoull(argv[i + 1], NULL, 10);
            else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
            else die("unknown option %s", argv[i]);
        }
        return make_dir(argv[2], (size_t)strtod(argv[3], NULL), channels ? channels : 1, seed);
    }
    if (argc >= 2 && !strcmp(argv[1], "run")) return run(argc, argv);
    fprintf(stderr,
            "usage: chatstore-compact-bench make DIR N [--channels C] [--seed S]\n"
            "       chatstore-compact-bench run SERVER DIR [--label L] [--fsync MODE]\n"
            "           [--rate R] [--conns K] [--min-bytes B | --no-compact]\n"
            "           [--secs T] [--tail T] [--timeline S] [--log FILE]\n");
    return 2;
}
