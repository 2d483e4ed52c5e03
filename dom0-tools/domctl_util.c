/* What every domctl command shares: messages, usage errors, option parsing by table, the
 * connection to lamina-hv, and small output helpers. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "domctl.h"

void domctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("domctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int domctl_usage(const struct domctl_ctx *ctx)
{
	fprintf(stderr, "usage: domctl %s%s%s\n", ctx->cmd->name, *ctx->cmd->usage ? " " : "",
		ctx->cmd->usage);
	return DOMCTL_EXIT_USAGE;
}

int domctl_connect(const struct domctl_ctx *ctx, struct ctl_conn *conn)
{
	int r = ctl_connect(conn, ctx->rundir);

	if (r)
		domctl_err("%s", conn->err);
	return r;
}

static int domctl_lookup(const char *const *names, const char *arg, size_t len)
{
	for (int i = 0; names && names[i]; i++)
		if (strlen(names[i]) == len && !strncmp(names[i], arg, len))
			return i;
	return -1;
}

int domctl_args(const struct domctl_ctx *ctx, int argc, char **argv, const char *const *names, int *set,
		const char *const *vnames, const char **values, const char **pos, int maxpos, int *npos)
{
	int only_pos = 0;

	*npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq;
		int k;

		if (!only_pos && !strcmp(a, "--")) {
			only_pos = 1;
			continue;
		}
		if (only_pos || a[0] != '-' || !a[1]) {
			if (*npos >= maxpos) {
				domctl_err("%s: unexpected argument '%s'", ctx->cmd->name, a);
				return domctl_usage(ctx);
			}
			pos[(*npos)++] = a;
			continue;
		}
		eq = strchr(a, '=');
		k = domctl_lookup(names, a, strlen(a));
		if (k >= 0) {
			set[k] = 1;
			continue;
		}
		k = domctl_lookup(vnames, a, eq ? (size_t)(eq - a) : strlen(a));
		if (k < 0) {
			domctl_err("%s: unknown option '%s'", ctx->cmd->name, a);
			return domctl_usage(ctx);
		}
		if (eq) {
			values[k] = eq + 1;
		} else if (i + 1 < argc) {
			values[k] = argv[++i];
		} else {
			domctl_err("%s: option '%s' needs a value", ctx->cmd->name, a);
			return domctl_usage(ctx);
		}
	}
	return 0;
}

void domctl_state_flags(uint32_t state, char out[7])
{
	/* xl's columns: r running, b blocked, p paused, s shutdown, c crashed, d dying. */
	memcpy(out, "------", 7);
	switch (state) {
	case LAMINA_DOM_RUNNING:
		out[0] = 'r';
		break;
	case LAMINA_DOM_PAUSED:
		out[2] = 'p';
		break;
	case LAMINA_DOM_SHUTDOWN:
		out[3] = 's';
		break;
	case LAMINA_DOM_CRASHED:
		out[4] = 'c';
		break;
	case LAMINA_DOM_DYING:
	case LAMINA_DOM_DEAD:
		out[5] = 'd';
		break;
	default:
		out[0] = '?';
		break;
	}
}

int domctl_cat(const char *path)
{
	char buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	fflush(stdout);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (write(STDOUT_FILENO, buf, (size_t)n) != n) {
			r = -EIO;
			break;
		}
	}
	close(fd);
	return r;
}

void domctl_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
