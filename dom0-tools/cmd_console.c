/* `domctl console`: attach to a domain's console through lamina-consoled (console_attach.c), or
 * its output from $RUNDIR/console/NAME.log: what is there so far (--dump), or followed as it
 * grows until the domain stops when consoled is not running. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domctl.h"
#include "domcfg.h"

#define DOMCTL_FOLLOW_POLL_MS 50

static int domctl_console_path(const struct domctl_ctx *ctx, const char *name, char *out, size_t size)
{
	char why[DOMCFG_ERR_MAX];
	int n;

	if (domcfg_check_name(name, why, sizeof(why))) {
		domctl_err("%s", why);
		return -EINVAL;
	}
	n = snprintf(out, size, "%s/console/%s.log", ctx->rundir, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Copy whatever the log gained since the last call; opens it once it exists. */
static int domctl_console_pump(const char *path, int *fd)
{
	char buf[16384];
	ssize_t n;

	if (*fd < 0) {
		*fd = open(path, O_RDONLY | O_CLOEXEC);
		if (*fd < 0)
			return errno == ENOENT ? 0 : -errno;
	}
	while ((n = read(*fd, buf, sizeof(buf))) > 0)
		if (write(STDOUT_FILENO, buf, (size_t)n) != n)
			return -EIO;
	return n < 0 && errno != EINTR ? -errno : 0;
}

int domctl_console_follow(const struct domctl_ctx *ctx, struct ctl_conn *conn, const char *name)
{
	struct lamina_ctl_domref ref;
	struct lamina_ctl_dominfo info;
	char path[4096];
	int fd = -1, r;

	if (domctl_console_path(ctx, name, path, sizeof(path)) || ctl_domref_parse(&ref, name))
		return DOMCTL_EXIT_ERROR;
	fflush(stdout);
	for (;;) {
		int alive;

		r = ctl_info(conn, &ref, &info);
		alive = r == 0 && (info.state == LAMINA_DOM_RUNNING || info.state == LAMINA_DOM_PAUSED);
		if (domctl_console_pump(path, &fd) < 0)
			break;
		if (!alive)
			break;
		domctl_sleep_ms(DOMCTL_FOLLOW_POLL_MS);
	}
	domctl_console_pump(path, &fd);
	if (fd >= 0)
		close(fd);
	if (r && r != -ENOENT && r != -ESRCH) {
		domctl_err("%s: %s", name, conn->err);
		return DOMCTL_EXIT_ERROR;
	}
	return DOMCTL_EXIT_OK;
}

int domctl_cmd_console(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = {"--dump", "--ro", NULL};
	static const char *const vflags[] = {"--linger", NULL};
	const char *values[1] = {NULL};
	struct lamina_ctl_domref ref;
	char name[LAMINA_NAME_MAX], path[4096], *end;
	struct ctl_conn conn;
	const char *pos[1];
	int set[2] = {0, 0}, npos, r, rc;
	long linger = DOMCTL_CONSOLE_LINGER_MS;

	if (domctl_args(ctx, argc, argv, flags, set, vflags, values, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1)
		return domctl_usage(ctx);
	if (values[0]) {
		linger = strtol(values[0], &end, 10);
		if (*end || end == values[0] || linger < 0 || linger > 3600000) {
			domctl_err("console: --linger takes milliseconds (0 to 3600000)");
			return DOMCTL_EXIT_USAGE;
		}
	}
	if (ctl_domref_parse(&ref, pos[0]) < 0) {
		domctl_err("'%s' is neither a domain name nor an id", pos[0]);
		return DOMCTL_EXIT_USAGE;
	}
	/* By name, the log stays readable after the domain (or the host) is gone. */
	if (set[0] && ref.domid == LAMINA_DOMID_BY_NAME) {
		if (domctl_console_path(ctx, ref.name, path, sizeof(path)))
			return DOMCTL_EXIT_ERROR;
		domctl_console_flush(ctx, ref.name);
		r = domctl_cat(path);
		if (r) {
			domctl_err("%s: no console output (%s: %s)", ref.name, path, strerror(-r));
			return DOMCTL_EXIT_ERROR;
		}
		return DOMCTL_EXIT_OK;
	}
	if (domctl_connect(ctx, &conn))
		return DOMCTL_EXIT_ERROR;
	if (domctl_resolve(&conn, pos[0], &ref, name)) {
		ctl_close(&conn);
		return DOMCTL_EXIT_ERROR;
	}
	if (set[0]) {
		ctl_close(&conn);
		if (!domctl_console_path(ctx, name, path, sizeof(path)))
			domctl_console_flush(ctx, name);
		if (domctl_console_path(ctx, name, path, sizeof(path)) || (r = domctl_cat(path))) {
			domctl_err("%s: no console output in %s/console", name, ctx->rundir);
			return DOMCTL_EXIT_ERROR;
		}
		return DOMCTL_EXIT_OK;
	}
	r = domctl_console_attach(ctx, name, set[1], (int)linger);
	if (r != -ENOENT && r != -ECONNREFUSED && r != -ENXIO) {
		ctl_close(&conn);
		return r ? DOMCTL_EXIT_ERROR : DOMCTL_EXIT_OK;
	}
	/* Without lamina-consoled there is no input path: follow the log read-only. */
	fprintf(stderr, "domctl: %s; following %s's console log (read-only)\n",
		r == -ENXIO ? "lamina-consoled does not serve this domain's console"
			    : "lamina-consoled is not running",
		name);
	rc = domctl_console_follow(ctx, &conn, name);
	ctl_close(&conn);
	return rc;
}
