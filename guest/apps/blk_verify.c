/* app=blk-verify: the block driver's data path checked from the guest. Writes checksummed,
 * patterned 4 KiB blocks spread across the disk (QD = the ring's size: 32 per ring page, plus 1 MiB indirect writes), flushes,
 * reads everything back and verifies it; discards a block and reads zeros; on a read-only disk,
 * checks that writes are refused. Block b of seed s: bytes 0-7 b, 8-15 s, 16-4087 the pattern,
 * 4088-4095 FNV-1a of the rest, so the host can check the image file too (tests/e2e/blk-lib.sh).
 *   blocks=N (default 256) seed=S persistent=0|1 mode=full|check|loop wait-ms=N (hot-plug)
 *   mode=check: only read and verify blocks=N written earlier with seed=S (shared images).
 *   mode=hostile: malformed requests each refused, then a run-away producer disconnecting the disk.
 *   mode=loop: sequential QD1 writes of blocks 0,1,2... printing "acked K" every 64, until the disk
 *   is detached (SUCCESS) or fails (errors, not a hang: FAILURE naming K). */
#include "apps.h"
#include "../drivers/blkfront.h"

static struct gnttab bv_table;

static uint64_t bv_fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void bv_fill(uint8_t *p, uint64_t block, uint64_t seed)
{
	uint64_t h;

	memcpy(p, &block, 8);
	memcpy(p + 8, &seed, 8);
	for (unsigned int i = 16; i < 4088; i++)
		p[i] = (uint8_t)(block * 7 + i * 13 + seed * 101 + (i >> 8));
	h = bv_fnv(p, 4088);
	memcpy(p + 4088, &h, 8);
}

static bool bv_ok(const uint8_t *p, uint64_t block, uint64_t seed)
{
	uint64_t b, s, h;

	memcpy(&b, p, 8);
	memcpy(&s, p + 8, 8);
	memcpy(&h, p + 4088, 8);
	if (b != block || s != seed || h != bv_fnv(p, 4088))
		return false;
	for (unsigned int i = 16; i < 4088; i++)
		if (p[i] != (uint8_t)(block * 7 + i * 13 + seed * 101 + (i >> 8)))
			return false;
	return true;
}

/* Block i of n spread over the disk (4 KiB blocks). */
static uint64_t bv_block(const struct blkfront *bf, uint64_t i, uint64_t n)
{
	uint64_t total = bf->sectors / 8;

	return n >= total ? i : i * (total / n);
}

/* Read (write) blocks [0, n) at queue depth qd; data pages: slot s uses pool page s (+nr_slots for reads
 * so a write's page is not read into). Returns how many failed or mismatched. */
static unsigned int bv_pass(struct blkfront *bf, uint8_t op, uint64_t n, uint64_t seed, unsigned int qd)
{
	uint64_t next = 0, blk_of[BLKFRONT_SLOTS];
	unsigned int bad = 0, page;
	int slot;

	while (next < n || bf->inflight) {
		while (next < n && bf->inflight < qd) {
			page = (op == BLKIF_OP_READ ? bf->nr_slots : 0);
			/* the slot index is not known before queueing: use a page per slot via a probe */
			for (unsigned int s = 0; s < bf->nr_slots; s++)
				if (!bf->slot[s].busy) {
					page += s;
					break;
				}
			if (op == BLKIF_OP_WRITE)
				bv_fill(blkfront_page(bf, page), bv_block(bf, next, n), seed);
			slot = blkfront_queue(bf, op, bv_block(bf, next, n) * 8, page, 1);
			if (slot < 0 && !bf->inflight)
				return bad + (unsigned int)(n - next); /* cannot queue (no grant refs left) */
			if (slot < 0)
				break;
			blk_of[slot] = bv_block(bf, next, n);
			next++;
		}
		blkfront_kick(bf);
		blkfront_poll(bf, true);
		for (unsigned int s = 0; s < bf->nr_slots; s++) {
			if (!bf->slot[s].busy || !bf->slot[s].done)
				continue;
			page = bf->slot[s].first;
			if (blkfront_take(bf, s) != BLKIF_RSP_OKAY ||
			    (op == BLKIF_OP_READ && !bv_ok(blkfront_page(bf, page), blk_of[s], seed)))
				bad++;
		}
		if (bf->dead)
			return bad + (unsigned int)(n - next);
	}
	return bad;
}

/* One raw request: its status (BLKIF_RSP_*), or -errno. */
static int bv_raw(struct blkfront *bf, const struct blkif_request *r)
{
	int slot = blkfront_queue_raw(bf, r);

	if (slot < 0)
		return slot;
	blkfront_kick(bf);
	while (!bf->slot[slot].done)
		blkfront_poll(bf, true);
	return blkfront_take(bf, (unsigned int)slot);
}

/* mode=hostile: requests the back-end must refuse one by one while the device stays up, then a
 * producer index run away, which must disconnect the device (its back-end state goes Closing). */
static void bv_hostile(struct kernel *k, struct blkfront *bf, struct app_checks *c)
{
	struct blkif_request r;
	struct blkif_request_indirect *ind = (struct blkif_request_indirect *)&r;
	char path[128], buf[16];
	uint64_t st = 0, end;
	int rc;

#define BV_REQ(op_, nseg_, sector_)                                                                          \
	do {                                                                                                 \
		memset(&r, 0, sizeof(r));                                                                    \
		r.operation = (op_);                                                                         \
		r.nr_segments = (nseg_);                                                                     \
		r.sector_number = (sector_);                                                                 \
		for (unsigned int i_ = 0; i_ < BLKIF_MAX_SEGMENTS_PER_REQUEST; i_++)                        \
			r.seg[i_] = (struct blkif_request_segment){ bf->pool_ref[i_], 0, 7 };                \
	} while (0)
	BV_REQ(BLKIF_OP_READ, 0, 0);
	app_check(c, bv_raw(bf, &r) == BLKIF_RSP_ERROR, "zero segments refused", "%s", "");
	BV_REQ(BLKIF_OP_READ, 12, 0);
	app_check(c, bv_raw(bf, &r) == BLKIF_RSP_ERROR, "12 segments refused", "%s", "");
	BV_REQ(BLKIF_OP_WRITE, 1, 0);
	r.seg[0].last_sect = 9;
	app_check(c, bv_raw(bf, &r) == BLKIF_RSP_ERROR, "segment outside its page refused", "%s", "");
	BV_REQ(BLKIF_OP_READ, 2, bf->sectors - 8);
	app_check(c, bv_raw(bf, &r) == BLKIF_RSP_ERROR, "read past the end refused", "%s", "");
	BV_REQ(BLKIF_OP_WRITE, 1, ~0ull - 3);
	app_check(c, bv_raw(bf, &r) == BLKIF_RSP_ERROR, "64-bit sector wrap refused", "%s", "");
	BV_REQ(BLKIF_OP_READ, 1, 0);
	r.seg[0].gref = GNTTAB_MAX_REFS - 1; /* never claimed: not granted */
	app_check(c, bv_raw(bf, &r) == BLKIF_RSP_ERROR, "grant ref not granted refused", "%s", "");
	BV_REQ(BLKIF_OP_INDIRECT, 0, 0);
	ind->indirect_op = BLKIF_OP_READ;
	ind->nr_segments = 5000;
	app_check(c, bv_raw(bf, &r) == BLKIF_RSP_ERROR, "indirect segment count refused", "%s", "");
	BV_REQ(77, 1, 0);
	app_check(c, bv_raw(bf, &r) == BLKIF_RSP_EOPNOTSUPP, "unknown operation not supported", "%s", "");
	rc = blkfront_sync(bf, BLKIF_OP_READ, 0, 0, 1);
	app_check(c, rc == BLKIF_RSP_OKAY, "device still serves a good request", "status %d", rc);
#undef BV_REQ
	/* The producer runs away: 1000 requests claimed on a ring of at most 128 slots. */
	bf->ring.sring->req_prod += 1000;
	events_send(&k->ev, bf->port);
	lib_snprintf(path, sizeof(path), "%s/state", bf->be);
	end = time_now_ns(&k->time) + 5000000000ull;
	while (time_now_ns(&k->time) < end) {
		if (xenbus_read(&k->xb, 0, path, buf, sizeof(buf)) >= 0 && lib_parse_u64(buf, &st) == 0 && st >= 5)
			break;
		timer_sleep_ns(&k->tm, 5000000);
	}
	app_check(c, st >= 5, "run-away producer disconnected the device", "back-end state %lu", st);
	bf->dead = true;
}

static void bv_loop(struct kernel *k, struct blkfront *bf, uint64_t seed, struct app_result *res)
{
	uint64_t acked = 0, st, total = bf->sectors / 8;
	char path[128], buf[16];
	int rc;

	for (;;) {
		bv_fill(blkfront_page(bf, 0), acked % total, seed);
		rc = blkfront_sync(bf, BLKIF_OP_WRITE, (acked % total) * 8, 0, 1);
		if (rc != BLKIF_RSP_OKAY) {
			kprintf(k, "blk-verify: write failed (%d) after %lu acknowledged writes\n", rc, acked);
			app_set(res, APP_FAILURE, "I/O error after %lu acknowledged writes", acked);
			return;
		}
		acked++;
		if (acked % 64)
			continue;
		kprintf(k, "blk-verify: acked %lu\n", acked);
		lib_snprintf(path, sizeof(path), "%s/state", bf->be);
		if (xenbus_read(&k->xb, 0, path, buf, sizeof(buf)) >= 0 && lib_parse_u64(buf, &st) == 0 && st >= 5) {
			kprintf(k, "blk-verify: back-end closing after %lu acknowledged writes\n", acked);
			blkfront_close(bf);
			app_set(res, APP_SUCCESS, "detached cleanly under I/O after %lu writes", acked);
			return;
		}
	}
}

void app_blk_verify(struct kernel *k, struct app_result *res)
{
	struct app_checks c = {.k = k};
	uint64_t n = kernel_cmdline_u64(k, "blocks", 256), seed = kernel_cmdline_u64(k, "seed", 1);
	bool pers = kernel_cmdline_u64(k, "persistent", 1) != 0;
	static struct blkfront bf;
	char mode[16] = "full";
	unsigned int bad;
	int rc;

	kernel_cmdline_get(k, "mode", mode, sizeof(mode));
	if (!app_need_events(k, res))
		return;
	rc = xenbus_init(&k->xb, &k->ev, &k->tm, &k->time, (uintptr_t)lamina_image_end);
	if (rc == 0)
		rc = gnttab_init(&bv_table, 2);
	if (rc < 0) {
		app_set(res, rc == -XEN_ENOSYS || rc == -XEN_ENOENT ? APP_SKIP : APP_ERROR, "store or grants: %d", rc);
		return;
	}
	/* wait-ms=N: the disk may be hot-plugged after boot. */
	uint64_t until = time_now_ns(&k->time) + kernel_cmdline_u64(k, "wait-ms", 0) * 1000000ull;

	for (;;) {
		rc = blkfront_init(&bf, k, &bv_table, (uint32_t)kernel_cmdline_u64(k, "vbd", 0), pers,
				   (unsigned int)kernel_cmdline_u64(k, "ring-order", 0));
		/* not there yet: no node (or, before the toolstack made device/, no access) */
		if ((rc != -XEN_ENOENT && rc != -XEN_EACCES) || time_now_ns(&k->time) >= until)
			break;
		timer_sleep_ns(&k->tm, 10000000);
	}
	if (rc < 0) {
		app_set(res, APP_ERROR, "blkfront: %s (%d)", lib_errno_name(rc) ? lib_errno_name(rc) : "?", rc);
		return;
	}
	kprintf(k, "blk-verify: %s: %lu sectors, %s, persistent %d, indirect %u, flush %d, discard %d, %u-page ring\n",
		bf.fe, bf.sectors, bf.readonly ? "read-only" : "read-write", bf.persistent, bf.max_indirect, bf.flush,
		bf.discard, 1u << bf.ring_order);
	if (n == 0 || n > bf.sectors / 8)
		n = bf.sectors / 8;
	if (strcmp(mode, "loop") == 0) {
		bv_loop(k, &bf, seed, res);
		return;
	}
	if (strcmp(mode, "hostile") == 0) {
		bv_hostile(k, &bf, &c);
		app_checks_result(&c, res);
		return;
	}
	if (strcmp(mode, "check") == 0 || bf.readonly) {
		bad = bv_pass(&bf, BLKIF_OP_READ, n, seed, bf.nr_slots);
		app_check(&c, bad == 0, "blocks written earlier read back intact", "%u of %lu bad", bad, n);
		if (bf.readonly) {
			rc = blkfront_sync(&bf, BLKIF_OP_WRITE, 0, 0, 1);
			app_check(&c, rc == BLKIF_RSP_ERROR, "write to the read-only disk refused", "status %d", rc);
		}
	} else {
		bad = bv_pass(&bf, BLKIF_OP_WRITE, n, seed, bf.nr_slots);
		app_check(&c, bad == 0, "patterned writes acknowledged", "%u of %lu failed", bad, n);
		rc = bf.flush ? blkfront_sync(&bf, BLKIF_OP_FLUSH_DISKCACHE, 0, 0, 0) : 0;
		app_check(&c, rc == BLKIF_RSP_OKAY, "flush acknowledged", "status %d", rc);
		bad = bv_pass(&bf, BLKIF_OP_READ, n, seed, bf.nr_slots);
		app_check(&c, bad == 0, "blocks read back and verified", "%u of %lu bad at QD%u", bad, n, bf.nr_slots);
		if (bf.max_indirect >= 256 && bf.sectors >= 2 * 2048) {
			/* 1 MiB through indirect segments at the start of the second MiB... */
			for (unsigned int i = 0; i < 256; i++)
				bv_fill(blkfront_page(&bf, 64 + i), 256 + i, seed + 1);
			rc = blkfront_sync(&bf, BLKIF_OP_WRITE, 2048, 64, 256);
			app_check(&c, rc == BLKIF_RSP_OKAY, "1 MiB indirect write", "status %d", rc);
			memset(blkfront_page(&bf, 64), 0, 256 * 4096);
			rc = blkfront_sync(&bf, BLKIF_OP_READ, 2048, 64, 256);
			bad = 0;
			for (unsigned int i = 0; i < 256; i++)
				bad += !bv_ok(blkfront_page(&bf, 64 + i), 256 + i, seed + 1);
			app_check(&c, rc == BLKIF_RSP_OKAY && bad == 0, "1 MiB indirect read verified", "status %d, %u bad",
				  rc, bad);
			/* ...then the spread blocks are rewritten, so the image holds one seed for the host */
			bad = bv_pass(&bf, BLKIF_OP_WRITE, n, seed, 32);
			app_check(&c, bad == 0, "rewrite after the indirect pass", "%u failed", bad);
		}
		rc = blkfront_sync(&bf, BLKIF_OP_READ, bf.sectors, 0, 1);
		app_check(&c, rc == BLKIF_RSP_ERROR, "read past the end refused", "status %d", rc);
		uint64_t last = bf.sectors / 8 - 1;

		if (bf.discard && n >= 2 && bv_block(&bf, n - 1, n) != last) {

			bv_fill(blkfront_page(&bf, 0), last, seed);
			rc = blkfront_sync(&bf, BLKIF_OP_WRITE, last * 8, 0, 1);
			if (rc == 0)
				rc = blkfront_sync(&bf, BLKIF_OP_DISCARD, last * 8, 0, 1);
			if (rc == 0)
				rc = blkfront_sync(&bf, BLKIF_OP_READ, last * 8, 1, 1);
			bool zero = true;
			for (unsigned int i = 0; i < 4096; i++)
				zero = zero && blkfront_page(&bf, 1)[i] == 0;
			app_check(&c, rc == BLKIF_RSP_OKAY && zero, "discarded block reads as zeros", "status %d", rc);
		}
		if (bf.flush)
			blkfront_sync(&bf, BLKIF_OP_FLUSH_DISKCACHE, 0, 0, 0);
	}
	kprintf(k, "blk-verify: blocks %lu seed %lu stride %lu: %lu requests, %lu errors, %lu notifications\n", n,
		seed, bv_block(&bf, 1, n), bf.submitted, bf.errors, bf.notifies);
	blkfront_close(&bf);
	app_checks_result(&c, res);
}
