/* Saving every general-purpose register on the stack, shared by the guest kernel's exception and
 * upcall entries (assembly only). The order is the frame layout kernel/traps.c reads. */
#ifndef LAMINA_GUEST_GPRS_H
#define LAMINA_GUEST_GPRS_H

.macro PUSH_GPRS
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rbp
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
.endm

/* Everything PUSH_GPRS saved except %rax, which stays at (%rsp) for the caller. */
.macro POP_GPRS_BUT_RAX
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rbp
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rbx
.endm

#endif
