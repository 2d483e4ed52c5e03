/* Grant tables against the fake runner: grant_table_op's answers, the v1 pin state machine on
 * the shared entries, limits and frame placement, copy argument checks at every offset/length
 * boundary, copies between guests, and a thread flipping an entry's flags while copies run.
 * The Domain-0 copy ring has its own file, hv_gnt_ring.c. */
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "hv_gnt_test.h"

#include <xen/memory.h>

static void test_setup_query_version(void)
{
	gt_setup();
	struct gnttab_setup_table *st = hv_buf(&t, 0);
	struct gnttab_query_size *qs = hv_buf(&t, 0);
	struct gnttab_set_version *sv = hv_buf(&t, 0);
	struct gnttab_get_status_frames *gs = hv_buf(&t, 0);
	uint64_t *frames = hv_buf(&t, 0x1000);

	memset(st, 0, sizeof(*st));
	st->dom = DOMID_SELF;
	st->nr_frames = 2;
	st->frame_list.p = (xen_pfn_t *)(uintptr_t)(HV_BUF_GVA + 0x1000);
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_setup_table, 0, 1), 0);
	CU_ASSERT_EQUAL(st->status, GNTST_okay);
	CU_ASSERT_EQUAL(frames[0], ~0ull); /* not placed yet */
	CU_ASSERT_EQUAL(atomic_load(&t.d->gnt->nr_frames), 2u);
	st->nr_frames = GNT_DEFAULT_MAX_FRAMES + 1;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_setup_table, 0, 1), 0);
	CU_ASSERT_EQUAL(st->status, GNTST_general_error);
	st->dom = 7;
	st->nr_frames = 1;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_setup_table, 0, 1), 0);
	CU_ASSERT_EQUAL(st->status, GNTST_permission_denied);
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_setup_table, 0, 2), -EINVAL);

	/* add_to_physmap places frame 0 above RAM; setup_table then reports its GFN. */
	struct xen_add_to_physmap *x = hv_buf(&t, 0x2000);
	x->domid = DOMID_SELF;
	x->space = XENMAPSPACE_grant_table;
	x->idx = 0;
	x->gpfn = GT_GFN;
	CU_ASSERT_EQUAL(
	    fake_hypercall(t.v, __HYPERVISOR_memory_op, XENMEM_add_to_physmap, HV_BUF_GVA + 0x2000, 0, 0, 0),
	    0);
	CU_ASSERT_EQUAL(t.f->last_map_gfn, GT_GFN);
	CU_ASSERT_PTR_EQUAL(t.f->last_map_page, t.d->gnt->frames[0]);
	CU_ASSERT_PTR_EQUAL(gmem_gpa_ptr(&t.d->mem, GT_GFN << 12, 8), t.d->gnt->frames[0]);
	x->idx = GNT_DEFAULT_MAX_FRAMES; /* past the limit */
	x->gpfn = GT_GFN + 1;
	CU_ASSERT_EQUAL(
	    fake_hypercall(t.v, __HYPERVISOR_memory_op, XENMEM_add_to_physmap, HV_BUF_GVA + 0x2000, 0, 0, 0),
	    -EINVAL);
	x->idx = 1;
	x->gpfn = 0x10; /* inside RAM */
	CU_ASSERT_EQUAL(
	    fake_hypercall(t.v, __HYPERVISOR_memory_op, XENMEM_add_to_physmap, HV_BUF_GVA + 0x2000, 0, 0, 0),
	    -EINVAL);
	st->dom = DOMID_SELF;
	st->nr_frames = 1;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_setup_table, 0, 1), 0);
	CU_ASSERT_EQUAL(frames[0], GT_GFN);

	memset(qs, 0, sizeof(*qs));
	qs->dom = DOMID_SELF;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_query_size, 0, 1), 0);
	CU_ASSERT_EQUAL(qs->status, GNTST_okay);
	CU_ASSERT_EQUAL(qs->nr_frames, 2u);
	CU_ASSERT_EQUAL(qs->max_nr_frames, GNT_DEFAULT_MAX_FRAMES);

	sv->version = 2;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_set_version, 0, 1), -ENOSYS);
	CU_ASSERT_EQUAL(sv->version, 1u);
	sv->version = 3;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_set_version, 0, 1), -EINVAL);
	sv->version = 1;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_set_version, 0, 1), 0);

	memset(gs, 0, sizeof(*gs));
	gs->dom = DOMID_SELF;
	gs->nr_frames = 1;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_get_status_frames, 0, 1), 0);
	CU_ASSERT_EQUAL(gs->status, GNTST_general_error);
	gs->nr_frames = 0;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_get_status_frames, 0, 1), 0);
	CU_ASSERT_EQUAL(gs->status, GNTST_okay);

	struct gnttab_get_version *gv = hv_buf(&t, 0);
	gv->dom = DOMID_SELF;
	gv->version = 0;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_get_version, 0, 1), 0);
	CU_ASSERT_EQUAL(gv->version, 1u);
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_transfer, 0, 1), -ENOSYS);
	CU_ASSERT_EQUAL(gt_op(99, 0, 1), -ENOSYS);
	gt_teardown();
}

static void test_pin_state_machine(void)
{
	gt_setup();
	struct grant_table *g;
	uint64_t gfn;

	g = t.d->gnt;
	CU_ASSERT_FATAL(gnttab_grow(g, 1) == 0);
	gt_grant(1, 0, GTF_permit_access, GT_DATA_GFN);
	CU_ASSERT_EQUAL(gnttab_pin(g, 1, 0, false, true, &gfn), GNTST_okay);
	CU_ASSERT_EQUAL(gfn, GT_DATA_GFN);
	CU_ASSERT_EQUAL(gt_entry(1)->flags, GTF_permit_access | GTF_reading | GTF_writing);
	CU_ASSERT_EQUAL(gnttab_pin(g, 1, 0, true, true, &gfn), GNTST_okay);
	gnttab_unpin(g, 1, false); /* last writable use: GTF_writing clears, GTF_reading stays */
	CU_ASSERT_EQUAL(gt_entry(1)->flags, GTF_permit_access | GTF_reading);
	gnttab_unpin(g, 1, true);
	CU_ASSERT_EQUAL(gt_entry(1)->flags, GTF_permit_access);
	CU_ASSERT_EQUAL(g->pins_now, 0u);

	/* A read-only grant: never writable. */
	gt_grant(2, 0, GTF_permit_access | GTF_readonly, GT_DATA_GFN);
	CU_ASSERT_EQUAL(gnttab_pin(g, 2, 0, false, true, &gfn), GNTST_general_error);
	CU_ASSERT_EQUAL(gt_entry(2)->flags, GTF_permit_access | GTF_readonly);
	CU_ASSERT_EQUAL(gnttab_pin(g, 2, 0, true, true, &gfn), GNTST_okay);
	CU_ASSERT_EQUAL(gnttab_pin(g, 2, 0, false, true, &gfn), GNTST_general_error);
	gnttab_unpin(g, 2, true);

	/* A grant to domain 0 is useless to domain 3; none, invalid or transfer grants are refused. */
	CU_ASSERT_EQUAL(gnttab_pin(g, 1, 3, true, true, &gfn), GNTST_general_error);
	gt_grant(3, 0, GTF_invalid, GT_DATA_GFN);
	CU_ASSERT_EQUAL(gnttab_pin(g, 3, 0, true, true, &gfn), GNTST_general_error);
	gt_grant(3, 0, GTF_accept_transfer, GT_DATA_GFN);
	CU_ASSERT_EQUAL(gnttab_pin(g, 3, 0, true, true, &gfn), GNTST_general_error);
	/* sub-page grants cannot be mapped, but a copy may use them. */
	gt_grant(3, 0, GTF_permit_access | GTF_sub_page, GT_DATA_GFN);
	CU_ASSERT_EQUAL(gnttab_pin(g, 3, 0, true, true, &gfn), GNTST_general_error);
	CU_ASSERT_EQUAL(gnttab_pin(g, 3, 0, true, false, &gfn), GNTST_okay);
	gnttab_unpin(g, 3, true);
	/* Bad refs and frames outside RAM. */
	CU_ASSERT_EQUAL(gnttab_pin(g, GNT_ENTRIES_PER_FRAME, 0, true, true, &gfn), GNTST_bad_gntref);
	CU_ASSERT_EQUAL(gnttab_pin(g, UINT32_MAX, 0, true, true, &gfn), GNTST_bad_gntref);
	gt_grant(4, 0, GTF_permit_access, (uint32_t)(HV_RAM >> 12));
	CU_ASSERT_EQUAL(gnttab_pin(g, 4, 0, false, true, &gfn), GNTST_bad_page);
	CU_ASSERT_EQUAL(gt_entry(4)->flags, GTF_permit_access);
	CU_ASSERT_EQUAL(g->pins_now, 0u);

	/* Revoke while in use: the guest clears permit_access; the use goes on with the frame read
	 * at the first pin (the guest must not reuse the page while GTF_reading is set); a further
	 * use by the same domain still succeeds, as in Xen, and flags clear at the last unpin. */
	CU_ASSERT_EQUAL(gnttab_pin(g, 1, 0, false, true, &gfn), GNTST_okay);
	__atomic_fetch_and(&gt_entry(1)->flags, (uint16_t)~GTF_permit_access, __ATOMIC_SEQ_CST);
	gt_entry(1)->frame = 0x123; /* the guest rewrites the frame: ignored while in use */
	CU_ASSERT_EQUAL(gnttab_pin(g, 1, 0, true, true, &gfn), GNTST_okay);
	CU_ASSERT_EQUAL(gfn, GT_DATA_GFN);
	CU_ASSERT_EQUAL(gnttab_pin(g, 1, 9, true, true, &gfn), GNTST_general_error);
	gnttab_unpin(g, 1, true);
	gnttab_unpin(g, 1, false);
	CU_ASSERT_EQUAL(gt_entry(1)->flags, 0);
	CU_ASSERT_EQUAL(gnttab_pin(g, 1, 0, true, true, &gfn), GNTST_general_error);
	/* Unpinning what is not pinned changes nothing. */
	gnttab_unpin(g, 1, true);
	CU_ASSERT_EQUAL(g->pins_now, 0u);
	gt_teardown();
}

static void test_limits_and_dead_table(void)
{
	gt_setup();
	struct grant_table *g;
	uint64_t gfn;

	g = t.d->gnt;
	CU_ASSERT_EQUAL(g->max_frames, GNT_DEFAULT_MAX_FRAMES);
	CU_ASSERT_EQUAL(g->max_maptrack, GNT_DEFAULT_MAX_MAPTRACK);
	CU_ASSERT_EQUAL(gnttab_grow(g, GNT_DEFAULT_MAX_FRAMES + 1), -ENOSPC);
	CU_ASSERT_EQUAL(gnttab_set_limits(g, 0, 10), -EINVAL);
	CU_ASSERT_EQUAL(gnttab_set_limits(g, GNT_LIMIT_FRAMES + 1, 10), -EINVAL);
	CU_ASSERT_EQUAL(gnttab_set_limits(g, 4, GNT_LIMIT_MAPTRACK + 1), -EINVAL);
	CU_ASSERT_EQUAL(gnttab_grow(g, 3), 0);
	CU_ASSERT_EQUAL(gnttab_set_limits(g, 2, 10), -EBUSY);
	CU_ASSERT_EQUAL(gnttab_set_limits(g, 4, 10), 0);
	CU_ASSERT_EQUAL(gnttab_grow(g, 5), -ENOSPC);
	CU_ASSERT_EQUAL(gnttab_grow(g, 4), 0);
	CU_ASSERT_EQUAL(gnttab_nr_entries(g), 4 * GNT_ENTRIES_PER_FRAME);

	/* A table outlives its domain while someone holds it; only unpins work then. */
	gt_grant(7, 0, GTF_permit_access, GT_DATA_GFN);
	CU_ASSERT_EQUAL(gnttab_pin(g, 7, 0, false, true, &gfn), GNTST_okay);
	gnttab_get(g);
	gnttab_domain_fini(t.d);
	CU_ASSERT_PTR_NULL(t.d->gnt);
	CU_ASSERT_TRUE(g->dead);
	CU_ASSERT_EQUAL(gnttab_pin(g, 7, 0, true, true, &gfn), GNTST_bad_domain);
	CU_ASSERT_EQUAL(g->pins_now, 1u);
	gnttab_unpin(g, 7, false);
	CU_ASSERT_EQUAL(g->pins_now, 0u);
	gnttab_put(g); /* frees it */
	fake_domain_destroy(t.f);
}

/* Every offset/length pair at the page boundary, both sides, through the hypercall (frames of the
 * caller) and the Domain-0 buffer path (a grant). */
static void test_copy_bounds(void)
{
	gt_setup();
	static const uint16_t offs[] = {0, 1, 2048, 4095, 4096, 65535};
	static const uint16_t lens[] = {0, 1, 2048, 4095, 4096, 4097, 65535};
	uint8_t *buf = malloc(8192);
	struct gnttab_copy *op = hv_buf(&t, 0);

	CU_ASSERT_FATAL(buf != NULL);
	CU_ASSERT_FATAL(gnttab_grow(t.d->gnt, 1) == 0);
	gt_grant(1, 0, GTF_permit_access, GT_DATA_GFN);
	for (unsigned a = 0; a < sizeof(offs) / sizeof(offs[0]); a++) {
		for (unsigned l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
			bool ok_a = (uint32_t)offs[a] + lens[l] <= 4096;
			int16_t want = ok_a ? GNTST_okay : GNTST_bad_copy_arg;

			memset(op, 0, sizeof(*op));
			op->source.u.gmfn = GT_DATA_GFN;
			op->source.domid = DOMID_SELF;
			op->source.offset = offs[a];
			op->dest.u.gmfn = GT_DATA_GFN + 1;
			op->dest.domid = DOMID_SELF;
			op->dest.offset = 0;
			op->len = lens[l];
			CU_ASSERT_EQUAL(gt_op(GNTTABOP_copy, 0, 1), 0);
			CU_ASSERT_EQUAL(op->status, want);
			op->source.offset = 0; /* now the destination side */
			op->dest.offset = offs[a];
			op->status = 99;
			CU_ASSERT_EQUAL(gt_op(GNTTABOP_copy, 0, 1), 0);
			CU_ASSERT_EQUAL(op->status, want);
			CU_ASSERT_EQUAL(gnttab_copy_buf(t.d->gnt, 1, offs[a], lens[l], 0, buf, true), want);
			CU_ASSERT_EQUAL(gnttab_copy_buf(t.d->gnt, 1, offs[a], lens[l], 0, buf, false), want);
		}
	}
	CU_ASSERT_EQUAL(gt_entry(1)->flags, GTF_permit_access); /* every use ended */
	CU_ASSERT_EQUAL(t.d->gnt->pins_now, 0u);
	free(buf);
	gt_teardown();
}

/* Copies move the right bytes; refs and frames on either side; per-op status in a batch. */
static void test_copy_data(void)
{
	gt_setup();
	struct gnttab_copy *op = hv_buf(&t, 0);
	uint8_t *src, *dst;
	uint8_t buf[4096];

	CU_ASSERT_FATAL(gnttab_grow(t.d->gnt, 1) == 0);
	src = fake_ram(t.f, GT_DATA_GFN << 12);
	dst = fake_ram(t.f, (GT_DATA_GFN + 1) << 12);
	for (unsigned i = 0; i < 4096; i++)
		src[i] = (uint8_t)(i * 7);
	memset(dst, 0, 4096);
	gt_grant(1, 5, GTF_permit_access | GTF_readonly, GT_DATA_GFN); /* to itself: read-only */
	gt_grant(2, 5, GTF_permit_access, GT_DATA_GFN + 1);
	memset(op, 0, 4 * sizeof(*op));
	/* 0: ref -> ref, partial; 1: gmfn -> ref into the read-only grant (refused); 2: foreign
	 * gmfn (refused); 3: reserved domain. */
	op[0].flags = GNTCOPY_source_gref | GNTCOPY_dest_gref;
	op[0].source.u.ref = 1, op[0].source.domid = DOMID_SELF, op[0].source.offset = 100;
	op[0].dest.u.ref = 2, op[0].dest.domid = 5, op[0].dest.offset = 3000;
	op[0].len = 1096;
	op[1].flags = GNTCOPY_dest_gref;
	op[1].source.u.gmfn = GT_DATA_GFN + 1, op[1].source.domid = DOMID_SELF;
	op[1].dest.u.ref = 1, op[1].dest.domid = DOMID_SELF;
	op[1].len = 8;
	op[2].source.u.gmfn = GT_DATA_GFN, op[2].source.domid = 9;
	op[2].dest.u.gmfn = GT_DATA_GFN, op[2].dest.domid = DOMID_SELF;
	op[2].len = 8;
	op[3].source.u.gmfn = GT_DATA_GFN, op[3].source.domid = DOMID_IO;
	op[3].dest.u.gmfn = GT_DATA_GFN, op[3].dest.domid = DOMID_SELF;
	op[3].len = 8;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_copy, 0, 4), 0);
	CU_ASSERT_EQUAL(op[0].status, GNTST_okay);
	CU_ASSERT_EQUAL(op[1].status, GNTST_general_error);
	CU_ASSERT_EQUAL(op[2].status, GNTST_permission_denied);
	CU_ASSERT_EQUAL(op[3].status, GNTST_bad_domain);
	CU_ASSERT_EQUAL(memcmp(dst + 3000, src + 100, 1096), 0);
	CU_ASSERT_EQUAL(dst[2999], 0);
	CU_ASSERT_EQUAL(src[0], 0); /* nothing reached the read-only page */

	/* The Domain-0 path: grants to domain 0 only. */
	gt_grant(3, 0, GTF_permit_access, GT_DATA_GFN + 1);
	memset(buf, 0xab, sizeof(buf));
	CU_ASSERT_EQUAL(gnttab_copy_buf(t.d->gnt, 3, 10, 20, 0, buf, true), GNTST_okay);
	CU_ASSERT_EQUAL(dst[9], 0);
	CU_ASSERT_EQUAL(dst[10], 0xab);
	CU_ASSERT_EQUAL(dst[29], 0xab);
	CU_ASSERT_EQUAL(gnttab_copy_buf(t.d->gnt, 2, 0, 20, 0, buf, true), GNTST_general_error);
	CU_ASSERT_EQUAL(gnttab_copy_buf(t.d->gnt, 1, 0, 20, 0, buf, false), GNTST_general_error);
	CU_ASSERT_EQUAL(gnttab_copy_buf(t.d->gnt, 600, 0, 20, 0, buf, false), GNTST_bad_gntref);
	CU_ASSERT(atomic_load(&t.d->gnt->copies) >= 2);

	/* Too long a batch, and an unreadable one. */
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_copy, 0, 100000), -EINVAL);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_grant_table_op, GNTTABOP_copy, HV_HOLE_GVA, 1, 0, 0),
			-EFAULT);
	gt_teardown();
}

static void test_map_unmap_flush(void)
{
	gt_setup();
	struct gnttab_map_grant_ref *m = hv_buf(&t, 0);
	struct gnttab_unmap_grant_ref *u = hv_buf(&t, 0x100);
	struct gnttab_cache_flush *cf = hv_buf(&t, 0x200);

	memset(m, 0, 2 * sizeof(*m));
	m[0].flags = GNTMAP_host_map, m[0].dom = 0, m[0].ref = 1;
	m[1].flags = 0, m[1].dom = 0, m[1].ref = 1;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_map_grant_ref, 0, 2), 0);
	CU_ASSERT_EQUAL(m[0].status, GNTST_bad_domain); /* no domain 0 table here; maps: hv_gnt_map.c */
	CU_ASSERT_EQUAL(m[1].status, GNTST_bad_gntref);
	memset(u, 0, sizeof(*u));
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_unmap_grant_ref, 0x100, 1), 0);
	CU_ASSERT_EQUAL(u->status, GNTST_bad_handle);
	memset(cf, 0, sizeof(*cf));
	cf->op = GNTTAB_CACHE_CLEAN;
	cf->length = 4096;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_cache_flush, 0x200, 1), 0);
	cf->offset = 1;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_cache_flush, 0x200, 1), -EINVAL);
	cf->offset = 0;
	cf->op = 0x4;
	CU_ASSERT_EQUAL(gt_op(GNTTABOP_cache_flush, 0x200, 1), -EOPNOTSUPP);
	gt_teardown();
}

/* Guest-to-guest copies: domain 6 copies through refs domain 5 granted it (found in the registry). */
static void test_copy_between_guests(void)
{
	struct fake_runner *fa, *fb;
	struct evtchn_world w;
	struct gnttab_copy *op;
	grant_entry_v1_t *e;
	uint8_t *pa, *pb;

	CU_ASSERT_FATAL(evtchn_world_init(&w, false) == 0);
	CU_ASSERT_FATAL(fake_domain_create_ev(&w, 5, 0, HV_RAM, 1, &fa) == 0);
	CU_ASSERT_FATAL(fake_domain_create_ev(&w, 6, 0, HV_RAM, 1, &fb) == 0);
	CU_ASSERT_FATAL(gnttab_domain_init(&fa->d) == 0 && gnttab_domain_init(&fb->d) == 0);
	CU_ASSERT_FATAL(gnttab_grow(fa->d.gnt, 1) == 0);
	CU_ASSERT_FATAL(
	    fake_map_range(fb, fb->cr3, HV_BUF_GVA, HV_BUF_GPA, HV_BUF_LEN, FAKE_PTE_P | FAKE_PTE_W) == 0);
	e = fa->d.gnt->frames[0];
	e[1] = (grant_entry_v1_t){.flags = GTF_permit_access, .domid = 6, .frame = GT_DATA_GFN};
	e[2] =
	    (grant_entry_v1_t){.flags = GTF_permit_access | GTF_readonly, .domid = 6, .frame = GT_DATA_GFN};
	e[3] = (grant_entry_v1_t){.flags = GTF_permit_access, .domid = 7, .frame = GT_DATA_GFN};
	pa = fake_ram(fa, GT_DATA_GFN << 12);
	pb = fake_ram(fb, GT_DATA_GFN << 12);
	for (unsigned i = 0; i < 4096; i++)
		pa[i] = (uint8_t)(i ^ 0x55);
	memset(pb, 0, 4096);
	op = fake_ram(fb, HV_BUF_GPA);
	memset(op, 0, 6 * sizeof(*op));
	op[0] = (struct gnttab_copy){.source = {.u.ref = 1, .domid = 5, .offset = 10},
				     .dest = {.u.gmfn = GT_DATA_GFN, .domid = DOMID_SELF, .offset = 20},
				     .len = 100,
				     .flags = GNTCOPY_source_gref};
	op[1] = (struct gnttab_copy){.source = {.u.gmfn = GT_DATA_GFN, .domid = DOMID_SELF},
				     .dest = {.u.ref = 2, .domid = 5},
				     .len = 8,
				     .flags = GNTCOPY_dest_gref};
	op[2] = (struct gnttab_copy){.source = {.u.ref = 3, .domid = 5},
				     .dest = {.u.gmfn = GT_DATA_GFN, .domid = DOMID_SELF},
				     .len = 8,
				     .flags = GNTCOPY_source_gref};
	op[3] = (struct gnttab_copy){.source = {.u.ref = 1, .domid = 9},
				     .dest = {.u.gmfn = GT_DATA_GFN, .domid = DOMID_SELF},
				     .len = 8,
				     .flags = GNTCOPY_source_gref};
	op[4] = (struct gnttab_copy){.source = {.u.gmfn = GT_DATA_GFN, .domid = 5},
				     .dest = {.u.gmfn = GT_DATA_GFN, .domid = DOMID_SELF},
				     .len = 8};
	op[5] = (struct gnttab_copy){.source = {.u.gmfn = GT_DATA_GFN, .domid = DOMID_SELF, .offset = 20},
				     .dest = {.u.ref = 1, .domid = 5, .offset = 4000},
				     .len = 96,
				     .flags = GNTCOPY_dest_gref};
	CU_ASSERT_EQUAL(
	    fake_hypercall(fb->d.vcpu[0], __HYPERVISOR_grant_table_op, GNTTABOP_copy, HV_BUF_GVA, 6, 0, 0),
	    0);
	CU_ASSERT_EQUAL(op[0].status, GNTST_okay);
	CU_ASSERT_EQUAL(op[1].status, GNTST_general_error);
	CU_ASSERT_EQUAL(op[2].status, GNTST_general_error);
	CU_ASSERT_EQUAL(op[3].status, GNTST_bad_domain);
	CU_ASSERT_EQUAL(op[4].status, GNTST_permission_denied);
	CU_ASSERT_EQUAL(op[5].status, GNTST_okay);
	CU_ASSERT_EQUAL(memcmp(pb + 20, pa + 10, 100), 0);
	CU_ASSERT_EQUAL(memcmp(pa + 4000, pa + 10, 96), 0); /* back, through the writable grant */
	CU_ASSERT_EQUAL(e[1].flags, GTF_permit_access);
	CU_ASSERT_EQUAL(fa->d.gnt->pins_now, 0u);
	CU_ASSERT_EQUAL(atomic_load(&fa->d.gnt->refs), 1u); /* the lookups' references are gone */
	/* A table already finished is not found, though the domain is still listed. */
	gnttab_domain_fini(&fa->d);
	op[0].status = 99;
	CU_ASSERT_EQUAL(
	    fake_hypercall(fb->d.vcpu[0], __HYPERVISOR_grant_table_op, GNTTABOP_copy, HV_BUF_GVA, 1, 0, 0),
	    0);
	CU_ASSERT_EQUAL(op[0].status, GNTST_bad_domain);
	gnttab_domain_fini(&fb->d);
	evtchn_domain_teardown(&fa->d);
	evtchn_domain_teardown(&fb->d);
	fake_domain_destroy(fa);
	fake_domain_destroy(fb);
	evtchn_world_fini(&w);
}

static void test_racing_flag_flips(void)
{
	gt_setup();
	struct gt_flipper fl = {0};
	unsigned long ok = 0, fail = 0, odd = 0;
	uint8_t buf[512];
	pthread_t th;

	CU_ASSERT_FATAL(gnttab_grow(t.d->gnt, 1) == 0);
	gt_grant(1, 0, GTF_permit_access, GT_DATA_GFN);
	fl.e = gt_entry(1);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, gt_flip_main, &fl) == 0);
	while (__atomic_load_n(&fl.flips, __ATOMIC_RELAXED) < 1000)
		sched_yield(); /* the guest is running before the copies start */
	/* Copies until the flipper has been seen changing the entry between copies many times (on a
	 * loaded host the two threads may only take turns), or 5 s. */
	unsigned long n = 0, changes = 0, last = atomic_load(&fl.flips_seen);
	uint64_t end = domain_mono_ns() + 5000000000ull;
	for (unsigned long i = 0; i < 200000 || (changes < 5000 && domain_mono_ns() < end); i++, n++) {
		int st = gnttab_copy_buf(t.d->gnt, 1, 0, sizeof(buf), 0, buf, i & 1);
		unsigned long now = atomic_load_explicit(&fl.flips_seen, memory_order_relaxed);

		changes += now != last;
		last = now;
		if (st == GNTST_okay)
			ok++;
		else if (st == GNTST_general_error)
			fail++;
		else
			odd++;
	}
	atomic_store(&fl.stop, true);
	pthread_join(th, NULL);
	printf("\n    racing copies: %lu ok, %lu failed cleanly, %lu other; %lu flips, %lu seen between "
	       "copies\n",
	       ok, fail, odd, fl.flips, changes);
	CU_ASSERT_EQUAL(odd, 0ul);
	CU_ASSERT_EQUAL(ok + fail, n);
	if (changes >= 5000) {
		CU_ASSERT(fail > 0); /* the flips were seen */
		CU_ASSERT(ok > 0);   /* and some copies got through between them */
	} else {
		printf("    (the threads hardly ran at the same time: outcomes not checked)\n");
	}
	CU_ASSERT_EQUAL(t.d->gnt->pins_now, 0u);
	gt_teardown();
}

/* Every frame up to max_frames is placeable next to shared_info and the special pages: at the
 * default limit and at the ceiling; one past the limit names no frame. */
static int gt_place(unsigned idx, uint64_t gfn)
{
	struct xen_add_to_physmap *x = hv_buf(&t, 0x2000);

	x->domid = DOMID_SELF;
	x->space = XENMAPSPACE_grant_table;
	x->idx = idx;
	x->gpfn = gfn;
	return (int)fake_hypercall(t.v, __HYPERVISOR_memory_op, XENMEM_add_to_physmap, HV_BUF_GVA + 0x2000,
				   0, 0, 0);
}

static void test_all_frames_placeable(void)
{
	gt_setup();
	static uint8_t special[LAMINA_SPECIAL_COUNT][4096] __attribute__((aligned(4096)));
	uint64_t ram_pages = t.d->mem.ram_size / GMEM_PAGE_SIZE;
	unsigned i;

	/* What a real domain holds outside RAM before its grant frames: the special region and
	 * shared_info. */
	for (i = 0; i < LAMINA_SPECIAL_COUNT; i++)
		CU_ASSERT_EQUAL(gmem_add_extra(&t.d->mem, ram_pages + i, special[i]), 0);
	CU_ASSERT_EQUAL(shared_info_place(t.d, GT_GFN - 1), 0);
	for (i = 0; i < GNT_DEFAULT_MAX_FRAMES; i++)
		CU_ASSERT_EQUAL(gt_place(i, GT_GFN + i), 0);
	CU_ASSERT_EQUAL(gt_place(GNT_DEFAULT_MAX_FRAMES, GT_GFN + GNT_DEFAULT_MAX_FRAMES), -EINVAL);
	CU_ASSERT_EQUAL(gnttab_set_limits(t.d->gnt, GNT_LIMIT_FRAMES, 1024), 0);
	for (i = GNT_DEFAULT_MAX_FRAMES; i < GNT_LIMIT_FRAMES; i++)
		CU_ASSERT_EQUAL(gt_place(i, GT_GFN + i), 0);
	CU_ASSERT_EQUAL(gt_place(GNT_LIMIT_FRAMES, GT_GFN + GNT_LIMIT_FRAMES), -EINVAL);
	CU_ASSERT_EQUAL(t.d->gnt->nr_frames, GNT_LIMIT_FRAMES);
	for (i = 0; i < GNT_LIMIT_FRAMES; i++) {
		CU_ASSERT_EQUAL(t.d->gnt->frame_gfn[i], GT_GFN + i);
		CU_ASSERT_PTR_EQUAL(gmem_gpa_ptr(&t.d->mem, (GT_GFN + i) << 12, 8), t.d->gnt->frames[i]);
	}
	/* Placing them all again (moved one frame up) needs no new slots. */
	for (i = 0; i < GNT_LIMIT_FRAMES; i++)
		CU_ASSERT_EQUAL(gt_place(i, GT_GFN + 0x1000 + i), 0);
	CU_ASSERT_PTR_EQUAL(gmem_gpa_ptr(&t.d->mem, (GT_GFN + 0x1000) << 12, 8), t.d->gnt->frames[0]);
	CU_ASSERT_PTR_EQUAL(gmem_gpa_ptr(&t.d->mem, (GT_GFN - 1) << 12, 8), t.d->shared_info_page);
	CU_ASSERT_PTR_EQUAL(gmem_gpa_ptr(&t.d->mem, ram_pages << 12, 8), special[0]);
	gt_teardown();
}

static const CU_TestInfo gt_tests[] = {
    {"setup_table, query_size, versions, add_to_physmap", test_setup_query_version},
    {"v1 pin state machine on the shared entry", test_pin_state_machine},
    {"limits; a table outliving its domain", test_limits_and_dead_table},
    {"every frame up to max_frames placeable", test_all_frames_placeable},
    {"copy bounds at every offset/length edge", test_copy_bounds},
    {"copy data, refs and frames, batch statuses", test_copy_data},
    {"map/unmap from guests, cache_flush", test_map_unmap_flush},
    {"copies between guests through the registry", test_copy_between_guests},
    {"a guest flipping flags while copies run", test_racing_flag_flips},
    CU_TEST_INFO_NULL,
};

int main(void)
{
	return hv_test_main("grant tables", gt_tests);
}

