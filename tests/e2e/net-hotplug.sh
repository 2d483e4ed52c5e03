#!/bin/bash
# Hot attach and detach: a guest started without a vif gets one with net-attach (given MAC), is
# pinged, then loses it with net-detach (clean handshake); the tap is gone afterwards.
. "$LAMINA_SRCDIR/tests/e2e/net-lib.sh"
lt_need_kvm
nt_host_start
f=$(lt_xml g1 "app=net-echo ip=10.213.0.2/24 wait=30 secs=60" 32768 "<devices><console type='pty'/></devices>")
nt_exec "$LAMINA_DOMCTL" create "$f" >/dev/null || lt_fail "create failed"
lt_wait_console g1 "waiting for a vif" 20 || lt_fail "the guest did not start waiting"
out=$(nt_exec "$LAMINA_DOMCTL" net-attach g1 --bridge lambr0 --mac 00:16:3e:00:00:42) || { echo "$out"; lt_fail "net-attach failed"; }
echo "$out"
lt_wait_console g1 "net-echo: up .* mac 00:16:3e:00:00:42" 20 || lt_fail "the guest did not bring the hot-plugged vif up"
nt_exec ping -c 5 -i 0.1 -W 2 10.213.0.2 >/dev/null || lt_fail "no ping through the hot-plugged vif"
nt_exec ip link show vif1.0 | grep -q "master lambr0" || lt_fail "vif1.0 is not on lambr0"
out=$(nt_exec "$LAMINA_DOMCTL" net-detach g1 0) || { echo "$out"; lt_fail "net-detach failed"; }
echo "$out"
lt_wait_console g1 "vif detached" 10 || lt_fail "the guest did not see the detach"
for i in $(seq 50); do nt_exec ip link show vif1.0 >/dev/null 2>&1 || break; sleep 0.1; done
nt_exec ip link show vif1.0 >/dev/null 2>&1 && lt_fail "vif1.0 still exists after the detach"
nt_exec "$LAMINA_DOMCTL" store read /local/domain/0/backend/vif/1/0/state >/dev/null 2>&1 &&
	lt_fail "the back-end directory is still in the store"
nt_exec "$LAMINA_DOMCTL" store read /local/domain/1/device/vif/0/state >/dev/null 2>&1 &&
	lt_fail "the front-end directory is still in the store"
lt_pass
