/* app=crash: the three ways a guest can die (crash=pagefault|triple|shutdown). */
#include "apps.h"
#include "../kernel/hypercall.h"
#include "../kernel/traps.h"

#define CRASH_UNMAPPED_VA 0x100000000ull /* above the 4 GiB identity map: not present */

void app_crash(struct kernel *k, struct app_result *res)
{
	char how[KERNEL_ARG_MAX];

	if (kernel_cmdline_get(k, "crash", how, sizeof(how)) < 0)
		lib_snprintf(how, sizeof(how), "pagefault");
	if (strcmp(how, "pagefault") == 0) {
		kprintf(k, "crash: touching unmapped address 0x%llx\n", CRASH_UNMAPPED_VA);
		console_flush(&k->con);
		(void)*(volatile uint64_t *)(uintptr_t)CRASH_UNMAPPED_VA;
	} else if (strcmp(how, "triple") == 0) {
		kprintf(k, "crash: clearing the IDT and faulting: triple fault\n");
		console_flush(&k->con);
		traps_clear();
		(void)*(volatile uint64_t *)(uintptr_t)CRASH_UNMAPPED_VA;
	} else if (strcmp(how, "shutdown") == 0) {
		kprintf(k, "crash: SCHEDOP_shutdown(SHUTDOWN_crash)\n");
		console_flush(&k->con);
		long rc = hypercall_shutdown(SHUTDOWN_crash);
		app_set(res, APP_FAILURE, "shutdown(crash) returned %ld", rc);
		return;
	} else {
		app_set(res, APP_ERROR, "unknown crash='%s' (pagefault, triple, shutdown)", how);
		return;
	}
	app_set(res, APP_FAILURE, "still alive after crash=%s", how);
}
