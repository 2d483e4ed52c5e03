/* lamina-netback, the daemon: one process serving every vif of every domain — store watches and
 * the xenbus handshake come from the back-end framework; this is the vif type, its taps and copies. */
#ifndef LAMINA_NETD_H
#define LAMINA_NETD_H

#include <stdint.h>

#include "be_dev.h"
#include "netback.h"
#include "xs_client.h"

#define NETD_BUDGET 256 /* frames per vif and direction before the others get a turn */
#define NETD_RX_STALL_MS 500 /* a guest with no rx buffer for this long loses what waits */
#define NETD_DEFAULT_BRIDGE "lambr0"

/* One vif: the framework's device first, then its tap, rings and engine. */
enum netd_tag { NETD_T_TX = 1, NETD_T_RX, NETD_T_TAP };
struct netd_vif {
	struct be_dev base; /* base.name is the tap's name, vifD.N */
	struct be_watch w_tx, w_rx, w_tap;
	char bridge[16];
	uint8_t mac[6];
	int allow_spoof;
	int tap_fd;
	int tap_armed;
	void *tx_ring, *rx_ring;
	uint32_t ring_handle[2];
	int ring_fd;
	struct ctl_evtchn tx_ch, rx_ch; /* the same port twice without split event channels */
	int split;
	struct netback_vif eng;
	uint64_t stats_ns;
};


/* The daemon-wide state of lamina-netback (be_daemon.priv). */
struct netd {
	int buf_warned; /* the copy-buffer failure is logged once, not at every retry */
	uint8_t *buf;	/* the grant-copy buffer shared with lamina-hv (NETBACK_BUF_SIZE) */
};

/* net_daemon.c: the vif device type the back-end framework drives. */
extern const struct be_type_ops netd_type;
extern const struct netback_gnt_ops netd_gnt_ops;

/* Write RUNDIR/netback/DOMID-DEVID.{txt,json} for `domctl stat` (at most every BE_SWEEP_MS unless forced). */
void netd_stats_write(struct be_daemon *d, struct netd_vif *v, int force);

#endif
