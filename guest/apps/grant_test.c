/* app=grant-test: grants pages to Domain-0 and checks what a Domain-0 client (tests/gnt_client)
 * does with them. The handshake is two words at the start of the read-write page: the client's
 * phase at offset 0, ours at offset 4, each only ever increasing.
 *   mode=full (default): rw, ro, copy and other (granted to domain 7) pages; checks the client's
 *     writes, that the read-only page stayed intact, that ending access is refused while mapped,
 *     the copies, then flips a grant's flags while the client copies through it.
 *   mode=hold: rw and ro pages mapped by the client, then idles until destroyed.
 *   mode=bench pages=N: N contiguous pages granted read-write, then idles. */
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
