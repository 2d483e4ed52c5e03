#!/usr/bin/env bash
# A spinning guest stops making progress while paused and resumes after unpause; destroy
# removes it and leaves the daemon serving.
. "$LAMINA_SRCDIR/tests/lib.sh"
lt_need_kvm
lt_host_start

xml=$(lt_xml spin "app=spin")
lt_domctl create "$xml" >/dev/null || lt_fail "create failed"
lt_wait_console spin 'spin: [0-9]+' 20 || lt_fail "spin printed nothing"
lt_wait_console spin 'spin: 3\b' 20 || lt_fail "spin does not progress"

lt_domctl pause spin || lt_fail "pause failed"
state=$(lt_domctl info spin --json | jq -r .state)
[ "$state" = paused ] || lt_fail "state after pause is '$state'"
sleep 0.3
a=$(lt_domctl console --dump spin | wc -c)
sleep 1
b=$(lt_domctl console --dump spin | wc -c)
[ "$a" -eq "$b" ] || lt_fail "console grew while paused ($a -> $b bytes)"

lt_domctl unpause spin || lt_fail "unpause failed"
sleep 1
c=$(lt_domctl console --dump spin | wc -c)
[ "$c" -gt "$b" ] || lt_fail "no progress after unpause ($b -> $c bytes)"
state=$(lt_domctl info spin --json | jq -r .state)
[ "$state" = running ] || lt_fail "state after unpause is '$state'"

lt_domctl destroy spin || lt_fail "destroy failed"
lt_domctl list | grep -qw spin && lt_fail "spin still listed after destroy"
lt_domctl info spin >/dev/null 2>&1 && lt_fail "info still answers for a destroyed domain"
lt_domctl host status >/dev/null || lt_fail "daemon not answering after destroy"
lt_pass
