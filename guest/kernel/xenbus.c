/* xenbus over the store ring. One request is outstanding at a time (the kernel has one thread):
 * header and payload are written into req as space allows, then replies are read from rsp until the
 * one with our req_id arrives; watch events met on the way are queued. The daemon's indexes are
 * read once per pass and checked against the ring size; every message length against the
 * protocol's maximum; every watch event's strings against the message. */
#include "xenbus.h"
#include "hypercall.h"
#include "kernel.h"

#define XENBUS_MAPPED_TOP (4ull << 30)

_Static_assert(sizeof(struct xsd_sockmsg) == 16, "xsd_sockmsg is 16 bytes");
_Static_assert(sizeof(struct xenstore_domain_interface) == 2 * XENSTORE_RING_SIZE + 7 * 4,
	       "xenstore_domain_interface layout");
_Static_assert(offsetof(struct xenstore_domain_interface, req_cons) == 2048, "req_cons offset");

static const struct {
	const char *name;
	int err;
} xenbus_errors[] = {
    {"EINVAL", XEN_EINVAL},	  {"EACCES", XEN_EACCES},   {"EEXIST", XEN_EEXIST}, {"EISDIR", XEN_EISDIR},
    {"ENOENT", XEN_ENOENT},	  {"ENOMEM", XEN_ENOMEM},   {"ENOSPC", XEN_ENOSPC}, {"EIO", XEN_EIO},
    {"ENOTEMPTY", XEN_ENOTEMPTY}, {"ENOSYS", XEN_ENOSYS},   {"EROFS", XEN_EROFS},   {"EBUSY", XEN_EBUSY},
    {"EAGAIN", XEN_EAGAIN},	  {"EISCONN", XEN_EISCONN}, {"E2BIG", XEN_E2BIG},   {"EPERM", XEN_EPERM},
};

int xenbus_errno(const char *name)
{
	for (size_t i = 0; i < LIB_ARRAY_SIZE(xenbus_errors); i++) {
		if (strcmp(xenbus_errors[i].name, name) == 0)
			return -xenbus_errors[i].err;
	}
	return -XEN_EIO;
}

static inline void xenbus_barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static void xenbus_kick(struct events *ev, evtchn_port_t port, void *arg)
{
	struct xenbus *xb = arg;

	xb->kicks++;
}

static void xenbus_notify(struct xenbus *xb)
{
	events_send(xb->ev, xb->port);
	xb->notified_cons = xb->rsp_cons;
	xb->notify_owed = false;
}

/* rsp_cons was just published. The daemon stops writing rsp only when the ring is full against
 * the rsp_cons it last read, so it stalls at rsp_prod == c + XENSTORE_RING_SIZE for some c we
 * published; a notify makes it read rsp_cons again, so a stall it has not yet been woken from
 * has c >= notified_cons. Hence the daemon may be waiting for room only when rsp_prod has reached
 * notified_cons + XENSTORE_RING_SIZE: notify then, and only then. The full fence orders our
 * rsp_cons store before the rsp_prod load; the daemon loads rsp_cons before it stores rsp_prod.
 * If its stalling rsp_prod is not visible here yet, its own notify for those bytes follows, we
 * read them, and this check runs again. */
static void xenbus_rsp_room(struct xenbus *xb)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	XENSTORE_RING_IDX prod = xb->intf->rsp_prod;
	if (prod - xb->notified_cons >= XENSTORE_RING_SIZE) {
		xb->room_notifies++;
		xenbus_notify(xb);
	}
}

/* Blocks until cond; a request notify still owed to the daemon rides in the first block's exit. */
static int xenbus_wait(struct xenbus *xb, timer_cond_fn cond, uint64_t deadline)
{
	if (!xb->notify_owed)
		return timer_wait(xb->tm, cond, xb, deadline);
	xb->notify_owed = false;
	xb->notified_cons = xb->rsp_cons;
	return timer_notify_wait(xb->tm, xb->port, cond, xb, deadline);
}

/* At the end of a request: the daemon took the request without our notify (it reads requests
 * while flushing replies), or it still needs it. */
static void xenbus_settle_notify(struct xenbus *xb)
{
	if (xb->notify_owed && xb->intf->req_cons != xb->req_prod)
		xenbus_notify(xb);
	xb->notify_owed = false;
}

static bool xenbus_req_has_space(void *arg)
{
	struct xenbus *xb = arg;

	return xb->req_prod - xb->intf->req_cons < XENSTORE_RING_SIZE || xb->intf->error;
}

static bool xenbus_rsp_has_data(void *arg)
{
	struct xenbus *xb = arg;

	return xb->intf->rsp_prod != xb->rsp_cons || xb->intf->error;
}

static int xenbus_ring_write(struct xenbus *xb, const void *data, size_t n, uint64_t deadline)
{
	volatile struct xenstore_domain_interface *intf = xb->intf;
	const char *p = data;

	while (n > 0) {
		if (intf->error)
			return -XEN_EIO;
		XENSTORE_RING_IDX cons = intf->req_cons; /* read once */
		xenbus_barrier();
		XENSTORE_RING_IDX used = xb->req_prod - cons;
		if (used > XENSTORE_RING_SIZE)
			return -XEN_EIO; /* the daemon scribbled req_cons */
		if (used == XENSTORE_RING_SIZE) {
			xb->notify_owed = true;
			int rc = xenbus_wait(xb, xenbus_req_has_space, deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		size_t chunk = XENSTORE_RING_SIZE - used;
		if (chunk > n)
			chunk = n;
		for (size_t i = 0; i < chunk; i++)
			intf->req[MASK_XENSTORE_IDX(xb->req_prod + (XENSTORE_RING_IDX)i)] = p[i];
		xenbus_barrier(); /* bytes before the index */
		xb->req_prod += (XENSTORE_RING_IDX)chunk;
		intf->req_prod = xb->req_prod;
		p += chunk;
		n -= chunk;
	}
	return 0;
}

/* Exactly n bytes from rsp, waiting for them until deadline. */
static int xenbus_ring_read(struct xenbus *xb, void *data, size_t n, uint64_t deadline)
{
	volatile struct xenstore_domain_interface *intf = xb->intf;
	char *p = data;

	while (n > 0) {
		if (intf->error)
			return -XEN_EIO;
		XENSTORE_RING_IDX prod = intf->rsp_prod; /* read once */
		xenbus_barrier();
		XENSTORE_RING_IDX avail = prod - xb->rsp_cons;
		if (avail > XENSTORE_RING_SIZE)
			return -XEN_EIO; /* the daemon scribbled rsp_prod */
		if (avail == 0) {
			int rc = xenbus_wait(xb, xenbus_rsp_has_data, deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		size_t chunk = avail < n ? avail : n;
		for (size_t i = 0; i < chunk; i++)
			p[i] = intf->rsp[MASK_XENSTORE_IDX(xb->rsp_cons + (XENSTORE_RING_IDX)i)];
		xenbus_barrier(); /* bytes read before the slot is handed back */
		xb->rsp_cons += (XENSTORE_RING_IDX)chunk;
		intf->rsp_cons = xb->rsp_cons;
		xenbus_rsp_room(xb);
		p += chunk;
		n -= chunk;
	}
	return 0;
}

/* A watch event's payload is "path\0token\0" (the daemon may add nothing else). */
static void xenbus_queue_event(struct xenbus *xb, uint32_t len)
{
	size_t plen = lib_strnlen(xb->msg, len);

	if (plen >= len || plen >= XENBUS_PATH_MAX) {
		xb->events_dropped++;
		return;
	}
	const char *token = xb->msg + plen + 1;
	size_t tlen = lib_strnlen(token, len - plen - 1);
	if (plen + 1 + tlen >= len || tlen >= XENBUS_TOKEN_MAX || xb->q_len == XENBUS_QUEUE) {
		xb->events_dropped++;
		return;
	}
	struct xenbus_event *e = &xb->queue[(xb->q_head + xb->q_len) % XENBUS_QUEUE];
	memcpy(e->path, xb->msg, plen + 1);
	memcpy(e->token, token, tlen + 1);
	xb->q_len++;
	xb->events_queued++;
}

/* One whole message into xb->msg. */
static int xenbus_read_msg(struct xenbus *xb, struct xsd_sockmsg *hdr, uint64_t deadline)
{
	int rc = xenbus_ring_read(xb, hdr, sizeof(*hdr), deadline);

	if (rc < 0)
		return rc;
	if (hdr->len > XENSTORE_PAYLOAD_MAX)
		return -XEN_EIO; /* out of step with the daemon: nothing after this can be trusted */
	rc = xenbus_ring_read(xb, xb->msg, hdr->len, deadline);
	if (rc < 0)
		return rc;
	xb->msg[hdr->len] = '\0';
	if (hdr->type == XS_WATCH_EVENT)
		xenbus_queue_event(xb, hdr->len);
	return 0;
}

/* A store daemon that attached to the ring has set server_features: without them, a timeout
 * means nobody serves this ring (-ENOTCONN), not that the daemon is slow. A broken ring (-EIO)
 * disconnects xenbus for good. */
static int xenbus_timeout_why(struct xenbus *xb, int rc)
{
	if (rc == -XEN_ETIMEDOUT && xb->intf->server_features == 0)
		return -XEN_ENOTCONN;
	if (rc == -XEN_EIO)
		xb->ready = false; /* a scribbled index or length: nothing after it can be trusted */
	return rc;
}

struct xenbus_part {
	const void *data;
	size_t len;
};

/* Reads messages until the one answering req_id (payload in xb->msg): 0, or the ring's -errno.
 * Watch events met on the way were queued by xenbus_read_msg; other replies are stale. */
static int xenbus_await_reply(struct xenbus *xb, uint32_t req_id, struct xsd_sockmsg *rsp, uint64_t deadline)
{
	for (;;) {
		int rc = xenbus_read_msg(xb, rsp, deadline);
		if (rc < 0)
			return rc;
		if (rsp->type == XS_WATCH_EVENT)
			continue;
		if (rsp->req_id == req_id)
			return 0;
		xb->stale++; /* the reply to a request that timed out earlier */
	}
}

/* Sends one request and waits for its reply; the reply payload (NUL-terminated) is in xb->msg,
 * its length the return value, or -errno (XS_ERROR mapped). In ring 3 the request's notify is
 * owed, not sent: it rides in the exit of the first block that waits for the reply. */
static int xenbus_request(struct xenbus *xb, uint32_t type, uint32_t tx, const struct xenbus_part *parts,
			  unsigned int nparts)
{
	struct xsd_sockmsg hdr = {.type = type, .req_id = ++xb->req_id, .tx_id = tx, .len = 0};
	uint64_t deadline = time_now_ns(xb->time) + XENBUS_TIMEOUT_NS;
	struct xsd_sockmsg rsp;
	int rc;

	if (!xb->ready)
		return -XEN_ENODEV;
	for (unsigned int i = 0; i < nparts; i++)
		hdr.len += (uint32_t)parts[i].len;
	if (hdr.len > XENSTORE_PAYLOAD_MAX)
		return -XEN_E2BIG;
	rc = xenbus_ring_write(xb, &hdr, sizeof(hdr), deadline);
	for (unsigned int i = 0; rc == 0 && i < nparts; i++)
		rc = xenbus_ring_write(xb, parts[i].data, parts[i].len, deadline);
	if (rc == 0) {
		/* Ring 3: an exit costs ~25 us and code is native, so the notify waits for the block
		 * that follows (one exit for both). Ring 0: every instruction is emulated and an exit
		 * is cheaper than the timer bookkeeping of a block; by the time the emulated code
		 * looks, the reply is usually there, so notify now and often never block. */
		if (xb->ev->ring == 0)
			xenbus_notify(xb);
		else
			xb->notify_owed = true;
		xb->requests++;
		rc = xenbus_await_reply(xb, hdr.req_id, &rsp, deadline);
	}
	xenbus_settle_notify(xb);
	if (rc < 0)
		return xenbus_timeout_why(xb, rc);
	xb->replies++;
	if (rsp.type == XS_ERROR)
		return xenbus_errno(xb->msg);
	if (rsp.type != type)
		return -XEN_EIO;
	return (int)rsp.len;
}

static int xenbus_path_op(struct xenbus *xb, uint32_t type, uint32_t tx, const char *path)
{
	struct xenbus_part p[] = {{path, strlen(path) + 1}};
	int rc = xenbus_request(xb, type, tx, p, 1);

	return rc < 0 ? rc : 0;
}

int xenbus_read(struct xenbus *xb, uint32_t tx, const char *path, char *out, size_t size)
{
	struct xenbus_part p[] = {{path, strlen(path) + 1}};
	int rc = xenbus_request(xb, XS_READ, tx, p, 1);

	if (rc < 0)
		return rc;
	if ((size_t)rc >= size)
		return -XEN_E2BIG;
	memcpy(out, xb->msg, (size_t)rc);
	out[rc] = '\0';
	return rc;
}

int xenbus_write(struct xenbus *xb, uint32_t tx, const char *path, const char *value)
{
	/* XS_WRITE: the path with its NUL, then the value without one. */
	struct xenbus_part p[] = {{path, strlen(path) + 1}, {value, strlen(value)}};
	int rc = xenbus_request(xb, XS_WRITE, tx, p, 2);

	return rc < 0 ? rc : 0;
}

int xenbus_mkdir(struct xenbus *xb, uint32_t tx, const char *path)
{
	return xenbus_path_op(xb, XS_MKDIR, tx, path);
}

int xenbus_rm(struct xenbus *xb, uint32_t tx, const char *path)
{
	return xenbus_path_op(xb, XS_RM, tx, path);
}

int xenbus_directory(struct xenbus *xb, uint32_t tx, const char *path, char *out, size_t size)
{
	struct xenbus_part p[] = {{path, strlen(path) + 1}};
	int rc = xenbus_request(xb, XS_DIRECTORY, tx, p, 1);
	int n = 0;

	if (rc < 0)
		return rc;
	if ((size_t)rc > size)
		return -XEN_E2BIG;
	memcpy(out, xb->msg, (size_t)rc);
	for (int i = 0; i < rc; i++)
		n += out[i] == '\0';
	return n;
}

int xenbus_transaction_start(struct xenbus *xb, uint32_t *tx)
{
	struct xenbus_part p[] = {{"", 1}};
	uint64_t id;
	int rc = xenbus_request(xb, XS_TRANSACTION_START, 0, p, 1);

	if (rc < 0)
		return rc;
	if (lib_parse_u64(xb->msg, &id) < 0 || id == 0 || id > UINT32_MAX)
		return -XEN_EIO;
	*tx = (uint32_t)id;
	return 0;
}

int xenbus_transaction_end(struct xenbus *xb, uint32_t tx, bool commit)
{
	const char *arg = commit ? "T" : "F";
	struct xenbus_part p[] = {{arg, 2}};
	int rc = xenbus_request(xb, XS_TRANSACTION_END, tx, p, 1);

	return rc < 0 ? rc : 0;
}

int xenbus_watch(struct xenbus *xb, const char *path, const char *token, xenbus_watch_fn fn, void *arg)
{
	struct xenbus_watch *w = NULL;
	size_t plen = strlen(path), tlen = strlen(token);

	if (plen >= XENBUS_PATH_MAX || tlen >= XENBUS_TOKEN_MAX)
		return -XEN_E2BIG;
	for (unsigned int i = 0; i < XENBUS_MAX_WATCHES && !w; i++) {
		if (!xb->watches[i].used)
			w = &xb->watches[i];
	}
	if (!w)
		return -XEN_ENOSPC;
	/* Registered before asking: the initial event may arrive ahead of the reply. */
	memcpy(w->path, path, plen + 1);
	memcpy(w->token, token, tlen + 1);
	w->fn = fn;
	w->arg = arg;
	w->fired = 0;
	w->used = true;
	struct xenbus_part p[] = {{path, plen + 1}, {token, tlen + 1}};
	int rc = xenbus_request(xb, XS_WATCH, 0, p, 2);
	if (rc < 0) {
		w->used = false;
		return rc;
	}
	return 0;
}

int xenbus_unwatch(struct xenbus *xb, const char *path, const char *token)
{
	struct xenbus_part p[] = {{path, strlen(path) + 1}, {token, strlen(token) + 1}};
	int rc = xenbus_request(xb, XS_UNWATCH, 0, p, 2);

	for (unsigned int i = 0; i < XENBUS_MAX_WATCHES; i++) {
		struct xenbus_watch *w = &xb->watches[i];
		if (w->used && strcmp(w->path, path) == 0 && strcmp(w->token, token) == 0)
			w->used = false;
	}
	return rc < 0 ? rc : 0;
}

int xenbus_dispatch_watches(struct xenbus *xb)
{
	struct xsd_sockmsg hdr;
	int ran = 0;

	/* Whatever arrived while no request was waiting: events, or replies nobody waits for. */
	while (xb->ready && !xb->intf->error && xb->intf->rsp_prod != xb->rsp_cons) {
		int rc = xenbus_read_msg(xb, &hdr, time_now_ns(xb->time) + XENBUS_TIMEOUT_NS);
		if (rc < 0) {
			xenbus_timeout_why(xb, rc);
			break;
		}
		if (hdr.type != XS_WATCH_EVENT)
			xb->stale++;
	}
	while (xb->q_len > 0) {
		struct xenbus_event e = xb->queue[xb->q_head];
		xb->q_head = (xb->q_head + 1) % XENBUS_QUEUE;
		xb->q_len--;
		for (unsigned int i = 0; i < XENBUS_MAX_WATCHES; i++) {
			struct xenbus_watch *w = &xb->watches[i];
			if (!w->used || strcmp(w->token, e.token) != 0)
				continue;
			w->fired++;
			ran++;
			if (w->fn)
				w->fn(xb, e.path, e.token, w->arg);
			break;
		}
	}
	return ran;
}

int xenbus_wait_watch(struct xenbus *xb, uint64_t deadline)
{
	for (;;) {
		int ran = xenbus_dispatch_watches(xb);
		if (ran > 0)
			return ran;
		if (!xb->ready)
			return -XEN_ENODEV;
		int rc = timer_wait(xb->tm, xenbus_rsp_has_data, xb, deadline);
		if (rc < 0)
			return rc;
	}
}

int xenbus_init(struct xenbus *xb, struct events *ev, struct timers *tm, const struct kernel_time *time,
		uint64_t image_end)
{
	uint64_t pfn = 0, port = 0;
	long rc;

	if (xb->ready)
		return 0;
	/* *xb starts zeroed with struct kernel; only what a failed attempt may have set is reset. */
	xb->intf = NULL;
	xb->ev = ev;
	xb->tm = tm;
	xb->time = time;
	rc = ev->ready && timer_ready(tm) ? 0 : -XEN_ENODEV;
	if (rc == 0)
		rc = hypercall_get_param(HVM_PARAM_STORE_PFN, &pfn);
	if (rc == 0)
		rc = hypercall_get_param(HVM_PARAM_STORE_EVTCHN, &port);
	if (rc == 0 && (pfn == 0 || port == 0))
		rc = -XEN_ENOENT;
	uint64_t pa = pfn << 12;
	if (rc == 0 && (pfn >= (XENBUS_MAPPED_TOP >> 12) ||
			(pa < image_end && pa + GUEST_PAGE_SIZE > 0x100000) || port >= EVENTS_MAX_PORTS))
		rc = -XEN_EINVAL;
	if (rc < 0)
		goto out;
	xb->intf = (volatile struct xenstore_domain_interface *)(uintptr_t)pa;
	xb->port = (evtchn_port_t)port;
	xb->req_prod = xb->intf->req_prod;
	xb->rsp_cons = xb->intf->rsp_cons;
	xb->notified_cons = xb->rsp_cons;
	if (xb->req_prod - xb->intf->req_cons > XENSTORE_RING_SIZE ||
	    xb->intf->rsp_prod - xb->rsp_cons > XENSTORE_RING_SIZE || xb->intf->error) {
		rc = -XEN_EIO;
		goto out;
	}
	rc = events_set_handler(ev, xb->port, xenbus_kick, xb);
	if (rc < 0)
		goto out;
	xb->ready = true;
out:
	xb->init_rc = (int)rc;
	return (int)rc;
}
