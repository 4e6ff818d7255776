# shellcheck shell=bash
# scripts/lib/versitygw.sh — start and stop a throw-away S3 server
# (versitygw, serving a temporary directory) for tests.
#
#   . scripts/lib/versitygw.sh
#   versitygw_start             # after a trap that calls versitygw_stop
#   ...                         # use $VERSITYGW_ENDPOINT, $VERSITYGW_BUCKET, ...
#   versitygw_stop              # idempotent; safe in a trap
#
# versitygw_start runs ${VERSITYGW_BIN:-.tools/bin/versitygw} (it builds
# nothing: scripts/install-tools.sh versitygw does) with its posix backend
# on a fresh directory under a mktemp -d scratch directory (or on
# VERSITYGW_DATA_DIR, an empty directory the caller made and removes, such
# as a small tmpfs to fill), with an access
# key and secret made for this run, on 127.0.0.1. versitygw cannot listen
# on port 0, so a port is drawn at random below the kernel's ephemeral
# range (where the kernel never hands out ports on its own) among those
# nothing listens on; when another process takes it first, versitygw exits
# and the next port is tried (VERSITYGW_PORT_TRIES, default 10). It waits
# at most VERSITYGW_START_TIMEOUT seconds (default 30) until a request
# signed with this run's key answers — only this server knows the key, so
# an answer cannot come from another — then creates the bucket. It sets
# and exports:
#   VERSITYGW_ENDPOINT    http://127.0.0.1:PORT
#   VERSITYGW_REGION      us-east-1
#   VERSITYGW_BUCKET      the bucket (empty)
#   VERSITYGW_ACCESS_KEY  VERSITYGW_SECRET_KEY  this run's credentials
#   VERSITYGW_PID         the server's PID
#   VERSITYGW_ROOT        the directory it serves (the bucket is a
#                         directory in it)
#   VERSITYGW_LOG         its log (inside the scratch directory: copy it
#                         before versitygw_stop to keep it)
# versitygw_stop kills exactly VERSITYGW_PID (TERM, then KILL after 5 s;
# never by name) and removes the scratch directory.
#
#   versitygw_storage_config FILE PREFIX
# writes an octoserve configuration file (mode 600: it holds the key) whose
# storage section is this server's bucket under key PREFIX, for
# `octoserve serve/gc/verify --config FILE` (layered under others).

# shellcheck source=lib/port.sh
. "$(dirname "${BASH_SOURCE[0]}")/port.sh"

# Not inherited: a script run by one that started a server starts its own.
VERSITYGW_PID="" VERSITYGW_SCRATCH="" VERSITYGW_ENDPOINT="" VERSITYGW_ROOT="" VERSITYGW_LOG=""
VERSITYGW_BUCKET="" VERSITYGW_ACCESS_KEY="" VERSITYGW_SECRET_KEY="" VERSITYGW_REGION=""
_VERSITYGW_STATE=""

versitygw_start() {
  local bin=${VERSITYGW_BIN:-.tools/bin/versitygw}
  local tries=${VERSITYGW_PORT_TRIES:-10} attempt port
  if [ ! -x "$bin" ]; then
    echo "versitygw: $bin is not installed (run scripts/install-tools.sh versitygw)" >&2
    return 1
  fi
  if [ -n "$VERSITYGW_PID" ]; then
    echo "versitygw: a server is already running (pid $VERSITYGW_PID); versitygw_stop it first" >&2
    return 1
  fi
  VERSITYGW_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-s3.XXXXXX")
  VERSITYGW_ROOT=${VERSITYGW_DATA_DIR:-$VERSITYGW_SCRATCH/root}
  VERSITYGW_LOG=$VERSITYGW_SCRATCH/versitygw.log
  VERSITYGW_REGION=us-east-1
  VERSITYGW_BUCKET=octoserve-test
  VERSITYGW_ACCESS_KEY=octo$(_versitygw_random 8)
  VERSITYGW_SECRET_KEY=$(_versitygw_random 20)
  mkdir -p "$VERSITYGW_ROOT"
  for ((attempt = 1; attempt <= tries; attempt++)); do
    port=$(port_pick) || {
      _versitygw_fail "no free port found"
      return 1
    }
    _versitygw_run "$bin" "$port"
    case $_VERSITYGW_STATE in
      up)
        _versitygw_create_bucket || return 1
        export VERSITYGW_ENDPOINT VERSITYGW_REGION VERSITYGW_BUCKET VERSITYGW_ACCESS_KEY \
          VERSITYGW_SECRET_KEY VERSITYGW_PID VERSITYGW_ROOT VERSITYGW_LOG
        return 0
        ;;
      taken) echo "versitygw: port $port was taken meanwhile; trying another" >&2 ;;
      *) return 1 ;; # _versitygw_run said why and stopped the server
    esac
  done
  _versitygw_fail "no port worked in $tries tries"
  return 1
}

# _versitygw_random N: 2N lowercase hex characters from the kernel.
_versitygw_random() {
  od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# _versitygw_run BIN PORT: starts the server on PORT and sets
# _VERSITYGW_STATE to "up" once it answers a request signed with this
# run's key, "taken" if it exited because the port was in use (the server
# is then gone), or "failed" (after saying why and stopping it).
_versitygw_run() {
  local bin=$1 port=$2 timeout=${VERSITYGW_START_TIMEOUT:-30} deadline code
  : >"$VERSITYGW_LOG"
  "$bin" --access "$VERSITYGW_ACCESS_KEY" --secret "$VERSITYGW_SECRET_KEY" \
    --region "$VERSITYGW_REGION" --port "127.0.0.1:$port" --quiet \
    posix "$VERSITYGW_ROOT" >>"$VERSITYGW_LOG" 2>&1 &
  VERSITYGW_PID=$!
  VERSITYGW_ENDPOINT=http://127.0.0.1:$port
  deadline=$((SECONDS + timeout))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$VERSITYGW_PID" 2>/dev/null; then
      wait "$VERSITYGW_PID" 2>/dev/null || true
      VERSITYGW_PID=""
      if grep -q 'address already in use' "$VERSITYGW_LOG"; then
        _VERSITYGW_STATE=taken
      else
        _versitygw_fail "versitygw exited during startup"
        _VERSITYGW_STATE=failed
      fi
      return 0
    fi
    code=$(_versitygw_curl -o /dev/null -w '%{http_code}' "$VERSITYGW_ENDPOINT/" 2>/dev/null || true)
    if [ "$code" = 200 ]; then
      _VERSITYGW_STATE=up
      return 0
    fi
    sleep 0.1
  done
  _versitygw_fail "versitygw did not answer at $VERSITYGW_ENDPOINT within ${timeout}s (last status '${code:-none}')"
  _VERSITYGW_STATE=failed
}

# _versitygw_curl ARGS...: curl with a request signed by this run's key.
# curl does not send the payload hash header S3 requires; an unsigned
# payload is what the requests here (no body) need.
_versitygw_curl() {
  curl -sS -m 5 --aws-sigv4 "aws:amz:$VERSITYGW_REGION:s3" \
    --user "$VERSITYGW_ACCESS_KEY:$VERSITYGW_SECRET_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

_versitygw_create_bucket() {
  local code
  code=$(_versitygw_curl -o "$VERSITYGW_SCRATCH/create-bucket.out" -w '%{http_code}' \
    -X PUT "$VERSITYGW_ENDPOINT/$VERSITYGW_BUCKET" || true)
  if [ "$code" != 200 ]; then
    cat "$VERSITYGW_SCRATCH/create-bucket.out" >>"$VERSITYGW_LOG" 2>/dev/null || true
    _versitygw_fail "creating bucket $VERSITYGW_BUCKET answered '$code'"
    return 1
  fi
}

versitygw_storage_config() {
  local file=$1 prefix=$2
  (umask 077 && cat >"$file" <<YAML
storage:
  s3:
    endpoint: $VERSITYGW_ENDPOINT
    region: $VERSITYGW_REGION
    bucket: $VERSITYGW_BUCKET
    prefix: $prefix
    pathStyle: true
    accessKey: $VERSITYGW_ACCESS_KEY
    secretKey: $VERSITYGW_SECRET_KEY
YAML
  )
}

_versitygw_fail() {
  echo "versitygw: $1; last lines of its log ($VERSITYGW_LOG):" >&2
  tail -n 20 "$VERSITYGW_LOG" >&2 || true
  versitygw_stop
}

versitygw_stop() {
  if [ -n "$VERSITYGW_PID" ]; then
    kill -TERM "$VERSITYGW_PID" 2>/dev/null || true
    local waited=0 # tenths of a second
    while [ "$waited" -lt 50 ] && kill -0 "$VERSITYGW_PID" 2>/dev/null; do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -KILL "$VERSITYGW_PID" 2>/dev/null || true
    wait "$VERSITYGW_PID" 2>/dev/null || true
    VERSITYGW_PID=""
  fi
  if [ -n "$VERSITYGW_SCRATCH" ]; then
    rm -rf "$VERSITYGW_SCRATCH"
    VERSITYGW_SCRATCH=""
  fi
}
