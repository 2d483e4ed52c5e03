/* The guest-memory walker: every paging mode and page size, every permission rule, reserved bits,
 * non-canonical addresses, page tables outside RAM, and copies across pages and address-space
 * ends. */
#include "hv_test.h"

#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define EFER_NXE (1ull << 11)

static uint64_t tr(struct vcpu *v, uint64_t gva, bool write, int *rc)
{
	uint64_t gpa = 0xdeadbeef;

	*rc = gmem_translate(v, gva, write, &gpa);
	return gpa;
}

static void test_no_paging(void)
{
	struct hv_fixture t;
	int rc;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	t.v->sys.cr0 = 1; /* PE only */
	t.v->sys.efer = 0;
	CU_ASSERT_EQUAL(tr(t.v, 0x12345, true, &rc), 0x12345);
	CU_ASSERT_EQUAL(rc, 0);
	tr(t.v, 1ull << 32, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	fake_domain_destroy(t.f);
}

static void test_page_sizes(void)
{
	struct hv_fixture t;
	int rc;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	/* 4 KiB */
	CU_ASSERT_EQUAL(tr(t.v, HV_BUF_GVA + 0x1234, false, &rc), HV_BUF_GPA + 0x1234);
	CU_ASSERT_EQUAL(rc, 0);
	/* 2 MiB */
	CU_ASSERT_FATAL(
	    fake_map(t.f, t.f->cr3, 0x40000000, 0x200000, FAKE_PAGE_2M, FAKE_PTE_P | FAKE_PTE_W) == 0);
	CU_ASSERT_EQUAL(tr(t.v, 0x40012345, true, &rc), 0x212345);
	CU_ASSERT_EQUAL(rc, 0);
	/* 1 GiB */
	CU_ASSERT_FATAL(fake_map(t.f, t.f->cr3, 0x8000000000ull, 0, FAKE_PAGE_1G, FAKE_PTE_P | FAKE_PTE_W) ==
			0);
	CU_ASSERT_EQUAL(tr(t.v, 0x8000123456ull, true, &rc), 0x123456);
	CU_ASSERT_EQUAL(rc, 0);
	/* a 1 GiB page reaching beyond RAM translates, but nothing can be copied there */
	{
		uint8_t b;
		CU_ASSERT_EQUAL(tr(t.v, 0x8000800000ull, false, &rc), 0x800000);
		CU_ASSERT_EQUAL(rc, 0);
		CU_ASSERT_EQUAL(gmem_copy_from_guest(t.v, &b, 0x8000800000ull, 1), -EFAULT);
	}
	fake_domain_destroy(t.f);
}

static void test_not_present(void)
{
	struct hv_fixture t;
	int rc;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	tr(t.v, HV_HOLE_GVA, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	tr(t.v, 0x1000, false, &rc); /* nothing at all mapped in this PML4 slot */
	CU_ASSERT_EQUAL(rc, -EFAULT);
	/* a present PTE under a not-present PDE */
	*fake_pte(t.f, t.f->cr3, HV_BUF_GVA, 2) &= ~FAKE_PTE_P;
	tr(t.v, HV_BUF_GVA, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	fake_domain_destroy(t.f);
}

static void test_user_supervisor(void)
{
	struct hv_fixture t;
	uint64_t ugva = 0x10000000;
	int rc;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	CU_ASSERT_FATAL(
	    fake_map(t.f, t.f->cr3, ugva, 0x300000, FAKE_PAGE_4K, FAKE_PTE_P | FAKE_PTE_W | FAKE_PTE_U) == 0);
	t.v->sys.cpl = 3;
	tr(t.v, HV_BUF_GVA, false, &rc); /* supervisor page */
	CU_ASSERT_EQUAL(rc, -EFAULT);
	CU_ASSERT_EQUAL(tr(t.v, ugva + 8, true, &rc), 0x300008);
	CU_ASSERT_EQUAL(rc, 0);
	/* user leaf under a supervisor-only PDE */
	*fake_pte(t.f, t.f->cr3, ugva, 2) &= ~FAKE_PTE_U;
	tr(t.v, ugva, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	t.v->sys.cpl = 0;
	tr(t.v, ugva, false, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	tr(t.v, HV_BUF_GVA, false, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	fake_domain_destroy(t.f);
}

static void test_read_only(void)
{
	struct hv_fixture t;
	uint64_t ugva = 0x10000000;
	int rc;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	CU_ASSERT_FATAL(fake_map(t.f, t.f->cr3, ugva, 0x300000, FAKE_PAGE_4K, FAKE_PTE_P | FAKE_PTE_U) == 0);
	tr(t.v, HV_RO_GVA, false, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	tr(t.v, HV_RO_GVA, true, &rc); /* CPL 0 with CR0.WP */
	CU_ASSERT_EQUAL(rc, -EFAULT);
	t.v->sys.cr0 &= ~CR0_WP;
	tr(t.v, HV_RO_GVA, true, &rc); /* CPL 0 without WP may write */
	CU_ASSERT_EQUAL(rc, 0);
	t.v->sys.cpl = 3;
	tr(t.v, ugva, true, &rc); /* CPL 3 never writes read-only pages */
	CU_ASSERT_EQUAL(rc, -EFAULT);
	tr(t.v, ugva, false, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	/* writable leaf under a read-only PDPTE */
	t.v->sys.cpl = 0;
	t.v->sys.cr0 |= CR0_WP;
	*fake_pte(t.f, t.f->cr3, HV_BUF_GVA, 3) &= ~FAKE_PTE_W;
	tr(t.v, HV_BUF_GVA, true, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	fake_domain_destroy(t.f);
}

static void test_non_canonical(void)
{
	struct hv_fixture t;
	static const uint64_t bad[] = {0x0000800000000000ull, 0xffff7fffffffffffull, 0x8000000000000000ull,
				       0x00ff800000200000ull};
	int rc;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tr(t.v, bad[i], false, &rc);
		CU_ASSERT_EQUAL(rc, -EFAULT);
	}
	fake_domain_destroy(t.f);
}

static void test_reserved_bits(void)
{
	struct hv_fixture t;
	uint64_t *e;
	int rc;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	/* NX is reserved while EFER.NXE is clear */
	e = fake_pte(t.f, t.f->cr3, HV_BUF_GVA, 1);
	*e |= FAKE_PTE_NX;
	tr(t.v, HV_BUF_GVA, false, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	t.v->sys.efer &= ~EFER_NXE;
	tr(t.v, HV_BUF_GVA, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	t.v->sys.efer |= EFER_NXE;
	*e &= ~FAKE_PTE_NX;
	/* PS in a PML4E: no 512 GiB pages */
	e = fake_pte(t.f, t.f->cr3, 0x0000010000000000ull, 4);
	*e = FAKE_PTE_P | FAKE_PTE_W | FAKE_PTE_PS;
	tr(t.v, 0x0000010000001000ull, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	/* a 2 MiB leaf with an address bit below 2 MiB (bit 13) */
	CU_ASSERT_FATAL(
	    fake_map(t.f, t.f->cr3, 0x40000000, 0x200000 | (1ull << 13), FAKE_PAGE_2M, FAKE_PTE_P) == 0);
	tr(t.v, 0x40000000, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	/* bit 12 of a large page is PAT, not an address bit */
	CU_ASSERT_FATAL(
	    fake_map(t.f, t.f->cr3, 0x40000000, 0x200000 | (1ull << 12), FAKE_PAGE_2M, FAKE_PTE_P) == 0);
	CU_ASSERT_EQUAL(tr(t.v, 0x40000010, false, &rc), 0x200010);
	CU_ASSERT_EQUAL(rc, 0);
	/* a 1 GiB leaf with bit 20 set */
	CU_ASSERT_FATAL(fake_map(t.f, t.f->cr3, 0x8000000000ull, 1ull << 20, FAKE_PAGE_1G, FAKE_PTE_P) == 0);
	tr(t.v, 0x8000000000ull, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	fake_domain_destroy(t.f);
}

static void test_tables_outside_ram(void)
{
	struct hv_fixture t;
	uint64_t *e, *pd;
	int rc;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	e = fake_pte(t.f, t.f->cr3, HV_BUF_GVA, 3);
	pd = fake_ram(t.f, *e & 0xffffffffff000ull);
	*e = (HV_RAM + 0x1000) | FAKE_PTE_P | FAKE_PTE_W; /* PD beyond RAM */
	tr(t.v, HV_BUF_GVA, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	/* a hypervisor page placed outside RAM is not a page table either, even when its
	 * contents would make a valid one */
	CU_ASSERT_FATAL(shared_info_place(t.d, HV_RAM / GMEM_PAGE_SIZE + 1) == 0);
	CU_ASSERT_PTR_EQUAL(gmem_gpa_ptr(&t.d->mem, HV_RAM + 0x1000, 8), t.d->shared_info_page);
	memcpy(t.d->shared_info_page, pd, GMEM_PAGE_SIZE);
	tr(t.v, HV_BUF_GVA, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	t.v->sys.cr3 = HV_RAM + 0x1000; /* CR3 itself outside RAM */
	tr(t.v, 0x1000, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	fake_domain_destroy(t.f);
}

static void test_pae(void)
{
	struct hv_fixture t;
	uint64_t pdpt, pd, pt, *ram;
	int rc;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	pdpt = fake_pt_alloc(t.f) + 0x20; /* PAE CR3 is 32-byte aligned */
	pd = fake_pt_alloc(t.f);
	pt = fake_pt_alloc(t.f);
	ram = fake_ram(t.f, 0);
	ram[(pdpt + 1 * 8) / 8] = pd | FAKE_PTE_P;	      /* 1-2 GiB */
	ram[(pd + 2 * 8) / 8] = pt | FAKE_PTE_P | FAKE_PTE_W; /* +4 MiB */
	ram[(pt + 3 * 8) / 8] = 0x305000 | FAKE_PTE_P | FAKE_PTE_W;
	ram[(pd + 5 * 8) / 8] = 0x200000 | FAKE_PTE_P | FAKE_PTE_PS; /* +10 MiB, 2 MiB page */
	t.v->sys.cr3 = pdpt;
	t.v->sys.cr4 = CR4_PAE;
	t.v->sys.efer = EFER_NXE;
	CU_ASSERT_EQUAL(tr(t.v, 0x40403abc, true, &rc), 0x305abc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(tr(t.v, 0x40a12345, false, &rc), 0x212345);
	CU_ASSERT_EQUAL(rc, 0);
	tr(t.v, 0x40a12345, true, &rc); /* read-only 2 MiB page, CR0.WP */
	CU_ASSERT_EQUAL(rc, -EFAULT);
	tr(t.v, 0x00403abc, false, &rc); /* PDPTE 0 not present */
	CU_ASSERT_EQUAL(rc, -EFAULT);
	tr(t.v, 0x140403abcull, false, &rc); /* beyond 32 bits */
	CU_ASSERT_EQUAL(rc, -EFAULT);
	ram[(pdpt + 1 * 8) / 8] |= FAKE_PTE_W; /* reserved in a PAE PDPTE */
	tr(t.v, 0x40403abc, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	fake_domain_destroy(t.f);
}

static void test_legacy_32(void)
{
	struct hv_fixture t;
	uint64_t pd, pt;
	uint32_t *ram;
	int rc;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	pd = fake_pt_alloc(t.f);
	pt = fake_pt_alloc(t.f);
	ram = fake_ram(t.f, 0);
	ram[(pd + 1 * 4) / 4] = (uint32_t)pt | FAKE_PTE_P | FAKE_PTE_W | FAKE_PTE_U; /* 4 MiB */
	ram[(pt + 7 * 4) / 4] = 0x306000 | FAKE_PTE_P | FAKE_PTE_W;
	ram[(pd + 3 * 4) / 4] = 0x000000 | FAKE_PTE_P | FAKE_PTE_PS; /* 12 MiB: 4 MiB page */
	t.v->sys.cr3 = pd;
	t.v->sys.cr4 = CR4_PSE;
	t.v->sys.efer = 0;
	CU_ASSERT_EQUAL(tr(t.v, 0x00407010, true, &rc), 0x306010);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(tr(t.v, 0x00d23456, false, &rc), 0x123456);
	CU_ASSERT_EQUAL(rc, 0);
	t.v->sys.cpl = 3;
	tr(t.v, 0x00407010, false, &rc); /* user PDE, supervisor PTE */
	CU_ASSERT_EQUAL(rc, -EFAULT);
	t.v->sys.cpl = 0;
	tr(t.v, 0x00007010, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	ram[(pd + 3 * 4) / 4] |= 1u << 21; /* reserved in a 4 MiB PDE */
	tr(t.v, 0x00d23456, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	/* without CR4.PSE the PS bit is ignored: the PDE points at a page table */
	ram[(pd + 3 * 4) / 4] = (uint32_t)pt | FAKE_PTE_P | FAKE_PTE_PS;
	t.v->sys.cr4 = 0;
	CU_ASSERT_EQUAL(tr(t.v, 0x00c07010, false, &rc), 0x306010);
	CU_ASSERT_EQUAL(rc, 0);
	fake_domain_destroy(t.f);
}

static void test_five_level(void)
{
	struct hv_fixture t;
	uint64_t pml5, *ram;
	int rc;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	CU_ASSERT_FATAL(fake_map(t.f, t.f->cr3, 0x0000800000001000ull, 0x307000, FAKE_PAGE_4K, FAKE_PTE_P) ==
			0);
	pml5 = fake_pt_alloc(t.f);
	ram = fake_ram(t.f, 0);
	ram[pml5 / 8] = t.f->cr3 | FAKE_PTE_P | FAKE_PTE_W | FAKE_PTE_U;
	t.v->sys.cr3 = pml5;
	t.v->sys.cr4 |= CR4_LA57;
	/* non-canonical with 48 bits, canonical with 57 */
	CU_ASSERT_EQUAL(tr(t.v, 0x0000800000001008ull, false, &rc), 0x307008);
	CU_ASSERT_EQUAL(rc, 0);
	tr(t.v, 0x0100000000000000ull, false, &rc);
	CU_ASSERT_EQUAL(rc, -EFAULT);
	tr(t.v, 0x0080000000000000ull, false, &rc); /* PML5E 128 not present */
	CU_ASSERT_EQUAL(rc, -EFAULT);
	fake_domain_destroy(t.f);
}

static void test_copy_across_pages(void)
{
	struct hv_fixture t;
	uint64_t gva = 0x20000000;
	uint8_t in[300], out[300];

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	/* two virtually adjacent pages backed by frames far apart, in reverse order */
	CU_ASSERT_FATAL(fake_map(t.f, t.f->cr3, gva, 0x310000, FAKE_PAGE_4K, FAKE_PTE_P | FAKE_PTE_W) == 0);
	CU_ASSERT_FATAL(
	    fake_map(t.f, t.f->cr3, gva + 0x1000, 0x100000, FAKE_PAGE_4K, FAKE_PTE_P | FAKE_PTE_W) == 0);
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 1);
	CU_ASSERT_EQUAL(gmem_copy_to_guest(t.v, gva + 0x1000 - 100, in, sizeof(in)), 0);
	CU_ASSERT_EQUAL(memcmp(fake_ram(t.f, 0x310000 + 0x1000 - 100), in, 100), 0);
	CU_ASSERT_EQUAL(memcmp(fake_ram(t.f, 0x100000), in + 100, 200), 0);
	memset(out, 0, sizeof(out));
	CU_ASSERT_EQUAL(gmem_copy_from_guest(t.v, out, gva + 0x1000 - 100, sizeof(out)), 0);
	CU_ASSERT_EQUAL(memcmp(in, out, sizeof(in)), 0);
	/* a zero-length copy touches nothing, even at an unmapped address */
	CU_ASSERT_EQUAL(gmem_copy_from_guest(t.v, out, HV_HOLE_GVA, 0), 0);
	fake_domain_destroy(t.f);
}

static void test_copy_partial_fault(void)
{
	struct hv_fixture t;
	uint64_t gva = 0x20000000;
	uint8_t in[64], out[64];

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	CU_ASSERT_FATAL(fake_map(t.f, t.f->cr3, gva, 0x310000, FAKE_PAGE_4K, FAKE_PTE_P | FAKE_PTE_W) == 0);
	CU_ASSERT_FATAL(fake_map(t.f, t.f->cr3, gva + 0x1000, 0x311000, FAKE_PAGE_4K, FAKE_PTE_P) == 0);
	memset(in, 0xab, sizeof(in));
	memset(fake_ram(t.f, 0x310000), 0, 0x2000);
	/* second page read-only: nothing at all is written */
	CU_ASSERT_EQUAL(gmem_copy_to_guest(t.v, gva + 0x1000 - 32, in, sizeof(in)), -EFAULT);
	CU_ASSERT_EQUAL(*(uint8_t *)fake_ram(t.f, 0x310000 + 0x1000 - 32), 0);
	/* reading it is fine; running into an unmapped page is not */
	CU_ASSERT_EQUAL(gmem_copy_from_guest(t.v, out, gva + 0x1000 - 32, sizeof(out)), 0);
	CU_ASSERT_EQUAL(gmem_copy_from_guest(t.v, out, gva + 0x2000 - 32, sizeof(out)), -EFAULT);
	fake_domain_destroy(t.f);
}

static void test_copy_wrap(void)
{
	struct hv_fixture t;
	uint8_t b[16];

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	CU_ASSERT_FATAL(fake_map(t.f, t.f->cr3, 0xfffffffffffff000ull, 0x312000, FAKE_PAGE_4K,
				 FAKE_PTE_P | FAKE_PTE_W) == 0);
	CU_ASSERT_EQUAL(gmem_copy_from_guest(t.v, b, 0xfffffffffffffff0ull, 16), 0);
	CU_ASSERT_EQUAL(gmem_copy_from_guest(t.v, b, 0xfffffffffffffff8ull, 16), -EFAULT);
	CU_ASSERT_EQUAL(gmem_copy_to_guest(t.v, 0xfffffffffffffff8ull, b, 16), -EFAULT);
	CU_ASSERT_EQUAL(gmem_copy_from_guest(t.v, b, HV_BUF_GVA, SIZE_MAX), -EFAULT);
	CU_ASSERT_EQUAL(gmem_copy_to_guest(t.v, HV_BUF_GVA, b, SIZE_MAX), -EFAULT);
	/* without paging, a copy may not run past 4 GiB */
	t.v->sys.cr0 = 1;
	t.v->sys.efer = 0;
	CU_ASSERT_EQUAL(gmem_copy_from_guest(t.v, b, 0xfffffff8ull, 16), -EFAULT);
	CU_ASSERT_EQUAL(gmem_copy_from_guest(t.v, b, HV_RAM - 8, 16), -EFAULT);
	CU_ASSERT_EQUAL(gmem_copy_from_guest(t.v, b, HV_RAM - 16, 16), 0);
	fake_domain_destroy(t.f);
}

static const CU_TestInfo hv_walker_tests[] = {
    {"no paging: identity below 4 GiB", test_no_paging},
    {"4K, 2M and 1G pages", test_page_sizes},
    {"not-present entries at any level", test_not_present},
    {"user/supervisor at CPL 3 and 0", test_user_supervisor},
    {"read-only pages, CR0.WP, CPL 3", test_read_only},
    {"non-canonical addresses", test_non_canonical},
    {"reserved bits: NX, PS in PML4E, large-page low bits", test_reserved_bits},
    {"page tables outside RAM", test_tables_outside_ram},
    {"32-bit PAE paging", test_pae},
    {"32-bit legacy paging with PSE", test_legacy_32},
    {"5-level paging", test_five_level},
    {"copies across page boundaries", test_copy_across_pages},
    {"a faulting copy writes nothing", test_copy_partial_fault},
    {"wrap-around lengths", test_copy_wrap},
    CU_TEST_INFO_NULL,
};

int main(void)
{
	return hv_test_main("guest memory walker", hv_walker_tests);
}
