/* lamina-blkback, the daemon: one process serving every vbd of every domain — the store watches
 * and xenbus handshake per device, the Domain-0 grant and event-channel plumbing, the main loop. */
#ifndef LAMINA_BLKD_H
#define LAMINA_BLKD_H

#include <stdint.h>

#include "backend.h"
#include "blkback.h"
#include "xs_client.h"

#define BLKD_PATH_MAX 128
#define BLKD_SWEEP_MS 250
/* Store paths, as Xen's toolstack lays them out. */
#define BLKD_BACKEND_ROOT "/local/domain/0/backend/vbd"

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

/* What an epoll event points at. */
enum blkd_watch_kind { BLKD_W_SIGNAL, BLKD_W_CTL, BLKD_W_STORE, BLKD_W_EVTCHN, BLKD_W_IO };
struct blkd_watch {
	enum blkd_watch_kind kind;
	struct blkd_vbd *v;
};

struct blkd_vbd {
	struct blkd_vbd *next;
	struct blkd_watch w_evtchn, w_io;
	uint32_t domid, devid;
	char be[BLKD_PATH_MAX], fe[BLKD_PATH_MAX];
	int be_state;
	struct blk_image img;
	struct blk_dev *dev;
	void *ring;
	unsigned ring_pages;
	uint32_t ring_handles[1u << LAMINA_RING_MAX_ORDER];
	struct ctl_evtchn ch;
	struct blkd_gnt gnt;
	int dead;	    /* removed: freed after the current loop iteration */
	uint64_t stats_ns;  /* last stats file write */
	uint64_t stats_seen; /* requests counted at that write */
};

struct blkd {
	const char *rundir;
	struct be_ctl ctl;
	struct xs_client *xs;
	int epfd, sigfd;
	int persistent, batching;
	int stop;
	struct blkd_vbd *vbds;
	struct blkd_watch w_signal, w_ctl, w_store;
	uint64_t last_sweep_ns;
};

/* blk_xenbus.c: a watch fired under the backend tree or a front-end's state node. */
void blkd_xenbus_event(struct blkd *b, const char *path);
/* Front-end kicked, or I/O completed: serve the device. */
void blkd_vbd_service(struct blkd *b, struct blkd_vbd *v);
/* Disconnect and forget every vbd of domid (the domain went away). */
void blkd_drop_domain(struct blkd *b, uint32_t domid);
/* The domain rebooted in place: disconnect its vbds and offer them again (InitWait). */
void blkd_restart_domain(struct blkd *b, uint32_t domid);
void blkd_drop_all(struct blkd *b);
/* Free vbds marked dead. */
void blkd_reap(struct blkd *b);
/* Write DIR/blkback/<domid>-<devid>.{json,txt} for `domctl stat` when counters moved. */
void blkd_stats_write(struct blkd *b, struct blkd_vbd *v, int force);

#endif
