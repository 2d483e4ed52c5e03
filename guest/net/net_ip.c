/* IPv4 input and output for the guest network layer: header checks, no fragments (refused and
 * counted), ICMP echo answered, UDP delivered to the user or echoed on the configured port. */
#include "net.h"

static uint32_t net_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
	uint8_t ph[12];

	net_put32(ph, src);
	net_put32(ph + 4, dst);
	ph[8] = 0;
	ph[9] = proto;
	net_put16(ph + 10, (uint16_t)len);
	return net_csum_add(0, ph, sizeof(ph));
}

/* The next hop's MAC: the destination on our subnet, else nothing (no routes: Lamina's guests
 * talk to their bridge only). Asks by ARP when unknown. */
static int net_next_hop(struct net_if *nif, uint32_t dst, uint8_t mac[NET_ALEN])
{
	if (dst == 0xffffffffu || dst == (nif->ip | ~nif->mask)) {
		memset(mac, 0xff, NET_ALEN);
		return 0;
	}
	if ((dst & nif->mask) != (nif->ip & nif->mask))
		return -XEN_EADDRNOTAVAIL;
	if (net_arp_lookup(nif, dst, mac) == 0)
		return 0;
	nif->st.tx_no_arp++;
	net_arp_request(nif, dst);
	return -XEN_EAGAIN;
}

/* Fill the IPv4 header at nif->tx + NET_ETH_HLEN for a payload of len bytes already in place. */
static int net_ipv4_send(struct net_if *nif, uint32_t dst, uint8_t proto, size_t len)
{
	uint8_t mac[NET_ALEN], *ip = nif->tx + NET_ETH_HLEN;
	int rc;

	if (len > NET_MTU - NET_IP_HLEN)
		return -XEN_EMSGSIZE;
	rc = net_next_hop(nif, dst, mac);
	if (rc < 0)
		return rc;
	ip[0] = 0x45;
	ip[1] = 0;
	net_put16(ip + 2, (uint16_t)(NET_IP_HLEN + len));
	net_put16(ip + 4, nif->ip_id++);
	net_put16(ip + 6, 0x4000); /* DF: we never fragment */
	ip[8] = 64;
	ip[9] = proto;
	net_put16(ip + 10, 0);
	net_put32(ip + 12, nif->ip);
	net_put32(ip + 16, dst);
	net_put16(ip + 10, net_csum_fold(net_csum_add(0, ip, NET_IP_HLEN)));
	return net_eth_send(nif, mac, NET_ETHERTYPE_IPV4, NET_IP_HLEN + len);
}

static int net_icmp_input(struct net_if *nif, uint32_t src, const uint8_t *p, size_t len)
{
	uint8_t *out = nif->tx + NET_ETH_HLEN + NET_IP_HLEN;

	if (len < NET_ICMP_HLEN || net_csum_fold(net_csum_add(0, p, len)) != 0) {
		nif->st.drop_icmp_bad++;
		return -XEN_EBADMSG;
	}
	if (p[0] == 0 && p[1] == 0) { /* echo reply */
		nif->st.echo_replies_rx++;
		if (nif->ops->echo_reply)
			nif->ops->echo_reply(nif->arg, src, net_get16(p + 4), net_get16(p + 6), len - NET_ICMP_HLEN);
		return 0;
	}
	if (p[0] != 8 || p[1] != 0) {
		nif->st.drop_proto++;
		return -XEN_EOPNOTSUPP;
	}
	nif->st.echo_requests++;
	if (len > NET_MTU - NET_IP_HLEN) /* checked by the IP layer already; kept local for clarity */
		return -XEN_EMSGSIZE;
	memcpy(out, p, len);
	out[0] = 0;
	net_put16(out + 2, 0);
	net_put16(out + 2, net_csum_fold(net_csum_add(0, out, len)));
	nif->st.echo_replies_sent++;
	return net_ipv4_send(nif, src, NET_PROTO_ICMP, len);
}

static int net_udp_input(struct net_if *nif, uint32_t src, uint32_t dst, const uint8_t *p, size_t len,
			 unsigned flags)
{
	uint16_t ulen, sport, dport, csum;

	if (len < NET_UDP_HLEN)
		goto bad;
	ulen = net_get16(p + 4);
	if (ulen < NET_UDP_HLEN || ulen > len)
		goto bad;
	sport = net_get16(p);
	dport = net_get16(p + 2);
	csum = net_get16(p + 6);
	if (csum != 0 && !(flags & (NET_RX_CSUM_VALIDATED | NET_RX_CSUM_BLANK)) &&
	    net_csum_fold(net_csum_add(net_pseudo_sum(src, dst, NET_PROTO_UDP, ulen), p, ulen)) != 0) {
		nif->st.drop_udp_csum++;
		return -XEN_EBADMSG;
	}
	nif->st.udp_rx++;
	if (nif->udp_echo_port && dport == nif->udp_echo_port)
		return net_udp_send(nif, src, dport, sport, p + NET_UDP_HLEN, ulen - NET_UDP_HLEN);
	if (!nif->ops->udp_rx) {
		nif->st.drop_udp_no_listener++;
		return -XEN_ENOENT;
	}
	nif->ops->udp_rx(nif->arg, nif, src, sport, dport, p + NET_UDP_HLEN, ulen - NET_UDP_HLEN);
	return 0;
bad:
	nif->st.drop_udp_bad++;
	return -XEN_EBADMSG;
}

int net_ipv4_input(struct net_if *nif, const uint8_t *pkt, size_t len, unsigned flags)
{
	size_t ihl, tot;
	uint32_t src, dst;

	if (len < NET_IP_HLEN || (pkt[0] >> 4) != 4)
		goto bad;
	ihl = (size_t)(pkt[0] & 0xf) * 4;
	tot = net_get16(pkt + 2);
	if (ihl < NET_IP_HLEN || ihl > len || tot < ihl || tot > len) /* len may include Ethernet padding */
		goto bad;
	if (net_csum_fold(net_csum_add(0, pkt, ihl)) != 0) {
		nif->st.drop_ip_csum++;
		return -XEN_EBADMSG;
	}
	if (net_get16(pkt + 6) & 0x3fff) { /* MF set or a fragment offset: reassembly is not ours */
		nif->st.drop_ip_frag++;
		return -XEN_EOPNOTSUPP;
	}
	src = net_get32(pkt + 12);
	dst = net_get32(pkt + 16);
	if (dst != nif->ip && dst != 0xffffffffu && dst != (nif->ip | ~nif->mask)) {
		nif->st.drop_ip_not_for_us++;
		return -XEN_ENOENT;
	}
	if (src == 0 || src == 0xffffffffu || (src >> 28) == 0xe) /* never answer to these */
		goto bad;
	switch (pkt[9]) {
	case NET_PROTO_ICMP:
		if (dst != nif->ip) /* no answers to broadcast pings */
			return 0;
		return net_icmp_input(nif, src, pkt + ihl, tot - ihl);
	case NET_PROTO_UDP:
		return net_udp_input(nif, src, dst, pkt + ihl, tot - ihl, flags);
	default:
		nif->st.drop_proto++;
		return -XEN_EOPNOTSUPP;
	}
bad:
	nif->st.drop_ip_bad++;
	return -XEN_EBADMSG;
}

int net_udp_send(struct net_if *nif, uint32_t dst_ip, uint16_t src_port, uint16_t dst_port, const uint8_t *data,
		 size_t len)
{
	uint8_t *u = nif->tx + NET_ETH_HLEN + NET_IP_HLEN;
	uint16_t csum;
	int rc;

	if (len > NET_UDP_PAYLOAD_MAX)
		return -XEN_EMSGSIZE;
	memmove(u + NET_UDP_HLEN, data, len); /* data may already live in nif->tx (the echo path) */
	net_put16(u, src_port);
	net_put16(u + 2, dst_port);
	net_put16(u + 4, (uint16_t)(NET_UDP_HLEN + len));
	net_put16(u + 6, 0);
	csum = net_csum_fold(net_csum_add(net_pseudo_sum(nif->ip, dst_ip, NET_PROTO_UDP, NET_UDP_HLEN + len), u,
					  NET_UDP_HLEN + len));
	net_put16(u + 6, csum ? csum : 0xffff);
	rc = net_ipv4_send(nif, dst_ip, NET_PROTO_UDP, NET_UDP_HLEN + len);
	if (rc == 0)
		nif->st.udp_tx++;
	return rc;
}

int net_ping_send(struct net_if *nif, uint32_t dst_ip, uint16_t id, uint16_t seq, size_t payload_len)
{
	uint8_t *p = nif->tx + NET_ETH_HLEN + NET_IP_HLEN;
	size_t i, len = NET_ICMP_HLEN + payload_len;

	if (len > NET_MTU - NET_IP_HLEN)
		return -XEN_EMSGSIZE;
	p[0] = 8;
	p[1] = 0;
	net_put16(p + 2, 0);
	net_put16(p + 4, id);
	net_put16(p + 6, seq);
	for (i = 0; i < payload_len; i++)
		p[NET_ICMP_HLEN + i] = (uint8_t)i;
	net_put16(p + 2, net_csum_fold(net_csum_add(0, p, len)));
	return net_ipv4_send(nif, dst_ip, NET_PROTO_ICMP, len);
}
