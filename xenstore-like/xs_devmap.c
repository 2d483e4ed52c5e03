/* A development mapper for the ring transport, over plain files: lets a test program play a guest
 * against the real daemon until the hypervisor's mapper exists. Enabled by --ring-dir DIR:
 *   DIR/dom<ID>.ring     the guest's pages; INTRODUCE's gfn selects the 4 KiB page in the file
 *   DIR/dom<ID>.evtchn   a datagram socket the daemon binds: a datagram to it is a guest notify
 *   DIR/dom<ID>.guest    the guest's datagram socket: the daemon's notify sends one byte there */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "xs_ring.h"

#define XS_DEVMAP_MAXFD 4096

struct xs_devmap {
	char dir[256];
	uint32_t domid_of_fd[XS_DEVMAP_MAXFD];
};

static int xs_devmap_path(const struct xs_devmap *m, uint32_t domid, const char *what, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (snprintf(a->sun_path, sizeof(a->sun_path), "%s/dom%u.%s", m->dir, domid, what) >=
	    (int)sizeof(a->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

static void *xs_devmap_map(void *ctx, uint32_t domid, uint64_t gfn)
{
	struct xs_devmap *m = ctx;
	struct sockaddr_un a;
	struct stat sb;
	void *p;
	int fd;

	if (xs_devmap_path(m, domid, "ring", &a) < 0)
		return NULL;
	fd = open(a.sun_path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) < 0 || gfn >= (uint64_t)sb.st_size / 4096) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)(gfn * 4096));
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static void xs_devmap_unmap(void *ctx, uint32_t domid, void *page)
{
	munmap(page, 4096);
}

static int xs_devmap_bind(void *ctx, uint32_t domid, uint32_t port)
{
	struct xs_devmap *m = ctx;
	struct sockaddr_un a;
	int fd, rc;

	if ((rc = xs_devmap_path(m, domid, "evtchn", &a)) < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(a.sun_path);
	if (fd >= XS_DEVMAP_MAXFD || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		rc = fd >= XS_DEVMAP_MAXFD ? -EMFILE : -errno;
		close(fd);
		return rc;
	}
	m->domid_of_fd[fd] = domid;
	return fd;
}

static void xs_devmap_unbind(void *ctx, uint32_t domid, int fd)
{
	struct xs_devmap *m = ctx;
	struct sockaddr_un a;

	if (xs_devmap_path(m, domid, "evtchn", &a) == 0)
		unlink(a.sun_path);
	close(fd);
}

static int xs_devmap_notify(void *ctx, int fd)
{
	struct xs_devmap *m = ctx;
	struct sockaddr_un a;
	int rc;

	if (fd < 0 || fd >= XS_DEVMAP_MAXFD)
		return -EBADF;
	if ((rc = xs_devmap_path(m, m->domid_of_fd[fd], "guest", &a)) < 0)
		return rc;
	/* A guest that is not listening just misses the notification, as with a masked port. */
	if (sendto(fd, "!", 1, MSG_DONTWAIT, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != ECONNREFUSED &&
	    errno != ENOENT && errno != EAGAIN)
		return -errno;
	return 0;
}

static const struct xs_ring_ops xs_devmap_ops = {
    .map_ring = xs_devmap_map,
    .unmap_ring = xs_devmap_unmap,
    .bind_evtchn = xs_devmap_bind,
    .unbind_evtchn = xs_devmap_unbind,
    .notify = xs_devmap_notify,
};

int xs_devmap_new(const char *dir, const struct xs_ring_ops **ops, void **ctx)
{
	struct xs_devmap *m;

	if (strlen(dir) >= sizeof(m->dir) - 32)
		return -ENAMETOOLONG;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	strcpy(m->dir, dir);
	*ops = &xs_devmap_ops;
	*ctx = m;
	return 0;
}

void xs_devmap_free(void *ctx)
{
	free(ctx);
}
