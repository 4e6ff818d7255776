package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octoserve/octoserve/internal/registry"
)

// UsageSource counts what the store holds: *registry.Registry.
type UsageSource interface {
	Usage(ctx context.Context) (*registry.Usage, error)
}

// usageCollector exports the last usage scan. A scan walks every blob
// (registry.Usage says what that costs), so it runs in the background —
// at start, every metrics.usageInterval and after each successful
// collection — and a scrape only copies its result.
type usageCollector struct {
	mu   sync.Mutex
	last *registry.Usage
	at   time.Time
	took time.Duration

	kick  chan struct{}
	scans *prometheus.CounterVec

	bytes, blobs, unlinkedBytes, repos, uploads, uploadBytes, scanAt, scanTook *prometheus.Desc
	repoBytes, repoBlobs                                                       *prometheus.Desc
}

func newUsageCollector(reg prometheus.Registerer) *usageCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help+" As of the last usage scan.", labels, nil)
	}
	u := &usageCollector{
		kick: make(chan struct{}, 1),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "usage_scans_total",
			Help: "Background walks of the store counting what it holds, by result.",
		}, []string{"result"}),
		bytes:         desc("storage_bytes", "Bytes of every stored blob (layers, configs, manifests), each counted once."),
		blobs:         desc("storage_blobs", "Blobs stored."),
		unlinkedBytes: desc("storage_unlinked_bytes", "Bytes of blobs no repository links: the next collection past gc.minAge removes them."),
		repos:         desc("repositories", "Repositories linking at least one blob."),
		uploads:       desc("uploads_in_progress", "Upload sessions in the store: open, or abandoned and not yet expired."),
		uploadBytes:   desc("uploads_in_progress_bytes", "Bytes the upload sessions in the store have received."),
		scanAt:        desc("usage_scan_timestamp_seconds", "When the last usage scan ended (Unix time)."),
		scanTook:      desc("usage_scan_duration_seconds", "How long the last usage scan took."),
		repoBytes:     desc("repository_bytes", "Bytes of the blobs a repository links, shared ones included.", "repository"),
		repoBlobs:     desc("repository_blobs", "Blobs a repository links.", "repository"),
	}
	u.scans.WithLabelValues("success")
	u.scans.WithLabelValues("failure")
	reg.MustRegister(u, u.scans)
	return u
}

func (u *usageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{u.bytes, u.blobs, u.unlinkedBytes, u.repos, u.uploads, u.uploadBytes, u.scanAt, u.scanTook, u.repoBytes, u.repoBlobs} {
		ch <- d
	}
}

// Collect copies the last scan; before the first one it exports nothing.
func (u *usageCollector) Collect(ch chan<- prometheus.Metric) {
	u.mu.Lock()
	last, at, took := u.last, u.at, u.took
	u.mu.Unlock()
	if last == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(u.bytes, float64(last.Bytes))
	gauge(u.blobs, float64(last.Blobs))
	gauge(u.unlinkedBytes, float64(last.UnlinkedBytes))
	gauge(u.repos, float64(len(last.Repositories)))
	gauge(u.uploads, float64(last.Uploads))
	gauge(u.uploadBytes, float64(last.UploadBytes))
	gauge(u.scanAt, float64(at.UnixNano())/1e9)
	gauge(u.scanTook, took.Seconds())
	for name, r := range last.Repositories {
		gauge(u.repoBytes, float64(r.Bytes), name)
		gauge(u.repoBlobs, float64(r.Blobs), name)
	}
}

// trigger asks for a scan soon; a scan already asked for is enough.
func (u *usageCollector) trigger() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// ScanUsage counts what src holds now and keeps the result for scrapes.
func (m *Metrics) ScanUsage(ctx context.Context, src UsageSource) error {
	start := time.Now()
	usage, err := src.Usage(ctx)
	if err != nil {
		m.usage.scans.WithLabelValues("failure").Inc()
		return err
	}
	m.usage.scans.WithLabelValues("success").Inc()
	m.usage.mu.Lock()
	m.usage.last, m.usage.at, m.usage.took = usage, time.Now(), time.Since(start)
	m.usage.mu.Unlock()
	return nil
}

// RunUsage scans at once, then every interval and after each successful
// collection, until ctx ends.
func (m *Metrics) RunUsage(ctx context.Context, src UsageSource, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := m.ScanUsage(ctx, src); err != nil && ctx.Err() == nil {
			log.Error("counting storage usage for the metrics", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.usage.kick:
		}
	}
}
