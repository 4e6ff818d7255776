package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/octoserve/octoserve/internal/proxy"
)

// What the pull-through cache reports lands in its counters, one for one.
func TestCacheObserver(t *testing.T) {
	m := New("test")
	o := m.Cache()
	o.CacheHit(proxy.KindBlob)
	o.CacheHit(proxy.KindBlob)
	o.CacheMiss(proxy.KindManifest)
	o.StaleServed(proxy.KindManifest)
	o.UpstreamBytes("docker.io", 1000)
	o.UpstreamBytes("docker.io", 24)
	o.UpstreamError("docker.io", 429)
	o.UpstreamError("ghcr.io", 0)
	for _, tc := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.cache.requests.WithLabelValues("blob", "hit")), 2, "blob hits"},
		{testutil.ToFloat64(m.cache.requests.WithLabelValues("blob", "miss")), 0, "blob misses"},
		{testutil.ToFloat64(m.cache.requests.WithLabelValues("manifest", "miss")), 1, "manifest misses"},
		{testutil.ToFloat64(m.cache.requests.WithLabelValues("manifest", "stale")), 1, "stale manifests"},
		{testutil.ToFloat64(m.cache.bytes.WithLabelValues("docker.io")), 1024, "upstream bytes"},
		{testutil.ToFloat64(m.cache.errors.WithLabelValues("docker.io", "429")), 1, "429s"},
		{testutil.ToFloat64(m.cache.errors.WithLabelValues("ghcr.io", "0")), 1, "unanswered requests"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.what, tc.got, tc.want)
		}
	}
}
