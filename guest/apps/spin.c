/* app=spin and app=idle: a guest that never stops computing, and one that only ever blocks
 * (SCHEDOP_block with events enabled: it wakes for events and blocks again). */
#include "apps.h"
#include "../kernel/hypercall.h"

#define SPIN_PERIOD_NS 100000000ull

void app_spin(struct kernel *k, struct app_result *res)
{
	uint64_t n = 0, next = time_now_ns(&k->time) + SPIN_PERIOD_NS;

	kprintf(k, "spin: start\n");
	for (;;) {
		uint64_t now = time_now_ns(&k->time);
		if (now >= next) {
			kprintf(k, "spin: %lu\n", ++n);
			next += SPIN_PERIOD_NS;
			if (next < now) /* we were paused: do not print the backlog */
				next = now + SPIN_PERIOD_NS;
		}
		__asm__ volatile("pause");
	}
	app_set(res, APP_ERROR, "spin returned");
}

void app_idle(struct kernel *k, struct app_result *res)
{
	kprintf(k, "idle: domain %u up\n", k->domid_known ? k->domid : 0);
	console_flush(&k->con);
	for (;;)
		kernel_idle(k);
}
