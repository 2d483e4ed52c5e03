/* The store's client of lamina-hv's control socket: one SOCK_SEQPACKET connection, requests answered
 * in order with descriptors as SCM_RIGHTS, notifications (seq 0) queued while a reply is awaited.
 * Everything received is hostile: lengths, magic, versions and descriptor counts are checked, and
 * every descriptor received is either kept by the caller or closed. A failed call marks the
 * connection broken; the loop then releases the hypervisor's domains and reconnects with backoff.
 * Also the guest-ring mapper: MAP_SPECIAL gives the page (a memfd), BIND_INTERDOMAIN the eventfds. */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#include "xs_hv.h"

#define XS_HV_MAX_FDS 4

struct xs_hv_port {
	uint32_t domid;
	uint32_t port; /* Domain-0's port */
	uint32_t conn_gen;
	int notify_fd;
};

static void xs_hv_arm(struct xs_hv *hv, unsigned ms)
{
	struct itimerspec its = {{0, 0}, {ms / 1000, (long)(ms % 1000) * 1000000 + 1}};

	timerfd_settime(hv->timer_fd, 0, &its, NULL);
}

static uint64_t xs_hv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void xs_hv_close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* One datagram: header checked, payload copied to buf (at most cap bytes), descriptors to fds.
 * Returns the payload length, -EAGAIN when nothing waits, or -errno (the connection is bad). */
static int xs_hv_recv(struct xs_hv *hv, struct lamina_ctl_hdr *h, void *buf, size_t cap, int *fds,
		      unsigned *nfds)
{
	char msg[sizeof(*h) + LAMINA_CTL_MAX_PAYLOAD];
	union {
		char b[CMSG_SPACE(XS_HV_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = {msg, sizeof(msg)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;
	ssize_t n;

	*nfds = 0;
	n = recvmsg(hv->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	if (n == 0)
		return -ECONNRESET;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (*nfds < XS_HV_MAX_FDS)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	memcpy(h, msg, (size_t)n < sizeof(*h) ? (size_t)n : sizeof(*h));
	if ((size_t)n < sizeof(*h) || h->magic != LAMINA_CTL_MAGIC || h->version != LAMINA_CTL_VERSION ||
	    h->len != (size_t)n - sizeof(*h) || h->len > cap || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		xs_hv_close_fds(fds, *nfds);
		*nfds = 0;
		return -EPROTO;
	}
	memcpy(buf, msg + sizeof(*h), h->len);
	return (int)h->len;
}

/* A notification goes to the queue; anything else unexpected is dropped. 1 if it was one. */
static int xs_hv_take_event(struct xs_hv *hv, const struct lamina_ctl_hdr *h, const void *buf)
{
	if (h->op != LAMINA_CTL_EVENT || (h->flags & LAMINA_CTL_F_REPLY))
		return 0;
	if (h->len != sizeof(struct lamina_ctl_event) || hv->evq_len == XS_HV_EVQ) {
		if (hv->ev_lost++ == 0)
			xs_log(hv->st, XS_LOG_ERR, "hypervisor: notification dropped (%s)",
			       hv->evq_len == XS_HV_EVQ ? "queue full" : "bad length");
		return 1;
	}
	memcpy(&hv->evq[(hv->evq_head + hv->evq_len) % XS_HV_EVQ], buf, sizeof(struct lamina_ctl_event));
	hv->evq_len++;
	return 1;
}

static void xs_hv_break(struct xs_hv *hv, const char *why, int err)
{
	if (hv->broken || hv->fd < 0)
		return;
	xs_log(hv->st, XS_LOG_ERR, "hypervisor connection lost: %s (%s)", why,
	       strerror(err < 0 ? -err : err));
	hv->broken = true;
	xs_hv_arm(hv, 0);
}

int xs_hv_call(struct xs_hv *hv, uint16_t op, const void *req, uint32_t req_len, void *rep, uint32_t rep_len,
	       int *fds, unsigned nfds)
{
	char out[sizeof(struct lamina_ctl_hdr) + 256];
	char in[LAMINA_CTL_MAX_PAYLOAD];
	struct lamina_ctl_hdr h = {.magic = LAMINA_CTL_MAGIC, .version = LAMINA_CTL_VERSION, .op = op}, rh;
	int got[XS_HV_MAX_FDS];
	unsigned ngot, i;
	uint64_t start;
	int n;

	for (i = 0; i < nfds; i++)
		fds[i] = -1;
	if (hv->fd < 0 || hv->broken)
		return -ENOTCONN;
	if (req_len > sizeof(out) - sizeof(h))
		return -E2BIG;
	if (++hv->seq == 0)
		hv->seq = 1; /* seq 0 is the notifications' */
	h.seq = hv->seq;
	h.len = req_len;
	memcpy(out, &h, sizeof(h));
	if (req_len)
		memcpy(out + sizeof(h), req, req_len);
	start = xs_hv_now_ms();
	if (send(hv->fd, out, sizeof(h) + req_len, MSG_NOSIGNAL) != (ssize_t)(sizeof(h) + req_len)) {
		xs_hv_break(hv, "send failed", errno);
		return -ENOTCONN;
	}
	for (;;) {
		struct pollfd p = {.fd = hv->fd, .events = POLLIN};
		n = xs_hv_recv(hv, &rh, in, sizeof(in), got, &ngot);
		if (n == -EAGAIN) {
			uint64_t spent = xs_hv_now_ms() - start;
			if (spent >= XS_HV_CALL_TIMEOUT_MS ||
			    poll(&p, 1, (int)(XS_HV_CALL_TIMEOUT_MS - spent)) == 0) {
				xs_hv_break(hv, "no reply in time", ETIMEDOUT);
				return -ETIMEDOUT;
			}
			continue;
		}
		if (n < 0) {
			xs_hv_break(hv, "receive failed", n);
			return -ENOTCONN;
		}
		if (xs_hv_take_event(hv, &rh, in) || !(rh.flags & LAMINA_CTL_F_REPLY) || rh.seq != h.seq) {
			xs_hv_close_fds(got, ngot); /* notifications carry none; stale replies lose theirs */
			continue;
		}
		break;
	}
	if (rh.op != op || rh.status > 0 || rh.status < -4095) {
		xs_hv_close_fds(got, ngot);
		xs_hv_break(hv, "reply does not match its request", EPROTO);
		return -EPROTO;
	}
	if (rh.status < 0) {
		xs_hv_close_fds(got, ngot);
		return rh.status;
	}
	if (rh.len != rep_len || ngot != nfds) {
		xs_hv_close_fds(got, ngot);
		xs_hv_break(hv, "reply of the wrong size", EPROTO);
		return -EPROTO;
	}
	if (rep_len)
		memcpy(rep, in, rep_len);
	for (i = 0; i < nfds; i++)
		fds[i] = got[i];
	return 0;
}

/* Reads every datagram waiting, queueing notifications; then hands the queue to the lifecycle,
 * which may call (and so queue more) as it goes. */
static void xs_hv_readable(void *arg)
{
	struct xs_hv *hv = arg;
	char in[LAMINA_CTL_MAX_PAYLOAD];
	struct lamina_ctl_hdr rh;
	int got[XS_HV_MAX_FDS];
	unsigned ngot;
	int n;

	while (hv->fd >= 0 && !hv->broken) {
		n = xs_hv_recv(hv, &rh, in, sizeof(in), got, &ngot);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			xs_hv_break(hv, n == -ECONNRESET ? "the hypervisor closed it" : "receive failed", n);
			break;
		}
		xs_hv_close_fds(got, ngot);
		if (!xs_hv_take_event(hv, &rh, in))
			xs_log(hv->st, XS_LOG_DEBUG, "hypervisor: unexpected message op %u dropped", rh.op);
	}
	while (hv->evq_len && !hv->broken) {
		struct lamina_ctl_event ev = hv->evq[hv->evq_head];
		hv->evq_head = (hv->evq_head + 1) % XS_HV_EVQ;
		hv->evq_len--;
		xs_hv_dom_event(hv, &ev);
	}
}

static void xs_hv_disconnect(struct xs_hv *hv)
{
	if (hv->fd >= 0) {
		hv->loop.del(hv->loop.lctx, hv->fd);
		close(hv->fd);
		hv->fd = -1;
	}
	hv->broken = false;
	hv->evq_len = hv->evq_head = 0;
	/* The hypervisor closes a connection's ports with it; its domains are gone or will be
	 * announced again on the next connection. */
	xs_hv_dom_release_all(hv);
	xs_hv_ports_forget(hv);
}

static int xs_hv_connect(struct xs_hv *hv)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int rc;

	memcpy(a.sun_path, hv->path, sizeof(hv->path));
	hv->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (hv->fd < 0)
		return -errno;
	if (connect(hv->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		rc = -errno;
		goto fail;
	}
	hv->conn_gen++;
	hv->evq_len = hv->evq_head = 0;
	rc = hv->loop.add(hv->loop.lctx, hv->fd, xs_hv_readable, hv);
	if (rc < 0)
		goto fail;
	/* The reply comes first, then one CREATED per live domain: handled as they are read. */
	rc = xs_hv_call(hv, LAMINA_CTL_SUBSCRIBE, NULL, 0, NULL, 0, NULL, 0);
	if (rc < 0) {
		hv->loop.del(hv->loop.lctx, hv->fd);
		goto fail;
	}
	xs_log(hv->st, XS_LOG_INFO, "connected to the hypervisor at %s", hv->path);
	hv->said_down = false;
	hv->backoff_ms = XS_HV_BACKOFF_MIN_MS;
	xs_hv_readable(hv);
	return 0;
fail:
	close(hv->fd);
	hv->fd = -1;
	hv->broken = false;
	return rc;
}

static void xs_hv_timer(void *arg)
{
	struct xs_hv *hv = arg;
	uint64_t ticks;
	int rc;

	if (read(hv->timer_fd, &ticks, sizeof(ticks)) < 0) {
		/* spurious: nothing expired */
	}
	if (hv->broken)
		xs_hv_disconnect(hv);
	if (hv->fd >= 0)
		return;
	rc = xs_hv_connect(hv);
	if (rc == 0)
		return;
	if (!hv->said_down) {
		xs_log(hv->st, XS_LOG_INFO,
		       "hypervisor not reachable at %s (%s): serving the socket only, retrying", hv->path,
		       strerror(-rc));
		hv->said_down = true;
	}
	xs_hv_arm(hv, hv->backoff_ms);
	hv->backoff_ms =
	    hv->backoff_ms * 2 > XS_HV_BACKOFF_MAX_MS ? XS_HV_BACKOFF_MAX_MS : hv->backoff_ms * 2;
}

int xs_hv_new(struct xs_store *st, const char *sock_path, const struct xs_hv_loop *loop, struct xs_hv **out)
{
	struct xs_hv *hv;
	int rc;

	if (strlen(sock_path) >= sizeof(hv->path))
		return -ENAMETOOLONG;
	hv = calloc(1, sizeof(*hv));
	if (!hv)
		return -ENOMEM;
	hv->st = st;
	hv->loop = *loop;
	hv->fd = -1;
	hv->backoff_ms = XS_HV_BACKOFF_MIN_MS;
	strcpy(hv->path, sock_path);
	hv->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (hv->timer_fd < 0) {
		rc = -errno;
		free(hv);
		return rc;
	}
	rc = loop->add(loop->lctx, hv->timer_fd, xs_hv_timer, hv);
	if (rc < 0 || (rc = xs_hv_dom0_tree(st)) < 0) {
		close(hv->timer_fd);
		free(hv);
		return rc;
	}
	xs_hv_arm(hv, 0);
	*out = hv;
	return 0;
}

/* After the loop and every ring are gone (their release still calls the mapper). */
void xs_hv_free(struct xs_hv *hv)
{
	if (!hv)
		return;
	if (hv->fd >= 0)
		close(hv->fd);
	close(hv->timer_fd);
	xs_hv_dom_free_all(hv);
	for (size_t i = 0; i < hv->nports; i++) {
		if (hv->ports[i]) {
			close(hv->ports[i]->notify_fd);
			free(hv->ports[i]);
		}
	}
	free(hv->ports);
	free(hv);
}

/* The mapper. Only a domain's store page can be mapped: an INTRODUCE naming another frame is
 * refused (EINVAL), since Domain-0 reaches no other guest memory this way. */
static void *xs_hv_map_ring(void *ctx, uint32_t domid, uint64_t gfn)
{
	struct lamina_ctl_map_special req = {.domid = domid, .which = LAMINA_SPECIAL_XENSTORE};
	struct lamina_ctl_mapping m;
	struct stat sb;
	void *p = NULL;
	int fd, rc;

	rc = xs_hv_call(ctx, LAMINA_CTL_MAP_SPECIAL, &req, sizeof(req), &m, sizeof(m), &fd, 1);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	rc = EINVAL;
	if (m.gfn != gfn || m.size < 4096 || (m.offset & 4095) || m.offset > (1ull << 30))
		goto out;
	if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size < m.offset + 4096)
		goto out;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)m.offset);
	if (p == MAP_FAILED) {
		rc = errno;
		p = NULL;
	}
out:
	close(fd);
	if (!p)
		errno = rc;
	return p;
}

static void xs_hv_unmap_ring(void *ctx, uint32_t domid, void *page)
{
	munmap(page, 4096);
}

static int xs_hv_port_slot(struct xs_hv *hv, int fd)
{
	if (fd < 0 || fd >= 1 << 20)
		return -EBADF;
	if ((size_t)fd >= hv->nports) {
		size_t n = (size_t)fd + 64;
		struct xs_hv_port **a = realloc(hv->ports, n * sizeof(*a));
		if (!a)
			return -ENOMEM;
		memset(a + hv->nports, 0, (n - hv->nports) * sizeof(*a));
		hv->ports = a;
		hv->nports = n;
	}
	return 0;
}

static int xs_hv_bind(void *ctx, uint32_t domid, uint32_t port)
{
	struct lamina_ctl_evtchn_bind req = {.remote_dom = domid, .remote_port = port};
	struct lamina_ctl_evtchn_port rep;
	struct xs_hv *hv = ctx;
	struct xs_hv_port *p;
	int fds[2], rc;

	rc = xs_hv_call(hv, LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN, &req, sizeof(req), &rep, sizeof(rep), fds, 2);
	if (rc < 0)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p || (rc = xs_hv_port_slot(hv, fds[1])) < 0) {
		free(p);
		xs_hv_call(hv, LAMINA_CTL_EVTCHN_CLOSE, &rep, sizeof(rep), NULL, 0, NULL, 0);
		xs_hv_close_fds(fds, 2);
		return rc < 0 ? rc : -ENOMEM;
	}
	p->domid = domid;
	p->port = rep.port;
	p->conn_gen = hv->conn_gen;
	p->notify_fd = fds[0];
	hv->ports[fds[1]] = p;
	return fds[1];
}

static void xs_hv_unbind(void *ctx, uint32_t domid, int fd)
{
	struct xs_hv *hv = ctx;
	struct xs_hv_port *p = fd >= 0 && (size_t)fd < hv->nports ? hv->ports[fd] : NULL;

	if (p) {
		struct lamina_ctl_evtchn_port req = {.port = p->port};
		/* A port of an earlier connection is gone already, and its number may be reused. */
		if (p->conn_gen == hv->conn_gen && hv->fd >= 0)
			xs_hv_call(hv, LAMINA_CTL_EVTCHN_CLOSE, &req, sizeof(req), NULL, 0, NULL, 0);
		close(p->notify_fd);
		free(p);
		hv->ports[fd] = NULL;
	}
	close(fd);
}

static int xs_hv_notify(void *ctx, int fd)
{
	struct xs_hv *hv = ctx;
	struct xs_hv_port *p = fd >= 0 && (size_t)fd < hv->nports ? hv->ports[fd] : NULL;
	uint64_t one = 1;

	if (!p)
		return -EBADF;
	if (write(p->notify_fd, &one, sizeof(one)) != sizeof(one) && errno != EAGAIN)
		return -errno;
	return 0;
}

/* The connection is gone, and the ports bound through it with it: rings still holding one
 * (domains introduced explicitly) keep their descriptors, but their port numbers mean nothing. */
void xs_hv_ports_forget(struct xs_hv *hv)
{
	for (size_t i = 0; i < hv->nports; i++)
		if (hv->ports[i])
			hv->ports[i]->conn_gen = 0;
}

const struct xs_ring_ops xs_hv_ring_ops = {
    .map_ring = xs_hv_map_ring,
    .unmap_ring = xs_hv_unmap_ring,
    .bind_evtchn = xs_hv_bind,
    .unbind_evtchn = xs_hv_unbind,
    .notify = xs_hv_notify,
};
