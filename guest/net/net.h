/* The guest's network layer: Ethernet framing, an ARP cache, IPv4 without fragments, ICMP echo and
 * UDP on one interface. Freestanding in the guest; hosted (NET_HOSTED) for the unit tests. */
#ifndef GUEST_NET_NET_H
#define GUEST_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/errno.h>

#ifdef NET_HOSTED
#include <string.h>
#else
#include "../lib/lib.h"
#endif

#define NET_ALEN 6
#define NET_ETH_HLEN 14
#define NET_MTU 1500
#define NET_FRAME_MAX (NET_ETH_HLEN + NET_MTU)
#define NET_IP_HLEN 20 /* we send no options; we accept them on input */
#define NET_UDP_HLEN 8
#define NET_ICMP_HLEN 8
#define NET_ARP_LEN 28
#define NET_UDP_PAYLOAD_MAX (NET_MTU - NET_IP_HLEN - NET_UDP_HLEN)

#define NET_ETHERTYPE_IPV4 0x0800
#define NET_ETHERTYPE_ARP 0x0806
#define NET_PROTO_ICMP 1
#define NET_PROTO_UDP 17

#define NET_ARP_SLOTS 16
#define NET_ARP_TTL_MS 60000

/* Input flags from the driver (netif's NETRXF_* meaning, driver-neutral). */
#define NET_RX_CSUM_VALIDATED 1u /* the back-end checked the L4 checksum */
#define NET_RX_CSUM_BLANK 2u	 /* the L4 checksum is partial: do not verify it */

struct net_if;

/* What the stack needs from its driver and its user. */
struct net_ops {
	/* Send one complete Ethernet frame (the stack's buffer; copied before return). 0 or -errno. */
	int (*xmit)(void *arg, const uint8_t *frame, size_t len);
	/* A UDP datagram for us (may be NULL). src/dst in host order. */
	void (*udp_rx)(void *arg, struct net_if *nif, uint32_t src_ip, uint16_t src_port, uint16_t dst_port,
		       const uint8_t *data, size_t len);
	/* An ICMP echo reply for us (may be NULL): the answer to net_ping_send. */
	void (*echo_reply)(void *arg, uint32_t src_ip, uint16_t id, uint16_t seq, size_t len);
	uint64_t (*now_ms)(void *arg);
};

struct net_arp_entry {
	uint32_t ip;
	uint8_t mac[NET_ALEN];
	bool valid;
	uint64_t stamp_ms;
};

/* Every frame that is not used is counted under one reason. */
struct net_stats {
	uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes, tx_errors;
	uint64_t drop_short, drop_not_for_us, drop_ethertype;
	uint64_t drop_arp_bad, drop_ip_bad, drop_ip_csum, drop_ip_frag, drop_ip_not_for_us, drop_proto;
	uint64_t drop_icmp_bad, drop_udp_bad, drop_udp_csum, drop_udp_no_listener;
	uint64_t arp_requests_sent, arp_replies_sent, arp_learned;
	uint64_t echo_requests, echo_replies_sent, echo_replies_rx, udp_rx, udp_tx, tx_no_arp;
};

struct net_if {
	uint8_t mac[NET_ALEN];
	uint32_t ip, mask; /* host order */
	const struct net_ops *ops;
	void *arg;
	uint16_t udp_echo_port; /* datagrams to this port are sent back (0: none) */
	uint16_t ip_id;
	unsigned arp_next;
	struct net_arp_entry arp[NET_ARP_SLOTS];
	struct net_stats st;
	uint8_t tx[NET_FRAME_MAX];
};

/* ---- big-endian field access on untrusted bytes (callers check the length first) ---- */
static inline uint16_t net_get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t net_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void net_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void net_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- net_eth.c: interface, checksums, Ethernet dispatch, ARP, address parsing ---- */

/* prefix 0..32; ip must not be 0; ops->xmit required. */
int net_if_init(struct net_if *nif, const uint8_t mac[NET_ALEN], uint32_t ip, unsigned prefix,
		const struct net_ops *ops, void *arg);
/* One's-complement sum of len bytes added to sum (not folded); net_csum_fold gives the checksum. */
uint32_t net_csum_add(uint32_t sum, const uint8_t *p, size_t len);
uint16_t net_csum_fold(uint32_t sum);
/* Consume one received frame. 0 when used, -errno (and a counted reason) when dropped. */
int net_input(struct net_if *nif, const uint8_t *frame, size_t len, unsigned flags);
/* Send the Ethernet frame in nif->tx whose payload (len bytes after the header) is ready. */
int net_eth_send(struct net_if *nif, const uint8_t dst[NET_ALEN], uint16_t type, size_t len);
int net_arp_lookup(struct net_if *nif, uint32_t ip, uint8_t mac[NET_ALEN]);
void net_arp_learn(struct net_if *nif, uint32_t ip, const uint8_t mac[NET_ALEN]);
int net_arp_request(struct net_if *nif, uint32_t ip);
/* "A.B.C.D/N" (N optional: 24) and "A.B.C.D"; "xx:xx:xx:xx:xx:xx". 0 or -XEN_EINVAL. */
int net_parse_cidr(const char *s, uint32_t *ip, unsigned *prefix);
int net_parse_mac(const char *s, uint8_t mac[NET_ALEN]);

/* ---- net_ip.c: IPv4, ICMP echo and UDP ---- */

int net_ipv4_input(struct net_if *nif, const uint8_t *pkt, size_t len, unsigned flags);
/* -XEN_EAGAIN when the next hop's MAC is not known yet (an ARP request went out: retry). */
int net_udp_send(struct net_if *nif, uint32_t dst_ip, uint16_t src_port, uint16_t dst_port, const uint8_t *data,
		 size_t len);
int net_ping_send(struct net_if *nif, uint32_t dst_ip, uint16_t id, uint16_t seq, size_t payload_len);

#endif
