/* app=sleep: count sleeps of ms each on the timer (SCHEDOP_block until VIRQ_TIMER), each wake
 * measured against its deadline with the pvclock. Early wakes or a median more than 1 ms late
 * fail. */
#include "apps.h"
#include "../kernel/hypercall.h"

#define SLEEP_MAX_COUNT 4096
#define SLEEP_LATE_LIMIT_NS 1000000ull

void app_sleep(struct kernel *k, struct app_result *res)
{
	uint64_t ms = kernel_cmdline_u64(k, "ms", 10), count = kernel_cmdline_u64(k, "count", 50);
	uint64_t err[SLEEP_MAX_COUNT];
	uint64_t early = 0, worst_early = 0;

	if (count == 0 || count > SLEEP_MAX_COUNT || ms == 0 || ms > 60000) {
		app_set(res, APP_ERROR, "need 1 <= count <= %u and 1 <= ms <= 60000", SLEEP_MAX_COUNT);
		return;
	}
	if (!app_need_events(k, res))
		return;
	kprintf(k, "sleep: %lu x %lu ms, ring %d\n", count, ms, k->ring);
	uint64_t virqs0 = k->tm.virqs, t0 = time_now_ns(&k->time);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t deadline = time_now_ns(&k->time) + ms * 1000000ull;
		int rc = timer_sleep_until(&k->tm, deadline);
		uint64_t now = time_now_ns(&k->time);
		if (rc < 0) {
			app_set(res, APP_ERROR, "sleep %lu: %d", i, rc);
			return;
		}
		if (now < deadline) {
			early++;
			if (deadline - now > worst_early)
				worst_early = deadline - now;
			err[i] = 0;
		} else {
			err[i] = now - deadline;
		}
	}
	uint64_t total = time_now_ns(&k->time) - t0;
	uint64_t med = app_median(err, count);
	kprintf(k, "sleep: wake error min %lu.%03lu us, median %lu.%03lu us, max %lu.%03lu us\n", err[0] / 1000,
		err[0] % 1000, med / 1000, med % 1000, err[count - 1] / 1000, err[count - 1] % 1000);
	kprintf(k, "sleep: %lu ms in all for %lu ms of sleeps; %lu timer VIRQs (%lu before the deadline by our clock)\n",
		total / 1000000, count * ms, k->tm.virqs - virqs0, k->tm.early);
	kprintf(k, "BENCH timer_wake_error_us %lu us\n", med / 1000);
	if (early)
		app_set(res, APP_FAILURE, "%lu wakes before the deadline (worst %lu ns early)", early, worst_early);
	else if (med > SLEEP_LATE_LIMIT_NS)
		app_set(res, APP_FAILURE, "median wake %lu us after the deadline (limit 1000 us)", med / 1000);
}
