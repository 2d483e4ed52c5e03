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
