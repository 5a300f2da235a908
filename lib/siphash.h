/* SipHash-2-4 (Aumasson & Bernstein): a keyed PRF used for hash-flooding-proof
 * table hashing, page-token MACs and the SID generator. */
#ifndef CHATSTORE_SIPHASH_H
#define CHATSTORE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit output. */
uint64_t cs__siphash(const uint8_t key[16], const void *data, size_t n);

/* 128-bit output variant (SipHash-2-4-128). */
void cs__siphash128(const uint8_t key[16], const void *data, size_t n,
                    uint8_t out[16]);

/* The state and rounds, shared by siphash.c and the inline form below. */
typedef struct cs__sip {
    uint64_t v0, v1, v2, v3;
} cs__sip;

static inline uint64_t cs__rotl64(uint64_t x, unsigned b) {
    return (x << b) | (x >> (64 - b));
}

static inline void cs__sipround(cs__sip *s) {
    s->v0 += s->v1;
    s->v1 = cs__rotl64(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = cs__rotl64(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = cs__rotl64(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = cs__rotl64(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = cs__rotl64(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = cs__rotl64(s->v2, 32);
}

static inline void cs__sip_block(cs__sip *s, uint64_t m) {
    s->v3 ^= m;
    cs__sipround(s);
    cs__sipround(s);
    s->v0 ^= m;
}

static inline uint64_t cs__sip_final(cs__sip *s, uint64_t v2_tweak) {
    s->v2 ^= v2_tweak;
    for (int i = 0; i < 4; i++) cs__sipround(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

/* SipHash-2-4 of the 8-byte little-endian encoding of m, the key given as
 * its two little-endian halves: the same value as cs__siphash on those
 * bytes, without the general message handling. Inline: the message-SID
 * permutation makes four per SID. */
static inline uint64_t cs__siphash_u64(const uint64_t key[2], uint64_t m) {
    cs__sip s;
    s.v0 = key[0] ^ UINT64_C(0x736f6d6570736575);
    s.v1 = key[1] ^ UINT64_C(0x646f72616e646f6d);
    s.v2 = key[0] ^ UINT64_C(0x6c7967656e657261);
    s.v3 = key[1] ^ UINT64_C(0x7465646279746573);
    cs__sip_block(&s, m);
    cs__sip_block(&s, (uint64_t)8 << 56); /* empty tail, length 8 */
    return cs__sip_final(&s, 0xff);
}

#endif
