/* Guest-to-guest grant maps against the fake runner: domain 6 maps grants of domain 5 through
 * grant_table_op. Every refusal (flags, domain, address, ref, wrong grantee, read-only grant)
 * leaves nothing held; maps pin and flag the entry, back the chosen frame with the granter's page
 * (read-only when asked), survive the granter's revocation attempts and its destruction; the
 * maptrack limit, handle misuse, batches and the mapper's teardown. */
#include <stdlib.h>

#include "gnt_map.h"
#include "hv_test.h"

#define GM_GRANTER 5
#define GM_MAPPER 6
#define GM_DATA_GFN 0x100ull	 /* granter's RAM page the grants name */
#define GM_WIN (0x1000ull << 12) /* mapper's window above its RAM */
#define GM_OP(i) (HV_BUF_GVA + (uint64_t)(i) * sizeof(struct gnttab_map_grant_ref))
#define GM_UOP (HV_BUF_GVA + 0x8000) /* unmap ops */

struct gm {
	struct evtchn_world w;
	struct fake_runner *fa, *fb; /* granter, mapper */
	grant_entry_v1_t *e;	     /* granter's frame 0 */
	uint8_t *data;		     /* granter's GM_DATA_GFN, host view */
};

static void gm_setup(struct gm *g)
{
	memset(g, 0, sizeof(*g));
	CU_ASSERT_FATAL(evtchn_world_init(&g->w, false) == 0);
	CU_ASSERT_FATAL(fake_domain_create_ev(&g->w, GM_GRANTER, 0, HV_RAM, 1, &g->fa) == 0);
	CU_ASSERT_FATAL(fake_domain_create_ev(&g->w, GM_MAPPER, 0, HV_RAM, 1, &g->fb) == 0);
	CU_ASSERT_FATAL(gnttab_domain_init(&g->fa->d) == 0 && gnttab_domain_init(&g->fb->d) == 0);
	CU_ASSERT_FATAL(gnttab_grow(g->fa->d.gnt, 1) == 0);
	CU_ASSERT_FATAL(fake_map_range(g->fb, g->fb->cr3, HV_BUF_GVA, HV_BUF_GPA, HV_BUF_LEN,
				       FAKE_PTE_P | FAKE_PTE_W) == 0);
	CU_ASSERT_FATAL(fake_map(g->fb, g->fb->cr3, HV_RO_GVA, HV_BUF_GPA, FAKE_PAGE_4K, FAKE_PTE_P) == 0);
	g->e = g->fa->d.gnt->frames[0];
	g->data = fake_ram(g->fa, GM_DATA_GFN << 12);
	for (unsigned i = 0; i < 4096; i++)
		g->data[i] = (uint8_t)(i * 7 + 1);
	g->e[1] = (grant_entry_v1_t){.flags = GTF_permit_access, .domid = GM_MAPPER, .frame = GM_DATA_GFN};
	g->e[2] = (grant_entry_v1_t){
	    .flags = GTF_permit_access | GTF_readonly, .domid = GM_MAPPER, .frame = GM_DATA_GFN + 1};
	g->e[3] = (grant_entry_v1_t){.flags = GTF_permit_access, .domid = 7, .frame = GM_DATA_GFN};
	g->e[4] = (grant_entry_v1_t){.flags = 0, .domid = GM_MAPPER, .frame = GM_DATA_GFN};
	g->e[5] = (grant_entry_v1_t){.flags = GTF_permit_access, .domid = GM_MAPPER, .frame = 0x7fffff};
}

static void gm_teardown(struct gm *g)
{
	if (g->fb) {
		gnt_map_domain_fini(&g->fb->d);
		gnttab_domain_fini(&g->fb->d);
		evtchn_domain_teardown(&g->fb->d);
		fake_domain_destroy(g->fb);
	}
	if (g->fa) {
		gnttab_domain_fini(&g->fa->d);
		evtchn_domain_teardown(&g->fa->d);
		fake_domain_destroy(g->fa);
	}
	evtchn_world_fini(&g->w);
}

static struct gnttab_map_grant_ref *gm_op(struct gm *g, unsigned i)
{
	return fake_ram(g->fb, HV_BUF_GPA + (uint64_t)i * sizeof(struct gnttab_map_grant_ref));
}

/* One map op (element 0) by the mapper: its status; *handle when given. */
static int16_t gm_map(struct gm *g, uint16_t dom, uint32_t ref, uint64_t addr, uint32_t flags,
		      uint32_t *handle)
{
	struct gnttab_map_grant_ref *op = gm_op(g, 0);

	*op = (struct gnttab_map_grant_ref){
	    .host_addr = addr, .flags = flags, .ref = ref, .dom = dom, .status = 99, .handle = 12345};
	CU_ASSERT_EQUAL(fake_hypercall(g->fb->d.vcpu[0], __HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
				       GM_OP(0), 1, 0, 0),
			0);
	if (handle)
		*handle = op->handle;
	if (op->status != GNTST_okay)
		CU_ASSERT_EQUAL(op->handle, ~0u);
	return op->status;
}

static int16_t gm_unmap(struct gm *g, uint32_t handle, uint64_t addr)
{
	struct gnttab_unmap_grant_ref *op = fake_ram(g->fb, HV_BUF_GPA + 0x8000);

	*op = (struct gnttab_unmap_grant_ref){.host_addr = addr, .handle = handle, .status = 99};
	CU_ASSERT_EQUAL(fake_hypercall(g->fb->d.vcpu[0], __HYPERVISOR_grant_table_op,
				       GNTTABOP_unmap_grant_ref, GM_UOP, 1, 0, 0),
			0);
	return op->status;
}

/* Nothing of the granter's is held: no pins, no extra table reference, no flags, no slot. */
static void gm_assert_idle(struct gm *g)
{
	CU_ASSERT_EQUAL(g->fa->d.gnt->pins_now, 0u);
	CU_ASSERT_EQUAL(atomic_load(&g->fa->d.gnt->refs), 1u);
	CU_ASSERT_EQUAL(g->e[1].flags, GTF_permit_access);
	CU_ASSERT_EQUAL(g->e[2].flags, GTF_permit_access | GTF_readonly);
	CU_ASSERT_EQUAL(g->fb->foreign_live, 0u);
	CU_ASSERT_EQUAL(gnt_map_count(&g->fb->d), 0u);
}

static void test_refusals(void)
{
	struct gm g;
	uint32_t h;

	gm_setup(&g);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN, 0, &h), GNTST_bad_gntref);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN, GNTMAP_readonly, &h), GNTST_bad_gntref);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN, GNTMAP_device_map, &h), GNTST_general_error);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN, GNTMAP_host_map | GNTMAP_device_map, &h),
			GNTST_general_error);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN, GNTMAP_host_map | GNTMAP_contains_pte, &h),
			GNTST_general_error);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN, GNTMAP_host_map | GNTMAP_application_map, &h),
			GNTST_general_error);
	CU_ASSERT_EQUAL(gm_map(&g, DOMID_SELF, 1, GM_WIN, GNTMAP_host_map, &h), GNTST_bad_domain);
	CU_ASSERT_EQUAL(gm_map(&g, 9, 1, GM_WIN, GNTMAP_host_map, &h), GNTST_bad_domain);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN + 1, GNTMAP_host_map, &h), GNTST_bad_virt_addr);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, 0x10000, GNTMAP_host_map, &h), GNTST_bad_virt_addr);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, HV_RAM - 4096, GNTMAP_host_map, &h), GNTST_bad_virt_addr);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, 0xfee00000, GNTMAP_host_map, &h), GNTST_bad_virt_addr);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, 0xfec00000, GNTMAP_host_map, &h), GNTST_bad_virt_addr);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, 1ull << 40, GNTMAP_host_map, &h), GNTST_bad_virt_addr);
	/* A frame the mapper's own grant table sits at is taken. */
	CU_ASSERT_FATAL(gnttab_place_frame(&g.fb->d, 0, 0x2000) == 0);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, 0x2000ull << 12, GNTMAP_host_map, &h), GNTST_bad_virt_addr);
	/* The grant entry itself: bounds, grantee, permission, read-only, frame. */
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, GNT_ENTRIES_PER_FRAME, GM_WIN, GNTMAP_host_map, &h),
			GNTST_bad_gntref);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, UINT32_MAX, GM_WIN, GNTMAP_host_map, &h), GNTST_bad_gntref);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 3, GM_WIN, GNTMAP_host_map, &h), GNTST_general_error);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 4, GM_WIN, GNTMAP_host_map, &h), GNTST_general_error);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 2, GM_WIN, GNTMAP_host_map, &h), GNTST_general_error);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 5, GM_WIN, GNTMAP_host_map, &h), GNTST_bad_page);
	CU_ASSERT_EQUAL(g.e[5].flags, GTF_permit_access);
	/* The runner refusing the slot: the pin and page are undone. */
	g.fb->foreign_rc = -ENOSPC;
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN, GNTMAP_host_map, &h), GNTST_general_error);
	g.fb->foreign_rc = 0;
	gm_assert_idle(&g);
	/* Unmap of handles never issued. */
	CU_ASSERT_EQUAL(gm_unmap(&g, 0, GM_WIN), GNTST_bad_handle);
	CU_ASSERT_EQUAL(gm_unmap(&g, GNT_MAP_MAX, GM_WIN), GNTST_bad_handle);
	CU_ASSERT_EQUAL(gm_unmap(&g, UINT32_MAX, GM_WIN), GNTST_bad_handle);
	gm_teardown(&g);
}

static void test_map_rw_ro(void)
{
	struct gm g;
	uint32_t hw, hr, hw2, hro;
	uint8_t *pw, *pr;

	gm_setup(&g);
	CU_ASSERT_EQUAL_FATAL(gm_map(&g, GM_GRANTER, 1, GM_WIN, GNTMAP_host_map, &hw), GNTST_okay);
	CU_ASSERT(hw < GNT_MAP_MAX);
	CU_ASSERT_EQUAL(gm_op(&g, 0)->dev_bus_addr, 0u);
	CU_ASSERT_EQUAL(g.fb->last_foreign_gfn, GM_WIN >> 12);
	CU_ASSERT_FALSE(g.fb->last_foreign_ro);
	pw = g.fb->last_foreign_page;
	CU_ASSERT_EQUAL(g.e[1].flags, GTF_permit_access | GTF_reading | GTF_writing);
	CU_ASSERT_EQUAL(memcmp(pw, g.data, 4096), 0);
	pw[100] = 0xab; /* the mapper's write lands in the granter's page */
	CU_ASSERT_EQUAL(g.data[100], 0xab);
	/* A read-only grant mapped read-only, at the next frame. */
	CU_ASSERT_EQUAL_FATAL(
	    gm_map(&g, GM_GRANTER, 2, GM_WIN + 4096, GNTMAP_host_map | GNTMAP_readonly, &hr), GNTST_okay);
	CU_ASSERT_NOT_EQUAL(hr, hw);
	CU_ASSERT_TRUE(g.fb->last_foreign_ro);
	pr = g.fb->last_foreign_page;
	CU_ASSERT_EQUAL(memcmp(pr, g.data + 4096, 4096), 0);
	CU_ASSERT_EQUAL(g.e[2].flags, GTF_permit_access | GTF_readonly | GTF_reading);
	CU_ASSERT_EQUAL(g.fb->foreign_live, 2u);
	CU_ASSERT_EQUAL(gnt_map_count(&g.fb->d), 2u);
	/* The same frame twice is refused; the same grant at another frame is a second map. */
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN, GNTMAP_host_map, &hw2), GNTST_bad_virt_addr);
	CU_ASSERT_EQUAL_FATAL(
	    gm_map(&g, GM_GRANTER, 1, GM_WIN + 2 * 4096, GNTMAP_host_map | GNTMAP_readonly, &hro),
	    GNTST_okay);
	CU_ASSERT_EQUAL(g.fa->d.gnt->pins_now, 3u);
	CU_ASSERT_EQUAL(atomic_load(&g.fa->d.gnt->refs), 4u);

	/* Revoking while mapped: the granter's end-access cmpxchg sees the in-use flags and fails. */
	uint16_t cur = GTF_permit_access;
	CU_ASSERT_FALSE(
	    __atomic_compare_exchange_n(&g.e[1].flags, &cur, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	CU_ASSERT(cur & GTF_writing);
	/* A hostile granter that clears the entry anyway keeps no power over the live map. */
	__atomic_store_n((uint32_t *)&g.e[1], 0u, __ATOMIC_RELEASE);
	pw[200] = 0xcd;
	CU_ASSERT_EQUAL(g.data[200], 0xcd);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN + 3 * 4096, GNTMAP_host_map, &hw2), GNTST_okay);
	CU_ASSERT_EQUAL(gm_unmap(&g, hw2, GM_WIN + 3 * 4096), GNTST_okay);

	/* Handle misuse. */
	CU_ASSERT_EQUAL(gm_unmap(&g, hw, GM_WIN + 4096), GNTST_general_error);
	CU_ASSERT_EQUAL(gm_unmap(&g, hw, 0), GNTST_general_error);
	CU_ASSERT_EQUAL(gm_unmap(&g, hw, GM_WIN), GNTST_okay);
	CU_ASSERT_EQUAL(gm_unmap(&g, hw, GM_WIN), GNTST_bad_handle);
	/* The last writable use is gone; the read-only map of the same grant still reads. */
	CU_ASSERT_EQUAL(g.e[1].flags & (GTF_reading | GTF_writing), GTF_reading);
	CU_ASSERT_EQUAL(gm_unmap(&g, hro, GM_WIN + 2 * 4096), GNTST_okay);
	CU_ASSERT_EQUAL(g.e[1].flags & (GTF_reading | GTF_writing), 0);
	CU_ASSERT_EQUAL(gm_unmap(&g, hr, GM_WIN + 4096), GNTST_okay);
	g.e[1].flags = GTF_permit_access; /* the hostile granter's clearing, undone for the idle check */
	gm_assert_idle(&g);
	gm_teardown(&g);
}

static void test_maptrack_limit_and_batch(void)
{
	struct gm g;
	uint32_t h, first = 0;
	unsigned okays = 0;

	gm_setup(&g);
	for (unsigned i = 0; i < GNT_MAP_MAX; i++) {
		CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN + (uint64_t)i * 4096, GNTMAP_host_map, &h),
				GNTST_okay);
		if (i == 17)
			first = h;
	}
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN + GNT_MAP_MAX * 4096ull, GNTMAP_host_map, &h),
			GNTST_no_space);
	CU_ASSERT_EQUAL(g.fa->d.gnt->pins_now, GNT_MAP_MAX);
	CU_ASSERT_EQUAL(gm_unmap(&g, first, GM_WIN + 17 * 4096), GNTST_okay);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN + GNT_MAP_MAX * 4096ull, GNTMAP_host_map, &h),
			GNTST_okay);
	CU_ASSERT_EQUAL(h, first); /* the freed handle is reused */
	gnt_map_domain_fini(&g.fb->d);
	g.fb->foreign_live = 0; /* teardown leaves slots to the VM's own end */
	gm_assert_idle(&g);

	/* The mapper's own table limit lowers the cap. */
	CU_ASSERT_FATAL(gnttab_set_limits(g.fb->d.gnt, GNT_DEFAULT_MAX_FRAMES, 2) == 0);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN, GNTMAP_host_map, &h), GNTST_okay);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN + 4096, GNTMAP_host_map, &h), GNTST_okay);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN + 8192, GNTMAP_host_map, &h), GNTST_no_space);
	gnt_map_domain_fini(&g.fb->d);
	g.fb->foreign_live = 0;
	CU_ASSERT_FATAL(gnttab_set_limits(g.fb->d.gnt, GNT_DEFAULT_MAX_FRAMES, GNT_DEFAULT_MAX_MAPTRACK) ==
			0);

	/* A batch: each element answered on its own. */
	struct gnttab_map_grant_ref *op = gm_op(&g, 0);
	op[0] = (struct gnttab_map_grant_ref){
	    .host_addr = GM_WIN, .flags = GNTMAP_host_map, .ref = 1, .dom = GM_GRANTER};
	op[1] = (struct gnttab_map_grant_ref){
	    .host_addr = GM_WIN, .flags = GNTMAP_host_map, .ref = 1, .dom = GM_GRANTER};
	op[2] = (struct gnttab_map_grant_ref){.host_addr = GM_WIN + 4096,
					      .flags = GNTMAP_host_map | GNTMAP_readonly,
					      .ref = 2,
					      .dom = GM_GRANTER};
	op[3] = (struct gnttab_map_grant_ref){
	    .host_addr = GM_WIN + 8192, .flags = GNTMAP_host_map, .ref = 3, .dom = GM_GRANTER};
	CU_ASSERT_EQUAL(fake_hypercall(g.fb->d.vcpu[0], __HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
				       GM_OP(0), 4, 0, 0),
			0);
	CU_ASSERT_EQUAL(op[0].status, GNTST_okay);
	CU_ASSERT_EQUAL(op[1].status, GNTST_bad_virt_addr);
	CU_ASSERT_EQUAL(op[2].status, GNTST_okay);
	CU_ASSERT_EQUAL(op[3].status, GNTST_general_error);
	for (unsigned i = 0; i < 4; i++)
		okays += op[i].status == GNTST_okay;
	CU_ASSERT_EQUAL(gnt_map_count(&g.fb->d), okays);
	struct gnttab_unmap_grant_ref *u = fake_ram(g.fb, HV_BUF_GPA + 0x8000);
	u[0] = (struct gnttab_unmap_grant_ref){.host_addr = GM_WIN, .handle = op[0].handle};
	u[1] = (struct gnttab_unmap_grant_ref){.host_addr = GM_WIN, .handle = op[0].handle};
	u[2] = (struct gnttab_unmap_grant_ref){.host_addr = GM_WIN + 4096, .handle = op[2].handle};
	CU_ASSERT_EQUAL(fake_hypercall(g.fb->d.vcpu[0], __HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref,
				       GM_UOP, 3, 0, 0),
			0);
	CU_ASSERT_EQUAL(u[0].status, GNTST_okay);
	CU_ASSERT_EQUAL(u[1].status, GNTST_bad_handle);
	CU_ASSERT_EQUAL(u[2].status, GNTST_okay);
	CU_ASSERT_EQUAL(fake_hypercall(g.fb->d.vcpu[0], __HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
				       GM_OP(0), 4097, 0, 0),
			-EINVAL);
	/* A map whose result cannot be written back is undone, not leaked. */
	op[0] = (struct gnttab_map_grant_ref){
	    .host_addr = GM_WIN, .flags = GNTMAP_host_map, .ref = 1, .dom = GM_GRANTER};
	CU_ASSERT_EQUAL(fake_hypercall(g.fb->d.vcpu[0], __HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
				       HV_RO_GVA, 1, 0, 0),
			-EFAULT);
	gm_assert_idle(&g);
	gm_teardown(&g);
}

/* The granter destroyed while mapped: the mapper's page stays valid (and keeps the data) until
 * the mapper lets it go; new maps of the dead domain are refused. */
static void test_granter_destroyed(void)
{
	struct gm g;
	struct grant_table *gt;
	uint32_t h;
	uint8_t *p;

	gm_setup(&g);
	CU_ASSERT_EQUAL_FATAL(gm_map(&g, GM_GRANTER, 1, GM_WIN, GNTMAP_host_map, &h), GNTST_okay);
	p = g.fb->last_foreign_page;
	gt = g.fa->d.gnt;
	gnttab_get(gt); /* the test's own look at the table after the domain is gone */
	gnttab_domain_fini(&g.fa->d);
	evtchn_domain_teardown(&g.fa->d);
	fake_domain_destroy(g.fa); /* RAM unmapped and memfd closed */
	g.fa = NULL;
	CU_ASSERT_EQUAL(p[5], (uint8_t)(5 * 7 + 1));
	p[6] = 0x66; /* still a live page */
	CU_ASSERT_EQUAL(p[6], 0x66);
	CU_ASSERT_EQUAL(atomic_load(&gt->refs), 2u); /* ours and the map's */
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN + 4096, GNTMAP_host_map, &h), GNTST_bad_domain);
	CU_ASSERT_EQUAL(gm_unmap(&g, h, GM_WIN), GNTST_bad_handle); /* h: the refused map's ~0 */
	CU_ASSERT_EQUAL(gm_unmap(&g, 0, GM_WIN), GNTST_okay);
	CU_ASSERT_EQUAL(gt->pins_now, 0u);
	CU_ASSERT_EQUAL(atomic_load(&gt->refs), 1u);
	gnttab_put(gt);
	gm_teardown(&g);
}

/* The mapper destroyed with maps held: the granter's flags clear and its table is unreferenced. */
static void test_mapper_destroyed(void)
{
	struct gm g;
	uint32_t h;

	gm_setup(&g);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 1, GM_WIN, GNTMAP_host_map, &h), GNTST_okay);
	CU_ASSERT_EQUAL(gm_map(&g, GM_GRANTER, 2, GM_WIN + 4096, GNTMAP_host_map | GNTMAP_readonly, &h),
			GNTST_okay);
	CU_ASSERT_EQUAL(atomic_load(&g.fa->d.gnt->refs), 3u);
	gnttab_domain_fini(&g.fb->d);
	evtchn_domain_teardown(&g.fb->d);
	fake_domain_destroy(g.fb); /* releases its maps */
	g.fb = NULL;
	CU_ASSERT_EQUAL(g.fa->d.gnt->pins_now, 0u);
	CU_ASSERT_EQUAL(atomic_load(&g.fa->d.gnt->refs), 1u);
	CU_ASSERT_EQUAL(g.e[1].flags, GTF_permit_access);
	CU_ASSERT_EQUAL(g.e[2].flags, GTF_permit_access | GTF_readonly);
	gm_teardown(&g);
}

int main(void)
{
	static const CU_TestInfo tests[] = {
	    {"map refusals hold nothing", test_refusals},
	    {"rw and ro maps, revoke refused, handle misuse", test_map_rw_ro},
	    {"maptrack limit, batches, undone write-back", test_maptrack_limit_and_batch},
	    {"granter destroyed while mapped", test_granter_destroyed},
	    {"mapper destroyed with maps held", test_mapper_destroyed},
	    CU_TEST_INFO_NULL,
	};

	return hv_test_main("hv_gnt_map", tests);
}
