/* The guest's grant table (v1): frames placed with XENMAPSPACE_grant_table at GFNs of our choosing,
 * a free list of refs, granting a page to a domain and ending access only once it is unused. */
#ifndef GUEST_KERNEL_GNTTAB_H
#define GUEST_KERNEL_GNTTAB_H

#include <stdbool.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/grant_table.h>
#include "hypercall.h"

/* Frames placed from here up: inside the identity-mapped 4 GiB but above any RAM the toolstack
 * gives (RAM stays below 3 GiB), below the local APIC. */
#define GNTTAB_GFN_BASE 0xf0000ull
#define GNTTAB_MAX_FRAMES 4u
#define GNTTAB_PER_FRAME (GUEST_PAGE_SIZE / sizeof(grant_entry_v1_t))
#define GNTTAB_MAX_REFS (GNTTAB_MAX_FRAMES * GNTTAB_PER_FRAME)
/* Other domains' grants are mapped from here up (GNTTAB_MAP_SLOTS pages): above every grant frame
 * the hypervisor allows (64), inside the same identity-mapped window. */
#define GNTTAB_MAP_GFN_BASE 0xf0100ull
#define GNTTAB_MAP_SLOTS 256u
/* Refs 0-7 are the toolstack's (GNTTAB_RESERVED_CONSOLE, _XENSTORE); never handed out. */
#define GNTTAB_FIRST_FREE 8u

struct gnttab {
	volatile grant_entry_v1_t *table; /* nr_frames pages, contiguous GFNs */
	unsigned int nr_frames;
	unsigned int max_frames; /* what query_size said */
	uint32_t free[GNTTAB_MAX_REFS];
	unsigned int nr_free;
	bool ready;
};

static inline long HYPERVISOR_grant_table_op(unsigned int cmd, void *uop, unsigned int count)
{
	return hypercall_call(__HYPERVISOR_grant_table_op, cmd, HC_ARG(uop), count, 0, 0);
}

/* Places nr_frames frames at GNTTAB_GFN_BASE.. (add_to_physmap), after query_size. 0 or -errno. */
int gnttab_init(struct gnttab *g, unsigned int nr_frames);
/* A free ref (-ENOSPC when none) and its release (the entry must have ended access). */
int gnttab_claim(struct gnttab *g, grant_ref_t *ref);
void gnttab_release(struct gnttab *g, grant_ref_t ref);
/* Lets domid use the page at gfn through ref: frame and domid first, then the flags. */
void gnttab_grant_access(struct gnttab *g, grant_ref_t ref, domid_t domid, uint64_t gfn, bool readonly);
/* The entry's flags now (one read). */
uint16_t gnttab_flags(const struct gnttab *g, grant_ref_t ref);
/* GTF_reading or GTF_writing: someone is using the grant. */
bool gnttab_in_use(const struct gnttab *g, grant_ref_t ref);
/* Revokes the grant only if nobody uses it (Xen guests' cmpxchg loop): 0, or -EBUSY with the
 * entry unchanged. After 0 the page is ours again. */
int gnttab_end_access(struct gnttab *g, grant_ref_t ref);

/* Maps domid's grant ref at our guest-physical gpa (page-aligned, outside RAM), read-only or
 * writable. 0 with *status (GNTST_*) and, when it is GNTST_okay, *handle; or the hypercall's
 * -errno. */
int gnttab_map(domid_t domid, grant_ref_t ref, uint64_t gpa, bool readonly, int16_t *status,
	       grant_handle_t *handle);
/* Undoes a map by its handle (gpa: where it was mapped). 0 with *status, or -errno. */
int gnttab_unmap(grant_handle_t handle, uint64_t gpa, int16_t *status);

#endif
