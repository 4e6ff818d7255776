# shellcheck shell=bash
# scripts/lib/replicas.sh — several octoserve replicas on one store behind
# an HAProxy, for tests (scripts/test-replicas.sh) and benchmarks
# (scripts/bench.sh).
#
#   . scripts/lib/replicas.sh
#   replicas_start N STORE_CONFIG [SERVE ARGS...]   # after a trap that calls replicas_stop
#   ...                                             # use $HAPROXY_URL and the arrays below
#   replicas_stop                                   # idempotent; safe in a trap
#
# replicas_start starts N octoserve (scripts/lib/registry.sh, each on
# 127.0.0.1 port 0) on the store STORE_CONFIG names (a storage file, e.g.
# one versitygw_storage_config wrote), each with the SERVE ARGS (e.g.
# --config FILE, layered over it), then HAProxy balancing round-robin
# over them (scripts/lib/haproxy.sh: r1 r2 ... in that order), and
# returns once every replica passed the balancer's health check. It sets
# the arrays, in the balancer's order:
#   REPLICA_PIDS REPLICA_ADDRS REPLICA_LOGS REPLICA_SCRATCH
# and HAProxy's variables (HAPROXY_URL, HAPROXY_ADDR, HAPROXY_PID, ...).
# When a replica or the balancer fails to start it says why and returns 1;
# what did start is stopped by replicas_stop. replicas_stop stops the
# balancer, then every replica, each by its PID.

# shellcheck source=lib/registry.sh
declare -F registry_start >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/registry.sh"
# shellcheck source=lib/haproxy.sh
declare -F haproxy_start >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/haproxy.sh"

REPLICA_PIDS=() REPLICA_SCRATCH=() REPLICA_ADDRS=() REPLICA_LOGS=()

replicas_start() {
  local n=$1 store_config=$2 i
  shift 2
  if [ "${#REPLICA_PIDS[@]}" -gt 0 ]; then
    echo "replicas: already running (pids ${REPLICA_PIDS[*]}); replicas_stop them first" >&2
    return 1
  fi
  for ((i = 1; i <= n; i++)); do
    REGISTRY_STORAGE_CONFIG=$store_config registry_start "$@" || return 1
    REPLICA_PIDS+=("$REGISTRY_PID") REPLICA_SCRATCH+=("$REGISTRY_SCRATCH")
    REPLICA_ADDRS+=("$REGISTRY_ADDR") REPLICA_LOGS+=("$REGISTRY_LOG")
    registry_detach
  done
  haproxy_start "${REPLICA_ADDRS[@]}"
}

replicas_stop() {
  local i
  haproxy_stop
  for i in "${!REPLICA_PIDS[@]}"; do
    registry_stop_pid "${REPLICA_PIDS[$i]}" "${REPLICA_SCRATCH[$i]}"
  done
  REPLICA_PIDS=() REPLICA_SCRATCH=() REPLICA_ADDRS=() REPLICA_LOGS=()
}
