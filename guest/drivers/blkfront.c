/* blkfront: the guest side of the split block driver. The store handshake follows Xen's blkif
 * protocol (device/vbd/N with ring-ref, event-channel, feature-persistent; the back-end's sectors,
 * info, feature-* nodes); requests go through the shared ring library of include/lamina/ring.h. */
#include "blkfront.h"
#include "../kernel/hypercall.h"
#include <xen/io/xenbus.h>
#include <xen/io/protocols.h>

#define BF_WAIT_NS (10ull * 1000000000ull)

static uint8_t *bf_region(unsigned int page)
{
	return (uint8_t *)(uintptr_t)(BLKFRONT_POOL_BASE + (uint64_t)page * GUEST_PAGE_SIZE);
}

uint8_t *blkfront_page(const struct blkfront *bf, unsigned int i)
{
	(void)bf;
	return i < BLKFRONT_POOL_PAGES ? bf_region(i) : NULL;
}

static uint8_t *bf_indirect_page(unsigned int slot)
{
	return bf_region(BLKFRONT_POOL_PAGES + slot);
}

static uint8_t *bf_ring_page(unsigned int i)
{
	return bf_region(BLKFRONT_POOL_PAGES + BLKFRONT_SLOTS + i);
}

static uint64_t bf_gfn(const void *p)
{
	return (uintptr_t)p >> 12;
}

static int bf_read_u64(struct blkfront *bf, const char *dir, const char *node, uint64_t *v)
{
	char path[160], buf[32];
	int rc;

	lib_snprintf(path, sizeof(path), "%s/%s", dir, node);
	rc = xenbus_read(&bf->k->xb, 0, path, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	return lib_parse_u64(buf, v) < 0 ? -XEN_EINVAL : 0;
}

static int bf_write(struct blkfront *bf, uint32_t tx, const char *node, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int bf_write(struct blkfront *bf, uint32_t tx, const char *node, const char *fmt, ...)
{
	char path[160], val[64];
	va_list ap;

	va_start(ap, fmt);
	lib_vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	lib_snprintf(path, sizeof(path), "%s/%s", bf->fe, node);
	return xenbus_write(&bf->k->xb, tx, path, val);
}

/* Waits (1 ms naps) until the back-end's state is one of want..max: that state, or -ETIMEDOUT. */
static int bf_wait_be(struct blkfront *bf, uint64_t want, uint64_t max)
{
	uint64_t end = time_now_ns(&bf->k->time) + BF_WAIT_NS, st;

	while (time_now_ns(&bf->k->time) < end) {
		if (bf_read_u64(bf, bf->be, "state", &st) == 0 && st >= want && st <= max)
			return (int)st;
		timer_sleep_ns(&bf->k->tm, 1000000);
	}
	return -XEN_ETIMEDOUT;
}

static void bf_event(struct events *ev, evtchn_port_t port, void *arg)
{
	struct blkfront *bf = arg;

	bf->notifies++; /* waking the vCPU is all it takes: blkfront_poll looks at the ring */
}

static int bf_find_device(struct blkfront *bf, uint32_t devid)
{
	char names[256];
	uint64_t v;
	int n;

	if (devid == 0) {
		n = xenbus_directory(&bf->k->xb, 0, "device/vbd", names, sizeof(names));
		if (n <= 0)
			return n < 0 ? n : -XEN_ENOENT;
		if (lib_parse_u64(names, &v) < 0 || v > UINT32_MAX)
			return -XEN_EINVAL;
		devid = (uint32_t)v;
	}
	bf->devid = devid;
	lib_snprintf(bf->fe, sizeof(bf->fe), "device/vbd/%u", devid);
	{
		char path[96];

		lib_snprintf(path, sizeof(path), "%s/backend", bf->fe);
		n = xenbus_read(&bf->k->xb, 0, path, bf->be, sizeof(bf->be));
		if (n < 0)
			return n;
	}
	if (bf_read_u64(bf, bf->fe, "backend-id", &v) < 0 || v >= DOMID_FIRST_RESERVED)
		return -XEN_EINVAL;
	bf->backend_id = (domid_t)v;
	return 0;
}

/* What the back-end offers, read in its InitWait. */
static int bf_read_features(struct blkfront *bf, bool want_persistent, unsigned int want_order)
{
	uint64_t v = 0;

	if (bf_read_u64(bf, bf->be, "sectors", &bf->sectors) < 0)
		return -XEN_EIO;
	if (bf_read_u64(bf, bf->be, "sector-size", &v) < 0 || v != BLKFRONT_SECTOR)
		return -XEN_EOPNOTSUPP;
	v = 0;
	bf_read_u64(bf, bf->be, "info", &v);
	bf->readonly = (v & VDISK_READONLY) != 0;
	v = 0;
	bf_read_u64(bf, bf->be, "feature-persistent", &v);
	bf->persistent = want_persistent && v == 1;
	v = 0;
	bf_read_u64(bf, bf->be, "feature-flush-cache", &v);
	bf->flush = v == 1;
	v = 0;
	bf_read_u64(bf, bf->be, "feature-discard", &v);
	bf->discard = v == 1;
	v = 0;
	bf_read_u64(bf, bf->be, "feature-max-indirect-segments", &v);
	bf->max_indirect = v > BLKFRONT_MAX_SEGS ? BLKFRONT_MAX_SEGS : (unsigned int)v;
	v = 0;
	bf_read_u64(bf, bf->be, "max-ring-page-order", &v);
	if (want_order > BLKFRONT_MAX_RING_ORDER)
		want_order = BLKFRONT_MAX_RING_ORDER;
	bf->ring_order = v < want_order ? (unsigned int)v : want_order;
	return 0;
}

static int bf_grant(struct blkfront *bf, const void *page, bool readonly, grant_ref_t *ref)
{
	int rc = gnttab_claim(bf->gt, ref);

	if (rc < 0)
		return rc;
	gnttab_grant_access(bf->gt, *ref, bf->backend_id, bf_gfn(page), readonly);
	return 0;
}

static int bf_setup_grants(struct blkfront *bf)
{
	int rc;

	rc = 0;
	for (unsigned int i = 0; rc == 0 && i < (1u << bf->ring_order); i++)
		rc = bf_grant(bf, bf_ring_page(i), false, &bf->ring_ref[i]);
	for (unsigned int i = 0; rc == 0 && i < bf->nr_slots; i++)
		rc = bf_grant(bf, bf_indirect_page(i), false, &bf->slot[i].ind_ref);
	for (unsigned int i = 0; rc == 0 && bf->persistent && i < BLKFRONT_POOL_PAGES; i++)
		rc = bf_grant(bf, bf_region(i), false, &bf->pool_ref[i]);
	return rc;
}

static int bf_publish(struct blkfront *bf)
{
	uint32_t tx;
	int rc;

	for (int tries = 0; tries < 5; tries++) {
		rc = xenbus_transaction_start(&bf->k->xb, &tx);
		if (rc < 0)
			return rc;
		if (bf->ring_order == 0) {
			rc = bf_write(bf, tx, "ring-ref", "%u", bf->ring_ref[0]);
		} else {
			/* Several pages: ring-page-order and ring-ref0..ring-refN-1 instead of ring-ref. */
			rc = bf_write(bf, tx, "ring-page-order", "%u", bf->ring_order);
			for (unsigned int i = 0; !rc && i < (1u << bf->ring_order); i++) {
				char node[16];

				lib_snprintf(node, sizeof(node), "ring-ref%u", i);
				rc = bf_write(bf, tx, node, "%u", bf->ring_ref[i]);
			}
		}
		if (!rc)
			rc = bf_write(bf, tx, "event-channel", "%u", bf->port);
		if (!rc)
			rc = bf_write(bf, tx, "feature-persistent", "%u", bf->persistent ? 1 : 0);
		if (!rc)
			rc = bf_write(bf, tx, "protocol", "%s", XEN_IO_PROTO_ABI_X86_64);
		if (!rc)
			rc = bf_write(bf, tx, "state", "%d", XenbusStateInitialised);
		int e = xenbus_transaction_end(&bf->k->xb, tx, rc == 0);
		if (rc)
			return rc;
		if (e != -XEN_EAGAIN)
			return e;
	}
	return -XEN_EAGAIN;
}

int blkfront_init(struct blkfront *bf, struct kernel *k, struct gnttab *gt, uint32_t devid, bool want_persistent,
		  unsigned int want_order)
{
	struct blkif_sring *s;
	int rc;

	memset(bf, 0, sizeof(*bf));
	bf->k = k;
	bf->gt = gt;
	if (k->ram_top <
	    BLKFRONT_POOL_BASE + (uint64_t)(BLKFRONT_POOL_PAGES + BLKFRONT_SLOTS + BLKFRONT_MAX_RING_PAGES) * GUEST_PAGE_SIZE)
		return -XEN_ENOMEM;
	rc = bf_find_device(bf, devid);
	if (rc < 0)
		return rc;
	rc = bf_wait_be(bf, XenbusStateInitWait, XenbusStateInitWait);
	if (rc < 0)
		return rc;
	rc = bf_read_features(bf, want_persistent, want_order);
	if (rc < 0)
		return rc;
	s = (struct blkif_sring *)bf_ring_page(0);
	memset(s, 0, GUEST_PAGE_SIZE << bf->ring_order);
	SHARED_RING_INIT(s);
	FRONT_RING_INIT(&bf->ring, s, GUEST_PAGE_SIZE << bf->ring_order);
	bf->nr_slots = RING_SIZE(&bf->ring) < BLKFRONT_SLOTS ? RING_SIZE(&bf->ring) : BLKFRONT_SLOTS;
	rc = bf_setup_grants(bf);
	if (rc < 0)
		return rc;
	rc = events_alloc_unbound(&k->ev, bf->backend_id, bf_event, bf);
	if (rc < 0)
		return rc;
	bf->port = (evtchn_port_t)rc;
	rc = bf_publish(bf);
	if (rc < 0)
		return rc;
	rc = bf_wait_be(bf, XenbusStateConnected, XenbusStateConnected);
	if (rc < 0)
		return rc;
	rc = bf_write(bf, 0, "state", "%d", XenbusStateConnected);
	bf->connected = rc == 0;
	return rc;
}

int blkfront_queue(struct blkfront *bf, uint8_t op, uint64_t sector, unsigned int first, unsigned int npages)
{
	struct blkif_request *r;
	struct blkfront_slot *sl = NULL;
	unsigned int idx, i;
	grant_ref_t ref;

	if (!bf->connected || bf->dead)
		return -XEN_ENOTCONN;
	for (idx = 0; idx < bf->nr_slots; idx++)
		if (!bf->slot[idx].busy) {
			sl = &bf->slot[idx];
			break;
		}
	if (!sl || RING_FULL(&bf->ring))
		return -XEN_EBUSY;
	if ((op == BLKIF_OP_READ || op == BLKIF_OP_WRITE) &&
	    (npages == 0 || first + npages > BLKFRONT_POOL_PAGES ||
	     npages > (bf->max_indirect ? bf->max_indirect : BLKIF_MAX_SEGMENTS_PER_REQUEST)))
		return -XEN_EINVAL;
	r = RING_GET_REQUEST(&bf->ring, bf->ring.req_prod_pvt);
	memset(r, 0, sizeof(*r));
	sl->id_seq = idx | (++bf->seq << 8);
	sl->nrefs = 0;
	if (op == BLKIF_OP_READ || op == BLKIF_OP_WRITE) {
		struct blkif_request_segment *seg = r->seg;

		if (npages > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
			struct blkif_request_indirect *ind = (struct blkif_request_indirect *)r;

			ind->operation = BLKIF_OP_INDIRECT;
			ind->indirect_op = op;
			ind->nr_segments = (uint16_t)npages;
			ind->id = sl->id_seq;
			ind->sector_number = sector;
			ind->handle = (blkif_vdev_t)bf->devid;
			ind->indirect_grefs[0] = sl->ind_ref;
			seg = (struct blkif_request_segment *)bf_indirect_page(idx);
		} else {
			r->operation = op;
			r->nr_segments = (uint8_t)npages;
			r->id = sl->id_seq;
			r->sector_number = sector;
			r->handle = (blkif_vdev_t)bf->devid;
		}
		for (i = 0; i < npages; i++) {
			if (bf->persistent) {
				ref = bf->pool_ref[first + i];
			} else {
				/* A write only lets the back-end read; a read lets it write. */
				if (bf_grant(bf, bf_region(first + i), op == BLKIF_OP_WRITE, &ref) < 0)
					goto out_release;
				sl->refs[sl->nrefs++] = ref;
			}
			seg[i].gref = ref;
			seg[i].first_sect = 0;
			seg[i].last_sect = 7;
		}
	} else if (op == BLKIF_OP_DISCARD) {
		struct blkif_request_discard *d = (struct blkif_request_discard *)r;

		d->operation = op;
		d->id = sl->id_seq;
		d->sector_number = sector;
		d->nr_sectors = (uint64_t)npages * 8;
		d->handle = (blkif_vdev_t)bf->devid;
	} else {
		r->operation = op;
		r->id = sl->id_seq;
		r->handle = (blkif_vdev_t)bf->devid;
	}
	bf->ring.req_prod_pvt++;
	sl->busy = true;
	sl->done = false;
	sl->first = (uint16_t)first;
	sl->npages = (uint16_t)npages;
	sl->start_ns = time_now_ns(&bf->k->time);
	bf->inflight++;
	bf->submitted++;
	return (int)idx;

out_release:
	for (i = 0; i < sl->nrefs; i++) {
		gnttab_end_access(bf->gt, sl->refs[i]);
		gnttab_release(bf->gt, sl->refs[i]);
	}
	sl->nrefs = 0;
	return -XEN_ENOSPC;
}

int blkfront_queue_raw(struct blkfront *bf, const struct blkif_request *req)
{
	struct blkif_request *r;
	unsigned int idx;

	if (!bf->connected || bf->dead)
		return -XEN_ENOTCONN;
	for (idx = 0; idx < bf->nr_slots && bf->slot[idx].busy; idx++)
		;
	if (idx == bf->nr_slots || RING_FULL(&bf->ring))
		return -XEN_EBUSY;
	r = RING_GET_REQUEST(&bf->ring, bf->ring.req_prod_pvt);
	memcpy(r, req, sizeof(*r));
	bf->slot[idx].id_seq = idx | (++bf->seq << 8);
	r->id = bf->slot[idx].id_seq; /* the same offset in every request layout */
	bf->ring.req_prod_pvt++;
	bf->slot[idx].busy = true;
	bf->slot[idx].done = false;
	bf->slot[idx].nrefs = 0;
	bf->slot[idx].start_ns = time_now_ns(&bf->k->time);
	bf->inflight++;
	bf->submitted++;
	return (int)idx;
}

void blkfront_kick(struct blkfront *bf)
{
	if (lamina_ring_front_push(&bf->ring))
		events_send(&bf->k->ev, bf->port);
}

static void bf_complete(struct blkfront *bf, struct blkfront_slot *sl, int16_t status)
{
	for (unsigned int i = 0; i < sl->nrefs; i++) {
		/* The back-end unmaps before it answers; a grant still in use stays leaked, not reused. */
		if (gnttab_end_access(bf->gt, sl->refs[i]) == 0)
			gnttab_release(bf->gt, sl->refs[i]);
	}
	sl->nrefs = 0;
	sl->status = status;
	sl->done = true;
	bf->inflight--;
	bf->completed++;
	if (status != BLKIF_RSP_OKAY)
		bf->errors++;
}

static int bf_consume(struct blkfront *bf)
{
	RING_IDX prod;
	int n = 0, avail;

	do {
		avail = lamina_ring_front_avail(&bf->ring, &prod);
		if (avail < 0) {
			bf->dead = true;
			return n;
		}
		while (bf->ring.rsp_cons != prod) {
			struct blkif_response rsp;
			unsigned int idx;

			lamina_ring_copy_slot(&rsp, RING_GET_RESPONSE(&bf->ring, bf->ring.rsp_cons), sizeof(rsp));
			bf->ring.rsp_cons++;
			idx = (unsigned int)(rsp.id & 0xff);
			if (idx >= bf->nr_slots || !bf->slot[idx].busy || bf->slot[idx].done ||
			    bf->slot[idx].id_seq != rsp.id)
				continue;
			bf_complete(bf, &bf->slot[idx], rsp.status);
			n++;
		}
		/* rsp_event is re-armed only before blocking (bf_has_responses): while this vCPU
		 * polls, the back-end's pushes need no notification, so none is injected. */
	} while (RING_HAS_UNCONSUMED_RESPONSES(&bf->ring));
	return n;
}

static bool bf_has_responses(void *arg)
{
	struct blkfront *bf = arg;

	return RING_HAS_UNCONSUMED_RESPONSES(&bf->ring) || lamina_ring_front_final_check(&bf->ring);
}

int blkfront_poll(struct blkfront *bf, bool block)
{
	uint64_t oldest = UINT64_MAX;
	int n;

	for (;;) {
		n = bf_consume(bf);
		if (n || !block || !bf->inflight)
			return n;
		/* A short spin first: at CPL3 it runs natively, and an answer that comes within it
		 * costs no block and upcall (tens of microseconds each here). */
		for (uint64_t spin_end = time_now_ns(&bf->k->time) + BLKFRONT_SPIN_NS;
		     !RING_HAS_UNCONSUMED_RESPONSES(&bf->ring) && time_now_ns(&bf->k->time) < spin_end;)
			__asm__ volatile("pause" ::: "memory");
		if (RING_HAS_UNCONSUMED_RESPONSES(&bf->ring))
			continue;
		for (unsigned int i = 0; i < bf->nr_slots; i++)
			if (bf->slot[i].busy && !bf->slot[i].done && bf->slot[i].start_ns < oldest)
				oldest = bf->slot[i].start_ns;
		if (timer_wait(&bf->k->tm, bf_has_responses, bf, oldest + BLKFRONT_TIMEOUT_NS) == -XEN_ETIMEDOUT &&
		    !bf_has_responses(bf)) {
			/* The back-end is gone or stuck: fail what is outstanding rather than hang. */
			for (unsigned int i = 0; i < bf->nr_slots; i++)
				if (bf->slot[i].busy && !bf->slot[i].done) {
					bf_complete(bf, &bf->slot[i], BLKIF_RSP_ERROR);
					n++;
				}
			bf->timeouts++;
			bf->dead = true;
			return n;
		}
	}
}

int16_t blkfront_take(struct blkfront *bf, unsigned int slot)
{
	int16_t st;

	if (slot >= bf->nr_slots || !bf->slot[slot].busy || !bf->slot[slot].done)
		return BLKIF_RSP_ERROR;
	st = bf->slot[slot].status;
	bf->slot[slot].busy = false;
	return st;
}

int blkfront_sync(struct blkfront *bf, uint8_t op, uint64_t sector, unsigned int first, unsigned int npages)
{
	int slot = blkfront_queue(bf, op, sector, first, npages);

	if (slot < 0)
		return slot;
	blkfront_kick(bf);
	while (!bf->slot[slot].done)
		blkfront_poll(bf, true);
	return blkfront_take(bf, (unsigned int)slot);
}

void blkfront_close(struct blkfront *bf)
{
	while (bf->inflight && !bf->dead)
		blkfront_poll(bf, true);
	bf_write(bf, 0, "state", "%d", XenbusStateClosing);
	bf_wait_be(bf, XenbusStateClosed, XenbusStateClosed);
	bf_write(bf, 0, "state", "%d", XenbusStateClosed);
	bf->connected = false;
}
