/* Prebuilt x86-64 tables of the Lamina guest kernel: identity page tables for the first 4 GiB,
 * GDT, TSS with its I/O permission bitmap, IDT storage, stacks and the hypervisor's pages.
 * They are assembled data so that the emulated ring-0 boot path only has to load them. */
#include <lamina/abi.h>
#include "boot_info.h"

#define PTE_P 0x1
#define PTE_RW 0x2
#define PTE_US 0x4
#define PTE_PS 0x80
#define PTE_USER (PTE_P | PTE_RW | PTE_US)

	.section .data.pagetables, "aw"
	.p2align 12
	.globl lamina_pml4
lamina_pml4:
	.quad lamina_pdpt + PTE_USER
	.fill 511, 8, 0

	.globl lamina_pdpt
lamina_pdpt:
	.quad lamina_pd + PTE_USER
	.quad lamina_pd + 0x1000 + PTE_USER
	.quad lamina_pd + 0x2000 + PTE_USER
	.quad lamina_pd + 0x3000 + PTE_USER
	.fill 508, 8, 0

/* 4 x 512 2 MiB pages: 0..4 GiB, user, writable. Entry 0 points to lamina_pt0 instead so that
 * page 0 stays unmapped: NULL faults in the guest and is -EFAULT in hypercalls. */
	.globl lamina_pd
lamina_pd:
	.quad lamina_pt0 + PTE_USER
	pde = 1
	.rept 2047
	.quad (pde << 21) | PTE_USER | PTE_PS
	pde = pde + 1
	.endr

	.globl lamina_pt0
lamina_pt0:
	.quad 0
	pte = 1
	.rept 511
	.quad (pte << 12) | PTE_USER
	pte = pte + 1
	.endr

	.section .data.descriptors, "aw"
	.p2align 4
	.globl lamina_gdt
lamina_gdt:
	.quad 0
	.quad 0x00af9b000000ffff /* 0x08: 64-bit code, DPL0 */
	.quad 0x00cf93000000ffff /* 0x10: data, DPL0 */
	.quad 0x00cff3000000ffff /* 0x18: data, DPL3 */
	.quad 0x00affb000000ffff /* 0x20: 64-bit code, DPL3 */
	.quad lamina_tss_desc_lo /* 0x28: 64-bit TSS (computed in the linker script) */
	.quad lamina_tss_desc_hi
lamina_gdt_end:

	.p2align 3
	.word 0
	.word 0
	.word 0
	.globl lamina_gdt_desc
lamina_gdt_desc:
	.word lamina_gdt_end - lamina_gdt - 1
	.quad lamina_gdt

	.p2align 3
	.word 0
	.word 0
	.word 0
	.globl lamina_idt_desc
lamina_idt_desc:
	.word GUEST_IDT_ENTRIES * 16 - 1
	.quad lamina_idt

	/* Filled by boot.S from CPUID; read-only once ring 3 runs (layout: kernel/boot.h). */
	.p2align 4
	.globl lamina_boot_info
lamina_boot_info:
	.skip BI_SIZE

	.p2align 7
	.globl lamina_tss
lamina_tss:
	.long 0
	.quad lamina_kstack_top      /* RSP0: traps from ring 3 */
	.quad 0, 0                   /* RSP1, RSP2 */
	.quad 0
	.quad lamina_dfstack_top     /* IST1: double fault */
	.quad 0, 0, 0, 0, 0, 0
	.quad 0
	.word 0
	.word GUEST_TSS_IOMAP_OFF
	/* I/O bitmap: ports 0x00-0x5b denied; LAMINA_PORT_HYPERCALL..LAMINA_PORT_MAX allowed. */
	.fill 11, 1, 0xff
	.byte 0x0f
	.byte 0xff                   /* terminator, one byte past the limit */
	.globl lamina_tss_end
lamina_tss_end:

	.bss
	.p2align 12
	.globl lamina_idt
lamina_idt:
	.skip GUEST_IDT_ENTRIES * 16
	.globl lamina_hypercall_page
lamina_hypercall_page:
	.skip GUEST_PAGE_SIZE
	.globl lamina_shared_info_page
lamina_shared_info_page:
	.skip GUEST_PAGE_SIZE
	.globl lamina_vcpu_info_page
lamina_vcpu_info_page:
	.skip GUEST_PAGE_SIZE
	.globl lamina_kstack
lamina_kstack:
	.skip GUEST_KSTACK_SIZE
	.globl lamina_kstack_top
lamina_kstack_top:
	.skip GUEST_DFSTACK_SIZE
	.globl lamina_dfstack_top
lamina_dfstack_top:
	.globl lamina_ustack
lamina_ustack:
	.skip GUEST_USTACK_SIZE
	.globl lamina_ustack_top
lamina_ustack_top:

	.section .note.GNU-stack, "", @progbits
