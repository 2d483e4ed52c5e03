#!/usr/bin/env bash
# A hostile front-end (app=blk-verify mode=hostile) next to a healthy guest writing in a loop: each
# malformed request (zero or 12 segments, sectors outside a page, past the end, a 64-bit wrap, a
# ref not granted, a bad indirect count, an unknown op) gets an error while the device stays up;
# then a run-away producer index disconnects that device alone, logged with the reason; the
# healthy guest keeps writing throughout, and blkback lives on.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/blk-lib.sh"
lt_need_kvm
blk_need
lt_host_start

img=$LAMINA_RUNDIR/bad.img img2=$LAMINA_RUNDIR/good.img
truncate -s 8M "$img" "$img2"
lt_domctl create "$(blk_xml good "app=blk-verify mode=loop seed=4" "$(blk_disk "$img2" xvda)")" >/dev/null ||
	lt_fail "create good"
lt_wait_console good 'blk-verify: acked 64' 60 || lt_fail "the healthy guest never wrote"
lt_domctl create "$(blk_xml bad "app=blk-verify mode=hostile" "$(blk_disk "$img" xvda)")" >/dev/null ||
	lt_fail "create bad"
w=$(lt_domctl wait bad --timeout 60) || lt_fail "bad: $w"
lt_domctl console --dump bad | grep -E '^  '
blk_result_ok bad || lt_fail "hostile guest: $(lt_console_result bad)"
before=$(lt_domctl console --dump good | grep -oE 'acked [0-9]+' | tail -n1 | grep -oE '[0-9]+')
sleep 1
after=$(lt_domctl console --dump good | grep -oE 'acked [0-9]+' | tail -n1 | grep -oE '[0-9]+')
lt_log "healthy guest: $before -> $after acknowledged writes"
[ "$after" -gt "$before" ] || lt_fail "the healthy guest stopped"
kill -0 "$(blk_blkback_pid)" || lt_fail "lamina-blkback died"
grep -q 'producer index ran away' "$LAMINA_RUNDIR/blkback.log" || lt_fail "disconnect not logged"
grep -q 'refused: bad segment count' "$LAMINA_RUNDIR/blkback.log" || lt_fail "refusals not logged"
lt_domctl store read /local/domain/0/backend/vbd/2/51712/error | grep -q 'ring broken' ||
	lt_fail "no error node for the broken ring"
lt_domctl block-detach good xvda --timeout 20 || lt_fail "detach of the healthy disk"
w=$(lt_domctl wait good --timeout 30) || lt_fail "good: $w"
blk_result_ok good || lt_fail "good: $(lt_console_result good)"
lt_pass
