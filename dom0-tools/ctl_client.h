/* The Domain-0 control-protocol client (libdomctl): owns the connection to lamina-hv's hv.sock,
 * message framing and reply checking, and one helper per request of include/lamina/control.h. */
#ifndef LAMINA_CTL_CLIENT_H
#define LAMINA_CTL_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <lamina/control.h>

#define CTL_DEFAULT_RUNDIR "/run/lamina"
#define CTL_ERR_MAX 256
#define CTL_MAX_FDS 8 /* file descriptors accepted on one reply */

/* Notifications (LAMINA_CTL_EVENT) that arrive while a reply is awaited wait here, in order. */
#define CTL_EVENT_QUEUE_MAX 4096u
struct ctl_event_queue;

struct ctl_conn {
	int fd;
	uint32_t seq;			/* last sequence number sent */
	int timeout_ms;			/* reply wait; -1 waits for ever */
	char err[CTL_ERR_MAX];		/* why the last call failed, for people */
	struct ctl_event_queue *events; /* owned; allocated on the first queued event */
	unsigned events_lost;		/* notifications dropped (queue full or malformed) */
};

/* A reply buffer the caller owns. ctl_call fills len, fds and nfds; the caller closes the fds. */
struct ctl_reply {
	void *buf;
	size_t cap; /* bytes buf can hold */
	size_t len; /* payload bytes received */
	int fds[CTL_MAX_FDS];
	unsigned nfds;
};

/* Length rules a reply must meet: exactly min bytes, or min + n * unit when unit != 0. */
struct ctl_len_rule {
	size_t min;
	size_t unit;
};

/* The run directory: rundir if not NULL, else $LAMINA_RUNDIR, else /run/lamina. */
const char *ctl_rundir(const char *rundir);

/* Connect to DIR/hv.sock. Returns 0 or -errno (conn->err says why). */
int ctl_connect(struct ctl_conn *conn, const char *rundir);
/* Take over an already connected SOCK_SEQPACKET fd (tests use a socketpair). */
void ctl_attach(struct ctl_conn *conn, int fd);
void ctl_close(struct ctl_conn *conn);

/* Send op with payload req/req_len, receive its reply into rep (may be NULL for empty replies),
 * check the header and the length rule. Returns the reply status (0 or -errno from the server)
 * or a local -errno; conn->err explains any failure. */
int ctl_call(struct ctl_conn *conn, uint16_t op, const void *req, size_t req_len, struct ctl_reply *rep,
	     const struct ctl_len_rule *rule);

/* The two halves of ctl_call, for requests kept in flight (a WAIT parked while another
 * connection acts): send returns the request's seq, recv takes the reply carrying it. */
int ctl_send(struct ctl_conn *conn, uint16_t op, const void *req, size_t req_len, uint32_t *seq);
int ctl_recv(struct ctl_conn *conn, uint16_t op, uint32_t seq, struct ctl_reply *rep,
	     const struct ctl_len_rule *rule);

/* Fill a domain reference: a numeric id, or a name (LAMINA_DOMID_BY_NAME). -EINVAL if invalid. */
int ctl_domref_parse(struct lamina_ctl_domref *ref, const char *name_or_id);

/* One helper per request. Each returns 0 or -errno with conn->err set. */
int ctl_hello(struct ctl_conn *conn, struct lamina_ctl_hello *out);
int ctl_create(struct ctl_conn *conn, const struct lamina_ctl_domcfg *cfg, struct lamina_ctl_dominfo *out);
int ctl_destroy(struct ctl_conn *conn, const struct lamina_ctl_domref *ref);
int ctl_pause(struct ctl_conn *conn, const struct lamina_ctl_domref *ref);
int ctl_unpause(struct ctl_conn *conn, const struct lamina_ctl_domref *ref);
int ctl_shutdown(struct ctl_conn *conn, const struct lamina_ctl_domref *ref, uint32_t reason);
int ctl_info(struct ctl_conn *conn, const struct lamina_ctl_domref *ref, struct lamina_ctl_dominfo *out);
/* Blocks until the domain stops or timeout_ms passes (-ETIMEDOUT); 0 waits for ever. */
int ctl_wait(struct ctl_conn *conn, const struct lamina_ctl_domref *ref, uint32_t timeout_ms,
	     struct lamina_ctl_dominfo *out);
/* ctl_wait in two halves: begin sends the request, end takes the reply. */
int ctl_wait_begin(struct ctl_conn *conn, const struct lamina_ctl_domref *ref, uint32_t timeout_ms,
		   uint32_t *seq);
int ctl_wait_end(struct ctl_conn *conn, uint32_t seq, uint32_t timeout_ms, struct lamina_ctl_dominfo *out);
int ctl_host_info(struct ctl_conn *conn, struct lamina_ctl_hostinfo *out);
int ctl_host_stop(struct ctl_conn *conn);

/* Counters of one domain (`domctl top`). -ESRCH when the domain is gone. */
int ctl_domstats(struct ctl_conn *conn, const struct lamina_ctl_domref *ref, struct lamina_ctl_domstats *out);

/* Notifications. After ctl_subscribe the server sends one LAMINA_EV_CREATED per live domain, then
 * one event per change. ctl_event_next returns the oldest queued event, else waits up to
 * timeout_ms (0: do not wait, -1: for ever) for the next datagram: 0 with *ev filled, -EAGAIN
 * when none came, -EPROTO for a datagram that is not a notification, -ECONNRESET on close.
 * ctl_event_pending says how many are queued: events that came during a call are only there,
 * so an epoll loop must drain them after each call. */
int ctl_subscribe(struct ctl_conn *conn);
int ctl_event_next(struct ctl_conn *conn, struct lamina_ctl_event *ev, int timeout_ms);
unsigned ctl_event_pending(const struct ctl_conn *conn);
/* Library-internal: ctl_recv hands every datagram here first. Returns 1 if it was a notification
 * (queued, or dropped and counted in events_lost), 0 if it is something else. */
int ctl_event_take(struct ctl_conn *conn, const void *msg, size_t len);
void ctl_event_queue_free(struct ctl_conn *conn);
const char *ctl_event_kind_name(uint32_t kind);

/* A Domain-0 event-channel port: the two eventfds of control.h (notify: write to signal the
 * remote end; event: readable when the remote end signalled). port is Domain-0's port. */
struct ctl_evtchn {
	uint32_t port;
	int notify_fd;
	int event_fd;
};
#define CTL_EVTCHN_INIT                                                                                      \
	{                                                                                                    \
		.port = 0, .notify_fd = -1, .event_fd = -1                                                   \
	}

/* Allocate an unbound port in dom that remote_dom may bind; *port is that port (in dom). */
int ctl_evtchn_alloc_unbound(struct ctl_conn *conn, uint32_t dom, uint32_t remote_dom, uint32_t *port);
/* Bind Domain-0 to remote_dom's port (or a VIRQ); *out owns the two descriptors on success. */
int ctl_evtchn_bind_interdomain(struct ctl_conn *conn, uint32_t remote_dom, uint32_t remote_port,
				struct ctl_evtchn *out);
int ctl_evtchn_bind_virq(struct ctl_conn *conn, uint32_t virq, struct ctl_evtchn *out);
/* Close the port on the server (conn may be NULL when the connection is gone) and always
 * release the descriptors. Returns the server's answer. */
int ctl_evtchn_close(struct ctl_conn *conn, struct ctl_evtchn *ch);
void ctl_evtchn_release(struct ctl_evtchn *ch);
/* Signal the remote end: one eventfd write. 0 or -errno. */
int ctl_evtchn_notify(const struct ctl_evtchn *ch);
/* Clear the incoming signal once the event fd is readable; *count (may be NULL) gets how many
 * signals were merged. -EAGAIN when there was none (it is polled, never blocks). */
int ctl_evtchn_ack(const struct ctl_evtchn *ch, uint64_t *count);
/* Wait until the event fd is readable (timeout_ms, -1 for ever) and clear it; *count (may be
 * NULL) as for ctl_evtchn_ack. 0, -ETIMEDOUT. */
int ctl_evtchn_wait(const struct ctl_evtchn *ch, int timeout_ms, uint64_t *count);

/* A special page of a domain mapped into this process (MAP_SPECIAL): the server's description,
 * the memfd and the mapping of map.size bytes. Sizes are checked against the memfd. */
#define CTL_SPECIAL_MAX_SIZE (1u << 20)
struct ctl_special {
	struct lamina_ctl_mapping map;
	int fd;
	void *addr;
};
#define CTL_SPECIAL_INIT                                                                                     \
	{                                                                                                    \
		.fd = -1, .addr = NULL                                                                       \
	}
int ctl_map_special(struct ctl_conn *conn, uint32_t domid, uint32_t which, struct ctl_special *out);
void ctl_unmap_special(struct ctl_special *sp);

/* Every domain, paging through LIST until next_domid is 0. *out is malloc'd (free it). */
int ctl_list(struct ctl_conn *conn, struct lamina_ctl_dominfo **out, size_t *count);

/* Names for enum values; "unknown" for values outside the enum. */
const char *ctl_state_name(uint32_t state);
const char *ctl_action_name(uint32_t action);
const char *ctl_shutdown_reason_name(uint32_t reason);
const char *ctl_op_name(uint16_t op);

#endif
