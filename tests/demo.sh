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
stop_host() { [ $keep = 1 ] || domctl host stop >/dev/null 2>&1 || true; }
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

step "A live view, xentop-style"
run domctl create "$(mkxml busy app=spin)"
sleep 1
run domctl top --batch --iterations 1
run domctl destroy busy

step "Done"
[ $keep = 1 ] && echo "host left running: LAMINA_RUNDIR=$LAMINA_RUNDIR domctl host stop" || echo "stopping the host"
