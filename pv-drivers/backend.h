/* libbackend: what every Domain-0 back-end shares — the subscribed control connection and its
 * notifications, a guest's special page with its bound event channel, ring index checks, logs. */
#ifndef LAMINA_BACKEND_H
#define LAMINA_BACKEND_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl_client.h"

/* ---- be_log.c: timestamped log lines on stderr, and a limit for what guests can trigger ---- */

uint64_t be_now_ns(void); /* CLOCK_MONOTONIC */
void be_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* At most burst lines per window; the first line after a suppressed stretch says how many were
 * dropped. One per source a guest controls, so one noisy guest cannot drown the others. */
struct be_ratelimit {
	uint64_t start_ns, window_ns;
	unsigned burst, used, suppressed;
};
void be_ratelimit_init(struct be_ratelimit *rl, unsigned burst, unsigned window_ms);
void be_log_limited(struct be_ratelimit *rl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- be_ctl.c: the control connection a back-end keeps to lamina-hv ---- */

struct be_ctl {
	struct ctl_conn conn;
	const char *rundir;
	int connected;
};

/* A handler per notification kind; dispatch is by this table. */
struct be_event_handler {
	uint32_t kind; /* enum lamina_ctl_event_kind */
	const char *name;
	int (*fn)(void *arg, const struct lamina_ctl_event *ev);
};

/* Connect to lamina-hv, check HELLO and SUBSCRIBE. 0 or -errno (c->conn.err says why). */
int be_ctl_open(struct be_ctl *c, const char *rundir);
void be_ctl_close(struct be_ctl *c);
/* Hand every notification available now (queued, then readable without waiting) to its handler.
 * Returns 0, or -ECONNRESET / -errno when the connection is lost (it is then closed). A handler's
 * error is logged, never fatal. */
int be_ctl_dispatch(struct be_ctl *c, const struct be_event_handler *tab, size_t n, void *arg);

/* ---- be_port.c: one special page of a guest, mapped, and its event channel bound ---- */

struct be_port {
	uint32_t domid;
	uint32_t which; /* enum lamina_special_page */
	struct ctl_special page;
	struct ctl_evtchn ch;
};
#define BE_PORT_INIT                                                                                         \
	{                                                                                                    \
		.page = CTL_SPECIAL_INIT, .ch = CTL_EVTCHN_INIT                                              \
	}

/* MAP_SPECIAL, then BIND_INTERDOMAIN to the guest port the mapping names; the memfd is closed
 * once mapped (page.fd is -1). On failure nothing is left open. */
int be_port_open(struct ctl_conn *conn, uint32_t domid, uint32_t which, struct be_port *p);
/* Close the port (conn may be NULL once the connection is gone) and unmap. Idempotent. */
void be_port_close(struct ctl_conn *conn, struct be_port *p);
int be_port_is_open(const struct be_port *p);

/* ---- be_ring.c: byte rings shared with a guest (xencons, xenstore): every index is read once,
 * checked, and only then used; the data is copied before anything looks at it ---- */

/* One load of a shared index, ordered before the data reads that depend on it. */
uint32_t be_ring_load(const volatile uint32_t *idx);
/* Publish an index after the data writes (or reads) it covers. */
void be_ring_store(volatile uint32_t *idx, uint32_t v);
/* prod - cons must lie within 0..size (unsigned, so wrapping indexes are fine). -EPROTO with a
 * reason for people otherwise. size is a power of two. */
int be_ring_check(uint32_t prod, uint32_t cons, uint32_t size, char *why, size_t whylen);
/* Copy len bytes starting at index cons out of (into) a ring of size bytes, across the wrap. */
void be_ring_copy_out(const volatile char *ring, uint32_t size, uint32_t cons, void *dst, size_t len);
void be_ring_copy_in(volatile char *ring, uint32_t size, uint32_t prod, const void *src, size_t len);

#endif
