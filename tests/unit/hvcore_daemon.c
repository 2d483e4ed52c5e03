/* lamina-hv end to end over hv.sock: start-up files, peer-credential refusal, 50 concurrent
 * creates of idle domains, paged LIST, INFO/PAUSE/WAIT/SHUTDOWN semantics, concurrent destroys
 * with no leaked descriptors or threads in the daemon, host memory per idle domain, HOST_STOP.
 * Needs /dev/kvm (SKIP, exit 77, without it). */
#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include <CUnit/Basic.h>

#include "lamina/control.h"
#include "hvcore_test.h"

#include <xen/xen.h>
#include <xen/sched.h>

#define NDOM 50

static char g_dir[64], g_block[512], g_hello[512];
static pid_t g_pid;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int conn_open(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/hv.sock", g_dir);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* One request, one reply; returns the status, copies at most cap payload bytes to out. */
static int rpc(int fd, uint16_t op, const void *req, size_t len, void *out, size_t cap, size_t *got)
{
	static _Atomic uint32_t seq;
	uint8_t *msg = malloc(sizeof(struct lamina_ctl_hdr) + LAMINA_CTL_MAX_PAYLOAD);
	struct lamina_ctl_hdr h = {LAMINA_CTL_MAGIC, LAMINA_CTL_VERSION, op, ++seq, 0, (uint32_t)len, 0};
	ssize_t n;
	int st = -EIO;

	memcpy(msg, &h, sizeof(h));
	if (len)
		memcpy(msg + sizeof(h), req, len);
	if (send(fd, msg, sizeof(h) + len, 0) != (ssize_t)(sizeof(h) + len))
		goto out;
	n = recv(fd, msg, sizeof(h) + LAMINA_CTL_MAX_PAYLOAD, 0);
	if (n < (ssize_t)sizeof(h))
		goto out;
	memcpy(&h, msg, sizeof(h));
	if (h.op != op || (h.flags & LAMINA_CTL_F_REPLY) == 0 || h.len != (uint32_t)(n - sizeof(h)))
		goto out;
	if (out)
		memcpy(out, msg + sizeof(h), h.len < cap ? h.len : cap);
	if (got)
		*got = h.len;
	st = h.status;
out:
	free(msg);
	return st;
}

static int count_dir(const char *fmt)
{
	char path[128];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), fmt, (int)g_pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static long rss_kib(void)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)g_pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void cfg_for(struct lamina_ctl_domcfg *c, const char *name, const char *kernel)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->memory_kib = 4096;
	c->vcpus = 1;
	c->on_poweroff = LAMINA_ACT_PRESERVE;
	snprintf(c->kernel, sizeof(c->kernel), "%s", kernel);
}

static void ref_name(struct lamina_ctl_domref *r, const char *name)
{
	memset(r, 0, sizeof(*r));
	r->domid = LAMINA_DOMID_BY_NAME;
	snprintf(r->name, sizeof(r->name), "%s", name);
}

static void test_startup(void)
{
	char path[128], buf[32] = {0};
	struct lamina_ctl_hello hello;
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/hv.sock", g_dir);
	CU_ASSERT_FATAL(stat(path, &st) == 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/hv.pid", g_dir);
	fd = open(path, O_RDONLY);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	CU_ASSERT_EQUAL(atoi(buf), g_pid);
	fd = conn_open();
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_HELLO, NULL, 0, &hello, sizeof(hello), NULL), 0);
	CU_ASSERT_EQUAL(hello.version, LAMINA_CTL_VERSION);
	close(fd);
}

static int system_grep(const char *file, const char *needle)
{
	char line[512];
	FILE *f = fopen(file, "r");
	int found = -1;

	if (!f)
		return -1;
	while (found && fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			found = 0;
	fclose(f);
	return found;
}

static void test_non_root_refused(void)
{
	pid_t p;
	int status;

	if (geteuid() != 0) {
		printf("\n  (not root: peer-credential refusal not tried)\n");
		return;
	}
	p = fork();
	if (p == 0) {
		char b[64];
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/hv.sock", g_dir);
		/* Open the file modes so only the peer-credential check stands in the way. */
		if (chmod(g_dir, 0711) < 0 || chmod(sa.sun_path, 0666) < 0 || setuid(65534) < 0)
			_exit(3);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(4);
		struct lamina_ctl_hdr h = {
		    LAMINA_CTL_MAGIC, LAMINA_CTL_VERSION, LAMINA_CTL_HELLO, 1, 0, 0, 0};
		send(fd, &h, sizeof(h), MSG_NOSIGNAL);
		_exit(recv(fd, b, sizeof(b), 0) <= 0 ? 0 : 1); /* closed without a reply */
	}
	CU_ASSERT_FATAL(waitpid(p, &status, 0) == p);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	{
		char path[128];
		snprintf(path, sizeof(path), "%s/hv.sock", g_dir);
		chmod(path, 0600);
		chmod(g_dir, 0700);
		snprintf(path, sizeof(path), "%s/hv.log", g_dir);
		CU_ASSERT(system_grep(path, "refused a client with uid 65534") == 0);
	}
}

struct worker {
	int idx, op, rc;
	uint32_t domid;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct lamina_ctl_dominfo info;
	struct lamina_ctl_domcfg c;
	struct lamina_ctl_domref r;
	char name[32];
	int fd = conn_open();

	if (fd < 0) {
		w->rc = -ECONNREFUSED;
		return NULL;
	}
	snprintf(name, sizeof(name), "idle-%d", w->idx);
	if (w->op == LAMINA_CTL_CREATE) {
		cfg_for(&c, name, g_block);
		w->rc = rpc(fd, LAMINA_CTL_CREATE, &c, sizeof(c), &info, sizeof(info), NULL);
		w->domid = info.domid;
	} else {
		ref_name(&r, name);
		w->rc = rpc(fd, w->op, &r, sizeof(r), NULL, 0, NULL);
	}
	close(fd);
	return NULL;
}

static void run_workers(int op, struct worker *w)
{
	pthread_t t[NDOM];
	int i;

	for (i = 0; i < NDOM; i++) {
		w[i].idx = i;
		w[i].op = op;
		CU_ASSERT_FATAL(pthread_create(&t[i], NULL, worker_main, &w[i]) == 0);
	}
	for (i = 0; i < NDOM; i++)
		pthread_join(t[i], NULL);
}

/* Polls until the daemon's fd and thread counts drop back, or 15 s pass. */
static int settle(int fds, int threads)
{
	int i;

	for (i = 0; i < 300; i++) {
		if (count_dir("/proc/%d/fd") <= fds && count_dir("/proc/%d/task") <= threads)
			return 0;
		usleep(50000);
	}
	printf("\n  daemon still has %d fds (was %d), %d threads (was %d)\n", count_dir("/proc/%d/fd"), fds,
	       count_dir("/proc/%d/task"), threads);
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2", (int)g_pid);
		if (system(cmd) != 0)
			printf("  (fd listing failed)\n");
	}
	return -1;
}

static void test_many_domains(void)
{
	static struct worker w[NDOM];
	struct lamina_ctl_list_req lq = {0, 7};
	uint8_t page[LAMINA_CTL_MAX_PAYLOAD];
	struct lamina_ctl_list_reply lr;
	struct lamina_ctl_hostinfo hi;
	int fd0, th0, fd = conn_open(), i, seen = 0, pages = 0;
	long rss0, rss1;
	uint64_t t0, t1;
	size_t got;

	CU_ASSERT_FATAL(fd >= 0);
	/* a round trip first, so the daemon has accepted this connection before counting */
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_HOST_INFO, NULL, 0, &hi, sizeof(hi), NULL), 0);
	/* One round of the same creates first: the VM pool then holds guest memory of this size
	 * (its steady state, a few descriptors per pooled VM), and the baseline counts it. */
	run_workers(LAMINA_CTL_CREATE, w);
	run_workers(LAMINA_CTL_DESTROY, w);
	for (i = 0, fd0 = -1; i < 75 && fd0 != count_dir("/proc/%d/fd"); i++) {
		fd0 = count_dir("/proc/%d/fd"); /* until teardown and refill are over */
		usleep(200000);
	}
	fd0 = count_dir("/proc/%d/fd");
	th0 = count_dir("/proc/%d/task");
	rss0 = rss_kib();
	t0 = now_ns();
	run_workers(LAMINA_CTL_CREATE, w);
	t1 = now_ns();
	for (i = 0; i < NDOM; i++)
		CU_ASSERT_EQUAL(w[i].rc, 0);
	printf("\n  %d concurrent creates: %.1f ms in all\n", NDOM, (t1 - t0) / 1e6);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_HOST_INFO, NULL, 0, &hi, sizeof(hi), NULL), 0);
	CU_ASSERT_EQUAL(hi.nr_domains, NDOM);
	CU_ASSERT_EQUAL(hi.total_memory_kib, NDOM * 4096ull);
	usleep(300000); /* let every guest reach SCHEDOP_block */
	rss1 = rss_kib();
	printf("  daemon RSS %ld -> %ld KiB: %.0f KiB per idle domain (4 MiB guest RAM, mostly untouched)\n",
	       rss0, rss1, (double)(rss1 - rss0) / NDOM);
	CU_ASSERT((rss1 - rss0) / NDOM <= 2048);
	do {
		CU_ASSERT_FATAL(rpc(fd, LAMINA_CTL_LIST, &lq, sizeof(lq), page, sizeof(page), &got) == 0);
		memcpy(&lr, page, sizeof(lr));
		CU_ASSERT_EQUAL(got, sizeof(lr) + lr.count * sizeof(struct lamina_ctl_dominfo));
		CU_ASSERT(lr.count <= 7);
		seen += (int)lr.count;
		lq.first_domid = lr.next_domid;
		pages++;
	} while (lr.next_domid && pages < 100);
	CU_ASSERT_EQUAL(seen, NDOM);
	run_workers(LAMINA_CTL_DESTROY, w);
	for (i = 0; i < NDOM; i++)
		CU_ASSERT_EQUAL(w[i].rc, 0);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_HOST_INFO, NULL, 0, &hi, sizeof(hi), NULL), 0);
	CU_ASSERT_EQUAL(hi.nr_domains, 0);
	CU_ASSERT_EQUAL(settle(fd0, th0), 0);
	close(fd);
}

static void *waiter_main(void *arg)
{
	struct lamina_ctl_dominfo *out = arg;
	struct lamina_ctl_wait w;
	int fd = conn_open();

	memset(&w, 0, sizeof(w));
	ref_name(&w.dom, "victim");
	out->restarts = (uint32_t)rpc(fd, LAMINA_CTL_WAIT, &w, sizeof(w), out, sizeof(*out), NULL);
	close(fd);
	return NULL;
}

static void test_lifecycle(void)
{
	struct lamina_ctl_dominfo info, winfo;
	struct lamina_ctl_domcfg c;
	struct lamina_ctl_domref r;
	struct lamina_ctl_shutdown sd;
	struct lamina_ctl_wait w;
	pthread_t t;
	int fd = conn_open(), st;

	CU_ASSERT_FATAL(fd >= 0);
	/* a guest that prints and powers off: preserved, WAIT tells how it stopped */
	cfg_for(&c, "hello", g_hello);
	CU_ASSERT_EQUAL_FATAL(rpc(fd, LAMINA_CTL_CREATE, &c, sizeof(c), &info, sizeof(info), NULL), 0);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_CREATE, &c, sizeof(c), NULL, 0, NULL), -EEXIST);
	memset(&w, 0, sizeof(w));
	ref_name(&w.dom, "hello");
	w.timeout_ms = 5000;
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_WAIT, &w, sizeof(w), &info, sizeof(info), NULL), 0);
	CU_ASSERT_EQUAL(info.state, LAMINA_DOM_SHUTDOWN);
	CU_ASSERT_EQUAL(info.shutdown_reason, SHUTDOWN_poweroff);
	CU_ASSERT_EQUAL(info.action_taken, LAMINA_ACT_PRESERVE);
	CU_ASSERT_EQUAL(info.console_bytes, 2);
	printf("\n  create -> first console byte: %.2f ms\n", (info.first_console_ns - info.create_ns) / 1e6);
	ref_name(&r, "hello");
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_PAUSE, &r, sizeof(r), NULL, 0, NULL), -EINVAL);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_DESTROY, &r, sizeof(r), NULL, 0, NULL), 0);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_INFO, &r, sizeof(r), NULL, 0, NULL), -ESRCH);

	/* kernel missing */
	cfg_for(&c, "nokernel", "/nonexistent/lamina-kernel");
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_CREATE, &c, sizeof(c), NULL, 0, NULL), -ENOENT);

	/* an idle domain: pause/unpause, WAIT timeout, remote shutdown with on_reboot=destroy */
	cfg_for(&c, "victim", g_block);
	c.on_reboot = LAMINA_ACT_DESTROY;
	CU_ASSERT_EQUAL_FATAL(rpc(fd, LAMINA_CTL_CREATE, &c, sizeof(c), &info, sizeof(info), NULL), 0);
	ref_name(&r, "victim");
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_PAUSE, &r, sizeof(r), NULL, 0, NULL), 0);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_INFO, &r, sizeof(r), &info, sizeof(info), NULL), 0);
	CU_ASSERT_EQUAL(info.state, LAMINA_DOM_PAUSED);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_UNPAUSE, &r, sizeof(r), NULL, 0, NULL), 0);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_INFO, &r, sizeof(r), &info, sizeof(info), NULL), 0);
	CU_ASSERT_EQUAL(info.state, LAMINA_DOM_RUNNING);
	memset(&w, 0, sizeof(w));
	ref_name(&w.dom, "victim");
	w.timeout_ms = 100;
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_WAIT, &w, sizeof(w), NULL, 0, NULL), -ETIMEDOUT);
	memset(&winfo, 0, sizeof(winfo));
	CU_ASSERT_FATAL(pthread_create(&t, NULL, waiter_main, &winfo) == 0);
	usleep(100000);
	memset(&sd, 0, sizeof(sd));
	ref_name(&sd.dom, "victim");
	sd.reason = SHUTDOWN_reboot;
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_SHUTDOWN, &sd, sizeof(sd), NULL, 0, NULL), 0);
	pthread_join(t, NULL);
	st = (int)winfo.restarts;
	CU_ASSERT_EQUAL(st, 0);
	CU_ASSERT_EQUAL(winfo.state, LAMINA_DOM_DEAD);
	CU_ASSERT_EQUAL(winfo.shutdown_reason, SHUTDOWN_reboot);
	CU_ASSERT_EQUAL(winfo.action_taken, LAMINA_ACT_DESTROY);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_INFO, &r, sizeof(r), NULL, 0, NULL), -ESRCH);
	close(fd);
}

static void test_host_stop(void)
{
	struct lamina_ctl_domcfg c;
	int fd = conn_open(), status, i;
	char path[128];

	CU_ASSERT_FATAL(fd >= 0);
	cfg_for(&c, "left-running", g_block);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_CREATE, &c, sizeof(c), NULL, 0, NULL), 0);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_HOST_STOP, NULL, 0, NULL, 0, NULL), 0);
	close(fd);
	for (i = 0; i < 200 && waitpid(g_pid, &status, WNOHANG) != g_pid; i++)
		usleep(50000);
	CU_ASSERT_FATAL(i < 200);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(path, sizeof(path), "%s/hv.sock", g_dir);
	CU_ASSERT(access(path, F_OK) != 0);
	g_pid = 0;
}

static int start_daemon(void);

/* A second daemon on the same run directory; SIGTERM destroys its domains and it exits 0. */
static void test_sigterm(void)
{
	struct lamina_ctl_domcfg c;
	char path[128];
	int fd, status, i;

	CU_ASSERT_FATAL(start_daemon() == 0);
	fd = conn_open();
	CU_ASSERT_FATAL(fd >= 0);
	cfg_for(&c, "until-sigterm", g_block);
	CU_ASSERT_EQUAL(rpc(fd, LAMINA_CTL_CREATE, &c, sizeof(c), NULL, 0, NULL), 0);
	close(fd);
	kill(g_pid, SIGTERM);
	for (i = 0; i < 200 && waitpid(g_pid, &status, WNOHANG) != g_pid; i++)
		usleep(50000);
	CU_ASSERT_FATAL(i < 200);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(path, sizeof(path), "%s/hv.pid", g_dir);
	CU_ASSERT(access(path, F_OK) != 0);
	g_pid = 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int start_daemon(void)
{
	const char *hv = getenv("LAMINA_HV");
	char logp[128];
	int i, fd;

	if (!hv)
		return -1;
	snprintf(logp, sizeof(logp), "%s/hv.log", g_dir);
	g_pid = fork();
	if (g_pid == 0) {
		execl(hv, hv, "--rundir", g_dir, "--log", logp, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100; i++) {
		fd = conn_open();
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		usleep(50000);
	}
	return -1;
}

int main(void)
{
	uint8_t code[256], img[HVT_IMAGE_MAX];
	unsigned failed;
	CU_pSuite s;
	size_t len;
	int fd;

	fd = open("/dev/kvm", O_RDWR);
	if (fd < 0) {
		printf("SKIP: hvcore_daemon needs /dev/kvm (%s)\n", strerror(errno));
		return 77;
	}
	close(fd);
	snprintf(g_dir, sizeof(g_dir), "/tmp/hvcore-daemon.XXXXXX");
	if (!mkdtemp(g_dir))
		return 1;
	len = hvt_elf_build(img, code, hvt_code_block(code), 0, HVT_NOTE_PHDR);
	if (hvt_write_file(g_dir, "block.elf", img, len, g_block, sizeof(g_block)) < 0)
		return 1;
	len = hvt_elf_build(img, code, hvt_code_hello(code, SHUTDOWN_poweroff), 0, HVT_NOTE_PHDR);
	if (hvt_write_file(g_dir, "hello.elf", img, len, g_hello, sizeof(g_hello)) < 0)
		return 1;
	if (start_daemon() < 0) {
		printf("FAIL: lamina-hv ($LAMINA_HV) did not start\n");
		return 1;
	}
	CU_initialize_registry();
	s = CU_add_suite("lamina-hv daemon", NULL, NULL);
	CU_add_test(s, "start-up files and HELLO", test_startup);
	CU_add_test(s, "non-root peer refused", test_non_root_refused);
	CU_add_test(s, "50 concurrent creates and destroys, no leaks", test_many_domains);
	CU_add_test(s, "lifecycle: WAIT, pause, shutdown actions", test_lifecycle);
	CU_add_test(s, "HOST_STOP", test_host_stop);
	CU_add_test(s, "SIGTERM", test_sigterm);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	if (g_pid > 0) {
		kill(g_pid, SIGTERM);
		waitpid(g_pid, NULL, 0);
	}
	if (failed) {
		printf("daemon log kept in %s/hv.log\n", g_dir);
		return 1;
	}
	nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
