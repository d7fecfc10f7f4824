#!/usr/bin/env bash
# make vmtest: boots Debian's 6.1 cloud kernel under qemu with software
# emulation (no KVM here) and runs the eBPF tests there, on the kernel's
# socket hooks (fentry) and its syscall tracepoints. The guest is an
# initramfs: busybox-static, the statically built test binaries (the e2e
# binary is also its own peer) and scripts/vmtest/{init,guest.sh}. The
# kernel image is fetched once into .cache/vmtest (kernel.sh). Exits
# non-zero when a test in the guest failed, printing the guest's console.
#
# While working on it: VMTEST_PACKAGES ("bpf e2e") says which test binaries
# go in; VMTEST_BPF and VMTEST_E2E narrow their -test.run; VMTEST_COST=1
# adds the cost measurement (make vmtest-cost); VMTEST_LOG keeps the console in a file;
# VMTEST_LOGLEVEL=7 shows the kernel's messages; VMTEST_TIMEOUT (900 s)
# bounds the guest; VMTEST_KERNEL_PKG names another kernel package.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cache=${VMTEST_CACHE:-$root/.cache/vmtest}
timeout=${VMTEST_TIMEOUT:-900}
for tool in qemu-system-x86_64 busybox; do
	command -v "$tool" >/dev/null || { echo "vmtest: $tool is missing: run make setup" >&2; exit 1; }
done
busybox=$(command -v busybox) # busybox-static's: the guest has no libc

# One CPU: the programs are attached and detached many times, and the
# kernel patches its static keys then (text_poke_bp: int3 and IPIs to the
# other CPUs); under multi-threaded TCG a second vCPU was seen livelocked
# at the patched site (soft lockups, RCU stalls) in about one run in three.
cpus=${VMTEST_CPUS:-1}
threads=single
[ "$cpus" -gt 1 ] && threads=multi
started=$(date +%s)
kernel=$(scripts/vmtest/kernel.sh "$cache")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rd=$work/rd
mkdir -p "$rd/bin" "$rd/sys/fs/cgroup"
cp "$busybox" "$rd/bin/busybox"
cp scripts/vmtest/init "$rd/init"
cp scripts/vmtest/guest.sh "$rd/guest.sh"
chmod 755 "$rd/init"
{
	printf 'VMTEST_BPF=%q\n' "${VMTEST_BPF:-}"
	printf 'VMTEST_E2E=%q\n' "${VMTEST_E2E:-}"
	printf 'VMTEST_COST=%q\n' "${VMTEST_COST:-}"
	echo "CI=${CI:-}"
} >"$rd/vmtest.env"
echo "vmtest: building the static test binaries"
export CGO_ENABLED=0
for pkg in ${VMTEST_PACKAGES:-bpf e2e}; do # narrowed while working on one
	# tag vmtest: tests that only make sense in the guest (the hooks' cost)
	go test -c -vet=off -trimpath -tags vmtest -ldflags "-s -w" -o "$rd/bin/$pkg.test" "./$pkg"
done
(cd "$rd" && find . | busybox cpio -o -H newc 2>/dev/null >"$work/initramfs.cpio")
built=$(date +%s)

echo "vmtest: booting $(cat "$cache/package") under qemu (TCG, ${cpus} CPU, 2 GiB), at most ${timeout}s"
log=${VMTEST_LOG:-$work/console.log}
set +e
timeout --foreground -k 10 "$timeout" qemu-system-x86_64 \
	-machine q35 -accel tcg,thread=${threads} -cpu max -smp ${cpus} -m 2048 \
	-nographic -nodefaults -no-reboot -serial stdio -net none \
	-kernel "$kernel" -initrd "$work/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 oops=panic nowatchdog rcupdate.rcu_cpu_stall_suppress=1 quiet loglevel=${VMTEST_LOGLEVEL:-4} rdinit=/init" \
	</dev/null >"$log" 2>&1
rc=$?
set -e
ended=$(date +%s)
summary() { grep -aE '^(VMTEST|=== VMTEST|--- VMTEST|( {4})*--- (PASS|FAIL|SKIP)|HOOK)| HOOKS ' "$log" || true; }
if [ $rc -eq 0 ] && grep -aq '^VMTEST RESULT: PASS' "$log"; then
	summary
	echo "vmtest: passed, $(grep -acE '^--- PASS' "$log") tests (build $((built - started))s, guest $((ended - built))s)"
	exit 0
fi
echo "vmtest: FAILED (qemu exit $rc; a timeout is 124); the guest's console:" >&2
cat "$log" >&2
echo "vmtest: FAILED (build $((built - started))s, guest $((ended - built))s)" >&2
exit 1
