/* The input checks every resource shares: text lengths in code points,
 * attributes JSON, dates, the webhook header, and the date calls.
 *
 * Invariants: checks only read their input; each returns CS_OK or the one
 * error the caller named, so every resource reports its own code. */
#include "internal.h"

cs_err cs__check_text(cs_str v, size_t max_chars, cs_err too_long) {
    if (!v.ptr) return CS_OK;
    /* Each code point takes at most 4 bytes: a quick bound before counting
     * (divided, not multiplied: max_chars * 4 can wrap around). */
    if (v.len / 4 > max_chars) {
        return cs__utf8_valid(v.ptr, v.len) ? too_long : CS_E_BAD_UTF8;
    }
    size_t n = cs__utf8_length(v.ptr, v.len);
    if (n == SIZE_MAX) return CS_E_BAD_UTF8;
    return n > max_chars ? too_long : CS_OK;
}

cs_err cs__check_attributes(const cs_store *s, cs_str v) {
    if (!v.ptr) return CS_OK;
    if (v.len > s->lim.attributes_bytes) return CS_E_ATTRIBUTES_TOO_LONG;
    return cs__json_valid(v.ptr, v.len) ? CS_OK : CS_E_ATTRIBUTES_INVALID;
}

cs_err cs__check_date(cs_str v, cs_err bad, int64_t *out) {
    if (!v.ptr) return CS_OK;
    return cs__time_parse(v.ptr, v.len, out) == 0 ? CS_OK : bad;
}

static bool eq_nocase(cs_str v, const char *lit) {
    size_t n = strlen(lit);
    if (v.len != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = v.ptr[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != lit[i]) return false;
    }
    return true;
}

cs_err cs__parse_webhook(cs_str v, cs_webhook *out) {
    if (!v.ptr) {
        *out = CS_WEBHOOK_ABSENT;
    } else if (eq_nocase(v, "true")) {
        *out = CS_WEBHOOK_TRUE;
    } else if (eq_nocase(v, "false")) {
        *out = CS_WEBHOOK_FALSE;
    } else {
        return CS_E_BAD_WEBHOOK_HEADER;
    }
    return CS_OK;
}

cs_err cs__webhook_of(cs_str v, cs_webhook typed, cs_webhook *out) {
    if (typed == CS_WEBHOOK_ABSENT) return cs__parse_webhook(v, out);
    if (v.ptr) return CS_E_INVALID_ARGUMENT;
    if (typed != CS_WEBHOOK_TRUE && typed != CS_WEBHOOK_FALSE)
        return CS_E_BAD_WEBHOOK_HEADER;
    *out = typed;
    return CS_OK;
}

cs_str cs_webhook_str(cs_webhook w) {
    if (w == CS_WEBHOOK_TRUE) return (cs_str){"true", 4};
    if (w == CS_WEBHOOK_FALSE) return (cs_str){"false", 5};
    return (cs_str){NULL, 0};
}

const cs_channel_params cs__no_channel_params;
const cs_message_params cs__no_message_params;

void cs_format_date(int64_t t, char out[CS_DATE_BUFSZ]) {
    CS__REQUIRE(out);
    if (t < CS__TIME_MIN) t = CS__TIME_MIN;
    if (t > CS__TIME_MAX) t = CS__TIME_MAX;
    cs__time_format(t, out);
}

cs_err cs_parse_date(cs_str v, int64_t *out) {
    CS__REQUIRE(out);
    if (!v.ptr) return CS_E_INVALID_ARGUMENT;
    return cs__time_parse(v.ptr, v.len, out) == 0 ? CS_OK
                                                  : CS_E_INVALID_ARGUMENT;
}
