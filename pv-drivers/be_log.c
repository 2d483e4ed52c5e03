/* Back-end logging: one timestamped line per call on stderr (the daemon's log file), and a
 * per-source rate limit for anything a guest can trigger at will. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backend.h"

uint64_t be_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void be_vlog(const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02d %02d:%02d:%02d.%03ld %s: ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		     program_invocation_short_name);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One write per line: the log file is shared with nothing, but keep lines whole anyway. */
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
}

void be_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	be_vlog(fmt, ap);
	va_end(ap);
}

void be_ratelimit_init(struct be_ratelimit *rl, unsigned burst, unsigned window_ms)
{
	memset(rl, 0, sizeof(*rl));
	rl->burst = burst ? burst : 1;
	rl->window_ns = (uint64_t)(window_ms ? window_ms : 1000) * 1000000ull;
}

void be_log_limited(struct be_ratelimit *rl, const char *fmt, ...)
{
	uint64_t now = be_now_ns();
	va_list ap;

	if (now - rl->start_ns >= rl->window_ns) {
		if (rl->suppressed)
			be_log("(%u similar messages suppressed)", rl->suppressed);
		rl->start_ns = now;
		rl->used = 0;
		rl->suppressed = 0;
	}
	if (rl->used >= rl->burst) {
		rl->suppressed++;
		return;
	}
	rl->used++;
	va_start(ap, fmt);
	be_vlog(fmt, ap);
	va_end(ap);
}
