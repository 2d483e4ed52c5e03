/* Event upcall entries of the Lamina guest kernel. Ring 3: the hypervisor's two-word frame
 * (LAMINA_UPCALL_FRAME_SIZE: rflags at [rsp], rip at [rsp + 8]) with evtchn_upcall_mask already
 * set; ring 0: the HVM callback vector through an IDT interrupt gate. Both call kernel/events.c. */
#include <lamina/abi.h>
#include "boot_info.h"
#include "gprs.h"

/* kernel/events.h: struct events_anchor { ev; vi; } and the vcpu_info bytes used here. */
#define ANCHOR_EV 0
#define ANCHOR_VI 8
#define VI_PENDING 0
#define VI_MASK 1

	.text
	.p2align 4
	.globl lamina_upcall_entry
lamina_upcall_entry:
	/* The interrupted code loses nothing: every general register is saved (the kernel is built
	 * -mgeneral-regs-only, so no vector state is live in C). */
	PUSH_GPRS
	movq	%rsp, %rbp
	andq	$-16, %rsp
	movq	lamina_events_anchor + ANCHOR_EV(%rip), %rdi
	call	events_upcall
	movq	%rbp, %rsp
	POP_GPRS_BUT_RAX
	/* %rax is still saved at (%rsp): use it to re-enable delivery, then look once more. */
	movq	lamina_events_anchor + ANCHOR_VI(%rip), %rax
	movb	$0, VI_MASK(%rax)
	lock addl $0, (%rsp)                /* the mask store before the pending load */
	cmpb	$0, VI_PENDING(%rax)
	jne	1f
	popq	%rax
	popfq
	ret
1:	/* Raised while masked: mask again and run the whole entry again on the same frame. */
	movb	$1, VI_MASK(%rax)
	popq	%rax
	jmp	lamina_upcall_entry

/* Ring 0: DPL0 interrupt gate, IF clear. The C side (events_upcall_vector) does the EOI. Only the
 * caller-saved registers and %rbp need saving around a C call. */
	.p2align 4
	.globl lamina_upcall_vector_entry
lamina_upcall_vector_entry:
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%rbp
	movq	%rsp, %rbp
	andq	$-16, %rsp
	movq	lamina_events_anchor + ANCHOR_EV(%rip), %rdi
	call	events_upcall_vector
	movq	%rbp, %rsp
	popq	%rbp
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rax
	iretq

/* Ring 0: the x2APIC's spurious vector needs no EOI and no work. */
	.p2align 4
	.globl lamina_spurious_entry
lamina_spurious_entry:
	iretq

	.section .note.GNU-stack, "", @progbits
