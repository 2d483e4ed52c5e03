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

/* Shared by hello and selftest: vCPUs the domain has (VCPUOP_is_up over every id, one multicall). */
int app_count_vcpus(struct kernel *k, unsigned int *nr, unsigned int *online);

#endif
