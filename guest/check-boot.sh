#!/bin/sh
# Boots lamina-guest under the freshly built lamina-hv (through domctl) in both rings and checks
# each app's console verdict and how each domain stopped. Exit 0 pass, 1 fail, 77 skip.
# usage: check-boot.sh GUEST HV DOMCTL
tag=check-boot
. "$(dirname "$0")/check-lib.sh"

host_start

# flood_ok NAME BYTES: every console line of the domain arrived once, in order (console-flood).
flood_ok() {
	want=$(($2 / 64))
	got=$(grep -c '^flood [0-9]\{8\} [A-Z]*$' "$work/$1.log")
	last=$(grep '^flood ' "$work/$1.log" | tail -1 | cut -d' ' -f2 | sed 's/^0*//')
	[ "$got" -eq "$want" ] && [ "${last:-0}" -eq $((want - 1)) ] ||
		fail "$1: $got of $want flood lines, last '$last'"
}
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
	run_ev "evtchn$r" "app=evtchn-test$ring"
	run_ev "sleep$r" "app=sleep ms=10 count=20$ring"
	run_ev "flood$r" "app=console-flood bytes=65536$ring"
	flood_ok "flood$r" 65536
done
run selftest-2m "app=selftest" "shutdown (poweroff" "$ok" 2
run unknown "app=nosuch" "shutdown (poweroff" "Test result: ERROR: unknown app 'nosuch'"
grep -q '^  ring: *0$' "$work/hello-r0.log" || fail "hello-r0 does not report ring 0"
grep -q '^  ring: *3$' "$work/hello.log" || fail "hello does not report ring 3"
grep -q '^BENCH compute_ns [0-9]* ns$' "$work/bench.log" || fail "bench: no compute_ns line"
for r in "" -r0; do
	if grep -q "^$ok" "$work/sleep$r.log"; then
		grep -q '^BENCH timer_wake_error_us [0-9]* us$' "$work/sleep$r.log" || fail "sleep$r: no BENCH line"
	fi
done

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
echo "$tag: spin: $a lines, $b while paused, $c after unpause"
"$domctl" destroy spin >/dev/null 2>&1

finish_checks
