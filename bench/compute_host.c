/* The guest bench app's compute loop, compiled for the host from the same header: the limit the
 * guest's figure is compared against. Prints "RESULT compute_ns N" (best of --runs). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "compute_kernel.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	uint64_t iters = argc > 1 ? strtoull(argv[1], NULL, 0) : 200000000ull;
	int runs = argc > 2 ? atoi(argv[2]) : 3;
	uint64_t best = UINT64_MAX, result = 0;

	for (int i = 0; i < runs; i++) {
		uint64_t t0 = mono_ns();
		result = compute_kernel(iters);
		uint64_t dt = mono_ns() - t0;
		if (dt < best)
			best = dt;
	}
	printf("RESULT compute_ns %llu\nRESULT compute_result %llu\n", (unsigned long long)best,
	       (unsigned long long)result);
	return 0;
}
