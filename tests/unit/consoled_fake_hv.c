/* The fake lamina-hv behind tests/unit/consoled_fake.c (consoled_fake.h says what it serves). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include <xen/xen.h>
#include <xen/io/console.h>

#include <lamina/control.h>
#include "consoled_fake.h"
#include "test_util.h"

struct fake_hv hv;

void hv_event(uint32_t kind, struct fake_dom *d)
{
	ctl_fake_event(hv.srv.conn, kind, d->domid, d->name);
}

static struct fake_dom *hv_dom(uint32_t domid)
{
	for (int i = 0; i < hv.ndom; i++)
		if (hv.dom[i].domid == domid)
			return &hv.dom[i];
	return NULL;
}

/* A fresh console page (a restart gets a new one). */
void dom_new_page(struct fake_dom *d)
{
	if (d->ring)
		munmap(d->ring, 4096);
	if (d->memfd >= 0)
		close(d->memfd);
	d->memfd = memfd_create("console", MFD_CLOEXEC);
	if (ftruncate(d->memfd, 4096) < 0)
		abort();
	d->ring = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, d->memfd, 0);
}

static void hv_hello(struct ctl_fake *f, const struct ctl_fake_req *rq)
{
	struct lamina_ctl_hello r = {.version = LAMINA_CTL_VERSION, .xen_major = 4, .xen_minor = 17};

	ctl_fake_answer(f, rq, 0, &r, sizeof(r), NULL, 0);
}

static void hv_subscribe(struct ctl_fake *f, const struct ctl_fake_req *rq)
{
	ctl_fake_answer(f, rq, 0, NULL, 0, NULL, 0);
	for (int i = 0; i < hv.ndom; i++)
		hv_event(LAMINA_EV_CREATED, &hv.dom[i]);
}

/* Only console pages exist here; the event channel the guest uses for it is always port 2. */
static void hv_map_special(struct ctl_fake *f, const struct ctl_fake_req *rq)
{
	struct lamina_ctl_map_special req;
	struct lamina_ctl_mapping m = {.gfn = 0x1000, .size = 4096};
	struct fake_dom *d;

	memcpy(&req, rq->payload, sizeof(req));
	d = hv_dom(req.domid);
	if (!d || req.which != LAMINA_SPECIAL_CONSOLE) {
		ctl_fake_answer(f, rq, -ESRCH, NULL, 0, NULL, 0);
		return;
	}
	m.port = 2;
	d->maps++;
	ctl_fake_answer(f, rq, 0, &m, sizeof(m), &d->memfd, 1);
}

/* Domain-0's port for domain N is 100 + N; binding again replaces the eventfd pair. */
static void hv_bind(struct ctl_fake *f, const struct ctl_fake_req *rq)
{
	struct lamina_ctl_evtchn_bind req;
	struct lamina_ctl_evtchn_port port;
	struct fake_dom *d;
	int fds[2];

	memcpy(&req, rq->payload, sizeof(req));
	d = hv_dom(req.remote_dom);
	if (!d || req.remote_port != 2) {
		ctl_fake_answer(f, rq, -EINVAL, NULL, 0, NULL, 0);
		return;
	}
	if (d->notify_fd >= 0)
		close(d->notify_fd);
	if (d->event_fd >= 0)
		close(d->event_fd);
	d->notify_fd = fds[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->event_fd = fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->binds++;
	port.port = 100 + d->domid;
	ctl_fake_answer(f, rq, 0, &port, sizeof(port), fds, 2);
}

static void hv_close_port(struct ctl_fake *f, const struct ctl_fake_req *rq)
{
	struct lamina_ctl_evtchn_port port;
	struct fake_dom *d;

	memcpy(&port, rq->payload, sizeof(port));
	d = port.port >= 100 ? hv_dom(port.port - 100) : NULL;
	if (d)
		d->closes++;
	ctl_fake_answer(f, rq, d ? 0 : -EINVAL, NULL, 0, NULL, 0);
}

static const struct ctl_fake_op hv_ops[] = {
    {LAMINA_CTL_HELLO, hv_hello},
    {LAMINA_CTL_SUBSCRIBE, hv_subscribe},
    {LAMINA_CTL_MAP_SPECIAL, hv_map_special},
    {LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN, hv_bind},
    {LAMINA_CTL_EVTCHN_CLOSE, hv_close_port},
};

/* Serve consoled's requests for ms milliseconds (accepting its connection first if needed). */
void hv_serve(int ms)
{
	ctl_fake_serve_for(&hv.srv, ms);
}

/* The guest side: put bytes in the out ring and signal. */
void guest_write(struct fake_dom *d, const char *s, size_t len)
{
	uint32_t prod = d->ring->out_prod;
	uint64_t one = 1;

	for (size_t i = 0; i < len; i++)
		d->ring->out[MASK_XENCONS_IDX(prod + i, d->ring->out)] = s[i];
	__atomic_store_n(&d->ring->out_prod, prod + (uint32_t)len, __ATOMIC_RELEASE);
	if (write(d->event_fd, &one, sizeof(one)) < 0)
		abort();
}

size_t read_file(const char *name, char *buf, size_t cap)
{
	char path[256];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", hv.rundir, name);
	n = tu_read_file(path, buf, cap);
	return n > 0 ? (size_t)n : 0;
}

/* Serve until the file contains text (or 5 s pass). */
int wait_file(const char *name, const char *text)
{
	static char buf[1 << 16];

	for (int i = 0; i < 250; i++) {
		read_file(name, buf, sizeof(buf));
		if (memmem(buf, strlen(buf), text, strlen(text)))
			return 1;
		hv_serve(20);
	}
	return 0;
}

int attach(const char *name, const char *mode, char *reply, size_t len)
{
	char req[128];

	snprintf(req, sizeof(req), "ATTACH %s %s", name, mode);
	return attach_verb(req, reply, len);
}

int attach_verb(const char *line, char *reply, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char req[128];
	size_t got = 0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/consoled.sock", hv.rundir);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return close(s), -1;
	snprintf(req, sizeof(req), "%s\n", line);
	if (send(s, req, strlen(req), 0) < 0)
		return close(s), -1;
	for (int i = 0; i < 100 && got + 1 < len; i++) {
		struct pollfd p = {.fd = s, .events = POLLIN};

		hv_serve(5);
		if (poll(&p, 1, 20) <= 0)
			continue;
		if (recv(s, reply + got, 1, 0) != 1 || reply[got] == '\n')
			break;
		got++;
	}
	reply[got] = '\0';
	return s;
}

/* Read from a client socket until text shows up (serving meanwhile). */
int client_expect(int s, const char *text)
{
	char buf[8192];
	size_t got = 0;

	for (int i = 0; i < 250 && got < sizeof(buf) - 1; i++) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		ssize_t n;

		hv_serve(5);
		if (poll(&p, 1, 15) <= 0)
			continue;
		n = recv(s, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
		if (n <= 0)
			return 0;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, text))
			return 1;
	}
	return 0;
}

struct fake_dom *dom_add(uint32_t domid, const char *name)
{
	struct fake_dom *d = &hv.dom[hv.ndom++];

	memset(d, 0, sizeof(*d));
	d->domid = domid;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->memfd = d->notify_fd = d->event_fd = -1;
	dom_new_page(d);
	return d;
}

uint64_t notified(struct fake_dom *d)
{
	uint64_t v = 0;

	if (read(d->notify_fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

int fake_suite_init(void)
{
	const char *build = getenv("LAMINA_BUILDDIR");
	char bin[512], dir[256], log[256], sock[256], size[16];
	const char *argv[] = {"lamina-consoled", "--rundir", hv.rundir, "--log-size", size, NULL};
	struct fake_dom *web;

	hv.srv = (struct ctl_fake){.lfd = -1,
				   .conn = -1,
				   .ops = hv_ops,
				   .nops = sizeof(hv_ops) / sizeof(hv_ops[0]),
				   .unknown_status = -EOPNOTSUPP};
	if (!build || tu_mkdtemp(hv.rundir, sizeof(hv.rundir), "lamina-consoled-test") < 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s/console", hv.rundir);
	mkdir(dir, 0700);
	snprintf(sock, sizeof(sock), "%s/hv.sock", hv.rundir);
	if (ctl_fake_listen(&hv.srv, sock) < 0)
		return -1;
	web = dom_add(1, "web");
	dom_add(2, "bad");
	/* output the guest wrote before any back-end was there */
	memcpy(web->ring->out, "early bird\n", 11);
	web->ring->out_prod = 11;
	snprintf(bin, sizeof(bin), "%s/pv-drivers/lamina-consoled", build);
	snprintf(log, sizeof(log), "%s/consoled.log", hv.rundir);
	snprintf(size, sizeof(size), "%d", LOG_CAP);
	hv.consoled = tu_spawn(bin, argv, log);
	hv_serve(500);
	return hv.consoled > 0 ? 0 : -1;
}

int fake_suite_cleanup(void)
{
	int status = -1;

	if (hv.consoled > 0) {
		kill(hv.consoled, SIGTERM);
		hv_serve(200);
		waitpid(hv.consoled, &status, 0);
	}
	ctl_fake_close(&hv.srv, NULL);
	if (getenv("LAMINA_KEEP_RUNDIR") == NULL && tu_rmtree(hv.rundir) < 0)
		return -1;
	return 0;
}
