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
	"sync/atomic"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/proxy"
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
	srv := httptest.NewServer(octoserveHandler(t))
	t.Cleanup(srv.Close)
	return srv
}

func octoserveHandler(t *testing.T, opts ...api.Option) http.Handler {
	t.Helper()
	d, err := filesystem.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return api.New(registry.New(d, registry.Options{}), opts...)
}

// recorder collects samples by target and scenario.
type recorder struct {
	mu  sync.Mutex
	got map[string]map[string]float64
}

func (r *recorder) emit(s Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string]map[string]float64{}
	}
	if r.got[s.Target] == nil {
		r.got[s.Target] = map[string]float64{}
	}
	r.got[s.Target][s.Scenario] = s.Value
}

// counted serves h and counts the requests matching match.
func counted(h http.Handler, match func(*http.Request) bool) (http.Handler, *atomic.Int64) {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if match(r) {
			n.Add(1)
		}
		h.ServeHTTP(w, r)
	}), &n
}

func TestRunEveryScenarioAgainstOctoserve(t *testing.T) {
	srv := octoserve(t)
	var mu sync.Mutex
	got := map[string]float64{}
	r := &Runner{URL: srv.URL, PID: os.Getpid(), CPUPIDs: []int{os.Getpid()}, Target: TargetOctoserve, Round: 1, Cfg: tinyConfig(),
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
		CatalogPaged, ImagePull32, Chunked, Conns1000, ConnsRSS, ConnsFDs, RSSAfter, ManifestGet1, PushSmall1, TagPut} {
		if v, ok := got[id]; !ok || v <= 0 {
			t.Errorf("scenario %s: value %v (recorded: %t)", id, v, ok)
		}
	}
	// CPU time comes in 10 ms ticks: a tiny run may count none.
	for _, id := range []string{ManifestCPU, PushSmallCPU} {
		if v, ok := got[id]; !ok || v < 0 {
			t.Errorf("scenario %s: value %v (recorded: %t)", id, v, ok)
		}
	}
	if len(got) != 19 {
		t.Errorf("recorded %d figures, want 19: %v", len(got), got)
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

func TestPairMeasuresBothSidesInAlternation(t *testing.T) {
	var sides [2]*atomic.Int64
	var urls [2]string
	for i := range sides {
		h, n := counted(octoserveHandler(t), func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") })
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		urls[i], sides[i] = srv.URL, n
	}
	var rec recorder
	// Both sides are this process: its CPU time is what each side's
	// figure divides.
	p := &Pair{A: Side{urls[0], TargetMetricsOff, os.Getpid()}, B: Side{urls[1], TargetMetricsOn, os.Getpid()}, Round: 1, Cfg: tinyConfig(), Slices: 4, Emit: rec.emit}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{TargetMetricsOff, TargetMetricsOn} {
		for _, id := range []string{ManifestGet8, ManifestGet64, PushSmall, ManifestGet1, PushSmall1} {
			if v := rec.got[target][id]; v <= 0 {
				t.Errorf("%s %s = %v", target, id, v)
			}
		}
		// CPU time comes in 10 ms ticks: a tiny run may count none.
		for _, id := range []string{ManifestCPU, PushSmallCPU} {
			if v, ok := rec.got[target][id]; !ok || v < 0 {
				t.Errorf("%s %s = %v (recorded: %t)", target, id, v, ok)
			}
		}
		if len(rec.got[target]) != 7 {
			t.Errorf("%s: %d figures, want 7: %v", target, len(rec.got[target]), rec.got[target])
		}
	}
	for i, n := range sides {
		// 4 slices of 8 and 64 clients and one: at least 4*(8+64+5) GETs each.
		if n.Load() < 4*(8+64+5) {
			t.Errorf("side %d answered %d manifest requests", i, n.Load())
		}
	}
	if order(0) != [2]int{0, 1} || order(1) != [2]int{1, 0} || order(2) != [2]int{0, 1} {
		t.Errorf("slices do not alternate A B, B A: %v %v %v", order(0), order(1), order(2))
	}
}

func TestCacheRunPullsFirstThroughTheCacheThenFromIt(t *testing.T) {
	up, upstreamGets := counted(octoserveHandler(t), func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
	})
	upstream := httptest.NewServer(up)
	t.Cleanup(upstream.Close)
	d, err := filesystem.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(d, registry.Options{})
	px, err := proxy.New(config.Proxy{Upstreams: []config.Upstream{{Prefix: "mirror", URL: upstream.URL}}}, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	cache := httptest.NewServer(api.New(reg, api.WithMirror(px)))
	t.Cleanup(cache.Close)
	cfg := tinyConfig()
	cfg.PullReps = 3
	var rec recorder
	r := &CacheRun{Upstream: upstream.URL, Cache: cache.URL, Prefix: "mirror", Round: 1, Cfg: cfg, Emit: rec.emit}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{TargetCacheUpstream, TargetCacheFirst, TargetCacheHit} {
		if rec.got[target][CachePull] <= 0 || rec.got[target][CacheFirstB] <= 0 {
			t.Errorf("%s: %v", target, rec.got[target])
		}
	}
	// Each blob: one direct GET, one by the cache on the first pull, none
	// on the second: the "cached" figure is a cache hit.
	if n := upstreamGets.Load(); n != 2*int64(cfg.PullReps) {
		t.Errorf("the upstream answered %d blob GETs, want %d", n, 2*cfg.PullReps)
	}
}

func TestSectionsReport(t *testing.T) {
	var samples []Sample
	add := func(id, target string, vs ...float64) {
		for i, v := range vs {
			samples = append(samples, Sample{Scenario: id, Target: target, Round: i + 1, Value: v})
		}
	}
	add(ManifestGet8, TargetMetricsOff, 1000, 1000)
	add(ManifestGet8, TargetMetricsOn, 960, 980)
	add(PushSmall1, TargetMetricsOff, 4, 4)
	add(PushSmall1, TargetMetricsOn, 5, 5)
	add(CachePull, TargetCacheUpstream, 1000, 1000)
	add(CachePull, TargetCacheFirst, 700, 900)
	add(CachePull, TargetCacheHit, 1100, 1100)
	add(CacheFirstB, TargetCacheFirst, 30, 30)
	add(ManifestGet1, TargetReplicasDirect, 100, 100)
	add(ManifestGet1, TargetReplicasLB3, 250, 250)
	add(ManifestGet1, TargetMetricsOff, 190.2, 127.4)
	add(ManifestGet1, TargetMetricsOn, 173.1, 134.8)
	rep := Aggregate(samples)
	if len(rep.Rows) != 0 || len(rep.Limits) != 0 {
		t.Fatalf("local rows %d, limits %d: want none", len(rep.Rows), len(rep.Limits))
	}
	if len(rep.Sections) != 3 {
		t.Fatalf("%d sections, want replicas, metrics, cache", len(rep.Sections))
	}
	var md bytes.Buffer
	rep.Markdown(&md)
	for _, want := range []string{
		"## Replicas", "| 2.50 (2.50–2.50); +150 µs |", "| 0.97 (0.91–1.06); −4.85 µs |", // the per-request cost
		"## Metrics", "| manifest GET by tag, 8 clients | req/s (higher is better) | **1000** (1000–1000) | **970** (960–980) | 0.97 (0.96–0.98) | ≥ 0.95 | met |",
		"| 1.25 (1.25–1.25); +1.00 ms | ≤ 1.05 | **missed** |",
		"## Pull-through cache", "| 0.80 (0.70–0.90) | 1.10 (1.10–1.10) | ≥ 0.80 | met |",
		"| that pull's first byte, after the request | ms (lower is better) | – | **30.0** (30.0–30.0) | – | – | – | – | – |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if strings.Contains(md.String(), "Local disks") || strings.Contains(md.String(), "Physical limits") {
		t.Errorf("a report without local samples has the local tables:\n%s", md.String())
	}
	var img bytes.Buffer
	if err := rep.WriteChart(&img, "test"); err != nil {
		t.Fatal(err)
	}
	// Charted: a heading per section, replicas' one row, metrics' three,
	// the cache's pull (the first-byte row has no baseline).
	if rows := rep.chartRows(); len(rows) != 3+5 || rows[0].adv != 0 || rows[0].label != "REPLICAS: 3 behind HAProxy / direct" ||
		rows[2].label != "METRICS: metrics on / metrics off (goal 0.95)" || rows[3].goal != 0.95 {
		t.Errorf("chart rows %+v", rows)
	}
	cfg, err := png.DecodeConfig(&img)
	if err != nil || cfg.Height != chartTop+8*rowHeight+chartBottom {
		t.Fatalf("chart %+v, %v: want 8 rows", cfg, err)
	}
}

func TestProcCPUCountsThisProcess(t *testing.T) {
	m, err := startCPU([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel has counted at least two ticks more.
	for {
		now, err := ProcCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now-m.start >= 2*clockTick {
			break
		}
	}
	if v, err := m.perRequest(2); err != nil || v < float64(clockTick/time.Microsecond) {
		t.Errorf("CPU per request %v µs (%v), want at least one tick", v, err)
	}
	if _, err := ProcCPU(-1); err == nil {
		t.Error("ProcCPU of no process: no error")
	}
}

func TestMedianOfAndTimeEach(t *testing.T) {
	if m := medianOf([]time.Duration{5, 1, 3}); m != 3 {
		t.Errorf("median of 5 1 3 = %v", m)
	}
	if m := medianOf([]time.Duration{4, 1, 3, 2}); m != 2 {
		t.Errorf("median of 4 1 3 2 = %v (2.5 truncated)", m)
	}
	calls := 0
	ts, err := timeEach(context.Background(), 0, func(context.Context, int) error { calls++; return nil })
	if err != nil || calls != 5 || len(ts) != 5 {
		t.Errorf("timeEach for 0s: %d calls, %d times, %v; want at least 5", calls, len(ts), err)
	}
	stop := errors.New("stop")
	if _, err := timeEach(context.Background(), time.Hour, func(_ context.Context, i int) error {
		if i == 2 {
			return stop
		}
		return nil
	}); !errors.Is(err, stop) {
		t.Errorf("timeEach did not return fn's error: %v", err)
	}
}

func TestPacedProxyForwardsPushesAndPulls(t *testing.T) {
	upstream := octoserve(t)
	h, err := PacedProxy(upstream.URL, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	paced := httptest.NewServer(h)
	t.Cleanup(paced.Close)
	c, err := NewClient(paced.URL, 1)
	if err != nil {
		t.Fatal(err)
	}
	data := RandomBytes(9, 300<<10)
	d, err := c.PushPatched(context.Background(), "a/b", data)
	if err != nil {
		t.Fatalf("push through the paced proxy: %v", err)
	}
	if n, _, err := c.PullBlobTimed(context.Background(), "a/b", d); err != nil || n != int64(len(data)) {
		t.Fatalf("pull through the paced proxy: %d bytes, %v", n, err)
	}
	if _, err := PacedProxy(upstream.URL, 0); err == nil {
		t.Error("a rate of 0 was accepted")
	}
}
