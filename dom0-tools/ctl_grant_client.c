/* Domain-0 grant requests: fixed-size request structs filled from the caller's arrays, replies
 * checked for their exact size and for counts that match what was asked. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ctl_grant_client.h"

static void ctl_gnt_close_fds(struct ctl_reply *rep)
{
	for (unsigned i = 0; i < rep->nfds; i++)
		close(rep->fds[i]);
	rep->nfds = 0;
}

static int ctl_gnt_bad_count(struct ctl_conn *conn, uint32_t n)
{
	if (n && n <= LAMINA_GNT_BATCH)
		return 0;
	snprintf(conn->err, sizeof(conn->err), "a grant batch holds 1..%u entries, not %u", LAMINA_GNT_BATCH,
		 n);
	return -EINVAL;
}

/* A map-shaped reply: count must match, descriptors as nr_fds says. */
static int ctl_gnt_map_reply(struct ctl_conn *conn, struct ctl_reply *rep,
			     const struct lamina_ctl_gnt_map_reply *r, uint32_t n,
			     struct lamina_ctl_gnt_mapped *out, int *fds, unsigned want_max)
{
	if (r->count != n || r->nr_fds != rep->nfds || rep->nfds > want_max) {
		snprintf(conn->err, sizeof(conn->err), "malformed grant map reply (%u entries, %u/%u fds)",
			 r->count, r->nr_fds, rep->nfds);
		ctl_gnt_close_fds(rep);
		return -EPROTO;
	}
	memcpy(out, r->ent, n * sizeof(*out));
	for (unsigned i = 0; i < want_max; i++)
		fds[i] = i < rep->nfds ? rep->fds[i] : -1;
	return 0;
}

int ctl_gnt_map(struct ctl_conn *conn, uint32_t domid, const struct lamina_ctl_gnt_map_ent *ents, uint32_t n,
		uint32_t flags, struct lamina_ctl_gnt_mapped *out, int fds[2])
{
	static const struct ctl_len_rule rule = {sizeof(struct lamina_ctl_gnt_map_reply), 0};
	struct lamina_ctl_gnt_map req;
	struct lamina_ctl_gnt_map_reply r;
	struct ctl_reply rep = {.buf = &r, .cap = sizeof(r)};
	int err;

	fds[0] = fds[1] = -1;
	if ((err = ctl_gnt_bad_count(conn, n)))
		return err;
	memset(&req, 0, sizeof(req));
	req.domid = domid;
	req.count = n;
	req.flags = flags;
	memcpy(req.ent, ents, n * sizeof(*ents));
	err = ctl_call(conn, LAMINA_CTL_GNT_MAP, &req, sizeof(req), &rep, &rule);
	if (err) {
		ctl_gnt_close_fds(&rep);
		return err;
	}
	return ctl_gnt_map_reply(conn, &rep, &r, n, out, fds, 2);
}

int ctl_gnt_unmap(struct ctl_conn *conn, const uint32_t *handles, uint32_t n, int32_t *status)
{
	static const struct ctl_len_rule rule = {sizeof(struct lamina_ctl_gnt_status), 0};
	struct lamina_ctl_gnt_unmap req;
	struct lamina_ctl_gnt_status r;
	struct ctl_reply rep = {.buf = &r, .cap = sizeof(r)};
	int err;

	if ((err = ctl_gnt_bad_count(conn, n)))
		return err;
	memset(&req, 0, sizeof(req));
	req.count = n;
	memcpy(req.handle, handles, n * sizeof(*handles));
	err = ctl_call(conn, LAMINA_CTL_GNT_UNMAP, &req, sizeof(req), &rep, &rule);
	ctl_gnt_close_fds(&rep);
	if (err)
		return err;
	if (r.count != n)
		return -EPROTO;
	if (status)
		memcpy(status, r.status, n * sizeof(*status));
	return 0;
}

int ctl_gnt_buffer(struct ctl_conn *conn, uint64_t size, uint8_t **addr)
{
	static const struct ctl_len_rule rule = {sizeof(struct lamina_ctl_gnt_buffer), 0};
	struct lamina_ctl_gnt_buffer req = {.size = size}, r;
	struct ctl_reply rep = {.buf = &r, .cap = sizeof(r)};
	void *p;
	int err;

	err = ctl_call(conn, LAMINA_CTL_GNT_BUFFER, &req, sizeof(req), &rep, &rule);
	if (err) {
		ctl_gnt_close_fds(&rep);
		return err;
	}
	if (rep.nfds != 1 || r.size != size) {
		ctl_gnt_close_fds(&rep);
		snprintf(conn->err, sizeof(conn->err), "GNT_BUFFER reply without its memfd");
		return -EPROTO;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, rep.fds[0], 0);
	err = p == MAP_FAILED ? -errno : 0;
	ctl_gnt_close_fds(&rep);
	if (err) {
		snprintf(conn->err, sizeof(conn->err), "mmap of the copy buffer: %s", strerror(-err));
		return err;
	}
	*addr = p;
	return 0;
}

int ctl_gnt_copy_send(struct ctl_conn *conn, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n,
		      uint32_t *seq)
{
	struct lamina_ctl_gnt_copy req;
	int err;

	if ((err = ctl_gnt_bad_count(conn, n)))
		return err;
	req.count = n;
	req.pad = 0;
	memcpy(req.seg, segs, n * sizeof(*segs));
	if (n < LAMINA_GNT_BATCH)
		memset(&req.seg[n], 0, (LAMINA_GNT_BATCH - n) * sizeof(*segs));
	return ctl_send(conn, LAMINA_CTL_GNT_COPY, &req, sizeof(req), seq);
}

int ctl_gnt_copy_recv(struct ctl_conn *conn, uint32_t seq, uint32_t n, int32_t *status)
{
	static const struct ctl_len_rule rule = {sizeof(struct lamina_ctl_gnt_status), 0};
	struct lamina_ctl_gnt_status r;
	struct ctl_reply rep = {.buf = &r, .cap = sizeof(r), .len = 0, .nfds = 0};
	int err = ctl_recv(conn, LAMINA_CTL_GNT_COPY, seq, &rep, &rule);

	ctl_gnt_close_fds(&rep);
	if (err)
		return err;
	if (r.count != n)
		return -EPROTO;
	memcpy(status, r.status, n * sizeof(*status));
	return 0;
}

int ctl_gnt_copy(struct ctl_conn *conn, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n,
		 int32_t *status)
{
	uint32_t seq;
	int err = ctl_gnt_copy_send(conn, segs, n, &seq);

	return err ? err : ctl_gnt_copy_recv(conn, seq, n, status);
}

int ctl_gnt_foreign_map(struct ctl_conn *conn, uint32_t domid, const uint64_t *gfns, uint32_t n,
			struct lamina_ctl_gnt_mapped *out, int *fd)
{
	static const struct ctl_len_rule rule = {sizeof(struct lamina_ctl_gnt_map_reply), 0};
	struct lamina_ctl_gnt_foreign req;
	struct lamina_ctl_gnt_map_reply r;
	struct ctl_reply rep = {.buf = &r, .cap = sizeof(r)};
	int err;

	*fd = -1;
	if ((err = ctl_gnt_bad_count(conn, n)))
		return err;
	memset(&req, 0, sizeof(req));
	req.domid = domid;
	req.count = n;
	memcpy(req.gfn, gfns, n * sizeof(*gfns));
	err = ctl_call(conn, LAMINA_CTL_GNT_FOREIGN_MAP, &req, sizeof(req), &rep, &rule);
	if (err) {
		ctl_gnt_close_fds(&rep);
		return err;
	}
	return ctl_gnt_map_reply(conn, &rep, &r, n, out, fd, 1);
}

int ctl_gnt_toolstack(struct ctl_conn *conn)
{
	return ctl_call(conn, LAMINA_CTL_GNT_TOOLSTACK, NULL, 0, NULL, NULL);
}

int ctl_gnt_info(struct ctl_conn *conn, uint32_t domid, struct lamina_ctl_gnt_info *out)
{
	static const struct ctl_len_rule rule = {sizeof(struct lamina_ctl_gnt_info), 0};
	struct lamina_ctl_gnt_domid req = {.domid = domid};
	struct ctl_reply rep = {.buf = out, .cap = sizeof(*out)};
	int err = ctl_call(conn, LAMINA_CTL_GNT_INFO, &req, sizeof(req), &rep, &rule);

	ctl_gnt_close_fds(&rep);
	return err;
}

int ctl_gnt_set_limits(struct ctl_conn *conn, uint32_t domid, uint32_t max_frames, uint32_t max_maptrack)
{
	struct lamina_ctl_gnt_limits req = {
	    .domid = domid, .max_frames = max_frames, .max_maptrack = max_maptrack};

	return ctl_call(conn, LAMINA_CTL_GNT_SET_LIMITS, &req, sizeof(req), NULL, NULL);
}

void *ctl_gnt_mmap_page(int fd, uint64_t offset, bool writable)
{
	void *p =
	    mmap(NULL, 4096, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, (off_t)offset);

	return p == MAP_FAILED ? NULL : p;
}
