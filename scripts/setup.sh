#!/usr/bin/env bash
# Installs what building, running and testing otelcol-ebpf need on a fresh
# Debian machine, and nothing when it is all there already.
set -euo pipefail

packages=(clang llvm libbpf-dev bpftool haproxy nginx libnginx-mod-stream wrk curl iproute2 python3
	postgresql mariadb-server mariadb-client redis-server redis-tools
	python3-psycopg2 python3-pymysql python3-redis python3-grpcio python3-protobuf nodejs
	openjdk-17-jdk-headless qemu-system-x86 busybox-static linux-perf)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The test peers run by hand, never as services left behind by the packages.
for svc in haproxy nginx postgresql mariadb redis-server; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl stop "$svc" || true
	elif [ -f "/run/$svc.pid" ] && kill -0 "$(cat "/run/$svc.pid")" 2>/dev/null; then
		kill "$(cat "/run/$svc.pid")" || true
	fi
done
