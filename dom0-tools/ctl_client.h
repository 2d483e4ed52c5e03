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

struct ctl_conn {
	int fd;
	uint32_t seq;	       /* last sequence number sent */
	int timeout_ms;	       /* reply wait; -1 waits for ever */
	char err[CTL_ERR_MAX]; /* why the last call failed, for people */
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

/* Every domain, paging through LIST until next_domid is 0. *out is malloc'd (free it). */
int ctl_list(struct ctl_conn *conn, struct lamina_ctl_dominfo **out, size_t *count);

/* Names for enum values; "unknown" for values outside the enum. */
const char *ctl_state_name(uint32_t state);
const char *ctl_action_name(uint32_t action);
const char *ctl_shutdown_reason_name(uint32_t reason);
const char *ctl_op_name(uint16_t op);

#endif
