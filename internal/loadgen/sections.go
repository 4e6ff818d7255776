package loadgen

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Column is one target of a section's table.
type Column struct {
	Target string
	Label  string
}

// Section is a part of the report beyond octoserve against the reference
// registry on local disks (Report.Rows): several targets measured in the
// same run, each figure divided by the baseline's.
type Section struct {
	ID       string   // its name in BENCH_SECTIONS
	Title    string   // the report's heading
	Intro    string   // what ran and how to read it
	Columns  []Column // in the table's order
	Baseline string   // the target every other column is divided by
	Lead     string   // the target the chart draws and the goal concerns
	Goal     float64  // the least advantage of Lead over Baseline; 0: no goal
	GoalRows []string // the scenarios the goal applies to; empty: every row
}

// Sections are the report's sections after the local one, in order.
var Sections = []Section{
	{
		ID:    "s3",
		Title: "S3: octoserve against the reference registry, both on versitygw (issue 11)",
		Intro: "One versitygw (its posix backend on a local directory) on loopback serves both; each registry gets a fresh key prefix of the " +
			"bucket every round. octoserve runs with its defaults (blob bytes pass through octoserve) and, for the pull scenarios only, with " +
			"`storage.s3.redirect: true` (blob GETs answer 307 to a presigned URL of the bucket); the reference registry runs its s3-aws " +
			"driver with its defaults, under which blob GETs answer 307 to a presigned URL. The load generator follows redirects, as Go " +
			"clients do. The CPU rows count the registry's and versitygw's CPU time. Goal: octoserve ahead on every row.",
		Columns: []Column{
			{TargetS3Octoserve, "octoserve"},
			{TargetS3Redirect, "octoserve, redirect"},
			{TargetS3Reference, "reference"},
		},
		Baseline: TargetS3Reference,
		Lead:     TargetS3Octoserve,
		Goal:     1,
	},
	{
		ID:    "replicas",
		Title: "Replicas: one, two and three octoserve on one bucket behind HAProxy (issue 12)",
		Intro: "Every target stores in a fresh key prefix of the same versitygw bucket. *direct*: one octoserve, no balancer: the load " +
			"generator talks to it. *N behind HAProxy*: N octoserve replicas on that prefix behind HAProxy (scripts/lib/haproxy.sh: " +
			"round-robin, no stickiness, a GET /readyz health check every 250 ms; without its per-request log, as docs/scale-out.md's " +
			"example), so that consecutive requests of one client go to different replicas. **This machine has 2 cores**, shared by " +
			"the replicas, HAProxy, versitygw and the load generator: more replicas add no CPU here, so these rows show the overhead " +
			"of running replicated, not how replicas scale (on machines of their own each replica brings its own cores, disk and " +
			"network); where two or three replicas beat one, one process had left the cores partly idle while it waited on the " +
			"bucket, which more processes overlap. The per-request cost is in the last four rows: the median latency of single " +
			"requests from one client (what the balancer's hop and a replica that did not serve the previous request add to each " +
			"request), and the CPU time per request of every serving process together (the replicas, HAProxy and versitygw, whose " +
			"/readyz probes are part of the cost; *direct*: octoserve and versitygw).",
		Columns: []Column{
			{TargetReplicasDirect, "direct"},
			{TargetReplicasLB1, "1 behind HAProxy"},
			{TargetReplicasLB2, "2 behind HAProxy"},
			{TargetReplicasLB3, "3 behind HAProxy"},
		},
		Baseline: TargetReplicasDirect,
		Lead:     TargetReplicasLB3,
	},
	{
		ID:    "metrics",
		Title: "Metrics: octoserve with metrics on against metrics off (issue 15)",
		Intro: "Two octoserve on local disks (fresh roots) run at the same time, one without and one with `metrics.addr` (Prometheus " +
			"metrics and pprof on a loopback address of its own). The load generator alternates short slices of each scenario between " +
			"them (A B B A ...), so that both see the same machine; after each round the script checks that the metrics side's " +
			"/metrics counted the requests. The CPU rows are each server's own CPU time per request, measured over its slices: " +
			"the most direct measure of what metrics cost, least disturbed by the machine's other work. Goal: metrics on within " +
			"5% of metrics off (throughput ratio at least 0.95; latency and CPU ratio at most 1.05).",
		Columns: []Column{
			{TargetMetricsOff, "metrics off"},
			{TargetMetricsOn, "metrics on"},
		},
		Baseline: TargetMetricsOff,
		Lead:     TargetMetricsOn,
		Goal:     0.95,
	},
	{
		ID:    "cache",
		Title: "Pull-through cache: a big blob's first pull through octoserve against the upstream directly (issue 16)",
		Intro: "The upstream is the reference registry on a local directory (no token front); octoserve mirrors it under a prefix " +
			"(`proxy.upstreams`), on a fresh local root. Each round pushes fresh blobs to the upstream and pulls each directly from the " +
			"upstream, for the first time through octoserve (octoserve fetches it from the upstream as it streams it to the client, " +
			"verifies and stores it), and again through octoserve (held by then); which comes first alternates. The first-byte row " +
			"shows that the first pull streams: its first byte comes long before the transfer ends. Goal: the first pull through " +
			"octoserve at least 80% of the direct pull's throughput.",
		Columns: []Column{
			{TargetCacheUpstream, "upstream, direct"},
			{TargetCacheFirst, "octoserve, first pull"},
			{TargetCacheHit, "octoserve, cached"},
		},
		Baseline: TargetCacheUpstream,
		Lead:     TargetCacheFirst,
		Goal:     0.8,
		GoalRows: []string{CachePull},
	},
	{
		ID:    "cache-1g",
		Title: "Pull-through cache, the upstream behind a 1 Gbit/s link (issue 16)",
		Intro: "The same, with the upstream's responses paced to 125 MB/s (`octobench pace`, a reverse proxy in front of the " +
			"reference registry) for its direct clients and for octoserve alike, as an upstream on the internet is at best: " +
			"the cache's own work (receive, hash, store, send on) now fits in the time the bytes take to arrive. The cached pull " +
			"is served from octoserve's disk, past the link. Goal: the first pull through octoserve at least 80% of the direct " +
			"pull's throughput.",
		Columns: []Column{
			{TargetCacheUpstream1G, "upstream, direct"},
			{TargetCacheFirst1G, "octoserve, first pull"},
			{TargetCacheHit1G, "octoserve, cached"},
		},
		Baseline: TargetCacheUpstream1G,
		Lead:     TargetCacheFirst1G,
		Goal:     0.8,
		GoalRows: []string{CachePull},
	},
}

// SectionIDs lists the sections' names, "local" first.
func SectionIDs() []string {
	ids := []string{"local"}
	for _, s := range Sections {
		ids = append(ids, s.ID)
	}
	return ids
}

// SectionTable is a section's aggregate.
type SectionTable struct {
	Section Section
	Rows    []SectionRow
}

// SectionRow is one scenario of a section: each column's figures, and
// each column compared with the baseline.
type SectionRow struct {
	Scenario Scenario
	Values   []Spread // per column
	VsBase   []Row    // per column: Octoserve is the column, Reference the baseline
}

// lead is the row's comparison of the section's Lead with its baseline.
func (r SectionRow) lead(s Section) Row {
	for i, c := range s.Columns {
		if c.Target == s.Lead {
			return r.VsBase[i]
		}
	}
	return Row{}
}

// hasGoal says whether the section's goal applies to scenario id.
func (s Section) hasGoal(id string) bool {
	return s.Goal > 0 && (len(s.GoalRows) == 0 || slices.Contains(s.GoalRows, id))
}

// label is the column label of target.
func (s Section) label(target string) string {
	for _, c := range s.Columns {
		if c.Target == target {
			return c.Label
		}
	}
	return target
}

// aggregateSections builds the table of every section some sample names.
func aggregateSections(byTarget map[string]map[string]map[int]float64) []SectionTable {
	var out []SectionTable
	for _, sec := range Sections {
		t := SectionTable{Section: sec}
		for _, sc := range Scenarios {
			found := false
			for _, c := range sec.Columns {
				found = found || len(byTarget[sc.ID][c.Target]) > 0
			}
			if !found {
				continue
			}
			row := SectionRow{Scenario: sc}
			base := byTarget[sc.ID][sec.Baseline]
			for _, c := range sec.Columns {
				cmp := compare(sc, byTarget[sc.ID][c.Target], base)
				row.Values = append(row.Values, cmp.Octoserve)
				row.VsBase = append(row.VsBase, cmp)
			}
			t.Rows = append(t.Rows, row)
		}
		if len(t.Rows) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// Markdown writes the section's heading, introduction and table.
func (t SectionTable) Markdown(w io.Writer) {
	sec := t.Section
	fmt.Fprintf(w, "## %s\n\n%s\n\n", sec.Title, sec.Intro)
	head := []string{"figure", "unit"}
	for _, c := range sec.Columns {
		head = append(head, c.Label)
	}
	base := sec.label(sec.Baseline)
	for _, c := range sec.Columns {
		if c.Target != sec.Baseline {
			head = append(head, fmt.Sprintf("%s / %s (rounds min–max)", c.Label, base))
		}
	}
	goals := sec.Goal > 0
	if goals {
		head = append(head, "goal ("+sec.label(sec.Lead)+")", "verdict")
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, r := range t.Rows {
		better := "higher is better"
		if !r.Scenario.Higher {
			better = "lower is better"
		}
		cells := []string{r.Scenario.Title, r.Scenario.Unit + " (" + better + ")"}
		for _, v := range r.Values {
			cells = append(cells, v.String())
		}
		for i, c := range sec.Columns {
			if c.Target != sec.Baseline {
				cells = append(cells, ratioCell(r.VsBase[i]))
			}
		}
		if goals {
			cells = append(cells, goalCells(sec, r)...)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}

// ratioCell is a comparison's ratio with its rounds' spread, and for a
// time the difference of the medians (what each request gains or loses).
func ratioCell(r Row) string {
	if r.Ratio == 0 {
		return "–"
	}
	s := fmt.Sprintf("%s (%s–%s)", num(r.Ratio), num(r.RoundRatio.Min), num(r.RoundRatio.Max))
	if u := r.Scenario.Unit; u == "µs" || u == "ms" {
		d := r.Octoserve.Median - r.Reference.Median
		sign := "+"
		if d < 0 {
			sign = "−"
		}
		s += fmt.Sprintf("; %s%s %s", sign, num(math.Abs(d)), u)
	}
	return s
}

// goalCells are the goal and verdict cells of a row.
func goalCells(sec Section, r SectionRow) []string {
	if !sec.hasGoal(r.Scenario.ID) {
		return []string{"–", "–"}
	}
	goal := fmt.Sprintf("≥ %s", num(sec.Goal))
	if !r.Scenario.Higher {
		goal = fmt.Sprintf("≤ %s", num(1/sec.Goal))
	}
	adv, _, _ := r.lead(sec).Advantage()
	switch {
	case adv == 0:
		return []string{goal, "not measured"}
	case adv >= sec.Goal:
		return []string{goal, "met"}
	}
	return []string{goal, "**missed**"}
}
