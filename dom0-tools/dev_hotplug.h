/* Device hot-plug, the toolstack's side for every split-driver type: the backend/frontend store
 * directories (permissions first), waiting for the back-end's offer, detach with timeout or force. */
#ifndef LAMINA_DEV_HOTPLUG_H
#define LAMINA_DEV_HOTPLUG_H

#include <stddef.h>
#include <stdint.h>

#include "domctl.h"
#include "xs_client.h"

#define HOTPLUG_WAIT_MS 5000 /* for the back-end to offer a new device (InitWait) */
#define HOTPLUG_DETACH_MS 10000
#define HOTPLUG_PATH 128

/* One device of one domain, as the messages name it. */
struct hotplug_dev {
	const char *type;   /* store directory name: "vbd", "vif" */
	const char *daemon; /* the back-end serving it: "lamina-blkback" */
	const char *label;  /* how messages name the device: "xvda", "vif 1.0" */
	uint32_t domid, devid;
};

/* One node of a type's own, written next to the common ones. */
struct hotplug_node {
	const char *node;
	const char *value;
};

/* The two directories: BACKEND/<type>/<domid>/<devid> and /local/domain/<domid>/device/<type>/<devid>. */
void hotplug_paths(const struct hotplug_dev *hd, char *be, char *fe, size_t len);
int hotplug_read(struct xs_client *xs, const char *dir, const char *node, char *out, size_t len);
int hotplug_write(struct xs_client *xs, uint32_t tx, const char *dir, const char *node, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Open the store for a command; the reason printed on failure. */
int hotplug_store_open(const struct domctl_ctx *ctx, struct xs_client **xs);
/* 1 if the back-end directory of hd exists (has a state node). */
int hotplug_exists(struct xs_client *xs, const struct hotplug_dev *hd);

/* Write both directories in one transaction (retried on conflicts): permissions first (the guest
 * owns its half and may only read ours; nodes inherit them), then the linking nodes, the states
 * and the type's own nodes; then wait for the back-end to offer the device. On failure nothing is
 * left behind; the reason printed. */
int hotplug_attach(struct xs_client *xs, const struct hotplug_dev *hd, const struct hotplug_node *fe_nodes,
		   size_t nfe, const struct hotplug_node *be_nodes, size_t nbe);
/* Ask the back-end to close (online = 0) and wait up to timeout_ms for Closed, unless force; then
 * remove both directories. A DOMCTL_EXIT_* status, the reason printed; domname for messages. */
int hotplug_detach(struct xs_client *xs, const struct hotplug_dev *hd, const char *domname, int force,
		   int timeout_ms);
/* --timeout SECONDS (NULL: the default) in milliseconds, or -1 (the reason printed). */
int hotplug_timeout_ms(const char *arg);

const char *hotplug_state_name(int state);
/* Call row for every device directory of type under domid with its back-end directory, its
 * front-end directory and both states (-1 when absent). */
typedef void (*hotplug_row_fn)(void *arg, struct xs_client *xs, const char *devid, const char *be, const char *fe,
			       int be_state, int fe_state);
int hotplug_list(struct xs_client *xs, const char *type, uint32_t domid, hotplug_row_fn row, void *arg);

/* What the detach and list commands need of a device type. */
struct hotplug_type {
	const char *type, *daemon;
	/* The DEV argument to a device number and the label messages use; -EINVAL, reason printed. */
	int (*parse)(const char *arg, uint32_t *devid, char *label, size_t len);
	const char *list_header; /* printed above the rows */
	hotplug_row_fn row;	 /* its arg is a pointer to the domain id */
};
/* `TYPE-detach NAME|ID DEV [--force] [--timeout S]` and `TYPE-list NAME|ID`. DOMCTL_EXIT_*. */
int hotplug_cmd_detach(struct domctl_ctx *ctx, int argc, char **argv, const struct hotplug_type *t);
int hotplug_cmd_list(struct domctl_ctx *ctx, int argc, char **argv, const struct hotplug_type *t);

#endif
