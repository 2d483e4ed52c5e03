/* The control ops of the event half: Domain-0's event channels (bound per connection, handed
 * out as a notify/event eventfd pair), a domain's special pages (its own small memfd, never guest
 * RAM), per-domain statistics, and the notifications subscribers receive. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl_server.h"
#include "hv.h"

_Static_assert(sizeof(struct lamina_ctl_evtchn_alloc) == 8, "evtchn_alloc layout");
_Static_assert(sizeof(struct lamina_ctl_evtchn_bind) == 8, "evtchn_bind layout");
_Static_assert(sizeof(struct lamina_ctl_evtchn_virq) == 4, "evtchn_virq layout");
_Static_assert(sizeof(struct lamina_ctl_evtchn_port) == 4, "evtchn_port layout");
_Static_assert(sizeof(struct lamina_ctl_map_special) == 8, "map_special layout");
_Static_assert(sizeof(struct lamina_ctl_mapping) == 32, "mapping layout");
_Static_assert(sizeof(struct lamina_ctl_event) == 80, "event layout");
_Static_assert(sizeof(struct lamina_ctl_domstats) == 72 + 64 * 8, "domstats layout");

/* A port in a guest domain that remote_dom (0: Domain-0, or another live domain) may bind. The
 * port belongs to the guest, not to the connection. */
int ctl_op_evtchn_alloc(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_evtchn_alloc r;
	struct lamina_ctl_evtchn_port p = {0};
	struct hv_domain *hd;
	int rc;

	memcpy(&r, req, sizeof(r));
	if (r.dom == 0)
		return -EINVAL; /* Domain-0's own ports are made by binding, which yields the eventfds */
	hd = hv_find_id(s->hv, r.dom);
	if (!hd)
		return -ESRCH;
	if (r.remote_dom != 0 && !hv_find_id(s->hv, r.remote_dom))
		return -ESRCH;
	rc = evtchn_alloc_unbound(&hd->d, r.remote_dom, &p.port);
	if (rc < 0)
		return rc;
	memcpy(out, &p, sizeof(p));
	*out_len = sizeof(p);
	return 0;
}

/* Replies with the port and the two eventfds; our copies close after sending. */
static int ctl_evtchn_reply(struct ctl_conn *c, const struct lamina_ctl_hdr *h, uint32_t port, int fds[2])
{
	struct lamina_ctl_evtchn_port p = {.port = port};
	int rc = ctl_reply_fds(c, h, &p, sizeof(p), fds, 2);

	close(fds[0]);
	close(fds[1]);
	return rc;
}

int ctl_op_evtchn_bind(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		       const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_evtchn_bind r;
	uint32_t port;
	int fds[2], rc;

	memcpy(&r, req, sizeof(r));
	if (r.remote_dom == 0 || !hv_find_id(s->hv, r.remote_dom))
		return -ESRCH;
	rc = evtchn_d0_bind_interdomain(s->hv->dom0, c, r.remote_dom, r.remote_port, &port, fds);
	if (rc < 0)
		return rc;
	return ctl_evtchn_reply(c, h, port, fds);
}

int ctl_op_evtchn_virq(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		       const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_evtchn_virq r;
	uint32_t port;
	int fds[2], rc;

	memcpy(&r, req, sizeof(r));
	rc = evtchn_d0_bind_virq(s->hv->dom0, c, r.virq, &port, fds);
	if (rc < 0)
		return rc;
	return ctl_evtchn_reply(c, h, port, fds);
}

/* Only the connection that bound a port may close it (-EPERM otherwise). */
int ctl_op_evtchn_close(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_evtchn_port r;

	memcpy(&r, req, sizeof(r));
	return evtchn_d0_close(s->hv->dom0, c, r.port);
}

void ctl_events_conn_closed(struct ctl_server *s, struct ctl_conn *c)
{
	if (s->hv->dom0)
		evtchn_d0_close_owner(s->hv->dom0, c);
}

int ctl_op_map_special(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		       const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_map_special r;
	struct lamina_ctl_mapping m;
	struct hv_domain *hd;
	int fd;

	memcpy(&r, req, sizeof(r));
	if (r.which >= LAMINA_SPECIAL_COUNT)
		return -EINVAL;
	hd = hv_find_id(s->hv, r.domid);
	if (!hd)
		return -ESRCH;
	if (hd->d.special_fd < 0)
		return -ENODEV;
	memset(&m, 0, sizeof(m));
	m.gfn = hd->d.special_gfn + r.which;
	m.offset = (uint64_t)r.which * GMEM_PAGE_SIZE;
	m.size = GMEM_PAGE_SIZE;
	m.port = hd->d.special_port[r.which];
	fd = hd->d.special_fd;
	return ctl_reply_fds(c, h, &m, sizeof(m), &fd, 1);
}

/* Subscribing replies first, then one CREATED per live domain, in domid order. */
int ctl_op_subscribe(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		     const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_hdr rh = *h;

	c->subscribed = true;
	ctl_reply_fds(c, &rh, NULL, 0, NULL, 0);
	for (uint32_t id = 1; id < DOMID_FIRST_RESERVED && c->fd >= 0; id++) {
		struct hv_domain *hd = s->hv->by_id[id];
		if (!hd)
			continue;
		struct lamina_ctl_event ev = {.kind = LAMINA_EV_CREATED, .domid = id};
		memcpy(ev.name, hd->d.cfg.name, sizeof(ev.name));
		if (ctl_reply(s, c, LAMINA_CTL_EVENT, 0, 0, &ev, sizeof(ev)) < 0 && c->fd >= 0)
			c->fd = -c->fd - 1;
	}
	return CTL_DEFERRED;
}

/* Unsolicited: seq 0, REPLY flag clear. A subscriber whose socket is full is disconnected
 * rather than waited for. */
void ctl_on_domain_event(void *arg, unsigned kind, struct hv_domain *hd)
{
	struct ctl_server *s = arg;
	struct lamina_ctl_event ev;
	struct lamina_ctl_hdr hdr = {
	    .magic = LAMINA_CTL_MAGIC,
	    .version = LAMINA_CTL_VERSION,
	    .op = LAMINA_CTL_EVENT,
	    .len = sizeof(ev),
	};
	uint8_t msg[sizeof(hdr) + sizeof(ev)];

	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.domid = hd->d.domid;
	ev.shutdown_reason = hd->d.shutdown_reason;
	memcpy(ev.name, hd->d.cfg.name, sizeof(ev.name));
	memcpy(msg, &hdr, sizeof(hdr));
	memcpy(msg + sizeof(hdr), &ev, sizeof(ev));
	for (struct ctl_conn *c = s->conns; c; c = c->next) {
		if (!c->subscribed || c->fd < 0)
			continue;
		if (send(c->fd, msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(msg)) {
			hv_log(&s->hv->log, "control: a subscriber does not keep up; disconnected");
			c->fd = -c->fd - 1;
		}
	}
}

int ctl_op_domstats(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		    const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_domstats st;
	struct lamina_ctl_domref ref;
	struct hv_domain *hd;
	struct domain *d;

	memcpy(&ref, req, sizeof(ref));
	hd = hv_find_ref(s->hv, ref.domid, ref.name);
	if (!hd)
		return -ESRCH;
	d = &hd->d;
	memset(&st, 0, sizeof(st));
	domain_console_ring_account(d);
	st.domid = d->domid;
	st.nr_ports = evtchn_nr_ports(d);
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		struct vcpu *v = d->vcpu[i];
		uint64_t now = domain_now_ns(d);
		if (!v)
			continue;
		st.exits += atomic_load(&v->exits);
		st.hypercalls += atomic_load(&v->hypercalls);
		st.upcalls += atomic_load(&v->upcalls);
		if (v->runner)
			st.cpu_time_ns += s->hv->rops->cpu_time_ns(v);
		st.blocked_ns += v->runstate.time[RUNSTATE_blocked];
		if (v->runstate.state == RUNSTATE_blocked && now > v->runstate.state_entry_time)
			st.blocked_ns += now - v->runstate.state_entry_time;
	}
	st.events_sent = atomic_load(&d->events_sent);
	st.events_received = atomic_load(&d->events_received);
	st.console_bytes = atomic_load(&d->console_bytes);
	for (unsigned i = 0; i < 64 && i < DOMAIN_HC_STATS; i++)
		st.hc_count[i] = atomic_load(&d->hc_count[i]);
	memcpy(out, &st, sizeof(st));
	*out_len = sizeof(st);
	return 0;
}
