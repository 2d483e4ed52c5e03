/* ELF64 core files of a domain: the file layout (PT_NOTE with per-vCPU NT_PRSTATUS and Lamina
 * notes, one PT_LOAD per guest-physical range) and the sparse writer; it knows nothing of KVM. */
#ifndef LAMINA_HV_CORE_ELF_H
#define LAMINA_HV_CORE_ELF_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/user.h>

#include "lamina/abi.h"
#include "lamina/control.h"

#define CORE_ELF_PAGE 4096ull
/* Lamina's own notes: name "LAMINA" and types far from every NT_* value, because debuggers read
 * notes of unknown names by type alone (a small type would be taken for NT_PRSTATUS). */
#define CORE_ELF_NOTE_NAME "LAMINA"
#define CORE_ELF_NT_DOMAIN 0x4c4d4e01u /* struct core_note_domain, once, first */
#define CORE_ELF_NT_VCPU 0x4c4d4e02u   /* struct core_note_vcpu, after each vCPU's NT_PRSTATUS */
#define CORE_ELF_NOTE_VERSION 1
#define CORE_ELF_MAX_RANGES 128u
#define CORE_ELF_MAX_VCPUS LAMINA_MAX_VCPUS

/* core_note_vcpu.flags */
#define CORE_VCPU_REGS 0x1u   /* the registers were read (else NT_PRSTATUS holds zeros) */
#define CORE_VCPU_ONLINE 0x2u /* the guest had brought this vCPU up */

struct core_note_domain {
	uint32_t version; /* CORE_ELF_NOTE_VERSION */
	uint32_t domid;
	uint32_t state;		  /* enum lamina_domstate when the dump began */
	uint32_t shutdown_reason; /* SHUTDOWN_* from xen/sched.h, when state is shutdown or crashed */
	int32_t shutdown_code;	  /* SCHEDOP_shutdown_code value, -1 when unset */
	uint32_t nr_vcpus;
	uint64_t memory_kib;
	uint64_t dump_wall_ns; /* CLOCK_REALTIME when the dump began */
	uint8_t uuid[16];
	char name[LAMINA_NAME_MAX];
};
_Static_assert(sizeof(struct core_note_domain) == 120, "core_note_domain layout");

struct core_note_vcpu {
	uint32_t vcpu;
	uint32_t flags; /* CORE_VCPU_* */
	uint64_t cr0, cr2, cr3, cr4, efer;
};
_Static_assert(sizeof(struct core_note_vcpu) == 48, "core_note_vcpu layout");

/* One vCPU as read by the runner: general registers in the layout of NT_PRSTATUS's pr_reg. */
struct core_elf_vcpu {
	struct core_note_vcpu sys;
	struct user_regs_struct regs;
};

/* Guest-physical [gpa, gpa + len) whose bytes are at host. When fd >= 0 the same bytes are in
 * that file at fd_off, and its holes (SEEK_HOLE) are skipped without being read: reading a
 * hole of a memfd mapping would allocate it. */
struct core_elf_range {
	uint64_t gpa, len; /* page multiples */
	const uint8_t *host;
	int fd;
	uint64_t fd_off;
};

struct core_elf_input {
	struct core_note_domain dom;
	const struct core_elf_vcpu *vcpu;
	unsigned nr_vcpus;
	const struct core_elf_range *range; /* sorted by gpa, not overlapping */
	unsigned nr_ranges;
};

struct core_elf_stats {
	uint64_t file_size;  /* the core's size (its holes included) */
	uint64_t data_bytes; /* guest bytes actually written: pages not all zero */
	uint64_t ram_bytes;  /* guest bytes the PT_LOADs describe */
	unsigned nr_loads;
};

/* Writes the core into fd (a regular file open for writing, not O_APPEND) from offset 0 and
 * truncates it to the core's size; all-zero pages stay holes. 0 or -errno; stats may be NULL. */
int core_elf_write(int fd, const struct core_elf_input *in, struct core_elf_stats *stats);
/* Whether fd can take a core: a regular file open for writing, not O_APPEND. 0, -EBADF (read-only)
 * or -EINVAL. */
int core_elf_fd_check(int fd);

/* Where the PT_LOAD data of an input starts (page aligned after headers and notes). */
uint64_t core_elf_data_offset(const struct core_elf_input *in);

#endif
