/* GET /healthz, GET /metrics and the per-request bookkeeping of
 * chatstore-server (metrics.h).
 *
 * Invariants:
 * - Every counter and gauge here is a relaxed atomic, written by the
 *   request threads without any lock; a request costs a handful of atomic
 *   adds (its route/method/status counter, one histogram bucket, the
 *   latency sum; in flight is the server's own count) and the
 *   classification of its
 *   path, which allocates nothing. Nothing on a request's path waits for
 *   another request because of the metrics.
 * - Every label set is bounded and fixed at compile time, whatever the
 *   clients send: ROUTE_COUNT route templates (paths that match no route
 *   are "other"), four methods (GET, POST, DELETE, other), the statuses of
 *   STATUSES (any other is "other"), and at most ERR_SLOTS distinct
 *   (status, Twilio code) pairs of error replies (the server's replies use
 *   far fewer; later pairs count under code "other").
 * - /healthz reads one flag (stopping) atomically and
 *   never takes the store's lock: it answers in constant time even while
 *   a writer holds the store.
 * - /metrics reads the store's counts with cs_store_stats_get under the
 *   store's shared lock (an O(1) read, the lock held for nothing else), the
 *   media bytes under the media store's mutex, the webhook totals under the
 *   webhook queue's mutex and the journal positions under the journal's
 *   mutex: the same locks their writers take, so a scrape is safe beside
 *   every writer. A scrape's counters are each exact, but not one
 *   instant's snapshot of them all.
 * - Histogram buckets are kept per bucket (not cumulative) and summed when
 *   rendered, so each rendered histogram is monotonic and its +Inf bucket
 *   equals its _count. */
#include "metrics.h"

#include "accesslog.h"
#include "persist.h"
#include "replica.h"
#include "server.h"
#include "webhook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#define N_METHODS 4
static const char *const METHODS[N_METHODS] = {"GET", "POST", "DELETE", "other"};

/* The statuses the server's own replies use; the last slot is "other". */
static const unsigned STATUSES[] = {200, 201, 204, 400, 401, 403, 404,
                                    405, 409, 413, 429, 500, 503};
#define N_STATUS (sizeof STATUSES / sizeof STATUSES[0] + 1)

/* Latency bucket bounds, microseconds (rendered in seconds). */
static const uint64_t BUCKETS_US[] = {100,   250,   500,    1000,   2500,
                                      5000,  10000, 25000,  50000,  100000,
                                      250000, 500000, 1000000, 2500000,
                                      5000000, 10000000};
#define N_BUCKETS (sizeof BUCKETS_US / sizeof BUCKETS_US[0] + 1) /* + +Inf */

#define ERR_SLOTS 64

static const char *const ROUTES[ROUTE_COUNT] = {
    [ROUTE_OTHER] = "other",
    [ROUTE_HEALTHZ] = "/healthz",
    [ROUTE_METRICS] = "/metrics",
    [ROUTE_SERVICES] = "/v2/Services",
    [ROUTE_SERVICE] = "/v2/Services/{Sid}",
    [ROUTE_CHANNELS] = "/v2/Services/{ServiceSid}/Channels",
    [ROUTE_CHANNEL] = "/v2/Services/{ServiceSid}/Channels/{Sid}",
    [ROUTE_MESSAGES] = "/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Messages",
    [ROUTE_MESSAGE] =
        "/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Messages/{Sid}",
    [ROUTE_MEDIA_UPLOAD] = "/v1/Services/{ServiceSid}/Media",
    [ROUTE_MEDIA] = "/v1/Services/{ServiceSid}/Media/{Sid}",
    [ROUTE_MEDIA_CONTENT] = "/v1/Services/{ServiceSid}/Media/{Sid}/Content",
    [ROUTE_TEST_RESET] = "/_chatstore/reset",
    [ROUTE_TEST_CLOCK] = "/_chatstore/clock",
    [ROUTE_TEST_STATS] = "/_chatstore/stats",
};

struct metrics {
    uint64_t requests[ROUTE_COUNT][N_METHODS][N_STATUS];
    uint64_t hist[ROUTE_COUNT][N_METHODS][N_BUCKETS];
    uint64_t hist_sum_us[ROUTE_COUNT][N_METHODS];
    /* error replies: key (status << 32 | code), 0 = free; claimed by CAS */
    uint64_t err_key[ERR_SLOTS];
    uint64_t err_n[ERR_SLOTS];
    uint64_t err_other;
    uint64_t conns_open, conns_total;
    uint64_t rid_base, rid_next; /* request ids */
    unsigned char status_slot[600];
};

#define ADD(p, n) __atomic_add_fetch((p), (n), __ATOMIC_RELAXED)
#define SUB(p, n) __atomic_sub_fetch((p), (n), __ATOMIC_RELAXED)
#define GET(p) __atomic_load_n((p), __ATOMIC_RELAXED)

metrics *metrics_new(void) {
    metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    memset(m->status_slot, N_STATUS - 1, sizeof m->status_slot);
    for (size_t i = 0; i < N_STATUS - 1; i++)
        m->status_slot[STATUSES[i]] = (unsigned char)i;
    /* request ids: a random half, so ids of different runs differ, and a
     * counter */
    if (getrandom(&m->rid_base, sizeof m->rid_base, 0) !=
        (ssize_t)sizeof m->rid_base)
        m->rid_base = (uint64_t)time(NULL) * UINT64_C(0x9E3779B97F4A7C15);
    return m;
}

void metrics_free(metrics *m) { free(m); }

/* ---- route templates ----------------------------------------------------- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Raw segment s[0..n), percent-decoded, equals lit? pct: the segment has
 * a '%' (its escapes are well-formed: checked by metrics_route_of). */
static int seg_eq(const char *s, size_t n, int pct, const char *lit) {
    if (!pct) return strlen(lit) == n && memcmp(s, lit, n) == 0;
    size_t j = 0;
    for (size_t i = 0; i < n; i++, j++) {
        char c = s[i];
        if (c == '%') {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (!lit[j] || lit[j] != c) return 0;
    }
    return lit[j] == '\0';
}

#define MAX_SEGS 8 /* as routes.c: more segments never match a route */

/* One pass over the path: segment bounds, and escapes checked only in the
 * segments that have a '%'. */
int metrics_route_of(const char *path) {
    const char *seg[MAX_SEGS];
    size_t len[MAX_SEGS], n = 0;
    int pct[MAX_SEGS];
    const char *p = path;
    for (;;) {
        while (*p == '/') p++;
        if (!*p) break;
        if (n == MAX_SEGS) return ROUTE_OTHER;
        const char *s = p;
        int has = 0;
        while (*(p += strcspn(p, "/%")) == '%') {
            /* a malformed escape: routes.c's 404 */
            if (hexval(p[1]) < 0 || hexval(p[2]) < 0) return ROUTE_OTHER;
            has = 1;
            p += 3;
        }
        seg[n] = s;
        len[n] = (size_t)(p - s);
        pct[n++] = has;
    }
#define IS(i, lit) seg_eq(seg[i], len[i], pct[i], lit)
    if (n == 1 && IS(0, "healthz")) return ROUTE_HEALTHZ;
    if (n == 1 && IS(0, "metrics")) return ROUTE_METRICS;
    if (n == 2 && IS(0, "_chatstore")) {
        if (IS(1, "reset")) return ROUTE_TEST_RESET;
        if (IS(1, "clock")) return ROUTE_TEST_CLOCK;
        if (IS(1, "stats")) return ROUTE_TEST_STATS;
        return ROUTE_OTHER;
    }
    if (n < 2 || !IS(1, "Services")) return ROUTE_OTHER;
    if (IS(0, "v2")) {
        if ((n >= 4 && !IS(3, "Channels")) || (n >= 6 && !IS(5, "Messages")) ||
            n > 7)
            return ROUTE_OTHER;
        return ROUTE_SERVICES + (int)(n - 2);
    }
    if (IS(0, "v1")) {
        if (n < 4 || !IS(3, "Media") || n > 6 || (n == 6 && !IS(5, "Content")))
            return ROUTE_OTHER;
        return ROUTE_MEDIA_UPLOAD + (int)(n - 4);
    }
#undef IS
    return ROUTE_OTHER;
}

const char *metrics_route_name(int route) {
    return route >= 0 && route < ROUTE_COUNT ? ROUTES[route] : ROUTES[0];
}

/* ---- per request ---------------------------------------------------------- */

static uint64_t now_ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static unsigned char method_index(const char *method) {
    for (unsigned char i = 0; i < N_METHODS - 1; i++)
        if (!strcmp(method, METHODS[i])) return i;
    return N_METHODS - 1;
}

void metrics_begin(metrics *m, obs_req *r, const char *method) {
    r->t0_ns = now_ns(CLOCK_MONOTONIC);
    r->route = ROUTE_OTHER; /* the exchange's, once its headers are read */
    r->method = method_index(method);
    (void)m;
}

void metrics_connection(metrics *m, int opened) {
    if (opened) {
        ADD(&m->conns_open, 1);
        ADD(&m->conns_total, 1);
    } else {
        SUB(&m->conns_open, 1);
    }
}

static void count_error(metrics *m, unsigned status, int code) {
    uint64_t key = (uint64_t)status << 32 | (uint32_t)code;
    for (size_t i = 0; i < ERR_SLOTS; i++) {
        uint64_t k = __atomic_load_n(&m->err_key[i], __ATOMIC_ACQUIRE);
        if (!k) {
            uint64_t expect = 0;
            if (__atomic_compare_exchange_n(&m->err_key[i], &expect, key, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                k = key;
            else
                k = expect;
        }
        if (k == key) {
            ADD(&m->err_n[i], 1);
            return;
        }
    }
    ADD(&m->err_other, 1);
}

/* "RQ" and the 32 hex digits of hi, lo (out: at least 35 bytes). */
static void hex_id(char *out, uint64_t hi, uint64_t lo) {
    static const char hex[] = "0123456789abcdef";
    out[0] = 'R';
    out[1] = 'Q';
    for (int i = 0; i < 16; i++) {
        out[2 + i] = hex[(hi >> (60 - 4 * i)) & 15];
        out[18 + i] = hex[(lo >> (60 - 4 * i)) & 15];
    }
    out[34] = '\0';
}

/* The client's address as text ("-" when unknown). */
static void client_text(const struct sockaddr *sa, char *out, size_t cap) {
    if (sa && sa->sa_family == AF_INET && cap >= 16) {
        /* by hand: glibc's inet_ntop formats IPv4 with sprintf */
        const unsigned char *b = (const unsigned char *)&(
            (const struct sockaddr_in *)(const void *)sa)->sin_addr;
        char *o = out;
        for (int i = 0; i < 4; i++) {
            unsigned v = b[i];
            if (v >= 100) *o++ = (char)('0' + v / 100);
            if (v >= 10) *o++ = (char)('0' + v / 10 % 10);
            *o++ = (char)('0' + v % 10);
            *o++ = i < 3 ? '.' : '\0';
        }
        return;
    }
    if (sa && sa->sa_family == AF_INET6 &&
        inet_ntop(AF_INET6,
                  &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                  out, (socklen_t)cap))
        return;
    snprintf(out, cap, "-");
}

void metrics_end(server *sv, obs_req *r, const char *method, reply *rp,
                 const struct sockaddr *client) {
    metrics *m = sv->metrics;
    uint64_t us = (now_ns(CLOCK_MONOTONIC) - r->t0_ns) / 1000;
    unsigned st = rp->status < sizeof m->status_slot ? rp->status : 0;
    ADD(&m->requests[r->route][r->method][m->status_slot[st]], 1);
    size_t b = 0;
    while (b < N_BUCKETS - 1 && us > BUCKETS_US[b]) b++;
    ADD(&m->hist[r->route][r->method][b], 1);
    ADD(&m->hist_sum_us[r->route][r->method], us);
    if (rp->status >= 400 && rp->code) count_error(m, rp->status, rp->code);
    /* the request id: RQ and 32 hex digits, as Twilio's */
    uint64_t seq = ADD(&m->rid_next, 1);
    hex_id(rp->request_id, m->rid_base, seq);
    if (sv->alog) {
        accesslog_entry e;
        char addr[64];
        client_text(client, addr, sizeof addr);
        e.unix_ns = now_ns(CLOCK_REALTIME);
        e.client = addr;
        e.request_id = rp->request_id;
        e.method = method;
        e.route = ROUTES[r->route];
        e.status = rp->status;
        e.bytes = rp->status == 204 ? 0 : rp->body.len;
        e.duration_us = us;
        accesslog_request(sv->alog, &e);
    }
}

/* Appends s[0..n) to a reply body (a growable cs_buf of the C library's
 * allocator, as routes.c grows it): 0, or -1 out of memory. */
static int buf_add(cs_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *d = realloc(b->data, cap);
        if (!d) return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* ---- /healthz -------------------------------------------------------------- */

static void reply_text(reply *rp, unsigned status, const char *type,
                       const char *s, size_t n) {
    cs_buf_reset(&rp->body);
    rp->status = status;
    rp->content_type = type;
    rp->code = 0;
    if (buf_add(&rp->body, s, n)) {
        rp->status = 500;
        rp->code = 20500;
    }
}

void metrics_healthz(server *sv, reply *rp) {
    const char *why = NULL;
    if (__atomic_load_n(&sv->stopping, __ATOMIC_SEQ_CST))
        why = "stopping";
    char body[64];
    int n = snprintf(body, sizeof body, "{\"status\": \"%s\"}",
                     why ? why : "ok");
    reply_text(rp, why ? 503 : 200, "application/json", body, (size_t)n);
}

/* ---- /metrics -------------------------------------------------------------- */

typedef struct out {
    cs_buf *b;
    int failed;
} out;

__attribute__((format(printf, 2, 3)))
static void emit(out *o, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line) {
        o->failed = 1;
        return;
    }
    if (buf_add(o->b, line, (size_t)n)) o->failed = 1;
}

static void head(out *o, const char *name, const char *type, const char *help) {
    emit(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(out *o, const char *name, const char *help, unsigned long long v) {
    head(o, name, "gauge", help);
    emit(o, "%s %llu\n", name, v);
}

static void counter(out *o, const char *name, const char *help,
                    unsigned long long v) {
    head(o, name, "counter", help);
    emit(o, "%s %llu\n", name, v);
}

static const char *status_label(size_t slot, char *buf, size_t cap) {
    if (slot == N_STATUS - 1) return "other";
    snprintf(buf, cap, "%u", STATUSES[slot]);
    return buf;
}

/* Seconds from microseconds, exactly ("0.000250"). */
static void secs(char *buf, size_t cap, uint64_t us) {
    snprintf(buf, cap, "%llu.%06llu", (unsigned long long)(us / 1000000),
             (unsigned long long)(us % 1000000));
}

void metrics_render(server *sv, reply *rp) {
    metrics *m = sv->metrics;
    cs_buf_reset(&rp->body);
    out o = {&rp->body, 0};
    char sb[16], le[32];

    head(&o, "chatstore_http_requests_total", "counter",
         "Requests answered, by route template, method and status.");
    for (int r = 0; r < ROUTE_COUNT; r++)
        for (size_t me = 0; me < N_METHODS; me++)
            for (size_t s = 0; s < N_STATUS; s++) {
                uint64_t v = GET(&m->requests[r][me][s]);
                if (v)
                    emit(&o,
                         "chatstore_http_requests_total{route=\"%s\",method=\"%s\","
                         "status=\"%s\"} %llu\n",
                         ROUTES[r], METHODS[me], status_label(s, sb, sizeof sb),
                         (unsigned long long)v);
            }

    head(&o, "chatstore_http_request_duration_seconds", "histogram",
         "Time from a request's headers to its reply being queued, by route "
         "template and method.");
    for (int r = 0; r < ROUTE_COUNT; r++)
        for (size_t me = 0; me < N_METHODS; me++) {
            uint64_t cum[N_BUCKETS], total = 0;
            for (size_t b = 0; b < N_BUCKETS; b++)
                cum[b] = total += GET(&m->hist[r][me][b]);
            if (!total) continue;
            for (size_t b = 0; b < N_BUCKETS; b++) {
                if (b < N_BUCKETS - 1) { /* "0.00025", "1" */
                    secs(le, sizeof le, BUCKETS_US[b]);
                    size_t k = strlen(le);
                    while (le[k - 1] == '0') le[--k] = '\0';
                    if (le[k - 1] == '.') le[k - 1] = '\0';
                } else
                    snprintf(le, sizeof le, "+Inf");
                emit(&o,
                     "chatstore_http_request_duration_seconds_bucket{route=\"%s\","
                     "method=\"%s\",le=\"%s\"} %llu\n",
                     ROUTES[r], METHODS[me], le, (unsigned long long)cum[b]);
            }
            secs(le, sizeof le, GET(&m->hist_sum_us[r][me]));
            emit(&o,
                 "chatstore_http_request_duration_seconds_sum{route=\"%s\","
                 "method=\"%s\"} %s\n"
                 "chatstore_http_request_duration_seconds_count{route=\"%s\","
                 "method=\"%s\"} %llu\n",
                 ROUTES[r], METHODS[me], le, ROUTES[r], METHODS[me],
                 (unsigned long long)total);
        }

    head(&o, "chatstore_http_error_replies_total", "counter",
         "Error replies, by HTTP status and Twilio error code.");
    for (size_t i = 0; i < ERR_SLOTS; i++) {
        uint64_t k = __atomic_load_n(&m->err_key[i], __ATOMIC_ACQUIRE);
        if (!k) break;
        emit(&o, "chatstore_http_error_replies_total{status=\"%u\",code=\"%u\"} %llu\n",
             (unsigned)(k >> 32), (unsigned)(uint32_t)k,
             (unsigned long long)GET(&m->err_n[i]));
    }
    if (GET(&m->err_other))
        emit(&o, "chatstore_http_error_replies_total{status=\"other\",code=\"other\"} %llu\n",
             (unsigned long long)GET(&m->err_other));

    /* refusals for a limit: 403 and 429 replies, and 413 / 50512 (the
     * media memory is full), by Twilio code */
    head(&o, "chatstore_quota_refusals_total", "counter",
         "Requests refused for a quota or capacity limit (403, 429, and 413 "
         "with code 50512), by Twilio error code.");
    for (size_t i = 0; i < ERR_SLOTS; i++) {
        uint64_t k = __atomic_load_n(&m->err_key[i], __ATOMIC_ACQUIRE);
        if (!k) break;
        unsigned st = (unsigned)(k >> 32), code = (unsigned)(uint32_t)k;
        if (st == 403 || st == 429 || (st == 413 && code == 50512))
            emit(&o, "chatstore_quota_refusals_total{code=\"%u\"} %llu\n", code,
                 (unsigned long long)GET(&m->err_n[i]));
    }

    gauge(&o, "chatstore_http_requests_in_flight",
          "Requests begun (headers read) and not yet completed.",
          __atomic_load_n(&sv->in_flight, __ATOMIC_SEQ_CST));
    gauge(&o, "chatstore_http_connections_open", "Open client connections.",
          GET(&m->conns_open));
    counter(&o, "chatstore_http_connections_total",
            "Client connections accepted.", GET(&m->conns_total));

    cs_store_stats st;
    cs_store_lock_shared(sv->store);
    cs_store_stats_get(sv->store, &st);
    cs_store_unlock(sv->store);
    gauge(&o, "chatstore_store_services", "Services in the store.", st.services);
    gauge(&o, "chatstore_store_channels", "Channels in the store.", st.channels);
    gauge(&o, "chatstore_store_messages", "Messages in the store.", st.messages);
    gauge(&o, "chatstore_store_media", "Media items in the store (metadata).",
          st.media);
    gauge(&o, "chatstore_store_identities",
          "Distinct identities (CreatedBy, LastUpdatedBy) interned by the store.",
          st.identities);
    gauge(&o, "chatstore_store_bytes_allocated",
          "Bytes the store holds through its allocator.", st.bytes_allocated);
    counter(&o, "chatstore_store_commits_total",
            "Changes committed to the store since it was created.",
            (unsigned long long)st.commits);

    gauge(&o, "chatstore_media_bytes", "Media bytes the server holds in memory.",
          media_store_used(sv->media));
    gauge(&o, "chatstore_media_bytes_limit", "The media memory cap (--media-cap).",
          sv->cfg.media_cap);

    webhooks *wh = __atomic_load_n(&sv->webhooks, __ATOMIC_ACQUIRE);
    if (wh) {
        webhook_stats ws;
        webhooks_stats(wh, &ws);
        counter(&o, "chatstore_webhooks_queued_total",
                "Webhook deliveries queued.", (unsigned long long)ws.queued);
        counter(&o, "chatstore_webhooks_delivered_total",
                "Webhook deliveries answered with a 2xx.",
                (unsigned long long)ws.delivered);
        counter(&o, "chatstore_webhooks_failed_total",
                "Webhook deliveries given up after their retries.",
                (unsigned long long)ws.failed);
        counter(&o, "chatstore_webhooks_dropped_total",
                "Webhook deliveries dropped from a full queue.",
                (unsigned long long)ws.dropped);
        counter(&o, "chatstore_webhooks_attempts_total",
                "Webhook HTTP attempts made.", (unsigned long long)ws.attempts);
    }

    if (sv->persist) {
        persist_stats ps;
        persist_stats_get(sv->persist, &ps);
        counter(&o, "chatstore_journal_written_bytes_total",
                "Journal bytes written since the server started.",
                (unsigned long long)ps.written);
        counter(&o, "chatstore_journal_synced_bytes_total",
                "Of those, bytes known to be on stable storage.",
                (unsigned long long)ps.synced);
        counter(&o, "chatstore_journal_syncs_total",
                "Journal fdatasync calls by the group commit and the "
                "once-a-second flusher.",
                (unsigned long long)ps.syncs);
        counter(&o, "chatstore_journal_compactions_total",
                "Compactions completed since the server started.",
                (unsigned long long)ps.compactions);
    }

    if (sv->replica) {
        replica_stats rs;
        replica_stats_get(sv->replica, &rs);
        gauge(&o, "chatstore_replica_role",
              "0 primary (the shard's writer), 1 follower, 2 fenced, 3 broken.",
              (unsigned long long)rs.role);
        gauge(&o, "chatstore_replica_term", "The writer lease's term this server knows.",
              (unsigned long long)rs.term);
        gauge(&o, "chatstore_replica_stream_seq",
              "The shard stream's last sequence (a follower asks the stream).",
              (unsigned long long)rs.stream_seq);
        gauge(&o, "chatstore_replica_applied_seq",
              "The last stream sequence this server wrote or applied.",
              (unsigned long long)rs.applied_seq);
        gauge(&o, "chatstore_replica_lag_records",
              "Journal records in the stream this follower has not applied.",
              (unsigned long long)rs.lag_records);
        head(&o, "chatstore_replica_lag_seconds", "gauge",
             "Age of the oldest stream message this follower has not applied.");
        emit(&o, "chatstore_replica_lag_seconds %.6f\n", rs.lag_seconds);
        counter(&o, "chatstore_replica_published_records_total",
                "Journal records this server published to the stream.",
                (unsigned long long)rs.published);
        counter(&o, "chatstore_replica_publish_retries_total",
                "Publishes retried (not acknowledged in time, no leader).",
                (unsigned long long)rs.publish_errors);
        counter(&o, "chatstore_replica_snapshots_total",
                "Snapshots this writer published to the stream (each lets the "
                "stream drop the history before the previous one).",
                (unsigned long long)rs.snapshots);
    }

    if (sv->alog)
        counter(&o, "chatstore_access_log_write_errors_total",
                "Access-log lines that could not be written.",
                (unsigned long long)accesslog_errors(sv->alog));

    if (o.failed) {
        reply_error(rp, 500, 20500, "Out of memory");
        return;
    }
    rp->status = 200;
    rp->code = 0;
    rp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
