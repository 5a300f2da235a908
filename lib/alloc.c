/* The store's allocator and the renderers' output buffer. */
#include "internal.h"

#include <stdlib.h>

void *cs__malloc(cs_store *s, size_t n) {
    if (s->quota_on &&
        (n > s->lim.max_bytes || s->bytes > s->lim.max_bytes - n)) {
        s->quota_hit = true; /* see cs__quota_begin */
        return NULL;
    }
    void *p = s->alc.malloc(s->alc.ctx, n ? n : 1);
    if (p) s->bytes += n;
    return p;
}

void cs__free(cs_store *s, void *p, size_t n) {
    if (!p) return;
    s->bytes -= n;
    s->alc.free(s->alc.ctx, p, n);
}

char *cs__memdup(cs_store *s, const char *p, size_t n) {
    char *d = cs__malloc(s, n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

/* ---- cs_buf ------------------------------------------------------------- */

static void *buf_alloc(const cs_allocator *a, size_t n) {
    return a ? a->malloc(a->ctx, n) : malloc(n);
}

static void buf_release(const cs_allocator *a, void *p, size_t n) {
    if (a)
        a->free(a->ctx, p, n);
    else
        free(p);
}

void cs_buf_init(cs_buf *b, const cs_allocator *alc) {
    CS__REQUIRE(b);
    b->data = NULL;
    b->len = b->cap = 0;
    b->fixed = false;
    b->alc = alc;
}

void cs_buf_init_fixed(cs_buf *b, char *mem, size_t cap) {
    CS__REQUIRE(b);
    CS__REQUIRE(mem);
    b->data = mem;
    b->len = 0;
    b->cap = cap;
    b->fixed = true;
    b->alc = NULL;
    if (cap) mem[0] = '\0';
}

void cs_buf_free(cs_buf *b) {
    if (!b) return;
    if (!b->fixed && b->data) buf_release(b->alc, b->data, b->cap);
    b->data = NULL;
    b->len = b->cap = 0;
}

void cs_buf_reset(cs_buf *b) {
    CS__REQUIRE(b);
    b->len = 0;
    if (b->cap) b->data[0] = '\0';
}

/* Makes room for extra more bytes plus a NUL. The old block stays intact
 * when the new one cannot be had. */
cs_err cs__buf_grow(cs_buf *b, size_t extra) {
    if (extra >= SIZE_MAX - b->len) return CS_E_NOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return CS_OK;
    if (b->fixed) return CS_E_BUFFER_TOO_SMALL;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) return CS_E_NOMEM;
        cap *= 2;
    }
    char *p = buf_alloc(b->alc, cap);
    if (!p) return CS_E_NOMEM;
    if (b->len) memcpy(p, b->data, b->len);
    if (b->data) buf_release(b->alc, b->data, b->cap);
    b->data = p;
    b->cap = cap;
    return CS_OK;
}
