/* app=selftest: the hypercall ABI checked from inside the guest. Each check prints its name with
 * ok/FAIL; the first failure names the result. Checks run in an order that keeps the domain
 * usable (register_vcpu_info last but one, shutdown_code last). */
#include "apps.h"
#include "../kernel/hypercall.h"

#define ST_UNMAPPED ((void *)0x100000000ull)	    /* above the 4 GiB identity map */
#define ST_NONCANON ((void *)0x8000000000000000ull) /* non-canonical */
#define ST_BAD_NR 63				    /* a page slot no hypercall uses */
#define ST_HUGE_NR 0x7fffffffu			    /* beyond the page: raw trap only */

struct st {
	struct kernel *k;
	unsigned int pass, fail;
	char first[96];
};

static bool st_check(struct st *st, bool ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool st_check(struct st *st, bool ok, const char *name, const char *fmt, ...)
{
	char detail[160];
	va_list ap;

	va_start(ap, fmt);
	lib_vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	kprintf(st->k, "  %-44s %s%s%s\n", name, ok ? "ok" : "FAIL", detail[0] ? "  " : "", detail);
	if (ok) {
		st->pass++;
	} else {
		if (st->fail++ == 0)
			lib_snprintf(st->first, sizeof(st->first), "%s (%s)", name, detail);
	}
	return ok;
}

static bool st_rc(struct st *st, long rc, long want, const char *name)
{
	return st_check(st, rc == want, name, "rc %ld, want %ld", rc, want);
}

static void st_version(struct st *st)
{
	xen_extraversion_t extra;
	xen_capabilities_info_t caps;
	struct xen_platform_parameters pp = {0};
	struct xen_feature_info fi = {.submap_idx = 0};
	long rc;

	rc = HYPERVISOR_xen_version(XENVER_version, NULL);
	st_check(st, rc == ((LAMINA_XEN_MAJOR << 16) | LAMINA_XEN_MINOR), "xen_version version 4.17", "0x%lx",
		 rc);
	memset(extra, 0x55, sizeof(extra));
	rc = HYPERVISOR_xen_version(XENVER_extraversion, extra);
	bool term = lib_strnlen(extra, sizeof(extra)) < sizeof(extra);
	st_check(st, rc == 0 && term && strcmp(extra, LAMINA_EXTRAVERSION) == 0, "xen_version extraversion",
		 "rc %ld '%s'", rc, term ? extra : "(unterminated)");
	memset(caps, 0x55, sizeof(caps));
	rc = HYPERVISOR_xen_version(XENVER_capabilities, caps);
	term = lib_strnlen(caps, sizeof(caps)) < sizeof(caps);
	st_check(st, rc == 0 && term && lib_strstr(caps, "x86_64") != NULL, "xen_version capabilities",
		 "rc %ld '%s'", rc, term ? caps : "(unterminated)");
	rc = HYPERVISOR_xen_version(XENVER_get_features, &fi);
	st_check(st, rc == 0, "xen_version get_features submap 0", "rc %ld map 0x%x", rc, fi.submap);
	fi.submap_idx = 0x10000;
	st_rc(st, HYPERVISOR_xen_version(XENVER_get_features, &fi), -XEN_EINVAL,
	      "xen_version get_features bad submap");
	rc = HYPERVISOR_xen_version(XENVER_platform_parameters, &pp);
	st_check(st, rc == 0, "xen_version platform_parameters", "rc %ld virt_start 0x%lx", rc,
		 pp.virt_start);
	st_rc(st, HYPERVISOR_xen_version(XENVER_pagesize, NULL), GUEST_PAGE_SIZE, "xen_version pagesize");
	st_rc(st, HYPERVISOR_xen_version(0x7fff, NULL), -XEN_ENOSYS, "xen_version unknown command");
}

static void st_params(struct st *st)
{
	struct xen_hvm_param p = {.domid = DOMID_SELF, .index = HVM_PARAM_CALLBACK_IRQ};
	uint64_t val = ((uint64_t)HVM_PARAM_CALLBACK_TYPE_VECTOR << 56) | 0xf3;
	long rc;

	p.value = val;
	rc = HYPERVISOR_hvm_op(HVMOP_set_param, &p);
	st_rc(st, rc, 0, "hvm_op set_param CALLBACK_IRQ");
	p.value = 0;
	rc = HYPERVISOR_hvm_op(HVMOP_get_param, &p);
	st_check(st, rc == 0 && p.value == val, "hvm_op get_param round trip", "rc %ld value 0x%lx", rc,
		 p.value);
	p.value = 0;
	st_rc(st, HYPERVISOR_hvm_op(HVMOP_set_param, &p), 0, "hvm_op set_param back to 0");
	p.index = HVM_NR_PARAMS;
	st_rc(st, HYPERVISOR_hvm_op(HVMOP_get_param, &p), -XEN_EINVAL, "hvm_op get_param index out of range");
	p.index = 0xffffffffu;
	st_rc(st, HYPERVISOR_hvm_op(HVMOP_set_param, &p), -XEN_EINVAL, "hvm_op set_param index out of range");
	st_rc(st, HYPERVISOR_hvm_op(HVMOP_get_param, ST_UNMAPPED), -XEN_EFAULT,
	      "hvm_op get_param unmapped arg");
	st_rc(st, HYPERVISOR_hvm_op(0xff, &p), -XEN_ENOSYS, "hvm_op unknown op");
}

static void st_errors(struct st *st)
{
	xen_extraversion_t extra;

	st_rc(st, HYPERVISOR_xen_version(XENVER_extraversion, ST_UNMAPPED), -XEN_EFAULT,
	      "EFAULT: unmapped pointer");
	st_rc(st, HYPERVISOR_xen_version(XENVER_extraversion, ST_NONCANON), -XEN_EFAULT,
	      "EFAULT: non-canonical pointer");
	st_rc(st, HYPERVISOR_xen_version(XENVER_extraversion, NULL), -XEN_EFAULT, "EFAULT: NULL pointer");
	/* A buffer that starts in the last mapped page (RAM, or the special pages the memory map
	 * reserves after it) and runs past its end. */
	uint64_t top = st->k->map_top > st->k->ram_top ? st->k->map_top : st->k->ram_top;
	if (top > 8 && top <= (4ull << 30))
		st_rc(st, HYPERVISOR_xen_version(XENVER_extraversion, (char *)(uintptr_t)(top - 8)), -XEN_EFAULT,
		      "EFAULT: buffer running past the last mapped page");
	st_rc(st, HYPERVISOR_console_io(CONSOLEIO_write, 16, ST_UNMAPPED), -XEN_EFAULT,
	      "EFAULT: console_io write");
	st_rc(st, hypercall_call(ST_BAD_NR, 0, 0, 0, 0, 0), -XEN_ENOSYS,
	      "ENOSYS: unused hypercall number 63");
	st_rc(st, hypercall_trap(ST_HUGE_NR, 0, 0, 0, 0, 0), -XEN_ENOSYS,
	      "ENOSYS: hypercall number 0x7fffffff");
	st_rc(st, HYPERVISOR_memory_op(0xffff, extra), -XEN_ENOSYS, "ENOSYS: memory_op unknown command");
	st_rc(st, HYPERVISOR_sched_op(99, NULL), -XEN_ENOSYS, "ENOSYS: sched_op unknown command");
	st_rc(st, HYPERVISOR_vcpu_op(99, 0, NULL), -XEN_ENOSYS, "ENOSYS: vcpu_op unknown command");
	st_rc(st, HYPERVISOR_console_io(99, 0, NULL), -XEN_ENOSYS, "ENOSYS: console_io unknown command");
	/* No input is queued in these tests; a console with input may return up to the count. */
	long n = HYPERVISOR_console_io(CONSOLEIO_read, sizeof(extra), extra);
	st_check(st, n >= 0 && n <= (long)sizeof(extra), "console_io read", "rc %ld", n);
	st_rc(st, HYPERVISOR_sched_op(SCHEDOP_yield, NULL), 0, "sched_op yield");
}

static void st_memory(struct st *st)
{
	struct kernel *k = st->k;
	struct e820entry {
		uint64_t addr, size;
		uint32_t type;
	} __attribute__((packed)) map[KERNEL_MEMMAP_MAX];
	struct xen_memory_map mm = {.nr_entries = KERNEL_MEMMAP_MAX};
	domid_t self = DOMID_SELF;
	uint64_t ram = 0;
	long rc;

	_Static_assert(sizeof(struct e820entry) == 20, "E820 entries are 20 bytes");
	set_xen_guest_handle(mm.buffer, map);
	rc = HYPERVISOR_memory_op(XENMEM_memory_map, &mm);
	if (st_check(st, rc == 0 && mm.nr_entries > 0 && mm.nr_entries <= KERNEL_MEMMAP_MAX,
		     "memory_op memory_map", "rc %ld entries %u", rc, mm.nr_entries)) {
		for (unsigned int i = 0; i < mm.nr_entries; i++) {
			if (map[i].type == XEN_HVM_MEMMAP_TYPE_RAM)
				ram += map[i].size;
		}
		st_check(st, ram == k->ram_bytes && ram > 0, "memory_map RAM matches start_info memmap",
			 "%lu vs %lu KiB", ram / 1024, k->ram_bytes / 1024);
	}
	mm.nr_entries = KERNEL_MEMMAP_MAX;
	set_xen_guest_handle(mm.buffer, ST_UNMAPPED);
	st_rc(st, HYPERVISOR_memory_op(XENMEM_memory_map, &mm), -XEN_EFAULT,
	      "memory_map into unmapped buffer");
	long cur = HYPERVISOR_memory_op(XENMEM_current_reservation, &self);
	long max = HYPERVISOR_memory_op(XENMEM_maximum_reservation, &self);
	st_check(st, cur > 0 && (uint64_t)cur * GUEST_PAGE_SIZE >= k->ram_bytes / 2,
		 "memory_op current_reservation", "%ld pages", cur);
	st_check(st, max >= cur && max > 0, "memory_op maximum_reservation", "%ld pages", max);
	st_check(st, k->shared_map_rc == 0, "memory_op add_to_physmap shared_info", "rc %ld",
		 k->shared_map_rc);
}

static void st_vcpus(struct st *st)
{
	struct vcpu_runstate_info rs;
	long rc;

	st_rc(st, HYPERVISOR_vcpu_op(VCPUOP_is_up, 0, NULL), 1, "vcpu_op is_up vcpu 0");
	rc = HYPERVISOR_vcpu_op(VCPUOP_is_up, 1, NULL);
	st_check(st, rc == 0 || rc == -XEN_ENOENT, "vcpu_op is_up vcpu 1", "rc %ld (want 0 or -ENOENT)", rc);
	st_rc(st, HYPERVISOR_vcpu_op(VCPUOP_is_up, 100000, NULL), -XEN_ENOENT, "vcpu_op is_up vcpu 100000");
	memset(&rs, 0xff, sizeof(rs));
	rc = HYPERVISOR_vcpu_op(VCPUOP_get_runstate_info, 0, &rs);
	st_check(st, rc == 0 && rs.state == RUNSTATE_running && rs.time[RUNSTATE_running] > 0,
		 "vcpu_op get_runstate_info", "rc %ld state %d running %lu ns", rc, rs.state,
		 rs.time[RUNSTATE_running]);
	st_rc(st, HYPERVISOR_vcpu_op(VCPUOP_get_runstate_info, 0, ST_UNMAPPED), -XEN_EFAULT,
	      "vcpu_op get_runstate_info unmapped");
}

static void st_multicall(struct st *st)
{
	struct multicall_entry mc[5];
	struct xen_hvm_param bad = {.domid = DOMID_SELF, .index = HVM_NR_PARAMS + 5};

	memset(mc, 0, sizeof(mc));
	mc[0].op = __HYPERVISOR_xen_version;
	mc[0].args[0] = XENVER_version;
	mc[1].op = ST_BAD_NR;
	mc[2].op = __HYPERVISOR_xen_version;
	mc[2].args[0] = XENVER_extraversion;
	mc[2].args[1] = (uintptr_t)ST_UNMAPPED;
	mc[3].op = __HYPERVISOR_hvm_op;
	mc[3].args[0] = HVMOP_get_param;
	mc[3].args[1] = (uintptr_t)&bad;
	mc[4].op = __HYPERVISOR_xen_version;
	mc[4].args[0] = XENVER_pagesize;
	for (unsigned int i = 0; i < 5; i++)
		mc[i].result = 0x5a5a;
	long rc = HYPERVISOR_multicall(mc, 5);
	st_rc(st, rc, 0, "multicall of 5 mixed entries");
	st_check(st, (long)mc[0].result == ((LAMINA_XEN_MAJOR << 16) | LAMINA_XEN_MINOR),
		 "multicall[0] version", "0x%lx", (long)mc[0].result);
	st_rc(st, (long)mc[1].result, -XEN_ENOSYS, "multicall[1] unknown number");
	st_rc(st, (long)mc[2].result, -XEN_EFAULT, "multicall[2] bad pointer");
	st_rc(st, (long)mc[3].result, -XEN_EINVAL, "multicall[3] bad param index");
	st_rc(st, (long)mc[4].result, GUEST_PAGE_SIZE, "multicall[4] pagesize");
	st_rc(st, HYPERVISOR_multicall(ST_UNMAPPED, 2), -XEN_EFAULT, "multicall list unmapped");
	st_rc(st, HYPERVISOR_multicall(mc, 0), 0, "multicall of 0 entries");
}

static void st_time(struct st *st)
{
	struct kernel *k = st->k;
	uint64_t prev = time_now_ns(&k->time), first = prev, back = 0;
	uint64_t sec = 0;
	uint32_t nsec = 0;

	st_check(st, prev > 0, "time: system time set", "%lu ns", prev);
	/* Spin at most ~2e9 TSC cycles for 1 ms to pass: never hang on a frozen clock. */
	uint64_t t0 = time_rdtsc();
	while (prev - first < 1000000 && time_rdtsc() - t0 < 2000000000ull) {
		uint64_t now = time_now_ns(&k->time);
		if (now < prev)
			back++;
		prev = now;
	}
	st_check(st, back == 0, "time: monotonic", "%lu steps back", back);
	st_check(st, prev - first >= 1000000, "time: advancing", "%lu ns in the loop", prev - first);
	int rc = time_wallclock(&k->time, &sec, &nsec);
	st_check(st, rc == 0 && sec > 1500000000ull, "time: wall clock", "rc %d %lu.%09u", rc, sec, nsec);
}

/* Moves this vCPU's vcpu_info into a page of its own; the clock must follow it. */
static void st_vcpu_info(struct st *st)
{
	struct kernel *k = st->k;
	struct vcpu_register_vcpu_info r = {.mfn = (uintptr_t)lamina_vcpu_info_page >> 12, .offset = 64};
	volatile struct vcpu_info *vi = (volatile struct vcpu_info *)(lamina_vcpu_info_page + r.offset);
	struct vcpu_register_vcpu_info bad = r;

	bad.offset = GUEST_PAGE_SIZE - 8;
	st_rc(st, HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, 0, &bad), -XEN_EINVAL,
	      "register_vcpu_info offset past page");
	/* Events stay disabled across the move so that no upcall sees half of it. */
	bool was = events_disable(&k->ev);
	long rc = HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, 0, &r);
	if (rc == 0)
		events_set_vcpu_info(&k->ev, vi);
	events_restore(&k->ev, was);
	if (!st_rc(st, rc, 0, "vcpu_op register_vcpu_info"))
		return;
	st_check(
	    st, vi->time.system_time != 0 && (vi->time.version & 1) == 0 && vi->time.tsc_to_system_mul != 0,
	    "register_vcpu_info carries the time info", "system_time %lu", (uint64_t)vi->time.system_time);
	k->vcpu_info = vi;
	time_init(&k->time, k->shared, vi);
	uint64_t a = time_now_ns(&k->time), t0 = time_rdtsc(), b = a;
	while (b - a < 1000000 && time_rdtsc() - t0 < 2000000000ull)
		b = time_now_ns(&k->time);
	st_check(st, b - a >= 1000000, "time advances from the new vcpu_info", "%lu ns", b - a);
	st_rc(st, HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, 0, &r), -XEN_EINVAL,
	      "register_vcpu_info twice");
	if (k->ev.ready && timer_ready(&k->tm)) {
		/* Upcalls must now use the new vcpu_info: a timer wake proves it end to end. */
		uint64_t virqs = k->tm.virqs;
		int rc2 = timer_sleep_ns(&k->tm, 1000000);
		st_check(st, rc2 == 0 && k->tm.virqs > virqs, "events follow the new vcpu_info", "rc %d virqs +%lu",
			 rc2, k->tm.virqs - virqs);
	}
}

void app_selftest(struct kernel *k, struct app_result *res)
{
	struct st st = {.k = k};
	struct sched_shutdown code = {.reason = SHUTDOWN_poweroff};

	kprintf(k, "selftest: ring %d, domain %u\n", k->ring, k->domid);
	st_version(&st);
	st_params(&st);
	st_errors(&st);
	st_memory(&st);
	st_vcpus(&st);
	st_multicall(&st);
	st_time(&st);
	st_vcpu_info(&st);
	st_rc(&st, HYPERVISOR_sched_op(SCHEDOP_shutdown_code, &code), 0, "sched_op shutdown_code poweroff");
	kprintf(k, "selftest: %u passed, %u failed\n", st.pass, st.fail);
	if (st.fail)
		app_set(res, APP_FAILURE, "%u checks failed, first: %s", st.fail, st.first);
}
