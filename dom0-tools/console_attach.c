/* `domctl console NAME`: an interactive attach through lamina-consoled's consoled.sock. The
 * terminal is raw while attached and restored on every way out; Ctrl-] (0x1d) detaches. With
 * stdin not a terminal (a pipe), input is sent as it comes and, once it ends, output is still
 * copied until the console stays quiet for the linger time or the domain goes away. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "domctl.h"

#define CONSOLE_SOCKET "consoled.sock"
#define CONSOLE_ESCAPE 0x1d /* Ctrl-] */
#define CONSOLE_FLUSH_MS 2000
#define CONSOLE_ATTACH_TRIES 20
#define CONSOLE_ATTACH_RETRY_US 50000

struct console_session {
	int sock;
	int tty; /* stdin is a terminal, put in raw mode */
	struct termios saved;
	int linger_ms;
	int stdin_open;
	int sigfd; /* TERM, HUP, INT, QUIT end the session with the terminal restored */
};

/* Connect to consoled.sock: 0, -ENOENT/-ECONNREFUSED when consoled is not running, or -errno. */
static int console_connect(const char *rundir, int *fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s, n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", rundir, CONSOLE_SOCKET), err;

	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(s);
		return err;
	}
	*fd = s;
	return 0;
}

/* Send the request and read the one-line answer (byte by byte: what follows is console data). */
static int console_handshake(int s, const char *name, int ro, char *reply, size_t len)
{
	char req[128];
	size_t got = 0;
	int n = snprintf(req, sizeof(req), "ATTACH %s %s\n", name, ro ? "ro" : "rw");

	if (n < 0 || (size_t)n >= sizeof(req) || send(s, req, (size_t)n, MSG_NOSIGNAL) != n)
		return -EIO;
	while (got + 1 < len) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		ssize_t r;

		if (poll(&p, 1, 5000) <= 0)
			return -ETIMEDOUT;
		r = recv(s, reply + got, 1, 0);
		if (r <= 0)
			return -ECONNRESET;
		if (reply[got] == '\n')
			break;
		got++;
	}
	reply[got] = '\0';
	return strncmp(reply, "OK ", 3) ? -EPERM : 0;
}

static int console_write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int console_send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Input: forward up to the escape byte. Returns 1 to detach, 0 to go on, -errno. */
static int console_input(struct console_session *cs)
{
	char buf[4096], *esc;
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0) {
		cs->stdin_open = 0; /* end of input: keep reading output until it goes quiet */
		return 0;
	}
	esc = memchr(buf, CONSOLE_ESCAPE, (size_t)n);
	if (console_send_all(cs->sock, buf, esc ? (size_t)(esc - buf) : (size_t)n))
		return -EIO;
	return esc ? 1 : 0;
}

/* Returns 0 when the session ended normally (detach, domain gone, quiet after input ended). */
static int console_loop(struct console_session *cs)
{
	char buf[16384];

	for (;;) {
		struct pollfd p[3] = {{.fd = cs->sock, .events = POLLIN},
				      {.fd = cs->stdin_open ? STDIN_FILENO : -1, .events = POLLIN},
				      {.fd = cs->sigfd, .events = POLLIN}};
		int r = poll(p, 3, cs->stdin_open ? -1 : cs->linger_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return 0; /* input is over and the console went quiet */
		if (p[2].revents & POLLIN)
			return 0;
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(cs->sock, buf, sizeof(buf), 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return 0; /* consoled closed: the domain is gone or its console broke */
			if (console_write_all(STDOUT_FILENO, buf, (size_t)n))
				return -EIO;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			r = console_input(cs);
			if (r)
				return r < 0 ? r : 0;
		}
	}
}

static void console_raw(struct console_session *cs)
{
	struct termios raw;

	cs->tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &cs->saved) == 0;
	if (!cs->tty)
		return;
	raw = cs->saved;
	cfmakeraw(&raw);
	/* Guests end lines with \n alone: keep the terminal turning it into \r\n. */
	raw.c_oflag |= OPOST | ONLCR;
	tcsetattr(STDIN_FILENO, TCSANOW, &raw);
}

static void console_restore(struct console_session *cs)
{
	if (cs->tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &cs->saved);
	cs->tty = 0;
}

int domctl_console_flush(const struct domctl_ctx *ctx, const char *name)
{
	char req[128], reply[128];
	size_t got = 0;
	int s, r, n = snprintf(req, sizeof(req), "FLUSH %s\n", name);

	if (n < 0 || (size_t)n >= sizeof(req))
		return -ENAMETOOLONG;
	r = console_connect(ctx->rundir, &s);
	if (r)
		return r;
	if (send(s, req, (size_t)n, MSG_NOSIGNAL) != n) {
		close(s);
		return -EIO;
	}
	/* The answer comes once the ring is drained; any answer (or a close) will do. */
	while (got + 1 < sizeof(reply)) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		ssize_t k;

		if (poll(&p, 1, CONSOLE_FLUSH_MS) <= 0)
			break;
		k = recv(s, reply + got, sizeof(reply) - 1 - got, 0);
		if (k <= 0)
			break;
		got += (size_t)k;
		if (memchr(reply, '\n', got))
			break;
	}
	close(s);
	return got >= 3 && !strncmp(reply, "OK ", 3) ? 0 : -EIO;
}

int domctl_console_attach(const struct domctl_ctx *ctx, const char *name, int ro, int linger_ms)
{
	struct console_session cs = {.sock = -1, .linger_ms = linger_ms, .stdin_open = 1, .sigfd = -1};
	sigset_t set, old;
	char reply[256];
	int r;

	/* A domain created a moment ago may not have reached consoled yet: ask again for a while. */
	for (int tries = 0;; tries++) {
		r = console_connect(ctx->rundir, &cs.sock);
		if (r)
			return r; /* the caller decides what to do without consoled */
		r = console_handshake(cs.sock, name, ro, reply, sizeof(reply));
		if (r != -EPERM || strncmp(reply, "ERR no such domain", 18))
			break;
		close(cs.sock);
		if (tries >= CONSOLE_ATTACH_TRIES)
			return -ENXIO; /* consoled does not know it: the caller follows the log */
		usleep(CONSOLE_ATTACH_RETRY_US);
	}
	if (r) {
		domctl_err("%s: %s", name,
			   r == -EPERM ? (strncmp(reply, "ERR ", 4) ? reply : reply + 4)
				       : "lamina-consoled did not answer the attach request");
		close(cs.sock);
		return -EPERM;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, &old);
	cs.sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	console_raw(&cs);
	if (cs.tty)
		fprintf(stderr, "Connected to %s (%s). Escape character is '^]'.\r\n", name,
			strstr(reply, " ro") ? "read-only: another client writes" : "read-write");
	r = console_loop(&cs);
	console_restore(&cs);
	if (cs.sigfd >= 0)
		close(cs.sigfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (cs.tty)
		fprintf(stderr, "\nDetached from %s.\n", name);
	close(cs.sock);
	if (r < 0) {
		domctl_err("%s: console session failed: %s", name, strerror(-r));
		return -EIO;
	}
	return 0;
}
