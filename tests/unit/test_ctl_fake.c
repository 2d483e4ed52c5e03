/* The fake control socket of test_ctl_fake.h: framing, descriptors, the accept/serve loop and
 * dispatch; what each request means is the test's handlers' business. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "test_ctl_fake.h"

/* Header and payload go out as one datagram from two pieces, so no payload size limit here. */
static ssize_t ctl_fake_sendv(int fd, struct iovec *iov, size_t niov, const int *fds, unsigned nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * CTL_FAKE_MAX_FDS)];
		struct cmsghdr align;
	} ctrl;
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = niov};
	ssize_t n;

	if (nfds > CTL_FAKE_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctrl, 0, sizeof(ctrl));
		msg.msg_control = ctrl.b;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	return n < 0 ? -errno : n;
}

ssize_t ctl_fake_send_raw(int fd, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	struct iovec iov = {(void *)buf, len};

	return ctl_fake_sendv(fd, &iov, 1, fds, nfds);
}

ssize_t ctl_fake_send(int fd, uint16_t op, uint32_t seq, int32_t status, uint32_t flags, const void *p,
		      size_t len, const int *fds, unsigned nfds)
{
	struct lamina_ctl_hdr h = {.magic = LAMINA_CTL_MAGIC,
				   .version = LAMINA_CTL_VERSION,
				   .op = op,
				   .seq = seq,
				   .status = status,
				   .len = (uint32_t)len,
				   .flags = flags};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)p, len}};

	return ctl_fake_sendv(fd, iov, len ? 2 : 1, fds, nfds);
}

ssize_t ctl_fake_event(int fd, uint32_t kind, uint32_t domid, const char *name)
{
	struct lamina_ctl_event ev = {.kind = kind, .domid = domid};

	if (name)
		snprintf(ev.name, sizeof(ev.name), "%s", name);
	return ctl_fake_send(fd, LAMINA_CTL_EVENT, 0, 0, 0, &ev, sizeof(ev), NULL, 0);
}

ssize_t ctl_fake_answer(struct ctl_fake *f, const struct ctl_fake_req *rq, int32_t status, const void *p,
			size_t len, const int *fds, unsigned nfds)
{
	return ctl_fake_send(f->conn, rq->h.op, rq->h.seq, status, LAMINA_CTL_F_REPLY, p, len, fds, nfds);
}

ssize_t ctl_fake_recv(int fd, struct ctl_fake_req *rq, int flags)
{
	struct iovec iov[2] = {{&rq->h, sizeof(rq->h)}, {rq->payload, sizeof(rq->payload)}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	ssize_t n = recvmsg(fd, &msg, flags);

	if (n < 0)
		return -errno;
	if ((size_t)n >= sizeof(rq->h))
		rq->len = (size_t)n - sizeof(rq->h);
	return n;
}

int ctl_fake_listen(struct ctl_fake *f, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	f->conn = -1;
	f->lfd = -1;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	unlink(path);
	f->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (f->lfd < 0)
		return -errno;
	if (bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(f->lfd, 8) < 0) {
		int err = -errno;

		close(f->lfd);
		f->lfd = -1;
		return err;
	}
	return 0;
}

int ctl_fake_pair(struct ctl_fake *f, int *client_fd)
{
	int sv[2];

	f->lfd = -1;
	f->conn = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	*client_fd = sv[0];
	f->conn = sv[1];
	return 0;
}

int ctl_fake_accept(struct ctl_fake *f)
{
	if (f->conn >= 0)
		return 0;
	f->conn = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
	return f->conn < 0 ? -errno : 0;
}

int ctl_fake_take(struct ctl_fake *f, struct ctl_fake_req *rq)
{
	ssize_t n = ctl_fake_recv(f->conn, rq, MSG_DONTWAIT);

	if (n == -EAGAIN || n == -EINTR)
		return 0;
	if (n <= 0) {
		close(f->conn);
		f->conn = -1;
		return -ECONNRESET;
	}
	return (size_t)n >= sizeof(rq->h);
}

void ctl_fake_dispatch(struct ctl_fake *f, const struct ctl_fake_req *rq)
{
	for (size_t i = 0; i < f->nops; i++)
		if (f->ops[i].op == rq->h.op) {
			f->ops[i].fn(f, rq);
			return;
		}
	ctl_fake_answer(f, rq, f->unknown_status, NULL, 0, NULL, 0);
}

static long ctl_fake_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

void ctl_fake_serve_for(struct ctl_fake *f, int ms)
{
	struct ctl_fake_req rq;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = {.fd = f->conn >= 0 ? f->conn : f->lfd, .events = POLLIN};
		long left = ms - ctl_fake_ms_since(&t0);

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return;
		if (f->conn < 0) {
			ctl_fake_accept(f);
			continue;
		}
		if (ctl_fake_take(f, &rq) > 0)
			ctl_fake_dispatch(f, &rq);
	}
}

void ctl_fake_close(struct ctl_fake *f, const char *path)
{
	if (f->conn >= 0)
		close(f->conn);
	if (f->lfd >= 0)
		close(f->lfd);
	f->conn = f->lfd = -1;
	if (path)
		unlink(path);
}
