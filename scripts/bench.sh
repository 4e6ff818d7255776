#!/usr/bin/env bash
# make bench: octoserve measured against a baseline, same load generator
# (bin/octobench, internal/loadgen), same machine, same run, in sections:
#
#   local     octoserve against the reference registry (distribution
#             v3.1.2) on local disks, every scenario, the machine's
#             physical limits, server start on a root of many blobs and
#             offline garbage collection of a copy of it (issue 13)
#   s3        octoserve against the reference registry's s3-aws driver,
#             both on one versitygw (issue 11)
#   replicas  one octoserve on the bucket directly, and one, two and three
#             replicas of it behind HAProxy (issue 12)
#   metrics   octoserve with metrics on against metrics off, both running
#             at once, the load alternating between them (issue 15)
#   cache     a big blob's first pull through octoserve as a pull-through
#             cache of the reference registry, against pulling it from the
#             reference registry directly (issue 16)
#
# Each round runs every selected section; within a section each target is
# started on loopback with fresh storage (octoserve through
# scripts/lib/registry.sh, replicas through scripts/lib/replicas.sh, the
# reference registry through scripts/lib/reference-registry.sh, versitygw
# through scripts/lib/versitygw.sh), in an order that alternates from
# round to round, and stopped by PID. The samples are aggregated into
# test-results/bench.md (median, min, max, ratios) and
# test-results/bench.png (the ratios).
#
# Environment:
#   BENCH_SECTIONS=a,b  sections to run (default all: local,s3,replicas,metrics,cache)
#   BENCH_QUICK=1       small sizes, 2 rounds: a smoke test of every section
#   BENCH_ROUNDS=N      rounds (default 3; quick 2)
#   BENCH_ARGS="..."    extra octobench size flags, e.g. "-big-mib 512 -duration 10s"
#   BENCH_RESULTS       output directory (default test-results)
#   BENCH_KEEP=1        keep the scratch directory (roots, server logs)
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_SECTIONS=(local s3 replicas metrics cache)
IFS=, read -r -a SECTIONS <<<"${BENCH_SECTIONS:-$(
  IFS=,
  echo "${ALL_SECTIONS[*]}"
)}"
for s in "${SECTIONS[@]}"; do
  if ! printf '%s\n' "${ALL_SECTIONS[@]}" | grep -qx -- "$s"; then
    echo "bench: unknown section '$s' (sections: ${ALL_SECTIONS[*]})" >&2
    exit 2
  fi
done
# selected SECTION...: whether any of them runs.
selected() {
  local s
  for s in "$@"; do
    printf '%s\n' "${SECTIONS[@]}" | grep -qx -- "$s" && return 0
  done
  return 1
}

QUICK=${BENCH_QUICK:-0}
ROUNDS=${BENCH_ROUNDS:-3}
RESULTS=${BENCH_RESULTS:-test-results}
OCTOBENCH=${OCTOBENCH_BIN:-bin/octobench}
OCTOSERVE=${OCTOSERVE_BIN:-bin/octoserve}
# The same octoserve built to serve blobs with sendfile (the local
# section's pull A/B); only the pull scenarios run against it.
OCTOSERVE_SENDFILE=${OCTOSERVE_SENDFILE_BIN:-bin/octoserve-sendfile}
REF_GIVEN=${REF_BIN:-}
REFERENCE=${REF_BIN:-.tools/bin/registry}
export REF_BIN=$REFERENCE
read -r -a ARGS <<<"${BENCH_ARGS:-}"
if [ "$QUICK" = 1 ]; then
  ROUNDS=${BENCH_ROUNDS:-2}
  ARGS=(-quick "${ARGS[@]}")
fi

# The tools the sections need, installed (go install, into .tools/bin)
# when missing: versitygw builds in about ten minutes the first time.
tools=()
if selected local s3 cache && [ -z "$REF_GIVEN" ]; then tools+=(registry); fi
if selected s3 replicas && [ -z "${VERSITYGW_BIN:-}" ]; then tools+=(versitygw); fi
[ ${#tools[@]} -eq 0 ] || scripts/install-tools.sh "${tools[@]}"
need=("$OCTOBENCH" "$OCTOSERVE")
if selected local; then need+=("$OCTOSERVE_SENDFILE"); fi
if selected local s3 cache; then need+=("$REFERENCE"); fi
for bin in "${need[@]}"; do
  [ -x "$bin" ] || { echo "bench: $bin is missing (make bench builds and installs it)" >&2; exit 1; }
done
if selected replicas && ! command -v "${HAPROXY_BIN:-haproxy}" >/dev/null 2>&1; then
  echo "bench: the replicas section needs HAProxy: apt-get install haproxy" >&2
  exit 1
fi

# shellcheck source=lib/registry.sh
. scripts/lib/registry.sh
# shellcheck source=lib/reference-registry.sh
. scripts/lib/reference-registry.sh
# shellcheck source=lib/versitygw.sh
. scripts/lib/versitygw.sh
# shellcheck source=lib/replicas.sh
. scripts/lib/replicas.sh
# The balancer as docs/scale-out.md shows it: no per-request log.
export HAPROXY_REQUEST_LOG=0

mkdir -p "$RESULTS"
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-bench.XXXXXX")
# The load generator is one client address opening up to 1,000
# connections; octoserve's per-address bound (http.maxConnsPerClient,
# 100 by default) would refuse most, and the reference registry has none.
BENCH_CONFIG=$SCRATCH/octoserve-bench.yaml
printf 'http:\n  maxConnsPerClient: 0\n' >"$BENCH_CONFIG"
SAMPLES=$SCRATCH/samples.jsonl
# The two servers of the metrics section, running at once; the paced link
# of the cache section.
PAIR_PIDS=() PAIR_SCRATCH=() PACE_PID="" PACE_URL=""

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local status=$? i
  set +e
  trap '' INT TERM
  registry_stop
  ref_stop
  replicas_stop
  pace_stop
  for i in "${!PAIR_PIDS[@]}"; do
    registry_stop_pid "${PAIR_PIDS[$i]}" "${PAIR_SCRATCH[$i]}"
  done
  versitygw_stop
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "bench: scratch kept in $SCRATCH" >&2
  else
    rm -rf "$SCRATCH"
  fi
  return "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bench COMMAND FLAGS... [-- ARGS]: octobench with the size flags and the samples file.
bench() { "$OCTOBENCH" "$1" "${ARGS[@]}" -samples "$SAMPLES" "${@:2}"; }

# alternate ROUND NAME...: the names, reversed in even rounds.
alternate() {
  local round=$1
  shift
  if [ $((round % 2)) = 0 ]; then
    printf '%s\n' "$@" | tac | tr '\n' ' '
  else
    echo "$*"
  fi
}

# fail_log FILE: the end of a server's log, after a failed run.
fail_log() {
  tail -n 20 "$1" >&2
  return 1
}

# ---- local: octoserve against the reference registry on local disks

# local_target NAME ROUND: every registry scenario against a fresh server.
local_target() {
  local name=$1 round=$2
  case "$name" in
    octoserve)
      OCTOSERVE_BIN=$OCTOSERVE REGISTRY_DATA='' registry_start --config "$BENCH_CONFIG"
      bench run -target octoserve -round "$round" -url "$REGISTRY_URL" -pid "$REGISTRY_PID" || fail_log "$REGISTRY_LOG"
      registry_stop
      ;;
    octoserve-sendfile)
      OCTOSERVE_BIN=$OCTOSERVE_SENDFILE REGISTRY_DATA='' registry_start --config "$BENCH_CONFIG"
      bench run -target octoserve-sendfile -round "$round" -url "$REGISTRY_URL" -pid "$REGISTRY_PID" -steps big,image ||
        fail_log "$REGISTRY_LOG"
      registry_stop
      ;;
    reference)
      ref_start
      bench run -target reference -round "$round" -url "$REF_URL" -pid "$REF_PID" || fail_log "$REF_LOG"
      ref_stop
      ;;
  esac
}

# fill_root NAME: push the garbage-collection root once, through the API.
fill_root() {
  local name=$1 root=$SCRATCH/gc-$1
  echo "bench: filling the garbage-collection root of $name"
  case "$name" in
    octoserve)
      OCTOSERVE_BIN=$OCTOSERVE REGISTRY_DATA=$root registry_start --config "$BENCH_CONFIG"
      bench fill -url "$REGISTRY_URL"
      registry_stop
      ;;
    reference)
      ref_start "$root"
      bench fill -url "$REF_URL"
      ref_stop
      ;;
  esac
}

# gc_target NAME ROUND: start time on a copy of the filled root, then an
# offline collection of that copy.
gc_target() {
  local name=$1 round=$2 copy=$SCRATCH/gc-copy log=$SCRATCH/gc-$1.log
  rm -rf "$copy"
  cp -a "$SCRATCH/gc-$name" "$copy"
  case "$name" in
    octoserve)
      bench start -target octoserve -round "$round" -log "$log" -- \
        "$OCTOSERVE" serve --addr 127.0.0.1:0 --root "$copy"
      bench time -scenario gc -target octoserve -round "$round" -log "$log" -- \
        "$OCTOSERVE" gc --root "$copy" --min-age 0
      ;;
    reference)
      ref_config "$copy" "$SCRATCH/gc-config.yml"
      ref_exec "$OCTOBENCH" start "${ARGS[@]}" -samples "$SAMPLES" -target reference -round "$round" -log "$log" -- \
        "$REFERENCE" serve "$SCRATCH/gc-config.yml"
      ref_exec "$OCTOBENCH" time "${ARGS[@]}" -samples "$SAMPLES" -scenario gc -target reference -round "$round" -log "$log" -- \
        "$REFERENCE" garbage-collect "$SCRATCH/gc-config.yml"
      ;;
  esac
  rm -rf "$copy"
}

section_local() {
  local round=$1 name
  for name in $(alternate "$round" octoserve-sendfile octoserve reference); do
    local_target "$name" "$round"
  done
  bench limits -target limit -round "$round" -dir "$SCRATCH"
  for name in octoserve reference; do gc_target "$name" "$round"; done
}

# ---- s3 and replicas: on one versitygw, a fresh key prefix per target

# s3_store NAME: a storage file for octoserve on the bucket under a fresh
# prefix; prints its path.
s3_store() {
  local prefix
  prefix=bench-$1-$(_versitygw_random 4)
  versitygw_storage_config "$SCRATCH/$prefix.yaml" "$prefix"
  echo "$SCRATCH/$prefix.yaml"
}

# Every registry scenario runs on the bucket (octobench run without
# -steps), but not the garbage-collection root: filling 100,000 blobs
# into a bucket through the API takes hours here (make test-s3 proves gc
# on the bucket). The CPU time per request counts the registry and
# versitygw.
s3_target() {
  local name=$1 round=$2 store
  case "$name" in
    s3-octoserve)
      store=$(s3_store "$name")
      REGISTRY_STORAGE_CONFIG=$store registry_start --config "$BENCH_CONFIG"
      bench run -target "$name" -round "$round" -url "$REGISTRY_URL" -pid "$REGISTRY_PID" \
        -cpu-pids "$REGISTRY_PID,$VERSITYGW_PID" || fail_log "$REGISTRY_LOG"
      registry_stop
      ;;
    s3-octoserve-redirect) # the pull scenarios only
      store=$(s3_store "$name")
      echo '    redirect: true' >>"$store"
      REGISTRY_STORAGE_CONFIG=$store registry_start --config "$BENCH_CONFIG"
      bench run -target "$name" -round "$round" -url "$REGISTRY_URL" -pid "$REGISTRY_PID" -steps big,image ||
        fail_log "$REGISTRY_LOG"
      registry_stop
      ;;
    s3-reference)
      ref_start "s3:bench-reference-$(_versitygw_random 4)"
      bench run -target "$name" -round "$round" -url "$REF_URL" -pid "$REF_PID" \
        -cpu-pids "$REF_PID,$VERSITYGW_PID" || fail_log "$REF_LOG"
      ref_stop
      ;;
  esac
}

section_s3() {
  local round=$1 name
  for name in $(alternate "$round" s3-octoserve s3-octoserve-redirect s3-reference); do
    s3_target "$name" "$round"
  done
}

# What the replicas section measures: throughput of big and small pushes,
# pulls, manifest and tag-list GETs, single-request latency, a chunked
# upload whose requests each replica may answer; and the CPU time per
# request of every serving process: the replicas, the balancer, versitygw.
REPLICA_STEPS=big,small,meta,latency,image,chunked

replicas_target() {
  local name=$1 round=$2 store n pids
  store=$(s3_store "$name")
  case "$name" in
    replicas-direct)
      REGISTRY_STORAGE_CONFIG=$store registry_start --config "$BENCH_CONFIG"
      bench run -target "$name" -round "$round" -url "$REGISTRY_URL" -steps "$REPLICA_STEPS" \
        -cpu-pids "$REGISTRY_PID,$VERSITYGW_PID" || fail_log "$REGISTRY_LOG"
      registry_stop
      ;;
    replicas-lb*)
      n=${name#replicas-lb}
      replicas_start "$n" "$store" --config "$BENCH_CONFIG"
      pids=$(IFS=, && echo "${REPLICA_PIDS[*]},$HAPROXY_PID,$VERSITYGW_PID")
      bench run -target "$name" -round "$round" -url "$HAPROXY_URL" -steps "$REPLICA_STEPS" -cpu-pids "$pids" ||
        fail_log "${REPLICA_LOGS[0]}"
      replicas_stop
      ;;
  esac
}

section_replicas() {
  local round=$1 name
  for name in $(alternate "$round" replicas-direct replicas-lb1 replicas-lb2 replicas-lb3); do
    replicas_target "$name" "$round"
  done
}

# ---- metrics: on against off, both running, the load alternating

METRICS_CONFIG=$SCRATCH/metrics-on.yaml
printf 'metrics:\n  addr: 127.0.0.1:0\n' >"$METRICS_CONFIG"

# pair_start CONFIG...: an octoserve on a fresh local root kept running
# beside others; sets PAIR_URL, PAIR_LOG and PAIR_PID.
pair_start() {
  local args=() c
  for c in "$@"; do args+=(--config "$c"); done
  REGISTRY_DATA='' registry_start "${args[@]}"
  PAIR_PIDS+=("$REGISTRY_PID") PAIR_SCRATCH+=("$REGISTRY_SCRATCH")
  PAIR_URL=$REGISTRY_URL PAIR_LOG=$REGISTRY_LOG PAIR_PID=$REGISTRY_PID
  registry_detach
}

pair_stop() {
  local i
  for i in "${!PAIR_PIDS[@]}"; do
    registry_stop_pid "${PAIR_PIDS[$i]}" "${PAIR_SCRATCH[$i]}"
  done
  PAIR_PIDS=() PAIR_SCRATCH=()
}

# metrics_counted LOG: how many requests the /metrics of the octoserve
# that wrote LOG counted (nothing when it serves no metrics).
metrics_counted() {
  local addr
  addr=$(sed -n 's/.*metrics and debug address listening.* addr=\([0-9.]*:[0-9]*\).*/\1/p' "$1" | head -n 1)
  [ -n "$addr" ] || return 0
  curl -sf -m 10 "http://$addr/metrics" | awk '/^octoserve_http_requests_total\{/ { n += $NF } END { print n + 0 }'
}

section_metrics() {
  local round=$1 off_url off_log off_pid on_url on_log on_pid counted
  pair_start "$BENCH_CONFIG"
  off_url=$PAIR_URL off_log=$PAIR_LOG off_pid=$PAIR_PID
  pair_start "$BENCH_CONFIG" "$METRICS_CONFIG"
  on_url=$PAIR_URL on_log=$PAIR_LOG on_pid=$PAIR_PID
  bench pair -round "$round" -target metrics-off -url "$off_url" -pid "$off_pid" \
    -target-b metrics-on -url-b "$on_url" -pid-b "$on_pid" ||
    { tail -n 20 "$off_log" "$on_log" >&2; return 1; }
  # The A/B is only one if exactly one side measured its requests.
  if [ -n "$(metrics_counted "$off_log")" ]; then
    echo "bench: the metrics-off octoserve serves metrics" >&2
    return 1
  fi
  counted=$(metrics_counted "$on_log") || counted=0
  if [ "${counted:-0}" -lt 100 ]; then
    echo "bench: the metrics-on octoserve counted ${counted:-no} requests" >&2
    return 1
  fi
  echo "bench: metrics-on counted $counted requests"
  pair_stop
}

# ---- cache: first pull through octoserve mirroring the reference registry

# pace_start URL: `octobench pace` in front of URL, its responses paced to
# 1 Gbit/s; sets PACE_URL and PACE_PID.
pace_start() {
  local out=$SCRATCH/pace.out addr="" deadline=$((SECONDS + 30))
  : >"$out"
  "$OCTOBENCH" pace -to "$1" -rate 125e6 >"$out" 2>&1 &
  PACE_PID=$!
  while [ -z "$addr" ]; do
    if ! kill -0 "$PACE_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "bench: octobench pace did not start:" >&2
      cat "$out" >&2
      return 1
    fi
    sleep 0.1
    addr=$(grep -m 1 -xE '[0-9.]+:[0-9]+' "$out" || true)
  done
  PACE_URL=http://$addr
}

pace_stop() {
  if [ -n "$PACE_PID" ]; then
    kill -TERM "$PACE_PID" 2>/dev/null || true
    wait "$PACE_PID" 2>/dev/null || true
    PACE_PID=""
  fi
}

# One octoserve mirrors the upstream twice: directly (prefix loopback)
# and through the paced link (prefix paced).
section_cache() {
  local round=$1 mirror=$SCRATCH/mirror.yaml
  ref_start
  pace_start "$REF_URL"
  printf 'proxy:\n  upstreams:\n    - prefix: loopback\n      url: %s\n    - prefix: paced\n      url: %s\n' \
    "$REF_URL" "$PACE_URL" >"$mirror"
  REGISTRY_DATA='' registry_start --config "$BENCH_CONFIG" --config "$mirror"
  bench cache -round "$round" -upstream "$REF_URL" -url "$REGISTRY_URL" -prefix loopback ||
    { tail -n 20 "$REGISTRY_LOG" "$REF_LOG" >&2; return 1; }
  bench cache -round "$round" -paced -upstream "$PACE_URL" -origin "$REF_URL" -url "$REGISTRY_URL" -prefix paced ||
    { tail -n 20 "$REGISTRY_LOG" "$REF_LOG" >&2; return 1; }
  registry_stop
  pace_stop
  ref_stop
}

# ---- the run

header() {
  local quick="full"
  [ "$QUICK" = 1 ] && quick="quick (BENCH_QUICK=1: small sizes, a smoke test)"
  cat <<MD
# make bench

- When: $(date -u '+%Y-%m-%d %H:%M UTC'); octoserve $(git describe --tags --always --dirty 2>/dev/null || echo dev); reference registry v3.1.2 (distribution; filesystem or s3-aws driver, in-memory blob descriptor cache)$(selected s3 replicas && echo "; versitygw $(sed 's/.*@//' .tools/stamps/versitygw 2>/dev/null) (posix backend)")$(selected replicas && echo "; $(haproxy -v 2>/dev/null | head -n 1)")
- Machine: $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)), $(uname -sr), $(go version | cut -d' ' -f3)
- Sections: ${SECTIONS[*]}; $ROUNDS rounds, alternating the order of the targets; $quick; extra flags: ${BENCH_ARGS:-none}
- Sizes: $("$OCTOBENCH" sizes "${ARGS[@]}")
- Every server on loopback with fresh storage in $(dirname "$SCRATCH"), started and stopped by scripts/bench.sh; octoserve fsyncs every blob, manifest and tag it acknowledges on a local disk, the reference registry does not.
- Every figure is the median of the rounds (min–max beside it). A ratio is a figure over its baseline's; for lower-is-better rows (times, memory) a ratio below 1 is the better one.

MD
}

start=$SECONDS
if selected local; then
  fill_root octoserve
  fill_root reference
fi
if selected s3 replicas; then
  versitygw_start
  echo "bench: versitygw at $VERSITYGW_ENDPOINT, bucket $VERSITYGW_BUCKET"
fi
for round in $(seq 1 "$ROUNDS"); do
  for section in "${SECTIONS[@]}"; do
    echo "bench: round $round of $ROUNDS: $section"
    t=$SECONDS
    "section_$section" "$round"
    echo "bench: round $round: $section done in $((SECONDS - t)) s"
  done
done
header >"$SCRATCH/header.md"
cp "$SAMPLES" "$RESULTS/bench-samples.jsonl"
"$OCTOBENCH" report -samples "$SAMPLES" -header "$SCRATCH/header.md" -md "$RESULTS/bench.md" -png "$RESULTS/bench.png"
echo "bench: done in $((SECONDS - start)) s; report in $RESULTS/bench.md, chart in $RESULTS/bench.png"
