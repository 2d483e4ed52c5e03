/* Ethernet dispatch, checksums, the ARP cache and the address parsers of the guest network layer.
 * Every received byte is untrusted: lengths are checked before each field is read. */
#include "net.h"

static const uint8_t net_bcast[NET_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

int net_if_init(struct net_if *nif, const uint8_t mac[NET_ALEN], uint32_t ip, unsigned prefix,
		const struct net_ops *ops, void *arg)
{
	if (!nif || !mac || !ops || !ops->xmit || ip == 0 || prefix > 32)
		return -XEN_EINVAL;
	if (mac[0] & 1) /* a multicast source address is never ours */
		return -XEN_EINVAL;
	memset(nif, 0, sizeof(*nif));
	memcpy(nif->mac, mac, NET_ALEN);
	nif->ip = ip;
	nif->mask = prefix ? (uint32_t)(0xffffffffu << (32 - prefix)) : 0;
	nif->ops = ops;
	nif->arg = arg;
	return 0;
}

uint32_t net_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t s = sum;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		s += (uint32_t)((p[i] << 8) | p[i + 1]);
	if (len & 1)
		s += (uint32_t)(p[len - 1] << 8);
	while (s >> 32)
		s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

uint16_t net_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint64_t net_now(struct net_if *nif)
{
	return nif->ops->now_ms ? nif->ops->now_ms(nif->arg) : 0;
}

int net_eth_send(struct net_if *nif, const uint8_t dst[NET_ALEN], uint16_t type, size_t len)
{
	int rc;

	if (len > NET_MTU)
		return -XEN_EMSGSIZE;
	memcpy(nif->tx, dst, NET_ALEN);
	memcpy(nif->tx + NET_ALEN, nif->mac, NET_ALEN);
	net_put16(nif->tx + 12, type);
	rc = nif->ops->xmit(nif->arg, nif->tx, NET_ETH_HLEN + len);
	if (rc < 0) {
		nif->st.tx_errors++;
		return rc;
	}
	nif->st.tx_frames++;
	nif->st.tx_bytes += NET_ETH_HLEN + len;
	return 0;
}

int net_arp_lookup(struct net_if *nif, uint32_t ip, uint8_t mac[NET_ALEN])
{
	uint64_t now = net_now(nif);
	unsigned i;

	for (i = 0; i < NET_ARP_SLOTS; i++) {
		struct net_arp_entry *e = &nif->arp[i];

		if (!e->valid || e->ip != ip)
			continue;
		if (now - e->stamp_ms > NET_ARP_TTL_MS) {
			e->valid = false;
			return -XEN_ENOENT;
		}
		memcpy(mac, e->mac, NET_ALEN);
		return 0;
	}
	return -XEN_ENOENT;
}

/* Refresh an existing entry, else take a free slot, else replace round-robin: a flood of ARP
 * traffic can only evict, never grow, the cache. */
void net_arp_learn(struct net_if *nif, uint32_t ip, const uint8_t mac[NET_ALEN])
{
	struct net_arp_entry *e = NULL;
	unsigned i;

	for (i = 0; i < NET_ARP_SLOTS && !e; i++)
		if (nif->arp[i].valid && nif->arp[i].ip == ip)
			e = &nif->arp[i];
	for (i = 0; i < NET_ARP_SLOTS && !e; i++)
		if (!nif->arp[i].valid)
			e = &nif->arp[i];
	if (!e) {
		e = &nif->arp[nif->arp_next];
		nif->arp_next = (nif->arp_next + 1) % NET_ARP_SLOTS;
	}
	e->ip = ip;
	memcpy(e->mac, mac, NET_ALEN);
	e->valid = true;
	e->stamp_ms = net_now(nif);
	nif->st.arp_learned++;
}

static int net_arp_send(struct net_if *nif, uint16_t op, const uint8_t *dst_eth, const uint8_t *tha, uint32_t tpa)
{
	uint8_t *a = nif->tx + NET_ETH_HLEN;

	net_put16(a, 1);		  /* Ethernet */
	net_put16(a + 2, NET_ETHERTYPE_IPV4);
	a[4] = NET_ALEN;
	a[5] = 4;
	net_put16(a + 6, op);
	memcpy(a + 8, nif->mac, NET_ALEN);
	net_put32(a + 14, nif->ip);
	memcpy(a + 18, tha, NET_ALEN);
	net_put32(a + 24, tpa);
	return net_eth_send(nif, dst_eth, NET_ETHERTYPE_ARP, NET_ARP_LEN);
}

int net_arp_request(struct net_if *nif, uint32_t ip)
{
	static const uint8_t zero[NET_ALEN];

	nif->st.arp_requests_sent++;
	return net_arp_send(nif, 1, net_bcast, zero, ip);
}

static int net_arp_input(struct net_if *nif, const uint8_t *a, size_t len)
{
	uint8_t sha[NET_ALEN];
	uint32_t spa, tpa;
	uint16_t op;

	if (len < NET_ARP_LEN || net_get16(a) != 1 || net_get16(a + 2) != NET_ETHERTYPE_IPV4 || a[4] != NET_ALEN ||
	    a[5] != 4)
		goto bad;
	op = net_get16(a + 6);
	memcpy(sha, a + 8, NET_ALEN);
	spa = net_get32(a + 14);
	tpa = net_get32(a + 24);
	if ((op != 1 && op != 2) || (sha[0] & 1) || spa == 0 || spa == 0xffffffffu)
		goto bad;
	if (tpa != nif->ip) {
		nif->st.drop_not_for_us++;
		return -XEN_ENOENT;
	}
	net_arp_learn(nif, spa, sha);
	if (op == 1) {
		nif->st.arp_replies_sent++;
		return net_arp_send(nif, 2, sha, sha, spa);
	}
	return 0;
bad:
	nif->st.drop_arp_bad++;
	return -XEN_EBADMSG;
}

int net_input(struct net_if *nif, const uint8_t *frame, size_t len, unsigned flags)
{
	uint16_t type;

	nif->st.rx_frames++;
	nif->st.rx_bytes += len;
	if (len < NET_ETH_HLEN) {
		nif->st.drop_short++;
		return -XEN_EBADMSG;
	}
	if (memcmp(frame, nif->mac, NET_ALEN) != 0 && memcmp(frame, net_bcast, NET_ALEN) != 0) {
		nif->st.drop_not_for_us++;
		return -XEN_ENOENT;
	}
	type = net_get16(frame + 12);
	if (type == NET_ETHERTYPE_ARP)
		return net_arp_input(nif, frame + NET_ETH_HLEN, len - NET_ETH_HLEN);
	if (type == NET_ETHERTYPE_IPV4)
		return net_ipv4_input(nif, frame + NET_ETH_HLEN, len - NET_ETH_HLEN, flags);
	nif->st.drop_ethertype++;
	return -XEN_EOPNOTSUPP;
}

/* Decimal 0..max with 1-3 digits, ending at *end. */
static int net_parse_dec(const char **s, unsigned max, unsigned *out)
{
	unsigned v = 0, n = 0;

	while (**s >= '0' && **s <= '9' && n < 3) {
		v = v * 10 + (unsigned)(**s - '0');
		(*s)++;
		n++;
	}
	if (n == 0 || v > max || (**s >= '0' && **s <= '9'))
		return -XEN_EINVAL;
	*out = v;
	return 0;
}

int net_parse_cidr(const char *s, uint32_t *ip, unsigned *prefix)
{
	uint32_t v = 0;
	unsigned part, i, pfx = 24;

	for (i = 0; i < 4; i++) {
		if (net_parse_dec(&s, 255, &part) < 0)
			return -XEN_EINVAL;
		v = (v << 8) | part;
		if (i < 3 && *s++ != '.')
			return -XEN_EINVAL;
	}
	if (*s == '/') {
		s++;
		if (net_parse_dec(&s, 32, &pfx) < 0)
			return -XEN_EINVAL;
	}
	if (*s != '\0')
		return -XEN_EINVAL;
	*ip = v;
	if (prefix)
		*prefix = pfx;
	return 0;
}

static int net_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int net_parse_mac(const char *s, uint8_t mac[NET_ALEN])
{
	uint8_t m[NET_ALEN];
	unsigned i;

	for (i = 0; i < NET_ALEN; i++) {
		int hi = net_hexval(s[0]), lo = hi < 0 ? -1 : net_hexval(s[1]);

		if (hi < 0 || lo < 0)
			return -XEN_EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
		s += 2;
		if (i < NET_ALEN - 1 && *s++ != ':')
			return -XEN_EINVAL;
	}
	if (*s != '\0')
		return -XEN_EINVAL;
	memcpy(mac, m, NET_ALEN);
	return 0;
}
