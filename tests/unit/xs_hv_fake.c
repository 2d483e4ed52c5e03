/* The fake hypervisor control socket of xs_hv_fake.h: one thread, one connection at a time,
 * replies built from the domain table, every request counted. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "xs_hv_fake.h"

static int fhv_send(int fd, uint16_t op, uint32_t seq, int32_t status, uint32_t flags, const void *p,
		    uint32_t len, const int *fds, unsigned nfds)
{
	struct lamina_ctl_hdr h = {LAMINA_CTL_MAGIC, LAMINA_CTL_VERSION, op, seq, status, len, flags};
	char buf[sizeof(h) + 256];
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr a;
	} cb;
	struct iovec iov = {buf, sizeof(h) + len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), p, len);
	if (nfds) {
		struct cmsghdr *cm;
		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.b;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static struct fhv_dom *fhv_find(struct fhv *h, uint32_t domid)
{
	for (int i = 0; i < FHV_DOMS; i++)
		if (h->dom[i].live && h->dom[i].domid == domid)
			return &h->dom[i];
	return NULL;
}

static void fhv_unbind(struct fhv_dom *d)
{
	if (!d->bound)
		return;
	close(d->notify_fd);
	close(d->event_fd);
	d->notify_fd = d->event_fd = -1;
	d->bound = false;
}

/* One request, lock held. */
static void fhv_request(struct fhv *h, const struct lamina_ctl_hdr *q, const char *p)
{
	char out[256];
	uint32_t len = 0;
	int32_t st = 0;
	int fds[2], nfds = 0;
	struct fhv_dom *d = NULL;

	h->requests++;
	if (h->mute)
		return;
	switch (q->op) {
	case LAMINA_CTL_SUBSCRIBE:
		h->subscribes++;
		fhv_send(h->cfd, q->op, q->seq, 0, LAMINA_CTL_F_REPLY, NULL, 0, NULL, 0);
		for (int i = 0; i < FHV_DOMS; i++) {
			struct lamina_ctl_event ev = {.kind = LAMINA_EV_CREATED, .domid = h->dom[i].domid};
			if (h->dom[i].live)
				fhv_send(h->cfd, LAMINA_CTL_EVENT, 0, 0, 0, &ev, sizeof(ev), NULL, 0);
		}
		return;
	case LAMINA_CTL_INFO: {
		struct lamina_ctl_domref r;
		struct lamina_ctl_dominfo info;
		memcpy(&r, p, sizeof(r));
		if (q->len != sizeof(r) || !(d = fhv_find(h, r.domid))) {
			st = -ESRCH;
			break;
		}
		memset(&info, 0, sizeof(info));
		info.domid = d->domid;
		snprintf(info.name, sizeof(info.name), "fake%u", d->domid);
		for (int i = 0; i < 16; i++)
			info.uuid[i] = (uint8_t)(0x10 * i + d->domid);
		info.memory_kib = 16384;
		info.vcpus = 2;
		memcpy(out, &info, sizeof(info));
		len = sizeof(info);
		break;
	}
	case LAMINA_CTL_MAP_SPECIAL: {
		struct lamina_ctl_map_special r;
		struct lamina_ctl_mapping m = {0};
		memcpy(&r, p, sizeof(r));
		if (q->len != sizeof(r) || !(d = fhv_find(h, r.domid)) || r.which >= LAMINA_SPECIAL_COUNT) {
			st = d ? -EINVAL : -ESRCH;
			break;
		}
		m.gfn = 0x1000 + r.which;
		m.offset = r.which * 4096ull;
		m.size = 4096;
		m.port = r.which == LAMINA_SPECIAL_XENSTORE ? d->store_port : d->cons_port;
		memcpy(out, &m, sizeof(m));
		len = sizeof(m);
		fds[0] = d->memfd;
		nfds = 1;
		break;
	}
	case LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN: {
		struct lamina_ctl_evtchn_bind r;
		struct lamina_ctl_evtchn_port rep;
		uint64_t one = 1;
		memcpy(&r, p, sizeof(r));
		d = fhv_find(h, r.remote_dom);
		if (q->len != sizeof(r) || !d || r.remote_port != d->store_port || d->bound) {
			st = d ? -EINVAL : -ESRCH;
			break;
		}
		h->binds++;
		d->bound = true;
		d->d0port = ++h->next_port;
		d->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		d->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (write(d->event_fd, &one, sizeof(one)) < 0) { /* pending on bind, as the hypervisor */
		}
		rep.port = d->d0port;
		memcpy(out, &rep, sizeof(rep));
		len = sizeof(rep);
		fds[0] = d->notify_fd;
		fds[1] = d->event_fd;
		nfds = 2;
		break;
	}
	case LAMINA_CTL_EVTCHN_CLOSE: {
		struct lamina_ctl_evtchn_port r;
		memcpy(&r, p, sizeof(r));
		st = -EINVAL;
		for (int i = 0; i < FHV_DOMS; i++)
			if (h->dom[i].bound && h->dom[i].d0port == r.port) {
				fhv_unbind(&h->dom[i]);
				h->closes++;
				st = 0;
			}
		break;
	}
	default:
		st = -ENOSYS;
	}
	fhv_send(h->cfd, q->op, q->seq, st, LAMINA_CTL_F_REPLY, out, st ? 0 : len, fds,
		 st ? 0 : (unsigned)nfds);
}

static void *fhv_thread(void *arg)
{
	struct fhv *h = arg;
	char buf[sizeof(struct lamina_ctl_hdr) + 4096];

	for (;;) {
		struct pollfd p[3] = {{h->stop_pipe[0], POLLIN, 0}, {h->lfd, POLLIN, 0}, {h->cfd, POLLIN, 0}};
		if (poll(p, h->cfd >= 0 ? 3 : 2, 50) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		pthread_mutex_lock(&h->mu);
		if ((p[1].revents & POLLIN) && h->cfd < 0 && !h->refuse)
			h->cfd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (h->cfd >= 0 && (p[2].revents & (POLLIN | POLLHUP))) {
			ssize_t n = recv(h->cfd, buf, sizeof(buf), MSG_DONTWAIT);
			struct lamina_ctl_hdr q;
			if (n <= 0 && !(n < 0 && errno == EAGAIN)) {
				close(h->cfd);
				h->cfd = -1;
			} else if (n >= (ssize_t)sizeof(q)) {
				memcpy(&q, buf, sizeof(q));
				fhv_request(h, &q, buf + sizeof(q));
			}
		}
		pthread_mutex_unlock(&h->mu);
	}
	return NULL;
}

int fhv_start(struct fhv *h, const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	memset(h, 0, sizeof(*h));
	h->cfd = -1;
	snprintf(h->path, sizeof(h->path), "%s", path);
	strcpy(a.sun_path, h->path);
	pthread_mutex_init(&h->mu, NULL);
	for (int i = 0; i < FHV_DOMS; i++)
		h->dom[i].memfd = h->dom[i].notify_fd = h->dom[i].event_fd = -1;
	h->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	unlink(path);
	if (h->lfd < 0 || bind(h->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(h->lfd, 8) < 0 ||
	    pipe2(h->stop_pipe, O_CLOEXEC) < 0)
		return -errno;
	return pthread_create(&h->th, NULL, fhv_thread, h) ? -EAGAIN : 0;
}

void fhv_stop(struct fhv *h)
{
	if (write(h->stop_pipe[1], "x", 1) < 0) {
	}
	pthread_join(h->th, NULL);
	for (int i = 0; i < FHV_DOMS; i++)
		if (h->dom[i].memfd >= 0)
			fhv_dom_remove(h, &h->dom[i]);
	if (h->cfd >= 0)
		close(h->cfd);
	close(h->lfd);
	close(h->stop_pipe[0]);
	close(h->stop_pipe[1]);
	unlink(h->path);
}

void fhv_drop(struct fhv *h)
{
	pthread_mutex_lock(&h->mu);
	if (h->cfd >= 0)
		close(h->cfd);
	h->cfd = -1;
	for (int i = 0; i < FHV_DOMS; i++)
		fhv_unbind(&h->dom[i]); /* a connection's ports go with it */
	pthread_mutex_unlock(&h->mu);
}

int fhv_dom_rebuild(struct fhv *h, struct fhv_dom *d)
{
	pthread_mutex_lock(&h->mu);
	fhv_unbind(d);
	if (d->pages)
		munmap(d->pages, 8192);
	if (d->memfd >= 0)
		close(d->memfd);
	d->memfd = memfd_create("fake-special", MFD_CLOEXEC);
	d->pages = NULL;
	if (d->memfd >= 0 && ftruncate(d->memfd, 8192) == 0)
		d->pages = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, d->memfd, 0);
	d->store_port = ++h->next_port + 100;
	d->cons_port = d->store_port + 1;
	pthread_mutex_unlock(&h->mu);
	return d->pages && d->pages != MAP_FAILED ? 0 : -ENOMEM;
}

struct fhv_dom *fhv_dom_add(struct fhv *h, uint32_t domid)
{
	for (int i = 0; i < FHV_DOMS; i++) {
		struct fhv_dom *d = &h->dom[i];
		if (d->memfd >= 0)
			continue;
		d->domid = domid;
		if (fhv_dom_rebuild(h, d) < 0)
			return NULL;
		pthread_mutex_lock(&h->mu);
		d->live = true;
		pthread_mutex_unlock(&h->mu);
		return d;
	}
	return NULL;
}

void fhv_dom_remove(struct fhv *h, struct fhv_dom *d)
{
	pthread_mutex_lock(&h->mu);
	fhv_unbind(d);
	d->live = false;
	if (d->pages)
		munmap(d->pages, 8192);
	if (d->memfd >= 0)
		close(d->memfd);
	d->pages = NULL;
	d->memfd = -1;
	pthread_mutex_unlock(&h->mu);
}

int fhv_emit(struct fhv *h, uint32_t kind, uint32_t domid)
{
	struct lamina_ctl_event ev = {.kind = kind, .domid = domid};
	int rc;

	pthread_mutex_lock(&h->mu);
	rc = h->cfd >= 0 ? fhv_send(h->cfd, LAMINA_CTL_EVENT, 0, 0, 0, &ev, sizeof(ev), NULL, 0) : -ENOTCONN;
	pthread_mutex_unlock(&h->mu);
	return rc;
}

bool fhv_wait(struct fhv *h, bool (*cond)(struct fhv *h, void *arg), void *arg, int ms)
{
	for (int i = 0; i <= ms / 5; i++) {
		bool ok;
		pthread_mutex_lock(&h->mu);
		ok = cond(h, arg);
		pthread_mutex_unlock(&h->mu);
		if (ok)
			return true;
		usleep(5000);
	}
	return false;
}
