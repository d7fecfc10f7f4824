#!/usr/bin/env bash
# Copies the corpus `go test -fuzz` built (kept in the Go build cache) into
# each package's testdata/fuzz, so that `go test` replays it as seeds and it
# is kept in git. Arguments: package:FuzzTarget, as the Makefile lists them.
set -euo pipefail
cache="$(go env GOCACHE)/fuzz/$(go list -m)"
for target in "$@"; do
	pkg="${target%%:*}" fn="${target##*:}"
	src="$cache/$pkg/$fn"
	dst="$pkg/testdata/fuzz/$fn"
	[ -d "$src" ] || continue
	mkdir -p "$dst"
	cp -n "$src"/* "$dst"/ 2>/dev/null || true
	echo "$dst: $(ls "$dst" | wc -l) inputs"
done
