#!/usr/bin/env bash
# A guest's blkfront against lamina-blkback through a <disk> element: checksummed blocks across the
# disk written at QD32, flushed, read back and verified in the guest, a 1 MiB indirect write/read,
# a read past the end refused, a discard reading back zeros; then the image file is checked from
# the host, `domctl block-list` and `domctl stat` (text and JSON) show the device and its counters.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/blk-lib.sh"
lt_need_kvm
blk_need
lt_host_start

img=$LAMINA_RUNDIR/disk.img
truncate -s 16M "$img"
lt_domctl create "$(blk_xml v0 "app=blk-verify blocks=256 seed=7" "$(blk_disk "$img" xvda)")" >/dev/null ||
	lt_fail "create failed"
w=$(lt_domctl wait v0 --timeout 60) || lt_fail "v0: $w"
lt_domctl console --dump v0 | grep -E '^  |blk-verify:'
blk_result_ok v0 || lt_fail "guest: $(lt_console_result v0)"
stride=$(lt_domctl console --dump v0 | grep -oE 'stride [0-9]+' | grep -oE '[0-9]+')
[ -n "$stride" ] || lt_fail "the guest printed no stride"
blk_check_image "$img" 0 256 "$stride" 7 || lt_fail "the image file does not hold what the guest wrote"
list=$(lt_domctl block-list v0)
echo "$list"
echo "$list" | grep -qE '^xvda +51712 +w +closed +closed' || lt_fail "block-list: $list"
lt_domctl stat v0 | tee "$LAMINA_RUNDIR/stat.txt"
grep -q 'requests.write' "$LAMINA_RUNDIR/stat.txt" || lt_fail "domctl stat printed no counters"
json=$(lt_domctl stat v0 --json)
echo "$json" | jq -e '.vbd[0].devid == 51712 and .vbd[0].stats.requests.write >= 256 and
	.vbd[0].stats.bytes_read >= 1048576 and .vbd[0].stats.inflight_max >= 2 and
	.vbd[0].stats.pgrant_hits > 0' >/dev/null || lt_fail "stat --json: $json"
lt_pass
