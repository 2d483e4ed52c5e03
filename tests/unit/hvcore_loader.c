/* The PVH loader against crafted and hostile ELF images: truncated headers, segments outside
 * the file or RAM, overflowing sizes, missing or malformed entry notes, notes only in sections,
 * and random corruption of a good image (must fail cleanly or load inside RAM). */
#include <errno.h>

#include <CUnit/Basic.h>

#include "domain.h"
#include "hvcore_test.h"
#include "pvh_loader.h"

#define RAM (4ull << 20)

static struct domain g_d;
static uint8_t g_img[HVT_IMAGE_MAX];
static size_t g_len;

static int setup(void)
{
	memset(&g_d, 0, sizeof(g_d));
	if (gmem_init(&g_d.mem, "loader-test", RAM) < 0)
		return -1;
	snprintf(g_d.cfg.cmdline, sizeof(g_d.cfg.cmdline), "app=hello console=hvc0");
	return 0;
}

static int teardown(void)
{
	gmem_fini(&g_d.mem);
	return 0;
}

static void good_image(enum hvt_note_where where)
{
	uint8_t code[256];
	size_t n = hvt_code_hello(code, 0);

	g_len = hvt_elf_build(g_img, code, n, 0x1000, where);
}

static Elf64_Phdr *phdr(unsigned i)
{
	return (Elf64_Phdr *)(g_img + sizeof(Elf64_Ehdr)) + i;
}

static int load(void)
{
	struct pvh_boot b;

	memset(g_d.mem.ram, 0xaa, RAM);
	return pvh_load(&g_d, g_img, g_len, NULL, 0, &b);
}

static void test_good_phdr_note(void)
{
	struct hvm_start_info si;
	struct hvm_memmap_table_entry mm[DOMAIN_MAX_MEMMAP];
	struct pvh_boot b;
	uint64_t total = 0;
	unsigned i;

	good_image(HVT_NOTE_PHDR);
	memset(g_d.mem.ram, 0xaa, RAM);
	CU_ASSERT_FATAL(pvh_load(&g_d, g_img, g_len, NULL, 0, &b) == 0);
	CU_ASSERT_EQUAL(b.entry, HVT_LOAD);
	CU_ASSERT(b.start_info % 4096 == 0 && b.start_info + 4096 <= RAM);
	CU_ASSERT(b.start_info >= HVT_LOAD + phdr(0)->p_memsz || b.start_info + 4096 <= HVT_LOAD);
	/* what the boot wrote: the segment and the start-info page, nothing beyond them */
	CU_ASSERT(b.written_lo <= HVT_LOAD && b.written_lo <= b.start_info);
	CU_ASSERT(b.written_hi >= HVT_LOAD + phdr(0)->p_memsz && b.written_hi >= b.start_info + 4096);
	CU_ASSERT_EQUAL(b.written_hi - b.written_lo,
			(b.start_info > HVT_LOAD ? b.start_info + 4096 : HVT_LOAD + phdr(0)->p_memsz) -
			    (b.start_info > HVT_LOAD ? HVT_LOAD : b.start_info));
	CU_ASSERT(memcmp(g_d.mem.ram + HVT_LOAD, g_img + HVT_CODE_OFF, phdr(0)->p_filesz) == 0);
	CU_ASSERT_EQUAL(g_d.mem.ram[HVT_LOAD + phdr(0)->p_filesz], 0); /* bss zeroed */
	CU_ASSERT_EQUAL(g_d.mem.ram[HVT_LOAD + phdr(0)->p_memsz - 1], 0);
	memcpy(&si, g_d.mem.ram + b.start_info, sizeof(si));
	CU_ASSERT_EQUAL(si.magic, XEN_HVM_START_MAGIC_VALUE);
	CU_ASSERT_EQUAL(si.version, 1);
	CU_ASSERT_EQUAL(si.nr_modules, 0);
	CU_ASSERT_EQUAL(si.rsdp_paddr, 0);
	CU_ASSERT_STRING_EQUAL((char *)g_d.mem.ram + si.cmdline_paddr, "app=hello console=hvc0");
	CU_ASSERT_FATAL(si.memmap_entries >= 1 && si.memmap_entries <= DOMAIN_MAX_MEMMAP);
	CU_ASSERT_EQUAL(si.memmap_entries, g_d.nr_memmap);
	memcpy(mm, g_d.mem.ram + si.memmap_paddr, si.memmap_entries * sizeof(mm[0]));
	for (i = 0; i < si.memmap_entries; i++) {
		total += mm[i].size;
		if (mm[i].type == XEN_HVM_MEMMAP_TYPE_RESERVED)
			CU_ASSERT(mm[i].addr == b.start_info ||
				  (mm[i].addr == RAM && mm[i].size == LAMINA_SPECIAL_COUNT * 4096ull));
		if (i)
			CU_ASSERT_EQUAL(mm[i].addr, mm[i - 1].addr + mm[i - 1].size);
	}
	CU_ASSERT_EQUAL(total, RAM + LAMINA_SPECIAL_COUNT * 4096ull); /* RAM, then the special region */
	CU_ASSERT_EQUAL(mm[si.memmap_entries - 1].type, XEN_HVM_MEMMAP_TYPE_RESERVED);
}

static void test_notes_in_sections_only(void)
{
	good_image(HVT_NOTE_SHDR);
	CU_ASSERT_EQUAL(load(), 0);
}

static void test_missing_note(void)
{
	good_image(HVT_NOTE_NONE);
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	/* a note with the right type but another owner does not count */
	good_image(HVT_NOTE_PHDR);
	memcpy(g_img + HVT_NOTE_OFF + 12, "Xyz", 4);
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
}

static void test_truncated(void)
{
	size_t cut[] = {
	    0, 3, 16, 63, sizeof(Elf64_Ehdr), sizeof(Elf64_Ehdr) + 10, HVT_NOTE_OFF + 8, HVT_CODE_OFF + 4};
	size_t full;
	unsigned i;

	good_image(HVT_NOTE_PHDR);
	full = g_len;
	for (i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		g_len = cut[i];
		CU_ASSERT_EQUAL(load(), -ENOEXEC);
	}
	g_len = full;
	CU_ASSERT_EQUAL(load(), 0);
}

static void test_bad_headers(void)
{
	Elf64_Ehdr *e = (Elf64_Ehdr *)g_img;

	good_image(HVT_NOTE_PHDR);
	g_img[0] = 0x7e;
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	g_img[EI_CLASS] = 7;
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	g_img[EI_DATA] = ELFDATA2MSB;
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	e->e_machine = EM_AARCH64;
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	e->e_type = ET_CORE;
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	e->e_phnum = 0xffff;
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	e->e_phoff = UINT64_MAX - 8;
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	e->e_phentsize = 40;
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_SHDR);
	e->e_shoff = UINT64_MAX - 16;
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_SHDR);
	e->e_shnum = 60000;
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
}

static void test_segments_outside(void)
{
	good_image(HVT_NOTE_PHDR);
	phdr(0)->p_offset = g_len; /* data beyond the end of the file */
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	phdr(0)->p_offset = UINT64_MAX - 4; /* offset + size overflows */
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	phdr(0)->p_filesz = phdr(0)->p_memsz + 1;
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	phdr(0)->p_paddr = RAM - 16; /* runs off the end of RAM */
	CU_ASSERT_EQUAL(load(), -E2BIG);
	good_image(HVT_NOTE_PHDR);
	phdr(0)->p_paddr = UINT64_MAX - 0x100; /* address + size overflows */
	CU_ASSERT_EQUAL(load(), -E2BIG);
	good_image(HVT_NOTE_PHDR);
	phdr(0)->p_memsz = RAM * 2;
	CU_ASSERT_EQUAL(load(), -E2BIG);
	good_image(HVT_NOTE_PHDR);
	phdr(1)->p_offset = g_len + 100; /* the note segment outside the file */
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
}

static void test_bad_notes(void)
{
	uint32_t *note = (uint32_t *)(g_img + HVT_NOTE_OFF);

	good_image(HVT_NOTE_PHDR);
	note[1] = 0xfffffff0; /* descsz far beyond the segment */
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	note[0] = 0xffffffff; /* namesz overflows when aligned */
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	note[1] = 2; /* entry of an odd size */
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
	good_image(HVT_NOTE_PHDR);
	note[4] = 0x200000; /* entry outside every loaded segment */
	CU_ASSERT_EQUAL(load(), -ENOEXEC);
}

static void test_ramdisk(void)
{
	static uint8_t rd[10000];
	struct hvm_start_info si;
	struct hvm_modlist_entry mod;
	struct pvh_boot b;

	good_image(HVT_NOTE_PHDR);
	memset(rd, 0x5a, sizeof(rd));
	CU_ASSERT_FATAL(pvh_load(&g_d, g_img, g_len, rd, sizeof(rd), &b) == 0);
	memcpy(&si, g_d.mem.ram + b.start_info, sizeof(si));
	CU_ASSERT_EQUAL_FATAL(si.nr_modules, 1);
	memcpy(&mod, g_d.mem.ram + si.modlist_paddr, sizeof(mod));
	CU_ASSERT_EQUAL(mod.size, sizeof(rd));
	CU_ASSERT(mod.paddr + mod.size <= RAM && mod.paddr >= HVT_LOAD + phdr(0)->p_memsz);
	CU_ASSERT(memcmp(g_d.mem.ram + mod.paddr, rd, sizeof(rd)) == 0);
	CU_ASSERT(b.start_info + 4096 <= mod.paddr || b.start_info >= mod.paddr + mod.size);
	/* a ramdisk that cannot fit above the kernel */
	CU_ASSERT_EQUAL(pvh_load(&g_d, g_img, g_len, g_d.mem.ram, RAM - HVT_LOAD, &b), -E2BIG);
}

static void test_random_corruption(void)
{
	unsigned i, k, ok = 0;
	struct pvh_boot b;
	uint32_t seed = 12345;

	for (i = 0; i < 3000; i++) {
		good_image(i % 2 ? HVT_NOTE_PHDR : HVT_NOTE_SHDR);
		for (k = 0; k < 1 + i % 8; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = (seed >> 8) % (HVT_SHDR_OFF + 128);
			seed = seed * 1103515245u + 12345u;
			g_img[at] = (uint8_t)(seed >> 16);
		}
		if (pvh_load(&g_d, g_img, g_len, NULL, 0, &b) == 0) {
			ok++;
			CU_ASSERT(b.start_info + 4096 <= RAM);
			CU_ASSERT(b.entry < RAM);
		}
	}
	printf("\n  %u of 3000 corrupted images still loaded (inside RAM)\n", ok);
}

int main(void)
{
	unsigned failed;
	CU_pSuite s;

	CU_initialize_registry();
	s = CU_add_suite("pvh_loader", setup, teardown);
	CU_add_test(s, "good image, note in program headers", test_good_phdr_note);
	CU_add_test(s, "note in section headers only", test_notes_in_sections_only);
	CU_add_test(s, "missing entry note", test_missing_note);
	CU_add_test(s, "truncated images", test_truncated);
	CU_add_test(s, "bad ELF headers", test_bad_headers);
	CU_add_test(s, "segments outside file or RAM", test_segments_outside);
	CU_add_test(s, "malformed notes", test_bad_notes);
	CU_add_test(s, "ramdisk and modlist", test_ramdisk);
	CU_add_test(s, "random corruption", test_random_corruption);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
