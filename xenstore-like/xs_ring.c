/* The guest ring transport. Each index the guest controls is read once per pass and checked
 * against our private copy of the index we own; requests are copied out of the page before the
 * connection parses them; replies and watch events are copied in as space allows. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xs_ring.h"

struct xs_ring {
	struct xs_store *st;
	struct xs_domain *d;
	struct xs_ring_env *env;
	volatile struct xenstore_domain_interface *intf;
	int fd;
	struct xs_conn *c;
	XENSTORE_RING_IDX req_cons; /* ours: how far we have read */
	XENSTORE_RING_IDX rsp_prod; /* ours: how far we have written */
	uint32_t error;
};

static int xs_ring_flush(struct xs_conn *c);
static void xs_ring_destroy(struct xs_conn *c);
static void xs_ring_backlog(struct xs_conn *c, const char *why);

static const struct xs_conn_tops xs_ring_tops = {
    .name = "ring",
    .flush = xs_ring_flush,
    .destroy = xs_ring_destroy,
    .backlog = xs_ring_backlog,
};

struct xs_conn *xs_ring_conn(struct xs_ring *r)
{
	return r->c;
}

uint32_t xs_ring_error(const struct xs_ring *r)
{
	return r->error;
}

static void xs_ring_fail(struct xs_ring *r, uint32_t err, const char *why)
{
	if (r->error)
		return;
	r->error = err;
	r->intf->error = err;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	r->env->ops->notify(r->env->ops_ctx, r->fd);
	xs_conn_kill(r->c, why);
}

static void xs_ring_backlog(struct xs_conn *c, const char *why)
{
	xs_ring_fail(c->tctx, XENSTORE_ERROR_COMM, why);
}

static void xs_ring_notify(struct xs_ring *r)
{
	if (r->env->ops->notify(r->env->ops_ctx, r->fd) < 0)
		xs_log(r->st, XS_LOG_ERR, "dom%u: ring notify failed", r->d->domid);
}

/* The guest asked to start over: drop what the connection held and zero the indexes. */
static void xs_ring_reconnect(struct xs_ring *r)
{
	struct xs_conn *c = r->c;

	xs_watch_drop_all(c);
	xs_txn_drop_all(c);
	xs_conn_consumed(c, c->out_bytes);
	c->hdr_got = c->body_got = 0;
	r->req_cons = r->rsp_prod = 0;
	r->intf->req_cons = r->intf->req_prod = 0;
	r->intf->rsp_cons = r->intf->rsp_prod = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	r->intf->connection = XENSTORE_CONNECTED;
	xs_ring_notify(r);
}

static bool xs_ring_read_requests(struct xs_ring *r)
{
	char buf[XENSTORE_RING_SIZE];
	XENSTORE_RING_IDX prod, avail, idx;
	size_t used = 0, first;

	prod = __atomic_load_n(&r->intf->req_prod, __ATOMIC_ACQUIRE);
	avail = prod - r->req_cons;
	if (avail > XENSTORE_RING_SIZE) {
		xs_ring_fail(r, XENSTORE_ERROR_RINGIDX, "request producer index beyond the ring");
		return false;
	}
	if (avail == 0 || xs_conn_paused(r->c))
		return false;
	idx = MASK_XENSTORE_IDX(r->req_cons);
	first = XENSTORE_RING_SIZE - idx;
	if (first > avail)
		first = avail;
	memcpy(buf, (const char *)r->intf->req + idx, first);
	memcpy(buf + first, (const char *)r->intf->req, avail - first);
	if (xs_conn_input(r->c, buf, avail, &used) < 0) {
		xs_ring_fail(r, XENSTORE_ERROR_PROTO, "message longer than XENSTORE_PAYLOAD_MAX on the ring");
		return false;
	}
	if (!used)
		return false;
	r->req_cons += (XENSTORE_RING_IDX)used;
	__atomic_store_n(&r->intf->req_cons, r->req_cons, __ATOMIC_RELEASE);
	return true;
}

static int xs_ring_flush(struct xs_conn *c)
{
	struct xs_ring *r = c->tctx;
	XENSTORE_RING_IDX cons, space, wrote = 0;
	bool progress = false;

	if (r->error)
		return 0;
	for (;;) {
		cons = __atomic_load_n(&r->intf->rsp_cons, __ATOMIC_ACQUIRE);
		if (r->rsp_prod - cons > XENSTORE_RING_SIZE) {
			xs_ring_fail(r, XENSTORE_ERROR_RINGIDX, "response consumer index beyond the ring");
			return 0;
		}
		space = XENSTORE_RING_SIZE - (r->rsp_prod - cons);
		while (space && c->out_head) {
			const struct xs_outbuf *o = c->out_head;
			XENSTORE_RING_IDX idx = MASK_XENSTORE_IDX(r->rsp_prod);
			uint32_t n = o->len - c->out_off;
			if (n > space)
				n = space;
			if (n > XENSTORE_RING_SIZE - idx)
				n = XENSTORE_RING_SIZE - idx;
			memcpy((char *)r->intf->rsp + idx, o->data + c->out_off, n);
			r->rsp_prod += n;
			space -= n;
			wrote += n;
			xs_conn_consumed(c, n);
		}
		if (wrote) {
			__atomic_store_n(&r->intf->rsp_prod, r->rsp_prod, __ATOMIC_RELEASE);
			progress = true;
			wrote = 0;
		}
		/* Output space freed may un-pause the connection: take more requests. */
		if (c->dead || !xs_ring_read_requests(r))
			break;
		progress = true;
		if (c->out_head == NULL)
			break;
	}
	if (progress)
		xs_ring_notify(r);
	return 0;
}

void xs_ring_kick(struct xs_ring *r)
{
	uint64_t v;

	if (r->c->dead || !r->intf)
		return;
	if (read(r->fd, &v, sizeof(v)) < 0) {
		/* nothing to clear: a spurious wake-up or a test calling directly */
	}
	if (r->error)
		return;
	if (__atomic_load_n(&r->intf->connection, __ATOMIC_ACQUIRE) == XENSTORE_RECONNECT) {
		xs_ring_reconnect(r);
		return;
	}
	if (xs_ring_read_requests(r))
		xs_ring_notify(r);
	/* Replies go out from xs_store_flush_dirty; a guest that freed response space needs a push. */
	if (r->c->out_head)
		xs_ring_flush(r->c);
}

static void xs_ring_release(struct xs_ring *r)
{
	if (r->fd >= 0) {
		if (r->env->poll_del)
			r->env->poll_del(r->env->pctx, r->fd);
		r->env->ops->unbind_evtchn(r->env->ops_ctx, r->d->domid, r->fd);
	}
	if (r->intf)
		r->env->ops->unmap_ring(r->env->ops_ctx, r->d->domid, (void *)r->intf);
	if (r->d->ring == r) {
		r->d->ring = NULL;
		r->d->conn = NULL;
	}
	free(r);
}

static void xs_ring_destroy(struct xs_conn *c)
{
	struct xs_ring *r = c->tctx;

	xs_conn_free(c);
	xs_ring_release(r);
}

static int xs_ring_attach(struct xs_store *st, struct xs_domain *d)
{
	struct xs_ring_env *env = st->ring_ctx;
	struct xs_ring *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	r->st = st;
	r->d = d;
	r->env = env;
	r->fd = -1;
	r->intf = env->ops->map_ring(env->ops_ctx, d->domid, d->mfn);
	if (!r->intf) {
		rc = errno ? -errno : -EFAULT;
		goto fail;
	}
	rc = env->ops->bind_evtchn(env->ops_ctx, d->domid, d->port);
	if (rc < 0)
		goto fail;
	r->fd = rc;
	r->c = xs_conn_new(st, d->domid, false, &xs_ring_tops, r);
	if (!r->c) {
		rc = -ENOMEM;
		goto fail;
	}
	r->c->fd = r->fd;
	r->c->target = d->target;
	if (env->poll_add && (rc = env->poll_add(env->pctx, r->fd, r)) < 0) {
		xs_conn_free(r->c);
		goto fail;
	}
	/* Start from where the guest is: it may have queued requests already. */
	r->req_cons = r->intf->req_cons;
	r->rsp_prod = r->intf->rsp_prod;
	r->intf->server_features = XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR;
	r->intf->error = XENSTORE_ERROR_NONE;
	r->intf->connection = XENSTORE_CONNECTED;
	d->ring = r;
	d->conn = r->c;
	xs_ring_kick(r);
	return 0;
fail:
	r->c = NULL;
	xs_ring_release(r);
	return rc;
}

/* RELEASE or re-INTRODUCE: the page and the event channel go at once (a re-introduction binds
 * the port again); the ring and its connection go when the loop reaps dead connections, after any
 * event still in flight that names them. */
static void xs_ring_detach(struct xs_store *st, struct xs_domain *d)
{
	struct xs_ring *r = d->ring;

	if (!r)
		return;
	d->ring = NULL;
	d->conn = NULL;
	if (!r->c->dead) {
		r->c->dead = true;
		st->ndead++;
	}
	if (r->fd >= 0) {
		if (r->env->poll_del)
			r->env->poll_del(r->env->pctx, r->fd);
		r->env->ops->unbind_evtchn(r->env->ops_ctx, r->d->domid, r->fd);
		r->fd = -1;
	}
	if (r->intf) {
		r->env->ops->unmap_ring(r->env->ops_ctx, r->d->domid, (void *)r->intf);
		r->intf = NULL;
	}
}

void xs_ring_install(struct xs_store *st, struct xs_ring_env *env)
{
	st->ring_ops = env->ops;
	st->ring_ctx = env;
	st->ring_attach = xs_ring_attach;
	st->ring_detach = xs_ring_detach;
}
