/* domctl's block-device commands: attach, detach and list vbds through the store (the directories
 * lamina-blkback and the guest's blkfront meet in), the create-time disk checks, and `stat`. */
#ifndef LAMINA_CMD_BLOCK_H
#define LAMINA_CMD_BLOCK_H

#include <stdint.h>

#include "domctl.h"
#include "domcfg.h"

int domctl_cmd_block_attach(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_block_detach(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_block_list(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_stat(struct domctl_ctx *ctx, int argc, char **argv);

/* Xen's virtual-device number of xvdX: 202 << 8 | disk << 4 (disk < 16), else 1 << 28 | disk << 8.
 * -EINVAL for a name that is not xvd[a-z]{1,2}. */
int domctl_block_devid(const char *target, uint32_t *devid);
/* Before a domain starts: every image exists, has the access asked for and is not locked against
 * it (the same OFD lock lamina-blkback takes). 0 or -errno, the reason printed. */
int domctl_block_check(const struct domcfg *cfg);
/* Write the vbd directories of every disk of cfg for domid and wait for lamina-blkback to offer
 * them (InitWait). 0 or -errno, the reason printed. */
int domctl_block_attach_cfg(const struct domctl_ctx *ctx, const struct domcfg *cfg, uint32_t domid);
/* NAME|ID to a domain id through lamina-hv (the reason printed on failure). */
int domctl_block_domid(const struct domctl_ctx *ctx, const char *arg, uint32_t *domid);

#endif
