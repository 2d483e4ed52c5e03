/* app=store-test: xenbus against the store daemon over this domain's ring: its own
 * /local/domain/<id> nodes, a write read back, EACCES outside its tree, a watch (initial event
 * and one per change), and transactions that commit and abort. other=D names another domain.
 * wait-dom0=1 then waits for Domain-0 to write data/from-dom0 and stays up holding a watch and
 * an open transaction, so a test can check what the store drops when the domain is destroyed. */
#include "apps.h"
#include "../kernel/hypercall.h"

#define ST_VAL 128
#define ST_WATCH_NS 2000000000ull
#define ST_DOM0_TIMEOUT_S 30
#define ST_DOM0_TIMEOUT_MAX_S 3600
#define ST_FROM_DOM0 "data/from-dom0" /* relative: below /local/domain/<id> */

struct store_test {
	struct app_checks c;
	struct kernel *k;
	struct xenbus *xb;
	char base[64];
	char path[XENBUS_PATH_MAX];
	char val[ST_VAL];
	char last_event[XENBUS_PATH_MAX];
	uint64_t events;
	uint64_t dom0_events;
};

static const char *st_path(struct store_test *t, const char *rel)
{
	lib_snprintf(t->path, sizeof(t->path), "%s/%s", t->base, rel);
	return t->path;
}

static void st_watch_fired(struct xenbus *xb, const char *path, const char *token, void *arg)
{
	struct store_test *t = arg;

	t->events++;
	lib_snprintf(t->last_event, sizeof(t->last_event), "%s", path);
	kprintf(t->k, "  watch event: %s (token %s)\n", path, token);
}

/* False (and the whole test SKIPs) when no store daemon serves this domain's ring. */
static bool st_own_nodes(struct store_test *t, struct app_result *res)
{
	char want[16];
	int rc = xenbus_read(t->xb, 0, st_path(t, "name"), t->val, sizeof(t->val));

	if (rc == -XEN_ENOTCONN) {
		app_set(res, APP_SKIP, "no store daemon attached to this domain's ring (no server_features in %lu s)",
			(unsigned long)(XENBUS_TIMEOUT_NS / 1000000000ull));
		return false;
	}
	app_check(&t->c, rc > 0, "read own name", "rc %d '%s'", rc, rc > 0 ? t->val : "");
	rc = xenbus_read(t->xb, 0, st_path(t, "domid"), t->val, sizeof(t->val));
	lib_snprintf(want, sizeof(want), "%u", t->k->domid);
	app_check(&t->c, rc > 0 && strcmp(t->val, want) == 0, "read own domid", "rc %d '%s', want %s", rc,
		  rc > 0 ? t->val : "", want);

	lib_snprintf(want, sizeof(want), "lamina-%u", t->k->domid);
	rc = xenbus_write(t->xb, 0, st_path(t, "data/store-test/value"), want);
	app_check(&t->c, rc == 0, "write data/store-test/value", "rc %d", rc);
	rc = xenbus_read(t->xb, 0, t->path, t->val, sizeof(t->val));
	app_check(&t->c, rc >= 0 && strcmp(t->val, want) == 0, "read it back", "rc %d '%s'", rc, rc >= 0 ? t->val : "");
	rc = xenbus_mkdir(t->xb, 0, st_path(t, "data/store-test/dir"));
	app_check(&t->c, rc == 0, "mkdir data/store-test/dir", "rc %d", rc);
	char list[256];
	rc = xenbus_directory(t->xb, 0, st_path(t, "data/store-test"), list, sizeof(list));
	bool has_value = false, has_dir = false;
	for (int i = 0, off = 0; rc > 0 && i < rc; i++) {
		has_value |= strcmp(list + off, "value") == 0;
		has_dir |= strcmp(list + off, "dir") == 0;
		off += (int)strlen(list + off) + 1;
	}
	app_check(&t->c, rc == 2 && has_value && has_dir, "directory lists value and dir", "rc %d", rc);
	rc = xenbus_rm(t->xb, 0, st_path(t, "data/store-test/dir"));
	int rc2 = xenbus_read(t->xb, 0, t->path, t->val, sizeof(t->val));
	app_check(&t->c, rc == 0 && rc2 == -XEN_ENOENT, "rm, then read: ENOENT", "rc %d, read %d", rc, rc2);
	return true;
}

static void st_denied(struct store_test *t)
{
	uint64_t other = kernel_cmdline_u64(t->k, "other", UINT64_MAX);
	int rc = xenbus_read(t->xb, 0, "/local/domain/0/name", t->val, sizeof(t->val));

	app_check(&t->c, rc == -XEN_EACCES, "read /local/domain/0/name: EACCES", "rc %d", rc);
	rc = xenbus_write(t->xb, 0, "/local/domain/0/store-test", "x");
	app_check(&t->c, rc == -XEN_EACCES, "write under /local/domain/0: EACCES", "rc %d", rc);
	if (other == UINT64_MAX || other == t->k->domid) {
		kprintf(t->k, "  (no other=D given: another domain's tree not checked)\n");
		return;
	}
	lib_snprintf(t->path, sizeof(t->path), "/local/domain/%lu/name", other);
	rc = xenbus_read(t->xb, 0, t->path, t->val, sizeof(t->val));
	app_check(&t->c, rc == -XEN_EACCES, "read another domain's name: EACCES", "%s rc %d", t->path, rc);
	lib_snprintf(t->path, sizeof(t->path), "/local/domain/%lu/data/store-test", other);
	rc = xenbus_write(t->xb, 0, t->path, "x");
	app_check(&t->c, rc == -XEN_EACCES, "write another domain's tree: EACCES", "rc %d", rc);
}

static void st_watch(struct store_test *t)
{
	char wpath[XENBUS_PATH_MAX];
	uint64_t now = time_now_ns(&t->k->time);

	lib_snprintf(wpath, sizeof(wpath), "%s/data/store-test", t->base);
	int rc = xenbus_watch(t->xb, wpath, "store-test", st_watch_fired, t);
	if (!app_check(&t->c, rc == 0, "watch data/store-test", "rc %d", rc))
		return;
	rc = xenbus_wait_watch(t->xb, now + ST_WATCH_NS);
	app_check(&t->c, rc > 0 && t->events == 1 && strcmp(t->last_event, wpath) == 0, "initial watch event",
		  "rc %d events %lu '%s'", rc, t->events, t->last_event);
	rc = xenbus_write(t->xb, 0, st_path(t, "data/store-test/value"), "changed");
	uint64_t before = t->events;
	int w = xenbus_wait_watch(t->xb, time_now_ns(&t->k->time) + ST_WATCH_NS);
	app_check(&t->c, rc == 0 && w > 0 && t->events > before && strcmp(t->last_event, t->path) == 0,
		  "watch fires on our own write", "rc %d/%d '%s'", rc, w, t->last_event);
	rc = xenbus_unwatch(t->xb, wpath, "store-test");
	app_check(&t->c, rc == 0, "unwatch", "rc %d", rc);
}

static void st_transactions(struct store_test *t)
{
	uint32_t tx = 0;
	int rc = xenbus_transaction_start(t->xb, &tx);

	if (!app_check(&t->c, rc == 0 && tx != 0, "transaction_start", "rc %d id %u", rc, tx))
		return;
	int w = xenbus_write(t->xb, tx, st_path(t, "data/store-test/tx"), "in-tx");
	int in = xenbus_read(t->xb, tx, t->path, t->val, sizeof(t->val));
	bool in_ok = in >= 0 && strcmp(t->val, "in-tx") == 0;
	int out = xenbus_read(t->xb, 0, t->path, t->val, sizeof(t->val));
	app_check(&t->c, w == 0 && in_ok && out == -XEN_ENOENT, "write in a transaction is isolated",
		  "write %d, read inside %d, outside %d", w, in, out);
	rc = xenbus_transaction_end(t->xb, tx, true);
	out = xenbus_read(t->xb, 0, t->path, t->val, sizeof(t->val));
	app_check(&t->c, rc == 0 && out >= 0 && strcmp(t->val, "in-tx") == 0, "commit makes it visible",
		  "end %d, read %d", rc, out);

	rc = xenbus_transaction_start(t->xb, &tx);
	w = xenbus_write(t->xb, tx, st_path(t, "data/store-test/aborted"), "no");
	int end = xenbus_transaction_end(t->xb, tx, false);
	out = xenbus_read(t->xb, 0, t->path, t->val, sizeof(t->val));
	app_check(&t->c, rc == 0 && w == 0 && end == 0 && out == -XEN_ENOENT, "abort discards the write",
		  "start %d write %d end %d read %d", rc, w, end, out);
	rc = xenbus_rm(t->xb, 0, st_path(t, "data/store-test"));
	app_check(&t->c, rc == 0, "rm data/store-test", "rc %d", rc);
}

static void st_from_dom0_fired(struct xenbus *xb, const char *path, const char *token, void *arg)
{
	struct store_test *t = arg;

	t->dom0_events++;
	kprintf(t->k, "  watch event: %s (token %s)\n", path, token);
}

/* wait-dom0=1: a relative watch on data/from-dom0, blocking on its events (bounded by timeout=S)
 * until the node reads back with a value; then a transaction with one write, left open. True when
 * both are held. */
static bool st_wait_dom0(struct store_test *t)
{
	uint64_t secs = kernel_cmdline_u64(t->k, "timeout", ST_DOM0_TIMEOUT_S);
	int rc, w = 0;
	uint32_t tx = 0;

	if (secs == 0 || secs > ST_DOM0_TIMEOUT_MAX_S)
		secs = ST_DOM0_TIMEOUT_S;
	uint64_t deadline = time_now_ns(&t->k->time) + secs * 1000000000ull;
	rc = xenbus_watch(t->xb, ST_FROM_DOM0, "from-dom0", st_from_dom0_fired, t);
	if (!app_check(&t->c, rc == 0, "watch " ST_FROM_DOM0 " (relative)", "rc %d", rc))
		return false;
	kprintf(t->k, "store-test: waiting for Domain-0 (up to %lu s)\n", secs);
	for (;;) {
		w = xenbus_wait_watch(t->xb, deadline);
		if (w < 0)
			break;
		/* An event says something changed; the node holding a value says Domain-0 wrote it. */
		rc = xenbus_read(t->xb, 0, ST_FROM_DOM0, t->val, sizeof(t->val));
		if (rc != -XEN_ENOENT)
			break;
	}
	if (!app_check(&t->c, w > 0 && rc >= 0, "Domain-0 wrote " ST_FROM_DOM0, "wait %d, read %d, %lu events", w,
		       rc, t->dom0_events))
		return false;
	kprintf(t->k, "store-test: Domain-0 wrote '%s' (%lu watch events)\n", t->val, t->dom0_events);
	rc = xenbus_transaction_start(t->xb, &tx);
	if (rc == 0)
		w = xenbus_write(t->xb, tx, st_path(t, "data/held-tx"), "held");
	return app_check(&t->c, rc == 0 && tx != 0 && w == 0, "open transaction with one write", "start %d id %u write %d",
			 rc, tx, w);
}

void app_store_test(struct kernel *k, struct app_result *res)
{
	struct store_test t;

	memset(&t, 0, sizeof(t));
	t.k = k;
	t.c.k = k;
	t.xb = &k->xb;
	if (!k->domid_known) {
		app_set(res, APP_ERROR, "domain id unknown (CPUID leaf 4)");
		return;
	}
	if (!app_need_events(k, res))
		return;
	int rc = xenbus_init(&k->xb, &k->ev, &k->tm, &k->time, (uintptr_t)lamina_image_end);
	if (rc < 0) {
		/* -ENOENT: the hypervisor set no STORE_PFN/EVTCHN params: nothing to talk to. */
		app_set(res, rc == -XEN_ENOENT ? APP_SKIP : APP_ERROR, "no store ring: %s",
			lib_errno_name(rc) ? lib_errno_name(rc) : "?");
		return;
	}
	lib_snprintf(t.base, sizeof(t.base), "/local/domain/%u", k->domid);
	kprintf(k, "store-test: domain %u, ring %d, store port %u\n", k->domid, k->ring, k->xb.port);
	if (!st_own_nodes(&t, res))
		return;
	st_denied(&t);
	st_watch(&t);
	st_transactions(&t);
	kprintf(k, "store-test: %lu requests, %lu watch events, %lu stale replies, %lu events dropped\n",
		k->xb.requests, k->xb.events_queued, k->xb.stale, k->xb.events_dropped);
	if (kernel_cmdline_u64(k, "wait-dom0", 0) == 0 || t.c.fail > 0 || !st_wait_dom0(&t)) {
		app_checks_result(&t.c, res);
		return;
	}
	app_checks_result(&t.c, res);
	kprintf(k, "store-test: holding watch and transaction\n");
	/* The app never returns, so kernel_main's result line would never come: it is printed here,
	 * and the domain waits (blocked, waking only for events) until it is destroyed. Events of the
	 * held watch are still read and printed, so the response ring never fills. */
	kprintf(k, "Test result: SUCCESS\n");
	console_flush(&k->con);
	for (;;) {
		kernel_idle(k);
		xenbus_dispatch_watches(&k->xb);
	}
}
