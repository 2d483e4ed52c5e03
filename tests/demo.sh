#!/usr/bin/env bash
# ./run demo: start a Lamina host, boot guests and show each part working. Everything runs in a
# private run directory (LAMINA_RUNDIR, default a fresh temporary one) and stops at the end
# unless --keep is given.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$top/build/bin:$top/build/sbin:$PATH"
export LAMINA_HV="$top/build/sbin/lamina-hv" LAMINA_XENSTORED="$top/build/sbin/lamina-xenstored"
export LAMINA_CONSOLED="$top/build/sbin/lamina-consoled" LAMINA_BLKBACK="$top/build/sbin/lamina-blkback"
export LAMINA_NETBACK="$top/build/sbin/lamina-netback"
guest="$top/build/share/lamina/guest/lamina-guest"
examples="$top/build/share/lamina/examples"
keep=0; [ "${1:-}" = --keep ] && keep=1
: "${LAMINA_RUNDIR:=$(mktemp -d /tmp/lamina-demo.XXXXXX)}"
export LAMINA_RUNDIR

b=$(tput bold 2>/dev/null || true); n=$(tput sgr0 2>/dev/null || true)
step() { printf '\n%s== %s%s\n' "$b" "$*" "$n"; }
run() { printf '%s$ %s%s\n' "$b" "$*" "$n"; "$@"; }
net_ns="" net_dir=""
stop_host() {
	[ $keep = 1 ] || domctl host stop >/dev/null 2>&1 || true
	if [ -n "$net_ns" ]; then
		ip netns exec "$net_ns" env LAMINA_RUNDIR="$net_dir" domctl host stop >/dev/null 2>&1 || true
		ip netns del "$net_ns" 2>/dev/null || true
		rm -rf "$net_dir"
	fi
}
trap stop_host EXIT

step "The host: is KVM usable here?"
run domctl host check

step "Start the host daemons (run directory $LAMINA_RUNDIR)"
run domctl host start
run domctl host status

step "Boot a guest that greets and powers off"
run domctl create "$examples/hello.xml"
run domctl wait hello --timeout 20
run domctl console --dump hello

step "The guest checks the hypercall ABI from inside (ring 3, its native steady state)"
run domctl create "$examples/selftest.xml"
run domctl wait selftest --timeout 60 || true
domctl console --dump selftest | tail -n 12
domctl console --dump selftest | grep -q '^Test result: SUCCESS' || { echo "selftest failed"; exit 1; }

step "A spinning guest: pause, unpause, inspect, destroy"
sed "s|<name>hello</name>|<name>spinner</name>|; s|app=hello|app=spin|" "$examples/hello.xml" >"$LAMINA_RUNDIR/spinner.xml"
run domctl create "$LAMINA_RUNDIR/spinner.xml"
sleep 0.5
run domctl pause spinner
run domctl list
a=$(domctl console --dump spinner | wc -l); sleep 0.5; b2=$(domctl console --dump spinner | wc -l)
echo "console lines while paused: $a -> $b2"
run domctl unpause spinner
sleep 0.5
domctl console --dump spinner | tail -n 2
run domctl info spinner --json
run domctl destroy spinner

step "A guest that crashes only crashes itself"
sed "s|<name>hello</name>|<name>crasher</name>|; s|app=hello|app=crash crash=pagefault|; s|<on_crash>[a-z-]*</on_crash>|<on_crash>preserve</on_crash>|" \
	"$examples/hello.xml" >"$LAMINA_RUNDIR/crasher.xml"
grep -q on_crash "$LAMINA_RUNDIR/crasher.xml" || sed -i 's|</domain>|  <on_crash>preserve</on_crash>\n</domain>|' "$LAMINA_RUNDIR/crasher.xml"
run domctl create "$LAMINA_RUNDIR/crasher.xml"
run domctl wait crasher --timeout 20 || true
domctl console --dump crasher | tail -n 3
run domctl list
run domctl dump-core crasher "$LAMINA_RUNDIR/crasher.core"
if command -v gdb >/dev/null; then
	printf '%s$ gdb -batch -ex bt lamina-guest crasher.core%s\n' "$b" "$n"
	gdb -batch -nx -ex bt "$guest" "$LAMINA_RUNDIR/crasher.core" 2>/dev/null | grep -E '^#[0-9]' | awk '!seen[$0]++' | head -n 5
fi
run domctl destroy crasher

# mkxml NAME CMDLINE [MEM_KIB] [EXTRA]: a domain config in the run directory.
mkxml() {
	cat >"$LAMINA_RUNDIR/$1.xml" <<XML
<domain type='xen'><name>$1</name><memory unit='KiB'>${3:-16384}</memory><vcpu>1</vcpu>
<os><type>xenpvh</type><kernel>$guest</kernel><cmdline>$2</cmdline></os>${4:-}</domain>
XML
	echo "$LAMINA_RUNDIR/$1.xml"
}
result() { domctl console --dump "$1" | grep '^Test result:' | tail -n 1; }

step "Console, both ways: a guest echoes what Domain-0 types (console ring + lamina-consoled)"
run domctl create "$(mkxml echo app=echo)"
printf 'hello from Domain-0\nquit\n' | domctl console echo >/dev/null 2>&1 || true
run domctl wait echo --timeout 20 || true
domctl console --dump echo | tail -n 4

step "Event channels and timers from inside a guest (2-level ABI, ring-3 upcalls)"
run domctl create "$(mkxml events app=evtchn-test)"
run domctl wait events --timeout 60 || true
domctl console --dump events | tail -n 6
run domctl create "$(mkxml sleeper "app=sleep ms=10 count=20")"
run domctl wait sleeper --timeout 60 || true
domctl console --dump sleeper | tail -n 3

step "Two vCPUs: the guest brings vCPU 1 up (VCPUOP_initialise + VCPUOP_up), both run at once"
sed -i 's|<vcpu>1</vcpu>|<vcpu>2</vcpu>|' "$(mkxml smp app=smp-test)"
run domctl create "$LAMINA_RUNDIR/smp.xml"
run domctl wait smp --timeout 60 || true
domctl console --dump smp | grep -E '^  |^Test result' | tail -n 12

step "The store: a guest on its xenstore ring, Xen's own clients in Domain-0"
export XENSTORED_PATH="$LAMINA_RUNDIR/xenstored/socket"
run domctl create "$(mkxml storeguest app=store-test)"
run domctl wait storeguest --timeout 60 || true
echo "storeguest: $(result storeguest)"
run xenstore-write /demo/greeting "hello from Domain-0"
run xenstore-read /demo/greeting
run domctl store ls /local/domain

step "Block I/O: a guest writes, flushes and verifies its disk through blkfront -> lamina-blkback"
truncate -s 64M "$LAMINA_RUNDIR/disk.img"
run domctl create "$(mkxml disky "app=blk-verify blocks=512 seed=42" 16384 \
	"<devices><disk type='file' device='disk'><source file='$LAMINA_RUNDIR/disk.img'/><target dev='xvda'/></disk></devices><on_poweroff>preserve</on_poweroff>")"
run domctl wait disky --timeout 120 || true
domctl console --dump disky | tail -n 5
run domctl block-list disky
run domctl stat disky
run domctl destroy disky

step "Block I/O speed: 4 KiB random reads at QD32 and 1 MiB sequential reads from a tmpfs image"
img=$(mktemp /dev/shm/lamina-demo.XXXXXX)
dd if=/dev/urandom of="$img" bs=1M count=64 status=none # data, not holes: holes read faster
run domctl create "$(mkxml blkbench "app=blk-bench ms=500 phases=randread-4k-qd32,seqread-1m" 16384 \
	"<devices><disk type='file' device='disk'><source file='$img'/><target dev='xvda'/></disk></devices>")"
run domctl wait blkbench --timeout 60 || true
domctl console --dump blkbench | grep -E '^BENCH|^Test result'
rm -f "$img"

step "Network I/O: two guests and Domain-0 on a bridge (netfront -> lamina-netback -> tap -> lambr0)"
# A second host, inside a network namespace of the demo's own: nothing reaches the machine's
# networks, and the bridge goes away with the namespace.
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && ip netns add "lamina-demo-$$" 2>/dev/null; then
	net_ns="lamina-demo-$$"
	net_dir=$(mktemp -d /tmp/lamina-demo-net.XXXXXX)
	nx() { ip netns exec "$net_ns" env -u XENSTORED_PATH LAMINA_RUNDIR="$net_dir" "$@"; }
	nrun() { printf '%s$ %s%s\n' "$b" "$*" "$n"; nx "$@"; }
	nx ip link set lo up
	printf '%s$ domctl host start --bridge%s\n' "$b" "$n"
	nx domctl host start --bridge | grep -E 'lambr0|netback'
	for g in "g1 10.213.0.2/24 10.213.0.3 delay=3" "g2 10.213.0.3/24 10.213.0.2"; do
		set -- $g
		cat >"$net_dir/$1.xml" <<XML
<domain type='xen'><name>$1</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type>xenpvh</type><kernel>$guest</kernel><cmdline>app=net-echo ip=$2 secs=20 ping=$3 count=3 ${4:-}</cmdline></os>
<devices><interface type='bridge'><source bridge='lambr0'/></interface></devices></domain>
XML
		nrun domctl create "$net_dir/$1.xml"
	done
	for i in $(seq 100); do
		nx domctl console --dump g1 2>/dev/null | grep -q 'pings answered' &&
			nx domctl console --dump g2 2>/dev/null | grep -q 'pings answered' && break
		sleep 0.1
	done
	for g in g1 g2; do nx domctl console --dump $g | grep -E 'net-echo: (up|reply|no reply|[0-9]+/)' || true; done
	printf '%s$ ping -c 3 10.213.0.2%s\n' "$b" "$n"
	nx ping -c 3 -i 0.2 -W 2 10.213.0.2 | tail -n 2
	nrun domctl net-list g1
	sleep 0.3
	nrun domctl stat g1
	nx domctl host stop >/dev/null 2>&1 || true
	ip netns del "$net_ns"; rm -rf "$net_dir"; net_ns=""
else
	echo "skipped: network namespaces need root and iproute2"
fi

step "A live view, xentop-style"
run domctl create "$(mkxml busy app=spin)"
sleep 1
run domctl top --batch --iterations 1
run domctl destroy busy

step "Done"
[ $keep = 1 ] && echo "host left running: LAMINA_RUNDIR=$LAMINA_RUNDIR domctl host stop" || echo "stopping the host"
