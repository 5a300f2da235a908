/* chatstore-server: a local, stateful Twilio Chat v2 API over chatstore.
 *
 *   chatstore-server [--listen HOST:PORT] [--account-sid AC...]
 *                    [--auth-token TOKEN] [--base-url URL]
 *                    [--demo [WEBHOOK_URL]] [--webhook-queue N]
 *                    [--threads N] [--media-cap BYTES] [--media-ttl SECONDS]
 *                    [--max-services N] [--max-channels N]
 *                    [--max-messages N] [--max-memory BYTES]
 *                    [--data-dir DIR [--fsync always|everysec|no]
 *                     [--compact-ratio R] [--compact-min-bytes N] [--repair]]
 *                    [--seed N] [--clock DATE[+STEP]] [--fixture FILE]
 *                    [--test-endpoints]
 */
#include "fixture.h"
#include "persist.h"
#include "server.h"
#include "webhook.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static void usage(void) {
    fprintf(stderr,
            "usage: chatstore-server [--listen HOST:PORT] [--account-sid AC...]\n"
            "         [--auth-token TOKEN] [--base-url URL]\n"
            "         [--demo [WEBHOOK_URL]] [--webhook-queue N]\n"
            "         [--threads N] [--media-cap BYTES] [--media-ttl SECONDS]\n"
            "         [--max-services N] [--max-channels N]\n"
            "         [--max-messages N] [--max-memory BYTES]\n"
            "         [--data-dir DIR [--fsync always|everysec|no]\n"
            "          [--compact-ratio R] [--compact-min-bytes N] [--repair]]\n"
            "         [--seed N] [--clock DATE[+STEP]] [--fixture FILE]\n"
            "         [--test-endpoints]\n"
            "Credentials default to $CHATSTORE_ACCOUNT_SID / $CHATSTORE_AUTH_TOKEN,\n"
            "else they are generated and printed (with --data-dir the account\n"
            "SID is the data directory's).\n"
            "--demo [URL]        a demo service and channel; with URL, the service\n"
            "                    sends every webhook event to URL\n"
            "--webhook-queue N   webhook deliveries kept pending (default 10000);\n"
            "                    one more drops the oldest\n"
            "--media-cap BYTES   media bytes kept in total (default 64 MiB)\n"
            "--media-ttl SECONDS an upload no message uses is deleted after this\n"
            "                    (default 3600; 0: never)\n"
            "--max-services N, --max-channels N, --max-messages N\n"
            "                    quotas on the whole store (default 0: none);\n"
            "                    a create past one is 403 / 20403\n"
            "--max-memory BYTES  quota on the store's bytes plus the media bytes\n"
            "--data-dir DIR      journal every change to DIR and recover from it\n"
            "--fsync MODE        always: a 2xx means on disk; everysec (default):\n"
            "                    fdatasync once a second; no: the OS decides\n"
            "--compact-ratio R   snapshot when the journal exceeds R times the\n"
            "                    snapshot (default 1.0) ...\n"
            "--compact-min-bytes N  ... and N bytes (default 67108864)\n"
            "--repair            start from the longest valid prefix of a damaged\n"
            "                    DIR (what is dropped is kept in DIR/damaged/)\n"
            "Test fixture (memory only, not with --data-dir):\n"
            "--seed N            SIDs, keys and page tokens from N alone (and the\n"
            "                    account SID, when none is given)\n"
            "--clock DATE[+STEP] the store's time is DATE (ISO 8601), advanced by\n"
            "                    STEP (e.g. 1s, 5m, 1h, 1d) by each committed change\n"
            "--fixture FILE      load services, channels and messages from a JSON\n"
            "                    file before listening\n"
            "--test-endpoints    POST /_chatstore/reset, GET|POST /_chatstore/clock,\n"
            "                    GET /_chatstore/stats\n");
}

static void random_hex(char *out, size_t digits) {
    static const char hex[] = "0123456789abcdef";
    unsigned char b[64];
    if (getrandom(b, digits, 0) != (ssize_t)digits) memset(b, 7, sizeof b);
    for (size_t i = 0; i < digits; i++) out[i] = hex[b[i] & 15];
    out[digits] = '\0';
}

static int parse_listen(const char *s, char *host, size_t cap, unsigned *port) {
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= cap) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end || p > 65535) return -1;
    *port = (unsigned)p;
    return 0;
}

/* Creates a service and a channel and prints commands to try them; with a
 * webhook URL the service sends every event there. */
static int demo(server *sv, const char *origin, const char *hook) {
    cs_service_view svc;
    cs_channel_view ch;
    cs_channel_params cp = {0};
    cp.unique_name = cs_str_c("general");
    cp.friendly_name = cs_str_c("General");
    cs_service_params sp = {0};
    cs_webhook_event every[CS_WEBHOOK_EVENTS];
    for (int i = 0; i < CS_WEBHOOK_EVENTS; i++)
        every[i] = (cs_webhook_event)(i + 1);
    sp.friendly_name = cs_str_c("demo");
    if (hook) {
        sp.post_webhook_url = cs_str_c(hook);
        sp.webhook_filter_values = every;
        sp.n_webhook_filter_values = CS_WEBHOOK_EVENTS;
    }
    cs_store_lock_exclusive(sv->store);
    cs_err e = cs_service_create_with(sv->store, &sp, &svc);
    if (!e) e = cs_channel_create(sv->store, cs_str_c(svc.sid), &cp, &ch);
    cs_store_unlock(sv->store);
    if (e) {
        fprintf(stderr, "demo: %s\n", cs_err_message(e));
        return -1;
    }
    const char *u = sv->cfg.account_sid, *t = sv->cfg.auth_token;
    const char *wh = hook ? " -H 'X-Twilio-Webhook-Enabled: true'" : "";
    printf("demo service %s, channel %s (unique name \"general\")\n", svc.sid, ch.sid);
    if (hook)
        printf("demo webhooks: every event of the demo service goes to %s (POST, "
               "signed with the auth token), for REST calls with the header "
               "X-Twilio-Webhook-Enabled: true\n", hook);
    printf("  curl -u %s:%s -X POST%s %s/v2/Services/%s/Channels/general/Messages "
           "--data-urlencode 'Body=Hello, world!' --data-urlencode 'From=alice'\n",
           u, t, wh, origin, svc.sid);
    printf("  curl -u %s:%s '%s/v2/Services/%s/Channels/general/Messages?PageSize=20'\n",
           u, t, origin, svc.sid);
    printf("  curl -u %s:%s '%s/v2/Services/%s/Channels/general/Messages?Order=desc'\n",
           u, t, origin, svc.sid);
    printf("  curl -u %s:%s %s/v2/Services/%s/Channels/general\n", u, t, origin,
           svc.sid);
    return 0;
}

int main(int argc, char **argv) {
    char host[256] = "127.0.0.1";
    server_config cfg = {host, 8080, NULL, NULL, NULL, 1024 * 1024,
                         64 * 1024 * 1024, 2, NULL, PERSIST_FSYNC_EVERYSEC,
                         PERSIST_COMPACT_RATIO_DEFAULT,
                         PERSIST_COMPACT_MIN_DEFAULT, 0, NULL,
                         0, 0, 0, 0, MEDIA_TTL_DEFAULT};
    int want_demo = 0, durability_flag = 0;
    fixture_config fxc = {0};
    const char *demo_hook = NULL;
    size_t webhook_queue = WEBHOOK_QUEUE_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        /* --seed, --clock, --fixture, --test-endpoints */
        int fr = fixture_flag(&fxc, a, v);
        if (fr == FIXTURE_FLAG_BAD) {
            usage();
            return 2;
        }
        if (fr != FIXTURE_FLAG_NONE) {
            i += fr == FIXTURE_FLAG_VALUE;
            continue;
        }
        if (!strcmp(a, "--demo")) {
            want_demo = 1;
            if (v && strncmp(v, "--", 2) != 0) { /* --demo WEBHOOK_URL */
                demo_hook = v;
                i++;
            }
            continue;
        }
        if (!strcmp(a, "--repair")) {
            cfg.repair = 1;
            durability_flag = 1;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (!strcmp(a, "--listen")) {
            if (parse_listen(v, host, sizeof host, &cfg.port)) {
                usage();
                return 2;
            }
        } else if (!strcmp(a, "--account-sid")) {
            cfg.account_sid = v;
        } else if (!strcmp(a, "--auth-token")) {
            cfg.auth_token = v;
        } else if (!strcmp(a, "--base-url")) {
            cfg.base_url = v;
        } else if (!strcmp(a, "--threads")) {
            cfg.threads = (unsigned)strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--webhook-queue")) {
            char *end;
            unsigned long long q = strtoull(v, &end, 10);
            if (*end || *v == '-' || q == 0) {
                usage();
                return 2;
            }
            webhook_queue = (size_t)q;
        } else if (!strcmp(a, "--media-cap")) {
            cfg.media_cap = (size_t)strtoull(v, NULL, 10);
        } else if (!strcmp(a, "--max-services") ||
                   !strcmp(a, "--max-channels") ||
                   !strcmp(a, "--max-messages") ||
                   !strcmp(a, "--max-memory") || !strcmp(a, "--media-ttl")) {
            char *end;
            unsigned long long q = strtoull(v, &end, 10);
            if (*end || !*v || *v == '-') {
                usage();
                return 2;
            }
            if (!strcmp(a, "--max-services")) cfg.max_services = q;
            if (!strcmp(a, "--max-channels")) cfg.max_channels = q;
            if (!strcmp(a, "--max-messages")) cfg.max_messages = q;
            if (!strcmp(a, "--max-memory")) cfg.max_memory = q;
            if (!strcmp(a, "--media-ttl")) cfg.media_ttl = (unsigned long)q;
        } else if (!strcmp(a, "--data-dir")) {
            cfg.data_dir = v;
        } else if (!strcmp(a, "--fsync")) {
            durability_flag = 1;
            if (!strcmp(v, "always"))
                cfg.fsync_mode = PERSIST_FSYNC_ALWAYS;
            else if (!strcmp(v, "everysec"))
                cfg.fsync_mode = PERSIST_FSYNC_EVERYSEC;
            else if (!strcmp(v, "no"))
                cfg.fsync_mode = PERSIST_FSYNC_NO;
            else {
                usage();
                return 2;
            }
        } else if (!strcmp(a, "--compact-ratio")) {
            durability_flag = 1;
            char *end;
            cfg.compact_ratio = strtod(v, &end);
            if (*end || !(cfg.compact_ratio >= 0)) {
                usage();
                return 2;
            }
        } else if (!strcmp(a, "--compact-min-bytes")) {
            durability_flag = 1;
            char *end;
            cfg.compact_min_bytes = strtoull(v, &end, 10);
            if (*end || *v == '-') {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    if (!cfg.threads) cfg.threads = 1;
    if (durability_flag && !cfg.data_dir) {
        fprintf(stderr, "chatstore-server: --fsync, --compact-* and --repair "
                        "need --data-dir\n");
        return 2;
    }
    if (fixture_wanted(&fxc)) {
        if (cfg.data_dir) {
            fprintf(stderr, "chatstore-server: --seed, --clock, --fixture and "
                            "--test-endpoints are for in-memory test servers: "
                            "not with --data-dir\n");
            return 2;
        }
        cfg.fixture = &fxc;
    }
    char gen_sid[40] = "AC", gen_token[40];
    int generated = 0;
    if (!cfg.account_sid) cfg.account_sid = getenv("CHATSTORE_ACCOUNT_SID");
    if (!cfg.auth_token) cfg.auth_token = getenv("CHATSTORE_AUTH_TOKEN");
    int sid_from_dir = cfg.data_dir && !cfg.account_sid;
    int sid_from_seed = fxc.use_seed && !cfg.account_sid;
    if (!cfg.account_sid && !cfg.data_dir && !sid_from_seed) {
        random_hex(gen_sid + 2, 32);
        cfg.account_sid = gen_sid;
        generated = 1;
    }
    if (!cfg.auth_token || !*cfg.auth_token) {
        random_hex(gen_token, 32);
        cfg.auth_token = gen_token;
        generated = 1;
    }

    /* Signals go to sigwait below, not to the server's threads. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    server sv;
    if (server_start(&sv, &cfg)) {
        server_stop(&sv);
        return 1;
    }
    /* Webhooks: signed with the auth token, logged to stderr. */
    webhook_config wc = {sv.cfg.account_sid, cfg.auth_token, webhook_queue,
                         stderr, 0, 0};
    webhooks *wh = webhooks_new(&wc);
    if (!wh || webhooks_attach(wh, sv.store)) {
        server_stop(&sv);
        webhooks_free(wh);
        return 1;
    }
    char origin[300];
    snprintf(origin, sizeof origin, "http://%s:%u", host, sv.bound_port);
    if (generated || sid_from_dir || sid_from_seed)
        printf("account sid %s\nauth token  %s\n", sv.cfg.account_sid,
               cfg.auth_token);
    if (want_demo && demo(&sv, origin, demo_hook) && demo_hook) {
        server_stop(&sv);
        webhooks_free(wh);
        return 2;
    }
    printf("listening on %s\n", origin);
    fflush(stdout);

    int sig;
    sigwait(&set, &sig);
    int stop_rc = server_stop(&sv);
    webhooks_free(wh); /* after the store: no observer runs any more */
    if (stop_rc) {
        fprintf(stderr, "chatstore-server: the final flush failed: changes "
                        "may be missing after a crash of the machine\n");
        return 1;
    }
    printf("stopped\n");
    return 0;
}
