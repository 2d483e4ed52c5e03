/* Control-protocol framing: one datagram per message, header checked field by field, replies
 * bounded before anything is copied out; received descriptors never leak on an error path. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_client.h"

#define CTL_DEFAULT_TIMEOUT_MS 30000

static int ctl_fail(struct ctl_conn *conn, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ctl_fail(struct ctl_conn *conn, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(conn->err, sizeof(conn->err), fmt, ap);
	va_end(ap);
	return err;
}

const char *ctl_rundir(const char *rundir)
{
	const char *env;

	if (rundir && *rundir)
		return rundir;
	env = getenv("LAMINA_RUNDIR");
	if (env && *env)
		return env;
	return CTL_DEFAULT_RUNDIR;
}

void ctl_attach(struct ctl_conn *conn, int fd)
{
	memset(conn, 0, sizeof(*conn));
	conn->fd = fd;
	conn->timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
}

int ctl_connect(struct ctl_conn *conn, const char *rundir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *dir = ctl_rundir(rundir);
	int fd, n, err;

	ctl_attach(conn, -1);
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, LAMINA_CTL_SOCKET);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return ctl_fail(conn, -ENAMETOOLONG, "%s/%s: socket path too long", dir, LAMINA_CTL_SOCKET);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ctl_fail(conn, -errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return ctl_fail(conn, err,
				"cannot connect to %s: %s (is the host started? try 'domctl host start')",
				sa.sun_path, strerror(-err));
	}
	conn->fd = fd;
	return 0;
}

void ctl_close(struct ctl_conn *conn)
{
	if (conn->fd >= 0)
		close(conn->fd);
	conn->fd = -1;
	ctl_event_queue_free(conn);
}

int ctl_send(struct ctl_conn *conn, uint16_t op, const void *req, size_t req_len, uint32_t *seq)
{
	struct lamina_ctl_hdr hdr = {
	    .magic = LAMINA_CTL_MAGIC,
	    .version = LAMINA_CTL_VERSION,
	    .op = op,
	    .seq = ++conn->seq,
	    .len = (uint32_t)req_len,
	};
	struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {(void *)req, req_len}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = req_len ? 2 : 1};
	ssize_t n;

	if (conn->fd < 0)
		return ctl_fail(conn, -ENOTCONN, "%s: not connected", ctl_op_name(op));
	if (req_len > LAMINA_CTL_MAX_PAYLOAD)
		return ctl_fail(conn, -EMSGSIZE, "%s: request of %zu bytes is too large", ctl_op_name(op),
				req_len);
	*seq = hdr.seq;
	do
		n = sendmsg(conn->fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return ctl_fail(conn, -errno, "%s: send: %s", ctl_op_name(op), strerror(errno));
	if ((size_t)n != sizeof(hdr) + req_len)
		return ctl_fail(conn, -EIO, "%s: short send", ctl_op_name(op));
	return 0;
}

static void ctl_close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Collect the SCM_RIGHTS descriptors of one message; all of them are taken, even beyond max. */
static int ctl_take_fds(struct msghdr *msg, int *fds, unsigned max, unsigned *nfds)
{
	struct cmsghdr *c;
	int too_many = 0;

	*nfds = 0;
	for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;
		int *p;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		p = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, p + i, sizeof(fd));
			if (*nfds < max)
				fds[(*nfds)++] = fd;
			else if (fd >= 0) {
				close(fd);
				too_many = 1;
			}
		}
	}
	return too_many ? -E2BIG : 0;
}

static int ctl_wait_readable(struct ctl_conn *conn, uint16_t op)
{
	struct pollfd pfd = {.fd = conn->fd, .events = POLLIN};
	int r;

	do
		r = poll(&pfd, 1, conn->timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return ctl_fail(conn, -errno, "%s: poll: %s", ctl_op_name(op), strerror(errno));
	if (r == 0)
		return ctl_fail(conn, -ETIMEDOUT, "%s: no reply from lamina-hv within %d ms", ctl_op_name(op),
				conn->timeout_ms);
	return 0;
}

static int ctl_len_ok(const struct ctl_len_rule *rule, size_t len)
{
	if (!rule)
		return len == 0;
	if (len < rule->min)
		return 0;
	if (rule->unit == 0)
		return len == rule->min;
	return (len - rule->min) % rule->unit == 0;
}

static int ctl_check_hdr(struct ctl_conn *conn, uint16_t op, uint32_t seq, const struct lamina_ctl_hdr *hdr,
			 size_t payload)
{
	const char *name = ctl_op_name(op);

	if (hdr->magic != LAMINA_CTL_MAGIC)
		return ctl_fail(conn, -EPROTO, "%s: reply has bad magic 0x%08x", name, hdr->magic);
	if (hdr->version != LAMINA_CTL_VERSION)
		return ctl_fail(conn, -EPROTO, "%s: reply speaks protocol version %u, not %u", name,
				hdr->version, LAMINA_CTL_VERSION);
	if (!(hdr->flags & LAMINA_CTL_F_REPLY))
		return ctl_fail(conn, -EPROTO, "%s: message is not a reply", name);
	if (hdr->op != op)
		return ctl_fail(conn, -EPROTO, "%s: reply is for op %u", name, hdr->op);
	if (hdr->seq != seq)
		return ctl_fail(conn, -EPROTO, "%s: reply has seq %u, expected %u", name, hdr->seq, seq);
	if (hdr->len != payload)
		return ctl_fail(conn, -EPROTO, "%s: reply header says %u payload bytes, datagram has %zu",
				name, hdr->len, payload);
	if (hdr->status > 0 || hdr->status < -4095)
		return ctl_fail(conn, -EPROTO, "%s: reply status %d is not 0 or -errno", name, hdr->status);
	return 0;
}

int ctl_call(struct ctl_conn *conn, uint16_t op, const void *req, size_t req_len, struct ctl_reply *rep,
	     const struct ctl_len_rule *rule)
{
	uint32_t seq;
	int err;

	if (rep) {
		rep->len = 0;
		rep->nfds = 0;
	}
	err = ctl_send(conn, op, req, req_len, &seq);
	return err ? err : ctl_recv(conn, op, seq, rep, rule);
}

/* Receive one datagram into buf (bufsz bytes) with its descriptors. 0 or -errno. */
static int ctl_recv_one(struct ctl_conn *conn, uint16_t op, char *buf, size_t bufsz, size_t *len, int *fds,
			unsigned *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = {buf, bufsz};
	struct msghdr msg = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf, .msg_controllen = sizeof(ctrl.buf)};
	ssize_t n;
	int err;

	*nfds = 0;
	do
		n = recvmsg(conn->fd, &msg, MSG_CMSG_CLOEXEC | MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return ctl_fail(conn, -errno, "%s: receive: %s", ctl_op_name(op), strerror(errno));
	if (ctl_take_fds(&msg, fds, CTL_MAX_FDS, nfds) < 0) {
		err = ctl_fail(conn, -EPROTO, "%s: reply carries more than %d descriptors", ctl_op_name(op),
			       CTL_MAX_FDS);
		goto out_fds;
	}
	if (msg.msg_flags & MSG_CTRUNC) {
		err = ctl_fail(conn, -EPROTO, "%s: reply's descriptors were truncated", ctl_op_name(op));
		goto out_fds;
	}
	if (n == 0) {
		err = ctl_fail(conn, -ECONNRESET, "%s: lamina-hv closed the connection", ctl_op_name(op));
		goto out_fds;
	}
	if ((size_t)n > bufsz || (msg.msg_flags & MSG_TRUNC)) {
		err = ctl_fail(conn, -EMSGSIZE, "%s: reply of %zd bytes exceeds the protocol maximum",
			       ctl_op_name(op), n);
		goto out_fds;
	}
	*len = (size_t)n;
	return 0;

out_fds:
	ctl_close_fds(fds, *nfds);
	*nfds = 0;
	return err;
}

int ctl_recv(struct ctl_conn *conn, uint16_t op, uint32_t seq, struct ctl_reply *rep,
	     const struct ctl_len_rule *rule)
{
	const size_t bufsz = sizeof(struct lamina_ctl_hdr) + LAMINA_CTL_MAX_PAYLOAD;
	struct lamina_ctl_hdr hdr;
	int fds[CTL_MAX_FDS];
	unsigned nfds = 0;
	size_t payload, n = 0;
	char *buf;
	int err;

	if (conn->fd < 0)
		return ctl_fail(conn, -ENOTCONN, "%s: not connected", ctl_op_name(op));
	if (rep) {
		rep->len = 0;
		rep->nfds = 0;
	}
	buf = malloc(bufsz);
	if (!buf)
		return ctl_fail(conn, -ENOMEM, "%s: out of memory", ctl_op_name(op));
	/* Notifications of a subscribed connection may come first: they are queued, not replies. */
	for (;;) {
		err = ctl_wait_readable(conn, op);
		if (err)
			goto out_free;
		err = ctl_recv_one(conn, op, buf, bufsz, &n, fds, &nfds);
		if (err)
			goto out_free;
		if (!ctl_event_take(conn, buf, n))
			break;
		ctl_close_fds(fds, nfds);
		nfds = 0;
	}
	if (n < sizeof(hdr)) {
		err = ctl_fail(conn, -EPROTO, "%s: short reply (%zu bytes)", ctl_op_name(op), n);
		goto out_fds;
	}
	memcpy(&hdr, buf, sizeof(hdr));
	payload = n - sizeof(hdr);
	err = ctl_check_hdr(conn, op, seq, &hdr, payload);
	if (err)
		goto out_fds;
	if (hdr.status < 0) {
		err = ctl_fail(conn, hdr.status, "%s: %s", ctl_op_name(op), strerror(-hdr.status));
		goto out_fds;
	}
	if (!ctl_len_ok(rule, payload)) {
		err = ctl_fail(conn, -EPROTO, "%s: reply payload of %zu bytes has the wrong size",
			       ctl_op_name(op), payload);
		goto out_fds;
	}
	if (payload) {
		if (!rep || payload > rep->cap) {
			err = ctl_fail(conn, -EMSGSIZE, "%s: reply payload of %zu bytes does not fit",
				       ctl_op_name(op), payload);
			goto out_fds;
		}
		memcpy(rep->buf, buf + sizeof(hdr), payload);
	}
	if (rep) {
		rep->len = payload;
		memcpy(rep->fds, fds, nfds * sizeof(int));
		rep->nfds = nfds;
	} else if (nfds) {
		ctl_close_fds(fds, nfds);
	}
	free(buf);
	return 0;

out_fds:
	ctl_close_fds(fds, nfds);
out_free:
	free(buf);
	return err;
}

int ctl_domref_parse(struct lamina_ctl_domref *ref, const char *s)
{
	size_t len = strlen(s);
	char *end;
	unsigned long v;

	memset(ref, 0, sizeof(*ref));
	if (len == 0 || len >= sizeof(ref->name))
		return -EINVAL;
	/* All digits is an id; a name may start with a digit but is never all digits. */
	if (strspn(s, "0123456789") == len) {
		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno || *end || v >= LAMINA_DOMID_BY_NAME)
			return -EINVAL;
		ref->domid = (uint32_t)v;
		return 0;
	}
	ref->domid = LAMINA_DOMID_BY_NAME;
	memcpy(ref->name, s, len + 1);
	return 0;
}
