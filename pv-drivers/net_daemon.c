/* lamina-netback: the vif device type on the back-end framework (which owns the options, the
 * control and store connections, the loop and the xenbus state machine). Here: probe a back-end
 * directory (make its tap on its bridge), connect the tx and rx rings and event channels the
 * front-end published, serve kicks and tap input within a budget, disconnect on a broken ring, the
 * grant-copy buffer that belongs to each control connection, and the statistics files `domctl stat`
 * reads. Every value read from the front-end's directory is the guest's and is bound-checked. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ctl_grant_client.h"
#include "netd.h"

#define NETD_VIF(v) ((struct netd_vif *)(v))
_Static_assert(offsetof(struct netd_vif, base) == 0, "the framework's device comes first");

/* ---- grant copies and notifications for the engine ---- */

static int netd_copy(void *arg, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n, int32_t *status)
{
	struct netd_vif *v = arg;

	return ctl_gnt_copy(&v->base.owner->ctl.conn, segs, n, status);
}

static int netd_notify(void *arg, unsigned which)
{
	struct netd_vif *v = arg;

	return ctl_evtchn_notify(which ? &v->rx_ch : &v->tx_ch);
}

const struct netback_gnt_ops netd_gnt_ops = { .copy = netd_copy, .notify = netd_notify };

static struct be_dev *netd_alloc(void)
{
	struct netd_vif *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->tap_fd = v->ring_fd = -1;
	v->tx_ch = v->rx_ch = (struct ctl_evtchn)CTL_EVTCHN_INIT;
	v->w_tx = (struct be_watch){ BE_W_DEV, NETD_T_TX, &v->base };
	v->w_rx = (struct be_watch){ BE_W_DEV, NETD_T_RX, &v->base };
	v->w_tap = (struct be_watch){ BE_W_DEV, NETD_T_TAP, &v->base };
	return &v->base;
}

static void netd_free(struct be_dev *v)
{
	free(NETD_VIF(v));
}

static int netd_probe(struct be_daemon *d, struct be_dev *bv, char *why, size_t whylen)
{
	struct netd_vif *v = NETD_VIF(bv);
	char mac[32], spoof[8] = "0";
	int rc;

	if (be_xs_read(d, bv->be, "mac", mac, sizeof(mac)) < 0)
		return -EAGAIN; /* the toolstack is still writing the directory */
	if (be_xs_read(d, bv->be, "bridge", v->bridge, sizeof(v->bridge)) < 0)
		snprintf(v->bridge, sizeof(v->bridge), "%s", NETD_DEFAULT_BRIDGE);
	be_xs_read(d, bv->be, "allow-spoof", spoof, sizeof(spoof));
	v->allow_spoof = strcmp(spoof, "1") == 0;
	rc = sscanf(mac, "%2hhx:%2hhx:%2hhx:%2hhx:%2hhx:%2hhx", &v->mac[0], &v->mac[1], &v->mac[2], &v->mac[3],
		    &v->mac[4], &v->mac[5]) == 6 ? 0 : -EINVAL;
	if (rc == 0)
		rc = netback_vif_name(bv->domid, bv->devid, bv->name, sizeof(bv->name));
	if (rc == 0)
		rc = netback_tap_open(bv->name, &v->tap_fd);
	if (rc == 0)
		rc = netback_link_up(bv->name, 1500);
	if (rc == 0)
		rc = netback_bridge_add(v->bridge, bv->name);
	/* Registered now, armed (one-shot) only while the guest can take frames. */
	if (rc == 0)
		rc = be_daemon_watch(d, EPOLL_CTL_ADD, v->tap_fd, 0, &v->w_tap);
	if (rc < 0) {
		snprintf(why, whylen, "%s on %s: %s", bv->name, v->bridge, strerror(-rc));
		if (v->tap_fd >= 0)
			close(v->tap_fd);
		v->tap_fd = -1;
		return rc == -EAGAIN ? -EIO : rc;
	}
	be_log("netback: %s (mac %s) on bridge %s", bv->name, mac, v->bridge);
	return 0;
}

static void netd_release(struct be_daemon *d, struct be_dev *bv)
{
	struct netd_vif *v = NETD_VIF(bv);

	if (v->tap_fd >= 0) { /* closing the tap removes the device and its bridge port */
		be_daemon_unwatch(d, v->tap_fd);
		close(v->tap_fd);
		v->tap_fd = -1;
	}
}

static void netd_tap_arm(struct be_daemon *d, struct netd_vif *v)
{
	if (v->tap_armed || !v->base.connected)
		return;
	if (be_daemon_watch(d, EPOLL_CTL_MOD, v->tap_fd, EPOLLIN | EPOLLONESHOT, &v->w_tap) == 0)
		v->tap_armed = 1;
}

/* Undo whatever part of a connection exists (also after a connect that failed half-way). */
static void netd_disconnect(struct be_daemon *d, struct be_dev *bv)
{
	struct netd_vif *v = NETD_VIF(bv);
	struct ctl_conn *conn = d->ctl.connected ? &d->ctl.conn : NULL;

	if (v->ring_fd < 0)
		return;
	be_daemon_unwatch(d, v->tx_ch.event_fd);
	if (v->split)
		be_daemon_unwatch(d, v->rx_ch.event_fd);
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
	close(v->ring_fd);
	v->ring_fd = -1;
}

/* Map the two ring pages (read-write) of the front-end. */
static int netd_rings_map(struct be_daemon *d, struct netd_vif *v, uint32_t tx_ref, uint32_t rx_ref)
{
	struct lamina_ctl_gnt_map_ent ents[2] = { { .ref = tx_ref }, { .ref = rx_ref } };
	struct lamina_ctl_gnt_mapped out[2];
	int fds[2] = { -1, -1 }, rc;

	rc = ctl_gnt_map(&d->ctl.conn, v->base.domid, ents, 2, 0, out, fds);
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

static int netd_connect(struct be_daemon *d, struct be_dev *bv)
{
	struct netd_vif *v = NETD_VIF(bv);
	struct netd *nd = d->priv;
	uint64_t tx_ref, rx_ref, port_tx, port_rx, copy = 0, no_csum = 0;
	int rc;

	if ((rc = be_xs_read_uint(d, bv->fe, "tx-ring-ref", UINT32_MAX, &tx_ref)) < 0 ||
	    (rc = be_xs_read_uint(d, bv->fe, "rx-ring-ref", UINT32_MAX, &rx_ref)) < 0)
		return rc;
	/* Only copying receive: a front-end that cannot take copies is refused. */
	if (be_xs_read_uint(d, bv->fe, "request-rx-copy", 1, &copy) < 0 || !copy)
		return -EOPNOTSUPP;
	v->split = 0;
	if (be_xs_read_uint(d, bv->fe, "event-channel-tx", UINT32_MAX, &port_tx) == 0 &&
	    be_xs_read_uint(d, bv->fe, "event-channel-rx", UINT32_MAX, &port_rx) == 0)
		v->split = 1;
	else if ((rc = be_xs_read_uint(d, bv->fe, "event-channel", UINT32_MAX, &port_tx)) < 0)
		return rc;
	rc = netd_rings_map(d, v, (uint32_t)tx_ref, (uint32_t)rx_ref);
	if (rc < 0)
		return rc;
	rc = ctl_evtchn_bind_interdomain(&d->ctl.conn, bv->domid, (uint32_t)port_tx, &v->tx_ch);
	if (rc == 0 && v->split)
		rc = ctl_evtchn_bind_interdomain(&d->ctl.conn, bv->domid, (uint32_t)port_rx, &v->rx_ch);
	else if (rc == 0)
		v->rx_ch = v->tx_ch;
	if (rc < 0)
		goto out_disconnect;
	netback_vif_init(&v->eng, bv->domid, bv->devid, v->mac, v->tx_ring, v->rx_ring, v->tap_fd, &netd_gnt_ops, v,
			 nd->buf);
	v->eng.allow_spoof = v->allow_spoof;
	/* Checksum offload is on unless the front-end turned it off (Xen's default). */
	be_xs_read_uint(d, bv->fe, "feature-no-csum-offload", 1, &no_csum);
	v->eng.csum_offload = no_csum == 0;
	if ((rc = be_daemon_watch(d, EPOLL_CTL_ADD, v->tx_ch.event_fd, EPOLLIN, &v->w_tx)) < 0 ||
	    (v->split && (rc = be_daemon_watch(d, EPOLL_CTL_ADD, v->rx_ch.event_fd, EPOLLIN, &v->w_rx)) < 0))
		goto out_disconnect;
	v->tap_armed = 0;
	be_log("netback: %s connected: %s event channels, bridge %s", bv->name, v->split ? "split" : "one pair of",
	       v->bridge);
	return 0;
out_disconnect:
	netd_disconnect(d, bv);
	return rc;
}

static void netd_kick(struct be_daemon *d, struct be_dev *bv, unsigned tag)
{
	struct netd_vif *v = NETD_VIF(bv);
	char reason[160];
	int rc = 0, tx, rx;

	if (tag == NETD_T_TX || tag == NETD_T_RX)
		ctl_evtchn_ack(tag == NETD_T_TX ? &v->tx_ch : &v->rx_ch, NULL);
	if (tag == NETD_T_TAP)
		v->tap_armed = 0;
	/* One port without split channels: a kick may mean either ring. The sweep serves both. */
	tx = tag == NETD_T_TX || tag == BE_KICK_ALL || !v->split;
	rx = tag != NETD_T_TX || !v->split;
	bv->busy = 0;
	if (tx) {
		uint64_t now = be_now_ns();

		v->eng.tx_poll = be_dev_polling(d, bv, now);
		rc = netback_vif_tx(&v->eng, NETD_BUDGET);
		if (rc > 0)
			be_dev_took(d, bv, now);
		/* Not re-armed (req_event) at the budget or while polling (be_dev_polling): the loop
		 * comes back. Once the window passes, one more turn re-arms it. */
		bv->busy |= rc == NETD_BUDGET || (rc >= 0 && (v->eng.tx_poll || be_dev_polling(d, bv, now)));
	}
	if (rc >= 0 && rx) {
		rc = netback_vif_rx(&v->eng, NETD_BUDGET);
		bv->busy |= rc == NETD_BUDGET;
	}
	if (rc == -EPROTO) {
		snprintf(reason, sizeof(reason), "ring broken: %s", v->eng.why);
		be_dev_fail(d, bv, reason);
		return;
	}
	/* Keep reading the tap only while the guest has posted buffers; the sweep drops what a
	 * guest leaves waiting too long. */
	if (!v->eng.rx_starved_since_ns)
		netd_tap_arm(d, v);
	netd_stats_write(d, v, 0);
}

static void netd_sweep(struct be_daemon *d, struct be_dev *bv)
{
	netback_vif_rx_stall(&NETD_VIF(bv)->eng, NETD_RX_STALL_MS);
}

void netd_stats_write(struct be_daemon *d, struct netd_vif *v, int force)
{
	char text[1024];
	uint64_t now = be_now_ns();
	size_t n;

	if (!force && now - v->stats_ns < (uint64_t)BE_SWEEP_MS * 1000000ull)
		return;
	v->stats_ns = now;
	for (int json = 0; json < 2; json++) {
		if ((json ? netback_stats_format_json : netback_stats_format)(&v->eng, text, sizeof(text) - 1) < 0)
			continue;
		n = strlen(text);
		text[n++] = '\n';
		be_stats_file(d, &v->base, json ? "json" : "txt", text, n);
	}
}

static int netd_ctl_up(struct be_daemon *d)
{
	struct netd *nd = d->priv;
	int rc;

	if (nd->buf) {
		munmap(nd->buf, NETBACK_BUF_SIZE);
		nd->buf = NULL;
	}
	/* The copy buffer belongs to the connection: a new one with each connection. */
	rc = ctl_gnt_buffer(&d->ctl.conn, NETBACK_BUF_SIZE, &nd->buf);
	if (rc < 0 && !nd->buf_warned++)
		be_log("netback: no grant-copy buffer: %s (retrying quietly)", d->ctl.conn.err);
	return rc;
}

static void netd_shutdown(struct be_daemon *d)
{
	struct netd *nd = d->priv;

	if (nd->buf)
		munmap(nd->buf, NETBACK_BUF_SIZE);
	nd->buf = NULL;
}

static const struct be_feature netd_features[] = {
	{ "feature-sg", "1" },
	{ "feature-rx-copy", "1" },
	{ "feature-rx-flip", "0" },
	{ "feature-split-event-channels", "1" },
	{ "feature-gso-tcpv4", "0" },
	{ "feature-gso-tcpv6", "0" },
	{ "feature-ipv6-csum-offload", "0" },
	{ "multi-queue-max-queues", "1" },
	{ "mtu", "1500" },
};

const struct be_type_ops netd_type = {
	.type = "vif",
	.prog = "netback",
	.usage = "The PV network back-end: one tap vifD.N per vif under " BE_BACKEND_DIR "/vif, attached to\n"
		 "the bridge its directory names (default " NETD_DEFAULT_BRIDGE "); writes per-vif statistics to\n"
		 "DIR/netback/DOMID-DEVID.{txt,json}. Taps are made in this process's network namespace.\n",
	.features = netd_features,
	.nfeatures = sizeof(netd_features) / sizeof(netd_features[0]),
	.max_devid = 999,
	.alloc = netd_alloc,
	.free = netd_free,
	.probe = netd_probe,
	.connect = netd_connect,
	.disconnect = netd_disconnect,
	.release = netd_release,
	.kick = netd_kick,
	.sweep = netd_sweep,
	.ctl_up = netd_ctl_up,
	.shutdown = netd_shutdown,
};

int main(int argc, char **argv)
{
	struct netd nd = { 0 };

	return be_daemon_main(&netd_type, &nd, argc, argv);
}
