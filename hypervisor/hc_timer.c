/* Timers: set_timer_op and the VCPUOP singleshot/periodic timer commands. Each vCPU has Xen's two
 * timers (singleshot, shared by set_timer_op, and periodic); both raise VIRQ_TIMER on that vCPU
 * from the event thread's timerfds (event_channel.h), so a blocked vCPU simply sleeps. */
#include "hc_handlers.h"

#include <xen/vcpu.h>

_Static_assert(sizeof(struct vcpu_set_singleshot_timer) == 16, "singleshot timer is 16 bytes");
_Static_assert(sizeof(struct vcpu_set_periodic_timer) == 8, "periodic timer is 8 bytes");

/* Xen refuses periods below 1 ms (and clamps nothing above). */
#define HC_TIMER_MIN_PERIOD_NS 1000000ull

/* set_timer_op(uint64_t timeout): absolute domain system time in ns; 0 cancels. */
long hc_set_timer_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	if (!v->d->evw)
		return -ENOSYS;
	return evtchn_timer_set(v, EVTCHN_TIMER_SINGLE, arg[0], 0);
}

/* v is the caller, target the vCPU named; Xen allows these on the caller only. */
long hc_vcpu_set_singleshot(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	struct vcpu_set_singleshot_timer t;
	long rc;

	if (target != v)
		return -EINVAL;
	rc = hc_copy_in(v, &t, gva, sizeof(t));
	if (rc)
		return rc;
	if (t.flags & ~VCPU_SSHOTTMR_future)
		return -EINVAL;
	if ((t.flags & VCPU_SSHOTTMR_future) && t.timeout_abs_ns < domain_now_ns(v->d))
		return -ETIME;
	if (!v->d->evw)
		return -ENOSYS;
	return evtchn_timer_set(v, EVTCHN_TIMER_SINGLE, t.timeout_abs_ns ? t.timeout_abs_ns : 1, 0);
}

long hc_vcpu_stop_singleshot(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	if (target != v)
		return -EINVAL;
	if (!v->d->evw)
		return -ENOSYS;
	return evtchn_timer_set(v, EVTCHN_TIMER_SINGLE, 0, 0);
}

long hc_vcpu_set_periodic(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	struct vcpu_set_periodic_timer t;
	long rc;

	if (target != v)
		return -EINVAL;
	rc = hc_copy_in(v, &t, gva, sizeof(t));
	if (rc)
		return rc;
	if (t.period_ns < HC_TIMER_MIN_PERIOD_NS)
		return -EINVAL;
	if (!v->d->evw)
		return -ENOSYS;
	return evtchn_timer_set(v, EVTCHN_TIMER_PERIODIC, domain_now_ns(v->d) + t.period_ns, t.period_ns);
}

long hc_vcpu_stop_periodic(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	if (target != v)
		return -EINVAL;
	if (!v->d->evw)
		return -ENOSYS;
	return evtchn_timer_set(v, EVTCHN_TIMER_PERIODIC, 0, 0);
}
