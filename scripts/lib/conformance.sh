# shellcheck shell=bash
# scripts/lib/conformance.sh — what both conformance runners share: running
# a suite so that a signal stops it, cleaning up, and summarising results.
# Needs scripts/lib/registry.sh sourced first.

SUITE_PID="" SUITE_TEE_PID=""

# suite_binary NAME PATH: prints the absolute path of a built suite, or
# says how to build it and exits 2.
suite_binary() {
  if [ ! -x "$2" ]; then
    echo "$1: $2 is not built: run make build-conformance" >&2
    exit 2
  fi
  realpath "$2"
}

# At most this many distinct failed specs are listed in a summary.
CONFORMANCE_MAX_LISTED=${CONFORMANCE_MAX_LISTED:-20}

# run_suite LOG CMD...: runs CMD in the background (so that INT and TERM
# reach this shell's traps at once), copying its output to the terminal and
# to LOG; returns CMD's exit status once LOG holds all of its output. The
# copy is a tee of our own, fed through a FIFO next to LOG, so that it can
# be waited for: the caller reads LOG (the 2026 verdict is in its last
# lines) and a tee still writing would be a race.
run_suite() {
  local log=$1 fifo=$1.fifo
  shift
  rm -f "$fifo"
  mkfifo "$fifo"
  tee "$log" <"$fifo" &
  SUITE_TEE_PID=$!
  "$@" >"$fifo" 2>&1 &
  SUITE_PID=$!
  local status=0
  wait "$SUITE_PID" || status=$?
  SUITE_PID=""
  wait_suite_tee
  rm -f "$fifo"
  return "$status"
}

# wait_suite_tee: waits for the copy of the suite's output to end (it ends
# when the suite, the only writer, has exited).
wait_suite_tee() {
  if [ -n "$SUITE_TEE_PID" ]; then
    wait "$SUITE_TEE_PID" 2>/dev/null || true
    SUITE_TEE_PID=""
  fi
}

# stop_suite: kills a suite still running (from a trap) and waits for it
# and for the copy of its output.
stop_suite() {
  if [ -n "$SUITE_PID" ]; then
    kill -TERM "$SUITE_PID" 2>/dev/null || true
    wait "$SUITE_PID" 2>/dev/null || true
    SUITE_PID=""
  fi
  wait_suite_tee
}

# conformance_traps NAME RESULTS WORK: on exit, whatever the cause, stop
# the suite and the server, keep the server log in RESULTS and remove WORK;
# INT and TERM exit at once with 130 and 143.
conformance_traps() {
  _CONFORMANCE_NAME=$1 _CONFORMANCE_RESULTS=$2 _CONFORMANCE_WORK=$3
  registry_trap _conformance_cleanup
  trap 'echo "$_CONFORMANCE_NAME: interrupted" >&2; exit 130' INT
  trap 'echo "$_CONFORMANCE_NAME: terminated" >&2; exit 143' TERM
}

# shellcheck disable=SC2317 # called by the EXIT trap (before registry_stop)
_conformance_cleanup() {
  stop_suite
  if [ -n "${REGISTRY_LOG:-}" ] && [ -f "$REGISTRY_LOG" ]; then
    cp "$REGISTRY_LOG" "$_CONFORMANCE_RESULTS/octoserve.log"
  fi
  rm -rf "$_CONFORMANCE_WORK"
}

# junit_summary FILE KIND: prints passed/failed/skipped per group — the
# workflow for KIND=A (2023 suite), the top-level test for KIND=B (2026
# suite) — and the failed specs by name (each once, with a count when it
# failed several times; at most CONFORMANCE_MAX_LISTED); sets JUNIT_PASSED,
# JUNIT_FAILED and JUNIT_SKIPPED (suite-level entries such as Ginkgo's
# report hooks count only when they fail).
junit_summary() {
  local file=$1 kind=$2 out totals
  out=$(awk -v kind="$kind" -v max="$CONFORMANCE_MAX_LISTED" '
    function attr(tag, key,   re) {
      re = " " key "=\"[^\"]*\""
      if (!match(tag, re)) return ""
      return substr(tag, RSTART + length(key) + 3, RLENGTH - length(key) - 4)
    }
    function unxml(s) {
      gsub(/&#34;|&quot;/, "\"", s); gsub(/&#39;|&apos;/, "'"'"'", s)
      gsub(/&#xA;|&#10;/, " ", s)
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
      else {
        fail[g]++
        key = name " [" st "]"
        if (!(key in times)) failed[++nf] = key
        times[key]++
      }
    }
    END {
      # Many groups and a failure: show only the groups that did not pass.
      for (i = 1; i <= n; i++) if (fail[order[i]]) short = (n > 10)
      printf "  %-36s %7s %7s %7s\n", "", "passed", "failed", "skipped"
      for (i = 1; i <= n; i++) {
        g = order[i]
        if (g == "(suite)" && !fail[g]) continue # report hooks, when they pass
        if (!short || fail[g] || skip[g]) printf "  %-36s %7d %7d %7d\n", g, pass[g], fail[g], skip[g]
        else hidden++
        F += fail[g]
        if (g != "(suite)") { P += pass[g]; S += skip[g] }
      }
      if (hidden) printf "  (and %d groups in which every test passed)\n", hidden
      if (nf) {
        print "Failed specs:"
        for (i = 1; i <= nf && i <= max; i++)
          print "  - " failed[i] (times[failed[i]] > 1 ? " x" times[failed[i]] : "")
        if (nf > max) printf "  ... and %d more (see the reports)\n", nf - max
      }
      printf "TOTALS %d %d %d\n", P, F, S
    }' "$file")
  printf '%s\n' "$out" | grep -v '^TOTALS '
  totals=$(printf '%s\n' "$out" | sed -n 's/^TOTALS //p')
  # shellcheck disable=SC2034 # read by the caller
  read -r JUNIT_PASSED JUNIT_FAILED JUNIT_SKIPPED <<<"$totals"
}

# v2_result LOG: reads the verdict block the 2026 suite prints on stdout
# ("OCI Conformance Result: X" and its Disabled/Skip/Pass/FAIL/Error/Total
# counts), which it prints even when it cannot write its reports; sets
# V2_RESULT (empty if the block is missing) and V2_DISABLED, V2_SKIP,
# V2_PASS, V2_FAIL, V2_ERROR, V2_TOTAL (0 when missing).
# shellcheck disable=SC2034 # the V2_* variables are read by the caller
v2_result() {
  local log=$1 line
  V2_RESULT=$(sed -n 's/^OCI Conformance Result: *//p' "$log" | tail -n 1)
  V2_DISABLED=0 V2_SKIP=0 V2_PASS=0 V2_FAIL=0 V2_ERROR=0 V2_TOTAL=0
  while IFS= read -r line; do
    case $line in
      Disabled:*) V2_DISABLED=${line#*:} ;;
      Skip:*) V2_SKIP=${line#*:} ;;
      Pass:*) V2_PASS=${line#*:} ;;
      FAIL:*) V2_FAIL=${line#*:} ;;
      Error:*) V2_ERROR=${line#*:} ;;
      Total:*) V2_TOTAL=${line#*:} ;;
    esac
  done < <(sed -n '/^OCI Conformance Result:/,/^$/{s/^  *//; s/\.*: */:/p}' "$log")
}

# v2_failing_checks LOG: from the 2026 suite's result tree on stdout, the
# failing checks (the last part of a failed test's name, e.g. blob-delete)
# with how often each failed and the first error it gave, most frequent
# first; prints nothing when none failed.
v2_failing_checks() {
  awk '
    /: (FAIL|Error)$/ { name = $0; sub(/^ */, "", name); sub(/: (FAIL|Error)$/, "", name); next }
    /^ *- / && name != "" {
      n = split(name, part, "/"); check = part[n]
      msg = $0; sub(/^ *- /, "", msg)
      if (!(check in count)) { first[check] = msg; order[++k] = check }
      count[check]++; name = ""; next
    }
    { name = "" }
    END {
      if (!k) exit
      print "Failing checks (times failed, first error):"
      for (i = 1; i <= k; i++) {
        c = order[i]; m = first[c]
        if (length(m) > 100) m = substr(m, 1, 97) "..."
        printf "  %5d  %-28s %s\n", count[c], c, m
      }
    }' "$1" | { sort_failing_checks; }
}

# Keeps the heading first and orders the rest by count, highest first.
sort_failing_checks() {
  local head
  IFS= read -r head || return 0
  printf '%s\n' "$head"
  sort -k1,1nr -s | head -n 10
}
