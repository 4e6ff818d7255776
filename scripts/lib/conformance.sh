# shellcheck shell=bash
# scripts/lib/conformance.sh — what both conformance runners share: running
# a suite so that a signal stops it, and summarising its junit.xml.

SUITE_PID=""

# run_suite LOG CMD...: runs CMD in the background (so that INT and TERM
# reach this shell's traps at once), copying its output to the terminal and
# to LOG; returns CMD's exit status.
run_suite() {
  local log=$1
  shift
  "$@" > >(tee "$log") 2>&1 &
  SUITE_PID=$!
  local status=0
  wait "$SUITE_PID" || status=$?
  SUITE_PID=""
  return "$status"
}

# stop_suite: kills a suite still running (from a trap).
stop_suite() {
  if [ -n "$SUITE_PID" ]; then
    kill -TERM "$SUITE_PID" 2>/dev/null || true
    wait "$SUITE_PID" 2>/dev/null || true
    SUITE_PID=""
  fi
}

# conformance_traps NAME RESULTS WORK: on exit, whatever the cause, stop
# the suite and the server, keep the server log in RESULTS and remove WORK;
# INT and TERM exit at once with 130 and 143.
conformance_traps() {
  _CONFORMANCE_NAME=$1 _CONFORMANCE_RESULTS=$2 _CONFORMANCE_WORK=$3
  trap _conformance_cleanup EXIT
  trap 'echo "$_CONFORMANCE_NAME: interrupted" >&2; exit 130' INT
  trap 'echo "$_CONFORMANCE_NAME: terminated" >&2; exit 143' TERM
}

# shellcheck disable=SC2317 # called by the EXIT trap
_conformance_cleanup() {
  set +e
  stop_suite
  if [ -n "${REGISTRY_LOG:-}" ] && [ -f "$REGISTRY_LOG" ]; then
    cp "$REGISTRY_LOG" "$_CONFORMANCE_RESULTS/octoserve.log"
  fi
  registry_stop
  rm -rf "$_CONFORMANCE_WORK"
}

# junit_summary FILE KIND: prints passed/failed/skipped per group — the
# workflow for KIND=A (2023 suite), the top-level test for KIND=B (2026
# suite) — and the failed specs by name; sets JUNIT_PASSED, JUNIT_FAILED
# and JUNIT_SKIPPED.
junit_summary() {
  local file=$1 kind=$2 out totals
  out=$(awk -v kind="$kind" '
    function attr(tag, key,   re) {
      re = " " key "=\"[^\"]*\""
      if (!match(tag, re)) return ""
      return substr(tag, RSTART + length(key) + 3, RLENGTH - length(key) - 4)
    }
    function unxml(s) {
      gsub(/&#34;|&quot;/, "\"", s); gsub(/&#39;|&apos;/, "'"'"'", s)
      gsub(/&lt;/, "<", s); gsub(/&gt;/, ">", s); gsub(/&amp;/, "\\&", s)
      return s
    }
    function group(name,   g, w) {
      g = name
      if (kind == "A") {
        sub(/^\[[A-Za-z]+\] /, "", g)
        if (!sub(/^OCI Distribution Conformance Tests /, "", g)) return "(suite)"
        if (g ~ /^Content Discovery/) return "Content Discovery"
        if (g ~ /^Content Management/) return "Content Management"
        split(g, w, " ")
        return w[1]
      }
      sub(/^OCI Conformance Test\/?/, "", g)
      split(g, w, "/")
      return w[1] == "" ? "(suite)" : w[1]
    }
    /<testcase / {
      if (!match($0, /<testcase [^>]*>/)) next
      tag = substr($0, RSTART, RLENGTH)
      name = unxml(attr(tag, "name")); st = attr(tag, "status"); g = group(name)
      if (!(g in seen)) { seen[g] = 1; order[++n] = g }
      if (st == "passed") pass[g]++
      else if (st ~ /^(skipped|disabled|pending)$/) skip[g]++
      else { fail[g]++; failed[++nf] = name " [" st "]" }
    }
    END {
      printf "  %-36s %7s %7s %7s\n", "", "passed", "failed", "skipped"
      for (i = 1; i <= n; i++) {
        g = order[i]
        printf "  %-36s %7d %7d %7d\n", g, pass[g], fail[g], skip[g]
        if (g != "(suite)") { P += pass[g]; F += fail[g]; S += skip[g] }
      }
      if (nf) { print "Failed specs:"; for (i = 1; i <= nf; i++) print "  - " failed[i] }
      printf "TOTALS %d %d %d\n", P, F, S
    }' "$file")
  printf '%s\n' "$out" | grep -v '^TOTALS '
  totals=$(printf '%s\n' "$out" | sed -n 's/^TOTALS //p')
  # shellcheck disable=SC2034 # read by the caller
  read -r JUNIT_PASSED JUNIT_FAILED JUNIT_SKIPPED <<<"$totals"
}
