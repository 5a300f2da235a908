/* Post-event webhooks of chatstore-server (docs/behaviour.md, section 9a).
 *
 * An observer on the store turns each committed REST change that carried
 * X-Twilio-Webhook-Enabled: true into a delivery, when the service has a
 * post_webhook_url and the event is in its webhook_filters. The delivery
 * holds every parameter (copied under the store's lock), so sending it
 * reads nothing from the store. One worker thread sends the deliveries with
 * libcurl's multi interface: per service one at a time, in commit order,
 * services in parallel. */
#ifndef CHATSTORE_SERVER_WEBHOOK_H
#define CHATSTORE_SERVER_WEBHOOK_H

#include <chatstore.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct webhooks webhooks;

typedef struct webhook_config {
    const char *account_sid;
    const char *auth_token; /* the signing key */
    size_t queue_max;       /* pending deliveries kept; one more drops the oldest */
    FILE *log;              /* one line per delivery and per drop; NULL: none */
    /* Test hooks: the per-attempt timeout and the first retry delay (then
     * doubled), in milliseconds; 0: the defaults (5000, 1000). */
    unsigned timeout_ms, retry_base_ms;
} webhook_config;

#define WEBHOOK_QUEUE_DEFAULT 10000

/* Starts the worker thread. NULL on failure (printed). */
webhooks *webhooks_new(const webhook_config *cfg);
/* Registers the observer on s (taking its exclusive lock). 0 or -1. */
int webhooks_attach(webhooks *w, cs_store *s);
/* The same, by a caller that holds s's exclusive lock already. */
int webhooks_attach_locked(webhooks *w, cs_store *s);
/* After the store is gone (no observer can run): stops the worker, drops
 * what is pending, prints the totals to the log and frees everything. */
void webhooks_free(webhooks *w);

/* The server's message update tells the observer which LastUpdatedBy the
 * call gave (ModifiedBy), on the calling thread, around the store call;
 * absent: none given. */
void webhooks_set_modified_by(cs_str last_updated_by);

typedef struct webhook_stats {
    uint64_t queued, delivered, failed, dropped, attempts;
} webhook_stats;
void webhooks_stats(webhooks *w, webhook_stats *out);

/* ---- the pure parts, for tests ------------------------------------------ */

typedef struct webhook_param {
    const char *name;
    const char *val;
    size_t len;
} webhook_param;

/* X-Twilio-Signature: base64 of HMAC-SHA1(token, url followed by each
 * parameter's name and value, sorted by name). out gets 28 characters and
 * a NUL. 0, or -1 out of memory. */
int webhook_signature(const char *token, const char *url,
                      const webhook_param *p, size_t n, char out[29]);
/* Appends p[0..n) form-encoded ("a=b&c=d") to *buf (malloc'ed, *len and
 * *cap as a growable buffer). 0, or -1 out of memory. */
int webhook_form(const webhook_param *p, size_t n, char **buf, size_t *len,
                 size_t *cap);

#endif
