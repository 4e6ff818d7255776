package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// ReadSamples reads JSON-lines samples.
func ReadSamples(r io.Reader) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var s Sample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("samples line %d: %w", line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// Spread is the minimum, median and maximum of some values.
type Spread struct {
	Min, Median, Max float64
	N                int
}

func spreadOf(vs []float64) Spread {
	if len(vs) == 0 {
		return Spread{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Min: s[0], Median: med, Max: s[len(s)-1], N: len(s)}
}

// Row is the aggregate of one scenario.
type Row struct {
	Scenario   Scenario
	Octoserve  Spread
	Reference  Spread
	Ratio      float64 // median octoserve / median reference
	RoundRatio Spread  // octoserve / reference of each round
	Limit      Spread  // the physical limit it is compared with, if any
}

// Advantage is how many times better octoserve did: the ratio for figures
// where higher is better, its inverse otherwise; 0 when unknown.
func (r Row) Advantage() (med, lo, hi float64) {
	if r.Ratio == 0 || r.RoundRatio.N == 0 {
		return 0, 0, 0
	}
	if r.Scenario.Higher {
		return r.Ratio, r.RoundRatio.Min, r.RoundRatio.Max
	}
	return 1 / r.Ratio, 1 / r.RoundRatio.Max, 1 / r.RoundRatio.Min
}

// Report is every aggregated row: registry scenarios and physical limits.
type Report struct {
	Rows   []Row
	Limits []Row // Octoserve holds the limit figure
	// Sendfile compares octoserve (Octoserve) with octoserve serving blobs
	// with sendfile (Reference) on the scenarios run against both.
	Sendfile []Row
	// Sections are the other comparisons (S3, replicas, metrics, cache)
	// that samples were found for.
	Sections []SectionTable
}

// Aggregate groups samples by scenario and target.
func Aggregate(samples []Sample) Report {
	byTarget := map[string]map[string]map[int]float64{}
	for _, s := range samples {
		if byTarget[s.Scenario] == nil {
			byTarget[s.Scenario] = map[string]map[int]float64{}
		}
		if byTarget[s.Scenario][s.Target] == nil {
			byTarget[s.Scenario][s.Target] = map[int]float64{}
		}
		byTarget[s.Scenario][s.Target][s.Round] = s.Value
	}
	values := func(id, target string) []float64 {
		var vs []float64
		for _, v := range byTarget[id][target] {
			vs = append(vs, v)
		}
		return vs
	}
	var rep Report
	for _, sc := range Scenarios {
		if _, ok := byTarget[sc.ID]; !ok {
			continue
		}
		if strings.HasPrefix(sc.ID, "limit-") {
			rep.Limits = append(rep.Limits, Row{Scenario: sc, Octoserve: spreadOf(values(sc.ID, TargetLimit))})
			continue
		}
		if len(byTarget[sc.ID][TargetOctoserve])+len(byTarget[sc.ID][TargetReference]) == 0 {
			continue // another section's scenario
		}
		row := compare(sc, byTarget[sc.ID][TargetOctoserve], byTarget[sc.ID][TargetReference])
		if sc.Limit != "" {
			row.Limit = spreadOf(values(sc.Limit, TargetLimit))
		}
		rep.Rows = append(rep.Rows, row)
		if sf := byTarget[sc.ID][TargetSendfile]; len(sf) > 0 {
			row := compare(sc, byTarget[sc.ID][TargetOctoserve], sf)
			row.Limit = rep.Rows[len(rep.Rows)-1].Limit
			rep.Sendfile = append(rep.Sendfile, row)
		}
	}
	rep.Sections = aggregateSections(byTarget)
	return rep
}

// compare builds the row of a against b, each a value per round.
func compare(sc Scenario, a, b map[int]float64) Row {
	vals := func(m map[int]float64) []float64 {
		var vs []float64
		for _, v := range m {
			vs = append(vs, v)
		}
		return vs
	}
	row := Row{Scenario: sc, Octoserve: spreadOf(vals(a)), Reference: spreadOf(vals(b))}
	if row.Octoserve.N > 0 && row.Reference.N > 0 && row.Reference.Median != 0 {
		row.Ratio = row.Octoserve.Median / row.Reference.Median
	}
	var ratios []float64
	for round, o := range a {
		if ref, ok := b[round]; ok && ref != 0 {
			ratios = append(ratios, o/ref)
		}
	}
	row.RoundRatio = spreadOf(ratios)
	return row
}

// num formats a figure with precision that suits its size.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func (s Spread) String() string {
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 {
		return num(s.Median)
	}
	return fmt.Sprintf("**%s** (%s–%s)", num(s.Median), num(s.Min), num(s.Max))
}

// Markdown writes the report's tables: the local section, the other
// sections, the physical limits; each only when it has figures.
func (rep Report) Markdown(w io.Writer) {
	if len(rep.Rows) > 0 {
		fmt.Fprint(w, "## Local disks: octoserve against the reference registry (issue 13)\n\n")
		rep.localMarkdown(w)
	}
	for _, t := range rep.Sections {
		t.Markdown(w)
	}
	if len(rep.Limits) > 0 {
		fmt.Fprintln(w, "Physical limits of this machine, measured in the same run:")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| limit | unit | median (min–max) |")
		fmt.Fprintln(w, "|---|---|---|")
		for _, r := range rep.Limits {
			fmt.Fprintf(w, "| %s | %s | %s |\n", r.Scenario.Title, r.Scenario.Unit, r.Octoserve)
		}
	}
}

// localMarkdown writes octoserve against the reference registry on local
// disks, and the pull A/B.
func (rep Report) localMarkdown(w io.Writer) {
	fmt.Fprintln(w, "| figure | unit | octoserve median (min–max) | reference median (min–max) | octoserve / reference (rounds min–max) | verdict | octoserve % of limit | reference % of limit |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rep.Rows {
		ratio, verdict := "–", "–"
		if r.Ratio != 0 {
			ratio = fmt.Sprintf("%s (%s–%s)", num(r.Ratio), num(r.RoundRatio.Min), num(r.RoundRatio.Max))
			adv, _, _ := r.Advantage()
			verdict = "behind"
			if adv >= 1 {
				verdict = "ahead"
			}
		}
		better := "higher is better"
		if !r.Scenario.Higher {
			better = "lower is better"
		}
		fmt.Fprintf(w, "| %s | %s (%s) | %s | %s | %s | %s | %s | %s |\n",
			r.Scenario.Title, r.Scenario.Unit, better, r.Octoserve, r.Reference, ratio, verdict,
			percentOf(r.Octoserve, r.Limit), percentOf(r.Reference, r.Limit))
	}
	if len(rep.Sendfile) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Pull path A/B, same run: octoserve (a lone download copied with 64 KiB writes, sendfile beside other downloads) against the same octoserve built with -tags octoserve_sendfile (always sendfile(2)); the push row runs the same code in both, so its ratio shows the noise:")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| figure | unit | octoserve | octoserve, sendfile | octoserve / sendfile (rounds min–max) | octoserve % of limit | sendfile % of limit |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
		for _, r := range rep.Sendfile {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s (%s–%s) | %s | %s |\n", r.Scenario.Title, r.Scenario.Unit, r.Octoserve, r.Reference,
				num(r.Ratio), num(r.RoundRatio.Min), num(r.RoundRatio.Max), percentOf(r.Octoserve, r.Limit), percentOf(r.Reference, r.Limit))
		}
	}
	fmt.Fprintln(w)
}

func percentOf(s, limit Spread) string {
	if s.N == 0 || limit.N == 0 || limit.Median == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*s.Median/limit.Median)
}
