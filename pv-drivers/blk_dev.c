/* One virtual block device's engine: requests are copied off the shared ring, validated, their
 * grants mapped (persistently when negotiated) and submitted to io_uring in one batch; completions
 * become responses, published together with at most one notification per batch. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend.h"
#include "blkback.h"

#define BLK_SLOT_MAPS (BLK_MAX_INDIRECT_SEGS + BLK_MAX_INDIRECT_PAGES)
/* Memory-backed requests up to this size are served inline; larger ones go to io_uring, whose
 * workers copy them in parallel while this thread takes the next requests off the ring. */
#define BLK_INLINE_MAX_BYTES (64u << 10)
/* Requests one blk_dev_kick takes, in ring sizes: a front-end that refills its ring as fast as it
 * is answered would otherwise keep the daemon's loop on this device, and its other devices
 * waiting, for as long as it likes. */
#define BLK_KICK_BUDGET_RINGS 4u

/* One request in flight; its index in d->slots is the io_uring user_data. */
struct blk_slot {
	uint64_t id;
	uint8_t operation;
	enum blk_kind kind;
	uint64_t expect; /* bytes the operation must transfer (0: flush, discard) */
	unsigned nr_iov;
	struct iovec iov[BLK_MAX_INDIRECT_SEGS];
	unsigned nr_maps; /* mappings to undo at completion (not persistent) */
	void *maps[BLK_SLOT_MAPS];
	uint32_t handles[BLK_SLOT_MAPS];
};

struct blk_dev {
	struct blk_dev_config cfg;
	struct blk_image img;
	struct blk_limits lim;
	const struct blk_grant_ops *ops;
	void *ctx;
	struct blkif_back_ring ring;
	unsigned nr_ents;
	struct io_uring uring;
	int efd;
	struct blk_slot *slots;
	unsigned *free_slots, nr_free;
	unsigned pending_sqes; /* prepared, not yet submitted */
	struct blk_req scratch;
	struct blk_pgrant pgrant;
	struct blk_stats st;
	struct be_ratelimit rl;
	int notify_due; /* a response published since the last notification crossed rsp_event */
	int broken;
	char why[160];
};

static void blk_dev_disconnect(struct blk_dev *d, const char *why)
{
	if (d->broken)
		return;
	d->broken = 1;
	snprintf(d->why, sizeof(d->why), "%s", why);
	be_log("blkback: dom%u vbd %u disconnected: %s", d->cfg.domid, d->cfg.devid, why);
}

/* End of a batch (or, with batching off, of one request): one notification if any response
 * published since the last one crossed the front-end's rsp_event. */
static void blk_dev_notify(struct blk_dev *d)
{
	if (d->broken)
		return;
	if (lamina_ring_back_push(&d->ring) || d->notify_due) {
		d->ops->notify(d->ctx);
		d->st.notify_sent++;
	} else {
		d->st.notify_suppressed++;
	}
	d->notify_due = 0;
}

/* Responses are published as they are made, so a front-end polling its ring takes each one at
 * once and refills its slot while the batch goes on; whether to notify is decided by the batch. */
static void blk_dev_respond(struct blk_dev *d, uint64_t id, uint8_t op, int16_t status)
{
	if (status != BLKIF_RSP_OKAY)
		d->st.errors++;
	if (d->broken)
		return;
	lamina_blk_put_response(&d->ring, id, op, status);
	if (d->cfg.batching && lamina_ring_back_push(&d->ring))
		d->notify_due = 1;
}

/* Unmap the slot's per-request grants: before its response is published, because a front-end
 * that sees the response ends its grants at once, and a grant still mapped cannot be ended. */
static void blk_slot_unmap(struct blk_dev *d, struct blk_slot *s)
{
	if (s->nr_maps)
		d->ops->unmap(d->ctx, s->maps, s->handles, s->nr_maps);
	s->nr_maps = 0;
}

/* Answer the request in slot idx with status and free the slot. */
static void blk_slot_finish(struct blk_dev *d, unsigned idx, int16_t status)
{
	struct blk_slot *s = &d->slots[idx];

	blk_slot_unmap(d, s);
	blk_dev_respond(d, s->id, s->operation, status);
	d->free_slots[d->nr_free++] = idx;
	d->st.inflight--;
}

/* Map n refs for slot s into pages[]: from the persistent cache when negotiated (new mappings join
 * it while it has room), otherwise per request. -EFAULT if any ref is not granted as needed. */
static int blk_dev_map(struct blk_dev *d, struct blk_slot *s, const grant_ref_t *refs, unsigned n, int writable,
		       void **pages)
{
	grant_ref_t miss[BLK_SLOT_MAPS];
	unsigned where[BLK_SLOT_MAPS], nmiss = 0, i;
	void *mp[BLK_SLOT_MAPS];
	uint32_t mh[BLK_SLOT_MAPS];
	int rc, bad = 0;

	for (i = 0; i < n; i++) {
		pages[i] = d->cfg.persistent ? blk_pgrant_find(&d->pgrant, refs[i]) : NULL;
		if (pages[i]) {
			d->st.pgrant_hits++;
			continue;
		}
		if (d->cfg.persistent)
			d->st.pgrant_misses++;
		miss[nmiss] = refs[i];
		where[nmiss++] = i;
	}
	if (!nmiss)
		return 0;
	/* Persistent pages serve reads and writes alike later, so they are mapped writable. */
	rc = d->ops->map(d->ctx, d->cfg.domid, miss, nmiss, d->cfg.persistent ? 1 : writable, mp, mh);
	if (rc < 0)
		return rc;
	for (i = 0; i < nmiss; i++) {
		if (!mp[i]) {
			bad = 1;
			continue;
		}
		pages[where[i]] = mp[i];
		if (d->cfg.persistent && blk_pgrant_add(&d->pgrant, miss[i], mp[i], mh[i]) == 0)
			continue;
		/* A ref repeated in one request may already be cached: the page found then is used. */
		if (d->cfg.persistent && blk_pgrant_find(&d->pgrant, miss[i]))
			pages[where[i]] = blk_pgrant_find(&d->pgrant, miss[i]);
		s->maps[s->nr_maps] = mp[i];
		s->handles[s->nr_maps++] = mh[i];
	}
	return bad ? -EFAULT : 0;
}

/* Segment refs of an indirect request: copied out of its (mapped) indirect pages once. */
static int blk_dev_load_indirect(struct blk_dev *d, struct blk_slot *s, struct blk_req *r)
{
	void *pages[BLK_MAX_INDIRECT_PAGES];
	unsigned i, n;
	int rc;

	rc = blk_dev_map(d, s, r->indirect, r->nr_indirect, 0, pages);
	if (rc < 0)
		return rc;
	for (i = 0; i < r->nr_indirect; i++) {
		n = r->nr_segs - i * BLK_SEGS_PER_INDIRECT_PAGE;
		if (n > BLK_SEGS_PER_INDIRECT_PAGE)
			n = BLK_SEGS_PER_INDIRECT_PAGE;
		lamina_ring_copy_slot(&r->seg[i * BLK_SEGS_PER_INDIRECT_PAGE], pages[i], n * sizeof(r->seg[0]));
	}
	return 0;
}

static void blk_dev_complete(struct blk_dev *d, unsigned idx, int res);

/* blk_dev_start's answer for a request already served and answered (inline I/O). */
#define BLK_DEV_DONE 1

static struct io_uring_sqe *blk_dev_sqe(struct blk_dev *d)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&d->uring);

	if (!sqe) {
		io_uring_submit(&d->uring);
		d->pending_sqes = 0;
		sqe = io_uring_get_sqe(&d->uring);
	}
	return sqe;
}

/* Validate, map and queue one request. 0 when queued, BLK_DEV_DONE when served inline and answered,
 * else the BLKIF_RSP_* to answer with now. */
static int blk_dev_start(struct blk_dev *d, const struct blkif_request *copy, unsigned idx)
{
	struct blk_req *r = &d->scratch;
	struct blk_slot *s = &d->slots[idx];
	grant_ref_t refs[BLK_MAX_INDIRECT_SEGS];
	void *pages[BLK_MAX_INDIRECT_SEGS];
	struct io_uring_sqe *sqe;
	char why[128];
	unsigned i;
	int rc;

	s->nr_maps = 0;
	rc = blk_req_decode(copy, &d->lim, r, why, sizeof(why));
	if (rc == 0 && r->nr_indirect) {
		d->st.indirect_reqs++;
		if (blk_dev_load_indirect(d, s, r) < 0) {
			snprintf(why, sizeof(why), "indirect page ref not granted");
			rc = BLKIF_RSP_ERROR;
		} else {
			rc = blk_req_check_segs(r, &d->lim, why, sizeof(why));
		}
	}
	s->id = r->id;
	s->operation = r->operation;
	s->kind = r->kind;
	s->expect = 0;
	s->nr_iov = 0;
	d->st.reqs[r->kind]++;
	if (rc == 0 && (r->kind == BLK_KIND_READ || r->kind == BLK_KIND_WRITE)) {
		for (i = 0; i < r->nr_segs; i++)
			refs[i] = r->seg[i].gref;
		if (blk_dev_map(d, s, refs, r->nr_segs, r->kind == BLK_KIND_READ, pages) < 0) {
			snprintf(why, sizeof(why), "grant ref not granted (%u segments)", r->nr_segs);
			rc = BLKIF_RSP_ERROR;
		}
		for (i = 0; rc == 0 && i < r->nr_segs; i++) {
			s->iov[i].iov_base = (char *)pages[i] + r->seg[i].first_sect * BLK_SECTOR_SIZE;
			s->iov[i].iov_len = (size_t)(r->seg[i].last_sect - r->seg[i].first_sect + 1) * BLK_SECTOR_SIZE;
			s->expect += s->iov[i].iov_len;
		}
		s->nr_iov = r->nr_segs;
	}
	if (rc != 0) {
		be_log_limited(&d->rl, "blkback: dom%u vbd %u: request %llu refused: %s", d->cfg.domid,
			       d->cfg.devid, (unsigned long long)r->id, why);
		return rc;
	}
	if (d->cfg.inline_io && d->img.memory_backed && s->expect <= BLK_INLINE_MAX_BYTES &&
	    (r->kind == BLK_KIND_READ || r->kind == BLK_KIND_WRITE)) {
		/* A small copy to or from memory: done here, with no io_uring worker thread in between. */
		ssize_t n = r->kind == BLK_KIND_READ
				    ? preadv(d->img.fd, s->iov, (int)s->nr_iov, (off_t)(r->sector * BLK_SECTOR_SIZE))
				    : pwritev(d->img.fd, s->iov, (int)s->nr_iov, (off_t)(r->sector * BLK_SECTOR_SIZE));

		d->st.inline_io++;
		blk_dev_complete(d, idx, n < 0 ? -errno : (int)n);
		return BLK_DEV_DONE;
	}
	sqe = blk_dev_sqe(d);
	if (!sqe)
		return BLKIF_RSP_ERROR;
	switch (r->kind) {
	case BLK_KIND_READ:
		io_uring_prep_readv(sqe, d->img.fd, s->iov, s->nr_iov, r->sector * BLK_SECTOR_SIZE);
		break;
	case BLK_KIND_WRITE:
		io_uring_prep_writev(sqe, d->img.fd, s->iov, s->nr_iov, r->sector * BLK_SECTOR_SIZE);
		break;
	case BLK_KIND_FLUSH:
		io_uring_prep_fsync(sqe, d->img.fd, IORING_FSYNC_DATASYNC);
		break;
	case BLK_KIND_DISCARD:
		io_uring_prep_fallocate(sqe, d->img.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					r->sector * BLK_SECTOR_SIZE, r->nr_sectors * BLK_SECTOR_SIZE);
		break;
	default:
		return BLKIF_RSP_ERROR;
	}
	io_uring_sqe_set_data64(sqe, idx);
	d->pending_sqes++;
	return 0;
}

static void blk_dev_submit(struct blk_dev *d, unsigned batch)
{
	if (d->pending_sqes)
		io_uring_submit(&d->uring);
	d->pending_sqes = 0;
	blk_stats_batch(&d->st, batch);
}

int blk_dev_kick(struct blk_dev *d, int rearm)
{
	struct blkif_request copy;
	unsigned batch = 0, answered = 0, taken = 0, idx;
	RING_IDX prod;
	char why[128];
	int n, rc, res = BLK_KICK_IDLE;

	if (d->broken)
		return -EPROTO;
	do {
		n = lamina_ring_back_pending(&d->ring, &prod);
		if (n < 0) {
			snprintf(why, sizeof(why), "producer index ran away (req_prod %u, consumed %u, answered %u, %u slots)",
				 prod, d->ring.req_cons, d->ring.rsp_prod_pvt, d->nr_ents);
			blk_dev_disconnect(d, why);
			return -EPROTO;
		}
		while (d->ring.req_cons != prod) {
			if (taken == BLK_KICK_BUDGET_RINGS * d->nr_ents) {
				/* req_event stays as it is: the rest is taken on the next turn. */
				d->st.yields++;
				res = BLK_KICK_MORE;
				goto out;
			}
			/* Cannot be empty: in flight <= prod - rsp_prod_pvt <= nr_ents slots. */
			if (!d->nr_free) {
				blk_dev_disconnect(d, "more requests in flight than ring slots");
				return -EPROTO;
			}
			lamina_blk_copy_request(&d->ring, d->ring.req_cons, &copy);
			d->ring.req_cons++;
			taken++;
			idx = d->free_slots[--d->nr_free];
			d->st.inflight++;
			if (d->st.inflight > d->st.inflight_max)
				d->st.inflight_max = d->st.inflight;
			rc = blk_dev_start(d, &copy, idx);
			if (rc == BLK_DEV_DONE) {
				answered++;
			} else if (rc != 0) {
				blk_slot_finish(d, idx, (int16_t)rc);
				answered++;
				if (!d->cfg.batching)
					blk_dev_notify(d);
				continue;
			}
			batch++;
			if (!d->cfg.batching) {
				blk_dev_submit(d, 1);
				batch = 0;
			}
		}
		/* Polling: req_event is left behind, so the front-end's pushes need no notification
		 * while the caller keeps looking. */
		res = BLK_KICK_DRAINED;
		if (!rearm)
			goto out;
		res = BLK_KICK_IDLE;
	} while (lamina_ring_back_final_check(&d->ring));
out:
	blk_dev_submit(d, batch);
	if (answered && d->cfg.batching)
		blk_dev_notify(d);
	return res;
}

static void blk_dev_complete(struct blk_dev *d, unsigned idx, int res)
{
	struct blk_slot *s = &d->slots[idx];
	int16_t status = BLKIF_RSP_OKAY;

	if (res < 0 || (uint64_t)res != s->expect) {
		status = BLKIF_RSP_ERROR;
		be_log_limited(&d->rl, "blkback: dom%u vbd %u: %s of request %llu failed: %s", d->cfg.domid,
			       d->cfg.devid, blk_kind_name(s->kind), (unsigned long long)s->id,
			       res < 0 ? strerror(-res) : "short transfer");
	} else if (s->kind == BLK_KIND_READ) {
		d->st.bytes_read += s->expect;
	} else if (s->kind == BLK_KIND_WRITE) {
		d->st.bytes_written += s->expect;
	}
	blk_slot_finish(d, idx, status);
	if (!d->cfg.batching)
		blk_dev_notify(d);
}

int blk_dev_reap(struct blk_dev *d, int wait)
{
	struct io_uring_cqe *cqe;
	unsigned done = 0;
	uint64_t junk;
	int rc;

	if (d->efd >= 0 && read(d->efd, &junk, sizeof(junk)) < 0 && errno != EAGAIN)
		return -errno;
	for (;;) {
		if (wait && !done && d->st.inflight)
			rc = io_uring_wait_cqe(&d->uring, &cqe);
		else
			rc = io_uring_peek_cqe(&d->uring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			break;
		if (io_uring_cqe_get_data64(cqe) < d->nr_ents)
			blk_dev_complete(d, (unsigned)io_uring_cqe_get_data64(cqe), cqe->res);
		io_uring_cqe_seen(&d->uring, cqe);
		done++;
	}
	if (done && d->cfg.batching)
		blk_dev_notify(d);
	return 0;
}

int blk_dev_open(struct blk_dev **out, const struct blk_dev_config *cfg, void *sring, struct blk_image *img,
		 const struct blk_grant_ops *ops, void *ctx)
{
	struct blk_dev *d;
	unsigned i;
	int rc;

	if (cfg->ring_order > LAMINA_RING_MAX_ORDER)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	d->ops = ops;
	d->ctx = ctx;
	d->efd = -1;
	BACK_RING_ATTACH(&d->ring, (struct blkif_sring *)sring, 0, LAMINA_RING_PAGE_SIZE << cfg->ring_order);
	d->nr_ents = RING_SIZE(&d->ring);
	d->ring.req_cons = d->ring.rsp_prod_pvt = 0;
	be_ratelimit_init(&d->rl, 10, 1000);
	rc = -ENOMEM;
	d->slots = calloc(d->nr_ents, sizeof(*d->slots));
	d->free_slots = calloc(d->nr_ents, sizeof(*d->free_slots));
	if (!d->slots || !d->free_slots)
		goto out_free;
	for (i = 0; i < d->nr_ents; i++)
		d->free_slots[d->nr_free++] = d->nr_ents - 1 - i;
	rc = io_uring_queue_init(d->nr_ents, &d->uring, 0);
	if (rc < 0)
		goto out_free;
	d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->efd < 0) {
		rc = -errno;
		goto out_uring;
	}
	rc = io_uring_register_eventfd(&d->uring, d->efd);
	if (rc < 0)
		goto out_efd;
	d->img = *img;
	img->fd = -1;
	d->lim.sectors = d->img.sectors;
	d->lim.readonly = d->img.readonly;
	d->lim.indirect = 1;
	d->lim.discard = cfg->discard;
	*out = d;
	return 0;

out_efd:
	close(d->efd);
out_uring:
	io_uring_queue_exit(&d->uring);
out_free:
	free(d->slots);
	free(d->free_slots);
	free(d);
	return rc;
}

int blk_dev_event_fd(const struct blk_dev *d)
{
	return d->efd;
}

const char *blk_dev_broken(const struct blk_dev *d)
{
	return d->broken ? d->why : NULL;
}

const struct blk_stats *blk_dev_stats(const struct blk_dev *d)
{
	return &d->st;
}

void blk_dev_close(struct blk_dev *d)
{
	/* Grants stay mapped until the kernel is done with the pages they back. */
	while (d->st.inflight)
		if (blk_dev_reap(d, 1) < 0)
			break;
	blk_pgrant_reset(&d->pgrant, d->ops, d->ctx);
	io_uring_queue_exit(&d->uring);
	close(d->efd);
	blk_image_close(&d->img);
	free(d->slots);
	free(d->free_slots);
	free(d);
}
