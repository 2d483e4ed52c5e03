#!/usr/bin/env bash
# lamina-blkback killed (SIGKILL) while a guest writes in a loop: the guest's outstanding requests
# fail after its timeout (errors, not a hang); after blkback is restarted, every write the guest saw
# acknowledged is in the image, and the restarted daemon serves a new guest.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/blk-lib.sh"
lt_need_kvm
blk_need
lt_host_start

img=$LAMINA_RUNDIR/disk.img img2=$LAMINA_RUNDIR/disk2.img
truncate -s 8M "$img" "$img2"
lt_domctl create "$(blk_xml k0 "app=blk-verify mode=loop seed=11" "$(blk_disk "$img" xvda)")" >/dev/null ||
	lt_fail "create k0"
lt_wait_console k0 'blk-verify: acked 256' 60 || lt_fail "k0 never wrote 256 blocks"
pid=$(blk_blkback_pid)
[ -n "$pid" ] || lt_fail "no lamina-blkback pid file"
kill -9 "$pid"
lt_log "killed lamina-blkback ($pid) mid-I/O"
w=$(lt_domctl wait k0 --timeout 30) || lt_fail "k0 hung after blkback died: $w"
lt_console_result k0 | grep -q 'I/O error after' || lt_fail "k0: $(lt_console_result k0)"
k=$(lt_domctl console --dump k0 | grep -oE 'after [0-9]+ acknowledged' | grep -oE '[0-9]+' | tail -n1)
lt_log "k0 saw $k writes acknowledged"
lt_domctl host start >/dev/null 2>&1 || lt_fail "host start (restarting blkback)"
sleep 0.5
# The loop writes block (n mod blocks) as write n, with the same pattern each time round.
blocks=$(( $(stat -c %s "$img") / 4096 ))
blk_check_image "$img" 0 $((k < blocks ? k : blocks)) 1 11 || lt_fail "an acknowledged write was lost"
lt_domctl create "$(blk_xml k1 "app=blk-verify blocks=64 seed=12" "$(blk_disk "$img2" xvda)")" >/dev/null ||
	lt_fail "create k1 after the restart"
w=$(lt_domctl wait k1 --timeout 60) || lt_fail "k1: $w"
blk_result_ok k1 || lt_fail "k1 after the restart: $(lt_console_result k1)"
lt_pass
