/* TEMPORARY STUB: replaced by the r-dir branch */
#include "directory.h"
#include <stdlib.h>
struct directory { int x; };
directory *directory_open(jsCtx *js, unsigned replicas, const char *base_url, char *err, size_t errlen) { (void)js; (void)replicas; (void)base_url; (void)err; (void)errlen; return calloc(1, sizeof(directory)); }
int directory_put(directory *d, unsigned shard, const char *sid, const char *json, size_t n) { (void)d; (void)shard; (void)sid; (void)json; (void)n; return 0; }
int directory_del(directory *d, unsigned shard, const char *sid) { (void)d; (void)shard; (void)sid; return 0; }
int directory_clear(directory *d, unsigned shard) { (void)d; (void)shard; return 0; }
void directory_list(directory *d, const request *rq, reply *rp) { (void)d; (void)rq; (void)rp; }
void directory_close(directory *d) { free(d); }
