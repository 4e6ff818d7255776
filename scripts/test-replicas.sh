#!/usr/bin/env bash
# Several octoserve replicas on one bucket behind a load balancer (make
# test-replicas, issue 12). Installs versitygw (scripts/install-tools.sh, a
# no-op when installed) and starts it on loopback with a fresh bucket
# (scripts/lib/versitygw.sh); then, for each step below, a fresh cluster:
# REPLICAS (default 3) octoserve processes on that bucket under one key
# prefix of the step's own and an HAProxy balancing round-robin over them
# with no stickiness (scripts/lib/replicas.sh, which starts them through
# scripts/lib/registry.sh and scripts/lib/haproxy.sh); it runs the step
# against the cluster and stops it. Everything is stopped by PID and
# removed whatever happens.
#
# Steps (all by default, in this order; name some to run only those):
#   conformance     the 2023 suite, every workflow on, through the balancer
#   conformance-v2  the 2026 suite, every option on (the replicas with
#                   validation.sparse), through the balancer
#   e2e        the real-client scenarios through the balancer
#              (scripts/test-e2e.sh) but those that start an octoserve of
#              their own for auth (E2E_REPLICAS_SKIP)
#   scenarios  replicas/ (go test -tags replicas) but the kill: a chunked
#              upload whose requests go to every replica in turn; one blob
#              and one tag pushed at once through every replica; a tag
#              moved through one replica read at once from the others;
#              `octoserve gc` beside pushes through the replicas, then
#              verify; two collectors at once, one lease
#   kill       replicas/ TestReplicaKilledMidPush: one replica killed
#              (SIGKILL) in the middle of a request while clients push
#              through the balancer, nothing acknowledged lost
#
# To add a step: write step_NAME (it runs with the cluster up: the
# REPLICAS_* variables below and HAPROXY_URL set) and add NAME to ALL_STEPS
# (and its replica configuration to step_config).
#
# The Go scenarios read: REPLICAS_LB (the balancer's host:port),
# REPLICAS_ADDRS and REPLICAS_PIDS (each replica's, space-separated, in the
# balancer's order r1 r2 ...), REPLICAS_BIN (the binary),
# REPLICAS_STORE_CONFIG (the storage file, for `octoserve gc/verify
# --config`), REPLICAS_HAPROXY_STATS and REPLICAS_HAPROXY_BACKEND (the
# balancer's statistics socket and backend name).
#
# Usage: scripts/test-replicas.sh [STEP...]
# Logs of a failed step (each replica's, the balancer's, the step's
# output): test-results/replicas/<step>/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
GO="${GO:-go}"
RESULTS="$ROOT/test-results/replicas"
REPLICAS=${REPLICAS:-3}
BIN=$(realpath -m "${OCTOSERVE_BIN:-bin/octoserve}")
ALL_STEPS=(conformance conformance-v2 e2e scenarios kill)

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("${ALL_STEPS[@]}")
for s in "${steps[@]}"; do
  if ! printf '%s\n' "${ALL_STEPS[@]}" | grep -qx -- "$s"; then
    echo "test-replicas: unknown step $s (steps: ${ALL_STEPS[*]})" >&2
    exit 2
  fi
done
if [ ! -x "$BIN" ]; then
  echo "test-replicas: $BIN not built: run make build" >&2
  exit 1
fi

scripts/install-tools.sh versitygw
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/versitygw.sh
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/replicas.sh

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
WORK="" # storage and replica configuration files

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local status=$?
  set +e
  trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
  replicas_stop
  if [ "$status" -ne 0 ] && [ -n "${VERSITYGW_LOG:-}" ] && [ -f "$VERSITYGW_LOG" ]; then
    cp "$VERSITYGW_LOG" "$RESULTS/versitygw.log"
  fi
  versitygw_stop
  [ -z "$WORK" ] || rm -rf "$WORK"
  return "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-test-replicas.XXXXXX")

versitygw_start
echo "test-replicas: versitygw at $VERSITYGW_ENDPOINT, bucket $VERSITYGW_BUCKET"

# step_config STEP FILE: the replicas' configuration for a step (layered
# over the storage file). Behind a proxy every client has the proxy's
# address: no per-client connection limit (docs/configuration.md).
step_config() {
  {
    printf 'http:\n  maxConnsPerClient: 0\n'
    case $1 in
      conformance-v2) printf 'validation:\n  sparse: true\n' ;;
    esac
  } >"$2"
}

# cluster_start STEP: REPLICAS replicas on the bucket under a key prefix
# of this run of STEP, and the balancer over them.
cluster_start() {
  local step=$1
  REPLICAS_STORE_CONFIG="$WORK/$step.storage.yaml"
  versitygw_storage_config "$REPLICAS_STORE_CONFIG" "replicas-$step-$(_versitygw_random 4)"
  step_config "$step" "$WORK/$step.yaml"
  replicas_start "$REPLICAS" "$REPLICAS_STORE_CONFIG" --config "$WORK/$step.yaml" || return 1
  export REPLICAS_LB=$HAPROXY_ADDR REPLICAS_ADDRS="${REPLICA_ADDRS[*]}" REPLICAS_PIDS="${REPLICA_PIDS[*]}"
  export REPLICAS_BIN=$BIN REPLICAS_STORE_CONFIG
  export REPLICAS_HAPROXY_STATS=$HAPROXY_STATS REPLICAS_HAPROXY_BACKEND=$HAPROXY_BACKEND
  echo "test-replicas: $REPLICAS replicas (${REPLICA_ADDRS[*]}, pids ${REPLICA_PIDS[*]}) behind HAProxy at $HAPROXY_URL"
}

# keep_logs STEP: the replicas' and the balancer's logs, for a failed step.
keep_logs() {
  local dir="$RESULTS/$1" i
  mkdir -p "$dir"
  for i in "${!REPLICA_LOGS[@]}"; do
    cp "${REPLICA_LOGS[$i]}" "$dir/octoserve-r$((i + 1)).log" 2>/dev/null || true
  done
  cp "$HAPROXY_LOG" "$dir/haproxy.log" 2>/dev/null || true
}

step_conformance() {
  OCI_ROOT_URL=$HAPROXY_URL CONFORMANCE_RESULTS="$RESULTS/conformance" \
    scripts/test-conformance.sh 2>&1 | tee "$RESULTS/conformance/step.log"
}

step_conformance-v2() {
  OCI_REGISTRY=$HAPROXY_ADDR OCI_TLS=disabled CONFORMANCE_RESULTS="$RESULTS/conformance-v2" \
    scripts/test-conformance-v2.sh 2>&1 | tee "$RESULTS/conformance-v2/step.log"
}

# The scenarios with an auth octoserve of their own, on a local directory.
E2E_REPLICAS_SKIP=${E2E_REPLICAS_SKIP:-Auth|AnonymousPullThenLogin}

step_e2e() {
  OCTOSERVE_ADDR=$HAPROXY_ADDR OCTOSERVE_STORE_ARG=--config=$REPLICAS_STORE_CONFIG \
    OCTOSERVE_BIN=$BIN E2E_RESULTS="$RESULTS/e2e/clients" \
    scripts/test-e2e.sh -skip "$E2E_REPLICAS_SKIP" 2>&1 | tee "$RESULTS/e2e/step.log" &&
    no_skips "$RESULTS/e2e/step.log"
}

step_scenarios() {
  go_test "$RESULTS/scenarios/step.log" -skip '^TestReplicaKilledMidPush$'
}

step_kill() {
  go_test "$RESULTS/kill/step.log" -run '^TestReplicaKilledMidPush$'
}

# go_test LOG ARGS...: the Go scenarios (replicas/), output in LOG; fails
# when go test fails, when a test skipped or when none ran.
go_test() {
  local log=$1 status=0
  shift
  "$GO" test -tags replicas -count=1 -v -timeout 15m "$@" ./replicas 2>&1 | tee "$log" || status=$?
  if [ "$status" -eq 0 ] && ! grep -q -- '--- PASS' "$log"; then
    echo "test-replicas: no test ran" >&2
    status=1
  fi
  [ "$status" -ne 0 ] || no_skips "$log" || status=1
  return "$status"
}

# no_skips LOG: fails if go test -v output in LOG shows a skipped test.
no_skips() {
  if grep -q -- '--- SKIP' "$1"; then
    echo "test-replicas: tests were skipped (see above); every test here must run" >&2
    return 1
  fi
}

failed=()
for s in "${steps[@]}"; do
  echo "test-replicas: === $s"
  start=$SECONDS
  mkdir -p "$RESULTS/$s"
  ok=1
  cluster_start "$s" || ok=0
  if [ "$ok" = 1 ] && ! "step_$s"; then ok=0; fi
  [ "$ok" = 1 ] || keep_logs "$s"
  replicas_stop
  if [ "$ok" = 1 ]; then
    rm -rf "${RESULTS:?}/$s"
    echo "test-replicas: --- $s passed ($((SECONDS - start))s)"
  else
    echo "test-replicas: --- $s FAILED (logs: test-results/replicas/$s/)" >&2
    failed+=("$s")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-replicas: failed: ${failed[*]}" >&2
  exit 1
fi
echo "test-replicas: all passed: ${steps[*]}"
