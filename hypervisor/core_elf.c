/* The ELF64 core writer: header, program headers, one PT_NOTE (a Lamina domain note, then per vCPU
 * NT_PRSTATUS and a Lamina vCPU note), then each range's bytes at a page-aligned offset. Pages that
 * are all zero (or holes of the backing file) are never written, so the file stays sparse. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_elf.h"

_Static_assert(sizeof(struct user_regs_struct) == sizeof(elf_gregset_t), "pr_reg is user_regs_struct");
_Static_assert(sizeof(struct elf_prstatus) == 336, "x86-64 elf_prstatus");
_Static_assert(sizeof(Elf64_Ehdr) == 64 && sizeof(Elf64_Phdr) == 56, "ELF64 headers");

#define CORE_ELF_BATCH (1u << 20) /* bytes per pwrite of consecutive non-zero pages */

static size_t core_elf_pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

static size_t core_elf_note_size(const char *name, size_t desc)
{
	return sizeof(Elf64_Nhdr) + core_elf_pad4(strlen(name) + 1) + core_elf_pad4(desc);
}

static size_t core_elf_notes_size(const struct core_elf_input *in)
{
	return core_elf_note_size(CORE_ELF_NOTE_NAME, sizeof(struct core_note_domain)) +
	       in->nr_vcpus * (core_elf_note_size("CORE", sizeof(struct elf_prstatus)) +
			       core_elf_note_size(CORE_ELF_NOTE_NAME, sizeof(struct core_note_vcpu)));
}

uint64_t core_elf_data_offset(const struct core_elf_input *in)
{
	uint64_t end =
	    sizeof(Elf64_Ehdr) + (1ull + in->nr_ranges) * sizeof(Elf64_Phdr) + core_elf_notes_size(in);

	return (end + CORE_ELF_PAGE - 1) & ~(CORE_ELF_PAGE - 1);
}

static uint8_t *core_elf_note_put(uint8_t *p, const char *name, uint32_t type, const void *desc, size_t len)
{
	Elf64_Nhdr nh = {
	    .n_namesz = (Elf64_Word)(strlen(name) + 1), .n_descsz = (Elf64_Word)len, .n_type = type};

	memcpy(p, &nh, sizeof(nh));
	p += sizeof(nh);
	memcpy(p, name, nh.n_namesz); /* the buffer is zeroed: padding stays zero */
	p += core_elf_pad4(nh.n_namesz);
	memcpy(p, desc, len);
	return p + core_elf_pad4(len);
}

/* Validates what the caller gave: bounded counts, page-aligned ranges in order. */
static int core_elf_check(const struct core_elf_input *in)
{
	uint64_t prev_end = 0;
	unsigned i;

	if (in->nr_vcpus > CORE_ELF_MAX_VCPUS || in->nr_ranges > CORE_ELF_MAX_RANGES)
		return -E2BIG;
	if ((in->nr_vcpus && !in->vcpu) || (in->nr_ranges && !in->range))
		return -EINVAL;
	for (i = 0; i < in->nr_ranges; i++) {
		const struct core_elf_range *r = &in->range[i];
		if (!r->host || r->len == 0 || (r->gpa | r->len) % CORE_ELF_PAGE ||
		    r->gpa + r->len < r->gpa || r->gpa < prev_end)
			return -EINVAL;
		prev_end = r->gpa + r->len;
	}
	return 0;
}

/* The header block: ELF header, program headers, notes, zero-padded to the data offset. */
static int core_elf_headers(const struct core_elf_input *in, uint8_t **out, size_t *len)
{
	size_t notes = core_elf_notes_size(in), size = (size_t)core_elf_data_offset(in);
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint64_t off;
	uint8_t *buf, *p;
	unsigned i;

	buf = calloc(1, size);
	if (!buf)
		return -ENOMEM;
	memset(&eh, 0, sizeof(eh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
	eh.e_type = ET_CORE;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(eh);
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(ph);
	eh.e_phnum = (Elf64_Half)(1 + in->nr_ranges);
	memcpy(buf, &eh, sizeof(eh));
	p = buf + sizeof(eh);

	memset(&ph, 0, sizeof(ph));
	ph.p_type = PT_NOTE;
	ph.p_offset = sizeof(eh) + (1ull + in->nr_ranges) * sizeof(ph);
	ph.p_filesz = notes;
	ph.p_align = 4;
	memcpy(p, &ph, sizeof(ph));
	p += sizeof(ph);
	off = size;
	for (i = 0; i < in->nr_ranges; i++) {
		const struct core_elf_range *r = &in->range[i];
		memset(&ph, 0, sizeof(ph));
		ph.p_type = PT_LOAD;
		ph.p_flags = PF_R | PF_W | PF_X;
		ph.p_offset = off;
		ph.p_vaddr = r->gpa; /* Lamina's own kernel is identity mapped */
		ph.p_paddr = r->gpa;
		ph.p_filesz = r->len;
		ph.p_memsz = r->len;
		ph.p_align = CORE_ELF_PAGE;
		memcpy(p, &ph, sizeof(ph));
		p += sizeof(ph);
		off += r->len;
	}

	p = core_elf_note_put(p, CORE_ELF_NOTE_NAME, CORE_ELF_NT_DOMAIN, &in->dom, sizeof(in->dom));
	for (i = 0; i < in->nr_vcpus; i++) {
		const struct core_elf_vcpu *v = &in->vcpu[i];
		struct elf_prstatus pr;

		memset(&pr, 0, sizeof(pr));
		pr.pr_pid = (pid_t)(v->sys.vcpu + 1); /* debuggers take pid 0 as "no thread" */
		memcpy(&pr.pr_reg, &v->regs, sizeof(v->regs));
		pr.pr_fpvalid = 0;
		p = core_elf_note_put(p, "CORE", NT_PRSTATUS, &pr, sizeof(pr));
		p = core_elf_note_put(p, CORE_ELF_NOTE_NAME, CORE_ELF_NT_VCPU, &v->sys, sizeof(v->sys));
	}
	*out = buf;
	*len = size;
	return 0;
}

static int core_elf_pwrite(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static bool core_elf_page_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	size_t i;

	for (i = 0; i < CORE_ELF_PAGE / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

/* Writes the non-zero pages of host[0, len) at file offset off, in batches of consecutive pages. */
static int core_elf_write_pages(int fd, const uint8_t *host, uint64_t len, uint64_t off, uint64_t *written)
{
	uint64_t pos = 0, run = 0;
	int rc;

	while (pos < len) {
		bool zero = core_elf_page_zero(host + pos);
		if (!zero)
			run += CORE_ELF_PAGE;
		pos += CORE_ELF_PAGE;
		if (run && (zero || pos == len || run == CORE_ELF_BATCH)) {
			uint64_t start = pos - run - (zero ? CORE_ELF_PAGE : 0);
			rc = core_elf_pwrite(fd, host + start, (size_t)run, off + start);
			if (rc)
				return rc;
			*written += run;
			run = 0;
		}
	}
	return 0;
}

/* One range: with a backing file, only its data extents are looked at. */
static int core_elf_write_range(int fd, const struct core_elf_range *r, uint64_t off, uint64_t *written)
{
	uint64_t pos = 0;

	if (r->fd < 0)
		return core_elf_write_pages(fd, r->host, r->len, off, written);
	while (pos < r->len) {
		off_t data = lseek(r->fd, (off_t)(r->fd_off + pos), SEEK_DATA), hole;
		uint64_t start, end;
		int rc;

		if (data < 0)
			return errno == ENXIO ? 0
					      : core_elf_write_pages(fd, r->host + pos, r->len - pos,
								     off + pos, written);
		hole = lseek(r->fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = (off_t)(r->fd_off + r->len);
		start = ((uint64_t)data - r->fd_off) & ~(CORE_ELF_PAGE - 1);
		end = ((uint64_t)hole - r->fd_off + CORE_ELF_PAGE - 1) & ~(CORE_ELF_PAGE - 1);
		if (start >= r->len)
			break;
		if (end > r->len)
			end = r->len;
		if (start < pos || end <= start)
			return -EIO; /* the file moved under us */
		rc = core_elf_write_pages(fd, r->host + start, end - start, off + start, written);
		if (rc)
			return rc;
		pos = end;
	}
	return 0;
}

int core_elf_fd_check(int fd)
{
	struct stat sb;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fstat(fd, &sb) < 0)
		return -errno;
	if ((fl & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	if (!S_ISREG(sb.st_mode) || (fl & O_APPEND))
		return -EINVAL;
	return 0;
}

int core_elf_write(int fd, const struct core_elf_input *in, struct core_elf_stats *stats)
{
	struct core_elf_stats st = {0, 0, 0, 0};
	uint8_t *hdr = NULL;
	size_t hlen;
	uint64_t off;
	unsigned i;
	int rc;

	rc = core_elf_check(in);
	if (rc)
		return rc;
	rc = core_elf_fd_check(fd);
	if (rc)
		return rc;
	rc = core_elf_headers(in, &hdr, &hlen);
	if (rc)
		return rc;
	if (ftruncate(fd, 0) < 0) {
		rc = -errno;
		goto out_free;
	}
	rc = core_elf_pwrite(fd, hdr, hlen, 0);
	if (rc)
		goto out_free;
	off = hlen;
	for (i = 0; i < in->nr_ranges; i++) {
		rc = core_elf_write_range(fd, &in->range[i], off, &st.data_bytes);
		if (rc)
			goto out_free;
		off += in->range[i].len;
		st.ram_bytes += in->range[i].len;
	}
	if (ftruncate(fd, (off_t)off) < 0) { /* trailing zero pages: holes up to the full size */
		rc = -errno;
		goto out_free;
	}
	st.file_size = off;
	st.nr_loads = in->nr_ranges;
	if (stats)
		*stats = st;
out_free:
	free(hdr);
	return rc;
}
