/* The event-channel world and its event thread: one epoll over every Domain-0 "notify" eventfd
 * (a write sends on that Domain-0 port) and every vCPU timerfd (VIRQ_TIMER on expiry); Domain-0's
 * eventfd-backed ports bound for control connections; the vCPU timers. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "domain.h"

#define EVTCHN_LOOP_BATCH 64

uint64_t evtchn_tag(unsigned kind, uint32_t gen, uint32_t domid, uint32_t low)
{
	return ((uint64_t)kind << 62) | ((uint64_t)(gen & 0x3fffffffu) << 32) | ((uint64_t)(domid & 0xffffu) << 16) |
	       (low & 0xffffu);
}

int evtchn_loop_add(struct evtchn_world *w, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

	return epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void evtchn_loop_del(struct evtchn_world *w, int fd)
{
	epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

/* A Domain-0 client wrote a notify eventfd: consume it and send on the port. */
static void evtchn_loop_notify(struct evtchn_world *w, uint32_t gen, uint32_t port)
{
	struct domain *d0 = w->dom[0];
	struct evtchn_port *p;
	uint64_t v;

	if (!d0)
		return;
	p = evtchn_port_of(d0, port);
	if (!p || p->gen != gen || p->notify_fd < 0)
		return; /* closed (and maybe reused) since the wake-up */
	if (read(p->notify_fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return;
	evtchn_send_locked(d0, port);
}

static void evtchn_loop_timer(struct evtchn_world *w, uint32_t gen, uint32_t domid, uint32_t low)
{
	struct domain *d = domid < DOMID_FIRST_RESERVED ? w->dom[domid] : NULL;
	unsigned vcpu = low >> 1, which = low & 1;
	struct evtchn_timer *t;
	struct vcpu *v;
	uint64_t n;

	if (!d || vcpu >= d->nr_vcpus || !(v = d->vcpu[vcpu]))
		return;
	t = &v->timer[which];
	if (t->fd < 0 || t->gen != gen)
		return;
	if (read(t->fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
		return; /* re-armed or cancelled since it fired */
	if (which == EVTCHN_TIMER_SINGLE)
		t->deadline_ns = 0;
	atomic_fetch_add(&t->fired, n); /* expirations, even if several came between reads */
	evtchn_send_virq_locked(d, vcpu, VIRQ_TIMER);
}

void evtchn_loop_dispatch(struct evtchn_world *w, uint64_t tag)
{
	unsigned kind = (unsigned)(tag >> 62);
	uint32_t gen = (uint32_t)(tag >> 32) & 0x3fffffffu;
	uint32_t domid = (uint32_t)(tag >> 16) & 0xffffu, low = (uint32_t)tag & 0xffffu;

	pthread_rwlock_rdlock(&w->lock);
	if (kind == EVTCHN_TAG_NOTIFY)
		evtchn_loop_notify(w, gen, low);
	else if (kind == EVTCHN_TAG_TIMER)
		evtchn_loop_timer(w, gen, domid, low);
	pthread_rwlock_unlock(&w->lock);
}

int evtchn_loop_poll(struct evtchn_world *w, int timeout_ms)
{
	struct epoll_event ev[EVTCHN_LOOP_BATCH];
	int n, i, handled = 0;

	n = epoll_wait(w->epoll_fd, ev, EVTCHN_LOOP_BATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < n; i++) {
		if ((unsigned)(ev[i].data.u64 >> 62) == EVTCHN_TAG_QUIT)
			return -ECANCELED;
		evtchn_loop_dispatch(w, ev[i].data.u64);
		handled++;
	}
	return handled;
}

static void *evtchn_loop_main(void *arg)
{
	struct evtchn_world *w = arg;

	while (evtchn_loop_poll(w, -1) >= 0)
		;
	return NULL;
}

int evtchn_world_init(struct evtchn_world *w, bool thread)
{
	pthread_rwlockattr_t ra;
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	memset(w, 0, sizeof(*w));
	w->epoll_fd = w->quit_fd = -1;
	w->dom = calloc(DOMID_FIRST_RESERVED, sizeof(*w->dom));
	if (!w->dom)
		return -ENOMEM;
	/* Writers (binds, closes, teardown) must not starve behind a stream of sends. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&w->lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	w->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->epoll_fd < 0 || w->quit_fd < 0) {
		rc = -errno;
		goto out_fail;
	}
	rc = evtchn_loop_add(w, w->quit_fd, evtchn_tag(EVTCHN_TAG_QUIT, 0, 0, 0));
	if (rc < 0 || !thread)
		goto out;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128u << 10);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&w->thread, &attr, evtchn_loop_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc == 0)
		w->thread_started = true;
out:
	if (rc == 0)
		return 0;
out_fail:
	evtchn_world_fini(w);
	return rc;
}

void evtchn_world_fini(struct evtchn_world *w)
{
	uint64_t one = 1;

	if (w->thread_started) {
		if (write(w->quit_fd, &one, sizeof(one)) < 0) {
			/* cannot fail for a fresh eventfd */
		}
		pthread_join(w->thread, NULL);
		w->thread_started = false;
	}
	if (w->epoll_fd >= 0)
		close(w->epoll_fd);
	if (w->quit_fd >= 0)
		close(w->quit_fd);
	w->epoll_fd = w->quit_fd = -1;
	if (w->dom)
		pthread_rwlock_destroy(&w->lock);
	free(w->dom);
	w->dom = NULL;
}

/* Gives a fresh Domain-0 port its eventfds (world write lock held); fds get the client's
 * copies. */
static int evtchn_d0_attach(struct domain *d0, const void *owner, uint32_t port, int fds[2])
{
	struct evtchn_world *w = d0->evw;
	struct evtchn_port *p = &d0->evtchn->ports[port];
	int rc;

	p->owner = owner;
	p->gen = ++w->next_gen & 0x3fffffffu;
	p->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->notify_fd < 0 || p->event_fd < 0)
		return -errno;
	rc = evtchn_loop_add(w, p->notify_fd, evtchn_tag(EVTCHN_TAG_NOTIFY, p->gen, 0, port));
	if (rc < 0)
		return rc;
	fds[0] = fcntl(p->notify_fd, F_DUPFD_CLOEXEC, 0);
	fds[1] = fcntl(p->event_fd, F_DUPFD_CLOEXEC, 0);
	if (fds[0] < 0 || fds[1] < 0) {
		if (fds[0] >= 0)
			close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
		fds[0] = fds[1] = -1;
		return -EMFILE;
	}
	return 0;
}

int evtchn_d0_bind_interdomain(struct domain *d0, const void *owner, uint32_t remote_dom,
			       uint32_t remote_port, uint32_t *port, int fds[2])
{
	struct evtchn_world *w = d0->evw;
	struct evtchn_port *rp, *lp;
	struct domain *rd;
	int rc;

	fds[0] = fds[1] = -1;
	if (remote_dom == 0 || remote_dom >= DOMID_FIRST_RESERVED)
		return -ESRCH; /* Domain-0 binds guests' ports only */
	pthread_rwlock_wrlock(&w->lock);
	rd = w->dom[remote_dom];
	if (!rd) {
		rc = -ESRCH;
		goto out;
	}
	rp = evtchn_port_of(rd, remote_port);
	if (!rp || rp->state != EVTCHN_UNBOUND || rp->remote_dom != 0) {
		rc = -EINVAL;
		goto out;
	}
	rc = evtchn_get_free(d0, port);
	if (rc)
		goto out;
	evtchn_take(d0, *port, EVTCHN_INTERDOMAIN, 0);
	rc = evtchn_d0_attach(d0, owner, *port, fds);
	if (rc) {
		evtchn_close_locked(d0, *port, NULL, NULL);
		goto out;
	}
	lp = &d0->evtchn->ports[*port];
	lp->remote_dom = (uint16_t)remote_dom;
	lp->remote_port = remote_port;
	rp->state = EVTCHN_INTERDOMAIN;
	rp->remote_dom = 0;
	rp->remote_port = *port;
	evtchn_set_pending(d0, *port); /* as for guests: make up for dropped notifications */
out:
	pthread_rwlock_unlock(&w->lock);
	return rc;
}

int evtchn_d0_bind_virq(struct domain *d0, const void *owner, uint32_t virq, uint32_t *port, int fds[2])
{
	struct evtchn_world *w = d0->evw;
	int rc;

	fds[0] = fds[1] = -1;
	if (virq != VIRQ_DOM_EXC && virq != VIRQ_CONSOLE && virq != VIRQ_DEBUG)
		return -EINVAL;
	pthread_rwlock_wrlock(&w->lock);
	rc = evtchn_get_free(d0, port);
	if (rc)
		goto out;
	evtchn_take(d0, *port, EVTCHN_VIRQ, 0);
	d0->evtchn->ports[*port].virq = virq;
	rc = evtchn_d0_attach(d0, owner, *port, fds);
	if (rc)
		evtchn_close_locked(d0, *port, NULL, NULL);
out:
	pthread_rwlock_unlock(&w->lock);
	return rc;
}

int evtchn_d0_close(struct domain *d0, const void *owner, uint32_t port)
{
	struct evtchn_world *w = d0->evw;
	struct evtchn_port *p;
	int rc;

	pthread_rwlock_wrlock(&w->lock);
	p = evtchn_port_of(d0, port);
	if (!p || p->state == EVTCHN_FREE || p->state == EVTCHN_RESERVED)
		rc = -EINVAL;
	else if (p->owner != owner)
		rc = -EPERM;
	else
		rc = evtchn_close_locked(d0, port, NULL, NULL);
	pthread_rwlock_unlock(&w->lock);
	return rc;
}

void evtchn_d0_close_owner(struct domain *d0, const void *owner)
{
	struct evtchn_world *w = d0->evw;
	struct evtchn_table *t = d0->evtchn;

	pthread_rwlock_wrlock(&w->lock);
	for (unsigned i = 1; t && i < t->nr_alloc; i++)
		if (t->ports[i].state != EVTCHN_FREE && t->ports[i].owner == owner)
			evtchn_close_locked(d0, i, NULL, NULL);
	pthread_rwlock_unlock(&w->lock);
}

int evtchn_timer_set(struct vcpu *v, unsigned which, uint64_t deadline_ns, uint64_t period_ns)
{
	struct domain *d = v->d;
	struct evtchn_world *w = d->evw;
	struct evtchn_timer *t = &v->timer[which];
	struct itimerspec its;
	uint64_t abs;
	int rc = 0;

	if (!w || which >= EVTCHN_NR_TIMERS)
		return -EINVAL;
	memset(&its, 0, sizeof(its));
	if (deadline_ns) {
		abs = d->boot_mono_ns + deadline_ns;
		if (abs < deadline_ns || abs > (uint64_t)INT64_MAX / 2)
			abs = (uint64_t)INT64_MAX / 2; /* "never" within any guest's life */
		if (abs == 0)
			abs = 1;
		its.it_value.tv_sec = (time_t)(abs / 1000000000ull);
		its.it_value.tv_nsec = (long)(abs % 1000000000ull);
		its.it_interval.tv_sec = (time_t)(period_ns / 1000000000ull);
		its.it_interval.tv_nsec = (long)(period_ns % 1000000000ull);
	}
	pthread_rwlock_wrlock(&w->lock);
	if (!d->evtchn || d->evtchn->dead) {
		rc = -ESRCH;
		goto out;
	}
	if (t->fd < 0 && deadline_ns) {
		t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (t->fd < 0) {
			rc = -errno;
			goto out;
		}
		t->gen = ++w->next_gen & 0x3fffffffu;
		rc = evtchn_loop_add(w, t->fd, evtchn_tag(EVTCHN_TAG_TIMER, t->gen, d->domid, v->id * 2 + which));
		if (rc < 0) {
			close(t->fd);
			t->fd = -1;
			goto out;
		}
	}
	t->deadline_ns = deadline_ns;
	t->period_ns = deadline_ns ? period_ns : 0;
	if (t->fd >= 0 && timerfd_settime(t->fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		rc = -errno;
out:
	pthread_rwlock_unlock(&w->lock);
	return rc;
}

void evtchn_timers_stop(struct vcpu *v)
{
	for (unsigned k = 0; k < EVTCHN_NR_TIMERS; k++) {
		struct evtchn_timer *t = &v->timer[k];
		if (t->fd >= 0) {
			evtchn_loop_del(v->d->evw, t->fd);
			close(t->fd);
		}
		t->fd = -1;
		t->deadline_ns = t->period_ns = 0;
	}
}
