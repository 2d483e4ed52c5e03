/* domctl's network commands: attach, detach and list vifs through the store (the directories
 * lamina-netback and the guest's netfront meet in), create-time vifs, and the default bridge. */
#ifndef LAMINA_CMD_NET_H
#define LAMINA_CMD_NET_H

#include <stdint.h>

#include "domctl.h"
#include "domcfg.h"

int domctl_cmd_net_attach(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_net_detach(struct domctl_ctx *ctx, int argc, char **argv);
int domctl_cmd_net_list(struct domctl_ctx *ctx, int argc, char **argv);
/* Write the vif directories of every <interface> of cfg (MACs already set) for domid and wait for
 * lamina-netback to offer them (InitWait). 0 or -errno, the reason printed. */
int domctl_net_attach_cfg(const struct domctl_ctx *ctx, const struct domcfg *cfg, uint32_t domid);
/* The default bridge `domctl host start --bridge` makes: an address for Domain-0, no forwarding. */
#define DOMCTL_NET_BRIDGE "lambr0"
#define DOMCTL_NET_BRIDGE_ADDR "10.213.0.1"
int domctl_net_default_bridge(void);
/* A random MAC in Xen's 00:16:3e range (locally unique, unicast). */
int domctl_net_gen_mac(uint8_t mac[6]);

#endif
