/* The block back-end engine (pv-drivers/blk_*.c) against a fake front-end in this process: a ring
 * in ordinary memory, a fake grant table of pages with per-reference access, and a real image file
 * served through io_uring. Checks data through write/read cycles against the file, persistent
 * grants, indirect segments, flush and discard, batching and notification counts, every hostile
 * request the engine must refuse, a run-away producer disconnecting one device only, read-only
 * devices and the image locks. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <CUnit/Basic.h>

#include "blkback.h"

#define FAKE_PAGES 640
#define IMG_SECTORS 8192 /* 4 MiB */

enum { GNT_NONE, GNT_RO, GNT_RW };

struct fake_fe {
	unsigned char *page[FAKE_PAGES];
	int access[FAKE_PAGES];
	int live_maps, map_calls, notifies;
	/* Per-request grants must be unmapped before the response is published: with check_order,
	 * every unmap call (one per request) finds no more responses published than earlier calls. */
	bool check_order;
	unsigned unmap_calls;
	/* A front-end that refills as fast as it is answered: while refill_left, every map call takes
	 * the responses published so far and queues as many new requests (refs never granted). */
	unsigned refill_left, refilled_answers;
	struct blkif_sring *s;
	struct blkif_front_ring f;
	struct blk_dev *dev;
};

/* Each suite runs every case on its own image: a disk-backed file served through io_uring, and a
 * tmpfs file served inline. */
static char disk_img[] = "/tmp/blk-engine-XXXXXX", shm_img[] = "/dev/shm/blk-engine-XXXXXX";
static char *img_path = disk_img;
static int inline_mode;

static void fe_rw(struct fake_fe *fe, uint8_t op, uint64_t id, uint64_t sector, unsigned nseg, grant_ref_t ref0);

static void fe_refill(struct fake_fe *fe)
{
	if (!fe->refill_left)
		return;
	while (fe->f.rsp_cons != fe->s->rsp_prod) {
		fe->f.rsp_cons++;
		fe->refilled_answers++;
		if (fe->refill_left) {
			fe_rw(fe, BLKIF_OP_READ, 7, 0, 1, FAKE_PAGES - 1);
			fe->refill_left--;
		}
	}
	lamina_ring_front_push(&fe->f);
}

static int fake_map(void *ctx, uint32_t domid, const grant_ref_t *refs, unsigned n, int writable, void **pages,
		    uint32_t *handles)
{
	struct fake_fe *fe = ctx;

	fe->map_calls++;
	fe_refill(fe);
	for (unsigned i = 0; i < n; i++) {
		int ok = refs[i] < FAKE_PAGES && fe->access[refs[i]] != GNT_NONE &&
			 (!writable || fe->access[refs[i]] == GNT_RW);

		pages[i] = ok ? fe->page[refs[i]] : NULL;
		handles[i] = refs[i];
		fe->live_maps += ok;
	}
	return 0;
}

static void fake_unmap(void *ctx, void *const *pages, const uint32_t *handles, unsigned n)
{
	struct fake_fe *fe = ctx;

	if (fe->check_order)
		CU_ASSERT(fe->s->rsp_prod <= fe->unmap_calls);
	fe->unmap_calls++;
	for (unsigned i = 0; i < n; i++) {
		CU_ASSERT(handles[i] < FAKE_PAGES && pages[i] == fe->page[handles[i]]);
		fe->live_maps--;
	}
}

static void fake_notify(void *ctx)
{
	((struct fake_fe *)ctx)->notifies++;
}

static const struct blk_grant_ops fake_ops = { fake_map, fake_unmap, fake_notify };

static int fe_open(struct fake_fe *fe, int readonly, int persistent, int batching, unsigned order)
{
	struct blk_dev_config cfg = { .domid = 3, .devid = 51712, .ring_order = order, .persistent = persistent,
				      .batching = batching, .discard = 1, .inline_io = inline_mode };
	struct blk_image img;
	char why[128];
	int rc;

	memset(fe, 0, sizeof(*fe));
	for (unsigned i = 0; i < FAKE_PAGES; i++) {
		fe->page[i] = aligned_alloc(4096, 4096);
		memset(fe->page[i], 0, 4096);
		fe->access[i] = GNT_RW;
	}
	fe->s = aligned_alloc(4096, 4096u << order);
	memset(fe->s, 0, 4096u << order);
	SHARED_RING_INIT(fe->s);
	FRONT_RING_ATTACH(&fe->f, fe->s, 0, 4096u << order);
	rc = blk_image_open(&img, img_path, readonly, why, sizeof(why));
	if (rc < 0)
		return rc;
	CU_ASSERT_EQUAL(img.memory_backed, img_path == shm_img);
	return blk_dev_open(&fe->dev, &cfg, fe->s, &img, &fake_ops, fe);
}

static void fe_close(struct fake_fe *fe)
{
	if (fe->dev)
		blk_dev_close(fe->dev);
	CU_ASSERT_EQUAL(fe->live_maps, 0); /* every grant mapping undone */
	for (unsigned i = 0; i < FAKE_PAGES; i++)
		free(fe->page[i]);
	free(fe->s);
}

static struct blkif_request *fe_next(struct fake_fe *fe)
{
	struct blkif_request *r = RING_GET_REQUEST(&fe->f, fe->f.req_prod_pvt++);

	memset(r, 0, sizeof(*r));
	return r;
}

/* A read or write of nseg whole pages starting at page ref0 (consecutive refs). */
static void fe_rw(struct fake_fe *fe, uint8_t op, uint64_t id, uint64_t sector, unsigned nseg, grant_ref_t ref0)
{
	struct blkif_request *r = fe_next(fe);

	r->operation = op;
	r->nr_segments = (uint8_t)nseg;
	r->id = id;
	r->sector_number = sector;
	for (unsigned i = 0; i < nseg && i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++) {
		r->seg[i].gref = ref0 + i;
		r->seg[i].first_sect = 0;
		r->seg[i].last_sect = 7;
	}
}

/* Push, serve and collect n responses into status[] by id (ids 0..n-1). */
static int fe_run(struct fake_fe *fe, unsigned n, int16_t *status)
{
	unsigned got = 0;
	int rc;

	lamina_ring_front_push(&fe->f);
	rc = blk_dev_kick(fe->dev, 1);
	if (rc < 0)
		return rc;
	for (int spins = 0; got < n && spins < 1000; spins++) {
		blk_dev_reap(fe->dev, 1);
		while (fe->f.rsp_cons != fe->s->rsp_prod) {
			struct blkif_response *rsp = RING_GET_RESPONSE(&fe->f, fe->f.rsp_cons++);

			if (rsp->id < n)
				status[rsp->id] = rsp->status;
			got++;
		}
	}
	return (int)got;
}

static int16_t fe_one(struct fake_fe *fe)
{
	int16_t st = 99;

	CU_ASSERT_EQUAL(fe_run(fe, 1, &st), 1);
	return st;
}

static void fill(unsigned char *p, unsigned seed)
{
	for (unsigned i = 0; i < 4096; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 8));
}

static void test_write_read_cycle(void)
{
	struct fake_fe fe;
	unsigned char buf[4096];
	int fd;

	CU_ASSERT_FATAL(fe_open(&fe, 0, 0, 1, 0) == 0);
	fe.check_order = true;
	for (unsigned i = 0; i < 11; i++)
		fill(fe.page[i], i + 1);
	fe_rw(&fe, BLKIF_OP_WRITE, 0, 800, 11, 0);
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_OKAY);
	/* the file holds the data, page by page, from the host's side */
	fd = open(img_path, O_RDONLY);
	for (unsigned i = 0; i < 11; i++) {
		unsigned char want[4096];

		fill(want, i + 1);
		CU_ASSERT_EQUAL(pread(fd, buf, 4096, (off_t)(800 + 8 * i) * 512), 4096);
		CU_ASSERT(memcmp(buf, want, 4096) == 0);
	}
	close(fd);
	/* read back into other pages, partial sectors of a page included */
	struct blkif_request *r = fe_next(&fe);
	r->operation = BLKIF_OP_READ;
	r->nr_segments = 2;
	r->sector_number = 802;
	r->seg[0] = (struct blkif_request_segment){ .gref = 100, .first_sect = 2, .last_sect = 7 };
	r->seg[1] = (struct blkif_request_segment){ .gref = 101, .first_sect = 0, .last_sect = 7 };
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_OKAY);
	fill(buf, 1);
	CU_ASSERT(memcmp(fe.page[100] + 1024, buf + 1024, 3072) == 0);
	fill(buf, 2);
	CU_ASSERT(memcmp(fe.page[101], buf, 4096) == 0); /* sectors 808..815: the write's second page */
	CU_ASSERT_EQUAL(blk_dev_stats(fe.dev)->bytes_written, 11 * 4096);
	CU_ASSERT_EQUAL(blk_dev_stats(fe.dev)->bytes_read, 6 * 512 + 4096);
	CU_ASSERT_EQUAL(blk_dev_stats(fe.dev)->inline_io, inline_mode ? 2 : 0);
	fe_close(&fe);
}

static void test_persistent(void)
{
	struct fake_fe fe;
	int16_t st[32];

	CU_ASSERT_FATAL(fe_open(&fe, 0, 1, 1, 0) == 0);
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < 16; i++)
			fe_rw(&fe, round == 1 ? BLKIF_OP_READ : BLKIF_OP_WRITE, i, 8 * i, 1, i);
		CU_ASSERT_EQUAL(fe_run(&fe, 16, st), 16);
		for (unsigned i = 0; i < 16; i++)
			CU_ASSERT_EQUAL(st[i], BLKIF_RSP_OKAY);
	}
	CU_ASSERT_EQUAL(blk_dev_stats(fe.dev)->pgrant_misses, 16);
	CU_ASSERT_EQUAL(blk_dev_stats(fe.dev)->pgrant_hits, 32);
	CU_ASSERT_EQUAL(fe.live_maps, 16); /* kept mapped between requests */
	fe_close(&fe);
}

static void test_indirect(void)
{
	struct fake_fe fe;
	struct blkif_request_indirect *ind;
	struct blkif_request_segment *segs;
	unsigned char want[4096];
	int fd;

	CU_ASSERT_FATAL(fe_open(&fe, 0, 0, 1, 0) == 0);
	for (unsigned i = 0; i < 256; i++)
		fill(fe.page[i], 1000 + i);
	segs = (struct blkif_request_segment *)fe.page[600];
	for (unsigned i = 0; i < 256; i++)
		segs[i] = (struct blkif_request_segment){ .gref = i, .first_sect = 0, .last_sect = 7 };
	ind = (struct blkif_request_indirect *)fe_next(&fe);
	ind->operation = BLKIF_OP_INDIRECT;
	ind->indirect_op = BLKIF_OP_WRITE;
	ind->nr_segments = 256;
	ind->sector_number = 2048;
	ind->indirect_grefs[0] = 600;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_OKAY);
	fd = open(img_path, O_RDONLY);
	for (unsigned i = 0; i < 256; i += 51) {
		unsigned char buf[4096];

		fill(want, 1000 + i);
		CU_ASSERT_EQUAL(pread(fd, buf, 4096, (off_t)(2048 + 8 * i) * 512), 4096);
		CU_ASSERT(memcmp(buf, want, 4096) == 0);
	}
	close(fd);
	/* read it back into pages 256.. via a second indirect page */
	segs = (struct blkif_request_segment *)fe.page[601];
	for (unsigned i = 0; i < 256; i++)
		segs[i] = (struct blkif_request_segment){ .gref = 300 + i, .first_sect = 0, .last_sect = 7 };
	ind = (struct blkif_request_indirect *)fe_next(&fe);
	ind->operation = BLKIF_OP_INDIRECT;
	ind->indirect_op = BLKIF_OP_READ;
	ind->nr_segments = 256;
	ind->sector_number = 2048;
	ind->indirect_grefs[0] = 601;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_OKAY);
	fill(want, 1000 + 255);
	CU_ASSERT(memcmp(fe.page[555], want, 4096) == 0);
	CU_ASSERT_EQUAL(blk_dev_stats(fe.dev)->indirect_reqs, 2);
	/* a hostile indirect page: one segment's sectors outside its page */
	segs[77].last_sect = 9;
	ind = (struct blkif_request_indirect *)fe_next(&fe);
	ind->operation = BLKIF_OP_INDIRECT;
	ind->indirect_op = BLKIF_OP_READ;
	ind->nr_segments = 256;
	ind->sector_number = 2048;
	ind->indirect_grefs[0] = 601;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	fe_close(&fe);
}

static void test_flush_discard(void)
{
	struct fake_fe fe;
	struct blkif_request_discard *d;
	struct stat before, after;

	CU_ASSERT_FATAL(fe_open(&fe, 0, 0, 1, 0) == 0);
	for (unsigned i = 0; i < 11; i++)
		memset(fe.page[i], 0xab, 4096);
	for (unsigned k = 0; k < 16; k++) {
		fe_rw(&fe, BLKIF_OP_WRITE, 0, 4096 + 88 * k, 11, 0);
		CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_OKAY);
	}
	fe_next(&fe)->operation = BLKIF_OP_FLUSH_DISKCACHE;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_OKAY);
	CU_ASSERT_EQUAL(stat(img_path, &before), 0);
	d = (struct blkif_request_discard *)fe_next(&fe);
	d->operation = BLKIF_OP_DISCARD;
	d->sector_number = 4096;
	d->nr_sectors = 16 * 88;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_OKAY);
	CU_ASSERT_EQUAL(stat(img_path, &after), 0);
	CU_ASSERT(after.st_blocks + 1000 <= before.st_blocks); /* the hole is real */
	CU_ASSERT_EQUAL(after.st_size, before.st_size);
	CU_ASSERT_EQUAL(blk_dev_stats(fe.dev)->reqs[BLK_KIND_FLUSH], 1);
	CU_ASSERT_EQUAL(blk_dev_stats(fe.dev)->reqs[BLK_KIND_DISCARD], 1);
	fe_close(&fe);
}

/* Each hostile request gets an error response (or EOPNOTSUPP) and the device carries on. */
static void test_hostile_requests(void)
{
	struct fake_fe fe;
	struct blkif_request *r;

	CU_ASSERT_FATAL(fe_open(&fe, 0, 0, 1, 0) == 0);
	fe_rw(&fe, BLKIF_OP_READ, 0, 0, 1, 0);
	fe.f.sring->ring[0].req.nr_segments = 0;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	fe_rw(&fe, BLKIF_OP_WRITE, 0, 0, 11, 0);
	RING_GET_REQUEST(&fe.f, fe.f.req_prod_pvt - 1)->nr_segments = 12;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	fe_rw(&fe, BLKIF_OP_READ, 0, 0, 1, 0);
	RING_GET_REQUEST(&fe.f, fe.f.req_prod_pvt - 1)->seg[0].last_sect = 8;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	fe_rw(&fe, BLKIF_OP_READ, 0, 0, 1, 0);
	RING_GET_REQUEST(&fe.f, fe.f.req_prod_pvt - 1)->seg[0].first_sect = 5;
	RING_GET_REQUEST(&fe.f, fe.f.req_prod_pvt - 1)->seg[0].last_sect = 4;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	fe_rw(&fe, BLKIF_OP_READ, 0, IMG_SECTORS - 7, 1, 0); /* one sector past the end */
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	fe_rw(&fe, BLKIF_OP_READ, 0, IMG_SECTORS - 8, 1, 0); /* the last page: fine */
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_OKAY);
	fe_rw(&fe, BLKIF_OP_WRITE, 0, 0xfffffffffffffff8ull, 1, 0); /* wraps 64 bits */
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	fe_rw(&fe, BLKIF_OP_READ, 0, 0, 1, FAKE_PAGES + 5); /* ref beyond the table */
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	fe.access[20] = GNT_NONE;
	fe_rw(&fe, BLKIF_OP_READ, 0, 0, 3, 19); /* middle ref not granted */
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	fe.access[30] = GNT_RO;
	fe_rw(&fe, BLKIF_OP_READ, 0, 0, 1, 30); /* a read needs a writable grant */
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	fe_rw(&fe, BLKIF_OP_WRITE, 0, 0, 1, 30); /* a write does not */
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_OKAY);
	fe_next(&fe)->operation = BLKIF_OP_WRITE_BARRIER;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_EOPNOTSUPP);
	fe_next(&fe)->operation = 200;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_EOPNOTSUPP);
	r = fe_next(&fe);
	r->operation = BLKIF_OP_INDIRECT;
	((struct blkif_request_indirect *)r)->indirect_op = BLKIF_OP_READ;
	((struct blkif_request_indirect *)r)->nr_segments = BLK_MAX_INDIRECT_SEGS + 1;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	r = fe_next(&fe);
	r->operation = BLKIF_OP_INDIRECT;
	((struct blkif_request_indirect *)r)->indirect_op = BLKIF_OP_DISCARD;
	((struct blkif_request_indirect *)r)->nr_segments = 1;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	r = fe_next(&fe); /* indirect page not granted */
	r->operation = BLKIF_OP_INDIRECT;
	((struct blkif_request_indirect *)r)->indirect_op = BLKIF_OP_READ;
	((struct blkif_request_indirect *)r)->nr_segments = 4;
	((struct blkif_request_indirect *)r)->indirect_grefs[0] = 20;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	r = fe_next(&fe);
	r->operation = BLKIF_OP_DISCARD;
	((struct blkif_request_discard *)r)->sector_number = 100;
	((struct blkif_request_discard *)r)->nr_sectors = IMG_SECTORS;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	CU_ASSERT_PTR_NULL(blk_dev_broken(fe.dev));
	CU_ASSERT_EQUAL(blk_dev_stats(fe.dev)->errors, 15);
	CU_ASSERT_EQUAL(blk_dev_stats(fe.dev)->inflight, 0);
	fe_close(&fe);
}

/* A producer index past what the ring holds disconnects that device; another one is unaffected. */
static void test_runaway_disconnects_one(void)
{
	struct fake_fe bad, good;
	int16_t st = 99;

	CU_ASSERT_FATAL(fe_open(&bad, 1, 0, 1, 0) == 0);
	CU_ASSERT_FATAL(fe_open(&good, 1, 0, 1, 0) == 0);
	bad.s->req_prod = 1000;
	CU_ASSERT_EQUAL(blk_dev_kick(bad.dev, 1), -EPROTO);
	CU_ASSERT_PTR_NOT_NULL(blk_dev_broken(bad.dev));
	CU_ASSERT_EQUAL(blk_dev_kick(bad.dev, 1), -EPROTO); /* stays inert */
	CU_ASSERT_EQUAL(bad.s->rsp_prod, 0);
	fe_rw(&good, BLKIF_OP_READ, 0, 0, 1, 0);
	CU_ASSERT_EQUAL(fe_run(&good, 1, &st), 1);
	CU_ASSERT_EQUAL(st, BLKIF_RSP_OKAY);
	fe_close(&bad);
	fe_close(&good);
}

static void test_readonly(void)
{
	struct fake_fe fe;
	struct blkif_request_discard *d;

	CU_ASSERT_FATAL(fe_open(&fe, 1, 1, 1, 0) == 0);
	fe_rw(&fe, BLKIF_OP_READ, 0, 0, 4, 0);
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_OKAY);
	fe_rw(&fe, BLKIF_OP_WRITE, 0, 0, 4, 0);
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_ERROR);
	d = (struct blkif_request_discard *)fe_next(&fe);
	d->operation = BLKIF_OP_DISCARD;
	d->nr_sectors = 8;
	CU_ASSERT_EQUAL(fe_one(&fe), BLKIF_RSP_EOPNOTSUPP);
	fe_close(&fe);
}

static void test_locks(void)
{
	struct blk_image a, b, c;
	char why[160];

	CU_ASSERT_EQUAL(blk_image_open(&a, img_path, 1, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(blk_image_open(&b, img_path, 1, why, sizeof(why)), 0); /* readers share */
	CU_ASSERT_EQUAL(blk_image_open(&c, img_path, 0, why, sizeof(why)), -EBUSY);
	CU_ASSERT(strstr(why, "in use") != NULL);
	blk_image_close(&a);
	blk_image_close(&b);
	CU_ASSERT_EQUAL(blk_image_open(&a, img_path, 0, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(a.sectors, IMG_SECTORS);
	CU_ASSERT_EQUAL(blk_image_open(&b, img_path, 0, why, sizeof(why)), -EBUSY); /* second writer */
	CU_ASSERT_EQUAL(blk_image_open(&c, img_path, 1, why, sizeof(why)), -EBUSY);
	blk_image_close(&a);
	CU_ASSERT_EQUAL(blk_image_open(&a, "/nonexistent/disk.img", 1, why, sizeof(why)), -ENOENT);
	CU_ASSERT(strstr(why, "/nonexistent/disk.img") != NULL);
}

/* 32 requests pushed at once on a 2-page ring: one submission batch and one notification; with
 * batching off, one batch per request, and the front-end (not re-arming) suppresses the rest. */
static void test_batching(void)
{
	char text[2048];
	int16_t st[32];

	for (int batching = 1; batching >= 0; batching--) {
		struct fake_fe fe;
		const struct blk_stats *s;

		CU_ASSERT_FATAL(fe_open(&fe, 0, 1, batching, 1) == 0);
		for (unsigned i = 0; i < 32; i++)
			fe_rw(&fe, BLKIF_OP_WRITE, i, 8 * i, 1, i);
		CU_ASSERT_EQUAL(fe_run(&fe, 32, st), 32);
		s = blk_dev_stats(fe.dev);
		CU_ASSERT_EQUAL(s->reqs[BLK_KIND_WRITE], 32);
		CU_ASSERT_EQUAL(s->inflight_max, inline_mode ? 1 : 32); /* inline: answered one by one */
		CU_ASSERT_EQUAL(s->inline_io, inline_mode ? 32 : 0);
		if (batching) {
			CU_ASSERT_EQUAL(s->batches, 1);
			CU_ASSERT_EQUAL(s->batch_hist[5], 1); /* 32-63 */
			CU_ASSERT(s->notify_sent + s->notify_suppressed <= 32);
		} else {
			CU_ASSERT_EQUAL(s->batches, 32);
			CU_ASSERT_EQUAL(s->notify_sent + s->notify_suppressed, 32);
		}
		CU_ASSERT_EQUAL(s->notify_sent, 1); /* rsp_event was never re-armed */
		CU_ASSERT_EQUAL(fe.notifies, 1);
		CU_ASSERT(blk_stats_format(s, 1, text, sizeof(text)) < (int)sizeof(text));
		CU_ASSERT(strstr(text, "\"write\":32") != NULL);
		CU_ASSERT_EQUAL(blk_stats_format(s, 1, NULL, 0), (int)strlen(text)); /* measuring, as snprintf */
		CU_ASSERT(blk_stats_format(s, 0, text, sizeof(text)) < (int)sizeof(text));
		CU_ASSERT(strstr(text, "requests.write 32\n") != NULL);
		fe_close(&fe);
	}
}

/* A front-end that keeps its ring full as fast as it is answered: a kick stops after four ring
 * sizes of requests and says so; the next kicks go on. */
static void test_kick_budget(void)
{
	struct fake_fe fe;
	unsigned kicks = 1;
	int rc;

	CU_ASSERT_FATAL(fe_open(&fe, 0, 0, 1, 0) == 0);
	fe.access[FAKE_PAGES - 1] = GNT_NONE;
	for (unsigned i = 0; i < 32; i++)
		fe_rw(&fe, BLKIF_OP_READ, 7, 0, 1, FAKE_PAGES - 1);
	fe.refill_left = 1000;
	lamina_ring_front_push(&fe.f);
	CU_ASSERT_EQUAL(blk_dev_kick(fe.dev, 1), BLK_KICK_MORE);
	CU_ASSERT_EQUAL(fe.s->rsp_prod, 4 * 32); /* the budget: four ring sizes */
	CU_ASSERT_EQUAL(blk_dev_stats(fe.dev)->yields, 1);
	while ((rc = blk_dev_kick(fe.dev, 1)) == BLK_KICK_MORE && kicks < 100)
		kicks++;
	CU_ASSERT_EQUAL(rc, BLK_KICK_IDLE);
	CU_ASSERT_EQUAL(fe.refill_left, 0);
	CU_ASSERT_EQUAL(fe.s->rsp_prod, 1032); /* every request answered, none twice */
	CU_ASSERT_EQUAL(blk_dev_stats(fe.dev)->errors, 1032);
	CU_ASSERT(kicks >= 8 && kicks <= 9);
	fe_close(&fe);
}

/* Polling (rearm 0): a drained ring leaves req_event behind, so the front-end's next pushes need no
 * notification; a kick with rearm sets it again, and the next push notifies. */
static void test_poll_rearm(void)
{
	struct fake_fe fe;
	int16_t st[4];
	int notify;

	CU_ASSERT_FATAL(fe_open(&fe, 0, 1, 1, 0) == 0);
	fe_rw(&fe, BLKIF_OP_READ, 0, 0, 1, 0);
	CU_ASSERT_EQUAL(fe_run(&fe, 1, st), 1); /* re-armed: req_event = 2 */
	CU_ASSERT_EQUAL(fe.s->req_event, 2);
	fe_rw(&fe, BLKIF_OP_READ, 1, 8, 1, 1);
	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&fe.f, notify);
	CU_ASSERT_TRUE(notify); /* the first request after idling is announced */
	CU_ASSERT_EQUAL(blk_dev_kick(fe.dev, 0), BLK_KICK_DRAINED);
	CU_ASSERT_EQUAL(fe.s->req_event, 2); /* left behind */
	fe_rw(&fe, BLKIF_OP_READ, 2, 16, 1, 2);
	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&fe.f, notify);
	CU_ASSERT_FALSE(notify); /* polled: no notification */
	CU_ASSERT_EQUAL(blk_dev_kick(fe.dev, 0), BLK_KICK_DRAINED);
	CU_ASSERT_EQUAL(blk_dev_kick(fe.dev, 1), BLK_KICK_IDLE); /* the window ends */
	CU_ASSERT_EQUAL(fe.s->req_event, 4);
	fe_rw(&fe, BLKIF_OP_READ, 3, 24, 1, 3);
	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&fe.f, notify);
	CU_ASSERT_TRUE(notify);
	CU_ASSERT_EQUAL(blk_dev_kick(fe.dev, 1), BLK_KICK_IDLE);
	for (int spins = 0; spins < 1000 && fe.s->rsp_prod < 4; spins++)
		blk_dev_reap(fe.dev, 1);
	CU_ASSERT_EQUAL(fe.s->rsp_prod, 4);
	fe_close(&fe);
}

static void add_cases(CU_pSuite s)
{
	CU_add_test(s, "write/read cycle checked in the file", test_write_read_cycle);
	CU_add_test(s, "persistent grants reused", test_persistent);
	CU_add_test(s, "indirect segments (1 MiB)", test_indirect);
	CU_add_test(s, "flush and discard", test_flush_discard);
	CU_add_test(s, "hostile requests refused", test_hostile_requests);
	CU_add_test(s, "run-away producer disconnects one device", test_runaway_disconnects_one);
	CU_add_test(s, "read-only device", test_readonly);
	CU_add_test(s, "image locks", test_locks);
	CU_add_test(s, "batching and notifications", test_batching);
	CU_add_test(s, "kick budget", test_kick_budget);
	CU_add_test(s, "polling leaves req_event behind", test_poll_rearm);
}

static int use_disk(void)
{
	img_path = disk_img;
	inline_mode = 0;
	return 0;
}

static int use_shm_inline(void)
{
	img_path = shm_img;
	inline_mode = 1;
	return 0;
}

static int make_image(char *path)
{
	int fd = mkstemp(path);

	if (fd < 0 || ftruncate(fd, (off_t)IMG_SECTORS * 512) < 0) {
		perror(path);
		return -1;
	}
	close(fd);
	return 0;
}

int main(void)
{
	unsigned fails;

	if (make_image(disk_img) < 0 || make_image(shm_img) < 0)
		return 1;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	add_cases(CU_add_suite("blk_engine io_uring (disk-backed image)", use_disk, NULL));
	add_cases(CU_add_suite("blk_engine inline (tmpfs image)", use_shm_inline, NULL));
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	unlink(disk_img);
	unlink(shm_img);
	return fails ? 1 : 0;
}
