/* Decoding and validation of blkif requests. Everything here works on the back-end's private copy
 * of a request, never on the shared ring: the front-end may rewrite the slot at any moment. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "blkback.h"

static const char *const blk_kind_names[BLK_KIND_NR] = {
	[BLK_KIND_READ] = "read",
	[BLK_KIND_WRITE] = "write",
	[BLK_KIND_FLUSH] = "flush",
	[BLK_KIND_DISCARD] = "discard",
};

const char *blk_kind_name(enum blk_kind k)
{
	return (unsigned)k < BLK_KIND_NR ? blk_kind_names[k] : "?";
}

/* The range [sector, sector + n) must lie on the device; n == 0 is refused by the callers. */
static int blk_req_range_ok(uint64_t sector, uint64_t n, uint64_t sectors)
{
	return sector < sectors && n <= sectors - sector;
}

static int blk_req_rw(const struct blkif_request *r, const struct blk_limits *lim, struct blk_req *out, char *why,
		      size_t whylen)
{
	unsigned i;

	out->kind = r->operation == BLKIF_OP_READ ? BLK_KIND_READ : BLK_KIND_WRITE;
	if (out->kind == BLK_KIND_WRITE && lim->readonly) {
		snprintf(why, whylen, "write to a read-only device");
		return BLKIF_RSP_ERROR;
	}
	if (r->nr_segments == 0 || r->nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
		snprintf(why, whylen, "bad segment count %u", r->nr_segments);
		return BLKIF_RSP_ERROR;
	}
	out->sector = r->sector_number;
	out->nr_segs = r->nr_segments;
	for (i = 0; i < out->nr_segs; i++)
		out->seg[i] = r->seg[i];
	return blk_req_check_segs(out, lim, why, whylen);
}

static int blk_req_indirect(const struct blkif_request *r, const struct blk_limits *lim, struct blk_req *out,
			    char *why, size_t whylen)
{
	struct blkif_request_indirect ind;
	unsigned i;

	memcpy(&ind, r, sizeof(ind));
	if (!lim->indirect) {
		snprintf(why, whylen, "indirect request not negotiated");
		return BLKIF_RSP_EOPNOTSUPP;
	}
	if (ind.indirect_op != BLKIF_OP_READ && ind.indirect_op != BLKIF_OP_WRITE) {
		snprintf(why, whylen, "indirect op %u is not read or write", ind.indirect_op);
		return BLKIF_RSP_ERROR;
	}
	out->kind = ind.indirect_op == BLKIF_OP_READ ? BLK_KIND_READ : BLK_KIND_WRITE;
	if (out->kind == BLK_KIND_WRITE && lim->readonly) {
		snprintf(why, whylen, "write to a read-only device");
		return BLKIF_RSP_ERROR;
	}
	if (ind.nr_segments == 0 || ind.nr_segments > BLK_MAX_INDIRECT_SEGS) {
		snprintf(why, whylen, "bad indirect segment count %u", ind.nr_segments);
		return BLKIF_RSP_ERROR;
	}
	out->id = ind.id;
	out->sector = ind.sector_number;
	out->nr_segs = ind.nr_segments;
	out->nr_indirect = (out->nr_segs + BLK_SEGS_PER_INDIRECT_PAGE - 1) / BLK_SEGS_PER_INDIRECT_PAGE;
	for (i = 0; i < out->nr_indirect; i++)
		out->indirect[i] = ind.indirect_grefs[i];
	return 0;
}

static int blk_req_discard(const struct blkif_request *r, const struct blk_limits *lim, struct blk_req *out,
			   char *why, size_t whylen)
{
	struct blkif_request_discard dis;

	memcpy(&dis, r, sizeof(dis));
	out->kind = BLK_KIND_DISCARD;
	if (!lim->discard || lim->readonly) {
		snprintf(why, whylen, "discard not supported on this device");
		return BLKIF_RSP_EOPNOTSUPP;
	}
	out->sector = dis.sector_number;
	out->nr_sectors = dis.nr_sectors;
	if (out->nr_sectors == 0 || !blk_req_range_ok(out->sector, out->nr_sectors, lim->sectors)) {
		snprintf(why, whylen, "discard of %llu sectors at %llu outside the %llu-sector disk",
			 (unsigned long long)out->nr_sectors, (unsigned long long)out->sector,
			 (unsigned long long)lim->sectors);
		return BLKIF_RSP_ERROR;
	}
	return 0;
}

static int blk_req_flush(const struct blkif_request *r, const struct blk_limits *lim, struct blk_req *out,
			 char *why, size_t whylen)
{
	out->kind = BLK_KIND_FLUSH;
	return 0;
}

/* The operations a front-end may send; barriers are not advertised (feature-barrier = 0). */
static const struct {
	uint8_t op;
	const char *name;
	int (*decode)(const struct blkif_request *r, const struct blk_limits *lim, struct blk_req *out, char *why,
		      size_t whylen);
} blk_req_ops[] = {
	{ BLKIF_OP_READ, "read", blk_req_rw },
	{ BLKIF_OP_WRITE, "write", blk_req_rw },
	{ BLKIF_OP_FLUSH_DISKCACHE, "flush", blk_req_flush },
	{ BLKIF_OP_DISCARD, "discard", blk_req_discard },
	{ BLKIF_OP_INDIRECT, "indirect", blk_req_indirect },
};

int blk_req_decode(const struct blkif_request *r, const struct blk_limits *lim, struct blk_req *out, char *why,
		   size_t whylen)
{
	out->id = r->id;
	out->operation = r->operation;
	out->nr_segs = 0;
	out->nr_indirect = 0;
	out->nr_sectors = 0;
	out->sector = 0;
	for (size_t i = 0; i < sizeof(blk_req_ops) / sizeof(blk_req_ops[0]); i++)
		if (blk_req_ops[i].op == r->operation)
			return blk_req_ops[i].decode(r, lim, out, why, whylen);
	out->kind = BLK_KIND_FLUSH; /* counted nowhere else; answered at once */
	snprintf(why, whylen, "unsupported operation %u", r->operation);
	return BLKIF_RSP_EOPNOTSUPP;
}

int blk_req_check_segs(struct blk_req *out, const struct blk_limits *lim, char *why, size_t whylen)
{
	uint64_t total = 0;
	unsigned i;

	for (i = 0; i < out->nr_segs; i++) {
		const struct blkif_request_segment *s = &out->seg[i];

		if (s->first_sect > s->last_sect || s->last_sect >= BLK_SECTORS_PER_PAGE) {
			snprintf(why, whylen, "segment %u sectors %u..%u outside its page", i, s->first_sect,
				 s->last_sect);
			return BLKIF_RSP_ERROR;
		}
		total += (uint64_t)(s->last_sect - s->first_sect + 1);
	}
	out->nr_sectors = total;
	if (!blk_req_range_ok(out->sector, total, lim->sectors)) {
		snprintf(why, whylen, "%llu sectors at %llu past the end of the %llu-sector disk",
			 (unsigned long long)total, (unsigned long long)out->sector, (unsigned long long)lim->sectors);
		return BLKIF_RSP_ERROR;
	}
	return 0;
}
