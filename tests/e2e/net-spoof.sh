#!/bin/bash
# A guest sending frames with a forged source MAC: lamina-netback refuses them (counted) and the
# guest keeps working; with --allow-spoof on its vif the same frames pass.
. "$LAMINA_SRCDIR/tests/e2e/net-lib.sh"
lt_need_kvm
nt_host_start
nt_guest g1 10.213.0.2/24 "secs=60 spoof=1"
lt_wait_console g1 "forged source MAC" 10 || lt_fail "g1 did not send its forged frames"
nt_exec ping -c 3 -i 0.1 -W 2 10.213.0.2 >/dev/null || lt_fail "g1 stopped answering after its forged frames"
sleep 0.3
stat=$(nt_exec "$LAMINA_DOMCTL" stat g1)
echo "$stat"
echo "$stat" | grep -q "drop_spoof=5" || lt_fail "the forged frames were not refused and counted"

f=$(lt_xml g2 "app=net-echo ip=10.213.0.3/24 wait=30 secs=60 spoof=1" 32768 "<devices><console type='pty'/></devices>")
nt_exec "$LAMINA_DOMCTL" create "$f" >/dev/null || lt_fail "create g2 failed"
lt_wait_console g2 "waiting for a vif" 20 || lt_fail "g2 did not start waiting"
nt_exec "$LAMINA_DOMCTL" net-attach g2 --bridge lambr0 --allow-spoof || lt_fail "net-attach --allow-spoof failed"
lt_wait_console g2 "forged source MAC" 20 || lt_fail "g2 did not send its frames"
sleep 0.5
stat=$(nt_exec "$LAMINA_DOMCTL" stat g2)
echo "$stat"
echo "$stat" | grep -q "drop_spoof=0" || lt_fail "frames were refused although spoofing is allowed"
lt_pass
