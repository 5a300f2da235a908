/* The payloads of a shard's stream (docs/replication.md) applied by a
 * follower, in process and without NATS: replica_apply_frames (a `rec`
 * message: record frames and media frames) and replica_load_media (the
 * media frames after a snapshot's image), both in server/replica.c.
 *
 * An input is two byte strings: a two-byte little-endian length L, then L
 * bytes of a `rec` message's frames, then the rest as a snapshot's media
 * frames. They are applied to a fresh follower store per input, made with
 * the options of the writer that produced the seeds (seed, clock, SID tag
 * 1), and a small media byte store (64 KiB, so full is reached too)
 * with the server's media observer (bytes leave with their item).
 *
 * Checks: nothing crashes or leaks (ASan, UBSan, LeakSanitizer);
 * cs_store_check passes after each step; every media item whose bytes the
 * media store holds is a media item of the store, with exactly that many
 * bytes (a frame of another length is refused); an input that applied cleanly applied every record frame it
 * holds (the store's commit count equals the last record's seq).
 *
 * Seeds: built with -DFUZZ_REPLICA_SEEDS this file is make_replica_seeds,
 * which runs a writer store through a script of calls with a journal hook
 * that frames its records as the primary's publisher does, and writes
 * corpus/replica/seed-*: the whole history, prefixes of it, and histories
 * with a snapshot media section. */
#include "fuzz.h"
#include "replica.h"
#include "server.h"

#include <string.h>

#define FRAME_HEADER 5
#define SIDLEN 34

static int64_t fixed_clock(void *ctx) {
    (void)ctx;
    return 1700000000;
}

static void options(cs_options *o) {
    cs_options d = CS_OPTIONS_INIT;
    *o = d;
    o->account_sid = "AC0123456789abcdef0123456789abcdef";
    o->use_seed = true;
    o->seed = 7;
    o->clock = fixed_clock;
    o->use_sid_tag = true;
    o->sid_tag = 1;
}

#ifndef FUZZ_REPLICA_SEEDS

typedef struct media_check {
    const cs_store *s;
    int bad;
} media_check;

static void check_media(void *ctx, const char *sid, const char *service_sid,
                        const char *data, size_t n, int64_t created) {
    (void)data;
    (void)created;
    media_check *mc = ctx;
    cs_media_view v;
    if (cs_media_fetch(mc->s, cs_str_c(service_sid), cs_str_c(sid), &v) != CS_OK ||
        v.size != n)
        mc->bad = 1;
}

static void check(server *sv, const char *step) {
    cs_err ce = cs_store_check(sv->store);
    FZ_CHECK(ce == CS_OK, "cs_store_check after %s: %s", step, cs_err_name(ce));
    media_check mc = {sv->store, 0};
    media_store_each(sv->media, check_media, &mc);
    FZ_CHECK(!mc.bad, "media bytes without their media item after %s", step);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t l = size >= 2 ? (size_t)data[0] | (size_t)data[1] << 8 : 0;
    const uint8_t *p = size >= 2 ? data + 2 : data;
    size_t n = size >= 2 ? size - 2 : 0;
    if (l > n) l = n;
    uint8_t *frames = (uint8_t *)fz_dup(p, l);
    uint8_t *media = (uint8_t *)fz_dup(p + l, n - l);

    cs_options o;
    options(&o);
    server sv;
    memset(&sv, 0, sizeof sv);
    FZ_CHECK(cs_store_new(&o, &sv.store) == CS_OK, "cs_store_new");
    sv.media = media_store_new(64 * 1024);
    FZ_CHECK(sv.media != NULL, "media_store_new");
    /* as a follower has it: bytes leave with their media item */
    FZ_CHECK(media_observe(&sv) == 0, "media_observe");

    uint64_t last = 0;
    char why[400];
    int rc = replica_apply_frames(&sv, frames, l, &last, why, sizeof why);
    FZ_CHECK(rc == 0 || why[0], "a refusal without a reason");
    check(&sv, "the frames");
    if (rc == 0 && last) {
        cs_store_stats st;
        cs_store_stats_get(sv.store, &st);
        FZ_CHECK(st.commits == last, "commits %llu after records up to %llu",
                 (unsigned long long)st.commits, (unsigned long long)last);
    }
    rc = replica_load_media(&sv, media, n - l, why, sizeof why);
    FZ_CHECK(rc == 0 || why[0], "a refusal without a reason");
    check(&sv, "the media section");

    media_store_free(sv.media);
    cs_store_free(sv.store);
    free(frames);
    free(media);
    return 0;
}

#else /* make_replica_seeds DIR */

#include <errno.h>
#include <sys/stat.h>

typedef struct capture {
    uint8_t *p;
    size_t n, cap;
    const char *media; /* an upload's bytes: framed after its record */
    size_t media_n;
} capture;

static void put(capture *c, uint8_t type, const void *d, size_t n) {
    if (c->n + FRAME_HEADER + n > c->cap) {
        c->cap = (c->n + FRAME_HEADER + n) * 2;
        c->p = realloc(c->p, c->cap);
        if (!c->p) abort();
    }
    uint8_t *f = c->p + c->n;
    f[0] = type;
    for (int i = 0; i < 4; i++) f[1 + i] = (uint8_t)(n >> (8 * i));
    memcpy(f + FRAME_HEADER, d, n);
    c->n += FRAME_HEADER + n;
}

static int hook(void *ctx, uint64_t seq, const void *rec, size_t len) {
    (void)seq;
    capture *c = ctx;
    put(c, 'R', rec, len);
    cs_journal_info info;
    if (c->media && !cs_journal_record_info(rec, len, &info, NULL) &&
        info.op == CS_JOURNAL_MEDIA_CREATE)
        put(c, 'M', c->media, c->media_n);
    return 0;
}

static void write_seed(const char *dir, const char *name, const uint8_t *frames,
                       size_t fn, const uint8_t *media, size_t mn) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (fn > 0xffff) fn = 0xffff; /* the length prefix's limit */
    uint8_t h[2] = {(uint8_t)fn, (uint8_t)(fn >> 8)};
    fwrite(h, 1, 2, f);
    fwrite(frames, 1, fn, f);
    if (mn) fwrite(media, 1, mn, f);
    fclose(f);
}

#define OK(x) do { if ((x) != CS_OK) { fprintf(stderr, "%s failed\n", #x); exit(1); } } while (0)

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_replica_seeds CORPUS_DIR/replica\n");
        return 2;
    }
    mkdir(argv[1], 0777);
    cs_options o;
    options(&o);
    cs_store *w;
    OK(cs_store_new(&o, &w));
    capture c = {0};
    OK(cs_store_set_journal(w, hook, &c));
    cs_service_view sv;
    OK(cs_service_create(w, cs_str_c("replicated"), &sv));
    char is[CS_SID_BUFSZ];
    snprintf(is, sizeof is, "%s", sv.sid);
    size_t after_service = c.n;
    cs_channel_params cp = {0};
    cp.unique_name = cs_str_c("general");
    cp.friendly_name = cs_str_c("General");
    cs_channel_view cv;
    OK(cs_channel_create(w, cs_str_c(is), &cp, &cv));
    char ch[CS_SID_BUFSZ];
    snprintf(ch, sizeof ch, "%s", cv.sid);
    c.media = "hello, media";
    c.media_n = strlen(c.media);
    cs_media_view mv;
    OK(cs_media_create(w, cs_str_c(is), cs_str_c("text/plain"), cs_str_c("a.txt"),
                       c.media_n, &mv));
    char me[CS_SID_BUFSZ];
    snprintf(me, sizeof me, "%s", mv.sid);
    c.media = NULL;
    size_t after_media = c.n;
    char msids[4][CS_SID_BUFSZ];
    for (int i = 0; i < 4; i++) {
        cs_message_params mp = {0};
        char body[32];
        snprintf(body, sizeof body, "message %d", i);
        mp.body = cs_str_c(body);
        mp.from = cs_str_c("alice");
        if (i == 3) mp.media_sid = cs_str_c(me);
        cs_message_view m;
        OK(cs_message_create(w, cs_str_c(is), cs_str_c(ch), &mp, &m));
        snprintf(msids[i], CS_SID_BUFSZ, "%s", m.sid);
    }
    cs_message_params up = {0};
    up.body = cs_str_c("edited");
    up.attributes = cs_str_c("{\"k\": 1}");
    cs_message_view m;
    OK(cs_message_update(w, cs_str_c(is), cs_str_c(ch), cs_str_c(msids[1]), &up, &m));
    OK(cs_message_delete(w, cs_str_c(is), cs_str_c(ch), cs_str_c(msids[0]), (cs_str){NULL, 0}));
    size_t after_messages = c.n;
    cs_service_params sp = {0};
    sp.friendly_name = cs_str_c("renamed");
    OK(cs_service_update_with(w, cs_str_c(is), &sp, &sv));
    cs_channel_view c2;
    cs_channel_params cp2 = {0};
    cp2.friendly_name = cs_str_c("second");
    OK(cs_channel_create(w, cs_str_c(is), &cp2, &c2));
    OK(cs_channel_delete(w, cs_str_c(is), cs_str_c(c2.sid), (cs_str){NULL, 0}));

    /* a snapshot's media section for the item: [IS][ME][date][bytes] */
    uint8_t msec[FRAME_HEADER + 2 * SIDLEN + 8 + 12];
    size_t body_n = 2 * SIDLEN + 8 + 12;
    msec[0] = 'M';
    for (int i = 0; i < 4; i++) msec[1 + i] = (uint8_t)(body_n >> (8 * i));
    memcpy(msec + FRAME_HEADER, is, SIDLEN);
    memcpy(msec + FRAME_HEADER + SIDLEN, me, SIDLEN);
    for (int i = 0; i < 8; i++) msec[FRAME_HEADER + 2 * SIDLEN + i] = (uint8_t)(1700000000ull >> (8 * i));
    memcpy(msec + FRAME_HEADER + 2 * SIDLEN + 8, "hello, snap!", 12);

    write_seed(argv[1], "seed-all", c.p, c.n, NULL, 0);
    write_seed(argv[1], "seed-service", c.p, after_service, NULL, 0);
    write_seed(argv[1], "seed-media", c.p, after_media, NULL, 0);
    write_seed(argv[1], "seed-messages", c.p, after_messages, NULL, 0);
    write_seed(argv[1], "seed-media-snapshot", c.p, after_media, msec, sizeof msec);
    write_seed(argv[1], "seed-all-media-snapshot", c.p, c.n, msec, sizeof msec);
    write_seed(argv[1], "seed-empty", NULL, 0, NULL, 0);
    printf("wrote 7 seeds (%zu bytes of frames) to %s\n", c.n, argv[1]);
    cs_store_free(w);
    free(c.p);
    return 0;
}

#endif
