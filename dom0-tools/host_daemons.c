/* The host daemons domctl starts and stops: one table row each, started detached with their
 * output in the run directory, found again through pid files, stopped TERM-then-KILL. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "domctl.h"

#ifndef LAMINA_SBINDIR
#define LAMINA_SBINDIR "/usr/local/sbin"
#endif

/* Sockets of the later back-ends are NULL until those daemons define them: such a daemon counts
 * as started once it has stayed up briefly. */
const struct domctl_daemon domctl_daemons[] = {
    {"lamina-hv", "LAMINA_HV", LAMINA_CTL_SOCKET, "hv.log", "hv.pid"},
    {"lamina-xenstored", "LAMINA_XENSTORED", "xenstored/socket", "xenstored.log", "lamina-xenstored.pid"},
    {"lamina-consoled", "LAMINA_CONSOLED", "consoled.sock", "consoled.log", "lamina-consoled.pid"},
    {"lamina-blkback", "LAMINA_BLKBACK", NULL, "blkback.log", "lamina-blkback.pid"},
    {"lamina-netback", "LAMINA_NETBACK", NULL, "netback.log", "lamina-netback.pid"},
};
const size_t domctl_ndaemons = sizeof(domctl_daemons) / sizeof(domctl_daemons[0]);
_Static_assert(sizeof(domctl_daemons) / sizeof(domctl_daemons[0]) <= DOMCTL_MAX_DAEMONS,
	       "daemon table bound");

int domctl_daemon_path(const struct domctl_daemon *d, char *out, size_t size)
{
	const char *env = getenv(d->env);
	int n;

	if (env && *env)
		n = snprintf(out, size, "%s", env);
	else
		n = snprintf(out, size, "%s/%s", LAMINA_SBINDIR, d->name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int domctl_pidfile(const char *rundir, const struct domctl_daemon *d, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/%s", rundir, d->pidname);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Alive and not a zombie waiting for a reaper. */
int domctl_alive(long pid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	if (pid <= 0 || kill((pid_t)pid, 0) < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

/* A stale pid file may name a recycled pid: the process must mention the daemon's name in its
 * command line (argv[0] as domctl starts it, or the path a wrapper such as valgrind runs). */
static int domctl_is_daemon(long pid, const struct domctl_daemon *d)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return strstr(buf, d->name) != NULL;
}

long domctl_daemon_pid(const char *rundir, const struct domctl_daemon *d)
{
	char path[4096], buf[32];
	ssize_t n;
	long pid;
	int fd;

	if (domctl_pidfile(rundir, d, path, sizeof(path)))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, NULL, 10);
	return domctl_alive(pid) && domctl_is_daemon(pid, d) ? pid : 0;
}

long domctl_proc_uptime(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	double up;
	FILE *f;
	int field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	p = strrchr(buf, ')');
	/* starttime is field 22; field 3 (state) follows the ')'. */
	for (field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &start) != 1)
		return -1;
	f = fopen("/proc/uptime", "re");
	if (!f)
		return -1;
	if (fscanf(f, "%lf", &up) != 1)
		up = -1;
	fclose(f);
	if (up < 0)
		return -1;
	return (long)(up - (double)start / (double)sysconf(_SC_CLK_TCK));
}

static void domctl_exec_child(const char *rundir, const struct domctl_daemon *d, const char *bin, int logfd)
{
	int null = open("/dev/null", O_RDWR);

	if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(logfd, STDOUT_FILENO) < 0 ||
	    dup2(logfd, STDERR_FILENO) < 0)
		_exit(127);
	if (chdir("/") < 0)
		_exit(127);
	setenv("LAMINA_RUNDIR", rundir, 1);
	execl(bin, d->name, "--rundir", rundir, (char *)NULL);
	dprintf(STDERR_FILENO, "domctl: cannot run %s: %s\n", bin, strerror(errno));
	_exit(127);
}

/* Double fork: the daemon is re-parented away from domctl and has its own session. Returns
 * the daemon's pid or -errno. */
static long domctl_spawn(const char *rundir, const struct domctl_daemon *d, const char *bin, int logfd)
{
	int pfd[2], status;
	long pid = -1;
	pid_t mid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	mid = fork();
	if (mid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (mid == 0) {
		pid_t child;

		setsid();
		child = fork();
		if (child == 0)
			domctl_exec_child(rundir, d, bin, logfd);
		pid = child;
		if (write(pfd[1], &pid, sizeof(pid)) != sizeof(pid))
			_exit(1);
		_exit(child < 0);
	}
	close(pfd[1]);
	if (read(pfd[0], &pid, sizeof(pid)) != sizeof(pid))
		pid = -1;
	close(pfd[0]);
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	return pid > 0 ? pid : -ECHILD;
}

static int domctl_write_pidfile(const char *rundir, const struct domctl_daemon *d, long pid)
{
	char path[4096];
	int fd, r = domctl_pidfile(rundir, d, path, sizeof(path));

	if (r)
		return r;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = dprintf(fd, "%ld\n", pid) < 0 ? -EIO : 0;
	close(fd);
	return r;
}

static int domctl_socket_ready(const char *rundir, const char *sock)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", rundir, sock);
	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int domctl_daemon_start(const char *rundir, const struct domctl_daemon *d, int timeout_ms, char *err,
			size_t errlen)
{
	char bin[4096], log[4096];
	long pid;
	int logfd, waited, r = 0;

	if (domctl_daemon_path(d, bin, sizeof(bin)) < 0)
		return snprintf(err, errlen, "%s: binary path too long", d->name), -ENAMETOOLONG;
	if (access(bin, X_OK) < 0)
		return -ENOENT;
	snprintf(log, sizeof(log), "%s/%s", rundir, d->logname);
	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return r = -errno, snprintf(err, errlen, "%s: %s", log, strerror(-r)), r;
	pid = domctl_spawn(rundir, d, bin, logfd);
	close(logfd);
	if (pid < 0)
		return snprintf(err, errlen, "%s: cannot start: %s", d->name, strerror((int)-pid)), (int)pid;
	r = domctl_write_pidfile(rundir, d, pid);
	if (r)
		return snprintf(err, errlen, "%s: cannot write its pid file: %s", d->name, strerror(-r)), r;
	if (!strcmp(d->name, "lamina-hv")) {
		r = domctl_wait_hello(rundir, pid, timeout_ms);
	} else {
		for (waited = 0;; waited += 10) {
			if (!domctl_alive(pid)) {
				r = -ESRCH;
				break;
			}
			if (d->socket ? domctl_socket_ready(rundir, d->socket) : waited >= 50)
				break;
			if (waited >= timeout_ms) {
				r = -ETIMEDOUT;
				break;
			}
			domctl_sleep_ms(10);
		}
	}
	if (r == -ESRCH)
		snprintf(err, errlen, "%s exited during start-up; see %s", d->name, log);
	else if (r == -ETIMEDOUT)
		snprintf(err, errlen, "%s did not become ready within %d ms; see %s", d->name, timeout_ms,
			 log);
	if (r && domctl_alive(pid)) {
		kill((pid_t)pid, SIGKILL);
		for (int i = 0; i < 200 && domctl_alive(pid); i++)
			domctl_sleep_ms(10);
	}
	if (r && !domctl_pidfile(rundir, d, log, sizeof(log)))
		unlink(log);
	return r;
}

int domctl_pid_gone(long pid, int timeout_ms)
{
	for (int waited = 0; domctl_alive(pid); waited += 10) {
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
		domctl_sleep_ms(10);
	}
	return 0;
}

int domctl_pid_kill(long pid, int timeout_ms)
{
	if (!domctl_alive(pid))
		return 0;
	kill((pid_t)pid, SIGTERM);
	if (domctl_pid_gone(pid, timeout_ms) == 0)
		return 0;
	kill((pid_t)pid, SIGKILL);
	return domctl_pid_gone(pid, 5000) ? -EBUSY : 0;
}

int domctl_daemon_stop(const char *rundir, const struct domctl_daemon *d, int timeout_ms)
{
	char path[4096];
	long pid = domctl_daemon_pid(rundir, d);
	int r = pid > 0 ? domctl_pid_kill(pid, timeout_ms) : 0;

	if (!r) {
		if (!domctl_pidfile(rundir, d, path, sizeof(path)))
			unlink(path);
		if (d->socket && snprintf(path, sizeof(path), "%s/%s", rundir, d->socket) < (int)sizeof(path))
			unlink(path);
	}
	return r;
}

int domctl_wait_hello(const char *rundir, long pid, int timeout_ms)
{
	struct lamina_ctl_hello hello;
	struct ctl_conn conn;
	struct timespec t0, now;
	long elapsed;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (pid > 0 && !domctl_alive(pid))
			return -ESRCH;
		if (ctl_connect(&conn, rundir) == 0) {
			int r;

			conn.timeout_ms = 500;
			r = ctl_hello(&conn, &hello);
			ctl_close(&conn);
			if (r == 0)
				return 0;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (elapsed >= timeout_ms)
			return -ETIMEDOUT;
		domctl_sleep_ms(10);
	}
}
