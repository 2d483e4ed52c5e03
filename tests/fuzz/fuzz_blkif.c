/* libFuzzer target for the block back-end engine (pv-drivers/blk_req.c, blk_dev.c, blk_pgrant.c,
 * blk_image.c): the input becomes a device (ring size, features, image, grant access table) and a
 * sequence of front-end actions on an in-memory shared ring: direct, indirect, discard, flush and
 * raw requests, pushes, kicks, reaps and hostile index writes. After every action the harness
 * checks what a front-end can see: responses only for published requests, one each, with the
 * request's operation and an allowed status; no notification without a new response; nothing
 * moves once the device is disconnected; every grant mapping undone by blk_dev_close. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_input.h"
#include "blkback.h"

#define FZ_PAGES 64	  /* backing pages; ref r is backed by page r % FZ_PAGES */
#define FZ_REFS 4096	  /* refs below this may be granted (the persistent cache holds 1024) */
#define FZ_OUTSTANDING 64 /* published, unanswered requests: at most the largest ring's slots */
#define FZ_ID_TAG 0x5a00000000000000ull
#define FZ_STATS_BUF 4096

enum { FZ_GNT_NONE, FZ_GNT_RO, FZ_GNT_RW };

struct fz_req {
	uint64_t id;
	uint8_t op, indirect_op, nr_segments;
	uint16_t ind_segments;
};

struct fz_blk {
	/* the device */
	struct blk_dev_config cfg;
	int readonly;
	uint64_t sectors;
	char img_path[64];
	struct blk_dev *dev;
	/* the fake front-end */
	unsigned char *page[FZ_PAGES];
	uint8_t access[FZ_PAGES];
	unsigned live[FZ_REFS], live_total, map_calls, fail_map_call;
	struct blkif_sring *s;
	struct blkif_front_ring f;
	unsigned nr_ents;
	uint64_t next_id;
	struct fz_req out[FZ_OUTSTANDING];
	unsigned nout;
	int tainted;		 /* the input broke the ring protocol itself: only safety is checked */
	RING_IDX notified_at;	 /* rsp_prod at the last notification */
	unsigned notifies;
	RING_IDX dead_rsp_prod;	 /* once disconnected: nothing may move */
	unsigned dead_notifies;
	int dead;
};

static void fz_fail(const char *what)
{
	fprintf(stderr, "fuzz_blkif: invariant broken: %s\n", what);
	abort();
}

static int fz_map(void *ctx, uint32_t domid, const grant_ref_t *refs, unsigned n, int writable, void **pages,
		  uint32_t *handles)
{
	struct fz_blk *b = ctx;

	if (n == 0 || n > BLK_MAX_INDIRECT_SEGS + BLK_MAX_INDIRECT_PAGES)
		fz_fail("map of an empty or oversized batch");
	if (domid != b->cfg.domid)
		fz_fail("map for another domain");
	if (++b->map_calls == b->fail_map_call)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		grant_ref_t r = refs[i];
		int ok = r < FZ_REFS && b->access[r % FZ_PAGES] != FZ_GNT_NONE &&
			 (!writable || b->access[r % FZ_PAGES] == FZ_GNT_RW);

		pages[i] = ok ? b->page[r % FZ_PAGES] : NULL;
		handles[i] = ok ? r : 0xdeadbeefu;
		if (ok) {
			b->live[r]++;
			b->live_total++;
		}
	}
	return 0;
}

static void fz_unmap(void *ctx, void *const *pages, const uint32_t *handles, unsigned n)
{
	struct fz_blk *b = ctx;

	for (unsigned i = 0; i < n; i++) {
		uint32_t h = handles[i];

		if (h >= FZ_REFS || !b->live[h])
			fz_fail("unmap of a handle that is not mapped");
		if (pages[i] != b->page[h % FZ_PAGES])
			fz_fail("unmap of a page other than the one mapped");
		b->live[h]--;
		b->live_total--;
	}
}

static void fz_notify(void *ctx)
{
	struct fz_blk *b = ctx;
	RING_IDX prod = b->s->rsp_prod;

	if (b->dead)
		fz_fail("notification from a disconnected device");
	if (b->notifies && prod == b->notified_at)
		fz_fail("notification without a new response");
	b->notified_at = prod;
	b->notifies++;
}

static const struct blk_grant_ops fz_ops = { fz_map, fz_unmap, fz_notify };

/* ---- the input ---- */

/* struct fz_in and its readers: fuzz_input.h */

/* A sector: near the start of the disk, or counted back from its end (wrapping below zero). */
static uint64_t fz_sector(struct fz_blk *b, struct fz_in *in, unsigned mode)
{
	uint64_t v = fz_u16(in);

	return (mode & 1) ? b->sectors - v : v;
}

static void fz_segment(struct fz_in *in, struct blkif_request_segment *s)
{
	unsigned fl;

	s->gref = fz_u16(in) % (2 * FZ_REFS); /* half of them never granted */
	fl = fz_u8(in);
	s->first_sect = (uint8_t)(fl & 15);
	s->last_sect = (uint8_t)(fl >> 4);
}

/* The next free request slot, or NULL when the ring is full (a correct front-end waits). */
static struct blkif_request *fz_slot(struct fz_blk *b)
{
	struct blkif_request *r;

	if (RING_FULL(&b->f))
		return NULL;
	r = RING_GET_REQUEST(&b->f, b->f.req_prod_pvt);
	memset(r, 0, sizeof(*r));
	return r;
}

static void fz_queue(struct fz_blk *b, struct blkif_request *r)
{
	r->id = FZ_ID_TAG | b->next_id++; /* unique: the responses are matched by it */
	b->f.req_prod_pvt++;
}

static void fz_req_rw(struct fz_blk *b, struct fz_in *in)
{
	unsigned v = fz_u8(in), nseg = fz_u8(in);
	struct blkif_request *r = fz_slot(b);
	uint64_t sector = fz_sector(b, in, v >> 6);

	if (!r)
		return;
	r->operation = (v & 0x80) ? (uint8_t)fz_u8(in) : (v & 1) ? BLKIF_OP_WRITE : BLKIF_OP_READ;
	r->nr_segments = (uint8_t)((v & 2) ? nseg : nseg % (BLKIF_MAX_SEGMENTS_PER_REQUEST + 1));
	r->handle = 0;
	r->sector_number = sector;
	for (unsigned i = 0; i < r->nr_segments && i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
		fz_segment(in, &r->seg[i]);
	fz_queue(b, r);
}

static void fz_req_indirect(struct fz_blk *b, struct fz_in *in)
{
	struct blkif_request *r = fz_slot(b);
	struct blkif_request_indirect ind;
	unsigned v = fz_u8(in), nind;

	if (!r)
		return;
	memset(&ind, 0, sizeof(ind));
	ind.operation = BLKIF_OP_INDIRECT;
	ind.indirect_op = (v & 0x80) ? (uint8_t)fz_u8(in) : (v & 1) ? BLKIF_OP_WRITE : BLKIF_OP_READ;
	ind.nr_segments = (uint16_t)fz_u16(in);
	if (!(v & 2))
		ind.nr_segments %= BLK_MAX_INDIRECT_SEGS + 1;
	ind.sector_number = fz_sector(b, in, v >> 6);
	nind = fz_u8(in) % (BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST + 1);
	for (unsigned i = 0; i < nind; i++)
		ind.indirect_grefs[i] = fz_u16(in) % (2 * FZ_REFS);
	memcpy(r, &ind, sizeof(ind));
	fz_queue(b, r);
}

static void fz_req_discard(struct fz_blk *b, struct fz_in *in)
{
	struct blkif_request *r = fz_slot(b);
	struct blkif_request_discard dis;
	unsigned v = fz_u8(in);

	if (!r)
		return;
	memset(&dis, 0, sizeof(dis));
	dis.operation = BLKIF_OP_DISCARD;
	dis.flag = (uint8_t)(v >> 1 & 1);
	dis.sector_number = fz_sector(b, in, v);
	dis.nr_sectors = (v & 4) ? fz_u32(in) : fz_u16(in);
	if (v & 8)
		dis.nr_sectors = ~dis.nr_sectors; /* near 2^64: sector + n wraps */
	memcpy(r, &dis, sizeof(dis));
	fz_queue(b, r);
}

static void fz_req_other(struct fz_blk *b, struct fz_in *in)
{
	struct blkif_request *r = fz_slot(b);
	unsigned v = fz_u8(in);

	if (!r)
		return;
	if (v & 1) { /* a raw slot, all bytes from the input */
		for (size_t i = 0; i < sizeof(*r); i++)
			((uint8_t *)r)[i] = (uint8_t)fz_u8(in);
	} else {
		r->operation = BLKIF_OP_FLUSH_DISKCACHE;
	}
	fz_queue(b, r);
}

/* Indirect pages are ordinary granted pages: write segment descriptors into one. */
static void fz_fill_segs(struct fz_blk *b, struct fz_in *in)
{
	struct blkif_request_segment *segs = (struct blkif_request_segment *)b->page[fz_u8(in) % FZ_PAGES];
	unsigned start = fz_u8(in) * 2 % BLK_SEGS_PER_INDIRECT_PAGE, count = fz_u8(in) + 1, fl;
	grant_ref_t base = (grant_ref_t)fz_u16(in);

	fl = fz_u8(in);
	for (unsigned i = 0; i < count && start + i < BLK_SEGS_PER_INDIRECT_PAGE; i++) {
		segs[start + i].gref = (base + i) % (2 * FZ_REFS);
		segs[start + i].first_sect = (uint8_t)(fl & 15);
		segs[start + i].last_sect = (uint8_t)(fl >> 4);
	}
}

/* ---- what the front-end sees ---- */

static void fz_check_response(struct fz_blk *b, const struct blkif_response *rsp)
{
	struct fz_req q;
	unsigned k;
	int is_write, known;

	if (rsp->status != BLKIF_RSP_OKAY && rsp->status != BLKIF_RSP_ERROR && rsp->status != BLKIF_RSP_EOPNOTSUPP)
		fz_fail("response status outside OKAY/ERROR/EOPNOTSUPP");
	if (b->tainted)
		return;
	for (k = 0; k < b->nout && b->out[k].id != rsp->id; k++)
		;
	if (k == b->nout)
		fz_fail("response for an id never requested, or answered twice");
	q = b->out[k];
	b->out[k] = b->out[--b->nout];
	if (rsp->operation != q.op)
		fz_fail("response operation differs from the request's");
	known = q.op == BLKIF_OP_READ || q.op == BLKIF_OP_WRITE || q.op == BLKIF_OP_FLUSH_DISKCACHE ||
		q.op == BLKIF_OP_DISCARD || q.op == BLKIF_OP_INDIRECT;
	if (!known && rsp->status != BLKIF_RSP_EOPNOTSUPP)
		fz_fail("unknown operation not answered EOPNOTSUPP");
	if (q.op == BLKIF_OP_DISCARD && (!b->cfg.discard || b->readonly) && rsp->status != BLKIF_RSP_EOPNOTSUPP)
		fz_fail("discard without the feature not answered EOPNOTSUPP");
	if (rsp->status != BLKIF_RSP_OKAY)
		return;
	is_write = q.op == BLKIF_OP_WRITE || q.op == BLKIF_OP_DISCARD ||
		   (q.op == BLKIF_OP_INDIRECT && q.indirect_op == BLKIF_OP_WRITE);
	if (b->readonly && is_write)
		fz_fail("a read-only device completed a write or discard");
	if ((q.op == BLKIF_OP_READ || q.op == BLKIF_OP_WRITE) &&
	    (q.nr_segments == 0 || q.nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST))
		fz_fail("direct request with a bad segment count completed");
	if (q.op == BLKIF_OP_INDIRECT &&
	    ((q.indirect_op != BLKIF_OP_READ && q.indirect_op != BLKIF_OP_WRITE) || q.ind_segments == 0 ||
	     q.ind_segments > BLK_MAX_INDIRECT_SEGS))
		fz_fail("indirect request with a bad operation or segment count completed");
}

static void fz_consume(struct fz_blk *b)
{
	RING_IDX prod = b->s->rsp_prod;

	if ((RING_IDX)(prod - b->f.rsp_cons) > b->nr_ents)
		fz_fail("more responses than ring slots");
	while (b->f.rsp_cons != prod) {
		struct blkif_response rsp = *RING_GET_RESPONSE(&b->f, b->f.rsp_cons);

		fz_check_response(b, &rsp);
		b->f.rsp_cons++;
	}
}

/* Publish the queued requests: their ids join the outstanding set. */
static void fz_publish(struct fz_blk *b)
{
	for (RING_IDX i = b->s->req_prod; !b->tainted && i != b->f.req_prod_pvt; i++) {
		const struct blkif_request *r = RING_GET_REQUEST(&b->f, i);
		struct fz_req *q = &b->out[b->nout];

		if (b->nout == FZ_OUTSTANDING)
			fz_fail("harness: outstanding table full");
		q->id = r->id;
		q->op = r->operation;
		q->nr_segments = r->nr_segments;
		q->indirect_op = ((const struct blkif_request_indirect *)r)->indirect_op;
		q->ind_segments = ((const struct blkif_request_indirect *)r)->nr_segments;
		b->nout++;
	}
	(void)lamina_ring_front_push(&b->f);
}

static void fz_after_step(struct fz_blk *b)
{
	const struct blk_stats *st = blk_dev_stats(b->dev);

	if (blk_dev_broken(b->dev)) {
		if (!b->tainted)
			fz_fail("device disconnected by a front-end that kept the protocol");
		if (!b->dead) {
			b->dead = 1;
			b->dead_rsp_prod = b->s->rsp_prod;
			b->dead_notifies = b->notifies;
		}
	}
	if (b->dead && (b->s->rsp_prod != b->dead_rsp_prod || b->notifies != b->dead_notifies))
		fz_fail("a disconnected device moved its ring");
	if (!b->cfg.persistent && st->inflight == 0 && b->live_total)
		fz_fail("grant mappings left with no request in flight");
	if (st->inflight > b->nr_ents)
		fz_fail("more requests in flight than ring slots");
	fz_consume(b);
}

/* rearm 0 is blkback's polling turn: req_event left behind. */
static void fz_kick(struct fz_blk *b, int rearm)
{
	int rc = blk_dev_kick(b->dev, rearm);

	if (rc < 0 && rc != -EPROTO)
		fz_fail("kick returned an error other than -EPROTO");
	if (rc >= 0 && rc != BLK_KICK_MORE && rc != (rearm ? BLK_KICK_IDLE : BLK_KICK_DRAINED))
		fz_fail("kick result does not match its rearm mode");
	if (rc == -EPROTO && !blk_dev_broken(b->dev))
		fz_fail("kick refused without a disconnect");
}

/* Front-end writes that break the protocol: runaway or backward producers, event indexes. */
static void fz_hostile(struct fz_blk *b, struct fz_in *in)
{
	unsigned v = fz_u8(in);
	uint32_t x = fz_u32(in);

	switch (v % 4) {
	case 0:
	case 1:
		if (v % 4 == 1)
			x = b->f.req_prod_pvt + (uint32_t)(int8_t)x;
		if (x == b->f.req_prod_pvt) {
			fz_publish(b); /* a correct push after all */
			break;
		}
		b->s->req_prod = x;
		b->tainted = 1;
		break;
	case 2:
		b->s->rsp_event = x;
		return; /* only decides notifications: the protocol holds */
	default:
		b->access[x % FZ_PAGES] = (uint8_t)(x >> 8) % 3; /* grant or revoke, mid-flight */
		return;
	}
	fz_kick(b, !(v & 0x10));
}

/* ---- one input ---- */

static int fz_setup(struct fz_blk *b, struct fz_in *in)
{
	unsigned flags = fz_u8(in), size = fz_u8(in), order;
	struct blk_image img;
	char why[160];
	int fd, rc;

	memset(b, 0, sizeof(*b));
	order = flags >> 6 & 1;
	b->cfg = (struct blk_dev_config){ .domid = 7, .devid = 51712, .ring_order = order,
					  .persistent = flags & 1, .batching = flags >> 1 & 1,
					  .discard = flags >> 2 & 1, .inline_io = flags >> 4 & 1 };
	b->readonly = flags >> 3 & 1;
	for (unsigned i = 0; i < FZ_PAGES; i += 4) {
		unsigned a = fz_u8(in);

		for (unsigned k = 0; k < 4; k++)
			b->access[i + k] = (uint8_t)((a >> (2 * k) & 3) == 3 ? FZ_GNT_RW : (a >> (2 * k) & 3));
	}
	b->fail_map_call = fz_u8(in);
	for (unsigned i = 0; i < FZ_PAGES; i++) {
		b->page[i] = aligned_alloc(4096, 4096);
		if (!b->page[i])
			return -ENOMEM;
		memset(b->page[i], 0, 4096);
	}
	b->s = aligned_alloc(4096, LAMINA_RING_PAGE_SIZE << order);
	if (!b->s)
		return -ENOMEM;
	memset(b->s, 0, LAMINA_RING_PAGE_SIZE << order);
	SHARED_RING_INIT(b->s);
	FRONT_RING_ATTACH(&b->f, b->s, 0, LAMINA_RING_PAGE_SIZE << order);
	b->nr_ents = RING_SIZE(&b->f);
	/* A memory-backed image (inline I/O) or one on disk (io_uring), of 1..2041 sectors plus a tail
	 * that is not a whole sector. */
	snprintf(b->img_path, sizeof(b->img_path), "%s/lamina-fuzz-blkif-%d.img",
		 (flags & 0x20) ? "/tmp" : "/dev/shm", (int)getpid());
	fd = open(b->img_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = ftruncate(fd, (off_t)(1 + size * 8) * BLK_SECTOR_SIZE + (flags & 0x80 ? 100 : 0)) < 0 ? -errno : 0;
	close(fd);
	if (rc < 0)
		return rc;
	b->sectors = 1 + size * 8;
	rc = blk_image_open(&img, b->img_path, b->readonly, why, sizeof(why));
	unlink(b->img_path); /* the engine holds it open; nothing is left behind, even by a crash */
	b->img_path[0] = '\0';
	if (rc < 0)
		return rc;
	if (img.sectors != b->sectors)
		fz_fail("image size read back differs");
	rc = blk_dev_open(&b->dev, &b->cfg, b->s, &img, &fz_ops, b);
	if (rc < 0)
		blk_image_close(&img);
	return rc;
}

static void fz_teardown(struct fz_blk *b)
{
	if (b->dev) {
		blk_dev_close(b->dev);
		if (b->live_total)
			fz_fail("grant mappings leaked by blk_dev_close");
	}
	if (b->img_path[0])
		unlink(b->img_path);
	for (unsigned i = 0; i < FZ_PAGES; i++)
		free(b->page[i]);
	free(b->s);
}

/* The statistics a daemon prints, into a buffer of the input's size: snprintf's contract. */
static void fz_stats(struct fz_blk *b, size_t len, int json)
{
	char buf[FZ_STATS_BUF];
	int n = blk_stats_format(blk_dev_stats(b->dev), json, buf, len); /* len may be 0 */

	if (n < 0)
		fz_fail("statistics could not be formatted");
	if (len && strlen(buf) != ((size_t)n < len ? (size_t)n : len - 1))
		fz_fail("statistics length differs from what was written");
}

/* The end of a session: a well-behaved front-end gets one answer per request (a kick may stop at
 * its budget and leave the rest for the next one). */
static void fz_drain(struct fz_blk *b, unsigned stats)
{
	for (unsigned round = 0; round < 4; round++) {
		if (!b->dead) {
			fz_publish(b);
			fz_kick(b, 1);
		}
		while (blk_dev_stats(b->dev)->inflight)
			if (blk_dev_reap(b->dev, 1) < 0)
				fz_fail("reap failed with requests in flight");
		fz_after_step(b);
	}
	if (!b->tainted && b->nout)
		fz_fail("published requests left unanswered");
	fz_stats(b, stats * 16 % FZ_STATS_BUF, stats & 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size, 0 };
	struct fz_blk *b = malloc(sizeof(*b));
	unsigned steps = 0;

	if (!b)
		return 0;
	if (fz_setup(b, &in) < 0)
		goto out;
	while (in.i < in.n && steps++ < 256) {
		unsigned op = fz_u8(&in);

		switch (op % 8) {
		case 0: fz_req_rw(b, &in); break;
		case 1: fz_req_indirect(b, &in); break;
		case 2: fz_req_discard(b, &in); break;
		case 3: fz_req_other(b, &in); break;
		case 4:
			if (op & 8)
				fz_publish(b);
			else
				fz_kick(b, !(op & 0x20));
			break;
		case 5: fz_fill_segs(b, &in); break;
		case 6:
			if (blk_dev_reap(b->dev, (op >> 3 & 1) && blk_dev_stats(b->dev)->inflight) < 0)
				fz_fail("reap failed");
			break;
		default: fz_hostile(b, &in); break;
		}
		if ((op % 8) < 4 && (op & 0x10)) { /* queue and serve at once */
			fz_publish(b);
			fz_kick(b, !(op & 0x20));
		}
		fz_after_step(b);
	}
	fz_drain(b, size ? data[size - 1] : 0);
out:
	fz_teardown(b);
	free(b);
	return 0;
}
