/* Grant table, guest side: frames the hypervisor owns, placed in our physical space, and entries
 * we write while the hypervisor sets and clears GTF_reading/GTF_writing on them. Flags are only
 * ever changed with one atomic operation, never by a plain store racing the hypervisor's. */
#include "gnttab.h"
#include "kernel.h"

int gnttab_init(struct gnttab *g, unsigned int nr_frames)
{
	struct gnttab_query_size qs = {.dom = DOMID_SELF};
	long rc;

	memset(g, 0, sizeof(*g));
	if (nr_frames == 0 || nr_frames > GNTTAB_MAX_FRAMES)
		return -XEN_EINVAL;
	rc = HYPERVISOR_grant_table_op(GNTTABOP_query_size, &qs, 1);
	if (rc < 0)
		return (int)rc;
	if (qs.status != GNTST_okay)
		return -XEN_EIO;
	g->max_frames = qs.max_nr_frames;
	if (nr_frames > qs.max_nr_frames)
		return -XEN_ENOSPC;
	for (unsigned int i = 0; i < nr_frames; i++) {
		struct xen_add_to_physmap x = {
		    .domid = DOMID_SELF,
		    .space = XENMAPSPACE_grant_table,
		    .idx = i,
		    .gpfn = GNTTAB_GFN_BASE + i,
		};

		rc = HYPERVISOR_memory_op(XENMEM_add_to_physmap, &x);
		if (rc < 0)
			return (int)rc;
	}
	g->table = (volatile grant_entry_v1_t *)(uintptr_t)(GNTTAB_GFN_BASE << 12);
	g->nr_frames = nr_frames;
	for (uint32_t r = nr_frames * GNTTAB_PER_FRAME; r-- > GNTTAB_FIRST_FREE;)
		g->free[g->nr_free++] = r;
	g->ready = true;
	return 0;
}

int gnttab_claim(struct gnttab *g, grant_ref_t *ref)
{
	if (!g->ready || g->nr_free == 0)
		return -XEN_ENOSPC;
	*ref = g->free[--g->nr_free];
	return 0;
}

void gnttab_release(struct gnttab *g, grant_ref_t ref)
{
	if (ref >= GNTTAB_FIRST_FREE && ref < g->nr_frames * GNTTAB_PER_FRAME && g->nr_free < GNTTAB_MAX_REFS)
		g->free[g->nr_free++] = ref;
}

void gnttab_grant_access(struct gnttab *g, grant_ref_t ref, domid_t domid, uint64_t gfn, bool readonly)
{
	volatile grant_entry_v1_t *e = &g->table[ref];

	e->frame = (uint32_t)gfn;
	e->domid = domid;
	/* The hypervisor reads frame and domid only after it sees the flags. */
	__atomic_store_n(&e->flags, (uint16_t)(GTF_permit_access | (readonly ? GTF_readonly : 0)),
			 __ATOMIC_RELEASE);
}

uint16_t gnttab_flags(const struct gnttab *g, grant_ref_t ref)
{
	return __atomic_load_n(&g->table[ref].flags, __ATOMIC_ACQUIRE);
}

bool gnttab_in_use(const struct gnttab *g, grant_ref_t ref)
{
	return gnttab_flags(g, ref) & (GTF_reading | GTF_writing);
}

int gnttab_end_access(struct gnttab *g, grant_ref_t ref)
{
	uint16_t *flags = (uint16_t *)&g->table[ref].flags;
	uint16_t cur = __atomic_load_n(flags, __ATOMIC_ACQUIRE);

	do {
		if (cur & (GTF_reading | GTF_writing))
			return -XEN_EBUSY;
	} while (!__atomic_compare_exchange_n(flags, &cur, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	return 0;
}

int gnttab_map(domid_t domid, grant_ref_t ref, uint64_t gpa, bool readonly, int16_t *status,
	       grant_handle_t *handle)
{
	struct gnttab_map_grant_ref op = {
	    .host_addr = gpa,
	    .flags = GNTMAP_host_map | (readonly ? GNTMAP_readonly : 0),
	    .ref = ref,
	    .dom = domid,
	};
	long rc = HYPERVISOR_grant_table_op(GNTTABOP_map_grant_ref, &op, 1);

	if (rc < 0)
		return (int)rc;
	*status = op.status;
	*handle = op.handle;
	return 0;
}

int gnttab_unmap(grant_handle_t handle, uint64_t gpa, int16_t *status)
{
	struct gnttab_unmap_grant_ref op = {.host_addr = gpa, .handle = handle};
	long rc = HYPERVISOR_grant_table_op(GNTTABOP_unmap_grant_ref, &op, 1);

	if (rc < 0)
		return (int)rc;
	*status = op.status;
	return 0;
}
