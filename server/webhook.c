/* Post-event webhooks: the store's observer makes deliveries, one worker
 * thread sends them with libcurl's multi interface.
 *
 * Invariants:
 * - The observer runs on the mutating thread under the store's lock: it
 *   only reads the event and the service (a read-only call), copies every
 *   parameter into one delivery, appends it under mu and wakes the worker.
 *   It never waits for the network, so a REST reply is never delayed by a
 *   receiver.
 * - Per service, at most one delivery is active (being sent, or waiting
 *   for its retry); the others wait in that service's list in commit
 *   order. A service with pending deliveries and none active is in the
 *   ready list (queued_ready) exactly once. A service entry with nothing
 *   pending, none active and not in the ready list is freed.
 * - At most cfg.queue_max deliveries are pending (not active). Appending
 *   one more drops the oldest pending one, which is the head of its
 *   service's list (both lists are in commit order). It is freed at once;
 *   the worker logs the event and service of up to DROP_LOG drops between
 *   two wake-ups and counts the rest, so memory stays bounded however
 *   fast deliveries are dropped.
 * - An active delivery belongs to the worker alone: its libcurl handle, its
 *   request and its retry timer are touched by no other thread. */
#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

#define MAX_PARAMS 20
#define MAX_ACTIVE 64 /* transfers at once (services in parallel) */
#define TIMEOUT_MS 5000u
#define RETRY_BASE_MS 1000u
#define DROP_LOG 4096 /* drops remembered for their log lines, between wake-ups */

typedef struct svcq svcq;

typedef struct delivery {
    struct delivery *gnext, *gprev; /* pending: the global list; waiting
                                       for a retry: the worker's list */
    struct delivery *snext;         /* pending: the service's list */
    svcq *svc;
    const char *event;
    int get;
    unsigned retry_max, attempts;
    char *url;    /* the configured URL, scheme and host in lower case */
    char *block;  /* the parameter values */
    webhook_param p[MAX_PARAMS];
    size_t np, retry_ix; /* p[retry_ix] is RetryCount */
    char retry_text[4];
    char sid[CS_SID_BUFSZ]; /* the service, for the log */
    double t_commit, due;
    /* the attempt in flight */
    CURL *easy;
    struct curl_slist *hdrs;
    char *body, *req_url;
    char err[CURL_ERROR_SIZE];
} delivery;

struct svcq {
    UT_hash_handle hh;
    char sid[CS_SID_BUFSZ];
    delivery *head, *tail;
    delivery *active;
    int queued_ready;
    svcq *rnext;
};

struct webhooks {
    webhook_config cfg;
    char *account_sid, *token;
    cs_store *store;
    pthread_mutex_t mu;
    pthread_t thread;
    int started;
    CURLM *multi;
    /* under mu */
    int stop;
    svcq *services;
    delivery *ghead, *gtail;
    size_t pending;
    svcq *rhead, *rtail;
    struct dropped {
        const char *event;
        char sid[CS_SID_BUFSZ];
    } dropped[DROP_LOG];
    size_t ndropped;         /* in dropped[] */
    uint64_t drops_unlogged; /* beyond it */
    webhook_stats st;
    /* the worker's own */
    CURL *pool[MAX_ACTIVE]; /* easy handles kept for the next attempts */
    size_t npool;
    delivery *waiting;
    size_t nactive; /* deliveries active: in flight or waiting */
};

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---- signing and encoding ----------------------------------------------- */

static int cmp_param(const void *a, const void *b) {
    const webhook_param *x = *(const webhook_param *const *)a;
    const webhook_param *y = *(const webhook_param *const *)b;
    return strcmp(x->name, y->name);
}

int webhook_signature(const char *token, const char *url,
                      const webhook_param *p, size_t n, char out[29]) {
    size_t total = strlen(url);
    for (size_t i = 0; i < n; i++) total += strlen(p[i].name) + p[i].len;
    char *data = malloc(total + 1);
    const webhook_param **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!data || !sorted) {
        free(data);
        free(sorted);
        return -1;
    }
    for (size_t i = 0; i < n; i++) sorted[i] = &p[i];
    qsort(sorted, n, sizeof *sorted, cmp_param);
    size_t o = strlen(url);
    memcpy(data, url, o);
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(sorted[i]->name);
        memcpy(data + o, sorted[i]->name, k);
        o += k;
        if (sorted[i]->len) memcpy(data + o, sorted[i]->val, sorted[i]->len);
        o += sorted[i]->len;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned char *r = HMAC(EVP_sha1(), token, (int)strlen(token),
                            (const unsigned char *)data, o, md, &mdlen);
    free(data);
    free(sorted);
    if (!r || mdlen != 20) return -1;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 characters + NUL */
    return 0;
}

static int grow(char **buf, size_t *len, size_t *cap, size_t extra) {
    if (*len + extra + 1 <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < *len + extra + 1) c *= 2;
    char *b = realloc(*buf, c);
    if (!b) return -1;
    *buf = b;
    *cap = c;
    return 0;
}

/* application/x-www-form-urlencoded: unreserved bytes as they are, space
 * as '+', everything else %XX. */
static int form_escape(const char *s, size_t n, char **buf, size_t *len,
                       size_t *cap) {
    static const char hex[] = "0123456789ABCDEF";
    if (grow(buf, len, cap, n * 3)) return -1;
    char *o = *buf + *len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '*') {
            *o++ = (char)c;
        } else if (c == ' ') {
            *o++ = '+';
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *len = (size_t)(o - *buf);
    (*buf)[*len] = '\0';
    return 0;
}

int webhook_form(const webhook_param *p, size_t n, char **buf, size_t *len,
                 size_t *cap) {
    for (size_t i = 0; i < n; i++) {
        if (i && (grow(buf, len, cap, 1) || ((*buf)[(*len)++] = '&', 0)))
            return -1;
        if (form_escape(p[i].name, strlen(p[i].name), buf, len, cap) ||
            grow(buf, len, cap, 1))
            return -1;
        (*buf)[(*len)++] = '=';
        if (form_escape(p[i].val, p[i].len, buf, len, cap)) return -1;
    }
    if (grow(buf, len, cap, 0)) return -1;
    (*buf)[*len] = '\0';
    return 0;
}

/* ---- the observer --------------------------------------------------------- */

static _Thread_local cs_str modified_by;

void webhooks_set_modified_by(cs_str last_updated_by) {
    modified_by = last_updated_by;
}

/* A date as webhooks carry it: YYYY-MM-DDTHH:MM:SS.000Z. */
static void wh_date(int64_t t, char out[25]) {
    char d[CS_DATE_BUFSZ];
    cs_format_date(t, d);
    memcpy(out, d, 19);
    memcpy(out + 19, ".000Z", 6);
}

typedef struct builder {
    webhook_param p[MAX_PARAMS];
    size_t n;
    char dates[3][25];
    char num[2][24];
} builder;

static void add(builder *b, const char *name, cs_str v) {
    if (!v.ptr || b->n == MAX_PARAMS) return; /* null: left out */
    b->p[b->n++] = (webhook_param){name, v.ptr, v.len};
}
static void add_c(builder *b, const char *name, const char *v) {
    add(b, name, cs_str_c(v));
}

static cs_str num_str(builder *b, int k, uint64_t v) {
    snprintf(b->num[k], sizeof b->num[k], "%llu", (unsigned long long)v);
    return cs_str_c(b->num[k]);
}

static cs_str date_str(builder *b, int k, int64_t t) {
    wh_date(t, b->dates[k]);
    return (cs_str){b->dates[k], 24};
}

/* Lower-cases the scheme and host of a URL (copied). */
static char *normal_url(cs_str u) {
    char *s = malloc(u.len + 1);
    if (!s) return NULL;
    memcpy(s, u.ptr, u.len);
    s[u.len] = '\0';
    char *h = strstr(s, "://");
    char *end = h ? h + 3 : s;
    while (*end && *end != '/' && *end != '?' && *end != '#') end++;
    int in_user = h && memchr(h + 3, '@', (size_t)(end - h - 3)) != NULL;
    char *host = in_user ? (char *)memchr(h + 3, '@', (size_t)(end - h - 3)) + 1
                         : (h ? h + 3 : s);
    for (char *c = s; c < (h ? h : s); c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    for (char *c = host; c < end; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    return s;
}

static void svc_push_ready(webhooks *w, svcq *q) {
    q->queued_ready = 1;
    q->rnext = NULL;
    if (w->rtail)
        w->rtail->rnext = q;
    else
        w->rhead = q;
    w->rtail = q;
}

static void svc_maybe_free(webhooks *w, svcq *q) {
    if (!q->head && !q->active && !q->queued_ready) {
        HASH_DEL(w->services, q);
        free(q);
    }
}

static void delivery_free(delivery *d) {
    if (!d) return;
    free(d->url);
    free(d->block);
    free(d->body);
    free(d->req_url);
    if (d->hdrs) curl_slist_free_all(d->hdrs);
    free(d);
}

/* Drops the oldest pending delivery (under mu). */
static void drop_oldest(webhooks *w) {
    delivery *d = w->ghead;
    if (!d) return;
    w->ghead = d->gnext;
    if (w->ghead)
        w->ghead->gprev = NULL;
    else
        w->gtail = NULL;
    svcq *q = d->svc;
    q->head = d->snext; /* the oldest of all is its service's oldest */
    if (!q->head) q->tail = NULL;
    w->pending--;
    w->st.dropped++;
    if (w->ndropped < DROP_LOG) {
        w->dropped[w->ndropped].event = d->event;
        memcpy(w->dropped[w->ndropped].sid, d->sid, CS_SID_BUFSZ);
        w->ndropped++;
    } else {
        w->drops_unlogged++;
    }
    delivery_free(d);
    svc_maybe_free(w, q);
}

static void enqueue(webhooks *w, delivery *d) {
    pthread_mutex_lock(&w->mu);
    if (w->pending >= w->cfg.queue_max) drop_oldest(w);
    svcq *q;
    HASH_FIND_STR(w->services, d->sid, q);
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q) {
            pthread_mutex_unlock(&w->mu);
            delivery_free(d);
            return;
        }
        memcpy(q->sid, d->sid, sizeof q->sid);
        HASH_ADD_STR(w->services, sid, q);
    }
    d->svc = q;
    d->snext = NULL;
    if (q->tail)
        q->tail->snext = d;
    else
        q->head = d;
    q->tail = d;
    d->gnext = NULL;
    d->gprev = w->gtail;
    if (w->gtail)
        w->gtail->gnext = d;
    else
        w->ghead = d;
    w->gtail = d;
    w->pending++;
    w->st.queued++;
    /* The worker needs waking only for a service it does not already work
     * on (an active delivery's end starts the next one); a drop is freed
     * with the next wake-up. */
    int wake = !q->active && !q->queued_ready;
    if (wake) svc_push_ready(w, q);
    pthread_mutex_unlock(&w->mu);
    if (wake) curl_multi_wakeup(w->multi);
}

static int has_filter(const cs_service_view *sv, cs_webhook_event e) {
    for (size_t i = 0; i < sv->n_webhook_filters; i++)
        if (sv->webhook_filters[i] == e) return 1;
    return 0;
}

static void observe(void *ctx, const cs_event *ev) {
    webhooks *w = ctx;
    if (ev->webhook != CS_WEBHOOK_TRUE) return;
    const cs_message_view *m = ev->message;
    const cs_channel_view *c = ev->channel;
    cs_webhook_event e;
    switch (ev->type) {
    case CS_EVENT_MESSAGE_CREATED:
        e = m->has_media ? CS_WEBHOOK_ON_MEDIA_MESSAGE_SENT
                         : CS_WEBHOOK_ON_MESSAGE_SENT;
        break;
    case CS_EVENT_MESSAGE_UPDATED: e = CS_WEBHOOK_ON_MESSAGE_UPDATED; break;
    case CS_EVENT_MESSAGE_DELETED: e = CS_WEBHOOK_ON_MESSAGE_REMOVED; break;
    case CS_EVENT_CHANNEL_CREATED: e = CS_WEBHOOK_ON_CHANNEL_ADDED; break;
    case CS_EVENT_CHANNEL_UPDATED: e = CS_WEBHOOK_ON_CHANNEL_UPDATED; break;
    case CS_EVENT_CHANNEL_DELETED: e = CS_WEBHOOK_ON_CHANNEL_DESTROYED; break;
    default: return;
    }
    const char *service_sid = m ? m->service_sid : c->service_sid;
    cs_service_view sv;
    if (cs_service_fetch(w->store, cs_str_c(service_sid), &sv) ||
        !sv.post_webhook_url.ptr || !has_filter(&sv, e))
        return;
    builder b;
    b.n = 0;
    add_c(&b, "EventType", cs_webhook_event_name(e));
    add_c(&b, "AccountSid", w->account_sid);
    add_c(&b, "InstanceSid", service_sid);
    if (m) {
        add_c(&b, "ChannelSid", m->channel_sid);
        add_c(&b, "MessageSid", m->sid);
        add(&b, "Index", num_str(&b, 0, (uint64_t)m->index));
        add(&b, "From", m->from);
        add(&b, "Body", m->body);
        add(&b, "Attributes", m->attributes);
        add(&b, "DateCreated", date_str(&b, 0, m->date_created));
        if (e == CS_WEBHOOK_ON_MEDIA_MESSAGE_SENT) {
            add_c(&b, "MediaSid", m->media.sid);
            add(&b, "MediaContentType", m->media.content_type);
            add(&b, "MediaFilename", m->media.filename);
            add(&b, "MediaSize", num_str(&b, 1, m->media.size));
        } else if (e == CS_WEBHOOK_ON_MESSAGE_UPDATED) {
            cs_str by = modified_by.ptr && modified_by.len ? modified_by
                                                           : cs_str_c("system");
            add(&b, "ModifiedBy", by);
            add(&b, "DateUpdated", date_str(&b, 1, m->date_updated));
        } else if (e == CS_WEBHOOK_ON_MESSAGE_REMOVED) {
            add_c(&b, "RemovedBy", "system");
            add(&b, "DateRemoved", date_str(&b, 1, (int64_t)time(NULL)));
        }
    } else {
        add_c(&b, "ChannelSid", c->sid);
        add(&b, "ChannelType",
            cs_str_c(c->type == CS_CHANNEL_PRIVATE ? "private" : "public"));
        add(&b, "FriendlyName", c->friendly_name);
        add(&b, "UniqueName", c->unique_name);
        add(&b, "Attributes", c->attributes);
        add(&b, "CreatedBy", c->created_by);
        add(&b, "DateCreated", date_str(&b, 0, c->date_created));
        if (e == CS_WEBHOOK_ON_CHANNEL_UPDATED)
            add(&b, "DateUpdated", date_str(&b, 1, c->date_updated));
        else if (e == CS_WEBHOOK_ON_CHANNEL_DESTROYED)
            add(&b, "DateDestroyed", date_str(&b, 1, (int64_t)time(NULL)));
    }
    add_c(&b, "Source", "API");
    add_c(&b, "RetryCount", "0");
    /* One copy of everything. */
    delivery *d = calloc(1, sizeof *d);
    size_t total = 0;
    for (size_t i = 0; i < b.n; i++) total += b.p[i].len + 1;
    if (!d || !(d->block = malloc(total ? total : 1)) ||
        !(d->url = normal_url(sv.post_webhook_url))) {
        delivery_free(d);
        pthread_mutex_lock(&w->mu);
        w->st.dropped++;
        pthread_mutex_unlock(&w->mu);
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < b.n; i++) {
        memcpy(d->block + o, b.p[i].val, b.p[i].len);
        d->block[o + b.p[i].len] = '\0';
        d->p[i] = (webhook_param){b.p[i].name, d->block + o, b.p[i].len};
        if (!strcmp(b.p[i].name, "RetryCount")) d->retry_ix = i;
        o += b.p[i].len + 1;
    }
    d->np = b.n;
    d->event = cs_webhook_event_name(e);
    d->get = sv.webhook_method == CS_WEBHOOK_METHOD_GET;
    d->retry_max = sv.post_webhook_retry_count;
    memcpy(d->sid, sv.sid, sizeof d->sid);
    d->t_commit = now_ms();
    enqueue(w, d);
}

/* ---- the worker ------------------------------------------------------------ */

static size_t discard(char *p, size_t size, size_t n, void *ctx) {
    (void)p;
    (void)ctx;
    return size * n;
}

static void log_line(webhooks *w, const delivery *d, const char *outcome) {
    if (!w->cfg.log) return;
    fprintf(w->cfg.log,
            "webhook %s %s %s %s -> %s attempts %u latency %.1f ms\n",
            d->event, d->sid, d->get ? "GET" : "POST", d->url, outcome,
            d->attempts, now_ms() - d->t_commit);
    fflush(w->cfg.log);
}

/* Builds and adds the next attempt; on failure the delivery ends. */
static int start_attempt(webhooks *w, delivery *d) {
    snprintf(d->retry_text, sizeof d->retry_text, "%u", d->attempts);
    d->p[d->retry_ix].val = d->retry_text;
    d->p[d->retry_ix].len = strlen(d->retry_text);
    size_t len = 0, cap = 0;
    char sig[29];
    char *form = NULL;
    if (webhook_form(d->p, d->np, &form, &len, &cap)) goto fail;
    free(d->body);
    free(d->req_url);
    d->body = d->req_url = NULL;
    if (d->get) {
        size_t ul = strlen(d->url);
        d->req_url = malloc(ul + len + 2);
        if (!d->req_url) goto fail;
        memcpy(d->req_url, d->url, ul);
        char last = ul ? d->url[ul - 1] : 0;
        size_t o = ul;
        if (last != '?' && last != '&') d->req_url[o++] = strchr(d->url, '?') ? '&' : '?';
        memcpy(d->req_url + o, form, len + 1);
        free(form);
        form = NULL;
        if (webhook_signature(w->token, d->req_url, NULL, 0, sig)) goto fail;
    } else {
        d->body = form;
        form = NULL;
        if (webhook_signature(w->token, d->url, d->p, d->np, sig)) goto fail;
    }
    char h[64];
    snprintf(h, sizeof h, "X-Twilio-Signature: %s", sig);
    if (d->hdrs) curl_slist_free_all(d->hdrs);
    d->hdrs = NULL;
    struct curl_slist *l = curl_slist_append(NULL, h);
    if (l && !d->get)
        l = curl_slist_append(l, "Content-Type: application/x-www-form-urlencoded");
    if (l) l = curl_slist_append(l, "Expect:");
    if (!l) goto fail;
    d->hdrs = l;
    CURL *e = w->npool ? w->pool[--w->npool] : curl_easy_init();
    if (!e) goto fail;
    d->easy = e;
    d->err[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, d->get ? d->req_url : d->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "chatstore-webhooks/1");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)w->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->err);
    curl_easy_setopt(e, CURLOPT_PRIVATE, d);
    if (!d->get) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        d->easy = NULL;
        goto fail;
    }
    return 0;
fail:
    free(form);
    return -1;
}

/* The service's active delivery ended: its next one may start. */
static void service_done(webhooks *w, delivery *d, int ok) {
    pthread_mutex_lock(&w->mu);
    if (ok)
        w->st.delivered++;
    else
        w->st.failed++;
    svcq *q = d->svc;
    q->active = NULL;
    if (q->head && !q->queued_ready) svc_push_ready(w, q);
    svc_maybe_free(w, q);
    pthread_mutex_unlock(&w->mu);
    w->nactive--;
    delivery_free(d);
}

static void attempt_done(webhooks *w, delivery *d, CURLcode cc) {
    long status = 0;
    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(w->multi, d->easy);
    if (w->npool < MAX_ACTIVE) { /* kept: no new handle per attempt */
        curl_easy_reset(d->easy);
        w->pool[w->npool++] = d->easy;
    } else {
        curl_easy_cleanup(d->easy);
    }
    d->easy = NULL;
    d->attempts++;
    pthread_mutex_lock(&w->mu);
    w->st.attempts++;
    pthread_mutex_unlock(&w->mu);
    int retryable = cc != CURLE_OK || status == 429 || status == 503 ||
                    status == 504;
    if (retryable && d->attempts <= d->retry_max) {
        d->due = now_ms() + (double)w->cfg.retry_base_ms *
                                (double)(1u << (d->attempts - 1));
        d->gnext = w->waiting;
        w->waiting = d;
        return;
    }
    char outcome[CURL_ERROR_SIZE + 32];
    if (cc != CURLE_OK)
        snprintf(outcome, sizeof outcome, "error (%s)",
                 d->err[0] ? d->err : curl_easy_strerror(cc));
    else
        snprintf(outcome, sizeof outcome, "%ld", status);
    log_line(w, d, outcome);
    service_done(w, d, cc == CURLE_OK && status >= 200 && status < 300);
}

static void start_or_end(webhooks *w, delivery *d) {
    if (start_attempt(w, d) == 0) return;
    log_line(w, d, "error (out of memory)");
    service_done(w, d, 0);
}

static void *worker(void *arg) {
    webhooks *w = arg;
    static struct dropped drops[DROP_LOG]; /* the worker's copy */
    for (;;) {
        delivery *start = NULL;
        size_t ndrops;
        uint64_t unlogged;
        pthread_mutex_lock(&w->mu);
        int stop = w->stop;
        while (!stop && w->nactive < MAX_ACTIVE && w->rhead) {
            svcq *q = w->rhead;
            w->rhead = q->rnext;
            if (!w->rhead) w->rtail = NULL;
            q->queued_ready = 0;
            delivery *d = q->head;
            if (!d) {
                svc_maybe_free(w, q);
                continue;
            }
            q->head = d->snext;
            if (!q->head) q->tail = NULL;
            if (d->gprev)
                d->gprev->gnext = d->gnext;
            else
                w->ghead = d->gnext;
            if (d->gnext)
                d->gnext->gprev = d->gprev;
            else
                w->gtail = d->gprev;
            w->pending--;
            q->active = d;
            w->nactive++;
            d->gnext = start;
            start = d;
        }
        ndrops = w->ndropped;
        unlogged = w->drops_unlogged;
        memcpy(drops, w->dropped, ndrops * sizeof *drops);
        w->ndropped = 0;
        w->drops_unlogged = 0;
        pthread_mutex_unlock(&w->mu);
        if (w->cfg.log && (ndrops || unlogged)) {
            for (size_t i = 0; i < ndrops; i++)
                fprintf(w->cfg.log, "webhook %s %s -> dropped (queue full)\n",
                        drops[i].event, drops[i].sid);
            if (unlogged)
                fprintf(w->cfg.log,
                        "webhooks: %llu more dropped (queue full), not logged "
                        "one by one\n",
                        (unsigned long long)unlogged);
            fflush(w->cfg.log);
        }
        if (stop) break;
        /* started in commit order: the list was built backwards, and
         * each service has one at most, so the order does not matter */
        for (delivery *d = start, *n; d; d = n) {
            n = d->gnext;
            d->gnext = NULL;
            start_or_end(w, d);
        }
        double now = now_ms(), next = now + 1000;
        for (delivery **pp = &w->waiting; *pp;) {
            delivery *d = *pp;
            if (d->due <= now) {
                *pp = d->gnext;
                d->gnext = NULL;
                start_or_end(w, d);
            } else {
                if (d->due < next) next = d->due;
                pp = &d->gnext;
            }
        }
        int running = 0;
        curl_multi_perform(w->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(w->multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            delivery *d = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&d);
            attempt_done(w, d, msg->data.result);
        }
        int wait = (int)(next - now_ms());
        if (wait < 0) wait = 0;
        if (wait > 1000) wait = 1000;
        /* a service whose delivery just ended may start its next one now */
        pthread_mutex_lock(&w->mu);
        if (w->rhead && w->nactive < MAX_ACTIVE) wait = 0;
        pthread_mutex_unlock(&w->mu);
        curl_multi_poll(w->multi, NULL, 0, wait, NULL);
    }
    return NULL;
}

webhooks *webhooks_new(const webhook_config *cfg) {
    static int curl_ok; /* at start-up, before any other thread */
    webhooks *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->cfg = *cfg;
    if (!w->cfg.queue_max) w->cfg.queue_max = WEBHOOK_QUEUE_DEFAULT;
    if (!w->cfg.timeout_ms) w->cfg.timeout_ms = TIMEOUT_MS;
    if (!w->cfg.retry_base_ms) w->cfg.retry_base_ms = RETRY_BASE_MS;
    if (!curl_ok) curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    w->account_sid = strdup(cfg->account_sid);
    w->token = strdup(cfg->auth_token);
    w->multi = curl_ok ? curl_multi_init() : NULL;
    if (!w->account_sid || !w->token || !w->multi ||
        pthread_mutex_init(&w->mu, NULL)) {
        fprintf(stderr, "chatstore-server: webhooks: cannot start libcurl\n");
        if (w->multi) curl_multi_cleanup(w->multi);
        free(w->account_sid);
        free(w->token);
        free(w);
        return NULL;
    }
    curl_multi_setopt(w->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 16L);
    if (pthread_create(&w->thread, NULL, worker, w)) {
        fprintf(stderr, "chatstore-server: webhooks: %s\n", strerror(errno));
        pthread_mutex_destroy(&w->mu);
        curl_multi_cleanup(w->multi);
        free(w->account_sid);
        free(w->token);
        free(w);
        return NULL;
    }
    w->started = 1;
    return w;
}

int webhooks_attach_locked(webhooks *w, cs_store *s) {
    w->store = s;
    return cs_observer_add(s, observe, w, NULL) ? -1 : 0;
}

int webhooks_attach(webhooks *w, cs_store *s) {
    if (cs_store_lock_exclusive(s)) return -1;
    int rc = webhooks_attach_locked(w, s);
    cs_store_unlock(s);
    return rc;
}

void webhooks_stats(webhooks *w, webhook_stats *out) {
    pthread_mutex_lock(&w->mu);
    *out = w->st;
    pthread_mutex_unlock(&w->mu);
}

void webhooks_free(webhooks *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_mutex_unlock(&w->mu);
    curl_multi_wakeup(w->multi);
    if (w->started) pthread_join(w->thread, NULL);
    /* What is left: in flight, waiting, pending, dropped. */
    svcq *q, *tmp;
    HASH_ITER(hh, w->services, q, tmp) {
        if (q->active && q->active->easy) { /* in flight (else waiting) */
            curl_multi_remove_handle(w->multi, q->active->easy);
            curl_easy_cleanup(q->active->easy);
            q->active->easy = NULL;
            delivery_free(q->active);
        }
    }
    for (delivery *d = w->waiting, *n; d; d = n) {
        n = d->gnext;
        delivery_free(d);
    }
    for (delivery *d = w->ghead, *n; d; d = n) {
        n = d->gnext;
        delivery_free(d);
    }
    HASH_ITER(hh, w->services, q, tmp) {
        HASH_DEL(w->services, q);
        free(q);
    }
    if (w->cfg.log) {
        webhook_stats s = w->st;
        fprintf(w->cfg.log,
                "webhooks: %llu queued, %llu delivered, %llu failed, %llu "
                "dropped, %llu attempts, %zu pending at stop\n",
                (unsigned long long)s.queued, (unsigned long long)s.delivered,
                (unsigned long long)s.failed, (unsigned long long)s.dropped,
                (unsigned long long)s.attempts, w->pending + w->nactive);
        fflush(w->cfg.log);
    }
    for (size_t i = 0; i < w->npool; i++) curl_easy_cleanup(w->pool[i]);
    curl_multi_cleanup(w->multi);
    pthread_mutex_destroy(&w->mu);
    free(w->account_sid);
    free(w->token);
    free(w);
}
