/* The store daemon's core: the node tree, permissions, transactions, watches, per-domain quotas and
 * the per-connection request state machine. Transport-free: sockets and rings feed it bytes. */
#ifndef LAMINA_XS_STORE_H
#define LAMINA_XS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <xen/io/xs_wire.h>

_Static_assert(sizeof(struct xsd_sockmsg) == 16, "xsd_sockmsg is 16 bytes");
_Static_assert(XS_TYPE_COUNT == 23, "xs_wire.h message numbering");

/* Permission bits (the wire letters: n=0, r=1, w=2, b=3). OWNER is internal. */
#define XS_P_NONE 0u
#define XS_P_READ 1u
#define XS_P_WRITE 2u
#define XS_P_BOTH 3u
#define XS_P_OWNER 4u
#define XS_P_ALL (XS_P_READ | XS_P_WRITE | XS_P_OWNER)

#define XS_DOMID_MAX 65535u
#define XS_DOMID_NONE 0xffffffffu

struct xs_perm {
	uint32_t id;
	uint32_t perms; /* XS_P_* */
};

/* Quotas (apply to unprivileged connections, as in Xen's xenstored). */
enum xs_quota_kind {
	XS_Q_NODES,
	XS_Q_WATCHES,
	XS_Q_OUTSTANDING,
	XS_Q_TXNS,
	XS_Q_NODE_SIZE,
	XS_Q_PAYLOAD,
	XS_Q_PERMS,
	XS_Q_COUNT
};

struct xs_quota {
	uint32_t v[XS_Q_COUNT];
};

/* A node, in the live tree or as a transaction's private copy. */
struct xs_node {
	char *path;
	char *value;
	uint32_t vlen;
	uint32_t nperms;
	struct xs_perm *perms;
	char *children; /* packed NUL-terminated names, insertion order */
	uint32_t clen, ccap;
	uint64_t gen; /* store generation of the last change */
	uint32_t hash;
	struct xs_node *hnext;
	/* Transaction copies only. */
	bool present;	   /* false: deleted (tombstone) or absent */
	bool base_present; /* existed in the live tree when first touched */
	bool dirty;	   /* changed by the transaction */
	bool fire;	   /* fire watches for this path at commit */
	bool fire_recurse; /* ...and for watches below it (removal) */
	uint64_t base_gen;
	struct xs_node *onext; /* transaction order list */
};

struct xs_htab {
	struct xs_node **b;
	size_t nb, count;
};

struct xs_conn;
struct xs_store;

struct xs_txn {
	uint32_t id;
	struct xs_conn *conn;
	struct xs_htab ov;	 /* path -> private copy */
	struct xs_node *ofirst;	 /* copies in first-touch order */
	int32_t own_nodes_delta; /* nodes the connection's domain gained */
	struct xs_txn *next;
};

struct xs_watch {
	char *path; /* canonical (absolute or @special) */
	char *token;
	bool relative;
	struct xs_watch *next;
};

struct xs_outbuf {
	struct xs_outbuf *next;
	uint32_t len;
	bool is_reply;
	char data[]; /* header + payload */
};

/* How a connection's bytes leave: the socket or ring transport implements this. */
struct xs_conn_tops {
	const char *name;
	int (*flush)(struct xs_conn *c); /* push queued output; 0 or -errno (then closed) */
	void (*destroy)(struct xs_conn *c);
	/* Optional: the peer lets watch events pile up past the limit. Without it they are
	 * dropped (sockets); a guest ring that never drains is disconnected instead. */
	void (*backlog)(struct xs_conn *c, const char *why);
};

#define XS_CONN_OUT_LIMIT (1u << 20) /* bytes of queued replies before input is paused */
#define XS_CONN_EVENT_LIMIT 4096u    /* queued watch events before new ones are dropped */

struct xs_conn {
	struct xs_store *st;
	uint32_t id; /* domain id; 0 for sockets */
	bool priv;
	uint32_t target; /* SET_TARGET: domain this one acts for, or XS_DOMID_NONE */
	const struct xs_conn_tops *tops;
	void *tctx;
	int fd;
	/* input state machine */
	struct xsd_sockmsg hdr;
	uint32_t hdr_got;
	uint32_t body_got;
	bool discard; /* draining an over-quota body to answer E2BIG */
	char body[XENSTORE_PAYLOAD_MAX + 1];
	/* output */
	struct xs_outbuf *out_head, *out_tail;
	uint32_t out_off;
	size_t out_bytes;
	uint32_t out_replies, out_events;
	bool dead;
	bool on_dirty;
	struct xs_conn *dirty_next;
	struct xs_conn *next, *prev;
	struct xs_watch *watches;
	uint32_t nwatches;
	struct xs_txn *txns;
	uint32_t ntxns;
	uint64_t requests;
};

struct xs_ring_ops;
struct xs_ring;

struct xs_domain {
	uint32_t domid;
	bool introduced;
	bool shutdown;
	uint64_t mfn;
	uint32_t port;
	uint32_t nodes; /* nodes owned */
	uint32_t target;
	struct xs_conn *conn; /* its ring connection, when a mapper is present */
	struct xs_ring *ring;
	int64_t last_log[XS_Q_COUNT];
	struct xs_domain *next;
};

struct xs_special {
	const char *name;
	uint32_t nperms;
	struct xs_perm perms[8];
};

#define XS_LOG_ERR 0
#define XS_LOG_INFO 1
#define XS_LOG_DEBUG 2

struct xs_store {
	struct xs_htab nodes;
	uint64_t gen;
	uint32_t next_txn;
	struct xs_quota quota;
#define XS_DOM_BUCKETS 256
	struct xs_domain *domains[XS_DOM_BUCKETS];
	struct xs_conn *conns;
	struct xs_conn *dirty;
	struct xs_special special[2]; /* @introduceDomain, @releaseDomain */
	FILE *log;
	int log_level;
	bool tree_dirty;		    /* changed since the last persist */
	const struct xs_ring_ops *ring_ops; /* NULL: guests cannot be connected yet */
	void *ring_ctx;
	int (*ring_attach)(struct xs_store *st, struct xs_domain *d); /* set by the ring transport */
	void (*ring_detach)(struct xs_store *st, struct xs_domain *d);
	uint32_t ndead; /* connections waiting to be reaped */
	bool stop;
};

/* xs_node.c: paths */
int xs_path_canon(const struct xs_conn *c, const char *in, char *out, size_t outsz);
bool xs_path_valid(const char *p);
bool xs_path_is_under(const char *child, const char *parent); /* child == parent or below */
int xs_path_parent(const char *p, char *out, size_t outsz);
const char *xs_path_base(const char *p);
uint32_t xs_path_hash(const char *p);

/* xs_node.c: nodes and permissions */
int xs_htab_init(struct xs_htab *h, size_t nb);
void xs_htab_free_all(struct xs_htab *h);
struct xs_node *xs_htab_get(const struct xs_htab *h, const char *path);
int xs_htab_put(struct xs_htab *h, struct xs_node *n);
struct xs_node *xs_htab_take(struct xs_htab *h, const char *path);
struct xs_node *xs_node_new(const char *path);
struct xs_node *xs_node_dup(const struct xs_node *n);
void xs_node_free(struct xs_node *n);
int xs_node_set_value(struct xs_node *n, const char *v, uint32_t len);
int xs_node_set_perms(struct xs_node *n, const struct xs_perm *p, uint32_t np);
int xs_node_child_add(struct xs_node *n, const char *name);
int xs_node_child_del(struct xs_node *n, const char *name);
uint32_t xs_node_size(const struct xs_node *n);
int xs_perms_parse(const char *buf, uint32_t len, struct xs_perm *out, uint32_t max, uint32_t *np);
int xs_perms_format(const struct xs_perm *p, uint32_t np, char *out, size_t outsz);
uint32_t xs_perm_for_conn(const struct xs_conn *c, const struct xs_perm *p, uint32_t np);

/* xs_tree.c: node access for a connection, inside a transaction or on the live tree */
struct xs_view {
	struct xs_store *st;
	struct xs_conn *c;
	struct xs_txn *t; /* NULL: live */
};
int xs_tree_init(struct xs_store *st);
int xs_tree_get(struct xs_view *v, const char *path, uint32_t need, const struct xs_node **out);
int xs_tree_write(struct xs_view *v, const char *path, const char *val, uint32_t len);
int xs_tree_mkdir(struct xs_view *v, const char *path);
int xs_tree_rm(struct xs_view *v, const char *path);
int xs_tree_set_perms(struct xs_view *v, const char *path, const struct xs_perm *p, uint32_t np);
int xs_tree_live_put(struct xs_store *st, struct xs_node *n); /* loading: insert a complete node */
void xs_tree_count_owner(struct xs_store *st, const struct xs_node *n, int delta);

/* xs_txn.c */
int xs_txn_start(struct xs_conn *c, uint32_t *id);
struct xs_txn *xs_txn_find(struct xs_conn *c, uint32_t id);
int xs_txn_end(struct xs_conn *c, struct xs_txn *t, bool commit);
void xs_txn_free(struct xs_txn *t);
void xs_txn_drop_all(struct xs_conn *c);

/* xs_watch.c */
int xs_watch_add(struct xs_conn *c, const char *path, const char *token, bool relative);
int xs_watch_del(struct xs_conn *c, const char *path, const char *token);
void xs_watch_drop_all(struct xs_conn *c);
void xs_watch_fire(struct xs_store *st, const char *path, const struct xs_perm *p, uint32_t np, bool recurse);
void xs_watch_fire_special(struct xs_store *st, const char *name);
int xs_watch_event(struct xs_conn *c, const struct xs_watch *w, const char *path);

/* xs_domain.c */
void xs_quota_defaults(struct xs_quota *q);
int xs_quota_by_name(const char *name);
const char *xs_quota_name(int kind);
struct xs_domain *xs_domain_get(struct xs_store *st, uint32_t domid, bool create);
int xs_quota_check(struct xs_conn *c, int kind, uint64_t wanted);
void xs_log(struct xs_store *st, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int xs_domain_introduce(struct xs_store *st, uint32_t domid, uint64_t mfn, uint32_t port);
int xs_domain_release(struct xs_store *st, uint32_t domid);
struct xs_special *xs_special_get(struct xs_store *st, const char *name);

/* xs_conn.c */
struct xs_store *xs_store_new(void);
void xs_store_free(struct xs_store *st);
struct xs_conn *xs_conn_new(struct xs_store *st, uint32_t domid, bool priv, const struct xs_conn_tops *tops,
			    void *tctx);
void xs_conn_free(struct xs_conn *c);
int xs_conn_input(struct xs_conn *c, const char *data, size_t len, size_t *used);
bool xs_conn_paused(const struct xs_conn *c);
int xs_conn_queue(struct xs_conn *c, uint32_t type, uint32_t req_id, uint32_t tx_id, const void *a,
		  uint32_t alen, const void *b, uint32_t blen, bool is_reply);
int xs_conn_error(struct xs_conn *c, const struct xsd_sockmsg *h, int err);
void xs_conn_consumed(struct xs_conn *c, size_t n);
void xs_store_flush_dirty(struct xs_store *st);
void xs_conn_kill(struct xs_conn *c, const char *why);
const char *xs_errno_name(int err);

/* xs_ops.c / xs_control.c */
int xs_ops_dispatch(struct xs_conn *c, const struct xsd_sockmsg *h, char *body);
int xs_control(struct xs_conn *c, const struct xsd_sockmsg *h, char *body, uint32_t len);

/* xs_persist.c */
int xs_persist_save(struct xs_store *st, const char *file);
int xs_persist_load(struct xs_store *st, const char *file);

#endif
