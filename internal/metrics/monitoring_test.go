package metrics_test

import (
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The example alert rules and dashboard (docs/monitoring) name only
// metrics octoserve exports, and docs/operations.md describes every
// octoserve_ metric it exports: so that none of them can rot.

const monitoringDir = "../../docs/monitoring/"

// metricName finds the metric names in a PromQL expression: ours, and the
// Go client's process metrics the dashboard uses.
var metricName = regexp.MustCompile(`\b(?:octoserve|process|go)_[a-zA-Z0-9_]+\b`)

func alertExpressions(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(monitoringDir + "alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	exprs := map[string]string{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Fatalf("alerts.yml: a rule without alert or expr: %+v", r)
			}
			exprs["alert "+r.Alert] = r.Expr
		}
	}
	return exprs
}

type dashboardPanel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // a collapsed row's
}

func dashboardExpressions(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(monitoringDir + "grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	exprs := map[string]string{}
	var walk func([]dashboardPanel)
	walk = func(panels []dashboardPanel) {
		for _, p := range panels {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("dashboard panel %q queries nothing", p.Title)
			}
			for i, tg := range p.Targets {
				exprs["panel "+p.Title+" #"+string(rune('A'+i))] = tg.Expr
			}
		}
	}
	walk(dash.Panels)
	return exprs
}

func TestMonitoringExamplesNameExportedMetrics(t *testing.T) {
	s := newStack(t, stackOptions{metrics: true, auth: true})
	runWorkload(t, s)
	fams := families(t, scrape(t, s.m))
	exported := exportedNames(fams)

	alerts, panels := alertExpressions(t), dashboardExpressions(t)
	if len(alerts) < 11 || len(panels) < 30 {
		t.Fatalf("%d alerts and %d panel queries: the examples were not read whole", len(alerts), len(panels))
	}
	named := map[string]bool{}
	maps.Copy(alerts, panels)
	for where, expr := range alerts {
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("%s names no metric: %s", where, expr)
		}
		for _, name := range names {
			named[name] = true
			if !exported[name] {
				t.Errorf("%s uses %s, which /metrics does not export", where, name)
			}
		}
	}

	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range fams {
		if strings.HasPrefix(name, "octoserve_") && !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/operations.md does not describe %s", name)
		}
	}
	t.Logf("the examples use %d metrics: %s", len(named), strings.Join(sortedKeys(named), " "))
}
