/* Snapshot images as untrusted input to cs_snapshot_load.
 *
 * Input: three bytes of settings, then the image.
 *   byte 0  read chunk: the read callback returns at most this many bytes
 *           per call (0: as many as asked); with flag 8, chunk sizes vary
 *           from call to call, derived from this byte
 *   byte 1  flags: 1 fix the checksums (the header's and each block's, as
 *           far as the block lengths lead) before loading, so that mutated
 *           fields get past them; 2 the read callback fails (-1) at the end
 *           of the image instead of returning 0; 4 fail one allocation, the
 *           N-th, N = byte 2 + 1 + 256 * (byte 1 >> 4); 8 varying chunks
 *   byte 2  N's low byte
 *
 * The store's allocator counts live bytes, checks the size given to free,
 * and refuses allocations past a budget (FUZZ_SNAPSHOT_BUDGET_MB, default
 * 32: far above what a store loaded from a 16 KiB image needs; a failure
 * it causes counts as an allocation failure). FUZZ_SNAPSHOT_MAX_AMP=X makes
 * it a finding when loading an image of n bytes ever holds more than
 * X * n + 1 MiB (off by default: no documented bound; see README).
 * Whatever the image:
 *  - the result is CS_OK, NOMEM, IO or BAD_SNAPSHOT; IO exactly when the
 *    read callback failed, NOMEM only when an allocation failed;
 *  - on error *out is NULL, err.reason is set, err.offset is within the
 *    image, and every byte allocated is freed;
 *  - on success cs_store_check passes; saving the store succeeds without
 *    allocating; loading that image again gives a store whose canonical
 *    dump (tests/dump.h) equals the first one's and which saves to the same
 *    bytes; a save whose write callback fails part way is IO; freeing the
 *    stores returns every byte. */
#include "durable.h"
#include "dump.h"

typedef struct src {
    const uint8_t *p;
    size_t n, pos;
    unsigned chunk;
    bool vary, fail_at_end, failed;
    unsigned calls;
} src;

static ptrdiff_t src_read(void *ctx, void *buf, size_t len) {
    src *r = ctx;
    r->calls++;
    if (r->pos == r->n && r->fail_at_end) {
        r->failed = true;
        return -1;
    }
    size_t k = r->n - r->pos;
    if (k > len) k = len;
    size_t lim = r->chunk;
    if (r->vary) lim = 1 + (r->chunk * 7919u * r->calls) % 389u;
    if (lim && k > lim) k = lim;
    if (k) memcpy(buf, r->p + r->pos, k);
    r->pos += k;
    return (ptrdiff_t)k;
}

/* Recomputes the header's checksum and those of the blocks the lengths
 * lead to, as far as they fit in the image (the layout of lib/snapshot.c:
 * a 128-byte header with a CRC-32C of its first 124 bytes at 124, then
 * blocks of u32 length, payload, CRC-32C of the payload). */
static uint32_t crc_table[256];
static uint32_t crc_fast(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return ~c;
}

static void fix_checksums(uint8_t *p, size_t n) {
    if (n < 128) return;
    dz_put_u32(p + 124, crc_fast(p, 124));
    size_t off = 128;
    while (n - off >= 8) {
        uint32_t len = dz_get_u32(p + off);
        if (len == 0 || len > n - off - 8) break;
        dz_put_u32(p + off + 4 + len, crc_fast(p + off + 4, len));
        off += 8 + (size_t)len;
    }
}

/* Write callback that fails once `left` bytes are exhausted. */
static int limited_write(void *ctx, const void *buf, size_t len) {
    (void)buf;
    size_t *left = ctx;
    if (len > *left) return -1;
    *left -= len;
    return 0;
}

static char *dump_of(cs_store *s) {
    cs_buf b;
    dump_store(s, &b);
    return b.data;
}

static void dumps_equal(const char *a, const char *b, const char *what) {
    if (strcmp(a, b) == 0) return;
    size_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    FZ_CHECK(0, "%s: dumps differ at byte %zu:\n  first  ...%.160s\n  second ...%.160s",
             what, i, a + from, b + from);
}

static bool crc_ready;
static bool trace; /* FUZZ_TRACE=1 in the environment: one line per load */
static size_t budget;  /* the loaded store's memory budget */
static double max_amp; /* FUZZ_SNAPSHOT_MAX_AMP: 0 (off) or the bound */

static size_t env_size(const char *name, size_t dflt) {
    const char *v = getenv(name);
    return v && *v ? (size_t)strtoull(v, NULL, 10) : dflt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!crc_ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            crc_table[i] = c;
        }
        FZ_CHECK(crc_fast((const uint8_t *)"123456789", 9) == 0xE3069283u &&
                     dz_crc32c("123456789", 9) == 0xE3069283u,
                 "CRC-32C check value");
        crc_ready = true;
        const char *t = getenv("FUZZ_TRACE");
        trace = t && *t && *t != '0';
        budget = env_size("FUZZ_SNAPSHOT_BUDGET_MB", 32) << 20;
        const char *a = getenv("FUZZ_SNAPSHOT_MAX_AMP");
        max_amp = a && *a ? strtod(a, NULL) : 0;
    }
    uint8_t chunk = size > 0 ? data[0] : 0;
    uint8_t flags = size > 1 ? data[1] : 0;
    uint8_t nlow = size > 2 ? data[2] : 0;
    size_t n = size > 3 ? size - 3 : 0;
    /* An exactly sized copy: reads past the end hit ASan. */
    uint8_t *img = (uint8_t *)fz_dup(size > 3 ? data + 3 : data, n);
    if (flags & 1) fix_checksums(img, n);

    dz_heap heap;
    memset(&heap, 0, sizeof heap);
    heap.budget = budget;
    if (flags & 4) heap.fail_at = (long)nlow + 1 + 256L * (flags >> 4);
    cs_allocator alc = {dz_malloc, dz_free, &heap};
    cs_options o = dz_options(&alc);
    src r = {img, n, 0, chunk, (flags & 8) != 0, (flags & 2) != 0, false, 0};
    cs_store *s = (cs_store *)&heap; /* not NULL: the call must clear it */
    cs_decode_error de = {UINT64_MAX, NULL};
    cs_err e = cs_snapshot_load(&o, src_read, &r, &s, &de);
    heap.fail_at = 0;
    if (max_amp > 0)
        FZ_CHECK((double)heap.peak_bytes <= max_amp * (double)n + (1 << 20),
                 "a %zu-byte image made the loader hold %zu bytes (%s)", n,
                 heap.peak_bytes, cs_err_name(e));

    if (trace)
        fprintf(stderr, "load %zu bytes (chunk %u, flags %#x): %s%s%s%s; "
                        "peak %zu bytes\n", n, chunk, flags, cs_err_name(e),
                de.reason ? ": " : "", de.reason ? de.reason : "",
                heap.over ? " (memory budget)" : "", heap.peak_bytes);
    FZ_CHECK(e == CS_OK || e == CS_E_NOMEM || e == CS_E_IO ||
                 e == CS_E_BAD_SNAPSHOT,
             "cs_snapshot_load returned %s", cs_err_name(e));
    FZ_CHECK((e == CS_E_IO) == r.failed, "%s, read callback %s", cs_err_name(e),
             r.failed ? "failed" : "did not fail");
    FZ_CHECK(e != CS_E_NOMEM || heap.fired, "NOMEM without a failed allocation");
    if (e != CS_OK) {
        FZ_CHECK(s == NULL, "%s but *out is not NULL", cs_err_name(e));
        FZ_CHECK(de.reason != NULL, "%s without a reason", cs_err_name(e));
        FZ_CHECK(de.offset <= n, "%s (%s) at offset %llu of a %zu-byte image",
                 cs_err_name(e), de.reason, (unsigned long long)de.offset, n);
        FZ_CHECK(heap.live_bytes == 0 && heap.live_blocks == 0,
                 "%s (%s at %llu) leaves %zu bytes in %zu blocks",
                 cs_err_name(e), de.reason, (unsigned long long)de.offset,
                 heap.live_bytes, heap.live_blocks);
        free(img);
        return 0;
    }
    FZ_CHECK(s != NULL, "CS_OK without a store");
    FZ_CHECK(cs_store_check(s) == CS_OK, "loaded store fails its check");

    /* Saving allocates nothing and succeeds. */
    size_t live = heap.live_bytes;
    dz_bytes img2 = {NULL, 0, 0};
    FZ_CHECK(cs_snapshot_save(s, dz_write, &img2) == CS_OK, "save of loaded store");
    FZ_CHECK(heap.live_bytes == live, "save allocated");
    char *d1 = dump_of(s);

    /* A write callback failing part way: IO. */
    if (img2.n > 0) {
        size_t left = ((size_t)chunk << 8 | nlow) % img2.n;
        FZ_CHECK(cs_snapshot_save(s, limited_write, &left) == CS_E_IO,
                 "save with a failing write callback is not IO");
    }

    /* The saved image loads to the same store, which saves to the same
     * bytes. */
    dz_heap heap2;
    memset(&heap2, 0, sizeof heap2);
    cs_allocator alc2 = {dz_malloc, dz_free, &heap2};
    cs_options o2 = dz_options(&alc2);
    src r2 = {img2.p, img2.n, 0, 0, false, false, false, 0};
    cs_store *s2 = NULL;
    cs_decode_error de2 = {0, NULL};
    e = cs_snapshot_load(&o2, src_read, &r2, &s2, &de2);
    FZ_CHECK(e == CS_OK, "reloading the saved image: %s (%s at %llu)",
             cs_err_name(e), de2.reason ? de2.reason : "-",
             (unsigned long long)de2.offset);
    char *d2 = dump_of(s2);
    dumps_equal(d1, d2, "loaded store and its saved image reloaded");
    dz_bytes img3 = {NULL, 0, 0};
    FZ_CHECK(cs_snapshot_save(s2, dz_write, &img3) == CS_OK, "second save");
    FZ_CHECK(img3.n == img2.n && memcmp(img3.p, img2.p, img2.n) == 0,
             "saving the reloaded store gives other bytes (%zu vs %zu)",
             img3.n, img2.n);

    free(d1);
    free(d2);
    dz_bytes_free(&img2);
    dz_bytes_free(&img3);
    cs_store_free(s);
    cs_store_free(s2);
    FZ_CHECK(heap.live_bytes == 0 && heap.live_blocks == 0,
             "freeing the loaded store leaves %zu bytes", heap.live_bytes);
    FZ_CHECK(heap2.live_bytes == 0 && heap2.live_blocks == 0,
             "freeing the reloaded store leaves %zu bytes", heap2.live_bytes);
    free(img);
    return 0;
}
