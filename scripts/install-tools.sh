#!/usr/bin/env bash
# Installs the pinned OCI clients used by the end-to-end tests (make test-e2e),
# the reference registry they use as an upstream (and make bench measures
# against), and the S3 server of the S3 tests (versitygw, make test-s3) into
# .tools/bin (git-ignored) with `go install`, from the Go module proxy.
# Nothing here downloads a release binary. versitygw takes about ten minutes
# to build cold; like every tool it is built only when missing or at another
# version.
#
# A tool is reinstalled only when its binary is missing or its stamp file
# (.tools/stamps/<tool>) does not name the pinned version.
#
# skopeo, podman, buildah and containerd (containerd and ctr) are not
# Go-installable clients: they come from Debian's packages (`apt-get install
# skopeo podman buildah containerd`; .ci/run does this when one is missing).
# This script only reports whether they are present.
#
# Usage: scripts/install-tools.sh [--check] [TOOL...]
#   --check   install nothing; exit 1 (listing what is missing) unless every
#             tool is installed at its pinned version and the Debian clients
#             are on PATH.
#   TOOL...   only these tools (e.g. versitygw); the Debian clients are then
#             not checked.
set -euo pipefail
cd "$(dirname "$0")/.."

# name | Go package | pinned version
TOOLS=(
  "crane|github.com/google/go-containerregistry/cmd/crane|v0.22.1"
  "oras|oras.land/oras/cmd/oras|v1.3.6"
  "regctl|github.com/regclient/regclient/cmd/regctl|v0.11.7"
  "helm|helm.sh/helm/v3/cmd/helm|v3.22.0"
  "cosign|github.com/sigstore/cosign/v2/cmd/cosign|v2.6.5"
  "versitygw|github.com/versity/versitygw/cmd/versitygw|v1.8.0"
  # The reference registry: the upstream of the pull-through cache
  # scenarios (e2e/mirror_test.go); make bench runs the same pinned build.
  "registry|github.com/distribution/distribution/v3/cmd/registry|v3.1.2"
)

TOOLS_DIR="$PWD/.tools"
BIN_DIR="$TOOLS_DIR/bin"
STAMP_DIR="$TOOLS_DIR/stamps"
GO="${GO:-go}"

check_only=0
if [ "${1:-}" = --check ]; then
  check_only=1
  shift
fi
wanted=("$@")
for name in "${wanted[@]}"; do
  case "$name" in
    -*) echo "usage: $0 [--check] [TOOL...]" >&2; exit 2 ;;
  esac
  if ! printf '%s\n' "${TOOLS[@]}" | grep -q "^$name|"; then
    echo "install-tools: unknown tool $name" >&2
    exit 2
  fi
done

mkdir -p "$BIN_DIR" "$STAMP_DIR"

missing=0
for entry in "${TOOLS[@]}"; do
  IFS='|' read -r name pkg version <<<"$entry"
  if [ ${#wanted[@]} -gt 0 ] && ! printf '%s\n' "${wanted[@]}" | grep -qx "$name"; then
    continue
  fi
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

if [ ${#wanted[@]} -eq 0 ]; then
  # command | Debian package
  DEBIAN_CLIENTS=(
    "skopeo|skopeo"
    "podman|podman"
    "buildah|buildah"
    "containerd|containerd"
    "ctr|containerd"
  )
  for entry in "${DEBIAN_CLIENTS[@]}"; do
    IFS='|' read -r cmd pkg <<<"$entry"
    if command -v "$cmd" >/dev/null 2>&1; then
      echo "install-tools: $cmd found: $("$cmd" --version | head -n 1)"
    else
      echo "install-tools: $cmd not found: apt-get install $pkg" >&2
      missing=1
    fi
  done
fi

exit "$missing"
