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
	LAMINA_CTL_DOMSTATS = 10, /* lamina_ctl_domref -> lamina_ctl_domstats */
	LAMINA_CTL_DUMP_CORE = 11, /* lamina_ctl_dump_core + 1 fd -> lamina_ctl_dump_core_reply */

	/* Event channels of Domain-0 (domid 0). A port bound through a connection belongs to it and
	 * is closed when the connection closes. Bind replies carry two eventfds (SCM_RIGHTS):
	 * fds[0] "notify": Domain-0 writes it to signal the remote end (like EVTCHNOP_send);
	 * fds[1] "event": readable when the remote end signalled the port (read it to clear).
	 * Two descriptors, because one eventfd cannot carry both directions: whoever reads it
	 * consumes the other side's signal. */
	LAMINA_CTL_EVTCHN_ALLOC_UNBOUND = 32,   /* lamina_ctl_evtchn_alloc -> lamina_ctl_evtchn_port */
	LAMINA_CTL_EVTCHN_BIND_INTERDOMAIN = 33, /* lamina_ctl_evtchn_bind -> lamina_ctl_evtchn_port + 2 fds */
	LAMINA_CTL_EVTCHN_BIND_VIRQ = 34,       /* lamina_ctl_evtchn_virq -> lamina_ctl_evtchn_port + 2 fds */
	LAMINA_CTL_EVTCHN_CLOSE = 35,           /* lamina_ctl_evtchn_port -> (empty) */

	/* Pages of a domain shared with Domain-0 daemons. */
	LAMINA_CTL_MAP_SPECIAL = 64, /* lamina_ctl_map_special -> lamina_ctl_mapping + 1 fd (memfd) */
	/* Grants (see "Grant tables" in docs/control-protocol.md). Maps belong to the connection
	 * that made them and are undone when it closes. */
	LAMINA_CTL_GNT_MAP = 65,	  /* lamina_ctl_gnt_map -> lamina_ctl_gnt_map_reply + 0, 1 or 2 fds */
	LAMINA_CTL_GNT_UNMAP = 66,	  /* lamina_ctl_gnt_unmap -> lamina_ctl_gnt_status */
	LAMINA_CTL_GNT_COPY = 67,	  /* lamina_ctl_gnt_copy -> lamina_ctl_gnt_status */
	LAMINA_CTL_GNT_BUFFER = 68,	  /* lamina_ctl_gnt_buffer -> lamina_ctl_gnt_buffer + 1 fd (memfd) */
	LAMINA_CTL_GNT_FOREIGN_MAP = 69, /* lamina_ctl_gnt_foreign -> lamina_ctl_gnt_map_reply + 1 fd */
	LAMINA_CTL_GNT_TOOLSTACK = 70,	  /* (empty) -> (empty): this connection is the toolstack */
	LAMINA_CTL_GNT_INFO = 71,	  /* lamina_ctl_gnt_domid -> lamina_ctl_gnt_info */
	LAMINA_CTL_GNT_SET_LIMITS = 72,  /* lamina_ctl_gnt_limits -> (empty); toolstack only */
	LAMINA_CTL_GNT_RING = 73,	  /* lamina_ctl_gnt_ring_setup -> lamina_ctl_gnt_ring_info + 3 fds */

	/* Notifications: after SUBSCRIBE the server also sends unsolicited LAMINA_CTL_EVENT
	 * messages (seq 0, REPLY flag clear) with a lamina_ctl_event payload on this connection. */
	LAMINA_CTL_SUBSCRIBE = 98, /* (empty) -> (empty) */
	LAMINA_CTL_EVENT = 99,
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

/* Counters `domctl top` shows; all monotonic since the domain was created. */
struct lamina_ctl_domstats {
	uint32_t domid;
	uint32_t nr_ports; /* event-channel ports in use */
	uint64_t cpu_time_ns;
	uint64_t exits;
	uint64_t hypercalls;
	uint64_t events_sent;     /* EVTCHNOP_send and Domain-0 notifies from this domain */
	uint64_t events_received; /* ports of this domain set pending */
	uint64_t upcalls;         /* upcalls delivered to its vCPUs */
	uint64_t console_bytes;   /* console_io plus console ring output */
	uint64_t blocked_ns;      /* vCPU time spent blocked */
	uint64_t hc_count[64];    /* per hypercall number */
};

struct lamina_ctl_evtchn_alloc {
	uint32_t dom;        /* domain the port is allocated in */
	uint32_t remote_dom; /* domain allowed to bind it: 0 is Domain-0 */
};

struct lamina_ctl_evtchn_bind {
	uint32_t remote_dom;
	uint32_t remote_port;
};

struct lamina_ctl_evtchn_virq {
	uint32_t virq; /* VIRQ_DOM_EXC, VIRQ_CONSOLE, VIRQ_DEBUG for Domain-0 */
};

struct lamina_ctl_evtchn_port {
	uint32_t port; /* Domain-0's port (bind, close) or the port in dom (alloc) */
};

/* Which special page: each domain has a small region of hypervisor-allocated pages, placed
 * right after its RAM (reserved in its memory map), and named by HVM params. */
enum lamina_special_page {
	LAMINA_SPECIAL_CONSOLE = 0, /* HVM_PARAM_CONSOLE_PFN / HVM_PARAM_CONSOLE_EVTCHN */
	LAMINA_SPECIAL_XENSTORE = 1, /* HVM_PARAM_STORE_PFN / HVM_PARAM_STORE_EVTCHN */
	LAMINA_SPECIAL_COUNT = 2,
};

struct lamina_ctl_map_special {
	uint32_t domid;
	uint32_t which; /* enum lamina_special_page */
};

/* mmap(fd, size, offset) gives the page(s); gfn is where the guest sees them; port is the event
 * channel the guest uses for it (unbound for Domain-0 until a daemon binds it). */
struct lamina_ctl_mapping {
	uint64_t gfn;
	uint64_t offset;
	uint64_t size;
	uint32_t port;
	uint32_t pad;
};

enum lamina_ctl_event_kind {
	LAMINA_EV_CREATED = 1, /* a domain exists (also sent for each live domain on SUBSCRIBE) */
	LAMINA_EV_STOPPED = 2, /* shut down or crashed; shutdown_reason says which */
	LAMINA_EV_DESTROYED = 3,
	LAMINA_EV_RESTARTED = 4, /* rebuilt in place: special pages and ports are new */
};

struct lamina_ctl_event {
	uint32_t kind; /* enum lamina_ctl_event_kind */
	uint32_t domid;
	uint32_t shutdown_reason;
	uint32_t pad;
	char name[LAMINA_NAME_MAX];
};

/* Grant requests carry a fixed array of LAMINA_GNT_BATCH entries (the exact payload size is part
 * of the protocol); count says how many are used. Statuses are Xen's GNTST_* values. */
#define LAMINA_GNT_BATCH 256
#define LAMINA_GNT_READONLY 0x1u   /* map entry: map read-only */
#define LAMINA_GNT_MAP_NOFD 0x1u   /* map request: the client kept the descriptors of this domain */
#define LAMINA_GNT_TO_GUEST 0x1u   /* copy segment: buffer -> grant (else grant -> buffer) */
#define LAMINA_GNT_BUFFER_MAX (64ull << 20)

struct lamina_ctl_gnt_map_ent {
	uint32_t ref;
	uint32_t flags; /* LAMINA_GNT_READONLY */
};

struct lamina_ctl_gnt_map {
	uint32_t domid; /* the granting domain */
	uint32_t count;
	uint32_t flags; /* LAMINA_GNT_MAP_NOFD */
	uint32_t pad;
	struct lamina_ctl_gnt_map_ent ent[LAMINA_GNT_BATCH];
};
_Static_assert(sizeof(struct lamina_ctl_gnt_map) == 16 + 8 * LAMINA_GNT_BATCH, "gnt_map layout");

/* mmap(fd, 4096, offset) gives the page: fds[0] is a read-only descriptor of the domain's RAM,
 * fds[1] (sent when a writable map succeeded) a read-write one. Unused entries are zero. */
struct lamina_ctl_gnt_mapped {
	int32_t status;	 /* GNTST_* */
	uint32_t handle; /* for UNMAP */
	uint64_t offset;
};

struct lamina_ctl_gnt_map_reply {
	uint32_t count;
	uint32_t nr_fds;
	struct lamina_ctl_gnt_mapped ent[LAMINA_GNT_BATCH];
};
_Static_assert(sizeof(struct lamina_ctl_gnt_map_reply) == 8 + 16 * LAMINA_GNT_BATCH, "gnt_map_reply layout");

struct lamina_ctl_gnt_unmap {
	uint32_t count;
	uint32_t pad;
	uint32_t handle[LAMINA_GNT_BATCH];
};
_Static_assert(sizeof(struct lamina_ctl_gnt_unmap) == 8 + 4 * LAMINA_GNT_BATCH, "gnt_unmap layout");

struct lamina_ctl_gnt_status {
	uint32_t count;
	uint32_t pad;
	int32_t status[LAMINA_GNT_BATCH]; /* GNTST_* per entry */
};
_Static_assert(sizeof(struct lamina_ctl_gnt_status) == 8 + 4 * LAMINA_GNT_BATCH, "gnt_status layout");

/* One copy between a grant and the connection's buffer (LAMINA_CTL_GNT_BUFFER). */
struct lamina_ctl_gnt_copy_seg {
	uint32_t domid;
	uint32_t ref;
	uint16_t offset; /* in the granted page; offset + len <= 4096 */
	uint16_t len;
	uint32_t flags; /* LAMINA_GNT_TO_GUEST */
	uint64_t buf_offset;
};
_Static_assert(sizeof(struct lamina_ctl_gnt_copy_seg) == 24, "gnt_copy_seg layout");

struct lamina_ctl_gnt_copy {
	uint32_t count;
	uint32_t pad;
	struct lamina_ctl_gnt_copy_seg seg[LAMINA_GNT_BATCH];
};
_Static_assert(sizeof(struct lamina_ctl_gnt_copy) == 8 + 24 * LAMINA_GNT_BATCH, "gnt_copy layout");

struct lamina_ctl_gnt_buffer {
	uint64_t size; /* page multiple, <= LAMINA_GNT_BUFFER_MAX */
};

/* Toolstack only: guest frames (RAM) of any domain, read-write. */
struct lamina_ctl_gnt_foreign {
	uint32_t domid;
	uint32_t count;
	uint64_t gfn[LAMINA_GNT_BATCH];
};
_Static_assert(sizeof(struct lamina_ctl_gnt_foreign) == 8 + 8 * LAMINA_GNT_BATCH, "gnt_foreign layout");

struct lamina_ctl_gnt_domid {
	uint32_t domid;
};

struct lamina_ctl_gnt_info {
	uint32_t domid;
	uint32_t nr_frames;
	uint32_t max_frames;
	uint32_t max_maptrack;
	uint64_t pins;	    /* uses of this domain's grants now (maps and copies in flight) */
	uint64_t copies;    /* copies through its grants that succeeded */
	uint64_t copy_fail; /* and that failed */
	uint32_t conn_maps; /* maps this connection holds (of any domain) */
	uint32_t all_maps;  /* maps every connection holds */
	uint32_t dead_maps; /* maps held of domains already destroyed */
	uint32_t pad;
};
_Static_assert(sizeof(struct lamina_ctl_gnt_info) == 56, "gnt_info layout");

struct lamina_ctl_gnt_limits {
	uint32_t domid;
	uint32_t max_frames;   /* 1..64 */
	uint32_t max_maptrack; /* maps this domain may hold */
	uint32_t pad;
};

/* The copy ring (LAMINA_CTL_GNT_RING): GNT_COPY's segments through shared memory instead of the
 * socket. One per connection, gone when it closes. The daemon creates a sealed memfd laid out as
 * [lamina_gnt_sring page][slots requests][slots responses][data buffer] (offsets in the reply) and
 * sends fds[0] that memfd, fds[1] "kick" (the client writes it when the daemon may be asleep: it
 * asked with req_event), fds[2] "done" (the daemon writes it when the client asked with rsp_event).
 * Indexes are free-running; a slot is index & (slots - 1). Segments have GNT_COPY's meaning, with
 * buf_offset inside the ring's own data buffer. */
#define LAMINA_GNT_RING_SLOTS_MIN 16u
#define LAMINA_GNT_RING_SLOTS_MAX 65536u
#define LAMINA_GNT_RING_OK 0u
#define LAMINA_GNT_RING_BROKEN 1u /* the daemon stopped serving it: error says why */

struct lamina_ctl_gnt_ring_setup {
	uint32_t slots;	   /* a power of two, LAMINA_GNT_RING_SLOTS_MIN..MAX */
	uint32_t flags;	   /* 0 */
	uint64_t buf_size; /* page multiple, <= LAMINA_GNT_BUFFER_MAX */
};
_Static_assert(sizeof(struct lamina_ctl_gnt_ring_setup) == 16, "gnt_ring_setup layout");

struct lamina_ctl_gnt_ring_info {
	uint32_t slots;
	uint32_t pad;
	uint64_t size; /* of the memfd */
	uint64_t req_off, rsp_off, buf_off, buf_size;
};
_Static_assert(sizeof(struct lamina_ctl_gnt_ring_info) == 48, "gnt_ring_info layout");

/* The shared indexes, one cache line per writer. Event indexes as Xen's rings: the producer of
 * new entries signals only when the other end's event index lies in (old, new]. */
struct lamina_gnt_sring {
	uint32_t req_prod;  /* client: requests published */
	uint32_t rsp_event; /* client: signal "done" when rsp_prod passes this */
	uint8_t pad0[56];
	uint32_t rsp_prod;  /* daemon: responses published */
	uint32_t req_event; /* daemon: signal "kick" when req_prod passes this */
	uint32_t state;	    /* daemon: LAMINA_GNT_RING_* */
	int32_t error;	    /* daemon: -errno of a broken ring */
	uint8_t pad1[48];
};
_Static_assert(sizeof(struct lamina_gnt_sring) == 128, "gnt_sring layout");
_Static_assert(__builtin_offsetof(struct lamina_gnt_sring, rsp_prod) == 64, "gnt_sring lines");

struct lamina_gnt_ring_req {
	uint64_t id; /* the client's, echoed in the response */
	struct lamina_ctl_gnt_copy_seg seg;
};
_Static_assert(sizeof(struct lamina_gnt_ring_req) == 32, "gnt_ring_req layout");

struct lamina_gnt_ring_rsp {
	uint64_t id;
	int32_t status; /* GNTST_* */
	uint32_t pad;
};
_Static_assert(sizeof(struct lamina_gnt_ring_rsp) == 16, "gnt_ring_rsp layout");

struct lamina_ctl_hostinfo {
	uint32_t version;
	uint32_t pid;
	uint32_t nr_domains;
	uint32_t pad;
	uint64_t uptime_ns;
	uint64_t total_memory_kib; /* guest RAM of every live domain */
};

/* LAMINA_CTL_DUMP_CORE: the request itself carries one descriptor (SCM_RIGHTS) of a regular file
 * the client opened for writing (not O_APPEND): lamina-hv writes the domain's ELF64 core into it
 * from offset 0 and truncates it to the core's size, so the daemon never opens a path a client
 * names. A running domain is paused for the dump and resumed after it; a paused, shut-down or
 * crashed one is dumped as it is. The core's layout is in docs/design.md ("Core dumps"). */
struct lamina_ctl_dump_core {
	struct lamina_ctl_domref dom;
	uint32_t flags; /* 0: no flags are defined */
};

struct lamina_ctl_dump_core_reply {
	uint64_t file_size;  /* bytes, holes included */
	uint64_t data_bytes; /* guest bytes written: all-zero pages stay holes */
	uint64_t ram_bytes;  /* guest bytes the PT_LOAD segments describe */
	uint64_t elapsed_ns;
	uint32_t nr_vcpus;
	uint32_t nr_loads; /* PT_LOAD segments */
};

#endif
