/* JSON rendering of services, channels, messages, media and pages.
 *
 * Output style follows Twilio's wire format: keys in the documented order,
 * ", " and ": " separators, strings with the minimal RFC 8259 escapes (",
 * \, control characters) and UTF-8 passed through. A writer accumulates
 * into the caller's buffer; on any failure the buffer's length is restored,
 * so a caller never sees half an object. */
#include "internal.h"

typedef struct w {
    cs_buf *b;
    cs_err err;
} w;

static void w_raw(w *o, const char *p, size_t n) {
    if (o->err) return;
    if ((o->err = cs__buf_grow(o->b, n))) return;
    memcpy(o->b->data + o->b->len, p, n);
    o->b->len += n;
}

#define W_LIT(o, lit) w_raw((o), (lit), sizeof(lit) - 1)

static void w_cstr(w *o, const char *s) { w_raw(o, s, strlen(s)); }

static void w_u64(w *o, uint64_t v) {
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    w_raw(o, tmp + i, sizeof tmp - i);
}

static void w_i64(w *o, int64_t v) {
    if (v < 0) {
        W_LIT(o, "-");
        w_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        w_u64(o, (uint64_t)v);
    }
}

/* A JSON string body (no quotes): runs of plain bytes copied at once. */
static void w_escaped(w *o, const char *p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        w_raw(o, p + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        w_raw(o, esc, len);
    }
    w_raw(o, p + run, n - run);
}

static void w_str(w *o, cs_str v) {
    if (!v.ptr) {
        W_LIT(o, "null");
        return;
    }
    W_LIT(o, "\"");
    w_escaped(o, v.ptr, v.len);
    W_LIT(o, "\"");
}

static void w_sid(w *o, const char *sid) {
    W_LIT(o, "\"");
    w_raw(o, sid, CS__SID_STRLEN);
    W_LIT(o, "\"");
}

static void w_date(w *o, int64_t t) {
    char d[CS_DATE_BUFSZ];
    cs_format_date(t, d);
    W_LIT(o, "\"");
    w_raw(o, d, CS__TIME_STRLEN);
    W_LIT(o, "\"");
}

static void w_bool(w *o, bool v) {
    if (v)
        W_LIT(o, "true");
    else
        W_LIT(o, "false");
}

/* "<base>/v2/Services/IS.." and deeper: SIDs only, never unique names. */
static void w_service_path(w *o, const cs_store *s, const char *is) {
    w_raw(o, s->base_url, s->base_len);
    W_LIT(o, "/v2/Services");
    if (is) {
        W_LIT(o, "/");
        w_raw(o, is, CS__SID_STRLEN);
    }
}

static void w_channel_path(w *o, const cs_store *s, const char *is,
                           const char *ch) {
    w_service_path(o, s, is);
    W_LIT(o, "/Channels");
    if (ch) {
        W_LIT(o, "/");
        w_raw(o, ch, CS__SID_STRLEN);
    }
}

static cs_err finish(w *o, size_t start) {
    if (o->err) {
        o->b->len = start;
    }
    if (o->b->cap > o->b->len) o->b->data[o->b->len] = '\0';
    return o->err;
}

/* ---- resources ---------------------------------------------------------- */

static void w_message(w *o, const cs_store *s, const cs_message_view *v) {
    W_LIT(o, "{\"sid\": ");
    w_sid(o, v->sid);
    W_LIT(o, ", \"account_sid\": ");
    w_sid(o, v->account_sid);
    W_LIT(o, ", \"attributes\": ");
    w_str(o, v->attributes);
    W_LIT(o, ", \"service_sid\": ");
    w_sid(o, v->service_sid);
    W_LIT(o, ", \"to\": ");
    w_sid(o, v->channel_sid);
    W_LIT(o, ", \"channel_sid\": ");
    w_sid(o, v->channel_sid);
    W_LIT(o, ", \"date_created\": ");
    w_date(o, v->date_created);
    W_LIT(o, ", \"date_updated\": ");
    w_date(o, v->date_updated);
    W_LIT(o, ", \"last_updated_by\": ");
    w_str(o, v->last_updated_by);
    W_LIT(o, ", \"was_edited\": ");
    w_bool(o, v->was_edited);
    W_LIT(o, ", \"from\": ");
    w_str(o, v->from);
    W_LIT(o, ", \"body\": ");
    w_str(o, v->body);
    W_LIT(o, ", \"index\": ");
    w_i64(o, v->index);
    if (v->has_media) {
        W_LIT(o, ", \"type\": \"media\", \"media\": {\"sid\": ");
        w_sid(o, v->media.sid);
        W_LIT(o, ", \"size\": ");
        w_u64(o, v->media.size);
        W_LIT(o, ", \"content_type\": ");
        w_str(o, v->media.content_type);
        W_LIT(o, ", \"filename\": ");
        w_str(o, v->media.filename);
        W_LIT(o, "}");
    } else {
        W_LIT(o, ", \"type\": \"text\", \"media\": null");
    }
    W_LIT(o, ", \"url\": \"");
    w_channel_path(o, s, v->service_sid, v->channel_sid);
    W_LIT(o, "/Messages/");
    w_raw(o, v->sid, CS__SID_STRLEN);
    W_LIT(o, "\"}");
}

cs_err cs_render_message(const cs_store *s, const cs_message_view *v,
                         cs_buf *b) {
    CS__REQUIRE(s);
    CS__REQUIRE(v);
    CS__REQUIRE(b);
    w o = {b, CS_OK};
    size_t start = b->len;
    w_message(&o, s, v);
    return finish(&o, start);
}

static const char SERVICE_DEFAULTS[] =
    ", \"read_status_enabled\": true, \"reachability_enabled\": false"
    ", \"typing_indicator_timeout\": 5, \"consumption_report_interval\": 10"
    ", \"limits\": {\"user_channels\": 250, \"channel_members\": 100}";
static const char SERVICE_DEFAULTS2[] =
    ", \"notifications\": {\"removed_from_channel\": {\"enabled\": false}"
    ", \"log_enabled\": false, \"added_to_channel\": {\"enabled\": false}"
    ", \"new_message\": {\"enabled\": false}"
    ", \"invited_to_channel\": {\"enabled\": false}}"
    ", \"media\": {\"compatibility_message\": "
    "\"Media messages are not supported by your client\", \"size_limit_mb\": ";

static void w_service(w *o, const cs_store *s, const cs_service_view *v) {
    W_LIT(o, "{\"sid\": ");
    w_sid(o, v->sid);
    W_LIT(o, ", \"account_sid\": ");
    w_sid(o, v->account_sid);
    W_LIT(o, ", \"friendly_name\": ");
    w_str(o, v->friendly_name);
    W_LIT(o, ", \"date_created\": ");
    w_date(o, v->date_created);
    W_LIT(o, ", \"date_updated\": ");
    w_date(o, v->date_updated);
    W_LIT(o, ", \"default_service_role_sid\": ");
    w_sid(o, v->default_service_role_sid);
    W_LIT(o, ", \"default_channel_role_sid\": ");
    w_sid(o, v->default_channel_role_sid);
    W_LIT(o, ", \"default_channel_creator_role_sid\": ");
    w_sid(o, v->default_channel_creator_role_sid);
    W_LIT(o, SERVICE_DEFAULTS);
    W_LIT(o, ", \"pre_webhook_url\": ");
    w_str(o, v->pre_webhook_url);
    W_LIT(o, ", \"post_webhook_url\": ");
    w_str(o, v->post_webhook_url);
    W_LIT(o, ", \"webhook_method\": ");
    if (v->webhook_method == CS_WEBHOOK_METHOD_GET)
        W_LIT(o, "\"GET\"");
    else if (v->webhook_method == CS_WEBHOOK_METHOD_POST)
        W_LIT(o, "\"POST\"");
    else
        W_LIT(o, "null");
    W_LIT(o, ", \"webhook_filters\": ");
    size_t nf = v->n_webhook_filters < CS_WEBHOOK_EVENTS
                    ? v->n_webhook_filters : CS_WEBHOOK_EVENTS;
    if (!nf) W_LIT(o, "null");
    for (size_t i = 0; i < nf; i++) {
        const char *name = cs_webhook_event_name(v->webhook_filters[i]);
        if (i)
            W_LIT(o, ", ");
        else
            W_LIT(o, "[");
        w_str(o, cs_str_c(name ? name : ""));
    }
    if (nf) W_LIT(o, "]");
    W_LIT(o, ", \"pre_webhook_retry_count\": ");
    w_u64(o, v->pre_webhook_retry_count);
    W_LIT(o, ", \"post_webhook_retry_count\": ");
    w_u64(o, v->post_webhook_retry_count);
    W_LIT(o, SERVICE_DEFAULTS2);
    w_u64(o, s->lim.media_bytes / (1024 * 1024));
    W_LIT(o, "}, \"url\": \"");
    w_service_path(o, s, v->sid);
    W_LIT(o, "\", \"links\": {");
    static const char *const links[] = {"channels", "users", "roles",
                                        "bindings"};
    static const char *const paths[] = {"/Channels", "/Users", "/Roles",
                                        "/Bindings"};
    for (int i = 0; i < 4; i++) {
        if (i) W_LIT(o, ", ");
        W_LIT(o, "\"");
        w_cstr(o, links[i]);
        W_LIT(o, "\": \"");
        w_service_path(o, s, v->sid);
        w_cstr(o, paths[i]);
        W_LIT(o, "\"");
    }
    W_LIT(o, "}}");
}

cs_err cs_render_service(const cs_store *s, const cs_service_view *v,
                         cs_buf *b) {
    CS__REQUIRE(s);
    CS__REQUIRE(v);
    CS__REQUIRE(b);
    w o = {b, CS_OK};
    size_t start = b->len;
    w_service(&o, s, v);
    return finish(&o, start);
}

static void w_channel(w *o, const cs_store *s, const cs_channel_view *v) {
    W_LIT(o, "{\"sid\": ");
    w_sid(o, v->sid);
    W_LIT(o, ", \"account_sid\": ");
    w_sid(o, v->account_sid);
    W_LIT(o, ", \"service_sid\": ");
    w_sid(o, v->service_sid);
    W_LIT(o, ", \"friendly_name\": ");
    w_str(o, v->friendly_name);
    W_LIT(o, ", \"unique_name\": ");
    w_str(o, v->unique_name);
    W_LIT(o, ", \"attributes\": ");
    w_str(o, v->attributes);
    if (v->type == CS_CHANNEL_PRIVATE)
        W_LIT(o, ", \"type\": \"private\"");
    else
        W_LIT(o, ", \"type\": \"public\"");
    W_LIT(o, ", \"date_created\": ");
    w_date(o, v->date_created);
    W_LIT(o, ", \"date_updated\": ");
    w_date(o, v->date_updated);
    W_LIT(o, ", \"created_by\": ");
    w_str(o, v->created_by);
    W_LIT(o, ", \"members_count\": ");
    w_u64(o, v->members_count);
    W_LIT(o, ", \"messages_count\": ");
    w_u64(o, v->messages_count);
    W_LIT(o, ", \"url\": \"");
    w_channel_path(o, s, v->service_sid, v->sid);
    W_LIT(o, "\", \"links\": {");
    static const char *const links[] = {"members", "messages", "invites",
                                        "webhooks"};
    static const char *const paths[] = {"/Members", "/Messages", "/Invites",
                                        "/Webhooks"};
    for (int i = 0; i < 4; i++) {
        W_LIT(o, "\"");
        w_cstr(o, links[i]);
        W_LIT(o, "\": \"");
        w_channel_path(o, s, v->service_sid, v->sid);
        w_cstr(o, paths[i]);
        W_LIT(o, "\", ");
    }
    W_LIT(o, "\"last_message\": ");
    if (v->has_last_message) {
        W_LIT(o, "\"");
        w_channel_path(o, s, v->service_sid, v->sid);
        W_LIT(o, "/Messages/");
        w_raw(o, v->last_message_sid, CS__SID_STRLEN);
        W_LIT(o, "\"");
    } else {
        W_LIT(o, "null");
    }
    W_LIT(o, "}}");
}

cs_err cs_render_channel(const cs_store *s, const cs_channel_view *v,
                         cs_buf *b) {
    CS__REQUIRE(s);
    CS__REQUIRE(v);
    CS__REQUIRE(b);
    w o = {b, CS_OK};
    size_t start = b->len;
    w_channel(&o, s, v);
    return finish(&o, start);
}

/* Media follows the Media Content Service's shape; its URL is rooted at the
 * store's base URL under /v1, where a local server serves it. */
static void w_media_path(w *o, const cs_store *s, const cs_media_view *v) {
    w_raw(o, s->base_url, s->base_len);
    W_LIT(o, "/v1/Services/");
    w_raw(o, v->service_sid, CS__SID_STRLEN);
    W_LIT(o, "/Media/");
    w_raw(o, v->sid, CS__SID_STRLEN);
}

static void w_opt_sid(w *o, const char *sid) {
    if (sid[0])
        w_sid(o, sid);
    else
        W_LIT(o, "null");
}

cs_err cs_render_media(const cs_store *s, const cs_media_view *v, cs_buf *b) {
    CS__REQUIRE(s);
    CS__REQUIRE(v);
    CS__REQUIRE(b);
    w o = {b, CS_OK};
    size_t start = b->len;
    W_LIT(&o, "{\"sid\": ");
    w_sid(&o, v->sid);
    W_LIT(&o, ", \"account_sid\": ");
    w_sid(&o, v->account_sid);
    W_LIT(&o, ", \"service_sid\": ");
    w_sid(&o, v->service_sid);
    W_LIT(&o, ", \"date_created\": ");
    w_date(&o, v->date_created);
    W_LIT(&o, ", \"date_updated\": ");
    w_date(&o, v->date_updated);
    W_LIT(&o, ", \"channel_sid\": ");
    w_opt_sid(&o, v->channel_sid);
    W_LIT(&o, ", \"message_sid\": ");
    w_opt_sid(&o, v->message_sid);
    W_LIT(&o, ", \"size\": ");
    w_u64(&o, v->size);
    W_LIT(&o, ", \"content_type\": ");
    w_str(&o, v->content_type);
    W_LIT(&o, ", \"filename\": ");
    w_str(&o, v->filename);
    W_LIT(&o, ", \"author\": \"sender\", \"url\": \"");
    w_media_path(&o, s, v);
    W_LIT(&o, "\", \"links\": {\"content\": \"");
    w_media_path(&o, s, v);
    W_LIT(&o, "/Content\"}}");
    return finish(&o, start);
}

/* ---- pages -------------------------------------------------------------- */

static void w_list_path(w *o, const cs_store *s, const cs_page *pg) {
    switch (pg->kind) {
    case CS_PAGE_SERVICES: w_service_path(o, s, NULL); break;
    case CS_PAGE_CHANNELS:
        w_channel_path(o, s, pg->priv_service_sid, NULL);
        break;
    default:
        w_channel_path(o, s, pg->priv_service_sid, pg->priv_channel_sid);
        W_LIT(o, "/Messages");
    }
}

/* A page URL: filters first, then PageSize, Page and PageToken. */
static void w_page_url(w *o, const cs_store *s, const cs_page *pg,
                       uint64_t page, const char *token) {
    W_LIT(o, "\"");
    w_list_path(o, s, pg);
    W_LIT(o, "?");
    if (pg->kind == CS_PAGE_CHANNELS && pg->priv_types_given) {
        if (pg->priv_types & CS_CHANNEL_PUBLIC) W_LIT(o, "Type=public&");
        if (pg->priv_types & CS_CHANNEL_PRIVATE) W_LIT(o, "Type=private&");
    }
    if (pg->order_given) {
        if (pg->descending)
            W_LIT(o, "Order=desc&");
        else
            W_LIT(o, "Order=asc&");
    }
    W_LIT(o, "PageSize=");
    w_u64(o, pg->page_size);
    W_LIT(o, "&Page=");
    w_u64(o, page);
    if (token && token[0]) {
        W_LIT(o, "&PageToken=");
        w_cstr(o, token);
    }
    W_LIT(o, "\"");
}

static const char *page_key(const cs_page *pg) {
    return pg->kind == CS_PAGE_SERVICES   ? "services"
           : pg->kind == CS_PAGE_CHANNELS ? "channels"
                                          : "messages";
}

static void w_meta(w *o, const cs_store *s, const cs_page *pg) {
    W_LIT(o, "\"meta\": {\"page\": ");
    w_u64(o, pg->page);
    W_LIT(o, ", \"page_size\": ");
    w_u64(o, pg->page_size);
    W_LIT(o, ", \"first_page_url\": ");
    w_page_url(o, s, pg, 0, NULL);
    W_LIT(o, ", \"previous_page_url\": ");
    if (pg->prev_token[0])
        w_page_url(o, s, pg, pg->page - 1, pg->prev_token);
    else
        W_LIT(o, "null");
    W_LIT(o, ", \"url\": ");
    w_page_url(o, s, pg, pg->page, pg->token);
    W_LIT(o, ", \"next_page_url\": ");
    if (pg->next_token[0])
        w_page_url(o, s, pg, pg->page < CS_PAGE_MAX ? pg->page + 1 : pg->page,
                   pg->next_token);
    else
        W_LIT(o, "null");
    W_LIT(o, ", \"key\": \"");
    w_cstr(o, page_key(pg));
    W_LIT(o, "\"}");
}

static void w_items(w *o, const cs_store *s, cs_page *pg) {
    W_LIT(o, "\"");
    w_cstr(o, page_key(pg));
    W_LIT(o, "\": [");
    cs_page_rewind(pg);
    for (size_t i = 0; !o->err; i++) {
        union {
            cs_service_view sv;
            cs_channel_view cv;
            cs_message_view mv;
        } u;
        bool more = pg->kind == CS_PAGE_SERVICES ? cs_page_next_service(s, pg, &u.sv)
                    : pg->kind == CS_PAGE_CHANNELS
                        ? cs_page_next_channel(s, pg, &u.cv)
                        : cs_page_next_message(s, pg, &u.mv);
        if (!more) break;
        if (i) W_LIT(o, ", ");
        if (pg->kind == CS_PAGE_SERVICES)
            w_service(o, s, &u.sv);
        else if (pg->kind == CS_PAGE_CHANNELS)
            w_channel(o, s, &u.cv);
        else
            w_message(o, s, &u.mv);
    }
    W_LIT(o, "]");
    cs_page_rewind(pg);
}

cs_err cs_render_page(const cs_store *s, cs_page *pg, cs_buf *b) {
    CS__REQUIRE(s);
    CS__REQUIRE(pg);
    CS__REQUIRE(b);
    w o = {b, CS_OK};
    size_t start = b->len;
    /* A page that outlived a change: nothing is read, nothing written. */
    if (pg->priv_commit != s->commits) {
        pg->error = CS_E_PAGE_STALE;
        return CS_E_PAGE_STALE;
    }
    W_LIT(&o, "{");
    if (pg->kind == CS_PAGE_MESSAGES) { /* as in the Messages examples */
        w_meta(&o, s, pg);
        W_LIT(&o, ", ");
        w_items(&o, s, pg);
    } else {
        w_items(&o, s, pg);
        W_LIT(&o, ", ");
        w_meta(&o, s, pg);
    }
    W_LIT(&o, "}");
    return finish(&o, start);
}
