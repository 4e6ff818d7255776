package loadgen

import (
	"context"
	"fmt"
	"io"
	"time"
)

// repoCache is the upstream repository of the pull-through cache scenario.
const repoCache = "bench/cache"

// CacheRun measures octoserve as a pull-through cache (docs/mirror.md) of
// an upstream registry: PullReps big blobs are pushed to the upstream,
// and each is pulled directly from the upstream, for the first time
// through octoserve (which fetches it from the upstream while it streams
// it to the client and stores it), and once more through octoserve (held
// by then). The client verifies every digest.
type CacheRun struct {
	Upstream string // the upstream registry's base URL, as octoserve reaches it
	Origin   string // where the blobs are pushed (default: Upstream), e.g. the upstream itself when Upstream is a slow link to it
	Cache    string // octoserve's base URL
	Prefix   string // the repository prefix under which octoserve mirrors the upstream
	// Targets name the direct pull, the first pull through octoserve and
	// the second in the samples (default: TargetCacheUpstream,
	// TargetCacheFirst, TargetCacheHit).
	Targets [3]string
	// Seed is added to the seeds of the blobs: runs against one cache
	// need different ones, or the second finds its blobs held already.
	Seed  uint64
	Round int
	Cfg   Config
	Emit  func(Sample)
	Log   io.Writer
}

// cachePull is one of the three ways a blob is pulled.
type cachePull struct {
	target string
	c      *Client
	repo   string
	bytes  int64
	took   time.Duration
	first  []time.Duration
}

// Run pushes and pulls the blobs and emits each way's throughput and
// median time to the first byte.
func (r *CacheRun) Run(ctx context.Context) error {
	up, err := NewClient(r.Upstream, 1)
	if err != nil {
		return err
	}
	defer up.Close()
	origin := up
	if r.Origin != "" {
		if origin, err = NewClient(r.Origin, 1); err != nil {
			return err
		}
		defer origin.Close()
	}
	targets := r.Targets
	if targets == [3]string{} {
		targets = [3]string{TargetCacheUpstream, TargetCacheFirst, TargetCacheHit}
	}
	cache, err := NewClient(r.Cache, 1)
	if err != nil {
		return err
	}
	defer cache.Close()
	direct := &cachePull{target: targets[0], c: up, repo: repoCache}
	first := &cachePull{target: targets[1], c: cache, repo: r.Prefix + "/" + repoCache}
	hit := &cachePull{target: targets[2], c: cache, repo: first.repo}
	for i := range r.Cfg.PullReps {
		// A fresh blob each time (pushed, so in the upstream's page
		// cache, as the direct pull finds it); which pull goes first
		// alternates.
		d, err := origin.PushPatched(ctx, repoCache, RandomBytes(r.Seed+cacheSeed(r.Round, i), r.Cfg.BigBytes))
		if err != nil {
			return fmt.Errorf("pushing to the upstream: %w", err)
		}
		pulls := []*cachePull{direct, first, hit}
		if i%2 == 1 {
			pulls = []*cachePull{first, hit, direct}
		}
		for _, p := range pulls {
			start := time.Now()
			_, at, err := p.c.PullBlobTimed(ctx, p.repo, d)
			if err != nil {
				return fmt.Errorf("%s: %w", p.target, err)
			}
			p.took += time.Since(start)
			p.bytes += int64(r.Cfg.BigBytes)
			p.first = append(p.first, at)
		}
	}
	for _, p := range []*cachePull{direct, first, hit} {
		r.emit(p.target, CachePull, mibPerSec(p.bytes, p.took))
		r.emit(p.target, CacheFirstB, medianOf(p.first).Seconds()*1e3)
	}
	return nil
}

// cacheSeed differs for every blob of every round: each is new to the cache.
func cacheSeed(round, i int) uint64 { return 2_000_000 + 1000*uint64(round) + uint64(i) }

func (r *CacheRun) emit(target, id string, v float64) {
	r.Emit(Sample{Scenario: id, Target: target, Round: r.Round, Value: v})
	if s, ok := Lookup(id); ok && r.Log != nil {
		fmt.Fprintf(r.Log, "%s round %d: %-55s %12.1f %s\n", target, r.Round, s.Title, v, s.Unit)
	}
}
