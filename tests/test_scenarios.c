/* Scenario tests: the five examples of the seed
 * (seed-programmable-chat-message-resource.txt) replayed field by field,
 * under the overrides of DECISIONS.md, plus full page walks (forward and
 * back, both orders, with and without concurrent inserts and deletes) and
 * the Channel / Service JSON of the resources the scenarios create.
 *
 * Every mutation goes through MUT_OK / MUT_FAILS (or a helper that runs
 * cs_store_check afterwards). */
#include "test_util.h"

/* ---- fixture: the seed's channel, addressed as "ChannelSid" ------------- */

/* The seed's code samples address the channel as `.channels("ChannelSid")`:
 * a unique name (it does not match the CH pattern). The scenario fixture is
 * the shared one (service "svc", channel "general") plus a public channel
 * whose unique_name is literally "ChannelSid". */
typedef struct scn {
    tu_fx f;
    char ch[CS_SID_BUFSZ]; /* the SID of channel "ChannelSid" */
} scn;

static bool scn_open_opts(scn *x, const cs_options *o) {
    memset(x, 0, sizeof *x);
    if (!tu_open_opts(&x->f, o)) return false;
    cs_channel_params cp = tu_cp();
    cp.unique_name = S("ChannelSid");
    cs_channel_view cv;
    cs_err e = cs_channel_create(x->f.s, S(x->f.svc), &cp, &cv);
    CHECK_STORE(x->f.s);
    if (e != CS_OK) {
        CHECK_FAIL_("channel ChannelSid: %s", cs_err_name(e));
        return false;
    }
    snprintf(x->ch, sizeof x->ch, "%s", cv.sid);
    return true;
}

static bool scn_open(scn *x) {
    cs_options o = tu_options(TU_SEED);
    return scn_open_opts(x, &o);
}

static void scn_close(scn *x) { tu_close(&x->f); }

#define SEED_CH "ChannelSid"

/* The message URL the contract requires: base + SIDs only. */
static void msg_url(char *out, size_t cap, const char *svc, const char *ch,
                    const char *im) {
    snprintf(out, cap, "%s/v2/Services/%s/Channels/%s/Messages/%s", TU_BASE,
             svc, ch, im);
}

/* Counts occurrences of needle in hay. */
static int count_of(const char *hay, const char *needle) {
    int n = 0;
    size_t k = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + k, needle))
        n++;
    return n;
}

/* ---- seed example 1: create --------------------------------------------- */

/* client.chat.v2.services(IS).channels("ChannelSid")
 *     .messages.create({ body: "Hello, world!" }) */
TEST(seed_create) {
    scn x;
    REQUIRE(scn_open(&x));
    cs_store *s = x.f.s;
    const char *ac = cs_store_account_sid(s);
    REQUIRE(tu_is_sid(ac, "AC"));

    cs_message_params p = tu_mp();
    p.body = S("Hello, world!");
    cs_message_view v;
    MUT_REQ(s, cs_message_create(s, S(x.f.svc), S(SEED_CH), &p, &v));

    /* every property of the returned view */
    CHECK(tu_is_sid(v.sid, "IM"));
    CHECK_STR(v.account_sid, ac);
    CHECK_STR(v.service_sid, x.f.svc);
    CHECK_STR(v.channel_sid, x.ch); /* the CH SID, not "ChannelSid" */
    CHECK(tu_is_sid(v.channel_sid, "CH"));
    CHECK_CSTR(v.attributes, "{}");
    CHECK_INT(v.date_created, TU_T0);
    CHECK_INT(v.date_updated, TU_T0);
    CHECK(v.last_updated_by.ptr == NULL); /* null after create */
    CHECK(!v.was_edited);
    CHECK_CSTR(v.from, "system");
    CHECK_CSTR(v.body, "Hello, world!");
    CHECK_INT(v.index, 0);
    CHECK_INT(v.type, CS_MESSAGE_TEXT);
    CHECK(!v.has_media);
    CHECK(v.body.ptr[v.body.len] == '\0');

    char im[CS_SID_BUFSZ];
    snprintf(im, sizeof im, "%s", v.sid);

    /* the exact JSON, keys in the DECISIONS.md order */
    char url[256], exp[2048];
    msg_url(url, sizeof url, x.f.svc, x.ch, im);
    snprintf(exp, sizeof exp,
             "{\"sid\": \"%s\", \"account_sid\": \"%s\", "
             "\"attributes\": \"{}\", \"service_sid\": \"%s\", "
             "\"to\": \"%s\", \"channel_sid\": \"%s\", "
             "\"date_created\": \"2016-03-24T20:37:57Z\", "
             "\"date_updated\": \"2016-03-24T20:37:57Z\", "
             "\"last_updated_by\": null, \"was_edited\": false, "
             "\"from\": \"system\", \"body\": \"Hello, world!\", "
             "\"index\": 0, \"type\": \"text\", \"media\": null, "
             "\"url\": \"%s\"}",
             im, ac, x.f.svc, x.ch, x.ch, url);
    cs_buf b;
    cs_buf_init(&b, NULL);
    CHECK_STR(tu_render_msg(s, &v, &b), exp);
    CHECK(strstr(b.data ? b.data : "", SEED_CH) == NULL);

    /* the shared builder agrees with the literal above */
    tu_msg_exp xe = {im,        ac,     x.f.svc, x.ch,   "\"{}\"",
                     TU_T0_STR, TU_T0_STR, "null", false, "\"system\"",
                     "\"Hello, world!\"", 0, NULL, NULL};
    char *built = tu_expect_msg(&xe);
    CHECK_STR(built, exp);
    free(built);

    /* what was stored is what was returned */
    cs_message_view g;
    CHECK_OK(cs_message_fetch(s, S(x.f.svc), S(x.ch), S(im), &g));
    CHECK_STR(tu_render_msg(s, &g, &b), exp);

    /* the message is in "ChannelSid", not in "general" */
    CHECK_FAILS(cs_message_fetch(s, S(x.f.svc), S("general"), S(im), &g), 404,
                20404);
    cs_channel_view cv;
    CHECK_OK(cs_channel_fetch(s, S(x.f.svc), S(SEED_CH), &cv));
    CHECK_INT(cv.messages_count, 1);
    CHECK(cv.has_last_message);
    CHECK_STR(cv.last_message_sid, im);
    CHECK_OK(cs_channel_fetch(s, S(x.f.svc), S("general"), &cv));
    CHECK_INT(cv.messages_count, 0);
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    CHECK_INT(st.messages, 1);

    cs_buf_free(&b);
    scn_close(&x);
}

/* Creates a text message in the seed channel with this body. */
static bool seed_msg(scn *x, const char *body, char sid[CS_SID_BUFSZ]) {
    return tu_msg_in(&x->f, x->ch, body, sid, NULL) == CS_OK;
}

/* Renders a fetched message, or "" (and a failure) when the fetch fails. */
static const char *fetch_render(const cs_store *s, const char *svc,
                                const char *ch, const char *im, cs_buf *b) {
    cs_message_view v;
    cs_err e = cs_message_fetch(s, S(svc), S(ch), S(im), &v);
    if (e != CS_OK) {
        CHECK_FAIL_("fetch %s under %s: %s", im, ch, cs_err_name(e));
        return "";
    }
    return tu_render_msg(s, &v, b);
}

/* ---- seed example 2: fetch ---------------------------------------------- */

/* client.chat.v2.services(IS).channels("ChannelSid").messages(IM).fetch() */
TEST(seed_fetch) {
    scn x;
    REQUIRE(scn_open(&x));
    cs_store *s = x.f.s;
    char im[CS_SID_BUFSZ];
    REQUIRE(seed_msg(&x, "Hello", im));
    tu_now = TU_T0 + 3600; /* fetching never touches dates */

    tu_msg_exp xe = {im,        cs_store_account_sid(s), x.f.svc, x.ch,
                     "\"{}\"",  TU_T0_STR, TU_T0_STR,     "null",
                     false,     "\"system\"", "\"Hello\"", 0,
                     NULL,      NULL};
    char *exp = tu_expect_msg(&xe);
    cs_buf b;
    cs_buf_init(&b, NULL);

    cs_message_view v;
    CHECK_OK(cs_message_fetch(s, S(x.f.svc), S(SEED_CH), S(im), &v));
    CHECK_STR(v.sid, im);
    CHECK_STR(v.account_sid, cs_store_account_sid(s));
    CHECK_STR(v.service_sid, x.f.svc);
    CHECK_STR(v.channel_sid, x.ch);
    CHECK_CSTR(v.attributes, "{}");
    CHECK_INT(v.date_created, TU_T0);
    CHECK_INT(v.date_updated, TU_T0);
    CHECK(v.last_updated_by.ptr == NULL);
    CHECK(!v.was_edited);
    CHECK_CSTR(v.from, "system");
    CHECK_CSTR(v.body, "Hello");
    CHECK_INT(v.index, 0);
    CHECK_INT(v.type, CS_MESSAGE_TEXT);
    CHECK(!v.has_media);
    CHECK_STR(tu_render_msg(s, &v, &b), exp);

    /* by unique name and by SID: the same output */
    CHECK_STR(fetch_render(s, x.f.svc, SEED_CH, im, &b), exp);
    CHECK_STR(fetch_render(s, x.f.svc, x.ch, im, &b), exp);
    /* input SIDs match case-insensitively; output stays lowercase */
    char usvc[CS_SID_BUFSZ], uch[CS_SID_BUFSZ], uim[CS_SID_BUFSZ];
    tu_upper_hex(x.f.svc, usvc);
    tu_upper_hex(x.ch, uch);
    tu_upper_hex(im, uim);
    CHECK_STR(fetch_render(s, usvc, uch, uim, &b), exp);
    CHECK_STR(fetch_render(s, usvc, SEED_CH, uim, &b), exp);

    /* missing things are 404 / 20404 */
    CHECK_FAILS(cs_message_fetch(s, S(x.f.svc), S("general"), S(im), &v), 404,
                20404);
    CHECK_FAILS(cs_message_fetch(s, S(x.f.svc), S("channelsid"), S(im), &v),
                404, 20404); /* unique names match byte-exactly */
    CHECK_FAILS(cs_message_fetch(s, S(x.f.svc), S(SEED_CH),
                                 S("IMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), &v),
                404, 20404);
    CHECK_FAILS(cs_message_fetch(s, S("ISaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
                                 S(SEED_CH), S(im), &v),
                404, 20404);

    free(exp);
    cs_buf_free(&b);
    scn_close(&x);
}

/* ---- seed example 4: update --------------------------------------------- */

/* client.chat.v2.services(IS).channels("ChannelSid").messages(IM)
 *     .update({ body: "This will be the body of the new message!" })
 * then the rest of the example output: attributes '{ "foo": "bar" }',
 * last_updated_by "username", from "fromUser", dates 2015-12-16T22:18:37Z /
 * 2015-12-16T22:18:38Z. */
TEST(seed_update) {
    scn x;
    REQUIRE(scn_open(&x));
    cs_store *s = x.f.s;
    const char *ac = cs_store_account_sid(s);
    char im[CS_SID_BUFSZ];
    REQUIRE(seed_msg(&x, "Hello", im));
    cs_buf b;
    cs_buf_init(&b, NULL);

    /* 1. the code sample: Body only, at a later time */
    tu_now = TU_T0 + 61;
    cs_message_params p = tu_mp();
    p.body = S("This will be the body of the new message!");
    cs_message_view v;
    MUT_REQ(s, cs_message_update(s, S(x.f.svc), S(SEED_CH), S(im), &p, &v));
    CHECK_STR(v.sid, im);
    CHECK_CSTR(v.body, "This will be the body of the new message!");
    CHECK(v.was_edited);
    CHECK_INT(v.date_created, TU_T0);
    CHECK_INT(v.date_updated, TU_T0 + 61);
    CHECK(v.last_updated_by.ptr == NULL); /* not given: unchanged (null) */
    CHECK_CSTR(v.from, "system");
    CHECK_CSTR(v.attributes, "{}");
    CHECK_INT(v.index, 0);
    tu_msg_exp x1 = {im,
                     ac,
                     x.f.svc,
                     x.ch,
                     "\"{}\"",
                     TU_T0_STR,
                     "2016-03-24T20:38:58Z",
                     "null",
                     true,
                     "\"system\"",
                     "\"This will be the body of the new message!\"",
                     0,
                     NULL,
                     NULL};
    char *exp1 = tu_expect_msg(&x1);
    CHECK_STR(tu_render_msg(s, &v, &b), exp1);
    CHECK_STR(fetch_render(s, x.f.svc, x.ch, im, &b), exp1);
    free(exp1);

    /* 2. every field of the example output, addressed by SID this time */
    tu_now = TU_T0 + 7200;
    p = tu_mp();
    p.body = S("This will be the body of the new message!");
    p.attributes = S("{ \"foo\": \"bar\" }");
    p.date_created = S("2015-12-16T22:18:37Z");
    p.date_updated = S("2015-12-16T22:18:38Z");
    p.last_updated_by = S("username");
    p.from = S("fromUser");
    MUT_REQ(s, cs_message_update(s, S(x.f.svc), S(x.ch), S(im), &p, &v));
    CHECK_STR(v.sid, im);
    CHECK_STR(v.account_sid, ac);
    CHECK_STR(v.service_sid, x.f.svc);
    CHECK_STR(v.channel_sid, x.ch);
    CHECK_CSTR(v.attributes, "{ \"foo\": \"bar\" }"); /* byte for byte */
    CHECK_INT(v.date_created, INT64_C(1450304317));
    CHECK_INT(v.date_updated, INT64_C(1450304318));
    CHECK_CSTR(v.last_updated_by, "username");
    CHECK(v.was_edited);
    CHECK_CSTR(v.from, "fromUser");
    CHECK_CSTR(v.body, "This will be the body of the new message!");
    CHECK_INT(v.index, 0); /* DateCreated never changes the index */
    CHECK_INT(v.type, CS_MESSAGE_TEXT);
    CHECK(!v.has_media);

    char url[256], exp[2048];
    msg_url(url, sizeof url, x.f.svc, x.ch, im);
    snprintf(exp, sizeof exp,
             "{\"sid\": \"%s\", \"account_sid\": \"%s\", "
             "\"attributes\": \"{ \\\"foo\\\": \\\"bar\\\" }\", "
             "\"service_sid\": \"%s\", \"to\": \"%s\", \"channel_sid\": \"%s\", "
             "\"date_created\": \"2015-12-16T22:18:37Z\", "
             "\"date_updated\": \"2015-12-16T22:18:38Z\", "
             "\"last_updated_by\": \"username\", \"was_edited\": true, "
             "\"from\": \"fromUser\", "
             "\"body\": \"This will be the body of the new message!\", "
             "\"index\": 0, \"type\": \"text\", \"media\": null, "
             "\"url\": \"%s\"}",
             im, ac, x.f.svc, x.ch, x.ch, url);
    CHECK_STR(tu_render_msg(s, &v, &b), exp);
    CHECK_STR(fetch_render(s, x.f.svc, SEED_CH, im, &b), exp);
    CHECK_STR(fetch_render(s, x.f.svc, x.ch, im, &b), exp);

    /* an update without parameters returns the message unchanged */
    tu_now = TU_T0 + 9999;
    p = tu_mp();
    MUT_OK(s, cs_message_update(s, S(x.f.svc), S(SEED_CH), S(im), &p, &v));
    CHECK_STR(tu_render_msg(s, &v, &b), exp);
    CHECK_STR(fetch_render(s, x.f.svc, x.ch, im, &b), exp);

    /* any one parameter is an edit: DateCreated alone moves date_updated
     * to now */
    tu_now = TU_T0 + 10000;
    p = tu_mp();
    p.date_created = S("2015-12-16T22:18:37Z");
    MUT_OK(s, cs_message_update(s, S(x.f.svc), S(SEED_CH), S(im), &p, &v));
    CHECK_INT(v.date_created, INT64_C(1450304317));
    CHECK_INT(v.date_updated, TU_T0 + 10000);
    CHECK(v.was_edited);
    CHECK_CSTR(v.last_updated_by, "username");
    CHECK_CSTR(v.from, "fromUser");
    CHECK_CSTR(v.attributes, "{ \"foo\": \"bar\" }");

    /* updating under the wrong channel is a 404 and changes nothing */
    char *before = tu_dump(&x.f);
    p.body = S("nope");
    MUT_FAILS(s, cs_message_update(s, S(x.f.svc), S("general"), S(im), &p, &v),
              404, 20404);
    char *after = tu_dump(&x.f);
    CHECK_STR(after, before);
    free(before);
    free(after);

    cs_buf_free(&b);
    scn_close(&x);
}

/* ---- seed example 5: delete --------------------------------------------- */

/* client.chat.v2.services(IS).channels("ChannelSid").messages(IM).remove() */
TEST(seed_delete) {
    scn x;
    REQUIRE(scn_open(&x));
    cs_store *s = x.f.s;
    char a[CS_SID_BUFSZ], bb[CS_SID_BUFSZ], c[CS_SID_BUFSZ];
    REQUIRE(seed_msg(&x, "first", a));
    REQUIRE(seed_msg(&x, "second", bb));
    cs_channel_view cv;
    CHECK_OK(cs_channel_fetch(s, S(x.f.svc), S(SEED_CH), &cv));
    CHECK_INT(cv.messages_count, 2);

    MUT_OK(s, cs_message_delete(s, S(x.f.svc), S(SEED_CH), S(a), CS_STR_ABSENT));
    cs_message_view v;
    CHECK_FAILS(cs_message_fetch(s, S(x.f.svc), S(SEED_CH), S(a), &v), 404,
                20404);
    CHECK_FAILS(cs_message_fetch(s, S(x.f.svc), S(x.ch), S(a), &v), 404,
                20404);
    CHECK_OK(cs_channel_fetch(s, S(x.f.svc), S(SEED_CH), &cv));
    CHECK_INT(cv.messages_count, 1);
    CHECK(cv.has_last_message);
    CHECK_STR(cv.last_message_sid, bb);
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    CHECK_INT(st.messages, 1);

    /* the other message is untouched */
    CHECK_OK(cs_message_fetch(s, S(x.f.svc), S(SEED_CH), S(bb), &v));
    CHECK_INT(v.index, 1);
    CHECK_CSTR(v.body, "second");

    /* a second delete is 404 and changes nothing */
    char *before = tu_dump(&x.f);
    MUT_FAILS(s,
              cs_message_delete(s, S(x.f.svc), S(SEED_CH), S(a), CS_STR_ABSENT),
              404, 20404);
    MUT_FAILS(s, cs_message_delete(s, S(x.f.svc), S(x.ch), S(a), CS_STR_ABSENT),
              404, 20404);
    /* a live message addressed under another channel is missing too */
    MUT_FAILS(s,
              cs_message_delete(s, S(x.f.svc), S("general"), S(bb),
                                CS_STR_ABSENT),
              404, 20404);
    char *after = tu_dump(&x.f);
    CHECK_STR(after, before);
    free(before);
    free(after);

    /* the last one: the channel is empty again */
    MUT_OK(s, cs_message_delete(s, S(x.f.svc), S(x.ch), S(bb), CS_STR_ABSENT));
    CHECK_OK(cs_channel_fetch(s, S(x.f.svc), S(SEED_CH), &cv));
    CHECK_INT(cv.messages_count, 0);
    CHECK(!cv.has_last_message);
    CHECK_STR(cv.last_message_sid, "");
    cs_page pg;
    cs_page_params q = tu_qp();
    CHECK_OK(cs_message_list(s, S(x.f.svc), S(SEED_CH), &q, &pg));
    CHECK_INT(pg.count, 0);

    /* freed indices are never given again */
    int64_t idx = -1;
    REQUIRE(tu_msg_in(&x.f, SEED_CH, "third", c, &idx) == CS_OK);
    CHECK_INT(idx, 2);
    CHECK(strcmp(c, a) != 0 && strcmp(c, bb) != 0);
    CHECK_OK(cs_channel_fetch(s, S(x.f.svc), S(SEED_CH), &cv));
    CHECK_INT(cv.messages_count, 1);
    CHECK_STR(cv.last_message_sid, c);
    scn_close(&x);
}

/* ---- the other create parameters and the webhook header ----------------- */

/* Create with every body parameter of the seed: From, Attributes,
 * DateCreated, DateUpdated, LastUpdatedBy, Body (MediaSid: seed_list). */
TEST(seed_create_all_params) {
    scn x;
    REQUIRE(scn_open(&x));
    cs_store *s = x.f.s;
    REQUIRE(seed_msg(&x, "zero", NULL));
    cs_message_params p = tu_mp();
    p.from = S("alice");
    p.attributes = S("{\"k\":[1, 2.5e3, null, true, \"\\u00e9\"]}");
    p.date_created = S("2015-12-16T22:18:37Z");
    p.date_updated = S("2015-12-16T23:18:37+01:00"); /* normalised to UTC */
    p.last_updated_by = S("bob");
    p.body = S("multi\nline \"quoted\" \\ body \x01 Gr\xc3\xbc\xc3\x9f\xc3\xa9");
    p.webhook = S("true");
    cs_message_view v;
    MUT_REQ(s, cs_message_create(s, S(x.f.svc), S(SEED_CH), &p, &v));
    CHECK_INT(v.index, 1); /* arrival order, not DateCreated order */
    CHECK(!v.was_edited);
    tu_msg_exp xe = {v.sid,
                     cs_store_account_sid(s),
                     x.f.svc,
                     x.ch,
                     "\"{\\\"k\\\":[1, 2.5e3, null, true, \\\"\\\\u00e9\\\"]}\"",
                     "2015-12-16T22:18:37Z",
                     "2015-12-16T22:18:37Z",
                     "\"bob\"",
                     false,
                     "\"alice\"",
                     "\"multi\\nline \\\"quoted\\\" \\\\ body \\u0001 "
                     "Gr\xc3\xbc\xc3\x9f\xc3\xa9\"",
                     1,
                     NULL,
                     NULL};
    char *exp = tu_expect_msg(&xe);
    cs_buf b;
    cs_buf_init(&b, NULL);
    CHECK_STR(tu_render_msg(s, &v, &b), exp);
    char im[CS_SID_BUFSZ];
    snprintf(im, sizeof im, "%s", v.sid);
    CHECK_STR(fetch_render(s, x.f.svc, SEED_CH, im, &b), exp);
    free(exp);

    /* Body absent: stored as "" */
    p = tu_mp();
    MUT_REQ(s, cs_message_create(s, S(x.f.svc), S(SEED_CH), &p, &v));
    CHECK_CSTR(v.body, "");
    CHECK_INT(v.index, 2);
    CHECK_INT(v.type, CS_MESSAGE_TEXT);
    CHECK(strstr(tu_render_msg(s, &v, &b), "\"body\": \"\", ") != NULL);
    cs_buf_free(&b);
    scn_close(&x);
}

/* X-Twilio-Webhook-Enabled on create, update and delete reaches the
 * observers; a bad value is 400 / 20001, notifies nobody and changes
 * nothing. */
TEST(seed_webhook_header) {
    scn x;
    REQUIRE(scn_open(&x));
    cs_store *s = x.f.s;
    tu_events ev;
    memset(&ev, 0, sizeof ev);
    uint64_t id = 0;
    REQUIRE(cs_observer_add(s, tu_record, &ev, &id) == CS_OK);

    cs_message_params p = tu_mp();
    p.body = S("Hello, world!");
    p.webhook = S("TRUE");
    cs_message_view v;
    MUT_REQ(s, cs_message_create(s, S(x.f.svc), S(SEED_CH), &p, &v));
    char im[CS_SID_BUFSZ];
    snprintf(im, sizeof im, "%s", v.sid);
    p = tu_mp();
    p.body = S("edited");
    p.webhook = S("false");
    MUT_OK(s, cs_message_update(s, S(x.f.svc), S(SEED_CH), S(im), &p, &v));

    char *before = tu_dump(&x.f);
    p.webhook = S("yes");
    MUT_FAILS(s, cs_message_update(s, S(x.f.svc), S(SEED_CH), S(im), &p, &v),
              400, 20001);
    p = tu_mp();
    p.body = S("x");
    p.webhook = S("1");
    MUT_FAILS(s, cs_message_create(s, S(x.f.svc), S(SEED_CH), &p, &v), 400,
              20001);
    MUT_FAILS(s, cs_message_delete(s, S(x.f.svc), S(SEED_CH), S(im), S("")),
              400, 20001);
    char *after = tu_dump(&x.f);
    CHECK_STR(after, before);
    free(before);
    free(after);

    MUT_OK(s, cs_message_delete(s, S(x.f.svc), S(SEED_CH), S(im), S("True")));
    REQUIRE(ev.n == 3);
    CHECK_INT(ev.type[0], CS_EVENT_MESSAGE_CREATED);
    CHECK_INT(ev.wh[0], CS_WEBHOOK_TRUE);
    CHECK_STR(ev.body[0], "Hello, world!");
    CHECK_INT(ev.type[1], CS_EVENT_MESSAGE_UPDATED);
    CHECK_INT(ev.wh[1], CS_WEBHOOK_FALSE);
    CHECK_STR(ev.body[1], "edited");
    CHECK_INT(ev.type[2], CS_EVENT_MESSAGE_DELETED);
    CHECK_INT(ev.wh[2], CS_WEBHOOK_TRUE);
    for (int i = 0; i < 3; i++) CHECK_STR(ev.sid[i], im);
    CHECK_OK(cs_observer_remove(s, id));
    scn_close(&x);
}

/* ---- seed example 3: read (list) ---------------------------------------- */

/* The messages list URL of the seed channel (SIDs only). */
static void list_path(char *out, size_t cap, const char *svc,
                      const char *ch) {
    snprintf(out, cap, "%s/v2/Services/%s/Channels/%s/Messages", TU_BASE, svc,
             ch);
}

/* client.chat.v2.services(IS).channels("ChannelSid").messages.list(...):
 * one text and one media message (application/pdf, hello.pdf,
 * 99999999999999 bytes), meta first, then "messages". */
TEST(seed_list) {
    scn x;
    cs_options o = tu_options(TU_SEED);
    o.limits.media_bytes = UINT64_C(99999999999999);
    REQUIRE(scn_open_opts(&x, &o));
    cs_store *s = x.f.s;
    const char *ac = cs_store_account_sid(s);
    char t_im[CS_SID_BUFSZ], m_im[CS_SID_BUFSZ], me[CS_SID_BUFSZ];
    REQUIRE(seed_msg(&x, "Hello", t_im));

    REQUIRE(tu_media_in(&x.f, x.f.svc, "application/pdf", "hello.pdf",
                        UINT64_C(99999999999999), me) == CS_OK);
    CHECK(tu_is_sid(me, "ME"));
    cs_message_params p = tu_mp();
    p.body = S("Hello");
    p.media_sid = S(me);
    cs_message_view v;
    MUT_REQ(s, cs_message_create(s, S(x.f.svc), S(SEED_CH), &p, &v));
    snprintf(m_im, sizeof m_im, "%s", v.sid);
    CHECK_INT(v.type, CS_MESSAGE_MEDIA);
    CHECK(v.has_media);
    CHECK_STR(v.media.sid, me);
    CHECK(v.media.size == UINT64_C(99999999999999));
    CHECK_CSTR(v.media.content_type, "application/pdf");
    CHECK_CSTR(v.media.filename, "hello.pdf");
    CHECK_CSTR(v.body, "Hello");
    CHECK_INT(v.index, 1);

    /* the media item now records its message */
    cs_media_view mv;
    CHECK_OK(cs_media_fetch(s, S(x.f.svc), S(me), &mv));
    CHECK(mv.attached);
    CHECK_STR(mv.message_sid, m_im);
    CHECK_STR(mv.channel_sid, x.ch);
    CHECK(mv.size == UINT64_C(99999999999999));

    tu_msg_exp xt = {t_im,      ac,        x.f.svc, x.ch,      "\"{}\"",
                     TU_T0_STR, TU_T0_STR, "null",  false,     "\"system\"",
                     "\"Hello\"", 0,       NULL,    NULL};
    char media_json[256];
    snprintf(media_json, sizeof media_json,
             "{\"sid\": \"%s\", \"size\": 99999999999999, "
             "\"content_type\": \"application/pdf\", "
             "\"filename\": \"hello.pdf\"}",
             me);
    tu_msg_exp xm = xt;
    xm.sid = m_im;
    xm.index = 1;
    xm.media = media_json;
    char *jt = tu_expect_msg(&xt), *jm = tu_expect_msg(&xm);

    char path[256], u0[400], meta[2048];
    list_path(path, sizeof path, x.f.svc, x.ch);
    snprintf(u0, sizeof u0, "\"%s?PageSize=50&Page=0\"", path);
    tu_expect_meta(meta, sizeof meta, 0, 50, u0, "null", u0, "null",
                   "messages");
    size_t n = strlen(meta) + strlen(jt) + strlen(jm) + 64;
    char *exp = malloc(n);
    REQUIRE(exp);
    snprintf(exp, n, "{%s, \"messages\": [%s, %s]}", meta, jt, jm);

    cs_buf b;
    cs_buf_init(&b, NULL);
    cs_page pg;
    cs_page_params q = tu_qp();
    /* no parameters: the example's page (PageSize 50, Page 0) */
    CHECK_OK(cs_message_list(s, S(x.f.svc), S(SEED_CH), &q, &pg));
    CHECK_INT(pg.count, 2);
    CHECK_INT(pg.page_size, 50);
    CHECK_INT(pg.page, 0);
    CHECK_STR(pg.next_token, "");
    CHECK_STR(pg.prev_token, "");
    CHECK_STR(tu_render_page(s, &pg, &b), exp);
    /* by SID: the same page */
    CHECK_OK(cs_message_list(s, S(x.f.svc), S(x.ch), &q, &pg));
    CHECK_STR(tu_render_page(s, &pg, &b), exp);
    /* items read one by one match the rendered ones */
    cs_message_view it;
    cs_page_rewind(&pg);
    REQUIRE(cs_page_next_message(s, &pg, &it));
    CHECK_STR(tu_render_msg(s, &it, &b), jt);
    REQUIRE(cs_page_next_message(s, &pg, &it));
    CHECK_STR(tu_render_msg(s, &it, &b), jm);
    CHECK(!cs_page_next_message(s, &pg, &it));

    /* what list({limit: 20}) actually sends: PageSize=20 */
    char u20[400];
    snprintf(u20, sizeof u20, "\"%s?PageSize=20&Page=0\"", path);
    tu_expect_meta(meta, sizeof meta, 0, 20, u20, "null", u20, "null",
                   "messages");
    snprintf(exp, n, "{%s, \"messages\": [%s, %s]}", meta, jt, jm);
    q.page_size = S("20");
    CHECK_OK(cs_message_list(s, S(x.f.svc), S(SEED_CH), &q, &pg));
    CHECK_STR(tu_render_page(s, &pg, &b), exp);

    /* Order=desc: the media message first, Order in every URL */
    char ud[400];
    snprintf(ud, sizeof ud, "\"%s?Order=desc&PageSize=50&Page=0\"", path);
    tu_expect_meta(meta, sizeof meta, 0, 50, ud, "null", ud, "null",
                   "messages");
    snprintf(exp, n, "{%s, \"messages\": [%s, %s]}", meta, jm, jt);
    q = tu_qp();
    q.order = S("desc");
    CHECK_OK(cs_message_list(s, S(x.f.svc), S(SEED_CH), &q, &pg));
    CHECK_STR(tu_render_page(s, &pg, &b), exp);

    /* updating the media message: its body is fixed, the rest is not */
    char *before = tu_dump(&x.f);
    p = tu_mp();
    p.body = S("Bye");
    MUT_FAILS(s, cs_message_update(s, S(x.f.svc), S(SEED_CH), S(m_im), &p, &v),
              400, 50509);
    char *after = tu_dump(&x.f);
    CHECK_STR(after, before);
    free(before);
    free(after);
    p = tu_mp();
    p.attributes = S("{ \"foo\": \"bar\" }");
    p.last_updated_by = S("username");
    MUT_REQ(s, cs_message_update(s, S(x.f.svc), S(SEED_CH), S(m_im), &p, &v));
    tu_msg_exp xu = xm;
    xu.attributes = "\"{ \\\"foo\\\": \\\"bar\\\" }\"";
    xu.last_updated_by = "\"username\"";
    xu.was_edited = true;
    char *ju = tu_expect_msg(&xu);
    CHECK_STR(tu_render_msg(s, &v, &b), ju);
    free(ju);
    /* the media stays attached: a second message cannot take it */
    p = tu_mp();
    p.media_sid = S(me);
    MUT_FAILS(s, cs_message_create(s, S(x.f.svc), S(SEED_CH), &p, &v), 400,
              50508);

    /* the limit had to be raised: a default store refuses that size */
    tu_fx d;
    REQUIRE(tu_open(&d));
    cs_media_view dm;
    MUT_FAILS(d.s,
              cs_media_create(d.s, S(d.svc), S("application/pdf"),
                              S("hello.pdf"), UINT64_C(99999999999999), &dm),
              400, 50512);
    tu_close(&d);

    free(exp);
    free(jt);
    free(jm);
    cs_buf_free(&b);
    scn_close(&x);
}

/* The read parameters of the seed: Order, PageSize (1..1000), Page,
 * PageToken. */
TEST(seed_list_params) {
    scn x;
    REQUIRE(scn_open(&x));
    cs_store *s = x.f.s;
    for (int i = 0; i < 3; i++) REQUIRE(seed_msg(&x, "m", NULL));
    cs_page pg;
    cs_page_params q = tu_qp();
    const char *svc = x.f.svc;

    q.page_size = S("1000");
    CHECK_OK(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg));
    CHECK_INT(pg.page_size, 1000);
    q.page_size = S("1001"); /* clamped */
    CHECK_OK(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg));
    CHECK_INT(pg.page_size, 1000);
    q.page_size = S("1");
    CHECK_OK(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg));
    CHECK_INT(pg.page_size, 1);
    CHECK_INT(pg.count, 1);
    CHECK(pg.next_token[0] != '\0');
    q.page_size = S("0");
    CHECK_FAILS(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg), 400, 20001);
    q.page_size = S("-1");
    CHECK_FAILS(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg), 400, 20001);
    q.page_size = S("ten");
    CHECK_FAILS(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg), 400, 20001);

    q = tu_qp();
    q.order = S("ASC");
    CHECK_FAILS(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg), 400, 20001);
    q.order = S("asc");
    CHECK_OK(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg));
    CHECK(pg.order_given && !pg.descending);

    /* Page is echoed */
    q = tu_qp();
    q.page = S("7");
    CHECK_OK(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg));
    CHECK_INT(pg.page, 7);
    q.page = S("-1");
    CHECK_FAILS(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg), 400, 20001);

    /* the URLs carry the clamped PageSize and the echoed Page */
    char path[256], want[400], got[512];
    list_path(path, sizeof path, svc, x.ch);
    cs_buf b;
    cs_buf_init(&b, NULL);
    q = tu_qp();
    q.page_size = S("5000");
    CHECK_OK(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg));
    const char *json = tu_render_page(s, &pg, &b);
    CHECK(strstr(json, "{\"meta\": {\"page\": 0, \"page_size\": 1000, ") ==
          json);
    snprintf(want, sizeof want, "%s?PageSize=1000&Page=0", path);
    CHECK_INT(tu_json_url(json, "first_page_url", got, sizeof got), 1);
    CHECK_STR(got, want);
    CHECK_INT(tu_json_url(json, "url", got, sizeof got), 1);
    CHECK_STR(got, want);
    q = tu_qp();
    q.page = S("7");
    q.page_size = S("1");
    CHECK_OK(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg));
    json = tu_render_page(s, &pg, &b);
    snprintf(want, sizeof want, "%s?PageSize=1&Page=7", path);
    CHECK_INT(tu_json_url(json, "url", got, sizeof got), 1);
    CHECK_STR(got, want);
    snprintf(want, sizeof want, "%s?PageSize=1&Page=0", path);
    CHECK_INT(tu_json_url(json, "first_page_url", got, sizeof got), 1);
    CHECK_STR(got, want);
    CHECK_INT(tu_json_url(json, "next_page_url", got, sizeof got), 1);
    tu_query tq;
    CHECK(tu_parse_url(got, &tq));
    CHECK_STR(tq.page, "8");
    CHECK_STR(tq.page_size, "1");
    CHECK(tq.has_token);
    cs_buf_free(&b);

    /* PageToken: issued ones work; anything else is 400 / 20001 */
    q = tu_qp();
    q.page_size = S("1");
    CHECK_OK(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg));
    char tok[CS_TOKEN_BUFSZ];
    snprintf(tok, sizeof tok, "%s", pg.next_token);
    REQUIRE(tok[0]);
    q.page_token = S(tok);
    CHECK_OK(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg));
    CHECK_INT(pg.count, 1);
    int64_t idx[4];
    CHECK_INT(tu_page_indices(s, &pg, idx, 4), 1);
    CHECK_INT(idx[0], 1);
    char bad[CS_TOKEN_BUFSZ];
    snprintf(bad, sizeof bad, "%s", tok);
    size_t bl = strlen(bad);
    bad[bl - 1] = bad[bl - 1] == '0' ? '1' : '0'; /* tampered */
    q.page_token = S(bad);
    CHECK_FAILS(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg), 400, 20001);
    q.page_token = S("PT1");
    CHECK_FAILS(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg), 400, 20001);
    q.page_token = S(tok); /* an asc token in a desc list */
    q.order = S("desc");
    CHECK_FAILS(cs_message_list(s, S(svc), S(SEED_CH), &q, &pg), 400, 20001);
    q.order = CS_STR_ABSENT; /* another channel's token */
    CHECK_FAILS(cs_message_list(s, S(svc), S("general"), &q, &pg), 400, 20001);
    scn_close(&x);
}

/* ---- page walks ---------------------------------------------------------- */

/* A reference model of the general channel: which indices are live, and
 * which existed when the walk started. Pages are followed through the
 * URLs of the rendered meta, exactly as twilio-node does. */
#define WMAX 512
#define WPS 50
#define WPAGES 16

typedef struct model {
    tu_fx *f;
    int n; /* indices handed out so far: 0 .. n-1 */
    char sid[WMAX][CS_SID_BUFSZ];
    bool live[WMAX];
    bool orig[WMAX]; /* existed when the walk started */
} model;

static bool model_insert(model *m) {
    if (m->n >= WMAX) {
        CHECK_FAIL_("model full");
        return false;
    }
    char body[32];
    snprintf(body, sizeof body, "m%d", m->n);
    int64_t idx = -1;
    if (tu_msg_in(m->f, NULL, body, m->sid[m->n], &idx) != CS_OK) return false;
    CHECK_INT(idx, m->n); /* highest index ever given + 1 */
    m->live[m->n] = true;
    m->n++;
    return true;
}

static void model_delete(model *m, int64_t idx) {
    if (idx < 0 || idx >= m->n || !m->live[idx]) return;
    cs_err e = cs_message_delete(m->f->s, S(m->f->svc), S(m->f->ch),
                                 S(m->sid[idx]), CS_STR_ABSENT);
    CHECK_STORE(m->f->s);
    if (e != CS_OK) {
        CHECK_FAIL_("delete index %lld: %s", (long long)idx, cs_err_name(e));
        return;
    }
    m->live[idx] = false;
}

static model *model_new(tu_fx *f, int count) {
    model *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->f = f;
    for (int i = 0; i < count; i++) {
        if (!model_insert(m)) break;
        m->orig[i] = true;
    }
    return m;
}

/* d is the presentation step: +1 asc, -1 desc. */
static bool in_range(const model *m, int64_t i) { return i >= 0 && i < m->n; }

/* Up to WPS live indices strictly beyond bound, in presentation order. */
static size_t model_after(const model *m, int d, int64_t bound,
                          int64_t *out) {
    size_t k = 0;
    for (int64_t i = bound + d; in_range(m, i) && k < WPS; i += d)
        if (m->live[i]) out[k++] = i;
    return k;
}

/* The WPS live indices just before first, in presentation order. */
static size_t model_before(const model *m, int d, int64_t first,
                           int64_t *out) {
    int64_t tmp[WPS];
    size_t k = 0;
    for (int64_t i = first - d; in_range(m, i) && k < WPS; i -= d)
        if (m->live[i]) tmp[k++] = i;
    for (size_t j = 0; j < k; j++) out[j] = tmp[k - 1 - j];
    return k;
}

static bool model_any_after(const model *m, int d, int64_t bound) {
    for (int64_t i = bound + d; in_range(m, i); i += d)
        if (m->live[i]) return true;
    return false;
}

typedef struct pg_read {
    uint64_t page_no;
    int64_t idx[WPS];
    size_t n;
    char self[512], prev[512], next[512];
    int has_prev, has_next; /* tu_json_url results */
} pg_read;

/* Checks one page URL: path, parameter names in order, values. */
static void check_page_url(const char *url, const char *path,
                           const char *order, uint64_t page_no,
                           bool want_token) {
    tu_query q;
    if (!tu_parse_url(url, &q)) {
        CHECK_FAIL_("unparsable page URL %s", url);
        return;
    }
    CHECK_STR(q.path, path);
    const char *names[4];
    int k = 0;
    if (order) names[k++] = "Order";
    names[k++] = "PageSize";
    names[k++] = "Page";
    if (want_token) names[k++] = "PageToken";
    CHECK_INT(q.n_names, k);
    for (int i = 0; i < k && i < q.n_names; i++)
        CHECK_STR(q.names[i], names[i]);
    if (order) CHECK_STR(q.order, order);
    CHECK_STR(q.page_size, "50");
    char pn[32];
    snprintf(pn, sizeof pn, "%llu", (unsigned long long)page_no);
    CHECK_STR(q.page, pn);
    if (want_token) CHECK(q.has_token && q.token[0] != '\0');
}

/* Reads a page: the first one (url NULL: Order as given, PageSize=50) or
 * the one a meta URL points at. Checks the meta against page_no. */
static bool read_page(const model *m, const char *order, const char *url,
                      uint64_t page_no, pg_read *r, cs_buf *b) {
    const tu_fx *f = m->f;
    char path[256];
    list_path(path, sizeof path, f->svc, f->ch);
    memset(r, 0, sizeof *r);
    r->page_no = page_no;
    cs_page pg;
    cs_err e;
    if (!url) {
        e = tu_list(f, order, "50", NULL, NULL, &pg);
    } else {
        tu_query q;
        if (!tu_parse_url(url, &q)) {
            CHECK_FAIL_("unparsable URL %s", url);
            return false;
        }
        CHECK_STR(q.path, path);
        cs_page_params qp = tu_query_params(&q);
        e = cs_message_list(f->s, S(f->svc), S(f->ch), &qp, &pg);
    }
    if (e != CS_OK) {
        CHECK_FAIL_("list page %llu: %s", (unsigned long long)page_no,
                    cs_err_name(e));
        return false;
    }
    CHECK_INT(pg.page, page_no);
    CHECK_INT(pg.page_size, WPS);
    const char *json = tu_render_page(f->s, &pg, b);

    /* {"meta": {"page": N, "page_size": 50, "first_page_url": "...", */
    char head[600];
    snprintf(head, sizeof head,
             "{\"meta\": {\"page\": %llu, \"page_size\": 50, "
             "\"first_page_url\": \"%s?%s%s%sPageSize=50&Page=0\", "
             "\"previous_page_url\": ",
             (unsigned long long)page_no, path, order ? "Order=" : "",
             order ? order : "", order ? "&" : "");
    CHECK(strncmp(json, head, strlen(head)) == 0);
    CHECK(strstr(json, "\"key\": \"messages\"}, \"messages\": [") != NULL);

    r->has_prev = tu_json_url(json, "previous_page_url", r->prev,
                              sizeof r->prev);
    CHECK_INT(tu_json_url(json, "url", r->self, sizeof r->self), 1);
    r->has_next = tu_json_url(json, "next_page_url", r->next, sizeof r->next);
    CHECK(r->has_prev >= 0 && r->has_next >= 0);

    /* url is the request itself */
    if (url) CHECK_STR(r->self, url);
    else check_page_url(r->self, path, order, 0, false);
    /* previous_page_url: null exactly on page 0, else Page=n-1 */
    CHECK_INT(r->has_prev, page_no > 0);
    if (r->has_prev == 1)
        check_page_url(r->prev, path, order, page_no - 1, true);
    if (r->has_next == 1)
        check_page_url(r->next, path, order, page_no + 1, true);

    size_t n = tu_page_indices(f->s, &pg, r->idx, WPS);
    CHECK(n <= WPS);
    r->n = n <= WPS ? n : WPS;
    CHECK_INT(pg.count, n);
    CHECK_INT(count_of(json, "\"sid\": \"IM"), n);
    return true;
}

static void check_indices(const pg_read *r, const int64_t *exp, size_t n) {
    CHECK_INT(r->n, n);
    for (size_t i = 0; i < n && i < r->n; i++)
        if (r->idx[i] != exp[i]) {
            CHECK_FAIL_("page %llu item %zu: index %lld, expected %lld",
                        (unsigned long long)r->page_no, i,
                        (long long)r->idx[i], (long long)exp[i]);
            break;
        }
}

/* Mutations between page reads (mutating walks only). Forward: delete the
 * token's bound (the page's last item), the item expected next, an item
 * already read and one far ahead; append two messages. */
static void mutate_forward(model *m, int d, const pg_read *r) {
    if (!r->n) return;
    int64_t first = r->idx[0], last = r->idx[r->n - 1];
    model_delete(m, last);
    model_delete(m, last + d);
    model_delete(m, first);
    model_delete(m, last + 60 * d);
    model_insert(m);
    model_insert(m);
}

/* Backward: delete the previous token's bound (the page's first item), the
 * two items expected next (the end of the previous page), one farther
 * back and one already read; append two messages. */
static void mutate_backward(model *m, int d, const pg_read *r) {
    if (!r->n) return;
    int64_t first = r->idx[0], last = r->idx[r->n - 1];
    model_delete(m, first);
    model_delete(m, first - d);
    model_delete(m, first - 2 * d);
    model_delete(m, first - 70 * d);
    model_delete(m, last);
    model_insert(m);
    model_insert(m);
}

/* Walks the general channel (holding `count` messages) with PageSize 50:
 * forward to the end via next_page_url, then back to page 0 via
 * previous_page_url, mutating between reads when asked. */
static void walk(int count, const char *order, bool mutating) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    model *m = model_new(&f, count);
    REQUIRE(m->n == count);
    int d = order && !strcmp(order, "desc") ? -1 : 1;
    cs_buf b;
    cs_buf_init(&b, NULL);
    pg_read *fw = calloc(WPAGES, sizeof *fw), *bw = calloc(WPAGES, sizeof *bw);
    REQUIRE(fw && bw);
    int64_t exp[WPS];
    size_t ne;

    /* ---- forward ---- */
    int nf = 0;
    ne = model_after(m, d, d > 0 ? -1 : m->n, exp);
    bool ok = read_page(m, order, NULL, 0, &fw[0], &b);
    check_indices(&fw[0], exp, ne);
    nf = 1;
    while (ok && fw[nf - 1].has_next == 1 && nf < WPAGES) {
        const pg_read *cur = &fw[nf - 1];
        CHECK(cur->n > 0);
        if (!cur->n) break;
        /* next_page_url is there because something lies beyond */
        if (mutating) mutate_forward(m, d, cur);
        ne = model_after(m, d, cur->idx[cur->n - 1], exp);
        ok = read_page(m, order, cur->next, (uint64_t)nf, &fw[nf], &b);
        check_indices(&fw[nf], exp, ne);
        /* next_page_url null exactly when nothing lies beyond */
        if (fw[nf].n)
            CHECK_INT(fw[nf].has_next == 1,
                      model_any_after(m, d, fw[nf].idx[fw[nf].n - 1]));
        nf++;
    }
    CHECK(nf < WPAGES);
    CHECK_INT(fw[nf - 1].has_next, 0);
    if (!mutating) {
        CHECK_INT(nf, (count + WPS - 1) / WPS);
        for (int k = 0; k < nf; k++) {
            size_t want = k + 1 < nf ? WPS : (size_t)(count - WPS * (nf - 1));
            CHECK_INT(fw[k].n, want);
            CHECK_INT(fw[k].has_next, k + 1 < nf);
        }
    }
    /* every index once, in order; every message that existed throughout
     * was seen exactly once */
    {
        int seen[WMAX] = {0};
        int64_t prev = d > 0 ? -1 : WMAX;
        for (int k = 0; k < nf; k++)
            for (size_t i = 0; i < fw[k].n; i++) {
                int64_t ix = fw[k].idx[i];
                if (d > 0 ? ix <= prev : ix >= prev)
                    CHECK_FAIL_("forward: index %lld after %lld",
                                (long long)ix, (long long)prev);
                prev = ix;
                if (ix >= 0 && ix < WMAX) seen[ix]++;
            }
        for (int i = 0; i < m->n; i++) {
            if (m->orig[i] && m->live[i] && seen[i] != 1)
                CHECK_FAIL_("forward: message %d seen %d times", i, seen[i]);
            if (!mutating && seen[i] != 1)
                CHECK_FAIL_("forward: index %d seen %d times", i, seen[i]);
        }
    }

    /* ---- backward, from the last page ---- */
    int nb = 0;
    bw[0] = fw[nf - 1];
    nb = 1;
    while (ok && bw[nb - 1].has_prev == 1 && nb < WPAGES) {
        const pg_read *cur = &bw[nb - 1];
        CHECK(cur->n > 0);
        if (!cur->n || cur->page_no == 0) break;
        if (mutating) mutate_backward(m, d, cur);
        ne = model_before(m, d, cur->idx[0], exp);
        ok = read_page(m, order, cur->prev, cur->page_no - 1, &bw[nb], &b);
        check_indices(&bw[nb], exp, ne);
        if (bw[nb].n)
            CHECK_INT(bw[nb].has_next == 1,
                      model_any_after(m, d, bw[nb].idx[bw[nb].n - 1]));
        nb++;
    }
    CHECK_INT(nb, nf); /* back to page 0 in as many steps */
    CHECK_INT(bw[nb - 1].page_no, 0);
    CHECK_INT(bw[nb - 1].has_prev, 0);
    {
        /* every message that existed throughout and lies between page 0's
         * first item and the start page's last one: seen exactly once */
        int seen[WMAX] = {0};
        for (int k = 0; k < nb; k++)
            for (size_t i = 0; i < bw[k].n; i++) {
                int64_t ix = bw[k].idx[i];
                if (ix >= 0 && ix < WMAX) seen[ix]++;
                if (i && (d > 0 ? ix <= bw[k].idx[i - 1]
                                : ix >= bw[k].idx[i - 1]))
                    CHECK_FAIL_("backward: page order broken at %lld",
                                (long long)ix);
            }
        /* pages read backward sit end to end */
        for (int k = 1; k < nb; k++)
            if (bw[k].n && bw[k - 1].n) {
                int64_t a = bw[k].idx[bw[k].n - 1], c = bw[k - 1].idx[0];
                if (d > 0 ? a >= c : a <= c)
                    CHECK_FAIL_("backward: page %llu overlaps page %llu",
                                (unsigned long long)bw[k].page_no,
                                (unsigned long long)bw[k - 1].page_no);
            }
        const pg_read *p0 = &bw[nb - 1], *pl = &bw[0];
        if (p0->n && pl->n) {
            int64_t lo = p0->idx[0], hi = pl->idx[pl->n - 1];
            if (d < 0) {
                int64_t t = lo;
                lo = hi;
                hi = t;
            }
            for (int64_t i = lo; i <= hi; i++)
                if (m->orig[i] && m->live[i] && seen[i] != 1)
                    CHECK_FAIL_("backward: message %lld seen %d times",
                                (long long)i, seen[i]);
            /* survivors before page 0: none (all original ones fit) */
            for (int64_t i = p0->idx[0] - d; in_range(m, i); i -= d)
                if (m->orig[i] && m->live[i])
                    CHECK_FAIL_("backward: message %lld before page 0",
                                (long long)i);
        }
    }
    /* each step between reads appended two messages */
    if (mutating) CHECK_INT(m->n, count + 2 * (nf - 1) + 2 * (nb - 1));
    else CHECK_INT(m->n, count);
    if (!mutating) {
        /* without changes, the same pages as forward, and previous then
         * next returns to the same place */
        for (int k = 0; k < nb; k++) {
            const pg_read *bp = &bw[k], *fp = &fw[nf - 1 - k];
            CHECK_INT(bp->page_no, fp->page_no);
            check_indices(bp, fp->idx, fp->n);
        }
        for (int k = 1; k < nb; k++) {
            pg_read again;
            REQUIRE(bw[k].has_next == 1);
            if (!read_page(m, order, bw[k].next, bw[k].page_no + 1, &again,
                           &b))
                break;
            const pg_read *fp = &fw[bw[k].page_no + 1];
            check_indices(&again, fp->idx, fp->n);
        }
    }
    free(fw);
    free(bw);
    free(m);
    cs_buf_free(&b);
    tu_close(&f);
}

TEST(walk_230_default_order) { walk(230, NULL, false); }
TEST(walk_230_asc) { walk(230, "asc", false); }
TEST(walk_230_desc) { walk(230, "desc", false); }
TEST(walk_230_asc_mutating) { walk(230, "asc", true); }
TEST(walk_230_desc_mutating) { walk(230, "desc", true); }
TEST(walk_230_default_mutating) { walk(230, NULL, true); }
/* A last page that is exactly full has no next page. */
TEST(walk_200_exactly_full) {
    walk(200, NULL, false);
    walk(200, "desc", false);
}
TEST(walk_50_single_page) {
    walk(50, NULL, false);
    walk(50, "desc", false);
}

/* ---- Channel and Service JSON -------------------------------------------- */

/* The exact Channel JSON (reference §5.1): sid, account_sid, service_sid,
 * friendly_name, unique_name, attributes, type, date_created, date_updated,
 * created_by, members_count, messages_count, url, links {members, messages,
 * invites, webhooks, last_message}. Name arguments are JSON values. */
static void exp_channel(char *out, size_t cap, const char *ac,
                        const char *svc, const char *ch, const char *fn,
                        const char *un, const char *dates,
                        unsigned long long count, const char *last_im) {
    char url[256], last[400];
    snprintf(url, sizeof url, "%s/v2/Services/%s/Channels/%s", TU_BASE, svc,
             ch);
    if (last_im)
        snprintf(last, sizeof last, "\"%s/Messages/%s\"", url, last_im);
    else
        snprintf(last, sizeof last, "null");
    snprintf(out, cap,
             "{\"sid\": \"%s\", \"account_sid\": \"%s\", "
             "\"service_sid\": \"%s\", \"friendly_name\": %s, "
             "\"unique_name\": %s, \"attributes\": \"{}\", "
             "\"type\": \"public\", \"date_created\": \"%s\", "
             "\"date_updated\": \"%s\", \"created_by\": \"system\", "
             "\"members_count\": 0, \"messages_count\": %llu, "
             "\"url\": \"%s\", \"links\": {\"members\": \"%s/Members\", "
             "\"messages\": \"%s/Messages\", \"invites\": \"%s/Invites\", "
             "\"webhooks\": \"%s/Webhooks\", \"last_message\": %s}}",
             ch, ac, svc, fn, un, dates, dates, count, url, url, url, url, url,
             last);
}

static const char *fetch_channel_json(const cs_store *s, const char *svc,
                                      const char *ch, cs_buf *b) {
    cs_channel_view cv;
    cs_err e = cs_channel_fetch(s, S(svc), S(ch), &cv);
    if (e != CS_OK) {
        CHECK_FAIL_("channel fetch %s: %s", ch, cs_err_name(e));
        return "";
    }
    return tu_render_channel(s, &cv, b);
}

/* The channel JSON through the seed scenario: empty (last_message null),
 * after creates (the last message's URL, messages_count), after deleting
 * the last message (the one before it), after deleting all. */
TEST(channel_json) {
    scn x;
    REQUIRE(scn_open(&x));
    cs_store *s = x.f.s;
    const char *ac = cs_store_account_sid(s);
    char exp[4096];
    cs_buf b;
    cs_buf_init(&b, NULL);

    cs_channel_view cv;
    CHECK_OK(cs_channel_fetch(s, S(x.f.svc), S(SEED_CH), &cv));
    CHECK_STR(cv.sid, x.ch);
    CHECK_STR(cv.account_sid, ac);
    CHECK_STR(cv.service_sid, x.f.svc);
    CHECK(cv.friendly_name.ptr == NULL);
    CHECK_CSTR(cv.unique_name, SEED_CH);
    CHECK_CSTR(cv.attributes, "{}");
    CHECK_INT(cv.type, CS_CHANNEL_PUBLIC);
    CHECK_INT(cv.date_created, TU_T0);
    CHECK_INT(cv.date_updated, TU_T0);
    CHECK_CSTR(cv.created_by, "system");
    CHECK_INT(cv.members_count, 0);
    CHECK_INT(cv.messages_count, 0);
    CHECK(!cv.has_last_message);

    exp_channel(exp, sizeof exp, ac, x.f.svc, x.ch, "null",
                "\"" SEED_CH "\"", TU_T0_STR, 0, NULL);
    CHECK_STR(tu_render_channel(s, &cv, &b), exp);
    CHECK_STR(fetch_channel_json(s, x.f.svc, x.ch, &b), exp);

    char a[CS_SID_BUFSZ], c[CS_SID_BUFSZ], d[CS_SID_BUFSZ];
    REQUIRE(seed_msg(&x, "a", a));
    REQUIRE(seed_msg(&x, "c", c));
    REQUIRE(seed_msg(&x, "d", d));
    exp_channel(exp, sizeof exp, ac, x.f.svc, x.ch, "null",
                "\"" SEED_CH "\"", TU_T0_STR, 3, d);
    CHECK_STR(fetch_channel_json(s, x.f.svc, SEED_CH, &b), exp);
    CHECK_STR(fetch_channel_json(s, x.f.svc, x.ch, &b), exp);

    MUT_OK(s, cs_message_delete(s, S(x.f.svc), S(SEED_CH), S(d), CS_STR_ABSENT));
    exp_channel(exp, sizeof exp, ac, x.f.svc, x.ch, "null",
                "\"" SEED_CH "\"", TU_T0_STR, 2, c);
    CHECK_STR(fetch_channel_json(s, x.f.svc, SEED_CH, &b), exp);

    MUT_OK(s, cs_message_delete(s, S(x.f.svc), S(SEED_CH), S(a), CS_STR_ABSENT));
    exp_channel(exp, sizeof exp, ac, x.f.svc, x.ch, "null",
                "\"" SEED_CH "\"", TU_T0_STR, 1, c);
    CHECK_STR(fetch_channel_json(s, x.f.svc, SEED_CH, &b), exp);

    MUT_OK(s, cs_message_delete(s, S(x.f.svc), S(SEED_CH), S(c), CS_STR_ABSENT));
    exp_channel(exp, sizeof exp, ac, x.f.svc, x.ch, "null",
                "\"" SEED_CH "\"", TU_T0_STR, 0, NULL);
    CHECK_STR(fetch_channel_json(s, x.f.svc, SEED_CH, &b), exp);

    /* the fixture's channel: friendly_name "General", unique_name
     * "general"; its message count is its own */
    REQUIRE(tu_msg(&x.f, "g", a) == CS_OK);
    exp_channel(exp, sizeof exp, ac, x.f.svc, x.f.ch, "\"General\"",
                "\"general\"", TU_T0_STR, 1, a);
    CHECK_STR(fetch_channel_json(s, x.f.svc, "general", &b), exp);

    cs_buf_free(&b);
    scn_close(&x);
}

/* The channel list page: "channels" first, then meta with key "channels"
 * (public channels in creation order). */
TEST(channel_list_json) {
    scn x;
    REQUIRE(scn_open(&x));
    cs_store *s = x.f.s;
    const char *ac = cs_store_account_sid(s);
    char im[CS_SID_BUFSZ];
    REQUIRE(seed_msg(&x, "Hello", im));
    char c1[4096], c2[4096], meta[2048], u0[400];
    exp_channel(c1, sizeof c1, ac, x.f.svc, x.f.ch, "\"General\"",
                "\"general\"", TU_T0_STR, 0, NULL);
    exp_channel(c2, sizeof c2, ac, x.f.svc, x.ch, "null", "\"" SEED_CH "\"",
                TU_T0_STR, 1, im);
    snprintf(u0, sizeof u0, "\"%s/v2/Services/%s/Channels?PageSize=50&Page=0\"",
             TU_BASE, x.f.svc);
    tu_expect_meta(meta, sizeof meta, 0, 50, u0, "null", u0, "null",
                   "channels");
    size_t n = strlen(c1) + strlen(c2) + strlen(meta) + 64;
    char *exp = malloc(n);
    REQUIRE(exp);
    snprintf(exp, n, "{\"channels\": [%s, %s], %s}", c1, c2, meta);
    cs_page pg;
    cs_page_params q = tu_qp();
    CHECK_OK(cs_channel_list(s, S(x.f.svc), &q, &pg));
    CHECK_INT(pg.count, 2);
    cs_buf b;
    cs_buf_init(&b, NULL);
    CHECK_STR(tu_render_page(s, &pg, &b), exp);
    free(exp);
    cs_buf_free(&b);
    scn_close(&x);
}

/* The Service JSON (reference §6 key order and defaults; links). The
 * reference gives no default for consumption_report_interval, so its value
 * is only required to be an integer; everything else is exact. */
static void exp_service(char *out, size_t cap, const cs_service_view *v,
                        const char *fn_json, const char *cri) {
    char url[256];
    snprintf(url, sizeof url, "%s/v2/Services/%s", TU_BASE, v->sid);
    snprintf(out, cap,
             "{\"sid\": \"%s\", \"account_sid\": \"%s\", "
             "\"friendly_name\": %s, \"date_created\": \"%s\", "
             "\"date_updated\": \"%s\", "
             "\"default_service_role_sid\": \"%s\", "
             "\"default_channel_role_sid\": \"%s\", "
             "\"default_channel_creator_role_sid\": \"%s\", "
             "\"read_status_enabled\": true, \"reachability_enabled\": false, "
             "\"typing_indicator_timeout\": 5, "
             "\"consumption_report_interval\": %s, "
             "\"limits\": {\"user_channels\": 250, \"channel_members\": 100}, "
             "\"pre_webhook_url\": null, \"post_webhook_url\": null, "
             "\"webhook_method\": null, \"webhook_filters\": null, "
             "\"pre_webhook_retry_count\": 0, \"post_webhook_retry_count\": 0, "
             "\"notifications\": {\"removed_from_channel\": {\"enabled\": false}, "
             "\"log_enabled\": false, \"added_to_channel\": {\"enabled\": false}, "
             "\"new_message\": {\"enabled\": false}, "
             "\"invited_to_channel\": {\"enabled\": false}}, "
             "\"media\": {\"compatibility_message\": "
             "\"Media messages are not supported by your client\", "
             "\"size_limit_mb\": 150}, "
             "\"url\": \"%s\", \"links\": {\"channels\": \"%s/Channels\", "
             "\"users\": \"%s/Users\", \"roles\": \"%s/Roles\", "
             "\"bindings\": \"%s/Bindings\"}}",
             v->sid, v->account_sid, fn_json, TU_T0_STR, TU_T0_STR,
             v->default_service_role_sid, v->default_channel_role_sid,
             v->default_channel_creator_role_sid, cri, url, url, url, url, url);
}

/* The digits after "consumption_report_interval": in json ("" if none). */
static void get_cri(const char *json, char *out, size_t cap) {
    out[0] = '\0';
    const char *p = strstr(json, "\"consumption_report_interval\": ");
    if (!p) return;
    p += strlen("\"consumption_report_interval\": ");
    size_t n = 0;
    while (p[n] >= '0' && p[n] <= '9' && n + 1 < cap) n++;
    memcpy(out, p, n);
    out[n] = '\0';
}

TEST(service_json) {
    scn x;
    REQUIRE(scn_open(&x));
    cs_store *s = x.f.s;
    REQUIRE(seed_msg(&x, "Hello", NULL));
    cs_service_view sv;
    CHECK_OK(cs_service_fetch(s, S(x.f.svc), &sv));
    CHECK_STR(sv.sid, x.f.svc);
    CHECK_STR(sv.account_sid, cs_store_account_sid(s));
    CHECK_CSTR(sv.friendly_name, "svc");
    CHECK_INT(sv.date_created, TU_T0);
    CHECK_INT(sv.date_updated, TU_T0);
    CHECK(tu_is_sid(sv.default_service_role_sid, "RL"));
    CHECK(tu_is_sid(sv.default_channel_role_sid, "RL"));
    CHECK(tu_is_sid(sv.default_channel_creator_role_sid, "RL"));

    cs_buf b;
    cs_buf_init(&b, NULL);
    REQUIRE_OK(cs_render_service(s, &sv, &b));
    char cri[24];
    get_cri(b.data, cri, sizeof cri);
    CHECK(cri[0] != '\0');
    char exp[4096];
    exp_service(exp, sizeof exp, &sv, "\"svc\"", cri[0] ? cri : "0");
    CHECK_STR(b.data, exp);

    /* the service list page: "services" first, then meta */
    char meta[2048], u0[400];
    snprintf(u0, sizeof u0, "\"%s/v2/Services?PageSize=50&Page=0\"", TU_BASE);
    tu_expect_meta(meta, sizeof meta, 0, 50, u0, "null", u0, "null",
                   "services");
    size_t n = strlen(exp) + strlen(meta) + 64;
    char *page = malloc(n);
    REQUIRE(page);
    snprintf(page, n, "{\"services\": [%s], %s}", exp, meta);
    cs_page pg;
    cs_page_params q = tu_qp();
    CHECK_OK(cs_service_list(s, &q, &pg));
    CHECK_INT(pg.count, 1);
    CHECK_STR(tu_render_page(s, &pg, &b), page);
    free(page);
    cs_buf_free(&b);
    scn_close(&x);
}

/* An empty channel's page: "messages": [] and both page URLs null. */
TEST(list_empty_json) {
    scn x;
    REQUIRE(scn_open(&x));
    cs_store *s = x.f.s;
    char path[256], u0[400], meta[2048], exp[3000];
    list_path(path, sizeof path, x.f.svc, x.ch);
    snprintf(u0, sizeof u0, "\"%s?PageSize=50&Page=0\"", path);
    tu_expect_meta(meta, sizeof meta, 0, 50, u0, "null", u0, "null",
                   "messages");
    snprintf(exp, sizeof exp, "{%s, \"messages\": []}", meta);
    cs_page pg;
    cs_page_params q = tu_qp();
    CHECK_OK(cs_message_list(s, S(x.f.svc), S(SEED_CH), &q, &pg));
    CHECK_INT(pg.count, 0);
    cs_buf b;
    cs_buf_init(&b, NULL);
    CHECK_STR(tu_render_page(s, &pg, &b), exp);
    /* the same after a message came and went */
    char im[CS_SID_BUFSZ];
    REQUIRE(seed_msg(&x, "gone", im));
    MUT_OK(s, cs_message_delete(s, S(x.f.svc), S(x.ch), S(im), CS_STR_ABSENT));
    CHECK_OK(cs_message_list(s, S(x.f.svc), S(SEED_CH), &q, &pg));
    CHECK_STR(tu_render_page(s, &pg, &b), exp);
    cs_buf_free(&b);
    scn_close(&x);
}

/* A next token whose page emptied before it was followed: an empty page,
 * next_page_url null; its previous page is the page the token came from;
 * a message appended afterwards is found from the same token. */
TEST(walk_token_past_deleted_tail) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    model *m = model_new(&f, 51);
    REQUIRE(m->n == 51);
    cs_buf b;
    cs_buf_init(&b, NULL);
    pg_read *r = calloc(4, sizeof *r);
    REQUIRE(r);
    REQUIRE(read_page(m, NULL, NULL, 0, &r[0], &b));
    CHECK_INT(r[0].n, 50);
    REQUIRE(r[0].has_next == 1);
    model_delete(m, 50);
    REQUIRE(read_page(m, NULL, r[0].next, 1, &r[1], &b));
    CHECK_INT(r[1].n, 0);
    CHECK_INT(r[1].has_next, 0);
    CHECK_INT(r[1].has_prev, 1);
    if (r[1].has_prev == 1) {
        REQUIRE(read_page(m, NULL, r[1].prev, 0, &r[2], &b));
        check_indices(&r[2], r[0].idx, r[0].n);
    }
    REQUIRE(model_insert(m)); /* index 51 */
    REQUIRE(read_page(m, NULL, r[0].next, 1, &r[3], &b));
    int64_t want[1] = {51};
    check_indices(&r[3], want, 1);
    CHECK_INT(r[3].has_next, 0);
    free(r);
    free(m);
    cs_buf_free(&b);
    tu_close(&f);
}

/* Deleting the scenario's channel takes its messages along, with the media
 * they used; the unique name is free again. Deleting the service takes
 * everything. */
TEST(channel_delete_cascade) {
    scn x;
    REQUIRE(scn_open(&x));
    cs_store *s = x.f.s;
    char a[CS_SID_BUFSZ], me[CS_SID_BUFSZ], g[CS_SID_BUFSZ];
    REQUIRE(seed_msg(&x, "Hello", a));
    REQUIRE(tu_media(&x.f, "hello.pdf", me) == CS_OK);
    cs_message_params p = tu_mp();
    p.media_sid = S(me);
    cs_message_view v;
    MUT_REQ(s, cs_message_create(s, S(x.f.svc), S(SEED_CH), &p, &v));
    char mm[CS_SID_BUFSZ];
    snprintf(mm, sizeof mm, "%s", v.sid);
    REQUIRE(tu_msg(&x.f, "general stays", g) == CS_OK);

    MUT_OK(s, cs_channel_delete(s, S(x.f.svc), S(SEED_CH), CS_STR_ABSENT));
    CHECK_FAILS(cs_message_fetch(s, S(x.f.svc), S(x.ch), S(a), &v), 404,
                20404);
    CHECK_FAILS(cs_message_fetch(s, S(x.f.svc), S(SEED_CH), S(mm), &v), 404,
                20404);
    cs_page pg;
    cs_page_params q = tu_qp();
    CHECK_FAILS(cs_message_list(s, S(x.f.svc), S(SEED_CH), &q, &pg), 404,
                20404);
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    CHECK_INT(st.messages, 1);
    CHECK_INT(st.channels, 1);
    CHECK_INT(st.media, 0);
    CHECK_FAILS(cs_media_fetch(s, S(x.f.svc), S(me), NULL), 404, 20404);
    CHECK_OK(cs_message_fetch(s, S(x.f.svc), S("general"), S(g), &v));

    /* the name is free again; the new channel is empty and another SID */
    cs_channel_params cp = tu_cp();
    cp.unique_name = S(SEED_CH);
    cs_channel_view cv;
    MUT_REQ(s, cs_channel_create(s, S(x.f.svc), &cp, &cv));
    CHECK(strcmp(cv.sid, x.ch) != 0);
    CHECK_INT(cv.messages_count, 0);
    CHECK_FAILS(cs_message_fetch(s, S(x.f.svc), S(SEED_CH), S(a), &v), 404,
                20404);
    int64_t idx = -1;
    REQUIRE(tu_msg_in(&x.f, SEED_CH, "again", NULL, &idx) == CS_OK);
    CHECK_INT(idx, 0); /* a new channel starts at 0 */
    p = tu_mp();
    p.media_sid = S(me); /* it went with its message */
    MUT_FAILS(s, cs_message_create(s, S(x.f.svc), S(SEED_CH), &p, &v), 400,
              50507);

    MUT_OK(s, cs_service_delete(s, S(x.f.svc)));
    CHECK_FAILS(cs_message_fetch(s, S(x.f.svc), S("general"), S(g), &v), 404,
                20404);
    CHECK_FAILS(cs_channel_fetch(s, S(x.f.svc), S("general"), &cv), 404,
                20404);
    cs_store_stats_get(s, &st);
    CHECK_INT(st.services, 0);
    CHECK_INT(st.channels, 0);
    CHECK_INT(st.messages, 0);
    CHECK_INT(st.media, 0);
    x.f.n_media = 0; /* the fixture's media list is gone with the service */
    scn_close(&x);
}

static const check_test tests[] = {
    T(seed_create),
    T(seed_fetch),
    T(seed_update),
    T(seed_delete),
    T(seed_create_all_params),
    T(seed_webhook_header),
    T(seed_list),
    T(seed_list_params),
    T(walk_230_default_order),
    T(walk_230_asc),
    T(walk_230_desc),
    T(walk_230_asc_mutating),
    T(walk_230_desc_mutating),
    T(walk_230_default_mutating),
    T(walk_200_exactly_full),
    T(walk_50_single_page),
    T(channel_json),
    T(channel_list_json),
    T(service_json),
    T(list_empty_json),
    T(walk_token_past_deleted_tail),
    T(channel_delete_cascade),
};

CHECK_MAIN(tests)
