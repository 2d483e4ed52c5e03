/* Exceptions of the guest kernel: the IDT's gates (filled from ring 3, the page is writable)
 * and the ring-0 reporter that prints vector/rip/cr2 and crashes the domain. */
#ifndef GUEST_KERNEL_TRAPS_H
#define GUEST_KERNEL_TRAPS_H

#include <stdint.h>

/* What arch/traps_entry.S pushes, lowest address first. */
struct traps_frame {
	uint64_t cr2;
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};
_Static_assert(sizeof(struct traps_frame) == 23 * 8, "traps_frame matches traps_entry.S");

/* Points the 32 exception vectors at their ring-0 stubs. */
void traps_init(void);
/* A DPL0 interrupt gate (IF cleared on entry) at vec: the ring-0 event vector. */
void traps_set_interrupt(unsigned int vec, uint64_t handler);
/* Clears every gate: the next exception triple-faults (app=crash, crash=triple). */
void traps_clear(void);
/* Moves the caller from ring 3 to ring 0 for good (the `ring0` option). */
void traps_enter_ring0(void);
/* The current privilege level, from CS (its RPL reads correctly in both rings). */
int traps_current_ring(void);

void traps_fatal(const struct traps_frame *f) __attribute__((noreturn));

#endif
