/* Hypercall dispatch: one static table maps Xen hypercall numbers to handlers; the runner calls
 * hypercall_dispatch() on each hypercall-port exit and puts the result in the guest's rax. */
#ifndef LAMINA_HV_HYPERCALL_H
#define LAMINA_HV_HYPERCALL_H

#include <stdint.h>

struct vcpu;

#define HYPERCALL_NR_ARGS 5 /* rdi, rsi, rdx, r10, r8 */

typedef long (*hypercall_fn)(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS]);

struct hypercall_desc {
	unsigned nr;
	const char *name;
	hypercall_fn fn;
};

/* Runs hypercall nr for v; -ENOSYS for numbers without a handler. Counts it in the stats. */
long hypercall_dispatch(struct vcpu *v, uint64_t nr, const uint64_t arg[HYPERCALL_NR_ARGS]);

/* The handler's name, or NULL (for logs and `domctl top`). */
const char *hypercall_name(uint64_t nr);

/* Fill the 4 KiB page at dst with one 32-byte stub per hypercall number (see lamina/abi.h). */
void hypercall_page_fill(uint8_t *dst);

#endif
