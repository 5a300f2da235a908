/* libmicrohttpd glue: request bodies, limits, authentication, replies. */
#include "fixture.h"
#include "persist.h"
#include "server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Per-connection request state, kept across the handler's calls. */
typedef struct conn_state {
    char *body;
    size_t len, cap;
    size_t limit;
    int too_large;
} conn_state;

static int is_media_upload(const char *method, const char *url) {
    return strcmp(method, "POST") == 0 && strncmp(url, "/v1/", 4) == 0;
}

/* Appends upload data; past the limit the rest is read and dropped. */
static void accumulate(conn_state *c, const char *data, size_t n) {
    if (c->too_large) return;
    if (n > c->limit - c->len) {
        c->too_large = 1;
        return;
    }
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n) cap *= 2;
        char *b = realloc(c->body, cap);
        if (!b) {
            c->too_large = 1;
            return;
        }
        c->body = b;
        c->cap = cap;
    }
    memcpy(c->body + c->len, data, n);
    c->len += n;
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, reply *rp) {
    struct MHD_Response *r;
    if (rp->media) {
        /* media content: the blob's bytes, released once sent */
        r = MHD_create_response_from_buffer_with_free_callback_cls(
            rp->body.len, rp->body.data, media_store_release, rp->media);
        if (!r) media_store_release(rp->media);
        rp->media = NULL;
        rp->body.data = NULL;
        rp->body.len = rp->body.cap = 0;
    } else if (rp->status == 204 || !rp->body.len) {
        cs_buf_free(&rp->body);
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_buffer_with_free_callback(
            rp->body.len, rp->body.data, free);
        rp->body.data = NULL;
    }
    if (!r) return MHD_NO;
    if (rp->status != 204 && rp->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rp->content_type);
    if (rp->www_auth)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Basic realm=\"Twilio API\"");
    if (rp->allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, rp->allow);
    /* Stopping: no further request on this connection. */
    if (rp->close) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (rp->date[0]) MHD_add_response_header(r, MHD_HTTP_HEADER_DATE, rp->date);
    enum MHD_Result ret = MHD_queue_response(conn, rp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* HTTP Basic with the account SID and auth token. */
static int authorized(server *sv, struct MHD_Connection *conn) {
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
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

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value) {
    (void)kind;
    request *rq = cls;
    params *q = &rq->query;
    /* Keys and values arrive raw (see the no-op unescape callback). */
    size_t kn = strlen(key), vn = value ? strlen(value) : 0;
    char *kd = malloc(kn + 1), *vd = malloc(vn + 1);
    int bad = !kd || !vd;
    size_t a = bad ? 0 : pct_decode(key, kn, kd, 1);
    size_t b = bad ? 0 : pct_decode(value ? value : "", vn, vd, 1);
    if (!bad && (a == (size_t)-1 || b == (size_t)-1))
        rq->bad_query = 1; /* refused: a dropped PageToken would silently
                              restart the list */
    else if (!bad)
        params_add(q, kd, a, vd, b);
    free(kd);
    free(vd);
    return MHD_YES;
}

static void handle(server *sv, struct MHD_Connection *conn, const char *url,
                   const char *method, conn_state *c, reply *rp) {
    if (!authorized(sv, conn)) {
        rp->www_auth = 1;
        reply_error(rp, 401, 20003, "Authenticate");
        return;
    }
    if (c->too_large) {
        reply_error(rp, 413, 20001, "Request body too large");
        return;
    }
    request rq;
    memset(&rq, 0, sizeof rq);
    rq.method = method;
    rq.path = url;
    rq.body = c->body;
    rq.body_len = c->len;
    rq.webhook = cs_str_c(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                      "X-Twilio-Webhook-Enabled"));
    rq.content_type = cs_str_c(MHD_lookup_connection_value(
        conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, &rq);
    if (rq.bad_query) {
        reply_error(rp, 400, 20001, "Malformed query string");
    } else if (!is_media_upload(method, url) && c->len &&
        params_parse(&rq.form, c->body, c->len)) {
        reply_error(rp, 400, 20001, "Malformed form-encoded body");
    } else {
        if (sv->persist) persist_request_begin(sv->persist);
        route(sv, &rq, rp);
        /* --fsync always: the reply waits for its change to be on disk */
        if (sv->persist) persist_request_end(sv->persist);
    }
    params_free(&rq.query);
    params_free(&rq.form);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    server *sv = cls;
    conn_state *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return MHD_NO;
        __atomic_add_fetch(&sv->in_flight, 1, __ATOMIC_SEQ_CST);
        c->limit = is_media_upload(method, url) ? sv->cfg.media_cap
                                                : sv->cfg.max_request;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > c->limit) c->too_large = 1;
        *con_cls = c;
        /* Too large by its Content-Length and the client waits for
         * "100 Continue" before sending the body (curl does so above 1 MiB):
         * answer now (401 or 413), and MHD never asks for the body. Without
         * Expect the body is already on its way: read and drop it, then
         * answer, since a reply sent early is lost to a reset on close. */
        const char *ex = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_EXPECT);
        if (!c->too_large || !ex || strcasecmp(ex, "100-continue") != 0)
            return MHD_YES;
    } else if (*upload_size) {
        accumulate(c, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    reply rp;
    memset(&rp, 0, sizeof rp);
    cs_buf_init(&rp.body, NULL);
    /* --clock: the fixed clock's reading as the request is handled */
    if (sv->fx) fixture_http_date(sv->fx, rp.date, sizeof rp.date);
    handle(sv, conn, url, method, c, &rp);
    rp.close = __atomic_load_n(&sv->stopping, __ATOMIC_SEQ_CST);
    enum MHD_Result ret = send_reply(conn, &rp);
    cs_buf_free(&rp.body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    server *sv = cls;
    conn_state *c = *con_cls;
    if (!c) return;
    __atomic_sub_fetch(&sv->in_flight, 1, __ATOMIC_SEQ_CST);
    free(c->body);
    free(c);
    *con_cls = NULL;
}

/* Keeps the URL and query raw: path segments are decoded one by one later,
 * so an encoded '/' inside a unique name cannot split a segment. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls;
    (void)c;
    return strlen(s);
}

/* --max-*: the store's quotas (after recovery, which never checks them),
 * and the media lifecycle's observer. */
static int server_quotas(server *sv) {
    cs_limits lim = *cs_store_limits(sv->store);
    lim.max_services = sv->cfg.max_services;
    lim.max_channels = sv->cfg.max_channels;
    lim.max_messages = sv->cfg.max_messages;
    if (sv->cfg.max_memory) {
        size_t media = media_store_used(sv->media);
        lim.max_bytes = media < sv->cfg.max_memory
                            ? sv->cfg.max_memory - media : 1;
    }
    cs_err e = cs_store_set_limits(sv->store, &lim);
    if (!e && media_observe(sv)) e = CS_E_NOMEM;
    if (e) {
        fprintf(stderr, "chatstore-server: store: %s\n", cs_err_message(e));
        return -1;
    }
    return 0;
}

int server_start(server *sv, const server_config *cfg) {
    memset(sv, 0, sizeof *sv);
    sv->cfg = *cfg;
    sv->media = media_store_new(cfg->media_cap);
    if (!sv->media) {
        fprintf(stderr, "chatstore-server: out of memory\n");
        return -1;
    }
    if (cfg->data_dir) {
        persist_config pc = {cfg->data_dir, (persist_fsync)cfg->fsync_mode,
                             cfg->compact_ratio, cfg->compact_min_bytes,
                             cfg->repair != 0, cfg->account_sid, cfg->base_url};
        sv->persist = persist_open(&pc, sv->media, &sv->store);
        if (!sv->persist) return -1;
        if (server_quotas(sv)) return -1;
        /* the data directory's account, when none was given */
        sv->cfg.account_sid = cs_store_account_sid(sv->store);
    } else {
        cs_options o = CS_OPTIONS_INIT;
        o.account_sid = cfg->account_sid;
        o.base_url = cfg->base_url;
        /* --seed, --clock: the store's seed and clock hook */
        if (cfg->fixture && !(sv->fx = fixture_new(cfg->fixture, &o)))
            return -1;
        cs_err e = cs_store_new(&o, &sv->store);
        if (e) {
            fprintf(stderr, "chatstore-server: store: %s\n", cs_err_message(e));
            return -1;
        }
        /* none given: the store's own (derived from the seed, or random) */
        if (!cfg->account_sid)
            sv->cfg.account_sid = cs_store_account_sid(sv->store);
        if (server_quotas(sv)) return -1;
        /* --fixture: loaded before the server listens */
        if (sv->fx && fixture_start(sv->fx, sv)) return -1;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
        fprintf(stderr, "chatstore-server: bad listen address %s\n", cfg->host);
        return -1;
    }
    /* (ITC: MHD_quiesce_daemon, for the graceful stop of --data-dir) */
    sv->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
            (cfg->data_dir ? MHD_USE_ITC : 0),
        (uint16_t)cfg->port,
        NULL, NULL, on_request, sv, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, sv,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_CONNECTION_LIMIT, 1000u, MHD_OPTION_END);
    if (!sv->daemon) {
        fprintf(stderr, "chatstore-server: cannot listen on %s:%u\n", cfg->host,
                cfg->port);
        return -1;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(sv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    sv->bound_port = info ? info->port : cfg->port;
    return 0;
}

int server_stop(server *sv) {
    int rc = 0;
    MHD_socket listener = MHD_INVALID_SOCKET;
    if (sv->daemon && sv->persist) {
        /* No new connections; the requests in flight finish (bounded: a
         * client that never reads its reply is cut off after 10 s). */
        __atomic_store_n(&sv->stopping, 1, __ATOMIC_SEQ_CST);
        listener = MHD_quiesce_daemon(sv->daemon);
        /* Until nothing has been in flight for 50 ms: replies now close
         * their connections, so a keep-alive client sends at most the
         * request it already had on the way. */
        for (int i = 0, quiet = 0; i < 1000 && quiet < 5; i++) {
            struct timespec t = {0, 10 * 1000 * 1000};
            nanosleep(&t, NULL);
            quiet = __atomic_load_n(&sv->in_flight, __ATOMIC_SEQ_CST) ? 0
                                                                       : quiet + 1;
        }
    }
    if (sv->daemon) MHD_stop_daemon(sv->daemon);
    if (listener != MHD_INVALID_SOCKET) close(listener); /* quiesce hands it over */
    /* Every handler has returned: nothing changes the store any more. */
    if (sv->persist && persist_close(sv->persist)) rc = -1;
    media_store_free(sv->media);
    cs_store_free(sv->store);
    fixture_free(sv->fx); /* the store's clock context: after the store */
    memset(sv, 0, sizeof *sv);
    return rc;
}
