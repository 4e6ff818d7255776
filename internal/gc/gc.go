// Package gc runs the registry's storage housekeeping on a schedule inside
// `octoserve serve`: garbage collection every gc.interval (when set) and
// removal of abandoned upload sessions every uploads.purgeInterval. Each
// run takes the housekeeping lease in the store, so with several replicas
// (or `octoserve gc` beside them) one runs at a time and the others skip
// their turn. The collection itself, and why it is safe beside live
// pushes, is in internal/registry (gc.go, protocol.go).
package gc

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/registry"
)

// Observer is told what each housekeeping run did; internal/metrics
// implements it. err is registry.ErrBusy (wrapped) for a run skipped
// because another process held the lease.
type Observer interface {
	// Collected reports a garbage collection; report may be partial
	// (what was removed before err) or nil.
	Collected(report *registry.GCReport, err error, took time.Duration)
	// UploadsExpired reports a run of upload expiry that removed n.
	UploadsExpired(n int, err error)
}

// nobody observes when no Observer is given.
type nobody struct{}

func (nobody) Collected(*registry.GCReport, error, time.Duration) {}
func (nobody) UploadsExpired(int, error)                          {}

// Run does housekeeping until ctx ends, telling obs (when not nil) what
// each run did.
func Run(ctx context.Context, log *slog.Logger, reg *registry.Registry, gcCfg config.GC, up config.Uploads, cache config.Proxy, obs Observer) {
	if obs == nil {
		obs = nobody{}
	}
	purge := time.NewTicker(up.PurgeInterval)
	defer purge.Stop()
	var collect <-chan time.Time
	if gcCfg.Interval > 0 {
		t := time.NewTicker(gcCfg.Interval)
		defer t.Stop()
		collect = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-purge.C:
			ExpireUploads(ctx, log, reg, up.MaxIdle, obs)
		case <-collect:
			Collect(ctx, log, reg, registry.GCOptions{MinAge: gcCfg.MinAge, ClockSkew: gcCfg.ClockSkew, DeleteUntagged: gcCfg.DeleteUntagged, UploadMaxIdle: up.MaxIdle,
				CacheExpiry: cache.Expiry, CacheMaxBytes: cache.MaxBytes}, obs)
		}
	}
}

// ExpireUploads removes the upload sessions idle longer than maxIdle and
// logs what it did.
func ExpireUploads(ctx context.Context, log *slog.Logger, reg *registry.Registry, maxIdle time.Duration, obs Observer) {
	n, err := reg.PurgeUploads(ctx, maxIdle, false)
	obs.UploadsExpired(n, err)
	switch {
	case errors.Is(err, registry.ErrBusy):
		log.Debug("upload expiry skipped: another housekeeping run holds the lease", "error", err)
	case err != nil:
		log.Error("removing abandoned uploads", "error", err)
	case n > 0:
		log.Info("removed abandoned uploads", "count", n, "maxIdle", maxIdle)
	}
}

// Collect runs one garbage collection and logs what it did.
func Collect(ctx context.Context, log *slog.Logger, reg *registry.Registry, opts registry.GCOptions, obs Observer) (*registry.GCReport, error) {
	if obs == nil {
		obs = nobody{}
	}
	start := time.Now()
	report, err := reg.CollectGarbage(ctx, opts)
	obs.Collected(report, err, time.Since(start))
	if errors.Is(err, registry.ErrBusy) {
		log.Info("garbage collection skipped: another collection holds the lease", "error", err)
		return report, err
	}
	if err != nil {
		log.Error("garbage collection failed", "error", err)
		return report, err
	}
	for _, s := range report.Skipped {
		log.Warn("garbage collection skipped a repository", "reason", s)
	}
	log.Info("garbage collection done", "dryRun", opts.DryRun, "cutoff", report.Cutoff, "blobs", len(report.Blobs), "bytesFreed", report.BytesFreed,
		"links", report.Links, "manifests", len(report.Manifests), "referrers", report.Referrers, "uploads", report.Uploads,
		"cacheExpired", len(report.Expired), "duration", time.Since(start))
	return report, nil
}
