/* The guest's apps: each is one function chosen by `app=NAME` on the command line from a static
 * table; it prints its checks and returns the result that kernel_main prints as its last line. */
#ifndef GUEST_APPS_APPS_H
#define GUEST_APPS_APPS_H

#include "../kernel/kernel.h"

enum app_outcome {
	APP_SUCCESS,
	APP_SKIP,
	APP_ERROR,   /* the test could not run (environment, set-up) */
	APP_FAILURE, /* the test ran and something was wrong */
};

struct app_result {
	enum app_outcome outcome;
	char reason[128];
};

struct app {
	const char *name;
	void (*run)(struct kernel *k, struct app_result *res);
	const char *help;
};

/* The table, terminated by a NULL name. */
extern const struct app app_table[];
const struct app *app_find(const char *name);
void app_set(struct app_result *res, enum app_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void app_hello(struct kernel *k, struct app_result *res);
void app_selftest(struct kernel *k, struct app_result *res);
void app_spin(struct kernel *k, struct app_result *res);
void app_idle(struct kernel *k, struct app_result *res);
void app_crash(struct kernel *k, struct app_result *res);
void app_hostile(struct kernel *k, struct app_result *res);
void app_bench(struct kernel *k, struct app_result *res);
void app_echo(struct kernel *k, struct app_result *res);
void app_evtchn_test(struct kernel *k, struct app_result *res);
void app_sleep(struct kernel *k, struct app_result *res);
void app_dom0_pingpong(struct kernel *k, struct app_result *res);
void app_console_flood(struct kernel *k, struct app_result *res);
void app_store_test(struct kernel *k, struct app_result *res);
void app_store_load(struct kernel *k, struct app_result *res);
void app_grant_test(struct kernel *k, struct app_result *res);
void app_net_echo(struct kernel *k, struct app_result *res);
void app_net_bench(struct kernel *k, struct app_result *res);
void app_blk_verify(struct kernel *k, struct app_result *res);
void app_blk_bench(struct kernel *k, struct app_result *res);
void app_smp_test(struct kernel *k, struct app_result *res);

/* Named checks with ok/FAIL lines; the first failure is kept for the result line. */
struct app_checks {
	struct kernel *k;
	unsigned int pass, fail;
	char first[96];
};
bool app_check(struct app_checks *c, bool ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* FAILURE naming the first failed check, when there was one. */
void app_checks_result(const struct app_checks *c, struct app_result *res);
/* Do events and the timer work? If not: SKIP when the hypervisor lacks them (-ENOSYS), else
 * ERROR, and false. */
bool app_need_events(struct kernel *k, struct app_result *res);
/* Median of n samples (sorted in place); 0 for none. */
uint64_t app_median(uint64_t *v, size_t n);

/* Shared by hello and selftest: vCPUs the domain has (VCPUOP_is_up over every id, one multicall). */
int app_count_vcpus(struct kernel *k, unsigned int *nr, unsigned int *online);

#endif
