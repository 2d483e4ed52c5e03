/* The guest kernel's state and its services to apps: one struct kernel (built in kernel_main
 * and passed down), console output, time, start info, command line and shutdown. */
#ifndef GUEST_KERNEL_KERNEL_H
#define GUEST_KERNEL_KERNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/errno.h>
#include <xen/arch-x86/cpuid.h>
#include <xen/arch-x86/hvm/start_info.h>
#include <lamina/abi.h>
#include <lamina/control.h> /* LAMINA_CMDLINE_MAX: what the toolstack accepts */
#include "../lib/lib.h"
#include "boot.h"
#include "events.h"
#include "timer.h"
#include "console_ring.h"
#include "xenbus.h"

#define KERNEL_MEMMAP_MAX 64
#define KERNEL_CONSOLE_LINE 256
#define KERNEL_ARG_MAX 64

/* Line-buffered console writer: one flush per line, never one per character; to the PV console
 * ring once attached, by console_io before. */
struct console {
	char line[KERNEL_CONSOLE_LINE];
	unsigned int len;
	uint64_t bytes;
	uint64_t flushes;
	long last_error;
	struct console_ring *ring;
};

struct kernel_time {
	const volatile struct vcpu_time_info *ti; /* in shared_info or the registered vcpu_info */
	const volatile struct shared_info *shared;
};

struct kernel {
	const struct boot_info *boot;
	int ring; /* 3 normally, 0 with the `ring0` option */
	bool xen_found;
	bool lamina_found; /* Lamina's own CPUID leaves answered with their signature */
	bool domid_known;
	uint32_t domid;
	uint32_t vcpu_id;
	uint16_t null_port;

	struct hvm_start_info si; /* copied once from guest memory, then validated */
	char cmdline[LAMINA_CMDLINE_MAX];
	struct hvm_memmap_table_entry memmap[KERNEL_MEMMAP_MAX];
	unsigned int memmap_nr;
	uint64_t ram_bytes; /* sum of E820 RAM entries */
	uint64_t ram_top;   /* highest RAM address + 1 */
	uint64_t map_top;   /* highest address + 1 of any memory-map entry (RAM, special pages) */

	volatile struct shared_info *shared;
	volatile struct vcpu_info *vcpu_info;
	long shared_map_rc;
	struct kernel_time time;
	uint64_t boot_ns;  /* system time when the C kernel started */
	uint64_t tsc_main; /* rdtsc at the first C instruction (after the ring-0 path and iretq) */

	struct console con;
	struct events ev;	  /* event channels; ev.ready once upcalls are registered */
	struct timers tm;	  /* VIRQ_TIMER timers; timer_ready() once bound */
	struct console_ring cring; /* the PV console ring; con.ring points here once set up */
	int cring_rc;
	struct xenbus xb; /* the store ring: set up on first use (xenbus_init) */
};

/* start_info.c */
int start_info_load(struct kernel *k, uint64_t pa);
bool kernel_cmdline_has(const struct kernel *k, const char *flag);
/* Copies the value of key=VALUE into out (size bytes); -ENOENT when absent, -ENOSPC when long. */
int kernel_cmdline_get(const struct kernel *k, const char *key, char *out, size_t size);
uint64_t kernel_cmdline_u64(const struct kernel *k, const char *key, uint64_t dflt);

/* console.c */
void console_init(struct console *c);
void console_write(struct console *c, const char *s, size_t n);
void console_flush(struct console *c);
/* Flushes the line, then writes s as one block (one ring notify): bulk output. */
void console_write_block(struct console *c, const char *s, size_t n);
void console_attach_ring(struct console *c, struct console_ring *ring);
int kprintf(struct kernel *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* time.c */
void time_init(struct kernel_time *t, const volatile struct shared_info *shared,
	       const volatile struct vcpu_info *vi);
uint64_t time_now_ns(const struct kernel_time *t);
uint64_t time_tsc_to_ns(const struct kernel_time *t, uint64_t tsc_delta);
int time_wallclock(const struct kernel_time *t, uint64_t *sec, uint32_t *nsec);

static inline uint64_t time_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* main.c */
/* Blocks until an event arrives (idle): SCHEDOP_block with events enabled. */
void kernel_idle(struct kernel *k);
void kernel_poweroff(struct kernel *k, unsigned int reason) __attribute__((noreturn));

#endif
