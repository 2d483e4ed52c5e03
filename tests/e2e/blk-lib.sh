# Shared by the block-driver end-to-end tests (tests/e2e/blk-*.sh); source after tests/lib.sh.

# blk_need: lamina-blkback built, python3 for the image checker.
blk_need() {
	[ -x "$LAMINA_BLKBACK" ] || lt_fail "missing $LAMINA_BLKBACK"
	python3 -c 1 2>/dev/null || lt_skip "python3 is needed to check images from the host"
}

# blk_disk FILE TARGET [readonly]: a <disk> element.
blk_disk() {
	local ro=""
	[ "${3:-}" = readonly ] && ro="<readonly/>"
	echo "<disk type='file' device='disk'><source file='$1'/><target dev='$2'/>$ro</disk>"
}

# blk_xml NAME CMDLINE DISKS...: a domain with 16 MiB (blkfront's pool sits at 4-6.2 MiB).
blk_xml() {
	local name=$1 cmdline=$2
	shift 2
	lt_xml "$name" "$cmdline" 16384 "<devices>$*</devices><on_poweroff>preserve</on_poweroff>"
}

# blk_check_image FILE FIRST COUNT STRIDE SEED: blocks FIRST..FIRST+COUNT-1 (times STRIDE) of the
# image hold what blk-verify writes (block number, seed, pattern, FNV-1a). Prints what is wrong.
blk_check_image() {
	python3 - "$@" <<'PY'
import struct, sys
path, first, count, stride, seed = sys.argv[1], *map(int, sys.argv[2:])
def fnv(b):
    h = 1469598103934665603
    for x in b:
        h = ((h ^ x) * 1099511628211) & 0xffffffffffffffff
    return h
bad = 0
with open(path, 'rb') as f:
    for i in range(first, first + count):
        blk = i * stride
        f.seek(blk * 4096)
        p = f.read(4096)
        want = bytearray(4096)
        want[0:8] = struct.pack('<Q', blk)
        want[8:16] = struct.pack('<Q', seed)
        for j in range(16, 4088):
            want[j] = (blk * 7 + j * 13 + seed * 101 + (j >> 8)) & 0xff
        want[4088:4096] = struct.pack('<Q', fnv(want[:4088]))
        if p != bytes(want):
            bad += 1
            if bad <= 3:
                print(f"block {blk}: content differs", file=sys.stderr)
print(f"checked {count} blocks, {bad} bad")
sys.exit(1 if bad else 0)
PY
}

# blk_result_ok NAME: the guest's last Test result line is SUCCESS.
blk_result_ok() {
	local r
	r=$(lt_console_result "$1")
	[ "${r#Test result: SUCCESS}" != "$r" ]
}

blk_blkback_pid() { cat "$LAMINA_RUNDIR/lamina-blkback.pid" 2>/dev/null; }
