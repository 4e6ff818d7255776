package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/proxy/upstreamtest"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// rig is an octoserve with a pull-through cache of an upstream: a second
// octoserve behind upstreamtest's Docker Hub-like front, all in process,
// on loopback. Its clock for tag revalidation is the test's.
type rig struct {
	t     *testing.T
	front *upstreamtest.Front
	up    *upstreamtest.Pusher // pushes to the upstream registry, past the front
	reg   *registry.Registry   // the cache's own registry
	root  string
	px    *Proxy
	srv   *httptest.Server
	clock *testClock
}

// prefix is the rig's upstream prefix.
const prefix = "up.test"

func newRig(t *testing.T, frontOpts upstreamtest.Options, configure func(*config.Proxy)) *rig {
	t.Helper()
	upDriver, err := filesystem.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	upSrv := httptest.NewServer(api.New(registry.New(upDriver, registry.Options{})))
	t.Cleanup(upSrv.Close)
	r := &rig{t: t, up: upstreamtest.NewPusher(upSrv.URL), root: t.TempDir(), clock: &testClock{now: time.Now()}}
	r.front = upstreamtest.Start(t, upSrv.URL, frontOpts)
	cfg := config.Proxy{Upstreams: []config.Upstream{{Prefix: prefix, URL: r.front.URL, Revalidate: time.Hour, Timeout: 10 * time.Second}}}
	if configure != nil {
		configure(&cfg)
	}
	full := config.Default()
	full.Proxy = cfg
	if err := full.Validate(); err != nil {
		t.Fatalf("rig config: %v", err)
	}
	d, err := filesystem.New(r.root)
	if err != nil {
		t.Fatal(err)
	}
	r.reg = registry.New(d, registry.Options{})
	r.px, err = New(cfg, r.reg, withNow(r.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.px.Close)
	r.srv = httptest.NewServer(api.New(r.reg, api.WithMirror(r.px)))
	t.Cleanup(r.srv.Close)
	return r
}

// withNow sets the proxy's clock.
func withNow(now func() time.Time) Option { return func(p *Proxy) { p.now = now } }

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type response struct {
	status int
	header http.Header
	body   []byte
	err    error // reading the body
}

// do sends a request to the cache.
func (r *rig) do(method, path string, body []byte, header map[string]string) response {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, r.srv.URL+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// get fetches path from the cache and requires 200 with body want.
func (r *rig) get(path string, want []byte) response {
	r.t.Helper()
	res := r.do(http.MethodGet, path, nil, nil)
	if res.err != nil || res.status != http.StatusOK || !bytes.Equal(res.body, want) {
		r.t.Fatalf("GET %s: status %d, %d bytes (%v); want 200 with the %d bytes upstream holds; body: %.300s",
			path, res.status, len(res.body), res.err, len(want), res.body)
	}
	return res
}

// expectError requires status and OCI error code.
func (r *rig) expectError(res response, status int, code string) {
	r.t.Helper()
	var eb struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if res.status != status || json.Unmarshal(res.body, &eb) != nil || len(eb.Errors) == 0 || eb.Errors[0].Code != code {
		r.t.Fatalf("status %d body %s; want %d %s", res.status, res.body, status, code)
	}
}

// pullImage pulls img of repo through the cache as a client does: the
// manifest by digest, then config and layers.
func (r *rig) pullImage(repo string, img upstreamtest.Image) {
	r.t.Helper()
	res := r.get("/v2/"+repo+"/manifests/"+img.Digest, img.Manifest)
	if ct := res.header.Get("Content-Type"); ct != img.MediaType {
		r.t.Errorf("manifest Content-Type %q, want %q", ct, img.MediaType)
	}
	for d, b := range img.Blobs() {
		r.get("/v2/"+repo+"/blobs/"+d, b)
	}
}

// upstreamRequests counts the front's requests of kind and method for
// digests in set (all when nil), challenges (401) left out.
func (r *rig) upstreamRequests(kind, method string, set map[string][]byte) int {
	return len(r.front.Requests(func(q upstreamtest.Request) bool {
		_, in := set[q.Ref]
		return q.Kind == kind && (method == "" || q.Method == method) && (set == nil || in) && q.Status != http.StatusUnauthorized
	}))
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustDigest(t *testing.T, s string) reference.Digest {
	t.Helper()
	d, err := reference.ParseDigest(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
