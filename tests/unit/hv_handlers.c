/* xen_version, console_io and sched_op: every sub-command's good answer and each error a guest
 * can provoke (bad pointers, bad values, unknown or privileged commands). */
#include "hv_test.h"

#include <xen/sched.h>
#include <xen/version.h>

#define XV(t, cmd, ptr) fake_hypercall((t)->v, __HYPERVISOR_xen_version, (cmd), (ptr), 0, 0, 0)
#define SCHED(t, cmd, ptr) fake_hypercall((t)->v, __HYPERVISOR_sched_op, (cmd), (ptr), 0, 0, 0)
#define CONS(t, cmd, n, ptr) fake_hypercall((t)->v, __HYPERVISOR_console_io, (cmd), (n), (ptr), 0, 0)

static void test_version_strings(void)
{
	struct hv_fixture t;
	char *b;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	b = hv_buf(&t, 0);
	CU_ASSERT_EQUAL(XV(&t, XENVER_version, 0), (4 << 16) | 17);
	CU_ASSERT_EQUAL(XV(&t, XENVER_version, HV_HOLE_GVA), (4 << 16) | 17);
	CU_ASSERT_EQUAL(XV(&t, XENVER_pagesize, 0), 4096);
	memset(b, 'x', 2048);
	CU_ASSERT_EQUAL(XV(&t, XENVER_extraversion, HV_BUF_GVA), 0);
	CU_ASSERT_STRING_EQUAL(b, LAMINA_EXTRAVERSION);
	CU_ASSERT_EQUAL(b[15], 0);
	CU_ASSERT_EQUAL(b[16], 'x'); /* exactly xen_extraversion_t, no more */
	CU_ASSERT_EQUAL(XV(&t, XENVER_capabilities, HV_BUF_GVA), 0);
	CU_ASSERT_STRING_EQUAL(b, "hvm-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p");
	CU_ASSERT_EQUAL(XV(&t, XENVER_changeset, HV_BUF_GVA), 0);
	CU_ASSERT(strlen(b) > 0 && strlen(b) < 64);
	CU_ASSERT_EQUAL(XV(&t, XENVER_compile_info, HV_BUF_GVA), 0);
	{
		struct xen_compile_info *ci = (struct xen_compile_info *)b;
		CU_ASSERT(strlen(ci->compiler) > 0 && ci->compiler[63] == 0);
		CU_ASSERT_STRING_EQUAL(ci->compile_by, "lamina");
		CU_ASSERT(ci->compile_date[31] == 0);
	}
	fake_domain_destroy(t.f);
}

static void test_version_params(void)
{
	struct hv_fixture t;
	struct xen_platform_parameters *pp;
	struct xen_feature_info *fi;
	uint8_t *h;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	pp = hv_buf(&t, 0);
	CU_ASSERT_EQUAL(XV(&t, XENVER_platform_parameters, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(pp->virt_start, 0xffff800000000000ull);
	fi = hv_buf(&t, 0x100);
	fi->submap_idx = 0;
	fi->submap = 0xdeadbeef;
	CU_ASSERT_EQUAL(XV(&t, XENVER_get_features, HV_BUF_GVA + 0x100), 0);
	CU_ASSERT(fi->submap & (1u << XENFEAT_auto_translated_physmap));
	CU_ASSERT(fi->submap & (1u << XENFEAT_writable_page_tables));
	CU_ASSERT(fi->submap & (1u << XENFEAT_hvm_safe_pvclock));
	CU_ASSERT(fi->submap & (1u << XENFEAT_not_direct_mapped));
	CU_ASSERT_FALSE(fi->submap & (1u << XENFEAT_supervisor_mode_kernel));
	CU_ASSERT_FALSE(fi->submap & (1u << XENFEAT_dom0));
	CU_ASSERT_FALSE(fi->submap & (1u << XENFEAT_direct_mapped));
	CU_ASSERT_FALSE(fi->submap & (1u << XENFEAT_hvm_pirqs));
	fi->submap_idx = 1;
	CU_ASSERT_EQUAL(XV(&t, XENVER_get_features, HV_BUF_GVA + 0x100), -EINVAL);
	fi->submap_idx = 0x80000000u;
	CU_ASSERT_EQUAL(XV(&t, XENVER_get_features, HV_BUF_GVA + 0x100), -EINVAL);
	for (int i = 0; i < 16; i++)
		t.d->cfg.uuid[i] = (uint8_t)(0xa0 + i);
	h = hv_buf(&t, 0x200);
	CU_ASSERT_EQUAL(XV(&t, XENVER_guest_handle, HV_BUF_GVA + 0x200), 0);
	CU_ASSERT_EQUAL(memcmp(h, t.d->cfg.uuid, 16), 0);
	fake_domain_destroy(t.f);
}

static void test_version_errors(void)
{
	static const unsigned need_ptr[] = {
	    XENVER_extraversion,	XENVER_compile_info, XENVER_capabilities, XENVER_changeset,
	    XENVER_platform_parameters, XENVER_get_features, XENVER_guest_handle};
	struct hv_fixture t;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	for (unsigned i = 0; i < sizeof(need_ptr) / sizeof(need_ptr[0]); i++) {
		CU_ASSERT_EQUAL(XV(&t, need_ptr[i], 0), -EFAULT);
		CU_ASSERT_EQUAL(XV(&t, need_ptr[i], HV_HOLE_GVA), -EFAULT);
		CU_ASSERT_EQUAL(XV(&t, need_ptr[i], 0x0000900000000000ull), -EFAULT);
	}
	CU_ASSERT_EQUAL(XV(&t, XENVER_extraversion, HV_RO_GVA), -EFAULT);
	/* the buffer's last page ends 8 bytes into an unmapped one */
	CU_ASSERT_EQUAL(XV(&t, XENVER_extraversion, HV_BUF_GVA + HV_BUF_LEN - 8), -EFAULT);
	CU_ASSERT_EQUAL(XV(&t, XENVER_commandline, HV_BUF_GVA), -EPERM);
	CU_ASSERT_EQUAL(XV(&t, XENVER_build_id, HV_BUF_GVA), -EPERM);
	CU_ASSERT_EQUAL(XV(&t, 11, HV_BUF_GVA), -ENOSYS);
	CU_ASSERT_EQUAL(XV(&t, 0x7fffffff, HV_BUF_GVA), -ENOSYS);
	CU_ASSERT_EQUAL(XV(&t, 0xffffffffu, HV_BUF_GVA), -ENOSYS);
	fake_domain_destroy(t.f);
}

static void test_console(void)
{
	struct hv_fixture t;
	char *b;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	b = hv_buf(&t, 0);
	memcpy(b, "hello, console\n", 15);
	CU_ASSERT_EQUAL(CONS(&t, CONSOLEIO_write, 15, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(t.f->console_len, 15);
	CU_ASSERT_EQUAL(memcmp(t.f->console, "hello, console\n", 15), 0);
	/* longer than one chunk and across a page boundary */
	for (int i = 0; i < 1000; i++)
		b[0x1000 - 300 + i] = (char)('a' + i % 26);
	CU_ASSERT_EQUAL(CONS(&t, CONSOLEIO_write, 1000, HV_BUF_GVA + 0x1000 - 300), 0);
	CU_ASSERT_EQUAL(t.f->console_len, 1015);
	CU_ASSERT_EQUAL(memcmp(t.f->console + 15, b + 0x1000 - 300, 1000), 0);
	/* nothing to write: no pointer needed */
	CU_ASSERT_EQUAL(CONS(&t, CONSOLEIO_write, 0, 0), 0);
	CU_ASSERT_EQUAL(CONS(&t, CONSOLEIO_write, 5, 0), -EFAULT);
	CU_ASSERT_EQUAL(CONS(&t, CONSOLEIO_write, 5, HV_HOLE_GVA), -EFAULT);
	CU_ASSERT_EQUAL(CONS(&t, CONSOLEIO_write, 64 * 1024 + 1, HV_BUF_GVA), -EINVAL);
	CU_ASSERT_EQUAL(CONS(&t, CONSOLEIO_write, 0xffffffffu, HV_BUF_GVA), -EINVAL);
	CU_ASSERT_EQUAL(t.f->console_len, 1015);
	/* the buffer runs off its mapping after the first chunk: what came before stays written */
	CU_ASSERT_EQUAL(CONS(&t, CONSOLEIO_write, 600, HV_BUF_GVA + HV_BUF_LEN - 300), -EFAULT);
	CU_ASSERT_EQUAL(t.f->console_len, 1015 + 256);
	t.f->console_rc = -EIO;
	CU_ASSERT_EQUAL(CONS(&t, CONSOLEIO_write, 3, HV_BUF_GVA), -EIO);
	CU_ASSERT_EQUAL(CONS(&t, CONSOLEIO_read, 100, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(CONS(&t, CONSOLEIO_read, 100, 0), 0);
	CU_ASSERT_EQUAL(CONS(&t, 2, 1, HV_BUF_GVA), -ENOSYS);
	CU_ASSERT_EQUAL(CONS(&t, 0x10000000, 1, HV_BUF_GVA), -ENOSYS);
	fake_domain_destroy(t.f);
}

static void test_sched_shutdown(void)
{
	struct hv_fixture t;
	struct sched_shutdown *s;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	s = hv_buf(&t, 0);
	for (unsigned r = 0; r <= SHUTDOWN_MAX; r++) {
		s->reason = r;
		CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_shutdown, HV_BUF_GVA), 0);
		CU_ASSERT_EQUAL(t.f->shutdowns, r + 1);
		CU_ASSERT_EQUAL(t.f->last_shutdown_reason, r);
	}
	s->reason = SHUTDOWN_MAX + 1;
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_shutdown, HV_BUF_GVA), -EINVAL);
	s->reason = 0xffffffffu;
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_shutdown, HV_BUF_GVA), -EINVAL);
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_shutdown, HV_HOLE_GVA), -EFAULT);
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_shutdown, 0), -EFAULT);
	CU_ASSERT_EQUAL(t.f->shutdowns, SHUTDOWN_MAX + 1);
	fake_domain_destroy(t.f);
}

static void test_sched_shutdown_code(void)
{
	struct hv_fixture t;
	struct sched_shutdown *s;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	s = hv_buf(&t, 0);
	s->reason = 9;
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_shutdown_code, HV_BUF_GVA), -EINVAL);
	CU_ASSERT_EQUAL(t.d->shutdown_code, -1);
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_shutdown_code, HV_HOLE_GVA), -EFAULT);
	s->reason = SHUTDOWN_crash;
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_shutdown_code, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(t.d->shutdown_code, SHUTDOWN_crash);
	s->reason = SHUTDOWN_poweroff; /* the first code latched stays */
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_shutdown_code, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(t.d->shutdown_code, SHUTDOWN_crash);
	CU_ASSERT_EQUAL(t.f->shutdowns, 0);
	fake_domain_destroy(t.f);
}

static void test_sched_other(void)
{
	struct hv_fixture t;
	struct sched_remote_shutdown *rs;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_yield, 0), 0);
	CU_ASSERT_EQUAL(t.f->yields, 1);
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_block, 0), 0);
	CU_ASSERT_EQUAL(t.f->blocks, 1);
	t.f->block_rc = -EINTR;
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_block, 0), -EINTR);
	rs = hv_buf(&t, 0);
	rs->domain_id = DOMID_SELF;
	rs->reason = SHUTDOWN_poweroff;
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_remote_shutdown, HV_BUF_GVA), -EPERM);
	rs->domain_id = 1;
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_remote_shutdown, HV_BUF_GVA), -EPERM);
	rs->domain_id = 7;
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_remote_shutdown, HV_BUF_GVA), -EPERM);
	rs->domain_id = DOMID_IO;
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_remote_shutdown, HV_BUF_GVA), -ESRCH);
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_remote_shutdown, HV_HOLE_GVA), -EFAULT);
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_pin_override, HV_BUF_GVA), -EPERM);
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_poll, HV_HOLE_GVA), -EFAULT); /* poll: hv_evtchn_time.c */
	CU_ASSERT_EQUAL(SCHED(&t, SCHEDOP_watchdog, HV_BUF_GVA), -ENOSYS);
	CU_ASSERT_EQUAL(SCHED(&t, 8, HV_BUF_GVA), -ENOSYS);
	CU_ASSERT_EQUAL(SCHED(&t, -1, HV_BUF_GVA), -ENOSYS);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_sched_op_compat, SCHEDOP_yield, 0, 0, 0, 0),
			-ENOSYS);
	CU_ASSERT_EQUAL(t.f->shutdowns, 0);
	CU_ASSERT_EQUAL(t.f->yields, 1);
	fake_domain_destroy(t.f);
}

static const CU_TestInfo hv_handler_tests[] = {
    {"xen_version: version and strings", test_version_strings},
    {"xen_version: platform, features, handle", test_version_params},
    {"xen_version: bad pointers, denied and unknown", test_version_errors},
    {"console_io", test_console},
    {"sched_op: shutdown, every reason", test_sched_shutdown},
    {"sched_op: shutdown_code", test_sched_shutdown_code},
    {"sched_op: yield, block, privileged and unknown", test_sched_other},
    CU_TEST_INFO_NULL,
};

int main(void)
{
	return hv_test_main("xen_version, console_io, sched_op", hv_handler_tests);
}
