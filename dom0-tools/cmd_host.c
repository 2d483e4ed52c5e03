/* `domctl host start|stop|status`: bring the host daemons up in order (lamina-hv first, each
 * waited for), take them down (domains first, through HOST_STOP) and report on them. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_net.h"
#include "domctl.h"

#define DOMCTL_HV_START_MS 5000
#define DOMCTL_DAEMON_START_MS 5000
#define DOMCTL_HV_STOP_MS 15000
#define DOMCTL_DAEMON_STOP_MS 3000

/* mkdir -p, the last component with mode. */
static int domctl_mkdirs(const char *dir, mode_t mode)
{
	char path[4096];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int domctl_hv_answers(const char *rundir)
{
	return domctl_wait_hello(rundir, 0, 0) == 0;
}

static int domctl_make_rundir(const char *rundir)
{
	static const char *const subdirs[] = {"console", "domains", "xenstored"};
	char path[4096];
	int r = domctl_mkdirs(rundir, 0700);

	if (r) {
		domctl_err("cannot create %s: %s", rundir, strerror(-r));
		return r;
	}
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", rundir, subdirs[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			r = -errno;
			domctl_err("cannot create %s: %s", path, strerror(-r));
			return r;
		}
	}
	return 0;
}

int domctl_cmd_host_start(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = {"--bridge", NULL};
	char err[1024], path[4096];
	const char *pos[1];
	int set[1] = {0}, npos, failed = 0, r;

	if (domctl_args(ctx, argc, argv, flags, set, NULL, NULL, pos, 0, &npos))
		return DOMCTL_EXIT_USAGE;
	/* --bridge: the default bridge lambr0 (10.213.0.1/24, never forwarding) in this network
	 * namespace; lamina-netback then puts the vifs of <interface> without a bridge on it. */
	if (set[0]) {
		r = domctl_net_default_bridge();
		if (r) {
			domctl_err("cannot set up bridge %s: %s", DOMCTL_NET_BRIDGE, strerror(-r));
			return DOMCTL_EXIT_ERROR;
		}
		printf("bridge %s up at %s/24 (no forwarding)\n", DOMCTL_NET_BRIDGE, DOMCTL_NET_BRIDGE_ADDR);
	}
	if (domctl_make_rundir(ctx->rundir))
		return DOMCTL_EXIT_ERROR;
	if (domctl_hv_answers(ctx->rundir)) {
		printf("host already running in %s (lamina-hv pid %ld)\n", ctx->rundir,
		       domctl_daemon_pid(ctx->rundir, &domctl_daemons[0]));
	} else {
		/* Nothing answers: whatever socket is left is stale and would make bind() fail. */
		snprintf(path, sizeof(path), "%s/%s", ctx->rundir, LAMINA_CTL_SOCKET);
		unlink(path);
		r = domctl_daemon_start(ctx->rundir, &domctl_daemons[0], DOMCTL_HV_START_MS, err,
					sizeof(err));
		if (r == -ENOENT) {
			domctl_daemon_path(&domctl_daemons[0], path, sizeof(path));
			domctl_err("%s: not found (build Lamina, or set LAMINA_HV)", path);
			return DOMCTL_EXIT_ERROR;
		}
		if (r) {
			domctl_err("%s", err);
			return DOMCTL_EXIT_ERROR;
		}
		printf("lamina-hv started (pid %ld), run directory %s\n",
		       domctl_daemon_pid(ctx->rundir, &domctl_daemons[0]), ctx->rundir);
	}
	for (size_t i = 1; i < domctl_ndaemons; i++) {
		const struct domctl_daemon *d = &domctl_daemons[i];

		if (domctl_daemon_pid(ctx->rundir, d))
			continue;
		r = domctl_daemon_start(ctx->rundir, d, DOMCTL_DAEMON_START_MS, err, sizeof(err));
		if (r == -ENOENT)
			continue; /* not built yet: the host runs without it */
		if (r) {
			domctl_err("%s", err);
			failed = 1;
			continue;
		}
		printf("%s started (pid %ld)\n", d->name, domctl_daemon_pid(ctx->rundir, d));
	}
	return failed ? DOMCTL_EXIT_ERROR : DOMCTL_EXIT_OK;
}

/* Domains are gone with the hypervisor: so is the toolstack's state about them. */
static void domctl_clear_state(const char *rundir)
{
	char dir[4096], path[8192];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/domains", rundir);
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (len > 5 && !strcmp(e->d_name + len - 5, ".json")) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	}
	closedir(d);
}

int domctl_cmd_host_stop(struct domctl_ctx *ctx, int argc, char **argv)
{
	const struct domctl_daemon *hv = &domctl_daemons[0];
	struct ctl_conn conn;
	const char *pos[1];
	long pid;
	int npos, any = 0, failed = 0;

	if (domctl_args(ctx, argc, argv, NULL, NULL, NULL, NULL, pos, 0, &npos))
		return DOMCTL_EXIT_USAGE;
	pid = domctl_daemon_pid(ctx->rundir, hv);
	if (ctl_connect(&conn, ctx->rundir) == 0) {
		struct lamina_ctl_hostinfo hi;

		any = 1;
		if (pid <= 0 && ctl_host_info(&conn, &hi) == 0)
			pid = hi.pid;
		conn.timeout_ms = DOMCTL_HV_STOP_MS;
		/* The daemon may close the socket as it exits instead of answering: that is success. */
		if (ctl_host_stop(&conn) && pid <= 0)
			domctl_err("%s", conn.err);
		ctl_close(&conn);
	}
	if (pid > 0) {
		any = 1;
		/* lamina-hv removes its own pid file before its last teardown: wait for the process. */
		if (domctl_pid_gone(pid, DOMCTL_HV_STOP_MS) && domctl_pid_kill(pid, DOMCTL_DAEMON_STOP_MS)) {
			domctl_err("lamina-hv (pid %ld) would not exit", pid);
			failed = 1;
		}
	}
	if (!failed && domctl_daemon_stop(ctx->rundir, hv, DOMCTL_DAEMON_STOP_MS))
		failed = 1;
	for (size_t i = domctl_ndaemons; i-- > 1;) {
		long p = domctl_daemon_pid(ctx->rundir, &domctl_daemons[i]);

		any |= p > 0;
		if (domctl_daemon_stop(ctx->rundir, &domctl_daemons[i], DOMCTL_DAEMON_STOP_MS)) {
			domctl_err("%s (pid %ld) would not exit", domctl_daemons[i].name, p);
			failed = 1;
		}
	}
	domctl_clear_state(ctx->rundir);
	if (failed)
		return DOMCTL_EXIT_ERROR;
	printf(any ? "host stopped\n" : "host was not running\n");
	return DOMCTL_EXIT_OK;
}

static void domctl_status_json(const char *rundir, const long *pids, const int *installed,
			       const struct lamina_ctl_hostinfo *hi, int hv_ok)
{
	const unsigned char *buf;
	size_t len;
	yajl_gen g = yajl_gen_alloc(NULL);

	if (!g)
		return;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_indent_string, "  ");
	yajl_gen_map_open(g);
	yajl_gen_string(g, (const unsigned char *)"rundir", 6);
	yajl_gen_string(g, (const unsigned char *)rundir, strlen(rundir));
	yajl_gen_string(g, (const unsigned char *)"daemons", 7);
	yajl_gen_array_open(g);
	for (size_t i = 0; i < domctl_ndaemons; i++) {
		const char *name = domctl_daemons[i].name;

		yajl_gen_map_open(g);
		yajl_gen_string(g, (const unsigned char *)"name", 4);
		yajl_gen_string(g, (const unsigned char *)name, strlen(name));
		yajl_gen_string(g, (const unsigned char *)"installed", 9);
		yajl_gen_bool(g, installed[i]);
		yajl_gen_string(g, (const unsigned char *)"running", 7);
		yajl_gen_bool(g, pids[i] > 0);
		if (pids[i] > 0) {
			yajl_gen_string(g, (const unsigned char *)"pid", 3);
			yajl_gen_integer(g, pids[i]);
			yajl_gen_string(g, (const unsigned char *)"uptime_s", 8);
			yajl_gen_integer(g, i == 0 && hv_ok ? (long long)(hi->uptime_ns / 1000000000ull)
							    : domctl_proc_uptime(pids[i]));
		}
		if (i == 0 && hv_ok) {
			yajl_gen_string(g, (const unsigned char *)"domains", 7);
			yajl_gen_integer(g, hi->nr_domains);
			yajl_gen_string(g, (const unsigned char *)"total_memory_kib", 16);
			yajl_gen_integer(g, (long long)hi->total_memory_kib);
		}
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
		printf("%.*s\n", (int)len, (const char *)buf);
	yajl_gen_free(g);
}

int domctl_cmd_host_status(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = {"--json", NULL};
	struct lamina_ctl_hostinfo hi = {0};
	long pids[DOMCTL_MAX_DAEMONS] = {0};
	int installed[DOMCTL_MAX_DAEMONS] = {0};
	int set[1] = {0}, npos, hv_ok = 0;
	struct ctl_conn conn;
	const char *pos[1];
	char path[4096];

	if (domctl_args(ctx, argc, argv, flags, set, NULL, NULL, pos, 0, &npos))
		return DOMCTL_EXIT_USAGE;
	for (size_t i = 0; i < domctl_ndaemons; i++) {
		pids[i] = domctl_daemon_pid(ctx->rundir, &domctl_daemons[i]);
		installed[i] = domctl_daemon_path(&domctl_daemons[i], path, sizeof(path)) == 0 &&
			       access(path, X_OK) == 0;
	}
	if (ctl_connect(&conn, ctx->rundir) == 0) {
		hv_ok = ctl_host_info(&conn, &hi) == 0;
		ctl_close(&conn);
		if (hv_ok && pids[0] <= 0)
			pids[0] = hi.pid;
	}
	if (set[0]) {
		domctl_status_json(ctx->rundir, pids, installed, &hi, hv_ok);
		return pids[0] > 0 ? DOMCTL_EXIT_OK : DOMCTL_EXIT_ERROR;
	}
	printf("run directory %s\n", ctx->rundir);
	for (size_t i = 0; i < domctl_ndaemons; i++) {
		printf("%-18s ", domctl_daemons[i].name);
		if (pids[i] <= 0) {
			printf("%s\n", installed[i] ? "not running" : "not installed");
			continue;
		}
		printf("running  pid %-7ld up %lds", pids[i],
		       i == 0 && hv_ok ? (long)(hi.uptime_ns / 1000000000ull) : domctl_proc_uptime(pids[i]));
		if (i == 0 && hv_ok)
			printf("  domains %u  guest memory %llu MiB", hi.nr_domains,
			       (unsigned long long)(hi.total_memory_kib / 1024));
		else if (i == 0)
			printf("  (not answering on %s)", LAMINA_CTL_SOCKET);
		printf("\n");
	}
	return pids[0] > 0 ? DOMCTL_EXIT_OK : DOMCTL_EXIT_ERROR;
}
