/* chatstore-server: Twilio Chat v2 on the wire over a chatstore store. */
#ifndef CHATSTORE_SERVER_H
#define CHATSTORE_SERVER_H

#include <chatstore.h>
#include <pthread.h>
#include <stddef.h>

/* ---- form and query parameters ------------------------------------------ */

typedef struct kv {
    char *key, *val;
    size_t key_len, val_len;
} kv;

typedef struct params {
    kv *items;
    size_t n, cap;
} params;

/* Percent-decodes in[0..n) into out (at least n bytes); '+' becomes a space
 * when plus is set. Returns the decoded length, or (size_t)-1 on a bad
 * escape. */
size_t pct_decode(const char *in, size_t n, char *out, int plus);
/* Parses "k=v&k=v" (form body or query), decoding both sides. Returns 0, or
 * -1 on a malformed escape or out of memory. */
int params_parse(params *p, const char *s, size_t n);
int params_add(params *p, const char *k, size_t kn, const char *v, size_t vn);
void params_free(params *p);
/* The first value of key, or the absent string. */
cs_str params_get(const params *p, const char *key);
/* How many times key appears. */
size_t params_count(const params *p, const char *key);
/* Collects every value of key into out[0..max); returns how many. */
size_t params_all(const params *p, const char *key, cs_str *out, size_t max);

/* Decodes standard base64; returns the length or (size_t)-1. */
size_t base64_decode(const char *in, size_t n, char *out, size_t cap);

/* ---- media bytes ---------------------------------------------------------- */

typedef struct media_store media_store;
typedef struct blob blob;
typedef struct server server;
media_store *media_store_new(size_t cap_bytes);
void media_store_free(media_store *m);
enum { MEDIA_FULL = -1, MEDIA_NOMEM = -2 };
/* Before the store registers an upload: reserves n bytes of the cap, copies
 * data and allocates the entry. 0 and *out, MEDIA_FULL (cap exceeded) or
 * MEDIA_NOMEM. */
int media_store_prepare(media_store *m, const char *data, size_t n,
                        blob **out);
/* After it registered the media as sid of service_sid (created: its
 * date_created): keeps the bytes. Cannot fail. */
void media_store_commit(media_store *m, blob *b, const char *sid,
                        const char *service_sid, int64_t created);
/* After it refused: frees b (may be NULL) and gives back n bytes of cap. */
void media_store_abort(media_store *m, blob *b, size_t n);
/* Frees (and unreserves) the bytes of every media of a deleted service. */
void media_store_drop_service(media_store *m, const char *service_sid);
/* Frees the bytes of one media item; 1 if it had bytes here. */
int media_store_drop(media_store *m, const char *sid);
/* Frees the bytes of every media item of service_sid that s no longer
 * knows (a channel delete took them), calling dropped for each first (may
 * be NULL); under s's lock. Returns how many. */
size_t media_store_drop_gone(media_store *m, const char *service_sid,
                             const cs_store *s,
                             void (*dropped)(void *ctx, const char *is,
                                             const char *me),
                             void *ctx);
/* What the store says of sid: its date_created, and whether it is attached
 * to a message (then it never expires). */
void media_store_note(media_store *m, const char *sid, int64_t created,
                      int attached);
/* Up to max items not known to be attached, created at or before `before`:
 * out[i][0] the service SID, out[i][1] the media SID. Returns how many. */
size_t media_store_expired(media_store *m, int64_t before,
                           char (*out)[2][CS_SID_BUFSZ], size_t max);
/* Calls fn for every item held, under the table's mutex (fn must not
 * call back into m). */
void media_store_each(media_store *m,
                      void (*fn)(void *ctx, const char *sid,
                                 const char *service_sid, const char *data,
                                 size_t n, int64_t created),
                      void *ctx);
/* Bytes held and reserved; items held. */
size_t media_store_used(media_store *m);
size_t media_store_count(media_store *m);
/* The bytes of sid without a copy: *data[0..*n) stay valid until
 * media_store_release(the returned blob), even if the item is deleted
 * meanwhile. NULL: no bytes for sid. */
blob *media_store_get(media_store *m, const char *sid, char **data,
                      size_t *n);
void media_store_release(void *blob);

/* The media lifecycle (media.c): an observer that frees the bytes (and,
 * with --data-dir, the files) of media items the store removed, and marks
 * attached ones; media_expire deletes, through cs_media_delete, uploads
 * never attached after --media-ttl seconds (at most once a second unless
 * force). Both need sv->store. */
int media_observe(server *sv);
void media_expire(server *sv, int force);

/* ---- the server --------------------------------------------------------- */

#define MEDIA_TTL_DEFAULT 3600 /* --media-ttl */

typedef struct persist persist; /* persist.h: --data-dir */
typedef struct edge_conns edge_conns; /* http.c: connection deadlines */
typedef struct fixture fixture; /* fixture.h: --seed, --clock, --fixture,
                                   --test-endpoints */
typedef struct metrics metrics;     /* metrics.h: /healthz, /metrics */
typedef struct accesslog accesslog; /* accesslog.h: --access-log */
typedef struct webhooks webhooks;   /* webhook.h */
typedef struct replica replica;     /* replica.h: --nats */
typedef struct directory directory; /* directory.h: the cluster's services */
struct fixture_config;

typedef struct server_config {
    const char *host; /* numeric IPv4 or IPv6 address (listen.c) */
    unsigned port;
    const char *account_sid;
    const char *auth_token;
    const char *base_url;
    size_t max_request;   /* --max-body: bytes of a request body but a
                             media upload's; larger: 413 */
    size_t media_cap;     /* bytes of media kept in memory in total (and
                             the body limit of a media upload) */
    unsigned threads;
    /* The edge (http.c): --timeout, --max-connections,
     * --max-connections-per-ip (0: no per-address limit) */
    unsigned timeout_s;
    unsigned max_connections;
    unsigned max_connections_per_ip;
    /* --data-dir and its options (persist.h); data_dir NULL: memory only */
    const char *data_dir;
    int fsync_mode; /* persist_fsync */
    double compact_ratio;
    unsigned long long compact_min_bytes;
    int repair;
    /* --seed, --clock, --fixture, --test-endpoints (fixture.h); NULL: none */
    const struct fixture_config *fixture;
    int metrics_auth;       /* --metrics-auth on (1, default) | off (0) */
    const char *access_log; /* --access-log FILE|-; NULL: none */
    /* --max-services, --max-channels, --max-messages: the store's count
     * quotas; --max-memory: store bytes plus media bytes (0: none) */
    uint64_t max_services, max_channels, max_messages, max_memory;
    unsigned long media_ttl; /* seconds an unattached upload lives; 0: ever */
    /* --nats and its options (replica.h); NULL: no replication */
    const struct replica_config *replica;
} server_config;

struct server {
    server_config cfg;
    cs_store *store;
    media_store *media;
    persist *persist; /* NULL without --data-dir */
    fixture *fx;      /* NULL without the test fixture's flags */
    metrics *metrics; /* request counts, /metrics */
    accesslog *alog;  /* NULL without --access-log */
    webhooks *webhooks; /* for /metrics; set once started (atomic) */
    replica *replica;     /* NULL without --nats */
    directory *directory; /* NULL without --nats */
    struct MHD_Daemon *daemon;
    edge_conns *conns; /* connections and their read deadlines (http.c) */
    unsigned bound_port;
    unsigned long in_flight; /* requests begun and not completed (atomic) */
    int64_t next_expiry;     /* real time of the next media sweep (atomic) */
    int stopping;            /* server_stop began: replies close (atomic) */
};

int server_start(server *sv, const server_config *cfg);
/* With --data-dir: stops accepting, lets the requests in flight finish,
 * then flushes and fsyncs the journal. Returns 0, or -1 when the final
 * flush failed. */
int server_stop(server *sv);

/* A response being built: status, JSON or raw body, content type. */
typedef struct reply {
    unsigned status;
    cs_buf body;
    const char *content_type;
    char ct_buf[256]; /* content_type may point here */
    int www_auth;     /* add WWW-Authenticate */
    const char *allow; /* Allow header of a 405 reply, or NULL */
    int close;         /* add Connection: close */
    char date[40];     /* Date header when not "" (a fixed clock's) */
    int code;          /* an error reply's Twilio code (reply_error), or 0 */
    char request_id[40]; /* Twilio-Request-Id, when not "" */
    blob *media;       /* media content: the reply body borrows its bytes
                          (body.data), released when sent */
} reply;

/* A parsed request, as routes see it. */
typedef struct request {
    const char *method;
    const char *path; /* raw, percent-encoded, without the query */
    params query;
    params form;
    const char *body; /* raw body (media upload) */
    size_t body_len;
    cs_str webhook;   /* X-Twilio-Webhook-Enabled */
    cs_str content_type;
    int bad_query;    /* a query key or value had a malformed %-escape */
    int nomem;        /* reading the query ran out of memory */
} request;

/* ---- one request without sockets (exchange.c) -------------------------- */

/* What the transport hands over once a request's headers are in. */
typedef struct exchange_in {
    const char *method;
    const char *url; /* the path, raw (percent-encoded), without the query */
    /* A request header's value (name case-insensitive), or NULL. */
    const char *(*header)(void *ctx, const char *name);
    /* Calls add(sink, key, value) for each query argument, raw
     * (percent-encoded; value NULL when the argument has no '='). */
    void (*args)(void *ctx, void (*add)(void *sink, const char *key,
                                        const char *value),
                 void *sink);
    void *ctx;
    /* Set by the transport when the headers cannot be taken as they are
     * (Content-Length given twice with different values): 400 / 20001
     * with this message, before anything else, and the connection closes. */
    const char *malformed;
} exchange_in;

/* What the transport does next. */
typedef enum exchange_next {
    EXCHANGE_BODY,  /* read the body (if any), pass it to exchange_body */
    EXCHANGE_REPLY, /* send exchange_reply's reply now, read no body */
    EXCHANGE_CLOSE  /* close the connection without a reply */
} exchange_next;

/* Bytes of a refused body (401, 413) read and dropped before the
 * connection is closed instead. */
#define EXCHANGE_DRAIN ((size_t)16 << 20)

typedef struct exchange {
    int route;      /* metrics_route_of(url): ROUTE_* of metrics.h */
    int authorized; /* from the headers, before any body byte */
    int media;      /* a media upload: the body is kept raw */
    int too_large;  /* 413: by Content-Length or by the running count */
    int nomem;      /* the body could not be kept: 500 */
    size_t limit;   /* the route's body limit */
    size_t seen;    /* body bytes passed in so far, kept or not */
    char *body;     /* kept bytes (authorized and within the limit) */
    size_t len, cap;
} exchange;

/* Starts a request once its headers are in: authentication, the route's
 * body limit, a Content-Length over it, Expect: 100-continue. */
exchange_next exchange_begin(const server *sv, exchange *x, const exchange_in *in);
/* The next body chunk: kept, or dropped when the request is refused. */
exchange_next exchange_body(exchange *x, const char *data, size_t n);
/* The request is complete (or answered early): fills the reply, after
 * routing it to the store when nothing refused it. */
void exchange_reply(server *sv, exchange *x, const exchange_in *in, reply *rp);
void exchange_free(exchange *x);
/* The whole sequence over body chunks[0..n): what http.c does, step by
 * step, without a socket. Returns 0 with *rp filled, or -1 when the
 * connection would be closed without a reply (rp untouched). */
int exchange_run(server *sv, const exchange_in *in, const char *const *chunks,
                 const size_t *lens, size_t n, reply *rp);
/* POST /v1/Services/{IS}/Media */
int exchange_is_media_upload(const char *method, const char *url);

/* ---- the listening socket (listen.c) ------------------------------------ */

/* Splits "HOST:PORT", "[IPv6]:PORT" (or a bare IPv6 with a port after its
 * last ':' only when bracketed) into host (brackets removed) and port.
 * Returns 0, or -1 with a message in err. */
int listen_split(const char *s, char *host, size_t cap, unsigned *port,
                 char *err, size_t errcap);
/* A listening TCP socket on the numeric address host and port (0: any
 * free one): IPv6 sockets are IPv6 only. Returns the descriptor, or -1
 * with the reason in err ("address already in use", ...); *bound_port
 * is the port it got. */
int listen_open(const char *host, unsigned port, unsigned *bound_port,
                char *err, size_t errcap);
/* "http://HOST:PORT" with IPv6 in brackets. */
void listen_origin(const char *host, unsigned port, char *out, size_t cap);

/* --max-memory: what the media bytes leave of it for the store's byte
 * quota (at least 1: 0 would lift the quota). */
uint64_t store_bytes_left(server *sv);
/* Routes a request; fills the reply. */
void route(server *sv, const request *rq, reply *rp);
/* An error reply in Twilio's envelope. */
void reply_error(reply *rp, unsigned status, int code, const char *message);
void reply_cs_error(reply *rp, cs_err e, const char *path);

#endif
