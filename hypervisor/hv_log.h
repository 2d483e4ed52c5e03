/* The daemon log: timestamped lines appended to DIR/hv.log (or --log), serialised across threads,
 * with a per-source token bucket so a noisy guest cannot flood the disk. */
#ifndef LAMINA_HV_LOG_H
#define LAMINA_HV_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct hv_log {
	int fd; /* -1: stderr */
	pthread_mutex_t lock;
};

/* A token bucket: at most burst lines, refilled at rate lines per second. */
struct hv_ratelimit {
	uint64_t last_ns;
	uint32_t tokens;
	uint32_t dropped;
};

#define HV_LOG_RATE 20
#define HV_LOG_BURST 50

int hv_log_open(struct hv_log *log, const char *path); /* path NULL: stderr */
void hv_log_close(struct hv_log *log);
void hv_log(struct hv_log *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* true if a line may be written now; counts the dropped ones (and says so on the next line). */
bool hv_ratelimit_ok(struct hv_ratelimit *rl, pthread_mutex_t *lock, uint32_t *dropped_out);

#endif
