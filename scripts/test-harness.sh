#!/usr/bin/env bash
# Tests of the conformance harness itself, for both runners:
#   1. INT (as Ctrl-C sends it, to the whole process group) and TERM during
#      a run leave no octoserve process and no temporary directory behind;
#   2. a registry that breaks a workflow (no one may delete; tag lists
#      answer 404 behind a proxy) makes the run exit non-zero, name the
#      failing specs on one screen and still write the reports;
#   3. a 2026 run whose config does not load (the suite then exits 0) and
#      a 2023 run in which no spec executes are failures, not passes, and
#      the 2026 verdict is read only once the suite's output is all copied;
#   4. OCI_AUTOMATIC_CROSSMOUNT=0 and =1 each start octoserve with the
#      matching uploads.automaticMount, and the suite's spec for that value
#      passes (and fails against an octoserve set the other way).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=lib/registry.sh
. scripts/lib/registry.sh
# shellcheck source=lib/auth.sh
. scripts/lib/auth.sh

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-harness.XXXXXX")
# shellcheck disable=SC2317 # called by the EXIT trap, before registry_stop
cleanup() {
  if [ -n "$proxy_pid" ]; then
    kill "$proxy_pid" 2>/dev/null
    wait "$proxy_pid" 2>/dev/null
  fi
  rm -rf "$SCRATCH"
}
proxy_pid=""
registry_trap cleanup

failures=0 checks=0
pass() {
  echo "--- PASS: $1"
  checks=$((checks + 1))
}
fail() {
  echo "--- FAIL: $1: $2"
  failures=$((failures + 1)) checks=$((checks + 1))
}

# A stand-in suite that runs until it is killed, so the signal always
# arrives mid-run. Its mark file, written atomically once it runs, holds
# its PID (that of the sleep it becomes), to check that it was stopped.
stub=$SCRATCH/slow-suite
cat >"$stub" <<'STUB'
#!/usr/bin/env bash
echo "$$" >"$HARNESS_MARK.tmp"
mv "$HARNESS_MARK.tmp" "$HARNESS_MARK"
exec sleep infinity
STUB
chmod +x "$stub"

# How long a run may take to reach its suite (build nothing, start
# octoserve): generous, for a loaded machine; a run that exits earlier
# ends the wait at once.
HARNESS_START_TIMEOUT=${HARNESS_START_TIMEOUT:-120}

# interrupt_run SIGNAL [v2]: starts a run (of the 2026 suite's runner with
# v2) in its own process group, waits until both the server and the suite
# are up, signals the group (INT, as Ctrl-C does) or the script (TERM), and
# checks what is left.
interrupt_run() {
  local sig=$1 v=${2:-} name=$1${2:+-$2} status=0
  local tmp=$SCRATCH/tmp-$name want=143
  [ "$sig" = TERM ] || want=130
  mkdir -p "$tmp"
  export HARNESS_MARK=$tmp/suite-started
  set -m
  if [ "$v" = v2 ]; then
    TMPDIR=$tmp CONFORMANCE_V2_SUITE=$stub CONFORMANCE_RESULTS=$SCRATCH/results-$name \
      scripts/test-conformance-v2.sh >"$SCRATCH/run-$name.log" 2>&1 &
  else
    TMPDIR=$tmp CONFORMANCE_SUITE=$stub CONFORMANCE_RESULTS=$SCRATCH/results-$name \
      scripts/test-conformance.sh >"$SCRATCH/run-$name.log" 2>&1 &
  fi
  local pid=$!
  set +m
  local deadline=$((SECONDS + HARNESS_START_TIMEOUT))
  while [ ! -e "$HARNESS_MARK" ] && [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
  done
  if [ ! -e "$HARNESS_MARK" ]; then
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    fail "interrupt-$name" "the run never reached the suite (within ${HARNESS_START_TIMEOUT}s, or it exited): $(tail -5 "$SCRATCH/run-$name.log")"
    return
  fi
  local suite_pid
  suite_pid=$(cat "$HARNESS_MARK")
  if ! pgrep -f "$tmp/octoserve-test" >/dev/null; then
    fail "interrupt-$name" "no octoserve was running during the run"
  fi
  if [ "$sig" = INT ]; then kill -INT -- "-$pid"; else kill -TERM "$pid"; fi
  wait "$pid" || status=$?
  local left
  left=$(pgrep -f "$tmp" || true)
  rm -f "$HARNESS_MARK"
  if kill -0 "$suite_pid" 2>/dev/null; then
    fail "interrupt-$name" "the suite (pid $suite_pid) was left running"
    kill -KILL "$suite_pid" 2>/dev/null || true
  elif [ -n "$left" ]; then
    fail "interrupt-$name" "processes left behind: $(ps -o pid=,args= -p "${left//$'\n'/,}")"
    printf '%s\n' "$left" | xargs -r kill -KILL 2>/dev/null || true
  elif [ -n "$(ls -A "$tmp")" ]; then
    fail "interrupt-$name" "temporary files left behind: $(ls -A "$tmp")"
  elif [ "$status" -ne "$want" ]; then
    fail "interrupt-$name" "exit status $status, not $want: $(tail -5 "$SCRATCH/run-$name.log")"
  else
    pass "interrupt-$name (exit $status, nothing left behind)"
  fi
}

interrupt_run INT
interrupt_run TERM
interrupt_run INT v2
interrupt_run TERM v2

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

# octoserve that stops answering tag lists (the issue's example), through
# a reverse proxy built here from the standard library only: the runner
# must fail, name Content Discovery specs, and keep the reports.
mkdir -p "$SCRATCH/notags"
cat >"$SCRATCH/notags/main.go" <<'GO'
// notags: a reverse proxy to $UPSTREAM that answers 404 to tag lists.
package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
)

func main() {
	up, err := url.Parse(os.Getenv("UPSTREAM"))
	if err != nil {
		panic(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(up)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	panic(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			http.Error(w, `{"errors":[{"code":"NAME_UNKNOWN","message":"broken on purpose"}]}`, http.StatusNotFound)
			return
		}
		proxy.ServeHTTP(w, r)
	})))
}
GO
if ! (cd "$SCRATCH/notags" && GOWORK=off GOFLAGS='' go mod init notags >/dev/null 2>&1 &&
  GOWORK=off GOFLAGS='' go build -o notags . >"$SCRATCH/notags/build.log" 2>&1); then
  fail tags-404 "could not build the proxy: $(cat "$SCRATCH/notags/build.log")"
else
  registry_start
  UPSTREAM=$REGISTRY_URL "$SCRATCH/notags/notags" >"$SCRATCH/notags/addr" 2>"$SCRATCH/notags/err" &
  proxy_pid=$!
  deadline=$((SECONDS + HARNESS_START_TIMEOUT))
  # The address is printed in one write, once the proxy listens.
  while ! grep -q . "$SCRATCH/notags/addr" && [ "$SECONDS" -lt "$deadline" ] && kill -0 "$proxy_pid" 2>/dev/null; do
    sleep 0.1
  done
  status=0
  proxy_addr=$(head -n 1 "$SCRATCH/notags/addr")
  if [ -n "$proxy_addr" ]; then
    OCI_ROOT_URL=http://$proxy_addr CONFORMANCE_RESULTS=$SCRATCH/results-notags \
      scripts/test-conformance.sh >"$SCRATCH/run-notags.log" 2>&1 || status=$?
  fi
  kill "$proxy_pid" 2>/dev/null || true
  wait "$proxy_pid" 2>/dev/null || true
  proxy_pid=""
  registry_stop
  if [ -z "$proxy_addr" ]; then
    fail tags-404 "the proxy printed no address (within ${HARNESS_START_TIMEOUT}s, or it exited): $(cat "$SCRATCH/notags/err")"
  elif [ "$status" -eq 0 ]; then
    fail tags-404 "the run passed against a registry that 404s tag lists"
  elif ! grep -q '^  - .*Content Discovery.*tags' "$SCRATCH/run-notags.log"; then
    fail tags-404 "the summary names no failing tag-list spec: $(tail -20 "$SCRATCH/run-notags.log")"
  elif [ ! -s "$SCRATCH/results-notags/junit.xml" ] || [ ! -s "$SCRATCH/results-notags/report.html" ]; then
    fail tags-404 "reports missing after a failed run"
  else
    pass "tags-404 (exit $status; $(grep -c '^  - ' "$SCRATCH/run-notags.log") failed specs named)"
  fi
fi

# The same registry under the 2026 suite, whose exit status cannot be
# trusted: the runner must read the verdict and still keep the reports.
conformance_auth_setup bin/octoserve "$SCRATCH/auth-v2"
sed -i 's/actions: \[pull, push, delete\]/actions: [pull, push]/' "$CONFORMANCE_AUTH_CONFIG"
printf 'validation:\n  sparse: true\n' >>"$CONFORMANCE_AUTH_CONFIG"
registry_start --config "$CONFORMANCE_AUTH_CONFIG"
status=0
OCI_REGISTRY=$REGISTRY_ADDR OCI_TLS=disabled CONFORMANCE_RESULTS=$SCRATCH/results-broken-v2 \
  scripts/test-conformance-v2.sh >"$SCRATCH/run-broken-v2.log" 2>&1 || status=$?
registry_stop
if [ "$status" -eq 0 ]; then
  fail broken-registry-v2 "the 2026 run passed against a registry that refuses deletes"
elif ! grep -q '^Failed specs:' "$SCRATCH/run-broken-v2.log" ||
  ! grep -q '/delete/' "$SCRATCH/run-broken-v2.log"; then
  fail broken-registry-v2 "the summary names no failing delete test: $(tail -20 "$SCRATCH/run-broken-v2.log")"
elif [ "$(grep -c . <(sed -n '/^== OCI/,$p' "$SCRATCH/run-broken-v2.log"))" -gt 60 ]; then
  fail broken-registry-v2 "the summary is longer than a screen: $(sed -n '/^== OCI/,$p' "$SCRATCH/run-broken-v2.log" | wc -l) lines"
else
  missing=""
  for f in results.yaml junit.xml report.html conformance.log; do
    [ -s "$SCRATCH/results-broken-v2/v2/$f" ] || missing="$missing $f"
  done
  if [ -n "$missing" ]; then
    fail broken-registry-v2 "reports missing after a failed run:$missing"
  else
    pass "broken-registry-v2 (exit $status)"
  fi
fi
unset OCI_USERNAME OCI_PASSWORD

# The runner reads the 2026 verdict from the copy of the suite's output,
# so that copy must be complete when it looks, even when the terminal
# takes the output slowly. A stand-in suite prints 96 KiB and then its
# verdict: enough to fill the pipe to a terminal that reads nothing yet,
# little enough to end meanwhile. The reader starts reading once the
# runner has copied the log into the results, or after 3 s if it never
# does before (as it must not); a runner that copies the log while the
# output is still on its way finds no verdict in it.
loud=$SCRATCH/loud-suite
cat >"$loud" <<'STUB'
#!/usr/bin/env bash
head -c 98304 /dev/zero | tr '\0' . | fold -w 63
printf '\nOCI Conformance Result: Pass\n  Pass.....:          1\n  Total....:          1\n\n'
STUB
chmod +x "$loud"
slow_terminal() {
  local deadline=$((SECONDS + 3))
  while [ ! -e "$1" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
  cat >"$2"
}
OCI_REGISTRY=127.0.0.1:9 CONFORMANCE_V2_SUITE=$loud CONFORMANCE_RESULTS=$SCRATCH/results-slow \
  scripts/test-conformance-v2.sh 2>&1 | slow_terminal "$SCRATCH/results-slow/v2/conformance.log" "$SCRATCH/run-slow.log" || true
if grep -q 'printed no result' "$SCRATCH/run-slow.log" ||
  ! grep -q '^OCI Conformance Result: Pass' "$SCRATCH/results-slow/v2/conformance.log"; then
  fail slow-terminal-v2 "the verdict was read from an incomplete copy of the output: $(grep -m1 'FAIL' "$SCRATCH/run-slow.log")"
else
  pass "slow-terminal-v2 (the verdict was in the copy)"
fi

# The 2026 suite exits 0 when its config does not load: we must not.
status=0
OCI_VERSION=no-such-version CONFORMANCE_RESULTS=$SCRATCH/results-badconfig \
  scripts/test-conformance-v2.sh >"$SCRATCH/run-badconfig.log" 2>&1 || status=$?
if [ "$status" -eq 0 ]; then
  fail bad-config-v2 "a 2026 run whose config failed to load passed"
elif ! grep -q 'printed no result' "$SCRATCH/run-badconfig.log"; then
  fail bad-config-v2 "no explanation printed: $(tail -5 "$SCRATCH/run-badconfig.log")"
else
  pass "bad-config-v2 (exit $status)"
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

# OCI_AUTOMATIC_CROSSMOUNT, both values: the runner starts octoserve with
# the matching uploads.automaticMount, so the suite's spec for that value
# (a mount without "from" of a blob the registry holds: 201 for 1, 202
# for 0) runs and passes. Against an octoserve set the other way the same
# spec fails, and so does the run: the spec really tells them apart. Only
# the push workflow runs: the spec is in it.
mount_spec() {
  if [ "$1" = 0 ]; then
    echo "automatic content discovery disabled should return a 202"
  else
    echo "automatic content discovery enabled should return a 201"
  fi
}
for v in 0 1; do
  spec=$(mount_spec "$v")
  status=0
  OCI_TEST_PULL=0 OCI_TEST_CONTENT_DISCOVERY=0 OCI_TEST_CONTENT_MANAGEMENT=0 \
    OCI_AUTOMATIC_CROSSMOUNT=$v CONFORMANCE_RESULTS=$SCRATCH/results-mount-$v \
    scripts/test-conformance.sh >"$SCRATCH/run-mount-$v.log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    fail "automatic-mount-$v" "the run failed (exit $status): $(tail -20 "$SCRATCH/run-mount-$v.log")"
  elif ! grep -q "uploads.automaticMount $([ "$v" = 0 ] && echo false || echo true)\$" "$SCRATCH/run-mount-$v.log"; then
    fail "automatic-mount-$v" "the runner did not start octoserve with the matching setting: $(grep -m1 'octoserve (pid' "$SCRATCH/run-mount-$v.log")"
  elif ! grep -F "$spec" "$SCRATCH/results-mount-$v/junit.xml" | grep -q 'status="passed"'; then
    fail "automatic-mount-$v" "the spec \"$spec\" did not run and pass"
  else
    pass "automatic-mount-$v (\"$spec\" passed)"
  fi

  mismatch=$SCRATCH/mount-mismatch-$v.yaml
  printf 'uploads:\n  automaticMount: %s\n' "$([ "$v" = 0 ] && echo true || echo false)" >"$mismatch"
  registry_start --config "$mismatch"
  status=0
  OCI_TEST_PULL=0 OCI_TEST_CONTENT_DISCOVERY=0 OCI_TEST_CONTENT_MANAGEMENT=0 \
    OCI_ROOT_URL=$REGISTRY_URL OCI_AUTOMATIC_CROSSMOUNT=$v CONFORMANCE_RESULTS=$SCRATCH/results-mismatch-$v \
    scripts/test-conformance.sh >"$SCRATCH/run-mismatch-$v.log" 2>&1 || status=$?
  registry_stop
  if [ "$status" -eq 0 ]; then
    fail "automatic-mount-mismatch-$v" "the run passed against an octoserve set the other way"
  elif ! grep -F "$spec" "$SCRATCH/run-mismatch-$v.log" | grep -q '^  - '; then
    fail "automatic-mount-mismatch-$v" "the summary does not name \"$spec\": $(tail -20 "$SCRATCH/run-mismatch-$v.log")"
  else
    pass "automatic-mount-mismatch-$v (exit $status, \"$spec\" failed)"
  fi
done

status=0
OCI_AUTOMATIC_CROSSMOUNT=sometimes CONFORMANCE_RESULTS=$SCRATCH/results-mount-bad \
  scripts/test-conformance.sh >"$SCRATCH/run-mount-bad.log" 2>&1 || status=$?
if [ "$status" -eq 0 ]; then
  fail automatic-mount-bad-value "OCI_AUTOMATIC_CROSSMOUNT=sometimes was accepted"
elif ! grep -q 'want 1' "$SCRATCH/run-mount-bad.log"; then
  fail automatic-mount-bad-value "no explanation printed: $(tail -5 "$SCRATCH/run-mount-bad.log")"
else
  pass "automatic-mount-bad-value (exit $status)"
fi

cd "$ROOT"
echo "harness: $((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
