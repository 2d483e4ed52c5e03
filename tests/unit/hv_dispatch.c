/* Hypercall dispatch: the table's reach (unknown and huge numbers), the statistics, names, the
 * hypercall page's stubs, and multicall (mixed entries, nesting, bad arrays). */
#include "hv_test.h"

#include <xen/sched.h>
#include <xen/version.h>

static void test_unknown_numbers(void)
{
	static const uint64_t nrs[] = {__HYPERVISOR_set_trap_table,
				       __HYPERVISOR_mmu_update,
				       __HYPERVISOR_sched_op_compat,
				       __HYPERVISOR_iret,
				       __HYPERVISOR_domctl,
				       35,
				       47,
				       63,
				       64,
				       127,
				       128,
				       1ull << 32,
				       (1ull << 63) + __HYPERVISOR_xen_version,
				       UINT64_MAX};
	struct hv_fixture t;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	for (unsigned i = 0; i < sizeof(nrs) / sizeof(nrs[0]); i++) {
		CU_ASSERT_EQUAL(fake_hypercall(t.v, nrs[i], 0, 0, 0, 0, 0), -ENOSYS);
		CU_ASSERT_PTR_NULL(hypercall_name(nrs[i]));
	}
	CU_ASSERT_EQUAL(t.v->hypercalls, sizeof(nrs) / sizeof(nrs[0]));
	fake_domain_destroy(t.f);
}

static void test_stats(void)
{
	struct hv_fixture t;
	uint64_t total = 0;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 2) == 0);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_xen_version, XENVER_version, 0, 0, 0, 0),
				(LAMINA_XEN_MAJOR << 16) | LAMINA_XEN_MINOR);
	fake_hypercall(t.v, 63, 0, 0, 0, 0, 0);
	fake_hypercall(t.v, 1000, 0, 0, 0, 0, 0);
	fake_hypercall(t.d->vcpu[1], __HYPERVISOR_sched_op, SCHEDOP_yield, 0, 0, 0, 0);
	CU_ASSERT_EQUAL(t.d->hc_count[__HYPERVISOR_xen_version], 5);
	CU_ASSERT_EQUAL(t.d->hc_count[63], 1);
	CU_ASSERT_EQUAL(t.d->hc_count[__HYPERVISOR_sched_op], 1);
	CU_ASSERT_EQUAL(t.v->hypercalls, 7);
	CU_ASSERT_EQUAL(t.d->vcpu[1]->hypercalls, 1);
	for (unsigned i = 0; i < DOMAIN_HC_STATS; i++)
		total += t.d->hc_count[i];
	CU_ASSERT_EQUAL(total, 7); /* the call numbered 1000 has no counter */
	fake_domain_destroy(t.f);
}

static void test_names(void)
{
	CU_ASSERT_STRING_EQUAL(hypercall_name(__HYPERVISOR_xen_version), "xen_version");
	CU_ASSERT_STRING_EQUAL(hypercall_name(__HYPERVISOR_multicall), "multicall");
	CU_ASSERT_STRING_EQUAL(hypercall_name(__HYPERVISOR_memory_op), "memory_op");
	CU_ASSERT_STRING_EQUAL(hypercall_name(__HYPERVISOR_console_io), "console_io");
	CU_ASSERT_STRING_EQUAL(hypercall_name(__HYPERVISOR_sched_op), "sched_op");
	CU_ASSERT_STRING_EQUAL(hypercall_name(__HYPERVISOR_vcpu_op), "vcpu_op");
	CU_ASSERT_STRING_EQUAL(hypercall_name(__HYPERVISOR_hvm_op), "hvm_op");
	CU_ASSERT_PTR_NULL(hypercall_name(0));
}

static void test_page_fill(void)
{
	uint8_t page[4096];

	memset(page, 0, sizeof(page));
	hypercall_page_fill(page);
	for (unsigned nr = 0; nr < 128; nr++) {
		const uint8_t *s = page + nr * LAMINA_HYPERCALL_STUB_SIZE;
		const uint8_t want[8] = {0xb8, (uint8_t)nr, 0, 0, 0, 0xe7, LAMINA_PORT_HYPERCALL, 0xc3};

		CU_ASSERT_EQUAL(memcmp(s, want, sizeof(want)), 0);
		for (unsigned i = sizeof(want); i < LAMINA_HYPERCALL_STUB_SIZE; i++)
			CU_ASSERT_EQUAL(s[i], 0xcc);
	}
}

/* Fills entry i of a multicall list at the guest buffer's start. */
static void mc_set(struct hv_fixture *t, unsigned i, uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2)
{
	struct multicall_entry *e = hv_buf(t, i * sizeof(*e));

	memset(e, 0, sizeof(*e));
	e->op = op;
	e->result = 0x5a5a5a5a;
	e->args[0] = a0;
	e->args[1] = a1;
	e->args[2] = a2;
}

static long mc_result(struct hv_fixture *t, unsigned i)
{
	return (long)((struct multicall_entry *)hv_buf(t, i * sizeof(struct multicall_entry)))->result;
}

static void test_multicall_mixed(void)
{
	struct hv_fixture t;
	const uint64_t data = HV_BUF_GVA + 0x8000;
	struct sched_shutdown *code;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	code = hv_buf(&t, 0x8100);
	memcpy(hv_buf(&t, 0x8000), "hi!", 3);
	code->reason = SHUTDOWN_reboot;
	mc_set(&t, 0, __HYPERVISOR_xen_version, XENVER_version, 0, 0);
	mc_set(&t, 1, __HYPERVISOR_xen_version, 99, 0, 0);
	mc_set(&t, 2, 200, 0, 0, 0);
	mc_set(&t, 3, __HYPERVISOR_console_io, CONSOLEIO_write, 3, data);
	mc_set(&t, 4, __HYPERVISOR_multicall, HV_BUF_GVA, 1, 0);
	mc_set(&t, 5, __HYPERVISOR_sched_op, SCHEDOP_shutdown_code, data + 0x100, 0);
	mc_set(&t, 6, __HYPERVISOR_xen_version, XENVER_extraversion, HV_HOLE_GVA, 0);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_multicall, HV_BUF_GVA, 7, 0, 0, 0), 0);
	CU_ASSERT_EQUAL(mc_result(&t, 0), (LAMINA_XEN_MAJOR << 16) | LAMINA_XEN_MINOR);
	CU_ASSERT_EQUAL(mc_result(&t, 1), -ENOSYS);
	CU_ASSERT_EQUAL(mc_result(&t, 2), -ENOSYS);
	CU_ASSERT_EQUAL(mc_result(&t, 3), 0);
	CU_ASSERT_EQUAL(mc_result(&t, 4), -EINVAL); /* nested */
	CU_ASSERT_EQUAL(mc_result(&t, 5), 0);
	CU_ASSERT_EQUAL(mc_result(&t, 6), -EFAULT);
	CU_ASSERT_EQUAL(t.f->console_len, 3);
	CU_ASSERT_EQUAL(memcmp(t.f->console, "hi!", 3), 0);
	CU_ASSERT_EQUAL(t.d->shutdown_code, SHUTDOWN_reboot);
	CU_ASSERT_EQUAL(t.f->shutdowns, 0);
	CU_ASSERT_FALSE(t.v->in_multicall);
	/* one exit, seven calls: the inner calls are counted per number */
	CU_ASSERT_EQUAL(t.v->hypercalls, 1);
	CU_ASSERT_EQUAL(t.d->hc_count[__HYPERVISOR_multicall], 2);
	CU_ASSERT_EQUAL(t.d->hc_count[__HYPERVISOR_xen_version], 3);
	CU_ASSERT_EQUAL(t.d->hc_count[__HYPERVISOR_console_io], 1);
	fake_domain_destroy(t.f);
}

static void test_multicall_bad_array(void)
{
	struct hv_fixture t;
	const uint64_t last = HV_BUF_GVA + HV_BUF_LEN - sizeof(struct multicall_entry);

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_multicall, HV_HOLE_GVA, 1, 0, 0, 0), -EFAULT);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_multicall, 0, 1, 0, 0, 0), -EFAULT);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_multicall, HV_HOLE_GVA, 0, 0, 0, 0), 0);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_multicall, HV_BUF_GVA, 100000, 0, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_multicall, UINT64_MAX - 64, 2, 0, 0, 0), -EFAULT);
	/* the last entry of the buffer runs, the next one is unmapped: -EFAULT, first result kept */
	{
		struct multicall_entry *e = hv_buf(&t, HV_BUF_LEN - sizeof(*e));

		memset(e, 0, sizeof(*e));
		e->op = __HYPERVISOR_xen_version;
		e->args[0] = XENVER_pagesize;
		CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_multicall, last, 2, 0, 0, 0), -EFAULT);
		CU_ASSERT_EQUAL(e->result, 4096);
	}
	/* a list the guest may read but not write: the result cannot be stored */
	mc_set(&t, 0, __HYPERVISOR_xen_version, XENVER_version, 0, 0);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_multicall, HV_RO_GVA, 1, 0, 0, 0), -EFAULT);
	CU_ASSERT_EQUAL(mc_result(&t, 0), 0x5a5a5a5a);
	/* nr_calls is 32 bits, as in Xen */
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_multicall, HV_BUF_GVA, 1ull << 32, 0, 0, 0), 0);
	CU_ASSERT_FALSE(t.v->in_multicall);
	fake_domain_destroy(t.f);
}

static void test_multicall_batch(void)
{
	struct hv_fixture t;
	const unsigned n = 512;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	for (unsigned i = 0; i < n; i++)
		mc_set(&t, i, __HYPERVISOR_xen_version, i % 2 ? XENVER_pagesize : 77, 0, 0);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_multicall, HV_BUF_GVA, n, 0, 0, 0), 0);
	for (unsigned i = 0; i < n; i++)
		CU_ASSERT_EQUAL(mc_result(&t, i), i % 2 ? 4096 : -ENOSYS);
	CU_ASSERT_EQUAL(t.d->hc_count[__HYPERVISOR_xen_version], n);
	fake_domain_destroy(t.f);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* An argument a hostile guest might pass: small numbers, pointers into (and just past) its
 * buffer, unmapped and non-canonical pointers, or any 64-bit value. */
static uint64_t hostile_arg(uint64_t *seed)
{
	uint64_t r = xorshift(seed);

	switch (r % 6) {
	case 0:
		return r >> 60;
	case 1:
		return HV_BUF_GVA + (xorshift(seed) % (HV_BUF_LEN + 64));
	case 2:
		return HV_HOLE_GVA + (r >> 52);
	case 3:
		return 0x0000800000000000ull | (r >> 20);
	case 4:
		return DOMID_SELF;
	default:
		return xorshift(seed);
	}
}

/* A seeded, bounded storm of random calls with random arguments and a random buffer: every
 * result is 0, a positive value or a known -errno, and the domain stays consistent. */
static void test_hostile_storm(void)
{
	struct hv_fixture t;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	uint8_t *buf;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 2) == 0);
	buf = hv_buf(&t, 0);
	for (unsigned round = 0; round < 200000; round++) {
		uint64_t nr = xorshift(&seed) % 8 ? xorshift(&seed) % 40 : xorshift(&seed);
		long rc;

		if (round % 64 == 0)
			for (unsigned i = 0; i < HV_BUF_LEN; i += 8)
				*(uint64_t *)(buf + i) =
				    i % 64 == 0 ? xorshift(&seed) % 64 : xorshift(&seed) % 4096;
		rc = fake_hypercall(t.d->vcpu[round % 2], nr, xorshift(&seed) % 16, hostile_arg(&seed),
				    hostile_arg(&seed), hostile_arg(&seed), hostile_arg(&seed));
		if (rc < 0 && rc < -133)
			CU_FAIL("result is not an errno");
	}
	CU_ASSERT_FALSE(t.d->vcpu[0]->in_multicall || t.d->vcpu[1]->in_multicall);
	CU_ASSERT(t.d->shared_info == t.d->shared_info_page ||
		  ((uint8_t *)t.d->shared_info >= t.d->mem.ram &&
		   (uint8_t *)t.d->shared_info < t.d->mem.ram + t.d->mem.ram_size));
	CU_ASSERT(t.f->console_len <= FAKE_CONSOLE_MAX);
	fake_domain_destroy(t.f);
}

static const CU_TestInfo hv_dispatch_tests[] = {
    {"unknown and huge numbers: -ENOSYS", test_unknown_numbers},
    {"per-vCPU and per-number statistics", test_stats},
    {"hypercall names", test_names},
    {"hypercall page stubs", test_page_fill},
    {"multicall: mixed entries and nesting", test_multicall_mixed},
    {"multicall: bad arrays and counts", test_multicall_bad_array},
    {"multicall: 512 entries", test_multicall_batch},
    {"200000 hostile calls", test_hostile_storm},
    CU_TEST_INFO_NULL,
};

int main(void)
{
	return hv_test_main("hypercall dispatch", hv_dispatch_tests);
}
