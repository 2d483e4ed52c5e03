/* Shared set-up for the hypercall-layer unit tests: a fake domain with a guest buffer mapped at
 * HV_BUF_GVA, and a CUnit runner that fails the process when any assertion failed. */
#ifndef LAMINA_TEST_HV_TEST_H
#define LAMINA_TEST_HV_TEST_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "hc_handlers.h"
#include "runner_fake.h"

#define HV_RAM (4ull << 20)
#define HV_BUF_GPA 0x200000ull
#define HV_BUF_LEN 0x20000ull
#define HV_BUF_GVA 0xffff800000200000ull  /* supervisor read/write, 4 KiB pages */
#define HV_RO_GVA 0xffff800000400000ull	  /* one read-only page over HV_BUF_GPA */
#define HV_HOLE_GVA 0xffff800000600000ull /* not mapped */

struct hv_fixture {
	struct fake_runner *f;
	struct domain *d;
	struct vcpu *v;
};

static inline int hv_fixture_init(struct hv_fixture *t, unsigned nr_vcpus)
{
	int rc = fake_domain_create(HV_RAM, nr_vcpus, &t->f);

	if (rc)
		return rc;
	t->d = &t->f->d;
	t->v = t->d->vcpu[0];
	rc = fake_map_range(t->f, t->f->cr3, HV_BUF_GVA, HV_BUF_GPA, HV_BUF_LEN, FAKE_PTE_P | FAKE_PTE_W);
	if (!rc)
		rc = fake_map(t->f, t->f->cr3, HV_RO_GVA, HV_BUF_GPA, FAKE_PAGE_4K, FAKE_PTE_P);
	return rc;
}

/* Host view of the guest buffer at byte off. */
static inline void *hv_buf(struct hv_fixture *t, uint64_t off)
{
	return fake_ram(t->f, HV_BUF_GPA + off);
}

/* Runs the given tests as one suite; exit status 0 only if every test passed. */
static inline int hv_test_main(const char *suite, const CU_TestInfo *tests)
{
	CU_SuiteInfo suites[] = {{suite, NULL, NULL, NULL, NULL, (CU_TestInfo *)tests}, CU_SUITE_INFO_NULL};
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	if (CU_register_suites(suites) != CUE_SUCCESS) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_number_of_tests_run() == 0)
		failed = 1;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

#endif
