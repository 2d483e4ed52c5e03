/* app=store-load ops=N kind=read|write|watch: store requests over this domain's ring, one
 * outstanding at a time as xenbus allows, each timed with the pvclock: reads of its own name node,
 * writes to data/load, or watch-fire round trips (write data/w, wait for the watch's event).
 * Prints ops/s and the p50/p99 latencies as BENCH lines for bench/store.sh. */
#include "apps.h"
#include "../kernel/hypercall.h"

#define SL_OPS_DEFAULT 2000
#define SL_OPS_MAX 8192
#define SL_WARMUP 50
#define SL_VAL 64
#define SL_EVENT_NS 2000000000ull /* a watch event that takes longer is a failure, not a sample */

struct store_load {
	struct kernel *k;
	struct xenbus *xb;
	const char *kind;
	uint64_t n;
	uint64_t fired; /* watch events on data/w seen by the callback */
	char val[SL_VAL];
	uint64_t lat[SL_OPS_MAX];
};

/* One request of the chosen kind; 0 or -errno. i numbers the request. */
typedef int (*sl_op_fn)(struct store_load *l, uint64_t i);

static int sl_read(struct store_load *l, uint64_t i)
{
	int rc = xenbus_read(l->xb, 0, "name", l->val, sizeof(l->val));

	return rc < 0 ? rc : 0;
}

static int sl_write(struct store_load *l, uint64_t i)
{
	lib_snprintf(l->val, sizeof(l->val), "value-%lu", i);
	return xenbus_write(l->xb, 0, "data/load", l->val);
}

static void sl_watch_fired(struct xenbus *xb, const char *path, const char *token, void *arg)
{
	struct store_load *l = arg;

	l->fired++;
}

/* Write data/w, then wait until the watch's event for it has run: one event per write. */
static int sl_watch_rtt(struct store_load *l, uint64_t i)
{
	uint64_t before = l->fired;
	int rc;

	lib_snprintf(l->val, sizeof(l->val), "%lu", i);
	rc = xenbus_write(l->xb, 0, "data/w", l->val);
	if (rc < 0)
		return rc;
	while (l->fired == before) {
		rc = xenbus_wait_watch(l->xb, time_now_ns(&l->k->time) + SL_EVENT_NS);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Before the timed run: the watch (and its initial event out of the way). */
static int sl_watch_setup(struct store_load *l)
{
	int rc = xenbus_write(l->xb, 0, "data/w", "start");

	if (rc == 0)
		rc = xenbus_watch(l->xb, "data/w", "store-load", sl_watch_fired, l);
	while (rc == 0 && l->fired == 0)
		rc = xenbus_wait_watch(l->xb, time_now_ns(&l->k->time) + SL_EVENT_NS) < 0 ? -XEN_ETIMEDOUT : 0;
	return rc;
}

static const struct {
	const char *kind;
	sl_op_fn op;
	int (*setup)(struct store_load *l);
} sl_kinds[] = {
    {"read", sl_read, NULL},
    {"write", sl_write, NULL},
    {"watch", sl_watch_rtt, sl_watch_setup},
};

/* p-th percentile of the sorted samples, in ns. */
static uint64_t sl_pct(const uint64_t *v, uint64_t n, uint64_t p)
{
	uint64_t i = n * p / 100;

	return v[i < n ? i : n - 1];
}

static void sl_print_us(struct kernel *k, const char *kind, const char *what, uint64_t ns)
{
	kprintf(k, "BENCH store_ring_%s_%s_us %lu.%02lu us\n", kind, what, ns / 1000, (ns % 1000) / 10);
}

void app_store_load(struct kernel *k, struct app_result *res)
{
	struct store_load load; /* 64 KiB of samples: the ring-3 stack has 256 KiB */
	struct store_load *l = &load;
	char kind[16];
	int rc;

	memset(l, 0, sizeof(*l));
	l->k = k;
	l->xb = &k->xb;
	l->n = kernel_cmdline_u64(k, "ops", SL_OPS_DEFAULT);
	if (l->n == 0 || l->n > SL_OPS_MAX) {
		app_set(res, APP_ERROR, "ops=%lu out of range 1..%u", l->n, SL_OPS_MAX);
		return;
	}
	rc = kernel_cmdline_get(k, "kind", kind, sizeof(kind));
	if (rc == -XEN_ENOENT)
		lib_snprintf(kind, sizeof(kind), "read");
	else if (rc < 0)
		kind[0] = '\0'; /* too long for any kind: refused below */
	unsigned int ki;
	for (ki = 0; ki < LIB_ARRAY_SIZE(sl_kinds) && strcmp(sl_kinds[ki].kind, kind) != 0; ki++)
		;
	if (ki == LIB_ARRAY_SIZE(sl_kinds)) {
		app_set(res, APP_ERROR, "kind='%s': read, write or watch", kind);
		return;
	}
	l->kind = sl_kinds[ki].kind;
	if (time_tsc_to_ns(&k->time, 1000000) == 0) {
		app_set(res, APP_ERROR, "no pvclock scale in vcpu_time_info");
		return;
	}
	if (!app_need_events(k, res))
		return;
	rc = xenbus_init(&k->xb, &k->ev, &k->tm, &k->time, (uintptr_t)lamina_image_end);
	if (rc < 0) {
		app_set(res, rc == -XEN_ENOENT ? APP_SKIP : APP_ERROR, "no store ring: %s",
			lib_errno_name(rc) ? lib_errno_name(rc) : "?");
		return;
	}
	rc = xenbus_read(l->xb, 0, "name", l->val, sizeof(l->val));
	if (rc < 0) {
		app_set(res, rc == -XEN_ENOTCONN ? APP_SKIP : APP_ERROR, "reading own name: %s",
			lib_errno_name(rc) ? lib_errno_name(rc) : "?");
		return;
	}
	kprintf(k, "store-load: domain %u (%s), ring %d, kind %s, %lu requests\n", k->domid, l->val, k->ring, l->kind,
		l->n);
	rc = sl_kinds[ki].setup ? sl_kinds[ki].setup(l) : 0;
	for (uint64_t i = 0; rc == 0 && i < SL_WARMUP; i++)
		rc = sl_kinds[ki].op(l, i);
	if (rc < 0) {
		app_set(res, APP_FAILURE, "%s set-up: %s", l->kind, lib_errno_name(rc) ? lib_errno_name(rc) : "?");
		return;
	}

	uint64_t reqs0 = l->xb->requests, kicks0 = l->xb->kicks, upcalls0 = k->ev.upcalls, timers0 = k->tm.set_calls;
	uint64_t start = time_now_ns(&k->time), t0 = start;
	for (uint64_t i = 0; i < l->n; i++) {
		rc = sl_kinds[ki].op(l, SL_WARMUP + i);
		uint64_t t1 = time_now_ns(&k->time);
		if (rc < 0) {
			app_set(res, APP_FAILURE, "%s request %lu: %s", l->kind, i,
				lib_errno_name(rc) ? lib_errno_name(rc) : "?");
			return;
		}
		l->lat[i] = t1 - t0;
		t0 = t1;
	}
	uint64_t total = t0 - start, reqs = l->xb->requests - reqs0;

	lib_sort_u64(l->lat, l->n);
	kprintf(k, "store-load: %lu %s in %lu us (%lu ring requests, %lu stale replies, %lu events dropped)\n", l->n,
		l->kind, total / 1000, reqs, l->xb->stale, l->xb->events_dropped);
	kprintf(k, "store-load: %lu store-port events, %lu upcalls, %lu set_timer_op calls; min %lu ns, max %lu ns\n",
		l->xb->kicks - kicks0, k->ev.upcalls - upcalls0, k->tm.set_calls - timers0, l->lat[0], l->lat[l->n - 1]);
	kprintf(k, "BENCH store_ring_%s_ops_per_s %lu ops/s\n", l->kind, total ? l->n * (uint64_t)1000000000 / total : 0);
	sl_print_us(k, l->kind, "p50", sl_pct(l->lat, l->n, 50));
	sl_print_us(k, l->kind, "p99", sl_pct(l->lat, l->n, 99));
	if (sl_kinds[ki].setup)
		xenbus_unwatch(l->xb, "data/w", "store-load");
}
