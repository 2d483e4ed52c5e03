#!/bin/bash
# Debian's xenstore clients (xenstore-utils), unchanged, against lamina-xenstored over
# XENSTORED_PATH: read/write/ls/list/exists/rm/chmod/watch, with the transactions those clients
# open themselves (xenstore-chmod -r, xenstore-rm).
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"
set -u
: "${LAMINA_XENSTORED:?run through make check}"

for c in xenstore-read xenstore-write xenstore-ls xenstore-list xenstore-exists xenstore-rm xenstore-chmod xenstore-watch; do
	if ! command -v "$c" >/dev/null; then
		echo "SKIP: $c missing (Debian package xenstore-utils)"
		exit 77
	fi
done

dir=$(mktemp -d /tmp/xs-clients.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

fails=0
check() { # NAME EXPECTED ACTUAL
	if [ "$2" == "$3" ]; then
		echo "ok   $1"
	else
		echo "FAIL $1"; echo "  expected: $(printf '%q' "$2")"; echo "  got:      $(printf '%q' "$3")"
		fails=$((fails + 1))
	fi
}

"$LAMINA_XENSTORED" --rundir "$dir" --no-hv --pid-file "$dir/pid" --log "$dir/log" &
pid=$!
for _ in $(seq 100); do [ -e "$dir/pid" ] && break; sleep 0.05; done
export XENSTORED_PATH="$dir/xenstored/socket"
[ -S "$XENSTORED_PATH" ] || { echo "FAIL: daemon did not start"; cat "$dir/log"; exit 1; }

xenstore-write /vm/1/name guest-one /vm/1/memory 65536 "/vm/1/note" "with spaces"
check "write+read" $'guest-one\n65536\nwith spaces' "$(xenstore-read /vm/1/name /vm/1/memory /vm/1/note)"
check "read -p" "/vm/1/name: guest-one" "$(xenstore-read -p /vm/1/name)"
xenstore-read /vm/1/missing 2>/dev/null
check "read missing fails" 1 $?
xenstore-exists /vm/1/name
check "exists" 0 $?
xenstore-exists /vm/2 2>/dev/null
check "exists missing" 1 $?
check "list" $'name\nmemory\nnote' "$(xenstore-list /vm/1)"
check "ls" $'1 = ""\n name = "guest-one"\n memory = "65536"\n note = "with spaces"' "$(xenstore-ls /vm)"
check "ls -f" $'/vm/1 = ""\n/vm/1/name = "guest-one"\n/vm/1/memory = "65536"\n/vm/1/note = "with spaces"' \
	"$(xenstore-ls -f /vm)"

# permissions: chmod (one node and recursive, in a transaction), shown by ls -p
xenstore-chmod /vm/1/name n0 r5
check "chmod" "(n0,r5)" "$(xenstore-ls -p /vm/1 | grep '^name' | sed 's/.*\(([^)]*)\)$/\1/')"
xenstore-chmod -r /vm b7
check "chmod -r" "b7 b7 b7 b7 b7" "$(xenstore-ls -p / | grep -E '^ *(vm|1|name|memory|note) ' | sed 's/.*(\(.*\))$/\1/' | tr '\n' ' ' | sed 's/ $//')"
xenstore-chmod /vm/1/memory n3 r0 w4 b5
check "perms list" "(n3,r0,w4,b5)" "$(xenstore-ls -p /vm/1 | grep memory | sed 's/.*\(([^)]*)\)$/\1/')"
xenstore-chmod /vm/1/memory x3 2>/dev/null
check "bad perm refused" 1 $?

# watches: the initial event, then one per change below the path
xenstore-watch -n 4 /vm/1 >"$dir/watch.out" &
wpid=$!
sleep 0.3
xenstore-write /vm/1/state running
xenstore-write /vm/10/decoy x  # not below /vm/1
xenstore-rm /vm/1/note
xenstore-write /vm/1/state paused
wait "$wpid"
check "watch" $'/vm/1\n/vm/1/state\n/vm/1/note\n/vm/1/state' "$(cat "$dir/watch.out")"

# rm (in a transaction) and rm -t (empty parents too)
xenstore-rm /vm/10
xenstore-exists /vm/10 2>/dev/null
check "rm" 1 $?
xenstore-write /tmp/a/b/c 1
xenstore-rm -t /tmp/a/b/c
xenstore-exists /tmp 2>/dev/null
check "rm -t" 1 $?

# many clients at once, each in its own transactions
wpids=()
for i in $(seq 1 40); do xenstore-write "/par/$i" "$i" & wpids+=($!); done
wait "${wpids[@]}"
check "40 parallel writers" 40 "$(xenstore-list /par | wc -l)"
check "sum" 820 "$(for i in $(xenstore-list /par); do xenstore-read "/par/$i"; done | awk '{s+=$1} END {print s}')"

# a big directory goes through DIRECTORY_PART in the client library
for i in $(seq 1 300); do echo "/big/a-rather-long-child-name-$i"; echo v; done | xargs -n 200 xenstore-write
check "large directory" 300 "$(xenstore-list /big | wc -l)"

kill -TERM "$pid"
wait "$pid"
check "clean exit" 0 $?
pid=
check "socket removed" no "$([ -e "$XENSTORED_PATH" ] && echo yes || echo no)"
if [ "$fails" -ne 0 ]; then
	echo "---- daemon log"; cat "$dir/log"
	exit 1
fi
exit 0
