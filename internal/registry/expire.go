package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/octoserve/octoserve/internal/reference"
	"github.com/octoserve/octoserve/internal/storage"
)

// Cache expiry, the first step of a collection when GCOptions asks for
// it. It removes cached manifests (mirror.go) — never pushed ones — that
// were not used for longer than CacheExpiry and then, while the bytes
// only cached repositories hold exceed CacheMaxBytes, the least recently
// used ones. Removing a manifest removes the tags of its repository that
// point at it and its link; the collection's mark and sweep, which follow,
// then free its blob links and the bytes no repository links any more. A
// blob a local repository links is never freed: the link is the
// repository's own, and expiry touches only cached repositories' links.
//
// Protocol (protocol.go): the collector marks the cached entry for the
// whole removal, looks again at its ModTime (a use since the plan keeps
// the manifest), then judges each tag (moved elsewhere or young: kept,
// and the manifest with it) and the manifest link. A proxy storing the
// manifest again writes the entry, the link and the tags and then settles
// on all of them (PutCachedManifest), so it either is seen by the
// collector or sees what the collector removed and writes it again.

// cachedManifest is a cached manifest as expiry sees it.
type cachedManifest struct {
	name    string
	digest  reference.Digest
	lastUse time.Time
	blobs   []reference.Digest // its own bytes and, for an image, config and layers
}

func (m *cachedManifest) key() string { return m.name + "@" + m.digest.String() }

// eviction is a cached manifest to remove if it was not used since before
// cutoff.
type eviction struct {
	m      *cachedManifest
	cutoff time.Time
}

// expireCache removes what CacheExpiry and CacheMaxBytes say.
func (g *gcRun) expireCache(ctx context.Context) error {
	if g.opts.CacheExpiry <= 0 && g.opts.CacheMaxBytes <= 0 {
		return nil
	}
	cached, err := g.listCached(ctx)
	if err != nil || len(cached) == 0 {
		return err
	}
	var evict []eviction
	keep := cached
	if g.opts.CacheExpiry > 0 {
		now := g.cutoff.Add(g.opts.MinAge + g.opts.ClockSkew)
		cutoff := minTime(now.Add(-g.opts.CacheExpiry-g.opts.ClockSkew), g.cutoff)
		keep = nil
		for _, m := range cached {
			if m.lastUse.Before(cutoff) {
				evict = append(evict, eviction{m, cutoff})
			} else {
				keep = append(keep, m)
			}
		}
	}
	if g.opts.CacheMaxBytes > 0 {
		over, err := g.overCap(ctx, keep, cached)
		if err != nil {
			return err
		}
		evict = append(evict, over...)
	}
	for _, e := range evict {
		if err := g.evictCached(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// listCached returns every cached manifest with what it references. A
// cached entry whose manifest is gone (a crash between the two, or a
// delete) is removed once old; an unreadable manifest is left to the
// collection's mark, which leaves its repository alone.
func (g *gcRun) listCached(ctx context.Context) ([]*cachedManifest, error) {
	repos, err := g.r.allRepositories(ctx)
	if err != nil {
		return nil, err
	}
	var out []*cachedManifest
	for _, name := range repos {
		entries, err := g.r.listDigests(ctx, cachedDir(name))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			mf, mediaType, err := g.readManifest(ctx, name, e.digest)
			var bad *unreadableError
			if errors.As(err, &bad) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if mf == nil {
				if err := g.dropCachedEntry(ctx, name, e.digest); err != nil {
					return nil, err
				}
				continue
			}
			blobs := append([]reference.Digest{e.digest}, mf.referencedBlobs(mediaType)...)
			out = append(out, &cachedManifest{name: name, digest: e.digest, lastUse: e.modTime, blobs: blobs})
		}
	}
	return out, nil
}

// dropCachedEntry removes the cached entry of a manifest that is gone.
func (g *gcRun) dropCachedEntry(ctx context.Context, name string, d reference.Digest) error {
	link := revisionLink(name, d)
	_, err := g.judge(ctx, cachedEntry(name, d), func() (bool, error) { return g.r.exists(ctx, link) })
	return err
}

// overCap picks, least recently used first, the manifests of keep to
// remove so that the bytes only cached repositories hold fit in
// CacheMaxBytes. A blob counts once, and not at all if a repository that
// holds no cached manifest links it: removing cached manifests cannot
// free it. Manifests used since the collection's cutoff are never picked.
func (g *gcRun) overCap(ctx context.Context, keep, all []*cachedManifest) ([]eviction, error) {
	cacheRepos := map[string]bool{}
	for _, m := range all {
		cacheRepos[m.name] = true
	}
	sizes := map[reference.Digest]int64{}
	shared := map[reference.Digest]bool{}
	err := g.r.walkBlobs(ctx, func(b *blobGroup) error {
		if b.data == nil {
			return nil
		}
		sizes[b.digest] = b.data.Size
		for _, l := range b.links {
			if !cacheRepos[repoName(l.Name)] {
				shared[b.digest] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	refs := map[reference.Digest]int{}
	var total int64
	for _, m := range keep {
		m.blobs = uniqueDigests(m.blobs)
		for _, d := range m.blobs {
			if refs[d] == 0 && !shared[d] {
				total += sizes[d]
			}
			refs[d]++
		}
	}
	g.report.CacheBytes = total
	sort.SliceStable(keep, func(i, j int) bool { return keep[i].lastUse.Before(keep[j].lastUse) })
	var evict []eviction
	for _, m := range keep {
		if total <= g.opts.CacheMaxBytes || !m.lastUse.Before(g.cutoff) {
			break
		}
		// Removed only if not used since this look.
		evict = append(evict, eviction{m, m.lastUse.Add(time.Nanosecond)})
		for _, d := range m.blobs {
			if refs[d]--; refs[d] == 0 && !shared[d] {
				total -= sizes[d]
			}
		}
	}
	return evict, nil
}

func uniqueDigests(ds []reference.Digest) []reference.Digest {
	seen := map[reference.Digest]bool{}
	out := ds[:0]
	for _, d := range ds {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// evictCached removes cached manifest e.m, unless it was used since
// e.cutoff or a tag pointing at it or its link is young.
func (g *gcRun) evictCached(ctx context.Context, e eviction) error {
	if g.opts.DryRun {
		g.report.Expired = append(g.report.Expired, e.m.key())
		g.gone[e.m.key()] = true
		return nil
	}
	removed, err := g.evictMarked(ctx, e)
	if err != nil || !removed {
		return err
	}
	g.report.Expired = append(g.report.Expired, e.m.key())
	return nil
}

func (g *gcRun) evictMarked(ctx context.Context, e eviction) (removed bool, err error) {
	name, d := e.m.name, e.m.digest
	entry := cachedEntry(name, d)
	unmark, err := g.r.mark(ctx, entry)
	if err != nil {
		return false, err
	}
	defer func() {
		if uerr := unmark(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	info, err := g.r.d.Stat(ctx, entry)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", entry, err)
	}
	if !info.ModTime.Before(e.cutoff) {
		return false, nil // used since the plan
	}
	tags, err := g.r.tagTargets(ctx, name)
	if err != nil {
		return false, err
	}
	for t, target := range tags {
		if target != d {
			continue
		}
		path := tagPath(name, t)
		gone, err := g.r.judge(ctx, g.lease, g.cutoff, path, func() (bool, error) {
			b, err := g.r.d.GetContent(ctx, path)
			if isNotFound(err) {
				return false, nil
			}
			return err == nil && string(b) != d.String(), err
		})
		if err != nil || !gone {
			return false, err // a tag written or moved since: in use
		}
	}
	gone, err := g.r.judge(ctx, g.lease, g.cutoff, revisionLink(name, d), nil)
	if err != nil || !gone {
		return false, err
	}
	// Looked at again before it goes, as judge looks at what it removes:
	// a cache that stored the manifest again meanwhile wrote the entry
	// anew, settles on its mark and writes the link again; removing the
	// entry now would leave that link looking like a push.
	info, err = g.r.d.Stat(ctx, entry)
	if isNotFound(err) || err == nil && !info.ModTime.Before(g.cutoff) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", entry, err)
	}
	if err := g.r.d.Delete(storage.NoSync(ctx), entry); err != nil {
		return false, fmt.Errorf("removing %s: %w", entry, err)
	}
	return true, nil
}
