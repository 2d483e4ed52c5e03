#!/usr/bin/env bash
# Real guests reach the store over their rings, and the store introduces and releases them from
# the hypervisor's notifications (no toolstack step): app=store-test passes (its own subtree,
# refused elsewhere including another live domain's tree, watches, transactions); the tree Xen's
# toolstack would write is there with its permissions; Debian's xenstore-watch sees a guest's
# writes; destroying a domain fires @releaseDomain and removes /local/domain/<id> and /vm/<uuid>;
# a domain that restarts gets its new ring reconnected (store-test passes again each time);
# a hostile ring (broken by a Domain-0 program through MAP_SPECIAL) is disconnected alone while
# the other guests and Domain-0 are still served.
. "$LAMINA_SRCDIR/tests/lib.sh"
. "$LAMINA_SRCDIR/tests/e2e/ev-lib.sh"
HOSTILE="$LAMINA_BUILDDIR/tests/e2e/xs-hostile-ring"
for c in xenstore-read xenstore-ls xenstore-watch xenstore-exists; do
	command -v $c >/dev/null || lt_skip "$c missing (Debian package xenstore-utils)"
done
lt_need_kvm
lt_host_start
ev_need_ops
XSLOG="$LAMINA_RUNDIR/xenstored.log"
export XENSTORED_PATH="$LAMINA_RUNDIR/xenstored/socket"
ev_wait_file "$XSLOG" 'connected to the hypervisor' 10 || { cat "$XSLOG"; lt_fail "lamina-xenstored did not connect to lamina-hv"; }

# create NAME CMDLINE [FLAGS]: sets id to the new domain's id
create() {
	local out
	out=$(lt_domctl create ${3:-} "$(lt_xml "$1" "$2" 8192 "<on_poweroff>preserve</on_poweroff>")") ||
		lt_fail "create $1 failed: $out"
	id=${out##* }
}

# introduced ID: the store connected the domain's ring
introduced() { ev_wait_file "$XSLOG" "dom$1 [^ ]+: (introduced|reconnected)" "${2:-10}"; }

# A peer whose tree store-test must not reach, then store-test itself.
create peer "app=idle"; peer=$id
introduced "$peer" || lt_fail "peer (dom$peer) was not introduced: $(tail -5 "$XSLOG")"
create st1 "app=store-test other=$peer"; st=$id
lt_wait_console st1 '^Test result:' 30 || lt_fail "store-test did not finish"
ev_result_ok st1 || lt_fail "store-test: $(lt_console_result st1)"
lt_domctl console --dump st1 | grep -q "read another domain's name: EACCES *ok" ||
	lt_fail "store-test did not check the peer's tree"
lt_log "app=store-test (dom$st, peer dom$peer): $(lt_console_result st1)"

# The tree, as Xen's toolstack writes it.
[ "$(xenstore-read /local/domain/$st/name)" = st1 ] || lt_fail "name"
[ "$(xenstore-read /local/domain/$st/domid)" = "$st" ] || lt_fail "domid"
vm=$(xenstore-read /local/domain/$st/vm) || lt_fail "no vm path"
[ "$(xenstore-read "$vm/name")" = st1 ] || lt_fail "$vm/name"
[ "$(xenstore-read /local/domain/$st/memory/target)" = 8192 ] || lt_fail "memory/target"
perms=$(xenstore-ls -p /local/domain/$st | grep -E '^(name|data) ')
echo "$perms" | grep -q "^name .*(n0,r$st)" || lt_fail "name perms: $perms"
echo "$perms" | grep -q "^data .*(n$st)" || lt_fail "data perms: $perms"
[ "$(xenstore-read /local/domain/0/name)" = Domain-0 ] || lt_fail "Domain-0's name"

# Debian's xenstore-watch (Domain-0) sees a guest's writes: the guest starts paused so the watch
# is in place first.
create st2 "app=store-test" --paused; st2=$id
introduced "$st2" || lt_fail "st2 was not introduced"
timeout 30 xenstore-watch -n 3 "/local/domain/$st2/data" >"$LAMINA_RUNDIR/watch.out" 2>&1 &
wpid=$!
sleep 0.3
lt_domctl unpause st2 >/dev/null || lt_fail "unpause st2"
wait $wpid || lt_fail "xenstore-watch saw no guest writes: $(cat "$LAMINA_RUNDIR/watch.out")"
grep -q "^/local/domain/$st2/data/store-test" "$LAMINA_RUNDIR/watch.out" ||
	lt_fail "the watch events are not the guest's: $(cat "$LAMINA_RUNDIR/watch.out")"
lt_wait_console st2 '^Test result:' 30 && ev_result_ok st2 || lt_fail "st2: $(lt_console_result st2)"

# Destroy: @releaseDomain fires, the domain's nodes and /vm entry are gone.
timeout 20 xenstore-watch -n 2 @releaseDomain >"$LAMINA_RUNDIR/rel.out" 2>&1 &
wpid=$!
sleep 0.3
lt_domctl destroy st1 >/dev/null || lt_fail "destroy st1"
wait $wpid || lt_fail "no @releaseDomain after destroy: $(cat "$LAMINA_RUNDIR/rel.out")"
xenstore-exists /local/domain/$st && lt_fail "/local/domain/$st is still there"
xenstore-exists "$vm" && lt_fail "$vm is still there"
grep -q "dom$st st1: destroyed: released" "$XSLOG" || lt_fail "no release line in the log"

# A restart rebuilds the pages and ports: the store reconnects the new ring, and the new
# instance's store-test passes again over it.
lt_xml rs "app=store-test" 8192 "<on_poweroff>restart</on_poweroff>" >/dev/null
out=$(lt_domctl create "$LAMINA_RUNDIR/rs.xml") || lt_fail "create rs: $out"
rs=${out##* }
for ((i = 0; i < 200; i++)); do
	n=$(lt_domctl console --dump rs 2>/dev/null | grep -c '^Test result: SUCCESS')
	[ "$n" -ge 3 ] && break
	sleep 0.1
done
[ "$n" -ge 3 ] || lt_fail "store-test did not pass again after restarts ($n passes): $(lt_console_result rs)"
lt_domctl console --dump rs | grep '^Test result:' | grep -qv SUCCESS && lt_fail "a restarted store-test failed"
grep -q "dom$rs rs: reconnected after restart" "$XSLOG" || lt_fail "no reconnection line for dom$rs"
lt_domctl destroy rs >/dev/null || lt_fail "destroy rs"
ev_wait_file "$XSLOG" "dom$rs rs: destroyed: released" 10 || lt_fail "rs was not released"
lt_log "restarting store-test: $n passes over reconnected rings"

# Hostile rings: a wild producer index, then an oversized message. Each is disconnected alone.
for mode in idx garbage; do
	create "victim-$mode" "app=idle"; v=$id
	introduced "$v" || lt_fail "victim-$mode was not introduced"
	out=$("$HOSTILE" "$v" $mode 2>&1) || lt_fail "hostile ring ($mode) not disconnected: $out; $(tail -5 "$XSLOG")"
	lt_log "$out"
	ev_wait_file "$XSLOG" "closing ring connection of dom$v" 5 || lt_fail "no log line for dom$v's ring"
done
grep "closing ring connection" "$XSLOG" | sed 's/^/  xenstored: /'
create st3 "app=store-test"; st3=$id
lt_wait_console st3 '^Test result:' 30 && ev_result_ok st3 || lt_fail "after the hostile rings, st3: $(lt_console_result st3)"
[ "$(xenstore-read /local/domain/$peer/name)" = peer ] || lt_fail "Domain-0 is not served after the hostile rings"
kill -0 "$(cat "$LAMINA_RUNDIR/lamina-xenstored.pid")" || lt_fail "lamina-xenstored died"
lt_pass
