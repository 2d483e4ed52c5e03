#!/usr/bin/env bash
# A real block device behind <disk type='block'>: a loop device over a file, written and verified
# by the guest through lamina-blkback, then checked from the host through the device itself.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/blk-lib.sh"
lt_need_kvm
blk_need
command -v losetup >/dev/null || lt_skip "losetup (util-linux) is missing"
lt_host_start

img=$LAMINA_RUNDIR/backing.img
truncate -s 32M "$img"
dev=$(losetup --find --show "$img" 2>/dev/null) || lt_skip "no loop device available here (losetup failed)"
trap 'losetup -d "$dev" 2>/dev/null; lt_cleanup' EXIT
lt_log "loop device $dev over $img"

disk="<disk type='block' device='disk'><source dev='$dev'/><target dev='xvda'/></disk>"
lt_domctl create "$(blk_xml lb "app=blk-verify blocks=256 seed=11" "$disk")" >/dev/null || lt_fail "create failed"
w=$(lt_domctl wait lb --timeout 60) || lt_fail "lb: $w"
lt_domctl console --dump lb | grep -E 'blk-verify:'
blk_result_ok lb || lt_fail "guest: $(lt_console_result lb)"
stride=$(lt_domctl console --dump lb | grep -oE 'stride [0-9]+' | grep -oE '[0-9]+')
[ -n "$stride" ] || lt_fail "the guest printed no stride"
lt_domctl destroy lb >/dev/null 2>&1 || true
blockdev --flushbufs "$dev" 2>/dev/null || true
blk_check_image "$dev" 0 256 "$stride" 11 || lt_fail "the device does not hold what the guest wrote"
lt_domctl block-list lb >/dev/null 2>&1 || true
lt_pass
