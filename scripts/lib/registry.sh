# shellcheck shell=bash
# scripts/lib/registry.sh — start and stop a throw-away octoserve for tests.
#
#   . scripts/lib/registry.sh
#   registry_start [EXTRA SERVE ARGS...]   # e.g. --config FILE
#   ...                                    # use $REGISTRY_URL
#   registry_stop                          # idempotent; call it from a trap
#
# registry_start runs ${OCTOSERVE_BIN:-bin/octoserve} (it builds nothing) on
# 127.0.0.1 with port 0, so the kernel picks a free port, on a fresh data
# directory under a mktemp -d scratch directory, and waits until GET /v2/
# answers (200, or 401 when auth is on). It sets:
#   REGISTRY_ADDR  127.0.0.1:PORT           REGISTRY_URL  http://127.0.0.1:PORT
#   REGISTRY_PID   the server's PID         REGISTRY_ROOT its data directory
#   REGISTRY_LOG   its log file (inside the scratch directory: copy it first)
# registry_stop kills exactly REGISTRY_PID (never by name) and removes the
# scratch directory.

REGISTRY_PID=""
REGISTRY_SCRATCH=""
REGISTRY_START_TIMEOUT=${REGISTRY_START_TIMEOUT:-20}

# shellcheck disable=SC2120 # extra arguments are optional
registry_start() {
  local bin=${OCTOSERVE_BIN:-bin/octoserve}
  if [ ! -x "$bin" ]; then
    echo "registry: $bin is not built (run make build)" >&2
    return 1
  fi
  REGISTRY_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-test.XXXXXX")
  REGISTRY_ROOT=$REGISTRY_SCRATCH/data
  REGISTRY_LOG=$REGISTRY_SCRATCH/octoserve.log
  "$bin" serve --addr 127.0.0.1:0 --root "$REGISTRY_ROOT" "$@" >"$REGISTRY_LOG" 2>&1 &
  REGISTRY_PID=$!
  local deadline=$((SECONDS + REGISTRY_START_TIMEOUT)) addr="" code=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
      _registry_fail "octoserve exited during startup"
      return 1
    fi
    [ -n "$addr" ] || addr=$(sed -n 's/.*msg="octoserve listening" addr=\([^ ]*\).*/\1/p' "$REGISTRY_LOG" | head -n 1)
    if [ -n "$addr" ]; then
      code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$addr/v2/" || true)
      if [ "$code" = 200 ] || [ "$code" = 401 ]; then
        REGISTRY_ADDR=$addr
        REGISTRY_URL=http://$addr
        export REGISTRY_ADDR REGISTRY_URL REGISTRY_PID REGISTRY_ROOT REGISTRY_LOG
        return 0
      fi
    fi
    sleep 0.1
  done
  _registry_fail "octoserve did not answer GET /v2/ within ${REGISTRY_START_TIMEOUT}s (address '${addr:-none}', last status '${code:-none}')"
  return 1
}

_registry_fail() {
  echo "registry: $1; last lines of its log:" >&2
  tail -n 20 "$REGISTRY_LOG" >&2 || true
  registry_stop
}

registry_stop() {
  if [ -n "$REGISTRY_PID" ]; then
    kill -TERM "$REGISTRY_PID" 2>/dev/null || true
    local waited=0 # tenths of a second: in-flight requests get 5 s
    while [ "$waited" -lt 50 ] && kill -0 "$REGISTRY_PID" 2>/dev/null; do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -KILL "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
    REGISTRY_PID=""
  fi
  if [ -n "$REGISTRY_SCRATCH" ]; then
    rm -rf "$REGISTRY_SCRATCH"
    REGISTRY_SCRATCH=""
  fi
}
