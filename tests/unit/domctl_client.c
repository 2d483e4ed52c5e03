/* Unit tests of libdomctl's control-protocol client against a fake server on a socketpair:
 * requests are framed as control.h says, and every malformed reply is refused without a crash
 * or a leaked descriptor. Also the JSON views that list/info print. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <CUnit/Basic.h>
#include <yajl/yajl_tree.h>

#include "domctl.h"
#include "domctl_test.h"
#include "test_util.h"

/* A reply with no descriptors, queued before the call. */
static void fake_reply(struct domctl_fake *f, uint16_t op, uint32_t seq, int32_t status, const void *payload,
		       size_t len)
{
	domctl_fake_reply(f, op, seq, status, payload, len, NULL, 0);
}

static void test_request_framing(void)
{
	struct lamina_ctl_domref ref;
	struct domctl_fake f;
	char buf[256];
	struct lamina_ctl_hdr h;
	ssize_t n;

	domctl_fake_open(&f);
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
	domctl_fake_close(&f);
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
	struct domctl_fake f;

	memset(h.extraversion, 'x', sizeof(h.extraversion)); /* unterminated on the wire */
	domctl_fake_open(&f);
	fake_reply(&f, LAMINA_CTL_HELLO, 1, 0, &h, sizeof(h));
	CU_ASSERT_EQUAL(ctl_hello(&f.conn, &out), 0);
	CU_ASSERT_EQUAL(out.xen_minor, 17);
	CU_ASSERT_EQUAL(out.extraversion[sizeof(out.extraversion) - 1], '\0');
	domctl_fake_close(&f);
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
	int before = tu_count_fds(0);

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
		struct domctl_fake f;

		domctl_fake_open(&f);
		memcpy(buf, &cases[i].hdr, sizeof(cases[i].hdr));
		domctl_fake_raw(&f, buf, sizeof(struct lamina_ctl_hdr) + cases[i].payload, NULL, 0);
		if (ctl_hello(&f.conn, &out) != cases[i].want)
			CU_FAIL(cases[i].what);
		CU_ASSERT(f.conn.err[0] != '\0');
		domctl_fake_close(&f);
	}
	CU_ASSERT_EQUAL(tu_count_fds(0), before);
}

static void test_short_oversized_closed_timeout(void)
{
	struct lamina_ctl_hello out;
	char *big;
	struct domctl_fake f;

	domctl_fake_open(&f);
	domctl_fake_raw(&f, "short", 5, NULL, 0);
	CU_ASSERT_EQUAL(ctl_hello(&f.conn, &out), -EPROTO);
	domctl_fake_close(&f);

	/* A datagram larger than any legal reply is refused (and not copied anywhere). */
	big = calloc(1, sizeof(struct lamina_ctl_hdr) + LAMINA_CTL_MAX_PAYLOAD + 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	domctl_fake_open(&f);
	{
		int sz = 1 << 20;

		setsockopt(f.srv, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	domctl_fake_raw(&f, big, sizeof(struct lamina_ctl_hdr) + LAMINA_CTL_MAX_PAYLOAD + 4096, NULL, 0);
	CU_ASSERT_EQUAL(ctl_hello(&f.conn, &out), -EMSGSIZE);
	domctl_fake_close(&f);

	/* The server goes away. */
	domctl_fake_open(&f);
	close(f.srv);
	f.srv = -1;
	CU_ASSERT(ctl_hello(&f.conn, &out) < 0);
	ctl_close(&f.conn);

	/* The server never answers. */
	domctl_fake_open(&f);
	f.conn.timeout_ms = 50;
	CU_ASSERT_EQUAL(ctl_hello(&f.conn, &out), -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(f.conn.err, "no reply"));
	domctl_fake_close(&f);

	/* Requests larger than the protocol allows are never sent. */
	domctl_fake_open(&f);
	CU_ASSERT_EQUAL(ctl_call(&f.conn, LAMINA_CTL_HELLO, big, LAMINA_CTL_MAX_PAYLOAD + 1, NULL, NULL),
			-EMSGSIZE);
	domctl_fake_close(&f);
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
	struct domctl_fake f;

	for (int i = 0; i < CTL_MAX_FDS + 1; i++)
		efd[i] = eventfd(0, EFD_CLOEXEC);
	before = tu_count_fds(0);
	memcpy(buf, &h, sizeof(h));

	/* One descriptor on a good reply reaches the caller. */
	domctl_fake_open(&f);
	domctl_fake_raw(&f, buf, sizeof(buf), efd, 1);
	CU_ASSERT_EQUAL(ctl_call(&f.conn, LAMINA_CTL_HELLO, NULL, 0, &rep, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(rep.nfds, 1);
	CU_ASSERT(write(rep.fds[0], &(uint64_t){1}, 8) == 8); /* it is the eventfd */
	close(rep.fds[0]);
	domctl_fake_close(&f);
	CU_ASSERT_EQUAL(tu_count_fds(0), before);

	/* Too many descriptors: refused, all closed. */
	domctl_fake_open(&f);
	domctl_fake_raw(&f, buf, sizeof(buf), efd, CTL_MAX_FDS + 1);
	CU_ASSERT_EQUAL(ctl_call(&f.conn, LAMINA_CTL_HELLO, NULL, 0, &rep, NULL), -EPROTO);
	domctl_fake_close(&f);
	CU_ASSERT_EQUAL(tu_count_fds(0), before);

	/* Descriptors on a reply that fails its checks are closed too. */
	domctl_fake_open(&f);
	h.seq = 9;
	memcpy(buf, &h, sizeof(h));
	domctl_fake_raw(&f, buf, sizeof(buf), efd, 2);
	CU_ASSERT_EQUAL(ctl_call(&f.conn, LAMINA_CTL_HELLO, NULL, 0, &rep, NULL), -EPROTO);
	domctl_fake_close(&f);
	CU_ASSERT_EQUAL(tu_count_fds(0), before);

	/* A caller that wants no descriptors gets none, and none leak. */
	domctl_fake_open(&f);
	h.seq = 1;
	memcpy(buf, &h, sizeof(h));
	domctl_fake_raw(&f, buf, sizeof(buf), efd, 1);
	CU_ASSERT_EQUAL(ctl_call(&f.conn, LAMINA_CTL_HELLO, NULL, 0, NULL, NULL), 0);
	domctl_fake_close(&f);
	CU_ASSERT_EQUAL(tu_count_fds(0), before);
	for (int i = 0; i < CTL_MAX_FDS + 1; i++)
		close(efd[i]);
}

static void test_list_paging(void)
{
	struct lamina_ctl_dominfo *v = NULL;
	struct lamina_ctl_list_req req;
	struct lamina_ctl_hdr h;
	char buf[256];
	size_t n = 0;
	struct domctl_fake f;

	domctl_fake_open(&f);
	domctl_fake_list_page(&f, 1, 2, 2, 5, 1);
	domctl_fake_list_page(&f, 2, 1, 1, 0, 5);
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
	domctl_fake_close(&f);

	/* count disagrees with the records carried */
	domctl_fake_open(&f);
	domctl_fake_list_page(&f, 1, 2, 3, 0, 1);
	CU_ASSERT_EQUAL(ctl_list(&f.conn, &v, &n), -EPROTO);
	domctl_fake_close(&f);
	/* next_domid that does not advance would loop for ever */
	domctl_fake_open(&f);
	domctl_fake_list_page(&f, 1, 1, 1, 3, 1);
	domctl_fake_list_page(&f, 2, 1, 1, 3, 3);
	CU_ASSERT_EQUAL(ctl_list(&f.conn, &v, &n), -EPROTO);
	domctl_fake_close(&f);
	/* a partial record */
	domctl_fake_open(&f);
	{
		struct lamina_ctl_list_reply head = {.count = 1};
		char payload[sizeof(head) + 10] = {0};

		memcpy(payload, &head, sizeof(head));
		fake_reply(&f, LAMINA_CTL_LIST, 1, 0, payload, sizeof(payload));
	}
	CU_ASSERT_EQUAL(ctl_list(&f.conn, &v, &n), -EPROTO);
	domctl_fake_close(&f);
	/* an empty host */
	domctl_fake_open(&f);
	domctl_fake_list_page(&f, 1, 0, 0, 0, 0);
	CU_ASSERT_EQUAL(ctl_list(&f.conn, &v, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	free(v);
	domctl_fake_close(&f);
}

/* Seeded garbage replies: the client must fail cleanly (or accept a well-formed reply). */
static void test_garbage(void)
{
	struct lamina_ctl_dominfo info;
	struct lamina_ctl_domref ref = {.domid = 1};
	char buf[sizeof(struct lamina_ctl_hdr) + sizeof(info) + 16];
	unsigned seed = 12345;
	int before = tu_count_fds(0);

	for (int iter = 0; iter < 3000; iter++) {
		struct lamina_ctl_hdr h = {.magic = LAMINA_CTL_MAGIC,
					   .version = LAMINA_CTL_VERSION,
					   .op = LAMINA_CTL_INFO,
					   .seq = 1,
					   .len = sizeof(info),
					   .flags = LAMINA_CTL_F_REPLY};
		size_t len = sizeof(h) + sizeof(info);
		struct domctl_fake f;
		int r;

		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (char)rand_r(&seed);
		if (rand_r(&seed) % 4) /* mostly plausible headers with one field off */
			memcpy(buf, &h, sizeof(h));
		buf[rand_r(&seed) % sizeof(h)] ^= (char)(1u << (rand_r(&seed) % 8));
		if (rand_r(&seed) % 3 == 0)
			len = (size_t)rand_r(&seed) % sizeof(buf);
		domctl_fake_open(&f);
		f.conn.timeout_ms = 100;
		domctl_fake_raw(&f, buf, len, NULL, 0);
		r = ctl_info(&f.conn, &ref, &info);
		CU_ASSERT(r == 0 || (r < 0 && f.conn.err[0]));
		if (r == 0)
			CU_ASSERT_EQUAL(info.name[sizeof(info.name) - 1], '\0');
		domctl_fake_close(&f);
	}
	CU_ASSERT_EQUAL(tu_count_fds(0), before);
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
	static const struct tu_test tests[] = {
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

	return tu_run_suite("ctl_client", NULL, NULL, tests, TU_COUNT(tests));
}
