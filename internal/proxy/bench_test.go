package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/octoserve/octoserve/internal/api"
	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/proxy/upstreamtest"
	"github.com/octoserve/octoserve/internal/registry"
	"github.com/octoserve/octoserve/internal/storage/filesystem"
)

// BenchmarkFirstPull compares the first pull of a 256 MiB blob through
// the cache with a pull of it from the upstream directly: each iteration
// pulls it once from the upstream and once through a cache that does not
// hold it yet (a fresh one), and reports both throughputs and their ratio
// (the target: at least 0.8). The client reads into io.Discard;
// the cache talks to the upstream directly, as the direct pull does (no
// token front in between).
//
// The upstream is the reference registry when scripts/install-tools.sh
// has installed it (a process of its own, as in production), else an
// octoserve in this process; both serve the blob from the page cache.
//
//	go test -run '^$' -bench FirstPull -benchtime 5x ./internal/proxy/
func BenchmarkFirstPull(b *testing.B) {
	const size = 256 << 20
	upstreamURL, kind := benchUpstream(b)
	b.Logf("upstream: %s", kind)
	data := upstreamtest.RandomBytes(size)
	d := upstreamtest.NewPusher(upstreamURL).Blob(b, "bench/big", data)
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	pull := func(url string) time.Duration {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %s, %d bytes (%v)", url, resp.Status, n, err)
		}
		return time.Since(start)
	}
	pull(upstreamURL + "/v2/bench/big/blobs/" + d) // warm the page cache
	var direct, cached time.Duration
	b.SetBytes(2 * size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		direct += pull(upstreamURL + "/v2/bench/big/blobs/" + d)
		b.StopTimer()
		srv, px := benchCache(b, upstreamURL)
		b.StartTimer()
		cached += pull(srv.URL + "/v2/" + prefix + "/bench/big/blobs/" + d)
		b.StopTimer()
		px.Close() // the fetch's commit ends off the clock
		srv.Close()
		b.StartTimer()
	}
	mbps := func(t time.Duration) float64 { return float64(size) * float64(b.N) / t.Seconds() / 1e6 }
	b.ReportMetric(mbps(direct), "direct-MB/s")
	b.ReportMetric(mbps(cached), "cache-MB/s")
	b.ReportMetric(direct.Seconds()/cached.Seconds(), "ratio")
}

// benchUpstream starts the reference registry if it is installed, else an
// in-process octoserve, and returns its URL and what it is.
func benchUpstream(b testing.TB) (string, string) {
	bin := filepath.Join("..", "..", upstreamtest.ReferenceBin)
	if _, err := os.Stat(bin); err == nil {
		return upstreamtest.StartReference(b, bin), "reference registry v3.1.2 (" + bin + ")"
	}
	d, err := filesystem.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api.New(registry.New(d, registry.Options{})))
	b.Cleanup(srv.Close)
	return srv.URL, "octoserve in process (the reference registry is not installed: scripts/install-tools.sh)"
}

// benchCache is a fresh cache of the upstream at url.
func benchCache(b testing.TB, url string) (*httptest.Server, *Proxy) {
	d, err := filesystem.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.New(d, registry.Options{})
	px, err := New(config.Proxy{Upstreams: []config.Upstream{{Prefix: prefix, URL: url}}}, reg)
	if err != nil {
		b.Fatal(err)
	}
	return httptest.NewServer(api.New(reg, api.WithMirror(px))), px
}
