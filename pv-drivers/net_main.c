/* lamina-netback's entry point: options, the subscribed control connection (grant copies, event
 * channels, domain deaths), the store connection and its watches, the epoll loop over every vif's
 * event channels and tap, and the statistics files `domctl stat` reads. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_grant_client.h"
#include "netd.h"

#define NETD_MAX_EVENTS 64

static int netd_on_destroyed(void *arg, const struct lamina_ctl_event *ev)
{
	netd_drop_domain(arg, ev->domid);
	return 0;
}

static const struct be_event_handler netd_handlers[] = {
	{ LAMINA_EV_DESTROYED, "destroyed", netd_on_destroyed },
	{ LAMINA_EV_RESTARTED, "restarted", netd_on_destroyed }, /* rings and ports are gone */
};

static void netd_usage(FILE *f)
{
	fprintf(f, "usage: lamina-netback [--rundir DIR] [--pid-file FILE]\n"
		   "\n"
		   "The PV network back-end: one tap vifD.N per vif under " NETD_BACKEND_ROOT ", attached to\n"
		   "the bridge its directory names (default " NETD_DEFAULT_BRIDGE "); writes per-vif statistics to\n"
		   "DIR/netback/DOMID-DEVID.txt. Taps are made in this process's network namespace.\n");
}

void netd_stats_write(struct netd *d, struct netd_vif *v, int force)
{
	char path[4096], tmp[4112], text[1024];
	uint64_t now = be_now_ns();
	size_t n;
	int fd;

	if (!force && now - v->stats_ns < (uint64_t)NETD_SWEEP_MS * 1000000ull)
		return;
	v->stats_ns = now;
	if (netback_stats_format(&v->eng, text, sizeof(text)) < 0)
		return;
	n = strlen(text);
	snprintf(path, sizeof(path), "%s/netback/%u-%u.txt", d->rundir, v->domid, v->devid);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, text, n) == (ssize_t)n && write(fd, "\n", 1) == 1)
		rename(tmp, path);
	else
		unlink(tmp);
	close(fd);
}

static void netd_connect_ctl(struct netd *d)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &d->w_ctl };

	if (d->ctl.connected || be_ctl_open(&d->ctl, d->rundir) < 0)
		return;
	if (d->buf) {
		munmap(d->buf, NETBACK_BUF_SIZE);
		d->buf = NULL;
	}
	/* The copy buffer belongs to the connection: a new one with each connection. */
	if (ctl_gnt_buffer(&d->ctl.conn, NETBACK_BUF_SIZE, &d->buf) < 0 ||
	    epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->ctl.conn.fd, &ev) < 0) {
		if (!d->buf_warned++)
			be_log("netback: no grant-copy buffer: %s (retrying quietly)", d->ctl.conn.err);
		be_ctl_close(&d->ctl);
		return;
	}
	be_log("netback: connected to lamina-hv in %s", d->rundir);
}

static void netd_connect_store(struct netd *d)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &d->w_store };

	if (d->xs || !d->ctl.connected || xs_client_open_rundir(d->rundir, &d->xs) < 0)
		return;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, xs_client_fd(d->xs), &ev) < 0 ||
	    xs_client_watch(d->xs, NETD_BACKEND_ROOT, "be") < 0) {
		xs_client_close(d->xs);
		d->xs = NULL;
		return;
	}
	be_log("netback: watching " NETD_BACKEND_ROOT);
}

static void netd_lost(struct netd *d, int store)
{
	netd_drop_all(d);
	netd_reap(d);
	if (d->xs) {
		xs_client_close(d->xs);
		d->xs = NULL;
	}
	if (!store)
		be_ctl_close(&d->ctl);
	be_log("netback: lost the %s; every vif disconnected, reconnecting", store ? "store" : "hypervisor");
}

static void netd_store_events(struct netd *d)
{
	char *path, *token;
	int rc;

	while (d->xs && (rc = xs_client_read_watch(d->xs, 0, &path, &token)) == 0) {
		netd_xenbus_event(d, path);
		free(path);
	}
	if (d->xs && rc != -ETIMEDOUT)
		netd_lost(d, 1);
}

static void netd_handle(struct netd *d, struct epoll_event *e)
{
	struct netd_watch *w = e->data.ptr;
	struct signalfd_siginfo si;

	switch (w->kind) {
	case NETD_W_SIGNAL:
		if (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
			be_log("netback: signal %u: exiting", si.ssi_signo);
			d->stop = 1;
		}
		break;
	case NETD_W_CTL:
		if (be_ctl_dispatch(&d->ctl, netd_handlers, sizeof(netd_handlers) / sizeof(netd_handlers[0]), d))
			netd_lost(d, 0);
		break;
	case NETD_W_STORE:
		netd_store_events(d);
		break;
	case NETD_W_TX:
	case NETD_W_RX:
	case NETD_W_TAP:
		if (!w->v->dead)
			netd_vif_service(d, w->v, w->kind);
		break;
	}
}

static int netd_run(struct netd *d)
{
	struct epoll_event evs[NETD_MAX_EVENTS];
	uint64_t now;

	while (!d->stop) {
		int busy = 0, n;

		for (struct netd_vif *v = d->vifs; v && !busy; v = v->next)
			busy = v->busy && v->connected && !v->dead;
		n = epoll_wait(d->epfd, evs, NETD_MAX_EVENTS, busy ? 0 : NETD_SWEEP_MS);

		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n && !d->stop; i++)
			netd_handle(d, &evs[i]);
		if (d->xs)
			netd_store_events(d);
		/* Vifs that had more work than one turn's budget: round-robin, one turn each. */
		for (struct netd_vif *v = d->vifs; v; v = v->next)
			if (v->busy && v->connected && !v->dead)
				netd_vif_service(d, v, NETD_W_SIGNAL);
		netd_reap(d);
		now = be_now_ns();
		if (now - d->last_sweep_ns < (uint64_t)NETD_SWEEP_MS * 1000000ull)
			continue;
		/* The sweep: reconnect what was lost, catch a kick missed by a race, drop frames a
		 * guest left without rx buffers too long. */
		d->last_sweep_ns = now;
		netd_connect_ctl(d);
		netd_connect_store(d);
		for (struct netd_vif *v = d->vifs; v; v = v->next) {
			if (v->dead || !v->connected)
				continue;
			netback_vif_rx_stall(&v->eng, NETD_RX_STALL_MS);
			netd_vif_service(d, v, NETD_W_SIGNAL);
		}
	}
	return 0;
}

static int netd_setup(struct netd *d)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &d->w_signal };
	char dir[4096];
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->sigfd < 0 || d->epfd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &ev) < 0)
		return -errno;
	snprintf(dir, sizeof(dir), "%s/netback", d->rundir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rundir", required_argument, NULL, 'r' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct netd d = { .epfd = -1, .sigfd = -1 };
	const char *rundir = NULL, *pidfile = NULL;
	FILE *pf;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rundir = optarg; break;
		case 'p': pidfile = optarg; break;
		case 'h': netd_usage(stdout); return 0;
		default: netd_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		netd_usage(stderr);
		return 2;
	}
	d.rundir = ctl_rundir(rundir);
	d.w_signal.kind = NETD_W_SIGNAL;
	d.w_ctl.kind = NETD_W_CTL;
	d.w_store.kind = NETD_W_STORE;
	if (pidfile) {
		pf = fopen(pidfile, "we");
		if (!pf) {
			fprintf(stderr, "lamina-netback: %s: %s\n", pidfile, strerror(errno));
			return 1;
		}
		fprintf(pf, "%ld\n", (long)getpid());
		fclose(pf);
	}
	rc = netd_setup(&d);
	if (rc == 0) {
		netd_connect_ctl(&d);
		netd_connect_store(&d);
		d.last_sweep_ns = be_now_ns();
		rc = netd_run(&d);
	} else {
		fprintf(stderr, "lamina-netback: setup: %s\n", strerror(-rc));
	}
	netd_drop_all(&d);
	netd_reap(&d);
	if (d.xs)
		xs_client_close(d.xs);
	be_ctl_close(&d.ctl);
	if (d.buf)
		munmap(d.buf, NETBACK_BUF_SIZE);
	if (d.epfd >= 0)
		close(d.epfd);
	if (d.sigfd >= 0)
		close(d.sigfd);
	if (pidfile)
		unlink(pidfile);
	return rc ? 1 : 0;
}
