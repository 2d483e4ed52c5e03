/* hvm_op: HVM parameters, with one static table saying what a guest may read or write and which
 * parameters only the toolstack may set (once). Everything else a PVH guest could ask of hvm_op
 * belongs to device models and answers -ENOSYS. */
#include "hc_handlers.h"

#define HC_HVM_GUEST_READ 0x1u
#define HC_HVM_GUEST_WRITE 0x2u
#define HC_HVM_WRITE_ONCE 0x4u /* toolstack: a non-zero value cannot change */

_Static_assert(sizeof(struct xen_hvm_param) == 16, "xen_hvm_param is 16 bytes");
_Static_assert(offsetof(struct xen_hvm_param, index) == 4, "index at offset 4");
_Static_assert(offsetof(struct xen_hvm_param, value) == 8, "value at offset 8");

/* Parameters not listed may be neither read nor written by the guest (-EPERM). */
static const uint8_t hc_hvm_param_access[HVM_NR_PARAMS] = {
    [HVM_PARAM_CALLBACK_IRQ] = HC_HVM_GUEST_READ | HC_HVM_GUEST_WRITE,
    [HVM_PARAM_VM_GENERATION_ID_ADDR] = HC_HVM_GUEST_READ | HC_HVM_GUEST_WRITE,
    [HVM_PARAM_STORE_PFN] = HC_HVM_GUEST_READ,
    [HVM_PARAM_STORE_EVTCHN] = HC_HVM_GUEST_READ,
    [HVM_PARAM_CONSOLE_PFN] = HC_HVM_GUEST_READ,
    [HVM_PARAM_CONSOLE_EVTCHN] = HC_HVM_GUEST_READ,
    [HVM_PARAM_X87_FIP_WIDTH] = HC_HVM_GUEST_READ,
    [HVM_PARAM_ALTP2M] = HC_HVM_GUEST_READ | HC_HVM_WRITE_ONCE,
    [HVM_PARAM_VIRIDIAN] = HC_HVM_WRITE_ONCE,
    [HVM_PARAM_IOREQ_SERVER_PFN] = HC_HVM_WRITE_ONCE,
    [HVM_PARAM_NR_IOREQ_SERVER_PAGES] = HC_HVM_WRITE_ONCE,
    [HVM_PARAM_MCA_CAP] = HC_HVM_WRITE_ONCE,
};

/* The parameter a guest named, copied and checked: its own domain, an index in range. */
static long hc_hvm_param_in(struct vcpu *v, uint64_t gva, struct xen_hvm_param *p)
{
	int rc = hc_copy_in(v, p, gva, sizeof(*p));

	if (rc)
		return rc;
	if (p->index >= HVM_NR_PARAMS)
		return -EINVAL;
	if (!hc_domid_is_self(v->d, p->domid))
		return hc_domid_other_error(p->domid);
	return 0;
}

static long hc_hvm_set_param(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct domain *d = v->d;
	struct xen_hvm_param p;
	long rc = hc_hvm_param_in(v, arg[1], &p);

	if (rc)
		return rc;
	if (!(hc_hvm_param_access[p.index] & HC_HVM_GUEST_WRITE))
		return -EPERM;
	pthread_mutex_lock(&d->lock);
	d->hvm_params[p.index] = p.value;
	pthread_mutex_unlock(&d->lock);
	/* A callback vector set while an event is already pending takes it now. */
	if (p.index == HVM_PARAM_CALLBACK_IRQ && v->info &&
	    __atomic_load_n(&v->info->evtchn_upcall_pending, __ATOMIC_SEQ_CST) && d->ops->upcall)
		d->ops->upcall(v);
	return 0;
}

static long hc_hvm_get_param(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	struct domain *d = v->d;
	struct xen_hvm_param p;
	long rc = hc_hvm_param_in(v, arg[1], &p);

	if (rc)
		return rc;
	if (!(hc_hvm_param_access[p.index] & HC_HVM_GUEST_READ))
		return -EPERM;
	pthread_mutex_lock(&d->lock);
	p.value = d->hvm_params[p.index];
	pthread_mutex_unlock(&d->lock);
	return hc_copy_out(v, arg[1], &p, sizeof(p));
}

int hc_hvm_param_set_toolstack(struct domain *d, uint32_t index, uint64_t value)
{
	int rc = 0;

	if (index >= HVM_NR_PARAMS)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	if ((hc_hvm_param_access[index] & HC_HVM_WRITE_ONCE) && d->hvm_params[index] != 0 &&
	    d->hvm_params[index] != value)
		rc = -EEXIST;
	else
		d->hvm_params[index] = value;
	pthread_mutex_unlock(&d->lock);
	return rc;
}

static const struct hc_subop hc_hvm_ops[] = {
    [HVMOP_set_param] = {HVMOP_set_param, "set_param", hc_hvm_set_param},
    [HVMOP_get_param] = {HVMOP_get_param, "get_param", hc_hvm_get_param},
};

/* hvm_op(unsigned long op, void *arg): the whole 64-bit op selects the command. */
long hc_hvm_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	const struct hc_subop *op;

	if (arg[0] > UINT32_MAX)
		return -ENOSYS;
	op = hc_subop_find(hc_hvm_ops, sizeof(hc_hvm_ops) / sizeof(hc_hvm_ops[0]), (uint32_t)arg[0]);
	return op ? op->fn(v, arg) : -ENOSYS;
}
