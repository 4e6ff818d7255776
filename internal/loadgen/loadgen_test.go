package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// TestMain doubles as the server MeasureStart starts in its test.
func TestMain(m *testing.M) {
	if os.Getenv("LOADGEN_TEST_SERVER") != "" {
		serveProbe()
		return
	}
	os.Exit(m.Run())
}

// serveProbe logs a reference-registry-style line and answers GCProbe.
func serveProbe() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "time=\"now\" level=info msg=\"listening on %s\"\n", ln.Addr())
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != GCProbe || r.Header.Get("Accept") != MediaTypeOCIManifest {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("{}"))
	}))
}

// tinyConfig runs every scenario in well under a second.
func tinyConfig() Config {
	return Config{
		BigBytes: 1 << 20, PullReps: 2,
		SmallBlobs: 20, SmallBytes: 1024, SmallClients: 4,
		Duration: 10 * time.Millisecond,
		Tags:     10, ManyTags: 30, ManyRepos: 15, PageSize: 7,
		SetupClients: 4,
		ImageLayers:  3, LayerBytes: 64 << 10, ImageClients: 4,
		ChunkedBytes: 1<<20 + 5, ChunkBytes: 256 << 10,
		Conns:   20,
		GCBlobs: 40, GCBlobBytes: 100, GCRepos: 2, GCLayers: 5,
	}
}

func octoserve(t *testing.T) *httptest.Server {
	t.Helper()
	d, err := filesystem.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(registry.New(d, registry.Options{})))
	t.Cleanup(srv.Close)
	return srv
}

func TestRunEveryScenarioAgainstOctoserve(t *testing.T) {
	srv := octoserve(t)
	var mu sync.Mutex
	got := map[string]float64{}
	r := &Runner{URL: srv.URL, PID: os.Getpid(), Target: TargetOctoserve, Round: 1, Cfg: tinyConfig(),
		Emit: func(s Sample) {
			mu.Lock()
			defer mu.Unlock()
			if s.Target != TargetOctoserve || s.Round != 1 {
				t.Errorf("sample %+v: wrong target or round", s)
			}
			got[s.Scenario] = s.Value
		}}
	if err := r.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{PushBig, PullBig, PushSmall, ManifestGet8, ManifestGet64, TagList, TagsPaged,
		CatalogPaged, ImagePull32, Chunked, Conns1000, ConnsRSS, ConnsFDs, RSSAfter} {
		if v, ok := got[id]; !ok || v <= 0 {
			t.Errorf("scenario %s: value %v (recorded: %t)", id, v, ok)
		}
	}
	if len(got) != 14 {
		t.Errorf("recorded %d figures, want 14: %v", len(got), got)
	}
}

func TestPullRefusesWrongBytes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("not the blob"))
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PullBlob(context.Background(), "a/b", Digest([]byte("the blob")))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("pull of wrong bytes: %v, want ErrDigestMismatch", err)
	}
}

func TestFillMakesAProbeableRoot(t *testing.T) {
	srv := octoserve(t)
	cfg := tinyConfig()
	if err := Fill(context.Background(), srv.URL, cfg, nil); err != nil {
		t.Fatal(err)
	}
	c, _ := NewClient(srv.URL, 1)
	m, err := c.GetManifest(context.Background(), "gc/0", "m0")
	if err != nil || !bytes.Contains(m, []byte(Digest(RandomBytes(4, cfg.GCBlobs*cfg.GCBlobBytes)[:cfg.GCBlobBytes]))) {
		t.Fatalf("gc/0:m0 = %s (%v), want a manifest naming blob 0", m, err)
	}
	// 20 blobs per repository, the first 10 referenced: 2 manifests of 5.
	if n, err := c.ListAll(context.Background(), "/v2/gc/1/tags/list", "tags"); err != nil || n != 2 {
		t.Fatalf("gc/1 has %d tags (%v), want 2", n, err)
	}
}

func TestTrivialServerLimits(t *testing.T) {
	cfg := tinyConfig()
	srv := httptest.NewServer(TrivialHandler(cfg))
	t.Cleanup(srv.Close)
	got := map[string]float64{}
	err := MeasureTrivial(context.Background(), srv.URL, cfg, func(id string, v float64) { got[id] = v })
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{LimitPull, LimitConst8, LimitConst64, LimitTagConst8} {
		if got[id] <= 0 {
			t.Errorf("%s = %v", id, got[id])
		}
	}
	if v, err := FdatasyncRate(t.TempDir(), RandomBytes(1, 3<<20)); err != nil || v <= 0 {
		t.Errorf("fdatasync rate %v, %v", v, err)
	}
	if v := SHA256Rate(RandomBytes(1, 1<<20), time.Millisecond); v <= 0 {
		t.Errorf("sha256 rate %v", v)
	}
}

func TestMeasureStartStopsTheServer(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LOADGEN_TEST_SERVER", "1")
	logPath := filepath.Join(t.TempDir(), "server.log")
	d, err := MeasureStart(context.Background(), []string{self}, GCProbe, logPath)
	if err != nil || d <= 0 {
		t.Fatalf("MeasureStart: %v, %v", d, err)
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "listening on 127.0.0.1:") {
		t.Fatalf("server log not kept: %q", log)
	}
}

func TestListenAddressOfEitherRegistry(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`time=2026-01-01T00:00:00Z level=INFO msg="octoserve listening" addr=127.0.0.1:41234 root=/tmp/x`, "127.0.0.1:41234"},
		{`{"time":"x","level":"INFO","msg":"octoserve listening","addr":"127.0.0.1:5000"}`, "127.0.0.1:5000"},
		{`time="2026-01-01T00:00:00Z" level=info msg="listening on 127.0.0.1:39999" go.version=go1.26`, "127.0.0.1:39999"},
		{`time=x level=INFO msg=request method=GET remote=127.0.0.1:5555`, ""},
	} {
		m := listenRE.FindStringSubmatch(tc.line)
		if got := ""; m != nil {
			got = m[1]
			if got != tc.want {
				t.Errorf("%s: address %q, want %q", tc.line, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("%s: no address, want %q", tc.line, tc.want)
		}
	}
}

func TestNextLink(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{`</v2/_catalog?last=r9&n=7>; rel="next"`, "/v2/_catalog?last=r9&n=7"},
		{"", ""},
		{`</v2/x>; rel="prev"`, ""},
	} {
		if got := nextLink(tc.header); got != tc.want {
			t.Errorf("nextLink(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

func TestReportRatiosSpreadAndChart(t *testing.T) {
	var samples []Sample
	add := func(id, target string, vs ...float64) {
		for i, v := range vs {
			samples = append(samples, Sample{Scenario: id, Target: target, Round: i + 1, Value: v})
		}
	}
	add(PullBig, TargetOctoserve, 900, 1000, 1100)
	add(PullBig, TargetReference, 500, 400, 600)
	add(PullBig, TargetSendfile, 600, 700, 800)
	add(RSSAfter, TargetOctoserve, 20, 10, 30)
	add(RSSAfter, TargetReference, 40, 40, 40)
	add(LimitPull, TargetLimit, 2000, 2000, 2000)
	rep := Aggregate(samples)
	if len(rep.Rows) != 2 || len(rep.Limits) != 1 || len(rep.Sendfile) != 1 {
		t.Fatalf("rows %d limits %d sendfile %d", len(rep.Rows), len(rep.Limits), len(rep.Sendfile))
	}
	pull, rss := rep.Rows[0], rep.Rows[1]
	if pull.Octoserve != (Spread{900, 1000, 1100, 3}) || pull.Ratio != 2 || pull.RoundRatio.Min != 1.8 || pull.RoundRatio.Max != 2.5 {
		t.Errorf("pull row %+v", pull)
	}
	if adv, lo, hi := rss.Advantage(); adv != 2 || lo != 1.3333333333333333 || hi != 4 {
		t.Errorf("RSS advantage %v (%v–%v), want 2 (1.33–4): lower is better", adv, lo, hi)
	}
	var md bytes.Buffer
	rep.Markdown(&md)
	for _, want := range []string{"| **1000** (900–1100) | **500** (400–600) | 2.00 (1.80–2.50) | ahead | 50% | 25% |", "octoserve, sendfile", "| 1.43 (1.38–1.50) |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var img bytes.Buffer
	if err := rep.WriteChart(&img, "test"); err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(&img)
	if err != nil || cfg.Width != chartWidth || cfg.Height != chartTop+2*rowHeight+chartBottom {
		t.Fatalf("chart %+v, %v", cfg, err)
	}
}
