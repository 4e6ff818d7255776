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
ALL_STEPS=(storage nospace)
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

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local status=$?
  set +e
  trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
  if [ "$status" -ne 0 ] && [ -n "${VERSITYGW_LOG:-}" ] && [ -f "$VERSITYGW_LOG" ]; then
    cp "$VERSITYGW_LOG" "$RESULTS/versitygw.log"
  fi
  versitygw_stop
  return "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

step_bench() {
  "$GO" test -count=1 -run '^$' -bench . -benchtime "${BENCHTIME:-20x}" ./internal/storage/s3/ 2>&1 |
    tee "$RESULTS/bench.txt"
}

failed=()
for s in "${steps[@]}"; do
  echo "test-s3: === $s"
  if "step_$s"; then
    rm -f "$RESULTS/$s.log"
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
