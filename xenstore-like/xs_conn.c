/* Connections: the request state machine (header, then body, checked against the payload limits),
 * the bounded reply/event queue a transport drains, and the store's lifetime. */
#include <stdlib.h>
#include <string.h>

#include "xs_store.h"

struct xs_store *xs_store_new(void)
{
	struct xs_store *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	if (xs_htab_init(&st->nodes, 1024) < 0) {
		free(st);
		return NULL;
	}
	xs_quota_defaults(&st->quota);
	st->log_level = XS_LOG_INFO;
	st->special[0].name = "@introduceDomain";
	st->special[1].name = "@releaseDomain";
	st->special[0].nperms = st->special[1].nperms = 1; /* owner 0, none for others */
	if (xs_tree_init(st) < 0) {
		xs_store_free(st);
		return NULL;
	}
	st->tree_dirty = false;
	return st;
}

void xs_store_free(struct xs_store *st)
{
	int i;

	if (!st)
		return;
	while (st->conns) {
		struct xs_conn *c = st->conns;
		if (c->tops && c->tops->destroy)
			c->tops->destroy(c); /* releases what the transport holds (ring mappings) */
		else
			xs_conn_free(c);
	}
	for (i = 0; i < XS_DOM_BUCKETS; i++) {
		while (st->domains[i]) {
			struct xs_domain *d = st->domains[i];
			st->domains[i] = d->next;
			free(d);
		}
	}
	xs_htab_free_all(&st->nodes);
	free(st);
}

struct xs_conn *xs_conn_new(struct xs_store *st, uint32_t domid, bool priv, const struct xs_conn_tops *tops,
			    void *tctx)
{
	struct xs_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->st = st;
	c->id = domid;
	c->priv = priv;
	c->target = XS_DOMID_NONE;
	c->tops = tops;
	c->tctx = tctx;
	c->fd = -1;
	c->next = st->conns;
	if (st->conns)
		st->conns->prev = c;
	st->conns = c;
	return c;
}

void xs_conn_free(struct xs_conn *c)
{
	struct xs_store *st = c->st;
	struct xs_conn **pp;

	if (c->on_dirty) {
		for (pp = &st->dirty; *pp; pp = &(*pp)->dirty_next) {
			if (*pp == c) {
				*pp = c->dirty_next;
				break;
			}
		}
	}
	if (c->dead && st->ndead)
		st->ndead--;
	if (c->prev)
		c->prev->next = c->next;
	else
		st->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	xs_watch_drop_all(c);
	xs_txn_drop_all(c);
	while (c->out_head) {
		struct xs_outbuf *o = c->out_head;
		c->out_head = o->next;
		free(o);
	}
	free(c);
}

/* Marks the connection for closing; the transport's destroy runs from xs_store_flush_dirty. */
void xs_conn_kill(struct xs_conn *c, const char *why)
{
	if (c->dead)
		return;
	xs_log(c->st, XS_LOG_ERR, "closing %s connection of dom%u: %s", c->tops ? c->tops->name : "internal",
	       c->id, why);
	c->dead = true;
	c->st->ndead++;
}

const char *xs_errno_name(int err)
{
	size_t i;

	for (i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
		if (xsd_errors[i].errnum == err)
			return xsd_errors[i].errstring;
	return "EINVAL";
}

bool xs_conn_paused(const struct xs_conn *c)
{
	if (c->out_bytes >= XS_CONN_OUT_LIMIT)
		return true;
	return !c->priv && c->out_replies >= c->st->quota.v[XS_Q_OUTSTANDING];
}

int xs_conn_queue(struct xs_conn *c, uint32_t type, uint32_t req_id, uint32_t tx_id, const void *a,
		  uint32_t alen, const void *b, uint32_t blen, bool is_reply)
{
	struct xsd_sockmsg h = {.type = type, .req_id = req_id, .tx_id = tx_id, .len = alen + blen};
	struct xs_outbuf *o;

	if ((uint64_t)alen + blen > XENSTORE_PAYLOAD_MAX)
		return -E2BIG;
	o = malloc(sizeof(*o) + sizeof(h) + alen + blen);
	if (!o)
		return -ENOMEM;
	o->next = NULL;
	o->len = (uint32_t)sizeof(h) + alen + blen;
	o->is_reply = is_reply;
	memcpy(o->data, &h, sizeof(h));
	if (alen)
		memcpy(o->data + sizeof(h), a, alen);
	if (blen)
		memcpy(o->data + sizeof(h) + alen, b, blen);
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->out_bytes += o->len;
	if (is_reply)
		c->out_replies++;
	else
		c->out_events++;
	if (!c->on_dirty) {
		c->on_dirty = true;
		c->dirty_next = c->st->dirty;
		c->st->dirty = c;
	}
	return 0;
}

int xs_conn_error(struct xs_conn *c, const struct xsd_sockmsg *h, int err)
{
	const char *name = xs_errno_name(err);

	return xs_conn_queue(c, XS_ERROR, h->req_id, h->tx_id, name, (uint32_t)strlen(name) + 1, NULL, 0,
			     true);
}

/* The transport wrote n bytes from the head of the queue. */
void xs_conn_consumed(struct xs_conn *c, size_t n)
{
	while (n && c->out_head) {
		struct xs_outbuf *o = c->out_head;
		size_t left = o->len - c->out_off;
		if (n < left) {
			c->out_off += (uint32_t)n;
			return;
		}
		n -= left;
		c->out_off = 0;
		c->out_head = o->next;
		if (!c->out_head)
			c->out_tail = NULL;
		c->out_bytes -= o->len;
		if (o->is_reply)
			c->out_replies--;
		else
			c->out_events--;
		free(o);
	}
}

static void xs_conn_process(struct xs_conn *c)
{
	struct xsd_sockmsg h = c->hdr;
	int rc;

	c->hdr_got = 0;
	c->body_got = 0;
	c->requests++;
	if (c->discard) {
		c->discard = false;
		rc = -E2BIG;
	} else {
		c->body[h.len] = '\0';
		rc = xs_ops_dispatch(c, &h, c->body);
	}
	if (rc < 0 && !c->dead)
		xs_conn_error(c, &h, -rc);
}

/* Feeds bytes received from the peer; *used says how many were taken (fewer when the connection
 * is paused by its reply backlog). A header announcing more than XENSTORE_PAYLOAD_MAX is a
 * protocol violation: -EPROTO, and the caller closes the connection. */
int xs_conn_input(struct xs_conn *c, const char *data, size_t len, size_t *used)
{
	size_t off = 0;

	while (off < len && !c->dead && !xs_conn_paused(c)) {
		size_t n;
		if (c->hdr_got < sizeof(c->hdr)) {
			n = sizeof(c->hdr) - c->hdr_got;
			if (n > len - off)
				n = len - off;
			memcpy((char *)&c->hdr + c->hdr_got, data + off, n);
			c->hdr_got += (uint32_t)n;
			off += n;
			if (c->hdr_got < sizeof(c->hdr))
				break;
			if (c->hdr.len > XENSTORE_PAYLOAD_MAX) {
				*used = off;
				xs_conn_kill(c, "message longer than XENSTORE_PAYLOAD_MAX");
				return -EPROTO;
			}
			c->discard = xs_quota_check(c, XS_Q_PAYLOAD, c->hdr.len) < 0;
			if (c->hdr.len == 0)
				xs_conn_process(c);
			continue;
		}
		n = c->hdr.len - c->body_got;
		if (n > len - off)
			n = len - off;
		if (!c->discard)
			memcpy(c->body + c->body_got, data + off, n);
		c->body_got += (uint32_t)n;
		off += n;
		if (c->body_got == c->hdr.len)
			xs_conn_process(c);
	}
	*used = off;
	return 0;
}

/* Pushes queued output of every connection that has some, then reaps closed connections. */
void xs_store_flush_dirty(struct xs_store *st)
{
	struct xs_conn *c, *next;

	while (st->dirty) {
		c = st->dirty;
		st->dirty = c->dirty_next;
		c->on_dirty = false;
		c->dirty_next = NULL;
		if (!c->dead && c->tops && c->tops->flush && c->tops->flush(c) < 0)
			xs_conn_kill(c, "write failed");
	}
	if (!st->ndead)
		return;
	for (c = st->conns; c; c = next) {
		next = c->next;
		if (!c->dead)
			continue;
		if (c->tops && c->tops->destroy)
			c->tops->destroy(c); /* frees c */
		else
			xs_conn_free(c);
	}
}
