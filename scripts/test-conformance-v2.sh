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
# REGISTRY_STORAGE_CONFIG=FILE starts it on the store FILE names (an S3
# bucket: make test-s3) instead of a fresh directory.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=lib/registry.sh
. scripts/lib/registry.sh
# shellcheck source=lib/conformance.sh
. scripts/lib/conformance.sh
# shellcheck source=lib/auth.sh
. scripts/lib/auth.sh

SUITE=$(suite_binary test-conformance-v2 "${CONFORMANCE_V2_SUITE:-distribution-spec/conformance-v2/conformance}")
RESULTS=$(realpath -m "${CONFORMANCE_RESULTS:-test-results}")/v2

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
  echo "test-conformance-v2: octoserve (pid $REGISTRY_PID) at $REGISTRY_URL, store $REGISTRY_STORE_ARG"
else
  echo "test-conformance-v2: testing the registry at $OCI_REGISTRY (OCI_REGISTRY is set; starting nothing)"
fi

export OCI_REPO1=${OCI_REPO1:-conformance/repo1}
export OCI_REPO2=${OCI_REPO2:-conformance/repo2}
export OCI_VERSION=${OCI_VERSION:-1.1}
# The suite matches OCI_FILTER_TEST against full names ("OCI Conformance
# Test/<test>/..."); accept the name without that root too.
case ${OCI_FILTER_TEST:-} in
  "" | "OCI Conformance Test"*) ;;
  *) export OCI_FILTER_TEST="OCI Conformance Test/$OCI_FILTER_TEST" ;;
esac
export OCI_RESULTS_DIR=$WORK/results
options=()
for api in PING PULL PUSH BLOBS_ATOMIC BLOBS_DELETE BLOBS_DIGEST_HEADER BLOBS_MOUNT_ANONYMOUS \
  BLOBS_UPLOAD_CANCEL MANIFESTS_ATOMIC MANIFESTS_DELETE MANIFESTS_DIGEST_HEADER MANIFESTS_TAG_PARAM \
  TAGS_ATOMIC TAGS_DELETE TAGS_LIST REFERRER; do
  var=OCI_API_$api
  export "$var=${!var:-true}"
  options+=("$var")
done
for data in IMAGE INDEX INDEX_LIST SPARSE ARTIFACT SUBJECT SUBJECT_MISSING ARTIFACT_LIST SUBJECT_LIST \
  DATA_FIELD NONDISTRIBUTABLE CUSTOM_FIELDS NO_LAYERS EMPTY_BLOB SHA512; do
  var=OCI_DATA_$data
  export "$var=${!var:-true}"
  options+=("$var")
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
# A partial run (an option turned off, or OCI_FILTER_TEST) may disable or
# skip tests; a full run may not: a skip means octoserve lacks something.
partial=""
[ -z "${OCI_FILTER_TEST:-}" ] || partial="OCI_FILTER_TEST=$OCI_FILTER_TEST"
for var in "${options[@]}"; do
  case ${!var} in
    1 | t | T | true | TRUE | True) ;;
    *) partial="${partial:+$partial, }$var=${!var}" ;;
  esac
done
[ -z "$partial" ] || echo "note: partial run ($partial): disabled and skipped tests are not failures"
verdict=ok
v2_result "$RESULTS/conformance.log"
if [ -z "$V2_RESULT" ]; then
  echo "FAIL: the suite printed no result (did its config load? see the output above)"
  verdict=fail
elif [ "$V2_RESULT" != Pass ]; then
  echo "FAIL: the suite's result is $V2_RESULT"
  verdict=fail
fi
if [ "$V2_PASS" -eq 0 ]; then
  echo "FAIL: no test passed (total $V2_TOTAL)"
  verdict=fail
fi
# (Checks after a failed one are skipped: only report skips on their own.)
if [ -z "$partial" ] && [ "$((V2_FAIL + V2_ERROR))" -eq 0 ] && [ "$((V2_SKIP + V2_DISABLED))" -ne 0 ]; then
  echo "FAIL: $V2_SKIP tests skipped and $V2_DISABLED disabled; with every option on, none may be:"
  awk '/: (Skip|Disabled)$/ { print; shown = 1; next } shown && /^ *- / { print; next } { shown = 0 }' \
    "$RESULTS/conformance.log" | head -n "$CONFORMANCE_MAX_LISTED" || true
  verdict=fail
fi
missing=()
for f in results.yaml junit.xml report.html; do
  [ -s "$RESULTS/$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ -n "${OCI_FILTER_TEST:-}" ]; then
    echo "note: no ${missing[*]}: the suite cannot write its reports for a filtered run (tests left out have no status)"
  else
    echo "FAIL: the suite wrote no ${missing[*]}"
    verdict=fail
  fi
fi
if [ -s "$RESULTS/junit.xml" ]; then
  CONFORMANCE_MAX_LISTED=10 junit_summary "$RESULTS/junit.xml" B
  if [ "$((JUNIT_PASSED + JUNIT_FAILED))" -eq 0 ]; then
    echo "FAIL: the junit report holds no test"
    verdict=fail
  fi
elif grep -qE ': (FAIL|Error)$' "$RESULTS/conformance.log"; then
  echo "Failed tests (from the suite's output):"
  grep -E ': (FAIL|Error)$' "$RESULTS/conformance.log" | sed 's/^ */  - /' | head -n "$CONFORMANCE_MAX_LISTED" || true
fi
v2_failing_checks "$RESULTS/conformance.log"
counts="the suite's check counts: $V2_PASS pass, $V2_FAIL fail, $V2_ERROR error, $V2_SKIP skip, $V2_DISABLED disabled"
if [ -s "$RESULTS/junit.xml" ]; then
  echo "conformance-v2: $JUNIT_PASSED tests passed, $JUNIT_FAILED failed, $JUNIT_SKIPPED skipped ($counts)"
else
  echo "conformance-v2: $counts"
fi
[ "$verdict" = ok ] || [ "$status" -ne 0 ] || status=1
echo "Reports in $RESULTS/: results.yaml junit.xml report.html, the suite's output conformance.log${REGISTRY_LOG:+, the server log octoserve.log}"
if [ "$status" -eq 0 ]; then
  echo "test-conformance-v2: PASS"
else
  echo "test-conformance-v2: FAIL (exit $status). Rerun one test with request logs:"
  echo "  OCI_LOG=debug OCI_FILTER_TEST=<test>[/<subtest>] make test-conformance-v2"
fi
exit "$status"
