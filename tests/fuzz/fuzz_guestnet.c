/* libFuzzer target for the guest network layer (guest/net/), built hosted (NET_HOSTED): the input
 * is a sequence of Ethernet frames for net_input (each in a buffer of exactly its size, so any
 * read past it is caught), clock steps, sends (net_udp_send, net_ping_send) and address strings.
 * Every frame the stack transmits is checked against an independent reading of the protocols:
 * from our MAC and IP, within the MTU, ARP well formed, IPv4/ICMP/UDP lengths and checksums right,
 * echo replies carrying the request's bytes back, and at most one frame per event. */
#define NET_HOSTED 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../guest/net/net.h"

#define FZ_IP 0x0a000002u /* 10.0.0.2 */

struct fz_net {
	struct net_if *nif; /* on the heap alone: a write past its transmit buffer is caught */
	uint64_t now;
	unsigned sent; /* frames transmitted during the current event */
	const uint8_t *in; /* the frame being received, for echo checks */
	size_t in_len;
	int xmit_fails;
};

static const uint8_t fz_mac[NET_ALEN] = { 0x00, 0x16, 0x3e, 0x11, 0x22, 0x33 };
static const uint8_t fz_bcast[NET_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static void fz_fail(const char *what)
{
	fprintf(stderr, "fuzz_guestnet: invariant broken: %s\n", what);
	abort();
}

/* RFC 1071, written apart from the stack's own so the two check each other. */
static uint16_t fz_csum(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		sum += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint16_t fz_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t fz_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void fz_check_arp(const uint8_t *f, size_t len)
{
	const uint8_t *a = f + NET_ETH_HLEN;
	static const uint8_t zero[NET_ALEN];

	if (len != NET_ETH_HLEN + NET_ARP_LEN)
		fz_fail("ARP frame of the wrong length");
	if (fz_be16(a) != 1 || fz_be16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4)
		fz_fail("ARP header fields wrong");
	if (memcmp(a + 8, fz_mac, 6) != 0 || fz_be32(a + 14) != FZ_IP)
		fz_fail("ARP sender is not us");
	if (fz_be16(a + 6) == 1) {
		if (memcmp(f, fz_bcast, 6) != 0 || memcmp(a + 18, zero, 6) != 0)
			fz_fail("ARP request not broadcast or with a target MAC");
	} else if (fz_be16(a + 6) == 2) {
		if (memcmp(f, a + 18, 6) != 0 || (f[0] & 1))
			fz_fail("ARP reply not sent to the asker's unicast MAC");
	} else {
		fz_fail("ARP operation neither request nor reply");
	}
}

/* An echo answer carries the request's bytes (after type, code, checksum; or the UDP payload). */
static void fz_check_echo(struct fz_net *z, const uint8_t *out, size_t n, int icmp)
{
	const uint8_t *ip = z->in + NET_ETH_HLEN, *p;
	size_t ihl;

	if (!z->in)
		return; /* our own send */
	if (z->in_len < NET_ETH_HLEN + 20)
		fz_fail("an answer to a frame too short for IPv4");
	ihl = (size_t)(ip[0] & 15) * 4;
	p = ip + ihl;
	if (NET_ETH_HLEN + ihl + (icmp ? n : NET_UDP_HLEN + n) > z->in_len)
		fz_fail("an echo answer longer than its request");
	if (icmp ? memcmp(out + 4, p + 4, n - 4) != 0 : memcmp(out + NET_UDP_HLEN, p + NET_UDP_HLEN, n) != 0)
		fz_fail("an echo answer that does not carry the request's bytes");
	if (fz_be32(out - 20 + 16) != fz_be32(ip + 12))
		fz_fail("an echo answer not sent back to the sender");
}

static void fz_check_ipv4(struct fz_net *z, const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + NET_ETH_HLEN, *l4 = ip + 20;
	size_t tot, n;
	uint32_t dst, ph;

	if (len < NET_ETH_HLEN + 20 || ip[0] != 0x45)
		fz_fail("IPv4 frame too short or with options");
	tot = fz_be16(ip + 2);
	if (tot != len - NET_ETH_HLEN || fz_csum(0, ip, 20) != 0)
		fz_fail("IPv4 total length or header checksum wrong");
	if (fz_be32(ip + 12) != FZ_IP || (fz_be16(ip + 6) & 0x3fff) || !(fz_be16(ip + 6) & 0x4000))
		fz_fail("IPv4 source not us, or fragment bits set");
	dst = fz_be32(ip + 16);
	if (dst == 0 || (dst != 0xffffffffu && dst != (FZ_IP | ~z->nif->mask) && (f[0] & 1)))
		fz_fail("IPv4 to no one, or unicast sent to a multicast MAC");
	n = tot - 20;
	if (ip[9] == NET_PROTO_ICMP) {
		if (n < NET_ICMP_HLEN || fz_csum(0, l4, n) != 0 || (l4[0] != 0 && l4[0] != 8) || l4[1])
			fz_fail("ICMP message malformed");
		if (l4[0] == 0)
			fz_check_echo(z, l4, n, 1);
	} else if (ip[9] == NET_PROTO_UDP) {
		uint8_t pseudo[12];

		memcpy(pseudo, ip + 12, 8);
		pseudo[8] = 0;
		pseudo[9] = NET_PROTO_UDP;
		pseudo[10] = (uint8_t)(n >> 8);
		pseudo[11] = (uint8_t)n;
		ph = (uint16_t)~fz_csum(0, pseudo, 12);
		if (n < NET_UDP_HLEN || fz_be16(l4 + 4) != n || fz_be16(l4 + 6) == 0 || fz_csum(ph, l4, n) != 0)
			fz_fail("UDP datagram length or checksum wrong");
		if (z->in)
			fz_check_echo(z, l4, n - NET_UDP_HLEN, 0);
	} else {
		fz_fail("IPv4 protocol neither ICMP nor UDP");
	}
}

static int fz_xmit(void *arg, const uint8_t *frame, size_t len)
{
	struct fz_net *z = arg;

	if (++z->sent > 1)
		fz_fail("more than one frame sent for one event");
	if (len < NET_ETH_HLEN || len > NET_FRAME_MAX)
		fz_fail("frame shorter than a header or longer than the MTU");
	if (memcmp(frame + 6, fz_mac, 6) != 0)
		fz_fail("frame not from our MAC");
	if (fz_be16(frame + 12) == NET_ETHERTYPE_ARP)
		fz_check_arp(frame, len);
	else if (fz_be16(frame + 12) == NET_ETHERTYPE_IPV4)
		fz_check_ipv4(z, frame, len);
	else
		fz_fail("frame of an ethertype we never send");
	return z->xmit_fails ? -XEN_EAGAIN : 0;
}

static void fz_udp_rx(void *arg, struct net_if *nif, uint32_t src_ip, uint16_t src_port, uint16_t dst_port,
		      const uint8_t *data, size_t len)
{
	struct fz_net *z = arg;

	if (!z->in || data < z->in + NET_ETH_HLEN + 28 || data + len > z->in + z->in_len)
		fz_fail("UDP payload handed up outside the received frame");
}

static void fz_echo_reply(void *arg, uint32_t src_ip, uint16_t id, uint16_t seq, size_t len)
{
	struct fz_net *z = arg;

	if (!z->in || len + NET_ICMP_HLEN + 20 + NET_ETH_HLEN > z->in_len)
		fz_fail("echo reply longer than the frame it came in");
}

static uint64_t fz_now(void *arg)
{
	return ((struct fz_net *)arg)->now;
}

static const struct net_ops fz_ops = { .xmit = fz_xmit, .udp_rx = fz_udp_rx, .echo_reply = fz_echo_reply,
				       .now_ms = fz_now };

/* Help the fuzzer past addresses and checksums it would rarely guess: v's bits ask the harness to
 * aim the frame at us and fix the IPv4 header and ICMP checksums, as a real peer would. */
static void fz_aim(struct fz_net *z, uint8_t *f, size_t len, unsigned v)
{
	uint8_t *ip = f + NET_ETH_HLEN;
	size_t ihl, tot;

	if (len >= NET_ETH_HLEN && (v & 0x10))
		memcpy(f, (v & 0x80) ? fz_bcast : fz_mac, 6);
	if (len < NET_ETH_HLEN + 20 || fz_be16(f + 12) != NET_ETHERTYPE_IPV4 || !(v & 0x20))
		return;
	if (!(v & 0x80))
		net_put32(ip + 16, FZ_IP);
	ihl = (size_t)(ip[0] & 15) * 4;
	tot = fz_be16(ip + 2);
	if (ihl < 20 || NET_ETH_HLEN + ihl > len)
		return;
	net_put16(ip + 10, 0);
	net_put16(ip + 10, fz_csum(0, ip, ihl));
	if ((v & 0x40) && ip[9] == NET_PROTO_ICMP && tot > ihl + 4 && NET_ETH_HLEN + tot <= len) {
		net_put16(ip + ihl + 2, 0);
		net_put16(ip + ihl + 2, fz_csum(0, ip + ihl, tot - ihl));
	}
	if ((v & 0x40) && ip[9] == NET_PROTO_UDP && tot >= ihl + 8 && NET_ETH_HLEN + tot <= len)
		net_put16(ip + ihl + 6, 0); /* no checksum: allowed by UDP over IPv4 */
}

static void fz_frame(struct fz_net *z, const uint8_t *d, size_t n, unsigned v)
{
	uint8_t *f = malloc(n ? n : 1); /* exactly the frame: a read past it is an ASan report */

	if (!f)
		return;
	memcpy(f, d, n);
	fz_aim(z, f, n, v);
	z->in = f;
	z->in_len = n;
	(void)net_input(z->nif, f, n, v >> 1 & 3); /* NET_RX_CSUM_* */
	z->in = NULL;
	free(f);
}

static void fz_string(const uint8_t *d, size_t n, unsigned v)
{
	char s[64];
	uint8_t mac[NET_ALEN];
	uint32_t ip;
	unsigned prefix;

	n = n < sizeof(s) - 1 ? n : sizeof(s) - 1;
	memcpy(s, d, n);
	s[n] = '\0';
	if ((v & 1) && net_parse_cidr(s, &ip, &prefix) == 0 && prefix > 32)
		fz_fail("a prefix longer than 32 parsed");
	if (!(v & 1))
		(void)net_parse_mac(s, mac);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t zeros[2048];
	struct fz_net z;
	size_t i = 3;

	if (size < 3)
		return 0;
	memset(&z, 0, sizeof(z));
	z.nif = malloc(sizeof(*z.nif));
	if (!z.nif)
		return 0;
	if (net_if_init(z.nif, fz_mac, FZ_IP, data[0] % 33, &fz_ops, &z) < 0)
		fz_fail("net_if_init refused a valid interface");
	z.nif->udp_echo_port = data[1] & 1 ? 7 : data[1] >> 1;
	z.xmit_fails = data[2] & 1;
	/* Records: kind, length (two bytes), then that many bytes. */
	while (i + 3 <= size) {
		unsigned kind = data[i], len = data[i + 1] | data[i + 2] << 8;
		const uint8_t *p = data + i + 3;
		size_t n = len < size - i - 3 ? len : size - i - 3;

		i += 3 + n;
		z.sent = 0;
		switch (kind % 5) {
		case 0: fz_frame(&z, p, n, kind); break;
		case 1: z.now += (uint64_t)len * 64; break; /* up to ~70 min: ARP entries expire */
		case 2: /* a datagram of the record's bytes, or a long one of zeros (past the MTU too) */
			if (n >= 8)
				(void)net_udp_send(z.nif, fz_be32(p), fz_be16(p + 4), fz_be16(p + 6),
						   (kind & 8) ? zeros : p + 8, (kind & 8) ? len % sizeof(zeros) : n - 8);
			break;
		case 3:
			if (n >= 8)
				(void)net_ping_send(z.nif, fz_be32(p), fz_be16(p + 4), fz_be16(p + 6), len);
			break;
		default: fz_string(p, n, kind >> 3); break;
		}
	}
	free(z.nif);
	return 0;
}
