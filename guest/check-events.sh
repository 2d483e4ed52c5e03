#!/bin/sh
# Guest checks that need several domains or Domain-0 daemons, in both rings: the two-domain event
# ping-pong, store-test against lamina-xenstored (with another domain to be refused), echo through
# lamina-consoled's attach socket, and an idle guest's CPU use. Exit 0 pass, 1 fail, 77 skip.
# usage: check-events.sh GUEST HV DOMCTL
tag=check-events
. "$(dirname "$0")/check-lib.sh"

host_start

# pingpong RING: the server is created first, naming the next domain id as its peer (it retries
# alloc_unbound until that domain exists); the client, given no port=, binds the one port the
# server allocated for it. Both report the same port; the client the round-trip time.
pingpong() {
	r=${1:+-r0}
	create "other$r" "app=idle" || return
	base=$last_id
	server="pps$r" client="ppc$r"
	create "$server" "app=evtchn-test peer=$((base + 2)) role=server rounds=200$1" || return
	sid=$last_id
	create "$client" "app=evtchn-test peer=$sid role=client rounds=200$1" || return
	[ "$last_id" -eq $((base + 2)) ] || fail "$client: got id $last_id, the server expects $((base + 2))"
	finish "$client" "client of domain $sid" "shutdown (poweroff" ""
	verdict_ev "$client"
	finish "$server" "server for domain $last_id" "shutdown (poweroff" ""
	verdict_ev "$server"
	if grep -q "^$ok" "$work/$client.log"; then
		sp=$(sed -n 's/^evtchn-test: port \([0-9]*\)$/\1/p' "$work/$server.log")
		cp=$(sed -n 's/^evtchn-test: bound local port [0-9]* to domain [0-9]* port \([0-9]*\)$/\1/p' "$work/$client.log")
		[ -n "$sp" ] && [ "$sp" = "$cp" ] || fail "$client: bound port '$cp', the server allocated '$sp'"
		grep '^BENCH interdomain_rtt_ns [0-9]* ns$' "$work/$client.log" || fail "$client: no BENCH line"
	fi
	"$domctl" destroy "other$r" >/dev/null 2>&1
}

# store RING: store-test, refused in another live domain's tree. With lamina-xenstored built it
# must succeed (its SKIP, "no store daemon attached", is a failure here); without it, a loud skip.
store() {
	r=${1:+-r0}
	create "sother$r" "app=idle" || return
	if [ -x "$xenstored_bin" ]; then
		run "store$r" "app=store-test other=$last_id$1" "shutdown (poweroff" "$ok"
	else
		run "store$r" "app=store-test other=$last_id$1" "shutdown (poweroff" ""
		verdict_ev "store$r"
	fi
	"$domctl" destroy "sother$r" >/dev/null 2>&1
}

# echo RING: two lines and quit through consoled.sock; each line must come back prefixed.
echo_test() {
	r=${1:+-r0}
	command -v python3 >/dev/null || { echo "**** $tag: echo$r SKIPPED: no python3 to drive the attach socket ****" >&2; return; }
	create "echo$r" "app=echo timeout=30$1" || return
	console_wait "echo$r" '^echo: type a line|^Test result' 20 >/dev/null
	python3 - "$LAMINA_RUNDIR/consoled.sock" "echo$r" <<'PY' >"$work/echo$r.attach" 2>&1
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(("ATTACH %s rw\n" % sys.argv[2]).encode())
s.settimeout(10)
print(s.recv(256).decode(errors="replace").strip())
for line in (b"hello lamina\n", b"second line\r\n", b"quit\n"):
    s.sendall(line)
    time.sleep(0.05)
time.sleep(0.5)
PY
	finish "echo$r" "echo" "shutdown (poweroff" ""
	verdict_ev "echo$r"
	if grep -q "^$ok" "$work/echo$r.log"; then
		grep -q '^echo: hello lamina$' "$work/echo$r.log" && grep -q '^echo: second line$' "$work/echo$r.log" ||
			fail "echo$r: lines not echoed"
	elif grep -q '^Test result: SKIP' "$work/echo$r.log"; then
		:
	else
		cat "$work/echo$r.attach" >&2
	fi
}

# idle: a blocked guest uses (almost) no CPU: under 50 ms of CPU time in 1 s.
idle_cpu() {
	create idle "app=idle$1" || return
	console_wait idle '^idle: domain' 10 >/dev/null || fail "idle: no start line"
	a=$("$domctl" info idle | awk -F': *' '$1 == "cpu time" { print $2 }' | cut -d' ' -f1)
	sleep 1
	b=$("$domctl" info idle | awk -F': *' '$1 == "cpu time" { print $2 }' | cut -d' ' -f1)
	used=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%d", (b - a) * 1000 }')
	echo "$tag: idle${1:+ (ring 0)}: ${used} ms of CPU in 1 s"
	[ "$used" -lt 50 ] || fail "idle$1: ${used} ms of CPU in 1 s while blocked"
	"$domctl" destroy idle >/dev/null 2>&1
}

for ring in "" " ring0"; do
	pingpong "$ring"
	store "$ring"
	echo_test "$ring"
	idle_cpu "$ring"
done
finish_checks
