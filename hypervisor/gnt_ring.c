/* Grant-copy rings: a Domain-0 client publishes GNT_COPY segments in shared memory and a worker
 * thread of the daemon serves them, spinning briefly before it sleeps so that a stream of batches
 * costs no system call on either side. Everything in the shared memfd is the client's to change at
 * any moment: each request is copied out once, indexes are checked against the ring size, and a
 * ring that breaks its rules is disconnected (its state says why) without touching anything else. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ctl_server.h"
#include "gnt_ring.h"
#include "grant_table.h"
#include "hv.h"

#define GNT_RING_DOM0 0 /* the domid Domain-0 back-ends' grants name */

static uint64_t gnt_ring_page_up(uint64_t n)
{
	return (n + GMEM_PAGE_SIZE - 1) & ~(uint64_t)(GMEM_PAGE_SIZE - 1);
}

static uint64_t gnt_ring_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int gnt_seg_copy(struct gnt_copy_run *run, const struct lamina_ctl_gnt_copy_seg *sg, uint8_t *buf,
		 uint64_t buf_size)
{
	if ((uint32_t)sg->offset + sg->len > GMEM_PAGE_SIZE || sg->buf_offset > buf_size ||
	    sg->len > buf_size - sg->buf_offset || (sg->flags & ~LAMINA_GNT_TO_GUEST))
		return GNTST_bad_copy_arg;
	return gnttab_copy_run_buf(run, sg->ref, sg->offset, sg->len, GNT_RING_DOM0, buf + sg->buf_offset,
				   sg->flags & LAMINA_GNT_TO_GUEST);
}

static void gnt_ring_signal(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, so the reader is signalled anyway. */
	}
}

/* The ring broke its rules: stop serving it, say why in the log and in the shared state, and wake
 * the client so it sees it. Returns err. */
static int gnt_ring_break(struct gnt_ring *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int gnt_ring_break(struct gnt_ring *r, int err, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (r->cfg.log)
		hv_log(r->cfg.log, "control: grant-copy ring disconnected: %s", why);
	else
		fprintf(stderr, "grant-copy ring disconnected: %s\n", why);
	__atomic_store_n(&r->sr->error, err, __ATOMIC_RELAXED);
	__atomic_store_n(&r->sr->state, LAMINA_GNT_RING_BROKEN, __ATOMIC_RELEASE);
	atomic_store(&r->broken, true);
	gnt_ring_signal(r->done_fd);
	return err;
}

int gnt_ring_create(const struct gnt_ring_cfg *cfg, struct gnt_ring **out)
{
	uint64_t req_bytes, rsp_bytes;
	struct gnt_ring *r;
	int rc;

	if (cfg->slots < LAMINA_GNT_RING_SLOTS_MIN || cfg->slots > LAMINA_GNT_RING_SLOTS_MAX ||
	    (cfg->slots & (cfg->slots - 1)) || cfg->buf_size == 0 || cfg->buf_size % GMEM_PAGE_SIZE ||
	    cfg->buf_size > LAMINA_GNT_BUFFER_MAX || !cfg->lookup)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	if (!r->cfg.spin_ns)
		r->cfg.spin_ns = GNT_RING_SPIN_NS;
	r->memfd = r->kick_fd = r->done_fd = r->stop_fd = -1;
	req_bytes = gnt_ring_page_up((uint64_t)cfg->slots * sizeof(struct lamina_gnt_ring_req));
	rsp_bytes = gnt_ring_page_up((uint64_t)cfg->slots * sizeof(struct lamina_gnt_ring_rsp));
	r->info = (struct lamina_ctl_gnt_ring_info){
	    .slots = cfg->slots,
	    .req_off = GMEM_PAGE_SIZE,
	    .rsp_off = GMEM_PAGE_SIZE + req_bytes,
	    .buf_off = GMEM_PAGE_SIZE + req_bytes + rsp_bytes,
	    .buf_size = cfg->buf_size,
	};
	r->info.size = r->info.buf_off + cfg->buf_size;
	r->memfd = memfd_create("lamina-gnt-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	r->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->memfd < 0 || r->kick_fd < 0 || r->done_fd < 0 || r->stop_fd < 0) {
		rc = -errno;
		goto out_free;
	}
	/* Sealed at its size: the client cannot shrink it under the worker's copies. */
	if (ftruncate(r->memfd, (off_t)r->info.size) < 0 ||
	    fcntl(r->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		rc = -errno;
		goto out_free;
	}
	r->map = mmap(NULL, r->info.size, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		rc = -errno;
		goto out_free;
	}
	r->sr = r->map;
	r->req = (struct lamina_gnt_ring_req *)((uint8_t *)r->map + r->info.req_off);
	r->rsp = (struct lamina_gnt_ring_rsp *)((uint8_t *)r->map + r->info.rsp_off);
	r->buf = (uint8_t *)r->map + r->info.buf_off;
	/* Asleep from the start: the first request kicks. */
	__atomic_store_n(&r->sr->req_event, 1, __ATOMIC_RELEASE);
	*out = r;
	return 0;

out_free:
	gnt_ring_destroy(r);
	return rc;
}

/* Publishes the responses written so far and signals "done" if the client asked for it. */
static void gnt_ring_push(struct gnt_ring *r)
{
	uint32_t old = r->rsp_pushed, now = r->rsp_pvt, ev;

	if (old == now)
		return;
	__atomic_store_n(&r->sr->rsp_prod, now, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* rsp_prod visible before rsp_event is read */
	ev = __atomic_load_n(&r->sr->rsp_event, __ATOMIC_RELAXED);
	r->rsp_pushed = now;
	if ((uint32_t)(now - ev) < (uint32_t)(now - old)) {
		gnt_ring_signal(r->done_fd);
		atomic_fetch_add_explicit(&r->notifies, 1, memory_order_relaxed);
	}
}

int gnt_ring_poll(struct gnt_ring *r)
{
	const uint32_t mask = r->info.slots - 1;
	struct gnt_copy_run run = {0};
	struct grant_table *t = NULL;
	uint32_t prod, last_domid = UINT32_MAX;
	int n = 0;

	if (atomic_load(&r->broken))
		return -EPIPE;
	prod = __atomic_load_n(&r->sr->req_prod, __ATOMIC_ACQUIRE); /* read once per pass */
	if ((uint32_t)(prod - r->req_cons) > r->info.slots)
		return gnt_ring_break(r, -EOVERFLOW,
				      "request producer %u is %u past the consumer (ring of %u)", prod,
				      prod - r->req_cons, r->info.slots);
	while (r->req_cons != prod) {
		struct lamina_gnt_ring_req q;
		struct lamina_gnt_ring_rsp a = {0};

		memcpy(&q, &r->req[r->req_cons & mask], sizeof(q)); /* the only read of the slot */
		__atomic_signal_fence(__ATOMIC_SEQ_CST);	    /* q is never re-read from the ring */
		if (q.seg.domid != last_domid) {
			/* A run of one table's segments holds its lock once (gnttab_copy_run_*). */
			gnttab_copy_run_end(&run);
			if (t)
				gnttab_put(t);
			t = q.seg.domid == GNT_RING_DOM0 || q.seg.domid >= DOMID_FIRST_RESERVED
				? NULL
				: r->cfg.lookup(r->cfg.lookup_arg, q.seg.domid);
			last_domid = q.seg.domid;
			gnttab_copy_run_begin(&run, t);
		}
		a.id = q.id;
		a.status = gnt_seg_copy(&run, &q.seg, r->buf, r->info.buf_size);
		memcpy(&r->rsp[r->rsp_pvt & mask], &a, sizeof(a));
		r->req_cons++;
		r->rsp_pvt++;
		if (++n % GNT_RING_PUSH_EVERY == 0)
			gnt_ring_push(r); /* the lock stays held: pushing takes no table lock */
	}
	gnttab_copy_run_end(&run);
	if (t)
		gnttab_put(t);
	gnt_ring_push(r);
	if (n)
		atomic_fetch_add_explicit(&r->segs, (uint64_t)n, memory_order_relaxed);
	return n;
}

/* Sleeps on the kick eventfd after telling the client (req_event) that it must kick. */
static void gnt_ring_sleep(struct gnt_ring *r)
{
	struct pollfd pfd[2] = {{.fd = r->kick_fd, .events = POLLIN}, {.fd = r->stop_fd, .events = POLLIN}};
	uint64_t v;

	__atomic_store_n(&r->sr->req_event, r->req_cons + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* req_event visible before req_prod is read again */
	if (__atomic_load_n(&r->sr->req_prod, __ATOMIC_ACQUIRE) != r->req_cons || atomic_load(&r->stop))
		return;
	atomic_fetch_add_explicit(&r->sleeps, 1, memory_order_relaxed);
	while (poll(pfd, 2, -1) < 0 && errno == EINTR)
		;
	if (read(r->kick_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: another wake-up already took it */
	}
}

static void *gnt_ring_main(void *arg)
{
	struct gnt_ring *r = arg;
	uint64_t idle_since = 0;
	unsigned spins = 0;

	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		int n = gnt_ring_poll(r);

		if (n < 0)
			break; /* broken: the connection keeps its other state, this ring is done */
		if (n > 0) {
			idle_since = 0;
			continue;
		}
		__builtin_ia32_pause();
		if (++spins % 64)
			continue;
		if (!idle_since)
			idle_since = gnt_ring_now();
		else if (gnt_ring_now() - idle_since >= r->cfg.spin_ns) {
			gnt_ring_sleep(r);
			idle_since = 0;
		}
	}
	return NULL;
}

int gnt_ring_start(struct gnt_ring *r)
{
	pthread_attr_t a;
	int rc;

	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, HV_VCPU_STACK);
	rc = -pthread_create(&r->thread, &a, gnt_ring_main, r);
	pthread_attr_destroy(&a);
	if (!rc)
		r->started = true;
	return rc;
}

void gnt_ring_destroy(struct gnt_ring *r)
{
	if (!r)
		return;
	if (r->started) {
		atomic_store(&r->stop, true);
		gnt_ring_signal(r->stop_fd);
		pthread_join(r->thread, NULL);
	}
	if (r->map)
		munmap(r->map, r->info.size);
	if (r->memfd >= 0)
		close(r->memfd);
	if (r->kick_fd >= 0)
		close(r->kick_fd);
	if (r->done_fd >= 0)
		close(r->done_fd);
	if (r->stop_fd >= 0)
		close(r->stop_fd);
	free(r);
}

/* The daemon's lookup: any live domain's table through the registry Domain-0 sees. */
static struct grant_table *gnt_ring_hv_lookup(void *arg, uint32_t domid)
{
	struct hv *hv = arg;

	return hv->dom0 ? gnttab_lookup(hv->dom0, domid) : NULL;
}

int ctl_op_gnt_ring(struct ctl_server *s, struct ctl_conn *c, const struct lamina_ctl_hdr *h, const void *req,
		    void *out, size_t *out_len)
{
	struct lamina_ctl_gnt_ring_setup r;
	struct gnt_ring **slot, *ring;
	struct gnt_ring_cfg cfg;
	int fds[3], rc;

	memcpy(&r, req, sizeof(r));
	if (r.flags)
		return -EINVAL;
	if (!(slot = ctl_grant_ring_slot(s, c)))
		return -ENOMEM;
	if (*slot)
		return -EBUSY; /* one ring per connection */
	cfg = (struct gnt_ring_cfg){.slots = r.slots,
				    .buf_size = r.buf_size,
				    .lookup = gnt_ring_hv_lookup,
				    .lookup_arg = s->hv,
				    .log = &s->hv->log};
	if ((rc = gnt_ring_create(&cfg, &ring)))
		return rc;
	if ((rc = gnt_ring_start(ring))) {
		gnt_ring_destroy(ring);
		return rc;
	}
	*slot = ring;
	fds[0] = ring->memfd;
	fds[1] = ring->kick_fd;
	fds[2] = ring->done_fd;
	return ctl_reply_fds(c, h, &ring->info, sizeof(ring->info), fds, 3);
}
