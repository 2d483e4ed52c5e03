/* Helpers shared by the store's in-process unit tests: a store with the toolstack's layout, and
 * connections driven with raw wire messages, their queued replies and watch events taken back out. */
#ifndef LAMINA_XS_TEST_H
#define LAMINA_XS_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>

#include "xs_store.h"
#include "xs_test_ring.h"

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

/* A store logging to /dev/null (the tests read replies, not the log); NULL on failure. */
static inline struct xs_store *xs_t_store_new(void)
{
	struct xs_store *st = xs_store_new();

	if (st)
		st->log = fopen("/dev/null", "w");
	return st;
}

static inline void xs_t_store_free(struct xs_store *st)
{
	FILE *log = st->log;

	xs_store_free(st);
	if (log)
		fclose(log);
}

/* The toolstack's layout for a guest: /local/domain/N, owned by N. */
static inline void xs_t_domain_dir(struct xs_conn *d0, unsigned domid)
{
	char req[64];
	struct xs_tmsg m;
	int n = snprintf(req, sizeof(req), "/local/domain/%u", domid) + 1;

	xs_t_req(d0, XS_MKDIR, 0, req, (uint32_t)n, &m);
	n += snprintf(req + n, sizeof(req) - (size_t)n, "n%u", domid) + 1;
	xs_t_req(d0, XS_SET_PERMS, 0, req, (uint32_t)n, &m);
}

/* Domain-0 (privileged) and guests 5 and 6 connected, each guest with its own directory. */
struct xs_t_fix {
	struct xs_store *st;
	struct xs_conn *d0, *d5, *d6;
};

static inline int xs_t_fix_setup(struct xs_t_fix *fx)
{
	memset(fx, 0, sizeof(*fx));
	fx->st = xs_t_store_new();
	if (!fx->st)
		return -1;
	fx->d0 = xs_conn_new(fx->st, 0, true, NULL, NULL);
	fx->d5 = xs_conn_new(fx->st, 5, false, NULL, NULL);
	fx->d6 = xs_conn_new(fx->st, 6, false, NULL, NULL);
	xs_t_domain_dir(fx->d0, 5);
	xs_t_domain_dir(fx->d0, 6);
	return 0;
}

#endif
