/* libFuzzer target for the network back-end engine (pv-drivers/net_req.c, net_vif.c): the input
 * becomes a vif (features, a socketpair standing in for the tap, a grant access table) and a
 * sequence of front-end actions: tx slot chains with hostile flags, sizes and offsets, pushes, rx
 * buffers posted, frames arriving on the "tap", hostile ring indexes. The fake grant-copy service
 * asserts that every copy the engine asks for was bounded first; the harness checks that responses
 * answer published requests only, rx data is the frame that arrived, every frame reaching the tap
 * is a well-sized frame from the vif's MAC, and a disconnected vif stays still. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_input.h"
#include "netback.h"

#define FZ_PAGES 64
#define FZ_TX_SLOTS 256 /* a one-page netif tx ring */
#define FZ_RX_SLOTS 256
#define FZ_FIFO 512
#define FZ_STRIDE_FRAMES (NETBACK_BATCH * NETBACK_BUF_STRIDE) /* the tx half of the copy buffer */

enum { FZ_GNT_NONE, FZ_GNT_RO, FZ_GNT_RW };

struct fz_rxbuf {
	uint16_t id;
	uint32_t gref;
};

struct fz_net {
	uint8_t (*page)[4096];
	uint8_t access[FZ_PAGES];
	void *tx_page, *rx_page;
	uint8_t *copybuf;
	int sv[2]; /* sv[0] the vif's "tap", sv[1] the network's end */
	bool allow_spoof;
	struct netback_vif vif;
	struct netif_tx_front_ring tx;
	struct netif_rx_front_ring rx;
	unsigned copies, fail_copy_call, notifies[2];
	RING_IDX notified_at[2];
	/* tx bookkeeping */
	uint16_t tx_ids[FZ_TX_SLOTS]; /* by ring slot, recorded when published */
	bool tx_live[FZ_TX_SLOTS];    /* published and not answered yet */
	unsigned tx_published, tx_answered, tx_okay, tap_frames;
	uint16_t next_tx_id;
	/* rx bookkeeping: buffers posted, and frames sent to the vif not yet delivered */
	struct fz_rxbuf rx_out[FZ_RX_SLOTS];
	unsigned nrx_out;
	uint16_t next_rx_id;
	uint16_t fifo_len[FZ_FIFO];
	uint32_t fifo_seq[FZ_FIFO];
	unsigned fifo_head, fifo_n;
	uint32_t frame_seq;
	int tainted;
	int dead;
	RING_IDX dead_tx, dead_rx;
	unsigned dead_copies, dead_notifies, dead_tap;
};

static const uint8_t fz_mac[6] = { 0x00, 0x16, 0x3e, 0x0f, 0x22, 0x07 };

static void fz_fail(const char *what)
{
	fprintf(stderr, "fuzz_netif: invariant broken: %s\n", what);
	abort();
}

/* What a frame of the network carries: byte i of frame seq. */
static uint8_t fz_frame_byte(uint32_t seq, size_t i)
{
	return (uint8_t)(seq * 31u + i * 7u + (i >> 8));
}

/* The grant-copy service, as lamina-hv bounds it, plus the checks the engine owes it. */
static int fz_copy(void *arg, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n, int32_t *status)
{
	struct fz_net *f = arg;

	if (n == 0 || n > LAMINA_GNT_BATCH)
		fz_fail("copy batch empty or larger than LAMINA_GNT_BATCH");
	if (f->dead)
		fz_fail("grant copy by a disconnected vif");
	if (++f->copies == f->fail_copy_call)
		return -EIO;
	for (uint32_t i = 0; i < n; i++) {
		const struct lamina_ctl_gnt_copy_seg *s = &segs[i];
		int to_guest = s->flags == LAMINA_GNT_TO_GUEST;

		if (s->domid != f->vif.domid || (s->flags & ~LAMINA_GNT_TO_GUEST))
			fz_fail("copy segment for another domain or with unknown flags");
		if (!to_guest && (s->len == 0 || (uint32_t)s->offset + s->len > 4096 ||
				  s->buf_offset + s->len > FZ_STRIDE_FRAMES ||
				  s->buf_offset % NETBACK_BUF_STRIDE + s->len > NETBACK_FRAME_MAX))
			fz_fail("tx copy segment not bounded by the engine");
		if (to_guest && (s->offset != 0 || s->len < NETBACK_ETH_HLEN || s->len > NETBACK_FRAME_MAX ||
				 s->buf_offset < FZ_STRIDE_FRAMES || s->buf_offset % NETBACK_BUF_STRIDE ||
				 s->buf_offset + s->len > NETBACK_BUF_SIZE))
			fz_fail("rx copy segment not bounded by the engine");
		if (s->ref >= FZ_PAGES || f->access[s->ref] == FZ_GNT_NONE) {
			status[i] = GNTST_bad_gntref;
		} else if (to_guest && f->access[s->ref] != FZ_GNT_RW) {
			status[i] = GNTST_permission_denied;
		} else {
			if (to_guest)
				memcpy(f->page[s->ref] + s->offset, f->copybuf + s->buf_offset, s->len);
			else
				memcpy(f->copybuf + s->buf_offset, f->page[s->ref] + s->offset, s->len);
			status[i] = GNTST_okay;
		}
	}
	return 0;
}

static int fz_notify(void *arg, unsigned which)
{
	struct fz_net *f = arg;
	RING_IDX prod = which ? f->rx.sring->rsp_prod : f->tx.sring->rsp_prod;

	if (which > 1)
		fz_fail("notification for an unknown ring");
	if (f->dead)
		fz_fail("notification from a disconnected vif");
	if (f->notifies[which] && prod == f->notified_at[which])
		fz_fail("notification without a new response");
	f->notified_at[which] = prod;
	f->notifies[which]++;
	return 0;
}

static const struct netback_gnt_ops fz_ops = { .copy = fz_copy, .notify = fz_notify };

/* ---- the input ---- */

/* struct fz_in and its readers: fuzz_input.h */

/* A tx chain of 1..20 slots, every field from the input; ids are the harness's own. */
static void fz_tx_chain(struct fz_net *f, struct fz_in *in)
{
	unsigned n = fz_u8(in) % 21 + 1;

	for (unsigned k = 0; k < n && !RING_FULL(&f->tx); k++) {
		struct netif_tx_request *r = RING_GET_REQUEST(&f->tx, f->tx.req_prod_pvt);
		unsigned mode = fz_u8(in);

		r->flags = (uint16_t)(mode & 0x0f);
		r->gref = fz_u16(in);
		r->offset = (uint16_t)((mode & 0x10) ? fz_u16(in) : fz_u8(in) * 16);
		r->size = (uint16_t)((mode & 0x20) ? fz_u16(in) : fz_u8(in) * 8);
		r->id = f->next_tx_id++;
		f->tx.req_prod_pvt++;
	}
}

static void fz_tx_publish(struct fz_net *f)
{
	for (RING_IDX i = f->tx.sring->req_prod; !f->tainted && i != f->tx.req_prod_pvt; i++) {
		f->tx_ids[i % FZ_TX_SLOTS] = RING_GET_REQUEST(&f->tx, i)->id;
		f->tx_live[i % FZ_TX_SLOTS] = true; /* an extra-info slot's entry is simply reused */
		f->tx_published++;
	}
	(void)lamina_ring_front_push(&f->tx);
}

static void fz_rx_post(struct fz_net *f, struct fz_in *in)
{
	unsigned n = fz_u8(in) % 16 + 1;

	for (unsigned k = 0; k < n && !RING_FULL(&f->rx); k++) {
		struct netif_rx_request *r = RING_GET_REQUEST(&f->rx, f->rx.req_prod_pvt);
		unsigned g = fz_u8(in);

		r->id = f->next_rx_id++;
		r->gref = g < 0xf0 ? g % FZ_PAGES : 0xfffff000u | g; /* a few never granted */
		if (!f->tainted && f->nrx_out == FZ_RX_SLOTS)
			fz_fail("harness: rx table full");
		if (!f->tainted)
			f->rx_out[f->nrx_out++] = (struct fz_rxbuf){ r->id, r->gref };
		f->rx.req_prod_pvt++;
	}
	(void)lamina_ring_front_push(&f->rx);
}

/* A frame from the network for the vif (any size, a few too short or too long to deliver). */
static void fz_inject(struct fz_net *f, struct fz_in *in)
{
	size_t len = fz_u16(in) % 2100, i;
	uint8_t frame[2100];

	if (f->vif.tap_fd < 0)
		return;
	for (i = 0; i < len; i++)
		frame[i] = fz_frame_byte(f->frame_seq, i);
	if (write(f->sv[1], frame, len) != (ssize_t)len)
		return; /* the "tap" queue is full: the frame never arrived */
	if (len >= NETBACK_ETH_HLEN && len <= NETBACK_FRAME_MAX && f->fifo_n < FZ_FIFO) {
		f->fifo_len[(f->fifo_head + f->fifo_n) % FZ_FIFO] = (uint16_t)len;
		f->fifo_seq[(f->fifo_head + f->fifo_n) % FZ_FIFO] = f->frame_seq;
		f->fifo_n++;
	} else if (len >= NETBACK_ETH_HLEN && len <= NETBACK_FRAME_MAX) {
		f->tainted = 1; /* more in the queue than the harness follows */
	}
	f->frame_seq++;
}

/* Page bytes from the input, or a frame template (Ethernet from the vif's MAC, IPv4, UDP). */
static void fz_page_write(struct fz_net *f, struct fz_in *in)
{
	uint8_t *p = f->page[fz_u8(in) % FZ_PAGES];
	unsigned off = fz_u16(in) % 4096, v = fz_u8(in), len = v & 0x3f;

	if (v & 0x80) {
		static const uint8_t tmpl[42] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x16, 0x3e, 0x0f, 0x22,
						  0x07, 0x08, 0x00, 0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00,
						  0x00, 0x40, 0x11, 0x00, 0x00, 10,   0,    0,    2,    10,
						  0,    0,    1,    0x30, 0x39, 0x00, 0x07, 0x00, 0x08, 0x00, 0x00 };

		for (unsigned i = 0; i < sizeof(tmpl) && off + i < 4096; i++)
			p[off + i] = tmpl[i];
		if (v & 0x40 && off + 17 < 4096)
			p[off + 17] = (uint8_t)(28 + len); /* IP total length */
		return;
	}
	for (unsigned i = 0; i < len && off + i < 4096; i++)
		p[off + i] = (uint8_t)fz_u8(in);
}

/* ---- what the front-end and the network see ---- */

static void fz_consume_tx(struct fz_net *f)
{
	RING_IDX prod = f->tx.sring->rsp_prod;

	if ((RING_IDX)(prod - f->tx.rsp_cons) > FZ_TX_SLOTS)
		fz_fail("more tx responses than ring slots");
	for (; f->tx.rsp_cons != prod; f->tx.rsp_cons++) {
		struct netif_tx_response r = *RING_GET_RESPONSE(&f->tx, f->tx.rsp_cons);
		unsigned k;

		if (r.status != NETIF_RSP_OKAY && r.status != NETIF_RSP_ERROR && r.status != NETIF_RSP_DROPPED &&
		    r.status != NETIF_RSP_NULL)
			fz_fail("tx response with an unknown status");
		f->tx_answered++;
		f->tx_okay += r.status == NETIF_RSP_OKAY;
		if (f->tainted)
			continue;
		if (f->tx_answered > f->tx_published)
			fz_fail("more tx responses than published requests");
		if (r.status == NETIF_RSP_NULL)
			continue; /* an extra-info slot: its id field is not an id */
		/* Matched by id: a dropped chain is answered before the good ones copied in its batch. */
		for (k = 0; k < FZ_TX_SLOTS && !(f->tx_live[k] && f->tx_ids[k] == r.id); k++)
			;
		if (k == FZ_TX_SLOTS)
			fz_fail("tx response for an id never requested, or answered twice");
		f->tx_live[k] = false;
	}
}

static void fz_consume_rx(struct fz_net *f)
{
	RING_IDX prod = f->rx.sring->rsp_prod;
	struct netif_rx_response got[FZ_RX_SLOTS];
	struct fz_rxbuf buf[FZ_RX_SLOTS];
	unsigned n = 0, i, k;

	if ((RING_IDX)(prod - f->rx.rsp_cons) > FZ_RX_SLOTS)
		fz_fail("more rx responses than ring slots");
	for (; f->rx.rsp_cons != prod; f->rx.rsp_cons++)
		got[n++] = *RING_GET_RESPONSE(&f->rx, f->rx.rsp_cons);
	for (i = 0; i < n; i++) {
		if (got[i].offset != 0 || got[i].flags != 0)
			fz_fail("rx response with an offset or flags");
		if (got[i].status < 0 && got[i].status != NETIF_RSP_ERROR)
			fz_fail("rx response with an unknown error status");
		if (got[i].status > 0 && (got[i].status < NETBACK_ETH_HLEN || got[i].status > NETBACK_FRAME_MAX))
			fz_fail("rx response with a bad frame length");
		if (f->tainted)
			continue;
		for (k = 0; k < f->nrx_out && f->rx_out[k].id != got[i].id; k++)
			;
		if (k == f->nrx_out)
			fz_fail("rx response for a buffer never posted, or answered twice");
		buf[i] = f->rx_out[k];
		f->rx_out[k] = f->rx_out[--f->nrx_out];
	}
	/* Frames arrive in order; each response (delivered or failed) used the next one. */
	for (i = 0; i < n && !f->tainted; i++) {
		uint16_t len;
		uint32_t seq;
		int last_use = 1;

		if (!f->fifo_n)
			fz_fail("rx response with no frame sent to the vif");
		len = f->fifo_len[f->fifo_head];
		seq = f->fifo_seq[f->fifo_head];
		f->fifo_head = (f->fifo_head + 1) % FZ_FIFO;
		f->fifo_n--;
		if (got[i].status < 0)
			continue;
		if (got[i].status != len)
			fz_fail("rx response length differs from the frame's");
		for (k = i + 1; k < n; k++)
			last_use &= buf[k].gref != buf[i].gref;
		for (size_t j = 0; last_use && j < len; j++)
			if (f->page[buf[i].gref][j] != fz_frame_byte(seq, j))
				fz_fail("rx buffer does not hold the frame delivered");
	}
}

/* Frames the vif wrote to its tap. */
static void fz_drain_tap(struct fz_net *f)
{
	uint8_t frame[4096];
	ssize_t len;

	while (f->vif.tap_fd >= 0 && (len = read(f->sv[1], frame, sizeof(frame))) >= 0) {
		f->tap_frames++;
		if (len < NETBACK_ETH_HLEN || len > NETBACK_FRAME_MAX)
			fz_fail("a frame of a bad size reached the tap");
		if (!f->allow_spoof && memcmp(frame + 6, fz_mac, 6) != 0)
			fz_fail("a frame with a foreign source MAC reached the tap");
	}
}

static void fz_after_step(struct fz_net *f)
{
	fz_drain_tap(f);
	if (!f->vif.connected && !f->dead) {
		f->dead = 1;
		f->dead_tx = f->tx.sring->rsp_prod;
		f->dead_rx = f->rx.sring->rsp_prod;
		f->dead_copies = f->copies;
		f->dead_notifies = f->notifies[0] + f->notifies[1];
		f->dead_tap = f->tap_frames;
	}
	if (f->dead && (f->tx.sring->rsp_prod != f->dead_tx || f->rx.sring->rsp_prod != f->dead_rx ||
			f->copies != f->dead_copies || f->notifies[0] + f->notifies[1] != f->dead_notifies ||
			f->tap_frames != f->dead_tap))
		fz_fail("a disconnected vif moved");
	fz_consume_tx(f);
	fz_consume_rx(f);
	if (f->tap_frames > f->tx_okay)
		fz_fail("more frames on the tap than tx requests answered OKAY");
}

static void fz_check_rc(struct fz_net *f, int rc)
{
	if (rc < 0 && (rc != -EPROTO || f->vif.connected))
		fz_fail("engine error other than -EPROTO on disconnect");
}

/* Front-end writes that break the protocol: runaway producers, event indexes, grants revoked. */
static void fz_hostile(struct fz_net *f, struct fz_in *in)
{
	unsigned v = fz_u8(in);
	uint32_t x = fz_u16(in) | (uint32_t)fz_u16(in) << 16;

	switch (v % 5) {
	case 0:
		f->tx.sring->req_prod = (v & 8) ? x : f->tx.req_prod_pvt + (uint32_t)(int8_t)x;
		f->tainted = 1;
		fz_check_rc(f, netback_vif_tx(&f->vif, 64));
		break;
	case 1:
		f->rx.sring->req_prod = (v & 8) ? x : f->rx.req_prod_pvt + (uint32_t)(int8_t)x;
		f->tainted = 1;
		fz_check_rc(f, netback_vif_rx(&f->vif, 64));
		break;
	case 2:
		f->tx.sring->rsp_event = x;
		break;
	case 3:
		f->rx.sring->rsp_event = x;
		break;
	default:
		f->access[x % FZ_PAGES] = (uint8_t)((x >> 8) % 3);
		break;
	}
}

/* The counter lines a daemon prints, into a buffer of the input's size: whole or -ENOSPC. */
static void fz_stats(struct fz_net *f, unsigned v)
{
	char buf[2048];
	size_t len = 1 + v * 8u % sizeof(buf);
	int rc = (v & 1) ? netback_stats_format_json(&f->vif, buf, len) : netback_stats_format(&f->vif, buf, len);

	if (rc != 0 && rc != -ENOSPC)
		fz_fail("statistics formatting failed other than -ENOSPC");
	if (rc == 0 && strlen(buf) >= len)
		fz_fail("statistics overran their buffer");
}

/* ---- one input ---- */

static int fz_setup(struct fz_net *f, struct fz_in *in)
{
	unsigned cfg = fz_u8(in);

	memset(f, 0, sizeof(*f));
	f->sv[0] = f->sv[1] = -1;
	for (unsigned i = 0; i < FZ_PAGES; i += 4) {
		unsigned a = fz_u8(in);

		for (unsigned k = 0; k < 4; k++)
			f->access[i + k] = (uint8_t)((a >> (2 * k) & 3) == 3 ? FZ_GNT_RW : (a >> (2 * k) & 3));
	}
	f->fail_copy_call = fz_u8(in);
	f->page = aligned_alloc(4096, (size_t)FZ_PAGES * 4096);
	f->tx_page = aligned_alloc(4096, 4096);
	f->rx_page = aligned_alloc(4096, 4096);
	f->copybuf = aligned_alloc(4096, NETBACK_BUF_SIZE);
	if (!f->page || !f->tx_page || !f->rx_page || !f->copybuf)
		return -ENOMEM;
	memset(f->page, 0, (size_t)FZ_PAGES * 4096);
	memset(f->copybuf, 0, NETBACK_BUF_SIZE);
	if (!(cfg & 4) && socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, f->sv) < 0)
		return -errno;
	if (!(cfg & 4) && (cfg & 8)) { /* a "tap" that takes a few frames only: writes fail */
		int small = 4096;

		(void)setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	}
	SHARED_RING_INIT((struct netif_tx_sring *)f->tx_page);
	SHARED_RING_INIT((struct netif_rx_sring *)f->rx_page);
	FRONT_RING_INIT(&f->tx, (struct netif_tx_sring *)f->tx_page, 4096);
	FRONT_RING_INIT(&f->rx, (struct netif_rx_sring *)f->rx_page, 4096);
	if (RING_SIZE(&f->tx) != FZ_TX_SLOTS || RING_SIZE(&f->rx) != FZ_RX_SLOTS)
		fz_fail("harness: unexpected ring sizes");
	netback_vif_init(&f->vif, 9, 0, fz_mac, f->tx_page, f->rx_page, f->sv[0], &fz_ops, f, f->copybuf);
	f->allow_spoof = f->vif.allow_spoof = cfg & 1;
	f->vif.csum_offload = cfg >> 1 & 1;
	return 0;
}

static void fz_teardown(struct fz_net *f)
{
	if (f->sv[0] >= 0)
		close(f->sv[0]);
	if (f->sv[1] >= 0)
		close(f->sv[1]);
	free(f->page);
	free(f->tx_page);
	free(f->rx_page);
	free(f->copybuf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size, 0 };
	struct fz_net *f = malloc(sizeof(*f));
	unsigned steps = 0;

	if (!f)
		return 0;
	if (fz_setup(f, &in) < 0)
		goto out;
	while (in.i < in.n && steps++ < 256) {
		unsigned op = fz_u8(&in);

		switch (op % 8) {
		case 0:
			fz_tx_chain(f, &in);
			if (op & 8)
				fz_tx_publish(f);
			break;
		case 1:
			fz_tx_publish(f);
			fz_check_rc(f, netback_vif_tx(&f->vif, (op >> 3) + 1));
			break;
		case 2: { /* the top bit: a polling turn (req_event left behind) */
			unsigned x = fz_u8(&in);

			f->vif.tx_poll = (x & 0x80) != 0;
			fz_check_rc(f, netback_vif_tx(&f->vif, (x & 0x7f) + 1));
			f->vif.tx_poll = false;
			break;
		}
		case 3: fz_rx_post(f, &in); break;
		case 4: fz_inject(f, &in); break;
		case 5: fz_page_write(f, &in); break;
		case 6:
			if (op & 8) {
				if (netback_vif_rx_stall(&f->vif, 0) > 0)
					f->fifo_n = 0; /* the tap queue was emptied */
			} else {
				fz_check_rc(f, netback_vif_rx(&f->vif, fz_u8(&in) + 1));
			}
			break;
		default: fz_hostile(f, &in); break;
		}
		fz_after_step(f);
	}
	/* The end of a session: whatever the vif still takes is served and checked. */
	fz_tx_publish(f);
	fz_check_rc(f, netback_vif_tx(&f->vif, 1024));
	fz_check_rc(f, netback_vif_rx(&f->vif, 1024));
	fz_after_step(f);
	fz_stats(f, size ? data[size - 1] : 0);
out:
	fz_teardown(f);
	free(f);
	return 0;
}
