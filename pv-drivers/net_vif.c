/* The vif engine: tx chains copied out of the guest's grants in batches and written to the tap,
 * frames read from the tap grant-copied into posted rx buffers, one notification per batch. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "netback.h"

void netback_vif_init(struct netback_vif *vif, uint32_t domid, uint32_t devid, const uint8_t mac[6],
		      void *tx_sring, void *rx_sring, int tap_fd, const struct netback_gnt_ops *ops, void *arg,
		      uint8_t *buf)
{
	memset(vif, 0, sizeof(*vif));
	vif->domid = domid;
	vif->devid = devid;
	memcpy(vif->mac, mac, 6);
	BACK_RING_INIT(&vif->tx, (struct netif_tx_sring *)tx_sring, LAMINA_RING_PAGE_SIZE);
	BACK_RING_INIT(&vif->rx, (struct netif_rx_sring *)rx_sring, LAMINA_RING_PAGE_SIZE);
	vif->tap_fd = tap_fd;
	vif->ops = ops;
	vif->ops_arg = arg;
	vif->buf = buf;
	vif->connected = true;
	be_ratelimit_init(&vif->rl, 10, 5000);
}

void netback_vif_disconnect(struct netback_vif *vif, const char *why)
{
	if (!vif->connected)
		return;
	vif->connected = false;
	vif->st.disconnects++;
	snprintf(vif->why, sizeof(vif->why), "%s", why);
	be_log_limited(&vif->rl, "vif%u.%u: disconnected: %s", vif->domid, vif->devid, why);
}

static void netback_vif_drop(struct netback_vif *vif, enum netback_drop d, const char *why)
{
	vif->st.drop[d]++;
	be_log_limited(&vif->rl, "vif%u.%u: frame dropped (%s): %s", vif->domid, vif->devid, netback_drop_name(d),
		       why);
}

static void netback_tx_respond(struct netback_vif *vif, uint16_t id, int16_t status)
{
	struct netif_tx_response *r = RING_GET_RESPONSE(&vif->tx, vif->tx.rsp_prod_pvt);

	r->id = id;
	r->status = status;
	vif->tx.rsp_prod_pvt++;
}

/* Answer every slot of a chain: the data slots with status, extra-info slots with NULL. */
static void netback_tx_respond_chain(struct netback_vif *vif, const struct netback_chain *c, int16_t status)
{
	unsigned i;

	netback_tx_respond(vif, c->frag[0].id, status);
	for (i = 0; i < c->extra_after; i++)
		netback_tx_respond(vif, 0, NETIF_RSP_NULL);
	for (i = 1; i < c->nfrags; i++)
		netback_tx_respond(vif, c->frag[i].id, status);
}

static void netback_notify(struct netback_vif *vif, unsigned which, int notify)
{
	if (!notify) {
		vif->st.notify_suppressed++;
		return;
	}
	vif->st.notify_sent++;
	if (vif->ops->notify)
		vif->ops->notify(vif->ops_arg, which);
}

/* One batch: parse up to NETBACK_BATCH chains, copy them in one call, write them, respond. */
static int netback_tx_batch(struct netback_vif *vif, RING_IDX prod, unsigned max_frames)
{
	struct netif_tx_request slots[NETBACK_MAX_SLOTS];
	struct netback_chain chains[NETBACK_BATCH];
	struct lamina_ctl_gnt_copy_seg segs[LAMINA_GNT_BATCH];
	int32_t status[LAMINA_GNT_BATCH];
	unsigned nchains = 0, nsegs = 0, i, f, seg0;
	int good[NETBACK_BATCH];
	int rc;

	while (vif->tx.req_cons != prod && nchains < max_frames && nchains < NETBACK_BATCH &&
	       nsegs + NETBACK_MAX_SLOTS <= LAMINA_GNT_BATCH) {
		unsigned avail = (unsigned)(RING_IDX)(prod - vif->tx.req_cons), n = 0;
		struct netback_chain *c = &chains[nchains];
		enum netback_drop drop = NETBACK_DROP_SIZE;
		const char *why;

		while (n < avail && n < NETBACK_MAX_SLOTS) { /* each slot copied out once */
			lamina_ring_copy_slot(&slots[n], RING_GET_REQUEST(&vif->tx, vif->tx.req_cons + n),
					      sizeof(slots[n]));
			n++;
		}
		rc = netback_tx_parse(slots, n, c, &drop, &why);
		if (rc == -EAGAIN)
			break; /* the rest of the chain is not published yet */
		if (rc == -EPROTO) {
			netback_vif_disconnect(vif, why);
			return -EPROTO;
		}
		vif->tx.req_cons += c->slots;
		if (rc == -EBADMSG) {
			netback_vif_drop(vif, drop, why);
			netback_tx_respond_chain(vif, c, NETIF_RSP_ERROR);
			continue;
		}
		good[nchains] = 1;
		for (f = 0, i = 0; f < c->nfrags; f++) {
			segs[nsegs].domid = vif->domid;
			segs[nsegs].ref = c->frag[f].gref;
			segs[nsegs].offset = c->frag[f].offset;
			segs[nsegs].len = c->frag[f].size;
			segs[nsegs].flags = 0;
			segs[nsegs].buf_offset = (uint64_t)nchains * NETBACK_BUF_STRIDE + i;
			i += c->frag[f].size;
			nsegs++;
		}
		nchains++;
	}
	if (nchains == 0)
		return 0;
	rc = vif->ops->copy(vif->ops_arg, segs, nsegs, status);
	if (rc < 0) /* the copy service itself failed: nothing was delivered */
		for (i = 0; i < nsegs; i++)
			status[i] = GNTST_general_error;
	for (f = 0, seg0 = 0; f < nchains; f++) {
		struct netback_chain *c = &chains[f];
		uint8_t *frame = vif->buf + (size_t)f * NETBACK_BUF_STRIDE;
		int16_t st = NETIF_RSP_OKAY;

		for (i = 0; i < c->nfrags; i++)
			if (status[seg0 + i] != GNTST_okay)
				good[f] = 0;
		seg0 += c->nfrags;
		if (!good[f]) {
			netback_vif_drop(vif, NETBACK_DROP_GRANT, "grant copy failed");
			st = NETIF_RSP_ERROR;
		} else if ((c->frag[0].flags & NETTXF_csum_blank) &&
			   (!vif->csum_offload || netback_csum_fill(frame, c->len) < 0)) {
			netback_vif_drop(vif, NETBACK_DROP_CSUM,
					 vif->csum_offload ? "checksum cannot be filled in" : "csum_blank without offload");
			st = NETIF_RSP_ERROR;
		} else if (netback_tx_mac_ok(vif, frame, c->len) < 0) {
			netback_vif_drop(vif, NETBACK_DROP_SPOOF, "source MAC is not the vif's");
			st = NETIF_RSP_DROPPED;
		} else if (vif->tap_fd >= 0 && write(vif->tap_fd, frame, c->len) != (ssize_t)c->len) {
			netback_vif_drop(vif, NETBACK_DROP_TAP, "tap write failed");
			st = NETIF_RSP_DROPPED;
		} else {
			vif->st.tx_frames++;
			vif->st.tx_bytes += c->len;
		}
		netback_tx_respond_chain(vif, c, st);
	}
	vif->st.tx_batches++;
	if (nchains > vif->st.tx_batch_max)
		vif->st.tx_batch_max = nchains;
	return (int)nchains;
}

int netback_vif_tx(struct netback_vif *vif, unsigned budget)
{
	unsigned done = 0;
	int more, rc;

	if (!vif->connected)
		return -EPROTO;
	do {
		RING_IDX prod;

		if (lamina_ring_back_pending(&vif->tx, &prod) < 0) {
			netback_vif_disconnect(vif, "tx producer ran away");
			return -EPROTO;
		}
		while (vif->tx.req_cons != prod && done < budget) {
			unsigned before = vif->tx.req_cons;

			rc = netback_tx_batch(vif, prod, budget - done);
			if (rc < 0)
				return rc;
			netback_notify(vif, 0, lamina_ring_back_push(&vif->tx));
			done += (unsigned)rc;
			if (vif->tx.req_cons == before)
				break; /* an incomplete chain: wait for its remaining slots */
		}
		if (done >= budget || vif->tx_poll)
			break;
		more = lamina_ring_back_final_check(&vif->tx);
		if (more && lamina_ring_load_idx(&vif->tx.sring->req_prod) == prod)
			more = 0;
	} while (more);
	return (int)done;
}

static void netback_rx_respond(struct netback_vif *vif, uint16_t id, int16_t status)
{
	struct netif_rx_response *r = RING_GET_RESPONSE(&vif->rx, vif->rx.rsp_prod_pvt);

	r->id = id;
	r->offset = 0;
	r->flags = 0; /* frames from the tap carry complete checksums */
	r->status = status;
	vif->rx.rsp_prod_pvt++;
}

int netback_vif_rx(struct netback_vif *vif, unsigned budget)
{
	struct lamina_ctl_gnt_copy_seg segs[NETBACK_BATCH];
	struct netif_rx_request reqs[NETBACK_BATCH];
	int32_t status[NETBACK_BATCH];
	unsigned done = 0, n, i, tries;
	int avail, rc;

	if (!vif->connected)
		return -EPROTO;
	while (done < budget) {
		RING_IDX prod;
		uint8_t *base = vif->buf + (size_t)NETBACK_BATCH * NETBACK_BUF_STRIDE;

		avail = lamina_ring_back_pending(&vif->rx, &prod);
		if (avail < 0) {
			netback_vif_disconnect(vif, "rx producer ran away");
			return -EPROTO;
		}
		if (avail == 0) {
			/* Ask to be told when buffers are posted (req_event), then look once more. */
			if (lamina_ring_back_final_check(&vif->rx))
				continue;
			if (!vif->rx_starved_since_ns)
				vif->rx_starved_since_ns = be_now_ns();
			break;
		}
		vif->rx_starved_since_ns = 0;
		for (n = 0, tries = 0; n < (unsigned)avail && n < NETBACK_BATCH && done + n < budget &&
				       tries < 2 * NETBACK_BATCH;
		     tries++) {
			uint8_t *slot = base + (size_t)n * NETBACK_BUF_STRIDE;
			ssize_t got = read(vif->tap_fd, slot, NETBACK_BUF_STRIDE);

			if (got < 0)
				break;
			if (got < NETBACK_ETH_HLEN || got > NETBACK_FRAME_MAX) {
				netback_vif_drop(vif, NETBACK_DROP_SIZE, "frame from the tap of a bad size");
				continue;
			}
			lamina_ring_copy_slot(&reqs[n], RING_GET_REQUEST(&vif->rx, vif->rx.req_cons + n),
					      sizeof(reqs[n]));
			segs[n].domid = vif->domid;
			segs[n].ref = reqs[n].gref;
			segs[n].offset = 0;
			segs[n].len = (uint16_t)got;
			segs[n].flags = LAMINA_GNT_TO_GUEST;
			segs[n].buf_offset = (uint64_t)(NETBACK_BATCH + n) * NETBACK_BUF_STRIDE;
			n++;
		}
		if (n == 0)
			break;
		vif->rx.req_cons += n;
		rc = vif->ops->copy(vif->ops_arg, segs, n, status);
		for (i = 0; i < n; i++) {
			if (rc < 0 || status[i] != GNTST_okay) {
				netback_vif_drop(vif, NETBACK_DROP_RX_GRANT, "rx buffer not granted");
				netback_rx_respond(vif, reqs[i].id, NETIF_RSP_ERROR);
				continue;
			}
			vif->st.rx_frames++;
			vif->st.rx_bytes += segs[i].len;
			netback_rx_respond(vif, reqs[i].id, (int16_t)segs[i].len);
		}
		vif->st.rx_batches++;
		if (n > vif->st.rx_batch_max)
			vif->st.rx_batch_max = n;
		netback_notify(vif, 1, lamina_ring_back_push(&vif->rx));
		done += n;
		if (n < (unsigned)avail && n < NETBACK_BATCH && done < budget)
			break; /* the tap is empty */
	}
	return (int)done;
}

int netback_vif_rx_stall(struct netback_vif *vif, unsigned stall_ms)
{
	uint8_t scratch[NETBACK_BUF_STRIDE];
	int dropped = 0;

	if (!vif->rx_starved_since_ns || be_now_ns() - vif->rx_starved_since_ns < (uint64_t)stall_ms * 1000000u)
		return 0;
	while (dropped < 4096 && read(vif->tap_fd, scratch, sizeof(scratch)) >= 0) {
		vif->st.drop[NETBACK_DROP_RX_NOBUF]++;
		dropped++;
	}
	if (dropped)
		be_log_limited(&vif->rl, "vif%u.%u: %d frames dropped: no rx buffer posted for %u ms", vif->domid,
			       vif->devid, dropped, stall_ms);
	return dropped;
}

int netback_stats_format(const struct netback_vif *vif, char *out, size_t len)
{
	const struct netback_stats *s = &vif->st;
	size_t used;
	int n;
	unsigned d;

	n = snprintf(out, len,
		     "vif%u.%u %s tx_frames=%llu tx_bytes=%llu rx_frames=%llu rx_bytes=%llu tx_batches=%llu "
		     "tx_batch_max=%llu rx_batches=%llu rx_batch_max=%llu notify_sent=%llu notify_suppressed=%llu",
		     vif->domid, vif->devid, vif->connected ? "connected" : "disconnected",
		     (unsigned long long)s->tx_frames, (unsigned long long)s->tx_bytes,
		     (unsigned long long)s->rx_frames, (unsigned long long)s->rx_bytes,
		     (unsigned long long)s->tx_batches, (unsigned long long)s->tx_batch_max,
		     (unsigned long long)s->rx_batches, (unsigned long long)s->rx_batch_max,
		     (unsigned long long)s->notify_sent, (unsigned long long)s->notify_suppressed);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	used = (size_t)n;
	for (d = 0; d < NETBACK_DROP_NR; d++) {
		n = snprintf(out + used, len - used, " drop_%s=%llu", netback_drop_name(d),
			     (unsigned long long)s->drop[d]);
		if (n < 0 || (size_t)n >= len - used)
			return -ENOSPC;
		used += (size_t)n;
	}
	return 0;
}

int netback_stats_format_json(const struct netback_vif *vif, char *out, size_t len)
{
	const struct netback_stats *s = &vif->st;
	size_t used;
	int n;

	n = snprintf(out, len,
		     "{\"vif\":\"vif%u.%u\",\"connected\":%s,\"tx_frames\":%llu,\"tx_bytes\":%llu,\"rx_frames\":%llu,"
		     "\"rx_bytes\":%llu,\"tx_batches\":%llu,\"tx_batch_max\":%llu,\"rx_batches\":%llu,"
		     "\"rx_batch_max\":%llu,\"notify_sent\":%llu,\"notify_suppressed\":%llu,\"drops\":{",
		     vif->domid, vif->devid, vif->connected ? "true" : "false", (unsigned long long)s->tx_frames,
		     (unsigned long long)s->tx_bytes, (unsigned long long)s->rx_frames,
		     (unsigned long long)s->rx_bytes, (unsigned long long)s->tx_batches,
		     (unsigned long long)s->tx_batch_max, (unsigned long long)s->rx_batches,
		     (unsigned long long)s->rx_batch_max, (unsigned long long)s->notify_sent,
		     (unsigned long long)s->notify_suppressed);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	used = (size_t)n;
	for (unsigned d = 0; d < NETBACK_DROP_NR; d++) {
		n = snprintf(out + used, len - used, "%s\"%s\":%llu", d ? "," : "", netback_drop_name(d),
			     (unsigned long long)s->drop[d]);
		if (n < 0 || (size_t)n >= len - used)
			return -ENOSPC;
		used += (size_t)n;
	}
	n = snprintf(out + used, len - used, "}}");
	return n < 0 || (size_t)n >= len - used ? -ENOSPC : 0;
}
