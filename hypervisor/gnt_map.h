/* Guest-to-guest grant maps (GNTTABOP_map_grant_ref / unmap_grant_ref from a PVH guest): the
 * mapping domain's maptrack table, the foreign frames it backs its chosen GFNs with, their lifetime. */
#ifndef LAMINA_HV_GNT_MAP_H
#define LAMINA_HV_GNT_MAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "grant_table.h"

/* Maps one domain may hold at once (and so the KVM slots it may use beyond RAM and extra pages).
 * The mapper's own table's max_maptrack lowers it further. Handles are 0 .. GNT_MAP_MAX-1. */
#define GNT_MAP_MAX 256u
/* Guest-physical frames no map may cover: the IOAPIC and local APIC MMIO (0xfec00000-0xffffffff). */
#define GNT_MAP_HOLE_FIRST 0xfec00ull
#define GNT_MAP_HOLE_END 0x100000ull
/* Guest-physical space a map may sit in (2^40 bytes, as the other extra pages). */
#define GNT_MAP_GFN_LIMIT ((1ull << 40) / GMEM_PAGE_SIZE)

/* One map: a pin on (t, ref), a reference on t and a shared mapping of the granted page from the
 * granting domain's RAM memfd, which keeps the page alive after that domain is gone. */
struct gnt_map_entry {
	struct grant_table *t;
	void *page;
	uint64_t gfn; /* where the mapper sees it */
	uint32_t ref;
	uint16_t granter;
	bool ro, used;
};

struct gnt_maptrack {
	pthread_mutex_t lock; /* entries; taken before any granter's table lock */
	unsigned nr_used;
	uint64_t maps_total, unmaps_total;
	struct gnt_map_entry e[GNT_MAP_MAX];
};

/* One map_grant_ref for d (an element copied out of the guest once): GNTST_okay with *handle and
 * *dev_bus_addr filled, or a GNTST_* error with nothing held. Any vCPU thread of d. */
int gnt_map_grant(struct domain *d, const struct gnttab_map_grant_ref *op, uint32_t *handle,
		  uint64_t *dev_bus_addr);
/* One unmap_grant_ref by handle; host_addr must name the frame the handle maps. GNTST_*. */
int gnt_map_unmap(struct domain *d, uint32_t handle, uint64_t host_addr);
/* Maps d holds now. */
unsigned gnt_map_count(struct domain *d);
/* Releases every map d still holds (its vCPUs have stopped; its VM, with the slots, may be gone):
 * unpins the granters' entries, clearing their in-use flags, and drops the foreign pages. */
void gnt_map_domain_fini(struct domain *d);

#endif
