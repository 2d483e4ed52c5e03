/* Lamina's additions to the Xen PVH guest ABI: the few numbers a guest needs beyond Xen's public
 * headers (how a hypercall traps here, and Lamina's own CPUID leaves). Shared by hypervisor and guest. */
#ifndef LAMINA_ABI_H
#define LAMINA_ABI_H

/* Hypercall-page stubs trap with `out LAMINA_PORT_HYPERCALL, eax` instead of vmcall/vmmcall,
 * which hang a vCPU on this platform. Each 32-byte stub is:
 *   b8 nn nn nn nn   mov  $nr, %eax
 *   e7 5c            out  %eax, $0x5c
 *   c3               ret
 * Arguments follow Xen's x86-64 convention: rdi, rsi, rdx, r10, r8; the result returns in rax;
 * no other register changes. A ring-3 guest kernel lets the port through its TSS I/O bitmap. */
#define LAMINA_PORT_HYPERCALL 0x5c
/* `out` to this port exits to the hypervisor and returns at once, doing nothing: the floor a
 * hypercall's cost is measured against. */
#define LAMINA_PORT_NULL 0x5d
/* The highest port a Lamina guest needs in its I/O bitmap. */
#define LAMINA_PORT_MAX 0x5f

#define LAMINA_HYPERCALL_STUB_SIZE 32
#define LAMINA_HYPERCALL_MSR 0x40000000u /* also advertised in Xen's CPUID leaf 0x40000002 EBX */

/* Xen's leaves sit at 0x40000000 (signature "XenVMMXenVMM"). Lamina's own leaves follow at
 * 0x40000100: EBX:ECX:EDX = "LaminaLamina", EAX = highest Lamina leaf. Leaf 0x40000101 gives
 * EAX = hypercall port, EBX = null-exit port, ECX = LAMINA_ABI_VERSION. A guest reads them at
 * ring 0 (cpuid in ring 3 sees the outer host on this platform). */
#define LAMINA_CPUID_BASE 0x40000100u
#define LAMINA_CPUID_SIG_EBX 0x696d614cu /* "Lami" */
#define LAMINA_CPUID_SIG_ECX 0x614c616eu /* "naLa" */
#define LAMINA_CPUID_SIG_EDX 0x616e696du /* "mina" */
#define LAMINA_ABI_VERSION 1

/* Event upcalls for guest kernels that run de-privileged in ring 3 (Lamina's own kernel).
 * Such a kernel registers its handler with CALLBACKOP_register (CALLBACKTYPE_event, from
 * xen/callback.h). Whenever the hypervisor is about to resume a vCPU that runs at CPL 3, has a
 * registered event callback, evtchn_upcall_pending = 1 and evtchn_upcall_mask = 0 in its
 * vcpu_info, it sets evtchn_upcall_mask = 1 and enters the callback with a frame pushed on the
 * interrupted stack, exactly as a same-privilege interrupt would but with two words:
 *     new rsp = old rsp - 16;  [rsp] = old rflags;  [rsp + 8] = old rip
 * so `popfq; ret` (after restoring what the handler saved) resumes the interrupted code with
 * rsp as it was. The kernel is built without a red zone. A vCPU running in the guest when an
 * event arrives is kicked out of the guest to take it; a blocked vCPU takes it on waking.
 * Kernels staying in ring 0 use Xen's HVM callback vector (HVM_PARAM_CALLBACK_IRQ, type
 * vector), delivered through the x2APIC, unchanged. */
#define LAMINA_UPCALL_FRAME_SIZE 16

/* Xen version Lamina reports (the interface of the public headers it is built against). */
#define LAMINA_XEN_MAJOR 4
#define LAMINA_XEN_MINOR 17
#define LAMINA_EXTRAVERSION "-lamina"

/* Domain limits the toolstack and hypervisor both check. */
#define LAMINA_MIN_MEMORY_KIB 2048u
#define LAMINA_MAX_VCPUS 64u

#endif
