/* Event channels from inside the guest: 2-level pending/mask bits in shared_info, the selector in
 * vcpu_info, a handler per port, and the upcall that dispatches them. Ring 3 takes upcalls through
 * CALLBACKOP_register frames (the hypervisor sets evtchn_upcall_mask on entry); ring 0 through the
 * HVM callback vector via the x2APIC, with IF as the local mask. */
#include "events.h"
#include "hypercall.h"
#include "kernel.h"
#include "traps.h"

#define EVENTS_WORD_BITS 64u
#define EVENTS_NR_WORDS (sizeof(((struct shared_info *)0)->evtchn_pending) / sizeof(xen_ulong_t))

#define EVENTS_MSR_APIC_BASE 0x1bu
#define EVENTS_APIC_BASE_EN (1ull << 11)
#define EVENTS_APIC_BASE_EXTD (1ull << 10)
#define EVENTS_MSR_X2APIC_TPR 0x808u
#define EVENTS_MSR_X2APIC_EOI 0x80bu
#define EVENTS_MSR_X2APIC_SVR 0x80fu
#define EVENTS_SVR_ENABLE 0x100u
#define EVENTS_SPURIOUS_VECTOR 0xffu
#define EVENTS_RFLAGS_IF 0x200ul

_Static_assert(offsetof(struct vcpu_info, evtchn_upcall_pending) == EVENTS_VI_PENDING, "vcpu_info");
_Static_assert(offsetof(struct vcpu_info, evtchn_upcall_mask) == EVENTS_VI_MASK, "vcpu_info");
_Static_assert(offsetof(struct vcpu_info, evtchn_pending_sel) == 8, "vcpu_info");
_Static_assert(sizeof(struct vcpu_info) == 64, "vcpu_info is 64 bytes");
_Static_assert(sizeof(xen_ulong_t) * 8 == EVENTS_WORD_BITS, "2-level words are 64 bits");
_Static_assert(EVENTS_NR_WORDS == EVENTS_WORD_BITS, "the selector covers every word");
_Static_assert(EVENTS_MAX_PORTS <= EVTCHN_2L_NR_CHANNELS, "handler table within the 2-level ABI");
_Static_assert(offsetof(struct events_anchor, vi) == 8, "upcall_entry.S reads the anchor");
_Static_assert(sizeof(struct callback_register) == 16, "callback_register is 16 bytes");
_Static_assert(sizeof(struct evtchn_status) == 24, "evtchn_status is 24 bytes");

/* Written once by events_init (and by events_set_vcpu_info); read by arch/upcall_entry.S. */
struct events_anchor lamina_events_anchor;

extern const uint8_t lamina_upcall_entry[];
extern const uint8_t lamina_upcall_vector_entry[];
extern const uint8_t lamina_spurious_entry[];

static inline void events_barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static inline void events_mb(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static inline uint64_t events_rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void events_wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static bool events_port_ok(evtchn_port_t port)
{
	return port < EVTCHN_2L_NR_CHANNELS;
}

static bool events_test_and_clear(volatile xen_ulong_t *word, unsigned int bit)
{
	xen_ulong_t m = 1ul << bit;

	return (__atomic_fetch_and(word, ~m, __ATOMIC_SEQ_CST) & m) != 0;
}

static bool events_test_and_set(volatile xen_ulong_t *word, unsigned int bit)
{
	xen_ulong_t m = 1ul << bit;

	return (__atomic_fetch_or(word, m, __ATOMIC_SEQ_CST) & m) != 0;
}

static void events_call(struct events *ev, evtchn_port_t port)
{
	struct events_handler *h = port < EVENTS_MAX_PORTS ? &ev->h[port] : NULL;

	if (!h || !h->fn) {
		ev->spurious++;
		return;
	}
	h->count++;
	ev->dispatched++;
	h->fn(ev, port, h->arg);
}

/* The unmasked pending ports of one word, from bit `from` up, then the ones below it. */
static void events_scan_word(struct events *ev, unsigned int w, unsigned int from)
{
	volatile xen_ulong_t *pending = &ev->shared->evtchn_pending[w];
	xen_ulong_t bits = *pending & ~ev->shared->evtchn_mask[w];
	xen_ulong_t hi = bits & (~0ul << from), lo = bits & ~(~0ul << from);

	for (int pass = 0; pass < 2; pass++) {
		xen_ulong_t b = pass == 0 ? hi : lo;
		while (b) {
			unsigned int bit = (unsigned int)__builtin_ctzl(b);
			b &= b - 1;
			/* Clear before calling: an event raised while the handler runs is kept. */
			if (!events_test_and_clear(pending, bit))
				continue;
			ev->next_word = bit + 1 < EVENTS_WORD_BITS ? w : (w + 1) % EVENTS_WORD_BITS;
			ev->next_bit = (bit + 1) % EVENTS_WORD_BITS;
			events_call(ev, w * EVENTS_WORD_BITS + bit);
		}
	}
}

/* Xen's 2-level scan: clear upcall_pending, take the selector atomically, then every selected
 * word's pending & ~mask bits. Each pass starts where the last one stopped, so a busy port cannot
 * starve the ports after it. Runs with events disabled. */
static void events_dispatch(struct events *ev)
{
	volatile struct vcpu_info *vi = ev->vi;

	ev->depth++;
	for (;;) {
		vi->evtchn_upcall_pending = 0;
		events_barrier();
		xen_ulong_t sel = __atomic_exchange_n(&vi->evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
		if (!sel)
			break;
		unsigned int w0 = ev->next_word % EVENTS_WORD_BITS, b0 = ev->next_bit % EVENTS_WORD_BITS;
		/* Only the selected words, in order from w0 (few instructions: ring 0 emulates each). */
		xen_ulong_t rot = w0 ? (sel >> w0) | (sel << (EVENTS_WORD_BITS - w0)) : sel;
		while (rot) {
			unsigned int i = (unsigned int)__builtin_ctzl(rot);
			unsigned int w = (w0 + i) % EVENTS_WORD_BITS;
			rot &= rot - 1;
			events_scan_word(ev, w, i == 0 ? b0 : 0);
		}
	}
	ev->depth--;
}

void events_upcall(struct events *ev)
{
	ev->upcalls++;
	events_dispatch(ev);
}

/* Ring 0: the x2APIC delivered the callback vector. EOI first, so an event raised during the
 * dispatch raises the vector again once IF is back. */
void events_upcall_vector(struct events *ev)
{
	events_wrmsr(EVENTS_MSR_X2APIC_EOI, 0);
	ev->upcalls++;
	events_dispatch(ev);
}

bool events_disable(struct events *ev)
{
	if (ev->ring == 0) {
		unsigned long fl;

		__asm__ volatile("pushfq; popq %0; cli" : "=r"(fl) : : "memory");
		return (fl & EVENTS_RFLAGS_IF) != 0;
	}
	bool was = ev->vi->evtchn_upcall_mask == 0;
	ev->vi->evtchn_upcall_mask = 1;
	events_barrier();
	return was;
}

/* Back to enabled: whatever became pending while disabled runs here, locally, without waiting for
 * (or asking for) an upcall. */
void events_restore(struct events *ev, bool was_enabled)
{
	volatile struct vcpu_info *vi = ev->vi;

	if (!was_enabled || !ev->ready)
		return;
	if (ev->ring == 0) {
		while (vi->evtchn_upcall_pending) {
			ev->local_raises++;
			events_dispatch(ev);
		}
		__asm__ volatile("sti" : : : "memory");
		return;
	}
	for (;;) {
		vi->evtchn_upcall_mask = 0;
		events_mb(); /* the mask store before the pending load */
		if (!vi->evtchn_upcall_pending)
			return;
		vi->evtchn_upcall_mask = 1;
		events_barrier();
		ev->local_raises++;
		events_dispatch(ev);
	}
}

long events_block(struct events *ev)
{
	long rc = 0;

	if (!ev->vi->evtchn_upcall_pending)
		rc = HYPERVISOR_sched_op(SCHEDOP_block, NULL);
	if (ev->ring == 3) /* the hypervisor may have enabled delivery for the block: disable again */
		ev->vi->evtchn_upcall_mask = 1;
	events_barrier();
	return rc;
}

long events_send_block(struct events *ev, evtchn_port_t port)
{
	struct evtchn_send snd = {.port = port};
	struct multicall_entry mc[2];

	if (ev->vi->evtchn_upcall_pending) /* something is due already: just notify */
		return events_send(ev, port);
	memset(mc, 0, sizeof(mc));
	mc[0].op = __HYPERVISOR_event_channel_op;
	mc[0].args[0] = EVTCHNOP_send;
	mc[0].args[1] = (uintptr_t)&snd;
	mc[1].op = __HYPERVISOR_sched_op;
	mc[1].args[0] = SCHEDOP_block;
	long rc = HYPERVISOR_multicall(mc, 2);
	if (ev->ring == 3) /* as in events_block */
		ev->vi->evtchn_upcall_mask = 1;
	events_barrier();
	return rc < 0 ? rc : (long)mc[0].result;
}

void events_mask(struct events *ev, evtchn_port_t port)
{
	if (!events_port_ok(port))
		return;
	events_test_and_set(&ev->shared->evtchn_mask[port / EVENTS_WORD_BITS], port % EVENTS_WORD_BITS);
}

void events_unmask(struct events *ev, evtchn_port_t port)
{
	unsigned int w = port / EVENTS_WORD_BITS, bit = port % EVENTS_WORD_BITS;

	if (!events_port_ok(port))
		return;
	bool was = events_disable(ev);
	events_test_and_clear(&ev->shared->evtchn_mask[w], bit);
	events_mb();
	/* What the hypervisor would have done had the port been unmasked when it was raised. */
	if ((ev->shared->evtchn_pending[w] >> bit) & 1) {
		if (!events_test_and_set(&ev->vi->evtchn_pending_sel, w))
			ev->vi->evtchn_upcall_pending = 1;
	}
	events_restore(ev, was);
}

bool events_is_pending(const struct events *ev, evtchn_port_t port)
{
	return events_port_ok(port) &&
	       ((ev->shared->evtchn_pending[port / EVENTS_WORD_BITS] >> (port % EVENTS_WORD_BITS)) & 1);
}

bool events_is_masked(const struct events *ev, evtchn_port_t port)
{
	return events_port_ok(port) &&
	       ((ev->shared->evtchn_mask[port / EVENTS_WORD_BITS] >> (port % EVENTS_WORD_BITS)) & 1);
}

uint64_t events_count(const struct events *ev, evtchn_port_t port)
{
	return port < EVENTS_MAX_PORTS ? ev->h[port].count : 0;
}

int events_set_handler(struct events *ev, evtchn_port_t port, events_handler_fn fn, void *arg)
{
	if (port >= EVENTS_MAX_PORTS)
		return -XEN_ENOSPC;
	bool was = events_disable(ev);
	ev->h[port].fn = fn;
	ev->h[port].arg = arg;
	ev->h[port].count = 0;
	events_restore(ev, was);
	if (fn)
		events_unmask(ev, port);
	return 0;
}

/* A bind hypercall's new port gets its handler before anything can be dispatched to it. */
static int events_bind_common(struct events *ev, int cmd, void *arg, const evtchn_port_t *out,
			      events_handler_fn fn, void *a)
{
	bool was = events_disable(ev);
	long rc = HYPERVISOR_event_channel_op(cmd, arg);
	evtchn_port_t port = *(const volatile evtchn_port_t *)out;

	if (rc == 0 && fn && port >= EVENTS_MAX_PORTS) {
		struct evtchn_close c = {.port = port};
		HYPERVISOR_event_channel_op(EVTCHNOP_close, &c);
		rc = -XEN_ENOSPC;
	} else if (rc == 0 && port < EVENTS_MAX_PORTS) {
		ev->h[port].fn = fn;
		ev->h[port].arg = a;
		ev->h[port].count = 0;
	}
	events_restore(ev, was);
	if (rc < 0)
		return (int)rc;
	if (fn)
		events_unmask(ev, port);
	return (int)port;
}

int events_bind_virq(struct events *ev, uint32_t virq, events_handler_fn fn, void *arg)
{
	struct evtchn_bind_virq b = {.virq = virq, .vcpu = ev->vcpu_id};

	return events_bind_common(ev, EVTCHNOP_bind_virq, &b, &b.port, fn, arg);
}

int events_bind_ipi(struct events *ev, events_handler_fn fn, void *arg)
{
	struct evtchn_bind_ipi b = {.vcpu = ev->vcpu_id};

	return events_bind_common(ev, EVTCHNOP_bind_ipi, &b, &b.port, fn, arg);
}

int events_alloc_unbound(struct events *ev, domid_t remote, events_handler_fn fn, void *arg)
{
	struct evtchn_alloc_unbound a = {.dom = DOMID_SELF, .remote_dom = remote};

	return events_bind_common(ev, EVTCHNOP_alloc_unbound, &a, &a.port, fn, arg);
}

int events_bind_interdomain(struct events *ev, domid_t remote, evtchn_port_t rport, events_handler_fn fn,
			    void *arg)
{
	struct evtchn_bind_interdomain b = {.remote_dom = remote, .remote_port = rport};

	return events_bind_common(ev, EVTCHNOP_bind_interdomain, &b, &b.local_port, fn, arg);
}

int events_close(struct events *ev, evtchn_port_t port)
{
	struct evtchn_close c = {.port = port};
	bool was = events_disable(ev);
	long rc = HYPERVISOR_event_channel_op(EVTCHNOP_close, &c);

	if (rc == 0 && port < EVENTS_MAX_PORTS) {
		ev->h[port].fn = NULL;
		ev->h[port].arg = NULL;
	}
	events_restore(ev, was);
	return (int)rc;
}

int events_send(struct events *ev, evtchn_port_t port)
{
	struct evtchn_send s = {.port = port};

	return (int)HYPERVISOR_event_channel_op(EVTCHNOP_send, &s);
}

int events_status(struct events *ev, evtchn_port_t port, struct evtchn_status *out)
{
	memset(out, 0, sizeof(*out));
	out->dom = DOMID_SELF;
	out->port = port;
	return (int)HYPERVISOR_event_channel_op(EVTCHNOP_status, out);
}

void events_set_vcpu_info(struct events *ev, volatile struct vcpu_info *vi)
{
	bool was = events_disable(ev);

	/* The hypervisor copied the old contents; the new mask must say "disabled" until restore. */
	if (ev->ring == 3)
		vi->evtchn_upcall_mask = 1;
	ev->vi = vi;
	lamina_events_anchor.vi = vi;
	events_restore(ev, was);
}

static int events_init_ring0(struct events *ev)
{
	uint64_t base = events_rdmsr(EVENTS_MSR_APIC_BASE);

	if ((base & (EVENTS_APIC_BASE_EN | EVENTS_APIC_BASE_EXTD)) != (EVENTS_APIC_BASE_EN | EVENTS_APIC_BASE_EXTD))
		events_wrmsr(EVENTS_MSR_APIC_BASE, base | EVENTS_APIC_BASE_EN | EVENTS_APIC_BASE_EXTD);
	events_wrmsr(EVENTS_MSR_X2APIC_SVR, EVENTS_SVR_ENABLE | EVENTS_SPURIOUS_VECTOR);
	events_wrmsr(EVENTS_MSR_X2APIC_TPR, 0);
	traps_set_interrupt(EVENTS_VECTOR, (uint64_t)(uintptr_t)lamina_upcall_vector_entry);
	traps_set_interrupt(EVENTS_SPURIOUS_VECTOR, (uint64_t)(uintptr_t)lamina_spurious_entry);
	struct xen_hvm_param p = {
	    .domid = DOMID_SELF,
	    .index = HVM_PARAM_CALLBACK_IRQ,
	    .value = ((uint64_t)HVM_PARAM_CALLBACK_TYPE_VECTOR << 56) | EVENTS_VECTOR,
	};
	ev->vi->evtchn_upcall_mask = 0; /* IF is the mask in this ring */
	return (int)HYPERVISOR_hvm_op(HVMOP_set_param, &p);
}

static int events_init_ring3(struct events *ev)
{
	struct callback_register cb = {
	    .type = CALLBACKTYPE_event,
	    .flags = 0,
	    .address = (xen_callback_t)(uintptr_t)lamina_upcall_entry,
	};

	ev->vi->evtchn_upcall_mask = 1;
	return (int)HYPERVISOR_callback_op(CALLBACKOP_register, &cb);
}

int events_init(struct events *ev, volatile struct shared_info *shared, volatile struct vcpu_info *vi,
		uint32_t vcpu_id, int ring)
{
	/* *ev is zero already (struct kernel is cleared in ring 3): clearing the handler table again
	 * would cost ~13 ms of emulated stores in the ring-0 mode. */
	ev->shared = shared;
	ev->vi = vi;
	ev->vcpu_id = vcpu_id;
	ev->ring = ring;
	lamina_events_anchor.ev = ev;
	lamina_events_anchor.vi = vi;
	ev->init_rc = ring == 0 ? events_init_ring0(ev) : events_init_ring3(ev);
	if (ev->init_rc < 0)
		return ev->init_rc;
	ev->ready = true;
	events_restore(ev, true);
	return 0;
}
