/* callback_op: where a ring-3 guest kernel wants its event upcalls (CALLBACKTYPE_event). The
 * frame the hypervisor builds is described in include/lamina/abi.h. The other callback types
 * belong to Xen's PV guests; a PVH guest gets -ENOSYS for them, as from Xen. */
#include "hc_handlers.h"

#include <xen/callback.h>

_Static_assert(sizeof(struct callback_register) == 16, "callback_register is 16 bytes");
_Static_assert(offsetof(struct callback_register, address) == 8, "callback address at offset 8");
_Static_assert(sizeof(struct callback_unregister) == 4, "callback_unregister is 4 bytes");

/* A canonical 48-bit address (the callback runs in the guest's current address space). */
static bool hc_callback_canonical(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

static long hc_callback_register(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct callback_register cb;
	long rc = hc_copy_in(v, &cb, arg[1], sizeof(cb));

	if (rc)
		return rc;
	if (cb.type != CALLBACKTYPE_event)
		return -ENOSYS;
	if (cb.flags & ~CALLBACKF_mask_events)
		return -EINVAL;
	if (!cb.address || !hc_callback_canonical(cb.address))
		return -EINVAL;
	/* Every vCPU of the domain takes events at the same entry (Xen PV registers per vCPU;
	 * Lamina's kernel registers once, from vCPU 0). */
	for (unsigned i = 0; i < v->d->nr_vcpus; i++)
		if (v->d->vcpu[i])
			__atomic_store_n(&v->d->vcpu[i]->event_callback, cb.address, __ATOMIC_RELEASE);
	/* Something may already be pending: the vCPU takes it at its next resume. */
	if (v->info && __atomic_load_n(&v->info->evtchn_upcall_pending, __ATOMIC_ACQUIRE) && v->d->ops->upcall)
		v->d->ops->upcall(v);
	return 0;
}

static long hc_callback_unregister(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct callback_unregister cb;
	long rc = hc_copy_in(v, &cb, arg[1], sizeof(cb));

	if (rc)
		return rc;
	if (cb.type != CALLBACKTYPE_event)
		return -ENOSYS;
	for (unsigned i = 0; i < v->d->nr_vcpus; i++)
		if (v->d->vcpu[i])
			__atomic_store_n(&v->d->vcpu[i]->event_callback, 0, __ATOMIC_RELEASE);
	return 0;
}

static const struct hc_subop hc_callback_ops[] = {
    [CALLBACKOP_register] = {CALLBACKOP_register, "register", hc_callback_register},
    [CALLBACKOP_unregister] = {CALLBACKOP_unregister, "unregister", hc_callback_unregister},
};

/* callback_op(int cmd, void *arg) */
long hc_callback_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	const struct hc_subop *op = hc_subop_find(
	    hc_callback_ops, sizeof(hc_callback_ops) / sizeof(hc_callback_ops[0]), (uint32_t)arg[0]);

	return op ? op->fn(v, arg) : -ENOSYS;
}
