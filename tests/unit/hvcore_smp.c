/* KVM tests of secondary vCPUs in the daemon core: a tiny 32-bit PVH guest brings vCPU 1 up with
 * VCPUOP_initialise in VCPU_HVM_MODE_32B and VCPUOP_up, and vCPU 1 runs code of its own; pause,
 * core dumps and destroy with vCPU 1 halted, spinning or never started; a triple fault on vCPU 1
 * crashes that domain only. Needs /dev/kvm (SKIP, exit 77, without it). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <CUnit/Basic.h>

#include "core_elf.h"
#include "hv.h"
#include "hvcore_test.h"

#include <xen/sched.h>
#include <xen/vcpu.h>
#include <xen/hvm/hvm_vcpu.h>

#define SMP_CTX_OFF 0x300u /* the vcpu_hvm_context inside the image */
#define SMP_AP_OFF 0x400u  /* vCPU 1's code */
#define SMP_CODE_LEN 0x480u
#define SMP_FLAG (HVT_STACK + 0x40u)
#define SMP_VCPU_STUB (HVT_HCPAGE + 24u * 32u) /* __HYPERVISOR_vcpu_op */
#define SMP_SCHED_STUB (HVT_HCPAGE + 29u * 32u)

enum smp_ap { SMP_AP_HALT, SMP_AP_SPIN, SMP_AP_CRASH };

static struct hv g_hv;
static char g_dir[256];

/* A small x86 assembler: bytes, dwords and forward jumps to a "fail" label patched at the end. */
struct smp_asm {
	uint8_t *c;
	size_t n;
	size_t fails[8];
	unsigned nfail;
};

static void smp_b(struct smp_asm *a, uint8_t b)
{
	a->c[a->n++] = b;
}

static void smp_d(struct smp_asm *a, uint32_t v)
{
	memcpy(a->c + a->n, &v, 4);
	a->n += 4;
}

/* mov edi, cmd; mov esi, 1; mov edx, CTX; call vcpu_op; test eax, eax; jne fail */
static void smp_vcpu_op(struct smp_asm *a, uint32_t cmd)
{
	smp_b(a, 0xbf), smp_d(a, cmd);
	smp_b(a, 0xbe), smp_d(a, 1);
	smp_b(a, 0xba), smp_d(a, HVT_LOAD + SMP_CTX_OFF);
	smp_b(a, 0xb8), smp_d(a, SMP_VCPU_STUB);
	smp_b(a, 0xff), smp_b(a, 0xd0);
	smp_b(a, 0x85), smp_b(a, 0xc0);
	smp_b(a, 0x75), a->fails[a->nfail++] = a->n, smp_b(a, 0);
}

/* vCPU 0: hypercall page, initialise + up vCPU 1, then (wait) until vCPU 1 set the flag, print
 * "B" and power off, or (!wait) spin for ever. vCPU 1: see enum smp_ap. */
static size_t smp_code(uint8_t *c, enum smp_ap ap, bool wait)
{
	struct smp_asm a = {c, 0, {0}, 0};
	struct vcpu_hvm_context ctx;
	struct vcpu_hvm_x86_32 *r = &ctx.cpu_regs.x86_32;
	size_t loop;

	memset(c, 0x90, SMP_CODE_LEN);
	smp_b(&a, 0xbc), smp_d(&a, HVT_STACK);				     /* mov esp, STACK */
	smp_b(&a, 0xb9), smp_d(&a, 0x40000000u);			     /* mov ecx, MSR */
	smp_b(&a, 0xb8), smp_d(&a, HVT_HCPAGE);				     /* mov eax, page */
	smp_b(&a, 0x31), smp_b(&a, 0xd2);				     /* xor edx, edx */
	smp_b(&a, 0x0f), smp_b(&a, 0x30);				     /* wrmsr */
	smp_vcpu_op(&a, VCPUOP_initialise);
	smp_vcpu_op(&a, VCPUOP_up);
	loop = a.n;
	if (wait) {
		smp_b(&a, 0x80), smp_b(&a, 0x3d), smp_d(&a, SMP_FLAG), smp_b(&a, 1); /* cmp [FLAG], 1 */
		smp_b(&a, 0x75), smp_b(&a, (uint8_t)(loop - (a.n + 1)));	      /* jne loop */
		smp_b(&a, 0xb0), smp_b(&a, 'B'), smp_b(&a, 0xe6), smp_b(&a, 0xe9); /* out 0xe9, 'B' */
		smp_b(&a, 0xc7), smp_b(&a, 0x05), smp_d(&a, HVT_STACK + 16), smp_d(&a, SHUTDOWN_poweroff);
		smp_b(&a, 0xbf), smp_d(&a, SCHEDOP_shutdown);
		smp_b(&a, 0xbe), smp_d(&a, HVT_STACK + 16);
		smp_b(&a, 0xb8), smp_d(&a, SMP_SCHED_STUB);
		smp_b(&a, 0xff), smp_b(&a, 0xd0);
	} else {
		smp_b(&a, 0xf3), smp_b(&a, 0x90), smp_b(&a, 0xeb), smp_b(&a, 0xfc); /* pause; jmp */
	}
	for (unsigned i = 0; i < a.nfail; i++)
		c[a.fails[i]] = (uint8_t)(a.n - (a.fails[i] + 1));
	smp_b(&a, 0x0f), smp_b(&a, 0x0b); /* fail: ud2, no IDT: triple fault */
	CU_ASSERT_FATAL(a.n <= SMP_CTX_OFF);

	/* vCPU 1: flat 32-bit protected mode, paging off */
	memset(&ctx, 0, sizeof(ctx));
	ctx.mode = VCPU_HVM_MODE_32B;
	r->eip = HVT_LOAD + SMP_AP_OFF;
	r->esp = HVT_STACK - 0x1000;
	r->eflags = 0x2;
	r->cr0 = 0x11;
	r->cs_limit = r->ds_limit = r->ss_limit = r->es_limit = 0xffffffffu;
	r->cs_ar = 0xc9b;
	r->ds_ar = r->ss_ar = r->es_ar = 0xc93;
	r->tr_limit = 0x67;
	r->tr_ar = 0x8b;
	memcpy(c + SMP_CTX_OFF, &ctx, sizeof(ctx));

	a.n = SMP_AP_OFF;
	if (ap == SMP_AP_CRASH) {
		smp_b(&a, 0x0f), smp_b(&a, 0x0b); /* ud2 */
	} else {
		smp_b(&a, 0xb0), smp_b(&a, 'A'), smp_b(&a, 0xe6), smp_b(&a, 0xe9); /* out 0xe9, 'A' */
		smp_b(&a, 0xc6), smp_b(&a, 0x05), smp_d(&a, SMP_FLAG), smp_b(&a, 1); /* mov [FLAG], 1 */
		if (ap == SMP_AP_HALT)
			smp_b(&a, 0xf4), smp_b(&a, 0xeb), smp_b(&a, 0xfd); /* hlt; jmp hlt */
		else
			smp_b(&a, 0xf3), smp_b(&a, 0x90), smp_b(&a, 0xeb), smp_b(&a, 0xfc); /* pause; jmp */
	}
	return SMP_CODE_LEN;
}

static struct hv_domain *smp_create(const char *name, enum smp_ap ap, bool wait, unsigned vcpus)
{
	uint8_t code[SMP_CODE_LEN], img[HVT_IMAGE_MAX];
	struct lamina_ctl_domcfg cfg;
	struct hv_domain *hd = NULL;
	char path[512];
	size_t len;

	len = hvt_elf_build(img, code, smp_code(code, ap, wait), 0, HVT_NOTE_PHDR);
	CU_ASSERT_FATAL(hvt_write_file(g_dir, name, img, len, path, sizeof(path)) == 0);
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	cfg.memory_kib = 4096;
	cfg.vcpus = vcpus;
	cfg.on_poweroff = cfg.on_reboot = cfg.on_crash = LAMINA_ACT_PRESERVE;
	snprintf(cfg.kernel, sizeof(cfg.kernel), "%s", path);
	CU_ASSERT_FATAL(hv_domain_create(&g_hv, &cfg, &hd) == 0);
	return hd;
}

static int smp_stopped(struct hv_domain *hd)
{
	return hd->d.state == LAMINA_DOM_SHUTDOWN || hd->d.state == LAMINA_DOM_CRASHED;
}

/* Runs the main loop's queue until the domain stopped (and its action ran) or ms pass. */
static int smp_run_until_stopped(struct hv_domain *hd, int ms)
{
	struct pollfd p = {.fd = g_hv.evq_fd, .events = POLLIN};

	for (int waited = 0; !(smp_stopped(hd) && !hd->action_pending); waited += 10) {
		if (waited >= ms)
			return -ETIMEDOUT;
		poll(&p, 1, 10);
		hv_evq_run(&g_hv);
	}
	return 0;
}

static int smp_wait_flag(struct hv_domain *hd, int ms)
{
	for (int waited = 0; waited < ms; waited++) {
		if (__atomic_load_n(&hd->d.mem.ram[SMP_FLAG], __ATOMIC_ACQUIRE) == 1)
			return 0;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

static void smp_console(const char *name, char *buf, size_t cap)
{
	char path[600];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/console/%s.log", g_dir, name);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, buf, cap - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
}

static int smp_dump(struct hv_domain *hd, struct lamina_ctl_dump_core_reply *rep)
{
	char path[600];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s.core", g_dir, hd->d.cfg.name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -errno;
	rc = hv_domain_dump_core(hd, fd, rep);
	close(fd);
	return rc;
}

static uint64_t smp_ms_since(uint64_t t0)
{
	return (domain_mono_ns() - t0) / 1000000u;
}

/* vCPU 0 brings vCPU 1 up in 32-bit mode; it prints, sets the flag vCPU 0 waits for, halts. */
static void test_ap_32bit(void)
{
	struct lamina_ctl_dump_core_reply rep;
	struct lamina_ctl_dominfo info;
	struct hv_domain *hd = smp_create("ap32", SMP_AP_HALT, true, 2);
	char con[64];

	CU_ASSERT(smp_run_until_stopped(hd, 10000) == 0);
	hv_domain_info(hd, &info);
	CU_ASSERT_EQUAL(info.state, LAMINA_DOM_SHUTDOWN);
	CU_ASSERT_EQUAL(info.shutdown_reason, SHUTDOWN_poweroff);
	CU_ASSERT_EQUAL(info.vcpus, 2);
	CU_ASSERT_EQUAL(info.vcpus_online, 2);
	CU_ASSERT(atomic_load(&hd->d.vcpu[1]->exits) >= 1); /* its console byte */
	smp_console("ap32", con, sizeof(con));
	CU_ASSERT_STRING_EQUAL(con, "AB");
	/* both threads ended: both vCPUs' registers in the core */
	CU_ASSERT(smp_dump(hd, &rep) == 0);
	CU_ASSERT_EQUAL(rep.nr_vcpus, 2);
	hv_domain_destroy(hd);
}

/* Pause parks vCPU 1 too (a core dump reads its registers, which needs it parked); unpause lets
 * it on; destroy with vCPU 1 spinning in ring 0 does not hang. */
static void test_pause_dump_destroy_spinning(void)
{
	struct lamina_ctl_dump_core_reply rep;
	struct hv_domain *hd = smp_create("spin2", SMP_AP_SPIN, false, 2);
	struct vcpu *v1 = hd->d.vcpu[1];
	uint64_t t0, e0;

	CU_ASSERT_FATAL(smp_wait_flag(hd, 10000) == 0);
	CU_ASSERT_TRUE(v1->online);
	CU_ASSERT(hv_domain_pause(hd, true) == 0);
	usleep(50000);
	e0 = atomic_load(&v1->exits);
	t0 = domain_mono_ns();
	CU_ASSERT(smp_dump(hd, &rep) == 0); /* -EBUSY if vCPU 1 never parked */
	CU_ASSERT(smp_ms_since(t0) < 1000);
	usleep(50000);
	CU_ASSERT_EQUAL(atomic_load(&v1->exits), e0);
	CU_ASSERT_EQUAL(v1->runstate.state, RUNSTATE_offline); /* parked */
	CU_ASSERT(hv_domain_pause(hd, false) == 0);
	for (int i = 0; i < 1000 && v1->runstate.state != RUNSTATE_running; i++)
		usleep(1000);
	CU_ASSERT_EQUAL(v1->runstate.state, RUNSTATE_running);
	t0 = domain_mono_ns();
	hv_domain_destroy(hd);
	hv_reaper_drain(&g_hv);
	CU_ASSERT(smp_ms_since(t0) < 2000);
}

/* Two vCPUs, vCPU 1 never brought up: the dump does not wait for it, has no registers for it. */
static void test_never_started(void)
{
	struct lamina_ctl_dump_core_reply rep;
	struct lamina_ctl_dominfo info;
	uint8_t code[4], img[HVT_IMAGE_MAX];
	struct lamina_ctl_domcfg cfg;
	struct hv_domain *hd;
	char path[512];
	uint64_t t0;

	CU_ASSERT_FATAL(hvt_write_file(g_dir, "idle2", img,
				       hvt_elf_build(img, code, hvt_code_spin(code), 0, HVT_NOTE_PHDR), path,
				       sizeof(path)) == 0);
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.name, sizeof(cfg.name), "idle2");
	cfg.memory_kib = 4096;
	cfg.vcpus = 2;
	snprintf(cfg.kernel, sizeof(cfg.kernel), "%s", path);
	CU_ASSERT_FATAL(hv_domain_create(&g_hv, &cfg, &hd) == 0);
	usleep(20000);
	hv_domain_info(hd, &info);
	CU_ASSERT_EQUAL(info.vcpus, 2);
	CU_ASSERT_EQUAL(info.vcpus_online, 1);
	CU_ASSERT_EQUAL(g_hv.rops->vcpu_regs(hd->d.vcpu[1], &(struct core_elf_vcpu){0}), -ENODATA);
	t0 = domain_mono_ns();
	CU_ASSERT(smp_dump(hd, &rep) == 0);
	CU_ASSERT(smp_ms_since(t0) < 1000);
	CU_ASSERT_EQUAL(rep.nr_vcpus, 2);
	CU_ASSERT_EQUAL(hd->d.state, LAMINA_DOM_RUNNING); /* resumed after the dump */
	t0 = domain_mono_ns();
	hv_domain_destroy(hd);
	hv_reaper_drain(&g_hv);
	CU_ASSERT(smp_ms_since(t0) < 2000);
}

/* vCPU 1 triple-faults: its domain crashes (the log names vcpu1), the daemon goes on. */
static void test_ap_triple_fault(void)
{
	struct hv_domain *hd = smp_create("aptf", SMP_AP_CRASH, false, 2);
	char log[600], buf[8192];

	CU_ASSERT(smp_run_until_stopped(hd, 10000) == 0);
	CU_ASSERT_EQUAL(hd->d.state, LAMINA_DOM_CRASHED);
	CU_ASSERT_EQUAL(hd->d.shutdown_reason, SHUTDOWN_crash);
	snprintf(log, sizeof(log), "%s/hv.log", g_dir);
	{
		int fd = open(log, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		buf[n > 0 ? n : 0] = '\0';
		if (fd >= 0)
			close(fd);
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "aptf: crashed: triple fault (vcpu1"));
	hv_domain_destroy(hd);
}

static int smp_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

int main(void)
{
	char sub[300];
	unsigned failed;
	CU_pSuite s;
	int fd;

	fd = open("/dev/kvm", O_RDWR);
	if (fd < 0) {
		printf("*** SKIP: hvcore_smp needs /dev/kvm (%s) ***\n", strerror(errno));
		return 77;
	}
	close(fd);
	snprintf(g_dir, sizeof(g_dir), "/tmp/hvcore-smp.XXXXXX");
	if (!mkdtemp(g_dir))
		return 1;
	snprintf(sub, sizeof(sub), "%s/console", g_dir);
	mkdir(sub, 0700);
	snprintf(sub, sizeof(sub), "%s/hv.log", g_dir);
	if (hv_init(&g_hv, g_dir, sub, &kvm_runner_ops) < 0)
		return 1;
	if (!g_hv.rctx) {
		printf("*** SKIP: KVM backend did not start ***\n");
		return 77;
	}
	CU_initialize_registry();
	s = CU_add_suite("hvcore_smp", NULL, NULL);
	CU_add_test(s, "32-bit VCPUOP_initialise + up: vCPU 1 runs its code", test_ap_32bit);
	CU_add_test(s, "pause, dump, unpause, destroy with vCPU 1 spinning", test_pause_dump_destroy_spinning);
	CU_add_test(s, "2 vCPUs, vCPU 1 never up: info, dump, destroy", test_never_started);
	CU_add_test(s, "triple fault on vCPU 1 crashes the domain", test_ap_triple_fault);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	hv_fini(&g_hv);
	if (!failed)
		nftw(g_dir, smp_rm, 16, FTW_DEPTH | FTW_PHYS);
	else
		printf("log and consoles kept in %s\n", g_dir);
	return failed ? 1 : 0;
}
