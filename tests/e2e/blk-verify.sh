#!/usr/bin/env bash
# A guest's blkfront against lamina-blkback through a <disk> element: checksummed blocks across the
# disk written at QD32, flushed, read back and verified in the guest, a 1 MiB indirect write/read,
# a read past the end refused, a discard reading back zeros; then the image file is checked from
# the host, `domctl block-list` and `domctl stat` (text and JSON) show the device and its counters.
# Run on a disk-backed image (served through io_uring) and on a tmpfs one (small requests inline).
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/blk-lib.sh"
lt_need_kvm
blk_need
lt_host_start

# verify_on IMAGE NAME JQ-CHECK [CMDLINE]: the whole cycle on one image, its counters checked by
# JQ-CHECK.
verify_on() {
	local img=$1 name=$2 extra=$3 opts=${4:-} w stride list json
	truncate -s 16M "$img"
	lt_domctl create "$(blk_xml "$name" "app=blk-verify blocks=256 seed=7 $opts" "$(blk_disk "$img" xvda)")" >/dev/null ||
		lt_fail "$name: create failed"
	w=$(lt_domctl wait "$name" --timeout 60) || lt_fail "$name: $w"
	lt_domctl console --dump "$name" | grep -E '^  |blk-verify:'
	blk_result_ok "$name" || lt_fail "$name: guest: $(lt_console_result "$name")"
	stride=$(lt_domctl console --dump "$name" | grep -oE 'stride [0-9]+' | grep -oE '[0-9]+')
	[ -n "$stride" ] || lt_fail "$name: the guest printed no stride"
	blk_check_image "$img" 0 256 "$stride" 7 || lt_fail "$name: the image file does not hold what the guest wrote"
	list=$(lt_domctl block-list "$name")
	echo "$list"
	echo "$list" | grep -qE '^xvda +51712 +w +closed +closed' || lt_fail "$name: block-list: $list"
	lt_domctl stat "$name" | tee "$LAMINA_RUNDIR/stat.txt"
	grep -q 'requests.write' "$LAMINA_RUNDIR/stat.txt" || lt_fail "$name: domctl stat printed no counters"
	json=$(lt_domctl stat "$name" --json)
	echo "$json" | jq -e ".vbd[0].devid == 51712 and .vbd[0].stats.requests.write >= 256 and
		.vbd[0].stats.bytes_read >= 1048576 and $extra" >/dev/null ||
		lt_fail "$name: stat --json: $json"
}

# On a disk-backed file system: every request through io_uring, many in flight at once. On tmpfs:
# small reads and writes served inline, the 1 MiB indirect ones still through io_uring.
inline='.vbd[0].stats.pgrant_hits > 0 and .vbd[0].stats.inline_io >= 256 and .vbd[0].stats.inline_io < (.vbd[0].stats.requests.read + .vbd[0].stats.requests.write)'
if [ "$(stat -f -c %T "$LAMINA_RUNDIR")" = tmpfs ]; then
	echo "note: the run directory is on tmpfs: the io_uring-only case is not run" >&2
	verify_on "$LAMINA_RUNDIR/disk.img" v0 "$inline"
else
	verify_on "$LAMINA_RUNDIR/disk.img" v0 '.vbd[0].stats.pgrant_hits > 0 and .vbd[0].stats.inflight_max >= 2 and .vbd[0].stats.inline_io == 0'
	# A 4-page ring (ring-page-order 2): 128 requests in flight at once.
	verify_on "$LAMINA_RUNDIR/disk4.img" v2 '.vbd[0].stats.pgrant_hits > 0 and .vbd[0].stats.inflight_max > 32 and .vbd[0].stats.inline_io == 0' ring-order=2
	lt_domctl console --dump v2 | grep -q '4-page ring' || lt_fail "v2: the guest did not get a 4-page ring"
	grep -q 'vbd 51712 connected: 4-page ring' "$LAMINA_RUNDIR/blkback.log" ||
		lt_fail "blkback did not map a 4-page ring: $(grep connected "$LAMINA_RUNDIR/blkback.log")"
	shm=$(mktemp /dev/shm/lamina-blk-verify.XXXXXX)
	lt_extra_files+=("$shm")
	verify_on "$shm" v1 "$inline"
	# Grants mapped per request, on the inline path: each is unmapped before its response is
	# published, so the guest can end every grant and never runs out of refs.
	shm3=$(mktemp /dev/shm/lamina-blk-verify.XXXXXX)
	lt_extra_files+=("$shm3")
	verify_on "$shm3" v3 '.vbd[0].stats.pgrant_hits == 0 and .vbd[0].stats.inline_io >= 256' persistent=0
fi
lt_pass
