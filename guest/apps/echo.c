/* app=echo: console input from the PV console ring, echoed back a line at a time as
 * "echo: LINE"; the line "quit" ends the app. Waiting for input blocks on the console port. */
#include "apps.h"
#include "../kernel/hypercall.h"

#define ECHO_LINE 200

static bool echo_input(void *arg)
{
	struct kernel *k = arg;

	return console_ring_input_pending(&k->cring);
}

void app_echo(struct kernel *k, struct app_result *res)
{
	uint64_t timeout_s = kernel_cmdline_u64(k, "timeout", 0);
	uint64_t deadline = timeout_s ? time_now_ns(&k->time) + timeout_s * 1000000000ull : TIMER_NEVER;
	char line[ECHO_LINE + 1], buf[64];
	size_t len = 0;
	uint64_t lines = 0;

	if (!app_need_events(k, res))
		return;
	if (k->cring_rc < 0) {
		/* -ENOENT: the hypervisor set no CONSOLE_PFN/EVTCHN params, so there is no ring to read. */
		app_set(res, k->cring_rc == -XEN_ENOENT ? APP_SKIP : APP_ERROR, "no console ring: %s",
			lib_errno_name(k->cring_rc) ? lib_errno_name(k->cring_rc) : "?");
		return;
	}
	/* The prompt is a line of its own, so every echoed line stays whole in the console log. */
	kprintf(k, "echo: type a line; 'quit' ends\n");
	for (;;) {
		long n = console_ring_read(&k->cring, buf, sizeof(buf));
		if (n < 0) {
			app_set(res, APP_ERROR, "console input: %ld", n);
			return;
		}
		if (n == 0) {
			int rc = timer_wait(&k->tm, echo_input, k, deadline);
			if (rc < 0) {
				app_set(res, APP_FAILURE, "no 'quit' after %lu lines (%d)", lines, rc);
				return;
			}
			continue;
		}
		for (long i = 0; i < n; i++) {
			char c = buf[i];
			if (c != '\n' && c != '\r') {
				if (len < ECHO_LINE)
					line[len++] = c; /* longer lines are cut, never overrun */
				continue;
			}
			if (len == 0)
				continue; /* the second half of \r\n, or an empty line */
			line[len] = '\0';
			len = 0;
			lines++;
			if (strcmp(line, "quit") == 0) {
				kprintf(k, "echo: bye after %lu lines\n", lines);
				return;
			}
			kprintf(k, "echo: %s\n", line);
		}
	}
}
