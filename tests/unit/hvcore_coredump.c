/* The ELF core writer against a tiny fake guest: a 64 KiB memfd "RAM" with a few pages of data
 * (and one allocated page of zeros) plus one extra page above it, two vCPUs with known registers.
 * The file is parsed back with <elf.h>: headers, notes in order, PT_LOAD contents, holes, and
 * the writer's refusals of bad descriptors and bad ranges; then DUMP_CORE's refusals through the
 * control server, which must close every descriptor a request brings. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/procfs.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <CUnit/Basic.h>

#include "core_elf.h"
#include "ctl_server.h"
#include "hv.h"
#include "hvcore_test.h"

#define RAM_PAGES 16u
#define RAM_SIZE (RAM_PAGES * 4096u)
#define EXTRA_GPA 0x100000ull

static int g_memfd = -1;
static uint8_t *g_ram;
static uint8_t g_extra[4096] __attribute__((aligned(4096)));
static struct core_elf_vcpu g_vcpu[2];
static struct core_elf_range g_range[2];
static struct core_elf_input g_in;
static char g_path[64];

static int setup(void)
{
	unsigned i;

	g_memfd = memfd_create("core-test-ram", MFD_CLOEXEC);
	if (g_memfd < 0 || ftruncate(g_memfd, RAM_SIZE) < 0)
		return -1;
	g_ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g_memfd, 0);
	if (g_ram == MAP_FAILED)
		return -1;
	memset(g_ram + 1 * 4096, 0x11, 4096);		  /* page 1: data */
	strcpy((char *)g_ram + 7 * 4096 + 100, "lamina"); /* page 7: a few bytes */
	memset(g_ram + 15 * 4096, 0xff, 4096);		  /* the last page */
	memset(g_ram + 5 * 4096, 0, 4096);		  /* allocated, but zero: must stay a hole */
	memset(g_extra, 0x5a, sizeof(g_extra));
	g_range[0] = (struct core_elf_range){0, RAM_SIZE, g_ram, g_memfd, 0};
	g_range[1] = (struct core_elf_range){EXTRA_GPA, 4096, g_extra, -1, 0};
	for (i = 0; i < 2; i++) {
		memset(&g_vcpu[i], 0, sizeof(g_vcpu[i]));
		g_vcpu[i].sys.vcpu = i;
		g_vcpu[i].sys.flags = CORE_VCPU_REGS | (i == 0 ? CORE_VCPU_ONLINE : 0);
		g_vcpu[i].sys.cr3 = 0x9000 + i;
		g_vcpu[i].sys.efer = 0x500;
		g_vcpu[i].regs.rip = 0x100070 + i;
		g_vcpu[i].regs.rsp = 0x1da000 - i;
		g_vcpu[i].regs.rax = 0xaaaa0000 + i;
		g_vcpu[i].regs.cs = 0x23;
		g_vcpu[i].regs.fs_base = 0x7000 + i;
	}
	memset(&g_in, 0, sizeof(g_in));
	g_in.dom.version = CORE_ELF_NOTE_VERSION;
	g_in.dom.domid = 7;
	g_in.dom.state = LAMINA_DOM_CRASHED;
	g_in.dom.shutdown_reason = 3;
	g_in.dom.shutdown_code = -1;
	g_in.dom.nr_vcpus = 2;
	g_in.dom.memory_kib = RAM_SIZE / 1024;
	strcpy(g_in.dom.name, "coretest");
	g_in.vcpu = g_vcpu;
	g_in.nr_vcpus = 2;
	g_in.range = g_range;
	g_in.nr_ranges = 2;
	snprintf(g_path, sizeof(g_path), "/tmp/lamina-coretest.XXXXXX");
	i = (unsigned)mkstemp(g_path);
	if ((int)i < 0)
		return -1;
	close((int)i);
	return 0;
}

static int teardown(void)
{
	munmap(g_ram, RAM_SIZE);
	close(g_memfd);
	unlink(g_path);
	return 0;
}

/* Reads the whole core back. */
static uint8_t *slurp(size_t *len)
{
	struct stat sb;
	uint8_t *buf;
	int fd = open(g_path, O_RDONLY);

	if (fd < 0 || fstat(fd, &sb) < 0)
		return NULL;
	buf = malloc((size_t)sb.st_size);
	if (buf && pread(fd, buf, (size_t)sb.st_size, 0) != sb.st_size) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	*len = (size_t)sb.st_size;
	return buf;
}

/* The next note at *off in the PT_NOTE data; its name and descriptor. */
static const Elf64_Nhdr *note_next(const uint8_t *p, size_t *off, const char **name, const uint8_t **desc)
{
	const Elf64_Nhdr *nh = (const Elf64_Nhdr *)(p + *off);

	*name = (const char *)(nh + 1);
	*desc = (const uint8_t *)*name + ((nh->n_namesz + 3) & ~3u);
	*off += sizeof(*nh) + ((nh->n_namesz + 3) & ~3u) + ((nh->n_descsz + 3) & ~3u);
	return nh;
}

static void test_write_and_parse(void)
{
	struct core_elf_stats st;
	const Elf64_Ehdr *eh;
	const Elf64_Phdr *ph;
	const uint8_t *desc;
	const char *name;
	size_t len, off = 0;
	struct stat sb;
	uint8_t *f;
	unsigned i;
	int fd;

	/* A longer file with junk: the core must replace it, not overlay it. */
	fd = open(g_path, O_RDWR | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(ftruncate(fd, 4 << 20) == 0);
	CU_ASSERT(pwrite(fd, "junk", 4, 3 << 20) == 4);
	CU_ASSERT_EQUAL(core_elf_write(fd, &g_in, &st), 0);
	CU_ASSERT(fstat(fd, &sb) == 0);
	close(fd);
	CU_ASSERT_EQUAL(st.nr_loads, 2);
	CU_ASSERT_EQUAL(st.ram_bytes, RAM_SIZE + 4096);
	CU_ASSERT_EQUAL(st.data_bytes, 4 * 4096); /* pages 1, 7, 15 and the extra page */
	CU_ASSERT_EQUAL(st.file_size, core_elf_data_offset(&g_in) + RAM_SIZE + 4096);
	CU_ASSERT_EQUAL((uint64_t)sb.st_size, st.file_size);
	CU_ASSERT((uint64_t)sb.st_blocks * 512 < st.file_size); /* zero pages are holes */

	f = slurp(&len);
	CU_ASSERT_FATAL(f != NULL);
	eh = (const Elf64_Ehdr *)f;
	CU_ASSERT(memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0);
	CU_ASSERT_EQUAL(eh->e_ident[EI_CLASS], ELFCLASS64);
	CU_ASSERT_EQUAL(eh->e_type, ET_CORE);
	CU_ASSERT_EQUAL(eh->e_machine, EM_X86_64);
	CU_ASSERT_EQUAL(eh->e_phnum, 3);
	ph = (const Elf64_Phdr *)(f + eh->e_phoff);
	CU_ASSERT_EQUAL(ph[0].p_type, PT_NOTE);
	CU_ASSERT_FATAL(ph[0].p_offset + ph[0].p_filesz <= len);

	/* Notes: the domain, then per vCPU NT_PRSTATUS and its Lamina note. */
	note_next(f + ph[0].p_offset, &off, &name, &desc);
	CU_ASSERT_STRING_EQUAL(name, CORE_ELF_NOTE_NAME);
	CU_ASSERT(memcmp(desc, &g_in.dom, sizeof(g_in.dom)) == 0);
	for (i = 0; i < 2; i++) {
		const Elf64_Nhdr *nh = note_next(f + ph[0].p_offset, &off, &name, &desc);
		struct elf_prstatus pr;
		struct user_regs_struct regs;

		CU_ASSERT_STRING_EQUAL(name, "CORE");
		CU_ASSERT_EQUAL(nh->n_type, NT_PRSTATUS);
		CU_ASSERT_EQUAL(nh->n_descsz, sizeof(pr));
		memcpy(&pr, desc, sizeof(pr));
		memcpy(&regs, &pr.pr_reg, sizeof(regs));
		CU_ASSERT_EQUAL(pr.pr_pid, (pid_t)i + 1);
		CU_ASSERT_EQUAL(regs.rip, 0x100070 + i);
		CU_ASSERT_EQUAL(regs.rsp, 0x1da000 - i);
		CU_ASSERT_EQUAL(regs.rax, 0xaaaa0000 + i);
		CU_ASSERT_EQUAL(regs.fs_base, 0x7000 + i);
		nh = note_next(f + ph[0].p_offset, &off, &name, &desc);
		CU_ASSERT_STRING_EQUAL(name, CORE_ELF_NOTE_NAME);
		CU_ASSERT_EQUAL(nh->n_type, CORE_ELF_NT_VCPU);
		CU_ASSERT(memcmp(desc, &g_vcpu[i].sys, sizeof(g_vcpu[i].sys)) == 0);
	}
	CU_ASSERT_EQUAL(off, ph[0].p_filesz);

	/* Loads: page-aligned offsets, guest-physical = virtual, contents as the RAM. */
	for (i = 0; i < 2; i++) {
		const Elf64_Phdr *p = &ph[1 + i];
		CU_ASSERT_EQUAL(p->p_type, PT_LOAD);
		CU_ASSERT_EQUAL(p->p_offset % 4096, 0);
		CU_ASSERT_EQUAL(p->p_paddr, g_range[i].gpa);
		CU_ASSERT_EQUAL(p->p_vaddr, g_range[i].gpa);
		CU_ASSERT_EQUAL(p->p_filesz, g_range[i].len);
		CU_ASSERT_EQUAL(p->p_memsz, g_range[i].len);
		CU_ASSERT_FATAL(p->p_offset + p->p_filesz <= len);
		CU_ASSERT(memcmp(f + p->p_offset, g_range[i].host, g_range[i].len) == 0);
	}
	free(f);
}

static void test_refusals(void)
{
	struct core_elf_range bad[2];
	struct core_elf_input in = g_in;
	int fd, p[2];

	fd = open(g_path, O_RDONLY);
	CU_ASSERT_EQUAL(core_elf_write(fd, &g_in, NULL), -EBADF);
	close(fd);
	fd = open(g_path, O_WRONLY | O_APPEND);
	CU_ASSERT_EQUAL(core_elf_write(fd, &g_in, NULL), -EINVAL);
	close(fd);
	CU_ASSERT_FATAL(pipe(p) == 0);
	CU_ASSERT_EQUAL(core_elf_write(p[1], &g_in, NULL), -EINVAL);
	close(p[0]);
	close(p[1]);

	fd = open(g_path, O_WRONLY);
	CU_ASSERT_FATAL(fd >= 0);
	memcpy(bad, g_range, sizeof(bad));
	in.range = bad;
	bad[1].gpa = 4096; /* overlaps RAM */
	CU_ASSERT_EQUAL(core_elf_write(fd, &in, NULL), -EINVAL);
	bad[1].gpa = EXTRA_GPA + 1; /* not page aligned */
	CU_ASSERT_EQUAL(core_elf_write(fd, &in, NULL), -EINVAL);
	bad[1].gpa = UINT64_MAX & ~4095ull; /* wraps */
	CU_ASSERT_EQUAL(core_elf_write(fd, &in, NULL), -EINVAL);
	bad[1].gpa = EXTRA_GPA;
	bad[1].len = 0;
	CU_ASSERT_EQUAL(core_elf_write(fd, &in, NULL), -EINVAL);
	in = g_in;
	in.nr_vcpus = CORE_ELF_MAX_VCPUS + 1;
	CU_ASSERT_EQUAL(core_elf_write(fd, &in, NULL), -E2BIG);
	in = g_in;
	in.nr_ranges = CORE_ELF_MAX_RANGES + 1;
	CU_ASSERT_EQUAL(core_elf_write(fd, &in, NULL), -E2BIG);
	/* No ranges and no vCPUs: still a valid, tiny core. */
	in = g_in;
	in.nr_ranges = 0;
	in.nr_vcpus = 0;
	CU_ASSERT_EQUAL(core_elf_write(fd, &in, NULL), 0);
	CU_ASSERT_EQUAL(lseek(fd, 0, SEEK_END), (off_t)core_elf_data_offset(&in));
	close(fd);
}

/* LAMINA_CTL_DUMP_CORE through the control server (no backend, no domains): the descriptor a
 * request carries is checked and always closed, whichever op it came with. */
static struct hv g_hv;
static struct ctl_server g_srv;
static int g_cfd = -1;
static char g_dir[64], g_file[128];

static int ctl_setup(void)
{
	int sv[2];

	snprintf(g_dir, sizeof(g_dir), "/tmp/hvcore-dump.XXXXXX");
	if (!mkdtemp(g_dir) || hv_init(&g_hv, g_dir, "/dev/null", NULL) < 0)
		return -1;
	if (ctl_server_init(&g_srv, &g_hv, -1, -1) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	g_cfd = sv[1];
	snprintf(g_file, sizeof(g_file), "%s/core", g_dir);
	return ctl_conn_add(&g_srv, sv[0], 0);
}

static int ctl_teardown(void)
{
	char p[128];

	ctl_server_fini(&g_srv);
	hv_fini(&g_hv);
	close(g_cfd);
	snprintf(p, sizeof(p), "%s/hv.log", g_dir);
	unlink(p);
	unlink(g_file);
	rmdir(g_dir);
	return 0;
}

static unsigned open_fds(void)
{
	unsigned n = 0;
	int fd;

	for (fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* Sends op with payload and nfds copies of fd, runs the server once, returns the reply status. */
static int ctl_send_fds(uint16_t op, const void *p, uint32_t len, int fd, unsigned nfds)
{
	static uint32_t seq;
	struct lamina_ctl_hdr h = {LAMINA_CTL_MAGIC, LAMINA_CTL_VERSION, op, ++seq, 0, len, 0}, rh;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(8 * sizeof(int))];
	} u;
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)p, len}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	uint8_t buf[512];
	unsigned i;
	ssize_t n;

	if (nfds) {
		struct cmsghdr *cm;
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		for (i = 0; i < nfds; i++)
			memcpy(CMSG_DATA(cm) + i * sizeof(int), &fd, sizeof(int));
	}
	CU_ASSERT_FATAL(sendmsg(g_cfd, &mh, 0) == (ssize_t)(sizeof(h) + len));
	CU_ASSERT_FATAL(ctl_server_poll(&g_srv, 1000) == 0);
	n = recv(g_cfd, buf, sizeof(buf), MSG_DONTWAIT);
	CU_ASSERT_FATAL(n >= (ssize_t)sizeof(rh));
	memcpy(&rh, buf, sizeof(rh));
	CU_ASSERT_EQUAL(rh.op, op);
	CU_ASSERT_EQUAL(rh.seq, h.seq);
	return rh.status;
}

static void test_ctl_refusals(void)
{
	struct lamina_ctl_dump_core r;
	unsigned before;
	int fd, dn;

	memset(&r, 0, sizeof(r));
	r.dom.domid = 42;
	fd = open(g_file, O_WRONLY | O_CREAT, 0600);
	dn = open("/dev/null", O_WRONLY);
	CU_ASSERT_FATAL(fd >= 0 && dn >= 0);
	before = open_fds();
	CU_ASSERT_EQUAL(ctl_send_fds(LAMINA_CTL_DUMP_CORE, &r, sizeof(r), -1, 0), -EBADF);
	CU_ASSERT_EQUAL(ctl_send_fds(LAMINA_CTL_DUMP_CORE, &r, sizeof(r), fd, 1), -ESRCH);
	CU_ASSERT_EQUAL(ctl_send_fds(LAMINA_CTL_DUMP_CORE, &r, sizeof(r), dn, 1), -EINVAL);
	r.flags = 1;
	CU_ASSERT_EQUAL(ctl_send_fds(LAMINA_CTL_DUMP_CORE, &r, sizeof(r), fd, 1), -EINVAL);
	r.flags = 0;
	CU_ASSERT_EQUAL(ctl_send_fds(LAMINA_CTL_DUMP_CORE, &r, sizeof(r) - 4, fd, 1), -EINVAL);
	/* More descriptors than a request may carry, and descriptors on an op that takes none. */
	CU_ASSERT_EQUAL(ctl_send_fds(LAMINA_CTL_DUMP_CORE, &r, sizeof(r), fd, 6), -ESRCH);
	CU_ASSERT_EQUAL(ctl_send_fds(LAMINA_CTL_HELLO, NULL, 0, fd, 3), 0);
	CU_ASSERT_EQUAL(open_fds(), before); /* the server closed every one it was sent */
	close(fd);
	fd = open(g_file, O_RDONLY);
	CU_ASSERT_EQUAL(ctl_send_fds(LAMINA_CTL_DUMP_CORE, &r, sizeof(r), fd, 1), -EBADF);
	close(fd);
	fd = open(g_file, O_WRONLY | O_APPEND);
	CU_ASSERT_EQUAL(ctl_send_fds(LAMINA_CTL_DUMP_CORE, &r, sizeof(r), fd, 1), -EINVAL);
	close(fd);
	close(dn);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("core_elf", setup, teardown);
	CU_add_test(s, "write and parse back", test_write_and_parse);
	CU_add_test(s, "refusals", test_refusals);
	s = CU_add_suite("DUMP_CORE op", ctl_setup, ctl_teardown);
	CU_add_test(s, "refusals and descriptor hygiene", test_ctl_refusals);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned fails = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
