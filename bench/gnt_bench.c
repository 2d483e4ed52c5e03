/* gnt-bench: the Domain-0 side of `./run bench grants`, one back-end thread against a guest running
 * app=grant-test mode=bench (N contiguous refs granted read-write). Sub-commands:
 *   copy DOMID FIRST N ITERS   grant-copy bandwidth for 4 KiB, 64 KiB and 1 MiB batches, both
 *                              directions, and memcpy of the same sizes in the same run
 *   map DOMID FIRST N ITERS    map+unmap latency per page (control round trips; and with the
 *                              back-end's mmap/munmap of the page), grant ops per second
 *   ring DOMID FIRST N ITERS   the same bandwidth figures through the shared-memory copy ring
 *                              (LAMINA_CTL_GNT_RING), memcpy of the same sizes in this run
 *   ringcheck DOMID FIRST N    checks the ring against the guest (N >= 3; ITERS is ignored)
 *   slots ITERS                the alternative design's cost, on a raw KVM VM: splitting a 64 MiB
 *                              RAM memslot around one page into a window slot and restoring it
 * Prints "RESULT key value" lines. Exit 0 ok, 1 failure, 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ctl_grant_client.h"
#include <xen/xen.h>
#include <xen/grant_table.h>

#define GB_PAGE 4096u
#define GB_MAX_PAGES LAMINA_GNT_BATCH
#define GB_DEPTH 8u /* copy requests one back-end thread keeps in flight */
#define GB_DEPTH_MAX 64u
#define GB_RING_SLOTS 4096u /* ring slots: 16 batches of 1 MiB */
#define GB_RING_DEPTH 8u

static uint64_t gb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int gb_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t gb_median(uint64_t *v, unsigned n)
{
	qsort(v, n, sizeof(*v), gb_cmp);
	return v[n / 2];
}

/* MB/s for bytes moved in ns. */
static double gb_mbps(uint64_t bytes, uint64_t ns)
{
	return ns ? (double)bytes * 1000.0 / (double)ns : 0;
}

/* memcpy of size bytes, repeated: the same work without the hypervisor, in this run. */
static double gb_memcpy_rate(size_t size, unsigned iters)
{
	uint8_t *a = malloc(size), *b = malloc(size);
	volatile uint8_t sink = 0;
	uint64_t t0, t;

	if (!a || !b)
		return 0;
	memset(a, 1, size);
	memset(b, 2, size);
	t0 = gb_now();
	for (unsigned i = 0; i < iters; i++) {
		memcpy(i & 1 ? a : b, i & 1 ? b : a, size);
		sink ^= a[i % size];
	}
	t = gb_now() - t0;
	(void)sink;
	free(a);
	free(b);
	return gb_mbps((uint64_t)size * iters, t);
}

/* rounds copy requests of n segments with up to depth of them in flight; ns taken, 0 on failure. */
static uint64_t gb_copy_run(struct ctl_conn *c, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n,
			    unsigned rounds, unsigned depth)
{
	uint32_t seq[GB_DEPTH_MAX];
	int32_t st[GB_MAX_PAGES];
	unsigned sent = 0, done = 0;
	uint64_t t0 = gb_now();

	while (done < rounds) {
		while (sent < rounds && sent - done < depth)
			if (ctl_gnt_copy_send(c, segs, n, &seq[sent++ % GB_DEPTH_MAX]))
				return 0;
		if (ctl_gnt_copy_recv(c, seq[done++ % GB_DEPTH_MAX], n, st) || st[0] != GNTST_okay ||
		    st[n - 1] != GNTST_okay) {
			fprintf(stderr, "copy failed: %s (status %d)\n", c->err, st[0]);
			return 0;
		}
	}
	return gb_now() - t0;
}

static int gb_copy(struct ctl_conn *c, uint32_t domid, uint32_t first, uint32_t n, unsigned iters)
{
	static const unsigned sizes_kib[] = {4, 64, 1024};
	struct lamina_ctl_gnt_copy_seg segs[GB_MAX_PAGES];
	uint8_t *buf;
	int err;

	err = ctl_gnt_buffer(c, (uint64_t)GB_MAX_PAGES * GB_PAGE, &buf);
	if (err) {
		fprintf(stderr, "GNT_BUFFER: %s\n", c->err);
		return 1;
	}
	memset(buf, 0x5a, (size_t)GB_MAX_PAGES * GB_PAGE);
	/* The floor of any request: a GNT_INFO round trip. */
	uint64_t *rtt = calloc(iters, sizeof(*rtt));
	struct lamina_ctl_gnt_info info;
	if (!rtt)
		return 1;
	for (unsigned i = 0; i < iters; i++) {
		uint64_t t1 = gb_now();
		if (ctl_gnt_info(c, domid, &info))
			return 1;
		rtt[i] = gb_now() - t1;
	}
	printf("RESULT ctl_rtt_ns %lu\n", (unsigned long)gb_median(rtt, iters));
	free(rtt);
	for (unsigned s = 0; s < sizeof(sizes_kib) / sizeof(sizes_kib[0]); s++) {
		unsigned segs_n = sizes_kib[s] * 1024 / GB_PAGE;
		/* Roughly the same bytes for every size: more rounds for small batches. */
		unsigned rounds = iters * (1024 / sizes_kib[s] > 64 ? 64 : 1024 / sizes_kib[s]);
		double rate[2], rate1 = 0;

		if (segs_n > n) {
			fprintf(stderr, "need %u granted pages for %u KiB batches\n", segs_n, sizes_kib[s]);
			return 1;
		}
		for (unsigned dir = 0; dir < 2; dir++) {
			uint64_t t, t0;

			for (unsigned i = 0; i < segs_n; i++)
				segs[i] =
				    (struct lamina_ctl_gnt_copy_seg){.domid = domid,
								     .ref = first + i,
								     .offset = 0,
								     .len = GB_PAGE,
								     .flags = dir ? LAMINA_GNT_TO_GUEST : 0,
								     .buf_offset = (uint64_t)i * GB_PAGE};
			if (!(t = gb_copy_run(c, segs, segs_n, rounds, GB_DEPTH)))
				return 1;
			rate[dir] = gb_mbps((uint64_t)rounds * segs_n * GB_PAGE, t);
			if (!(t0 = gb_copy_run(c, segs, segs_n, rounds, 1)))
				return 1;
			rate1 += gb_mbps((uint64_t)rounds * segs_n * GB_PAGE, t0) / 2;
		}
		printf("RESULT gnt_copy_from_guest_%uk_MBps %.0f\n", sizes_kib[s], rate[0]);
		printf("RESULT gnt_copy_to_guest_%uk_MBps %.0f\n", sizes_kib[s], rate[1]);
		printf("RESULT gnt_copy_%uk_MBps %.0f\n", sizes_kib[s], (rate[0] + rate[1]) / 2);
		printf("RESULT gnt_copy_%uk_depth1_MBps %.0f\n", sizes_kib[s], rate1);
		printf("RESULT memcpy_%uk_MBps %.0f\n", sizes_kib[s],
		       gb_memcpy_rate((size_t)sizes_kib[s] * 1024, rounds));
	}
	/* Operations per second: full batches of small copies (64 bytes each). */
	for (unsigned i = 0; i < GB_MAX_PAGES; i++)
		segs[i] = (struct lamina_ctl_gnt_copy_seg){.domid = domid,
							   .ref = first + i % n,
							   .offset = 128,
							   .len = 64,
							   .buf_offset = (uint64_t)i * 64};
	uint64_t t = gb_copy_run(c, segs, GB_MAX_PAGES, iters * 8, GB_DEPTH);
	if (!t)
		return 1;
	printf("RESULT gnt_copy_ops_per_s %.0f\n", (double)iters * 8 * GB_MAX_PAGES * 1e9 / (double)t);
	munmap(buf, (size_t)GB_MAX_PAGES * GB_PAGE);
	return 0;
}

/* Batches of n segments through the ring, up to depth batches in flight; ns taken, 0 on failure. */
static uint64_t gb_ring_run(struct ctl_gnt_ring *r, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n,
			    unsigned rounds, unsigned depth)
{
	struct lamina_gnt_ring_rsp rsp[GB_RING_SLOTS];
	uint64_t sent = 0, reaped = 0, total = (uint64_t)rounds * n, t0 = gb_now();

	while (reaped < total) {
		while (sent < total && (sent - reaped) / n < depth && ctl_gnt_ring_space(r) >= n) {
			if (ctl_gnt_ring_submit(r, segs, n, sent))
				return 0;
			sent += n;
		}
		int k = ctl_gnt_ring_reap(r, rsp, GB_RING_SLOTS);
		if (k < 0 || (k == 0 && ctl_gnt_ring_wait(r, (uint32_t)(sent - reaped + 1) / 2, 10000))) {
			fprintf(stderr, "ring copy failed (%d, ring error %d)\n", k, r->sr->error);
			return 0;
		}
		for (int i = 0; i < k; i++) {
			if (rsp[i].status != GNTST_okay || rsp[i].id != reaped + (uint64_t)i) {
				fprintf(stderr, "ring copy %lu: status %d\n", (unsigned long)rsp[i].id,
					rsp[i].status);
				return 0;
			}
		}
		reaped += (uint64_t)k;
	}
	return gb_now() - t0;
}

/* The ring's bandwidth for 4 KiB, 64 KiB and 1 MiB batches (mean of both directions, GB_RING_DEPTH
 * batches in flight, and one at a time), memcpy of the same sizes in this run, and operations/s. */
static int gb_ring(struct ctl_conn *c, uint32_t domid, uint32_t first, uint32_t n, unsigned iters)
{
	static const unsigned sizes_kib[] = {4, 64, 1024};
	struct lamina_ctl_gnt_copy_seg segs[GB_MAX_PAGES];
	struct ctl_gnt_ring r;
	uint64_t t;

	if (ctl_gnt_ring_setup(c, GB_RING_SLOTS, (uint64_t)GB_MAX_PAGES * GB_PAGE, &r)) {
		fprintf(stderr, "GNT_RING: %s\n", c->err);
		return 1;
	}
	memset(r.buf, 0x5a, r.buf_size);
	for (unsigned s = 0; s < sizeof(sizes_kib) / sizeof(sizes_kib[0]); s++) {
		unsigned segs_n = sizes_kib[s] * 1024 / GB_PAGE;
		unsigned rounds = iters * (1024 / sizes_kib[s] > 64 ? 64 : 1024 / sizes_kib[s]);
		double rate[2], rate1 = 0;

		if (segs_n > n) {
			fprintf(stderr, "need %u granted pages for %u KiB batches\n", segs_n, sizes_kib[s]);
			return 1;
		}
		for (unsigned dir = 0; dir < 2; dir++) {
			uint64_t t1;

			for (unsigned i = 0; i < segs_n; i++)
				segs[i] = (struct lamina_ctl_gnt_copy_seg){.domid = domid,
									   .ref = first + i,
									   .len = GB_PAGE,
									   .flags = dir ? LAMINA_GNT_TO_GUEST : 0,
									   .buf_offset = (uint64_t)i * GB_PAGE};
			gb_ring_run(&r, segs, segs_n, rounds / 8 + 1, GB_RING_DEPTH); /* warm-up */
			if (!(t = gb_ring_run(&r, segs, segs_n, rounds, GB_RING_DEPTH)) ||
			    !(t1 = gb_ring_run(&r, segs, segs_n, rounds, 1)))
				return 1;
			rate[dir] = gb_mbps((uint64_t)rounds * segs_n * GB_PAGE, t);
			rate1 += gb_mbps((uint64_t)rounds * segs_n * GB_PAGE, t1) / 2;
		}
		printf("RESULT ring_copy_from_guest_%uk_MBps %.0f\n", sizes_kib[s], rate[0]);
		printf("RESULT ring_copy_to_guest_%uk_MBps %.0f\n", sizes_kib[s], rate[1]);
		printf("RESULT ring_copy_%uk_MBps %.0f\n", sizes_kib[s], (rate[0] + rate[1]) / 2);
		printf("RESULT ring_copy_%uk_depth1_MBps %.0f\n", sizes_kib[s], rate1);
		printf("RESULT memcpy_%uk_MBps %.0f\n", sizes_kib[s],
		       gb_memcpy_rate((size_t)sizes_kib[s] * 1024, rounds));
	}
	for (unsigned i = 0; i < GB_MAX_PAGES; i++)
		segs[i] = (struct lamina_ctl_gnt_copy_seg){
		    .domid = domid, .ref = first + i % n, .offset = 128, .len = 64, .buf_offset = (uint64_t)i * 64};
	if (!(t = gb_ring_run(&r, segs, GB_MAX_PAGES, iters * 8, GB_RING_DEPTH)))
		return 1;
	printf("RESULT ring_copy_ops_per_s %.0f\n", (double)iters * 8 * GB_MAX_PAGES * 1e9 / (double)t);
	printf("RESULT ring_kicks %lu\n", (unsigned long)r.kicks);
	printf("RESULT ring_client_sleeps %lu\n", (unsigned long)r.sleeps);
	ctl_gnt_ring_close(&r);
	return 0;
}

/* Submits n segments and waits for their n responses (in order); 0 or -errno. */
static int gb_ring_do(struct ctl_gnt_ring *r, const struct lamina_ctl_gnt_copy_seg *segs, uint32_t n,
		      int32_t *st)
{
	struct lamina_gnt_ring_rsp rsp[16];
	uint32_t got = 0;
	uint64_t id0 = r->req_prod;
	int k;

	if ((k = ctl_gnt_ring_submit(r, segs, n, id0)))
		return k;
	while (got < n) {
		if ((k = ctl_gnt_ring_wait(r, 1, 10000)) || (k = ctl_gnt_ring_reap(r, rsp, 16)) < 0)
			return k;
		for (int i = 0; i < k; i++, got++)
			st[got] = rsp[i].id == id0 + got ? rsp[i].status : 9999;
	}
	return 0;
}

static void gb_check(unsigned *fails, int ok, const char *what)
{
	printf("  %-4s %s\n", ok ? "ok" : "FAIL", what);
	*fails += !ok;
}

/* The ring against a real guest's grants (first .. first+2), both ways, cross-checked through
 * GNT_COPY; refusals; one ring per connection; a hostile producer index disconnects only its ring. */
static int gb_ring_check(struct ctl_conn *c, uint32_t domid, uint32_t first, uint32_t n)
{
	struct lamina_ctl_gnt_copy_seg sg[8];
	struct lamina_ctl_gnt_info info;
	struct ctl_gnt_ring r, r2, r3;
	struct ctl_conn c2;
	int32_t st[8];
	unsigned fails = 0;
	uint8_t *sb;
	int err;

	if (n < 3 || ctl_gnt_ring_setup(c, 64, 65536, &r)) {
		fprintf(stderr, "GNT_RING: %s\n", c->err);
		return 1;
	}
	for (unsigned i = 0; i < 3 * GB_PAGE; i++)
		r.buf[i] = (uint8_t)(i * 13 + 7);
	memset(r.buf + 32768, 0, 3 * GB_PAGE);
	for (unsigned i = 0; i < 3; i++) /* to the guest: two whole pages and a partial one */
		sg[i] = (struct lamina_ctl_gnt_copy_seg){.domid = domid, .ref = first + i, .offset = i == 2 ? 100 : 0,
							 .len = i == 2 ? 1000 : GB_PAGE, .flags = LAMINA_GNT_TO_GUEST,
							 .buf_offset = i * GB_PAGE + (i == 2 ? 100 : 0)};
	err = gb_ring_do(&r, sg, 3, st);
	gb_check(&fails, !err && !st[0] && !st[1] && !st[2], "ring: copies to the guest, partial page");
	for (unsigned i = 0; i < 3; i++) {
		sg[i].flags = 0;
		sg[i].buf_offset += 32768;
	}
	err = gb_ring_do(&r, sg, 3, st);
	gb_check(&fails, !err && !st[0] && !st[1] && !st[2] && !memcmp(r.buf + 32768, r.buf, 2 * GB_PAGE) &&
		     !memcmp(r.buf + 32768 + 2 * GB_PAGE + 100, r.buf + 2 * GB_PAGE + 100, 1000) &&
		     r.buf[32768 + 2 * GB_PAGE + 99] == 0,
		 "ring: copies from the guest read back what was written");
	/* The same bytes through the socket path: the data is in the guest's memory. */
	if (ctl_gnt_buffer(c, GB_PAGE, &sb) == 0) {
		sg[0].buf_offset = 0;
		gb_check(&fails, ctl_gnt_copy(c, sg, 1, st) == 0 && st[0] == GNTST_okay && !memcmp(sb, r.buf, GB_PAGE),
			 "GNT_COPY sees what the ring wrote");
		munmap(sb, GB_PAGE);
	}
	sg[0] = (struct lamina_ctl_gnt_copy_seg){.domid = domid, .ref = first, .offset = 4000, .len = 97};
	sg[1] = (struct lamina_ctl_gnt_copy_seg){.domid = domid, .ref = first, .len = 16, .buf_offset = 65536 - 8};
	sg[2] = (struct lamina_ctl_gnt_copy_seg){.domid = 4000, .ref = first, .len = 16};
	sg[3] = (struct lamina_ctl_gnt_copy_seg){.domid = domid, .ref = 1u << 30, .len = 16};
	sg[4] = (struct lamina_ctl_gnt_copy_seg){.domid = domid, .ref = first, .len = 16, .flags = 0x80};
	sg[5] = (struct lamina_ctl_gnt_copy_seg){.domid = 0, .ref = first, .len = 16};
	sg[6] = (struct lamina_ctl_gnt_copy_seg){.domid = domid, .ref = first, .len = 16};
	err = gb_ring_do(&r, sg, 7, st);
	gb_check(&fails, !err && st[0] == GNTST_bad_copy_arg && st[1] == GNTST_bad_copy_arg && st[2] == GNTST_bad_domain &&
		     st[3] == GNTST_bad_gntref && st[4] == GNTST_bad_copy_arg && st[5] == GNTST_bad_domain &&
		     st[6] == GNTST_okay,
		 "ring: per-segment statuses for bad segments");
	gb_check(&fails, ctl_gnt_ring_setup(c, 64, 4096, &r2) == -EBUSY, "one ring per connection");
	gb_check(&fails, ctl_gnt_info(c, domid, &info) == 0 && info.pins == 0, "no pins left by the ring");

	/* A hostile client on another connection: its producer index runs past the ring. */
	if (ctl_connect(&c2, NULL) == 0 && ctl_gnt_ring_setup(&c2, 16, 4096, &r3) == 0) {
		uint64_t one = 1;

		__atomic_store_n(&r3.sr->req_prod, r3.req_prod + 16 + 5, __ATOMIC_RELEASE);
		if (write(r3.kick_fd, &one, sizeof(one)) < 0)
			fails++;
		r3.req_prod += 16; /* as if it had waited for that many */
		err = ctl_gnt_ring_wait(&r3, 1, 5000);
		gb_check(&fails, err == -EPIPE && r3.sr->error == -EOVERFLOW, "a hostile producer index breaks its ring");
		gb_check(&fails, ctl_gnt_info(&c2, domid, &info) == 0, "its connection still answers");
		ctl_gnt_ring_close(&r3);
		ctl_close(&c2);
	} else {
		gb_check(&fails, 0, "second connection and ring");
	}
	err = gb_ring_do(&r, sg + 6, 1, st);
	gb_check(&fails, !err && st[0] == GNTST_okay, "the other ring still serves");
	ctl_gnt_ring_close(&r);
	return fails ? 1 : 0;
}

static int gb_map(struct ctl_conn *c, uint32_t domid, uint32_t first, uint32_t n, unsigned iters)
{
	struct lamina_ctl_gnt_map_ent ents[GB_MAX_PAGES];
	struct lamina_ctl_gnt_mapped m[GB_MAX_PAGES];
	uint32_t handles[GB_MAX_PAGES];
	int32_t st[GB_MAX_PAGES];
	uint64_t *lat = calloc(iters, sizeof(*lat)), *lat_mm = calloc(iters, sizeof(*lat_mm)), t0;
	int fds[2], rwfd;

	if (!lat || !lat_mm)
		return 1;
	/* Once with descriptors: a persistent back-end keeps them, later maps ask for none. */
	ents[0] = (struct lamina_ctl_gnt_map_ent){first, 0};
	if (ctl_gnt_map(c, domid, ents, 1, 0, m, fds) || m[0].status || fds[1] < 0) {
		fprintf(stderr, "map: %s\n", c->err);
		return 1;
	}
	close(fds[0]);
	rwfd = fds[1];
	ctl_gnt_unmap(c, &m[0].handle, 1, st);
	for (unsigned i = 0; i < iters; i++) {
		ents[0].ref = first + i % n;
		t0 = gb_now();
		if (ctl_gnt_map(c, domid, ents, 1, LAMINA_GNT_MAP_NOFD, m, fds) || m[0].status)
			return 1;
		if (ctl_gnt_unmap(c, &m[0].handle, 1, st) || st[0])
			return 1;
		lat[i] = gb_now() - t0;
		t0 = gb_now();
		if (ctl_gnt_map(c, domid, ents, 1, LAMINA_GNT_MAP_NOFD, m, fds) || m[0].status)
			return 1;
		volatile uint8_t *p = ctl_gnt_mmap_page(rwfd, m[0].offset, true);
		if (!p)
			return 1;
		p[0] = p[1]; /* touch it: the fault is part of the cost */
		munmap((void *)p, GB_PAGE);
		if (ctl_gnt_unmap(c, &m[0].handle, 1, st) || st[0])
			return 1;
		lat_mm[i] = gb_now() - t0;
	}
	printf("RESULT gnt_map_unmap_ns %lu\n", (unsigned long)gb_median(lat, iters));
	printf("RESULT gnt_map_mmap_unmap_ns %lu\n", (unsigned long)gb_median(lat_mm, iters));
	/* Batched: n maps then n unmaps per round; two operations per page. */
	for (unsigned i = 0; i < n; i++)
		ents[i] = (struct lamina_ctl_gnt_map_ent){first + i, 0};
	t0 = gb_now();
	for (unsigned r = 0; r < iters / 8 + 1; r++) {
		if (ctl_gnt_map(c, domid, ents, n, LAMINA_GNT_MAP_NOFD, m, fds))
			return 1;
		for (unsigned i = 0; i < n; i++)
			handles[i] = m[i].handle;
		if (ctl_gnt_unmap(c, handles, n, st))
			return 1;
	}
	uint64_t t = gb_now() - t0;
	printf("RESULT gnt_map_batched_per_page_ns %.0f\n", (double)t / ((iters / 8 + 1) * (double)n));
	printf("RESULT gnt_map_ops_per_s %.0f\n", 2.0 * (iters / 8 + 1) * n * 1e9 / (double)t);
	close(rwfd);
	free(lat);
	free(lat_mm);
	return 0;
}

/* Option (a) of docs/design.md: per-grant windows. Each map splits the RAM slot around the page
 * (delete, then three slots: below, the window page from another memfd, above); each unmap
 * restores the single slot. No vCPU runs: this is the floor of that design. */
static int gb_slots(unsigned iters)
{
	const uint64_t ram = 64ull << 20, gpa = 32ull << 20;
	struct kvm_userspace_memory_region r[3];
	uint64_t *split = calloc(iters, sizeof(*split)), *restore = calloc(iters, sizeof(*restore)), t0;
	int kvm, vm, memfd, winfd;
	uint8_t *mem, *win;

	if (!split || !restore)
		return 1;
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		printf("SKIP: /dev/kvm: %s\n", strerror(errno));
		return 77;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	memfd = memfd_create("gb-ram", MFD_CLOEXEC);
	winfd = memfd_create("gb-window", MFD_CLOEXEC);
	if (vm < 0 || memfd < 0 || winfd < 0 || ftruncate(memfd, (off_t)ram) || ftruncate(winfd, GB_PAGE))
		return 1;
	mem = mmap(NULL, ram, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	win = mmap(NULL, GB_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, winfd, 0);
	if (mem == MAP_FAILED || win == MAP_FAILED)
		return 1;
	memset(r, 0, sizeof(r));
	r[0] = (struct kvm_userspace_memory_region){
	    .slot = 0, .memory_size = ram, .userspace_addr = (uintptr_t)mem};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r[0]) < 0)
		return 1;
	for (unsigned i = 0; i < iters; i++) {
		struct kvm_userspace_memory_region del = {.slot = 0};

		t0 = gb_now();
		memcpy(win, mem + gpa, GB_PAGE); /* the page moves into the window */
		ioctl(vm, KVM_SET_USER_MEMORY_REGION, &del);
		r[0].memory_size = gpa;
		r[1] = (struct kvm_userspace_memory_region){.slot = 1,
							    .guest_phys_addr = gpa,
							    .memory_size = GB_PAGE,
							    .userspace_addr = (uintptr_t)win};
		r[2] =
		    (struct kvm_userspace_memory_region){.slot = 2,
							 .guest_phys_addr = gpa + GB_PAGE,
							 .memory_size = ram - gpa - GB_PAGE,
							 .userspace_addr = (uintptr_t)(mem + gpa + GB_PAGE)};
		for (int k = 0; k < 3; k++)
			if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r[k]) < 0)
				return 1;
		split[i] = gb_now() - t0;
		t0 = gb_now();
		for (int k = 0; k < 3; k++) {
			struct kvm_userspace_memory_region d = {.slot = (uint32_t)k};
			ioctl(vm, KVM_SET_USER_MEMORY_REGION, &d);
		}
		memcpy(mem + gpa, win, GB_PAGE);
		r[0].memory_size = ram;
		if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r[0]) < 0)
			return 1;
		restore[i] = gb_now() - t0;
	}
	printf("RESULT slot_split_ns %lu\n", (unsigned long)gb_median(split, iters));
	printf("RESULT slot_restore_ns %lu\n", (unsigned long)gb_median(restore, iters));
	munmap(mem, ram);
	munmap(win, GB_PAGE);
	close(memfd);
	close(winfd);
	close(vm);
	close(kvm);
	free(split);
	free(restore);
	return 0;
}

static int gb_u32(const char *s, uint32_t *v)
{
	char *end;
	unsigned long x = strtoul(s, &end, 0);

	if (*s == '\0' || *end || x > UINT32_MAX)
		return -EINVAL;
	*v = (uint32_t)x;
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t domid, first, n, iters;
	struct ctl_conn c;
	int rc;

	if (argc == 3 && !strcmp(argv[1], "slots") && !gb_u32(argv[2], &iters) && iters)
		return gb_slots(iters);
	if (argc != 6 || (strcmp(argv[1], "copy") && strcmp(argv[1], "map") && strcmp(argv[1], "ring") &&
			  strcmp(argv[1], "ringcheck")) ||
	    gb_u32(argv[2], &domid) ||
	    gb_u32(argv[3], &first) || gb_u32(argv[4], &n) || gb_u32(argv[5], &iters) || !n ||
	    n > GB_MAX_PAGES || !iters) {
		fprintf(stderr, "usage: gnt-bench copy|map|ring|ringcheck DOMID FIRST N ITERS | slots ITERS\n");
		return 2;
	}
	if (ctl_connect(&c, NULL)) {
		fprintf(stderr, "gnt-bench: %s\n", c.err);
		return 1;
	}
	c.timeout_ms = 10000;
	if (!strcmp(argv[1], "copy"))
		rc = gb_copy(&c, domid, first, n, iters);
	else if (!strcmp(argv[1], "ring"))
		rc = gb_ring(&c, domid, first, n, iters);
	else if (!strcmp(argv[1], "ringcheck"))
		rc = gb_ring_check(&c, domid, first, n);
	else
		rc = gb_map(&c, domid, first, n, iters);
	ctl_close(&c);
	return rc;
}
