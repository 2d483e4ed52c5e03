/* The event half of the control protocol over a socketpair, with a real (tiny, blocked) KVM
 * domain: special pages arrive as a memfd, Domain-0 binds arrive as two eventfds that work both
 * ways, ownership and bad requests are refused, subscribers hear about domains, a destroyed
 * domain wakes its Domain-0 peers, WAIT answers from its tombstone, a closed connection's ports
 * go. Needs /dev/kvm (SKIP, exit 77, without it). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <CUnit/Basic.h>

#include "ctl_server.h"
#include "hv.h"
#include "hvcore_test.h"

static struct hv g_hv;
static struct ctl_server g_srv;
static int g_fd[2] = {-1, -1}; /* two clients */
static char g_dir[64], g_kernel[256];
static uint8_t g_buf[CTL_MAX_MSG + 256];
static uint32_t g_domid;

static int setup(void)
{
	uint8_t img[HVT_IMAGE_MAX], code[256];
	size_t n;
	int sv[2];

	snprintf(g_dir, sizeof(g_dir), "/tmp/hvcore-ev.XXXXXX");
	if (!mkdtemp(g_dir))
		return -1;
	n = hvt_elf_build(img, code, hvt_code_block(code), 0, HVT_NOTE_PHDR);
	if (hvt_write_file(g_dir, "block.elf", img, n, g_kernel, sizeof(g_kernel)) < 0)
		return -1;
	{
		char sub[128];
		snprintf(sub, sizeof(sub), "%s/console", g_dir);
		mkdir(sub, 0700);
	}
	if (hv_init(&g_hv, g_dir, "/dev/null", &kvm_runner_ops) < 0 || !g_hv.rctx)
		return -1;
	if (ctl_server_init(&g_srv, &g_hv, -1, -1) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			return -1;
		g_fd[i] = sv[1];
		if (ctl_conn_add(&g_srv, sv[0], 0) < 0)
			return -1;
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void)
{
	ctl_server_fini(&g_srv);
	hv_fini(&g_hv);
	close(g_fd[0]);
	if (g_fd[1] >= 0)
		close(g_fd[1]);
	return nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* One request on client `who`; the reply's payload lands in g_buf + header, fds in fds. */
static int call(int who, uint16_t op, const void *p, size_t len, int *fds, unsigned *nfds)
{
	static uint32_t seq = 1;
	struct lamina_ctl_hdr h = {LAMINA_CTL_MAGIC, LAMINA_CTL_VERSION, op, ++seq, 0, (uint32_t)len, 0}, rh;
	uint8_t msg[sizeof(h) + 4096];
	union {
		struct cmsghdr a;
		char b[CMSG_SPACE(4 * sizeof(int))];
	} u;
	struct iovec iov = {g_buf, sizeof(g_buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
	struct cmsghdr *cm;
	ssize_t n;

	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), p, len);
	CU_ASSERT_FATAL(send(g_fd[who], msg, sizeof(h) + len, 0) == (ssize_t)(sizeof(h) + len));
	do {
		CU_ASSERT_FATAL(ctl_server_poll(&g_srv, 1000) == 0);
		n = recvmsg(g_fd[who], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EAGAIN);
	CU_ASSERT_FATAL(n >= (ssize_t)sizeof(rh));
	memcpy(&rh, g_buf, sizeof(rh));
	CU_ASSERT_EQUAL(rh.seq, h.seq);
	CU_ASSERT_EQUAL(rh.op, op);
	if (nfds)
		*nfds = 0;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		unsigned k = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (cm->cmsg_type != SCM_RIGHTS || !fds || !nfds)
			continue;
		memcpy(fds, CMSG_DATA(cm), k * sizeof(int));
		*nfds = k;
	}
	return rh.status;
}

static void *payload(void)
{
	return g_buf + sizeof(struct lamina_ctl_hdr);
}

static bool readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms) == 1;
}

static void test_create_and_special(void)
{
	struct lamina_ctl_domcfg cfg;
	struct lamina_ctl_map_special ms;
	struct lamina_ctl_mapping m;
	struct lamina_ctl_dominfo info;
	struct hv_domain *hd;
	int fds[4];
	unsigned nfds;
	uint8_t *p;

	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.name, "ev-guest");
	cfg.memory_kib = 4096;
	cfg.vcpus = 1;
	strcpy(cfg.kernel, g_kernel);
	CU_ASSERT_FATAL(call(0, LAMINA_CTL_CREATE, &cfg, sizeof(cfg), NULL, NULL) == 0);
	memcpy(&info, payload(), sizeof(info));
	g_domid = info.domid;
	hd = hv_find_id(&g_hv, g_domid);
	CU_ASSERT_FATAL(hd != NULL);
	/* the special page: its own memfd, at the frame after RAM, port = the HVM param */
	ms = (struct lamina_ctl_map_special){g_domid, LAMINA_SPECIAL_CONSOLE};
	CU_ASSERT_EQUAL_FATAL(call(0, LAMINA_CTL_MAP_SPECIAL, &ms, sizeof(ms), fds, &nfds), 0);
	CU_ASSERT_EQUAL_FATAL(nfds, 1);
	memcpy(&m, payload(), sizeof(m));
	CU_ASSERT_EQUAL(m.gfn, 4096 / 4);
	CU_ASSERT_EQUAL(m.size, 4096);
	CU_ASSERT_EQUAL(m.port, hd->d.hvm_params[HVM_PARAM_CONSOLE_EVTCHN]);
	CU_ASSERT_EQUAL(m.gfn, hd->d.hvm_params[HVM_PARAM_CONSOLE_PFN]);
	CU_ASSERT_NOT_EQUAL(m.port, 0);
	p = mmap(NULL, m.size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], (off_t)m.offset);
	CU_ASSERT_FATAL(p != MAP_FAILED);
	p[100] = 0x5a;
	CU_ASSERT_EQUAL(hd->d.special[LAMINA_SPECIAL_CONSOLE * 4096 + 100], 0x5a);
	munmap(p, m.size);
	close(fds[0]);
	ms.which = LAMINA_SPECIAL_XENSTORE;
	CU_ASSERT_EQUAL(call(0, LAMINA_CTL_MAP_SPECIAL, &ms, sizeof(ms), fds, &nfds), 0);
	CU_ASSERT_EQUAL(nfds, 1);
	if (nfds)
		close(fds[0]);
	memcpy(&m, payload(), sizeof(m));
	CU_ASSERT_EQUAL(m.port, hd->d.hvm_params[HVM_PARAM_STORE_EVTCHN]);
	ms.which = LAMINA_SPECIAL_COUNT;
	CU_ASSERT_EQUAL(call(0, LAMINA_CTL_MAP_SPECIAL, &ms, sizeof(ms), fds, &nfds), -EINVAL);
	CU_ASSERT_EQUAL(nfds, 0);
	ms = (struct lamina_ctl_map_special){999, 0};
	CU_ASSERT_EQUAL(call(0, LAMINA_CTL_MAP_SPECIAL, &ms, sizeof(ms), fds, &nfds), -ESRCH);
}

static void test_dom0_ports(void)
{
	struct hv_domain *hd = hv_find_id(&g_hv, g_domid);
	struct lamina_ctl_evtchn_bind b;
	struct lamina_ctl_evtchn_virq vq;
	struct lamina_ctl_evtchn_alloc al;
	struct lamina_ctl_evtchn_port cp;
	uint32_t cport, d0port, gport;
	int fds[4], vfds[4];
	unsigned nfds;
	uint64_t v = 1;
	int i;

	CU_ASSERT_FATAL(hd != NULL);
	cport = hd->d.special_port[LAMINA_SPECIAL_CONSOLE];
	b = (struct lamina_ctl_evtchn_bind){g_domid, cport};
	CU_ASSERT_EQUAL_FATAL(call(0, LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN, &b, sizeof(b), fds, &nfds), 0);
	CU_ASSERT_EQUAL_FATAL(nfds, 2);
	memcpy(&d0port, payload(), sizeof(d0port));
	CU_ASSERT(readable(fds[1], 0)); /* a new binding starts pending */
	CU_ASSERT_EQUAL(read(fds[1], &v, sizeof(v)), sizeof(v));
	/* bound already; no such domain; no such port */
	CU_ASSERT_EQUAL(call(0, LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN, &b, sizeof(b), vfds, &nfds), -EINVAL);
	CU_ASSERT_EQUAL(nfds, 0);
	b.remote_dom = 999;
	CU_ASSERT_EQUAL(call(0, LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN, &b, sizeof(b), vfds, &nfds), -ESRCH);
	b = (struct lamina_ctl_evtchn_bind){g_domid, 1000};
	CU_ASSERT_EQUAL(call(0, LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN, &b, sizeof(b), vfds, &nfds), -EINVAL);
	/* Domain-0 -> guest: writing notify sets the guest's port pending (event thread) */
	v = 1;
	CU_ASSERT_EQUAL(write(fds[0], &v, sizeof(v)), sizeof(v));
	for (i = 0; i < 200 && !((hd->d.shared_info->evtchn_pending[cport / 64] >> (cport % 64)) & 1); i++)
		usleep(1000);
	CU_ASSERT(i < 200);
	/* guest -> Domain-0: a send from the guest's side reaches the event eventfd */
	CU_ASSERT_EQUAL(evtchn_send(&hd->d, cport), 0);
	CU_ASSERT(readable(fds[1], 1000));
	CU_ASSERT(atomic_load(&hd->d.first_console_ns) != 0); /* first send on the console port */
	/* another connection does not own it */
	cp.port = d0port;
	CU_ASSERT_EQUAL(call(1, LAMINA_CTL_EVTCHN_CLOSE, &cp, sizeof(cp), NULL, NULL), -EPERM);
	cp.port = 30000;
	CU_ASSERT_EQUAL(call(1, LAMINA_CTL_EVTCHN_CLOSE, &cp, sizeof(cp), NULL, NULL), -EINVAL);
	/* VIRQs: DOM_EXC yes, TIMER no */
	vq.virq = VIRQ_TIMER;
	CU_ASSERT_EQUAL(call(1, LAMINA_CTL_EVTCHN_BIND_VIRQ, &vq, sizeof(vq), vfds, &nfds), -EINVAL);
	vq.virq = VIRQ_DOM_EXC;
	CU_ASSERT_EQUAL_FATAL(call(1, LAMINA_CTL_EVTCHN_BIND_VIRQ, &vq, sizeof(vq), vfds, &nfds), 0);
	CU_ASSERT_EQUAL_FATAL(nfds, 2);
	/* alloc_unbound in the guest for Domain-0 */
	al = (struct lamina_ctl_evtchn_alloc){g_domid, 0};
	CU_ASSERT_EQUAL(call(0, LAMINA_CTL_EVTCHN_ALLOC_UNBOUND, &al, sizeof(al), NULL, NULL), 0);
	memcpy(&gport, payload(), sizeof(gport));
	CU_ASSERT(gport > cport);
	al.dom = 0;
	CU_ASSERT_EQUAL(call(0, LAMINA_CTL_EVTCHN_ALLOC_UNBOUND, &al, sizeof(al), NULL, NULL), -EINVAL);
	al = (struct lamina_ctl_evtchn_alloc){g_domid, 999};
	CU_ASSERT_EQUAL(call(0, LAMINA_CTL_EVTCHN_ALLOC_UNBOUND, &al, sizeof(al), NULL, NULL), -ESRCH);
	al = (struct lamina_ctl_evtchn_alloc){999, 0};
	CU_ASSERT_EQUAL(call(0, LAMINA_CTL_EVTCHN_ALLOC_UNBOUND, &al, sizeof(al), NULL, NULL), -ESRCH);
	CU_ASSERT_EQUAL(evtchn_nr_ports(g_hv.dom0), 2);

	/* subscribe on client 1: the reply, then CREATED for the live domain */
	{
		struct lamina_ctl_event ev;
		struct lamina_ctl_domref ref = {.domid = g_domid};
		struct lamina_ctl_domstats st;
		struct lamina_ctl_wait w;
		struct lamina_ctl_dominfo info;
		ssize_t n;

		CU_ASSERT_EQUAL(call(1, LAMINA_CTL_SUBSCRIBE, NULL, 0, NULL, NULL), 0);
		n = recv(g_fd[1], g_buf, sizeof(g_buf), MSG_DONTWAIT);
		CU_ASSERT_FATAL(n == (ssize_t)(sizeof(struct lamina_ctl_hdr) + sizeof(ev)));
		memcpy(&ev, payload(), sizeof(ev));
		CU_ASSERT_EQUAL(ev.kind, LAMINA_EV_CREATED);
		CU_ASSERT_EQUAL(ev.domid, g_domid);
		CU_ASSERT_STRING_EQUAL(ev.name, "ev-guest");
		CU_ASSERT_EQUAL(call(0, LAMINA_CTL_DOMSTATS, &ref, sizeof(ref), NULL, NULL), 0);
		memcpy(&st, payload(), sizeof(st));
		CU_ASSERT_EQUAL(st.domid, g_domid);
		CU_ASSERT_EQUAL(st.nr_ports, 3); /* console, xenstore, the alloc above */
		CU_ASSERT(st.events_sent >= 1 && st.events_received >= 1);
		CU_ASSERT(st.hc_count[__HYPERVISOR_sched_op] >= 1); /* it blocked */
		ref.domid = 999;
		CU_ASSERT_EQUAL(call(0, LAMINA_CTL_DOMSTATS, &ref, sizeof(ref), NULL, NULL), -ESRCH);

		/* destroy: DESTROYED to the subscriber, DOM_EXC and the peer's port signalled */
		while (read(fds[1], &v, sizeof(v)) > 0)
			;
		ref.domid = g_domid;
		CU_ASSERT_EQUAL(call(0, LAMINA_CTL_DESTROY, &ref, sizeof(ref), NULL, NULL), 0);
		n = recv(g_fd[1], g_buf, sizeof(g_buf), MSG_DONTWAIT);
		CU_ASSERT_FATAL(n == (ssize_t)(sizeof(struct lamina_ctl_hdr) + sizeof(ev)));
		memcpy(&ev, payload(), sizeof(ev));
		CU_ASSERT_EQUAL(ev.kind, LAMINA_EV_DESTROYED);
		CU_ASSERT(readable(vfds[1], 1000));
		CU_ASSERT(readable(fds[1], 1000));
		/* WAIT on the gone domain answers at once from its tombstone, by name and by id */
		memset(&w, 0, sizeof(w));
		w.dom.domid = LAMINA_DOMID_BY_NAME;
		strcpy(w.dom.name, "ev-guest");
		CU_ASSERT_EQUAL(call(0, LAMINA_CTL_WAIT, &w, sizeof(w), NULL, NULL), 0);
		memcpy(&info, payload(), sizeof(info));
		CU_ASSERT_EQUAL(info.state, LAMINA_DOM_DEAD);
		CU_ASSERT_EQUAL(info.domid, g_domid);
		w.dom.domid = g_domid;
		CU_ASSERT_EQUAL(call(0, LAMINA_CTL_WAIT, &w, sizeof(w), NULL, NULL), 0);
		w.dom.domid = 4321;
		CU_ASSERT_EQUAL(call(0, LAMINA_CTL_WAIT, &w, sizeof(w), NULL, NULL), -ESRCH);
	}
	/* a connection going away closes its ports */
	close(g_fd[1]);
	g_fd[1] = -1;
	CU_ASSERT_EQUAL(ctl_server_poll(&g_srv, 100), 0);
	CU_ASSERT_EQUAL(evtchn_nr_ports(g_hv.dom0), 1);
	cp.port = d0port;
	CU_ASSERT_EQUAL(call(0, LAMINA_CTL_EVTCHN_CLOSE, &cp, sizeof(cp), NULL, NULL), 0);
	CU_ASSERT_EQUAL(evtchn_nr_ports(g_hv.dom0), 0);
	for (i = 0; i < 2; i++) {
		close(fds[i]);
		close(vfds[i]);
	}
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		printf("SKIP: /dev/kvm is not usable (%s): event control ops not tested\n", strerror(errno));
		return 77;
	}
	close(fd);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("control ops: event channels, special pages, notifications", setup, teardown);
	CU_add_test(s, "create; MAP_SPECIAL hands out the special memfd", test_create_and_special);
	CU_add_test(s, "Domain-0 ports, ownership, subscribe, destroy, tombstone WAIT", test_dom0_ports);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() + CU_get_number_of_failure_records();
	if (CU_get_number_of_tests_run() != 2)
		failed++;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
