/* `domctl store ...`: the store (lamina-xenstored) read and changed from Domain-0. The commands
 * themselves live in xenstore-like's client library; this row only hands over the run directory. */
#include "domctl.h"
#include "xs_client.h"

int domctl_cmd_store(struct domctl_ctx *ctx, int argc, char **argv)
{
	return xs_cli_main(argc, argv, ctx->rundir);
}
