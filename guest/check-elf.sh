#!/bin/sh
# Checks the built guest kernel's boot contract without running it: ELF64 x86-64, loaded at
# 1 MiB, a PT_NOTE segment with the Xen notes a PVH loader needs, PHYS32_ENTRY = lamina_start32.
set -u
elf=${1:?usage: check-elf.sh lamina-guest}
fail() { echo "check-elf: FAIL: $*" >&2; exit 1; }
command -v readelf >/dev/null 2>&1 || { echo "check-elf: SKIP: readelf missing" >&2; exit 77; }

hdr=$(readelf -h "$elf") || fail "not an ELF file"
echo "$hdr" | grep -q 'Class:.*ELF64' || fail "not ELF64"
echo "$hdr" | grep -q 'Machine:.*X86-64' || fail "not x86-64"
phdrs=$(readelf -lW "$elf")
echo "$phdrs" | grep -q '^ *NOTE ' || fail "no PT_NOTE segment"
load=$(echo "$phdrs" | awk '$1 == "LOAD" { print $3; exit }')
[ "$load" = "0x0000000000100000" ] || fail "first PT_LOAD at $load, not 1 MiB"

# "type:hexbytes" for every note owned by Xen.
notes=$(readelf -nW "$elf" | awk '$1 == "Xen" && /description data:/ {
	i = index($0, "(0x"); t = substr($0, i + 1, 10)
	d = $0; sub(/.*description data: */, "", d); gsub(/[ \t]/, "", d); print t ":" d }')
note() { echo "$notes" | awk -F: -v t="$1" '$1 == t { print $2; exit }'; }
hexstr() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

[ "$(note 0x00000006)" = "$(hexstr Lamina)00" ] || fail "GUEST_OS note is not \"Lamina\""
[ -n "$(note 0x00000007)" ] || fail "GUEST_VERSION note missing"
[ "$(note 0x00000005)" = "$(hexstr xen-3.0)00" ] || fail "XEN_VERSION note is not \"xen-3.0\""
[ "$(note 0x00000008)" = "$(hexstr generic)00" ] || fail "LOADER note is not \"generic\""
entry_le=$(note 0x00000012)
[ ${#entry_le} -eq 8 ] || fail "PHYS32_ENTRY note missing or not 32-bit"
entry=$(echo "$entry_le" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')
sym=$(readelf -sW "$elf" | awk '$8 == "lamina_start32" { print $2 }' | sed 's/^0*//')
[ -n "$sym" ] || fail "no lamina_start32 symbol"
[ "$(echo "$entry" | sed 's/^0*//')" = "$sym" ] || fail "PHYS32_ENTRY 0x$entry is not lamina_start32 (0x$sym)"
echo "check-elf: ok: $elf (PHYS32_ENTRY 0x$entry)"
