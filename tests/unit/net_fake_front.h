/* An in-process netif front-end for lamina-netback's unit tests: grant pages in plain memory, the
 * shared tx/rx rings, posted rx buffers, and the guest network layer (hosted) on top. */
#ifndef LAMINA_TEST_NET_FAKE_FRONT_H
#define LAMINA_TEST_NET_FAKE_FRONT_H

#define NET_HOSTED 1
#include "netback.h"
#include "../../guest/net/net.h"

#define NF_PAGES 192
#define NF_TX_BASE 0	 /* grefs 0..63: tx pages, one per request id */
#define NF_RX_BASE 64	 /* grefs 64..127: rx buffers, one per rx id */
#define NF_TX_INFLIGHT 64
#define NF_RX_BUFS 64

struct nf_fake {
	uint32_t domid;
	uint8_t (*pages)[4096];
	bool granted[NF_PAGES];
	bool post_rx; /* false: a front-end that never posts rx buffers */
	void *tx_page, *rx_page;
	struct netif_tx_front_ring tx;
	struct netif_rx_front_ring rx;
	unsigned tx_inflight;
	int16_t last_tx_status;
	unsigned tx_responses;
	uint8_t *copybuf;
	struct net_if nif;
	unsigned notified[2];
	unsigned echo_replies;
	unsigned udp_rx;
	struct netback_vif vif;
};

extern const struct netback_gnt_ops nf_gnt_ops;

/* rx_bufs buffers are posted now (0: a front-end that never posts any). */
int nf_init(struct nf_fake *f, uint32_t domid, const uint8_t mac[6], uint32_t ip, int tap_fd, unsigned rx_bufs);
void nf_free(struct nf_fake *f);
/* Queue one request chain on the tx ring (reqs copied as given) and publish it. */
void nf_tx_raw(struct nf_fake *f, const struct netif_tx_request *reqs, unsigned n);
/* Consume responses: tx ones free their slot, rx ones go to the stack, and the buffer is posted
 * again. */
void nf_poll(struct nf_fake *f);
/* One pass of both ends. */
void nf_pump(struct nf_fake *f);

#endif
