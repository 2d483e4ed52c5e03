/* The daemon log: one write(2) per line so concurrent writers never interleave within a line. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv_log.h"

int hv_log_open(struct hv_log *log, const char *path)
{
	log->fd = -1;
	pthread_mutex_init(&log->lock, NULL);
	if (!path)
		return 0;
	log->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log->fd < 0)
		return -errno;
	return 0;
}

void hv_log_close(struct hv_log *log)
{
	if (log->fd >= 0)
		close(log->fd);
	log->fd = -1;
	pthread_mutex_destroy(&log->lock);
}

void hv_log(struct hv_log *log, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n, m;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	pthread_mutex_lock(&log->lock);
	if (write(log->fd >= 0 ? log->fd : STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to report a failing log; the daemon keeps running. */
	}
	pthread_mutex_unlock(&log->lock);
}

bool hv_ratelimit_ok(struct hv_ratelimit *rl, pthread_mutex_t *lock, uint32_t *dropped_out)
{
	struct timespec ts;
	uint64_t now, add;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	pthread_mutex_lock(lock);
	if (rl->last_ns == 0) {
		rl->tokens = HV_LOG_BURST;
		rl->last_ns = now;
	}
	add = (now - rl->last_ns) * HV_LOG_RATE / 1000000000ull;
	if (add) {
		rl->tokens = add + rl->tokens > HV_LOG_BURST ? HV_LOG_BURST : rl->tokens + (uint32_t)add;
		rl->last_ns = now;
	}
	ok = rl->tokens > 0;
	*dropped_out = 0;
	if (ok) {
		rl->tokens--;
		*dropped_out = rl->dropped;
		rl->dropped = 0;
	} else {
		rl->dropped++;
	}
	pthread_mutex_unlock(lock);
	return ok;
}
