/* Timers of the guest kernel: a small list of one-shot and periodic timers on VIRQ_TIMER, driven by
 * set_timer_op (absolute system time), and the blocking waits built on them (sleep, wait-until). */
#ifndef GUEST_KERNEL_TIMER_H
#define GUEST_KERNEL_TIMER_H

#include <stdbool.h>
#include <stdint.h>
#include "events.h"

#define TIMER_MAX 8
#define TIMER_NEVER UINT64_MAX

struct kernel_time;
struct timer;
/* Runs in upcall context (VIRQ_TIMER handler): keep it short, never print, never block. */
typedef void (*timer_fn)(struct timer *t, void *arg);
/* A wake-up condition, evaluated with events disabled. */
typedef bool (*timer_cond_fn)(void *arg);

/* Owned by its caller; registered by pointer, so it must be cancelled before it goes away. */
struct timer {
	uint64_t deadline; /* system time, ns */
	uint64_t period;   /* 0: one-shot */
	timer_fn fn;
	void *arg;
	bool active;
	uint64_t fired;
};

struct timers {
	struct events *ev;
	const struct kernel_time *time;
	int port;		       /* VIRQ_TIMER's port, or -errno */
	struct timer *list[TIMER_MAX]; /* the active timers, dense: list[0..nr) */
	unsigned int nr;
	uint64_t programmed; /* deadline the hypervisor holds (last set_timer_op), 0 when none */
	/* virqs: VIRQ_TIMER upcalls; early: those with nothing due; set_calls: set_timer_op calls;
	 * kept: re-programmings skipped because an earlier deadline was already armed. */
	uint64_t virqs, fired, early, set_calls, kept;
};

/* Binds VIRQ_TIMER and stops any periodic timer the hypervisor might run. 0 or -errno. */
int timer_init(struct timers *tm, struct events *ev, const struct kernel_time *time);
bool timer_ready(const struct timers *tm);

/* Arms t at the absolute system time deadline (and every period ns after, if period). 0 or
 * -ENOSPC when TIMER_MAX timers are active, -ENODEV without VIRQ_TIMER. */
int timer_add(struct timers *tm, struct timer *t, uint64_t deadline, uint64_t period, timer_fn fn, void *arg);
void timer_cancel(struct timers *tm, struct timer *t);

/* Blocks (SCHEDOP_block, events enabled) until cond(arg) holds: 0; or until the system time
 * reaches deadline: -ETIMEDOUT (TIMER_NEVER: no deadline). -ENODEV without events. cond may be
 * NULL: then it only sleeps until the deadline and returns 0. */
int timer_wait(struct timers *tm, timer_cond_fn cond, void *arg, uint64_t deadline);
/* EVTCHNOP_send on port, then timer_wait: the send and the first SCHEDOP_block share one exit
 * (a multicall); when cond already holds or the deadline passed, the send goes alone. For a
 * request/reply exchange: publish the request, then call this instead of a send and a wait.
 * Returns as timer_wait, or the send's -errno when the wait itself succeeded. */
int timer_notify_wait(struct timers *tm, evtchn_port_t port, timer_cond_fn cond, void *arg,
		      uint64_t deadline);
int timer_sleep_until(struct timers *tm, uint64_t deadline);
int timer_sleep_ns(struct timers *tm, uint64_t ns);

#endif
