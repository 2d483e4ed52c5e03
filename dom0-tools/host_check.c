/* `domctl host check`: whether this machine can run Lamina domains, found by using KVM (a VM
 * that runs `mov al,0x42; out 0x10,al; hlt`) rather than by trusting the CPU flags alone. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "domctl.h"

#define DOMCTL_KVM_CODE_GPA 0x1000u
#define DOMCTL_KVM_PORT 0x10
#define DOMCTL_KVM_RUN_SECS 5

struct domctl_check {
	int cpu_flag;	  /* vmx or svm in /proc/cpuinfo */
	int kvm_open_err; /* 0 or errno of open("/dev/kvm") */
	int api_version;  /* -1 if unknown */
	int guest_ran;	  /* the test guest executed and exited as expected */
	char guest_msg[160];
	int xen_headers;
	struct {
		const char *name;
		long cap;
		int value;
		int required;
	} caps[5];
};

static int domctl_cpu_flag(void)
{
	char line[4096];
	FILE *f = fopen("/proc/cpuinfo", "re");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5) && (strstr(line, " vmx") || strstr(line, " svm")))
			found = 1;
	fclose(f);
	return found;
}

static void domctl_alarm(int sig)
{
	(void)sig; /* only here to make KVM_RUN return EINTR */
}

/* One page of real-mode code at 0x1000; the vCPU must exit with the port write, then halt. */
static int domctl_kvm_run_test(int kvm, char *msg, size_t msglen)
{
	static const uint8_t code[] = {0xb0, 0x42, 0xe6, DOMCTL_KVM_PORT, 0xf4};
	struct kvm_userspace_memory_region region = {0};
	struct sigaction sa = {.sa_handler = domctl_alarm}, old;
	struct kvm_sregs sregs;
	struct kvm_regs regs = {0};
	struct kvm_run *run = MAP_FAILED;
	void *mem = MAP_FAILED;
	int vm, vcpu = -1, r = -1;
	long runsz = 0;

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return snprintf(msg, msglen, "KVM_CREATE_VM failed: %s", strerror(errno)), -1;
	mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		snprintf(msg, msglen, "mmap: %s", strerror(errno));
		goto out;
	}
	memcpy(mem, code, sizeof(code));
	region.guest_phys_addr = DOMCTL_KVM_CODE_GPA;
	region.memory_size = 4096;
	region.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		snprintf(msg, msglen, "KVM_SET_USER_MEMORY_REGION failed: %s", strerror(errno));
		goto out;
	}
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	runsz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0 || runsz < (long)sizeof(*run)) {
		snprintf(msg, msglen, "KVM_CREATE_VCPU failed: %s", strerror(errno));
		goto out;
	}
	run = mmap(NULL, (size_t)runsz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(msg, msglen, "cannot set up the vCPU: %s", strerror(errno));
		goto out;
	}
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	regs.rip = DOMCTL_KVM_CODE_GPA;
	regs.rflags = 0x2;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
		snprintf(msg, msglen, "cannot load vCPU registers: %s", strerror(errno));
		goto out;
	}
	sigaction(SIGALRM, &sa, &old);
	alarm(DOMCTL_KVM_RUN_SECS);
	if (ioctl(vcpu, KVM_RUN, 0) < 0) {
		snprintf(msg, msglen, "KVM_RUN failed: %s",
			 errno == EINTR ? "the guest did not exit within 5 s" : strerror(errno));
	} else if (run->exit_reason != KVM_EXIT_IO || run->io.port != DOMCTL_KVM_PORT ||
		   run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 1 ||
		   *((uint8_t *)run + run->io.data_offset) != 0x42) {
		snprintf(msg, msglen, "the guest exited with reason %u instead of the port write",
			 run->exit_reason);
	} else if (ioctl(vcpu, KVM_RUN, 0) < 0 || run->exit_reason != KVM_EXIT_HLT) {
		snprintf(msg, msglen, "the guest did not halt after its port write");
	} else {
		snprintf(msg, msglen, "ran a guest: out 0x%x <- 0x42, then hlt", DOMCTL_KVM_PORT);
		r = 0;
	}
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
out:
	if (run != MAP_FAILED)
		munmap(run, (size_t)runsz);
	if (vcpu >= 0)
		close(vcpu);
	if (mem != MAP_FAILED)
		munmap(mem, 4096);
	close(vm);
	return r;
}

static void domctl_check_run(struct domctl_check *c)
{
	int kvm;

	c->cpu_flag = domctl_cpu_flag();
	c->xen_headers = access("/usr/include/xen/xen.h", R_OK) == 0 &&
			 access("/usr/include/xen/arch-x86/hvm/start_info.h", R_OK) == 0;
	c->api_version = -1;
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		c->kvm_open_err = errno;
		return;
	}
	c->api_version = ioctl(kvm, KVM_GET_API_VERSION, 0);
	for (size_t i = 0; i < sizeof(c->caps) / sizeof(c->caps[0]); i++) {
		int v = ioctl(kvm, KVM_CHECK_EXTENSION, c->caps[i].cap);

		c->caps[i].value = v < 0 ? 0 : v;
	}
	if (c->api_version == KVM_API_VERSION)
		c->guest_ran = domctl_kvm_run_test(kvm, c->guest_msg, sizeof(c->guest_msg)) == 0;
	else
		snprintf(c->guest_msg, sizeof(c->guest_msg), "KVM API version %d, expected %d",
			 c->api_version, KVM_API_VERSION);
	close(kvm);
}

static int domctl_check_ok(const struct domctl_check *c)
{
	int ok = c->guest_ran && c->xen_headers;

	for (size_t i = 0; i < sizeof(c->caps) / sizeof(c->caps[0]); i++)
		if (c->caps[i].required && !c->caps[i].value)
			ok = 0;
	return ok;
}

static void domctl_check_json(const struct domctl_check *c)
{
	const unsigned char *buf;
	size_t len;
	yajl_gen g = yajl_gen_alloc(NULL);

#define KEY(k) yajl_gen_string(g, (const unsigned char *)(k), strlen(k))
	if (!g)
		return;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_indent_string, "  ");
	yajl_gen_map_open(g);
	KEY("cpu_virt_flag");
	yajl_gen_bool(g, c->cpu_flag);
	KEY("kvm_device");
	yajl_gen_bool(g, c->kvm_open_err == 0);
	if (c->kvm_open_err) {
		KEY("kvm_error");
		KEY(strerror(c->kvm_open_err));
	}
	KEY("kvm_api_version");
	yajl_gen_integer(g, c->api_version);
	KEY("kvm_runs_guest");
	yajl_gen_bool(g, c->guest_ran);
	KEY("kvm_guest_result");
	KEY(c->guest_msg);
	KEY("kvm_caps");
	yajl_gen_map_open(g);
	for (size_t i = 0; i < sizeof(c->caps) / sizeof(c->caps[0]); i++) {
		KEY(c->caps[i].name);
		yajl_gen_integer(g, c->caps[i].value);
	}
	yajl_gen_map_close(g);
	KEY("xen_headers");
	yajl_gen_bool(g, c->xen_headers);
	KEY("ok");
	yajl_gen_bool(g, domctl_check_ok(c));
	yajl_gen_map_close(g);
#undef KEY
	if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
		printf("%.*s\n", (int)len, (const char *)buf);
	yajl_gen_free(g);
}

static void domctl_check_text(const struct domctl_check *c)
{
	printf("CPU virtualization flag (vmx/svm in /proc/cpuinfo): %s\n",
	       c->cpu_flag ? "present" : "absent");
	if (c->kvm_open_err)
		printf("KVM (/dev/kvm): cannot open: %s\n", strerror(c->kvm_open_err));
	else
		printf("KVM (/dev/kvm): API version %d; %s: %s\n", c->api_version,
		       c->guest_ran ? "works" : "FAILS", c->guest_msg);
	printf("KVM capabilities Lamina uses:\n");
	for (size_t i = 0; i < sizeof(c->caps) / sizeof(c->caps[0]); i++)
		printf("  %-20s %s%s\n", c->caps[i].name, c->caps[i].value ? "yes" : "no",
		       !c->caps[i].value && c->caps[i].required ? " (required)" : "");
	printf("Xen public headers (/usr/include/xen): %s\n", c->xen_headers ? "present" : "missing");
	printf("\n");
	if (c->kvm_open_err == ENOENT)
		printf("Advice: no /dev/kvm. Load the KVM module (modprobe kvm_intel or kvm_amd), enable "
		       "VT-x/AMD-V "
		       "in the firmware, or, inside a virtual machine, enable nested virtualization.\n");
	else if (c->kvm_open_err == EACCES || c->kvm_open_err == EPERM)
		printf("Advice: /dev/kvm is not accessible: run as root or join the 'kvm' group.\n");
	else if (!c->kvm_open_err && !c->guest_ran)
		printf("Advice: KVM is present but could not run a guest instruction; check dmesg for KVM "
		       "errors.\n");
	if (c->guest_ran && !c->cpu_flag)
		printf("Note: /proc/cpuinfo shows no vmx/svm flag, yet KVM runs guest code: this machine is "
		       "itself a "
		       "guest with nested KVM. That is fine for Lamina.\n");
	if (!c->cpu_flag && !c->guest_ran)
		printf("Note: no vmx/svm flag in /proc/cpuinfo either: the CPU does not offer virtualization "
		       "here.\n");
	if (!c->xen_headers)
		printf("Advice: install the Xen public headers: apt-get install libxen-dev\n");
	printf("Verdict: %s\n", domctl_check_ok(c) ? "this machine can run Lamina domains"
						   : "this machine cannot run Lamina domains yet");
}

int domctl_cmd_host_check(struct domctl_ctx *ctx, int argc, char **argv)
{
	static const char *const flags[] = {"--json", NULL};
	struct domctl_check c = {
	    .caps = {{"irqchip", KVM_CAP_IRQCHIP, 0, 1},
		     {"irqfd", KVM_CAP_IRQFD, 0, 1},
		     {"x86_user_space_msr", KVM_CAP_X86_USER_SPACE_MSR, 0, 1},
		     {"sync_regs", KVM_CAP_SYNC_REGS, 0, 0},
		     {"immediate_exit", KVM_CAP_IMMEDIATE_EXIT, 0, 1}},
	};
	int set[1] = {0}, npos;
	const char *pos[1];

	if (domctl_args(ctx, argc, argv, flags, set, NULL, NULL, pos, 0, &npos))
		return DOMCTL_EXIT_USAGE;
	domctl_check_run(&c);
	if (set[0])
		domctl_check_json(&c);
	else
		domctl_check_text(&c);
	return domctl_check_ok(&c) ? DOMCTL_EXIT_OK : DOMCTL_EXIT_ERROR;
}
