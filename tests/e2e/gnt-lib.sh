# Shared by the grant end-to-end tests (tests/e2e/gnt-*.sh); source after tests/lib.sh.
GNT_CLIENT="$LAMINA_BUILDDIR/tests/gnt-client"

# gnt_need_ops: lamina-hv must serve the grant ops (a loud SKIP otherwise).
gnt_need_ops() {
	local out rc
	[ -x "$GNT_CLIENT" ] || lt_fail "missing $GNT_CLIENT (make check builds it)"
	out=$("$GNT_CLIENT" probe 2>&1); rc=$?
	[ $rc -eq 77 ] && lt_skip "lamina-hv lacks the grant control ops: $(echo $out)"
	[ $rc -eq 0 ] || lt_fail "gnt-client probe failed: $out"
}

# gnt_ref NAME KIND: the ref the guest printed as "grant-test: KIND ref R gfn G".
gnt_ref() {
	lt_domctl console --dump "$1" | grep -oE "grant-test: $2 ref [0-9]+" | head -n1 | grep -oE '[0-9]+$'
}

# gnt_result_ok NAME: the guest's last Test result line is SUCCESS.
gnt_result_ok() {
	local r
	r=$(lt_console_result "$1")
	[ "${r#Test result: SUCCESS}" != "$r" ]
}

# gnt_hv_alive: the daemon is still running.
gnt_hv_alive() { kill -0 "$(lt_hv_pid)" 2>/dev/null; }
