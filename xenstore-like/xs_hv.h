/* The store's side of lamina-hv: its own client of hv.sock (calls, notifications, reconnection),
 * the guest-ring mapper (MAP_SPECIAL, Domain-0 event channels) and the domain lifecycle it drives. */
#ifndef LAMINA_XS_HV_H
#define LAMINA_XS_HV_H

#include <stdbool.h>
#include <stdint.h>
#include <lamina/control.h>

#include "xs_ring.h"

_Static_assert(sizeof(struct lamina_ctl_event) == 80, "event layout");
_Static_assert(sizeof(struct lamina_ctl_mapping) == 32, "mapping layout");
_Static_assert(sizeof(struct lamina_ctl_dominfo) == 176, "dominfo layout");
_Static_assert(sizeof(struct lamina_ctl_domref) == 68, "domref layout");
_Static_assert(sizeof(struct lamina_ctl_evtchn_bind) == 8, "evtchn_bind layout");
_Static_assert(sizeof(struct lamina_ctl_evtchn_port) == 4, "evtchn_port layout");

#define XS_HV_CALL_TIMEOUT_MS 3000
#define XS_HV_BACKOFF_MIN_MS 100
#define XS_HV_BACKOFF_MAX_MS 2000
#define XS_HV_EVQ 4096 /* notifications queued while a reply is awaited */

/* What the event loop offers: watch fd (level-triggered, readable) and call fn(arg) then. */
struct xs_hv_loop {
	int (*add)(void *lctx, int fd, void (*fn)(void *arg), void *arg);
	void (*del)(void *lctx, int fd);
	void *lctx;
};

struct xs_hv_port; /* a bound Domain-0 port: event fd -> notify fd */
struct xs_hv_dom;  /* a domain introduced from a notification */

struct xs_hv {
	struct xs_store *st;
	struct xs_hv_loop loop;
	char path[108];
	int fd;	      /* hv.sock, -1 while disconnected */
	int timer_fd; /* reconnection backoff; also a deferred "connection broke" */
	uint32_t seq;
	uint32_t conn_gen; /* bumped per connection: ports of an old one are already gone */
	bool broken;	   /* a call failed: disconnect at the next loop turn */
	bool said_down;	   /* "not reachable" logged for this outage */
	unsigned backoff_ms;
	struct lamina_ctl_event evq[XS_HV_EVQ];
	unsigned evq_head, evq_len;
	uint64_t ev_lost;
	struct xs_hv_port **ports; /* by event fd */
	size_t nports;
	struct xs_hv_dom *doms;
	uint64_t introduced, released, restarted; /* counters for the log and tests */
};

/* xs_hv.c: the connection. new() starts disconnected and schedules the first attempt at once. */
int xs_hv_new(struct xs_store *st, const char *sock_path, const struct xs_hv_loop *loop, struct xs_hv **out);
/* After the loop and every ring are gone (their release still calls the mapper). */
void xs_hv_free(struct xs_hv *hv);
/* One request: exact reply length rep_len (or any length <= rep_len when rep_var), up to nfds
 * descriptors returned in fds (the rest -1). 0, the server's -errno or a local -errno. */
int xs_hv_call(struct xs_hv *hv, uint16_t op, const void *req, uint32_t req_len, void *rep, uint32_t rep_len,
	       int *fds, unsigned nfds);
/* The mapper of struct xs_ring_ops with hv as its context. */
extern const struct xs_ring_ops xs_hv_ring_ops;
void xs_hv_ports_forget(struct xs_hv *hv);

/* xs_hv_dom.c: lifecycle */
void xs_hv_dom_event(struct xs_hv *hv, const struct lamina_ctl_event *ev);
/* The hypervisor went away: every domain it told us of is released. */
void xs_hv_dom_release_all(struct xs_hv *hv);
void xs_hv_dom_free_all(struct xs_hv *hv);
/* /local, /local/domain, /local/domain/0 (Domain-0) and /vm, as Xen's toolstack leaves them. */
int xs_hv_dom0_tree(struct xs_store *st);

#endif
