/* app=console-flood: bytes=N of numbered, patterned 64-byte lines written to the console in
 * ring-sized blocks (one notify per block) as fast as the back-end drains them. */
#include "apps.h"
#include "../kernel/hypercall.h"

#define FLOOD_LINE 64
#define FLOOD_BLOCK 2048
#define FLOOD_DEFAULT_BYTES (1024 * 1024)

/* "flood 00000042 " then letters rotating with the line number, then '\n': exactly 64 bytes. */
static void flood_line(char *p, uint64_t n)
{
	int h = lib_snprintf(p, FLOOD_LINE, "flood %08lu ", (unsigned long)(n % 100000000u));

	for (int i = h; i < FLOOD_LINE - 1; i++)
		p[i] = (char)('A' + (n + (uint64_t)i) % 26);
	p[FLOOD_LINE - 1] = '\n';
}

void app_console_flood(struct kernel *k, struct app_result *res)
{
	uint64_t bytes = kernel_cmdline_u64(k, "bytes", FLOOD_DEFAULT_BYTES);
	char block[FLOOD_BLOCK];
	uint64_t line = 0, done = 0;

	bytes -= bytes % FLOOD_LINE;
	kprintf(k, "console-flood: %lu bytes, %s\n", bytes,
		k->cring_rc == 0 && console_ring_active(&k->cring) ? "console ring" : "console_io");
	console_flush(&k->con);
	uint64_t ring0 = k->cring.ring_bytes, io0 = k->cring.io_bytes, t0 = time_now_ns(&k->time);
	while (done < bytes) {
		size_t n = 0;
		while (n + FLOOD_LINE <= sizeof(block) && done + n < bytes) {
			flood_line(block + n, line++);
			n += FLOOD_LINE;
		}
		console_write_block(&k->con, block, n);
		done += n;
	}
	uint64_t ns = time_now_ns(&k->time) - t0;
	uint64_t kbps = ns ? done * 1000000ull / ns : 0; /* bytes/ns * 1e6 = KB/s (decimal) */
	kprintf(k, "console-flood: %lu lines, %lu bytes in %lu us (%lu.%03lu MB/s); ring %lu, console_io %lu, "
		   "waits %lu, timeouts %lu, last ring error %ld\n",
		line, done, ns / 1000, kbps / 1000, kbps % 1000, k->cring.ring_bytes - ring0, k->cring.io_bytes - io0,
		k->cring.waits, k->cring.timeouts, k->cring.last_error);
	if (k->con.last_error < 0)
		app_set(res, APP_FAILURE, "console write failed: %ld", k->con.last_error);
}
