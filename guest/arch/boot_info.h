/* The guest kernel's ring-0 layout: segment selectors, control-register bits and the boot_info
 * record that the ring-0 boot path fills from CPUID. Shared by the assembly and the C kernel. */
#ifndef GUEST_ARCH_BOOT_INFO_H
#define GUEST_ARCH_BOOT_INFO_H

#define GUEST_SEL_KCODE 0x08
#define GUEST_SEL_KDATA 0x10
#define GUEST_SEL_UDATA 0x1b /* GDT index 3, RPL 3 */
#define GUEST_SEL_UCODE 0x23 /* GDT index 4, RPL 3 */
#define GUEST_SEL_TSS 0x28

#define GUEST_CR0_BOOT 0x80010033 /* PG | WP | NE | ET | MP | PE */
#define GUEST_CR4_BOOT 0x620	  /* PAE | OSFXSR | OSXMMEXCPT */
#define GUEST_MSR_EFER 0xc0000080
#define GUEST_EFER_LME 0x100
/* Ring 3 starts with interrupts off: events arrive Xen-PV style (issue 4), not through IF. */
#define GUEST_RFLAGS_RING3 0x2

#define GUEST_PAGE_SIZE 4096
#define GUEST_KSTACK_SIZE 16384	 /* ring-0 stack: boot, traps, the ring-0 mode */
#define GUEST_USTACK_SIZE 262144 /* ring-3 stack: the whole steady state, apps' buffers */
#define GUEST_DFSTACK_SIZE 4096	 /* IST1: double faults */

/* TSS: 104 bytes, then the I/O permission bitmap for ports 0..0x5f, then the 0xff terminator
 * the CPU reads past the last byte. Ports beyond the limit are denied. */
#define GUEST_TSS_IOMAP_OFF 104
#define GUEST_TSS_IOMAP_BYTES 12
#define GUEST_TSS_LIMIT (GUEST_TSS_IOMAP_OFF + GUEST_TSS_IOMAP_BYTES + 1 - 1)

#define GUEST_IDT_ENTRIES 256
#define GUEST_TRAP_STUB_SIZE 16 /* exception stub i sits at lamina_trap_stubs + 16 * i */

/* struct boot_info offsets (the C definition in kernel/boot.h asserts them). */
#define BI_START_INFO 0
#define BI_XEN_BASE 8
#define BI_XEN_MAX_LEAF 12
#define BI_HCALL_PAGES 16
#define BI_HCALL_MSR 20
#define BI_HVM_FLAGS 24
#define BI_VCPU_ID 28
#define BI_DOMID 32
#define BI_LAMINA_MAX 36
#define BI_LAMINA_SIG 40
#define BI_LAMINA_PORT_HC 52
#define BI_LAMINA_PORT_NULL 56
#define BI_LAMINA_ABI 60
#define BI_TSC_ENTRY 64
#define BI_SIZE 72

#define GUEST_XEN_CPUID_FIRST 0x40000000
#define GUEST_XEN_CPUID_LAST 0x40010000
#define GUEST_XEN_SIG_EBX 0x566e6558 /* "XenV" */
#define GUEST_XEN_SIG_ECX 0x65584d4d /* "MMXe" */
#define GUEST_XEN_SIG_EDX 0x4d4d566e /* "nVMM" */

#endif
