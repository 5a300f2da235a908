/* CRC-32C (Castagnoli), the checksum of journal records and snapshots.
 *
 * Invariants: cs__crc32c(c, p, n) extends c over p[0..n) as if the bytes
 * had been given in one call, with the standard initial and final inversion
 * (crc of "123456789" is 0xE3069283), whichever implementation runs: the
 * SSE4.2 instruction where the CPU has it, else a table computed once. */
#include "internal.h"

#include <pthread.h>

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[i] = c;
    }
}

static uint32_t crc_table(uint32_t c, const uint8_t *p, size_t n) {
    pthread_once(&table_once, table_init);
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t c, const uint8_t *p, size_t n) {
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--) c = __builtin_ia32_crc32qi(c, *p++);
    return c;
}

static int hw_state; /* 0: unknown, 1: yes, 2: no (a benign race: idempotent) */

static bool have_hw(void) {
    int st = __atomic_load_n(&hw_state, __ATOMIC_RELAXED);
    if (!st) {
        __builtin_cpu_init();
        st = __builtin_cpu_supports("sse4.2") ? 1 : 2;
        __atomic_store_n(&hw_state, st, __ATOMIC_RELAXED);
    }
    return st == 1;
}
#endif

uint32_t cs__crc32c_sw(uint32_t crc, const void *p, size_t n) {
    return ~crc_table(~crc, p, n);
}

uint32_t cs__crc32c(uint32_t crc, const void *p, size_t n) {
    uint32_t c = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_hw()) return ~crc_hw(c, p, n);
#endif
    return ~crc_table(c, p, n);
}
