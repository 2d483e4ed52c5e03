/* The fake netif front-end of the netback unit tests: what a guest's netfront does, in-process,
 * with the grant table an array of pages (see net_fake_front.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net_fake_front.h"

/* The grant-copy service: refs index f->pages and must be granted; bounds as lamina-hv checks. */
static int nf_copy(void *arg, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n, int32_t *status)
{
	struct nf_fake *f = arg;
	uint32_t i;

	for (i = 0; i < n; i++) {
		const struct lamina_ctl_gnt_copy_seg *s = &segs[i];

		if (s->domid != f->domid || s->ref >= NF_PAGES || !f->granted[s->ref]) {
			status[i] = GNTST_bad_gntref;
			continue;
		}
		if ((uint32_t)s->offset + s->len > 4096 || s->buf_offset + s->len > NETBACK_BUF_SIZE) {
			status[i] = GNTST_bad_copy_arg;
			continue;
		}
		if (s->flags & LAMINA_GNT_TO_GUEST)
			memcpy(f->pages[s->ref] + s->offset, f->copybuf + s->buf_offset, s->len);
		else
			memcpy(f->copybuf + s->buf_offset, f->pages[s->ref] + s->offset, s->len);
		status[i] = GNTST_okay;
	}
	return 0;
}

static int nf_notify(void *arg, unsigned which)
{
	struct nf_fake *f = arg;

	f->notified[which & 1]++;
	return 0;
}

const struct netback_gnt_ops nf_gnt_ops = { .copy = nf_copy, .notify = nf_notify };

static void nf_post_rx(struct nf_fake *f, uint16_t id)
{
	struct netif_rx_request *r = RING_GET_REQUEST(&f->rx, f->rx.req_prod_pvt);
	int notify;

	r->id = id;
	r->gref = NF_RX_BASE + id;
	f->rx.req_prod_pvt++;
	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&f->rx, notify);
	(void)notify;
}

/* The stack's transmit: the frame goes into the tx page of a free id, split in two fragments
 * across two pages when it is long (scatter-gather, as a real netfront does at page ends). */
static int nf_xmit(void *arg, const uint8_t *frame, size_t len)
{
	struct nf_fake *f = arg;
	struct netif_tx_request req[2];
	uint16_t id = (uint16_t)(f->tx.req_prod_pvt % NF_TX_INFLIGHT);

	if (f->tx_inflight + 2 > NF_TX_INFLIGHT)
		return -XEN_EAGAIN;
	memset(req, 0, sizeof(req));
	if (len > 600) {
		uint16_t id2 = (uint16_t)((f->tx.req_prod_pvt + 1) % NF_TX_INFLIGHT);

		memcpy(f->pages[NF_TX_BASE + id] + 3500, frame, 596);
		memcpy(f->pages[NF_TX_BASE + id2], frame + 596, len - 596);
		req[0] = (struct netif_tx_request){ .gref = NF_TX_BASE + id, .offset = 3500, .flags = NETTXF_more_data,
						    .id = id, .size = (uint16_t)len };
		req[1] = (struct netif_tx_request){ .gref = NF_TX_BASE + id2, .offset = 0, .id = id2,
						    .size = (uint16_t)(len - 596) };
		nf_tx_raw(f, req, 2);
		return 0;
	}
	memcpy(f->pages[NF_TX_BASE + id] + 64, frame, len);
	req[0] = (struct netif_tx_request){ .gref = NF_TX_BASE + id, .offset = 64, .id = id, .size = (uint16_t)len };
	nf_tx_raw(f, req, 1);
	return 0;
}

static void nf_echo_reply(void *arg, uint32_t src_ip, uint16_t id, uint16_t seq, size_t len)
{
	((struct nf_fake *)arg)->echo_replies++;
}

static void nf_udp_rx(void *arg, struct net_if *nif, uint32_t src_ip, uint16_t src_port, uint16_t dst_port,
		      const uint8_t *data, size_t len)
{
	((struct nf_fake *)arg)->udp_rx++;
}

static uint64_t nf_now_ms(void *arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const struct net_ops nf_net_ops = {
	.xmit = nf_xmit, .udp_rx = nf_udp_rx, .echo_reply = nf_echo_reply, .now_ms = nf_now_ms
};

void nf_tx_raw(struct nf_fake *f, const struct netif_tx_request *reqs, unsigned n)
{
	unsigned i;
	int notify;

	for (i = 0; i < n; i++) {
		*RING_GET_REQUEST(&f->tx, f->tx.req_prod_pvt) = reqs[i];
		f->tx.req_prod_pvt++;
	}
	f->tx_inflight += n;
	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&f->tx, notify);
	(void)notify;
}

int nf_init(struct nf_fake *f, uint32_t domid, const uint8_t mac[6], uint32_t ip, int tap_fd, unsigned rx_bufs)
{
	unsigned i;
	int rc;

	memset(f, 0, sizeof(*f));
	f->domid = domid;
	f->post_rx = rx_bufs > 0;
	f->pages = aligned_alloc(4096, (size_t)NF_PAGES * 4096);
	f->tx_page = aligned_alloc(4096, 4096);
	f->rx_page = aligned_alloc(4096, 4096);
	f->copybuf = aligned_alloc(4096, NETBACK_BUF_SIZE);
	if (!f->pages || !f->tx_page || !f->rx_page || !f->copybuf) {
		nf_free(f);
		return -ENOMEM;
	}
	memset(f->pages, 0, (size_t)NF_PAGES * 4096);
	for (i = 0; i < 128; i++)
		f->granted[i] = true;
	SHARED_RING_INIT((struct netif_tx_sring *)f->tx_page);
	SHARED_RING_INIT((struct netif_rx_sring *)f->rx_page);
	FRONT_RING_INIT(&f->tx, (struct netif_tx_sring *)f->tx_page, 4096);
	FRONT_RING_INIT(&f->rx, (struct netif_rx_sring *)f->rx_page, 4096);
	rc = net_if_init(&f->nif, mac, ip, 24, &nf_net_ops, f);
	if (rc < 0) {
		nf_free(f);
		return -EINVAL;
	}
	f->nif.udp_echo_port = 7;
	netback_vif_init(&f->vif, domid, 0, mac, f->tx_page, f->rx_page, tap_fd, &nf_gnt_ops, f, f->copybuf);
	for (i = 0; i < rx_bufs && i < NF_RX_BUFS; i++)
		nf_post_rx(f, (uint16_t)i);
	return 0;
}

void nf_free(struct nf_fake *f)
{
	free(f->pages);
	free(f->tx_page);
	free(f->rx_page);
	free(f->copybuf);
	f->pages = NULL;
	f->tx_page = f->rx_page = NULL;
	f->copybuf = NULL;
}

void nf_poll(struct nf_fake *f)
{
	int more;

	do {
		RING_IDX prod = f->tx.sring->rsp_prod;

		xen_rmb();
		while (f->tx.rsp_cons != prod) {
			struct netif_tx_response *r = RING_GET_RESPONSE(&f->tx, f->tx.rsp_cons);

			if (r->status != NETIF_RSP_NULL) {
				f->last_tx_status = r->status;
				f->tx_responses++;
			}
			f->tx.rsp_cons++;
			f->tx_inflight--;
		}
		RING_FINAL_CHECK_FOR_RESPONSES(&f->tx, more);
	} while (more);
	do {
		RING_IDX prod = f->rx.sring->rsp_prod;

		xen_rmb();
		while (f->rx.rsp_cons != prod) {
			struct netif_rx_response r = *RING_GET_RESPONSE(&f->rx, f->rx.rsp_cons);
			uint16_t id = r.id % NF_RX_BUFS;

			f->rx.rsp_cons++;
			if (r.status > 0)
				(void)net_input(&f->nif, f->pages[NF_RX_BASE + id] + r.offset, (size_t)r.status, 0);
			if (f->post_rx)
				nf_post_rx(f, id);
		}
		RING_FINAL_CHECK_FOR_RESPONSES(&f->rx, more);
	} while (more);
}

void nf_pump(struct nf_fake *f)
{
	if (f->vif.connected)
		(void)netback_vif_rx(&f->vif, 256);
	nf_poll(f);
	if (f->vif.connected)
		(void)netback_vif_tx(&f->vif, 256);
	nf_poll(f);
}
