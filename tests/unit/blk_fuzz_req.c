/* Fuzzing of the block back-end's request validation (pv-drivers/blk_req.c): ring slots full of
 * random bytes and mutations of valid requests, on writable and read-only devices. Whatever the
 * input, an accepted request must describe I/O inside the disk with sane segments, and a read-only
 * device must accept no write or discard. A bounded campaign here; a libFuzzer target when built
 * with -DLAMINA_LIBFUZZER -fsanitize=fuzzer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkback.h"

static unsigned long blk_fuzz_bad;

static void blk_fuzz_fail(const char *what, const struct blk_req *q)
{
	if (blk_fuzz_bad++ < 5)
		fprintf(stderr, "blk_fuzz_req: %s (op %u kind %d sector %llu n %llu segs %u)\n", what, q->operation,
			q->kind, (unsigned long long)q->sector, (unsigned long long)q->nr_sectors, q->nr_segs);
}

/* One slot's bytes (and, for indirect requests, the indirect page's first bytes) through the checks. */
static void blk_fuzz_one(const uint8_t *data, size_t len)
{
	static struct blk_req q;
	struct blkif_request r;
	struct blk_limits lim = { .indirect = 1, .discard = 1 };
	char why[160];
	int rc;

	/* two bytes choose the device (size, read-only), the rest is the ring slot, then the page */
	if (len < 2)
		return;
	lim.sectors = 1 + (uint64_t)data[0] * 97;
	lim.readonly = data[1] & 1;
	data += 2;
	len -= 2;
	memset(&r, 0, sizeof(r));
	memcpy(&r, data, len < sizeof(r) ? len : sizeof(r));
	rc = blk_req_decode(&r, &lim, &q, why, sizeof(why));
	if (rc == 0 && q.nr_indirect) {
		size_t off = sizeof(r), n = q.nr_segs * sizeof(q.seg[0]);

		if (q.nr_indirect > BLK_MAX_INDIRECT_PAGES || q.nr_segs > BLK_MAX_INDIRECT_SEGS)
			blk_fuzz_fail("indirect request beyond the advertised bounds", &q);
		memset(q.seg, 0, sizeof(q.seg));
		if (len > off)
			memcpy(q.seg, data + off, len - off < n ? len - off : n);
		rc = blk_req_check_segs(&q, &lim, why, sizeof(why));
	}
	if (rc != 0) {
		if (rc != BLKIF_RSP_ERROR && rc != BLKIF_RSP_EOPNOTSUPP)
			blk_fuzz_fail("unknown status", &q);
		return;
	}
	if (lim.readonly && (q.kind == BLK_KIND_WRITE || q.kind == BLK_KIND_DISCARD))
		blk_fuzz_fail("read-only device accepted a write or discard", &q);
	if (q.kind == BLK_KIND_READ || q.kind == BLK_KIND_WRITE) {
		uint64_t total = 0;

		if (q.nr_segs == 0 || q.nr_segs > (q.nr_indirect ? BLK_MAX_INDIRECT_SEGS : BLKIF_MAX_SEGMENTS_PER_REQUEST))
			blk_fuzz_fail("segment count out of bounds", &q);
		for (unsigned i = 0; i < q.nr_segs && i < BLK_MAX_INDIRECT_SEGS; i++) {
			if (q.seg[i].first_sect > q.seg[i].last_sect || q.seg[i].last_sect >= BLK_SECTORS_PER_PAGE)
				blk_fuzz_fail("segment outside its page", &q);
			total += (uint64_t)(q.seg[i].last_sect - q.seg[i].first_sect + 1);
		}
		if (total != q.nr_sectors)
			blk_fuzz_fail("sector count does not match the segments", &q);
	}
	if ((q.kind == BLK_KIND_READ || q.kind == BLK_KIND_WRITE || q.kind == BLK_KIND_DISCARD) &&
	    (q.sector >= lim.sectors || q.nr_sectors > lim.sectors - q.sector || q.nr_sectors == 0))
		blk_fuzz_fail("accepted I/O outside the disk", &q);
}

#ifdef LAMINA_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	blk_fuzz_one(data, len);
	if (blk_fuzz_bad)
		abort();
	return 0;
}
#else
static uint64_t blk_fuzz_rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int main(int argc, char **argv)
{
	unsigned long iters = argc > 1 ? strtoul(argv[1], NULL, 10) : 300000, accepted = 0;
	uint8_t whole[2 + sizeof(struct blkif_request) + 4096], *buf = whole + 2;
	uint64_t s = 0x9e3779b97f4a7c15ull;

	for (unsigned long it = 0; it < iters; it++) {
		size_t len = sizeof(struct blkif_request) + blk_fuzz_rng(&s) % 2048;

		if (it % 2 == 0) { /* pure noise */
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)blk_fuzz_rng(&s);
		} else { /* a valid request of each op, then a few bytes flipped */
			struct blkif_request *r = (struct blkif_request *)buf;
			static const uint8_t ops[] = { BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_FLUSH_DISKCACHE,
						       BLKIF_OP_DISCARD, BLKIF_OP_INDIRECT };

			memset(buf, 0, sizeof(whole) - 2);
			r->operation = ops[blk_fuzz_rng(&s) % sizeof(ops)];
			r->nr_segments = (uint8_t)(1 + blk_fuzz_rng(&s) % 11);
			r->sector_number = blk_fuzz_rng(&s) % 64;
			for (unsigned i = 0; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
				r->seg[i] = (struct blkif_request_segment){ (grant_ref_t)i, 0, 7 };
			if (r->operation == BLKIF_OP_INDIRECT) {
				buf[1] = (uint8_t)(blk_fuzz_rng(&s) % 2 ? BLKIF_OP_READ : BLKIF_OP_WRITE);
				*(uint16_t *)(buf + 2) = (uint16_t)(1 + blk_fuzz_rng(&s) % 300);
			}
			for (int k = 0, n = (int)(blk_fuzz_rng(&s) % 4); k < n; k++)
				buf[blk_fuzz_rng(&s) % len] ^= (uint8_t)(1u << (blk_fuzz_rng(&s) % 8));
		}
		whole[0] = (uint8_t)blk_fuzz_rng(&s);
		whole[1] = (uint8_t)blk_fuzz_rng(&s);
		blk_fuzz_one(whole, len + 2);
		accepted++;
	}
	printf("blk_fuzz_req: %lu inputs, %lu invariant violations\n", accepted, blk_fuzz_bad);
	return blk_fuzz_bad ? 1 : 0;
}
#endif
