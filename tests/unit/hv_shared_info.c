/* shared_info: initial state, placement inside and outside RAM (contents and vcpu_info pointers
 * move along), the pvclock fields and Xen's scale arithmetic. */
#include "hv_test.h"

static void test_init(void)
{
	struct hv_fixture t;
	struct shared_info *s;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 2) == 0);
	s = t.d->shared_info;
	CU_ASSERT_PTR_EQUAL(s, t.d->shared_info_page);
	CU_ASSERT_EQUAL((uintptr_t)s % GMEM_PAGE_SIZE, 0);
	CU_ASSERT_EQUAL(t.d->shared_info_gfn, UINT64_MAX);
	CU_ASSERT_PTR_EQUAL(t.d->vcpu[1]->info, &s->vcpu_info[1]);
	CU_ASSERT_EQUAL(s->wc_version % 2, 0);
	CU_ASSERT(s->wc_version > 0);
	CU_ASSERT_EQUAL(s->wc_sec, (uint32_t)t.d->boot_wall.tv_sec);
	CU_ASSERT_EQUAL(s->wc_sec_hi, (uint32_t)((uint64_t)t.d->boot_wall.tv_sec >> 32));
	CU_ASSERT_EQUAL(s->wc_nsec, (uint32_t)t.d->boot_wall.tv_nsec);
	fake_domain_destroy(t.f);
}

static void test_place_in_ram(void)
{
	struct hv_fixture t;
	struct shared_info *ram_si;
	uint32_t wc;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 2) == 0);
	t.d->shared_info->evtchn_mask[3] = 0x1122334455667788ull;
	t.d->shared_info->vcpu_info[1].evtchn_upcall_mask = 1;
	wc = t.d->shared_info->wc_version;
	CU_ASSERT_EQUAL(shared_info_place(t.d, 0x120), 0);
	ram_si = fake_ram(t.f, 0x120000);
	CU_ASSERT_PTR_EQUAL(t.d->shared_info, ram_si);
	CU_ASSERT_EQUAL(t.d->shared_info_gfn, 0x120);
	CU_ASSERT_EQUAL(ram_si->evtchn_mask[3], 0x1122334455667788ull);
	CU_ASSERT_PTR_EQUAL(t.d->vcpu[0]->info, &ram_si->vcpu_info[0]);
	CU_ASSERT_PTR_EQUAL(t.d->vcpu[1]->info, &ram_si->vcpu_info[1]);
	CU_ASSERT_EQUAL(ram_si->vcpu_info[1].evtchn_upcall_mask, 1);
	CU_ASSERT_EQUAL(ram_si->wc_version % 2, 0);
	CU_ASSERT(ram_si->wc_version > wc);
	CU_ASSERT_EQUAL(t.f->maps, 0);
	/* placing again at the same frame changes nothing; a new frame moves it */
	CU_ASSERT_EQUAL(shared_info_place(t.d, 0x120), 0);
	CU_ASSERT_EQUAL(shared_info_place(t.d, 0x121), 0);
	CU_ASSERT_EQUAL(((struct shared_info *)fake_ram(t.f, 0x121000))->evtchn_mask[3],
			0x1122334455667788ull);
	CU_ASSERT_PTR_EQUAL(t.d->vcpu[1]->info,
			    &((struct shared_info *)fake_ram(t.f, 0x121000))->vcpu_info[1]);
	fake_domain_destroy(t.f);
}

static void test_place_outside_ram(void)
{
	struct hv_fixture t;
	const uint64_t hole = 0xfeff0, hole2 = 0xfeff1;
	struct shared_info *priv;
	uint64_t gva = 0x30000000;
	uint64_t v;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	priv = t.d->shared_info_page;
	CU_ASSERT_EQUAL(shared_info_place(t.d, 0x120), 0);
	((struct shared_info *)fake_ram(t.f, 0x120000))->evtchn_pending[0] = 0xabc;
	CU_ASSERT_EQUAL(shared_info_place(t.d, hole), 0);
	CU_ASSERT_EQUAL(t.f->maps, 1);
	CU_ASSERT_EQUAL(t.f->last_map_gfn, hole);
	CU_ASSERT_PTR_EQUAL(t.f->last_map_page, priv);
	CU_ASSERT_PTR_EQUAL(t.d->shared_info, priv);
	CU_ASSERT_EQUAL(priv->evtchn_pending[0], 0xabc); /* came back from the RAM copy */
	CU_ASSERT_PTR_EQUAL(t.v->info, &priv->vcpu_info[0]);
	CU_ASSERT_PTR_EQUAL(gmem_gpa_ptr(&t.d->mem, hole * GMEM_PAGE_SIZE, GMEM_PAGE_SIZE), priv);
	/* the guest sees it through its page tables too */
	CU_ASSERT_FATAL(
	    fake_map(t.f, t.f->cr3, gva, hole * GMEM_PAGE_SIZE, FAKE_PAGE_4K, FAKE_PTE_P | FAKE_PTE_W) == 0);
	CU_ASSERT_EQUAL(
	    gmem_copy_from_guest(t.v, &v, gva + offsetof(struct shared_info, evtchn_pending), sizeof(v)), 0);
	CU_ASSERT_EQUAL(v, 0xabc);
	/* re-placing at another hole moves the page */
	CU_ASSERT_EQUAL(shared_info_place(t.d, hole2), 0);
	CU_ASSERT_EQUAL(t.f->last_map_gfn, hole2);
	CU_ASSERT_PTR_EQUAL(gmem_gpa_ptr(&t.d->mem, hole2 * GMEM_PAGE_SIZE, 8), priv);
	CU_ASSERT_PTR_NULL(gmem_gpa_ptr(&t.d->mem, hole * GMEM_PAGE_SIZE, 8));
	/* a runner that cannot map the page: shared_info stays where it is */
	t.f->map_rc = -ENOMEM;
	CU_ASSERT_EQUAL(shared_info_place(t.d, hole), -ENOMEM);
	CU_ASSERT_EQUAL(t.d->shared_info_gfn, hole2);
	CU_ASSERT_EQUAL(shared_info_place(t.d, 1ull << 40), -EINVAL);
	CU_ASSERT_EQUAL(shared_info_place(t.d, UINT64_MAX), -EINVAL);
	fake_domain_destroy(t.f);
}

static void test_place_keeps_registered(void)
{
	struct hv_fixture t;
	struct vcpu_info *reg;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 2) == 0);
	reg = fake_ram(t.f, 0x170000);
	t.d->vcpu[1]->info = reg;
	t.d->vcpu[1]->info_gpa = 0x170000;
	CU_ASSERT_EQUAL(shared_info_place(t.d, 0x120), 0);
	CU_ASSERT_PTR_EQUAL(t.d->vcpu[1]->info, reg);
	CU_ASSERT_PTR_EQUAL(t.d->vcpu[0]->info, &t.d->shared_info->vcpu_info[0]);
	fake_domain_destroy(t.f);
}

static void test_scale_math(void)
{
	static const uint64_t hz[] = {1000000ull,     32768ull * 1000, 100000000ull,  999999999ull,
				      1000000000ull,  1000000001ull,   1999999999ull, 2000000000ull,
				      2000000001ull,  2400000000ull,   3312000000ull, 4100000000ull,
				      10000000000ull, 123456789012ull};

	for (unsigned i = 0; i < sizeof(hz) / sizeof(hz[0]); i++) {
		uint32_t mul;
		int8_t shift;
		double ns, err;

		CU_ASSERT_FATAL(shared_info_time_scale(hz[i], &mul, &shift) == 0);
		CU_ASSERT(mul >= (1u << 31)); /* the rate was normalised into (1e9/2, 2e9] ... */
		/* one second of ticks is 1e9 ns within 1 ppm */
		ns = (double)shared_info_scale_delta(hz[i], mul, shift);
		err = (ns - 1e9) / 1e9;
		CU_ASSERT(err < 1e-6 && err > -1e-6);
		/* and 1000 s, still within 1 ppm */
		ns = (double)shared_info_scale_delta(hz[i] * 1000, mul, shift);
		err = (ns - 1e12) / 1e12;
		CU_ASSERT(err < 1e-6 && err > -1e-6);
		/* CPU frequency as the header derives it: ((1e9 << 32) / mul) >> shift, i.e. << -shift */
		{
			double f = (double)(1000000000ull << 32) / mul;
			f = shift >= 0 ? f / (double)(1ull << shift) : f * (double)(1ull << -shift);
			CU_ASSERT((f - (double)hz[i]) / (double)hz[i] < 1e-6);
			CU_ASSERT((f - (double)hz[i]) / (double)hz[i] > -1e-6);
		}
	}
	{
		uint32_t mul;
		int8_t shift;
		CU_ASSERT_EQUAL(shared_info_time_scale(0, &mul, &shift), -EINVAL);
		/* 2 GHz: shift 0, mul 2^31 (0.5 ns per tick) */
		CU_ASSERT_EQUAL(shared_info_time_scale(2000000000ull, &mul, &shift), 0);
		CU_ASSERT_EQUAL(shift, 0);
		CU_ASSERT_EQUAL(mul, 1u << 31);
		/* 1 GHz: doubled once, so shift 1 and mul 2^31 */
		CU_ASSERT_EQUAL(shared_info_time_scale(1000000000ull, &mul, &shift), 0);
		CU_ASSERT_EQUAL(shift, 1);
		CU_ASSERT_EQUAL(mul, 1u << 31);
	}
}

static void test_update_time(void)
{
	struct hv_fixture t;
	struct vcpu_time_info *ti;
	uint32_t ver;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	ti = &t.v->info->time;
	t.f->tsc_fixed = true;
	t.f->tsc = 123456789;
	t.f->tsc_mono_ns = t.d->boot_mono_ns + 5000;
	t.d->tsc_khz = 3000000;
	ver = ti->version;
	shared_info_update_time(t.v);
	CU_ASSERT_EQUAL(ti->version, (ver | 1) + 1);
	CU_ASSERT_EQUAL(ti->version % 2, 0);
	CU_ASSERT_EQUAL(ti->tsc_timestamp, 123456789);
	CU_ASSERT_EQUAL(ti->system_time, 5000);
	CU_ASSERT_EQUAL(ti->flags, XEN_PVCLOCK_TSC_STABLE_BIT);
	{
		uint64_t ns = shared_info_scale_delta(3000000, ti->tsc_to_system_mul, ti->tsc_shift);
		CU_ASSERT(ns >= 999999 && ns <= 1000001); /* 1 ms of a 3 GHz TSC, truncated */
	}
	/* a guest that scribbled an odd version still sees an odd-then-even update */
	ti->version = 41;
	shared_info_update_time(t.v);
	CU_ASSERT_EQUAL(ti->version, 44);
	/* no TSC rate or no clock: the fields stay as they were */
	ver = ti->version;
	t.d->tsc_khz = 0;
	shared_info_update_time(t.v);
	CU_ASSERT_EQUAL(ti->version, ver);
	t.d->tsc_khz = 3000000;
	t.f->tsc_rc = -EIO;
	shared_info_update_time(t.v);
	CU_ASSERT_EQUAL(ti->version, ver);
	/* a vCPU without vcpu_info is left alone */
	t.v->info = NULL;
	shared_info_update_time(t.v);
	fake_domain_destroy(t.f);
}

static const CU_TestInfo hv_shared_info_tests[] = {
    {"initial private page and wall clock", test_init},
    {"placement inside RAM", test_place_in_ram},
    {"placement outside RAM", test_place_outside_ram},
    {"registered vcpu_info stays put", test_place_keeps_registered},
    {"pvclock scale within 1 ppm", test_scale_math},
    {"vcpu_time_info update", test_update_time},
    CU_TEST_INFO_NULL,
};

int main(void)
{
	return hv_test_main("shared_info", hv_shared_info_tests);
}
