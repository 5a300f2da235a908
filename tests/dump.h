/* A full, canonical dump of a store through the public listing calls and the
 * JSON renderer (plus the media registry, read directly): two stores with the
 * same content give byte-identical dumps. */
#ifndef CHATSTORE_TESTS_DUMP_H
#define CHATSTORE_TESTS_DUMP_H

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

static void dump_fail_(const char *what, cs_err e) {
    fprintf(stderr, "dump: %s failed: %s\n", what, cs_err_name(e));
    abort();
}

static void dump_messages_(cs_store *s, const char *is, const char *ch,
                           cs_buf *out) {
    char token[CS_TOKEN_BUFSZ] = "";
    for (;;) {
        cs_page_params q = {0};
        q.page_size = cs_str_c("1000");
        if (token[0]) q.page_token = cs_str_c(token);
        cs_page pg;
        cs_err e = cs_message_list(s, cs_str_c(is), cs_str_c(ch), &q, &pg);
        if (e) dump_fail_("message list", e);
        cs_message_view v;
        while (cs_page_next_message(s, &pg, &v)) {
            if ((e = cs_render_message(s, &v, out))) dump_fail_("render", e);
        }
        if (!pg.next_token[0]) break;
        memcpy(token, pg.next_token, sizeof token);
    }
}

static void dump_channels_(cs_store *s, const char *is, cs_buf *out) {
    cs_str types[2] = {cs_str_c("public"), cs_str_c("private")};
    char token[CS_TOKEN_BUFSZ] = "";
    for (;;) {
        cs_page_params q = {0};
        q.page_size = cs_str_c("1000");
        q.types = types;
        q.n_types = 2;
        if (token[0]) q.page_token = cs_str_c(token);
        cs_page pg;
        cs_err e = cs_channel_list(s, cs_str_c(is), &q, &pg);
        if (e) dump_fail_("channel list", e);
        cs_channel_view v;
        while (cs_page_next_channel(s, &pg, &v)) {
            if ((e = cs_render_channel(s, &v, out))) dump_fail_("render", e);
            char ch[CS_SID_BUFSZ];
            memcpy(ch, v.sid, CS_SID_BUFSZ);
            dump_messages_(s, is, ch, out);
        }
        if (!pg.next_token[0]) break;
        memcpy(token, pg.next_token, sizeof token);
    }
}

static void dump_media_(cs_store *s, const char *is, cs_buf *out) {
    const cs_service *v = cs__service_find(s, cs_str_c(is));
    for (const cs_media *m = v->media; m; m = m->hh.next) {
        cs_media_view mv;
        cs__media_view(s, m, &mv);
        cs_err e = cs_render_media(s, &mv, out);
        if (e) dump_fail_("render media", e);
    }
}

/* Appends the dump to out (a libc-backed buffer). */
static void dump_store(cs_store *s, cs_buf *out) {
    char token[CS_TOKEN_BUFSZ] = "";
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    char line[200];
    int n = snprintf(line, sizeof line, "services=%zu channels=%zu messages=%zu "
                     "media=%zu identities=%zu sid_counter=%llu serial=%lld "
                     "commits=%llu epoch=%lu\n",
                     st.services, st.channels, st.messages, st.media,
                     st.identities, (unsigned long long)s->sid_counter,
                     (long long)s->serial, (unsigned long long)s->commits,
                     (unsigned long)cs_store_epoch(s));
    cs_buf_init(out, NULL);
    if (cs__buf_grow(out, (size_t)n)) abort();
    memcpy(out->data, line, (size_t)n);
    out->len = (size_t)n;
    out->data[n] = '\0';
    for (;;) {
        cs_page_params q = {0};
        q.page_size = cs_str_c("1000");
        if (token[0]) q.page_token = cs_str_c(token);
        cs_page pg;
        cs_err e = cs_service_list(s, &q, &pg);
        if (e) dump_fail_("service list", e);
        cs_service_view v;
        while (cs_page_next_service(s, &pg, &v)) {
            if ((e = cs_render_service(s, &v, out))) dump_fail_("render", e);
            char is[CS_SID_BUFSZ];
            memcpy(is, v.sid, CS_SID_BUFSZ);
            dump_channels_(s, is, out);
            dump_media_(s, is, out);
        }
        if (!pg.next_token[0]) break;
        memcpy(token, pg.next_token, sizeof token);
    }
}

#endif
