/* vcpu_op: whether a vCPU is up, its runstate times, and moving its vcpu_info out of shared_info
 * into a guest page; the timer commands live in hc_timer.c. */
#include <string.h>

#include "hc_handlers.h"

_Static_assert(sizeof(struct vcpu_runstate_info) == 48, "vcpu_runstate_info is 48 bytes");
_Static_assert(sizeof(struct vcpu_register_vcpu_info) == 16, "vcpu_register_vcpu_info is 16");
_Static_assert(sizeof(struct vcpu_info) == 64, "vcpu_info is 64 bytes");

struct hc_vcpu_subop {
	unsigned cmd;
	const char *name;
	long (*fn)(struct vcpu *v, struct vcpu *target, uint64_t gva);
};

static long hc_vcpu_is_up(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	return target->online ? 1 : 0;
}

/* A snapshot of target's runstate with the current state's time counted up to now. */
static long hc_vcpu_get_runstate(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	struct vcpu_runstate_info r = target->runstate;
	uint64_t now = domain_now_ns(v->d);

	if (r.state >= 0 && r.state < 4 && now > r.state_entry_time) {
		r.time[r.state] += now - r.state_entry_time;
		r.state_entry_time = now;
	}
	return hc_copy_out(v, gva, &r, sizeof(r));
}

/* Xen's rules: once per vCPU, on itself or on a vCPU that is down; the structure must fit in one
 * guest RAM page. The current contents move with it and every event is marked pending, so
 * nothing raised during the switch is lost. */
static long hc_vcpu_register_info(struct vcpu *v, struct vcpu *target, uint64_t gva)
{
	struct domain *d = v->d;
	struct vcpu_register_vcpu_info ri;
	struct vcpu_info *info;
	uint64_t gpa;
	long rc = hc_copy_in(v, &ri, gva, sizeof(ri));

	if (rc)
		return rc;
	if (ri.offset > GMEM_PAGE_SIZE - sizeof(struct vcpu_info))
		return -EINVAL;
	if (ri.mfn >= d->mem.ram_size / GMEM_PAGE_SIZE)
		return -EINVAL;
	gpa = ri.mfn * GMEM_PAGE_SIZE + ri.offset;
	info = gmem_gpa_ptr(&d->mem, gpa, sizeof(*info));
	if (!info)
		return -EINVAL;

	pthread_mutex_lock(&d->lock);
	if (target->info_gpa != UINT64_MAX || (target != v && target->online)) {
		rc = -EINVAL;
		goto out_unlock;
	}
	if (target->info)
		memcpy(info, target->info, sizeof(*info));
	else
		memset(info, 0, sizeof(*info));
	target->info = info;
	target->info_gpa = gpa;
	__atomic_store_n(&info->evtchn_upcall_pending, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&info->evtchn_pending_sel, ~(xen_ulong_t)0, __ATOMIC_RELEASE);
	rc = 0;
out_unlock:
	pthread_mutex_unlock(&d->lock);
	if (rc == 0)
		shared_info_update_time(target);
	return rc;
}

static const struct hc_vcpu_subop hc_vcpu_ops[] = {
    [VCPUOP_is_up] = {VCPUOP_is_up, "is_up", hc_vcpu_is_up},
    [VCPUOP_get_runstate_info] = {VCPUOP_get_runstate_info, "get_runstate_info", hc_vcpu_get_runstate},
    [VCPUOP_set_periodic_timer] = {VCPUOP_set_periodic_timer, "set_periodic_timer", hc_vcpu_set_periodic},
    [VCPUOP_stop_periodic_timer] = {VCPUOP_stop_periodic_timer, "stop_periodic_timer", hc_vcpu_stop_periodic},
    [VCPUOP_set_singleshot_timer] = {VCPUOP_set_singleshot_timer, "set_singleshot_timer", hc_vcpu_set_singleshot},
    [VCPUOP_stop_singleshot_timer] = {VCPUOP_stop_singleshot_timer, "stop_singleshot_timer", hc_vcpu_stop_singleshot},
    [VCPUOP_register_vcpu_info] = {VCPUOP_register_vcpu_info, "register_vcpu_info", hc_vcpu_register_info},
};

/* vcpu_op(int cmd, unsigned int vcpuid, void *arg) */
long hc_vcpu_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct domain *d = v->d;
	uint32_t cmd = (uint32_t)arg[0];
	uint32_t id = (uint32_t)arg[1];
	const struct hc_vcpu_subop *op;

	if (cmd >= sizeof(hc_vcpu_ops) / sizeof(hc_vcpu_ops[0]) || !hc_vcpu_ops[cmd].fn)
		return -ENOSYS;
	op = &hc_vcpu_ops[cmd];
	if (id >= d->nr_vcpus || id >= LAMINA_MAX_VCPUS || !d->vcpu[id])
		return -ENOENT;
	return op->fn(v, d->vcpu[id], arg[2]);
}
