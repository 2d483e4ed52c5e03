/* lamina-blkback's side of the xenbus handshake, per vbd: discover a back-end directory the
 * toolstack wrote, open and lock its image, advertise the features (InitWait), connect the ring and
 * event channel the front-end published (Connected), and close down on request or on a broken ring.
 * Every value read from the front-end's directory is the guest's and is bound-checked. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <xen/io/xenbus.h>

#include "blkd.h"

static int blkd_xs_read(struct blkd *b, const char *dir, const char *node, char *out, size_t len)
{
	char path[BLKD_PATH_MAX * 2], *val = NULL;
	uint32_t vlen;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, node);
	rc = xs_client_read(b->xs, 0, path, &val, &vlen);
	if (rc < 0)
		return rc;
	if (vlen >= len) {
		free(val);
		return -E2BIG;
	}
	memcpy(out, val, vlen);
	out[vlen] = '\0';
	free(val);
	return 0;
}

/* A decimal no greater than max; anything else (empty, signs, junk, overflow) is -EINVAL. */
static int blkd_xs_read_uint(struct blkd *b, const char *dir, const char *node, uint64_t max, uint64_t *v)
{
	char buf[32], *end;
	unsigned long long x;
	int rc = blkd_xs_read(b, dir, node, buf, sizeof(buf));

	if (rc < 0)
		return rc;
	if (buf[0] < '0' || buf[0] > '9')
		return -EINVAL;
	errno = 0;
	x = strtoull(buf, &end, 10);
	if (errno || *end || x > max)
		return -EINVAL;
	*v = x;
	return 0;
}

static int blkd_xs_printf(struct blkd *b, const char *dir, const char *node, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int blkd_xs_printf(struct blkd *b, const char *dir, const char *node, const char *fmt, ...)
{
	char path[BLKD_PATH_MAX * 2], val[256];
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", dir, node);
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	return xs_client_write(b->xs, 0, path, val, (uint32_t)strlen(val));
}

static void blkd_set_state(struct blkd *b, struct blkd_vbd *v, int state)
{
	if (v->be_state == state)
		return;
	v->be_state = state;
	blkd_xs_printf(b, v->be, "state", "%d", state);
}

static struct blkd_vbd *blkd_find(struct blkd *b, uint32_t domid, uint32_t devid)
{
	for (struct blkd_vbd *v = b->vbds; v; v = v->next)
		if (!v->dead && v->domid == domid && v->devid == devid)
			return v;
	return NULL;
}

static void blkd_disconnect(struct blkd *b, struct blkd_vbd *v)
{
	if (!v->dev)
		return;
	epoll_ctl(b->epfd, EPOLL_CTL_DEL, v->ch.event_fd, NULL);
	epoll_ctl(b->epfd, EPOLL_CTL_DEL, blk_dev_event_fd(v->dev), NULL);
	blkd_stats_write(b, v, 1);
	blk_dev_close(v->dev); /* waits for in-flight I/O: every answered write is in the file */
	v->dev = NULL;
	ctl_evtchn_close(b->ctl.connected ? &b->ctl.conn : NULL, &v->ch);
	blkd_ring_unmap(&v->gnt, v->ring, v->ring_handles, v->ring_pages);
	v->ring = NULL;
	blkd_gnt_release(&v->gnt);
	be_log("blkback: dom%u vbd %u disconnected", v->domid, v->devid);
}

static int blkd_connect(struct blkd *b, struct blkd_vbd *v)
{
	struct blk_dev_config cfg = { .domid = v->domid, .devid = v->devid, .batching = b->batching, .discard = 1 };
	grant_ref_t refs[1u << LAMINA_RING_MAX_ORDER];
	struct epoll_event e1 = { .events = EPOLLIN, .data.ptr = &v->w_evtchn };
	struct epoll_event e2 = { .events = EPOLLIN, .data.ptr = &v->w_io };
	struct blk_image img = v->img;
	uint64_t order = 0, port, ref, pers = 0;
	char node[32];
	int rc;

	if (blkd_xs_read_uint(b, v->fe, "ring-page-order", LAMINA_RING_MAX_ORDER, &order) == -EINVAL)
		return -EINVAL;
	v->ring_pages = 1u << order;
	for (unsigned i = 0; i < v->ring_pages; i++) {
		if (order == 0)
			snprintf(node, sizeof(node), "ring-ref");
		else
			snprintf(node, sizeof(node), "ring-ref%u", i);
		rc = blkd_xs_read_uint(b, v->fe, node, UINT32_MAX, &ref);
		if (rc < 0)
			return rc;
		refs[i] = (grant_ref_t)ref;
	}
	rc = blkd_xs_read_uint(b, v->fe, "event-channel", UINT32_MAX, &port);
	if (rc < 0)
		return rc;
	blkd_xs_read_uint(b, v->fe, "feature-persistent", 1, &pers);
	cfg.persistent = b->persistent && pers;
	cfg.ring_order = (unsigned)order;
	v->gnt.conn = &b->ctl.conn;
	v->gnt.ch = &v->ch;
	rc = blkd_ring_map(&v->gnt, v->domid, refs, v->ring_pages, &v->ring, v->ring_handles);
	if (rc < 0)
		goto out_gnt;
	rc = ctl_evtchn_bind_interdomain(&b->ctl.conn, v->domid, (uint32_t)port, &v->ch);
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
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, v->ch.event_fd, &e1) < 0 ||
	    epoll_ctl(b->epfd, EPOLL_CTL_ADD, blk_dev_event_fd(v->dev), &e2) < 0) {
		rc = -errno;
		blkd_disconnect(b, v);
		return rc;
	}
	be_log("blkback: dom%u vbd %u connected: %u-page ring, port %" PRIu64 ", persistent grants %s, %s",
	       v->domid, v->devid, v->ring_pages, port, cfg.persistent ? "on" : "off",
	       v->img.readonly ? "read-only" : "read-write");
	blkd_set_state(b, v, XenbusStateConnected);
	blkd_vbd_service(b, v); /* requests queued before we looked */
	return 0;

out_evtchn:
	ctl_evtchn_close(&b->ctl.conn, &v->ch);
out_ring:
	blkd_ring_unmap(&v->gnt, v->ring, v->ring_handles, v->ring_pages);
	v->ring = NULL;
out_gnt:
	blkd_gnt_release(&v->gnt);
	return rc;
}

void blkd_vbd_service(struct blkd *b, struct blkd_vbd *v)
{
	char why[200];

	if (!v->dev)
		return;
	ctl_evtchn_ack(&v->ch, NULL);
	blk_dev_reap(v->dev, 0);
	if (blk_dev_kick(v->dev) == -EPROTO) {
		snprintf(why, sizeof(why), "ring broken: %s", blk_dev_broken(v->dev));
		blkd_xs_printf(b, v->be, "error", "%s", why);
		blkd_disconnect(b, v);
		blkd_set_state(b, v, XenbusStateClosing);
		return;
	}
	blkd_stats_write(b, v, 0);
}

/* Advertise what this back-end does; the front-end reads these in InitWait. */
static void blkd_advertise(struct blkd *b, struct blkd_vbd *v)
{
	blkd_xs_printf(b, v->be, "feature-persistent", "%d", b->persistent ? 1 : 0);
	blkd_xs_printf(b, v->be, "feature-max-indirect-segments", "%u", BLK_MAX_INDIRECT_SEGS);
	blkd_xs_printf(b, v->be, "max-ring-page-order", "%u", LAMINA_RING_MAX_ORDER);
	blkd_xs_printf(b, v->be, "feature-flush-cache", "1");
	blkd_xs_printf(b, v->be, "feature-barrier", "0");
	blkd_xs_printf(b, v->be, "feature-discard", "%d", v->img.readonly ? 0 : 1);
	blkd_xs_printf(b, v->be, "discard-granularity", "%u", LAMINA_RING_PAGE_SIZE);
	blkd_xs_printf(b, v->be, "discard-alignment", "0");
	blkd_xs_printf(b, v->be, "discard-secure", "0");
	blkd_xs_printf(b, v->be, "sector-size", "%u", BLK_SECTOR_SIZE);
	blkd_xs_printf(b, v->be, "physical-sector-size", "%u", BLK_SECTOR_SIZE);
	blkd_xs_printf(b, v->be, "sectors", "%" PRIu64, v->img.sectors);
	blkd_xs_printf(b, v->be, "info", "%u", v->img.readonly ? VDISK_READONLY : 0);
	blkd_xs_printf(b, v->be, "hotplug-status", "connected");
}

static void blkd_vbd_new(struct blkd *b, uint32_t domid, uint32_t devid, const char *be)
{
	char params[256], mode[8] = "w", fe[BLKD_PATH_MAX], path[BLKD_PATH_MAX + 8], why[300];
	struct blkd_vbd *v;
	int rc;

	if (blkd_xs_read(b, be, "params", params, sizeof(params)) < 0 ||
	    blkd_xs_read(b, be, "frontend", fe, sizeof(fe)) < 0)
		return; /* the toolstack is still writing the directory: its next write fires again */
	blkd_xs_read(b, be, "mode", mode, sizeof(mode));
	v = calloc(1, sizeof(*v));
	if (!v)
		return;
	v->domid = domid;
	v->devid = devid;
	v->ch = (struct ctl_evtchn)CTL_EVTCHN_INIT;
	v->gnt.fd[0] = v->gnt.fd[1] = -1;
	v->w_evtchn = (struct blkd_watch){ BLKD_W_EVTCHN, v };
	v->w_io = (struct blkd_watch){ BLKD_W_IO, v };
	snprintf(v->be, sizeof(v->be), "%s", be);
	snprintf(v->fe, sizeof(v->fe), "%s", fe);
	rc = blk_image_open(&v->img, params, strcmp(mode, "r") == 0, why, sizeof(why));
	if (rc < 0) {
		be_log("blkback: dom%u vbd %u: cannot open image: %s", domid, devid, why);
		blkd_xs_printf(b, be, "hotplug-error", "%s", why);
		blkd_xs_printf(b, be, "hotplug-status", "error");
		blkd_xs_printf(b, be, "state", "%d", XenbusStateClosed);
		free(v);
		return;
	}
	v->next = b->vbds;
	b->vbds = v;
	blkd_advertise(b, v);
	blkd_set_state(b, v, XenbusStateInitWait);
	snprintf(path, sizeof(path), "%s/state", v->fe);
	xs_client_watch(b->xs, path, "fe");
	be_log("blkback: dom%u vbd %u: %s (%s, %" PRIu64 " sectors) waiting for the front-end", domid, devid,
	       params, v->img.readonly ? "read-only" : "read-write", v->img.sectors);
}

static void blkd_vbd_drop(struct blkd *b, struct blkd_vbd *v)
{
	char path[BLKD_PATH_MAX + 8];

	blkd_disconnect(b, v);
	snprintf(path, sizeof(path), "%s/state", v->fe);
	if (b->xs)
		xs_client_unwatch(b->xs, path, "fe");
	blk_image_close(&v->img);
	v->dead = 1;
}

static void blkd_backend_changed(struct blkd *b, uint32_t domid, uint32_t devid)
{
	char be[BLKD_PATH_MAX], fe[BLKD_PATH_MAX], online[8] = "1";
	struct blkd_vbd *v = blkd_find(b, domid, devid);
	uint64_t fe_state = XenbusStateUnknown;

	snprintf(be, sizeof(be), BLKD_BACKEND_ROOT "/%u/%u", domid, devid);
	if (blkd_xs_read(b, be, "frontend", fe, sizeof(fe)) == -ENOENT) {
		if (v) { /* detached (or forced): the directory is gone */
			be_log("blkback: dom%u vbd %u removed", domid, devid);
			blkd_vbd_drop(b, v);
		}
		return;
	}
	if (!v) {
		blkd_vbd_new(b, domid, devid, be);
		return;
	}
	/* The toolstack asks for a detach with online = 0: close, and let the front-end follow. */
	blkd_xs_read(b, be, "online", online, sizeof(online));
	if (strcmp(online, "0") == 0 && v->be_state < XenbusStateClosing) {
		blkd_set_state(b, v, XenbusStateClosing);
		blkd_xs_read_uint(b, v->fe, "state", XenbusStateReconfigured, &fe_state);
		if (!v->dev || fe_state == XenbusStateClosed || fe_state == XenbusStateUnknown) {
			blkd_disconnect(b, v);
			blkd_set_state(b, v, XenbusStateClosed);
		}
	}
}

static void blkd_frontend_changed(struct blkd *b, struct blkd_vbd *v)
{
	uint64_t st;
	int rc = blkd_xs_read_uint(b, v->fe, "state", XenbusStateReconfigured, &st);

	if (rc == -ENOENT) { /* front-end tree gone: the domain is going away */
		blkd_disconnect(b, v);
		return;
	}
	if (rc < 0)
		return;
	switch (st) {
	case XenbusStateInitialised:
	case XenbusStateConnected:
		if (!v->dev && v->be_state == XenbusStateInitWait) {
			rc = blkd_connect(b, v);
			if (rc < 0) {
				be_log("blkback: dom%u vbd %u: cannot connect: %s", v->domid, v->devid, strerror(-rc));
				blkd_xs_printf(b, v->be, "error", "connect: %s", strerror(-rc));
				blkd_set_state(b, v, XenbusStateClosing);
			}
		}
		break;
	case XenbusStateClosing:
	case XenbusStateClosed:
		blkd_disconnect(b, v);
		blkd_set_state(b, v, XenbusStateClosed);
		break;
	case XenbusStateInitialising:
		/* A front-end starting over (guest restart) after a close: offer the device again. */
		if (!v->dev && v->be_state == XenbusStateClosed) {
			char online[8] = "1";

			blkd_xs_read(b, v->be, "online", online, sizeof(online));
			if (strcmp(online, "0") != 0)
				blkd_set_state(b, v, XenbusStateInitWait);
		}
		break;
	default:
		break;
	}
}

static void blkd_scan(struct blkd *b)
{
	char **doms = NULL, **devs = NULL, dir[BLKD_PATH_MAX];
	unsigned nd, nv;

	if (xs_client_ls(b->xs, 0, BLKD_BACKEND_ROOT, &doms, &nd) < 0)
		return;
	for (unsigned i = 0; i < nd; i++) {
		snprintf(dir, sizeof(dir), BLKD_BACKEND_ROOT "/%s", doms[i]);
		if (xs_client_ls(b->xs, 0, dir, &devs, &nv) < 0)
			continue;
		for (unsigned j = 0; j < nv; j++) {
			char p[BLKD_PATH_MAX * 2];

			snprintf(p, sizeof(p), "%s/%s", dir, devs[j]);
			blkd_xenbus_event(b, p);
		}
		free(devs);
	}
	free(doms);
}

void blkd_xenbus_event(struct blkd *b, const char *path)
{
	const size_t rl = strlen(BLKD_BACKEND_ROOT);
	unsigned domid, devid;
	int used = 0;

	if (strcmp(path, BLKD_BACKEND_ROOT) == 0) {
		blkd_scan(b);
		return;
	}
	if (strncmp(path, BLKD_BACKEND_ROOT "/", rl + 1) == 0) {
		if (sscanf(path + rl + 1, "%u/%u%n", &domid, &devid, &used) == 2 && used > 0 &&
		    (path[rl + 1 + used] == '\0' || path[rl + 1 + used] == '/') && domid < DOMID_FIRST_RESERVED)
			blkd_backend_changed(b, domid, devid);
		return;
	}
	for (struct blkd_vbd *v = b->vbds; v; v = v->next) {
		size_t fl = strlen(v->fe);

		if (!v->dead && strncmp(path, v->fe, fl) == 0 && (path[fl] == '\0' || path[fl] == '/'))
			blkd_frontend_changed(b, v);
	}
}

void blkd_drop_domain(struct blkd *b, uint32_t domid)
{
	char dir[BLKD_PATH_MAX];

	for (struct blkd_vbd *v = b->vbds; v; v = v->next)
		if (!v->dead && v->domid == domid)
			blkd_vbd_drop(b, v);
	/* The domain is gone: its back-end directories go too (the store already removed its own
	 * tree), so the toolstack's block-list and a later domain with this id start clean. */
	snprintf(dir, sizeof(dir), BLKD_BACKEND_ROOT "/%u", domid);
	if (b->xs)
		xs_client_rm(b->xs, 0, dir);
}

void blkd_restart_domain(struct blkd *b, uint32_t domid)
{
	/* Rebuilt in place: the old ring and port are gone; offer each disk to the new kernel. */
	for (struct blkd_vbd *v = b->vbds; v; v = v->next) {
		if (v->dead || v->domid != domid)
			continue;
		blkd_disconnect(b, v);
		blkd_set_state(b, v, XenbusStateInitWait);
	}
}

void blkd_drop_all(struct blkd *b)
{
	for (struct blkd_vbd *v = b->vbds; v; v = v->next)
		if (!v->dead)
			blkd_vbd_drop(b, v);
}

void blkd_reap(struct blkd *b)
{
	struct blkd_vbd **pp = &b->vbds;

	while (*pp) {
		struct blkd_vbd *v = *pp;

		if (!v->dead) {
			pp = &v->next;
			continue;
		}
		*pp = v->next;
		free(v);
	}
}
