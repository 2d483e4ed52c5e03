/* Ring-0 exception entry of the Lamina guest kernel: one 16-byte stub per exception vector
 * and the common path that saves the frame and hands it to traps_fatal() (kernel/traps.c). */
#include "boot_info.h"
#include "gprs.h"

/* Vectors for which the CPU pushes an error code: 8, 10-14, 17, 21, 29, 30. */
.macro TRAP_STUB vec
	.p2align 4
	.if ((\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21))
	.elseif ((\vec == 29) || (\vec == 30))
	.else
	pushq	$0                   /* no error code: keep one frame layout */
	.endif
	pushq	$\vec
	jmp	lamina_trap_common
.endm

	.text
	.p2align 4
	.globl lamina_trap_stubs
lamina_trap_stubs:
	.irp vec, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	TRAP_STUB \vec
	.endr
	.p2align 4
	.globl lamina_trap_stubs_end
lamina_trap_stubs_end:

lamina_trap_common:
	PUSH_GPRS
	movq	%cr2, %rax
	pushq	%rax
	movq	%rsp, %rdi
	andq	$-16, %rsp
	call	traps_fatal
1:	hlt
	jmp	1b

	.section .note.GNU-stack, "", @progbits
