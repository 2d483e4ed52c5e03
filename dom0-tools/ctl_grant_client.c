/* Domain-0 grant requests: fixed-size request structs filled from the caller's arrays, replies
 * checked for their exact size and for counts that match what was asked. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
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

/* MAP_POPULATE: a back-end hands these pages to io_uring, whose first, non-blocking attempt at a
 * read gives up on a page fault and punts the request to a worker thread; a populated page lets
 * the copy complete inline. */
void *ctl_gnt_mmap_page(int fd, uint64_t offset, bool writable)
{
	void *p = mmap(NULL, 4096, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED | MAP_POPULATE, fd,
		       (off_t)offset);

	return p == MAP_FAILED ? NULL : p;
}

/* The copy ring. The daemon's memfd is checked against what the reply says before it is mapped. */
int ctl_gnt_ring_setup(struct ctl_conn *conn, uint32_t slots, uint64_t buf_size, struct ctl_gnt_ring *out)
{
	static const struct ctl_len_rule rule = {sizeof(struct lamina_ctl_gnt_ring_info), 0};
	struct lamina_ctl_gnt_ring_setup req = {.slots = slots, .flags = 0, .buf_size = buf_size};
	struct lamina_ctl_gnt_ring_info info;
	struct ctl_reply rep = {.buf = &info, .cap = sizeof(info)};
	struct stat st;
	void *p;
	int err;

	memset(out, 0, sizeof(*out));
	out->kick_fd = out->done_fd = -1;
	err = ctl_call(conn, LAMINA_CTL_GNT_RING, &req, sizeof(req), &rep, &rule);
	if (err) {
		ctl_gnt_close_fds(&rep);
		return err;
	}
	if (rep.nfds != 3 || info.slots != slots || info.buf_size != buf_size || info.req_off < 128 ||
	    info.rsp_off < info.req_off + (uint64_t)slots * sizeof(struct lamina_gnt_ring_req) ||
	    info.buf_off < info.rsp_off + (uint64_t)slots * sizeof(struct lamina_gnt_ring_rsp) ||
	    info.size < info.buf_off + buf_size || fstat(rep.fds[0], &st) < 0 || (uint64_t)st.st_size < info.size) {
		ctl_gnt_close_fds(&rep);
		snprintf(conn->err, sizeof(conn->err), "malformed GNT_RING reply");
		return -EPROTO;
	}
	p = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, rep.fds[0], 0);
	if (p == MAP_FAILED) {
		err = -errno;
		ctl_gnt_close_fds(&rep);
		snprintf(conn->err, sizeof(conn->err), "mmap of the copy ring: %s", strerror(-err));
		return err;
	}
	close(rep.fds[0]);
	out->info = info;
	out->map = p;
	out->sr = p;
	out->req = (struct lamina_gnt_ring_req *)((uint8_t *)p + info.req_off);
	out->rsp = (struct lamina_gnt_ring_rsp *)((uint8_t *)p + info.rsp_off);
	out->buf = (uint8_t *)p + info.buf_off;
	out->buf_size = info.buf_size;
	out->kick_fd = rep.fds[1];
	out->done_fd = rep.fds[2];
	out->spin_us = 50;
	out->req_prod = __atomic_load_n(&out->sr->req_prod, __ATOMIC_ACQUIRE);
	out->rsp_cons = out->req_prod;
	return 0;
}

void ctl_gnt_ring_close(struct ctl_gnt_ring *r)
{
	if (r->map)
		munmap(r->map, r->info.size);
	if (r->kick_fd >= 0)
		close(r->kick_fd);
	if (r->done_fd >= 0)
		close(r->done_fd);
	r->map = NULL;
	r->kick_fd = r->done_fd = -1;
}

static bool ctl_gnt_ring_broken(const struct ctl_gnt_ring *r)
{
	return __atomic_load_n(&r->sr->state, __ATOMIC_ACQUIRE) != LAMINA_GNT_RING_OK;
}

uint32_t ctl_gnt_ring_space(const struct ctl_gnt_ring *r)
{
	return r->info.slots - (r->req_prod - r->rsp_cons);
}

int ctl_gnt_ring_submit(struct ctl_gnt_ring *r, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n,
			uint64_t first_id)
{
	const uint32_t mask = r->info.slots - 1;
	uint32_t old = r->req_prod, ev;
	uint64_t one = 1;

	if (ctl_gnt_ring_broken(r))
		return -EPIPE;
	if (n == 0 || n > ctl_gnt_ring_space(r))
		return n ? -EAGAIN : -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		struct lamina_gnt_ring_req *q = &r->req[(old + i) & mask];

		q->id = first_id + i;
		q->seg = segs[i];
	}
	r->req_prod = old + n;
	__atomic_store_n(&r->sr->req_prod, r->req_prod, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* req_prod visible before req_event is read */
	ev = __atomic_load_n(&r->sr->req_event, __ATOMIC_RELAXED);
	if ((uint32_t)(r->req_prod - ev) < (uint32_t)(r->req_prod - old)) {
		if (write(r->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			return -errno;
		r->kicks++;
	}
	return 0;
}

int ctl_gnt_ring_reap(struct ctl_gnt_ring *r, struct lamina_gnt_ring_rsp *out, uint32_t max)
{
	const uint32_t mask = r->info.slots - 1;
	uint32_t prod = __atomic_load_n(&r->sr->rsp_prod, __ATOMIC_ACQUIRE), avail, i;

	avail = prod - r->rsp_cons;
	if (avail > r->req_prod - r->rsp_cons)
		return -EPROTO; /* more responses than requests */
	if (avail == 0)
		return ctl_gnt_ring_broken(r) ? -EPIPE : 0;
	if (avail > max)
		avail = max;
	for (i = 0; i < avail; i++)
		out[i] = r->rsp[(r->rsp_cons + i) & mask];
	r->rsp_cons += avail;
	return (int)avail;
}

static uint64_t ctl_gnt_ring_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
}

int ctl_gnt_ring_wait(struct ctl_gnt_ring *r, uint32_t want, int timeout_ms)
{
	uint64_t start = ctl_gnt_ring_now_us(), now;
	struct pollfd pfd = {.fd = r->done_fd, .events = POLLIN};
	uint32_t out = r->req_prod - r->rsp_cons;
	uint64_t v;
	int left;

	if (out == 0)
		return ctl_gnt_ring_broken(r) ? -EPIPE : -EINVAL; /* nothing to wait for */
	want = want == 0 ? 1 : want > out ? out : want;
	for (unsigned spins = 0;; spins++) {
		if (__atomic_load_n(&r->sr->rsp_prod, __ATOMIC_ACQUIRE) - r->rsp_cons >= want)
			return 0;
		if (ctl_gnt_ring_broken(r))
			return -EPIPE;
		if (spins % 64) {
			__builtin_ia32_pause();
			continue;
		}
		now = ctl_gnt_ring_now_us();
		if (now - start < r->spin_us)
			continue;
		if (timeout_ms >= 0 && now - start >= (uint64_t)timeout_ms * 1000)
			return -ETIMEDOUT;
		/* Ask for a signal, then look once more: a response published before the request was
		 * seen would otherwise never signal. */
		__atomic_store_n(&r->sr->rsp_event, r->rsp_cons + want, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&r->sr->rsp_prod, __ATOMIC_ACQUIRE) - r->rsp_cons >= want)
			return 0;
		left = timeout_ms < 0 ? -1 : (int)((uint64_t)timeout_ms - (now - start) / 1000);
		r->sleeps++;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return -errno;
		if (read(r->done_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return -errno;
	}
}
