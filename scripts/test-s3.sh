#!/usr/bin/env bash
# The S3 tests (make test-s3): installs versitygw (scripts/install-tools.sh,
# a no-op when installed), starts it on a free loopback port with a fresh
# directory and bucket (scripts/lib/versitygw.sh), runs each step below
# against it, and stops it and removes its data whatever happens.
#
# Steps (all by default, in this order; name some to run only those):
#   storage    the storage contract (storagetest), the S3 driver's own
#              tests and the backend selection (internal/storage/backend)
#              against the bucket, a fresh key prefix per test
#   nospace    a second versitygw on a 24 MiB tmpfs (mounted here: root
#              only), filled up: writes fail with storage.ErrNoSpace and
#              leave nothing behind
# The registry on the bucket (octoserve started by scripts/lib/registry.sh
# with a storage.s3 file, REGISTRY_STORAGE_CONFIG; a key prefix per step):
#   conformance     the 2023 suite, every workflow on (scripts/test-conformance.sh)
#   conformance-v2  the 2026 suite, every option on (scripts/test-conformance-v2.sh)
#   e2e        the real-client scenarios (scripts/test-e2e.sh) but those
#              that start an octoserve of their own for auth (on a local
#              directory, so they test nothing of S3): E2E_S3_SKIP
#   crash      the kill -9 test (internal/crashtest) on the bucket,
#              CRASH_S3_ROUNDS rounds (default 10)
#   gc         collections back to back beside an HTTP server taking
#              pushes, then verify (internal/gc TestGCBesideLiveServer)
# Steps run only when named:
#   bench      the S3 driver's benchmarks (writer, reader, small objects),
#              BENCHTIME (default 20x) each
#
# To add a step: write step_NAME (it runs with versitygw up and the
# VERSITYGW_* variables of scripts/lib/versitygw.sh set; give octoserve a
# storage.s3 section with a key prefix of the step's own) and add NAME to
# ALL_STEPS.
#
# A step that is skipped counts as failed: every test here must run, so
# the Go tests get OCTOSERVE_TEST_S3_REQUIRED=1 (a missing endpoint fails
# them) and a "--- SKIP" in their output fails the step.
#
# Usage: scripts/test-s3.sh [STEP...]
# Logs of failed steps: test-results/s3/<step>.log (and versitygw.log).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
GO="${GO:-go}"
RESULTS="$ROOT/test-results/s3"
ALL_STEPS=(storage nospace conformance conformance-v2 e2e crash gc)
NAMED_STEPS=(bench)

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("${ALL_STEPS[@]}")
for s in "${steps[@]}"; do
  if ! printf '%s\n' "${ALL_STEPS[@]}" "${NAMED_STEPS[@]}" | grep -qx -- "$s"; then
    echo "test-s3: unknown step $s (steps: ${ALL_STEPS[*]} ${NAMED_STEPS[*]})" >&2
    exit 2
  fi
done

scripts/install-tools.sh versitygw
# shellcheck source-path=SCRIPTDIR/..
. scripts/lib/versitygw.sh

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
WORK="" # the steps' storage files

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local status=$?
  set +e
  trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
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
WORK=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-test-s3.XXXXXX")

versitygw_start
echo "test-s3: versitygw at $VERSITYGW_ENDPOINT, bucket $VERSITYGW_BUCKET, data in $VERSITYGW_ROOT"

# What the Go tests read (internal/storage/s3/s3_test.go).
export OCTOSERVE_TEST_S3_ENDPOINT="$VERSITYGW_ENDPOINT" OCTOSERVE_TEST_S3_REGION="$VERSITYGW_REGION" \
  OCTOSERVE_TEST_S3_BUCKET="$VERSITYGW_BUCKET" OCTOSERVE_TEST_S3_ACCESS_KEY="$VERSITYGW_ACCESS_KEY" \
  OCTOSERVE_TEST_S3_SECRET_KEY="$VERSITYGW_SECRET_KEY" OCTOSERVE_TEST_S3_REQUIRED=1

# go_test LOG ARGS...: go test -v ARGS, its output in LOG; fails when go
# test fails, when any test skipped, or when no test ran.
go_test() {
  local log=$1 status=0
  shift
  "$GO" test -v -count=1 "$@" 2>&1 | tee "$log" || status=$?
  if [ "$status" -eq 0 ] && grep -q -- '--- SKIP' "$log"; then
    echo "test-s3: tests were skipped (see above); every S3 test must run" >&2
    status=1
  fi
  if [ "$status" -eq 0 ] && ! grep -q -- '--- PASS' "$log"; then
    echo "test-s3: no test ran" >&2
    status=1
  fi
  return "$status"
}

step_storage() {
  go_test "$RESULTS/storage.log" -race -timeout 20m -skip '^TestNoSpace$' \
    ./internal/storage/s3/... ./internal/storage/backend/
}

# step_nospace runs in a subshell of its own: the library's variables
# there describe the second server, whose trap stops it and unmounts.
step_nospace() (
  local capacity=$((24 << 20)) small
  . scripts/lib/versitygw.sh # a second server: the library's state afresh
  small=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-s3-small.XXXXXX")
  # shellcheck disable=SC2317 # called by the EXIT trap
  unmount_small() {
    versitygw_stop
    if mountpoint -q "$small"; then umount "$small"; fi
    rmdir "$small"
  }
  trap unmount_small EXIT
  if ! mount -t tmpfs -o "size=$capacity" tmpfs "$small"; then
    echo "test-s3: nospace needs to mount a tmpfs (as root); it cannot here" >&2
    return 1
  fi
  VERSITYGW_DATA_DIR=$small versitygw_start || return 1
  OCTOSERVE_TEST_S3_ENDPOINT="$VERSITYGW_ENDPOINT" OCTOSERVE_TEST_S3_BUCKET="$VERSITYGW_BUCKET" \
    OCTOSERVE_TEST_S3_ACCESS_KEY="$VERSITYGW_ACCESS_KEY" OCTOSERVE_TEST_S3_SECRET_KEY="$VERSITYGW_SECRET_KEY" \
    OCTOSERVE_TEST_S3_CAPACITY=$capacity \
    go_test "$RESULTS/nospace.log" -race -timeout 10m -run '^TestNoSpace$' ./internal/storage/s3/
)

# s3_config STEP: writes the storage file of a step (the bucket, under a
# key prefix of its own) and prints its path.
s3_config() {
  local file
  file=$(mktemp "$WORK/$1.XXXXXX.yaml")
  versitygw_storage_config "$file" "$1-$(_versitygw_random 4)"
  echo "$file"
}

# no_skips LOG: fails if go test -v output in LOG shows a skipped test.
no_skips() {
  if grep -q -- '--- SKIP' "$1"; then
    echo "test-s3: tests were skipped (see above); every S3 test must run" >&2
    return 1
  fi
}

step_conformance() {
  REGISTRY_STORAGE_CONFIG=$(s3_config conformance) CONFORMANCE_RESULTS="$RESULTS/conformance" \
    scripts/test-conformance.sh 2>&1 | tee "$RESULTS/conformance.log"
}

step_conformance-v2() {
  REGISTRY_STORAGE_CONFIG=$(s3_config conformance-v2) CONFORMANCE_RESULTS="$RESULTS/conformance-v2" \
    scripts/test-conformance-v2.sh 2>&1 | tee "$RESULTS/conformance-v2.log"
}

# The scenarios with an auth octoserve of their own, on a local directory.
E2E_S3_SKIP=${E2E_S3_SKIP:-Auth|AnonymousPullThenLogin}

step_e2e() {
  REGISTRY_STORAGE_CONFIG=$(s3_config e2e) E2E_RESULTS="$RESULTS/e2e" \
    scripts/test-e2e.sh -skip "$E2E_S3_SKIP" 2>&1 | tee "$RESULTS/e2e.log" && no_skips "$RESULTS/e2e.log"
}

step_crash() {
  CRASH_STORAGE_CONFIG=$(s3_config crash) OCTOSERVE_BIN="$ROOT/bin/octoserve" CRASH_ROUNDS="${CRASH_S3_ROUNDS:-10}" CRASH_KILL_SCALE=4 \
    go_test "$RESULTS/crash.log" -timeout 15m -run '^TestKill9$' ./internal/crashtest/
}

step_gc() {
  go_test "$RESULTS/gc.log" -timeout 10m -run '^TestGCBesideLiveServer$/^s3$' ./internal/gc/
}

step_bench() {
  "$GO" test -count=1 -run '^$' -bench . -benchtime "${BENCHTIME:-20x}" ./internal/storage/s3/ 2>&1 |
    tee "$RESULTS/bench.txt"
}

failed=()
for s in "${steps[@]}"; do
  echo "test-s3: === $s"
  if "step_$s"; then
    rm -rf "$RESULTS/$s.log" "${RESULTS:?}/$s"
    echo "test-s3: --- $s passed"
  else
    echo "test-s3: --- $s FAILED (log: test-results/s3/$s.log)" >&2
    failed+=("$s")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-s3: failed: ${failed[*]}" >&2
  exit 1
fi
echo "test-s3: all passed: ${steps[*]}"
