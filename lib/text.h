/* Text validation: UTF-8 (RFC 3629) and JSON (RFC 8259). Pure functions,
 * no allocation, no recursion. */
#ifndef CHATSTORE_TEXT_H
#define CHATSTORE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..n) is well-formed UTF-8: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence. NUL bytes
 * are valid (U+0000). An ASCII fast path checks a word at a time; from 16
 * bytes on, SSSE3 blocks where the CPU has them. */
bool cs__utf8_valid(const char *s, size_t n);
/* The same, always by the portable word loop (cs__utf8_valid uses SSSE3
 * where the CPU has it), for tests. */
bool cs__utf8_valid_sw(const char *s, size_t n);

/* Number of code points in s[0..n) when it is valid UTF-8, else SIZE_MAX. */
size_t cs__utf8_length(const char *s, size_t n);

/* True when s[0..n) is exactly one JSON text per RFC 8259 (any value at the
 * top level, surrounding whitespace allowed), with valid UTF-8 throughout.
 * Only validates: numbers are never converted, and nesting depth is unbounded
 * without recursion (an explicit bit stack, no C-stack growth per level). */
bool cs__json_valid(const char *s, size_t n);

#endif
