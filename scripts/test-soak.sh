#!/usr/bin/env bash
# Soak test under hostile load (issue 10): starts bin/octoserve with
# htpasswd auth and per-repository rules (scripts/lib/registry.sh: free
# loopback port, fresh root), runs soak/ (`go test -tags soak`) against it
# for SOAK_DURATION — legitimate clients (crane, a Go client) pushing and
# pulling while hostile ones send slow bodies, login floods, huge referrer
# sets and upload-session floods — then stops the server gracefully and
# runs `octoserve verify` on its root.
#
# Passes when the legitimate clients saw no error, the server's peak RSS
# and open descriptors stayed under the bounds the test states, every
# hostile connection was answered or closed, the server shut down cleanly
# and verify finds the root consistent.
#
# Usage: SOAK_DURATION=10m scripts/test-soak.sh   (default 15s)
# The server log and the test output are kept in test-results/soak/ when
# the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
GO="${GO:-go}"
RESULTS="$ROOT/test-results/soak"
BIN="${OCTOSERVE_BIN:-bin/octoserve}"
export SOAK_DURATION="${SOAK_DURATION:-15s}"

if [ ! -x "$BIN" ]; then
  echo "test-soak: $BIN not built: run make build" >&2
  exit 1
fi
if [ ! -x "$ROOT/.tools/bin/crane" ]; then
  echo "test-soak: crane not installed: run make tools" >&2
  exit 1
fi

# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/registry.sh

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
SOAK_TMP="$(mktemp -d "${TMPDIR:-/tmp}/octoserve-soak.XXXXXX")"
status=0

# shellcheck disable=SC2317 # called by the EXIT trap
on_exit() {
  if [ "$status" -ne 0 ] && [ -n "${REGISTRY_LOG:-}" ] && [ -f "$REGISTRY_LOG" ]; then
    cp "$REGISTRY_LOG" "$RESULTS/octoserve.log" || true
  fi
  rm -rf "$SOAK_TMP"
}
registry_trap on_exit

password() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }
ALICE_PASSWORD=$(password)
MALLORY_PASSWORD=$(password)
printf '%s\n' "$ALICE_PASSWORD" | "$BIN" htpasswd alice >"$SOAK_TMP/htpasswd"
printf '%s\n' "$MALLORY_PASSWORD" | "$BIN" htpasswd mallory >>"$SOAK_TMP/htpasswd"

LOGIN_BURST=10 LOGIN_PER_MINUTE=10

# Short body and header timeouts so that the slow-body attack is cut off
# many times in a short run; a low per-client bound so that it is reached.
cat >"$SOAK_TMP/octoserve.yaml" <<YAML
http:
  readHeaderTimeout: 5s
  bodyTimeout: 2s
  idleTimeout: 30s
  maxConnsPerClient: 32
log:
  level: info              # the harness reads the listening line
auth:
  htpasswd: $SOAK_TMP/htpasswd
  rules:
    - repository: "legit/**"
      users: [alice]
      actions: [pull, push, delete]
    - repository: "hostile/**"
      users: [mallory]
      actions: [pull, push]
    - repository: "public/**"
      users: [alice, mallory]
      actions: [pull, push]
      anonymousPull: true
  failedLogins: {burst: $LOGIN_BURST, perMinute: $LOGIN_PER_MINUTE}
YAML

registry_start --config "$SOAK_TMP/octoserve.yaml"
echo "test-soak: octoserve at $REGISTRY_URL (pid $REGISTRY_PID) for $SOAK_DURATION"

SOAK_ADDR="$REGISTRY_ADDR" SOAK_PID="$REGISTRY_PID" SOAK_MAX_CONNS_PER_CLIENT=32 SOAK_BODY_TIMEOUT=2s \
  SOAK_FAILED_LOGIN_BURST=$LOGIN_BURST SOAK_FAILED_LOGIN_PER_MINUTE=$LOGIN_PER_MINUTE \
  SOAK_ALICE_PASSWORD="$ALICE_PASSWORD" SOAK_MALLORY_PASSWORD="$MALLORY_PASSWORD" \
  SOAK_CRANE="$ROOT/.tools/bin/crane" TMPDIR="$SOAK_TMP" \
  "$GO" test -tags soak -count=1 -timeout 60m -v ./soak 2>&1 | tee "$RESULTS/go-test.log" || status=$?

# Stop it (by PID) and let in-flight requests finish: a clean exit is part
# of the verdict; then check the root at rest.
kill -TERM "$REGISTRY_PID" 2>/dev/null || true
server_status=0
wait "$REGISTRY_PID" || server_status=$?
REGISTRY_PID=""
if [ "$server_status" -ne 0 ]; then
  echo "test-soak: octoserve exited with status $server_status after SIGTERM" >&2
  status=1
fi
if ! "$BIN" verify --root "$REGISTRY_ROOT" | tee "$RESULTS/verify.log"; then
  echo "test-soak: octoserve verify found the root inconsistent" >&2
  status=1
fi

if [ "$status" -eq 0 ]; then
  rm -f "$RESULTS/go-test.log"
  echo "test-soak: PASS"
else
  echo "test-soak: FAIL (logs in $RESULTS)" >&2
fi
exit "$status"
