/* Network commands of the toolstack. A vif is two store directories, laid out as Xen's toolstack
 * does: /local/domain/0/backend/vif/D/N (lamina-netback's) and /local/domain/D/device/vif/N (the
 * guest's), linked by frontend/backend nodes, both carrying the MAC; attaching writes both in one
 * transaction, detaching sets online=0 and waits for the back-end to close before removing them. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <time.h>
#include <xen/io/xenbus.h>

#include "cmd_block.h"
#include "cmd_net.h"
#include "xs_client.h"

#define NET_ROOT "/local/domain/0/backend/vif"
#define NET_WAIT_MS 5000
#define NET_MAX_DEVS 64

int domctl_net_gen_mac(uint8_t mac[6])
{
	uint8_t rnd[3];

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	mac[0] = 0x00;
	mac[1] = 0x16;
	mac[2] = 0x3e;
	mac[3] = rnd[0] & 0x7f;
	mac[4] = rnd[1];
	mac[5] = rnd[2];
	return 0;
}

static int net_write(struct xs_client *xs, uint32_t tx, const char *dir, const char *node, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int net_write(struct xs_client *xs, uint32_t tx, const char *dir, const char *node, const char *fmt, ...)
{
	char path[256], val[128];
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", dir, node);
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	return xs_client_write(xs, tx, path, val, (uint32_t)strlen(val));
}

static int net_read(struct xs_client *xs, const char *dir, const char *node, char *out, size_t len)
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

static void net_paths(uint32_t domid, uint32_t devid, char *be, char *fe, size_t len)
{
	snprintf(be, len, NET_ROOT "/%u/%u", domid, devid);
	snprintf(fe, len, "/local/domain/%u/device/vif/%u", domid, devid);
}

static int net_write_dirs(struct xs_client *xs, uint32_t tx, uint32_t domid, uint32_t devid, const char *bridge,
			  const char *mac, int allow_spoof)
{
	char be[128], fe[128], own_fe[16], own_be[] = "n0", read_be[16];
	const char *const fe_perms[] = { own_fe, "r0" }, *const be_perms[] = { own_be, read_be };
	int rc = 0;

	net_paths(domid, devid, be, fe, sizeof(be));
	snprintf(own_fe, sizeof(own_fe), "n%u", domid);
	snprintf(read_be, sizeof(read_be), "r%u", domid);
	/* Permissions first: the nodes written below inherit them. The guest owns its half (it
	 * writes state, ring refs and ports there); ours it may only read. */
	rc = xs_client_mkdir(xs, tx, fe);
	if (!rc)
		rc = xs_client_set_perms(xs, tx, fe, fe_perms, 2);
	if (!rc)
		rc = xs_client_mkdir(xs, tx, be);
	if (!rc)
		rc = xs_client_set_perms(xs, tx, be, be_perms, 2);
	if (rc)
		return rc;
	rc |= net_write(xs, tx, fe, "backend", "%s", be);
	rc |= net_write(xs, tx, fe, "backend-id", "0");
	rc |= net_write(xs, tx, fe, "state", "%d", XenbusStateInitialising);
	rc |= net_write(xs, tx, fe, "handle", "%u", devid);
	rc |= net_write(xs, tx, fe, "mac", "%s", mac);
	rc |= net_write(xs, tx, be, "frontend", "%s", fe);
	rc |= net_write(xs, tx, be, "frontend-id", "%u", domid);
	rc |= net_write(xs, tx, be, "online", "1");
	rc |= net_write(xs, tx, be, "state", "%d", XenbusStateInitialising);
	rc |= net_write(xs, tx, be, "handle", "%u", devid);
	rc |= net_write(xs, tx, be, "mac", "%s", mac);
	rc |= net_write(xs, tx, be, "bridge", "%s", bridge);
	rc |= net_write(xs, tx, be, "allow-spoof", "%d", allow_spoof ? 1 : 0);
	rc |= net_write(xs, tx, be, "type", "vif");
	return rc ? -EIO : 0;
}

/* Wait until the back-end left Initialising: InitWait (offered) is 0, a tap/bridge error -EIO. */
static int net_wait_offer(struct xs_client *xs, uint32_t domid, uint32_t devid)
{
	char be[128], fe[128], st[16], err[256];
	struct timespec t = { 0, 20 * 1000000 };

	net_paths(domid, devid, be, fe, sizeof(be));
	for (int waited = 0; waited < NET_WAIT_MS; waited += 20) {
		if (net_read(xs, be, "hotplug-status", st, sizeof(st)) == 0 && strcmp(st, "error") == 0) {
			if (net_read(xs, be, "hotplug-error", err, sizeof(err)))
				snprintf(err, sizeof(err), "unknown error");
			domctl_err("vif %u.%u: lamina-netback refused it: %s", domid, devid, err);
			return -EIO;
		}
		if (net_read(xs, be, "state", st, sizeof(st)) == 0 && atoi(st) >= XenbusStateInitWait)
			return 0;
		nanosleep(&t, NULL);
	}
	domctl_err("vif %u.%u: lamina-netback did not pick it up within %d ms (is it running? domctl host start)",
		   domid, devid, NET_WAIT_MS);
	return -ETIMEDOUT;
}

/* The lowest device number free for domid. */
static int net_free_devid(struct xs_client *xs, uint32_t domid, uint32_t *devid)
{
	char be[128], fe[128], st[16];

	for (uint32_t d = 0; d < NET_MAX_DEVS; d++) {
		net_paths(domid, d, be, fe, sizeof(be));
		if (net_read(xs, be, "state", st, sizeof(st)) == -ENOENT && net_read(xs, fe, "state", st, sizeof(st)) == -ENOENT) {
			*devid = d;
			return 0;
		}
	}
	return -ENOSPC;
}

static int net_attach_one(struct xs_client *xs, uint32_t domid, uint32_t devid, const char *bridge,
			  const uint8_t macb[6], int allow_spoof)
{
	char be[128], fe[128], mac[18];
	uint32_t tx;
	int rc = 0;

	if (!bridge[0] || strlen(bridge) >= DOMCFG_BRIDGE_MAX || strchr(bridge, '/')) {
		domctl_err("'%s': not a bridge name", bridge);
		return -EINVAL;
	}
	domcfg_format_mac(macb, mac);
	net_paths(domid, devid, be, fe, sizeof(be));
	for (int tries = 0; tries < 10; tries++) {
		rc = xs_client_txn_start(xs, &tx);
		if (rc)
			break;
		rc = net_write_dirs(xs, tx, domid, devid, bridge, mac, allow_spoof);
		rc = xs_client_txn_end(xs, tx, rc == 0) ?: rc;
		if (rc != -EAGAIN)
			break;
	}
	if (rc) {
		domctl_err("vif %u.%u: cannot write the store: %s", domid, devid, strerror(-rc));
		return rc;
	}
	rc = net_wait_offer(xs, domid, devid);
	if (rc) { /* leave nothing half-attached */
		xs_client_rm(xs, 0, be);
		xs_client_rm(xs, 0, fe);
	}
	return rc;
}

int domctl_net_attach_cfg(const struct domctl_ctx *ctx, const struct domcfg *cfg, uint32_t domid)
{
	struct xs_client *xs;
	int rc;

	if (!cfg->nnics)
		return 0;
	rc = xs_client_open_rundir(ctx->rundir, &xs);
	if (rc) {
		domctl_err("cannot reach the store: %s", strerror(-rc));
		return rc;
	}
	for (unsigned i = 0; i < cfg->nnics && !rc; i++)
		rc = net_attach_one(xs, domid, i, cfg->nics[i].bridge[0] ? cfg->nics[i].bridge : DOMCTL_NET_BRIDGE,
				    cfg->nics[i].mac, 0);
	xs_client_close(xs);
	return rc;
}

int domctl_cmd_net_attach(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = { "--allow-spoof", NULL }, *const vnames[] = { "--bridge", "--mac", NULL };
	const char *values[2] = { NULL, NULL }, *pos[1];
	char err[128], macs[18];
	struct xs_client *xs;
	int set[1] = { 0 }, npos, rc;
	uint32_t domid, devid;
	uint8_t mac[6];

	if (domctl_args(ctx, argc, argv, flags, set, vnames, values, pos, 1, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 1 || !values[0])
		return domctl_usage(ctx);
	if (values[1] ? domcfg_parse_mac(values[1], mac, err, sizeof(err)) : domctl_net_gen_mac(mac)) {
		domctl_err("--mac %s: %s", values[1] ? values[1] : "", values[1] ? err : "no randomness");
		return DOMCTL_EXIT_USAGE;
	}
	if (domctl_block_domid(ctx, pos[0], &domid))
		return DOMCTL_EXIT_ERROR;
	rc = xs_client_open_rundir(ctx->rundir, &xs);
	if (rc) {
		domctl_err("cannot reach the store: %s", strerror(-rc));
		return DOMCTL_EXIT_ERROR;
	}
	rc = net_free_devid(xs, domid, &devid);
	if (rc)
		domctl_err("%s: no free vif number", pos[0]);
	else
		rc = net_attach_one(xs, domid, devid, values[0], mac, set[0]);
	xs_client_close(xs);
	if (rc)
		return DOMCTL_EXIT_ERROR;
	domcfg_format_mac(mac, macs);
	printf("%s: vif%u.%u attached to %s, mac %s%s\n", pos[0], domid, devid, values[0], macs,
	       set[0] ? " (source-MAC spoofing allowed)" : "");
	return DOMCTL_EXIT_OK;
}

int domctl_cmd_net_detach(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = { "--force", NULL };
	const char *pos[2];
	char be[128], fe[128], st[16], *end;
	struct timespec t = { 0, 20 * 1000000 };
	int set[1] = { 0 }, npos, rc, waited, timeout_ms = 10000;
	struct xs_client *xs;
	uint32_t domid;
	unsigned long devid;

	if (domctl_args(ctx, argc, argv, flags, set, NULL, NULL, pos, 2, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 2)
		return domctl_usage(ctx);
	errno = 0;
	devid = strtoul(pos[1], &end, 10);
	if (errno || *end || pos[1][0] < '0' || pos[1][0] > '9' || devid >= NET_MAX_DEVS) {
		domctl_err("%s: not a vif number (0..%d)", pos[1], NET_MAX_DEVS - 1);
		return DOMCTL_EXIT_USAGE;
	}
	if (domctl_block_domid(ctx, pos[0], &domid))
		return DOMCTL_EXIT_ERROR;
	rc = xs_client_open_rundir(ctx->rundir, &xs);
	if (rc) {
		domctl_err("cannot reach the store: %s", strerror(-rc));
		return DOMCTL_EXIT_ERROR;
	}
	net_paths(domid, (uint32_t)devid, be, fe, sizeof(be));
	rc = DOMCTL_EXIT_ERROR;
	if (net_read(xs, be, "state", st, sizeof(st))) {
		domctl_err("%s has no vif %lu", pos[0], devid);
		goto out;
	}
	if (!set[0]) {
		net_write(xs, 0, be, "online", "0");
		for (waited = 0; waited < timeout_ms; waited += 20) {
			if (net_read(xs, be, "state", st, sizeof(st)) || atoi(st) == XenbusStateClosed)
				break;
			nanosleep(&t, NULL);
		}
		if (waited >= timeout_ms) {
			domctl_err("%s: the guest did not close vif %lu within %d s (retry with --force)", pos[0], devid,
				   timeout_ms / 1000);
			rc = DOMCTL_EXIT_TIMEOUT;
			goto out;
		}
	}
	xs_client_rm(xs, 0, be);
	xs_client_rm(xs, 0, fe);
	printf("%s: vif%u.%lu detached%s\n", pos[0], domid, devid, set[0] ? " (forced)" : "");
	rc = DOMCTL_EXIT_OK;
out:
	xs_client_close(xs);
	return rc;
}

static const char *net_state_name(int s)
{
	static const char *const names[] = { "unknown", "initialising", "initwait", "initialised",
					     "connected", "closing", "closed", "reconfiguring", "reconfigured" };

	return s >= 0 && s < (int)(sizeof(names) / sizeof(names[0])) ? names[s] : "?";
}

int domctl_cmd_net_list(struct domctl_ctx *ctx, int argc, char **argv)
{
	char dir[96], be[160], fe[160], mac[24], bridge[24], bst[8], fst[8];
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
	snprintf(dir, sizeof(dir), NET_ROOT "/%u", domid);
	xs_client_ls(xs, 0, dir, &devs, &n);
	printf("%-5s %-10s %-18s %-10s %-12s %s\n", "Dev", "Interface", "MAC", "Bridge", "Back-end", "Front-end");
	for (unsigned i = 0; i < n; i++) {
		snprintf(be, sizeof(be), "%s/%s", dir, devs[i]);
		if (net_read(xs, be, "frontend", fe, sizeof(fe)))
			continue;
		if (net_read(xs, be, "mac", mac, sizeof(mac)))
			snprintf(mac, sizeof(mac), "?");
		if (net_read(xs, be, "bridge", bridge, sizeof(bridge)))
			snprintf(bridge, sizeof(bridge), "?");
		if (net_read(xs, be, "state", bst, sizeof(bst)))
			snprintf(bst, sizeof(bst), "-1");
		if (net_read(xs, fe, "state", fst, sizeof(fst)))
			snprintf(fst, sizeof(fst), "-1");
		printf("%-5s vif%u.%-6s %-18s %-10s %-12s %s\n", devs[i], domid, devs[i], mac, bridge,
		       net_state_name(atoi(bst)), net_state_name(atoi(fst)));
	}
	free(devs);
	xs_client_close(xs);
	return DOMCTL_EXIT_OK;
}

int domctl_net_stat_print(const struct domctl_ctx *ctx, uint32_t domid)
{
	char dir[4096], path[4400], line[2048], prefix[32];
	struct dirent *e;
	DIR *dp;
	FILE *f;
	int count = 0;

	snprintf(dir, sizeof(dir), "%s/netback", ctx->rundir);
	snprintf(prefix, sizeof(prefix), "%u-", domid);
	dp = opendir(dir);
	if (!dp)
		return 0;
	while ((e = readdir(dp))) {
		size_t l = strlen(e->d_name);

		if (strncmp(e->d_name, prefix, strlen(prefix)) || l < 5 || strcmp(e->d_name + l - 4, ".txt"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f)) {
			printf("  net %s", line);
			count++;
		}
		fclose(f);
	}
	closedir(dp);
	return count;
}

/* The default bridge: a Linux bridge with one address and nothing else. No port but the vifs,
 * IPv4 forwarding off on it (it never routes), IPv6 off (no router discovery): Domain-0 talks to
 * the guests and the guests to each other, and nothing reaches any other network. */
static int net_sysctl(const char *path, const char *val)
{
	FILE *f = fopen(path, "we");
	int rc = 0;

	if (!f)
		return -errno;
	if (fputs(val, f) < 0)
		rc = -EIO;
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	return rc;
}

int domctl_net_default_bridge(void)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	int s, rc = 0;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (ioctl(s, SIOCBRADDBR, DOMCTL_NET_BRIDGE) < 0 && errno != EEXIST) {
		rc = -errno;
		goto out;
	}
	net_sysctl("/proc/sys/net/ipv6/conf/" DOMCTL_NET_BRIDGE "/disable_ipv6", "1");
	rc = net_sysctl("/proc/sys/net/ipv4/conf/" DOMCTL_NET_BRIDGE "/forwarding", "0");
	if (rc)
		goto out;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", DOMCTL_NET_BRIDGE);
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, DOMCTL_NET_BRIDGE_ADDR, &sin->sin_addr);
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0 && errno != EEXIST) {
		rc = -errno;
		goto out;
	}
	inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
	if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) {
		rc = -errno;
		goto out;
	}
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		rc = -errno;
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		rc = -errno;
out:
	close(s);
	return rc;
}
