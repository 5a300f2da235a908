/* The server's webhook signature and form encoding (server/webhook.c)
 * against known answers: the worked examples of Twilio's request
 * validation (the twilio-node test vectors, and chat events signed with
 * python's hmac), so a wrong sort, a separator or a missing parameter
 * fails here before any receiver sees it. */
#include "check.h"
#include "webhook.h"

static const webhook_param CHAT[] = {
    {"EventType", "onMessageSent", 13},
    {"AccountSid", "AC00000000000000000000000000000001", 34},
    {"InstanceSid", "IS00000000000000000000000000000002", 34},
    {"ChannelSid", "CH00000000000000000000000000000003", 34},
    {"MessageSid", "IM00000000000000000000000000000004", 34},
    {"Index", "0", 1},
    {"From", "alice", 5},
    {"Body", "Hello, world!", 13},
    {"Attributes", "{}", 2},
    {"DateCreated", "2024-01-02T03:04:05.000Z", 24},
    {"Source", "API", 3},
    {"RetryCount", "0", 1},
};
#define N_CHAT (sizeof CHAT / sizeof CHAT[0])
#define TOKEN "0123456789abcdef0123456789abcdef"

TEST(twilio_node_vectors) {
    static const webhook_param p[] = {{"CallSid", "CA1234567890ABCDE", 17},
                                      {"Caller", "+14158675309", 12},
                                      {"Digits", "1234", 4},
                                      {"From", "+14158675309", 12},
                                      {"To", "+18005551212", 12}};
    char sig[29];
    REQUIRE(webhook_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
                              p, 5, sig) == 0);
    CHECK_STR(sig, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    REQUIRE(webhook_signature("12345",
                              "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                              p, 5, sig) == 0);
    CHECK_STR(sig, "kvajT1Ptam85bY51eRf/AJRuM3w=");
    /* the same parameters in another order sign the same */
    webhook_param r[5];
    for (int i = 0; i < 5; i++) r[i] = p[4 - i];
    REQUIRE(webhook_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
                              r, 5, sig) == 0);
    CHECK_STR(sig, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    /* no parameters: the URL alone */
    REQUIRE(webhook_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256="
                "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620",
                NULL, 0, sig) == 0);
    CHECK_STR(sig, "a9nBmqA0ju/hNViExpshrM61xv4=");
}

TEST(chat_event_post_and_get) {
    char sig[29];
    REQUIRE(webhook_signature(TOKEN, "https://hooks.example.com/chat/post?env=test",
                              CHAT, N_CHAT, sig) == 0);
    CHECK_STR(sig, "OGZdvdmc+gU2lHNAx8E8kMG3FH8=");
    /* A wrong token or one changed value gives another signature. */
    REQUIRE(webhook_signature("x" TOKEN, "https://hooks.example.com/chat/post?env=test",
                              CHAT, N_CHAT, sig) == 0);
    CHECK(strcmp(sig, "OGZdvdmc+gU2lHNAx8E8kMG3FH8=") != 0);
    /* GET: the form-encoded pairs after the URL's query, the URL signed
     * alone. */
    char *q = NULL;
    size_t len = 0, cap = 0;
    const char *base = "https://hooks.example.com/chat/post?env=test&";
    REQUIRE(webhook_form(CHAT, N_CHAT, &q, &len, &cap) == 0);
    CHECK_STR(q, "EventType=onMessageSent&AccountSid=AC00000000000000000000000000000001"
                 "&InstanceSid=IS00000000000000000000000000000002&ChannelSid="
                 "CH00000000000000000000000000000003&MessageSid="
                 "IM00000000000000000000000000000004&Index=0&From=alice&Body="
                 "Hello%2C+world%21&Attributes=%7B%7D&DateCreated="
                 "2024-01-02T03%3A04%3A05.000Z&Source=API&RetryCount=0");
    char url[1024];
    snprintf(url, sizeof url, "%s%s", base, q);
    REQUIRE(webhook_signature(TOKEN, url, NULL, 0, sig) == 0);
    CHECK_STR(sig, "/e39sbD/PItJ+0c7ci9mse1M51c=");
    free(q);
}

TEST(form_encoding_bytes) {
    static const webhook_param p[] = {
        {"Body", "a b+c&d=e%f/\xc3\xa9\0z*-._~", 21}, {"Empty", "", 0}};
    char *q = NULL;
    size_t len = 0, cap = 0;
    REQUIRE(webhook_form(p, 2, &q, &len, &cap) == 0);
    CHECK_STR(q, "Body=a+b%2Bc%26d%3De%25f%2F%C3%A9%00z*-._%7E&Empty=");
    CHECK_INT(len, strlen(q));
    free(q);
}

static const check_test TESTS[] = {
    T(twilio_node_vectors),
    T(chat_event_post_and_get),
    T(form_encoding_bytes),
};

CHECK_MAIN(TESTS)
