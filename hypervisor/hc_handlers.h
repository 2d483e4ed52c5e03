/* The hypercall layer's handlers, one per Xen hypercall family, and the guest-pointer helpers they
 * share. hypercall.c's table is the only caller of the handlers; other modules use hypercall.h. */
#ifndef LAMINA_HV_HC_HANDLERS_H
#define LAMINA_HV_HC_HANDLERS_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <xen/errno.h>

#include "domain.h"
#include "hypercall.h"

/* Xen's errno values are Linux's on x86; handlers return plain -Exxx. */
_Static_assert(XEN_EPERM == EPERM && XEN_ENOENT == ENOENT && XEN_ESRCH == ESRCH, "xen errno");
_Static_assert(XEN_EFAULT == EFAULT && XEN_EINVAL == EINVAL && XEN_ENOSYS == ENOSYS, "xen errno");
_Static_assert(XEN_EEXIST == EEXIST && XEN_ENODATA == ENODATA && XEN_EDOM == EDOM, "xen errno");
_Static_assert(XEN_EACCES == EACCES, "xen errno");

/* One row of a sub-command table (xen_version, sched_op, ...): same shape as the top table. */
struct hc_subop {
	unsigned cmd;
	const char *name;
	long (*fn)(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS]);
};

/* Find cmd in a sub-command table of n rows indexed by command number; NULL if absent. Xen's
 * handlers take the command as a 32-bit int, so callers pass the low 32 bits of the argument. */
static inline const struct hc_subop *hc_subop_find(const struct hc_subop *tab, size_t n, uint32_t cmd)
{
	if (cmd >= n || !tab[cmd].fn)
		return NULL;
	return &tab[cmd];
}

/* Copies for handlers: a guest pointer of 0 is never valid for an argument struct. */
static inline int hc_copy_in(struct vcpu *v, void *dst, uint64_t gva, size_t len)
{
	if (!gva)
		return -EFAULT;
	return gmem_copy_from_guest(v, dst, gva, len);
}

static inline int hc_copy_out(struct vcpu *v, uint64_t gva, const void *src, size_t len)
{
	if (!gva)
		return -EFAULT;
	return gmem_copy_to_guest(v, gva, src, len);
}

/* Handlers, one per hypercall number (hc_<family>.c). */
long hc_xen_version(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS]);
long hc_console_io(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS]);
long hc_sched_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS]);
long hc_memory_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS]);
long hc_hvm_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS]);
long hc_vcpu_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS]);
long hc_multicall(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS]);
long hc_event_channel_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS]);
long hc_callback_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS]);
long hc_set_timer_op(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS]);

/* hc_timer.c: the VCPUOP timer commands, rows of hc_vcpu.c's table (v calls, target named). */
long hc_vcpu_set_singleshot(struct vcpu *v, struct vcpu *target, uint64_t gva);
long hc_vcpu_stop_singleshot(struct vcpu *v, struct vcpu *target, uint64_t gva);
long hc_vcpu_set_periodic(struct vcpu *v, struct vcpu *target, uint64_t gva);
long hc_vcpu_stop_periodic(struct vcpu *v, struct vcpu *target, uint64_t gva);

/* Is domid the caller's own domain (DOMID_SELF or its id)? */
static inline int hc_domid_is_self(const struct domain *d, uint16_t domid)
{
	return domid == DOMID_SELF || domid == d->domid;
}

/* The answer for a domid that is not the caller's: Lamina guests are never privileged over other
 * domains, so a real domain id is refused (-EPERM) and a reserved one does not exist (-ESRCH). */
static inline long hc_domid_other_error(uint16_t domid)
{
	return domid >= DOMID_FIRST_RESERVED ? -ESRCH : -EPERM;
}

/* hc_hvm.c: the toolstack's (not a guest's) way to set a parameter such as STORE_PFN; honours the
 * write-once parameters. 0, -EINVAL (index), -EEXIST (write-once already set). */
int hc_hvm_param_set_toolstack(struct domain *d, uint32_t index, uint64_t value);

/* shared_info.c: Xen's pvclock scale for a TSC of hz ticks per second (-EINVAL for 0), and the
 * guest's conversion of a TSC delta to ns with it. */
int shared_info_time_scale(uint64_t hz, uint32_t *mul, int8_t *shift);
uint64_t shared_info_scale_delta(uint64_t delta, uint32_t mul, int8_t shift);

/* hc_memory.c: an e820 entry as XENMEM_memory_map returns it (BIOS INT 15h/E820 layout). */
struct hc_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct hc_e820_entry) == 20, "e820 entry is 20 bytes");

#endif
