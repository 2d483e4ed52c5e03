/* PVH entry: the whole ring-0 boot path of the Lamina guest kernel, from 32-bit flat protected
 * mode to the iretq into ring 3. Every instruction here is emulated on this platform (~0.8 us
 * each), so it is straight-line code over prebuilt tables (tables.S): no loops except the CPUID
 * scan, which only runs when the hypervisor is not at the first leaf. */
#include <xen/elfnote.h>
#include <lamina/abi.h>
#include "boot_info.h"

/* One Xen ELF note: name "Xen", type, then the descriptor. */
.macro GUEST_ELFNOTE_BEGIN type
	.p2align 2
	.long 2f - 1f
	.long 4f - 3f
	.long \type
1:	.asciz "Xen"
2:	.p2align 2
3:
.endm
.macro GUEST_ELFNOTE_END
4:	.p2align 2
.endm

	.section .note.Xen, "a", @note
	GUEST_ELFNOTE_BEGIN XEN_ELFNOTE_GUEST_OS
	.asciz "Lamina"
	GUEST_ELFNOTE_END
	GUEST_ELFNOTE_BEGIN XEN_ELFNOTE_GUEST_VERSION
	.asciz "1.0"
	GUEST_ELFNOTE_END
	GUEST_ELFNOTE_BEGIN XEN_ELFNOTE_XEN_VERSION
	.asciz "xen-3.0"
	GUEST_ELFNOTE_END
	GUEST_ELFNOTE_BEGIN XEN_ELFNOTE_LOADER
	.asciz "generic"
	GUEST_ELFNOTE_END
	GUEST_ELFNOTE_BEGIN XEN_ELFNOTE_PHYS32_ENTRY
	.long lamina_start32
	GUEST_ELFNOTE_END

	.section .text.boot, "ax"
	.code32
	.globl lamina_start32
lamina_start32:
	/* %ebx = hvm_start_info; keep it in %esi, which survives the mode switch. */
	movl	%ebx, %esi
	rdtsc
	movl	%eax, lamina_boot_info + BI_TSC_ENTRY
	movl	%edx, lamina_boot_info + BI_TSC_ENTRY + 4
	movl	$lamina_pml4, %eax
	movl	%eax, %cr3
	movl	$GUEST_CR4_BOOT, %eax
	movl	%eax, %cr4
	movl	$GUEST_MSR_EFER, %ecx
	movl	$GUEST_EFER_LME, %eax
	xorl	%edx, %edx
	wrmsr
	movl	$GUEST_CR0_BOOT, %eax
	movl	%eax, %cr0
	lgdt	lamina_gdt_desc
	ljmp	$GUEST_SEL_KCODE, $lamina_start64

	.code64
lamina_start64:
	movl	$GUEST_SEL_KDATA, %eax
	movl	%eax, %ss
	movl	%eax, %ds
	movl	%eax, %es
	movl	$GUEST_SEL_TSS, %eax
	ltr	%ax
	lidt	lamina_idt_desc
	movq	$lamina_kstack_top, %rsp
	movl	%esi, lamina_boot_info + BI_START_INFO

	/* Find the hypervisor: Xen's signature at 0x40000000, else every 0x100 leaves above. */
	movl	$GUEST_XEN_CPUID_FIRST, %edi
1:	movl	%edi, %eax
	cpuid
	cmpl	$GUEST_XEN_SIG_EBX, %ebx
	jne	2f
	cmpl	$GUEST_XEN_SIG_ECX, %ecx
	jne	2f
	cmpl	$GUEST_XEN_SIG_EDX, %edx
	je	3f
2:	addl	$0x100, %edi
	cmpl	$GUEST_XEN_CPUID_LAST, %edi
	jb	1b
	jmp	lamina_boot_no_hypervisor
3:	movl	%edi, lamina_boot_info + BI_XEN_BASE
	movl	%eax, lamina_boot_info + BI_XEN_MAX_LEAF
	movl	%eax, %ebp
	leal	2(%rdi), %eax               /* base+2: hypercall pages, MSR */
	cpuid
	movl	%eax, lamina_boot_info + BI_HCALL_PAGES
	movl	%ebx, lamina_boot_info + BI_HCALL_MSR
	leal	4(%rdi), %eax               /* base+4: HVM flags, vcpu id, domid */
	cmpl	%eax, %ebp
	jb	4f
	xorl	%ecx, %ecx
	cpuid
	movl	%eax, lamina_boot_info + BI_HVM_FLAGS
	movl	%ebx, lamina_boot_info + BI_VCPU_ID
	movl	%ecx, lamina_boot_info + BI_DOMID
4:	movl	$LAMINA_CPUID_BASE, %eax    /* Lamina's leaves; C checks the signature */
	cpuid
	movl	%eax, lamina_boot_info + BI_LAMINA_MAX
	movl	%ebx, lamina_boot_info + BI_LAMINA_SIG
	movl	%ecx, lamina_boot_info + BI_LAMINA_SIG + 4
	movl	%edx, lamina_boot_info + BI_LAMINA_SIG + 8
	movl	$LAMINA_CPUID_BASE + 1, %eax
	cpuid
	movl	%eax, lamina_boot_info + BI_LAMINA_PORT_HC
	movl	%ebx, lamina_boot_info + BI_LAMINA_PORT_NULL
	movl	%ecx, lamina_boot_info + BI_LAMINA_ABI

	/* The hypervisor fills the hypercall page when its GPA is written to the MSR. */
	movl	lamina_boot_info + BI_HCALL_MSR, %ecx
	movl	$lamina_hypercall_page, %eax
	xorl	%edx, %edx
	wrmsr

	/* Drop to ring 3 for good: kernel_main(start_info) runs on the user stack. */
	movl	%esi, %edi
	pushq	$GUEST_SEL_UDATA
	pushq	$lamina_ustack_top
	pushq	$GUEST_RFLAGS_RING3
	pushq	$GUEST_SEL_UCODE
	pushq	$lamina_ring3_entry
	iretq

lamina_boot_no_hypervisor:
	/* Nothing to report to: halt for good (IF is clear). */
	hlt
	jmp	lamina_boot_no_hypervisor

	.text
	.globl lamina_ring3_entry
lamina_ring3_entry:
	call	kernel_main
	ud2

/* int3 from ring 3 through a DPL3 gate (kernel/traps.c): return to the caller, but at ring 0 on the
 * same stack. The `ring0` command-line option uses it once, right after boot. */
	.globl lamina_ring0_switch
lamina_ring0_switch:
	movq	$GUEST_SEL_KCODE, 8(%rsp)
	movq	$GUEST_SEL_KDATA, 32(%rsp)
	iretq

	.section .note.GNU-stack, "", @progbits
