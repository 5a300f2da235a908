/* Writes the seed inputs of fuzz_snapshot and fuzz_journal:
 * DIR/snapshot/seed-* and DIR/journal/seed-* (the other seed-* files of
 * those directories are removed first; other names are left alone).
 *
 * Usage: make_durable_seeds DIR     (DIR is normally fuzz/corpus)
 *
 * Snapshot seeds are real images, written by cs_snapshot_save, of the
 * scripted session of durable.h stopped at several points (empty, services
 * and media only, channels, messages with edits and deletes, just before
 * and after the store clear, the whole session; then a wider store whose
 * messages span three SID epochs), some re-blocked so that
 * each block holds one or two records (the writer puts everything in one
 * 16 KiB block), each behind the harness's three setting bytes: plain, a
 * byte at a time, varying chunks, checksums fixed up, a failing read at the
 * end, an allocation failure.
 *
 * Journal seeds are command sequences for fuzz_journal.c: the whole session
 * applied; its first k records (applied, or jumped to through the session's
 * snapshot) followed by the next one changed in one
 * field (each kind of field and string, the operation, a raw byte edit with
 * and without the CRC fixed); real records given as raw bytes; records out
 * of order (skipped, gap); an allocation failure and a refusing hook; the
 * whole session followed by a new SID epoch and creates in it, as raw
 * records (the session itself has no epoch record). */
#include "durable.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

static const char *ROOT;

static void clear_seeds(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", ROOT, name);
    mkdir(path, 0777);
    DIR *d = opendir(path);
    FZ_CHECK(d, "cannot open %s: %s", path, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "seed-", 5)) continue;
        char f[4096 + 256];
        snprintf(f, sizeof f, "%s/%s", path, e->d_name);
        FZ_CHECK(remove(f) == 0, "cannot remove %s", f);
    }
    closedir(d);
}

static unsigned nwritten;

static void write_seed(const char *name, const char *tag, const void *p,
                       size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/seed-%s", ROOT, name, tag);
    FILE *f = fopen(path, "wb");
    FZ_CHECK(f, "cannot write %s", path);
    FZ_CHECK(fwrite(p, 1, n, f) == n && fclose(f) == 0, "write %s", path);
    nwritten++;
}

/* ---- snapshots ---------------------------------------------------------- */

/* The image of the session stopped after `stop` changes (0: all). */
static void image_at(size_t stop, dz_bytes *img) {
    cs_store *s = NULL;
    cs_options o = dz_options(NULL);
    dz_must(cs_store_new(&o, &s), "store");
    dz_now = DZ_T0;
    if (stop != (size_t)-1) dz_script(s, stop);
    img->n = 0;
    dz_must(cs_snapshot_save(s, dz_write, img), "save");
    cs_store_free(s);
}

/* The whole session, then a service with two channels of 50 messages each
 * (some deleted, some edited), a new SID epoch before the second channel
 * and another halfway through it: an image of about 10 KiB whose messages
 * have epochs 0, 1 and 2. */
static void wide_image(dz_bytes *img) {
    cs_store *s = NULL;
    cs_options o = dz_options(NULL);
    dz_must(cs_store_new(&o, &s), "store");
    dz_now = DZ_T0;
    dz_script(s, 0);
    cs_service_view sv;
    dz_must(cs_service_create(s, DZ_S("Wide"), &sv), "service");
    char is[CS_SID_BUFSZ];
    memcpy(is, sv.sid, sizeof is);
    for (int c = 0; c < 2; c++) {
        cs_channel_params cp = {0};
        cp.unique_name = DZ_S(c ? "wide-b" : "wide-a");
        cp.type_value = c ? CS_CHANNEL_PRIVATE : CS_CHANNEL_PUBLIC;
        cs_channel_view cv;
        if (c == 1) dz_must(cs_store_new_epoch(s, NULL), "epoch");
        dz_must(cs_channel_create(s, DZ_S(is), &cp, &cv), "channel");
        for (int m = 0; m < 50; m++) {
            if (c == 1 && m == 25) dz_must(cs_store_new_epoch(s, NULL), "epoch");
            char body[64];
            snprintf(body, sizeof body, "message %d in %d", m, c);
            cs_message_params mp = {0};
            mp.body = DZ_S(body);
            if (m % 4 == 0) mp.from = DZ_S(m % 8 ? "bob" : "alice");
            if (m % 9 == 0) mp.attributes = DZ_S("{\"m\": [1]}");
            if (m % 7 == 3) mp.last_updated_by = DZ_S("carol");
            cs_message_view mv;
            dz_now += 3;
            dz_must(cs_message_create(s, DZ_S(is), DZ_S(cv.sid), &mp, &mv),
                    "message");
            if (m % 5 == 1)
                dz_must(cs_message_delete(s, DZ_S(is), DZ_S(cv.sid),
                                          DZ_S(mv.sid), CS_STR_ABSENT),
                        "delete");
            else if (m % 6 == 2) {
                cs_message_params up = {0};
                up.body = DZ_S("edited");
                dz_must(cs_message_update(s, DZ_S(is), DZ_S(cv.sid),
                                          DZ_S(mv.sid), &up, NULL),
                        "update");
            }
        }
    }
    img->n = 0;
    dz_must(cs_snapshot_save(s, dz_write, img), "save");
    cs_store_free(s);
}

/* The length of the snapshot record at p (tag included), from the layout
 * in lib/snapshot.c, or 0. */
static size_t rec_len(const uint8_t *p, size_t n) {
    size_t fixed, nstr;
    switch (p[0]) {
    case 'S': fixed = 1 + 64 + 24; nstr = 1; break;
    case 'D': fixed = 1 + 16 + 16 + 1 + 32; nstr = 2; break;
    case 'C': fixed = 1 + 16 + 32 + 1; nstr = 4; break;
    case 'M':
        fixed = 1 + 24 + 1 + (n > 25 && p[25] & 2 ? 16 : 0);
        nstr = 4;
        break;
    case 'E': return 1 + 32;
    default: return 0;
    }
    if (p[0] == 'S') nstr = 3; /* version 3: name and the two webhook URLs */
    size_t off = fixed;
    for (size_t i = 0; i < nstr; i++) {
        if (off + 4 > n) return 0;
        uint32_t l = dz_get_u32(p + off);
        off += 4 + (l == UINT32_MAX ? 0 : l);
    }
    /* the service's method, retry counts and filters */
    if (p[0] == 'S') off = off + 4 <= n ? off + 4 + p[off + 3] : n + 1;
    return off <= n ? off : 0;
}

/* Rewrites a one-block image into blocks of `per` records each. */
static void reblock(const dz_bytes *img, unsigned per, dz_bytes *out) {
    out->n = 0;
    dz_put(out, img->p, 128);
    uint32_t len = dz_get_u32(img->p + 128);
    FZ_CHECK(128 + 8 + (size_t)len == img->n, "image is not one block");
    const uint8_t *p = img->p + 132;
    size_t off = 0;
    while (off < len) {
        size_t start = off;
        for (unsigned k = 0; k < per && off < len; k++) {
            size_t r = rec_len(p + off, len - off);
            FZ_CHECK(r, "cannot parse record at %zu", off);
            off += r;
        }
        uint8_t h[4];
        dz_put_u32(h, (uint32_t)(off - start));
        dz_put(out, h, 4);
        dz_put(out, p + start, off - start);
        dz_put_u32(h, dz_crc32c(p + start, off - start));
        dz_put(out, h, 4);
    }
}

static void snap_seed(const char *tag, uint8_t chunk, uint8_t flags,
                      uint8_t nlow, const dz_bytes *img) {
    dz_bytes b = {NULL, 0, 0};
    uint8_t pre[3] = {chunk, flags, nlow};
    dz_put(&b, pre, 3);
    dz_put(&b, img->p, img->n);
    FZ_CHECK(b.n < 16384, "seed %s is %zu bytes", tag, b.n);
    write_seed("snapshot", tag, b.p, b.n);
    dz_bytes_free(&b);
}

static void snapshot_seeds(void) {
    clear_seeds("snapshot");
    static const struct {
        const char *tag;
        size_t stop;
    } points[] = {
        {"empty", (size_t)-1}, {"services", 6},  {"channels", 9},
        {"messages", 20},      {"edited", 27},   {"before-clear", 31},
        {"after-clear", 35},   {"full", 0},
    };
    dz_bytes img = {NULL, 0, 0}, rb = {NULL, 0, 0};
    char tag[64];
    for (size_t i = 0; i < sizeof points / sizeof *points; i++) {
        image_at(points[i].stop, &img);
        snap_seed(points[i].tag, 0, 0, 0, &img);
        snprintf(tag, sizeof tag, "%s-fixcrc", points[i].tag);
        snap_seed(tag, 0, 1, 0, &img);
        if (i % 2 == 0) {
            snprintf(tag, sizeof tag, "%s-bytewise", points[i].tag);
            snap_seed(tag, 1, 0, 0, &img);
        } else {
            snprintf(tag, sizeof tag, "%s-vary", points[i].tag);
            snap_seed(tag, 13, 8, 0, &img);
        }
        if (i >= 3) {
            reblock(&img, i % 2 ? 1 : 2, &rb);
            snprintf(tag, sizeof tag, "%s-blocks", points[i].tag);
            snap_seed(tag, 0, 1, 0, &rb);
        }
    }
    /* A failing read at the end, and allocation failures early and late. */
    image_at(20, &img);
    snap_seed("messages-readfail", 0, 2, 0, &img);
    snap_seed("messages-nomem-3", 0, 4, 2, &img);
    snap_seed("messages-nomem-40", 0, 4, 39, &img);
    image_at(0, &img);
    snap_seed("full-nomem-30", 0, 4, 29, &img);
    wide_image(&img);
    snap_seed("wide", 0, 0, 0, &img);
    snap_seed("wide-vary", 200, 8, 0, &img);
    reblock(&img, 5, &rb);
    snap_seed("wide-blocks", 0, 1, 0, &rb);
    dz_bytes_free(&img);
    dz_bytes_free(&rb);
}

/* ---- journal ------------------------------------------------------------ */

static dz_journal J;

static void session(void) {
    cs_options o = dz_options(NULL);
    cs_store *s = NULL;
    dz_must(cs_store_new(&o, &s), "store");
    dz_must(cs_store_set_journal(s, dz_journal_hook, &J), "hook");
    dz_now = DZ_T0;
    dz_script(s, 0);
    cs_store_free(s);
}

static void j_seed(const char *tag, const uint8_t *p, size_t n) {
    write_seed("journal", tag, p, n);
}

/* Commands (fuzz_journal.c): 0 advance, 1 raw, 2 mutate, 4 script record,
 * 5 fail allocation, 6 refuse, 7 jump. */
static void journal_seeds(void) {
    clear_seeds("journal");
    session();
    size_t n = J.n;
    char tag[64];
    {
        uint8_t c[] = {0, 63};
        j_seed("all", c, sizeof c);
    }
    /* The next record after k with one field changed (re-encoded, CRC
     * right): [2, 0x80 (the next record), 1 edit, kind, a, params...,
     * 0 raw edits, crc flag 0]. */
    static const struct {
        const char *what;
        uint8_t n, b[6];
    } muts[] = {
        {"seq-live", 3, {0, 0, 2 | 32 << 2}},  /* seq = commits + 1 */
        {"seq-plus2", 4, {0, 0, 0, 2}},
        {"now-edge", 4, {0, 1, 1, 9}},          /* year 10000 */
        {"counter-minus1", 4, {0, 2, 0, 0xff}},
        {"serial-live-minus1", 3, {0, 3, 2 | 31 << 2}},
        {"webhook", 2, {1, 2}},
        {"type", 2, {2, 3}},
        {"size-edge", 4, {3, 0, 1, 14}},        /* just over 150 MB */
        {"index-plus1", 4, {4, 0, 0, 1}},
        {"str0-absent", 2, {5, 0}},
        {"str1-empty", 2, {6, 1}},
        {"str-bytes", 6, {7, 0, 3, 0xff, 0xc0, 0x80}},
        {"str-pool-a", 3, {8, 2, 43}},
        {"str-pool-b", 3, {8, 1, 200}},
        {"str-pool-c", 3, {8, 5, 230}},
        {"sid-pool", 3, {9, 0, 3}},
        {"sid-flip", 3, {10, 1, 5}},
        {"op-swap", 2, {11, 9}},
        {"op-raw", 3, {11, 0xF1, 12}},
    };
    size_t nm = sizeof muts / sizeof *muts;
    for (size_t i = 0; i < nm; i++) {
        size_t k = (i * 7 + 3) % n;
        uint8_t c[16];
        size_t m = 0;
        if (k && i % 2) { /* jump to the session's snapshot after k */
            c[m++] = 7;
            c[m++] = (uint8_t)k;
        } else if (k) { /* apply its first k records */
            c[m++] = 0;
            c[m++] = (uint8_t)(k - 1);
        }
        c[m++] = 2;
        c[m++] = 0x80;
        c[m++] = 1;
        memcpy(c + m, muts[i].b, muts[i].n);
        m += muts[i].n;
        c[m++] = 0;
        c[m++] = 0;
        snprintf(tag, sizeof tag, "mut-%02zu-%s", k, muts[i].what);
        j_seed(tag, c, m);
    }
    /* Raw byte edits: flip a byte with and without fixing the CRC, and a
     * truncation. */
    for (int fix = 0; fix < 2; fix++) {
        uint8_t c[] = {0, 9, 2, 0x80, 0, 1, 1, 50, 0, 0x20, (uint8_t)fix};
        snprintf(tag, sizeof tag, "mut-10-xor%s", fix ? "-crc" : "");
        j_seed(tag, c, sizeof c);
    }
    {
        uint8_t c[] = {0, 4, 2, 0x80, 0, 1, 4, 44, 0, 0, 1};
        j_seed("mut-05-truncate-crc", c, sizeof c);
    }
    /* Real records as raw bytes, in order from an empty store. */
    {
        dz_bytes b = {NULL, 0, 0};
        for (size_t k = 0; k < 4; k++) {
            uint8_t h[3] = {1, (uint8_t)J.rec[k].n, (uint8_t)(J.rec[k].n >> 8)};
            dz_put(&b, h, 3);
            dz_put(&b, J.rec[k].p, J.rec[k].n);
        }
        j_seed("raw-first-4", b.p, b.n);
        dz_bytes_free(&b);
    }
    {
        size_t k = 10; /* a message create, after its channel */
        dz_bytes b = {NULL, 0, 0};
        uint8_t a[2] = {0, (uint8_t)(k - 1)};
        dz_put(&b, a, 2);
        uint8_t h[3] = {1, (uint8_t)J.rec[k].n, (uint8_t)(J.rec[k].n >> 8)};
        dz_put(&b, h, 3);
        dz_put(&b, J.rec[k].p, J.rec[k].n);
        j_seed("raw-10", b.p, b.n);
        dz_bytes_free(&b);
    }
    /* After the whole session: a new SID epoch, then a service, a media
     * item, a channel and a message in it, as raw records. */
    {
        dz_journal E;
        memset(&E, 0, sizeof E);
        cs_options o = dz_options(NULL);
        cs_store *s = NULL;
        dz_must(cs_store_new(&o, &s), "store");
        dz_now = DZ_T0;
        dz_script(s, 0);
        dz_must(cs_store_set_journal(s, dz_journal_hook, &E), "hook");
        cs_service_view sv;
        cs_channel_view cv;
        dz_must(cs_store_new_epoch(s, NULL), "epoch");
        dz_must(cs_service_create(s, DZ_S("Epoch"), &sv), "service");
        dz_must(cs_media_create(s, DZ_S(sv.sid), DZ_S("image/gif"), CS_STR_ABSENT,
                                7, NULL), "media");
        dz_must(cs_channel_create(s, DZ_S(sv.sid), NULL, &cv), "channel");
        dz_must(cs_message_create(s, DZ_S(sv.sid), DZ_S(cv.sid), NULL, NULL),
                "message");
        cs_store_free(s);
        FZ_CHECK(E.n == 5 && J.n < 64, "epoch seed: %zu records", E.n);
        dz_bytes b = {NULL, 0, 0};
        uint8_t a[2] = {0, 63};
        dz_put(&b, a, 2);
        for (size_t k = 0; k < E.n; k++) {
            uint8_t h[3] = {1, (uint8_t)E.rec[k].n, (uint8_t)(E.rec[k].n >> 8)};
            dz_put(&b, h, 3);
            dz_put(&b, E.rec[k].p, E.rec[k].n);
        }
        j_seed("raw-epoch", b.p, b.n);
        dz_bytes_free(&b);
        dz_journal_free(&E);
    }
    /* Out of order: a gap, then a skipped one. */
    {
        uint8_t c[] = {4, 5, 0, 7, 4, 2, 4, 7};
        j_seed("order", c, sizeof c);
    }
    /* An allocation failure in each of the first applies, a refusal. */
    {
        uint8_t c[] = {5, 0, 0, 0, 5, 1, 0, 0, 5, 2, 0, 7, 5, 3, 0, 0,
                       6, 0, 0, 6, 0, 10};
        j_seed("nomem-refuse", c, sizeof c);
    }
    {
        uint8_t c[] = {0, 30, 5, 4, 0, 0, 6, 0, 0, 0, 63};
        j_seed("clear-nomem", c, sizeof c);
    }
    dz_journal_free(&J);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    ROOT = argv[1];
    snapshot_seeds();
    journal_seeds();
    printf("%u seeds written under %s\n", nwritten, ROOT);
    return 0;
}
