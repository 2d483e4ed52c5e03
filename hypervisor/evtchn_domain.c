/* Event channels of a domain as a whole: raising VIRQs (per vCPU, global, Domain-0's several
 * bindings), counting ports, reset, and the teardown that unlists a dying domain and wakes its
 * peers. The per-port state machine is in event_channel.c. */
#include <errno.h>
#include <stdlib.h>

#include "domain.h"

/* Closes every port of d except the reserved one (world write lock held); peers that were
 * connected are set pending when notify_peers, so they notice. */
static void evtchn_close_all(struct domain *d, bool notify_peers)
{
	struct evtchn_table *t = d->evtchn;
	struct domain *peer;
	uint32_t pport;

	for (unsigned i = 1; t && i < t->nr_alloc; i++) {
		if (t->ports[i].state == EVTCHN_FREE)
			continue;
		if (evtchn_close_locked(d, i, &peer, &pport) == 0 && peer && peer != d && notify_peers)
			evtchn_set_pending(peer, pport);
	}
}

int evtchn_reset(struct domain *d)
{
	struct evtchn_world *w = d->evw;

	pthread_rwlock_wrlock(&w->lock);
	evtchn_close_all(d, true);
	pthread_rwlock_unlock(&w->lock);
	return 0;
}

/* world lock held (read). */
int evtchn_send_virq_locked(struct domain *d, unsigned vcpu, uint32_t virq)
{
	struct evtchn_table *t = d->evtchn;
	uint32_t port;

	if (virq >= NR_VIRQS)
		return -EINVAL;
	if (!t || t->dead)
		return -ESRCH;
	if (d->is_dom0) {
		for (unsigned i = 1; i < t->nr_alloc; i++)
			if (t->ports[i].state == EVTCHN_VIRQ && t->ports[i].virq == virq)
				evtchn_set_pending(d, i);
		return 0;
	}
	if (evtchn_virq_global(virq))
		vcpu = 0;
	port = vcpu < d->nr_vcpus && d->vcpu[vcpu] ? d->vcpu[vcpu]->virq_port[virq] : 0;
	if (port)
		evtchn_set_pending(d, port);
	return 0;
}

int evtchn_send_virq(struct domain *d, unsigned vcpu, uint32_t virq)
{
	int rc;

	if (!d->evw)
		return -EINVAL;
	pthread_rwlock_rdlock(&d->evw->lock);
	rc = evtchn_send_virq_locked(d, vcpu, virq);
	pthread_rwlock_unlock(&d->evw->lock);
	return rc;
}

unsigned evtchn_nr_ports(struct domain *d)
{
	unsigned n = 0;

	if (!d->evw)
		return 0;
	pthread_rwlock_rdlock(&d->evw->lock);
	if (d->evtchn)
		n = d->evtchn->nr_used;
	pthread_rwlock_unlock(&d->evw->lock);
	return n;
}

void evtchn_domain_teardown(struct domain *d)
{
	struct evtchn_world *w = d->evw;

	if (!w)
		return;
	pthread_rwlock_wrlock(&w->lock);
	if (d->evtchn && !d->evtchn->dead) {
		for (unsigned i = 0; i < d->nr_vcpus; i++)
			if (d->vcpu[i])
				evtchn_timers_stop(d->vcpu[i]);
		evtchn_close_all(d, true);
		d->evtchn->dead = true;
		if (w->dom[d->domid] == d)
			w->dom[d->domid] = NULL;
	}
	pthread_rwlock_unlock(&w->lock);
}

void evtchn_domain_free(struct domain *d)
{
	evtchn_domain_teardown(d);
	if (d->evtchn) {
		free(d->evtchn->ports);
		free(d->evtchn);
	}
	d->evtchn = NULL;
	d->evw = NULL;
}
