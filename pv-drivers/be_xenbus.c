/* The back-end side of the xenbus handshake, the same for every device type: discover a back-end
 * directory the toolstack wrote under backend/<type>/<domid>/<devid>, probe it, advertise the
 * features (InitWait), connect when the front-end is Initialised/Connected, close on request
 * (online = 0), on the front-end's Closing/Closed or on a broken ring, and offer again when a
 * front-end starts over. Every value read from a front-end's directory is the guest's. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "be_dev.h"

#include <xen/io/xenbus.h>
#include <xen/xen.h>

int be_xs_read(struct be_daemon *d, const char *dir, const char *node, char *out, size_t len)
{
	char path[BE_PATH_MAX * 2], *val = NULL;
	uint32_t vlen;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, node);
	rc = xs_client_read(d->xs, 0, path, &val, &vlen);
	if (rc < 0)
		return rc;
	if (vlen >= len || memchr(val, '\0', vlen)) {
		free(val);
		return -E2BIG;
	}
	memcpy(out, val, vlen);
	out[vlen] = '\0';
	free(val);
	return 0;
}

int be_xs_read_uint(struct be_daemon *d, const char *dir, const char *node, uint64_t max, uint64_t *v)
{
	char buf[32], *end;
	unsigned long long x;
	int rc = be_xs_read(d, dir, node, buf, sizeof(buf));

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

int be_xs_printf(struct be_daemon *d, const char *dir, const char *node, const char *fmt, ...)
{
	char path[BE_PATH_MAX * 2], val[256];
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", dir, node);
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	return xs_client_write(d->xs, 0, path, val, (uint32_t)strlen(val));
}

void be_dev_set_state(struct be_daemon *d, struct be_dev *v, int state)
{
	if (v->be_state == state)
		return;
	v->be_state = state;
	be_xs_printf(d, v->be, "state", "%d", state);
}

void be_dev_disconnect(struct be_daemon *d, struct be_dev *v)
{
	if (!v->connected)
		return;
	v->connected = 0;
	v->busy = 0;
	d->ops->disconnect(d, v);
	be_log("%s: %s disconnected", d->ops->prog, v->name);
}

void be_dev_fail(struct be_daemon *d, struct be_dev *v, const char *why)
{
	be_xs_printf(d, v->be, "error", "%s", why);
	be_dev_disconnect(d, v);
	be_dev_set_state(d, v, XenbusStateClosing);
}

static int be_dev_connect(struct be_daemon *d, struct be_dev *v)
{
	int rc = d->ops->connect(d, v);

	if (rc < 0)
		return rc;
	v->connected = 1;
	be_dev_set_state(d, v, XenbusStateConnected);
	d->ops->kick(d, v, BE_KICK_ALL); /* requests queued before we looked */
	return 0;
}

static struct be_dev *be_find(struct be_daemon *d, uint32_t domid, uint32_t devid)
{
	for (struct be_dev *v = d->devs; v; v = v->next)
		if (!v->dead && v->domid == domid && v->devid == devid)
			return v;
	return NULL;
}

static void be_dev_new(struct be_daemon *d, uint32_t domid, uint32_t devid, const char *be)
{
	const struct be_type_ops *ops = d->ops;
	char fe[BE_PATH_MAX], path[BE_PATH_MAX + 8], why[300] = "";
	struct be_dev *v;
	int rc;

	if (be_xs_read(d, be, "frontend", fe, sizeof(fe)) < 0)
		return; /* the toolstack is still writing the directory: its next write fires again */
	v = ops->alloc();
	if (!v)
		return;
	v->owner = d;
	v->domid = domid;
	v->devid = devid;
	snprintf(v->be, sizeof(v->be), "%s", be);
	snprintf(v->fe, sizeof(v->fe), "%s", fe);
	snprintf(v->name, sizeof(v->name), "dom%u %s %u", domid, ops->type, devid);
	rc = ops->probe(d, v, why, sizeof(why));
	if (rc < 0) {
		ops->free(v);
		if (rc == -EAGAIN)
			return;
		be_log("%s: dom%u %s %u: %s", ops->prog, domid, ops->type, devid, why);
		be_xs_printf(d, be, "hotplug-error", "%s", why);
		be_xs_printf(d, be, "hotplug-status", "error");
		be_xs_printf(d, be, "state", "%d", XenbusStateClosed);
		return;
	}
	v->next = d->devs;
	d->devs = v;
	/* Advertise what this back-end does; the front-end reads these in InitWait. The nodes take
	 * the directory's permissions, which the toolstack set before writing anything in it. */
	for (size_t i = 0; i < ops->nfeatures; i++)
		be_xs_printf(d, be, ops->features[i].node, "%s", ops->features[i].value);
	if (ops->advertise)
		ops->advertise(d, v);
	be_xs_printf(d, be, "hotplug-status", "connected");
	be_dev_set_state(d, v, XenbusStateInitWait);
	snprintf(path, sizeof(path), "%s/state", v->fe);
	xs_client_watch(d->xs, path, "fe");
	be_log("%s: %s waiting for the front-end", ops->prog, v->name);
}

static void be_dev_drop(struct be_daemon *d, struct be_dev *v)
{
	char path[BE_PATH_MAX + 8];

	be_dev_disconnect(d, v);
	snprintf(path, sizeof(path), "%s/state", v->fe);
	if (d->xs)
		xs_client_unwatch(d->xs, path, "fe");
	d->ops->release(d, v);
	v->dead = 1;
}

static int be_online(struct be_daemon *d, struct be_dev *v)
{
	char online[8] = "1";

	be_xs_read(d, v->be, "online", online, sizeof(online));
	return strcmp(online, "0") != 0;
}

static void be_backend_changed(struct be_daemon *d, uint32_t domid, uint32_t devid)
{
	char be[BE_PATH_MAX], fe[BE_PATH_MAX];
	struct be_dev *v = be_find(d, domid, devid);
	uint64_t fe_state = XenbusStateUnknown;

	snprintf(be, sizeof(be), "%s/%u/%u", d->root, domid, devid);
	if (be_xs_read(d, be, "frontend", fe, sizeof(fe)) == -ENOENT) {
		if (v) { /* detached (or forced): the directory is gone */
			be_log("%s: %s removed", d->ops->prog, v->name);
			be_dev_drop(d, v);
		}
		return;
	}
	if (!v) {
		be_dev_new(d, domid, devid, be);
		return;
	}
	/* The toolstack asks for a detach with online = 0: close, and let the front-end follow. */
	if (!be_online(d, v) && v->be_state < XenbusStateClosing) {
		be_dev_set_state(d, v, XenbusStateClosing);
		be_xs_read_uint(d, v->fe, "state", XenbusStateReconfigured, &fe_state);
		if (!v->connected || fe_state == XenbusStateClosed || fe_state == XenbusStateUnknown) {
			be_dev_disconnect(d, v);
			be_dev_set_state(d, v, XenbusStateClosed);
		}
	}
}

static void be_frontend_changed(struct be_daemon *d, struct be_dev *v)
{
	uint64_t st;
	int rc = be_xs_read_uint(d, v->fe, "state", XenbusStateReconfigured, &st);

	if (rc == -ENOENT) { /* front-end tree gone: the domain is going away */
		be_dev_disconnect(d, v);
		/* A detach in progress is complete: nothing is left to close (the guest may have
		 * answered the detach and exited before its Closing was seen). */
		if (v->be_state == XenbusStateClosing)
			be_dev_set_state(d, v, XenbusStateClosed);
		return;
	}
	if (rc < 0)
		return;
	switch (st) {
	case XenbusStateInitialised:
	case XenbusStateConnected:
		if (st == XenbusStateInitialised && !d->ops->connect_on_initialised)
			break;
		if (!v->connected && v->be_state == XenbusStateInitWait) {
			rc = be_dev_connect(d, v);
			if (rc < 0) {
				be_log("%s: %s: cannot connect: %s", d->ops->prog, v->name, strerror(-rc));
				be_xs_printf(d, v->be, "error", "connect: %s", strerror(-rc));
				be_dev_set_state(d, v, XenbusStateClosing);
			}
		}
		break;
	case XenbusStateClosing:
	case XenbusStateClosed:
		be_dev_disconnect(d, v);
		be_dev_set_state(d, v, XenbusStateClosed);
		break;
	case XenbusStateInitialising:
		/* A front-end starting over (guest restart) after a close: offer the device again. */
		if (!v->connected && v->be_state == XenbusStateClosed && be_online(d, v))
			be_dev_set_state(d, v, XenbusStateInitWait);
		break;
	default:
		break;
	}
}

static void be_scan(struct be_daemon *d)
{
	char **doms = NULL, **devs = NULL, dir[BE_PATH_MAX], p[BE_PATH_MAX * 2];
	unsigned nd, nv;

	if (xs_client_ls(d->xs, 0, d->root, &doms, &nd) < 0)
		return;
	for (unsigned i = 0; i < nd; i++) {
		snprintf(dir, sizeof(dir), "%s/%s", d->root, doms[i]);
		if (xs_client_ls(d->xs, 0, dir, &devs, &nv) < 0)
			continue;
		for (unsigned j = 0; j < nv; j++) {
			snprintf(p, sizeof(p), "%s/%s", dir, devs[j]);
			be_xenbus_event(d, p);
		}
		free(devs);
	}
	free(doms);
}

void be_xenbus_event(struct be_daemon *d, const char *path)
{
	const size_t rl = strlen(d->root);
	unsigned domid, devid;
	int used = 0;

	if (strcmp(path, d->root) == 0) {
		be_scan(d);
		return;
	}
	if (strncmp(path, d->root, rl) == 0 && path[rl] == '/') {
		if (sscanf(path + rl + 1, "%u/%u%n", &domid, &devid, &used) == 2 && used > 0 &&
		    (path[rl + 1 + used] == '\0' || path[rl + 1 + used] == '/') && domid < DOMID_FIRST_RESERVED &&
		    (!d->ops->max_devid || devid <= d->ops->max_devid))
			be_backend_changed(d, domid, devid);
		return;
	}
	for (struct be_dev *v = d->devs; v; v = v->next) {
		size_t fl = strlen(v->fe);

		if (!v->dead && strncmp(path, v->fe, fl) == 0 && (path[fl] == '\0' || path[fl] == '/'))
			be_frontend_changed(d, v);
	}
}

void be_xenbus_drop_domain(struct be_daemon *d, uint32_t domid)
{
	char dir[BE_PATH_MAX];

	for (struct be_dev *v = d->devs; v; v = v->next) {
		if (v->dead || v->domid != domid)
			continue;
		/* A detach waiting for this domain's front-end will not get an answer now. */
		if (v->be_state == XenbusStateClosing && d->xs)
			be_dev_set_state(d, v, XenbusStateClosed);
		be_dev_drop(d, v);
	}
	/* The domain is gone: its back-end directories go too (the store already removed its own
	 * tree), so the toolstack's listing and a later domain with this id start clean. */
	snprintf(dir, sizeof(dir), "%s/%u", d->root, domid);
	if (d->ops->rm_on_destroy && d->xs)
		xs_client_rm(d->xs, 0, dir);
}

void be_xenbus_restart_domain(struct be_daemon *d, uint32_t domid)
{
	/* Rebuilt in place: the old ring and port are gone; offer each device to the new kernel. */
	for (struct be_dev *v = d->devs; v; v = v->next) {
		if (v->dead || v->domid != domid)
			continue;
		be_dev_disconnect(d, v);
		be_dev_set_state(d, v, XenbusStateInitWait);
	}
}

void be_xenbus_drop_all(struct be_daemon *d)
{
	for (struct be_dev *v = d->devs; v; v = v->next)
		if (!v->dead)
			be_dev_drop(d, v);
}

void be_xenbus_reap(struct be_daemon *d)
{
	struct be_dev **pp = &d->devs;

	while (*pp) {
		struct be_dev *v = *pp;

		if (!v->dead) {
			pp = &v->next;
			continue;
		}
		*pp = v->next;
		d->ops->free(v);
	}
}
