/* The error table and version calls, generated from CS_ERROR_MAP. */
#include "internal.h"

typedef struct err_row {
    const char *name, *message;
    int status, code;
} err_row;

/* Indexed by the error's number; a number no error has stays all zero. */
static const err_row err_table[CS_E__COUNT] = {
#define CS__ERR_ROW(name, num, status, code, msg) [num] = {#name, msg, status, code},
    CS_ERROR_MAP(CS__ERR_ROW)
#undef CS__ERR_ROW
};

static const err_row *row(cs_err e) {
    return ((unsigned)e < CS_E__COUNT && err_table[e].name) ? &err_table[e]
                                                             : NULL;
}

const char *cs_err_name(cs_err e) { return row(e) ? row(e)->name : "UNKNOWN"; }

const char *cs_err_message(cs_err e) {
    return row(e) ? row(e)->message : "Unknown error";
}

int cs_err_http_status(cs_err e) { return row(e) ? row(e)->status : 500; }

int cs_err_twilio_code(cs_err e) { return row(e) ? row(e)->code : 0; }

const char *cs_version(void) { return CHATSTORE_VERSION; }

int cs_version_number(void) { return CHATSTORE_VERSION_NUMBER; }

cs_str cs_str_c(const char *s) {
    cs_str r = {s, s ? strlen(s) : 0};
    return r;
}
