#!/usr/bin/env bash
# mdatagen names the Go package of the files it writes beside metadata.yaml
# after the folder metadata.yaml is in. At the repository root that folder is
# wherever the repository was cloned, so run it through a link named like the
# module's package: the output is then the same in every clone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ln -s "$root" "$tmp/ebpfreceiver"
cd "$tmp/ebpfreceiver"
go tool mdatagen metadata.yaml
