/* sched_op: yield, block, shutdown and the shutdown code. Stopping vCPUs and acting on the reason
 * belong to the runner (domain_ops); this file validates what the guest asked for. */
#include "hc_handlers.h"

#include <xen/sched.h>

_Static_assert(sizeof(struct sched_shutdown) == 4, "sched_shutdown is 4 bytes");
_Static_assert(sizeof(struct sched_remote_shutdown) == 8, "sched_remote_shutdown is 8 bytes");

static long hc_sched_yield(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	v->d->ops->yield(v);
	return 0;
}

/* The runner sleeps the vCPU and accounts its runstate (blocked, then running again). */
static long hc_sched_block(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	return v->d->ops->block(v);
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

/* SCHEDOP_poll and SCHEDOP_watchdog need event channels and timers; they have no row yet, so
 * they answer -ENOSYS like any command Lamina does not implement. */
static const struct hc_subop hc_sched_ops[] = {
    [SCHEDOP_yield] = {SCHEDOP_yield, "yield", hc_sched_yield},
    [SCHEDOP_block] = {SCHEDOP_block, "block", hc_sched_block},
    [SCHEDOP_shutdown] = {SCHEDOP_shutdown, "shutdown", hc_sched_shutdown},
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
