/* Guest-to-guest grant maps. A PVH (auto-translated) mapper names the guest-physical frame where
 * the granted page must appear (host_addr); Lamina only accepts frames outside everything the
 * mapper already has there (RAM, special pages, shared_info, grant frames, the APIC window, other
 * maps), so a map never takes a frame away from its owner. The grant is checked and pinned as a
 * Domain-0 map's is; the page is mapped from the granter's memfd (kept alive by that mapping) and
 * handed to the runner as a one-page slot, read-only for read-only maps. */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "gnt_map.h"

static struct gnt_maptrack *gnt_map_track(struct domain *d)
{
	struct gnt_maptrack *mt = __atomic_load_n(&d->maptrack, __ATOMIC_ACQUIRE), *exp = NULL;

	if (mt)
		return mt;
	mt = calloc(1, sizeof(*mt));
	if (!mt)
		return NULL;
	pthread_mutex_init(&mt->lock, NULL);
	/* Two vCPUs may race to create it: one wins, the other frees its copy. */
	if (!__atomic_compare_exchange_n(&d->maptrack, &exp, mt, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		pthread_mutex_destroy(&mt->lock);
		free(mt);
		return exp;
	}
	return mt;
}

/* How many maps d may hold: GNT_MAP_MAX, lowered by its own table's maptrack limit. */
static unsigned gnt_map_limit(struct domain *d)
{
	struct grant_table *own = d->gnt;
	unsigned lim = GNT_MAP_MAX;

	if (own) {
		pthread_mutex_lock(&own->lock);
		if (own->max_maptrack < lim)
			lim = own->max_maptrack;
		pthread_mutex_unlock(&own->lock);
	}
	return lim;
}

/* gfn is free in d's guest-physical space for a map. Caller holds mt->lock. */
static bool gnt_map_gfn_free(struct domain *d, struct gnt_maptrack *mt, uint64_t gfn)
{
	bool taken;

	if (gfn < d->mem.ram_size / GMEM_PAGE_SIZE || gfn >= GNT_MAP_GFN_LIMIT)
		return false;
	if (gfn >= GNT_MAP_HOLE_FIRST && gfn < GNT_MAP_HOLE_END)
		return false;
	pthread_mutex_lock(&d->lock);
	taken = gmem_gpa_ptr(&d->mem, gfn * GMEM_PAGE_SIZE, GMEM_PAGE_SIZE) != NULL;
	pthread_mutex_unlock(&d->lock);
	if (taken)
		return false;
	for (unsigned i = 0; i < GNT_MAP_MAX; i++)
		if (mt->e[i].used && mt->e[i].gfn == gfn)
			return false;
	return true;
}

/* The granted page as the daemon's own shared mapping of the granter's RAM memfd, taken under the
 * table lock so that a domain being destroyed cannot close the memfd in between. */
static int gnt_map_page(struct grant_table *t, uint64_t gfn, bool ro, void **page)
{
	int st = GNTST_okay;
	void *p;

	pthread_mutex_lock(&t->lock);
	if (t->dead || t->memfd < 0 || gfn >= t->ram_size / GMEM_PAGE_SIZE) {
		st = GNTST_bad_domain;
		goto out_unlock;
	}
	p = mmap(NULL, GMEM_PAGE_SIZE, ro ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, t->memfd,
		 (off_t)(gfn * GMEM_PAGE_SIZE));
	if (p == MAP_FAILED)
		st = GNTST_general_error;
	else
		*page = p;
out_unlock:
	pthread_mutex_unlock(&t->lock);
	return st;
}

static uint32_t gnt_map_free_handle(struct gnt_maptrack *mt, unsigned limit)
{
	if (mt->nr_used >= limit)
		return UINT32_MAX;
	for (uint32_t h = 0; h < limit; h++)
		if (!mt->e[h].used)
			return h;
	return UINT32_MAX;
}

int gnt_map_grant(struct domain *d, const struct gnttab_map_grant_ref *op, uint32_t *handle,
		  uint64_t *dev_bus_addr)
{
	bool ro = op->flags & GNTMAP_readonly;
	uint64_t gfn = op->host_addr / GMEM_PAGE_SIZE, src_gfn;
	struct gnt_maptrack *mt;
	struct grant_table *t;
	void *page = NULL;
	uint32_t h;
	int st;

	*handle = UINT32_MAX;
	*dev_bus_addr = 0;
	if (!(op->flags & (GNTMAP_device_map | GNTMAP_host_map)))
		return GNTST_bad_gntref;
	/* As Xen for an auto-translated mapper: only a plain host map, optionally read-only (device
	 * maps, PTE-based and application maps are PV-only there). */
	if ((op->flags & ~GNTMAP_readonly) != GNTMAP_host_map)
		return GNTST_general_error;
	if (op->dom >= DOMID_FIRST_RESERVED)
		return GNTST_bad_domain;
	if (op->host_addr % GMEM_PAGE_SIZE)
		return GNTST_bad_virt_addr;
	mt = gnt_map_track(d);
	if (!mt)
		return GNTST_no_space;
	t = gnttab_lookup(d, op->dom);
	if (!t)
		return GNTST_bad_domain;
	pthread_mutex_lock(&mt->lock);
	h = gnt_map_free_handle(mt, gnt_map_limit(d));
	if (h == UINT32_MAX) {
		st = GNTST_no_space;
		goto out_unlock;
	}
	if (!gnt_map_gfn_free(d, mt, gfn)) {
		st = GNTST_bad_virt_addr;
		goto out_unlock;
	}
	st = gnttab_pin(t, op->ref, (uint16_t)d->domid, ro, true, &src_gfn);
	if (st != GNTST_okay)
		goto out_unlock;
	st = gnt_map_page(t, src_gfn, ro, &page);
	if (st != GNTST_okay)
		goto out_unpin;
	if (d->ops->map_foreign(d, h, gfn, page, ro) < 0) {
		st = GNTST_general_error;
		goto out_munmap;
	}
	mt->e[h] = (struct gnt_map_entry){
	    .t = t, .page = page, .gfn = gfn, .ref = op->ref, .granter = op->dom, .ro = ro, .used = true};
	mt->nr_used++;
	mt->maps_total++;
	*handle = h;
	pthread_mutex_unlock(&mt->lock);
	return GNTST_okay; /* the lookup's reference now belongs to the entry */

out_munmap:
	munmap(page, GMEM_PAGE_SIZE);
out_unpin:
	gnttab_unpin(t, op->ref, ro);
out_unlock:
	pthread_mutex_unlock(&mt->lock);
	gnttab_put(t);
	return st;
}

/* Drops what entry h holds: pin (the granter's flags clear with its last use), page, reference.
 * Caller holds mt->lock and has removed the slot (or the VM is gone). */
static void gnt_map_release(struct gnt_maptrack *mt, uint32_t h)
{
	struct gnt_map_entry *e = &mt->e[h];

	munmap(e->page, GMEM_PAGE_SIZE);
	gnttab_unpin(e->t, e->ref, e->ro);
	gnttab_put(e->t);
	*e = (struct gnt_map_entry){.used = false};
	mt->nr_used--;
	mt->unmaps_total++;
}

int gnt_map_unmap(struct domain *d, uint32_t handle, uint64_t host_addr)
{
	struct gnt_maptrack *mt = __atomic_load_n(&d->maptrack, __ATOMIC_ACQUIRE);
	struct gnt_map_entry *e;
	int st = GNTST_okay;

	if (!mt || handle >= GNT_MAP_MAX)
		return GNTST_bad_handle;
	pthread_mutex_lock(&mt->lock);
	e = &mt->e[handle];
	if (!e->used) {
		st = GNTST_bad_handle;
		goto out_unlock;
	}
	/* As Xen's p2m unmap: the frame given must be the one the handle maps. */
	if (host_addr / GMEM_PAGE_SIZE != e->gfn) {
		st = GNTST_general_error;
		goto out_unlock;
	}
	/* The slot goes first: the page must never be released while the guest can still reach it. */
	if (d->ops->map_foreign(d, handle, e->gfn, NULL, e->ro) < 0) {
		st = GNTST_general_error;
		goto out_unlock;
	}
	gnt_map_release(mt, handle);
out_unlock:
	pthread_mutex_unlock(&mt->lock);
	return st;
}

unsigned gnt_map_count(struct domain *d)
{
	struct gnt_maptrack *mt = __atomic_load_n(&d->maptrack, __ATOMIC_ACQUIRE);
	unsigned n;

	if (!mt)
		return 0;
	pthread_mutex_lock(&mt->lock);
	n = mt->nr_used;
	pthread_mutex_unlock(&mt->lock);
	return n;
}

void gnt_map_domain_fini(struct domain *d)
{
	struct gnt_maptrack *mt = d->maptrack;

	if (!mt)
		return;
	pthread_mutex_lock(&mt->lock);
	for (uint32_t h = 0; h < GNT_MAP_MAX; h++)
		if (mt->e[h].used)
			gnt_map_release(mt, h);
	pthread_mutex_unlock(&mt->lock);
	pthread_mutex_destroy(&mt->lock);
	d->maptrack = NULL;
	free(mt);
}
