/* Uses the installed chatstore: one message, rendered. */
#include <chatstore.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    if (cs_version_number() != CHATSTORE_VERSION_NUMBER) return 1;
    cs_store *s;
    if (cs_store_new(NULL, &s)) return 2;
    cs_service_view sv;
    cs_channel_view cv;
    cs_message_view mv;
    cs_channel_params cp = {0};
    cs_message_params mp = {0};
    mp.body = cs_str_c("installed");
    if (cs_service_create(s, cs_str_c("svc"), &sv) ||
        cs_channel_create(s, cs_str_c(sv.sid), &cp, &cv) ||
        cs_message_create(s, cs_str_c(sv.sid), cs_str_c(cv.sid), &mp, &mv))
        return 3;
    cs_buf b;
    cs_buf_init(&b, NULL);
    if (cs_render_message(s, &mv, &b) || !strstr(b.data, "\"body\": \"installed\""))
        return 4;
    puts(b.data);
    cs_buf_free(&b);
    cs_store_free(s);
    return 0;
}
