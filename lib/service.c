/* Services: the top level of the store, with their webhook settings.
 *
 * Invariants:
 * - A service's webhook settings are always valid ones: each URL NULL
 *   (null) or an absolute http / https URL as url_ok accepts it, the
 *   method 0..2, filters[0..n_filters) distinct event numbers 1..23 in the
 *   order they were given (n_filters 0: null), retry counts 0..3.
 * - Create and update resolve and check every parameter first (in the
 *   order of cs_service_params), then the service quota (create), then
 *   allocate (inside the byte quota's bracket, cs__quota_begin), then
 *   journal, then link with steps that cannot fail: a failure at any step
 *   changes nothing.
 * - A call that gives no webhook setting journals op 1 / 2 with the
 *   FriendlyName alone, byte for byte as before webhooks existed; one that
 *   gives any journals op 13 / 14 with all seven strings, the typed forms
 *   resolved to their text (docs/journal.md).
 */
#include "internal.h"

#define URL_MAX 2048

static const char *const EVENT_NAMES[CS_WEBHOOK_EVENTS + 1] = {
#define CS__EVENT_NAME(name, num, text) [num] = text,
    CS_WEBHOOK_EVENT_MAP(CS__EVENT_NAME)
#undef CS__EVENT_NAME
};

const char *cs_webhook_event_name(cs_webhook_event e) {
    return e >= 1 && e <= CS_WEBHOOK_EVENTS ? EVENT_NAMES[e] : NULL;
}

static bool prefix_nocase(cs_str v, const char *lit, size_t n) {
    if (v.len < n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = v.ptr[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != lit[i]) return false;
    }
    return true;
}

/* An absolute http or https URL: the scheme in any letter case, "://", an
 * authority whose host (after any userinfo) is not empty, an optional
 * numeric port; printable ASCII only (anything else must be
 * percent-encoded), at most URL_MAX bytes. */
static bool url_ok(cs_str v) {
    if (v.len > URL_MAX) return false;
    for (size_t i = 0; i < v.len; i++)
        if ((unsigned char)v.ptr[i] <= 0x20 || (unsigned char)v.ptr[i] >= 0x7f)
            return false;
    size_t k;
    if (prefix_nocase(v, "http://", 7))
        k = 7;
    else if (prefix_nocase(v, "https://", 8))
        k = 8;
    else
        return false;
    size_t end = k;
    while (end < v.len && v.ptr[end] != '/' && v.ptr[end] != '?' &&
           v.ptr[end] != '#')
        end++;
    size_t host = k;
    for (size_t i = k; i < end; i++)
        if (v.ptr[i] == '@') host = i + 1;
    if (host >= end) return false;
    /* host[:port]; an IPv6 literal is bracketed */
    size_t colon = end;
    if (v.ptr[host] == '[') {
        size_t rb = host;
        while (rb < end && v.ptr[rb] != ']') rb++;
        if (rb == end || rb == host + 1) return false;
        if (rb + 1 < end) {
            if (v.ptr[rb + 1] != ':') return false;
            colon = rb + 1;
        }
    } else {
        for (size_t i = host; i < end; i++)
            if (v.ptr[i] == ':') {
                colon = i;
                break;
            }
        if (colon == host) return false;
    }
    if (colon < end) {
        size_t digits = end - colon - 1;
        if (digits == 0 || digits > 5) return false;
        unsigned port = 0;
        for (size_t i = colon + 1; i < end; i++) {
            if (v.ptr[i] < '0' || v.ptr[i] > '9') return false;
            port = port * 10 + (unsigned)(v.ptr[i] - '0');
        }
        if (port > 65535) return false;
    }
    return true;
}

/* A service call's parameters, resolved and checked. */
typedef struct svc_in {
    cs_str name;
    cs_str pre, post; /* given: ptr set; empty: null */
    bool method_given, filters_given, pre_retry_given, post_retry_given;
    uint8_t method, n_filters, pre_retry, post_retry;
    uint8_t filters[CS_WEBHOOK_EVENTS];
} svc_in;

static bool any_webhook(const svc_in *in) {
    return in->pre.ptr || in->post.ptr || in->method_given ||
           in->filters_given || in->pre_retry_given || in->post_retry_given;
}

static cs_err check_name(const cs_store *s, cs_str name) {
    if (!name.ptr || name.len == 0) return CS_E_FRIENDLY_NAME_MISSING;
    return cs__check_text(name, s->lim.name_chars, CS_E_FRIENDLY_NAME_TOO_LONG);
}

static void add_filter(svc_in *in, uint8_t ev) {
    for (unsigned i = 0; i < in->n_filters; i++)
        if (in->filters[i] == ev) return;
    in->filters[in->n_filters++] = ev;
}

static cs_err resolve_filters(const cs_service_params *p, svc_in *in) {
    if (p->webhook_filters && p->webhook_filter_values)
        return CS_E_INVALID_ARGUMENT;
    if (p->webhook_filter_values) {
        in->filters_given = true;
        for (size_t i = 0; i < p->n_webhook_filter_values; i++) {
            cs_webhook_event ev = p->webhook_filter_values[i];
            if (!cs_webhook_event_name(ev)) return CS_E_BAD_WEBHOOK_FILTER;
            add_filter(in, (uint8_t)ev);
        }
        return CS_OK;
    }
    if (!p->webhook_filters) return CS_OK;
    in->filters_given = true;
    size_t n = p->n_webhook_filters;
    if (n == 1 && p->webhook_filters[0].ptr && p->webhook_filters[0].len == 0)
        return CS_OK; /* one empty value: back to null */
    for (size_t i = 0; i < n; i++) {
        cs_str v = p->webhook_filters[i];
        unsigned ev = 0;
        for (unsigned k = 1; v.ptr && k <= CS_WEBHOOK_EVENTS && !ev; k++)
            if (strlen(EVENT_NAMES[k]) == v.len &&
                memcmp(EVENT_NAMES[k], v.ptr, v.len) == 0)
                ev = k;
        if (!ev) return CS_E_BAD_WEBHOOK_FILTER;
        add_filter(in, (uint8_t)ev);
    }
    return CS_OK;
}

static cs_err resolve_retry(cs_str v, unsigned typed, bool *given,
                            uint8_t *out) {
    if (v.ptr && typed) return CS_E_INVALID_ARGUMENT;
    if (typed) {
        if (typed > CS_RETRY_COUNT(3)) return CS_E_BAD_RETRY_COUNT;
        *given = true;
        *out = (uint8_t)(typed - 1);
    } else if (v.ptr) {
        if (v.len != 1 || v.ptr[0] < '0' || v.ptr[0] > '3')
            return CS_E_BAD_RETRY_COUNT;
        *given = true;
        *out = (uint8_t)(v.ptr[0] - '0');
    }
    return CS_OK;
}

/* Every parameter of p, in the documented order. create: FriendlyName is
 * required. */
static cs_err resolve(const cs_store *s, const cs_service_params *p,
                      bool create, svc_in *in) {
    static const cs_service_params none;
    if (!p) p = &none;
    memset(in, 0, sizeof *in);
    cs_err e;
    in->name = p->friendly_name;
    if ((create || p->friendly_name.ptr) && (e = check_name(s, in->name)))
        return e;
    in->pre = p->pre_webhook_url;
    in->post = p->post_webhook_url;
    if ((in->pre.len && !url_ok(in->pre)) || (in->post.len && !url_ok(in->post)))
        return CS_E_BAD_WEBHOOK_URL;
    if (p->webhook_method.ptr && p->webhook_method_value)
        return CS_E_INVALID_ARGUMENT;
    if (p->webhook_method_value) {
        if (p->webhook_method_value != CS_WEBHOOK_METHOD_GET &&
            p->webhook_method_value != CS_WEBHOOK_METHOD_POST)
            return CS_E_BAD_WEBHOOK_METHOD;
        in->method_given = true;
        in->method = (uint8_t)p->webhook_method_value;
    } else if (p->webhook_method.ptr) {
        cs_str m = p->webhook_method;
        in->method_given = true;
        if (m.len == 3 && !memcmp(m.ptr, "GET", 3))
            in->method = CS_WEBHOOK_METHOD_GET;
        else if (m.len == 4 && !memcmp(m.ptr, "POST", 4))
            in->method = CS_WEBHOOK_METHOD_POST;
        else
            return CS_E_BAD_WEBHOOK_METHOD;
    }
    if ((e = resolve_filters(p, in))) return e;
    if ((e = resolve_retry(p->pre_webhook_retry_count,
                           p->pre_webhook_retry_count_value,
                           &in->pre_retry_given, &in->pre_retry)))
        return e;
    return resolve_retry(p->post_webhook_retry_count,
                         p->post_webhook_retry_count_value,
                         &in->post_retry_given, &in->post_retry);
}

/* The journal strings of a call with webhook settings (op 13 / 14): the
 * URLs as given, the rest resolved to text. fbuf holds the filters. */
#define FILTERS_TEXT_MAX (CS_WEBHOOK_EVENTS * 20)
static void journal_strs(const svc_in *in, cs__jr *r, char *fbuf,
                         char retry[2][2]) {
    r->str[0] = in->name;
    r->str[1] = in->pre;
    r->str[2] = in->post;
    if (in->method_given)
        r->str[3] = cs_str_c(in->method == CS_WEBHOOK_METHOD_GET ? "GET"
                                                                 : "POST");
    if (in->filters_given) {
        size_t n = 0;
        for (unsigned i = 0; i < in->n_filters; i++) {
            const char *name = EVENT_NAMES[in->filters[i]];
            if (i) fbuf[n++] = ',';
            memcpy(fbuf + n, name, strlen(name));
            n += strlen(name);
        }
        r->str[4] = (cs_str){fbuf, n};
    }
    if (in->pre_retry_given) {
        retry[0][0] = (char)('0' + in->pre_retry);
        r->str[5] = (cs_str){retry[0], 1};
    }
    if (in->post_retry_given) {
        retry[1][0] = (char)('0' + in->post_retry);
        r->str[6] = (cs_str){retry[1], 1};
    }
}

cs_err cs__service_replay(cs_store *s, cs_str svc, const cs_str str[7],
                          cs_service_view *out) {
    cs_service_params p = {0};
    p.friendly_name = str[0];
    p.pre_webhook_url = str[1];
    p.post_webhook_url = str[2];
    p.webhook_method = str[3];
    cs_str vals[CS_WEBHOOK_EVENTS];
    if (str[4].ptr) {
        size_t n = 0, start = 0;
        for (size_t i = 0; i <= str[4].len; i++) {
            if (i < str[4].len && str[4].ptr[i] != ',') continue;
            /* a writer joins at most 23 distinct names */
            if (n == CS_WEBHOOK_EVENTS) return CS_E_BAD_WEBHOOK_FILTER;
            vals[n++] = (cs_str){str[4].ptr + start, i - start};
            start = i + 1;
        }
        p.webhook_filters = vals;
        p.n_webhook_filters = n;
    }
    p.pre_webhook_retry_count = str[5];
    p.post_webhook_retry_count = str[6];
    return svc.ptr ? cs_service_update_with(s, svc, &p, out)
                   : cs_service_create_with(s, &p, out);
}

cs_service *cs__service_get(const cs_store *s, const uint8_t *b) {
    cs_service *v;
    HASH_FIND_BYHASHVALUE(hh, s->services, b, CS__SID_BYTES, cs__sid_hashv(b), v);
    return v;
}

cs_service *cs__service_find(const cs_store *s, cs_str sid) {
    uint8_t b[CS__SID_BYTES];
    if (!sid.ptr || cs__sid_parse(sid.ptr, sid.len, 'I', 'S', b)) return NULL;
    return cs__service_get(s, b);
}

void cs__service_view(const cs_store *s, const cs_service *v,
                      cs_service_view *out) {
    out->sid = v->sid;
    out->account_sid = s->account_sid;
    out->friendly_name = (cs_str){v->friendly_name, v->fn_len};
    out->date_created = v->date_created;
    out->date_updated = v->date_updated;
    out->default_service_role_sid = v->role_sid[0];
    out->default_channel_role_sid = v->role_sid[1];
    out->default_channel_creator_role_sid = v->role_sid[2];
    out->pre_webhook_url = (cs_str){v->pre_url, v->pre_len};
    out->post_webhook_url = (cs_str){v->post_url, v->post_len};
    out->webhook_method = (cs_webhook_method)v->method;
    out->n_webhook_filters = v->n_filters;
    for (unsigned i = 0; i < CS_WEBHOOK_EVENTS; i++)
        out->webhook_filters[i] =
            i < v->n_filters ? (cs_webhook_event)v->filters[i] : 0;
    out->pre_webhook_retry_count = v->pre_retry;
    out->post_webhook_retry_count = v->post_retry;
}

/* Copies of the URLs the call sets (NULL for null or not given). */
typedef struct url_copies {
    char *pre, *post;
} url_copies;

static cs_err copy_urls(cs_store *s, const svc_in *in, url_copies *u) {
    u->pre = in->pre.len ? cs__memdup(s, in->pre.ptr, in->pre.len) : NULL;
    u->post = in->post.len ? cs__memdup(s, in->post.ptr, in->post.len) : NULL;
    if ((in->pre.len && !u->pre) || (in->post.len && !u->post)) {
        cs__free(s, u->pre, u->pre ? in->pre.len + 1 : 0);
        cs__free(s, u->post, u->post ? in->post.len + 1 : 0);
        return CS_E_NOMEM;
    }
    return CS_OK;
}

static void free_urls(cs_store *s, const svc_in *in, url_copies *u) {
    cs__free(s, u->pre, u->pre ? in->pre.len + 1 : 0);
    cs__free(s, u->post, u->post ? in->post.len + 1 : 0);
}

/* Sets the webhook settings the call gives (cannot fail). */
static void set_webhooks(cs_store *s, cs_service *v, const svc_in *in,
                         const url_copies *u) {
    if (in->pre.ptr) {
        cs__free(s, v->pre_url, v->pre_url ? v->pre_len + 1 : 0);
        v->pre_url = u->pre;
        v->pre_len = u->pre ? in->pre.len : 0;
    }
    if (in->post.ptr) {
        cs__free(s, v->post_url, v->post_url ? v->post_len + 1 : 0);
        v->post_url = u->post;
        v->post_len = u->post ? in->post.len : 0;
    }
    if (in->method_given) v->method = in->method;
    if (in->filters_given) {
        v->n_filters = in->n_filters;
        memcpy(v->filters, in->filters, sizeof v->filters);
    }
    if (in->pre_retry_given) v->pre_retry = in->pre_retry;
    if (in->post_retry_given) v->post_retry = in->post_retry;
}

/* A fresh SID no live service has. */
static void new_service_sid(cs_store *s, uint8_t b[CS__SID_BYTES]) {
    cs_service *dup;
    do {
        cs__new_sid(s, b);
        HASH_FIND_BYHASHVALUE(hh, s->services, b, CS__SID_BYTES, cs__sid_hashv(b),
                              dup);
    } while (dup);
}

cs_err cs_service_create(cs_store *s, cs_str friendly_name,
                         cs_service_view *out) {
    cs_service_params p = {0};
    p.friendly_name = friendly_name;
    return cs_service_create_with(s, &p, out);
}

static cs_err service_create(cs_store *s, const cs_service_params *p,
                             cs_service_view *out) {
    svc_in in;
    cs_err e = resolve(s, p, true, &in);
    if (e) return e;
    if (cs__at_quota(s, HASH_COUNT(s->services), s->lim.max_services))
        return CS_E_QUOTA_SERVICES;
    e = cs__seq_reserve(s, &s->service_seq);
    if (e) return e;
    cs_str friendly_name = in.name;
    cs_service *v = cs__malloc(s, sizeof *v);
    char *fn = cs__memdup(s, friendly_name.ptr, friendly_name.len);
    url_copies u = {NULL, NULL};
    if (!v || !fn || copy_urls(s, &in, &u)) {
        cs__free(s, v, v ? sizeof *v : 0);
        cs__free(s, fn, fn ? friendly_name.len + 1 : 0);
        return CS_E_NOMEM;
    }
    memset(v, 0, sizeof *v);
    uint64_t saved_counter = s->sid_counter;
    new_service_sid(s, v->sidb);
    cs__sid_format('I', 'S', v->sidb, v->sid);
    for (int i = 0; i < 3; i++) {
        uint8_t rb[CS__SID_BYTES];
        cs__new_sid(s, rb);
        cs__sid_format('R', 'L', rb, v->role_sid[i]);
    }
    v->friendly_name = fn;
    v->fn_len = friendly_name.len;
    v->date_created = v->date_updated = cs__now(s);
    v->serial = s->serial + 1;
    CS__UT(s);
    HASH_ADD_BYHASHVALUE(hh, s->services, sidb, CS__SID_BYTES,
                         cs__sid_hashv(v->sidb), v);
    e = CS__UT_FAILED ? CS_E_NOMEM : CS_OK;
    if (!e && cs__journaled(s)) {
        cs__jr r = {.op = CS__J_SERVICE_CREATE, .now = v->date_created,
                    .counter0 = saved_counter, .created = v->sidb};
        char fbuf[FILTERS_TEXT_MAX], retry[2][2];
        if (any_webhook(&in)) {
            r.op = CS__J_SERVICE_CREATE_WH;
            journal_strs(&in, &r, fbuf, retry);
        } else {
            r.str[0] = friendly_name;
        }
        if ((e = cs__journal(s, &r))) HASH_DEL(s->services, v);
    }
    if (e) {
        s->sid_counter = saved_counter; /* a failed call changes nothing */
        free_urls(s, &in, &u);
        cs__free(s, fn, friendly_name.len + 1);
        cs__free(s, v, sizeof *v);
        return e;
    }
    set_webhooks(s, v, &in, &u);
    s->serial++;
    cs__seq_append(&s->service_seq, v->serial, v);
    cs_service_view sv;
    cs__service_view(s, v, &sv);
    cs_event ev = {.type = CS_EVENT_SERVICE_CREATED, .service = &sv};
    cs__commit(s, &ev);
    if (out) *out = sv;
    return CS_OK;
}

cs_err cs_service_create_with(cs_store *s, const cs_service_params *p,
                              cs_service_view *out) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    cs__quota_begin(s);
    return cs__quota_end(s, service_create(s, p, out));
}

cs_err cs_service_fetch(const cs_store *s, cs_str service_sid,
                        cs_service_view *out) {
    CS__REQUIRE(s);
    const cs_service *v = cs__service_find(s, service_sid);
    if (!v) return CS_E_NOT_FOUND;
    if (out) cs__service_view(s, v, out);
    return CS_OK;
}

cs_err cs_service_update(cs_store *s, cs_str service_sid, cs_str friendly_name,
                         cs_service_view *out) {
    cs_service_params p = {0};
    p.friendly_name = friendly_name;
    return cs_service_update_with(s, service_sid, &p, out);
}

static cs_err service_update(cs_store *s, cs_str service_sid,
                             const cs_service_params *p,
                             cs_service_view *out) {
    cs_service *v = cs__service_find(s, service_sid);
    if (!v) return CS_E_NOT_FOUND;
    svc_in in;
    cs_err e = resolve(s, p, false, &in);
    if (e) return e;
    if (in.name.ptr || any_webhook(&in)) {
        cs_str friendly_name = in.name;
        char *fn = NULL;
        if (friendly_name.ptr &&
            !(fn = cs__memdup(s, friendly_name.ptr, friendly_name.len)))
            return CS_E_NOMEM;
        url_copies u = {NULL, NULL};
        if (copy_urls(s, &in, &u)) {
            cs__free(s, fn, fn ? friendly_name.len + 1 : 0);
            return CS_E_NOMEM;
        }
        int64_t now = cs__now(s);
        if (cs__journaled(s)) {
            cs__jr r = {.op = CS__J_SERVICE_UPDATE, .now = now,
                        .counter0 = s->sid_counter, .svc = v->sidb};
            char fbuf[FILTERS_TEXT_MAX], retry[2][2];
            if (any_webhook(&in)) {
                r.op = CS__J_SERVICE_UPDATE_WH;
                journal_strs(&in, &r, fbuf, retry);
            } else {
                r.str[0] = friendly_name;
            }
            if ((e = cs__journal(s, &r))) {
                free_urls(s, &in, &u);
                cs__free(s, fn, fn ? friendly_name.len + 1 : 0);
                return e;
            }
        }
        if (fn) {
            cs__free(s, v->friendly_name, v->fn_len + 1);
            v->friendly_name = fn;
            v->fn_len = friendly_name.len;
        }
        set_webhooks(s, v, &in, &u);
        v->date_updated = now;
        cs_service_view sv;
        cs__service_view(s, v, &sv);
        cs_event ev = {.type = CS_EVENT_SERVICE_UPDATED, .service = &sv};
        cs__commit(s, &ev);
    }
    if (out) cs__service_view(s, v, out);
    return CS_OK;
}

cs_err cs_service_update_with(cs_store *s, cs_str service_sid,
                              const cs_service_params *p,
                              cs_service_view *out) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    cs__quota_begin(s);
    return cs__quota_end(s, service_update(s, service_sid, p, out));
}

/* An image's webhook settings: what a create could have set (URLs
 * present are not empty: null is absent). */
static bool webhooks_ok(const cs__svc_img *img) {
    if ((img->pre_url.ptr && (!img->pre_url.len || !url_ok(img->pre_url))) ||
        (img->post_url.ptr && (!img->post_url.len || !url_ok(img->post_url))) ||
        img->method > CS_WEBHOOK_METHOD_POST ||
        img->n_filters > CS_WEBHOOK_EVENTS || img->pre_retry > 3 ||
        img->post_retry > 3)
        return false;
    for (unsigned i = 0; i < img->n_filters; i++) {
        if (img->filters[i] < 1 || img->filters[i] > CS_WEBHOOK_EVENTS)
            return false;
        for (unsigned k = 0; k < i; k++)
            if (img->filters[k] == img->filters[i]) return false;
    }
    return true;
}

cs_err cs__service_restore(cs_store *s, const cs__svc_img *img,
                           cs_service **out, const char **why) {
    *why = NULL;
    if (check_name(s, img->name)) *why = "service friendly name invalid";
    else if (!cs__time_ok(img->dc) || !cs__time_ok(img->du))
        *why = "service date out of range";
    else if (!webhooks_ok(img))
        *why = "service webhook settings invalid";
    else {
        cs_service *dup;
        HASH_FIND_BYHASHVALUE(hh, s->services, img->sid, CS__SID_BYTES,
                              cs__sid_hashv(img->sid), dup);
        if (dup) *why = "service SID appears twice";
    }
    if (*why) return CS_E_BAD_SNAPSHOT;
    cs_err e = cs__seq_reserve(s, &s->service_seq);
    if (e) return e;
    cs_service *v = cs__malloc(s, sizeof *v);
    char *fn = cs__memdup(s, img->name.ptr, img->name.len);
    svc_in in;
    memset(&in, 0, sizeof in);
    in.pre = img->pre_url;
    in.post = img->post_url;
    url_copies u = {NULL, NULL};
    if (!v || !fn || copy_urls(s, &in, &u)) {
        cs__free(s, v, v ? sizeof *v : 0);
        cs__free(s, fn, fn ? img->name.len + 1 : 0);
        return CS_E_NOMEM;
    }
    memset(v, 0, sizeof *v);
    in.method_given = in.filters_given = in.pre_retry_given =
        in.post_retry_given = true;
    in.method = img->method;
    in.n_filters = img->n_filters;
    if (img->n_filters) memcpy(in.filters, img->filters, img->n_filters);
    in.pre_retry = img->pre_retry;
    in.post_retry = img->post_retry;
    set_webhooks(s, v, &in, &u);
    memcpy(v->sidb, img->sid, CS__SID_BYTES);
    cs__sid_format('I', 'S', v->sidb, v->sid);
    for (int i = 0; i < 3; i++)
        cs__sid_format('R', 'L', img->role[i], v->role_sid[i]);
    v->friendly_name = fn;
    v->fn_len = img->name.len;
    v->date_created = img->dc;
    v->date_updated = img->du;
    v->serial = img->serial;
    CS__UT(s);
    HASH_ADD_BYHASHVALUE(hh, s->services, sidb, CS__SID_BYTES,
                         cs__sid_hashv(v->sidb), v);
    if (CS__UT_FAILED) {
        free_urls(s, &in, &u);
        cs__free(s, fn, img->name.len + 1);
        cs__free(s, v, sizeof *v);
        return CS_E_NOMEM;
    }
    cs__seq_append(&s->service_seq, v->serial, v);
    *out = v;
    return CS_OK;
}

/* Frees v's channels (with their messages) and media and takes their
 * counts out of the store; v's own fields, which a view of v borrows, stay. */
static void service_empty(cs_store *s, cs_service *v) {
    cs_channel *c, *tmp;
    HASH_ITER(hh, v->channels, c, tmp) {
        CS__UT(s);
        HASH_DELETE(hh, v->channels, c);
        cs__channel_destroy(s, c);
    }
    cs__seq_free(s, &v->channel_seq);
    cs_media *m, *mtmp;
    HASH_ITER(hh, v->media, m, mtmp) {
        CS__UT(s);
        HASH_DEL(v->media, m);
        cs__media_destroy(s, m);
        s->n_media--;
    }
}

static void service_free(cs_store *s, cs_service *v) {
    cs__free(s, v->friendly_name, v->fn_len + 1);
    cs__free(s, v->pre_url, v->pre_url ? v->pre_len + 1 : 0);
    cs__free(s, v->post_url, v->post_url ? v->post_len + 1 : 0);
    cs__free(s, v, sizeof *v);
}

void cs__service_destroy(cs_store *s, cs_service *v) {
    service_empty(s, v);
    service_free(s, v);
}

cs_err cs_service_delete(cs_store *s, cs_str service_sid) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    cs_service *v = cs__service_find(s, service_sid);
    if (!v) return CS_E_NOT_FOUND;
    if (cs__journaled(s)) {
        cs__jr r = {.op = CS__J_SERVICE_DELETE, .counter0 = s->sid_counter,
                    .svc = v->sidb};
        cs_err e = cs__journal(s, &r);
        if (e) return e;
    }
    CS__UT(s);
    HASH_DEL(s->services, v);
    cs__seq_remove(s, &s->service_seq, v->serial);
    /* Observers run after the commit: everything of the service is out of
     * the store by then, and only v itself (which the view borrows) is
     * freed afterwards. */
    size_t channels = s->n_channels, messages = s->n_messages,
           media = s->n_media;
    service_empty(s, v);
    cs_service_view sv;
    cs__service_view(s, v, &sv);
    cs_event ev = {.type = CS_EVENT_SERVICE_DELETED, .service = &sv};
    ev.removed_services = 1;
    ev.removed_channels = channels - s->n_channels;
    ev.removed_messages = messages - s->n_messages;
    ev.removed_media = media - s->n_media;
    cs__commit(s, &ev);
    service_free(s, v);
    return CS_OK;
}
