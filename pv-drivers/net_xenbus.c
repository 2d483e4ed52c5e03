/* lamina-netback's side of the netif xenbus handshake, per vif: discover a back-end directory the
 * toolstack wrote, make its tap on its bridge, advertise the features (InitWait), map the rings and
 * bind the event channels the front-end published (Connected), close on request or a broken ring.
 * Every value read from the front-end's directory is the guest's and is bound-checked. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xen/io/xenbus.h>

#include "ctl_grant_client.h"
#include "netd.h"

static int netd_xs_read(struct netd *d, const char *dir, const char *node, char *out, size_t len)
{
	char path[NETD_PATH_MAX * 2], *val = NULL;
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

static int netd_xs_read_uint(struct netd *d, const char *dir, const char *node, uint64_t max, uint64_t *v)
{
	char buf[32], *end;
	unsigned long long x;
	int rc = netd_xs_read(d, dir, node, buf, sizeof(buf));

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

static int netd_xs_printf(struct netd *d, const char *dir, const char *node, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int netd_xs_printf(struct netd *d, const char *dir, const char *node, const char *fmt, ...)
{
	char path[NETD_PATH_MAX * 2], val[256];
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", dir, node);
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	return xs_client_write(d->xs, 0, path, val, (uint32_t)strlen(val));
}

static void netd_set_state(struct netd *d, struct netd_vif *v, int state)
{
	if (v->be_state == state)
		return;
	v->be_state = state;
	netd_xs_printf(d, v->be, "state", "%d", state);
}

/* ---- grant copies and notifications for the engine ---- */

static int netd_copy(void *arg, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n, int32_t *status)
{
	struct netd_vif *v = arg;

	return ctl_gnt_copy(&v->owner->ctl.conn, segs, n, status);
}

static int netd_notify(void *arg, unsigned which)
{
	struct netd_vif *v = arg;

	return ctl_evtchn_notify(which ? &v->rx_ch : &v->tx_ch);
}

const struct netback_gnt_ops netd_gnt_ops = { .copy = netd_copy, .notify = netd_notify };

static void netd_tap_arm(struct netd *d, struct netd_vif *v)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = &v->w_tap };

	if (v->tap_armed || !v->connected)
		return;
	if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, v->tap_fd, &e) == 0)
		v->tap_armed = 1;
}

static void netd_disconnect(struct netd *d, struct netd_vif *v)
{
	struct ctl_conn *conn = d->ctl.connected ? &d->ctl.conn : NULL;

	if (!v->connected)
		return;
	v->connected = 0;
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, v->tx_ch.event_fd, NULL);
	if (v->split)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, v->rx_ch.event_fd, NULL);
	netd_stats_write(d, v, 1);
	ctl_evtchn_close(conn, &v->tx_ch);
	if (v->split)
		ctl_evtchn_close(conn, &v->rx_ch);
	else
		v->rx_ch = (struct ctl_evtchn)CTL_EVTCHN_INIT;
	if (v->tx_ring)
		munmap(v->tx_ring, LAMINA_RING_PAGE_SIZE);
	if (v->rx_ring)
		munmap(v->rx_ring, LAMINA_RING_PAGE_SIZE);
	v->tx_ring = v->rx_ring = NULL;
	if (conn)
		ctl_gnt_unmap(conn, v->ring_handle, 2, NULL);
	if (v->ring_fd >= 0)
		close(v->ring_fd);
	v->ring_fd = -1;
	be_log("netback: %s disconnected", v->ifname);
}

/* Map the two ring pages (read-write) of the front-end. */
static int netd_rings_map(struct netd *d, struct netd_vif *v, uint32_t tx_ref, uint32_t rx_ref)
{
	struct lamina_ctl_gnt_map_ent ents[2] = { { .ref = tx_ref }, { .ref = rx_ref } };
	struct lamina_ctl_gnt_mapped out[2];
	int fds[2] = { -1, -1 }, rc;

	rc = ctl_gnt_map(&d->ctl.conn, v->domid, ents, 2, 0, out, fds);
	if (rc < 0)
		return rc;
	if (fds[0] >= 0)
		close(fds[0]);
	v->ring_fd = fds[1];
	v->ring_handle[0] = out[0].handle;
	v->ring_handle[1] = out[1].handle;
	rc = -EFAULT;
	if (out[0].status != GNTST_okay || out[1].status != GNTST_okay || v->ring_fd < 0)
		goto out_unmap;
	v->tx_ring = ctl_gnt_mmap_page(v->ring_fd, out[0].offset, true);
	v->rx_ring = ctl_gnt_mmap_page(v->ring_fd, out[1].offset, true);
	if (!v->tx_ring || !v->rx_ring)
		goto out_unmap;
	return 0;
out_unmap:
	if (v->tx_ring)
		munmap(v->tx_ring, LAMINA_RING_PAGE_SIZE);
	if (v->rx_ring)
		munmap(v->rx_ring, LAMINA_RING_PAGE_SIZE);
	v->tx_ring = v->rx_ring = NULL;
	for (int i = 0; i < 2; i++)
		if (out[i].status == GNTST_okay)
			ctl_gnt_unmap(&d->ctl.conn, &out[i].handle, 1, NULL);
	if (v->ring_fd >= 0)
		close(v->ring_fd);
	v->ring_fd = -1;
	return rc;
}

static int netd_connect(struct netd *d, struct netd_vif *v)
{
	struct epoll_event etx = { .events = EPOLLIN, .data.ptr = &v->w_tx };
	struct epoll_event erx = { .events = EPOLLIN, .data.ptr = &v->w_rx };
	uint64_t tx_ref, rx_ref, port_tx, port_rx, copy = 0, no_csum = 0;
	int rc;

	if ((rc = netd_xs_read_uint(d, v->fe, "tx-ring-ref", UINT32_MAX, &tx_ref)) < 0 ||
	    (rc = netd_xs_read_uint(d, v->fe, "rx-ring-ref", UINT32_MAX, &rx_ref)) < 0)
		return rc;
	/* Only copying receive: a front-end that cannot take copies is refused. */
	if (netd_xs_read_uint(d, v->fe, "request-rx-copy", 1, &copy) < 0 || !copy)
		return -EOPNOTSUPP;
	v->split = 0;
	if (netd_xs_read_uint(d, v->fe, "event-channel-tx", UINT32_MAX, &port_tx) == 0 &&
	    netd_xs_read_uint(d, v->fe, "event-channel-rx", UINT32_MAX, &port_rx) == 0)
		v->split = 1;
	else if ((rc = netd_xs_read_uint(d, v->fe, "event-channel", UINT32_MAX, &port_tx)) < 0)
		return rc;
	rc = netd_rings_map(d, v, (uint32_t)tx_ref, (uint32_t)rx_ref);
	if (rc < 0)
		return rc;
	rc = ctl_evtchn_bind_interdomain(&d->ctl.conn, v->domid, (uint32_t)port_tx, &v->tx_ch);
	if (rc == 0 && v->split)
		rc = ctl_evtchn_bind_interdomain(&d->ctl.conn, v->domid, (uint32_t)port_rx, &v->rx_ch);
	else if (rc == 0)
		v->rx_ch = v->tx_ch;
	v->connected = 1; /* from here netd_disconnect undoes everything */
	if (rc < 0) {
		netd_disconnect(d, v);
		return rc;
	}
	netback_vif_init(&v->eng, v->domid, v->devid, v->mac, v->tx_ring, v->rx_ring, v->tap_fd, &netd_gnt_ops, v,
			 d->buf);
	v->eng.allow_spoof = v->allow_spoof;
	/* Checksum offload is on unless the front-end turned it off (Xen's default). */
	netd_xs_read_uint(d, v->fe, "feature-no-csum-offload", 1, &no_csum);
	v->eng.csum_offload = no_csum == 0;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, v->tx_ch.event_fd, &etx) < 0 ||
	    (v->split && epoll_ctl(d->epfd, EPOLL_CTL_ADD, v->rx_ch.event_fd, &erx) < 0)) {
		rc = -errno;
		netd_disconnect(d, v);
		return rc;
	}
	v->tap_armed = 0;
	netd_tap_arm(d, v);
	be_log("netback: %s connected: %s event channels, bridge %s", v->ifname, v->split ? "split" : "one pair of",
	       v->bridge);
	netd_set_state(d, v, XenbusStateConnected);
	netd_vif_service(d, v, NETD_W_SIGNAL);
	return 0;
}

void netd_vif_service(struct netd *d, struct netd_vif *v, enum netd_watch_kind why)
{
	char reason[160];
	int rc = 0, tx, rx;

	if (!v->connected)
		return;
	if (why == NETD_W_TX || why == NETD_W_RX)
		ctl_evtchn_ack(why == NETD_W_TX ? &v->tx_ch : &v->rx_ch, NULL);
	if (why == NETD_W_TAP)
		v->tap_armed = 0;
	/* One port without split channels: a kick may mean either ring. The sweep serves both. */
	tx = why == NETD_W_TX || why == NETD_W_SIGNAL || !v->split;
	rx = why != NETD_W_TX || !v->split;
	v->busy = 0;
	if (tx) {
		rc = netback_vif_tx(&v->eng, NETD_BUDGET);
		v->busy |= rc == NETD_BUDGET; /* not re-armed (req_event): the loop comes back */
	}
	if (rc >= 0 && rx) {
		rc = netback_vif_rx(&v->eng, NETD_BUDGET);
		v->busy |= rc == NETD_BUDGET;
	}
	if (rc == -EPROTO) {
		snprintf(reason, sizeof(reason), "ring broken: %s", v->eng.why);
		netd_xs_printf(d, v->be, "error", "%s", reason);
		netd_disconnect(d, v);
		netd_set_state(d, v, XenbusStateClosing);
		return;
	}
	/* Keep reading the tap only while the guest has posted buffers; the sweep drops what a
	 * guest leaves waiting too long. */
	if (!v->eng.rx_starved_since_ns)
		netd_tap_arm(d, v);
	netd_stats_write(d, v, 0);
}

static void netd_advertise(struct netd *d, struct netd_vif *v)
{
	netd_xs_printf(d, v->be, "feature-sg", "1");
	netd_xs_printf(d, v->be, "feature-rx-copy", "1");
	netd_xs_printf(d, v->be, "feature-rx-flip", "0");
	netd_xs_printf(d, v->be, "feature-split-event-channels", "1");
	netd_xs_printf(d, v->be, "feature-gso-tcpv4", "0");
	netd_xs_printf(d, v->be, "feature-gso-tcpv6", "0");
	netd_xs_printf(d, v->be, "feature-ipv6-csum-offload", "0");
	netd_xs_printf(d, v->be, "multi-queue-max-queues", "1");
	netd_xs_printf(d, v->be, "mtu", "1500");
	netd_xs_printf(d, v->be, "hotplug-status", "connected");
}

static struct netd_vif *netd_find(struct netd *d, uint32_t domid, uint32_t devid)
{
	for (struct netd_vif *v = d->vifs; v; v = v->next)
		if (!v->dead && v->domid == domid && v->devid == devid)
			return v;
	return NULL;
}

static void netd_vif_new(struct netd *d, uint32_t domid, uint32_t devid, const char *be)
{
	struct epoll_event e = { .events = 0, .data.ptr = NULL };
	char fe[NETD_PATH_MAX], mac[32], spoof[8] = "0", path[NETD_PATH_MAX + 8];
	struct netd_vif *v;
	int rc;

	if (netd_xs_read(d, be, "frontend", fe, sizeof(fe)) < 0 || netd_xs_read(d, be, "mac", mac, sizeof(mac)) < 0)
		return; /* the toolstack is still writing the directory: its next write fires again */
	v = calloc(1, sizeof(*v));
	if (!v)
		return;
	v->owner = d;
	v->domid = domid;
	v->devid = devid;
	v->tap_fd = v->ring_fd = -1;
	v->tx_ch = v->rx_ch = (struct ctl_evtchn)CTL_EVTCHN_INIT;
	v->w_tx = (struct netd_watch){ NETD_W_TX, v };
	v->w_rx = (struct netd_watch){ NETD_W_RX, v };
	v->w_tap = (struct netd_watch){ NETD_W_TAP, v };
	snprintf(v->be, sizeof(v->be), "%s", be);
	snprintf(v->fe, sizeof(v->fe), "%s", fe);
	if (netd_xs_read(d, be, "bridge", v->bridge, sizeof(v->bridge)) < 0)
		snprintf(v->bridge, sizeof(v->bridge), "%s", NETD_DEFAULT_BRIDGE);
	netd_xs_read(d, be, "allow-spoof", spoof, sizeof(spoof));
	v->allow_spoof = strcmp(spoof, "1") == 0;
	rc = sscanf(mac, "%2hhx:%2hhx:%2hhx:%2hhx:%2hhx:%2hhx", &v->mac[0], &v->mac[1], &v->mac[2], &v->mac[3],
		    &v->mac[4], &v->mac[5]) == 6 ? 0 : -EINVAL;
	if (rc == 0)
		rc = netback_vif_name(domid, devid, v->ifname, sizeof(v->ifname));
	if (rc == 0)
		rc = netback_tap_open(v->ifname, &v->tap_fd);
	if (rc == 0)
		rc = netback_link_up(v->ifname, 1500);
	if (rc == 0)
		rc = netback_bridge_add(v->bridge, v->ifname);
	e.data.ptr = &v->w_tap;
	if (rc == 0 && epoll_ctl(d->epfd, EPOLL_CTL_ADD, v->tap_fd, &e) < 0)
		rc = -errno;
	if (rc < 0) {
		be_log("netback: dom%u vif %u: cannot set up %s on bridge %s: %s", domid, devid, v->ifname, v->bridge,
		       strerror(-rc));
		netd_xs_printf(d, be, "hotplug-error", "%s on %s: %s", v->ifname, v->bridge, strerror(-rc));
		netd_xs_printf(d, be, "hotplug-status", "error");
		netd_xs_printf(d, be, "state", "%d", XenbusStateClosed);
		if (v->tap_fd >= 0)
			close(v->tap_fd);
		free(v);
		return;
	}
	v->next = d->vifs;
	d->vifs = v;
	netd_advertise(d, v);
	netd_set_state(d, v, XenbusStateInitWait);
	snprintf(path, sizeof(path), "%s/state", v->fe);
	xs_client_watch(d->xs, path, "fe");
	be_log("netback: %s (mac %s) on bridge %s waiting for the front-end", v->ifname, mac, v->bridge);
}

static void netd_vif_drop(struct netd *d, struct netd_vif *v)
{
	char path[NETD_PATH_MAX + 8];

	netd_disconnect(d, v);
	snprintf(path, sizeof(path), "%s/state", v->fe);
	if (d->xs)
		xs_client_unwatch(d->xs, path, "fe");
	if (v->tap_fd >= 0) { /* closing the tap removes the device and its bridge port */
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, v->tap_fd, NULL);
		close(v->tap_fd);
		v->tap_fd = -1;
	}
	v->dead = 1;
}

static void netd_backend_changed(struct netd *d, uint32_t domid, uint32_t devid)
{
	char be[NETD_PATH_MAX], fe[NETD_PATH_MAX], online[8] = "1";
	struct netd_vif *v = netd_find(d, domid, devid);
	uint64_t fe_state = XenbusStateUnknown;

	snprintf(be, sizeof(be), NETD_BACKEND_ROOT "/%u/%u", domid, devid);
	if (netd_xs_read(d, be, "frontend", fe, sizeof(fe)) == -ENOENT) {
		if (v) {
			be_log("netback: %s removed", v->ifname);
			netd_vif_drop(d, v);
		}
		return;
	}
	if (!v) {
		netd_vif_new(d, domid, devid, be);
		return;
	}
	netd_xs_read(d, be, "online", online, sizeof(online));
	if (strcmp(online, "0") == 0 && v->be_state < XenbusStateClosing) {
		netd_set_state(d, v, XenbusStateClosing);
		netd_xs_read_uint(d, v->fe, "state", XenbusStateReconfigured, &fe_state);
		if (!v->connected || fe_state == XenbusStateClosed || fe_state == XenbusStateUnknown) {
			netd_disconnect(d, v);
			netd_set_state(d, v, XenbusStateClosed);
		}
	}
}

static void netd_frontend_changed(struct netd *d, struct netd_vif *v)
{
	uint64_t st;
	int rc = netd_xs_read_uint(d, v->fe, "state", XenbusStateReconfigured, &st);

	if (rc == -ENOENT) {
		netd_disconnect(d, v);
		return;
	}
	if (rc < 0)
		return;
	switch (st) {
	case XenbusStateConnected:
		if (!v->connected && v->be_state == XenbusStateInitWait) {
			rc = netd_connect(d, v);
			if (rc < 0) {
				be_log("netback: %s: cannot connect: %s", v->ifname, strerror(-rc));
				netd_xs_printf(d, v->be, "error", "connect: %s", strerror(-rc));
				netd_set_state(d, v, XenbusStateClosing);
			}
		}
		break;
	case XenbusStateClosing:
	case XenbusStateClosed:
		netd_disconnect(d, v);
		netd_set_state(d, v, XenbusStateClosed);
		break;
	case XenbusStateInitialising:
		if (!v->connected && v->be_state == XenbusStateClosed) {
			char online[8] = "1";

			netd_xs_read(d, v->be, "online", online, sizeof(online));
			if (strcmp(online, "0") != 0)
				netd_set_state(d, v, XenbusStateInitWait);
		}
		break;
	default:
		break;
	}
}

static void netd_scan(struct netd *d)
{
	char **doms = NULL, **devs = NULL, dir[NETD_PATH_MAX], p[NETD_PATH_MAX * 2];
	unsigned nd, nv;

	if (xs_client_ls(d->xs, 0, NETD_BACKEND_ROOT, &doms, &nd) < 0)
		return;
	for (unsigned i = 0; i < nd; i++) {
		snprintf(dir, sizeof(dir), NETD_BACKEND_ROOT "/%s", doms[i]);
		if (xs_client_ls(d->xs, 0, dir, &devs, &nv) < 0)
			continue;
		for (unsigned j = 0; j < nv; j++) {
			snprintf(p, sizeof(p), "%s/%s", dir, devs[j]);
			netd_xenbus_event(d, p);
		}
		free(devs);
	}
	free(doms);
}

void netd_xenbus_event(struct netd *d, const char *path)
{
	const size_t rl = strlen(NETD_BACKEND_ROOT);
	unsigned domid, devid;
	int used = 0;

	if (strcmp(path, NETD_BACKEND_ROOT) == 0) {
		netd_scan(d);
		return;
	}
	if (strncmp(path, NETD_BACKEND_ROOT "/", rl + 1) == 0) {
		if (sscanf(path + rl + 1, "%u/%u%n", &domid, &devid, &used) == 2 && used > 0 &&
		    (path[rl + 1 + used] == '\0' || path[rl + 1 + used] == '/') && domid < DOMID_FIRST_RESERVED &&
		    devid < 1000)
			netd_backend_changed(d, domid, devid);
		return;
	}
	for (struct netd_vif *v = d->vifs; v; v = v->next) {
		size_t fl = strlen(v->fe);

		if (!v->dead && strncmp(path, v->fe, fl) == 0 && (path[fl] == '\0' || path[fl] == '/'))
			netd_frontend_changed(d, v);
	}
}

void netd_drop_domain(struct netd *d, uint32_t domid)
{
	for (struct netd_vif *v = d->vifs; v; v = v->next)
		if (!v->dead && v->domid == domid)
			netd_vif_drop(d, v);
}

void netd_drop_all(struct netd *d)
{
	for (struct netd_vif *v = d->vifs; v; v = v->next)
		if (!v->dead)
			netd_vif_drop(d, v);
}

void netd_reap(struct netd *d)
{
	struct netd_vif **pp = &d->vifs;

	while (*pp) {
		struct netd_vif *v = *pp;

		if (v->dead) {
			*pp = v->next;
			free(v);
		} else {
			pp = &v->next;
		}
	}
}
