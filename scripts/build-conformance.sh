#!/usr/bin/env bash
# Builds the official conformance suites from the versions pinned in
# distribution-spec/*/go.mod (fetched through the Go module proxy; no suite
# source is kept in this repository).
#
# Usage: scripts/build-conformance.sh [v1|v2|all]
#   v1  2023 Ginkgo suite -> distribution-spec/conformance/conformance.test
#   v2  2026 suite        -> distribution-spec/conformance-v2/conformance
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=github.com/opencontainers/distribution-spec/conformance

# suite_version DIR: the pinned version, shown in the suites' reports.
suite_version() {
  awk -v p="$pkg" '$1 == p { print $2 }' "$1/go.mod"
}

build_v1() {
  local dir=distribution-spec/conformance
  echo "build-conformance: 2023 suite $(suite_version "$dir") -> $dir/conformance.test"
  (cd "$dir" && GOWORK=off GOFLAGS=-mod=readonly go test -c -o conformance.test \
    -ldflags "-X $pkg.Version=$(suite_version .)" "$pkg")
}

build_v2() {
  local dir=distribution-spec/conformance-v2
  echo "build-conformance: 2026 suite $(suite_version "$dir") -> $dir/conformance"
  (cd "$dir" && GOWORK=off GOFLAGS=-mod=readonly go build -o conformance \
    -ldflags "-X main.Version=$(suite_version .)" "$pkg")
}

case "${1:-all}" in
  v1) build_v1 ;;
  v2) build_v2 ;;
  all) build_v1 && build_v2 ;;
  *) echo "usage: $0 [v1|v2|all]" >&2; exit 2 ;;
esac
