package proxy

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/octoserve/octoserve/internal/ocierr"
	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/registry"
)

// Manifests. By digest: served from the cache, fetched once if missing.
// By tag: served from the cache while the tag was checked upstream less
// than the upstream's revalidate interval ago; after that the first pull
// asks the upstream with a HEAD (which Docker Hub does not count against
// its pull limit) and fetches the manifest only if the tag moved to one
// the cache lacks. When the upstream does not answer, times out, answers
// 429 or 5xx, or sends what does not verify, the cached copy is served
// (stale beats broken), logged and counted; the tag is asked about again
// only after another interval. An upstream's 404 is believed: the tag is
// removed from the cache. Concurrent pulls of one reference share one
// upstream request.

// manifestResult is what one upstream exchange about a reference gave.
type manifestResult struct {
	m       *registry.Manifest
	fetched bool // the manifest came from upstream
}

// GetManifest returns manifest ref (tag or digest) of repository name.
func (p *Proxy) GetManifest(ctx context.Context, name, ref string) (*registry.Manifest, error) {
	u, remote := p.match(name)
	if u == nil {
		return p.reg.GetManifest(ctx, name, ref)
	}
	local, err := p.reg.GetManifest(ctx, name, ref)
	if err != nil && !isUnknown(err, ocierr.ManifestUnknown) {
		return nil, err
	}
	isTag := !strings.Contains(ref, ":")
	if err == nil && (!isTag || p.revalidated.within(name+":"+ref, u.cfg.Revalidate)) {
		p.served(ctx, name, local, false)
		return local, nil
	}
	if err != nil {
		local = nil
	}
	res, shared, err := p.manifests.doShared(ctx, name+" "+ref, func() (manifestResult, error) {
		if local != nil {
			return p.revalidate(u, remote, name, ref, local)
		}
		return p.fetchManifest(u, remote, name, ref)
	})
	switch {
	case err == nil:
		p.served(ctx, name, res.m, res.fetched && !shared)
		return res.m, nil
	case local != nil && upstreamFailed(err):
		p.logStale(u, KindManifest, name+":"+ref, err)
		p.served(ctx, name, local, false)
		return local, nil
	}
	return nil, clientError(u, KindManifest, ref, err)
}

// served counts a manifest served and records its use.
func (p *Proxy) served(ctx context.Context, name string, m *registry.Manifest, fetched bool) {
	if fetched {
		p.obs.CacheMiss(KindManifest)
		p.used.mark(name + "@" + m.Digest.String()) // its cached entry was just written
		return
	}
	p.obs.CacheHit(KindManifest)
	if p.touchEvery > 0 && p.used.due(name+"@"+m.Digest.String(), p.touchEvery) {
		if err := p.reg.TouchCached(ctx, name, m.Digest); err != nil {
			p.log.Warn("recording the use of a cached manifest", "repository", name, "digest", m.Digest.String(), "error", err)
		}
	}
}

// revalidate asks the upstream whether tag still points at local and
// follows it if it moved.
func (p *Proxy) revalidate(u *upstream, remote, name, tag string, local *registry.Manifest) (manifestResult, error) {
	p.revalidated.mark(name + ":" + tag) // once per interval, whatever the answer
	ctx, cancel := context.WithTimeout(p.ctx, u.cfg.Timeout)
	defer cancel()
	resp, err := u.manifest(ctx, http.MethodHead, remote, tag)
	if err != nil {
		return manifestResult{}, err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		if err := p.reg.DeleteManifest(p.ctx, name, tag); err != nil && !isUnknown(err, ocierr.ManifestUnknown) {
			p.log.Warn("removing a tag the upstream no longer has", "repository", name, "tag", tag, "error", err)
		}
		return manifestResult{}, &statusError{resp.StatusCode, "upstream HEAD manifest " + remote + ":" + tag}
	default:
		return manifestResult{}, &statusError{resp.StatusCode, "upstream HEAD manifest " + remote + ":" + tag}
	}
	d, err := reference.ParseDigest(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return p.fetchManifest(u, remote, name, tag) // no digest given: ask for the manifest
	}
	if d == local.Digest {
		return manifestResult{m: local}, nil
	}
	if held, err := p.reg.GetManifest(p.ctx, name, d.String()); err == nil {
		m, err := p.reg.PutCachedManifest(p.ctx, name, d, held.MediaType, held.Body, []string{tag})
		return manifestResult{m: m}, err
	}
	return p.fetchManifest(u, remote, name, tag)
}

// fetchManifest gets manifest ref from upstream and stores it, a tag
// pointing at it.
func (p *Proxy) fetchManifest(u *upstream, remote, name, ref string) (manifestResult, error) {
	ctx, cancel := context.WithTimeout(p.ctx, u.cfg.Timeout)
	defer cancel()
	resp, err := u.manifest(ctx, http.MethodGet, remote, ref)
	if err != nil {
		return manifestResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return manifestResult{}, &statusError{resp.StatusCode, "upstream GET manifest " + remote + ":" + ref}
	}
	limit := p.reg.MaxManifestBytes()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return manifestResult{}, fmt.Errorf("reading manifest %s of %s from upstream: %w", ref, remote, err)
	}
	p.obs.UpstreamBytes(u.name(), int64(len(body)))
	if int64(len(body)) > limit {
		return manifestResult{}, fmt.Errorf("upstream manifest %s of %s exceeds %d bytes", ref, remote, limit)
	}
	d := fetchedDigest(ref, resp.Header, body)
	var tags []string
	if !strings.Contains(ref, ":") {
		tags = []string{ref}
	}
	m, err := p.reg.PutCachedManifest(p.ctx, name, d, manifestType(resp.Header.Get("Content-Type")), body, tags)
	if err != nil {
		if _, ok := ocierr.As(err); ok {
			p.obs.UpstreamError(u.name(), 0)
			return manifestResult{}, fmt.Errorf("upstream sent manifest %s of %s that cannot be stored: %w", ref, remote, err)
		}
		return manifestResult{}, err
	}
	if len(tags) > 0 {
		p.revalidated.mark(name + ":" + ref)
	}
	return manifestResult{m: m, fetched: true}, nil
}

// fetchedDigest is the digest a fetched manifest is stored under: the one
// asked for, else the one the upstream announced, else its sha256. The
// registry checks the body hashes to it.
func fetchedDigest(ref string, h http.Header, body []byte) reference.Digest {
	if d, err := reference.ParseDigest(ref); err == nil {
		return d
	}
	if d, err := reference.ParseDigest(h.Get("Docker-Content-Digest")); err == nil {
		return d
	}
	return reference.FromBytes("sha256", body)
}

// manifestType is the Content-Type of a fetched manifest when it names a
// manifest type, else "" (the manifest's own mediaType field decides).
func manifestType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	switch mt {
	case registry.MediaTypeOCIManifest, registry.MediaTypeOCIIndex, registry.MediaTypeDockerManifest, registry.MediaTypeDockerList:
		return mt
	}
	return ""
}
