/* LAMINA_CTL_DUMP_CORE: a domain's ELF core written into a file the client opened and passed with
 * the request, so the daemon (root) never opens a path a client chose. The descriptor is checked
 * before anything is paused: a regular file, open for writing, not in append mode. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_elf.h"
#include "ctl_server.h"
#include "hv.h"

_Static_assert(sizeof(struct lamina_ctl_dump_core) == 72, "dump_core layout");
_Static_assert(sizeof(struct lamina_ctl_dump_core_reply) == 40, "dump_core_reply layout");

int ctl_op_dump_core(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h,
		     const void *req, void *out, size_t *out_len)
{
	struct lamina_ctl_dump_core_reply rep;
	struct lamina_ctl_dump_core r;
	struct hv_domain *hd;
	int fd, rc;

	memcpy(&r, req, sizeof(r)); /* copy once; only the copy is looked at */
	fd = ctl_take_fd(s);
	if (fd < 0)
		return fd; /* -EBADF: the request must carry the file */
	if (r.flags) {
		rc = -EINVAL;
		goto out_close;
	}
	rc = core_elf_fd_check(fd);
	if (rc < 0)
		goto out_close;
	hd = hv_find_ref(s->hv, r.dom.domid, r.dom.name);
	if (!hd) {
		rc = -ESRCH;
		goto out_close;
	}
	rc = hv_domain_dump_core(hd, fd, &rep);
	if (rc < 0) {
		hv_log(&s->hv->log, "dom%u %s: core dump for a client failed: %s", hd->d.domid,
		       hd->d.cfg.name, strerror(-rc));
		goto out_close;
	}
	memcpy(out, &rep, sizeof(rep));
	*out_len = sizeof(rep);
out_close:
	close(fd);
	return rc;
}
