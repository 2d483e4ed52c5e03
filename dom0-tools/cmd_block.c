/* Block-device commands of the toolstack. A vbd is two store directories, laid out as Xen's
 * toolstack does: /local/domain/0/backend/vbd/D/N (lamina-blkback's) and /local/domain/D/device/
 * vbd/N (the guest's), linked by frontend/backend nodes; attaching writes both in one transaction,
 * detaching sets online=0 and waits for the back-end to reach Closed before removing them. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xen/io/xenbus.h>

#include "cmd_block.h"
#include "xs_client.h"

#define BLOCK_ROOT "/local/domain/0/backend/vbd"
#define BLOCK_WAIT_MS 5000

int domctl_block_devid(const char *t, uint32_t *devid)
{
	unsigned disk;

	if (strncmp(t, "xvd", 3) || t[3] < 'a' || t[3] > 'z')
		return -EINVAL;
	disk = (unsigned)(t[3] - 'a');
	if (t[4]) {
		if (t[4] < 'a' || t[4] > 'z' || t[5])
			return -EINVAL;
		disk = (disk + 1) * 26 + (unsigned)(t[4] - 'a');
	}
	*devid = disk < 16 ? (202u << 8) | (disk << 4) : (1u << 28) | (disk << 8);
	return 0;
}

/* The probe takes and drops the lock blkback will take; a conflict is reported now, not after the
 * guest boots without its disk. */
static int domctl_block_probe(const char *path, int readonly)
{
	struct flock fl = { .l_type = readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
	int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC), rc = 0;

	if (fd < 0) {
		rc = -errno;
		domctl_err("%s: %s", path, strerror(errno));
		return rc;
	}
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		rc = -EBUSY;
		domctl_err("%s: in use by %s", path,
			   readonly ? "a writer" : "another domain (a writable image has one user)");
	}
	close(fd);
	return rc;
}

int domctl_block_check(const struct domcfg *cfg)
{
	uint32_t devid;

	for (unsigned i = 0; i < cfg->ndisks; i++) {
		int rc = domctl_block_devid(cfg->disks[i].target, &devid);

		if (rc) {
			domctl_err("%s: not a PV disk name", cfg->disks[i].target);
			return rc;
		}
		rc = domctl_block_probe(cfg->disks[i].source, cfg->disks[i].readonly);
		if (rc)
			return rc;
	}
	return 0;
}

static int block_write(struct xs_client *xs, uint32_t tx, const char *dir, const char *node, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int block_write(struct xs_client *xs, uint32_t tx, const char *dir, const char *node, const char *fmt, ...)
{
	char path[256], val[LAMINA_PATH_MAX + 16];
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", dir, node);
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	return xs_client_write(xs, tx, path, val, (uint32_t)strlen(val));
}

static int block_read(struct xs_client *xs, const char *dir, const char *node, char *out, size_t len)
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

static void block_paths(uint32_t domid, uint32_t devid, char *be, char *fe, size_t len)
{
	snprintf(be, len, BLOCK_ROOT "/%u/%u", domid, devid);
	snprintf(fe, len, "/local/domain/%u/device/vbd/%u", domid, devid);
}

static int block_write_dirs(struct xs_client *xs, uint32_t tx, uint32_t domid, uint32_t devid, const char *target,
			    const char *source, int readonly, int is_block)
{
	char be[128], fe[128], own_fe[16], own_be[] = "n0", read_be[16];
	const char *const fe_perms[] = { own_fe, "r0" }, *const be_perms[] = { own_be, read_be };
	int rc = 0;

	block_paths(domid, devid, be, fe, sizeof(be));
	snprintf(own_fe, sizeof(own_fe), "n%u", domid);
	snprintf(read_be, sizeof(read_be), "r%u", domid);
	/* Nodes take their parent's permissions when created: the directories get theirs first. The
	 * guest owns its half (it writes state and ring refs there); ours it may only read. */
	if (xs_client_mkdir(xs, tx, fe) || xs_client_set_perms(xs, tx, fe, fe_perms, 2) ||
	    xs_client_mkdir(xs, tx, be) || xs_client_set_perms(xs, tx, be, be_perms, 2))
		return -EACCES;
	rc |= block_write(xs, tx, fe, "backend", "%s", be);
	rc |= block_write(xs, tx, fe, "backend-id", "0");
	rc |= block_write(xs, tx, fe, "state", "%d", XenbusStateInitialising);
	rc |= block_write(xs, tx, fe, "virtual-device", "%u", devid);
	rc |= block_write(xs, tx, fe, "device-type", "disk");
	rc |= block_write(xs, tx, be, "frontend", "%s", fe);
	rc |= block_write(xs, tx, be, "frontend-id", "%u", domid);
	rc |= block_write(xs, tx, be, "online", "1");
	rc |= block_write(xs, tx, be, "state", "%d", XenbusStateInitialising);
	rc |= block_write(xs, tx, be, "params", "%s", source);
	rc |= block_write(xs, tx, be, "mode", "%s", readonly ? "r" : "w");
	rc |= block_write(xs, tx, be, "type", "%s", is_block ? "phy" : "file");
	rc |= block_write(xs, tx, be, "device-type", "disk");
	rc |= block_write(xs, tx, be, "dev", "%s", target);
	rc |= block_write(xs, tx, be, "removable", "0");
	return rc ? -EIO : 0;
}

/* Wait until the back-end left Initialising: InitWait (offered) is 0, an image error is -EIO. */
static int block_wait_offer(struct xs_client *xs, uint32_t domid, uint32_t devid, const char *target)
{
	char be[128], fe[128], st[16], err[LAMINA_PATH_MAX + 64];
	struct timespec t = { 0, 20 * 1000000 };

	block_paths(domid, devid, be, fe, sizeof(be));
	for (int waited = 0; waited < BLOCK_WAIT_MS; waited += 20) {
		if (block_read(xs, be, "hotplug-status", st, sizeof(st)) == 0 && strcmp(st, "error") == 0) {
			if (block_read(xs, be, "hotplug-error", err, sizeof(err)))
				snprintf(err, sizeof(err), "unknown error");
			domctl_err("%s: lamina-blkback refused the image: %s", target, err);
			return -EIO;
		}
		if (block_read(xs, be, "state", st, sizeof(st)) == 0 && atoi(st) >= XenbusStateInitWait)
			return 0;
		nanosleep(&t, NULL);
	}
	domctl_err("%s: lamina-blkback did not pick the disk up within %d ms (is it running? domctl host start)",
		   target, BLOCK_WAIT_MS);
	return -ETIMEDOUT;
}

/* Attach one disk: both directories in a transaction (retried on EAGAIN), then the offer. */
static int block_attach_one(struct xs_client *xs, uint32_t domid, const char *target, const char *source,
			    int readonly, int is_block)
{
	char be[128], fe[128], st[16];
	uint32_t devid, tx;
	int rc;

	if (domctl_block_devid(target, &devid)) {
		domctl_err("%s: not a PV disk name (xvda .. xvdzz)", target);
		return -EINVAL;
	}
	block_paths(domid, devid, be, fe, sizeof(be));
	if (block_read(xs, be, "state", st, sizeof(st)) == 0) {
		domctl_err("%s: domain %u already has this disk", target, domid);
		return -EEXIST;
	}
	for (int tries = 0; tries < 10; tries++) {
		rc = xs_client_txn_start(xs, &tx);
		if (rc)
			break;
		rc = block_write_dirs(xs, tx, domid, devid, target, source, readonly, is_block);
		rc = xs_client_txn_end(xs, tx, rc == 0) ?: rc;
		if (rc != -EAGAIN)
			break;
	}
	if (rc) {
		domctl_err("%s: cannot write the store: %s", target, strerror(-rc));
		return rc;
	}
	rc = block_wait_offer(xs, domid, devid, target);
	if (rc) { /* leave nothing half-attached */
		xs_client_rm(xs, 0, be);
		xs_client_rm(xs, 0, fe);
	}
	return rc;
}

int domctl_block_attach_cfg(const struct domctl_ctx *ctx, const struct domcfg *cfg, uint32_t domid)
{
	struct xs_client *xs;
	int rc = 0;

	if (!cfg->ndisks)
		return 0;
	rc = xs_client_open_rundir(ctx->rundir, &xs);
	if (rc) {
		domctl_err("cannot reach the store: %s", strerror(-rc));
		return rc;
	}
	for (unsigned i = 0; i < cfg->ndisks && !rc; i++)
		rc = block_attach_one(xs, domid, cfg->disks[i].target, cfg->disks[i].source, cfg->disks[i].readonly,
				      cfg->disks[i].is_block);
	xs_client_close(xs);
	return rc;
}

/* NAME|ID to a domain id through lamina-hv. */
int domctl_block_domid(const struct domctl_ctx *ctx, const char *arg, uint32_t *domid)
{
	struct lamina_ctl_dominfo info;
	struct lamina_ctl_domref ref;
	struct ctl_conn conn;
	int rc;

	if (ctl_domref_parse(&ref, arg) < 0) {
		domctl_err("'%s' is neither a domain name nor an id", arg);
		return -EINVAL;
	}
	if (domctl_connect(ctx, &conn))
		return -ECONNREFUSED;
	rc = ctl_info(&conn, &ref, &info);
	if (rc)
		domctl_err("%s: %s", arg, rc == -ENOENT || rc == -ESRCH ? "no such domain" : conn.err);
	else
		*domid = info.domid;
	ctl_close(&conn);
	return rc;
}

int domctl_cmd_block_attach(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = { "--readonly", NULL };
	char abspath[LAMINA_PATH_MAX];
	struct xs_client *xs;
	const char *pos[3];
	int set[1] = { 0 }, npos, rc;
	uint32_t domid;

	if (domctl_args(ctx, argc, argv, flags, set, NULL, NULL, pos, 3, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 3)
		return domctl_usage(ctx);
	if (!realpath(pos[1], abspath)) {
		domctl_err("%s: %s", pos[1], strerror(errno));
		return DOMCTL_EXIT_ERROR;
	}
	if (domctl_block_probe(abspath, set[0]) || domctl_block_domid(ctx, pos[0], &domid))
		return DOMCTL_EXIT_ERROR;
	rc = xs_client_open_rundir(ctx->rundir, &xs);
	if (rc) {
		domctl_err("cannot reach the store: %s", strerror(-rc));
		return DOMCTL_EXIT_ERROR;
	}
	rc = block_attach_one(xs, domid, pos[2], abspath, set[0], 0);
	xs_client_close(xs);
	if (rc)
		return DOMCTL_EXIT_ERROR;
	printf("%s: %s attached as %s%s\n", pos[0], abspath, pos[2], set[0] ? " (read-only)" : "");
	return DOMCTL_EXIT_OK;
}

int domctl_cmd_block_detach(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = { "--force", NULL }, *const vnames[] = { "--timeout", NULL };
	const char *values[1] = { NULL }, *pos[2];
	char be[128], fe[128], st[16];
	struct timespec t = { 0, 20 * 1000000 };
	int set[1] = { 0 }, npos, rc, timeout_ms = 10000, waited;
	struct xs_client *xs;
	uint32_t domid, devid;

	if (domctl_args(ctx, argc, argv, flags, set, vnames, values, pos, 2, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 2)
		return domctl_usage(ctx);
	if (values[0]) {
		timeout_ms = atoi(values[0]) * 1000;
		if (timeout_ms <= 0) {
			domctl_err("--timeout needs a positive number of seconds");
			return DOMCTL_EXIT_USAGE;
		}
	}
	if (domctl_block_devid(pos[1], &devid)) {
		domctl_err("%s: not a PV disk name (xvda .. xvdzz)", pos[1]);
		return DOMCTL_EXIT_USAGE;
	}
	if (domctl_block_domid(ctx, pos[0], &domid))
		return DOMCTL_EXIT_ERROR;
	rc = xs_client_open_rundir(ctx->rundir, &xs);
	if (rc) {
		domctl_err("cannot reach the store: %s", strerror(-rc));
		return DOMCTL_EXIT_ERROR;
	}
	block_paths(domid, devid, be, fe, sizeof(be));
	rc = DOMCTL_EXIT_ERROR;
	if (block_read(xs, be, "state", st, sizeof(st))) {
		domctl_err("%s has no disk %s", pos[0], pos[1]);
		goto out;
	}
	if (!set[0]) {
		block_write(xs, 0, be, "online", "0");
		for (waited = 0; waited < timeout_ms; waited += 20) {
			if (block_read(xs, be, "state", st, sizeof(st)) || atoi(st) == XenbusStateClosed)
				break;
			nanosleep(&t, NULL);
		}
		if (waited >= timeout_ms) {
			domctl_err("%s: the guest did not close %s within %d s (retry with --force)", pos[0], pos[1],
				   timeout_ms / 1000);
			rc = DOMCTL_EXIT_TIMEOUT;
			goto out;
		}
	}
	xs_client_rm(xs, 0, be);
	xs_client_rm(xs, 0, fe);
	printf("%s: %s detached%s\n", pos[0], pos[1], set[0] ? " (forced)" : "");
	rc = DOMCTL_EXIT_OK;
out:
	xs_client_close(xs);
	return rc;
}

static const char *block_state_name(int s)
{
	static const char *const names[] = { "unknown", "initialising", "initwait", "initialised",
					     "connected", "closing", "closed", "reconfiguring", "reconfigured" };

	return s >= 0 && s < (int)(sizeof(names) / sizeof(names[0])) ? names[s] : "?";
}

int domctl_cmd_block_list(struct domctl_ctx *ctx, int argc, char **argv)
{
	char dir[96], be[160], fe[160], dev[16], params[LAMINA_PATH_MAX], mode[8], bst[8], fst[8];
	struct xs_client *xs;
	const char *pos[1];
	char **devs = NULL;
	unsigned n = 0;
	uint32_t domid;
	int npos, rc;

	if (domctl_args(ctx, argc, argv, NULL, NULL, NULL, NULL, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1)
		return domctl_usage(ctx);
	if (domctl_block_domid(ctx, pos[0], &domid))
		return DOMCTL_EXIT_ERROR;
	rc = xs_client_open_rundir(ctx->rundir, &xs);
	if (rc) {
		domctl_err("cannot reach the store: %s", strerror(-rc));
		return DOMCTL_EXIT_ERROR;
	}
	snprintf(dir, sizeof(dir), BLOCK_ROOT "/%u", domid);
	xs_client_ls(xs, 0, dir, &devs, &n);
	printf("%-8s %-10s %-4s %-12s %-12s %s\n", "Target", "Devid", "Mode", "Back-end", "Front-end", "Image");
	for (unsigned i = 0; i < n; i++) {
		snprintf(be, sizeof(be), "%s/%s", dir, devs[i]);
		if (block_read(xs, be, "frontend", fe, sizeof(fe)))
			continue;
		if (block_read(xs, be, "dev", dev, sizeof(dev)))
			snprintf(dev, sizeof(dev), "?");
		if (block_read(xs, be, "params", params, sizeof(params)))
			snprintf(params, sizeof(params), "?");
		if (block_read(xs, be, "mode", mode, sizeof(mode)))
			snprintf(mode, sizeof(mode), "?");
		if (block_read(xs, be, "state", bst, sizeof(bst)))
			snprintf(bst, sizeof(bst), "-1");
		if (block_read(xs, fe, "state", fst, sizeof(fst)))
			snprintf(fst, sizeof(fst), "-1");
		printf("%-8s %-10s %-4s %-12s %-12s %s\n", dev, devs[i], mode, block_state_name(atoi(bst)),
		       block_state_name(atoi(fst)), params);
	}
	free(devs);
	xs_client_close(xs);
	return DOMCTL_EXIT_OK;
}
