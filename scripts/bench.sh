#!/usr/bin/env bash
# make bench: octoserve against the reference registry (distribution v3.1.2),
# same load generator (bin/octobench, internal/loadgen), same machine, same
# run. Each round starts each registry on loopback with fresh storage, in
# alternating order, and runs every scenario against it; it also measures
# the machine's physical limits, server start on a root of many blobs and
# offline garbage collection of a copy of that root. The samples are
# aggregated into test-results/bench.md (median, min, max, ratios) and
# test-results/bench.png (the ratios).
#
# Environment:
#   BENCH_QUICK=1     small sizes, 2 rounds: about a minute (a smoke test)
#   BENCH_ROUNDS=N    rounds (default 3; quick 2)
#   BENCH_ARGS="..."  extra octobench size flags, e.g. "-big-mib 512 -duration 10s"
#   BENCH_RESULTS     output directory (default test-results)
#   BENCH_KEEP=1      keep the scratch directory (roots, server logs)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/registry.sh
. scripts/lib/registry.sh
# shellcheck source=lib/reference-registry.sh
. scripts/lib/reference-registry.sh

QUICK=${BENCH_QUICK:-0}
ROUNDS=${BENCH_ROUNDS:-3}
RESULTS=${BENCH_RESULTS:-test-results}
OCTOBENCH=${OCTOBENCH_BIN:-bin/octobench}
OCTOSERVE=${OCTOSERVE_BIN:-bin/octoserve}
# The same octoserve built to serve blobs with sendfile (the pull A/B);
# only the pull scenarios run against it.
OCTOSERVE_SENDFILE=${OCTOSERVE_SENDFILE_BIN:-bin/octoserve-sendfile}
REFERENCE=${REF_BIN:-.tools/bin/registry}
read -r -a ARGS <<<"${BENCH_ARGS:-}"
if [ "$QUICK" = 1 ]; then
  ROUNDS=${BENCH_ROUNDS:-2}
  ARGS=(-quick "${ARGS[@]}")
fi

for bin in "$OCTOBENCH" "$OCTOSERVE" "$OCTOSERVE_SENDFILE" "$REFERENCE"; do
  [ -x "$bin" ] || { echo "bench: $bin is missing (make bench builds and installs it)" >&2; exit 1; }
done
mkdir -p "$RESULTS"
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/octoserve-bench.XXXXXX")
# The load generator is one client address opening up to 1,000
# connections; octoserve's per-address bound (http.maxConnsPerClient,
# 100 by default) would refuse most, and the reference registry has none.
BENCH_CONFIG=$SCRATCH/octoserve-bench.yaml
printf 'http:\n  maxConnsPerClient: 0\n' >"$BENCH_CONFIG"
SAMPLES=$SCRATCH/samples.jsonl

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local status=$?
  set +e
  trap '' INT TERM
  registry_stop
  ref_stop
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

# run_target NAME ROUND: every registry scenario against a fresh server.
run_target() {
  local name=$1 round=$2
  case "$name" in
    octoserve)
      OCTOSERVE_BIN=$OCTOSERVE REGISTRY_DATA='' registry_start --config "$BENCH_CONFIG"
      bench run -target octoserve -round "$round" -url "$REGISTRY_URL" -pid "$REGISTRY_PID" ||
        { tail -n 20 "$REGISTRY_LOG" >&2; return 1; }
      registry_stop
      ;;
    octoserve-sendfile)
      OCTOSERVE_BIN=$OCTOSERVE_SENDFILE REGISTRY_DATA='' registry_start --config "$BENCH_CONFIG"
      bench run -target octoserve-sendfile -round "$round" -url "$REGISTRY_URL" -pid "$REGISTRY_PID" -steps big,image ||
        { tail -n 20 "$REGISTRY_LOG" >&2; return 1; }
      registry_stop
      ;;
    reference)
      ref_start
      bench run -target reference -round "$round" -url "$REF_URL" -pid "$REF_PID" ||
        { tail -n 20 "$REF_LOG" >&2; return 1; }
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

header() {
  local quick="full"
  [ "$QUICK" = 1 ] && quick="quick (BENCH_QUICK=1: small sizes, a smoke test)"
  cat <<MD
# make bench: octoserve vs the reference registry

- When: $(date -u '+%Y-%m-%d %H:%M UTC'); octoserve $(git describe --tags --always --dirty 2>/dev/null || echo dev); reference registry v3.1.2 (distribution, filesystem driver, in-memory blob descriptor cache)
- Machine: $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)), $(uname -sr), $(go version | cut -d' ' -f3)
- Run: $ROUNDS rounds, alternating which registry goes first; $quick; extra flags: ${BENCH_ARGS:-none}
- Sizes: $("$OCTOBENCH" sizes "${ARGS[@]}")
- Both registries on loopback with fresh storage in $(dirname "$SCRATCH"), started by scripts/bench.sh; octoserve fsyncs every blob, manifest and tag it acknowledges, the reference registry does not.
- Every figure is the median of the rounds (min–max beside it). The ratio is octoserve / reference; for lower-is-better rows (times, memory) a ratio below 1 means octoserve is ahead.

MD
}

start=$SECONDS
fill_root octoserve
fill_root reference
for round in $(seq 1 "$ROUNDS"); do
  order=(octoserve-sendfile octoserve reference)
  [ $((round % 2)) = 0 ] && order=(reference octoserve octoserve-sendfile)
  echo "bench: round $round of $ROUNDS (${order[*]})"
  for name in "${order[@]}"; do run_target "$name" "$round"; done
  bench limits -target limit -round "$round" -dir "$SCRATCH"
  for name in octoserve reference; do gc_target "$name" "$round"; done
done
header >"$SCRATCH/header.md"
cp "$SAMPLES" "$RESULTS/bench-samples.jsonl"
"$OCTOBENCH" report -samples "$SAMPLES" -header "$SCRATCH/header.md" -md "$RESULTS/bench.md" -png "$RESULTS/bench.png"
echo "bench: done in $((SECONDS - start)) s; report in $RESULTS/bench.md, chart in $RESULTS/bench.png"
