/* The daemon skeleton every device back-end runs on: options, the pid file, signals, the subscribed
 * control connection (domain deaths and restarts), the store connection and its watch on
 * backend/<type>, the epoll loop over the devices' descriptors, the periodic sweep that reconnects
 * what was lost, and the statistics files `domctl stat` reads. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "be_dev.h"

#define BE_MAX_EVENTS 64
#define BE_MAX_FLAGS 8

static int be_on_destroyed(void *arg, const struct lamina_ctl_event *ev)
{
	be_xenbus_drop_domain(arg, ev->domid);
	return 0;
}

static int be_on_restarted(void *arg, const struct lamina_ctl_event *ev)
{
	struct be_daemon *d = arg;

	if (d->ops->restart_reoffer)
		be_xenbus_restart_domain(d, ev->domid);
	else
		be_xenbus_drop_domain(d, ev->domid); /* rings and ports are gone */
	return 0;
}

static const struct be_event_handler be_handlers[] = {
	{ LAMINA_EV_DESTROYED, "destroyed", be_on_destroyed },
	{ LAMINA_EV_RESTARTED, "restarted", be_on_restarted },
};

int be_daemon_watch(struct be_daemon *d, int op, int fd, uint32_t events, struct be_watch *w)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(d->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

void be_daemon_unwatch(struct be_daemon *d, int fd)
{
	if (fd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
}

void be_stats_file(struct be_daemon *d, const struct be_dev *v, const char *ext, const char *text, size_t n)
{
	char path[4096], tmp[4112];
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%u-%u.%s", d->rundir, d->ops->prog, v->domid, v->devid, ext);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, text, n) == (ssize_t)n)
		rename(tmp, path);
	else
		unlink(tmp);
	close(fd);
}

static void be_connect_ctl(struct be_daemon *d)
{
	if (d->ctl.connected || be_ctl_open(&d->ctl, d->rundir) < 0)
		return;
	if ((d->ops->ctl_up && d->ops->ctl_up(d) < 0) ||
	    be_daemon_watch(d, EPOLL_CTL_ADD, d->ctl.conn.fd, EPOLLIN, &d->w_ctl) < 0) {
		be_ctl_close(&d->ctl);
		return;
	}
	be_log("%s: connected to lamina-hv in %s", d->ops->prog, d->rundir);
}

static void be_connect_store(struct be_daemon *d)
{
	if (d->xs || !d->ctl.connected || xs_client_open_rundir(d->rundir, &d->xs) < 0)
		return;
	if (be_daemon_watch(d, EPOLL_CTL_ADD, xs_client_fd(d->xs), EPOLLIN, &d->w_store) < 0 ||
	    xs_client_watch(d->xs, d->root, "be") < 0) {
		xs_client_close(d->xs);
		d->xs = NULL;
		return;
	}
	be_log("%s: watching %s", d->ops->prog, d->root);
}

static void be_lost(struct be_daemon *d, int store)
{
	be_xenbus_drop_all(d);
	be_xenbus_reap(d);
	if (d->xs) {
		xs_client_close(d->xs);
		d->xs = NULL;
	}
	if (!store)
		be_ctl_close(&d->ctl);
	be_log("%s: lost the %s; every device disconnected, reconnecting", d->ops->prog,
	       store ? "store" : "hypervisor");
}

static void be_store_events(struct be_daemon *d)
{
	char *path, *token;
	int rc;

	while (d->xs && (rc = xs_client_read_watch(d->xs, 0, &path, &token)) == 0) {
		be_xenbus_event(d, path);
		free(path);
	}
	if (d->xs && rc != -ETIMEDOUT)
		be_lost(d, 1);
}

static void be_handle(struct be_daemon *d, struct epoll_event *e)
{
	struct be_watch *w = e->data.ptr;
	struct signalfd_siginfo si;

	switch (w->kind) {
	case BE_W_SIGNAL:
		if (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
			be_log("%s: signal %u: exiting", d->ops->prog, si.ssi_signo);
			d->stop = 1;
		}
		break;
	case BE_W_CTL:
		if (be_ctl_dispatch(&d->ctl, be_handlers, sizeof(be_handlers) / sizeof(be_handlers[0]), d))
			be_lost(d, 0);
		break;
	case BE_W_STORE:
		be_store_events(d);
		break;
	case BE_W_DEV:
		if (!w->dev->dead && w->dev->connected)
			d->ops->kick(d, w->dev, w->tag);
		break;
	}
}

static int be_run(struct be_daemon *d)
{
	struct epoll_event evs[BE_MAX_EVENTS];
	struct be_dev *v;
	uint64_t now;

	while (!d->stop) {
		int busy = 0, n;

		for (v = d->devs; v && !busy; v = v->next)
			busy = v->busy && v->connected && !v->dead;
		n = epoll_wait(d->epfd, evs, BE_MAX_EVENTS, busy ? 0 : BE_SWEEP_MS);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n && !d->stop; i++)
			be_handle(d, &evs[i]);
		if (d->xs)
			be_store_events(d); /* events queued while a reply was awaited */
		/* Devices that had more work than one turn's budget: round-robin, one turn each. */
		for (v = d->devs; v; v = v->next)
			if (v->busy && v->connected && !v->dead)
				d->ops->kick(d, v, BE_KICK_ALL);
		be_xenbus_reap(d);
		now = be_now_ns();
		if (now - d->last_sweep_ns < (uint64_t)BE_SWEEP_MS * 1000000ull)
			continue;
		/* The sweep: reconnect what was lost, and catch a kick or completion missed by a race. */
		d->last_sweep_ns = now;
		be_connect_ctl(d);
		be_connect_store(d);
		for (v = d->devs; v; v = v->next) {
			if (v->dead || !v->connected)
				continue;
			if (d->ops->sweep)
				d->ops->sweep(d, v);
			d->ops->kick(d, v, BE_KICK_ALL);
		}
	}
	return 0;
}

static int be_setup(struct be_daemon *d)
{
	char dir[4096];
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->sigfd < 0 || d->epfd < 0)
		return -errno;
	if (be_daemon_watch(d, EPOLL_CTL_ADD, d->sigfd, EPOLLIN, &d->w_signal) < 0)
		return -errno;
	snprintf(dir, sizeof(dir), "%s/%s", d->rundir, d->ops->prog);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int be_dev_polling(const struct be_daemon *d, const struct be_dev *v, uint64_t now)
{
	return !d->no_poll && now < v->poll_until_ns;
}

void be_dev_took(const struct be_daemon *d, struct be_dev *v, uint64_t now)
{
	if (!d->no_poll)
		v->poll_until_ns = now + BE_POLL_NS;
}

static void be_usage(const struct be_type_ops *ops, FILE *f)
{
	fprintf(f, "usage: lamina-%s [--rundir DIR] [--pid-file FILE] [--no-poll]", ops->prog);
	for (size_t i = 0; i < ops->nflags; i++)
		fprintf(f, " [--%s]", ops->flags[i].name);
	fprintf(f, "\n\n%s--no-poll re-arms a ring's req_event at once instead of polling the ring for 50 us after\n"
		   "requests (each request after a quiet moment then costs the guest a notification).\n",
		ops->usage);
}

/* Options into d; 0, 1 (help printed), or 2 (usage error). */
static int be_parse(struct be_daemon *d, int argc, char **argv, const char **rundir, const char **pidfile)
{
	struct option opts[BE_MAX_FLAGS + 5] = {
		{ "rundir", required_argument, NULL, 'r' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "no-poll", no_argument, NULL, 'P' },
	};
	const struct be_type_ops *ops = d->ops;
	size_t nf = ops->nflags < BE_MAX_FLAGS ? ops->nflags : BE_MAX_FLAGS;
	int c;

	for (size_t i = 0; i < nf; i++)
		opts[4 + i] = (struct option){ ops->flags[i].name, no_argument, NULL, 256 + (int)i };
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'r') {
			*rundir = optarg;
		} else if (c == 'p') {
			*pidfile = optarg;
		} else if (c == 'P') {
			d->no_poll = 1;
		} else if (c >= 256 && c < 256 + (int)nf) {
			d->off |= ops->flags[c - 256].bit;
		} else if (c == 'h') {
			be_usage(ops, stdout);
			return 1;
		} else {
			be_usage(ops, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		be_usage(ops, stderr);
		return 2;
	}
	return 0;
}

int be_daemon_main(const struct be_type_ops *ops, void *priv, int argc, char **argv)
{
	struct be_daemon d = { .ops = ops, .priv = priv, .epfd = -1, .sigfd = -1 };
	const char *rundir = NULL, *pidfile = NULL;
	struct rlimit rl;
	FILE *pf;
	int rc;

	rc = be_parse(&d, argc, argv, &rundir, &pidfile);
	if (rc)
		return rc == 1 ? 0 : 2;
	d.rundir = ctl_rundir(rundir);
	snprintf(d.root, sizeof(d.root), BE_BACKEND_DIR "/%s", ops->type);
	d.w_signal.kind = BE_W_SIGNAL;
	d.w_ctl.kind = BE_W_CTL;
	d.w_store.kind = BE_W_STORE;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (pidfile) {
		pf = fopen(pidfile, "we");
		if (!pf) {
			fprintf(stderr, "lamina-%s: %s: %s\n", ops->prog, pidfile, strerror(errno));
			return 1;
		}
		fprintf(pf, "%ld\n", (long)getpid());
		fclose(pf);
	}
	rc = be_setup(&d);
	if (rc == 0) {
		be_connect_ctl(&d);
		be_connect_store(&d);
		d.last_sweep_ns = be_now_ns();
		rc = be_run(&d);
	} else {
		fprintf(stderr, "lamina-%s: setup: %s\n", ops->prog, strerror(-rc));
	}
	be_xenbus_drop_all(&d);
	be_xenbus_reap(&d);
	if (d.xs)
		xs_client_close(d.xs);
	be_ctl_close(&d.ctl);
	if (ops->shutdown)
		ops->shutdown(&d);
	if (d.epfd >= 0)
		close(d.epfd);
	if (d.sigfd >= 0)
		close(d.sigfd);
	if (pidfile)
		unlink(pidfile);
	return rc ? 1 : 0;
}
