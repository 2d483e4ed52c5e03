/* `domctl dump-core NAME|ID FILE`: the domain's ELF core written by lamina-hv into FILE. domctl opens
 * the file with the caller's rights and hands the descriptor over with the request (SCM_RIGHTS), so
 * the daemon never opens a path a client chose. The core is readable by gdb with the guest kernel. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domctl.h"

#define DOMCTL_DUMP_TIMEOUT_MS (10 * 60 * 1000) /* writing GiBs to a slow disk takes a while */

/* LAMINA_CTL_DUMP_CORE with fd riding on the request. 0 or -errno (conn->err set). */
static int domctl_dump_call(struct ctl_conn *conn, const struct lamina_ctl_domref *ref, int fd,
			    struct lamina_ctl_dump_core_reply *out)
{
	struct lamina_ctl_dump_core req;
	struct lamina_ctl_hdr hdr = {
	    .magic = LAMINA_CTL_MAGIC,
	    .version = LAMINA_CTL_VERSION,
	    .op = LAMINA_CTL_DUMP_CORE,
	    .seq = ++conn->seq,
	    .len = sizeof(req),
	};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {&req, sizeof(req)}};
	struct msghdr mh = {
	    .msg_iov = iov, .msg_iovlen = 2, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	const struct ctl_len_rule rule = {sizeof(*out), 0};
	struct ctl_reply rep = {.buf = out, .cap = sizeof(*out)};
	struct cmsghdr *cm;
	int saved, r;
	ssize_t n;

	memset(&req, 0, sizeof(req));
	req.dom = *ref;
	memset(&u, 0, sizeof(u));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	do
		n = sendmsg(conn->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)(sizeof(hdr) + sizeof(req))) {
		r = n < 0 ? -errno : -EIO;
		snprintf(conn->err, sizeof(conn->err), "DUMP_CORE: send: %s", strerror(-r));
		return r;
	}
	saved = conn->timeout_ms;
	conn->timeout_ms = DOMCTL_DUMP_TIMEOUT_MS;
	r = ctl_recv(conn, LAMINA_CTL_DUMP_CORE, hdr.seq, &rep, &rule);
	conn->timeout_ms = saved;
	for (unsigned i = 0; i < rep.nfds; i++)
		close(rep.fds[i]);
	return r;
}

static const char *domctl_dump_why(int r, const struct ctl_conn *conn)
{
	switch (r) {
	case -ESRCH:
	case -ENOENT:
		return "no such domain";
	case -EOPNOTSUPP:
		return "this lamina-hv cannot dump cores (too old)";
	case -EINVAL:
		return "FILE must be a regular file (not a pipe or a device)";
	case -EBUSY:
		return "a vCPU did not stop for the dump; try again";
	default:
		return conn->err[0] ? conn->err : strerror(-r);
	}
}

int domctl_cmd_dump_core(struct domctl_ctx *ctx, int argc, char **argv)
{
	struct lamina_ctl_dump_core_reply rep;
	struct lamina_ctl_domref ref;
	char name[LAMINA_NAME_MAX];
	struct ctl_conn conn;
	struct stat st;
	const char *pos[2];
	int npos, fd, r, existed, rc = DOMCTL_EXIT_ERROR;

	if (domctl_args(ctx, argc, argv, NULL, NULL, NULL, NULL, pos, 2, &npos))
		return DOMCTL_EXIT_USAGE;
	if (npos != 2)
		return domctl_usage(ctx);
	if (domctl_connect(ctx, &conn))
		return DOMCTL_EXIT_ERROR;
	if (domctl_resolve(&conn, pos[0], &ref, name))
		goto out_close;
	existed = stat(pos[1], &st) == 0;
	/* 0600: a core holds everything the guest had in memory. */
	fd = open(pos[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		domctl_err("%s: %s", pos[1], strerror(errno));
		goto out_close;
	}
	r = domctl_dump_call(&conn, &ref, fd, &rep);
	close(fd);
	if (r) {
		domctl_err("%s: %s", pos[0], domctl_dump_why(r, &conn));
		if (!existed)
			unlink(pos[1]);
		goto out_close;
	}
	printf("Dumped %s to %s: %llu MiB in %u segment%s, %llu KiB written, %u vCPU%s, %llu ms\n", name,
	       pos[1], (unsigned long long)(rep.ram_bytes >> 20), rep.nr_loads, rep.nr_loads == 1 ? "" : "s",
	       (unsigned long long)(rep.data_bytes >> 10), rep.nr_vcpus, rep.nr_vcpus == 1 ? "" : "s",
	       (unsigned long long)(rep.elapsed_ns / 1000000));
	rc = DOMCTL_EXIT_OK;
out_close:
	ctl_close(&conn);
	return rc;
}
