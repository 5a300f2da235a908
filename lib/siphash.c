/* SipHash-2-4, 64- and 128-bit output, written from the paper's description
 * (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012) and its
 * appendix on the 128-bit variant. Two compression rounds per 8-byte block,
 * four finalisation rounds. */
#include "siphash.h"

#include <string.h>

/* Little-endian 64-bit load from any alignment. memcpy keeps it free of
 * alignment and aliasing UB; compilers turn it into a single load. */
static inline uint64_t cs__load64_le(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#elif !defined(__BYTE_ORDER__)
    /* Unknown byte order: assemble by hand (still one load on x86/arm). */
    v = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
        (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
        (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
#endif
    return v;
}

static inline void cs__store64_le(uint8_t *p, uint64_t v) {
    for (unsigned i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Initialises the state and absorbs the whole message including the final
 * length-tagged block. The 128-bit variant differs only in v1 ^= 0xee here
 * and in the finalisation constants. */
static inline void cs__sip_absorb(cs__sip *s, const uint8_t key[16],
                                  const uint8_t *p, size_t n, int wide) {
    uint64_t k0 = cs__load64_le(key), k1 = cs__load64_le(key + 8);
    s->v0 = k0 ^ UINT64_C(0x736f6d6570736575); /* "somepseu" */
    s->v1 = k1 ^ UINT64_C(0x646f72616e646f6d); /* "dorandom" */
    s->v2 = k0 ^ UINT64_C(0x6c7967656e657261); /* "lygenera" */
    s->v3 = k1 ^ UINT64_C(0x7465646279746573); /* "tedbytes" */
    if (wide) s->v1 ^= 0xee;

    size_t full = n & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8) cs__sip_block(s, cs__load64_le(p + i));

    /* Last block: the 0..7 leftover bytes, zero padded, with the message
     * length mod 256 in the top byte. Copying into a zeroed buffer avoids a
     * fall-through switch and never reads past the caller's data. */
    uint8_t tail[8] = {0};
    if (n > full) memcpy(tail, p + full, n - full);
    cs__sip_block(s, cs__load64_le(tail) | (uint64_t)(n & 0xff) << 56);
}

uint64_t cs__siphash(const uint8_t key[16], const void *data, size_t n) {
    cs__sip s;
    cs__sip_absorb(&s, key, data, n, 0);
    return cs__sip_final(&s, 0xff);
}

void cs__siphash128(const uint8_t key[16], const void *data, size_t n,
                    uint8_t out[16]) {
    cs__sip s;
    cs__sip_absorb(&s, key, data, n, 1);
    cs__store64_le(out, cs__sip_final(&s, 0xee));
    /* The second half continues from the same state with a new tweak. */
    s.v1 ^= 0xdd;
    cs__store64_le(out + 8, cs__sip_final(&s, 0));
}
