/* The control socket: lamina-hv's epoll main loop, client connections on hv.sock (peer-credential
 * checked), request framing and validation, the op dispatch table and parked WAIT requests. */
#ifndef LAMINA_HV_CTL_SERVER_H
#define LAMINA_HV_CTL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lamina/control.h"

struct hv;
struct hv_domain;

#define CTL_MAX_MSG (sizeof(struct lamina_ctl_hdr) + LAMINA_CTL_MAX_PAYLOAD)
#define CTL_DEFERRED 1 /* a handler parked the request; the reply comes later */
#define CTL_MAX_RX_FDS 4 /* descriptors a request may carry (SCM_RIGHTS); extra ones are closed */

struct ctl_conn {
	int fd;
	uid_t uid;
	bool subscribed; /* LAMINA_CTL_SUBSCRIBE: gets LAMINA_CTL_EVENT messages */
	struct ctl_conn *next;
};

struct ctl_waiter {
	struct ctl_conn *conn;
	uint32_t seq;
	uint32_t domid;
	uint64_t deadline_ns; /* CLOCK_MONOTONIC, 0: none */
	struct ctl_waiter *next;
};

struct ctl_server {
	struct hv *hv;
	int listen_fd; /* -1 in tests that add connections by hand */
	int epoll_fd;
	int signal_fd; /* -1 when signals are not the server's business */
	uid_t uid;     /* the daemon's own uid: allowed besides root */
	struct ctl_conn *conns;
	unsigned nr_conns;
	struct ctl_waiter *waiters;
	bool quit;
	uint8_t *rx, *tx; /* CTL_MAX_MSG + 1 bytes each */
	/* Descriptors that came with the request in rx: a handler takes one with ctl_take_fd; those
	 * left are closed once the request has been handled. */
	int rx_fds[CTL_MAX_RX_FDS];
	unsigned rx_nfds;
	void *gnt;	  /* ctl_grant.c: Domain-0 clients' grant maps and buffers, NULL when none */
};

/* One row per op: the exact request payload size, and the handler. A handler writes at most
 * LAMINA_CTL_MAX_PAYLOAD bytes to out, sets *out_len and returns 0, -errno or CTL_DEFERRED. */
typedef int (*ctl_handler)(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			   const void *req, void *out, size_t *out_len);
struct ctl_op_desc {
	uint16_t op;
	const char *name;
	uint32_t req_len;
	ctl_handler fn;
};

/* ctl_server.c */
int ctl_server_init(struct ctl_server *s, struct hv *hv, int listen_fd, int signal_fd);
void ctl_server_fini(struct ctl_server *s);
/* Serve until HOST_STOP or a termination signal. */
int ctl_server_run(struct ctl_server *s);
/* One round of the loop: wait at most timeout_ms for events, handle them. */
int ctl_server_poll(struct ctl_server *s, int timeout_ms);
int ctl_conn_add(struct ctl_server *s, int fd, uid_t uid);
/* Sends a reply on c; on failure the connection is marked for closing. */
int ctl_reply(struct ctl_server *s, struct ctl_conn *c, uint16_t op, uint32_t seq, int status, const void *p,
	      size_t len);
/* Handles one received datagram of n bytes in s->rx (n > CTL_MAX_MSG means truncated). */
void ctl_handle_msg(struct ctl_server *s, struct ctl_conn *c, size_t n);
int ctl_listen(const char *rundir, int *fd_out);
/* The next descriptor the current request carried, now the caller's to close; -EBADF if none. */
int ctl_take_fd(struct ctl_server *s);

/* Sends a reply carrying descriptors (SCM_RIGHTS); returns CTL_DEFERRED for the handler to pass
 * on (the reply has gone out). The caller still owns and closes its fds. */
int ctl_reply_fds(struct ctl_conn *c, const struct lamina_ctl_hdr *req, const void *p, size_t len,
		  const int *fds, unsigned nfds);

/* ctl_events.c: event channels of Domain-0, special pages, notifications, statistics. */
int ctl_op_evtchn_alloc(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			const void *req, void *out, size_t *out_len);
int ctl_op_evtchn_bind(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		       const void *req, void *out, size_t *out_len);
int ctl_op_evtchn_virq(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		       const void *req, void *out, size_t *out_len);
int ctl_op_evtchn_close(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
			const void *req, void *out, size_t *out_len);
int ctl_op_map_special(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		       const void *req, void *out, size_t *out_len);
int ctl_op_subscribe(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		     const void *req, void *out, size_t *out_len);
int ctl_op_domstats(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		    const void *req, void *out, size_t *out_len);
void ctl_on_domain_event(void *arg, unsigned kind, struct hv_domain *hd);

/* ctl_dump.c: LAMINA_CTL_DUMP_CORE. */
int ctl_op_dump_core(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		     const void *req, void *out, size_t *out_len);
void ctl_events_conn_closed(struct ctl_server *s, struct ctl_conn *c);

/* ctl_ops.c */
const struct ctl_op_desc *ctl_op_find(uint16_t op);
int ctl_wait_park(struct ctl_server *s, struct ctl_conn *c, uint32_t seq, uint32_t domid,
		  uint32_t timeout_ms);
void ctl_on_domain_stop(void *arg, struct hv_domain *hd, bool gone, uint8_t action);
void ctl_waiters_expire(struct ctl_server *s, uint64_t now_ns);
void ctl_waiters_drop_conn(struct ctl_server *s, struct ctl_conn *c);
int ctl_waiters_timeout_ms(struct ctl_server *s, uint64_t now_ns); /* -1: none */

#endif
