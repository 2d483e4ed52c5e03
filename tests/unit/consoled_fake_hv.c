/* The fake lamina-hv behind tests/unit/consoled_fake.c (consoled_fake.h says what it serves). */
#include <errno.h>
#include <fcntl.h>
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
#include <time.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include <xen/xen.h>
#include <xen/io/console.h>

#include <lamina/control.h>
#include "consoled_fake.h"

struct fake_hv hv;

static void hv_send(uint16_t op, uint32_t seq, int32_t status, uint32_t flags, const void *p, size_t len,
		    const int *fds, unsigned nfds)
{
	char buf[sizeof(struct lamina_ctl_hdr) + 256];
	union {
		char b[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} ctrl;
	struct lamina_ctl_hdr h = {.magic = LAMINA_CTL_MAGIC,
				   .version = LAMINA_CTL_VERSION,
				   .op = op,
				   .seq = seq,
				   .status = status,
				   .len = (uint32_t)len,
				   .flags = flags};
	struct iovec iov = {buf, sizeof(h) + len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), p, len);
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
	sendmsg(hv.conn, &msg, MSG_NOSIGNAL);
}

void hv_event(uint32_t kind, struct fake_dom *d)
{
	struct lamina_ctl_event ev = {.kind = kind, .domid = d->domid};

	memcpy(ev.name, d->name, sizeof(ev.name));
	hv_send(LAMINA_CTL_EVENT, 0, 0, 0, &ev, sizeof(ev), NULL, 0);
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

static void hv_request(const char *buf, size_t n)
{
	struct lamina_ctl_hdr h;
	const char *p = buf + sizeof(h);

	memcpy(&h, buf, sizeof(h));
	switch (h.op) {
	case LAMINA_CTL_HELLO: {
		struct lamina_ctl_hello r = {.version = LAMINA_CTL_VERSION, .xen_major = 4, .xen_minor = 17};

		hv_send(h.op, h.seq, 0, LAMINA_CTL_F_REPLY, &r, sizeof(r), NULL, 0);
		break;
	}
	case LAMINA_CTL_SUBSCRIBE:
		hv_send(h.op, h.seq, 0, LAMINA_CTL_F_REPLY, NULL, 0, NULL, 0);
		for (int i = 0; i < hv.ndom; i++)
			hv_event(LAMINA_EV_CREATED, &hv.dom[i]);
		break;
	case LAMINA_CTL_MAP_SPECIAL: {
		struct lamina_ctl_map_special req;
		struct lamina_ctl_mapping m = {.gfn = 0x1000, .size = 4096};
		struct fake_dom *d;

		memcpy(&req, p, sizeof(req));
		d = hv_dom(req.domid);
		if (!d || req.which != LAMINA_SPECIAL_CONSOLE) {
			hv_send(h.op, h.seq, -ESRCH, LAMINA_CTL_F_REPLY, NULL, 0, NULL, 0);
			break;
		}
		m.port = 2;
		d->maps++;
		hv_send(h.op, h.seq, 0, LAMINA_CTL_F_REPLY, &m, sizeof(m), &d->memfd, 1);
		break;
	}
	case LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN: {
		struct lamina_ctl_evtchn_bind req;
		struct lamina_ctl_evtchn_port port;
		struct fake_dom *d;
		int fds[2];

		memcpy(&req, p, sizeof(req));
		d = hv_dom(req.remote_dom);
		if (!d || req.remote_port != 2) {
			hv_send(h.op, h.seq, -EINVAL, LAMINA_CTL_F_REPLY, NULL, 0, NULL, 0);
			break;
		}
		if (d->notify_fd >= 0)
			close(d->notify_fd);
		if (d->event_fd >= 0)
			close(d->event_fd);
		d->notify_fd = fds[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		d->event_fd = fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		d->binds++;
		port.port = 100 + d->domid;
		hv_send(h.op, h.seq, 0, LAMINA_CTL_F_REPLY, &port, sizeof(port), fds, 2);
		break;
	}
	case LAMINA_CTL_EVTCHN_CLOSE: {
		struct lamina_ctl_evtchn_port port;
		struct fake_dom *d;

		memcpy(&port, p, sizeof(port));
		d = port.port >= 100 ? hv_dom(port.port - 100) : NULL;
		if (d)
			d->closes++;
		hv_send(h.op, h.seq, d ? 0 : -EINVAL, LAMINA_CTL_F_REPLY, NULL, 0, NULL, 0);
		break;
	}
	default:
		hv_send(h.op, h.seq, -EOPNOTSUPP, LAMINA_CTL_F_REPLY, NULL, 0, NULL, 0);
	}
	(void)n;
}

/* Serve consoled's requests for ms milliseconds (accepting its connection first if needed). */
void hv_serve(int ms)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = {.fd = hv.conn >= 0 ? hv.conn : hv.lfd, .events = POLLIN};
		long left;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ms - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return;
		if (hv.conn < 0) {
			hv.conn = accept4(hv.lfd, NULL, NULL, SOCK_CLOEXEC);
			continue;
		}
		{
			char buf[sizeof(struct lamina_ctl_hdr) + 2048];
			ssize_t n = recv(hv.conn, buf, sizeof(buf), 0);

			if (n <= 0) {
				close(hv.conn);
				hv.conn = -1;
				continue;
			}
			if ((size_t)n >= sizeof(struct lamina_ctl_hdr))
				hv_request(buf, (size_t)n);
		}
	}
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
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", hv.rundir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, cap - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
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

int count_fds(pid_t pid)
{
	char path[64], cmd[128];
	FILE *f;
	int n = -1;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	snprintf(cmd, sizeof(cmd), "ls %s | wc -l", path);
	f = popen(cmd, "r");
	if (f && fscanf(f, "%d", &n) != 1)
		n = -1;
	if (f)
		pclose(f);
	return n;
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
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *build = getenv("LAMINA_BUILDDIR");
	char bin[512], dir[256], log[256], size[16];
	struct fake_dom *web;

	snprintf(hv.rundir, sizeof(hv.rundir), "/tmp/lamina-consoled-test.XXXXXX");
	if (!build || !mkdtemp(hv.rundir))
		return -1;
	snprintf(dir, sizeof(dir), "%s/console", hv.rundir);
	mkdir(dir, 0700);
	hv.conn = -1;
	hv.lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/hv.sock", hv.rundir);
	if (bind(hv.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(hv.lfd, 4) < 0)
		return -1;
	web = dom_add(1, "web");
	dom_add(2, "bad");
	/* output the guest wrote before any back-end was there */
	memcpy(web->ring->out, "early bird\n", 11);
	web->ring->out_prod = 11;
	snprintf(bin, sizeof(bin), "%s/pv-drivers/lamina-consoled", build);
	snprintf(log, sizeof(log), "%s/consoled.log", hv.rundir);
	snprintf(size, sizeof(size), "%d", LOG_CAP);
	hv.consoled = fork();
	if (hv.consoled == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		dup2(fd, 2);
		execl(bin, "lamina-consoled", "--rundir", hv.rundir, "--log-size", size, (char *)NULL);
		_exit(127);
	}
	hv_serve(500);
	return hv.consoled > 0 ? 0 : -1;
}

int fake_suite_cleanup(void)
{
	char cmd[300];
	int status = -1;

	if (hv.consoled > 0) {
		kill(hv.consoled, SIGTERM);
		hv_serve(200);
		waitpid(hv.consoled, &status, 0);
	}
	if (getenv("LAMINA_KEEP_RUNDIR") == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", hv.rundir);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}
