/* Create-request validation and the control server's request checking, driven through a
 * socketpair: bad magic, version, short, oversized and mislabelled datagrams, wrong payload
 * length per op and unknown ops all get error replies and the server keeps serving. */
#include <errno.h>
#include <ftw.h>
#include <sys/socket.h>

#include <CUnit/Basic.h>

#include "ctl_server.h"
#include "hv.h"
#include "hvcore_test.h"

static struct hv g_hv;
static struct ctl_server g_srv;
static int g_fd = -1; /* the client's end */
static char g_dir[64];
static uint8_t g_buf[CTL_MAX_MSG + 256];

static int setup(void)
{
	int sv[2];

	snprintf(g_dir, sizeof(g_dir), "/tmp/hvcore-ctl.XXXXXX");
	if (!mkdtemp(g_dir) || hv_init(&g_hv, g_dir, "/dev/null", NULL) < 0)
		return -1;
	if (ctl_server_init(&g_srv, &g_hv, -1, -1) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	g_fd = sv[1];
	return ctl_conn_add(&g_srv, sv[0], 0);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void)
{
	ctl_server_fini(&g_srv);
	hv_fini(&g_hv);
	close(g_fd);
	return nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct lamina_ctl_hdr hdr(uint16_t op, uint32_t len)
{
	static uint32_t seq = 100;
	struct lamina_ctl_hdr h = {LAMINA_CTL_MAGIC, LAMINA_CTL_VERSION, op, ++seq, 0, len, 0};
	return h;
}

/* Sends raw bytes, lets the server run one round, returns the reply status (payload in g_buf). */
static int xfer_raw(const void *msg, size_t len, struct lamina_ctl_hdr *rh, size_t *plen)
{
	ssize_t n;

	CU_ASSERT_FATAL(send(g_fd, msg, len, 0) == (ssize_t)len);
	CU_ASSERT_FATAL(ctl_server_poll(&g_srv, 1000) == 0);
	n = recv(g_fd, g_buf, sizeof(g_buf), MSG_DONTWAIT);
	CU_ASSERT_FATAL(n >= (ssize_t)sizeof(*rh));
	memcpy(rh, g_buf, sizeof(*rh));
	CU_ASSERT_EQUAL(rh->magic, LAMINA_CTL_MAGIC);
	CU_ASSERT_EQUAL(rh->flags, LAMINA_CTL_F_REPLY);
	CU_ASSERT_EQUAL(rh->len, (uint32_t)(n - sizeof(*rh)));
	if (plen)
		*plen = (size_t)n - sizeof(*rh);
	return rh->status;
}

static int call(uint16_t op, const void *p, size_t len, size_t *plen)
{
	struct lamina_ctl_hdr h = hdr(op, (uint32_t)len), rh;
	static uint8_t msg[CTL_MAX_MSG];
	int st;

	memcpy(msg, &h, sizeof(h));
	if (len)
		memcpy(msg + sizeof(h), p, len);
	st = xfer_raw(msg, sizeof(h) + len, &rh, plen);
	CU_ASSERT_EQUAL(rh.op, op);
	CU_ASSERT_EQUAL(rh.seq, h.seq);
	return st;
}

static void good_cfg(struct lamina_ctl_domcfg *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->name, "web-1.test_a");
	c->memory_kib = 4097;
	c->vcpus = 2;
	c->on_crash = LAMINA_ACT_COREDUMP_RESTART;
	strcpy(c->kernel, "/nonexistent/kernel");
	strcpy(c->cmdline, "app=hello");
}

static void test_config_validation(void)
{
	struct lamina_ctl_domcfg c, out;
	const char *why;

	good_cfg(&c);
	CU_ASSERT_EQUAL(hv_domcfg_validate(&c, &out, &why), 0);
	CU_ASSERT_EQUAL(out.memory_kib, 4100); /* whole pages */
	CU_ASSERT_EQUAL(out.max_memory_kib, 4100);
#define BAD(stmt, err)                                                                                       \
	do {                                                                                                 \
		good_cfg(&c);                                                                                \
		stmt;                                                                                        \
		CU_ASSERT_EQUAL(hv_domcfg_validate(&c, &out, &why), err);                                    \
		CU_ASSERT_PTR_NOT_NULL(why);                                                                 \
	} while (0)
	BAD(c.name[0] = 0, -EINVAL);
	BAD(strcpy(c.name, "a/b"), -EINVAL);
	BAD(strcpy(c.name, ".."), -EINVAL);
	BAD(strcpy(c.name, "-x"), -EINVAL);
	BAD(strcpy(c.name, "sp ace"), -EINVAL);
	BAD(memset(c.name, 'a', sizeof(c.name)), -EINVAL); /* no NUL */
	BAD(c.memory_kib = 1024, -EINVAL);
	BAD(c.memory_kib = HV_MAX_MEMORY_KIB + 4, -E2BIG);
	BAD(c.max_memory_kib = 2048, -EINVAL);
	BAD(c.max_memory_kib = UINT64_MAX, -E2BIG);
	BAD(c.vcpus = 0, -EINVAL);
	BAD(c.vcpus = LAMINA_MAX_VCPUS + 1, -EINVAL);
	BAD(c.on_poweroff = 6, -EINVAL);
	BAD(c.on_reboot = 0xff, -EINVAL);
	BAD(c.flags = 0x80, -EINVAL);
	BAD(c.pad0 = 1, -EINVAL);
	BAD(c.pad1 = 1, -EINVAL);
	BAD(strcpy(c.kernel, "relative/kernel"), -EINVAL);
	BAD(c.kernel[0] = 0, -EINVAL);
	BAD(memset(c.kernel, '/', sizeof(c.kernel)), -EINVAL);
	BAD(strcpy(c.ramdisk, "initrd"), -EINVAL);
	BAD(memset(c.cmdline, 'x', sizeof(c.cmdline)), -EINVAL);
#undef BAD
	/* 63 characters is the longest name */
	good_cfg(&c);
	memset(c.name, 'n', sizeof(c.name) - 1);
	c.name[sizeof(c.name) - 1] = 0;
	CU_ASSERT_EQUAL(hv_domcfg_validate(&c, &out, &why), 0);
}

static void test_bad_frames(void)
{
	struct lamina_ctl_hdr h, rh;
	static uint8_t big[CTL_MAX_MSG + 100];

	CU_ASSERT_EQUAL(xfer_raw("short", 5, &rh, NULL), -EBADMSG);
	h = hdr(LAMINA_CTL_HELLO, 0);
	h.magic = 0xdeadbeef;
	CU_ASSERT_EQUAL(xfer_raw(&h, sizeof(h), &rh, NULL), -EPROTO);
	h = hdr(LAMINA_CTL_HELLO, 0);
	h.version = 99;
	CU_ASSERT_EQUAL(xfer_raw(&h, sizeof(h), &rh, NULL), -EPROTONOSUPPORT);
	h = hdr(LAMINA_CTL_HELLO, 8); /* says 8 payload bytes, sends none */
	CU_ASSERT_EQUAL(xfer_raw(&h, sizeof(h), &rh, NULL), -EBADMSG);
	h = hdr(LAMINA_CTL_HELLO, 0);
	h.flags = LAMINA_CTL_F_REPLY;
	CU_ASSERT_EQUAL(xfer_raw(&h, sizeof(h), &rh, NULL), -EINVAL);
	h = hdr(LAMINA_CTL_HELLO, 0);
	h.status = -5;
	CU_ASSERT_EQUAL(xfer_raw(&h, sizeof(h), &rh, NULL), -EINVAL);
	h = hdr(LAMINA_CTL_CREATE, sizeof(big) - sizeof(h));
	memcpy(big, &h, sizeof(h));
	CU_ASSERT_EQUAL(xfer_raw(big, sizeof(big), &rh, NULL), -EMSGSIZE);
	CU_ASSERT_EQUAL(call(50, NULL, 0, NULL), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(call(0xffff, "abcd", 4, NULL), -EOPNOTSUPP);
}

static void test_wrong_lengths(void)
{
	static const uint16_t ops[] = {LAMINA_CTL_HELLO,     LAMINA_CTL_CREATE,	  LAMINA_CTL_DESTROY,
				       LAMINA_CTL_PAUSE,     LAMINA_CTL_UNPAUSE,  LAMINA_CTL_SHUTDOWN,
				       LAMINA_CTL_LIST,	     LAMINA_CTL_INFO,	  LAMINA_CTL_WAIT,
				       LAMINA_CTL_HOST_STOP, LAMINA_CTL_HOST_INFO};
	static uint8_t p[sizeof(struct lamina_ctl_domcfg) + 8];
	unsigned i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		const struct ctl_op_desc *od = ctl_op_find(ops[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(od);
		CU_ASSERT_EQUAL(call(ops[i], p, od->req_len + 1, NULL), -EINVAL);
		if (od->req_len)
			CU_ASSERT_EQUAL(call(ops[i], p, od->req_len - 1, NULL), -EINVAL);
	}
	CU_ASSERT_FALSE(g_srv.quit); /* a malformed HOST_STOP stopped nothing */
}

static void test_good_requests(void)
{
	struct lamina_ctl_hello hello;
	struct lamina_ctl_hostinfo hi;
	struct lamina_ctl_list_reply lr;
	struct lamina_ctl_list_req lq = {0, 10};
	struct lamina_ctl_domref ref;
	struct lamina_ctl_wait w;
	struct lamina_ctl_domcfg c;
	size_t n;

	CU_ASSERT_EQUAL(call(LAMINA_CTL_HELLO, NULL, 0, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, sizeof(hello));
	memcpy(&hello, g_buf + sizeof(struct lamina_ctl_hdr), sizeof(hello));
	CU_ASSERT_EQUAL(hello.version, LAMINA_CTL_VERSION);
	CU_ASSERT_EQUAL(hello.xen_major, 4);
	CU_ASSERT_STRING_EQUAL(hello.extraversion, LAMINA_EXTRAVERSION);
	CU_ASSERT_EQUAL(call(LAMINA_CTL_HOST_INFO, NULL, 0, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, sizeof(hi));
	memcpy(&hi, g_buf + sizeof(struct lamina_ctl_hdr), sizeof(hi));
	CU_ASSERT_EQUAL(hi.nr_domains, 0);
	CU_ASSERT_EQUAL(hi.pid, (uint32_t)getpid());
	CU_ASSERT_EQUAL(call(LAMINA_CTL_LIST, &lq, sizeof(lq), &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, sizeof(lr));
	memcpy(&lr, g_buf + sizeof(struct lamina_ctl_hdr), sizeof(lr));
	CU_ASSERT_EQUAL(lr.count, 0);
	CU_ASSERT_EQUAL(lr.next_domid, 0);
	memset(&ref, 0, sizeof(ref));
	ref.domid = 7;
	CU_ASSERT_EQUAL(call(LAMINA_CTL_INFO, &ref, sizeof(ref), NULL), -ESRCH);
	CU_ASSERT_EQUAL(call(LAMINA_CTL_DESTROY, &ref, sizeof(ref), NULL), -ESRCH);
	CU_ASSERT_EQUAL(call(LAMINA_CTL_PAUSE, &ref, sizeof(ref), NULL), -ESRCH);
	ref.domid = LAMINA_DOMID_BY_NAME;
	memset(ref.name, 'x', sizeof(ref.name)); /* no NUL: no such name */
	CU_ASSERT_EQUAL(call(LAMINA_CTL_INFO, &ref, sizeof(ref), NULL), -ESRCH);
	memset(&w, 0, sizeof(w));
	w.dom.domid = 3;
	w.timeout_ms = 10;
	CU_ASSERT_EQUAL(call(LAMINA_CTL_WAIT, &w, sizeof(w), NULL), -ESRCH);
	good_cfg(&c);
	c.vcpus = 0;
	CU_ASSERT_EQUAL(call(LAMINA_CTL_CREATE, &c, sizeof(c), &n), -EINVAL);
	CU_ASSERT_EQUAL(n, 0);
	good_cfg(&c);
	CU_ASSERT_EQUAL(call(LAMINA_CTL_CREATE, &c, sizeof(c), NULL), -ENODEV); /* no backend here */
	/* after all that the server still answers */
	CU_ASSERT_EQUAL(call(LAMINA_CTL_HELLO, NULL, 0, NULL), 0);
	CU_ASSERT_EQUAL(call(LAMINA_CTL_HOST_STOP, NULL, 0, NULL), 0);
	CU_ASSERT_TRUE(g_srv.quit);
}

int main(void)
{
	unsigned failed;
	CU_pSuite s;

	CU_initialize_registry();
	s = CU_add_suite("control", setup, teardown);
	CU_add_test(s, "create config validation", test_config_validation);
	CU_add_test(s, "malformed datagrams", test_bad_frames);
	CU_add_test(s, "wrong payload length per op", test_wrong_lengths);
	CU_add_test(s, "well-formed requests", test_good_requests);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
