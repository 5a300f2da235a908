/* Page tokens as untrusted input.
 *
 * A fixed store (two services, four channels of both types, a dozen
 * messages, a few deleted) is built once. Walking every list in both orders
 * with several page sizes, forwards and back, collects every token the store
 * issues, each tagged with the list and order it was issued for, and the
 * page it yields (page size 2, Page 1). A second store with another seed
 * issues "foreign" tokens the same way.
 *
 * Each input picks a list, an Order (absent / asc / desc) and a token: raw
 * input bytes, an issued or foreign token as is, or one with a byte changed,
 * its case flipped, truncated or extended. Whatever the token:
 *  - CS_OK exactly when it is a token this store issued for this list and
 *    this direction (services and channels have one direction: Order is a
 *    messages-only parameter); otherwise CS_E_BAD_PAGE_TOKEN;
 *  - an accepted token gives the same page as when it was issued, echoes the
 *    token, iterates its items, and renders as valid JSON;
 *  - never a crash or an out-of-bounds read (exact-size copies, ASan). */
#include "fuzz.h"
#include "internal.h"

#include <string.h>

#define MAX_TOKENS 1024
#define CHECK_PS "2"
#define CHECK_PAGE "1"

enum { L_SERVICES, L_CHAN_A, L_CHAN_B, L_MSG_1, L_MSG_2, L_MSG_3, L_MSG_4,
       L_MSG_5, N_LISTS };

typedef struct page_sig {
    size_t count;
    char items[8][CS_SID_BUFSZ];
    char next[CS_TOKEN_BUFSZ], prev[CS_TOKEN_BUFSZ];
} page_sig;

typedef struct issued {
    char tok[CS_TOKEN_BUFSZ];
    int list;
    bool desc;
    page_sig sig; /* with page size 2, Page 1 */
} issued;

typedef struct world {
    cs_store *s;
    char svc[2][CS_SID_BUFSZ];
    char chan[5][CS_SID_BUFSZ]; /* messages lists L_MSG_1.. */
    int chan_svc[5];
    issued tok[MAX_TOKENS];
    size_t ntok;
} world;

static world W, F; /* this store, and a foreign one */

static int64_t fixed_clock(void *ctx) {
    (void)ctx;
    return INT64_C(1458851877);
}

static void must(cs_err e, const char *what) {
    if (e) {
        fprintf(stderr, "setup: %s: %s\n", what, cs_err_name(e));
        abort();
    }
}

static bool is_messages(int list) { return list >= L_MSG_1; }

static cs_err do_list(world *w, int list, cs_str order, cs_str ps, cs_str page,
                      cs_str token, cs_page *pg) {
    static const cs_str types[2] = {{"public", 6}, {"private", 7}};
    cs_page_params q = {0};
    q.order = order;
    q.page_size = ps;
    q.page = page;
    q.page_token = token;
    q.types = types;
    q.n_types = 2;
    switch (list) {
    case L_SERVICES:
        return cs_service_list(w->s, &q, pg);
    case L_CHAN_A:
    case L_CHAN_B:
        return cs_channel_list(w->s, cs_str_c(w->svc[list - L_CHAN_A]), &q, pg);
    default: {
        int c = list - L_MSG_1;
        return cs_message_list(w->s, cs_str_c(w->svc[w->chan_svc[c]]),
                               cs_str_c(w->chan[c]), &q, pg);
    }
    }
}

/* Iterates the page into sig; every item must come out. */
static void page_signature(const world *w, cs_page *pg, page_sig *sig) {
    memset(sig, 0, sizeof *sig);
    sig->count = pg->count;
    size_t k = 0;
    for (;;) {
        const char *sid = NULL;
        cs_service_view sv;
        cs_channel_view cv;
        cs_message_view mv;
        if (pg->kind == CS_PAGE_SERVICES && cs_page_next_service(w->s, pg, &sv))
            sid = sv.sid;
        else if (pg->kind == CS_PAGE_CHANNELS &&
                 cs_page_next_channel(w->s, pg, &cv))
            sid = cv.sid;
        else if (pg->kind == CS_PAGE_MESSAGES &&
                 cs_page_next_message(w->s, pg, &mv))
            sid = mv.sid;
        if (!sid) break;
        FZ_CHECK(k < 8, "page longer than its size");
        memcpy(sig->items[k++], sid, CS_SID_BUFSZ);
    }
    FZ_CHECK(k == pg->count, "iterated %zu items of %zu", k, pg->count);
    memcpy(sig->next, pg->next_token, CS_TOKEN_BUFSZ);
    memcpy(sig->prev, pg->prev_token, CS_TOKEN_BUFSZ);
}

static issued *find_token(world *w, const char *t, size_t n) {
    for (size_t i = 0; i < w->ntok; i++)
        if (strlen(w->tok[i].tok) == n && memcmp(w->tok[i].tok, t, n) == 0)
            return &w->tok[i];
    return NULL;
}

static void record(world *w, const char *t, int list, bool desc) {
    if (!t[0]) return;
    issued *old = find_token(w, t, strlen(t));
    if (old) {
        FZ_CHECK(old->list == list && old->desc == desc,
                 "one token issued for two lists: %s", t);
        return;
    }
    FZ_CHECK(w->ntok < MAX_TOKENS, "too many tokens");
    issued *x = &w->tok[w->ntok++];
    memset(x, 0, sizeof *x);
    memcpy(x->tok, t, strlen(t) + 1);
    x->list = list;
    x->desc = desc;
}

static void walk(world *w, int list, bool desc) {
    cs_str order = desc ? cs_str_c("desc") : CS_STR_ABSENT;
    static const char *const sizes[] = {"1", "2", "3", "5"};
    for (size_t z = 0; z < 4; z++) {
        char token[CS_TOKEN_BUFSZ] = "";
        unsigned page = 0;
        for (int guard = 0; guard < 64; guard++) {
            char pnum[16];
            snprintf(pnum, sizeof pnum, "%u", page);
            cs_page pg;
            must(do_list(w, list, order, cs_str_c(sizes[z]), cs_str_c(pnum),
                         token[0] ? cs_str_c(token) : CS_STR_ABSENT, &pg),
                 "walk forward");
            record(w, pg.next_token, list, desc);
            record(w, pg.prev_token, list, desc);
            if (!pg.next_token[0]) break;
            memcpy(token, pg.next_token, sizeof token);
            page++;
        }
        /* and back to the start from the last page */
        for (int guard = 0; guard < 64 && page > 0 && token[0]; guard++) {
            char pnum[16];
            snprintf(pnum, sizeof pnum, "%u", page);
            cs_page pg;
            must(do_list(w, list, order, cs_str_c(sizes[z]), cs_str_c(pnum),
                         cs_str_c(token), &pg),
                 "walk back");
            record(w, pg.next_token, list, desc);
            record(w, pg.prev_token, list, desc);
            memcpy(token, pg.prev_token, sizeof token);
            page--;
        }
    }
}

static void build(world *w, uint64_t seed) {
    cs_options o = CS_OPTIONS_INIT;
    o.use_seed = true;
    o.seed = seed;
    o.clock = fixed_clock;
    must(cs_store_new(&o, &w->s), "store");
    cs_service_view sv;
    for (int i = 0; i < 2; i++) {
        must(cs_service_create(w->s, cs_str_c(i ? "B" : "A"), &sv), "service");
        memcpy(w->svc[i], sv.sid, CS_SID_BUFSZ);
    }
    cs_service_view tmp;
    must(cs_service_create(w->s, cs_str_c("gone"), &tmp), "service");
    must(cs_service_create(w->s, cs_str_c("C"), &sv), "service");
    must(cs_service_delete(w->s, cs_str_c(tmp.sid)), "service delete");
    static const char *const types[5] = {"public", "private", "public",
                                         "private", "public"};
    static const int svcs[5] = {0, 0, 1, 1, 0};
    static const int nmsg[5] = {12, 3, 7, 0, 1};
    for (int c = 0; c < 5; c++) {
        cs_channel_params p = {0};
        p.type = cs_str_c(types[c]);
        cs_channel_view cv;
        must(cs_channel_create(w->s, cs_str_c(w->svc[svcs[c]]), &p, &cv),
             "channel");
        memcpy(w->chan[c], cv.sid, CS_SID_BUFSZ);
        w->chan_svc[c] = svcs[c];
        for (int m = 0; m < nmsg[c]; m++) {
            cs_message_params mp = {0};
            mp.body = cs_str_c("hi");
            cs_message_view mv;
            must(cs_message_create(w->s, cs_str_c(w->svc[svcs[c]]),
                                   cs_str_c(cv.sid), &mp, &mv),
                 "message");
            if (m % 4 == 1)
                must(cs_message_delete(w->s, cs_str_c(w->svc[svcs[c]]),
                                       cs_str_c(cv.sid), cs_str_c(mv.sid),
                                       CS_STR_ABSENT),
                     "message delete");
        }
    }
    for (int list = 0; list < N_LISTS; list++) {
        walk(w, list, false);
        if (is_messages(list)) walk(w, list, true);
    }
    /* What each token gives, with the fixed check parameters. */
    for (size_t i = 0; i < w->ntok; i++) {
        issued *x = &w->tok[i];
        cs_page pg;
        must(do_list(w, x->list, x->desc ? cs_str_c("desc") : cs_str_c("asc"),
                     cs_str_c(CHECK_PS), cs_str_c(CHECK_PAGE),
                     cs_str_c(x->tok), &pg),
             "token replay");
        page_signature(w, &pg, &x->sig);
    }
    FZ_CHECK(cs_store_check(w->s) == CS_OK, "store check");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!W.s) {
        build(&W, 1);
        build(&F, 2);
    }
    if (size < 2) return 0;
    int list = data[0] % N_LISTS;
    int order = (data[0] / N_LISTS) % 3; /* absent, asc, desc */
    int mode = data[1] % 8;
    const uint8_t *rest = data + 2;
    size_t nrest = size - 2;

    char buf[4096];
    size_t n = 0;
    const world *src = mode == 6 ? &F : &W;
    const issued *base =
        nrest >= 1 && src->ntok ? &src->tok[rest[0] % src->ntok] : NULL;
    if (mode == 0 || !base) { /* raw bytes */
        n = nrest < sizeof buf ? nrest : sizeof buf;
        memcpy(buf, rest, n);
    } else {
        n = strlen(base->tok);
        memcpy(buf, base->tok, n);
        size_t pos = nrest >= 2 ? rest[1] % (n + 1) : 0;
        uint8_t val = nrest >= 3 ? rest[2] : 1;
        switch (mode) {
        case 1: /* one byte changed */
            if (pos < n) buf[pos] = (char)(buf[pos] ^ (val ? val : 1));
            break;
        case 2: /* truncated */
            n = pos;
            break;
        case 3: /* extended with the remaining input */
            for (size_t i = 3; i < nrest && n < sizeof buf; i++)
                buf[n++] = (char)rest[i];
            break;
        case 4: /* case flipped */
            if (pos < n && ((buf[pos] | 0x20) >= 'a' && (buf[pos] | 0x20) <= 'z'))
                buf[pos] = (char)(buf[pos] ^ 0x20);
            break;
        default: /* 5, 7: as issued; 6: issued by the foreign store */
            break;
        }
    }

    char *tok = fz_dup(buf, n);
    bool desc = is_messages(list) && order == 2;
    cs_str ord = order == 0 ? CS_STR_ABSENT
                 : order == 1 ? cs_str_c("asc")
                              : cs_str_c("desc");
    cs_page pg;
    cs_err e = do_list(&W, list, ord, cs_str_c(CHECK_PS), cs_str_c(CHECK_PAGE),
                       (cs_str){tok, n}, &pg);
    const issued *x = find_token(&W, tok, n);
    bool valid = x && x->list == list && x->desc == desc;
    FZ_CHECK(e == (valid ? CS_OK : CS_E_BAD_PAGE_TOKEN),
             "list %d order %d token '%.*s': %s, expected %s", list, order,
             (int)n, tok, cs_err_name(e), valid ? "OK" : "BAD_PAGE_TOKEN");
    if (valid) {
        FZ_CHECK(strlen(pg.token) == n && memcmp(pg.token, tok, n) == 0,
                 "token not echoed");
        page_sig sig;
        page_signature(&W, &pg, &sig);
        FZ_CHECK(memcmp(&sig, &x->sig, sizeof sig) == 0,
                 "token %s gives another page than when issued", x->tok);
        cs_buf b;
        cs_buf_init(&b, NULL);
        FZ_CHECK(cs_render_page(W.s, &pg, &b) == CS_OK, "render");
        FZ_CHECK(cs__json_valid(b.data, b.len), "rendered page is not JSON");
        cs_buf_free(&b);
    }
    free(tok);
    return 0;
}
