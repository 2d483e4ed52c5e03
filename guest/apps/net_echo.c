/* app=net-echo: a network endpoint on the first vif. ip=A.B.C.D/N (required); answers ARP, ping and
 * UDP echo (port 7) for secs=N seconds (default 600) or until the vif is detached; wait=N waits up
 * to N s for a vif to be hot-plugged; ping=A.B.C.D pings that address count=N times (default 5),
 * after serving delay=N seconds first, and fails unless every ping is answered; spoof=1 and hostile=size|grant|chain|runaway make it a
 * misbehaving front-end for the back-end's tests. */
#include "net_app.h"


/* The guest has no heap: the device state lives here, owned by this app alone. */
static struct net_echo ne_state;

static int ne_xmit(void *arg, const uint8_t *frame, size_t len)
{
	struct net_echo *ne = arg;

	return netfront_xmit(&ne->nf, frame, len);
}

static void ne_echo_reply(void *arg, uint32_t src_ip, uint16_t id, uint16_t seq, size_t len)
{
	struct net_echo *ne = arg;

	ne->replies++;
	ne->last_seq = seq;
}

static uint64_t ne_now_ms(void *arg)
{
	return time_now_ns(&((struct net_echo *)arg)->k->time) / 1000000u;
}

static const struct net_ops ne_ops = { .xmit = ne_xmit, .udp_rx = NULL, .echo_reply = ne_echo_reply, .now_ms = ne_now_ms };

static void ne_rx(void *arg, const uint8_t *frame, size_t len, unsigned flags)
{
	struct net_echo *ne = arg;

	(void)net_input(&ne->nif, frame, len, flags);
}

/* Serve the device until deadline, the wanted number of echo replies, or a detach (true). */
bool ne_serve(struct net_echo *ne, uint64_t deadline, unsigned want_replies)
{
	uint64_t next_check = 0, now;

	while ((now = time_now_ns(&ne->k->time)) < deadline && !ne->nf.dead) {
		netfront_poll(&ne->nf, ne_rx, ne);
		if (want_replies && ne->replies >= want_replies)
			return false;
		if (now >= next_check) { /* a detach shows as the back-end closing: look 4 times a second */
			if (netfront_backend_closing(&ne->nf))
				return true;
			next_check = now + 250000000u;
		}
		netfront_wait(&ne->nf, deadline < now + 100000000u ? deadline : now + 100000000u);
	}
	return false;
}

/* Frames with a source MAC that is not ours: broadcast, an unused ethertype. */
static void ne_spoof(struct net_echo *ne)
{
	uint8_t f[60];
	unsigned i;

	memset(f, 0, sizeof(f));
	memset(f, 0xff, 6);
	memcpy(f + 6, ne->nf.mac, 6);
	f[11] ^= 0x55;
	f[12] = 0x88;
	f[13] = 0xb5;
	for (i = 0; i < 5; i++)
		netfront_xmit(&ne->nf, f, sizeof(f));
	kprintf(ne->k, "net-echo: sent 5 frames with a forged source MAC\n");
}

/* Requests no honest front-end writes; ids out of our range so their answers are ignored. */
static int ne_hostile(struct net_echo *ne, const char *kind)
{
	struct netif_tx_request r[24];
	uint8_t f[60];
	unsigned i;

	memset(f, 0, sizeof(f));
	memset(f, 0xff, 6);
	memcpy(f + 6, ne->nf.mac, 6);
	memset(r, 0, sizeof(r));
	r[0].gref = netfront_tx_page(&ne->nf, f, sizeof(f));
	r[0].id = 1000;
	r[0].size = sizeof(f);
	if (strcmp(kind, "size") == 0) {
		r[0].size = 8;
		r[1] = r[0];
		r[1].size = 9000;
		r[2] = r[0];
		r[2].size = sizeof(f);
		r[2].offset = 4090; /* crosses the end of its page */
		netfront_tx_raw(&ne->nf, r, 3, 0);
	} else if (strcmp(kind, "grant") == 0) {
		r[0].gref = 2000; /* never granted */
		r[1] = r[0];
		r[1].gref = 0xffffffu;
		netfront_tx_raw(&ne->nf, r, 2, 0);
	} else if (strcmp(kind, "chain") == 0) {
		for (i = 0; i < 24; i++) {
			r[i] = r[0];
			r[i].flags = NETTXF_more_data;
		}
		netfront_tx_raw(&ne->nf, r, 24, 0);
	} else if (strcmp(kind, "runaway") == 0) {
		netfront_tx_raw(&ne->nf, r, 1, 5000);
	} else {
		return -XEN_EINVAL;
	}
	kprintf(ne->k, "net-echo: hostile requests (%s) sent\n", kind);
	return 0;
}

int net_echo_setup(struct kernel *k, struct net_echo **out, struct app_result *res)
{
	struct net_echo *ne = &ne_state;
	char arg[32];
	uint32_t ip;
	unsigned prefix;
	int rc;

	memset(ne, 0, sizeof(*ne));
	ne->k = k;
	ne->ops = ne_ops; /* a user (net-bench) may add its udp_rx */
	if (kernel_cmdline_get(k, "ip", arg, sizeof(arg)) < 0 || net_parse_cidr(arg, &ip, &prefix) < 0) {
		app_set(res, APP_ERROR, "needs ip=A.B.C.D/N");
		return -XEN_EINVAL;
	}
	if (!app_need_events(k, res))
		return -XEN_ENOSYS;
	rc = xenbus_init(&k->xb, &k->ev, &k->tm, &k->time, (uintptr_t)lamina_image_end);
	if (rc == 0)
		rc = gnttab_init(&ne->gt, 2); /* 1024 refs: two rings and 512 buffers */
	if (rc == 0 && kernel_cmdline_u64(k, "wait", 0)) { /* hot-plug: wait for device/vif to appear */
		uint64_t end = time_now_ns(&k->time) + kernel_cmdline_u64(k, "wait", 0) * 1000000000ull;
		char names[64];

		kprintf(k, "net-echo: waiting for a vif\n");
		while (xenbus_directory(&k->xb, 0, "device/vif", names, sizeof(names)) <= 0 &&
		       time_now_ns(&k->time) < end)
			timer_sleep_ns(&k->tm, 100000000u);
	}
	if (rc == 0)
		rc = netfront_init(&ne->nf, k, &ne->gt, ~0u);
	if (rc < 0) {
		app_set(res, rc == -XEN_ENOENT ? APP_SKIP : APP_ERROR, "no network device: %s",
			lib_errno_name(rc) ? lib_errno_name(rc) : "?");
		return rc;
	}
	rc = net_if_init(&ne->nif, ne->nf.mac, ip, prefix, &ne->ops, ne);
	if (rc < 0) {
		app_set(res, APP_ERROR, "bad interface address");
		return rc;
	}
	ne->nif.udp_echo_port = 7;
	kprintf(k, "net-echo: up %s mac %02x:%02x:%02x:%02x:%02x:%02x vif %u\n", arg, ne->nf.mac[0], ne->nf.mac[1],
		ne->nf.mac[2], ne->nf.mac[3], ne->nf.mac[4], ne->nf.mac[5], ne->nf.devid);
	*out = ne;
	return 0;
}

void app_net_echo(struct kernel *k, struct app_result *res)
{
	struct net_echo *ne;
	uint64_t secs = kernel_cmdline_u64(k, "secs", 600), count = kernel_cmdline_u64(k, "count", 5);
	uint64_t end;
	char peer[32], kind[16] = "";
	bool detached;
	uint32_t peer_ip;
	unsigned i, answered = 0;

	if (net_echo_setup(k, &ne, res) < 0)
		return;
	if (kernel_cmdline_get(k, "ping", peer, sizeof(peer)) == 0) {
		if (net_parse_cidr(peer, &peer_ip, NULL) < 0 || count == 0 || count > 1000) {
			app_set(res, APP_ERROR, "bad ping=A.B.C.D or count=N");
			return;
		}
		ne_serve(ne, time_now_ns(&k->time) + kernel_cmdline_u64(k, "delay", 0) * 1000000000ull, 0);
		for (i = 0; i < count; i++) {
			uint64_t t0 = time_now_ns(&k->time), deadline = t0 + 2000000000ull;
			unsigned before = ne->replies;
			int rc;

			/* The first attempt may go to ARP: resend until the datagram leaves. */
			while ((rc = net_ping_send(&ne->nif, peer_ip, 0x4c41, (uint16_t)i, 56)) == -XEN_EAGAIN &&
			       time_now_ns(&k->time) < deadline)
				ne_serve(ne, time_now_ns(&k->time) + 20000000u, 0);
			if (rc == 0)
				ne_serve(ne, deadline, before + 1);
			if (ne->replies > before) {
				answered++;
				kprintf(k, "net-echo: reply from %s seq=%u time=%llu us\n", peer, i,
					(unsigned long long)((time_now_ns(&k->time) - t0) / 1000));
			} else {
				kprintf(k, "net-echo: no reply from %s seq=%u\n", peer, i);
			}
		}
		kprintf(k, "net-echo: %u/%llu pings answered\n", answered, (unsigned long long)count);
		if (answered != count) {
			app_set(res, APP_FAILURE, "%u of %llu pings to %s answered", answered, (unsigned long long)count,
				peer);
			return;
		}
	}
	if (kernel_cmdline_u64(k, "spoof", 0))
		ne_spoof(ne);
	if (kernel_cmdline_get(k, "hostile", kind, sizeof(kind)) < 0)
		kind[0] = '\0';
	else if (ne_hostile(ne, kind) < 0) {
		app_set(res, APP_ERROR, "hostile=size|grant|chain|runaway");
		return;
	}
	end = time_now_ns(&k->time) + secs * 1000000000ull;
	detached = ne_serve(ne, end, 0);
	if (detached)
		kprintf(k, "net-echo: vif detached\n");
	if (detached && kind[0]) /* a hostile guest stays, so its disconnected vif can be inspected */
		while (time_now_ns(&k->time) < end)
			timer_sleep_ns(&k->tm, 100000000u);
	kprintf(k, "net-echo: rx %llu tx %llu frames, echo %llu, udp %llu, drops ip %llu arp %llu\n",
		(unsigned long long)ne->nf.rx_frames, (unsigned long long)ne->nf.tx_frames,
		(unsigned long long)ne->nif.st.echo_replies_sent, (unsigned long long)ne->nif.st.udp_rx,
		(unsigned long long)(ne->nif.st.drop_ip_bad + ne->nif.st.drop_ip_csum),
		(unsigned long long)ne->nif.st.drop_arp_bad);
	netfront_close(&ne->nf);
	app_set(res, ne->nf.dead ? APP_FAILURE : APP_SUCCESS, ne->nf.dead ? "the back-end broke the rings" : "served");
}
