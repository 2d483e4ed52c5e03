/* Event channels against the fake runner: every port-state transition and its errors, the
 * 2-level bits (one upcall per pending transition, masks, selector), interdomain close and
 * teardown, limits, Domain-0 ports with eventfds, and FIFO/pirq answers. */
#include <poll.h>
#include <unistd.h>

#include "hv_test.h"

#include <xen/event_channel.h>

#define EV(t, cmd, off) fake_hypercall((t)->v, __HYPERVISOR_event_channel_op, (cmd), HV_BUF_GVA + (off), 0, 0, 0)

static struct evtchn_world g_w;

struct ev_fixture {
	struct hv_fixture h;
	struct domain *d;
	struct vcpu *v;
};

/* A fake guest with id domid and max_port ports in g_w, with the test buffer mapped. */
static void ev_guest(struct ev_fixture *t, uint32_t domid, unsigned max_port, unsigned nr_vcpus)
{
	CU_ASSERT_FATAL(hv_fixture_init(&t->h, nr_vcpus) == 0);
	t->d = t->h.d;
	t->v = t->h.v;
	t->d->domid = domid;
	CU_ASSERT_FATAL(evtchn_domain_init(&g_w, t->d, max_port) == 0);
}

static long ev_call(struct ev_fixture *t, unsigned cmd, void *arg, size_t len)
{
	long rc;

	memcpy(hv_buf(&t->h, 0), arg, len);
	rc = fake_hypercall(t->v, __HYPERVISOR_event_channel_op, cmd, HV_BUF_GVA, 0, 0, 0);
	memcpy(arg, hv_buf(&t->h, 0), len);
	return rc;
}

static long ev_alloc(struct ev_fixture *t, uint16_t remote, uint32_t *port)
{
	struct evtchn_alloc_unbound a = {.dom = DOMID_SELF, .remote_dom = remote};
	long rc = ev_call(t, EVTCHNOP_alloc_unbound, &a, sizeof(a));

	*port = a.port;
	return rc;
}

static long ev_port_op(struct ev_fixture *t, unsigned cmd, uint32_t port)
{
	evtchn_port_t p = port;
	return ev_call(t, cmd, &p, sizeof(p));
}

static int ev_status(struct ev_fixture *t, uint32_t port, struct evtchn_status *st)
{
	memset(st, 0, sizeof(*st));
	st->dom = DOMID_SELF;
	st->port = port;
	return (int)ev_call(t, EVTCHNOP_status, st, sizeof(*st));
}

static bool ev_bit(struct domain *d, uint32_t port, bool mask)
{
	xen_ulong_t *w = mask ? d->shared_info->evtchn_mask : d->shared_info->evtchn_pending;
	return (w[port / 64] >> (port % 64)) & 1;
}

static void test_state_machine(void)
{
	struct ev_fixture a, b;
	struct evtchn_bind_interdomain bi;
	struct evtchn_status st;
	uint32_t pa, pb;

	ev_guest(&a, 1, EVTCHN_GUEST_MAX_PORT, 1);
	ev_guest(&b, 2, EVTCHN_GUEST_MAX_PORT, 1);
	/* FREE -> UNBOUND; port 0 stays reserved */
	CU_ASSERT_EQUAL(ev_alloc(&a, 2, &pa), 0);
	CU_ASSERT_EQUAL(pa, 1);
	CU_ASSERT_EQUAL(ev_status(&a, pa, &st), 0);
	CU_ASSERT_EQUAL(st.status, EVTCHNSTAT_unbound);
	CU_ASSERT_EQUAL(st.u.unbound.dom, 2);
	CU_ASSERT_EQUAL(ev_status(&a, 0, &st), 0);
	CU_ASSERT_EQUAL(st.status, EVTCHNSTAT_closed);
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_close, 0), -EINVAL);
	/* only the named remote may bind, and only an unbound port */
	bi = (struct evtchn_bind_interdomain){.remote_dom = 1, .remote_port = pa};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_interdomain, &bi, sizeof(bi)), -EINVAL);
	bi = (struct evtchn_bind_interdomain){.remote_dom = 1, .remote_port = 77};
	CU_ASSERT_EQUAL(ev_call(&b, EVTCHNOP_bind_interdomain, &bi, sizeof(bi)), -EINVAL);
	bi = (struct evtchn_bind_interdomain){.remote_dom = 9, .remote_port = pa};
	CU_ASSERT_EQUAL(ev_call(&b, EVTCHNOP_bind_interdomain, &bi, sizeof(bi)), -ESRCH);
	bi = (struct evtchn_bind_interdomain){.remote_dom = 1, .remote_port = pa};
	CU_ASSERT_EQUAL(ev_call(&b, EVTCHNOP_bind_interdomain, &bi, sizeof(bi)), 0);
	pb = bi.local_port;
	CU_ASSERT(ev_bit(b.d, pb, false)); /* a new binding starts pending, as in Xen */
	CU_ASSERT_EQUAL(ev_status(&a, pa, &st), 0);
	CU_ASSERT_EQUAL(st.status, EVTCHNSTAT_interdomain);
	CU_ASSERT_EQUAL(st.u.interdomain.dom, 2);
	CU_ASSERT_EQUAL(st.u.interdomain.port, pb);
	CU_ASSERT_EQUAL(ev_call(&b, EVTCHNOP_bind_interdomain, &bi, sizeof(bi)), -EINVAL); /* bound now */
	/* INTERDOMAIN: send reaches the peer */
	CU_ASSERT_EQUAL(ev_port_op(&b, EVTCHNOP_send, pb), 0);
	CU_ASSERT(ev_bit(a.d, pa, false));
	/* close one side: the other goes back to UNBOUND naming the closer; sending there is dropped */
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_close, pa), 0);
	CU_ASSERT_EQUAL(ev_status(&a, pa, &st), 0);
	CU_ASSERT_EQUAL(st.status, EVTCHNSTAT_closed);
	CU_ASSERT_EQUAL(ev_status(&b, pb, &st), 0);
	CU_ASSERT_EQUAL(st.status, EVTCHNSTAT_unbound);
	CU_ASSERT_EQUAL(st.u.unbound.dom, 1);
	CU_ASSERT_EQUAL(ev_port_op(&b, EVTCHNOP_send, pb), 0);
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_close, pa), -EINVAL); /* already free */
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_send, pa), -EINVAL);
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_send, 5000), -EINVAL);
	/* the freed port is reused first */
	CU_ASSERT_EQUAL(ev_alloc(&a, DOMID_SELF, &pa), 0);
	CU_ASSERT_EQUAL(pa, 1);
	/* reset closes everything; the peer of an interdomain port is notified */
	CU_ASSERT_EQUAL(evtchn_reset(b.d), 0);
	CU_ASSERT_EQUAL(evtchn_nr_ports(b.d), 0);
	fake_domain_destroy(a.h.f);
	fake_domain_destroy(b.h.f);
}

static void test_virq_ipi_vcpu(void)
{
	struct ev_fixture a;
	struct evtchn_bind_virq bv;
	struct evtchn_bind_ipi ip;
	struct evtchn_bind_vcpu bc;
	struct evtchn_status st;

	ev_guest(&a, 3, EVTCHN_GUEST_MAX_PORT, 2);
	bv = (struct evtchn_bind_virq){.virq = VIRQ_TIMER, .vcpu = 1};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_virq, &bv, sizeof(bv)), 0);
	CU_ASSERT_EQUAL(a.d->vcpu[1]->virq_port[VIRQ_TIMER], bv.port);
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_virq, &bv, sizeof(bv)), -EEXIST);
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_send, bv.port), -EINVAL); /* VIRQs are not sent */
	CU_ASSERT_EQUAL(ev_status(&a, bv.port, &st), 0);
	CU_ASSERT_EQUAL(st.status, EVTCHNSTAT_virq);
	CU_ASSERT_EQUAL(st.u.virq, VIRQ_TIMER);
	CU_ASSERT_EQUAL(st.vcpu, 1);
	bc = (struct evtchn_bind_vcpu){.port = bv.port, .vcpu = 0};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_vcpu, &bc, sizeof(bc)), -EINVAL); /* per-vCPU VIRQ */
	bv = (struct evtchn_bind_virq){.virq = VIRQ_DOM_EXC, .vcpu = 1};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_virq, &bv, sizeof(bv)), -EINVAL); /* global: vCPU 0 */
	bv = (struct evtchn_bind_virq){.virq = VIRQ_CONSOLE, .vcpu = 0};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_virq, &bv, sizeof(bv)), 0);
	bc = (struct evtchn_bind_vcpu){.port = bv.port, .vcpu = 1};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_vcpu, &bc, sizeof(bc)), 0); /* global may move */
	CU_ASSERT_EQUAL(a.d->vcpu[1]->virq_port[VIRQ_CONSOLE], bv.port);
	bc.vcpu = 7;
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_vcpu, &bc, sizeof(bc)), -ENOENT);
	bv = (struct evtchn_bind_virq){.virq = NR_VIRQS, .vcpu = 0};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_virq, &bv, sizeof(bv)), -EINVAL);
	bv = (struct evtchn_bind_virq){.virq = VIRQ_DEBUG, .vcpu = 5};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_virq, &bv, sizeof(bv)), -ENOENT);
	/* IPI: send sets its own port; it cannot move */
	ip = (struct evtchn_bind_ipi){.vcpu = 1};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_ipi, &ip, sizeof(ip)), 0);
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_send, ip.port), 0);
	CU_ASSERT(ev_bit(a.d, ip.port, false));
	bc = (struct evtchn_bind_vcpu){.port = ip.port, .vcpu = 0};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_vcpu, &bc, sizeof(bc)), -EINVAL);
	ip.vcpu = 9;
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_ipi, &ip, sizeof(ip)), -ENOENT);
	/* closing a VIRQ port frees the binding */
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_close, a.d->vcpu[1]->virq_port[VIRQ_TIMER]), 0);
	CU_ASSERT_EQUAL(a.d->vcpu[1]->virq_port[VIRQ_TIMER], 0);
	fake_domain_destroy(a.h.f);
}

static void test_errors_and_fifo(void)
{
	struct ev_fixture a;
	struct evtchn_alloc_unbound au;
	struct evtchn_bind_pirq bp = {.pirq = 1};
	struct evtchn_reset r = {.dom = 7};
	struct evtchn_status st;
	uint8_t junk[64] = {0};

	ev_guest(&a, 4, EVTCHN_GUEST_MAX_PORT, 1);
	au = (struct evtchn_alloc_unbound){.dom = 9, .remote_dom = 0};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_alloc_unbound, &au, sizeof(au)), -EPERM);
	au = (struct evtchn_alloc_unbound){.dom = DOMID_SELF, .remote_dom = 9};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_alloc_unbound, &au, sizeof(au)), -ESRCH);
	au = (struct evtchn_alloc_unbound){.dom = 4, .remote_dom = DOMID_SELF};
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_alloc_unbound, &au, sizeof(au)), 0);
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_pirq, &bp, sizeof(bp)), -EPERM);
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_init_control, junk, sizeof(junk)), -ENOSYS);
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_expand_array, junk, sizeof(junk)), -ENOSYS);
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_set_priority, junk, sizeof(junk)), -ENOSYS);
	CU_ASSERT_EQUAL(ev_call(&a, 99, junk, sizeof(junk)), -ENOSYS);
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_reset, &r, sizeof(r)), -EPERM);
	memset(&st, 0, sizeof(st));
	st.dom = 12;
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_status, &st, sizeof(st)), -EPERM);
	CU_ASSERT_EQUAL(ev_status(&a, 4096, &st), -EINVAL);
	CU_ASSERT_EQUAL(fake_hypercall(a.v, __HYPERVISOR_event_channel_op, EVTCHNOP_send, HV_HOLE_GVA, 0, 0, 0),
			-EFAULT);
	au = (struct evtchn_alloc_unbound){.dom = DOMID_SELF, .remote_dom = DOMID_SELF};
	memcpy(hv_buf(&a.h, 0), &au, sizeof(au)); /* HV_RO_GVA reads the same page */
	CU_ASSERT_EQUAL(fake_hypercall(a.v, __HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound, HV_RO_GVA, 0,
				       0, 0),
			-EFAULT); /* result cannot be written back: nothing leaks */
	CU_ASSERT_EQUAL(evtchn_nr_ports(a.d), 1);
	fake_domain_destroy(a.h.f);
}

static void test_two_level_bits(void)
{
	struct ev_fixture a;
	struct evtchn_bind_ipi ip = {.vcpu = 0}, ip2 = {.vcpu = 0};
	struct vcpu_info *vi;
	struct fake_runner *f;

	ev_guest(&a, 5, EVTCHN_GUEST_MAX_PORT, 1);
	f = a.h.f;
	vi = a.v->info;
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_ipi, &ip, sizeof(ip)), 0);
	CU_ASSERT_EQUAL(ev_call(&a, EVTCHNOP_bind_ipi, &ip2, sizeof(ip2)), 0);
	/* first send: pending, selector, upcall_pending, one upcall */
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_send, ip.port), 0);
	CU_ASSERT(ev_bit(a.d, ip.port, false));
	CU_ASSERT(vi->evtchn_pending_sel & (1ul << (ip.port / 64)));
	CU_ASSERT_EQUAL(vi->evtchn_upcall_pending, 1);
	CU_ASSERT_EQUAL(f->upcalls, 1);
	/* again, and another port: no new transition, no new upcall */
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_send, ip.port), 0);
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_send, ip2.port), 0);
	CU_ASSERT_EQUAL(f->upcalls, 1);
	/* the guest consumes everything */
	vi->evtchn_upcall_pending = 0;
	vi->evtchn_pending_sel = 0;
	memset(a.d->shared_info->evtchn_pending, 0, sizeof(a.d->shared_info->evtchn_pending));
	/* masked: pending bit only */
	a.d->shared_info->evtchn_mask[0] |= 1ul << ip.port;
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_send, ip.port), 0);
	CU_ASSERT(ev_bit(a.d, ip.port, false));
	CU_ASSERT_EQUAL(vi->evtchn_pending_sel, 0);
	CU_ASSERT_EQUAL(vi->evtchn_upcall_pending, 0);
	CU_ASSERT_EQUAL(f->upcalls, 1);
	/* unmask finds it pending: selector, upcall_pending, one upcall */
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_unmask, ip.port), 0);
	CU_ASSERT_FALSE(ev_bit(a.d, ip.port, true));
	CU_ASSERT_EQUAL(vi->evtchn_upcall_pending, 1);
	CU_ASSERT_EQUAL(f->upcalls, 2);
	/* unmasking an unmasked port changes nothing */
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_unmask, ip.port), 0);
	CU_ASSERT_EQUAL(f->upcalls, 2);
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_unmask, 9999), -EINVAL);
	/* selector already set but upcall_pending cleared: a new port in the same word raises none
	 * (Xen's order), a port in a word whose selector bit is clear does */
	vi->evtchn_upcall_pending = 0;
	memset(a.d->shared_info->evtchn_pending, 0, sizeof(a.d->shared_info->evtchn_pending));
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_send, ip2.port), 0);
	CU_ASSERT_EQUAL(vi->evtchn_upcall_pending, 0);
	CU_ASSERT_EQUAL(f->upcalls, 2);
	CU_ASSERT_EQUAL(atomic_load(&a.d->events_sent), 5);
	fake_domain_destroy(a.h.f);
}

static void test_teardown_notifies_peer(void)
{
	struct ev_fixture a, b;
	struct evtchn_bind_interdomain bi;
	struct evtchn_status st;
	uint32_t pa;

	ev_guest(&a, 6, EVTCHN_GUEST_MAX_PORT, 1);
	ev_guest(&b, 7, EVTCHN_GUEST_MAX_PORT, 1);
	CU_ASSERT_EQUAL(ev_alloc(&a, 7, &pa), 0);
	bi = (struct evtchn_bind_interdomain){.remote_dom = 6, .remote_port = pa};
	CU_ASSERT_EQUAL(ev_call(&b, EVTCHNOP_bind_interdomain, &bi, sizeof(bi)), 0);
	memset(b.d->shared_info->evtchn_pending, 0, sizeof(b.d->shared_info->evtchn_pending));
	evtchn_domain_teardown(a.d);
	CU_ASSERT(ev_bit(b.d, bi.local_port, false));
	CU_ASSERT_EQUAL(ev_status(&b, bi.local_port, &st), 0);
	CU_ASSERT_EQUAL(st.status, EVTCHNSTAT_unbound);
	CU_ASSERT_FALSE(evtchn_domain_exists(&g_w, 6));
	/* the dead domain's own calls fail; a new bind to it finds nothing */
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_send, pa), -EINVAL);
	bi = (struct evtchn_bind_interdomain){.remote_dom = 6, .remote_port = pa};
	CU_ASSERT_EQUAL(ev_call(&b, EVTCHNOP_bind_interdomain, &bi, sizeof(bi)), -ESRCH);
	fake_domain_destroy(a.h.f);
	fake_domain_destroy(b.h.f);
}

static void test_limits(void)
{
	struct ev_fixture a;
	uint32_t port;
	unsigned i;

	ev_guest(&a, 8, 100, 1);
	for (i = 1; i <= 100; i++) {
		CU_ASSERT_EQUAL_FATAL(ev_alloc(&a, DOMID_SELF, &port), 0);
		CU_ASSERT_EQUAL(port, i);
	}
	CU_ASSERT_EQUAL(ev_alloc(&a, DOMID_SELF, &port), -ENOSPC);
	CU_ASSERT_EQUAL(evtchn_nr_ports(a.d), 100);
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_close, 50), 0);
	CU_ASSERT_EQUAL(ev_alloc(&a, DOMID_SELF, &port), 0);
	CU_ASSERT_EQUAL(port, 50);
	fake_domain_destroy(a.h.f);
	/* the default guest limit: 1023 ports */
	ev_guest(&a, 8, EVTCHN_GUEST_MAX_PORT, 1);
	for (i = 1; i <= EVTCHN_GUEST_MAX_PORT; i++)
		if (ev_alloc(&a, DOMID_SELF, &port) != 0)
			break;
	CU_ASSERT_EQUAL(i, EVTCHN_GUEST_MAX_PORT + 1);
	CU_ASSERT_EQUAL(ev_alloc(&a, DOMID_SELF, &port), -ENOSPC);
	fake_domain_destroy(a.h.f);
}

static bool fd_readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms) == 1;
}

static void test_dom0_eventfds(void)
{
	struct ev_fixture a;
	struct domain *d0;
	int owner1, owner2, fds[2], vfds[2];
	uint32_t gport, d0port, vport, p2;
	uint64_t one = 1, v;

	CU_ASSERT_FATAL(fake_dom0_create(&g_w, &d0) == 0);
	ev_guest(&a, 9, EVTCHN_GUEST_MAX_PORT, 1);
	CU_ASSERT_EQUAL(ev_alloc(&a, 0, &gport), 0);
	CU_ASSERT_EQUAL(evtchn_d0_bind_interdomain(d0, &owner1, 9, 55, &d0port, fds), -EINVAL);
	CU_ASSERT_EQUAL(evtchn_d0_bind_interdomain(d0, &owner1, 42, gport, &d0port, fds), -ESRCH);
	CU_ASSERT_EQUAL_FATAL(evtchn_d0_bind_interdomain(d0, &owner1, 9, gport, &d0port, fds), 0);
	CU_ASSERT(fd_readable(fds[1], 0)); /* the bind itself sets the new port pending */
	CU_ASSERT_EQUAL(read(fds[1], &v, sizeof(v)), sizeof(v));
	CU_ASSERT_FALSE(fd_readable(fds[1], 0));
	/* guest -> Domain-0: the event eventfd */
	CU_ASSERT_EQUAL(ev_port_op(&a, EVTCHNOP_send, gport), 0);
	CU_ASSERT(fd_readable(fds[1], 100));
	CU_ASSERT_EQUAL(read(fds[1], &v, sizeof(v)), sizeof(v));
	/* Domain-0 -> guest: a write to notify, turned into a send by the event loop */
	memset(a.d->shared_info->evtchn_pending, 0, sizeof(a.d->shared_info->evtchn_pending));
	CU_ASSERT_EQUAL(write(fds[0], &one, sizeof(one)), sizeof(one));
	CU_ASSERT(evtchn_loop_poll(&g_w, 1000) >= 1);
	CU_ASSERT(ev_bit(a.d, gport, false));
	CU_ASSERT_EQUAL(atomic_load(&d0->events_sent), 1);
	/* VIRQ_DOM_EXC: bound by two owners, both see it */
	CU_ASSERT_EQUAL(evtchn_d0_bind_virq(d0, &owner2, VIRQ_TIMER, &vport, vfds), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(evtchn_d0_bind_virq(d0, &owner2, VIRQ_DOM_EXC, &vport, vfds), 0);
	CU_ASSERT_EQUAL(evtchn_send_virq(d0, 0, VIRQ_DOM_EXC), 0);
	CU_ASSERT(fd_readable(vfds[1], 100));
	/* ownership: another owner cannot close it */
	CU_ASSERT_EQUAL(evtchn_d0_close(d0, &owner2, d0port), -EPERM);
	CU_ASSERT_EQUAL(evtchn_d0_close(d0, &owner2, 4000), -EINVAL);
	/* the guest dies: Domain-0's port goes unbound and is signalled */
	CU_ASSERT_EQUAL(read(fds[1], &v, sizeof(v)), -1);
	evtchn_domain_teardown(a.d);
	CU_ASSERT(fd_readable(fds[1], 100));
	/* an owner going away closes all of its ports, nobody else's */
	evtchn_d0_close_owner(d0, &owner1);
	CU_ASSERT_EQUAL(evtchn_nr_ports(d0), 1);
	CU_ASSERT_EQUAL(evtchn_d0_close(d0, &owner2, vport), 0);
	CU_ASSERT_EQUAL(evtchn_nr_ports(d0), 0);
	CU_ASSERT_EQUAL(evtchn_d0_close(d0, &owner2, vport), -EINVAL);
	(void)p2;
	close(fds[0]);
	close(fds[1]);
	close(vfds[0]);
	close(vfds[1]);
	fake_domain_destroy(a.h.f);
	fake_dom0_destroy(d0);
}

static const CU_TestInfo tests[] = {
    {"port state machine: unbound, interdomain, close", test_state_machine},
    {"VIRQ, IPI and bind_vcpu rules", test_virq_ipi_vcpu},
    {"errors: foreign domains, pirq, FIFO, bad pointers", test_errors_and_fifo},
    {"2-level bits: one upcall per transition, masks", test_two_level_bits},
    {"teardown leaves peers unbound and pending", test_teardown_notifies_peer},
    {"port limits (-ENOSPC) and reuse", test_limits},
    {"Domain-0 ports with eventfds", test_dom0_eventfds},
    CU_TEST_INFO_NULL,
};

int main(void)
{
	int rc;

	if (evtchn_world_init(&g_w, false) != 0)
		return 1;
	rc = hv_test_main("event channels", tests);
	evtchn_world_fini(&g_w);
	return rc;
}
