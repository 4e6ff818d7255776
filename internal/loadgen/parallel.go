package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// forEach runs fn(i) for every i in [0, n) on workers goroutines and
// returns the first error (the others stop taking work).
func forEach(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return ctx.Err()
}

// forDuration runs fn in a loop on workers goroutines for d (each worker
// calls it at least once, however busy the machine) and returns how many
// calls completed and the time they took. The first error stops every
// worker.
func forDuration(ctx context.Context, workers int, d time.Duration, fn func(ctx context.Context) error) (int64, time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Go(func() {
			for first := true; ctx.Err() == nil && (first || time.Now().Before(deadline)); first = false {
				if err := fn(ctx); err != nil {
					cancel(err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return done.Load(), elapsed, err
	}
	return done.Load(), elapsed, ctx.Err()
}
