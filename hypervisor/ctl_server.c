/* The control socket's transport: a non-blocking epoll loop over hv.sock, the event queue from
 * vCPU threads and the termination signals; each datagram's header is checked field by field
 * before the op table is consulted. A bad request gets an error reply, never a crash. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_server.h"
#include "hv.h"

#define CTL_TAG_LISTEN ((void *)1)
#define CTL_TAG_SIGNAL ((void *)2)
#define CTL_TAG_EVQ ((void *)3)

int ctl_listen(const char *rundir, int *fd_out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, rc;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", rundir, LAMINA_CTL_SOCKET) >=
	    sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(sa.sun_path, 0600) < 0 ||
	    listen(fd, 256) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

static int ctl_epoll_add(struct ctl_server *s, int fd, void *tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};

	return epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int ctl_server_init(struct ctl_server *s, struct hv *hv, int listen_fd, int signal_fd)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->hv = hv;
	s->listen_fd = listen_fd;
	s->signal_fd = signal_fd;
	s->uid = geteuid();
	s->rx = malloc(CTL_MAX_MSG + 1);
	s->tx = malloc(CTL_MAX_MSG);
	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (!s->rx || !s->tx || s->epoll_fd < 0) {
		rc = s->epoll_fd < 0 ? -errno : -ENOMEM;
		goto out_free;
	}
	if ((listen_fd >= 0 && (rc = ctl_epoll_add(s, listen_fd, CTL_TAG_LISTEN)) < 0) ||
	    (signal_fd >= 0 && (rc = ctl_epoll_add(s, signal_fd, CTL_TAG_SIGNAL)) < 0) ||
	    (rc = ctl_epoll_add(s, hv->evq_fd, CTL_TAG_EVQ)) < 0)
		goto out_free;
	hv->on_stop = ctl_on_domain_stop;
	hv->on_stop_arg = s;
	hv->on_event = ctl_on_domain_event;
	hv->on_event_arg = s;
	return 0;

out_free:
	if (s->epoll_fd >= 0)
		close(s->epoll_fd);
	free(s->rx);
	free(s->tx);
	return rc;
}

static void ctl_conn_close(struct ctl_server *s, struct ctl_conn *c)
{
	struct ctl_conn **pp;

	ctl_waiters_drop_conn(s, c);
	ctl_events_conn_closed(s, c); /* its Domain-0 ports close */
	for (pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	s->nr_conns--;
	free(c);
}

void ctl_server_fini(struct ctl_server *s)
{
	while (s->conns)
		ctl_conn_close(s, s->conns);
	if (s->hv->on_stop_arg == s)
		s->hv->on_stop = NULL;
	if (s->hv->on_event_arg == s)
		s->hv->on_event = NULL;
	close(s->epoll_fd);
	free(s->rx);
	free(s->tx);
}

int ctl_conn_add(struct ctl_server *s, int fd, uid_t uid)
{
	struct ctl_conn *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->fd = fd;
	c->uid = uid;
	rc = ctl_epoll_add(s, fd, c);
	if (rc < 0) {
		free(c);
		return rc;
	}
	c->next = s->conns;
	s->conns = c;
	s->nr_conns++;
	return 0;
}

static void ctl_accept(struct ctl_server *s)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd;

	for (;;) {
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    (cred.uid != 0 && cred.uid != s->uid)) {
			hv_log(&s->hv->log, "control: refused a client with uid %d", (int)cred.uid);
			close(fd);
			continue;
		}
		if (ctl_conn_add(s, fd, cred.uid) < 0)
			close(fd);
	}
}

int ctl_reply(struct ctl_server *s, struct ctl_conn *c, uint16_t op, uint32_t seq, int status, const void *p,
	      size_t len)
{
	struct lamina_ctl_hdr h = {
	    .magic = LAMINA_CTL_MAGIC,
	    .version = LAMINA_CTL_VERSION,
	    .op = op,
	    .seq = seq,
	    .status = status,
	    .len = (uint32_t)len,
	    .flags = LAMINA_CTL_F_REPLY,
	};
	uint8_t buf[sizeof(h) + 512];
	uint8_t *out = len <= 512 ? buf : s->tx;
	ssize_t n;

	if (len > LAMINA_CTL_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (out == s->tx && p != s->tx + sizeof(h))
		memmove(s->tx + sizeof(h), p, len);
	else if (len)
		memcpy(out + sizeof(h), p, len);
	memcpy(out, &h, sizeof(h));
	n = send(c->fd, out, sizeof(h) + len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n != (ssize_t)(sizeof(h) + len))
		return n < 0 ? -errno : -EIO; /* a client that does not read its replies is dropped */
	return 0;
}

int ctl_reply_fds(struct ctl_conn *c, const struct lamina_ctl_hdr *req, const void *p, size_t len,
		  const int *fds, unsigned nfds)
{
	struct lamina_ctl_hdr h = {
	    .magic = LAMINA_CTL_MAGIC,
	    .version = LAMINA_CTL_VERSION,
	    .op = req->op,
	    .seq = req->seq,
	    .len = (uint32_t)len,
	    .flags = LAMINA_CTL_F_REPLY,
	};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} u;
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)p, len}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	struct cmsghdr *cm;
	ssize_t n;

	if (nfds > 4)
		return -EINVAL;
	if (nfds) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n != (ssize_t)(sizeof(h) + len) && c->fd >= 0)
		c->fd = -c->fd - 1; /* closed after this round, as for any reply that cannot go out */
	return CTL_DEFERRED;
}

void ctl_handle_msg(struct ctl_server *s, struct ctl_conn *c, size_t n)
{
	const struct ctl_op_desc *od;
	struct lamina_ctl_hdr h;
	uint8_t *out = s->tx + sizeof(h);
	size_t out_len = 0;
	int rc;

	if (n < sizeof(h)) {
		ctl_reply(s, c, 0, 0, -EBADMSG, NULL, 0);
		return;
	}
	memcpy(&h, s->rx, sizeof(h));
	if (h.magic != LAMINA_CTL_MAGIC)
		rc = -EPROTO;
	else if (h.version != LAMINA_CTL_VERSION)
		rc = -EPROTONOSUPPORT;
	else if (n > CTL_MAX_MSG)
		rc = -EMSGSIZE;
	else if (h.len != n - sizeof(h))
		rc = -EBADMSG;
	else if (h.flags != 0 || h.status != 0)
		rc = -EINVAL;
	else if (!(od = ctl_op_find(h.op)))
		rc = -EOPNOTSUPP;
	else if (h.len != od->req_len)
		rc = -EINVAL;
	else
		rc = od->fn(s, c, &h, s->rx + sizeof(h), out, &out_len);
	if (rc == CTL_DEFERRED)
		return;
	if (rc < 0)
		out_len = 0;
	if (ctl_reply(s, c, h.op, h.seq, rc, out, out_len) < 0)
		c->fd = -c->fd - 1; /* mark: closed after this round */
}

int ctl_take_fd(struct ctl_server *s)
{
	int fd;

	if (s->rx_nfds == 0)
		return -EBADF;
	fd = s->rx_fds[0];
	memmove(s->rx_fds, s->rx_fds + 1, --s->rx_nfds * sizeof(int));
	return fd;
}

static void ctl_rx_fds_close(struct ctl_server *s)
{
	while (s->rx_nfds)
		close(s->rx_fds[--s->rx_nfds]);
}

/* Keeps up to CTL_MAX_RX_FDS descriptors of a received message in s->rx_fds; closes the rest. */
static void ctl_rx_fds_collect(struct ctl_server *s, struct msghdr *mh)
{
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t i, n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len < CMSG_LEN(0))
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (s->rx_nfds < CTL_MAX_RX_FDS)
				s->rx_fds[s->rx_nfds++] = fd;
			else
				close(fd);
		}
	}
}

static void ctl_conn_readable(struct ctl_server *s, struct ctl_conn *c)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(CTL_MAX_RX_FDS * sizeof(int))];
	} u;
	struct iovec iov = {s->rx, CTL_MAX_MSG + 1};
	struct msghdr mh;
	ssize_t n;
	int i;

	for (i = 0; i < 16 && c->fd >= 0; i++) {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0) { /* msg_control was not filled in: nothing to collect */
			c->fd = -c->fd - 1;
			return;
		}
		ctl_rx_fds_collect(s, &mh);
		if (n == 0) {
			ctl_rx_fds_close(s);
			c->fd = -c->fd - 1;
			return;
		}
		ctl_handle_msg(s, c, (size_t)n);
		ctl_rx_fds_close(s); /* whatever the handler did not take */
	}
}

static void ctl_signal(struct ctl_server *s)
{
	struct signalfd_siginfo si;

	while (read(s->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		hv_log(&s->hv->log, "signal %u: destroying every domain and exiting", si.ssi_signo);
		s->quit = true;
	}
}

int ctl_server_poll(struct ctl_server *s, int timeout_ms)
{
	struct epoll_event ev[64];
	uint64_t now = domain_mono_ns();
	int n, i, wt;

	wt = ctl_waiters_timeout_ms(s, now);
	if (wt >= 0 && (timeout_ms < 0 || wt < timeout_ms))
		timeout_ms = wt;
	n = epoll_wait(s->epoll_fd, ev, 64, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < n; i++) {
		void *tag = ev[i].data.ptr;
		if (tag == CTL_TAG_LISTEN)
			ctl_accept(s);
		else if (tag == CTL_TAG_SIGNAL)
			ctl_signal(s);
		else if (tag == CTL_TAG_EVQ)
			hv_evq_run(s->hv);
		else
			ctl_conn_readable(s, tag);
	}
	/* Connections marked closed during the round go now, after no event can name them. */
	for (struct ctl_conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->fd < 0) {
			c->fd = -c->fd - 1;
			ctl_conn_close(s, c);
		}
	}
	ctl_waiters_expire(s, domain_mono_ns());
	return 0;
}

int ctl_server_run(struct ctl_server *s)
{
	int rc = 0;

	while (!s->quit && rc == 0)
		rc = ctl_server_poll(s, -1);
	return rc;
}
