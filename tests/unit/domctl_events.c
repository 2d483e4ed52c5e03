/* Unit tests of libdomctl's event-channel, special-page, notification and DOMSTATS helpers
 * against a fake server on a socketpair: descriptors travel with
 * SCM_RIGHTS exactly as lamina-hv sends them, and wrong counts or sizes are refused, leak-free. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <CUnit/Basic.h>

#include "domctl_test.h"
#include "test_util.h"

static void test_bind_interdomain(void)
{
	struct lamina_ctl_evtchn_port port = {.port = 7};
	struct lamina_ctl_evtchn_bind req;
	struct ctl_evtchn ch = CTL_EVTCHN_INIT;
	struct lamina_ctl_hdr h;
	int efd[2] = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC)}, before;
	uint64_t v = 0;
	struct domctl_fake f;

	before = tu_count_fds(0);
	domctl_fake_open(&f);
	domctl_fake_reply(&f, LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN, 1, 0, &port, sizeof(port), efd, 2);
	CU_ASSERT_EQUAL_FATAL(ctl_evtchn_bind_interdomain(&f.conn, 3, 5, &ch), 0);
	CU_ASSERT_EQUAL(domctl_fake_request(&f, &h, &req, sizeof(req)), sizeof(req));
	CU_ASSERT_EQUAL(h.op, LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN);
	CU_ASSERT_EQUAL(req.remote_dom, 3);
	CU_ASSERT_EQUAL(req.remote_port, 5);
	CU_ASSERT_EQUAL(ch.port, 7);
	/* notify reaches the server's first eventfd; the server's signal on the second is acked */
	CU_ASSERT_EQUAL(ctl_evtchn_notify(&ch), 0);
	CU_ASSERT_EQUAL(read(efd[0], &v, sizeof(v)), (ssize_t)sizeof(v));
	CU_ASSERT_EQUAL(v, 1);
	CU_ASSERT_EQUAL(ctl_evtchn_ack(&ch, &v), -EAGAIN);
	v = 3;
	CU_ASSERT_EQUAL(write(efd[1], &v, sizeof(v)), (ssize_t)sizeof(v));
	CU_ASSERT_EQUAL(ctl_evtchn_ack(&ch, &v), 0);
	CU_ASSERT_EQUAL(v, 3);
	CU_ASSERT_EQUAL(ctl_evtchn_wait(&ch, 10, NULL), -ETIMEDOUT);
	v = 2;
	CU_ASSERT_EQUAL(write(efd[1], &v, sizeof(v)), (ssize_t)sizeof(v));
	CU_ASSERT_EQUAL(ctl_evtchn_wait(&ch, 1000, &v), 0);
	CU_ASSERT_EQUAL(v, 2);
	/* close: one request naming the port, descriptors released */
	domctl_fake_reply(&f, LAMINA_CTL_EVTCHN_CLOSE, 2, 0, NULL, 0, NULL, 0);
	CU_ASSERT_EQUAL(ctl_evtchn_close(&f.conn, &ch), 0);
	CU_ASSERT_EQUAL(domctl_fake_request(&f, &h, &port, sizeof(port)), sizeof(port));
	CU_ASSERT_EQUAL(h.op, LAMINA_CTL_EVTCHN_CLOSE);
	CU_ASSERT_EQUAL(port.port, 7);
	CU_ASSERT_EQUAL(ch.notify_fd, -1);
	CU_ASSERT_EQUAL(ch.event_fd, -1);
	domctl_fake_close(&f);
	close(efd[0]);
	close(efd[1]);
	CU_ASSERT_EQUAL(tu_count_fds(0), before - 2);
}

static void test_bind_wrong_fds(void)
{
	struct lamina_ctl_evtchn_port port = {.port = 1};
	int efd[3] = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC)};
	struct ctl_evtchn ch = CTL_EVTCHN_INIT;
	int before = tu_count_fds(0);
	struct domctl_fake f;

	for (unsigned nfds = 0; nfds <= 3; nfds += 2 - (nfds == 0)) { /* 0, 1, 3 */
		domctl_fake_open(&f);
		domctl_fake_reply(&f, LAMINA_CTL_EVTCHN_BIND_VIRQ, 1, 0, &port, sizeof(port), efd, nfds);
		CU_ASSERT_EQUAL(ctl_evtchn_bind_virq(&f.conn, 1, &ch), -EPROTO);
		CU_ASSERT_EQUAL(ch.notify_fd, -1);
		domctl_fake_close(&f);
		CU_ASSERT_EQUAL(tu_count_fds(0), before);
	}
	/* an error status with descriptors: refused, descriptors closed */
	domctl_fake_open(&f);
	domctl_fake_reply(&f, LAMINA_CTL_EVTCHN_BIND_VIRQ, 1, -ESRCH, NULL, 0, efd, 2);
	CU_ASSERT_EQUAL(ctl_evtchn_bind_virq(&f.conn, 1, &ch), -ESRCH);
	domctl_fake_close(&f);
	CU_ASSERT_EQUAL(tu_count_fds(0), before);
	for (int i = 0; i < 3; i++)
		close(efd[i]);
}

static void test_alloc_unbound(void)
{
	struct lamina_ctl_evtchn_port port = {.port = 12};
	struct lamina_ctl_evtchn_alloc req;
	struct lamina_ctl_hdr h;
	uint32_t p = 0;
	struct domctl_fake f;

	domctl_fake_open(&f);
	domctl_fake_reply(&f, LAMINA_CTL_EVTCHN_ALLOC_UNBOUND, 1, 0, &port, sizeof(port), NULL, 0);
	CU_ASSERT_EQUAL(ctl_evtchn_alloc_unbound(&f.conn, 4, 0, &p), 0);
	CU_ASSERT_EQUAL(p, 12);
	domctl_fake_request(&f, &h, &req, sizeof(req));
	CU_ASSERT_EQUAL(req.dom, 4);
	CU_ASSERT_EQUAL(req.remote_dom, 0);
	domctl_fake_reply(&f, LAMINA_CTL_EVTCHN_ALLOC_UNBOUND, 2, -ENOSPC, NULL, 0, NULL, 0);
	CU_ASSERT_EQUAL(ctl_evtchn_alloc_unbound(&f.conn, 4, 0, &p), -ENOSPC);
	domctl_fake_close(&f);
}

static void test_map_special(void)
{
	struct lamina_ctl_mapping good = {.gfn = 0x800, .offset = 4096, .size = 4096, .port = 2};
	struct {
		const char *what;
		uint64_t offset, size;
		unsigned nfds;
	} bad[] = {
	    {"size 0", 0, 0, 1},
	    {"unaligned size", 0, 100, 1},
	    {"unaligned offset", 10, 4096, 1},
	    {"beyond the memfd", 4096, 8192, 1},
	    {"huge", 0, 1ull << 40, 1},
	    {"no descriptor", 0, 4096, 0},
	    {"wrapping", UINT64_MAX - 4095, 8192, 1},
	};
	struct ctl_special sp = CTL_SPECIAL_INIT;
	int mfd = memfd_create("special", MFD_CLOEXEC), before;
	char check[4] = {0};
	struct domctl_fake f;

	CU_ASSERT_EQUAL_FATAL(ftruncate(mfd, 8192), 0);
	before = tu_count_fds(0);
	domctl_fake_open(&f);
	domctl_fake_reply(&f, LAMINA_CTL_MAP_SPECIAL, 1, 0, &good, sizeof(good), &mfd, 1);
	CU_ASSERT_EQUAL_FATAL(ctl_map_special(&f.conn, 3, LAMINA_SPECIAL_CONSOLE, &sp), 0);
	CU_ASSERT_EQUAL(sp.map.port, 2);
	CU_ASSERT_EQUAL(sp.map.gfn, 0x800);
	memcpy(sp.addr, "abc", 3); /* visible through the server's descriptor, at the offset */
	CU_ASSERT_EQUAL(pread(mfd, check, 3, 4096), 3);
	CU_ASSERT_STRING_EQUAL(check, "abc");
	ctl_unmap_special(&sp);
	CU_ASSERT_PTR_NULL(sp.addr);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct lamina_ctl_mapping m = {.offset = bad[i].offset, .size = bad[i].size};

		domctl_fake_reply(&f, LAMINA_CTL_MAP_SPECIAL, (uint32_t)(2 + i), 0, &m, sizeof(m), &mfd,
				  bad[i].nfds);
		if (ctl_map_special(&f.conn, 3, 0, &sp) != -EPROTO)
			CU_FAIL(bad[i].what);
	}
	domctl_fake_close(&f);
	CU_ASSERT_EQUAL(tu_count_fds(0), before);
	close(mfd);
}

static void test_subscribe_and_queue(void)
{
	struct lamina_ctl_dominfo info = {.domid = 1, .name = "web"}, out;
	struct lamina_ctl_domref ref = {.domid = 1};
	struct lamina_ctl_event ev;
	struct domctl_fake f;
	char junk[sizeof(struct lamina_ctl_hdr) + 8] = {0};
	struct lamina_ctl_hdr h = {
	    .magic = LAMINA_CTL_MAGIC, .version = LAMINA_CTL_VERSION, .op = LAMINA_CTL_EVENT, .len = 8};

	domctl_fake_open(&f);
	/* the replay of live domains may precede the SUBSCRIBE reply */
	domctl_fake_event(&f, LAMINA_EV_CREATED, 1, "web");
	domctl_fake_event(&f, LAMINA_EV_CREATED, 2, "db");
	domctl_fake_reply(&f, LAMINA_CTL_SUBSCRIBE, 1, 0, NULL, 0, NULL, 0);
	CU_ASSERT_EQUAL_FATAL(ctl_subscribe(&f.conn), 0);
	CU_ASSERT_EQUAL(ctl_event_pending(&f.conn), 2);
	/* one during an ordinary call, and a malformed one (counted, dropped) */
	domctl_fake_event(&f, LAMINA_EV_STOPPED, 1, "web");
	memcpy(junk, &h, sizeof(h));
	CU_ASSERT_EQUAL(send(f.srv, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	domctl_fake_reply(&f, LAMINA_CTL_INFO, 2, 0, &info, sizeof(info), NULL, 0);
	CU_ASSERT_EQUAL(ctl_info(&f.conn, &ref, &out), 0);
	CU_ASSERT_EQUAL(f.conn.events_lost, 1);
	CU_ASSERT_EQUAL(ctl_event_pending(&f.conn), 3);
	domctl_fake_event(&f, LAMINA_EV_DESTROYED, 1, "web");
	CU_ASSERT_EQUAL(ctl_event_next(&f.conn, &ev, 0), 0);
	CU_ASSERT(ev.kind == LAMINA_EV_CREATED && ev.domid == 1 && !strcmp(ev.name, "web"));
	CU_ASSERT_EQUAL(ctl_event_next(&f.conn, &ev, 0), 0);
	CU_ASSERT(ev.kind == LAMINA_EV_CREATED && ev.domid == 2);
	CU_ASSERT_EQUAL(ctl_event_next(&f.conn, &ev, 0), 0);
	CU_ASSERT_EQUAL(ev.kind, LAMINA_EV_STOPPED);
	CU_ASSERT_EQUAL(ctl_event_next(&f.conn, &ev, 100), 0);
	CU_ASSERT_EQUAL(ev.kind, LAMINA_EV_DESTROYED);
	CU_ASSERT_EQUAL(ctl_event_next(&f.conn, &ev, 0), -EAGAIN);
	/* an unknown kind and a stray reply are refused; a closed server is -ECONNRESET */
	domctl_fake_event(&f, 77, 1, "web");
	CU_ASSERT_EQUAL(ctl_event_next(&f.conn, &ev, 100), -EPROTO);
	domctl_fake_reply(&f, LAMINA_CTL_INFO, 9, 0, &info, sizeof(info), NULL, 0);
	CU_ASSERT_EQUAL(ctl_event_next(&f.conn, &ev, 100), -EPROTO);
	close(f.srv);
	f.srv = -1;
	CU_ASSERT_EQUAL(ctl_event_next(&f.conn, &ev, 100), -ECONNRESET);
	domctl_fake_close(&f);
}

static void test_queue_bound(void)
{
	struct lamina_ctl_event ev;
	struct domctl_fake f;
	unsigned n = 0;

	domctl_fake_open(&f);
	/* More notifications than the queue holds: the rest are counted as lost, never overrun. */
	for (unsigned i = 0; i < CTL_EVENT_QUEUE_MAX + 5; i++) {
		char msg[sizeof(struct lamina_ctl_hdr) + sizeof(ev)];
		struct lamina_ctl_hdr h = {.magic = LAMINA_CTL_MAGIC,
					   .version = LAMINA_CTL_VERSION,
					   .op = LAMINA_CTL_EVENT,
					   .len = sizeof(ev)};

		ev = (struct lamina_ctl_event){.kind = LAMINA_EV_CREATED, .domid = i};
		memcpy(msg, &h, sizeof(h));
		memcpy(msg + sizeof(h), &ev, sizeof(ev));
		ctl_event_take(&f.conn, msg, sizeof(msg));
	}
	CU_ASSERT_EQUAL(ctl_event_pending(&f.conn), CTL_EVENT_QUEUE_MAX);
	CU_ASSERT_EQUAL(f.conn.events_lost, 5);
	while (ctl_event_next(&f.conn, &ev, 0) == 0) {
		CU_ASSERT_EQUAL(ev.domid, n);
		n++;
	}
	CU_ASSERT_EQUAL(n, CTL_EVENT_QUEUE_MAX);
	domctl_fake_close(&f);
}

static void test_domstats(void)
{
	struct lamina_ctl_domstats st = {.domid = 4, .events_sent = 10}, out;
	struct lamina_ctl_domref ref = {.domid = 4};
	struct domctl_fake f;

	domctl_fake_open(&f);
	domctl_fake_reply(&f, LAMINA_CTL_DOMSTATS, 1, 0, &st, sizeof(st), NULL, 0);
	CU_ASSERT_EQUAL(ctl_domstats(&f.conn, &ref, &out), 0);
	CU_ASSERT_EQUAL(out.events_sent, 10);
	domctl_fake_reply(&f, LAMINA_CTL_DOMSTATS, 2, -ESRCH, NULL, 0, NULL, 0);
	CU_ASSERT_EQUAL(ctl_domstats(&f.conn, &ref, &out), -ESRCH);
	domctl_fake_reply(&f, LAMINA_CTL_DOMSTATS, 3, 0, &st, sizeof(st) - 8, NULL, 0);
	CU_ASSERT_EQUAL(ctl_domstats(&f.conn, &ref, &out), -EPROTO);
	domctl_fake_close(&f);
}

int main(void)
{
	static const struct tu_test tests[] = {
	    {"bind interdomain: two eventfds, notify, ack, close", test_bind_interdomain},
	    {"bind replies with the wrong descriptors", test_bind_wrong_fds},
	    {"alloc unbound", test_alloc_unbound},
	    {"map special: mapping checked against the memfd", test_map_special},
	    {"subscribe: notifications queued around replies", test_subscribe_and_queue},
	    {"notification queue is bounded", test_queue_bound},
	    {"domstats", test_domstats},
	};

	return tu_run_suite("libdomctl events", NULL, NULL, tests, TU_COUNT(tests));
}
