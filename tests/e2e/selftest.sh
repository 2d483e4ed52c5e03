#!/usr/bin/env bash
# The guest checks the hypercall ABI from inside, once in its native ring-3 steady state and
# once staying in ring 0 as an unmodified PVH kernel does.
. "$LAMINA_SRCDIR/tests/lib.sh"
lt_need_kvm
lt_host_start

for mode in ring3 ring0; do
	name=selftest-$mode
	opt=""; [ $mode = ring0 ] && opt=" ring0"
	xml=$(lt_xml "$name" "app=selftest$opt" 16384)
	lt_domctl create "$xml" >/dev/null || lt_fail "create $name failed"
	lt_domctl wait "$name" --timeout 60 >/dev/null || lt_fail "$name did not power off cleanly"
	lt_domctl console --dump "$name"
	res=$(lt_console_result "$name")
	[ "$res" = "Test result: SUCCESS" ] || lt_fail "$name: ${res:-no result line}"
done
lt_pass
