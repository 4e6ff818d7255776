package loadgen

import (
	"context"
	"slices"
	"time"
)

// repoLatency is where the single-client push latency scenario pushes.
const repoLatency = "bench/latency"

// latency measures single requests one after another, from one client:
// the median time of a manifest GET by tag and of a small blob pushed with
// POST and PUT. Throughput under many clients hides what one request
// costs; these rows show it (what a balancer or replication adds to each
// request, or what metrics add to it).
func (r *Runner) latency(ctx context.Context) error {
	c, err := r.client(1)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := pushImage(ctx, c, MetaRepo, "latest", metaLayer); err != nil {
		return err
	}
	get, err := timeEach(ctx, r.Cfg.Duration, func(ctx context.Context, _ int) error {
		_, err := c.GetManifest(ctx, MetaRepo, "latest")
		return err
	})
	if err != nil {
		return err
	}
	r.emit(ManifestGet1, medianOf(get).Seconds()*1e6)
	seed := latencySeed(r.Round)
	push, err := timeEach(ctx, r.Cfg.Duration, func(ctx context.Context, i int) error {
		_, err := c.PushTwoStep(ctx, repoLatency, RandomBytes(seed+uint64(i), r.Cfg.SmallBytes))
		return err
	})
	if err != nil {
		return err
	}
	r.emit(PushSmall1, medianOf(push).Seconds()*1e3)
	return nil
}

// latencySeed spaces the seeds of the pushed blobs per round, so that no
// push finds its blob already stored.
func latencySeed(round int) uint64 { return 1_000_000 * uint64(1+round) }

// timeEach calls fn(i) for i = 0, 1, ... one at a time for about d (at
// least 5 calls however slow) and returns how long each took.
func timeEach(ctx context.Context, d time.Duration, fn func(ctx context.Context, i int) error) ([]time.Duration, error) {
	var times []time.Duration
	deadline := time.Now().Add(d)
	for i := 0; i < 5 || time.Now().Before(deadline); i++ {
		start := time.Now()
		if err := fn(ctx, i); err != nil {
			return times, err
		}
		times = append(times, time.Since(start))
	}
	return times, nil
}

// medianOf is the median of ds (0 for none).
func medianOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}
