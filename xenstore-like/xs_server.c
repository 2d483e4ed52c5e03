/* The single-threaded epoll loop of lamina-xenstored: accepts socket clients (Domain-0,
 * privileged), reads and writes them without blocking, and services ring event channels. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "xs_server.h"

#define XS_SOCK_RBUF 65536

enum xs_pkind { XS_PK_LISTEN, XS_PK_SIGNAL, XS_PK_TIMER, XS_PK_SOCK, XS_PK_RING, XS_PK_EXT };

struct xs_pollent {
	enum xs_pkind kind;
	int fd;
	uint32_t events;
	void *p;
	void (*fn)(void *p);	  /* XS_PK_EXT */
	struct xs_pollent *gnext; /* removed, freed after the current batch of events */
	struct xs_pollent *enext; /* XS_PK_EXT: the server's list */
};

struct xs_server {
	struct xs_store *st;
	struct xs_server_cfg cfg;
	int epfd;
	struct xs_pollent listen, sig, timer;
	struct xs_ring_env renv;
	struct xs_pollent **ring_pe; /* by fd */
	size_t nring_pe;
	struct xs_pollent *graveyard;
	struct xs_pollent *ext; /* descriptors other modules watch (the hypervisor connection) */
	struct sockaddr_un addr;
};

struct xs_sock {
	struct xs_pollent pe;
	struct xs_server *srv;
	struct xs_conn *c;
	size_t roff, rlen;
	char rbuf[XS_SOCK_RBUF];
};

static int xs_server_ctl(struct xs_server *srv, int op, struct xs_pollent *pe, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = pe};

	if (epoll_ctl(srv->epfd, op, pe->fd, &ev) < 0)
		return -errno;
	pe->events = events;
	return 0;
}

static void xs_sock_update(struct xs_sock *s)
{
	uint32_t want = 0;

	if (!xs_conn_paused(s->c))
		want |= EPOLLIN;
	if (s->c->out_head)
		want |= EPOLLOUT;
	if (want != s->pe.events)
		xs_server_ctl(s->srv, EPOLL_CTL_MOD, &s->pe, want);
}

static void xs_sock_feed(struct xs_sock *s)
{
	size_t used = 0;

	if (s->roff >= s->rlen)
		return;
	if (xs_conn_input(s->c, s->rbuf + s->roff, s->rlen - s->roff, &used) < 0)
		return; /* killed; reaped after this round */
	s->roff += used;
	if (s->roff == s->rlen)
		s->roff = s->rlen = 0;
}

static int xs_sock_flush(struct xs_conn *c)
{
	struct xs_sock *s = c->tctx;
	struct iovec iov[64];

	while (c->out_head) {
		struct xs_outbuf *o = c->out_head;
		ssize_t n;
		int i = 0;
		for (; o && i < 64; o = o->next, i++) {
			uint32_t skip = i == 0 ? c->out_off : 0;
			iov[i].iov_base = o->data + skip;
			iov[i].iov_len = o->len - skip;
		}
		n = writev(s->pe.fd, iov, i);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -errno;
		}
		xs_conn_consumed(c, (size_t)n);
	}
	/* Room again: requests held back by the backlog can go on. */
	if (!xs_conn_paused(c))
		xs_sock_feed(s);
	xs_sock_update(s);
	return 0;
}

static void xs_sock_destroy(struct xs_conn *c)
{
	struct xs_sock *s = c->tctx;

	epoll_ctl(s->srv->epfd, EPOLL_CTL_DEL, s->pe.fd, NULL);
	close(s->pe.fd);
	xs_conn_free(c);
	free(s);
}

static const struct xs_conn_tops xs_sock_tops = {
    .name = "socket",
    .flush = xs_sock_flush,
    .destroy = xs_sock_destroy,
};

static void xs_server_accept(struct xs_server *srv)
{
	for (;;) {
		int fd = accept4(srv->listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct xs_sock *s;
		if (fd < 0)
			return;
		s = malloc(sizeof(*s));
		if (!s) {
			close(fd);
			continue;
		}
		s->pe.kind = XS_PK_SOCK;
		s->pe.fd = fd;
		s->pe.p = s;
		s->srv = srv;
		s->roff = s->rlen = 0;
		s->c = xs_conn_new(srv->st, 0, true, &xs_sock_tops, s);
		if (!s->c || xs_server_ctl(srv, EPOLL_CTL_ADD, &s->pe, EPOLLIN) < 0) {
			if (s->c)
				xs_conn_free(s->c);
			close(fd);
			free(s);
			continue;
		}
		s->c->fd = fd;
	}
}

static void xs_sock_readable(struct xs_sock *s, uint32_t events)
{
	ssize_t n;

	if (events & EPOLLOUT)
		xs_sock_flush(s->c);
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || s->c->dead)
		return;
	if (xs_conn_paused(s->c))
		return;
	if (s->rlen == sizeof(s->rbuf)) {
		memmove(s->rbuf, s->rbuf + s->roff, s->rlen - s->roff);
		s->rlen -= s->roff;
		s->roff = 0;
	}
	n = read(s->pe.fd, s->rbuf + s->rlen, sizeof(s->rbuf) - s->rlen);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		s->c->dead = true; /* the client went away: not worth a log line */
		s->srv->st->ndead++;
		return;
	}
	if (n < 0)
		return;
	s->rlen += (size_t)n;
	xs_sock_feed(s);
	/* Replies go out from xs_store_flush_dirty, which settles the interest set; only a pause
	 * with nothing to send needs it here. */
	if (!s->c->out_head && xs_conn_paused(s->c))
		xs_sock_update(s);
}

static int xs_ring_poll_add(void *pctx, int fd, struct xs_ring *r)
{
	struct xs_server *srv = pctx;
	struct xs_pollent *pe;
	int rc;

	if (fd < 0 || fd >= 1 << 20)
		return -EBADF;
	if ((size_t)fd >= srv->nring_pe) {
		size_t n = (size_t)fd + 64;
		struct xs_pollent **a = realloc(srv->ring_pe, n * sizeof(*a));
		if (!a)
			return -ENOMEM;
		memset(a + srv->nring_pe, 0, (n - srv->nring_pe) * sizeof(*a));
		srv->ring_pe = a;
		srv->nring_pe = n;
	}
	pe = calloc(1, sizeof(*pe));
	if (!pe)
		return -ENOMEM;
	pe->kind = XS_PK_RING;
	pe->fd = fd;
	pe->p = r;
	rc = xs_server_ctl(srv, EPOLL_CTL_ADD, pe, EPOLLIN);
	if (rc < 0) {
		free(pe);
		return rc;
	}
	srv->ring_pe[fd] = pe;
	return 0;
}

static void xs_ring_poll_del(void *pctx, int fd)
{
	struct xs_server *srv = pctx;

	if (fd < 0 || (size_t)fd >= srv->nring_pe || !srv->ring_pe[fd])
		return;
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, fd, NULL);
	srv->ring_pe[fd]->p = NULL;
	srv->ring_pe[fd]->gnext = srv->graveyard;
	srv->graveyard = srv->ring_pe[fd];
	srv->ring_pe[fd] = NULL;
}

void xs_server_set_mapper(struct xs_server *srv, const struct xs_ring_ops *ops, void *ctx)
{
	srv->renv.ops = ops;
	srv->renv.ops_ctx = ctx;
	srv->renv.poll_add = xs_ring_poll_add;
	srv->renv.poll_del = xs_ring_poll_del;
	srv->renv.pctx = srv;
	xs_ring_install(srv->st, &srv->renv);
}

int xs_server_add_fd(void *lctx, int fd, void (*fn)(void *arg), void *arg)
{
	struct xs_server *srv = lctx;
	struct xs_pollent *pe = calloc(1, sizeof(*pe));
	int rc;

	if (!pe)
		return -ENOMEM;
	pe->kind = XS_PK_EXT;
	pe->fd = fd;
	pe->fn = fn;
	pe->p = arg;
	rc = xs_server_ctl(srv, EPOLL_CTL_ADD, pe, EPOLLIN);
	if (rc < 0) {
		free(pe);
		return rc;
	}
	pe->enext = srv->ext;
	srv->ext = pe;
	return 0;
}

void xs_server_del_fd(void *lctx, int fd)
{
	struct xs_server *srv = lctx;
	struct xs_pollent **pp;

	for (pp = &srv->ext; *pp; pp = &(*pp)->enext) {
		struct xs_pollent *pe = *pp;
		if (pe->fd != fd)
			continue;
		epoll_ctl(srv->epfd, EPOLL_CTL_DEL, fd, NULL);
		*pp = pe->enext;
		pe->p = NULL;
		pe->gnext = srv->graveyard;
		srv->graveyard = pe;
		return;
	}
}

static int xs_server_listen(struct xs_server *srv)
{
	int fd;

	if (strlen(srv->cfg.socket_path) >= sizeof(srv->addr.sun_path))
		return -ENAMETOOLONG;
	srv->addr.sun_family = AF_UNIX;
	strcpy(srv->addr.sun_path, srv->cfg.socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(srv->cfg.socket_path);
	if (bind(fd, (struct sockaddr *)&srv->addr, sizeof(srv->addr)) < 0 ||
	    chmod(srv->cfg.socket_path, 0600) < 0 || listen(fd, 128) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	srv->listen.kind = XS_PK_LISTEN;
	srv->listen.fd = fd;
	return xs_server_ctl(srv, EPOLL_CTL_ADD, &srv->listen, EPOLLIN);
}

static int xs_server_signals(struct xs_server *srv)
{
	struct itimerspec its = {.it_interval = {1, 0}, .it_value = {1, 0}};
	sigset_t set;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	srv->sig.kind = XS_PK_SIGNAL;
	srv->sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->sig.fd < 0)
		return -errno;
	if ((rc = xs_server_ctl(srv, EPOLL_CTL_ADD, &srv->sig, EPOLLIN)) < 0)
		return rc;
	srv->timer.fd = -1;
	if (!srv->cfg.persist_file)
		return 0;
	srv->timer.kind = XS_PK_TIMER;
	srv->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (srv->timer.fd < 0 || timerfd_settime(srv->timer.fd, 0, &its, NULL) < 0)
		return -errno;
	return xs_server_ctl(srv, EPOLL_CTL_ADD, &srv->timer, EPOLLIN);
}

static int xs_server_pidfile(const char *file)
{
	char buf[32];
	int fd, n;

	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

int xs_server_new(struct xs_store *st, const struct xs_server_cfg *cfg, struct xs_server **out)
{
	struct xs_server *srv = calloc(1, sizeof(*srv));
	int rc;

	if (!srv)
		return -ENOMEM;
	srv->st = st;
	srv->cfg = *cfg;
	srv->listen.fd = srv->sig.fd = srv->timer.fd = -1;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = xs_server_signals(srv)) < 0 || (rc = xs_server_listen(srv)) < 0)
		goto fail;
	if (cfg->pid_file && (rc = xs_server_pidfile(cfg->pid_file)) < 0)
		goto fail;
	*out = srv;
	return 0;
fail:
	xs_server_free(srv);
	return rc;
}

static void xs_server_persist(struct xs_server *srv)
{
	int rc;

	if (!srv->cfg.persist_file || !srv->st->tree_dirty)
		return;
	rc = xs_persist_save(srv->st, srv->cfg.persist_file);
	if (rc < 0)
		xs_log(srv->st, XS_LOG_ERR, "persist to %s failed: %s", srv->cfg.persist_file, strerror(-rc));
	else
		srv->st->tree_dirty = false;
}

static void xs_server_signal(struct xs_server *srv)
{
	struct signalfd_siginfo si;

	while (read(srv->sig.fd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo != SIGHUP)
			srv->st->stop = true;
}

int xs_server_run(struct xs_server *srv)
{
	struct epoll_event evs[64];
	uint64_t ticks;
	int n, i;

	xs_log(srv->st, XS_LOG_INFO, "listening on %s", srv->cfg.socket_path);
	while (!srv->st->stop) {
		n = epoll_wait(srv->epfd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (i = 0; i < n; i++) {
			struct xs_pollent *pe = evs[i].data.ptr;
			switch (pe->kind) {
			case XS_PK_LISTEN:
				xs_server_accept(srv);
				break;
			case XS_PK_SIGNAL:
				xs_server_signal(srv);
				break;
			case XS_PK_TIMER:
				if (read(pe->fd, &ticks, sizeof(ticks)) > 0)
					xs_server_persist(srv);
				break;
			case XS_PK_SOCK:
				xs_sock_readable(pe->p, evs[i].events);
				break;
			case XS_PK_RING:
				if (pe->p)
					xs_ring_kick(pe->p);
				break;
			case XS_PK_EXT:
				if (pe->p)
					pe->fn(pe->p);
				break;
			}
		}
		xs_store_flush_dirty(srv->st);
		while (srv->graveyard) {
			struct xs_pollent *pe = srv->graveyard;
			srv->graveyard = pe->gnext;
			free(pe);
		}
	}
	xs_log(srv->st, XS_LOG_INFO, "stopping");
	xs_server_persist(srv);
	return 0;
}

void xs_server_free(struct xs_server *srv)
{
	struct xs_conn *c, *next;
	size_t i;

	if (!srv)
		return;
	/* Every connection, rings included: their teardown uses this loop's epoll set. */
	for (c = srv->st->conns; c; c = next) {
		next = c->next;
		if (c->tops && c->tops->destroy)
			c->tops->destroy(c);
	}
	if (srv->listen.fd >= 0) {
		close(srv->listen.fd);
		unlink(srv->cfg.socket_path);
	}
	if (srv->cfg.pid_file)
		unlink(srv->cfg.pid_file);
	if (srv->sig.fd >= 0)
		close(srv->sig.fd);
	if (srv->timer.fd >= 0)
		close(srv->timer.fd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	for (i = 0; i < srv->nring_pe; i++)
		free(srv->ring_pe[i]);
	while (srv->ext) {
		struct xs_pollent *pe = srv->ext;
		srv->ext = pe->enext;
		free(pe);
	}
	while (srv->graveyard) {
		struct xs_pollent *pe = srv->graveyard;
		srv->graveyard = pe->gnext;
		free(pe);
	}
	free(srv->ring_pe);
	free(srv);
}
