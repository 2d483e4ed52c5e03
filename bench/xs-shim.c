/* LD_PRELOAD shim that lets Xen's C xenstored run on a host without Xen, as a socket-only daemon
 * for the store benchmark: it answers the start-up calls into libxenctrl, libxenevtchn and
 * libxengnttab, and the opens of /proc/xen/xsd_port and /proc/xen/xsd_kva, with inert stand-ins
 * (an event channel fd that never fires, anonymous pages for rings). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>

struct xenevtchn_handle {
	int fd;
	evtchn_port_t next_port;
};

struct xengntdev_handle {
	int unused;
};

struct xc_interface_core {
	int unused;
};

xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dl, unsigned flags)
{
	return calloc(1, sizeof(struct xc_interface_core));
}

int xc_interface_close(xc_interface *xch)
{
	free(xch);
	return 0;
}

/* Every domain asked about exists and is running. */
int xc_domain_getinfo(xc_interface *xch, uint32_t first, unsigned int max, xc_dominfo_t *info)
{
	if (max == 0)
		return 0;
	memset(info, 0, sizeof(*info));
	info->domid = first;
	info->running = 1;
	return 1;
}

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger, unsigned flags)
{
	xenevtchn_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	h->next_port = 10;
	return h;
}

xenevtchn_handle *xenevtchn_fdopen(struct xentoollog_logger *logger, int fd, unsigned flags)
{
	xenevtchn_handle *h = xenevtchn_open(logger, flags);

	if (h && fd >= 0) {
		close(h->fd);
		h->fd = fd;
	}
	return h;
}

int xenevtchn_fd(xenevtchn_handle *xce)
{
	return xce->fd;
}

int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
	return 0;
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid,
						     evtchn_port_t rport)
{
	return (xenevtchn_port_or_error_t)xce->next_port++;
}

xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *xce, unsigned int virq)
{
	return (xenevtchn_port_or_error_t)xce->next_port++;
}

int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port)
{
	return 0;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
	uint64_t v;

	if (read(xce->fd, &v, sizeof(v)) < 0) {
		/* nothing pending: the fd never fires */
	}
	errno = EAGAIN;
	return -1;
}

int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port)
{
	return 0;
}

xengnttab_handle *xengnttab_open(struct xentoollog_logger *logger, unsigned open_flags)
{
	return calloc(1, sizeof(xengnttab_handle));
}

int xengnttab_close(xengnttab_handle *xgt)
{
	free(xgt);
	return 0;
}

int xengnttab_set_max_grants(xengnttab_handle *xgt, uint32_t nr_grants)
{
	return 0;
}

void *xengnttab_map_grant_ref(xengnttab_handle *xgt, uint32_t domid, uint32_t ref, int prot)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count)
{
	return munmap(start_address, (size_t)count * 4096);
}

/* Domain-0's own store ring and port, which xenstored reads from /proc/xen at start. */
static int xs_shim_fake_file(const char *path)
{
	int fd;

	if (strcmp(path, "/proc/xen/xsd_port") == 0) {
		fd = memfd_create("xsd_port", MFD_CLOEXEC);
		if (fd >= 0 && (write(fd, "1\n", 2) != 2 || lseek(fd, 0, SEEK_SET) < 0)) {
			close(fd);
			return -1;
		}
		return fd;
	}
	if (strcmp(path, "/proc/xen/xsd_kva") == 0) {
		fd = memfd_create("xsd_kva", MFD_CLOEXEC);
		if (fd >= 0 && ftruncate(fd, 4096) < 0) {
			close(fd);
			return -1;
		}
		return fd;
	}
	return -2;
}

static int xs_shim_open(const char *sym, int dirfd, const char *path, int flags, va_list ap)
{
	mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
	int fd = xs_shim_fake_file(path);

	if (fd != -2)
		return fd;
	if (dirfd == -1) {
		int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, sym);
		return real(path, flags, mode);
	} else {
		int (*real)(int, const char *, int, ...) =
		    (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, sym);
		return real(dirfd, path, flags, mode);
	}
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	int rc;

	va_start(ap, flags);
	rc = xs_shim_open("open", -1, path, flags, ap);
	va_end(ap);
	return rc;
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	int rc;

	va_start(ap, flags);
	rc = xs_shim_open("open64", -1, path, flags, ap);
	va_end(ap);
	return rc;
}
