#!/usr/bin/env bash
# Timer accuracy: app=sleep blocks on VIRQ_TIMER for 10 ms sleeps and measures each wake against
# its deadline with the pvclock; no wake may be early and the median error must be within 1 ms.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/ev-lib.sh"
lt_need_kvm
lt_host_start
ev_need_ops

lt_domctl create "$(lt_xml sl "app=sleep ms=10 count=100" 8192 "<on_poweroff>preserve</on_poweroff>")" >/dev/null ||
	lt_fail "create failed"
w=$(lt_domctl wait sl --timeout 30) || lt_fail "sl: $w"
lt_domctl console --dump sl | grep -E '^sleep:' | sed 's/^/  /'
ev_result_ok sl || lt_fail "guest: $(lt_console_result sl)"
med=$(lt_domctl console --dump sl | grep -oE 'median [0-9]+\.[0-9]+ us' | grep -oE '[0-9]+\.[0-9]+')
[ -n "$med" ] || lt_fail "no median in the guest's report"
awk -v m="$med" 'BEGIN { exit !(m <= 1000) }' || lt_fail "median wake error $med us > 1000 us"
lt_log "median wake error $med us (limit 1000 us)"
lt_pass
