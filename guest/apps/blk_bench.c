/* app=blk-bench: block I/O from the guest through blkfront and lamina-blkback. 4 KiB random reads
 * and writes at QD1 and QD32, 1 MiB sequential reads and writes (QD2); each phase runs ms=N of guest
 * time (default 2000) and prints one line:
 *   BENCH blk NAME ops=N iops=X mbps=Y p50_us=A p90_us=B p99_us=C (latencies: a uniform sample)
 * With ring-order=2 (a 4-page ring), also 4 KiB random reads at QD128.
 * Options: persistent=0|1, ring-order=0..2, phases=LIST (comma-separated names, default all). */
#include "apps.h"
#include "../drivers/blkfront.h"

#define BB_SAMPLES 20000u

static struct gnttab bb_table;
static uint64_t bb_lat[BB_SAMPLES];

struct bb_phase {
	const char *name;
	uint8_t op;
	unsigned int pages, qd;
	bool random;
};

static const struct bb_phase bb_phases[] = {
	{"randread-4k-qd1", BLKIF_OP_READ, 1, 1, true},	{"randread-4k-qd32", BLKIF_OP_READ, 1, 32, true},
	{"randwrite-4k-qd1", BLKIF_OP_WRITE, 1, 1, true}, {"randwrite-4k-qd32", BLKIF_OP_WRITE, 1, 32, true},
	{"seqread-1m", BLKIF_OP_READ, 256, 2, false},	{"seqwrite-1m", BLKIF_OP_WRITE, 256, 2, false},
	{"randread-4k-qd128", BLKIF_OP_READ, 1, 128, true}, /* with ring-order=2 */
};

/* Whether name is one of the comma-separated entries of list. */
static bool bb_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p;) {
		const char *end = p;

		while (*end && *end != ',')
			end++;
		if ((size_t)(end - p) == n && memcmp(p, name, n) == 0)
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

static uint64_t bb_pct(uint64_t *v, unsigned int n, unsigned int pct)
{
	if (n == 0)
		return 0;
	return v[(uint64_t)(n - 1) * pct / 100];
}

/* One phase; returns its errors (failed requests, or a request that could not be queued). */
static unsigned int bb_run(struct kernel *k, struct blkfront *bf, const struct bb_phase *ph, uint64_t ms,
		   struct lib_rng *rng)
{
	uint64_t blocks = bf->sectors / 8, units = blocks / ph->pages, next = 0, ops = 0;
	uint64_t start = time_now_ns(&k->time), end = start + ms * 1000000ull, now;
	unsigned int nlat = 0, errors = 0;
	int slot = 0;

	if (units == 0)
		return 0;
	while (ops == 0 || bf->inflight || time_now_ns(&k->time) < end) {
		while (bf->inflight < ph->qd && time_now_ns(&k->time) < end) {
			uint64_t u = ph->random ? lib_rng_next(rng) % units : next++ % units;
			unsigned int first = 0;

			/* QD2 1 MiB: two halves of the pool; 4 KiB: a page per slot */
			for (unsigned int s = 0; s < bf->nr_slots; s++)
				if (!bf->slot[s].busy) {
					first = s * ph->pages % (BLKFRONT_POOL_PAGES - ph->pages + 1);
					break;
				}
			slot = blkfront_queue(bf, ph->op, u * ph->pages * 8, first, ph->pages);
			if (slot < 0)
				break;
		}
		if (slot < 0 && slot != -XEN_EBUSY && !bf->inflight) {
			/* Nothing in flight and nothing can be queued (e.g. no grant refs left). */
			kprintf(k, "blk-bench: %s: cannot queue a request: %d\n", ph->name, slot);
			errors++;
			break;
		}
		blkfront_kick(bf);
		blkfront_poll(bf, true);
		now = time_now_ns(&k->time);
		for (unsigned int s = 0; s < bf->nr_slots; s++) {
			if (!bf->slot[s].busy || !bf->slot[s].done)
				continue;
			/* A uniform sample of the whole phase (reservoir), not just its first requests. */
			if (nlat < BB_SAMPLES) {
				bb_lat[nlat++] = now - bf->slot[s].start_ns;
			} else {
				uint64_t j = lib_rng_next(rng) % (ops + 1);

				if (j < BB_SAMPLES)
					bb_lat[j] = now - bf->slot[s].start_ns;
			}
			errors += blkfront_take(bf, s) != BLKIF_RSP_OKAY;
			ops++;
		}
		if (bf->dead)
			break;
	}
	now = time_now_ns(&k->time) - start;
	lib_sort_u64(bb_lat, nlat);
	uint64_t iops = now ? ops * 1000000000ull / now : 0;
	uint64_t kbps = now ? ops * ph->pages * 4ull * 1000000000ull / now : 0;
	uint64_t p50 = bb_pct(bb_lat, nlat, 50), p90 = bb_pct(bb_lat, nlat, 90), p99 = bb_pct(bb_lat, nlat, 99);
	kprintf(k,
		"BENCH blk %s ops=%lu iops=%lu mbps=%lu.%02lu p50_us=%lu.%02lu p90_us=%lu.%02lu p99_us=%lu.%02lu "
		"errors=%u\n",
		ph->name, ops, iops, kbps / 1000, (kbps % 1000) / 10, p50 / 1000, p50 % 1000 / 10, p90 / 1000,
		p90 % 1000 / 10, p99 / 1000, p99 % 1000 / 10, errors);
	return errors;
}

void app_blk_bench(struct kernel *k, struct app_result *res)
{
	uint64_t ms = kernel_cmdline_u64(k, "ms", 2000);
	bool pers = kernel_cmdline_u64(k, "persistent", 1) != 0;
	static struct blkfront bf;
	char phases[160] = "";
	struct lib_rng rng;
	unsigned int failed = 0;
	int rc;

	kernel_cmdline_get(k, "phases", phases, sizeof(phases));
	if (!app_need_events(k, res))
		return;
	rc = xenbus_init(&k->xb, &k->ev, &k->tm, &k->time, (uintptr_t)lamina_image_end);
	if (rc == 0)
		rc = gnttab_init(&bb_table, 2);
	if (rc == 0)
		rc = blkfront_init(&bf, k, &bb_table, (uint32_t)kernel_cmdline_u64(k, "vbd", 0), pers,
				   (unsigned int)kernel_cmdline_u64(k, "ring-order", 0));
	if (rc < 0) {
		app_set(res, APP_ERROR, "block device set-up: %s (%d)", lib_errno_name(rc) ? lib_errno_name(rc) : "?",
			rc);
		return;
	}
	kprintf(k, "blk-bench: %lu sectors, persistent %d, indirect %u, %u-page ring (%u slots)\n", bf.sectors,
		bf.persistent, bf.max_indirect, 1u << bf.ring_order, bf.nr_slots);
	lib_rng_seed(&rng, 42);
	for (unsigned int i = 0; i < LIB_ARRAY_SIZE(bb_phases); i++) {
		if (phases[0] && !bb_listed(phases, bb_phases[i].name))
			continue;
		if ((bb_phases[i].op == BLKIF_OP_WRITE && bf.readonly) || bb_phases[i].qd > bf.nr_slots)
			continue;
		failed += bb_run(k, &bf, &bb_phases[i], ms, &rng);
	}
	kprintf(k, "blk-bench: %lu requests, %lu errors, %lu notifications received\n", bf.submitted, bf.errors,
		bf.notifies);
	blkfront_close(&bf);
	if (bf.errors || failed)
		app_set(res, APP_FAILURE, "%lu I/O errors, %u failed requests", bf.errors, failed);
}
