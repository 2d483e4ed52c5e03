/* lamina-hv: the daemon that owns every domain. Parses its options, prepares the run directory
 * (pid file, console/ and dump/ directories, hv.sock), raises the descriptor limit, then serves
 * the control socket until HOST_STOP or SIGTERM, destroying every domain on the way out. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_server.h"
#include "hv.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: lamina-hv [--rundir DIR] [--log FILE]\n"
		   "  DIR defaults to $LAMINA_RUNDIR, then /run/lamina; the log to DIR/hv.log\n");
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t i, n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		buf[i] = 0;
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = path[i];
	}
	return 0;
}

static int write_pidfile(const char *rundir)
{
	char path[PATH_MAX], line[32];
	int fd, n;

	snprintf(path, sizeof(path), "%s/hv.pid", rundir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	n = snprintf(line, sizeof(line), "%d\n", (int)getpid());
	if (write(fd, line, (size_t)n) != n) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"rundir", required_argument, NULL, 'r'},
	    {"log", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *rundir = getenv("LAMINA_RUNDIR"), *logpath = NULL;
	char logbuf[PATH_MAX], sub[PATH_MAX];
	struct ctl_server srv;
	struct hv *hv;
	sigset_t set;
	int c, rc, lfd, sfd;

	while ((c = getopt_long(argc, argv, "r:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			rundir = optarg;
			break;
		case 'l':
			logpath = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!rundir || !*rundir)
		rundir = "/run/lamina";
	rc = mkdir_p(rundir, 0700);
	if (rc == 0) {
		snprintf(sub, sizeof(sub), "%s/console", rundir);
		rc = mkdir_p(sub, 0700);
	}
	if (rc < 0) {
		fprintf(stderr, "lamina-hv: %s: %s\n", rundir, strerror(-rc));
		return 1;
	}
	if (!logpath) {
		snprintf(logbuf, sizeof(logbuf), "%s/hv.log", rundir);
		logpath = logbuf;
	}
	raise_nofile();
	/* Termination signals arrive through signalfd; every thread inherits them blocked. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, SIGPIPE);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	hv = calloc(1, sizeof(*hv));
	if (sfd < 0 || !hv) {
		fprintf(stderr, "lamina-hv: start-up: %s\n", strerror(errno));
		return 1;
	}
	rc = hv_init(hv, rundir, logpath, &kvm_runner_ops);
	if (rc < 0) {
		fprintf(stderr, "lamina-hv: %s: %s\n", logpath, strerror(-rc));
		return 1;
	}
	rc = ctl_listen(rundir, &lfd);
	if (rc < 0) {
		hv_log(&hv->log, "cannot listen on %s/%s: %s", rundir, LAMINA_CTL_SOCKET, strerror(-rc));
		fprintf(stderr, "lamina-hv: %s/%s: %s\n", rundir, LAMINA_CTL_SOCKET, strerror(-rc));
		hv_fini(hv);
		return 1;
	}
	rc = ctl_server_init(&srv, hv, lfd, sfd);
	if (rc == 0)
		rc = write_pidfile(rundir);
	if (rc < 0) {
		fprintf(stderr, "lamina-hv: start-up: %s\n", strerror(-rc));
		hv_fini(hv);
		return 1;
	}
	hv_log(&hv->log, "lamina-hv %d serving %s/%s (backend %s)", (int)getpid(), rundir, LAMINA_CTL_SOCKET,
	       hv->rctx ? hv->rops->name : "none");
	rc = ctl_server_run(&srv);
	if (rc < 0)
		hv_log(&hv->log, "main loop failed: %s", strerror(-rc));
	snprintf(sub, sizeof(sub), "%s/%s", rundir, LAMINA_CTL_SOCKET);
	unlink(sub);
	close(lfd);
	ctl_server_fini(&srv);
	hv_fini(hv);
	snprintf(sub, sizeof(sub), "%s/hv.pid", rundir);
	unlink(sub);
	free(hv);
	close(sfd);
	return rc < 0 ? 1 : 0;
}
