/* Core dumps of a domain: what goes into one (its RAM, the hypervisor pages it sees, every vCPU's
 * registers, who it is and why it stopped), taken with the vCPUs held still: a running domain is
 * paused for the dump and resumed after. Used by the coredump-* actions and LAMINA_CTL_DUMP_CORE. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_elf.h"
#include "hv.h"

/* Guest-physical ranges: RAM, then the extra hypervisor pages by frame, neighbours merged when
 * they are contiguous in the guest, in the daemon and in their backing file. */
struct hv_core_ranges {
	struct core_elf_range r[1 + GMEM_MAX_EXTRA];
	unsigned n;
};

static void hv_core_add(struct hv_core_ranges *rs, uint64_t gpa, const uint8_t *host, int fd, uint64_t fd_off)
{
	struct core_elf_range *p = rs->n ? &rs->r[rs->n - 1] : NULL;

	if (p && p->gpa + p->len == gpa && p->host + p->len == host && p->fd == fd &&
	    (fd < 0 || p->fd_off + p->len == fd_off)) {
		p->len += GMEM_PAGE_SIZE;
		return;
	}
	rs->r[rs->n++] = (struct core_elf_range){gpa, GMEM_PAGE_SIZE, host, fd, fd_off};
}

static void hv_core_ranges(struct domain *d, struct hv_core_ranges *rs)
{
	struct gmem_extra ex[GMEM_MAX_EXTRA];
	unsigned i, j, n = d->mem.nr_extra < GMEM_MAX_EXTRA ? d->mem.nr_extra : GMEM_MAX_EXTRA;

	rs->n = 0;
	if (d->mem.ram && d->mem.ram_size)
		rs->r[rs->n++] = (struct core_elf_range){0, d->mem.ram_size, d->mem.ram, d->mem.memfd, 0};
	memcpy(ex, d->mem.extra, n * sizeof(ex[0]));
	for (i = 1; i < n; i++) /* insertion sort by frame: a few dozen entries at most */
		for (j = i; j > 0 && ex[j - 1].gfn > ex[j].gfn; j--) {
			struct gmem_extra t = ex[j];
			ex[j] = ex[j - 1];
			ex[j - 1] = t;
		}
	for (i = 0; i < n; i++) {
		const uint8_t *page = ex[i].page;
		uint64_t gpa = ex[i].gfn * GMEM_PAGE_SIZE;
		bool special = d->special && page >= d->special &&
			       page < d->special + LAMINA_SPECIAL_COUNT * GMEM_PAGE_SIZE;

		if (!page || gpa < d->mem.ram_size || (i && ex[i].gfn == ex[i - 1].gfn))
			continue;
		hv_core_add(rs, gpa, page, special ? d->special_fd : -1,
			    special ? (uint64_t)(page - d->special) : 0);
	}
}

/* Registers of every vCPU; one that does not hold still within the runner's bound fails the dump. */
static int hv_core_vcpus(struct hv_domain *hd, struct core_elf_vcpu *out)
{
	struct domain *d = &hd->d;
	unsigned i;
	int rc;

	for (i = 0; i < d->nr_vcpus; i++) {
		struct vcpu *v = d->vcpu[i];

		memset(&out[i], 0, sizeof(out[i]));
		out[i].sys.vcpu = i;
		if (!v)
			continue;
		if (v->online)
			out[i].sys.flags |= CORE_VCPU_ONLINE;
		if (!hd->hv->rops->vcpu_regs || !v->runner)
			continue;
		rc = hd->hv->rops->vcpu_regs(v, &out[i]);
		if (rc == -EBUSY)
			return rc;
		if (rc == -ENODATA)
			continue; /* never brought up: no registers, NT_PRSTATUS stays zero */
		if (rc < 0)
			hv_log(&hd->hv->log, "dom%u %s: core dump: vcpu%u registers: %s", d->domid,
			       d->cfg.name, i, strerror(-rc));
	}
	return 0;
}

int hv_domain_dump_core(struct hv_domain *hd, int fd, struct lamina_ctl_dump_core_reply *rep)
{
	struct domain *d = &hd->d;
	struct core_elf_input in;
	struct core_elf_stats st;
	struct hv_core_ranges *rs = NULL;
	struct core_elf_vcpu *vc = NULL;
	uint64_t t0 = domain_mono_ns();
	struct timespec now;
	bool paused = false;
	int rc;

	memset(&in, 0, sizeof(in));
	pthread_mutex_lock(&d->lock);
	in.dom.state = d->state;
	in.dom.shutdown_reason = d->shutdown_reason;
	in.dom.shutdown_code = d->shutdown_code;
	pthread_mutex_unlock(&d->lock);
	if (in.dom.state == LAMINA_DOM_DYING || in.dom.state == LAMINA_DOM_DEAD || !d->mem.ram)
		return -ESRCH;
	if (in.dom.state == LAMINA_DOM_RUNNING) {
		rc = hv_domain_pause(hd, true);
		if (rc < 0)
			return rc;
		paused = true;
	}
	rs = malloc(sizeof(*rs));
	vc = calloc(d->nr_vcpus ? d->nr_vcpus : 1, sizeof(*vc));
	if (!rs || !vc) {
		rc = -ENOMEM;
		goto out_resume;
	}
	rc = hv_core_vcpus(hd, vc);
	if (rc < 0)
		goto out_resume;
	hv_core_ranges(d, rs);
	clock_gettime(CLOCK_REALTIME, &now);
	in.dom.version = CORE_ELF_NOTE_VERSION;
	in.dom.domid = d->domid;
	in.dom.nr_vcpus = d->nr_vcpus;
	in.dom.memory_kib = d->cfg.memory_kib;
	in.dom.dump_wall_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	memcpy(in.dom.uuid, d->cfg.uuid, sizeof(in.dom.uuid));
	memcpy(in.dom.name, d->cfg.name, sizeof(in.dom.name));
	in.dom.name[sizeof(in.dom.name) - 1] = '\0';
	in.vcpu = vc;
	in.nr_vcpus = d->nr_vcpus;
	in.range = rs->r;
	in.nr_ranges = rs->n;
	rc = core_elf_write(fd, &in, &st);
	if (rc == 0 && rep) {
		memset(rep, 0, sizeof(*rep));
		rep->file_size = st.file_size;
		rep->data_bytes = st.data_bytes;
		rep->ram_bytes = st.ram_bytes;
		rep->nr_vcpus = d->nr_vcpus;
		rep->nr_loads = st.nr_loads;
		rep->elapsed_ns = domain_mono_ns() - t0;
	}
	if (rc == 0)
		hv_log(&hd->hv->log,
		       "dom%u %s: core dump: %llu KiB of guest memory described, %llu KiB written, %u vCPUs, "
		       "%llu us",
		       d->domid, d->cfg.name, (unsigned long long)(st.ram_bytes >> 10),
		       (unsigned long long)(st.data_bytes >> 10), d->nr_vcpus,
		       (unsigned long long)((domain_mono_ns() - t0) / 1000));
out_resume:
	if (paused)
		hv_domain_pause(hd, false); /* it may have stopped meanwhile: then there is nothing to do */
	free(vc);
	free(rs);
	return rc;
}

/* Written under a temporary name and renamed into place, so a reader (or a restart loop
 * dumping again) never sees a half-written core under the final name. */
int hv_domain_coredump(struct hv_domain *hd)
{
	struct domain *d = &hd->d;
	char path[PATH_MAX + 128], tmp[PATH_MAX + 160];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/dump", hd->hv->rundir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(path, sizeof(path), "%s/dump/%.*s.%u.core", hd->hv->rundir, LAMINA_NAME_MAX,
			     d->cfg.name, d->domid) >= sizeof(path))
		return -ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%s/dump/.%.*s.%u.core.XXXXXX", hd->hv->rundir, LAMINA_NAME_MAX,
		 d->cfg.name, d->domid);
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600, created exclusively */
	if (fd < 0) {
		rc = -errno;
		goto out_log;
	}
	rc = hv_domain_dump_core(hd, fd, NULL);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
out_log:
	hv_log(&hd->hv->log, "dom%u %s: core dump %s: %s", d->domid, d->cfg.name, path,
	       rc ? strerror(-rc) : "written");
	return rc;
}
