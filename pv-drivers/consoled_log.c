/* A domain's console log, $RUNDIR/console/NAME.log. lamina-hv appends console_io output to the
 * same file through its own O_APPEND descriptor, so every append here is one write() and the
 * file is rotated by copy-then-truncate: both writers keep valid descriptors, and NAME.log.1
 * holds the previous (at most log_max) bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consoled.h"

static int consoled_log_path(struct consoled *cd, const char *name, const char *suffix, char *out,
			     size_t size)
{
	int n = snprintf(out, size, "%s/console/%s.log%s", cd->rundir, name, suffix);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int consoled_log_open(struct consoled *cd, const char *name)
{
	char path[4096];
	int fd, err;

	/* Names come from lamina-hv, which validated them; refuse path tricks all the same. */
	if (!*name || strchr(name, '/') || name[0] == '.')
		return -EINVAL;
	err = consoled_log_path(cd, name, "", path, sizeof(path));
	if (err)
		return err;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
	return fd < 0 ? -errno : fd;
}

/* Copy the log's first `size` bytes to NAME.log.1 (through a temporary name, renamed over). */
static int consoled_log_copy(struct consoled *cd, struct consoled_dom *dom, off_t size)
{
	char tmp[4096], old[4096], cur[4096];
	off_t in_off = 0;
	int in = -1, out = -1, err = 0;

	if (consoled_log_path(cd, dom->name, ".1.tmp", tmp, sizeof(tmp)) ||
	    consoled_log_path(cd, dom->name, ".1", old, sizeof(old)) ||
	    consoled_log_path(cd, dom->name, "", cur, sizeof(cur)))
		return -ENAMETOOLONG;
	in = open(cur, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		err = -errno;
		goto out_close;
	}
	while (in_off < size) {
		ssize_t n = copy_file_range(in, &in_off, out, NULL, (size_t)(size - in_off), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			goto out_close;
		}
	}
	if (rename(tmp, old) < 0)
		err = -errno;
out_close:
	if (out >= 0)
		close(out);
	if (err)
		unlink(tmp);
	close(in);
	return err;
}

static int consoled_log_rotate(struct consoled *cd, struct consoled_dom *dom)
{
	struct stat st;
	int err;

	if (fstat(dom->log_fd, &st) < 0)
		return -errno;
	err = consoled_log_copy(cd, dom, st.st_size);
	if (err)
		return err;
	/* Bytes lamina-hv appended since the copy would be lost: copy again while the file grows. */
	for (int i = 0; i < 3; i++) {
		struct stat now;

		if (fstat(dom->log_fd, &now) < 0 || now.st_size == st.st_size)
			break;
		st = now;
		err = consoled_log_copy(cd, dom, st.st_size);
		if (err)
			return err;
	}
	return ftruncate(dom->log_fd, 0) < 0 ? -errno : 0;
}

int consoled_log_append(struct consoled *cd, struct consoled_dom *dom, const char *buf, size_t len)
{
	struct stat st;
	ssize_t n;
	int err;

	if (dom->log_fd < 0)
		return -EBADF;
	if (fstat(dom->log_fd, &st) == 0 && (uint64_t)st.st_size + len > cd->log_max && st.st_size > 0) {
		err = consoled_log_rotate(cd, dom);
		if (err)
			be_log_limited(&dom->rl, "%s: cannot rotate its log: %s", dom->name, strerror(-err));
	}
	do
		n = write(dom->log_fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		be_log_limited(&dom->rl, "%s: log write: %s", dom->name, strerror(errno));
		return -errno;
	}
	return 0;
}
