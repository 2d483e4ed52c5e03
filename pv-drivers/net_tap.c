/* Tap devices and Linux bridges for lamina-netback, in the caller's network namespace: a vif's
 * tap is vifD.N, non-blocking, without packet information, attached to its bridge. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netback.h"

int netback_vif_name(uint32_t domid, uint32_t devid, char *out, size_t len)
{
	int n = snprintf(out, len, "vif%u.%u", domid, devid);

	return n < 0 || (size_t)n >= len || (size_t)n >= IFNAMSIZ ? -ENAMETOOLONG : 0;
}

static int netback_ifreq(struct ifreq *ifr, const char *name)
{
	memset(ifr, 0, sizeof(*ifr));
	if (strlen(name) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	memcpy(ifr->ifr_name, name, strlen(name));
	return 0;
}

int netback_tap_open(const char *name, int *fd)
{
	struct ifreq ifr;
	int tfd, rc;

	rc = netback_ifreq(&ifr, name);
	if (rc < 0)
		return rc;
	tfd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (tfd < 0)
		return -errno;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(tfd, TUNSETIFF, &ifr) < 0) {
		rc = -errno;
		goto out_close;
	}
	*fd = tfd;
	return 0;
out_close:
	close(tfd);
	return rc;
}

/* An AF_INET datagram socket: the handle the interface ioctls want. */
static int netback_ctl_sock(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	return s < 0 ? -errno : s;
}

int netback_link_up(const char *name, unsigned mtu)
{
	struct ifreq ifr;
	int s, rc;

	s = netback_ctl_sock();
	if (s < 0)
		return s;
	rc = netback_ifreq(&ifr, name);
	if (rc < 0)
		goto out;
	if (mtu) {
		ifr.ifr_mtu = (int)mtu;
		if (ioctl(s, SIOCSIFMTU, &ifr) < 0) {
			rc = -errno;
			goto out;
		}
	}
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		rc = -errno;
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	rc = ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
out:
	close(s);
	return rc;
}

int netback_bridge_create(const char *bridge)
{
	int s, rc;

	if (strlen(bridge) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	s = netback_ctl_sock();
	if (s < 0)
		return s;
	rc = ioctl(s, SIOCBRADDBR, bridge) < 0 ? -errno : 0;
	if (rc == -EEXIST)
		rc = 0;
	close(s);
	return rc;
}

int netback_bridge_add(const char *bridge, const char *ifname)
{
	struct ifreq ifr;
	int s, rc, idx;

	s = netback_ctl_sock();
	if (s < 0)
		return s;
	rc = netback_ifreq(&ifr, ifname);
	if (rc < 0)
		goto out;
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) {
		rc = -errno;
		goto out;
	}
	idx = ifr.ifr_ifindex;
	rc = netback_ifreq(&ifr, bridge);
	if (rc < 0)
		goto out;
	ifr.ifr_ifindex = idx;
	rc = ioctl(s, SIOCBRADDIF, &ifr) < 0 ? -errno : 0;
out:
	close(s);
	return rc;
}
