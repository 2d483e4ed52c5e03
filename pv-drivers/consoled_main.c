/* lamina-consoled's entry point: options, pid file, the attach socket, the subscribed control
 * connection (reconnected when lamina-hv comes back), and the single-threaded epoll loop with a
 * once-a-second sweep that catches any lost ring event. SIGTERM and SIGINT end it cleanly. */
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

#include "consoled.h"

#define CONSOLED_MAX_EVENTS 64

static const struct be_event_handler consoled_handlers[] = {
    {LAMINA_EV_CREATED, "created", consoled_on_created},
    {LAMINA_EV_STOPPED, "stopped", consoled_on_stopped},
    {LAMINA_EV_DESTROYED, "destroyed", consoled_on_destroyed},
    {LAMINA_EV_RESTARTED, "restarted", consoled_on_restarted},
};

static void consoled_usage(FILE *f)
{
	fprintf(f,
		"usage: lamina-consoled [--rundir DIR] [--pid-file FILE] [--log-size BYTES]\n"
		"\n"
		"The PV console back-end: copies each domain's console ring to DIR/console/NAME.log\n"
		"(rotated to NAME.log.1 past BYTES, default %u) and serves interactive attach\n"
		"clients (domctl console NAME) on DIR/%s.\n",
		CONSOLED_LOG_MAX_DEFAULT, CONSOLED_SOCKET);
}

static int consoled_pidfile(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), r;

	if (fd < 0)
		return -errno;
	r = dprintf(fd, "%ld\n", (long)getpid()) < 0 ? -EIO : 0;
	close(fd);
	return r;
}

/* Each domain costs a log file and two eventfds: allow as many descriptors as the hard limit. */
static void consoled_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* (Re)connect to lamina-hv. The subscription replays every live domain as CREATED. */
static void consoled_connect(struct consoled *cd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cd->ctl_w};
	int err;

	err = be_ctl_open(&cd->ctl, cd->rundir);
	if (err) {
		if (!cd->ctl_warned)
			be_log("cannot reach lamina-hv (%s); retrying every %d ms", cd->ctl.conn.err,
			       CONSOLED_SWEEP_MS);
		cd->ctl_warned = 1;
		return;
	}
	cd->ctl_warned = 0;
	if (epoll_ctl(cd->epfd, EPOLL_CTL_ADD, cd->ctl.conn.fd, &ev) < 0) {
		be_log("epoll: %s", strerror(errno));
		be_ctl_close(&cd->ctl);
		return;
	}
	be_log("connected to lamina-hv in %s", cd->rundir);
}

static void consoled_ctl_lost(struct consoled *cd)
{
	consoled_dom_drop_all(cd);
	be_ctl_close(&cd->ctl);
	consoled_clients_reap(cd);
	consoled_dom_reap(cd);
}

static void consoled_dispatch(struct consoled *cd)
{
	if (!cd->ctl.connected)
		return;
	/* A call made while handling one event may queue others: drain until none is left. */
	do {
		if (be_ctl_dispatch(&cd->ctl, consoled_handlers,
				    sizeof(consoled_handlers) / sizeof(consoled_handlers[0]), cd)) {
			consoled_ctl_lost(cd);
			return;
		}
	} while (ctl_event_pending(&cd->ctl.conn));
}

static void consoled_sweep(struct consoled *cd)
{
	uint64_t now = be_now_ns();

	if (now - cd->last_sweep_ns < (uint64_t)CONSOLED_SWEEP_MS * 1000000ull)
		return;
	cd->last_sweep_ns = now;
	if (!cd->ctl.connected) {
		consoled_connect(cd);
		consoled_dispatch(cd);
		return;
	}
	for (struct consoled_dom *d = cd->doms; d; d = d->next)
		consoled_dom_service(cd, d);
}

static void consoled_handle(struct consoled *cd, struct epoll_event *e)
{
	struct consoled_watch *w = e->data.ptr;
	struct signalfd_siginfo si;

	switch (w->kind) {
	case CONSOLED_W_SIGNAL:
		if (read(cd->sigfd, &si, sizeof(si)) == sizeof(si)) {
			be_log("signal %u: exiting", si.ssi_signo);
			cd->stop = 1;
		}
		break;
	case CONSOLED_W_CTL:
		consoled_dispatch(cd);
		break;
	case CONSOLED_W_LISTEN:
		consoled_accept(cd);
		break;
	case CONSOLED_W_RING:
		consoled_dom_service(cd, (struct consoled_dom *)w);
		break;
	case CONSOLED_W_CLIENT:
		consoled_client_event(cd, (struct consoled_client *)w, e->events);
		break;
	}
}

static int consoled_run(struct consoled *cd)
{
	struct epoll_event evs[CONSOLED_MAX_EVENTS];

	while (!cd->stop) {
		int n = epoll_wait(cd->epfd, evs, CONSOLED_MAX_EVENTS, CONSOLED_SWEEP_MS);

		if (n < 0 && errno != EINTR) {
			be_log("epoll_wait: %s", strerror(errno));
			return -errno;
		}
		for (int i = 0; i < n && !cd->stop; i++) {
			/* Domains and clients closed by an earlier event of this batch are only
			 * freed after it, so every pointer in evs[] stays valid. */
			consoled_handle(cd, &evs[i]);
			if (cd->ctl.connected && ctl_event_pending(&cd->ctl.conn))
				consoled_dispatch(cd);
		}
		consoled_clients_reap(cd);
		consoled_dom_reap(cd);
		consoled_sweep(cd);
	}
	return 0;
}

static int consoled_setup(struct consoled *cd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cd->sig_w};
	char dir[4096];
	sigset_t set;
	int err;

	snprintf(dir, sizeof(dir), "%s/console", cd->rundir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return be_log("cannot create %s: %s", dir, strerror(errno)), -errno;
	cd->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cd->epfd < 0)
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	cd->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	cd->sig_w.kind = CONSOLED_W_SIGNAL;
	cd->ctl_w.kind = CONSOLED_W_CTL;
	if (cd->sigfd < 0 || epoll_ctl(cd->epfd, EPOLL_CTL_ADD, cd->sigfd, &ev) < 0)
		return -errno;
	err = consoled_listen(cd);
	if (err) {
		be_log("cannot listen on %s/%s: %s", cd->rundir, CONSOLED_SOCKET, strerror(-err));
		return err;
	}
	return 0;
}

static void consoled_teardown(struct consoled *cd)
{
	char path[4096];

	consoled_clients_free(cd);
	consoled_dom_drop_all(cd);
	consoled_dom_reap(cd);
	be_ctl_close(&cd->ctl);
	if (cd->listen_fd >= 0) {
		close(cd->listen_fd);
		snprintf(path, sizeof(path), "%s/%s", cd->rundir, CONSOLED_SOCKET);
		unlink(path);
	}
	if (cd->sigfd >= 0)
		close(cd->sigfd);
	if (cd->epfd >= 0)
		close(cd->epfd);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"rundir", required_argument, NULL, 'r'},
	    {"pid-file", required_argument, NULL, 'p'},
	    {"log-size", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct consoled cd = {.epfd = -1, .sigfd = -1, .listen_fd = -1, .log_max = CONSOLED_LOG_MAX_DEFAULT};
	const char *rundir = NULL, *pidfile = NULL;
	char *end;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			rundir = optarg;
			break;
		case 'p':
			pidfile = optarg;
			break;
		case 's':
			errno = 0;
			cd.log_max = strtoull(optarg, &end, 10);
			if (errno || *end || cd.log_max < 4096) {
				fprintf(stderr,
					"lamina-consoled: --log-size needs a number of bytes >= 4096\n");
				return 2;
			}
			break;
		case 'h':
			consoled_usage(stdout);
			return 0;
		default:
			consoled_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		consoled_usage(stderr);
		return 2;
	}
	cd.rundir = ctl_rundir(rundir);
	umask(077); /* the socket and the logs are root's alone from the start, not after a chmod */
	consoled_raise_nofile();
	if (pidfile && (rc = consoled_pidfile(pidfile))) {
		fprintf(stderr, "lamina-consoled: %s: %s\n", pidfile, strerror(-rc));
		return 1;
	}
	rc = consoled_setup(&cd);
	if (!rc) {
		be_log("serving %s/%s (log cap %llu bytes)", cd.rundir, CONSOLED_SOCKET,
		       (unsigned long long)cd.log_max);
		consoled_connect(&cd);
		consoled_dispatch(&cd);
		cd.last_sweep_ns = be_now_ns();
		rc = consoled_run(&cd);
	}
	consoled_teardown(&cd);
	if (pidfile)
		unlink(pidfile);
	return rc ? 1 : 0;
}
