# shellcheck shell=bash
# scripts/lib/registry.sh — start and stop a throw-away octoserve for tests.
#
#   . scripts/lib/registry.sh
#   registry_trap [FUNC]                   # EXIT/INT/TERM: FUNC (if given), then registry_stop
#   registry_start [EXTRA SERVE ARGS...]   # e.g. --config FILE
#   ...                                    # use $REGISTRY_URL
#   registry_stop                          # idempotent; safe in a trap
#
# registry_start runs ${OCTOSERVE_BIN:-bin/octoserve} (it builds nothing) on
# 127.0.0.1 with port 0, so the kernel picks a free port, on a fresh data
# directory under a mktemp -d scratch directory, and waits until GET /v2/
# answers (200, or 401 when auth is on) for at most REGISTRY_START_TIMEOUT
# seconds (default 60, room for a loaded machine), printing the tail of the
# server log if it never does. It sets and exports:
#   REGISTRY_ADDR  127.0.0.1:PORT           REGISTRY_URL  http://127.0.0.1:PORT
#   REGISTRY_PID   the server's PID         REGISTRY_ROOT its data directory
#   REGISTRY_LOG   its log file (inside the scratch directory: copy it
#                  before registry_stop if you want to keep it)
# REGISTRY_URL is https://... when the server was started with TLS (then
# the probe skips certificate verification).
# With REGISTRY_STORAGE_CONFIG set to a config file (e.g. a storage.s3
# section), the server is started with --config FILE before the extra
# arguments and no --root: it stores where that file says, and
# REGISTRY_ROOT is empty. Either way it also exports
#   REGISTRY_STORE_ARG  one argument naming the store for `octoserve gc` and
#                       `octoserve verify`: --config=FILE or --root=DIR
# With REGISTRY_DATA set to a directory, that directory is served instead
# of a fresh one and registry_stop keeps it (the benchmarks fill a root once
# and reuse it).
# registry_stop kills exactly REGISTRY_PID (TERM, then KILL after 5 s;
# never by name) and removes the scratch directory.
#
# Several at once (replicas of one store): after each registry_start, keep
# REGISTRY_PID and REGISTRY_SCRATCH (its scratch directory) and call
# registry_detach, which forgets that server without stopping it so that
# registry_start starts another; stop each with
# registry_stop_pid PID SCRATCH (a trap must, as for registry_stop).

# Not inherited: a script run by one that started a registry starts its own.
REGISTRY_PID="" REGISTRY_SCRATCH="" REGISTRY_ADDR="" REGISTRY_URL="" REGISTRY_ROOT="" REGISTRY_LOG=""
REGISTRY_STORE_ARG=""

# registry_trap [FUNC]: on EXIT, whatever the cause, run FUNC (if given;
# e.g. to keep logs or stop a client) and then registry_stop; INT and TERM
# exit at once with 130 and 143, which runs the EXIT trap.
registry_trap() {
  _REGISTRY_TRAP_FUNC=${1:-}
  trap _registry_on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# shellcheck disable=SC2317 # called by the EXIT trap
_registry_on_exit() {
  local status=$?
  set +e
  trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
  if [ -n "${_REGISTRY_TRAP_FUNC:-}" ]; then "$_REGISTRY_TRAP_FUNC"; fi
  registry_stop
  return "$status"
}

# shellcheck disable=SC2120 # extra arguments are optional
registry_start() {
  local bin=${OCTOSERVE_BIN:-bin/octoserve} timeout=${REGISTRY_START_TIMEOUT:-60}
  if [ ! -x "$bin" ]; then
    echo "registry: $bin is not built (run make build)" >&2
    return 1
  fi
  if [ -n "$REGISTRY_PID" ]; then
    echo "registry: a registry is already running (pid $REGISTRY_PID); registry_stop it first" >&2
    return 1
  fi
  REGISTRY_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-test.XXXXXX")
  REGISTRY_LOG=$REGISTRY_SCRATCH/octoserve.log
  local store=()
  if [ -n "${REGISTRY_STORAGE_CONFIG:-}" ]; then
    REGISTRY_ROOT=""
    REGISTRY_STORE_ARG=--config=$REGISTRY_STORAGE_CONFIG
    store=(--config "$REGISTRY_STORAGE_CONFIG")
  else
    REGISTRY_ROOT=${REGISTRY_DATA:-$REGISTRY_SCRATCH/data}
    REGISTRY_STORE_ARG=--root=$REGISTRY_ROOT
    store=(--root "$REGISTRY_ROOT")
  fi
  : >"$REGISTRY_LOG" # exists before the server opens it: the loop below reads it
  "$bin" serve --addr 127.0.0.1:0 "${store[@]}" "$@" >"$REGISTRY_LOG" 2>&1 &
  REGISTRY_PID=$!
  local deadline=$((SECONDS + timeout)) addr="" code="" scheme
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
      _registry_fail "octoserve exited during startup"
      return 1
    fi
    [ -n "$addr" ] || addr=$(_registry_listen_addr "$REGISTRY_LOG" || true)
    if [ -n "$addr" ]; then
      for scheme in http https; do
        code=$(curl -sk -o /dev/null -m 2 -w '%{http_code}' "$scheme://$addr/v2/" || true)
        if [ "$code" = 200 ] || [ "$code" = 401 ]; then
          REGISTRY_ADDR=$addr
          REGISTRY_URL=$scheme://$addr
          export REGISTRY_ADDR REGISTRY_URL REGISTRY_PID REGISTRY_ROOT REGISTRY_LOG REGISTRY_STORE_ARG
          return 0
        fi
      done
    fi
    sleep 0.1
  done
  _registry_fail "octoserve did not answer GET /v2/ within ${timeout}s (address '${addr:-none}', last status '${code:-none}')"
  return 1
}

# _registry_listen_addr LOG: the address in the "octoserve listening" line,
# in slog's text (addr=HOST:PORT) or JSON ("addr":"HOST:PORT") format.
_registry_listen_addr() {
  sed -n -e '/octoserve listening/{
    s/.*"addr":"\([^"]*\)".*/\1/p
    t done
    s/.* addr="\{0,1\}\([^" ]*\).*/\1/p
    :done
  }' "$1" | head -n 1
}

_registry_fail() {
  echo "registry: $1; last lines of its log ($REGISTRY_LOG):" >&2
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

registry_detach() {
  REGISTRY_PID="" REGISTRY_SCRATCH=""
}

# registry_stop_pid PID SCRATCH: registry_stop for a detached server.
registry_stop_pid() {
  local REGISTRY_PID=$1 REGISTRY_SCRATCH=$2
  registry_stop
}
