// Package metrics is octoserve's Prometheus instrumentation: one registry
// of its own (not the client library's global one) holding every
// collector, and the adapters that feed it from the packages that must not
// import Prometheus — the request wrapper (httplog.Observer), the storage
// driver (a decorator), housekeeping (gc.Observer), auth (two counters it
// keeps) and the registry's usage walk (run in the background, never per
// scrape). docs/operations.md lists every metric.
package metrics

import (
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "octoserve"

// Metrics holds the collectors and the registry that exports them.
type Metrics struct {
	reg          *prometheus.Registry
	http         *httpMetrics
	storage      *storageMetrics
	housekeeping *housekeeping
	cache        *cache
	usage        *usageCollector
	logins       atomic.Pointer[Logins]
}

// Logins is what internal/auth counts since the process started.
type Logins interface {
	FailedLogins() uint64
	RateLimited() uint64
}

// New returns the metrics of a process running version.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.http = newHTTPMetrics(m.reg)
	m.storage = newStorageMetrics(m.reg)
	m.usage = newUsageCollector(m.reg)
	m.housekeeping = newHousekeeping(m.reg, m.usage.trigger)
	m.cache = newCache(m.reg)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "build_info",
			Help:        "Always 1; the labels say which octoserve and Go built this process.",
			ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
		m.loginCounter("auth_failed_logins_total",
			"Requests refused because their credentials were wrong or unusable.", Logins.FailedLogins),
		m.loginCounter("auth_rate_limited_total",
			"Requests refused with 429 because their client address had too many failed logins.", Logins.RateLimited),
	)
	return m
}

// WatchLogins exports what l counts; call it before serving. Without it
// the login counters stay 0 (authentication is off).
func (m *Metrics) WatchLogins(l Logins) { m.logins.Store(&l) }

func (m *Metrics) loginCounter(name, help string, read func(Logins) uint64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, func() float64 {
		if l := m.logins.Load(); l != nil {
			return float64(read(*l))
		}
		return 0
	})
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// DebugMux serves /metrics and the net/http/pprof profiles under
// /debug/pprof/: what belongs on the metrics address and never on the
// public one.
func (m *Metrics) DebugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
