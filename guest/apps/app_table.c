/* The app table: adding an app is one row here and one file under apps/. */
#include "apps.h"
#include "../kernel/hypercall.h"

const struct app app_table[] = {
    {"hello", app_hello, "greeting with domain id, memory, vCPUs, ring, Xen version; powers off"},
    {"selftest", app_selftest, "checks the hypercall ABI from inside the guest"},
    {"spin", app_spin, "prints 'spin: N' every ~100 ms of guest time, for ever"},
    {"idle", app_idle, "prints one line, then SCHEDOP_block in a loop"},
    {"crash", app_crash, "crash=pagefault|triple|shutdown"},
    {"hostile", app_hostile, "seed=N count=N: random hypercalls with hostile arguments"},
    {"bench", app_bench, "n=N iters=N: exit, hypercall, multicall and compute costs"},
    {"echo", app_echo, "echoes console input lines with 'echo: '; 'quit' ends"},
    {"evtchn-test", app_evtchn_test, "event-channel semantics; peer=D role=server|client [port=P] rounds=N"},
    {"sleep", app_sleep, "ms=N count=N: timer sleeps, wake error against the deadline"},
    {"dom0-pingpong", app_dom0_pingpong, "rounds=N: answers Domain-0's events on a port it allocates"},
    {"console-flood", app_console_flood, "bytes=N: patterned lines to the console as fast as it can"},
    {"store-test", app_store_test, "xenbus: own subtree, permissions, watches, transactions [other=D wait-dom0=1]"},
    {"store-load", app_store_load, "ops=N kind=read|write|watch: timed store requests over the ring"},
    {"grant-test", app_grant_test, "grants pages to Domain-0 for tests/gnt_client; mode=full|hold|bench|g2g-grant|g2g-map [pages=N]"},
    {"blk-verify", app_blk_verify, "blkfront: checksummed blocks written, flushed, read back; mode=full|check|loop blocks=N seed=S"},
    {"blk-bench", app_blk_bench, "blkfront: 4 KiB random QD1/QD32, 1 MiB sequential; BENCH lines [ms=N persistent=0|1]"},
    {"net-echo", app_net_echo, "ip=A.B.C.D/N [secs=N] [ping=A.B.C.D count=N]: answers ARP, ping, UDP echo on the first vif"},
    {"net-bench", app_net_bench, "ip=A.B.C.D/N mode=tx|rx [dst=A.B.C.D] [port=P] [size=N] [secs=N]: UDP streams with Domain-0"},
    {"smp-test", app_smp_test, "brings vCPU 1 up (needs <vcpu>2</vcpu>): both run at once, down/up [hold=1]"},
    {NULL, NULL, NULL},
};

const struct app *app_find(const char *name)
{
	for (const struct app *a = app_table; a->name; a++) {
		if (strcmp(a->name, name) == 0)
			return a;
	}
	return NULL;
}

void app_set(struct app_result *res, enum app_outcome o, const char *fmt, ...)
{
	va_list ap;

	res->outcome = o;
	va_start(ap, fmt);
	lib_vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
}

bool app_check(struct app_checks *c, bool ok, const char *name, const char *fmt, ...)
{
	char detail[160];
	va_list ap;

	va_start(ap, fmt);
	lib_vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	kprintf(c->k, "  %-44s %s%s%s\n", name, ok ? "ok" : "FAIL", detail[0] ? "  " : "", detail);
	if (ok) {
		c->pass++;
	} else if (c->fail++ == 0) {
		lib_snprintf(c->first, sizeof(c->first), "%s (%s)", name, detail);
	}
	return ok;
}

void app_checks_result(const struct app_checks *c, struct app_result *res)
{
	kprintf(c->k, "%u passed, %u failed\n", c->pass, c->fail);
	if (c->fail)
		app_set(res, APP_FAILURE, "%u checks failed, first: %s", c->fail, c->first);
}

bool app_need_events(struct kernel *k, struct app_result *res)
{
	int rc = !k->ev.ready ? k->ev.init_rc : k->tm.port < 0 ? k->tm.port : 0;

	if (rc == 0)
		return true;
	app_set(res, rc == -XEN_ENOSYS ? APP_SKIP : APP_ERROR, "no event channels or timer from the hypervisor (%s)",
		lib_errno_name(rc) ? lib_errno_name(rc) : "?");
	return false;
}

uint64_t app_median(uint64_t *v, size_t n)
{
	if (n == 0)
		return 0;
	lib_sort_u64(v, n);
	return v[n / 2];
}

int app_count_vcpus(struct kernel *k, unsigned int *nr, unsigned int *online)
{
	static const unsigned int max = LAMINA_MAX_VCPUS;
	struct multicall_entry calls[LAMINA_MAX_VCPUS];
	long rc;

	memset(calls, 0, sizeof(calls));
	for (unsigned int i = 0; i < max; i++) {
		calls[i].op = __HYPERVISOR_vcpu_op;
		calls[i].args[0] = VCPUOP_is_up;
		calls[i].args[1] = i;
		calls[i].args[2] = 0;
	}
	rc = HYPERVISOR_multicall(calls, max);
	if (rc < 0)
		return (int)rc;
	*nr = 0;
	*online = 0;
	for (unsigned int i = 0; i < max; i++) {
		long r = (long)calls[i].result;
		if (r == -XEN_ENOENT)
			continue;
		if (r < 0)
			return (int)r;
		(*nr)++;
		if (r > 0)
			(*online)++;
	}
	(void)k;
	return 0;
}
