/* Guest time the Xen way: system time from the vCPU's vcpu_time_info (rdtsc scaled by
 * tsc_to_system_mul/tsc_shift, retried on odd or changed versions), wall clock from shared_info. */
#include "kernel.h"

#define TIME_RETRIES 1000000

static inline void time_rmb(void)
{
	__asm__ volatile("" ::: "memory"); /* x86 keeps loads in order; stop the compiler */
}

void time_init(struct kernel_time *t, const volatile struct shared_info *shared,
	       const volatile struct vcpu_info *vi)
{
	t->shared = shared;
	t->ti = &vi->time;
}

static uint64_t time_scale(uint64_t delta, uint32_t mul, int8_t shift)
{
	if (shift < 0)
		delta >>= (unsigned int)-shift;
	else
		delta <<= (unsigned int)shift;
	return (uint64_t)(((unsigned __int128)delta * mul) >> 32);
}

uint64_t time_tsc_to_ns(const struct kernel_time *t, uint64_t tsc_delta)
{
	uint32_t mul = t->ti->tsc_to_system_mul;
	int8_t shift = t->ti->tsc_shift;

	return time_scale(tsc_delta, mul, shift);
}

uint64_t time_now_ns(const struct kernel_time *t)
{
	const volatile struct vcpu_time_info *ti = t->ti;
	uint64_t now = 0;

	for (int i = 0; i < TIME_RETRIES; i++) {
		uint32_t v = ti->version;
		time_rmb();
		uint64_t stamp = ti->tsc_timestamp;
		uint64_t sys = ti->system_time;
		uint32_t mul = ti->tsc_to_system_mul;
		int8_t shift = ti->tsc_shift;
		uint64_t tsc = time_rdtsc();
		time_rmb();
		if ((v & 1) || v != ti->version)
			continue;
		now = sys + (tsc > stamp ? time_scale(tsc - stamp, mul, shift) : 0);
		break;
	}
	return now;
}

int time_wallclock(const struct kernel_time *t, uint64_t *sec, uint32_t *nsec)
{
	const volatile struct shared_info *s = t->shared;

	if (!s)
		return -XEN_ENODEV;
	for (int i = 0; i < TIME_RETRIES; i++) {
		uint32_t v = s->wc_version;
		time_rmb();
		uint64_t wsec = s->wc_sec | ((uint64_t)s->xen_wc_sec_hi << 32);
		uint32_t wnsec = s->wc_nsec;
		time_rmb();
		if ((v & 1) || v != s->wc_version)
			continue;
		/* The wall clock is the time at system time 0: add the current system time. */
		uint64_t total = wnsec + time_now_ns(t);
		*sec = wsec + total / 1000000000ull;
		*nsec = (uint32_t)(total % 1000000000ull);
		return 0;
	}
	return -XEN_EAGAIN;
}
