/* event_channel_op: every EVTCHNOP of the 2-level ABI, one table row each. Each argument
 * structure is copied in once, checked as a copy, handed to event_channel.c, and the output
 * fields copied back. Guests are never privileged over other domains. */
#include <string.h>

#include "hc_handlers.h"

#include <xen/event_channel.h>

_Static_assert(sizeof(struct evtchn_alloc_unbound) == 8, "alloc_unbound is 8 bytes");
_Static_assert(sizeof(struct evtchn_bind_interdomain) == 12, "bind_interdomain is 12 bytes");
_Static_assert(sizeof(struct evtchn_bind_virq) == 12, "bind_virq is 12 bytes");
_Static_assert(sizeof(struct evtchn_bind_ipi) == 8, "bind_ipi is 8 bytes");
_Static_assert(sizeof(struct evtchn_close) == 4, "close is 4 bytes");
_Static_assert(sizeof(struct evtchn_send) == 4, "send is 4 bytes");
_Static_assert(sizeof(struct evtchn_status) == 24, "status is 24 bytes");
_Static_assert(sizeof(struct evtchn_bind_vcpu) == 8, "bind_vcpu is 8 bytes");
_Static_assert(sizeof(struct evtchn_unmask) == 4, "unmask is 4 bytes");
_Static_assert(sizeof(struct evtchn_reset) == 2, "reset is 2 bytes");
_Static_assert(offsetof(struct evtchn_alloc_unbound, port) == 4, "alloc_unbound.port");
_Static_assert(offsetof(struct evtchn_bind_interdomain, local_port) == 8, "bind_interdomain.local_port");
_Static_assert(offsetof(struct evtchn_bind_virq, port) == 8, "bind_virq.port");

static long hc_evtchn_alloc_unbound(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct evtchn_alloc_unbound a;
	uint32_t port;
	long rc = hc_copy_in(v, &a, arg[1], sizeof(a));

	if (rc)
		return rc;
	if (!hc_domid_is_self(v->d, a.dom))
		return hc_domid_other_error(a.dom);
	rc = evtchn_alloc_unbound(v->d, a.remote_dom == DOMID_SELF ? v->d->domid : a.remote_dom, &port);
	if (rc)
		return rc;
	a.port = port;
	rc = hc_copy_out(v, arg[1], &a, sizeof(a));
	if (rc)
		evtchn_close(v->d, port); /* the guest cannot learn the port: do not leak it */
	return rc;
}

static long hc_evtchn_bind_interdomain(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct evtchn_bind_interdomain b;
	uint32_t port;
	long rc = hc_copy_in(v, &b, arg[1], sizeof(b));

	if (rc)
		return rc;
	rc = evtchn_bind_interdomain(v->d, b.remote_dom == DOMID_SELF ? v->d->domid : b.remote_dom,
				     b.remote_port, &port);
	if (rc)
		return rc;
	b.local_port = port;
	rc = hc_copy_out(v, arg[1], &b, sizeof(b));
	if (rc)
		evtchn_close(v->d, port);
	return rc;
}

static long hc_evtchn_bind_virq(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct evtchn_bind_virq b;
	uint32_t port;
	long rc = hc_copy_in(v, &b, arg[1], sizeof(b));

	if (rc)
		return rc;
	rc = evtchn_bind_virq(v->d, b.virq, b.vcpu, &port);
	if (rc)
		return rc;
	b.port = port;
	rc = hc_copy_out(v, arg[1], &b, sizeof(b));
	if (rc)
		evtchn_close(v->d, port);
	return rc;
}

static long hc_evtchn_bind_ipi(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct evtchn_bind_ipi b;
	uint32_t port;
	long rc = hc_copy_in(v, &b, arg[1], sizeof(b));

	if (rc)
		return rc;
	rc = evtchn_bind_ipi(v->d, b.vcpu, &port);
	if (rc)
		return rc;
	b.port = port;
	rc = hc_copy_out(v, arg[1], &b, sizeof(b));
	if (rc)
		evtchn_close(v->d, port);
	return rc;
}

/* No physical interrupts are ever given to a Lamina guest. */
static long hc_evtchn_bind_pirq(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct evtchn_bind_pirq b;
	long rc = hc_copy_in(v, &b, arg[1], sizeof(b));

	return rc ? rc : -EPERM;
}

/* The commands whose argument is one port. */
static long hc_evtchn_port_arg(struct vcpu *v, uint64_t gva, uint32_t *port)
{
	evtchn_port_t p;
	long rc = hc_copy_in(v, &p, gva, sizeof(p));

	if (rc)
		return rc;
	*port = p;
	return 0;
}

static long hc_evtchn_close(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	uint32_t port;
	long rc = hc_evtchn_port_arg(v, arg[1], &port);

	return rc ? rc : evtchn_close(v->d, port);
}

static long hc_evtchn_send(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	uint32_t port;
	long rc = hc_evtchn_port_arg(v, arg[1], &port);

	return rc ? rc : evtchn_send(v->d, port);
}

static long hc_evtchn_unmask(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	uint32_t port;
	long rc = hc_evtchn_port_arg(v, arg[1], &port);

	return rc ? rc : evtchn_unmask(v->d, port);
}

static long hc_evtchn_status(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct evtchn_status st;
	long rc = hc_copy_in(v, &st, arg[1], sizeof(st));
	uint32_t port;

	if (rc)
		return rc;
	if (!hc_domid_is_self(v->d, st.dom))
		return hc_domid_other_error(st.dom);
	port = st.port;
	memset(&st.u, 0, sizeof(st.u));
	rc = evtchn_status(v->d, port, &st);
	if (rc)
		return rc;
	return hc_copy_out(v, arg[1], &st, sizeof(st));
}

static long hc_evtchn_bind_vcpu(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct evtchn_bind_vcpu b;
	long rc = hc_copy_in(v, &b, arg[1], sizeof(b));

	return rc ? rc : evtchn_bind_vcpu(v->d, b.port, b.vcpu);
}

static long hc_evtchn_reset(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct evtchn_reset r;
	long rc = hc_copy_in(v, &r, arg[1], sizeof(r));

	if (rc)
		return rc;
	if (!hc_domid_is_self(v->d, r.dom))
		return hc_domid_other_error(r.dom);
	return evtchn_reset(v->d);
}

/* FIFO event channels are not offered: Xen answers -ENOSYS when FIFO is absent, and guests
 * then stay on the 2-level ABI. */
static long hc_evtchn_no_fifo(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	return -ENOSYS;
}

static const struct hc_subop hc_evtchn_ops[] = {
    [EVTCHNOP_bind_interdomain] = {EVTCHNOP_bind_interdomain, "bind_interdomain", hc_evtchn_bind_interdomain},
    [EVTCHNOP_bind_virq] = {EVTCHNOP_bind_virq, "bind_virq", hc_evtchn_bind_virq},
    [EVTCHNOP_bind_pirq] = {EVTCHNOP_bind_pirq, "bind_pirq", hc_evtchn_bind_pirq},
    [EVTCHNOP_close] = {EVTCHNOP_close, "close", hc_evtchn_close},
    [EVTCHNOP_send] = {EVTCHNOP_send, "send", hc_evtchn_send},
    [EVTCHNOP_status] = {EVTCHNOP_status, "status", hc_evtchn_status},
    [EVTCHNOP_alloc_unbound] = {EVTCHNOP_alloc_unbound, "alloc_unbound", hc_evtchn_alloc_unbound},
    [EVTCHNOP_bind_ipi] = {EVTCHNOP_bind_ipi, "bind_ipi", hc_evtchn_bind_ipi},
    [EVTCHNOP_bind_vcpu] = {EVTCHNOP_bind_vcpu, "bind_vcpu", hc_evtchn_bind_vcpu},
    [EVTCHNOP_unmask] = {EVTCHNOP_unmask, "unmask", hc_evtchn_unmask},
    [EVTCHNOP_reset] = {EVTCHNOP_reset, "reset", hc_evtchn_reset},
    [EVTCHNOP_init_control] = {EVTCHNOP_init_control, "init_control", hc_evtchn_no_fifo},
    [EVTCHNOP_expand_array] = {EVTCHNOP_expand_array, "expand_array", hc_evtchn_no_fifo},
    [EVTCHNOP_set_priority] = {EVTCHNOP_set_priority, "set_priority", hc_evtchn_no_fifo},
};

/* event_channel_op(int cmd, void *arg) */
long hc_event_channel_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	const struct hc_subop *op =
	    hc_subop_find(hc_evtchn_ops, sizeof(hc_evtchn_ops) / sizeof(hc_evtchn_ops[0]), (uint32_t)arg[0]);

	if (!op)
		return -ENOSYS;
	if (!v->d->evw)
		return -ENOSYS; /* a domain built without event channels (some unit tests) */
	return op->fn(v, arg);
}
