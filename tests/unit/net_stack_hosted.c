/* The guest network layer (guest/net/) built hosted, so the unit tests run the very code the
 * guest kernel links. */
#define NET_HOSTED 1
#include "../../guest/net/net_eth.c"
#include "../../guest/net/net_ip.c"
