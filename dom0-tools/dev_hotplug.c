/* The toolstack's half of device hot-plug, shared by every split-driver type. A device is two store
 * directories laid out as Xen's toolstack does: /local/domain/0/backend/TYPE/D/N (the back-end
 * daemon's) and /local/domain/D/device/TYPE/N (the guest's), linked by frontend/backend nodes;
 * attaching writes both in one transaction, detaching sets online=0 and waits for the back-end to
 * reach Closed before removing them. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xen/io/xenbus.h>

#include "cmd_block.h"
#include "dev_hotplug.h"

#define HOTPLUG_POLL_MS 20
#define HOTPLUG_TXN_TRIES 10

void hotplug_paths(const struct hotplug_dev *hd, char *be, char *fe, size_t len)
{
	snprintf(be, len, "/local/domain/0/backend/%s/%u/%u", hd->type, hd->domid, hd->devid);
	snprintf(fe, len, "/local/domain/%u/device/%s/%u", hd->domid, hd->type, hd->devid);
}

int hotplug_read(struct xs_client *xs, const char *dir, const char *node, char *out, size_t len)
{
	char path[256], *v;
	uint32_t n;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, node);
	rc = xs_client_read(xs, 0, path, &v, &n);
	if (rc)
		return rc;
	snprintf(out, len, "%.*s", (int)n, v);
	free(v);
	return 0;
}

int hotplug_write(struct xs_client *xs, uint32_t tx, const char *dir, const char *node, const char *fmt, ...)
{
	char path[256], val[LAMINA_PATH_MAX + 16];
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", dir, node);
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	return xs_client_write(xs, tx, path, val, (uint32_t)strlen(val));
}

int hotplug_store_open(const struct domctl_ctx *ctx, struct xs_client **xs)
{
	int rc = xs_client_open_rundir(ctx->rundir, xs);

	if (rc)
		domctl_err("cannot reach the store: %s", strerror(-rc));
	return rc;
}

int hotplug_exists(struct xs_client *xs, const struct hotplug_dev *hd)
{
	char be[HOTPLUG_PATH], fe[HOTPLUG_PATH], st[16];

	hotplug_paths(hd, be, fe, sizeof(be));
	return hotplug_read(xs, be, "state", st, sizeof(st)) == 0;
}

static int hotplug_write_dirs(struct xs_client *xs, uint32_t tx, const struct hotplug_dev *hd,
			      const struct hotplug_node *fe_nodes, size_t nfe, const struct hotplug_node *be_nodes,
			      size_t nbe)
{
	char be[HOTPLUG_PATH], fe[HOTPLUG_PATH], own_fe[16], own_be[] = "n0", read_be[16];
	const char *const fe_perms[] = { own_fe, "r0" }, *const be_perms[] = { own_be, read_be };
	int rc = 0;

	hotplug_paths(hd, be, fe, sizeof(be));
	snprintf(own_fe, sizeof(own_fe), "n%u", hd->domid);
	snprintf(read_be, sizeof(read_be), "r%u", hd->domid);
	/* Nodes take their parent's permissions when created: the directories get theirs first, so
	 * the guest can read every node of ours the moment it appears. */
	rc = xs_client_mkdir(xs, tx, fe);
	if (!rc)
		rc = xs_client_set_perms(xs, tx, fe, fe_perms, 2);
	if (!rc)
		rc = xs_client_mkdir(xs, tx, be);
	if (!rc)
		rc = xs_client_set_perms(xs, tx, be, be_perms, 2);
	if (rc)
		return rc;
	rc |= hotplug_write(xs, tx, fe, "backend", "%s", be);
	rc |= hotplug_write(xs, tx, fe, "backend-id", "0");
	rc |= hotplug_write(xs, tx, fe, "state", "%d", XenbusStateInitialising);
	for (size_t i = 0; i < nfe; i++)
		rc |= hotplug_write(xs, tx, fe, fe_nodes[i].node, "%s", fe_nodes[i].value);
	rc |= hotplug_write(xs, tx, be, "frontend", "%s", fe);
	rc |= hotplug_write(xs, tx, be, "frontend-id", "%u", hd->domid);
	rc |= hotplug_write(xs, tx, be, "online", "1");
	rc |= hotplug_write(xs, tx, be, "state", "%d", XenbusStateInitialising);
	for (size_t i = 0; i < nbe; i++)
		rc |= hotplug_write(xs, tx, be, be_nodes[i].node, "%s", be_nodes[i].value);
	return rc ? -EIO : 0;
}

/* Wait until the back-end left Initialising: InitWait (offered) is 0, its refusal -EIO. */
static int hotplug_wait_offer(struct xs_client *xs, const struct hotplug_dev *hd)
{
	char be[HOTPLUG_PATH], fe[HOTPLUG_PATH], st[16], err[LAMINA_PATH_MAX + 64];
	struct timespec t = { 0, HOTPLUG_POLL_MS * 1000000 };

	hotplug_paths(hd, be, fe, sizeof(be));
	for (int waited = 0; waited < HOTPLUG_WAIT_MS; waited += HOTPLUG_POLL_MS) {
		if (hotplug_read(xs, be, "hotplug-status", st, sizeof(st)) == 0 && strcmp(st, "error") == 0) {
			if (hotplug_read(xs, be, "hotplug-error", err, sizeof(err)))
				snprintf(err, sizeof(err), "unknown error");
			domctl_err("%s: %s refused it: %s", hd->label, hd->daemon, err);
			return -EIO;
		}
		if (hotplug_read(xs, be, "state", st, sizeof(st)) == 0 && atoi(st) >= XenbusStateInitWait)
			return 0;
		nanosleep(&t, NULL);
	}
	domctl_err("%s: %s did not pick it up within %d ms (is it running? domctl host start)", hd->label,
		   hd->daemon, HOTPLUG_WAIT_MS);
	return -ETIMEDOUT;
}

int hotplug_attach(struct xs_client *xs, const struct hotplug_dev *hd, const struct hotplug_node *fe_nodes,
		   size_t nfe, const struct hotplug_node *be_nodes, size_t nbe)
{
	char be[HOTPLUG_PATH], fe[HOTPLUG_PATH];
	uint32_t tx;
	int rc = 0;

	for (int tries = 0; tries < HOTPLUG_TXN_TRIES; tries++) {
		rc = xs_client_txn_start(xs, &tx);
		if (rc)
			break;
		rc = hotplug_write_dirs(xs, tx, hd, fe_nodes, nfe, be_nodes, nbe);
		rc = xs_client_txn_end(xs, tx, rc == 0) ?: rc;
		if (rc != -EAGAIN)
			break;
	}
	if (rc) {
		domctl_err("%s: cannot write the store: %s", hd->label, strerror(-rc));
		return rc;
	}
	rc = hotplug_wait_offer(xs, hd);
	if (rc) { /* leave nothing half-attached */
		hotplug_paths(hd, be, fe, sizeof(be));
		xs_client_rm(xs, 0, be);
		xs_client_rm(xs, 0, fe);
	}
	return rc;
}

int hotplug_timeout_ms(const char *arg)
{
	int ms;

	if (!arg)
		return HOTPLUG_DETACH_MS;
	ms = atoi(arg) * 1000;
	if (ms <= 0) {
		domctl_err("--timeout needs a positive number of seconds");
		return -1;
	}
	return ms;
}

int hotplug_detach(struct xs_client *xs, const struct hotplug_dev *hd, const char *domname, int force,
		   int timeout_ms)
{
	char be[HOTPLUG_PATH], fe[HOTPLUG_PATH], st[16];
	struct timespec t = { 0, HOTPLUG_POLL_MS * 1000000 };
	int waited;

	hotplug_paths(hd, be, fe, sizeof(be));
	if (hotplug_read(xs, be, "state", st, sizeof(st))) {
		domctl_err("%s has no %s", domname, hd->label);
		return DOMCTL_EXIT_ERROR;
	}
	if (!force) {
		hotplug_write(xs, 0, be, "online", "0");
		for (waited = 0; waited < timeout_ms; waited += HOTPLUG_POLL_MS) {
			if (hotplug_read(xs, be, "state", st, sizeof(st)) || atoi(st) == XenbusStateClosed)
				break;
			nanosleep(&t, NULL);
		}
		if (waited >= timeout_ms) {
			domctl_err("%s: the guest did not close %s within %d s (retry with --force)", domname,
				   hd->label, timeout_ms / 1000);
			return DOMCTL_EXIT_TIMEOUT;
		}
	}
	xs_client_rm(xs, 0, be);
	xs_client_rm(xs, 0, fe);
	return DOMCTL_EXIT_OK;
}

const char *hotplug_state_name(int s)
{
	static const char *const names[] = { "unknown", "initialising", "initwait", "initialised",
					     "connected", "closing", "closed", "reconfiguring", "reconfigured" };

	return s >= 0 && s < (int)(sizeof(names) / sizeof(names[0])) ? names[s] : "?";
}

int hotplug_list(struct xs_client *xs, const char *type, uint32_t domid, hotplug_row_fn row, void *arg)
{
	char dir[96], be[160], fe[160], bst[8], fst[8];
	char **devs = NULL;
	unsigned n = 0;

	snprintf(dir, sizeof(dir), "/local/domain/0/backend/%s/%u", type, domid);
	xs_client_ls(xs, 0, dir, &devs, &n);
	for (unsigned i = 0; i < n; i++) {
		snprintf(be, sizeof(be), "%s/%s", dir, devs[i]);
		if (hotplug_read(xs, be, "frontend", fe, sizeof(fe)))
			continue;
		if (hotplug_read(xs, be, "state", bst, sizeof(bst)))
			snprintf(bst, sizeof(bst), "-1");
		if (hotplug_read(xs, fe, "state", fst, sizeof(fst)))
			snprintf(fst, sizeof(fst), "-1");
		row(arg, xs, devs[i], be, fe, atoi(bst), atoi(fst));
	}
	free(devs);
	return (int)n;
}

int hotplug_cmd_detach(struct domctl_ctx *ctx, int argc, char **argv, const struct hotplug_type *t)
{
	static const char *const flags[] = { "--force", NULL }, *const vnames[] = { "--timeout", NULL };
	const char *values[1] = { NULL }, *pos[2];
	struct hotplug_dev hd = { .type = t->type, .daemon = t->daemon };
	int set[1] = { 0 }, npos, rc, timeout_ms;
	struct xs_client *xs;
	char label[32];

	if (domctl_args(ctx, argc, argv, flags, set, vnames, values, pos, 2, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 2)
		return domctl_usage(ctx);
	timeout_ms = hotplug_timeout_ms(values[0]);
	if (timeout_ms < 0 || t->parse(pos[1], &hd.devid, label, sizeof(label)))
		return DOMCTL_EXIT_USAGE;
	hd.label = label;
	if (domctl_block_domid(ctx, pos[0], &hd.domid) || hotplug_store_open(ctx, &xs))
		return DOMCTL_EXIT_ERROR;
	rc = hotplug_detach(xs, &hd, pos[0], set[0], timeout_ms);
	xs_client_close(xs);
	if (rc == DOMCTL_EXIT_OK)
		printf("%s: %s detached%s\n", pos[0], label, set[0] ? " (forced)" : "");
	return rc;
}

int hotplug_cmd_list(struct domctl_ctx *ctx, int argc, char **argv, const struct hotplug_type *t)
{
	struct xs_client *xs;
	const char *pos[1];
	uint32_t domid;
	int npos;

	if (domctl_args(ctx, argc, argv, NULL, NULL, NULL, NULL, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1)
		return domctl_usage(ctx);
	if (domctl_block_domid(ctx, pos[0], &domid) || hotplug_store_open(ctx, &xs))
		return DOMCTL_EXIT_ERROR;
	printf("%s\n", t->list_header);
	hotplug_list(xs, t->type, domid, t->row, &domid);
	xs_client_close(xs);
	return DOMCTL_EXIT_OK;
}
