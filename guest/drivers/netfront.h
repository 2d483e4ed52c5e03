/* netfront: the guest's virtual network device — the netif xenbus handshake with lamina-netback,
 * separate tx and rx rings and event channels, persistently granted tx and rx buffer pages. */
#ifndef GUEST_DRIVERS_NETFRONT_H
#define GUEST_DRIVERS_NETFRONT_H

#include <stdbool.h>
#include <stdint.h>
#include <lamina/ring.h>
#include <xen/io/netif.h>
#include "../kernel/kernel.h"
#include "../kernel/gnttab.h"

/* Ring pages and buffers sit in RAM from 12 MiB up (above the block driver's pool). */
#define NETFRONT_BASE 0xc00000ull
#define NETFRONT_TX_BUFS 256u /* frames in flight to the back-end (a full ring), one page each */
#define NETFRONT_RX_BUFS 256u /* receive buffers kept posted (a full ring), one page each */
#define NETFRONT_FRAME_MAX 1514u

struct netfront {
	struct kernel *k;
	struct gnttab *gt;
	uint32_t devid;
	domid_t backend_id;
	char fe[64], be[96];
	uint8_t mac[6];
	struct netif_tx_front_ring tx;
	struct netif_rx_front_ring rx;
	grant_ref_t tx_ring_ref, rx_ring_ref;
	grant_ref_t tx_ref[NETFRONT_TX_BUFS], rx_ref[NETFRONT_RX_BUFS];
	evtchn_port_t tx_port, rx_port;
	uint16_t tx_free[NETFRONT_TX_BUFS];
	unsigned int tx_nfree;
	bool connected, dead;
	/* counters */
	uint64_t tx_frames, tx_errors, tx_full, rx_frames, rx_errors, notifies_sent, events;
};

/* Where received frames go: the network layer's input. */
typedef void (*netfront_rx_fn)(void *arg, const uint8_t *frame, size_t len, unsigned flags);

/* Handshake with the back-end of vif devid (first under device/vif when devid is ~0u). 0 or -errno
 * (-XEN_ENOENT: no such device). */
int netfront_init(struct netfront *nf, struct kernel *k, struct gnttab *gt, uint32_t devid);
/* Queue one frame (copied) and publish it; -XEN_EAGAIN when every tx buffer is in flight. */
int netfront_xmit(struct netfront *nf, const uint8_t *frame, size_t len);
/* Collect tx completions and received frames (handed to fn), post buffers again. Returns frames
 * received. */
int netfront_poll(struct netfront *nf, netfront_rx_fn fn, void *arg);
/* Wait (idle) until the back-end has answered something or deadline (system time, ns) passes. */
void netfront_wait(struct netfront *nf, uint64_t deadline);
void netfront_close(struct netfront *nf);
/* Has the back-end (or the toolstack, by a detach) left Connected? One store read. */
bool netfront_backend_closing(struct netfront *nf);
/* For hostile-front-end tests only: put n raw requests on the tx ring as given (refs, sizes and
 * flags unchecked) and publish them; extra moves the published producer that much further than
 * the requests written (a runaway producer). */
void netfront_tx_raw(struct netfront *nf, const struct netif_tx_request *reqs, unsigned int n, unsigned int extra);
/* The ref of tx buffer 0, filled with frame (for raw requests that should carry data). */
grant_ref_t netfront_tx_page(struct netfront *nf, const uint8_t *frame, size_t len);

#endif
