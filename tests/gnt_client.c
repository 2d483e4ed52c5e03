/* gnt-client: the Domain-0 side of the grant end-to-end tests, driving a guest that runs
 * app=grant-test (the handshake words and patterns below are that app's). Sub-commands:
 *   probe                               exit 0 if lamina-hv serves the grant ops, 77 if not
 *   full DOMID RW RO COPY OTHER         maps, read-only refusal, wrong domain, copies both ways
 *                                       with partial pages, foreign maps, then copies while the
 *                                       guest flips the copy grant's flags
 *   hold DOMID RW RO                    maps and writes, prints "mapped", waits for a line on
 *                                       stdin (the domain is destroyed meanwhile), checks the pages
 *                                       and the accounting, unmaps
 * Exit status: 0 ok, 1 failure, 2 usage, 77 the hypervisor lacks the grant ops. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <stdint.h>
#include <unistd.h>

#include "ctl_grant_client.h"
#include <xen/xen.h>
#include <xen/grant_table.h>

#define GC_DATA_OFF 64u
#define GC_COPY_IN 3000u
#define GC_WAIT_S 30
#define GC_FLIP_COPIES 20000u

struct gc {
	struct ctl_conn conn;
	uint32_t domid;
	uint32_t ref[4]; /* rw, ro, copy, other */
	unsigned fails;
};

static void gc_check(struct gc *g, int ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("  %-4s ", ok ? "ok" : "FAIL");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	g->fails += !ok;
}

static uint8_t gc_pat(unsigned i, unsigned seed)
{
	return (uint8_t)(i * (2 * seed + 1) + seed);
}

static int gc_has(const uint8_t *p, unsigned from, unsigned to, unsigned seed)
{
	for (unsigned i = from; i < to; i++)
		if (p[i] != gc_pat(i, seed))
			return 0;
	return 1;
}

static int gc_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || end == s || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static volatile uint32_t *gc_word(uint8_t *page, unsigned which)
{
	return (volatile uint32_t *)(page + which * 4);
}

/* Waits until the guest's phase word (read through a mapping) reaches want. */
static int gc_wait_guest(uint8_t *page, uint32_t want)
{
	for (int i = 0; i < GC_WAIT_S * 1000; i++) {
		if (__atomic_load_n(gc_word(page, 1), __ATOMIC_ACQUIRE) >= want)
			return 0;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

/* One copy segment; returns the GNTST_* status or a negative -errno below -100 on transport error. */
static int gc_copy1(struct gc *g, uint32_t domid, uint32_t ref, uint16_t off, uint16_t len, uint64_t boff,
		    uint32_t flags)
{
	struct lamina_ctl_gnt_copy_seg s = {
	    .domid = domid, .ref = ref, .offset = off, .len = len, .flags = flags, .buf_offset = boff};
	int32_t st;
	int err = ctl_gnt_copy(&g->conn, &s, 1, &st);

	return err ? -1000 + err : st;
}

/* Phase 1: maps; the read-only one cannot be written; wrong domain, bad refs, bad domains. */
static int gc_phase_map(struct gc *g, uint8_t **rw, const uint8_t **ro, uint32_t handles[2])
{
	struct lamina_ctl_gnt_map_ent e[2] = {{g->ref[0], 0}, {g->ref[1], LAMINA_GNT_READONLY}};
	struct lamina_ctl_gnt_mapped m[2];
	int fds[2], err;
	void *w;

	err = ctl_gnt_map(&g->conn, g->domid, e, 2, 0, m, fds);
	if (err) {
		printf("GNT_MAP: %s\n", g->conn.err);
		return err;
	}
	gc_check(g, m[0].status == GNTST_okay && m[1].status == GNTST_okay, "map rw and ro grants (%d, %d)",
		 m[0].status, m[1].status);
	gc_check(g, fds[0] >= 0 && fds[1] >= 0, "read-only and read-write descriptors sent");
	if (m[0].status || m[1].status || fds[0] < 0 || fds[1] < 0)
		return -EIO;
	*rw = ctl_gnt_mmap_page(fds[1], m[0].offset, true);
	*ro = ctl_gnt_mmap_page(fds[0], m[1].offset, false);
	w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], (off_t)m[1].offset);
	gc_check(g, w == MAP_FAILED && errno == EACCES, "read-only descriptor refuses a writable mapping");
	if (w != MAP_FAILED)
		munmap(w, 4096);
	close(fds[0]);
	close(fds[1]);
	if (!*rw || !*ro)
		return -EIO;
	gc_check(g, mprotect((void *)*ro, 4096, PROT_READ | PROT_WRITE) < 0,
		 "read-only page cannot become writable");
	handles[0] = m[0].handle;
	handles[1] = m[1].handle;
	gc_check(g, gc_has(*rw, GC_DATA_OFF, 4096, 1) && gc_has(*ro, GC_DATA_OFF, 4096, 2),
		 "granted pages hold the guest's patterns");

	/* Refusals: writable map of the ro grant, the grant to another domain, a bad ref. */
	struct lamina_ctl_gnt_map_ent bad[3] = {
	    {g->ref[1], 0}, {g->ref[3], LAMINA_GNT_READONLY}, {100000, 0}};
	struct lamina_ctl_gnt_mapped bm[3];
	err = ctl_gnt_map(&g->conn, g->domid, bad, 3, LAMINA_GNT_MAP_NOFD, bm, fds);
	gc_check(g, err == 0 && bm[0].status == GNTST_general_error,
		 "writable map of a read-only grant refused (%d)", bm[0].status);
	gc_check(g, err == 0 && bm[1].status == GNTST_general_error, "grant to another domain refused (%d)",
		 bm[1].status);
	gc_check(g, err == 0 && bm[2].status == GNTST_bad_gntref, "bad ref refused (%d)", bm[2].status);
	gc_check(g, fds[0] < 0 && fds[1] < 0, "no descriptors with MAP_NOFD");
	err = ctl_gnt_map(&g->conn, 4000, e, 1, 0, bm, fds);
	gc_check(g, err == -ESRCH, "map of a missing domain: %d", err);

	for (unsigned i = GC_DATA_OFF; i < 4096; i++)
		(*rw)[i] = gc_pat(i, 5);
	__atomic_store_n(gc_word(*rw, 0), 1, __ATOMIC_RELEASE);
	return 0;
}

/* Phase 2: copies both ways with partial pages, refusals, foreign maps, unmap. */
static int gc_phase_copy(struct gc *g, uint8_t *rw, const uint8_t *ro, const uint32_t handles[2])
{
	struct lamina_ctl_gnt_info info;
	struct lamina_ctl_gnt_mapped fm[2];
	struct ctl_conn ts;
	uint64_t gfn[2];
	int32_t st[2];
	uint8_t *buf;
	int err, fd;

	err = ctl_gnt_buffer(&g->conn, 65536, &buf);
	if (err) {
		printf("GNT_BUFFER: %s\n", g->conn.err);
		return err;
	}
	memset(buf, 0, 65536);
	gc_check(g,
		 gc_copy1(g, g->domid, g->ref[2], 100, 1000, 8192, 0) == GNTST_okay &&
		     gc_has(buf + 8192 - 100, 100, 1100, 3),
		 "copy from a grant, partial page, into the buffer");
	for (unsigned i = GC_COPY_IN; i < 4096; i++)
		buf[i] = gc_pat(i, 6);
	gc_check(g,
		 gc_copy1(g, g->domid, g->ref[2], GC_COPY_IN, 4096 - GC_COPY_IN, GC_COPY_IN,
			  LAMINA_GNT_TO_GUEST) == GNTST_okay,
		 "copy into a grant, partial page");
	gc_check(g, gc_copy1(g, g->domid, g->ref[1], 0, 16, 0, LAMINA_GNT_TO_GUEST) == GNTST_general_error,
		 "copy into a read-only grant refused");
	gc_check(g, gc_copy1(g, g->domid, g->ref[1], 64, 16, 0, 0) == GNTST_okay,
		 "copy from a read-only grant");
	gc_check(g, gc_copy1(g, g->domid, g->ref[3], 0, 16, 0, 0) == GNTST_general_error,
		 "copy through another domain's grant refused");
	gc_check(g, gc_copy1(g, g->domid, g->ref[2], 4000, 97, 0, 0) == GNTST_bad_copy_arg,
		 "copy across the page end refused");
	gc_check(g, gc_copy1(g, g->domid, g->ref[2], 0, 16, 65536 - 8, 0) == GNTST_bad_copy_arg,
		 "copy beyond the buffer refused");
	gc_check(g, gc_copy1(g, 4000, g->ref[2], 0, 16, 0, 0) == GNTST_bad_domain,
		 "copy with a missing domain refused");
	gc_check(g, gc_has(ro, GC_DATA_OFF, 4096, 2), "read-only page still intact");

	/* Foreign maps: refused to a back-end connection, served to the toolstack's. */
	gfn[0] = 0x10;
	gfn[1] = 1ull << 30;
	err = ctl_gnt_foreign_map(&g->conn, g->domid, gfn, 1, fm, &fd);
	gc_check(g, err == -EPERM, "foreign map refused without the toolstack role (%d)", err);
	gc_check(g, ctl_gnt_toolstack(&g->conn) == -EBUSY,
		 "a connection holding maps cannot become the toolstack");
	if (ctl_connect(&ts, NULL) == 0) {
		gc_check(g, ctl_gnt_set_limits(&ts, g->domid, 32, 1024) == -EPERM,
			 "limits refused without the toolstack role");
		gc_check(g, ctl_gnt_toolstack(&ts) == 0, "toolstack role claimed");
		err = ctl_gnt_foreign_map(&ts, g->domid, gfn, 2, fm, &fd);
		gc_check(g,
			 err == 0 && fm[0].status == GNTST_okay && fm[1].status == GNTST_bad_page && fd >= 0,
			 "toolstack foreign map (%d: %d %d)", err, fm[0].status, fm[1].status);
		if (fd >= 0)
			close(fd);
		gc_check(g, ctl_gnt_set_limits(&ts, g->domid, 0, 1) == -EINVAL, "bad limits refused");
		ctl_close(&ts);
	}

	err = ctl_gnt_info(&g->conn, g->domid, &info);
	gc_check(g, err == 0 && info.conn_maps == 2 && info.pins == 2 && info.nr_frames >= 1,
		 "accounting: 2 maps, 2 pins (%u, %lu)", info.conn_maps, (unsigned long)info.pins);
	/* A back-end that goes away without unmapping: its connection's maps are undone. */
	if (ctl_connect(&ts, NULL) == 0) {
		struct lamina_ctl_gnt_map_ent e = {g->ref[2], 0};
		int fds[2];

		err = ctl_gnt_map(&ts, g->domid, &e, 1, LAMINA_GNT_MAP_NOFD, fm, fds);
		gc_check(g, err == 0 && fm[0].status == GNTST_okay, "a second back-end maps the copy grant");
		ctl_gnt_info(&g->conn, g->domid, &info);
		gc_check(g, info.pins == 3 && info.all_maps == 3, "3 pins while it holds it (%lu)",
			 (unsigned long)info.pins);
		ctl_close(&ts);
		for (int i = 0; i < 100 && ctl_gnt_info(&g->conn, g->domid, &info) == 0 && info.pins != 2;
		     i++)
			usleep(10000);
		gc_check(g, info.pins == 2 && info.all_maps == 2, "its map undone when it disconnects (%lu)",
			 (unsigned long)info.pins);
	}
	err = ctl_gnt_unmap(&g->conn, handles, 2, st);
	gc_check(g, err == 0 && st[0] == GNTST_okay && st[1] == GNTST_okay, "unmap");
	err = ctl_gnt_unmap(&g->conn, handles, 1, st);
	gc_check(g, err == 0 && st[0] == GNTST_bad_handle, "second unmap: bad handle");
	err = ctl_gnt_info(&g->conn, g->domid, &info);
	gc_check(g, err == 0 && info.conn_maps == 0 && info.pins == 0,
		 "accounting after unmap: 0 maps, 0 pins");
	munmap(rw, 4096);
	munmap((void *)ro, 4096);

	/* Tell the guest through a copy: the pages are no longer mapped. */
	*(uint32_t *)buf = 2;
	gc_check(g, gc_copy1(g, g->domid, g->ref[0], 0, 4, 0, LAMINA_GNT_TO_GUEST) == GNTST_okay,
		 "phase 2 sent by copy");
	munmap(buf, 65536);
	return 0;
}

/* Phase 3: the guest flips the copy grant's flags while we copy through it. */
static int gc_phase_flip(struct gc *g)
{
	unsigned ok = 0, failed = 0, other = 0;
	uint8_t *buf;
	int err;

	err = ctl_gnt_buffer(&g->conn, 4096, &buf);
	if (err)
		return err;
	for (int i = 0; i < GC_WAIT_S * 1000; i++) {
		if (gc_copy1(g, g->domid, g->ref[0], 4, 4, 0, 0) == GNTST_okay && *(uint32_t *)buf >= 2)
			break;
		usleep(1000);
	}
	for (unsigned i = 0; i < GC_FLIP_COPIES; i++) {
		int st = gc_copy1(g, g->domid, g->ref[2], 0, 4096, 0, i & 1 ? LAMINA_GNT_TO_GUEST : 0);

		if (st == GNTST_okay)
			ok++;
		else if (st == GNTST_general_error)
			failed++;
		else
			other++;
	}
	printf("  flips: %u copies ok, %u failed cleanly, %u other\n", ok, failed, other);
	gc_check(g, other == 0 && failed > 0, "racing copies fail cleanly (GNTST_general_error) or succeed");
	*(uint32_t *)buf = 3;
	gc_check(g, gc_copy1(g, g->domid, g->ref[0], 0, 4, 0, LAMINA_GNT_TO_GUEST) == GNTST_okay,
		 "phase 3 sent by copy");
	munmap(buf, 4096);
	return 0;
}

static int gc_full(struct gc *g)
{
	uint32_t handles[2];
	const uint8_t *ro = NULL;
	uint8_t *rw = NULL;
	int err;

	err = gc_phase_map(g, &rw, &ro, handles);
	if (err)
		return 1;
	if (gc_wait_guest(rw, 1)) {
		printf("the guest never acknowledged the maps\n");
		return 1;
	}
	gc_check(g, gc_has(ro, GC_DATA_OFF, 4096, 2), "read-only page intact after the guest's checks");
	if (gc_phase_copy(g, rw, ro, handles) || gc_phase_flip(g))
		return 1;
	return g->fails ? 1 : 0;
}

static int gc_hold(struct gc *g)
{
	struct lamina_ctl_gnt_map_ent e[2] = {{g->ref[0], 0}, {g->ref[1], LAMINA_GNT_READONLY}};
	struct lamina_ctl_gnt_mapped m[2];
	struct lamina_ctl_gnt_info info;
	uint32_t handles[2];
	int32_t st[2];
	char line[64];
	uint8_t *rw;
	int fds[2], err;

	err = ctl_gnt_map(&g->conn, g->domid, e, 2, 0, m, fds);
	if (err || m[0].status || m[1].status || fds[1] < 0) {
		printf("map failed: %d %s\n", err, g->conn.err);
		return 1;
	}
	rw = ctl_gnt_mmap_page(fds[1], m[0].offset, true);
	close(fds[0]);
	close(fds[1]); /* the mapping alone keeps the pages */
	if (!rw)
		return 1;
	handles[0] = m[0].handle;
	handles[1] = m[1].handle;
	for (unsigned i = GC_DATA_OFF; i < 4096; i++)
		rw[i] = gc_pat(i, 5);
	__atomic_store_n(gc_word(rw, 0), 1, __ATOMIC_RELEASE);
	if (gc_wait_guest(rw, 1)) {
		printf("the guest never acknowledged the maps\n");
		return 1;
	}
	printf("mapped\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	/* The domain is gone: the page is still ours, the table still accounted, until unmap. */
	gc_check(g, gc_has(rw, GC_DATA_OFF, 4096, 5), "page readable after the domain was destroyed");
	rw[GC_DATA_OFF] ^= 0xff; /* and writable: it is our mapping now */
	err = ctl_gnt_info(&g->conn, g->domid, &info);
	gc_check(g, err == -ESRCH, "the domain is gone (%d)", err);
	for (int i = 0; i < GC_WAIT_S * 100; i++) { /* the daemon tears domains down asynchronously */
		err = ctl_gnt_info(&g->conn, 0, &info);
		if (err || info.dead_maps == 2)
			break;
		usleep(10000);
	}
	gc_check(g, err == 0 && info.conn_maps == 2 && info.dead_maps == 2,
		 "maps of the dead domain accounted (%u, %u)", info.conn_maps, info.dead_maps);
	err = ctl_gnt_map(&g->conn, g->domid, e, 1, 0, m, fds);
	gc_check(g, err == -ESRCH, "no new maps of a destroyed domain (%d)", err);
	err = ctl_gnt_unmap(&g->conn, handles, 2, st);
	gc_check(g, err == 0 && st[0] == GNTST_okay && st[1] == GNTST_okay, "unmap after destruction");
	err = ctl_gnt_info(&g->conn, 0, &info);
	gc_check(g, err == 0 && info.all_maps == 0 && info.dead_maps == 0, "nothing held any more (%u, %u)",
		 info.all_maps, info.dead_maps);
	munmap(rw, 4096);
	return g->fails ? 1 : 0;
}

static int gc_probe(struct gc *g)
{
	struct lamina_ctl_gnt_info info;
	int err = ctl_gnt_info(&g->conn, 0, &info);

	if (err == -EOPNOTSUPP || err == -ENOSYS) {
		printf("lamina-hv does not serve GNT_INFO\n");
		return 77;
	}
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct gc g;
	int rc, need = 0;

	memset(&g, 0, sizeof(g));
	if (argc < 2)
		goto usage;
	if (!strcmp(argv[1], "full"))
		need = 7;
	else if (!strcmp(argv[1], "hold"))
		need = 5;
	else if (!strcmp(argv[1], "probe"))
		need = 2;
	if (!need || argc != need)
		goto usage;
	for (int i = 2; i < argc; i++)
		if (gc_u32(argv[i], i == 2 ? &g.domid : &g.ref[i - 3]))
			goto usage;
	if (ctl_connect(&g.conn, NULL)) {
		fprintf(stderr, "gnt-client: %s\n", g.conn.err);
		return 1;
	}
	g.conn.timeout_ms = 10000;
	rc = !strcmp(argv[1], "probe") ? gc_probe(&g) : !strcmp(argv[1], "full") ? gc_full(&g) : gc_hold(&g);
	printf("gnt-client %s: %s (%u failed checks)\n", argv[1], rc == 0 ? "ok" : "FAILED", g.fails);
	ctl_close(&g.conn);
	return rc;
usage:
	fprintf(stderr, "usage: gnt-client probe | full DOMID RW RO COPY OTHER | hold DOMID RW RO\n");
	return 2;
}
