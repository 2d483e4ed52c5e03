/* The Domain-0 control protocol: requests privileged clients send to lamina-hv over
 * $LAMINA_RUNDIR/hv.sock. Owned by the hypervisor; described for people in docs/control-protocol.md. */
#ifndef LAMINA_CONTROL_H
#define LAMINA_CONTROL_H

#include <stdint.h>

/* Transport: an AF_UNIX SOCK_SEQPACKET socket, mode 0600, root only. One message per datagram:
 * a header, then exactly hdr.len payload bytes. File descriptors (eventfds, memfds) travel as
 * SCM_RIGHTS on the reply that names them. Replies echo op and seq; status is 0 or -errno. */
#define LAMINA_CTL_MAGIC 0x414e4d4cu /* "LMNA" little-endian */
#define LAMINA_CTL_VERSION 1
#define LAMINA_CTL_MAX_PAYLOAD (60u * 1024u)
#define LAMINA_CTL_SOCKET "hv.sock"

struct lamina_ctl_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t seq;
	int32_t status; /* requests: 0; replies: 0 or -errno */
	uint32_t len;   /* payload bytes after the header */
	uint32_t flags; /* LAMINA_CTL_F_* */
};
_Static_assert(sizeof(struct lamina_ctl_hdr) == 24, "control header is 24 bytes");

#define LAMINA_CTL_F_REPLY 0x1u

/* Op numbers are ABI: never renumber. 1-31 domains, 32-63 event channels, 64-95 grants and
 * memory, 96-127 host. */
enum lamina_ctl_op {
	LAMINA_CTL_HELLO = 1,    /* -> lamina_ctl_hello */
	LAMINA_CTL_CREATE = 2,   /* lamina_ctl_domcfg -> lamina_ctl_dominfo */
	LAMINA_CTL_DESTROY = 3,  /* lamina_ctl_domref -> (empty) */
	LAMINA_CTL_PAUSE = 4,    /* lamina_ctl_domref -> (empty) */
	LAMINA_CTL_UNPAUSE = 5,  /* lamina_ctl_domref -> (empty) */
	LAMINA_CTL_SHUTDOWN = 6, /* lamina_ctl_shutdown -> (empty) */
	LAMINA_CTL_LIST = 7,     /* lamina_ctl_list_req -> lamina_ctl_list_reply + dominfo[] */
	LAMINA_CTL_INFO = 8,     /* lamina_ctl_domref -> lamina_ctl_dominfo */
	LAMINA_CTL_WAIT = 9,     /* lamina_ctl_wait -> lamina_ctl_dominfo (as it stopped) */
	LAMINA_CTL_HOST_STOP = 96, /* (empty) -> (empty); destroys every domain, then exits */
	LAMINA_CTL_HOST_INFO = 97, /* (empty) -> lamina_ctl_hostinfo */
};

#define LAMINA_NAME_MAX 64 /* including the NUL */
#define LAMINA_PATH_MAX 1024
#define LAMINA_CMDLINE_MAX 1024
#define LAMINA_DOMID_BY_NAME 0xffffffffu

/* What happens when a domain powers off, reboots or crashes (libvirt's vocabulary). */
enum lamina_action {
	LAMINA_ACT_DESTROY = 0,
	LAMINA_ACT_RESTART = 1,
	LAMINA_ACT_PRESERVE = 2,
	LAMINA_ACT_RENAME_RESTART = 3,
	LAMINA_ACT_COREDUMP_DESTROY = 4,
	LAMINA_ACT_COREDUMP_RESTART = 5,
};

enum lamina_domstate {
	LAMINA_DOM_RUNNING = 0,
	LAMINA_DOM_PAUSED = 1,
	LAMINA_DOM_SHUTDOWN = 2, /* shut down and preserved; shutdown_reason says why */
	LAMINA_DOM_CRASHED = 3,  /* crashed and preserved */
	LAMINA_DOM_DYING = 4,    /* being torn down */
	LAMINA_DOM_DEAD = 5,     /* only in WAIT replies: the domain is gone */
};

struct lamina_ctl_hello {
	uint32_t version;   /* LAMINA_CTL_VERSION the server speaks */
	uint32_t xen_major; /* the Xen interface it offers guests */
	uint32_t xen_minor;
	uint32_t pad;
	char extraversion[16];
};

#define LAMINA_CFG_START_PAUSED 0x1u

struct lamina_ctl_domcfg {
	char name[LAMINA_NAME_MAX];
	uint8_t uuid[16];
	uint64_t memory_kib;
	uint64_t max_memory_kib; /* 0: same as memory_kib */
	uint32_t vcpus;
	uint8_t on_poweroff, on_reboot, on_crash; /* enum lamina_action */
	uint8_t pad0;
	uint32_t flags; /* LAMINA_CFG_* */
	uint32_t pad1;
	char kernel[LAMINA_PATH_MAX];  /* PVH ELF image, opened by the hypervisor */
	char ramdisk[LAMINA_PATH_MAX]; /* optional: "" for none */
	char cmdline[LAMINA_CMDLINE_MAX];
};

struct lamina_ctl_domref {
	uint32_t domid; /* or LAMINA_DOMID_BY_NAME, then name is used */
	char name[LAMINA_NAME_MAX];
};

struct lamina_ctl_shutdown {
	struct lamina_ctl_domref dom;
	uint32_t reason; /* SHUTDOWN_poweroff, SHUTDOWN_reboot, ... from xen/sched.h */
};

struct lamina_ctl_wait {
	struct lamina_ctl_domref dom;
	uint32_t timeout_ms; /* 0: wait for ever */
};

struct lamina_ctl_list_req {
	uint32_t first_domid; /* list domains with id >= this */
	uint32_t max;         /* at most this many in the reply */
};

struct lamina_ctl_list_reply {
	uint32_t count;      /* dominfo records that follow */
	uint32_t next_domid; /* first id for the next page, 0 when this page is the last */
};

struct lamina_ctl_dominfo {
	uint32_t domid;
	uint32_t state;           /* enum lamina_domstate */
	uint32_t shutdown_reason; /* SHUTDOWN_* when state is SHUTDOWN/CRASHED/DEAD */
	int32_t shutdown_code;    /* SCHEDOP_shutdown_code value, -1 when unset */
	char name[LAMINA_NAME_MAX];
	uint8_t uuid[16];
	uint64_t memory_kib;
	uint64_t max_memory_kib;
	uint32_t vcpus;
	uint32_t vcpus_online;
	uint64_t cpu_time_ns;      /* run time summed over vCPUs */
	uint64_t create_ns;        /* CLOCK_MONOTONIC at creation */
	uint64_t first_console_ns; /* CLOCK_MONOTONIC of the first console byte, 0 if none yet */
	uint64_t exits;            /* vCPU exits to the hypervisor */
	uint64_t hypercalls;
	uint64_t console_bytes;
	uint32_t restarts;
	uint8_t on_poweroff, on_reboot, on_crash;
	uint8_t action_taken; /* WAIT replies: the enum lamina_action applied, 0xff if none */
};

struct lamina_ctl_hostinfo {
	uint32_t version;
	uint32_t pid;
	uint32_t nr_domains;
	uint32_t pad;
	uint64_t uptime_ns;
	uint64_t total_memory_kib; /* guest RAM of every live domain */
};

#endif
