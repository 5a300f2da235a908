/* Operators' view of chatstore-server: GET /healthz, GET /metrics
 * (Prometheus text format 0.0.4) and the per-request bookkeeping behind
 * them and the access log (accesslog.h). See metrics.c for the invariants
 * and README ("Operating the server") for the names. */
#ifndef CHATSTORE_SERVER_METRICS_H
#define CHATSTORE_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct server server;
typedef struct reply reply;
typedef struct metrics metrics;
struct sockaddr;

/* The route templates requests are counted under (a bounded set: any path
 * that matches none of the routes is ROUTE_OTHER). */
enum {
    ROUTE_OTHER,
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_SERVICES,
    ROUTE_SERVICE,
    ROUTE_CHANNELS,
    ROUTE_CHANNEL,
    ROUTE_MESSAGES,
    ROUTE_MESSAGE,
    ROUTE_MEDIA_UPLOAD,
    ROUTE_MEDIA,
    ROUTE_MEDIA_CONTENT,
    ROUTE_TEST_RESET,
    ROUTE_TEST_CLOCK,
    ROUTE_TEST_STATS,
    ROUTE_COUNT
};

/* The template of a raw request path ("/v2/Services/IS.../Channels"), as
 * routes.c would match it: empty segments skipped, each segment compared
 * after percent-decoding. Allocates nothing. */
int metrics_route_of(const char *path);
/* Its text ("/v2/Services/{ServiceSid}/Channels", "other"). */
const char *metrics_route_name(int route);

/* One request's bookkeeping, from its first callback to its reply. */
typedef struct obs_req {
    uint64_t t0_ns; /* CLOCK_MONOTONIC at the first callback */
    int route;
    unsigned char method; /* index of GET, POST, DELETE, other */
} obs_req;

/* NULL out of memory. */
metrics *metrics_new(void);
void metrics_free(metrics *m);

/* At the request's first callback: its method and start time (the route
 * is the exchange's: exchange.route, set by exchange_begin). */
void metrics_begin(metrics *m, obs_req *r, const char *method);
/* Just before its reply is queued: counts it by route, method and status,
 * its latency (first callback to now) and, for an error reply, its Twilio
 * code; writes its access-log line (when sv has one: client may be NULL)
 * and leaves the request id in rp->request_id. */
void metrics_end(server *sv, obs_req *r, const char *method, reply *rp,
                 const struct sockaddr *client);
/* Connections opened / closed (MHD_OPTION_NOTIFY_CONNECTION). */
void metrics_connection(metrics *m, int opened);

/* GET /healthz: 200 {"status": "ok"}; 503 once the server is stopping.
 * Takes no lock. */
void metrics_healthz(server *sv, reply *rp);
/* GET /metrics: the exposition. Takes the store's shared lock for the
 * moment of reading its counts. */
void metrics_render(server *sv, reply *rp);

#endif
