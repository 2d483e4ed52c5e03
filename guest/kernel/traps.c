/* Exception gates and the fatal-exception reporter. The gates are written from ring 3 (the IDT
 * page is user-writable); the reporter runs at ring 0, emulated and slow, which is fine for a
 * path that ends the domain. */
#include "traps.h"
#include "hypercall.h"
#include "kernel.h"

#define TRAPS_GATE_INTR 0xe /* 64-bit interrupt gate: IF cleared on entry */
#define TRAPS_VEC_BP 3
#define TRAPS_VEC_DF 8
#define TRAPS_IST_DF 1

static void traps_set_gate(unsigned int vec, uint64_t handler, unsigned int dpl, unsigned int ist)
{
	uint64_t lo = (handler & 0xffff) | ((uint64_t)GUEST_SEL_KCODE << 16) | ((uint64_t)(ist & 7) << 32) |
		      ((uint64_t)(0x80 | (dpl << 5) | TRAPS_GATE_INTR) << 40) |
		      (((handler >> 16) & 0xffff) << 48);
	uint64_t hi = handler >> 32;
	volatile uint64_t *gate = (volatile uint64_t *)(lamina_idt + vec * 16);

	gate[0] = lo;
	gate[1] = hi;
}

void traps_init(void)
{
	for (unsigned int vec = 0; vec < 32; vec++) {
		uint64_t stub = (uint64_t)(uintptr_t)lamina_trap_stubs + vec * GUEST_TRAP_STUB_SIZE;
		traps_set_gate(vec, stub, 0, vec == TRAPS_VEC_DF ? TRAPS_IST_DF : 0);
	}
}

void traps_set_interrupt(unsigned int vec, uint64_t handler)
{
	traps_set_gate(vec, handler, 0, 0);
}

void traps_clear(void)
{
	volatile uint64_t *idt = (volatile uint64_t *)lamina_idt;

	for (unsigned int i = 0; i < GUEST_IDT_ENTRIES * 2; i++)
		idt[i] = 0;
}

/* `int n` from ring 3 raises #UD on this platform except for int3/into, so the trip to ring 0
 * borrows the breakpoint gate for one int3 and gives it back once there. */
void traps_enter_ring0(void)
{
	uint64_t bp_stub = (uint64_t)(uintptr_t)lamina_trap_stubs + TRAPS_VEC_BP * GUEST_TRAP_STUB_SIZE;

	traps_set_gate(TRAPS_VEC_BP, (uint64_t)(uintptr_t)lamina_ring0_switch, 3, 0);
	__asm__ volatile("int3" : : : "memory");
	traps_set_gate(TRAPS_VEC_BP, bp_stub, 0, 0);
}

int traps_current_ring(void)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

static const char *const traps_names[32] = {
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM no FPU",
    "#DF double fault",
    "coprocessor overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved",
    "#MF x87 error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD error",
    "#VE virtualization",
    "#CP control protection",
};

static void traps_say(const char *s, size_t n)
{
	HYPERVISOR_console_io(CONSOLEIO_write, n, s);
}

void traps_fatal(const struct traps_frame *f)
{
	char line[KERNEL_CONSOLE_LINE];
	const char *name = f->vector < 32 && traps_names[f->vector] ? traps_names[f->vector] : "exception";
	int n;

	n = lib_snprintf(
	    line, sizeof(line),
	    "\nFATAL: vector %lu (%s) err 0x%lx at rip 0x%lx cs 0x%lx rflags 0x%lx rsp 0x%lx cr2 0x%lx\n",
	    f->vector, name, f->error, f->rip, f->cs & 0xffff, f->rflags, f->rsp, f->cr2);
	traps_say(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	n = lib_snprintf(line, sizeof(line),
			 "  rax 0x%lx rbx 0x%lx rcx 0x%lx rdx 0x%lx rsi 0x%lx rdi 0x%lx rbp 0x%lx\n", f->rax,
			 f->rbx, f->rcx, f->rdx, f->rsi, f->rdi, f->rbp);
	traps_say(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	static const char result[] = "Test result: ERROR: fatal exception in the guest kernel\n";
	traps_say(result, sizeof(result) - 1);
	for (;;)
		hypercall_shutdown(SHUTDOWN_crash);
}
