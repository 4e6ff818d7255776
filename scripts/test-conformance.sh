#!/usr/bin/env bash
# Runs the 2023 OCI conformance suite (Ginkgo) against octoserve.
#
# Starts bin/octoserve on a free loopback port with a fresh data directory
# (unless OCI_ROOT_URL names a registry to test instead), runs the suite
# with every workflow on, always stops the server it started and removes
# its data, and leaves junit.xml, report.html, the suite's output and the
# server log in test-results/. Exits with the suite's status, and fails if
# no spec ran or a report is missing.
#
# Arguments are passed to the suite binary after -ginkgo.v, e.g.
#   scripts/test-conformance.sh -ginkgo.focus='Content Discovery'
# (focus on a whole workflow: its setup specs feed the later ones).
#
# Every OCI_* variable below can be overridden from the environment;
# OCI_USERNAME/OCI_PASSWORD pass through. CONFORMANCE_AUTH=1 runs against
# an octoserve with basic auth on (and sets the credentials).
# OCI_AUTOMATIC_CROSSMOUNT=0 runs octoserve with uploads.automaticMount off.
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

SUITE=$(suite_binary test-conformance "${CONFORMANCE_SUITE:-distribution-spec/conformance/conformance.test}")
RESULTS=$(realpath -m "${CONFORMANCE_RESULTS:-test-results}")

mkdir -p "$RESULTS"
rm -f "$RESULTS/junit.xml" "$RESULTS/report.html" "$RESULTS/conformance.log" "$RESULTS/octoserve.log"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-conformance.XXXXXX")

conformance_traps test-conformance "$RESULTS" "$WORK"

# OCI_AUTOMATIC_CROSSMOUNT says what a mount without "from" of a blob the
# registry holds must get: 1 (the default) a mount (201), 0 an upload
# session (202). The octoserve started here gets the matching
# uploads.automaticMount, as it gets validation.sparse for the 2026 suite.
export OCI_AUTOMATIC_CROSSMOUNT=${OCI_AUTOMATIC_CROSSMOUNT:-1}
case $OCI_AUTOMATIC_CROSSMOUNT in
  1 | t | T | true | TRUE | True) automatic_mount=true ;;
  0 | f | F | false | FALSE | False) automatic_mount=false ;;
  *)
    echo "test-conformance: OCI_AUTOMATIC_CROSSMOUNT=$OCI_AUTOMATIC_CROSSMOUNT: want 1 (mount without from) or 0 (upload session instead)" >&2
    exit 2
    ;;
esac

if [ -z "${OCI_ROOT_URL:-}" ]; then
  config=$WORK/octoserve.yaml
  printf 'uploads:\n  automaticMount: %s\n' "$automatic_mount" >"$config"
  if [ "${CONFORMANCE_AUTH:-0}" = 1 ]; then
    conformance_auth_setup "${OCTOSERVE_BIN:-bin/octoserve}" "$WORK/auth"
    conformance_auth_config "$config"
  fi
  registry_start --config "$config"
  export OCI_ROOT_URL=$REGISTRY_URL
  echo "test-conformance: octoserve (pid $REGISTRY_PID) at $OCI_ROOT_URL, store $REGISTRY_STORE_ARG, uploads.automaticMount $automatic_mount"
else
  echo "test-conformance: testing the registry at $OCI_ROOT_URL (OCI_ROOT_URL is set; starting nothing)"
fi

export OCI_NAMESPACE=${OCI_NAMESPACE:-test/repo}
export OCI_CROSSMOUNT_NAMESPACE=${OCI_CROSSMOUNT_NAMESPACE:-test/other}
export OCI_TEST_PULL=${OCI_TEST_PULL:-1}
export OCI_TEST_PUSH=${OCI_TEST_PUSH:-1}
export OCI_TEST_CONTENT_DISCOVERY=${OCI_TEST_CONTENT_DISCOVERY:-1}
export OCI_TEST_CONTENT_MANAGEMENT=${OCI_TEST_CONTENT_MANAGEMENT:-1}
export OCI_HIDE_SKIPPED_WORKFLOWS=${OCI_HIDE_SKIPPED_WORKFLOWS:-1}
export OCI_DEBUG=${OCI_DEBUG:-0}
export OCI_DELETE_MANIFEST_BEFORE_BLOBS=${OCI_DELETE_MANIFEST_BEFORE_BLOBS:-1}
export OCI_REPORT_DIR=$WORK/report
mkdir -p "$OCI_REPORT_DIR"
[ -z "${OCI_USERNAME:-}" ] || echo "test-conformance: authenticating as $OCI_USERNAME"

echo "test-conformance: workflows pull=$OCI_TEST_PULL push=$OCI_TEST_PUSH discovery=$OCI_TEST_CONTENT_DISCOVERY management=$OCI_TEST_CONTENT_MANAGEMENT; OCI_AUTOMATIC_CROSSMOUNT=$OCI_AUTOMATIC_CROSSMOUNT"
status=0
# The suite writes into its working directory; it runs in this shell (not
# a subshell) so that the signal traps can stop it at once.
cd "$WORK"
run_suite "$WORK/conformance.log" timeout "${CONFORMANCE_TIMEOUT:-600}" \
  "$SUITE" -ginkgo.v -ginkgo.no-color -ginkgo.timeout=10m "$@" || status=$?
cd "$ROOT"
cp "$WORK/conformance.log" "$RESULTS/conformance.log"

missing=()
for f in junit.xml report.html; do
  if [ -s "$OCI_REPORT_DIR/$f" ]; then
    cp "$OCI_REPORT_DIR/$f" "$RESULTS/$f"
  else
    missing+=("$f")
  fi
done

echo
echo "== OCI conformance (2023 suite) =="
if [ ${#missing[@]} -gt 0 ]; then
  echo "FAIL: the suite wrote no ${missing[*]}"
  [ "$status" -ne 0 ] || status=1
fi
if [ -s "$RESULTS/junit.xml" ]; then
  junit_summary "$RESULTS/junit.xml" A
  if [ "$((JUNIT_PASSED + JUNIT_FAILED))" -eq 0 ]; then
    echo "FAIL: no spec ran"
    [ "$status" -ne 0 ] || status=1
  fi
  echo "conformance: $JUNIT_PASSED passed, $JUNIT_FAILED failed, $JUNIT_SKIPPED skipped"
fi
echo "Reports in $RESULTS/: junit.xml report.html, the suite's output conformance.log${REGISTRY_LOG:+, the server log octoserve.log}"
if [ "$status" -eq 0 ]; then
  echo "test-conformance: PASS"
else
  echo "test-conformance: FAIL (exit $status). Rerun with every request and response printed:"
  echo "  OCI_DEBUG=1 scripts/test-conformance.sh [-ginkgo.focus='<workflow>']   # then open report.html"
fi
exit "$status"
