/* Unit tests of the guest network layer (guest/net/), hosted: checksums, address parsing, the ARP
 * cache, ICMP echo, UDP, and hostile frames (truncated, bad lengths, fragments, random bytes). */
#define NET_HOSTED 1
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../guest/net/net.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

struct sent {
	uint8_t frame[NET_FRAME_MAX];
	size_t len;
	unsigned count;
	unsigned udp_count;
	uint16_t udp_dport;
	size_t udp_len;
	uint64_t now;
};

static int t_xmit(void *arg, const uint8_t *frame, size_t len)
{
	struct sent *s = arg;

	CU_ASSERT_FATAL(len <= sizeof(s->frame));
	memcpy(s->frame, frame, len);
	s->len = len;
	s->count++;
	return 0;
}

static void t_udp_rx(void *arg, struct net_if *nif, uint32_t src_ip, uint16_t src_port, uint16_t dst_port,
		     const uint8_t *data, size_t len)
{
	struct sent *s = arg;

	s->udp_count++;
	s->udp_dport = dst_port;
	s->udp_len = len;
}

static uint64_t t_now(void *arg)
{
	return ((struct sent *)arg)->now;
}

static const struct net_ops t_ops = { .xmit = t_xmit, .udp_rx = t_udp_rx, .now_ms = t_now };
static const uint8_t our_mac[6] = { 0x00, 0x16, 0x3e, 0x00, 0x00, 0x02 };
static const uint8_t peer_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
#define OUR_IP IP(10, 0, 0, 2)
#define PEER_IP IP(10, 0, 0, 1)

static void setup(struct net_if *nif, struct sent *s)
{
	memset(s, 0, sizeof(*s));
	CU_ASSERT_FATAL(net_if_init(nif, our_mac, OUR_IP, 24, &t_ops, s) == 0);
}

/* Ethernet + IPv4 header for a payload of plen bytes of protocol proto; returns the frame length. */
static size_t build_ip(uint8_t *f, uint8_t proto, uint32_t src, uint32_t dst, size_t plen)
{
	uint8_t *ip = f + NET_ETH_HLEN;

	memcpy(f, our_mac, 6);
	memcpy(f + 6, peer_mac, 6);
	net_put16(f + 12, NET_ETHERTYPE_IPV4);
	memset(ip, 0, NET_IP_HLEN);
	ip[0] = 0x45;
	net_put16(ip + 2, (uint16_t)(NET_IP_HLEN + plen));
	ip[8] = 64;
	ip[9] = proto;
	net_put32(ip + 12, src);
	net_put32(ip + 16, dst);
	net_put16(ip + 10, net_csum_fold(net_csum_add(0, ip, NET_IP_HLEN)));
	return NET_ETH_HLEN + NET_IP_HLEN + plen;
}

static size_t build_ping(uint8_t *f, size_t payload)
{
	uint8_t *p = f + NET_ETH_HLEN + NET_IP_HLEN;
	size_t i;

	p[0] = 8;
	p[1] = 0;
	net_put16(p + 2, 0);
	net_put16(p + 4, 0x1234);
	net_put16(p + 6, 7);
	for (i = 0; i < payload; i++)
		p[8 + i] = (uint8_t)(i * 7);
	net_put16(p + 2, net_csum_fold(net_csum_add(0, p, 8 + payload)));
	return build_ip(f, NET_PROTO_ICMP, PEER_IP, OUR_IP, 8 + payload);
}

static size_t build_udp(uint8_t *f, uint16_t dport, size_t payload, int with_csum)
{
	uint8_t *u = f + NET_ETH_HLEN + NET_IP_HLEN, ph[12];
	size_t i, ulen = 8 + payload;

	net_put16(u, 40000);
	net_put16(u + 2, dport);
	net_put16(u + 4, (uint16_t)ulen);
	net_put16(u + 6, 0);
	for (i = 0; i < payload; i++)
		u[8 + i] = (uint8_t)i;
	if (with_csum) {
		net_put32(ph, PEER_IP);
		net_put32(ph + 4, OUR_IP);
		ph[8] = 0;
		ph[9] = NET_PROTO_UDP;
		net_put16(ph + 10, (uint16_t)ulen);
		net_put16(u + 6, net_csum_fold(net_csum_add(net_csum_add(0, ph, 12), u, ulen)));
	}
	return build_ip(f, NET_PROTO_UDP, PEER_IP, OUR_IP, ulen);
}

static void test_csum(void)
{
	/* RFC 1071's worked example: the sum is 0xddf2 before complementing. */
	static const uint8_t v[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	static const uint8_t odd[3] = { 0x01, 0x02, 0x03 };

	CU_ASSERT_EQUAL(net_csum_fold(net_csum_add(0, v, 8)), (uint16_t)~0xddf2);
	CU_ASSERT_EQUAL(net_csum_fold(net_csum_add(0, odd, 3)), (uint16_t)~(0x0102 + 0x0300));
	CU_ASSERT_EQUAL(net_csum_fold(0), 0xffff);
}

static void test_parse(void)
{
	uint32_t ip;
	unsigned pfx;
	uint8_t mac[6];
	static const char *const bad[] = { "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4/33", "1.2.3.4/",
					   "a.b.c.d", "1..2.3", "1.2.3.4 ", "0001.2.3.4", "1.2.3.4/1a", "-1.2.3.4" };
	size_t i;

	CU_ASSERT(net_parse_cidr("10.0.0.2/24", &ip, &pfx) == 0 && ip == IP(10, 0, 0, 2) && pfx == 24);
	CU_ASSERT(net_parse_cidr("192.168.1.255", &ip, &pfx) == 0 && ip == IP(192, 168, 1, 255) && pfx == 24);
	CU_ASSERT(net_parse_cidr("1.2.3.4/0", &ip, &pfx) == 0 && pfx == 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(net_parse_cidr(bad[i], &ip, &pfx), -XEN_EINVAL);
	CU_ASSERT(net_parse_mac("00:16:3e:AB:cd:0f", mac) == 0 && mac[2] == 0x3e && mac[3] == 0xab &&
		  mac[5] == 0x0f);
	CU_ASSERT_EQUAL(net_parse_mac("00:16:3e:ab:cd", mac), -XEN_EINVAL);
	CU_ASSERT_EQUAL(net_parse_mac("00:16:3e:ab:cd:0f:", mac), -XEN_EINVAL);
	CU_ASSERT_EQUAL(net_parse_mac("0:16:3e:ab:cd:0f", mac), -XEN_EINVAL);
	CU_ASSERT_EQUAL(net_parse_mac("00-16-3e-ab-cd-0f", mac), -XEN_EINVAL);
}

static void test_init(void)
{
	struct net_if nif;
	struct sent s;
	static const uint8_t mcast[6] = { 0x01, 0, 0, 0, 0, 1 };

	CU_ASSERT_EQUAL(net_if_init(&nif, our_mac, 0, 24, &t_ops, &s), -XEN_EINVAL);
	CU_ASSERT_EQUAL(net_if_init(&nif, our_mac, OUR_IP, 33, &t_ops, &s), -XEN_EINVAL);
	CU_ASSERT_EQUAL(net_if_init(&nif, mcast, OUR_IP, 24, &t_ops, &s), -XEN_EINVAL);
	setup(&nif, &s);
	CU_ASSERT_EQUAL(nif.mask, 0xffffff00u);
}

static size_t build_arp(uint8_t *f, uint16_t op, uint32_t spa, uint32_t tpa)
{
	uint8_t *a = f + NET_ETH_HLEN;

	memset(f, 0xff, 6);
	memcpy(f + 6, peer_mac, 6);
	net_put16(f + 12, NET_ETHERTYPE_ARP);
	net_put16(a, 1);
	net_put16(a + 2, NET_ETHERTYPE_IPV4);
	a[4] = 6;
	a[5] = 4;
	net_put16(a + 6, op);
	memcpy(a + 8, peer_mac, 6);
	net_put32(a + 14, spa);
	memset(a + 18, 0, 6);
	net_put32(a + 24, tpa);
	return NET_ETH_HLEN + NET_ARP_LEN;
}

static void test_arp(void)
{
	struct net_if nif;
	struct sent s;
	uint8_t f[NET_FRAME_MAX], mac[6];
	size_t len;
	unsigned i;

	setup(&nif, &s);
	len = build_arp(f, 1, PEER_IP, OUR_IP);
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), 0);
	CU_ASSERT_EQUAL(s.count, 1);
	CU_ASSERT(memcmp(s.frame, peer_mac, 6) == 0 && memcmp(s.frame + 6, our_mac, 6) == 0);
	CU_ASSERT_EQUAL(net_get16(s.frame + 12), NET_ETHERTYPE_ARP);
	CU_ASSERT_EQUAL(net_get16(s.frame + 14 + 6), 2);
	CU_ASSERT_EQUAL(net_get32(s.frame + 14 + 14), OUR_IP);
	CU_ASSERT_EQUAL(net_get32(s.frame + 14 + 24), PEER_IP);
	CU_ASSERT(net_arp_lookup(&nif, PEER_IP, mac) == 0 && memcmp(mac, peer_mac, 6) == 0);

	/* For someone else: neither answered nor learned. */
	len = build_arp(f, 1, IP(10, 0, 0, 9), IP(10, 0, 0, 77));
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_ENOENT);
	CU_ASSERT_EQUAL(net_arp_lookup(&nif, IP(10, 0, 0, 9), mac), -XEN_ENOENT);
	/* Malformed: truncated, wrong hardware length, bad opcode. */
	len = build_arp(f, 1, PEER_IP, OUR_IP);
	CU_ASSERT_EQUAL(net_input(&nif, f, len - 1, 0), -XEN_EBADMSG);
	f[NET_ETH_HLEN + 4] = 7;
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_EBADMSG);
	len = build_arp(f, 9, PEER_IP, OUR_IP);
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_EBADMSG);
	CU_ASSERT_EQUAL(nif.st.drop_arp_bad, 3);

	/* A flood of senders evicts but never grows the cache; the newest is found. */
	for (i = 0; i < 100; i++) {
		len = build_arp(f, 2, IP(10, 0, 0, 100) + i, OUR_IP);
		CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), 0);
	}
	CU_ASSERT_EQUAL(net_arp_lookup(&nif, IP(10, 0, 0, 199), mac), 0);
	CU_ASSERT_EQUAL(net_arp_lookup(&nif, IP(10, 0, 0, 100), mac), -XEN_ENOENT);
	/* Entries expire. */
	s.now += NET_ARP_TTL_MS + 1;
	CU_ASSERT_EQUAL(net_arp_lookup(&nif, IP(10, 0, 0, 199), mac), -XEN_ENOENT);
}

static void test_ping(void)
{
	struct net_if nif;
	struct sent s;
	uint8_t f[NET_FRAME_MAX];
	size_t len;

	setup(&nif, &s);
	net_arp_learn(&nif, PEER_IP, peer_mac);
	len = build_ping(f, 56);
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), 0);
	CU_ASSERT_EQUAL_FATAL(s.count, 1);
	CU_ASSERT_EQUAL(s.len, len);
	CU_ASSERT(memcmp(s.frame, peer_mac, 6) == 0);
	CU_ASSERT_EQUAL(net_get32(s.frame + 14 + 12), OUR_IP);
	CU_ASSERT_EQUAL(net_get32(s.frame + 14 + 16), PEER_IP);
	CU_ASSERT_EQUAL(net_csum_fold(net_csum_add(0, s.frame + 14, 20)), 0);
	CU_ASSERT_EQUAL(s.frame[34], 0); /* echo reply */
	CU_ASSERT_EQUAL(net_csum_fold(net_csum_add(0, s.frame + 34, 64)), 0);
	CU_ASSERT(memcmp(s.frame + 38, f + 38, 60) == 0); /* id, seq and payload echoed */

	/* Bad ICMP checksum, bad IP checksum: dropped, counted, not answered. */
	len = build_ping(f, 56);
	f[40] ^= 0xff;
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_EBADMSG);
	len = build_ping(f, 56);
	f[14 + 8] = 1; /* TTL changed, header checksum now wrong */
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_EBADMSG);
	CU_ASSERT_EQUAL(nif.st.drop_icmp_bad, 1);
	CU_ASSERT_EQUAL(nif.st.drop_ip_csum, 1);
	CU_ASSERT_EQUAL(s.count, 1);

	/* Unknown next hop: the reply waits for ARP (a request goes out instead). */
	setup(&nif, &s);
	len = build_ping(f, 8);
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_EAGAIN);
	CU_ASSERT_EQUAL(s.count, 1);
	CU_ASSERT_EQUAL(net_get16(s.frame + 12), NET_ETHERTYPE_ARP);
}

static void test_fragments_refused(void)
{
	struct net_if nif;
	struct sent s;
	uint8_t f[NET_FRAME_MAX], *ip = f + NET_ETH_HLEN;
	static const uint16_t fragfield[] = { 0x2000, 0x0001, 0x2010, 0x1fff };
	size_t len, i;

	setup(&nif, &s);
	net_arp_learn(&nif, PEER_IP, peer_mac);
	for (i = 0; i < 4; i++) {
		len = build_ping(f, 16);
		net_put16(ip + 6, fragfield[i]);
		net_put16(ip + 10, 0);
		net_put16(ip + 10, net_csum_fold(net_csum_add(0, ip, 20)));
		CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_EOPNOTSUPP);
	}
	CU_ASSERT_EQUAL(nif.st.drop_ip_frag, 4);
	CU_ASSERT_EQUAL(s.count, 0);
	/* DF alone is fine. */
	len = build_ping(f, 16);
	net_put16(ip + 6, 0x4000);
	net_put16(ip + 10, 0);
	net_put16(ip + 10, net_csum_fold(net_csum_add(0, ip, 20)));
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), 0);
}

static void test_udp(void)
{
	struct net_if nif;
	struct sent s;
	uint8_t f[NET_FRAME_MAX];
	size_t len;

	setup(&nif, &s);
	net_arp_learn(&nif, PEER_IP, peer_mac);
	nif.udp_echo_port = 7;
	len = build_udp(f, 7, 100, 1);
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), 0);
	CU_ASSERT_EQUAL_FATAL(s.count, 1);
	CU_ASSERT_EQUAL(net_get16(s.frame + 34), 7);
	CU_ASSERT_EQUAL(net_get16(s.frame + 36), 40000);
	CU_ASSERT(memcmp(s.frame + 42, f + 42, 100) == 0);
	/* The echo's checksum verifies over the pseudo-header. */
	{
		uint8_t ph[12];

		net_put32(ph, OUR_IP);
		net_put32(ph + 4, PEER_IP);
		ph[8] = 0;
		ph[9] = NET_PROTO_UDP;
		net_put16(ph + 10, 108);
		CU_ASSERT_EQUAL(net_csum_fold(net_csum_add(net_csum_add(0, ph, 12), s.frame + 34, 108)), 0);
	}
	/* Other ports go to the user; no checksum (0) is accepted. */
	len = build_udp(f, 5001, 10, 0);
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), 0);
	CU_ASSERT(s.udp_count == 1 && s.udp_dport == 5001 && s.udp_len == 10);
	/* A wrong checksum is dropped unless the driver says it was validated or is partial. */
	len = build_udp(f, 5001, 10, 1);
	f[45] ^= 1;
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_EBADMSG);
	CU_ASSERT_EQUAL(net_input(&nif, f, len, NET_RX_CSUM_BLANK), 0);
	CU_ASSERT_EQUAL(nif.st.drop_udp_csum, 1);
	/* UDP length larger than the IP payload, or below the header. */
	len = build_udp(f, 5001, 10, 0);
	net_put16(f + 38, 200);
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_EBADMSG);
	net_put16(f + 38, 4);
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_EBADMSG);
	CU_ASSERT_EQUAL(nif.st.drop_udp_bad, 2);
	/* Sending: too long refused; unknown next hop asks by ARP; off-subnet unreachable. */
	CU_ASSERT_EQUAL(net_udp_send(&nif, PEER_IP, 1, 2, f, NET_UDP_PAYLOAD_MAX + 1), -XEN_EMSGSIZE);
	CU_ASSERT_EQUAL(net_udp_send(&nif, IP(10, 0, 0, 50), 1, 2, f, 10), -XEN_EAGAIN);
	CU_ASSERT_EQUAL(net_get16(s.frame + 12), NET_ETHERTYPE_ARP);
	CU_ASSERT_EQUAL(net_udp_send(&nif, IP(192, 168, 0, 1), 1, 2, f, 10), -XEN_EADDRNOTAVAIL);
	CU_ASSERT_EQUAL(net_udp_send(&nif, PEER_IP, 1, 2, f, NET_UDP_PAYLOAD_MAX), 0);
	CU_ASSERT_EQUAL(s.len, NET_FRAME_MAX);
}

static void test_hostile_frames(void)
{
	struct net_if nif;
	struct sent s;
	uint8_t f[NET_FRAME_MAX], g[NET_FRAME_MAX];
	size_t len, cut, i;
	unsigned seed = 12345, n;

	setup(&nif, &s);
	net_arp_learn(&nif, PEER_IP, peer_mac);
	/* Every truncation of a valid ping is dropped without an answer. */
	len = build_ping(f, 32);
	for (cut = 0; cut < len; cut++)
		CU_ASSERT(net_input(&nif, f, cut, 0) < 0);
	CU_ASSERT_EQUAL(s.count, 0);
	/* Ethernet padding after the IP datagram is ignored. */
	memset(f + len, 0xaa, 20);
	CU_ASSERT_EQUAL(net_input(&nif, f, len + 20, 0), 0);
	/* IP header length and total length out of range. */
	len = build_ping(f, 32);
	f[14] = 0x4f;
	CU_ASSERT_EQUAL(net_input(&nif, f, 14 + 40, 0), -XEN_EBADMSG);
	len = build_ping(f, 32);
	f[14] = 0x44;
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_EBADMSG);
	len = build_ping(f, 32);
	f[14] = 0x65; /* IPv6 version nibble */
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_EBADMSG);
	/* Not our MAC, not our IP, broadcast source. */
	len = build_ping(f, 32);
	f[0] = 0x02;
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_ENOENT);
	len = build_ip(f, NET_PROTO_UDP, PEER_IP, IP(10, 0, 0, 3), 8);
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_ENOENT);
	len = build_ip(f, NET_PROTO_UDP, 0xffffffffu, OUR_IP, 8);
	CU_ASSERT_EQUAL(net_input(&nif, f, len, 0), -XEN_EBADMSG);
	/* Random bytes, and valid frames with random bytes flipped: never a crash, and every answer
	 * is a well-formed frame from us. */
	s.count = 0;
	for (n = 0; n < 20000; n++) {
		size_t l = (size_t)(rand_r(&seed) % NET_FRAME_MAX) + 1;

		if (n & 1) {
			for (i = 0; i < l; i++)
				g[i] = (uint8_t)rand_r(&seed);
			memcpy(g, our_mac, 6);
			net_put16(g + 12, (n & 2) ? NET_ETHERTYPE_IPV4 : NET_ETHERTYPE_ARP);
		} else {
			l = build_ping(g, (size_t)(rand_r(&seed) % 200));
			g[(size_t)rand_r(&seed) % l] ^= (uint8_t)(1u << (rand_r(&seed) % 8));
		}
		s.len = 0;
		(void)net_input(&nif, g, l, 0);
		if (s.len) {
			CU_ASSERT(s.len >= NET_ETH_HLEN && s.len <= NET_FRAME_MAX);
			CU_ASSERT(memcmp(s.frame + 6, our_mac, 6) == 0);
		}
	}
	CU_ASSERT_EQUAL(nif.st.rx_frames, 20000 + 74 + 1 + 3 + 3); /* every frame counted once */
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("net_stack", NULL, NULL);
	CU_add_test(s, "checksums", test_csum);
	CU_add_test(s, "address parsing", test_parse);
	CU_add_test(s, "interface init", test_init);
	CU_add_test(s, "arp", test_arp);
	CU_add_test(s, "icmp echo", test_ping);
	CU_add_test(s, "fragments refused", test_fragments_refused);
	CU_add_test(s, "udp", test_udp);
	CU_add_test(s, "hostile frames", test_hostile_frames);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
