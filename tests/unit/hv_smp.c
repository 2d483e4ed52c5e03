/* Secondary vCPUs against the fake runner: VCPUOP_initialise (both modes, every refusal), up,
 * down (the last one powers off), is_up, a new state for a vCPU taken down, and hypercalls made
 * by two vCPUs at once (no state shared between callers). */
#include <pthread.h>

#include "hv_test.h"

#include <xen/hvm/hvm_vcpu.h>
#include <xen/sched.h>

#define VCPU_FROM(t, v, cmd, id, ptr) fake_hypercall((v), __HYPERVISOR_vcpu_op, (cmd), (id), (ptr), 0, 0)
#define VCPU(t, cmd, id, ptr) VCPU_FROM(t, (t)->v, cmd, id, ptr)

#define SMP_CR0 0x80010033ull /* PG WP NE ET MP PE */
#define SMP_CR4 0x620ull      /* PAE OSFXSR OSXMMEXCPT */
#define SMP_LME 0x100ull
#define SMP_LMA 0x400ull

static struct vcpu_hvm_context *ctx64(struct hv_fixture *t)
{
	struct vcpu_hvm_context *c = hv_buf(t, 0);

	memset(c, 0, sizeof(*c));
	c->mode = VCPU_HVM_MODE_64B;
	c->cpu_regs.x86_64.rip = 0x101000;
	c->cpu_regs.x86_64.rsp = 0x180000;
	c->cpu_regs.x86_64.rdi = 0x1234;
	c->cpu_regs.x86_64.rflags = 0x2;
	c->cpu_regs.x86_64.cr0 = SMP_CR0;
	c->cpu_regs.x86_64.cr3 = 0x3000;
	c->cpu_regs.x86_64.cr4 = SMP_CR4;
	c->cpu_regs.x86_64.efer = SMP_LME;
	return c;
}

/* Flat 32-bit protected mode, paging off, as a PVH-style AP entry. */
static struct vcpu_hvm_context *ctx32(struct hv_fixture *t)
{
	struct vcpu_hvm_context *c = hv_buf(t, 0);
	struct vcpu_hvm_x86_32 *r = &c->cpu_regs.x86_32;

	memset(c, 0, sizeof(*c));
	c->mode = VCPU_HVM_MODE_32B;
	r->eip = 0x100000;
	r->esp = 0x9000;
	r->ebx = 0x5000;
	r->eflags = 0x2;
	r->cr0 = 0x11; /* PE ET */
	r->cs_limit = r->ds_limit = r->ss_limit = r->es_limit = 0xffffffffu;
	r->cs_ar = 0xc9b; /* code, present, 32-bit, 4 KiB granules */
	r->ds_ar = r->ss_ar = r->es_ar = 0xc93;
	r->tr_limit = 0x67;
	r->tr_ar = 0x8b;
	return c;
}

/* The fixture's vCPU 1 as a secondary vCPU not yet brought up. */
static void make_down(struct hv_fixture *t, unsigned id)
{
	t->d->vcpu[id]->online = false;
	t->d->vcpu[id]->initialised = false;
	t->d->vcpu[id]->runstate.state = RUNSTATE_offline;
}

static void test_initialise_64(void)
{
	struct hv_fixture t;
	struct vcpu_hvm_context *c;
	struct vcpu *v1;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 3) == 0);
	make_down(&t, 1);
	v1 = t.d->vcpu[1];
	c = ctx64(&t);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 0, HV_BUF_GVA), -EEXIST); /* up */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 2, HV_BUF_GVA), -EEXIST);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 3, HV_BUF_GVA), -ENOENT);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 0xffffffffu, HV_BUF_GVA), -ENOENT);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_HOLE_GVA), -EFAULT);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, 0), -EFAULT);
	c->mode = 2;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c->mode = 0xffffffffu;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	/* each field the 64-bit mode needs, broken in turn */
	c = ctx64(&t);
	c->cpu_regs.x86_64.cr0 &= ~0x80000000ull;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx64(&t);
	c->cpu_regs.x86_64.cr4 = 0;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx64(&t);
	c->cpu_regs.x86_64.efer = 0;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx64(&t);
	c->cpu_regs.x86_64.efer |= 0x1000; /* reserved */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx64(&t);
	c->cpu_regs.x86_64.cr4 |= 1ull << 40;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx64(&t);
	c->cpu_regs.x86_64.cr0 |= 1ull << 32;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx64(&t);
	c->cpu_regs.x86_64.rip = 0x0000800000000000ull; /* not canonical */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx64(&t);
	c->cpu_regs.x86_64.cr3 = HV_RAM; /* first frame past RAM */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx64(&t);
	c->cpu_regs.x86_64.rflags |= 0x20000; /* virtual-8086 */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx64(&t);
	c->cpu_regs.x86_64.rflags |= 1ull << 32;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	CU_ASSERT_FALSE(v1->initialised);
	CU_ASSERT_FALSE(v1->start_pending);

	/* a good one: flat long-mode segments, LMA implied, bit 1 of rflags forced */
	c = ctx64(&t);
	c->cpu_regs.x86_64.rip = 0xffffffff80001000ull; /* canonical, upper half */
	c->cpu_regs.x86_64.rflags = 0;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), 0);
	CU_ASSERT_TRUE(v1->initialised);
	CU_ASSERT_TRUE(v1->start_pending);
	CU_ASSERT_FALSE(v1->online);
	CU_ASSERT_EQUAL(v1->start.rip, 0xffffffff80001000ull);
	CU_ASSERT_EQUAL(v1->start.gpr[VCPU_RSP], 0x180000);
	CU_ASSERT_EQUAL(v1->start.gpr[VCPU_RDI], 0x1234);
	CU_ASSERT_EQUAL(v1->start.rflags, 0x2);
	CU_ASSERT_EQUAL(v1->start.cr3, 0x3000);
	CU_ASSERT_EQUAL(v1->start.efer, SMP_LME | SMP_LMA);
	CU_ASSERT_EQUAL(v1->start.cs.ar, 0xa9b);
	CU_ASSERT_EQUAL(v1->start.ss.ar, 0xc93);
	CU_ASSERT_EQUAL(v1->start.tr.ar, 0x8b);
	CU_ASSERT_EQUAL(v1->start.tr.limit, 0x67);
	/* initialised but not up: a new state replaces it */
	c->cpu_regs.x86_64.rip = 0x102000;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(v1->start.rip, 0x102000);
	CU_ASSERT_EQUAL(t.f->vcpu_ups, 0); /* nothing runs before VCPUOP_up */
	fake_domain_destroy(t.f);
}

static void test_initialise_32(void)
{
	struct hv_fixture t;
	struct vcpu_hvm_context *c;
	struct vcpu *v1;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 2) == 0);
	make_down(&t, 1);
	v1 = t.d->vcpu[1];
	c = ctx32(&t);
	c->cpu_regs.x86_32.cs_ar = 0xc93; /* data, not code */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx32(&t);
	c->cpu_regs.x86_32.cs_ar = 0xc1b; /* not present */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx32(&t);
	c->cpu_regs.x86_32.ss_ar = 0xc91; /* read-only data */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx32(&t);
	c->cpu_regs.x86_32.ds_ar = 0x1c93; /* unused bits */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx32(&t);
	c->cpu_regs.x86_32.tr_ar = 0x9b; /* a code segment as TR */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx32(&t);
	c->cpu_regs.x86_32.cs_ar = 0xa9b; /* 64-bit code belongs to VCPU_HVM_MODE_64B */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx32(&t);
	c->cpu_regs.x86_32.cr0 = 0x10; /* real mode */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	c = ctx32(&t);
	c->cpu_regs.x86_32.efer = SMP_LMA; /* long mode active without LME and paging */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EINVAL);
	CU_ASSERT_FALSE(v1->initialised);
	/* a data segment that is not present is allowed (a null DS) */
	c = ctx32(&t);
	c->cpu_regs.x86_32.es_ar = 0;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(v1->start.rip, 0x100000);
	CU_ASSERT_EQUAL(v1->start.gpr[VCPU_RBX], 0x5000);
	CU_ASSERT_EQUAL(v1->start.gpr[VCPU_RSP], 0x9000);
	CU_ASSERT_EQUAL(v1->start.cs.ar, 0xc9b);
	CU_ASSERT_EQUAL(v1->start.cs.limit, 0xffffffffu);
	CU_ASSERT_EQUAL(v1->start.es.ar, 0);
	CU_ASSERT_EQUAL(v1->start.efer, 0);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_up, 1, 0), 0);
	CU_ASSERT_TRUE(t.f->last_start_loaded);
	CU_ASSERT_EQUAL(t.f->last_start.cs.ar, 0xc9b);
	fake_domain_destroy(t.f);
}

static void test_up_down(void)
{
	struct hv_fixture t;
	struct vcpu *v1;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 2) == 0);
	make_down(&t, 1);
	v1 = t.d->vcpu[1];
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_is_up, 1, 0), 0);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_up, 1, 0), -EINVAL); /* not initialised */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_up, 2, 0), -ENOENT);
	CU_ASSERT_EQUAL(t.f->vcpu_ups, 0);
	ctx64(&t);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), 0);
	/* the runner refuses (domain stopping): still down */
	t.f->vcpu_up_rc = -ESRCH;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_up, 1, 0), -ESRCH);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_is_up, 1, 0), 0);
	t.f->vcpu_up_rc = 0;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_up, 1, 0), 0);
	CU_ASSERT_EQUAL(t.f->vcpu_ups, 1);
	CU_ASSERT_PTR_EQUAL(t.f->last_vcpu_up, v1);
	CU_ASSERT_TRUE(t.f->last_start_loaded);
	CU_ASSERT_EQUAL(t.f->last_start.rip, 0x101000);
	CU_ASSERT_FALSE(v1->start_pending);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_is_up, 1, 0), 1);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), -EEXIST);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_up, 1, 0), 0); /* already up: nothing to do */
	CU_ASSERT_EQUAL(t.f->vcpu_ups, 1);
	/* down by itself (the caller is vCPU 1) */
	CU_ASSERT_EQUAL(VCPU_FROM(&t, v1, VCPUOP_down, 1, 0), 0);
	CU_ASSERT_EQUAL(t.f->vcpu_downs, 1);
	CU_ASSERT_PTR_EQUAL(t.f->last_vcpu_down, v1);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_is_up, 1, 0), 0);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_down, 1, 0), 0); /* already down */
	CU_ASSERT_EQUAL(t.f->vcpu_downs, 1);
	CU_ASSERT_EQUAL(t.f->shutdowns, 0);
	/* up again resumes it: no new state */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_up, 1, 0), 0);
	CU_ASSERT_EQUAL(t.f->vcpu_ups, 2);
	CU_ASSERT_FALSE(t.f->last_start_loaded);
	/* down by another vCPU, then a new state while down: the next up loads it */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_down, 1, 0), 0);
	CU_ASSERT_EQUAL(t.f->vcpu_downs, 2);
	ctx64(&t)->cpu_regs.x86_64.rip = 0x103000;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_initialise, 1, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_up, 1, 0), 0);
	CU_ASSERT_TRUE(t.f->last_start_loaded);
	CU_ASSERT_EQUAL(t.f->last_start.rip, 0x103000);
	fake_domain_destroy(t.f);
}

/* As in Xen: the last vCPU going down powers the domain off, and stays up. */
static void test_last_down(void)
{
	struct hv_fixture t;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 2) == 0);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_down, 1, 0), 0);
	CU_ASSERT_EQUAL(t.f->shutdowns, 0);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_down, 0, 0), 0);
	CU_ASSERT_EQUAL(t.f->shutdowns, 1);
	CU_ASSERT_EQUAL(t.f->last_shutdown_reason, SHUTDOWN_poweroff);
	CU_ASSERT_EQUAL(t.f->vcpu_downs, 1);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_is_up, 0, 0), 1);
	fake_domain_destroy(t.f);
}

/* Two vCPUs' threads making hypercalls at once: per-vCPU counters, results in each caller's own
 * buffer, a multicall on one while the other is inside its own. */
struct smp_caller {
	struct hv_fixture *t;
	struct vcpu *v;
	uint64_t off; /* its buffer inside the fixture's */
	unsigned bad;
};

#define SMP_CALLS 20000u

static void *smp_caller_main(void *arg)
{
	struct smp_caller *c = arg;
	struct vcpu_runstate_info *r = hv_buf(c->t, c->off);

	for (unsigned i = 0; i < SMP_CALLS; i++) {
		r->state = -1;
		if (VCPU_FROM(c->t, c->v, VCPUOP_get_runstate_info, c->v->id, HV_BUF_GVA + c->off) != 0 ||
		    r->state != RUNSTATE_running)
			c->bad++;
		if (VCPU_FROM(c->t, c->v, VCPUOP_is_up, c->v->id, 0) != 1)
			c->bad++;
	}
	return NULL;
}

static void test_two_callers(void)
{
	struct hv_fixture t;
	struct smp_caller c[2];
	pthread_t th[2];
	struct multicall_entry *e;
	uint64_t before;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 2) == 0);
	before = t.d->hc_count[__HYPERVISOR_vcpu_op];
	for (unsigned i = 0; i < 2; i++) {
		c[i] = (struct smp_caller){&t, t.d->vcpu[i], 0x1000 * (i + 1), 0};
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, smp_caller_main, &c[i]) == 0);
	}
	for (unsigned i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CU_ASSERT_EQUAL(c[0].bad, 0);
	CU_ASSERT_EQUAL(c[1].bad, 0);
	CU_ASSERT_EQUAL(atomic_load(&t.d->vcpu[0]->hypercalls), 2 * SMP_CALLS);
	CU_ASSERT_EQUAL(atomic_load(&t.d->vcpu[1]->hypercalls), 2 * SMP_CALLS);
	CU_ASSERT_EQUAL(t.d->hc_count[__HYPERVISOR_vcpu_op] - before, 4 * SMP_CALLS);
	/* vCPU 0 inside a multicall does not stop vCPU 1's */
	t.d->vcpu[0]->in_multicall = true;
	e = hv_buf(&t, 0);
	memset(e, 0, sizeof(*e));
	e->op = __HYPERVISOR_vcpu_op;
	e->args[0] = VCPUOP_is_up;
	e->args[1] = 1;
	CU_ASSERT_EQUAL(fake_hypercall(t.d->vcpu[1], __HYPERVISOR_multicall, HV_BUF_GVA, 1, 0, 0, 0), 0);
	CU_ASSERT_EQUAL((long)e->result, 1);
	CU_ASSERT_EQUAL(fake_hypercall(t.d->vcpu[0], __HYPERVISOR_multicall, HV_BUF_GVA, 1, 0, 0, 0), -EINVAL);
	t.d->vcpu[0]->in_multicall = false;
	fake_domain_destroy(t.f);
}

static const CU_TestInfo hv_smp_tests[] = {
    {"VCPUOP_initialise: 64-bit mode, every refusal", test_initialise_64},
    {"VCPUOP_initialise: 32-bit mode segments", test_initialise_32},
    {"VCPUOP_up / down / is_up, again after down", test_up_down},
    {"VCPUOP_down of the last vCPU powers off", test_last_down},
    {"hypercalls from two vCPUs at once", test_two_callers},
    CU_TEST_INFO_NULL,
};

int main(void)
{
	return hv_test_main("secondary vCPUs", hv_smp_tests);
}
