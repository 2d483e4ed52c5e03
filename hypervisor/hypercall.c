/* The hypercall table, dispatch on every hypercall-port exit, the hypercall page's stubs, and
 * multicall (many calls for one exit, the cheapest way to make several calls on this platform). */
#include <stdatomic.h>
#include <string.h>

#include "grant_table.h"
#include "hc_handlers.h"

/* Rows are indexed by __HYPERVISOR_* number. A new hypercall is one row and one hc_*.c file.
 * Numbers without a row answer -ENOSYS, as Xen answers a PVH guest for the PV-only calls
 * (sched_op_compat, mmu_update, set_trap_table, ...). */
static const struct hypercall_desc hypercall_table[] = {
    [__HYPERVISOR_memory_op] = {__HYPERVISOR_memory_op, "memory_op", hc_memory_op},
    [__HYPERVISOR_multicall] = {__HYPERVISOR_multicall, "multicall", hc_multicall},
    [__HYPERVISOR_xen_version] = {__HYPERVISOR_xen_version, "xen_version", hc_xen_version},
    [__HYPERVISOR_console_io] = {__HYPERVISOR_console_io, "console_io", hc_console_io},
    [__HYPERVISOR_vcpu_op] = {__HYPERVISOR_vcpu_op, "vcpu_op", hc_vcpu_op},
    [__HYPERVISOR_sched_op] = {__HYPERVISOR_sched_op, "sched_op", hc_sched_op},
    [__HYPERVISOR_hvm_op] = {__HYPERVISOR_hvm_op, "hvm_op", hc_hvm_op},
    [__HYPERVISOR_set_timer_op] = {__HYPERVISOR_set_timer_op, "set_timer_op", hc_set_timer_op},
    [__HYPERVISOR_callback_op] = {__HYPERVISOR_callback_op, "callback_op", hc_callback_op},
    [__HYPERVISOR_event_channel_op] = {__HYPERVISOR_event_channel_op, "event_channel_op", hc_event_channel_op},
    [__HYPERVISOR_grant_table_op] = {__HYPERVISOR_grant_table_op, "grant_table_op", hc_grant_table_op},
};

#define HYPERCALL_TABLE_SIZE (sizeof(hypercall_table) / sizeof(hypercall_table[0]))
_Static_assert(HYPERCALL_TABLE_SIZE <= DOMAIN_HC_STATS, "every row has a stats counter");
_Static_assert(HYPERCALL_TABLE_SIZE *LAMINA_HYPERCALL_STUB_SIZE <= 4096, "stubs fit the page");

/* Calls in one multicall; a longer list is refused whole (-EINVAL) before anything runs. */
#define HYPERCALL_MULTICALL_MAX 4096u

_Static_assert(sizeof(struct multicall_entry) == 64, "multicall_entry is 64 bytes");
_Static_assert(offsetof(struct multicall_entry, result) == 8, "result at offset 8");
_Static_assert(offsetof(struct multicall_entry, args) == 16, "args at offset 16");

/* The row for nr, or NULL. The index is clamped without a branch so a mispredicted bound check
 * cannot read past the table. */
static inline const struct hypercall_desc *hypercall_lookup(uint64_t nr)
{
	uint64_t in = (uint64_t)0 - (uint64_t)(nr < HYPERCALL_TABLE_SIZE);
	const struct hypercall_desc *h = &hypercall_table[nr & in];

	return (in && h->fn) ? h : NULL;
}

static inline void hypercall_count(struct vcpu *v, uint64_t nr)
{
	if (nr < DOMAIN_HC_STATS)
		atomic_fetch_add_explicit(&v->d->hc_count[nr], 1, memory_order_relaxed);
}

long hypercall_dispatch(struct vcpu *v, uint64_t nr, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	const struct hypercall_desc *h = hypercall_lookup(nr);

	/* Only v's own thread writes v->hypercalls: a plain load and store is enough. */
	atomic_store_explicit(&v->hypercalls, atomic_load_explicit(&v->hypercalls, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	hypercall_count(v, nr);
	if (!h)
		return -ENOSYS;
	return h->fn(v, arg);
}

const char *hypercall_name(uint64_t nr)
{
	const struct hypercall_desc *h = hypercall_lookup(nr);

	return h ? h->name : NULL;
}

void hypercall_page_fill(uint8_t *dst)
{
	memset(dst, 0xcc, GMEM_PAGE_SIZE);
	for (unsigned nr = 0; nr < GMEM_PAGE_SIZE / LAMINA_HYPERCALL_STUB_SIZE; nr++) {
		uint8_t *s = dst + nr * LAMINA_HYPERCALL_STUB_SIZE;

		s[0] = 0xb8; /* mov $nr, %eax */
		s[1] = nr & 0xff;
		s[2] = (nr >> 8) & 0xff;
		s[3] = 0;
		s[4] = 0;
		s[5] = 0xe7; /* out %eax, $port */
		s[6] = LAMINA_PORT_HYPERCALL;
		s[7] = 0xc3; /* ret */
	}
}

/* One entry: copied in once, run through the table, its result stored back. -EFAULT if the entry
 * itself cannot be read or written: that ends the whole multicall. */
static int hypercall_multicall_one(struct vcpu *v, uint64_t gva)
{
	struct multicall_entry e;
	const struct hypercall_desc *h;
	uint64_t args[HYPERCALL_NR_ARGS];
	uint64_t result;

	if (gmem_copy_from_guest(v, &e, gva, sizeof(e)))
		return -EFAULT;
	for (unsigned i = 0; i < HYPERCALL_NR_ARGS; i++)
		args[i] = e.args[i];
	h = hypercall_lookup(e.op);
	hypercall_count(v, e.op);
	result = h ? (uint64_t)h->fn(v, args) : (uint64_t)-ENOSYS;
	if (gmem_copy_to_guest(v, gva + offsetof(struct multicall_entry, result), &result, sizeof(result)))
		return -EFAULT;
	return 0;
}

/* multicall(multicall_entry_t list[], uint32_t nr_calls): 0, and a result in every entry. */
long hc_multicall(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	uint64_t list = arg[0];
	uint32_t nr_calls = (uint32_t)arg[1];
	long rc = 0;

	if (v->in_multicall)
		return -EINVAL; /* a multicall inside a multicall fails in its own entry */
	if (nr_calls > HYPERCALL_MULTICALL_MAX)
		return -EINVAL;
	if (nr_calls == 0)
		return 0;
	if (!list || (uint64_t)nr_calls * sizeof(struct multicall_entry) - 1 > UINT64_MAX - list)
		return -EFAULT;
	v->in_multicall = true;
	for (uint32_t i = 0; i < nr_calls; i++) {
		rc = hypercall_multicall_one(v, list + (uint64_t)i * sizeof(struct multicall_entry));
		if (rc)
			break;
	}
	v->in_multicall = false;
	return rc;
}
