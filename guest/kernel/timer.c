/* Timers on VIRQ_TIMER: the hypervisor's one-shot (set_timer_op) always holds a deadline no later
 * than the earliest active one; the VIRQ handler fires what is due by the guest's own pvclock
 * (re-arming when the hypervisor's clock was a little ahead, or the armed deadline belonged to a
 * timer since cancelled) and programs the next one. Blocking waits use SCHEDOP_block with events
 * enabled. set_timer_op belongs to this module: a caller that issues it directly leaves
 * `programmed` stale. */
#include "timer.h"
#include "hypercall.h"
#include "kernel.h"

static uint64_t timer_earliest(const struct timers *tm)
{
	uint64_t best = TIMER_NEVER;

	for (unsigned int i = 0; i < tm->nr; i++) {
		if (tm->list[i]->deadline < best)
			best = tm->list[i]->deadline;
	}
	return best;
}

/* Events disabled. The list stays dense (the last entry fills the hole), so every walk is over
 * the active timers only: in the ring-0 mode each instruction of these walks is emulated. */
static void timer_unlink(struct timers *tm, struct timer *t)
{
	for (unsigned int i = 0; i < tm->nr; i++) {
		if (tm->list[i] == t) {
			tm->list[i] = tm->list[--tm->nr];
			tm->list[tm->nr] = NULL;
			break;
		}
	}
	t->active = false;
}

/* Events disabled. Calls set_timer_op only when the earliest deadline is earlier than the one
 * the hypervisor already holds (or it holds none): a later deadline waits for the armed one to
 * fire, and the VIRQ handler, finding nothing due yet, programs it then. The price is one early
 * VIRQ (an upcall, no exit of its own when the vCPU blocks) instead of one exit per later
 * deadline; a request loop that arms and cancels a long timeout each time pays one
 * set_timer_op per timeout period, not one per request. */
static void timer_program(struct timers *tm)
{
	uint64_t next = timer_earliest(tm);

	if (next == TIMER_NEVER)
		return;
	if (next == 0)
		next = 1; /* 0 would cancel */
	if (tm->programmed != 0 && tm->programmed <= next) {
		tm->kept++;
		return;
	}
	tm->set_calls++;
	if (HYPERVISOR_set_timer_op(next) == 0)
		tm->programmed = next;
}

static void timer_virq(struct events *ev, evtchn_port_t port, void *arg)
{
	struct timers *tm = arg;
	uint64_t now = time_now_ns(tm->time);
	bool any = false;

	tm->virqs++;
	tm->programmed = 0; /* the hypervisor's one-shot is spent */
	for (unsigned int i = 0; i < tm->nr;) {
		struct timer *t = tm->list[i];
		if (t->deadline > now) {
			i++;
			continue;
		}
		any = true;
		if (t->period) {
			t->deadline += t->period;
			if (t->deadline <= now) /* we fell behind: no burst of catch-up firings */
				t->deadline = now + t->period;
			i++;
		} else {
			timer_unlink(tm, t); /* list[i] is now another timer: look at it next */
		}
		t->fired++;
		tm->fired++;
		if (t->fn)
			t->fn(t, t->arg);
	}
	if (!any)
		tm->early++;
	timer_program(tm);
}

int timer_init(struct timers *tm, struct events *ev, const struct kernel_time *time)
{
	memset(tm, 0, sizeof(*tm));
	tm->ev = ev;
	tm->time = time;
	tm->port = -XEN_ENODEV;
	if (!ev->ready)
		return tm->port;
	/* One exit for both: Xen gives PV vCPUs a periodic tick unless told otherwise (Lamina may
	 * answer -ENOSYS: fine), and VIRQ_TIMER's port. Events stay disabled until its handler is
	 * in place. */
	struct evtchn_bind_virq bv = {.virq = VIRQ_TIMER, .vcpu = ev->vcpu_id};
	struct multicall_entry mc[2];
	memset(mc, 0, sizeof(mc));
	mc[0].op = __HYPERVISOR_vcpu_op;
	mc[0].args[0] = VCPUOP_stop_periodic_timer;
	mc[0].args[1] = ev->vcpu_id;
	mc[1].op = __HYPERVISOR_event_channel_op;
	mc[1].args[0] = EVTCHNOP_bind_virq;
	mc[1].args[1] = (uintptr_t)&bv;
	bool was = events_disable(ev);
	long rc = HYPERVISOR_multicall(mc, 2);
	if (rc == 0)
		rc = (long)mc[1].result;
	if (rc == 0) {
		rc = events_set_handler(ev, bv.port, timer_virq, tm);
		if (rc < 0) { /* beyond the handler table: give the port back */
			struct evtchn_close c = {.port = bv.port};
			HYPERVISOR_event_channel_op(EVTCHNOP_close, &c);
		}
	}
	events_restore(ev, was);
	tm->port = rc < 0 ? (int)rc : (int)bv.port;
	return tm->port < 0 ? tm->port : 0;
}

bool timer_ready(const struct timers *tm)
{
	return tm->port >= 0;
}

int timer_add(struct timers *tm, struct timer *t, uint64_t deadline, uint64_t period, timer_fn fn, void *arg)
{
	int rc = -XEN_ENOSPC;

	if (!timer_ready(tm))
		return -XEN_ENODEV;
	bool was = events_disable(tm->ev);
	if (t->active)
		timer_unlink(tm, t);
	if (tm->nr < TIMER_MAX) {
		t->deadline = deadline;
		t->period = period;
		t->fn = fn;
		t->arg = arg;
		t->active = true;
		tm->list[tm->nr++] = t;
		timer_program(tm);
		rc = 0;
	}
	events_restore(tm->ev, was);
	return rc;
}

void timer_cancel(struct timers *tm, struct timer *t)
{
	if (!t->active) /* fired already (one-shot) or never armed: nothing to unlink */
		return;
	bool was = events_disable(tm->ev);
	if (t->active)
		timer_unlink(tm, t);
	/* The hypervisor's timer may still fire for it: the handler then finds nothing due. */
	events_restore(tm->ev, was);
}

/* timer_wait, and with notify >= 0 timer_notify_wait: the send rides in the first block's exit
 * (one multicall), or goes alone when no block is needed. */
static int timer_wait_common(struct timers *tm, timer_cond_fn cond, void *arg, uint64_t deadline, int notify)
{
	struct timer t = {.active = false};
	int rc;

	if (!timer_ready(tm))
		return -XEN_ENODEV;
	if (cond) { /* often already true: then no timer, no hypercall but the send */
		bool was = events_disable(tm->ev);
		bool done = cond(arg);
		events_restore(tm->ev, was);
		if (done)
			return notify >= 0 ? events_send(tm->ev, (evtchn_port_t)notify) : 0;
	}
	if (deadline != TIMER_NEVER) {
		rc = timer_add(tm, &t, deadline, 0, NULL, NULL);
		if (rc < 0)
			return rc;
	}
	for (;;) {
		bool was = events_disable(tm->ev);
		if (cond && cond(arg)) {
			rc = 0;
		} else if (deadline != TIMER_NEVER && time_now_ns(tm->time) >= deadline) {
			rc = cond ? -XEN_ETIMEDOUT : 0;
		} else {
			/* The timer may have fired for a deadline our clock has not reached yet. */
			if (deadline != TIMER_NEVER && !t.active)
				timer_add(tm, &t, deadline, 0, NULL, NULL);
			long brc;
			if (notify >= 0) {
				brc = events_send_block(tm->ev, (evtchn_port_t)notify);
				notify = -1;
			} else {
				brc = events_block(tm->ev);
			}
			events_restore(tm->ev, was);
			if (brc < 0) {
				rc = (int)brc;
				break;
			}
			continue;
		}
		events_restore(tm->ev, was);
		break;
	}
	timer_cancel(tm, &t);
	if (notify >= 0) { /* the condition or the deadline came before any block */
		int src = events_send(tm->ev, (evtchn_port_t)notify);
		if (rc == 0)
			rc = src;
	}
	return rc;
}

int timer_wait(struct timers *tm, timer_cond_fn cond, void *arg, uint64_t deadline)
{
	return timer_wait_common(tm, cond, arg, deadline, -1);
}

int timer_notify_wait(struct timers *tm, evtchn_port_t port, timer_cond_fn cond, void *arg, uint64_t deadline)
{
	if (port > INT32_MAX)
		return -XEN_EINVAL;
	return timer_wait_common(tm, cond, arg, deadline, (int)port);
}

int timer_sleep_until(struct timers *tm, uint64_t deadline)
{
	return timer_wait(tm, NULL, NULL, deadline);
}

int timer_sleep_ns(struct timers *tm, uint64_t ns)
{
	return timer_sleep_until(tm, time_now_ns(tm->time) + ns);
}
