/* xenbus: the guest's client of the store over its ring (struct xenstore_domain_interface at
 * HVM_PARAM_STORE_PFN, HVM_PARAM_STORE_EVTCHN): requests matched to replies, watches, transactions. */
#ifndef GUEST_KERNEL_XENBUS_H
#define GUEST_KERNEL_XENBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/io/xs_wire.h>
#include "events.h"
#include "timer.h"

#define XENBUS_MAX_WATCHES 8
#define XENBUS_QUEUE 16	    /* watch events waiting for xenbus_dispatch_watches */
#define XENBUS_PATH_MAX 256 /* longest path a queued watch event or a watch may have */
#define XENBUS_TOKEN_MAX 64
#define XENBUS_TIMEOUT_NS 5000000000ull /* a request the store does not answer in 5 s fails */

struct kernel_time;
struct xenbus;
/* Runs in the caller's context from xenbus_dispatch_watches / xenbus_wait_watch: may print. */
typedef void (*xenbus_watch_fn)(struct xenbus *xb, const char *path, const char *token, void *arg);

struct xenbus_watch {
	bool used;
	char path[XENBUS_PATH_MAX];
	char token[XENBUS_TOKEN_MAX];
	xenbus_watch_fn fn;
	void *arg;
	uint64_t fired;
};

struct xenbus_event {
	char path[XENBUS_PATH_MAX];
	char token[XENBUS_TOKEN_MAX];
};

struct xenbus {
	struct events *ev;
	struct timers *tm;
	const struct kernel_time *time;
	volatile struct xenstore_domain_interface *intf;
	evtchn_port_t port;
	bool ready;
	int init_rc;
	uint32_t req_id;
	XENSTORE_RING_IDX req_prod, rsp_cons; /* ours: never read back from the page */
	XENSTORE_RING_IDX notified_cons;      /* rsp_cons at the last notify */
	bool notify_owed;		      /* a request is in req, the daemon not yet told */
	volatile uint64_t kicks;
	/* room_notifies: notifies sent only because rsp had filled since the last one. */
	uint64_t requests, replies, stale, events_queued, events_dropped, room_notifies;
	struct xenbus_watch watches[XENBUS_MAX_WATCHES];
	struct xenbus_event queue[XENBUS_QUEUE];
	unsigned int q_head, q_len;
	char msg[XENSTORE_PAYLOAD_MAX + 1]; /* the message being read, NUL-terminated */
};

/* xb must start zeroed (it lives in struct kernel). Finds the ring and port (params), checks
 * them, attaches the port; idempotent once it succeeded. 0 or -errno. */
int xenbus_init(struct xenbus *xb, struct events *ev, struct timers *tm, const struct kernel_time *time,
		uint64_t image_end);

/* tx is 0 outside a transaction. A request unanswered for XENBUS_TIMEOUT_NS is -ETIMEDOUT, or
 * -ENOTCONN when no store daemon ever attached to the ring (server_features still 0). Reads return the
 * value's length (NUL-terminated in out; -E2BIG when out is too small); the rest 0 or -errno, store errors
 * mapped (EACCES -> -EACCES ...). */
int xenbus_read(struct xenbus *xb, uint32_t tx, const char *path, char *out, size_t size);
int xenbus_write(struct xenbus *xb, uint32_t tx, const char *path, const char *value);
int xenbus_mkdir(struct xenbus *xb, uint32_t tx, const char *path);
int xenbus_rm(struct xenbus *xb, uint32_t tx, const char *path);
/* The children's names, NUL-separated, into out; returns how many. */
int xenbus_directory(struct xenbus *xb, uint32_t tx, const char *path, char *out, size_t size);
int xenbus_transaction_start(struct xenbus *xb, uint32_t *tx);
int xenbus_transaction_end(struct xenbus *xb, uint32_t tx, bool commit);

int xenbus_watch(struct xenbus *xb, const char *path, const char *token, xenbus_watch_fn fn, void *arg);
int xenbus_unwatch(struct xenbus *xb, const char *path, const char *token);
/* Reads what the store sent meanwhile, then runs the callbacks of queued events: how many ran. */
int xenbus_dispatch_watches(struct xenbus *xb);
/* Blocks until at least one watch event ran (its count) or deadline: -ETIMEDOUT. */
int xenbus_wait_watch(struct xenbus *xb, uint64_t deadline);

/* Maps an XS_ERROR string ("EACCES") to -errno; -EIO for an unknown one. */
int xenbus_errno(const char *name);

#endif
