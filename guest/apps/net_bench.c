/* app=net-bench: UDP streams between this guest and a Domain-0 program (bench/net-udp) over the
 * first vif. mode=tx: send size=N-byte datagrams (payload) to dst=A.B.C.D port=P for secs=N as
 * fast as the ring takes them; mode=rx: count the datagrams Domain-0 sends to port=P until
 * secs=N pass or idle for a second. Prints a BENCH line: datagrams, bytes, seconds, Mbit/s, pps. */
#include "net_app.h"

struct net_bench {
	uint16_t port;
	uint64_t pkts, bytes, first_ns, last_ns;
};

static void nb_udp_rx(void *arg, struct net_if *nif, uint32_t src_ip, uint16_t src_port, uint16_t dst_port,
		      const uint8_t *data, size_t len)
{
	struct net_echo *ne = arg;
	struct net_bench *b = ne->user;
	uint64_t now;

	if (dst_port != b->port)
		return;
	now = time_now_ns(&ne->k->time);
	if (!b->pkts)
		b->first_ns = now;
	b->last_ns = now;
	b->pkts++;
	b->bytes += len;
}

static void nb_report(struct kernel *k, const char *dir, uint64_t pkts, uint64_t bytes, uint64_t ns, size_t size)
{
	uint64_t us = ns / 1000 ? ns / 1000 : 1;

	kprintf(k, "BENCH net %s size=%llu pkts=%llu bytes=%llu usec=%llu mbps=%llu pps=%llu\n", dir,
		(unsigned long long)size, (unsigned long long)pkts, (unsigned long long)bytes, (unsigned long long)us,
		(unsigned long long)(bytes * 8 / us), (unsigned long long)(pkts * 1000000 / us));
}

static void nb_tx(struct net_echo *ne, uint32_t dst, uint16_t port, size_t size, uint64_t secs)
{
	static uint8_t payload[NET_UDP_PAYLOAD_MAX];
	struct kernel *k = ne->k;
	uint64_t t0, end, pkts = 0, now;
	int rc;

	for (size_t i = 0; i < size; i++)
		payload[i] = (uint8_t)i;
	/* Resolve the next hop first (the first send may go to ARP). */
	end = time_now_ns(&k->time) + 3000000000ull;
	while ((rc = net_udp_send(&ne->nif, dst, port, port, payload, 0)) == -XEN_EAGAIN &&
	       time_now_ns(&k->time) < end)
		ne_serve(ne, time_now_ns(&k->time) + 20000000u, 0);
	t0 = time_now_ns(&k->time);
	end = t0 + secs * 1000000000ull;
	while ((now = time_now_ns(&k->time)) < end && !ne->nf.dead) {
		rc = net_udp_send(&ne->nif, dst, port, port, payload, size);
		if (rc == 0) {
			pkts++;
			continue;
		}
		/* Every tx buffer is in flight: collect completions, or wait for the back-end. */
		if (netfront_poll(&ne->nf, NULL, NULL) == 0 && ne->nf.tx_nfree == 0)
			netfront_wait(&ne->nf, now + 1000000u);
	}
	nb_report(k, "guest-to-dom0", pkts, pkts * size, time_now_ns(&k->time) - t0, size);
}

void app_net_bench(struct kernel *k, struct app_result *res)
{
	struct net_bench b = { 0 };
	struct net_echo *ne;
	char mode[8] = "", dst[32];
	uint32_t dst_ip;
	uint64_t secs = kernel_cmdline_u64(k, "secs", 3), size = kernel_cmdline_u64(k, "size", 1472), end;

	b.port = (uint16_t)kernel_cmdline_u64(k, "port", 5201);
	if (kernel_cmdline_get(k, "mode", mode, sizeof(mode)) < 0 || (strcmp(mode, "tx") && strcmp(mode, "rx")) ||
	    size > NET_UDP_PAYLOAD_MAX || secs == 0 || secs > 600) {
		app_set(res, APP_ERROR, "mode=tx|rx size=1..%u secs=1..600", NET_UDP_PAYLOAD_MAX);
		return;
	}
	if (net_echo_setup(k, &ne, res) < 0)
		return;
	ne->user = &b;
	ne->ops.udp_rx = nb_udp_rx;
	kprintf(k, "net-bench: ready mode=%s size=%llu\n", mode, (unsigned long long)size);
	if (strcmp(mode, "tx") == 0) {
		if (kernel_cmdline_get(k, "dst", dst, sizeof(dst)) < 0 || net_parse_cidr(dst, &dst_ip, NULL) < 0) {
			app_set(res, APP_ERROR, "mode=tx needs dst=A.B.C.D");
			return;
		}
		nb_tx(ne, dst_ip, b.port, (size_t)size, secs);
	} else {
		/* Count until secs pass, or one idle second after traffic stopped. */
		end = time_now_ns(&k->time) + (secs + 30) * 1000000000ull;
		while (time_now_ns(&k->time) < end) {
			ne_serve(ne, time_now_ns(&k->time) + 1000000000ull, 0);
			if (b.pkts && time_now_ns(&k->time) - b.last_ns > 1000000000ull)
				break;
		}
		nb_report(k, "dom0-to-guest", b.pkts, b.bytes, b.last_ns - b.first_ns, (size_t)size);
	}
	kprintf(k, "net-bench: tx_full %llu rx_errors %llu notifies %llu events %llu\n",
		(unsigned long long)ne->nf.tx_full, (unsigned long long)ne->nf.rx_errors,
		(unsigned long long)ne->nf.notifies_sent, (unsigned long long)ne->nf.events);
	/* Stay a while so Domain-0's counters and the guest's line can be compared. */
	ne_serve(ne, time_now_ns(&k->time) + 500000000ull, 0);
	netfront_close(&ne->nf);
	app_set(res, APP_SUCCESS, "measured");
}
