#!/usr/bin/env bash
# Installs the pinned OCI clients used by the end-to-end tests (make test-e2e),
# or with --bench the reference registry make bench compares octoserve with,
# into .tools/bin (git-ignored) with `go install`, from the Go module proxy.
# Nothing here downloads a release binary.
#
# A tool is reinstalled only when its binary is missing or its stamp file
# (.tools/stamps/<tool>) does not name the pinned version.
#
# skopeo is not a Go-installable client: it comes from Debian's packages
# (`apt-get install skopeo`; .ci/run does this when it is missing). This
# script only reports whether it is present.
#
# Usage: scripts/install-tools.sh [--check] [--bench]
#   --check   install nothing; exit 1 (listing what is missing) unless every
#             tool is installed at its pinned version and skopeo is on PATH.
#   --bench   the tools of `make bench` instead: the reference registry
#             (distribution/distribution's `registry`), which the benchmark
#             runs beside octoserve. It builds in about two minutes, once.
set -euo pipefail
cd "$(dirname "$0")/.."

# name | Go package | pinned version
TOOLS=(
  "crane|github.com/google/go-containerregistry/cmd/crane|v0.22.1"
  "oras|oras.land/oras/cmd/oras|v1.3.6"
  "regctl|github.com/regclient/regclient/cmd/regctl|v0.11.7"
)
BENCH_TOOLS=(
  "registry|github.com/distribution/distribution/v3/cmd/registry|v3.1.2"
)

TOOLS_DIR="$PWD/.tools"
BIN_DIR="$TOOLS_DIR/bin"
STAMP_DIR="$TOOLS_DIR/stamps"
GO="${GO:-go}"

check_only=0 bench=0
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    --bench) bench=1 ;;
    *) echo "usage: $0 [--check] [--bench]" >&2; exit 2 ;;
  esac
done
if [ "$bench" = 1 ]; then
  TOOLS=("${BENCH_TOOLS[@]}")
fi

mkdir -p "$BIN_DIR" "$STAMP_DIR"

missing=0
for entry in "${TOOLS[@]}"; do
  IFS='|' read -r name pkg version <<<"$entry"
  stamp="$STAMP_DIR/$name"
  if [ -x "$BIN_DIR/$name" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pkg@$version" ]; then
    echo "install-tools: $name $version already installed"
    continue
  fi
  if [ "$check_only" = 1 ]; then
    echo "install-tools: $name $version not installed (run: make tools)" >&2
    missing=1
    continue
  fi
  echo "install-tools: go install $pkg@$version"
  rm -f "$stamp"
  # CGO off: static binaries, no C toolchain needed.
  GOBIN="$BIN_DIR" CGO_ENABLED=0 "$GO" install "$pkg@$version"
  echo "$pkg@$version" >"$stamp"
done

if [ "$bench" = 1 ]; then
  :
elif command -v skopeo >/dev/null 2>&1; then
  echo "install-tools: skopeo found: $(skopeo --version)"
else
  echo "install-tools: skopeo not found: apt-get install skopeo" >&2
  missing=1
fi

exit "$missing"
