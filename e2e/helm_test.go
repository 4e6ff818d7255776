//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// helm talks plain HTTP to the loopback registry with --plain-http; its
// configuration, cache and registry credentials live under the session's
// XDG directories.

const (
	mtHelmConfig = "application/vnd.cncf.helm.config.v1+json"
	mtHelmChart  = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
)

func (s *session) helm(args ...string) string {
	s.t.Helper()
	return s.must("helm", args...)
}

// helmChart writes a chart named name at version into dir: one ConfigMap
// template rendering the value greeting.
func helmChart(s *session, dir, name, version, greeting string) {
	s.t.Helper()
	s.writeFile(filepath.Join(dir, "Chart.yaml"), []byte(fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\ndescription: octoserve e2e chart\n", name, version)))
	s.writeFile(filepath.Join(dir, "values.yaml"), []byte(fmt.Sprintf("greeting: %q\n", greeting)))
	s.writeFile(filepath.Join(dir, "templates", "configmap.yaml"), []byte(
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-"+name+"\ndata:\n  greeting: {{ .Values.greeting | quote }}\n"))
}

// helmPushed is the digest `helm push` printed ("Digest: sha256:...").
func helmPushed(s *session, out string) string {
	s.t.Helper()
	for _, l := range lines(out) {
		if d, ok := strings.CutPrefix(l, "Digest: "); ok {
			return d
		}
	}
	s.t.Fatalf("helm push printed no digest:\n%s", out)
	return ""
}

// TestHelmChartPushPullShowDependency packages a chart, pushes it to
// oci://, pulls it back by version and by digest, shows it, and resolves it
// as another chart's dependency from oci:// (`helm dependency update`).
func TestHelmChartPushPullShowDependency(t *testing.T) {
	s := newSession(t)
	ns := repoName("charts")
	greeting := "hello from octoserve " + randomHex(8)
	helmChart(s, "src/child", "child", "0.1.0", greeting)
	s.helm("package", "src/child", "--destination", "packaged")
	tgz := s.readFile("packaged/child-0.1.0.tgz")

	// helm push prints the manifest digest; the registry serves the chart
	// as an OCI artifact with helm's media types.
	res := s.exec(nil, "helm", "push", "packaged/child-0.1.0.tgz", "oci://"+ref(ns, ""), "--plain-http")
	if res.Err != nil {
		t.Fatalf("helm push: %v\n%s", res.Err, tail(res.Combined(), 20))
	}
	dgst := helmPushed(s, res.Combined())
	repo := ns + "/child"
	m, _ := s.servedManifest(repo, "0.1.0", dgst)
	if m.Config.MediaType != mtHelmConfig || len(m.Layers) != 1 || m.Layers[0].MediaType != mtHelmChart {
		t.Fatalf("chart manifest: config %q, layers %+v; want %q and one %q layer", m.Config.MediaType, m.Layers, mtHelmConfig, mtHelmChart)
	}
	if b := s.http("GET", "/v2/"+repo+"/blobs/"+m.Layers[0].Digest, nil, nil).Body; !bytes.Equal(b, tgz) {
		t.Errorf("chart layer served (%d bytes) differs from the packaged chart (%d bytes)", len(b), len(tgz))
	}

	// Pull by version and by digest: the packaged bytes.
	for _, d := range []string{"by-version", "by-digest"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.helm("pull", "oci://"+ref(repo, ""), "--version", "0.1.0", "--plain-http", "--destination", "by-version")
	if got := s.readFile("by-version/child-0.1.0.tgz"); !bytes.Equal(got, tgz) {
		t.Errorf("helm pull --version 0.1.0 got a chart differing from the one pushed")
	}
	s.helm("pull", "oci://"+ref(repo, "@"+dgst), "--plain-http", "--destination", "by-digest")
	pulled, err := filepath.Glob(filepath.Join(s.dir, "by-digest", "*.tgz"))
	if err != nil || len(pulled) != 1 {
		t.Fatalf("helm pull by digest left %v (%v), want one chart", pulled, err)
	}
	if got := s.readFile(pulled[0]); !bytes.Equal(got, tgz) {
		t.Errorf("helm pull by digest got a chart differing from the one pushed")
	}

	// helm show reads the chart from the registry.
	chart := s.helm("show", "chart", "oci://"+ref(repo, ""), "--version", "0.1.0", "--plain-http")
	if !strings.Contains(chart, "name: child") || !strings.Contains(chart, "version: 0.1.0") {
		t.Errorf("helm show chart:\n%s", chart)
	}
	if values := s.helm("show", "values", "oci://"+ref(repo, "@"+dgst), "--plain-http"); !strings.Contains(values, greeting) {
		t.Errorf("helm show values by digest:\n%s", values)
	}

	// A chart depending on it through oci://.
	s.writeFile("src/parent/Chart.yaml", []byte(fmt.Sprintf(
		"apiVersion: v2\nname: parent\nversion: 1.0.0\ndependencies:\n  - name: child\n    version: 0.1.0\n    repository: oci://%s\n", ref(ns, ""))))
	s.helm("dependency", "update", "src/parent", "--plain-http")
	if got := s.readFile("src/parent/charts/child-0.1.0.tgz"); !bytes.Equal(got, tgz) {
		t.Errorf("helm dependency update fetched a chart differing from the one pushed")
	}
	if lock := string(s.readFile("src/parent/Chart.lock")); !strings.Contains(lock, "oci://"+ref(ns, "")) {
		t.Errorf("Chart.lock does not name the oci:// repository:\n%s", lock)
	}
	if rendered := s.helm("template", "rel", "src/parent"); !strings.Contains(rendered, "name: rel-child") || !strings.Contains(rendered, greeting) {
		t.Errorf("helm template of the parent chart does not render the dependency:\n%s", rendered)
	}
}

// TestHelmAuth logs in to an octoserve with basic auth on (`helm registry
// login`), pushes a chart where it may push, is refused where it may only
// pull, and pulls its chart back.
func TestHelmAuth(t *testing.T) {
	s := newSession(t)
	ar := startAuthRegistry(s)
	helmChart(s, "src/authchart", "authchart", "1.0.0", "auth "+randomHex(8))
	s.helm("package", "src/authchart", "--destination", "packaged")
	tgz := s.readFile("packaged/authchart-1.0.0.tgz")
	ok, ro := ar.OK("helm"), ar.RO("helm")

	out := s.fail("helm", "push", "packaged/authchart-1.0.0.tgz", "oci://"+ar.Ref(ok, ""), "--plain-http")
	// The registry's 401 reaches helm's client library, which then looks
	// for credentials it has none of.
	if !strings.Contains(out, "401") && !strings.Contains(out, "basic credential not found") {
		t.Errorf("push before login failed, but not for want of credentials:\n%s", tail(out, 10))
	}
	res := s.exec(strings.NewReader(ar.WrongPassword), "helm", "registry", "login", ar.Addr, "--username", ar.User, "--password-stdin", "--plain-http")
	if res.Err == nil {
		t.Errorf("helm registry login with a wrong password succeeded:\n%s", res.Combined())
	}
	s.mustIn(strings.NewReader(ar.Password), "helm", "registry", "login", ar.Addr, "--username", ar.User, "--password-stdin", "--plain-http")

	s.helm("push", "packaged/authchart-1.0.0.tgz", "oci://"+ar.Ref(ok, ""), "--plain-http")
	out = s.fail("helm", "push", "packaged/authchart-1.0.0.tgz", "oci://"+ar.Ref(ro, ""), "--plain-http")
	assertDenied(s, "helm push to a pull-only repository", out)
	ar.assertNoTag(s, ro+"/authchart", "1.0.0")

	if err := os.MkdirAll(filepath.Join(s.dir, "pulled"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.helm("pull", "oci://"+ar.Ref(ok, "/authchart"), "--version", "1.0.0", "--plain-http", "--destination", "pulled")
	if got := s.readFile("pulled/authchart-1.0.0.tgz"); !bytes.Equal(got, tgz) {
		t.Errorf("chart pulled back differs from the one pushed")
	}
	s.helm("registry", "logout", ar.Addr)
}
