/* The REST API: paths to store calls, store results to JSON replies. Only the
 * library's public API is used. Reads run under the store's shared lock,
 * changes under the exclusive one; rendering happens under the same lock
 * as the call, since views borrow from the store. Changes take the lock
 * through lock_write, which with --max-memory first makes the store's byte
 * quota what the media bytes leave of it. Every request may first run the
 * media expiry sweep (media.c, at most once a second; always before an
 * upload). Media content is sent from the stored bytes by reference
 * (reply.media), never copied. In a cluster (--nats) the service list is
 * the directory's (directory.c), over every shard. The test endpoints
 * (/_chatstore/..., only with --test-endpoints) route here and act through
 * fixture.c; without the flag their paths are unknown (404) like any other
 * outside /v1 and /v2. */
#include "directory.h"
#include "fixture.h"
#include "persist.h"
#include "replica.h"
#include "server.h"
#include "webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGS 8
/* Type values a channel list reads; a request with more is refused. */
#define MAX_TYPES 8

typedef struct path {
    cs_str seg[MAX_SEGS]; /* decoded */
    char *buf;
    size_t n;
} path;

/* Splits the raw path at '/', percent-decoding each segment on its own (so a
 * %2F inside a unique name stays inside its segment). */
static int path_parse(const char *raw, path *p) {
    size_t len = strlen(raw);
    p->n = 0;
    p->buf = malloc(len + 1);
    if (!p->buf) return -1;
    size_t o = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && raw[i] != '/') continue;
        if (i > start) {
            if (p->n == MAX_SEGS) return -1;
            size_t d = pct_decode(raw + start, i - start, p->buf + o, 0);
            if (d == (size_t)-1) return -1;
            p->seg[p->n++] = (cs_str){p->buf + o, d};
            o += d;
        }
        start = i + 1;
    }
    return 0;
}

static int seg_is(const path *p, size_t i, const char *lit) {
    return i < p->n && p->seg[i].len == strlen(lit) &&
           memcmp(p->seg[i].ptr, lit, p->seg[i].len) == 0;
}

/* ---- replies ------------------------------------------------------------ */

static void body_append(reply *rp, const char *s) {
    size_t n = strlen(s);
    cs_buf *b = &rp->body;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *d = realloc(b->data, cap);
        if (!d) return;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
}

/* JSON string escaping for messages the server writes itself. */
static void append_json_string(reply *rp, const char *s) {
    char tmp[8];
    body_append(rp, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            tmp[2] = 0;
        } else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
        } else {
            tmp[0] = (char)c;
            tmp[1] = 0;
        }
        body_append(rp, tmp);
    }
    body_append(rp, "\"");
}

void reply_error(reply *rp, unsigned status, int code, const char *message) {
    char num[96];
    rp->status = status;
    rp->code = code;
    rp->content_type = "application/json";
    cs_buf_reset(&rp->body);
    snprintf(num, sizeof num, "{\"code\": %d, \"message\": ", code);
    body_append(rp, num);
    append_json_string(rp, message);
    snprintf(num, sizeof num,
             ", \"more_info\": \"https://www.twilio.com/docs/errors/%d\", "
             "\"status\": %u}",
             code, status);
    body_append(rp, num);
}

/* 404 messages echo the requested path without its version prefix. */
void reply_cs_error(reply *rp, cs_err e, const char *raw_path) {
    if (e == CS_E_NOT_FOUND) {
        const char *p = raw_path;
        if (strncmp(p, "/v2/", 4) == 0 || strncmp(p, "/v1/", 4) == 0) p += 3;
        /* The path as sent, but with bytes outside printable ASCII
         * percent-encoded: raw bytes on the request line need not be UTF-8,
         * and the JSON reply must be. */
        static const char hex[] = "0123456789ABCDEF";
        char *msg = malloc(strlen(p) * 3 + 64);
        if (msg) {
            char *o = msg + sprintf(msg, "The requested resource ");
            for (const unsigned char *c = (const unsigned char *)p; *c; c++) {
                if (*c > 0x20 && *c < 0x7f) {
                    *o++ = (char)*c;
                } else {
                    *o++ = '%';
                    *o++ = hex[*c >> 4];
                    *o++ = hex[*c & 15];
                }
            }
            strcpy(o, " was not found");
            reply_error(rp, 404, 20404, msg);
            free(msg);
            return;
        }
    }
    reply_error(rp, (unsigned)cs_err_http_status(e), cs_err_twilio_code(e),
                cs_err_message(e));
}

static void reply_json(reply *rp, unsigned status) {
    rp->status = status;
    rp->content_type = "application/json";
}

/* Finishes a store call: an error reply, or the rendered JSON. */
static void done(reply *rp, const request *rq, cs_err e, cs_err render_e,
                 unsigned status) {
    if (e)
        reply_cs_error(rp, e, rq->path);
    else if (render_e)
        reply_cs_error(rp, render_e, rq->path);
    else
        reply_json(rp, status);
}

static cs_page_params page_params(const request *rq, cs_str *types) {
    cs_page_params q = {0};
    q.order = params_get(&rq->query, "Order");
    q.page_size = params_get(&rq->query, "PageSize");
    q.page = params_get(&rq->query, "Page");
    q.page_token = params_get(&rq->query, "PageToken");
    if (types) { /* room for MAX_TYPES + 1: one more shows there are more */
        q.types = types;
        q.n_types = params_all(&rq->query, "Type", types, MAX_TYPES + 1);
    }
    return q;
}

static int is(const request *rq, const char *m) { return !strcmp(rq->method, m); }

/* ---- services ----------------------------------------------------------- */

uint64_t store_bytes_left(server *sv) {
    size_t media = media_store_used(sv->media);
    return media < sv->cfg.max_memory ? sv->cfg.max_memory - media : 1;
}

/* The exclusive lock for a change. With --max-memory, the store's byte
 * quota becomes what the media bytes leave of it (store_bytes_left), so
 * store and media share the one budget. */
static void lock_write(server *sv) {
    cs_store_lock_exclusive(sv->store);
    if (!sv->cfg.max_memory) return;
    uint64_t left = store_bytes_left(sv);
    const cs_limits *cur = cs_store_limits(sv->store);
    if (cur->max_bytes != left) {
        cs_limits lim = *cur;
        lim.max_bytes = left;
        cs_store_set_limits(sv->store, &lim);
    }
}

static void services(server *sv, const request *rq, reply *rp) {
    cs_store *s = sv->store;
    cs_err e, r = CS_OK;
    if (is(rq, "POST")) {
        cs_service_view v;
        lock_write(sv);
        e = cs_service_create(s, params_get(&rq->form, "FriendlyName"), &v);
        if (!e) r = cs_render_service(s, &v, &rp->body);
        cs_store_unlock(s);
        done(rp, rq, e, r, 201);
    } else if (sv->directory) { /* a cluster: every shard's services */
        directory_list(sv->directory, rq, rp);
    } else {
        cs_page_params q = page_params(rq, NULL);
        cs_page pg;
        cs_store_lock_shared(s);
        e = cs_service_list(s, &q, &pg);
        if (!e) r = cs_render_page(s, &pg, &rp->body);
        cs_store_unlock(s);
        done(rp, rq, e, r, 200);
    }
}

static void service(server *sv, const request *rq, reply *rp, cs_str is_sid) {
    cs_store *s = sv->store;
    cs_err e, r = CS_OK;
    cs_service_view v;
    if (is(rq, "GET")) {
        cs_store_lock_shared(s);
        e = cs_service_fetch(s, is_sid, &v);
        if (!e) r = cs_render_service(s, &v, &rp->body);
        cs_store_unlock(s);
        done(rp, rq, e, r, 200);
    } else if (is(rq, "POST")) {
        /* WebhookFilters repeats: every value is read (the one parameter,
         * with Type, whose repeats count) */
        cs_str filters[CS_WEBHOOK_EVENTS + 1];
        cs_service_params p = {0};
        p.friendly_name = params_get(&rq->form, "FriendlyName");
        p.pre_webhook_url = params_get(&rq->form, "PreWebhookUrl");
        p.post_webhook_url = params_get(&rq->form, "PostWebhookUrl");
        p.webhook_method = params_get(&rq->form, "WebhookMethod");
        p.pre_webhook_retry_count = params_get(&rq->form, "PreWebhookRetryCount");
        p.post_webhook_retry_count =
            params_get(&rq->form, "PostWebhookRetryCount");
        size_t nf = params_count(&rq->form, "WebhookFilters");
        cs_str *fv = nf <= CS_WEBHOOK_EVENTS + 1 ? filters
                                                 : malloc(nf * sizeof *fv);
        if (!fv) {
            reply_error(rp, 500, 20500, "Out of memory");
            return;
        }
        if (nf) {
            p.webhook_filters = fv;
            p.n_webhook_filters = params_all(&rq->form, "WebhookFilters", fv, nf);
        }
        lock_write(sv);
        e = cs_service_update_with(s, is_sid, &p, &v);
        if (fv != filters) free(fv);
        if (!e) r = cs_render_service(s, &v, &rp->body);
        cs_store_unlock(s);
        done(rp, rq, e, r, 200);
    } else {
        char sid[CS_SID_BUFSZ] = "";
        lock_write(sv);
        e = cs_service_fetch(s, is_sid, &v); /* the SID in canonical form */
        if (!e) {
            memcpy(sid, v.sid, sizeof sid);
            e = cs_service_delete(s, is_sid);
        }
        cs_store_unlock(s);
        /* The store dropped the media metadata; drop the bytes too. */
        if (!e) media_store_drop_service(sv->media, sid);
        if (!e && sv->persist) persist_media_drop_service(sv->persist, sid);
        done(rp, rq, e, CS_OK, 204);
    }
}

/* ---- channels ----------------------------------------------------------- */

static cs_channel_params channel_params(const request *rq) {
    cs_channel_params p = {0};
    p.friendly_name = params_get(&rq->form, "FriendlyName");
    p.unique_name = params_get(&rq->form, "UniqueName");
    p.attributes = params_get(&rq->form, "Attributes");
    p.type = params_get(&rq->form, "Type");
    p.date_created = params_get(&rq->form, "DateCreated");
    p.date_updated = params_get(&rq->form, "DateUpdated");
    p.created_by = params_get(&rq->form, "CreatedBy");
    p.webhook = rq->webhook;
    return p;
}

static void channels(server *sv, const request *rq, reply *rp, cs_str is_sid) {
    cs_store *s = sv->store;
    cs_err e, r = CS_OK;
    if (is(rq, "POST")) {
        cs_channel_params p = channel_params(rq);
        cs_channel_view v;
        lock_write(sv);
        e = cs_channel_create(s, is_sid, &p, &v);
        if (!e) r = cs_render_channel(s, &v, &rp->body);
        cs_store_unlock(s);
        done(rp, rq, e, r, 201);
    } else {
        cs_str types[MAX_TYPES + 1];
        cs_page_params q = page_params(rq, types);
        cs_page pg;
        cs_store_lock_shared(s);
        if (q.n_types > MAX_TYPES) {
            /* Values past the ones read would be dropped silently, so the
             * request is refused; after the service lookup (404), as every
             * list parameter is checked after the addressed resource. */
            e = cs_service_fetch(s, is_sid, NULL);
            cs_store_unlock(s);
            if (e) {
                done(rp, rq, e, CS_OK, 200);
            } else {
                char msg[64];
                snprintf(msg, sizeof msg, "Type may be given at most %d times",
                         MAX_TYPES);
                reply_error(rp, 400, 20001, msg);
            }
            return;
        }
        e = cs_channel_list(s, is_sid, &q, &pg);
        if (!e) r = cs_render_page(s, &pg, &rp->body);
        cs_store_unlock(s);
        done(rp, rq, e, r, 200);
    }
}

static void channel(server *sv, const request *rq, reply *rp, cs_str is_sid,
                    cs_str ch) {
    cs_store *s = sv->store;
    cs_err e, r = CS_OK;
    cs_channel_view v;
    if (is(rq, "GET")) {
        cs_store_lock_shared(s);
        e = cs_channel_fetch(s, is_sid, ch, &v);
        if (!e) r = cs_render_channel(s, &v, &rp->body);
        cs_store_unlock(s);
        done(rp, rq, e, r, 200);
    } else if (is(rq, "POST")) {
        cs_channel_params p = channel_params(rq);
        p.type = CS_STR_ABSENT; /* fixed at creation */
        lock_write(sv);
        e = cs_channel_update(s, is_sid, ch, &p, &v);
        if (!e) r = cs_render_channel(s, &v, &rp->body);
        cs_store_unlock(s);
        done(rp, rq, e, r, 200);
    } else {
        lock_write(sv);
        e = cs_channel_delete(s, is_sid, ch, rq->webhook);
        cs_store_unlock(s);
        done(rp, rq, e, CS_OK, 204);
    }
}

/* ---- messages ----------------------------------------------------------- */

static cs_message_params message_params(const request *rq) {
    cs_message_params p = {0};
    p.from = params_get(&rq->form, "From");
    p.attributes = params_get(&rq->form, "Attributes");
    p.date_created = params_get(&rq->form, "DateCreated");
    p.date_updated = params_get(&rq->form, "DateUpdated");
    p.last_updated_by = params_get(&rq->form, "LastUpdatedBy");
    p.body = params_get(&rq->form, "Body");
    p.media_sid = params_get(&rq->form, "MediaSid");
    p.webhook = rq->webhook;
    return p;
}

static void messages(server *sv, const request *rq, reply *rp, cs_str is_sid,
                     cs_str ch) {
    cs_store *s = sv->store;
    cs_err e, r = CS_OK;
    if (is(rq, "POST")) {
        cs_message_params p = message_params(rq);
        cs_message_view v;
        lock_write(sv);
        e = cs_message_create(s, is_sid, ch, &p, &v);
        if (!e) r = cs_render_message(s, &v, &rp->body);
        cs_store_unlock(s);
        done(rp, rq, e, r, 201);
    } else {
        cs_page_params q = page_params(rq, NULL);
        cs_page pg;
        cs_store_lock_shared(s);
        e = cs_message_list(s, is_sid, ch, &q, &pg);
        if (!e) r = cs_render_page(s, &pg, &rp->body);
        cs_store_unlock(s);
        done(rp, rq, e, r, 200);
    }
}

static void message(server *sv, const request *rq, reply *rp, cs_str is_sid,
                    cs_str ch, cs_str im) {
    cs_store *s = sv->store;
    cs_err e, r = CS_OK;
    cs_message_view v;
    if (is(rq, "GET")) {
        cs_store_lock_shared(s);
        e = cs_message_fetch(s, is_sid, ch, im, &v);
        if (!e) r = cs_render_message(s, &v, &rp->body);
        cs_store_unlock(s);
        done(rp, rq, e, r, 200);
    } else if (is(rq, "POST")) {
        cs_message_params p = message_params(rq);
        p.media_sid = CS_STR_ABSENT;
        lock_write(sv);
        webhooks_set_modified_by(p.last_updated_by); /* onMessageUpdated */
        e = cs_message_update(s, is_sid, ch, im, &p, &v);
        webhooks_set_modified_by(CS_STR_ABSENT);
        if (!e) r = cs_render_message(s, &v, &rp->body);
        cs_store_unlock(s);
        done(rp, rq, e, r, 200);
    } else {
        lock_write(sv);
        e = cs_message_delete(s, is_sid, ch, im, rq->webhook);
        cs_store_unlock(s);
        done(rp, rq, e, CS_OK, 204);
    }
}

/* ---- media (the Media Content Service's paths, under /v1) --------------- */

static void media_upload(server *sv, const request *rq, reply *rp,
                         cs_str is_sid) {
    cs_store *s = sv->store;
    blob *b = NULL;
    /* uploads past --media-ttl go first: their room counts for this one */
    media_expire(sv, 1);
    int pr = media_store_prepare(sv->media, rq->body, rq->body_len, &b);
    if (pr == MEDIA_FULL) {
        reply_error(rp, 413, 50512, "Media storage of this server is full");
        return;
    }
    if (pr) {
        reply_error(rp, 500, 20500, "Out of memory");
        return;
    }
    /* --data-dir: the bytes go to a file first; the journal hook moves it
     * into place before the create is journaled. */
    if (sv->persist &&
        persist_media_stage(sv->persist, rq->body, rq->body_len)) {
        media_store_abort(sv->media, b, rq->body_len);
        reply_cs_error(rp, CS_E_JOURNAL_REFUSED, rq->path);
        return;
    }
    /* --nats: the bytes travel in the stream with the create's record */
    if (sv->replica && replica_media_stage(sv->replica, rq->body, rq->body_len)) {
        media_store_abort(sv->media, b, rq->body_len);
        reply_error(rp, 413, 20001,
                    "Media too large to replicate (one NATS message holds it)");
        return;
    }
    cs_media_view v;
    cs_err r = CS_OK, e = CS_OK;
    lock_write(sv);
    if (sv->cfg.max_memory) {
        /* --max-memory: the store's bytes and the media bytes (this
         * upload's reserved already) together */
        cs_store_stats st;
        cs_store_stats_get(s, &st);
        if (st.bytes_allocated > sv->cfg.max_memory ||
            media_store_used(sv->media) >
                sv->cfg.max_memory - st.bytes_allocated)
            e = CS_E_QUOTA_BYTES;
    }
    if (!e)
        e = cs_media_create(s, is_sid, rq->content_type,
                            params_get(&rq->query, "Filename"), rq->body_len,
                            &v);
    /* Still under the lock: v.service_sid is borrowed, and a service delete
     * (which drops the service's bytes after its own call) must not slip in
     * between the metadata and the bytes. */
    if (!e) {
        media_store_commit(sv->media, b, v.sid, v.service_sid,
                           v.date_created);
        r = cs_render_media(s, &v, &rp->body);
    }
    cs_store_unlock(s);
    if (sv->persist) persist_media_unstage(sv->persist);
    if (sv->replica) replica_media_unstage(sv->replica);
    if (e) media_store_abort(sv->media, b, rq->body_len);
    done(rp, rq, e, r, 201);
}

static void media_get(server *sv, const request *rq, reply *rp, cs_str is_sid,
                      cs_str me, int content) {
    cs_store *s = sv->store;
    cs_media_view v;
    cs_err r = CS_OK;
    char ct[256] = "";
    cs_store_lock_shared(s);
    cs_err e = cs_media_fetch(s, is_sid, me, &v);
    if (!e && !content) r = cs_render_media(s, &v, &rp->body);
    if (!e && content)
        snprintf(ct, sizeof ct, "%.*s", (int)v.content_type.len,
                 v.content_type.ptr);
    cs_store_unlock(s);
    if (e || !content) {
        done(rp, rq, e, r, 200);
        return;
    }
    /* A reference, not a copy: the reply borrows the bytes until it is
     * sent (http.c releases it), even if the item is deleted meanwhile. */
    size_t n = 0;
    char *bytes = NULL;
    blob *bl = media_store_get(sv->media, v.sid, &bytes, &n);
    if (!bl) {
        reply_cs_error(rp, CS_E_NOT_FOUND, rq->path);
        return;
    }
    cs_buf_free(&rp->body);
    rp->media = bl;
    rp->body.data = bytes;
    rp->body.len = rp->body.cap = n;
    rp->status = 200;
    memcpy(rp->ct_buf, ct, sizeof ct);
    rp->content_type = rp->ct_buf;
}

/* ---- routing ------------------------------------------------------------ */

static void method_not_allowed(reply *rp, const char *allow) {
    reply_error(rp, 405, 20004, "Method not allowed");
    rp->allow = allow; /* RFC 9110: a 405 names the allowed methods */
}

static int allowed(const request *rq, int get, int post, int del) {
    return (get && is(rq, "GET")) || (post && is(rq, "POST")) ||
           (del && is(rq, "DELETE"));
}

/* ---- test endpoints (--test-endpoints) ---------------------------------- */

/* A form field "true" or "false" (absent: dflt); -1 for anything else. */
static int form_bool(const request *rq, const char *key, int dflt) {
    cs_str v = params_get(&rq->form, key);
    if (!v.ptr) return dflt;
    if (v.len == 4 && !memcmp(v.ptr, "true", 4)) return 1;
    if (v.len == 5 && !memcmp(v.ptr, "false", 5)) return 0;
    return -1;
}

static void test_reset(server *sv, const request *rq, reply *rp) {
    int reload = form_bool(rq, "Fixture", 1);
    if (reload < 0) {
        reply_error(rp, 400, 20001, "Fixture must be true or false");
        return;
    }
    char msg[512], stats[512];
    cs_err e = fixture_reset(sv->fx, sv, reload, msg, sizeof msg);
    if (e) {
        char full[600];
        snprintf(full, sizeof full, "Reset failed, %s", msg);
        reply_error(rp, (unsigned)cs_err_http_status(e), cs_err_twilio_code(e),
                    full);
        return;
    }
    fixture_stats_json(sv->fx, sv, stats, sizeof stats);
    body_append(rp, stats);
    reply_json(rp, 200);
}

static void test_clock(server *sv, const request *rq, reply *rp) {
    char out[160];
    if (is(rq, "POST")) {
        cs_str now = params_get(&rq->form, "Now");
        cs_str step = params_get(&rq->form, "Step");
        int64_t t, st = -1;
        if (!now.ptr || cs_parse_date(now, &t)) {
            reply_error(rp, 400, 20001,
                        "Now must be an ISO 8601 date-time such as "
                        "2020-01-01T00:00:00Z");
            return;
        }
        if (step.ptr && fixture_parse_step(step.ptr, step.len, &st)) {
            reply_error(rp, 400, 20001,
                        "Step must be a number of seconds, or a number with "
                        "s, m, h or d");
            return;
        }
        fixture_set_clock(sv->fx, sv, t, st);
    }
    cs_store_lock_shared(sv->store);
    fixture_clock_json(sv->fx, out, sizeof out);
    cs_store_unlock(sv->store);
    body_append(rp, out);
    reply_json(rp, 200);
}

static void test_stats(server *sv, reply *rp) {
    char out[512];
    fixture_stats_json(sv->fx, sv, out, sizeof out);
    body_append(rp, out);
    reply_json(rp, 200);
}

static void route_test(server *sv, const request *rq, reply *rp,
                       const path *p) {
    if (p->n != 2) {
        reply_cs_error(rp, CS_E_NOT_FOUND, rq->path);
    } else if (seg_is(p, 1, "reset")) {
        if (is(rq, "POST"))
            test_reset(sv, rq, rp);
        else
            method_not_allowed(rp, "POST");
    } else if (seg_is(p, 1, "clock")) {
        if (allowed(rq, 1, 1, 0))
            test_clock(sv, rq, rp);
        else
            method_not_allowed(rp, "GET, POST");
    } else if (seg_is(p, 1, "stats")) {
        if (is(rq, "GET"))
            test_stats(sv, rp);
        else
            method_not_allowed(rp, "GET");
    } else {
        reply_cs_error(rp, CS_E_NOT_FOUND, rq->path);
    }
}

static void route_v2(server *sv, const request *rq, reply *rp, const path *p) {
    size_t n = p->n;
    if (!seg_is(p, 1, "Services") || (n >= 4 && !seg_is(p, 3, "Channels")) ||
        (n >= 6 && !seg_is(p, 5, "Messages")) || n > 7) {
        reply_cs_error(rp, CS_E_NOT_FOUND, rq->path);
        return;
    }
    int collection = n % 2 == 0; /* Services, Channels, Messages */
    if (!allowed(rq, 1, 1, !collection)) {
        method_not_allowed(rp, collection ? "GET, POST" : "GET, POST, DELETE");
        return;
    }
    switch (n) {
    case 2: services(sv, rq, rp); break;
    case 3: service(sv, rq, rp, p->seg[2]); break;
    case 4: channels(sv, rq, rp, p->seg[2]); break;
    case 5: channel(sv, rq, rp, p->seg[2], p->seg[4]); break;
    case 6: messages(sv, rq, rp, p->seg[2], p->seg[4]); break;
    default: message(sv, rq, rp, p->seg[2], p->seg[4], p->seg[6]);
    }
}

static void route_v1(server *sv, const request *rq, reply *rp, const path *p) {
    size_t n = p->n;
    if (!seg_is(p, 1, "Services") || n < 4 || !seg_is(p, 3, "Media") ||
        n > 6 || (n == 6 && !seg_is(p, 5, "Content"))) {
        reply_cs_error(rp, CS_E_NOT_FOUND, rq->path);
        return;
    }
    if (n == 4) {
        if (is(rq, "POST"))
            media_upload(sv, rq, rp, p->seg[2]);
        else
            method_not_allowed(rp, "POST");
    } else if (!is(rq, "GET")) {
        method_not_allowed(rp, "GET");
    } else {
        media_get(sv, rq, rp, p->seg[2], p->seg[4], n == 6);
    }
}

void route(server *sv, const request *rq, reply *rp) {
    media_expire(sv, 0); /* at most once a second */
    path p;
    if (path_parse(rq->path, &p)) {
        free(p.buf);
        reply_cs_error(rp, CS_E_NOT_FOUND, rq->path);
        return;
    }
    if (seg_is(&p, 0, "v2"))
        route_v2(sv, rq, rp, &p);
    else if (seg_is(&p, 0, "v1"))
        route_v1(sv, rq, rp, &p);
    else if (seg_is(&p, 0, "_chatstore") && fixture_endpoints(sv->fx))
        route_test(sv, rq, rp, &p);
    else
        reply_cs_error(rp, CS_E_NOT_FOUND, rq->path);
    free(p.buf);
}
