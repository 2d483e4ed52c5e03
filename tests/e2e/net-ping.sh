#!/bin/bash
# Domain-0 pings a guest through lambr0 and lamina-netback, and gets UDP datagrams (small and
# near the MTU) echoed; net-list and stat report the vif. All inside the test's own namespace.
. "$LAMINA_SRCDIR/tests/e2e/net-lib.sh"
lt_need_kvm
nt_host_start
nt_guest g1 10.213.0.2/24 "secs=60"

out=$(nt_exec ping -c 20 -i 0.05 -W 2 10.213.0.2) || { echo "$out"; lt_fail "ping from Domain-0 failed"; }
echo "$out" | tail -2
echo "$out" | grep -q " 0% packet loss" || lt_fail "ping lost packets"

nt_exec timeout 20 python3 - <<'PY' || lt_fail "UDP echo through the guest failed"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for n in (1, 64, 1000, 1472):
    msg = bytes((i * 7) & 0xff for i in range(n))
    for attempt in range(3):
        s.sendto(msg, ("10.213.0.2", 7))
        try:
            data, peer = s.recvfrom(2048)
            break
        except socket.timeout:
            data = None
    if data != msg:
        print("udp echo of %d bytes: %s" % (n, "no answer" if data is None else "wrong data"))
        sys.exit(1)
    print("udp echo of %d bytes ok" % n)
PY

list=$(nt_exec "$LAMINA_DOMCTL" net-list g1)
echo "$list"
echo "$list" | grep -qE "^0 +vif1\.0 +00:16:3e:.* lambr0 +connected +connected" || lt_fail "net-list does not show vif1.0 connected"
sleep 0.3 # the statistics file is refreshed at most 4 times a second
stat=$(nt_exec "$LAMINA_DOMCTL" stat g1)
echo "$stat"
echo "$stat" | grep -qE "net vif1\.0 connected tx_frames=([2-9][0-9]|[1-9][0-9][0-9]+)" || lt_fail "stat does not count the frames"
lt_pass
