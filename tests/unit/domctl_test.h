/* The libdomctl tests' fake server: a socketpair whose client end is a struct ctl_conn and whose
 * server end the test feeds replies into before each call (framing from test_ctl_fake.h). */
#ifndef LAMINA_TEST_DOMCTL_TEST_H
#define LAMINA_TEST_DOMCTL_TEST_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <CUnit/Basic.h>

#include "ctl_client.h"
#include "test_ctl_fake.h"

struct domctl_fake {
	struct ctl_conn conn; /* the client end */
	int srv;	      /* the fake server's end; -1 once the test closed it */
};

static inline void domctl_fake_open(struct domctl_fake *f)
{
	struct ctl_fake pair;
	int fd = -1;

	CU_ASSERT_EQUAL_FATAL(ctl_fake_pair(&pair, &fd), 0);
	ctl_attach(&f->conn, fd);
	f->conn.timeout_ms = 2000;
	f->srv = pair.conn;
}

static inline void domctl_fake_close(struct domctl_fake *f)
{
	ctl_close(&f->conn);
	if (f->srv >= 0)
		close(f->srv);
}

/* Any datagram at all (headers the test forged itself), with optional descriptors. */
static inline void domctl_fake_raw(struct domctl_fake *f, const void *buf, size_t len, const int *fds,
				   unsigned nfds)
{
	CU_ASSERT_EQUAL(ctl_fake_send_raw(f->srv, buf, len, fds, nfds), (ssize_t)len);
}

/* One well-formed message (reply or notification) with optional descriptors. */
static inline void domctl_fake_send(struct domctl_fake *f, uint16_t op, uint32_t seq, int32_t status,
				    uint32_t flags, const void *p, size_t len, const int *fds, unsigned nfds)
{
	CU_ASSERT_EQUAL(ctl_fake_send(f->srv, op, seq, status, flags, p, len, fds, nfds),
			(ssize_t)(sizeof(struct lamina_ctl_hdr) + len));
}

static inline void domctl_fake_reply(struct domctl_fake *f, uint16_t op, uint32_t seq, int32_t status,
				     const void *p, size_t len, const int *fds, unsigned nfds)
{
	domctl_fake_send(f, op, seq, status, LAMINA_CTL_F_REPLY, p, len, fds, nfds);
}

static inline void domctl_fake_event(struct domctl_fake *f, uint32_t kind, uint32_t domid, const char *name)
{
	CU_ASSERT_EQUAL(ctl_fake_event(f->srv, kind, domid, name),
			(ssize_t)(sizeof(struct lamina_ctl_hdr) + sizeof(struct lamina_ctl_event)));
}

/* The request the client sent: its header, up to cap payload bytes; returns the payload's size. */
static inline size_t domctl_fake_request(struct domctl_fake *f, struct lamina_ctl_hdr *h, void *payload,
					 size_t cap)
{
	struct ctl_fake_req rq;
	ssize_t n = ctl_fake_recv(f->srv, &rq, MSG_DONTWAIT);

	CU_ASSERT_FATAL(n >= (ssize_t)sizeof(*h));
	*h = rq.h;
	if (cap && rq.len)
		memcpy(payload, rq.payload, rq.len < cap ? rq.len : cap);
	return rq.len;
}

#define DOMCTL_FAKE_PAGE_MAX 4

/* A LIST reply page: claimed records announced, count carried (ids first, first + 1, ...). */
static inline void domctl_fake_list_page(struct domctl_fake *f, uint32_t seq, uint32_t count,
					 uint32_t claimed, uint32_t next, uint32_t first)
{
	char payload[sizeof(struct lamina_ctl_list_reply) +
		     DOMCTL_FAKE_PAGE_MAX * sizeof(struct lamina_ctl_dominfo)] = {0};
	struct lamina_ctl_list_reply head = {.count = claimed, .next_domid = next};

	if (count > DOMCTL_FAKE_PAGE_MAX) {
		CU_FAIL("more records than one fake LIST page holds");
		return;
	}
	memcpy(payload, &head, sizeof(head));
	for (uint32_t i = 0; i < count; i++) {
		struct lamina_ctl_dominfo d = {.domid = first + i, .vcpus = 1};

		snprintf(d.name, sizeof(d.name), "d%u", first + i);
		memcpy(payload + sizeof(head) + i * sizeof(d), &d, sizeof(d));
	}
	domctl_fake_reply(f, LAMINA_CTL_LIST, seq, 0, payload,
			  sizeof(head) + count * sizeof(struct lamina_ctl_dominfo), NULL, 0);
}

#endif
