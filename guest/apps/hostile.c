/* app=hostile: seeded random hypercalls with hostile numbers and arguments. It never asks for
 * anything that would legitimately end or rewire this domain (shutdown, block, vCPU down, new
 * callbacks, closing or resetting event channels, physmap changes), and gives the hypervisor only pointers it may harmlessly write:
 * a scratch window, NULL, unmapped and non-canonical addresses; kernel text only where the
 * argument is read. It then checks that its own text is unchanged. */
#include "apps.h"
#include "../kernel/hypercall.h"

#define HOSTILE_SCRATCH_BYTES 65536
#define HOSTILE_WINDOW_OFF 16384 /* pointers land in [16K, 20K): overruns stay in the buffer */
#define HOSTILE_WINDOW_BYTES 4096
#define HOSTILE_TAIL_BYTES 4096 /* after the window, zeroed again before every call */
#define HOSTILE_MAX_RESULTS 40
#define HOSTILE_NR_PAGE 64
#define HOSTILE_MEMOP_CMD_MASK 0x3f /* memory_op: the low 6 bits are the command, the rest a continuation */

enum hostile_ptr { HP_SMALL, HP_NULL, HP_UNMAPPED, HP_NONCANON, HP_SCRATCH, HP_TEXT, HP_RANDOM, HP_KINDS };

struct hostile_result {
	long value;
	uint64_t count;
};

struct hostile {
	struct kernel *k;
	struct lib_rng rng;
	uint8_t *window;
	struct hostile_result results[HOSTILE_MAX_RESULTS];
	unsigned int nr_results;
	uint64_t other, skipped;
	uint8_t scratch[HOSTILE_SCRATCH_BYTES] __attribute__((aligned(64)));
};

/* Sub-commands that would end, block or rewire this domain, per hypercall (-1 ends a list). */
static const int hostile_deny_sched[] = {SCHEDOP_block,
					 SCHEDOP_shutdown,
					 SCHEDOP_poll,
					 SCHEDOP_remote_shutdown,
					 SCHEDOP_shutdown_code,
					 SCHEDOP_watchdog,
					 -1};
static const int hostile_deny_vcpu[] = {VCPUOP_initialise,
					VCPUOP_up,
					VCPUOP_down,
					VCPUOP_register_runstate_memory_area,
					VCPUOP_register_vcpu_info,
					VCPUOP_send_nmi,
					VCPUOP_register_vcpu_time_memory_area,
					-1};
static const int hostile_deny_memory[] = {XENMEM_increase_reservation,
					  XENMEM_decrease_reservation,
					  XENMEM_populate_physmap,
					  XENMEM_exchange,
					  XENMEM_add_to_physmap,
					  XENMEM_remove_from_physmap,
					  XENMEM_add_to_physmap_batch,
					  XENMEM_acquire_resource,
					  -1};
static const int hostile_deny_evtchn[] = {EVTCHNOP_close,	      EVTCHNOP_reset,	     EVTCHNOP_bind_vcpu,
					 EVTCHNOP_init_control, EVTCHNOP_expand_array, EVTCHNOP_set_priority,
					 14 /* EVTCHNOP_reset_cont */, -1};
static const int hostile_allow_hvm[] = {HVMOP_get_param, HVMOP_get_time, HVMOP_get_mem_type, -1};
static const int hostile_deny_console[] = {CONSOLEIO_write, -1};
static const int hostile_deny_grant[] = {4 /* GNTTABOP_transfer */, -1};

struct hostile_rule {
	bool skip;	       /* never issue this number */
	bool bad_ptrs_only;    /* arguments may only be NULL/unmapped/non-canonical */
	unsigned int cmd_mask; /* bits of arg 1 that select the sub-command */
	const int *deny;       /* sub-commands never issued */
	const int *allow;      /* if set: the only known sub-commands issued (unknown ones >= 64 too) */
};

static const struct hostile_rule hostile_rules[HOSTILE_NR_PAGE] = {
    [__HYPERVISOR_set_callbacks] = {.skip = true},
    [__HYPERVISOR_sched_op_compat] = {.cmd_mask = ~0u, .deny = hostile_deny_sched},
    [__HYPERVISOR_memory_op] = {.cmd_mask = HOSTILE_MEMOP_CMD_MASK, .deny = hostile_deny_memory},
    [__HYPERVISOR_multicall] = {.bad_ptrs_only = true},
    [__HYPERVISOR_console_io] = {.cmd_mask = ~0u, .deny = hostile_deny_console},
    [__HYPERVISOR_grant_table_op] = {.cmd_mask = ~0u, .deny = hostile_deny_grant},
    [__HYPERVISOR_vcpu_op] = {.cmd_mask = ~0u, .deny = hostile_deny_vcpu},
    [__HYPERVISOR_nmi_op] = {.skip = true},
    [__HYPERVISOR_sched_op] = {.cmd_mask = ~0u, .deny = hostile_deny_sched},
    [__HYPERVISOR_callback_op] = {.skip = true},
    [__HYPERVISOR_event_channel_op] = {.cmd_mask = ~0u, .deny = hostile_deny_evtchn},
    [__HYPERVISOR_hvm_op] = {.cmd_mask = ~0u, .allow = hostile_allow_hvm},
    [__HYPERVISOR_kexec_op] = {.skip = true},
    [__HYPERVISOR_xenpmu_op] = {.skip = true},
};

static bool hostile_in(const int *list, uint64_t v)
{
	for (; list && *list >= 0; list++) {
		if ((uint64_t)*list == v)
			return true;
	}
	return false;
}

/* Arguments where kernel text may be passed: the hypervisor only reads them. */
static bool hostile_text_ok(uint32_t nr, uint64_t cmd)
{
	if (nr == __HYPERVISOR_memory_op)
		return cmd == XENMEM_current_reservation || cmd == XENMEM_maximum_reservation ||
		       cmd == XENMEM_maximum_gpfn;
	if (nr == __HYPERVISOR_xen_version)
		return cmd == XENVER_version || cmd == XENVER_pagesize;
	return false;
}

static uint64_t hostile_ptr(struct hostile *h, enum hostile_ptr kind)
{
	uint64_t r = lib_rng_next(&h->rng);

	switch (kind) {
	case HP_SMALL:
		return r % 256;
	case HP_NULL:
		return 0;
	case HP_UNMAPPED: /* 4 GiB .. 128 TiB: no page table maps it */
		return 0x100000000ull + (r % 0x7ffeffffffffull);
	case HP_NONCANON:
		return 0x8000000000000000ull | (r & 0x00007fffffffffffull);
	case HP_SCRATCH: {
		uint64_t off = r % HOSTILE_WINDOW_BYTES;
		if (r >> 63)
			off &= ~7ull; /* half aligned, half anywhere */
		return (uintptr_t)h->window + off;
	}
	case HP_TEXT:
		return (uintptr_t)lamina_text_start + r % (uint64_t)(lamina_text_end - lamina_text_start);
	default:
		return r;
	}
}

/* Scratch words are harmless themselves: small numbers or pointers of the safe kinds, so a
 * structure the hypervisor reads from scratch can only point back into scratch or nowhere.
 * Refilled before every call: what the hypervisor wrote last time (addresses included) must
 * not become the next call's pointers. A structure read across the window's end sees zeros. */
static void hostile_fill_window(struct hostile *h)
{
	static const enum hostile_ptr kinds[8] = {HP_SMALL,    HP_SMALL,    HP_SMALL,	HP_NULL,
						  HP_UNMAPPED, HP_NONCANON, HP_SCRATCH, HP_SCRATCH};
	uint64_t *w = (uint64_t *)h->window;

	for (unsigned int i = 0; i < HOSTILE_WINDOW_BYTES / 8; i++)
		w[i] = hostile_ptr(h, kinds[lib_rng_next(&h->rng) >> 61]);
	memset(h->window + HOSTILE_WINDOW_BYTES, 0, HOSTILE_TAIL_BYTES);
}

static uint64_t hostile_arg(struct hostile *h, bool bad_only, bool text_ok)
{
	static const enum hostile_ptr bad[] = {HP_NULL, HP_UNMAPPED, HP_NONCANON, HP_SMALL};
	enum hostile_ptr kind;

	if (bad_only)
		return hostile_ptr(h, bad[lib_rng_next(&h->rng) % LIB_ARRAY_SIZE(bad)]);
	kind = (enum hostile_ptr)(lib_rng_next(&h->rng) % HP_KINDS);
	if (kind == HP_TEXT && !text_ok)
		kind = HP_SCRATCH;
	return hostile_ptr(h, kind);
}

static uint64_t hostile_cmd(struct hostile *h)
{
	uint64_t r = lib_rng_next(&h->rng);

	switch (r % 8) {
	case 0:
		return lib_rng_next(&h->rng);
	case 1:
		return r % 65536;
	default:
		return (r >> 8) % 48;
	}
}

static uint32_t hostile_nr(struct hostile *h)
{
	static const uint32_t huge[] = {64, 100, 127, 128, 255, 4096, 0x7fffffff, 0x80000000u, 0xffffffffu};
	uint64_t r = lib_rng_next(&h->rng);

	if (r % 10 == 0)
		return huge[(r >> 8) % LIB_ARRAY_SIZE(huge)];
	return (uint32_t)((r >> 8) % HOSTILE_NR_PAGE);
}

static void hostile_count(struct hostile *h, long rc)
{
	long key = rc > 0 ? 1 : rc; /* all positive values share one bucket */

	for (unsigned int i = 0; i < h->nr_results; i++) {
		if (h->results[i].value == key) {
			h->results[i].count++;
			return;
		}
	}
	if (h->nr_results < HOSTILE_MAX_RESULTS)
		h->results[h->nr_results++] = (struct hostile_result){.value = key, .count = 1};
	else
		h->other++;
}

/* One call; returns false when the rules forbid what was drawn (nothing issued). */
static bool hostile_one(struct hostile *h)
{
	uint32_t nr = hostile_nr(h);
	uint64_t cmd = hostile_cmd(h);
	const struct hostile_rule *rule = nr < HOSTILE_NR_PAGE ? &hostile_rules[nr] : NULL;
	bool bad_only = false, text_ok;

	if (rule) {
		uint64_t sub = cmd & rule->cmd_mask;
		if (rule->skip)
			return false;
		if (rule->cmd_mask && hostile_in(rule->deny, sub))
			return false;
		if (rule->allow && !hostile_in(rule->allow, sub) && sub < 64)
			return false;
		bad_only = rule->bad_ptrs_only;
	}
	text_ok = hostile_text_ok(nr, cmd);
	if (bad_only)
		cmd = hostile_arg(h, true, false);
	uint64_t a2 = hostile_arg(h, bad_only, text_ok), a3 = hostile_arg(h, bad_only, text_ok);
	uint64_t a4 = hostile_arg(h, bad_only, text_ok), a5 = hostile_arg(h, bad_only, text_ok);
	hostile_fill_window(h);
	long rc;
	if (nr < HOSTILE_NR_PAGE && (lib_rng_next(&h->rng) & 1))
		rc = hypercall_call(nr, cmd, a2, a3, a4, a5);
	else
		rc = hypercall_trap(nr, cmd, a2, a3, a4, a5);
	hostile_count(h, rc);
	return true;
}

static uint64_t hostile_text_sum(void)
{
	uint64_t hsh = 0xcbf29ce484222325ull;

	for (const uint8_t *p = lamina_text_start; p < lamina_text_end; p++)
		hsh = (hsh ^ *p) * 0x100000001b3ull;
	return hsh;
}

void app_hostile(struct kernel *k, struct app_result *res)
{
	struct hostile hbuf;
	struct hostile *h = &hbuf;
	uint64_t seed = kernel_cmdline_u64(k, "seed", 1);
	uint64_t count = kernel_cmdline_u64(k, "count", 2000);
	uint64_t issued = 0;

	memset(h, 0, sizeof(*h));
	h->k = k;
	h->window = h->scratch + HOSTILE_WINDOW_OFF;
	lib_rng_seed(&h->rng, seed);
	uint64_t sum = hostile_text_sum();
	kprintf(k, "hostile: seed=%lu count=%lu\n", seed, count);
	while (issued < count) {
		if (hostile_one(h))
			issued++;
		else
			h->skipped++;
	}
	/* Random set_timer_op calls went behind the timer module's back: what the hypervisor holds
	 * is unknown now, so the next wait programs its deadline afresh. */
	k->tm.programmed = 0;
	kprintf(k, "hostile: %lu calls issued, %lu draws refused by the rules\n", issued, h->skipped);
	for (unsigned int i = 0; i < h->nr_results; i++) {
		long v = h->results[i].value;
		const char *name = v < 0 ? lib_errno_name(v) : NULL;
		if (v > 0)
			kprintf(k, "hostile:   %-10s %lu\n", ">0", h->results[i].count);
		else if (name)
			kprintf(k, "hostile:   -%-9s %lu\n", name, h->results[i].count);
		else
			kprintf(k, "hostile:   %-10ld %lu\n", v, h->results[i].count);
	}
	if (h->other)
		kprintf(k, "hostile:   other      %lu\n", h->other);
	if (hostile_text_sum() != sum)
		app_set(res, APP_FAILURE, "kernel text changed during the run");
}
