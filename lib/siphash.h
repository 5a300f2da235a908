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

/* SipHash-2-4 of the 8-byte little-endian encoding of m, the key given as
 * its two little-endian halves: the same value as cs__siphash on those
 * bytes, without the general message handling. */
uint64_t cs__siphash_u64(const uint64_t key[2], uint64_t m);

#endif
