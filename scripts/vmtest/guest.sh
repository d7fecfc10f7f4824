#!/bin/sh
# The tests the vmtest guest runs (run by /init with busybox sh), and the
# one place that says which: the eBPF tests whose peers are in the
# initramfs (the e2e binary is its own Go peer; no Debian peers). Here the
# receiver takes the socket hooks (hooks: auto); the tests of both hooks
# run each hook in turn. VMTEST_BPF and VMTEST_E2E (regular expressions
# for -test.run) narrow them for one run; VMTEST_COST=1 adds the cost
# measurement (make vmtest-cost).
. /vmtest.env
status=0
run() {
	name=$1
	shift
	echo "=== VMTEST $name"
	start=$(date +%s)
	if "$@"; then
		echo "--- VMTEST $name: ok ($(($(date +%s) - start))s)"
	else
		echo "--- VMTEST $name: FAILED ($(($(date +%s) - start))s)"
		status=1
	fi
}
cost=
[ "${VMTEST_COST:-0}" = 1 ] && cost='|TestHookCost'
cd /tmp
# Kernel side: the same events from both hooks (every syscall followed,
# IPv4 and IPv6, with and without propagation); the choice of hooks;
# traceparent insertion and what the server's reads get from it; the forks
# of a selected process.
[ -x /bin/bpf.test ] && run bpf /bin/bpf.test -test.v -test.count=1 -test.timeout 10m \
	-test.run "${VMTEST_BPF:-^(TestHooksChoice|TestSocketHooksSendTheSameEvents|TestTraceparentInserted|TestForkInheritsSelection)$}"
# End to end: HTTP/1 exact counts, shutdown leaves no program, the same
# spans from both hooks, propagation through both, and the hooks' cost.
[ -x /bin/e2e.test ] && run e2e /bin/e2e.test -test.v -test.count=1 -test.timeout 15m \
	-test.run "${VMTEST_E2E:-^(TestGoServerKeepAlive|TestStatusAndChunked|TestTraceparentIsHonoured|TestShutdownDetachesEverything|TestHooksSameSpans|TestHooksPropagation$cost)$}"
exit $status
