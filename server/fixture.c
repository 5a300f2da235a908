/* chatstore-server as a test fixture: a seeded store (--seed), a fixed or
 * stepping clock (--clock), data loaded from a JSON file (--fixture) and
 * the test endpoints' operations (--test-endpoints: reset, clock, stats;
 * their routes are in routes.c).
 *
 * Invariants:
 * - The store's clock hook is fx_clock. It reads the fixed clock (now,
 *   step, fixed: atomics) or the real time, or the loader's override; the
 *   store calls it only under its exclusive lock, and every change of the
 *   clock is made under that lock too, so one call never sees two times.
 * - The fixed clock steps once per committed change of the store (the
 *   observer on_change), never while the loader runs (loading, set and read
 *   under the exclusive lock): data from the fixture file takes the clock's
 *   reading, and the first change after a start or a reset sees the start.
 * - Everything the loader creates goes through the library's public calls,
 *   with the file's values as a request would give them, so every rule and
 *   error of the store applies; the first failing item stops the load and
 *   is named by its JSON path with the store's error.
 * - The parsed file (root) stays unchanged from startup to the end, and a
 *   reset loads it again into a cleared store: a seeded server comes back
 *   with the same SIDs, dates and tokens as when it started.
 * - A reset holds the store's exclusive lock from the clear to the end of
 *   the load, so no request sees a state between; media bytes are dropped
 *   for every service the clear removed. */
#include "fixture.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The store's date range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define FX_TIME_MIN INT64_C(-62135596800)
#define FX_TIME_MAX INT64_C(253402300799)

struct fixture {
    fixture_config cfg;
    json_t *root; /* the fixture file; NULL without one */
    /* the fixed clock (atomics; changed under the exclusive lock) */
    int64_t now, step;
    int fixed;
    /* under the exclusive lock */
    int loading;
    int has_override;
    int64_t override;
    /* what the file holds, counted by the first load */
    size_t n_services, n_channels, n_messages, n_media;
    double parse_ms; /* reading and parsing the file */
};

static double ms_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- flags --------------------------------------------------------------- */

int fixture_parse_step(const char *s, size_t n, int64_t *out) {
    size_t i = 0;
    int64_t v = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (FX_TIME_MAX - FX_TIME_MIN) / 10) return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0 || n - i > 1) return -1;
    int64_t unit = 1;
    if (i < n) {
        switch (s[i]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: return -1;
        }
    }
    if (v > (FX_TIME_MAX - FX_TIME_MIN) / unit) return -1;
    *out = v * unit;
    return 0;
}

/* DATE or DATE+STEP, STEP with its unit (an ISO date never ends with one,
 * so "+05" stays a zone offset). */
static int parse_clock(const char *s, int64_t *start, int64_t *step) {
    size_t n = strlen(s), date_len = n;
    *step = 0;
    if (n && strchr("smhd", s[n - 1])) {
        size_t i = n - 1;
        while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') i--;
        if (i == 0 || i == n - 1 || s[i - 1] != '+') return -1;
        if (fixture_parse_step(s + i, n - i, step)) return -1;
        date_len = i - 1;
    }
    return cs_parse_date((cs_str){s, date_len}, start) ? -1 : 0;
}

int fixture_flag(fixture_config *c, const char *flag, const char *value) {
    if (!strcmp(flag, "--test-endpoints")) {
        c->test_endpoints = 1;
        return FIXTURE_FLAG_ALONE;
    }
    if (strcmp(flag, "--seed") && strcmp(flag, "--clock") &&
        strcmp(flag, "--fixture"))
        return FIXTURE_FLAG_NONE;
    if (!value || !*value) return FIXTURE_FLAG_BAD;
    if (!strcmp(flag, "--seed")) {
        for (const char *p = value; *p; p++)
            if (*p < '0' || *p > '9') return FIXTURE_FLAG_BAD;
        errno = 0;
        c->seed = strtoull(value, NULL, 10);
        if (errno) return FIXTURE_FLAG_BAD;
        c->use_seed = 1;
    } else if (!strcmp(flag, "--clock")) {
        if (parse_clock(value, &c->clock_start, &c->clock_step))
            return FIXTURE_FLAG_BAD;
        c->fixed_clock = 1;
    } else {
        c->file = value;
    }
    return FIXTURE_FLAG_VALUE;
}

int fixture_wanted(const fixture_config *c) {
    return c->use_seed || c->fixed_clock || c->file || c->test_endpoints;
}

/* ---- the clock ----------------------------------------------------------- */

static int64_t fx_clock(void *ctx) {
    fixture *fx = ctx;
    if (fx->has_override) return fx->override;
    if (__atomic_load_n(&fx->fixed, __ATOMIC_ACQUIRE))
        return __atomic_load_n(&fx->now, __ATOMIC_RELAXED);
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec;
}

int64_t fixture_now(fixture *fx) { return fx_clock(fx); }

/* One step per committed change (under the exclusive lock). */
static void on_change(void *ctx, const cs_event *ev) {
    (void)ev;
    fixture *fx = ctx;
    if (fx->loading || !__atomic_load_n(&fx->fixed, __ATOMIC_RELAXED)) return;
    int64_t now = __atomic_load_n(&fx->now, __ATOMIC_RELAXED);
    int64_t step = __atomic_load_n(&fx->step, __ATOMIC_RELAXED);
    now = now > FX_TIME_MAX - step ? FX_TIME_MAX : now + step;
    __atomic_store_n(&fx->now, now, __ATOMIC_RELAXED);
}

/* Under the exclusive lock. */
static void clock_set(fixture *fx, int fixed, int64_t now, int64_t step) {
    __atomic_store_n(&fx->now, now, __ATOMIC_RELAXED);
    __atomic_store_n(&fx->step, step, __ATOMIC_RELAXED);
    __atomic_store_n(&fx->fixed, fixed, __ATOMIC_RELEASE);
}

static void clock_start(fixture *fx) {
    clock_set(fx, fx->cfg.fixed_clock, fx->cfg.clock_start,
              fx->cfg.clock_step);
}

void fixture_http_date(fixture *fx, char *out, size_t cap) {
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
    if (!cap) return;
    out[0] = '\0';
    if (!__atomic_load_n(&fx->fixed, __ATOMIC_ACQUIRE)) return;
    time_t t = (time_t)__atomic_load_n(&fx->now, __ATOMIC_RELAXED);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return;
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

/* ---- the loader ---------------------------------------------------------- */

/* One step of the JSON path: ".key[index]", or ".key" (index NO_INDEX). */
#define NO_INDEX ((size_t)-1)
typedef struct frame {
    const char *key;
    size_t index;
} frame;

typedef struct loader {
    fixture *fx;
    server *sv;
    frame path[8]; /* where the loader is; written out only for an error */
    int depth;
    char *msg; /* the first error: "PATH: what" */
    size_t cap;
    int count; /* count what is loaded (the first load) */
} loader;

static void path_push(loader *l, const char *key, size_t index) {
    l->path[l->depth++] = (frame){key, index};
}

static void path_pop(loader *l) { l->depth--; }

/* Records "PATH[.key]: what" and returns -1. */
static int fail(loader *l, const char *key, const char *fmt, ...) {
    size_t n = (size_t)snprintf(l->msg, l->cap, "$");
    for (int i = 0; i < l->depth && n < l->cap; i++) {
        const frame *f = &l->path[i];
        int k = f->index == NO_INDEX
                    ? snprintf(l->msg + n, l->cap - n, ".%s", f->key)
                    : snprintf(l->msg + n, l->cap - n, ".%s[%zu]", f->key,
                               f->index);
        if (k > 0) n += (size_t)k;
    }
    if (key && n < l->cap)
        n += (size_t)snprintf(l->msg + n, l->cap - n, ".%s", key);
    if (n + 2 >= l->cap) return -1;
    memcpy(l->msg + n, ": ", 3);
    n += 2;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->msg + n, l->cap - n, fmt, ap);
    va_end(ap);
    return -1;
}

static int fail_store(loader *l, const char *key, cs_err e) {
    return fail(l, key, "%d / %d %s: %s", cs_err_http_status(e),
                cs_err_twilio_code(e), cs_err_name(e), cs_err_message(e));
}

/* Every key must be one of known (NULL-terminated); keys that start with
 * '_' are the writer's comments. */
static int check_keys(loader *l, json_t *obj, const char *const *known) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (key[0] == '_') continue;
        const char *const *k = known;
        while (*k && strcmp(*k, key)) k++;
        if (!*k) {
            char list[256] = "";
            for (k = known; *k; k++) {
                strncat(list, *k, sizeof list - strlen(list) - 1);
                if (k[1]) strncat(list, ", ", sizeof list - strlen(list) - 1);
            }
            return fail(l, NULL, "unknown key \"%.64s\" (known: %s)", key,
                        list);
        }
    }
    return 0;
}

/* A string field; absent or null: the absent string. */
static int get_str(loader *l, json_t *obj, const char *key, cs_str *out) {
    json_t *v = json_object_get(obj, key);
    *out = CS_STR_ABSENT;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return fail(l, key, "must be a string");
    *out = (cs_str){json_string_value(v), json_string_length(v)};
    return 0;
}

/* Attributes: a string is the JSON text as given; any other JSON value is
 * written out by jansson (*owned, to free). */
static int get_attributes(loader *l, json_t *obj, cs_str *out, char **owned) {
    json_t *v = json_object_get(obj, "attributes");
    *owned = NULL;
    *out = CS_STR_ABSENT;
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) return get_str(l, obj, "attributes", out);
    *owned = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (!*owned) return fail(l, "attributes", "out of memory");
    *out = cs_str_c(*owned);
    return 0;
}

static int get_array(loader *l, json_t *obj, const char *key, json_t **out) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v)) return fail(l, key, "must be an array");
    *out = v;
    return 0;
}

/* The loader's date for calls that take none (service, media). */
static void override_date(loader *l, cs_str date) {
    int64_t t;
    l->fx->has_override = date.ptr && cs_parse_date(date, &t) == CS_OK;
    if (l->fx->has_override) l->fx->override = t;
}

static int load_media(loader *l, json_t *js, const char *service_sid,
                      cs_str date, char media_sid[CS_SID_BUFSZ]) {
    static const char *const keys[] = {"content_type", "filename", "size",
                                       "content", NULL};
    if (!json_is_object(js)) return fail(l, NULL, "must be an object");
    cs_str type, name, content;
    if (check_keys(l, js, keys) || get_str(l, js, "content_type", &type) ||
        get_str(l, js, "filename", &name) ||
        get_str(l, js, "content", &content))
        return -1;
    json_t *jsz = json_object_get(js, "size");
    uint64_t size = content.len;
    if (jsz && !json_is_null(jsz)) {
        if (!json_is_integer(jsz) || json_integer_value(jsz) < 0)
            return fail(l, "size", "must be a whole number of bytes");
        size = (uint64_t)json_integer_value(jsz);
        if (content.ptr && size != content.len)
            return fail(l, "size", "%llu, but content has %zu bytes",
                        (unsigned long long)size, content.len);
    } else if (!content.ptr) {
        return fail(l, NULL, "needs size or content");
    }
    blob *b = NULL;
    if (content.ptr) {
        int r = media_store_prepare(l->sv->media, content.ptr, content.len, &b);
        if (r == MEDIA_FULL)
            return fail(l, "content", "does not fit in --media-cap");
        if (r) return fail(l, "content", "out of memory");
    }
    cs_media_view v;
    override_date(l, date);
    cs_err e = cs_media_create(l->sv->store, cs_str_c(service_sid), type, name,
                               size, &v);
    l->fx->has_override = 0;
    if (e) {
        if (b) media_store_abort(l->sv->media, b, content.len);
        return fail_store(l, NULL, e);
    }
    if (b)
        media_store_commit(l->sv->media, b, v.sid, v.service_sid,
                           v.date_created);
    memcpy(media_sid, v.sid, CS_SID_BUFSZ);
    if (l->count) l->fx->n_media++;
    return 0;
}

/* Message parameters by their fixture names; owned holds jansson's text of
 * non-string attributes. */
static int message_params(loader *l, json_t *js, cs_message_params *p,
                          char **owned) {
    *owned = NULL;
    memset(p, 0, sizeof *p);
    return get_str(l, js, "from", &p->from) ||
                   get_str(l, js, "body", &p->body) ||
                   get_str(l, js, "date_created", &p->date_created) ||
                   get_str(l, js, "date_updated", &p->date_updated) ||
                   get_str(l, js, "last_updated_by", &p->last_updated_by) ||
                   get_attributes(l, js, &p->attributes, owned)
               ? -1
               : 0;
}

static int load_edit(loader *l, json_t *js, const char *service_sid,
                     const char *channel_sid, const char *message_sid) {
    static const char *const keys[] = {"body", "attributes", "from",
                                       "last_updated_by", "date_created",
                                       "date_updated", NULL};
    if (!json_is_object(js)) return fail(l, NULL, "must be an object");
    cs_message_params p;
    char *owned;
    if (check_keys(l, js, keys) || message_params(l, js, &p, &owned)) return -1;
    if (!p.from.ptr && !p.body.ptr && !p.date_created.ptr &&
        !p.date_updated.ptr && !p.last_updated_by.ptr && !p.attributes.ptr)
        return fail(l, NULL, "an edit needs at least one field");
    cs_err e = cs_message_update(l->sv->store, cs_str_c(service_sid),
                                 cs_str_c(channel_sid), cs_str_c(message_sid),
                                 &p, NULL);
    free(owned);
    return e ? fail_store(l, NULL, e) : 0;
}

static int load_message(loader *l, json_t *js, const char *service_sid,
                        const char *channel_sid) {
    static const char *const keys[] = {"from", "body", "attributes",
                                       "date_created", "date_updated",
                                       "last_updated_by", "media", "edits",
                                       NULL};
    if (!json_is_object(js)) return fail(l, NULL, "must be an object");
    cs_message_params p;
    char *owned;
    json_t *edits;
    if (check_keys(l, js, keys) || get_array(l, js, "edits", &edits) ||
        message_params(l, js, &p, &owned))
        return -1;
    char media_sid[CS_SID_BUFSZ];
    json_t *jm = json_object_get(js, "media");
    if (jm && !json_is_null(jm)) {
        path_push(l, "media", NO_INDEX);
        int r = load_media(l, jm, service_sid, p.date_created, media_sid);
        path_pop(l);
        if (r) {
            free(owned);
            return -1;
        }
        p.media_sid = cs_str_c(media_sid);
    }
    cs_message_view v;
    cs_err e = cs_message_create(l->sv->store, cs_str_c(service_sid),
                                 cs_str_c(channel_sid), &p, &v);
    free(owned);
    if (e) return fail_store(l, NULL, e);
    if (l->count) l->fx->n_messages++;
    char sid[CS_SID_BUFSZ];
    memcpy(sid, v.sid, sizeof sid);
    size_t i;
    json_t *ed;
    json_array_foreach(edits, i, ed) {
        path_push(l, "edits", i);
        int r = load_edit(l, ed, service_sid, channel_sid, sid);
        path_pop(l);
        if (r) return -1;
    }
    return 0;
}

static int load_channel(loader *l, json_t *js, const char *service_sid) {
    static const char *const keys[] = {"friendly_name", "unique_name", "type",
                                       "attributes", "created_by",
                                       "date_created", "date_updated",
                                       "messages", NULL};
    if (!json_is_object(js)) return fail(l, NULL, "must be an object");
    cs_channel_params p = {0};
    char *owned = NULL;
    json_t *msgs;
    if (check_keys(l, js, keys) || get_array(l, js, "messages", &msgs) ||
        get_str(l, js, "friendly_name", &p.friendly_name) ||
        get_str(l, js, "unique_name", &p.unique_name) ||
        get_str(l, js, "type", &p.type) ||
        get_str(l, js, "created_by", &p.created_by) ||
        get_str(l, js, "date_created", &p.date_created) ||
        get_str(l, js, "date_updated", &p.date_updated) ||
        get_attributes(l, js, &p.attributes, &owned))
        return -1;
    cs_channel_view v;
    cs_err e = cs_channel_create(l->sv->store, cs_str_c(service_sid), &p, &v);
    free(owned);
    if (e) return fail_store(l, NULL, e);
    if (l->count) l->fx->n_channels++;
    char sid[CS_SID_BUFSZ];
    snprintf(sid, sizeof sid, "%s", v.sid);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        path_push(l, "messages", i);
        int r = load_message(l, m, service_sid, sid);
        path_pop(l);
        if (r) return -1;
    }
    return 0;
}

static int load_service(loader *l, json_t *js) {
    static const char *const keys[] = {"friendly_name", "date_created",
                                       "channels", NULL};
    if (!json_is_object(js)) return fail(l, NULL, "must be an object");
    cs_str name, date;
    json_t *chans;
    if (check_keys(l, js, keys) || get_array(l, js, "channels", &chans) ||
        get_str(l, js, "friendly_name", &name) ||
        get_str(l, js, "date_created", &date))
        return -1;
    int64_t t;
    if (date.ptr && cs_parse_date(date, &t))
        return fail_store(l, "date_created", CS_E_BAD_DATE_CREATED);
    cs_service_view v;
    override_date(l, date);
    cs_err e = cs_service_create(l->sv->store, name, &v);
    l->fx->has_override = 0;
    if (e) return fail_store(l, NULL, e);
    if (l->count) l->fx->n_services++;
    char sid[CS_SID_BUFSZ];
    snprintf(sid, sizeof sid, "%s", v.sid);
    size_t i;
    json_t *c;
    json_array_foreach(chans, i, c) {
        path_push(l, "channels", i);
        int r = load_channel(l, c, sid);
        path_pop(l);
        if (r) return -1;
    }
    return 0;
}

/* Loads the whole file; under the exclusive lock, with loading set. */
static int load(fixture *fx, server *sv, int count, char *msg, size_t cap) {
    loader l = {.fx = fx, .sv = sv, .msg = msg, .cap = cap, .count = count};
    static const char *const keys[] = {"services", NULL};
    if (!json_is_object(fx->root))
        return fail(&l, NULL, "must be an object {\"services\": [...]}");
    json_t *svcs;
    if (check_keys(&l, fx->root, keys) ||
        get_array(&l, fx->root, "services", &svcs))
        return -1;
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s) {
        path_push(&l, "services", i);
        int r = load_service(&l, s);
        path_pop(&l);
        if (r) return -1;
    }
    return 0;
}

/* ---- life ---------------------------------------------------------------- */

fixture *fixture_new(const fixture_config *cfg, cs_options *o) {
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) {
        fprintf(stderr, "chatstore-server: out of memory\n");
        return NULL;
    }
    fx->cfg = *cfg;
    if (cfg->file) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        json_error_t err;
        fx->root = json_load_file(
            cfg->file, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
        if (!fx->root) {
            if (err.line > 0)
                fprintf(stderr, "chatstore-server: --fixture %s: line %d, "
                                "column %d: %s\n",
                        cfg->file, err.line, err.column, err.text);
            else
                fprintf(stderr, "chatstore-server: --fixture %s: %s\n",
                        cfg->file, err.text);
            free(fx);
            return NULL;
        }
        fx->parse_ms = ms_since(&t0);
    }
    clock_start(fx);
    o->use_seed = cfg->use_seed != 0;
    o->seed = cfg->seed;
    o->clock = fx_clock;
    o->clock_ctx = fx;
    return fx;
}

int fixture_start(fixture *fx, server *sv) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char msg[512] = "";
    int rc = 0;
    cs_store_lock_exclusive(sv->store);
    cs_err e = cs_observer_add(sv->store, on_change, fx, NULL);
    if (e) {
        snprintf(msg, sizeof msg, "%s", cs_err_message(e));
        rc = -1;
    } else if (fx->root) {
        fx->loading = 1;
        rc = load(fx, sv, 1, msg, sizeof msg);
        fx->loading = 0;
    }
    cs_store_unlock(sv->store);
    if (rc) {
        fprintf(stderr, "chatstore-server: --fixture %s: %s\n",
                fx->cfg.file ? fx->cfg.file : "", msg);
        return -1;
    }
    if (fx->root)
        printf("fixture %s: %zu service(s), %zu channel(s), %zu message(s), "
               "%zu media item(s); parsed in %.1f ms, loaded in %.1f ms\n",
               fx->cfg.file, fx->n_services, fx->n_channels, fx->n_messages,
               fx->n_media, fx->parse_ms, ms_since(&t0));
    return 0;
}

void fixture_free(fixture *fx) {
    if (!fx) return;
    json_decref(fx->root);
    free(fx);
}

int fixture_endpoints(const fixture *fx) {
    return fx && fx->cfg.test_endpoints;
}

/* ---- the test endpoints' operations -------------------------------------- */

/* The SIDs of every service (under the lock): *out (malloc'ed, n items). */
static cs_err service_sids(cs_store *s, char (**out)[CS_SID_BUFSZ], size_t *n) {
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    *n = 0;
    *out = malloc((st.services ? st.services : 1) * sizeof **out);
    if (!*out) return CS_E_NOMEM;
    cs_page_params q = {0};
    q.page_size_value = cs_store_limits(s)->page_size_max;
    cs_page pg;
    for (;;) {
        cs_err e = cs_service_list(s, &q, &pg);
        if (e) {
            free(*out);
            *out = NULL;
            return e;
        }
        cs_service_view v;
        while (*n < st.services && cs_page_next_service(s, &pg, &v))
            snprintf((*out)[(*n)++], CS_SID_BUFSZ, "%s", v.sid);
        if (!pg.next_token[0] || *n >= st.services) return CS_OK;
        q.page_token = cs_str_c(pg.next_token);
    }
}

/* Clears the store and drops the media bytes of what it held. */
static cs_err clear_all(server *sv) {
    char (*sids)[CS_SID_BUFSZ] = NULL;
    size_t n;
    cs_err e = service_sids(sv->store, &sids, &n);
    if (!e) e = cs_store_clear(sv->store);
    if (!e)
        for (size_t i = 0; i < n; i++)
            media_store_drop_service(sv->media, sids[i]);
    free(sids);
    return e;
}

cs_err fixture_reset(fixture *fx, server *sv, int reload, char *msg,
                     size_t cap) {
    msg[0] = '\0';
    cs_store_lock_exclusive(sv->store);
    fx->loading = 1;
    cs_err e = clear_all(sv);
    if (!e) {
        clock_start(fx);
        char why[400];
        if (reload && fx->root && load(fx, sv, 0, why, sizeof why)) {
            /* only memory can fail here: the file loaded at startup */
            e = CS_E_NOMEM;
            clear_all(sv);
            snprintf(msg, cap, "the store is left empty: %s", why);
        }
    } else {
        snprintf(msg, cap, "nothing changed: %s", cs_err_message(e));
    }
    fx->loading = 0;
    cs_store_unlock(sv->store);
    return e;
}

void fixture_set_clock(fixture *fx, server *sv, int64_t now, int64_t step) {
    cs_store_lock_exclusive(sv->store);
    if (step < 0) step = __atomic_load_n(&fx->step, __ATOMIC_RELAXED);
    clock_set(fx, 1, now, step);
    cs_store_unlock(sv->store);
}

void fixture_clock_json(fixture *fx, char *out, size_t cap) {
    int fixed = __atomic_load_n(&fx->fixed, __ATOMIC_ACQUIRE);
    long long step = __atomic_load_n(&fx->step, __ATOMIC_RELAXED);
    char date[CS_DATE_BUFSZ];
    cs_format_date(fx_clock(fx), date);
    snprintf(out, cap,
             "{\"now\": \"%s\", \"step_seconds\": %lld, \"fixed\": %s}",
             date, fixed ? step : 0LL, fixed ? "true" : "false");
}

void fixture_stats_json(fixture *fx, server *sv, char *out, size_t cap) {
    cs_store_stats st;
    char clock[160], seed[32] = "null";
    cs_store_lock_shared(sv->store);
    cs_store_stats_get(sv->store, &st);
    fixture_clock_json(fx, clock, sizeof clock);
    cs_store_unlock(sv->store);
    if (fx->cfg.use_seed)
        snprintf(seed, sizeof seed, "\"%llu\"",
                 (unsigned long long)fx->cfg.seed);
    snprintf(out, cap,
             "{\"services\": %zu, \"channels\": %zu, \"messages\": %zu, "
             "\"media\": %zu, \"identities\": %zu, \"commits\": %llu, "
             "\"bytes_allocated\": %zu, \"seed\": %s, \"clock\": %s}",
             st.services, st.channels, st.messages, st.media, st.identities,
             (unsigned long long)st.commits, st.bytes_allocated, seed, clock);
}
