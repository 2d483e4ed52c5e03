/* Event channels: the per-domain port tables with one explicit state machine per port, Xen's
 * 2-level pending/mask bits, Domain-0's eventfd-backed ports, vCPU timers and the event thread. */
#ifndef LAMINA_HV_EVENT_CHANNEL_H
#define LAMINA_HV_EVENT_CHANNEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <xen/xen.h>
#include <xen/event_channel.h>

struct domain;
struct vcpu;

#define EVTCHN_GUEST_MAX_PORT 1023u   /* default highest port of a guest (port 0 is reserved) */
#define EVTCHN_2L_MAX_PORT 4095u      /* what the 2-level ABI can address on x86-64 */
#define EVTCHN_DOM0_MAX_PORT 32767u   /* Domain-0 has no shared_info: only memory limits it */
#define EVTCHN_CHUNK 64u              /* the table grows in chunks of this many ports */
#define EVTCHN_POLL_MAX 128u          /* ports one SCHEDOP_poll may name (Xen's bound) */

/* A port's state. Transitions (anything else is refused with Xen's error):
 *   FREE -> UNBOUND (alloc_unbound) | INTERDOMAIN (bind_interdomain) | VIRQ | IPI
 *   UNBOUND -> INTERDOMAIN (the remote binds it) | FREE (close)
 *   INTERDOMAIN -> UNBOUND (the peer closes or dies; remote_dom stays the peer) | FREE (close)
 *   VIRQ, IPI -> FREE (close)
 *   RESERVED: port 0, never leaves it. PIRQ does not exist here. */
enum evtchn_state {
	EVTCHN_FREE = 0,
	EVTCHN_RESERVED,
	EVTCHN_UNBOUND,
	EVTCHN_INTERDOMAIN,
	EVTCHN_VIRQ,
	EVTCHN_IPI,
};

struct evtchn_port {
	uint8_t state;	     /* enum evtchn_state */
	uint16_t vcpu;	     /* the vCPU notified */
	uint16_t remote_dom; /* UNBOUND: who may bind; INTERDOMAIN: the peer */
	uint32_t remote_port;
	uint32_t virq;
	/* Domain-0 only: the client's two eventfds, the connection owning it, a generation that
	 * tells a stale event-thread wake-up from a reused port. */
	int notify_fd, event_fd;
	const void *owner;
	uint32_t gen;
};

struct evtchn_table {
	struct evtchn_port *ports; /* nr_alloc entries */
	unsigned nr_alloc;
	unsigned max_port; /* highest usable port */
	unsigned nr_used;  /* ports not FREE (port 0 excluded) */
	bool dead;	   /* torn down: every operation fails */
};

/* The daemon-wide event-channel state. Lock order: world.lock (write for anything that changes
 * a port's state or the registry; read for send, unmask, status, poll and timers), then at most
 * one domain's d->lock at a time, except bind_interdomain and teardown, which hold the write
 * lock and take two domains' locks lower domid first. No lock is held while calling out
 * (domain_ops->notify runs after every lock is dropped). */
struct evtchn_world {
	pthread_rwlock_t lock;
	struct domain **dom; /* DOMID_FIRST_RESERVED slots: 0 is Domain-0 */
	uint32_t next_gen;
	/* The event thread: epoll over every Domain-0 notify eventfd and vCPU timerfd. */
	int epoll_fd;
	int quit_fd;
	pthread_t thread;
	bool thread_started;
};

/* Per-vCPU timers: singleshot (set_timer_op and VCPUOP_set_singleshot_timer) and periodic. */
enum { EVTCHN_TIMER_SINGLE = 0, EVTCHN_TIMER_PERIODIC = 1, EVTCHN_NR_TIMERS = 2 };

struct evtchn_timer {
	int fd; /* timerfd, created on first use; -1 before */
	uint32_t gen;
	uint64_t deadline_ns; /* domain system time, 0: not armed */
	uint64_t period_ns;
	_Atomic uint64_t fired;
};

/* Global VIRQs bind on vCPU 0 only and may be rebound; the others are per vCPU. */
static inline bool evtchn_virq_global(uint32_t virq)
{
	return !(virq == VIRQ_TIMER || virq == VIRQ_DEBUG || virq == VIRQ_XENOPROF || virq == VIRQ_XENPMU);
}

/* event_channel.c: world, tables, the port state machine, 2-level delivery; evtchn_domain.c:
 * VIRQs, reset, teardown. */
int evtchn_world_init(struct evtchn_world *w, bool thread);
void evtchn_world_fini(struct evtchn_world *w);
/* Gives d a table (max_port ports) and lists it under d->domid. -EEXIST if the id is taken. */
int evtchn_domain_init(struct evtchn_world *w, struct domain *d, unsigned max_port);
/* Unlists d, closes every port (peers become UNBOUND and are set pending), stops its timers.
 * Idempotent. After it, no other domain or the event thread can reach d. */
void evtchn_domain_teardown(struct domain *d);
void evtchn_domain_free(struct domain *d); /* frees the table (after teardown) */
bool evtchn_domain_exists(struct evtchn_world *w, uint32_t domid);

int evtchn_alloc_unbound(struct domain *d, uint32_t remote_dom, uint32_t *port);
int evtchn_bind_interdomain(struct domain *d, uint32_t remote_dom, uint32_t remote_port, uint32_t *port);
int evtchn_bind_virq(struct domain *d, uint32_t virq, uint32_t vcpu, uint32_t *port);
int evtchn_bind_ipi(struct domain *d, uint32_t vcpu, uint32_t *port);
int evtchn_close(struct domain *d, uint32_t port);
int evtchn_send(struct domain *d, uint32_t port);
int evtchn_status(struct domain *d, uint32_t port, struct evtchn_status *st);
int evtchn_bind_vcpu(struct domain *d, uint32_t port, uint32_t vcpu);
int evtchn_unmask(struct domain *d, uint32_t port);
int evtchn_reset(struct domain *d);
/* The port's pending bit (poll), false for a bad port. */
bool evtchn_is_pending(struct domain *d, uint32_t port);
/* Raise a VIRQ: per-vCPU ones on v's binding; global ones on d's binding (Domain-0: on every
 * port bound to it). 0 if delivered or unbound. */
int evtchn_send_virq(struct domain *d, unsigned vcpu, uint32_t virq);
unsigned evtchn_nr_ports(struct domain *d);
/* Marks every vCPU's upcall pending when the guest's view of the bits may be stale. */
void evtchn_vcpu_kick_pending(struct vcpu *v);

/* evtchn_dom0.c: Domain-0's ports, bound for a control connection (owner). fds[0] notify
 * (Domain-0 writes), fds[1] event (Domain-0 reads); the caller owns (and closes) its copies. */
int evtchn_d0_bind_interdomain(struct domain *d0, const void *owner, uint32_t remote_dom,
			       uint32_t remote_port, uint32_t *port, int fds[2]);
int evtchn_d0_bind_virq(struct domain *d0, const void *owner, uint32_t virq, uint32_t *port, int fds[2]);
int evtchn_d0_close(struct domain *d0, const void *owner, uint32_t port);
void evtchn_d0_close_owner(struct domain *d0, const void *owner);
/* The event thread's body for one readiness report (exposed for tests that run it by hand). */
void evtchn_loop_dispatch(struct evtchn_world *w, uint64_t tag);
/* Waits up to timeout_ms for timer or notify activity and handles it: for tests without the
 * thread. Returns the number of sources handled. */
int evtchn_loop_poll(struct evtchn_world *w, int timeout_ms);

/* evtchn_timer.c */
/* Arms (deadline > 0, domain system time) or cancels (0) one of v's timers; period_ns > 0
 * makes it periodic. A deadline in the past fires at once. */
int evtchn_timer_set(struct vcpu *v, unsigned which, uint64_t deadline_ns, uint64_t period_ns);
void evtchn_timers_stop(struct vcpu *v); /* cancels both and closes the fds (world lock held) */

/* internal, shared by the evtchn files; "locked": the caller holds the world lock (write for
 * the ones that change state). */
int evtchn_send_locked(struct domain *d, uint32_t port);
int evtchn_send_virq_locked(struct domain *d, unsigned vcpu, uint32_t virq);
int evtchn_get_free(struct domain *d, uint32_t *port);
void evtchn_take(struct domain *d, uint32_t port, uint8_t state, uint16_t vcpu);
struct evtchn_port *evtchn_port_of(struct domain *d, uint32_t port);
void evtchn_set_pending(struct domain *d, uint32_t port);
struct domain *evtchn_lookup(struct evtchn_world *w, struct domain *self, uint32_t domid);
int evtchn_close_locked(struct domain *d, uint32_t port, struct domain **peer, uint32_t *peer_port);
void evtchn_deliver(struct domain *d, uint32_t port, struct vcpu **notify);
uint64_t evtchn_tag(unsigned kind, uint32_t gen, uint32_t domid, uint32_t low);
int evtchn_loop_add(struct evtchn_world *w, int fd, uint64_t tag);
void evtchn_loop_del(struct evtchn_world *w, int fd);
#define EVTCHN_TAG_NOTIFY 1u
#define EVTCHN_TAG_TIMER 2u
#define EVTCHN_TAG_QUIT 3u

#endif
