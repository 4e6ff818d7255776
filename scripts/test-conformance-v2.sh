#!/usr/bin/env bash
# Runs the 2026 OCI conformance suite against octoserve with every API and
# data option on.
#
# Starts bin/octoserve (validation.sparse on, so the sparse-manifest data
# can be pushed) on a free loopback port with a fresh data directory,
# unless OCI_REGISTRY names a registry to test instead; always stops it;
# leaves results.yaml, junit.xml, report.html, the suite's output and the
# server log in test-results/v2/. This suite exits 0 even when its config
# fails to load, so the verdict is read from its output and junit.xml: the
# run fails unless it printed "OCI Conformance Result: Pass" and ran tests.
#
# Every OCI_* variable can be overridden from the environment;
# CONFORMANCE_AUTH=1 runs against an octoserve with basic auth on.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=lib/registry.sh
. scripts/lib/registry.sh
# shellcheck source=lib/conformance.sh
. scripts/lib/conformance.sh
# shellcheck source=lib/auth.sh
. scripts/lib/auth.sh

SUITE=${CONFORMANCE_V2_SUITE:-distribution-spec/conformance-v2/conformance}
RESULTS=$(realpath -m "${CONFORMANCE_RESULTS:-test-results}")/v2
if [ ! -x "$SUITE" ]; then
  echo "test-conformance-v2: $SUITE is not built: run make build-conformance" >&2
  exit 2
fi
SUITE=$(realpath "$SUITE")

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-conformance-v2.XXXXXX")

conformance_traps test-conformance-v2 "$RESULTS" "$WORK"

if [ -z "${OCI_REGISTRY:-}" ]; then
  config=$WORK/octoserve.yaml
  printf 'validation:\n  sparse: true\n' >"$config"
  if [ "${CONFORMANCE_AUTH:-0}" = 1 ]; then
    conformance_auth_setup "${OCTOSERVE_BIN:-bin/octoserve}" "$WORK/auth"
    conformance_auth_config "$config"
  fi
  registry_start --config "$config"
  export OCI_REGISTRY=$REGISTRY_ADDR OCI_TLS=${OCI_TLS:-disabled}
  echo "test-conformance-v2: octoserve (pid $REGISTRY_PID) at $REGISTRY_URL, data in $REGISTRY_ROOT"
else
  echo "test-conformance-v2: testing the registry at $OCI_REGISTRY (OCI_REGISTRY is set; starting nothing)"
fi

export OCI_REPO1=${OCI_REPO1:-conformance/repo1}
export OCI_REPO2=${OCI_REPO2:-conformance/repo2}
export OCI_VERSION=${OCI_VERSION:-1.1}
export OCI_RESULTS_DIR=$WORK/results
for api in PING PULL PUSH BLOBS_ATOMIC BLOBS_DELETE BLOBS_DIGEST_HEADER BLOBS_MOUNT_ANONYMOUS \
  BLOBS_UPLOAD_CANCEL MANIFESTS_ATOMIC MANIFESTS_DELETE MANIFESTS_DIGEST_HEADER MANIFESTS_TAG_PARAM \
  TAGS_ATOMIC TAGS_DELETE TAGS_LIST REFERRER; do
  var=OCI_API_$api
  export "$var=${!var:-true}"
done
for data in IMAGE INDEX INDEX_LIST SPARSE ARTIFACT SUBJECT SUBJECT_MISSING ARTIFACT_LIST SUBJECT_LIST \
  DATA_FIELD NONDISTRIBUTABLE CUSTOM_FIELDS NO_LAYERS EMPTY_BLOB SHA512; do
  var=OCI_DATA_$data
  export "$var=${!var:-true}"
done
[ -z "${OCI_USERNAME:-}" ] || echo "test-conformance-v2: authenticating as $OCI_USERNAME"

status=0
# The suite writes into its working directory; it runs in this shell (not
# a subshell) so that the signal traps can stop it at once.
cd "$WORK"
run_suite "$WORK/conformance.log" timeout "${CONFORMANCE_TIMEOUT:-600}" "$SUITE" || status=$?
cd "$ROOT"
cp "$WORK/conformance.log" "$RESULTS/conformance.log"
for f in results.yaml junit.xml report.html; do
  [ ! -s "$OCI_RESULTS_DIR/$f" ] || cp "$OCI_RESULTS_DIR/$f" "$RESULTS/$f"
done

echo
echo "== OCI conformance (2026 suite) =="
verdict=ok
for f in results.yaml junit.xml report.html; do
  [ -s "$RESULTS/$f" ] || { echo "FAIL: the suite wrote no $f"; verdict=fail; }
done
if ! grep -q '^OCI Conformance Result: Pass' "$RESULTS/conformance.log"; then
  echo "FAIL: the suite did not report 'OCI Conformance Result: Pass'"
  grep -A8 '^OCI Conformance Result' "$RESULTS/conformance.log" || true
  verdict=fail
fi
if [ -s "$RESULTS/junit.xml" ]; then
  junit_summary "$RESULTS/junit.xml" B
  if [ "$((JUNIT_PASSED + JUNIT_FAILED))" -eq 0 ]; then
    echo "FAIL: no test ran"
    verdict=fail
  fi
  if [ "$JUNIT_SKIPPED" -ne 0 ]; then
    echo "FAIL: $JUNIT_SKIPPED tests were skipped; every option is meant to be on"
    verdict=fail
  fi
  echo "conformance-v2: $JUNIT_PASSED passed, $JUNIT_FAILED failed, $JUNIT_SKIPPED skipped"
fi
[ "$verdict" = ok ] || [ "$status" -ne 0 ] || status=1
echo "Reports: $RESULTS/results.yaml $RESULTS/junit.xml $RESULTS/report.html (suite output: conformance.log, server log: octoserve.log)"
if [ "$status" -eq 0 ]; then echo "test-conformance-v2: PASS"; else echo "test-conformance-v2: FAIL (exit $status)"; fi
exit "$status"
