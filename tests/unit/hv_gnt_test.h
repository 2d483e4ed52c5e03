/* Shared set-up for the grant-table unit tests (hv_grant.c, hv_gnt_ring.c): one fake domain 5
 * with a grant table, helpers that write its shared entries, and a thread that flips them. */
#ifndef LAMINA_TEST_HV_GNT_TEST_H
#define LAMINA_TEST_HV_GNT_TEST_H

#include <pthread.h>
#include <stdatomic.h>

#include "grant_table.h"
#include "hv_test.h"

#define GT_GFN (0xf0000ull)    /* where the tests place grant frame 0: above RAM */
#define GT_DATA_GFN (0x100ull) /* a RAM page the grants name */

static struct hv_fixture t;

static inline void gt_setup(void)
{
	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	t.d->domid = 5;
	CU_ASSERT_FATAL(gnttab_domain_init(t.d) == 0);
}

static inline void gt_teardown(void)
{
	gnttab_domain_fini(t.d);
	fake_domain_destroy(t.f);
}

static inline long gt_op(unsigned cmd, uint64_t off, uint32_t count)
{
	return fake_hypercall(t.v, __HYPERVISOR_grant_table_op, cmd, HV_BUF_GVA + off, count, 0, 0);
}

static inline grant_entry_v1_t *gt_entry(uint32_t ref)
{
	return (grant_entry_v1_t *)t.d->gnt->frames[ref / GNT_ENTRIES_PER_FRAME] +
	       ref % GNT_ENTRIES_PER_FRAME;
}

static inline void gt_grant(uint32_t ref, uint16_t domid, uint16_t flags, uint32_t frame)
{
	grant_entry_v1_t *e = gt_entry(ref);

	e->frame = frame;
	e->domid = domid;
	__atomic_store_n(&e->flags, flags, __ATOMIC_RELEASE);
}

struct gt_flipper {
	grant_entry_v1_t *e;
	atomic_bool stop;
	unsigned long flips;
	atomic_ulong flips_seen;
};

/* A hostile guest: rewrites the entry's flags and domid, at varying speed. */
static inline void *gt_flip_main(void *arg)
{
	struct gt_flipper *fl = arg;
	static const uint32_t words[] = {
	    GTF_permit_access,
	    0,
	    GTF_permit_access | GTF_readonly,
	    GTF_permit_access | (3u << 16),
	    GTF_accept_transfer,
	    GTF_permit_access | GTF_reading | GTF_writing,
	};

	while (!atomic_load(&fl->stop)) {
		__atomic_store_n((uint32_t *)fl->e, words[fl->flips % 6], __ATOMIC_RELAXED);
		__atomic_store_n(&fl->flips, fl->flips + 1, __ATOMIC_RELAXED);
		atomic_store_explicit(&fl->flips_seen, fl->flips, memory_order_relaxed);
		for (unsigned i = 0; i < (fl->flips & 15); i++)
			__builtin_ia32_pause(); /* varying speed: some copies win, some lose */
	}
	return NULL;
}

#endif
