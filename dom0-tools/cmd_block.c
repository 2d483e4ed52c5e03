/* Block-device commands of the toolstack: Xen's disk names and device numbers, the create-time
 * image checks (the lock lamina-blkback will take), and the vbd nodes of an attach; the store
 * directories, the wait for the offer, detach and listing are dev_hotplug.c's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_block.h"
#include "dev_hotplug.h"


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

/* Attach one disk: both directories and the offer (dev_hotplug.c). */
static int block_attach_one(struct xs_client *xs, uint32_t domid, const char *target, const char *source,
			    int readonly, int is_block)
{
	struct hotplug_dev hd = { .type = "vbd", .daemon = "lamina-blkback", .label = target, .domid = domid };
	char devid_s[16];
	const struct hotplug_node fe_nodes[] = {
		{ "virtual-device", devid_s },
		{ "device-type", "disk" },
	};
	const struct hotplug_node be_nodes[] = {
		{ "params", source },	      { "mode", readonly ? "r" : "w" }, { "type", is_block ? "phy" : "file" },
		{ "device-type", "disk" }, { "dev", target },		       { "removable", "0" },
	};

	if (domctl_block_devid(target, &hd.devid)) {
		domctl_err("%s: not a PV disk name (xvda .. xvdzz)", target);
		return -EINVAL;
	}
	snprintf(devid_s, sizeof(devid_s), "%u", hd.devid);
	if (hotplug_exists(xs, &hd)) {
		domctl_err("%s: domain %u already has this disk", target, domid);
		return -EEXIST;
	}
	return hotplug_attach(xs, &hd, fe_nodes, sizeof(fe_nodes) / sizeof(fe_nodes[0]), be_nodes,
			      sizeof(be_nodes) / sizeof(be_nodes[0]));
}

int domctl_block_attach_cfg(const struct domctl_ctx *ctx, const struct domcfg *cfg, uint32_t domid)
{
	struct xs_client *xs;
	int rc = 0;

	if (!cfg->ndisks)
		return 0;
	rc = hotplug_store_open(ctx, &xs);
	if (rc)
		return rc;
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
	if (hotplug_store_open(ctx, &xs))
		return DOMCTL_EXIT_ERROR;
	rc = block_attach_one(xs, domid, pos[2], abspath, set[0], 0);
	xs_client_close(xs);
	if (rc)
		return DOMCTL_EXIT_ERROR;
	printf("%s: %s attached as %s%s\n", pos[0], abspath, pos[2], set[0] ? " (read-only)" : "");
	return DOMCTL_EXIT_OK;
}

static int block_parse(const char *arg, uint32_t *devid, char *label, size_t len)
{
	if (domctl_block_devid(arg, devid)) {
		domctl_err("%s: not a PV disk name (xvda .. xvdzz)", arg);
		return -EINVAL;
	}
	snprintf(label, len, "disk %s", arg);
	return 0;
}

static void block_row(void *arg, struct xs_client *xs, const char *devid, const char *be, const char *fe,
		      int be_state, int fe_state)
{
	char dev[16], params[LAMINA_PATH_MAX], mode[8];

	if (hotplug_read(xs, be, "dev", dev, sizeof(dev)))
		snprintf(dev, sizeof(dev), "?");
	if (hotplug_read(xs, be, "params", params, sizeof(params)))
		snprintf(params, sizeof(params), "?");
	if (hotplug_read(xs, be, "mode", mode, sizeof(mode)))
		snprintf(mode, sizeof(mode), "?");
	printf("%-8s %-10s %-4s %-12s %-12s %s\n", dev, devid, mode, hotplug_state_name(be_state),
	       hotplug_state_name(fe_state), params);
}

static const struct hotplug_type block_type = {
	.type = "vbd",
	.daemon = "lamina-blkback",
	.parse = block_parse,
	.list_header = "Target   Devid      Mode Back-end     Front-end    Image",
	.row = block_row,
};

int domctl_cmd_block_detach(struct domctl_ctx *ctx, int argc, char **argv)
{
	return hotplug_cmd_detach(ctx, argc, argv, &block_type);
}

int domctl_cmd_block_list(struct domctl_ctx *ctx, int argc, char **argv)
{
	return hotplug_cmd_list(ctx, argc, argv, &block_type);
}
