/* A guest on its store ring against the real daemon (through the --ring-dir development mapper):
 * its own subtree readable and writable, refused elsewhere, watches across guest and Domain-0,
 * a quota violation with its log line, @releaseDomain, and a hostile ring that is disconnected
 * while Domain-0 is still served. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <CUnit/Basic.h>
#include <xen/io/xs_wire.h>

#include "test_util.h"
#include "xs_client.h"
#include "xs_test_ring.h"

struct xs_gfix {
	char dir[64];
	pid_t pid;
	struct xs_client *d0;
	struct xenstore_domain_interface *page;
	int gfd; /* the guest's notification socket */
	struct sockaddr_un kick;
};

static struct xs_gfix gf;

static int g_setup(void)
{
	const char *bin = getenv("LAMINA_XENSTORED");
	char path[128], rings[96], pidf[96], logf[96];
	const char *argv[] = {bin,  "--rundir", gf.dir, "--ring-dir", rings,	 "--pid-file",
			      pidf, "--log",	logf,	"--quota",    "nodes=8", NULL};
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;

	if (!bin || tu_mkdtemp(gf.dir, sizeof(gf.dir), "xs_guest_test") < 0)
		return -1;
	snprintf(rings, sizeof(rings), "%s/rings", gf.dir);
	snprintf(pidf, sizeof(pidf), "%s/pid", gf.dir);
	snprintf(logf, sizeof(logf), "%s/log", gf.dir);
	mkdir(rings, 0700);
	/* the guest's memory: two pages, the ring in the second (gfn 1) */
	snprintf(path, sizeof(path), "%s/dom7.ring", rings);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, 8192) < 0)
		return -1;
	gf.page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 4096);
	close(fd);
	if (gf.page == MAP_FAILED)
		return -1;
	gf.gfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/dom7.guest", rings);
	if (bind(gf.gfd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -1;
	gf.kick.sun_family = AF_UNIX;
	snprintf(gf.kick.sun_path, sizeof(gf.kick.sun_path), "%s/dom7.evtchn", rings);
	gf.pid = tu_spawn(bin, argv, NULL);
	tu_wait_path(pidf, 5000); /* the store socket's own open says whether it came up */
	return xs_client_open_rundir(gf.dir, &gf.d0) == 0 ? 0 : -1;
}

static int g_teardown(void)
{
	int status = -1;

	xs_client_close(gf.d0);
	tu_stop(gf.pid, &status);
	munmap(gf.page, 4096);
	close(gf.gfd);
	return tu_rmtree(gf.dir) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void g_kick(void)
{
	if (sendto(gf.gfd, "k", 1, 0, (struct sockaddr *)&gf.kick, sizeof(gf.kick)) < 0) {
		/* the daemon dropped the channel (released or disconnected): tests notice */
	}
}

static void g_send(uint32_t type, uint32_t req_id, const void *p, uint32_t len)
{
	struct xsd_sockmsg h = {.type = type, .req_id = req_id, .len = len};

	xs_t_ring_put(gf.page, &h, sizeof(h));
	xs_t_ring_put(gf.page, p, len);
	g_kick();
}

/* The next whole message on the response ring, waiting up to 2 s for notifications. */
static bool g_recv(struct xs_tmsg *m)
{
	for (int waited = 0; waited < 200; waited++) {
		struct pollfd p = {.fd = gf.gfd, .events = POLLIN};
		char junk[64];

		if (xs_t_ring_take(gf.page, m)) {
			g_kick(); /* space freed */
			return true;
		}
		if (poll(&p, 1, 10) > 0)
			while (recv(gf.gfd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
				;
	}
	return false;
}

static uint32_t g_req(uint32_t type, const void *p, uint32_t len, struct xs_tmsg *m)
{
	static uint32_t id = 100;

	g_send(type, ++id, p, len);
	while (g_recv(m))
		if (m->h.type != XS_WATCH_EVENT)
			return m->h.type;
	return 0xffffffffu;
}

#define G_REQ(type, lit, m) g_req((type), (lit), (uint32_t)(sizeof(lit) - 1), (m))

static void introduce(void)
{
	CU_ASSERT_EQUAL(xs_client_request(gf.d0, XS_INTRODUCE, 0,
					  "7\0"
					  "1\0"
					  "5\0",
					  6, NULL, NULL),
			0);
}

static void test_own_subtree(void)
{
	struct xs_tmsg m;

	CU_ASSERT_EQUAL(xs_client_mkdir(gf.d0, 0, "/local/domain/7"), 0);
	CU_ASSERT_EQUAL(xs_client_set_perms(gf.d0, 0, "/local/domain/7", (const char *[]){"n7"}, 1), 0);
	CU_ASSERT_EQUAL(xs_client_write(gf.d0, 0, "/local/domain/0/secret", "s", 1), 0);
	introduce();
	CU_ASSERT_EQUAL(gf.page->server_features,
			XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR);
	CU_ASSERT_EQUAL(G_REQ(XS_WRITE, "data/x\0hello", &m), XS_WRITE);
	CU_ASSERT_EQUAL(G_REQ(XS_READ, "data/x\0", &m), XS_READ);
	CU_ASSERT_STRING_EQUAL(m.body, "hello");
	CU_ASSERT_EQUAL(G_REQ(XS_GET_DOMAIN_PATH, "7\0", &m), XS_GET_DOMAIN_PATH);
	CU_ASSERT_STRING_EQUAL(m.body, "/local/domain/7");
	CU_ASSERT_EQUAL(G_REQ(XS_READ, "/local/domain/0/secret\0", &m), XS_ERROR);
	CU_ASSERT_STRING_EQUAL(m.body, "EACCES");
	CU_ASSERT_EQUAL(G_REQ(XS_WRITE, "/local/domain/0/mine\0x", &m), XS_ERROR);
	CU_ASSERT_STRING_EQUAL(m.body, "EACCES");
	CU_ASSERT_EQUAL(G_REQ(XS_INTRODUCE,
			      "8\0"
			      "1\0"
			      "1\0",
			      &m),
			XS_ERROR);
	CU_ASSERT_STRING_EQUAL(m.body, "EACCES");
}

static void test_watches_both_ways(void)
{
	struct xs_tmsg m;
	char *p, *t;

	g_send(XS_WATCH, 1, "data\0g\0", 7);
	CU_ASSERT_TRUE(g_recv(&m) && m.h.type == XS_WATCH);
	CU_ASSERT_TRUE(g_recv(&m) && m.h.type == XS_WATCH_EVENT);
	CU_ASSERT_STRING_EQUAL(m.body, "data");
	CU_ASSERT_EQUAL(xs_client_write(gf.d0, 0, "/local/domain/7/data/from-dom0", "1", 1), 0);
	CU_ASSERT_TRUE(g_recv(&m) && m.h.type == XS_WATCH_EVENT);
	CU_ASSERT_STRING_EQUAL(m.body, "data/from-dom0");
	CU_ASSERT_STRING_EQUAL(m.body + strlen(m.body) + 1, "g");
	CU_ASSERT_EQUAL(xs_client_watch(gf.d0, "/local/domain/7/data", "d0"), 0);
	CU_ASSERT_EQUAL(xs_client_read_watch(gf.d0, 1000, &p, &t), 0); /* initial */
	free(p);
	CU_ASSERT_EQUAL(G_REQ(XS_WRITE, "data/from-guest\0", &m), XS_WRITE);
	CU_ASSERT_EQUAL(xs_client_read_watch(gf.d0, 1000, &p, &t), 0);
	CU_ASSERT_STRING_EQUAL(p, "/local/domain/7/data/from-guest");
	free(p);
	CU_ASSERT_EQUAL(xs_client_unwatch(gf.d0, "/local/domain/7/data", "d0"), 0);
}

static void test_quota(void)
{
	struct xs_tmsg m;
	char path[32], log[128];
	int i, refused = 0;

	for (i = 0; i < 12; i++) {
		uint32_t l = (uint32_t)snprintf(path, sizeof(path), "q%d", i) + 1;
		if (g_req(XS_WRITE, path, l, &m) == XS_ERROR && strcmp(m.body, "ENOSPC") == 0)
			refused++;
	}
	CU_ASSERT_TRUE(refused >= 4); /* the guest owns 8 nodes at most */
	snprintf(log, sizeof(log), "%s/log", gf.dir);
	refused = tu_grep(log, "quota: domain 7 exceeds the nodes limit (8", 0);
	CU_ASSERT_FATAL(refused >= 0);
	CU_ASSERT_EQUAL(refused, 1); /* rate-limited */
}

static void test_release(void)
{
	char *p, *t;
	char *r;

	CU_ASSERT_EQUAL(xs_client_watch(gf.d0, "@releaseDomain", "rel"), 0);
	CU_ASSERT_EQUAL(xs_client_read_watch(gf.d0, 1000, &p, &t), 0);
	free(p);
	CU_ASSERT_EQUAL(xs_client_request(gf.d0, XS_RELEASE, 0, "7", 2, NULL, NULL), 0);
	CU_ASSERT_EQUAL(xs_client_read_watch(gf.d0, 1000, &p, &t), 0);
	CU_ASSERT_STRING_EQUAL(p, "@releaseDomain");
	free(p);
	CU_ASSERT_EQUAL(xs_client_request(gf.d0, XS_IS_DOMAIN_INTRODUCED, 0, "7", 2, &r, NULL), 0);
	CU_ASSERT_STRING_EQUAL(r, "F");
	free(r);
	CU_ASSERT_EQUAL(access(gf.kick.sun_path, F_OK), -1); /* event channel unbound */
}

static void test_hostile_ring(void)
{
	struct xs_tmsg m;
	char *v;
	uint32_t len;
	int i;

	memset(gf.page, 0, 4096);
	introduce();
	CU_ASSERT_EQUAL(G_REQ(XS_READ, "data/x\0", &m), XS_READ);
	gf.page->req_prod = gf.page->req_cons + XENSTORE_RING_SIZE + 100;
	g_kick();
	for (i = 0; i < 200 && gf.page->error == 0; i++)
		usleep(10000);
	CU_ASSERT_EQUAL(gf.page->error, XENSTORE_ERROR_RINGIDX);
	CU_ASSERT_EQUAL(xs_client_read(gf.d0, 0, "/local/domain/7/data/x", &v, &len), 0);
	free(v);
	/* the toolstack can bring it back */
	CU_ASSERT_EQUAL(xs_client_request(gf.d0, XS_RELEASE, 0, "7", 2, NULL, NULL), 0);
	memset(gf.page, 0, 4096);
	introduce();
	CU_ASSERT_EQUAL(G_REQ(XS_READ, "data/x\0", &m), XS_READ);
	CU_ASSERT_STRING_EQUAL(m.body, "hello");
}

int main(void)
{
	static const struct tu_test tests[] = {
	    {"own subtree, refused elsewhere", test_own_subtree},
	    {"watches across guest and Domain-0", test_watches_both_ways},
	    {"quota violation", test_quota},
	    {"@releaseDomain", test_release},
	    {"hostile ring", test_hostile_ring},
	};

	if (tu_need_env("LAMINA_XENSTORED"))
		return 77;
	signal(SIGPIPE, SIG_IGN);
	return tu_run_suite("xs_guest", g_setup, g_teardown, tests, TU_COUNT(tests));
}
