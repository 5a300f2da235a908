/* chatstore-server: a local, stateful Twilio Chat v2 API over chatstore.
 *
 *   chatstore-server [--listen HOST:PORT | --host ADDR --port N]
 *                    [--account-sid AC...]
 *                    [--auth-token TOKEN] [--base-url URL]
 *                    [--demo [WEBHOOK_URL]] [--webhook-queue N]
 *                    [--threads N] [--media-cap BYTES] [--max-body BYTES]
 *                    [--timeout SECONDS] [--max-connections N]
 *                    [--max-connections-per-ip N]
 *                    [--media-ttl SECONDS] [--max-services N]
 *                    [--max-channels N] [--max-messages N] [--max-memory BYTES]
 *                    [--data-dir DIR [--fsync always|everysec|no]
 *                     [--compact-ratio R] [--compact-min-bytes N] [--repair]]
 *                    [--seed N] [--clock DATE[+STEP]] [--fixture FILE]
 *                    [--test-endpoints]
 *                    [--metrics-auth on|off] [--access-log FILE|-]
 *                    [--nats URL[,URL...] [--shard K] [--node NAME]
 *                     [--follow] [--replication sync|async]
 *                     [--nats-replicas R] [--replica-timeout MS]
 *                     [--replica-snapshot-records N]]
 */
#include "accesslog.h"
#include "fixture.h"
#include "persist.h"
#include "replica.h"
#include "server.h"
#include "webhook.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static void usage(void) {
    fprintf(stderr,
            "usage: chatstore-server [--listen HOST:PORT | --host ADDR --port N]\n"
            "         [--account-sid AC...] [--auth-token TOKEN] [--base-url URL]\n"
            "         [--demo [WEBHOOK_URL]] [--webhook-queue N]\n"
            "         [--threads N] [--media-cap BYTES] [--max-body BYTES]\n"
            "         [--timeout SECONDS] [--max-connections N]\n"
            "         [--max-connections-per-ip N]\n"
            "         [--media-ttl SECONDS] [--max-services N]\n"
            "         [--max-channels N] [--max-messages N] [--max-memory BYTES]\n"
            "         [--data-dir DIR [--fsync always|everysec|no]\n"
            "          [--compact-ratio R] [--compact-min-bytes N] [--repair]]\n"
            "         [--seed N] [--clock DATE[+STEP]] [--fixture FILE]\n"
            "         [--test-endpoints]\n"
            "         [--metrics-auth on|off] [--access-log FILE|-]\n"
            "Credentials default to $CHATSTORE_ACCOUNT_SID / $CHATSTORE_AUTH_TOKEN,\n"
            "else they are generated and printed (with --data-dir the account\n"
            "SID is the data directory's).\n"
            "--listen HOST:PORT  numeric IPv4, or IPv6 in brackets: [::1]:8080\n"
            "                    (default 127.0.0.1:8080; port 0: any free one);\n"
            "                    --host ADDR and --port N set either part\n"
            "--max-body BYTES    request body limit but media uploads' (default\n"
            "                    1048576); media uploads: --media-cap\n"
            "--timeout SECONDS   a request's headers, and then its body, must\n"
            "                    arrive within SECONDS, and a connection idle\n"
            "                    that long is closed (default 30; 0: never)\n"
            "--max-connections N  connections served at a time (default 1000);\n"
            "                    more wait to be accepted\n"
            "--max-connections-per-ip N  from one client address at most\n"
            "                    (default 256; 0: no such limit)\n"
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
            "                    GET /_chatstore/stats\n"
            "Operating (GET /healthz needs no credentials):\n"
            "--metrics-auth on|off  GET /metrics asks for the credentials (on,\n"
            "                    the default) or not (off)\n"
            "--access-log FILE|- one line per request appended to FILE (- for\n"
            "                    standard output); SIGHUP reopens FILE\n"
            "Replication over NATS JetStream (not with --data-dir or the test\n"
            "fixture; docs/replication.md):\n"
            "--nats URL[,URL...] the NATS servers; the shard's stream is the\n"
            "                    durable copy of the store\n"
            "--shard K           this server's shard, 0 to 255 (default 0): its\n"
            "                    stream and the two hex digits after IS in its SIDs\n"
            "--node NAME         this server's name in the writer lease (default\n"
            "                    HOST:PORT)\n"
            "--follow            start as a follower: apply the stream, serve reads;\n"
            "                    POST /replica/promote makes it the writer\n"
            "--replication MODE  sync (default): a 2xx means JetStream has the\n"
            "                    change; async: answered before\n"
            "--nats-replicas R   replicas of the streams and bucket this server\n"
            "                    creates (default 1)\n"
            "--replica-timeout MS  how long a synchronous write waits for\n"
            "                    JetStream (default 10000), then 503\n"
            "--replica-snapshot-records N  the writer puts a snapshot in the\n"
            "                    stream every N commits and drops the history\n"
            "                    before the previous one (default 1000000; 0: never)\n");
}

/* --node: printable, no quotes or spaces (it goes into JSON and the lease) */
static int node_ok(const char *v) {
    if (!*v || strlen(v) > 100) return 0;
    for (const char *p = v; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
            !(*p >= '0' && *p <= '9') && !strchr("._:-[]", *p))
            return 0;
    return 1;
}

static void random_hex(char *out, size_t digits) {
    static const char hex[] = "0123456789abcdef";
    unsigned char b[64];
    if (getrandom(b, digits, 0) != (ssize_t)digits) memset(b, 7, sizeof b);
    for (size_t i = 0; i < digits; i++) out[i] = hex[b[i] & 15];
    out[digits] = '\0';
}

/* --host ADDR: numeric IPv4, or IPv6 with or without brackets; checked by
 * listen_split as "ADDR:0" or "[ADDR]:0". 0, or -1. */
static int parse_host(const char *v, char *host, size_t cap) {
    char hp[300], msg[300];
    size_t hl = strlen(v);
    int bare_v6 = v[0] != '[' && strchr(v, ':');
    if (hl + 5 > sizeof hp) return -1;
    snprintf(hp, sizeof hp, bare_v6 ? "[%s]:0" : "%s:0", v);
    unsigned ignored;
    return listen_split(hp, host, cap, &ignored, msg, sizeof msg);
}

/* A decimal count within [min, max]; -1 otherwise. */
static int parse_count(const char *v, unsigned long long min,
                       unsigned long long max, unsigned long long *out) {
    char *end;
    if (!*v || *v == '-' || *v == '+') return -1;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || n < min || n > max) return -1;
    *out = n;
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

/* replica_on_writer's hook (under the store's exclusive lock) */
static void attach_webhooks(void *ctx, cs_store *s) {
    if (webhooks_attach_locked(ctx, s))
        fprintf(stderr, "chatstore-server: webhooks could not be attached\n");
}

int main(int argc, char **argv) {
    char host[256] = "127.0.0.1";
    server_config cfg = {host, 8080, NULL, NULL, NULL, 1024 * 1024,
                         64 * 1024 * 1024, 2, 30, 1000, 256, NULL,
                         PERSIST_FSYNC_EVERYSEC, PERSIST_COMPACT_RATIO_DEFAULT,
                         PERSIST_COMPACT_MIN_DEFAULT, 0, NULL, 1, NULL,
                         0, 0, 0, 0, MEDIA_TTL_DEFAULT, NULL};
    char err[300];
    unsigned long long n;
    int want_demo = 0, durability_flag = 0, replica_flag = 0;
    replica_config rc = {NULL, 0, NULL, 0, 1, 1, 10000, 1000000};
    char node_buf[300];
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
        if (!strcmp(a, "--follow")) {
            rc.follow = 1;
            replica_flag = 1;
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
            if (listen_split(v, host, sizeof host, &cfg.port, err, sizeof err)) {
                fprintf(stderr, "chatstore-server: --listen %s\n", err);
                return 2;
            }
        } else if (!strcmp(a, "--host")) {
            if (parse_host(v, host, sizeof host)) {
                fprintf(stderr, "chatstore-server: --host %s: not a numeric IPv4 "
                                "or IPv6 address\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--port")) {
            if (parse_count(v, 0, 65535, &n)) {
                fprintf(stderr, "chatstore-server: --port %s: must be 0 to 65535\n", v);
                return 2;
            }
            cfg.port = (unsigned)n;
        } else if (!strcmp(a, "--max-body")) {
            if (parse_count(v, 0, (size_t)-1 / 2, &n)) {
                usage();
                return 2;
            }
            cfg.max_request = (size_t)n;
        } else if (!strcmp(a, "--timeout")) {
            if (parse_count(v, 0, 86400, &n)) {
                usage();
                return 2;
            }
            cfg.timeout_s = (unsigned)n;
        } else if (!strcmp(a, "--max-connections")) {
            if (parse_count(v, 1, 1000000, &n)) {
                usage();
                return 2;
            }
            cfg.max_connections = (unsigned)n;
        } else if (!strcmp(a, "--max-connections-per-ip")) {
            if (parse_count(v, 0, 1000000, &n)) {
                usage();
                return 2;
            }
            cfg.max_connections_per_ip = (unsigned)n;
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
        } else if (!strcmp(a, "--metrics-auth")) {
            if (!strcmp(v, "on"))
                cfg.metrics_auth = 1;
            else if (!strcmp(v, "off"))
                cfg.metrics_auth = 0;
            else {
                usage();
                return 2;
            }
        } else if (!strcmp(a, "--access-log")) {
            if (!*v) {
                usage();
                return 2;
            }
            cfg.access_log = v;
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
        } else if (!strcmp(a, "--nats")) {
            rc.nats_urls = v;
        } else if (!strcmp(a, "--shard") || !strcmp(a, "--nats-replicas") ||
                   !strcmp(a, "--replica-timeout")) {
            replica_flag = 1;
            int shard = !strcmp(a, "--shard"), reps = !strcmp(a, "--nats-replicas");
            if (parse_count(v, shard ? 0 : 1, shard ? 255 : reps ? 5 : 3600000, &n)) {
                fprintf(stderr, "chatstore-server: %s %s: must be %s\n", a, v,
                        shard ? "0 to 255" : reps ? "1 to 5" : "1 to 3600000");
                return 2;
            }
            if (shard) rc.shard = (unsigned)n;
            else if (reps) rc.replicas = (unsigned)n;
            else rc.timeout_ms = (unsigned)n;
        } else if (!strcmp(a, "--replica-snapshot-records")) {
            replica_flag = 1;
            if (parse_count(v, 0, UINT64_MAX, &n)) {
                fprintf(stderr, "chatstore-server: %s %s: a count\n", a, v);
                return 2;
            }
            rc.snapshot_records = n;
        } else if (!strcmp(a, "--node")) {
            replica_flag = 1;
            if (!node_ok(v)) {
                fprintf(stderr, "chatstore-server: --node %s: letters, digits and "
                                "._:-[] only, at most 100\n", v);
                return 2;
            }
            rc.node = v;
        } else if (!strcmp(a, "--replication")) {
            replica_flag = 1;
            if (!strcmp(v, "sync")) rc.sync = 1;
            else if (!strcmp(v, "async")) rc.sync = 0;
            else {
                usage();
                return 2;
            }
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
    if (replica_flag && !rc.nats_urls) {
        fprintf(stderr, "chatstore-server: --shard, --node, --follow, "
                        "--replication, --nats-replicas and --replica-timeout "
                        "need --nats\n");
        return 2;
    }
    if (rc.nats_urls) {
        if (cfg.data_dir || fixture_wanted(&fxc)) {
            fprintf(stderr, "chatstore-server: --nats: not with --data-dir (the "
                            "stream is the durable copy) or the test fixture\n");
            return 2;
        }
        if (!rc.node) {
            snprintf(node_buf, sizeof node_buf, "%s:%u", host, cfg.port);
            rc.node = node_buf;
        }
        cfg.replica = &rc;
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
    sigaddset(&set, SIGHUP); /* --access-log: reopen the file */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    server sv;
    int start_rc = server_start(&sv, &cfg);
    if (start_rc) {
        server_stop(&sv);
        return start_rc > 0 ? start_rc : 1;
    }
    /* Webhooks: signed with the auth token, logged to stderr. */
    webhook_config wc = {sv.cfg.account_sid, cfg.auth_token, webhook_queue,
                         stderr, 0, 0};
    webhooks *wh = webhooks_new(&wc);
    if (wh && sv.replica) {
        /* only the shard's writer delivers: now, or once promoted */
        replica_on_writer(sv.replica, attach_webhooks, wh);
    } else if (!wh || webhooks_attach(wh, sv.store)) {
        server_stop(&sv);
        webhooks_free(wh);
        return 1;
    }
    __atomic_store_n(&sv.webhooks, wh, __ATOMIC_RELEASE); /* for /metrics */
    char origin[300];
    listen_origin(host, sv.bound_port, origin, sizeof origin);
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
    /* SIGHUP: a log rotation moved the access log; anything else stops */
    while (!sigwait(&set, &sig) && sig == SIGHUP)
        if (sv.alog) accesslog_reopen(sv.alog);
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
