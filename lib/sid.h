/* SIDs: two prefix letters + 32 hex digits, held internally as 16 bytes. */
#ifndef CHATSTORE_SID_H
#define CHATSTORE_SID_H

#include <stddef.h>
#include <stdint.h>

#define CS__SID_STRLEN 34
#define CS__SID_BYTES 16

/* Parses s[0..n) as prefix p0 p1 + 32 hex digits. Prefix letters and hex
 * digits are matched case-insensitively (p0/p1 are given in upper case).
 * Returns 0 and fills out, or -1 when the length, prefix or a digit is wrong. */
int cs__sid_parse(const char *s, size_t n, char p0, char p1,
                  uint8_t out[CS__SID_BYTES]);

/* Writes prefix + 32 lower-case hex digits + NUL (35 bytes) into out. */
void cs__sid_format(char p0, char p1, const uint8_t in[CS__SID_BYTES],
                    char out[CS__SID_STRLEN + 1]);

/* True when s[0..n) has the shape of a SID with this prefix (same rule as
 * cs__sid_parse). */
int cs__sid_match(const char *s, size_t n, char p0, char p1);

#endif
