/* app=grant-test: grants pages to Domain-0 and checks what a Domain-0 client (tests/gnt_client)
 * does with them. The handshake is two words at the start of the read-write page: the client's
 * phase at offset 0, ours at offset 4, each only ever increasing.
 *   mode=full (default): rw, ro, copy and other (granted to domain 7) pages; checks the client's
 *     writes, that the read-only page stayed intact, that ending access is refused while mapped,
 *     the copies, then flips a grant's flags while the client copies through it.
 *   mode=hold: rw and ro pages mapped by the client, then idles until destroyed.
 *   mode=bench pages=N: N contiguous pages granted read-write, then idles.
 *   mode=g2g-grant peer=D [hold]: rw and ro pages granted to guest D, which maps them
 *     (mode=g2g-map); checks its write arrived, ending access is refused while mapped and
 *     succeeds after. hold: grants, then idles until destroyed.
 *   mode=g2g-map peer=D rw=R ro=R [hold]: maps D's grants above our RAM (refusals first), reads
 *     the patterns, writes through the rw map, a write through the ro map is dropped; unmaps
 *     (bad handles refused). hold: maps both and idles (D may be destroyed meanwhile). */
#include "apps.h"
#include "../kernel/gnttab.h"
#include "../kernel/hypercall.h"

#define GT_MAX_BENCH 256u
/* Bench pages are free RAM from 4 MiB up: the image and its start-info page sit below 2 MiB. */
#define GT_BENCH_BASE 0x400000ull
#define GT_OTHER_DOMID 7
#define GT_DATA_OFF 64u	 /* patterns fill a page from here: the words before are the handshake */
#define GT_COPY_IN 3000u /* the client copies into [3000, 4096) of the copy page */
#define GT_WAIT_NS (30ull * 1000000000ull)

enum { GT_RW, GT_RO, GT_COPY, GT_OTHER, GT_NR };

static uint8_t gt_pages[GT_NR][GUEST_PAGE_SIZE] __attribute__((aligned(GUEST_PAGE_SIZE)));
static struct gnttab gt_table;

static uint8_t gt_pat(unsigned int i, unsigned int seed)
{
	return (uint8_t)(i * (2 * seed + 1) + seed);
}

static void gt_fill(uint8_t *p, unsigned int seed)
{
	for (unsigned int i = GT_DATA_OFF; i < GUEST_PAGE_SIZE; i++)
		p[i] = gt_pat(i, seed);
}

/* Bytes [from, to) of p hold pattern seed. */
static bool gt_has(const uint8_t *p, unsigned int from, unsigned int to, unsigned int seed)
{
	for (unsigned int i = from; i < to; i++)
		if (p[i] != gt_pat(i, seed))
			return false;
	return true;
}

static volatile uint32_t *gt_word(unsigned int which)
{
	return (volatile uint32_t *)&gt_pages[GT_RW][which * 4];
}

/* Waits (yielding) until the client's phase reaches want; false after GT_WAIT_NS. */
static bool gt_wait_client(struct kernel *k, uint32_t want)
{
	uint64_t end = time_now_ns(&k->time) + GT_WAIT_NS;

	while (__atomic_load_n(gt_word(0), __ATOMIC_ACQUIRE) < want) {
		if (time_now_ns(&k->time) > end)
			return false;
		HYPERVISOR_sched_op(SCHEDOP_yield, NULL);
	}
	return true;
}

static void gt_phase(uint32_t v)
{
	__atomic_store_n(gt_word(1), v, __ATOMIC_RELEASE);
}

static uint64_t gt_gfn(const void *p)
{
	return (uintptr_t)p >> 12;
}

/* Ends access once the last (transient) use is over: copies hold a grant only for a moment. */
static int gt_end_wait(grant_ref_t ref)
{
	int rc = gnttab_end_access(&gt_table, ref);

	for (unsigned int tries = 0; rc == -XEN_EBUSY && tries < 10000; tries++) {
		HYPERVISOR_sched_op(SCHEDOP_yield, NULL);
		rc = gnttab_end_access(&gt_table, ref);
	}
	return rc;
}

static void gt_idle(struct kernel *k)
{
	for (;;)
		kernel_idle(k);
}

static void gt_bench_mode(struct kernel *k, struct app_result *res)
{
	uint64_t n = kernel_cmdline_u64(k, "pages", 256);
	grant_ref_t first = 0, ref;

	uint8_t(*pages)[GUEST_PAGE_SIZE] = (uint8_t(*)[GUEST_PAGE_SIZE])(uintptr_t)GT_BENCH_BASE;

	if (n == 0 || n > GT_MAX_BENCH || k->ram_top < GT_BENCH_BASE + n * GUEST_PAGE_SIZE) {
		app_set(res, APP_ERROR, "pages must be 1..%u and fit in RAM above 4 MiB", GT_MAX_BENCH);
		return;
	}
	for (uint64_t i = 0; i < n; i++) {
		if (gnttab_claim(&gt_table, &ref) < 0 || (i && ref != first + i)) {
			app_set(res, APP_ERROR, "refs are not contiguous");
			return;
		}
		if (i == 0)
			first = ref;
		gt_fill(pages[i], (unsigned int)i);
		gnttab_grant_access(&gt_table, ref, 0, gt_gfn(pages[i]), false);
	}
	kprintf(k, "grant-test: bench first %u pages %lu\n", first, n);
	gt_idle(k);
}

/* A hostile guest: rewrites the copy grant's flags (plain stores racing the hypervisor's
 * cmpxchg) until the client says it is done copying. */
static unsigned long gt_flip(struct kernel *k, grant_ref_t ref)
{
	volatile uint32_t *w = (volatile uint32_t *)&gt_table.table[ref];
	static const uint32_t words[] = {GTF_permit_access, 0, GTF_permit_access | GTF_readonly,
					 GTF_permit_access | (3u << 16), GTF_accept_transfer};
	uint64_t end = time_now_ns(&k->time) + GT_WAIT_NS;
	unsigned long flips = 0;

	while (__atomic_load_n(gt_word(0), __ATOMIC_ACQUIRE) < 3 && time_now_ns(&k->time) < end) {
		*w = words[flips % LIB_ARRAY_SIZE(words)];
		if (++flips % 4096 == 0)
			HYPERVISOR_sched_op(SCHEDOP_yield, NULL);
	}
	*w = GTF_permit_access;
	return flips;
}

/* Grant pages to a peer guest: the handshake words live in the rw page, which the peer maps. */
static void gt_g2g_grant(struct kernel *k, struct app_result *res)
{
	domid_t peer = (domid_t)kernel_cmdline_u64(k, "peer", 2);
	struct app_checks c = {.k = k};
	grant_ref_t rw, ro;
	uint64_t end;
	uint16_t f;
	int rc;

	if (gnttab_claim(&gt_table, &rw) < 0 || gnttab_claim(&gt_table, &ro) < 0) {
		app_set(res, APP_ERROR, "no free grant ref");
		return;
	}
	gt_fill(gt_pages[GT_RW], 1);
	gt_fill(gt_pages[GT_RO], 2);
	gnttab_grant_access(&gt_table, rw, peer, gt_gfn(gt_pages[GT_RW]), false);
	gnttab_grant_access(&gt_table, ro, peer, gt_gfn(gt_pages[GT_RO]), true);
	kprintf(k, "grant-test: rw ref %u gfn 0x%lx\n", rw, gt_gfn(gt_pages[GT_RW]));
	kprintf(k, "grant-test: ro ref %u gfn 0x%lx\n", ro, gt_gfn(gt_pages[GT_RO]));
	kprintf(k, "grant-test: g2g ready for dom%u\n", peer);
	if (kernel_cmdline_has(k, "hold"))
		gt_idle(k); /* until destroyed, with the peer's maps in place */
	if (!gt_wait_client(k, 1)) {
		app_set(res, APP_ERROR, "the peer never mapped the pages");
		return;
	}
	f = gnttab_flags(&gt_table, rw);
	app_check(&c, (f & (GTF_reading | GTF_writing)) == (GTF_reading | GTF_writing),
		  "rw grant in use by the peer (reading|writing)", "flags 0x%x", f);
	f = gnttab_flags(&gt_table, ro);
	app_check(&c, (f & (GTF_reading | GTF_writing)) == GTF_reading, "ro grant in use for reading only",
		  "flags 0x%x", f);
	rc = gnttab_end_access(&gt_table, rw);
	f = gnttab_flags(&gt_table, rw);
	app_check(&c, rc == -XEN_EBUSY && (f & GTF_permit_access), "end access refused while mapped",
		  "rc %d flags 0x%x", rc, f);
	app_check(&c, gt_has(gt_pages[GT_RW], GT_DATA_OFF, GUEST_PAGE_SIZE, 5),
		  "peer's write reached the rw page", "%s", "");
	gt_phase(1);
	end = time_now_ns(&k->time) + GT_WAIT_NS;
	while ((gnttab_in_use(&gt_table, rw) || gnttab_in_use(&gt_table, ro)) && time_now_ns(&k->time) < end)
		HYPERVISOR_sched_op(SCHEDOP_yield, NULL);
	app_check(&c, !gnttab_in_use(&gt_table, rw) && !gnttab_in_use(&gt_table, ro),
		  "flags clear after the peer unmapped", "rw 0x%x ro 0x%x", gnttab_flags(&gt_table, rw),
		  gnttab_flags(&gt_table, ro));
	app_check(&c, gt_has(gt_pages[GT_RO], GT_DATA_OFF, GUEST_PAGE_SIZE, 2), "ro page unchanged", "%s",
		  "");
	rc = gnttab_end_access(&gt_table, rw);
	app_check(&c, rc == 0, "end access of the rw grant after unmap", "rc %d", rc);
	rc = gnttab_end_access(&gt_table, ro);
	app_check(&c, rc == 0 && gnttab_flags(&gt_table, ro) == 0, "end access of the ro grant after unmap",
		  "rc %d", rc);
	gnttab_release(&gt_table, rw);
	gnttab_release(&gt_table, ro);
	app_checks_result(&c, res);
}

/* A map that must be refused with want: nothing may be held afterwards. */
static void gt_g2g_refused(struct app_checks *c, const char *name, domid_t dom, grant_ref_t ref, uint64_t gpa,
			   uint32_t flags, int16_t want)
{
	struct gnttab_map_grant_ref op = {.host_addr = gpa, .flags = flags, .ref = ref, .dom = dom};
	long rc = HYPERVISOR_grant_table_op(GNTTABOP_map_grant_ref, &op, 1);

	app_check(c, rc == 0 && op.status == want, name, "rc %ld status %d (want %d)", rc, op.status, want);
}

/* GT_CYCLES map + read + unmap rounds of one grant at gpa: each must work; prints the mean. */
#define GT_CYCLES 200u
static void gt_g2g_cycles(struct kernel *k, struct app_checks *c, domid_t peer, grant_ref_t ref, uint64_t gpa)
{
	uint64_t t0 = time_now_ns(&k->time);
	unsigned int good = 0;
	grant_handle_t h;
	int16_t st, st2;

	for (unsigned int i = 0; i < GT_CYCLES; i++) {
		if (gnttab_map(peer, ref, gpa, true, &st, &h) < 0 || st != GNTST_okay)
			break;
		bool seen = *(volatile uint8_t *)(uintptr_t)(gpa + GT_DATA_OFF) == gt_pat(GT_DATA_OFF, 5);
		if (gnttab_unmap(h, gpa, &st2) < 0 || st2 != GNTST_okay || !seen)
			break;
		good++;
	}
	uint64_t ns = time_now_ns(&k->time) - t0;
	app_check(c, good == GT_CYCLES, "map, read, unmap cycles", "%u of %u", good, GT_CYCLES);
	kprintf(k, "grant-test: map+unmap cycle %lu ns mean over %u\n", (unsigned long)(ns / GT_CYCLES),
		GT_CYCLES);
}

/* Map a peer's grants at frames above our RAM and use them. */
static void gt_g2g_map(struct kernel *k, struct app_result *res)
{
	domid_t peer = (domid_t)kernel_cmdline_u64(k, "peer", 1);
	grant_ref_t rw = (grant_ref_t)kernel_cmdline_u64(k, "rw", 0),
		    ro = (grant_ref_t)kernel_cmdline_u64(k, "ro", 0);
	uint64_t w = GNTTAB_MAP_GFN_BASE << 12, r = w + GUEST_PAGE_SIZE;
	volatile uint8_t *wp = (volatile uint8_t *)(uintptr_t)w, *rp = (volatile uint8_t *)(uintptr_t)r;
	struct app_checks c = {.k = k};
	grant_handle_t hw, hr, hx;
	int16_t st = 0, st2 = 0;
	int rc, rc2;

	gt_g2g_refused(&c, "ro grant mapped writable refused", peer, ro, w, GNTMAP_host_map,
		       GNTST_general_error);
	gt_g2g_refused(&c, "map over our own RAM refused", peer, rw, gt_gfn(gt_pages[GT_RW]) << 12,
		       GNTMAP_host_map, GNTST_bad_virt_addr);
	gt_g2g_refused(&c, "unaligned address refused", peer, rw, w + 8, GNTMAP_host_map,
		       GNTST_bad_virt_addr);
	gt_g2g_refused(&c, "bad ref refused", peer, 1u << 20, w, GNTMAP_host_map, GNTST_bad_gntref);
	gt_g2g_refused(&c, "missing domain refused", 77, rw, w, GNTMAP_host_map, GNTST_bad_domain);
	gt_g2g_refused(&c, "device map refused", peer, rw, w, GNTMAP_host_map | GNTMAP_device_map,
		       GNTST_general_error);
	rc = gnttab_map(peer, rw, w, false, &st, &hw);
	rc2 = gnttab_map(peer, ro, r, true, &st2, &hr);
	if (!app_check(&c, rc == 0 && st == GNTST_okay && rc2 == 0 && st2 == GNTST_okay,
		       "rw and ro grants mapped", "rc %d status %d, rc %d status %d", rc, st, rc2, st2)) {
		app_checks_result(&c, res);
		return;
	}
	kprintf(k, "grant-test: mapped rw at 0x%lx handle %u, ro at 0x%lx handle %u\n", (unsigned long)w, hw,
		(unsigned long)r, hr);
	gt_g2g_refused(&c, "second map at a used frame refused", peer, rw, w, GNTMAP_host_map,
		       GNTST_bad_virt_addr);
	app_check(&c, gt_has((const uint8_t *)wp, GT_DATA_OFF, GUEST_PAGE_SIZE, 1),
		  "rw pattern read through the map", "byte 64 0x%x", wp[GT_DATA_OFF]);
	app_check(&c, gt_has((const uint8_t *)rp, GT_DATA_OFF, GUEST_PAGE_SIZE, 2),
		  "ro pattern read through the map", "byte 64 0x%x", rp[GT_DATA_OFF]);
	for (unsigned int i = GT_DATA_OFF; i < GUEST_PAGE_SIZE; i++)
		wp[i] = gt_pat(i, 5);
	rp[GT_DATA_OFF] = (uint8_t)~gt_pat(GT_DATA_OFF, 2); /* dropped: the slot is read-only */
	app_check(&c, rp[GT_DATA_OFF] == gt_pat(GT_DATA_OFF, 2), "write through the ro map dropped",
		  "byte 0x%x", rp[GT_DATA_OFF]);
	if (kernel_cmdline_has(k, "hold")) {
		/* The peer may be destroyed meanwhile: its page must stay ours to read. */
		kprintf(k, "grant-test: holding maps\n");
		for (unsigned long n = 1;; n++) {
			timer_sleep_ns(&k->tm, 200000000ull);
			kprintf(k, "grant-test: held check %lu %s\n", n,
				gt_has((const uint8_t *)wp, GT_DATA_OFF, GUEST_PAGE_SIZE, 5) ? "intact"
											     : "CHANGED");
		}
	}
	gt_g2g_cycles(k, &c, peer, rw, w + 2 * GUEST_PAGE_SIZE);
	__atomic_store_n((volatile uint32_t *)wp, 1, __ATOMIC_RELEASE); /* the peer's client phase */
	uint64_t end = time_now_ns(&k->time) + GT_WAIT_NS;
	while (__atomic_load_n((volatile uint32_t *)(wp + 4), __ATOMIC_ACQUIRE) < 1 &&
	       time_now_ns(&k->time) < end)
		HYPERVISOR_sched_op(SCHEDOP_yield, NULL);
	app_check(&c, __atomic_load_n((volatile uint32_t *)(wp + 4), __ATOMIC_ACQUIRE) >= 1,
		  "peer checked the maps", "%s", "");
	rc = gnttab_unmap(hw, r, &st);
	app_check(&c, rc == 0 && st == GNTST_general_error, "unmap at the wrong address refused",
		  "rc %d status %d", rc, st);
	rc = gnttab_unmap(hw, w, &st);
	rc2 = gnttab_unmap(hr, r, &st2);
	app_check(&c, rc == 0 && st == GNTST_okay && rc2 == 0 && st2 == GNTST_okay, "both unmapped",
		  "rc %d status %d, rc %d status %d", rc, st, rc2, st2);
	app_check(&c, *(volatile uint32_t *)wp == 0xffffffffu, "unmapped frame reads as a hole", "0x%x",
		  *(volatile uint32_t *)wp);
	rc = gnttab_unmap(hw, w, &st);
	app_check(&c, rc == 0 && st == GNTST_bad_handle, "handle unmapped twice refused", "rc %d status %d",
		  rc, st);
	hx = 60000;
	rc = gnttab_unmap(hx, w, &st);
	app_check(&c, rc == 0 && st == GNTST_bad_handle, "handle never issued refused", "rc %d status %d", rc,
		  st);
	app_checks_result(&c, res);
}

void app_grant_test(struct kernel *k, struct app_result *res)
{
	static const char *const names[GT_NR] = {"rw", "ro", "copy", "other"};
	struct app_checks c = {.k = k};
	grant_ref_t ref[GT_NR];
	char mode[16] = "full";
	int rc;

	kernel_cmdline_get(k, "mode", mode, sizeof(mode));
	rc = gnttab_init(&gt_table, 1);
	if (rc < 0) {
		app_set(res, rc == -XEN_ENOSYS ? APP_SKIP : APP_ERROR, "grant table set-up: %d", rc);
		return;
	}
	kprintf(k, "grant-test: table at gfn 0x%lx, max %u frames\n", (unsigned long)GNTTAB_GFN_BASE,
		gt_table.max_frames);
	if (strcmp(mode, "bench") == 0) {
		gt_bench_mode(k, res);
		return;
	}
	if (strcmp(mode, "g2g-grant") == 0) {
		gt_g2g_grant(k, res);
		return;
	}
	if (strcmp(mode, "g2g-map") == 0) {
		gt_g2g_map(k, res);
		return;
	}
	for (unsigned int i = 0; i < GT_NR; i++) {
		if (gnttab_claim(&gt_table, &ref[i]) < 0) {
			app_set(res, APP_ERROR, "no free grant ref");
			return;
		}
		gt_fill(gt_pages[i], i + 1);
		gnttab_grant_access(&gt_table, ref[i], i == GT_OTHER ? GT_OTHER_DOMID : 0,
				    gt_gfn(gt_pages[i]), i == GT_RO);
		kprintf(k, "grant-test: %s ref %u gfn 0x%lx\n", names[i], ref[i], gt_gfn(gt_pages[i]));
	}
	kprintf(k, "grant-test: ready\n");
	if (!gt_wait_client(k, 1)) {
		app_set(res, APP_ERROR, "the Domain-0 client never mapped the pages");
		return;
	}
	uint16_t f = gnttab_flags(&gt_table, ref[GT_RW]);
	app_check(&c, (f & (GTF_reading | GTF_writing)) == (GTF_reading | GTF_writing),
		  "rw grant in use (reading|writing)", "flags 0x%x", f);
	f = gnttab_flags(&gt_table, ref[GT_RO]);
	app_check(&c, (f & (GTF_reading | GTF_writing)) == GTF_reading, "ro grant in use for reading only",
		  "flags 0x%x", f);
	rc = gnttab_end_access(&gt_table, ref[GT_RW]);
	f = gnttab_flags(&gt_table, ref[GT_RW]);
	app_check(&c, rc == -XEN_EBUSY && (f & GTF_permit_access), "end access refused while mapped",
		  "rc %d flags 0x%x", rc, f);
	app_check(&c, gt_has(gt_pages[GT_RW], GT_DATA_OFF, GUEST_PAGE_SIZE, 5),
		  "client's write reached the rw page", "%s", "");
	app_check(&c, gt_has(gt_pages[GT_RO], GT_DATA_OFF, GUEST_PAGE_SIZE, 2), "ro page unchanged", "%s",
		  "");
	app_check(&c,
		  gt_has(gt_pages[GT_OTHER], GT_DATA_OFF, GUEST_PAGE_SIZE, 4) &&
		      !gnttab_in_use(&gt_table, ref[GT_OTHER]),
		  "page granted to another domain untouched", "%s", "");
	gt_phase(1);
	if (strcmp(mode, "hold") == 0) {
		kprintf(k, "grant-test: holding\n");
		gt_idle(k);
	}
	if (!gt_wait_client(k, 2)) {
		app_set(res, APP_ERROR, "the Domain-0 client never finished its copies");
		return;
	}
	app_check(&c, !gnttab_in_use(&gt_table, ref[GT_RW]) && !gnttab_in_use(&gt_table, ref[GT_RO]),
		  "flags clear after unmap", "rw 0x%x ro 0x%x", gnttab_flags(&gt_table, ref[GT_RW]),
		  gnttab_flags(&gt_table, ref[GT_RO]));
	app_check(&c, gt_has(gt_pages[GT_COPY], GT_COPY_IN, GUEST_PAGE_SIZE, 6), "copy into the page arrived",
		  "%s", "");
	app_check(&c, gt_has(gt_pages[GT_COPY], GT_DATA_OFF, GT_COPY_IN, 3),
		  "rest of the copy page unchanged", "%s", "");
	app_check(&c, gt_has(gt_pages[GT_RO], GT_DATA_OFF, GUEST_PAGE_SIZE, 2), "ro page unchanged by copies",
		  "%s", "");
	rc = gnttab_end_access(&gt_table, ref[GT_RO]);
	app_check(&c, rc == 0 && gnttab_flags(&gt_table, ref[GT_RO]) == 0, "end access after unmap", "rc %d",
		  rc);
	app_check(&c, gnttab_end_access(&gt_table, ref[GT_OTHER]) == 0, "end access of the unused grant",
		  "%s", "");
	gt_phase(2);
	kprintf(k, "grant-test: flipping ref %u\n", ref[GT_COPY]);
	unsigned long flips = gt_flip(k, ref[GT_COPY]);
	kprintf(k, "grant-test: %lu flips while the client copied\n", flips);
	app_check(&c, __atomic_load_n(gt_word(0), __ATOMIC_ACQUIRE) >= 3, "client survived the flips", "%s",
		  "");
	rc = gt_end_wait(ref[GT_COPY]);
	app_check(&c, rc == 0, "end access of the flipped grant", "rc %d", rc);
	rc = gt_end_wait(ref[GT_RW]); /* the client's last copy may still be finishing */
	app_check(&c, rc == 0, "end access of the rw grant", "rc %d", rc);
	for (unsigned int i = 0; i < GT_NR; i++)
		gnttab_release(&gt_table, ref[i]);
	app_checks_result(&c, res);
}
