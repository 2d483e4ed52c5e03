/* Persistent grants and per-device statistics of the block back-end. A persistent grant stays
 * mapped for the device's life, so a page the front-end reuses costs no map or unmap. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "blkback.h"

#define BLK_PGRANT_SLOTS (2 * BLK_PGRANT_MAX)

static unsigned blk_pgrant_hash(grant_ref_t ref)
{
	return (unsigned)((ref * 2654435761u) % BLK_PGRANT_SLOTS);
}

void *blk_pgrant_find(const struct blk_pgrant *pg, grant_ref_t ref)
{
	unsigned i, h = blk_pgrant_hash(ref);

	for (i = 0; i < BLK_PGRANT_SLOTS; i++) {
		const struct blk_pgrant_ent *e = &pg->tab[(h + i) % BLK_PGRANT_SLOTS];

		if (!e->page)
			return NULL;
		if (e->ref == ref)
			return e->page;
	}
	return NULL;
}

int blk_pgrant_add(struct blk_pgrant *pg, grant_ref_t ref, void *page, uint32_t handle)
{
	unsigned i, h = blk_pgrant_hash(ref);

	if (pg->used >= BLK_PGRANT_MAX)
		return -ENOSPC;
	for (i = 0; i < BLK_PGRANT_SLOTS; i++) {
		struct blk_pgrant_ent *e = &pg->tab[(h + i) % BLK_PGRANT_SLOTS];

		if (e->page && e->ref == ref)
			return -EEXIST;
		if (!e->page) {
			e->ref = ref;
			e->page = page;
			e->handle = handle;
			pg->used++;
			return 0;
		}
	}
	return -ENOSPC;
}

void blk_pgrant_reset(struct blk_pgrant *pg, const struct blk_grant_ops *ops, void *ctx)
{
	unsigned i;

	for (i = 0; i < BLK_PGRANT_SLOTS; i++) {
		struct blk_pgrant_ent *e = &pg->tab[i];

		if (e->page)
			ops->unmap(ctx, &e->page, &e->handle, 1);
		e->page = NULL;
	}
	pg->used = 0;
}

void blk_stats_batch(struct blk_stats *st, unsigned n)
{
	unsigned b = 0;

	if (n == 0)
		return;
	while (b + 1 < BLK_BATCH_BUCKETS && (n >> (b + 1)) != 0)
		b++;
	st->batches++;
	st->batch_hist[b]++;
}

static const char *const blk_batch_names[BLK_BATCH_BUCKETS] = { "1", "2-3", "4-7", "8-15", "16-31", "32-63",
								 "64+" };

int blk_stats_format(const struct blk_stats *st, int json, char *buf, size_t len)
{
	int n = 0, k;
	unsigned i;

#define BLK_PUT(...)                                                                                         \
	do {                                                                                                 \
		k = snprintf(buf ? buf + (n < (int)len ? n : (int)len) : NULL,                              \
			     buf && (size_t)n < len ? len - (size_t)n : 0, __VA_ARGS__);                     \
		if (k < 0)                                                                                   \
			return -EINVAL;                                                                      \
		n += k;                                                                                      \
	} while (0)

	if (json) {
		BLK_PUT("{\"requests\":{\"read\":%" PRIu64 ",\"write\":%" PRIu64 ",\"flush\":%" PRIu64
			",\"discard\":%" PRIu64 ",\"indirect\":%" PRIu64 "},\"errors\":%" PRIu64,
			st->reqs[BLK_KIND_READ], st->reqs[BLK_KIND_WRITE], st->reqs[BLK_KIND_FLUSH],
			st->reqs[BLK_KIND_DISCARD], st->indirect_reqs, st->errors);
		BLK_PUT(",\"bytes_read\":%" PRIu64 ",\"bytes_written\":%" PRIu64 ",\"batches\":%" PRIu64
			",\"batch_sizes\":{",
			st->bytes_read, st->bytes_written, st->batches);
		for (i = 0; i < BLK_BATCH_BUCKETS; i++)
			BLK_PUT("%s\"%s\":%" PRIu64, i ? "," : "", blk_batch_names[i], st->batch_hist[i]);
		BLK_PUT("},\"notify_sent\":%" PRIu64 ",\"notify_suppressed\":%" PRIu64
			",\"pgrant_hits\":%" PRIu64 ",\"pgrant_misses\":%" PRIu64 ",\"inline_io\":%" PRIu64
			",\"yields\":%" PRIu64 ",\"inflight\":%u,\"inflight_max\":%u}",
			st->notify_sent, st->notify_suppressed, st->pgrant_hits, st->pgrant_misses, st->inline_io,
			st->yields, st->inflight, st->inflight_max);
		return n;
	}
	for (i = 0; i < BLK_KIND_NR; i++)
		BLK_PUT("requests.%s %" PRIu64 "\n", blk_kind_name((enum blk_kind)i), st->reqs[i]);
	BLK_PUT("requests.indirect %" PRIu64 "\nerrors %" PRIu64 "\n", st->indirect_reqs, st->errors);
	BLK_PUT("bytes_read %" PRIu64 "\nbytes_written %" PRIu64 "\nbatches %" PRIu64 "\n", st->bytes_read,
		st->bytes_written, st->batches);
	for (i = 0; i < BLK_BATCH_BUCKETS; i++)
		BLK_PUT("batch_size.%s %" PRIu64 "\n", blk_batch_names[i], st->batch_hist[i]);
	BLK_PUT("notify_sent %" PRIu64 "\nnotify_suppressed %" PRIu64 "\n", st->notify_sent, st->notify_suppressed);
	BLK_PUT("pgrant_hits %" PRIu64 "\npgrant_misses %" PRIu64 "\n", st->pgrant_hits, st->pgrant_misses);
	BLK_PUT("inline_io %" PRIu64 "\nyields %" PRIu64 "\n", st->inline_io, st->yields);
	BLK_PUT("inflight %u\ninflight_max %u\n", st->inflight, st->inflight_max);
#undef BLK_PUT
	return n;
}
