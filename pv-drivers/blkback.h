/* The block back-end engine: one vbd's shared ring, its requests copied out and validated, served
 * from an image file through io_uring, with persistent grants, indirect segments and statistics. */
#ifndef LAMINA_BLKBACK_H
#define LAMINA_BLKBACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <lamina/ring.h>

#define BLK_SECTOR_SIZE 512u
#define BLK_SECTORS_PER_PAGE (LAMINA_RING_PAGE_SIZE / BLK_SECTOR_SIZE)
/* Indirect segments advertised (feature-max-indirect-segments): 1 MiB per request. */
#define BLK_MAX_INDIRECT_SEGS 256u
#define BLK_SEGS_PER_INDIRECT_PAGE (LAMINA_RING_PAGE_SIZE / sizeof(struct blkif_request_segment))
#define BLK_MAX_INDIRECT_PAGES                                                                               \
	((BLK_MAX_INDIRECT_SEGS + BLK_SEGS_PER_INDIRECT_PAGE - 1) / BLK_SEGS_PER_INDIRECT_PAGE)
/* Persistent grants kept per device; past this, grants are mapped per request (counted as misses). */
#define BLK_PGRANT_MAX 1024u

/* How the engine reaches the front-end: grant maps through the Domain-0 interface (or a fake in
 * tests) and the event channel. map fills pages[i] (NULL if refs[i] is not granted as asked) and
 * handles[i]; it returns 0 (per-entry failures are NULL pages) or -errno. */
struct blk_grant_ops {
	int (*map)(void *ctx, uint32_t domid, const grant_ref_t *refs, unsigned n, int writable, void **pages,
		   uint32_t *handles);
	void (*unmap)(void *ctx, void *const *pages, const uint32_t *handles, unsigned n);
	void (*notify)(void *ctx);
};

/* ---- blk_image.c: the backing file or block device ---- */

struct blk_image {
	int fd;
	int readonly;
	int is_blockdev;
	/* On tmpfs, ramfs or hugetlbfs: reads and writes are memory copies that do not block on a
	 * device, and this kernel's tmpfs refuses RWF_NOWAIT, so io_uring would hand every one of them
	 * to a worker thread. The engine serves them inline instead (docs/block.md). */
	int memory_backed;
	uint64_t sectors; /* of BLK_SECTOR_SIZE */
};

/* Open and lock path: a shared OFD lock for read-only, an exclusive one for read-write, so many
 * readers may share an image and a second writer is refused (-EBUSY). why says what failed. */
int blk_image_open(struct blk_image *img, const char *path, int readonly, char *why, size_t whylen);
void blk_image_close(struct blk_image *img);

/* ---- blk_req.c: a request copied from the ring, validated against the device ---- */

enum blk_kind { BLK_KIND_READ, BLK_KIND_WRITE, BLK_KIND_FLUSH, BLK_KIND_DISCARD, BLK_KIND_NR };

struct blk_req {
	uint64_t id;
	uint8_t operation; /* as the front-end wrote it, echoed in the response */
	enum blk_kind kind;
	uint64_t sector;
	uint64_t nr_sectors;			  /* read/write: sum over segments; discard: as asked */
	unsigned nr_segs;			  /* read/write */
	unsigned nr_indirect;			  /* indirect pages to map, 0 for direct requests */
	grant_ref_t indirect[BLK_MAX_INDIRECT_PAGES]; /* their refs */
	struct blkif_request_segment seg[BLK_MAX_INDIRECT_SEGS];
};

struct blk_limits {
	uint64_t sectors;
	int readonly;
	int indirect; /* indirect requests accepted */
	int discard;
};

/* Decode the private copy *r into *out. 0, or a BLKIF_RSP_* (< 0) to answer with; why says what
 * was wrong. Indirect requests are decoded up to their page refs: blk_req_check_segs runs once the
 * segments are copied out of the indirect pages. */
int blk_req_decode(const struct blkif_request *r, const struct blk_limits *lim, struct blk_req *out, char *why,
		   size_t whylen);
/* Check out->seg[0..nr_segs) and the sector range they cover; sets nr_sectors. 0 or BLKIF_RSP_ERROR. */
int blk_req_check_segs(struct blk_req *out, const struct blk_limits *lim, char *why, size_t whylen);
const char *blk_kind_name(enum blk_kind k);

/* ---- blk_pgrant.c: persistent grants ---- */

struct blk_pgrant_ent {
	grant_ref_t ref;
	uint32_t handle;
	void *page; /* NULL: free slot */
};

struct blk_pgrant {
	struct blk_pgrant_ent tab[2 * BLK_PGRANT_MAX]; /* open addressing, never deleted until reset */
	unsigned used;
};

/* The mapped page for ref, or NULL. */
void *blk_pgrant_find(const struct blk_pgrant *pg, grant_ref_t ref);
/* Remember a mapping; -ENOSPC when the cache is full (the caller unmaps it after the request). */
int blk_pgrant_add(struct blk_pgrant *pg, grant_ref_t ref, void *page, uint32_t handle);
/* Unmap everything (device close). */
void blk_pgrant_reset(struct blk_pgrant *pg, const struct blk_grant_ops *ops, void *ctx);

/* ---- blk_stats.c: per-device counters for `domctl stat` ---- */

#define BLK_BATCH_BUCKETS 7 /* 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64+ */

struct blk_stats {
	uint64_t reqs[BLK_KIND_NR];
	uint64_t indirect_reqs;
	uint64_t errors;
	uint64_t bytes_read, bytes_written;
	uint64_t batches, batch_hist[BLK_BATCH_BUCKETS];
	uint64_t notify_sent, notify_suppressed;
	uint64_t pgrant_hits, pgrant_misses;
	uint64_t inline_io; /* reads and writes served inline (memory-backed images), not via io_uring */
	uint64_t yields;    /* kicks that stopped at their budget to let other devices run */
	uint32_t inflight, inflight_max;
};

void blk_stats_batch(struct blk_stats *st, unsigned n);
/* Render as "key value" lines or as one JSON object; returns the length (snprintf-style). */
int blk_stats_format(const struct blk_stats *st, int json, char *buf, size_t len);

/* ---- blk_dev.c: one device's engine ---- */

struct blk_dev_config {
	uint32_t domid, devid;
	unsigned ring_order; /* the shared ring spans 2^ring_order pages */
	int persistent;	     /* both ends agreed on feature-persistent */
	int batching;	     /* submit and notify once per batch (off: once per request, for the bench) */
	int discard;
	int inline_io; /* serve reads and writes of memory-backed images inline (off: all via io_uring) */
};

struct blk_dev;

/* sring is the front-end's ring, already mapped (2^ring_order pages); img is taken over (closed
 * by blk_dev_close). 0 or -errno. */
int blk_dev_open(struct blk_dev **out, const struct blk_dev_config *cfg, void *sring, struct blk_image *img,
		 const struct blk_grant_ops *ops, void *ctx);
/* What blk_dev_kick left behind. */
enum blk_kick_result {
	BLK_KICK_IDLE = 0,    /* the ring is drained and req_event re-armed: the front-end notifies */
	BLK_KICK_MORE = 1,    /* stopped at the budget (four ring sizes): kick again next turn */
	BLK_KICK_DRAINED = 2, /* drained, req_event not re-armed (rearm 0): the caller polls */
};

/* Consume what the front-end queued and submit it, up to a budget of four ring sizes so the
 * caller's other devices get their turn. With rearm, a drained ring gets req_event re-armed (and is
 * checked once more); without, it is left so the front-end's pushes raise no notification while
 * the caller polls the ring. A blk_kick_result, or -EPROTO once the device is disconnected for a
 * broken ring (blk_dev_broken says why; the device stays inert until closed). */
int blk_dev_kick(struct blk_dev *d, int rearm);
/* Answer completed I/O; with wait, block for at least one completion if any is in flight. */
int blk_dev_reap(struct blk_dev *d, int wait);
/* Readable when completions are waiting (an eventfd registered with the io_uring). */
int blk_dev_event_fd(const struct blk_dev *d);
const char *blk_dev_broken(const struct blk_dev *d);
const struct blk_stats *blk_dev_stats(const struct blk_dev *d);
/* Wait for in-flight I/O, unmap all grants, close the image. */
void blk_dev_close(struct blk_dev *d);

#endif
