/* sched_op: yield, block, poll, shutdown and the shutdown code. Stopping vCPUs and acting on the reason
 * belong to the runner (domain_ops); this file validates what the guest asked for. */
#include "hc_handlers.h"

#include <xen/sched.h>

_Static_assert(sizeof(struct sched_shutdown) == 4, "sched_shutdown is 4 bytes");
_Static_assert(sizeof(struct sched_remote_shutdown) == 8, "sched_remote_shutdown is 8 bytes");
_Static_assert(sizeof(struct sched_poll) == 24, "sched_poll is 24 bytes");
_Static_assert(offsetof(struct sched_poll, timeout) == 16, "sched_poll.timeout at offset 16");

static long hc_sched_yield(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	v->d->ops->yield(v);
	return 0;
}

static bool hc_sched_upcall_pending(struct vcpu *v)
{
	return v->info && __atomic_load_n(&v->info->evtchn_upcall_pending, __ATOMIC_SEQ_CST);
}

/* Xen's semantics: event delivery is enabled (evtchn_upcall_mask cleared), and the call returns
 * at once if an event is pending, else when one becomes pending. The runner sleeps the vCPU
 * (no host CPU) and accounts its runstate; a pause or destroy also ends the call. */
static long hc_sched_block(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	if (v->info)
		__atomic_store_n(&v->info->evtchn_upcall_mask, 0, __ATOMIC_SEQ_CST);
	while (!hc_sched_upcall_pending(v)) {
		int rc = v->d->ops->block(v, 0);
		if (rc < 0)
			return rc;
		if (rc != 0 || !v->info)
			break; /* paused or stopped: the runner parks the vCPU */
	}
	return 0;
}

/* Any of the named ports pending? Ports were checked against the table's bound on entry. */
static bool hc_sched_poll_ready(struct vcpu *v, const evtchn_port_t *ports, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (evtchn_is_pending(v->d, ports[i]))
			return true;
	return v->info && hc_sched_upcall_pending(v) && !__atomic_load_n(&v->info->evtchn_upcall_mask,
									   __ATOMIC_SEQ_CST);
}

/* SCHEDOP_poll: sleep until one of up to EVTCHN_POLL_MAX ports is pending (masked or not), an
 * unmasked event needs delivery, or the timeout (absolute domain system time, 0: none) passes. */
static long hc_sched_poll(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	evtchn_port_t ports[EVTCHN_POLL_MAX];
	struct domain *d = v->d;
	struct sched_poll p;
	uint64_t deadline = 0;
	long rc = hc_copy_in(v, &p, arg[1], sizeof(p));

	if (rc)
		return rc;
	if (p.nr_ports > EVTCHN_POLL_MAX)
		return -EINVAL;
	if (p.nr_ports) {
		rc = hc_copy_in(v, ports, (uint64_t)(uintptr_t)p.ports.p, p.nr_ports * sizeof(ports[0]));
		if (rc)
			return rc;
	}
	for (unsigned i = 0; i < p.nr_ports; i++)
		if (ports[i] > EVTCHN_2L_MAX_PORT || ports[i] > (d->evtchn ? d->evtchn->max_port : 0))
			return -EINVAL;
	if (p.timeout) {
		deadline = d->boot_mono_ns + p.timeout;
		if (deadline < p.timeout)
			deadline = UINT64_MAX - 1;
	}
	atomic_store(&v->polling, true);
	atomic_fetch_add(&d->nr_polling, 1);
	while (!hc_sched_poll_ready(v, ports, p.nr_ports)) {
		if (d->ops->block(v, deadline) != 0)
			break; /* timed out, or paused / stopped */
	}
	atomic_fetch_sub(&d->nr_polling, 1);
	atomic_store(&v->polling, false);
	return 0;
}

/* The reason a guest passed, copied and checked: 0..SHUTDOWN_MAX. */
static long hc_sched_reason(struct vcpu *v, uint64_t gva, unsigned *reason)
{
	struct sched_shutdown s;
	int rc = hc_copy_in(v, &s, gva, sizeof(s));

	if (rc)
		return rc;
	if (s.reason > SHUTDOWN_MAX)
		return -EINVAL;
	*reason = s.reason;
	return 0;
}

static long hc_sched_shutdown(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	unsigned reason;
	long rc = hc_sched_reason(v, arg[1], &reason);

	if (rc)
		return rc;
	v->d->ops->shutdown(v->d, reason);
	return 0;
}

/* Latches the code the domain will report when it stops; the first one set stays. */
static long hc_sched_shutdown_code(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct domain *d = v->d;
	unsigned reason;
	long rc = hc_sched_reason(v, arg[1], &reason);

	if (rc)
		return rc;
	pthread_mutex_lock(&d->lock);
	if (d->shutdown_code < 0)
		d->shutdown_code = (int)reason;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* Only a device model or the control domain may shut another (or its own) domain down this way. */
static long hc_sched_remote_shutdown(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct sched_remote_shutdown rs;
	int rc = hc_copy_in(v, &rs, arg[1], sizeof(rs));

	if (rc)
		return rc;
	if (hc_domid_is_self(v->d, rs.domain_id))
		return -EPERM;
	return hc_domid_other_error(rs.domain_id);
}

/* Reserved for the hardware domain. */
static long hc_sched_pin_override(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	return -EPERM;
}

/* SCHEDOP_watchdog has no row: -ENOSYS like any command Lamina does not implement. */
static const struct hc_subop hc_sched_ops[] = {
    [SCHEDOP_yield] = {SCHEDOP_yield, "yield", hc_sched_yield},
    [SCHEDOP_block] = {SCHEDOP_block, "block", hc_sched_block},
    [SCHEDOP_shutdown] = {SCHEDOP_shutdown, "shutdown", hc_sched_shutdown},
    [SCHEDOP_poll] = {SCHEDOP_poll, "poll", hc_sched_poll},
    [SCHEDOP_remote_shutdown] = {SCHEDOP_remote_shutdown, "remote_shutdown", hc_sched_remote_shutdown},
    [SCHEDOP_shutdown_code] = {SCHEDOP_shutdown_code, "shutdown_code", hc_sched_shutdown_code},
    [SCHEDOP_pin_override] = {SCHEDOP_pin_override, "pin_override", hc_sched_pin_override},
};

/* sched_op(int cmd, void *arg) */
long hc_sched_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	const struct hc_subop *op =
	    hc_subop_find(hc_sched_ops, sizeof(hc_sched_ops) / sizeof(hc_sched_ops[0]), (uint32_t)arg[0]);

	return op ? op->fn(v, arg) : -ENOSYS;
}
