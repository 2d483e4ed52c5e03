/* PV console ring driver. We own out_prod and in_cons and keep private copies of them; the
 * back-end's indexes (out_cons, in_prod) are read once per pass and checked against the ring size
 * before use. Output goes to the ring only once the back-end has bound the port, so nothing is
 * stranded in a ring nobody reads; until then, and whenever the back-end stops draining, it goes
 * out by console_io. */
#include "console_ring.h"
#include "hypercall.h"
#include "kernel.h"

#define CONSOLE_RING_OUT_SIZE sizeof(((struct xencons_interface *)0)->out)
#define CONSOLE_RING_IN_SIZE sizeof(((struct xencons_interface *)0)->in)
#define CONSOLE_RING_MAPPED_TOP (4ull << 30)

_Static_assert(sizeof(struct xencons_interface) == 3072 + 16, "xencons_interface layout");
_Static_assert(offsetof(struct xencons_interface, out_cons) == 3080, "xencons_interface layout");
_Static_assert((CONSOLE_RING_OUT_SIZE & (CONSOLE_RING_OUT_SIZE - 1)) == 0, "ring sizes are powers of 2");

static inline void console_ring_barrier(void)
{
	__asm__ volatile("" ::: "memory"); /* x86: stores stay ordered; stop the compiler */
}

static void console_ring_kick(struct events *ev, evtchn_port_t port, void *arg)
{
	struct console_ring *cr = arg;

	cr->kicks++;
}

static long console_ring_io(struct console_ring *cr, const char *buf, size_t n)
{
	long rc = HYPERVISOR_console_io(CONSOLEIO_write, n, buf);

	if (rc < 0)
		cr->last_error = rc;
	cr->io_bytes += n;
	return rc < 0 ? rc : (long)n;
}

static void console_ring_notify(struct console_ring *cr)
{
	int rc = events_send(cr->ev, cr->port);

	cr->notifies++;
	if (rc < 0) { /* the port went away: back to console_io */
		cr->last_error = rc;
		cr->bound = false;
		cr->next_probe_ns = time_now_ns(cr->time) + CONSOLE_RING_PROBE_NS;
	}
}

bool console_ring_active(struct console_ring *cr)
{
	struct evtchn_status st;

	if (!cr->intf || cr->broken)
		return false;
	if (cr->bound)
		return true;
	uint64_t now = time_now_ns(cr->time);
	if (now < cr->next_probe_ns)
		return false;
	cr->next_probe_ns = now + CONSOLE_RING_PROBE_NS;
	if (events_status(cr->ev, cr->port, &st) == 0 && st.status == EVTCHNSTAT_interdomain)
		cr->bound = true;
	return cr->bound;
}

struct console_ring_wait {
	struct console_ring *cr;
	uint32_t cons;
};

static bool console_ring_drained(void *arg)
{
	const struct console_ring_wait *w = arg;

	return w->cr->intf->out_cons != w->cons;
}

/* The ring is full at out_cons == cons: wait for the back-end to consume, unless it already
 * failed to at this very index. 0 when there may be space now, -ETIMEDOUT otherwise. */
static int console_ring_wait_space(struct console_ring *cr, uint32_t cons)
{
	struct console_ring_wait w = {.cr = cr, .cons = cons};
	int rc;

	if (cr->stalled && cr->stalled_cons == cons)
		return -XEN_ETIMEDOUT;
	console_ring_notify(cr);
	if (!cr->bound)
		return -XEN_ETIMEDOUT;
	cr->waits++;
	rc = timer_wait(cr->tm, console_ring_drained, &w, time_now_ns(cr->time) + CONSOLE_RING_WAIT_NS);
	if (rc < 0) {
		cr->timeouts++;
		cr->stalled = true;
		cr->stalled_cons = cons;
		return -XEN_ETIMEDOUT;
	}
	cr->stalled = false;
	return 0;
}

long console_ring_write(struct console_ring *cr, const char *buf, size_t n)
{
	volatile struct xencons_interface *intf = cr->intf;
	size_t done = 0;

	if (!console_ring_active(cr))
		return console_ring_io(cr, buf, n);
	while (done < n) {
		uint32_t cons = intf->out_cons; /* read once */
		console_ring_barrier();
		uint32_t used = cr->out_prod - cons;
		if (used > CONSOLE_RING_OUT_SIZE) {
			cr->broken = true; /* the back-end scribbled out_cons */
			break;
		}
		uint32_t space = (uint32_t)CONSOLE_RING_OUT_SIZE - used;
		if (space == 0) {
			if (console_ring_wait_space(cr, cons) < 0)
				break;
			continue;
		}
		size_t chunk = n - done < space ? n - done : space;
		for (size_t i = 0; i < chunk; i++)
			intf->out[MASK_XENCONS_IDX(cr->out_prod + (uint32_t)i, intf->out)] = buf[done + i];
		console_ring_barrier(); /* bytes before the index */
		cr->out_prod += (uint32_t)chunk;
		intf->out_prod = cr->out_prod;
		done += chunk;
		cr->ring_bytes += chunk;
	}
	if (done > 0)
		console_ring_notify(cr);
	if (done < n) { /* no back-end progress, or a broken ring: this chunk goes by console_io */
		long rc = console_ring_io(cr, buf + done, n - done);
		if (rc < 0)
			return rc;
	}
	return (long)n;
}

static bool console_ring_empty(void *arg)
{
	const struct console_ring *cr = arg;

	return cr->intf->out_cons == cr->out_prod;
}

int console_ring_drain(struct console_ring *cr, uint64_t timeout_ns)
{
	if (!cr->intf || cr->broken || !cr->bound || console_ring_empty(cr))
		return 0;
	return timer_wait(cr->tm, console_ring_empty, cr, time_now_ns(cr->time) + timeout_ns);
}

bool console_ring_input_pending(const struct console_ring *cr)
{
	return cr->intf && !cr->broken && cr->intf->in_prod != cr->in_cons;
}

long console_ring_read(struct console_ring *cr, char *buf, size_t n)
{
	volatile struct xencons_interface *intf = cr->intf;

	if (!intf || cr->broken)
		return -XEN_ENODEV;
	uint32_t prod = intf->in_prod; /* read once */
	console_ring_barrier();
	uint32_t avail = prod - cr->in_cons;
	if (avail > CONSOLE_RING_IN_SIZE) {
		cr->broken = true;
		return -XEN_EIO;
	}
	size_t k = avail < n ? avail : n;
	for (size_t i = 0; i < k; i++)
		buf[i] = intf->in[MASK_XENCONS_IDX(cr->in_cons + (uint32_t)i, intf->in)];
	console_ring_barrier(); /* bytes read before the slot is handed back */
	cr->in_cons += (uint32_t)k;
	intf->in_cons = cr->in_cons;
	cr->in_bytes += k;
	if (k > 0)
		console_ring_notify(cr);
	return (long)k;
}

int console_ring_init(struct console_ring *cr, struct events *ev, struct timers *tm, const struct kernel_time *time,
		      uint64_t image_end)
{
	uint64_t pfn = 0, port = 0;
	long rc;

	memset(cr, 0, sizeof(*cr));
	cr->ev = ev;
	cr->tm = tm;
	cr->time = time;
	if (!ev->ready)
		return -XEN_ENODEV;
	/* Both params in one exit. */
	struct xen_hvm_param p[2] = {
	    {.domid = DOMID_SELF, .index = HVM_PARAM_CONSOLE_PFN},
	    {.domid = DOMID_SELF, .index = HVM_PARAM_CONSOLE_EVTCHN},
	};
	struct multicall_entry mc[2];
	memset(mc, 0, sizeof(mc));
	for (int i = 0; i < 2; i++) {
		mc[i].op = __HYPERVISOR_hvm_op;
		mc[i].args[0] = HVMOP_get_param;
		mc[i].args[1] = (uintptr_t)&p[i];
	}
	rc = HYPERVISOR_multicall(mc, 2);
	for (int i = 0; rc == 0 && i < 2; i++)
		rc = (long)mc[i].result;
	if (rc < 0)
		return (int)rc;
	pfn = p[0].value;
	port = p[1].value;
	if (pfn == 0 || port == 0)
		return -XEN_ENOENT;
	/* The frame must be reachable through the identity map and not be our own image. */
	uint64_t pa = pfn << 12;
	if (pfn >= (CONSOLE_RING_MAPPED_TOP >> 12) || (pa < image_end && pa + GUEST_PAGE_SIZE > 0x100000) ||
	    port >= EVTCHN_2L_NR_CHANNELS)
		return -XEN_EINVAL;
	cr->intf = (volatile struct xencons_interface *)(uintptr_t)pa;
	cr->port = (evtchn_port_t)port;
	cr->out_prod = cr->intf->out_prod;
	cr->in_cons = cr->intf->in_cons;
	if (cr->out_prod - cr->intf->out_cons > CONSOLE_RING_OUT_SIZE ||
	    cr->intf->in_prod - cr->in_cons > CONSOLE_RING_IN_SIZE)
		cr->broken = true;
	rc = events_set_handler(ev, cr->port, console_ring_kick, cr);
	if (rc < 0) {
		cr->intf = NULL;
		return (int)rc;
	}
	console_ring_active(cr);
	return 0;
}
