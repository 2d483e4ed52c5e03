/* Domain life-cycle commands: create (from XML, with toolstack state), destroy, pause, unpause,
 * shutdown, reboot and wait, each a thin shell around one control request. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/random.h>
#include <xen/xen.h>
#include <xen/sched.h>

#include "domctl.h"
#include "domcfg.h"
#include "cmd_block.h"
#include "cmd_net.h"

/* Parse NAME|ID; for an id, learn the name too (state files are kept by name). */
int domctl_resolve(struct ctl_conn *conn, const char *arg, struct lamina_ctl_domref *ref,
		   char name[LAMINA_NAME_MAX])
{
	struct lamina_ctl_dominfo info;
	int r;

	if (ctl_domref_parse(ref, arg) < 0) {
		domctl_err("'%s' is neither a domain name nor an id", arg);
		return -EINVAL;
	}
	if (ref->domid == LAMINA_DOMID_BY_NAME) {
		memcpy(name, ref->name, LAMINA_NAME_MAX);
		return 0;
	}
	r = ctl_info(conn, ref, &info);
	if (r) {
		domctl_err("%s: %s", arg, r == -ENOENT || r == -ESRCH ? "no such domain" : conn->err);
		return r;
	}
	memcpy(name, info.name, LAMINA_NAME_MAX);
	return 0;
}

/* Xen's range for generated MACs: 00:16:3e with the local bits of the rest random. */
static int domctl_gen_macs(struct domcfg *cfg)
{
	for (unsigned i = 0; i < cfg->nnics; i++) {
		uint8_t rnd[3];

		if (cfg->nics[i].has_mac)
			continue;
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			return -EIO;
		cfg->nics[i].mac[0] = 0x00;
		cfg->nics[i].mac[1] = 0x16;
		cfg->nics[i].mac[2] = 0x3e;
		cfg->nics[i].mac[3] = rnd[0] & 0x7f;
		cfg->nics[i].mac[4] = rnd[1];
		cfg->nics[i].mac[5] = rnd[2];
		cfg->nics[i].has_mac = 1;
	}
	return 0;
}

int domctl_cmd_create(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = {"--paused", "--console", NULL};
	struct lamina_ctl_domcfg req;
	struct lamina_ctl_dominfo info;
	struct ctl_conn conn;
	struct domcfg *cfg;
	char err[DOMCFG_ERR_MAX];
	int set[2] = {0}, npos, r, rc = DOMCTL_EXIT_ERROR;
	const char *pos[1];

	if (domctl_args(ctx, argc, argv, flags, set, NULL, NULL, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1)
		return domctl_usage(ctx);
	cfg = malloc(sizeof(*cfg));
	if (!cfg)
		return DOMCTL_EXIT_ERROR;
	if (domcfg_parse_file(pos[0], cfg, err, sizeof(err))) {
		domctl_err("%s", err);
		goto out_free;
	}
	/* Disks: images checked before anything starts; the guest is created paused until its vbd
	 * directories are written and lamina-blkback has offered them. */
	if (domctl_block_check(cfg))
		goto out_free;
	if (domctl_gen_macs(cfg) ||
	    domcfg_to_ctl(cfg, set[0] || cfg->ndisks || cfg->nnics ? LAMINA_CFG_START_PAUSED : 0, &req)) {
		domctl_err("%s: cannot build the create request", pos[0]);
		goto out_free;
	}
	if (domctl_connect(ctx, &conn))
		goto out_free;
	r = ctl_create(&conn, &req, &info);
	if (r) {
		domctl_err("cannot create %s: %s", cfg->name,
			   r == -EEXIST ? "a domain of that name exists" : conn.err);
		goto out_close;
	}
	if (cfg->ndisks || cfg->nnics) {
		struct lamina_ctl_domref ref = { .domid = info.domid };

		if (domctl_block_attach_cfg(ctx, cfg, info.domid)) {
			domctl_err("cannot create %s: its disks could not be attached", cfg->name);
			ctl_destroy(&conn, &ref);
			goto out_close;
		}
		/* Vifs (<interface type='bridge'>): taps made and offered before the guest runs. */
		if (domctl_net_attach_cfg(ctx, cfg, info.domid)) {
			domctl_err("cannot create %s: its network interfaces could not be attached", cfg->name);
			ctl_destroy(&conn, &ref);
			goto out_close;
		}
		if (!set[0] && ctl_unpause(&conn, &ref)) {
			domctl_err("cannot start %s: %s", cfg->name, conn.err);
			goto out_close;
		}
	}
	r = domcfg_state_write(ctx->rundir, cfg, info.domid);
	if (r)
		domctl_err("warning: cannot save toolstack state for %s: %s (dumpxml will not work)",
			   cfg->name, strerror(-r));
	printf("Domain %s created with id %u\n", cfg->name, info.domid);
	fflush(stdout);
	rc = DOMCTL_EXIT_OK;
	if (set[1])
		rc = domctl_console_follow(ctx, &conn, cfg->name);
out_close:
	ctl_close(&conn);
out_free:
	free(cfg);
	return rc;
}

/* The commands that take one NAME|ID and send one request. */
enum domctl_simple { DOMCTL_DESTROY, DOMCTL_PAUSE, DOMCTL_UNPAUSE };

static int domctl_simple(struct domctl_ctx *ctx, int argc, char **argv, enum domctl_simple what)
{
	struct lamina_ctl_domref ref;
	char name[LAMINA_NAME_MAX];
	struct ctl_conn conn;
	const char *pos[1];
	int npos, r;

	if (domctl_args(ctx, argc, argv, NULL, NULL, NULL, NULL, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1)
		return domctl_usage(ctx);
	if (domctl_connect(ctx, &conn))
		return DOMCTL_EXIT_ERROR;
	r = domctl_resolve(&conn, pos[0], &ref, name);
	if (!r) {
		if (what == DOMCTL_DESTROY)
			r = ctl_destroy(&conn, &ref);
		else if (what == DOMCTL_PAUSE)
			r = ctl_pause(&conn, &ref);
		else
			r = ctl_unpause(&conn, &ref);
		if (r)
			domctl_err("%s: %s", pos[0],
				   r == -ENOENT || r == -ESRCH ? "no such domain" : conn.err);
		else if (what == DOMCTL_DESTROY)
			domcfg_state_remove(ctx->rundir, name);
	}
	ctl_close(&conn);
	return r ? DOMCTL_EXIT_ERROR : DOMCTL_EXIT_OK;
}

int domctl_cmd_destroy(struct domctl_ctx *ctx, int argc, char **argv)
{
	return domctl_simple(ctx, argc, argv, DOMCTL_DESTROY);
}

int domctl_cmd_pause(struct domctl_ctx *ctx, int argc, char **argv)
{
	return domctl_simple(ctx, argc, argv, DOMCTL_PAUSE);
}

int domctl_cmd_unpause(struct domctl_ctx *ctx, int argc, char **argv)
{
	return domctl_simple(ctx, argc, argv, DOMCTL_UNPAUSE);
}

/* Say how a domain stopped; the exit status: 0 poweroff/reboot/suspend, 1 crash or watchdog. */
static int domctl_report_stop(const char *name, const struct lamina_ctl_dominfo *info)
{
	if (info->state == LAMINA_DOM_CRASHED || info->shutdown_reason == SHUTDOWN_crash) {
		printf("%s: crashed\n", name);
		return DOMCTL_EXIT_ERROR;
	}
	switch (info->shutdown_reason) {
	case SHUTDOWN_poweroff:
		if (info->shutdown_code >= 0)
			printf("%s: poweroff (code %d)\n", name, info->shutdown_code);
		else
			printf("%s: poweroff\n", name);
		return DOMCTL_EXIT_OK;
	case SHUTDOWN_reboot:
		printf("%s: rebooted\n", name);
		return DOMCTL_EXIT_OK;
	case SHUTDOWN_suspend:
		printf("%s: suspended\n", name);
		return DOMCTL_EXIT_OK;
	case SHUTDOWN_soft_reset:
		printf("%s: soft reset\n", name);
		return DOMCTL_EXIT_OK;
	case SHUTDOWN_watchdog:
		printf("%s: watchdog\n", name);
		return DOMCTL_EXIT_ERROR;
	default:
		printf("%s: stopped (reason %u)\n", name, info->shutdown_reason);
		return DOMCTL_EXIT_ERROR;
	}
}

/* Report a WAIT's outcome r/info for name; the exit status. */
static int domctl_wait_result(struct domctl_ctx *ctx, struct ctl_conn *conn, const char *name, int r,
			      const struct lamina_ctl_dominfo *info, uint32_t timeout_ms)
{
	if (r == -ETIMEDOUT) {
		printf("%s: timeout after %.1f s\n", name, timeout_ms / 1000.0);
		return DOMCTL_EXIT_TIMEOUT;
	}
	if ((r == -ENOENT || r == -ESRCH) &&
	    domcfg_state_read(ctx->rundir, name, &(struct domcfg){0}, &(uint32_t){0}) == 0) {
		/* The toolstack created it and never saw it go: it stopped and its on_poweroff or
		 * on_crash action destroyed it before this WAIT arrived, and lamina-hv keeps no record. */
		domcfg_state_remove(ctx->rundir, name);
		domctl_err(
		    "%s: already stopped and destroyed before the wait began; how it stopped is not known "
		    "(give it on_poweroff/on_crash 'preserve' to keep it for 'domctl wait')",
		    name);
		return DOMCTL_EXIT_ERROR;
	}
	if (r) {
		domctl_err("%s: %s", name, r == -ENOENT || r == -ESRCH ? "no such domain" : conn->err);
		return DOMCTL_EXIT_ERROR;
	}
	if (info->state == LAMINA_DOM_DEAD)
		domcfg_state_remove(ctx->rundir, name);
	return domctl_report_stop(name, info);
}

static int domctl_shutdown_common(struct domctl_ctx *ctx, int argc, char **argv, int reboot)
{
	static const char *const flags[] = {"--wait", "--reboot", NULL};
	struct lamina_ctl_dominfo info;
	struct lamina_ctl_domref ref;
	char name[LAMINA_NAME_MAX];
	struct ctl_conn conn, wconn;
	const char *pos[1];
	uint32_t wseq = 0;
	int set[2] = {0}, npos, r, rc = DOMCTL_EXIT_ERROR, waiting = 0;

	if (domctl_args(ctx, argc, argv, flags, set, NULL, NULL, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1 || (reboot && set[1]))
		return domctl_usage(ctx);
	reboot |= set[1];
	if (domctl_connect(ctx, &conn))
		return DOMCTL_EXIT_ERROR;
	wconn.fd = -1;
	if (domctl_resolve(&conn, pos[0], &ref, name))
		goto out;
	/* Park the WAIT on a second connection first: a domain destroyed by its on_poweroff
	 * action the moment it stops would otherwise be gone before a later WAIT arrives. */
	if (set[0] && ctl_connect(&wconn, ctx->rundir) == 0 && ctl_wait_begin(&wconn, &ref, 0, &wseq) == 0)
		waiting = 1;
	r = ctl_shutdown(&conn, &ref, reboot ? SHUTDOWN_reboot : SHUTDOWN_poweroff);
	if (r) {
		domctl_err("%s: %s", pos[0], r == -ENOENT || r == -ESRCH ? "no such domain" : conn.err);
		goto out;
	}
	if (!set[0]) {
		rc = DOMCTL_EXIT_OK;
		goto out;
	}
	r = waiting ? ctl_wait_end(&wconn, wseq, 0, &info) : ctl_wait(&conn, &ref, 0, &info);
	if (r == -ESRCH || r == -ENOENT) {
		/* It stopped and went away before the WAIT was seen: it did what was asked. */
		domcfg_state_remove(ctx->rundir, name);
		printf("%s: %s\n", name, reboot ? "rebooted" : "poweroff");
		rc = DOMCTL_EXIT_OK;
		goto out;
	}
	rc = domctl_wait_result(ctx, waiting ? &wconn : &conn, name, r, &info, 0);
out:
	ctl_close(&wconn);
	ctl_close(&conn);
	return rc;
}

int domctl_cmd_shutdown(struct domctl_ctx *ctx, int argc, char **argv)
{
	return domctl_shutdown_common(ctx, argc, argv, 0);
}

int domctl_cmd_reboot(struct domctl_ctx *ctx, int argc, char **argv)
{
	return domctl_shutdown_common(ctx, argc, argv, 1);
}

int domctl_cmd_wait(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const vnames[] = {"--timeout", NULL};
	const char *values[1] = {NULL}, *pos[1];
	struct lamina_ctl_domref ref;
	char name[LAMINA_NAME_MAX], *end;
	struct ctl_conn conn;
	uint32_t timeout_ms = 0;
	int npos, rc = DOMCTL_EXIT_ERROR;

	if (domctl_args(ctx, argc, argv, NULL, NULL, vnames, values, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1)
		return domctl_usage(ctx);
	if (values[0]) {
		double s = strtod(values[0], &end);

		if (end == values[0] || *end || !(s > 0) || s > 86400.0 * 24) {
			domctl_err("wait: --timeout takes seconds, more than 0 (got '%s')", values[0]);
			return domctl_usage(ctx);
		}
		timeout_ms = (uint32_t)(s * 1000.0 + 0.5);
		if (!timeout_ms)
			timeout_ms = 1;
	}
	if (domctl_connect(ctx, &conn))
		return DOMCTL_EXIT_ERROR;
	if (!domctl_resolve(&conn, pos[0], &ref, name)) {
		struct lamina_ctl_dominfo info;
		int r = ctl_wait(&conn, &ref, timeout_ms, &info);

		rc = domctl_wait_result(ctx, &conn, name, r, &info, timeout_ms);
	}
	ctl_close(&conn);
	return rc;
}
