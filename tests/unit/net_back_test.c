/* Unit tests of lamina-netback's engine: tx chain validation on copies, then real taps on a bridge
 * in a private network namespace this test creates (unshare), served for in-process fake
 * front-ends running the guest network layer: host <-> guest UDP and ping, guest <-> guest ping,
 * MAC spoofing, and hostile front-ends (bad sizes, chains, grants, runaway producers, no rx
 * buffers) that are dropped or disconnected while the other vifs carry on. */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net_fake_front.h"

#define IP4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
#define BR "labr-ut0"

static const uint8_t mac_a[6] = { 0x00, 0x16, 0x3e, 0x00, 0x01, 0x01 };
static const uint8_t mac_b[6] = { 0x00, 0x16, 0x3e, 0x00, 0x02, 0x01 };
static const uint8_t mac_c[6] = { 0x00, 0x16, 0x3e, 0x00, 0x03, 0x01 };

static struct nf_fake *fa, *fb;
static int have_netns;

static struct netif_tx_request treq(uint16_t id, uint32_t gref, uint16_t off, uint16_t size, uint16_t flags)
{
	return (struct netif_tx_request){ .gref = gref, .offset = off, .flags = flags, .id = id, .size = size };
}

/* ---- netback_tx_parse on private copies ---- */

static void test_parse_good(void)
{
	struct netif_tx_request r[4];
	struct netback_chain c;
	enum netback_drop d;
	const char *why;

	r[0] = treq(1, 5, 0, 60, 0);
	CU_ASSERT_EQUAL(netback_tx_parse(r, 1, &c, &d, &why), 1);
	CU_ASSERT(c.nfrags == 1 && c.len == 60 && c.frag[0].size == 60);
	/* Three fragments: slot 0's size is the frame's, its own share is what is left. */
	r[0] = treq(1, 5, 100, 1500, NETTXF_more_data);
	r[1] = treq(2, 6, 0, 1000, NETTXF_more_data);
	r[2] = treq(3, 7, 0, 200, 0);
	CU_ASSERT_EQUAL(netback_tx_parse(r, 3, &c, &d, &why), 3);
	CU_ASSERT(c.nfrags == 3 && c.len == 1500 && c.frag[0].size == 300 && c.frag[2].size == 200);
	/* A multicast extra-info slot is accepted and skipped. */
	{
		struct netif_extra_info ex = { .type = XEN_NETIF_EXTRA_TYPE_MCAST_ADD };

		r[0] = treq(1, 5, 0, 60, NETTXF_extra_info);
		memset(&r[1], 0, sizeof(r[1]));
		memcpy(&r[1], &ex, sizeof(ex));
		CU_ASSERT_EQUAL(netback_tx_parse(r, 2, &c, &d, &why), 2);
		CU_ASSERT(c.extra_after == 1 && c.nfrags == 1);
	}
}

static void test_parse_bad(void)
{
	struct netif_tx_request r[NETBACK_MAX_SLOTS + 4];
	struct netback_chain c;
	enum netback_drop d;
	const char *why;
	unsigned i;

	r[0] = treq(1, 5, 0, 10, 0);
	CU_ASSERT(netback_tx_parse(r, 1, &c, &d, &why) == -EBADMSG && d == NETBACK_DROP_SIZE && c.slots == 1);
	r[0] = treq(1, 5, 0, 1519, 0);
	CU_ASSERT(netback_tx_parse(r, 1, &c, &d, &why) == -EBADMSG && d == NETBACK_DROP_SIZE);
	r[0] = treq(1, 5, 4000, 100, 0);
	CU_ASSERT(netback_tx_parse(r, 1, &c, &d, &why) == -EBADMSG && d == NETBACK_DROP_FRAGS);
	/* Fragments adding up to more than the frame, a zero fragment, an empty first share. */
	r[0] = treq(1, 5, 0, 100, NETTXF_more_data);
	r[1] = treq(2, 6, 0, 200, 0);
	CU_ASSERT(netback_tx_parse(r, 2, &c, &d, &why) == -EBADMSG && d == NETBACK_DROP_FRAGS && c.slots == 2);
	r[1] = treq(2, 6, 0, 0, 0);
	CU_ASSERT(netback_tx_parse(r, 2, &c, &d, &why) == -EBADMSG && d == NETBACK_DROP_FRAGS);
	r[1] = treq(2, 6, 0, 100, 0);
	CU_ASSERT(netback_tx_parse(r, 2, &c, &d, &why) == -EBADMSG && d == NETBACK_DROP_FRAGS);
	/* A fragment that crosses its page. */
	r[0] = treq(1, 5, 0, 1000, NETTXF_more_data);
	r[1] = treq(2, 6, 3900, 500, 0);
	CU_ASSERT(netback_tx_parse(r, 2, &c, &d, &why) == -EBADMSG && d == NETBACK_DROP_FRAGS);
	/* Incomplete chain: wait. */
	CU_ASSERT_EQUAL(netback_tx_parse(r, 1, &c, &d, &why), -EAGAIN);
	CU_ASSERT_EQUAL(netback_tx_parse(r, 0, &c, &d, &why), -EAGAIN);
	/* A chain that never ends: fatal at the slot limit, whatever follows. */
	for (i = 0; i < NETBACK_MAX_SLOTS + 4; i++)
		r[i] = treq((uint16_t)i, 5, 0, 60, NETTXF_more_data);
	CU_ASSERT_EQUAL(netback_tx_parse(r, NETBACK_MAX_SLOTS + 4, &c, &d, &why), -EPROTO);
	CU_ASSERT_PTR_NOT_NULL(why);
	/* GSO extra-info (not offered): the frame and its slots dropped. */
	{
		struct netif_extra_info ex = { .type = XEN_NETIF_EXTRA_TYPE_GSO };

		r[0] = treq(1, 5, 0, 60, NETTXF_extra_info);
		memset(&r[1], 0, sizeof(r[1]));
		memcpy(&r[1], &ex, sizeof(ex));
		CU_ASSERT(netback_tx_parse(r, 2, &c, &d, &why) == -EBADMSG && d == NETBACK_DROP_EXTRA &&
			  c.slots == 2);
		/* Extra-info slots that chain forever. */
		ex.type = XEN_NETIF_EXTRA_TYPE_MCAST_ADD;
		ex.flags = XEN_NETIF_EXTRA_FLAG_MORE;
		for (i = 1; i < NETBACK_MAX_SLOTS + 4; i++) {
			memset(&r[i], 0, sizeof(r[i]));
			memcpy(&r[i], &ex, sizeof(ex));
		}
		CU_ASSERT_EQUAL(netback_tx_parse(r, NETBACK_MAX_SLOTS + 4, &c, &d, &why), -EPROTO);
	}
}

static void test_parse_random(void)
{
	struct netif_tx_request r[NETBACK_MAX_SLOTS + 2];
	struct netback_chain c;
	enum netback_drop d;
	const char *why;
	unsigned seed = 7, n, i;
	int rc;

	for (n = 0; n < 100000; n++) {
		unsigned cnt = (unsigned)rand_r(&seed) % (NETBACK_MAX_SLOTS + 2) + 1;

		for (i = 0; i < cnt; i++) {
			r[i] = treq((uint16_t)rand_r(&seed), (uint32_t)rand_r(&seed), (uint16_t)rand_r(&seed),
				    (uint16_t)rand_r(&seed), (uint16_t)(rand_r(&seed) & 0xf));
			if (rand_r(&seed) & 1)
				r[i].size &= 0x7ff;
			if (rand_r(&seed) & 1)
				r[i].offset &= 0xfff;
		}
		rc = netback_tx_parse(r, cnt, &c, &d, &why);
		if (rc > 0) { /* a good chain is within every bound */
			size_t sum = 0;

			CU_ASSERT((unsigned)rc <= cnt && c.len >= NETBACK_ETH_HLEN && c.len <= NETBACK_FRAME_MAX);
			for (i = 0; i < c.nfrags; i++) {
				CU_ASSERT((uint32_t)c.frag[i].offset + c.frag[i].size <= 4096);
				sum += c.frag[i].size;
			}
			CU_ASSERT_EQUAL(sum, c.len);
		} else if (rc == -EBADMSG) {
			CU_ASSERT(c.slots >= 1 && c.slots <= cnt);
		} else {
			CU_ASSERT(rc == -EAGAIN || rc == -EPROTO);
		}
	}
}

static void test_mac_rule(void)
{
	struct netback_vif vif;
	uint8_t frame[60];

	memset(&vif, 0, sizeof(vif));
	memcpy(vif.mac, mac_a, 6);
	memset(frame, 0xff, 6);
	memcpy(frame + 6, mac_a, 6);
	CU_ASSERT_EQUAL(netback_tx_mac_ok(&vif, frame, 60), 0);
	memcpy(frame + 6, mac_b, 6);
	CU_ASSERT_EQUAL(netback_tx_mac_ok(&vif, frame, 60), -EPERM);
	vif.allow_spoof = true;
	CU_ASSERT_EQUAL(netback_tx_mac_ok(&vif, frame, 60), 0);
	CU_ASSERT_EQUAL(netback_tx_mac_ok(&vif, frame, 10), -EBADMSG);
}

/* A UDP frame whose checksum field holds the pseudo-header sum (as a guest with offload sends
 * it): filled in, it verifies; non-IP, fragments and bad lengths are refused. */
static void test_csum_fill(void)
{
	uint8_t f[NET_FRAME_MAX], ph[12];
	size_t len = NET_ETH_HLEN + NET_IP_HLEN + NET_UDP_HLEN + 100, i;
	uint8_t *ip = f + NET_ETH_HLEN, *u = ip + NET_IP_HLEN;

	memset(f, 0, sizeof(f));
	f[12] = 0x08;
	ip[0] = 0x45;
	net_put16(ip + 2, (uint16_t)(len - NET_ETH_HLEN));
	ip[8] = 64;
	ip[9] = NET_PROTO_UDP;
	net_put32(ip + 12, IP4(10, 0, 0, 1));
	net_put32(ip + 16, IP4(10, 0, 0, 2));
	net_put16(u, 1000);
	net_put16(u + 2, 2000);
	net_put16(u + 4, NET_UDP_HLEN + 100);
	for (i = 0; i < 100; i++)
		u[8 + i] = (uint8_t)(i * 3);
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = NET_PROTO_UDP;
	net_put16(ph + 10, NET_UDP_HLEN + 100);
	net_put16(u + 6, (uint16_t)~net_csum_fold(net_csum_add(0, ph, 12))); /* the partial sum */
	CU_ASSERT_EQUAL(netback_csum_fill(f, len), 0);
	CU_ASSERT_EQUAL(net_csum_fold(net_csum_add(net_csum_add(0, ph, 12), u, NET_UDP_HLEN + 100)), 0);
	CU_ASSERT_EQUAL(netback_csum_fill(f, len - 10), -EBADMSG); /* IP length past the frame */
	ip[6] = 0x20;							     /* a fragment */
	CU_ASSERT_EQUAL(netback_csum_fill(f, len), -EBADMSG);
	ip[6] = 0;
	ip[9] = 1;
	CU_ASSERT_EQUAL(netback_csum_fill(f, len), -EBADMSG);
	f[12] = 0x86;
	CU_ASSERT_EQUAL(netback_csum_fill(f, len), -EBADMSG);
	CU_ASSERT_EQUAL(netback_csum_fill(f, 20), -EBADMSG);
}

/* ---- taps on a bridge in this test's own network namespace ---- */

static int sh(const char *cmd)
{
	int rc = system(cmd);

	return rc == 0 ? 0 : -1;
}

static int open_vif(struct nf_fake *f, uint32_t domid, const uint8_t *mac, uint32_t ip, unsigned rx_bufs)
{
	char name[16];
	int fd, rc;

	rc = netback_vif_name(domid, 0, name, sizeof(name));
	if (rc == 0)
		rc = netback_tap_open(name, &fd);
	if (rc == 0)
		rc = netback_link_up(name, 1500);
	if (rc == 0)
		rc = netback_bridge_add(BR, name);
	if (rc == 0)
		rc = nf_init(f, domid, mac, ip, fd, rx_bufs);
	return rc;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Pump both front-ends until cond holds or ms pass (every loop is bounded in time). */
#define PUMP_UNTIL(cond, ms)                                                                                 \
	do {                                                                                                 \
		uint64_t t_end_ = now_ms() + (ms);                                                           \
		while (!(cond) && now_ms() < t_end_) {                                                       \
			nf_pump(fa);                                                                         \
			nf_pump(fb);                                                                         \
			usleep(200);                                                                         \
		}                                                                                            \
	} while (0)

static int udp_sock(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(5555), .sin_addr.s_addr = htonl(IP4(10, 99, 0, 1)) };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	CU_ASSERT_FATAL(s >= 0);
	CU_ASSERT_FATAL(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
	return s;
}

static void test_host_udp_echo(void)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7), .sin_addr.s_addr = htonl(IP4(10, 99, 0, 2)) };
	char msg[1200], back[2048];
	int s, i, got = 0;
	ssize_t n = -1;

	if (!have_netns)
		return;
	s = udp_sock();
	for (i = 0; i < (int)sizeof(msg); i++)
		msg[i] = (char)i;
	/* Small and large (two tx fragments) datagrams, echoed by the guest stack through netback. */
	for (i = 0; i < 2; i++) {
		size_t len = i ? sizeof(msg) : 32;
		uint64_t end = now_ms() + 3000;

		CU_ASSERT_FATAL(sendto(s, msg, len, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)len);
		n = -1;
		while (now_ms() < end) {
			nf_pump(fa);
			n = recv(s, back, sizeof(back), 0);
			if (n >= 0)
				break;
			usleep(200);
		}
		CU_ASSERT_EQUAL(n, (ssize_t)len);
		if (n == (ssize_t)len && memcmp(back, msg, len) == 0)
			got++;
	}
	CU_ASSERT_EQUAL(got, 2);
	CU_ASSERT(fa->vif.st.tx_frames >= 3 && fa->vif.st.rx_frames >= 3); /* ARP + two datagrams */
	CU_ASSERT(fa->vif.st.notify_sent > 0);
	close(s);
}

static void test_guest_pings(void)
{
	unsigned before;

	if (!have_netns)
		return;
	/* Guest A pings Domain-0's bridge address; first an ARP exchange. */
	before = fa->echo_replies;
	PUMP_UNTIL(net_ping_send(&fa->nif, IP4(10, 99, 0, 1), 1, 1, 56) == 0, 3000);
	PUMP_UNTIL(fa->echo_replies > before, 3000);
	CU_ASSERT(fa->echo_replies > before);
	/* Guest A pings guest B across the bridge. */
	before = fa->echo_replies;
	PUMP_UNTIL(net_ping_send(&fa->nif, IP4(10, 99, 0, 3), 1, 2, 1000) == 0, 3000);
	PUMP_UNTIL(fa->echo_replies > before, 3000);
	CU_ASSERT(fa->echo_replies > before);
	CU_ASSERT(fb->nif.st.echo_replies_sent >= 1);
}

/* A frame from A whose source MAC is B's: refused, counted, never seen by B; then allowed. */
static void test_spoof(void)
{
	uint8_t frame[60];
	struct netif_tx_request r;
	uint64_t b_rx;

	if (!have_netns)
		return;
	memset(frame, 0, sizeof(frame));
	memset(frame, 0xff, 6);
	memcpy(frame + 6, mac_b, 6);
	frame[12] = 0x88; /* a local experimental ethertype nobody answers */
	frame[13] = 0xb5;
	memcpy(fa->pages[NF_TX_BASE + 60], frame, sizeof(frame));
	r = treq(60, NF_TX_BASE + 60, 0, sizeof(frame), 0);
	b_rx = fb->nif.st.drop_ethertype; /* B's stack counts the unknown ethertype it receives */
	nf_tx_raw(fa, &r, 1);
	PUMP_UNTIL(0, 100);
	CU_ASSERT_EQUAL(fa->vif.st.drop[NETBACK_DROP_SPOOF], 1);
	CU_ASSERT_EQUAL(fa->last_tx_status, NETIF_RSP_DROPPED);
	CU_ASSERT_EQUAL(fb->nif.st.drop_ethertype, b_rx);
	fa->vif.allow_spoof = true;
	nf_tx_raw(fa, &r, 1);
	PUMP_UNTIL(fb->nif.st.drop_ethertype > b_rx, 2000);
	CU_ASSERT_EQUAL(fa->last_tx_status, NETIF_RSP_OKAY);
	CU_ASSERT_EQUAL(fb->nif.st.drop_ethertype, b_rx + 1);
	fa->vif.allow_spoof = false;
}

static void test_hostile_drops(void)
{
	struct netif_tx_request r[2];
	uint64_t tx = fa ? fa->vif.st.tx_frames : 0;

	if (!have_netns)
		return;
	/* Not granted, and out of the grant table. */
	r[0] = treq(61, 150, 0, 60, 0);
	nf_tx_raw(fa, r, 1);
	r[0] = treq(61, 100000, 0, 60, 0);
	nf_tx_raw(fa, r, 1);
	/* Too short, too long, and crossing the page. */
	r[0] = treq(61, 1, 0, 8, 0);
	nf_tx_raw(fa, r, 1);
	r[0] = treq(61, 1, 0, 4000, 0);
	nf_tx_raw(fa, r, 1);
	r[0] = treq(61, 1, 4090, 60, 0);
	nf_tx_raw(fa, r, 1);
	PUMP_UNTIL(fa->tx_inflight == 0, 1000);
	CU_ASSERT_EQUAL(fa->vif.st.drop[NETBACK_DROP_GRANT], 2);
	CU_ASSERT_EQUAL(fa->vif.st.drop[NETBACK_DROP_SIZE], 2);
	CU_ASSERT_EQUAL(fa->vif.st.drop[NETBACK_DROP_FRAGS], 1);
	CU_ASSERT_EQUAL(fa->last_tx_status, NETIF_RSP_ERROR);
	CU_ASSERT_EQUAL(fa->vif.st.tx_frames, tx);
	CU_ASSERT(fa->vif.connected);
	/* csum_blank from a front-end that turned checksum offload off: dropped. */
	fa->vif.csum_offload = false;
	r[0] = treq(61, 1, 0, 60, NETTXF_csum_blank);
	nf_tx_raw(fa, r, 1);
	PUMP_UNTIL(fa->tx_inflight == 0, 1000);
	CU_ASSERT_EQUAL(fa->vif.st.drop[NETBACK_DROP_CSUM], 1);
	/* Rx buffers that were not granted: answered with errors, counted. */
	fa->granted[NF_RX_BASE + 0] = false;
	fa->granted[NF_RX_BASE + 1] = false;
	{
		int s = udp_sock();
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9),
					  .sin_addr.s_addr = htonl(IP4(10, 99, 0, 2)) };
		int i;

		for (i = 0; i < 70; i++)
			(void)sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof(to));
		PUMP_UNTIL(fa->vif.st.drop[NETBACK_DROP_RX_GRANT] >= 1, 2000);
		close(s);
	}
	CU_ASSERT(fa->vif.st.drop[NETBACK_DROP_RX_GRANT] >= 1);
	fa->granted[NF_RX_BASE + 0] = true;
	fa->granted[NF_RX_BASE + 1] = true;
	CU_ASSERT(fa->vif.connected);
}

static void test_rx_never_posted(void)
{
	struct nf_fake *fc;
	int s, i;
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(IP4(10, 99, 0, 4)) };
	uint64_t end;

	if (!have_netns)
		return;
	fc = calloc(1, sizeof(*fc));
	CU_ASSERT_FATAL(fc != NULL);
	CU_ASSERT_FATAL(open_vif(fc, 3, mac_c, IP4(10, 99, 0, 4), 0) == 0);
	s = udp_sock();
	for (i = 0; i < 5; i++) /* the kernel ARPs for 10.99.0.4: broadcasts reach C's tap */
		(void)sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof(to));
	end = now_ms() + 3000;
	while (fc->vif.st.drop[NETBACK_DROP_RX_NOBUF] == 0 && now_ms() < end) {
		CU_ASSERT(netback_vif_rx(&fc->vif, 64) == 0);
		(void)netback_vif_rx_stall(&fc->vif, 50);
		usleep(1000);
	}
	CU_ASSERT(fc->vif.st.drop[NETBACK_DROP_RX_NOBUF] >= 1);
	CU_ASSERT(fc->vif.connected);
	close(s);
	/* A runaway rx producer disconnects C alone. */
	fc->rx.sring->req_prod = fc->rx.req_prod_pvt + 5000;
	CU_ASSERT_EQUAL(netback_vif_rx(&fc->vif, 64), -EPROTO);
	CU_ASSERT(!fc->vif.connected && fc->vif.st.disconnects == 1);
	close(fc->vif.tap_fd);
	nf_free(fc);
	free(fc);
}

/* A polling turn (tx_poll) leaves the drained tx ring's req_event behind, so the front-end's next
 * push needs no notification; a normal turn re-arms it. */
static void test_tx_poll(void)
{
	struct netif_tx_request r = treq(70, 1, 0, 8, 0); /* too short: dropped, but consumed */
	RING_IDX ev;
	int notify;

	if (!have_netns)
		return;
	CU_ASSERT(netback_vif_tx(&fa->vif, 64) >= 0); /* idle and re-armed */
	ev = fa->tx.sring->req_event;
	CU_ASSERT_EQUAL(ev, fa->tx.req_prod_pvt + 1);
	fa->vif.tx_poll = true;
	nf_tx_raw(fa, &r, 1);
	CU_ASSERT(netback_vif_tx(&fa->vif, 64) >= 0);
	CU_ASSERT_EQUAL(fa->vif.tx.req_cons, fa->tx.req_prod_pvt); /* consumed */
	CU_ASSERT_EQUAL(fa->tx.sring->req_event, ev); /* left behind */
	*RING_GET_REQUEST(&fa->tx, fa->tx.req_prod_pvt) = r; /* nf_tx_raw's push, notification seen */
	fa->tx.req_prod_pvt++;
	fa->tx_inflight++;
	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&fa->tx, notify);
	CU_ASSERT_FALSE(notify); /* polled: no notification needed */
	CU_ASSERT(netback_vif_tx(&fa->vif, 64) >= 0);
	CU_ASSERT_EQUAL(fa->vif.tx.req_cons, fa->tx.req_prod_pvt);
	fa->vif.tx_poll = false;
	CU_ASSERT_EQUAL(netback_vif_tx(&fa->vif, 64), 0); /* the window ends: re-armed */
	CU_ASSERT_EQUAL(fa->tx.sring->req_event, fa->tx.req_prod_pvt + 1);
	nf_pump(fa);
}

/* An endless fragment chain, then a runaway tx producer: each disconnects its vif; B carries on. */
static void test_disconnects(void)
{
	struct netif_tx_request r[NETBACK_MAX_SLOTS + 1];
	unsigned i, before;
	char line[1024];

	if (!have_netns)
		return;
	for (i = 0; i < NETBACK_MAX_SLOTS + 1; i++)
		r[i] = treq((uint16_t)i, 1, 0, 100, NETTXF_more_data);
	nf_tx_raw(fa, r, NETBACK_MAX_SLOTS + 1);
	CU_ASSERT_EQUAL(netback_vif_tx(&fa->vif, 64), -EPROTO);
	CU_ASSERT(!fa->vif.connected);
	CU_ASSERT_PTR_NOT_NULL(strstr(fa->vif.why, "fragment chain"));
	CU_ASSERT_EQUAL(netback_vif_tx(&fa->vif, 64), -EPROTO);
	CU_ASSERT_EQUAL(netback_stats_format(&fa->vif, line, sizeof(line)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "disconnected"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "drop_spoof=1"));

	fb->tx.sring->req_prod = fb->tx.req_prod_pvt + 100000; /* B goes bad too, on a copy of its state */
	{
		struct netback_vif saved = fb->vif;

		CU_ASSERT_EQUAL(netback_vif_tx(&fb->vif, 64), -EPROTO);
		CU_ASSERT_PTR_NOT_NULL(strstr(fb->vif.why, "ran away"));
		fb->tx.sring->req_prod = fb->tx.req_prod_pvt;
		fb->vif = saved; /* undo: B must still serve below */
	}
	/* B still answers the host. */
	{
		int s = udp_sock();
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7),
					  .sin_addr.s_addr = htonl(IP4(10, 99, 0, 3)) };
		char back[64];
		ssize_t n = -1;
		uint64_t end = now_ms() + 3000;

		before = (unsigned)fb->vif.st.tx_frames;
		CU_ASSERT_FATAL(sendto(s, "still here", 10, 0, (struct sockaddr *)&to, sizeof(to)) == 10);
		while (now_ms() < end && n < 0) {
			nf_pump(fb);
			n = recv(s, back, sizeof(back), 0);
			usleep(200);
		}
		CU_ASSERT_EQUAL(n, 10);
		CU_ASSERT(fb->vif.st.tx_frames > before);
		close(s);
	}
}

static int setup_netns(void)
{
	fa = calloc(1, sizeof(*fa));
	fb = calloc(1, sizeof(*fb));
	if (!fa || !fb)
		return -1;
	if (unshare(CLONE_NEWNET) != 0) {
		fprintf(stderr, "net_back_test: SKIP of the tap tests: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 0;
	}
	/* Only this namespace: a bridge with an address, nothing routed anywhere else. */
	if (sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1") != 0 ||
	    netback_bridge_create(BR) != 0 || sh("ip link set lo up") != 0 ||
	    sh("ip link set " BR " type bridge forward_delay 0 stp_state 0") != 0 ||
	    sh("ip addr add 10.99.0.1/24 dev " BR) != 0 || netback_link_up(BR, 0) != 0) {
		fprintf(stderr, "net_back_test: cannot set up the bridge in the private namespace\n");
		return -1;
	}
	if (open_vif(fa, 1, mac_a, IP4(10, 99, 0, 2), NF_RX_BUFS) != 0 ||
	    open_vif(fb, 2, mac_b, IP4(10, 99, 0, 3), NF_RX_BUFS) != 0) {
		fprintf(stderr, "net_back_test: cannot open the taps\n");
		return -1;
	}
	have_netns = 1;
	return 0;
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (setup_netns() != 0)
		return 1;
	if (!have_netns)
		fprintf(stderr, "*** net_back_test: tap/bridge cases SKIPPED (no network namespace) ***\n");
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("netback", NULL, NULL);
	CU_add_test(s, "tx chains: good", test_parse_good);
	CU_add_test(s, "tx chains: bad", test_parse_bad);
	CU_add_test(s, "tx chains: random", test_parse_random);
	CU_add_test(s, "source MAC rule", test_mac_rule);
	CU_add_test(s, "checksum completion", test_csum_fill);
	CU_add_test(s, "host <-> guest UDP echo through a tap", test_host_udp_echo);
	CU_add_test(s, "guest pings host and guest", test_guest_pings);
	CU_add_test(s, "MAC spoofing refused", test_spoof);
	CU_add_test(s, "hostile frames dropped", test_hostile_drops);
	CU_add_test(s, "rx buffers never posted", test_rx_never_posted);
	CU_add_test(s, "tx polling leaves req_event behind", test_tx_poll);
	CU_add_test(s, "disconnects, others carry on", test_disconnects);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	if (have_netns) {
		close(fa->vif.tap_fd);
		close(fb->vif.tap_fd);
		nf_free(fa);
		nf_free(fb);
	}
	free(fa);
	free(fb);
	return failed ? 1 : 0;
}
