/* Helpers shared by the store's unit tests: drive a connection with raw wire messages and take
 * its queued replies and watch events back out. */
#ifndef LAMINA_XS_TEST_H
#define LAMINA_XS_TEST_H

#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>

#include "xs_store.h"

struct xs_tmsg {
	struct xsd_sockmsg h;
	char body[XENSTORE_PAYLOAD_MAX + 1];
};

/* Pops the oldest queued message; false when there is none. */
static inline bool xs_t_pop(struct xs_conn *c, struct xs_tmsg *m)
{
	struct xs_outbuf *o = c->out_head;

	if (!o)
		return false;
	memcpy(&m->h, o->data, sizeof(m->h));
	memcpy(m->body, o->data + sizeof(m->h), m->h.len);
	m->body[m->h.len] = '\0';
	xs_conn_consumed(c, o->len - c->out_off);
	return true;
}

static inline void xs_t_drain(struct xs_conn *c)
{
	xs_conn_consumed(c, c->out_bytes);
}

static inline int xs_t_send(struct xs_conn *c, uint32_t type, uint32_t tx, const void *p, uint32_t len)
{
	struct xsd_sockmsg h = {.type = type, .req_id = 77, .tx_id = tx, .len = len};
	size_t used;
	int rc = xs_conn_input(c, (const char *)&h, sizeof(h), &used);

	if (rc == 0 && len)
		rc = xs_conn_input(c, p, len, &used);
	return rc;
}

/* Sends a request and returns the reply: its type (XS_ERROR for errors), body in m. Watch events
 * queued before the reply are skipped (and lost). */
static inline uint32_t xs_t_req(struct xs_conn *c, uint32_t type, uint32_t tx, const void *p, uint32_t len,
				struct xs_tmsg *m)
{
	xs_t_drain(c);
	if (xs_t_send(c, type, tx, p, len) < 0)
		return 0xffffffffu;
	while (xs_t_pop(c, m))
		if (m->h.type != XS_WATCH_EVENT)
			return m->h.type;
	return 0xfffffffeu;
}

/* Convenience: a request whose payload is NUL-separated strings given as one literal with
 * explicit \0s, length computed by the caller with sizeof - 1. */
#define XS_T(c, type, tx, lit, m) xs_t_req((c), (type), (tx), (lit), (uint32_t)(sizeof(lit) - 1), (m))

static inline bool xs_t_is_err(const struct xs_tmsg *m, const char *name)
{
	return m->h.type == XS_ERROR && strcmp(m->body, name) == 0;
}

#endif
