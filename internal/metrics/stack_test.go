package metrics_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/auth"
	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/health"
	"github.com/octoserve/octoserve/internal/httplog"
	"github.com/octoserve/octoserve/internal/metrics"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// stack is the handler stack `octoserve serve` builds (cmd/octoserve), on
// a fresh data directory, served by httptest: the request wrapper, the
// health endpoints, auth (optional) and the API over the registry, with
// the metrics fed from the wrapper and the storage decorator, or without
// metrics at all.
type stack struct {
	t        testing.TB
	root     string
	reg      *registry.Registry
	m        *metrics.Metrics // nil without metrics
	srv      *httptest.Server
	user     string // credentials every request sends, when auth is on
	password string
}

type stackOptions struct {
	metrics bool
	auth    bool
	log     io.Writer // request log; nil discards it
}

func newStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	s := &stack{t: t, root: t.TempDir()}
	fs, err := filesystem.New(s.root)
	if err != nil {
		t.Fatal(err)
	}
	if o.log == nil {
		o.log = io.Discard
	}
	log := slog.New(httplog.WithRequestIDs(slog.NewTextHandler(o.log, nil)))
	var logOpts []httplog.Option
	if o.metrics {
		s.m = metrics.New("test")
		s.reg = registry.New(s.m.InstrumentDriver(fs, "filesystem"), registry.Options{})
		s.m.WatchFilesystem(s.root)
		logOpts = append(logOpts, httplog.WithObserver(s.m.HTTP()))
	} else {
		s.reg = registry.New(fs, registry.Options{})
	}
	apiOpts := []api.Option{api.WithLogger(log)}
	if o.auth {
		s.user, s.password = "alice", "right password"
		a := s.authenticator(log)
		apiOpts = append(apiOpts, a.APIOptions()...)
		if s.m != nil {
			s.m.WatchLogins(a)
		}
	}
	ready := health.NewChecker(s.reg.ProbeStorage, health.DefaultTimeout, 0, log)
	s.srv = httptest.NewServer(httplog.Handler(log, health.Handler(ready, api.New(s.reg, apiOpts...)), logOpts...))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stack) authenticator(log *slog.Logger) *auth.Authenticator {
	hash, err := bcrypt.GenerateFromPassword([]byte(s.password), bcrypt.MinCost)
	if err != nil {
		s.t.Fatal(err)
	}
	htpasswd := filepath.Join(s.t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(s.user+":"+string(hash)+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	a, err := auth.New(config.Auth{
		Htpasswd: htpasswd,
		Rules:    []config.AccessRule{{Repository: "**", Users: []string{s.user}, Actions: []string{"pull", "push", "delete"}}},
	}, log)
	if err != nil {
		s.t.Fatal(err)
	}
	return a
}

// do sends a request with the stack's credentials (pass user "" to send
// none) and returns the response with its body read.
func (s *stack) do(method, path string, body []byte, header map[string]string) (*http.Response, []byte) {
	s.t.Helper()
	return s.doAs(s.user, s.password, method, path, body, header)
}

func (s *stack) doAs(user, password, method, path string, body []byte, header map[string]string) (*http.Response, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.srv.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp, b
}

// must sends a request with the stack's credentials and fails unless it
// is answered with status.
func (s *stack) must(status int, method, path string, body []byte, header map[string]string) *http.Response {
	s.t.Helper()
	resp, b := s.do(method, path, body, header)
	if resp.StatusCode != status {
		s.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, status, b)
	}
	return resp
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pushBlob uploads b to repo in one POST.
func (s *stack) pushBlob(repo string, b []byte) string {
	s.t.Helper()
	d := digestOf(b)
	s.must(http.StatusCreated, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, b, nil)
	return d
}

// manifest returns an image manifest over config and layers, all pushed.
func manifest(config []byte, layers ...[]byte) []byte {
	desc := func(b []byte) map[string]any {
		return map[string]any{"mediaType": "application/octet-stream", "digest": digestOf(b), "size": len(b)}
	}
	var ls []any
	for _, l := range layers {
		ls = append(ls, desc(l))
	}
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": registry.MediaTypeOCIManifest, "config": desc(config), "layers": ls})
	return m
}

func (s *stack) putManifest(repo, ref string, m []byte) string {
	s.t.Helper()
	s.must(http.StatusCreated, "PUT", "/v2/"+repo+"/manifests/"+ref, m, map[string]string{"Content-Type": registry.MediaTypeOCIManifest})
	return digestOf(m)
}

// scrape returns the metrics, as the Prometheus text format serves them.
func scrape(t testing.TB, m *metrics.Metrics) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}
