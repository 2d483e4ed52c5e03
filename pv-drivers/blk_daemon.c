/* lamina-blkback: the vbd device type on the back-end framework (which owns the options, the
 * control and store connections, the loop and the xenbus state machine). Here: probe a back-end
 * directory (open and lock its image), advertise the block features, connect the ring and event
 * channel the front-end published, serve kicks and completions, disconnect on a broken ring, and
 * keep the statistics files `domctl stat` reads. Every value read from the front-end's directory is
 * the guest's and is bound-checked. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "blkd.h"

#define BLKD_VBD(v) ((struct blkd_vbd *)(v))
_Static_assert(offsetof(struct blkd_vbd, base) == 0, "the framework's device comes first");

static struct be_dev *blkd_alloc(void)
{
	struct blkd_vbd *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->ch = (struct ctl_evtchn)CTL_EVTCHN_INIT;
	v->gnt.fd[0] = v->gnt.fd[1] = -1;
	v->img.fd = -1;
	v->w_evtchn = (struct be_watch){ BE_W_DEV, BLKD_T_EVTCHN, &v->base };
	v->w_io = (struct be_watch){ BE_W_DEV, BLKD_T_IO, &v->base };
	return &v->base;
}

static void blkd_free(struct be_dev *v)
{
	free(BLKD_VBD(v));
}

static int blkd_probe(struct be_daemon *d, struct be_dev *bv, char *why, size_t whylen)
{
	struct blkd_vbd *v = BLKD_VBD(bv);
	char params[256], mode[8] = "w", img_why[300];
	int rc;

	if (be_xs_read(d, bv->be, "params", params, sizeof(params)) < 0)
		return -EAGAIN;
	be_xs_read(d, bv->be, "mode", mode, sizeof(mode));
	rc = blk_image_open(&v->img, params, strcmp(mode, "r") == 0, img_why, sizeof(img_why));
	if (rc < 0) {
		snprintf(why, whylen, "%s", img_why);
		return rc == -EAGAIN ? -EIO : rc;
	}
	be_log("blkback: %s: %s (%s, %" PRIu64 " sectors)", bv->name, params,
	       v->img.readonly ? "read-only" : "read-write", v->img.sectors);
	return 0;
}

static void blkd_release(struct be_daemon *d, struct be_dev *v)
{
	blk_image_close(&BLKD_VBD(v)->img);
}

/* The features whose values depend on the daemon's switches, the engine's limits or the image. */
static void blkd_advertise(struct be_daemon *d, struct be_dev *bv)
{
	struct blkd_vbd *v = BLKD_VBD(bv);

	be_xs_printf(d, bv->be, "feature-persistent", "%d", d->off & BLKD_NO_PERSISTENT ? 0 : 1);
	be_xs_printf(d, bv->be, "feature-max-indirect-segments", "%u", BLK_MAX_INDIRECT_SEGS);
	be_xs_printf(d, bv->be, "max-ring-page-order", "%u", LAMINA_RING_MAX_ORDER);
	be_xs_printf(d, bv->be, "discard-granularity", "%u", LAMINA_RING_PAGE_SIZE);
	be_xs_printf(d, bv->be, "sector-size", "%u", BLK_SECTOR_SIZE);
	be_xs_printf(d, bv->be, "physical-sector-size", "%u", BLK_SECTOR_SIZE);
	be_xs_printf(d, bv->be, "feature-discard", "%d", v->img.readonly ? 0 : 1);
	be_xs_printf(d, bv->be, "sectors", "%" PRIu64, v->img.sectors);
	be_xs_printf(d, bv->be, "info", "%u", v->img.readonly ? VDISK_READONLY : 0);
}

static void blkd_disconnect(struct be_daemon *d, struct be_dev *bv)
{
	struct blkd_vbd *v = BLKD_VBD(bv);

	if (!v->dev)
		return;
	be_daemon_unwatch(d, v->ch.event_fd);
	be_daemon_unwatch(d, blk_dev_event_fd(v->dev));
	blkd_stats_write(d, v, 1);
	blk_dev_close(v->dev); /* waits for in-flight I/O: every answered write is in the file */
	v->dev = NULL;
	ctl_evtchn_close(d->ctl.connected ? &d->ctl.conn : NULL, &v->ch);
	blkd_ring_unmap(&v->gnt, v->ring, v->ring_handles, v->ring_pages);
	v->ring = NULL;
	blkd_gnt_release(&v->gnt);
}

/* The ring pages and the event channel the front-end published. */
static int blkd_read_ring(struct be_daemon *d, struct blkd_vbd *v, grant_ref_t *refs, uint64_t *order,
			  uint64_t *port)
{
	uint64_t ref;
	char node[32];
	int rc;

	if (be_xs_read_uint(d, v->base.fe, "ring-page-order", LAMINA_RING_MAX_ORDER, order) == -EINVAL)
		return -EINVAL;
	v->ring_pages = 1u << *order;
	for (unsigned i = 0; i < v->ring_pages; i++) {
		if (*order == 0)
			snprintf(node, sizeof(node), "ring-ref");
		else
			snprintf(node, sizeof(node), "ring-ref%u", i);
		rc = be_xs_read_uint(d, v->base.fe, node, UINT32_MAX, &ref);
		if (rc < 0)
			return rc;
		refs[i] = (grant_ref_t)ref;
	}
	return be_xs_read_uint(d, v->base.fe, "event-channel", UINT32_MAX, port);
}

static int blkd_connect(struct be_daemon *d, struct be_dev *bv)
{
	struct blkd_vbd *v = BLKD_VBD(bv);
	struct blk_dev_config cfg = { .domid = bv->domid, .devid = bv->devid, .discard = 1 };
	grant_ref_t refs[1u << LAMINA_RING_MAX_ORDER];
	struct blk_image img = v->img;
	uint64_t order = 0, port, pers = 0;
	int rc;

	rc = blkd_read_ring(d, v, refs, &order, &port);
	if (rc < 0)
		return rc;
	be_xs_read_uint(d, bv->fe, "feature-persistent", 1, &pers);
	cfg.persistent = !(d->off & BLKD_NO_PERSISTENT) && pers;
	cfg.batching = !(d->off & BLKD_NO_BATCHING);
	cfg.inline_io = !(d->off & BLKD_NO_INLINE);
	cfg.ring_order = (unsigned)order;
	v->gnt.conn = &d->ctl.conn;
	v->gnt.ch = &v->ch;
	rc = blkd_ring_map(&v->gnt, bv->domid, refs, v->ring_pages, &v->ring, v->ring_handles);
	if (rc < 0)
		goto out_gnt;
	rc = ctl_evtchn_bind_interdomain(&d->ctl.conn, bv->domid, (uint32_t)port, &v->ch);
	if (rc < 0)
		goto out_ring;
	/* The engine gets its own descriptor of the image; the lock stays with v->img's. */
	img.fd = dup(v->img.fd);
	if (img.fd < 0) {
		rc = -errno;
		goto out_evtchn;
	}
	rc = blk_dev_open(&v->dev, &cfg, v->ring, &img, &blkd_gnt_ops, &v->gnt);
	if (rc < 0) {
		close(img.fd);
		goto out_evtchn;
	}
	if ((rc = be_daemon_watch(d, EPOLL_CTL_ADD, v->ch.event_fd, EPOLLIN, &v->w_evtchn)) < 0 ||
	    (rc = be_daemon_watch(d, EPOLL_CTL_ADD, blk_dev_event_fd(v->dev), EPOLLIN, &v->w_io)) < 0) {
		blkd_disconnect(d, bv);
		return rc;
	}
	be_log("blkback: %s connected: %u-page ring, port %" PRIu64 ", persistent grants %s, %s", bv->name,
	       v->ring_pages, port, cfg.persistent ? "on" : "off", v->img.readonly ? "read-only" : "read-write");
	return 0;

out_evtchn:
	ctl_evtchn_close(&d->ctl.conn, &v->ch);
out_ring:
	blkd_ring_unmap(&v->gnt, v->ring, v->ring_handles, v->ring_pages);
	v->ring = NULL;
out_gnt:
	blkd_gnt_release(&v->gnt);
	return rc;
}

static uint64_t blkd_requests(const struct blk_stats *st)
{
	return st->reqs[BLK_KIND_READ] + st->reqs[BLK_KIND_WRITE] + st->reqs[BLK_KIND_FLUSH] +
	       st->reqs[BLK_KIND_DISCARD];
}

/* Front-end kicked, I/O completed, the sweep, or a busy device's next turn: serve the device.
 * Busy means more than one turn's budget was queued, or the ring is polled (be_dev_polling). */
static void blkd_kick(struct be_daemon *d, struct be_dev *bv, unsigned tag)
{
	struct blkd_vbd *v = BLKD_VBD(bv);
	uint64_t before, now;
	char why[200];
	int rc;

	if (!v->dev)
		return;
	ctl_evtchn_ack(&v->ch, NULL);
	blk_dev_reap(v->dev, 0);
	before = blkd_requests(blk_dev_stats(v->dev));
	rc = blk_dev_kick(v->dev, !be_dev_polling(d, bv, be_now_ns()));
	if (rc == -EPROTO) {
		snprintf(why, sizeof(why), "ring broken: %s", blk_dev_broken(v->dev));
		be_dev_fail(d, bv, why);
		return;
	}
	/* Reads from the page cache often complete inside the submit: answer them in this turn
	 * rather than after another trip through epoll. */
	blk_dev_reap(v->dev, 0);
	now = be_now_ns();
	if (blkd_requests(blk_dev_stats(v->dev)) != before)
		be_dev_took(d, bv, now);
	/* Once the window passes, one more kick re-arms req_event (and takes what came meanwhile).
	 * While io_uring has requests in flight the daemon sleeps instead: their completion wakes
	 * it, and the CPU is left to io_uring's workers (polling beside 1 MiB copies halved their
	 * bandwidth on two cores). */
	bv->busy = rc == BLK_KICK_MORE ||
		   ((rc == BLK_KICK_DRAINED || be_dev_polling(d, bv, now)) && blk_dev_stats(v->dev)->inflight == 0);
	blkd_stats_write(d, v, 0);
}

void blkd_stats_write(struct be_daemon *d, struct blkd_vbd *v, int force)
{
	const struct blk_stats *st;
	char text[2048];
	uint64_t now = be_now_ns(), seen;
	int json, n;

	if (!v->dev)
		return;
	st = blk_dev_stats(v->dev);
	seen = blkd_requests(st) + st->notify_sent + st->notify_suppressed;
	if (!force && (seen == v->stats_seen || now - v->stats_ns < (uint64_t)BE_SWEEP_MS * 1000000ull))
		return;
	v->stats_ns = now;
	v->stats_seen = seen;
	for (json = 0; json < 2; json++) {
		n = blk_stats_format(st, json, text, sizeof(text));
		if (n < 0 || n + 1 >= (int)sizeof(text))
			continue;
		if (json)
			text[n++] = '\n';
		be_stats_file(d, &v->base, json ? "json" : "txt", text, (size_t)n);
	}
}

static const struct be_feature blkd_features[] = {
	{ "feature-flush-cache", "1" },
	{ "feature-barrier", "0" },
	{ "discard-alignment", "0" },
	{ "discard-secure", "0" },
};

static const struct be_flag blkd_flags[] = {
	{ "no-persistent", BLKD_NO_PERSISTENT },
	{ "no-batching", BLKD_NO_BATCHING },
	{ "no-inline", BLKD_NO_INLINE },
};

const struct be_type_ops blkd_type = {
	.type = "vbd",
	.prog = "blkback",
	.usage = "The PV block back-end: serves every vbd under " BE_BACKEND_DIR "/vbd from its image\n"
		 "through io_uring (reads and writes of images on tmpfs, ramfs or hugetlbfs inline), and writes\n"
		 "per-device statistics to DIR/blkback/DOMID-DEVID.{json,txt}.\n"
		 "--no-persistent, --no-batching and --no-inline turn those optimisations off (for measurements).\n",
	.flags = blkd_flags,
	.nflags = sizeof(blkd_flags) / sizeof(blkd_flags[0]),
	.features = blkd_features,
	.nfeatures = sizeof(blkd_features) / sizeof(blkd_features[0]),
	.connect_on_initialised = 1,
	.restart_reoffer = 1,
	.rm_on_destroy = 1,
	.alloc = blkd_alloc,
	.free = blkd_free,
	.probe = blkd_probe,
	.advertise = blkd_advertise,
	.connect = blkd_connect,
	.disconnect = blkd_disconnect,
	.release = blkd_release,
	.kick = blkd_kick,
};

int main(int argc, char **argv)
{
	return be_daemon_main(&blkd_type, NULL, argc, argv);
}
