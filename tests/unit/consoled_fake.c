/* lamina-consoled against a fake lamina-hv: this program serves hv.sock (HELLO, SUBSCRIBE with
 * notifications, MAP_SPECIAL with a memfd console page, BIND_INTERDOMAIN with an eventfd pair,
 * EVTCHN_CLOSE) and plays the guests, writing their xencons rings. It checks output reaching the
 * log and attached clients across the ring's wrap, input reaching the in ring, log rotation, a
 * hostile ring disconnected while another domain is still served, restart, destroy and SIGTERM. */
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <CUnit/Basic.h>

#include "consoled_fake.h"
#include "test_util.h"

static void test_connect(void)
{
	CU_ASSERT_FATAL(wait_file("console/web.log", "early bird\n"));
	CU_ASSERT_EQUAL(hv.dom[0].maps, 1);
	CU_ASSERT_EQUAL(hv.dom[0].binds, 1);
	CU_ASSERT_EQUAL(hv.dom[1].binds, 1);
	CU_ASSERT_EQUAL(hv.dom[0].ring->out_cons, 11);
}

static void test_output_wrap(void)
{
	struct fake_dom *d = &hv.dom[0];
	char line[128];

	/* 40 lines of 100 bytes: the ring (2048) wraps twice */
	for (int i = 0; i < 40; i++) {
		snprintf(line, sizeof(line), "line %02d %-91s\n", i,
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		for (int w = 0; w < 200 && d->ring->out_prod - d->ring->out_cons + 100 > sizeof(d->ring->out);
		     w++)
			hv_serve(5);
		guest_write(d, line, 100);
	}
	CU_ASSERT(wait_file("console/web.log", "line 39"));
	CU_ASSERT(wait_file("console/web.log", "line 20"));
	CU_ASSERT_EQUAL(d->ring->out_cons, d->ring->out_prod);
	CU_ASSERT(notified(d) > 0); /* space given back is signalled */
}

static void test_attach(void)
{
	struct fake_dom *d = &hv.dom[0];
	char r1[128], r2[128], r3[128], r4[128];
	int s1 = attach("web", "rw", r1, sizeof(r1));
	int s2 = attach("1", "rw", r2, sizeof(r2));
	int s3 = attach("nosuch", "rw", r3, sizeof(r3));
	int s4 = attach("web", "rx", r4, sizeof(r4));

	CU_ASSERT_STRING_EQUAL(r1, "OK web 1 rw");
	CU_ASSERT_STRING_EQUAL(r2, "OK web 1 ro"); /* one writer */
	CU_ASSERT_EQUAL(strncmp(r3, "ERR", 3), 0);
	CU_ASSERT_EQUAL(strncmp(r4, "ERR", 3), 0);
	guest_write(d, "to clients\n", 11);
	CU_ASSERT(client_expect(s1, "to clients"));
	CU_ASSERT(client_expect(s2, "to clients"));
	notified(d);
	CU_ASSERT_EQUAL(send(s1, "typed\n", 6, 0), 6);
	CU_ASSERT_EQUAL(send(s2, "ignored", 7, 0), 7); /* a reader's input goes nowhere */
	for (int i = 0; i < 100 && d->ring->in_prod != 6; i++)
		hv_serve(10);
	hv_serve(100);
	CU_ASSERT_EQUAL(d->ring->in_prod, 6);
	CU_ASSERT_EQUAL(memcmp(d->ring->in, "typed\n", 6), 0);
	CU_ASSERT(notified(d) > 0);
	/* the guest consumes; more input wraps the 1024-byte in ring */
	for (int round = 0; round < 3; round++) {
		char big[700];
		uint32_t want;

		d->ring->in_cons = d->ring->in_prod;
		memset(big, 'a' + round, sizeof(big));
		want = d->ring->in_prod + sizeof(big);
		CU_ASSERT_EQUAL(send(s1, big, sizeof(big), 0), (ssize_t)sizeof(big));
		for (int i = 0; i < 100 && d->ring->in_prod != want; i++)
			hv_serve(10);
		CU_ASSERT_EQUAL(d->ring->in_prod, want);
		CU_ASSERT_EQUAL(d->ring->in[MASK_XENCONS_IDX(want - 1, d->ring->in)], 'a' + round);
	}
	close(s1);
	close(s2);
	if (s3 >= 0)
		close(s3);
	if (s4 >= 0)
		close(s4);
}

/* FLUSH drains a ring whose guest has not signalled yet: after "OK" the log has the bytes. */
static void test_flush(void)
{
	struct fake_dom *d = &hv.dom[0];
	uint32_t prod = d->ring->out_prod;
	char reply[128], buf[1 << 16];
	const char *text = "unsignalled tail\n";
	int s;

	for (size_t i = 0; i < strlen(text); i++)
		d->ring->out[MASK_XENCONS_IDX(prod + i, d->ring->out)] = text[i];
	__atomic_store_n(&d->ring->out_prod, prod + (uint32_t)strlen(text), __ATOMIC_RELEASE);
	s = attach_verb("FLUSH web", reply, sizeof(reply));
	CU_ASSERT_STRING_EQUAL(reply, "OK web flushed");
	read_file("console/web.log", buf, sizeof(buf));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "unsignalled tail"));
	if (s >= 0)
		close(s);
	s = attach_verb("FLUSH nosuch", reply, sizeof(reply));
	CU_ASSERT_EQUAL(strncmp(reply, "ERR no such domain", 18), 0);
	if (s >= 0)
		close(s);
	s = attach_verb("DANCE web", reply, sizeof(reply));
	CU_ASSERT_STRING_EQUAL(reply, "ERR unknown request");
	if (s >= 0)
		close(s);
}

static void test_rotation(void)
{
	struct fake_dom *d = &hv.dom[0];
	char line[128], buf[LOG_CAP * 2];
	struct stat st;
	char path[256];

	for (int i = 0; i < 120; i++) {
		snprintf(line, sizeof(line), "rot %03d %-91s\n", i, "r");
		for (int w = 0; w < 200 && d->ring->out_prod - d->ring->out_cons + 100 > sizeof(d->ring->out);
		     w++)
			hv_serve(5);
		guest_write(d, line, 100);
	}
	CU_ASSERT(wait_file("console/web.log", "rot 119"));
	snprintf(path, sizeof(path), "%s/console/web.log", hv.rundir);
	CU_ASSERT(stat(path, &st) == 0 && st.st_size <= LOG_CAP);
	CU_ASSERT(read_file("console/web.log.1", buf, sizeof(buf)) > 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "rot "));
}

static void test_hostile(void)
{
	struct fake_dom *bad = &hv.dom[1], *web = &hv.dom[0];
	char r[128], logbuf[1 << 16], *p;
	int s = attach("bad", "rw", r, sizeof(r)), lines = 0;
	uint64_t one = 1;

	CU_ASSERT_STRING_EQUAL(r, "OK bad 2 rw");
	/* producer far beyond the ring */
	bad->ring->out_prod = bad->ring->out_cons + 100000;
	CU_ASSERT_EQUAL(write(bad->event_fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	CU_ASSERT_FATAL(wait_file("consoled.log", "bad (domain 2): console disconnected"));
	hv_serve(200);
	CU_ASSERT_EQUAL(bad->closes, 1);
	CU_ASSERT(client_expect(s, "console disconnected"));
	close(s);
	/* more scribbling and signals: no second reason logged, nothing else disturbed */
	bad->ring->out_prod = 0xfffffff0u;
	if (write(bad->event_fd, &one, sizeof(one)) < 0)
		CU_FAIL("eventfd write");
	hv_serve(1200); /* past one sweep */
	s = attach("bad", "rw", r, sizeof(r));
	CU_ASSERT_EQUAL(strncmp(r, "ERR", 3), 0);
	if (s >= 0)
		close(s);
	read_file("consoled.log", logbuf, sizeof(logbuf));
	for (p = logbuf; (p = strstr(p, "bad (domain 2): console disconnected")); p++)
		lines++;
	CU_ASSERT_EQUAL(lines, 1);
	guest_write(web, "still alive\n", 12);
	CU_ASSERT(wait_file("console/web.log", "still alive"));
}

static void test_restart(void)
{
	struct fake_dom *bad = &hv.dom[1];

	/* a restart brings a new page: the broken console is reconnected */
	dom_new_page(bad);
	hv_event(LAMINA_EV_RESTARTED, bad);
	hv_serve(300);
	CU_ASSERT_EQUAL(bad->maps, 2);
	CU_ASSERT_EQUAL(bad->binds, 2);
	guest_write(bad, "born again\n", 11);
	CU_ASSERT(wait_file("console/bad.log", "born again"));
}

static void test_create_destroy(void)
{
	struct fake_dom *late;
	int before = tu_count_fds(hv.consoled), s;
	char r[128];

	late = dom_add(3, "late");
	hv_event(LAMINA_EV_CREATED, late);
	hv_serve(300);
	CU_ASSERT_EQUAL(late->binds, 1);
	CU_ASSERT(tu_count_fds(hv.consoled) > before);
	s = attach("late", "rw", r, sizeof(r));
	CU_ASSERT_STRING_EQUAL(r, "OK late 3 rw");
	guest_write(late, "late hello\n", 11);
	CU_ASSERT(client_expect(s, "late hello"));
	hv_event(LAMINA_EV_DESTROYED, late);
	CU_ASSERT(client_expect(s, "domain destroyed"));
	hv_serve(300);
	CU_ASSERT_EQUAL(late->closes, 1);
	close(s);
	hv_serve(100);
	CU_ASSERT_EQUAL(tu_count_fds(hv.consoled), before);
}

/* domctl detached: it must leave on its own, well before its linger, and cleanly. */
static void domctl_reap(pid_t pid)
{
	int status = -1;

	for (int i = 0; i < 200 && waitpid(pid, &status, WNOHANG) == 0; i++)
		hv_serve(10);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (!WIFEXITED(status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
}

/* `domctl console web` with pipes: input reaches the in ring, output reaches its stdout, and
 * Ctrl-] (0x1d) detaches at once: nothing after it is sent. */
static void test_domctl_console(void)
{
	struct fake_dom *d = &hv.dom[0];
	const char *build = getenv("LAMINA_BUILDDIR");
	char bin[512], out[4096] = "";
	int in[2], o[2];
	size_t got = 0;
	uint32_t start;
	pid_t pid;

	d->ring->in_cons = d->ring->in_prod;
	start = d->ring->in_prod;
	snprintf(bin, sizeof(bin), "%s/dom0-tools/domctl", build);
	CU_ASSERT_FATAL(pipe(in) == 0 && pipe(o) == 0);
	pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(o[1], 1);
		close(in[1]);
		close(o[0]);
		execl(bin, "domctl", "--rundir", hv.rundir, "console", "web", "--linger", "30000",
		      (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(o[1]);
	CU_ASSERT_EQUAL(write(in[1], "hi there\n", 9), 9);
	for (int i = 0; i < 200 && d->ring->in_prod != start + 9; i++)
		hv_serve(10);
	CU_ASSERT_EQUAL(d->ring->in_prod, start + 9);
	CU_ASSERT_EQUAL(d->ring->in[MASK_XENCONS_IDX(start, d->ring->in)], 'h');
	guest_write(d, "reply to pipe\n", 14);
	for (int i = 0; i < 200 && !strstr(out, "reply to pipe"); i++) {
		struct pollfd p = {.fd = o[0], .events = POLLIN};
		ssize_t n;

		hv_serve(5);
		if (poll(&p, 1, 10) <= 0)
			continue;
		n = read(o[0], out + got, sizeof(out) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		out[got] = '\0';
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "reply to pipe"));
	/* the escape: domctl leaves long before its 30 s linger, "after" never reaches the guest */
	CU_ASSERT_EQUAL(write(in[1], "\035after\n", 7), 7);
	domctl_reap(pid);
	hv_serve(100);
	CU_ASSERT_EQUAL(d->ring->in_prod, start + 9);
	close(in[1]);
	close(o[0]);
}

/* The same on a terminal: raw mode while attached (bytes pass unchanged, \n still shown as
 * \r\n), Ctrl-] detaches, and the terminal's settings are back afterwards. */
static void test_domctl_console_tty(void)
{
	struct fake_dom *d = &hv.dom[0];
	const char *build = getenv("LAMINA_BUILDDIR");
	struct termios before, after;
	char bin[512], out[8192] = "";
	int master, slave;
	uint32_t start;
	size_t got = 0;
	pid_t pid;

	CU_ASSERT_FATAL(openpty(&master, &slave, NULL, NULL, NULL) == 0);
	tcgetattr(slave, &before);
	d->ring->in_cons = d->ring->in_prod;
	start = d->ring->in_prod;
	snprintf(bin, sizeof(bin), "%s/dom0-tools/domctl", build);
	pid = fork();
	if (pid == 0) {
		setsid();
		ioctl(slave, TIOCSCTTY, 0);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		close(master);
		execl(bin, "domctl", "--rundir", hv.rundir, "console", "web", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300 && !(strstr(out, "reply on tty\r\n") && d->ring->in_prod == start + 7); i++) {
		struct pollfd p = {.fd = master, .events = POLLIN};
		ssize_t n;

		hv_serve(5);
		if (i == 20) {
			CU_ASSERT_EQUAL(write(master, "tty in\r", 7), 7);
			guest_write(d, "reply on tty\n", 13);
		}
		if (poll(&p, 1, 10) <= 0)
			continue;
		n = read(master, out + got, sizeof(out) - 1 - got);
		if (n > 0) {
			got += (size_t)n;
			out[got] = '\0';
		}
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Escape character is '^]'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "reply on tty\r\n"));
	CU_ASSERT_EQUAL(d->ring->in_prod, start + 7); /* "tty in\r" unchanged: no line discipline */
	CU_ASSERT_EQUAL(
	    memcmp((const char *)d->ring->in + MASK_XENCONS_IDX(start, d->ring->in), "tty in\r", 7), 0);
	CU_ASSERT_EQUAL(write(master, "\035", 1), 1);
	domctl_reap(pid);
	tcgetattr(slave, &after);
	CU_ASSERT_EQUAL(after.c_lflag, before.c_lflag);
	CU_ASSERT_EQUAL(after.c_iflag, before.c_iflag);
	CU_ASSERT_EQUAL(after.c_oflag, before.c_oflag);
	close(master);
	close(slave);
}

static void test_sigterm(void)
{
	char path[256];
	int status = -1;

	kill(hv.consoled, SIGTERM);
	for (int i = 0; i < 100 && waitpid(hv.consoled, &status, WNOHANG) == 0; i++)
		hv_serve(20);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	hv.consoled = 0;
	snprintf(path, sizeof(path), "%s/consoled.sock", hv.rundir);
	CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
}

int main(void)
{
	static const struct tu_test tests[] = {
	    {"connects and drains output written before it came", test_connect},
	    {"output reaches the log across the ring's wrap", test_output_wrap},
	    {"attach: one writer, readers, input into the in ring", test_attach},
	    {"flush: the ring drained on request", test_flush},
	    {"log rotation at the cap", test_rotation},
	    {"hostile ring: disconnected once, others served", test_hostile},
	    {"restart maps the new page", test_restart},
	    {"create and destroy: clients closed, descriptors back", test_create_destroy},
	    {"domctl console: pipes both ways, Ctrl-] detaches", test_domctl_console},
	    {"domctl console: raw terminal, Ctrl-] detaches and restores it", test_domctl_console_tty},
	    {"SIGTERM exits cleanly", test_sigterm},
	};

	signal(SIGPIPE, SIG_IGN);
	return tu_run_suite("lamina-consoled against a fake lamina-hv", fake_suite_init, fake_suite_cleanup,
			    tests, TU_COUNT(tests));
}
