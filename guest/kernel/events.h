/* Event channels of the guest kernel, Xen's 2-level ABI seen from inside: binding and closing
 * ports, the per-port handler table, local masking, and the upcall that dispatches pending ports. */
#ifndef GUEST_KERNEL_EVENTS_H
#define GUEST_KERNEL_EVENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/event_channel.h>
#include <xen/callback.h>

/* Ports that can carry a handler; the hypervisor may hand out higher ones, which can still be
 * allocated, sent to and closed, but not dispatched (binding a handler there is -ENOSPC). */
#define EVENTS_MAX_PORTS 1024
/* The vector of the ring-0 (HVM callback vector) delivery. */
#define EVENTS_VECTOR 0xf3

/* vcpu_info fields the upcall entry touches from assembly (asserted in events.c). */
#define EVENTS_VI_PENDING 0
#define EVENTS_VI_MASK 1

struct events;
/* Runs in upcall context with events disabled: keep it short, never print, never block. */
typedef void (*events_handler_fn)(struct events *ev, evtchn_port_t port, void *arg);

struct events_handler {
	events_handler_fn fn;
	void *arg;
	uint64_t count;
};

struct events {
	volatile struct shared_info *shared;
	volatile struct vcpu_info *vi;
	uint32_t vcpu_id;
	int ring;	   /* 3: Xen-PV callback, 0: HVM callback vector */
	bool ready;	   /* upcalls are registered */
	int init_rc;	   /* why not, when !ready */
	unsigned int depth; /* dispatch nesting (local re-raise inside a handler) */
	unsigned int next_word, next_bit; /* fairness: where the next scan starts */
	uint64_t upcalls, dispatched, spurious, local_raises;
	struct events_handler h[EVENTS_MAX_PORTS];
};

/* The one write-once anchor: the upcall entry (arch/upcall_entry.S) has no other way to find the
 * state. Set by events_init before the callback is registered, never changed afterwards except
 * for vi when the vcpu_info moves (events_set_vcpu_info). */
struct events_anchor {
	struct events *ev;
	volatile struct vcpu_info *vi;
};
extern struct events_anchor lamina_events_anchor;

/* ev must be zeroed (it is: it lives in struct kernel). Registers the upcall for this ring (ring 3: CALLBACKOP_register; ring 0: x2APIC on, IDT gate,
 * HVM_PARAM_CALLBACK_IRQ vector) and enables events. 0 or -errno (kept in init_rc). */
int events_init(struct events *ev, volatile struct shared_info *shared, volatile struct vcpu_info *vi,
		uint32_t vcpu_id, int ring);
/* The vcpu_info moved (VCPUOP_register_vcpu_info): follow it. */
void events_set_vcpu_info(struct events *ev, volatile struct vcpu_info *vi);

/* Bindings: each returns the new port (>= 0) or -errno. */
int events_bind_virq(struct events *ev, uint32_t virq, events_handler_fn fn, void *arg);
int events_bind_ipi(struct events *ev, events_handler_fn fn, void *arg);
int events_alloc_unbound(struct events *ev, domid_t remote, events_handler_fn fn, void *arg);
int events_bind_interdomain(struct events *ev, domid_t remote, evtchn_port_t rport, events_handler_fn fn,
			    void *arg);
/* Attaches a handler to a port bound elsewhere (console, store ports the toolstack made). */
int events_set_handler(struct events *ev, evtchn_port_t port, events_handler_fn fn, void *arg);
int events_close(struct events *ev, evtchn_port_t port);
int events_send(struct events *ev, evtchn_port_t port);
int events_status(struct events *ev, evtchn_port_t port, struct evtchn_status *out);

void events_mask(struct events *ev, evtchn_port_t port);
/* Clears the mask; if the port is pending, re-raises it locally (no hypercall). */
void events_unmask(struct events *ev, evtchn_port_t port);
bool events_is_pending(const struct events *ev, evtchn_port_t port);
bool events_is_masked(const struct events *ev, evtchn_port_t port);
uint64_t events_count(const struct events *ev, evtchn_port_t port);

/* Local delivery: disable returns the previous state for restore; restoring to enabled runs
 * anything that became pending meanwhile. */
bool events_disable(struct events *ev);
void events_restore(struct events *ev, bool was_enabled);

/* Sleeps the vCPU until an event is pending (SCHEDOP_block). Call it with events disabled after
 * checking the wake-up condition; it returns with events disabled, pending work not yet run. */
long events_block(struct events *ev);

/* EVTCHNOP_send on port, then SCHEDOP_block, in one multicall: one exit where a notify followed
 * by a wait would take two. Same rules as events_block (events disabled, condition checked);
 * returns the send's result. */
long events_send_block(struct events *ev, evtchn_port_t port);

/* Called from arch/upcall_entry.S. */
void events_upcall(struct events *ev);
void events_upcall_vector(struct events *ev);

#endif
