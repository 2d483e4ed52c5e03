#!/usr/bin/env bash
# A guest issuing random hypercall numbers and arguments (seeded, bounded) gets errors back and
# leaves the daemon and a second running domain unharmed.
. "$LAMINA_SRCDIR/tests/lib.sh"
lt_need_kvm
lt_host_start

lt_domctl create "$(lt_xml bystander "app=spin")" >/dev/null || lt_fail "create bystander failed"
lt_wait_console bystander 'spin: [0-9]+' 20 || lt_fail "bystander did not start"

for seed in 1 2 3; do
	name=hostile$seed
	lt_domctl create "$(lt_xml $name "app=hostile seed=$seed count=3000" 8192 "<on_crash>preserve</on_crash>")" >/dev/null ||
		lt_fail "create $name failed"
	lt_domctl wait $name --timeout 120 >/dev/null
	res=$(lt_console_result $name)
	lt_domctl console --dump $name | tail -n 5
	[ "$res" = "Test result: SUCCESS" ] || lt_fail "$name: ${res:-no result line}"
done

lt_domctl host status >/dev/null || lt_fail "daemon not answering"
[ "$(lt_domctl info bystander --json | jq -r .state)" = running ] || lt_fail "bystander is not running"
a=$(lt_domctl console --dump bystander | wc -c); sleep 0.5
b=$(lt_domctl console --dump bystander | wc -c)
[ "$b" -gt "$a" ] || lt_fail "bystander stopped progressing"
lt_pass
