/* ev-irqfd: the floor for `./run bench events`: a raw KVM round trip with no hypervisor logic.
 * One thread writes an eventfd bound with KVM_IRQFD to an MSI route; the in-kernel x2APIC
 * delivers vector 0x20 to the guest, whose handler answers with `out 0x12`; the vCPU thread turns
 * that exit into a write of a second eventfd, which the first thread is blocked reading.
 * Modes: ring3  the guest spins at CPL 3 (as Lamina's kernel runs), a DPL-3 trap gate takes the
 *               vector, the host clears the APIC in-service bit (ring 3 cannot EOI);
 *        halt   the guest waits in `sti; hlt` at CPL 0, its handler EOIs through the x2APIC MSR.
 *        pair3, pairh  two such VMs ping-pong with no host program in the loop: each handler
 *               exit becomes a write of the OTHER VM's irqfd, so one round is two exits and two
 *               deliveries, as in an interdomain event round trip (the floor for that figure).
 * usage: ev-irqfd ring3|halt|pair3|pairh [ROUNDS]
 *   prints "RESULT raw_irqfd_rtt_median_ns_MODE N" (pair modes: the mean round over ROUNDS) */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EVI_MEM (2u << 20)
#define EVI_PML4 0x1000
#define EVI_PDPT 0x2000
#define EVI_PD 0x3000
#define EVI_GDT 0x4000
#define EVI_IDT 0x5000
#define EVI_TSS 0x6000
#define EVI_CODE 0x10000
#define EVI_KSTACK 0x80000
#define EVI_USTACK 0x90000
#define EVI_VECTOR 0x20
#define EVI_PORT 0x12
#define EVI_GSI 5

/* Guest code, position-independent, copied to EVI_CODE. Offsets of each entry below. */
/* clang-format off */
static const uint8_t evi_code[] = {
	/* 0x00 spin: pause; jmp spin */
	0xf3, 0x90, 0xeb, 0xfc,
	/* 0x04 halt: sti; hlt; jmp halt */
	0xfb, 0xf4, 0xeb, 0xfc,
	/* 0x08 ring-3 handler: out 0x12, al; iretq */
	0xe6, EVI_PORT, 0x48, 0xcf,
	/* 0x0c ring-0 handler: push rax; push rcx; push rdx; out 0x12, al; mov ecx, 0x80b;
	 *      xor eax, eax; xor edx, edx; wrmsr; pop rdx; pop rcx; pop rax; iretq */
	0x50, 0x51, 0x52, 0xe6, EVI_PORT, 0xb9, 0x0b, 0x08, 0x00, 0x00, 0x31, 0xc0, 0x31, 0xd2, 0x0f, 0x30,
	0x5a, 0x59, 0x58, 0x48, 0xcf,
};
/* clang-format on */
#define EVI_SPIN 0x00
#define EVI_HALT 0x04
#define EVI_H3 0x08
#define EVI_H0 0x0c

struct evi {
	int kvm, vm, vcpu, irq_fd, ans_fd;
	struct kvm_run *run;
	uint8_t *mem;
	int ring3;
	volatile int stop;
	struct evi *peer;     /* pair modes: the other VM */
	int leader;           /* pair modes: counts the rounds and ends the run */
	volatile int rounds;  /* pair modes: rounds left */
};

static int evi_fail(const char *what)
{
	fprintf(stderr, "ev-irqfd: %s: %s\n", what, strerror(errno));
	return -1;
}

static uint64_t evi_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void evi_gate(struct evi *e, int vec, uint64_t handler, uint16_t sel, int dpl, int trap)
{
	uint64_t lo = (handler & 0xffff) | ((uint64_t)sel << 16) |
		      ((uint64_t)((trap ? 0x8f : 0x8e) | (dpl << 5)) << 40) |
		      (((handler >> 16) & 0xffff) << 48);
	uint64_t hi = handler >> 32;

	memcpy(e->mem + EVI_IDT + vec * 16, &lo, 8);
	memcpy(e->mem + EVI_IDT + vec * 16 + 8, &hi, 8);
}

/* Identity-mapped first 2 MiB (user-accessible), flat GDT with ring-0 and ring-3 code and data,
 * a TSS whose I/O bitmap lets ring 3 use EVI_PORT, one gate for the vector. */
static void evi_tables(struct evi *e)
{
	uint64_t *pml4 = (uint64_t *)(e->mem + EVI_PML4), *pdpt = (uint64_t *)(e->mem + EVI_PDPT);
	uint64_t *pd = (uint64_t *)(e->mem + EVI_PD), *gdt = (uint64_t *)(e->mem + EVI_GDT);
	uint64_t base = EVI_TSS, lim = 0x68 + 8, rsp0 = EVI_KSTACK;
	uint16_t iomap = 0x68;
	uint8_t *tss = e->mem + EVI_TSS;

	pml4[0] = EVI_PDPT | 7;
	pdpt[0] = EVI_PD | 7;
	pd[0] = 0x87;			/* 2 MiB page, present, writable, user */
	gdt[1] = 0x00af9b000000ffffull; /* 0x08 code, DPL 0 */
	gdt[2] = 0x00cf93000000ffffull; /* 0x10 data, DPL 0 */
	gdt[3] = 0x00cff3000000ffffull; /* 0x1b data, DPL 3 */
	gdt[4] = 0x00affb000000ffffull; /* 0x23 code, DPL 3 */
	gdt[5] = (lim & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) | (((base >> 24) & 0xff) << 56);
	gdt[6] = base >> 32;
	memcpy(tss + 4, &rsp0, 8);
	memcpy(tss + 0x66, &iomap, 2);
	memset(tss + 0x68, 0xff, 9);
	tss[0x68 + EVI_PORT / 8] &= (uint8_t) ~(1u << (EVI_PORT % 8));
	memcpy(e->mem + EVI_CODE, evi_code, sizeof(evi_code));
	if (e->ring3)
		evi_gate(e, EVI_VECTOR, EVI_CODE + EVI_H3, 0x23, 3, 1);
	else
		evi_gate(e, EVI_VECTOR, EVI_CODE + EVI_H0, 0x08, 0, 0);
}

static void evi_seg(struct kvm_segment *s, uint16_t sel, int type, int dpl, int code)
{
	memset(s, 0, sizeof(*s));
	*s = (struct kvm_segment){.limit = 0xffffffff,
				  .selector = sel,
				  .type = (uint8_t)type,
				  .present = 1,
				  .dpl = (uint8_t)dpl,
				  .s = 1,
				  .g = 1,
				  .l = (uint8_t)code,
				  .db = (uint8_t)!code};
}

static int evi_cpu(struct evi *e)
{
	struct kvm_sregs sr;
	struct kvm_regs r = {.rflags = 0x202};
	int cpl = e->ring3 ? 3 : 0;

	if (ioctl(e->vcpu, KVM_GET_SREGS, &sr) < 0)
		return evi_fail("KVM_GET_SREGS");
	sr.cr0 = 0x80050033;
	sr.cr3 = EVI_PML4;
	sr.cr4 = 0x620;
	sr.efer = 0x501;
	evi_seg(&sr.cs, cpl ? 0x23 : 0x08, 11, cpl, 1);
	evi_seg(&sr.ss, cpl ? 0x1b : 0x10, 3, cpl, 0);
	evi_seg(&sr.ds, cpl ? 0x1b : 0x10, 3, cpl, 0);
	sr.es = sr.fs = sr.gs = sr.ds;
	sr.tr = (struct kvm_segment){
	    .base = EVI_TSS, .limit = 0x68 + 8, .selector = 0x28, .type = 11, .present = 1};
	sr.ldt = (struct kvm_segment){.type = 2, .present = 1, .limit = 0xffff, .unusable = 1};
	sr.gdt.base = EVI_GDT;
	sr.gdt.limit = 7 * 8 - 1;
	sr.idt.base = EVI_IDT;
	sr.idt.limit = 256 * 16 - 1;
	if (ioctl(e->vcpu, KVM_SET_SREGS, &sr) < 0)
		return evi_fail("KVM_SET_SREGS");
	r.rip = EVI_CODE + (e->ring3 ? EVI_SPIN : EVI_HALT);
	r.rsp = e->ring3 ? EVI_USTACK : EVI_KSTACK;
	return ioctl(e->vcpu, KVM_SET_REGS, &r) < 0 ? evi_fail("KVM_SET_REGS") : 0;
}

/* x2APIC on, software-enabled; the MSI route and the irqfd. */
static int evi_irq(struct evi *e)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[1];
	} m = {.h.nmsrs = 1, .e[0] = {.index = 0x1b, .data = 0xfee00000ull | 0xd00}};
	struct {
		struct kvm_irq_routing h;
		struct kvm_irq_routing_entry e[1];
	} rt = {.h.nr = 1, .e[0] = {.gsi = EVI_GSI, .type = KVM_IRQ_ROUTING_MSI}};
	struct kvm_lapic_state ls;
	struct kvm_irqfd ifd = {.gsi = EVI_GSI};
	uint32_t svr = 0x1ff, tpr = 0;

	if (ioctl(e->vcpu, KVM_SET_MSRS, &m) != 1)
		return evi_fail("KVM_SET_MSRS (x2APIC)");
	if (ioctl(e->vcpu, KVM_GET_LAPIC, &ls) < 0)
		return evi_fail("KVM_GET_LAPIC");
	memcpy(ls.regs + 0xf0, &svr, 4);
	memcpy(ls.regs + 0x80, &tpr, 4);
	if (ioctl(e->vcpu, KVM_SET_LAPIC, &ls) < 0)
		return evi_fail("KVM_SET_LAPIC");
	rt.e[0].u.msi.address_lo = 0xfee00000;
	rt.e[0].u.msi.data = EVI_VECTOR;
	if (ioctl(e->vm, KVM_SET_GSI_ROUTING, &rt) < 0)
		return evi_fail("KVM_SET_GSI_ROUTING");
	e->irq_fd = eventfd(0, EFD_CLOEXEC);
	e->ans_fd = eventfd(0, EFD_CLOEXEC);
	ifd.fd = (uint32_t)e->irq_fd;
	if (e->irq_fd < 0 || e->ans_fd < 0 || ioctl(e->vm, KVM_IRQFD, &ifd) < 0)
		return evi_fail("KVM_IRQFD");
	return 0;
}

static int evi_create(struct evi *e)
{
	struct kvm_userspace_memory_region reg = {.memory_size = EVI_MEM};
	struct kvm_cpuid2 *c;
	int sz;

	e->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (e->kvm < 0)
		return evi_fail("/dev/kvm");
	e->vm = ioctl(e->kvm, KVM_CREATE_VM, 0);
	e->mem = mmap(NULL, EVI_MEM, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (e->vm < 0 || e->mem == MAP_FAILED)
		return evi_fail("KVM_CREATE_VM");
	reg.userspace_addr = (uint64_t)(uintptr_t)e->mem;
	if (ioctl(e->vm, KVM_SET_USER_MEMORY_REGION, &reg) < 0 || ioctl(e->vm, KVM_CREATE_IRQCHIP, 0) < 0)
		return evi_fail("memory / irqchip");
	e->vcpu = ioctl(e->vm, KVM_CREATE_VCPU, 0);
	sz = ioctl(e->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (e->vcpu < 0 || sz <= 0)
		return evi_fail("KVM_CREATE_VCPU");
	e->run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, e->vcpu, 0);
	c = calloc(1, sizeof(*c) + 256 * sizeof(struct kvm_cpuid_entry2));
	if (e->run == MAP_FAILED || !c)
		return evi_fail("vCPU run area");
	c->nent = 256;
	if (ioctl(e->kvm, KVM_GET_SUPPORTED_CPUID, c) < 0 || ioctl(e->vcpu, KVM_SET_CPUID2, c) < 0) {
		free(c);
		return evi_fail("CPUID");
	}
	free(c);
	evi_tables(e);
	return evi_cpu(e) || evi_irq(e) ? -1 : 0;
}

/* The vCPU thread: every handler exit becomes one write of the answer eventfd. */
static void *evi_vcpu(void *arg)
{
	struct evi *e = arg;
	struct kvm_lapic_state ls;
	uint64_t one = 1;

	while (!e->stop) {
		if (ioctl(e->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			evi_fail("KVM_RUN");
			break;
		}
		if (e->run->exit_reason != KVM_EXIT_IO || e->run->io.port != EVI_PORT) {
			fprintf(stderr, "ev-irqfd: unexpected exit %u\n", e->run->exit_reason);
			break;
		}
		if (e->ring3 && ioctl(e->vcpu, KVM_GET_LAPIC, &ls) == 0) {
			uint32_t isr;

			memcpy(&isr, ls.regs + 0x100 + (EVI_VECTOR / 32) * 0x10, 4);
			isr &= ~(1u << (EVI_VECTOR % 32));
			memcpy(ls.regs + 0x100 + (EVI_VECTOR / 32) * 0x10, &isr, 4);
			ioctl(e->vcpu, KVM_SET_LAPIC, &ls);
		}
		/* Pair modes: answer by interrupting the other VM; the leader counts the rounds. */
		int fd = e->ans_fd;
		if (e->peer && !(e->leader && --e->rounds <= 0))
			fd = e->peer->irq_fd;
		if (write(fd, &one, sizeof(one)) != sizeof(one))
			break;
	}
	e->stop = 1;
	return NULL;
}

static int evi_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Two VMs interrupting each other; the mean round is the raw interdomain floor. */
static int evi_pair(struct evi *a, const char *mode, int rounds)
{
	struct evi b = {.irq_fd = -1, .ans_fd = -1, .ring3 = a->ring3};
	pthread_t ta, tb;
	uint64_t one = 1, v, t0, dt;

	a->peer = &b;
	b.peer = a;
	a->leader = 1;
	a->rounds = rounds + 1; /* the first exit of a answers the start signal */
	if (evi_create(a) || evi_create(&b) || pthread_create(&ta, NULL, evi_vcpu, a) ||
	    pthread_create(&tb, NULL, evi_vcpu, &b))
		return 1;
	alarm(60);
	usleep(10000); /* both vCPUs in the guest */
	t0 = evi_now();
	if (write(a->irq_fd, &one, sizeof(one)) != sizeof(one) || read(a->ans_fd, &v, sizeof(v)) != sizeof(v) ||
	    a->stop || b.stop) {
		fprintf(stderr, "ev-irqfd: pair run failed\n");
		return 1;
	}
	dt = evi_now() - t0;
	printf("ev-irqfd %s: %d rounds of two exits and two deliveries: mean %llu ns\n", mode, rounds,
	       (unsigned long long)(dt / (uint64_t)rounds));
	printf("RESULT raw_irqfd_rtt_median_ns_%s %llu\n", mode, (unsigned long long)(dt / (uint64_t)rounds));
	fflush(stdout);
	_exit(0);
}

int main(int argc, char **argv)
{
	struct evi e = {.irq_fd = -1, .ans_fd = -1};
	int rounds = argc > 2 ? atoi(argv[2]) : 2000;
	uint64_t *rtt, one = 1, v;
	pthread_t th;

	if (argc < 2 || rounds < 10 || rounds > 1000000 ||
	    (strcmp(argv[1], "ring3") && strcmp(argv[1], "halt") && strcmp(argv[1], "pair3") &&
	     strcmp(argv[1], "pairh"))) {
		fprintf(stderr, "usage: ev-irqfd ring3|halt|pair3|pairh [ROUNDS]\n");
		return 2;
	}
	e.ring3 = !strcmp(argv[1], "ring3") || !strcmp(argv[1], "pair3");
	if (!strncmp(argv[1], "pair", 4))
		return evi_pair(&e, argv[1], rounds);
	rtt = calloc((size_t)rounds, sizeof(*rtt));
	if (!rtt || evi_create(&e) || pthread_create(&th, NULL, evi_vcpu, &e))
		return 1;
	alarm(60);
	for (int i = 0; i < rounds; i++) {
		uint64_t t0 = evi_now();

		if (write(e.irq_fd, &one, sizeof(one)) != sizeof(one) ||
		    read(e.ans_fd, &v, sizeof(v)) != sizeof(v) || e.stop) {
			fprintf(stderr, "ev-irqfd: round %d failed\n", i);
			return 1;
		}
		rtt[i] = evi_now() - t0;
	}
	qsort(rtt, (size_t)rounds, sizeof(*rtt), evi_cmp);
	printf("ev-irqfd %s: %d round trips: min %llu ns, median %llu ns, p90 %llu ns\n", argv[1], rounds,
	       (unsigned long long)rtt[0], (unsigned long long)rtt[rounds / 2],
	       (unsigned long long)rtt[rounds * 9 / 10]);
	printf("RESULT raw_irqfd_rtt_median_ns_%s %llu\n", argv[1], (unsigned long long)rtt[rounds / 2]);
	fflush(stdout);
	_exit(0); /* the vCPU thread is still in KVM_RUN; process exit tears the VM down */
}
