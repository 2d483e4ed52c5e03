#!/bin/bash
# Builds and runs a libFuzzer target: tests/fuzz/run-fuzz.sh NAME [extra libFuzzer args].
# NAME: store (the store's wire messages, request handlers and guest ring), blkif (the block
# back-end engine on a shared ring), netif (the network back-end's tx/rx engine), guestnet (the
# guest network layer's receive path, built for the host).
# LAMINA_FUZZ_SECONDS (default 300) bounds the run; LAMINA_FUZZ_OUT (default build/fuzz/NAME)
# holds the binary, the corpus (kept between runs), the log (fuzz.log) and any crash files.
# Exit 77 when clang or the fuzzer runtime is missing.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
name=${1:?usage: run-fuzz.sh NAME}
shift
secs=${LAMINA_FUZZ_SECONDS:-300}
out=${LAMINA_FUZZ_OUT:-$top/build/fuzz/$name}

# Per target: the real sources it drives, extra compiler flags and libraries.
srcs=() flags=() libs=() runflags=()
case "$name" in
store)
	for f in xs_node xs_tree xs_txn xs_watch xs_domain xs_conn xs_ops xs_control xs_ring xs_persist; do
		srcs+=("$top/xenstore-like/$f.c")
	done
	srcs+=("$top/tests/fuzz/fuzz_xs_msg.c")
	flags=(-I"$top/xenstore-like")
	;;
blkif)
	for f in blk_image blk_req blk_pgrant blk_dev; do
		srcs+=("$top/pv-drivers/$f.c")
	done
	srcs+=("$top/pv-drivers/be_log.c" "$top/tests/fuzz/fuzz_blkif.c")
	flags=(-I"$top/pv-drivers" -I"$top/dom0-tools")
	libs=(-luring)
	# The engine logs every refused request on stderr: libFuzzer keeps its own report (and the
	# sanitizers') on a copy of stderr and gives the target's stderr to /dev/null.
	runflags=(-close_fd_mask=2)
	;;
netif)
	srcs=("$top/pv-drivers/net_req.c" "$top/pv-drivers/net_vif.c" "$top/pv-drivers/be_log.c"
		"$top/tests/fuzz/fuzz_netif.c")
	flags=(-I"$top/pv-drivers" -I"$top/dom0-tools")
	runflags=(-close_fd_mask=2)
	;;
guestnet)
	srcs=("$top/guest/net/net_eth.c" "$top/guest/net/net_ip.c" "$top/tests/fuzz/fuzz_guestnet.c")
	flags=(-DNET_HOSTED=1)
	;;
*) echo "run-fuzz.sh: no fuzz target '$name' (known: store blkif netif guestnet)" >&2; exit 2 ;;
esac

CLANG=${CLANG:-$(command -v clang-14 || command -v clang || true)}
if [ -z "$CLANG" ]; then
	echo "SKIP: clang not found (install clang-14 and libclang-rt-14-dev)"
	exit 77
fi
mkdir -p "$out/corpus" "$out/crashes"
bin="$out/fuzz_$name"
if ! "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I"$top/include" ${flags[@]+"${flags[@]}"} -D_GNU_SOURCE -D__XEN_INTERFACE_VERSION__=0x00040e00 \
	"${srcs[@]}" ${libs[@]+"${libs[@]}"} -o "$bin" 2>"$out/build.log"; then
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
hex() { # the bytes written as hex digits (spaces ignored)
	printf "$(echo "$*" | tr -d ' ' | sed 's/../\\x&/g')"
}
if [ "$name" = store ] && [ -z "$(ls -A "$out/corpus")" ]; then
	{ printf '\x00'; msg 11 0 '/a/b\0v' | chunk 0; msg 2 0 '/a/b\0' | chunk 0; msg 4 0 '/a\0t\0' | chunk 0; } >"$out/corpus/seed-rw"
	{ printf '\x00'; msg 6 0 '\0' | chunk 0; msg 11 1 '/t/x\0y' | chunk 0; msg 7 1 'T\0' | chunk 0; } >"$out/corpus/seed-tx"
	{ printf '\x02'; msg 11 0 'data/x\0v' | chunk 1; msg 20 0 'q\0r1\0' | chunk 1; msg 14 0 '/local/domain/5\0n5\0r6\0' | chunk 0; msg 13 0 'data\0' | chunk 1; } >"$out/corpus/seed-guest"
	{ printf '\x00'; msg 8 0 '3\0' '' | chunk 0; msg 22 0 '/\x000\0' | chunk 0; msg 0 0 'quota\0nodes\x00100\0' | chunk 0; } >"$out/corpus/seed-ctl"
	{ printf '\x01'; head -c 2048 /dev/zero; printf '\x00\x00\x00\x00\x16\x00\x00\x00'; } >"$out/corpus/seed-ring"
fi

# blkif: flags (1 persistent, 2 batching, 4 discard, 8 read-only, 0x10 inline, 0x20 disk image,
# 0x40 two-page ring), image size, 16 bytes of grant access (2 bits a page), the map call that
# fails; then actions (see fuzz_blkif.c).
all=ffffffffffffffffffffffffffffffff
if [ "$name" = blkif ] && [ -z "$(ls -A "$out/corpus")" ]; then
	hex 02 10 $all 00 10 01 02 0800 0100 70 0200 70 0e 10 00 01 0800 0300 70 0e >"$out/corpus/seed-rw"
	hex 02 40 $all 00 05 05 00 0f 1000 70 11 01 1000 0000 01 0500 0e >"$out/corpus/seed-indirect"
	hex 16 10 $all 00 12 00 0000 0800 13 00 10 80 00 0000 02 0e >"$out/corpus/seed-misc"
	hex 00 10 $all 00 10 01 01 0000 0100 70 07 00 00000100 0e >"$out/corpus/seed-runaway"
	hex 63 80 $all 00 10 01 02 0000 0100 70 0200 70 0e 10 00 02 0000 0100 70 0200 70 0e 10 01 01 0000 0110 70 0e \
		>"$out/corpus/seed-persistent"
	hex 0a 10 55555555555555555555555555555555 00 10 01 01 0000 0100 70 10 00 01 0000 0100 70 0e \
		>"$out/corpus/seed-readonly"
	# persistent grants past the cache's 1024 entries: five indirect writes of 256 distinct refs
	{ hex 03 ff $all 00; for k in 1 2 3 4 5; do hex 05 0$k 00 ff $(printf '%02x%02x' $((k * 256 & 255)) $((k * 256 >> 8))) 00; done
	  for k in 1 2 3 4 5; do hex 11 01 0001 0000 01 0${k}00; done; hex 0e; } >"$out/corpus/seed-pgrant-full"
fi
# netif: config (1 spoofing allowed, 2 checksum offload, 4 no tap, 8 a tap that fills up at once),
# 16 bytes of grant access, the
# copy call that fails; then actions (see fuzz_netif.c).
if [ "$name" = netif ] && [ -z "$(ls -A "$out/corpus")" ]; then
	hex 00 $all 00 05 01 0000 80 08 00 00 0100 00 06 01 >"$out/corpus/seed-tx"
	hex 00 $all 00 03 03 05 06 07 08 04 4000 04 0005 04 0500 06 10 >"$out/corpus/seed-rx"
	hex 00 $all 00 05 02 0000 80 08 01 04 0200 00 06 00 0300 00 03 01 >"$out/corpus/seed-frags"
	hex 00 $all 00 05 02 0000 80 08 01 08 0200 00 06 00 0200 00 00 01 >"$out/corpus/seed-extra"
	hex 02 $all 00 05 01 0000 80 08 00 01 0100 00 06 01 >"$out/corpus/seed-csum"
	hex 00 $all 00 05 01 0000 80 08 00 00 0100 00 06 07 00 40000000 01 >"$out/corpus/seed-hostile"
	# a dropped chain answered before the good one ahead of it in its batch
	hex 00 ffffffffffffffffffffcbffffffffff ff 00 05 02 00 00 80 08 01 08 02 00 00 06 00 02 00 00 00 01 \
		>"$out/corpus/seed-order"
	# a chain of 20 slots, each saying more follows: longer than the protocol allows
	hex 00 $all 00 05 01 0000 80 08 13 $(for i in $(seq 20); do printf '04 0100 00 06 '; done) 01 >"$out/corpus/seed-long"
	# 40 frames at once to a tap that takes a few
	hex 08 $all 00 05 01 0000 80 $(for i in $(seq 40); do printf '08 00 00 0100 00 06 '; done) 02 ff >"$out/corpus/seed-tapfull"
fi
# guestnet: prefix, UDP echo port, xmit failing; then records (kind, length, bytes).
if [ "$name" = guestnet ] && [ -z "$(ls -A "$out/corpus")" ]; then
	arp="ffffffffffff 020000000001 0806 0001 0800 06 04 0001 020000000001 0a000001 000000000000 0a000002"
	ping="001122334455020000000001080045000024000000004001 0000 0a000001 0a000002 0800 0000 1234 0001 6162636465666768"
	udp="001122334455020000000001080045000021000000004011 0000 0a000001 0a000002 3039 0007 000d 0000 68656c6c6f"
	hex 18 01 00 55 2a00 $arp 73 3200 $ping 73 2f00 $udp >"$out/corpus/seed-echo"
	hex 18 00 00 02 0c00 0a000001 3039 0007 61626364 55 2a00 $arp 01 1000 02 0c00 0a000001 3039 0007 61626364 \
		03 0800 0a000001 0001 0002 >"$out/corpus/seed-send"
	{ hex 18 00 00 04 1100; printf '00:16:3e:11:22:33'; hex 0e 0b00; printf '10.0.0.2/24'; } >"$out/corpus/seed-parse"
	# an echo request and a UDP echo datagram larger than the MTU (1600-byte frames)
	{ hex 18 01 00 73 4006 0011223344550200000000010800 4500 0632 0000 0000 4001 0000 0a000001 0a000002 \
		0800 0000 1234 0001; head -c 1558 /dev/zero;
	  hex 73 4006 0011223344550200000000010800 4500 0632 0000 0000 4011 0000 0a000001 0a000002 \
		3039 0007 061e 0000; head -c 1558 /dev/zero; } >"$out/corpus/seed-big"
fi

echo "fuzzing '$name' for ${secs}s (corpus $out/corpus)"
cd "$out/crashes"
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 ${runflags[@]+"${runflags[@]}"} "$@" \
	"$out/corpus" 2>&1 |
	tee "$out/fuzz.log" | tail -n 25
rc=${PIPESTATUS[0]}
# The last status line holds the final coverage (cov: edges, ft: features, corp: corpus).
grep -E '^#[0-9]+' "$out/fuzz.log" | tail -n 1 || true
if [ "$rc" -ne 0 ]; then
	echo "FAIL: fuzz target '$name' found a problem; inputs in $out/crashes"
	exit 1
fi
echo "fuzz '$name': no failures in ${secs}s"
