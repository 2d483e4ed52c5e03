# Shared by the issue-4 end-to-end tests (tests/e2e/ev-*.sh); source after tests/lib.sh.
EV_DOM0="$LAMINA_BUILDDIR/tests/e2e/ev-dom0"

# ev_need_ops: the hypervisor must serve the Domain-0 event ops of control.h (a loud SKIP
# otherwise: until lamina-hv implements them, these tests cannot say anything).
ev_need_ops() {
	local out rc
	[ -x "$EV_DOM0" ] || lt_fail "missing $EV_DOM0 (make check builds it)"
	out=$("$EV_DOM0" probe 2>&1); rc=$?
	[ $rc -eq 77 ] && lt_skip "lamina-hv lacks issue-4 control ops: $(echo $out)"
	[ $rc -eq 0 ] || lt_fail "ev-dom0 probe failed: $out"
}

# ev_need_consoled: lamina-consoled was started by host start and answers on consoled.sock.
ev_need_consoled() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ -S "$LAMINA_RUNDIR/consoled.sock" ] && return 0
		sleep 0.05
	done
	cat "$LAMINA_RUNDIR/consoled.log" 2>/dev/null
	lt_fail "lamina-consoled is not serving $LAMINA_RUNDIR/consoled.sock"
}

# ev_wait_file FILE REGEX [TIMEOUT_S]
ev_wait_file() {
	local f=$1 re=$2 t=${3:-20} i
	for ((i = 0; i < t * 20; i++)); do
		grep -qE "$re" "$f" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# ev_result NAME: SUCCESS when the guest's last Test result line says so.
ev_result_ok() {
	local r
	r=$(lt_console_result "$1")
	[ "${r#Test result: SUCCESS}" != "$r" ]
}

# ev_proc_counts PID: "FDS THREADS" of a process.
ev_proc_counts() {
	echo "$(ls /proc/$1/fd 2>/dev/null | wc -l) $(ls /proc/$1/task 2>/dev/null | wc -l)"
}

ev_consoled_pid() { cat "$LAMINA_RUNDIR/lamina-consoled.pid"; }
