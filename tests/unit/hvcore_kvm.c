/* KVM smoke tests of the daemon core without the socket: a tiny PVH guest built here boots,
 * installs the hypercall page, prints through the debug port and shuts down by hypercall; a
 * triple fault crashes only its domain; on_crash=restart rebuilds it, up to the restart-rate
 * limit; pause parks it; the guest kernel ($LAMINA_GUEST) boots when present. Needs /dev/kvm
 * (SKIP, exit 77, without it). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <CUnit/Basic.h>

#include "hv.h"
#include "hvcore_test.h"

#include <xen/sched.h>

static struct hv g_hv_storage;
static char g_dir[256];

static struct hv *test_hv(void)
{
	return &g_hv_storage;
}

/* Runs the main loop's event queue until pred holds or ms pass. */
static int run_until(struct hv *hv, uint32_t domid, int (*pred)(struct hv *hv, uint32_t domid), int ms)
{
	struct pollfd p = {.fd = hv->evq_fd, .events = POLLIN};
	int waited = 0;

	while (!pred(hv, domid)) {
		if (waited >= ms)
			return -ETIMEDOUT;
		poll(&p, 1, 10);
		hv_evq_run(hv);
		waited += 10;
	}
	return 0;
}

static int stopped(struct hv *hv, uint32_t domid)
{
	struct hv_domain *hd = hv_find_id(hv, domid);
	return hd && (hd->d.state == LAMINA_DOM_SHUTDOWN || hd->d.state == LAMINA_DOM_CRASHED) &&
	       !hd->action_pending;
}

static int restarted(struct hv *hv, uint32_t domid)
{
	struct hv_domain *hd = hv_find_id(hv, domid);
	return hd && hd->restarts >= 1;
}

static void make_cfg(struct lamina_ctl_domcfg *c, const char *name, const char *kernel)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->memory_kib = 4096;
	c->vcpus = 1;
	c->on_poweroff = LAMINA_ACT_PRESERVE;
	c->on_reboot = LAMINA_ACT_PRESERVE;
	c->on_crash = LAMINA_ACT_PRESERVE;
	snprintf(c->kernel, sizeof(c->kernel), "%s", kernel);
}

static void write_kernel(const char *name, size_t (*gen)(uint8_t *), char *path)
{
	uint8_t code[256], img[HVT_IMAGE_MAX];
	size_t n = gen(code), len = hvt_elf_build(img, code, n, 0, HVT_NOTE_PHDR);

	CU_ASSERT_FATAL(hvt_write_file(g_dir, name, img, len, path, 512) == 0);
}

static size_t gen_poweroff(uint8_t *c)
{
	return hvt_code_hello(c, SHUTDOWN_poweroff);
}

static void test_boot_hypercall_page(void)
{
	struct hv *hv = test_hv();
	struct lamina_ctl_domcfg cfg;
	struct lamina_ctl_dominfo info;
	struct hv_domain *hd;
	char path[512], log[600], buf[16] = {0};
	int fd;

	write_kernel("hello.elf", gen_poweroff, path);
	make_cfg(&cfg, "hello", path);
	cfg.vcpus = 3; /* vCPU 0 runs; 1 and 2 exist in KVM, offline */
	CU_ASSERT_FATAL(hv_domain_create(hv, &cfg, &hd) == 0);
	CU_ASSERT(hd->d.domid >= 1);
	CU_ASSERT(run_until(hv, hd->d.domid, stopped, 5000) == 0);
	hv_domain_info(hd, &info);
	CU_ASSERT_EQUAL(info.state, LAMINA_DOM_SHUTDOWN);
	CU_ASSERT_EQUAL(info.shutdown_reason, SHUTDOWN_poweroff);
	CU_ASSERT_EQUAL(info.console_bytes, 2);
	CU_ASSERT(info.first_console_ns >= info.create_ns);
	CU_ASSERT(info.hypercalls >= 1); /* the guest reached the hypercall page */
	CU_ASSERT(info.exits >= 5);
	CU_ASSERT_EQUAL(info.action_taken, LAMINA_ACT_PRESERVE);
	CU_ASSERT_EQUAL(info.vcpus, 3);
	CU_ASSERT_EQUAL(info.vcpus_online, 1);
	CU_ASSERT(hd->d.tsc_khz > 0);
	/* The page holds Xen-style stubs: mov $nr,%eax; out %eax,$0x5c; ret. */
	CU_ASSERT_EQUAL(hd->d.mem.ram[HVT_HCPAGE + 29 * 32], 0xb8);
	snprintf(log, sizeof(log), "%s/console/hello.log", g_dir);
	fd = open(log, O_RDONLY);
	CU_ASSERT(fd >= 0);
	if (fd >= 0) {
		CU_ASSERT(read(fd, buf, sizeof(buf) - 1) == 2);
		CU_ASSERT_STRING_EQUAL(buf, "OK");
		close(fd);
	}
	hv_domain_destroy(hd);
	CU_ASSERT_PTR_NULL(hv_find_name(hv, "hello"));
}

static void test_triple_fault_crashes_domain_only(void)
{
	struct hv *hv = test_hv();
	struct lamina_ctl_domcfg cfg;
	struct hv_domain *hd, *hd2;
	char path[512], path2[512];

	write_kernel("crash.elf", hvt_code_crash, path);
	write_kernel("spin.elf", hvt_code_spin, path2);
	make_cfg(&cfg, "spinner", path2);
	CU_ASSERT_FATAL(hv_domain_create(hv, &cfg, &hd2) == 0);
	make_cfg(&cfg, "crasher", path);
	CU_ASSERT_FATAL(hv_domain_create(hv, &cfg, &hd) == 0);
	CU_ASSERT(run_until(hv, hd->d.domid, stopped, 5000) == 0);
	CU_ASSERT_EQUAL(hd->d.state, LAMINA_DOM_CRASHED);
	CU_ASSERT_EQUAL(hd->d.shutdown_reason, SHUTDOWN_crash);
	CU_ASSERT_EQUAL(hd2->d.state, LAMINA_DOM_RUNNING);
	/* pause parks the spinner; unpause lets it go on */
	CU_ASSERT(hv_domain_pause(hd2, true) == 0);
	CU_ASSERT_EQUAL(hd2->d.state, LAMINA_DOM_PAUSED);
	CU_ASSERT(hv_domain_pause(hd, true) == -EINVAL); /* crashed: cannot pause */
	CU_ASSERT(hv_domain_pause(hd2, false) == 0);
	CU_ASSERT_EQUAL(hd2->d.state, LAMINA_DOM_RUNNING);
	hv_domain_destroy(hd);
	hv_domain_destroy(hd2);
}

static void test_crash_restart(void)
{
	struct hv *hv = test_hv();
	struct lamina_ctl_domcfg cfg;
	struct hv_domain *hd;
	char path[512];
	uint32_t domid;

	write_kernel("crash2.elf", hvt_code_crash, path);
	make_cfg(&cfg, "restarter", path);
	cfg.on_crash = LAMINA_ACT_RESTART;
	CU_ASSERT_FATAL(hv_domain_create(hv, &cfg, &hd) == 0);
	domid = hd->d.domid;
	CU_ASSERT(run_until(hv, domid, restarted, 5000) == 0);
	hd = hv_find_id(hv, domid);
	CU_ASSERT_PTR_NOT_NULL_FATAL(hd);
	CU_ASSERT_STRING_EQUAL(hd->d.cfg.name, "restarter");
	hv_domain_destroy(hd);
}

static int loop_stopped(struct hv *hv, uint32_t domid)
{
	struct hv_domain *hd = hv_find_id(hv, domid);
	return hd && hd->restart_loop && !hd->action_pending;
}

static int restarted_4(struct hv *hv, uint32_t domid)
{
	struct hv_domain *hd = hv_find_id(hv, domid);
	return hd && hd->restarts >= 4;
}

/* A domain that crashes at once with on_crash=restart: the fourth restart within the window is
 * refused, the domain stays crashed and preserved (INFO/WAIT show it) and the log says why; with a
 * window shorter than the crash cycle, restarts go on. The limit's parser refuses nonsense. */
static void test_crash_loop_limited(void)
{
	struct hv *hv = test_hv();
	unsigned max0 = hv->restart_max, max;
	uint64_t win0 = hv->restart_window_ns, win;
	struct lamina_ctl_dominfo info;
	struct lamina_ctl_domcfg cfg;
	struct hv_domain *hd;
	char path[512], logp[600], line[512];
	bool logged = false;
	uint32_t domid;
	FILE *f;

	CU_ASSERT_EQUAL(hv_restart_limit_parse(NULL, &max, &win), 0);
	CU_ASSERT_EQUAL(max, HV_RESTART_MAX_DEFAULT);
	CU_ASSERT_EQUAL(win, HV_RESTART_WINDOW_DEFAULT_S * 1000000000ull);
	CU_ASSERT_EQUAL(hv_restart_limit_parse("5/30", &max, &win), 0);
	CU_ASSERT_EQUAL(max, 5);
	CU_ASSERT_EQUAL(win, 30 * 1000000000ull);
	CU_ASSERT_EQUAL(hv_restart_limit_parse("0", &max, &win), 0);
	CU_ASSERT_EQUAL(max, 0);
	static const char *const bad[] = {"x", "5", "5/", "5/0", "33/10", "5/10x", "-1/10", "5/100000"};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(hv_restart_limit_parse(bad[i], &max, &win), -EINVAL);
		CU_ASSERT_EQUAL(max, HV_RESTART_MAX_DEFAULT);
	}

	write_kernel("crash3.elf", hvt_code_crash, path);
	make_cfg(&cfg, "looper", path);
	cfg.on_crash = LAMINA_ACT_RESTART;
	hv->restart_max = 3;
	hv->restart_window_ns = 60 * 1000000000ull;
	CU_ASSERT_FATAL(hv_domain_create(hv, &cfg, &hd) == 0);
	domid = hd->d.domid;
	CU_ASSERT(run_until(hv, domid, loop_stopped, 10000) == 0);
	hd = hv_find_id(hv, domid);
	CU_ASSERT_PTR_NOT_NULL_FATAL(hd);
	hv_domain_info(hd, &info);
	CU_ASSERT_EQUAL(info.restarts, 3);
	CU_ASSERT_EQUAL(info.state, LAMINA_DOM_CRASHED);
	CU_ASSERT_EQUAL(info.shutdown_reason, SHUTDOWN_crash);
	CU_ASSERT_EQUAL(info.action_taken, LAMINA_ACT_PRESERVE);
	/* It stays so: nothing restarts it behind our back. */
	poll(NULL, 0, 100);
	hv_evq_run(hv);
	CU_ASSERT_PTR_EQUAL(hv_find_id(hv, domid), hd);
	CU_ASSERT_EQUAL(hd->restarts, 3);
	snprintf(logp, sizeof(logp), "%s/hv.log", g_dir);
	f = fopen(logp, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while (fgets(line, sizeof(line), f))
		logged |= strstr(line, "looper: restart loop: more than 3 restarts within 60 s; left crashed") != NULL;
	fclose(f);
	CU_ASSERT(logged);
	hv_domain_destroy(hd);

	/* A window shorter than a crash cycle never trips. */
	hv->restart_max = 1;
	hv->restart_window_ns = 1;
	CU_ASSERT_FATAL(hv_domain_create(hv, &cfg, &hd) == 0);
	domid = hd->d.domid;
	CU_ASSERT(run_until(hv, domid, restarted_4, 10000) == 0);
	hd = hv_find_id(hv, domid);
	CU_ASSERT_PTR_NOT_NULL_FATAL(hd);
	CU_ASSERT_FALSE(hd->restart_loop);
	hv_domain_destroy(hd);
	hv->restart_max = max0;
	hv->restart_window_ns = win0;
}

static int has_console(struct hv *hv, uint32_t domid)
{
	struct hv_domain *hd = hv_find_id(hv, domid);
	return hd && atomic_load(&hd->d.first_console_ns) != 0;
}

/* The file starts with an x86-64 ELF64 core header (the layout is tested in hvcore_coredump). */
static int core_is_elf(const char *path)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return 0;
	ok = read(fd, &eh, sizeof(eh)) == (ssize_t)sizeof(eh) && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
	     eh.e_type == ET_CORE && eh.e_machine == EM_X86_64;
	close(fd);
	return ok;
}

/* rename-restart keeps the stopped domain as NAME-1 and starts NAME anew; coredump-destroy
 * writes its ELF core first. Stops are requested as the SHUTDOWN op does. */
static void test_rename_restart_and_coredump(void)
{
	struct hv *hv = test_hv();
	struct lamina_ctl_domcfg cfg;
	struct hv_domain *hd, *old, *fresh;
	char path[512], dump[600];
	struct stat st;
	uint32_t domid;

	write_kernel("idle.elf", hvt_code_block, path);
	make_cfg(&cfg, "rr", path);
	cfg.on_reboot = LAMINA_ACT_RENAME_RESTART;
	CU_ASSERT_FATAL(hv_domain_create(hv, &cfg, &hd) == 0);
	domid = hd->d.domid;
	CU_ASSERT(run_until(hv, domid, has_console, 5000) == 0);
	hv_domain_stop(hd, SHUTDOWN_reboot, NULL);
	CU_ASSERT(run_until(hv, domid, stopped, 5000) == 0);
	old = hv_find_id(hv, domid);
	CU_ASSERT_PTR_NOT_NULL_FATAL(old);
	CU_ASSERT_STRING_EQUAL(old->d.cfg.name, "rr-1");
	CU_ASSERT_EQUAL(old->d.state, LAMINA_DOM_SHUTDOWN);
	CU_ASSERT_EQUAL(old->action_taken, LAMINA_ACT_RENAME_RESTART);
	fresh = hv_find_name(hv, "rr");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fresh);
	CU_ASSERT(fresh->d.domid != domid);
	CU_ASSERT_EQUAL(fresh->restarts, 1);
	CU_ASSERT_EQUAL(fresh->d.state, LAMINA_DOM_RUNNING);
	hv_domain_destroy(old);
	hv_domain_destroy(fresh);

	make_cfg(&cfg, "dumped", path);
	cfg.on_reboot = LAMINA_ACT_COREDUMP_DESTROY;
	CU_ASSERT_FATAL(hv_domain_create(hv, &cfg, &hd) == 0);
	domid = hd->d.domid;
	CU_ASSERT(run_until(hv, domid, has_console, 5000) == 0);
	hv_domain_stop(hd, SHUTDOWN_reboot, NULL);
	hv_evq_run(hv);
	CU_ASSERT_PTR_NULL(hv_find_id(hv, domid));
	snprintf(dump, sizeof(dump), "%s/dump/dumped.%u.core", g_dir, domid);
	CU_ASSERT(stat(dump, &st) == 0 && st.st_size > 4096 * 1024); /* headers, RAM, extra pages */
	CU_ASSERT(core_is_elf(dump));
}


static int log_has(const char *name, const char *needle)
{
	char path[512], line[512];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "%s/console/%s.log", g_dir, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* The guest kernel's hello and selftest apps, when the kernel has been built. */
static void test_guest_kernel(void)
{
	static const char *const apps[] = {"hello", "selftest"};
	const char *g = getenv("LAMINA_GUEST");
	struct hv *hv = test_hv();
	struct lamina_ctl_domcfg cfg;
	struct hv_domain *hd;
	struct stat st;
	char name[32];
	unsigned i;

	if (!g || stat(g, &st) != 0) {
		printf("\n  (no guest kernel at $LAMINA_GUEST: guest boot not tried)\n");
		return;
	}
	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "guest-%s", apps[i]);
		make_cfg(&cfg, name, g);
		cfg.memory_kib = 32768;
		snprintf(cfg.cmdline, sizeof(cfg.cmdline), "app=%s", apps[i]);
		CU_ASSERT_FATAL(hv_domain_create(hv, &cfg, &hd) == 0);
		CU_ASSERT(run_until(hv, hd->d.domid, stopped, 30000) == 0);
		CU_ASSERT_EQUAL(hd->d.state, LAMINA_DOM_SHUTDOWN);
		CU_ASSERT(atomic_load(&hd->d.console_bytes) > 0);
		CU_ASSERT(log_has(name, "Test result: SUCCESS"));
		hv_domain_destroy(hd);
	}
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

int main(void)
{
	unsigned failed;
	CU_pSuite s;
	int fd;

	fd = open("/dev/kvm", O_RDWR);
	if (fd < 0) {
		printf("SKIP: hvcore_kvm needs /dev/kvm (%s)\n", strerror(errno));
		return 77;
	}
	close(fd);
	snprintf(g_dir, sizeof(g_dir), "/tmp/hvcore-kvm.XXXXXX");
	if (!mkdtemp(g_dir))
		return 1;
	{
		char sub[300];
		snprintf(sub, sizeof(sub), "%s/console", g_dir);
		mkdir(sub, 0700);
	}
	{
		char logp[300];
		snprintf(logp, sizeof(logp), "%s/hv.log", g_dir);
		if (hv_init(test_hv(), g_dir, logp, &kvm_runner_ops) < 0)
			return 1;
	}
	if (!test_hv()->rctx) {
		printf("SKIP: KVM backend did not start\n");
		return 77;
	}
	CU_initialize_registry();
	s = CU_add_suite("hvcore_kvm", NULL, NULL);
	CU_add_test(s, "boot, hypercall page, console, shutdown", test_boot_hypercall_page);
	CU_add_test(s, "triple fault crashes one domain; pause", test_triple_fault_crashes_domain_only);
	CU_add_test(s, "on_crash=restart", test_crash_restart);
	CU_add_test(s, "a crash loop stops at the restart-rate limit", test_crash_loop_limited);
	CU_add_test(s, "rename-restart, coredump-destroy", test_rename_restart_and_coredump);
	CU_add_test(s, "guest kernel app=hello", test_guest_kernel);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	hv_fini(test_hv());
	if (!failed)
		nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else
		printf("log and consoles kept in %s\n", g_dir);
	return failed ? 1 : 0;
}
