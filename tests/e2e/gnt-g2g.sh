#!/usr/bin/env bash
# Guest-to-guest grant maps (GNTTABOP_map_grant_ref from a PVH guest), two real guests:
#  1. ga (dom1, app=grant-test mode=g2g-grant) grants a rw and a ro page to dom2; gb (dom2,
#     mode=g2g-map) is refused wrong maps, maps both above its RAM, reads the patterns, writes
#     through the rw map (ga sees it), its write through the ro map is dropped, ga's end access is
#     refused while mapped; gb unmaps (wrong address and stale handles refused) and ga's end
#     access then succeeds. Both report SUCCESS.
#  2. Lifetimes: gc grants and idles, gd maps and holds; gc is destroyed while mapped and gd keeps
#     reading the intact page; then gd is destroyed with its maps held; the daemon lives on and a
#     new guest still runs.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/gnt-lib.sh"
lt_need_kvm
lt_host_start
PRESERVE="<on_poweroff>preserve</on_poweroff>"

lt_domctl create "$(lt_xml ga "app=grant-test mode=g2g-grant peer=2" 16384 "$PRESERVE")" >/dev/null ||
	lt_fail "create ga failed"
lt_wait_console ga 'grant-test: g2g ready' 20 || lt_fail "ga never granted: $(lt_domctl console --dump ga | tail -n 5)"
ida=$(lt_domctl info ga --json | jq -r .id)
[ "$ida" = 1 ] || lt_fail "ga is dom$ida, not dom1: ids on a private host are 1, 2, ..."
rw=$(gnt_ref ga rw) ro=$(gnt_ref ga ro)
[ -n "$rw" ] && [ -n "$ro" ] || lt_fail "ga printed no refs"
lt_log "ga (dom$ida) granted rw ref $rw, ro ref $ro"
lt_domctl create "$(lt_xml gb "app=grant-test mode=g2g-map peer=$ida rw=$rw ro=$ro" 16384 "$PRESERVE")" \
	>/dev/null || lt_fail "create gb failed"
idb=$(lt_domctl info gb --json | jq -r .id)
[ "$idb" = 2 ] || lt_fail "gb is dom$idb, not dom2"
for g in gb ga; do
	w=$(lt_domctl wait $g --timeout 60) || lt_fail "$g: $w"
done
for g in gb ga; do
	lt_domctl console --dump $g | grep -E '^  |grant-test:|^Test result'
	gnt_result_ok $g || lt_fail "$g: $(lt_console_result $g)"
done
gnt_hv_alive || lt_fail "lamina-hv died"

# 2. Lifetimes.
lt_domctl create "$(lt_xml gc "app=grant-test mode=g2g-grant peer=4 hold" 16384)" >/dev/null ||
	lt_fail "create gc failed"
lt_wait_console gc 'grant-test: g2g ready' 20 || lt_fail "gc never granted"
idc=$(lt_domctl info gc --json | jq -r .id)
rw=$(gnt_ref gc rw) ro=$(gnt_ref gc ro)
lt_domctl create "$(lt_xml gd "app=grant-test mode=g2g-map peer=$idc rw=$rw ro=$ro hold" 16384)" >/dev/null ||
	lt_fail "create gd failed"
idd=$(lt_domctl info gd --json | jq -r .id)
[ "$idd" = 4 ] || lt_fail "gd is dom$idd, not dom4"
lt_wait_console gd 'grant-test: held check 1 intact' 20 ||
	lt_fail "gd did not map and hold: $(lt_domctl console --dump gd | tail -n 8)"
lt_domctl destroy gc || lt_fail "destroying the granter failed"
# gd keeps running on the granted pages: five more checks after the granter is gone.
n=$(lt_domctl console --dump gd | grep -c 'held check')
lt_wait_console gd "grant-test: held check $((n + 5)) intact" 20 ||
	lt_fail "gd lost its pages after the granter went: $(lt_domctl console --dump gd | tail -n 4)"
! lt_domctl console --dump gd | grep -q 'held check .* CHANGED' || lt_fail "gd saw its held page change"
state=$(lt_domctl info gd --json | jq -r .state)
[ "$state" = running ] || [ "$state" = blocked ] || lt_fail "gd is $state after the granter went"
lt_log "gd kept its maps of destroyed dom$idc (state $state)"
lt_domctl destroy gd || lt_fail "destroying the mapper failed"
gnt_hv_alive || lt_fail "lamina-hv died"
lt_domctl create "$(lt_xml ge "app=hello" 16384 "$PRESERVE")" >/dev/null || lt_fail "create after teardown failed"
w=$(lt_domctl wait ge --timeout 30) || lt_fail "ge: $w"
gnt_hv_alive || lt_fail "lamina-hv died"
lt_pass
