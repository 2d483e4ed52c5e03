#!/bin/sh
# Boots lamina-guest under the freshly built lamina-hv (through domctl) in both rings and checks
# each app's console verdict and how each domain stopped. Exit 0 pass, 1 fail, 77 skip.
# usage: check-boot.sh GUEST HV DOMCTL
set -u
guest=${1:?guest} hv=${2:?lamina-hv} domctl=${3:?domctl}
skip() { echo "check-boot: SKIP: $*" >&2; echo "**** guest boot checks SKIPPED: $* ****" >&2; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is not usable here"
[ -x "$hv" ] || skip "$hv not built"
[ -x "$domctl" ] || skip "$domctl not built"
abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
guest=$(abspath "$guest") hv=$(abspath "$hv") domctl=$(abspath "$domctl")

LAMINA_RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/lamina-guest-check.XXXXXX") || exit 1
LAMINA_HV=$hv
export LAMINA_RUNDIR LAMINA_HV
work=$LAMINA_RUNDIR/xml
mkdir -p "$work"
fails=0
cleanup() { "$domctl" host stop >/dev/null 2>&1; rm -rf "$LAMINA_RUNDIR"; }
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM
fail() { echo "check-boot: FAIL: $*" >&2; fails=$((fails + 1)); }

# xml NAME CMDLINE [MEMORY_MIB]
xml() {
	cat >"$work/$1.xml" <<XML
<domain type='xen'>
  <name>$1</name>
  <memory unit='MiB'>${3:-8}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='xenpvh'>xenpvh</type>
    <kernel>$guest</kernel>
    <cmdline>$2</cmdline>
  </os>
  <on_poweroff>preserve</on_poweroff>
  <on_reboot>preserve</on_reboot>
  <on_crash>preserve</on_crash>
</domain>
XML
}

# run NAME CMDLINE WANT_STATE WANT_VERDICT [MEMORY_MIB]: boot, wait, check state and last line.
run() {
	name=$1 want_state=$3 want=$4
	xml "$name" "$2" "${5:-8}"
	"$domctl" create "$work/$name.xml" >/dev/null || { fail "$name: create failed"; return; }
	t0=$(date +%s%N)
	"$domctl" wait "$name" --timeout 60 >"$work/$name.wait" 2>&1
	t1=$(date +%s%N)
	state=$("$domctl" info "$name" | awk -F': *' '$1 == "state" { print $2 }')
	"$domctl" console --dump "$name" >"$work/$name.log" 2>&1
	verdict=$(grep '^Test result:' "$work/$name.log" | tail -1)
	nverdicts=$(grep -c '^Test result:' "$work/$name.log")
	case "$state" in
	"$want_state"*) ;;
	*)
		fail "$name: state '$state', want '$want_state'"
		cat "$work/$name.log" >&2
		;;
	esac
	if [ -n "$want" ]; then
		[ "$verdict" = "$want" ] || { fail "$name: verdict '$verdict', want '$want'"; cat "$work/$name.log" >&2; }
		[ "$nverdicts" -eq 1 ] || fail "$name: $nverdicts result lines"
	fi
	echo "check-boot: $name ($2): $state; ${verdict:-no result line} ($(( (t1 - t0) / 1000000 )) ms)"
	"$domctl" destroy "$name" >/dev/null 2>&1
}

"$domctl" host start >/dev/null || {
	echo "check-boot: FAIL: host start" >&2
	cat "$LAMINA_RUNDIR"/*.log >&2 2>/dev/null
	exit 1
}
ok="Test result: SUCCESS"
fatal="Test result: ERROR: fatal exception in the guest kernel"
for ring in "" " ring0"; do
	r=${ring:+-r0}
	run "hello$r" "app=hello$ring" "shutdown (poweroff" "$ok"
	run "selftest$r" "app=selftest$ring" "shutdown (poweroff" "$ok"
	count=500
	[ -n "$ring" ] && count=60 # every ring-0 instruction is emulated
	run "hostile$r" "app=hostile seed=3 count=$count$ring" "shutdown (poweroff" "$ok"
	run "bench$r" "app=bench n=200 iters=20000$ring" "shutdown (poweroff" "$ok"
	run "crashpf$r" "app=crash crash=pagefault$ring" "crashed" "$fatal"
	run "crasht$r" "app=crash crash=triple$ring" "crashed" ""
	run "crashs$r" "app=crash crash=shutdown$ring" "crashed" ""
done
run selftest-2m "app=selftest" "shutdown (poweroff" "$ok" 2
run unknown "app=nosuch" "shutdown (poweroff" "Test result: ERROR: unknown app 'nosuch'"
grep -q '^  ring: *0$' "$work/hello-r0.log" || fail "hello-r0 does not report ring 0"
grep -q '^  ring: *3$' "$work/hello.log" || fail "hello does not report ring 3"
grep -q '^BENCH compute_ns [0-9]* ns$' "$work/bench.log" || fail "bench: no compute_ns line"

# spin: progress stops while paused and resumes after unpause.
xml spin "app=spin"
"$domctl" create "$work/spin.xml" >/dev/null || fail "spin: create failed"
sleep 0.5
"$domctl" pause spin >/dev/null || fail "spin: pause"
sleep 0.2
a=$("$domctl" console --dump spin | grep -c '^spin: [0-9]')
sleep 0.6
b=$("$domctl" console --dump spin | grep -c '^spin: [0-9]')
"$domctl" unpause spin >/dev/null || fail "spin: unpause"
sleep 0.6
c=$("$domctl" console --dump spin | grep -c '^spin: [0-9]')
[ "$a" -gt 0 ] && [ "$a" -eq "$b" ] && [ "$c" -gt "$b" ] ||
	fail "spin: lines $a -> $b (paused) -> $c (unpaused)"
echo "check-boot: spin: $a lines, $b while paused, $c after unpause"
"$domctl" destroy spin >/dev/null 2>&1

[ "$fails" -eq 0 ] || { echo "check-boot: $fails failures" >&2; exit 1; }
echo "check-boot: ok"
