package registry

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/octoserve/octoserve/internal/reference"
)

// Garbage collection.
//
// Mark: every manifest a repository holds is kept — or, with
// DeleteUntagged, those a tag reaches, their index children and their
// referrers, transitively — and every blob a kept manifest references is
// live. Sweep: layer links nothing kept references are removed, then blobs
// that no link of any repository names.
//
// Anything written or used after the cutoff (the run's start minus MinAge)
// is kept whatever the mark says: it may belong to a push in progress.
//
// Safety against a registry serving while GC runs, in this process or
// another, rests on two rules:
//
//  1. Writers refresh before they rely. Linking a blob (upload, mount)
//     writes a new link; pushing a manifest touches the links of the blobs
//     it references and writes its own manifest link. Each then checks that
//     the blob is still in place (and an upload puts its own copy back).
//  2. GC moves a candidate aside (into _gc/), then looks again — at the
//     moved object's time, and for links in every repository — and moves it
//     back if anything refreshed or linked it. Only then is it deleted.
//
// A writer's refresh comes before its check, and GC's move before its look,
// so either GC sees the refresh and restores, or the writer sees the
// object gone and fails (or re-uploads) instead of acknowledging a push
// whose blobs are missing. A crash with objects in _gc/ is undone by
// RecoverGC, which moves them back; the next run decides again.

// GCOptions tune a collection.
type GCOptions struct {
	DryRun         bool          // report, change nothing
	DeleteUntagged bool          // also remove manifests no tag reaches
	MinAge         time.Duration // keep anything newer than this
	UploadMaxIdle  time.Duration // remove upload sessions idle longer (0: keep)
}

// GCReport says what a collection removed (or would remove, in a dry run).
type GCReport struct {
	Blobs      []string // digests of removed blobs
	BytesFreed int64
	Links      int      // blob links removed from repositories
	Manifests  []string // name@digest of removed manifests
	Uploads    int      // abandoned upload sessions removed
}

const graveDir = "_gc"

// gcRun is the state of one collection.
type gcRun struct {
	r      *Registry
	opts   GCOptions
	cutoff time.Time
	report *GCReport
	live   map[reference.Digest]bool
}

// CollectGarbage runs one collection.
func (r *Registry) CollectGarbage(ctx context.Context, opts GCOptions) (*GCReport, error) {
	if err := r.RecoverGC(ctx); err != nil {
		return nil, err
	}
	g := &gcRun{r: r, opts: opts, cutoff: time.Now().Add(-opts.MinAge), report: &GCReport{}, live: map[reference.Digest]bool{}}
	repos, err := r.allRepositories(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range repos {
		if err := g.repository(ctx, name); err != nil {
			return g.report, err
		}
	}
	if err := g.sweepBlobs(ctx); err != nil {
		return g.report, err
	}
	if opts.UploadMaxIdle > 0 {
		n, err := r.PurgeUploads(ctx, opts.UploadMaxIdle, opts.DryRun)
		g.report.Uploads = n
		if err != nil {
			return g.report, err
		}
	}
	return g.report, nil
}

func (g *gcRun) young(t time.Time) bool { return !t.Before(g.cutoff) }

// repository marks what repository name keeps and sweeps its manifests
// (with DeleteUntagged) and its unreferenced blob links.
func (g *gcRun) repository(ctx context.Context, name string) error {
	revs, err := g.r.listRevisions(ctx, name)
	if err != nil {
		return err
	}
	kept, err := g.keptManifests(ctx, name, revs)
	if err != nil {
		return err
	}
	referenced := map[reference.Digest]bool{}
	for _, rev := range revs {
		if !kept[rev.digest] {
			if err := g.removeManifest(ctx, name, rev.digest); err != nil {
				return err
			}
			continue
		}
		mf, mediaType, err := g.r.storedManifest(ctx, name, rev.digest)
		if isNotFound(err) {
			continue // deleted since the listing
		}
		if err != nil {
			return err
		}
		g.live[rev.digest] = true
		if isImageManifest(mediaType) {
			referenced[reference.Digest(mf.Config.Digest)] = true
			for _, l := range mf.Layers {
				referenced[reference.Digest(l.Digest)] = true
			}
		}
	}
	links, err := g.r.listLayerLinks(ctx, name)
	if err != nil {
		return err
	}
	for _, l := range links {
		if referenced[l.digest] || g.young(l.modTime) {
			g.live[l.digest] = true
			continue
		}
		removed, err := g.bury(ctx, layerLink(name, l.digest), nil)
		if err != nil {
			return err
		}
		if removed {
			g.report.Links++
		} else {
			g.live[l.digest] = true
		}
	}
	return nil
}

// keptManifests returns the manifests of name that survive: all of them,
// or with DeleteUntagged those reachable from tags and recent pushes.
func (g *gcRun) keptManifests(ctx context.Context, name string, revs []entry) (map[reference.Digest]bool, error) {
	kept := map[reference.Digest]bool{}
	have := map[reference.Digest]bool{}
	var queue []reference.Digest
	add := func(d reference.Digest) {
		if have[d] && !kept[d] {
			kept[d] = true
			queue = append(queue, d)
		}
	}
	for _, rev := range revs {
		have[rev.digest] = true
	}
	for _, rev := range revs {
		if !g.opts.DeleteUntagged || g.young(rev.modTime) {
			add(rev.digest)
		}
	}
	tags, err := g.r.tagTargets(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, d := range tags {
		add(d)
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		mf, _, err := g.r.storedManifest(ctx, name, d)
		if isNotFound(err) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		for _, child := range mf.Manifests {
			add(reference.Digest(child.Digest))
		}
		referrers, err := g.r.Referrers(ctx, name, d, "")
		if err != nil {
			return nil, err
		}
		for _, ref := range referrers {
			add(reference.Digest(ref.Digest))
		}
	}
	return kept, nil
}

// removeManifest removes manifest d of name, which nothing keeps, unless it
// was refreshed meanwhile.
func (g *gcRun) removeManifest(ctx context.Context, name string, d reference.Digest) error {
	mf, _, err := g.r.storedManifest(ctx, name, d)
	if isNotFound(err) {
		return nil // deleted since the listing
	}
	if err != nil {
		return err
	}
	removed, err := g.bury(ctx, revisionLink(name, d), nil)
	if err != nil || !removed {
		return err
	}
	g.report.Manifests = append(g.report.Manifests, name+"@"+d.String())
	if g.opts.DryRun {
		return nil
	}
	if mf.Subject != nil {
		if subject, err := reference.ParseDigest(mf.Subject.Digest); err == nil {
			if err := g.r.d.Delete(ctx, referrerLink(name, subject, d)); err != nil && !isNotFound(err) {
				return fmt.Errorf("removing referrer entry of %s: %w", d, err)
			}
		}
	}
	return g.r.untagDigest(ctx, name, d)
}

// sweepBlobs removes blobs that no manifest or link keeps.
func (g *gcRun) sweepBlobs(ctx context.Context) error {
	blobs, err := g.r.listBlobs(ctx)
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if g.live[b.digest] || g.young(b.modTime) {
			continue
		}
		removed, err := g.bury(ctx, blobPath(b.digest), func() (bool, error) { return g.linkedAnywhere(ctx, b.digest) })
		if err != nil {
			return err
		}
		if removed {
			g.report.Blobs = append(g.report.Blobs, b.digest.String())
			g.report.BytesFreed += b.size
		}
	}
	return nil
}

// linkedAnywhere reports whether any repository, as it is now, links d as
// a blob or a manifest.
func (g *gcRun) linkedAnywhere(ctx context.Context, d reference.Digest) (bool, error) {
	repos, err := g.r.allRepositories(ctx)
	if err != nil {
		return false, err
	}
	for _, name := range repos {
		for _, p := range []string{layerLink(name, d), revisionLink(name, d)} {
			if ok, err := g.r.exists(ctx, p); ok || err != nil {
				return ok, err
			}
		}
	}
	return false, nil
}

// bury removes the object at path unless, once moved aside, it turns out
// to be refreshed (its time is after the cutoff) or stillUsed says so; then
// it is put back. It reports whether the object was removed. In a dry run
// it only reports.
func (g *gcRun) bury(ctx context.Context, path string, stillUsed func() (bool, error)) (bool, error) {
	if g.opts.DryRun {
		return true, nil
	}
	grave := graveDir + "/" + path
	if err := g.r.d.Move(ctx, path, grave); err != nil {
		if isNotFound(err) {
			return false, nil // removed by someone else
		}
		return false, fmt.Errorf("moving %s aside: %w", path, err)
	}
	info, err := g.r.d.Stat(ctx, grave)
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", grave, err)
	}
	used := g.young(info.ModTime)
	if !used && stillUsed != nil {
		if used, err = stillUsed(); err != nil {
			used = true // when in doubt, keep
		}
	}
	if used {
		if err := g.r.d.Move(ctx, grave, path); err != nil {
			return false, fmt.Errorf("putting %s back: %w", path, err)
		}
		return false, nil
	}
	if err := g.r.d.Delete(ctx, grave); err != nil {
		return false, fmt.Errorf("removing %s: %w", grave, err)
	}
	return true, nil
}

// RecoverGC moves back whatever a collection interrupted by a crash left
// aside; the next collection decides about it again.
func (r *Registry) RecoverGC(ctx context.Context) error {
	return r.restoreUnder(ctx, graveDir)
}

func (r *Registry) restoreUnder(ctx context.Context, dir string) error {
	children, err := r.d.List(ctx, dir)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, c := range children {
		p := dir + "/" + c
		info, err := r.d.Stat(ctx, p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if info.IsDir {
			if err := r.restoreUnder(ctx, p); err != nil {
				return err
			}
			continue
		}
		original := strings.TrimPrefix(p, graveDir+"/")
		if ok, err := r.exists(ctx, original); err != nil {
			return err
		} else if ok {
			err = r.d.Delete(ctx, p) // rewritten meanwhile: the new one wins
		} else {
			err = r.d.Move(ctx, p, original)
		}
		if err != nil {
			return fmt.Errorf("restoring %s: %w", original, err)
		}
	}
	return nil
}
