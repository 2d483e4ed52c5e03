#!/usr/bin/env bash
# Hot-plug with `domctl block-attach` / `block-detach`: a disk attached after boot is found, verified
# and closed by the guest, then detached while idle; a disk detached under I/O (a guest writing in a
# loop) is closed cleanly by the guest, every acknowledged write is in the image; a forced detach
# under I/O gives the guest errors, not a hang.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/blk-lib.sh"
lt_need_kvm
blk_need
lt_host_start

img=$LAMINA_RUNDIR/disk.img img2=$LAMINA_RUNDIR/disk2.img img3=$LAMINA_RUNDIR/disk3.img
truncate -s 8M "$img" "$img2" "$img3"

# idle attach and detach
lt_domctl create "$(blk_xml h0 "app=blk-verify wait-ms=30000 blocks=64 seed=3")" >/dev/null || lt_fail "create h0"
lt_domctl block-attach h0 "$img" xvdb || lt_fail "block-attach h0"
w=$(lt_domctl wait h0 --timeout 60) || lt_fail "h0: $w"
blk_result_ok h0 || lt_fail "h0: $(lt_console_result h0)"
lt_domctl block-list h0 | grep -qE '^xvdb +51728 ' || lt_fail "block-list h0: $(lt_domctl block-list h0)"
lt_domctl block-detach h0 xvdb --timeout 10 || lt_fail "idle detach"
[ "$(lt_domctl block-list h0 | wc -l)" -eq 1 ] || lt_fail "disk still listed after detach"
lt_domctl block-attach h0 /nonexistent.img xvdc 2>"$LAMINA_RUNDIR/err" && lt_fail "attach of a missing file worked"
grep -q 'No such file' "$LAMINA_RUNDIR/err" || lt_fail "unclear error: $(cat "$LAMINA_RUNDIR/err")"

# detach under I/O
lt_domctl create "$(blk_xml h1 "app=blk-verify mode=loop wait-ms=30000 seed=5")" >/dev/null || lt_fail "create h1"
lt_domctl block-attach h1 "$img2" xvda || lt_fail "block-attach h1"
lt_wait_console h1 'blk-verify: acked 256' 60 || lt_fail "h1 never wrote 256 blocks"
lt_domctl block-detach h1 xvda --timeout 20 || lt_fail "detach under I/O"
w=$(lt_domctl wait h1 --timeout 30) || lt_fail "h1: $w"
blk_result_ok h1 || lt_fail "h1: $(lt_console_result h1)"
k=$(lt_domctl console --dump h1 | grep -oE 'closing after [0-9]+' | grep -oE '[0-9]+')
lt_log "h1 detached after $k acknowledged writes"
# The loop writes block (n mod blocks) as write n, with the same pattern each time round.
blocks=$(( $(stat -c %s "$img2") / 4096 ))
blk_check_image "$img2" 0 $((k < blocks ? k : blocks)) 1 5 || lt_fail "an acknowledged write is missing from the image"

# forced detach under I/O: the guest's requests fail after its timeout
lt_domctl create "$(blk_xml h2 "app=blk-verify mode=loop wait-ms=30000 seed=6")" >/dev/null || lt_fail "create h2"
lt_domctl block-attach h2 "$img3" xvda || lt_fail "block-attach h2"
lt_wait_console h2 'blk-verify: acked 128' 60 || lt_fail "h2 never wrote 128 blocks"
lt_domctl block-detach h2 xvda --force || lt_fail "forced detach"
w=$(lt_domctl wait h2 --timeout 30) || lt_fail "h2 hung after a forced detach: $w"
lt_console_result h2 | grep -q 'I/O error after' || lt_fail "h2: $(lt_console_result h2)"
lt_pass
