/* A fake lamina-hv control socket for unit tests: control.h framing with SCM_RIGHTS descriptors, on
 * a listening socket or a socketpair, requests dispatched to a table of handlers the test supplies. */
#ifndef LAMINA_TEST_CTL_FAKE_H
#define LAMINA_TEST_CTL_FAKE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <lamina/control.h>

#define CTL_FAKE_MAX_FDS 16    /* descriptors on one message */
#define CTL_FAKE_REQ_MAX 4096u /* request payload bytes kept; the tests' requests are smaller */

struct ctl_fake_req {
	struct lamina_ctl_hdr h;
	size_t len; /* payload bytes received (the datagram less its header) */
	char payload[CTL_FAKE_REQ_MAX];
};

struct ctl_fake;

/* A handler answers (ctl_fake_answer) or deliberately does not. */
struct ctl_fake_op {
	uint16_t op;
	void (*fn)(struct ctl_fake *f, const struct ctl_fake_req *rq);
};

struct ctl_fake {
	int lfd;  /* listening socket; -1 when the fake is one end of a socketpair */
	int conn; /* the client's connection; -1 when there is none */
	const struct ctl_fake_op *ops;
	size_t nops;
	int32_t unknown_status; /* the status answered to ops not in the table */
	void *ctx;		/* the test's state, for its handlers */
};

/* Senders return what sendmsg returns (the whole datagram's size) or -errno; never SIGPIPE. */
ssize_t ctl_fake_send_raw(int fd, const void *buf, size_t len, const int *fds, unsigned nfds);
ssize_t ctl_fake_send(int fd, uint16_t op, uint32_t seq, int32_t status, uint32_t flags, const void *p,
		      size_t len, const int *fds, unsigned nfds);
/* An unsolicited LAMINA_CTL_EVENT (seq 0, REPLY clear); name may be NULL. */
ssize_t ctl_fake_event(int fd, uint32_t kind, uint32_t domid, const char *name);
/* The reply to rq on f's connection: its op and seq echoed, the REPLY flag set. */
ssize_t ctl_fake_answer(struct ctl_fake *f, const struct ctl_fake_req *rq, int32_t status, const void *p,
			size_t len, const int *fds, unsigned nfds);

/* One datagram into rq; returns what recv returns (or -errno). rq->h and rq->len are set only
 * when the datagram holds a whole header. */
ssize_t ctl_fake_recv(int fd, struct ctl_fake_req *rq, int flags);

/* A server on a fresh listening socket at path (an old socket file is replaced): 0 or -errno. */
int ctl_fake_listen(struct ctl_fake *f, const char *path);
/* A server on one end of a socketpair; *client_fd is the other end. 0 or -errno. */
int ctl_fake_pair(struct ctl_fake *f, int *client_fd);
/* Takes the pending connection when there is none yet: 0 or -errno. */
int ctl_fake_accept(struct ctl_fake *f);
/* One request from the connection without blocking: 1 with rq filled, 0 for nothing (no datagram
 * or one shorter than a header), -ECONNRESET when the client went away (the connection is closed). */
int ctl_fake_take(struct ctl_fake *f, struct ctl_fake_req *rq);
/* Runs the table's handler for rq, or answers unknown_status with nothing. */
void ctl_fake_dispatch(struct ctl_fake *f, const struct ctl_fake_req *rq);
/* Accepts and serves requests for ms milliseconds (single-threaded tests). */
void ctl_fake_serve_for(struct ctl_fake *f, int ms);
/* Closes the connection and the listening socket (unlinking path when given). */
void ctl_fake_close(struct ctl_fake *f, const char *path);

#endif
