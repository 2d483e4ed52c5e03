/* Unit tests of libdomctl's control-protocol client against a fake server on a socketpair:
 * requests are framed as control.h says, and every malformed reply is refused without a crash
 * or a leaked descriptor. Also the JSON views that list/info print. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <CUnit/Basic.h>
#include <yajl/yajl_tree.h>

#include "ctl_client.h"
#include "domctl.h"

struct fake {
	struct ctl_conn conn; /* the client end */
	int srv;	      /* the fake server's end */
};

static void fake_open(struct fake *f)
{
	int sv[2];

	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ctl_attach(&f->conn, sv[0]);
	f->conn.timeout_ms = 2000;
	f->srv = sv[1];
}

static void fake_close(struct fake *f)
{
	ctl_close(&f->conn);
	close(f->srv);
}

/* Queue a reply datagram before the call: the client reads it after sending its request. */
static void fake_reply_raw(struct fake *f, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = {(void *)buf, len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds) {
		struct cmsghdr *c;

		msg.msg_control = ctrl.b;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	CU_ASSERT_EQUAL(sendmsg(f->srv, &msg, 0), (ssize_t)len);
}

static void fake_reply(struct fake *f, uint16_t op, uint32_t seq, int32_t status, const void *payload,
		       size_t len)
{
	char buf[sizeof(struct lamina_ctl_hdr) + 4096];
	struct lamina_ctl_hdr h = {.magic = LAMINA_CTL_MAGIC,
				   .version = LAMINA_CTL_VERSION,
				   .op = op,
				   .seq = seq,
				   .status = status,
				   .len = (uint32_t)len,
				   .flags = LAMINA_CTL_F_REPLY};

	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	fake_reply_raw(f, buf, sizeof(h) + len, NULL, 0);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_request_framing(void)
{
	struct lamina_ctl_domref ref;
	struct fake f;
	char buf[256];
	struct lamina_ctl_hdr h;
	ssize_t n;

	fake_open(&f);
	CU_ASSERT_EQUAL(ctl_domref_parse(&ref, "web1"), 0);
	fake_reply(&f, LAMINA_CTL_DESTROY, 1, 0, NULL, 0);
	CU_ASSERT_EQUAL(ctl_destroy(&f.conn, &ref), 0);
	n = recv(f.srv, buf, sizeof(buf), 0);
	CU_ASSERT_EQUAL_FATAL(n, (ssize_t)(sizeof(h) + sizeof(ref)));
	memcpy(&h, buf, sizeof(h));
	CU_ASSERT_EQUAL(h.magic, LAMINA_CTL_MAGIC);
	CU_ASSERT_EQUAL(h.version, LAMINA_CTL_VERSION);
	CU_ASSERT_EQUAL(h.op, LAMINA_CTL_DESTROY);
	CU_ASSERT_EQUAL(h.seq, 1);
	CU_ASSERT_EQUAL(h.status, 0);
	CU_ASSERT_EQUAL(h.flags, 0);
	CU_ASSERT_EQUAL(h.len, sizeof(ref));
	CU_ASSERT_EQUAL(memcmp(buf + sizeof(h), &ref, sizeof(ref)), 0);
	/* sequence numbers advance per request */
	fake_reply(&f, LAMINA_CTL_PAUSE, 2, 0, NULL, 0);
	CU_ASSERT_EQUAL(ctl_pause(&f.conn, &ref), 0);
	fake_close(&f);
}

static void test_domref(void)
{
	struct lamina_ctl_domref r;
	char longname[80];

	CU_ASSERT_EQUAL(ctl_domref_parse(&r, "12"), 0);
	CU_ASSERT_EQUAL(r.domid, 12);
	CU_ASSERT_EQUAL(ctl_domref_parse(&r, "0"), 0);
	CU_ASSERT_EQUAL(r.domid, 0);
	CU_ASSERT_EQUAL(ctl_domref_parse(&r, "1web"), 0);
	CU_ASSERT_EQUAL(r.domid, LAMINA_DOMID_BY_NAME);
	CU_ASSERT_STRING_EQUAL(r.name, "1web");
	CU_ASSERT_EQUAL(ctl_domref_parse(&r, ""), -EINVAL);
	CU_ASSERT_EQUAL(ctl_domref_parse(&r, "4294967295"), -EINVAL);
	CU_ASSERT_EQUAL(ctl_domref_parse(&r, "99999999999999999999"), -EINVAL);
	memset(longname, 'x', 64);
	longname[64] = '\0';
	CU_ASSERT_EQUAL(ctl_domref_parse(&r, longname), -EINVAL);
}

static void test_hello_ok(void)
{
	struct lamina_ctl_hello h = {.version = 1, .xen_major = 4, .xen_minor = 17}, out;
	struct fake f;

	memset(h.extraversion, 'x', sizeof(h.extraversion)); /* unterminated on the wire */
	fake_open(&f);
	fake_reply(&f, LAMINA_CTL_HELLO, 1, 0, &h, sizeof(h));
	CU_ASSERT_EQUAL(ctl_hello(&f.conn, &out), 0);
	CU_ASSERT_EQUAL(out.xen_minor, 17);
	CU_ASSERT_EQUAL(out.extraversion[sizeof(out.extraversion) - 1], '\0');
	fake_close(&f);
}

/* Each bad reply: the call fails with the given error and the client survives. */
static void test_bad_replies(void)
{
	struct lamina_ctl_hello h = {0}, out;
	struct lamina_ctl_hdr good = {.magic = LAMINA_CTL_MAGIC,
				      .version = LAMINA_CTL_VERSION,
				      .op = LAMINA_CTL_HELLO,
				      .seq = 1,
				      .len = sizeof(h),
				      .flags = LAMINA_CTL_F_REPLY};
	struct {
		const char *what;
		struct lamina_ctl_hdr hdr;
		size_t payload;
		int want;
	} cases[] = {
	    {"bad magic", good, sizeof(h), -EPROTO},	     {"bad version", good, sizeof(h), -EPROTO},
	    {"not a reply", good, sizeof(h), -EPROTO},	     {"wrong op", good, sizeof(h), -EPROTO},
	    {"wrong seq", good, sizeof(h), -EPROTO},	     {"len lies", good, sizeof(h), -EPROTO},
	    {"short payload", good, sizeof(h) - 1, -EPROTO}, {"long payload", good, sizeof(h) + 8, -EPROTO},
	    {"positive status", good, sizeof(h), -EPROTO},   {"error status", good, 0, -ENOENT},
	};
	char buf[sizeof(struct lamina_ctl_hdr) + sizeof(h) + 8] = {0};
	int before = count_fds();

	cases[0].hdr.magic = 0x12345678;
	cases[1].hdr.version = 2;
	cases[2].hdr.flags = 0;
	cases[3].hdr.op = LAMINA_CTL_INFO;
	cases[4].hdr.seq = 7;
	cases[5].hdr.len = sizeof(h) + 1;
	cases[6].hdr.len = sizeof(h) - 1;
	cases[7].hdr.len = sizeof(h) + 8;
	cases[8].hdr.status = 5;
	cases[9].hdr.status = -ENOENT;
	cases[9].hdr.len = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f;

		fake_open(&f);
		memcpy(buf, &cases[i].hdr, sizeof(cases[i].hdr));
		fake_reply_raw(&f, buf, sizeof(struct lamina_ctl_hdr) + cases[i].payload, NULL, 0);
		if (ctl_hello(&f.conn, &out) != cases[i].want)
			CU_FAIL(cases[i].what);
		CU_ASSERT(f.conn.err[0] != '\0');
		fake_close(&f);
	}
	CU_ASSERT_EQUAL(count_fds(), before);
}

static void test_short_oversized_closed_timeout(void)
{
	struct lamina_ctl_hello out;
	char *big;
	struct fake f;

	fake_open(&f);
	fake_reply_raw(&f, "short", 5, NULL, 0);
	CU_ASSERT_EQUAL(ctl_hello(&f.conn, &out), -EPROTO);
	fake_close(&f);

	/* A datagram larger than any legal reply is refused (and not copied anywhere). */
	big = calloc(1, sizeof(struct lamina_ctl_hdr) + LAMINA_CTL_MAX_PAYLOAD + 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	fake_open(&f);
	{
		int sz = 1 << 20;

		setsockopt(f.srv, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	fake_reply_raw(&f, big, sizeof(struct lamina_ctl_hdr) + LAMINA_CTL_MAX_PAYLOAD + 4096, NULL, 0);
	CU_ASSERT_EQUAL(ctl_hello(&f.conn, &out), -EMSGSIZE);
	fake_close(&f);

	/* The server goes away. */
	fake_open(&f);
	close(f.srv);
	f.srv = -1;
	CU_ASSERT(ctl_hello(&f.conn, &out) < 0);
	ctl_close(&f.conn);

	/* The server never answers. */
	fake_open(&f);
	f.conn.timeout_ms = 50;
	CU_ASSERT_EQUAL(ctl_hello(&f.conn, &out), -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(f.conn.err, "no reply"));
	fake_close(&f);

	/* Requests larger than the protocol allows are never sent. */
	fake_open(&f);
	CU_ASSERT_EQUAL(ctl_call(&f.conn, LAMINA_CTL_HELLO, big, LAMINA_CTL_MAX_PAYLOAD + 1, NULL, NULL),
			-EMSGSIZE);
	fake_close(&f);
	free(big);
}

static void test_fds(void)
{
	char buf[sizeof(struct lamina_ctl_hdr)];
	struct lamina_ctl_hdr h = {.magic = LAMINA_CTL_MAGIC,
				   .version = LAMINA_CTL_VERSION,
				   .op = LAMINA_CTL_HELLO,
				   .seq = 1,
				   .flags = LAMINA_CTL_F_REPLY};
	struct ctl_reply rep = {.buf = NULL, .cap = 0};
	int efd[CTL_MAX_FDS + 1], before;
	struct fake f;

	for (int i = 0; i < CTL_MAX_FDS + 1; i++)
		efd[i] = eventfd(0, EFD_CLOEXEC);
	before = count_fds();
	memcpy(buf, &h, sizeof(h));

	/* One descriptor on a good reply reaches the caller. */
	fake_open(&f);
	fake_reply_raw(&f, buf, sizeof(buf), efd, 1);
	CU_ASSERT_EQUAL(ctl_call(&f.conn, LAMINA_CTL_HELLO, NULL, 0, &rep, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(rep.nfds, 1);
	CU_ASSERT(write(rep.fds[0], &(uint64_t){1}, 8) == 8); /* it is the eventfd */
	close(rep.fds[0]);
	fake_close(&f);
	CU_ASSERT_EQUAL(count_fds(), before);

	/* Too many descriptors: refused, all closed. */
	fake_open(&f);
	fake_reply_raw(&f, buf, sizeof(buf), efd, CTL_MAX_FDS + 1);
	CU_ASSERT_EQUAL(ctl_call(&f.conn, LAMINA_CTL_HELLO, NULL, 0, &rep, NULL), -EPROTO);
	fake_close(&f);
	CU_ASSERT_EQUAL(count_fds(), before);

	/* Descriptors on a reply that fails its checks are closed too. */
	fake_open(&f);
	h.seq = 9;
	memcpy(buf, &h, sizeof(h));
	fake_reply_raw(&f, buf, sizeof(buf), efd, 2);
	CU_ASSERT_EQUAL(ctl_call(&f.conn, LAMINA_CTL_HELLO, NULL, 0, &rep, NULL), -EPROTO);
	fake_close(&f);
	CU_ASSERT_EQUAL(count_fds(), before);

	/* A caller that wants no descriptors gets none, and none leak. */
	fake_open(&f);
	h.seq = 1;
	memcpy(buf, &h, sizeof(h));
	fake_reply_raw(&f, buf, sizeof(buf), efd, 1);
	CU_ASSERT_EQUAL(ctl_call(&f.conn, LAMINA_CTL_HELLO, NULL, 0, NULL, NULL), 0);
	fake_close(&f);
	CU_ASSERT_EQUAL(count_fds(), before);
	for (int i = 0; i < CTL_MAX_FDS + 1; i++)
		close(efd[i]);
}

static void list_page(struct fake *f, uint32_t seq, uint32_t count, uint32_t claimed, uint32_t next,
		      uint32_t first)
{
	char payload[sizeof(struct lamina_ctl_list_reply) + 4 * sizeof(struct lamina_ctl_dominfo)] = {0};
	struct lamina_ctl_list_reply head = {.count = claimed, .next_domid = next};

	memcpy(payload, &head, sizeof(head));
	for (uint32_t i = 0; i < count; i++) {
		struct lamina_ctl_dominfo d = {.domid = first + i, .vcpus = 1};

		snprintf(d.name, sizeof(d.name), "d%u", first + i);
		memcpy(payload + sizeof(head) + i * sizeof(d), &d, sizeof(d));
	}
	fake_reply(f, LAMINA_CTL_LIST, seq, 0, payload,
		   sizeof(head) + count * sizeof(struct lamina_ctl_dominfo));
}

static void test_list_paging(void)
{
	struct lamina_ctl_dominfo *v = NULL;
	struct lamina_ctl_list_req req;
	struct lamina_ctl_hdr h;
	char buf[256];
	size_t n = 0;
	struct fake f;

	fake_open(&f);
	list_page(&f, 1, 2, 2, 5, 1);
	list_page(&f, 2, 1, 1, 0, 5);
	CU_ASSERT_EQUAL_FATAL(ctl_list(&f.conn, &v, &n), 0);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(v[0].domid, 1);
	CU_ASSERT_EQUAL(v[2].domid, 5);
	CU_ASSERT_STRING_EQUAL(v[2].name, "d5");
	free(v);
	/* the second request starts at the first page's next_domid */
	CU_ASSERT_EQUAL(recv(f.srv, buf, sizeof(buf), 0), (ssize_t)(sizeof(h) + sizeof(req)));
	CU_ASSERT_EQUAL(recv(f.srv, buf, sizeof(buf), 0), (ssize_t)(sizeof(h) + sizeof(req)));
	memcpy(&req, buf + sizeof(h), sizeof(req));
	CU_ASSERT_EQUAL(req.first_domid, 5);
	CU_ASSERT(req.max > 0);
	fake_close(&f);

	/* count disagrees with the records carried */
	fake_open(&f);
	list_page(&f, 1, 2, 3, 0, 1);
	CU_ASSERT_EQUAL(ctl_list(&f.conn, &v, &n), -EPROTO);
	fake_close(&f);
	/* next_domid that does not advance would loop for ever */
	fake_open(&f);
	list_page(&f, 1, 1, 1, 3, 1);
	list_page(&f, 2, 1, 1, 3, 3);
	CU_ASSERT_EQUAL(ctl_list(&f.conn, &v, &n), -EPROTO);
	fake_close(&f);
	/* a partial record */
	fake_open(&f);
	{
		struct lamina_ctl_list_reply head = {.count = 1};
		char payload[sizeof(head) + 10] = {0};

		memcpy(payload, &head, sizeof(head));
		fake_reply(&f, LAMINA_CTL_LIST, 1, 0, payload, sizeof(payload));
	}
	CU_ASSERT_EQUAL(ctl_list(&f.conn, &v, &n), -EPROTO);
	fake_close(&f);
	/* an empty host */
	fake_open(&f);
	list_page(&f, 1, 0, 0, 0, 0);
	CU_ASSERT_EQUAL(ctl_list(&f.conn, &v, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	free(v);
	fake_close(&f);
}

/* Seeded garbage replies: the client must fail cleanly (or accept a well-formed reply). */
static void test_garbage(void)
{
	struct lamina_ctl_dominfo info;
	struct lamina_ctl_domref ref = {.domid = 1};
	char buf[sizeof(struct lamina_ctl_hdr) + sizeof(info) + 16];
	unsigned seed = 12345;
	int before = count_fds();

	for (int iter = 0; iter < 3000; iter++) {
		struct lamina_ctl_hdr h = {.magic = LAMINA_CTL_MAGIC,
					   .version = LAMINA_CTL_VERSION,
					   .op = LAMINA_CTL_INFO,
					   .seq = 1,
					   .len = sizeof(info),
					   .flags = LAMINA_CTL_F_REPLY};
		size_t len = sizeof(h) + sizeof(info);
		struct fake f;
		int r;

		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (char)rand_r(&seed);
		if (rand_r(&seed) % 4) /* mostly plausible headers with one field off */
			memcpy(buf, &h, sizeof(h));
		buf[rand_r(&seed) % sizeof(h)] ^= (char)(1u << (rand_r(&seed) % 8));
		if (rand_r(&seed) % 3 == 0)
			len = (size_t)rand_r(&seed) % sizeof(buf);
		fake_open(&f);
		f.conn.timeout_ms = 100;
		fake_reply_raw(&f, buf, len, NULL, 0);
		r = ctl_info(&f.conn, &ref, &info);
		CU_ASSERT(r == 0 || (r < 0 && f.conn.err[0]));
		if (r == 0)
			CU_ASSERT_EQUAL(info.name[sizeof(info.name) - 1], '\0');
		fake_close(&f);
	}
	CU_ASSERT_EQUAL(count_fds(), before);
}

static void test_json_views(void)
{
	struct lamina_ctl_dominfo d[2] = {
	    {.domid = 3, .state = LAMINA_DOM_RUNNING, .memory_kib = 16384, .vcpus = 1},
	    {.domid = 4,
	     .state = LAMINA_DOM_CRASHED,
	     .shutdown_reason = 3,
	     .shutdown_code = -1,
	     .cpu_time_ns = 1500000000ull}};
	const char *name_path[] = {"name", NULL}, *state_path[] = {"state", NULL},
		   *cpu_path[] = {"cpu_time_s", NULL}, *reason_path[] = {"shutdown_reason", NULL};
	char *json, errbuf[128];
	const char *s;
	yajl_val root, v;
	size_t len;

	strcpy(d[0].name, "web");
	/* A name off the wire with quotes, a backslash, a control byte and no terminator. */
	memset(d[1].name, 'q', sizeof(d[1].name));
	d[1].name[0] = '"';
	d[1].name[1] = '\\';
	d[1].name[2] = '\n';
	CU_ASSERT_EQUAL_FATAL(domctl_json_list(d, 2, &json, &len), 0);
	CU_ASSERT_EQUAL(json[len - 1], '\n');
	root = yajl_tree_parse(json, errbuf, sizeof(errbuf));
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	CU_ASSERT_FATAL(YAJL_IS_ARRAY(root) && root->u.array.len == 2);
	v = yajl_tree_get(root->u.array.values[0], name_path, yajl_t_string);
	CU_ASSERT_STRING_EQUAL(YAJL_GET_STRING(v), "web");
	v = yajl_tree_get(root->u.array.values[1], name_path, yajl_t_string);
	s = v ? YAJL_GET_STRING(v) : NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(strlen(s), LAMINA_NAME_MAX - 1);
	CU_ASSERT_EQUAL(strncmp(s, "\"\\\n", 3), 0);
	v = yajl_tree_get(root->u.array.values[1], state_path, yajl_t_string);
	CU_ASSERT_STRING_EQUAL(YAJL_GET_STRING(v), "crashed");
	v = yajl_tree_get(root->u.array.values[1], reason_path, yajl_t_string);
	CU_ASSERT_STRING_EQUAL(YAJL_GET_STRING(v), "crash");
	v = yajl_tree_get(root->u.array.values[1], cpu_path, yajl_t_number);
	CU_ASSERT_DOUBLE_EQUAL(YAJL_GET_DOUBLE(v), 1.5, 1e-9);
	yajl_tree_free(root);
	free(json);

	CU_ASSERT_EQUAL(domctl_json_list(d, 0, &json, &len), 0);
	CU_ASSERT_STRING_EQUAL(json, "[]\n");
	free(json);

	CU_ASSERT_EQUAL_FATAL(domctl_json_info(&d[0], &json, &len), 0);
	CU_ASSERT_PTR_NOT_NULL(strchr(json, '\n')); /* beautified */
	root = yajl_tree_parse(json, errbuf, sizeof(errbuf));
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	CU_ASSERT(YAJL_IS_OBJECT(root));
	CU_ASSERT_PTR_NULL(yajl_tree_get(root, reason_path, yajl_t_any)); /* only for stopped domains */
	yajl_tree_free(root);
	free(json);
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
	    {"request framing", test_request_framing},
	    {"domain references", test_domref},
	    {"hello", test_hello_ok},
	    {"bad replies", test_bad_replies},
	    {"short, oversized, closed, timeout", test_short_oversized_closed_timeout},
	    {"descriptors", test_fds},
	    {"list paging", test_list_paging},
	    {"garbage replies", test_garbage},
	    {"json views", test_json_views},
	};
	CU_pSuite suite;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("ctl_client", NULL, NULL);
	for (size_t i = 0; suite && i < sizeof(tests) / sizeof(tests[0]); i++)
		CU_add_test(suite, tests[i].name, tests[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
