#!/bin/bash
# Builds and runs a libFuzzer target: tests/fuzz/run-fuzz.sh NAME [extra libFuzzer args].
# NAME: store (the store's wire messages, request handlers and guest ring).
# LAMINA_FUZZ_SECONDS (default 300) bounds the run; LAMINA_FUZZ_OUT (default build/fuzz/NAME)
# holds the binary, the corpus (kept between runs) and any crash files. Exit 77 when clang or the
# fuzzer runtime is missing.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
name=${1:?usage: run-fuzz.sh NAME}
shift
secs=${LAMINA_FUZZ_SECONDS:-300}
out=${LAMINA_FUZZ_OUT:-$top/build/fuzz/$name}

case "$name" in
store)
	srcs=()
	for f in xs_node xs_tree xs_txn xs_watch xs_domain xs_conn xs_ops xs_control xs_ring xs_persist; do
		srcs+=("$top/xenstore-like/$f.c")
	done
	srcs+=("$top/tests/fuzz/fuzz_xs_msg.c")
	;;
*) echo "run-fuzz.sh: no fuzz target '$name' (known: store)" >&2; exit 2 ;;
esac

CLANG=${CLANG:-$(command -v clang-14 || command -v clang || true)}
if [ -z "$CLANG" ]; then
	echo "SKIP: clang not found (install clang-14 and libclang-rt-14-dev)"
	exit 77
fi
mkdir -p "$out/corpus" "$out/crashes"
bin="$out/fuzz_$name"
if ! "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I"$top/include" -I"$top/xenstore-like" -D_GNU_SOURCE -D__XEN_INTERFACE_VERSION__=0x00040e00 \
	"${srcs[@]}" -o "$bin" 2>"$out/build.log"; then
	if grep -q -E 'libclang_rt|fuzzer|cannot find' "$out/build.log"; then
		echo "SKIP: the libFuzzer runtime is missing (libclang-rt-14-dev)"; cat "$out/build.log"
		exit 77
	fi
	cat "$out/build.log"
	exit 1
fi

# Seeds: a few well-formed exchanges (header: type, req_id, tx_id, len, little-endian).
msg() { # TYPE TX PAYLOAD(printf format)
	local body len
	body=$(printf "$3" | od -An -tx1 | tr -d ' \n')
	len=$(( ${#body} / 2 ))
	printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) 0 0)"
	printf '\x01\x00\x00\x00'
	printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($2 & 255)) 0 0 0)"
	printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((len & 255)) $((len >> 8 & 255)) 0 0)"
	printf "$3"
}
chunk() { # SELECTOR then stdin as one chunk (<= 255 bytes)
	local data
	data=$(od -An -tx1 | tr -d ' \n')
	printf "$(printf '\\x%02x\\x%02x' "$1" $(( ${#data} / 2 )))"
	printf "$(echo "$data" | sed 's/../\\x&/g')"
}
if [ -z "$(ls -A "$out/corpus")" ]; then
	{ printf '\x00'; msg 11 0 '/a/b\0v' | chunk 0; msg 2 0 '/a/b\0' | chunk 0; msg 4 0 '/a\0t\0' | chunk 0; } >"$out/corpus/seed-rw"
	{ printf '\x00'; msg 6 0 '\0' | chunk 0; msg 11 1 '/t/x\0y' | chunk 0; msg 7 1 'T\0' | chunk 0; } >"$out/corpus/seed-tx"
	{ printf '\x02'; msg 11 0 'data/x\0v' | chunk 1; msg 20 0 'q\0r1\0' | chunk 1; msg 14 0 '/local/domain/5\0n5\0r6\0' | chunk 0; msg 13 0 'data\0' | chunk 1; } >"$out/corpus/seed-guest"
	{ printf '\x00'; msg 8 0 '3\0' '' | chunk 0; msg 22 0 '/\x000\0' | chunk 0; msg 0 0 'quota\0nodes\x00100\0' | chunk 0; } >"$out/corpus/seed-ctl"
	{ printf '\x01'; head -c 2048 /dev/zero; printf '\x00\x00\x00\x00\x16\x00\x00\x00'; } >"$out/corpus/seed-ring"
fi

echo "fuzzing '$name' for ${secs}s (corpus $out/corpus)"
cd "$out/crashes"
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@" "$out/corpus" 2>&1 | tail -n 25
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
	echo "FAIL: fuzz target '$name' found a problem; inputs in $out/crashes"
	exit 1
fi
echo "fuzz '$name': no failures in ${secs}s"
