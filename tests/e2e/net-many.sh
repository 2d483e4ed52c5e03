#!/bin/bash
# 20 guests on one bridge: every one answers Domain-0's ping, one lamina-netback for all.
. "$LAMINA_SRCDIR/tests/e2e/net-lib.sh"
lt_need_kvm
nt_host_start
N=${LAMINA_NET_MANY:-20}
for i in $(seq 1 "$N"); do
	f=$(lt_xml "g$i" "app=net-echo ip=10.213.0.$((i + 1))/24 secs=120" 32768 \
		"<devices><console type='pty'/><interface type='bridge'><source bridge='lambr0'/></interface></devices>")
	nt_exec "$LAMINA_DOMCTL" create "$f" >/dev/null || lt_fail "create g$i failed"
done
for i in $(seq 1 "$N"); do
	lt_wait_console "g$i" "net-echo: up" 30 || lt_fail "g$i did not come up"
done
lost=0
for i in $(seq 1 "$N"); do
	nt_exec ping -c 2 -i 0.1 -W 2 "10.213.0.$((i + 1))" >/dev/null || { echo "g$i: no answer"; lost=$((lost + 1)); }
done
[ "$lost" = 0 ] || lt_fail "$lost of $N guests did not answer"
ports=$(nt_exec ip -o link show master lambr0 | grep -c "vif")
[ "$ports" = "$N" ] || lt_fail "lambr0 has $ports vif ports, not $N"
echo "$N guests answered; lambr0 has $ports vif ports"
lt_pass
