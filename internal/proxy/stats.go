package proxy

import (
	"sync"
	"sync/atomic"
)

// Kind is what a cache event concerns.
type Kind string

// The kinds of content the cache serves.
const (
	KindManifest Kind = "manifest"
	KindBlob     Kind = "blob"
)

// Observer is told what the cache does, for metrics (internal/metrics can
// implement it; see WithObserver). Its methods are called on the request
// path: they must be fast and safe for concurrent use.
type Observer interface {
	// CacheHit: a pull served from what the cache holds, without
	// fetching it (a request that waited for another's fetch included).
	CacheHit(kind Kind)
	// CacheMiss: a pull that fetched the content from the upstream.
	CacheMiss(kind Kind)
	// StaleServed: a cached copy served because the upstream failed,
	// timed out or answered 429 when asked whether a tag moved.
	StaleServed(kind Kind)
	// UpstreamBytes: n bytes of content received from upstream.
	UpstreamBytes(upstream string, n int64)
	// UpstreamError: a request to upstream failed with status, or with
	// no answer (network error, timeout) when status is 0.
	UpstreamError(upstream string, status int)
}

// Stats is a snapshot of Counters.
type Stats struct {
	ManifestHits, BlobHits     int64
	ManifestMisses, BlobMisses int64
	Stale                      int64
	UpstreamBytes              int64
	UpstreamErrors             map[int]int64 // by status; 0: no answer
}

// Counters is the Observer every Proxy keeps (Proxy.Stats).
type Counters struct {
	manifestHits, blobHits     atomic.Int64
	manifestMisses, blobMisses atomic.Int64
	stale, upstreamBytes       atomic.Int64
	mu                         sync.Mutex
	errors                     map[int]int64
}

// CacheHit implements Observer.
func (c *Counters) CacheHit(kind Kind) {
	if kind == KindManifest {
		c.manifestHits.Add(1)
	} else {
		c.blobHits.Add(1)
	}
}

// CacheMiss implements Observer.
func (c *Counters) CacheMiss(kind Kind) {
	if kind == KindManifest {
		c.manifestMisses.Add(1)
	} else {
		c.blobMisses.Add(1)
	}
}

// StaleServed implements Observer.
func (c *Counters) StaleServed(Kind) { c.stale.Add(1) }

// UpstreamBytes implements Observer.
func (c *Counters) UpstreamBytes(_ string, n int64) { c.upstreamBytes.Add(n) }

// UpstreamError implements Observer.
func (c *Counters) UpstreamError(_ string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errors == nil {
		c.errors = map[int]int64{}
	}
	c.errors[status]++
}

// Snapshot returns the counts so far.
func (c *Counters) Snapshot() Stats {
	s := Stats{
		ManifestHits: c.manifestHits.Load(), BlobHits: c.blobHits.Load(),
		ManifestMisses: c.manifestMisses.Load(), BlobMisses: c.blobMisses.Load(),
		Stale: c.stale.Load(), UpstreamBytes: c.upstreamBytes.Load(),
		UpstreamErrors: map[int]int64{},
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.errors {
		s.UpstreamErrors[k] = v
	}
	return s
}

// observers calls each of a list of Observers.
type observers []Observer

func (o observers) CacheHit(k Kind) {
	for _, x := range o {
		x.CacheHit(k)
	}
}

func (o observers) CacheMiss(k Kind) {
	for _, x := range o {
		x.CacheMiss(k)
	}
}

func (o observers) StaleServed(k Kind) {
	for _, x := range o {
		x.StaleServed(k)
	}
}

func (o observers) UpstreamBytes(u string, n int64) {
	for _, x := range o {
		x.UpstreamBytes(u, n)
	}
}

func (o observers) UpstreamError(u string, status int) {
	for _, x := range o {
		x.UpstreamError(u, status)
	}
}
