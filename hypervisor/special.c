/* The special region: LAMINA_SPECIAL_COUNT hypervisor-allocated pages (console ring, xenstore
 * ring) in a small memfd of their own, placed right after guest RAM (reserved in the memory
 * map), named to the guest by HVM params with an unbound port each for Domain-0 to bind. The
 * memfd, never guest RAM, is what LAMINA_CTL_MAP_SPECIAL hands out. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hc_handlers.h"

#include <xen/io/console.h>

_Static_assert(sizeof(struct xencons_interface) <= GMEM_PAGE_SIZE, "console ring fits a page");
_Static_assert(offsetof(struct xencons_interface, out_prod) == 3084, "out_prod at 3084");

static const struct special_param {
	uint32_t pfn, evtchn;
} special_params[LAMINA_SPECIAL_COUNT] = {
    [LAMINA_SPECIAL_CONSOLE] = {HVM_PARAM_CONSOLE_PFN, HVM_PARAM_CONSOLE_EVTCHN},
    [LAMINA_SPECIAL_XENSTORE] = {HVM_PARAM_STORE_PFN, HVM_PARAM_STORE_EVTCHN},
};

/* The region is mapped in the daemon right after guest RAM, so one KVM memory slot covers
 * both (vm_create sizes slot 0 as RAM + region): each extra slot costs a memory-slot update on
 * the create path, which is milliseconds under load (measured). RAM's mapping moves once, before
 * the VM exists. */
static int special_place(struct domain *d, size_t size)
{
	uint64_t ram = d->mem.ram_size;
	uint8_t *base, *p;

	base = mmap(NULL, ram + size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return -errno;
	p = mmap(base, ram, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED, d->mem.memfd, 0);
	if (p == MAP_FAILED)
		goto out_unmap;
	p = mmap(base + ram, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, d->special_fd, 0);
	if (p == MAP_FAILED)
		goto out_unmap;
	munmap(d->mem.ram, ram);
	d->mem.ram = base;
	d->special = base + ram;
	return 0;

out_unmap:
	munmap(base, ram + size);
	return -errno;
}

int special_init(struct domain *d)
{
	size_t size = LAMINA_SPECIAL_COUNT * GMEM_PAGE_SIZE;
	unsigned i;
	int rc;

	d->special_gfn = d->mem.ram_size / GMEM_PAGE_SIZE;
	if (d->mem.memfd < 0 || !d->mem.ram)
		return -EINVAL;
	if (d->special_fd >= 0 && d->special == d->mem.ram + d->mem.ram_size)
		goto out_params; /* built ahead with the RAM (the runner's mem_take) */
	d->special_fd = memfd_create("lamina-special", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (d->special_fd < 0)
		return -errno;
	if (ftruncate(d->special_fd, (off_t)size) < 0 ||
	    fcntl(d->special_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	rc = special_place(d, size);
	if (rc)
		return rc;
out_params:
	for (i = 0; i < LAMINA_SPECIAL_COUNT; i++) {
		uint32_t port = 0;

		rc = gmem_add_extra(&d->mem, d->special_gfn + i, d->special + i * GMEM_PAGE_SIZE);
		if (rc == 0 && d->evw)
			rc = evtchn_alloc_unbound(d, 0, &port);
		if (rc)
			return rc;
		d->special_port[i] = port;
		hc_hvm_param_set_toolstack(d, special_params[i].pfn, d->special_gfn + i);
		hc_hvm_param_set_toolstack(d, special_params[i].evtchn, port);
	}
	return 0;
}

void special_fini(struct domain *d)
{
	if (d->special)
		munmap(d->special, LAMINA_SPECIAL_COUNT * GMEM_PAGE_SIZE);
	if (d->special_fd >= 0)
		close(d->special_fd);
	d->special = NULL;
	d->special_fd = -1;
}

/* The guest's producer index is read once and only the difference since the last look is
 * counted (32-bit wrap-around arithmetic); a scribbled index can only inflate a counter. */
void domain_console_ring_account(struct domain *d)
{
	struct xencons_interface *c;
	uint32_t prod;

	if (!d->special)
		return;
	c = (struct xencons_interface *)(d->special + LAMINA_SPECIAL_CONSOLE * GMEM_PAGE_SIZE);
	prod = __atomic_load_n(&c->out_prod, __ATOMIC_ACQUIRE);
	pthread_mutex_lock(&d->console_lock);
	if (prod != d->console_prod_seen) {
		atomic_fetch_add(&d->console_bytes, (uint32_t)(prod - d->console_prod_seen));
		d->console_prod_seen = prod;
	}
	pthread_mutex_unlock(&d->console_lock);
}
