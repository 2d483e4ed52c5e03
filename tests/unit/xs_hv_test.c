/* The real daemon against a stand-in hypervisor control socket (xs_hv_fake.c): socket-only start
 * and reconnection, domains introduced from notifications with their tree, a guest on its ring
 * (the memfd page, the eventfd pair) with its identity, watches across guest and Domain-0, hostile
 * rings disconnected alone, restart reconnecting the new ring, destruction releasing everything,
 * and the hypervisor going away and coming back. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <CUnit/Basic.h>
#include <xen/io/xs_wire.h>

#include "test_util.h"
#include "xs_client.h"
#include "xs_hv_fake.h"
#include "xs_test_ring.h"

struct xs_hvt {
	char dir[64], log[96];
	pid_t pid;
	struct xs_client *d0;
	struct fhv hv;
	struct fhv_dom *g5, *g6, *g7, *g8;
	uint32_t req_id;
};

static struct xs_hvt T;

static struct xenstore_domain_interface *page(struct fhv_dom *d)
{
	return (struct xenstore_domain_interface *)((char *)d->pages + 4096);
}

static void kick(struct fhv_dom *d)
{
	uint64_t one = 1;

	pthread_mutex_lock(&T.hv.mu);
	if (d->bound && write(d->event_fd, &one, sizeof(one)) < 0) {
		/* a full counter still wakes the daemon */
	}
	pthread_mutex_unlock(&T.hv.mu);
}

static bool recv_msg(struct fhv_dom *d, struct xs_tmsg *m, int ms)
{
	for (int waited = 0; waited < ms; waited += 5) {
		if (xs_t_ring_take(page(d), m)) {
			kick(d);
			return true;
		}
		usleep(5000);
	}
	return false;
}

/* A request from the guest; watch events met on the way are counted in *events (if given). */
static uint32_t req(struct fhv_dom *d, uint32_t type, const void *p, uint32_t len, struct xs_tmsg *m)
{
	struct xsd_sockmsg h = {.type = type, .req_id = ++T.req_id, .len = len};

	xs_t_ring_put(page(d), &h, sizeof(h));
	xs_t_ring_put(page(d), p, len);
	kick(d);
	while (recv_msg(d, m, 2000))
		if (m->h.type != XS_WATCH_EVENT && m->h.req_id == h.req_id)
			return m->h.type;
	return 0xffffffffu;
}

#define REQ(d, type, lit, m) req((d), (type), (lit), (uint32_t)(sizeof(lit) - 1), (m))

static bool has_subscribes(struct fhv *h, void *arg)
{
	return h->subscribes >= (unsigned)(uintptr_t)arg;
}

static bool is_bound(struct fhv *h, void *arg)
{
	return ((struct fhv_dom *)arg)->bound;
}

static bool binds_at_least(struct fhv *h, void *arg)
{
	return h->binds >= (unsigned)(uintptr_t)arg;
}

static bool exists(const char *path)
{
	char *v = NULL;
	uint32_t len;
	int rc = xs_client_read(T.d0, 0, path, &v, &len);

	free(v);
	return rc == 0;
}

static bool wait_exists(const char *path, bool want)
{
	for (int i = 0; i < 400; i++) {
		if (exists(path) == want)
			return true;
		usleep(5000);
	}
	return false;
}

static bool log_has(const char *needle)
{
	return tu_grep(T.log, needle, 1) > 0;
}

static int setup(void)
{
	const char *bin = getenv("LAMINA_XENSTORED");
	char pidf[96], hvs[96];
	const char *argv[] = {bin,   "--rundir",    T.dir,   "--pid-file", pidf,       "--log",
			      T.log, "--log-level", "debug", "--quota",	   "nodes=40", NULL};

	if (!bin || tu_mkdtemp(T.dir, sizeof(T.dir), "xs_hv_test") < 0)
		return -1;
	snprintf(pidf, sizeof(pidf), "%s/pid", T.dir);
	snprintf(T.log, sizeof(T.log), "%s/log", T.dir);
	snprintf(hvs, sizeof(hvs), "%s/hv.sock", T.dir);
	T.pid = tu_spawn(bin, argv, NULL);
	tu_wait_path(pidf, 5000); /* the store socket's own open says whether it came up */
	if (xs_client_open_rundir(T.dir, &T.d0) < 0)
		return -1;
	/* the hypervisor is not there yet: the socket must be served meanwhile */
	if (xs_client_write(T.d0, 0, "/tool/early", "1", 1) < 0)
		return -1;
	if (fhv_start(&T.hv, hvs) < 0)
		return -1;
	T.g5 = fhv_dom_add(&T.hv, 5);
	return T.g5 ? 0 : -1;
}

static int teardown(void)
{
	int status = -1;

	xs_client_close(T.d0);
	tu_stop(T.pid, &status);
	fhv_stop(&T.hv);
	return tu_rmtree(T.dir) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void test_connect_and_tree(void)
{
	char *v = NULL, **perms = NULL;
	uint32_t len;
	unsigned n;

	CU_ASSERT_TRUE(log_has("hypervisor not reachable"));
	CU_ASSERT_TRUE(fhv_wait(&T.hv, has_subscribes, (void *)1, 5000));
	CU_ASSERT_TRUE(fhv_wait(&T.hv, is_bound, T.g5, 3000));
	CU_ASSERT_TRUE(wait_exists("/local/domain/5/name", true));
	CU_ASSERT_EQUAL(xs_client_read(T.d0, 0, "/local/domain/5/name", &v, &len), 0);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "fake5");
	free(v);
	CU_ASSERT_EQUAL(xs_client_read(T.d0, 0, "/local/domain/5/vm", &v, &len), 0);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "/vm/05152535-4555-6575-8595-a5b5c5d5e5f5");
	free(v);
	CU_ASSERT_TRUE(exists("/vm/05152535-4555-6575-8595-a5b5c5d5e5f5/uuid"));
	CU_ASSERT_TRUE(exists("/local/domain/5/memory/target"));
	CU_ASSERT_TRUE(exists("/local/domain/5/cpu/1/availability"));
	CU_ASSERT_TRUE(exists("/local/domain/0/name"));
	CU_ASSERT_EQUAL(xs_client_get_perms(T.d0, 0, "/local/domain/5", &perms, &n), 0);
	CU_ASSERT_TRUE(n == 2 && strcmp(perms[0], "n0") == 0 && strcmp(perms[1], "r5") == 0);
	free(perms);
	CU_ASSERT_EQUAL(xs_client_get_perms(T.d0, 0, "/local/domain/5/data", &perms, &n), 0);
	CU_ASSERT_TRUE(n == 1 && strcmp(perms[0], "n5") == 0);
	free(perms);
	CU_ASSERT_EQUAL(page(T.g5)->connection, XENSTORE_CONNECTED);
	CU_ASSERT_NOT_EQUAL(page(T.g5)->server_features & XENSTORE_SERVER_FEATURE_ERROR, 0);
}

static void test_guest_identity(void)
{
	struct xs_tmsg m;

	CU_ASSERT_EQUAL(REQ(T.g5, XS_READ, "name\0", &m), XS_READ);
	CU_ASSERT_STRING_EQUAL(m.body, "fake5");
	CU_ASSERT_EQUAL(REQ(T.g5, XS_WRITE, "data/x\0hello", &m), XS_WRITE);
	CU_ASSERT_EQUAL(REQ(T.g5, XS_READ, "/local/domain/5/data/x\0", &m), XS_READ);
	CU_ASSERT_STRING_EQUAL(m.body, "hello");
	CU_ASSERT_EQUAL(REQ(T.g5, XS_READ, "/local/domain/0/name\0", &m), XS_ERROR);
	CU_ASSERT_STRING_EQUAL(m.body, "EACCES");
	CU_ASSERT_EQUAL(REQ(T.g5, XS_WRITE, "name\0evil", &m), XS_ERROR);
	CU_ASSERT_STRING_EQUAL(m.body, "EACCES");
	CU_ASSERT_EQUAL(REQ(T.g5, XS_WRITE, "/local/domain/9/data/x\0y", &m), XS_ERROR);
	CU_ASSERT_STRING_EQUAL(m.body, "EACCES");
	CU_ASSERT_EQUAL(REQ(T.g5, XS_INTRODUCE,
			    "5\0"
			    "4097\0"
			    "1\0",
			    &m),
			XS_ERROR);
	CU_ASSERT_STRING_EQUAL(m.body, "EACCES");
	/* quotas bind it as any unprivileged domain (nodes=40 here) */
	for (int i = 0; i < 45; i++) {
		char p[64];
		int n = snprintf(p, sizeof(p), "data/q%d", i) + 1;
		req(T.g5, XS_WRITE, p, (uint32_t)n + 1, &m);
	}
	CU_ASSERT_EQUAL(m.h.type, XS_ERROR);
	CU_ASSERT_STRING_EQUAL(m.body, "ENOSPC");
	CU_ASSERT_TRUE(log_has("quota: domain 5 exceeds the nodes limit"));
	for (int i = 0; i < 45; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/local/domain/5/data/q%d", i);
		CU_ASSERT_EQUAL(xs_client_rm(T.d0, 0, p), 0);
	}
}

static void test_watches_across(void)
{
	struct xs_tmsg m;
	char *path = NULL, *tok;
	bool seen = false;

	CU_ASSERT_EQUAL(REQ(T.g5, XS_WATCH, "data\0gtok\0", &m), XS_WATCH);
	CU_ASSERT_TRUE(recv_msg(T.g5, &m, 2000) && m.h.type == XS_WATCH_EVENT); /* initial */
	CU_ASSERT_EQUAL(xs_client_write(T.d0, 0, "/local/domain/5/data/from-dom0", "v", 1), 0);
	while (!seen && recv_msg(T.g5, &m, 2000))
		seen = m.h.type == XS_WATCH_EVENT && strcmp(m.body, "data/from-dom0") == 0;
	CU_ASSERT_TRUE(seen);
	CU_ASSERT_EQUAL(xs_client_watch(T.d0, "/local/domain/5/data", "d0tok"), 0);
	CU_ASSERT_EQUAL(xs_client_read_watch(T.d0, 2000, &path, &tok), 0); /* initial */
	free(path);
	CU_ASSERT_EQUAL(REQ(T.g5, XS_WRITE, "data/from-guest\0v", &m), XS_WRITE);
	seen = false;
	while (!seen && xs_client_read_watch(T.d0, 2000, &path, &tok) == 0) {
		seen = strcmp(path, "/local/domain/5/data/from-guest") == 0;
		free(path);
	}
	CU_ASSERT_TRUE(seen);
	CU_ASSERT_EQUAL(xs_client_unwatch(T.d0, "/local/domain/5/data", "d0tok"), 0);
}

static void test_hostile_rings(void)
{
	struct xs_tmsg m;
	struct xsd_sockmsg bad = {.type = XS_READ, .req_id = 1, .len = 5000};

	T.g6 = fhv_dom_add(&T.hv, 6);
	T.g7 = fhv_dom_add(&T.hv, 7);
	CU_ASSERT_EQUAL(fhv_emit(&T.hv, LAMINA_EV_CREATED, 6), 0);
	CU_ASSERT_EQUAL(fhv_emit(&T.hv, LAMINA_EV_CREATED, 7), 0);
	CU_ASSERT_TRUE(fhv_wait(&T.hv, is_bound, T.g6, 3000) && fhv_wait(&T.hv, is_bound, T.g7, 3000));
	CU_ASSERT_TRUE(wait_exists("/local/domain/7/name", true));
	/* dom6: a producer index beyond the ring; dom7: a message longer than the protocol allows */
	page(T.g6)->req_prod = page(T.g6)->req_cons + 5000;
	kick(T.g6);
	xs_t_ring_put(page(T.g7), &bad, sizeof(bad));
	kick(T.g7);
	for (int i = 0; i < 400 && (!page(T.g6)->error || !page(T.g7)->error); i++)
		usleep(5000);
	CU_ASSERT_EQUAL(page(T.g6)->error, XENSTORE_ERROR_RINGIDX);
	CU_ASSERT_EQUAL(page(T.g7)->error, XENSTORE_ERROR_PROTO);
	CU_ASSERT_TRUE(log_has("ring connection of dom6: request producer index beyond the ring"));
	CU_ASSERT_TRUE(log_has("ring connection of dom7"));
	/* everyone else carries on */
	CU_ASSERT_EQUAL(REQ(T.g5, XS_READ, "name\0", &m), XS_READ);
	CU_ASSERT_TRUE(exists("/local/domain/5/name"));
}

static void test_never_drains(void)
{
	struct xs_tmsg m;
	char path[64], *p = NULL, *tok;
	int i;

	/* dom8 watches its data and never consumes what comes back */
	T.g8 = fhv_dom_add(&T.hv, 8);
	CU_ASSERT_EQUAL(fhv_emit(&T.hv, LAMINA_EV_CREATED, 8), 0);
	CU_ASSERT_TRUE(fhv_wait(&T.hv, is_bound, T.g8, 3000));
	CU_ASSERT_TRUE(wait_exists("/local/domain/8/name", true));
	CU_ASSERT_EQUAL(REQ(T.g8, XS_WATCH, "data\0t\0", &m), XS_WATCH);
	for (i = 0; i < 5000 && !page(T.g8)->error; i++) {
		snprintf(path, sizeof(path), "/local/domain/8/data/n%d", i % 10);
		if (xs_client_write(T.d0, 0, path, "x", 1) < 0)
			break;
	}
	CU_ASSERT_EQUAL(page(T.g8)->error, XENSTORE_ERROR_COMM);
	CU_ASSERT_TRUE(i > 4000 && i < 5000);
	CU_ASSERT_TRUE(log_has("ring connection of dom8: the ring does not drain"));
	CU_ASSERT_EQUAL(REQ(T.g5, XS_READ, "name\0", &m), XS_READ);
	/* a domain that shut down is announced on @releaseDomain, as Xen's store does */
	CU_ASSERT_EQUAL(xs_client_watch(T.d0, "@releaseDomain", "stop"), 0);
	CU_ASSERT_EQUAL(xs_client_read_watch(T.d0, 2000, &p, &tok), 0); /* initial */
	free(p);
	CU_ASSERT_EQUAL(fhv_emit(&T.hv, LAMINA_EV_STOPPED, 8), 0);
	p = NULL;
	CU_ASSERT_EQUAL(xs_client_read_watch(T.d0, 2000, &p, &tok), 0);
	CU_ASSERT_STRING_EQUAL(p ? p : "", "@releaseDomain");
	free(p);
	CU_ASSERT_EQUAL(xs_client_read_watch(T.d0, 300, &p, &tok), -ETIMEDOUT); /* once only */
	CU_ASSERT_TRUE(exists("/local/domain/8/name"));				/* stopped, not destroyed */
	CU_ASSERT_EQUAL(xs_client_unwatch(T.d0, "@releaseDomain", "stop"), 0);
}

static void test_restart(void)
{
	struct xs_tmsg m;
	unsigned binds = T.hv.binds;

	char *p = NULL, *tok;
	bool rel = false, intro = false;

	/* dom7 reboots: new pages, new port; the old ring's state must not follow */
	CU_ASSERT_EQUAL(xs_client_watch(T.d0, "@releaseDomain", "r"), 0);
	CU_ASSERT_EQUAL(xs_client_watch(T.d0, "@introduceDomain", "i"), 0);
	for (int i = 0; i < 2 && xs_client_read_watch(T.d0, 2000, &p, &tok) == 0; i++)
		free(p); /* the initial events */
	CU_ASSERT_EQUAL(fhv_dom_rebuild(&T.hv, T.g7), 0);
	CU_ASSERT_EQUAL(fhv_emit(&T.hv, LAMINA_EV_RESTARTED, 7), 0);
	while (!(rel && intro) && xs_client_read_watch(T.d0, 2000, &p, &tok) == 0) {
		rel |= strcmp(p, "@releaseDomain") == 0 && !intro;
		intro |= strcmp(p, "@introduceDomain") == 0;
		free(p);
	}
	CU_ASSERT_TRUE(rel && intro);
	CU_ASSERT_EQUAL(xs_client_unwatch(T.d0, "@releaseDomain", "r"), 0);
	CU_ASSERT_EQUAL(xs_client_unwatch(T.d0, "@introduceDomain", "i"), 0);
	CU_ASSERT_TRUE(fhv_wait(&T.hv, binds_at_least, (void *)(uintptr_t)(binds + 1), 3000));
	CU_ASSERT_TRUE(fhv_wait(&T.hv, is_bound, T.g7, 3000));
	CU_ASSERT_EQUAL(page(T.g7)->error, 0);
	CU_ASSERT_EQUAL(REQ(T.g7, XS_READ, "name\0", &m), XS_READ);
	CU_ASSERT_STRING_EQUAL(m.body, "fake7");
	CU_ASSERT_EQUAL(REQ(T.g7, XS_WRITE, "data/after\0ok", &m), XS_WRITE);
	CU_ASSERT_TRUE(log_has("dom7 fake7: reconnected after restart"));
	/* an explicit INTRODUCE naming a frame that is not the store page cannot be served */
	CU_ASSERT_NOT_EQUAL(xs_client_request(T.d0, XS_INTRODUCE, 0,
					      "7\0"
					      "1\0"
					      "5\0",
					      6, NULL, NULL),
			    0);
	CU_ASSERT_TRUE(log_has("dom7: previous ring reconnected"));
	CU_ASSERT_EQUAL(REQ(T.g7, XS_READ, "data/after\0", &m), XS_READ);
	CU_ASSERT_STRING_EQUAL(m.body, "ok");
}

static void test_destroy_releases(void)
{
	struct xs_tmsg m;
	char *path = NULL, *tok;
	unsigned closes = T.hv.closes;
	bool released = false;

	CU_ASSERT_EQUAL(REQ(T.g5, XS_TRANSACTION_START, "\0", &m), XS_TRANSACTION_START);
	CU_ASSERT_EQUAL(xs_client_watch(T.d0, "@releaseDomain", "rel"), 0);
	CU_ASSERT_EQUAL(xs_client_read_watch(T.d0, 2000, &path, &tok), 0); /* initial */
	free(path);
	fhv_dom_remove(&T.hv, T.g5);
	CU_ASSERT_EQUAL(fhv_emit(&T.hv, LAMINA_EV_DESTROYED, 5), 0);
	while (!released && xs_client_read_watch(T.d0, 3000, &path, &tok) == 0) {
		released = strcmp(path, "@releaseDomain") == 0;
		free(path);
	}
	CU_ASSERT_TRUE(released);
	CU_ASSERT_FALSE(exists("/local/domain/5"));
	CU_ASSERT_FALSE(exists("/vm/05152535-4555-6575-8595-a5b5c5d5e5f5"));
	CU_ASSERT_TRUE(
	    log_has("dom5 fake5: destroyed: released (1 watches, 1 transactions dropped), tree removed"));
	CU_ASSERT_EQUAL(xs_client_request(T.d0, XS_IS_DOMAIN_INTRODUCED, 0, "5", 2, &path, NULL), 0);
	CU_ASSERT_STRING_EQUAL(path ? path : "", "F");
	free(path);
	(void)closes;
	CU_ASSERT_EQUAL(xs_client_unwatch(T.d0, "@releaseDomain", "rel"), 0);
}

static void test_hypervisor_gone(void)
{
	/* The hypervisor exits: its domains are released, the socket is still served; when it
	 * comes back the live domains are introduced again. */
	fhv_dom_remove(&T.hv, T.g6);
	fhv_set(&T.hv, &T.hv.refuse, true);
	fhv_drop(&T.hv);
	CU_ASSERT_TRUE(wait_exists("/local/domain/7", false));
	CU_ASSERT_TRUE(log_has("hypervisor connection lost"));
	CU_ASSERT_EQUAL(xs_client_write(T.d0, 0, "/tool/alone", "1", 1), 0);
	fhv_set(&T.hv, &T.hv.refuse, false);
	CU_ASSERT_TRUE(fhv_wait(&T.hv, has_subscribes, (void *)2, 5000));
	CU_ASSERT_TRUE(wait_exists("/local/domain/7/name", true));
	CU_ASSERT_FALSE(exists("/local/domain/6"));
	CU_ASSERT_TRUE(fhv_wait(&T.hv, is_bound, T.g7, 3000));
}

static void test_hypervisor_hung(void)
{
	struct fhv_dom *g9 = fhv_dom_add(&T.hv, 9);

	/* A hypervisor that stops answering: the call times out, the connection is dropped and
	 * made again; the domain it was announcing is introduced on the new connection. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(g9);
	fhv_set(&T.hv, &T.hv.mute, true);
	CU_ASSERT_EQUAL(fhv_emit(&T.hv, LAMINA_EV_CREATED, 9), 0);
	for (int i = 0; i < 100 && !log_has("no reply in time"); i++)
		usleep(50000);
	CU_ASSERT_TRUE(log_has("hypervisor connection lost: no reply in time"));
	CU_ASSERT_EQUAL(xs_client_write(T.d0, 0, "/tool/while-hung", "1", 1), 0);
	fhv_set(&T.hv, &T.hv.mute, false);
	CU_ASSERT_TRUE(fhv_wait(&T.hv, has_subscribes, (void *)3, 5000));
	CU_ASSERT_TRUE(wait_exists("/local/domain/9/name", true));
	CU_ASSERT_TRUE(fhv_wait(&T.hv, is_bound, g9, 3000));
}

int main(void)
{
	static const struct tu_test tests[] = {
	    {"socket only, then connect; domain tree", test_connect_and_tree},
	    {"guest identity, permissions, quota", test_guest_identity},
	    {"watches across guest and Domain-0", test_watches_across},
	    {"hostile rings disconnected alone", test_hostile_rings},
	    {"a ring that never drains; a stopped domain", test_never_drains},
	    {"restart reconnects the new ring", test_restart},
	    {"destroy releases watches, transactions, nodes", test_destroy_releases},
	    {"hypervisor gone and back", test_hypervisor_gone},
	    {"hypervisor hung: timeout, reconnect", test_hypervisor_hung},
	};

	if (tu_need_env("LAMINA_XENSTORED"))
		return 77;
	signal(SIGPIPE, SIG_IGN);
	return tu_run_suite("xs_hv", setup, teardown, tests, TU_COUNT(tests));
}
