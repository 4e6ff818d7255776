package securitytest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The binary with metrics.addr and metrics.htpasswd set: the public
// address serves the API and the health endpoints, never /metrics or the
// profiles; the metrics address serves those only to its user, and the
// health endpoints to anyone.
func TestDebugEndpointsOnlyOnTheMetricsAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("scrape-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "metrics.htpasswd")
	if err := os.WriteFile(htpasswd, []byte("prometheus:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "octoserve.yaml")
	yaml := fmt.Sprintf("storage:\n  root: %s\nmetrics:\n  addr: 127.0.0.1:0\n  htpasswd: %s\n", filepath.Join(dir, "data"), htpasswd)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := startBinaryListening(t, []string{"octoserve listening", "metrics and debug address listening"}, "--config", cfg)
	public, debug := "http://"+addrs[0], "http://"+addrs[1]

	get := func(url, user, pass string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, tc := range []struct {
		url, user, pass string
		want            int
		body            string // a substring the body must hold
	}{
		{public + "/v2/", "", "", 200, "{}"},
		{public + "/healthz", "", "", 200, "ok"},
		{public + "/readyz", "", "", 200, "ok"},
		{public + "/metrics", "", "", 404, ""},
		{public + "/debug/pprof/", "", "", 404, ""},
		{public + "/debug/pprof/heap", "", "", 404, ""},
		{public + "/metrics", "prometheus", "scrape-pw", 404, ""},
		{debug + "/metrics", "", "", 401, ""},
		{debug + "/metrics", "prometheus", "wrong", 401, ""},
		{debug + "/debug/pprof/", "", "", 401, ""},
		{debug + "/metrics", "prometheus", "scrape-pw", 200, "octoserve_build_info{"},
		{debug + "/debug/pprof/", "prometheus", "scrape-pw", 200, "goroutine"},
		{debug + "/healthz", "", "", 200, "ok"},
		{debug + "/readyz", "", "", 200, "ok"},
	} {
		code, body, h := get(tc.url, tc.user, tc.pass)
		if code != tc.want || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s as %q: %d, want %d with %q; body %.200s", tc.url, tc.user, code, tc.want, tc.body, body)
		}
		if strings.HasPrefix(tc.url, public) && h.Get("X-Request-Id") == "" {
			t.Errorf("GET %s: no X-Request-Id", tc.url)
		}
	}
	// The requests above were measured: the public GET /v2/ among them.
	_, body, _ := get(debug+"/metrics", "prometheus", "scrape-pw")
	if !strings.Contains(body, `octoserve_http_requests_total{code="200",kind="base",method="GET"} 1`) {
		t.Errorf("the public GET /v2/ is not counted:\n%s", body)
	}
}

// startBinaryListening builds cmd/octoserve and runs "octoserve serve"
// with args, and returns the address of each message in msgs, as the
// server logs them once listening.
func startBinaryListening(t *testing.T, msgs []string, args ...string) []string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "octoserve")
	build := exec.Command("go", "build", "-o", bin, "./cmd/octoserve")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	addrs := make([]string, len(msgs))
	patterns := make([]*regexp.Regexp, len(msgs))
	for i, msg := range msgs {
		patterns[i] = regexp.MustCompile(`msg="` + regexp.QuoteMeta(msg) + `" addr=(\S+)`)
	}
	found := 0
	var log []string
	// Only stops a test of a binary that never starts; a loaded machine
	// has ample room.
	deadline := time.After(time.Minute)
	for found < len(msgs) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("octoserve exited:\n%s", strings.Join(log, "\n"))
			}
			log = append(log, l)
			for i, re := range patterns {
				if m := re.FindStringSubmatch(l); m != nil && addrs[i] == "" {
					addrs[i] = m[1]
					found++
				}
			}
		case <-deadline:
			t.Fatalf("octoserve did not log %q:\n%s", msgs, strings.Join(log, "\n"))
		}
	}
	return addrs
}
