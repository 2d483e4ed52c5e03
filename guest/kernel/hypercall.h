/* Hypercalls of the Lamina guest kernel: calls through the hypercall page the hypervisor filled
 * (stub nr at page + 32 * nr, Xen's x86-64 registers) and the raw port trap for any number. */
#ifndef GUEST_KERNEL_HYPERCALL_H
#define GUEST_KERNEL_HYPERCALL_H

#include <stdint.h>
#include <xen/xen.h>
#include <xen/version.h>
#include <xen/sched.h>
#include <xen/memory.h>
#include <xen/vcpu.h>
#include <xen/hvm/hvm_op.h>
#include <xen/hvm/params.h>
#include <xen/event_channel.h>
#include <xen/callback.h>
#include <lamina/abi.h>
#include "boot.h"

#define HYPERCALL_PAGE_SLOTS (GUEST_PAGE_SIZE / LAMINA_HYPERCALL_STUB_SIZE)
_Static_assert(sizeof(struct multicall_entry) == 64, "multicall_entry is 64 bytes on x86-64");

/* Xen's convention: rdi, rsi, rdx, r10, r8 in, rax out. The stub may not touch anything else,
 * but every argument register is declared clobbered so a buggy stub cannot corrupt our state. */
static inline long hypercall_call(unsigned int nr, unsigned long a1, unsigned long a2, unsigned long a3,
				  unsigned long a4, unsigned long a5)
{
	register unsigned long r10 __asm__("r10") = a4;
	register unsigned long r8 __asm__("r8") = a5;
	unsigned long stub =
	    (unsigned long)lamina_hypercall_page + (unsigned long)nr * LAMINA_HYPERCALL_STUB_SIZE;
	long ret;

	__asm__ volatile("call *%[stub]"
			 : "=a"(ret), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8)
			 : [stub] "c"(stub)
			 : "memory", "cc", "r9", "r11");
	return ret;
}

/* The trap itself, without the page: how a hostile test reaches numbers beyond the page. */
static inline long hypercall_trap(uint32_t nr, unsigned long a1, unsigned long a2, unsigned long a3,
				  unsigned long a4, unsigned long a5)
{
	register unsigned long r10 __asm__("r10") = a4;
	register unsigned long r8 __asm__("r8") = a5;
	long ret;

	__asm__ volatile("outl %%eax, %[port]"
			 : "=a"(ret), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8)
			 : "a"(nr), [port] "i"(LAMINA_PORT_HYPERCALL)
			 : "memory", "cc");
	return ret;
}

/* One `out` to the null port: an exit that does nothing, the floor of every hypercall. */
static inline void hypercall_null_exit(void)
{
	__asm__ volatile("outb %%al, %[port]" : : "a"(0), [port] "i"(LAMINA_PORT_NULL) : "memory");
}

#define HC_ARG(x) ((unsigned long)(x))

static inline long HYPERVISOR_xen_version(int cmd, void *arg)
{
	return hypercall_call(__HYPERVISOR_xen_version, HC_ARG(cmd), HC_ARG(arg), 0, 0, 0);
}

static inline long HYPERVISOR_console_io(int cmd, unsigned long count, const char *buf)
{
	return hypercall_call(__HYPERVISOR_console_io, HC_ARG(cmd), count, HC_ARG(buf), 0, 0);
}

static inline long HYPERVISOR_sched_op(int cmd, void *arg)
{
	return hypercall_call(__HYPERVISOR_sched_op, HC_ARG(cmd), HC_ARG(arg), 0, 0, 0);
}

static inline long HYPERVISOR_memory_op(unsigned int cmd, void *arg)
{
	return hypercall_call(__HYPERVISOR_memory_op, cmd, HC_ARG(arg), 0, 0, 0);
}

static inline long HYPERVISOR_hvm_op(int op, void *arg)
{
	return hypercall_call(__HYPERVISOR_hvm_op, HC_ARG(op), HC_ARG(arg), 0, 0, 0);
}

static inline long HYPERVISOR_vcpu_op(int cmd, unsigned int vcpu, void *arg)
{
	return hypercall_call(__HYPERVISOR_vcpu_op, HC_ARG(cmd), vcpu, HC_ARG(arg), 0, 0);
}

static inline long HYPERVISOR_multicall(struct multicall_entry *calls, unsigned int nr)
{
	return hypercall_call(__HYPERVISOR_multicall, HC_ARG(calls), nr, 0, 0, 0);
}

static inline long HYPERVISOR_event_channel_op(int cmd, void *arg)
{
	return hypercall_call(__HYPERVISOR_event_channel_op, HC_ARG(cmd), HC_ARG(arg), 0, 0, 0);
}

static inline long HYPERVISOR_callback_op(int cmd, const void *arg)
{
	return hypercall_call(__HYPERVISOR_callback_op, HC_ARG(cmd), HC_ARG(arg), 0, 0, 0);
}

/* Absolute system time in ns (x86-64 passes the 64-bit value in one register); 0 cancels. */
static inline long HYPERVISOR_set_timer_op(uint64_t timeout)
{
	return hypercall_call(__HYPERVISOR_set_timer_op, timeout, 0, 0, 0, 0);
}

static inline long hypercall_get_param(uint32_t index, uint64_t *value)
{
	struct xen_hvm_param p = {.domid = DOMID_SELF, .index = index};
	long rc = HYPERVISOR_hvm_op(HVMOP_get_param, &p);

	if (rc == 0)
		*value = p.value;
	return rc;
}

static inline long hypercall_shutdown(unsigned int reason)
{
	struct sched_shutdown s = {.reason = reason};

	return HYPERVISOR_sched_op(SCHEDOP_shutdown, &s);
}

#endif
