package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octoserve/octoserve/internal/gc"
	"github.com/octoserve/octoserve/internal/registry"
)

// housekeeping is the gc.Observer: what the collections and upload expiry
// scheduled inside this process did. A run skipped because another
// process (a replica, `octoserve gc`) held the lease counts as skipped.
type housekeeping struct {
	runs        *prometheus.CounterVec
	expiryRuns  *prometheus.CounterVec
	duration    prometheus.Histogram
	blobs       prometheus.Counter
	manifests   prometheus.Counter
	freed       prometheus.Counter
	expired     prometheus.Counter
	lastSuccess prometheus.Gauge
	interval    prometheus.Gauge
	afterGC     func() // asks for a usage scan
}

var _ gc.Observer = (*housekeeping)(nil)

func newHousekeeping(reg prometheus.Registerer, afterGC func()) *housekeeping {
	results := []string{"success", "failure", "skipped"}
	h := &housekeeping{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "gc_runs_total",
			Help: "Scheduled garbage collections, by result; skipped: another process held the housekeeping lease.",
		}, []string{"result"}),
		expiryRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "upload_expiry_runs_total",
			Help: "Scheduled removals of idle upload sessions, by result; skipped: another process held the housekeeping lease.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "gc_duration_seconds",
			Help:    "Duration of the garbage collections that ran (succeeded or failed).",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10), // 10 ms to 43 min
		}),
		blobs:     counter("gc_blobs_removed_total", "Blobs (layers, configs, manifest bytes) removed by garbage collection."),
		manifests: counter("gc_manifests_removed_total", "Manifests removed by garbage collection (gc.deleteUntagged)."),
		freed:     counter("gc_freed_bytes_total", "Bytes of the blobs garbage collection removed."),
		expired:   counter("uploads_expired_total", "Idle upload sessions removed, by upload expiry or a collection."),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "gc_last_success_timestamp_seconds",
			Help: "When the last successful collection of this process ended (Unix time; 0: none yet).",
		}),
		interval: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "gc_interval_seconds",
			Help: "gc.interval: how often this process runs a collection (0: never).",
		}),
		afterGC: afterGC,
	}
	for _, r := range results {
		h.runs.WithLabelValues(r)
		h.expiryRuns.WithLabelValues(r)
	}
	reg.MustRegister(h.runs, h.expiryRuns, h.duration, h.blobs, h.manifests, h.freed, h.expired, h.lastSuccess, h.interval)
	return h
}

// Housekeeping returns the observer to give gc.Run, which runs a
// collection every interval (0: never).
func (m *Metrics) Housekeeping(interval time.Duration) gc.Observer {
	m.housekeeping.interval.Set(interval.Seconds())
	return m.housekeeping
}

func result(err error) string {
	switch {
	case errors.Is(err, registry.ErrBusy):
		return "skipped"
	case err != nil:
		return "failure"
	}
	return "success"
}

func (h *housekeeping) Collected(report *registry.GCReport, err error, took time.Duration) {
	res := result(err)
	h.runs.WithLabelValues(res).Inc()
	if res == "skipped" {
		return
	}
	h.duration.Observe(took.Seconds())
	if report != nil { // what a failed run removed is removed all the same
		h.blobs.Add(float64(len(report.Blobs)))
		h.manifests.Add(float64(len(report.Manifests)))
		h.freed.Add(float64(report.BytesFreed))
		h.expired.Add(float64(report.Uploads))
	}
	if res == "success" {
		h.lastSuccess.SetToCurrentTime()
		h.afterGC()
	}
}

func (h *housekeeping) UploadsExpired(n int, err error) {
	h.expiryRuns.WithLabelValues(result(err)).Inc()
	h.expired.Add(float64(n))
}
