/* app=evtchn-test: Xen's 2-level event-channel semantics checked from inside the guest: IPI to
 * itself, VIRQ_TIMER, pending/mask rules, EVTCHNOP_status in every state, close and reuse,
 * fairness between a busy port and a quiet one, and -ENOSPC past the port limit. With peer=D it
 * runs the two-domain ping-pong instead (apps/pingpong.c). */
#include "apps.h"
#include "../kernel/hypercall.h"

#define ET_WAIT_NS 200000000ull /* an event that should arrive at once */
#define ET_QUIET_NS 2000000ull	/* how long "nothing happens" is watched */
#define ET_BUSY_RESENDS 40	/* fairness: the busy port re-raises itself this often */
#define ET_LOG 64
#define ET_LAT_N 200

struct et {
	struct app_checks c;
	struct kernel *k;
	volatile uint64_t hits;
	uint64_t want;
	evtchn_port_t busy, quiet;
	unsigned int busy_hits, log_len;
	evtchn_port_t log[ET_LOG];
	uint16_t ports[EVTCHN_2L_NR_CHANNELS];
};

void app_evtchn_peer(struct kernel *k, struct app_result *res);

static void et_count(struct events *ev, evtchn_port_t port, void *arg)
{
	struct et *t = arg;

	t->hits++;
}

static bool et_arrived(void *arg)
{
	const struct et *t = arg;

	return t->hits >= t->want;
}

/* Blocks until hits reaches want, at most ET_WAIT_NS. */
static bool et_wait(struct et *t, uint64_t want)
{
	t->want = want;
	return timer_wait(&t->k->tm, et_arrived, t, time_now_ns(&t->k->time) + ET_WAIT_NS) == 0;
}

static int et_status(struct et *t, int port, uint32_t *state, struct evtchn_status *st)
{
	int rc = events_status(&t->k->ev, (evtchn_port_t)port, st);

	*state = rc == 0 ? st->status : 0xffffffffu;
	return rc;
}

static void et_ipi(struct et *t, int ipi)
{
	struct events *ev = &t->k->ev;
	struct evtchn_status st;
	uint32_t state;

	if (!app_check(&t->c, ipi >= 0, "bind_ipi", "port %d", ipi))
		return;
	t->hits = 0;
	int rc = events_send(ev, (evtchn_port_t)ipi);
	bool got = et_wait(t, 1);
	app_check(&t->c, rc == 0 && got && t->hits == 1, "send to own IPI runs the handler once", "rc %d hits %lu",
		  rc, t->hits);
	et_status(t, ipi, &state, &st);
	app_check(&t->c, state == EVTCHNSTAT_ipi && st.vcpu == ev->vcpu_id, "status: ipi", "status %u vcpu %u", state,
		  st.vcpu);

	/* Masked: the send only sets pending; unmasking runs the handler once, for two sends. */
	events_mask(ev, (evtchn_port_t)ipi);
	t->hits = 0;
	rc = events_send(ev, (evtchn_port_t)ipi);
	int rc2 = events_send(ev, (evtchn_port_t)ipi);
	timer_sleep_ns(&t->k->tm, ET_QUIET_NS);
	app_check(&t->c, rc == 0 && rc2 == 0 && t->hits == 0 && events_is_pending(ev, (evtchn_port_t)ipi),
		  "masked port: send sets pending, no handler", "rc %d/%d hits %lu pending %d", rc, rc2, t->hits,
		  events_is_pending(ev, (evtchn_port_t)ipi));
	events_unmask(ev, (evtchn_port_t)ipi);
	app_check(&t->c, t->hits == 1 && !events_is_pending(ev, (evtchn_port_t)ipi) &&
			     !events_is_masked(ev, (evtchn_port_t)ipi),
		  "unmask: handler runs once, locally", "hits %lu pending %d", t->hits,
		  events_is_pending(ev, (evtchn_port_t)ipi));
	timer_sleep_ns(&t->k->tm, ET_QUIET_NS);
	app_check(&t->c, t->hits == 1, "no second delivery after unmask", "hits %lu", t->hits);
}

/* How long an event to ourselves takes: EVTCHNOP_send, the hypervisor's upcall, the handler. */
static void et_ipi_latency(struct et *t, int ipi)
{
	uint64_t lat[ET_LAT_N];
	unsigned int n = 0;

	for (unsigned int i = 0; i < ET_LAT_N; i++) {
		uint64_t want = t->hits + 1, t0 = time_now_ns(&t->k->time);
		if (events_send(&t->k->ev, (evtchn_port_t)ipi) < 0 || !et_wait(t, want))
			break;
		lat[n++] = time_now_ns(&t->k->time) - t0;
	}
	uint64_t med = app_median(lat, n);
	app_check(&t->c, n == ET_LAT_N, "IPI latency samples", "%u of %u", n, ET_LAT_N);
	kprintf(t->k, "evtchn-test: IPI send -> handler: median %lu ns over %u\n", med, n);
	kprintf(t->k, "BENCH ipi_to_handler_ns %lu ns\n", med);
}

static void et_virq(struct et *t)
{
	struct timers *tm = &t->k->tm;
	struct evtchn_status st;
	uint32_t state;
	uint64_t before = tm->virqs, t0 = time_now_ns(&t->k->time);
	int rc = timer_sleep_ns(tm, 1000000);
	uint64_t slept = time_now_ns(&t->k->time) - t0;

	app_check(&t->c, rc == 0 && tm->virqs > before && slept >= 1000000, "VIRQ_TIMER fires (1 ms sleep)",
		  "rc %d virqs +%lu slept %lu ns", rc, tm->virqs - before, slept);
	et_status(t, tm->port, &state, &st);
	app_check(&t->c, state == EVTCHNSTAT_virq && st.u.virq == VIRQ_TIMER, "status: virq", "status %u virq %u",
		  state, st.u.virq);
}

/* unbound -> interdomain (loopback) -> close one end -> reuse of the closed number. */
static void et_interdomain(struct et *t)
{
	struct events *ev = &t->k->ev;
	domid_t self = t->k->domid_known ? (domid_t)t->k->domid : DOMID_SELF;
	struct evtchn_status st;
	uint32_t state;

	int u = events_alloc_unbound(ev, self, et_count, t);
	if (!app_check(&t->c, u >= 0, "alloc_unbound(self)", "port %d", u))
		return;
	et_status(t, u, &state, &st);
	app_check(&t->c, state == EVTCHNSTAT_unbound && (!t->k->domid_known || st.u.unbound.dom == self),
		  "status: unbound", "status %u remote %u", state, st.u.unbound.dom);
	int b = events_bind_interdomain(ev, self, (evtchn_port_t)u, et_count, t);
	if (!app_check(&t->c, b >= 0, "bind_interdomain(self, unbound port)", "port %d", b))
		goto out_u;
	et_status(t, b, &state, &st);
	app_check(&t->c, state == EVTCHNSTAT_interdomain && st.u.interdomain.port == (evtchn_port_t)u,
		  "status: interdomain", "status %u remote port %u", state, st.u.interdomain.port);
	t->hits = 0;
	int rc = events_send(ev, (evtchn_port_t)b);
	bool got = et_wait(t, 1);
	app_check(&t->c, rc == 0 && got && events_count(ev, (evtchn_port_t)u) == 1,
		  "send on one end raises the other", "rc %d count %lu", rc, events_count(ev, (evtchn_port_t)u));
	rc = events_close(ev, (evtchn_port_t)b);
	et_status(t, b, &state, &st);
	app_check(&t->c, rc == 0 && state == EVTCHNSTAT_closed, "close: status closed", "rc %d status %u", rc, state);
	et_status(t, u, &state, &st);
	app_check(&t->c, state == EVTCHNSTAT_unbound, "close: the other end is unbound again", "status %u", state);
	rc = events_send(ev, (evtchn_port_t)b);
	app_check(&t->c, rc == -XEN_EINVAL, "send on a closed port", "rc %d", rc);
	int r = events_bind_ipi(ev, et_count, t);
	app_check(&t->c, r == b, "a new port reuses the lowest closed number", "got %d, closed %d", r, b);
	t->hits = 0;
	rc = r >= 0 ? events_send(ev, (evtchn_port_t)r) : r;
	got = et_wait(t, 1);
	app_check(&t->c, rc == 0 && got, "reused port delivers", "rc %d hits %lu", rc, t->hits);
	if (r >= 0)
		events_close(ev, (evtchn_port_t)r);
out_u:
	events_close(ev, (evtchn_port_t)u);
	app_check(&t->c, events_status(ev, EVTCHN_2L_NR_CHANNELS, &st) == -XEN_EINVAL, "status of port 4096",
		  "-EINVAL");
}

static void et_log(struct et *t, evtchn_port_t port)
{
	if (t->log_len < ET_LOG)
		t->log[t->log_len++] = port;
}

static void et_busy(struct events *ev, evtchn_port_t port, void *arg)
{
	struct et *t = arg;

	et_log(t, port);
	if (++t->busy_hits < ET_BUSY_RESENDS)
		events_send(ev, port); /* pending again at once: a port that never goes quiet */
}

static void et_quiet(struct events *ev, evtchn_port_t port, void *arg)
{
	et_log(arg, port);
}

/* A port that re-raises itself from its own handler must not starve a port raised with it. */
static void et_fairness(struct et *t)
{
	struct events *ev = &t->k->ev;
	int a = events_bind_ipi(ev, et_busy, t), b = events_bind_ipi(ev, et_quiet, t);
	unsigned int quiet_at = ET_LOG;

	if (!app_check(&t->c, a >= 0 && b >= 0, "fairness: two IPIs", "ports %d %d", a, b))
		goto out;
	t->log_len = 0;
	t->busy_hits = 0;
	bool was = events_disable(ev);
	events_send(ev, (evtchn_port_t)a);
	events_send(ev, (evtchn_port_t)b);
	events_restore(ev, was);
	for (int i = 0; i < 100 && t->busy_hits < ET_BUSY_RESENDS; i++)
		timer_sleep_ns(&t->k->tm, 100000);
	for (unsigned int i = 0; i < t->log_len; i++) {
		if (t->log[i] == (evtchn_port_t)b) {
			quiet_at = i;
			break;
		}
	}
	app_check(&t->c, quiet_at <= 2 && t->busy_hits == ET_BUSY_RESENDS,
		  "fairness: quiet port served between busy ones", "quiet at position %u, busy %u", quiet_at,
		  t->busy_hits);
out:
	if (a >= 0)
		events_close(ev, (evtchn_port_t)a);
	if (b >= 0)
		events_close(ev, (evtchn_port_t)b);
}

/* Allocates until the hypervisor says -ENOSPC, then gives every port back. */
static void et_limit(struct et *t)
{
	struct events *ev = &t->k->ev;
	unsigned int n = 0;
	int rc = 0;

	while (n < EVTCHN_2L_NR_CHANNELS) {
		rc = events_alloc_unbound(ev, 0, NULL, NULL);
		if (rc < 0)
			break;
		t->ports[n++] = (uint16_t)rc;
	}
	app_check(&t->c, rc == -XEN_ENOSPC, "alloc past the limit: -ENOSPC", "rc %d after %u new ports", rc, n);
	unsigned int closed = 0;
	for (unsigned int i = 0; i < n; i++)
		closed += events_close(ev, t->ports[i]) == 0;
	app_check(&t->c, closed == n, "close every allocated port", "%u of %u", closed, n);
	rc = events_alloc_unbound(ev, 0, NULL, NULL);
	app_check(&t->c, rc >= 0, "allocation works again", "port %d", rc);
	if (rc >= 0)
		events_close(ev, (evtchn_port_t)rc);
}

void app_evtchn_test(struct kernel *k, struct app_result *res)
{
	struct et t;

	if (kernel_cmdline_u64(k, "peer", UINT64_MAX) != UINT64_MAX) {
		app_evtchn_peer(k, res);
		return;
	}
	memset(&t, 0, sizeof(t));
	t.k = k;
	t.c.k = k;
	kprintf(k, "evtchn-test: ring %d, domain %u\n", k->ring, k->domid);
	if (!app_need_events(k, res))
		return;
	int ipi = events_bind_ipi(&k->ev, et_count, &t);
	et_ipi(&t, ipi);
	if (ipi >= 0)
		et_ipi_latency(&t, ipi);
	if (ipi >= 0)
		events_close(&k->ev, (evtchn_port_t)ipi);
	et_virq(&t);
	et_interdomain(&t);
	et_fairness(&t);
	et_limit(&t);
	kprintf(k, "evtchn-test: %lu upcalls, %lu handler calls, %lu spurious, %lu local re-raises\n", k->ev.upcalls,
		k->ev.dispatched, k->ev.spurious, k->ev.local_raises);
	app_checks_result(&t.c, res);
}
