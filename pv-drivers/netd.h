/* lamina-netback, the daemon: one process serving every vif of every domain — store watches and
 * the xenbus handshake per vif, ring pages and grant copies through lamina-hv, taps, the loop. */
#ifndef LAMINA_NETD_H
#define LAMINA_NETD_H

#include <stdint.h>

#include "backend.h"
#include "netback.h"
#include "xs_client.h"

#define NETD_PATH_MAX 128
#define NETD_SWEEP_MS 250
#define NETD_BUDGET 256 /* frames per vif and direction before the others get a turn */
#define NETD_RX_STALL_MS 500 /* a guest with no rx buffer for this long loses what waits */
#define NETD_BACKEND_ROOT "/local/domain/0/backend/vif"
#define NETD_DEFAULT_BRIDGE "lambr0"

enum netd_watch_kind { NETD_W_SIGNAL, NETD_W_CTL, NETD_W_STORE, NETD_W_TX, NETD_W_RX, NETD_W_TAP };
struct netd_watch {
	enum netd_watch_kind kind;
	struct netd_vif *v;
};

struct netd;
struct netd_vif {
	struct netd *owner;
	struct netd_vif *next;
	struct netd_watch w_tx, w_rx, w_tap;
	uint32_t domid, devid;
	char be[NETD_PATH_MAX], fe[NETD_PATH_MAX];
	char bridge[16], ifname[16];
	uint8_t mac[6];
	int allow_spoof;
	int be_state;
	int tap_fd;
	int tap_armed;
	void *tx_ring, *rx_ring;
	uint32_t ring_handle[2];
	int ring_fd;
	struct ctl_evtchn tx_ch, rx_ch; /* the same port twice without split event channels */
	int split;
	int connected;
	int busy; /* the last service used its whole budget: serve again without waiting */
	struct netback_vif eng;
	int dead;
	uint64_t stats_ns;
};

struct netd {
	const char *rundir;
	struct be_ctl ctl;
	struct xs_client *xs;
	int epfd, sigfd;
	int stop;
	int buf_warned; /* the copy-buffer failure is logged once, not at every retry */
	uint8_t *buf; /* the grant-copy buffer shared with lamina-hv (NETBACK_BUF_SIZE) */
	struct netd_vif *vifs;
	struct netd_watch w_signal, w_ctl, w_store;
	uint64_t last_sweep_ns;
};

extern const struct netback_gnt_ops netd_gnt_ops;

/* net_xenbus.c */
void netd_xenbus_event(struct netd *d, const char *path);
/* Serve a vif after why fired (NETD_W_SIGNAL: the periodic sweep, everything). */
void netd_vif_service(struct netd *d, struct netd_vif *v, enum netd_watch_kind why);
void netd_drop_domain(struct netd *d, uint32_t domid);
void netd_drop_all(struct netd *d);
void netd_reap(struct netd *d);
/* Write RUNDIR/netback/DOMID-DEVID.txt for `domctl stat` (at most every NETD_SWEEP_MS unless forced). */
void netd_stats_write(struct netd *d, struct netd_vif *v, int force);

#endif
