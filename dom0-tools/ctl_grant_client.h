/* Domain-0's grant requests (LAMINA_CTL_GNT_* of control.h) on a libdomctl connection: mapping
 * granted pages into this process, batched grant copies through the daemon's sealed buffer, and the
 * toolstack's foreign maps and limits. Each returns 0 or -errno with conn->err set. */
#ifndef LAMINA_CTL_GRANT_CLIENT_H
#define LAMINA_CTL_GRANT_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "ctl_client.h"

/* Map n (<= LAMINA_GNT_BATCH) grants of domid; out[i] gets each status, handle and offset. fds[0]
 * (read-only) and fds[1] (read-write) receive the descriptors the server sent, else -1; the
 * caller closes them (mmap first: a page is mmap(fd, 4096, out[i].offset)). */
int ctl_gnt_map(struct ctl_conn *conn, uint32_t domid, const struct lamina_ctl_gnt_map_ent *ents, uint32_t n,
		uint32_t flags, struct lamina_ctl_gnt_mapped *out, int fds[2]);
/* status[i] (may be NULL) gets GNTST_* per handle. */
int ctl_gnt_unmap(struct ctl_conn *conn, const uint32_t *handles, uint32_t n, int32_t *status);
/* A copy buffer of size bytes shared with the daemon (replaces the connection's previous one);
 * *addr is this process's mapping of it (munmap(size) when done). */
int ctl_gnt_buffer(struct ctl_conn *conn, uint64_t size, uint8_t **addr);
/* Copies between grants and the buffer; status[i] gets GNTST_* per segment. */
int ctl_gnt_copy(struct ctl_conn *conn, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n,
		 int32_t *status);
/* ctl_gnt_copy in two halves, to keep several batches in flight on one connection (replies come
 * in order): send returns the request's seq, recv takes its reply. */
int ctl_gnt_copy_send(struct ctl_conn *conn, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n,
		      uint32_t *seq);
int ctl_gnt_copy_recv(struct ctl_conn *conn, uint32_t seq, uint32_t n, int32_t *status);
/* Toolstack only: guest frames of domid; *fd a read-write descriptor of its RAM. */
int ctl_gnt_foreign_map(struct ctl_conn *conn, uint32_t domid, const uint64_t *gfns, uint32_t n,
			struct lamina_ctl_gnt_mapped *out, int *fd);
int ctl_gnt_toolstack(struct ctl_conn *conn);
int ctl_gnt_info(struct ctl_conn *conn, uint32_t domid, struct lamina_ctl_gnt_info *out);
int ctl_gnt_set_limits(struct ctl_conn *conn, uint32_t domid, uint32_t max_frames, uint32_t max_maptrack);

/* A grant-copy ring (LAMINA_CTL_GNT_RING) in this process: GNT_COPY's segments through shared
 * memory, with buf_offset inside the ring's own buffer (buf, buf_size). Not thread-safe: one
 * thread submits and reaps. */
struct ctl_gnt_ring {
	struct lamina_ctl_gnt_ring_info info;
	void *map;
	struct lamina_gnt_sring *sr;
	struct lamina_gnt_ring_req *req;
	struct lamina_gnt_ring_rsp *rsp;
	uint8_t *buf;
	uint64_t buf_size;
	uint32_t req_prod; /* requests written (published in sr->req_prod) */
	uint32_t rsp_cons; /* responses taken */
	int kick_fd, done_fd;
	unsigned spin_us; /* ctl_gnt_ring_wait polls this long before it sleeps (default 50) */
	uint64_t kicks, sleeps; /* counters: kick writes, waits that slept */
};
/* Set up the connection's ring (slots: a power of two, 16..65536; buf_size a page multiple). */
int ctl_gnt_ring_setup(struct ctl_conn *conn, uint32_t slots, uint64_t buf_size, struct ctl_gnt_ring *out);
void ctl_gnt_ring_close(struct ctl_gnt_ring *r);
/* Request slots free now (requests submitted whose responses were not reaped take one each). */
uint32_t ctl_gnt_ring_space(const struct ctl_gnt_ring *r);
/* Publish n segments as one batch, ids first_id, first_id + 1, ...: one kick at most, and only
 * if the daemon said it may sleep. -EAGAIN when fewer than n slots are free, -EPIPE when the
 * daemon disconnected the ring (sr->error says why). */
int ctl_gnt_ring_submit(struct ctl_gnt_ring *r, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n,
			uint64_t first_id);
/* Take up to max published responses into out; returns how many (0: none yet) or -EPIPE / -EPROTO. */
int ctl_gnt_ring_reap(struct ctl_gnt_ring *r, struct lamina_gnt_ring_rsp *out, uint32_t max);
/* Wait until want responses (at least 1, at most those outstanding) can be reaped: polls for
 * spin_us, then sets rsp_event so the daemon signals "done" only when they are there, and
 * sleeps. A back-end with many batches in flight asks for a part of them, so it neither spins
 * nor wakes per batch. 0, -ETIMEDOUT (timeout_ms, -1 for ever), -EPIPE, -EINVAL with nothing
 * outstanding. */
int ctl_gnt_ring_wait(struct ctl_gnt_ring *r, uint32_t want, int timeout_ms);

/* One page of a map reply in this process: NULL with errno set on failure. */
void *ctl_gnt_mmap_page(int fd, uint64_t offset, bool writable);

#endif
