/* ISO 8601 date-times in and out. Times are seconds since the Unix epoch, UTC. */
#ifndef CHATSTORE_ISOTIME_H
#define CHATSTORE_ISOTIME_H

#include <stddef.h>
#include <stdint.h>

/* Range that both parsing and formatting accept: 0001-01-01T00:00:00Z to
 * 9999-12-31T23:59:59Z. */
#define CS__TIME_MIN INT64_C(-62135596800)
#define CS__TIME_MAX INT64_C(253402300799)

/* Parses YYYY-MM-DDTHH:MM:SS followed by an optional fraction (.d+, dropped:
 * truncated to whole seconds) and a zone: Z / z, or +HH:MM, -HH:MM, +HHMM,
 * -HHMM, +HH, -HH. 'T' may also be 't'. Fields are range-checked (month,
 * day of that month incl. leap years, hour 0-23, minute 0-59, second 0-59).
 * The result, normalised to UTC, must lie in [CS__TIME_MIN, CS__TIME_MAX].
 * Returns 0 and sets *out, or -1 and leaves *out alone. No locale, no libc
 * time functions. */
int cs__time_parse(const char *s, size_t n, int64_t *out);

/* Writes "YYYY-MM-DDTHH:MM:SSZ" (20 chars) plus a NUL into out. t must lie in
 * [CS__TIME_MIN, CS__TIME_MAX]. */
#define CS__TIME_STRLEN 20
void cs__time_format(int64_t t, char out[CS__TIME_STRLEN + 1]);

#endif
