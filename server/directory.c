/* The cluster-wide service directory.
 *
 * Services are the unit of sharding, but GET /v2/Services lists them all.
 * Each shard's writer publishes what happens to its services into one
 * JetStream stream (CHATSTORE_DIR, subject chatstore.dir); every server
 * consumes that stream from its first message into a local table and
 * answers the list from it, with the store's page and token contract.
 *
 * Messages: headers Chatstore-Op (put | del | clear), Chatstore-Shard
 * (decimal 0..255) and, for put and del, Chatstore-Sid; a put's body is the
 * service's JSON as its shard's store rendered it. A message that does not
 * have that form is skipped (counted in bad), never applied in part.
 *
 * Invariants:
 * - applied is the stream sequence of the last message taken from the
 *   stream; messages are applied once each, in stream order, and applied
 *   only grows. The table is the fold of messages 1..applied: put adds a
 *   SID not present (its creation sequence = that message's sequence) or
 *   replaces the JSON of one present in place, keeping its position; del
 *   removes the SID; clear removes every entry of the shard.
 * - order[0..n) holds every entry exactly once, sorted by strictly
 *   increasing creation sequence; slots[] (open addressing, linear probing,
 *   at most half full) maps each entry's SID to it. Both change together
 *   under mu, and a message that cannot be applied for lack of memory is
 *   retried later, not skipped: the table never diverges from the stream.
 * - Page tokens are "PT" + A (next) or B (previous) + 16 hex digits of a
 *   creation sequence + 16 hex digits of a MAC keyed with the cluster's
 *   dir.key (HMAC-SHA256 over a fixed label, the letter and the bound), so
 *   every server of a cluster accepts the tokens of every other, and a
 *   token of a single store (or an edited one) is refused.
 * - Publishing touches neither the table nor mu: what a server lists comes
 *   from the stream only, its own writes included. A list first asks the
 *   stream for its last sequence and waits (at most DIRECTORY_WAIT_MS)
 *   until applied reaches it.
 * - The consumer thread is the only writer of the table; it runs from
 *   directory_open to directory_close, which joins it before freeing. */
#include "directory.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define HDR_OP "Chatstore-Op"
#define HDR_SID "Chatstore-Sid"
#define HDR_SHARD "Chatstore-Shard"
#define TOKEN_LEN 35
#define SID_LEN 34
#define PAGE_SIZE_DEFAULT 50
#define PUBLISH_TRIES 5
#define PUBLISH_WAIT_MS 5000
#define MAC_LABEL "chatstore directory: services"

typedef struct entry {
    char sid[SID_LEN + 1];
    unsigned shard;
    uint64_t seq; /* creation: the stream sequence of its first put */
    char *json;
    size_t len;
} entry;

struct directory {
    jsCtx *js;
    char *base_url;
    unsigned char key[16]; /* dir.key */
    /* publishing: Nats-Msg-Id = nonce + "-" + counter */
    char nonce[33];
    pthread_mutex_t pub_mu;
    uint64_t published;
    /* the table */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* applied moved */
    entry **order;
    size_t n, cap;
    entry **slots; /* power of two */
    size_t nslots;
    uint64_t applied;
    uint64_t bad; /* messages skipped as malformed */
    /* the consumer */
    natsSubscription *sub;
    pthread_t thread;
    int stop; /* under mu */
};

static const char HEX[] = "0123456789abcdef";

/* ---- SIDs and the hash ------------------------------------------------- */

static int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "IS" + 32 lower-case hex digits, as the stores render service SIDs. */
static int sid_ok(const char *s) {
    if (!s || strlen(s) != SID_LEN || s[0] != 'I' || s[1] != 'S') return 0;
    for (size_t i = 2; i < SID_LEN; i++)
        if (hex_val(s[i]) < 0) return 0;
    return 1;
}

static size_t sid_hash(const char *s) {
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (size_t i = 0; i < SID_LEN; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return (size_t)(h ^ h >> 29);
}

static size_t slot_of(const directory *d, const char *sid) {
    size_t m = d->nslots - 1, i = sid_hash(sid) & m;
    while (d->slots[i] && memcmp(d->slots[i]->sid, sid, SID_LEN) != 0)
        i = (i + 1) & m;
    return i;
}

static entry *find(const directory *d, const char *sid) {
    return d->nslots ? d->slots[slot_of(d, sid)] : NULL;
}

/* Room for one more entry in both structures; -1 out of memory (nothing
 * changed). */
static int reserve(directory *d) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        entry **o = realloc(d->order, cap * sizeof *o);
        if (!o) return -1;
        d->order = o;
        d->cap = cap;
    }
    if ((d->n + 1) * 2 > d->nslots) {
        size_t ns = d->nslots ? d->nslots * 2 : 128;
        entry **s = calloc(ns, sizeof *s);
        if (!s) return -1;
        entry **old = d->slots;
        size_t on = d->nslots;
        d->slots = s;
        d->nslots = ns;
        for (size_t i = 0; i < on; i++)
            if (old[i]) d->slots[slot_of(d, old[i]->sid)] = old[i];
        free(old);
    }
    return 0;
}

/* Removes e's slot, shifting later members of its probe run back. */
static void slot_remove(directory *d, const entry *e) {
    size_t m = d->nslots - 1, i = slot_of(d, e->sid);
    d->slots[i] = NULL;
    for (size_t j = (i + 1) & m; d->slots[j]; j = (j + 1) & m) {
        size_t h = sid_hash(d->slots[j]->sid) & m;
        /* j's entry may move to i when its home h is not in (i, j] */
        if (i <= j ? (h <= i || h > j) : (h <= i && h > j)) {
            d->slots[i] = d->slots[j];
            d->slots[j] = NULL;
            i = j;
        }
    }
}

/* First index of order with seq > bound. */
static size_t upper(const directory *d, int64_t bound) {
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((int64_t)d->order[mid]->seq <= bound)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- applying the stream ------------------------------------------------ */

enum { OP_PUT, OP_DEL, OP_CLEAR };

/* 0 applied (or skipped as malformed), -1 out of memory: try again. */
static int apply(directory *d, natsMsg *m, uint64_t seq) {
    const char *op = NULL, *sid = NULL, *shard_s = NULL;
    natsMsgHeader_Get(m, HDR_OP, &op);
    natsMsgHeader_Get(m, HDR_SID, &sid);
    natsMsgHeader_Get(m, HDR_SHARD, &shard_s);
    int kind = !op                      ? -1
               : !strcmp(op, "put")     ? OP_PUT
               : !strcmp(op, "del")     ? OP_DEL
               : !strcmp(op, "clear")   ? OP_CLEAR
                                        : -1;
    unsigned shard = 0;
    int ok = kind >= 0 && shard_s && *shard_s && strlen(shard_s) <= 3;
    for (const char *p = shard_s; ok && *p; p++) {
        if (*p < '0' || *p > '9') ok = 0;
        else shard = shard * 10 + (unsigned)(*p - '0');
    }
    if (ok && (shard > 255 || (kind != OP_CLEAR && !sid_ok(sid)))) ok = 0;
    const char *body = natsMsg_GetData(m);
    int blen = natsMsg_GetDataLength(m);
    if (ok && kind == OP_PUT && (!body || blen <= 0)) ok = 0;
    if (!ok) {
        d->bad++;
        return 0;
    }
    if (kind == OP_PUT) {
        char *json = malloc((size_t)blen);
        if (!json) return -1;
        memcpy(json, body, (size_t)blen);
        entry *e = find(d, sid);
        if (e) { /* an update: same place, new JSON */
            free(e->json);
            e->json = json;
            e->len = (size_t)blen;
            return 0;
        }
        if (!(e = malloc(sizeof *e)) || reserve(d)) {
            free(e);
            free(json);
            return -1;
        }
        memcpy(e->sid, sid, SID_LEN + 1);
        e->shard = shard;
        e->seq = seq;
        e->json = json;
        e->len = (size_t)blen;
        d->order[d->n++] = e; /* seq grows: the order stays sorted */
        d->slots[slot_of(d, sid)] = e;
    } else if (kind == OP_DEL) {
        entry *e = find(d, sid);
        if (!e) return 0;
        size_t i = upper(d, (int64_t)e->seq) - 1;
        memmove(d->order + i, d->order + i + 1, (d->n - i - 1) * sizeof *d->order);
        d->n--;
        slot_remove(d, e);
        free(e->json);
        free(e);
    } else {
        size_t k = 0;
        for (size_t i = 0; i < d->n; i++) {
            entry *e = d->order[i];
            if (e->shard == shard) {
                slot_remove(d, e);
                free(e->json);
                free(e);
            } else {
                d->order[k++] = e;
            }
        }
        d->n = k;
    }
    return 0;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The stream's last sequence, or 0 when it cannot be read. */
static uint64_t stream_last(directory *d) {
    jsStreamInfo *si = NULL;
    uint64_t last = 0;
    if (js_GetStreamInfo(&si, d->js, DIRECTORY_STREAM, NULL, NULL) == NATS_OK) {
        last = si->State.LastSeq;
        jsStreamInfo_Destroy(si);
    }
    return last;
}

/* A new ordered consumer from stream sequence seq, replacing the current
 * one (only the consumer thread reads d->sub). */
static void resubscribe(directory *d, uint64_t seq) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = DIRECTORY_STREAM;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = seq;
    natsSubscription *sub = NULL;
    if (js_SubscribeSync(&sub, d->js, DIRECTORY_SUBJECT, NULL, &so, NULL) != NATS_OK)
        return;
    natsSubscription_Destroy(d->sub);
    d->sub = sub;
}

static int64_t mono_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *consume(void *arg) {
    directory *d = arg;
    natsMsg *held = NULL; /* a message waiting for memory */
    int64_t last_msg = mono_ms(), last_check = last_msg;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        int stop = d->stop;
        uint64_t applied = d->applied;
        pthread_mutex_unlock(&d->mu);
        if (stop) break;
        natsMsg *m = held;
        held = NULL;
        if (!m) {
            natsStatus s = natsSubscription_NextMsg(&m, d->sub, 100);
            if (s != NATS_OK) {
                /* Nothing for a second while the stream has more (the
                 * NATS server the consumer lived on went away): a new
                 * consumer from the next message. */
                int64_t now = mono_ms();
                if (now - last_msg > 1000 && now - last_check > 1000) {
                    last_check = now;
                    if (stream_last(d) > applied) resubscribe(d, applied + 1);
                }
                if (s != NATS_TIMEOUT) sleep_ms(50);
                continue;
            }
            last_msg = mono_ms();
        }
        jsMsgMetaData *meta = NULL;
        if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
            natsMsg_Destroy(m); /* not a stream message */
            continue;
        }
        uint64_t seq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
        pthread_mutex_lock(&d->mu);
        int rc = 0;
        if (seq > d->applied) {
            rc = apply(d, m, seq);
            if (!rc) {
                d->applied = seq;
                pthread_cond_broadcast(&d->cv);
            }
        }
        pthread_mutex_unlock(&d->mu);
        if (rc) {
            held = m;
            sleep_ms(10);
        } else {
            natsMsg_Destroy(m);
        }
    }
    natsMsg_Destroy(held);
    return NULL;
}

/* ---- opening ------------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *what, natsStatus s,
                jsErrCode jerr) {
    if (jerr)
        snprintf(err, errlen, "%s: %s (JetStream error %d)", what,
                 natsStatus_GetText(s), (int)jerr);
    else
        snprintf(err, errlen, "%s: %s", what, natsStatus_GetText(s));
    return -1;
}

static int open_stream(jsCtx *js, unsigned replicas, char *err, size_t errlen) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, DIRECTORY_STREAM, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return 0;
    }
    if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
        return fail(err, errlen, "reading stream " DIRECTORY_STREAM, s, jerr);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {DIRECTORY_SUBJECT};
    sc.Name = DIRECTORY_STREAM;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = (int64_t)replicas;
    jerr = 0;
    s = js_AddStream(&si, js, &sc, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return 0;
    }
    /* another server may have created it meanwhile */
    natsStatus s2 = js_GetStreamInfo(&si, js, DIRECTORY_STREAM, NULL, NULL);
    if (s2 == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return 0;
    }
    return fail(err, errlen, "creating stream " DIRECTORY_STREAM, s, jerr);
}

/* dir.key: read it, or create it when this server comes first. */
static int open_key(directory *d, unsigned replicas, char *err, size_t errlen) {
    kvStore *bucket = NULL;
    natsStatus s = js_KeyValue(&bucket, d->js, DIRECTORY_BUCKET);
    if (s != NATS_OK) {
        kvConfig kc;
        kvConfig_Init(&kc);
        kc.Bucket = DIRECTORY_BUCKET;
        kc.Replicas = (int)replicas;
        kc.StorageType = js_FileStorage;
        s = js_CreateKeyValue(&bucket, d->js, &kc);
        if (s != NATS_OK && js_KeyValue(&bucket, d->js, DIRECTORY_BUCKET) != NATS_OK)
            return fail(err, errlen, "opening KV bucket " DIRECTORY_BUCKET, s, 0);
    }
    kvEntry *e = NULL;
    /* A bucket just created with several replicas may still be electing
     * its leader: read, or create when absent, for up to 10 s. */
    for (int attempt = 0; attempt < 50; attempt++) {
        s = kvStore_Get(&e, bucket, DIRECTORY_KEY);
        if (s == NATS_OK) break;
        if (s == NATS_NOT_FOUND) {
            unsigned char raw[16];
            char hex[33];
            if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
                kvStore_Destroy(bucket);
                snprintf(err, errlen, "getrandom: %s", strerror(errno));
                return -1;
            }
            for (int i = 0; i < 16; i++) {
                hex[2 * i] = HEX[raw[i] >> 4];
                hex[2 * i + 1] = HEX[raw[i] & 15];
            }
            hex[32] = '\0';
            /* fails when another server created it first: then read theirs */
            kvStore_CreateString(NULL, bucket, DIRECTORY_KEY, hex);
            s = kvStore_Get(&e, bucket, DIRECTORY_KEY);
            if (s == NATS_OK) break;
        }
        sleep_ms(200);
    }
    if (s != NATS_OK) {
        kvStore_Destroy(bucket);
        return fail(err, errlen, "reading " DIRECTORY_BUCKET " " DIRECTORY_KEY, s, 0);
    }
    const char *v = kvEntry_Value(e);
    int len = kvEntry_ValueLen(e);
    int ok = v && len == 32;
    for (int i = 0; ok && i < 16; i++) {
        int hi = hex_val(v[2 * i]), lo = hex_val(v[2 * i + 1]);
        if (hi < 0 || lo < 0) ok = 0;
        else d->key[i] = (unsigned char)(hi << 4 | lo);
    }
    kvEntry_Destroy(e);
    kvStore_Destroy(bucket);
    if (!ok) {
        snprintf(err, errlen, DIRECTORY_BUCKET " " DIRECTORY_KEY
                 " is not 32 lower-case hex digits");
        return -1;
    }
    return 0;
}

directory *directory_open(jsCtx *js, unsigned replicas, const char *base_url,
                          char *err, size_t errlen) {
    if (!js || !base_url || replicas < 1 || replicas > 5) {
        snprintf(err, errlen, "directory_open: bad arguments");
        return NULL;
    }
    directory *d = calloc(1, sizeof *d);
    if (!d || !(d->base_url = strdup(base_url))) {
        free(d);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->js = js;
    unsigned char raw[16];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        snprintf(err, errlen, "getrandom: %s", strerror(errno));
        goto fail_mem;
    }
    for (int i = 0; i < 16; i++) {
        d->nonce[2 * i] = HEX[raw[i] >> 4];
        d->nonce[2 * i + 1] = HEX[raw[i] & 15];
    }
    if (open_stream(js, replicas, err, errlen) || open_key(d, replicas, err, errlen))
        goto fail_mem;
    pthread_mutex_init(&d->pub_mu, NULL);
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = DIRECTORY_STREAM;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    jsErrCode jerr = 0;
    natsStatus s = js_SubscribeSync(&d->sub, js, DIRECTORY_SUBJECT, NULL, &so, &jerr);
    if (s != NATS_OK) {
        fail(err, errlen, "consuming stream " DIRECTORY_STREAM, s, jerr);
        goto fail_sync;
    }
    int rc = pthread_create(&d->thread, NULL, consume, d);
    if (rc) {
        snprintf(err, errlen, "pthread_create: %s", strerror(rc));
        natsSubscription_Unsubscribe(d->sub);
        natsSubscription_Destroy(d->sub);
        goto fail_sync;
    }
    return d;
fail_sync:
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->pub_mu);
fail_mem:
    free(d->base_url);
    free(d);
    return NULL;
}

void directory_close(directory *d) {
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    natsSubscription_Unsubscribe(d->sub);
    natsSubscription_Destroy(d->sub);
    for (size_t i = 0; i < d->n; i++) {
        free(d->order[i]->json);
        free(d->order[i]);
    }
    free(d->order);
    free(d->slots);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->pub_mu);
    free(d->base_url);
    free(d);
}

size_t directory_count(directory *d) {
    pthread_mutex_lock(&d->mu);
    size_t n = d->n;
    pthread_mutex_unlock(&d->mu);
    return n;
}

uint64_t directory_applied(directory *d) {
    pthread_mutex_lock(&d->mu);
    uint64_t a = d->applied;
    pthread_mutex_unlock(&d->mu);
    return a;
}

/* ---- publishing ---------------------------------------------------------- */

static int publish(directory *d, const char *op, unsigned shard,
                   const char *sid, const char *json, size_t n) {
    if (!d || shard > 255 || (sid && !sid_ok(sid)) || n > INT32_MAX)
        return -1;
    char id[64], shard_s[4];
    pthread_mutex_lock(&d->pub_mu);
    uint64_t k = ++d->published;
    pthread_mutex_unlock(&d->pub_mu);
    snprintf(id, sizeof id, "%s-%llu", d->nonce, (unsigned long long)k);
    snprintf(shard_s, sizeof shard_s, "%u", shard);
    for (int t = 0; t < PUBLISH_TRIES; t++) {
        natsMsg *m = NULL;
        natsStatus s = natsMsg_Create(&m, DIRECTORY_SUBJECT, NULL, json, (int)n);
        if (s == NATS_OK) s = natsMsgHeader_Set(m, HDR_OP, op);
        if (s == NATS_OK) s = natsMsgHeader_Set(m, HDR_SHARD, shard_s);
        if (s == NATS_OK && sid) s = natsMsgHeader_Set(m, HDR_SID, sid);
        if (s != NATS_OK) {
            natsMsg_Destroy(m);
            return -1;
        }
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id;
        po.ExpectStream = DIRECTORY_STREAM;
        po.MaxWait = PUBLISH_WAIT_MS;
        jsErrCode jerr = 0;
        s = js_PublishMsg(NULL, d->js, m, &po, &jerr);
        natsMsg_Destroy(m);
        if (s == NATS_OK) return 0;
        /* Only an unanswered publish may have been stored: the same id
         * again is then dropped as a duplicate by the stream. */
        if (s != NATS_TIMEOUT && s != NATS_NO_RESPONDERS) return -1;
        sleep_ms(100L << t);
    }
    return -1;
}

int directory_put(directory *d, unsigned shard, const char *sid,
                  const char *json, size_t n) {
    if (!sid || !json || !n) return -1;
    return publish(d, "put", shard, sid, json, n);
}

int directory_del(directory *d, unsigned shard, const char *sid) {
    if (!sid) return -1;
    return publish(d, "del", shard, sid, NULL, 0);
}

int directory_clear(directory *d, unsigned shard) {
    return publish(d, "clear", shard, NULL, NULL, 0);
}

/* ---- tokens ------------------------------------------------------------- */

enum { K_NEXT = 0, K_PREV = 1 };

static uint64_t token_mac(const directory *d, char letter, int64_t bound) {
    unsigned char msg[sizeof MAC_LABEL + 9], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    uint64_t b = (uint64_t)bound;
    memcpy(msg, MAC_LABEL, sizeof MAC_LABEL); /* with its NUL */
    msg[sizeof MAC_LABEL] = (unsigned char)letter;
    for (int i = 0; i < 8; i++) msg[sizeof MAC_LABEL + 1 + i] = (unsigned char)(b >> (8 * i));
    if (!HMAC(EVP_sha256(), d->key, sizeof d->key, msg, sizeof msg, md, &mdlen) ||
        mdlen < 8)
        return 0; /* never in practice; a zero MAC matches no real token */
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | md[i];
    return v;
}

static void put_hex64(char *out, uint64_t v) {
    for (int i = 15; i >= 0; i--, v >>= 4) out[i] = HEX[v & 15];
}

static int get_hex64(const char *p, uint64_t *out) {
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        int x = hex_val(p[i]);
        if (x < 0) return 0;
        v = v << 4 | (unsigned)x;
    }
    *out = v;
    return 1;
}

static void token_make(const directory *d, int kind, int64_t bound,
                       char out[TOKEN_LEN + 1]) {
    char letter = kind == K_NEXT ? 'A' : 'B';
    out[0] = 'P';
    out[1] = 'T';
    out[2] = letter;
    put_hex64(out + 3, (uint64_t)bound);
    put_hex64(out + 19, token_mac(d, letter, bound));
    out[TOKEN_LEN] = '\0';
}

static int token_parse(const directory *d, cs_str t, int *kind, int64_t *bound) {
    uint64_t b, mac;
    if (t.len != TOKEN_LEN || t.ptr[0] != 'P' || t.ptr[1] != 'T' ||
        (t.ptr[2] != 'A' && t.ptr[2] != 'B') || !get_hex64(t.ptr + 3, &b) ||
        !get_hex64(t.ptr + 19, &mac) || token_mac(d, t.ptr[2], (int64_t)b) != mac)
        return -1;
    *kind = t.ptr[2] == 'A' ? K_NEXT : K_PREV;
    *bound = (int64_t)b;
    return 0;
}

/* ---- listing -------------------------------------------------------------- */

/* Decimal digits only; *big when the value exceeds max (as the store). */
static int parse_decimal(cs_str v, uint64_t max, uint64_t *out, int *big) {
    uint64_t x = 0;
    *big = 0;
    if (!v.len) return 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned dg = (unsigned char)v.ptr[i] - '0';
        if (dg > 9) return 0;
        if (!*big && x > (max - dg) / 10) *big = 1;
        if (!*big) x = x * 10 + dg;
    }
    *out = *big ? max : x;
    return 1;
}

typedef struct out {
    cs_buf *b;
    int nomem;
} out;

static void w(out *o, const char *s, size_t n) {
    cs_buf *b = o->b;
    if (o->nomem) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            o->nomem = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void ws(out *o, const char *s) { w(o, s, strlen(s)); }

static void w_u64(out *o, uint64_t v) {
    char t[24];
    ws(o, (snprintf(t, sizeof t, "%llu", (unsigned long long)v), t));
}

typedef struct page {
    uint32_t size;
    uint64_t page;
    char token[TOKEN_LEN + 1], next[TOKEN_LEN + 1], prev[TOKEN_LEN + 1];
} page;

/* A page URL as the store writes a service list's: PageSize, Page, then
 * PageToken (services take no filter, and Order never shows). */
static void w_url(out *o, const directory *d, const page *pg, uint64_t n,
                  const char *token) {
    ws(o, "\"");
    ws(o, d->base_url);
    ws(o, "/v2/Services?PageSize=");
    w_u64(o, pg->size);
    ws(o, "&Page=");
    w_u64(o, n);
    if (token && token[0]) {
        ws(o, "&PageToken=");
        ws(o, token);
    }
    ws(o, "\"");
}

static int64_t sat_add(int64_t a, int64_t x) {
    if (x > 0 && a > INT64_MAX - x) return INT64_MAX;
    if (x < 0 && a < INT64_MIN - x) return INT64_MIN;
    return a + x;
}

/* Asks the stream for its last sequence, then locks the table and waits
 * (bounded) until it holds that much: a server lists what any server wrote
 * before the request. Returns with mu held. */
static void lock_caught_up(directory *d) {
    jsStreamInfo *si = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = DIRECTORY_WAIT_MS;
    uint64_t last = 0;
    if (js_GetStreamInfo(&si, d->js, DIRECTORY_STREAM, &jo, NULL) == NATS_OK) {
        last = si->State.LastSeq;
        jsStreamInfo_Destroy(si);
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += DIRECTORY_WAIT_MS / 1000;
    until.tv_nsec += (DIRECTORY_WAIT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->mu);
    while (d->applied < last &&
           pthread_cond_timedwait(&d->cv, &d->mu, &until) != ETIMEDOUT) {
    }
}

void directory_each(directory *d, unsigned shard,
                    void (*fn)(void *ctx, const char *sid, const char *json,
                               size_t n),
                    void *ctx) {
    lock_caught_up(d);
    for (size_t i = 0; i < d->n; i++)
        if (d->order[i]->shard == shard)
            fn(ctx, d->order[i]->sid, d->order[i]->json, d->order[i]->len);
    pthread_mutex_unlock(&d->mu);
}

void directory_list(directory *d, const request *rq, reply *rp) {
    static const cs_limits lim = CS_LIMITS_DEFAULT;
    cs_str ps = params_get(&rq->query, "PageSize");
    cs_str pn = params_get(&rq->query, "Page");
    cs_str pt = params_get(&rq->query, "PageToken");
    page pg = {PAGE_SIZE_DEFAULT, 0, "", "", ""};
    uint64_t v;
    int big;
    /* the store's checks, in its order */
    if (ps.ptr) {
        if (!parse_decimal(ps, UINT32_MAX, &v, &big) || v == 0) {
            reply_cs_error(rp, CS_E_BAD_PAGE_SIZE, rq->path);
            return;
        }
        pg.size = (uint32_t)v;
    }
    if (pg.size > lim.page_size_max) pg.size = lim.page_size_max;
    if (pn.ptr) {
        if (!parse_decimal(pn, CS_PAGE_MAX, &v, &big) || big) {
            reply_cs_error(rp, CS_E_BAD_PAGE, rq->path);
            return;
        }
        pg.page = v;
    }
    int kind = K_NEXT;
    int64_t bound = -1;
    if (pt.ptr) {
        if (token_parse(d, pt, &kind, &bound)) {
            reply_cs_error(rp, CS_E_BAD_PAGE_TOKEN, rq->path);
            return;
        }
        memcpy(pg.token, pt.ptr, TOKEN_LEN);
        pg.token[TOKEN_LEN] = '\0';
    }

    lock_caught_up(d);
    /* The page is order[first, first + count): a next page starts just
     * past its bound, a previous page ends just before it. */
    size_t at = upper(d, bound), first, count;
    if (kind == K_NEXT) {
        first = at;
        count = d->n - at < pg.size ? d->n - at : pg.size;
    } else {
        size_t below = upper(d, sat_add(bound, -1)); /* keys < bound */
        count = below < pg.size ? below : pg.size;
        first = below - count;
    }
    int64_t next_bound, prev_bound;
    if (count) {
        prev_bound = (int64_t)d->order[first]->seq;
        next_bound = (int64_t)d->order[first + count - 1]->seq;
    } else {
        next_bound = kind == K_NEXT ? bound : sat_add(bound, -1);
        prev_bound = kind == K_PREV ? bound : sat_add(bound, 1);
    }
    if (upper(d, next_bound) < d->n) token_make(d, K_NEXT, next_bound, pg.next);
    if (pg.page > 0 && pg.token[0]) token_make(d, K_PREV, prev_bound, pg.prev);

    cs_buf_reset(&rp->body);
    out o = {&rp->body, 0};
    ws(&o, "{\"services\": [");
    for (size_t i = 0; i < count; i++) {
        if (i) ws(&o, ", ");
        w(&o, d->order[first + i]->json, d->order[first + i]->len);
    }
    pthread_mutex_unlock(&d->mu);
    ws(&o, "], \"meta\": {\"page\": ");
    w_u64(&o, pg.page);
    ws(&o, ", \"page_size\": ");
    w_u64(&o, pg.size);
    ws(&o, ", \"first_page_url\": ");
    w_url(&o, d, &pg, 0, NULL);
    ws(&o, ", \"previous_page_url\": ");
    if (pg.prev[0])
        w_url(&o, d, &pg, pg.page - 1, pg.prev);
    else
        ws(&o, "null");
    ws(&o, ", \"url\": ");
    w_url(&o, d, &pg, pg.page, pg.token);
    ws(&o, ", \"next_page_url\": ");
    if (pg.next[0])
        w_url(&o, d, &pg, pg.page < CS_PAGE_MAX ? pg.page + 1 : pg.page, pg.next);
    else
        ws(&o, "null");
    ws(&o, ", \"key\": \"services\"}}");
    if (o.nomem) {
        reply_cs_error(rp, CS_E_NOMEM, rq->path);
        return;
    }
    rp->status = 200;
    rp->content_type = "application/json";
}
