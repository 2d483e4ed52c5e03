/* app=smp-test: vCPU 0 brings vCPU 1 up with VCPUOP_initialise (64-bit mode, vCPU 0's page
 * tables) and VCPUOP_up, and both show they run at once. vCPU 1 spends 11 instructions in ring 0
 * (emulated here, ~0.8 us each): it loads a GDT and TSS of its own, whose I/O bitmap lets the
 * hypercall port through, and drops to ring 3 with iretq, where it runs natively. IOPL would not
 * do: this platform forces RFLAGS.IOPL to 0 in ring 3 (tried: iretq with IOPL=3 and no bitmap,
 * and the first `out` to the hypercall port raises #GP), so `out` needs the bitmap.
 *   hold=1: after the checks, vCPU 1 spins for ever and vCPU 0 prints its heartbeat (for pause,
 *   unpause and destroy tests from the host).
 *   crash=1: vCPU 1 starts at address 0 (unmapped) with no IDT: it triple faults, which must
 *   crash this domain only. */
#include "apps.h"
#include "../kernel/hypercall.h"

#include <xen/hvm/hvm_vcpu.h>

#define SMP_AP 1u
#define SMP_LOCK_ITERS 200000u
#define SMP_PINGPONG 500u
#define SMP_WAIT_NS 5000000000ull
#define SMP_STACK 16384u
#define SMP_HOLD_PERIOD_NS 200000000ull
#define SMP_DOWN_NS 50000000ull
#define SMP_EFER_LME 0x100ull

/* The state both vCPUs share; every field but the results is written by one side only. */
struct smp_shared {
	volatile uint64_t counter;   /* both: lock-incremented */
	volatile uint64_t ping;	     /* odd: written by vCPU 0, even: by vCPU 1 */
	volatile uint64_t heartbeat; /* vCPU 1, once it was resumed */
	volatile uint32_t stage;     /* vCPU 0's commands */
	volatile uint32_t ap_stage;  /* vCPU 1's progress */
	volatile long rs_rc, isup_rc, con_rc, down_rc;
	volatile int rs_state;
	volatile uint32_t resumed;
};

/* vCPU 1's descriptor tables: vCPU 0's GDT entries plus a TSS of its own (a busy TSS cannot be
 * loaded twice), whose I/O bitmap opens LAMINA_PORT_HYPERCALL..LAMINA_PORT_MAX like vCPU 0's. */
struct smp_gdt_desc {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

#define SMP_TSS_IOMAP 104u
#define SMP_TSS_LIMIT (SMP_TSS_IOMAP + 12u) /* 12 bitmap bytes, then the 0xff terminator */

static struct smp_shared smp_sh;
uint64_t smp_ap_gdt[7] __attribute__((aligned(16)));
struct smp_gdt_desc smp_ap_gdt_desc;
static uint8_t smp_ap_tss[128] __attribute__((aligned(128)));
static uint8_t smp_ap_kstack[SMP_STACK] __attribute__((aligned(16)));
static uint8_t smp_ap_ustack[SMP_STACK] __attribute__((aligned(16)));

extern const uint8_t lamina_pml4[];
extern const uint64_t lamina_gdt[];
void smp_ap_entry(void);
void smp_ap_main(struct smp_shared *s) __attribute__((noreturn, used));

#define SMP_STR(x) #x
#define SMP_XSTR(x) SMP_STR(x)

/* vCPU 1 starts here in ring 0 (rdi = shared state, rsi = its ring-3 stack). */
__asm__(".text\n"
	".globl smp_ap_entry\n"
	"smp_ap_entry:\n"
	"	lgdt	smp_ap_gdt_desc(%rip)\n"
	"	movl	$" SMP_XSTR(GUEST_SEL_TSS) ", %eax\n"
	"	ltr	%ax\n"
	"	lidt	lamina_idt_desc(%rip)\n"
	"	pushq	$" SMP_XSTR(GUEST_SEL_UDATA) "\n"
	"	pushq	%rsi\n"
	"	pushq	$" SMP_XSTR(GUEST_RFLAGS_RING3) "\n"
	"	pushq	$" SMP_XSTR(GUEST_SEL_UCODE) "\n"
	"	leaq	smp_ap_main(%rip), %rax\n"
	"	pushq	%rax\n"
	"	iretq\n");

static void smp_tables_init(void)
{
	uint64_t base = (uintptr_t)smp_ap_tss, limit = SMP_TSS_LIMIT;
	uint64_t rsp0 = (uintptr_t)(smp_ap_kstack + SMP_STACK);

	for (unsigned int i = 0; i < 5; i++)
		smp_ap_gdt[i] = lamina_gdt[i];
	smp_ap_gdt[5] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
			(((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	smp_ap_gdt[6] = base >> 32;
	smp_ap_gdt_desc.limit = sizeof(smp_ap_gdt) - 1;
	smp_ap_gdt_desc.base = (uintptr_t)smp_ap_gdt;
	memset(smp_ap_tss, 0, sizeof(smp_ap_tss));
	memcpy(smp_ap_tss + 4, &rsp0, sizeof(rsp0));		       /* RSP0: traps from ring 3 */
	smp_ap_tss[102] = SMP_TSS_IOMAP & 0xff;
	smp_ap_tss[103] = SMP_TSS_IOMAP >> 8;
	memset(smp_ap_tss + SMP_TSS_IOMAP, 0xff, 11);	       /* ports 0x00-0x57 denied */
	smp_ap_tss[SMP_TSS_IOMAP + 11] = 0x0f;		       /* 0x58-0x5b denied, 0x5c-0x5f open */
	smp_ap_tss[SMP_TSS_IOMAP + 12] = 0xff;		       /* terminator */
}
_Static_assert(LAMINA_PORT_HYPERCALL == 0x5c && LAMINA_PORT_MAX == 0x5f, "the AP's I/O bitmap");

static void smp_wait_stage(struct smp_shared *s, uint32_t stage)
{
	while (s->stage < stage)
		__asm__ volatile("pause" ::: "memory");
}

/* vCPU 1, ring 3, natively. Never returns: after its second up it beats until the domain ends
 * or vCPU 0 takes it down. */
void smp_ap_main(struct smp_shared *s)
{
	static const char hello[] = "smp: vCPU 1 up in ring 3, making hypercalls\n";
	struct vcpu_runstate_info ri;

	s->ap_stage = 1;
	memset(&ri, 0, sizeof(ri));
	s->rs_rc = HYPERVISOR_vcpu_op(VCPUOP_get_runstate_info, SMP_AP, &ri);
	s->rs_state = ri.state;
	s->isup_rc = HYPERVISOR_vcpu_op(VCPUOP_is_up, SMP_AP, NULL);
	s->con_rc = HYPERVISOR_console_io(CONSOLEIO_write, sizeof(hello) - 1, hello);
	s->ap_stage = 2;

	smp_wait_stage(s, 1);
	for (unsigned int i = 0; i < SMP_LOCK_ITERS; i++)
		__asm__ volatile("lock incq %0" : "+m"(s->counter));
	s->ap_stage = 3;

	for (uint64_t i = 0; i < SMP_PINGPONG; i++) {
		while (s->ping != 2 * i + 1)
			__asm__ volatile("pause" ::: "memory");
		s->ping = 2 * i + 2;
	}
	smp_wait_stage(s, 2); /* a flag vCPU 0 sets while this one spins */
	s->ap_stage = 4;

	smp_wait_stage(s, 3);
	s->down_rc = HYPERVISOR_vcpu_op(VCPUOP_down, SMP_AP, NULL); /* returns after the next up */
	s->resumed = 1;
	for (;;) {
		s->heartbeat++;
		__asm__ volatile("pause" ::: "memory");
	}
}

/* Spin until cond holds or SMP_WAIT_NS passes; the time it took in ns, or UINT64_MAX. */
#define SMP_WAIT(k, cond)                                                                          \
	({                                                                                         \
		uint64_t t0_ = time_now_ns(&(k)->time), r_ = UINT64_MAX;                          \
		for (;;) {                                                                         \
			uint64_t n_ = time_now_ns(&(k)->time);                                    \
			if (cond) {                                                                \
				r_ = n_ - t0_;                                                     \
				break;                                                             \
			}                                                                          \
			if (n_ - t0_ > SMP_WAIT_NS)                                                \
				break;                                                             \
			__asm__ volatile("pause" ::: "memory");                                   \
		}                                                                                  \
		r_;                                                                                \
	})

static void smp_context(struct vcpu_hvm_context *c, struct smp_shared *s)
{
	memset(c, 0, sizeof(*c));
	c->mode = VCPU_HVM_MODE_64B;
	c->cpu_regs.x86_64.rip = (uintptr_t)smp_ap_entry;
	c->cpu_regs.x86_64.rsp = (uintptr_t)(smp_ap_kstack + SMP_STACK);
	c->cpu_regs.x86_64.rdi = (uintptr_t)s;
	c->cpu_regs.x86_64.rsi = (uintptr_t)(smp_ap_ustack + SMP_STACK - 8); /* as after a call */
	c->cpu_regs.x86_64.rflags = 0x2;
	c->cpu_regs.x86_64.cr0 = GUEST_CR0_BOOT;
	c->cpu_regs.x86_64.cr3 = (uintptr_t)lamina_pml4; /* identity mapped: vCPU 0's CR3 */
	c->cpu_regs.x86_64.cr4 = GUEST_CR4_BOOT;
	c->cpu_regs.x86_64.efer = SMP_EFER_LME;
}

static long smp_is_up(void)
{
	return HYPERVISOR_vcpu_op(VCPUOP_is_up, SMP_AP, NULL);
}

/* The refusals Xen gives, before anything runs. */
static void smp_check_refusals(struct app_checks *c, struct vcpu_hvm_context *ctx, unsigned int nr)
{
	long rc;

	rc = HYPERVISOR_vcpu_op(VCPUOP_up, SMP_AP, NULL);
	app_check(c, rc == -XEN_EINVAL, "up before initialise: -EINVAL", "%ld", rc);
	rc = HYPERVISOR_vcpu_op(VCPUOP_initialise, 0, ctx);
	app_check(c, rc == -XEN_EEXIST, "initialise vCPU 0 (up): -EEXIST", "%ld", rc);
	rc = HYPERVISOR_vcpu_op(VCPUOP_initialise, nr, ctx);
	app_check(c, rc == -XEN_ENOENT, "initialise a vCPU that does not exist: -ENOENT", "%ld", rc);
	ctx->mode = 7;
	rc = HYPERVISOR_vcpu_op(VCPUOP_initialise, SMP_AP, ctx);
	app_check(c, rc == -XEN_EINVAL, "initialise with a bad mode: -EINVAL", "%ld", rc);
	ctx->mode = VCPU_HVM_MODE_64B;
	ctx->cpu_regs.x86_64.efer = 0;
	rc = HYPERVISOR_vcpu_op(VCPUOP_initialise, SMP_AP, ctx);
	app_check(c, rc == -XEN_EINVAL, "initialise 64-bit without EFER.LME: -EINVAL", "%ld", rc);
	ctx->cpu_regs.x86_64.efer = SMP_EFER_LME;
	rc = smp_is_up();
	app_check(c, rc == 0, "vCPU 1 is not up yet", "%ld", rc);
}

/* Both at once: a shared counter and a ping-pong of flags that needs both vCPUs running. */
static void smp_check_together(struct kernel *k, struct app_checks *c, struct smp_shared *s)
{
	uint64_t t, t0;

	s->stage = 1;
	for (unsigned int i = 0; i < SMP_LOCK_ITERS; i++)
		__asm__ volatile("lock incq %0" : "+m"(s->counter));
	t = SMP_WAIT(k, s->ap_stage >= 3);
	app_check(c, t != UINT64_MAX && s->counter == 2ull * SMP_LOCK_ITERS, "lock-incremented counter is exactly 2N",
		  "%lu of %lu", s->counter, 2ul * SMP_LOCK_ITERS);
	t0 = time_now_ns(&k->time);
	t = 0;
	for (uint64_t i = 0; i < SMP_PINGPONG && t != UINT64_MAX; i++) {
		s->ping = 2 * i + 1;
		t = SMP_WAIT(k, s->ping == 2 * i + 2);
	}
	app_check(c, t != UINT64_MAX, "flag ping-pong between spinning vCPUs", "%u rounds, %lu ns each",
		  SMP_PINGPONG, (time_now_ns(&k->time) - t0) / SMP_PINGPONG);
	s->stage = 2;
	t = SMP_WAIT(k, s->ap_stage >= 4);
	app_check(c, t != UINT64_MAX, "vCPU 1 saw vCPU 0's flag, vCPU 0 saw its answer", "%lu ns", t);
}

/* vCPU 1 takes itself down, vCPU 0 brings it up again: it resumes after its hypercall. */
static void smp_check_down_up(struct kernel *k, struct app_checks *c, struct smp_shared *s)
{
	uint64_t t, h;
	long rc;

	s->stage = 3;
	t = SMP_WAIT(k, smp_is_up() == 0);
	app_check(c, t != UINT64_MAX, "is_up false after vCPU 1 took itself down", "%lu ns", t);
	h = s->heartbeat;
	t = time_now_ns(&k->time) + SMP_DOWN_NS;
	while (time_now_ns(&k->time) < t)
		__asm__ volatile("pause" ::: "memory");
	app_check(c, s->heartbeat == h && !s->resumed, "vCPU 1 stays down", "%lu ms, heartbeat %lu",
		  (uint64_t)(SMP_DOWN_NS / 1000000), s->heartbeat);
	rc = HYPERVISOR_vcpu_op(VCPUOP_up, SMP_AP, NULL);
	app_check(c, rc == 0, "up again", "%ld", rc);
	t = SMP_WAIT(k, s->resumed != 0 && s->heartbeat > 1000);
	app_check(c, t != UINT64_MAX && s->down_rc == 0, "vCPU 1 resumed after its VCPUOP_down",
		  "down returned %ld, %lu ns", s->down_rc, t);
	rc = smp_is_up();
	app_check(c, rc == 1, "is_up true again", "%ld", rc);
}

static void smp_hold(struct kernel *k, struct smp_shared *s)
{
	uint64_t next = time_now_ns(&k->time), last = s->heartbeat;

	kprintf(k, "smp: holding, vCPU 1 spinning\n");
	for (;;) {
		uint64_t now = time_now_ns(&k->time), h;
		if (now < next) {
			__asm__ volatile("pause" ::: "memory");
			continue;
		}
		h = s->heartbeat;
		kprintf(k, "smp: heartbeat %s\n", h != last ? "advancing" : "stalled");
		last = h;
		next = now + SMP_HOLD_PERIOD_NS;
	}
}

static void smp_crash(struct kernel *k, struct vcpu_hvm_context *ctx, struct app_result *res)
{
	long rc;

	ctx->cpu_regs.x86_64.rip = 0;
	rc = HYPERVISOR_vcpu_op(VCPUOP_initialise, SMP_AP, ctx);
	if (rc == 0)
		rc = HYPERVISOR_vcpu_op(VCPUOP_up, SMP_AP, NULL);
	if (rc < 0) {
		app_set(res, APP_ERROR, "bringing vCPU 1 up at address 0: %ld", rc);
		return;
	}
	kprintf(k, "smp: vCPU 1 up at address 0, it should triple fault\n");
	console_flush(&k->con);
	SMP_WAIT(k, 0);
	app_set(res, APP_FAILURE, "still running %llu s after vCPU 1's triple fault", SMP_WAIT_NS / 1000000000ull);
}

void app_smp_test(struct kernel *k, struct app_result *res)
{
	struct smp_shared *s = &smp_sh;
	struct app_checks c = {.k = k};
	struct vcpu_hvm_context ctx;
	unsigned int nr = 0, online = 0;
	uint64_t t;
	long rc;

	rc = app_count_vcpus(k, &nr, &online);
	if (rc < 0 || nr < 2) {
		app_set(res, APP_SKIP, "needs 2 vCPUs (<vcpu>2</vcpu>); has %u (%ld)", nr, rc);
		return;
	}
	kprintf(k, "smp: %u vCPUs, %u online\n", nr, online);
	smp_tables_init();
	memset((void *)s, 0, sizeof(*s));
	if (k->shared)
		k->shared->vcpu_info[SMP_AP].evtchn_upcall_mask = 1; /* no event callbacks on vCPU 1 */
	smp_context(&ctx, s);
	if (kernel_cmdline_u64(k, "crash", 0)) {
		smp_crash(k, &ctx, res);
		return;
	}
	smp_check_refusals(&c, &ctx, nr);

	rc = HYPERVISOR_vcpu_op(VCPUOP_initialise, SMP_AP, &ctx);
	app_check(&c, rc == 0, "initialise vCPU 1 (64-bit, vCPU 0's CR3)", "%ld", rc);
	rc = HYPERVISOR_vcpu_op(VCPUOP_up, SMP_AP, NULL);
	app_check(&c, rc == 0, "up vCPU 1", "%ld", rc);
	t = SMP_WAIT(k, s->ap_stage >= 2);
	if (!app_check(&c, t != UINT64_MAX, "vCPU 1 reached ring 3 and made its hypercalls", "%lu us", t / 1000)) {
		app_checks_result(&c, res);
		return;
	}
	rc = smp_is_up();
	app_check(&c, rc == 1, "is_up true", "%ld", rc);
	rc = HYPERVISOR_vcpu_op(VCPUOP_initialise, SMP_AP, &ctx);
	app_check(&c, rc == -XEN_EEXIST, "initialise vCPU 1 while up: -EEXIST", "%ld", rc);
	app_check(&c, s->rs_rc == 0 && s->rs_state == RUNSTATE_running, "vCPU 1: get_runstate_info on itself",
		  "rc %ld, state %d", s->rs_rc, s->rs_state);
	app_check(&c, s->isup_rc == 1, "vCPU 1: is_up on itself", "%ld", s->isup_rc);
	app_check(&c, s->con_rc == 0, "vCPU 1: console_io write", "%ld", s->con_rc);

	smp_check_together(k, &c, s);
	smp_check_down_up(k, &c, s);
	if (c.fail == 0 && kernel_cmdline_u64(k, "hold", 0))
		smp_hold(k, s);
	rc = HYPERVISOR_vcpu_op(VCPUOP_down, SMP_AP, NULL);
	t = SMP_WAIT(k, smp_is_up() == 0);
	app_check(&c, rc == 0 && t != UINT64_MAX, "vCPU 0 takes vCPU 1 down", "%ld", rc);
	app_checks_result(&c, res);
}
