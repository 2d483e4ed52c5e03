/* Tests of the lamina-xenstored process over its socket: malformed messages close or fail only
 * their own connection, many clients at once, libxsclient calls (watch, transactions, perms), the
 * `domctl store` front end, CONTROL, and persistence across a restart. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <CUnit/Basic.h>
#include <xen/io/xs_wire.h>

#include "test_util.h"
#include "xs_client.h"

struct xs_dfix {
	char dir[64];
	char sock[128];
	pid_t pid;
};

static struct xs_dfix df;

static int daemon_start(void)
{
	const char *bin = getenv("LAMINA_XENSTORED");
	char pidf[128], log[128], db[128];
	const char *argv[] = {bin,     "--rundir", df.dir,	"--pid-file", pidf,
			      "--log", log,	   "--persist", db,	      NULL};

	snprintf(pidf, sizeof(pidf), "%s/pid", df.dir);
	snprintf(log, sizeof(log), "%s/log", df.dir);
	snprintf(db, sizeof(db), "%s/db", df.dir);
	unlink(pidf);
	df.pid = tu_spawn(bin, argv, NULL);
	return tu_wait_path(pidf, 5000) == 0 ? 0 : -1;
}

static void daemon_stop(void)
{
	tu_stop(df.pid, NULL);
}

static int dsetup(void)
{
	if (!getenv("LAMINA_XENSTORED") || tu_mkdtemp(df.dir, sizeof(df.dir), "xs_daemon_test") < 0)
		return -1;
	snprintf(df.sock, sizeof(df.sock), "%s/xenstored/socket", df.dir);
	setenv("XENSTORED_PATH", df.sock, 1);
	return daemon_start();
}

static int dteardown(void)
{
	daemon_stop();
	return tu_rmtree(df.dir) == 0 ? 0 : -1;
}

static int raw_connect(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(a.sun_path, df.sock);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads one reply; returns its type or -1 on EOF. */
static int raw_reply(int fd, char *body, size_t bodysz)
{
	struct xsd_sockmsg h;
	size_t got = 0;

	while (got < sizeof(h)) {
		ssize_t n = read(fd, (char *)&h + got, sizeof(h) - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	if (h.len >= bodysz)
		return -1;
	for (got = 0; got < h.len;) {
		ssize_t n = read(fd, body + got, h.len - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	body[h.len] = '\0';
	return (int)h.type;
}

static void test_malformed(void)
{
	struct xs_client *a;
	struct xsd_sockmsg h;
	char body[256], *v;
	uint32_t len;
	int fd;

	CU_ASSERT_FATAL(xs_client_open(NULL, &a) == 0);
	CU_ASSERT_EQUAL(xs_client_write(a, 0, "/m/ok", "yes", 3), 0);
	/* longer than XENSTORE_PAYLOAD_MAX: that connection is closed */
	fd = raw_connect();
	h = (struct xsd_sockmsg){.type = XS_WRITE, .len = XENSTORE_PAYLOAD_MAX + 1};
	CU_ASSERT_EQUAL(write(fd, &h, sizeof(h)), (ssize_t)sizeof(h));
	CU_ASSERT_EQUAL(raw_reply(fd, body, sizeof(body)), -1);
	close(fd);
	/* unknown type, missing NUL: error replies, the connection stays usable */
	fd = raw_connect();
	h = (struct xsd_sockmsg){.type = 1234, .req_id = 1, .len = 3};
	CU_ASSERT_EQUAL(write(fd, &h, sizeof(h)), (ssize_t)sizeof(h));
	CU_ASSERT_EQUAL(write(fd, "abc", 3), 3);
	CU_ASSERT_EQUAL(raw_reply(fd, body, sizeof(body)), XS_ERROR);
	CU_ASSERT_STRING_EQUAL(body, "ENOSYS");
	h = (struct xsd_sockmsg){.type = XS_READ, .req_id = 2, .len = 5};
	CU_ASSERT_EQUAL(write(fd, &h, sizeof(h)), (ssize_t)sizeof(h));
	CU_ASSERT_EQUAL(write(fd, "/m/ok", 5), 5);
	CU_ASSERT_EQUAL(raw_reply(fd, body, sizeof(body)), XS_ERROR);
	CU_ASSERT_STRING_EQUAL(body, "EINVAL");
	h = (struct xsd_sockmsg){.type = XS_READ, .req_id = 3, .len = 6};
	CU_ASSERT_EQUAL(write(fd, &h, sizeof(h)), (ssize_t)sizeof(h));
	CU_ASSERT_EQUAL(write(fd, "/m/ok\0", 6), 6);
	CU_ASSERT_EQUAL(raw_reply(fd, body, sizeof(body)), XS_READ);
	CU_ASSERT_STRING_EQUAL(body, "yes");
	/* half a header, then gone */
	CU_ASSERT_EQUAL(write(fd, &h, 7), 7);
	close(fd);
	/* the first client never noticed */
	CU_ASSERT_EQUAL(xs_client_read(a, 0, "/m/ok", &v, &len), 0);
	CU_ASSERT_EQUAL(len, 3);
	free(v);
	xs_client_close(a);
}

static void test_many_clients(void)
{
	struct xs_client *c[200];
	char path[64], *v;
	uint32_t len;
	int i, ok = 0;

	for (i = 0; i < 200; i++)
		CU_ASSERT_FATAL(xs_client_open(NULL, &c[i]) == 0);
	for (i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "/many/%d", i);
		ok += xs_client_write(c[i], 0, path, path, (uint32_t)strlen(path)) == 0;
	}
	CU_ASSERT_EQUAL(ok, 200);
	for (i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "/many/%d", 199 - i);
		if (xs_client_read(c[i], 0, path, &v, &len) == 0) {
			CU_ASSERT_EQUAL(memcmp(v, path, len), 0);
			free(v);
		}
		xs_client_close(c[i]);
	}
}

static void test_client_calls(void)
{
	struct xs_client *a, *b;
	char **names, *p, *t;
	unsigned n;
	uint32_t tx;

	CU_ASSERT_FATAL(xs_client_open(NULL, &a) == 0);
	CU_ASSERT_FATAL(xs_client_open(NULL, &b) == 0);
	CU_ASSERT_EQUAL(xs_client_watch(a, "/cw", "tok"), 0);
	CU_ASSERT_EQUAL(xs_client_read_watch(a, 1000, &p, &t), 0); /* initial event */
	CU_ASSERT_STRING_EQUAL(p, "/cw");
	CU_ASSERT_STRING_EQUAL(t, "tok");
	free(p);
	CU_ASSERT_EQUAL(xs_client_write(b, 0, "/cw/x", "1", 1), 0);
	CU_ASSERT_EQUAL(xs_client_read_watch(a, 1000, &p, &t), 0);
	CU_ASSERT_STRING_EQUAL(p, "/cw/x");
	free(p);
	CU_ASSERT_EQUAL(xs_client_read_watch(a, 50, &p, &t), -ETIMEDOUT);
	CU_ASSERT_EQUAL(xs_client_unwatch(a, "/cw", "tok"), 0);
	CU_ASSERT_EQUAL(xs_client_unwatch(a, "/cw", "tok"), -ENOENT);
	CU_ASSERT_EQUAL(xs_client_write(b, 0, "/cw/quiet", "", 0), 0);
	CU_ASSERT_EQUAL(xs_client_read_watch(a, 50, &p, &t), -ETIMEDOUT);
	CU_ASSERT_EQUAL(xs_client_mkdir(b, 0, "/cw/y"), 0);
	CU_ASSERT_EQUAL(xs_client_ls(b, 0, "/cw", &names, &n), 0);
	CU_ASSERT_EQUAL(n, 3); /* x, quiet, y: creation order */
	CU_ASSERT_STRING_EQUAL(names[2], "y");
	free(names);
	{
		const char *perms[] = {"n3", "r4"};
		CU_ASSERT_EQUAL(xs_client_set_perms(b, 0, "/cw/y", perms, 2), 0);
		CU_ASSERT_EQUAL(xs_client_get_perms(b, 0, "/cw/y", &names, &n), 0);
		CU_ASSERT_EQUAL(n, 2);
		CU_ASSERT_STRING_EQUAL(names[0], "n3");
		free(names);
		CU_ASSERT_EQUAL(xs_client_set_perms(b, 0, "/cw/y", (const char *[]){"q1"}, 1), -EINVAL);
	}
	/* conflicting transaction */
	CU_ASSERT_EQUAL(xs_client_txn_start(a, &tx), 0);
	CU_ASSERT_EQUAL(xs_client_write(a, tx, "/cw/x", "2", 1), 0);
	CU_ASSERT_EQUAL(xs_client_write(b, 0, "/cw/x", "3", 1), 0);
	CU_ASSERT_EQUAL(xs_client_txn_end(a, tx, true), -EAGAIN);
	CU_ASSERT_EQUAL(xs_client_txn_start(a, &tx), 0);
	CU_ASSERT_EQUAL(xs_client_write(a, tx, "/cw/x", "4", 1), 0);
	CU_ASSERT_EQUAL(xs_client_txn_end(a, tx, true), 0);
	CU_ASSERT_EQUAL(xs_client_rm(b, 0, "/cw"), 0);
	CU_ASSERT_EQUAL(xs_client_read(b, 0, "/cw/x", &p, &n), -ENOENT);
	{
		const char *q[] = {"quota"};
		CU_ASSERT_EQUAL(xs_client_control(b, q, 1, &p), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(p, "nodes 1000"));
		free(p);
	}
	xs_client_close(a);
	xs_client_close(b);
}

/* A client that sends without ever reading: its replies pile up to the bound, then the daemon
 * stops reading it; everyone else is served meanwhile. */
static void test_never_reads(void)
{
	struct xs_client *a;
	char msg[16 + 11], *v;
	struct xsd_sockmsg h = {.type = XS_READ, .len = 11};
	int fd = raw_connect(), flags, i;
	long sent = 0;
	uint32_t len;

	CU_ASSERT_FATAL(fd >= 0);
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), "/many/1000", 11);
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	for (i = 0; i < 400000; i++) {
		if (write(fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
			break;
		sent++;
	}
	CU_ASSERT_TRUE(sent < 400000); /* the daemon stopped taking them */
	CU_ASSERT_FATAL(xs_client_open(NULL, &a) == 0);
	CU_ASSERT_EQUAL(xs_client_write(a, 0, "/still/served", "yes", 3), 0);
	CU_ASSERT_EQUAL(xs_client_read(a, 0, "/still/served", &v, &len), 0);
	free(v);
	close(fd);
	CU_ASSERT_EQUAL(xs_client_read(a, 0, "/still/served", &v, &len), 0);
	free(v);
	xs_client_close(a);
}

static int run_cli(const char *const *args, int n, char *out, size_t outsz)
{
	int pfd[2], status;
	ssize_t got = 0, r;
	pid_t pid;

	if (pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		char *argv[16];
		int i;
		dup2(pfd[1], 1);
		close(pfd[0]);
		for (i = 0; i < n; i++)
			argv[i] = (char *)args[i];
		argv[n] = NULL;
		_exit(xs_cli_main(n, argv, df.dir));
	}
	close(pfd[1]);
	while ((r = read(pfd[0], out + got, outsz - 1 - (size_t)got)) > 0)
		got += r;
	out[got] = '\0';
	close(pfd[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cli(void)
{
	char out[4096];

	CU_ASSERT_EQUAL(
	    run_cli((const char *[]){"store", "write", "/cli/a", "1", "/cli/b", "two"}, 6, out, sizeof(out)),
	    0);
	CU_ASSERT_EQUAL(run_cli((const char *[]){"read", "/cli/b"}, 2, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "two\n");
	CU_ASSERT_EQUAL(run_cli((const char *[]){"ls", "/cli"}, 2, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "a = \"1\"\nb = \"two\"\n");
	CU_ASSERT_EQUAL(run_cli((const char *[]){"perms", "/cli/a", "n0", "r7"}, 4, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(run_cli((const char *[]){"perms", "/cli/a"}, 2, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "n0 r7\n");
	CU_ASSERT_EQUAL(run_cli((const char *[]){"watch", "-n", "1", "/cli"}, 4, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "/cli /cli\n");
	CU_ASSERT_EQUAL(run_cli((const char *[]){"rm", "/cli/a"}, 2, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(run_cli((const char *[]){"read", "/cli/a"}, 2, out, sizeof(out)), 1);
	CU_ASSERT_EQUAL(run_cli((const char *[]){"bogus"}, 1, out, sizeof(out)), 2);
}

static void test_persist_restart(void)
{
	struct xs_client *a;
	char *v;
	uint32_t len;

	CU_ASSERT_FATAL(xs_client_open(NULL, &a) == 0);
	CU_ASSERT_EQUAL(xs_client_write(a, 0, "/keep/me", "across", 6), 0);
	xs_client_close(a);
	daemon_stop();
	CU_ASSERT_FATAL(daemon_start() == 0);
	CU_ASSERT_FATAL(xs_client_open(NULL, &a) == 0);
	CU_ASSERT_EQUAL(xs_client_read(a, 0, "/keep/me", &v, &len), 0);
	if (len == 6)
		CU_ASSERT_EQUAL(memcmp(v, "across", 6), 0);
	free(v);
	xs_client_close(a);
}

int main(void)
{
	static const struct tu_test tests[] = {
	    {"malformed messages", test_malformed},
	    {"200 clients at once", test_many_clients},
	    {"a client that never reads", test_never_reads},
	    {"libxsclient calls", test_client_calls},
	    {"domctl store front end", test_cli},
	    {"persistence across restart", test_persist_restart},
	};

	if (tu_need_env("LAMINA_XENSTORED"))
		return 77;
	signal(SIGPIPE, SIG_IGN);
	return tu_run_suite("xs_daemon", dsetup, dteardown, tests, TU_COUNT(tests));
}
