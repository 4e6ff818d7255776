// Package proxy makes octoserve a pull-through cache of upstream
// registries (Docker Hub, ghcr.io, quay.io, another octoserve): a pull of
// a repository under an upstream's prefix is served from what octoserve
// holds, and what it does not hold yet is fetched from the upstream on
// demand, streamed to the client while it is stored, and kept.
//
// The proxy never touches storage itself: it stores through the
// registry's API (PutCachedManifest, FillBlob), which verifies every digest
// before anything is kept and follows the registry's garbage collection
// protocol. It knows nothing of the HTTP API either beyond the
// api.Mirror interface it implements: which repository a request names,
// whether it may write there, and the content of pulls.
//
// Manifests (manifest.go): by digest, fetched once; by tag, revalidated
// with a HEAD upstream at most once per interval, and served from the
// cache when the upstream fails (stale beats broken). Blobs (blob.go):
// fetched once however many clients ask at the same time, streamed to the
// first of them as the bytes arrive. Expiry by last use and the size cap
// are garbage collection's (internal/registry/expire.go).
package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/octoserve/octoserve/internal/config"
	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/registry"
)

// Proxy is the pull-through cache in front of a registry.
type Proxy struct {
	reg       *registry.Registry
	upstreams []*upstream
	byNS      map[string]*upstream
	fallback  *upstream // serves names under no prefix (Docker's registry-mirrors)
	log       *slog.Logger
	counters  *Counters
	obs       Observer
	extra     []Observer

	now         func() time.Time
	revalidated *clock // name:tag -> last time upstream was asked about it
	used        *clock // name@digest -> last time its use was recorded
	touchEvery  time.Duration
	manifests   flight[manifestResult]
	blobs       blobFetches

	ctx     context.Context // fetches run until Close
	cancel  context.CancelFunc
	running sync.WaitGroup // blob fetches
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithLogger logs cache events (upstream failures, stale copies served,
// content that did not verify) to log.
func WithLogger(log *slog.Logger) Option { return func(p *Proxy) { p.log = log } }

// WithObserver reports every cache event to o as well (metrics).
func WithObserver(o Observer) Option { return func(p *Proxy) { p.extra = append(p.extra, o) } }

// New returns the cache cfg describes in front of reg.
func New(cfg config.Proxy, reg *registry.Registry, opts ...Option) (*Proxy, error) {
	p := &Proxy{
		reg: reg, byNS: map[string]*upstream{}, log: slog.New(slog.DiscardHandler), counters: &Counters{},
		now: time.Now, touchEvery: touchInterval(cfg),
	}
	for _, o := range opts {
		o(p)
	}
	p.revalidated, p.used = newClock(p.now), newClock(p.now)
	p.obs = append(observers{p.counters}, p.extra...)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for _, uc := range cfg.Upstreams {
		u, err := newUpstream(uc, p.obs)
		if err != nil {
			return nil, err
		}
		p.upstreams = append(p.upstreams, u)
		for _, ns := range u.cfg.Namespaces {
			p.byNS[ns] = u
		}
		if strings.Trim(cfg.DefaultUpstream, "/") == u.cfg.Prefix {
			p.fallback = u
		}
	}
	return p, nil
}

// touchInterval is how often one manifest's use is recorded in the store:
// often enough for expiry to see it, rarely enough to cost nothing.
func touchInterval(cfg config.Proxy) time.Duration {
	if cfg.Expiry <= 0 && cfg.MaxBytes <= 0 {
		return 0 // nothing reads it
	}
	every := time.Hour
	if cfg.Expiry > 0 && cfg.Expiry/8 < every {
		every = cfg.Expiry / 8
	}
	return max(every, time.Second)
}

// Close stops the fetches in progress and waits for them to end.
func (p *Proxy) Close() {
	p.cancel()
	p.running.Wait()
}

// Stats returns the cache's counts so far.
func (p *Proxy) Stats() Stats { return p.counters.Snapshot() }

// match returns the upstream whose prefix name is under, and the name the
// upstream knows it by; nil for a local repository.
func (p *Proxy) match(name string) (*upstream, string) {
	for _, u := range p.upstreams {
		if remote, ok := strings.CutPrefix(name, u.cfg.Prefix+"/"); ok {
			return u, remote
		}
	}
	return nil, ""
}

// Repository maps the repository a request names onto the one it means.
// containerd's hosts.toml mirrors send the image's registry in ?ns= and
// the repository without it ("library/alpine?ns=docker.io"); Docker's
// registry-mirrors send Docker Hub names alone, where "alpine" means
// "library/alpine". Names already under a prefix, and names the config
// maps to no upstream, are left as they are.
func (p *Proxy) Repository(name, ns string) string {
	if ns != "" {
		if u := p.byNS[ns]; u != nil {
			return p.under(u, name)
		}
		return name
	}
	if u, _ := p.match(name); u != nil || p.fallback == nil {
		return name
	}
	return p.under(p.fallback, name)
}

func (p *Proxy) under(u *upstream, name string) string {
	if u == p.fallback && !strings.Contains(name, "/") {
		name = "library/" + name // Docker Hub's official images
	}
	return u.cfg.Prefix + "/" + name
}

// CheckWrite refuses pushes and deletes to a read-only cached repository.
func (p *Proxy) CheckWrite(name string) error {
	u, _ := p.match(name)
	if u == nil || u.cfg.Push {
		return nil
	}
	return ocierr.New(ocierr.Denied, http.StatusForbidden,
		"repository %s is a read-only pull-through cache of %s: push to a repository outside %s/", name, u.cfg.URL, u.cfg.Prefix)
}

// logStale counts and logs an upstream failure a cached copy covered.
func (p *Proxy) logStale(u *upstream, kind Kind, ref string, err error) {
	p.obs.StaleServed(kind)
	p.log.Warn("upstream failed; serving the cached copy", "upstream", u.cfg.URL, "kind", string(kind), "reference", ref, "error", err)
}
