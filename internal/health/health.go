// Package health answers the probes of load balancers and Kubernetes:
// GET /healthz (the process serves HTTP) and GET /readyz (the store is
// reachable and writable). Neither needs credentials and neither says more
// than "ok" or "not ready": why is logged, not served.
//
// /readyz is public, so a flood of probes must not become a flood of
// storage writes: a probe result is reused for MaxAge, and at most one
// probe runs at a time.
package health

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Defaults for Checker.
const (
	DefaultTimeout = 2 * time.Second
	DefaultMaxAge  = time.Second
)

// errTimeout is a probe that took longer than the timeout.
var errTimeout = errors.New("storage probe timed out")

// Checker runs a readiness probe on demand, at most one at a time, and
// reuses a result for MaxAge.
type Checker struct {
	probe   func(context.Context) error
	timeout time.Duration
	maxAge  time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	last    error     // result of the last finished probe
	lastAt  time.Time // when it finished; zero before the first
	running chan struct{}
	since   time.Time // when the running probe started
}

// NewChecker returns a Checker running probe with timeout, reusing a
// result for maxAge (0: probe on every request, for tests).
func NewChecker(probe func(context.Context) error, timeout, maxAge time.Duration, log *slog.Logger) *Checker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checker{probe: probe, timeout: timeout, maxAge: maxAge, log: log}
}

// Ready returns nil when the last probe, at most maxAge old, succeeded,
// else runs one (or joins the one running) and returns its result. It
// never waits longer than the probe's timeout: a probe hung in the store
// makes Ready fail at once until the probe returns.
func (c *Checker) Ready(ctx context.Context) error {
	c.mu.Lock()
	if !c.lastAt.IsZero() && time.Since(c.lastAt) < c.maxAge {
		err := c.last
		c.mu.Unlock()
		return err
	}
	if c.running == nil {
		c.running, c.since = make(chan struct{}), time.Now()
		go c.run(c.running)
	}
	done, deadline := c.running, c.since.Add(c.timeout)
	c.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.last
	case <-timer.C:
		return errTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run runs one probe and records its result; a change is logged.
func (c *Checker) run(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	err := c.probe(ctx)
	if err == nil && ctx.Err() != nil {
		err = errTimeout // finished, but too late to count as healthy
	}
	c.mu.Lock()
	wasReady, first := c.last == nil, c.lastAt.IsZero()
	c.last, c.lastAt, c.running = err, time.Now(), nil
	c.mu.Unlock()
	close(done)
	switch {
	case err != nil && (wasReady || first):
		c.log.Warn("not ready: the storage probe failed", "error", err)
	case err == nil && !wasReady:
		c.log.Info("ready again: the storage probe succeeded")
	}
}

// Handler serves GET and HEAD /healthz and /readyz from c and passes
// every other path to next (nil: 404). It dispatches on the exact path
// rather than through a ServeMux, which would clean and redirect the
// paths meant for next.
func Handler(c *Checker, next http.Handler) http.Handler {
	if next == nil {
		next = http.NotFoundHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			answer(w, http.StatusMethodNotAllowed, "method not allowed\n")
		case r.URL.Path == "/readyz" && c.Ready(r.Context()) != nil:
			answer(w, http.StatusServiceUnavailable, "not ready\n")
		default:
			answer(w, http.StatusOK, "ok\n")
		}
	})
}

func answer(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
