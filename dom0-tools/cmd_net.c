/* Network commands of the toolstack: MACs in Xen's range, the vif nodes of an attach (MAC, bridge,
 * spoofing), free vif numbers, the vif statistics and the default bridge; the store directories,
 * the wait for the offer, detach and listing are dev_hotplug.c's. */
#include <errno.h>
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

#include "cmd_block.h"
#include "cmd_net.h"
#include "dev_hotplug.h"

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

/* The lowest device number free for domid. */
static int net_free_devid(struct xs_client *xs, uint32_t domid, uint32_t *devid)
{
	struct hotplug_dev hd = { .type = "vif", .domid = domid };
	char be[HOTPLUG_PATH], fe[HOTPLUG_PATH], st[16];

	for (hd.devid = 0; hd.devid < NET_MAX_DEVS; hd.devid++) {
		hotplug_paths(&hd, be, fe, sizeof(be));
		if (hotplug_read(xs, be, "state", st, sizeof(st)) == -ENOENT &&
		    hotplug_read(xs, fe, "state", st, sizeof(st)) == -ENOENT) {
			*devid = hd.devid;
			return 0;
		}
	}
	return -ENOSPC;
}

/* Attach one vif: both directories and the offer (dev_hotplug.c). */
static int net_attach_one(struct xs_client *xs, uint32_t domid, uint32_t devid, const char *bridge,
			  const uint8_t macb[6], int allow_spoof)
{
	char label[32], mac[18], handle[16];
	struct hotplug_dev hd = { .type = "vif", .daemon = "lamina-netback", .label = label, .domid = domid,
				  .devid = devid };
	const struct hotplug_node fe_nodes[] = { { "handle", handle }, { "mac", mac } };
	const struct hotplug_node be_nodes[] = {
		{ "handle", handle }, { "mac", mac }, { "bridge", bridge },
		{ "allow-spoof", allow_spoof ? "1" : "0" }, { "type", "vif" },
	};

	if (!bridge[0] || strlen(bridge) >= DOMCFG_BRIDGE_MAX || strchr(bridge, '/')) {
		domctl_err("'%s': not a bridge name", bridge);
		return -EINVAL;
	}
	domcfg_format_mac(macb, mac);
	snprintf(label, sizeof(label), "vif %u.%u", domid, devid);
	snprintf(handle, sizeof(handle), "%u", devid);
	return hotplug_attach(xs, &hd, fe_nodes, sizeof(fe_nodes) / sizeof(fe_nodes[0]), be_nodes,
			      sizeof(be_nodes) / sizeof(be_nodes[0]));
}

int domctl_net_attach_cfg(const struct domctl_ctx *ctx, const struct domcfg *cfg, uint32_t domid)
{
	struct xs_client *xs;
	int rc;

	if (!cfg->nnics)
		return 0;
	rc = hotplug_store_open(ctx, &xs);
	if (rc)
		return rc;
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
	if (domctl_block_domid(ctx, pos[0], &domid) || hotplug_store_open(ctx, &xs))
		return DOMCTL_EXIT_ERROR;
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

static int net_parse(const char *arg, uint32_t *devid, char *label, size_t len)
{
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(arg, &end, 10);
	if (errno || *end || arg[0] < '0' || arg[0] > '9' || n >= NET_MAX_DEVS) {
		domctl_err("%s: not a vif number (0..%d)", arg, NET_MAX_DEVS - 1);
		return -EINVAL;
	}
	*devid = (uint32_t)n;
	snprintf(label, len, "vif %lu", n);
	return 0;
}

static void net_row(void *arg, struct xs_client *xs, const char *devid, const char *be, const char *fe,
		    int be_state, int fe_state)
{
	const uint32_t *domid = arg;
	char mac[24], bridge[24];

	if (hotplug_read(xs, be, "mac", mac, sizeof(mac)))
		snprintf(mac, sizeof(mac), "?");
	if (hotplug_read(xs, be, "bridge", bridge, sizeof(bridge)))
		snprintf(bridge, sizeof(bridge), "?");
	printf("%-5s vif%u.%-6s %-18s %-10s %-12s %s\n", devid, *domid, devid, mac, bridge,
	       hotplug_state_name(be_state), hotplug_state_name(fe_state));
}

static const struct hotplug_type net_type = {
	.type = "vif",
	.daemon = "lamina-netback",
	.parse = net_parse,
	.list_header = "Dev   Interface  MAC                Bridge     Back-end     Front-end",
	.row = net_row,
};

int domctl_cmd_net_detach(struct domctl_ctx *ctx, int argc, char **argv)
{
	return hotplug_cmd_detach(ctx, argc, argv, &net_type);
}

int domctl_cmd_net_list(struct domctl_ctx *ctx, int argc, char **argv)
{
	return hotplug_cmd_list(ctx, argc, argv, &net_type);
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
