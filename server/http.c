/* libmicrohttpd glue: the daemon, its limits (connections, per address,
 * memory per connection, inactivity), the read deadlines of slow clients,
 * and the calls into exchange.c, which decides everything about a request
 * from its headers, body chunks and query arguments.
 *
 * Invariants:
 * - One code path: on_request only adapts libmicrohttpd's calls to
 *   exchange_begin / exchange_body / exchange_reply.
 * - A request's body bytes are handed to exchange_body as they arrive and
 *   consumed at once (never left for libmicrohttpd to buffer).
 * - Every connection has at most one read deadline running (headers or
 *   body); none while its reply is sent.
 * - in_flight counts the requests begun and not completed.
 * - Every reply queued passes metrics_end first (counts, latency, access
 *   log line, request id); /healthz and /metrics are decided in
 *   exchange.c like any route. */
#include "accesslog.h"
#include "fixture.h"
#include "metrics.h"
#include "persist.h"
#include "replica.h"
#include "server.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Bytes of libmicrohttpd memory per connection: the request line and
 * headers must fit (431 otherwise); bodies pass through it in pieces. */
#define EDGE_CONN_MEMORY (32 * 1024)

/* timeout_s: --timeout, announced as the Keep-Alive hint of a connection
 * that stays open, so a client closes an idle connection before the
 * server's deadline does (a request sent just as the server closes one
 * would be lost to the race; node's agent honours the hint). */
static enum MHD_Result send_reply(struct MHD_Connection *conn, reply *rp,
                                  unsigned timeout_s) {
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
    if (rp->close) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    } else if (timeout_s) {
        char ka[32];
        snprintf(ka, sizeof ka, "timeout=%u", timeout_s);
        MHD_add_response_header(r, "Keep-Alive", ka);
    }
    if (rp->date[0]) MHD_add_response_header(r, MHD_HTTP_HEADER_DATE, rp->date);
    if (rp->request_id[0])
        MHD_add_response_header(r, "Twilio-Request-Id", rp->request_id);
    enum MHD_Result ret = MHD_queue_response(conn, rp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- connection read deadlines ------------------------------------------
 * libmicrohttpd's own timeout is one of inactivity: a client sending one
 * byte a second never reaches it. Each connection therefore has a deadline
 * (monotonic ms, 0: none): --timeout seconds for its request's headers
 * (from the connection's start, or the end of the previous reply), then
 * again for the body (from the headers), none while its reply is being
 * sent (the inactivity timeout covers a client that stops reading). A
 * thread checks the deadlines a few times a second and shuts the socket
 * of a connection past its own down; libmicrohttpd then closes it as it
 * would any connection the client ended. The list is changed and the
 * sockets shut only under the mutex, and a connection leaves the list
 * (NOTIFY_CONNECTION, CLOSED) before libmicrohttpd closes its socket, so a
 * descriptor shut is always the connection's own. */

typedef struct edge_conn {
    struct edge_conn *prev, *next;
    int fd;
    long long deadline; /* atomic */
} edge_conn;

struct edge_conns {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int stop;
    edge_conn head; /* sentinel */
    unsigned timeout_s;
};

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void set_deadline(edge_conn *ec, unsigned timeout_s) {
    if (ec)
        __atomic_store_n(&ec->deadline,
                         timeout_s ? now_ms() + 1000LL * timeout_s : 0,
                         __ATOMIC_RELAXED);
}

static void *reaper(void *arg) {
    edge_conns *ecs = arg;
    pthread_mutex_lock(&ecs->mu);
    while (!ecs->stop) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_nsec += 200 * 1000 * 1000;
        if (t.tv_nsec >= 1000000000) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&ecs->cv, &ecs->mu, &t);
        long long now = now_ms();
        for (edge_conn *c = ecs->head.next; c != &ecs->head; c = c->next) {
            long long d = __atomic_load_n(&c->deadline, __ATOMIC_RELAXED);
            if (d && d <= now) {
                shutdown(c->fd, SHUT_RDWR);
                __atomic_store_n(&c->deadline, 0, __ATOMIC_RELAXED);
            }
        }
    }
    pthread_mutex_unlock(&ecs->mu);
    return NULL;
}

static edge_conns *edge_conns_new(unsigned timeout_s) {
    edge_conns *ecs = calloc(1, sizeof *ecs);
    if (!ecs) return NULL;
    ecs->head.next = ecs->head.prev = &ecs->head;
    ecs->timeout_s = timeout_s;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int ok = pthread_mutex_init(&ecs->mu, NULL) == 0;
    if (ok && pthread_cond_init(&ecs->cv, &ca) != 0) {
        pthread_mutex_destroy(&ecs->mu);
        ok = 0;
    }
    pthread_condattr_destroy(&ca);
    if (ok && pthread_create(&ecs->thread, NULL, reaper, ecs) != 0) {
        pthread_cond_destroy(&ecs->cv);
        pthread_mutex_destroy(&ecs->mu);
        ok = 0;
    }
    if (!ok) {
        free(ecs);
        return NULL;
    }
    return ecs;
}

/* After MHD_stop_daemon: every connection has left the list. */
static void edge_conns_free(edge_conns *ecs) {
    if (!ecs) return;
    pthread_mutex_lock(&ecs->mu);
    ecs->stop = 1;
    pthread_cond_signal(&ecs->cv);
    pthread_mutex_unlock(&ecs->mu);
    pthread_join(ecs->thread, NULL);
    pthread_cond_destroy(&ecs->cv);
    pthread_mutex_destroy(&ecs->mu);
    free(ecs);
}

static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    server *sv = cls;
    edge_conns *ecs = sv->conns;
    metrics_connection(sv->metrics, toe == MHD_CONNECTION_NOTIFY_STARTED);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        edge_conn *ec = ci ? calloc(1, sizeof *ec) : NULL;
        /* out of memory: no deadline, the inactivity timeout still holds */
        if (!ec) return;
        ec->fd = ci->connect_fd;
        set_deadline(ec, ecs->timeout_s); /* the first request's headers */
        pthread_mutex_lock(&ecs->mu);
        ec->next = ecs->head.next;
        ec->prev = &ecs->head;
        ec->next->prev = ec;
        ecs->head.next = ec;
        pthread_mutex_unlock(&ecs->mu);
        *socket_context = ec;
    } else if (*socket_context) {
        edge_conn *ec = *socket_context;
        pthread_mutex_lock(&ecs->mu);
        ec->prev->next = ec->next;
        ec->next->prev = ec->prev;
        pthread_mutex_unlock(&ecs->mu);
        free(ec);
        *socket_context = NULL;
    }
}

static edge_conn *conn_of(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* ---- requests -------------------------------------------------------- */

/* Per-request state, kept across the handler's calls. */
typedef struct conn_state {
    exchange x;
    obs_req obs; /* route, method, start time (metrics.h) */
} conn_state;

static const char *mhd_header(void *ctx, const char *name) {
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

typedef struct arg_sink {
    void (*add)(void *sink, const char *key, const char *value);
    void *sink;
} arg_sink;

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *value) {
    (void)kind;
    arg_sink *a = cls;
    a->add(a->sink, key, value);
    return MHD_YES;
}

static void mhd_args(void *ctx, void (*add)(void *, const char *, const char *),
                     void *sink) {
    arg_sink a = {add, sink};
    MHD_get_connection_values(ctx, MHD_GET_ARGUMENT_KIND, each_arg, &a);
}

/* Headers libmicrohttpd passes on but the request cannot be taken with:
 * Content-Length twice with different values (which body is it? It reads
 * the first). (A NUL byte inside a header cannot be seen here: its parser
 * ends the value there.) */
typedef struct header_check {
    const char *malformed;
    const char *cl;
    size_t cl_len;
} header_check;

static enum MHD_Result check_header(void *cls, enum MHD_ValueKind kind,
                                    const char *key, size_t key_size,
                                    const char *value, size_t value_size) {
    (void)kind;
    (void)key_size;
    header_check *h = cls;
    if (value && strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (h->cl && (h->cl_len != value_size || memcmp(h->cl, value, value_size))) {
            h->malformed = "Conflicting Content-Length headers";
            return MHD_NO;
        }
        h->cl = value;
        h->cl_len = value_size;
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    server *sv = cls;
    conn_state *c = *con_cls;
    exchange_in in = {method, url, mhd_header, mhd_args, conn, NULL};
    if (!c) {
        /* The headers are in: authentication and limits before any body. */
        c = calloc(1, sizeof *c);
        if (!c) return MHD_NO;
        __atomic_add_fetch(&sv->in_flight, 1, __ATOMIC_SEQ_CST);
        metrics_begin(sv->metrics, &c->obs, method);
        *con_cls = c;
        set_deadline(conn_of(conn), sv->cfg.timeout_s); /* the body's */
        header_check hc = {NULL, NULL, 0};
        MHD_get_connection_values_n(conn, MHD_HEADER_KIND, check_header, &hc);
        in.malformed = hc.malformed;
        exchange_next nx = exchange_begin(sv, &c->x, &in);
        c->obs.route = c->x.route;
        if (nx != EXCHANGE_REPLY) return MHD_YES;
        /* answered before the body: MHD reads none of it, and closes the
         * connection after the reply */
    } else if (*upload_size) {
        exchange_next nx = exchange_body(&c->x, upload, *upload_size);
        *upload_size = 0;
        return nx == EXCHANGE_CLOSE ? MHD_NO : MHD_YES;
    }
    set_deadline(conn_of(conn), 0); /* the reply: inactivity timeout only */
    reply rp;
    memset(&rp, 0, sizeof rp);
    cs_buf_init(&rp.body, NULL);
    exchange_reply(sv, &c->x, &in, &rp);
    exchange_free(&c->x);
    rp.close = __atomic_load_n(&sv->stopping, __ATOMIC_SEQ_CST);
    const union MHD_ConnectionInfo *ci =
        sv->alog ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS)
                 : NULL;
    metrics_end(sv, &c->obs, method, &rp, ci ? ci->client_addr : NULL);
    /* the test fixture's replies are deterministic (FX1): no id header */
    if (sv->fx) rp.request_id[0] = '\0';
    enum MHD_Result ret = send_reply(conn, &rp, sv->cfg.timeout_s);
    cs_buf_free(&rp.body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)toe;
    server *sv = cls;
    conn_state *c = *con_cls;
    /* the next request's headers (keep-alive) */
    set_deadline(conn_of(conn), sv->cfg.timeout_s);
    if (!c) return;
    __atomic_sub_fetch(&sv->in_flight, 1, __ATOMIC_SEQ_CST);
    exchange_free(&c->x);
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
    if (sv->cfg.max_memory) lim.max_bytes = store_bytes_left(sv);
    /* under the exclusive lock: with --data-dir the compactor thread
     * already reads the store */
    cs_err e = cs_store_lock_exclusive(sv->store);
    if (!e) {
        e = cs_store_set_limits(sv->store, &lim);
        if (!e && media_observe(sv)) e = CS_E_NOMEM;
        cs_store_unlock(sv->store);
    }
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
    sv->metrics = metrics_new();
    if (!sv->media || !sv->metrics) {
        fprintf(stderr, "chatstore-server: out of memory\n");
        return -1;
    }
    if (cfg->access_log && !(sv->alog = accesslog_open(cfg->access_log)))
        return -1;
    if (cfg->data_dir) {
        persist_config pc = {cfg->data_dir, (persist_fsync)cfg->fsync_mode,
                             cfg->compact_ratio, cfg->compact_min_bytes,
                             cfg->repair != 0, cfg->account_sid, cfg->base_url};
        sv->persist = persist_open(&pc, sv->media, &sv->store);
        if (!sv->persist) return -1;
        if (server_quotas(sv)) return -1;
        /* the data directory's account, when none was given */
        sv->cfg.account_sid = cs_store_account_sid(sv->store);
    } else if (cfg->replica) {
        /* --nats: the store comes from the shard's stream (or starts it) */
        cs_options o = CS_OPTIONS_INIT;
        o.account_sid = cfg->account_sid;
        o.base_url = cfg->base_url;
        o.use_sid_tag = true; /* the shard in every service SID: routing */
        o.sid_tag = (uint8_t)cfg->replica->shard;
        int code = 1;
        sv->replica = replica_open(sv, cfg->replica, &o, &code);
        if (!sv->replica) return code;
        if (server_quotas(sv) || replica_start(sv->replica)) return -1;
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
    char err[200];
    int fd = listen_open(cfg->host, cfg->port, &sv->bound_port, err, sizeof err);
    if (fd < 0) {
        char where[300];
        listen_origin(cfg->host, cfg->port, where, sizeof where);
        fprintf(stderr, "chatstore-server: cannot listen on %s: %s\n",
                where + 7 /* without "http://" */, err);
        return -1;
    }
    sv->conns = edge_conns_new(cfg->timeout_s);
    if (!sv->conns) {
        close(fd);
        fprintf(stderr, "chatstore-server: cannot start the connection timer\n");
        return -1;
    }
    /* (ITC: MHD_quiesce_daemon, for the graceful stop of --data-dir) */
    sv->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
            (strchr(cfg->host, ':') ? MHD_USE_IPv6 : 0) |
            (cfg->data_dir || cfg->replica ? MHD_USE_ITC : 0),
        0, NULL, NULL, on_request, sv, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, sv,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, sv,
        /* inactivity; the read deadlines above bound slow senders */
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_connections_per_ip,
        /* a request's headers live in this (431 past it) */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)EDGE_CONN_MEMORY,
        MHD_OPTION_END);
    if (!sv->daemon) { /* (it closed fd) */
        fprintf(stderr, "chatstore-server: libmicrohttpd did not start\n");
        return -1;
    }
    return 0;
}

int server_stop(server *sv) {
    int rc = 0;
    MHD_socket listener = MHD_INVALID_SOCKET;
    if (sv->daemon && (sv->persist || sv->replica)) {
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
    edge_conns_free(sv->conns); /* no connection left */
    /* Every handler has returned: nothing changes the store any more. */
    if (sv->persist && persist_close(sv->persist)) rc = -1;
    replica_close(sv->replica); /* publishes what it still holds */
    media_store_free(sv->media);
    cs_store_free(sv->store);
    fixture_free(sv->fx); /* the store's clock context: after the store */
    metrics_free(sv->metrics);
    accesslog_close(sv->alog);
    memset(sv, 0, sizeof *sv);
    return rc;
}
