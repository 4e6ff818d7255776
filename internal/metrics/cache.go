package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octoserve/octoserve/internal/proxy"
)

// cache is the proxy.Observer: what the pull-through cache served and
// fetched (docs/mirror.md).
type cache struct {
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

var _ proxy.Observer = (*cache)(nil)

func newCache(reg prometheus.Registerer) *cache {
	c := &cache{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_requests_total",
			Help: "Pulls of cached repositories by kind (manifest, blob) and result: hit (served from the cache), miss (fetched from the upstream), stale (served from the cache because the upstream failed, timed out or answered 429).",
		}, []string{"kind", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_upstream_bytes_total",
			Help: "Bytes of content received from each upstream (by its repository prefix).",
		}, []string{"upstream"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_upstream_errors_total",
			Help: "Requests to an upstream that failed, by HTTP status (0: no answer: network error or timeout).",
		}, []string{"upstream", "status"}),
	}
	for _, k := range []proxy.Kind{proxy.KindManifest, proxy.KindBlob} {
		for _, r := range []string{"hit", "miss", "stale"} {
			c.requests.WithLabelValues(string(k), r)
		}
	}
	reg.MustRegister(c.requests, c.bytes, c.errors)
	return c
}

// Cache returns the observer to give the pull-through cache.
func (m *Metrics) Cache() proxy.Observer { return m.cache }

func (c *cache) CacheHit(k proxy.Kind)    { c.requests.WithLabelValues(string(k), "hit").Inc() }
func (c *cache) CacheMiss(k proxy.Kind)   { c.requests.WithLabelValues(string(k), "miss").Inc() }
func (c *cache) StaleServed(k proxy.Kind) { c.requests.WithLabelValues(string(k), "stale").Inc() }

func (c *cache) UpstreamBytes(upstream string, n int64) {
	c.bytes.WithLabelValues(upstream).Add(float64(n))
}

func (c *cache) UpstreamError(upstream string, status int) {
	c.errors.WithLabelValues(upstream, strconv.Itoa(status)).Inc()
}
