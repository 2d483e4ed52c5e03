/* The PVH boot loader: validates a (hostile) ELF kernel image, copies its PT_LOAD segments into
 * guest RAM, finds XEN_ELFNOTE_PHYS32_ENTRY and builds hvm_start_info, cmdline, memmap and modlist. */
#ifndef LAMINA_HV_PVH_LOADER_H
#define LAMINA_HV_PVH_LOADER_H

#include <stddef.h>
#include <stdint.h>

struct domain;

#define PVH_MAX_PHDRS 128
#define PVH_MAX_IMAGE (256u << 20) /* largest kernel or ramdisk file read */

/* What the ELF says, checked against the file and a RAM size; nothing copied yet. */
struct pvh_elf {
	uint64_t entry;	  /* PHYS32 entry point */
	uint64_t load_lo; /* lowest byte any PT_LOAD covers */
	uint64_t load_hi; /* one past the highest */
	unsigned nr_load;
	int is64;
};

/* Where the boot landed. */
struct pvh_boot {
	uint64_t entry;
	uint64_t start_info; /* GPA of struct hvm_start_info (one reserved page) */
	uint64_t ramdisk;    /* GPA of the ramdisk, 0 if none */
	uint64_t ramdisk_size;
	uint64_t written_lo, written_hi; /* the kernel's segments and the start-info page */
};

/* Reads a whole regular file of at most max bytes into a malloc'd buffer. */
int pvh_read_file(const char *path, size_t max, uint8_t **buf, size_t *len);

/* Validates img against its length and ram_size: -ENOEXEC for anything not a loadable PVH ELF
 * (bad header, segment outside the file, no PHYS32_ENTRY note), -E2BIG for a segment outside RAM. */
int pvh_elf_check(const uint8_t *img, size_t len, uint64_t ram_size, struct pvh_elf *out);

/* Loads img (and an optional ramdisk) into d->mem, which must be zeroed RAM; builds the start
 * info from d->cfg.cmdline and sets d->memmap/nr_memmap to what the guest is told. */
int pvh_load(struct domain *d, const uint8_t *img, size_t len, const uint8_t *rd, size_t rd_len,
	     struct pvh_boot *out);

#endif
