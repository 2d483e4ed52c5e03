/* What the ring-0 boot path leaves for the C kernel: the boot_info record (CPUID results, start
 * info address) and the addresses of the prebuilt tables and hypervisor pages in arch/. */
#ifndef GUEST_KERNEL_BOOT_H
#define GUEST_KERNEL_BOOT_H

#include <stddef.h>
#include <stdint.h>
#include "../arch/boot_info.h"

struct boot_info {
	uint64_t start_info_pa;
	uint32_t xen_base; /* CPUID leaf with "XenVMMXenVMM", 0 if none */
	uint32_t xen_max_leaf;
	uint32_t hcall_pages;
	uint32_t hcall_msr;
	uint32_t hvm_flags; /* XEN_HVM_CPUID_* from base+4 */
	uint32_t vcpu_id;
	uint32_t domid;
	uint32_t lamina_max_leaf;
	uint32_t lamina_sig[3];
	uint32_t lamina_port_hc;
	uint32_t lamina_port_null;
	uint32_t lamina_abi;
	uint64_t tsc_entry; /* rdtsc at the first instruction */
};
_Static_assert(offsetof(struct boot_info, start_info_pa) == BI_START_INFO, "boot_info layout");
_Static_assert(offsetof(struct boot_info, xen_base) == BI_XEN_BASE, "boot_info layout");
_Static_assert(offsetof(struct boot_info, xen_max_leaf) == BI_XEN_MAX_LEAF, "boot_info layout");
_Static_assert(offsetof(struct boot_info, hcall_pages) == BI_HCALL_PAGES, "boot_info layout");
_Static_assert(offsetof(struct boot_info, hcall_msr) == BI_HCALL_MSR, "boot_info layout");
_Static_assert(offsetof(struct boot_info, hvm_flags) == BI_HVM_FLAGS, "boot_info layout");
_Static_assert(offsetof(struct boot_info, vcpu_id) == BI_VCPU_ID, "boot_info layout");
_Static_assert(offsetof(struct boot_info, domid) == BI_DOMID, "boot_info layout");
_Static_assert(offsetof(struct boot_info, lamina_max_leaf) == BI_LAMINA_MAX, "boot_info layout");
_Static_assert(offsetof(struct boot_info, lamina_sig) == BI_LAMINA_SIG, "boot_info layout");
_Static_assert(offsetof(struct boot_info, lamina_port_hc) == BI_LAMINA_PORT_HC, "boot_info layout");
_Static_assert(offsetof(struct boot_info, lamina_port_null) == BI_LAMINA_PORT_NULL, "boot_info layout");
_Static_assert(offsetof(struct boot_info, lamina_abi) == BI_LAMINA_ABI, "boot_info layout");
_Static_assert(offsetof(struct boot_info, tsc_entry) == BI_TSC_ENTRY, "boot_info layout");
_Static_assert(sizeof(struct boot_info) == BI_SIZE, "boot_info layout");

/* Written once by arch/boot.S before ring 3 starts; read-only afterwards. */
extern struct boot_info lamina_boot_info;

extern uint8_t lamina_hypercall_page[GUEST_PAGE_SIZE];
extern uint8_t lamina_shared_info_page[GUEST_PAGE_SIZE];
extern uint8_t lamina_vcpu_info_page[GUEST_PAGE_SIZE];
extern uint8_t lamina_idt[GUEST_IDT_ENTRIES * 16];
extern const uint8_t lamina_trap_stubs[];
extern const uint8_t lamina_ring0_switch[];
extern const uint8_t lamina_text_start[], lamina_text_end[];
extern const uint8_t lamina_image_start[], lamina_image_end[];

#endif
