/* lib/text.c compiled a second time with a 64-level bit ring instead of
 * 65536, so that fuzz inputs of a few KiB exercise the ring's overwrite and
 * refill paths (CS__STACK_LEVELS is overridable for exactly this). The
 * functions are renamed so both copies link into one program. */
#define CS__STACK_LEVELS 64u
#define cs__utf8_valid fzj_small_utf8_valid
#define cs__utf8_valid_sw fzj_small_utf8_valid_sw
#define cs__utf8_length fzj_small_utf8_length
#define cs__json_valid fzj_small_json_valid
#include "text.c"
