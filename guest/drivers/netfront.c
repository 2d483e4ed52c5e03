/* netfront: the guest side of the split network driver. The store handshake follows Xen's netif
 * protocol (device/vif/N with tx-ring-ref, rx-ring-ref, event-channel-tx/-rx, request-rx-copy,
 * feature-sg, feature-no-csum-offload; the back-end's mac is in our own directory). Buffers are
 * granted once and stay granted: the back-end copies, so nothing is mapped behind our back. */
#include "netfront.h"
#include "../kernel/hypercall.h"
#include <xen/io/xenbus.h>

#define NF_WAIT_NS (10ull * 1000000000ull)

static uint8_t *nf_page(unsigned int i)
{
	return (uint8_t *)(uintptr_t)(NETFRONT_BASE + (uint64_t)i * GUEST_PAGE_SIZE);
}
/* Layout: tx ring, rx ring, tx buffers, rx buffers. */
#define NF_TX_RING 0u
#define NF_RX_RING 1u
#define NF_TX_BUF(i) (2u + (i))
#define NF_RX_BUF(i) (2u + NETFRONT_TX_BUFS + (i))
#define NF_PAGES (2u + NETFRONT_TX_BUFS + NETFRONT_RX_BUFS)

static int nf_read(struct netfront *nf, const char *dir, const char *node, char *out, size_t size)
{
	char path[160];

	lib_snprintf(path, sizeof(path), "%s/%s", dir, node);
	return xenbus_read(&nf->k->xb, 0, path, out, size);
}

static int nf_read_u64(struct netfront *nf, const char *dir, const char *node, uint64_t *v)
{
	char buf[32];
	int rc = nf_read(nf, dir, node, buf, sizeof(buf));

	if (rc < 0)
		return rc;
	return lib_parse_u64(buf, v) < 0 ? -XEN_EINVAL : 0;
}

static int nf_write(struct netfront *nf, uint32_t tx, const char *node, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int nf_write(struct netfront *nf, uint32_t tx, const char *node, const char *fmt, ...)
{
	char path[160], val[64];
	va_list ap;

	va_start(ap, fmt);
	lib_vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	lib_snprintf(path, sizeof(path), "%s/%s", nf->fe, node);
	return xenbus_write(&nf->k->xb, tx, path, val);
}

static int nf_wait_be(struct netfront *nf, uint64_t want, uint64_t max)
{
	uint64_t end = time_now_ns(&nf->k->time) + NF_WAIT_NS, st;

	while (time_now_ns(&nf->k->time) < end) {
		if (nf_read_u64(nf, nf->be, "state", &st) == 0 && st >= want && st <= max)
			return (int)st;
		timer_sleep_ns(&nf->k->tm, 1000000);
	}
	return -XEN_ETIMEDOUT;
}

static void nf_event(struct events *ev, evtchn_port_t port, void *arg)
{
	((struct netfront *)arg)->events++; /* waking the vCPU is enough: netfront_poll looks */
}

static int nf_hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int nf_find_device(struct netfront *nf, uint32_t devid)
{
	char names[256], mac[32], path[96];
	uint64_t v;
	int n, i;

	if (devid == ~0u) {
		n = xenbus_directory(&nf->k->xb, 0, "device/vif", names, sizeof(names));
		if (n <= 0)
			return n < 0 ? n : -XEN_ENOENT;
		if (lib_parse_u64(names, &v) < 0 || v > 1000)
			return -XEN_EINVAL;
		devid = (uint32_t)v;
	}
	nf->devid = devid;
	lib_snprintf(nf->fe, sizeof(nf->fe), "device/vif/%u", devid);
	lib_snprintf(path, sizeof(path), "%s/backend", nf->fe);
	n = xenbus_read(&nf->k->xb, 0, path, nf->be, sizeof(nf->be));
	if (n < 0)
		return n;
	if (nf_read_u64(nf, nf->fe, "backend-id", &v) < 0 || v >= DOMID_FIRST_RESERVED)
		return -XEN_EINVAL;
	nf->backend_id = (domid_t)v;
	if (nf_read(nf, nf->fe, "mac", mac, sizeof(mac)) < 0 || strlen(mac) != 17)
		return -XEN_EINVAL;
	for (i = 0; i < 6; i++) {
		int hi = nf_hex(mac[3 * i]), lo = nf_hex(mac[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && mac[3 * i + 2] != ':'))
			return -XEN_EINVAL;
		nf->mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int nf_grant(struct netfront *nf, unsigned int page, bool readonly, grant_ref_t *ref)
{
	int rc = gnttab_claim(nf->gt, ref);

	if (rc < 0)
		return rc;
	gnttab_grant_access(nf->gt, *ref, nf->backend_id, (uintptr_t)nf_page(page) >> 12, readonly);
	return 0;
}

static void nf_post_rx(struct netfront *nf, uint16_t id)
{
	struct netif_rx_request *r = RING_GET_REQUEST(&nf->rx, nf->rx.req_prod_pvt);

	r->id = id;
	r->gref = nf->rx_ref[id];
	nf->rx.req_prod_pvt++;
}

static void nf_push_rx(struct netfront *nf)
{
	if (lamina_ring_front_push(&nf->rx)) {
		events_send(&nf->k->ev, nf->rx_port);
		nf->notifies_sent++;
	}
}

static int nf_publish(struct netfront *nf)
{
	uint32_t tx;
	int rc, e;

	for (int tries = 0; tries < 5; tries++) {
		rc = xenbus_transaction_start(&nf->k->xb, &tx);
		if (rc < 0)
			return rc;
		rc = nf_write(nf, tx, "tx-ring-ref", "%u", nf->tx_ring_ref);
		if (!rc)
			rc = nf_write(nf, tx, "rx-ring-ref", "%u", nf->rx_ring_ref);
		if (!rc)
			rc = nf_write(nf, tx, "event-channel-tx", "%u", nf->tx_port);
		if (!rc)
			rc = nf_write(nf, tx, "event-channel-rx", "%u", nf->rx_port);
		if (!rc)
			rc = nf_write(nf, tx, "request-rx-copy", "1");
		if (!rc)
			rc = nf_write(nf, tx, "feature-rx-notify", "1");
		if (!rc)
			rc = nf_write(nf, tx, "feature-sg", "0");
		if (!rc) /* the network layer computes every checksum itself */
			rc = nf_write(nf, tx, "feature-no-csum-offload", "1");
		if (!rc)
			rc = nf_write(nf, tx, "state", "%d", XenbusStateConnected);
		e = xenbus_transaction_end(&nf->k->xb, tx, rc == 0);
		if (rc)
			return rc;
		if (e != -XEN_EAGAIN)
			return e;
	}
	return -XEN_EAGAIN;
}

int netfront_init(struct netfront *nf, struct kernel *k, struct gnttab *gt, uint32_t devid)
{
	uint64_t copy = 0;
	unsigned int i;
	int rc;

	memset(nf, 0, sizeof(*nf));
	nf->k = k;
	nf->gt = gt;
	if (k->ram_top < NETFRONT_BASE + (uint64_t)NF_PAGES * GUEST_PAGE_SIZE)
		return -XEN_ENOMEM;
	rc = nf_find_device(nf, devid);
	if (rc < 0)
		return rc;
	rc = nf_wait_be(nf, XenbusStateInitWait, XenbusStateInitWait);
	if (rc < 0)
		return rc;
	if (nf_read_u64(nf, nf->be, "feature-rx-copy", &copy) < 0 || copy != 1)
		return -XEN_EOPNOTSUPP;
	memset(nf_page(0), 0, (size_t)NF_PAGES * GUEST_PAGE_SIZE);
	SHARED_RING_INIT((struct netif_tx_sring *)nf_page(NF_TX_RING));
	SHARED_RING_INIT((struct netif_rx_sring *)nf_page(NF_RX_RING));
	FRONT_RING_INIT(&nf->tx, (struct netif_tx_sring *)nf_page(NF_TX_RING), GUEST_PAGE_SIZE);
	FRONT_RING_INIT(&nf->rx, (struct netif_rx_sring *)nf_page(NF_RX_RING), GUEST_PAGE_SIZE);
	rc = nf_grant(nf, NF_TX_RING, false, &nf->tx_ring_ref);
	if (!rc)
		rc = nf_grant(nf, NF_RX_RING, false, &nf->rx_ring_ref);
	for (i = 0; !rc && i < NETFRONT_TX_BUFS; i++) {
		rc = nf_grant(nf, NF_TX_BUF(i), true, &nf->tx_ref[i]);
		nf->tx_free[nf->tx_nfree++] = (uint16_t)i;
	}
	for (i = 0; !rc && i < NETFRONT_RX_BUFS; i++)
		rc = nf_grant(nf, NF_RX_BUF(i), false, &nf->rx_ref[i]);
	if (rc < 0)
		return rc;
	for (i = 0; i < NETFRONT_RX_BUFS; i++)
		nf_post_rx(nf, (uint16_t)i);
	RING_PUSH_REQUESTS(&nf->rx);
	rc = events_alloc_unbound(&k->ev, nf->backend_id, nf_event, nf);
	if (rc < 0)
		return rc;
	nf->tx_port = (evtchn_port_t)rc;
	rc = events_alloc_unbound(&k->ev, nf->backend_id, nf_event, nf);
	if (rc < 0)
		return rc;
	nf->rx_port = (evtchn_port_t)rc;
	rc = nf_publish(nf);
	if (rc < 0)
		return rc;
	rc = nf_wait_be(nf, XenbusStateConnected, XenbusStateConnected);
	if (rc < 0)
		return rc;
	nf->connected = true;
	return 0;
}

int netfront_xmit(struct netfront *nf, const uint8_t *frame, size_t len)
{
	struct netif_tx_request *r;
	uint16_t id;

	if (!nf->connected || nf->dead)
		return -XEN_ENOTCONN;
	if (len < 14 || len > NETFRONT_FRAME_MAX)
		return -XEN_EMSGSIZE;
	if (nf->tx_nfree == 0)
		netfront_poll(nf, NULL, NULL);
	if (nf->tx_nfree == 0 || RING_FULL(&nf->tx)) {
		nf->tx_full++;
		return -XEN_EAGAIN;
	}
	id = nf->tx_free[--nf->tx_nfree];
	memcpy(nf_page(NF_TX_BUF(id)), frame, len);
	r = RING_GET_REQUEST(&nf->tx, nf->tx.req_prod_pvt);
	r->gref = nf->tx_ref[id];
	r->offset = 0;
	r->flags = 0; /* complete checksums, one slot */
	r->id = id;
	r->size = (uint16_t)len;
	nf->tx.req_prod_pvt++;
	if (lamina_ring_front_push(&nf->tx)) {
		events_send(&nf->k->ev, nf->tx_port);
		nf->notifies_sent++;
	}
	nf->tx_frames++;
	return 0;
}

static void nf_tx_done(struct netfront *nf)
{
	do {
		RING_IDX prod;

		if (lamina_ring_front_avail(&nf->tx, &prod) < 0) {
			nf->dead = true;
			return;
		}
		while (nf->tx.rsp_cons != prod) {
			struct netif_tx_response rsp;

			lamina_ring_copy_slot(&rsp, RING_GET_RESPONSE(&nf->tx, nf->tx.rsp_cons), sizeof(rsp));
			nf->tx.rsp_cons++;
			if (rsp.status == NETIF_RSP_NULL || rsp.id >= NETFRONT_TX_BUFS ||
			    nf->tx_nfree >= NETFRONT_TX_BUFS)
				continue;
			if (rsp.status != NETIF_RSP_OKAY)
				nf->tx_errors++;
			nf->tx_free[nf->tx_nfree++] = rsp.id;
		}
	} while (lamina_ring_front_final_check(&nf->tx));
}

int netfront_poll(struct netfront *nf, netfront_rx_fn fn, void *arg)
{
	int n = 0;

	nf_tx_done(nf);
	do {
		RING_IDX prod;

		if (lamina_ring_front_avail(&nf->rx, &prod) < 0) {
			nf->dead = true;
			return n;
		}
		while (nf->rx.rsp_cons != prod) {
			struct netif_rx_response rsp;
			uint16_t id;

			lamina_ring_copy_slot(&rsp, RING_GET_RESPONSE(&nf->rx, nf->rx.rsp_cons), sizeof(rsp));
			nf->rx.rsp_cons++;
			id = rsp.id;
			if (id >= NETFRONT_RX_BUFS)
				continue;
			if (rsp.status > 0 && (uint32_t)rsp.offset + (uint32_t)rsp.status <= GUEST_PAGE_SIZE &&
			    !(rsp.flags & (NETRXF_more_data | NETRXF_extra_info))) {
				nf->rx_frames++;
				n++;
				if (fn)
					fn(arg, nf_page(NF_RX_BUF(id)) + rsp.offset, (size_t)rsp.status, 0);
			} else {
				nf->rx_errors++;
			}
			nf_post_rx(nf, id);
		}
	} while (lamina_ring_front_final_check(&nf->rx));
	nf_push_rx(nf);
	return n;
}

static bool nf_has_work(void *arg)
{
	struct netfront *nf = arg;

	return RING_HAS_UNCONSUMED_RESPONSES(&nf->rx) || RING_HAS_UNCONSUMED_RESPONSES(&nf->tx);
}

void netfront_wait(struct netfront *nf, uint64_t deadline)
{
	if (!nf_has_work(nf))
		timer_wait(&nf->k->tm, nf_has_work, nf, deadline);
}

void netfront_close(struct netfront *nf)
{
	if (!nf->connected)
		return;
	nf_write(nf, 0, "state", "%d", XenbusStateClosing);
	nf_wait_be(nf, XenbusStateClosing, XenbusStateClosed);
	nf_write(nf, 0, "state", "%d", XenbusStateClosed);
	nf->connected = false;
}

bool netfront_backend_closing(struct netfront *nf)
{
	uint64_t st;

	return nf_read_u64(nf, nf->be, "state", &st) != 0 || st >= XenbusStateClosing;
}

grant_ref_t netfront_tx_page(struct netfront *nf, const uint8_t *frame, size_t len)
{
	if (len > GUEST_PAGE_SIZE)
		len = GUEST_PAGE_SIZE;
	memcpy(nf_page(NF_TX_BUF(NETFRONT_TX_BUFS - 1)), frame, len);
	return nf->tx_ref[NETFRONT_TX_BUFS - 1];
}

void netfront_tx_raw(struct netfront *nf, const struct netif_tx_request *reqs, unsigned int n, unsigned int extra)
{
	unsigned int i;

	for (i = 0; i < n && !RING_FULL(&nf->tx); i++) {
		*RING_GET_REQUEST(&nf->tx, nf->tx.req_prod_pvt) = reqs[i];
		nf->tx.req_prod_pvt++;
	}
	nf->tx.req_prod_pvt += extra;
	xen_wmb();
	nf->tx.sring->req_prod = nf->tx.req_prod_pvt;
	xen_mb();
	events_send(&nf->k->ev, nf->tx_port);
}
