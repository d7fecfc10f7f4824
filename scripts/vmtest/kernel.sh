#!/usr/bin/env bash
# Prints the path of the second kernel's image (Debian bookworm's
# linux-image-*-cloud-amd64: 6.1, with kprobes, fentry and BTF), fetching it
# once into the cache directory ($1) with apt-get download. The package
# name is what the linux-image-cloud-amd64 meta-package depends on today,
# unless VMTEST_KERNEL_PKG names one. The modules are not kept: the guest
# runs from its initramfs and needs none.
set -euo pipefail
cache=$1
mkdir -p "$cache"
if [ -s "$cache/vmlinuz" ] && { [ -z "${VMTEST_KERNEL_PKG:-}" ] || [ "$(cat "$cache/package")" = "$VMTEST_KERNEL_PKG" ]; }; then
	echo "$cache/vmlinuz"
	exit 0
fi

resolve() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}
download() {
	(cd "$tmp" && apt-get download -q "$1" >&2 2>/dev/null)
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt-get download drops root for the transfer
pkg=${VMTEST_KERNEL_PKG:-$(resolve)}
if [ -z "$pkg" ] || ! download "$pkg"; then
	# Stale or missing package lists: refresh them once (as root).
	if [ "$(id -u)" -ne 0 ]; then
		echo "vmtest: cannot fetch Debian's cloud kernel; run 'apt-get update' as root, or set VMTEST_KERNEL_PKG" >&2
		exit 1
	fi
	apt-get update -qq >&2
	pkg=${VMTEST_KERNEL_PKG:-$(resolve)}
	[ -n "$pkg" ] || { echo "vmtest: linux-image-cloud-amd64 names no kernel package" >&2; exit 1; }
	download "$pkg" || { echo "vmtest: apt-get download $pkg failed" >&2; exit 1; }
fi
deb=$(ls "$tmp"/*.deb)
dpkg-deb -x "$deb" "$tmp/x"
cp "$tmp"/x/boot/vmlinuz-* "$cache/vmlinuz.new"
cp "$tmp"/x/boot/config-* "$cache/config"
mv "$cache/vmlinuz.new" "$cache/vmlinuz"
echo "$pkg" >"$cache/package"
echo "vmtest: fetched $pkg ($(basename "$deb")) into $cache" >&2
echo "$cache/vmlinuz"
