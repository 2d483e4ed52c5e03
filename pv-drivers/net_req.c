/* netif tx request chains as a front-end wrote them: parsed from private copies of the slots and
 * checked against every bound before any grant is touched; also the source-MAC rule. */
#include <errno.h>
#include <string.h>

#include "netback.h"

#define NETBACK_PAGE 4096u

static const char *const netback_drop_names[NETBACK_DROP_NR] = {
	[NETBACK_DROP_SIZE] = "size",		[NETBACK_DROP_FRAGS] = "frags",
	[NETBACK_DROP_EXTRA] = "extra",		[NETBACK_DROP_GRANT] = "grant",
	[NETBACK_DROP_SPOOF] = "spoof",		[NETBACK_DROP_TAP] = "tap",
	[NETBACK_DROP_RX_NOBUF] = "rx_nobuf",	[NETBACK_DROP_RX_GRANT] = "rx_grant",
	[NETBACK_DROP_CSUM] = "csum",
};

const char *netback_drop_name(enum netback_drop d)
{
	return (unsigned)d < NETBACK_DROP_NR ? netback_drop_names[d] : "?";
}

/* Count the extra-info slots after slot 0 (*bad when one is of a type we did not offer). Returns
 * how many, -EAGAIN while the chain is incomplete, -EPROTO when it never ends. */
static int netback_tx_extras(const struct netif_tx_request *reqs, unsigned n, int *bad, const char **why)
{
	unsigned i = 1;

	for (;;) {
		struct netif_extra_info ex;

		if (i >= NETBACK_MAX_SLOTS) {
			*why = "extra-info chain never ends";
			return -EPROTO;
		}
		if (i >= n)
			return -EAGAIN;
		memcpy(&ex, &reqs[i], sizeof(ex));
		/* We offer no GSO and no hash; multicast filter updates are accepted and ignored. */
		if (ex.type != XEN_NETIF_EXTRA_TYPE_MCAST_ADD && ex.type != XEN_NETIF_EXTRA_TYPE_MCAST_DEL)
			*bad = 1;
		i++;
		if (!(ex.flags & XEN_NETIF_EXTRA_FLAG_MORE))
			return (int)(i - 1);
	}
}

int netback_tx_parse(const struct netif_tx_request *reqs, unsigned n, struct netback_chain *c,
		     enum netback_drop *drop, const char **why)
{
	size_t rest;
	unsigned s, extras = 0;
	int bad = 0, rc;

	memset(c, 0, sizeof(*c));
	*why = NULL;
	if (n == 0)
		return -EAGAIN;
	c->frag[0] = reqs[0];
	c->nfrags = 1;
	if (reqs[0].flags & NETTXF_extra_info) {
		rc = netback_tx_extras(reqs, n, &bad, why);
		if (rc < 0)
			return rc;
		extras = (unsigned)rc;
	}
	c->extra_after = extras;
	s = 1 + extras;
	/* Follow more_data: slot 0 carries the whole frame's length, each fragment its own. */
	{
		uint16_t flags = reqs[0].flags;

		while (flags & NETTXF_more_data) {
			if (c->nfrags >= NETBACK_MAX_SLOTS || s >= NETBACK_MAX_SLOTS + extras) {
				*why = "fragment chain longer than the slot limit";
				return -EPROTO;
			}
			if (s >= n)
				return -EAGAIN;
			c->frag[c->nfrags++] = reqs[s];
			flags = reqs[s].flags;
			s++;
		}
	}
	c->slots = s;
	if (bad) { /* answered with errors slot by slot, once the whole chain is known */
		*drop = NETBACK_DROP_EXTRA;
		*why = "extra-info type not offered";
		return -EBADMSG;
	}

	c->len = reqs[0].size;
	if (c->len < NETBACK_ETH_HLEN || c->len > NETBACK_FRAME_MAX) {
		*drop = NETBACK_DROP_SIZE;
		*why = c->len < NETBACK_ETH_HLEN ? "frame shorter than an Ethernet header" : "frame too long";
		return -EBADMSG;
	}
	/* Slot 0's own data is its size minus the fragments that follow. */
	rest = c->len;
	for (s = 1; s < c->nfrags; s++) {
		if (c->frag[s].size == 0 || c->frag[s].size > rest) {
			*drop = NETBACK_DROP_FRAGS;
			*why = "fragment sizes exceed the frame length";
			return -EBADMSG;
		}
		rest -= c->frag[s].size;
	}
	if (rest == 0) {
		*drop = NETBACK_DROP_FRAGS;
		*why = "first fragment empty";
		return -EBADMSG;
	}
	c->frag[0].size = (uint16_t)rest;
	for (s = 0; s < c->nfrags; s++)
		if ((uint32_t)c->frag[s].offset + c->frag[s].size > NETBACK_PAGE) {
			*drop = NETBACK_DROP_FRAGS;
			*why = "fragment crosses its page";
			return -EBADMSG;
		}
	return (int)c->slots;
}

int netback_tx_mac_ok(const struct netback_vif *vif, const uint8_t *frame, size_t len)
{
	if (len < NETBACK_ETH_HLEN)
		return -EBADMSG;
	if (vif->allow_spoof)
		return 0;
	return memcmp(frame + 6, vif->mac, 6) == 0 ? 0 : -EPERM;
}

static uint32_t netback_sum16(uint32_t sum, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	return sum;
}

int netback_csum_fill(uint8_t *frame, size_t len)
{
	uint8_t *ip = frame + NETBACK_ETH_HLEN, *l4;
	size_t ihl, tot, off;
	uint32_t sum;

	if (len < NETBACK_ETH_HLEN + 20 || frame[12] != 0x08 || frame[13] != 0x00 || (ip[0] >> 4) != 4)
		return -EBADMSG;
	ihl = (size_t)(ip[0] & 0xf) * 4;
	tot = (size_t)(ip[2] << 8 | ip[3]);
	if (ihl < 20 || tot < ihl || NETBACK_ETH_HLEN + tot > len || (ip[6] & 0x3f) || ip[7])
		return -EBADMSG; /* fragments carry no L4 header to fill */
	if (ip[9] == 6)
		off = 16;
	else if (ip[9] == 17)
		off = 6;
	else
		return -EBADMSG;
	if (tot - ihl < off + 2)
		return -EBADMSG;
	l4 = ip + ihl;
	/* The guest left the pseudo-header sum in the field: summing the segment over it completes
	 * the checksum, as hardware offload would. */
	sum = netback_sum16(0, l4, tot - ihl);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = (uint16_t)~sum;
	if (ip[9] == 17 && sum == 0)
		sum = 0xffff;
	l4[off] = (uint8_t)(sum >> 8);
	l4[off + 1] = (uint8_t)sum;
	return 0;
}
