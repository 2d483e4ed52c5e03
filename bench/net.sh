#!/usr/bin/env bash
# ./run bench net: UDP throughput between a guest (netfront + the guest network layer) and Domain-0
# through lamina-netback, a tap and the bridge lambr0, against a veth pair between two network
# namespaces measured with iperf3 -u in the same run, at 64-byte and 1514-byte Ethernet frames
# (UDP payloads of 22 and 1472 bytes):
#   - guest -> Domain-0 and Domain-0 -> guest: Mbit/s and packets/s (what arrived), with loss
#   - target: >= 10 Gbit/s, or >= 50% of the veth figure where that is lower
# Everything runs in namespaces this script creates and deletes; nothing leaves them.
# LAMINA_BENCH_OBJ=DIR runs the programs of another build tree; LAMINA_BENCH_SECS (default 3).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
OBJ=${LAMINA_BENCH_OBJ:-$BENCH_OBJ}
if [ -n "${LAMINA_BENCH_OBJ:-}" ]; then
	export PATH="$OBJ/dom0-tools:$PATH" LAMINA_HV="$OBJ/hypervisor/lamina-hv"
	export LAMINA_XENSTORED="$OBJ/xenstore-like/lamina-xenstored" LAMINA_CONSOLED="$OBJ/pv-drivers/lamina-consoled"
	export LAMINA_BLKBACK="$OBJ/pv-drivers/lamina-blkback" LAMINA_NETBACK="$OBJ/pv-drivers/lamina-netback"
	LAMINA_GUEST="$OBJ/guest/lamina-guest"
fi
SECS=${LAMINA_BENCH_SECS:-3}
NETUDP="$OBJ/bench/net-udp"
command -v iperf3 >/dev/null || { echo "iperf3 is not installed: cannot measure the veth limit"; exit 1; }
command -v jq >/dev/null || { echo "jq is not installed"; exit 1; }
[ -x "$NETUDP" ] || { echo "$NETUDP is missing (build first)"; exit 1; }
bench_begin net

NS=lamina-bench-$$
VA=lamina-bva-$$
VB=lamina-bvb-$$
export LAMINA_RUNDIR=$(mktemp -d /tmp/lamina-bench.XXXXXX)
cleanup() {
	ip netns exec "$NS" domctl host stop >/dev/null 2>&1 || true
	for n in "$NS" "$VA" "$VB"; do ip netns del "$n" 2>/dev/null || true; done
	rm -rf "$LAMINA_RUNDIR"
}
trap cleanup EXIT
for n in "$NS" "$VA" "$VB"; do
	ip netns add "$n"
	ip netns exec "$n" ip link set lo up
	ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done

# ---- the limit: iperf3 -u over a veth pair between two namespaces ----
ip link add veth-a netns "$VA" type veth peer name veth-b netns "$VB"
ip netns exec "$VA" ip addr add 10.214.0.1/24 dev veth-a
ip netns exec "$VB" ip addr add 10.214.0.2/24 dev veth-b
ip netns exec "$VA" ip link set veth-a up
ip netns exec "$VB" ip link set veth-b up
# veth_run PAYLOAD: "mbps pps" at the receiver
veth_run() {
	local j
	ip netns exec "$VB" timeout $((SECS * 2 + 20)) iperf3 -s -1 -p 5301 >/dev/null 2>&1 &
	sleep 0.3
	j=$(ip netns exec "$VA" timeout $((SECS * 2 + 20)) iperf3 -u -c 10.214.0.2 -p 5301 -b 0 -l "$1" -t "$SECS" -J)
	wait
	echo "$j" | jq -r --argjson l "$1" '.end.sum as $s | [($s.bits_per_second * (1 - $s.lost_percent / 100) / 1e6 | floor),
		(($s.packets - $s.lost_packets) / $s.seconds | floor), ($s.lost_percent * 100 | floor / 100)] | @tsv'
}
read -r veth_small_mbps veth_small_pps veth_small_loss < <(veth_run 22)
read -r veth_big_mbps veth_big_pps veth_big_loss < <(veth_run 1472)
echo "veth (iperf3 -u): 64-byte frames $veth_small_mbps Mbit/s $veth_small_pps pps (loss $veth_small_loss%)," \
	"1514-byte frames $veth_big_mbps Mbit/s $veth_big_pps pps (loss $veth_big_loss%)"

# ---- Lamina: a host in its namespace, one guest per stream ----
ip netns exec "$NS" domctl host start --bridge >/dev/null
guest_xml() { # NAME CMDLINE
	cat >"$LAMINA_RUNDIR/$1.xml" <<XML
<domain type='xen'><name>$1</name><memory unit='KiB'>32768</memory><vcpu>1</vcpu>
<os><type>xenpvh</type><kernel>$LAMINA_GUEST</kernel><cmdline>$2</cmdline></os>
<devices><console type='pty'/><interface type='bridge'><source bridge='lambr0'/></interface></devices></domain>
XML
	echo "$LAMINA_RUNDIR/$1.xml"
}
wait_console() { # NAME REGEX SECS
	for ((i = 0; i < $3 * 20; i++)); do
		ip netns exec "$NS" domctl console --dump "$1" 2>/dev/null | grep -qE "$2" && return 0
		sleep 0.05
	done
	echo "guest $1 did not print /$2/:"; ip netns exec "$NS" domctl console --dump "$1" || true
	return 1
}
# guest_tx PAYLOAD: guest -> Domain-0, measured at the Domain-0 sink: "mbps pps loss%"
guest_tx() {
	local out sent got pkts bytes usec
	n=tx$1 # one guest name per stream (this runs in a subshell: no counter survives)
	ip netns exec "$NS" timeout $((SECS + 40)) "$NETUDP" sink 5201 $((SECS + 30)) >"$LAMINA_RUNDIR/sink.out" &
	sleep 0.2
	ip netns exec "$NS" domctl create "$(guest_xml $n "app=net-bench ip=10.213.0.2/24 mode=tx dst=10.213.0.1 size=$1 secs=$SECS")" >/dev/null
	wait_console $n "BENCH net guest-to-dom0" $((SECS + 30)) >&2
	wait
	out=$(ip netns exec "$NS" domctl console --dump $n | grep "BENCH net")
	sent=$(echo "$out" | sed -n 's/.* pkts=\([0-9]*\).*/\1/p')
	read -r pkts bytes usec < <(sed -n 's/pkts=\([0-9]*\) bytes=\([0-9]*\) usec=\([0-9]*\)/\1 \2 \3/p' "$LAMINA_RUNDIR/sink.out")
	ip netns exec "$NS" domctl destroy $n >/dev/null 2>&1 || true
	awk -v p="$pkts" -v u="$usec" -v s="$sent" -v l="$1" 'BEGIN { if (u == 0) u = 1;
		x = s ? (s - p) * 100 / s : 0; if (x < 0) x = 0; printf "%d %d %.2f\n", p * l * 8 / u, p * 1e6 / u, x }'
}
# guest_rx PAYLOAD: Domain-0 -> guest, measured in the guest: "mbps pps loss%"
guest_rx() {
	local out sent got usec
	n=rx$1
	ip netns exec "$NS" domctl create "$(guest_xml $n "app=net-bench ip=10.213.0.2/24 mode=rx size=$1 secs=$SECS")" >/dev/null
	wait_console $n "net-bench: ready" 30 >&2
	sleep 0.3
	ip netns exec "$NS" ping -c 1 -W 2 10.213.0.2 >/dev/null # ARP before the stream
	sent=$(ip netns exec "$NS" "$NETUDP" blast 10.213.0.2 5201 "$1" "$SECS" | sed -n 's/pkts=\([0-9]*\).*/\1/p')
	wait_console $n "BENCH net dom0-to-guest" 30 >&2
	out=$(ip netns exec "$NS" domctl console --dump $n | grep "BENCH net")
	got=$(echo "$out" | sed -n 's/.* pkts=\([0-9]*\).*/\1/p')
	usec=$(echo "$out" | sed -n 's/.* usec=\([0-9]*\).*/\1/p')
	ip netns exec "$NS" domctl destroy $n >/dev/null 2>&1 || true
	awk -v p="$got" -v u="$usec" -v s="$sent" -v l="$1" 'BEGIN { if (u == 0) u = 1;
		x = s ? (s - p) * 100 / s : 0; if (x < 0) x = 0; printf "%d %d %.2f\n", p * l * 8 / u, p * 1e6 / u, x }'
}
read -r tx_small_mbps tx_small_pps tx_small_loss < <(guest_tx 22)
read -r tx_big_mbps tx_big_pps tx_big_loss < <(guest_tx 1472)
read -r rx_small_mbps rx_small_pps rx_small_loss < <(guest_rx 22)
read -r rx_big_mbps rx_big_pps rx_big_loss < <(guest_rx 1472)
echo "guest -> Domain-0: 64-byte $tx_small_mbps Mbit/s $tx_small_pps pps (loss $tx_small_loss%)," \
	"1514-byte $tx_big_mbps Mbit/s $tx_big_pps pps (loss $tx_big_loss%)"
echo "Domain-0 -> guest: 64-byte $rx_small_mbps Mbit/s $rx_small_pps pps (loss $rx_small_loss%)," \
	"1514-byte $rx_big_mbps Mbit/s $rx_big_pps pps (loss $rx_big_loss%)"

# Mbit/s of UDP payload on both sides, as iperf3 counts it; packets/s of what arrived.
tgt() { # VETH_MBPS: the ratio target, 10 Gbit/s or 50% of veth, whichever is lower
	awk -v v="$1" 'BEGIN { if (v * 0.5 < 10000) print ">= 0.5"; else printf ">= %.3f\n", 10000 / v }'
}
bench_metric "net guest->dom0 1514B Mbit/s" "$tx_big_mbps" Mbit/s "$veth_big_mbps" "$(tgt "$veth_big_mbps")"
bench_metric "net guest->dom0 1514B pps" "$tx_big_pps" pps "$veth_big_pps" ""
bench_metric "net guest->dom0 64B Mbit/s" "$tx_small_mbps" Mbit/s "$veth_small_mbps" "$(tgt "$veth_small_mbps")"
bench_metric "net guest->dom0 64B pps" "$tx_small_pps" pps "$veth_small_pps" ""
bench_metric "net dom0->guest 1514B Mbit/s" "$rx_big_mbps" Mbit/s "$veth_big_mbps" "$(tgt "$veth_big_mbps")"
bench_metric "net dom0->guest 1514B pps" "$rx_big_pps" pps "$veth_big_pps" ""
bench_metric "net dom0->guest 64B Mbit/s" "$rx_small_mbps" Mbit/s "$veth_small_mbps" "$(tgt "$veth_small_mbps")"
bench_metric "net dom0->guest 64B pps" "$rx_small_pps" pps "$veth_small_pps" ""
bench_metric "net dom0->guest 1514B loss %" "$rx_big_loss" % 0 ""
bench_metric "net guest->dom0 1514B loss %" "$tx_big_loss" % 0 ""
bench_end
