/* app=bench: what an exit, a hypercall, a multicall and a compute loop cost from the ring the
 * kernel runs in, timed with rdtsc scaled by the pvclock; printed as `BENCH metric value unit`. */
#include "apps.h"
#include "compute_kernel.h"
#include "../kernel/hypercall.h"

#define BENCH_N_DEFAULT 2000
#define BENCH_N_MAX 8192
#define BENCH_BATCH 32
#define BENCH_ITERS_RING3 200000000ull
#define BENCH_ITERS_RING0 20000ull /* each ring-0 instruction is emulated */

struct bench {
	struct kernel *k;
	uint64_t n;
	uint64_t samples[BENCH_N_MAX];
	struct multicall_entry calls[BENCH_BATCH];
};

static uint64_t bench_median_ns(struct bench *b, uint64_t count)
{
	lib_sort_u64(b->samples, count);
	return time_tsc_to_ns(&b->k->time, b->samples[count / 2]);
}

static uint64_t bench_null_exit(struct bench *b)
{
	for (uint64_t i = 0; i < b->n; i++) {
		uint64_t t0 = time_rdtsc();
		hypercall_null_exit();
		b->samples[i] = time_rdtsc() - t0;
	}
	return bench_median_ns(b, b->n);
}

static uint64_t bench_null_hypercall(struct bench *b, long *bad)
{
	for (uint64_t i = 0; i < b->n; i++) {
		uint64_t t0 = time_rdtsc();
		long rc = HYPERVISOR_xen_version(XENVER_version, NULL);
		b->samples[i] = time_rdtsc() - t0;
		if (rc < 0)
			*bad = rc;
	}
	return bench_median_ns(b, b->n);
}

static uint64_t bench_multicall32(struct bench *b, uint64_t rounds, long *bad)
{
	for (uint64_t r = 0; r < rounds; r++) {
		for (unsigned int i = 0; i < BENCH_BATCH; i++) {
			b->calls[i] = (struct multicall_entry){.op = __HYPERVISOR_xen_version};
			b->calls[i].args[0] = XENVER_version;
		}
		uint64_t t0 = time_rdtsc();
		long rc = HYPERVISOR_multicall(b->calls, BENCH_BATCH);
		b->samples[r] = time_rdtsc() - t0;
		if (rc < 0)
			*bad = rc;
		for (unsigned int i = 0; i < BENCH_BATCH; i++) {
			if ((long)b->calls[i].result < 0)
				*bad = (long)b->calls[i].result;
		}
	}
	return bench_median_ns(b, rounds);
}

static uint64_t bench_single32(struct bench *b, uint64_t rounds, long *bad)
{
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t t0 = time_rdtsc();
		for (unsigned int i = 0; i < BENCH_BATCH; i++) {
			long rc = HYPERVISOR_xen_version(XENVER_version, NULL);
			if (rc < 0)
				*bad = rc;
		}
		b->samples[r] = time_rdtsc() - t0;
	}
	return bench_median_ns(b, rounds);
}

/* Kept out of line so the loop is measured as the host program will compile it. */
static __attribute__((noinline)) uint64_t bench_compute(uint64_t iters)
{
	return compute_kernel(iters);
}

void app_bench(struct kernel *k, struct app_result *res)
{
	struct bench bench_buf;
	struct bench *b = &bench_buf;
	uint64_t iters_dflt = k->ring == 0 ? BENCH_ITERS_RING0 : BENCH_ITERS_RING3;
	uint64_t iters = kernel_cmdline_u64(k, "iters", iters_dflt);
	long bad = 0;

	b->k = k;
	b->n = kernel_cmdline_u64(k, "n", BENCH_N_DEFAULT);
	if (b->n == 0 || b->n > BENCH_N_MAX) {
		app_set(res, APP_ERROR, "n=%lu out of range 1..%u", b->n, BENCH_N_MAX);
		return;
	}
	if (time_tsc_to_ns(&k->time, 1000000) == 0) {
		app_set(res, APP_ERROR, "no pvclock scale in vcpu_time_info");
		return;
	}
	uint64_t rounds = b->n / 16 > 16 ? b->n / 16 : 16;
	if (rounds > b->n)
		rounds = b->n;

	kprintf(k, "bench: ring %d, n=%lu, batch rounds=%lu, iters=%lu\n", k->ring, b->n, rounds, iters);
	kprintf(k, "BENCH null_exit_ns %lu ns\n", bench_null_exit(b));
	kprintf(k, "BENCH null_hypercall_ns %lu ns\n", bench_null_hypercall(b, &bad));
	kprintf(k, "BENCH multicall32_ns %lu ns\n", bench_multicall32(b, rounds, &bad));
	kprintf(k, "BENCH single32_ns %lu ns\n", bench_single32(b, rounds, &bad));

	uint64_t t0 = time_rdtsc();
	uint64_t v = bench_compute(iters);
	uint64_t ns = time_tsc_to_ns(&k->time, time_rdtsc() - t0);
	kprintf(k, "BENCH compute_ns %lu ns\n", ns);
	kprintf(k, "BENCH compute_iters %lu iters\n", iters);
	kprintf(k, "bench: compute_kernel(%lu) = 0x%lx\n", iters, v);
	if (bad < 0)
		app_set(res, APP_FAILURE, "a timed hypercall failed: %ld", bad);
}
