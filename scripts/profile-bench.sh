#!/usr/bin/env bash
# Where a request's CPU goes: the bench's Go server under wrk with the
# receiver watching it (MODE=selected, the default; MODE=unselected watches
# another pid; MODE=propagation adds context_propagation: headers; MODE=none
# runs no collector), the
# whole machine sampled by perf during one wrk run. Prints the nanoseconds
# per request of every program (comm) and of the symbols that take the
# most, the eBPF programs (bpf_prog_*) and the collector's Go functions
# among them. One run on a shared machine: ratios, not absolute truths.
set -euo pipefail

dist=${DIST:-_build/otelcol-ebpf}
mode=${MODE:-selected}
seconds=${SECONDS_OF_LOAD:-10}
top=${TOP:-45}
port=18095
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

command -v perf >/dev/null || { echo "profile: perf not found: run 'make setup'" >&2; exit 1; }
go build -o "$tmp/bench" ./cmd/bench
"$tmp/bench" serve "127.0.0.1:$port" >"$tmp/serve.out" &
pids+=($!)
server=$!
for _ in $(seq 50); do grep -q READY "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done

watched=$server
option=""
case "$mode" in
selected) ;;
unselected) watched=1 ;;
propagation) option="context_propagation: headers" ;;
none) ;;
*) echo "profile: MODE is selected, unselected, propagation or none" >&2; exit 1 ;;
esac
cat >"$tmp/config.yaml" <<EOF
extensions:
  pprof:
    endpoint: 127.0.0.1:17795
receivers:
  ebpf:
    $option
    discovery:
      pids: [$watched]
exporters:
  nop:
service:
  extensions: [pprof]
  telemetry:
    metrics:
      level: none
  pipelines:
    traces: {receivers: [ebpf], exporters: [nop]}
    metrics: {receivers: [ebpf], exporters: [nop]}
EOF
if [ "$mode" != none ]; then
	"$dist" --config "$tmp/config.yaml" >"$tmp/collector.log" 2>&1 &
	pids+=($!)
	sleep 4
fi
wrk -t2 -c8 -d2s "http://127.0.0.1:$port/" >/dev/null # warm up

# The collector's own view (its binary has no symbol table for perf).
pprof=""
if [ "$mode" != none ]; then
	curl -s -o "$tmp/cpu.pprof" "http://127.0.0.1:17795/debug/pprof/profile?seconds=$((seconds - 1))" &
	pprof=$!
	pids+=("$pprof")
fi
perf record -q -a -g -F 1999 -o "$tmp/perf.data" -- \
	wrk -t2 -c8 -d"${seconds}s" "http://127.0.0.1:$port/" >"$tmp/wrk.out" 2>/dev/null
if [ -n "$pprof" ]; then wait "$pprof" || true; fi
requests=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
cpus=$(nproc)
# All CPUs were sampled for the run, idle included: a sample is worth
# cpus * seconds / samples of CPU time.
perf report -i "$tmp/perf.data" --no-children --stdio -g none --sort comm -F overhead,comm >"$tmp/comm.raw" 2>/dev/null
perf report -i "$tmp/perf.data" --no-children --stdio -g none --sort comm,sym -F overhead,comm,sym >"$tmp/sym.raw" 2>/dev/null
per_req='{gsub("%","",$1); pct=$1; $1=""; printf "%8.0f ns/req %s\n", pct/100*t*1e9/n, $0}'
awk -v n="$requests" -v t="$((cpus * seconds))" "/%/ $per_req" "$tmp/comm.raw" | sort -rn >"$tmp/comm.txt"
awk -v n="$requests" -v t="$((cpus * seconds))" "/%/ && !/swapper/ $per_req" "$tmp/sym.raw" | sort -rn | head -n "$top" >"$tmp/sym.txt" || true
echo "mode $mode: $requests requests in ${seconds}s on $cpus CPUs ($((requests / seconds)) req/s)"
echo "-- by program --"
cat "$tmp/comm.txt"
echo "-- by program and symbol (top $top, idle left out) --"
cat "$tmp/sym.txt"
if [ -s "$tmp/cpu.pprof" ]; then
	# pprof's seconds over the requests of its window (a second shorter).
	echo "-- the collector, by Go function (pprof over $((seconds - 1))s; flat and cumulative) --"
	go tool pprof -top -nodecount="$top" "$tmp/cpu.pprof" 2>/dev/null |
		awk -v n="$requests" -v s="$seconds" -v w="$((seconds - 1))" '
			function ns(v) { if (v ~ /ms$/) return v * 1e6; if (v ~ /us$/) return v * 1e3; if (v ~ /s$/) return v * 1e9; return 0 }
			$1 ~ /^[0-9.]+(ms|us|s)$/ && $5 ~ /%$/ { f=$1; c=$4; $1=$2=$3=$4=$5=""; printf "%8.0f ns/req flat %8.0f cum %s\n", ns(f)/(n*w/s), ns(c)/(n*w/s), $0 }'
fi
