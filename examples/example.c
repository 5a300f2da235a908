/* A tour of the chatstore API: a service, a channel addressed by unique
 * name, a few messages, an edit, and pages in both orders as JSON. */
#include <chatstore.h>
#include <stdio.h>

static int fail(const char *what, cs_err e) {
    fprintf(stderr, "%s: %s (%d %d)\n", what, cs_err_message(e),
            cs_err_http_status(e), cs_err_twilio_code(e));
    return 1;
}

int main(void) {
    cs_options opts = CS_OPTIONS_INIT;
    opts.use_seed = true; /* reproducible SIDs */
    opts.seed = 42;
    cs_store *s;
    cs_err e = cs_store_new(&opts, &s);
    if (e) return fail("store", e);

    cs_service_view svc;
    cs_channel_view ch;
    cs_message_view m;
    cs_buf out;
    cs_buf_init(&out, NULL);

    if ((e = cs_service_create(s, cs_str_c("demo"), &svc)))
        return fail("service", e);
    cs_channel_params cp = {0};
    cp.unique_name = cs_str_c("general");
    cp.friendly_name = cs_str_c("General");
    if ((e = cs_channel_create(s, cs_str_c(svc.sid), &cp, &ch)))
        return fail("channel", e);

    const char *bodies[] = {"Hello", "Grüße aus Köln", "three", "four"};
    char first[CS_SID_BUFSZ] = "";
    for (int i = 0; i < 4; i++) {
        cs_message_params mp = {0};
        mp.body = cs_str_c(bodies[i]);
        mp.from = cs_str_c(i % 2 ? "bob" : "alice");
        if ((e = cs_message_create(s, cs_str_c(svc.sid), cs_str_c("general"),
                                   &mp, &m)))
            return fail("message", e);
        if (!first[0]) snprintf(first, sizeof first, "%s", m.sid);
    }

    cs_message_params edit = {0};
    edit.body = cs_str_c("Hello, world!");
    edit.last_updated_by = cs_str_c("alice");
    if ((e = cs_message_update(s, cs_str_c(svc.sid), cs_str_c("general"),
                               cs_str_c(first), &edit, &m)))
        return fail("update", e);
    if ((e = cs_render_message(s, &m, &out))) return fail("render", e);
    printf("edited message:\n%s\n\n", out.data);

    cs_page pg;
    cs_page_params q = {0};
    q.page_size = cs_str_c("2");
    q.order = cs_str_c("desc");
    if ((e = cs_message_list(s, cs_str_c(svc.sid), cs_str_c("general"), &q,
                             &pg)))
        return fail("list", e);
    cs_buf_reset(&out);
    if ((e = cs_render_page(s, &pg, &out))) return fail("render page", e);
    printf("newest two, desc:\n%s\n", out.data);

    cs_buf_free(&out);
    cs_store_free(s);
    return 0;
}
