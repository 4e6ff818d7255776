#!/usr/bin/env bash
# Tests of the conformance harness itself:
#   1. INT (as Ctrl-C sends it, to the whole process group) and TERM during
#      a run leave no octoserve process and no temporary directory behind;
#   2. a registry that breaks a workflow (here: no one may delete) makes
#      the run exit non-zero, name the failing specs and still write the
#      reports;
#   3. a run in which no spec executes is a failure, not a pass.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=lib/registry.sh
. scripts/lib/registry.sh
# shellcheck source=lib/auth.sh
. scripts/lib/auth.sh

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-harness.XXXXXX")
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  set +e
  registry_stop
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failures=0
pass() { echo "--- PASS: $1"; }
fail() {
  echo "--- FAIL: $1: $2"
  failures=$((failures + 1))
}

# A stand-in suite that stays running until it is killed, so the signal
# always arrives mid-run.
stub=$SCRATCH/slow-suite
cat >"$stub" <<'STUB'
#!/usr/bin/env bash
touch "$HARNESS_MARK"
exec sleep 60
STUB
chmod +x "$stub"

# interrupt_run SIGNAL: starts a run in its own process group, waits until
# both the server and the suite are up, signals the group (INT) or the
# script (TERM), and checks what is left.
interrupt_run() {
  local sig=$1 tmp=$SCRATCH/tmp-$1 status=0
  mkdir -p "$tmp"
  export HARNESS_MARK=$tmp/suite-started
  set -m
  TMPDIR=$tmp CONFORMANCE_SUITE=$stub CONFORMANCE_RESULTS=$SCRATCH/results-$sig \
    scripts/test-conformance.sh >"$SCRATCH/run-$sig.log" 2>&1 &
  local pid=$!
  set +m
  local waited=0
  while [ ! -e "$HARNESS_MARK" ] && [ "$waited" -lt 200 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if [ ! -e "$HARNESS_MARK" ]; then
    kill -KILL -- "-$pid" 2>/dev/null || true
    fail "interrupt-$sig" "the run never reached the suite: $(tail -5 "$SCRATCH/run-$sig.log")"
    return
  fi
  if ! pgrep -f "$tmp/octoserve-test" >/dev/null; then
    fail "interrupt-$sig" "no octoserve was running during the run"
  fi
  if [ "$sig" = INT ]; then kill -INT -- "-$pid"; else kill -TERM "$pid"; fi
  wait "$pid" || status=$?
  local left
  left=$(pgrep -f "$tmp" || true)
  rm -f "$HARNESS_MARK"
  if [ -n "$left" ]; then
    fail "interrupt-$sig" "processes left behind: $(ps -o pid=,args= -p "${left//$'\n'/,}")"
    kill -KILL "${left//$'\n'/ }" 2>/dev/null || true
  elif [ -n "$(ls -A "$tmp")" ]; then
    fail "interrupt-$sig" "temporary files left behind: $(ls -A "$tmp")"
  elif [ "$status" -eq 0 ]; then
    fail "interrupt-$sig" "an interrupted run exited 0"
  else
    pass "interrupt-$sig (exit $status, nothing left behind)"
  fi
}

interrupt_run INT
interrupt_run TERM

# A registry where nobody may delete: content management must fail.
conformance_auth_setup bin/octoserve "$SCRATCH/auth"
sed -i 's/actions: \[pull, push, delete\]/actions: [pull, push]/' "$CONFORMANCE_AUTH_CONFIG"
registry_start --config "$CONFORMANCE_AUTH_CONFIG"
status=0
OCI_ROOT_URL=$REGISTRY_URL CONFORMANCE_RESULTS=$SCRATCH/results-broken \
  scripts/test-conformance.sh >"$SCRATCH/run-broken.log" 2>&1 || status=$?
registry_stop
if [ "$status" -eq 0 ]; then
  fail broken-registry "the run passed against a registry that refuses deletes"
elif ! grep -q '^Failed specs:' "$SCRATCH/run-broken.log" ||
  ! grep -q 'Content Management' "$SCRATCH/run-broken.log"; then
  fail broken-registry "the summary names no failing Content Management spec: $(tail -20 "$SCRATCH/run-broken.log")"
elif [ ! -s "$SCRATCH/results-broken/junit.xml" ] || [ ! -s "$SCRATCH/results-broken/report.html" ]; then
  fail broken-registry "reports missing after a failed run"
else
  pass "broken-registry (exit $status; $(grep -c '^  - ' "$SCRATCH/run-broken.log") failed specs named)"
fi

# No workflow enabled: the suite exits 0 having run nothing; we must not.
status=0
OCI_TEST_PULL=0 OCI_TEST_PUSH=0 OCI_TEST_CONTENT_DISCOVERY=0 OCI_TEST_CONTENT_MANAGEMENT=0 \
  CONFORMANCE_RESULTS=$SCRATCH/results-empty \
  scripts/test-conformance.sh >"$SCRATCH/run-empty.log" 2>&1 || status=$?
if [ "$status" -eq 0 ]; then
  fail zero-specs "a run with no spec executed passed"
elif ! grep -q 'no spec ran' "$SCRATCH/run-empty.log"; then
  fail zero-specs "no explanation printed: $(tail -5 "$SCRATCH/run-empty.log")"
else
  pass "zero-specs (exit $status)"
fi

cd "$ROOT"
echo "harness: $((4 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
