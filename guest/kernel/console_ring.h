/* The PV console ring (struct xencons_interface at HVM_PARAM_CONSOLE_PFN, notified through
 * HVM_PARAM_CONSOLE_EVTCHN): output into the out ring, input from the in ring, console_io fallback. */
#ifndef GUEST_KERNEL_CONSOLE_RING_H
#define GUEST_KERNEL_CONSOLE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/io/console.h>
#include "events.h"
#include "timer.h"

/* How long a full ring waits for the back-end before that chunk goes out by console_io. */
#define CONSOLE_RING_WAIT_NS 200000000ull
/* While the back-end has not bound the port, how often a flush asks whether it has now. */
#define CONSOLE_RING_PROBE_NS 5000000ull
/* How long a shutdown waits for the back-end to take the last lines. */
#define CONSOLE_RING_DRAIN_NS 200000000ull

struct kernel_time;

struct console_ring {
	struct events *ev;
	struct timers *tm;
	const struct kernel_time *time;
	volatile struct xencons_interface *intf; /* NULL: no ring (params unset or invalid) */
	evtchn_port_t port;
	bool bound;  /* the back-end has bound the port: output goes to the ring */
	bool broken; /* the back-end scribbled an index: console_io for good */
	bool stalled; /* the last wait timed out at out_cons == stalled_cons */
	uint32_t stalled_cons;
	uint64_t next_probe_ns;
	uint32_t out_prod; /* ours: never read back from the page */
	uint32_t in_cons;  /* ours */
	volatile uint64_t kicks; /* events from the back-end (handler) */
	uint64_t ring_bytes, io_bytes, notifies, waits, timeouts, in_bytes;
	long last_error;
};

/* Reads the params, checks the frame, attaches the port handler. 0, or -errno when there is no
 * usable ring (output then stays on console_io). */
int console_ring_init(struct console_ring *cr, struct events *ev, struct timers *tm, const struct kernel_time *time,
		      uint64_t image_end);
/* Writes buf to the ring (notifying once at the end) or by console_io when the ring is not in
 * use; a full ring waits for the back-end, at most CONSOLE_RING_WAIT_NS. Returns bytes written or
 * -errno from console_io. Not from upcall context. */
long console_ring_write(struct console_ring *cr, const char *buf, size_t n);
/* Waits (blocking) until the back-end has consumed everything written, at most timeout_ns: 0,
 * or -ETIMEDOUT. Before a shutdown, so that the last lines reach the log first. */
int console_ring_drain(struct console_ring *cr, uint64_t timeout_ns);
/* Console input: copies up to n bytes, 0 when there is none; -ENODEV without a ring. */
long console_ring_read(struct console_ring *cr, char *buf, size_t n);
bool console_ring_input_pending(const struct console_ring *cr);
/* Is output going to the ring (probing the port's state if it is time to)? */
bool console_ring_active(struct console_ring *cr);

#endif
