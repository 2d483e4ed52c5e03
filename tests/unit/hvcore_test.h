/* Shared helpers for the hypervisor-core tests: a builder for small PVH ELF images (good ones
 * and hostile variants) and the tiny 32-bit guests the KVM tests boot. */
#ifndef LAMINA_TEST_HVCORE_TEST_H
#define LAMINA_TEST_HVCORE_TEST_H

#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HVT_LOAD 0x100000u   /* where the test kernels load and enter */
#define HVT_HCPAGE 0x102000u /* the hypercall page they install */
#define HVT_STACK 0x180000u
#define HVT_NOTE_OFF 0x100u
#define HVT_CODE_OFF 0x200u
#define HVT_SHDR_OFF 0x800u
#define HVT_IMAGE_MAX 0x1000u

enum hvt_note_where { HVT_NOTE_PHDR, HVT_NOTE_SHDR, HVT_NOTE_NONE };

/* An ELF64 image: one PT_LOAD of code (memsz adds bss), the PHYS32_ENTRY note where asked. */
static inline size_t hvt_elf_build(uint8_t *img, const uint8_t *code, size_t code_len, uint64_t bss,
				   enum hvt_note_where where)
{
	Elf64_Ehdr *e = (Elf64_Ehdr *)img;
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(*e));
	Elf64_Shdr *sh = (Elf64_Shdr *)(img + HVT_SHDR_OFF);
	uint32_t note[5] = {4, 4, 18 /* XEN_ELFNOTE_PHYS32_ENTRY */, 0x006e6558 /* "Xen\0" */, HVT_LOAD};

	memset(img, 0, HVT_IMAGE_MAX);
	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_ident[EI_VERSION] = EV_CURRENT;
	e->e_type = ET_EXEC;
	e->e_machine = EM_X86_64;
	e->e_version = EV_CURRENT;
	e->e_entry = HVT_LOAD;
	e->e_phoff = sizeof(*e);
	e->e_ehsize = sizeof(*e);
	e->e_phentsize = sizeof(*ph);
	e->e_phnum = where == HVT_NOTE_PHDR ? 2 : 1;
	ph[0].p_type = PT_LOAD;
	ph[0].p_offset = HVT_CODE_OFF;
	ph[0].p_paddr = ph[0].p_vaddr = HVT_LOAD;
	ph[0].p_filesz = code_len;
	ph[0].p_memsz = code_len + bss;
	ph[0].p_flags = PF_R | PF_X | PF_W;
	memcpy(img + HVT_NOTE_OFF, note, sizeof(note));
	if (where == HVT_NOTE_PHDR) {
		ph[1].p_type = PT_NOTE;
		ph[1].p_offset = HVT_NOTE_OFF;
		ph[1].p_filesz = ph[1].p_memsz = sizeof(note);
	} else if (where == HVT_NOTE_SHDR) {
		e->e_shoff = HVT_SHDR_OFF;
		e->e_shentsize = sizeof(*sh);
		e->e_shnum = 2;
		sh[1].sh_type = SHT_NOTE;
		sh[1].sh_offset = HVT_NOTE_OFF;
		sh[1].sh_size = sizeof(note);
	}
	memcpy(img + HVT_CODE_OFF, code, code_len);
	return where == HVT_NOTE_SHDR ? HVT_SHDR_OFF + 2 * sizeof(*sh) : HVT_CODE_OFF + code_len;
}

/* 32-bit guest: install the hypercall page, print "OK" on port 0xe9, one null exit on
 * LAMINA_PORT_NULL, check that an unbacked port reads all-ones, then SCHEDOP_shutdown(reason)
 * through the page's sched_op stub (a failed check or a returning shutdown ends in a triple fault). */
static inline size_t hvt_code_hello(uint8_t *c, uint32_t reason)
{
	size_t n = 0;
	uint32_t v;
#define HVT_B(x) (c[n++] = (uint8_t)(x))
#define HVT_D(x) (v = (uint32_t)(x), memcpy(c + n, &v, 4), n += 4)
	HVT_B(0xbc), HVT_D(HVT_STACK);					/* mov esp, STACK */
	HVT_B(0xb9), HVT_D(0x40000000u);				/* mov ecx, hypercall MSR */
	HVT_B(0xb8), HVT_D(HVT_HCPAGE);					/* mov eax, page */
	HVT_B(0x31), HVT_B(0xd2);					/* xor edx, edx */
	HVT_B(0x0f), HVT_B(0x30);					/* wrmsr */
	HVT_B(0xb0), HVT_B('O'), HVT_B(0xe6), HVT_B(0xe9);		/* out 0xe9, 'O' */
	HVT_B(0xb0), HVT_B('K'), HVT_B(0xe6), HVT_B(0xe9);		/* out 0xe9, 'K' */
	HVT_B(0xe6), HVT_B(0x5d);					/* out LAMINA_PORT_NULL, al */
	HVT_B(0xe4), HVT_B(0x70);					/* in al, 0x70: reads all-ones */
	HVT_B(0x3c), HVT_B(0xff);					/* cmp al, 0xff */
	HVT_B(0x75), HVT_B(0x1b);					/* jne fail (skips the shutdown) */
	HVT_B(0xc7), HVT_B(0x05), HVT_D(HVT_STACK + 16), HVT_D(reason); /* mov [STACK+16], reason */
	HVT_B(0xbf), HVT_D(2);						/* mov edi, SCHEDOP_shutdown */
	HVT_B(0xbe), HVT_D(HVT_STACK + 16);				/* mov esi, &reason */
	HVT_B(0xb8), HVT_D(HVT_HCPAGE + 29 * 32);			/* mov eax, sched_op stub */
	HVT_B(0xff), HVT_B(0xd0);					/* call eax */
	HVT_B(0x0f), HVT_B(0x0b);					/* fail: ud2 (no IDT: triple fault) */
#undef HVT_B
#undef HVT_D
	return n;
}

/* 32-bit guest that installs the hypercall page, prints "B" and then sleeps in SCHEDOP_block for
 * ever: an idle domain. */
static inline size_t hvt_code_block(uint8_t *c)
{
	size_t n = 0;
	uint32_t v;
#define HVT_B(x) (c[n++] = (uint8_t)(x))
#define HVT_D(x) (v = (uint32_t)(x), memcpy(c + n, &v, 4), n += 4)
	HVT_B(0xbc), HVT_D(HVT_STACK);			   /* mov esp, STACK */
	HVT_B(0xb9), HVT_D(0x40000000u);		   /* mov ecx, hypercall MSR */
	HVT_B(0xb8), HVT_D(HVT_HCPAGE);			   /* mov eax, page */
	HVT_B(0x31), HVT_B(0xd2);			   /* xor edx, edx */
	HVT_B(0x0f), HVT_B(0x30);			   /* wrmsr */
	HVT_B(0xb0), HVT_B('B'), HVT_B(0xe6), HVT_B(0xe9); /* out 0xe9, 'B' */
	HVT_B(0xbf), HVT_D(1);				   /* 1: mov edi, SCHEDOP_block */
	HVT_B(0x31), HVT_B(0xf6);			   /* xor esi, esi */
	HVT_B(0xb8), HVT_D(HVT_HCPAGE + 29 * 32);	   /* mov eax, sched_op stub */
	HVT_B(0xff), HVT_B(0xd0);			   /* call eax */
	HVT_B(0xeb), HVT_B(0xf0);			   /* jmp 1b */
#undef HVT_B
#undef HVT_D
	return n;
}

/* 32-bit guest that triple-faults at once. */
static inline size_t hvt_code_crash(uint8_t *c)
{
	c[0] = 0x0f, c[1] = 0x0b; /* ud2 with no IDT */
	return 2;
}

/* 32-bit guest that spins for ever (pause; jmp). */
static inline size_t hvt_code_spin(uint8_t *c)
{
	c[0] = 0xf3, c[1] = 0x90, c[2] = 0xeb, c[3] = 0xfc;
	return 4;
}

/* Writes an image to a fresh file under dir; returns 0 and the path. */
static inline int hvt_write_file(const char *dir, const char *name, const uint8_t *img, size_t len,
				 char *path, size_t cap)
{
	FILE *f;

	snprintf(path, cap, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return -1;
	if (fwrite(img, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	return fclose(f) ? -1 : 0;
}

#endif
