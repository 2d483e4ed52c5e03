/* The guest's side of a store ring in the store's tests: requests put on the request ring, whole
 * replies and watch events taken off the response ring. Waiting and signalling stay the test's. */
#ifndef LAMINA_XS_TEST_RING_H
#define LAMINA_XS_TEST_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

struct xs_tmsg {
	struct xsd_sockmsg h;
	char body[XENSTORE_PAYLOAD_MAX + 1];
};

/* Bytes onto the request ring, then the producer index published. */
static inline void xs_t_ring_put(struct xenstore_domain_interface *p, const void *data, uint32_t len)
{
	uint32_t prod = p->req_prod;

	for (uint32_t i = 0; i < len; i++)
		p->req[MASK_XENSTORE_IDX(prod + i)] = ((const char *)data)[i];
	__atomic_store_n(&p->req_prod, prod + len, __ATOMIC_RELEASE);
}

/* One whole message off the response ring into m (body NUL-terminated), its bytes given back;
 * false, consuming nothing, when no whole message is there yet. */
static inline bool xs_t_ring_take(struct xenstore_domain_interface *p, struct xs_tmsg *m)
{
	uint32_t cons = p->rsp_cons, prod = __atomic_load_n(&p->rsp_prod, __ATOMIC_ACQUIRE), i;

	if (prod - cons < sizeof(m->h))
		return false;
	for (i = 0; i < sizeof(m->h); i++)
		((char *)&m->h)[i] = p->rsp[MASK_XENSTORE_IDX(cons + i)];
	if (m->h.len > XENSTORE_PAYLOAD_MAX || prod - cons < sizeof(m->h) + m->h.len)
		return false;
	for (i = 0; i < m->h.len; i++)
		m->body[i] = p->rsp[MASK_XENSTORE_IDX(cons + sizeof(m->h) + i)];
	m->body[m->h.len] = '\0';
	__atomic_store_n(&p->rsp_cons, cons + (uint32_t)sizeof(m->h) + m->h.len, __ATOMIC_RELEASE);
	return true;
}

#endif
