/* lamina-blkback's entry point: options, the subscribed control connection (grants, event
 * channels, domain deaths), the store connection and its watches, the epoll loop over every
 * device's event channel and io_uring completions, and the statistics files `domctl stat` reads. */
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

#include "blkd.h"

#define BLKD_MAX_EVENTS 64

static int blkd_on_destroyed(void *arg, const struct lamina_ctl_event *ev)
{
	blkd_drop_domain(arg, ev->domid);
	return 0;
}

static int blkd_on_restarted(void *arg, const struct lamina_ctl_event *ev)
{
	blkd_restart_domain(arg, ev->domid);
	return 0;
}

static const struct be_event_handler blkd_handlers[] = {
	{ LAMINA_EV_DESTROYED, "destroyed", blkd_on_destroyed },
	{ LAMINA_EV_RESTARTED, "restarted", blkd_on_restarted },
};

static void blkd_usage(FILE *f)
{
	fprintf(f, "usage: lamina-blkback [--rundir DIR] [--pid-file FILE] [--no-persistent] [--no-batching]\n"
		   "\n"
		   "The PV block back-end: serves every vbd under " BLKD_BACKEND_ROOT " from its image\n"
		   "through io_uring, and writes per-device statistics to DIR/blkback/DOMID-DEVID.{json,txt}.\n"
		   "--no-persistent and --no-batching turn those optimisations off (for measurements).\n");
}

void blkd_stats_write(struct blkd *b, struct blkd_vbd *v, int force)
{
	const struct blk_stats *st;
	char path[4096], tmp[4112], text[2048];
	uint64_t now = be_now_ns(), seen;
	int json, n, fd;

	if (!v->dev)
		return;
	st = blk_dev_stats(v->dev);
	seen = st->reqs[0] + st->reqs[1] + st->reqs[2] + st->reqs[3] + st->notify_sent + st->notify_suppressed;
	if (!force && (seen == v->stats_seen || now - v->stats_ns < (uint64_t)BLKD_SWEEP_MS * 1000000ull))
		return;
	v->stats_ns = now;
	v->stats_seen = seen;
	for (json = 0; json < 2; json++) {
		n = blk_stats_format(st, json, text, sizeof(text));
		if (n < 0 || n >= (int)sizeof(text))
			continue;
		snprintf(path, sizeof(path), "%s/blkback/%u-%u.%s", b->rundir, v->domid, v->devid, json ? "json" : "txt");
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			continue;
		if (write(fd, text, (size_t)n) == n && write(fd, "\n", json) == json)
			rename(tmp, path);
		else
			unlink(tmp);
		close(fd);
	}
}

static void blkd_connect_ctl(struct blkd *b)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &b->w_ctl };

	if (b->ctl.connected || be_ctl_open(&b->ctl, b->rundir) < 0)
		return;
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->ctl.conn.fd, &ev) < 0) {
		be_ctl_close(&b->ctl);
		return;
	}
	be_log("blkback: connected to lamina-hv in %s", b->rundir);
}

static void blkd_connect_store(struct blkd *b)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &b->w_store };

	if (b->xs || !b->ctl.connected || xs_client_open_rundir(b->rundir, &b->xs) < 0)
		return;
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, xs_client_fd(b->xs), &ev) < 0 ||
	    xs_client_watch(b->xs, BLKD_BACKEND_ROOT, "be") < 0) {
		xs_client_close(b->xs);
		b->xs = NULL;
		return;
	}
	be_log("blkback: watching " BLKD_BACKEND_ROOT);
}

static void blkd_lost(struct blkd *b, int store)
{
	blkd_drop_all(b);
	blkd_reap(b);
	if (b->xs) {
		xs_client_close(b->xs);
		b->xs = NULL;
	}
	if (!store)
		be_ctl_close(&b->ctl);
	be_log("blkback: lost the %s; every device disconnected, reconnecting", store ? "store" : "hypervisor");
}

static void blkd_store_events(struct blkd *b)
{
	char *path, *token;
	int rc;

	while (b->xs && (rc = xs_client_read_watch(b->xs, 0, &path, &token)) == 0) {
		blkd_xenbus_event(b, path);
		free(path);
	}
	if (b->xs && rc != -ETIMEDOUT)
		blkd_lost(b, 1);
}

static void blkd_handle(struct blkd *b, struct epoll_event *e)
{
	struct blkd_watch *w = e->data.ptr;
	struct signalfd_siginfo si;

	switch (w->kind) {
	case BLKD_W_SIGNAL:
		if (read(b->sigfd, &si, sizeof(si)) == sizeof(si)) {
			be_log("blkback: signal %u: exiting", si.ssi_signo);
			b->stop = 1;
		}
		break;
	case BLKD_W_CTL:
		if (be_ctl_dispatch(&b->ctl, blkd_handlers, sizeof(blkd_handlers) / sizeof(blkd_handlers[0]), b))
			blkd_lost(b, 0);
		break;
	case BLKD_W_STORE:
		blkd_store_events(b);
		break;
	case BLKD_W_EVTCHN:
	case BLKD_W_IO:
		if (!w->v->dead)
			blkd_vbd_service(b, w->v);
		break;
	}
}

static int blkd_run(struct blkd *b)
{
	struct epoll_event evs[BLKD_MAX_EVENTS];
	uint64_t now;

	while (!b->stop) {
		int n = epoll_wait(b->epfd, evs, BLKD_MAX_EVENTS, BLKD_SWEEP_MS);

		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n && !b->stop; i++)
			blkd_handle(b, &evs[i]);
		if (b->xs)
			blkd_store_events(b); /* events queued while a reply was awaited */
		blkd_reap(b);
		now = be_now_ns();
		if (now - b->last_sweep_ns < (uint64_t)BLKD_SWEEP_MS * 1000000ull)
			continue;
		/* The sweep: reconnect what was lost, and catch a kick or completion missed by a race. */
		b->last_sweep_ns = now;
		blkd_connect_ctl(b);
		blkd_connect_store(b);
		for (struct blkd_vbd *v = b->vbds; v; v = v->next)
			if (!v->dead)
				blkd_vbd_service(b, v);
	}
	return 0;
}

static int blkd_setup(struct blkd *b)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &b->w_signal };
	char dir[4096];
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	b->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b->sigfd < 0 || b->epfd < 0 || epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->sigfd, &ev) < 0)
		return -errno;
	snprintf(dir, sizeof(dir), "%s/blkback", b->rundir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rundir", required_argument, NULL, 'r' },   { "pid-file", required_argument, NULL, 'p' },
		{ "no-persistent", no_argument, NULL, 'P' }, { "no-batching", no_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },	      { NULL, 0, NULL, 0 },
	};
	struct blkd b = { .epfd = -1, .sigfd = -1, .persistent = 1, .batching = 1 };
	const char *rundir = NULL, *pidfile = NULL;
	struct rlimit rl;
	FILE *pf;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rundir = optarg; break;
		case 'p': pidfile = optarg; break;
		case 'P': b.persistent = 0; break;
		case 'B': b.batching = 0; break;
		case 'h': blkd_usage(stdout); return 0;
		default: blkd_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		blkd_usage(stderr);
		return 2;
	}
	b.rundir = ctl_rundir(rundir);
	b.w_signal.kind = BLKD_W_SIGNAL;
	b.w_ctl.kind = BLKD_W_CTL;
	b.w_store.kind = BLKD_W_STORE;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (pidfile) {
		pf = fopen(pidfile, "we");
		if (!pf) {
			fprintf(stderr, "lamina-blkback: %s: %s\n", pidfile, strerror(errno));
			return 1;
		}
		fprintf(pf, "%ld\n", (long)getpid());
		fclose(pf);
	}
	rc = blkd_setup(&b);
	if (rc == 0) {
		be_log("blkback: persistent grants %s, batching %s", b.persistent ? "on" : "off",
		       b.batching ? "on" : "off");
		blkd_connect_ctl(&b);
		blkd_connect_store(&b);
		b.last_sweep_ns = be_now_ns();
		rc = blkd_run(&b);
	} else {
		fprintf(stderr, "lamina-blkback: setup: %s\n", strerror(-rc));
	}
	blkd_drop_all(&b);
	blkd_reap(&b);
	if (b.xs)
		xs_client_close(b.xs);
	be_ctl_close(&b.ctl);
	if (b.epfd >= 0)
		close(b.epfd);
	if (b.sigfd >= 0)
		close(b.sigfd);
	if (pidfile)
		unlink(pidfile);
	return rc ? 1 : 0;
}
