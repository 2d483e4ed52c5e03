/* Event ping-pong across domains: app=evtchn-test with peer=D (a server allocates, a client binds
 * and measures round trips) and app=dom0-pingpong (Domain-0 binds the port this guest allocates
 * and measures with eventfds). A wait first spins for spin-us=N microseconds (default 200) with
 * upcalls masked, so an answer that comes within it costs no wake-up; then it blocks. spin-us=0
 * blocks at once, the send and the block sharing one exit. One guard timer bounds the exchange. */
#include "apps.h"
#include "../kernel/hypercall.h"

#define PP_MAX_ROUNDS 8192
#define PP_DEFAULT_ROUNDS 1000
#define PP_GUARD_NS 60000000000ull	  /* the whole exchange */
#define PP_BIND_RETRY_NS 1000000ull	  /* client: between bind attempts */
#define PP_BIND_TIMEOUT_NS 30000000000ull /* until the peer exists / has allocated */
#define PP_SCAN_PORTS 64		  /* client without port=: the server ports it tries */
#define PP_SPIN_US 200			  /* default spin-us */

struct pp {
	struct kernel *k;
	volatile uint64_t hits;
	volatile bool expired;
	uint64_t want;
	uint64_t spin_ns;
	struct timer guard;
};

static void pp_event(struct events *ev, evtchn_port_t port, void *arg)
{
	struct pp *pp = arg;

	pp->hits++;
}

static void pp_expire(struct timer *t, void *arg)
{
	struct pp *pp = arg;

	pp->expired = true;
}

static bool pp_arrived(void *arg)
{
	const struct pp *pp = arg;

	return pp->hits >= pp->want || pp->expired;
}

/* Spins with upcalls masked until an event is pending or spin_ns pass; events_restore then runs
 * what came. Masked, the vCPU is not kicked out of the guest to take the event: the hypervisor
 * only sets the pending bits, which this loop reads. */
static void pp_spin(struct pp *pp)
{
	struct events *ev = &pp->k->ev;
	uint64_t end = time_now_ns(&pp->k->time) + pp->spin_ns;
	bool was = events_disable(ev);

	while (!ev->vi->evtchn_upcall_pending && time_now_ns(&pp->k->time) < end)
		__asm__ volatile("pause" ::: "memory");
	events_restore(ev, was);
}

/* Waits until the count of events reaches want; false when the guard timer expired first. */
static bool pp_wait(struct pp *pp, uint64_t want)
{
	pp->want = want;
	if (pp->spin_ns && pp->hits < want)
		pp_spin(pp);
	timer_wait(&pp->k->tm, pp_arrived, pp, TIMER_NEVER);
	return pp->hits >= want;
}

static int pp_start(struct kernel *k, struct pp *pp, struct app_result *res)
{
	memset(pp, 0, sizeof(*pp));
	pp->k = k;
	pp->spin_ns = kernel_cmdline_u64(k, "spin-us", PP_SPIN_US) * 1000ull;
	if (!app_need_events(k, res))
		return -XEN_ENODEV;
	int rc = timer_add(&k->tm, &pp->guard, time_now_ns(&k->time) + PP_GUARD_NS, 0, pp_expire, pp);
	if (rc < 0)
		app_set(res, APP_ERROR, "guard timer: %d", rc);
	return rc;
}

/* Notifies port and, unless the count of events already reached want or the wait spins first,
 * blocks in the same exit (send + block in one multicall). Returns the send's result. */
static int pp_send_then_block(struct pp *pp, evtchn_port_t port, uint64_t want)
{
	struct events *ev = &pp->k->ev;
	bool was = events_disable(ev);
	long rc = pp->hits >= want || pp->expired || pp->spin_ns ? events_send(ev, port)
								 : events_send_block(ev, port);

	events_restore(ev, was);
	return (int)rc;
}

/* Answers every event on port with one event, rounds times; each answer and the wait for the
 * next event share one exit. */
static void pp_answer(struct kernel *k, struct pp *pp, evtchn_port_t port, uint64_t rounds, const char *who,
		      struct app_result *res)
{
	for (uint64_t i = 0; i < rounds; i++) {
		if (!pp_wait(pp, i + 1)) {
			app_set(res, APP_FAILURE, "%s: round %lu of %lu: no event in time", who, i + 1, rounds);
			return;
		}
		int rc = i + 1 < rounds ? pp_send_then_block(pp, port, i + 2) : events_send(&k->ev, port);
		if (rc < 0) {
			app_set(res, APP_FAILURE, "%s: send on port %u: %d", who, port, rc);
			return;
		}
	}
	kprintf(k, "%s: answered %lu rounds on port %u\n", who, rounds, port);
}

static uint64_t pp_rounds(struct kernel *k)
{
	uint64_t r = kernel_cmdline_u64(k, "rounds", PP_DEFAULT_ROUNDS);

	return r == 0 ? 1 : r > PP_MAX_ROUNDS ? PP_MAX_ROUNDS : r;
}

static void pp_server(struct kernel *k, struct pp *pp, domid_t peer, struct app_result *res)
{
	uint64_t rounds = pp_rounds(k), give_up = time_now_ns(&k->time) + PP_BIND_TIMEOUT_NS;
	int port;

	/* A hypervisor may refuse a remote domain that does not exist yet (-ESRCH): wait for it. */
	while ((port = events_alloc_unbound(&k->ev, peer, pp_event, pp)) == -XEN_ESRCH &&
	       time_now_ns(&k->time) < give_up && !pp->expired)
		timer_sleep_ns(&k->tm, PP_BIND_RETRY_NS);
	if (port < 0) {
		app_set(res, APP_FAILURE, "alloc_unbound(remote %u): %d", peer, port);
		return;
	}
	kprintf(k, "evtchn-test: port %d\n", port);
	console_flush(&k->con);
	pp_answer(k, pp, (evtchn_port_t)port, rounds, "evtchn-test server", res);
	events_close(&k->ev, (evtchn_port_t)port);
}

/* Without port=P: the server's port is the one of its first PP_SCAN_PORTS that it allocated for
 * us; bind_interdomain succeeds on no other (the ABI requires remote_dom == us). */
static int pp_client_bind(struct kernel *k, struct pp *pp, domid_t peer, uint64_t want, uint64_t *rport)
{
	int port = -XEN_EINVAL;

	for (uint64_t p = want == UINT64_MAX ? 1 : want; p < EVTCHN_2L_NR_CHANNELS; p++) {
		port = events_bind_interdomain(&k->ev, peer, (evtchn_port_t)p, pp_event, pp);
		if (port >= 0) {
			*rport = p;
			return port;
		}
		if (want != UINT64_MAX || p >= PP_SCAN_PORTS)
			break;
	}
	return port;
}

static void pp_client(struct kernel *k, struct pp *pp, domid_t peer, struct app_result *res)
{
	uint64_t rounds = pp_rounds(k), want = kernel_cmdline_u64(k, "port", UINT64_MAX), rport = 0;
	uint64_t rtt[PP_MAX_ROUNDS];
	uint64_t give_up = time_now_ns(&k->time) + PP_BIND_TIMEOUT_NS;
	int port;

	if (want != UINT64_MAX && (want == 0 || want >= EVTCHN_2L_NR_CHANNELS)) {
		app_set(res, APP_ERROR, "port=%lu is not a port", want);
		return;
	}
	/* The server may not have allocated yet: retry until it has. */
	while ((port = pp_client_bind(k, pp, peer, want, &rport)) < 0) {
		if (time_now_ns(&k->time) >= give_up || pp->expired) {
			app_set(res, APP_FAILURE, "bind_interdomain(%u, %s%lu): %d", peer, want == UINT64_MAX ? "1.." : "",
				want == UINT64_MAX ? (uint64_t)PP_SCAN_PORTS : want, port);
			return;
		}
		timer_sleep_ns(&k->tm, PP_BIND_RETRY_NS);
	}
	kprintf(k, "evtchn-test: bound local port %d to domain %u port %lu\n", port, peer, rport);
	/* Xen sets the binder's port pending on bind_interdomain (notifications sent while unbound
	 * may have been lost); that event is not an answer. */
	uint64_t base = pp->hits;
	for (uint64_t i = 0; i < rounds; i++) {
		uint64_t t0 = time_now_ns(&k->time);
		int rc = pp_send_then_block(pp, (evtchn_port_t)port, base + i + 1);
		if (rc < 0) {
			app_set(res, APP_FAILURE, "send on port %d: %d", port, rc);
			goto out;
		}
		if (!pp_wait(pp, base + i + 1)) {
			app_set(res, APP_FAILURE, "round %lu of %lu: no answer in time", i + 1, rounds);
			goto out;
		}
		rtt[i] = time_now_ns(&k->time) - t0;
	}
	uint64_t med = app_median(rtt, rounds);
	kprintf(k, "evtchn-test: %lu round trips with domain %u: min %lu ns, median %lu ns, max %lu ns\n", rounds,
		peer, rtt[0], med, rtt[rounds - 1]);
	kprintf(k, "BENCH interdomain_rtt_ns %lu ns\n", med);
out:
	events_close(&k->ev, (evtchn_port_t)port);
}

void app_evtchn_peer(struct kernel *k, struct app_result *res)
{
	char role[16];
	uint64_t peer = kernel_cmdline_u64(k, "peer", UINT64_MAX);
	struct pp pp;

	if (peer >= DOMID_FIRST_RESERVED || kernel_cmdline_get(k, "role", role, sizeof(role)) < 0) {
		app_set(res, APP_ERROR, "ping-pong needs peer=DOMID and role=server|client");
		return;
	}
	if (pp_start(k, &pp, res) < 0)
		return;
	if (strcmp(role, "server") == 0)
		pp_server(k, &pp, (domid_t)peer, res);
	else if (strcmp(role, "client") == 0)
		pp_client(k, &pp, (domid_t)peer, res);
	else
		app_set(res, APP_ERROR, "role must be server or client, not '%s'", role);
	timer_cancel(&k->tm, &pp.guard);
}

void app_dom0_pingpong(struct kernel *k, struct app_result *res)
{
	uint64_t rounds = pp_rounds(k);
	struct pp pp;

	if (pp_start(k, &pp, res) < 0)
		return;
	int port = events_alloc_unbound(&k->ev, 0, pp_event, &pp);
	if (port < 0) {
		app_set(res, APP_FAILURE, "alloc_unbound(remote 0): %d", port);
	} else {
		kprintf(k, "dom0-pingpong: port %d\n", port);
		console_flush(&k->con);
		pp_answer(k, &pp, (evtchn_port_t)port, rounds, "dom0-pingpong", res);
		events_close(&k->ev, (evtchn_port_t)port);
	}
	timer_cancel(&k->tm, &pp.guard);
}
