/* lamina-blkback, the daemon: one process serving every vbd of every domain — the store watches
 * and xenbus handshake come from the back-end framework; this is the vbd type and its grants. */
#ifndef LAMINA_BLKD_H
#define LAMINA_BLKD_H

#include <stdint.h>

#include "be_dev.h"
#include "blkback.h"
#include "xs_client.h"


/* Grant mapping through lamina-hv (ctl_gnt_map): the domain's RAM descriptors are kept after the
 * first map so later maps only carry the page offsets. */
struct blkd_gnt {
	struct ctl_conn *conn;
	struct ctl_evtchn *ch;
	int fd[2]; /* read-only, read-write; -1 until received */
};
extern const struct blk_grant_ops blkd_gnt_ops;
void blkd_gnt_release(struct blkd_gnt *g);
/* Map n (<= 16) ring pages contiguously, read-write. *addr is munmap'd by blkd_ring_unmap. */
int blkd_ring_map(struct blkd_gnt *g, uint32_t domid, const grant_ref_t *refs, unsigned n, void **addr,
		  uint32_t *handles);
void blkd_ring_unmap(struct blkd_gnt *g, void *addr, const uint32_t *handles, unsigned n);

/* One vbd: the framework's device first, then what the block engine needs. */
struct blkd_vbd {
	struct be_dev base;
	struct be_watch w_evtchn, w_io;
	struct blk_image img;
	struct blk_dev *dev;
	void *ring;
	unsigned ring_pages;
	uint32_t ring_handles[1u << LAMINA_RING_MAX_ORDER];
	struct ctl_evtchn ch;
	struct blkd_gnt gnt;
	uint64_t stats_ns;   /* last stats file write */
	uint64_t stats_seen; /* requests counted at that write */
};

/* --no-persistent, --no-batching and --no-inline (be_daemon.off bits); --no-poll is the framework's. */
#define BLKD_NO_PERSISTENT 1u
#define BLKD_NO_BATCHING 2u
#define BLKD_NO_INLINE 4u
enum blkd_tag { BLKD_T_EVTCHN = 1, BLKD_T_IO };

/* blk_daemon.c: the vbd device type the back-end framework drives. */
extern const struct be_type_ops blkd_type;
/* Write DIR/blkback/<domid>-<devid>.{json,txt} for `domctl stat` when counters moved. */
void blkd_stats_write(struct be_daemon *d, struct blkd_vbd *v, int force);

#endif
