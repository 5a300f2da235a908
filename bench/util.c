/* Histogram, workload text generation, SID text helpers, clock and RSS. */
#include "bench.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *const op_names[OP__COUNT] = {
    "create", "create_steady", "fetch", "page_asc", "page_desc", "update",
    "delete"};
const char *const eng_names[ENG__COUNT] = {"chatstore", "sqlite"};
const char *const rec_names[REC__COUNT] = {
    "save", "load", "replay", "save-noio", "load-noio", "load-warm",
    "replay-warm"};

/* ---- output --------------------------------------------------------------- */

FILE *bench_table;

void out(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (bench_table) {
        va_start(ap, fmt);
        vfprintf(bench_table, fmt, ap);
        va_end(ap);
    }
}

const char *fmt_ns(double ns, char *buf, size_t n) {
    if (ns < 1e3)
        snprintf(buf, n, "%.0fns", ns);
    else if (ns < 1e6)
        snprintf(buf, n, "%.1fus", ns / 1e3);
    else if (ns < 1e9)
        snprintf(buf, n, "%.2fms", ns / 1e6);
    else
        snprintf(buf, n, "%.2fs", ns / 1e9);
    return buf;
}

const char *fmt_rate(double r, char *buf, size_t n) {
    if (r >= 1e6)
        snprintf(buf, n, "%.2fM", r / 1e6);
    else if (r >= 1e3)
        snprintf(buf, n, "%.1fk", r / 1e3);
    else
        snprintf(buf, n, "%.0f", r);
    return buf;
}

const char *load_avg(char *buf, size_t n) {
    double a[3] = {0, 0, 0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &a[0], &a[1], &a[2]) != 3) a[0] = -1;
        fclose(f);
    }
    snprintf(buf, n, "%.2f %.2f %.2f", a[0], a[1], a[2]);
    return buf;
}

/* ---- child processes -------------------------------------------------------- */

int bench_fork(void (*fn)(const void *arg, void *res), const void *arg,
               void *res, size_t size) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        void *mine = calloc(1, size);
        if (!mine) _exit(3);
        fn(arg, mine);
        const char *p = mine;
        size_t left = size;
        while (left) {
            ssize_t w = write(fd[1], p, left);
            if (w <= 0) _exit(4);
            p += w;
            left -= (size_t)w;
        }
        _exit(0);
    }
    close(fd[1]);
    char *p = res;
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd[0], p + got, size - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != size || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return 0;
}

/* ---- clock and memory --------------------------------------------------- */

uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Resident set size from /proc/self/statm (second field, in pages). */
size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, res = 0;
    int n = fscanf(f, "%lu %lu", &size, &res);
    fclose(f);
    if (n != 2) return 0;
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- histogram ---------------------------------------------------------- *
 * Values below 2^S are exact; above, each power of two is split into 2^S
 * sub-buckets (S = HIST_SUB_BITS), so a bucket spans < 1/128 of its value. */

void hist_reset(hist *h) { memset(h, 0, sizeof *h); }

static unsigned bucket_of(uint64_t v) {
    const unsigned S = HIST_SUB_BITS;
    if (v >= (UINT64_C(1) << HIST_MAX_LOG2))
        v = (UINT64_C(1) << HIST_MAX_LOG2) - 1;
    if (v < (UINT64_C(1) << S)) return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    uint64_t m = v >> (e - S);
    return ((e - S + 1) << S) + (unsigned)(m - (UINT64_C(1) << S));
}

/* Lower bound and width of bucket b. */
static uint64_t bucket_low(unsigned b, uint64_t *width) {
    const unsigned S = HIST_SUB_BITS;
    if (b < (1u << S)) {
        *width = 1;
        return b;
    }
    unsigned k = b >> S;
    uint64_t m = (b & ((1u << S) - 1)) + (UINT64_C(1) << S);
    *width = UINT64_C(1) << (k - 1);
    return m << (k - 1);
}

void hist_add(hist *h, uint64_t ns, uint64_t op_no) {
    h->b[bucket_of(ns)]++;
    h->count++;
    h->total_ns += ns;
    if (ns > h->max_ns) {
        h->max_ns = ns;
        h->max_at = op_no;
    }
    if (ns > 1000000) { /* keep the HIST_SLOW largest */
        unsigned k = h->over_1ms < HIST_SLOW ? (unsigned)h->over_1ms : 0;
        if (h->over_1ms >= HIST_SLOW)
            for (unsigned j = 1; j < HIST_SLOW; j++)
                if (h->slow_ns[j] < h->slow_ns[k]) k = j;
        if (h->over_1ms < HIST_SLOW || ns > h->slow_ns[k]) {
            h->slow_at[k] = op_no;
            h->slow_ns[k] = ns;
        }
        h->over_1ms++;
    }
}

uint64_t hist_pct(const hist *h, double p) {
    if (!h->count) return 0;
    uint64_t want = (uint64_t)(p * (double)h->count + 0.999999);
    if (want < 1) want = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += h->b[b];
        if (seen >= want) {
            uint64_t w, lo = bucket_low(b, &w);
            uint64_t mid = lo + w / 2;
            return mid > h->max_ns ? h->max_ns : mid;
        }
    }
    return h->max_ns;
}

double hist_ops_per_s(const hist *h) {
    return h->total_ns ? (double)h->count * 1e9 / (double)h->total_ns : 0.0;
}

/* ---- random numbers ----------------------------------------------------- */

uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

uint64_t hash64(uint64_t a, uint64_t b) {
    uint64_t s = a * UINT64_C(0x2545f4914f6cdd1d) ^ b;
    splitmix64(&s);
    return splitmix64(&s);
}

static double unit(uint64_t *st) {
    return (double)(splitmix64(st) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- message text ------------------------------------------------------- */

static const char *const ascii_words[] = {
    "hello", "world", "the", "message", "chat", "store", "meeting",
    "tomorrow", "lunch", "deploy", "review", "ok", "thanks", "see", "you",
    "at", "noon", "build", "is", "green", "ship", "it", "please", "check",
    "the", "logs", "before", "release", "and", "ping", "me", "when", "done",
    "a", "of", "to", "in", "for", "on", "with", "new", "issue", "fixed",
    "sounds", "good", "let's", "sync", "later", "today", "I'll", "send",
    "notes", "after", "call", "agenda", "update", "status", "blocked",
};
static const char *const mb_words[] = {
    "café", "naïve", "über", "日本語", "привет", "😀", "🚀", "ñandú",
    "Ελληνικά", "中文", "straße", "Zürich", "résumé", "✓", "€5", "déjà",
    "こんにちは", "안녕", "שלום", "مرحبا",
};
#define N_ASCII (sizeof ascii_words / sizeof *ascii_words)
#define N_MB (sizeof mb_words / sizeof *mb_words)

/* Words until the target length (uniform in [body_min, body_max]) is
 * reached; a third of the bodies use non-ASCII words. */
void gen_body(const bench_cfg *c, uint64_t key, char *buf, size_t *len) {
    uint64_t st = key;
    size_t span = c->body_max > c->body_min ? c->body_max - c->body_min : 0;
    size_t target = c->body_min + (span ? splitmix64(&st) % (span + 1) : 0);
    if (target > BODY_CAP - 32) target = BODY_CAP - 32;
    bool mb_body = unit(&st) < 0.34;
    size_t n = 0;
    while (n < target) {
        const char *w;
        if (mb_body && unit(&st) < c->multibyte_frac * 3.0)
            w = mb_words[splitmix64(&st) % N_MB];
        else
            w = ascii_words[splitmix64(&st) % N_ASCII];
        size_t wl = strlen(w);
        if (n && n + 1 + wl > target + 8) break;
        if (n) buf[n++] = ' ';
        memcpy(buf + n, w, wl);
        n += wl;
    }
    buf[n] = '\0';
    *len = n;
}

void gen_message(const bench_cfg *c, uint64_t serial, msg_in *out) {
    uint64_t st = hash64(c->seed, serial);
    gen_body(c, splitmix64(&st), out->body, &out->body_len);
    uint64_t a = splitmix64(&st) % (c->authors ? c->authors : 1);
    int n = snprintf(out->from, sizeof out->from, "user%llu",
                     (unsigned long long)a);
    out->from_len = (size_t)n;
    out->attr_len = 0;
    if (unit(&st) < c->attr_frac) {
        n = snprintf(out->attr, sizeof out->attr,
                     "{\"priority\":%u,\"tags\":[\"t%u\",\"x\"],\"ref\":\"r%llu\"}",
                     (unsigned)(splitmix64(&st) % 5),
                     (unsigned)(splitmix64(&st) % 100),
                     (unsigned long long)serial);
        out->attr_len = (size_t)n;
    }
}

/* ---- SID text ----------------------------------------------------------- */

static const char HEXD[] = "0123456789abcdef";

void sid_format(char p0, char p1, const uint8_t in[16], char out[35]) {
    out[0] = p0;
    out[1] = p1;
    for (int i = 0; i < 16; i++) {
        out[2 + 2 * i] = HEXD[in[i] >> 4];
        out[3 + 2 * i] = HEXD[in[i] & 15];
    }
    out[34] = '\0';
}

static int hexval(unsigned char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    ch = (unsigned char)(ch | 0x20);
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
}

int sid_parse(const char *s, size_t n, char p0, char p1, uint8_t out[16]) {
    if (n != 34 || (s[0] | 0x20) != (p0 | 0x20) || (s[1] | 0x20) != (p1 | 0x20))
        return -1;
    for (int i = 0; i < 16; i++) {
        int hi = hexval((unsigned char)s[2 + 2 * i]);
        int lo = hexval((unsigned char)s[3 + 2 * i]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
