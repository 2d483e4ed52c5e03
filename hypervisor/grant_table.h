/* Grant tables (Xen's v1): each domain's table of grant entries in hypervisor-owned frames the guest
 * maps, the pin state machine on those shared entries, copies through grants, and Domain-0 clients' maps. */
#ifndef LAMINA_HV_GRANT_TABLE_H
#define LAMINA_HV_GRANT_TABLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <xen/xen.h>
#include <xen/grant_table.h>

#include "domain.h"

_Static_assert(sizeof(grant_entry_v1_t) == 8, "grant_entry_v1 is 8 bytes");
_Static_assert(offsetof(grant_entry_v1_t, domid) == 2, "grant_entry_v1.domid at 2");
_Static_assert(offsetof(grant_entry_v1_t, frame) == 4, "grant_entry_v1.frame at 4");

#define GNT_ENTRIES_PER_FRAME (GMEM_PAGE_SIZE / sizeof(grant_entry_v1_t))
/* Defaults as Xen's: 32 grant frames (max_grant_frames) and 1024 maptrack frames of 256 entries
 * (Xen limits the mapping domain; here it limits Domain-0 maps of this domain's grants, and also
 * caps this domain's own maps of other guests' grants, gnt_map.c). */
#define GNT_DEFAULT_MAX_FRAMES 32u
#define GNT_DEFAULT_MAX_MAPTRACK (1024u * 256u)
/* Hard ceilings a toolstack may raise the limits to. */
#define GNT_LIMIT_FRAMES 64u
#define GNT_LIMIT_MAPTRACK (1u << 20)
/* Times a cmpxchg on a shared entry is retried before the guest is deemed to be racing us (Xen: 4). */
#define GNT_CMPXCHG_RETRIES 4

/* What the hypervisor knows of one entry while it is in use; the guest's entry is never trusted. */
struct gnt_active {
	uint32_t ro, rw; /* pins: read-only and writable uses */
	uint64_t gfn;	 /* frame read once at the first pin */
	uint16_t domid;	 /* the domain the first pin was for */
};

/* One domain's grant table. Refcounted: the domain holds one reference and every Domain-0 map entry
 * one more, so a table (and its pin accounting) outlives a destroyed domain until the last unmap. */
struct grant_table {
	pthread_mutex_t lock; /* frames growing, active entries, pins */
	pthread_cond_t idle;  /* signalled when copying drops to 0 */
	unsigned copying;     /* copies by other domains' vCPUs using ram outside the lock */
	atomic_uint refs;
	uint32_t domid;
	bool dead;    /* domain destroyed: ram is gone, only unpins remain */
	uint8_t *ram; /* borrowed from the domain's guest_mem while alive */
	uint64_t ram_size;
	int memfd;
	unsigned max_frames;   /* limit for this domain */
	unsigned max_maptrack; /* limit on Domain-0 maps of this table's grants at once */
	unsigned nr_maps;      /* Domain-0 maps now (control thread only) */
	_Atomic unsigned nr_frames;
	void *frames[GNT_LIMIT_FRAMES];	      /* page each, hypervisor-allocated */
	uint64_t frame_gfn[GNT_LIMIT_FRAMES]; /* where the guest placed it, UINT64_MAX if not */
	struct gnt_active *active[GNT_LIMIT_FRAMES];
	/* Counters for GNT_INFO and `domctl top`. */
	uint64_t pins_now;
	_Atomic uint64_t copies, copy_fail;
};

/* grant_table.c: lifetime and frames. init takes the domain's reference; fini marks the table dead,
 * waits for copies in flight from other domains and drops it (called before the domain's RAM goes).
 * gnttab_lookup: another domain's table, referenced (gnttab_put it), for a vCPU thread of d; NULL
 * when the domain does not exist or has no table. */
int gnttab_domain_init(struct domain *d);
void gnttab_domain_fini(struct domain *d);
struct grant_table *gnttab_lookup(struct domain *d, uint32_t domid);
void gnttab_get(struct grant_table *t);
void gnttab_put(struct grant_table *t);
/* Grow the table to nr frames (never shrinks); -ENOSPC past max_frames. */
int gnttab_grow(struct grant_table *t, unsigned nr);
/* XENMAPSPACE_grant_table: frame idx (growing the table to it) placed at gfn outside RAM. */
int gnttab_place_frame(struct domain *d, unsigned idx, uint64_t gfn);
int gnttab_set_limits(struct grant_table *t, unsigned max_frames, unsigned max_maptrack);
unsigned gnttab_nr_entries(struct grant_table *t);

/* grant_table.c: the pin state machine (Xen's v1 rules). Pin ref for a user domid (read-only or
 * writable; map: a mapping, which also refuses GTF_sub_page). GNTST_okay with *gfn the granted
 * frame (inside RAM), or a GNTST_* error with nothing held. unpin undoes one pin and clears
 * GTF_writing / GTF_reading on the shared entry when the last such use ends. */
int gnttab_pin(struct grant_table *t, uint32_t ref, uint16_t user, bool ro, bool map, uint64_t *gfn);
void gnttab_unpin(struct grant_table *t, uint32_t ref, bool ro);

/* One side of a copy: a grant ref of table t, or a frame of table t's own domain. */
struct gnt_copy_side {
	struct grant_table *t;
	bool is_ref;
	bool foreign; /* t is another domain's: the copy is counted in t->copying */
	uint64_t ref_or_gfn;
	uint16_t offset;
};
/* Copies len bytes between two sides for user domid: checks bounds (GNTST_bad_copy_arg), pins
 * what is a ref (source read-only, dest writable), copies, unpins. Returns a GNTST_* status. */
int gnttab_copy_one(struct gnt_copy_side *src, struct gnt_copy_side *dst, uint16_t len, uint16_t user);
/* One side that is a caller-provided host buffer (Domain-0's copy buffer). to_guest: buf -> grant. */
int gnttab_copy_buf(struct grant_table *t, uint32_t ref, uint16_t offset, uint16_t len, uint16_t user,
		    uint8_t *buf, bool to_guest);

/* A run of gnttab_copy_buf-like copies against one table t (NULL: every copy is GNTST_bad_domain)
 * under one hold of its lock: begin, any number of gnttab_copy_run_buf (same checks, pins and
 * statuses as gnttab_copy_buf), end. The lock is dropped and retaken every GNT_COPY_RUN_MAX
 * segments. Nothing else may take t->lock on this thread in between. */
#define GNT_COPY_RUN_MAX 64u
struct gnt_copy_run {
	struct grant_table *t;
	uint64_t ok, fail; /* added to t's counters at the end */
	unsigned held;	   /* segments since the lock was taken */
};
void gnttab_copy_run_begin(struct gnt_copy_run *run, struct grant_table *t);
int gnttab_copy_run_buf(struct gnt_copy_run *run, uint32_t ref, uint16_t offset, uint16_t len, uint16_t user,
			uint8_t *buf, bool to_guest);
void gnttab_copy_run_end(struct gnt_copy_run *run);

/* hc_grant.c: grant_table_op(cmd, uop, count). */
long hc_grant_table_op(struct vcpu *v, const uint64_t arg[5]);

/* ctl_grant.c: the LAMINA_CTL_GNT_* handlers (rows of ctl_ops.c's table; ctl_handler's shape) and
 * the hook that undoes a closing connection's maps. Run on the control thread only. */
struct ctl_server;
struct ctl_conn;
struct lamina_ctl_hdr;
#define GNT_CTL_HANDLER(name)                                                                                \
	int name(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h, const void *req,  \
		 void *out, size_t *out_len)
GNT_CTL_HANDLER(ctl_op_gnt_map);
GNT_CTL_HANDLER(ctl_op_gnt_unmap);
GNT_CTL_HANDLER(ctl_op_gnt_copy);
GNT_CTL_HANDLER(ctl_op_gnt_buffer);
GNT_CTL_HANDLER(ctl_op_gnt_foreign_map);
GNT_CTL_HANDLER(ctl_op_gnt_toolstack);
GNT_CTL_HANDLER(ctl_op_gnt_info);
GNT_CTL_HANDLER(ctl_op_gnt_set_limits);
void ctl_grant_conn_closed(struct ctl_server *s, struct ctl_conn *c);

#endif
