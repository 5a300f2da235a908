/* Percent-decoding, form and query parsing, base64. */
#include "server.h"

#include <stdlib.h>
#include <string.h>

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t pct_decode(const char *in, size_t n, char *out, int plus) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= n) return (size_t)-1;
            int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
            if (h < 0 || l < 0) return (size_t)-1;
            out[o++] = (char)(h << 4 | l);
            i += 2;
        } else {
            out[o++] = (plus && c == '+') ? ' ' : c;
        }
    }
    return o;
}

int params_add(params *p, const char *k, size_t kn, const char *v, size_t vn) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        kv *items = realloc(p->items, cap * sizeof *items);
        if (!items) return -1;
        p->items = items;
        p->cap = cap;
    }
    kv *e = &p->items[p->n];
    e->key = malloc(kn + 1);
    e->val = malloc(vn + 1);
    if (!e->key || !e->val) {
        free(e->key);
        free(e->val);
        return -1;
    }
    memcpy(e->key, k, kn);
    e->key[kn] = '\0';
    memcpy(e->val, v, vn);
    e->val[vn] = '\0';
    e->key_len = kn;
    e->val_len = vn;
    p->n++;
    return 0;
}

/* One "k=v" pair, both sides decoded. */
static int add_pair(params *p, const char *s, size_t n) {
    const char *eq = memchr(s, '=', n);
    size_t kn = eq ? (size_t)(eq - s) : n;
    const char *v = eq ? eq + 1 : s + n;
    size_t vn = eq ? n - kn - 1 : 0;
    char *kd = malloc(kn + 1), *vd = malloc(vn + 1);
    int rc = -1;
    if (kd && vd) {
        size_t a = pct_decode(s, kn, kd, 1), b = pct_decode(v, vn, vd, 1);
        if (a != (size_t)-1 && b != (size_t)-1) rc = params_add(p, kd, a, vd, b);
    }
    free(kd);
    free(vd);
    return rc;
}

int params_parse(params *p, const char *s, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '&') continue;
        if (i > start && add_pair(p, s + start, i - start)) return -1;
        start = i + 1;
    }
    return 0;
}

void params_free(params *p) {
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].key);
        free(p->items[i].val);
    }
    free(p->items);
    memset(p, 0, sizeof *p);
}

cs_str params_get(const params *p, const char *key) {
    size_t kn = strlen(key);
    for (size_t i = 0; i < p->n; i++)
        if (p->items[i].key_len == kn && memcmp(p->items[i].key, key, kn) == 0)
            return (cs_str){p->items[i].val, p->items[i].val_len};
    return CS_STR_ABSENT;
}

size_t params_count(const params *p, const char *key) {
    size_t kn = strlen(key), n = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->items[i].key_len == kn && memcmp(p->items[i].key, key, kn) == 0)
            n++;
    return n;
}

size_t params_all(const params *p, const char *key, cs_str *out, size_t max) {
    size_t kn = strlen(key), n = 0;
    for (size_t i = 0; i < p->n && n < max; i++)
        if (p->items[i].key_len == kn && memcmp(p->items[i].key, key, kn) == 0)
            out[n++] = (cs_str){p->items[i].val, p->items[i].val_len};
    return n;
}

static int b64val(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

size_t base64_decode(const char *in, size_t n, char *out, size_t cap) {
    while (n && in[n - 1] == '=') n--;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val(in[i]);
        if (v < 0) return (size_t)-1;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return (size_t)-1;
            out[o++] = (char)(acc >> bits & 0xff);
        }
    }
    return o;
}
