package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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
// token front in between). "loopback" is the upstream on this host;
// "1Gbit" the same behind a link paced to 125 MB/s.
//
// The upstream is the reference registry when scripts/install-tools.sh
// has installed it (a process of its own, as in production), else an
// octoserve in this process; both serve the blob from the page cache.
//
//	go test -run '^$' -bench FirstPull -benchtime 5x ./internal/proxy/
func BenchmarkFirstPull(b *testing.B) {
	upstreamURL, kind := benchUpstream(b)
	b.Logf("upstream: %s", kind)
	b.Run("loopback", func(b *testing.B) { benchFirstPull(b, upstreamURL) })
	// The same upstream behind a link of 1 Gbit/s, as a registry on the
	// internet is at best: the cache's own work no longer shows.
	b.Run("1Gbit", func(b *testing.B) { benchFirstPull(b, pacedProxy(b, upstreamURL, 125e6)) })
}

func benchFirstPull(b *testing.B, upstreamURL string) {
	const size = 256 << 20
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

// pacedProxy forwards to target, sending response bodies at no more than
// rate bytes per second.
func pacedProxy(b *testing.B, target string, rate float64) string {
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	rp.ModifyResponse = func(resp *http.Response) error {
		resp.Body = &paced{ReadCloser: resp.Body, rate: rate, start: time.Now()}
		return nil
	}
	srv := httptest.NewServer(rp)
	b.Cleanup(srv.Close)
	return srv.URL
}

// paced delays reads so that no more than rate bytes per second pass.
type paced struct {
	io.ReadCloser
	rate  float64
	start time.Time
	n     int64
}

func (p *paced) Read(buf []byte) (int, error) {
	if len(buf) > 64<<10 {
		buf = buf[:64<<10]
	}
	n, err := p.ReadCloser.Read(buf)
	p.n += int64(n)
	if ahead := time.Duration(float64(p.n)/p.rate*float64(time.Second)) - time.Since(p.start); ahead > 0 {
		time.Sleep(ahead) // a benchmark's link, not a test's synchronisation
	}
	return n, err
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
