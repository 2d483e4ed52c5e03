#!/usr/bin/env bash
# The guest's store ring under watch events longer than the ring and a flood of events far larger
# than it: the guest must tell the store when it made room, or the store stalls for ever. A marker
# written after the flood has to reach the guest.
. "$LAMINA_SRCDIR/tests/lib.sh"
lt_need_kvm
[ -x "$LAMINA_XENSTORED" ] || lt_fail "missing $LAMINA_XENSTORED"
command -v xenstore-write >/dev/null || lt_fail "xenstore-write (xenstore-utils) is missing"
lt_host_start
export XENSTORED_PATH=$LAMINA_RUNDIR/xenstored/socket
for _ in $(seq 100); do grep -q 'connected to the hypervisor' "$LAMINA_RUNDIR/xenstored.log" 2>/dev/null && break; sleep 0.05; done

xml=$(lt_xml sw "app=store-test wait-dom0=1 timeout=30" 16384 "<on_poweroff>preserve</on_poweroff><on_crash>preserve</on_crash>")
out=$(lt_domctl create "$xml") || lt_fail "create failed: $out"
id=${out##* }
lt_wait_console sw '^store-test: waiting for Domain-0' 20 || lt_fail "the guest never waited for Domain-0"
xenstore-write "/local/domain/$id/data/from-dom0" first || lt_fail "xenstore-write failed"
lt_wait_console sw '^store-test: holding' 20 || lt_fail "the guest did not take Domain-0's write"
events() { lt_domctl console --dump sw | grep -c "watch event: data/from-dom0"; }

# 1. A watch event longer than the 1 KiB ring, then a short one that must still arrive.
long=$(head -c 1900 /dev/zero | tr '\0' 'a')
n0=$(events)
xenstore-write "/local/domain/$id/data/from-dom0/$long" x "/local/domain/$id/data/from-dom0" after-long ||
	lt_fail "xenstore-write of the long path failed"
for _ in $(seq 100); do [ "$(events)" -gt "$n0" ] && break; sleep 0.05; done
n1=$(events)
lt_log "long event: $n0 -> $n1 event lines"
[ "$n1" -gt "$n0" ] || lt_fail "no watch event reached the guest after one longer than its ring"

# 2. 2000 writes in one transaction of the client: ~84 KB of events through the ring.
args=()
for i in $(seq 2000); do args+=("/local/domain/$id/data/from-dom0/k$i" "v$i"); done
xenstore-write "${args[@]}" || lt_fail "the flood write failed"
ok=0
for j in $(seq 20); do
	xenstore-write "/local/domain/$id/data/from-dom0/marker$j" x
	for _ in $(seq 10); do
		lt_domctl console --dump sw | grep -q "watch event: data/from-dom0/marker$j " && { ok=1; break 2; }
		sleep 0.05
	done
done
lt_log "flood: marker $j seen=$ok; $(( $(events) - n1 )) event lines printed"
[ $ok = 1 ] || lt_fail "watch events stalled after a flood larger than the ring"
[ "$(lt_domctl info sw --json | jq -r .state)" = running ] || lt_fail "the guest is not running"
lt_pass
