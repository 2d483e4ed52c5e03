/* blkfront: the guest's virtual block device — the xenbus handshake with lamina-blkback, the shared
 * request ring, a pool of data pages (persistently granted when both ends agree) and I/O slots. */
#ifndef GUEST_DRIVERS_BLKFRONT_H
#define GUEST_DRIVERS_BLKFRONT_H

#include <stdbool.h>
#include <stdint.h>
#include <lamina/ring.h>
#include "../kernel/kernel.h"
#include "../kernel/gnttab.h"

#define BLKFRONT_SECTOR 512u
/* Data pages the apps fill; requests name pages of this pool. They sit in RAM from 4 MiB up (the
 * image and its start-info page stay below 2 MiB); indirect pages follow them, one per slot. */
#define BLKFRONT_POOL_BASE 0x400000ull
#define BLKFRONT_POOL_PAGES 512u
/* The ring spans 2^ring_order pages (ring-order=N on the command line, up to what the back-end
 * offers in max-ring-page-order): 32 requests in flight on one page, 128 on four. */
#define BLKFRONT_MAX_RING_ORDER 2u
#define BLKFRONT_MAX_RING_PAGES (1u << BLKFRONT_MAX_RING_ORDER)
#define BLKFRONT_SLOTS 128u /* the most requests in flight: a 4-page ring's */
#define BLKFRONT_MAX_SEGS 256u
#define BLKFRONT_SPIN_NS 100000ull /* poll the ring this long before blocking */
#define BLKFRONT_TIMEOUT_NS (5ull * 1000000000ull) /* a request unanswered this long fails */

struct blkfront_slot {
	bool busy, done;
	int16_t status;
	uint16_t first, npages; /* pool pages */
	uint64_t id_seq;	/* echoed id: slot index | sequence << 8 */
	uint64_t start_ns;
	grant_ref_t refs[BLKFRONT_MAX_SEGS]; /* per-request grants (non-persistent mode) */
	unsigned int nrefs;
	grant_ref_t ind_ref; /* this slot's indirect page */
};

struct blkfront {
	struct kernel *k;
	struct gnttab *gt;
	uint32_t devid;
	domid_t backend_id;
	char fe[64], be[96];
	struct blkif_front_ring ring;
	unsigned int ring_order, nr_slots; /* nr_slots: requests the ring holds */
	grant_ref_t ring_ref[BLKFRONT_MAX_RING_PAGES];
	evtchn_port_t port;
	/* what the back-end offered */
	uint64_t sectors;
	bool readonly, persistent, flush, discard;
	unsigned int max_indirect;
	/* pool: refs granted once when persistent */
	grant_ref_t pool_ref[BLKFRONT_POOL_PAGES];
	struct blkfront_slot slot[BLKFRONT_SLOTS];
	unsigned int inflight;
	uint64_t seq;
	bool connected, be_closing, dead;
	/* counters */
	uint64_t submitted, completed, errors, notifies, timeouts;
};

/* Handshake with the back-end of device devid (0: the first under device/vbd). want_persistent
 * false leaves feature-persistent off; want_order asks for a 2^want_order-page ring (granted up to
 * the back-end's max-ring-page-order and BLKFRONT_MAX_RING_ORDER). 0 or -errno (-XEN_ENOENT: no
 * such device). */
int blkfront_init(struct blkfront *bf, struct kernel *k, struct gnttab *gt, uint32_t devid, bool want_persistent,
		  unsigned int want_order);
/* The pool's page i, for the caller to fill or read. */
uint8_t *blkfront_page(const struct blkfront *bf, unsigned int i);
/* Queue a read or write of npages pages of the pool from first, at sector (4 KiB aligned pages:
 * 8 sectors each); BLKIF_OP_FLUSH_DISKCACHE and BLKIF_OP_DISCARD (npages: size in pages) too.
 * Returns the slot (>= 0) or -errno (-XEN_EBUSY: all slots in flight). Not pushed until
 * blkfront_kick. */
int blkfront_queue(struct blkfront *bf, uint8_t op, uint64_t sector, unsigned int first, unsigned int npages);
/* Queue req as it is, only its id replaced (tests of the back-end's checks). Slot or -errno. */
int blkfront_queue_raw(struct blkfront *bf, const struct blkif_request *req);
/* Publish queued requests, notifying the back-end if it asked. */
void blkfront_kick(struct blkfront *bf);
/* Collect responses; with block, waits (idle) until at least one completes, the timeout passes
 * (outstanding requests then fail with status BLKIF_RSP_ERROR) or nothing is in flight. Returns
 * how many completed. */
int blkfront_poll(struct blkfront *bf, bool block);
/* A completed slot's status (and frees the slot). */
int16_t blkfront_take(struct blkfront *bf, unsigned int slot);
/* One synchronous request: status, or -errno. */
int blkfront_sync(struct blkfront *bf, uint8_t op, uint64_t sector, unsigned int first, unsigned int npages);
/* Close: Closing, wait for the back-end, Closed; grants ended. */
void blkfront_close(struct blkfront *bf);

#endif
