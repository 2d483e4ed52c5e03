#!/usr/bin/env bash
# Watches and transactions of a real guest across Domain-0 and destroy: app=store-test
# wait-dom0=1 watches data/from-dom0 over its ring; Debian's xenstore-write (Domain-0, through the
# store socket) writes it and the guest reports the value it read; the guest then holds that watch
# and an open transaction (whose write nobody else sees) and stays up. Destroying it makes the
# store drop exactly that watch and that transaction (its log line says so), remove the guest's
# tree and /vm entry, and fire @releaseDomain (seen by xenstore-watch); the store serves on:
# a fresh store-test passes, and app=store-load completes each kind of timed ring request.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/ev-lib.sh"
for c in xenstore-read xenstore-write xenstore-watch xenstore-exists; do
	command -v $c >/dev/null || lt_skip "$c missing (Debian package xenstore-utils)"
done
command -v jq >/dev/null || lt_skip "jq missing"
lt_need_kvm
lt_host_start
ev_need_ops
XSLOG="$LAMINA_RUNDIR/xenstored.log"
export XENSTORED_PATH="$LAMINA_RUNDIR/xenstored/socket"
ev_wait_file "$XSLOG" 'connected to the hypervisor' 10 || { cat "$XSLOG"; lt_fail "lamina-xenstored did not connect to lamina-hv"; }

out=$(lt_domctl create "$(lt_xml sw "app=store-test wait-dom0=1 timeout=30" 8192 "<on_poweroff>preserve</on_poweroff>")") ||
	lt_fail "create sw failed: $out"
id=${out##* }
ev_wait_file "$XSLOG" "dom$id sw: introduced" 10 || lt_fail "sw (dom$id) was not introduced: $(tail -5 "$XSLOG")"
lt_wait_console sw '^store-test: waiting for Domain-0' 30 ||
	lt_fail "store-test did not reach its wait: $(lt_console_result sw)"
ev_result_ok sw && lt_fail "store-test ended before Domain-0 wrote"
vm=$(xenstore-read /local/domain/$id/vm) || lt_fail "no vm path for dom$id"

# Domain-0 writes; the guest's watch fires and it reports what it read.
value="from-dom0-$$-$RANDOM"
xenstore-write "/local/domain/$id/data/from-dom0" "$value" || lt_fail "xenstore-write failed"
lt_wait_console sw "^store-test: Domain-0 wrote '$value'" 15 ||
	lt_fail "the guest did not report Domain-0's value: $(lt_domctl console --dump sw | tail -5)"
lt_wait_console sw '^store-test: holding watch and transaction' 10 || lt_fail "store-test is not holding its watch and transaction"
lt_wait_console sw '^Test result:' 5 && ev_result_ok sw || lt_fail "store-test: $(lt_console_result sw)"
lt_domctl console --dump sw | grep -qE "watch event: data/from-dom0 \(token from-dom0\)" ||
	lt_fail "no relative watch event in the guest's log"
lt_log "guest: $(lt_domctl console --dump sw | grep "^store-test: Domain-0 wrote")"

# Still up, and its transaction is still open: the write inside it is invisible to Domain-0.
sleep 0.2
state=$(lt_domctl info sw --json | jq -r .state)
[ "$state" = running ] || lt_fail "sw is $state, not running, while it holds the watch and the transaction"
xenstore-exists "/local/domain/$id/data/held-tx" && lt_fail "the open transaction's write is visible outside it"
[ "$(xenstore-read "/local/domain/$id/data/from-dom0")" = "$value" ] || lt_fail "data/from-dom0 lost its value"
# The held watch is live: another write reaches the guest while it waits.
n=$(lt_domctl console --dump sw | grep -c 'watch event: data/from-dom0 ')
xenstore-write "/local/domain/$id/data/from-dom0" again || lt_fail "second xenstore-write failed"
for ((i = 0; i < 100; i++)); do
	m=$(lt_domctl console --dump sw | grep -c 'watch event: data/from-dom0 ')
	[ "$m" -gt "$n" ] && break
	sleep 0.05
done
[ "$m" -gt "$n" ] || lt_fail "the held watch did not fire again ($n events before, $m after)"

# Destroy: @releaseDomain (xenstore-watch prints the registration event first, then the release).
timeout 20 xenstore-watch -n 2 @releaseDomain >"$LAMINA_RUNDIR/rel.out" 2>&1 &
wpid=$!
ev_wait_file "$LAMINA_RUNDIR/rel.out" '^@releaseDomain' 5 || sleep 0.3
lt_domctl destroy sw >/dev/null || lt_fail "destroy sw"
wait $wpid || lt_fail "no @releaseDomain after destroy: $(cat "$LAMINA_RUNDIR/rel.out")"
[ "$(grep -c '^@releaseDomain' "$LAMINA_RUNDIR/rel.out")" -eq 2 ] ||
	lt_fail "xenstore-watch output: $(cat "$LAMINA_RUNDIR/rel.out")"
line="dom$id sw: destroyed: released (1 watches, 1 transactions dropped), tree removed"
ev_wait_file "$XSLOG" "dom$id sw: destroyed: released" 10 || lt_fail "no release line for dom$id: $(tail -5 "$XSLOG")"
grep -qF "$line" "$XSLOG" || lt_fail "release line is not '$line': $(grep "dom$id sw: destroyed" "$XSLOG")"
lt_log "xenstored: $(grep -F "$line" "$XSLOG")"
xenstore-exists "/local/domain/$id" && lt_fail "/local/domain/$id is still there"
xenstore-exists "$vm" && lt_fail "$vm is still there"

# The store serves on: Domain-0 and a fresh guest.
[ "$(xenstore-read /local/domain/0/name)" = Domain-0 ] || lt_fail "Domain-0 is not served after the destroy"
out=$(lt_domctl create "$(lt_xml sw2 "app=store-test" 8192 "<on_poweroff>preserve</on_poweroff>")") ||
	lt_fail "create sw2 failed: $out"
lt_wait_console sw2 '^Test result:' 30 && ev_result_ok sw2 || lt_fail "sw2 after the destroy: $(lt_console_result sw2)"
for kind in read write watch; do
	out=$(lt_domctl create "$(lt_xml "load-$kind" "app=store-load ops=200 kind=$kind" 8192 \
		"<on_poweroff>preserve</on_poweroff>")") || lt_fail "create load-$kind failed: $out"
	lt_wait_console "load-$kind" '^Test result:' 30 && ev_result_ok "load-$kind" ||
		lt_fail "store-load kind=$kind: $(lt_console_result "load-$kind")"
	for m in ops_per_s p50_us p99_us; do
		lt_domctl console --dump "load-$kind" | grep -qE "^BENCH store_ring_${kind}_$m [0-9.]+ " ||
			lt_fail "store-load kind=$kind printed no $m"
	done
	lt_log "store-load kind=$kind: $(lt_domctl console --dump "load-$kind" | grep '^BENCH' | cut -d' ' -f2- | tr '\n' ' ')"
done
out=$(lt_domctl create "$(lt_xml load-bad "app=store-load kind=nosuch" 8192 "<on_poweroff>preserve</on_poweroff>")") ||
	lt_fail "create load-bad failed: $out"
lt_wait_console load-bad '^Test result:' 30 && lt_console_result load-bad | grep -q "ERROR: kind='nosuch'" ||
	lt_fail "store-load took an unknown kind: $(lt_console_result load-bad)"
kill -0 "$(cat "$LAMINA_RUNDIR/lamina-xenstored.pid")" || lt_fail "lamina-xenstored died"
lt_pass
