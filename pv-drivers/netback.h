/* lamina-netback: one vif per guest network device — netif tx/rx rings served through grant
 * copies, frames to and from a tap on a bridge, hostile front-ends dropped or disconnected. */
#ifndef LAMINA_NETBACK_H
#define LAMINA_NETBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <lamina/ring.h>
#include <lamina/control.h>
#include <xen/io/netif.h>

#include "backend.h"

_Static_assert(sizeof(struct netif_tx_request) == 12, "netif_tx_request size");
_Static_assert(sizeof(struct netif_tx_response) == 4, "netif_tx_response size");
_Static_assert(sizeof(struct netif_rx_request) == 8, "netif_rx_request size");
_Static_assert(sizeof(struct netif_rx_response) == 8, "netif_rx_response size");
_Static_assert(sizeof(struct netif_extra_info) <= sizeof(struct netif_tx_request), "extra fits a tx slot");
_Static_assert(offsetof(struct netif_tx_sring, ring) == 64, "netif sring header");

#define NETBACK_ETH_HLEN 14
#define NETBACK_FRAME_MAX 1518 /* MTU 1500 + Ethernet header + one VLAN tag; no GSO offered */
#define NETBACK_MAX_SLOTS XEN_NETIF_NR_SLOTS_MIN
#define NETBACK_BATCH 64	     /* frames per grant-copy call, each way */
#define NETBACK_BUF_STRIDE 2048      /* a frame's room in the copy buffer */
#define NETBACK_BUF_SIZE (2 * NETBACK_BATCH * NETBACK_BUF_STRIDE) /* tx half, then rx half */

/* Why a frame was not delivered, one counter each (index of netback_stats.drop). */
enum netback_drop {
	NETBACK_DROP_SIZE,	 /* frame shorter than a header or longer than NETBACK_FRAME_MAX */
	NETBACK_DROP_FRAGS,	 /* fragment sizes that do not add up, or cross their page */
	NETBACK_DROP_EXTRA,	 /* an extra-info slot we did not offer (GSO) or do not know */
	NETBACK_DROP_GRANT,	 /* a grant reference the guest did not grant (copy failed) */
	NETBACK_DROP_SPOOF,	 /* source MAC not the vif's own */
	NETBACK_DROP_TAP,	 /* the tap refused the write */
	NETBACK_DROP_RX_NOBUF,	 /* a frame for the guest with no rx buffer posted in time */
	NETBACK_DROP_RX_GRANT,	 /* an rx buffer reference that was not granted */
	NETBACK_DROP_CSUM,	 /* csum_blank from a front-end without checksum offload, or unfillable */
	NETBACK_DROP_NR
};

struct netback_stats {
	uint64_t tx_frames, tx_bytes, rx_frames, rx_bytes;
	uint64_t drop[NETBACK_DROP_NR];
	uint64_t tx_batches, rx_batches, tx_batch_max, rx_batch_max;
	uint64_t notify_sent, notify_suppressed;
	uint64_t disconnects;
};

/* A parsed, validated tx chain: slot 0's size is the frame length; the others are fragments. */
struct netback_chain {
	unsigned slots;	 /* ring slots the chain uses, extra-info slots included */
	unsigned nfrags; /* data requests (frag[0] is the first) */
	struct netif_tx_request frag[NETBACK_MAX_SLOTS];
	unsigned extra_after; /* extra-info slots (they follow the first request) */
	size_t len;
};

/* Grant copies between a guest and the copy buffer: lamina-hv's LAMINA_CTL_GNT_COPY in the
 * daemon, an in-memory grant table in the unit tests. status[i] is GNTST_* per segment. */
struct netback_gnt_ops {
	int (*copy)(void *arg, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n, int32_t *status);
	/* Tell the guest about new responses on ring 0 = tx, 1 = rx. */
	int (*notify)(void *arg, unsigned which);
};

struct netback_vif {
	uint32_t domid, devid;
	uint8_t mac[6];
	bool allow_spoof;
	bool csum_offload; /* the front-end may send csum_blank frames (no feature-no-csum-offload) */
	bool connected;
	char why[96]; /* the reason of a disconnect */
	int tap_fd;   /* non-blocking tap, IFF_NO_PI; -1 when none */
	struct netif_tx_back_ring tx;
	struct netif_rx_back_ring rx;
	const struct netback_gnt_ops *ops;
	void *ops_arg;
	uint8_t *buf; /* NETBACK_BUF_SIZE bytes the copy segments' buf_offset refer to */
	uint64_t rx_starved_since_ns; /* frames waiting with no rx buffer since, or 0 */
	/* Set by the caller while it polls the tx ring: a drained ring is left with req_event behind,
	 * so the front-end's pushes need no notification; clear, it is re-armed (and checked again). */
	bool tx_poll;
	struct netback_stats st;
	struct be_ratelimit rl;
};

/* ---- net_req.c: tx request chains, checked on private copies ---- */

/* Parse the chain starting at reqs[0] (n copied slots available). Returns the slots it uses when
 * the frame is good, -EAGAIN when the chain is not complete yet, -EBADMSG when the frame must be
 * dropped (c->slots then says how many slots to answer with errors, *drop why), -EPROTO when
 * the front-end is broken beyond a frame (a chain longer than NETBACK_MAX_SLOTS): disconnect. */
int netback_tx_parse(const struct netif_tx_request *reqs, unsigned n, struct netback_chain *c,
		     enum netback_drop *drop, const char **why);
/* 0 if the frame may leave this vif: its source MAC is the vif's, or spoofing is allowed. */
int netback_tx_mac_ok(const struct netback_vif *vif, const uint8_t *frame, size_t len);
const char *netback_drop_name(enum netback_drop d);
/* Complete the TCP or UDP checksum of an IPv4 frame the guest sent with NETTXF_csum_blank (the
 * field holds the pseudo-header sum, as with offload). 0, or -EBADMSG for a frame it cannot be
 * filled in (not IPv4 TCP/UDP, lengths out of the frame). */
int netback_csum_fill(uint8_t *frame, size_t len);

/* ---- net_vif.c: the vif engine ---- */

/* Set up a vif on shared rings the caller has mapped (tx_sring, rx_sring: one page each). */
void netback_vif_init(struct netback_vif *vif, uint32_t domid, uint32_t devid, const uint8_t mac[6],
		      void *tx_sring, void *rx_sring, int tap_fd, const struct netback_gnt_ops *ops, void *arg,
		      uint8_t *buf);
/* Serve tx requests: up to budget frames in batches of NETBACK_BATCH. Returns frames handled or
 * -EPROTO once the vif disconnected (why says the reason). */
int netback_vif_tx(struct netback_vif *vif, unsigned budget);
/* Move frames from the tap into posted rx buffers, batched; frames stay in the tap while no
 * buffer is posted. Returns frames delivered or -EPROTO. */
int netback_vif_rx(struct netback_vif *vif, unsigned budget);
/* Drop what waits in the tap when the guest posted no rx buffer for stall_ms: a guest that never
 * posts buffers cannot hold frames (or the tap queue) forever. Returns frames dropped. */
int netback_vif_rx_stall(struct netback_vif *vif, unsigned stall_ms);
void netback_vif_disconnect(struct netback_vif *vif, const char *why);
/* One line of counters (for domctl stat). */
int netback_stats_format(const struct netback_vif *vif, char *out, size_t len);
/* The same counters as one JSON object (for `domctl stat --json`). */
int netback_stats_format_json(const struct netback_vif *vif, char *out, size_t len);

/* ---- net_tap.c: tap devices and bridges (in the caller's network namespace) ---- */

int netback_tap_open(const char *name, int *fd);
int netback_link_up(const char *name, unsigned mtu);
int netback_bridge_create(const char *bridge);
int netback_bridge_add(const char *bridge, const char *ifname);
/* The vif's name, vifD.N. */
int netback_vif_name(uint32_t domid, uint32_t devid, char *out, size_t len);

#endif
