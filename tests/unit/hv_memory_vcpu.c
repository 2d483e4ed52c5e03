/* memory_op, hvm_op and vcpu_op: good and bad arguments, other domains' ids, the HVM parameter
 * access table and write-once parameters, vcpu_info registration rules. */
#include "hv_test.h"

#include <xen/memory.h>

#define MEM(t, cmd, ptr) fake_hypercall((t)->v, __HYPERVISOR_memory_op, (cmd), (ptr), 0, 0, 0)
#define HVM(t, op, ptr) fake_hypercall((t)->v, __HYPERVISOR_hvm_op, (op), (ptr), 0, 0, 0)
#define VCPU(t, cmd, id, ptr) fake_hypercall((t)->v, __HYPERVISOR_vcpu_op, (cmd), (id), (ptr), 0, 0)

static void test_memory_map(void)
{
	struct hv_fixture t;
	struct xen_memory_map *map;
	struct hc_e820_entry *e;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	t.d->memmap[1] = (struct hvm_memmap_table_entry){.addr = 0xfc000000, .size = 0x1000, .type = 2};
	t.d->nr_memmap = 2;
	map = hv_buf(&t, 0);
	e = hv_buf(&t, 0x100);
	map->nr_entries = 8;
	map->buffer.p = (void *)(uintptr_t)(HV_BUF_GVA + 0x100);
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_memory_map, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(map->nr_entries, 2);
	CU_ASSERT_EQUAL(e[0].addr, 0);
	CU_ASSERT_EQUAL(e[0].size, HV_RAM);
	CU_ASSERT_EQUAL(e[0].type, 1);
	CU_ASSERT_EQUAL(e[1].addr, 0xfc000000);
	CU_ASSERT_EQUAL(e[1].type, 2);
	/* a short buffer gets what fits, as Xen does */
	memset(e, 0, 64);
	map->nr_entries = 1;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_memory_map, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(map->nr_entries, 1);
	CU_ASSERT_EQUAL(e[0].size, HV_RAM);
	CU_ASSERT_EQUAL(e[1].size, 0);
	map->nr_entries = 0;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_memory_map, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(map->nr_entries, 0);
	/* bad pointers */
	map->nr_entries = 8;
	map->buffer.p = (void *)(uintptr_t)HV_HOLE_GVA;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_memory_map, HV_BUF_GVA), -EFAULT);
	map->buffer.p = NULL;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_memory_map, HV_BUF_GVA), -EFAULT);
	map->buffer.p = (void *)(uintptr_t)(HV_BUF_GVA + 0x100);
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_memory_map, HV_RO_GVA), -EFAULT); /* can't store count */
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_memory_map, HV_HOLE_GVA), -EFAULT);
	t.d->nr_memmap = 0;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_memory_map, HV_BUF_GVA), -ENOSYS);
	fake_domain_destroy(t.f);
}

static void test_reservation(void)
{
	struct hv_fixture t;
	struct xen_memory_domain *md;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	t.d->cur_pages = 1000;
	t.d->max_pages = 2000;
	md = hv_buf(&t, 0);
	md->domid = DOMID_SELF;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_current_reservation, HV_BUF_GVA), 1000);
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_maximum_reservation, HV_BUF_GVA), 2000);
	md->domid = (domid_t)t.d->domid;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_current_reservation, HV_BUF_GVA), 1000);
	md->domid = 0;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_current_reservation, HV_BUF_GVA), -EPERM);
	md->domid = 5;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_maximum_reservation, HV_BUF_GVA), -EPERM);
	md->domid = DOMID_XEN;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_maximum_reservation, HV_BUF_GVA), -ESRCH);
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_current_reservation, HV_HOLE_GVA), -EFAULT);
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_current_reservation, 0), -EFAULT);
	fake_domain_destroy(t.f);
}

static void test_add_to_physmap(void)
{
	struct hv_fixture t;
	struct xen_add_to_physmap *x;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	x = hv_buf(&t, 0);
	memset(x, 0, sizeof(*x));
	x->domid = DOMID_SELF;
	x->space = XENMAPSPACE_shared_info;
	x->idx = 0;
	x->gpfn = 0x100;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_add_to_physmap, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(t.d->shared_info_gfn, 0x100);
	CU_ASSERT_PTR_EQUAL(t.d->shared_info, fake_ram(t.f, 0x100000));
	x->idx = 1;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_add_to_physmap, HV_BUF_GVA), -EINVAL);
	x->idx = 0;
	x->gpfn = 1ull << 40;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_add_to_physmap, HV_BUF_GVA), -EINVAL);
	x->gpfn = 0x101;
	x->space = XENMAPSPACE_grant_table;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_add_to_physmap, HV_BUF_GVA), -EINVAL);
	x->space = XENMAPSPACE_gmfn;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_add_to_physmap, HV_BUF_GVA), -ENOSYS);
	x->space = XENMAPSPACE_gmfn_range;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_add_to_physmap, HV_BUF_GVA), -ENOSYS);
	x->space = XENMAPSPACE_gmfn_foreign;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_add_to_physmap, HV_BUF_GVA), -ENOSYS);
	x->space = XENMAPSPACE_dev_mmio;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_add_to_physmap, HV_BUF_GVA), -EINVAL);
	x->space = 0xffffffffu;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_add_to_physmap, HV_BUF_GVA), -EINVAL);
	x->space = XENMAPSPACE_shared_info;
	x->domid = 3;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_add_to_physmap, HV_BUF_GVA), -EPERM);
	x->domid = DOMID_SELF;
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_add_to_physmap | (1ull << 40), HV_BUF_GVA), -EDOM);
	CU_ASSERT_EQUAL(MEM(&t, XENMEM_add_to_physmap, HV_HOLE_GVA), -EFAULT);
	CU_ASSERT_EQUAL(t.d->shared_info_gfn, 0x100);
	fake_domain_destroy(t.f);
}

static void test_memory_unknown(void)
{
	static const unsigned ops[] = {XENMEM_increase_reservation,
				       XENMEM_decrease_reservation,
				       XENMEM_populate_physmap,
				       XENMEM_exchange,
				       XENMEM_maximum_ram_page,
				       XENMEM_machine_memory_map,
				       XENMEM_machphys_mapping,
				       XENMEM_maximum_gpfn,
				       XENMEM_add_to_physmap_batch,
				       XENMEM_acquire_resource,
				       63};
	struct hv_fixture t;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		CU_ASSERT_EQUAL(MEM(&t, ops[i], HV_BUF_GVA), -ENOSYS);
	fake_domain_destroy(t.f);
}

static void test_hvm_params(void)
{
	struct hv_fixture t;
	struct xen_hvm_param *p;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	p = hv_buf(&t, 0);
	p->domid = DOMID_SELF;
	p->index = HVM_PARAM_CALLBACK_IRQ;
	p->value = (2ull << 56) | 0xf3;
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_set_param, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(t.d->hvm_params[HVM_PARAM_CALLBACK_IRQ], (2ull << 56) | 0xf3);
	p->value = 0;
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_get_param, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(p->value, (2ull << 56) | 0xf3);
	/* toolstack-owned parameters: readable, never writable by the guest */
	CU_ASSERT_EQUAL(hc_hvm_param_set_toolstack(t.d, HVM_PARAM_STORE_PFN, 0xfeffe), 0);
	p->index = HVM_PARAM_STORE_PFN;
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_get_param, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(p->value, 0xfeffe);
	p->value = 1;
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_set_param, HV_BUF_GVA), -EPERM);
	CU_ASSERT_EQUAL(t.d->hvm_params[HVM_PARAM_STORE_PFN], 0xfeffe);
	p->index = HVM_PARAM_CONSOLE_EVTCHN;
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_set_param, HV_BUF_GVA), -EPERM);
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_get_param, HV_BUF_GVA), 0);
	/* neither readable nor writable */
	p->index = HVM_PARAM_IDENT_PT;
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_get_param, HV_BUF_GVA), -EPERM);
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_set_param, HV_BUF_GVA), -EPERM);
	p->index = 4; /* a deprecated parameter */
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_set_param, HV_BUF_GVA), -EPERM);
	/* bounds, domains, pointers */
	p->index = HVM_NR_PARAMS;
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_get_param, HV_BUF_GVA), -EINVAL);
	p->index = 0xffffffffu;
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_set_param, HV_BUF_GVA), -EINVAL);
	p->index = HVM_PARAM_CALLBACK_IRQ;
	p->domid = 0;
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_get_param, HV_BUF_GVA), -EPERM);
	p->domid = DOMID_IO;
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_set_param, HV_BUF_GVA), -ESRCH);
	p->domid = (domid_t)t.d->domid;
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_get_param, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_get_param, HV_RO_GVA), -EFAULT);
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_get_param, HV_HOLE_GVA), -EFAULT);
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_set_param, 0), -EFAULT);
	/* other operations and huge op numbers */
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_flush_tlbs, 0), -ENOSYS);
	CU_ASSERT_EQUAL(HVM(&t, HVMOP_set_evtchn_upcall_vector, HV_BUF_GVA), -ENOSYS);
	CU_ASSERT_EQUAL(HVM(&t, (1ull << 32) | HVMOP_get_param, HV_BUF_GVA), -ENOSYS);
	fake_domain_destroy(t.f);
}

static void test_hvm_write_once(void)
{
	struct hv_fixture t;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 1) == 0);
	CU_ASSERT_EQUAL(hc_hvm_param_set_toolstack(t.d, HVM_PARAM_VIRIDIAN, 1), 0);
	CU_ASSERT_EQUAL(hc_hvm_param_set_toolstack(t.d, HVM_PARAM_VIRIDIAN, 1), 0);
	CU_ASSERT_EQUAL(hc_hvm_param_set_toolstack(t.d, HVM_PARAM_VIRIDIAN, 2), -EEXIST);
	CU_ASSERT_EQUAL(t.d->hvm_params[HVM_PARAM_VIRIDIAN], 1);
	CU_ASSERT_EQUAL(hc_hvm_param_set_toolstack(t.d, HVM_PARAM_STORE_EVTCHN, 3), 0);
	CU_ASSERT_EQUAL(hc_hvm_param_set_toolstack(t.d, HVM_PARAM_STORE_EVTCHN, 4), 0);
	CU_ASSERT_EQUAL(hc_hvm_param_set_toolstack(t.d, HVM_NR_PARAMS, 4), -EINVAL);
	fake_domain_destroy(t.f);
}

static void test_vcpu_basic(void)
{
	struct hv_fixture t;
	struct vcpu_runstate_info *r;
	uint64_t now;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 3) == 0);
	t.d->vcpu[1]->online = false;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_is_up, 0, 0), 1);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_is_up, 1, 0), 0);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_is_up, 2, 0), 1);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_is_up, 3, 0), -ENOENT);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_is_up, 0xffffffffu, 0), -ENOENT);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_is_up, LAMINA_MAX_VCPUS, 0), -ENOENT);
	/* runstate: 1 ms blocked, then running since 2 ms ago (the domain booted 10 s ago) */
	t.d->boot_mono_ns -= 10000000000ull;
	now = domain_now_ns(t.d);
	t.d->vcpu[2]->runstate.state = RUNSTATE_running;
	t.d->vcpu[2]->runstate.state_entry_time = now - 2000000;
	t.d->vcpu[2]->runstate.time[RUNSTATE_blocked] = 1000000;
	r = hv_buf(&t, 0);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_get_runstate_info, 2, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(r->state, RUNSTATE_running);
	CU_ASSERT_EQUAL(r->time[RUNSTATE_blocked], 1000000);
	CU_ASSERT(r->time[RUNSTATE_running] >= 2000000 && r->time[RUNSTATE_running] < 1000000000);
	CU_ASSERT(r->state_entry_time >= now);
	CU_ASSERT_EQUAL(t.d->vcpu[2]->runstate.time[RUNSTATE_running], 0); /* a snapshot only */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_get_runstate_info, 2, HV_HOLE_GVA), -EFAULT);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_get_runstate_info, 2, HV_RO_GVA), -EFAULT);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_get_runstate_info, 9, HV_BUF_GVA), -ENOENT);
	/* commands Lamina does not offer: -ENOSYS before the vCPU id is looked at */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_get_physid, 0, HV_BUF_GVA), -ENOSYS);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_register_runstate_memory_area, 0, HV_BUF_GVA), -ENOSYS);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_send_nmi, 9, 0), -ENOSYS);
	CU_ASSERT_EQUAL(VCPU(&t, 0x7fffffff, 0, 0), -ENOSYS);
	fake_domain_destroy(t.f);
}

static void test_vcpu_register_info(void)
{
	struct hv_fixture t;
	struct vcpu_register_vcpu_info *ri;
	struct vcpu_info *old, *now;

	CU_ASSERT_FATAL(hv_fixture_init(&t, 3) == 0);
	ri = hv_buf(&t, 0);
	old = t.v->info;
	CU_ASSERT_PTR_EQUAL(old, &t.d->shared_info->vcpu_info[0]);
	old->evtchn_upcall_mask = 1;
	old->arch.cr2 = 0x1234;
	ri->mfn = 0x150;
	ri->offset = GMEM_PAGE_SIZE - sizeof(struct vcpu_info) + 1;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_register_vcpu_info, 0, HV_BUF_GVA), -EINVAL);
	ri->offset = 0xffffffffu;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_register_vcpu_info, 0, HV_BUF_GVA), -EINVAL);
	ri->offset = 0x40;
	ri->mfn = HV_RAM / GMEM_PAGE_SIZE; /* first frame past RAM */
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_register_vcpu_info, 0, HV_BUF_GVA), -EINVAL);
	ri->mfn = UINT64_MAX;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_register_vcpu_info, 0, HV_BUF_GVA), -EINVAL);
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_register_vcpu_info, 0, HV_HOLE_GVA), -EFAULT);
	CU_ASSERT_PTR_EQUAL(t.v->info, old);
	/* another vCPU that is up may not be moved by this one */
	ri->mfn = 0x151;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_register_vcpu_info, 1, HV_BUF_GVA), -EINVAL);
	ri->mfn = 0x150;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_register_vcpu_info, 0, HV_BUF_GVA), 0);
	now = fake_ram(t.f, 0x150040);
	CU_ASSERT_PTR_EQUAL(t.v->info, now);
	CU_ASSERT_EQUAL(t.v->info_gpa, 0x150040);
	CU_ASSERT_EQUAL(now->evtchn_upcall_mask, 1);
	CU_ASSERT_EQUAL(now->arch.cr2, 0x1234);
	CU_ASSERT_EQUAL(now->evtchn_upcall_pending, 1);
	CU_ASSERT_EQUAL(now->evtchn_pending_sel, ~(xen_ulong_t)0);
	CU_ASSERT_EQUAL(now->time.version % 2, 0);
	CU_ASSERT(now->time.version > 0 && now->time.tsc_to_system_mul != 0);
	/* once only */
	ri->mfn = 0x160;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_register_vcpu_info, 0, HV_BUF_GVA), -EINVAL);
	CU_ASSERT_PTR_EQUAL(t.v->info, now);
	/* a vCPU that is down may be registered by another */
	t.d->vcpu[2]->online = false;
	CU_ASSERT_EQUAL(VCPU(&t, VCPUOP_register_vcpu_info, 2, HV_BUF_GVA), 0);
	CU_ASSERT_EQUAL(t.d->vcpu[2]->info_gpa, 0x160040);
	fake_domain_destroy(t.f);
}

static const CU_TestInfo hv_memory_vcpu_tests[] = {
    {"memory_op: memory_map", test_memory_map},
    {"memory_op: current/maximum reservation", test_reservation},
    {"memory_op: add_to_physmap", test_add_to_physmap},
    {"memory_op: everything else -ENOSYS", test_memory_unknown},
    {"hvm_op: parameter access table", test_hvm_params},
    {"hvm_op: write-once parameters", test_hvm_write_once},
    {"vcpu_op: is_up, runstate, unknown", test_vcpu_basic},
    {"vcpu_op: register_vcpu_info", test_vcpu_register_info},
    CU_TEST_INFO_NULL,
};

int main(void)
{
	return hv_test_main("memory_op, hvm_op, vcpu_op", hv_memory_vcpu_tests);
}
