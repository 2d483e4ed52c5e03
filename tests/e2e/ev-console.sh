#!/usr/bin/env bash
# The PV console both ways through lamina-consoled: app=echo reads lines from its console ring
# and echoes them. `domctl console` attaches with a pipe as stdin: Ctrl-] (0x1d) detaches at once,
# a second attach (read-only, concurrent) sees the same output, input reaches the guest, and the
# log file has everything.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/ev-lib.sh"
lt_need_kvm
lt_host_start
ev_need_ops
ev_need_consoled

lt_domctl create "$(lt_xml echo1 "app=echo timeout=60" 8192 "<on_poweroff>preserve</on_poweroff>")" >/dev/null ||
	lt_fail "create failed"
lt_wait_console echo1 'echo: type a line' 20 || lt_fail "echo did not start"
ev_wait_file "$LAMINA_RUNDIR/consoled.log" 'echo1 \(domain [0-9]+\): console connected' 10 ||
	lt_fail "lamina-consoled did not connect the console"

# Ctrl-] detaches at once, long before the linger time.
t0=$(date +%s%N)
printf 'first line\n\035ignored\n' | timeout 20 "$LAMINA_DOMCTL" console echo1 --linger 10000 >"$LAMINA_RUNDIR/a.out" ||
	lt_fail "first attach failed: $(cat "$LAMINA_RUNDIR/a.out")"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
lt_log "detached after $ms ms"
[ "$ms" -lt 5000 ] || lt_fail "Ctrl-] did not detach ($ms ms)"
lt_wait_console echo1 'echo: first line' 10 || lt_fail "input before Ctrl-] did not reach the guest"
lt_domctl console --dump echo1 | grep -q 'echo: ignored' && lt_fail "input after Ctrl-] reached the guest"

# A read-only reader alongside the writer.
sleep 4 | timeout 20 "$LAMINA_DOMCTL" console echo1 --ro --linger 500 >"$LAMINA_RUNDIR/ro.out" 2>&1 &
ro=$!
sleep 0.5
out=$( (sleep 0.3; printf 'hello lamina\n'; sleep 1; printf 'quit\n'; sleep 0.3) |
	timeout 30 "$LAMINA_DOMCTL" console echo1 --linger 1500 2>&1) || lt_fail "attach failed: $out"
echo "$out" | sed 's/^/  console: /'
echo "$out" | grep -q 'echo: hello lamina' || lt_fail "no echo through the attached console"
echo "$out" | grep -q 'echo: bye after' || lt_fail "'quit' did not reach the guest"
wait $ro
grep -q 'echo: hello lamina' "$LAMINA_RUNDIR/ro.out" || lt_fail "the read-only reader missed the output: $(cat "$LAMINA_RUNDIR/ro.out")"
w=$(lt_domctl wait echo1 --timeout 20) || lt_fail "echo1: $w"
ev_result_ok echo1 || lt_fail "guest: $(lt_console_result echo1)"
grep -q 'echo: hello lamina' "$LAMINA_RUNDIR/console/echo1.log" || lt_fail "the log lacks the echoed line"
lt_pass
