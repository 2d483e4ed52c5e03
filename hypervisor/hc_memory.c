/* memory_op: the memory map the domain was built with, its reservation, and placing hypervisor
 * pages (shared_info) in its physical address space. Lamina never moves guest RAM frames. */
#include "grant_table.h"
#include "hc_handlers.h"

#include <xen/memory.h>

/* memory_op's command word: the low bits select the operation, the rest is a continuation
 * extent that only the batched operations use. */
#define HC_MEMOP_EXTENT_SHIFT 6
#define HC_MEMOP_CMD_MASK ((1u << HC_MEMOP_EXTENT_SHIFT) - 1)

_Static_assert(sizeof(struct xen_memory_domain) == 2, "xen_memory_domain is 2 bytes");
_Static_assert(sizeof(struct xen_memory_map) == 16, "xen_memory_map is 16 bytes");
_Static_assert(offsetof(struct xen_memory_map, buffer) == 8, "buffer at offset 8");
_Static_assert(sizeof(struct xen_add_to_physmap) == 24, "xen_add_to_physmap is 24 bytes");
_Static_assert(offsetof(struct xen_add_to_physmap, space) == 4, "space at offset 4");
_Static_assert(offsetof(struct xen_add_to_physmap, idx) == 8, "idx at offset 8");
_Static_assert(offsetof(struct xen_add_to_physmap, gpfn) == 16, "gpfn at offset 16");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm memmap entry is 24 bytes");

/* XENMEM_memory_map: as many entries as fit; nr_entries says how many were written. */
static long hc_memory_map(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct domain *d = v->d;
	struct hc_e820_entry e820[DOMAIN_MAX_MEMMAP];
	struct xen_memory_map map;
	unsigned n;
	int rc;

	if (d->nr_memmap == 0 || d->nr_memmap > DOMAIN_MAX_MEMMAP)
		return -ENOSYS;
	rc = hc_copy_in(v, &map, arg[1], sizeof(map));
	if (rc)
		return rc;
	n = map.nr_entries < d->nr_memmap ? map.nr_entries : d->nr_memmap;
	for (unsigned i = 0; i < n; i++) {
		e820[i].addr = d->memmap[i].addr;
		e820[i].size = d->memmap[i].size;
		e820[i].type = d->memmap[i].type;
	}
	if (n) {
		rc = hc_copy_out(v, (uint64_t)(uintptr_t)map.buffer.p, e820, n * sizeof(e820[0]));
		if (rc)
			return rc;
	}
	map.nr_entries = n;
	return hc_copy_out(v, arg[1], &map, sizeof(map));
}

/* XENMEM_current_reservation / XENMEM_maximum_reservation: pages, of the caller's own domain. */
static long hc_memory_reservation(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct xen_memory_domain md;
	int rc = hc_copy_in(v, &md, arg[1], sizeof(md));

	if (rc)
		return rc;
	if (!hc_domid_is_self(v->d, md.domid))
		return hc_domid_other_error(md.domid);
	if ((arg[0] & HC_MEMOP_CMD_MASK) == XENMEM_current_reservation)
		return (long)v->d->cur_pages;
	return (long)v->d->max_pages;
}

static long hc_physmap_shared_info(struct domain *d, const struct xen_add_to_physmap *x)
{
	if (x->idx != 0)
		return -EINVAL;
	return shared_info_place(d, x->gpfn);
}

/* Grant frame idx (the table grows to it) at gpfn; XENMAPIDX_grant_table_status is v2 only. */
static long hc_physmap_grant_table(struct domain *d, const struct xen_add_to_physmap *x)
{
	if (x->idx & XENMAPIDX_grant_table_status)
		return -EINVAL;
	return gnttab_place_frame(d, (unsigned)(x->idx > UINT32_MAX ? UINT32_MAX : x->idx), x->gpfn);
}

/* Moving guest RAM frames (gmfn, gmfn_range) is not something Lamina does. */
static long hc_physmap_unsupported(struct domain *d, const struct xen_add_to_physmap *x)
{
	return -ENOSYS;
}

struct hc_physmap_space {
	const char *name;
	long (*fn)(struct domain *d, const struct xen_add_to_physmap *x);
};

static const struct hc_physmap_space hc_physmap_spaces[] = {
    [XENMAPSPACE_shared_info] = {"shared_info", hc_physmap_shared_info},
    [XENMAPSPACE_grant_table] = {"grant_table", hc_physmap_grant_table},
    [XENMAPSPACE_gmfn] = {"gmfn", hc_physmap_unsupported},
    [XENMAPSPACE_gmfn_range] = {"gmfn_range", hc_physmap_unsupported},
    [XENMAPSPACE_gmfn_foreign] = {"gmfn_foreign", hc_physmap_unsupported},
};

static long hc_memory_add_to_physmap(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct xen_add_to_physmap x;
	int rc;

	if ((arg[0] >> HC_MEMOP_EXTENT_SHIFT) > UINT16_MAX)
		return -EDOM;
	rc = hc_copy_in(v, &x, arg[1], sizeof(x));
	if (rc)
		return rc;
	if (x.space == XENMAPSPACE_gmfn_foreign)
		return -ENOSYS; /* only add_to_physmap_batch may name a foreign frame */
	if (!hc_domid_is_self(v->d, x.domid))
		return hc_domid_other_error(x.domid);
	if (x.space >= sizeof(hc_physmap_spaces) / sizeof(hc_physmap_spaces[0]) ||
	    !hc_physmap_spaces[x.space].fn)
		return -EINVAL;
	return hc_physmap_spaces[x.space].fn(v->d, &x);
}

static const struct hc_subop hc_memory_ops[] = {
    [XENMEM_current_reservation] = {XENMEM_current_reservation, "current_reservation", hc_memory_reservation},
    [XENMEM_maximum_reservation] = {XENMEM_maximum_reservation, "maximum_reservation", hc_memory_reservation},
    [XENMEM_add_to_physmap] = {XENMEM_add_to_physmap, "add_to_physmap", hc_memory_add_to_physmap},
    [XENMEM_memory_map] = {XENMEM_memory_map, "memory_map", hc_memory_map},
};

/* memory_op(unsigned long cmd, void *arg) */
long hc_memory_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	const struct hc_subop *op =
	    hc_subop_find(hc_memory_ops, sizeof(hc_memory_ops) / sizeof(hc_memory_ops[0]),
			  (uint32_t)(arg[0] & HC_MEMOP_CMD_MASK));

	return op ? op->fn(v, arg) : -ENOSYS;
}
