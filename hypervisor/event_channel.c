/* Event channels as Xen's 2-level ABI defines them: the daemon-wide registry of domains, each
 * domain's port table, the per-port state machine (event_channel.h lists every transition), and
 * delivery with the bit order Xen guests rely on: pending bit, then (if not masked) the selector
 * bit, then evtchn_upcall_pending, and an upcall only when that last one goes 0 -> 1. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domain.h"

#define EVTCHN_BITS (sizeof(xen_ulong_t) * 8)

_Static_assert(sizeof(xen_ulong_t) == 8, "2-level words are 64 bits on x86-64");
_Static_assert(EVTCHN_2L_MAX_PORT + 1 == sizeof(((struct shared_info *)0)->evtchn_pending) * 8,
	       "2-level port space");

bool evtchn_domain_exists(struct evtchn_world *w, uint32_t domid)
{
	return domid < DOMID_FIRST_RESERVED && w->dom[domid] != NULL;
}

/* world lock held (read is enough for a lookup). */
struct domain *evtchn_lookup(struct evtchn_world *w, struct domain *self, uint32_t domid)
{
	if (domid == DOMID_SELF)
		return self;
	if (domid >= DOMID_FIRST_RESERVED)
		return NULL;
	return w->dom[domid];
}

struct evtchn_port *evtchn_port_of(struct domain *d, uint32_t port)
{
	struct evtchn_table *t = d->evtchn;

	if (!t || t->dead || port >= t->nr_alloc || port > t->max_port)
		return NULL;
	return &t->ports[port];
}

static void evtchn_port_clear(struct evtchn_port *p)
{
	memset(p, 0, sizeof(*p));
	p->notify_fd = p->event_fd = -1;
}

/* A free port, growing the table by a chunk when needed (world write lock held). */
int evtchn_get_free(struct domain *d, uint32_t *port)
{
	struct evtchn_table *t = d->evtchn;
	struct evtchn_port *np;
	unsigned i, n;

	if (!t || t->dead)
		return -EINVAL;
	for (i = 1; i < t->nr_alloc && i <= t->max_port; i++) {
		if (t->ports[i].state == EVTCHN_FREE) {
			*port = i;
			return 0;
		}
	}
	if (i > t->max_port)
		return -ENOSPC;
	n = t->nr_alloc + EVTCHN_CHUNK;
	np = realloc(t->ports, n * sizeof(*np));
	if (!np)
		return -ENOMEM;
	for (unsigned j = t->nr_alloc; j < n; j++)
		evtchn_port_clear(&np[j]);
	t->ports = np;
	t->nr_alloc = n;
	*port = i;
	return 0;
}

void evtchn_take(struct domain *d, uint32_t port, uint8_t state, uint16_t vcpu)
{
	struct evtchn_port *p = &d->evtchn->ports[port];

	evtchn_port_clear(p);
	p->state = state;
	p->vcpu = vcpu;
	d->evtchn->nr_used++;
}

int evtchn_domain_init(struct evtchn_world *w, struct domain *d, unsigned max_port)
{
	struct evtchn_table *t;
	int rc = 0;

	if (d->domid >= DOMID_FIRST_RESERVED)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->max_port = max_port;
	t->nr_alloc = EVTCHN_CHUNK;
	t->ports = calloc(t->nr_alloc, sizeof(*t->ports));
	if (!t->ports) {
		free(t);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < t->nr_alloc; i++)
		evtchn_port_clear(&t->ports[i]);
	t->ports[0].state = EVTCHN_RESERVED;
	for (unsigned i = 0; i < LAMINA_MAX_VCPUS; i++) {
		struct vcpu *v = d->vcpu[i];
		if (!v)
			continue;
		memset(v->virq_port, 0, sizeof(v->virq_port));
		for (unsigned k = 0; k < EVTCHN_NR_TIMERS; k++)
			v->timer[k].fd = -1;
	}
	pthread_rwlock_wrlock(&w->lock);
	if (w->dom[d->domid]) {
		rc = -EEXIST;
	} else {
		d->evw = w;
		d->evtchn = t;
		w->dom[d->domid] = d;
	}
	pthread_rwlock_unlock(&w->lock);
	if (rc) {
		free(t->ports);
		free(t);
	}
	return rc;
}

/* Marks port pending in d (d->lock held) and says which vCPU needs an upcall or a poll wake-up
 * (*notify, at most one: the port's vCPU). Domain-0: its event eventfd is signalled. */
void evtchn_deliver(struct domain *d, uint32_t port, struct vcpu **notify)
{
	struct evtchn_port *p = &d->evtchn->ports[port];
	struct shared_info *s = d->shared_info;
	xen_ulong_t bit = (xen_ulong_t)1 << (port % EVTCHN_BITS);
	unsigned word = port / EVTCHN_BITS;
	struct vcpu *v;
	uint64_t one = 1;

	atomic_fetch_add_explicit(&d->events_received, 1, memory_order_relaxed);
	if (d->is_dom0) {
		if (p->event_fd >= 0 && write(p->event_fd, &one, sizeof(one)) < 0) {
			/* EAGAIN: the counter is saturated, the client sees it readable anyway */
		}
		return;
	}
	if (!s || port > EVTCHN_2L_MAX_PORT)
		return;
	if (__atomic_fetch_or(&s->evtchn_pending[word], bit, __ATOMIC_SEQ_CST) & bit)
		return; /* already pending: no new transition */
	v = p->vcpu < d->nr_vcpus ? d->vcpu[p->vcpu] : NULL;
	if (v && v->info && !(__atomic_load_n(&s->evtchn_mask[word], __ATOMIC_SEQ_CST) & bit) &&
	    !(__atomic_fetch_or(&v->info->evtchn_pending_sel, (xen_ulong_t)1 << word, __ATOMIC_SEQ_CST) &
	      ((xen_ulong_t)1 << word)) &&
	    __atomic_exchange_n(&v->info->evtchn_upcall_pending, 1, __ATOMIC_SEQ_CST) == 0) {
		*notify = v;
		return;
	}
	if (atomic_load(&d->nr_polling)) {
		for (unsigned i = 0; i < d->nr_vcpus; i++) {
			if (d->vcpu[i] && atomic_load(&d->vcpu[i]->polling)) {
				*notify = d->vcpu[i];
				break;
			}
		}
	}
}

/* Calls out after every lock is dropped: an upcall if upcall_pending went 0 -> 1, else (a
 * polling vCPU) a plain wake-up. */
static void evtchn_notify(struct vcpu *v)
{
	if (!v || !v->d->ops)
		return;
	if (v->info && __atomic_load_n(&v->info->evtchn_upcall_pending, __ATOMIC_SEQ_CST) &&
	    v->d->ops->upcall)
		v->d->ops->upcall(v);
	else if (v->d->ops->wake)
		v->d->ops->wake(v);
}

/* Sets port pending in d under d's lock; world lock held by the caller. */
void evtchn_set_pending(struct domain *d, uint32_t port)
{
	struct vcpu *v = NULL;

	pthread_mutex_lock(&d->lock);
	if (d->evtchn && !d->evtchn->dead && port < d->evtchn->nr_alloc)
		evtchn_deliver(d, port, &v);
	pthread_mutex_unlock(&d->lock);
	evtchn_notify(v);
}

int evtchn_alloc_unbound(struct domain *d, uint32_t remote_dom, uint32_t *port)
{
	struct evtchn_world *w = d->evw;
	struct domain *rd;
	int rc;

	pthread_rwlock_wrlock(&w->lock);
	rd = evtchn_lookup(w, d, remote_dom);
	if (!rd) {
		rc = -ESRCH;
		goto out;
	}
	rc = evtchn_get_free(d, port);
	if (rc)
		goto out;
	evtchn_take(d, *port, EVTCHN_UNBOUND, 0);
	d->evtchn->ports[*port].remote_dom = (uint16_t)rd->domid;
out:
	pthread_rwlock_unlock(&w->lock);
	return rc;
}

int evtchn_bind_interdomain(struct domain *d, uint32_t remote_dom, uint32_t remote_port, uint32_t *port)
{
	struct evtchn_world *w = d->evw;
	struct evtchn_port *rp, *lp;
	struct domain *rd;
	int rc;

	pthread_rwlock_wrlock(&w->lock);
	rd = evtchn_lookup(w, d, remote_dom);
	if (!rd) {
		rc = -ESRCH;
		goto out;
	}
	rp = evtchn_port_of(rd, remote_port);
	if (!rp || rp->state != EVTCHN_UNBOUND || rp->remote_dom != d->domid) {
		rc = -EINVAL;
		goto out;
	}
	rc = evtchn_get_free(d, port);
	if (rc)
		goto out;
	rp = evtchn_port_of(rd, remote_port); /* the table may have moved when rd == d */
	evtchn_take(d, *port, EVTCHN_INTERDOMAIN, 0);
	lp = &d->evtchn->ports[*port];
	lp->remote_dom = (uint16_t)rd->domid;
	lp->remote_port = remote_port;
	rp->state = EVTCHN_INTERDOMAIN;
	rp->remote_dom = (uint16_t)d->domid;
	rp->remote_port = *port;
	/* Notifications sent while the remote port was unbound were dropped: make up for them by
	 * setting the new local port pending, as Xen does. */
	evtchn_set_pending(d, *port);
out:
	pthread_rwlock_unlock(&w->lock);
	return rc;
}

int evtchn_bind_virq(struct domain *d, uint32_t virq, uint32_t vcpu, uint32_t *port)
{
	struct evtchn_world *w = d->evw;
	struct vcpu *v;
	int rc;

	if (virq >= NR_VIRQS)
		return -EINVAL;
	if (evtchn_virq_global(virq) && vcpu != 0)
		return -EINVAL;
	if (vcpu >= d->nr_vcpus || !(v = d->vcpu[vcpu]))
		return -ENOENT;
	pthread_rwlock_wrlock(&w->lock);
	if (v->virq_port[virq]) {
		rc = -EEXIST;
		goto out;
	}
	rc = evtchn_get_free(d, port);
	if (rc)
		goto out;
	evtchn_take(d, *port, EVTCHN_VIRQ, (uint16_t)vcpu);
	d->evtchn->ports[*port].virq = virq;
	v->virq_port[virq] = *port;
out:
	pthread_rwlock_unlock(&w->lock);
	return rc;
}

int evtchn_bind_ipi(struct domain *d, uint32_t vcpu, uint32_t *port)
{
	struct evtchn_world *w = d->evw;
	int rc;

	if (vcpu >= d->nr_vcpus || !d->vcpu[vcpu])
		return -ENOENT;
	pthread_rwlock_wrlock(&w->lock);
	rc = evtchn_get_free(d, port);
	if (rc == 0)
		evtchn_take(d, *port, EVTCHN_IPI, (uint16_t)vcpu);
	pthread_rwlock_unlock(&w->lock);
	return rc;
}

/* Frees port (world write lock held). The interdomain peer goes back to UNBOUND, still naming
 * this domain, and is left as it was otherwise (Xen's behaviour); when the peer must notice
 * (teardown) the caller sets it pending. Domain-0's eventfds are closed here. */
int evtchn_close_locked(struct domain *d, uint32_t port, struct domain **peer, uint32_t *peer_port)
{
	struct evtchn_port *p = evtchn_port_of(d, port);
	struct domain *rd;

	if (!p || p->state == EVTCHN_FREE || p->state == EVTCHN_RESERVED)
		return -EINVAL;
	if (peer)
		*peer = NULL;
	switch (p->state) {
	case EVTCHN_VIRQ:
		if (d->is_dom0)
			break; /* Domain-0 lists VIRQ ports by state, not in virq_port */
		if (p->vcpu < d->nr_vcpus && d->vcpu[p->vcpu] && d->vcpu[p->vcpu]->virq_port[p->virq] == port)
			d->vcpu[p->vcpu]->virq_port[p->virq] = 0;
		break;
	case EVTCHN_INTERDOMAIN:
		rd = evtchn_lookup(d->evw, d, p->remote_dom);
		if (rd) {
			struct evtchn_port *rp = evtchn_port_of(rd, p->remote_port);
			if (rp && rp->state == EVTCHN_INTERDOMAIN && rp->remote_dom == d->domid &&
			    rp->remote_port == port && !(rd == d && p->remote_port == port)) {
				rp->state = EVTCHN_UNBOUND;
				rp->remote_port = 0;
				if (peer) {
					*peer = rd;
					*peer_port = p->remote_port;
				}
			}
		}
		break;
	default:
		break;
	}
	if (p->notify_fd >= 0) {
		evtchn_loop_del(d->evw, p->notify_fd);
		close(p->notify_fd);
	}
	if (p->event_fd >= 0)
		close(p->event_fd);
	evtchn_port_clear(p);
	d->evtchn->nr_used--;
	return 0;
}

int evtchn_close(struct domain *d, uint32_t port)
{
	struct evtchn_world *w = d->evw;
	int rc;

	pthread_rwlock_wrlock(&w->lock);
	rc = evtchn_close_locked(d, port, NULL, NULL);
	pthread_rwlock_unlock(&w->lock);
	return rc;
}

/* world lock held (read). */
int evtchn_send_locked(struct domain *d, uint32_t port)
{
	struct evtchn_port *p = evtchn_port_of(d, port);
	struct domain *rd = NULL;
	uint32_t rport = 0;

	if (!p)
		return -EINVAL;
	switch (p->state) {
	case EVTCHN_INTERDOMAIN:
		rd = evtchn_lookup(d->evw, d, p->remote_dom);
		rport = p->remote_port;
		break;
	case EVTCHN_IPI:
		rd = d;
		rport = port;
		break;
	case EVTCHN_UNBOUND:
		break; /* nobody listens yet: dropped, not an error */
	default:
		return -EINVAL;
	}
	atomic_fetch_add_explicit(&d->events_sent, 1, memory_order_relaxed);
	if (!d->is_dom0 && d->special_port[LAMINA_SPECIAL_CONSOLE] &&
	    port == d->special_port[LAMINA_SPECIAL_CONSOLE]) {
		uint64_t zero = 0;
		atomic_compare_exchange_strong(&d->first_console_ns, &zero, domain_mono_ns());
		domain_console_ring_account(d);
	}
	if (rd)
		evtchn_set_pending(rd, rport);
	return 0;
}

int evtchn_send(struct domain *d, uint32_t port)
{
	int rc;

	pthread_rwlock_rdlock(&d->evw->lock);
	rc = evtchn_send_locked(d, port);
	pthread_rwlock_unlock(&d->evw->lock);
	return rc;
}

int evtchn_status(struct domain *d, uint32_t port, struct evtchn_status *st)
{
	struct evtchn_world *w = d->evw;
	struct evtchn_port *p;
	int rc = 0;

	pthread_rwlock_rdlock(&w->lock);
	p = evtchn_port_of(d, port);
	if (!p) {
		rc = -EINVAL;
		goto out;
	}
	st->vcpu = p->vcpu;
	switch (p->state) {
	case EVTCHN_UNBOUND:
		st->status = EVTCHNSTAT_unbound;
		st->u.unbound.dom = p->remote_dom;
		break;
	case EVTCHN_INTERDOMAIN:
		st->status = EVTCHNSTAT_interdomain;
		st->u.interdomain.dom = p->remote_dom;
		st->u.interdomain.port = p->remote_port;
		break;
	case EVTCHN_VIRQ:
		st->status = EVTCHNSTAT_virq;
		st->u.virq = p->virq;
		break;
	case EVTCHN_IPI:
		st->status = EVTCHNSTAT_ipi;
		break;
	default: /* FREE, RESERVED */
		st->status = EVTCHNSTAT_closed;
		break;
	}
out:
	pthread_rwlock_unlock(&w->lock);
	return rc;
}

int evtchn_bind_vcpu(struct domain *d, uint32_t port, uint32_t vcpu)
{
	struct evtchn_world *w = d->evw;
	struct evtchn_port *p;
	int rc = 0;

	if (vcpu >= d->nr_vcpus || !d->vcpu[vcpu])
		return -ENOENT;
	pthread_rwlock_wrlock(&w->lock);
	p = evtchn_port_of(d, port);
	if (!p) {
		rc = -EINVAL;
		goto out;
	}
	switch (p->state) {
	case EVTCHN_VIRQ:
		if (!evtchn_virq_global(p->virq)) {
			rc = -EINVAL;
			break;
		}
		if (d->vcpu[p->vcpu]->virq_port[p->virq] == port)
			d->vcpu[p->vcpu]->virq_port[p->virq] = 0;
		d->vcpu[vcpu]->virq_port[p->virq] = port;
		p->vcpu = (uint16_t)vcpu;
		break;
	case EVTCHN_UNBOUND:
	case EVTCHN_INTERDOMAIN:
		p->vcpu = (uint16_t)vcpu;
		break;
	default:
		rc = -EINVAL;
	}
out:
	pthread_rwlock_unlock(&w->lock);
	return rc;
}

/* Xen's 2-level unmask: clear the mask; if the port is pending, redo the selector and
 * upcall_pending steps so the event is not lost. */
int evtchn_unmask(struct domain *d, uint32_t port)
{
	struct evtchn_world *w = d->evw;
	struct vcpu *v = NULL, *target;
	struct evtchn_port *p;
	struct shared_info *s;
	xen_ulong_t bit = (xen_ulong_t)1 << (port % EVTCHN_BITS);
	unsigned word = port / EVTCHN_BITS;
	int rc = 0;

	pthread_rwlock_rdlock(&w->lock);
	p = evtchn_port_of(d, port);
	if (!p || port > EVTCHN_2L_MAX_PORT) {
		rc = -EINVAL;
		goto out;
	}
	pthread_mutex_lock(&d->lock);
	s = d->shared_info;
	target = p->vcpu < d->nr_vcpus ? d->vcpu[p->vcpu] : NULL;
	if (s && (__atomic_fetch_and(&s->evtchn_mask[word], ~bit, __ATOMIC_SEQ_CST) & bit) &&
	    (__atomic_load_n(&s->evtchn_pending[word], __ATOMIC_SEQ_CST) & bit) && target && target->info &&
	    !(__atomic_fetch_or(&target->info->evtchn_pending_sel, (xen_ulong_t)1 << word, __ATOMIC_SEQ_CST) &
	      ((xen_ulong_t)1 << word)) &&
	    __atomic_exchange_n(&target->info->evtchn_upcall_pending, 1, __ATOMIC_SEQ_CST) == 0)
		v = target;
	pthread_mutex_unlock(&d->lock);
out:
	pthread_rwlock_unlock(&w->lock);
	evtchn_notify(v);
	return rc;
}

bool evtchn_is_pending(struct domain *d, uint32_t port)
{
	struct shared_info *s;
	bool pending = false;

	if (port > EVTCHN_2L_MAX_PORT)
		return false;
	pthread_mutex_lock(&d->lock);
	s = d->shared_info;
	if (s)
		pending = __atomic_load_n(&s->evtchn_pending[port / EVTCHN_BITS], __ATOMIC_SEQ_CST) &
			  ((xen_ulong_t)1 << (port % EVTCHN_BITS));
	pthread_mutex_unlock(&d->lock);
	return pending;
}
