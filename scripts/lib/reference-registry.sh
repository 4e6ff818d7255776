# shellcheck shell=bash
# scripts/lib/reference-registry.sh — start and stop the reference registry
# (distribution/distribution, installed by `scripts/install-tools.sh
# --bench` into .tools/bin/registry) for the benchmarks.
#
#   . scripts/lib/reference-registry.sh
#   ref_start [ROOT]     # serve ROOT (default: a fresh directory) on a free port
#   ...                  # use $REF_URL, $REF_PID, $REF_ROOT, $REF_CONFIG
#   ref_stop             # idempotent; safe in a trap
#
# ref_start writes the registry's own config file (filesystem driver,
# in-memory blob descriptor cache and deletes enabled, as in its example
# configuration; address 127.0.0.1:0 so the kernel picks the port), starts
# ${REF_BIN:-.tools/bin/registry}, reads the bound address from its log and
# waits until GET /v2/ answers 200 (REGISTRY_START_TIMEOUT, default 20 s).
# A ROOT given by the caller is left in place by ref_stop; a fresh one is
# removed with the scratch directory. ROOT s3:PREFIX stores in the bucket
# of the versitygw that scripts/lib/versitygw.sh started (its
# VERSITYGW_* variables), under key PREFIX, with the registry's s3-aws
# driver (distribution v3.1.2's parameter names; otherwise its defaults,
# under which blob GETs answer 307 to a presigned URL of the bucket). ref_stop kills exactly REF_PID (TERM,
# then KILL after 5 s).
# The config is also what `registry garbage-collect $REF_CONFIG` needs.
# The reference registry reads every REGISTRY_* environment variable as a
# config override (REGISTRY_LOG, REGISTRY_ADDR... which scripts/lib/
# registry.sh exports), so run it only through ref_exec.

REF_PID="" REF_SCRATCH="" REF_URL="" REF_ROOT="" REF_LOG="" REF_CONFIG=""

# ref_config ROOT FILE: write the reference registry's config for ROOT
# (a directory, or s3:PREFIX).
ref_config() {
  (umask 077 && _ref_config "$@" >"$2")
}

_ref_config() {
  cat <<YAML
version: 0.1
log:
  level: info
storage:
YAML
  case $1 in
    s3:*)
      cat <<YAML
  s3:
    regionendpoint: $VERSITYGW_ENDPOINT
    region: $VERSITYGW_REGION
    bucket: $VERSITYGW_BUCKET
    accesskey: $VERSITYGW_ACCESS_KEY
    secretkey: $VERSITYGW_SECRET_KEY
    forcepathstyle: true
    secure: false
    rootdirectory: /${1#s3:}
YAML
      ;;
    *) printf '  filesystem:\n    rootdirectory: %s\n' "$1" ;;
  esac
  cat <<YAML
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
YAML
}

# ref_exec CMD...: CMD without any REGISTRY_* environment variable (env
# execs CMD).
ref_exec() {
  local unset=() v
  for v in $(compgen -e); do
    case "$v" in REGISTRY_*) unset+=(-u "$v") ;; esac
  done
  env "${unset[@]}" "$@"
}

ref_start() {
  local bin=${REF_BIN:-.tools/bin/registry} timeout=${REGISTRY_START_TIMEOUT:-20}
  if [ ! -x "$bin" ]; then
    echo "reference registry: $bin is not installed (run scripts/install-tools.sh --bench)" >&2
    return 1
  fi
  if [ -n "$REF_PID" ]; then
    echo "reference registry: already running (pid $REF_PID); ref_stop it first" >&2
    return 1
  fi
  REF_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/refregistry.XXXXXX")
  REF_ROOT=${1:-$REF_SCRATCH/data}
  REF_LOG=$REF_SCRATCH/registry.log
  REF_CONFIG=$REF_SCRATCH/config.yml
  case $REF_ROOT in
    s3:*) ;;
    *) mkdir -p "$REF_ROOT" ;;
  esac
  ref_config "$REF_ROOT" "$REF_CONFIG"
  : >"$REF_LOG"
  local unset=() v
  for v in $(compgen -e); do
    case "$v" in REGISTRY_*) unset+=(-u "$v") ;; esac
  done
  env "${unset[@]}" "$bin" serve "$REF_CONFIG" >"$REF_LOG" 2>&1 &
  REF_PID=$!
  local deadline=$((SECONDS + timeout)) addr=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$REF_PID" 2>/dev/null; then
      _ref_fail "the reference registry exited during startup"
      return 1
    fi
    [ -n "$addr" ] || addr=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$REF_LOG" | head -n 1)
    if [ -n "$addr" ] && [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$addr/v2/" || true)" = 200 ]; then
      REF_URL=http://$addr
      export REF_URL REF_PID REF_ROOT REF_LOG REF_CONFIG
      return 0
    fi
    sleep 0.1
  done
  _ref_fail "the reference registry did not answer GET /v2/ within ${timeout}s (address '${addr:-none}')"
  return 1
}

_ref_fail() {
  echo "reference registry: $1; last lines of its log ($REF_LOG):" >&2
  tail -n 20 "$REF_LOG" >&2 || true
  ref_stop
}

ref_stop() {
  if [ -n "$REF_PID" ]; then
    kill -TERM "$REF_PID" 2>/dev/null || true
    local waited=0
    while [ "$waited" -lt 50 ] && kill -0 "$REF_PID" 2>/dev/null; do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -KILL "$REF_PID" 2>/dev/null || true
    wait "$REF_PID" 2>/dev/null || true
    REF_PID=""
  fi
  if [ -n "$REF_SCRATCH" ]; then
    rm -rf "$REF_SCRATCH"
    REF_SCRATCH=""
  fi
}
