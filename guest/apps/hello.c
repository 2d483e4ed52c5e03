/* app=hello: a greeting with what the guest knows about itself, then a clean power-off. */
#include "apps.h"
#include "../kernel/hypercall.h"

void app_hello(struct kernel *k, struct app_result *res)
{
	xen_extraversion_t extra;
	domid_t self = DOMID_SELF;
	unsigned int vcpus = 0, online = 0;
	long ver, pages;
	int rc;

	ver = HYPERVISOR_xen_version(XENVER_version, NULL);
	memset(extra, 0, sizeof(extra));
	if (HYPERVISOR_xen_version(XENVER_extraversion, extra) < 0)
		lib_snprintf(extra, sizeof(extra), "?");
	extra[sizeof(extra) - 1] = '\0';
	pages = HYPERVISOR_memory_op(XENMEM_current_reservation, &self);
	rc = app_count_vcpus(k, &vcpus, &online);

	/* Reservation first: the memory map leaves out pages the hypervisor reserved. */
	uint64_t kib = pages > 0 ? (uint64_t)pages * (GUEST_PAGE_SIZE / 1024) : k->ram_bytes / 1024;
	if (k->domid_known)
		kprintf(k, "Hello from Lamina! This is domain %u: %lu KiB, ", k->domid, kib);
	else
		kprintf(k, "Hello from Lamina! This is domain (unknown id): %lu KiB, ", kib);
	kprintf(k, "%u vCPU%s, ring %d, Xen %ld.%ld%s\n", vcpus, vcpus == 1 ? "" : "s", k->ring,
		ver >= 0 ? ver >> 16 : 0, ver >= 0 ? ver & 0xffff : 0, extra);
	if (k->domid_known)
		kprintf(k, "  domain id:   %u\n", k->domid);
	else
		kprintf(k, "  domain id:   unknown (CPUID leaf 4 has no domid)\n");
	kprintf(k, "  memory:      %lu KiB (memory map), %ld KiB (current reservation)\n",
		k->ram_bytes / 1024, pages < 0 ? pages : pages * 4);
	if (rc == 0)
		kprintf(k, "  vcpus:       %u (%u online)\n", vcpus, online);
	else
		kprintf(k, "  vcpus:       unknown (%s)\n", lib_errno_name(rc));
	kprintf(k, "  ring:        %d\n", k->ring);
	if (ver >= 0)
		kprintf(k, "  xen version: %ld.%ld%s\n", ver >> 16, ver & 0xffff, extra);
	kprintf(k, "  command line: %s\n", k->cmdline);
	kprintf(k, "  boot:        %lu us from the PVH entry to C, %lu us to this line\n",
		time_tsc_to_ns(&k->time, k->tsc_main - k->boot->tsc_entry) / 1000,
		time_tsc_to_ns(&k->time, time_rdtsc() - k->boot->tsc_entry) / 1000);
	if (ver < 0)
		app_set(res, APP_FAILURE, "xen_version failed: %ld", ver);
}
