/* PVH ELF loading. The image is hostile: every header, offset and size is checked against the
 * file length and guest RAM before it is used, with overflow-safe arithmetic. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domain.h"
#include "pvh_loader.h"
#include <xen/elfnote.h>

/* One program or section header, widened to 64 bits whatever the ELF class. */
struct pvh_seg {
	uint32_t type;
	uint64_t offset, filesz, memsz, paddr;
};

#define PVH_PAGE 4096ull
#define PVH_SI_CMDLINE 0x400 /* offsets inside the start-info page */
#define PVH_SI_MODLIST 0x100
#define PVH_SI_MEMMAP 0x200

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info v1 is 56 bytes");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry is 32 bytes");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry is 24 bytes");
_Static_assert(PVH_SI_MEMMAP + DOMAIN_MAX_MEMMAP * 24 <= PVH_SI_CMDLINE, "memmap fits");
_Static_assert(PVH_SI_CMDLINE + LAMINA_CMDLINE_MAX <= PVH_PAGE, "cmdline fits");

int pvh_read_file(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	struct stat st;
	uint8_t *b = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, err;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto out_close;
	}
	if ((uint64_t)st.st_size > max) {
		err = -E2BIG;
		goto out_close;
	}
	b = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!b) {
		err = -ENOMEM;
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, b + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO; /* shrank under us */
			goto out_free;
		}
		got += (size_t)n;
	}
	close(fd);
	*buf = b;
	*len = got;
	return 0;

out_free:
	free(b);
out_close:
	close(fd);
	return err;
}

/* [off, off+size) lies inside [0, limit). */
static int pvh_in_range(uint64_t off, uint64_t size, uint64_t limit)
{
	return off <= limit && size <= limit - off;
}

static void pvh_seg_from(const uint8_t *p, int is64, int section, struct pvh_seg *s)
{
	if (is64 && !section) {
		Elf64_Phdr h;
		memcpy(&h, p, sizeof(h));
		*s = (struct pvh_seg){h.p_type, h.p_offset, h.p_filesz, h.p_memsz, h.p_paddr};
	} else if (!section) {
		Elf32_Phdr h;
		memcpy(&h, p, sizeof(h));
		*s = (struct pvh_seg){h.p_type, h.p_offset, h.p_filesz, h.p_memsz, h.p_paddr};
	} else if (is64) {
		Elf64_Shdr h;
		memcpy(&h, p, sizeof(h));
		*s = (struct pvh_seg){h.sh_type, h.sh_offset, h.sh_size, h.sh_size, 0};
	} else {
		Elf32_Shdr h;
		memcpy(&h, p, sizeof(h));
		*s = (struct pvh_seg){h.sh_type, h.sh_offset, h.sh_size, h.sh_size, 0};
	}
}

/* Looks through one note area (already checked to lie inside the file) for the Xen
 * PHYS32_ENTRY note. 0 and *entry set when found, -ENOENT when not, -ENOEXEC when malformed. */
static int pvh_scan_notes(const uint8_t *p, uint64_t size, uint64_t *entry)
{
	uint64_t pos = 0, name_at, desc_at, namesz, descsz;
	uint32_t w[3];

	while (size - pos >= 12) {
		memcpy(w, p + pos, 12);
		namesz = w[0];
		descsz = w[1];
		name_at = pos + 12;
		desc_at = name_at + ((namesz + 3) & ~3ull);
		/* The last note may omit its trailing padding. */
		if (desc_at > size || descsz > size - desc_at)
			return -ENOEXEC;
		if (namesz == 4 && !memcmp(p + name_at, "Xen", 4) && w[2] == XEN_ELFNOTE_PHYS32_ENTRY) {
			uint32_t e32;
			uint64_t e64;
			if (descsz == 4) {
				memcpy(&e32, p + desc_at, 4);
				*entry = e32;
			} else if (descsz == 8) {
				memcpy(&e64, p + desc_at, 8);
				*entry = e64;
			} else {
				return -ENOEXEC;
			}
			return 0;
		}
		pos = desc_at + ((descsz + 3) & ~3ull);
		if (pos > size)
			break;
	}
	return -ENOENT;
}

/* Walks a header table (program or section headers) that was bounds-checked by the caller. */
static int pvh_notes_in_table(const uint8_t *img, size_t len, uint64_t off, unsigned n, size_t ent, int is64,
			      int section, uint64_t *entry)
{
	struct pvh_seg s;
	unsigned i;
	int rc;

	for (i = 0; i < n; i++) {
		pvh_seg_from(img + off + (uint64_t)i * ent, is64, section, &s);
		if (s.type != (section ? SHT_NOTE : PT_NOTE))
			continue;
		if (!pvh_in_range(s.offset, s.filesz, len))
			return -ENOEXEC;
		rc = pvh_scan_notes(img + s.offset, s.filesz, entry);
		if (rc != -ENOENT)
			return rc;
	}
	return -ENOENT;
}

int pvh_elf_check(const uint8_t *img, size_t len, uint64_t ram_size, struct pvh_elf *out)
{
	uint64_t phoff, shoff, lo = UINT64_MAX, hi = 0, entry = 0;
	unsigned phnum, shnum, i, nload = 0;
	size_t phent, shent;
	struct pvh_seg s;
	int is64, rc;

	memset(out, 0, sizeof(*out));
	if (len < EI_NIDENT || memcmp(img, ELFMAG, SELFMAG))
		return -ENOEXEC;
	if (img[EI_DATA] != ELFDATA2LSB || img[EI_VERSION] != EV_CURRENT)
		return -ENOEXEC;
	if (img[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr e;
		if (len < sizeof(e))
			return -ENOEXEC;
		memcpy(&e, img, sizeof(e));
		if (e.e_machine != EM_X86_64 || e.e_type != ET_EXEC)
			return -ENOEXEC;
		phoff = e.e_phoff, phnum = e.e_phnum, phent = e.e_phentsize;
		shoff = e.e_shoff, shnum = e.e_shnum, shent = e.e_shentsize;
		is64 = 1;
	} else if (img[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr e;
		if (len < sizeof(e))
			return -ENOEXEC;
		memcpy(&e, img, sizeof(e));
		if ((e.e_machine != EM_386 && e.e_machine != EM_X86_64) || e.e_type != ET_EXEC)
			return -ENOEXEC;
		phoff = e.e_phoff, phnum = e.e_phnum, phent = e.e_phentsize;
		shoff = e.e_shoff, shnum = e.e_shnum, shent = e.e_shentsize;
		is64 = 0;
	} else {
		return -ENOEXEC;
	}
	if (phnum == 0 || phnum > PVH_MAX_PHDRS || phent != (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)))
		return -ENOEXEC;
	if (!pvh_in_range(phoff, (uint64_t)phnum * phent, len))
		return -ENOEXEC;
	for (i = 0; i < phnum; i++) {
		pvh_seg_from(img + phoff + (uint64_t)i * phent, is64, 0, &s);
		if (s.type != PT_LOAD || s.memsz == 0)
			continue;
		if (s.filesz > s.memsz || !pvh_in_range(s.offset, s.filesz, len))
			return -ENOEXEC;
		if (!pvh_in_range(s.paddr, s.memsz, ram_size))
			return -E2BIG;
		if (s.paddr < lo)
			lo = s.paddr;
		if (s.paddr + s.memsz > hi)
			hi = s.paddr + s.memsz;
		nload++;
	}
	if (nload == 0)
		return -ENOEXEC;
	rc = pvh_notes_in_table(img, len, phoff, phnum, phent, is64, 0, &entry);
	if (rc == -ENOENT && shoff && shnum) {
		if (shent != (is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)) ||
		    !pvh_in_range(shoff, (uint64_t)shnum * shent, len))
			return -ENOEXEC;
		rc = pvh_notes_in_table(img, len, shoff, shnum, shent, is64, 1, &entry);
	}
	if (rc < 0)
		return -ENOEXEC; /* no PHYS32_ENTRY: not a PVH kernel */
	if (entry < lo || entry >= hi)
		return -ENOEXEC; /* the entry must be inside what is loaded */
	out->entry = entry;
	out->load_lo = lo;
	out->load_hi = hi;
	out->nr_load = nload;
	out->is64 = is64;
	return 0;
}

/* Tells the guest: RAM everywhere except the start-info page, which is reserved, and the
 * special-page region right after RAM (console and xenstore rings), reserved too. */
static void pvh_build_memmap(struct domain *d, uint64_t si)
{
	uint64_t ram = d->mem.ram_size;
	unsigned n = 0;

	if (si > 0)
		d->memmap[n++] = (struct hvm_memmap_table_entry){0, si, XEN_HVM_MEMMAP_TYPE_RAM, 0};
	d->memmap[n++] = (struct hvm_memmap_table_entry){si, PVH_PAGE, XEN_HVM_MEMMAP_TYPE_RESERVED, 0};
	if (si + PVH_PAGE < ram)
		d->memmap[n++] = (struct hvm_memmap_table_entry){si + PVH_PAGE, ram - si - PVH_PAGE,
								 XEN_HVM_MEMMAP_TYPE_RAM, 0};
	d->memmap[n++] = (struct hvm_memmap_table_entry){ram, LAMINA_SPECIAL_COUNT * PVH_PAGE,
							 XEN_HVM_MEMMAP_TYPE_RESERVED, 0};
	d->nr_memmap = n;
}

/* Picks the start-info page: just above the kernel if it fits below the ramdisk, else just
 * below the kernel (never page 0). 0 when neither fits. */
static uint64_t pvh_place_si(const struct pvh_elf *e, uint64_t ceiling)
{
	uint64_t above = (e->load_hi + PVH_PAGE - 1) & ~(PVH_PAGE - 1);
	uint64_t below = e->load_lo & ~(PVH_PAGE - 1);

	if (above >= e->load_hi && above + PVH_PAGE <= ceiling)
		return above;
	if (below >= 2 * PVH_PAGE)
		return below - PVH_PAGE;
	return 0;
}

int pvh_load(struct domain *d, const uint8_t *img, size_t len, const uint8_t *rd, size_t rd_len,
	     struct pvh_boot *out)
{
	uint64_t ram = d->mem.ram_size, ceiling = ram, si, rd_at = 0, phoff;
	struct hvm_start_info info;
	struct hvm_modlist_entry mod;
	struct pvh_elf e;
	struct pvh_seg s;
	size_t phent, cl;
	unsigned i, phnum;
	uint8_t *page;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = pvh_elf_check(img, len, ram, &e);
	if (rc < 0)
		return rc;
	if (rd && rd_len) {
		if (rd_len > ram)
			return -E2BIG;
		rd_at = (ram - rd_len) & ~(PVH_PAGE - 1);
		if (rd_at < e.load_hi)
			return -E2BIG; /* ramdisk would overlap the kernel */
		ceiling = rd_at;
	}
	si = pvh_place_si(&e, ceiling);
	if (si == 0)
		return -E2BIG;

	/* Copy the segments; the header table was checked by pvh_elf_check. */
	if (e.is64) {
		Elf64_Ehdr h;
		memcpy(&h, img, sizeof(h));
		phoff = h.e_phoff, phnum = h.e_phnum, phent = sizeof(Elf64_Phdr);
	} else {
		Elf32_Ehdr h;
		memcpy(&h, img, sizeof(h));
		phoff = h.e_phoff, phnum = h.e_phnum, phent = sizeof(Elf32_Phdr);
	}
	for (i = 0; i < phnum; i++) {
		pvh_seg_from(img + phoff + (uint64_t)i * phent, e.is64, 0, &s);
		if (s.type != PT_LOAD || s.memsz == 0)
			continue;
		memcpy(d->mem.ram + s.paddr, img + s.offset, s.filesz);
		memset(d->mem.ram + s.paddr + s.filesz, 0, s.memsz - s.filesz);
	}
	if (rd_at) {
		memcpy(d->mem.ram + rd_at, rd, rd_len);
		out->ramdisk = rd_at;
		out->ramdisk_size = rd_len;
	}

	pvh_build_memmap(d, si);
	page = d->mem.ram + si;
	memset(page, 0, PVH_PAGE);
	cl = strnlen(d->cfg.cmdline, LAMINA_CMDLINE_MAX - 1);
	memcpy(page + PVH_SI_CMDLINE, d->cfg.cmdline, cl);
	memcpy(page + PVH_SI_MEMMAP, d->memmap, d->nr_memmap * sizeof(d->memmap[0]));
	memset(&info, 0, sizeof(info));
	info.magic = XEN_HVM_START_MAGIC_VALUE;
	info.version = 1;
	info.cmdline_paddr = si + PVH_SI_CMDLINE;
	info.memmap_paddr = si + PVH_SI_MEMMAP;
	info.memmap_entries = d->nr_memmap;
	info.rsdp_paddr = 0;
	if (rd_at) {
		memset(&mod, 0, sizeof(mod));
		mod.paddr = rd_at;
		mod.size = rd_len;
		memcpy(page + PVH_SI_MODLIST, &mod, sizeof(mod));
		info.nr_modules = 1;
		info.modlist_paddr = si + PVH_SI_MODLIST;
	}
	memcpy(page, &info, sizeof(info));
	out->entry = e.entry;
	out->start_info = si;
	out->written_lo = e.load_lo < si ? e.load_lo : si;
	out->written_hi = e.load_hi > si + PVH_PAGE ? e.load_hi : si + PVH_PAGE;
	return 0;
}
