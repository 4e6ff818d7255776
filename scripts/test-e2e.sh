#!/usr/bin/env bash
# End-to-end tests with real OCI clients (issue 4): installs the pinned
# clients (scripts/install-tools.sh), starts bin/octoserve on a free loopback
# port with a fresh data directory (scripts/lib/registry.sh), runs the
# scenarios in e2e/ (`go test -tags e2e`) against it, and stops the server
# and removes its data whatever happens.
#
# Some scenarios start processes of their own and stop them by PID when they
# end: a second octoserve ($OCTOSERVE_BIN) with basic auth on, and containerd.
# podman, buildah and containerd run as root, with their storage, state and
# sockets under the tests' temporary directory.
#
# Client output of each failed scenario is kept in
# test-results/e2e/<TestName>.log, with the server's log in
# test-results/e2e/octoserve.log.
#
# Usage: scripts/test-e2e.sh [go test flags, e.g. -run 'Oras|Skopeo|Podman']
# OCTOSERVE_BIN=path tests another octoserve binary (default bin/octoserve).
# REGISTRY_STORAGE_CONFIG=FILE starts it on the store FILE names (e.g. an
# S3 bucket) instead of a fresh directory (scripts/lib/registry.sh).
# OCTOSERVE_ADDR=HOST:PORT tests that registry (e.g. replicas behind a load
# balancer) and starts nothing; then OCTOSERVE_STORE_ARG (--config=FILE or
# --root=DIR) names its store for the scenario that runs `octoserve gc`.
# E2E_RESULTS=DIR keeps the logs there instead of test-results/e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
GO="${GO:-go}"
RESULTS=$(realpath -m "${E2E_RESULTS:-$ROOT/test-results/e2e}")

# skopeo, podman, buildah and containerd are Debian packages, not something
# this script may download.
for cmd in skopeo podman buildah containerd ctr; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "test-e2e: $cmd not found: apt-get install skopeo podman buildah containerd" >&2
    exit 1
  fi
done

# crane, oras, regctl, helm, cosign at their pinned versions (a no-op when
# installed).
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
if [ -n "${OCTOSERVE_ADDR:-}" ]; then
  REGISTRY_ADDR=$OCTOSERVE_ADDR REGISTRY_URL=http://$OCTOSERVE_ADDR REGISTRY_ROOT=""
  REGISTRY_STORE_ARG=${OCTOSERVE_STORE_ARG:-}
  echo "test-e2e: testing the registry at $OCTOSERVE_ADDR (OCTOSERVE_ADDR is set; starting nothing)"
else
  registry_start
fi

# The module version go install built (helm's own version command omits the
# patch level when built without release flags).
go_tool_version() {
  "$GO" version -m "$ROOT/.tools/bin/$1" | awk '$1 == "mod" { print $3; exit }'
}
echo "test-e2e: octoserve at $REGISTRY_URL"
echo "test-e2e: clients: crane $(crane version), oras $(oras version | sed -n 's/^Version: *//p'), regctl $(regctl version --format '{{.VCSTag}}'), helm $(go_tool_version helm), cosign $(go_tool_version cosign)"
echo "test-e2e: Debian clients: skopeo $(skopeo --version | awk '{print $3}'), podman $(podman --version | awk '{print $3}'), buildah $(buildah --version | awk '{print $3}'), containerd $(containerd --version | awk '{print $3}')"
echo "test-e2e: the client output of a failed scenario goes to test-results/e2e/<TestName>.log"

status=0
OCTOSERVE_ADDR="$REGISTRY_ADDR" OCTOSERVE_ROOT="$REGISTRY_ROOT" OCTOSERVE_STORE_ARG="$REGISTRY_STORE_ARG" OCTOSERVE_BIN="$(realpath "${OCTOSERVE_BIN:-bin/octoserve}")" \
  OCTOSERVE_E2E_RESULTS="$RESULTS" TMPDIR="$E2E_TMP" \
  "$GO" test -tags e2e -count=1 -timeout 20m -v "$@" ./e2e 2>&1 | tee "$RESULTS/go-test.log" || status=$?
if [ "$status" -ne 0 ]; then
  keep_server_log
else
  rm -f "$RESULTS/go-test.log"
fi
exit "$status"
