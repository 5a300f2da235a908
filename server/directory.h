/* The cluster-wide service directory (directory.c): every service of every
 * shard, in the order of the JetStream stream CHATSTORE_DIR, so that
 * GET /v2/Services answers the same pages from any server of a cluster. */
#ifndef CHATSTORE_DIRECTORY_H
#define CHATSTORE_DIRECTORY_H

#include "server.h"

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

#define DIRECTORY_STREAM "CHATSTORE_DIR"
#define DIRECTORY_SUBJECT "chatstore.dir"
#define DIRECTORY_BUCKET "CHATSTORE" /* KV bucket; key DIRECTORY_KEY */
#define DIRECTORY_KEY "dir.key"
/* How long a list waits for its table to catch up with the stream. */
#define DIRECTORY_WAIT_MS 2000

typedef struct directory directory;

/* Opens the directory over js (which stays the caller's and must outlive
 * the directory): creates the stream and the KV bucket with `replicas`
 * replicas when missing, reads (or creates, first come) the token key, and
 * starts consuming the stream from its first message. base_url is the
 * cluster's public URL (the page links). NULL with the reason in err. */
directory *directory_open(jsCtx *js, unsigned replicas, const char *base_url,
                          char *err, size_t errlen);
/* Publishes one entry and returns once JetStream acknowledged it (a publish
 * that times out is retried under the same Nats-Msg-Id, so it is stored
 * once). put: service sid of shard was created or changed, json[0..n) is
 * its cs_render_service rendering. del: sid was deleted. clear: every
 * service of shard is gone. 0, or -1 (bad arguments, or not stored). */
int directory_put(directory *d, unsigned shard, const char *sid,
                  const char *json, size_t n);
int directory_del(directory *d, unsigned shard, const char *sid);
int directory_clear(directory *d, unsigned shard);
/* GET /v2/Services over the directory: the same reply as the store's list,
 * with the directory's own page tokens. */
void directory_list(directory *d, const request *rq, reply *rp);
/* Services in the local table, and the last stream sequence applied. */
size_t directory_count(directory *d);
uint64_t directory_applied(directory *d);
/* Stops consuming and frees the table; NULL is a no-op. */
void directory_close(directory *d);

#endif
