# shellcheck shell=bash
# scripts/lib/haproxy.sh — start and stop a throw-away HAProxy (Debian's
# haproxy package) balancing over several registries, for tests.
#
#   . scripts/lib/haproxy.sh
#   haproxy_start HOST:PORT...   # after a trap that calls haproxy_stop
#   ...                          # use $HAPROXY_URL, $HAPROXY_ADDR, ...
#   haproxy_server_status r2     # UP, DOWN, "DOWN 1/2", ... of server r2
#   haproxy_stop                 # idempotent; safe in a trap
#
# haproxy_start writes a configuration into a mktemp -d scratch directory
# and runs ${HAPROXY_BIN:-haproxy} in the foreground (in the background of
# this shell, so its PID is known). The configuration:
#   - one HTTP frontend on 127.0.0.1; servers r1, r2, ... (the arguments,
#     in order) balanced round-robin, every request on its own, with no
#     stickiness of any kind;
#   - a health check GET /readyz (200 once the replica's store is
#     reachable and writable; 503 not) every
#     HAPROXY_CHECK_INTERVAL (default 250ms), each given 5 s (a loaded
#     machine is slow, not down); a server is marked down after 3 failed
#     checks, or at once when a connection to it fails (observe layer4),
#     and up again after 2 good ones;
#   - retries 3 with option redispatch 1: a request that cannot connect
#     to its server is sent to another one. A request a server dies
#     while answering is answered 502 or cut off (HAProxy never sends a
#     request body twice); the client retries it, as real clients do;
#   - long client and server timeouts (uploads may be slow);
#   - a log on stderr, one line per request naming the server that
#     answered it (option httplog), unless HAPROXY_REQUEST_LOG=0 (the
#     benchmarks: docs/scale-out.md's example has no request log);
#   - HAProxy's statistics page, served over HTTP on a unix socket in the
#     scratch directory: `curl --unix-socket "$HAPROXY_STATS"
#     'http://haproxy/;csv'` gives every server's state.
# HAProxy cannot listen on port 0, so a port is drawn below the kernel's
# ephemeral range among those nothing listens on (scripts/lib/port.sh);
# when another process takes it first, HAProxy exits and the next port is
# tried (HAPROXY_PORT_TRIES, default 10). haproxy_start returns once every
# server passed a health check, within HAPROXY_START_TIMEOUT seconds
# (default 30). It sets and exports:
#   HAPROXY_ADDR   127.0.0.1:PORT       HAPROXY_URL  http://127.0.0.1:PORT
#   HAPROXY_PID    its PID
#   HAPROXY_STATS  the statistics socket (HTTP over a unix socket)
#   HAPROXY_BACKEND the backend's name in the statistics (octoserve)
#   HAPROXY_LOG    its log (inside the scratch directory: copy it before
#                  haproxy_stop to keep it)
# haproxy_stop kills exactly HAPROXY_PID (TERM, then KILL after 5 s; never
# by name) and removes the scratch directory.

# shellcheck source=lib/port.sh
. "$(dirname "${BASH_SOURCE[0]}")/port.sh"

# Not inherited: a script run by one that started a balancer starts its own.
HAPROXY_PID="" HAPROXY_SCRATCH="" HAPROXY_ADDR="" HAPROXY_URL="" HAPROXY_STATS="" HAPROXY_LOG=""
HAPROXY_BACKEND=octoserve
_HAPROXY_STATE=""

haproxy_start() {
  local bin=${HAPROXY_BIN:-haproxy} tries=${HAPROXY_PORT_TRIES:-10} attempt port
  if ! command -v "$bin" >/dev/null 2>&1; then
    echo "haproxy: $bin not found: apt-get install haproxy" >&2
    return 1
  fi
  if [ -n "$HAPROXY_PID" ]; then
    echo "haproxy: a balancer is already running (pid $HAPROXY_PID); haproxy_stop it first" >&2
    return 1
  fi
  if [ $# -eq 0 ]; then
    echo "haproxy: haproxy_start needs the servers' HOST:PORT" >&2
    return 1
  fi
  HAPROXY_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-haproxy.XXXXXX")
  HAPROXY_STATS=$HAPROXY_SCRATCH/stats.sock
  HAPROXY_LOG=$HAPROXY_SCRATCH/haproxy.log
  for ((attempt = 1; attempt <= tries; attempt++)); do
    port=$(port_pick) || {
      _haproxy_fail "no free port found"
      return 1
    }
    _haproxy_config "$port" "$@" >"$HAPROXY_SCRATCH/haproxy.cfg"
    _haproxy_run "$bin" "$port" "$#"
    case $_HAPROXY_STATE in
      up)
        export HAPROXY_ADDR HAPROXY_URL HAPROXY_PID HAPROXY_STATS HAPROXY_BACKEND HAPROXY_LOG
        return 0
        ;;
      taken) echo "haproxy: port $port was taken meanwhile; trying another" >&2 ;;
      *) return 1 ;; # _haproxy_run said why and stopped it
    esac
  done
  _haproxy_fail "no port worked in $tries tries"
  return 1
}

# _haproxy_config PORT SERVER...: the configuration file's text.
_haproxy_config() {
  local port=$1 inter=${HAPROXY_CHECK_INTERVAL:-250ms} i=0 server
  shift
  cat <<EOF
global
  log stderr format raw local0 info
  maxconn 1000
  nbthread 2

defaults
  mode http
  timeout connect 2s
  timeout client 10m
  timeout server 10m
  timeout http-request 30s
  timeout queue 30s
  timeout check 5s
  retries 3
  option redispatch 1

frontend registry
  bind 127.0.0.1:$port
  default_backend $HAPROXY_BACKEND
EOF
  if [ "${HAPROXY_REQUEST_LOG:-1}" != 0 ]; then
    printf '  log global\n  option httplog\n'
  fi
  cat <<EOF

backend $HAPROXY_BACKEND
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server check inter $inter fall 3 rise 2 observe layer4 error-limit 1 on-error mark-down
EOF
  for server in "$@"; do
    i=$((i + 1))
    echo "  server r$i $server"
  done
  cat <<EOF

listen stats
  bind unix@$HAPROXY_STATS mode 600
  stats enable
  stats uri /
EOF
}

# _haproxy_run BIN PORT SERVERS: starts HAProxy and sets _HAPROXY_STATE to
# "up" once all SERVERS servers passed a health check, "taken" if it
# exited because the port was in use (it is then gone), or "failed"
# (after saying why and stopping it).
_haproxy_run() {
  local bin=$1 port=$2 servers=$3 timeout=${HAPROXY_START_TIMEOUT:-30} deadline up=0
  : >"$HAPROXY_LOG"
  "$bin" -db -f "$HAPROXY_SCRATCH/haproxy.cfg" >>"$HAPROXY_LOG" 2>&1 &
  HAPROXY_PID=$!
  HAPROXY_ADDR=127.0.0.1:$port
  HAPROXY_URL=http://$HAPROXY_ADDR
  deadline=$((SECONDS + timeout))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$HAPROXY_PID" 2>/dev/null; then
      wait "$HAPROXY_PID" 2>/dev/null || true
      HAPROXY_PID=""
      if grep -q 'Address already in use' "$HAPROXY_LOG"; then
        _HAPROXY_STATE=taken
      else
        _haproxy_fail "haproxy exited during startup"
        _HAPROXY_STATE=failed
      fi
      return 0
    fi
    up=$(_haproxy_csv | awk -F, -v be="$HAPROXY_BACKEND" '
      NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
      $1 == be && $2 != "BACKEND" && $(col["status"]) == "UP" && $(col["check_status"]) == "L7OK" { n++ }
      END { print n + 0 }')
    if [ "$up" -eq "$servers" ]; then
      _HAPROXY_STATE=up
      return 0
    fi
    sleep 0.1
  done
  _haproxy_fail "haproxy did not see all $servers servers pass a health check within ${timeout}s ($up did)"
  _HAPROXY_STATE=failed
}

# _haproxy_csv: the statistics as CSV, the header line without its "# ";
# nothing (and success) while HAProxy does not answer.
_haproxy_csv() {
  { curl -s -m 2 --unix-socket "$HAPROXY_STATS" 'http://haproxy/;csv' 2>/dev/null || true; } | sed '1s/^# //'
}

# haproxy_server_status NAME: the state HAProxy gives server NAME (r1,
# r2, ...): UP, DOWN, or a transition such as "UP 1/2".
haproxy_server_status() {
  _haproxy_csv | awk -F, -v be="$HAPROXY_BACKEND" -v sv="$1" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 == be && $2 == sv { print $(col["status"]) }'
}

_haproxy_fail() {
  echo "haproxy: $1; last lines of its log ($HAPROXY_LOG):" >&2
  tail -n 20 "$HAPROXY_LOG" >&2 || true
  haproxy_stop
}

haproxy_stop() {
  if [ -n "$HAPROXY_PID" ]; then
    kill -TERM "$HAPROXY_PID" 2>/dev/null || true
    local waited=0 # tenths of a second
    while [ "$waited" -lt 50 ] && kill -0 "$HAPROXY_PID" 2>/dev/null; do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -KILL "$HAPROXY_PID" 2>/dev/null || true
    wait "$HAPROXY_PID" 2>/dev/null || true
    HAPROXY_PID=""
  fi
  if [ -n "$HAPROXY_SCRATCH" ]; then
    rm -rf "$HAPROXY_SCRATCH"
    HAPROXY_SCRATCH=""
  fi
}
