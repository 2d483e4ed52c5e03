/* kernel_main: the first C code, already in ring 3. It validates what the boot path found,
 * fills the IDT, reads the start info, maps shared_info, starts the clock, brings up events,
 * timers and the console ring, and runs the app. */
#include "hypercall.h"
#include "kernel.h"
#include "traps.h"
#include "../apps/apps.h"

void kernel_main(uint64_t start_info_pa) __attribute__((noreturn));

static const char *const kernel_outcome_words[] = {
    [APP_SUCCESS] = "SUCCESS",
    [APP_SKIP] = "SKIP",
    [APP_ERROR] = "ERROR",
    [APP_FAILURE] = "FAILURE",
};

void kernel_idle(struct kernel *k)
{
	if (!k->ev.ready) {
		HYPERVISOR_sched_op(SCHEDOP_block, NULL);
		return;
	}
	bool was = events_disable(&k->ev);
	events_block(&k->ev);
	events_restore(&k->ev, was);
}

/* Events, then the timer VIRQ, then the console ring: each needs the one before. Without
 * hypervisor support for one of them the kernel carries on without it (console_io output). */
static void kernel_start_events(struct kernel *k)
{
	int rc = events_init(&k->ev, k->shared, k->vcpu_info, k->vcpu_id, k->ring);

	if (rc < 0)
		return;
	timer_init(&k->tm, &k->ev, &k->time);
	k->cring_rc = console_ring_init(&k->cring, &k->ev, &k->tm, &k->time, (uintptr_t)lamina_image_end);
	if (k->cring_rc == 0)
		console_attach_ring(&k->con, &k->cring);
}

void kernel_poweroff(struct kernel *k, unsigned int reason)
{
	console_flush(&k->con);
	if (k->con.ring)
		console_ring_drain(k->con.ring, CONSOLE_RING_DRAIN_NS);
	for (;;)
		hypercall_shutdown(reason);
}

static void kernel_identify(struct kernel *k)
{
	const struct boot_info *b = k->boot;

	k->xen_found = b->xen_base != 0;
	k->lamina_found =
	    b->lamina_sig[0] == LAMINA_CPUID_SIG_EBX && b->lamina_sig[1] == LAMINA_CPUID_SIG_ECX &&
	    b->lamina_sig[2] == LAMINA_CPUID_SIG_EDX && b->lamina_max_leaf >= LAMINA_CPUID_BASE + 1;
	k->null_port = LAMINA_PORT_NULL;
	k->domid_known = (b->hvm_flags & XEN_HVM_CPUID_DOMID_PRESENT) != 0;
	k->domid = k->domid_known ? b->domid : DOMID_SELF;
	k->vcpu_id = (b->hvm_flags & XEN_HVM_CPUID_VCPU_ID_PRESENT) ? b->vcpu_id : 0;
}

/* shared_info goes to a page of our own .bss (XENMAPSPACE_shared_info, idx 0). */
static void kernel_map_shared_info(struct kernel *k)
{
	struct xen_add_to_physmap xatp = {
	    .domid = DOMID_SELF,
	    .space = XENMAPSPACE_shared_info,
	    .idx = 0,
	    .gpfn = (uintptr_t)lamina_shared_info_page >> 12,
	};

	k->shared_map_rc = HYPERVISOR_memory_op(XENMEM_add_to_physmap, &xatp);
	k->shared = (volatile struct shared_info *)lamina_shared_info_page;
	unsigned int v = k->vcpu_id < XEN_LEGACY_MAX_VCPUS ? k->vcpu_id : 0;
	k->vcpu_info = &k->shared->vcpu_info[v];
	time_init(&k->time, k->shared, k->vcpu_info);
}

static const struct app *kernel_pick_app(struct kernel *k, struct app_result *res)
{
	char name[KERNEL_ARG_MAX];
	int rc = kernel_cmdline_get(k, "app", name, sizeof(name));
	const struct app *a;

	if (rc == -XEN_ENOENT) {
		lib_snprintf(name, sizeof(name), "hello");
	} else if (rc < 0) {
		app_set(res, APP_ERROR, "app name too long");
		return NULL;
	}
	a = app_find(name);
	if (!a)
		app_set(res, APP_ERROR, "unknown app '%s'", name);
	return a;
}

void kernel_main(uint64_t start_info_pa)
{
	struct kernel kern;
	struct kernel *k = &kern;
	struct app_result res = {.outcome = APP_SUCCESS, .reason = ""};
	uint64_t tsc_main = time_rdtsc();
	int rc;

	memset(k, 0, sizeof(*k));
	k->tsc_main = tsc_main;
	k->boot = &lamina_boot_info;
	traps_init();
	console_init(&k->con);
	kernel_identify(k);
	rc = start_info_load(k, start_info_pa);
	if (kernel_cmdline_has(k, "ring0"))
		traps_enter_ring0();
	k->ring = traps_current_ring();
	kernel_map_shared_info(k);
	k->boot_ns = time_now_ns(&k->time);
	if (k->shared_map_rc == 0)
		kernel_start_events(k);
	if (rc < 0) {
		kprintf(k, "lamina-guest: bad start info at 0x%lx: %s\n", start_info_pa, lib_errno_name(rc));
		kprintf(k, "Test result: ERROR: bad start info\n");
		kernel_poweroff(k, SHUTDOWN_crash);
	}
	if (!k->lamina_found)
		kprintf(k, "lamina-guest: no Lamina CPUID leaves; using port 0x%x for null exits\n",
			k->null_port);
	if (k->shared_map_rc < 0)
		kprintf(k, "lamina-guest: mapping shared_info failed: %ld\n", k->shared_map_rc);

	const struct app *a = kernel_pick_app(k, &res);
	if (a)
		a->run(k, &res);
	if (res.outcome == APP_SUCCESS)
		kprintf(k, "Test result: SUCCESS\n");
	else
		kprintf(k, "Test result: %s: %s\n", kernel_outcome_words[res.outcome], res.reason);
	kernel_poweroff(k, SHUTDOWN_poweroff);
}
