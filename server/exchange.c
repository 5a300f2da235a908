/* One HTTP request from its headers to its reply, without sockets: the
 * transport (http.c, libmicrohttpd) hands over the method, the raw path, a
 * header lookup, the query arguments and the body chunks as they arrive,
 * and sends the reply this module fills. A harness can drive the same code
 * with exchange_run.
 *
 * Invariants:
 * - Authentication is decided once, from the headers, before any body byte
 *   is seen (exchange_begin). The body of a request that will be refused
 *   (401, or 413 by its Content-Length or its running count) is never
 *   kept: its bytes are dropped as they arrive.
 * - x->len <= x->limit: a body is kept only while it fits the route's limit
 *   (media upload: the media cap; anything else: --max-body).
 * - At most EXCHANGE_DRAIN bytes of a refused body are read and dropped;
 *   past that the connection is to be closed (exchange_begin answers at
 *   once when the Content-Length already says so).
 * - Error precedence (docs/behaviour.md CV18): malformed headers (400),
 *   401, then 413, then query
 *   encoding, then form encoding, then the routes' own order. GET /healthz
 *   (and GET /metrics with --metrics-auth off) come before 401; any other
 *   method on them is 405 before 401.
 * - An exchange owns its body buffer only; exchange_free releases it and
 *   leaves the exchange empty (freeing twice is harmless). */
#include "fixture.h"
#include "metrics.h"
#include "persist.h"
#include "replica.h"
#include "server.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* POST /v1/Services/{IS}/Media: the body is the media bytes. Segments as
 * routes.c reads them: empty ones skipped, each percent-decoded. */
int exchange_is_media_upload(const char *method, const char *url) {
    static const char *const want[4] = {"v1", "Services", NULL, "Media"};
    if (strcmp(method, "POST") != 0) return 0;
    size_t n = 0;
    for (const char *p = url; *p;) {
        if (*p == '/') {
            p++;
            continue;
        }
        size_t len = strcspn(p, "/");
        if (n == 4) return 0;
        if (want[n]) {
            char d[32];
            if (len > sizeof d) return 0; /* longer than any of the words */
            size_t dl = pct_decode(p, len, d, 0);
            if (dl != strlen(want[n]) || memcmp(d, want[n], dl) != 0) return 0;
        }
        n++;
        p += len;
    }
    return n == 4;
}

/* HTTP Basic with the account SID and auth token. */
static int authorized(const server *sv, const char *h) {
    /* The scheme name is case-insensitive (RFC 9110 section 11.1). */
    if (!h || strncasecmp(h, "Basic ", 6) != 0) return 0;
    char dec[512];
    size_t n = base64_decode(h + 6, strlen(h + 6), dec, sizeof dec - 1);
    if (n == (size_t)-1) return 0;
    dec[n] = '\0';
    const char *colon = memchr(dec, ':', n);
    if (!colon) return 0;
    /* Lengths from the decoded bytes, not strlen: "AC...\0junk:token" or
     * "token\0junk" must not pass. */
    const char *user = dec, *pass = colon + 1;
    size_t ulen = (size_t)(colon - dec), plen = n - ulen - 1;
    size_t ul = strlen(sv->cfg.account_sid), pl = strlen(sv->cfg.auth_token);
    /* Compare every byte whatever the outcome. */
    unsigned diff = (unsigned)(ulen != ul) | (unsigned)(plen != pl);
    for (size_t i = 0; i < ul; i++)
        diff |= (unsigned char)((i < ulen ? user[i] : 0) ^ sv->cfg.account_sid[i]);
    for (size_t i = 0; i < pl; i++)
        diff |= (unsigned char)((i < plen ? pass[i] : 0) ^ sv->cfg.auth_token[i]);
    return diff == 0;
}

/* Content-Length as a number; anything but 1 to 19 digits counts as
 * unbounded (the transport normally refused it already). */
static uint64_t content_length(const char *s) {
    size_t n = strspn(s, "0123456789");
    if (!n || n > 19 || s[n]) return UINT64_MAX;
    return strtoull(s, NULL, 10);
}

static const char *header(const exchange_in *in, const char *name) {
    return in->header ? in->header(in->ctx, name) : NULL;
}

exchange_next exchange_begin(const server *sv, exchange *x, const exchange_in *in) {
    memset(x, 0, sizeof *x);
    if (in->malformed) return EXCHANGE_REPLY; /* and the connection closes */
    x->route = metrics_route_of(in->url);
    x->authorized = authorized(sv, header(in, "Authorization"));
    x->media = exchange_is_media_upload(in->method, in->url);
    x->limit = x->media ? sv->cfg.media_cap : sv->cfg.max_request;
    const char *cl = header(in, "Content-Length");
    const char *te = header(in, "Transfer-Encoding");
    uint64_t declared = cl ? content_length(cl) : 0;
    if (declared > x->limit) x->too_large = 1;
    int refused = !x->authorized || x->too_large;
    if (!refused) return EXCHANGE_BODY;
    /* A body is coming that will not be used. The client waits for
     * "100 Continue" before sending it (curl does so above 1 MiB): answer
     * now, and it is never sent. Too long to drain: answer now as well;
     * the connection closes after the reply (a client still sending may
     * see a reset instead). Otherwise it is read and dropped, and the
     * reply follows it: a reply sent early is lost to a reset when the
     * connection closes with unread bytes. */
    int body_coming = declared > 0 || te;
    const char *ex = header(in, "Expect");
    if (body_coming && ex && strcasecmp(ex, "100-continue") == 0)
        return EXCHANGE_REPLY;
    if (declared > EXCHANGE_DRAIN) return EXCHANGE_REPLY;
    return EXCHANGE_BODY;
}

exchange_next exchange_body(exchange *x, const char *data, size_t n) {
    x->seen += n;
    if (!x->too_large && n > x->limit - x->len) {
        x->too_large = 1;
        free(x->body);
        x->body = NULL;
        x->len = x->cap = 0;
    }
    if (!x->authorized || x->too_large || x->nomem) {
        /* dropped; bounded work for a body nobody will use */
        return x->seen > EXCHANGE_DRAIN ? EXCHANGE_CLOSE : EXCHANGE_BODY;
    }
    if (x->len + n > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n) cap = cap > x->limit / 2 ? x->limit : cap * 2;
        char *b = realloc(x->body, cap);
        if (!b) { /* 500 once the body is over; the rest is dropped */
            x->nomem = 1;
            free(x->body);
            x->body = NULL;
            x->len = x->cap = 0;
            return EXCHANGE_BODY;
        }
        x->body = b;
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, n);
    x->len += n;
    return EXCHANGE_BODY;
}

static void collect_query(void *sink, const char *key, const char *value) {
    request *rq = sink;
    if (rq->bad_query) return;
    /* Keys and values arrive raw, still percent-encoded. */
    size_t kn = strlen(key), vn = value ? strlen(value) : 0;
    char *kd = malloc(kn + 1), *vd = malloc(vn + 1);
    if (!kd || !vd) {
        rq->nomem = 1;
    } else {
        size_t a = pct_decode(key, kn, kd, 1);
        size_t b = pct_decode(value ? value : "", vn, vd, 1);
        if (a == (size_t)-1 || b == (size_t)-1)
            rq->bad_query = 1; /* refused: a dropped PageToken would silently
                                  restart the list */
        else if (params_add(&rq->query, kd, a, vd, b))
            rq->nomem = 1;
    }
    free(kd);
    free(vd);
}

void exchange_reply(server *sv, exchange *x, const exchange_in *in, reply *rp) {
    /* --clock: the fixed clock's reading as the request is handled */
    if (sv->fx) fixture_http_date(sv->fx, rp->date, sizeof rp->date);
    if (in->malformed) {
        reply_error(rp, 400, 20001, in->malformed);
        return;
    }
    /* --nats: HAProxy's probe of the shard's writer needs no credentials */
    if (sv->replica && !strcmp(in->url, "/healthz/writer")) {
        if (strcmp(in->method, "GET") != 0) {
            reply_error(rp, 405, 20004, "Method not allowed");
            rp->allow = "GET";
            return;
        }
        replica_healthz_writer(sv->replica, rp);
        return;
    }
    /* the operators' endpoints (metrics.c): a probe needs no credentials */
    if (x->route == ROUTE_HEALTHZ || x->route == ROUTE_METRICS) {
        if (strcmp(in->method, "GET") != 0) {
            reply_error(rp, 405, 20004, "Method not allowed");
            rp->allow = "GET";
            return;
        }
        if (x->route == ROUTE_HEALTHZ) {
            metrics_healthz(sv, rp);
            return;
        }
        if (!sv->cfg.metrics_auth || x->authorized) {
            metrics_render(sv, rp);
            return;
        }
    }
    if (!x->authorized) {
        rp->www_auth = 1;
        reply_error(rp, 401, 20003, "Authenticate");
        return;
    }
    if (x->too_large) {
        reply_error(rp, 413, 20001, "Request body too large");
        return;
    }
    if (sv->replica) {
        /* GET /replica, POST /replica/promote; writes only on the writer */
        int status = !strcmp(in->url, "/replica"),
            promote = !strcmp(in->url, "/replica/promote");
        if (status || promote) {
            if (strcmp(in->method, status ? "GET" : "POST") != 0) {
                reply_error(rp, 405, 20004, "Method not allowed");
                rp->allow = status ? "GET" : "POST";
            } else if (status) {
                replica_status(sv->replica, rp);
            } else {
                replica_promote(sv->replica, rp);
            }
            return;
        }
        const char *why = NULL;
        if ((!strcmp(in->method, "POST") || !strcmp(in->method, "DELETE")) &&
            !replica_writable(sv->replica, &why)) {
            reply_error(rp, 503, 20503, why);
            return;
        }
    }
    request rq;
    memset(&rq, 0, sizeof rq);
    rq.method = in->method;
    rq.path = in->url;
    rq.body = x->body;
    rq.body_len = x->len;
    rq.webhook = cs_str_c(header(in, "X-Twilio-Webhook-Enabled"));
    rq.content_type = cs_str_c(header(in, "Content-Type"));
    if (in->args) in->args(in->ctx, collect_query, &rq);
    if (rq.nomem || x->nomem) {
        reply_cs_error(rp, CS_E_NOMEM, in->url); /* 500, nothing done */
    } else if (rq.bad_query) {
        reply_error(rp, 400, 20001, "Malformed query string");
    } else if (!x->media && x->len && params_parse(&rq.form, x->body, x->len)) {
        reply_error(rp, 400, 20001, "Malformed form-encoded body");
    } else {
        if (sv->persist) persist_request_begin(sv->persist);
        if (sv->replica) replica_request_begin(sv->replica);
        route(sv, &rq, rp);
        /* --fsync always: the reply waits for its change to be on disk */
        if (sv->persist) persist_request_end(sv->persist);
        /* --replication sync: ... and for JetStream to have it */
        if (sv->replica) replica_request_end(sv->replica, rp);
    }
    params_free(&rq.query);
    params_free(&rq.form);
}

void exchange_free(exchange *x) {
    free(x->body);
    memset(x, 0, sizeof *x);
}

int exchange_run(server *sv, const exchange_in *in, const char *const *chunks,
                 const size_t *lens, size_t n, reply *rp) {
    exchange x;
    exchange_next nx = exchange_begin(sv, &x, in);
    for (size_t i = 0; nx == EXCHANGE_BODY && i < n; i++)
        if (lens[i]) nx = exchange_body(&x, chunks[i], lens[i]);
    if (nx != EXCHANGE_CLOSE) exchange_reply(sv, &x, in, rp);
    exchange_free(&x);
    return nx == EXCHANGE_CLOSE ? -1 : 0;
}
