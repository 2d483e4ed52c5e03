/* The fake hypervisor control socket of xs_hv_fake.h: one thread, one connection at a time,
 * replies built from the domain table, every request counted. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "xs_hv_fake.h"

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

/* A reply that is only a status (errors carry neither payload nor descriptors). */
static void fhv_status(struct ctl_fake *f, const struct ctl_fake_req *rq, int32_t status)
{
	ctl_fake_answer(f, rq, status, NULL, 0, NULL, 0);
}

/* The handlers run with the lock held. */
static void fhv_subscribe(struct ctl_fake *f, const struct ctl_fake_req *rq)
{
	struct fhv *h = f->ctx;

	h->subscribes++;
	ctl_fake_answer(f, rq, 0, NULL, 0, NULL, 0);
	for (int i = 0; i < FHV_DOMS; i++)
		if (h->dom[i].live)
			ctl_fake_event(f->conn, LAMINA_EV_CREATED, h->dom[i].domid, NULL);
}

static void fhv_info(struct ctl_fake *f, const struct ctl_fake_req *rq)
{
	struct lamina_ctl_domref r;
	struct lamina_ctl_dominfo info;
	struct fhv_dom *d;

	memcpy(&r, rq->payload, sizeof(r));
	if (rq->h.len != sizeof(r) || !(d = fhv_find(f->ctx, r.domid))) {
		fhv_status(f, rq, -ESRCH);
		return;
	}
	memset(&info, 0, sizeof(info));
	info.domid = d->domid;
	snprintf(info.name, sizeof(info.name), "fake%u", d->domid);
	for (int i = 0; i < 16; i++)
		info.uuid[i] = (uint8_t)(0x10 * i + d->domid);
	info.memory_kib = 16384;
	info.vcpus = 2;
	ctl_fake_answer(f, rq, 0, &info, sizeof(info), NULL, 0);
}

/* Page 0 of a domain's memfd is its console, page 1 its store ring. */
static void fhv_map_special(struct ctl_fake *f, const struct ctl_fake_req *rq)
{
	struct lamina_ctl_map_special r;
	struct lamina_ctl_mapping m = {0};
	struct fhv_dom *d = NULL;

	memcpy(&r, rq->payload, sizeof(r));
	if (rq->h.len != sizeof(r) || !(d = fhv_find(f->ctx, r.domid)) || r.which >= LAMINA_SPECIAL_COUNT) {
		fhv_status(f, rq, d ? -EINVAL : -ESRCH);
		return;
	}
	m.gfn = 0x1000 + r.which;
	m.offset = r.which * 4096ull;
	m.size = 4096;
	m.port = r.which == LAMINA_SPECIAL_XENSTORE ? d->store_port : d->cons_port;
	ctl_fake_answer(f, rq, 0, &m, sizeof(m), &d->memfd, 1);
}

/* Only the store port binds, once; it is pending on bind, as the hypervisor makes it. */
static void fhv_bind(struct ctl_fake *f, const struct ctl_fake_req *rq)
{
	struct fhv *h = f->ctx;
	struct lamina_ctl_evtchn_bind r;
	struct lamina_ctl_evtchn_port rep;
	uint64_t one = 1;
	struct fhv_dom *d;
	int fds[2];

	memcpy(&r, rq->payload, sizeof(r));
	d = fhv_find(h, r.remote_dom);
	if (rq->h.len != sizeof(r) || !d || r.remote_port != d->store_port || d->bound) {
		fhv_status(f, rq, d ? -EINVAL : -ESRCH);
		return;
	}
	h->binds++;
	d->bound = true;
	d->d0port = ++h->next_port;
	d->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (write(d->event_fd, &one, sizeof(one)) < 0) {
		/* a fresh eventfd takes one write */
	}
	rep.port = d->d0port;
	fds[0] = d->notify_fd;
	fds[1] = d->event_fd;
	ctl_fake_answer(f, rq, 0, &rep, sizeof(rep), fds, 2);
}

static void fhv_close_port(struct ctl_fake *f, const struct ctl_fake_req *rq)
{
	struct fhv *h = f->ctx;
	struct lamina_ctl_evtchn_port r;
	int32_t st = -EINVAL;

	memcpy(&r, rq->payload, sizeof(r));
	for (int i = 0; i < FHV_DOMS; i++)
		if (h->dom[i].bound && h->dom[i].d0port == r.port) {
			fhv_unbind(&h->dom[i]);
			h->closes++;
			st = 0;
		}
	fhv_status(f, rq, st);
}

static const struct ctl_fake_op fhv_ops[] = {
    {.op = LAMINA_CTL_SUBSCRIBE, .fn = fhv_subscribe},
    {.op = LAMINA_CTL_INFO, .fn = fhv_info},
    {.op = LAMINA_CTL_MAP_SPECIAL, .fn = fhv_map_special},
    {.op = LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN, .fn = fhv_bind},
    {.op = LAMINA_CTL_EVTCHN_CLOSE, .fn = fhv_close_port},
};

static void *fhv_thread(void *arg)
{
	struct fhv *h = arg;
	struct ctl_fake_req rq;

	for (;;) {
		struct pollfd p[3] = {
		    {h->stop_pipe[0], POLLIN, 0}, {h->srv.lfd, POLLIN, 0}, {h->srv.conn, POLLIN, 0}};

		if (poll(p, h->srv.conn >= 0 ? 3 : 2, 50) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		pthread_mutex_lock(&h->mu);
		if ((p[1].revents & POLLIN) && h->srv.conn < 0 && !h->refuse)
			ctl_fake_accept(&h->srv);
		if (h->srv.conn >= 0 && (p[2].revents & (POLLIN | POLLHUP)) &&
		    ctl_fake_take(&h->srv, &rq) > 0) {
			h->requests++;
			if (!h->mute) /* a hung hypervisor reads and never answers */
				ctl_fake_dispatch(&h->srv, &rq);
		}
		pthread_mutex_unlock(&h->mu);
	}
	return NULL;
}

int fhv_start(struct fhv *h, const char *path)
{
	int rc;

	memset(h, 0, sizeof(*h));
	h->srv = (struct ctl_fake){.lfd = -1,
				   .conn = -1,
				   .ops = fhv_ops,
				   .nops = sizeof(fhv_ops) / sizeof(fhv_ops[0]),
				   .unknown_status = -ENOSYS,
				   .ctx = h};
	h->stop_pipe[0] = h->stop_pipe[1] = -1;
	snprintf(h->path, sizeof(h->path), "%s", path);
	pthread_mutex_init(&h->mu, NULL);
	for (int i = 0; i < FHV_DOMS; i++)
		h->dom[i].memfd = h->dom[i].notify_fd = h->dom[i].event_fd = -1;
	rc = ctl_fake_listen(&h->srv, h->path);
	if (rc < 0)
		return rc;
	if (pipe2(h->stop_pipe, O_CLOEXEC) < 0)
		return -errno;
	return pthread_create(&h->th, NULL, fhv_thread, h) ? -EAGAIN : 0;
}

void fhv_stop(struct fhv *h)
{
	if (write(h->stop_pipe[1], "x", 1) < 0) {
		/* the thread polls the pipe; a failed write would leave it running and join hangs */
	}
	pthread_join(h->th, NULL);
	for (int i = 0; i < FHV_DOMS; i++)
		if (h->dom[i].memfd >= 0)
			fhv_dom_remove(h, &h->dom[i]);
	ctl_fake_close(&h->srv, h->path);
	close(h->stop_pipe[0]);
	close(h->stop_pipe[1]);
}

void fhv_drop(struct fhv *h)
{
	pthread_mutex_lock(&h->mu);
	if (h->srv.conn >= 0)
		close(h->srv.conn);
	h->srv.conn = -1;
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
	ssize_t rc;

	pthread_mutex_lock(&h->mu);
	rc = h->srv.conn >= 0 ? ctl_fake_event(h->srv.conn, kind, domid, NULL) : -ENOTCONN;
	pthread_mutex_unlock(&h->mu);
	return rc < 0 ? rc : 0;
}

void fhv_set(struct fhv *h, bool *flag, bool on)
{
	pthread_mutex_lock(&h->mu);
	*flag = on;
	pthread_mutex_unlock(&h->mu);
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
