#!/usr/bin/env bash
# End-to-end tests with real OCI clients (issue 4): installs the pinned
# clients (scripts/install-tools.sh), starts bin/octoserve on a free loopback
# port with a fresh data directory (scripts/lib/registry.sh), runs the
# scenarios in e2e/ (`go test -tags e2e`) against it, and stops the server
# and removes its data whatever happens.
#
# Client output of each failed scenario is kept in
# test-results/e2e/<TestName>.log, with the server's log in
# test-results/e2e/octoserve.log.
#
# Usage: scripts/test-e2e.sh [go test flags, e.g. -run 'Oras|Skopeo']
# OCTOSERVE_BIN=path tests another octoserve binary (default bin/octoserve).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
GO="${GO:-go}"
RESULTS="$ROOT/test-results/e2e"

# skopeo is a Debian package, not something this script may download.
if ! command -v skopeo >/dev/null 2>&1; then
  echo "test-e2e: skopeo not found: apt-get install skopeo" >&2
  exit 1
fi

# crane, oras, regctl at their pinned versions (a no-op when installed).
scripts/install-tools.sh
export PATH="$ROOT/.tools/bin:$PATH"

if [ ! -x "${OCTOSERVE_BIN:-bin/octoserve}" ]; then
  echo "test-e2e: ${OCTOSERVE_BIN:-bin/octoserve} not built: run make build" >&2
  exit 1
fi

# The server's lifecycle (free port, fresh root, stop) is the conformance
# harness's; this script only calls it.
if [ ! -f scripts/lib/registry.sh ]; then
  echo "test-e2e: scripts/lib/registry.sh (registry lifecycle library) is missing" >&2
  exit 1
fi
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/registry.sh

rm -rf "$RESULTS"
mkdir -p "$RESULTS"

keep_server_log() {
  if [ -n "${REGISTRY_LOG:-}" ] && [ -f "$REGISTRY_LOG" ]; then
    cp "$REGISTRY_LOG" "$RESULTS/octoserve.log" || true
  fi
}

# The tests' temporary directories (client homes, images) live under one
# directory removed on exit, even if go test is interrupted before its own
# cleanup runs.
E2E_TMP="$(mktemp -d "${TMPDIR:-/tmp}/octoserve-e2e.XXXXXX")"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  set +e # clean up everything even if one step fails
  registry_stop
  rm -rf "$E2E_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
registry_start

echo "test-e2e: octoserve at $REGISTRY_URL; clients: crane $(crane version), oras $(oras version | sed -n 's/^Version: *//p'), regctl $(regctl version --format '{{.VCSTag}}'), $(skopeo --version)"
echo "test-e2e: the client output of a failed scenario goes to test-results/e2e/<TestName>.log"

status=0
OCTOSERVE_ADDR="$REGISTRY_ADDR" OCTOSERVE_ROOT="$REGISTRY_ROOT" OCTOSERVE_BIN="$(realpath "${OCTOSERVE_BIN:-bin/octoserve}")" \
  OCTOSERVE_E2E_RESULTS="$RESULTS" TMPDIR="$E2E_TMP" \
  "$GO" test -tags e2e -count=1 -timeout 20m -v "$@" ./e2e 2>&1 | tee "$RESULTS/go-test.log" || status=$?
if [ "$status" -ne 0 ]; then
  keep_server_log
else
  rm -f "$RESULTS/go-test.log"
fi
exit "$status"
